/*
 * bench_wire - hand-rolled encoder and in-place scanner for slotgate frames.
 *
 * The load generator sends hundreds of thousands of requests a second from a
 * core it shares with the proxy, so requests are written field by field into
 * space reserved in the output evbuffer (large values are added by
 * reference), and responses are read through evbuffer_peek without
 * unpacking them into protobuf-c structs. Hello goes through protobuf-c: it
 * is sent once per connection.
 */
#include "bench_wire.h"

#include <stdio.h>
#include <string.h>

#include "slotgate.pb-c.h"

/* ---- encoding ------------------------------------------------------------ */

static size_t wire_varint_len(uint64_t v)
{
    size_t n = 1;
    while (v >= 0x80) {
        v >>= 7;
        n++;
    }
    return n;
}

static uint8_t *wire_put_varint(uint8_t *p, uint64_t v)
{
    while (v >= 0x80) {
        *p++ = (uint8_t)(v | 0x80);
        v >>= 7;
    }
    *p++ = (uint8_t)v;
    return p;
}

static size_t wire_bytes_field_len(size_t len)
{
    return 1 + wire_varint_len(len) + len;
}

/* Writer over space reserved in an evbuffer. `small_left` is how many bytes
 * still to be written by copy; large values bypass the reservation and are
 * appended by reference between two reservations. */
struct wire_writer {
    struct evbuffer *out;
    struct evbuffer_iovec vec;
    uint8_t *p;
    size_t small_left;
};

static int wire_writer_reserve(struct wire_writer *w)
{
    if (w->small_left == 0) {
        w->p = NULL;
        return 0;
    }
    if (evbuffer_reserve_space(w->out, (ev_ssize_t)w->small_left, &w->vec, 1) != 1)
        return -1;
    w->p = w->vec.iov_base;
    return 0;
}

static int wire_writer_commit(struct wire_writer *w)
{
    if (w->p == NULL)
        return 0;
    size_t n = (size_t)(w->p - (uint8_t *)w->vec.iov_base);
    w->vec.iov_len = n;
    w->small_left -= n;
    w->p = NULL;
    return evbuffer_commit_space(w->out, &w->vec, 1);
}

/* Write one bytes field; a long value is committed around and referenced. */
static int wire_writer_bytes(struct wire_writer *w, uint8_t tag, struct sg_bench_slice s)
{
    *w->p++ = tag;
    w->p = wire_put_varint(w->p, s.len);
    if (s.len >= SG_BENCH_REF_THRESHOLD) {
        if (wire_writer_commit(w) != 0 ||
            evbuffer_add_reference(w->out, s.ptr, s.len, NULL, NULL) != 0 ||
            wire_writer_reserve(w) != 0)
            return -1;
        return 0;
    }
    memcpy(w->p, s.ptr, s.len);
    w->p += s.len;
    return 0;
}

int sg_bench_wire_put_request(struct evbuffer *out, const struct sg_bench_req *req)
{
    size_t body = 1 + wire_varint_len(req->id) + 1 + wire_varint_len((uint64_t)req->op);
    size_t referenced = 0;

    if (req->keyspace.len > 0)
        body += wire_bytes_field_len(req->keyspace.len);
    for (size_t i = 0; i < req->nkeys; i++) {
        body += wire_bytes_field_len(req->keys[i].len);
        if (req->values != NULL) {
            body += wire_bytes_field_len(req->values[i].len);
            if (req->values[i].len >= SG_BENCH_REF_THRESHOLD)
                referenced += req->values[i].len;
        }
    }
    size_t msg = 1 + wire_varint_len(body) + body;
    if (msg > UINT32_MAX)
        return -1;

    struct wire_writer w = {.out = out, .small_left = 4 + msg - referenced};
    if (wire_writer_reserve(&w) != 0)
        return -1;
    w.p[0] = (uint8_t)(msg >> 24);
    w.p[1] = (uint8_t)(msg >> 16);
    w.p[2] = (uint8_t)(msg >> 8);
    w.p[3] = (uint8_t)msg;
    w.p += 4;
    *w.p++ = 0x12; /* ClientMessage.request, length-delimited */
    w.p = wire_put_varint(w.p, body);
    *w.p++ = 0x08; /* Request.id */
    w.p = wire_put_varint(w.p, req->id);
    *w.p++ = 0x10; /* Request.op */
    w.p = wire_put_varint(w.p, (uint64_t)req->op);
    if (req->keyspace.len > 0 && wire_writer_bytes(&w, 0x1a, req->keyspace) != 0)
        return -1;
    for (size_t i = 0; i < req->nkeys; i++)
        if (wire_writer_bytes(&w, 0x22, req->keys[i]) != 0)
            return -1;
    if (req->values != NULL)
        for (size_t i = 0; i < req->nkeys; i++)
            if (wire_writer_bytes(&w, 0x2a, req->values[i]) != 0)
                return -1;
    return wire_writer_commit(&w);
}

