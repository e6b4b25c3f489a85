/*
 * itest_domain - the domain features through the real proxy, checked on the
 * Redis nodes directly: keyspace TTL policy, the value envelope (compression,
 * values that look like envelopes, raw values written by other tools,
 * corrupt envelopes), INVALIDATE across and within keyspaces, leases under a
 * 50-caller stampede and stale/foreign lease tokens, versioned writes racing
 * on two connections, config reload on SIGHUP, and the drain on SIGTERM
 * (in-flight requests answered before SHUTTING_DOWN, exit status 0).
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
#include <time.h>

#include <cmocka.h>

#include "harness.h"

static const char KEYSPACES_YAML[] = "keyspaces:\n"
                                     "  session:\n"
                                     "    prefix: \"session:\"\n"
                                     "    default_ttl_ms: 3600000\n"
                                     "    max_ttl_ms: 86400000\n"
                                     "  room:\n"
                                     "    prefix: \"room:\"\n"
                                     "    default_ttl_ms: 1800000\n"
                                     "    compression: auto\n"
                                     "    compress_threshold: 1024\n"
                                     "  asset:\n"
                                     "    prefix: \"asset:\"\n"
                                     "    default_ttl_ms: 3600000\n"
                                     "  gamesystem:\n"
                                     "    prefix: \"gamesystem:\"\n"
                                     "    default_ttl_ms: 7200000\n"
                                     "  always:\n"
                                     "    compression: always";

static struct sg_client *C;

static int group_setup(void **state)
{
    struct h_opts o = {.replicas = -1, .workers = 2, .extra_yaml = KEYSPACES_YAML};
    return h_group_start(&H, "domain", &o, &C);
}

static int group_teardown(void **state)
{
    return h_group_stop(&H, &C);
}

/* ---- helpers ------------------------------------------------------------------ */

static const char *ks_prefix(const char *ks)
{
    if (!ks[0])
        return "";
    if (strcmp(ks, "always") == 0)
        return "always:"; /* the default prefix "<name>:" */
    static char buf[64];
    snprintf(buf, sizeof(buf), "%s:", ks);
    return buf;
}

/* The Redis key of client key (key, klen) in keyspace ks, into out. */
static size_t full_key(const char *ks, const void *key, size_t klen, char *out, size_t n)
{
    const char *p = ks_prefix(ks);
    size_t pl = strlen(p);
    assert_true(pl + klen <= n);
    memcpy(out, p, pl);
    memcpy(out + pl, key, klen);
    return pl + klen;
}

/* A command about one Redis key, run on the master owning it. */
static redisReply *node_cmd(const char *fk, size_t fkl, const char *cmd)
{
    int port = h_key_owner(&H, fk, fkl);
    assert_true(port > 0);
    redisReply *r = h_redis_cmd(port, "%s %b", cmd, fk, fkl);
    assert_non_null(r);
    return r;
}

static long long node_int(const char *ks, const char *key, const char *cmd)
{
    char fk[512];
    size_t n = full_key(ks, key, strlen(key), fk, sizeof(fk));
    redisReply *r = node_cmd(fk, n, cmd);
    assert_int_equal(r->type, REDIS_REPLY_INTEGER);
    long long v = r->integer;
    freeReplyObject(r);
    return v;
}

/* Stored bytes of key in ks, straight from its owner (caller frees); NULL if absent. */
static uint8_t *node_get(const char *ks, const void *key, size_t klen, size_t *len)
{
    char fk[512];
    size_t n = full_key(ks, key, klen, fk, sizeof(fk));
    redisReply *r = node_cmd(fk, n, "GET");
    uint8_t *out = NULL;
    if (r->type == REDIS_REPLY_STRING) {
        out = malloc(r->len + 1);
        memcpy(out, r->str, r->len);
        *len = r->len;
    } else {
        assert_int_equal(r->type, REDIS_REPLY_NIL);
    }
    freeReplyObject(r);
    return out;
}

static void node_set(const char *ks, const void *key, size_t klen, const void *val, size_t vlen)
{
    char fk[512];
    size_t n = full_key(ks, key, klen, fk, sizeof(fk));
    int port = h_key_owner(&H, fk, n);
    assert_true(port > 0);
    redisReply *r = h_redis_cmd(port, "SET %b %b", fk, n, val, vlen);
    assert_non_null(r);
    assert_int_equal(r->type, REDIS_REPLY_STATUS);
    freeReplyObject(r);
}

static int ks_set(struct sg_client *c, const char *ks, const char *key, const void *val,
                  size_t vlen)
{
    return hc_set(c, ks, key, strlen(key), val, vlen, 0, SG_COND_NONE);
}

/* GET key in ks and assert OK with exactly (val, vlen). */
static void ks_expect(struct sg_client *c, const char *ks, const void *key, size_t klen,
                      const void *val, size_t vlen)
{
    void *got = NULL;
    size_t glen = 0;
    int rc = hc_get(c, ks, key, klen, &got, &glen);
    if (rc != SG_OK)
        fail_msg("GET [%s] %.*s answered %s", ks, (int)klen, (const char *)key, sg_code_name(rc));
    if (glen != vlen || (vlen && memcmp(got, val, vlen) != 0))
        fail_msg("GET [%s] %.*s returned %zu bytes, expected %zu (or different bytes)", ks,
                 (int)klen, (const char *)key, glen, vlen);
    free(got);
}

static int ks_get_code(struct sg_client *c, const char *ks, const char *key)
{
    void *got = NULL;
    size_t glen = 0;
    int rc = hc_get(c, ks, key, strlen(key), &got, &glen);
    free(got);
    return rc;
}

static struct sg_response *ks_call(struct sg_client *c, int op, const char *ks, const void *key,
                                   size_t klen, const void *val, size_t vlen)
{
    struct sg_request *r = sg_request_new(op);
    sg_request_keyspace(r, ks);
    if (key)
        sg_request_add_key(r, key, klen);
    if (val)
        sg_request_add_value(r, val, vlen);
    return h_call(c, r);
}

/* ---- 1. TTL per keyspace ------------------------------------------------------------ */

