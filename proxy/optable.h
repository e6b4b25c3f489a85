/*
 * optable - one description per protocol op that reaches Redis: its flags,
 * the shape of a valid request, and the RESP command each sub-op sends.
 * The ops live in files by family (ops_kv.c, ops_batch.c, ops_invalidate.c,
 * ops_lease.c, ops_versioned.c); adding an op touches its family file and
 * the table in optable.c. How a reply becomes an outcome is replymap.c's.
 */
#ifndef SG_OPTABLE_H
#define SG_OPTABLE_H

#include <stdint.h>

#include "slotgate.pb-c.h"

struct evbuffer;
struct sg_request;
struct sg_subop;
struct sg_rm_subop;
struct sg_rm_result;
struct redisReply;

#define SG_OPF_READ 1u   /* only reads: safe to resend, may go to replicas */
#define SG_OPF_WRITE 2u  /* changes keys: ends identical-GET coalescing, TTL bounds */
#define SG_OPF_BATCH 4u  /* several keys, a result per key */
#define SG_OPF_SCRIPT 8u /* a Lua script on the node */

struct sg_op {
    const char *name;
    unsigned flags;
    /* 0 when rq's keys and values fit the op, else a code with *why set. */
    int (*check_shape)(const Slotgate__V1__Request *rq, uint32_t max_batch, const char **why);
    /* Append the sub-op's RESP command to out (prepared request). */
    void (*format)(struct sg_subop *op, struct evbuffer *out);
    /*
     * The op's own reply shapes (replymap.h), pure: m arrives as an
     * unexpected reply (BACKEND_ERROR); the map changes it when reply has a
     * shape the op expects. Errors never reach it.
     */
    void (*map)(const struct sg_rm_subop *in, const struct redisReply *reply,
                struct sg_rm_result *m);
    /*
     * The op's own preparation, after the shared one (command.c: limits,
     * keyspace, full keys, stored values, outcomes): its sub-ops and what
     * they need (lease token, INVALIDATE targets, MGET slot groups). NULL:
     * one sub-op per key (sg_ops_subops_per_key). 0, or a code with
     * *why set.
     */
    int (*prepare)(struct sg_request *r, const char **why);
};

/* The description of op, or NULL for an op the proxy does not send on. */
const struct sg_op *sg_op_of(int op);

/* Flags of op (0 for an unknown op). */
static inline unsigned sg_op_flags(int op)
{
    const struct sg_op *d = sg_op_of(op);
    return d != NULL ? d->flags : 0;
}

/*
 * 1 when a sub-op of op covering count keys is answered by a simple reply
 * (bulk, nil, status or integer; or an error): every op but the scripts
 * and a grouped MGET of several keys (an array).
 */
static inline int sg_op_simple_replies(int op, uint32_t count)
{
    unsigned f = sg_op_flags(op);
    if (f & SG_OPF_SCRIPT)
        return 0;
    return op != SLOTGATE__V1__OP__OP_MGET || count == 1;
}

#endif
