/*
 * response.c - decoded server responses and code names.
 *
 * A struct sg_response is a flat, read-only view over one unpacked
 * ServerMessage: the response keeps the protobuf message alive and points
 * into it, so decoding copies no keys or values.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "internal.h"

/* What a response owns besides its public fields. */
struct sg_response_box {
    struct sg_response pub;
    Slotgate__V1__ServerMessage *msg;
    struct sg_key_result *results;
    const char **stat_names;
    uint64_t *stat_values;
};

const char *sg_code_name(int code)
{
    switch (code) {
    case SG_OK:
        return "OK";
    case SG_NOT_FOUND:
        return "NOT_FOUND";
    case SG_NOT_APPLIED:
        return "NOT_APPLIED";
    case SG_LEASE_GRANTED:
        return "LEASE_GRANTED";
    case SG_LEASE_WAIT:
        return "LEASE_WAIT";
    case SG_BAD_FRAME:
        return "BAD_FRAME";
    case SG_FRAME_TOO_LARGE:
        return "FRAME_TOO_LARGE";
    case SG_HANDSHAKE_REQUIRED:
        return "HANDSHAKE_REQUIRED";
    case SG_UNSUPPORTED_VERSION:
        return "UNSUPPORTED_VERSION";
    case SG_AUTH_FAILED:
        return "AUTH_FAILED";
    case SG_TOO_MANY_CONNECTIONS:
        return "TOO_MANY_CONNECTIONS";
    case SG_SHUTTING_DOWN:
        return "SHUTTING_DOWN";
    case SG_OUTPUT_LIMIT:
        return "OUTPUT_LIMIT";
    case SG_UNKNOWN_OP:
        return "UNKNOWN_OP";
    case SG_INVALID_ARGUMENT:
        return "INVALID_ARGUMENT";
    case SG_INVALID_KEY:
        return "INVALID_KEY";
    case SG_KEY_TOO_LARGE:
        return "KEY_TOO_LARGE";
    case SG_VALUE_TOO_LARGE:
        return "VALUE_TOO_LARGE";
    case SG_BATCH_TOO_LARGE:
        return "BATCH_TOO_LARGE";
    case SG_UNKNOWN_KEYSPACE:
        return "UNKNOWN_KEYSPACE";
    case SG_TTL_OUT_OF_RANGE:
        return "TTL_OUT_OF_RANGE";
    case SG_LEASE_INVALID:
        return "LEASE_INVALID";
    case SG_VERSION_CONFLICT:
        return "VERSION_CONFLICT";
    case SG_TIMEOUT:
        return "TIMEOUT";
    case SG_SHARD_UNAVAILABLE:
        return "SHARD_UNAVAILABLE";
    case SG_CLUSTER_DOWN:
        return "CLUSTER_DOWN";
    case SG_BACKEND_ERROR:
        return "BACKEND_ERROR";
    case SG_CORRUPT_VALUE:
        return "CORRUPT_VALUE";
    case SG_INTERNAL:
        return "INTERNAL";
    case SG_CLIENT_IO:
        return "CLIENT_IO";
    case SG_CLIENT_PROTOCOL:
        return "CLIENT_PROTOCOL";
    default:
        return "UNKNOWN";
    }
}

static const char *sg_str_or_empty(const char *s)
{
    return s ? s : "";
}

/* Fill the public view from a Response; arrays are allocated in box. */
static void sg_response_fill(struct sg_response_box *b, const Slotgate__V1__Response *m)
{
    struct sg_response *r = &b->pub;
    size_t i;

    r->id = m->id;
    r->code = (int)m->code;
    r->message = sg_str_or_empty(m->message);
    r->value = m->value.data;
    r->value_len = m->value.len;
    r->count = m->count;
    r->lease = m->lease.data;
    r->lease_len = m->lease.len;
    r->retry_after_ms = m->retry_after_ms;
    r->version = m->version;
    if (m->n_results > 0) {
        b->results = sg_xmalloc(m->n_results * sizeof(*b->results));
        for (i = 0; i < m->n_results; i++) {
            b->results[i].code = (int)m->results[i]->code;
            b->results[i].value = m->results[i]->value.data;
            b->results[i].value_len = m->results[i]->value.len;
            b->results[i].message = sg_str_or_empty(m->results[i]->message);
        }
        r->n_results = m->n_results;
        r->results = b->results;
    }
    if (m->n_stats > 0) {
        b->stat_names = sg_xmalloc(m->n_stats * sizeof(*b->stat_names));
        b->stat_values = sg_xmalloc(m->n_stats * sizeof(*b->stat_values));
        for (i = 0; i < m->n_stats; i++) {
            b->stat_names[i] = sg_str_or_empty(m->stats[i]->key);
            b->stat_values[i] = m->stats[i]->value;
        }
        r->n_stats = m->n_stats;
        r->stat_names = b->stat_names;
        r->stat_values = b->stat_values;
    }
}

/*
 * Wrap a decoded ServerMessage carrying a Response or a ConnectionError
 * (the latter becomes a response with id 0 and the error's code). Takes
 * ownership of msg; the result is freed with sg_response_free. Returns NULL
 * (and frees msg) for any other message kind.
 */
