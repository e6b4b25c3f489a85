/*
 * metrics - bucket bounds, label tables, the name table and the text
 * writer used by /metrics. Kept free of I/O so the exposition format (the
 * part Prometheus is strict about) is unit-tested on its own.
 */
#include "metrics.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "util.h"

/* 100 us .. 10 s: a cache answers in well under a millisecond, a sick shard
 * or a deadline shows up in the upper buckets. */
const uint32_t sg_hist_bounds_us[SG_HIST_BOUNDS] = {
    100,   250,    500,    1000,   2500,    5000,    10000,   25000,
    50000, 100000, 250000, 500000, 1000000, 2500000, 5000000, 10000000};

static const char *const op_names[SG_OP_N] = {
    "unknown",      "ping",           "get",           "set",           "delete",
    "expire",       "mget",           "mset",          "mdelete",       "invalidate",
    "get_or_lease", "set_with_lease", "set_versioned", "get_versioned", "stats"};

const char *sg_metrics_op_name(int i)
{
    return i >= 0 && i < SG_OP_N ? op_names[i] : "unknown";
}

static const struct {
    int code;
    const char *name;
} codes[SG_CODE_N - 1] = {
    {0, "ok"},
    {1, "not_found"},
    {2, "not_applied"},
    {3, "lease_granted"},
    {4, "lease_wait"},
    {200, "unknown_op"},
    {201, "invalid_argument"},
    {202, "invalid_key"},
    {203, "key_too_large"},
    {204, "value_too_large"},
    {205, "batch_too_large"},
    {206, "unknown_keyspace"},
    {207, "ttl_out_of_range"},
    {208, "lease_invalid"},
    {209, "version_conflict"},
    {300, "timeout"},
    {301, "shard_unavailable"},
    {302, "cluster_down"},
    {303, "backend_error"},
    {304, "corrupt_value"},
    {399, "internal"},
};

int sg_metrics_code_index(int code)
{
    if (code >= 0 && code <= 4)
        return code;
    if (code >= 200 && code <= 209)
        return 5 + (code - 200);
    if (code >= 300 && code <= 304)
        return 15 + (code - 300);
    if (code == 399)
        return 20;
    return SG_CODE_N - 1;
}

const char *sg_metrics_code_name(int i)
{
    return i >= 0 && i < SG_CODE_N - 1 ? codes[i].name : "other";
}

/* --- names ------------------------------------------------------------------ */

void sg_names_init(struct sg_names *t, int cap)
{
    pthread_mutex_init(&t->lock, NULL);
    atomic_init(&t->n, 0);
    t->cap = cap < 2 ? 2 : cap > SG_NAMES_MAX ? SG_NAMES_MAX : cap;
}

int sg_names_find(const struct sg_names *t, const char *name)
{
    int n = atomic_load_explicit(&t->n, memory_order_acquire);
    for (int i = 0; i < n; i++)
        if (strcmp(t->name[i], name) == 0)
            return i;
    return -1;
}

int sg_names_slot(struct sg_names *t, const char *name)
{
    int i = sg_names_find(t, name);
    if (i >= 0)
        return i;
    pthread_mutex_lock(&t->lock);
    int n = atomic_load_explicit(&t->n, memory_order_relaxed);
    for (i = 0; i < n; i++)
        if (strcmp(t->name[i], name) == 0)
            break;
    if (i == n) {
        if (n == t->cap - 1) {
            snprintf(t->name[n], SG_NAME_LEN, "(other)");
            atomic_store_explicit(&t->n, n + 1, memory_order_release);
        } else if (n == t->cap) {
            i = t->cap - 1; /* full: the overflow slot */
        } else {
            snprintf(t->name[n], SG_NAME_LEN, "%s", name);
            atomic_store_explicit(&t->n, n + 1, memory_order_release);
        }
    }
    pthread_mutex_unlock(&t->lock);
    return i;
}

