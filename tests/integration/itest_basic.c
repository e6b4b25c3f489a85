/*
 * itest_basic - the everyday operations through the real proxy over TLS and
 * mTLS against a 3-master cluster: PING, SET/GET, TTLs, NX/XX, DELETE,
 * EXPIRE, misses, binary keys and values, key placement on the owning
 * master (checked directly on the Redis nodes), and the STATS op. And
 * slotgate-cli: `stats` prints the counters and exits 0; when its reader
 * has gone it exits 141 (as on SIGPIPE) and says nothing on stderr.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include <sys/wait.h>
#include <unistd.h>

#include "harness.h"

static struct sg_client *C; /* shared TLS client for most tests */

static int group_setup(void **state)
{
    struct h_opts o = {0};
    return h_group_start(&H, "basic", &o, &C);
}

static int group_teardown(void **state)
{
    return h_group_stop(&H, &C);
}

static void test_ping(void **state)
{
    assert_int_equal(hc_ping(C), SG_OK);
    const struct sg_limits *lim = sg_client_limits(C);
    assert_non_null(lim);
    assert_true(lim->max_frame_bytes > 0);
    assert_int_equal(lim->default_deadline_ms, 1500);
    assert_non_null(sg_client_server_version(C));
}

static void test_set_get(void **state)
{
    const char *k = "basic:setget", *v = "hello over tls";
    assert_int_equal(hc_set(C, "", k, strlen(k), v, strlen(v), 0, SG_COND_NONE), SG_OK);
    h_expect_value(C, k, strlen(k), v, strlen(v));
    const char *v2 = "overwritten";
    assert_int_equal(hc_set(C, "", k, strlen(k), v2, strlen(v2), 0, SG_COND_NONE), SG_OK);
    h_expect_value(C, k, strlen(k), v2, strlen(v2));
}

/* The client verifies the server: IP SAN, wrong name, wrong CA, no TLS. */
static void test_tls_verification(void **state)
{
    struct sg_client_options opt;
    char err[256];
    int code;

    /* SNI defaulting to the host "127.0.0.1": must match the IP SAN. */
    h_client_opts(&H, 0, &opt);
    opt.sni = NULL;
    struct sg_client *c = h_connect_opts(&opt, &code, err, sizeof(err));
    if (!c)
        fail_msg("verification by IP SAN 127.0.0.1 failed: %s", err);
    assert_int_equal(hc_ping(c), SG_OK);
    sg_client_free(c);

    h_client_opts(&H, 0, &opt);
    opt.sni = "not-this-server.example";
    c = h_connect_opts(&opt, &code, err, sizeof(err));
    if (c) {
        sg_client_free(c);
        fail_msg("connected although the server name does not match");
    }

    char other[H_PATH + 32];
    snprintf(other, sizeof(other), "%s/other-ca.pem", H.certs);
    h_client_opts(&H, 0, &opt);
    opt.cacert = other;
    c = h_connect_opts(&opt, &code, err, sizeof(err));
    if (c) {
        sg_client_free(c);
        fail_msg("connected although the server cert is not signed by the given CA");
    }

    /* Plaintext client against the TLS listener: the handshake cannot work. */
    h_client_opts(&H, 0, &opt);
    opt.tls = 0;
    opt.timeout_ms = 3000;
    int64_t t0 = h_now_ms();
    c = h_connect_opts(&opt, &code, err, sizeof(err));
    if (c) {
        int rc = hc_ping(c);
        sg_client_free(c);
        assert_int_not_equal(rc, SG_OK);
    }
    assert_true(h_now_ms() - t0 < 4000);
    assert_int_equal(hc_ping(C), SG_OK);
}

