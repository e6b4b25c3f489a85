/*
 * session - one client connection, from accept to close.
 *
 * States: HANDSHAKE (only a Hello is accepted, within handshake_timeout_ms),
 * READY (requests), CLOSING (a ConnectionError is being flushed; nothing
 * more is read). Frames are checked against max_frame_bytes from their
 * 4-byte header alone, before the body is buffered or allocated.
 * Backpressure: reading stops while inflight >= limits.max_inflight or the
 * output buffer holds more than limits.output_high_watermark, and resumes
 * (re-processing what is already buffered) when both have drained.
 */
#include "session.h"

#include <netinet/in.h>
#include <netinet/tcp.h>
#include <openssl/crypto.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <event2/buffer.h>

#include "frame.h"
#include "log.h"
#include "util.h"
#include "worker.h"

#define SG_CLOSE_LINGER_MS 2000

static void session_process(struct sg_session *s);

static int session_over_limits(const struct sg_session *s)
{
    const struct sg_config *cfg = s->worker->cfg;
    return s->inflight >= cfg->max_inflight ||
           evbuffer_get_length(sg_conn_output(s->conn)) > cfg->output_high_watermark;
}

static void session_pause(struct sg_session *s)
{
    if (!s->paused) {
        s->paused = 1;
        sg_conn_read_enable(s->conn, 0);
    }
}

static void session_maybe_resume(struct sg_session *s)
{
    if (s->paused && !s->draining && s->state != SG_SESS_CLOSING && !session_over_limits(s)) {
        s->paused = 0;
        sg_conn_read_enable(s->conn, 1);
        /* Frames may already sit in the input buffer: no read event will
         * come for them, so process them from the loop. */
        event_active(s->resume_ev, 0, 0);
    }
}

static void on_resume(evutil_socket_t fd, short what, void *arg)
{
    session_process(arg);
}

static void on_timer(evutil_socket_t fd, short what, void *arg)
{
    struct sg_session *s = arg;
    if (s->state == SG_SESS_HANDSHAKE) {
        sg_log_debug("session %s: no Hello within the handshake timeout", s->peer);
        sg_session_fail(s, SLOTGATE__V1__CODE__CODE_HANDSHAKE_REQUIRED,
                        "no Hello within the handshake timeout");
        return;
    }
    sg_session_free(s); /* CLOSING and the client did not read: give up */
}

void sg_session_send(struct sg_session *s, const Slotgate__V1__ServerMessage *m)
{
    if (s->state == SG_SESS_CLOSING)
        return; /* the stream ends with the ConnectionError already queued */
    struct evbuffer *out = sg_conn_output(s->conn);
    size_t size = sg_frame_server_size(m);
    struct evbuffer_iovec v;
    if (evbuffer_reserve_space(out, (ev_ssize_t)size, &v, 1) < 1) {
        sg_log_error("out of memory reserving %zu output bytes", size);
        abort();
    }
    v.iov_len = sg_frame_encode_server(m, v.iov_base);
    evbuffer_commit_space(out, &v, 1);
    sg_conn_flush_soon(s->conn);
    SG_STAT_ADD(&s->worker->stats, bytes_out, size);
    if (session_over_limits(s))
        session_pause(s);
}

void sg_session_request_done(struct sg_session *s, struct sg_request *r)
{
    TAILQ_REMOVE(&s->requests, r, entry);
    r->session = NULL;
    s->inflight--;
    if (s->draining && s->inflight == 0) {
        sg_session_fail(s, SLOTGATE__V1__CODE__CODE_SHUTTING_DOWN, "server is shutting down");
        return;
    }
    session_maybe_resume(s);
}

void sg_session_drain(struct sg_session *s)
{
    if (s->state == SG_SESS_CLOSING)
        return;
    s->draining = 1;
    if (s->inflight == 0) {
        sg_session_fail(s, SLOTGATE__V1__CODE__CODE_SHUTTING_DOWN, "server is shutting down");
        return;
    }
    /* Stop taking new requests; answer those in flight, then close. */
    session_pause(s);
}

void sg_session_fail(struct sg_session *s, int code, const char *message)
{
    if (s->state == SG_SESS_CLOSING)
        return;
    Slotgate__V1__ConnectionError e = SLOTGATE__V1__CONNECTION_ERROR__INIT;
    e.code = code;
    e.message = (char *)message;
    Slotgate__V1__ServerMessage m = SLOTGATE__V1__SERVER_MESSAGE__INIT;
    m.msg_case = SLOTGATE__V1__SERVER_MESSAGE__MSG_ERROR;
    m.error = &e;
    sg_session_send(s, &m);
    s->state = SG_SESS_CLOSING;
    sg_conn_read_enable(s->conn, 0);
    struct timeval tv = {SG_CLOSE_LINGER_MS / 1000, (SG_CLOSE_LINGER_MS % 1000) * 1000};
    evtimer_add(s->timer, &tv);
}