int sg_names_count(const struct sg_names *t)
{
    return atomic_load_explicit(&t->n, memory_order_acquire);
}

const char *sg_names_get(const struct sg_names *t, int i)
{
    return t->name[i];
}

/* --- text ------------------------------------------------------------------- */

void sg_text_printf(struct sg_text *t, const char *fmt, ...)
{
    for (;;) {
        va_list ap;
        va_start(ap, fmt);
        size_t room = t->cap - t->len;
        int n = vsnprintf(t->buf ? t->buf + t->len : NULL, room, fmt, ap);
        va_end(ap);
        if (n < 0)
            return;
        if ((size_t)n < room) {
            t->len += (size_t)n;
            return;
        }
        t->cap = (t->cap + (size_t)n + 1) * 2;
        t->buf = sg_realloc(t->buf, t->cap);
    }
}

size_t sg_metrics_escape(const char *in, char *out, size_t outlen)
{
    size_t o = 0;
    if (outlen == 0)
        return 0;
    for (; *in; in++) {
        const char *rep = *in == '\\' ? "\\\\" : *in == '"' ? "\\\"" : *in == '\n' ? "\\n" : NULL;
        size_t need = rep ? 2 : 1;
        if (o + need >= outlen)
            break;
        if (rep) {
            out[o++] = rep[0];
            out[o++] = rep[1];
        } else {
            out[o++] = *in;
        }
    }
    out[o] = '\0';
    return o;
}

void sg_metrics_family(struct sg_text *t, const char *name, const char *type, const char *help)
{
    sg_text_printf(t, "# HELP %s %s\n# TYPE %s %s\n", name, help, name, type);
}

/* name{a="x",b="y"} with an optional extra label (le) last. */
static void sample_head(struct sg_text *t, const char *name, const char *suffix,
                        const char *const *labels, const char *extra_name, const char *extra_value)
{
    sg_text_printf(t, "%s%s", name, suffix);
    int first = 1;
    char esc[SG_NAME_LEN * 2];
    for (int i = 0; labels != NULL && labels[i] != NULL; i += 2) {
        sg_metrics_escape(labels[i + 1], esc, sizeof(esc));
        sg_text_printf(t, "%s%s=\"%s\"", first ? "{" : ",", labels[i], esc);
        first = 0;
    }
    if (extra_name != NULL) {
        sg_text_printf(t, "%s%s=\"%s\"", first ? "{" : ",", extra_name, extra_value);
        first = 0;
    }
    if (!first)
        sg_text_printf(t, "}");
}

void sg_metrics_u64(struct sg_text *t, const char *name, const char *const *labels, uint64_t v)
{
    sample_head(t, name, "", labels, NULL, NULL);
    sg_text_printf(t, " %llu\n", (unsigned long long)v);
}

void sg_metrics_f64(struct sg_text *t, const char *name, const char *const *labels, double v)
{
    sample_head(t, name, "", labels, NULL, NULL);
    sg_text_printf(t, " %.9g\n", v);
}

void sg_metrics_histogram(struct sg_text *t, const char *name, const char *const *labels,
                          const uint64_t counts[SG_HIST_SLOTS], uint64_t sum_us)
{
    uint64_t cum = 0;
    char le[32];
    for (int i = 0; i < SG_HIST_SLOTS; i++) {
        cum += counts[i];
        if (i < SG_HIST_BOUNDS)
            snprintf(le, sizeof(le), "%g", sg_hist_bounds_us[i] / 1e6);
        else
            snprintf(le, sizeof(le), "+Inf");
        sample_head(t, name, "_bucket", labels, "le", le);
        sg_text_printf(t, " %llu\n", (unsigned long long)cum);
    }
    sample_head(t, name, "_sum", labels, NULL, NULL);
    sg_text_printf(t, " %.9g\n", (double)sum_us / 1e6);
    sample_head(t, name, "_count", labels, NULL, NULL);
    sg_text_printf(t, " %llu\n", (unsigned long long)cum);
}
