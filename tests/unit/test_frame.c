/*
 * test_frame - the frame codec as the session uses it: fed a stream a byte
 * at a time, every truncation, the size limit decided on the header alone,
 * and ClientMessage / ServerMessage round trips through protobuf-c.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "frame.h"

/* Frame (header + body) of a packed ClientMessage; caller frees. */
static uint8_t *pack_client(const Slotgate__V1__ClientMessage *m, size_t *len)
{
    size_t body = slotgate__v1__client_message__get_packed_size(m);
    uint8_t *buf = malloc(SG_FRAME_HEADER + body + 1);
    assert_non_null(buf);
    assert_int_equal(slotgate__v1__client_message__pack(m, buf + SG_FRAME_HEADER), body);
    sg_frame_put_header(buf, (uint32_t)body);
    *len = SG_FRAME_HEADER + body;
    return buf;
}

static uint8_t *sample_request_frame(size_t *len)
{
    Slotgate__V1__ClientMessage m = SLOTGATE__V1__CLIENT_MESSAGE__INIT;
    Slotgate__V1__Request req = SLOTGATE__V1__REQUEST__INIT;
    ProtobufCBinaryData keys[1] = {{3, (uint8_t *)"abc"}};
    req.id = 42;
    req.op = SLOTGATE__V1__OP__OP_GET;
    req.keyspace = "session";
    req.n_keys = 1;
    req.keys = keys;
    m.msg_case = SLOTGATE__V1__CLIENT_MESSAGE__MSG_REQUEST;
    m.request = &req;
    return pack_client(&m, len);
}

static void test_put_header_big_endian(void **state)
{
    (void)state;
    uint8_t h[4];
    sg_frame_put_header(h, 0x01020304u);
    assert_int_equal(h[0], 1);
    assert_int_equal(h[1], 2);
    assert_int_equal(h[2], 3);
    assert_int_equal(h[3], 4);
}

static void test_byte_by_byte(void **state)
{
    (void)state;
    size_t len;
    uint8_t *frame = sample_request_frame(&len);
    uint32_t body = 0;
    for (size_t i = 0; i < len; i++)
        assert_int_equal(sg_frame_check(frame, i, 1024, &body), SG_FRAME_NEED_MORE);
    assert_int_equal(sg_frame_check(frame, len, 1024, &body), SG_FRAME_OK);
    assert_int_equal(body, len - SG_FRAME_HEADER);
    free(frame);
}

static void test_truncations_and_trailing(void **state)
{
    (void)state;
    size_t len;
    uint8_t *frame = sample_request_frame(&len);
    uint8_t *two = malloc(2 * len);
    assert_non_null(two);
    memcpy(two, frame, len);
    memcpy(two + len, frame, len);
    uint32_t body = 0;
    /* With a second frame behind it, the first is complete and no longer. */
    for (size_t i = len; i <= 2 * len; i++) {
        assert_int_equal(sg_frame_check(two, i, 1024, &body), SG_FRAME_OK);
        assert_int_equal(body, len - SG_FRAME_HEADER);
    }
    for (size_t i = 0; i < len; i++)
        assert_int_equal(sg_frame_check(two + len, i, 1024, &body), SG_FRAME_NEED_MORE);
    free(two);
    free(frame);
}

static void test_too_large_after_header(void **state)
{
    (void)state;
    uint8_t h[4];
    uint32_t body = 0;
    sg_frame_put_header(h, 101);
    for (size_t i = 0; i < 4; i++)
        assert_int_equal(sg_frame_check(h, i, 100, &body), SG_FRAME_NEED_MORE);
    assert_int_equal(sg_frame_check(h, 4, 100, &body), SG_FRAME_TOO_LARGE);
    assert_int_equal(body, 101);

    sg_frame_put_header(h, 0xffffffffu);
    assert_int_equal(sg_frame_check(h, 4, 8u << 20, &body), SG_FRAME_TOO_LARGE);
}

