/*
 * test_fastpb - the hand-written hot codec (proxy/fastpb.c) against
 * protobuf-c: every golden vector (proto/testdata/vectors.json), thousands
 * of random hot requests and responses from a seeded generator, and
 * hand-made malformed or unusual frames. Decoding must agree with
 * protobuf-c whenever fastpb accepts, and must accept the hot requests;
 * encoding must give protobuf-c's bytes exactly.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>
#include <jansson.h>

#include "fastpb.h"
#include "fastpb_equal.h"
#include "frame.h"
#include "pbjson.h"

/* --- helpers ------------------------------------------------------------- */

enum verdict { BOTH_REJECT, FAST_DECLINES, FAST_AGREES };

/*
 * The body with the bytes of its first value left out, as the session
 * holds a large SET (sg_fastpb_find_value over the first head bytes, then
 * sg_fastpb_decode_client_gap): taken exactly when the whole body is
 * (fast, NULL when declined), and then the same message but for that
 * value's data, which is NULL. 1 if a gap was found and decoded.
 */
static size_t g_gaps; /* gapped decodes that were taken and checked */

static int gap_both(const uint8_t *body, size_t len, size_t head,
                    const Slotgate__V1__ClientMessage *fast, const char *name)
{
    char why[128];
    size_t at = 0, vlen = 0;
    if (head > len)
        head = len;
    if (sg_fastpb_find_value(body, head, len, &at, &vlen) != 0 || vlen == 0)
        return 0;
    if (at > head || at + vlen > len)
        fail_msg("%s: value at %zu+%zu outside the body (%zu) or after head", name, at, vlen, len);
    uint8_t *g = malloc(len - vlen + 1);
    assert_non_null(g);
    memcpy(g, body, at);
    memcpy(g + at, body + at + vlen, len - at - vlen);
    long live = fpe_live;
    Slotgate__V1__ClientMessage *gm =
        sg_fastpb_decode_client_gap(g, len - vlen, at, vlen, &fpe_counting);
    if ((gm != NULL) != (fast != NULL))
        fail_msg("%s: the gapped body is %s, the whole one %s", name, gm ? "taken" : "declined",
                 fast ? "taken" : "declined");
    if (gm == NULL) {
        if (fpe_live != live)
            fail_msg("%s: the gapped decode declined but left allocations", name);
        free(g);
        return 0;
    }
    ProtobufCBinaryData *v = &gm->request->values[0];
    if (gm->request->n_values == 0 || v->data != NULL || v->len != vlen ||
        memcmp(fast->request->values[0].data, body + at, vlen) != 0)
        fail_msg("%s: the gap is not the first value (%zu bytes at %zu)", name, vlen, at);
    v->data = fast->request->values[0].data;
    if (!fpe_client_equal(gm, fast, why, sizeof(why)))
        fail_msg("%s: gapped and whole decodes disagree: %s", name, why);
    v->data = NULL;
    sg_frame_free_client(gm, &fpe_counting);
    if (fpe_live != live)
        fail_msg("%s: the gapped decode left allocations", name);
    free(g);
    g_gaps++;
    return 1;
}

/*
 * Decode body both ways. Fails the test when fastpb accepts what protobuf-c
 * rejects, when the contents differ, or when a decline leaves allocations.
 * The gapped decode of the same body is checked too (gap_both).
 */
static enum verdict decode_both(const uint8_t *body, size_t len, const char *name)
{
    char why[128];
    fpe_live = 0;
    Slotgate__V1__ClientMessage *fast = sg_fastpb_decode_client(body, len, &fpe_counting);
    Slotgate__V1__ClientMessage *ref = sg_frame_decode_client(body, len, NULL);
    enum verdict v;
    if (fast == NULL) {
        if (fpe_live != 0)
            fail_msg("%s: fastpb declined but left %ld allocations", name, fpe_live);
        gap_both(body, len, len, NULL, name);
        v = ref == NULL ? BOTH_REJECT : FAST_DECLINES;
    } else {
        if (ref == NULL)
            fail_msg("%s: fastpb accepts what protobuf-c rejects", name);
        if (!fpe_client_equal(fast, ref, why, sizeof(why)))
            fail_msg("%s: fastpb and protobuf-c disagree: %s", name, why);
        gap_both(body, len, 256, fast, name);
        gap_both(body, len, len, fast, name);
        sg_frame_free_client(fast, &fpe_counting);
        if (fpe_live != 0)
            fail_msg("%s: %ld allocations not reachable by free_unpacked", name, fpe_live);
        v = FAST_AGREES;
    }
    sg_frame_free_client(ref, NULL);
    return v;
}

