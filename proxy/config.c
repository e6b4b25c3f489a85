/*
 * config - loads the YAML configuration with libyaml's document API and
 * validates it as a whole. The schema is a set of static key tables (one per
 * section), so unknown keys, wrong types and ranges are checked in one place
 * and every message comes out as "FILE:LINE: key 'section.key': reason".
 * Loading goes into a scratch copy: cfg is only replaced when everything is
 * valid, so a failed reload leaves the running configuration untouched.
 */
#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <libgen.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <unistd.h>
#include <yaml.h>

#include "log.h"
#include "util.h"

#define SG_CFG_MAX_SEEN 512
#define SG_CFG_KEY_MAX 192
#define SG_CFG_SHOW_MAX 64
#define SG_CFG_DEFAULT_THRESHOLD 1024

enum cfg_type {
    T_STR,         /* any string (char[size]) */
    T_HOST,        /* non-empty host name or address (char[size]) */
    T_PATH,        /* readable file, stored absolute (char[size]); "" = unset */
    T_BOOL,        /* int: true/false/yes/no */
    T_INT,         /* int in [min, max] */
    T_U32,         /* uint32_t in [min, max] */
    T_U64,         /* uint64_t in [min, max] */
    T_LEVEL,       /* int: log level name */
    T_COMPRESSION, /* int: off | auto | always */
    T_TOKENS,      /* auth.tokens list */
    T_SEEDS,       /* redis.seeds list */
    T_PPMODE,      /* int: off | v1 | v2 | any */
    T_CIDRS,       /* listen.proxy_trusted list */
    T_MAP,         /* nested section, keys in sub */
    T_KEYSPACES    /* the keyspaces mapping */
};

struct cfg_key {
    const char *name;
    enum cfg_type type;
    size_t off;  /* into the section's base struct */
    size_t size; /* of the field; the buffer size for strings */
    uint64_t min, max;
    const struct cfg_key *sub;
};

struct cfg_seen {
    char key[SG_CFG_KEY_MAX];
    int line;
};

struct cfg_ctx {
    const char *name; /* file name (or label) used in messages */
    char basedir[PATH_MAX];
    struct sg_config *cfg;
    char *err;
    size_t errlen;
    int n_seen;
    struct cfg_seen seen[SG_CFG_MAX_SEEN];
};

#define CF(field) offsetof(struct sg_config, field), sizeof(((struct sg_config *)0)->field)
#define KF(field) \
    offsetof(struct sg_keyspace_config, field), sizeof(((struct sg_keyspace_config *)0)->field)
#define POS 1, UINT32_MAX
#define NONNEG 0, UINT32_MAX

static const struct cfg_key listen_keys[] = {
    {"address", T_HOST, CF(listen.host), 0, 0, NULL},
    {"port", T_INT, CF(listen.port), 1, 65535, NULL},
    {"plaintext", T_BOOL, CF(plaintext), 0, 0, NULL},
    {"workers", T_INT, CF(workers), 0, 1024, NULL},
    {"proxy_protocol", T_PPMODE, CF(proxy_protocol), 0, 0, NULL},
    {"proxy_trusted", T_CIDRS, CF(proxy_trusted), 0, 0, NULL},
    {NULL, T_STR, 0, 0, 0, 0, NULL}};

static const struct cfg_key tls_keys[] = {
    {"cert", T_PATH, CF(tls_cert), 0, 0, NULL},
    {"key", T_PATH, CF(tls_key), 0, 0, NULL},
    {"client_ca", T_PATH, CF(tls_client_ca), 0, 0, NULL},
    {"require_client_cert", T_BOOL, CF(tls_require_client_cert), 0, 0, NULL},
    {NULL, T_STR, 0, 0, 0, 0, NULL}};

static const struct cfg_key auth_keys[] = {{"tokens", T_TOKENS, CF(tokens), 0, 0, NULL},
                                           {NULL, T_STR, 0, 0, 0, 0, NULL}};

static const struct cfg_key limits_keys[] = {
    {"max_frame_bytes", T_U32, CF(max_frame_bytes), POS, NULL},
    {"max_key_bytes", T_U32, CF(max_key_bytes), POS, NULL},
    {"max_value_bytes", T_U32, CF(max_value_bytes), POS, NULL},
    {"max_batch_keys", T_U32, CF(max_batch_keys), POS, NULL},
    {"max_batch_bytes", T_U32, CF(max_batch_bytes), POS, NULL},
    {"max_connections", T_U32, CF(max_connections), POS, NULL},
    {"max_connections_per_ip", T_U32, CF(max_connections_per_ip), NONNEG, NULL},
    {"max_inflight", T_U32, CF(max_inflight), POS, NULL},
    {"output_high_watermark", T_U32, CF(output_high_watermark), POS, NULL},
    {"max_output_bytes", T_U32, CF(max_output_bytes), NONNEG, NULL},
    {"max_buffered_bytes", T_U64, CF(max_buffered_bytes), 0, UINT64_MAX, NULL},
    {"request_deadline_ms", T_U32, CF(request_deadline_ms), POS, NULL},
    {"max_deadline_ms", T_U32, CF(max_deadline_ms), POS, NULL},
    {"handshake_timeout_ms", T_U32, CF(handshake_timeout_ms), POS, NULL},
    {"idle_timeout_ms", T_U32, CF(idle_timeout_ms), NONNEG, NULL},
    {"drain_timeout_ms", T_U32, CF(drain_timeout_ms), NONNEG, NULL},
    {"write_gather_us", T_U32, CF(write_gather_us), 0, 1000000, NULL},
    {NULL, T_STR, 0, 0, 0, 0, NULL}};

static const struct cfg_key redis_tls_keys[] = {{"enabled", T_BOOL, CF(redis_tls), 0, 0, NULL},
                                                {"ca", T_PATH, CF(redis_tls_ca), 0, 0, NULL},
                                                {"cert", T_PATH, CF(redis_tls_cert), 0, 0, NULL},
                                                {"key", T_PATH, CF(redis_tls_key), 0, 0, NULL},
                                                {NULL, T_STR, 0, 0, 0, 0, NULL}};