int sg_bench_wire_put_hello(struct evbuffer *out, const char *client_name)
{
    Slotgate__V1__Hello hello = SLOTGATE__V1__HELLO__INIT;
    Slotgate__V1__ClientMessage cm = SLOTGATE__V1__CLIENT_MESSAGE__INIT;
    uint8_t buf[512];

    hello.protocol_version = 1;
    hello.client_name = (char *)client_name;
    cm.msg_case = SLOTGATE__V1__CLIENT_MESSAGE__MSG_HELLO;
    cm.hello = &hello;
    size_t n = slotgate__v1__client_message__get_packed_size(&cm);
    if (n + 4 > sizeof buf)
        return -1;
    slotgate__v1__client_message__pack(&cm, buf + 4);
    buf[0] = (uint8_t)(n >> 24);
    buf[1] = (uint8_t)(n >> 16);
    buf[2] = (uint8_t)(n >> 8);
    buf[3] = (uint8_t)n;
    return evbuffer_add(out, buf, n + 4);
}

/* ---- scanning -------------------------------------------------------------- */

/* Cursor over the chunks of one frame. `pos` counts bytes consumed from the
 * start of the frame body; every read is checked against `end`. */
struct wire_cursor {
    const struct evbuffer_iovec *vec;
    int nvec;
    int i;
    size_t off;
    size_t pos;
};

static int wire_cursor_byte(struct wire_cursor *c, size_t end, uint8_t *b)
{
    if (c->pos >= end)
        return -1;
    while (c->i < c->nvec && c->off >= c->vec[c->i].iov_len) {
        c->i++;
        c->off = 0;
    }
    if (c->i >= c->nvec)
        return -1;
    *b = ((const uint8_t *)c->vec[c->i].iov_base)[c->off++];
    c->pos++;
    return 0;
}

static int wire_cursor_skip(struct wire_cursor *c, size_t end, uint64_t n)
{
    if (n > end - c->pos)
        return -1;
    while (n > 0) {
        if (c->i >= c->nvec)
            return -1;
        size_t avail = c->vec[c->i].iov_len - c->off;
        if (avail == 0) {
            c->i++;
            c->off = 0;
            continue;
        }
        size_t take = n < avail ? (size_t)n : avail;
        c->off += take;
        c->pos += take;
        n -= take;
    }
    return 0;
}

static int wire_cursor_varint(struct wire_cursor *c, size_t end, uint64_t *v)
{
    uint64_t r = 0;
    for (int shift = 0; shift < 64; shift += 7) {
        uint8_t b;
        if (wire_cursor_byte(c, end, &b) != 0)
            return -1;
        r |= (uint64_t)(b & 0x7f) << shift;
        if ((b & 0x80) == 0) {
            *v = r;
            return 0;
        }
    }
    return -1;
}

/* Read one tag; for length-delimited fields also the length, checked to fit. */
static int wire_cursor_tag(struct wire_cursor *c, size_t end, uint32_t *field, int *wt,
                           uint64_t *len)
{
    uint64_t tag;
    if (wire_cursor_varint(c, end, &tag) != 0)
        return -1;
    *field = (uint32_t)(tag >> 3);
    *wt = (int)(tag & 7);
    if (*wt == 2) {
        if (wire_cursor_varint(c, end, len) != 0 || *len > end - c->pos)
            return -1;
    }
    return 0;
}

static int wire_cursor_skip_value(struct wire_cursor *c, size_t end, int wt, uint64_t len)
{
    uint64_t v;
    switch (wt) {
    case 0:
        return wire_cursor_varint(c, end, &v);
    case 1:
        return wire_cursor_skip(c, end, 8);
    case 2:
        return wire_cursor_skip(c, end, len);
    case 5:
        return wire_cursor_skip(c, end, 4);
    default:
        return -1;
    }
}

/* Scan a message body of `len` bytes, storing varint fields 1..8 into
 * vals[field] and calling `sub` for length-delimited fields listed in
 * sub_mask. */