/* Constant-time token comparison against every configured token. */
static int session_token_ok(const struct sg_config *cfg, const ProtobufCBinaryData *tok)
{
    if (cfg->n_tokens == 0)
        return 1;
    int ok = 0;
    for (int i = 0; i < cfg->n_tokens; i++) {
        size_t len = strlen(cfg->tokens[i]);
        if (len == tok->len && CRYPTO_memcmp(cfg->tokens[i], tok->data, len) == 0)
            ok = 1;
    }
    return ok;
}

static void session_hello(struct sg_session *s, const Slotgate__V1__Hello *h)
{
    const struct sg_config *cfg = s->worker->cfg;
    if (h->protocol_version != 1) {
        sg_session_fail(s, SLOTGATE__V1__CODE__CODE_UNSUPPORTED_VERSION,
                        "this server speaks protocol version 1");
        return;
    }
    if (!session_token_ok(cfg, &h->auth_token)) {
        sg_log_info("session %s: auth failed", s->peer);
        sg_session_fail(s, SLOTGATE__V1__CODE__CODE_AUTH_FAILED, "authentication failed");
        return;
    }
    Slotgate__V1__Limits lim = SLOTGATE__V1__LIMITS__INIT;
    lim.max_frame_bytes = cfg->max_frame_bytes;
    lim.max_key_bytes = cfg->max_key_bytes;
    lim.max_value_bytes = cfg->max_value_bytes;
    lim.max_batch_keys = cfg->max_batch_keys;
    lim.max_batch_bytes = cfg->max_batch_bytes;
    lim.max_inflight = cfg->max_inflight;
    lim.default_deadline_ms = cfg->request_deadline_ms;
    Slotgate__V1__HelloReply hr = SLOTGATE__V1__HELLO_REPLY__INIT;
    hr.protocol_version = 1;
    hr.server_version = SG_VERSION;
    hr.server_name = "slotgate";
    hr.limits = &lim;
    Slotgate__V1__ServerMessage m = SLOTGATE__V1__SERVER_MESSAGE__INIT;
    m.msg_case = SLOTGATE__V1__SERVER_MESSAGE__MSG_HELLO_REPLY;
    m.hello_reply = &hr;
    sg_session_send(s, &m);
    s->state = SG_SESS_READY;
    evtimer_del(s->timer);
    if (cfg->idle_timeout_ms > 0)
        sg_conn_set_idle_timeout(s->conn, (int)cfg->idle_timeout_ms);
}

/* Handle one decoded message; takes ownership of r. */
static void session_message(struct sg_session *s, struct sg_request *r)
{
    const Slotgate__V1__ClientMessage *msg = r->msg;
    int is_hello = msg->msg_case == SLOTGATE__V1__CLIENT_MESSAGE__MSG_HELLO;
    if (s->state == SG_SESS_HANDSHAKE) {
        if (is_hello)
            session_hello(s, msg->hello);
        else
            sg_session_fail(s, SLOTGATE__V1__CODE__CODE_HANDSHAKE_REQUIRED,
                            "the first message must be Hello");
        sg_request_discard(r);
        return;
    }
    if (is_hello) {
        sg_session_fail(s, SLOTGATE__V1__CODE__CODE_BAD_FRAME, "Hello sent twice");
        sg_request_discard(r);
        return;
    }
    sg_request_start(s, r);
}

/* Decode and handle every whole frame in the input buffer. */
static void session_process(struct sg_session *s)
{
    const struct sg_config *cfg = s->worker->cfg;
    struct evbuffer *in = sg_conn_input(s->conn);
    while (s->state != SG_SESS_CLOSING && !s->paused) {
        uint8_t hdr[SG_FRAME_HEADER];
        uint32_t body_len = 0;
        size_t have = evbuffer_get_length(in);
        if (have < SG_FRAME_HEADER)
            return;
        evbuffer_copyout(in, hdr, SG_FRAME_HEADER);
        int st = sg_frame_check(hdr, SG_FRAME_HEADER, cfg->max_frame_bytes, &body_len);
        if (st == SG_FRAME_TOO_LARGE) {
            SG_STAT_INC(&s->worker->stats, bad_frames);
            sg_log_info("session %s: frame of %u bytes over the limit", s->peer, body_len);
            sg_session_fail(s, SLOTGATE__V1__CODE__CODE_FRAME_TOO_LARGE,
                            "frame larger than max_frame_bytes");
            return;
        }
        if (have < SG_FRAME_HEADER + (size_t)body_len)
            return;
        const uint8_t *frame = evbuffer_pullup(in, (ev_ssize_t)(SG_FRAME_HEADER + body_len));
        struct sg_request *r = sg_request_decode(s->worker, frame + SG_FRAME_HEADER, body_len);
        evbuffer_drain(in, SG_FRAME_HEADER + body_len);
        SG_STAT_ADD(&s->worker->stats, bytes_in, SG_FRAME_HEADER + body_len);
        if (r == NULL) {
            SG_STAT_INC(&s->worker->stats, bad_frames);
            sg_log_info("session %s: frame does not decode", s->peer);
            sg_session_fail(s, SLOTGATE__V1__CODE__CODE_BAD_FRAME,
                            "frame does not decode as a ClientMessage");
            return;
        }
        session_message(s, r);
        if (s->state != SG_SESS_CLOSING && session_over_limits(s))
            session_pause(s);
    }
}

