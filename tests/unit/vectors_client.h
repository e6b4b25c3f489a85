/*
 * vectors_client - clients/c seen through the golden vectors. Kept apart from
 * test_vectors.c because the client's private header and the proxy's
 * frame.h both define SG_FRAME_TOO_LARGE.
 */
#ifndef SG_TEST_VECTORS_CLIENT_H
#define SG_TEST_VECTORS_CLIENT_H

#include <stddef.h>
#include <stdint.h>

#include <jansson.h>

/*
 * Build the ClientMessage in canonical JSON j with the clients/c API
 * (the public codec: sg_encode_hello, or sg_request_new + sg_request_* +
 * sg_encode_request with the case's id) and
 * return the client's frame (caller frees), or NULL with *why set when the
 * API cannot express j.
 */
uint8_t *vc_client_frame(const json_t *j, size_t *len, const char **why);

/*
 * Read a ServerMessage frame the way clients/c does (unpack the body, then
 * sg_response_wrap into a struct sg_response), and through the public codec
 * (sg_decode_response), and compare the decoded message and both structs
 * with the canonical JSON j. 0, or -1 with err set.
 */
int vc_client_read(const uint8_t *frame, size_t len, const json_t *j, char *err, size_t errlen);

/* One frame of a case and its canonical JSON. */
struct vc_frame {
    const uint8_t *bytes;
    size_t len;
    const json_t *json;
};

/*
 * The real client over a loopback socket, against an in-process server
 * thread playing back vector frames: sg_client_connect with the name and
 * token of the Hello case (the server answers with the HelloReply case, and
 * sg_client_limits must then match it), sg_client_send of every request
 * (the library numbers them 1, 2, ...; the server expects each case's frame
 * re-encoded with that id),
 * then sg_client_recv of every reply (the last may be a ConnectionError),
 * each compared with its JSON. The bytes the server received must be the
 * Hello frame followed by the request frames. 0, or -1 with err set.
 */
int vc_client_session(const struct vc_frame *hello, const struct vc_frame *hello_reply,
                      const struct vc_frame *requests, size_t n_requests,
                      const struct vc_frame *replies, size_t n_replies, char *err, size_t errlen);

#endif