static void test_keyspace_ttls(void **state)
{
    static const struct {
        const char *ks;
        long long ttl; /* default_ttl_ms; -1: no expiry */
    } cases[] = {{"session", 3600000},    {"room", 1800000}, {"asset", 3600000},
                 {"gamesystem", 7200000}, {"always", -1},    {"", -1}};
    const char *key = "ttl:probe";
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        assert_int_equal(ks_set(C, cases[i].ks, key, "t", 1), SG_OK);
        ks_expect(C, cases[i].ks, key, strlen(key), "t", 1);
        long long pttl = node_int(cases[i].ks, key, "PTTL");
        long long want = cases[i].ttl;
        if (want < 0 ? pttl != -1 : (pttl > want || pttl <= want - 5000))
            fail_msg("[%s] SET without ttl: PTTL of %s%s on its owner is %lld, default %lld",
                     cases[i].ks, ks_prefix(cases[i].ks), key, pttl, want);
    }
    /* an explicit TTL overrides the default */
    assert_int_equal(hc_set(C, "session", key, strlen(key), "t", 1, 60000, SG_COND_NONE), SG_OK);
    long long pttl = node_int("session", key, "PTTL");
    assert_true(pttl > 55000 && pttl <= 60000);

    /* max_ttl_ms: exactly the max is fine, above it is refused (and nothing written) */
    const char *k2 = "ttl:max";
    assert_int_equal(hc_set(C, "session", k2, strlen(k2), "m", 1, 86400000, SG_COND_NONE), SG_OK);
    const char *k3 = "ttl:toolong";
    assert_int_equal(hc_set(C, "session", k3, strlen(k3), "m", 1, 86400001, SG_COND_NONE),
                     SG_TTL_OUT_OF_RANGE);
    assert_int_equal(ks_get_code(C, "session", k3), SG_NOT_FOUND);
    assert_int_equal(node_int("session", k3, "EXISTS"), 0);
    assert_int_equal(hc_expire(C, "session", k2, strlen(k2), 86400001), SG_TTL_OUT_OF_RANGE);
    struct sg_request *r = sg_request_new(SG_OP_MSET);
    sg_request_keyspace(r, "session");
    sg_request_add_key(r, "ttl:m1", 6);
    sg_request_add_value(r, "1", 1);
    sg_request_add_ttl(r, 1000);
    sg_request_add_key(r, "ttl:m2", 6);
    sg_request_add_value(r, "2", 1);
    sg_request_add_ttl(r, 86400001);
    struct sg_response *resp = h_call(C, r);
    assert_int_equal(resp->code, SG_TTL_OUT_OF_RANGE);
    sg_response_free(resp);
    assert_int_equal(ks_get_code(C, "session", "ttl:m1"), SG_NOT_FOUND);
    /* no max in room: a long TTL is accepted there */
    assert_int_equal(hc_set(C, "room", k3, strlen(k3), "m", 1, 86400001, SG_COND_NONE), SG_OK);

    /* unknown keyspaces, including the reserved name "default" */
    static const char *unknown[] = {"nope", "default", "Session", "session:"};
    for (size_t i = 0; i < sizeof(unknown) / sizeof(unknown[0]); i++) {
        assert_int_equal(hc_set(C, unknown[i], key, strlen(key), "u", 1, 0, SG_COND_NONE),
                         SG_UNKNOWN_KEYSPACE);
        assert_int_equal(ks_get_code(C, unknown[i], key), SG_UNKNOWN_KEYSPACE);
    }
    assert_int_equal(hc_ping(C), SG_OK);
}

/* ---- 2. envelope --------------------------------------------------------------------- */

static uint64_t rng_state = 0x9E3779B97F4A7C15ull;
static uint8_t rng_byte(void)
{
    rng_state ^= rng_state << 13;
    rng_state ^= rng_state >> 7;
    rng_state ^= rng_state << 17;
    return (uint8_t)(rng_state >> 24);
}

/* ~64 KiB of JSON-like text: compresses well. */
static size_t json_like(char *buf, size_t cap)
{
    size_t n = 0;
    n += (size_t)snprintf(buf + n, cap - n, "{\"players\":[");
    for (int i = 0; n + 200 < cap; i++)
        n += (size_t)snprintf(buf + n, cap - n,
                              "%s{\"id\":%d,\"name\":\"player-%d\",\"score\":%d,"
                              "\"team\":\"%s\",\"online\":%s}",
                              i ? "," : "", i, i, (i * 37) % 1000, i % 2 ? "red" : "blue",
                              i % 3 ? "true" : "false");
    n += (size_t)snprintf(buf + n, cap - n, "]}");
    return n;
}

static void test_envelope(void **state)
{
    static const char *kss[] = {"", "room", "always"};
    enum { BIG = 65536 };
    char *json = malloc(BIG);
    size_t jlen = json_like(json, BIG);
    assert_true(jlen > 60000);
    uint8_t *rnd = malloc(BIG);
    for (size_t i = 0; i < BIG; i++)
        rnd[i] = rng_byte();
    rnd[0] = 0x42; /* not the magic */
    static const uint8_t magic[] = {0xFE, 'S', 'G', 0x01, 0x00, 'l',  'o', 'o', 'k',  's',
                                    0,    'l', 'i', 'k',  'e',  0xFE, 'S', 'G', 0x01, 0x01};
    char small[500];
    memset(small, 'a', sizeof(small));

    for (size_t s = 0; s < 3; s++) {
        const char *ks = kss[s];
        int compressing = s > 0;
        size_t len = 0;

        /* empty value */
        assert_int_equal(ks_set(C, ks, "env:empty", "", 0), SG_OK);
        ks_expect(C, ks, "env:empty", 9, "", 0);
        uint8_t *st = node_get(ks, "env:empty", 9, &len);
        assert_non_null(st);
        free(st);

        /* a value that begins with the envelope magic: stored wrapped */
        assert_int_equal(ks_set(C, ks, "env:magic", magic, sizeof(magic)), SG_OK);
        ks_expect(C, ks, "env:magic", 9, magic, sizeof(magic));
        st = node_get(ks, "env:magic", 9, &len);
        assert_non_null(st);
        if (len < 5 || st[0] != 0xFE || st[1] != 'S' || st[2] != 'G' || st[3] != 1 ||
            (len == sizeof(magic) && memcmp(st, magic, len) == 0))
            fail_msg("[%s] a magic-looking value is stored unwrapped (%zu bytes)", ks, len);
        if (!s) {
            assert_int_equal(len, sizeof(magic) + 5);
            assert_memory_equal(st + 5, magic, sizeof(magic));
        }
        free(st);

        /* incompressible random bytes */
        assert_int_equal(ks_set(C, ks, "env:random", rnd, BIG), SG_OK);
        ks_expect(C, ks, "env:random", 10, rnd, BIG);

        /* compressible JSON: smaller in Redis where the keyspace compresses */
        assert_int_equal(ks_set(C, ks, "env:json", json, jlen), SG_OK);
        ks_expect(C, ks, "env:json", 8, json, jlen);
        long long stored = node_int(ks, "env:json", "STRLEN");
        h_log("[%s] 64 KiB JSON: %zu raw bytes stored as %lld", ks, jlen, stored);
        if (compressing ? stored >= (long long)jlen : stored != (long long)jlen)
            fail_msg("[%s] JSON of %zu bytes stored as %lld bytes", ks, jlen, stored);

        /* below room's threshold: stored as-is; "always" compresses it */
        assert_int_equal(ks_set(C, ks, "env:small", small, sizeof(small)), SG_OK);
        ks_expect(C, ks, "env:small", 9, small, sizeof(small));
        stored = node_int(ks, "env:small", "STRLEN");
        if (strcmp(ks, "always") == 0 ? stored >= (long long)sizeof(small)
                                      : stored != (long long)sizeof(small))
            fail_msg("[%s] 500 bytes of 'a' stored as %lld bytes", ks, stored);

        /* raw values written by another tool read back unchanged */
        const char *plain = "written by redis-cli, not by slotgate";
        node_set(ks, "env:direct", 10, plain, strlen(plain));
        ks_expect(C, ks, "env:direct", 10, plain, strlen(plain));
        static const uint8_t rawbin[] = {0, 1, 2, 0xFE, 'S', 'G', 1, 0, 0xFF, 0};
        node_set(ks, "env:directbin", 13, rawbin, sizeof(rawbin));
        ks_expect(C, ks, "env:directbin", 13, rawbin, sizeof(rawbin));
        node_set(ks, "env:directempty", 15, "", 0);
        ks_expect(C, ks, "env:directempty", 15, "", 0);
    }
    free(json);
    free(rnd);
}

