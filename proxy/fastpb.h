/*
 * fastpb - hand-written codec for the hot messages of the client protocol:
 * ClientMessage{Request} for GET/SET/DELETE/MGET/MSET in, ServerMessage{
 * Response} out. It fills and reads the same protobuf-c structs as the
 * generated code, so nothing downstream knows which codec ran; anything it
 * is not sure to handle exactly as protobuf-c does is "not mine" and the
 * caller uses frame.c (protobuf-c). Pure functions, no I/O.
 */
#ifndef SG_FASTPB_H
#define SG_FASTPB_H

#include <stddef.h>
#include <stdint.h>

#include "slotgate.pb-c.h"

/*
 * Decode a frame body that holds a ClientMessage whose request is a hot op.
 * Returns the message, allocated piece by piece from alloc exactly as
 * protobuf-c would shape it (free with sg_frame_free_client), with the same
 * content protobuf-c's unpack gives for these bytes. Returns NULL, having
 * allocated nothing, when the bytes are not a hot request in a form it
 * handles (another op, a Hello, unknown fields, a repeated oneof, malformed
 * input...): the caller must then decode with sg_frame_decode_client, which
 * decides whether the frame is valid. alloc may be NULL (malloc).
 */
Slotgate__V1__ClientMessage *sg_fastpb_decode_client(const uint8_t *body, size_t len,
                                                     ProtobufCAllocator *alloc);

/*
 * The same for a frame body whose value is left out: body holds len bytes,
 * the whole body but for the gap_len bytes of one value that belong at
 * offset gap (the caller holds them). Decoded as sg_fastpb_decode_client
 * decodes the whole body, except that this value has its length and data
 * NULL; NULL (nothing allocated) for anything it declines, and when the
 * gap is not exactly the bytes of a values field. Pure: the left-out bytes
 * are never read.
 */
Slotgate__V1__ClientMessage *sg_fastpb_decode_client_gap(const uint8_t *body, size_t len,
                                                         size_t gap, size_t gap_len,
                                                         ProtobufCAllocator *alloc);

/*
 * Where the bytes of the first values field lie in a frame body of len
 * bytes, read from its first head_len bytes (head_len <= len): 0 with *at
 * (offset in the body) and *value_len, or -1 when the fields before it are
 * not all in head, or not a hot Request's fields. The gap it names is what
 * sg_fastpb_decode_client_gap takes; that function decides.
 */
int sg_fastpb_find_value(const uint8_t *head, size_t head_len, size_t len, size_t *at,
                         size_t *value_len);

/*
 * Size of m's frame (4-byte header included) when m is a Response the fast
 * encoder writes (every Response without stats entries or unknown fields);
 * 0 otherwise, and the caller uses sg_frame_server_size/_encode_server.
 */
size_t sg_fastpb_server_size(const Slotgate__V1__ServerMessage *m);

/*
 * Write m's frame into out, which holds size = sg_fastpb_server_size(m) > 0
 * bytes; the bytes are identical to sg_frame_encode_server's. Returns size.
 */
size_t sg_fastpb_encode_server(const Slotgate__V1__ServerMessage *m, uint8_t *out, size_t size);

/*
 * The same frame without the Response's value bytes: out holds size -
 * value.len bytes (size from sg_fastpb_server_size), *gap is where in out
 * the value's bytes belong (0 when the Response has no value). out up to
 * *gap, the value, then the rest of out make sg_fastpb_encode_server's
 * bytes exactly. Returns size - value.len.
 */
size_t sg_fastpb_encode_server_gap(const Slotgate__V1__ServerMessage *m, uint8_t *out, size_t size,
                                   size_t *gap);

#endif
