/*
 * test_vectors - the C code against the golden vectors of proto/testdata/
 * (vectors.json, produced by Python's official protobuf runtime, not by
 * protobuf-c). The proxy must decode every client frame to the case's JSON
 * and encode every canonical server frame byte for byte; clients/c must build
 * every request frame byte for byte with its own request API and read every
 * server frame, through its response path, as the case's JSON says.
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

#include "frame.h" /* proxy/frame.h: the proxy's codec */
#include "vectors_client.h"
#include "pbjson.h"

struct vcase {
    const char *name;
    const char *type; /* "ClientMessage" or "ServerMessage" */
    int encode;       /* from the "encode" list */
    int canonical;    /* frame is the exact encoding of json */
    const json_t *json;
    uint8_t *frame;
    size_t len;
};

static const char *g_path = SG_VECTORS_JSON; /* argv[1] overrides */
static json_t *g_root;
static struct vcase *g_cases;
static size_t g_n;

static int is_client(const struct vcase *v)
{
    return strcmp(v->type, "ClientMessage") == 0;
}

/* Load one list of cases; 0 or -1 (with a message) on a malformed file. */
static int load_list(const char *list, int encode)
{
    const json_t *arr = json_object_get(g_root, list), *c;
    size_t i;

    if (!json_is_array(arr) || json_array_size(arr) == 0) {
        print_error("vectors.json: \"%s\" is not a non-empty array\n", list);
        return -1;
    }
    json_array_foreach(arr, i, c)
    {
        struct vcase *v = &g_cases[g_n];
        const char *hex = json_string_value(json_object_get(c, "frame"));

        v->name = json_string_value(json_object_get(c, "name"));
        v->type = json_string_value(json_object_get(c, "type"));
        v->json = json_object_get(c, "json");
        v->encode = encode;
        v->canonical = encode || json_is_true(json_object_get(c, "canonical"));
        if (v->name == NULL || v->type == NULL || !json_is_object(v->json) || hex == NULL ||
            pbjson_hex(hex, &v->frame, &v->len) < 0) {
            print_error("vectors.json: %s case %zu lacks name, type, json or a hex frame\n", list,
                        i);
            return -1;
        }
        g_n++;
    }
    return 0;
}

static int group_setup(void **state)
{
    json_error_t e;

    (void)state;
    g_root = json_load_file(g_path, 0, &e);
    if (g_root == NULL) {
        print_error("%s:%d: %s\n", g_path, e.line, e.text);
        return -1;
    }
    g_cases = calloc(json_array_size(json_object_get(g_root, "encode")) +
                         json_array_size(json_object_get(g_root, "decode")),
                     sizeof(*g_cases));
    if (g_cases == NULL)
        return -1;
    if (load_list("encode", 1) < 0 || load_list("decode", 0) < 0)
        return -1;
    return 0;
}

static int group_teardown(void **state)
{
    size_t i;

    (void)state;
    for (i = 0; i < g_n; i++)
        free(g_cases[i].frame);
    free(g_cases);
    json_decref(g_root);
    return 0;
}

/* Report one failed case; returns 1 so callers can count failures. */
static int case_failed(const struct vcase *v, const char *what, const char *why)
{
    print_error("case %s: %s: %s\n", v->name, what, why);
    return 1;
}

/* Does the JSON of a ServerMessage mention this code anywhere? */
static int server_json_has_code(const json_t *j, int code)
{
    const json_t *r = json_object_get(j, "response"), *kr;
    int c;
    size_t i;

    if (pbjson_enum(&slotgate__v1__code__descriptor,
                    json_object_get(r ? r : json_object_get(j, "error"), "code"), &c) == 0 &&
        (r || json_object_get(j, "error")) && c == code)
        return 1;
    json_array_foreach(json_object_get(r, "results"), i, kr)
    {
        if (pbjson_enum(&slotgate__v1__code__descriptor, json_object_get(kr, "code"), &c) == 0 &&
            c == code)
            return 1;
    }
    return 0;
}

/*
 * The file itself: frames carry their own length, names are unique, encode
 * cases are ClientMessages, and the promised coverage holds: every Op of the
 * schema in some encode case, every Code in some ServerMessage.
 */