static void test_corrupt_envelope(void **state)
{
    static const uint8_t corrupt[] = {0xFE, 'S',  'G',  0x01, 0x01, 0xFF, 0xFF, 0xFF,
                                      0xFF, 0xFF, 0xFF, 0xFF, 0x00, 0x13, 0x37, 0x42};
    static const uint8_t badver[] = {0xFE, 'S', 'G', 0x07, 0x00, 'x'};
    static const char *kss[] = {"room", ""};
    for (size_t s = 0; s < 2; s++) {
        const char *ks = kss[s];
        char stat[96];
        snprintf(stat, sizeof(stat), "keyspace.%s.corrupt_values", ks[0] ? ks : "default");
        int64_t before = h_stat(C, stat);
        assert_true(before >= 0);
        node_set(ks, "env:corrupt", 11, corrupt, sizeof(corrupt));
        node_set(ks, "env:badver", 10, badver, sizeof(badver));
        assert_int_equal(ks_get_code(C, ks, "env:corrupt"), SG_CORRUPT_VALUE);
        assert_int_equal(ks_get_code(C, ks, "env:badver"), SG_CORRUPT_VALUE);
        assert_int_equal(h_stat(C, stat), before + 2);

        /* in a batch, only that key fails */
        assert_int_equal(ks_set(C, ks, "env:good", "good", 4), SG_OK);
        struct sg_request *r = sg_request_new(SG_OP_MGET);
        sg_request_keyspace(r, ks);
        sg_request_add_key(r, "env:good", 8);
        sg_request_add_key(r, "env:corrupt", 11);
        sg_request_add_key(r, "env:never", 9);
        struct sg_response *resp = h_call(C, r);
        assert_int_equal(resp->code, SG_OK);
        assert_int_equal(resp->n_results, 3);
        assert_int_equal(resp->results[0].code, SG_OK);
        assert_int_equal(resp->results[0].value_len, 4);
        assert_memory_equal(resp->results[0].value, "good", 4);
        assert_int_equal(resp->results[1].code, SG_CORRUPT_VALUE);
        assert_int_equal(resp->results[2].code, SG_NOT_FOUND);
        sg_response_free(resp);
        assert_int_equal(h_stat(C, stat), before + 3);
        /* the stored bytes were left alone */
        size_t len = 0;
        uint8_t *st = node_get(ks, "env:corrupt", 11, &len);
        assert_non_null(st);
        assert_int_equal(len, sizeof(corrupt));
        assert_memory_equal(st, corrupt, len);
        free(st);
    }
    /* the connection, and the proxy, keep working */
    assert_int_equal(hc_ping(C), SG_OK);
    assert_int_equal(h_check_set_get(C, "after-corrupt"), 0);
    struct sg_client *c2 = h_connect(&H, 0, H_CERT_NONE);
    assert_non_null(c2);
    assert_int_equal(h_check_set_get(c2, "after-corrupt-new"), 0);
    sg_client_free(c2);
    assert_true(h_proxy_alive(&H, 0));
}

/* ---- 3. invalidation ------------------------------------------------------------------ */

#define INV_KEYS 200
#define INV_TOKENS 50

static void inv_write_user(int u)
{
    char k[64], v[64];
    snprintf(k, sizeof(k), "{user:%d}", u);
    snprintf(v, sizeof(v), "session-of-%d", u);
    assert_int_equal(ks_set(C, "session", k, v, strlen(v)), SG_OK);
    snprintf(k, sizeof(k), "{user:%d}:avatar", u);
    snprintf(v, sizeof(v), "avatar-of-%d", u);
    assert_int_equal(ks_set(C, "asset", k, v, strlen(v)), SG_OK);
    snprintf(k, sizeof(k), "{user:%d}:inventory", u);
    snprintf(v, sizeof(v), "inventory-of-%d", u);
    assert_int_equal(ks_set(C, "gamesystem", k, v, strlen(v)), SG_OK);
    struct sg_request *r = sg_request_new(SG_OP_MSET);
    for (int i = 0; i < INV_KEYS; i++) {
        snprintf(k, sizeof(k), "{user:%d}:k%d", u, i);
        snprintf(v, sizeof(v), "u%d-k%d", u, i);
        sg_request_add_key(r, k, strlen(k));
        sg_request_add_value(r, v, strlen(v));
    }
    struct sg_response *resp = h_call(C, r);
    assert_int_equal(resp->code, SG_OK);
    for (size_t i = 0; i < resp->n_results; i++)
        assert_int_equal(resp->results[i].code, SG_OK);
    sg_response_free(resp);
}

static void inv_write_room(int room)
{
    char k[64], v[64];
    snprintf(k, sizeof(k), "{room:%d}:state", room);
    snprintf(v, sizeof(v), "state-of-%d", room);
    assert_int_equal(ks_set(C, "room", k, v, strlen(v)), SG_OK);
    for (int i = 0; i < INV_TOKENS; i++) {
        snprintf(k, sizeof(k), "{room:%d}:tokens:%d", room, i);
        snprintf(v, sizeof(v), "token-%d-%d", room, i);
        assert_int_equal(ks_set(C, "room", k, v, strlen(v)), SG_OK);
    }
    /* same tag in the default keyspace: not part of the room keyspace */
    snprintf(k, sizeof(k), "{room:%d}:shadow", room);
    snprintf(v, sizeof(v), "shadow-of-%d", room);
    assert_int_equal(ks_set(C, "", k, v, strlen(v)), SG_OK);
}

/* All keys of user u present (want = 1) or gone (want = 0), through the
 * proxy and on the owning node; which = bitmask 1 session, 2 asset,
 * 4 gamesystem, 8 the default-keyspace keys. */
static void inv_check_user(int u, int which, int want)
{
    char k[64], v[64];
    struct {
        const char *ks, *fmt, *vfmt;
    } one[] = {{"session", "{user:%d}", "session-of-%d"},
               {"asset", "{user:%d}:avatar", "avatar-of-%d"},
               {"gamesystem", "{user:%d}:inventory", "inventory-of-%d"}};
    for (int j = 0; j < 3; j++) {
        if (!(which & (1 << j)))
            continue;
        snprintf(k, sizeof(k), one[j].fmt, u);
        snprintf(v, sizeof(v), one[j].vfmt, u);
        if (want)
            ks_expect(C, one[j].ks, k, strlen(k), v, strlen(v));
        else if (ks_get_code(C, one[j].ks, k) != SG_NOT_FOUND)
            fail_msg("[%s] %s survived its invalidation", one[j].ks, k);
        if (node_int(one[j].ks, k, "EXISTS") != want)
            fail_msg("[%s] %s: EXISTS on its owner is not %d", one[j].ks, k, want);
    }
    if (!(which & 8))
        return;
    struct sg_request *r = sg_request_new(SG_OP_MGET);
    for (int i = 0; i < INV_KEYS; i++) {
        snprintf(k, sizeof(k), "{user:%d}:k%d", u, i);
        sg_request_add_key(r, k, strlen(k));
    }
    struct sg_response *resp = h_call(C, r);
    assert_int_equal(resp->code, SG_OK);
    assert_int_equal(resp->n_results, INV_KEYS);
    for (int i = 0; i < INV_KEYS; i++) {
        snprintf(v, sizeof(v), "u%d-k%d", u, i);
        const struct sg_key_result *kr = &resp->results[i];
        if (want ? kr->code != SG_OK || kr->value_len != strlen(v) ||
                       memcmp(kr->value, v, kr->value_len) != 0
                 : kr->code != SG_NOT_FOUND)
            fail_msg("{user:%d}:k%d answered %s, expected %s", u, i, sg_code_name(kr->code),
                     want ? "its value" : "NOT_FOUND");
    }
    sg_response_free(resp);
    /* all 200 share the tag's slot: count them on its owner */
    snprintf(k, sizeof(k), "{user:%d}", u);
    int slot = h_keyslot(&H, k, strlen(k));
    int port = h_slot_owner(&H, slot);
    assert_true(port > 0);
    long long n = 0;
    for (int i = 0; i < INV_KEYS; i++) {
        snprintf(k, sizeof(k), "{user:%d}:k%d", u, i);
        redisReply *rr = h_redis_cmd(port, "EXISTS %s", k);
        assert_non_null(rr);
        n += rr->integer;
        freeReplyObject(rr);
    }
    if (n != (want ? INV_KEYS : 0))
        fail_msg("%lld of user %d's %d default-keyspace keys exist on node %d", n, u, INV_KEYS,
                 port);
}

