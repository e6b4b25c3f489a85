/*
 * ops - what the op families (ops_*.c) share: their descriptors for the
 * table (optable.c), the shape checks and formats more than one family
 * uses, and the argument helpers. Internal to the op files.
 */
#ifndef SG_OPS_H
#define SG_OPS_H

#include <stdatomic.h>

#include <event2/buffer.h>

#include "optable.h"
#include "replymap.h"
#include "request.h"
#include "resp.h"

extern const struct sg_op sg_op_get, sg_op_set, sg_op_delete, sg_op_expire;
extern const struct sg_op sg_op_mget, sg_op_mset, sg_op_mdelete;
extern const struct sg_op sg_op_invalidate;
extern const struct sg_op sg_op_get_or_lease, sg_op_set_with_lease;
extern const struct sg_op sg_op_set_versioned, sg_op_get_versioned;

#define SG_INVALID_ARGUMENT SLOTGATE__V1__CODE__CODE_INVALID_ARGUMENT
#define SG_C(x) SLOTGATE__V1__CODE__CODE_##x

/* Shapes several families share (ops_kv.c). */
int sg_ops_shape_one_key(const Slotgate__V1__Request *rq, uint32_t max_batch, const char **why);
int sg_ops_shape_key_value(const Slotgate__V1__Request *rq, uint32_t max_batch, const char **why);
/* Reply shapes: a stored value (GET); OK or NOT_APPLIED (SET). */
void sg_ops_map_get(const struct sg_rm_subop *in, const redisReply *reply, struct sg_rm_result *m);
void sg_ops_map_set(const struct sg_rm_subop *in, const redisReply *reply, struct sg_rm_result *m);
/* A count of keys touched: OK above 0, NOT_FOUND at 0 (UNLINK, PEXPIRE). */
void sg_ops_map_count(const struct sg_rm_subop *in, const redisReply *reply,
                      struct sg_rm_result *m);
/* GET, SET (with the key's own TTL and NX/XX), UNLINK of the sub-op's key. */
void sg_ops_format_get(struct sg_subop *op, struct evbuffer *out);
void sg_ops_format_set(struct sg_subop *op, struct evbuffer *out);
void sg_ops_format_unlink(struct sg_subop *op, struct evbuffer *out);

static inline const ProtobufCBinaryData *sg_ops_key(const struct sg_subop *op, uint32_t j)
{
    return &op->req->keys[sg_request_key_of(op->req, op, j)];
}

static inline void sg_ops_arg_bin(struct evbuffer *out, const ProtobufCBinaryData *b)
{
    sg_resp_arg(out, b->data, b->len);
}

/*
 * Values are added by reference: they live in the request, which outlives
 * the link's output buffer (a sub-op is settled only after its reply, or
 * after the link and its buffer are gone).
 */
static inline void sg_ops_arg_value(struct evbuffer *out, const ProtobufCBinaryData *b)
{
    sg_resp_arg_ref(out, b->data, b->len);
}

/* A Lua script and its SHA1 (hex), computed once per process (optable.c). */
struct sg_ops_script {
    const char *src;
    char sha[41];         /* computed on first use (ops.c) */
    atomic_int sha_ready; /* sha is set */
};
extern struct sg_ops_script sg_script_scan_unlink, sg_script_get_or_lease, sg_script_set_with_lease,
    sg_script_set_versioned;

/*
 * EVALSHA sha numkeys (EVAL script numkeys once the node answered NOSCRIPT
 * to this sub-op), leaving nargs more arguments (keys, then ARGV) to add.
 */
/* One sub-op per key: the preparation of most ops (optable.h). */
void sg_ops_subops_per_key(struct sg_request *r);

void sg_ops_format_script(const struct sg_subop *op, struct evbuffer *out, struct sg_ops_script *s,
                          int numkeys, int nargs);

#endif
