/*
 * test_respscan - the pre-scan of Redis replies (resp.h: sg_resp_scan) that
 * shard links run before hiredis sees a byte: legitimate replies pass in
 * any cut, headers over the limits are refused, and a refusal is final.
 * And sg_resp_cmd2 writes the bytes of sg_resp_begin + two sg_resp_arg,
 * for short arguments (one append) and long ones.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include <event2/buffer.h>
#include <stdlib.h>

#include "resp.h"

#define MAX_EL 1000
#define MAX_BULK 4096

/* Scan s whole, then in every two-piece cut and one byte at a time: all
 * must give the same verdict. Returns that verdict. */
static int scan_all_cuts(const char *s, size_t len)
{
    struct sg_resp_scan sc;
    const char *why = NULL;
    sg_resp_scan_init(&sc, MAX_EL, MAX_BULK);
    int whole = sg_resp_scan(&sc, s, len, &why);
    if (whole != 0)
        assert_non_null(why);
    for (size_t cut = 0; cut <= len; cut++) {
        sg_resp_scan_init(&sc, MAX_EL, MAX_BULK);
        int rc = sg_resp_scan(&sc, s, cut, &why);
        if (rc == 0)
            rc = sg_resp_scan(&sc, s + cut, len - cut, &why);
        assert_int_equal(rc, whole);
    }
    sg_resp_scan_init(&sc, MAX_EL, MAX_BULK);
    int rc = 0;
    for (size_t i = 0; i < len && rc == 0; i++)
        rc = sg_resp_scan(&sc, s + i, 1, &why);
    assert_int_equal(rc, whole);
    return whole;
}

#define SCAN(lit) scan_all_cuts(lit, sizeof(lit) - 1)

static void test_legitimate_replies_pass(void **state)
{
    assert_int_equal(SCAN("+OK\r\n"), 0);
    assert_int_equal(SCAN("-MOVED 3999 127.0.0.1:6381\r\n"), 0);
    assert_int_equal(SCAN(":12345\r\n:-1\r\n"), 0);
    assert_int_equal(SCAN("$5\r\nhello\r\n$0\r\n\r\n$-1\r\n*-1\r\n"), 0);
    assert_int_equal(SCAN("*3\r\n$1\r\na\r\n$-1\r\n*2\r\n:1\r\n$3\r\n\r\n\r\r\n"), 0);
    /* payload bytes that look like headers are skipped, not parsed */
    assert_int_equal(SCAN("$11\r\n*99999999\r\n\r\n+OK\r\n"), 0);
    /* a status line may hold a bare '\n' (hiredis ends lines at "\r\n") */
    assert_int_equal(SCAN("+a\nb\r\n+OK\r\n"), 0);
}

static void test_limits_are_inclusive(void **state)
{
    char buf[MAX_BULK + 64];
    int n = snprintf(buf, sizeof(buf), "*%d\r\n", MAX_EL);
    assert_int_equal(scan_all_cuts(buf, (size_t)n), 0);
    n = snprintf(buf, sizeof(buf), "*%d\r\n", MAX_EL + 1);
    assert_int_equal(scan_all_cuts(buf, (size_t)n), -1);
    n = snprintf(buf, sizeof(buf), "$%d\r\n", MAX_BULK);
    memset(buf + n, 'x', MAX_BULK);
    memcpy(buf + n + MAX_BULK, "\r\n", 2);
    struct sg_resp_scan sc;
    sg_resp_scan_init(&sc, MAX_EL, MAX_BULK);
    assert_int_equal(sg_resp_scan(&sc, buf, (size_t)n + MAX_BULK + 2, NULL), 0);
    n = snprintf(buf, sizeof(buf), "$%d\r\n", MAX_BULK + 1);
    assert_int_equal(scan_all_cuts(buf, (size_t)n), -1);
}

static void test_huge_headers_refused(void **state)
{
    /* what the fuzzer found: hiredis would calloc 8 bytes per claimed element */
    assert_int_equal(SCAN("*437500000\r\n"), -1);
    assert_int_equal(SCAN("*2\r\n$1\r\na\r\n*9223372036854775807\r\n"), -1);
    assert_int_equal(SCAN("$4294967296\r\n"), -1);
    assert_int_equal(SCAN("*99999999999999999999\r\n"), -1); /* 20 digits */
}

static void test_malformed_refused(void **state)
{
    assert_int_equal(SCAN("?\r\n"), -1);   /* no such type */
    assert_int_equal(SCAN("*\r\n"), -1);   /* no number */
    assert_int_equal(SCAN("*1x\r\n"), -1); /* junk in the number */
    assert_int_equal(SCAN("$3\rX"), -1);   /* CR without LF */
    assert_int_equal(SCAN("$-2\r\n"), -1); /* only -1 means nil */
    assert_int_equal(SCAN("*--1\r\n"), -1);
    assert_int_equal(SCAN("%2\r\n"), -1); /* RESP3 map: not spoken on links */
}

