/*
 * topology - the slot map as an immutable snapshot: built from a CLUSTER
 * SLOTS reply, compared, and the process-wide current one with the
 * discovery counters. Discovery itself is the topology manager's
 * (topomgr.c).
 */
#include "topology.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "util.h"

struct sg_topology *sg_topology_ref(struct sg_topology *t)
{
    if (t != NULL)
        atomic_fetch_add_explicit(&t->refs, 1, memory_order_relaxed);
    return t;
}

void sg_topology_unref(struct sg_topology *t)
{
    if (t == NULL)
        return;
    if (atomic_fetch_sub_explicit(&t->refs, 1, memory_order_acq_rel) == 1) {
        free(t->shards);
        free(t);
    }
}

const struct sg_addr *sg_topology_master_of(const struct sg_topology *t, uint16_t slot)
{
    uint16_t s = t->slot_shard[slot];
    return s == SG_NO_SHARD ? NULL : &t->shards[s].master;
}

int sg_topology_same(const struct sg_topology *a, const struct sg_topology *b)
{
    if (a == NULL || b == NULL)
        return a == b;
    for (int slot = 0; slot < SG_SLOTS; slot++) {
        const struct sg_addr *ma = sg_topology_master_of(a, (uint16_t)slot);
        const struct sg_addr *mb = sg_topology_master_of(b, (uint16_t)slot);
        if ((ma == NULL) != (mb == NULL))
            return 0;
        if (ma != NULL && !sg_addr_eq(ma, mb))
            return 0;
    }
    /* Same masters for every slot: the same shards. Their replicas too? */
    if (a->n_shards != b->n_shards)
        return 0;
    for (int i = 0; i < a->n_shards; i++) {
        const struct sg_shard_info *sa = &a->shards[i], *sb = NULL;
        for (int j = 0; j < b->n_shards && sb == NULL; j++)
            if (sg_addr_eq(&b->shards[j].master, &sa->master))
                sb = &b->shards[j];
        if (sb == NULL || sb->n_replicas != sa->n_replicas)
            return 0;
        for (int k = 0; k < sa->n_replicas; k++) {
            int found = 0;
            for (int m = 0; m < sb->n_replicas && !found; m++)
                found = sg_addr_eq(&sa->replicas[k], &sb->replicas[m]);
            if (!found)
                return 0;
        }
    }
    return 1;
}

static int shard_index(struct sg_topology *t, const struct sg_addr *master)
{
    for (int i = 0; i < t->n_shards; i++)
        if (sg_addr_eq(&t->shards[i].master, master))
            return i;
    t->shards = sg_realloc(t->shards, sizeof(*t->shards) * (size_t)(t->n_shards + 1));
    memset(&t->shards[t->n_shards], 0, sizeof(t->shards[0]));
    t->shards[t->n_shards].master = *master;
    return t->n_shards++;
}

/*
 * Reply element [ip, port, id, ...] to an address. An empty ip (a node that
 * does not know its own address) means "the node we asked".
 */
static int node_addr(const redisReply *n, const struct sg_addr *asked, struct sg_addr *out)
{
    if (n->type != REDIS_REPLY_ARRAY || n->elements < 2 ||
        n->element[0]->type != REDIS_REPLY_STRING || n->element[1]->type != REDIS_REPLY_INTEGER)
        return -1;
    if (n->element[0]->len == 0 || n->element[0]->len >= sizeof(out->host) - 1)
        snprintf(out->host, sizeof(out->host), "%s", asked->host);
    else
        snprintf(out->host, sizeof(out->host), "%s", n->element[0]->str);
    out->port = (int)n->element[1]->integer;
    return out->port > 0 && out->port < 65536 ? 0 : -1;
}

static struct sg_topology *topology_new(void)
{
    struct sg_topology *t = sg_calloc(1, sizeof(*t));
    atomic_init(&t->refs, 1);
    for (int i = 0; i < SG_SLOTS; i++)
        t->slot_shard[i] = SG_NO_SHARD;
    return t;
}

