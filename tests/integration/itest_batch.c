/*
 * itest_batch - batch ops, GET coalescing and worker threads against a
 * 3-master cluster without replicas.
 *
 * batches: MGET/MSET/MDELETE across all three shards with missing keys in
 * the middle answer per key, in the client's key order; per-item and batch
 * default TTLs land on the owning node; 50 keys of one hash tag in one MGET.
 * limits: max_batch_keys and max_batch_bytes give BATCH_TOO_LARGE and the
 * connection stays usable.
 * coalescing: GETs pipelined behind a SET of the same key on one connection
 * never see an older value; identical GETs from several connections are
 * coalesced (STATS coalesced_gets) and only ever answer values that were
 * written.
 * order and ids: 8 connections x 5000 pipelined requests through 2 workers;
 * every id answered once, every GET carries its own key's value.
 * dead shard (last, it stays dead): one master is SIGKILLed; a batch answers
 * OK for the healthy shards' keys and a backend error for the dead one's.
 */
#include <pthread.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "harness.h"

#define MAX_BATCH_KEYS 64
#define MAX_BATCH_BYTES 16384

static struct sg_client *C;

static int group_setup(void **state)
{
    struct h_opts o = {
        .replicas = -1,
        .workers = 2,
        .limits_yaml = "  max_batch_keys: 64\n  max_batch_bytes: 16384",
    };
    return h_group_start(&H, "batch", &o, &C);
}

static int group_teardown(void **state)
{
    return h_group_stop(&H, &C);
}

/* ---- helpers ------------------------------------------------------------------ */

static long long owner_exists(const char *key)
{
    int port = h_key_owner(&H, key, strlen(key));
    assert_true(port > 0);
    redisReply *r = h_redis_cmd(port, "EXISTS %s", key);
    assert_non_null(r);
    assert_int_equal(r->type, REDIS_REPLY_INTEGER);
    long long v = r->integer;
    freeReplyObject(r);
    return v;
}

static void b_key(const char *pfx, int i, char *k, size_t n)
{
    snprintf(k, n, "%s:%d", pfx, i);
}
static void b_val(const char *pfx, int i, char *v, size_t n)
{
    snprintf(v, n, "value-of-%s:%d-%.*s", pfx, i, i % 17, "abcdefghijklmnopqrstuvwxyz");
}

/* Number of distinct masters owning keys pfx:0..n-1. */
static int distinct_owners(const char *pfx, int n)
{
    int owners[H_MAX_NODES], no = 0;
    char k[64];
    for (int i = 0; i < n; i++) {
        b_key(pfx, i, k, sizeof(k));
        int p = h_key_owner(&H, k, strlen(k));
        assert_true(p > 0);
        int seen = 0;
        for (int j = 0; j < no; j++)
            seen |= owners[j] == p;
        if (!seen)
            owners[no++] = p;
    }
    return no;
}

static void expect_result(const struct sg_response *resp, size_t i, int code, const char *val)
{
    const struct sg_key_result *kr = &resp->results[i];
    if (kr->code != code)
        fail_msg("results[%zu]: %s (%s), expected %s", i, sg_code_name(kr->code),
                 kr->message ? kr->message : "", sg_code_name(code));
    if (val && (kr->value_len != strlen(val) || memcmp(kr->value, val, kr->value_len) != 0))
        fail_msg("results[%zu]: value \"%.*s\", expected \"%s\"", i, (int)kr->value_len,
                 (const char *)kr->value, val);
}

/* ---- 1. batches across shards ------------------------------------------------- */

#define NB 30
/* Keys with i % 3 == 1 are never written: misses in the middle of a batch. */
static int b_written(int i)
{
    return i % 3 != 1;
}

