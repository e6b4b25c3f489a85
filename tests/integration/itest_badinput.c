/*
 * itest_badinput - hostile and broken clients. Each case runs next to a
 * healthy client connected beforehand, which must still SET/GET correctly
 * afterwards (invariant 6: bad input from one client never affects another).
 * Connection errors (1xx) must arrive as ConnectionError and be followed by
 * the server closing; request errors (2xx) leave the connection open.
 * Frames are crafted with the raw API (sg_client_write_raw, skip_hello).
 */
#include <errno.h>
#include <netinet/in.h>
#include <poll.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>
#include <arpa/inet.h>

#include <cmocka.h>

#include "harness.h"
#include "slotgate_testing.h"

#define MAX_FRAME 1048576
#define MAX_KEY 256
#define MAX_VALUE 65536

static struct sg_client *HEALTHY;

static int group_setup(void **state)
{
    struct h_opts o = {
        .workers = 1, /* one worker: every client shares the same shard links */
        .limits_yaml = "  max_frame_bytes: 1048576\n"
                       "  max_key_bytes: 256\n"
                       "  max_value_bytes: 65536\n"
                       "  max_batch_bytes: 1048576",
    };
    return h_group_start(&H, "badinput", &o, &HEALTHY);
}

static int group_teardown(void **state)
{
    return h_group_stop(&H, &HEALTHY);
}

static void healthy_check(const char *what)
{
    if (h_check_set_get(HEALTHY, what) != 0)
        fail_msg("healthy client broken after: %s", what);
}

/* ---- protobuf by hand: just enough to build broken messages ---------------- */

struct pb {
    uint8_t b[256];
    size_t n;
};

static void pb_varint(struct pb *p, uint64_t v)
{
    while (v >= 0x80) {
        p->b[p->n++] = (uint8_t)(v | 0x80);
        v >>= 7;
    }
    p->b[p->n++] = (uint8_t)v;
}

static void pb_field_varint(struct pb *p, int field, uint64_t v)
{
    pb_varint(p, (uint64_t)field << 3);
    pb_varint(p, v);
}

static void pb_field_bytes(struct pb *p, int field, const void *data, size_t len)
{
    pb_varint(p, ((uint64_t)field << 3) | 2);
    pb_varint(p, len);
    memcpy(p->b + p->n, data, len);
    p->n += len;
}

/* Write a frame: 4-byte big-endian length, then body. */
static int write_frame(struct sg_client *c, const void *body, size_t len)
{
    uint8_t buf[300];
    assert_true(len + 4 <= sizeof(buf));
    buf[0] = (uint8_t)(len >> 24);
    buf[1] = (uint8_t)(len >> 16);
    buf[2] = (uint8_t)(len >> 8);
    buf[3] = (uint8_t)len;
    memcpy(buf + 4, body, len);
    return sg_client_write_raw(c, buf, len + 4);
}

static struct sg_client *connect_raw(int skip_hello)
{
    struct sg_client_options opt;
    h_client_opts(&H, 0, &opt);
    opt.timeout_ms = 4000;
    char err[256];
    int code;
    struct sg_client *c;
    if (skip_hello) {
        c = sg_client_connect_nohello(&opt);
        if (c->err) {
            snprintf(err, sizeof(err), "%s", c->errstr);
            sg_client_free(c);
            c = NULL;
        }
    } else {
        c = h_connect_opts(&opt, &code, err, sizeof(err));
    }
    if (!c)
        fail_msg("connect (skip_hello=%d) failed: %s", skip_hello, err);
    return c;
}

/* Bytes of the underlying socket are all read until EOF: the server closed. */
static void expect_server_close(int fd, int ms, const char *what)
{
    int64_t deadline = h_now_ms() + ms;
    char buf[4096];
    for (;;) {
        int left = (int)(deadline - h_now_ms());
        if (left <= 0)
            fail_msg("%s: server did not close the connection within %d ms", what, ms);
        struct pollfd pfd = {.fd = fd, .events = POLLIN};
        int r = poll(&pfd, 1, left);
        if (r < 0 && errno == EINTR)
            continue;
        if (r <= 0)
            continue;
        ssize_t n = read(fd, buf, sizeof(buf));
        if (n == 0 || (n < 0 && errno != EINTR && errno != EAGAIN))
            return; /* EOF or reset */
    }
}

/*
 * Expect a ConnectionError with code from c, then the server closing the
 * connection. The socket is duplicated first because the client library
 * closes its own descriptor after a ConnectionError.
 */
