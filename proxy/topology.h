/*
 * topology - who owns which slot. An immutable, reference-counted snapshot
 * (slot -> shard table plus shard addresses) is built by the topology
 * manager thread from CLUSTER SLOTS and handed to every worker; workers route
 * with the snapshot they hold and drop it when a newer one arrives. A plain
 * (non-cluster) Redis is one shard that owns every slot.
 */
#ifndef SG_TOPOLOGY_H
#define SG_TOPOLOGY_H

#include <stdatomic.h>
#include <stdint.h>

#include "config.h"
#include "slot.h"

#define SG_NO_SHARD 0xffff
#define SG_MAX_REPLICAS 8

struct sg_shard_info {
    struct sg_addr master;
    int n_replicas;
    struct sg_addr replicas[SG_MAX_REPLICAS];
};

struct sg_topology {
    atomic_int refs;
    uint64_t epoch; /* increases with every published snapshot */
    int cluster;    /* 0: plain Redis, one shard */
    int n_shards;
    struct sg_shard_info *shards;
    uint16_t slot_shard[SG_SLOTS]; /* index into shards, or SG_NO_SHARD */
};

struct sg_worker;
struct ssl_ctx_st;

/* Take / drop a reference. The last unref frees the snapshot. */
struct sg_topology *sg_topology_ref(struct sg_topology *t);
void sg_topology_unref(struct sg_topology *t);

/* Master owning slot, or NULL when the slot is unassigned. */
const struct sg_addr *sg_topology_master_of(const struct sg_topology *t, uint16_t slot);

/*
 * Blocking discovery, used at start-up (before workers run) and by the
 * manager thread: asks the given nodes in order until one answers
 * CLUSTER SLOTS (or reports that cluster support is disabled, meaning a
 * plain Redis). Returns a new snapshot with one reference, or NULL with the
 * reason in err.
 */
struct sg_topology *sg_topology_fetch(const struct sg_config *cfg, struct ssl_ctx_st *tls,
                                      const struct sg_addr *nodes, int n_nodes, char *err,
                                      size_t errlen);

/* 1 when both snapshots route every slot to the same addresses. */
int sg_topology_same(const struct sg_topology *a, const struct sg_topology *b);

/*
 * The manager thread: refreshes on request (rate-limited to one refresh per
 * topology_min_interval_ms however many requests arrive) and on a timer, and
 * posts changed snapshots to every worker. start takes a reference to
 * initial. sg_topology_request_refresh is safe from any thread and never
 * blocks (a non-blocking write to a pipe).
 */
int sg_topology_manager_start(const struct sg_config *cfg, struct ssl_ctx_st *tls,
                              struct sg_topology *initial, struct sg_worker **workers,
                              int n_workers);
void sg_topology_request_refresh(void);
void sg_topology_manager_stop(void);
/* Number of refreshes done so far (for STATS). */
uint64_t sg_topology_refresh_count(void);
/* 1 once a topology with all slots covered is known (for /readyz). */
int sg_topology_ready(void);

/*
 * For /metrics (any thread): the manager's current snapshot with a new
 * reference (drop it with sg_topology_unref), or NULL before the manager
 * starts; the sg_now_ms() of the last refresh that got an answer (the
 * manager's start counts as one); refreshes that got none.
 */
struct sg_topology *sg_topology_current(void);
uint64_t sg_topology_last_refresh_ms(void);
uint64_t sg_topology_refresh_failures(void);

#endif
