/*
 * test_replymap - the pure mapping from a Redis reply to an outcome and an
 * action (proxy/replymap.c), table-driven: every op against every kind of
 * reply Redis can send (bulk, nil, integer, status, array, and the errors
 * MOVED, ASK, TRYAGAIN, CLUSTERDOWN, LOADING, MASTERDOWN, NOSCRIPT, OOM,
 * READONLY, WRONGTYPE and an unknown one), plus the retry/backoff policy.
 * Replies are parsed from RESP text by hiredis's own reader, exactly as a
 * shard link builds them.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include "replymap.h"
#include "request.h"
#include "slotgate.pb-c.h"

#define C(x) SLOTGATE__V1__CODE__CODE_##x
#define OP(x) SLOTGATE__V1__OP__OP_##x

static redisReply *parse(const char *resp, size_t len)
{
    redisReader *rd = redisReaderCreate();
    assert_non_null(rd);
    assert_int_equal(redisReaderFeed(rd, resp, len), REDIS_OK);
    void *reply = NULL;
    assert_int_equal(redisReaderGetReply(rd, &reply), REDIS_OK);
    assert_non_null(reply);
    redisReaderFree(rd);
    return reply;
}

/* Sub-ops under test: every op, and MGET both single-key and per slot. */
enum {
    S_GET,
    S_SET,
    S_DELETE,
    S_EXPIRE,
    S_MGET1,
    S_MGET2,
    S_MSET,
    S_MDELETE,
    S_INVAL,
    S_GOL,
    S_SWL,
    S_SETV,
    S_GETV,
    N_SUBOPS
};

static const struct sg_rm_subop SUBOPS[N_SUBOPS] = {
    [S_GET] = {OP(GET), SG_SUBOP_KEYS, 1, 0},
    [S_SET] = {OP(SET), SG_SUBOP_KEYS, 1, 0},
    [S_DELETE] = {OP(DELETE), SG_SUBOP_KEYS, 1, 0},
    [S_EXPIRE] = {OP(EXPIRE), SG_SUBOP_KEYS, 1, 0},
    [S_MGET1] = {OP(MGET), SG_SUBOP_KEYS, 1, 0},
    [S_MGET2] = {OP(MGET), SG_SUBOP_KEYS, 2, 1},
    [S_MSET] = {OP(MSET), SG_SUBOP_KEYS, 1, 1},
    [S_MDELETE] = {OP(MDELETE), SG_SUBOP_KEYS, 1, 1},
    [S_INVAL] = {OP(INVALIDATE), SG_SUBOP_SCAN, 1, 0},
    [S_GOL] = {OP(GET_OR_LEASE), SG_SUBOP_KEYS, 1, 0},
    [S_SWL] = {OP(SET_WITH_LEASE), SG_SUBOP_KEYS, 1, 0},
    [S_SETV] = {OP(SET_VERSIONED), SG_SUBOP_KEYS, 1, 0},
    [S_GETV] = {OP(GET_VERSIONED), SG_SUBOP_KEYS, 1, 0},
};

/* Expectations. U: an unexpected reply (BACKEND_ERROR, no reply kept). */
#define A_SETTLE SG_RM_SETTLE
#define A_MGET SG_RM_SETTLE_MGET
#define A_RETRY SG_RM_RETRY
#define A_REDIR SG_RM_REDIRECT
#define A_PAGE SG_RM_NEXT_PAGE
#define A_WAIT SG_RM_LEASE_WAIT

struct expect {
    int action;
    int code;
    const char *message; /* NULL: none; "*": Redis's error text */
    int stat;
    int decode;
    int64_t count;
    uint64_t version;
    uint32_t retry_after_ms;
};

#define UNEXPECTED                                                                    \
    {                                                                                 \
        A_SETTLE, C(BACKEND_ERROR), "unexpected reply type from Redis", 0, 0, 0, 0, 0 \
    }
#define UNEXPECTED_MGET                                                               \
    {                                                                                 \
        A_SETTLE, C(BACKEND_ERROR), "unexpected MGET reply from Redis", 0, 0, 0, 0, 0 \
    }
