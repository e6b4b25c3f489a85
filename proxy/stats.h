/*
 * stats - per-worker counters. Each worker writes only its own counters
 * (relaxed atomic load+store, no lock prefix on the hot path); a scrape
 * (STATS op, /metrics) sums every worker's with relaxed loads.
 */
#ifndef SG_STATS_H
#define SG_STATS_H

#include <stdatomic.h>
#include <stdint.h>

/* X-macro lists, laid out by hand: clang-format never settles on one. */
/* clang-format off */
#define SG_STATS_FIELDS(X) \
    X(connections_accepted) X(connections_active) X(connections_rejected) X(requests) \
    X(responses) X(errors) X(timeouts) X(bad_frames) \
    X(moved) X(ask) X(tryagain) X(clusterdown) \
    X(link_resets) X(backend_writes) X(backend_commands) X(backend_replies) \
    X(retries) X(orphaned_replies) X(coalesced_gets) X(bytes_in) \
    X(proxy_untrusted) X(proxy_bad_header) X(proxy_timeouts) X(connections_rejected_ip) \
    X(bytes_out)
/* clang-format on */

struct sg_stats {
#define SG_STATS_DECL(name) _Atomic uint64_t name;
    SG_STATS_FIELDS(SG_STATS_DECL)
#undef SG_STATS_DECL
};

#define SG_STAT_ADD(st, field, n)                                                         \
    atomic_store_explicit(&(st)->field,                                                   \
                          atomic_load_explicit(&(st)->field, memory_order_relaxed) + (n), \
                          memory_order_relaxed)
#define SG_STAT_INC(st, field) SG_STAT_ADD(st, field, 1)
#define SG_STAT_DEC(st, field) SG_STAT_ADD(st, field, (uint64_t)-1)

/* Callback for each counter: name and summed value. */
typedef void (*sg_stats_visit_fn)(const char *name, uint64_t value, void *arg);

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

struct sg_worker;
/* Sum every worker's counters and visit them, plus process-wide ones. */
void sg_stats_collect(struct sg_worker **workers, int n, sg_stats_visit_fn fn, void *arg);

#endif