static void test_batch_across_shards(void **state)
{
    const char *pfx = "bx";
    assert_int_equal(distinct_owners(pfx, NB), 3);
    char k[64], v[96];

    /* MSET of the written keys: per-item TTLs for some, the batch default
     * (ttl_ms) for those whose ttls_ms entry is 0. */
    const uint64_t batch_ttl = 50000;
    struct sg_request *r = sg_request_new(SG_OP_MSET);
    int widx[NB], nw = 0;
    for (int i = 0; i < NB; i++) {
        if (!b_written(i))
            continue;
        b_key(pfx, i, k, sizeof(k));
        b_val(pfx, i, v, sizeof(v));
        sg_request_add_key(r, k, strlen(k));
        sg_request_add_value(r, v, strlen(v));
        sg_request_add_ttl(r, i % 2 ? 0 : 20000 + (uint64_t)i * 1000);
        widx[nw++] = i;
    }
    sg_request_ttl(r, batch_ttl);
    struct sg_response *resp = h_call(C, r);
    assert_int_equal(resp->code, SG_OK);
    assert_int_equal(resp->n_results, nw);
    for (int j = 0; j < nw; j++)
        expect_result(resp, (size_t)j, SG_OK, NULL);
    sg_response_free(resp);

    for (int j = 0; j < nw; j++) {
        int i = widx[j];
        b_key(pfx, i, k, sizeof(k));
        long long want = i % 2 ? (long long)batch_ttl : 20000 + i * 1000LL;
        long long pttl = h_owner_pttl(&H, k);
        if (pttl > want || pttl <= want - 5000)
            fail_msg("%s: PTTL on its owner %lld, expected (%lld, %lld]", k, pttl, want - 5000,
                     want);
    }

    /* MGET of all keys, in a scrambled client order. */
    int order[NB];
    for (int i = 0; i < NB; i++)
        order[i] = (i * 7 + 3) % NB;
    r = sg_request_new(SG_OP_MGET);
    for (int j = 0; j < NB; j++) {
        b_key(pfx, order[j], k, sizeof(k));
        sg_request_add_key(r, k, strlen(k));
    }
    resp = h_call(C, r);
    assert_int_equal(resp->code, SG_OK);
    assert_int_equal(resp->n_results, NB);
    for (int j = 0; j < NB; j++) {
        int i = order[j];
        b_val(pfx, i, v, sizeof(v));
        expect_result(resp, (size_t)j, b_written(i) ? SG_OK : SG_NOT_FOUND,
                      b_written(i) ? v : NULL);
    }
    sg_response_free(resp);

    /* MDELETE of all keys (plus one duplicate key at the end). */
    r = sg_request_new(SG_OP_MDELETE);
    for (int j = 0; j < NB; j++) {
        b_key(pfx, order[j], k, sizeof(k));
        sg_request_add_key(r, k, strlen(k));
    }
    resp = h_call(C, r);
    assert_int_equal(resp->code, SG_OK);
    assert_int_equal(resp->n_results, NB);
    assert_int_equal(resp->count, nw);
    for (int j = 0; j < NB; j++)
        expect_result(resp, (size_t)j, b_written(order[j]) ? SG_OK : SG_NOT_FOUND, NULL);
    sg_response_free(resp);
    for (int i = 0; i < NB; i++) {
        b_key(pfx, i, k, sizeof(k));
        if (owner_exists(k) != 0)
            fail_msg("%s still exists on its owner after MDELETE", k);
    }

    /* Deleting again: nothing removed, every key NOT_FOUND. */
    r = sg_request_new(SG_OP_MDELETE);
    for (int j = 0; j < NB; j++) {
        b_key(pfx, j, k, sizeof(k));
        sg_request_add_key(r, k, strlen(k));
    }
    resp = h_call(C, r);
    assert_int_equal(resp->code, SG_OK);
    assert_int_equal(resp->count, 0);
    for (int j = 0; j < NB; j++)
        expect_result(resp, (size_t)j, SG_NOT_FOUND, NULL);
    sg_response_free(resp);
}