/* Encode m both ways; fails unless fastpb writes it and the bytes match. */
static void encode_both(const Slotgate__V1__ServerMessage *m, const char *name)
{
    size_t size = sg_frame_server_size(m), fast = sg_fastpb_server_size(m);
    if (fast != size)
        fail_msg("%s: fastpb size %zu, protobuf-c %zu", name, fast, size);
    uint8_t *a = malloc(size), *b = malloc(size);
    assert_true(a != NULL && b != NULL);
    assert_int_equal(sg_frame_encode_server(m, a), size);
    assert_int_equal(sg_fastpb_encode_server(m, b, size), size);
    if (memcmp(a, b, size) != 0)
        fail_msg("%s: fastpb's bytes differ from protobuf-c's", name);
    /* Without the value's bytes, then the value put in the gap: the same. */
    size_t vlen = m->response->value.len, gap = 0;
    memset(b, 0xa5, size);
    assert_int_equal(sg_fastpb_encode_server_gap(m, b, size, &gap), size - vlen);
    assert_true(gap <= size - vlen);
    if (vlen == 0)
        assert_int_equal(gap, 0);
    memmove(b + gap + vlen, b + gap, size - vlen - gap);
    if (vlen > 0)
        memcpy(b + gap, m->response->value.data, vlen);
    if (memcmp(a, b, size) != 0)
        fail_msg("%s: fastpb's frame with the value put in its gap differs", name);
    free(a);
    free(b);
}

static int is_hot(int op)
{
    return op == SLOTGATE__V1__OP__OP_GET || op == SLOTGATE__V1__OP__OP_SET ||
           op == SLOTGATE__V1__OP__OP_DELETE || op == SLOTGATE__V1__OP__OP_MGET ||
           op == SLOTGATE__V1__OP__OP_MSET;
}

/* --- golden vectors -------------------------------------------------------- */

static void test_vectors(void **state)
{
    json_error_t e;
    json_t *root = json_load_file(SG_VECTORS_JSON, 0, &e);
    const char *lists[] = {"encode", "decode"};
    size_t fast_requests = 0, fast_responses = 0;

    (void)state;
    assert_non_null(root);
    for (size_t l = 0; l < 2; l++) {
        const json_t *arr = json_object_get(root, lists[l]), *c;
        size_t i;
        json_array_foreach(arr, i, c)
        {
            const char *name = json_string_value(json_object_get(c, "name"));
            const char *type = json_string_value(json_object_get(c, "type"));
            const char *hex = json_string_value(json_object_get(c, "frame"));
            const json_t *j = json_object_get(c, "json");
            uint8_t *frame;
            size_t len;
            assert_true(name && type && hex);
            assert_int_equal(pbjson_hex(hex, &frame, &len), 0);
            assert_true(len >= 4);
            if (strcmp(type, "ClientMessage") == 0) {
                enum verdict v = decode_both(frame + 4, len - 4, name);
                Slotgate__V1__ClientMessage *ref = sg_frame_decode_client(frame + 4, len - 4, NULL);
                assert_non_null(ref);
                /* A hot request without unknown fields must take the fast path. */
                if (ref->msg_case == SLOTGATE__V1__CLIENT_MESSAGE__MSG_REQUEST &&
                    is_hot(ref->request->op) && ref->request->base.n_unknown_fields == 0 &&
                    v != FAST_AGREES)
                    fail_msg("%s: a hot request that fastpb declines", name);
                if (v == FAST_AGREES) {
                    char err[256];
                    Slotgate__V1__ClientMessage *fast =
                        sg_fastpb_decode_client(frame + 4, len - 4, NULL);
                    if (pbjson_equal(&fast->base, j, err, sizeof(err)) < 0)
                        fail_msg("%s: fastpb against the JSON: %s", name, err);
                    sg_frame_free_client(fast, NULL);
                    fast_requests++;
                }
                sg_frame_free_client(ref, NULL);
            } else {
                Slotgate__V1__ServerMessage *m =
                    slotgate__v1__server_message__unpack(NULL, len - 4, frame + 4);
                assert_non_null(m);
                if (sg_fastpb_server_size(m) != 0) {
                    encode_both(m, name);
                    fast_responses++;
                    if (json_is_true(json_object_get(c, "canonical"))) {
                        uint8_t *out = malloc(len);
                        assert_non_null(out);
                        sg_fastpb_encode_server(m, out, len);
                        if (memcmp(out, frame, len) != 0)
                            fail_msg("%s: fastpb's bytes differ from the vector", name);
                        free(out);
                    }
                } else if (m->msg_case == SLOTGATE__V1__SERVER_MESSAGE__MSG_RESPONSE &&
                           m->response->n_stats == 0 && m->base.n_unknown_fields == 0 &&
                           m->response->base.n_unknown_fields == 0 &&
                           strstr(name, "unknown") == NULL) {
                    fail_msg("%s: a plain Response that fastpb does not write", name);
                }
                slotgate__v1__server_message__free_unpacked(m, NULL);
            }
            free(frame);
        }
    }
    json_decref(root);
    print_message("fast path: %zu request vectors, %zu response vectors\n", fast_requests,
                  fast_responses);
    assert_true(fast_requests >= 10);
    assert_true(fast_responses >= 30);
}

