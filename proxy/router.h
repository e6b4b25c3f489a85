/*
 * router - which link serves a command. One per worker: it holds the
 * topology snapshot the worker routes with and owns every link the worker
 * has, opened on first use and cached by shard (masters and replicas alike)
 * and by address (MOVED and ASK targets, INVALIDATE masters). When a new
 * snapshot arrives, links to nodes that left it are retired: they take no
 * new command, finish (or fail) what is pending, and are freed.
 */
#ifndef SG_ROUTER_H
#define SG_ROUTER_H

#include <stdint.h>

#include "config.h"
#include "topology.h"

struct sg_core;
struct sg_shardlink;
struct sg_router;

/* t: a reference is taken. */
struct sg_router *sg_router_new(struct sg_core *core, struct sg_topology *t);
/* Frees every link (what is pending is handed back as failed). */
void sg_router_free(struct sg_router *rt);

/* Route with t from now on (takes over the caller's reference). */
void sg_router_set_topology(struct sg_router *rt, struct sg_topology *t);
/* The snapshot routed with (the router's reference). */
const struct sg_topology *sg_router_topology(const struct sg_router *rt);

/*
 * The link for a command on slot: with replica_ok, one of the shard's
 * replicas in turn when that replica's link is not down, else the shard's
 * master. NULL when no shard serves the slot.
 */
struct sg_shardlink *sg_router_slot_link(struct sg_router *rt, uint16_t slot, int replica_ok);
/* The master link to addr (a MOVED/ASK target, an INVALIDATE master). */
struct sg_shardlink *sg_router_addr_link(struct sg_router *rt, const struct sg_addr *addr);

/* 1 when no link owes a reply (nothing in flight anywhere). */
int sg_router_idle(const struct sg_router *rt);
/* Links held, and of those retired (waiting for their last reply). */
int sg_router_links(const struct sg_router *rt, int *retired);

#endif
