/*
 * itest_migrate - live resharding under load. One slot holding test keys is
 * moved from its master to another with the real Redis procedure
 * (SETSLOT IMPORTING / MIGRATING, MIGRATE key by key, SETSLOT NODE on every
 * master) while a background client loops SET/GET on keys of that slot and
 * the test itself reads and writes every key between the steps:
 *   - half migrated:   keys already moved are only reachable through ASK;
 *   - all migrated:    every key is behind ASK;
 *   - slot reassigned: the proxy's map is stale, the old owner answers MOVED.
 * No client may see an error or a wrong value, and STATS must count ask > 0
 * and moved > 0. The periodic topology refresh is set to a minute so that
 * only redirections can teach the proxy the new owner.
 */
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "harness.h"

#define NKEYS 200
#define NBG 50

static struct sg_client *C;

static int group_setup(void **state)
{
    struct h_opts o = {.refresh_ms = 60000};
    return h_group_start(&H, "migrate", &o, &C);
}

static int group_teardown(void **state)
{
    return h_group_stop(&H, &C);
}

/* ---- background load ------------------------------------------------------ */

struct bg {
    pthread_t th;
    volatile int stop;
    long ops;
    long errors;
    char first_error[256];
};

static void bg_error(struct bg *b, const char *fmt, ...)
{
    if (__atomic_fetch_add(&b->errors, 1, __ATOMIC_RELAXED) == 0) {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(b->first_error, sizeof(b->first_error), fmt, ap);
        va_end(ap);
    }
}

/* Its own connection; SET then GET of {mig}:bg:N with a fresh value each time. */
static void *bg_main(void *arg)
{
    struct bg *b = arg;
    struct sg_client *c = h_connect(&H, 0, H_CERT_NONE);
    if (!c) {
        bg_error(b, "background client cannot connect");
        return NULL;
    }
    char key[64], val[64];
    for (long i = 0; !__atomic_load_n(&b->stop, __ATOMIC_ACQUIRE); i++) {
        snprintf(key, sizeof(key), "{mig}:bg:%ld", i % NBG);
        snprintf(val, sizeof(val), "bg-%ld", i);
        int rc = hc_set(c, "", key, strlen(key), val, strlen(val), 0, SG_COND_NONE);
        if (rc != SG_OK) {
            bg_error(b, "SET %s: %s", key, sg_code_name(rc));
            continue;
        }
        void *got = NULL;
        size_t glen = 0;
        rc = hc_get(c, "", key, strlen(key), &got, &glen);
        if (rc != SG_OK)
            bg_error(b, "GET %s: %s", key, sg_code_name(rc));
        else if (glen != strlen(val) || memcmp(got, val, glen) != 0)
            bg_error(b, "GET %s: got \"%.*s\", want \"%s\"", key, (int)glen, (char *)got, val);
        free(got);
        __atomic_fetch_add(&b->ops, 2, __ATOMIC_RELAXED);
    }
    sg_client_free(c);
    return NULL;
}

/* ---- helpers ---------------------------------------------------------------- */

static void mig_key(int i, char *key, size_t n)
{
    snprintf(key, n, "{mig}:%d", i);
}

static void mig_val(int gen, int i, char *val, size_t n)
{
    snprintf(val, n, "gen%d-key%d", gen, i);
}

#define NOTHER 9 /* keys of other slots in each mixed MGET */

static void other_key(int j, char *key, size_t n)
{
    snprintf(key, n, "mgx:%d", j);
}

static void other_val(int j, char *val, size_t n)
{
    snprintf(val, n, "x%d", j);
}

/* MGET of keys[0..n), answered in order with vals[j] each. */
static void expect_mget(const char *phase, int n, char keys[][64], char vals[][64])
{
    struct sg_request *r = sg_request_new(SG_OP_MGET);
    for (int j = 0; j < n; j++)
        sg_request_add_key(r, keys[j], strlen(keys[j]));
    struct sg_response *resp = h_call(C, r);
    if (resp->code != SG_OK || resp->n_results != (size_t)n)
        fail_msg("%s: MGET of %d keys answered %s with %zu results", phase, n,
                 sg_code_name(resp->code), resp->n_results);
    for (int j = 0; j < n; j++) {
        const struct sg_key_result *k = &resp->results[j];
        if (k->code != SG_OK || k->value_len != strlen(vals[j]) ||
            memcmp(k->value, vals[j], k->value_len) != 0)
            fail_msg("%s: MGET key %d (%s) answered %s \"%.*s\", want \"%s\"", phase, j, keys[j],
                     sg_code_name(k->code), (int)k->value_len,
                     k->value ? (const char *)k->value : "", vals[j]);
    }
    sg_response_free(resp);
}

/*
 * MGETs through the migration, after round_trip's writes of generation
 * gen: one key of the moving slot among keys of other slots (its own
 * one-key group, sent as GET: ASK, then MOVED, are followed), and, with
 * whole, every key of the slot in one MGET (one group: an array reply
 * after the redirect). Half migrated, a multi-key command on the slot is
 * TRYAGAIN until the migration ends (Redis's rule), so whole is 0 there.
 */