/* --- random messages ------------------------------------------------------- */

static uint64_t g_rng;

static uint64_t rnd(void)
{
    g_rng ^= g_rng << 13;
    g_rng ^= g_rng >> 7;
    g_rng ^= g_rng << 17;
    return g_rng;
}

static uint64_t rnd_below(uint64_t n)
{
    return n ? rnd() % n : 0;
}

/* A value of varied magnitude: 0, small, every varint length, the extremes. */
static uint64_t rnd_u64(void)
{
    switch (rnd_below(6)) {
    case 0:
        return 0;
    case 1:
        return rnd_below(128);
    case 2:
        return UINT64_MAX - rnd_below(3);
    default:
        return rnd() >> rnd_below(64);
    }
}

static uint8_t g_pool[1 << 16]; /* bytes for keys and values */

static ProtobufCBinaryData rnd_bytes(size_t max)
{
    ProtobufCBinaryData b = {rnd_below(max + 1), NULL};
    b.data = g_pool + rnd_below(sizeof(g_pool) - b.len);
    return b;
}

static const int g_hot_ops[] = {SLOTGATE__V1__OP__OP_GET, SLOTGATE__V1__OP__OP_SET,
                                SLOTGATE__V1__OP__OP_DELETE, SLOTGATE__V1__OP__OP_MGET,
                                SLOTGATE__V1__OP__OP_MSET};