static struct sg_topology *topology_from_slots(const redisReply *r, const struct sg_addr *asked)
{
    struct sg_topology *t = topology_new();
    t->cluster = 1;
    for (size_t i = 0; i < r->elements; i++) {
        const redisReply *e = r->element[i];
        struct sg_addr master;
        if (e->type != REDIS_REPLY_ARRAY || e->elements < 3 ||
            e->element[0]->type != REDIS_REPLY_INTEGER ||
            e->element[1]->type != REDIS_REPLY_INTEGER || node_addr(e->element[2], asked, &master))
            continue;
        long long lo = e->element[0]->integer, hi = e->element[1]->integer;
        if (lo < 0 || hi >= SG_SLOTS || lo > hi)
            continue;
        int idx = shard_index(t, &master);
        struct sg_shard_info *sh = &t->shards[idx];
        for (size_t j = 3; j < e->elements; j++) {
            struct sg_addr rep;
            if (node_addr(e->element[j], asked, &rep) == 0 && sh->n_replicas < SG_MAX_REPLICAS) {
                int dup = 0;
                for (int k = 0; k < sh->n_replicas; k++)
                    dup |= sg_addr_eq(&sh->replicas[k], &rep);
                if (!dup)
                    sh->replicas[sh->n_replicas++] = rep;
            }
        }
        for (long long s = lo; s <= hi; s++)
            t->slot_shard[s] = (uint16_t)idx;
    }
    return t;
}

struct sg_topology *sg_topology_from_reply(const redisReply *r, const struct sg_addr *asked,
                                           char *err, size_t errlen)
{
    struct sg_topology *t = NULL;
    if (r->type == REDIS_REPLY_ERROR && strstr(r->str, "cluster support disabled") != NULL) {
        t = topology_new();
        shard_index(t, asked);
        for (int s = 0; s < SG_SLOTS; s++)
            t->slot_shard[s] = 0;
    } else if (r->type == REDIS_REPLY_ARRAY) {
        t = topology_from_slots(r, asked);
        if (t->n_shards == 0) {
            snprintf(err, errlen, "%s:%d: CLUSTER SLOTS lists no shards", asked->host, asked->port);
            sg_topology_unref(t);
            t = NULL;
        }
    } else {
        snprintf(err, errlen, "%s:%d: CLUSTER SLOTS: %s", asked->host, asked->port,
                 r->type == REDIS_REPLY_ERROR ? r->str : "unexpected reply");
    }
    return t;
}

/* --- process-wide status (kept by the topology manager) --------------------- */

static struct {
    struct sg_topology *current;
    atomic_int ready;
    _Atomic uint64_t refreshes;
    _Atomic uint64_t refresh_failures;
    _Atomic uint64_t last_ok_ms;
    /* Taken to swap current (manager thread) and by other threads to take
     * a reference to it; never by workers. */
    pthread_mutex_t current_lock;
} mgr = {.current_lock = PTHREAD_MUTEX_INITIALIZER};

struct sg_topology *sg_topology_current(void)
{
    pthread_mutex_lock(&mgr.current_lock);
    struct sg_topology *t = sg_topology_ref(mgr.current);
    pthread_mutex_unlock(&mgr.current_lock);
    return t;
}

uint64_t sg_topology_last_refresh_ms(void)
{
    return atomic_load_explicit(&mgr.last_ok_ms, memory_order_relaxed);
}

uint64_t sg_topology_refresh_failures(void)
{
    return atomic_load_explicit(&mgr.refresh_failures, memory_order_relaxed);
}

void sg_topology_set_current(struct sg_topology *t)
{
    pthread_mutex_lock(&mgr.current_lock);
    struct sg_topology *old = mgr.current;
    mgr.current = t;
    pthread_mutex_unlock(&mgr.current_lock);
    sg_topology_unref(old);
    atomic_store(&mgr.ready, t != NULL && sg_topology_covers_all(t));
}

void sg_topology_note_answer(void)
{
    atomic_store_explicit(&mgr.last_ok_ms, sg_now_ms(), memory_order_relaxed);
}

void sg_topology_count_refresh(int ok)
{
    atomic_fetch_add_explicit(&mgr.refreshes, 1, memory_order_relaxed);
    if (ok)
        sg_topology_note_answer();
    else
        atomic_fetch_add_explicit(&mgr.refresh_failures, 1, memory_order_relaxed);
}

uint64_t sg_topology_refresh_count(void)
{
    return atomic_load_explicit(&mgr.refreshes, memory_order_relaxed);
}

int sg_topology_ready(void)
{
    return atomic_load(&mgr.ready);
}

/* 1 when t names addr as a master or a replica. */
int sg_topology_has_node(const struct sg_topology *t, const struct sg_addr *addr)
{
    for (int i = 0; i < t->n_shards; i++) {
        if (sg_addr_eq(&t->shards[i].master, addr))
            return 1;
        for (int j = 0; j < t->shards[i].n_replicas; j++)
            if (sg_addr_eq(&t->shards[i].replicas[j], addr))
                return 1;
    }
    return 0;
}

int sg_topology_covers_all(const struct sg_topology *t)
{
    for (int s = 0; s < SG_SLOTS; s++)
        if (t->slot_shard[s] == SG_NO_SHARD)
            return 0;
    return 1;
}