static void inv_check_room(int room, int want)
{
    char k[64], v[64];
    snprintf(k, sizeof(k), "{room:%d}:state", room);
    snprintf(v, sizeof(v), "state-of-%d", room);
    if (want)
        ks_expect(C, "room", k, strlen(k), v, strlen(v));
    else
        assert_int_equal(ks_get_code(C, "room", k), SG_NOT_FOUND);
    assert_int_equal(node_int("room", k, "EXISTS"), want);
    for (int i = 0; i < INV_TOKENS; i++) {
        snprintf(k, sizeof(k), "{room:%d}:tokens:%d", room, i);
        if (node_int("room", k, "EXISTS") != want)
            fail_msg("room:%s: EXISTS is not %d", k, want);
    }
    /* the default keyspace's key with the same tag is never touched here */
    snprintf(k, sizeof(k), "{room:%d}:shadow", room);
    snprintf(v, sizeof(v), "shadow-of-%d", room);
    ks_expect(C, "", k, strlen(k), v, strlen(v));
}

static int64_t invalidate(const char *ks, const char *pattern, int *code)
{
    struct sg_request *r = sg_request_new(SG_OP_INVALIDATE);
    sg_request_keyspace(r, ks);
    sg_request_pattern(r, pattern, strlen(pattern));
    struct sg_response *resp = h_call(C, r);
    *code = resp->code;
    int64_t n = resp->count;
    if (resp->code != SG_OK)
        h_log("INVALIDATE [%s] %s answered %s (%s)", ks, pattern, sg_code_name(resp->code),
              resp->message);
    sg_response_free(resp);
    return n;
}

static void test_invalidate(void **state)
{
    inv_write_user(123);
    inv_write_user(124);
    inv_write_room(789);
    inv_write_room(790);
    inv_check_user(123, 15, 1);
    inv_check_user(124, 15, 1);

    /* everything of user 123, in every keyspace */
    int code;
    int64_t n = invalidate("", "*{user:123}*", &code);
    assert_int_equal(code, SG_OK);
    h_log("INVALIDATE *{user:123}* removed %lld keys", (long long)n);
    assert_int_equal(n, 3 + INV_KEYS);
    inv_check_user(123, 15, 0);
    inv_check_user(124, 15, 1);
    inv_check_room(789, 1);
    inv_check_room(790, 1);

    /* room 789 within the room keyspace (pattern pins one tag) */
    n = invalidate("room", "{room:789}*", &code);
    assert_int_equal(code, SG_OK);
    assert_int_equal(n, 1 + INV_TOKENS);
    inv_check_room(789, 0);
    inv_check_room(790, 1);
    inv_check_user(124, 15, 1);

    /* a pinned pattern in the default keyspace: only the {user:124}:* keys,
     * not session:{user:124} or asset:{user:124}:avatar */
    n = invalidate("", "{user:124}:*", &code);
    assert_int_equal(code, SG_OK);
    assert_int_equal(n, INV_KEYS);
    inv_check_user(124, 8, 0);
    inv_check_user(124, 7, 1);

    /* nothing left to match */
    n = invalidate("", "*{user:123}*", &code);
    assert_int_equal(code, SG_OK);
    assert_int_equal(n, 0);
    inv_check_room(790, 1);
}

/* ---- 4. leases --------------------------------------------------------------------------- */

#define LEASE_CALLERS 50

struct leaser {
    pthread_t th;
    int t;
    struct sg_client *c;
    int granted, filled, done, waits, other;
    char value[64];
    char problem[256];
};

static const char *LEASE_KEY = "lease:stampede";
static pthread_barrier_t lease_barrier;
static int lease_waiters; /* callers that have seen LEASE_WAIT at least once */
static int lease_grants;
static char lease_fill_value[64];

static void *leaser_main(void *arg)
{
    struct leaser *L = arg;
    pthread_barrier_wait(&lease_barrier);
    int64_t deadline = h_now_ms() + 40000;
    while (!L->done && h_now_ms() < deadline) {
        struct sg_request *r = sg_request_new(SG_OP_GET_OR_LEASE);
        sg_request_keyspace(r, "session");
        sg_request_add_key(r, LEASE_KEY, strlen(LEASE_KEY));
        struct sg_response *resp = NULL;
        int rc = hc_call(L->c, r, &resp);
        sg_request_free(r);
        if (!resp) {
            snprintf(L->problem, sizeof(L->problem), "GET_OR_LEASE: %s (%.200s)", sg_code_name(rc),
                     L->c->errstr);
            return NULL;
        }
        if (resp->code == SG_OK) {
            snprintf(L->value, sizeof(L->value), "%.*s", (int)resp->value_len,
                     (const char *)resp->value);
            L->done = 1;
        } else if (resp->code == SG_LEASE_GRANTED) {
            L->granted++;
            __atomic_fetch_add(&lease_grants, 1, __ATOMIC_SEQ_CST);
            if (resp->lease_len == 0) {
                snprintf(L->problem, sizeof(L->problem), "LEASE_GRANTED without a token");
                sg_response_free(resp);
                return NULL;
            }
            /* let the others pile up behind the lease (bounded) */
            int64_t wait_until = h_now_ms() + 15000;
            while (__atomic_load_n(&lease_waiters, __ATOMIC_SEQ_CST) < LEASE_CALLERS - 1 &&
                   h_now_ms() < wait_until)
                h_poll_pause();
            char v[64];
            int n = snprintf(v, sizeof(v), "filled-by-%d", L->t);
            struct sg_request *f = sg_request_new(SG_OP_SET_WITH_LEASE);
            sg_request_keyspace(f, "session");
            sg_request_add_key(f, LEASE_KEY, strlen(LEASE_KEY));
            sg_request_add_value(f, v, (size_t)n);
            sg_request_lease(f, resp->lease, resp->lease_len);
            struct sg_response *fr = NULL;
            int frc = hc_call(L->c, f, &fr);
            sg_request_free(f);
            if (frc != SG_OK) {
                snprintf(L->problem, sizeof(L->problem), "SET_WITH_LEASE answered %s",
                         sg_code_name(frc));
            } else {
                L->filled = 1;
                snprintf(lease_fill_value, sizeof(lease_fill_value), "%s", v);
            }
            sg_response_free(fr);
        } else if (resp->code == SG_LEASE_WAIT) {
            if (L->waits++ == 0)
                __atomic_fetch_add(&lease_waiters, 1, __ATOMIC_SEQ_CST);
            uint32_t ms = resp->retry_after_ms ? resp->retry_after_ms : 20;
            if (ms > 1000)
                ms = 1000;
            struct timespec ts = {0, (long)ms * 1000000L};
            nanosleep(&ts, NULL); /* the server's retry hint */
        } else {
            L->other++;
            snprintf(L->problem, sizeof(L->problem), "GET_OR_LEASE answered %s (%s)",
                     sg_code_name(resp->code), resp->message);
            sg_response_free(resp);
            return NULL;
        }
        sg_response_free(resp);
    }
    if (!L->done && !L->problem[0])
        snprintf(L->problem, sizeof(L->problem), "caller %d never saw the value", L->t);
    return NULL;
}

