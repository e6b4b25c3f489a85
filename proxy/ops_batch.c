/*
 * ops_batch - multi-key ops, a result per key:
 *
 *   MGET     MGET k1 k2 ... per slot (one sub-op per slot)
 *   MSET     SET per key (each key has its own TTL and status)
 *   MDELETE  UNLINK per key (each key has its own status)
 */
#include "ops.h"

#include <stddef.h>
#include <stdlib.h>
#include <string.h>

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
 * indexes grouped by slot, client order kept inside a group, so each
 * sub-op covers a contiguous run of it: a stable radix sort of the key
 * indexes by slot (two passes of 7 bits), linear in the number of keys.
 * Each sub-op keeps its slot, so dispatching it does not hash again.
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
    uint32_t *tmp = sg_malloc(n * sizeof(*tmp));
    uint32_t *order = sg_malloc(n * sizeof(*order));
    sg_request_own(r, order);
    for (uint32_t i = 0; i < n; i++) {
        slots[i] = sg_slot_of_key(r->keys[i].data, r->keys[i].len);
        order[i] = i;
    }
    /* Two passes, order -> tmp -> order: the sorted indexes end in order. */
    uint32_t count[129];
    uint32_t *src = order, *dst = tmp;
    for (int shift = 0; shift < 14; shift += 7) {
        memset(count, 0, sizeof(count));
        for (uint32_t i = 0; i < n; i++)
            count[((slots[src[i]] >> shift) & 127) + 1]++;
        for (int b = 0; b < 128; b++)
            count[b + 1] += count[b];
        for (uint32_t i = 0; i < n; i++)
            dst[count[(slots[src[i]] >> shift) & 127]++] = src[i];
        uint32_t *t = src;
        src = dst;
        dst = t;
    }
    uint32_t groups = 1;
    for (uint32_t p = 1; p < n; p++)
        groups += slots[order[p]] != slots[order[p - 1]];
    r->order = order;
    r->n_subops = groups;
    /* Zeroed up to the retry event, as the request's own sub-op is
     * (request.h): the event is assigned before use, and a 100-key MGET of
     * random keys has a hundred sub-ops. */
    r->subops = groups == 1 ? &r->subop1 : sg_malloc(groups * sizeof(*r->subops));
    uint32_t g = 0;
    for (uint32_t p = 0; p < n; g++) {
        if (groups > 1)
            memset(&r->subops[g], 0, offsetof(struct sg_subop, retry_ev));
        uint32_t q = p + 1;
        while (q < n && slots[order[q]] == slots[order[p]])
            q++;
        r->subops[g].index = p;
        r->subops[g].count = q - p;
        r->subops[g].slot = slots[order[p]];
        r->subops[g].slot_known = 1;
        p = q;
    }
    free(slots);
    free(tmp);
    return 0;
}

const struct sg_op sg_op_mget = {
    "MGET", SG_OPF_READ | SG_OPF_BATCH, shape_batch, format_mget, map_mget, prepare_mget};
const struct sg_op sg_op_mset = {
    "MSET", SG_OPF_WRITE | SG_OPF_BATCH, shape_mset, sg_ops_format_set, sg_ops_map_set, NULL};
const struct sg_op sg_op_mdelete = {"MDELETE",        SG_OPF_WRITE | SG_OPF_BATCH,
                                    shape_batch,      sg_ops_format_unlink,
                                    sg_ops_map_count, NULL};