/* 50 keys sharing the hash tag {t}: one slot, one MGET. */
static void test_batch_hash_tag(void **state)
{
    char k[64], v[96];
    int slot0 = h_keyslot(&H, "{t}:1", 5);
    assert_true(slot0 >= 0);
    for (int i = 1; i <= 50; i++) {
        snprintf(k, sizeof(k), "{t}:%d", i);
        assert_int_equal(h_keyslot(&H, k, strlen(k)), slot0);
    }
    /* every 7th key is missing */
    struct sg_request *r = sg_request_new(SG_OP_MSET);
    int nw = 0;
    for (int i = 1; i <= 50; i++) {
        if (i % 7 == 0)
            continue;
        snprintf(k, sizeof(k), "{t}:%d", i);
        b_val("{t}", i, v, sizeof(v));
        sg_request_add_key(r, k, strlen(k));
        sg_request_add_value(r, v, strlen(v));
        nw++;
    }
    struct sg_response *resp = h_call(C, r);
    assert_int_equal(resp->code, SG_OK);
    assert_int_equal(resp->n_results, nw);
    for (int j = 0; j < nw; j++)
        expect_result(resp, (size_t)j, SG_OK, NULL);
    sg_response_free(resp);

    /* client order reversed */
    r = sg_request_new(SG_OP_MGET);
    for (int i = 50; i >= 1; i--) {
        snprintf(k, sizeof(k), "{t}:%d", i);
        sg_request_add_key(r, k, strlen(k));
    }
    resp = h_call(C, r);
    assert_int_equal(resp->code, SG_OK);
    assert_int_equal(resp->n_results, 50);
    for (int j = 0; j < 50; j++) {
        int i = 50 - j;
        b_val("{t}", i, v, sizeof(v));
        expect_result(resp, (size_t)j, i % 7 ? SG_OK : SG_NOT_FOUND, i % 7 ? v : NULL);
    }
    sg_response_free(resp);
    /* the keys are where Redis says the tag lives */
    int owner = h_slot_owner(&H, slot0);
    redisReply *rr = h_redis_cmd(owner, "CLUSTER COUNTKEYSINSLOT %d", slot0);
    assert_non_null(rr);
    assert_true(rr->type == REDIS_REPLY_INTEGER && rr->integer >= nw);
    freeReplyObject(rr);
}

/* ---- 2. limits ---------------------------------------------------------------------- */

static void test_batch_limits(void **state)
{
    const struct sg_limits *lim = sg_client_limits(C);
    assert_int_equal(lim->max_batch_keys, MAX_BATCH_KEYS);
    assert_int_equal(lim->max_batch_bytes, MAX_BATCH_BYTES);
    char k[64];

    /* one key over max_batch_keys, for each batch op */
    static const int ops[] = {SG_OP_MGET, SG_OP_MSET, SG_OP_MDELETE};
    for (size_t o = 0; o < 3; o++) {
        struct sg_request *r = sg_request_new(ops[o]);
        for (int i = 0; i < MAX_BATCH_KEYS + 1; i++) {
            b_key("lim", i, k, sizeof(k));
            sg_request_add_key(r, k, strlen(k));
            if (ops[o] == SG_OP_MSET)
                sg_request_add_value(r, "v", 1);
        }
        struct sg_response *resp = h_call(C, r);
        if (resp->code != SG_BATCH_TOO_LARGE)
            fail_msg("op %d with %d keys answered %s", ops[o], MAX_BATCH_KEYS + 1,
                     sg_code_name(resp->code));
        assert_int_equal(resp->n_results, 0);
        sg_response_free(resp);
    }
    /* none of the MSET's keys was written */
    for (int i = 0; i < MAX_BATCH_KEYS + 1; i++) {
        b_key("lim", i, k, sizeof(k));
        assert_int_equal(h_get_code(C, k, strlen(k)), SG_NOT_FOUND);
    }

    /* exactly max_batch_keys is accepted */
    struct sg_request *r = sg_request_new(SG_OP_MGET);
    for (int i = 0; i < MAX_BATCH_KEYS; i++) {
        b_key("lim", i, k, sizeof(k));
        sg_request_add_key(r, k, strlen(k));
    }
    struct sg_response *resp = h_call(C, r);
    assert_int_equal(resp->code, SG_OK);
    assert_int_equal(resp->n_results, MAX_BATCH_KEYS);
    sg_response_free(resp);

    /* bytes: 3 values of 6000 bytes (18000 + keys > 16384) */
    static char big[6000];
    memset(big, 'b', sizeof(big));
    r = sg_request_new(SG_OP_MSET);
    for (int i = 0; i < 3; i++) {
        b_key("limb", i, k, sizeof(k));
        sg_request_add_key(r, k, strlen(k));
        sg_request_add_value(r, big, sizeof(big));
    }
    resp = h_call(C, r);
    if (resp->code != SG_BATCH_TOO_LARGE)
        fail_msg("MSET of 18000+ bytes answered %s", sg_code_name(resp->code));
    sg_response_free(resp);
    b_key("limb", 0, k, sizeof(k));
    assert_int_equal(h_get_code(C, k, strlen(k)), SG_NOT_FOUND);

    /* MGET whose keys alone exceed max_batch_bytes: 60 keys of 300 bytes */
    char lk[301];
    r = sg_request_new(SG_OP_MGET);
    for (int i = 0; i < 60; i++) {
        memset(lk, 'k', 300);
        int n = snprintf(lk, sizeof(lk), "limk:%d:", i);
        lk[n] = 'k';
        sg_request_add_key(r, lk, 300);
    }
    resp = h_call(C, r);
    if (resp->code != SG_BATCH_TOO_LARGE)
        fail_msg("MGET of 18000 key bytes answered %s", sg_code_name(resp->code));
    sg_response_free(resp);

    /* two values of 6000 bytes fit, and the connection still works */
    r = sg_request_new(SG_OP_MSET);
    for (int i = 0; i < 2; i++) {
        b_key("limb", i, k, sizeof(k));
        sg_request_add_key(r, k, strlen(k));
        sg_request_add_value(r, big, sizeof(big));
    }
    resp = h_call(C, r);
    assert_int_equal(resp->code, SG_OK);
    expect_result(resp, 0, SG_OK, NULL);
    expect_result(resp, 1, SG_OK, NULL);
    sg_response_free(resp);
    b_key("limb", 1, k, sizeof(k));
    h_expect_value(C, k, strlen(k), big, sizeof(big));
    assert_int_equal(hc_ping(C), SG_OK);
    assert_int_equal(h_check_set_get(C, "batch-limits"), 0);
}

