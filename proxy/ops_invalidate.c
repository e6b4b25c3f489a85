/*
 * ops_invalidate - INVALIDATE: EVAL of a SCAN+UNLINK page script on every
 * master, or only on the owner when the pattern pins one hash tag. Each
 * sub-op is one master; it sends one page at a time from its cursor.
 */
#include "ops.h"

#include <stdio.h>
#include <string.h>

#include "coalesce.h"
#include "core.h"
#include "router.h"
#include "slot.h"
#include "util.h"

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
    sg_resp_arg_u64(out, r->core->cfg->invalidate_page_keys);
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

/*
 * The MATCH pattern for INVALIDATE: the keyspace prefix (glob characters
 * escaped), then the client's pattern. When nothing before the first '}'
 * is a glob character and the text between '{' and '}' is not empty, every
 * matching key hashes to that tag's slot: only its owner is scanned.
 */
static int build_targets(struct sg_request *r)
{
    const char *prefix = r->ks->prefix;
    size_t plen = strlen(prefix);
    const ProtobufCBinaryData *pat = &r->rq->pattern;
    uint8_t *full = sg_malloc(plen * 2 + pat->len);
    sg_request_own(r, full);
    size_t n = 0;
    for (size_t i = 0; i < plen; i++) {
        if (strchr("*?[]\\", prefix[i]) != NULL)
            full[n++] = '\\';
        full[n++] = (uint8_t)prefix[i];
    }
    size_t pat_start = n;
    memcpy(full + n, pat->data, pat->len);
    n += pat->len;
    r->pattern.data = full;
    r->pattern.len = n;

    int pinned = 0;
    uint16_t slot = 0;
    size_t open = 0;
    while (open < n && full[open] != '{')
        open++;
    size_t close = open + 1;
    while (close < n && full[close] != '}')
        close++;
    if (open < n && close < n && close > open + 1) {
        pinned = 1;
        for (size_t i = pat_start; i < close; i++)
            if (strchr("*?[]\\", full[i]) != NULL)
                pinned = 0;
        for (size_t i = 0; i < pat_start && pinned; i++)
            if (full[i] == '\\')
                i++; /* escaped prefix characters are literal */
        slot = sg_slot_of_key(full + open, close - open + 1);
    }
    const struct sg_topology *t = sg_router_topology(r->core->router);
    int n_targets = pinned ? 1 : t->n_shards;
    r->inval = sg_calloc((size_t)n_targets, sizeof(*r->inval));
    sg_request_own(r, r->inval);
    if (pinned) {
        const struct sg_addr *m = sg_topology_master_of(t, slot);
        if (m == NULL)
            return -1;
        r->inval[0].addr = *m;
    } else {
        for (int i = 0; i < n_targets; i++)
            r->inval[i].addr = t->shards[i].master;
    }
    for (int i = 0; i < n_targets; i++)
        snprintf(r->inval[i].cursor, sizeof(r->inval[i].cursor), "0");
    r->n_subops = (uint32_t)n_targets;
    r->subops = n_targets == 1 ? &r->subop1 : sg_calloc((size_t)n_targets, sizeof(*r->subops));
    for (int i = 0; i < n_targets; i++) {
        r->subops[i].kind = SG_SUBOP_SCAN;
        r->subops[i].index = (uint32_t)i;
        r->subops[i].count = 1;
    }
    return 0;
}

static int prepare_invalidate(struct sg_request *r, const char **why)
{
    r->n_out = 1;
    r->out = &r->out1;
    if (build_targets(r) != 0)
        return *why = "the pattern's slot is not served", SLOTGATE__V1__CODE__CODE_CLUSTER_DOWN;
    r->out[0].code = SLOTGATE__V1__CODE__CODE_OK;
    sg_coalesce_clear(r->core->coalesce);
    return 0;
}

const struct sg_op sg_op_invalidate = {"INVALIDATE", SG_OPF_SCRIPT, shape_invalidate,
                                       format_page,  map_page,      prepare_invalidate};
