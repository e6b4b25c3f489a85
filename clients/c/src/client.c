/*
 * client.c - one slotgate connection: framing, handshake, and the calls.
 *
 * Frames are read into one growable buffer (large reads, no per-byte
 * syscalls) and decoded only when complete. Responses that arrive while
 * sg_call waits for a different id are parked in a FIFO that
 * sg_client_recv drains first, so blocking and pipelined use can be mixed.
 */
#include <poll.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "internal.h"

#define SG_READ_CHUNK 16384

struct sg_client {
    struct sg_transport t;
    int timeout_ms;
    uint8_t *rbuf;
    size_t rpos, rlen, rcap;
    int closed;  /* no further writes: I/O failure or ConnectionError seen */
    int dead;    /* the stream is out of sync: no further reads either */
    int eof;     /* the server closed its side; buffered frames remain */
    int errcode; /* SG_CLIENT_IO or SG_CLIENT_PROTOCOL for the last failure */
    char errstr[256];
    struct sg_limits limits;
    char *server_version;
    uint64_t next_id;
    struct sg_response **queue; /* ring of parked responses */
    size_t qhead, qlen, qcap;
};

static void sg_client_fail(struct sg_client *c, int code, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* Record a failure; I/O and protocol failures both end the connection. */
static void sg_client_fail(struct sg_client *c, int code, const char *fmt, ...)
{
    va_list ap;

    va_start(ap, fmt);
    vsnprintf(c->errstr, sizeof(c->errstr), fmt, ap);
    va_end(ap);
    c->errcode = code;
    c->closed = 1;
}

static int64_t sg_client_deadline(const struct sg_client *c)
{
    return sg_now_ms() + c->timeout_ms;
}

/* Make room for at least want more bytes at the end of the read buffer. */
static void sg_client_reserve(struct sg_client *c, size_t want)
{
    if (c->rpos > 0 && (c->rpos == c->rlen || c->rcap - c->rlen < want)) {
        memmove(c->rbuf, c->rbuf + c->rpos, c->rlen - c->rpos);
        c->rlen -= c->rpos;
        c->rpos = 0;
    }
    if (c->rcap - c->rlen < want) {
        size_t cap = c->rcap ? c->rcap : SG_READ_CHUNK;

        while (cap - c->rlen < want)
            cap *= 2;
        c->rbuf = sg_xrealloc(c->rbuf, cap);
        c->rcap = cap;
    }
}

/*
 * One non-blocking read into the buffer. Returns 1 if bytes arrived, 0 if
 * the transport would block (*io says on what), -1 on error or EOF (the
 * client is then failed or marked eof).
 */
static int sg_client_read_once(struct sg_client *c, size_t want, enum sg_io *io)
{
    size_t n = 0;

    sg_client_reserve(c, want < SG_READ_CHUNK ? SG_READ_CHUNK : want);
    *io = sg_transport_read(&c->t, c->rbuf + c->rlen, c->rcap - c->rlen, &n);
    switch (*io) {
    case SG_IO_DONE:
        c->rlen += n;
        return 1;
    case SG_IO_WANT_READ:
    case SG_IO_WANT_WRITE:
        return 0;
    case SG_IO_EOF:
        c->eof = 1;
        sg_client_fail(c, SG_CLIENT_IO, "connection closed by server");
        return -1;
    default:
        sg_client_fail(c, SG_CLIENT_IO, "%s", c->t.err);
        return -1;
    }
}

/* Block until more bytes arrive in the buffer or the deadline passes. */
static int sg_client_fill(struct sg_client *c, size_t want, int64_t deadline)
{
    enum sg_io io;
    int rc;

    if (c->eof || c->t.fd < 0) {
        sg_client_fail(c, SG_CLIENT_IO, "connection closed by server");
        return -1;
    }
    for (;;) {
        rc = sg_client_read_once(c, want, &io);
        if (rc != 0)
            return rc > 0 ? 0 : -1;
        if (sg_transport_wait(&c->t, io == SG_IO_WANT_WRITE ? POLLOUT : POLLIN, deadline, NULL) <
            0) {
            /* A timeout mid-frame is recoverable: the partial bytes stay. */
            snprintf(c->errstr, sizeof(c->errstr), "%s", c->t.err);
            c->errcode = SG_CLIENT_IO;
            return -1;
        }
    }
}

/*
 * Decode the next complete ServerMessage, reading as needed. On success
 * *out is a message the caller owns. Frames over SG_CLIENT_MAX_FRAME or that
 * do not decode fail the client with SG_CLIENT_PROTOCOL.
 */
static int sg_client_read_message(struct sg_client *c, int64_t deadline,
                                  Slotgate__V1__ServerMessage **out)
{
    const uint8_t *p;
    size_t avail;
    uint32_t len;

    if (c->dead) {
        c->errcode = SG_CLIENT_PROTOCOL;
        return -1;
    }
    for (;;) {
        avail = c->rlen - c->rpos;
        p = c->rbuf + c->rpos;
        if (avail >= 4) {
            len = (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
            if (len > SG_CLIENT_MAX_FRAME) {
                sg_client_fail(c, SG_CLIENT_PROTOCOL,
                               "server frame of %u bytes exceeds the 64 MiB limit", len);
                c->dead = 1;
                return -1;
            }
            if (avail - 4 >= len) {
                *out = slotgate__v1__server_message__unpack(NULL, len, p + 4);
                c->rpos += 4 + (size_t)len;
                if (*out == NULL) {
                    sg_client_fail(c, SG_CLIENT_PROTOCOL,
                                   "server sent a frame that does not decode");
                    c->dead = 1;
                    return -1;
                }
                return 0;
            }
            if (sg_client_fill(c, 4 + (size_t)len - avail, deadline) < 0)
                return -1;
        } else if (sg_client_fill(c, 4 - avail, deadline) < 0) {
            return -1;
        }
    }
}

/*
 * Write a whole frame before the deadline. While the socket is full, any
 * readable input is pulled into the read buffer so that a server blocked on
 * writing responses cannot deadlock against us. A failure here leaves a
 * partial frame on the wire, so the client is closed.
 */
static int sg_client_write_all(struct sg_client *c, const uint8_t *buf, size_t len,
                               int64_t deadline)
{
    size_t off = 0, n;
    enum sg_io io;
    short events, revents;

    if (c->closed) {
        if (c->errstr[0] == '\0')
            snprintf(c->errstr, sizeof(c->errstr), "connection is closed");
        c->errcode = SG_CLIENT_IO;
        return -1;
    }
    while (off < len) {
        n = 0;
        io = sg_transport_write(&c->t, buf + off, len - off, &n);
        if (io == SG_IO_DONE) {
            off += n;
            continue;
        }
        if (io != SG_IO_WANT_READ && io != SG_IO_WANT_WRITE) {
            sg_client_fail(c, SG_CLIENT_IO, "%s",
                           io == SG_IO_EOF ? "connection closed by server" : c->t.err);
            return -1;
        }
        if (io == SG_IO_WANT_READ)
            events = POLLIN;
        else
            events = c->eof ? POLLOUT : (short)(POLLOUT | POLLIN);
        revents = 0;
        if (sg_transport_wait(&c->t, events, deadline, &revents) < 0) {
            sg_client_fail(c, SG_CLIENT_IO, "write: %s", c->t.err);
            return -1;
        }
        if (io == SG_IO_WANT_WRITE && (revents & POLLIN) && !(revents & POLLOUT)) {
            /* Errors surface on the next write; EOF keeps buffered frames. */
            sg_client_reserve(c, SG_READ_CHUNK);
            n = 0;
            io = sg_transport_read(&c->t, c->rbuf + c->rlen, c->rcap - c->rlen, &n);
            if (io == SG_IO_DONE)
                c->rlen += n;
            else if (io == SG_IO_EOF)
                c->eof = 1;
        }
    }
    return 0;
}

static void sg_client_queue_push(struct sg_client *c, struct sg_response *r)
{
    size_t i, cap;
    struct sg_response **q;

    if (c->qlen == c->qcap) {
        cap = c->qcap ? c->qcap * 2 : 16;
        q = sg_xmalloc(cap * sizeof(*q));
        for (i = 0; i < c->qlen; i++)
            q[i] = c->queue[(c->qhead + i) % c->qcap];
        free(c->queue);
        c->queue = q;
        c->qcap = cap;
        c->qhead = 0;
    }
    c->queue[(c->qhead + c->qlen) % c->qcap] = r;
    c->qlen++;
}

static struct sg_response *sg_client_queue_pop(struct sg_client *c)
{
    struct sg_response *r;

    if (c->qlen == 0)
        return NULL;
    r = c->queue[c->qhead];
    c->qhead = (c->qhead + 1) % c->qcap;
    c->qlen--;
    return r;
}

/*
 * Read the next Response or ConnectionError off the wire as a response
 * the caller owns. A ConnectionError closes the client (the server hangs
 * up after sending it).
 */
static int sg_client_read_response(struct sg_client *c, int64_t deadline, struct sg_response **out)
{
    Slotgate__V1__ServerMessage *msg;
    int is_error;

    if (sg_client_read_message(c, deadline, &msg) < 0)
        return -1;
    is_error = msg->msg_case == SLOTGATE__V1__SERVER_MESSAGE__MSG_ERROR;
    *out = sg_response_wrap(msg);
    if (*out == NULL) {
        sg_client_fail(c, SG_CLIENT_PROTOCOL, "server sent an unexpected message kind");
        c->dead = 1;
        return -1;
    }
    if (is_error) {
        snprintf(c->errstr, sizeof(c->errstr), "server closed the connection: %s: %s",
                 sg_code_name((*out)->code), (*out)->message);
        c->errcode = SG_CLIENT_IO;
        c->closed = 1;
    }
    return 0;
}

/* Hello exchange: send Hello, require HelloReply, keep limits/version. */
static int sg_client_handshake(struct sg_client *c, const struct sg_client_options *opt, int *code,
                               char *err, size_t errlen)
{
    Slotgate__V1__ServerMessage *msg;
    const Slotgate__V1__Limits *l;
    int64_t deadline = sg_client_deadline(c);
    uint8_t *frame;
    size_t len;

    frame = sg_frame_hello(opt->client_name ? opt->client_name : "libslotgate", opt->auth_token,
                           opt->auth_token_len, &len);
    if (frame == NULL || sg_client_write_all(c, frame, len, deadline) < 0 ||
        sg_client_read_message(c, deadline, &msg) < 0) {
        free(frame);
        if (code)
            *code = c->errcode ? c->errcode : SG_CLIENT_IO;
        snprintf(err, errlen, "handshake: %s", c->errstr);
        return -1;
    }
    free(frame);
    if (msg->msg_case == SLOTGATE__V1__SERVER_MESSAGE__MSG_ERROR) {
        if (code)
            *code = (int)msg->error->code;
        snprintf(err, errlen, "server refused the connection: %s%s%s",
                 sg_code_name((int)msg->error->code),
                 msg->error->message && msg->error->message[0] ? ": " : "",
                 msg->error->message ? msg->error->message : "");
        slotgate__v1__server_message__free_unpacked(msg, NULL);
        return -1;
    }
    if (msg->msg_case != SLOTGATE__V1__SERVER_MESSAGE__MSG_HELLO_REPLY) {
        if (code)
            *code = SG_CLIENT_PROTOCOL;
        snprintf(err, errlen, "handshake: server did not answer Hello with HelloReply");
        slotgate__v1__server_message__free_unpacked(msg, NULL);
        return -1;
    }
    l = msg->hello_reply->limits;
    if (l != NULL) {
        c->limits.max_frame_bytes = l->max_frame_bytes;
        c->limits.max_key_bytes = l->max_key_bytes;
        c->limits.max_value_bytes = l->max_value_bytes;
        c->limits.max_batch_keys = l->max_batch_keys;
        c->limits.max_inflight = l->max_inflight;
        c->limits.default_deadline_ms = l->default_deadline_ms;
        c->limits.max_batch_bytes = l->max_batch_bytes;
    }
    c->server_version =
        sg_xstrdup(msg->hello_reply->server_version ? msg->hello_reply->server_version : "");
    slotgate__v1__server_message__free_unpacked(msg, NULL);
    return 0;
}

/*
 * Connect, run TLS and the Hello. err may be NULL; *code (if given) is 0 on
 * success, the server's code when it refused the Hello, else SG_CLIENT_IO or
 * SG_CLIENT_PROTOCOL. On success the caller owns *out (sg_client_free).
 */
int sg_client_connect(const struct sg_client_options *opt, struct sg_client **out, int *code,
                      char *err, size_t errlen)
{
    struct sg_client_options defaults;
    struct sg_client *c;
    char scratch[1];

    *out = NULL;
    if (code)
        *code = 0;
    if (err == NULL || errlen == 0) {
        err = scratch;
        errlen = sizeof(scratch);
    }
    err[0] = '\0';
    if (opt == NULL) {
        memset(&defaults, 0, sizeof(defaults));
        opt = &defaults;
    }
    c = sg_xmalloc(sizeof(*c));
    memset(c, 0, sizeof(*c));
    c->t.fd = -1;
    c->timeout_ms = opt->timeout_ms > 0 ? opt->timeout_ms : 5000;
    c->next_id = 1;
    if (sg_transport_open(&c->t, opt, sg_client_deadline(c)) < 0) {
        if (code)
            *code = SG_CLIENT_IO;
        snprintf(err, errlen, "%s", c->t.err);
        sg_client_free(c);
        return -1;
    }
    if (!opt->skip_hello && sg_client_handshake(c, opt, code, err, errlen) < 0) {
        sg_client_free(c);
        return -1;
    }
    if (c->server_version == NULL)
        c->server_version = sg_xstrdup("");
    *out = c;
    return 0;
}

void sg_client_free(struct sg_client *c)
{
    struct sg_response *r;

    if (c == NULL)
        return;
    while ((r = sg_client_queue_pop(c)) != NULL)
        sg_response_free(r);
    sg_transport_close(&c->t);
    free(c->queue);
    free(c->rbuf);
    free(c->server_version);
    free(c);
}

const struct sg_limits *sg_client_limits(const struct sg_client *c)
{
    return &c->limits;
}

const char *sg_client_server_version(const struct sg_client *c)
{
    return c->server_version;
}

const char *sg_client_errstr(const struct sg_client *c)
{
    return c->errstr;
}

int sg_client_fd(const struct sg_client *c)
{
    return c->t.fd;
}

/*
 * True when sg_client_recv can return without the socket becoming readable:
 * a parked response, a complete frame already buffered, or TLS plaintext
 * held inside OpenSSL. Pipelined callers that poll() sg_client_fd must
 * check this first, or they can wait on data that has already arrived.
 */
int sg_client_pending(const struct sg_client *c)
{
    size_t avail = c->rlen - c->rpos;
    const uint8_t *p = c->rbuf + c->rpos;
    uint32_t len;

    if (c->qlen > 0 || sg_transport_pending(&c->t))
        return 1;
    if (avail < 4)
        return 0;
    len = (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
    return len > SG_CLIENT_MAX_FRAME || avail - 4 >= len;
}

uint64_t sg_client_next_id(struct sg_client *c)
{
    return c->next_id++;
}

int sg_client_send(struct sg_client *c, const struct sg_request *r)
{
    uint8_t *frame;
    size_t len;
    int rc;

    frame = sg_frame_request(r, &len);
    if (frame == NULL) {
        snprintf(c->errstr, sizeof(c->errstr), "request does not fit in one frame");
        c->errcode = SG_CLIENT_PROTOCOL;
        return -1;
    }
    rc = sg_client_write_all(c, frame, len, sg_client_deadline(c));
    free(frame);
    return rc;
}

int sg_client_recv(struct sg_client *c, struct sg_response **out)
{
    *out = sg_client_queue_pop(c);
    if (*out != NULL)
        return 0;
    return sg_client_read_response(c, sg_client_deadline(c), out);
}

int sg_client_write_raw(struct sg_client *c, const void *buf, size_t len)
{
    return sg_client_write_all(c, buf, len, sg_client_deadline(c));
}

/*
 * Send r and wait for the response carrying r's id; responses to other ids
 * are parked for sg_client_recv. A ConnectionError ends the wait: it is
 * returned in *out (id 0) and its code is the result. On SG_CLIENT_IO or
 * SG_CLIENT_PROTOCOL *out is NULL.
 */
int sg_call(struct sg_client *c, const struct sg_request *r, struct sg_response **out)
{
    int64_t deadline = sg_client_deadline(c);
    struct sg_response *resp;
    uint8_t *frame;
    size_t len;
    int rc;

    *out = NULL;
    frame = sg_frame_request(r, &len);
    if (frame == NULL) {
        snprintf(c->errstr, sizeof(c->errstr), "request does not fit in one frame");
        c->errcode = SG_CLIENT_PROTOCOL;
        return SG_CLIENT_PROTOCOL;
    }
    rc = sg_client_write_all(c, frame, len, deadline);
    free(frame);
    if (rc < 0)
        return c->errcode;
    for (;;) {
        if (sg_client_read_response(c, deadline, &resp) < 0)
            return c->errcode;
        if (resp->id == r->id || (resp->id == 0 && c->closed)) {
            *out = resp;
            return resp->code;
        }
        sg_client_queue_push(c, resp);
    }
}

/* Build a one-key request with the next id; the caller owns it. */
static struct sg_request *sg_client_key_request(struct sg_client *c, int op, const char *keyspace,
                                                const void *key, size_t klen)
{
    struct sg_request *r = sg_request_new(sg_client_next_id(c), op);

    if (keyspace)
        sg_request_keyspace(r, keyspace);
    sg_request_add_key(r, key, klen);
    return r;
}

/* Run r through sg_call and return only the code; r is consumed. */
static int sg_client_call_code(struct sg_client *c, struct sg_request *r)
{
    struct sg_response *resp;
    int rc = sg_call(c, r, &resp);

    sg_response_free(resp);
    sg_request_free(r);
    return rc;
}

int sg_ping(struct sg_client *c)
{
    return sg_client_call_code(c, sg_request_new(sg_client_next_id(c), SG_OP_PING));
}

int sg_get(struct sg_client *c, const char *keyspace, const void *key, size_t klen, void **val,
           size_t *vlen)
{
    struct sg_request *r = sg_client_key_request(c, SG_OP_GET, keyspace, key, klen);
    struct sg_response *resp;
    int rc;

    *val = NULL;
    *vlen = 0;
    rc = sg_call(c, r, &resp);
    sg_request_free(r);
    if (rc == SG_OK && resp != NULL) {
        /* One spare NUL byte so text values can be printed directly. */
        *val = sg_xmalloc(resp->value_len + 1);
        if (resp->value_len)
            memcpy(*val, resp->value, resp->value_len);
        ((char *)*val)[resp->value_len] = '\0';
        *vlen = resp->value_len;
    }
    sg_response_free(resp);
    return rc;
}

int sg_set(struct sg_client *c, const char *keyspace, const void *key, size_t klen, const void *val,
           size_t vlen, uint64_t ttl_ms, int cond)
{
    struct sg_request *r = sg_client_key_request(c, SG_OP_SET, keyspace, key, klen);

    sg_request_add_value(r, val, vlen);
    sg_request_ttl(r, ttl_ms);
    sg_request_condition(r, cond);
    return sg_client_call_code(c, r);
}

int sg_del(struct sg_client *c, const char *keyspace, const void *key, size_t klen)
{
    return sg_client_call_code(c, sg_client_key_request(c, SG_OP_DELETE, keyspace, key, klen));
}

int sg_expire(struct sg_client *c, const char *keyspace, const void *key, size_t klen,
              uint64_t ttl_ms)
{
    struct sg_request *r = sg_client_key_request(c, SG_OP_EXPIRE, keyspace, key, klen);

    sg_request_ttl(r, ttl_ms);
    return sg_client_call_code(c, r);
}
