/*
 * fuzz_frame - the client framing and ClientMessage decoding, i.e. the first
 * code that touches bytes from the network. Checks that sg_frame_check reads
 * only the bytes it is given and answers consistently with the header, that
 * any body decodes or is refused without crashing, that whatever decodes
 * packs again and re-decodes to the same bytes, and that the slot of every
 * decoded key follows Redis's hash-tag rule.
 */
#include <stdlib.h>
#include <string.h>

#include "fuzz.h"

#include "frame.h"
#include "slot.h"

static const uint32_t max_bodies[] = {0, 1, 16, 4096, 8u << 20, UINT32_MAX};

/* sg_frame_check on the first n bytes, against every limit. */
static void check_frame_prefix(const uint8_t *buf, size_t n)
{
    for (size_t i = 0; i < sizeof(max_bodies) / sizeof(max_bodies[0]); i++) {
        uint32_t body = 0xdeadbeefu;
        int st = sg_frame_check(buf, n, max_bodies[i], &body);
        if (n < SG_FRAME_HEADER) {
            SG_FUZZ_CHECK(st == SG_FRAME_NEED_MORE);
            SG_FUZZ_CHECK(body == 0xdeadbeefu);
            continue;
        }
        uint32_t want = ((uint32_t)buf[0] << 24) | ((uint32_t)buf[1] << 16) |
                        ((uint32_t)buf[2] << 8) | (uint32_t)buf[3];
        SG_FUZZ_CHECK(body == want);
        if (st == SG_FRAME_OK) {
            SG_FUZZ_CHECK(body <= max_bodies[i]);
            SG_FUZZ_CHECK((size_t)body <= n - SG_FRAME_HEADER);
        } else if (st == SG_FRAME_TOO_LARGE) {
            SG_FUZZ_CHECK(body > max_bodies[i]);
        } else {
            SG_FUZZ_CHECK(st == SG_FRAME_NEED_MORE);
            SG_FUZZ_CHECK(body <= max_bodies[i]);
            SG_FUZZ_CHECK((size_t)body > n - SG_FRAME_HEADER);
        }
    }
}

/*
 * As the session sees a stream: every short prefix (a byte at a time), the
 * whole buffer, and the two lengths either side of the frame's end.
 */
static void check_frame_header(const uint8_t *buf, size_t len)
{
    size_t probe = len < 16 ? len : 16;
    for (size_t n = 0; n <= probe; n++)
        check_frame_prefix(buf, n);
    if (len > probe)
        check_frame_prefix(buf, len);
    uint32_t body = 0;
    if (sg_frame_check(buf, len, UINT32_MAX, &body) == SG_FRAME_OK) {
        size_t end = SG_FRAME_HEADER + (size_t)body;
        check_frame_prefix(buf, end);
        check_frame_prefix(buf, end - 1);
    }
}

/* Redis's keyHashSlot(), written out again independently of slot.c. */
static uint16_t reference_slot(const uint8_t *key, size_t len)
{
    size_t s, e;
    for (s = 0; s < len; s++)
        if (key[s] == '{')
            break;
    if (s == len)
        return sg_crc16(key, len) & (SG_SLOTS - 1);
    for (e = s + 1; e < len; e++)
        if (key[e] == '}')
            break;
    if (e == len || e == s + 1)
        return sg_crc16(key, len) & (SG_SLOTS - 1);
    return sg_crc16(key + s + 1, e - s - 1) & (SG_SLOTS - 1);
}

static void check_keys(const ProtobufCBinaryData *keys, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        uint16_t slot = sg_slot_of_key(keys[i].data, keys[i].len);
        SG_FUZZ_CHECK(slot < SG_SLOTS);
        SG_FUZZ_CHECK(slot == reference_slot(keys[i].data, keys[i].len));
    }
}

/* Pack m into a new buffer of exactly the announced size; caller frees. */
static uint8_t *pack_exact(const Slotgate__V1__ClientMessage *m, size_t *len)
{
    size_t size = slotgate__v1__client_message__get_packed_size(m);
    uint8_t *buf = malloc(size ? size : 1);
    SG_FUZZ_CHECK(buf != NULL);
    SG_FUZZ_CHECK(slotgate__v1__client_message__pack(m, buf) == size);
    *len = size;
    return buf;
}

/*
 * protobuf-c 1.4 rejects a tag byte with field number 0, but accepts one in
 * an overlong varint ("80 00") and keeps it as an unknown field, which pack
 * then writes in the short form its own unpack refuses. That is a quirk of
 * the library, harmless here (the proxy never re-packs a ClientMessage), so
 * such messages are only required to pack.
 */
static int has_field_zero(const ProtobufCMessage *m)
{
    for (unsigned i = 0; m != NULL && i < m->n_unknown_fields; i++)
        if (m->unknown_fields[i].tag == 0)
            return 1;
    return 0;
}

/*
 * Decode body; when it decodes, pack it, decode the packed bytes and pack
 * again. The first pack may differ from the input (unknown-field order,
 * strings cut at a NUL, last oneof wins) but from then on it is stable.
 */
static void check_decode(const uint8_t *body, size_t len)
{
    Slotgate__V1__ClientMessage *m = sg_frame_decode_client(body, len, NULL);
    if (m == NULL)
        return;
    SG_FUZZ_CHECK(m->msg_case == SLOTGATE__V1__CLIENT_MESSAGE__MSG_HELLO ||
                  m->msg_case == SLOTGATE__V1__CLIENT_MESSAGE__MSG_REQUEST);
    if (m->msg_case == SLOTGATE__V1__CLIENT_MESSAGE__MSG_REQUEST) {
        SG_FUZZ_CHECK(m->request != NULL);
        check_keys(m->request->keys, m->request->n_keys);
    } else {
        SG_FUZZ_CHECK(m->hello != NULL);
    }
    size_t len1, len2;
    uint8_t *p1 = pack_exact(m, &len1);
    const ProtobufCMessage *sub = m->msg_case == SLOTGATE__V1__CLIENT_MESSAGE__MSG_REQUEST
                                      ? &m->request->base
                                      : &m->hello->base;
    if (has_field_zero(&m->base) || has_field_zero(sub)) {
        free(p1);
        sg_frame_free_client(m, NULL);
        return;
    }
    Slotgate__V1__ClientMessage *m2 = sg_frame_decode_client(p1, len1, NULL);
    SG_FUZZ_CHECK(m2 != NULL);
    SG_FUZZ_CHECK(m2->msg_case == m->msg_case);
    uint8_t *p2 = pack_exact(m2, &len2);
    Slotgate__V1__ClientMessage *m3 = sg_frame_decode_client(p2, len2, NULL);
    SG_FUZZ_CHECK(m3 != NULL);
    size_t len3;
    uint8_t *p3 = pack_exact(m3, &len3);
    SG_FUZZ_CHECK(len3 == len2 && memcmp(p2, p3, len2) == 0);
    free(p3);
    free(p2);
    free(p1);
    sg_frame_free_client(m3, NULL);
    sg_frame_free_client(m2, NULL);
    sg_frame_free_client(m, NULL);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    uint8_t *buf = sg_fuzz_exact_copy(data, size);
    if (buf == NULL)
        return 0;
    check_frame_header(buf, size);

    uint32_t body = 0;
    if (sg_frame_check(buf, size, UINT32_MAX, &body) == SG_FRAME_OK)
        check_decode(buf + SG_FRAME_HEADER, body); /* the framed message */
    check_decode(buf, size);                       /* and the raw bytes as a body */
    sg_frame_free_client(NULL, NULL);
    free(buf);
    return 0;
}