static void mget_round(int gen, const char *phase, int whole)
{
    static char keys[NKEYS][64], vals[NKEYS][64];
    for (int i = 0; i < NKEYS; i += 20) {
        mig_key(i, keys[0], sizeof(keys[0]));
        mig_val(gen, i, vals[0], sizeof(vals[0]));
        for (int j = 0; j < NOTHER; j++) {
            other_key(j, keys[1 + j], sizeof(keys[0]));
            other_val(j, vals[1 + j], sizeof(vals[0]));
        }
        expect_mget(phase, 1 + NOTHER, keys, vals);
    }
    if (!whole)
        return;
    for (int i = 0; i < NKEYS; i++) {
        mig_key(i, keys[i], sizeof(keys[i]));
        mig_val(gen, i, vals[i], sizeof(vals[i]));
    }
    expect_mget(phase, NKEYS, keys, vals);
}

/* Every key: GET must return generation gen-1 (if gen > 1), then SET gen, GET. */
static void round_trip(int gen, const char *phase)
{
    char key[64], val[64];
    int64_t t0 = h_now_ms();
    for (int i = 0; i < NKEYS; i++) {
        mig_key(i, key, sizeof(key));
        if (gen > 1) {
            mig_val(gen - 1, i, val, sizeof(val));
            void *got = NULL;
            size_t glen = 0;
            int rc = hc_get(C, "", key, strlen(key), &got, &glen);
            if (rc != SG_OK || glen != strlen(val) || memcmp(got, val, glen) != 0)
                fail_msg("%s: GET %s answered %s \"%.*s\", want \"%s\"", phase, key,
                         sg_code_name(rc), (int)glen, got ? (char *)got : "", val);
            free(got);
        }
        mig_val(gen, i, val, sizeof(val));
        int rc = hc_set(C, "", key, strlen(key), val, strlen(val), 0, SG_COND_NONE);
        if (rc != SG_OK)
            fail_msg("%s: SET %s answered %s", phase, key, sg_code_name(rc));
        h_expect_value(C, key, strlen(key), val, strlen(val));
    }
    h_log("%s: %d keys read and written in %lld ms", phase, NKEYS, (long long)(h_now_ms() - t0));
}

static void redis_ok(int port, redisReply *r, const char *what)
{
    if (!r || r->type == REDIS_REPLY_ERROR)
        fail_msg("%s on %d failed: %s", what, port, r ? r->str : "no reply");
    freeReplyObject(r);
}

/* MIGRATE up to max keys of slot from src to tgt; returns how many moved. */
static int migrate_keys(int src, int tgt, int slot, int max)
{
    redisReply *keys = h_redis_cmd(src, "CLUSTER GETKEYSINSLOT %d %d", slot, max);
    assert_non_null(keys);
    assert_int_equal(keys->type, REDIS_REPLY_ARRAY);
    int n = (int)keys->elements;
    if (n == 0) {
        freeReplyObject(keys);
        return 0;
    }
    /* MIGRATE host port "" 0 timeout KEYS k1 k2 ... */
    size_t argc = 7 + (size_t)n;
    const char **argv = calloc(argc, sizeof(char *));
    size_t *lens = calloc(argc, sizeof(size_t));
    char port[16];
    snprintf(port, sizeof(port), "%d", tgt);
    const char *head[] = {"MIGRATE", "127.0.0.1", port, "", "0", "5000", "KEYS"};
    for (size_t i = 0; i < 7; i++) {
        argv[i] = head[i];
        lens[i] = strlen(head[i]);
    }
    for (int i = 0; i < n; i++) {
        argv[7 + i] = keys->element[i]->str;
        lens[7 + i] = keys->element[i]->len;
    }
    redisContext *rc = h_redis(src);
    assert_non_null(rc);
    redisReply *r = redisCommandArgv(rc, (int)argc, argv, lens);
    redis_ok(src, r, "MIGRATE");
    redisFree(rc);
    free(argv);
    free(lens);
    freeReplyObject(keys);
    return n;
}