static void test_lease_stampede(void **state)
{
    hc_del(C, "session", LEASE_KEY, strlen(LEASE_KEY));
    int64_t grants_before = h_stat(C, "keyspace.session.lease_grants");
    struct leaser *L = calloc(LEASE_CALLERS, sizeof(*L));
    for (int t = 0; t < LEASE_CALLERS; t++) {
        L[t].t = t;
        L[t].c = h_connect(&H, 0, H_CERT_NONE);
        assert_non_null(L[t].c);
    }
    lease_waiters = 0;
    lease_grants = 0;
    lease_fill_value[0] = 0;
    assert_int_equal(pthread_barrier_init(&lease_barrier, NULL, LEASE_CALLERS), 0);
    for (int t = 0; t < LEASE_CALLERS; t++)
        assert_int_equal(pthread_create(&L[t].th, NULL, leaser_main, &L[t]), 0);
    for (int t = 0; t < LEASE_CALLERS; t++)
        pthread_join(L[t].th, NULL);
    pthread_barrier_destroy(&lease_barrier);
    int grants = 0, fills = 0, done = 0, waited = 0;
    long waits = 0;
    const char *first = NULL;
    for (int t = 0; t < LEASE_CALLERS; t++) {
        grants += L[t].granted;
        fills += L[t].filled;
        done += L[t].done;
        waits += L[t].waits;
        waited += L[t].waits > 0;
        if (!first && L[t].problem[0])
            first = L[t].problem;
    }
    h_log("lease stampede: %d grant(s), %d fill(s), %d callers saw LEASE_WAIT (%ld in all), "
          "%d got the value",
          grants, fills, waited, waits, done);
    if (first) {
        for (int t = 0; t < LEASE_CALLERS; t++)
            sg_client_free(L[t].c);
        free(L);
        fail_msg("%s", first);
    }
    assert_int_equal(grants, 1);
    assert_int_equal(fills, 1);
    assert_int_equal(done, LEASE_CALLERS);
    assert_true(waited >= 1);
    for (int t = 0; t < LEASE_CALLERS; t++) {
        if (strcmp(L[t].value, lease_fill_value) != 0)
            fail_msg("caller %d ended with \"%s\", the fill was \"%s\"", t, L[t].value,
                     lease_fill_value);
        sg_client_free(L[t].c);
    }
    free(L);
    assert_int_equal(h_stat(C, "keyspace.session.lease_grants"), grants_before + 1);
    /* the filled value is what Redis holds, with the keyspace's TTL */
    size_t len = 0;
    uint8_t *st = node_get("session", LEASE_KEY, strlen(LEASE_KEY), &len);
    assert_non_null(st);
    assert_int_equal(len, strlen(lease_fill_value));
    assert_memory_equal(st, lease_fill_value, len);
    free(st);
    long long pttl = node_int("session", LEASE_KEY, "PTTL");
    assert_true(pttl > 3600000 - 5000 && pttl <= 3600000);
}

/* GET_OR_LEASE of key: code, and the token into tok (NUL-terminated). */
static int get_or_lease(struct sg_client *c, const char *key, uint64_t ttl_ms, uint32_t deadline_ms,
                        char *tok, size_t toklen, uint32_t *retry_after)
{
    struct sg_request *r = sg_request_new(SG_OP_GET_OR_LEASE);
    sg_request_keyspace(r, "session");
    sg_request_add_key(r, key, strlen(key));
    if (ttl_ms)
        sg_request_ttl(r, ttl_ms);
    if (deadline_ms)
        sg_request_deadline(r, deadline_ms);
    struct sg_response *resp = h_call(c, r);
    int code = resp->code;
    if (tok) {
        assert_true(resp->lease_len < toklen);
        if (resp->lease_len)
            memcpy(tok, resp->lease, resp->lease_len);
        tok[resp->lease_len] = 0;
    }
    if (retry_after)
        *retry_after = resp->retry_after_ms;
    sg_response_free(resp);
    return code;
}

static int set_with_lease(struct sg_client *c, const char *key, const char *val, const char *tok)
{
    struct sg_request *r = sg_request_new(SG_OP_SET_WITH_LEASE);
    sg_request_keyspace(r, "session");
    sg_request_add_key(r, key, strlen(key));
    sg_request_add_value(r, val, strlen(val));
    sg_request_lease(r, tok, strlen(tok));
    struct sg_response *resp = h_call(c, r);
    int code = resp->code;
    sg_response_free(resp);
    return code;
}

static void test_lease_stale_and_foreign(void **state)
{
    const char *key = "lease:stale";
    hc_del(C, "session", key, strlen(key));
    char tok[128], tok2[128];
    assert_int_equal(get_or_lease(C, key, 200, 0, tok, sizeof(tok), NULL), SG_LEASE_GRANTED);
    assert_true(strlen(tok) > 0);
    /* the lease marker's TTL is the request's ttl_ms */
    long long pttl = node_int("session", key, "PTTL");
    assert_true(pttl <= 200);
    int64_t deadline = h_now_ms() + 5000;
    while ((pttl = node_int("session", key, "PTTL")) != -2 && h_now_ms() < deadline)
        h_poll_pause();
    assert_int_equal(pttl, -2);
    assert_int_equal(set_with_lease(C, key, "too-late", tok), SG_LEASE_INVALID);
    assert_int_equal(ks_get_code(C, "session", key), SG_NOT_FOUND);
    assert_int_equal(node_int("session", key, "EXISTS"), 0);

    /* a new lease, a new token */
    assert_int_equal(get_or_lease(C, key, 0, 0, tok2, sizeof(tok2), NULL), SG_LEASE_GRANTED);
    assert_string_not_equal(tok, tok2);
    /* the lease marker reads as a miss; a second caller is told to wait */
    assert_int_equal(ks_get_code(C, "session", key), SG_NOT_FOUND);
    uint32_t hint = 0;
    struct sg_client *c2 = h_connect(&H, 0, H_CERT_NONE);
    assert_non_null(c2);
    {
        /* The server waits for the holder inside the 300 ms deadline, then
         * hands out a hint of 1-100 ms; if the deadline ended the wait (a
         * loaded machine fires timers late) the hint is 0 and the message
         * says so (PROTOCOL.md section 5). */
        struct sg_request *r = sg_request_new(SG_OP_GET_OR_LEASE);
        sg_request_keyspace(r, "session");
        sg_request_add_key(r, key, strlen(key));
        sg_request_deadline(r, 300);
        struct sg_response *resp = h_call(c2, r);
        assert_int_equal(resp->code, SG_LEASE_WAIT);
        hint = resp->retry_after_ms;
        assert_true(hint <= 100);
        if (hint == 0 && strstr(resp->message, "deadline") == NULL)
            fail_msg("LEASE_WAIT with hint 0 but message '%s'", resp->message);
        sg_response_free(resp);
    }
    /* foreign tokens: the old one, a made-up one, the right one altered */
    assert_int_equal(set_with_lease(c2, key, "foreign", tok), SG_LEASE_INVALID);
    assert_int_equal(set_with_lease(c2, key, "foreign", "0123456789abcdef0123456789abcdef"),
                     SG_LEASE_INVALID);
    char altered[128];
    snprintf(altered, sizeof(altered), "%s", tok2);
    altered[0] = altered[0] == 'a' ? 'b' : 'a';
    assert_int_equal(set_with_lease(c2, key, "foreign", altered), SG_LEASE_INVALID);
    assert_int_equal(ks_get_code(C, "session", key), SG_NOT_FOUND);
    /* the holder fills */
    assert_int_equal(set_with_lease(C, key, "filled", tok2), SG_OK);
    ks_expect(c2, "session", key, strlen(key), "filled", 6);
    /* a used lease is gone: filling again is refused, the value stays */
    assert_int_equal(set_with_lease(C, key, "again", tok2), SG_LEASE_INVALID);
    ks_expect(C, "session", key, strlen(key), "filled", 6);
    /* a hit now returns the value, no lease */
    assert_int_equal(get_or_lease(c2, key, 0, 0, tok, sizeof(tok), NULL), SG_OK);
    assert_int_equal(strlen(tok), 0);
    sg_client_free(c2);
}

/* ---- 5. versioned writes ------------------------------------------------------------------ */

#define VER_THREADS 2
#define VER_SUCCESSES 50
#define VER_MAX (VER_THREADS * VER_SUCCESSES + 1)
#define VER_READS 20000