static void expect_conn_error(struct sg_client *c, int code, const char *what)
{
    int fd = dup(sg_client_fd(c));
    assert_true(fd >= 0);
    struct sg_response *resp = NULL;
    int rc = hc_recv(c, &resp);
    if (rc != 0 || !resp) {
        close(fd);
        fail_msg("%s: expected ConnectionError %s, got no message (%s)", what, sg_code_name(code),
                 c->errstr);
    }
    int got = resp->code;
    uint64_t id = resp->id;
    sg_response_free(resp);
    if (got != code || id != 0) {
        close(fd);
        fail_msg("%s: expected ConnectionError %s (id 0), got %s (id %llu)", what,
                 sg_code_name(code), sg_code_name(got), (unsigned long long)id);
    }
    /* sg_client_recv already closed the TLS client; the dup still sees EOF */
    expect_server_close(fd, 3000, what);
    close(fd);
}

/* ---- connection errors ------------------------------------------------------- */

static void test_frame_too_large(void **state)
{
    struct sg_client *c = connect_raw(0);
    const struct sg_limits *lim = sg_client_limits(c);
    assert_int_equal(lim->max_frame_bytes, MAX_FRAME);
    uint32_t len = lim->max_frame_bytes + 1;
    uint8_t hdr[4] = {(uint8_t)(len >> 24), (uint8_t)(len >> 16), (uint8_t)(len >> 8),
                      (uint8_t)len};
    assert_int_equal(sg_client_write_raw(c, hdr, 4), 0);
    expect_conn_error(c, SG_FRAME_TOO_LARGE, "frame header over max_frame_bytes");
    sg_client_free(c);

    /* 4 GiB claimed: must not be allocated, just refused */
    c = connect_raw(0);
    uint8_t huge[4] = {0xff, 0xff, 0xff, 0xff};
    assert_int_equal(sg_client_write_raw(c, huge, 4), 0);
    expect_conn_error(c, SG_FRAME_TOO_LARGE, "frame header 0xffffffff");
    sg_client_free(c);
    healthy_check("frame too large");
}

static void test_bad_frame(void **state)
{
    /* a length-delimited field claiming more bytes than the frame holds */
    static const uint8_t truncated[] = {0x12, 0x7f, 0x08};
    /* wire type 7 does not exist */
    static const uint8_t bad_wiretype[] = {0x0f, 0x01};
    const struct {
        const uint8_t *b;
        size_t n;
        const char *what;
    } cases[] = {{truncated, sizeof(truncated), "truncated submessage"},
                 {bad_wiretype, sizeof(bad_wiretype), "invalid wire type"}};
    for (size_t i = 0; i < 2; i++) {
        struct sg_client *c = connect_raw(0);
        assert_int_equal(write_frame(c, cases[i].b, cases[i].n), 0);
        expect_conn_error(c, SG_BAD_FRAME, cases[i].what);
        sg_client_free(c);
    }
    healthy_check("bad frame");
}

static void test_request_before_hello(void **state)
{
    struct sg_client *c = connect_raw(1);
    struct sg_request *r = sg_request_new(SG_OP_PING);
    assert_int_equal(hc_send(c, r, 0), 0);
    sg_request_free(r);
    expect_conn_error(c, SG_HANDSHAKE_REQUIRED, "request before hello");
    sg_client_free(c);
    healthy_check("request before hello");
}

static void test_unsupported_version(void **state)
{
    struct sg_client *c = connect_raw(1);
    struct pb hello = {0}, msg = {0};
    pb_field_varint(&hello, 1, 99);
    pb_field_bytes(&hello, 2, "badinput", 8);
    pb_field_bytes(&msg, 1, hello.b, hello.n);
    assert_int_equal(write_frame(c, msg.b, msg.n), 0);
    expect_conn_error(c, SG_UNSUPPORTED_VERSION, "hello version 99");
    sg_client_free(c);

    /* The library's own connect path reports the code as well. */
    healthy_check("unsupported version");
}

/* ---- request errors: the connection stays open ------------------------------ */

static int call_code(struct sg_client *c, struct sg_request *r)
{
    struct sg_response *resp = h_call(c, r);
    int code = resp->code;
    sg_response_free(resp);
    return code;
}

static void test_unknown_op(void **state)
{
    struct sg_client *c = h_connect(&H, 0, H_CERT_NONE);
    assert_non_null(c);
    struct sg_request *r = sg_request_new(77);
    sg_request_add_key(r, "k", 1);
    assert_int_equal(call_code(c, r), SG_UNKNOWN_OP);
    assert_int_equal(hc_ping(c), SG_OK);
    r = sg_request_new(0);
    assert_int_equal(call_code(c, r), SG_UNKNOWN_OP);
    assert_int_equal(hc_ping(c), SG_OK);
    sg_client_free(c);
    healthy_check("unknown op");
}

