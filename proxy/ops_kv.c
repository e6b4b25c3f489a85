/*
 * ops_kv - single-key ops:
 *
 *   GET     GET key                       (replicas if the keyspace allows)
 *   SET     SET key stored [PX ttl] [NX|XX]
 *   DELETE  UNLINK key
 *   EXPIRE  PEXPIRE key ttl
 */
#include "ops.h"

int sg_ops_shape_one_key(const Slotgate__V1__Request *rq, uint32_t max_batch, const char **why)
{
    (void)max_batch;
    if (rq->n_keys != 1)
        return *why = "expects exactly one key", SG_INVALID_ARGUMENT;
    return 0;
}

int sg_ops_shape_key_value(const Slotgate__V1__Request *rq, uint32_t max_batch, const char **why)
{
    (void)max_batch;
    if (rq->n_keys != 1 || rq->n_values != 1)
        return *why = "expects one key and one value", SG_INVALID_ARGUMENT;
    return 0;
}

static int shape_expire(const Slotgate__V1__Request *rq, uint32_t max_batch, const char **why)
{
    int code = sg_ops_shape_one_key(rq, max_batch, why);
    if (code != 0)
        return code;
    if (rq->ttl_ms == 0)
        return *why = "EXPIRE needs ttl_ms > 0", SLOTGATE__V1__CODE__CODE_TTL_OUT_OF_RANGE;
    return 0;
}

void sg_ops_format_get(struct sg_subop *op, struct evbuffer *out)
{
    const ProtobufCBinaryData *k = sg_ops_key(op, 0);
    sg_resp_cmd2(out, "GET", k->data, k->len);
}

/* The key's own TTL (MSET) wins over the request's. */
void sg_ops_format_set(struct sg_subop *op, struct evbuffer *out)
{
    struct sg_request *r = op->req;
    const Slotgate__V1__Request *rq = r->rq;
    uint32_t ki = sg_request_key_of(r, op, 0);
    uint64_t ttl = r->ttl_ms;
    if (rq->n_ttls_ms > 0 && rq->ttls_ms[ki])
        ttl = rq->ttls_ms[ki];
    int cond = rq->condition == SLOTGATE__V1__CONDITION__COND_NX ||
               rq->condition == SLOTGATE__V1__CONDITION__COND_XX;
    /* SET key value [PX ttl] [NX|XX]: in one append when it is short; else
     * piece by piece, the value by reference (argument 2). */
    char digits[SG_RESP_U64_MAX];
    struct iovec v[6] = {
        {"SET", 3}, {r->keys[ki].data, r->keys[ki].len}, {r->values[ki].data, r->values[ki].len}};
    int n = 3;
    if (ttl) {
        v[n++] = (struct iovec){"PX", 2};
        v[n++] = (struct iovec){digits, sg_resp_u64(digits, ttl)};
    }
    if (cond)
        v[n++] = (struct iovec){rq->condition == SLOTGATE__V1__CONDITION__COND_NX ? "NX" : "XX", 2};
    if (!r->value_by_ref && sg_resp_cmdv(out, n, v) == 0)
        return;
    sg_resp_begin(out, n);
    for (int i = 0; i < n; i++) {
        if (i != 2)
            sg_resp_arg(out, v[i].iov_base, v[i].iov_len);
        else if (r->value_by_ref)
            sg_resp_arg_buffer(out, r->value_buf); /* a SET's one value, held by reference */
        else
            sg_ops_arg_value(out, &r->values[ki]);
    }
}

void sg_ops_format_unlink(struct sg_subop *op, struct evbuffer *out)
{
    const ProtobufCBinaryData *k = sg_ops_key(op, 0);
    sg_resp_cmd2(out, "UNLINK", k->data, k->len);
}

static void format_expire(struct sg_subop *op, struct evbuffer *out)
{
    sg_resp_begin(out, 3);
    sg_resp_arg(out, "PEXPIRE", 7);
    sg_ops_arg_bin(out, sg_ops_key(op, 0));
    sg_resp_arg_u64(out, op->req->ttl_ms);
}

void sg_ops_map_get(const struct sg_rm_subop *in, const redisReply *reply, struct sg_rm_result *m)
{
    (void)in;
    if (reply->type == REDIS_REPLY_STRING) {
        sg_rm_value(m, reply->str, reply->len);
    } else if (reply->type == REDIS_REPLY_NIL) {
        m->stat = SG_RM_STAT_MISS;
        sg_rm_settle(m, SG_C(NOT_FOUND), NULL);
    }
}

void sg_ops_map_set(const struct sg_rm_subop *in, const redisReply *reply, struct sg_rm_result *m)
{
    (void)in;
    if (reply->type == REDIS_REPLY_STATUS) {
        m->stat = SG_RM_STAT_SETS;
        sg_rm_settle(m, SG_C(OK), NULL);
    } else if (reply->type == REDIS_REPLY_NIL) {
        sg_rm_settle(m, SG_C(NOT_APPLIED), NULL);
    }
}

void sg_ops_map_count(const struct sg_rm_subop *in, const redisReply *reply, struct sg_rm_result *m)
{
    (void)in;
    if (reply->type == REDIS_REPLY_INTEGER) {
        sg_rm_settle(m, reply->integer > 0 ? SG_C(OK) : SG_C(NOT_FOUND), NULL);
        m->count = reply->integer;
    }
}

const struct sg_op sg_op_get = {
    "GET", SG_OPF_READ, sg_ops_shape_one_key, sg_ops_format_get, sg_ops_map_get, NULL};
const struct sg_op sg_op_set = {
    "SET", SG_OPF_WRITE, sg_ops_shape_key_value, sg_ops_format_set, sg_ops_map_set, NULL};
const struct sg_op sg_op_delete = {
    "DELETE", SG_OPF_WRITE, sg_ops_shape_one_key, sg_ops_format_unlink, sg_ops_map_count, NULL};
const struct sg_op sg_op_expire = {"EXPIRE",      SG_OPF_WRITE,     shape_expire,
                                   format_expire, sg_ops_map_count, NULL};