#define UNEXPECTED_PAGE                                                         \
    {                                                                           \
        A_SETTLE, C(BACKEND_ERROR), "unexpected SCAN page reply", 0, 0, 0, 0, 0 \
    }
#define VALUE                                \
    {                                        \
        A_SETTLE, C(OK), NULL, 0, 1, 0, 0, 0 \
    }
#define MISS                                                      \
    {                                                             \
        A_SETTLE, C(NOT_FOUND), NULL, SG_RM_STAT_MISS, 0, 0, 0, 0 \
    }
#define SETS                                               \
    {                                                      \
        A_SETTLE, C(OK), NULL, SG_RM_STAT_SETS, 0, 0, 0, 0 \
    }
#define MGET_OK                            \
    {                                      \
        A_MGET, C(OK), NULL, 0, 0, 0, 0, 0 \
    }

/* Reply kinds that are not errors: the RESP, and what each sub-op makes of it. */
struct row {
    const char *name;
    const char *resp;
    size_t len; /* 0: strlen */
    struct expect want[N_SUBOPS];
};

#define VER5 "\0\0\0\0\0\0\0\5"

static const struct row ROWS[] = {
    {"bulk",
     "$5\r\nhello\r\n",
     0,
     {[S_GET] = VALUE,
      [S_SET] = UNEXPECTED,
      [S_DELETE] = UNEXPECTED,
      [S_EXPIRE] = UNEXPECTED,
      [S_MGET1] = VALUE, /* a one-key slot group is a GET */
      [S_MGET2] = UNEXPECTED_MGET,
      [S_MSET] = UNEXPECTED,
      [S_MDELETE] = UNEXPECTED,
      [S_INVAL] = UNEXPECTED_PAGE,
      [S_GOL] = UNEXPECTED,
      [S_SWL] = UNEXPECTED,
      [S_SETV] = UNEXPECTED,
      [S_GETV] = VALUE}},
    {"nil",
     "$-1\r\n",
     0,
     {[S_GET] = MISS,
      [S_SET] = {A_SETTLE, C(NOT_APPLIED), NULL, 0, 0, 0, 0, 0},
      [S_DELETE] = UNEXPECTED,
      [S_EXPIRE] = UNEXPECTED,
      [S_MGET1] = MISS,
      [S_MGET2] = UNEXPECTED_MGET,
      [S_MSET] = {A_SETTLE, C(NOT_APPLIED), NULL, 0, 0, 0, 0, 0},
      [S_MDELETE] = UNEXPECTED,
      [S_INVAL] = UNEXPECTED_PAGE,
      [S_GOL] = UNEXPECTED,
      [S_SWL] = UNEXPECTED,
      [S_SETV] = UNEXPECTED,
      [S_GETV] = MISS}},
    {"integer 1",
     ":1\r\n",
     0,
     {[S_GET] = UNEXPECTED,
      [S_SET] = UNEXPECTED,
      [S_DELETE] = {A_SETTLE, C(OK), NULL, 0, 0, 1, 0, 0},
      [S_EXPIRE] = {A_SETTLE, C(OK), NULL, 0, 0, 1, 0, 0},
      [S_MGET1] = UNEXPECTED,
      [S_MGET2] = UNEXPECTED_MGET,
      [S_MSET] = UNEXPECTED,
      [S_MDELETE] = {A_SETTLE, C(OK), NULL, 0, 0, 1, 0, 0},
      [S_INVAL] = UNEXPECTED_PAGE,
      [S_GOL] = UNEXPECTED,
      [S_SWL] = SETS,
      [S_SETV] = UNEXPECTED,
      [S_GETV] = UNEXPECTED}},
    {"integer 0",
     ":0\r\n",
     0,
     {[S_GET] = UNEXPECTED,
      [S_SET] = UNEXPECTED,
      [S_DELETE] = {A_SETTLE, C(NOT_FOUND), NULL, 0, 0, 0, 0, 0},
      [S_EXPIRE] = {A_SETTLE, C(NOT_FOUND), NULL, 0, 0, 0, 0, 0},
      [S_MGET1] = UNEXPECTED,
      [S_MGET2] = UNEXPECTED_MGET,
      [S_MSET] = UNEXPECTED,
      [S_MDELETE] = {A_SETTLE, C(NOT_FOUND), NULL, 0, 0, 0, 0, 0},
      [S_INVAL] = UNEXPECTED_PAGE,
      [S_GOL] = UNEXPECTED,
      [S_SWL] = {A_SETTLE, C(LEASE_INVALID), "the lease expired or belongs to another caller",
                 SG_RM_STAT_LEASE_REJECT, 0, 0, 0, 0},
      [S_SETV] = UNEXPECTED,
      [S_GETV] = UNEXPECTED}},
    {"status",
     "+OK\r\n",
     0,
     {[S_GET] = UNEXPECTED,
      [S_SET] = SETS,
      [S_DELETE] = UNEXPECTED,
      [S_EXPIRE] = UNEXPECTED,
      [S_MGET1] = UNEXPECTED,
      [S_MGET2] = UNEXPECTED_MGET,
      [S_MSET] = SETS,
      [S_MDELETE] = UNEXPECTED,
      [S_INVAL] = UNEXPECTED_PAGE,
      [S_GOL] = UNEXPECTED,
      [S_SWL] = UNEXPECTED,
      [S_SETV] = UNEXPECTED,
      [S_GETV] = UNEXPECTED}},
    {"empty array",
     "*0\r\n",
     0,
     {[S_GET] = UNEXPECTED,
      [S_SET] = UNEXPECTED,
      [S_DELETE] = UNEXPECTED,
      [S_EXPIRE] = UNEXPECTED,
      [S_MGET1] = UNEXPECTED,
      [S_MGET2] = UNEXPECTED_MGET,
      [S_MSET] = UNEXPECTED,
      [S_MDELETE] = UNEXPECTED,
      [S_INVAL] = UNEXPECTED_PAGE,
      [S_GOL] = UNEXPECTED,
      [S_SWL] = UNEXPECTED,
      [S_SETV] = UNEXPECTED,
      [S_GETV] = UNEXPECTED}},
    {"array of one",
     "*1\r\n$1\r\nv\r\n",
     0,
     {[S_GET] = UNEXPECTED,
      [S_SET] = UNEXPECTED,
      [S_DELETE] = UNEXPECTED,
      [S_EXPIRE] = UNEXPECTED,
      [S_MGET1] = UNEXPECTED,
      [S_MGET2] = UNEXPECTED_MGET,
      [S_MSET] = UNEXPECTED,
      [S_MDELETE] = UNEXPECTED,
      [S_INVAL] = UNEXPECTED_PAGE,
      [S_GOL] = UNEXPECTED,
      [S_SWL] = UNEXPECTED,
      [S_SETV] = UNEXPECTED,
      [S_GETV] = UNEXPECTED}},
    {"array of two (value, nil)",
     "*2\r\n$1\r\nv\r\n$-1\r\n",
     0,
     {[S_GET] = UNEXPECTED,
      [S_SET] = UNEXPECTED,
      [S_DELETE] = UNEXPECTED,
      [S_EXPIRE] = UNEXPECTED,
      [S_MGET1] = UNEXPECTED,
      [S_MGET2] = MGET_OK,
      [S_MSET] = UNEXPECTED,
      [S_MDELETE] = UNEXPECTED,
      [S_INVAL] = UNEXPECTED_PAGE,
      [S_GOL] = UNEXPECTED,
      [S_SWL] = UNEXPECTED,
      [S_SETV] = UNEXPECTED,
      [S_GETV] = UNEXPECTED}},
    {"page {17, 3}",
     "*2\r\n$2\r\n17\r\n:3\r\n",
     0,
     {[S_GET] = UNEXPECTED,
      [S_SET] = UNEXPECTED,
      [S_DELETE] = UNEXPECTED,
      [S_EXPIRE] = UNEXPECTED,
      [S_MGET1] = UNEXPECTED,
      [S_MGET2] = MGET_OK,
      [S_MSET] = UNEXPECTED,
      [S_MDELETE] = UNEXPECTED,
      [S_INVAL] = {A_PAGE, C(OK), NULL, 0, 0, 3, 0, 0},
      [S_GOL] = UNEXPECTED,
      [S_SWL] = UNEXPECTED,
      [S_SETV] = UNEXPECTED,
      [S_GETV] = UNEXPECTED}},
    {"last page {0, 2}",
     "*2\r\n$1\r\n0\r\n:2\r\n",
     0,
     {[S_GET] = UNEXPECTED,
      [S_SET] = UNEXPECTED,
      [S_DELETE] = UNEXPECTED,
      [S_EXPIRE] = UNEXPECTED,
      [S_MGET1] = UNEXPECTED,
      [S_MGET2] = MGET_OK,
      [S_MSET] = UNEXPECTED,
      [S_MDELETE] = UNEXPECTED,
      [S_INVAL] = {A_SETTLE, C(OK), NULL, 0, 0, 2, 0, 0},
      [S_GOL] = UNEXPECTED,
      [S_SWL] = UNEXPECTED,
      [S_SETV] = UNEXPECTED,
      [S_GETV] = UNEXPECTED}},
    {"page with an oversized cursor",
     "*2\r\n$24\r\n123456789012345678901234\r\n:2\r\n",
     0,
     {[S_GET] = UNEXPECTED,
      [S_SET] = UNEXPECTED,
      [S_DELETE] = UNEXPECTED,
      [S_EXPIRE] = UNEXPECTED,
      [S_MGET1] = UNEXPECTED,
      [S_MGET2] = MGET_OK,
      [S_MSET] = UNEXPECTED,
      [S_MDELETE] = UNEXPECTED,
      [S_INVAL] = UNEXPECTED_PAGE,
      [S_GOL] = UNEXPECTED,
      [S_SWL] = UNEXPECTED,
      [S_SETV] = UNEXPECTED,
      [S_GETV] = UNEXPECTED}},
    {"lease hit {0, v}",
     "*2\r\n:0\r\n$1\r\nv\r\n",
     0,
     {[S_GET] = UNEXPECTED,
      [S_SET] = UNEXPECTED,
      [S_DELETE] = UNEXPECTED,
      [S_EXPIRE] = UNEXPECTED,
      [S_MGET1] = UNEXPECTED,
      [S_MGET2] = MGET_OK,
      [S_MSET] = UNEXPECTED,
      [S_MDELETE] = UNEXPECTED,
      [S_INVAL] = UNEXPECTED_PAGE,
      [S_GOL] = VALUE,
      [S_SWL] = UNEXPECTED,
      [S_SETV] = UNEXPECTED,
      [S_GETV] = UNEXPECTED}},
    {"lease granted {1}",
     "*1\r\n:1\r\n",
     0,
     {[S_GET] = UNEXPECTED,
      [S_SET] = UNEXPECTED,
      [S_DELETE] = UNEXPECTED,
      [S_EXPIRE] = UNEXPECTED,
      [S_MGET1] = UNEXPECTED,
      [S_MGET2] = UNEXPECTED_MGET,
      [S_MSET] = UNEXPECTED,
      [S_MDELETE] = UNEXPECTED,
      [S_INVAL] = UNEXPECTED_PAGE,
      [S_GOL] = {A_SETTLE, C(LEASE_GRANTED), NULL, SG_RM_STAT_LEASE_GRANT, 0, 0, 0, 0},
      [S_SWL] = UNEXPECTED,
      [S_SETV] = UNEXPECTED,
      [S_GETV] = UNEXPECTED}},
    {"lease held {2, 42}",
     "*2\r\n:2\r\n:42\r\n",
     0,
     {[S_GET] = UNEXPECTED,
      [S_SET] = UNEXPECTED,
      [S_DELETE] = UNEXPECTED,
      [S_EXPIRE] = UNEXPECTED,
      [S_MGET1] = UNEXPECTED,
      [S_MGET2] = MGET_OK,
      [S_MSET] = UNEXPECTED,
      [S_MDELETE] = UNEXPECTED,
      [S_INVAL] = UNEXPECTED_PAGE,
      [S_GOL] = {A_WAIT, C(LEASE_WAIT), "another caller holds the lease", 0, 0, 0, 0, 42},
      [S_SWL] = UNEXPECTED,
      [S_SETV] = UNEXPECTED,
      [S_GETV] = UNEXPECTED}},
    {"lease held {2, 5000}: hint capped",
     "*2\r\n:2\r\n:5000\r\n",
     0,
     {[S_GET] = UNEXPECTED,
      [S_SET] = UNEXPECTED,
      [S_DELETE] = UNEXPECTED,
      [S_EXPIRE] = UNEXPECTED,
      [S_MGET1] = UNEXPECTED,
      [S_MGET2] = MGET_OK,
      [S_MSET] = UNEXPECTED,
      [S_MDELETE] = UNEXPECTED,
      [S_INVAL] = UNEXPECTED_PAGE,
      [S_GOL] = {A_WAIT, C(LEASE_WAIT), "another caller holds the lease", 0, 0, 0, 0, 100},
      [S_SWL] = UNEXPECTED,
      [S_SETV] = UNEXPECTED,
      [S_GETV] = UNEXPECTED}},
    {"lease held {2, -1}: no TTL",
     "*2\r\n:2\r\n:-1\r\n",
     0,
     {[S_GET] = UNEXPECTED,
      [S_SET] = UNEXPECTED,
      [S_DELETE] = UNEXPECTED,
      [S_EXPIRE] = UNEXPECTED,
      [S_MGET1] = UNEXPECTED,
      [S_MGET2] = MGET_OK,
      [S_MSET] = UNEXPECTED,
      [S_MDELETE] = UNEXPECTED,
      [S_INVAL] = UNEXPECTED_PAGE,
      [S_GOL] = {A_WAIT, C(LEASE_WAIT), "another caller holds the lease", 0, 0, 0, 0, 100},
      [S_SWL] = UNEXPECTED,
      [S_SETV] = UNEXPECTED,
      [S_GETV] = UNEXPECTED}},
    {"unknown lease answer {3}",
     "*1\r\n:3\r\n",
     0,
     {[S_GET] = UNEXPECTED,
      [S_SET] = UNEXPECTED,
      [S_DELETE] = UNEXPECTED,
      [S_EXPIRE] = UNEXPECTED,
      [S_MGET1] = UNEXPECTED,
      [S_MGET2] = UNEXPECTED_MGET,
      [S_MSET] = UNEXPECTED,
      [S_MDELETE] = UNEXPECTED,
      [S_INVAL] = UNEXPECTED_PAGE,
      [S_GOL] = UNEXPECTED,
      [S_SWL] = UNEXPECTED,
      [S_SETV] = UNEXPECTED,
      [S_GETV] = UNEXPECTED}},
    {"versioned applied {1, v5}",
     "*2\r\n:1\r\n$8\r\n" VER5 "\r\n",
     22, /* 4 + 4 + 4 + 8 + 2: VER5 holds NULs, so no strlen */
     {[S_GET] = UNEXPECTED,
      [S_SET] = UNEXPECTED,
      [S_DELETE] = UNEXPECTED,
      [S_EXPIRE] = UNEXPECTED,
      [S_MGET1] = UNEXPECTED,
      [S_MGET2] = MGET_OK,
      [S_MSET] = UNEXPECTED,
      [S_MDELETE] = UNEXPECTED,
      [S_INVAL] = UNEXPECTED_PAGE,
      /* {1, ...}: GET_OR_LEASE reads the kind only */
      [S_GOL] = {A_SETTLE, C(LEASE_GRANTED), NULL, SG_RM_STAT_LEASE_GRANT, 0, 0, 0, 0},
      [S_SWL] = UNEXPECTED,
      [S_SETV] = {A_SETTLE, C(OK), NULL, SG_RM_STAT_SETS, 0, 0, 6, 0},
      [S_GETV] = UNEXPECTED}},
    {"versioned conflict {0, v5}",
     "*2\r\n:0\r\n$8\r\n" VER5 "\r\n",
     22, /* 4 + 4 + 4 + 8 + 2: VER5 holds NULs, so no strlen */
     {[S_GET] = UNEXPECTED,
      [S_SET] = UNEXPECTED,
      [S_DELETE] = UNEXPECTED,
      [S_EXPIRE] = UNEXPECTED,
      [S_MGET1] = UNEXPECTED,
      [S_MGET2] = MGET_OK,
      [S_MSET] = UNEXPECTED,
      [S_MDELETE] = UNEXPECTED,
      [S_INVAL] = UNEXPECTED_PAGE,
      [S_GOL] = {A_SETTLE, C(OK), NULL, 0, 1, 0, 0, 0}, /* {0, bulk} is a lease hit */
      [S_SWL] = UNEXPECTED,
      [S_SETV] = {A_SETTLE, C(VERSION_CONFLICT), "the stored version differs from the expected one",
                  SG_RM_STAT_VERSION_CONFLICT, 0, 0, 5, 0},
      [S_GETV] = UNEXPECTED}},
    {"versioned with a short version",
     "*2\r\n:1\r\n$7\r\n1234567\r\n",
     0,
     {[S_GET] = UNEXPECTED,
      [S_SET] = UNEXPECTED,
      [S_DELETE] = UNEXPECTED,
      [S_EXPIRE] = UNEXPECTED,
      [S_MGET1] = UNEXPECTED,
      [S_MGET2] = MGET_OK,
      [S_MSET] = UNEXPECTED,
      [S_MDELETE] = UNEXPECTED,
      [S_INVAL] = UNEXPECTED_PAGE,
      [S_GOL] = {A_SETTLE, C(LEASE_GRANTED), NULL, SG_RM_STAT_LEASE_GRANT, 0, 0, 0, 0},
      [S_SWL] = UNEXPECTED,
      [S_SETV] = UNEXPECTED,
      [S_GETV] = UNEXPECTED}},
};

