/*
 * frame - length-prefixed protobuf framing for the client protocol. The
 * limit check happens on the 4 header bytes alone, so an oversized claim
 * costs nothing but those bytes.
 */
#include "frame.h"

int sg_frame_check(const uint8_t *buf, size_t len, uint32_t max_body, uint32_t *body_len)
{
    if (len < SG_FRAME_HEADER)
        return SG_FRAME_NEED_MORE;
    uint32_t n = ((uint32_t)buf[0] << 24) | ((uint32_t)buf[1] << 16) | ((uint32_t)buf[2] << 8) |
                 (uint32_t)buf[3];
    *body_len = n;
    if (n > max_body)
        return SG_FRAME_TOO_LARGE;
    if (len - SG_FRAME_HEADER < n)
        return SG_FRAME_NEED_MORE;
    return SG_FRAME_OK;
}

void sg_frame_put_header(uint8_t out[SG_FRAME_HEADER], uint32_t body_len)
{
    out[0] = (uint8_t)(body_len >> 24);
    out[1] = (uint8_t)(body_len >> 16);
    out[2] = (uint8_t)(body_len >> 8);
    out[3] = (uint8_t)body_len;
}

Slotgate__V1__ClientMessage *sg_frame_decode_client(const uint8_t *body, size_t len,
                                                    ProtobufCAllocator *alloc)
{
    Slotgate__V1__ClientMessage *m = slotgate__v1__client_message__unpack(alloc, len, body);
    if (m == NULL)
        return NULL;
    if (m->msg_case == SLOTGATE__V1__CLIENT_MESSAGE__MSG__NOT_SET) {
        slotgate__v1__client_message__free_unpacked(m, alloc);
        return NULL;
    }
    return m;
}

void sg_frame_free_client(Slotgate__V1__ClientMessage *m, ProtobufCAllocator *alloc)
{
    if (m != NULL)
        slotgate__v1__client_message__free_unpacked(m, alloc);
}

size_t sg_frame_server_size(const Slotgate__V1__ServerMessage *m)
{
    return SG_FRAME_HEADER + slotgate__v1__server_message__get_packed_size(m);
}

size_t sg_frame_encode_server(const Slotgate__V1__ServerMessage *m, uint8_t *out)
{
    size_t n = slotgate__v1__server_message__pack(m, out + SG_FRAME_HEADER);
    sg_frame_put_header(out, (uint32_t)n);
    return SG_FRAME_HEADER + n;
}