static const struct cfg_key redis_keys[] = {
    {"seeds", T_SEEDS, CF(seeds), 0, 0, NULL},
    {"username", T_STR, CF(redis_username), 0, 0, NULL},
    {"password", T_STR, CF(redis_password), 0, 0, NULL},
    {"tls", T_MAP, 0, 0, 0, 0, redis_tls_keys},
    {"connect_timeout_ms", T_U32, CF(connect_timeout_ms), POS, NULL},
    {"topology_refresh_ms", T_U32, CF(topology_refresh_ms), POS, NULL},
    {"topology_min_interval_ms", T_U32, CF(topology_min_interval_ms), NONNEG, NULL},
    {"max_redirects", T_U32, CF(max_redirects), 0, 100, NULL},
    {"invalidate_page_keys", T_U32, CF(invalidate_page_keys), 1, 100000, NULL},
    {"invalidate_pause_ms", T_U32, CF(invalidate_pause_ms), 0, 10000, NULL},
    {"retry_backoff_ms", T_U32, CF(retry_backoff_ms), NONNEG, NULL},
    {"reconnect_backoff_max_ms", T_U32, CF(reconnect_backoff_max_ms), POS, NULL},
    {"link_stall_ms", T_U32, CF(link_stall_ms), NONNEG, NULL},
    {"max_link_pending", T_U32, CF(max_link_pending), POS, NULL},
    {"coalesce_gets", T_BOOL, CF(coalesce_gets), 0, 0, NULL},
    {"max_reply_elements", T_U64, CF(redis_max_reply_elements), 0, UINT64_MAX, NULL},
    {"max_reply_bulk_bytes", T_U64, CF(redis_max_reply_bulk_bytes), 0, UINT64_MAX, NULL},
    {NULL, T_STR, 0, 0, 0, 0, NULL}};

static const struct cfg_key admin_keys[] = {{"address", T_HOST, CF(admin.host), 0, 0, NULL},
                                            {"port", T_INT, CF(admin.port), 0, 65535, NULL},
                                            {NULL, T_STR, 0, 0, 0, 0, NULL}};

static const struct cfg_key log_keys[] = {{"level", T_LEVEL, CF(log_level), 0, 0, NULL},
                                          {NULL, T_STR, 0, 0, 0, 0, NULL}};

static const struct cfg_key top_keys[] = {{"listen", T_MAP, 0, 0, 0, 0, listen_keys},
                                          {"tls", T_MAP, 0, 0, 0, 0, tls_keys},
                                          {"auth", T_MAP, 0, 0, 0, 0, auth_keys},
                                          {"limits", T_MAP, 0, 0, 0, 0, limits_keys},
                                          {"redis", T_MAP, 0, 0, 0, 0, redis_keys},
                                          {"admin", T_MAP, 0, 0, 0, 0, admin_keys},
                                          {"log", T_MAP, 0, 0, 0, 0, log_keys},
                                          {"keyspaces", T_KEYSPACES, 0, 0, 0, 0, NULL},
                                          {NULL, T_STR, 0, 0, 0, 0, NULL}};

static const struct cfg_key keyspace_keys[] = {
    {"prefix", T_STR, KF(prefix), 0, 0, NULL},
    {"default_ttl_ms", T_U64, KF(default_ttl_ms), 0, UINT64_MAX, NULL},
    {"max_ttl_ms", T_U64, KF(max_ttl_ms), 0, UINT64_MAX, NULL},
    {"compression", T_COMPRESSION, KF(compression), 0, 0, NULL},
    {"compress_threshold", T_U32, KF(compress_threshold), POS, NULL},
    {"max_value_bytes", T_U32, KF(max_value_bytes), NONNEG, NULL},
    {"read_from_replicas", T_BOOL, KF(read_from_replicas), 0, 0, NULL},
    {NULL, T_STR, 0, 0, 0, 0, NULL}};

/* ---- messages ------------------------------------------------------------ */

static void cfg_vwrite(struct cfg_ctx *ctx, const char *fmt, va_list ap)
{
    if (ctx->err != NULL && ctx->errlen > 0)
        vsnprintf(ctx->err, ctx->errlen, fmt, ap);
}