static void check(const char *what, int s, const struct sg_rm_result *m, const struct expect *w)
{
    char ctx[160];
    snprintf(ctx, sizeof(ctx), "%s, sub-op %d", what, s);
    if (m->action != w->action || m->code != w->code || m->stat != w->stat ||
        m->decode != w->decode || m->count != w->count || m->version != w->version ||
        m->retry_after_ms != w->retry_after_ms)
        fail_msg("%s: got action %d code %d stat %d decode %d count %lld version %llu hint %u", ctx,
                 m->action, m->code, m->stat, m->decode, (long long)m->count,
                 (unsigned long long)m->version, m->retry_after_ms);
    if (w->message == NULL) {
        if (m->message != NULL)
            fail_msg("%s: unexpected message \"%s\"", ctx, m->message);
    } else if (m->message == NULL || strcmp(m->message, w->message) != 0) {
        fail_msg("%s: message \"%s\", want \"%s\"", ctx, m->message ? m->message : "(null)",
                 w->message);
    }
}

static void test_every_op_against_every_reply(void **state)
{
    (void)state;
    for (size_t i = 0; i < sizeof(ROWS) / sizeof(ROWS[0]); i++) {
        const struct row *row = &ROWS[i];
        redisReply *reply = parse(row->resp, row->len ? row->len : strlen(row->resp));
        for (int s = 0; s < N_SUBOPS; s++) {
            struct sg_rm_result m;
            assert_int_equal(sg_replymap(&SUBOPS[s], reply, &m), 0);
            check(row->name, s, &m, &row->want[s]);
            /* A value to restore, or an MGET array, is read from the reply. */
            assert_int_equal(m.keep_reply, m.decode || m.action == SG_RM_SETTLE_MGET);
            if (m.decode) {
                /* The bulk itself, or {0, bulk}'s bulk. */
                const redisReply *v = reply->type == REDIS_REPLY_STRING ? reply : reply->element[1];
                assert_true(m.value == v->str);
                assert_int_equal(m.value_len, v->len);
            }
        }
        freeReplyObject(reply);
    }
}

