/*
 * replymap - Redis reply -> outcome and action, per op, with no side
 * effects. Errors first (they mean the same for every op: redirect, retry,
 * or a backend error), then each op's expected reply shape; anything else
 * is a BACKEND_ERROR "unexpected reply", never a crash or a guess.
 */
#include "replymap.h"

#include <string.h>

#include "resp.h"
#include "shardlink.h"
#include "slotgate.pb-c.h"

#define C(x) SLOTGATE__V1__CODE__CODE_##x
#define OP(x) SLOTGATE__V1__OP__OP_##x

static void settle(struct sg_rm_result *m, int code, const char *message)
{
    m->action = SG_RM_SETTLE;
    m->code = code;
    m->message = message;
}

static void unexpected(struct sg_rm_result *m, const char *message)
{
    memset(m, 0, sizeof(*m));
    settle(m, C(BACKEND_ERROR), message);
}

static void map_error(const struct sg_rm_subop *in, const redisReply *reply,
                      struct sg_rm_result *m)
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
        m->error_reply = 1;
        if (in->count > 1) {
            settle(m, C(BACKEND_ERROR), "Redis answered with an error");
            return;
        }
        /* Redis's own message reaches the client; it lives in the reply. */
        settle(m, C(BACKEND_ERROR), reply->str);
        m->keep_reply = 1;
        return;
    }
}

/* One INVALIDATE page: {cursor, removed}. */
static void map_scan(const redisReply *reply, struct sg_rm_result *m)
{
    if (reply->type != REDIS_REPLY_ARRAY || reply->elements != 2 ||
        reply->element[0]->type != REDIS_REPLY_STRING ||
        reply->element[1]->type != REDIS_REPLY_INTEGER ||
        reply->element[0]->len >= sizeof(m->cursor)) {
        unexpected(m, "unexpected SCAN page reply");
        return;
    }
    memcpy(m->cursor, reply->element[0]->str, reply->element[0]->len);
    m->cursor[reply->element[0]->len] = '\0';
    m->count = reply->element[1]->integer;
    if (strcmp(m->cursor, "0") == 0)
        settle(m, C(OK), NULL);
    else
        m->action = SG_RM_NEXT_PAGE;
    m->code = C(OK);
}

static void map_value(const char *data, size_t len, struct sg_rm_result *m)
{
    m->action = SG_RM_SETTLE;
    m->code = C(OK); /* decoding decides: hit, lease marker (miss), corrupt */
    m->message = NULL;
    m->decode = 1;
    m->keep_reply = 1;
    m->value = data;
    m->value_len = len;
}

static void map_get_or_lease(const redisReply *reply, struct sg_rm_result *m)
{
    if (reply->type != REDIS_REPLY_ARRAY || reply->elements < 1 ||
        reply->element[0]->type != REDIS_REPLY_INTEGER)
        return;
    long long kind = reply->element[0]->integer;
    if (kind == 0 && reply->elements == 2 && reply->element[1]->type == REDIS_REPLY_STRING) {
        map_value(reply->element[1]->str, reply->element[1]->len, m);
        return;
    }
    if (kind == 1) {
        m->stat = SG_RM_STAT_LEASE_GRANT;
        settle(m, C(LEASE_GRANTED), NULL);
        return;
    }
    if (kind == 2 && reply->elements == 2) {
        long long pttl =
            reply->element[1]->type == REDIS_REPLY_INTEGER ? reply->element[1]->integer : 0;
        m->action = SG_RM_LEASE_WAIT;
        m->code = C(LEASE_WAIT);
        m->message = "another caller holds the lease";
        m->retry_after_ms = (uint32_t)(pttl > 0 && pttl < 100 ? pttl : 100);
    }
}

static uint64_t get_u64be(const char *s)
{
    const uint8_t *p = (const uint8_t *)s;
    uint64_t v = 0;
    for (int i = 0; i < 8; i++)
        v = (v << 8) | p[i];
    return v;
}

/* The reply of a key sub-op that is not an error. */
static void map_keys(const struct sg_rm_subop *in, const redisReply *reply,
                     struct sg_rm_result *m)
{
    int t = reply->type;
    switch (in->op) {
    case OP(GET):
    case OP(GET_VERSIONED):
        if (t == REDIS_REPLY_STRING)
            map_value(reply->str, reply->len, m);
        else if (t == REDIS_REPLY_NIL) {
            m->stat = SG_RM_STAT_MISS;
            settle(m, C(NOT_FOUND), NULL);
        }
        return;
    case OP(MGET):
        if (t == REDIS_REPLY_ARRAY && reply->elements == (in->grouped ? in->count : 1)) {
            m->action = SG_RM_SETTLE_MGET;
            m->code = C(OK);
            m->message = NULL;
            m->keep_reply = 1;
        } else if (in->grouped) {
            m->message = "unexpected MGET reply from Redis";
        }
        return;
    case OP(SET):
    case OP(MSET):
        if (t == REDIS_REPLY_STATUS) {
            m->stat = SG_RM_STAT_SETS;
            settle(m, C(OK), NULL);
        } else if (t == REDIS_REPLY_NIL) {
            settle(m, C(NOT_APPLIED), NULL);
        }
        return;
    case OP(DELETE):
    case OP(MDELETE):
    case OP(EXPIRE):
        if (t == REDIS_REPLY_INTEGER) {
            settle(m, reply->integer > 0 ? C(OK) : C(NOT_FOUND), NULL);
            m->count = reply->integer;
        }
        return;
    case OP(GET_OR_LEASE):
        map_get_or_lease(reply, m);
        return;
    case OP(SET_WITH_LEASE):
        if (t == REDIS_REPLY_INTEGER) {
            if (reply->integer == 1) {
                m->stat = SG_RM_STAT_SETS;
                settle(m, C(OK), NULL);
            } else {
                m->stat = SG_RM_STAT_LEASE_REJECT;
                settle(m, C(LEASE_INVALID), "the lease expired or belongs to another caller");
            }
        }
        return;
    case OP(SET_VERSIONED):
        if (t == REDIS_REPLY_ARRAY && reply->elements == 2 &&
            reply->element[0]->type == REDIS_REPLY_INTEGER &&
            reply->element[1]->type == REDIS_REPLY_STRING && reply->element[1]->len == 8) {
            uint64_t cur = get_u64be(reply->element[1]->str);
            if (reply->element[0]->integer == 1) {
                m->stat = SG_RM_STAT_SETS;
                settle(m, C(OK), NULL);
                m->version = cur + 1;
            } else {
                m->stat = SG_RM_STAT_VERSION_CONFLICT;
                settle(m, C(VERSION_CONFLICT), "the stored version differs from the expected one");
                m->version = cur;
            }
        }
        return;
    default:
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
    if (in->kind == SG_SUBOP_SCAN) {
        map_scan(reply, out);
        return 0;
    }
    /* Until an op's shape matches: an unexpected reply. */
    settle(out, C(BACKEND_ERROR), "unexpected reply type from Redis");
    map_keys(in, reply, out);
    return 0;
}