/* ---- 4. coalescing -------------------------------------------------------------- */

/* Value "co-<n>" of write n; -1 if v is not of that form. */
static long co_parse(const uint8_t *v, size_t len)
{
    if (len < 4 || len > 20 || memcmp(v, "co-", 3) != 0)
        return -1;
    long n = 0;
    for (size_t i = 3; i < len; i++) {
        if (v[i] < '0' || v[i] > '9')
            return -1;
        n = n * 10 + (v[i] - '0');
    }
    return n;
}

/*
 * One connection, one key: GET, SET v1, GET, GET, SET v2, ... all pipelined.
 * A GET sent after SET vN must see vN or later, never an older value (it may
 * not be coalesced onto a GET that left before the SET).
 */
static void test_coalesce_read_your_writes(void **state)
{
    const char *key = "co:ryw";
    hc_del(C, "", key, strlen(key));
    enum { N = 3000 };
    static long expect_min[N + 1]; /* per id: last write sent before it; -2 for a SET */
    static long set_of[N + 1];
    long writes = 0;
    uint64_t base = 1000000;
    char v[32];
    for (int i = 1; i <= N; i++) {
        struct sg_request *r;
        uint64_t tid = base + (uint64_t)i;
        if (i % 4 == 2 || i % 11 == 0) {
            writes++;
            int n = snprintf(v, sizeof(v), "co-%ld", writes);
            r = sg_request_new(SG_OP_SET);
            sg_request_add_key(r, key, strlen(key));
            sg_request_add_value(r, v, (size_t)n);
            expect_min[i] = -2;
            set_of[i] = writes;
        } else {
            r = sg_request_new(SG_OP_GET);
            sg_request_add_key(r, key, strlen(key));
            expect_min[i] = writes; /* 0: nothing written yet, a miss is fine */
        }
        assert_int_equal(hc_send(C, r, tid), 0);
        sg_request_free(r);
    }
    static uint8_t seen[N + 1];
    memset(seen, 0, sizeof(seen));
    long stale = 0, bad = 0, gets = 0;
    char first[256] = "";
    for (int n = 0; n < N; n++) {
        struct sg_response *resp = NULL;
        if (hc_recv(C, &resp) != 0)
            fail_msg("recv %d of %d: %s", n, N, C->errstr);
        uint64_t id = resp->id;
        if (id <= base || id > base + N || seen[id - base]++)
            fail_msg("unexpected or duplicate id %llu", (unsigned long long)id);
        int i = (int)(id - base);
        if (expect_min[i] == -2) {
            if (resp->code != SG_OK) {
                bad++;
                if (!first[0])
                    snprintf(first, sizeof(first), "SET co-%ld answered %s", set_of[i],
                             sg_code_name(resp->code));
            }
        } else {
            gets++;
            long got = resp->code == SG_OK          ? co_parse(resp->value, resp->value_len)
                       : resp->code == SG_NOT_FOUND ? 0
                                                    : -1;
            if (got < 0 || got > writes) {
                bad++;
                if (!first[0])
                    snprintf(first, sizeof(first), "GET #%d answered %s \"%.*s\"", i,
                             sg_code_name(resp->code), (int)resp->value_len,
                             (const char *)resp->value);
            } else if (got < expect_min[i]) {
                stale++;
                if (!first[0])
                    snprintf(first, sizeof(first),
                             "GET #%d sent after SET co-%ld returned the older co-%ld", i,
                             expect_min[i], got);
            }
        }
        sg_response_free(resp);
    }
    h_log("read-your-writes: %ld GETs, %ld SETs, stale %ld, bad %ld", gets, writes, stale, bad);
    if (first[0])
        fail_msg("%s", first);
    char fin[32];
    int fl = snprintf(fin, sizeof(fin), "co-%ld", writes);
    h_expect_value(C, key, strlen(key), fin, (size_t)fl);
}