struct sg_response *sg_response_wrap(Slotgate__V1__ServerMessage *msg)
{
    struct sg_response_box *b;

    if (msg->msg_case != SLOTGATE__V1__SERVER_MESSAGE__MSG_RESPONSE &&
        msg->msg_case != SLOTGATE__V1__SERVER_MESSAGE__MSG_ERROR) {
        slotgate__v1__server_message__free_unpacked(msg, NULL);
        return NULL;
    }
    b = sg_xmalloc(sizeof(*b));
    memset(b, 0, sizeof(*b));
    b->msg = msg;
    b->pub.priv_ = b;
    b->pub.message = "";
    if (msg->msg_case == SLOTGATE__V1__SERVER_MESSAGE__MSG_RESPONSE && msg->response != NULL) {
        sg_response_fill(b, msg->response);
    } else if (msg->msg_case == SLOTGATE__V1__SERVER_MESSAGE__MSG_ERROR && msg->error != NULL) {
        /* A ConnectionError must never read as success. */
        b->pub.code = msg->error->code ? (int)msg->error->code : SG_CLIENT_PROTOCOL;
        b->pub.message = sg_str_or_empty(msg->error->message);
    }
    return &b->pub;
}

void sg_response_free(struct sg_response *r)
{
    struct sg_response_box *b;

    if (r == NULL)
        return;
    b = r->priv_;
    slotgate__v1__server_message__free_unpacked(b->msg, NULL);
    free(b->results);
    free(b->stat_names);
    free(b->stat_values);
    free(b);
}

/*
 * A response the client makes up for request id (a passed client deadline, a
 * lost connection): encoded and decoded like a server's, so it is owned and
 * freed exactly like one.
 */
struct sg_response *sg_response_synth(uint64_t id, int code, const char *message)
{
    Slotgate__V1__Response resp = SLOTGATE__V1__RESPONSE__INIT;
    Slotgate__V1__ServerMessage m = SLOTGATE__V1__SERVER_MESSAGE__INIT;
    Slotgate__V1__ServerMessage *msg;
    struct sg_response *r;
    uint8_t *buf;
    size_t len;

    resp.id = id;
    resp.code = (Slotgate__V1__Code)code;
    resp.message = (char *)message;
    m.msg_case = SLOTGATE__V1__SERVER_MESSAGE__MSG_RESPONSE;
    m.response = &resp;
    len = slotgate__v1__server_message__get_packed_size(&m);
    buf = sg_xmalloc(len);
    slotgate__v1__server_message__pack(&m, buf);
    msg = slotgate__v1__server_message__unpack(NULL, len, buf);
    free(buf);
    if (msg == NULL) {
        fprintf(stderr, "libslotgate: cannot decode a response it encoded\n");
        abort();
    }
    r = sg_response_wrap(msg);
    r->local = 1;
    return r;
}

int sg_decode_frame_len(const uint8_t *buf, size_t len, size_t *body_len)
{
    if (len < 4)
        return 0;
    *body_len =
        (size_t)((uint32_t)buf[0] << 24 | (uint32_t)buf[1] << 16 | (uint32_t)buf[2] << 8 | buf[3]);
    return 1;
}

/*
 * Decode one ServerMessage body. A Response or ConnectionError becomes a
 * reply in *out; a HelloReply fills *limits (if given) and leaves *out NULL.
 */
int sg_decode_response(const uint8_t *body, size_t len, struct sg_response **out,
                       enum sg_msg_kind *kind, struct sg_limits *limits)
{
    Slotgate__V1__ServerMessage *msg = slotgate__v1__server_message__unpack(NULL, len, body);
    const Slotgate__V1__Limits *l;

    *out = NULL;
    if (msg == NULL)
        return -1;
    if (msg->msg_case == SLOTGATE__V1__SERVER_MESSAGE__MSG_HELLO_REPLY) {
        if (kind)
            *kind = SG_MSG_HELLO_REPLY;
        l = msg->hello_reply ? msg->hello_reply->limits : NULL;
        if (limits) {
            memset(limits, 0, sizeof(*limits));
            if (l) {
                limits->max_frame_bytes = l->max_frame_bytes;
                limits->max_key_bytes = l->max_key_bytes;
                limits->max_value_bytes = l->max_value_bytes;
                limits->max_batch_keys = l->max_batch_keys;
                limits->max_inflight = l->max_inflight;
                limits->default_deadline_ms = l->default_deadline_ms;
                limits->max_batch_bytes = l->max_batch_bytes;
            }
        }
        slotgate__v1__server_message__free_unpacked(msg, NULL);
        return 0;
    }
    if (kind)
        *kind = msg->msg_case == SLOTGATE__V1__SERVER_MESSAGE__MSG_ERROR ? SG_MSG_CONNECTION_ERROR
                                                                         : SG_MSG_RESPONSE;
    *out = sg_response_wrap(msg);
    return *out != NULL ? 0 : -1;
}
