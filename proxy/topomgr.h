/*
 * topomgr - the topology manager: discovers the cluster's slot map and
 * publishes every changed snapshot. It asks nodes CLUSTER SLOTS over shard
 * links (shardlink.h), the same client, TLS set-up and AUTH as the data
 * path, on an event loop of its own: at start-up on the caller's thread
 * (sg_topomgr_discover), then on the manager thread. It asks the known
 * masters, then their replicas, then the seeds, one at a time, each
 * attempt bounded by redis.connect_timeout_ms; refreshes come on a timer
 * (topology_refresh_ms) and on request, at most one per
 * topology_min_interval_ms however many requests arrive.
 */
#ifndef SG_TOPOMGR_H
#define SG_TOPOMGR_H

#include <signal.h>

#include <openssl/ssl.h>

#include "config.h"
#include "topology.h"

/* Called on the manager thread with each changed snapshot (the callee
 * takes its own references). */
typedef void (*sg_topomgr_publish_fn)(void *arg, struct sg_topology *t);

/*
 * Start-up: ask cfg's seeds until one answers, retrying every 200 ms and
 * logging the reason every 5 s, until *stop is set (then NULL). Returns a
 * snapshot with one reference. cfg and tls must outlive the manager.
 */
struct sg_topology *sg_topomgr_discover(const struct sg_config *cfg, SSL_CTX *tls,
                                        volatile sig_atomic_t *stop);
/* Start the manager thread, routing from initial (a reference is taken). */
int sg_topomgr_start(struct sg_topology *initial, sg_topomgr_publish_fn publish, void *arg);
/* Any thread, never blocks: refresh soon (MOVED, CLUSTERDOWN, a lost link). */
void sg_topomgr_request_refresh(void);
/* Stop the thread, close its links, forget the current snapshot. */
void sg_topomgr_stop(void);

#endif
