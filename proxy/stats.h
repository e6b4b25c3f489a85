/*
 * stats - per-worker counters. Each worker writes only its own counters
 * (relaxed atomic load+store, no lock prefix on the hot path); a scrape
 * (STATS op, /metrics) sums every worker's with relaxed loads.
 *
 * Besides the flat counters of the STATS op, each worker keeps request
 * latency histograms and response counts per op (and code), counters per
 * keyspace and per backend node. Keyspaces and nodes are counted in slots
 * handed out by name for the life of the process (metrics.h, sg_names), so
 * a reload that renames or reorders keyspaces leaves each keyspace's
 * counters with its name.
 */
#ifndef SG_STATS_H
#define SG_STATS_H

#include <stdatomic.h>
#include <stdint.h>
#include <time.h>

#include "metrics.h"

/* X-macro lists, laid out by hand: clang-format never settles on one. */
/* clang-format off */
#define SG_STATS_FIELDS(X) \
    X(connections_accepted) X(connections_active) X(connections_rejected) X(requests) \
    X(responses) X(errors) X(timeouts) X(bad_frames) \
    X(moved) X(ask) X(tryagain) X(clusterdown) \
    X(link_resets) X(backend_writes) X(backend_commands) X(backend_replies) \
    X(retries) X(orphaned_replies) X(coalesced_gets) X(bytes_in) \
    X(proxy_untrusted) X(proxy_bad_header) X(proxy_timeouts) X(connections_rejected_ip) \
    X(bytes_out) X(link_protocol_errors) X(link_format_errors) X(output_limit_closes) \
    X(budget_evictions) X(buffered_bytes) X(tls_failures) X(write_gather_timeouts)
/* clang-format on */

/* Per-keyspace counters (one set per keyspace per worker). */
/* X-macro lists, laid out by hand: clang-format never settles on one. */
/* clang-format off */
#define SG_KS_STATS_FIELDS(X) \
    X(hits) X(misses) X(sets) X(bytes_raw) \
    X(bytes_stored) X(invalidated) X(lease_grants) X(lease_waits) \
    X(lease_rejects) X(version_conflicts) X(corrupt_values)
/* clang-format on */

struct sg_ks_stats {
#define SG_STATS_DECL(name) _Atomic uint64_t name;
    SG_KS_STATS_FIELDS(SG_STATS_DECL)
#undef SG_STATS_DECL
};

/*
 * One backend node (address and role) as seen by one worker. links[s] is 1
 * for the state s (enum sg_link_state) of this worker's link to the node and
 * 0 for the others, so the sum over workers counts links per state.
 */
struct sg_node_stats {
    _Atomic uint64_t hist[SG_HIST_SLOTS]; /* command -> reply latency */
    _Atomic uint64_t sum_us;
    _Atomic uint64_t pending; /* gauge: commands awaiting a reply */
    _Atomic uint64_t links[3];
    _Atomic uint64_t resets;
};

#define SG_STATS_KEYSPACES 128 /* keyspace names over the life of the process */
#define SG_STATS_NODES 256     /* backend node/role pairs, likewise */

struct sg_stats {
#define SG_STATS_DECL(name) _Atomic uint64_t name;
    SG_STATS_FIELDS(SG_STATS_DECL)
#undef SG_STATS_DECL
    _Atomic uint64_t inflight; /* gauge: requests started, not answered */
    _Atomic uint64_t req_hist[SG_OP_N][SG_HIST_SLOTS];
    _Atomic uint64_t req_sum_us[SG_OP_N];
    _Atomic uint64_t responses_by[SG_OP_N][SG_CODE_N];
    struct sg_ks_stats ks[SG_STATS_KEYSPACES];
    struct sg_node_stats node[SG_STATS_NODES];
    /* Not counters (everything above is summed as uint64_t words): the
     * worker's own cache of keyspace config -> slot. */
    struct {
        const void *ks;
        int slot;
    } ks_cache[32];
    /* A clock reading shared by what one callback does (0: none): set while
     * a client read's requests are started and while a batch of replies is
     * taken, so a pipelined GET costs a fraction of a clock read
     * (sg_stats_clock). */
    uint64_t clock_us;
};