static void test_file_shape(void **state)
{
    size_t i, k, ops = 0;
    int bad = 0;

    (void)state;
    assert_int_equal(json_integer_value(json_object_get(g_root, "version")), 1);
    for (i = 0; i < g_n; i++) {
        const struct vcase *v = &g_cases[i];
        uint32_t body = 0;

        if (v->len < 4 || sg_frame_check(v->frame, v->len, UINT32_MAX, &body) != SG_FRAME_OK ||
            body != v->len - 4)
            bad += case_failed(v, "frame", "length prefix does not match the body");
        if (!is_client(v) && strcmp(v->type, "ServerMessage") != 0)
            bad += case_failed(v, "type", "neither ClientMessage nor ServerMessage");
        if (v->encode && !is_client(v))
            bad += case_failed(v, "type", "encode cases are ClientMessages");
        for (k = 0; k < i; k++)
            if (strcmp(g_cases[k].name, v->name) == 0)
                bad += case_failed(v, "name", "used twice");
    }
    for (k = 0; k < slotgate__v1__op__descriptor.n_values; k++) {
        int op = slotgate__v1__op__descriptor.values[k].value, found = 0, got;

        for (i = 0; i < g_n && !found; i++) {
            const json_t *rq = json_object_get(g_cases[i].json, "request");
            found =
                g_cases[i].encode && rq &&
                pbjson_enum(&slotgate__v1__op__descriptor, json_object_get(rq, "op"), &got) == 0 &&
                got == op;
        }
        if (!found && op != 0) {
            print_error("no encode case for %s\n", slotgate__v1__op__descriptor.values[k].name);
            bad++;
        }
        ops += (size_t)found;
    }
    for (k = 0; k < slotgate__v1__code__descriptor.n_values; k++) {
        int code = slotgate__v1__code__descriptor.values[k].value, found = 0;

        for (i = 0; i < g_n && !found; i++)
            found = !is_client(&g_cases[i]) && server_json_has_code(g_cases[i].json, code);
        if (!found) {
            print_error("no ServerMessage case with %s\n",
                        slotgate__v1__code__descriptor.values[k].name);
            bad++;
        }
    }
    assert_true(ops > 0);
    assert_int_equal(bad, 0);
}

/*
 * The proxy's decoder (sg_frame_check + sg_frame_decode_client) on every
 * ClientMessage frame: encode cases and decode-only ones (unknown fields,
 * unpacked repeated fields, fields out of order).
 */
static void test_proxy_decodes_client_frames(void **state)
{
    size_t i, seen = 0;
    int bad = 0;
    char err[512];

    (void)state;
    for (i = 0; i < g_n; i++) {
        const struct vcase *v = &g_cases[i];
        Slotgate__V1__ClientMessage *m;
        uint32_t body = 0;

        if (!is_client(v))
            continue;
        seen++;
        if (sg_frame_check(v->frame, v->len, UINT32_MAX, &body) != SG_FRAME_OK) {
            bad += case_failed(v, "proxy sg_frame_check", "not a whole frame");
            continue;
        }
        m = sg_frame_decode_client(v->frame + SG_FRAME_HEADER, body, NULL);
        if (m == NULL) {
            bad += case_failed(v, "proxy sg_frame_decode_client", "does not decode");
            continue;
        }
        if (pbjson_equal(&m->base, v->json, err, sizeof(err)) < 0)
            bad += case_failed(v, "proxy decode", err);
        sg_frame_free_client(m, NULL);
    }
    assert_true(seen > 0);
    assert_int_equal(bad, 0);
}

/*
 * The proxy's encoder (sg_frame_server_size + sg_frame_encode_server) on
 * every canonical ServerMessage: the message is first decoded and proven
 * equal to the case's JSON, then encoding it must give the frame exactly.
 */
static void test_proxy_encodes_server_frames(void **state)
{
    size_t i, seen = 0;
    int bad = 0;
    char err[512];

    (void)state;
    for (i = 0; i < g_n; i++) {
        const struct vcase *v = &g_cases[i];
        Slotgate__V1__ServerMessage *m;
        uint8_t *out;

        if (is_client(v) || !v->canonical)
            continue;
        seen++;
        m = slotgate__v1__server_message__unpack(NULL, v->len - 4, v->frame + 4);
        if (m == NULL) {
            bad += case_failed(v, "unpack", "does not decode");
            continue;
        }
        if (pbjson_equal(&m->base, v->json, err, sizeof(err)) < 0) {
            bad += case_failed(v, "decode", err);
        } else if (sg_frame_server_size(m) != v->len) {
            bad += case_failed(v, "proxy sg_frame_server_size", "size differs from the frame");
        } else {
            out = malloc(v->len);
            assert_non_null(out);
            if (sg_frame_encode_server(m, out) != v->len || memcmp(out, v->frame, v->len) != 0)
                bad += case_failed(v, "proxy sg_frame_encode_server", "bytes differ");
            free(out);
        }
        slotgate__v1__server_message__free_unpacked(m, NULL);
    }
    assert_true(seen > 0);
    assert_int_equal(bad, 0);
}

