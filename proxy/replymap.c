/*
 * replymap - Redis reply -> outcome and action, with no side effects.
 * Errors first (they mean the same for every op: redirect, retry, or a
 * backend error), then the op's own reply shapes (its map in the op table,
 * ops_*.c); anything else is a BACKEND_ERROR "unexpected reply", never a
 * crash or a guess.
 */
#include "replymap.h"

#include <string.h>

#include "optable.h"
#include "resp.h"
#include "request.h"
#include "slotgate.pb-c.h"

#define C(x) SLOTGATE__V1__CODE__CODE_##x
#define OP(x) SLOTGATE__V1__OP__OP_##x

static int has_prefix(const char *s, size_t len, const char *p)
{
    size_t n = strlen(p);
    return len >= n && memcmp(s, p, n) == 0;
}

static void map_error(const struct sg_rm_subop *in, const redisReply *reply, struct sg_rm_result *m)
{
    switch (sg_resp_classify_error(reply->str, reply->len, &m->target)) {
    case SG_RESP_ERR_MOVED:
        m->action = SG_RM_REDIRECT;
        m->stat = SG_RM_STAT_MOVED;
        m->refresh = 1;
        m->code = C(BACKEND_ERROR);
        m->message = "too many redirects";
        return;
    case SG_RESP_ERR_ASK:
        m->action = SG_RM_REDIRECT;
        m->stat = SG_RM_STAT_ASK;
        m->asking = 1;
        m->code = C(BACKEND_ERROR);
        m->message = "too many redirects";
        return;
    case SG_RESP_ERR_TRYAGAIN:
        m->action = SG_RM_RETRY;
        m->stat = SG_RM_STAT_TRYAGAIN;
        m->code = C(TIMEOUT);
        m->message = "shard busy (TRYAGAIN/LOADING)";
        return;
    case SG_RESP_ERR_CLUSTERDOWN:
        m->action = SG_RM_RETRY;
        m->stat = SG_RM_STAT_CLUSTERDOWN;
        m->refresh = 1;
        m->code = C(CLUSTER_DOWN);
        m->message = "cluster is down";
        return;
    default:
        /* EVALSHA of a script this node has not cached (restarted, flushed,
         * new): the script did not run, so sending it in full is safe. */
        if (!in->script_in_full && has_prefix(reply->str, reply->len, "NOSCRIPT") &&
            (in->kind == SG_SUBOP_SCAN || (sg_op_flags(in->op) & SG_OPF_SCRIPT))) {
            m->action = SG_RM_SCRIPT_RESEND;
            m->code = C(BACKEND_ERROR);
            m->message = "the node does not have the script";
            return;
        }
        m->error_reply = 1;
        if (in->count > 1) {
            sg_rm_settle(m, C(BACKEND_ERROR), "Redis answered with an error");
            return;
        }
        /* Redis's own message reaches the client; it lives in the reply. */
        sg_rm_settle(m, C(BACKEND_ERROR), reply->str);
        m->keep_reply = 1;
        return;
    }
}

int sg_replymap(const struct sg_rm_subop *in, const redisReply *reply, struct sg_rm_result *out)
{
    memset(out, 0, sizeof(*out));
    if (reply->type == REDIS_REPLY_ERROR) {
        map_error(in, reply, out);
        return 0;
    }
    /* Until the op's own shape matches: an unexpected reply. */
    sg_rm_settle(out, C(BACKEND_ERROR), "unexpected reply type from Redis");
    const struct sg_op *d =
        sg_op_of(in->kind == SG_SUBOP_SCAN ? SLOTGATE__V1__OP__OP_INVALIDATE : in->op);
    if (d != NULL && d->map != NULL)
        d->map(in, reply, out);
    return 0;
}
