/*
 * ops_batch - multi-key ops, a result per key:
 *
 *   MGET     MGET k1 k2 ... per slot (one sub-op per slot)
 *   MSET     SET per key (each key has its own TTL and status)
 *   MDELETE  UNLINK per key (each key has its own status)
 */
#include "ops.h"

#include <stdlib.h>

#include "slot.h"
#include "util.h"

static int shape_batch(const Slotgate__V1__Request *rq, uint32_t max_batch, const char **why)
{
    size_t nk = rq->n_keys;
    if (nk == 0)
        return *why = "batch needs at least one key", SG_INVALID_ARGUMENT;
    if (nk > max_batch)
        return *why = "more keys than limits.max_batch_keys",
               SLOTGATE__V1__CODE__CODE_BATCH_TOO_LARGE;
    return 0;
}

static int shape_mset(const Slotgate__V1__Request *rq, uint32_t max_batch, const char **why)
{
    int code = shape_batch(rq, max_batch, why);
    if (code != 0)
        return code;
    size_t nk = rq->n_keys;
    if (rq->n_values != nk || (rq->n_ttls_ms != 0 && rq->n_ttls_ms != nk))
        return *why = "MSET needs one value (and optionally one TTL) per key", SG_INVALID_ARGUMENT;
    return 0;
}

/* A slot's keys: MGET; a slot with one key (most, for random keys): GET,
 * whose reply the link reads in place (optable.h, sg_op_simple_replies). */
static void format_mget(struct sg_subop *op, struct evbuffer *out)
{
    if (op->count == 1) {
        sg_ops_format_get(op, out);
        return;
    }
    sg_resp_begin(out, 1 + (int)op->count);
    sg_resp_arg(out, "MGET", 4);
    for (uint32_t j = 0; j < op->count; j++)
        sg_ops_arg_bin(out, sg_ops_key(op, j));
}

/* One key: GET's reply. Several: one array element per key the sub-op
 * covers (command.c reads them). */
static void map_mget(const struct sg_rm_subop *in, const redisReply *reply, struct sg_rm_result *m)
{
    if (in->count == 1) {
        sg_ops_map_get(in, reply, m);
        return;
    }
    if (reply->type == REDIS_REPLY_ARRAY && reply->elements == in->count) {
        m->action = SG_RM_SETTLE_MGET;
        m->code = SG_C(OK);
        m->message = NULL;
        m->keep_reply = 1;
    } else if (in->grouped) {
        m->message = "unexpected MGET reply from Redis";
    }
}

/*
 * MGET: one sub-op per slot, covering that slot's keys. r->order lists key
 * indexes grouped by slot (a stable counting pass keeps client order inside
 * a group), so each sub-op covers a contiguous run of it.
 */
static int prepare_mget(struct sg_request *r, const char **why)
{
    (void)why;
    uint32_t n = r->n_keys;
    if (n == 1) {
        sg_ops_subops_per_key(r);
        return 0;
    }
    uint16_t *slots = sg_malloc(n * sizeof(*slots));
    uint32_t *order = sg_malloc(n * sizeof(*order));
    uint8_t *taken = sg_calloc(n, 1);
    sg_request_own(r, order);
    for (uint32_t i = 0; i < n; i++)
        slots[i] = sg_slot_of_key(r->keys[i].data, r->keys[i].len);
    uint32_t pos = 0, groups = 0;
    for (uint32_t i = 0; i < n; i++) {
        if (taken[i])
            continue;
        groups++;
        for (uint32_t j = i; j < n; j++)
            if (!taken[j] && slots[j] == slots[i]) {
                taken[j] = 1;
                order[pos++] = j;
            }
    }
    r->order = order;
    r->n_subops = groups;
    r->subops = groups == 1 ? &r->subop1 : sg_calloc(groups, sizeof(*r->subops));
    uint32_t g = 0;
    for (uint32_t p = 0; p < n; g++) {
        uint32_t q = p;
        while (q < n && slots[order[q]] == slots[order[p]])
            q++;
        r->subops[g].index = p;
        r->subops[g].count = q - p;
        p = q;
    }
    free(slots);
    free(taken);
    return 0;
}

const struct sg_op sg_op_mget = {
    "MGET", SG_OPF_READ | SG_OPF_BATCH, shape_batch, format_mget, map_mget, prepare_mget};
const struct sg_op sg_op_mset = {
    "MSET", SG_OPF_WRITE | SG_OPF_BATCH, shape_mset, sg_ops_format_set, sg_ops_map_set, NULL};
const struct sg_op sg_op_mdelete = {"MDELETE",        SG_OPF_WRITE | SG_OPF_BATCH,
                                    shape_batch,      sg_ops_format_unlink,
                                    sg_ops_map_count, NULL};
