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
 * (sg_frame_hello, or sg_request_new + sg_request_* + sg_frame_request) and
 * return the client's frame (caller frees), or NULL with *why set when the
 * API cannot express j.
 */
uint8_t *vc_client_frame(const json_t *j, size_t *len, const char **why);

/*
 * Read a ServerMessage frame the way clients/c does (unpack the body, then
 * sg_response_wrap into a struct sg_response) and compare both the decoded
 * message and the struct with the canonical JSON j. 0, or -1 with err set.
 */
int vc_client_read(const uint8_t *frame, size_t len, const json_t *j, char *err, size_t errlen);

#endif