/* The cursor of a page is carried to the next page. */
static void test_page_cursor(void **state)
{
    (void)state;
    redisReply *reply = parse("*2\r\n$2\r\n17\r\n:3\r\n", 17);
    struct sg_rm_result m;
    sg_replymap(&SUBOPS[S_INVAL], reply, &m);
    assert_string_equal(m.cursor, "17");
    freeReplyObject(reply);
    reply = parse("*2\r\n$1\r\n0\r\n:2\r\n", 15);
    sg_replymap(&SUBOPS[S_INVAL], reply, &m);
    assert_string_equal(m.cursor, "0");
    freeReplyObject(reply);
}

/* Errors mean the same for every op. */
struct error_row {
    const char *text;
    int action;
    int code;
    const char *message; /* "*": Redis's own text (single key) */
    int stat;
    int refresh;
    int asking;
    int port;
};

static const struct error_row ERRORS[] = {
    {"MOVED 3999 127.0.0.1:7002", A_REDIR, C(BACKEND_ERROR), "too many redirects", SG_RM_STAT_MOVED,
     1, 0, 7002},
    {"ASK 3999 127.0.0.1:7003", A_REDIR, C(BACKEND_ERROR), "too many redirects", SG_RM_STAT_ASK, 0,
     1, 7003},
    {"TRYAGAIN Multiple keys request during rehashing of slot", A_RETRY, C(TIMEOUT),
     "shard busy (TRYAGAIN/LOADING)", SG_RM_STAT_TRYAGAIN, 0, 0, 0},
    {"CLUSTERDOWN The cluster is down", A_RETRY, C(CLUSTER_DOWN), "cluster is down",
     SG_RM_STAT_CLUSTERDOWN, 1, 0, 0},
    {"LOADING Redis is loading the dataset in memory", A_RETRY, C(TIMEOUT),
     "shard busy (TRYAGAIN/LOADING)", SG_RM_STAT_TRYAGAIN, 0, 0, 0},
    {"MASTERDOWN Link with MASTER is down and replica-serve-stale-data is set to 'no'.", A_RETRY,
     C(TIMEOUT), "shard busy (TRYAGAIN/LOADING)", SG_RM_STAT_TRYAGAIN, 0, 0, 0},
    {"NOSCRIPT No matching script. Please use EVAL.", A_SETTLE, C(BACKEND_ERROR), "*", 0, 0, 0, 0},
    {"OOM command not allowed when used memory > 'maxmemory'.", A_SETTLE, C(BACKEND_ERROR), "*", 0,
     0, 0, 0},
    {"READONLY You can't write against a read only replica.", A_SETTLE, C(BACKEND_ERROR), "*", 0, 0,
     0, 0},
    {"WRONGTYPE Operation against a key holding the wrong kind of value", A_SETTLE,
     C(BACKEND_ERROR), "*", 0, 0, 0, 0},
    {"ERR something nobody has seen before", A_SETTLE, C(BACKEND_ERROR), "*", 0, 0, 0, 0},
    {"MOVED not-a-slot", A_SETTLE, C(BACKEND_ERROR), "*", 0, 0, 0, 0},
};