/* Pack a random hot request with protobuf-c; caller frees. */
static uint8_t *rnd_request_frame(size_t *len)
{
    Slotgate__V1__ClientMessage m = SLOTGATE__V1__CLIENT_MESSAGE__INIT;
    Slotgate__V1__Request rq = SLOTGATE__V1__REQUEST__INIT;
    ProtobufCBinaryData keys[40], values[40];
    uint64_t ttls[40];
    char ks[20];

    rq.id = rnd_u64();
    rq.op = g_hot_ops[rnd_below(5)];
    if (rnd_below(2)) {
        size_t n = rnd_below(sizeof(ks));
        for (size_t i = 0; i < n; i++)
            ks[i] = (char)('a' + rnd_below(26));
        ks[n] = '\0';
        rq.keyspace = ks;
    }
    rq.n_keys = rnd_below(4) ? 1 + rnd_below(3) : rnd_below(41);
    for (size_t i = 0; i < rq.n_keys; i++)
        keys[i] = rnd_bytes(rnd_below(4) ? 32 : 300);
    rq.keys = keys;
    rq.n_values = rnd_below(2) ? rq.n_keys : rnd_below(3);
    for (size_t i = 0; i < rq.n_values; i++)
        values[i] = rnd_bytes(rnd_below(8) ? 100 : 20000);
    rq.values = values;
    rq.n_ttls_ms = rnd_below(3) ? 0 : rnd_below(41);
    for (size_t i = 0; i < rq.n_ttls_ms; i++)
        ttls[i] = rnd_u64();
    rq.ttls_ms = ttls;
    rq.ttl_ms = rnd_u64();
    rq.condition = (Slotgate__V1__Condition)rnd_below(4);
    rq.deadline_ms = (uint32_t)rnd_u64();
    rq.version = rnd_u64();
    if (rnd_below(5) == 0)
        rq.pattern = rnd_bytes(16);
    if (rnd_below(5) == 0)
        rq.lease = rnd_bytes(16);
    m.msg_case = SLOTGATE__V1__CLIENT_MESSAGE__MSG_REQUEST;
    m.request = &rq;
    *len = slotgate__v1__client_message__get_packed_size(&m);
    uint8_t *buf = malloc(*len);
    assert_non_null(buf);
    assert_int_equal(slotgate__v1__client_message__pack(&m, buf), *len);
    return buf;
}

/* Random hot requests: fastpb takes every one; its mutations all agree. */
static void test_random_requests(void **state)
{
    size_t fast = 0, mutated_fast = 0, mutants = 0;
    (void)state;
    g_rng = 0x5eed5eed12345ull;
    for (size_t i = 0; i < sizeof(g_pool); i++)
        g_pool[i] = (uint8_t)rnd();
    for (int n = 0; n < 5000; n++) {
        size_t len;
        uint8_t *frame = rnd_request_frame(&len);
        if (decode_both(frame, len, "random request") != FAST_AGREES)
            fail_msg("random request %d: fastpb declines a canonical hot request", n);
        fast++;
        /* Mutations: a flipped byte, a cut, a repeated tail. */
        for (int k = 0; k < 4; k++) {
            uint8_t *b = malloc(len * 2 + 1);
            size_t blen = len;
            assert_non_null(b);
            memcpy(b, frame, len);
            switch (k) {
            case 0:
                b[rnd_below(len)] ^= (uint8_t)(1u << rnd_below(8));
                break;
            case 1:
                b[rnd_below(len)] = (uint8_t)rnd();
                break;
            case 2:
                blen = rnd_below(len);
                break;
            default: {
                size_t from = rnd_below(len);
                memcpy(b + len, frame + from, len - from);
                blen = len + (len - from);
                break;
            }
            }
            mutants++;
            mutated_fast += decode_both(b, blen, "mutated request") == FAST_AGREES;
            free(b);
        }
        free(frame);
    }
    print_message("random requests: %zu fast; mutants: %zu of %zu fast; %zu gapped\n", fast,
                  mutated_fast, mutants, g_gaps);
    assert_true(g_gaps > 1000);
}

/* A packed ClientMessage{Request} body; the caller frees it. */
static uint8_t *pack_request(const Slotgate__V1__Request *rq, size_t *len)
{
    Slotgate__V1__ClientMessage m = SLOTGATE__V1__CLIENT_MESSAGE__INIT;
    m.msg_case = SLOTGATE__V1__CLIENT_MESSAGE__MSG_REQUEST;
    m.request = (Slotgate__V1__Request *)rq;
    *len = slotgate__v1__client_message__get_packed_size(&m);
    uint8_t *b = malloc(*len);
    assert_non_null(b);
    slotgate__v1__client_message__pack(&m, b);
    return b;
}

/*
 * A large SET as the session takes it: the value found from the first 256
 * bytes, the fields after it (TTL, condition, deadline) decoded from the
 * rest; a gap anywhere else, or of another length, is declined.
 */
