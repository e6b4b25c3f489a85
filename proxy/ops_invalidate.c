/*
 * ops_invalidate - INVALIDATE: EVAL of a SCAN+UNLINK page script on every
 * master, or only on the owner when the pattern pins one hash tag. Each
 * sub-op is one master; it sends one page at a time from its cursor.
 */
#include "ops.h"

#include <string.h>

#include "worker.h"

/* One page of INVALIDATE on one node: SCAN, then UNLINK what matched. */
struct sg_ops_script sg_script_scan_unlink = {
    .src = "local r = redis.call('SCAN', ARGV[1], 'MATCH', ARGV[2], 'COUNT', ARGV[3]) "
           "local n = 0 "
           "for _, k in ipairs(r[2]) do n = n + redis.call('UNLINK', k) end "
           "return {r[1], n}"};

static int shape_invalidate(const Slotgate__V1__Request *rq, uint32_t max_batch, const char **why)
{
    (void)max_batch;
    if (rq->n_keys != 0 || rq->pattern.len == 0)
        return *why = "INVALIDATE takes a pattern and no keys", SG_INVALID_ARGUMENT;
    return 0;
}

static void format_page(struct sg_subop *op, struct evbuffer *out)
{
    struct sg_request *r = op->req;
    const struct sg_inval_shard *sh = &r->inval[op->index];
    sg_ops_format_script(op, out, &sg_script_scan_unlink, 0, 3);
    sg_resp_arg_str(out, sh->cursor);
    sg_ops_arg_bin(out, &r->pattern);
    sg_resp_arg_u64(out, r->worker->cfg->invalidate_page_keys);
}

/* One page: {cursor, removed}; a cursor of "0" was the last page. */
static void map_page(const struct sg_rm_subop *in, const redisReply *reply, struct sg_rm_result *m)
{
    if (in->kind != SG_SUBOP_SCAN)
        return;
    if (reply->type != REDIS_REPLY_ARRAY || reply->elements != 2 ||
        reply->element[0]->type != REDIS_REPLY_STRING ||
        reply->element[1]->type != REDIS_REPLY_INTEGER ||
        reply->element[0]->len >= sizeof(m->cursor)) {
        m->message = "unexpected SCAN page reply";
        return;
    }
    memcpy(m->cursor, reply->element[0]->str, reply->element[0]->len);
    m->cursor[reply->element[0]->len] = '\0';
    m->count = reply->element[1]->integer;
    sg_rm_settle(m, SG_C(OK), NULL);
    if (strcmp(m->cursor, "0") != 0)
        m->action = SG_RM_NEXT_PAGE;
}

const struct sg_op sg_op_invalidate = {"INVALIDATE", SG_OPF_SCRIPT, shape_invalidate, format_page,
                                       map_page};
