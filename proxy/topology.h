/*
 * topology - who owns which slot. An immutable, reference-counted snapshot
 * (slot -> shard table plus shard addresses) is built by the topology
 * manager (topomgr.h) from CLUSTER SLOTS and handed to every worker's
 * router; workers route with the snapshot they hold and drop it when a
 * newer one arrives. A plain (non-cluster) Redis is one shard that owns
 * every slot.
 */
#ifndef SG_TOPOLOGY_H
#define SG_TOPOLOGY_H

#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>

#include <hiredis/hiredis.h>

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

/* Take / drop a reference. The last unref frees the snapshot. */
struct sg_topology *sg_topology_ref(struct sg_topology *t);
void sg_topology_unref(struct sg_topology *t);

/* Master owning slot, or NULL when the slot is unassigned. */
const struct sg_addr *sg_topology_master_of(const struct sg_topology *t, uint16_t slot);

/*
 * A snapshot (one reference) from asked's answer to CLUSTER SLOTS: the
 * slot ranges with their masters and replicas, or, when the node reports
 * that cluster support is disabled, asked as the one shard of a plain
 * Redis. NULL, with the reason in err, for any other answer.
 */
struct sg_topology *sg_topology_from_reply(const redisReply *r, const struct sg_addr *asked,
                                           char *err, size_t errlen);

/* 1 when both route every slot to the same masters, with the same replicas. */
int sg_topology_same(const struct sg_topology *a, const struct sg_topology *b);
/* 1 when t names addr as a master or a replica. */
int sg_topology_has_node(const struct sg_topology *t, const struct sg_addr *addr);
/* 1 when every slot has a master. */
int sg_topology_covers_all(const struct sg_topology *t);

/*
 * Process-wide discovery status, written by the topology manager and read
 * by any thread (/readyz, /metrics, STATS). set_current takes over t's
 * reference (NULL clears it) and sets ready from its coverage; current
 * returns it with a new reference (drop it with sg_topology_unref), or
 * NULL before the first. count_refresh: one refresh done, answered (ok)
 * or not; note_answer: a node answered (the start-up discovery) without
 * counting a refresh.
 */
void sg_topology_set_current(struct sg_topology *t);
struct sg_topology *sg_topology_current(void);
void sg_topology_count_refresh(int ok);
void sg_topology_note_answer(void);
uint64_t sg_topology_refresh_count(void);
uint64_t sg_topology_refresh_failures(void);
/* sg_now_ms() of the last refresh that got an answer. */
uint64_t sg_topology_last_refresh_ms(void);
/* 1 once a topology with all slots covered is known (for /readyz). */
int sg_topology_ready(void);

#endif
