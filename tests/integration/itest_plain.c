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

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include "harness.h"

static struct sg_client *C;

/* Wire numbers (proto/slotgate.proto) for the hand-written frames below. */
#define SLOTGATE_OP_SET 3
#define SLOTGATE_CODE_HANDSHAKE_REQUIRED 102

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

/* A plaintext connection to the proxy, or -1. */
static int raw_connect(void)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons((uint16_t)H.proxies[0].port)};
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (fd >= 0 && connect(fd, (struct sockaddr *)&sa, sizeof(sa)) == 0)
        return fd;
    if (fd >= 0)
        close(fd);
    return -1;
}

static uint8_t *put_varint(uint8_t *o, uint64_t v)
{
    while (v >= 0x80) {
        *o++ = (uint8_t)(v | 0x80);
        v >>= 7;
    }
    *o++ = (uint8_t)v;
    return o;
}

/* Write the frame of body (len bytes); 0 or -1. */
static int raw_send(int fd, const uint8_t *body, size_t len)
{
    uint8_t *f = malloc(len + 4);
    assert_non_null(f);
    f[0] = (uint8_t)(len >> 24);
    f[1] = (uint8_t)(len >> 16);
    f[2] = (uint8_t)(len >> 8);
    f[3] = (uint8_t)len;
    memcpy(f + 4, body, len);
    size_t off = 0;
    while (off < len + 4) {
        ssize_t w = write(fd, f + off, len + 4 - off);
        if (w <= 0)
            break;
        off += (size_t)w;
    }
    free(f);
    return off == len + 4 ? 0 : -1;
}

static int read_all(int fd, uint8_t *b, size_t n)
{
    size_t off = 0;
    while (off < n) {
        ssize_t r = read(fd, b + off, n - off);
        if (r <= 0)
            return -1;
        off += (size_t)r;
    }
    return 0;
}

/* The next frame's body (caller frees), its length in *n; NULL if none. */
static uint8_t *raw_read(int fd, size_t *n)
{
    uint8_t h[4];
    if (read_all(fd, h, 4) != 0)
        return NULL;
    *n = (size_t)h[0] << 24 | (size_t)h[1] << 16 | (size_t)h[2] << 8 | h[3];
    uint8_t *b = malloc(*n ? *n : 1);
    assert_non_null(b);
    if (read_all(fd, b, *n) != 0) {
        free(b);
        return NULL;
    }
    return b;
}

/* ClientMessage{Request{id, op SET, keys [key], values [v]}}, written by hand. */
static void raw_send_set(int fd, uint64_t id, const char *key, const uint8_t *v, size_t n)
{
    size_t klen = strlen(key);
    uint8_t *b = malloc(n + klen + 64), *o = b, *rq = b + 8;
    assert_non_null(b);
    uint8_t *q = rq;
    *q++ = 0x08; /* id */
    q = put_varint(q, id);
    *q++ = 0x10; /* op */
    *q++ = SLOTGATE_OP_SET;
    *q++ = 0x22; /* keys */
    q = put_varint(q, klen);
    memcpy(q, key, klen);
    q += klen;
    *q++ = 0x2a; /* values */
    q = put_varint(q, n);
    memcpy(q, v, n);
    q += n;
    size_t rlen = (size_t)(q - rq);
    uint8_t pre[8], *p = pre;
    *p++ = 0x12; /* request */
    p = put_varint(p, rlen);
    memmove(b + (size_t)(p - pre), rq, rlen);
    memcpy(o, pre, (size_t)(p - pre));
    assert_int_equal(raw_send(fd, b, (size_t)(p - pre) + rlen), 0);
    free(b);
}

/*
 * A large SET taken by reference but never started (before the Hello) is
 * refused and its value freed; large SETs in flight when their client goes
 * leave nothing counted. (ASan builds check that nothing leaks.)
 */
static void test_plaintext_large_set_unstarted_and_orphaned(void **state)
{
    enum { N = 65536 };
    uint8_t *v = pattern(N, 7);
    int fd = raw_connect();
    assert_true(fd >= 0);
    raw_send_set(fd, 1, "big:early", v, N);
    size_t n;
    uint8_t *m = raw_read(fd, &n);
    /* ServerMessage{error (3) {code (1): HANDSHAKE_REQUIRED}} */
    assert_non_null(m);
    assert_true(n >= 4 && m[0] == 0x1a && m[2] == 0x08);
    assert_int_equal(m[3], SLOTGATE_CODE_HANDSHAKE_REQUIRED);
    free(m);
    close(fd);

    fd = raw_connect();
    assert_true(fd >= 0);
    static const uint8_t hello[] = {0x0a, 0x02, 0x08, 0x01}; /* Hello{protocol_version 1} */
    assert_int_equal(raw_send(fd, hello, sizeof(hello)), 0);
    m = raw_read(fd, &n);
    assert_non_null(m);
    assert_true(n > 0 && m[0] == 0x0a); /* hello_reply (1) */
    free(m);
    for (uint64_t id = 1; id <= 8; id++)
        raw_send_set(fd, id, "big:orphan", v, N);
    close(fd); /* answers never read */
    free(v);
    /* The session goes when the proxy sees the close; bounded wait. */
    int64_t deadline = h_now_ms() + 10000;
    long long b;
    while ((b = buffered_bytes()) != 0 && h_now_ms() < deadline)
        h_poll_pause();
    assert_int_equal(b, 0);
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
        cmocka_unit_test(test_plaintext_large_set_unstarted_and_orphaned),
    };
    int failed = cmocka_run_group_tests_name("itest_plain", tests, group_setup, group_teardown);
    failed += cmocka_run_group_tests_name("itest_plain_plaintext", plaintext, plaintext_setup,
                                          group_teardown);
    failed += h_stop_failed;
    if (failed)
        h_env_dump_logs(&H, 60);
    return failed ? 1 : 0;
}
