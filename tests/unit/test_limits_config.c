/*
 * test_limits_config - the memory-bound keys of issue 10 (PROTOCOL.md
 * section 3): limits.max_output_bytes, limits.max_buffered_bytes,
 * redis.max_reply_elements and redis.max_reply_bulk_bytes: defaults,
 * parsing, and the checks between them.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "config.h"

#define BASE "listen:\n  plaintext: true\nredis:\n  seeds: [\"127.0.0.1:7000\"]\n"

static char err[512];

static void test_defaults_bound_the_process(void **state)
{
    struct sg_config c;
    assert_int_equal(sg_config_load_string(&c, BASE, "inline", err, sizeof err), 0);
    assert_int_equal(c.max_output_bytes, 32u << 20);
    assert_int_equal(c.max_buffered_bytes, 256ull << 20);
    assert_true(c.output_high_watermark <= c.max_output_bytes);
    assert_true(c.max_output_bytes <= c.max_buffered_bytes);
    assert_int_equal(c.redis_max_reply_elements, 0); /* derived */
    assert_int_equal(c.redis_max_reply_bulk_bytes, 0);
}

static void test_keys_parse(void **state)
{
    struct sg_config c;
    const char *y = "listen:\n  plaintext: true\n"
                    "limits:\n  output_high_watermark: 1048576\n  max_output_bytes: 2097152\n"
                    "  max_buffered_bytes: 6442450944\n"
                    "redis:\n  seeds: [\"127.0.0.1:7000\"]\n  max_reply_elements: 5000\n"
                    "  max_reply_bulk_bytes: 1048576\n";
    assert_int_equal(sg_config_load_string(&c, y, "inline", err, sizeof err), 0);
    assert_int_equal(c.max_output_bytes, 2097152);
    assert_int_equal(c.max_buffered_bytes, 6442450944ull); /* above 4 GiB */
    assert_int_equal(c.redis_max_reply_elements, 5000);
    assert_int_equal(c.redis_max_reply_bulk_bytes, 1048576);
}

static void test_output_limit_below_watermark_refused(void **state)
{
    struct sg_config c;
    const char *y = "listen:\n  plaintext: true\n"
                    "limits:\n  output_high_watermark: 4194304\n  max_output_bytes: 1048576\n"
                    "redis:\n  seeds: [\"127.0.0.1:7000\"]\n";
    assert_int_equal(sg_config_load_string(&c, y, "inline", err, sizeof err), -1);
    assert_non_null(strstr(err, "limits.output_high_watermark"));
    assert_non_null(strstr(err, "limits.max_output_bytes"));
}

static void test_budget_below_output_limit_refused(void **state)
{
    struct sg_config c;
    const char *y = "listen:\n  plaintext: true\n"
                    "limits:\n  max_output_bytes: 67108864\n  max_buffered_bytes: 33554432\n"
                    "redis:\n  seeds: [\"127.0.0.1:7000\"]\n";
    assert_int_equal(sg_config_load_string(&c, y, "inline", err, sizeof err), -1);
    assert_non_null(strstr(err, "limits.max_buffered_bytes"));
}

static void test_zero_turns_bounds_off(void **state)
{
    struct sg_config c;
    const char *y = "listen:\n  plaintext: true\n"
                    "limits:\n  max_output_bytes: 0\n  max_buffered_bytes: 0\n"
                    "redis:\n  seeds: [\"127.0.0.1:7000\"]\n";
    assert_int_equal(sg_config_load_string(&c, y, "inline", err, sizeof err), 0);
    assert_int_equal(c.max_output_bytes, 0);
    assert_int_equal(c.max_buffered_bytes, 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_defaults_bound_the_process),
        cmocka_unit_test(test_keys_parse),
        cmocka_unit_test(test_output_limit_below_watermark_refused),
        cmocka_unit_test(test_budget_below_output_limit_refused),
        cmocka_unit_test(test_zero_turns_bounds_off),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