static void test_mtls(void **state)
{
    int i = h_proxy_start(&H, 1);
    assert_true(i > 0);

    struct sg_client *good = h_connect(&H, i, H_CERT_CLIENT);
    assert_non_null(good);
    assert_int_equal(hc_ping(good), SG_OK);
    const char *k = "basic:mtls", *v = "mutual";
    assert_int_equal(hc_set(good, "", k, strlen(k), v, strlen(v), 0, SG_COND_NONE), SG_OK);
    h_expect_value(good, k, strlen(k), v, strlen(v));

    /* No client certificate: refused (in TLS 1.3 possibly only at Hello). */
    struct sg_client *none = h_connect(&H, i, H_CERT_NONE);
    if (none) {
        int rc = hc_ping(none);
        sg_client_free(none);
        fail_msg("client without certificate was accepted (PING: %s)", sg_code_name(rc));
    }
    /* A certificate from a CA the server does not trust: refused. */
    struct sg_client *other = h_connect(&H, i, H_CERT_OTHER);
    if (other) {
        int rc = hc_ping(other);
        sg_client_free(other);
        fail_msg("client with an untrusted certificate was accepted (PING: %s)", sg_code_name(rc));
    }
    /* The refused clients did not disturb the accepted one. */
    assert_int_equal(hc_ping(good), SG_OK);
    sg_client_free(good);
    assert_true(h_proxy_alive(&H, i));
    assert_int_equal(h_proxy_stop(&H, i), 0); /* clean exit on SIGTERM */
}

static void test_set_ttl(void **state)
{
    const char *k = "basic:ttl", *v = "short-lived";
    assert_int_equal(hc_set(C, "", k, strlen(k), v, strlen(v), 5000, SG_COND_NONE), SG_OK);
    long long pttl = h_owner_pttl(&H, k);
    if (pttl <= 0 || pttl > 5000)
        fail_msg("PTTL on the owning node is %lld, expected 1..5000", pttl);
    h_expect_value(C, k, strlen(k), v, strlen(v));
}

static void test_nx_xx(void **state)
{
    const char *k = "basic:cond";
    hc_del(C, "", k, strlen(k));
    assert_int_equal(hc_set(C, "", k, strlen(k), "x1", 2, 0, SG_COND_XX), SG_NOT_APPLIED);
    assert_int_equal(h_get_code(C, k, strlen(k)), SG_NOT_FOUND);
    assert_int_equal(hc_set(C, "", k, strlen(k), "n1", 2, 0, SG_COND_NX), SG_OK);
    assert_int_equal(hc_set(C, "", k, strlen(k), "n2", 2, 0, SG_COND_NX), SG_NOT_APPLIED);
    h_expect_value(C, k, strlen(k), "n1", 2);
    assert_int_equal(hc_set(C, "", k, strlen(k), "x2", 2, 0, SG_COND_XX), SG_OK);
    h_expect_value(C, k, strlen(k), "x2", 2);
}

static void test_delete(void **state)
{
    const char *k = "basic:del";
    assert_int_equal(hc_set(C, "", k, strlen(k), "d", 1, 0, SG_COND_NONE), SG_OK);

    struct sg_request *r = sg_request_new(SG_OP_DELETE);
    sg_request_add_key(r, k, strlen(k));
    struct sg_response *resp = h_call(C, r);
    assert_int_equal(resp->code, SG_OK);
    assert_int_equal(resp->count, 1);
    sg_response_free(resp);

    int port = h_key_owner(&H, k, strlen(k));
    redisReply *rr = h_redis_cmd(port, "EXISTS %s", k);
    assert_non_null(rr);
    assert_int_equal(rr->integer, 0);
    freeReplyObject(rr);

    r = sg_request_new(SG_OP_DELETE);
    sg_request_add_key(r, k, strlen(k));
    resp = h_call(C, r);
    assert_int_equal(resp->code, SG_NOT_FOUND);
    assert_int_equal(resp->count, 0);
    sg_response_free(resp);
    assert_int_equal(hc_del(C, "", k, strlen(k)), SG_NOT_FOUND);
}

static void test_expire(void **state)
{
    const char *k = "basic:expire";
    assert_int_equal(hc_set(C, "", k, strlen(k), "e", 1, 0, SG_COND_NONE), SG_OK);
    assert_int_equal(hc_expire(C, "", k, strlen(k), 3000), SG_OK);
    long long pttl = h_owner_pttl(&H, k);
    if (pttl <= 0 || pttl > 3000)
        fail_msg("PTTL after EXPIRE 3000 is %lld", pttl);
    const char *missing = "basic:expire:missing";
    assert_int_equal(hc_expire(C, "", missing, strlen(missing), 3000), SG_NOT_FOUND);
}

