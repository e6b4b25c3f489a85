/*
 * worker - one thread, one event_base. Owns its sessions, its router (and
 * through it every shard link) and its listening socket (SO_REUSEPORT),
 * and holds a reference to the topology snapshot it routes with and to the
 * config snapshot (config + server TLS context) it serves with. Share-
 * nothing: the only cross-thread hand-offs are the mailbox (topology,
 * config snapshot, an admin listing) and the stop/drain requests, all
 * through one eventfd (worker.c). What the layers below need of it is in
 * its core (core.h); its own struct is private to worker.c.
 */
#ifndef SG_WORKER_H
#define SG_WORKER_H

#include <openssl/ssl.h>

#include "snapshot.h"
#include "topology.h"

struct sg_worker;
struct sg_core;
struct sg_clientlist;

/* snap, topo: references are taken. NULL with the reason in err. */
struct sg_worker *sg_worker_new(int id, struct sg_snapshot *snap, SSL_CTX *redis_tls,
                                struct sg_topology *topo, char *err, size_t errlen);
/* Before start: every worker's core (STATS, budget shares; the array
 * outlives the workers) and the fd written one byte when the loop ends. */
void sg_worker_set_all(struct sg_worker *w, struct sg_core *const *all, int n_all);
void sg_worker_set_exit_fd(struct sg_worker *w, int fd);
struct sg_core *sg_worker_core(struct sg_worker *w);

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

/*
 * Thread-safe hand-off of a reloaded config snapshot (a reference is
 * taken). The worker swaps to it between events; new connections and new
 * requests use it, requests in flight finish with the one they started on.
 */
void sg_worker_post_snapshot(struct sg_worker *w, struct sg_snapshot *snap);
/* Thread-safe: ask the worker to add its sessions to an admin listing (a
 * reference is taken; a listing still posted is superseded). */
void sg_worker_post_clientlist(struct sg_worker *w, struct sg_clientlist *l);
/* Thread-safe hand-off of a new topology (takes a reference to t). */
void sg_worker_post_topology(struct sg_worker *w, struct sg_topology *t);

#endif
