/*
 * coalesce - a small chained hash table from key bytes to the leader
 * sub-op of an in-flight GET. Entries live only while the leader is in
 * flight, so the table stays as small as the number of distinct keys being
 * read at one moment; its bucket array grows when it gets crowded.
 */
#include "coalesce.h"

#include <stdlib.h>
#include <string.h>

#include "util.h"

struct co_entry {
    struct co_entry *next;
    const uint8_t *key;
    size_t len;
    uint64_t hash;
    struct sg_subop *op;
};

struct sg_coalesce {
    struct co_entry **buckets;
    size_t n_buckets; /* power of two */
    size_t n;
    struct co_entry *free_list;
};

static uint64_t co_hash(const uint8_t *p, size_t len)
{
    uint64_t h = 1469598103934665603ULL; /* FNV-1a */
    for (size_t i = 0; i < len; i++) {
        h ^= p[i];
        h *= 1099511628211ULL;
    }
    return h;
}

struct sg_coalesce *sg_coalesce_new(void)
{
    struct sg_coalesce *c = sg_calloc(1, sizeof(*c));
    c->n_buckets = 256;
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

static struct co_entry **co_slot(struct sg_coalesce *c, const uint8_t *key, size_t len, uint64_t h)
{
    struct co_entry **pp = &c->buckets[h & (c->n_buckets - 1)];
    while (*pp != NULL &&
           !((*pp)->hash == h && (*pp)->len == len && memcmp((*pp)->key, key, len) == 0))
        pp = &(*pp)->next;
    return pp;
}

struct sg_subop *sg_coalesce_find(struct sg_coalesce *c, const uint8_t *key, size_t len)
{
    struct co_entry *e = *co_slot(c, key, len, co_hash(key, len));
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

void sg_coalesce_add(struct sg_coalesce *c, const uint8_t *key, size_t len, struct sg_subop *op)
{
    if (c->n >= c->n_buckets)
        co_grow(c);
    uint64_t h = co_hash(key, len);
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
    struct co_entry **pp = co_slot(c, key, len, co_hash(key, len));
    if (*pp != NULL)
        co_remove(c, pp);
}

void sg_coalesce_forget_op(struct sg_coalesce *c, const uint8_t *key, size_t len,
                           struct sg_subop *op)
{
    if (c->n == 0)
        return;
    struct co_entry **pp = co_slot(c, key, len, co_hash(key, len));
    if (*pp != NULL && (*pp)->op == op)
        co_remove(c, pp);
}

void sg_coalesce_clear(struct sg_coalesce *c)
{
    for (size_t i = 0; i < c->n_buckets && c->n > 0; i++)
        while (c->buckets[i] != NULL)
            co_remove(c, &c->buckets[i]);
}