static char ver_written[VER_MAX + 1][32]; /* value written with version v */

struct versioner {
    pthread_t th;
    int t;
    struct sg_client *c;
    const char *key;
    int successes, conflicts;
    int n_reads;
    uint64_t *read_ver;
    char (*read_val)[32];
    char problem[256];
};

static void *versioner_main(void *arg)
{
    struct versioner *V = arg;
    int64_t deadline = h_now_ms() + 60000;
    int counter = 0;
    while (V->successes < VER_SUCCESSES && h_now_ms() < deadline) {
        struct sg_request *r = sg_request_new(SG_OP_GET_VERSIONED);
        sg_request_add_key(r, V->key, strlen(V->key));
        struct sg_response *resp = NULL;
        int rc = hc_call(V->c, r, &resp);
        sg_request_free(r);
        if (!resp || (rc != SG_OK && rc != SG_NOT_FOUND)) {
            snprintf(V->problem, sizeof(V->problem), "GET_VERSIONED answered %s", sg_code_name(rc));
            sg_response_free(resp);
            return NULL;
        }
        uint64_t ver = rc == SG_OK ? resp->version : 0;
        if (rc == SG_OK && V->n_reads < VER_READS) {
            V->read_ver[V->n_reads] = ver;
            snprintf(V->read_val[V->n_reads], 32, "%.*s", (int)resp->value_len,
                     (const char *)resp->value);
            V->n_reads++;
        }
        sg_response_free(resp);

        char v[32];
        int n = snprintf(v, sizeof(v), "t%d-%d", V->t, ++counter);
        r = sg_request_new(SG_OP_SET_VERSIONED);
        sg_request_add_key(r, V->key, strlen(V->key));
        sg_request_add_value(r, v, (size_t)n);
        sg_request_version(r, ver);
        rc = hc_call(V->c, r, &resp);
        sg_request_free(r);
        if (rc == SG_OK) {
            if (resp->version != ver + 1 || ver + 1 > VER_MAX) {
                snprintf(V->problem, sizeof(V->problem),
                         "SET_VERSIONED(expected %llu) OK with version %llu",
                         (unsigned long long)ver, (unsigned long long)resp->version);
                sg_response_free(resp);
                return NULL;
            }
            snprintf(ver_written[ver + 1], 32, "%s", v);
            V->successes++;
        } else if (rc == SG_VERSION_CONFLICT) {
            if (resp->version <= ver) {
                snprintf(V->problem, sizeof(V->problem),
                         "VERSION_CONFLICT(expected %llu) reports version %llu",
                         (unsigned long long)ver, (unsigned long long)resp->version);
                sg_response_free(resp);
                return NULL;
            }
            V->conflicts++;
        } else {
            snprintf(V->problem, sizeof(V->problem), "SET_VERSIONED answered %s", sg_code_name(rc));
            sg_response_free(resp);
            return NULL;
        }
        sg_response_free(resp);
    }
    if (V->successes < VER_SUCCESSES && !V->problem[0])
        snprintf(V->problem, sizeof(V->problem), "thread %d: only %d successes in 60 s", V->t,
                 V->successes);
    return NULL;
}

static void test_versioned_writers(void **state)
{
    const char *key = "ver:contended";
    hc_del(C, "", key, strlen(key));
    memset(ver_written, 0, sizeof(ver_written));
    struct versioner V[VER_THREADS];
    memset(V, 0, sizeof(V));
    for (int t = 0; t < VER_THREADS; t++) {
        V[t].t = t;
        V[t].key = key;
        V[t].c = h_connect(&H, 0, H_CERT_NONE);
        assert_non_null(V[t].c);
        V[t].read_ver = calloc(VER_READS, sizeof(uint64_t));
        V[t].read_val = calloc(VER_READS, 32);
    }
    for (int t = 0; t < VER_THREADS; t++)
        assert_int_equal(pthread_create(&V[t].th, NULL, versioner_main, &V[t]), 0);
    for (int t = 0; t < VER_THREADS; t++)
        pthread_join(V[t].th, NULL);
    int total = 0, conflicts = 0;
    const char *first = NULL;
    for (int t = 0; t < VER_THREADS; t++) {
        total += V[t].successes;
        conflicts += V[t].conflicts;
        if (!first && V[t].problem[0])
            first = V[t].problem;
    }
    h_log("versioned: %d successes, %d conflicts", total, conflicts);
    /* every value read carried the version it was written with */
    long mismatched = 0;
    char example[160] = "";
    for (int t = 0; t < VER_THREADS && !first; t++)
        for (int i = 0; i < V[t].n_reads; i++) {
            uint64_t ver = V[t].read_ver[i];
            if (ver == 0 || ver > VER_MAX || strcmp(ver_written[ver], V[t].read_val[i]) != 0) {
                if (!mismatched++)
                    snprintf(example, sizeof(example),
                             "read \"%.40s\" at version %llu (written: \"%.40s\")",
                             V[t].read_val[i], (unsigned long long)ver,
                             ver <= VER_MAX ? ver_written[ver] : "?");
            }
        }
    for (int t = 0; t < VER_THREADS; t++) {
        sg_client_free(V[t].c);
        free(V[t].read_ver);
        free(V[t].read_val);
    }
    if (first)
        fail_msg("%s", first);
    if (mismatched)
        fail_msg("%ld reads disagree with the writes: %s", mismatched, example);
    assert_int_equal(total, VER_THREADS * VER_SUCCESSES);

    struct sg_response *resp = ks_call(C, SG_OP_GET_VERSIONED, "", key, strlen(key), NULL, 0);
    assert_int_equal(resp->code, SG_OK);
    assert_int_equal(resp->version, (uint64_t)total);
    const char *last = ver_written[total];
    assert_int_equal(resp->value_len, strlen(last));
    assert_memory_equal(resp->value, last, resp->value_len);
    sg_response_free(resp);
    /* a plain GET returns the value without the version header */
    ks_expect(C, "", key, strlen(key), last, strlen(last));
}

/* Two writers with the same expected version, sent at the same time. */
static void test_versioned_race(void **state)
{
    const char *key = "ver:race";
    hc_del(C, "", key, strlen(key));
    struct sg_client *c[2] = {h_connect(&H, 0, H_CERT_NONE), h_connect(&H, 0, H_CERT_NONE)};
    assert_non_null(c[0]);
    assert_non_null(c[1]);
    const int rounds = 20;
    for (int round = 0; round < rounds; round++) {
        struct sg_response *g =
            ks_call(c[round % 2], SG_OP_GET_VERSIONED, "", key, strlen(key), NULL, 0);
        uint64_t ver = g->code == SG_OK ? g->version : 0;
        assert_int_equal(ver, (uint64_t)round);
        sg_response_free(g);
        for (int w = 0; w < 2; w++) {
            char v[32];
            int n = snprintf(v, sizeof(v), "race-%d-w%d", round, w);
            struct sg_request *r = sg_request_new(SG_OP_SET_VERSIONED);
            sg_request_add_key(r, key, strlen(key));
            sg_request_add_value(r, v, (size_t)n);
            sg_request_version(r, ver);
            assert_int_equal(hc_send(c[w], r, 5000 + (uint64_t)round), 0);
            sg_request_free(r);
        }
        int ok = 0, conflict = 0, winner = -1;
        for (int w = 0; w < 2; w++) {
            struct sg_response *resp = NULL;
            if (hc_recv(c[w], &resp) != 0)
                fail_msg("recv: %s", c[w]->errstr);
            assert_int_equal(resp->id, 5000 + (uint64_t)round);
            if (resp->code == SG_OK) {
                ok++;
                winner = w;
            } else if (resp->code == SG_VERSION_CONFLICT) {
                conflict++;
            } else {
                fail_msg("round %d: SET_VERSIONED answered %s", round, sg_code_name(resp->code));
            }
            assert_int_equal(resp->version, ver + 1);
            sg_response_free(resp);
        }
        if (ok != 1 || conflict != 1)
            fail_msg("round %d: %d writers won, %d lost (expected exactly one each)", round, ok,
                     conflict);
        char v[32];
        snprintf(v, sizeof(v), "race-%d-w%d", round, winner);
        ks_expect(C, "", key, strlen(key), v, strlen(v));
    }
    sg_client_free(c[0]);
    sg_client_free(c[1]);
}