static void test_every_op_against_every_error(void **state)
{
    (void)state;
    for (size_t i = 0; i < sizeof(ERRORS) / sizeof(ERRORS[0]); i++) {
        const struct error_row *e = &ERRORS[i];
        char resp[256];
        int n = snprintf(resp, sizeof(resp), "-%s\r\n", e->text);
        redisReply *reply = parse(resp, (size_t)n);
        for (int s = 0; s < N_SUBOPS; s++) {
            struct sg_rm_result m;
            sg_replymap(&SUBOPS[s], reply, &m);
            int script = SUBOPS[s].kind == SG_SUBOP_SCAN || SUBOPS[s].op == OP(GET_OR_LEASE) ||
                         SUBOPS[s].op == OP(SET_WITH_LEASE) || SUBOPS[s].op == OP(SET_VERSIONED);
            if (script && strncmp(e->text, "NOSCRIPT", 8) == 0) {
                /* EVALSHA the node had not cached: the script did not run. */
                assert_int_equal(m.action, SG_RM_SCRIPT_RESEND);
                assert_int_equal(m.keep_reply, 0);
                assert_int_equal(m.error_reply, 0);
                /* Sent in full already: Redis's error, as any other. */
                struct sg_rm_subop full = SUBOPS[s];
                full.script_in_full = 1;
                sg_replymap(&full, reply, &m);
                assert_int_equal(m.action, SG_RM_SETTLE);
                assert_int_equal(m.code, C(BACKEND_ERROR));
                assert_int_equal(m.error_reply, 1);
                continue;
            }
            assert_int_equal(m.action, e->action);
            assert_int_equal(m.code, e->code);
            assert_int_equal(m.stat, e->stat);
            assert_int_equal(m.refresh, e->refresh);
            assert_int_equal(m.asking, e->asking);
            assert_int_equal(m.decode, 0);
            if (e->action == A_REDIR) {
                assert_string_equal(m.target.host, "127.0.0.1");
                assert_int_equal(m.target.port, e->port);
            }
            if (e->message[0] != '*') {
                assert_string_equal(m.message, e->message);
                assert_int_equal(m.keep_reply, 0);
            } else if (SUBOPS[s].count > 1) {
                /* Several keys share one error: a fixed message per key. */
                assert_string_equal(m.message, "Redis answered with an error");
                assert_int_equal(m.keep_reply, 0);
                assert_int_equal(m.error_reply, 1);
            } else {
                assert_string_equal(m.message, e->text);
                assert_true(m.message == reply->str); /* kept with the reply */
                assert_int_equal(m.keep_reply, 1);
                assert_int_equal(m.error_reply, 1);
            }
        }
        freeReplyObject(reply);
    }
}

