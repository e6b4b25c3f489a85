/*
 * frame - the wire framing: a 4-byte big-endian length, then that many bytes
 * of one protobuf message. Pure functions over byte buffers, no I/O: the
 * session feeds them what it has read, so every truncation is testable.
 */
#ifndef SG_FRAME_H
#define SG_FRAME_H

#include <stddef.h>
#include <stdint.h>

#include "slotgate.pb-c.h"

#define SG_FRAME_HEADER 4

enum sg_frame_status {
    SG_FRAME_NEED_MORE = 0, /* not a whole frame yet */
    SG_FRAME_OK = 1,        /* a whole frame: *body_len set */
    SG_FRAME_TOO_LARGE = -1 /* length prefix above the limit: close */
};

/*
 * Look at the first len bytes of a stream. Returns SG_FRAME_OK when a whole
 * frame is present (its body is buf[4 .. 4 + *body_len)), SG_FRAME_NEED_MORE
 * when more bytes are needed, SG_FRAME_TOO_LARGE as soon as the header
 * announces more than max_body bytes (before anything is allocated).
 * *body_len is set whenever the header is complete.
 */
int sg_frame_check(const uint8_t *buf, size_t len, uint32_t max_body, uint32_t *body_len);

/* Write the 4-byte header for a body of body_len bytes into out. */
void sg_frame_put_header(uint8_t out[SG_FRAME_HEADER], uint32_t body_len);

/*
 * Decode a frame body as a ClientMessage. Returns NULL when the bytes do not
 * decode or the message is empty (no oneof set). The result is owned by the
 * caller: free with sg_frame_free_client(). alloc may be NULL (malloc).
 */
Slotgate__V1__ClientMessage *sg_frame_decode_client(const uint8_t *body, size_t len,
                                                    ProtobufCAllocator *alloc);
void sg_frame_free_client(Slotgate__V1__ClientMessage *m, ProtobufCAllocator *alloc);

/* Encoded size of a ServerMessage frame (header included). */
size_t sg_frame_server_size(const Slotgate__V1__ServerMessage *m);
/* Encode header + body into out, which has sg_frame_server_size() bytes. */
size_t sg_frame_encode_server(const Slotgate__V1__ServerMessage *m, uint8_t *out);

#endif
