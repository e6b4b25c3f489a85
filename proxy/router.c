/*
 * router - slot -> shard -> link for one worker.
 *
 * The hot path is two array reads: the snapshot's slot -> shard table,
 * then this router's links of that shard (master, replicas), filled on
 * first use. Addresses are compared only when a link is opened, when a
 * redirect names a node, and when a new snapshot arrives.
 */
#include "router.h"

#include <stdlib.h>
#include <string.h>

#include "core.h"
#include "log.h"
#include "shardlink.h"
#include "util.h"

#define SG_ROUTER_SWEEP_MS 1000

struct shard_links {
    struct sg_shardlink *master;
    struct sg_shardlink *replicas[SG_MAX_REPLICAS];
};

struct sg_router {
    struct sg_core *core;
    struct sg_topology *topo;  /* owned reference */
    struct shard_links *shard; /* by shard index of topo, filled lazily */
    struct sg_shardlink **links;
    int n_links, cap_links;
    uint32_t replica_rr; /* round-robin over a shard's replicas */
    struct event *sweep_ev;
};

struct sg_router *sg_router_new(struct sg_core *core, struct sg_topology *t)
{
    struct sg_router *rt = sg_calloc(1, sizeof(*rt));
    rt->core = core;
    rt->topo = sg_topology_ref(t);
    rt->shard = sg_calloc((size_t)(t->n_shards > 0 ? t->n_shards : 1), sizeof(*rt->shard));
    return rt;
}

void sg_router_free(struct sg_router *rt)
{
    if (rt == NULL)
        return;
    for (int i = 0; i < rt->n_links; i++)
        sg_shardlink_free(rt->links[i]);
    free(rt->links);
    free(rt->shard);
    if (rt->sweep_ev != NULL)
        event_free(rt->sweep_ev);
    sg_topology_unref(rt->topo);
    free(rt);
}

const struct sg_topology *sg_router_topology(const struct sg_router *rt)
{
    return rt->topo;
}

/* The link to addr in the given role, opened on first use. */
static struct sg_shardlink *router_link(struct sg_router *rt, const struct sg_addr *addr,
                                        int readonly)
{
    for (int i = 0; i < rt->n_links; i++) {
        struct sg_shardlink *l = rt->links[i];
        if (sg_shardlink_readonly(l) == readonly && sg_addr_eq(sg_shardlink_addr(l), addr)) {
            sg_shardlink_revive(l); /* a redirect may name a node before the topology does */
            return l;
        }
    }
    if (rt->n_links == rt->cap_links) {
        rt->cap_links = rt->cap_links ? rt->cap_links * 2 : 8;
        rt->links = sg_realloc(rt->links, sizeof(*rt->links) * (size_t)rt->cap_links);
    }
    struct sg_shardlink *l = sg_shardlink_new(rt->core, addr, readonly);
    rt->links[rt->n_links++] = l;
    return l;
}

struct sg_shardlink *sg_router_addr_link(struct sg_router *rt, const struct sg_addr *addr)
{
    return router_link(rt, addr, 0);
}

struct sg_shardlink *sg_router_slot_link(struct sg_router *rt, uint16_t slot, int replica_ok)
{
    uint16_t sh = rt->topo->slot_shard[slot];
    if (sh == SG_NO_SHARD)
        return NULL;
    const struct sg_shard_info *info = &rt->topo->shards[sh];
    struct shard_links *sl = &rt->shard[sh];
    if (replica_ok && info->n_replicas > 0) {
        int i = (int)(rt->replica_rr++ % (uint32_t)info->n_replicas);
        if (sl->replicas[i] == NULL)
            sl->replicas[i] = router_link(rt, &info->replicas[i], 1);
        if (sg_shardlink_state(sl->replicas[i]) != SG_LINK_DOWN)
            return sl->replicas[i];
        /* That replica is down: the master serves the read. */
    }
    if (sl->master == NULL)
        sl->master = router_link(rt, &info->master, 0);
    return sl->master;
}

/* Free retired links that owe nothing; 1 if some are still waiting. */
static int router_sweep(struct sg_router *rt)
{
    int waiting = 0, j = 0;
    for (int i = 0; i < rt->n_links; i++) {
        struct sg_shardlink *l = rt->links[i];
        if (sg_shardlink_retired(l) && sg_shardlink_pending(l) == 0) {
            const struct sg_addr *a = sg_shardlink_addr(l);
            sg_log_info("worker %d: link %s:%d closed (retired)", rt->core->id, a->host, a->port);
            sg_shardlink_free(l);
            continue;
        }
        waiting |= sg_shardlink_retired(l);
        rt->links[j++] = l;
    }
    rt->n_links = j;
    return waiting;
}

static void on_sweep(evutil_socket_t fd, short what, void *arg)
{
    struct sg_router *rt = arg;
    if (router_sweep(rt)) {
        struct timeval tv = {SG_ROUTER_SWEEP_MS / 1000, (SG_ROUTER_SWEEP_MS % 1000) * 1000};
        evtimer_add(rt->sweep_ev, &tv);
    }
}

void sg_router_set_topology(struct sg_router *rt, struct sg_topology *t)
{
    sg_topology_unref(rt->topo);
    rt->topo = t;
    free(rt->shard);
    rt->shard = sg_calloc((size_t)(t->n_shards > 0 ? t->n_shards : 1), sizeof(*rt->shard));
    for (int i = 0; i < rt->n_links; i++) {
        struct sg_shardlink *l = rt->links[i];
        if (sg_topology_has_node(t, sg_shardlink_addr(l)))
            sg_shardlink_revive(l);
        else
            sg_shardlink_retire(l);
    }
    if (router_sweep(rt)) {
        if (rt->sweep_ev == NULL)
            rt->sweep_ev = evtimer_new(rt->core->base, on_sweep, rt);
        if (!evtimer_pending(rt->sweep_ev, NULL)) {
            struct timeval tv = {SG_ROUTER_SWEEP_MS / 1000, (SG_ROUTER_SWEEP_MS % 1000) * 1000};
            evtimer_add(rt->sweep_ev, &tv);
        }
    }
}

int sg_router_idle(const struct sg_router *rt)
{
    for (int i = 0; i < rt->n_links; i++)
        if (sg_shardlink_pending(rt->links[i]) > 0)
            return 0;
    return 1;
}

int sg_router_links(const struct sg_router *rt, int *retired)
{
    int n = 0;
    for (int i = 0; i < rt->n_links; i++)
        n += sg_shardlink_retired(rt->links[i]);
    if (retired != NULL)
        *retired = n;
    return rt->n_links;
}