/* ---- 6. reload and drain --------------------------------------------------------------- */

static void test_reload(void **state)
{
    int p = h_proxy_start(&H, 0);
    assert_true(p > 0);
    struct sg_client *c = h_connect(&H, p, H_CERT_NONE);
    assert_non_null(c);
    assert_int_equal(sg_client_limits(c)->max_key_bytes, 1024);
    char longkey[101];
    memset(longkey, 'L', 100);
    longkey[100] = 0;
    assert_int_equal(hc_set(c, "", longkey, 100, "long", 4, 0, SG_COND_NONE), SG_OK);

    /* smaller max_key_bytes, then SIGHUP */
    const char *saved = H.opts.limits_yaml;
    H.opts.limits_yaml = "  max_key_bytes: 64";
    int wrc = h_proxy_write_config(&H, p);
    H.opts.limits_yaml = saved;
    assert_int_equal(wrc, 0);
    int reloaded_before = h_count_lines(H.proxies[p].log, "reloaded ");
    assert_int_equal(h_proxy_signal(&H, p, SIGHUP), 0);
    int64_t deadline = h_now_ms() + 10000;
    int rc = SG_OK;
    while (h_now_ms() < deadline) {
        void *v = NULL;
        size_t vl = 0;
        rc = hc_get(c, "", longkey, 100, &v, &vl);
        free(v);
        if (rc != SG_OK)
            break;
        h_poll_pause();
    }
    if (rc != SG_KEY_TOO_LARGE)
        fail_msg("after SIGHUP a 100-byte key still answers %s (limit now 64)", sg_code_name(rc));
    /* main logs the reload right after posting it to the workers: the
     * line may trail the first answer under the new limit by a moment */
    assert_int_equal(h_wait_lines(H.proxies[p].log, "reloaded ", reloaded_before + 1, 5000), 0);
    /* the existing connection works with keys within the new limit */
    assert_int_equal(h_check_set_get(c, "reload"), 0);
    assert_int_equal(hc_ping(c), SG_OK);
    /* a new connection is told the new limit */
    struct sg_client *c2 = h_connect(&H, p, H_CERT_NONE);
    assert_non_null(c2);
    assert_int_equal(sg_client_limits(c2)->max_key_bytes, 64);
    assert_int_equal(hc_set(c2, "", longkey, 100, "x", 1, 0, SG_COND_NONE), SG_KEY_TOO_LARGE);
    sg_client_free(c2);

    /* an invalid file is refused and the running config stays */
    int refused_before = h_count_lines(H.proxies[p].log, "reload refused");
    FILE *f = fopen(H.proxies[p].config, "w");
    assert_non_null(f);
    fprintf(f, "limits:\n  max_key_bytes: not-a-number\nredis:\n  seeds: []\n");
    fclose(f);
    assert_int_equal(h_proxy_signal(&H, p, SIGHUP), 0);
    assert_int_equal(h_wait_lines(H.proxies[p].log, "reload refused", refused_before + 1, 10000),
                     0);
    assert_true(h_proxy_alive(&H, p));
    assert_int_equal(ks_get_code(c, "", longkey), SG_KEY_TOO_LARGE);
    c2 = h_connect(&H, p, H_CERT_NONE);
    assert_non_null(c2);
    assert_int_equal(sg_client_limits(c2)->max_key_bytes, 64);
    assert_int_equal(h_check_set_get(c2, "after-bad-reload"), 0);
    sg_client_free(c2);
    sg_client_free(c);
    /* leave a valid file behind */
    assert_int_equal(h_proxy_write_config(&H, p), 0);
}

#define DRAIN_GETS 100
#define DRAIN_LEASES 50
#define DRAIN_IDLE 4

/* What the draining connection has been answered so far. */
struct drain_state {
    uint8_t gets_seen[DRAIN_GETS], leases_seen[DRAIN_LEASES];
    int n_gets, n_leases, lease_ok, pong;
    char problem[256];
};

static void drain_problem(struct drain_state *d, const char *fmt, ...)
{
    if (d->problem[0])
        return;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(d->problem, sizeof(d->problem), fmt, ap);
    va_end(ap);
}

/* Read one message: 0 a response, 1 a ConnectionError, -1 an I/O error. */
static int drain_recv_one(struct sg_client *cb, struct drain_state *d)
{
    struct sg_response *resp = NULL;
    if (hc_recv(cb, &resp) != 0)
        return -1;
    int ret = 0;
    uint64_t id = resp->id;
    if (id == 0) {
        ret = 1;
        if (resp->code != SG_SHUTTING_DOWN)
            drain_problem(d, "ConnectionError %s", sg_code_name(resp->code));
    } else if (id == 9999) {
        d->pong++;
    } else if (id >= 2000 && id < 2000 + DRAIN_LEASES) {
        if (d->leases_seen[id - 2000]++)
            drain_problem(d, "lease id %llu answered twice", (unsigned long long)id);
        d->n_leases++;
        if (resp->code == SG_OK && resp->value_len == 12 &&
            memcmp(resp->value, "drain-filled", 12) == 0)
            d->lease_ok++;
        else if (resp->code != SG_LEASE_WAIT)
            drain_problem(d, "GET_OR_LEASE answered %s", sg_code_name(resp->code));
    } else if (id >= 1000 && id < 1000 + DRAIN_GETS) {
        int gi = (int)(id - 1000);
        char ev[64];
        snprintf(ev, sizeof(ev), "drain-value-%d", gi);
        if (d->gets_seen[gi]++)
            drain_problem(d, "GET id %llu answered twice", (unsigned long long)id);
        d->n_gets++;
        if (resp->code != SG_OK || resp->value_len != strlen(ev) ||
            memcmp(resp->value, ev, strlen(ev)) != 0)
            drain_problem(d, "GET drain:k%d answered %s", gi, sg_code_name(resp->code));
    } else {
        drain_problem(d, "unknown id %llu", (unsigned long long)id);
    }
    sg_response_free(resp);
    return ret;
}