static void test_gap_large_set(void **state)
{
    (void)state;
    static uint8_t value[70000];
    for (size_t i = 0; i < sizeof(value); i++)
        value[i] = (uint8_t)(i * 7);
    ProtobufCBinaryData key = {5, (uint8_t *)"k:big"}, val = {sizeof(value), value};
    Slotgate__V1__Request rq = SLOTGATE__V1__REQUEST__INIT;
    rq.id = 77;
    rq.op = SLOTGATE__V1__OP__OP_SET;
    rq.keyspace = "big";
    rq.n_keys = 1;
    rq.keys = &key;
    rq.n_values = 1;
    rq.values = &val;
    rq.ttl_ms = 60000;
    rq.condition = SLOTGATE__V1__CONDITION__COND_NX;
    rq.deadline_ms = 500;
    size_t len, at, vlen;
    uint8_t *b = pack_request(&rq, &len);
    assert_int_equal(sg_fastpb_find_value(b, 256, len, &at, &vlen), 0);
    assert_int_equal(vlen, sizeof(value));
    assert_memory_equal(b + at, value, vlen);
    size_t before = g_gaps;
    assert_int_equal(decode_both(b, len, "large SET"), FAST_AGREES);
    assert_int_equal(g_gaps, before + 2);

    uint8_t *g = malloc(len);
    assert_non_null(g);
    memcpy(g, b, at);
    memcpy(g + at, b + at + vlen, len - at - vlen);
    size_t glen = len - vlen;
    Slotgate__V1__ClientMessage *m = sg_fastpb_decode_client_gap(g, glen, at, vlen, NULL);
    assert_non_null(m);
    assert_int_equal(m->request->ttl_ms, 60000);
    assert_int_equal(m->request->condition, SLOTGATE__V1__CONDITION__COND_NX);
    assert_int_equal(m->request->deadline_ms, 500);
    assert_string_equal(m->request->keyspace, "big");
    sg_frame_free_client(m, NULL);
    /* The gap one byte off, of another length, or where the key lies. */
    assert_null(sg_fastpb_decode_client_gap(g, glen, at - 1, vlen, NULL));
    assert_null(sg_fastpb_decode_client_gap(g, glen, at + 1, vlen, NULL));
    assert_null(sg_fastpb_decode_client_gap(g, glen, at, vlen - 1, NULL));
    assert_null(sg_fastpb_decode_client_gap(g, glen, at, vlen + 1, NULL));
    assert_null(sg_fastpb_decode_client_gap(g, glen, at, 0, NULL));
    assert_null(sg_fastpb_decode_client_gap(g, glen, glen + 1, vlen, NULL));
    free(g);
    /* The key is not a value: a frame cut where the key's bytes begin. */
    size_t kat = 0;
    for (size_t i = 0; i + 5 <= at; i++)
        if (memcmp(b + i, "k:big", 5) == 0)
            kat = i;
    assert_true(kat > 0);
    g = malloc(len);
    assert_non_null(g);
    memcpy(g, b, kat);
    memcpy(g + kat, b + kat + 5, len - kat - 5);
    assert_null(sg_fastpb_decode_client_gap(g, len - 5, kat, 5, NULL));
    free(g);
    free(b);

    /* Fields before the value beyond the head: not found from 256 bytes. */
    static uint8_t longkey[300];
    memset(longkey, 'x', sizeof(longkey));
    key.len = sizeof(longkey);
    key.data = longkey;
    b = pack_request(&rq, &len);
    assert_int_not_equal(sg_fastpb_find_value(b, 256, len, &at, &vlen), 0);
    assert_int_equal(sg_fastpb_find_value(b, len, len, &at, &vlen), 0);
    free(b);
}

