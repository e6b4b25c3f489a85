/*
 * fuzz_replymap - the pure reply mapping (proxy/replymap.c) over every reply
 * hiredis can build from arbitrary bytes, for every kind of sub-op (every op,
 * an unknown op, key and page sub-ops, one or several keys). The mapping
 * must be total and deterministic, and what it hands back must be usable:
 * actions and counters in range, a value to restore that lies inside the
 * reply, a redirect only for an error with a usable target, a next page only
 * for a page sub-op with a cursor, a lease hint within its bounds. As on a
 * link, the header pre-scan runs first so no header can make hiredis
 * allocate gigabytes.
 */
#include <string.h>

#include <hiredis/hiredis.h>

#include "fuzz.h"

#include "optable.h"
#include "replymap.h"
#include "resp.h"
#include "request.h"
#include "slotgate.pb-c.h"

#define FUZZ_MAX_ELEMENTS 4096
#define FUZZ_MAX_BULK (1u << 20)

/* Every op the proxy sends to Redis, plus PING and an op it does not know. */
static const int OPS[] = {
    SLOTGATE__V1__OP__OP_GET,           SLOTGATE__V1__OP__OP_SET,
    SLOTGATE__V1__OP__OP_DELETE,        SLOTGATE__V1__OP__OP_EXPIRE,
    SLOTGATE__V1__OP__OP_MGET,          SLOTGATE__V1__OP__OP_MSET,
    SLOTGATE__V1__OP__OP_MDELETE,       SLOTGATE__V1__OP__OP_INVALIDATE,
    SLOTGATE__V1__OP__OP_GET_OR_LEASE,  SLOTGATE__V1__OP__OP_SET_WITH_LEASE,
    SLOTGATE__V1__OP__OP_SET_VERSIONED, SLOTGATE__V1__OP__OP_GET_VERSIONED,
    SLOTGATE__V1__OP__OP_PING,          999,
};

static int inside(const redisReply *r, const char *p, size_t len)
{
    if ((r->type == REDIS_REPLY_STRING || r->type == REDIS_REPLY_STATUS ||
         r->type == REDIS_REPLY_ERROR) &&
        p == r->str && len == r->len)
        return 1;
    if (r->type == REDIS_REPLY_ARRAY)
        for (size_t i = 0; i < r->elements; i++)
            if (inside(r->element[i], p, len))
                return 1;
    return 0;
}

static void check_map(const struct sg_rm_subop *in, const redisReply *reply)
{
    struct sg_rm_result m, again;
    SG_FUZZ_CHECK(sg_replymap(in, reply, &m) == 0);
    SG_FUZZ_CHECK(sg_replymap(in, reply, &again) == 0);
    SG_FUZZ_CHECK(memcmp(&m, &again, sizeof(m)) == 0); /* pure: same in, same out */
    SG_FUZZ_CHECK(m.action >= SG_RM_SETTLE && m.action <= SG_RM_SCRIPT_RESEND);
    SG_FUZZ_CHECK(m.stat >= SG_RM_STAT_NONE && m.stat <= SG_RM_STAT_MISS);
    SG_FUZZ_CHECK(m.code >= SLOTGATE__V1__CODE__CODE_OK);
    if (m.message != NULL)
        SG_FUZZ_CHECK(strlen(m.message) < (1u << 21));
    int err = reply->type == REDIS_REPLY_ERROR;
    if (m.decode) {
        SG_FUZZ_CHECK(m.action == SG_RM_SETTLE && m.keep_reply && !err);
        SG_FUZZ_CHECK(m.value != NULL && inside(reply, m.value, m.value_len));
    }
    if (m.keep_reply && err)
        SG_FUZZ_CHECK(m.message == reply->str && in->count <= 1);
    switch (m.action) {
    case SG_RM_REDIRECT:
        SG_FUZZ_CHECK(err && m.target.port >= 1 && m.target.port <= 65535);
        SG_FUZZ_CHECK(strnlen(m.target.host, sizeof(m.target.host)) < sizeof(m.target.host));
        break;
    case SG_RM_RETRY:
        SG_FUZZ_CHECK(err && m.message != NULL);
        break;
    case SG_RM_NEXT_PAGE:
        SG_FUZZ_CHECK(in->kind == SG_SUBOP_SCAN && !err);
        SG_FUZZ_CHECK(strnlen(m.cursor, sizeof(m.cursor)) < sizeof(m.cursor));
        SG_FUZZ_CHECK(strcmp(m.cursor, "0") != 0);
        break;
    case SG_RM_SETTLE_MGET:
        SG_FUZZ_CHECK(in->op == SLOTGATE__V1__OP__OP_MGET && in->kind == SG_SUBOP_KEYS);
        SG_FUZZ_CHECK(reply->type == REDIS_REPLY_ARRAY && in->count > 1 &&
                      reply->elements == in->count);
        break;
    case SG_RM_SCRIPT_RESEND:
        /* Only a script sent by its SHA, and only once in full. */
        SG_FUZZ_CHECK(err && !in->script_in_full);
        SG_FUZZ_CHECK(in->kind == SG_SUBOP_SCAN || (sg_op_flags(in->op) & SG_OPF_SCRIPT));
        break;
    case SG_RM_LEASE_WAIT:
        SG_FUZZ_CHECK(in->op == SLOTGATE__V1__OP__OP_GET_OR_LEASE && !err);
        SG_FUZZ_CHECK(m.retry_after_ms >= 1 && m.retry_after_ms <= 100);
        break;
    default:
        SG_FUZZ_CHECK(m.code != SLOTGATE__V1__CODE__CODE_OK || !err);
        break;
    }
}

static void map_every_subop(const redisReply *reply)
{
    for (size_t i = 0; i < sizeof(OPS) / sizeof(OPS[0]); i++)
        for (int kind = SG_SUBOP_KEYS; kind <= SG_SUBOP_SCAN; kind++)
            for (uint32_t count = 1; count <= 3; count++)
                for (int grouped = 0; grouped <= 1; grouped++)
                    for (int full = 0; full <= 1; full++) {
                        struct sg_rm_subop in = {OPS[i], kind, count, grouped, full};
                        check_map(&in, reply);
                    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct sg_resp_scan scan;
    sg_resp_scan_init(&scan, FUZZ_MAX_ELEMENTS, FUZZ_MAX_BULK);
    const char *why = NULL;
    if (sg_resp_scan(&scan, data, size, &why) != 0)
        return 0;
    redisReader *rd = redisReaderCreate();
    SG_FUZZ_CHECK(rd != NULL);
    SG_FUZZ_CHECK(redisReaderFeed(rd, (const char *)data, size) == REDIS_OK);
    for (;;) {
        void *reply = NULL;
        if (redisReaderGetReply(rd, &reply) != REDIS_OK || reply == NULL)
            break;
        map_every_subop(reply);
        freeReplyObject(reply);
    }
    redisReaderFree(rd);
    return 0;
}
