/*
 * itest_plain - slotgate in front of a single non-cluster Redis: the whole
 * key space is one shard. SET/GET/DELETE work and the keys are where a plain
 * Redis keeps them. Then the same with slotgate listening in plaintext,
 * where a large SET's value is read into big chains and goes to Redis by
 * reference (session.c, request.c): values of every size around the
 * threshold, with fields after the value, that begin with the envelope's
 * magic, compressed, in an MSET, and none of it left counted in the
 * buffered bytes once answered.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "harness.h"

static struct sg_client *C;

static int group_setup(void **state)
{
    struct h_opts o = {.plain = 1};
    return h_group_start(&H, "plain", &o, &C);
}

static int group_teardown(void **state)
{
    return h_group_stop(&H, &C);
}

static void test_ping(void **state)
{
    assert_int_equal(hc_ping(C), SG_OK);
}

static void test_set_get_delete(void **state)
{
    char key[64], val[64];
    /* keys with different slots all go to the one server */
    for (int i = 0; i < 100; i++) {
        snprintf(key, sizeof(key), "plain:%d", i);
        snprintf(val, sizeof(val), "plain-value-%d", i);
        assert_int_equal(hc_set(C, "", key, strlen(key), val, strlen(val), 0, SG_COND_NONE), SG_OK);
    }
    for (int i = 0; i < 100; i++) {
        snprintf(key, sizeof(key), "plain:%d", i);
        snprintf(val, sizeof(val), "plain-value-%d", i);
        h_expect_value(C, key, strlen(key), val, strlen(val));
    }
    redisReply *r = h_redis_cmd(H.nodes[0], "EXISTS plain:0 plain:42 plain:99");
    assert_non_null(r);
    assert_int_equal(r->type, REDIS_REPLY_INTEGER);
    assert_int_equal(r->integer, 3);
    freeReplyObject(r);

    for (int i = 0; i < 100; i += 2) {
        snprintf(key, sizeof(key), "plain:%d", i);
        assert_int_equal(hc_del(C, "", key, strlen(key)), SG_OK);
    }
    for (int i = 0; i < 100; i++) {
        snprintf(key, sizeof(key), "plain:%d", i);
        assert_int_equal(h_get_code(C, key, strlen(key)), (i % 2) ? SG_OK : SG_NOT_FOUND);
    }
    r = h_redis_cmd(H.nodes[0], "EXISTS plain:0 plain:1");
    assert_non_null(r);
    assert_int_equal(r->integer, 1);
    freeReplyObject(r);
}

static void test_ttl_and_conditions(void **state)
{
    const char *k = "plain:ttl";
    assert_int_equal(hc_set(C, "", k, strlen(k), "t", 1, 4000, SG_COND_NONE), SG_OK);
    redisReply *r = h_redis_cmd(H.nodes[0], "PTTL %s", k);
    assert_non_null(r);
    assert_true(r->integer > 0 && r->integer <= 4000);
    freeReplyObject(r);
    assert_int_equal(hc_set(C, "", k, strlen(k), "u", 1, 0, SG_COND_NX), SG_NOT_APPLIED);
    assert_int_equal(hc_set(C, "", k, strlen(k), "u", 1, 0, SG_COND_XX), SG_OK);
    h_expect_value(C, k, strlen(k), "u", 1);
}

/* ---- plaintext listener: large values by reference ------------------------- */

static int plaintext_setup(void **state)
{
    struct h_opts o = {.plain = 1,
                       .workers = 1,
                       .listen_yaml = "  plaintext: true",
                       .limits_yaml = "  max_value_bytes: 4194304\n"
                                      "  max_frame_bytes: 8388608\n"
                                      "  max_batch_bytes: 1048576",
                       .extra_yaml = "keyspaces:\n"
                                     "  room:\n"
                                     "    prefix: \"room:\"\n"
                                     "    compression: always"};
    return h_group_start(&H, "plaintext", &o, &C);
}

/* The worker's buffered bytes, from STATS. */
static long long buffered_bytes(void)
{
    struct sg_response *r = sg_stats(C);
    assert_non_null(r);
    assert_int_equal(r->code, SG_OK);
    long long v = -1;
    for (size_t i = 0; i < r->n_stats; i++)
        if (strcmp(r->stat_names[i], "buffered_bytes") == 0)
            v = (long long)r->stat_values[i];
    sg_response_free(r);
    return v;
}

static uint8_t *pattern(size_t n, unsigned seed)
{
    uint8_t *v = malloc(n ? n : 1);
    assert_non_null(v);
    uint32_t x = seed * 2654435761u + 1;
    for (size_t i = 0; i < n; i++) {
        x = x * 1103515245u + 12345u;
        v[i] = (uint8_t)(x >> 16);
    }
    if (n > 0)
        v[0] = 'v'; /* not the envelope's magic */
    return v;
}

