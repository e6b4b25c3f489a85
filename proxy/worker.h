/*
 * worker - one thread, one event_base. Owns its sessions, its shard links and
 * its listening socket (SO_REUSEPORT), and holds a reference to the topology
 * snapshot it routes with. Share-nothing: the only cross-thread hand-offs
 * are the mailbox (topology, config) and the stop/drain requests, all
 * through one eventfd documented below.
 */
#ifndef SG_WORKER_H
#define SG_WORKER_H

#include <pthread.h>
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

struct sg_worker {
    int id;
    pthread_t thread;
    struct event_base *base;
    const struct sg_config *cfg;
    SSL_CTX *server_tls; /* NULL when plaintext */
    SSL_CTX *redis_tls;  /* NULL when redis.tls is off */
    struct sg_listener *listener;
    struct sg_topology *topo; /* owned reference */
    struct sg_shardlink **links;
    int n_links, cap_links;
    struct sg_shardlink **master_links; /* by shard index of topo, lazily */
    TAILQ_HEAD(, sg_session) sessions;
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
    const struct sg_config *mbox_cfg;
    SSL_CTX *mbox_tls;
    int mbox_has_cfg;
};

/* Process-wide connection count, for limits.max_connections. */
extern _Atomic uint32_t sg_connections;

struct sg_worker *sg_worker_new(int id, const struct sg_config *cfg, SSL_CTX *server_tls,
                                SSL_CTX *redis_tls, struct sg_topology *topo, char *err,
                                size_t errlen);
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
 * Thread-safe hand-off of a reloaded config (the caller keeps cfg alive
 * until every worker is joined) and its server TLS context (a reference is
 * taken; NULL when plaintext). New connections and new requests use it.
 */
void sg_worker_post_config(struct sg_worker *w, const struct sg_config *cfg, SSL_CTX *tls);

/* Thread-safe hand-off of a new topology (takes a reference to t). */
void sg_worker_post_topology(struct sg_worker *w, struct sg_topology *t);

/* The link to the master of shard sh of the current topology (cached). */
struct sg_shardlink *sg_worker_shard_link(struct sg_worker *w, uint16_t sh);
/* The link to addr, created on first use (readonly: a replica link). */
struct sg_shardlink *sg_worker_link(struct sg_worker *w, const struct sg_addr *addr, int readonly);

#endif
