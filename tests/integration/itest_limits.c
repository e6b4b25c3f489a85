/*
 * itest_limits - memory bounds against a real Redis Cluster (issue 10,
 * section 4): a client that pipelines GETs of a 256 KiB value and never
 * reads is closed with ConnectionError OUTPUT_LIMIT once it is owed more
 * than limits.max_output_bytes, and the proxy's RSS grows by no more than
 * that limit (plus a fixed allowance for pools and link buffers); two
 * hundred such clients at once keep the proxy under
 * limits.max_buffered_bytes while a well-behaved client is answered OK on
 * every request. The misbehaving clients are raw TLS frame writers
 * (rawtls.c); memory is read from /proc/<pid>/status and /metrics.
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
#include "rawtls.h"

#define MIB (1024 * 1024)
#define OUTPUT_LIMIT (8 * MIB)
#define BUDGET (64 * MIB)
#define VALUE_BYTES (256 * 1024)
/* What RSS may grow by besides the buffers under test: the worker's pool
 * of request objects, link input buffers and hiredis readers holding
 * replies in flight, OpenSSL's write buffers of clients that do not read,
 * allocator slack. Measured at 1-18 MiB (one client / two hundred). */
#define ALLOWANCE (32 * MIB)
#define BIG_KEY "itest-limits-big"

/* Under AddressSanitizer or ThreadSanitizer RSS measures the sanitizer
 * (quarantine, shadow memory, history), not the proxy: the RSS bounds are
 * checked in the Release build; /metrics' slotgate_buffered_bytes is checked
 * in all. */
#if defined(__SANITIZE_ADDRESS__) || defined(__SANITIZE_THREAD__)
#define RSS_CHECKED 0
#else
#define RSS_CHECKED 1
#endif

static struct h_env env;

static int setup(void **state)
{
    struct h_opts o = {
        .workers = 2,
        .admin = 1,
        .limits_yaml = "  max_output_bytes: 8388608\n"
                       "  max_buffered_bytes: 67108864\n"
                       /* Reading pauses only where the limit is: whatever
                        * the timing, a client that does not read is owed
                        * more than the limit before reading stops. */
                       "  output_high_watermark: 8388608",
    };
    if (h_env_start(&env, "itest_limits", &o) != 0)
        return -1;
    /* The value, written straight to its master as another tool would:
     * a raw value reads back unchanged. */
    char *v = malloc(VALUE_BYTES);
    memset(v, 'v', VALUE_BYTES);
    int port = h_key_owner(&env, BIG_KEY, strlen(BIG_KEY));
    redisReply *r = h_redis_cmd(port, "SET %s %b", BIG_KEY, v, (size_t)VALUE_BYTES);
    free(v);
    int ok = r != NULL && r->type == REDIS_REPLY_STATUS;
    if (r != NULL)
        freeReplyObject(r);
    return ok ? 0 : -1;
}

static int teardown(void **state)
{
    return h_env_stop(&env);
}

static int proxy_pid(void)
{
    return (int)env.proxies[0].pid;
}

static long long metric(const char *name)
{
    return h_metric(env.proxies[0].admin_port, name);
}

/* Read GET replies of the big value on a well-behaved raw client. */
static void warm_up(void)
{
    struct rt_conn c;
    assert_int_equal(rt_connect(&c, env.proxies[0].port, env.ca_file), 0);
    assert_int_equal(rt_handshake(&c), 0);
    for (int i = 1; i <= 64; i++) {
        /* 4 at a time: well under the output limit even if the proxy is
         * faster than this reader */
        if (i % 4 == 1)
            for (int j = i; j < i + 4; j++)
                assert_int_equal(rt_send_get(&c, (uint64_t)j, BIG_KEY), 0);
        Slotgate__V1__ServerMessage *m = rt_read(&c);
        assert_non_null(m);
        assert_int_equal(m->msg_case, SLOTGATE__V1__SERVER_MESSAGE__MSG_RESPONSE);
        assert_int_equal(m->response->code, SLOTGATE__V1__CODE__CODE_OK);
        assert_int_equal(m->response->value.len, VALUE_BYTES);
        slotgate__v1__server_message__free_unpacked(m, NULL);
    }
    rt_close(&c);
}

/* Wait until the counter reaches at least want; returns its value. */
static long long wait_metric_at_least(const char *name, long long want)
{
    int64_t deadline = h_now_ms() + 60000;
    long long v = -1;
    while (h_now_ms() < deadline) {
        v = metric(name);
        if (v >= want)
            return v;
        h_poll_pause();
    }
    return v;
}

