/*
 * worker - one thread, one event_base. Owns its sessions, its shard links and
 * its listening socket (SO_REUSEPORT), and holds a reference to the topology
 * snapshot it routes with and to the config snapshot (config + server TLS
 * context) it serves with. Share-nothing: the only cross-thread hand-offs
 * are the mailbox (topology, config snapshot) and the stop/drain requests,
 * all through one eventfd documented below.
 */
#ifndef SG_WORKER_H
#define SG_WORKER_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>
#include <sys/queue.h>

#include <event2/event.h>
#include <openssl/ssl.h>

#include "config.h"
#include "stats.h"
#include "topology.h"

struct sg_session;
struct sg_shardlink;
struct sg_listener;
struct sg_coalesce;
struct sg_request;
struct sg_keyspace_config;

/*
 * The reloadable configuration as one immutable, reference-counted object:
 * the validated config (keyspace table included) and the server TLS
 * context built from it. main builds one at start and one per accepted
 * SIGHUP, publishes it (sg_snapshot_publish) and posts it to every worker,
 * which swaps to it between two events of its loop. Nothing in it changes
 * after sg_snapshot_new; the last sg_snapshot_unref frees it and its TLS
 * context (connections already accepted hold their own SSL reference).
 */
struct sg_snapshot {
    atomic_int refs;
    uint64_t generation; /* 1 at start, +1 per accepted reload */
    struct sg_config cfg;
    SSL_CTX *server_tls; /* NULL when listen.plaintext */
};

/* A copy of cfg with server_tls (ownership taken, may be NULL); one reference. */
struct sg_snapshot *sg_snapshot_new(const struct sg_config *cfg, SSL_CTX *server_tls,
                                    uint64_t generation);
struct sg_snapshot *sg_snapshot_ref(struct sg_snapshot *s);
/* Drop a reference (NULL is fine); the last one frees the snapshot. */
void sg_snapshot_unref(struct sg_snapshot *s);

/*
 * The process-wide current snapshot, for threads that are not workers (the
 * admin endpoints and STATS read keyspace names from it). publish (main
 * thread) takes a reference to s and drops the previous one. acquire (any
 * thread) returns the current one with a reference the caller drops with
 * sg_snapshot_release, or NULL before the first publish. Both take a
 * mutex for a pointer swap / refcount bump: never on the request path.
 */
void sg_snapshot_publish(struct sg_snapshot *s);
struct sg_snapshot *sg_snapshot_acquire(void);
void sg_snapshot_release(struct sg_snapshot *s);

/* How many requests of a worker started under one snapshot are in flight. */
struct sg_snapshot_use {
    struct sg_snapshot *snap; /* owned reference */
    uint32_t requests;        /* started, not yet answered */
    uint32_t lingering;       /* answered, but sub-ops were still on a link */
};

