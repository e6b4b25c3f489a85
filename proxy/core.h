/*
 * core - what one worker's data path shares, from its sessions down to its
 * shard links: the event loop, the config in force, the counters, and the
 * hooks through which a lower layer tells its owner something. The worker
 * owns one (worker.c, the only file that fills it in); every layer below
 * the worker reads it instead of the worker, so nothing below worker.c
 * includes worker.h. A data header: it has no functions of its own.
 *
 * Layers, each calling only downward (docs/ARCHITECTURE.md):
 *   main -> worker -> listener -> session -> request -> router -> shardlink -> conn
 * with the codecs (frame, resp, envelope, slot) and the data headers
 * (config, core, stats, topology) at the bottom.
 */
#ifndef SG_CORE_H
#define SG_CORE_H

#include <stdint.h>
#include <sys/queue.h>

#include <event2/event.h>
#include <openssl/ssl.h>

#include "config.h"
#include "stats.h"

struct sg_session;
struct sg_request;
struct sg_router;
struct sg_coalesce;

/*
 * Upward notifications, implemented by the core's owner (the worker; the
 * topology manager for its own links). Any of them may be NULL.
 */
struct sg_core_hooks {
    /* A session was freed (the worker ends a drain when none is left). */
    void (*session_closed)(void *owner);
    /* A request started / was answered under the config snapshot whose
     * keyspace table holds ks; lingering: its sub-ops are still on a link. */
    void (*snapshot_hold)(void *owner, const struct sg_keyspace_config *ks);
    void (*snapshot_drop)(void *owner, const struct sg_keyspace_config *ks, int lingering);
    /* The slot map may be stale (MOVED, CLUSTERDOWN, a link lost). */
    void (*topology_refresh)(void *owner);
};

struct sg_core {
    int id; /* the worker's number, for logs */
    struct event_base *base;
    const struct sg_config *cfg; /* the config snapshot in force */
    SSL_CTX *server_tls;         /* NULL when listen.plaintext */
    SSL_CTX *redis_tls;          /* NULL when redis.tls is off */
    struct sg_stats stats;
    /* Every worker's core (STATS sums them; a worker's budget share). */
    struct sg_core *const *all;
    int n_all;

    /* Session layer: this worker's sessions and their buffered bytes (its
     * share of limits.max_buffered_bytes is max_buffered_bytes / n_all);
     * rate limit of the PROXY-header rejection log lines. */
    TAILQ_HEAD(sg_session_list, sg_session) sessions;
    uint64_t buffered;
    uint64_t pp_log_ms;
    uint32_t pp_log_suppressed;

    /* Request layer: routing, identical-GET coalescing, idle requests. */
    struct sg_router *router;
    struct sg_coalesce *coalesce;
    struct sg_request *request_pool;
    uint32_t request_pool_n;
    /* Request deadlines by duration under one timer (deadline.h); NULL:
     * each request keeps a timer of its own. */
    struct sg_deadlines *deadlines;

    const struct sg_core_hooks *hooks;
    void *owner;
};

#endif