#define CO_THREADS 6
#define CO_GETS 600
#define CO_WRITES 40

struct co_reader {
    pthread_t th;
    struct sg_client *c;
    int writer; /* also writes co-1..co-CO_WRITES while reading */
    long answered, bad;
    char problem[256];
};

static const char *CO_KEY = "co:hot";

static void *co_reader_main(void *arg)
{
    struct co_reader *R = arg;
    int total = CO_GETS + (R->writer ? CO_WRITES : 0);
    char v[32];
    int w = 0;
    for (int i = 0; i < CO_GETS; i++) {
        struct sg_request *r = sg_request_new(SG_OP_GET);
        sg_request_add_key(r, CO_KEY, strlen(CO_KEY));
        int rc = hc_send(R->c, r, (uint64_t)i + 1);
        sg_request_free(r);
        if (rc == 0 && R->writer && i % (CO_GETS / CO_WRITES) == 7 && w < CO_WRITES) {
            w++;
            int n = snprintf(v, sizeof(v), "co-%d", w);
            r = sg_request_new(SG_OP_SET);
            sg_request_add_key(r, CO_KEY, strlen(CO_KEY));
            sg_request_add_value(r, v, (size_t)n);
            rc = hc_send(R->c, r, 100000 + (uint64_t)w);
            sg_request_free(r);
        }
        if (rc != 0) {
            snprintf(R->problem, sizeof(R->problem), "send: %.200s", R->c->errstr);
            return NULL;
        }
    }
    total = CO_GETS + w;
    for (int n = 0; n < total; n++) {
        struct sg_response *resp = NULL;
        if (hc_recv(R->c, &resp) != 0) {
            snprintf(R->problem, sizeof(R->problem), "recv: %.200s", R->c->errstr);
            return NULL;
        }
        R->answered++;
        if (resp->id > 100000) {
            if (resp->code != SG_OK && !R->problem[0]) {
                R->bad++;
                snprintf(R->problem, sizeof(R->problem), "SET answered %s",
                         sg_code_name(resp->code));
            }
        } else {
            long got = resp->code == SG_OK ? co_parse(resp->value, resp->value_len) : -1;
            if (got < 0 || got > CO_WRITES) {
                R->bad++;
                if (!R->problem[0])
                    snprintf(R->problem, sizeof(R->problem),
                             "GET id %llu answered %s \"%.*s\": never written",
                             (unsigned long long)resp->id, sg_code_name(resp->code),
                             (int)resp->value_len, (const char *)resp->value);
            }
        }
        sg_response_free(resp);
    }
    return NULL;
}

/* One burst: CO_THREADS connections pipelining GETs of the hot key. */
static void co_burst(void)
{
    struct co_reader R[CO_THREADS];
    memset(R, 0, sizeof(R));
    for (int t = 0; t < CO_THREADS; t++) {
        R[t].c = h_connect(&H, 0, H_CERT_NONE);
        assert_non_null(R[t].c);
        R[t].writer = t == 0;
    }
    for (int t = 0; t < CO_THREADS; t++)
        assert_int_equal(pthread_create(&R[t].th, NULL, co_reader_main, &R[t]), 0);
    for (int t = 0; t < CO_THREADS; t++)
        pthread_join(R[t].th, NULL);
    const char *first = NULL;
    for (int t = 0; t < CO_THREADS; t++) {
        if (!first && R[t].problem[0])
            first = R[t].problem;
        sg_client_free(R[t].c);
    }
    if (first)
        fail_msg("%s", first);
}