/* Nested and exotic shapes never crash and are never taken for a value. */
static void test_nested_arrays(void **state)
{
    (void)state;
    const char *resp = "*2\r\n*1\r\n:0\r\n*0\r\n";
    redisReply *reply = parse(resp, strlen(resp));
    for (int s = 0; s < N_SUBOPS; s++) {
        struct sg_rm_result m;
        sg_replymap(&SUBOPS[s], reply, &m);
        if (s == S_MGET2) {
            assert_int_equal(m.action, SG_RM_SETTLE_MGET);
            continue;
        }
        assert_int_equal(m.action, SG_RM_SETTLE);
        assert_int_equal(m.code, C(BACKEND_ERROR));
        assert_int_equal(m.decode, 0);
    }
    freeReplyObject(reply);
}

/* The one retry policy: base doubled per retry, capped at 2^6; bounded counts. */
static void test_backoff_policy(void **state)
{
    (void)state;
    assert_int_equal(sg_backoff_ms(10, 0), 10);
    assert_int_equal(sg_backoff_ms(10, 1), 20);
    assert_int_equal(sg_backoff_ms(10, 5), 320);
    assert_int_equal(sg_backoff_ms(10, 6), 640);
    assert_int_equal(sg_backoff_ms(10, 7), 640);
    assert_int_equal(sg_backoff_ms(10, 200), 640);
    assert_true(sg_retry_fits(0, SG_RETRY_MAX, 1000, 10, 1011));
    assert_false(sg_retry_fits(0, SG_RETRY_MAX, 1000, 10, 1010)); /* must end before */
    assert_false(sg_retry_fits(SG_RETRY_MAX, SG_RETRY_MAX, 0, 1, 1000000));
    assert_true(sg_retry_fits(SG_RETRY_LEASE_MAX - 1, SG_RETRY_LEASE_MAX, 0, 1, 1000000));
    assert_false(sg_retry_fits(SG_RETRY_LEASE_MAX, SG_RETRY_LEASE_MAX, 0, 1, 1000000));
    assert_true(SG_RETRY_LEASE_MAX <= SG_RETRY_MAX);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_every_op_against_every_reply),
        cmocka_unit_test(test_page_cursor),
        cmocka_unit_test(test_every_op_against_every_error),
        cmocka_unit_test(test_nested_arrays),
        cmocka_unit_test(test_backoff_policy),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