static void test_drain(void **state)
{
    /* Lease waits poll with backoff 100, 200, ... 3200 ms inside the proxy
     * before answering LEASE_WAIT: requests that stay in flight until the
     * test fills the lease. */
    const char *saved = H.opts.redis_yaml;
    H.opts.redis_yaml = "  retry_backoff_ms: 100";
    int p = h_proxy_start(&H, 0);
    H.opts.redis_yaml = saved;
    assert_true(p > 0);

    char k[64], v[64];
    for (int i = 0; i < DRAIN_GETS; i++) {
        snprintf(k, sizeof(k), "drain:k%d", i);
        snprintf(v, sizeof(v), "drain-value-%d", i);
        assert_int_equal(hc_set(C, "", k, strlen(k), v, strlen(v), 0, SG_COND_NONE), SG_OK);
    }
    const char *lk = "drain:lease";
    hc_del(C, "session", lk, strlen(lk));
    char tok[128];
    assert_int_equal(get_or_lease(C, lk, 0, 0, tok, sizeof(tok), NULL), SG_LEASE_GRANTED);

    struct sg_client *idle[DRAIN_IDLE];
    for (int i = 0; i < DRAIN_IDLE; i++) {
        idle[i] = h_connect(&H, p, H_CERT_NONE);
        assert_non_null(idle[i]);
        assert_int_equal(hc_ping(idle[i]), SG_OK);
    }
    struct sg_client *cb = h_connect(&H, p, H_CERT_NONE);
    assert_non_null(cb);
    int g = 0;
    for (int i = 0; i < DRAIN_GETS + DRAIN_LEASES; i++) {
        struct sg_request *r;
        uint64_t tid;
        if (i % 3 == 1 && i / 3 < DRAIN_LEASES) {
            tid = 2000 + (uint64_t)(i / 3);
            r = sg_request_new(SG_OP_GET_OR_LEASE);
            sg_request_keyspace(r, "session");
            sg_request_add_key(r, lk, strlen(lk));
            sg_request_deadline(r, 10000);
        } else {
            snprintf(k, sizeof(k), "drain:k%d", g);
            tid = 1000 + (uint64_t)g++;
            r = sg_request_new(SG_OP_GET);
            sg_request_add_key(r, k, strlen(k));
        }
        assert_int_equal(hc_send(cb, r, tid), 0);
        sg_request_free(r);
    }
    /* a fence: once PING is answered, every request before it has been read */
    struct sg_request *ping = sg_request_new(SG_OP_PING);
    assert_int_equal(hc_send(cb, ping, 9999), 0);
    sg_request_free(ping);

    struct drain_state d;
    memset(&d, 0, sizeof(d));
    while (!d.pong) {
        int rr = drain_recv_one(cb, &d);
        if (rr != 0)
            fail_msg("before SIGTERM: %s", rr < 0 ? cb->errstr : "ConnectionError");
    }
    int leases_before = d.n_leases;

    h_log("SIGTERM proxy %d with %d lease requests in flight", p, DRAIN_LEASES - d.n_leases);
    assert_int_equal(h_proxy_signal(&H, p, SIGTERM), 0);
    /* idle connections are told at once */
    for (int i = 0; i < DRAIN_IDLE; i++) {
        struct sg_response *resp = NULL;
        if (hc_recv(idle[i], &resp) != 0)
            fail_msg("idle connection %d: %s", i, idle[i]->errstr);
        assert_int_equal(resp->id, 0);
        assert_int_equal(resp->code, SG_SHUTTING_DOWN);
        sg_response_free(resp);
        sg_client_free(idle[i]);
    }
    /* the proxy is draining: now let the lease waiters finish */
    assert_int_equal(set_with_lease(C, lk, "drain-filled", tok), SG_OK);

    int rr;
    while ((rr = drain_recv_one(cb, &d)) == 0)
        ;
    if (rr < 0)
        fail_msg("connection ended without SHUTTING_DOWN: %s (%d GETs, %d leases answered)",
                 cb->errstr, d.n_gets, d.n_leases);
    h_log("drain: %d GETs and %d lease requests answered (%d after SIGTERM, %d with the value "
          "filled during the drain), then SHUTTING_DOWN",
          d.n_gets, d.n_leases, d.n_leases - leases_before, d.lease_ok);
    if (d.problem[0])
        fail_msg("%s", d.problem);
    assert_int_equal(d.n_gets, DRAIN_GETS);
    assert_int_equal(d.n_leases, DRAIN_LEASES);
    assert_int_equal(d.pong, 1);
    /* the fill happened after the drain began: these were in flight during it */
    assert_true(d.lease_ok > 0);
    /* nothing after the ConnectionError: the connection is closed */
    struct sg_response *after = NULL;
    assert_int_not_equal(hc_recv(cb, &after), 0);
    sg_response_free(after);
    sg_client_free(cb);
    assert_int_equal(h_proxy_wait_exit(&H, p, 15000), 0);
    /* the other proxy is unaffected */
    assert_int_equal(h_check_set_get(C, "after-drain"), 0);
}

/* ---- scripts: EVALSHA, and EVAL when a node does not have the script ------------------- */

/* calls=N of cmdstat_<cmd> in port's INFO commandstats (0 when never called). */
static long long node_calls(int port, const char *cmd)
{
    redisReply *r = h_redis_cmd(port, "INFO commandstats");
    assert_non_null(r);
    assert_int_equal(r->type, REDIS_REPLY_STRING);
    char needle[64];
    snprintf(needle, sizeof(needle), "cmdstat_%s:calls=", cmd);
    const char *p = strstr(r->str, needle);
    long long n = p ? strtoll(p + strlen(needle), NULL, 10) : 0;
    freeReplyObject(r);
    return n;
}

/*
 * Script ops go by EVALSHA; a node that has not cached a script (here:
 * SCRIPT FLUSH on every master) answers NOSCRIPT, and the proxy sends that
 * sub-op again with EVAL, which caches it: the client sees no difference,
 * and the next call is an EVALSHA again.
 */
static void test_scripts_flushed(void **state)
{
    int masters[16];
    int n = h_masters(&H, masters, 16);
    assert_true(n > 0);
    for (int i = 0; i < n; i++) {
        redisReply *r = h_redis_cmd(masters[i], "SCRIPT FLUSH");
        assert_non_null(r);
        freeReplyObject(r);
    }
    char fk[256];
    size_t fkl = full_key("session", "{scripts}a", 10, fk, sizeof(fk));
    int owner = h_key_owner(&H, fk, fkl);
    assert_true(owner > 0);
    long long eval0 = node_calls(owner, "eval"), sha0 = node_calls(owner, "evalsha");

    char tok[128];
    assert_int_equal(get_or_lease(C, "{scripts}a", 0, 0, tok, sizeof(tok), NULL), SG_LEASE_GRANTED);
    assert_int_equal(set_with_lease(C, "{scripts}a", "filled", tok), SG_OK);
    ks_expect(C, "session", "{scripts}a", 10, "filled", 6);
    /* The first GET_OR_LEASE and SET_WITH_LEASE each met NOSCRIPT once. */
    assert_int_equal(node_calls(owner, "eval") - eval0, 2);
    assert_true(node_calls(owner, "evalsha") - sha0 >= 2);

    long long eval1 = node_calls(owner, "eval"), sha1 = node_calls(owner, "evalsha");
    assert_int_equal(get_or_lease(C, "{scripts}b", 0, 0, tok, sizeof(tok), NULL), SG_LEASE_GRANTED);
    assert_int_equal(set_with_lease(C, "{scripts}b", "again", tok), SG_OK);
    ks_expect(C, "session", "{scripts}b", 10, "again", 5);
    assert_int_equal(node_calls(owner, "eval"), eval1); /* cached now: no EVAL */
    assert_int_equal(node_calls(owner, "evalsha") - sha1, 2);

    /* INVALIDATE's page script, flushed too, on every master it scans. */
    int code = 0;
    assert_int_equal(invalidate("session", "{scripts}*", &code), 2);
    assert_int_equal(code, SG_OK);
    assert_int_equal(ks_get_code(C, "session", "{scripts}a"), SG_NOT_FOUND);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_keyspace_ttls),
        cmocka_unit_test(test_envelope),
        cmocka_unit_test(test_corrupt_envelope),
        cmocka_unit_test(test_invalidate),
        cmocka_unit_test(test_lease_stampede),
        cmocka_unit_test(test_lease_stale_and_foreign),
        cmocka_unit_test(test_versioned_writers),
        cmocka_unit_test(test_versioned_race),
        cmocka_unit_test(test_scripts_flushed),
        cmocka_unit_test(test_reload),
        cmocka_unit_test(test_drain),
    };
    int failed = cmocka_run_group_tests_name("itest_domain", tests, group_setup, group_teardown);
    failed += h_stop_failed;
    if (failed)
        h_env_dump_logs(&H, 80);
    return failed ? 1 : 0;
}