static void test_non_reading_client_is_closed_at_the_output_limit(void **state)
{
    warm_up();
    long base = rt_rss_kib(proxy_pid());
    long long closes0 = metric("slotgate_output_limit_closes_total");
    assert_true(base > 0 && closes0 >= 0);

    struct rt_conn c;
    assert_int_equal(rt_connect(&c, env.proxies[0].port, env.ca_file), 0);
    assert_int_equal(rt_handshake(&c), 0);
    /* 8192 GETs of 256 KiB: 2 GiB owed if nothing bounded it. */
    for (int i = 1; i <= 8192; i++)
        assert_int_equal(rt_send_get(&c, (uint64_t)i, BIG_KEY), 0);
    assert_true(wait_metric_at_least("slotgate_output_limit_closes_total", closes0 + 1) >=
                closes0 + 1);
    long after = rt_rss_kib(proxy_pid());
    long grown = after - base;
    h_log("RSS %ld KiB before, %ld KiB after: grew %ld KiB (limit %d KiB)", base, after, grown,
          OUTPUT_LIMIT / 1024);
    if (RSS_CHECKED)
        assert_true(grown * 1024 <= (long)OUTPUT_LIMIT + ALLOWANCE);

    /* The client now reads: the replies queued before the limit, then the
     * ConnectionError, then the end of the stream. */
    int responses = 0, code = -1;
    Slotgate__V1__ServerMessage *m;
    while ((m = rt_read(&c)) != NULL) {
        if (m->msg_case == SLOTGATE__V1__SERVER_MESSAGE__MSG_ERROR) {
            code = m->error->code;
            slotgate__v1__server_message__free_unpacked(m, NULL);
            break;
        }
        assert_int_equal(m->msg_case, SLOTGATE__V1__SERVER_MESSAGE__MSG_RESPONSE);
        assert_int_equal(m->response->code, SLOTGATE__V1__CODE__CODE_OK);
        responses++;
        slotgate__v1__server_message__free_unpacked(m, NULL);
    }
    h_log("%d replies, then ConnectionError %d", responses, code);
    assert_int_equal(code, SLOTGATE__V1__CODE__CODE_OUTPUT_LIMIT);
    /* Not all 8192: most were never answered (some were written to the
     * socket before the limit, as many as the kernel buffers took). */
    assert_true(responses < 8192);
    assert_null(rt_read(&c)); /* closed */
    rt_close(&c);
}

#define N_BAD 200
#define BAD_GETS 24 /* 6 MiB owed each: under the per-connection limit */

/* One SET+GET of the well-behaved client (tag prefix-i), counted, then
 * the proxy's RSS sampled into *peak. */
static void good_call(struct sg_client *good, const char *prefix, int i, int *calls, int *ok,
                      long *peak)
{
    char tag[48];
    snprintf(tag, sizeof(tag), "%s-%d", prefix, i);
    (*calls)++;
    if (h_check_set_get(good, tag) == 0)
        (*ok)++;
    long rss = rt_rss_kib(proxy_pid());
    if (rss > *peak)
        *peak = rss;
}

static void test_many_non_reading_clients_stay_under_the_budget(void **state)
{
    long long evict0 = metric("slotgate_output_limit_closes_total");
    struct sg_client *good = h_connect(&env, 0, H_CERT_NONE);
    assert_non_null(good);
    static struct rt_conn bad[N_BAD];
    /* Connections first: their TLS state is not what the budget bounds. */
    for (int i = 0; i < N_BAD; i++) {
        assert_int_equal(rt_connect(&bad[i], env.proxies[0].port, env.ca_file), 0);
        assert_int_equal(rt_handshake(&bad[i]), 0);
    }
    long base = rt_rss_kib(proxy_pid());
    int good_ok = 0, good_calls = 0;
    long peak = base;
    for (int i = 0; i < N_BAD; i++) {
        for (int j = 1; j <= BAD_GETS; j++)
            assert_int_equal(rt_send_get(&bad[i], (uint64_t)j, BIG_KEY), 0);
        if (i % 5 == 4)
            good_call(good, "limits-good", i, &good_calls, &good_ok, &peak);
    }
    /* The last replies land while the well-behaved client goes on. */
    for (int i = 0; i < 40; i++)
        good_call(good, "limits-good-end", i, &good_calls, &good_ok, &peak);
    long long buffered = metric("slotgate_buffered_bytes");
    long long evicted = metric("slotgate_output_limit_closes_total") - evict0;
    long after = rt_rss_kib(proxy_pid());
    if (after > peak)
        peak = after;
    h_log("RSS %ld KiB before, peak %ld KiB: grew %ld KiB (budget %d KiB); buffered now %lld "
          "bytes; %lld clients closed; well-behaved client %d/%d OK",
          base, peak, peak - base, BUDGET / 1024, buffered, evicted, good_ok, good_calls);
    assert_int_equal(good_ok, good_calls);
    assert_true(buffered >= 0 && buffered <= BUDGET);
    assert_true(evicted > 0); /* 200 x 6 MiB could only fit by closing some */
    if (RSS_CHECKED)
        assert_true((peak - base) * 1024 <= (long)BUDGET + ALLOWANCE);
    for (int i = 0; i < N_BAD; i++)
        rt_close(&bad[i]);
    sg_client_free(good);
    assert_true(h_proxy_alive(&env, 0));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_non_reading_client_is_closed_at_the_output_limit),
        cmocka_unit_test(test_many_non_reading_clients_stay_under_the_budget),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