static void test_long_line_refused(void **state)
{
    static char line[SG_RESP_SCAN_MAX_LINE + 8];
    line[0] = '-';
    memset(line + 1, 'e', sizeof(line) - 1);
    struct sg_resp_scan sc;
    const char *why = NULL;
    sg_resp_scan_init(&sc, MAX_EL, MAX_BULK);
    assert_int_equal(sg_resp_scan(&sc, line, sizeof(line), &why), -1);
    assert_non_null(why);
}

static void test_refusal_is_final(void **state)
{
    struct sg_resp_scan sc;
    const char *why = NULL;
    sg_resp_scan_init(&sc, MAX_EL, MAX_BULK);
    assert_int_equal(sg_resp_scan(&sc, "*1001\r\n", 7, &why), -1);
    why = NULL;
    assert_int_equal(sg_resp_scan(&sc, "+OK\r\n", 5, &why), -1);
    assert_non_null(why);
}

static void test_cmd2_same_bytes(void **state)
{
    (void)state;
    static const size_t lens[] = {0, 1, 9, 10, 200, 430, 431, 432, 500, 5000};
    for (size_t i = 0; i < sizeof(lens) / sizeof(lens[0]); i++) {
        size_t len = lens[i];
        char *arg = malloc(len + 1);
        assert_non_null(arg);
        for (size_t j = 0; j < len; j++)
            arg[j] = (char)('a' + j % 26);
        struct evbuffer *one = evbuffer_new(), *three = evbuffer_new();
        sg_resp_cmd2(one, "UNLINK", arg, len);
        sg_resp_begin(three, 2);
        sg_resp_arg(three, "UNLINK", 6);
        sg_resp_arg(three, arg, len);
        assert_int_equal(sg_resp_format_failed(), 0);
        size_t n = evbuffer_get_length(three);
        assert_int_equal(evbuffer_get_length(one), n);
        assert_memory_equal(evbuffer_pullup(one, -1), evbuffer_pullup(three, -1), n);
        evbuffer_free(one);
        evbuffer_free(three);
        free(arg);
    }
}

/* sg_resp_cmdv: SET key value PX ttl NX, with values of every length
 * around the one-append bound, gives the bytes of begin + arg each, or
 * appends nothing and says so when over the bound. */
static void test_cmdv_same_bytes_or_nothing(void **state)
{
    (void)state;
    int appended = 0, declined = 0;
    for (size_t len = 0; len <= 600; len++) {
        char *val = malloc(len + 1);
        assert_non_null(val);
        for (size_t j = 0; j < len; j++)
            val[j] = (char)(j * 7);
        char digits[SG_RESP_U64_MAX];
        size_t nd = sg_resp_u64(digits, 1800000 + len);
        struct iovec v[6] = {{"SET", 3}, {"room:abc", 8}, {val, len},
                             {"PX", 2},  {digits, nd},    {"NX", 2}};
        struct evbuffer *one = evbuffer_new(), *each = evbuffer_new();
        evbuffer_add(one, "x", 1); /* what the link already holds stays */
        int rc = sg_resp_cmdv(one, 6, v);
        sg_resp_begin(each, 6);
        for (int i = 0; i < 6; i++)
            sg_resp_arg(each, v[i].iov_base, v[i].iov_len);
        assert_int_equal(sg_resp_format_failed(), 0);
        if (rc == 0) {
            appended++;
            size_t n = evbuffer_get_length(each);
            assert_int_equal(evbuffer_get_length(one), n + 1);
            assert_true(n <= 512);
            assert_memory_equal(evbuffer_pullup(one, -1) + 1, evbuffer_pullup(each, -1), n);
        } else {
            declined++;
            assert_int_equal(rc, -1);
            assert_int_equal(evbuffer_get_length(one), 1);
            assert_true(evbuffer_get_length(each) > 512 - 23);
        }
        evbuffer_free(one);
        evbuffer_free(each);
        free(val);
    }
    assert_true(appended > 300 && declined > 100); /* both sides of the bound were seen */
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_legitimate_replies_pass),
        cmocka_unit_test(test_limits_are_inclusive),
        cmocka_unit_test(test_huge_headers_refused),
        cmocka_unit_test(test_malformed_refused),
        cmocka_unit_test(test_long_line_refused),
        cmocka_unit_test(test_refusal_is_final),
        cmocka_unit_test(test_cmd2_same_bytes),
        cmocka_unit_test(test_cmdv_same_bytes_or_nothing),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
