/*
 * coalesce - identical concurrent GETs within a worker. The first GET of a
 * key becomes the leader and goes to Redis; GETs of the same key that
 * arrive while it is in flight wait on it and are answered with its result.
 * Any write to the key (SET, DELETE, EXPIRE, leases, versioned sets,
 * INVALIDATE) forgets the leader, so a GET that arrives after a write is
 * sent after that write on the same link and cannot see the older value.
 */
#ifndef SG_COALESCE_H
#define SG_COALESCE_H

#include <stddef.h>
#include <stdint.h>

struct sg_coalesce;

enum sg_co_role { SG_CO_NONE = 0, SG_CO_LEADER, SG_CO_FOLLOWER };

/* A GET's place in coalescing, embedded in its sub-op. */
struct sg_co {
    uint8_t role;         /* SG_CO_* */
    uint32_t hash;        /* leader: its key's hash, to find its entry again */
    struct sg_co *next;   /* leader: first follower; follower: the next one */
    struct sg_co *leader; /* follower: the one it waits on */
};

struct sg_coalesce *sg_coalesce_new(void);
void sg_coalesce_free(struct sg_coalesce *c);

/*
 * A GET of key is about to go out: if an identical one is in flight, me
 * becomes its follower and 1 is returned (me is not sent); else me becomes
 * key's leader (the key bytes must outlive it) and 0 is returned.
 */
int sg_coalesce_join(struct sg_coalesce *c, const uint8_t *key, size_t len, struct sg_co *me);
/* The leader settled or gave up: it is no longer key's leader. Its
 * followers stay attached until taken with sg_coalesce_next_follower. */
void sg_coalesce_leave(struct sg_coalesce *c, const uint8_t *key, size_t len, struct sg_co *leader);
/* Detach and return the leader's next follower (role NONE), or NULL. */
struct sg_co *sg_coalesce_next_follower(struct sg_co *leader);
/* A follower stops waiting (its request was answered without it). */
void sg_coalesce_unfollow(struct sg_co *f);
/* Forget the leader of key (a write to it), or every leader (INVALIDATE). */
void sg_coalesce_forget_key(struct sg_coalesce *c, const uint8_t *key, size_t len);
void sg_coalesce_clear(struct sg_coalesce *c);

#endif
