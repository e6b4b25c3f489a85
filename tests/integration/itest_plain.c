/*
 * itest_plain - slotgate in front of a single non-cluster Redis: the whole
 * key space is one shard. SET/GET/DELETE work and the keys are where a plain
 * Redis keeps them.
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

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_ping),
        cmocka_unit_test(test_set_get_delete),
        cmocka_unit_test(test_ttl_and_conditions),
    };
    int failed = cmocka_run_group_tests_name("itest_plain", tests, group_setup, group_teardown);
    failed += h_stop_failed;
    if (failed)
        h_env_dump_logs(&H, 60);
    return failed ? 1 : 0;
}
