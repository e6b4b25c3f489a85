/*
 * metrics - the pure pieces behind /metrics: fixed latency buckets, the op
 * and code label tables, an append-only name table that gives keyspaces and
 * backend nodes a stable counter slot for the life of the process, and the
 * Prometheus text exposition writer (HELP/TYPE, escaped label values,
 * cumulative histogram buckets). No I/O, no libevent: unit-tested alone.
 */
#ifndef SG_METRICS_H
#define SG_METRICS_H

#include <pthread.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>

/* --- latency buckets -------------------------------------------------------- */

/* Upper bounds in microseconds (le="..."), ascending; one +Inf bucket more. */
#define SG_HIST_BOUNDS 16
#define SG_HIST_SLOTS (SG_HIST_BOUNDS + 1)
extern const uint32_t sg_hist_bounds_us[SG_HIST_BOUNDS];

/* Index of the bucket counting a duration of us microseconds (le is <=). */
static inline int sg_hist_bucket(uint64_t us)
{
    int i = 0;
    while (i < SG_HIST_BOUNDS && us > sg_hist_bounds_us[i])
        i++;
    return i;
}

/* --- op and code labels --------------------------------------------------- */

/* Ops as a dense index: 0 is "unknown" (op 0 or a number the proto lacks). */
#define SG_OP_N 15
static inline int sg_metrics_op_index(int op)
{
    switch (op) {
    case 1:
        return 1; /* ping */
    case 2:
        return 2; /* get */
    case 3:
        return 3; /* set */
    case 4:
        return 4; /* delete */
    case 5:
        return 5; /* expire */
    case 10:
        return 6; /* mget */
    case 11:
        return 7; /* mset */
    case 12:
        return 8; /* mdelete */
    case 20:
        return 9; /* invalidate */
    case 21:
        return 10; /* get_or_lease */
    case 22:
        return 11; /* set_with_lease */
    case 23:
        return 12; /* set_versioned */
    case 24:
        return 13; /* get_versioned */
    case 30:
        return 14; /* stats */
    default:
        return 0;
    }
}
/* "get", "mget", ... for index i; "unknown" for 0. */
const char *sg_metrics_op_name(int i);

/* Response codes as a dense index: the codes a Response can carry. */
#define SG_CODE_N 22
int sg_metrics_code_index(int code);
/* "ok", "not_found", "timeout", ... for index i; "other" for the last. */
const char *sg_metrics_code_name(int i);

/* --- stable slots by name ----------------------------------------------------- */

#define SG_NAMES_MAX 256
#define SG_NAME_LEN 272

/*
 * An append-only table of names. A name keeps its slot for the life of the
 * process, so counters kept per slot follow the name whatever a reload does
 * to the order of the config. Lookups are lock-free (names are written
 * before the count is published with release order and never change);
 * adding takes the mutex and happens once per name. When the table is full
 * every new name shares the last slot, named "(other)".
 */
struct sg_names {
    pthread_mutex_t lock;
    _Atomic int n;
    int cap; /* <= SG_NAMES_MAX, the last slot is the overflow */
    char name[SG_NAMES_MAX][SG_NAME_LEN];
};

/* cap slots, the last one for overflow (2 <= cap <= SG_NAMES_MAX). */
void sg_names_init(struct sg_names *t, int cap);
/* Slot of name, or -1 (lock-free; any thread). */
int sg_names_find(const struct sg_names *t, const char *name);
/* Slot of name, added if new (any thread; locks only to add). */
int sg_names_slot(struct sg_names *t, const char *name);
/* Slots in use (names 0..n-1 are readable). */
int sg_names_count(const struct sg_names *t);
/* Name of slot i < sg_names_count. */
const char *sg_names_get(const struct sg_names *t, int i);

/* --- exposition text ---------------------------------------------------------- */

/* A growable text buffer; free buf with free(). */
struct sg_text {
    char *buf;
    size_t len, cap;
};
void sg_text_printf(struct sg_text *t, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/*
 * Label value escaping per the text format: \ -> \\, " -> \", newline -> \n.
 * Writes at most outlen-1 bytes and a NUL (a value that does not fit is cut
 * before an escape, never inside one); returns the length written.
 */
size_t sg_metrics_escape(const char *in, char *out, size_t outlen);

/* "# HELP name help" and "# TYPE name type" (counter, gauge, histogram). */
void sg_metrics_family(struct sg_text *t, const char *name, const char *type, const char *help);
/*
 * One sample. labels is NULL or a NULL-terminated list of name, value
 * pairs; values are escaped here.
 */
void sg_metrics_u64(struct sg_text *t, const char *name, const char *const *labels, uint64_t v);
void sg_metrics_f64(struct sg_text *t, const char *name, const char *const *labels, double v);
/*
 * A histogram's samples: name_bucket{...,le="..."} cumulative over counts
 * (per-bucket, SG_HIST_SLOTS of them), name_sum in seconds, name_count.
 */
void sg_metrics_histogram(struct sg_text *t, const char *name, const char *const *labels,
                          const uint64_t counts[SG_HIST_SLOTS], uint64_t sum_us);

#endif