/* What Redis holds for key (raw), its length in *len; the caller frees it. */
static uint8_t *stored(const char *key, size_t *len)
{
    redisReply *r = h_redis_cmd(H.nodes[0], "GET %s", key);
    assert_non_null(r);
    assert_int_equal(r->type, REDIS_REPLY_STRING);
    uint8_t *v = malloc(r->len ? r->len : 1);
    assert_non_null(v);
    memcpy(v, r->str, r->len);
    *len = r->len;
    freeReplyObject(r);
    return v;
}

static void test_plaintext_large_values(void **state)
{
    static const size_t sizes[] = {16383, 16384, 16385, 65280, 65536, 65537, 200000, 1048576};
    char key[64];
    for (size_t i = 0; i < sizeof(sizes) / sizeof(sizes[0]); i++) {
        size_t n = sizes[i], len;
        uint8_t *v = pattern(n, (unsigned)i);
        snprintf(key, sizeof(key), "big:%zu", n);
        /* a TTL and a condition: fields after the value in the frame */
        assert_int_equal(hc_set(C, "", key, strlen(key), v, n, 60000, SG_COND_NONE), SG_OK);
        h_expect_value(C, key, strlen(key), v, n);
        uint8_t *st = stored(key, &len);
        if (len != n || memcmp(st, v, n) != 0)
            fail_msg("%zu bytes stored as %zu different bytes", n, len);
        free(st);
        long long pttl = h_owner_pttl(&H, key);
        assert_true(pttl > 0 && pttl <= 60000);
        assert_int_equal(hc_set(C, "", key, strlen(key), v, n, 0, SG_COND_NX), SG_NOT_APPLIED);
        v[n / 2] ^= 0xff;
        assert_int_equal(hc_set(C, "", key, strlen(key), v, n, 0, SG_COND_XX), SG_OK);
        h_expect_value(C, key, strlen(key), v, n);
        free(v);
    }
    assert_int_equal(buffered_bytes(), 0);
}

static void test_plaintext_large_envelope(void **state)
{
    enum { N = 65536 };
    size_t len;
    /* A large value that begins with the envelope's magic is stored wrapped. */
    uint8_t *v = pattern(N, 99);
    static const uint8_t magic[] = {0xFE, 'S', 'G', 0x01, 0x00};
    memcpy(v, magic, sizeof(magic));
    assert_int_equal(hc_set(C, "", "big:magic", 9, v, N, 0, SG_COND_NONE), SG_OK);
    h_expect_value(C, "big:magic", 9, v, N);
    uint8_t *st = stored("big:magic", &len);
    assert_int_equal(len, N + 5);
    assert_memory_equal(st + 5, v, N);
    free(st);
    /* Compressed where the keyspace compresses: smaller in Redis, the same back. */
    memset(v, 'c', N);
    assert_int_equal(hc_set(C, "room", "big:c", 5, v, N, 0, SG_COND_NONE), SG_OK);
    void *got = NULL;
    size_t glen = 0;
    assert_int_equal(hc_get(C, "room", "big:c", 5, &got, &glen), SG_OK);
    assert_int_equal(glen, N);
    assert_memory_equal(got, v, N);
    free(got);
    st = stored("room:big:c", &len);
    assert_true(len < N / 4);
    free(st);
    free(v);
    assert_int_equal(buffered_bytes(), 0);
}

static void test_plaintext_large_mset(void **state)
{
    /* Several large values in one frame: not one SET, so decoded whole. */
    enum { N = 40000 };
    uint8_t *a = pattern(N, 1), *b = pattern(N, 2);
    struct sg_request *r = sg_request_new(SG_OP_MSET);
    sg_request_add_key(r, "big:m1", 6);
    sg_request_add_value(r, a, N);
    sg_request_add_key(r, "big:m2", 6);
    sg_request_add_value(r, b, N);
    struct sg_response *resp = h_call(C, r);
    assert_int_equal(resp->code, SG_OK);
    sg_response_free(resp);
    h_expect_value(C, "big:m1", 6, a, N);
    h_expect_value(C, "big:m2", 6, b, N);
    free(a);
    free(b);
    assert_int_equal(buffered_bytes(), 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_ping),
        cmocka_unit_test(test_set_get_delete),
        cmocka_unit_test(test_ttl_and_conditions),
    };
    const struct CMUnitTest plaintext[] = {
        cmocka_unit_test(test_ping),
        cmocka_unit_test(test_plaintext_large_values),
        cmocka_unit_test(test_plaintext_large_envelope),
        cmocka_unit_test(test_plaintext_large_mset),
    };
    int failed = cmocka_run_group_tests_name("itest_plain", tests, group_setup, group_teardown);
    failed += cmocka_run_group_tests_name("itest_plain_plaintext", plaintext, plaintext_setup,
                                          group_teardown);
    failed += h_stop_failed;
    if (failed)
        h_env_dump_logs(&H, 60);
    return failed ? 1 : 0;
}