static void test_coalesce_burst(void **state)
{
    assert_int_equal(hc_set(C, "", CO_KEY, strlen(CO_KEY), "co-0", 4, 0, SG_COND_NONE), SG_OK);
    int64_t before = h_stat(C, "coalesced_gets");
    assert_true(before >= 0);
    int64_t after = before;
    int64_t deadline = h_now_ms() + 30000;
    int bursts = 0;
    while (after <= before && h_now_ms() < deadline && bursts < 20) {
        co_burst();
        bursts++;
        after = h_stat(C, "coalesced_gets");
    }
    h_log("coalesced_gets %lld -> %lld after %d burst(s) of %d x %d GETs", (long long)before,
          (long long)after, bursts, CO_THREADS, CO_GETS);
    if (after <= before)
        fail_msg("no GET was coalesced in %d bursts of identical pipelined GETs", bursts);
    char fin[32];
    int fl = snprintf(fin, sizeof(fin), "co-%d", CO_WRITES);
    h_expect_value(C, CO_KEY, strlen(CO_KEY), fin, (size_t)fl);
}

/* ---- 5. order and ids across workers --------------------------------------------- */

#define ORD_THREADS 8
#define ORD_KEYS 5000

struct orderer {
    pthread_t th;
    int t;
    struct sg_client *c;
    long answered, dup, unknown, wrong, bad_code;
    char problem[256];
};

static void ord_key(int t, int i, char *k, size_t n)
{
    snprintf(k, n, "ord:%d:%d", t, i);
}
static int ord_val(int t, int i, char *v, size_t n)
{
    return snprintf(v, n, "val(ord:%d:%d)%.*s", t, i, (t * 31 + i) % 23, "=======================");
}

static void ord_problem(struct orderer *O, const char *fmt, ...)
{
    if (O->problem[0])
        return;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(O->problem, sizeof(O->problem), fmt, ap);
    va_end(ap);
}

/* Ids carry the thread in the high bits: a reply from another connection is
 * an unknown id here. Low bits: op (0 SET, 1 GET) and key index. */
static uint64_t ord_id(int t, int get, int i)
{
    return ((uint64_t)(t + 1) << 40) | ((uint64_t)get << 32) | (uint64_t)i;
}

static int ord_phase(struct orderer *O, int get_phase)
{
    char k[64], v[96];
    int n_sent = 0;
    static const int stride = 2999; /* coprime to ORD_KEYS: scrambled key order */
    for (int j = 0; j < ORD_KEYS; j++) {
        int i = (int)(((long)j * stride + O->t) % ORD_KEYS);
        /* in the GET phase, every 5th request rewrites a key with its own value */
        int get = get_phase && j % 5 != 4;
        ord_key(O->t, i, k, sizeof(k));
        struct sg_request *r = sg_request_new(get ? SG_OP_GET : SG_OP_SET);
        sg_request_add_key(r, k, strlen(k));
        if (!get) {
            int n = ord_val(O->t, i, v, sizeof(v));
            sg_request_add_value(r, v, (size_t)n);
        }
        int rc = hc_send(O->c, r, ord_id(O->t, get, i));
        sg_request_free(r);
        if (rc != 0) {
            ord_problem(O, "send: %s", O->c->errstr);
            return -1;
        }
        n_sent++;
    }
    uint8_t *seen = calloc(2 * ORD_KEYS, 1);
    for (int n = 0; n < n_sent; n++) {
        struct sg_response *resp = NULL;
        if (hc_recv(O->c, &resp) != 0) {
            ord_problem(O, "recv %d of %d: %s", n, n_sent, O->c->errstr);
            free(seen);
            return -1;
        }
        O->answered++;
        uint64_t id = resp->id;
        int t = (int)(id >> 40) - 1, get = (int)((id >> 32) & 0xff), i = (int)(id & 0xffffffff);
        if (t != O->t || get > 1 || i >= ORD_KEYS) {
            O->unknown++;
            ord_problem(O, "id %llx does not belong to connection %d", (unsigned long long)id,
                        O->t);
        } else if (seen[get * ORD_KEYS + i]++) {
            O->dup++;
            ord_problem(O, "id %llx answered twice", (unsigned long long)id);
        } else if (resp->code != SG_OK) {
            O->bad_code++;
            ord_problem(O, "%s ord:%d:%d answered %s (%s)", get ? "GET" : "SET", t, i,
                        sg_code_name(resp->code), resp->message);
        } else if (get) {
            int vl = ord_val(t, i, v, sizeof(v));
            if (resp->value_len != (size_t)vl || memcmp(resp->value, v, (size_t)vl) != 0) {
                O->wrong++;
                ord_problem(O, "GET ord:%d:%d returned \"%.*s\"", t, i, (int)resp->value_len,
                            (const char *)resp->value);
            }
        }
        sg_response_free(resp);
    }
    /* every request sent was answered (n_sent answers, none duplicate) */
    free(seen);
    return 0;
}