static void test_get_miss(void **state)
{
    const char *k = "basic:never-written";
    void *v = NULL;
    size_t vl = 99;
    assert_int_equal(hc_get(C, "", k, strlen(k), &v, &vl), SG_NOT_FOUND);
    free(v);

    struct sg_request *r = sg_request_new(SG_OP_GET);
    sg_request_add_key(r, k, strlen(k));
    struct sg_response *resp = h_call(C, r);
    assert_int_equal(resp->code, SG_NOT_FOUND);
    assert_int_equal(resp->value_len, 0);
    sg_response_free(resp);
}

static void test_binary(void **state)
{
    unsigned char key[] = {'b', 'i', 'n', 0, 1, 0, 0xff, 0xfe, '{', 0, '}', 0};
    unsigned char val[1024];
    for (size_t i = 0; i < sizeof(val); i++)
        val[i] = (unsigned char)(i * 7);
    val[0] = 0;
    val[sizeof(val) - 1] = 0;
    assert_int_equal(hc_set(C, "", key, sizeof(key), val, sizeof(val), 0, SG_COND_NONE), SG_OK);
    h_expect_value(C, key, sizeof(key), val, sizeof(val));

    /* The key is stored as exactly these bytes on its owner. */
    int port = h_key_owner(&H, key, sizeof(key));
    assert_true(port > 0);
    redisReply *r = h_redis_cmd(port, "EXISTS %b", key, sizeof(key));
    assert_non_null(r);
    assert_int_equal(r->integer, 1);
    freeReplyObject(r);

    /* A key differing only after a NUL is a different key. */
    unsigned char key2[sizeof(key)];
    memcpy(key2, key, sizeof(key));
    key2[sizeof(key2) - 1] = 1;
    assert_int_equal(h_get_code(C, key2, sizeof(key2)), SG_NOT_FOUND);

    /* Values that are all NULs, a single NUL, and empty. */
    unsigned char zeros[300] = {0};
    const char *k3 = "basic:zeros";
    assert_int_equal(hc_set(C, "", k3, strlen(k3), zeros, sizeof(zeros), 0, SG_COND_NONE), SG_OK);
    h_expect_value(C, k3, strlen(k3), zeros, sizeof(zeros));
    assert_int_equal(hc_set(C, "", k3, strlen(k3), zeros, 1, 0, SG_COND_NONE), SG_OK);
    h_expect_value(C, k3, strlen(k3), zeros, 1);
    const char *k4 = "basic:empty";
    assert_int_equal(hc_set(C, "", k4, strlen(k4), "", 0, 0, SG_COND_NONE), SG_OK);
    h_expect_value(C, k4, strlen(k4), "", 0);
}

/* 300 keys land on the master owning their slot, and on no other master. */
static void test_spread(void **state)
{
    int masters[H_MAX_NODES];
    int nm = h_masters(&H, masters, H_MAX_NODES);
    assert_int_equal(nm, 3);
    int per_master[3] = {0};
    char key[64], val[64];
    for (int i = 0; i < 300; i++) {
        snprintf(key, sizeof(key), "spread:%d", i);
        snprintf(val, sizeof(val), "value-%d", i);
        assert_int_equal(hc_set(C, "", key, strlen(key), val, strlen(val), 0, SG_COND_NONE), SG_OK);
    }
    for (int i = 0; i < 300; i++) {
        snprintf(key, sizeof(key), "spread:%d", i);
        snprintf(val, sizeof(val), "value-%d", i);
        h_expect_value(C, key, strlen(key), val, strlen(val));
        int slot = h_keyslot(&H, key, strlen(key));
        int owner = h_slot_owner(&H, slot);
        assert_true(owner > 0);
        for (int m = 0; m < nm; m++) {
            if (masters[m] == owner) {
                per_master[m]++;
                redisReply *r = h_redis_cmd(owner, "EXISTS %s", key);
                assert_non_null(r);
                if (r->type != REDIS_REPLY_INTEGER || r->integer != 1)
                    fail_msg("%s not found on its owner %d", key, owner);
                freeReplyObject(r);
            } else {
                /* a non-owner holds no key of that slot at all */
                redisReply *r = h_redis_cmd(masters[m], "CLUSTER COUNTKEYSINSLOT %d", slot);
                assert_non_null(r);
                if (r->type != REDIS_REPLY_INTEGER || r->integer != 0)
                    fail_msg("slot %d of %s has keys on non-owner %d", slot, key, masters[m]);
                freeReplyObject(r);
            }
        }
    }
    for (int m = 0; m < nm; m++) {
        h_log("master %d holds %d of the 300 keys", masters[m], per_master[m]);
        assert_true(per_master[m] > 0);
    }
}