static void test_invalid_requests(void **state)
{
    struct sg_client *c = h_connect(&H, 0, H_CERT_NONE);
    assert_non_null(c);

    struct sg_request *r = sg_request_new(SG_OP_GET);
    assert_int_equal(call_code(c, r), SG_INVALID_ARGUMENT);
    assert_int_equal(hc_ping(c), SG_OK);

    r = sg_request_new(SG_OP_SET);
    sg_request_add_key(r, "novalue", 7);
    assert_int_equal(call_code(c, r), SG_INVALID_ARGUMENT);
    assert_int_equal(hc_ping(c), SG_OK);

    r = sg_request_new(SG_OP_GET);
    sg_request_add_key(r, "", 0);
    assert_int_equal(call_code(c, r), SG_INVALID_KEY);
    assert_int_equal(hc_ping(c), SG_OK);
    assert_int_equal(hc_set(c, "", "", 0, "v", 1, 0, SG_COND_NONE), SG_INVALID_KEY);

    const struct sg_limits *lim = sg_client_limits(c);
    assert_int_equal(lim->max_key_bytes, MAX_KEY);
    assert_int_equal(lim->max_value_bytes, MAX_VALUE);
    char *big = malloc(MAX_VALUE + 1);
    assert_non_null(big);
    memset(big, 'k', MAX_VALUE + 1);
    assert_int_equal(h_get_code(c, big, MAX_KEY), SG_NOT_FOUND); /* exactly the limit: fine */
    assert_int_equal(h_get_code(c, big, MAX_KEY + 1), SG_KEY_TOO_LARGE);
    assert_int_equal(hc_set(c, "", big, MAX_KEY + 1, "v", 1, 0, SG_COND_NONE), SG_KEY_TOO_LARGE);
    assert_int_equal(hc_ping(c), SG_OK);

    assert_int_equal(hc_set(c, "", "bad:bigval", 10, big, MAX_VALUE + 1, 0, SG_COND_NONE),
                     SG_VALUE_TOO_LARGE);
    assert_int_equal(hc_ping(c), SG_OK);
    assert_int_equal(h_get_code(c, "bad:bigval", 10), SG_NOT_FOUND);
    /* exactly at the limit is accepted and round-trips */
    assert_int_equal(hc_set(c, "", "bad:maxval", 10, big, MAX_VALUE, 0, SG_COND_NONE), SG_OK);
    h_expect_value(c, "bad:maxval", 10, big, MAX_VALUE);
    free(big);

    assert_int_equal(h_check_set_get(c, "same connection after request errors"), 0);
    sg_client_free(c);
    healthy_check("invalid requests");
}

/* ---- transport-level garbage ----------------------------------------------- */

static void test_garbage_instead_of_tls(void **state)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    assert_true(fd >= 0);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons((uint16_t)H.proxies[0].port)};
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    assert_int_equal(connect(fd, (struct sockaddr *)&a, sizeof(a)), 0);
    char junk[1024];
    memcpy(junk, "GET / HTTP/1.1\r\nHost: x\r\n\r\n", 27);
    for (size_t i = 27; i < sizeof(junk); i++)
        junk[i] = (char)(i * 31 + 7);
    ssize_t w = write(fd, junk, sizeof(junk));
    assert_true(w > 0);
    int64_t t0 = h_now_ms();
    expect_server_close(fd, 5000, "garbage instead of a TLS ClientHello");
    h_log("garbage connection closed after %lld ms", (long long)(h_now_ms() - t0));
    close(fd);

    /* connect and send nothing at all, then vanish: nothing to clean up */
    fd = socket(AF_INET, SOCK_STREAM, 0);
    assert_int_equal(connect(fd, (struct sockaddr *)&a, sizeof(a)), 0);
    close(fd);
    healthy_check("garbage instead of TLS");
}

/* ---- orphaned requests: FIFO alignment on the shard links ------------------- */

#define FIFO_KEYS 64
#define FIFO_REQS 500

static void fifo_key(int i, char *key, size_t kl, char *val, size_t vl)
{
    snprintf(key, kl, "fifo:{%d}:%d", i % 16, i);
    /* distinct lengths as well as contents, so a shifted reply shows */
    int n = snprintf(val, vl, "value-of-%d:", i);
    for (int j = 0; j < i % 37 && n < (int)vl - 1; j++)
        val[n++] = (char)('a' + (i + j) % 26);
    val[n] = 0;
}

/* Pipeline FIFO_REQS GETs on c; no reads. Returns the first id: the
 * library numbers a connection's requests consecutively, so GET j has id
 * base+j. */