static void test_exactly_at_limit(void **state)
{
    (void)state;
    uint8_t buf[4 + 100];
    uint32_t body = 0;
    memset(buf, 0xab, sizeof buf);
    sg_frame_put_header(buf, 100);
    assert_int_equal(sg_frame_check(buf, 4, 100, &body), SG_FRAME_NEED_MORE);
    assert_int_equal(body, 100);
    assert_int_equal(sg_frame_check(buf, 103, 100, &body), SG_FRAME_NEED_MORE);
    assert_int_equal(sg_frame_check(buf, 104, 100, &body), SG_FRAME_OK);
    assert_int_equal(body, 100);
}

static void test_zero_length_body(void **state)
{
    (void)state;
    uint8_t h[4];
    uint32_t body = 7;
    sg_frame_put_header(h, 0);
    assert_int_equal(sg_frame_check(h, 3, 100, &body), SG_FRAME_NEED_MORE);
    assert_int_equal(sg_frame_check(h, 4, 100, &body), SG_FRAME_OK);
    assert_int_equal(body, 0);
    assert_int_equal(sg_frame_check(h, 4, 0, &body), SG_FRAME_OK);
    /* An empty body is a ClientMessage with nothing set: rejected. */
    assert_null(sg_frame_decode_client(h + 4, 0, NULL));
}

static void test_decode_hello(void **state)
{
    (void)state;
    Slotgate__V1__ClientMessage m = SLOTGATE__V1__CLIENT_MESSAGE__INIT;
    Slotgate__V1__Hello hello = SLOTGATE__V1__HELLO__INIT;
    hello.protocol_version = 1;
    hello.client_name = "unit";
    hello.auth_token.data = (uint8_t *)"t\0k";
    hello.auth_token.len = 3;
    m.msg_case = SLOTGATE__V1__CLIENT_MESSAGE__MSG_HELLO;
    m.hello = &hello;
    size_t len;
    uint8_t *frame = pack_client(&m, &len);
    uint32_t body;
    assert_int_equal(sg_frame_check(frame, len, 1024, &body), SG_FRAME_OK);

    Slotgate__V1__ClientMessage *d = sg_frame_decode_client(frame + 4, body, NULL);
    assert_non_null(d);
    assert_int_equal(d->msg_case, SLOTGATE__V1__CLIENT_MESSAGE__MSG_HELLO);
    assert_int_equal(d->hello->protocol_version, 1);
    assert_string_equal(d->hello->client_name, "unit");
    assert_int_equal(d->hello->auth_token.len, 3);
    assert_memory_equal(d->hello->auth_token.data, "t\0k", 3);
    sg_frame_free_client(d, NULL);
    free(frame);
}

static void test_decode_request(void **state)
{
    (void)state;
    size_t len;
    uint8_t *frame = sample_request_frame(&len);
    Slotgate__V1__ClientMessage *d = sg_frame_decode_client(frame + 4, len - 4, NULL);
    assert_non_null(d);
    assert_int_equal(d->msg_case, SLOTGATE__V1__CLIENT_MESSAGE__MSG_REQUEST);
    assert_int_equal(d->request->id, 42);
    assert_int_equal(d->request->op, SLOTGATE__V1__OP__OP_GET);
    assert_string_equal(d->request->keyspace, "session");
    assert_int_equal(d->request->n_keys, 1);
    assert_int_equal(d->request->keys[0].len, 3);
    assert_memory_equal(d->request->keys[0].data, "abc", 3);
    sg_frame_free_client(d, NULL);
    sg_frame_free_client(NULL, NULL);
    free(frame);
}

