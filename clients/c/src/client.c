/*
 * client.c - one slotgate connection: framing, handshake, and the calls.
 *
 * Frames are read into one growable buffer (large reads, no per-byte
 * syscalls) and decoded only when complete. Responses that arrive while
 * sg_call waits for a different id are parked in a FIFO that
 * sg_client_recv drains first, so blocking and pipelined use can be mixed.
 *
 * Tracking mode (options reconnect / deadline_margin_ms) keeps a record of
 * every request in flight: its client deadline and, for a resend, its frame.
 * That is what lets the client resend after SHUTTING_DOWN, fail exactly the
 * requests a lost connection took with it, and time out a hung server.
 */
#include <errno.h>
#include <poll.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "internal.h"

#define SG_READ_CHUNK 16384
/* Reconnect rounds after SHUTTING_DOWN before unanswered requests fail. */
#define SG_RESEND_ROUNDS 5

/* A request sent and not yet answered (tracking mode). */
struct sg_pending {
    uint64_t id;
    uint8_t *frame; /* the encoded frame, kept for a resend (reconnect) */
    size_t len;
    int64_t deadline; /* client-side deadline, monotonic ms; 0 = none */
};

struct sg_conn {
    struct sg_client pub; /* err, errstr: first, so a context is a conn */
    struct sg_transport t;
    int timeout_ms;
    uint8_t *rbuf;
    size_t rpos, rlen, rcap;
    int closed; /* no further writes: I/O failure or ConnectionError seen */
    int dead;   /* the stream is out of sync: no further reads either */
    int eof;    /* the server closed its side; buffered frames remain */
    struct sg_limits limits;
    char *server_version;
    uint64_t next_id;
    struct sg_response **queue; /* ring of parked responses */
    size_t qhead, qlen, qcap;
    /* tracking mode */
    int track;                    /* reconnect || deadline_margin_ms > 0 */
    struct sg_client_options opt; /* own copy of the options, for reconnects */
    char *opt_strs[6];            /* the strings opt points to */
    uint8_t *opt_token;
    struct sg_pending *pend; /* in send order */
    size_t npend, cappend;
    int shutdown_seen;  /* this connection ended with SHUTTING_DOWN */
    int opt_skip_hello; /* tests: connect without the handshake */
    int checks;         /* local limit checks before sending */
    unsigned gen;       /* connections opened so far (async: fd reuse) */
    unsigned rnd;       /* backoff jitter */
};

static void sg_client_fail(struct sg_conn *c, int code, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static size_t sg_client_pend_earliest(const struct sg_conn *c);

/* Record a failure; I/O and protocol failures both end the connection. */
static void sg_client_fail(struct sg_conn *c, int code, const char *fmt, ...)
{
    va_list ap;

    va_start(ap, fmt);
    vsnprintf(c->pub.errstr, sizeof(c->pub.errstr), fmt, ap);
    va_end(ap);
    c->pub.err = code;
    c->closed = 1;
}

static int64_t sg_client_deadline(const struct sg_conn *c)
{
    return sg_now_ms() + c->timeout_ms;
}

/* Make room for at least want more bytes at the end of the read buffer. */
static void sg_client_reserve(struct sg_conn *c, size_t want)
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
static int sg_client_read_once(struct sg_conn *c, size_t want, enum sg_io *io)
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
static int sg_client_fill(struct sg_conn *c, size_t want, int64_t deadline)
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
            snprintf(c->pub.errstr, sizeof(c->pub.errstr), "%s", c->t.err);
            c->pub.err = SG_CLIENT_IO;
            return -1;
        }
    }
}

/*
 * Decode the next complete ServerMessage, reading as needed. On success
 * *out is a message the caller owns. Frames over SG_CLIENT_MAX_FRAME or that
 * do not decode fail the client with SG_CLIENT_PROTOCOL.
 */