/* Random Responses (every field, results with every field): byte-identical. */
static void test_random_responses(void **state)
{
    (void)state;
    g_rng = 0xfeedface9876ull;
    for (int n = 0; n < 5000; n++) {
        Slotgate__V1__ServerMessage m = SLOTGATE__V1__SERVER_MESSAGE__INIT;
        Slotgate__V1__Response r = SLOTGATE__V1__RESPONSE__INIT;
        Slotgate__V1__KeyResult kr[40], *krp[40];
        static const char *msgs[] = {"", "not found", "deadline passed before the shard answered",
                                     NULL};
        static const int codes[] = {0, 1, 2, 3, 4, 100, 201, 300, 399, 70000, -1, -70000};

        r.id = rnd_u64();
        r.code = codes[rnd_below(12)];
        r.message = (char *)msgs[rnd_below(4)];
        if (rnd_below(3))
            r.value = rnd_bytes(rnd_below(8) ? 100 : 20000);
        if (rnd_below(5) == 0) { /* empty, with data NULL or not */
            r.value.len = 0;
            r.value.data = rnd_below(2) ? NULL : g_pool;
        }
        r.n_results = rnd_below(3) ? 0 : rnd_below(41);
        for (size_t i = 0; i < r.n_results; i++) {
            Slotgate__V1__KeyResult k = SLOTGATE__V1__KEY_RESULT__INIT;
            k.code = codes[rnd_below(12)];
            if (rnd_below(2))
                k.value = rnd_bytes(rnd_below(8) ? 100 : 3000);
            k.message = (char *)msgs[rnd_below(4)];
            kr[i] = k;
            krp[i] = &kr[i];
        }
        r.results = krp;
        r.count = (int64_t)rnd_u64();
        if (rnd_below(4) == 0)
            r.lease = rnd_bytes(16);
        r.retry_after_ms = (uint32_t)rnd_u64();
        r.version = rnd_u64();
        m.msg_case = SLOTGATE__V1__SERVER_MESSAGE__MSG_RESPONSE;
        m.response = &r;
        encode_both(&m, "random response");
    }
}

/* Shapes fastpb leaves to protobuf-c report size 0. */
static void test_encode_declines(void **state)
{
    Slotgate__V1__ServerMessage m = SLOTGATE__V1__SERVER_MESSAGE__INIT;
    Slotgate__V1__Response r = SLOTGATE__V1__RESPONSE__INIT;
    Slotgate__V1__Response__StatsEntry e = SLOTGATE__V1__RESPONSE__STATS_ENTRY__INIT, *ep = &e;
    Slotgate__V1__ConnectionError ce = SLOTGATE__V1__CONNECTION_ERROR__INIT;

    (void)state;
    assert_int_equal(sg_fastpb_server_size(&m), 0); /* nothing set */
    m.msg_case = SLOTGATE__V1__SERVER_MESSAGE__MSG_ERROR;
    m.error = &ce;
    assert_int_equal(sg_fastpb_server_size(&m), 0);
    m.msg_case = SLOTGATE__V1__SERVER_MESSAGE__MSG_RESPONSE;
    m.response = &r;
    encode_both(&m, "empty response"); /* an empty Response is still written */
    r.n_stats = 1;
    r.stats = &ep;
    assert_int_equal(sg_fastpb_server_size(&m), 0);
}

/* --- hand-made frames ------------------------------------------------------ */

struct handmade {
    const char *name;
    const char *hex; /* ClientMessage body */
    int pb_accepts;  /* what protobuf-c 1.4 does with it */
    int fast_takes;  /* whether fastpb is expected to take it */
    uint64_t id;     /* when taken: the id it must hold */
};

/*
 * Request bodies are wrapped by hand: 12 <len> <request>. Op 2 = GET
 * ("10 02"), a key "k" is "22 01 6b".
 */