static void *orderer_main(void *arg)
{
    struct orderer *O = arg;
    if (ord_phase(O, 0) == 0)
        ord_phase(O, 1);
    return NULL;
}

static void test_order_and_ids(void **state)
{
    assert_int_equal(h_stat(C, "workers"), 2);
    struct orderer O[ORD_THREADS];
    memset(O, 0, sizeof(O));
    for (int t = 0; t < ORD_THREADS; t++) {
        O[t].t = t;
        O[t].c = h_connect(&H, 0, H_CERT_NONE);
        assert_non_null(O[t].c);
    }
    int64_t t0 = h_now_ms();
    for (int t = 0; t < ORD_THREADS; t++)
        assert_int_equal(pthread_create(&O[t].th, NULL, orderer_main, &O[t]), 0);
    for (int t = 0; t < ORD_THREADS; t++)
        pthread_join(O[t].th, NULL);
    long answered = 0, dup = 0, unknown = 0, wrong = 0, bad = 0;
    const char *first = NULL;
    for (int t = 0; t < ORD_THREADS; t++) {
        answered += O[t].answered;
        dup += O[t].dup;
        unknown += O[t].unknown;
        wrong += O[t].wrong;
        bad += O[t].bad_code;
        if (!first && O[t].problem[0])
            first = O[t].problem;
    }
    h_log("order: %ld answers in %lld ms; duplicates %ld, foreign ids %ld, wrong values %ld, "
          "errors %ld",
          answered, (long long)(h_now_ms() - t0), dup, unknown, wrong, bad);
    for (int t = 0; t < ORD_THREADS; t++)
        sg_client_free(O[t].c);
    if (first)
        fail_msg("%s", first);
    assert_int_equal(answered, (long)ORD_THREADS * ORD_KEYS * 2);
    assert_int_equal(dup + unknown + wrong + bad, 0);
}

/* ---- 3. a dead shard (last: the shard stays dead) ---------------------------------- */

static int is_backend_down(int code)
{
    return code == SG_SHARD_UNAVAILABLE || code == SG_TIMEOUT || code == SG_CLUSTER_DOWN;
}