/* clients/c builds every encode case with its own API, byte for byte. */
static void test_client_encodes_requests(void **state)
{
    size_t i, len, seen = 0;
    int bad = 0;

    (void)state;
    for (i = 0; i < g_n; i++) {
        const struct vcase *v = &g_cases[i];
        const char *why = NULL;
        uint8_t *frame;

        if (!v->encode)
            continue;
        seen++;
        frame = vc_client_frame(v->json, &len, &why);
        if (frame == NULL)
            bad += case_failed(v, "clients/c build", why ? why : "no frame");
        else if (len != v->len || memcmp(frame, v->frame, len) != 0)
            bad += case_failed(v, "clients/c sg_frame_request/sg_frame_hello", "bytes differ");
        free(frame);
    }
    assert_true(seen > 0);
    assert_int_equal(bad, 0);
}

/*
 * clients/c's read path on every ServerMessage: the frame body unpacked as
 * sg_client_read_message does (the HelloReply that the handshake reads
 * limits from is compared whole), then wrapped by sg_response_wrap into the
 * struct sg_response an application sees.
 */
static void test_client_decodes_server_frames(void **state)
{
    size_t i, seen = 0;
    int bad = 0;
    char err[512];

    (void)state;
    for (i = 0; i < g_n; i++) {
        const struct vcase *v = &g_cases[i];

        if (is_client(v))
            continue;
        seen++;
        if (vc_client_read(v->frame, v->len, v->json, err, sizeof(err)) < 0)
            bad += case_failed(v, "clients/c", err);
    }
    assert_true(seen > 0);
    assert_int_equal(bad, 0);
}

/* A vc_frame view of case v. */
static struct vc_frame frame_of(const struct vcase *v)
{
    struct vc_frame f = {v->frame, v->len, v->json};

    return f;
}

static int has_member(const struct vcase *v, const char *member)
{
    return json_object_get(v->json, member) != NULL;
}

/*
 * The whole client over a loopback socket (vc_client_session): every Hello
 * case against every HelloReply case; then one connection that sends every
 * request case with sg_client_send and reads every Response case, then a
 * ConnectionError, with sg_client_recv; then each ConnectionError alone.
 */
static void test_client_over_loopback(void **state)
{
    struct vc_frame *req, *rep, hello = {0}, reply = {0};
    size_t i, k, n_req = 0, n_rep = 0, sessions = 0;
    int bad = 0, full = 1;
    char err[512];

    (void)state;
    req = calloc(g_n, sizeof(*req));
    rep = calloc(g_n + 1, sizeof(*rep));
    assert_true(req != NULL && rep != NULL);
    for (i = 0; i < g_n; i++) {
        const struct vcase *v = &g_cases[i];

        if (v->encode && has_member(v, "hello") && hello.bytes == NULL)
            hello = frame_of(v);
        if (!is_client(v) && has_member(v, "helloReply") && reply.bytes == NULL)
            reply = frame_of(v);
        if (v->encode && has_member(v, "request"))
            req[n_req++] = frame_of(v);
        if (!is_client(v) && has_member(v, "response"))
            rep[n_rep++] = frame_of(v);
    }
    assert_non_null(hello.bytes);
    assert_non_null(reply.bytes);
    for (i = 0; i < g_n; i++) {
        if (!g_cases[i].encode || !has_member(&g_cases[i], "hello"))
            continue;
        for (k = 0; k < g_n; k++) {
            struct vc_frame h = frame_of(&g_cases[i]), r = frame_of(&g_cases[k]);

            if (is_client(&g_cases[k]) || !has_member(&g_cases[k], "helloReply"))
                continue;
            sessions++;
            if (vc_client_session(&h, &r, NULL, 0, NULL, 0, err, sizeof(err)) < 0) {
                print_error("cases %s + %s: clients/c over loopback: %s\n", g_cases[i].name,
                            g_cases[k].name, err);
                bad++;
            }
        }
    }
    for (i = 0; i < g_n; i++) {
        const struct vcase *v = &g_cases[i];

        if (is_client(v) || !has_member(v, "error"))
            continue;
        rep[n_rep] = frame_of(v);
        sessions++;
        if (full ? vc_client_session(&hello, &reply, req, n_req, rep, n_rep + 1, err, sizeof(err))
                 : vc_client_session(&hello, &reply, NULL, 0, &rep[n_rep], 1, err, sizeof(err)))
            bad += case_failed(v,
                               full ? "clients/c over loopback, every request and response"
                                    : "clients/c over loopback",
                               err);
        full = 0;
    }
    free(req);
    free(rep);
    assert_true(sessions > 0);
    assert_int_equal(bad, 0);
}

int main(int argc, char **argv)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_file_shape),
        cmocka_unit_test(test_proxy_decodes_client_frames),
        cmocka_unit_test(test_proxy_encodes_server_frames),
        cmocka_unit_test(test_client_encodes_requests),
        cmocka_unit_test(test_client_decodes_server_frames),
        cmocka_unit_test(test_client_over_loopback),
    };
    if (argc > 1)
        g_path = argv[1];
    return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