static void test_migrate_slot_under_load(void **state)
{
    int slot = h_keyslot(&H, "{mig}", 5);
    assert_true(slot >= 0);
    int src = h_slot_owner(&H, slot);
    assert_true(src > 0);
    int masters[H_MAX_NODES];
    int nm = h_masters(&H, masters, H_MAX_NODES);
    assert_int_equal(nm, 3);
    int tgt = masters[0] == src ? masters[1] : masters[0];
    char src_id[64], tgt_id[64];
    assert_int_equal(h_node_id(src, src_id, sizeof(src_id)), 0);
    assert_int_equal(h_node_id(tgt, tgt_id, sizeof(tgt_id)), 0);
    h_log("moving slot %d from %d (%.8s) to %d (%.8s)", slot, src, src_id, tgt, tgt_id);

    int64_t ask0 = h_stat(C, "ask"), moved0 = h_stat(C, "moved");
    char ok[64], ov[64];
    for (int j = 0; j < NOTHER; j++) {
        other_key(j, ok, sizeof(ok));
        other_val(j, ov, sizeof(ov));
        assert_int_equal(hc_set(C, "", ok, strlen(ok), ov, strlen(ov), 0, SG_COND_NONE), SG_OK);
    }
    round_trip(1, "before migration");
    mget_round(1, "before migration", 1);

    struct bg bg = {0};
    assert_int_equal(pthread_create(&bg.th, NULL, bg_main, &bg), 0);
    /* let the background loop get going (bounded) */
    int64_t deadline = h_now_ms() + 10000;
    while (__atomic_load_n(&bg.ops, __ATOMIC_RELAXED) < 20 && h_now_ms() < deadline &&
           __atomic_load_n(&bg.errors, __ATOMIC_RELAXED) == 0)
        h_poll_pause();

    redis_ok(tgt, h_redis_cmd(tgt, "CLUSTER SETSLOT %d IMPORTING %s", slot, src_id),
             "SETSLOT IMPORTING");
    redis_ok(src, h_redis_cmd(src, "CLUSTER SETSLOT %d MIGRATING %s", slot, tgt_id),
             "SETSLOT MIGRATING");
    int moved_keys = migrate_keys(src, tgt, slot, NKEYS / 2);
    h_log("migrated %d keys; the rest stay on the source", moved_keys);
    assert_true(moved_keys > 0);
    round_trip(2, "half migrated (ASK)");
    mget_round(2, "half migrated (ASK)", 0);

    int more;
    deadline = h_now_ms() + 20000;
    while ((more = migrate_keys(src, tgt, slot, 100)) > 0) {
        moved_keys += more;
        if (h_now_ms() > deadline)
            fail_msg("source still has keys of slot %d after 20 s", slot);
    }
    h_log("all %d keys of slot %d migrated", moved_keys, slot);
    round_trip(3, "all migrated (ASK)");
    mget_round(3, "all migrated (ASK)", 1);

    /* Reassign: target first, then source, then the remaining masters. */
    redis_ok(tgt, h_redis_cmd(tgt, "CLUSTER SETSLOT %d NODE %s", slot, tgt_id), "SETSLOT NODE");
    redis_ok(src, h_redis_cmd(src, "CLUSTER SETSLOT %d NODE %s", slot, tgt_id), "SETSLOT NODE");
    for (int m = 0; m < nm; m++)
        if (masters[m] != src && masters[m] != tgt)
            redis_ok(masters[m],
                     h_redis_cmd(masters[m], "CLUSTER SETSLOT %d NODE %s", slot, tgt_id),
                     "SETSLOT NODE");
    round_trip(4, "slot reassigned (MOVED)");
    mget_round(4, "slot reassigned (MOVED)", 1);

    /* the cluster settles (replicas and all) with the new owner */
    assert_int_equal(h_wait_cluster(&H, 20000), 0);
    assert_int_equal(h_slot_owner(&H, slot), tgt);
    round_trip(5, "after the cluster settled");
    mget_round(5, "after the cluster settled", 1);

    __atomic_store_n(&bg.stop, 1, __ATOMIC_RELEASE);
    pthread_join(bg.th, NULL);
    h_log("background client: %ld ops, %ld errors", bg.ops, bg.errors);
    if (bg.errors)
        fail_msg("background client saw %ld errors; first: %s", bg.errors, bg.first_error);
    assert_true(bg.ops > 0);

    /* Direct check: the data is on the target and gone from the source. */
    redisReply *r = h_redis_cmd(src, "CLUSTER COUNTKEYSINSLOT %d", slot);
    assert_non_null(r);
    assert_int_equal(r->integer, 0);
    freeReplyObject(r);
    r = h_redis_cmd(tgt, "CLUSTER COUNTKEYSINSLOT %d", slot);
    assert_non_null(r);
    assert_true(r->integer >= NKEYS);
    freeReplyObject(r);

    int64_t ask = h_stat(C, "ask"), moved = h_stat(C, "moved");
    h_log("STATS ask %lld -> %lld, moved %lld -> %lld", (long long)ask0, (long long)ask,
          (long long)moved0, (long long)moved);
    assert_true(ask >= 0 && moved >= 0);
    if (ask <= ask0)
        fail_msg("STATS ask did not grow (%lld -> %lld)", (long long)ask0, (long long)ask);
    if (moved <= moved0)
        fail_msg("STATS moved did not grow (%lld -> %lld)", (long long)moved0, (long long)moved);
}

/* Keys of other slots were never disturbed. */
static void test_other_slots_unaffected(void **state)
{
    char key[64], val[64];
    for (int i = 0; i < 100; i++) {
        snprintf(key, sizeof(key), "other:%d", i);
        snprintf(val, sizeof(val), "o%d", i);
        assert_int_equal(hc_set(C, "", key, strlen(key), val, strlen(val), 0, SG_COND_NONE), SG_OK);
        h_expect_value(C, key, strlen(key), val, strlen(val));
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_migrate_slot_under_load),
        cmocka_unit_test(test_other_slots_unaffected),
    };
    int failed = cmocka_run_group_tests_name("itest_migrate", tests, group_setup, group_teardown);
    failed += h_stop_failed;
    if (failed)
        h_env_dump_logs(&H, 80);
    return failed ? 1 : 0;
}
