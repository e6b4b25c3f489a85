/*
 * coalesce - a small chained hash table from key bytes to the leader
 * of an in-flight GET, and each leader's list of followers. Entries live only while the leader is
 * in flight, so the table stays as small as the number of distinct keys being read at one moment;
 * its bucket array grows when it gets crowded.
 */
#include "coalesce.h"

#include <stdlib.h>
#include <string.h>
#include <sys/random.h>

#include "util.h"

struct co_entry {
    struct co_entry *next;
    const uint8_t *key;
    size_t len;
    uint32_t hash;
    struct sg_co *op;
};

struct sg_coalesce {
    struct co_entry **buckets;
    size_t n_buckets; /* power of two */
    size_t n;
    struct co_entry *free_list;
    uint64_t seed;
};

/*
 * Eight bytes at a time, each word mixed in with a multiply and a shift,
 * then a final avalanche (the constants are SplitMix64's). The seed is the
 * table's own, drawn when it is made, so the buckets a key falls in are not
 * known from outside.
 */
static uint32_t co_hash(const struct sg_coalesce *c, const uint8_t *p, size_t len)
{
    uint64_t h = c->seed ^ len, w;
    for (; len >= 8; p += 8, len -= 8) {
        memcpy(&w, p, 8);
        h = (h ^ w) * 0xbf58476d1ce4e5b9ull;
        h ^= h >> 31;
    }
    if (len > 0) {
        w = 0;
        memcpy(&w, p, len);
        h = (h ^ w) * 0xbf58476d1ce4e5b9ull;
    }
    h = (h ^ (h >> 30)) * 0x94d049bb133111ebull;
    return (uint32_t)(h ^ (h >> 31));
}

struct sg_coalesce *sg_coalesce_new(void)
{
    struct sg_coalesce *c = sg_calloc(1, sizeof(*c));
    c->n_buckets = 256;
    if (getrandom(&c->seed, sizeof(c->seed), GRND_NONBLOCK) != (ssize_t)sizeof(c->seed))
        c->seed = (uint64_t)(uintptr_t)c ^ 0x9e3779b97f4a7c15ull; /* still varies per run */
    c->buckets = sg_calloc(c->n_buckets, sizeof(*c->buckets));
    return c;
}

void sg_coalesce_free(struct sg_coalesce *c)
{
    if (c == NULL)
        return;
    sg_coalesce_clear(c);
    struct co_entry *e;
    while ((e = c->free_list) != NULL) {
        c->free_list = e->next;
        free(e);
    }
    free(c->buckets);
    free(c);
}

static struct co_entry **co_slot(struct sg_coalesce *c, const uint8_t *key, size_t len, uint32_t h)
{
    struct co_entry **pp = &c->buckets[h & (c->n_buckets - 1)];
    while (*pp != NULL &&
           !((*pp)->hash == h && (*pp)->len == len && memcmp((*pp)->key, key, len) == 0))
        pp = &(*pp)->next;
    return pp;
}

static struct sg_co *co_find(struct sg_coalesce *c, const uint8_t *key, size_t len, uint32_t h)
{
    if (c->n == 0)
        return NULL;
    struct co_entry *e = *co_slot(c, key, len, h);
    return e ? e->op : NULL;
}

static void co_grow(struct sg_coalesce *c)
{
    size_t nb = c->n_buckets * 2;
    struct co_entry **b = sg_calloc(nb, sizeof(*b));
    for (size_t i = 0; i < c->n_buckets; i++) {
        struct co_entry *e = c->buckets[i];
        while (e != NULL) {
            struct co_entry *next = e->next;
            e->next = b[e->hash & (nb - 1)];
            b[e->hash & (nb - 1)] = e;
            e = next;
        }
    }
    free(c->buckets);
    c->buckets = b;
    c->n_buckets = nb;
}

static void co_add(struct sg_coalesce *c, const uint8_t *key, size_t len, uint32_t h,
                   struct sg_co *op)
{
    if (c->n >= c->n_buckets)
        co_grow(c);
    struct co_entry **pp = co_slot(c, key, len, h);
    if (*pp != NULL) {
        (*pp)->op = op;
        return;
    }
    struct co_entry *e = c->free_list;
    if (e != NULL)
        c->free_list = e->next;
    else
        e = sg_malloc(sizeof(*e));
    e->next = NULL;
    e->key = key;
    e->len = len;
    e->hash = h;
    e->op = op;
    *pp = e;
    c->n++;
}

static void co_remove(struct sg_coalesce *c, struct co_entry **pp)
{
    struct co_entry *e = *pp;
    *pp = e->next;
    e->next = c->free_list;
    c->free_list = e;
    c->n--;
}

void sg_coalesce_forget_key(struct sg_coalesce *c, const uint8_t *key, size_t len)
{
    if (c->n == 0)
        return;
    struct co_entry **pp = co_slot(c, key, len, co_hash(c, key, len));
    if (*pp != NULL)
        co_remove(c, pp);
}

void sg_coalesce_leave(struct sg_coalesce *c, const uint8_t *key, size_t len, struct sg_co *leader)
{
    int was_leader = leader->role == SG_CO_LEADER;
    leader->role = SG_CO_NONE;
    if (c->n == 0)
        return;
    if (!was_leader) { /* not joined as a leader: look its key up */
        struct co_entry **pp = co_slot(c, key, len, co_hash(c, key, len));
        if (*pp != NULL && (*pp)->op == leader)
            co_remove(c, pp);
        return;
    }
    /* Its entry is the one in its bucket that points at it, if any (a
     * write may have forgotten it, a later GET replaced it). */
    struct co_entry **pp = &c->buckets[leader->hash & (c->n_buckets - 1)];
    while (*pp != NULL && (*pp)->op != leader)
        pp = &(*pp)->next;
    if (*pp != NULL)
        co_remove(c, pp);
}

int sg_coalesce_join(struct sg_coalesce *c, const uint8_t *key, size_t len, struct sg_co *me)
{
    uint32_t h = co_hash(c, key, len);
    struct sg_co *leader = co_find(c, key, len, h);
    if (leader != NULL && leader != me) {
        me->role = SG_CO_FOLLOWER;
        me->leader = leader;
        me->next = leader->next;
        leader->next = me;
        return 1;
    }
    co_add(c, key, len, h, me);
    me->role = SG_CO_LEADER;
    me->hash = h;
    return 0;
}

struct sg_co *sg_coalesce_next_follower(struct sg_co *leader)
{
    struct sg_co *f = leader->next;
    if (f == NULL)
        return NULL;
    leader->next = f->next;
    f->role = SG_CO_NONE;
    f->next = NULL;
    f->leader = NULL;
    return f;
}

void sg_coalesce_unfollow(struct sg_co *f)
{
    struct sg_co **pp = &f->leader->next;
    while (*pp != NULL && *pp != f)
        pp = &(*pp)->next;
    if (*pp == f)
        *pp = f->next;
    f->role = SG_CO_NONE;
    f->leader = NULL;
    f->next = NULL;
}

void sg_coalesce_clear(struct sg_coalesce *c)
{
    for (size_t i = 0; i < c->n_buckets && c->n > 0; i++)
        while (c->buckets[i] != NULL)
            co_remove(c, &c->buckets[i]);
}