static uint64_t send_gets(struct sg_client *c)
{
    char key[64], val[128];
    uint64_t base = 0, id;
    for (int j = 0; j < FIFO_REQS; j++) {
        fifo_key(j % FIFO_KEYS, key, sizeof(key), val, sizeof(val));
        struct sg_request *r = sg_request_new(SG_OP_GET);
        sg_request_add_key(r, key, strlen(key));
        if (sg_client_send(c, r, &id) != 0)
            fail_msg("send GET %d: %s", j, c->errstr);
        if (j == 0)
            base = id;
        else if (id != base + (uint64_t)j)
            fail_msg("GET %d got id %llu, not %llu", j, (unsigned long long)id,
                     (unsigned long long)(base + (uint64_t)j));
        sg_request_free(r);
    }
    return base;
}

/* Receive FIFO_REQS responses with ids base.., check each value. */
static void recv_and_check(struct sg_client *c, uint64_t base)
{
    char key[64], val[128];
    static uint8_t seen[FIFO_REQS];
    memset(seen, 0, sizeof(seen));
    for (int n = 0; n < FIFO_REQS; n++) {
        struct sg_response *resp = NULL;
        if (hc_recv(c, &resp) != 0)
            fail_msg("recv %d of %d: %s", n, FIFO_REQS, c->errstr);
        if (resp->id < base || resp->id >= base + FIFO_REQS)
            fail_msg("response with unexpected id %llu", (unsigned long long)resp->id);
        int j = (int)(resp->id - base);
        if (seen[j]++)
            fail_msg("id %llu answered twice", (unsigned long long)resp->id);
        fifo_key(j % FIFO_KEYS, key, sizeof(key), val, sizeof(val));
        if (resp->code != SG_OK)
            fail_msg("GET %s answered %s (%s)", key, sg_code_name(resp->code), resp->message);
        if (resp->value_len != strlen(val) || memcmp(resp->value, val, resp->value_len) != 0)
            fail_msg("GET %s returned \"%.*s\": replies are misaligned", key, (int)resp->value_len,
                     (const char *)resp->value);
        sg_response_free(resp);
    }
}

static void abort_client(struct sg_client *c)
{
    /* RST with no TLS close_notify: the descriptor is closed under the
     * library, which then frees its state (its own close gets EBADF). */
    struct linger lg = {.l_onoff = 1, .l_linger = 0};
    int fd = sg_client_fd(c);
    setsockopt(fd, SOL_SOCKET, SO_LINGER, &lg, sizeof(lg));
    close(fd);
    sg_client_free(c);
}

static void test_abrupt_disconnect_inflight(void **state)
{
    char key[64], val[128];
    for (int i = 0; i < FIFO_KEYS; i++) {
        fifo_key(i, key, sizeof(key), val, sizeof(val));
        assert_int_equal(hc_set(HEALTHY, "", key, strlen(key), val, strlen(val), 0, SG_COND_NONE),
                         SG_OK);
    }
    struct sg_client *b = h_connect(&H, 0, H_CERT_NONE);
    assert_non_null(b);
    for (int round = 0; round < 4; round++) {
        struct sg_client *a = h_connect(&H, 0, H_CERT_NONE);
        assert_non_null(a);
        uint64_t base;
        send_gets(a);
        if (round % 2) {
            /* b's requests share the shard links with a's orphans */
            base = send_gets(b);
            abort_client(a);
        } else {
            abort_client(a);
            base = send_gets(b);
        }
        recv_and_check(b, base);
    }
    sg_client_free(b);
    healthy_check("abrupt disconnect with requests in flight");
}

static void test_proxy_still_alive(void **state)
{
    assert_true(h_proxy_alive(&H, 0));
    struct sg_client *c = h_connect(&H, 0, H_CERT_NONE);
    assert_non_null(c);
    assert_int_equal(hc_ping(c), SG_OK);
    sg_client_free(c);
    healthy_check("the whole group");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_frame_too_large),
        cmocka_unit_test(test_bad_frame),
        cmocka_unit_test(test_request_before_hello),
        cmocka_unit_test(test_unsupported_version),
        cmocka_unit_test(test_unknown_op),
        cmocka_unit_test(test_invalid_requests),
        cmocka_unit_test(test_garbage_instead_of_tls),
        cmocka_unit_test(test_abrupt_disconnect_inflight),
        cmocka_unit_test(test_proxy_still_alive),
    };
    int failed = cmocka_run_group_tests_name("itest_badinput", tests, group_setup, group_teardown);
    failed += h_stop_failed;
    if (failed)
        h_env_dump_logs(&H, 80);
    return failed ? 1 : 0;
}