struct sg_worker {
    int id;
    pthread_t thread;
    struct event_base *base;
    /* The snapshot in force: new connections and new requests use it.
     * cfg and server_tls point into it (no reference of their own). */
    struct sg_snapshot *snap;
    const struct sg_config *cfg;
    SSL_CTX *server_tls; /* NULL when plaintext */
    /* Snapshots still referenced by requests in flight (the current one
     * first); an older one is dropped once nothing can reach it. */
    struct sg_snapshot_use *uses;
    int n_uses, cap_uses;
    SSL_CTX *redis_tls; /* NULL when redis.tls is off */
    struct sg_listener *listener;
    struct sg_topology *topo; /* owned reference */
    struct sg_shardlink **links;
    int n_links, cap_links;
    struct sg_shardlink **master_links; /* by shard index of topo, lazily */
    TAILQ_HEAD(, sg_session) sessions;
    /* Bytes in this worker's client buffers (session.c keeps it, from
     * evbuffer callbacks); its share of limits.max_buffered_bytes is
     * max_buffered_bytes / n_all. */
    uint64_t buffered;
    struct sg_stats stats;
    struct sg_ks_stats ks_stats[SG_MAX_KEYSPACES];
    struct sg_coalesce *coalesce;    /* identical in-flight GETs */
    uint32_t replica_rr;             /* round-robin over replicas */
    struct sg_request *request_pool; /* idle request objects */
    uint32_t request_pool_n;
    struct sg_worker **all; /* every worker, for STATS */
    int n_all;
    /* Cross-thread notifications: another thread sets bits in notify_bits
     * and writes to the eventfd; the worker's loop reads both. The event
     * base itself takes no locks. Mailbox contents are under mbox_lock. */
    int notify_fd;
    _Atomic unsigned notify_bits;
    struct event *notify_ev;
    pthread_mutex_t mbox_lock;
    struct sg_topology *mbox_topo;
    struct event *drain_timer;
    int draining;
    /* Config mailbox (SIGHUP reload), under mbox_lock like the topology. */
    struct sg_snapshot *mbox_snap;
    /* An admin /clients listing to answer (clientlist.c), under mbox_lock. */
    struct sg_clientlist *mbox_clients;
    /* Written one byte when the worker's loop has ended (main waits for
     * all of them while it keeps serving /readyz during a drain); -1: none. */
    int exit_fd;
    /* Rate limit of the PROXY-header rejection log lines (session.c). */
    uint64_t pp_log_ms;
    uint32_t pp_log_suppressed;
};

/* Process-wide connection count, for limits.max_connections. */
extern _Atomic uint32_t sg_connections;

/* snap: a reference is taken. */
struct sg_worker *sg_worker_new(int id, struct sg_snapshot *snap, SSL_CTX *redis_tls,
                                struct sg_topology *topo, char *err, size_t errlen);
int sg_worker_start(struct sg_worker *w);
/* Thread-safe: ask the worker to stop; then join with sg_worker_join. */
void sg_worker_stop(struct sg_worker *w);
void sg_worker_join(struct sg_worker *w);
void sg_worker_free(struct sg_worker *w);

/*
 * Thread-safe: stop accepting, tell idle clients SHUTTING_DOWN and close,
 * let busy ones finish their in-flight requests first; the loop ends when
 * no session is left or after limits.drain_timeout_ms.
 */
void sg_worker_drain(struct sg_worker *w);
/* Called by sessions as they close while draining. */
void sg_worker_session_closed(struct sg_worker *w);

/*
 * Thread-safe hand-off of a reloaded config snapshot (a reference is
 * taken). The worker swaps to it between events; new connections and new
 * requests use it, requests in flight finish with the one they started on.
 */
void sg_worker_post_snapshot(struct sg_worker *w, struct sg_snapshot *snap);
/* Thread-safe: ask the worker to add its sessions to an admin listing (a
 * reference is taken; a listing still posted is superseded). */
struct sg_clientlist;
void sg_worker_post_clientlist(struct sg_worker *w, struct sg_clientlist *l);

/*
 * Worker thread only, used by sessions: a request has started (hold) or
 * been answered or orphaned (drop) under the snapshot whose keyspace table
 * holds ks (the request's r->ks). lingering: sub-ops of the request are
 * still on a shard link (answered by its deadline, or orphaned), and may
 * still read r->ks when their reply comes; the snapshot is then kept until
 * the worker's links have nothing pending.
 */
void sg_worker_snapshot_hold(struct sg_worker *w, const struct sg_keyspace_config *ks);
void sg_worker_snapshot_drop(struct sg_worker *w, const struct sg_keyspace_config *ks,
                             int lingering);

/* Thread-safe hand-off of a new topology (takes a reference to t). */
void sg_worker_post_topology(struct sg_worker *w, struct sg_topology *t);

/* The link to the master of shard sh of the current topology (cached). */
struct sg_shardlink *sg_worker_shard_link(struct sg_worker *w, uint16_t sh);
/* The link to addr, created on first use (readonly: a replica link). */
struct sg_shardlink *sg_worker_link(struct sg_worker *w, const struct sg_addr *addr, int readonly);

#endif
