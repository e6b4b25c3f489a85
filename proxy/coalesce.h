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

struct sg_subop;
struct sg_coalesce;

enum sg_co_role { SG_CO_NONE = 0, SG_CO_LEADER, SG_CO_FOLLOWER };

struct sg_coalesce *sg_coalesce_new(void);
void sg_coalesce_free(struct sg_coalesce *c);

/* The in-flight leader GET for key, or NULL. */
struct sg_subop *sg_coalesce_find(struct sg_coalesce *c, const uint8_t *key, size_t len);
/* Make op the leader for key (key bytes must outlive the entry). */
void sg_coalesce_add(struct sg_coalesce *c, const uint8_t *key, size_t len, struct sg_subop *op);
/* Forget the leader of key (a write), or a specific leader (it settled). */
void sg_coalesce_forget_key(struct sg_coalesce *c, const uint8_t *key, size_t len);
void sg_coalesce_forget_op(struct sg_coalesce *c, const uint8_t *key, size_t len,
                           struct sg_subop *op);
/* Forget every leader (INVALIDATE by pattern). */
void sg_coalesce_clear(struct sg_coalesce *c);

#endif