static void test_stats(void **state)
{
    struct sg_request *r = sg_request_new(SG_OP_STATS);
    struct sg_response *resp = h_call(C, r);
    assert_int_equal(resp->code, SG_OK);
    static const char *want[] = {
        "requests", "moved", "ask", "tryagain", "timeouts", "link_resets", "topology_refreshes"};
    int missing = 0;
    for (size_t w = 0; w < sizeof(want) / sizeof(want[0]); w++) {
        int found = 0;
        for (size_t i = 0; i < resp->n_stats; i++) {
            if (strcmp(resp->stat_names[i], want[w]) == 0) {
                found = 1;
                if (w == 0 && resp->stat_values[i] < 600)
                    fail_msg("requests = %llu after 600+ requests",
                             (unsigned long long)resp->stat_values[i]);
            }
        }
        if (!found) {
            h_log("STATS lacks counter \"%s\"", want[w]);
            missing++;
        }
    }
    sg_response_free(resp);
    assert_int_equal(missing, 0);
}

/*
 * Run slotgate-cli ARGS... against proxy 0 over TLS with stdout into a pipe
 * (read end closed first when reader_gone, else read into out) and stderr
 * into err; its exit status, or -1.
 */
static int run_cli(int reader_gone, char *out, size_t outcap, char *err, size_t errcap,
                   const char *cmd)
{
    int po[2], pe[2];
    assert_int_equal(pipe(po), 0);
    assert_int_equal(pipe(pe), 0);
    char port[16];
    snprintf(port, sizeof(port), "%d", H.proxies[0].port);
    const char *argv[] = {SG_CLI_BIN, "-h",       "127.0.0.1", "-p", port,
                          "--tls",    "--cacert", H.ca_file,   cmd,  NULL};
    if (reader_gone)
        close(po[0]);
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        dup2(po[1], 1);
        dup2(pe[1], 2);
        execv(argv[0], (char *const *)argv);
        _exit(127);
    }
    close(po[1]);
    close(pe[1]);
    size_t n = 0;
    ssize_t r;
    if (!reader_gone) {
        while (n + 1 < outcap && (r = read(po[0], out + n, outcap - 1 - n)) > 0)
            n += (size_t)r;
        out[n] = '\0';
        close(po[0]);
    }
    n = 0;
    while (n + 1 < errcap && (r = read(pe[0], err + n, errcap - 1 - n)) > 0)
        n += (size_t)r;
    err[n] = '\0';
    close(pe[0]);
    int st;
    if (waitpid(pid, &st, 0) != pid || !WIFEXITED(st))
        return -1;
    return WEXITSTATUS(st);
}

static void test_cli_stats_and_reader_gone(void **state)
{
    static char out[1 << 16], err[4096];
    assert_int_equal(run_cli(0, out, sizeof(out), err, sizeof(err), "stats"), 0);
    assert_non_null(strstr(out, "requests"));
    assert_string_equal(err, "");
    int st = run_cli(1, out, sizeof(out), err, sizeof(err), "stats");
    h_log("slotgate-cli stats with its reader gone: exit %d, stderr \"%s\"", st, err);
    assert_int_equal(st, 141);
    assert_string_equal(err, "");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_ping),
        cmocka_unit_test(test_set_get),
        cmocka_unit_test(test_tls_verification),
        cmocka_unit_test(test_mtls),
        cmocka_unit_test(test_set_ttl),
        cmocka_unit_test(test_nx_xx),
        cmocka_unit_test(test_delete),
        cmocka_unit_test(test_expire),
        cmocka_unit_test(test_get_miss),
        cmocka_unit_test(test_binary),
        cmocka_unit_test(test_spread),
        cmocka_unit_test(test_stats),
        cmocka_unit_test(test_cli_stats_and_reader_gone),
    };
    int failed = cmocka_run_group_tests_name("itest_basic", tests, group_setup, group_teardown);
    failed += h_stop_failed;
    if (failed)
        h_env_dump_logs(&H, 60);
    return failed ? 1 : 0;
}