static int cfg_raw_error(struct cfg_ctx *ctx, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
static int cfg_raw_error(struct cfg_ctx *ctx, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    cfg_vwrite(ctx, fmt, ap);
    va_end(ap);
    return -1;
}

/* "NAME:LINE: key 'KEY': reason"; always returns -1 so callers can return it. */
static int cfg_error(struct cfg_ctx *ctx, int line, const char *key, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
static int cfg_error(struct cfg_ctx *ctx, int line, const char *key, const char *fmt, ...)
{
    char reason[768];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(reason, sizeof reason, fmt, ap);
    va_end(ap);
    return cfg_raw_error(ctx, "%s:%d: key '%s': %s", ctx->name, line, key, reason);
}

/* A scalar as shown in a message: cut to a readable length. */
static const char *cfg_show(const char *s, char *buf, size_t len)
{
    if (strlen(s) < SG_CFG_SHOW_MAX || len < SG_CFG_SHOW_MAX + 4)
        return s;
    snprintf(buf, len, "%.*s...", SG_CFG_SHOW_MAX, s);
    return buf;
}

/* ---- node helpers -------------------------------------------------------- */

static int cfg_line(const yaml_node_t *n)
{
    return n != NULL ? (int)n->start_mark.line + 1 : 1;
}

static const char *cfg_scalar(const yaml_node_t *n)
{
    return (const char *)n->data.scalar.value;
}

/* An empty value, "~" or "null", written without quotes. */
static int cfg_is_null(const yaml_node_t *n)
{
    if (n->type != YAML_SCALAR_NODE || n->data.scalar.style != YAML_PLAIN_SCALAR_STYLE)
        return 0;
    const char *s = cfg_scalar(n);
    return s[0] == '\0' || strcmp(s, "~") == 0 || strcasecmp(s, "null") == 0;
}

/* Line at which key was seen, 0 if it was not in the file. */
static int cfg_seen_line(const struct cfg_ctx *ctx, const char *key)
{
    for (int i = 0; i < ctx->n_seen; i++)
        if (strcmp(ctx->seen[i].key, key) == 0)
            return ctx->seen[i].line;
    return 0;
}

/* The line of the first of keys (NULL-terminated) present in the file, else 1. */
static int cfg_line_of(const struct cfg_ctx *ctx, const char *first, ...)
{
    va_list ap;
    int line = 0;
    va_start(ap, first);
    for (const char *k = first; k != NULL && line == 0; k = va_arg(ap, const char *))
        line = cfg_seen_line(ctx, k);
    va_end(ap);
    return line > 0 ? line : 1;
}

/* ---- scalar parsing ------------------------------------------------------ */

static int cfg_expect_scalar(struct cfg_ctx *ctx, const yaml_node_t *v, const char *key,
                             const char *what)
{
    if (v->type == YAML_SCALAR_NODE)
        return 0;
    return cfg_error(ctx, cfg_line(v), key, "expected %s, got a %s", what,
                     v->type == YAML_MAPPING_NODE ? "mapping" : "list");
}

static int cfg_get_string(struct cfg_ctx *ctx, const yaml_node_t *v, const char *key, char *out,
                          size_t size)
{
    if (cfg_expect_scalar(ctx, v, key, "a string") != 0)
        return -1;
    const char *s = cfg_is_null(v) ? "" : cfg_scalar(v);
    size_t len = cfg_is_null(v) ? 0 : v->data.scalar.length;
    if (strlen(s) != len)
        return cfg_error(ctx, cfg_line(v), key, "contains a NUL byte");
    if (len >= size)
        return cfg_error(ctx, cfg_line(v), key, "longer than %zu bytes", size - 1);
    memcpy(out, s, len + 1);
    return 0;
}

static int cfg_get_bool(struct cfg_ctx *ctx, const yaml_node_t *v, const char *key, int *out)
{
    char buf[SG_CFG_SHOW_MAX + 8];
    if (cfg_expect_scalar(ctx, v, key, "true or false") != 0)
        return -1;
    const char *s = cfg_scalar(v);
    if (strcasecmp(s, "true") == 0 || strcasecmp(s, "yes") == 0)
        *out = 1;
    else if (strcasecmp(s, "false") == 0 || strcasecmp(s, "no") == 0)
        *out = 0;
    else
        return cfg_error(ctx, cfg_line(v), key, "expected true/false/yes/no, got '%s'",
                         cfg_show(s, buf, sizeof buf));
    return 0;
}

/*
 * Decimal digits only: no sign, no hex, no units, so "-1", "8M" and "0x10"
 * are rejected rather than half-parsed. The range is checked by the caller's
 * table entry so the message can say what is allowed.
 */
static int cfg_get_uint(struct cfg_ctx *ctx, const yaml_node_t *v, const char *key, uint64_t min,
                        uint64_t max, uint64_t *out)
{
    char buf[SG_CFG_SHOW_MAX + 8];
    const char *what = min > 0 ? "a positive integer" : "a non-negative integer";
    if (cfg_expect_scalar(ctx, v, key, what) != 0)
        return -1;
    const char *s = cfg_scalar(v);
    uint64_t n = 0;
    int overflow = 0;
    if (*s == '\0')
        return cfg_error(ctx, cfg_line(v), key, "expected %s, got '%s'", what, s);
    for (const char *p = s; *p; p++) {
        if (*p < '0' || *p > '9')
            return cfg_error(ctx, cfg_line(v), key, "expected %s, got '%s'", what,
                             cfg_show(s, buf, sizeof buf));
        unsigned d = (unsigned)(*p - '0');
        if (n > (UINT64_MAX - d) / 10)
            overflow = 1;
        else
            n = n * 10 + d;
    }
    if (n < min && min == 1)
        return cfg_error(ctx, cfg_line(v), key, "expected %s, got '%s'", what, s);
    if (!overflow && n >= min && n <= max) {
        *out = n;
        return 0;
    }
    if (max == UINT32_MAX || max == UINT64_MAX)
        return cfg_error(ctx, cfg_line(v), key, "must be at most %llu, got %s",
                         (unsigned long long)max, cfg_show(s, buf, sizeof buf));
    return cfg_error(ctx, cfg_line(v), key, "must be between %llu and %llu, got %s",
                     (unsigned long long)min, (unsigned long long)max,
                     cfg_show(s, buf, sizeof buf));
}

static int cfg_get_host(struct cfg_ctx *ctx, const yaml_node_t *v, const char *key, char *out,
                        size_t size)
{
    char host[256];
    if (size > sizeof host)
        size = sizeof host;
    if (cfg_get_string(ctx, v, key, host, size) != 0)
        return -1;
    if (host[0] == '\0')
        return cfg_error(ctx, cfg_line(v), key, "expected a host name or address, got ''");
    for (const char *p = host; *p; p++)
        if ((unsigned char)*p <= ' ' || *p == '/')
            return cfg_error(ctx, cfg_line(v), key, "not a host name or address: '%s'", host);
    memcpy(out, host, strlen(host) + 1);
    return 0;
}

/*
 * Relative paths are taken from the config file's directory (the cwd for a
 * config given as a string) and stored absolute, so later chdir() or a
 * reload from elsewhere does not change which file is meant. The file is
 * opened once here so a typo fails at load, not at the first handshake.
 */
static int cfg_get_path(struct cfg_ctx *ctx, const yaml_node_t *v, const char *key, char *out,
                        size_t size)
{
    char rel[PATH_MAX], abs[PATH_MAX];
    struct stat st;
    if (cfg_get_string(ctx, v, key, rel, sizeof rel) != 0)
        return -1;
    if (rel[0] == '\0') {
        out[0] = '\0';
        return 0;
    }
    int n = rel[0] == '/' ? snprintf(abs, sizeof abs, "%s", rel)
                          : snprintf(abs, sizeof abs, "%s/%s", ctx->basedir, rel);
    if (n < 0 || (size_t)n >= size || (size_t)n >= sizeof abs)
        return cfg_error(ctx, cfg_line(v), key, "path longer than %zu bytes", size - 1);
    int fd = open(abs, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return cfg_error(ctx, cfg_line(v), key, "cannot read '%s': %s", abs, strerror(errno));
    int rc = fstat(fd, &st);
    int saved = errno;
    close(fd);
    if (rc != 0)
        return cfg_error(ctx, cfg_line(v), key, "cannot read '%s': %s", abs, strerror(saved));
    if (!S_ISREG(st.st_mode))
        return cfg_error(ctx, cfg_line(v), key, "cannot read '%s': not a regular file", abs);
    memcpy(out, abs, (size_t)n + 1);
    return 0;
}

static int cfg_get_seeds(struct cfg_ctx *ctx, yaml_document_t *doc, const yaml_node_t *v,
                         const char *key)
{
    char buf[SG_CFG_SHOW_MAX + 8];
    struct sg_config *cfg = ctx->cfg;
    cfg->n_seeds = 0;
    if (cfg_is_null(v))
        return 0;
    if (v->type != YAML_SEQUENCE_NODE)
        return cfg_error(ctx, cfg_line(v), key, "expected a list of \"host:port\" strings");
    for (yaml_node_item_t *it = v->data.sequence.items.start; it < v->data.sequence.items.top;
         it++) {
        yaml_node_t *item = yaml_document_get_node(doc, *it);
        if (item->type != YAML_SCALAR_NODE)
            return cfg_error(ctx, cfg_line(item), key, "expected a \"host:port\" string");
        if (cfg->n_seeds == SG_MAX_SEEDS)
            return cfg_error(ctx, cfg_line(item), key, "at most %d seeds", SG_MAX_SEEDS);
        const char *s = cfg_scalar(item);
        if (sg_parse_hostport(s, &cfg->seeds[cfg->n_seeds]) != 0)
            return cfg_error(ctx, cfg_line(item), key, "expected \"host:port\", got '%s'",
                             cfg_show(s, buf, sizeof buf));
        cfg->n_seeds++;
    }
    return 0;
}

static int cfg_get_cidrs(struct cfg_ctx *ctx, yaml_document_t *doc, const yaml_node_t *v,
                         const char *key)
{
    char buf[SG_CFG_SHOW_MAX + 8];
    struct sg_config *cfg = ctx->cfg;
    cfg->n_proxy_trusted = 0;
    if (cfg_is_null(v))
        return 0;
    if (v->type != YAML_SEQUENCE_NODE)
        return cfg_error(ctx, cfg_line(v), key, "expected a list of \"address/prefix\" strings");
    for (yaml_node_item_t *it = v->data.sequence.items.start; it < v->data.sequence.items.top;
         it++) {
        yaml_node_t *item = yaml_document_get_node(doc, *it);
        if (item->type != YAML_SCALAR_NODE)
            return cfg_error(ctx, cfg_line(item), key, "expected an \"address/prefix\" string");
        if (cfg->n_proxy_trusted == SG_MAX_TRUSTED)
            return cfg_error(ctx, cfg_line(item), key, "at most %d networks", SG_MAX_TRUSTED);
        const char *s = cfg_scalar(item), *why = "";
        if (sg_cidr_parse(s, &cfg->proxy_trusted[cfg->n_proxy_trusted], &why) != 0)
            return cfg_error(ctx, cfg_line(item), key, "'%s': %s", cfg_show(s, buf, sizeof buf),
                             why);
        cfg->n_proxy_trusted++;
    }
    return 0;
}

static int cfg_get_tokens(struct cfg_ctx *ctx, yaml_document_t *doc, const yaml_node_t *v,
                          const char *key)
{
    struct sg_config *cfg = ctx->cfg;
    cfg->n_tokens = 0;
    if (cfg_is_null(v))
        return 0;
    if (v->type != YAML_SEQUENCE_NODE)
        return cfg_error(ctx, cfg_line(v), key, "expected a list of strings");
    for (yaml_node_item_t *it = v->data.sequence.items.start; it < v->data.sequence.items.top;
         it++) {
        yaml_node_t *item = yaml_document_get_node(doc, *it);
        if (cfg->n_tokens == SG_MAX_TOKENS)
            return cfg_error(ctx, cfg_line(item), key, "at most %d tokens", SG_MAX_TOKENS);
        char *tok = cfg->tokens[cfg->n_tokens];
        if (cfg_get_string(ctx, item, key, tok, sizeof cfg->tokens[0]) != 0)
            return -1;
        if (tok[0] == '\0')
            return cfg_error(ctx, cfg_line(item), key, "empty token");
        cfg->n_tokens++;
    }
    return 0;
}

/* ---- mappings ------------------------------------------------------------ */

static int cfg_parse_map(struct cfg_ctx *ctx, yaml_document_t *doc, const yaml_node_t *map,
                         const struct cfg_key *keys, const char *path, char *base);
static int cfg_parse_keyspaces(struct cfg_ctx *ctx, yaml_document_t *doc, const yaml_node_t *map);

/*
 * Records key as seen at line; returns -1 when it was already seen (YAML
 * itself allows duplicate keys, and libyaml keeps both, so we must refuse).
 */
static int cfg_mark_seen(struct cfg_ctx *ctx, const char *key, int line)
{
    if (cfg_seen_line(ctx, key) != 0)
        return -1;
    if (ctx->n_seen < SG_CFG_MAX_SEEN) {
        snprintf(ctx->seen[ctx->n_seen].key, sizeof ctx->seen[0].key, "%s", key);
        ctx->seen[ctx->n_seen].line = line;
        ctx->n_seen++;
    }
    return 0;
}

/* Store one value v for table entry k into base; full is its dotted name. */
static int cfg_set_value(struct cfg_ctx *ctx, yaml_document_t *doc, const struct cfg_key *k,
                         const yaml_node_t *v, const char *full, char *base)
{
    char buf[SG_CFG_SHOW_MAX + 8];
    void *field = base + k->off;
    uint64_t n;
    int b = 0;

    switch (k->type) {
    case T_STR:
        return cfg_get_string(ctx, v, full, field, k->size);
    case T_HOST:
        return cfg_get_host(ctx, v, full, field, k->size);
    case T_PATH:
        return cfg_get_path(ctx, v, full, field, k->size);
    case T_BOOL:
        if (cfg_get_bool(ctx, v, full, &b) != 0)
            return -1;
        *(int *)field = b;
        return 0;
    case T_INT:
        if (cfg_get_uint(ctx, v, full, k->min, k->max, &n) != 0)
            return -1;
        *(int *)field = (int)n;
        return 0;
    case T_U32:
        if (cfg_get_uint(ctx, v, full, k->min, k->max, &n) != 0)
            return -1;
        *(uint32_t *)field = (uint32_t)n;
        return 0;
    case T_U64:
        if (cfg_get_uint(ctx, v, full, k->min, k->max, &n) != 0)
            return -1;
        *(uint64_t *)field = n;
        return 0;
    case T_LEVEL:
        if (cfg_expect_scalar(ctx, v, full, "a log level") != 0)
            return -1;
        b = sg_log_level_from_name(cfg_scalar(v));
        if (b < 0)
            return cfg_error(ctx, cfg_line(v), full, "expected error|warn|info|debug, got '%s'",
                             cfg_show(cfg_scalar(v), buf, sizeof buf));
        *(int *)field = b;
        return 0;
    case T_COMPRESSION:
        if (cfg_expect_scalar(ctx, v, full, "off|auto|always") != 0)
            return -1;
        if (strcasecmp(cfg_scalar(v), "off") == 0)
            *(int *)field = SG_COMPRESS_OFF;
        else if (strcasecmp(cfg_scalar(v), "auto") == 0)
            *(int *)field = SG_COMPRESS_AUTO;
        else if (strcasecmp(cfg_scalar(v), "always") == 0)
            *(int *)field = SG_COMPRESS_ALWAYS;
        else
            return cfg_error(ctx, cfg_line(v), full, "expected off|auto|always, got '%s'",
                             cfg_show(cfg_scalar(v), buf, sizeof buf));
        return 0;
    case T_PPMODE:
        if (cfg_expect_scalar(ctx, v, full, "off|v1|v2|any") != 0)
            return -1;
        if (strcasecmp(cfg_scalar(v), "off") == 0 ||
            (v->data.scalar.style == YAML_PLAIN_SCALAR_STYLE &&
             strcasecmp(cfg_scalar(v), "false") == 0))
            *(int *)field = SG_PP_OFF;
        else if (strcasecmp(cfg_scalar(v), "v1") == 0)
            *(int *)field = SG_PP_V1;
        else if (strcasecmp(cfg_scalar(v), "v2") == 0)
            *(int *)field = SG_PP_V2;
        else if (strcasecmp(cfg_scalar(v), "any") == 0)
            *(int *)field = SG_PP_ANY;
        else
            return cfg_error(ctx, cfg_line(v), full, "expected off|v1|v2|any, got '%s'",
                             cfg_show(cfg_scalar(v), buf, sizeof buf));
        return 0;
    case T_CIDRS:
        return cfg_get_cidrs(ctx, doc, v, full);
    case T_TOKENS:
        return cfg_get_tokens(ctx, doc, v, full);
    case T_SEEDS:
        return cfg_get_seeds(ctx, doc, v, full);
    case T_MAP:
        return cfg_parse_map(ctx, doc, v, k->sub, full, base);
    case T_KEYSPACES:
        return cfg_parse_keyspaces(ctx, doc, v);
    }
    return cfg_error(ctx, cfg_line(v), full, "internal: unhandled key type");
}

/*
 * Walk one mapping against its key table. path is the dotted name of the
 * mapping ("" at the top); base is the struct the table's offsets refer to.
 * A null value ("section:" with nothing under it) counts as empty.
 */
static int cfg_parse_map(struct cfg_ctx *ctx, yaml_document_t *doc, const yaml_node_t *map,
                         const struct cfg_key *keys, const char *path, char *base)
{
    char full[SG_CFG_KEY_MAX];
    char buf[SG_CFG_SHOW_MAX + 8];

    if (cfg_is_null(map))
        return 0;
    if (map->type != YAML_MAPPING_NODE) {
        if (path[0] == '\0')
            return cfg_raw_error(ctx, "%s:%d: the top level must be a mapping of sections",
                                 ctx->name, cfg_line(map));
        return cfg_error(ctx, cfg_line(map), path, "expected a mapping");
    }
    for (yaml_node_pair_t *p = map->data.mapping.pairs.start; p < map->data.mapping.pairs.top;
         p++) {
        yaml_node_t *kn = yaml_document_get_node(doc, p->key);
        yaml_node_t *vn = yaml_document_get_node(doc, p->value);
        if (kn->type != YAML_SCALAR_NODE)
            return cfg_error(ctx, cfg_line(kn), path[0] ? path : "(top level)",
                             "keys must be plain strings");
        const char *name = cfg_show(cfg_scalar(kn), buf, sizeof buf);
        snprintf(full, sizeof full, "%s%s%s", path, path[0] ? "." : "", name);
        const struct cfg_key *k = keys;
        while (k->name != NULL && strcmp(k->name, cfg_scalar(kn)) != 0)
            k++;
        if (k->name == NULL)
            return cfg_error(ctx, cfg_line(kn), full, "unknown key");
        if (cfg_mark_seen(ctx, full, cfg_line(kn)) != 0)
            return cfg_error(ctx, cfg_line(kn), full, "duplicate key (first at line %d)",
                             cfg_seen_line(ctx, full));
        if (cfg_set_value(ctx, doc, k, vn, full, base) != 0)
            return -1;
    }
    return 0;
}

static int cfg_keyspace_name_ok(const char *s)
{
    size_t n = strlen(s);
    if (n < 1 || n > 63)
        return 0;
    for (; *s; s++)
        if (!((*s >= 'A' && *s <= 'Z') || (*s >= 'a' && *s <= 'z') || (*s >= '0' && *s <= '9') ||
              *s == '_' || *s == '-'))
            return 0;
    return 1;
}

/*
 * keyspaces: is a mapping name -> settings, appended after the implicit
 * default keyspace at index 0. A named keyspace's prefix defaults to
 * "name:"; "default" is reserved so it cannot be confused with index 0.
 */
static int cfg_parse_keyspaces(struct cfg_ctx *ctx, yaml_document_t *doc, const yaml_node_t *map)
{
    char full[SG_CFG_KEY_MAX];
    char buf[SG_CFG_SHOW_MAX + 8];
    struct sg_config *cfg = ctx->cfg;

    if (cfg_is_null(map))
        return 0;
    if (map->type != YAML_MAPPING_NODE)
        return cfg_error(ctx, cfg_line(map), "keyspaces", "expected a mapping of name: settings");
    for (yaml_node_pair_t *p = map->data.mapping.pairs.start; p < map->data.mapping.pairs.top;
         p++) {
        yaml_node_t *kn = yaml_document_get_node(doc, p->key);
        yaml_node_t *vn = yaml_document_get_node(doc, p->value);
        if (kn->type != YAML_SCALAR_NODE)
            return cfg_error(ctx, cfg_line(kn), "keyspaces", "keyspace names must be strings");
        const char *name = cfg_scalar(kn);
        snprintf(full, sizeof full, "keyspaces.%s", cfg_show(name, buf, sizeof buf));
        if (!cfg_keyspace_name_ok(name))
            return cfg_error(ctx, cfg_line(kn), full,
                             "keyspace name must match [A-Za-z0-9_-]{1,63}");
        if (strcmp(name, "default") == 0)
            return cfg_error(ctx, cfg_line(kn), full,
                             "'default' is reserved (the default keyspace is implicit)");
        if (cfg_mark_seen(ctx, full, cfg_line(kn)) != 0)
            return cfg_error(ctx, cfg_line(kn), full, "duplicate keyspace (first at line %d)",
                             cfg_seen_line(ctx, full));
        if (cfg->n_keyspaces == SG_MAX_KEYSPACES)
            return cfg_error(ctx, cfg_line(kn), full, "at most %d named keyspaces",
                             SG_MAX_KEYSPACES - 1);
        struct sg_keyspace_config *ks = &cfg->keyspaces[cfg->n_keyspaces];
        memset(ks, 0, sizeof *ks);
        snprintf(ks->name, sizeof ks->name, "%s", name);
        snprintf(ks->prefix, sizeof ks->prefix, "%s:", name);
        ks->compression = SG_COMPRESS_OFF;
        ks->compress_threshold = SG_CFG_DEFAULT_THRESHOLD;
        cfg->n_keyspaces++;
        if (cfg_parse_map(ctx, doc, vn, keyspace_keys, full, (char *)ks) != 0)
            return -1;
    }
    return 0;
}

/* ---- whole-config checks ------------------------------------------------- */

static int cfg_check_le(struct cfg_ctx *ctx, uint64_t a, const char *akey, uint64_t b,
                        const char *bkey)
{
    if (a <= b)
        return 0;
    return cfg_error(ctx, cfg_line_of(ctx, akey, bkey, NULL), akey,
                     "%llu must not exceed %s (%llu)", (unsigned long long)a, bkey,
                     (unsigned long long)b);
}

static int cfg_validate_keyspaces(struct cfg_ctx *ctx)
{
    char key[SG_CFG_KEY_MAX], other[SG_CFG_KEY_MAX];
    const struct sg_config *cfg = ctx->cfg;

    for (int i = 1; i < cfg->n_keyspaces; i++) {
        const struct sg_keyspace_config *ks = &cfg->keyspaces[i];
        snprintf(key, sizeof key, "keyspaces.%s.prefix", ks->name);
        snprintf(other, sizeof other, "keyspaces.%s", ks->name);
        if (ks->prefix[0] == '\0')
            return cfg_error(ctx, cfg_line_of(ctx, key, other, NULL), key,
                             "must not be empty (that is the default keyspace)");
        for (int j = 1; j < i; j++)
            if (strcmp(cfg->keyspaces[j].prefix, ks->prefix) == 0)
                return cfg_error(ctx, cfg_line_of(ctx, key, other, NULL), key,
                                 "'%s' is already the prefix of keyspace '%s'", ks->prefix,
                                 cfg->keyspaces[j].name);
        if (ks->max_ttl_ms != 0) {
            snprintf(key, sizeof key, "keyspaces.%s.default_ttl_ms", ks->name);
            snprintf(other, sizeof other, "keyspaces.%s.max_ttl_ms", ks->name);
            if (cfg_check_le(ctx, ks->default_ttl_ms, key, ks->max_ttl_ms, other) != 0)
                return -1;
        }
        snprintf(key, sizeof key, "keyspaces.%s.max_value_bytes", ks->name);
        if (cfg_check_le(ctx, ks->max_value_bytes, key, cfg->max_value_bytes,
                         "limits.max_value_bytes") != 0)
            return -1;
    }
    return 0;
}

/*
 * Checks that need the whole file: required keys (reported at the line of
 * their section, or line 1 when the section is absent) and limits that
 * depend on each other.
 */
static int cfg_validate(struct cfg_ctx *ctx)
{
    struct sg_config *cfg = ctx->cfg;

    if (cfg->n_seeds == 0)
        return cfg_error(ctx, cfg_line_of(ctx, "redis.seeds", "redis", NULL), "redis.seeds",
                         "required: at least one \"host:port\"");
    if (!cfg->plaintext) {
        if (cfg->tls_cert[0] == '\0')
            return cfg_error(ctx, cfg_line_of(ctx, "tls.cert", "tls", NULL), "tls.cert",
                             "required unless listen.plaintext is true");
        if (cfg->tls_key[0] == '\0')
            return cfg_error(ctx, cfg_line_of(ctx, "tls.key", "tls", NULL), "tls.key",
                             "required unless listen.plaintext is true");
    }
    if (cfg->tls_client_ca[0] == '\0')
        cfg->tls_require_client_cert = 0;
    if (cfg->proxy_protocol != SG_PP_OFF && cfg->n_proxy_trusted == 0)
        return cfg_error(ctx,
                         cfg_line_of(ctx, "listen.proxy_trusted", "listen.proxy_protocol", NULL),
                         "listen.proxy_trusted",
                         "required when listen.proxy_protocol is on: the networks of the load "
                         "balancers allowed to send a PROXY header");
    if (cfg->redis_tls_cert[0] != '\0' && cfg->redis_tls_key[0] == '\0')
        return cfg_error(ctx, cfg_line_of(ctx, "redis.tls.cert", NULL), "redis.tls.key",
                         "required when redis.tls.cert is set");
    if (cfg->redis_tls_key[0] != '\0' && cfg->redis_tls_cert[0] == '\0')
        return cfg_error(ctx, cfg_line_of(ctx, "redis.tls.key", NULL), "redis.tls.cert",
                         "required when redis.tls.key is set");

    if (cfg->max_output_bytes != 0 &&
        cfg_check_le(ctx, cfg->output_high_watermark, "limits.output_high_watermark",
                     cfg->max_output_bytes, "limits.max_output_bytes") != 0)
        return -1;
    if (cfg->max_buffered_bytes != 0 && cfg->max_output_bytes != 0 &&
        cfg_check_le(ctx, cfg->max_output_bytes, "limits.max_output_bytes", cfg->max_buffered_bytes,
                     "limits.max_buffered_bytes") != 0)
        return -1;
    if (cfg_check_le(ctx, cfg->max_key_bytes, "limits.max_key_bytes", cfg->max_frame_bytes,
                     "limits.max_frame_bytes") != 0 ||
        cfg_check_le(ctx, cfg->max_value_bytes, "limits.max_value_bytes", cfg->max_frame_bytes,
                     "limits.max_frame_bytes") != 0 ||
        cfg_check_le(ctx, cfg->max_batch_bytes, "limits.max_batch_bytes", cfg->max_frame_bytes,
                     "limits.max_frame_bytes") != 0 ||
        cfg_check_le(ctx, cfg->request_deadline_ms, "limits.request_deadline_ms",
                     cfg->max_deadline_ms, "limits.max_deadline_ms") != 0 ||
        cfg_check_le(ctx, cfg->topology_min_interval_ms, "redis.topology_min_interval_ms",
                     cfg->topology_refresh_ms, "redis.topology_refresh_ms") != 0 ||
        cfg_check_le(ctx, cfg->retry_backoff_ms, "redis.retry_backoff_ms",
                     cfg->reconnect_backoff_max_ms, "redis.reconnect_backoff_max_ms") != 0)
        return -1;
    return cfg_validate_keyspaces(ctx);
}

/* ---- reload ---------------------------------------------------------------- */

enum cfg_cmp { CMP_STR, CMP_MEM, CMP_SET };

/* The keys a reload may not change, and how to compare each. */
static const struct {
    const char *key;
    size_t off, size;
    enum cfg_cmp cmp;
    const char *why;
} restart_keys[] = {
    {"listen.address", CF(listen.host), CMP_STR, "the listening sockets are bound at start"},
    {"listen.port", CF(listen.port), CMP_MEM, "the listening sockets are bound at start"},
    {"listen.plaintext", CF(plaintext), CMP_MEM,
     "TLS on the client port is turned on or off only by a restart"},
    {"listen.workers", CF(workers), CMP_MEM, "worker threads are started at start"},
    {"listen.proxy_protocol", CF(proxy_protocol), CMP_MEM,
     "what a connection must start with is fixed for the listener's life"},
    {"listen.proxy_trusted", CF(proxy_trusted), CMP_MEM,
     "what a connection must start with is fixed for the listener's life"},
    {"listen.proxy_trusted", CF(n_proxy_trusted), CMP_MEM,
     "what a connection must start with is fixed for the listener's life"},
    {"tls.client_ca", CF(tls_client_ca), CMP_SET,
     "client-certificate verification is turned on or off only by a restart"},
    {"tls.require_client_cert", CF(tls_require_client_cert), CMP_MEM,
     "client-certificate verification is turned on or off only by a restart"},
    {"redis.tls.enabled", CF(redis_tls), CMP_MEM, "the Redis TLS context is built at start"},
    {"redis.tls.ca", CF(redis_tls_ca), CMP_STR, "the Redis TLS context is built at start"},
    {"redis.tls.cert", CF(redis_tls_cert), CMP_STR, "the Redis TLS context is built at start"},
    {"redis.tls.key", CF(redis_tls_key), CMP_STR, "the Redis TLS context is built at start"},
    {"redis.seeds", CF(seeds), CMP_MEM, "the topology manager keeps the values it started with"},
    {"redis.seeds", CF(n_seeds), CMP_MEM, "the topology manager keeps the values it started with"},
    {"redis.username", CF(redis_username), CMP_STR,
     "the topology manager keeps the values it started with"},
    {"redis.password", CF(redis_password), CMP_STR,
     "the topology manager keeps the values it started with"},
    {"redis.connect_timeout_ms", CF(connect_timeout_ms), CMP_MEM,
     "the topology manager keeps the values it started with"},
    {"redis.topology_refresh_ms", CF(topology_refresh_ms), CMP_MEM,
     "the topology manager keeps the values it started with"},
    {"redis.topology_min_interval_ms", CF(topology_min_interval_ms), CMP_MEM,
     "the topology manager keeps the values it started with"},
    {"admin.address", CF(admin.host), CMP_STR, "the admin listener is bound at start"},
    {"admin.port", CF(admin.port), CMP_MEM, "the admin listener is bound at start"},
};
_Static_assert(sizeof restart_keys / sizeof restart_keys[0] == SG_CFG_RESTART_KEYS,
               "SG_CFG_RESTART_KEYS must match restart_keys");

/* The line of each restart-only key (or of its section) in this file. */
static void cfg_record_restart_lines(struct cfg_ctx *ctx)
{
    char section[SG_CFG_KEY_MAX];
    for (int i = 0; i < SG_CFG_RESTART_KEYS; i++) {
        const char *key = restart_keys[i].key;
        const char *dot = strrchr(key, '.');
        snprintf(section, sizeof section, "%.*s", dot ? (int)(dot - key) : 0, key);
        int line = cfg_seen_line(ctx, key);
        if (line == 0 && section[0] != '\0')
            line = cfg_seen_line(ctx, section);
        ctx->cfg->restart_line[i] = line;
    }
}

int sg_config_reload_check(const struct sg_config *running, const struct sg_config *next, char *err,
                           size_t errlen)
{
    for (int i = 0; i < SG_CFG_RESTART_KEYS; i++) {
        const char *a = (const char *)running + restart_keys[i].off;
        const char *b = (const char *)next + restart_keys[i].off;
        int same;
        switch (restart_keys[i].cmp) {
        case CMP_STR:
            same = strcmp(a, b) == 0;
            break;
        case CMP_SET:
            same = (a[0] != '\0') == (b[0] != '\0');
            break;
        default:
            same = memcmp(a, b, restart_keys[i].size) == 0;
            break;
        }
        if (same)
            continue;
        int line = next->restart_line[i] ? next->restart_line[i] : 1;
        if (err != NULL && errlen > 0)
            snprintf(err, errlen,
                     "%s:%d: key '%s': changed, but only a restart can change it (%s); "
                     "the file is refused as a whole",
                     next->path, line, restart_keys[i].key, restart_keys[i].why);
        return -1;
    }
    return 0;
}

/* ---- entry points -------------------------------------------------------- */

static int cfg_syntax_error(struct cfg_ctx *ctx, const yaml_parser_t *parser)
{
    const char *problem = parser->problem != NULL ? parser->problem : "cannot parse";
    int line = (int)parser->problem_mark.line + 1;
    if (parser->error == YAML_READER_ERROR)
        return cfg_raw_error(ctx, "%s:%d: YAML syntax error: %s at byte %zu", ctx->name, line,
                             problem, parser->problem_offset);
    if (parser->context != NULL)
        return cfg_raw_error(ctx, "%s:%d: YAML syntax error: %s (%s at line %d)", ctx->name, line,
                             problem, parser->context, (int)parser->context_mark.line + 1);
    return cfg_raw_error(ctx, "%s:%d: YAML syntax error: %s", ctx->name, line, problem);
}

/*
 * Load the one document from parser into ctx->cfg and validate it. A second
 * document in the same stream is refused rather than silently ignored.
 */
static int cfg_parse(struct cfg_ctx *ctx, yaml_parser_t *parser)
{
    yaml_document_t doc, extra;
    if (!yaml_parser_load(parser, &doc))
        return cfg_syntax_error(ctx, parser);
    yaml_node_t *root = yaml_document_get_root_node(&doc);
    int rc = 0;
    if (root != NULL)
        rc = cfg_parse_map(ctx, &doc, root, top_keys, "", (char *)ctx->cfg);
    yaml_document_delete(&doc);
    if (rc != 0)
        return -1;
    if (!yaml_parser_load(parser, &extra))
        return cfg_syntax_error(ctx, parser);
    root = yaml_document_get_root_node(&extra);
    int line = cfg_line(root);
    yaml_document_delete(&extra);
    if (root != NULL)
        return cfg_raw_error(ctx, "%s:%d: only one YAML document is allowed", ctx->name, line);
    return cfg_validate(ctx);
}

/*
 * Runs the parse on a fresh ctx and scratch config, copying into cfg only
 * on success. The ctx is large (the seen-keys table), so it lives on the heap.
 */
static int cfg_load_with(struct sg_config *cfg, yaml_parser_t *parser, const char *name,
                         const char *basedir, const char *stored_path, char *err, size_t errlen)
{
    struct cfg_ctx *ctx = sg_calloc(1, sizeof *ctx);
    struct sg_config *tmp = sg_malloc(sizeof *tmp);
    sg_config_defaults(tmp);
    snprintf(tmp->path, sizeof tmp->path, "%s", stored_path);
    ctx->name = name;
    ctx->cfg = tmp;
    ctx->err = err;
    ctx->errlen = errlen;
    snprintf(ctx->basedir, sizeof ctx->basedir, "%s", basedir);
    int rc = cfg_parse(ctx, parser);
    if (rc == 0) {
        cfg_record_restart_lines(ctx);
        *cfg = *tmp;
    }
    free(tmp);
    free(ctx);
    return rc;
}

void sg_config_defaults(struct sg_config *cfg)
{
    memset(cfg, 0, sizeof *cfg);
    snprintf(cfg->listen.host, sizeof cfg->listen.host, "127.0.0.1");
    cfg->listen.port = 7420;
    cfg->tls_require_client_cert = 1;

    cfg->max_frame_bytes = 8u << 20;
    cfg->max_key_bytes = 1024;
    cfg->max_value_bytes = 4u << 20;
    cfg->max_batch_keys = 1000;
    cfg->max_batch_bytes = 8u << 20;
    cfg->max_connections = 20000;
    cfg->max_inflight = 1024;
    cfg->output_high_watermark = 4u << 20;
    cfg->max_output_bytes = 32u << 20;
    cfg->max_buffered_bytes = 256ull << 20;
    cfg->request_deadline_ms = 1000;
    cfg->max_deadline_ms = 30000;
    cfg->handshake_timeout_ms = 5000;
    cfg->idle_timeout_ms = 0;
    cfg->drain_timeout_ms = 5000;
    cfg->write_gather_us = 200;

    cfg->connect_timeout_ms = 1000;
    cfg->topology_refresh_ms = 5000;
    cfg->topology_min_interval_ms = 100;
    cfg->max_redirects = 5;
    cfg->invalidate_page_keys = 200;
    cfg->invalidate_pause_ms = 1;
    cfg->retry_backoff_ms = 20;
    cfg->reconnect_backoff_max_ms = 1000;
    cfg->link_stall_ms = 5000;
    cfg->max_link_pending = 100000;
    cfg->coalesce_gets = 1;

    snprintf(cfg->admin.host, sizeof cfg->admin.host, "127.0.0.1");
    cfg->admin.port = 0;
    cfg->log_level = SG_LOG_INFO;

    cfg->n_keyspaces = 1;
    cfg->keyspaces[0].compression = SG_COMPRESS_OFF;
    cfg->keyspaces[0].compress_threshold = SG_CFG_DEFAULT_THRESHOLD;
}

int sg_config_load(struct sg_config *cfg, const char *path, char *err, size_t errlen)
{
    char resolved[PATH_MAX], dir[PATH_MAX];
    struct stat st;
    FILE *f = fopen(path, "rb");
    if (f == NULL) {
        int e = errno;
        if (err != NULL && errlen > 0)
            snprintf(err, errlen, "%s: cannot open: %s", path, strerror(e));
        return -1;
    }
    if (fstat(fileno(f), &st) == 0 && S_ISDIR(st.st_mode)) {
        fclose(f);
        if (err != NULL && errlen > 0)
            snprintf(err, errlen, "%s: cannot open: %s", path, strerror(EISDIR));
        return -1;
    }
    if (realpath(path, resolved) == NULL)
        snprintf(resolved, sizeof resolved, "%s", path);
    snprintf(dir, sizeof dir, "%s", resolved);
    char *d = dirname(dir);

    yaml_parser_t parser;
    if (!yaml_parser_initialize(&parser)) {
        fclose(f);
        if (err != NULL && errlen > 0)
            snprintf(err, errlen, "%s: cannot initialize the YAML parser", path);
        return -1;
    }
    yaml_parser_set_input_file(&parser, f);
    int rc = cfg_load_with(cfg, &parser, path, d, resolved, err, errlen);
    yaml_parser_delete(&parser);
    fclose(f);
    return rc;
}

int sg_config_load_string(struct sg_config *cfg, const char *yaml, const char *name, char *err,
                          size_t errlen)
{
    char cwd[PATH_MAX];
    if (name == NULL)
        name = "<string>";
    if (getcwd(cwd, sizeof cwd) == NULL)
        snprintf(cwd, sizeof cwd, ".");

    yaml_parser_t parser;
    if (!yaml_parser_initialize(&parser)) {
        if (err != NULL && errlen > 0)
            snprintf(err, errlen, "%s: cannot initialize the YAML parser", name);
        return -1;
    }
    yaml_parser_set_input_string(&parser, (const unsigned char *)yaml, strlen(yaml));
    int rc = cfg_load_with(cfg, &parser, name, cwd, name, err, errlen);
    yaml_parser_delete(&parser);
    return rc;
}

const struct sg_keyspace_config *sg_config_keyspace(const struct sg_config *cfg, const char *name)
{
    if (name[0] == '\0')
        return &cfg->keyspaces[0]; /* the default keyspace: most requests */
    for (int i = 1; i < cfg->n_keyspaces; i++)
        if (strcmp(cfg->keyspaces[i].name, name) == 0)
            return &cfg->keyspaces[i];
    return NULL;
}