static void test_batch_dead_shard(void **state)
{
    const char *pfx = "dead";
    assert_int_equal(distinct_owners(pfx, NB), 3);
    char k[64], v[96];
    struct sg_request *r = sg_request_new(SG_OP_MSET);
    for (int i = 0; i < NB; i++) {
        b_key(pfx, i, k, sizeof(k));
        b_val(pfx, i, v, sizeof(v));
        sg_request_add_key(r, k, strlen(k));
        sg_request_add_value(r, v, strlen(v));
    }
    struct sg_response *resp = h_call(C, r);
    assert_int_equal(resp->code, SG_OK);
    for (int i = 0; i < NB; i++)
        expect_result(resp, (size_t)i, SG_OK, NULL);
    sg_response_free(resp);

    int owner[NB];
    for (int i = 0; i < NB; i++) {
        b_key(pfx, i, k, sizeof(k));
        owner[i] = h_key_owner(&H, k, strlen(k));
    }
    static const char *const missing[2] = {"dead:missing:{x}", "dead:nope"};
    int missing_owner[2];
    for (int x = 0; x < 2; x++)
        missing_owner[x] = h_key_owner(&H, missing[x], strlen(missing[x]));
    int victim = owner[0];
    /* Without replicas a dead master's slots stay unserved; let the healthy
     * masters keep serving theirs (Redis would otherwise refuse every key). */
    int masters[H_MAX_NODES];
    int nm = h_masters(&H, masters, H_MAX_NODES);
    assert_int_equal(nm, 3);
    for (int m = 0; m < nm; m++) {
        redisReply *rr = h_redis_cmd(masters[m], "CONFIG SET cluster-require-full-coverage no");
        assert_non_null(rr);
        assert_int_equal(rr->type, REDIS_REPLY_STATUS);
        freeReplyObject(rr);
    }
    h_log("SIGKILL master %d", victim);
    assert_int_equal(h_node_signal(&H, victim, SIGKILL), 0);

    /* MGET in client order with two never-written keys in the middle */
    r = sg_request_new(SG_OP_MGET);
    for (int i = 0; i < NB; i++) {
        b_key(pfx, i, k, sizeof(k));
        sg_request_add_key(r, k, strlen(k));
        if (i == NB / 3 || i == 2 * NB / 3)
            for (int x = 0; x < 2; x++)
                sg_request_add_key(r, missing[x], strlen(missing[x]));
    }
    resp = h_call(C, r);
    assert_int_equal(resp->code, SG_OK);
    assert_int_equal(resp->n_results, NB + 4);
    size_t j = 0;
    int ok = 0, down = 0, wrong = 0;
    char first[512] = "";
    for (int i = 0; i < NB; i++, j++) {
        b_val(pfx, i, v, sizeof(v));
        const struct sg_key_result *kr = &resp->results[j];
        int good;
        if (owner[i] == victim) {
            good = is_backend_down(kr->code);
            down += good;
        } else {
            good = kr->code == SG_OK && kr->value_len == strlen(v) &&
                   memcmp(kr->value, v, kr->value_len) == 0;
            ok += good;
        }
        if (!good) {
            h_log("results[%zu] dead:%d (owner %d%s) answered %s (%d) \"%.*s\"", j, i, owner[i],
                  owner[i] == victim ? ", killed" : "", sg_code_name(kr->code), kr->code,
                  (int)kr->value_len, (const char *)kr->value);
            if (!wrong++)
                snprintf(first, sizeof(first), "results[%zu] dead:%d (owner %d%s) answered %s", j,
                         i, owner[i], owner[i] == victim ? ", killed" : "", sg_code_name(kr->code));
        }
        if (i == NB / 3 || i == 2 * NB / 3) {
            for (int x = 0; x < 2; x++) {
                j++;
                int code = resp->results[j].code;
                if (missing_owner[x] == victim ? !is_backend_down(code) : code != SG_NOT_FOUND) {
                    h_log("results[%zu] %s (owner %d) answered %s", j, missing[x], missing_owner[x],
                          sg_code_name(code));
                    if (!wrong++)
                        snprintf(first, sizeof(first), "results[%zu] %s answered %s", j, missing[x],
                                 sg_code_name(code));
                }
            }
        }
    }
    sg_response_free(resp);
    h_log("MGET with master %d dead: %d keys OK, %d keys failed per key, %d wrong", victim, ok,
          down, wrong);
    /* (MGET failures are reported after the MSET check below) */

    /* MSET: healthy shards' keys are written, the dead shard's fail */
    r = sg_request_new(SG_OP_MSET);
    for (int i = 0; i < NB; i++) {
        b_key(pfx, i, k, sizeof(k));
        snprintf(v, sizeof(v), "rewritten-%d", i);
        sg_request_add_key(r, k, strlen(k));
        sg_request_add_value(r, v, strlen(v));
    }
    resp = h_call(C, r);
    assert_int_equal(resp->code, SG_OK);
    assert_int_equal(resp->n_results, NB);
    for (int i = 0; i < NB; i++) {
        int code = resp->results[i].code;
        if (owner[i] == victim ? !is_backend_down(code) : code != SG_OK)
            fail_msg("MSET dead:%d (owner %d) answered %s", i, owner[i], sg_code_name(code));
    }
    sg_response_free(resp);
    for (int i = 0; i < NB; i++) {
        if (owner[i] == victim)
            continue;
        b_key(pfx, i, k, sizeof(k));
        snprintf(v, sizeof(v), "rewritten-%d", i);
        h_expect_value(C, k, strlen(k), v, strlen(v));
    }
    assert_int_equal(hc_ping(C), SG_OK);
    assert_true(h_proxy_alive(&H, 0));
    if (wrong)
        fail_msg("MGET with master %d dead: %d of %d results wrong; first: %s", victim, wrong,
                 NB + 4, first);
    assert_true(ok > 0 && down > 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_batch_across_shards),
        cmocka_unit_test(test_batch_hash_tag),
        cmocka_unit_test(test_batch_limits),
        cmocka_unit_test(test_coalesce_read_your_writes),
        cmocka_unit_test(test_coalesce_burst),
        cmocka_unit_test(test_order_and_ids),
        cmocka_unit_test(test_batch_dead_shard),
    };
    int failed = cmocka_run_group_tests_name("itest_batch", tests, group_setup, group_teardown);
    failed += h_stop_failed;
    if (failed)
        h_env_dump_logs(&H, 80);
    return failed ? 1 : 0;
}
