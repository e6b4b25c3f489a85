/*
 * bench_wire - slotgate frames for the benchmark tools, through libslotgate's
 * public codec (sg_encode_request, sg_encode_hello, sg_decode_frame_len,
 * sg_decode_response): the tools measure the proxy with the same encoder and
 * decoder applications use, and keep their own event loop and ids.
 *
 * A large encoded frame (4 KiB and up) is handed to the output evbuffer by
 * reference (freed when libevent is done with it), so its value is never
 * copied. A small one is copied in, so the frames of a pipelined batch share
 * one chain: over TLS, libevent's OpenSSL bufferevent makes one SSL_write,
 * so one record and one system call, of each chain, and a batch of 16 small
 * requests left in 16 chains went out as 16 records in 16 writes, which no
 * real client does (Node, Go and the C client write a batch at once).
 * A response is pulled up into one contiguous run of the input evbuffer and
 * decoded there.
 */
#include "bench_wire.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <slotgate.h>

#include "slotgate.pb-c.h"

/* ---- encoding ------------------------------------------------------------ */

static void wire_free_frame(const void *data, size_t len, void *arg)
{
    (void)len;
    (void)arg;
    free((void *)data);
}

/* Hand a malloc'ed frame to out; out frees it. */
static int wire_add_frame(struct evbuffer *out, uint8_t *frame, size_t len)
{
    if (frame == NULL)
        return -1;
    if (len < 4096) {
        int rc = evbuffer_add(out, frame, len);
        free(frame);
        return rc;
    }
    if (evbuffer_add_reference(out, frame, len, wire_free_frame, NULL) != 0) {
        free(frame);
        return -1;
    }
    return 0;
}

int sg_bench_wire_put_request(struct evbuffer *out, const struct sg_bench_req *req)
{
    struct sg_request *r = sg_request_new((enum sg_op)req->op);
    char ks[256];
    uint8_t *frame;
    size_t i, len;

    if (req->keyspace.len > 0) {
        if (req->keyspace.len >= sizeof(ks)) {
            sg_request_free(r);
            return -1;
        }
        memcpy(ks, req->keyspace.ptr, req->keyspace.len);
        ks[req->keyspace.len] = '\0';
        sg_request_keyspace(r, ks);
    }
    for (i = 0; i < req->nkeys; i++) {
        sg_request_add_key(r, req->keys[i].ptr, req->keys[i].len);
        if (req->values != NULL)
            sg_request_add_value(r, req->values[i].ptr, req->values[i].len);
    }
    frame = sg_encode_request(r, req->id, &len);
    sg_request_free(r);
    return wire_add_frame(out, frame, len);
}

int sg_bench_wire_put_hello(struct evbuffer *out, const char *client_name)
{
    size_t len;
    uint8_t *frame = sg_encode_hello(client_name, NULL, 0, &len);

    return wire_add_frame(out, frame, len);
}

/* ---- decoding -------------------------------------------------------------- */

int sg_bench_wire_take(struct evbuffer *in, struct sg_bench_msg *msg)
{
    struct sg_response *resp;
    struct sg_limits limits;
    enum sg_msg_kind kind;
    uint8_t hdr[4];
    const uint8_t *p;
    size_t body, i;

    memset(msg, 0, sizeof(*msg));
    if (evbuffer_copyout(in, hdr, 4) != 4 || sg_decode_frame_len(hdr, 4, &body) != 1)
        return 0;
    if (body > SG_BENCH_MAX_FRAME)
        return -1;
    if (evbuffer_get_length(in) < 4 + body)
        return 0;
    p = evbuffer_pullup(in, (ev_ssize_t)(4 + body));
    if (p == NULL || sg_decode_response(p + 4, body, &resp, &kind, &limits) != 0)
        return -1;
    switch (kind) {
    case SG_MSG_HELLO_REPLY:
        msg->kind = SG_BENCH_MSG_HELLO_REPLY;
        msg->max_inflight = limits.max_inflight;
        msg->max_batch_keys = limits.max_batch_keys;
        break;
    case SG_MSG_CONNECTION_ERROR:
        msg->kind = SG_BENCH_MSG_CONN_ERROR;
        msg->code = resp->code;
        break;
    case SG_MSG_RESPONSE:
        msg->kind = SG_BENCH_MSG_RESPONSE;
        msg->id = resp->id;
        msg->code = resp->code;
        msg->nresults = (uint32_t)resp->n_results;
        for (i = 0; i < resp->n_results; i++) {
            if (resp->results[i].code == SG_NOT_FOUND)
                msg->key_misses++;
            if (resp->results[i].code >= 100 && msg->key_errors++ == 0)
                msg->first_key_error = resp->results[i].code;
        }
        break;
    default:
        msg->kind = SG_BENCH_MSG_OTHER;
        break;
    }
    sg_response_free(resp);
    evbuffer_drain(in, 4 + body);
    return 1;
}

const char *sg_bench_code_name(int code, char *buf, size_t buflen)
{
    const ProtobufCEnumValue *v =
        protobuf_c_enum_descriptor_get_value(&slotgate__v1__code__descriptor, code);
    if (v != NULL)
        return v->name;
    snprintf(buf, buflen, "CODE_%d", code);
    return buf;
}