static const struct handmade g_handmade[] = {
    {"get",
     "1207"
     "0801"
     "1002"
     "22016b",
     1, 1, 1},
    {"fields reversed",
     "1207"
     "22016b"
     "1002"
     "0801",
     1, 1, 1},
    {"duplicate id: last wins",
     "1209"
     "0801"
     "1002"
     "22016b"
     "0807",
     1, 1, 7},
    {"duplicate op: last wins (SET after PING)",
     "1209"
     "1001"
     "0801"
     "22016b"
     "1003",
     1, 1, 1},
    {"duplicate keyspace: last wins",
     "120d"
     "1a0161"
     "0801"
     "1002"
     "22016b"
     "1a0162",
     1, 1, 1},
    {"duplicate pattern and lease",
     "120f"
     "0801"
     "1002"
     "52017a"
     "5a0179"
     "5200"
     "5a0178",
     1, 1, 1},
    {"empty key and empty value",
     "1208"
     "0801"
     "1003"
     "2200"
     "2a00",
     1, 1, 1},
    {"empty keyspace",
     "1209"
     "0801"
     "1002"
     "1a00"
     "22016b",
     1, 1, 1},
    {"overlong id varint",
     "1209"
     "08818000"
     "1002"
     "22016b",
     1, 1, 1},
    {"10-byte id varint",
     "1210"
     "08ffffffffffffffffff01"
     "1002"
     "22016b",
     1, 1, UINT64_MAX},
    {"10-byte id varint, top bits dropped",
     "1210"
     "08ffffffffffffffffff7f"
     "1002"
     "22016b",
     1, 1, UINT64_MAX},
    {"11-byte id varint",
     "1211"
     "08ffffffffffffffffffff01"
     "1002"
     "22016b",
     0, 0, 0},
    {"op above int32 (low 32 bits: GET)",
     "1210"
     "0801"
     "1082808080f0ffffffff01"
     "22016b",
     1, 1, 1},
    {"deadline above uint32",
     "120d"
     "0801"
     "1002"
     "22016b"
     "40ffffffff1f",
     1, 1, 1},
    {"overlong length prefix",
     "1208"
     "0801"
     "1002"
     "2281006b",
     1, 1, 1},
    {"overlong request length",
     "128700"
     "0801"
     "1002"
     "22016b",
     1, 1, 1},
    {"6-byte length prefix",
     "120c"
     "0801"
     "1002"
     "228180808080006b",
     0, 0, 0},
    {"truncated id varint",
     "1202"
     "0880",
     0, 0, 0},
    {"truncated varint at the end",
     "1204"
     "1002"
     "0880",
     0, 0, 0},
    {"key length past the end",
     "1207"
     "0801"
     "1002"
     "22056b",
     0, 0, 0},
    {"request length past the end",
     "1208"
     "0801"
     "1002"
     "22016b",
     0, 0, 0},
    {"request length short of the end",
     "1206"
     "0801"
     "1002"
     "22016b",
     0, 0, 0},
    {"keys as a varint (wrong wire type)",
     "1206"
     "0801"
     "1002"
     "2001",
     0, 0, 0},
    {"id as bytes (wrong wire type)",
     "1208"
     "0a0101"
     "1002"
     "22016b",
     0, 0, 0},
    {"op as fixed32",
     "120a"
     "0801"
     "1502000000"
     "22016b",
     0, 0, 0},
    {"id as fixed64",
     "120e"
     "090100000000000000"
     "1002"
     "22016b",
     0, 0, 0},
    {"start group",
     "1208"
     "0801"
     "1002"
     "22016b"
     "0b",
     0, 0, 0},
    {"wire type 7",
     "1208"
     "0801"
     "1002"
     "22016b"
     "0f",
     0, 0, 0},
    {"tag 0",
     "1209"
     "0801"
     "1002"
     "22016b"
     "0000",
     0, 0, 0},
    {"unknown field 13",
     "1209"
     "0801"
     "1002"
     "22016b"
     "6801",
     1, 0, 0},
    {"unknown field 16 (two-byte tag)",
     "120a"
     "0801"
     "1002"
     "22016b"
     "800101",
     1, 0, 0},
    {"overlong tag for id",
     "1209"
     "888000"
     "01"
     "1002"
     "22016b",
     1, 0, 0},
    {"ttls packed",
     "120b"
     "0801"
     "100b"
     "22016b"
     "4a020102",
     1, 1, 1},
    {"ttls unpacked and packed mixed",
     "120f"
     "0801"
     "100b"
     "22016b"
     "4801"
     "4a020203"
     "4804",
     1, 1, 1},
    {"ttls packed, empty",
     "1209"
     "0801"
     "100b"
     "22016b"
     "4a00",
     1, 1, 1},
    {"ttls packed, cut varint",
     "120a"
     "0801"
     "100b"
     "22016b"
     "4a0180",
     0, 0, 0},
    {"ttls as fixed64",
     "1210"
     "0801"
     "100b"
     "22016b"
     "490100000000000000",
     0, 0, 0},
    {"hello then request (oneof: last wins)",
     "0a00"
     "1207"
     "0801"
     "1002"
     "22016b",
     1, 0, 0},
    {"request twice (protobuf-c merges)",
     "1204"
     "0801"
     "1002"
     "1203"
     "22016b",
     1, 0, 0},
    {"request then unknown field",
     "1207"
     "0801"
     "1002"
     "22016b"
     "1801",
     1, 0, 0},
    {"not a hot op (PING)",
     "1204"
     "0801"
     "1001",
     1, 0, 0},
    {"op unset",
     "1205"
     "0801"
     "22016b",
     1, 0, 0},
    {"hello", "0a020801", 1, 0, 0},
    {"empty body", "", 0, 0, 0},
    {"empty request", "1200", 1, 0, 0},
    {"truncated request tag", "12", 0, 0, 0},
};