static void on_read(void *arg)
{
    session_process(arg);
}

static void on_drained(void *arg)
{
    struct sg_session *s = arg;
    if (s->state == SG_SESS_CLOSING) {
        sg_session_free(s);
        return;
    }
    session_maybe_resume(s);
}

static void on_event(void *arg, int what)
{
    struct sg_session *s = arg;
    if (what == SG_CONN_TIMEOUT && (s->inflight > 0 || s->state != SG_SESS_READY))
        return; /* not idle: the client is waiting for answers */
    if (what == SG_CONN_ERROR)
        sg_log_debug("session %s: closed on error", s->peer);
    sg_session_free(s);
}

static const struct sg_conn_cbs session_cbs = {on_read, on_drained, on_event};

void sg_session_new(struct sg_worker *w, int fd, const struct sockaddr *sa, int salen)
{
    const struct sg_config *cfg = w->cfg;
    struct sg_session *s = sg_calloc(1, sizeof(*s));
    s->worker = w;
    TAILQ_INIT(&s->requests);
    char host[INET6_ADDRSTRLEN] = "?";
    int port = 0;
    if (sa->sa_family == AF_INET) {
        const struct sockaddr_in *in = (const struct sockaddr_in *)sa;
        evutil_inet_ntop(AF_INET, &in->sin_addr, host, sizeof(host));
        port = ntohs(in->sin_port);
    } else if (sa->sa_family == AF_INET6) {
        const struct sockaddr_in6 *in6 = (const struct sockaddr_in6 *)sa;
        evutil_inet_ntop(AF_INET6, &in6->sin6_addr, host, sizeof(host));
        port = ntohs(in6->sin6_port);
    }
    snprintf(s->peer, sizeof(s->peer), "%s:%d", host, port);
    int one = 1;
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
    SSL *ssl = w->server_tls != NULL ? SSL_new(w->server_tls) : NULL;
    s->conn = sg_conn_new(w->base, fd, ssl, 1, 0, 0, &session_cbs, s);
    s->timer = evtimer_new(w->base, on_timer, s);
    s->resume_ev = event_new(w->base, -1, 0, on_resume, s);
    TAILQ_INSERT_TAIL(&w->sessions, s, entry);
    uint32_t n = atomic_fetch_add(&sg_connections, 1) + 1;
    SG_STAT_INC(&w->stats, connections_accepted);
    SG_STAT_INC(&w->stats, connections_active);
    if (n > cfg->max_connections) {
        SG_STAT_INC(&w->stats, connections_rejected);
        sg_log_warn("session %s: rejected, limits.max_connections (%u) reached", s->peer,
                    cfg->max_connections);
        sg_session_fail(s, SLOTGATE__V1__CODE__CODE_TOO_MANY_CONNECTIONS, "too many connections");
        return;
    }
    uint32_t hs = cfg->handshake_timeout_ms;
    struct timeval tv = {hs / 1000, (hs % 1000) * 1000};
    evtimer_add(s->timer, &tv);
}

void sg_session_free(struct sg_session *s)
{
    if (s == NULL)
        return;
    struct sg_request *r;
    while ((r = TAILQ_FIRST(&s->requests)) != NULL) {
        TAILQ_REMOVE(&s->requests, r, entry);
        sg_request_orphan(r);
    }
    TAILQ_REMOVE(&s->worker->sessions, s, entry);
    atomic_fetch_sub(&sg_connections, 1);
    SG_STAT_DEC(&s->worker->stats, connections_active);
    event_free(s->timer);
    event_free(s->resume_ev);
    sg_conn_free(s->conn);
    struct sg_worker *w = s->worker;
    free(s);
    sg_worker_session_closed(w);
}