static int sg_client_read_message(struct sg_conn *c, int64_t deadline,
                                  Slotgate__V1__ServerMessage **out)
{
    const uint8_t *p;
    size_t avail;
    uint32_t len;

    if (c->dead) {
        c->pub.err = SG_CLIENT_PROTOCOL;
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
static int sg_client_write_all(struct sg_conn *c, const uint8_t *buf, size_t len, int64_t deadline)
{
    size_t off = 0, n;
    enum sg_io io;
    short events, revents;

    if (c->closed) {
        if (c->pub.errstr[0] == '\0')
            snprintf(c->pub.errstr, sizeof(c->pub.errstr), "connection is closed");
        c->pub.err = SG_CLIENT_IO;
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

static void sg_client_queue_push(struct sg_conn *c, struct sg_response *r)
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

static struct sg_response *sg_client_queue_pop(struct sg_conn *c)
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
static int sg_client_read_response_ex(struct sg_conn *c, int64_t deadline, struct sg_response **out,
                                      int *conn_error)
{
    Slotgate__V1__ServerMessage *msg;
    int is_error;

    *conn_error = 0;
    if (sg_client_read_message(c, deadline, &msg) < 0)
        return -1;
    is_error = msg->msg_case == SLOTGATE__V1__SERVER_MESSAGE__MSG_ERROR;
    *conn_error = is_error;
    *out = sg_response_wrap(msg);
    if (*out == NULL) {
        sg_client_fail(c, SG_CLIENT_PROTOCOL, "server sent an unexpected message kind");
        c->dead = 1;
        return -1;
    }
    if (is_error) {
        snprintf(c->pub.errstr, sizeof(c->pub.errstr), "server closed the connection: %s: %s",
                 sg_code_name((*out)->code), (*out)->message);
        c->pub.err = SG_CLIENT_IO;
        c->closed = 1;
    }
    return 0;
}

static int sg_client_read_response(struct sg_conn *c, int64_t deadline, struct sg_response **out)
{
    int conn_error;

    return sg_client_read_response_ex(c, deadline, out, &conn_error);
}

/* Hello exchange: send Hello, require HelloReply, keep limits/version. */
static int sg_client_handshake(struct sg_conn *c, const struct sg_client_options *opt, int *code,
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
            *code = c->pub.err ? c->pub.err : SG_CLIENT_IO;
        snprintf(err, errlen, "handshake: %.200s", c->pub.errstr);
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
    free(c->server_version);
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
/* Keep a private copy of opt (strings included) for reconnects. */
static void sg_client_keep_options(struct sg_conn *c, const struct sg_client_options *opt)
{
    const char **fields[6];
    size_t i;

    c->opt = *opt;
    fields[0] = &c->opt.host;
    fields[1] = &c->opt.cacert;
    fields[2] = &c->opt.cert;
    fields[3] = &c->opt.key;
    fields[4] = &c->opt.sni;
    fields[5] = &c->opt.client_name;
    for (i = 0; i < 6; i++) {
        if (*fields[i] != NULL) {
            c->opt_strs[i] = sg_xstrdup(*fields[i]);
            *fields[i] = c->opt_strs[i];
        }
    }
    if (opt->auth_token != NULL && opt->auth_token_len > 0) {
        c->opt_token = sg_xmemdup(opt->auth_token, opt->auth_token_len);
        c->opt.auth_token = c->opt_token;
    }
}

/*
 * Open a connection (and run the Hello unless hello is 0). Always returns a
 * conn the caller owns; on failure pub.err / pub.errstr say why and the
 * transport is closed.
 */
struct sg_conn *sg_conn_open(const struct sg_client_options *opt, int hello)
{
    struct sg_client_options defaults;
    struct sg_conn *c;
    char err[256];
    int code = 0;

    if (opt == NULL) {
        memset(&defaults, 0, sizeof(defaults));
        opt = &defaults;
    }
    c = sg_xmalloc(sizeof(*c));
    memset(c, 0, sizeof(*c));
    c->t.fd = -1;
    c->timeout_ms = opt->timeout_ms > 0 ? opt->timeout_ms : 5000;
    c->next_id = 1;
    c->track = opt->reconnect || opt->deadline_margin_ms > 0;
    c->checks = !opt->no_local_checks;
    c->rnd = (unsigned)sg_now_ms() ^ (unsigned)(uintptr_t)c;
    sg_client_keep_options(c, opt);
    c->server_version = sg_xstrdup("");
    if (!hello)
        c->opt_skip_hello = 1;
    if (sg_transport_open(&c->t, opt, sg_client_deadline(c)) < 0) {
        c->pub.err = SG_ERR_IO;
        snprintf(c->pub.errstr, sizeof(c->pub.errstr), "%s", c->t.err);
        c->closed = 1;
        return c;
    }
    if (hello && sg_client_handshake(c, opt, &code, err, sizeof(err)) < 0) {
        sg_transport_close(&c->t);
        c->pub.err = code ? (enum sg_code)code : SG_ERR_IO;
        snprintf(c->pub.errstr, sizeof(c->pub.errstr), "%s", err);
        c->closed = 1;
        return c;
    }
    c->pub.err = SG_OK;
    c->pub.errstr[0] = '\0';
    return c;
}

struct sg_client *sg_client_connect(const struct sg_client_options *opt)
{
    return &sg_conn_open(opt, 1)->pub;
}

void sg_client_free(struct sg_client *pc)
{
    struct sg_conn *c = (struct sg_conn *)pc;
    struct sg_response *r;
    size_t i;

    if (c == NULL)
        return;
    while ((r = sg_client_queue_pop(c)) != NULL)
        sg_response_free(r);
    sg_transport_close(&c->t);
    for (i = 0; i < c->npend; i++)
        free(c->pend[i].frame);
    free(c->pend);
    for (i = 0; i < 6; i++)
        free(c->opt_strs[i]);
    free(c->opt_token);
    free(c->queue);
    free(c->rbuf);
    free(c->server_version);
    free(c);
}

const struct sg_limits *sg_client_limits(const struct sg_client *pc)
{
    const struct sg_conn *c = (const struct sg_conn *)pc;
    return &c->limits;
}

const char *sg_client_server_version(const struct sg_client *pc)
{
    const struct sg_conn *c = (const struct sg_conn *)pc;
    return c->server_version;
}

int sg_client_fd(const struct sg_client *pc)
{
    const struct sg_conn *c = (const struct sg_conn *)pc;
    return c->t.fd;
}

/*
 * True when sg_client_recv can return without the socket becoming readable:
 * a parked response, a complete frame already buffered, or TLS plaintext
 * held inside OpenSSL. Pipelined callers that poll() sg_client_fd must
 * check this first, or they can wait on data that has already arrived.
 */
int sg_client_pending(const struct sg_client *pc)
{
    const struct sg_conn *c = (const struct sg_conn *)pc;
    size_t avail = c->rlen - c->rpos;
    const uint8_t *p = c->rbuf + c->rpos;
    uint32_t len;
    size_t i;

    if (c->qlen > 0 || sg_transport_pending(&c->t))
        return 1;
    if (c->track) {
        i = sg_client_pend_earliest(c);
        if ((i < c->npend && c->pend[i].deadline <= sg_now_ms()) ||
            (c->npend > 0 && (c->closed || c->dead)))
            return 1;
    }
    if (avail < 4)
        return 0;
    len = (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
    return len > SG_CLIENT_MAX_FRAME || avail - 4 >= len;
}

/* ---- tracking mode: deadlines, loss, reconnect and resend ----------------- */

static void sg_sleep_ms(int64_t ms)
{
    struct timespec ts = {(time_t)(ms / 1000), (long)(ms % 1000) * 1000000L};

    while (nanosleep(&ts, &ts) < 0 && errno == EINTR)
        ;
}

/* Record a request just encoded; takes ownership of frame. */
static void sg_client_pend_add(struct sg_conn *c, uint64_t id, uint8_t *frame, size_t len,
                               uint32_t deadline_ms)
{
    struct sg_pending *p;

    if (c->npend == c->cappend) {
        c->cappend = c->cappend ? c->cappend * 2 : 16;
        c->pend = sg_xrealloc(c->pend, c->cappend * sizeof(*c->pend));
    }
    p = &c->pend[c->npend++];
    p->id = id;
    p->frame = frame;
    p->len = len;
    p->deadline = deadline_ms > 0 && c->opt.deadline_margin_ms > 0
                      ? sg_now_ms() + deadline_ms + c->opt.deadline_margin_ms
                      : 0;
}

/* Index of the pending request id, or c->npend. Answers come mostly in send order. */
static size_t sg_client_pend_find(const struct sg_conn *c, uint64_t id)
{
    size_t i;

    for (i = 0; i < c->npend; i++)
        if (c->pend[i].id == id)
            break;
    return i;
}

static void sg_client_pend_remove(struct sg_conn *c, size_t i)
{
    free(c->pend[i].frame);
    memmove(&c->pend[i], &c->pend[i + 1], (c->npend - i - 1) * sizeof(*c->pend));
    c->npend--;
}

/* The pending request whose client deadline comes first, or c->npend. */
static size_t sg_client_pend_earliest(const struct sg_conn *c)
{
    size_t i, best = c->npend;

    for (i = 0; i < c->npend; i++)
        if (c->pend[i].deadline != 0 &&
            (best == c->npend || c->pend[i].deadline < c->pend[best].deadline))
            best = i;
    return best;
}

/* Settle every pending request with a made-up failure response, parked in order. */
static void sg_client_fail_pending(struct sg_conn *c, int code, const char *why)
{
    while (c->npend > 0) {
        sg_client_queue_push(c, sg_response_synth(c->pend[0].id, code, why));
        sg_client_pend_remove(c, 0);
    }
}

/* Remove and return the parked response for id, or NULL. */
static struct sg_response *sg_client_queue_take(struct sg_conn *c, uint64_t id)
{
    struct sg_response *r;
    size_t i, j;

    for (i = 0; i < c->qlen; i++) {
        r = c->queue[(c->qhead + i) % c->qcap];
        if (r->id != id)
            continue;
        for (j = i; j + 1 < c->qlen; j++)
            c->queue[(c->qhead + j) % c->qcap] = c->queue[(c->qhead + j + 1) % c->qcap];
        c->qlen--;
        return r;
    }
    return NULL;
}

/*
 * A response read in tracking mode: 1 if it answers a pending request (now
 * settled), else 0 and it is freed (a late answer to a request whose client
 * deadline passed).
 */
static int sg_client_settle(struct sg_conn *c, struct sg_response *r)
{
    size_t i = sg_client_pend_find(c, r->id);

    if (i == c->npend) {
        sg_response_free(r);
        return 0;
    }
    sg_client_pend_remove(c, i);
    return 1;
}

/*
 * Open a new connection with the kept options. Transient failures (I/O,
 * TOO_MANY_CONNECTIONS, SHUTTING_DOWN: a restarting server refuses or drains)
 * are retried with exponential backoff, 10 ms doubling to 500 ms with +-50%
 * jitter, until deadline. Returns 0, or -1 with *code the last reason (a
 * refusal such as AUTH_FAILED ends the attempts at once).
 */
static int sg_client_reopen(struct sg_conn *c, int64_t deadline, int *code)
{
    int64_t delay = 10, wait;
    char err[200];

    for (;;) {
        sg_transport_close(&c->t);
        c->rpos = c->rlen = 0;
        c->closed = c->dead = c->eof = 0;
        c->shutdown_seen = 0;
        c->pub.errstr[0] = '\0';
        *code = 0;
        c->gen++;
        if (sg_transport_open(&c->t, &c->opt, deadline) < 0) {
            *code = SG_CLIENT_IO;
            snprintf(c->pub.errstr, sizeof(c->pub.errstr), "reconnect: %.200s", c->t.err);
        } else if (c->opt_skip_hello ||
                   sg_client_handshake(c, &c->opt, code, err, sizeof(err)) == 0) {
            return 0;
        } else {
            snprintf(c->pub.errstr, sizeof(c->pub.errstr), "reconnect: %.200s", err);
            sg_transport_close(&c->t);
        }
        c->closed = 1;
        c->pub.err = SG_CLIENT_IO;
        if (*code != SG_CLIENT_IO && *code != SG_TOO_MANY_CONNECTIONS && *code != SG_SHUTTING_DOWN)
            return -1;
        wait = delay / 2 + (int64_t)(rand_r(&c->rnd) % (unsigned)(delay + 1));
        if (sg_now_ms() + wait >= deadline)
            return -1;
        sg_sleep_ms(wait);
        delay = delay * 2 > 500 ? 500 : delay * 2;
    }
}

/*
 * After a failed write: read what the server sent before the connection
 * broke (answers, and maybe the ConnectionError that says why), so that a
 * SHUTTING_DOWN is not missed. Bounded by 1 s (or timeout_ms if shorter).
 */
static void sg_client_salvage(struct sg_conn *c)
{
    int64_t deadline = sg_now_ms() + (c->timeout_ms < 1000 ? c->timeout_ms : 1000);
    struct sg_response *r;
    int conn_error;

    while (!c->dead && c->t.fd >= 0 &&
           sg_client_read_response_ex(c, deadline, &r, &conn_error) == 0) {
        if (conn_error) {
            c->shutdown_seen = r->code == SG_SHUTTING_DOWN;
            sg_response_free(r);
            break;
        }
        if (sg_client_settle(c, r))
            sg_client_queue_push(c, r);
    }
}

/*
 * The connection is gone. After SHUTTING_DOWN with reconnect on, open a new
 * one and resend every unanswered request in send order: the server never
 * executed them. Otherwise, or if that fails, every unanswered request is
 * settled with a made-up failure (code; SHUTTING_DOWN if the server went
 * away before executing them and no new connection could be made). Nothing
 * pending: nothing to do, the next send reconnects. Returns 0 if the
 * requests are on a new connection.
 */
static int sg_client_recover(struct sg_conn *c, int code)
{
    int64_t deadline = sg_now_ms() + c->timeout_ms;
    char why[300];
    int rounds, rc;
    size_t i;

    snprintf(why, sizeof(why), "connection lost before the answer (outcome unknown): %.200s",
             c->pub.errstr);
    for (rounds = 0; c->opt.reconnect && c->shutdown_seen && c->npend > 0; rounds++) {
        if (rounds == SG_RESEND_ROUNDS) {
            code = SG_SHUTTING_DOWN;
            snprintf(why, sizeof(why), "server shut down %d times while resending; not executed",
                     SG_RESEND_ROUNDS);
            break;
        }
        if (sg_client_reopen(c, deadline, &rc) < 0) {
            code = rc == SG_CLIENT_IO ? SG_SHUTTING_DOWN : rc;
            snprintf(why, sizeof(why), "server shut down before executing it; %.200s",
                     c->pub.errstr);
            break;
        }
        for (i = 0; i < c->npend; i++)
            if (sg_client_write_all(c, c->pend[i].frame, c->pend[i].len, deadline) < 0)
                break;
        if (i == c->npend)
            return 0;
        sg_client_salvage(c);
        snprintf(why, sizeof(why), "connection lost while resending (outcome unknown): %.200s",
                 c->pub.errstr);
        code = SG_CLIENT_IO;
    }
    sg_client_fail_pending(c, code, why);
    return -1;
}

/*
 * Tracking mode: read one message before deadline and act on it. Returns 1
 * with *out a response that settles a pending request; 0 if something else
 * was handled (a late answer dropped, a lost connection recovered or its
 * requests failed into the parked queue): look again; -1 on timeout with the
 * connection intact; -2 if the connection is gone with nothing pending.
 */
static int sg_client_step(struct sg_conn *c, int64_t deadline, struct sg_response **out)
{
    struct sg_response *r;
    int conn_error, code;

    *out = NULL;
    if (c->closed || c->dead) {
        if (c->npend == 0)
            return -2;
        sg_client_recover(c, SG_CLIENT_IO);
        return 0;
    }
    if (sg_client_read_response_ex(c, deadline, &r, &conn_error) < 0) {
        if (!c->closed && !c->dead)
            return -1;
        if (c->npend == 0)
            return -2;
        sg_client_recover(c, SG_CLIENT_IO);
        return 0;
    }
    if (conn_error) {
        code = r->code;
        c->shutdown_seen = code == SG_SHUTTING_DOWN;
        sg_response_free(r);
        if (c->npend == 0)
            return -2;
        sg_client_recover(c, code);
        return 0;
    }
    if (!sg_client_settle(c, r))
        return 0;
    *out = r;
    return 1;
}

/*
 * Tracking mode: record and write one request; takes ownership of frame.
 * Returns 0 once the request is recorded (it will get exactly one response),
 * -1 if the client is closed and cannot (or may not) reconnect.
 */
static int sg_client_send_tracked(struct sg_conn *c, uint64_t id, uint32_t deadline_ms,
                                  uint8_t *frame, size_t len)
{
    int code = 0;

    if (c->closed || c->dead) {
        if (c->npend > 0)
            sg_client_recover(c, SG_CLIENT_IO);
        if ((c->closed || c->dead) &&
            (!c->opt.reconnect || sg_client_reopen(c, sg_client_deadline(c), &code) < 0)) {
            free(frame);
            if (c->pub.errstr[0] == '\0')
                snprintf(c->pub.errstr, sizeof(c->pub.errstr), "connection is closed");
            c->pub.err = c->opt.reconnect && code != 0 ? code : SG_CLIENT_IO;
            return -1;
        }
    }
    sg_client_pend_add(c, id, frame, len, deadline_ms);
    if (sg_client_write_all(c, frame, len, sg_client_deadline(c)) < 0) {
        sg_client_salvage(c);
        sg_client_recover(c, SG_CLIENT_IO);
    }
    return 0;
}

/*
 * Tracking mode: the next settled response (parked, a client deadline that
 * passed, or read before limit). 0 with *out; -1 if limit passed with the
 * connection intact (nothing to return yet); -2 if the connection is gone
 * with nothing outstanding.
 */
static int sg_client_recv_tracked(struct sg_conn *c, struct sg_response **out, int64_t limit)
{
    int64_t dl;
    size_t i;
    int rc;

    for (;;) {
        if ((*out = sg_client_queue_pop(c)) != NULL)
            return 0;
        i = sg_client_pend_earliest(c);
        if (i < c->npend && c->pend[i].deadline <= sg_now_ms()) {
            *out = sg_response_synth(c->pend[i].id, SG_TIMEOUT,
                                     "client-side deadline passed without an answer");
            sg_client_pend_remove(c, i);
            return 0;
        }
        dl = i < c->npend && c->pend[i].deadline < limit ? c->pend[i].deadline : limit;
        rc = sg_client_step(c, dl, out);
        if (rc == 1)
            return 0;
        if (rc == 0 || (rc == -1 && sg_now_ms() < limit))
            continue;
        if (rc == -2 && c->pub.errstr[0] == '\0')
            snprintf(c->pub.errstr, sizeof(c->pub.errstr), "connection is closed");
        c->pub.err = SG_ERR_IO;
        return rc;
    }
}

/* Tracking mode: sg_call for request id, already sent. */
static int sg_call_tracked(struct sg_conn *c, uint64_t id, struct sg_response **out)
{
    struct sg_response *resp;
    int64_t limit, dl;
    size_t i;
    int rc;

    limit = sg_client_deadline(c);
    for (;;) {
        if ((*out = sg_client_queue_take(c, id)) != NULL)
            return 0;
        i = sg_client_pend_find(c, id);
        if (i == c->npend) { /* neither pending nor parked: a duplicate id */
            snprintf(c->pub.errstr, sizeof(c->pub.errstr), "request id %llu was answered twice",
                     (unsigned long long)id);
            c->pub.err = SG_ERR_PROTOCOL;
            return -1;
        }
        if (c->pend[i].deadline != 0 && c->pend[i].deadline <= sg_now_ms()) {
            sg_client_pend_remove(c, i);
            *out =
                sg_response_synth(id, SG_TIMEOUT, "client-side deadline passed without an answer");
            return 0;
        }
        dl = c->pend[i].deadline != 0 && c->pend[i].deadline < limit ? c->pend[i].deadline : limit;
        rc = sg_client_step(c, dl, &resp);
        if (rc == 1) {
            if (resp->id == id) {
                *out = resp;
                return 0;
            }
            sg_client_queue_push(c, resp);
            continue;
        }
        if (rc == 0 || (rc == -1 && sg_now_ms() < limit))
            continue;
        /* timeout_ms passed: give the request up, as the untracked client does */
        i = sg_client_pend_find(c, id);
        if (i < c->npend)
            sg_client_pend_remove(c, i);
        c->pub.err = SG_ERR_IO;
        return -1;
    }
}

static int sg_client_local_fail(struct sg_conn *c, enum sg_code code, const char *what, size_t n,
                                uint32_t limit)
{
    c->pub.err = code;
    snprintf(c->pub.errstr, sizeof(c->pub.errstr), "%s of %zu bytes exceeds the server's %u", what,
             n, limit);
    return -1;
}

int sg_client_check(struct sg_client *pc, const struct sg_request *r)
{
    struct sg_conn *c = (struct sg_conn *)pc;
    const struct sg_limits *l = &c->limits;
    size_t i, total = 0;

    for (i = 0; i < r->n_keys; i++) {
        if (l->max_key_bytes && r->keys[i].len > l->max_key_bytes)
            return sg_client_local_fail(c, SG_KEY_TOO_LARGE, "key", r->keys[i].len,
                                        l->max_key_bytes);
        total += r->keys[i].len;
    }
    if (l->max_key_bytes && r->pattern.len > l->max_key_bytes)
        return sg_client_local_fail(c, SG_KEY_TOO_LARGE, "pattern", r->pattern.len,
                                    l->max_key_bytes);
    for (i = 0; i < r->n_values; i++) {
        if (l->max_value_bytes && r->values[i].len > l->max_value_bytes)
            return sg_client_local_fail(c, SG_VALUE_TOO_LARGE, "value", r->values[i].len,
                                        l->max_value_bytes);
        total += r->values[i].len;
    }
    if (l->max_batch_keys && r->n_keys > l->max_batch_keys) {
        c->pub.err = SG_BATCH_TOO_LARGE;
        snprintf(c->pub.errstr, sizeof(c->pub.errstr), "%zu keys exceed the server's %u", r->n_keys,
                 l->max_batch_keys);
        return -1;
    }
    if (l->max_batch_bytes && r->n_keys > 1 && total > l->max_batch_bytes)
        return sg_client_local_fail(c, SG_BATCH_TOO_LARGE, "batch", total, l->max_batch_bytes);
    /* The exact size costs a walk of the message: only near the limit. */
    if (l->max_frame_bytes && sg_request_size_bound(r) > l->max_frame_bytes &&
        sg_request_size(r) > l->max_frame_bytes)
        return sg_client_local_fail(c, SG_FRAME_TOO_LARGE, "request", sg_request_size(r),
                                    l->max_frame_bytes);
    return 0;
}

/*
 * Check, assign an id and write (or, in tracking mode, record and write) one
 * request. 0 with *id set, -1 with pub.err.
 */
static int sg_client_send_one(struct sg_conn *c, const struct sg_request *r, uint64_t *id)
{
    uint8_t *frame;
    size_t len;
    uint64_t rid;
    int rc;

    if (c->checks && !r->nocheck && sg_client_check(&c->pub, r) < 0)
        return -1;
    rid = c->next_id++;
    frame = sg_frame_request(r, rid, &len);
    if (frame == NULL) {
        snprintf(c->pub.errstr, sizeof(c->pub.errstr), "request does not fit in one frame");
        c->pub.err = SG_FRAME_TOO_LARGE;
        return -1;
    }
    if (id)
        *id = rid;
    if (c->track)
        return sg_client_send_tracked(c, rid, r->deadline_ms, frame, len);
    rc = sg_client_write_all(c, frame, len, sg_client_deadline(c));
    free(frame);
    return rc;
}

int sg_client_send(struct sg_client *pc, const struct sg_request *r, uint64_t *id)
{
    return sg_client_send_one((struct sg_conn *)pc, r, id);
}

int sg_client_recv(struct sg_client *pc, struct sg_response **out)
{
    struct sg_conn *c = (struct sg_conn *)pc;

    if (c->track)
        return sg_client_recv_tracked(c, out, sg_client_deadline(c)) == 0 ? 0 : -1;
    *out = sg_client_queue_pop(c);
    if (*out != NULL)
        return 0;
    return sg_client_read_response(c, sg_client_deadline(c), out);
}

int sg_conn_recv_nowait(struct sg_conn *c, struct sg_response **out)
{
    return sg_client_recv_tracked(c, out, sg_now_ms());
}

int64_t sg_conn_next_deadline(const struct sg_conn *c)
{
    size_t i = sg_client_pend_earliest(c);

    return i < c->npend ? c->pend[i].deadline : 0;
}

size_t sg_conn_outstanding(const struct sg_conn *c)
{
    return c->npend + c->qlen;
}

int sg_conn_closed(const struct sg_conn *c)
{
    return c->closed || c->dead || c->t.fd < 0;
}

unsigned sg_conn_generation(const struct sg_conn *c)
{
    return c->gen;
}

void sg_conn_force_tracking(struct sg_conn *c)
{
    c->track = 1;
}

int sg_client_write_raw(struct sg_client *pc, const void *buf, size_t len)
{
    struct sg_conn *c = (struct sg_conn *)pc;

    return sg_client_write_all(c, buf, len, sg_client_deadline(c));
}

struct sg_client *sg_client_connect_nohello(const struct sg_client_options *opt)
{
    return &sg_conn_open(opt, 0)->pub;
}

/*
 * A reply made up by the client becomes a failure of the call: -1 with its
 * code and message in the context, and the reply freed.
 */
static int sg_call_result(struct sg_conn *c, struct sg_response **out)
{
    if (*out != NULL && (*out)->local) {
        c->pub.err = (enum sg_code)(*out)->code;
        snprintf(c->pub.errstr, sizeof(c->pub.errstr), "%s", (*out)->message);
        sg_response_free(*out);
        *out = NULL;
    }
    return *out != NULL ? 0 : -1;
}

/*
 * Send r and wait for the response carrying its id; responses to other ids
 * are parked for sg_client_recv. A ConnectionError ends the wait with -1 and
 * its code in pub.err.
 */
int sg_call(struct sg_client *pc, const struct sg_request *r, struct sg_response **out)
{
    struct sg_conn *c = (struct sg_conn *)pc;
    int64_t deadline = sg_client_deadline(c);
    struct sg_response *resp;
    uint64_t id;

    *out = NULL;
    if (sg_client_send_one(c, r, &id) < 0)
        return -1;
    if (c->track) {
        if (sg_call_tracked(c, id, out) < 0)
            return -1;
        return sg_call_result(c, out);
    }
    for (;;) {
        if (sg_client_read_response(c, deadline, &resp) < 0)
            return -1;
        if (resp->id == id) {
            *out = resp;
            return 0;
        }
        if (resp->id == 0 && c->closed) {
            c->pub.err = (enum sg_code)resp->code;
            sg_response_free(resp);
            return -1;
        }
        sg_client_queue_push(c, resp);
    }
}

/* Run r (consumed) through sg_call; the reply or NULL. */
static struct sg_response *sg_client_run(struct sg_client *c, struct sg_request *r)
{
    struct sg_response *resp;

    sg_call(c, r, &resp);
    sg_request_free(r);
    return resp;
}

struct sg_response *sg_ping(struct sg_client *c)
{
    return sg_client_run(c, sg_request_new(SG_OP_PING));
}

struct sg_response *sg_get(struct sg_client *c, const char *keyspace, const void *key, size_t klen)
{
    return sg_client_run(c, sg_req_key(SG_OP_GET, keyspace, key, klen));
}

struct sg_response *sg_set(struct sg_client *c, const char *keyspace, const void *key, size_t klen,
                           const void *val, size_t vlen, uint64_t ttl_ms, enum sg_cond cond)
{
    return sg_client_run(c, sg_req_set(keyspace, key, klen, val, vlen, ttl_ms, cond));
}

struct sg_response *sg_del(struct sg_client *c, const char *keyspace, const void *key, size_t klen)
{
    return sg_client_run(c, sg_req_key(SG_OP_DELETE, keyspace, key, klen));
}

struct sg_response *sg_expire(struct sg_client *c, const char *keyspace, const void *key,
                              size_t klen, uint64_t ttl_ms)
{
    return sg_client_run(c, sg_req_expire(keyspace, key, klen, ttl_ms));
}

struct sg_response *sg_mget(struct sg_client *c, const char *keyspace, size_t n,
                            const void *const *keys, const size_t *klens)
{
    return sg_client_run(c, sg_req_keys(SG_OP_MGET, keyspace, n, keys, klens));
}

struct sg_response *sg_mset(struct sg_client *c, const char *keyspace, size_t n,
                            const void *const *keys, const size_t *klens, const void *const *vals,
                            const size_t *vlens, const uint64_t *ttls, uint64_t ttl_ms,
                            enum sg_cond cond)
{
    return sg_client_run(c, sg_req_mset(keyspace, n, keys, klens, vals, vlens, ttls, ttl_ms, cond));
}

struct sg_response *sg_mdel(struct sg_client *c, const char *keyspace, size_t n,
                            const void *const *keys, const size_t *klens)
{
    return sg_client_run(c, sg_req_keys(SG_OP_MDELETE, keyspace, n, keys, klens));
}

struct sg_response *sg_invalidate(struct sg_client *c, const char *keyspace, const void *pattern,
                                  size_t plen)
{
    return sg_client_run(c, sg_req_invalidate(keyspace, pattern, plen));
}

struct sg_response *sg_get_or_lease(struct sg_client *c, const char *keyspace, const void *key,
                                    size_t klen, uint64_t lease_ttl_ms)
{
    return sg_client_run(c, sg_req_get_or_lease(keyspace, key, klen, lease_ttl_ms));
}

struct sg_response *sg_set_with_lease(struct sg_client *c, const char *keyspace, const void *key,
                                      size_t klen, const void *val, size_t vlen, const void *lease,
                                      size_t llen, uint64_t ttl_ms)
{
    return sg_client_run(
        c, sg_req_set_with_lease(keyspace, key, klen, val, vlen, lease, llen, ttl_ms));
}

struct sg_response *sg_get_versioned(struct sg_client *c, const char *keyspace, const void *key,
                                     size_t klen)
{
    return sg_client_run(c, sg_req_key(SG_OP_GET_VERSIONED, keyspace, key, klen));
}

struct sg_response *sg_set_versioned(struct sg_client *c, const char *keyspace, const void *key,
                                     size_t klen, const void *val, size_t vlen, uint64_t version,
                                     uint64_t ttl_ms)
{
    return sg_client_run(c, sg_req_set_versioned(keyspace, key, klen, val, vlen, version, ttl_ms));
}

struct sg_response *sg_stats(struct sg_client *c)
{
    return sg_client_run(c, sg_request_new(SG_OP_STATS));
}