static void test_handmade(void **state)
{
    (void)state;
    for (size_t i = 0; i < sizeof(g_handmade) / sizeof(g_handmade[0]); i++) {
        const struct handmade *h = &g_handmade[i];
        uint8_t *b;
        size_t len;
        assert_int_equal(pbjson_hex(h->hex, &b, &len), 0);
        Slotgate__V1__ClientMessage *ref = sg_frame_decode_client(b, len, NULL);
        if ((ref != NULL) != h->pb_accepts)
            fail_msg("%s: protobuf-c %s it, the table says otherwise", h->name,
                     ref ? "accepts" : "rejects");
        enum verdict v = decode_both(b, len, h->name);
        if ((v == FAST_AGREES) != h->fast_takes)
            fail_msg("%s: fastpb %s it, expected the other", h->name,
                     v == FAST_AGREES ? "takes" : "declines");
        if (v == FAST_AGREES && ref->request->id != h->id)
            fail_msg("%s: id %llu", h->name, (unsigned long long)ref->request->id);
        sg_frame_free_client(ref, NULL);
        free(b);
    }
}

/* The decoder with the proxy's arena: a typical GET costs no malloc. */
static size_t g_arena_used;
static uint8_t g_arena[1024];
static int g_arena_overflow;

static void *arena_alloc(void *data, size_t size)
{
    size_t n = (size + 15) & ~(size_t)15;
    (void)data;
    if (g_arena_used + n > sizeof(g_arena)) {
        g_arena_overflow++;
        return NULL;
    }
    g_arena_used += n;
    return g_arena + g_arena_used - n;
}

static void arena_free(void *data, void *p)
{
    (void)data;
    (void)p;
}

static void test_arena(void **state)
{
    ProtobufCAllocator a = {arena_alloc, arena_free, NULL};
    uint8_t *b;
    size_t len;
    (void)state;
    assert_int_equal(pbjson_hex("120f"
                                "0801"
                                "1002"
                                "1a0461707031"
                                "22036b6579",
                                &b, &len),
                     0);
    Slotgate__V1__ClientMessage *m = sg_fastpb_decode_client(b, len, &a);
    assert_non_null(m);
    assert_int_equal(g_arena_overflow, 0);
    assert_string_equal(m->request->keyspace, "app1");
    assert_int_equal(m->request->n_keys, 1);
    assert_memory_equal(m->request->keys[0].data, "key", 3);
    /* The key is a copy: the frame's bytes may go as soon as decoding returns. */
    assert_true(m->request->keys[0].data >= g_arena &&
                m->request->keys[0].data < g_arena + sizeof(g_arena));
    /* Allocation failure part way: declined, nothing else happens. */
    g_arena_used = sizeof(g_arena) - 64;
    assert_null(sg_fastpb_decode_client(b, len, &a));
    assert_true(g_arena_overflow > 0);
    free(b);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_vectors),          cmocka_unit_test(test_random_requests),
        cmocka_unit_test(test_random_responses), cmocka_unit_test(test_encode_declines),
        cmocka_unit_test(test_handmade),         cmocka_unit_test(test_arena),
        cmocka_unit_test(test_gap_large_set),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