static void test_decode_garbage(void **state)
{
    (void)state;
    static const uint8_t garbage[] = {0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x0f};
    static const uint8_t truncated[] = {0x12, 0x10, 0x08}; /* field 2, len 16, 1 byte */
    static const uint8_t unknown_only[] = {0x28, 0x01};    /* field 5 varint */
    static const uint8_t empty_request[] = {0x12, 0x00};   /* request set, empty */
    assert_null(sg_frame_decode_client(garbage, sizeof garbage, NULL));
    assert_null(sg_frame_decode_client(truncated, sizeof truncated, NULL));
    assert_null(sg_frame_decode_client(unknown_only, sizeof unknown_only, NULL));

    Slotgate__V1__ClientMessage *d =
        sg_frame_decode_client(empty_request, sizeof empty_request, NULL);
    assert_non_null(d);
    assert_int_equal(d->msg_case, SLOTGATE__V1__CLIENT_MESSAGE__MSG_REQUEST);
    sg_frame_free_client(d, NULL);

    /* Every truncation of a valid body either fails or decodes: never crashes. */
    size_t len;
    uint8_t *frame = sample_request_frame(&len);
    for (size_t i = 0; i < len - 4; i++) {
        uint8_t *copy = malloc(i + 1);
        assert_non_null(copy);
        memcpy(copy, frame + 4, i);
        d = sg_frame_decode_client(copy, i, NULL);
        sg_frame_free_client(d, NULL);
        free(copy);
    }
    free(frame);
}

static void test_encode_server_round_trip(void **state)
{
    (void)state;
    Slotgate__V1__ServerMessage m = SLOTGATE__V1__SERVER_MESSAGE__INIT;
    Slotgate__V1__Response resp = SLOTGATE__V1__RESPONSE__INIT;
    resp.id = 7;
    resp.code = SLOTGATE__V1__CODE__CODE_NOT_FOUND;
    resp.message = "missing";
    resp.value.data = (uint8_t *)"v";
    resp.value.len = 1;
    m.msg_case = SLOTGATE__V1__SERVER_MESSAGE__MSG_RESPONSE;
    m.response = &resp;

    size_t size = sg_frame_server_size(&m);
    uint8_t *out = malloc(size);
    assert_non_null(out);
    assert_int_equal(sg_frame_encode_server(&m, out), size);
    uint32_t body;
    for (size_t i = 0; i < size; i++)
        assert_int_equal(sg_frame_check(out, i, 1024, &body), SG_FRAME_NEED_MORE);
    assert_int_equal(sg_frame_check(out, size, 1024, &body), SG_FRAME_OK);
    assert_int_equal(body, size - 4);

    Slotgate__V1__ServerMessage *d = slotgate__v1__server_message__unpack(NULL, body, out + 4);
    assert_non_null(d);
    assert_int_equal(d->msg_case, SLOTGATE__V1__SERVER_MESSAGE__MSG_RESPONSE);
    assert_int_equal(d->response->id, 7);
    assert_int_equal(d->response->code, SLOTGATE__V1__CODE__CODE_NOT_FOUND);
    assert_string_equal(d->response->message, "missing");
    assert_int_equal(d->response->value.len, 1);
    slotgate__v1__server_message__free_unpacked(d, NULL);
    free(out);

    /* An empty ServerMessage is a frame with a zero-length body. */
    Slotgate__V1__ServerMessage empty = SLOTGATE__V1__SERVER_MESSAGE__INIT;
    uint8_t hdr[4];
    assert_int_equal(sg_frame_server_size(&empty), 4);
    assert_int_equal(sg_frame_encode_server(&empty, hdr), 4);
    assert_int_equal(sg_frame_check(hdr, 4, 0, &body), SG_FRAME_OK);
    assert_int_equal(body, 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_put_header_big_endian),
        cmocka_unit_test(test_byte_by_byte),
        cmocka_unit_test(test_truncations_and_trailing),
        cmocka_unit_test(test_too_large_after_header),
        cmocka_unit_test(test_exactly_at_limit),
        cmocka_unit_test(test_zero_length_body),
        cmocka_unit_test(test_decode_hello),
        cmocka_unit_test(test_decode_request),
        cmocka_unit_test(test_decode_garbage),
        cmocka_unit_test(test_encode_server_round_trip),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