#define SG_STAT_ADD(st, field, n)                                                         \
    atomic_store_explicit(&(st)->field,                                                   \
                          atomic_load_explicit(&(st)->field, memory_order_relaxed) + (n), \
                          memory_order_relaxed)
#define SG_STAT_INC(st, field) SG_STAT_ADD(st, field, 1)
#define SG_STAT_DEC(st, field) SG_STAT_ADD(st, field, (uint64_t)-1)
#define SG_STAT_SET(st, field, v) atomic_store_explicit(&(st)->field, (v), memory_order_relaxed)

/* Monotonic microseconds, for latencies. */
static inline uint64_t sg_stats_now_us(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000u + (uint64_t)ts.tv_nsec / 1000u;
}

/* The callback's shared clock reading, or a fresh one. */
static inline uint64_t sg_stats_clock(const struct sg_stats *st)
{
    return st->clock_us ? st->clock_us : sg_stats_now_us();
}

/* Share one clock reading (the one already shared, if any) from here to
 * sg_stats_clock_drop, which is given what this returns. */
static inline uint64_t sg_stats_clock_hold(struct sg_stats *st)
{
    uint64_t outer = st->clock_us;
    if (outer == 0)
        st->clock_us = sg_stats_now_us();
    return outer;
}

static inline void sg_stats_clock_drop(struct sg_stats *st, uint64_t outer)
{
    st->clock_us = outer;
}

/* A request of op (proto number) answered with code after us microseconds. */
static inline void sg_stats_request_done(struct sg_stats *st, int op, int code, uint64_t us)
{
    int o = sg_metrics_op_index(op);
    SG_STAT_INC(st, req_hist[o][sg_hist_bucket(us)]);
    SG_STAT_ADD(st, req_sum_us[o], us);
    SG_STAT_INC(st, responses_by[o][sg_metrics_code_index(code)]);
}

/* A reply from node slot arrived us microseconds after its command left. */
static inline void sg_stats_backend_reply(struct sg_stats *st, int slot, uint64_t us)
{
    SG_STAT_INC(st, node[slot].hist[sg_hist_bucket(us)]);
    SG_STAT_ADD(st, node[slot].sum_us, us);
}

struct sg_keyspace_config;
struct sg_addr;
/*
 * Counter slot of keyspace ks (by its name) for this worker's st; cached
 * per worker by ks's address, so this is one pointer hash per request.
 */
int sg_stats_keyspace_slot(struct sg_stats *st, const struct sg_keyspace_config *ks);
/* Forget the cached slots: called when a config snapshot is let go, before
 * its memory (and so a keyspace's address) can come back in another one. */
void sg_stats_forget_keyspaces(struct sg_stats *st);
/* Counter slot of a backend node (any thread; locks only for a new one). */
int sg_stats_node_slot(const struct sg_addr *addr, int readonly);

/* Callback for each counter: name and summed value. */
typedef void (*sg_stats_visit_fn)(const char *name, uint64_t value, void *arg);

struct sg_core;
/* Sum every worker's counters and visit them, plus process-wide ones. */
void sg_stats_collect(struct sg_core *const *workers, int n, sg_stats_visit_fn fn, void *arg);

/* The STATS op's answer: every counter of sg_stats_collect as resp's stats
 * entries (allocated; sg_stats_response_free releases them). */
struct Slotgate__V1__Response;
void sg_stats_response(struct sg_core *const *workers, int n, struct Slotgate__V1__Response *resp);
void sg_stats_response_free(struct Slotgate__V1__Response *resp);

/*
 * Sum every worker's counters and append them to out in the Prometheus
 * text format (the slotgate_* families of docs/OPERATIONS.md that come
 * from counters; admin.c adds process and topology families).
 */
void sg_stats_prometheus(struct sg_core *const *workers, int n, struct sg_text *out);

#endif