typedef int (*wire_sub_fn)(struct wire_cursor *c, size_t end, uint32_t field,
                           struct sg_bench_msg *msg);

static int wire_scan(struct wire_cursor *c, size_t end, uint64_t vals[8], uint32_t sub_mask,
                     wire_sub_fn sub, struct sg_bench_msg *msg)
{
    while (c->pos < end) {
        uint32_t field;
        int wt;
        uint64_t len = 0;
        if (wire_cursor_tag(c, end, &field, &wt, &len) != 0)
            return -1;
        if (wt == 0 && field < 8 && vals != NULL) {
            if (wire_cursor_varint(c, end, &vals[field]) != 0)
                return -1;
        } else if (wt == 2 && field < 32 && (sub_mask & (1u << field))) {
            if (sub(c, c->pos + (size_t)len, field, msg) != 0)
                return -1;
        } else if (wire_cursor_skip_value(c, end, wt, len) != 0) {
            return -1;
        }
    }
    return c->pos == end ? 0 : -1;
}

static int wire_scan_key_result(struct wire_cursor *c, size_t end, uint32_t field,
                                struct sg_bench_msg *msg)
{
    uint64_t vals[8] = {0};
    if (wire_scan(c, end, vals, 0, NULL, msg) != 0)
        return -1;
    msg->nresults++;
    if (vals[1] == 1)
        msg->key_misses++;
    if (vals[1] >= 100) {
        if (msg->key_errors++ == 0)
            msg->first_key_error = (int)vals[1];
    }
    return 0;
}

static int wire_scan_limits(struct wire_cursor *c, size_t end, uint32_t field,
                            struct sg_bench_msg *msg)
{
    uint64_t vals[8] = {0};
    if (wire_scan(c, end, vals, 0, NULL, msg) != 0)
        return -1;
    msg->max_batch_keys = (uint32_t)vals[4];
    msg->max_inflight = (uint32_t)vals[5];
    return 0;
}

static int wire_scan_server_field(struct wire_cursor *c, size_t end, uint32_t field,
                                  struct sg_bench_msg *msg)
{
    uint64_t vals[8] = {0};
    switch (field) {
    case 1: /* hello_reply */
        msg->kind = SG_BENCH_MSG_HELLO_REPLY;
        return wire_scan(c, end, NULL, 1u << 3, wire_scan_limits, msg);
    case 2: /* response */
        msg->kind = SG_BENCH_MSG_RESPONSE;
        if (wire_scan(c, end, vals, 1u << 5, wire_scan_key_result, msg) != 0)
            return -1;
        msg->id = vals[1];
        msg->code = (int)vals[2];
        return 0;
    case 3: /* error */
        msg->kind = SG_BENCH_MSG_CONN_ERROR;
        if (wire_scan(c, end, vals, 0, NULL, msg) != 0)
            return -1;
        msg->code = (int)vals[1];
        return 0;
    default:
        return wire_cursor_skip(c, end, end - c->pos);
    }
}

int sg_bench_wire_take(struct evbuffer *in, struct sg_bench_msg *msg)
{
    uint8_t hdr[4];
    size_t have = evbuffer_get_length(in);

    if (have < 4)
        return 0;
    evbuffer_copyout(in, hdr, 4);
    size_t len = (size_t)hdr[0] << 24 | (size_t)hdr[1] << 16 | (size_t)hdr[2] << 8 | hdr[3];
    if (len > SG_BENCH_MAX_FRAME)
        return -1;
    if (have < 4 + len)
        return 0;

    struct evbuffer_iovec stackvec[32];
    int n = evbuffer_peek(in, (ev_ssize_t)(4 + len), NULL, stackvec, 32);
    if (n > 32) {
        /* Too fragmented to walk from the stack array: make it contiguous. */
        if (evbuffer_pullup(in, (ev_ssize_t)(4 + len)) == NULL)
            return -1;
        n = evbuffer_peek(in, (ev_ssize_t)(4 + len), NULL, stackvec, 32);
    }
    struct wire_cursor c = {.vec = stackvec, .nvec = n};
    /* Step over the 4-byte header, then scan the body. */
    if (wire_cursor_skip(&c, 4, 4) != 0)
        return -1;
    c.pos = 0;
    memset(msg, 0, sizeof *msg);
    if (wire_scan(&c, len, NULL, (1u << 1) | (1u << 2) | (1u << 3), wire_scan_server_field, msg) !=
        0)
        return -1;
    evbuffer_drain(in, 4 + len);
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
