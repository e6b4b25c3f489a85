/*
 * session - one client connection, from accept to close.
 *
 * With listen.proxy_protocol on, a connection starts in PROXY: the socket
 * peer must be in listen.proxy_trusted, and the PROXY header is read off
 * the raw socket before any TLS byte, peeking so that not one byte past
 * the header is taken from the TLS stream; it is bounded in size by the
 * parser (107 bytes for v1, 16 + 512 for v2) and in time by
 * handshake_timeout_ms. Anything else closes the connection, counted and
 * logged at most once a second per worker. The header's source address
 * is the client's address from then on (logs, max_connections_per_ip).
 *
 * States: HANDSHAKE (only a Hello is accepted, within handshake_timeout_ms),
 * READY (requests), CLOSING (a ConnectionError is being flushed; nothing
 * more is read). Frames are checked against max_frame_bytes from their
 * 4-byte header alone, before the body is buffered or allocated.
 * Backpressure: reading stops while inflight >= limits.max_inflight or the
 * output buffer holds more than limits.output_high_watermark, and resumes
 * (re-processing what is already buffered) when both have drained.
 *
 * Memory bounds, as Redis's client-output-buffer-limit and maxmemory-clients:
 * a client owed more than limits.max_output_bytes (replies it does not read)
 * gets ConnectionError OUTPUT_LIMIT and is closed. Every session's buffers
 * are counted in core->buffered (evbuffer callbacks, no lock: one worker's
 * sessions only); against the worker's share of limits.max_buffered_bytes,
 * from three quarters of it a session that still owes anything reads no new
 * request, and above it the sessions holding the most are closed at once
 * (their buffers dropped), so the share is passed by at most the reply that
 * crossed it.
 */
#include "session.h"

#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <openssl/crypto.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <event2/buffer.h>

#include "conn.h"
#include "core.h"
#include "fastpb.h"
#include "fault.h"
#include "frame.h"
#include "log.h"
#include "metrics.h"
#include "proxyproto.h"
#include "request.h"
#include "util.h"

#define SG_CLOSE_LINGER_MS 2000
#define SG_PP_LOG_EVERY_MS 1000
#define SG_IP_BUCKETS 1024

_Atomic uint32_t sg_connections;

/* PROXY: reading the PROXY header off the raw socket (no conn yet). */
enum sg_session_state { SG_SESS_HANDSHAKE = 0, SG_SESS_READY, SG_SESS_CLOSING, SG_SESS_PROXY };

struct sg_session {
    TAILQ_ENTRY(sg_session) entry; /* in the worker's list */
    struct sg_core *core;
    struct sg_conn *conn; /* NULL while in SG_SESS_PROXY */
    int state;
    uint32_t inflight;
    uint8_t paused;   /* reading paused for backpressure */
    uint8_t draining; /* close with SHUTTING_DOWN when inflight is 0 */
    TAILQ_HEAD(, sg_request) requests;
    struct event *timer; /* handshake timeout, then close-linger timeout */
    struct event *resume_ev;
    /* The client's address: the PROXY header's source when there is one,
     * else the socket's peer. peer is its "ip:port" text for logs. */
    struct sockaddr_storage client;
    char peer[72];
    char via[72];       /* the load balancer's "ip:port" when PROXY, else "" */
    uint8_t ip_counted; /* counted in limits.max_connections_per_ip */
    /* SG_SESS_PROXY: the socket and what has been read of the header. */
    int fd;
    struct event *pp_ev;
    uint8_t *pp_buf;
    size_t pp_len;
    /* The request being started (sg_request_start may answer it at once). */
    struct sg_request *starting;
    uint8_t start_done;
    uint8_t evicted; /* closed to keep limits.max_buffered_bytes; freed next turn */
    uint64_t held;   /* bytes of its requests' values held by reference, counted */
    int lowat;       /* SO_RCVLOWAT set on the socket (0: the default, 1) */
    /* Write gathering (session_answered): the requests of the latest read
     * still unanswered, that read's number, answers waiting in the output. */
    uint32_t batch_left;
    uint16_t batch;
    uint8_t processing; /* inside session_process: the decision waits for its end */
    uint8_t holding;    /* output holds answers not yet asked to be written */
    struct evbuffer_cb_entry *in_cb, *out_cb; /* keep core->buffered */
};

static void session_send(struct sg_session *s, const Slotgate__V1__ServerMessage *m,
                         uint8_t **block, struct sg_request *r);
static void session_flush(struct sg_session *s);

/* ---- connections per client address ---------------------------------------
 * Process-wide (a client's connections land on any worker), so it takes a
 * mutex: once when a connection is counted and once when it closes, never
 * per request. Entries exist only while their count is above zero. */

struct ip_entry {
    struct ip_entry *next;
    int family;
    uint8_t addr[16];
    uint32_t n;
};

static struct {
    pthread_mutex_t lock;
    struct ip_entry *bucket[SG_IP_BUCKETS];
} ip_table = {.lock = PTHREAD_MUTEX_INITIALIZER};

/* The address part of sa (v4-mapped IPv6 as IPv4); 0 or -1. */
static int ip_key(const struct sockaddr *sa, int *family, uint8_t addr[16])
{
    memset(addr, 0, 16);
    if (sa->sa_family == AF_INET) {
        *family = AF_INET;
        memcpy(addr, &((const struct sockaddr_in *)sa)->sin_addr, 4);
        return 0;
    }
    if (sa->sa_family == AF_INET6) {
        const struct in6_addr *a6 = &((const struct sockaddr_in6 *)sa)->sin6_addr;
        if (IN6_IS_ADDR_V4MAPPED(a6)) {
            *family = AF_INET;
            memcpy(addr, (const uint8_t *)a6 + 12, 4);
        } else {
            *family = AF_INET6;
            memcpy(addr, a6, 16);
        }
        return 0;
    }
    return -1;
}

static struct ip_entry **ip_find(int family, const uint8_t addr[16])
{
    uint32_t h = 2166136261u; /* FNV-1a */
    for (int i = 0; i < 16; i++)
        h = (h ^ addr[i]) * 16777619u;
    struct ip_entry **pp = &ip_table.bucket[(h ^ (uint32_t)family) % SG_IP_BUCKETS];
    while (*pp != NULL && ((*pp)->family != family || memcmp((*pp)->addr, addr, 16) != 0))
        pp = &(*pp)->next;
    return pp;
}

/* Count one more connection from sa; returns the new count (0: no address). */
static uint32_t ip_take(const struct sockaddr *sa)
{
    int family;
    uint8_t addr[16];
    if (ip_key(sa, &family, addr) != 0)
        return 0;
    pthread_mutex_lock(&ip_table.lock);
    struct ip_entry **pp = ip_find(family, addr);
    if (*pp == NULL) {
        struct ip_entry *e = sg_calloc(1, sizeof(*e));
        e->family = family;
        memcpy(e->addr, addr, 16);
        *pp = e;
    }
    uint32_t n = ++(*pp)->n;
    pthread_mutex_unlock(&ip_table.lock);
    return n;
}

static void ip_release(const struct sockaddr *sa)
{
    int family;
    uint8_t addr[16];
    if (ip_key(sa, &family, addr) != 0)
        return;
    pthread_mutex_lock(&ip_table.lock);
    struct ip_entry **pp = ip_find(family, addr);
    struct ip_entry *e = *pp;
    if (e != NULL && --e->n == 0) {
        *pp = e->next;
        free(e);
    }
    pthread_mutex_unlock(&ip_table.lock);
}

static void session_process(struct sg_session *s);

/* This worker's share of limits.max_buffered_bytes (0: no budget). */
static uint64_t session_budget_share(const struct sg_core *w)
{
    uint64_t total = w->cfg->max_buffered_bytes;
    return total == 0 ? 0 : total / (uint64_t)(w->n_all > 0 ? w->n_all : 1);
}

static int session_over_limits(const struct sg_session *s)
{
    const struct sg_core *w = s->core;
    const struct sg_config *cfg = w->cfg;
    size_t out = evbuffer_get_length(sg_conn_output(s->conn));
    if (s->inflight >= cfg->max_inflight || out > cfg->output_high_watermark)
        return 1;
    /* Near the budget: one request at a time, and only from a client that
     * is owed nothing (so a client that reads its replies keeps going). */
    uint64_t share = session_budget_share(w);
    return share != 0 && w->buffered >= share - share / 4 && (out > 0 || s->inflight > 0);
}

/* evbuffer callback on both buffers of a session: keeps core->buffered. */
static void session_buffer_changed(struct evbuffer *buf, const struct evbuffer_cb_info *info,
                                   void *arg)
{
    struct sg_core *w = arg;
    w->buffered += info->n_added;
    w->buffered -= info->n_deleted;
    SG_STAT_SET(&w->stats, buffered_bytes, w->buffered);
}

/* Bytes held by s's buffers and its requests' values. */
static uint64_t session_held(struct sg_session *s)
{
    return sg_conn_held_bytes(s->conn) + s->held; /* both buffers and sealed records */
}

/*
 * A large SET value taken out of the input by reference stays counted in
 * core->buffered, as s's, while r is s's request: from when it joins s's
 * list until it is answered or s goes (then r may still hold it until its
 * link has written it, no longer counted, like a closed session's
 * buffers).
 */
static void session_value_count(struct sg_session *s, struct sg_request *r)
{
    if (r->value_buf == NULL)
        return;
    r->value_held = evbuffer_get_length(r->value_buf);
    s->held += r->value_held;
    s->core->buffered += r->value_held;
    SG_STAT_SET(&s->core->stats, buffered_bytes, s->core->buffered);
}

static void session_value_release(struct sg_session *s, struct sg_request *r)
{
    if (r->value_held == 0)
        return;
    s->held -= r->value_held;
    s->core->buffered -= r->value_held;
    r->value_held = 0;
    SG_STAT_SET(&s->core->stats, buffered_bytes, s->core->buffered);
}

/*
 * Close s at once (budget eviction, or no memory for a frame): nothing
 * more is read or queued, its buffers are dropped now (core->buffered
 * falls with them) and it is freed at the start of the next loop turn,
 * never under a caller that may still hold it.
 */
static void session_close_now(struct sg_session *s)
{
    s->evicted = 1;
    s->state = SG_SESS_CLOSING;
    s->paused = 1;
    sg_conn_read_enable(s->conn, 0);
    sg_conn_discard_output(s->conn);
    struct evbuffer *in = sg_conn_input(s->conn);
    evbuffer_drain(in, evbuffer_get_length(in));
    struct sg_request *r;
    TAILQ_FOREACH(r, &s->requests, entry)
    {
        session_value_release(s, r);
    }
    struct timeval now = {0, 0};
    evtimer_add(s->timer, &now); /* on_timer frees a CLOSING session */
}

static void session_evict(struct sg_session *s)
{
    struct sg_core *w = s->core;
    sg_log_warn("session %s: closed, holding %llu bytes with the worker over its share of "
                "limits.max_buffered_bytes",
                s->peer, (unsigned long long)session_held(s));
    SG_STAT_INC(&w->stats, budget_evictions);
    SG_STAT_INC(&w->stats, output_limit_closes);
    session_close_now(s);
}

/* Over the worker's share: close the sessions holding the most until under. */
static void session_enforce_budget(struct sg_core *w)
{
    uint64_t share = session_budget_share(w);
    while (share != 0 && w->buffered > share) {
        struct sg_session *victim = NULL;
        uint64_t most = 0;
        struct sg_session *x;
        TAILQ_FOREACH(x, &w->sessions, entry)
        {
            if (x->conn == NULL || x->evicted)
                continue;
            uint64_t held = session_held(x);
            if (held > most) {
                most = held;
                victim = x;
            }
        }
        if (victim == NULL)
            return;
        session_evict(victim);
    }
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

/*
 * A connection refused before TLS (PROXY header missing, malformed, slow,
 * or from an untrusted peer): one log line per second per worker at most,
 * saying how many were not logged, so a flood cannot fill the log.
 */
static void session_pp_log(struct sg_session *s, const char *what, const char *why)
{
    struct sg_core *w = s->core;
    uint64_t now = sg_now_ms();
    if (w->pp_log_ms != 0 && now - w->pp_log_ms < SG_PP_LOG_EVERY_MS) {
        w->pp_log_suppressed++;
        return;
    }
    sg_log_warn("session %s: %s%s%s; closed (PROXY protocol; %u similar not logged)", s->peer, what,
                why != NULL ? ": " : "", why != NULL ? why : "", w->pp_log_suppressed);
    w->pp_log_ms = now;
    w->pp_log_suppressed = 0;
}

static void on_timer(evutil_socket_t fd, short what, void *arg)
{
    struct sg_session *s = arg;
    if (s->state == SG_SESS_PROXY) {
        SG_STAT_INC(&s->core->stats, proxy_timeouts);
        session_pp_log(s, "no complete PROXY header within the handshake timeout", NULL);
        sg_session_free(s);
        return;
    }
    if (s->state == SG_SESS_HANDSHAKE) {
        sg_log_debug("session %s: no Hello within the handshake timeout", s->peer);
        sg_session_fail(s, SLOTGATE__V1__CODE__CODE_HANDSHAKE_REQUIRED,
                        "no Hello within the handshake timeout");
        return;
    }
    if (s->state == SG_SESS_READY) {
        SG_STAT_INC(&s->core->stats, write_gather_timeouts);
        session_flush(s); /* write gathering's bound (session_answered) */
        return;
    }
    sg_session_free(s); /* CLOSING and the client did not read: give up */
}

/* Frames at least this large get a buffer of their own (session_encode). */
#define SG_SEND_OWN_BUFFER (16 * 1024)

/* Cleanup of bytes added by reference: frees the block they lie in. */
static void free_block(const void *data, size_t len, void *block)
{
    (void)data;
    (void)len;
    free(block);
}

/* What a frame around a value sent by reference may hold besides it. */
#define SG_SEND_GAP_MAX 512

/*
 * A large value sent by reference: the frame's bytes before the value,
 * the value itself (its block, taken from the request, freed once
 * written), then the bytes after it. 1 when done, 0 when this frame is not
 * for it (nothing appended), -1 when out of memory part way (the stream
 * cannot be trusted: the caller closes the session).
 */
static int session_encode_by_ref(struct evbuffer *out, const Slotgate__V1__ServerMessage *m,
                                 size_t size, uint8_t **block)
{
    const ProtobufCBinaryData *v = &m->response->value;
    if (block == NULL || *block == NULL || v->len < SG_SEND_OWN_BUFFER ||
        size - v->len > SG_SEND_GAP_MAX)
        return 0;
    /* The frame's own bytes go by reference too, from a small block freed
     * with its last piece: appended with evbuffer_add after a referenced
     * value, they would get a chain sized like the value's (libevent sizes
     * a new chain from the last one), 256 KiB for 30 bytes. */
    size_t gap = 0, n = size - v->len;
    uint8_t *frame = malloc(n);
    if (frame == NULL)
        return 0;
    sg_fastpb_encode_server_gap(m, frame, size, &gap);
    int tail = n > gap;
    if (evbuffer_add_reference(out, frame, gap, tail ? NULL : free_block, frame) != 0) {
        free(frame);
        return 0;
    }
    if (evbuffer_add_reference(out, v->data, v->len, free_block, *block) != 0) {
        if (tail)
            free(frame); /* what was added keeps pointing into it: the caller closes */
        return -1;
    }
    *block = NULL; /* the output buffer owns it now */
    if (tail && evbuffer_add_reference(out, frame + gap, n - gap, free_block, frame) != 0) {
        free(frame);
        return -1;
    }
    return 1;
}

/*
 * Append m's frame (size bytes; fast: fastpb writes it) to out. A large
 * one is not reserved in out (libevent would round the chain up to the
 * next power of two: for a 64 KiB value a 128 KiB mmap and munmap per
 * response): its value goes by reference when the request hands over the
 * block it lies in (block), else the frame is encoded into a buffer of
 * exactly its size, added by reference and freed once written. 0, or -1
 * when out of memory.
 */
static int session_encode(struct evbuffer *out, const Slotgate__V1__ServerMessage *m, size_t size,
                          int fast, uint8_t **block)
{
    if (size >= SG_SEND_OWN_BUFFER) {
        int rc = fast ? session_encode_by_ref(out, m, size, block) : 0;
        if (rc != 0)
            return rc > 0 ? 0 : -1;
        uint8_t *buf = malloc(size);
        if (buf == NULL)
            return -1;
        size_t len = fast ? sg_fastpb_encode_server(m, buf, size) : sg_frame_encode_server(m, buf);
        if (evbuffer_add_reference(out, buf, len, free_block, buf) != 0) {
            free(buf);
            return -1;
        }
        return 0;
    }
    struct evbuffer_iovec v;
    if (evbuffer_reserve_space(out, (ev_ssize_t)size, &v, 1) < 1)
        return -1;
    v.iov_len =
        fast ? sg_fastpb_encode_server(m, v.iov_base, size) : sg_frame_encode_server(m, v.iov_base);
    evbuffer_commit_space(out, &v, 1);
    return 0;
}

/* Output at least this large is written at once: gathering saves a
 * write, which only counts against small answers. */
#define SG_GATHER_MAX_BYTES (64 * 1024)

/* Ask for the output to be written this loop turn. */
static void session_flush(struct sg_session *s)
{
    if (s->holding) {
        s->holding = 0;
        if (s->state == SG_SESS_READY)
            evtimer_del(s->timer);
    }
    sg_conn_flush_soon(s->conn);
}

/* Whether answers in the output wait for the rest of their read's. */
static void session_hold_decide(struct sg_session *s)
{
    uint32_t us = s->core->cfg->write_gather_us;
    if (s->batch_left == 0 || us == 0 ||
        evbuffer_get_length(sg_conn_output(s->conn)) >= SG_GATHER_MAX_BYTES) {
        session_flush(s);
        return;
    }
    if (!evtimer_pending(s->timer, NULL)) {
        struct timeval tv = {us / 1000000, us % 1000000};
        evtimer_add(s->timer, &tv);
    }
}

/*
 * Write gathering: r's answer is in the output. The answers to the
 * requests of one read (a client's pipelined batch) come from several
 * masters, in different loop turns; each written as it comes costs a
 * write (and, over TLS, a record) per master. So an answer to a request
 * of the latest read waits until that read's last request is answered,
 * a new read comes, SG_GATHER_MAX_BYTES are waiting, or
 * limits.write_gather_us have passed since the first was held: a slow or
 * dead master delays the others' answers by that much at most (counted
 * in write_gather_timeouts when it does); 0 turns it off. Inside
 * session_process the decision waits for the end of the read, so requests
 * answered on the spot (a PING, an error) do not flush the read's first
 * answers alone.
 */
static void session_answered(struct sg_session *s, struct sg_request *r)
{
    if (r->batch == s->batch && s->batch_left > 0)
        s->batch_left--;
    s->holding = 1;
    if (!s->processing && s->state == SG_SESS_READY)
        session_hold_decide(s);
    else if (s->state != SG_SESS_READY)
        session_flush(s);
}

static void session_send(struct sg_session *s, const Slotgate__V1__ServerMessage *m,
                         uint8_t **block, struct sg_request *r)
{
    if (s->state == SG_SESS_CLOSING)
        return; /* the stream ends with the ConnectionError already queued */
    struct evbuffer *out = sg_conn_output(s->conn);
    size_t fast = sg_fastpb_server_size(m); /* 0: not a Response fastpb writes */
    size_t size = fast != 0 ? fast : sg_frame_server_size(m);
    if (session_encode(out, m, size, fast != 0, block) != 0) {
        /* No room for the frame: this connection cannot be answered
         * correctly any more; close it (next turn), not the process. */
        sg_log_error("session %s: out of memory for %zu output bytes; closed", s->peer, size);
        session_close_now(s);
        return;
    }
    if (r == NULL)
        session_flush(s);
    else
        session_answered(s, r);
    SG_STAT_ADD(&s->core->stats, bytes_out, size);
    if (m->msg_case == SLOTGATE__V1__SERVER_MESSAGE__MSG_ERROR)
        return; /* the last frame: sg_session_fail closes */
    uint32_t limit = s->core->cfg->max_output_bytes;
    if (limit != 0 && evbuffer_get_length(out) > limit) {
        SG_STAT_INC(&s->core->stats, output_limit_closes);
        sg_log_warn("session %s: owed %zu bytes, over limits.max_output_bytes (%u); closed",
                    s->peer, evbuffer_get_length(out), limit);
        sg_session_fail(s, SLOTGATE__V1__CODE__CODE_OUTPUT_LIMIT,
                        "replies not read: over the server's output limit");
    } else if (session_over_limits(s)) {
        session_pause(s);
    }
    session_enforce_budget(s->core);
}

static void session_snapshot_drop(struct sg_session *s, struct sg_request *r)
{
    const struct sg_core_hooks *hk = s->core->hooks;
    if (hk != NULL && hk->snapshot_drop != NULL)
        hk->snapshot_drop(s->core->owner, r->ks, r->pending > 0);
}

/* A request of this session was answered: send it, and it leaves the list. */
static void session_respond(void *owner, struct sg_request *r, const Slotgate__V1__ServerMessage *m,
                            uint8_t **block)
{
    struct sg_session *s = owner;
    session_send(s, m, block, r);
    if (r == s->starting)
        s->start_done = 1; /* answered inside sg_request_start: never held */
    else
        session_snapshot_drop(s, r);
    session_value_release(s, r);
    TAILQ_REMOVE(&s->requests, r, entry);
    s->inflight--;
    if (s->draining && s->inflight == 0) {
        sg_session_fail(s, SLOTGATE__V1__CODE__CODE_SHUTTING_DOWN, "server is shutting down");
        return;
    }
    session_maybe_resume(s);
}

static const struct sg_request_sink session_sink = {session_respond};

void sg_session_drain(struct sg_session *s)
{
    if (s->state == SG_SESS_PROXY) {
        sg_session_free(s); /* nothing was said yet: nothing to answer */
        return;
    }
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
    if (s->state == SG_SESS_CLOSING || s->conn == NULL)
        return;
    Slotgate__V1__ConnectionError e = SLOTGATE__V1__CONNECTION_ERROR__INIT;
    e.code = code;
    e.message = (char *)message;
    Slotgate__V1__ServerMessage m = SLOTGATE__V1__SERVER_MESSAGE__INIT;
    m.msg_case = SLOTGATE__V1__SERVER_MESSAGE__MSG_ERROR;
    m.error = &e;
    session_send(s, &m, NULL, NULL);
    s->state = SG_SESS_CLOSING;
    /*
     * Lingering close, as HAProxy and nginx do: keep reading and discarding
     * what the client still sends until it has seen the ConnectionError and
     * closed, or the linger timer fires. Closing a socket with unread input
     * makes the kernel send a reset, and a client still writing would then get
     * EPIPE/ECONNRESET before it reads the SHUTTING_DOWN that tells it its
     * unanswered requests were never executed.
     */
    s->paused = 0;
    sg_conn_read_enable(s->conn, 1);
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
    const struct sg_config *cfg = s->core->cfg;
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
    session_send(s, &m, NULL, NULL);
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
    /* Hold the config snapshot r->ks points into while r is in flight,
     * unless sg_request_start answered it before returning. */
    s->starting = r;
    s->start_done = 0;
    TAILQ_INSERT_TAIL(&s->requests, r, entry);
    s->inflight++;
    r->batch = s->batch;
    s->batch_left++;
    session_value_count(s, r);
    sg_request_start(r, &session_sink, s);
    const struct sg_core_hooks *hk = s->core->hooks;
    if (!s->start_done && r->ks != NULL && hk != NULL && hk->snapshot_hold != NULL)
        hk->snapshot_hold(s->core->owner, r->ks);
    s->starting = NULL;
}

/* Decode and handle every whole frame in the input buffer. */
/* A frame that is not contiguous in the input buffer and fits here is
 * copied here for decoding (both codecs copy what they keep out of it). */
#define SG_FRAME_SCRATCH (128 * 1024)
static _Thread_local uint8_t frame_scratch[SG_FRAME_SCRATCH];

/*
 * The body of the whole frame at the front of in (its header not yet
 * drained; first: in's first chain, as peeked), contiguous, valid until in
 * changes: in place when it already is (the usual case: one read holds
 * many frames), else copied into the
 * thread's scratch buffer, else (larger) pulled up. evbuffer_pullup
 * allocates a chain of the next power of two above the frame and moves the
 * bytes into it: for a 64 KiB value, a 128 KiB mmap and munmap per request.
 */
static const uint8_t *session_frame_body(struct evbuffer *in, const struct evbuffer_iovec *first,
                                         uint32_t body_len)
{
    size_t need = SG_FRAME_HEADER + (size_t)body_len;
    if (first->iov_len >= need)
        return (const uint8_t *)first->iov_base + SG_FRAME_HEADER;
    struct evbuffer_ptr at;
    if (body_len <= sizeof(frame_scratch) &&
        evbuffer_ptr_set(in, &at, SG_FRAME_HEADER, EVBUFFER_PTR_SET) == 0 &&
        evbuffer_copyout_from(in, &at, frame_scratch, body_len) == (ev_ssize_t)body_len)
        return frame_scratch;
    const uint8_t *frame = evbuffer_pullup(in, (ev_ssize_t)need);
    return frame != NULL ? frame + SG_FRAME_HEADER : NULL;
}

/* A frame of at least this many bytes is taken by reference when it is a
 * SET whose value can be left where it lies (session_take_by_ref). */
#define SG_FRAME_BY_REF (16 * 1024)
/* What of such a frame may lie before its value and after it. */
#define SG_FRAME_GAP_HEAD 256
#define SG_FRAME_GAP_TAIL 256

/*
 * The whole frame at the front of in (body_len bytes after its header) as
 * a request whose SET value was moved, not copied, out of in: the frame's
 * other bytes (at most SG_FRAME_GAP_HEAD before the value and
 * SG_FRAME_GAP_TAIL after it) are copied out and decoded around the value
 * (sg_request_decode_gap), then the value's chains go to the request
 * (sg_request_take_value; only the part of a chain it shares with other
 * bytes is copied) and the frame leaves in. 1 with *out, 0 when the frame
 * is not for it (in untouched: the caller decodes it whole), -1 out of
 * memory part way (the stream cannot be trusted: the caller closes).
 */
static int session_take_by_ref(struct sg_session *s, struct evbuffer *in, uint32_t body_len,
                               struct sg_request **out)
{
    uint8_t g[SG_FRAME_GAP_HEAD + SG_FRAME_GAP_TAIL];
    size_t head = body_len < SG_FRAME_GAP_HEAD ? body_len : SG_FRAME_GAP_HEAD, at, len;
    struct evbuffer_ptr ptr;
    if (evbuffer_ptr_set(in, &ptr, SG_FRAME_HEADER, EVBUFFER_PTR_SET) != 0 ||
        evbuffer_copyout_from(in, &ptr, g, head) != (ev_ssize_t)head ||
        sg_fastpb_find_value(g, head, body_len, &at, &len) != 0 || len < SG_FRAME_BY_REF)
        return 0;
    size_t tail = body_len - at - len; /* at <= head: the value's length was in it */
    if (tail > SG_FRAME_GAP_TAIL)
        return 0;
    if (tail > 0 &&
        (evbuffer_ptr_set(in, &ptr, SG_FRAME_HEADER + at + len, EVBUFFER_PTR_SET) != 0 ||
         evbuffer_copyout_from(in, &ptr, g + at, tail) != (ev_ssize_t)tail))
        return 0;
    struct sg_request *r = sg_request_decode_gap(s->core, g, at + tail, at, len);
    if (r == NULL)
        return 0;
    evbuffer_drain(in, SG_FRAME_HEADER + at);
    if (sg_request_take_value(r, in) != 0) {
        sg_request_discard(r);
        return -1;
    }
    evbuffer_drain(in, tail);
    *out = r;
    return 1;
}

/* A partial frame waits for the rest of it in the kernel when at least
 * this much of it is missing (plaintext listeners; session_rcvlowat). */
#define SG_LOWAT_MIN (8 * 1024)
#define SG_LOWAT_MAX (1024 * 1024)

/*
 * Plaintext: while a large frame is incomplete, the socket is readable
 * only once the rest of it (want bytes, capped) has arrived, so its
 * pieces do not each cost a wake-up and a read; want 0 puts it back.
 * Never over TLS: ciphertext kept by conn.c for a partial record would
 * make the bytes still to come fewer than want, and the frame would wait
 * for bytes that never come.
 */
static void session_rcvlowat(struct sg_session *s, size_t want)
{
    int v = want >= SG_LOWAT_MIN ? (int)(want < SG_LOWAT_MAX ? want : SG_LOWAT_MAX) : 1;
    if (s->core->server_tls != NULL || v == (s->lowat != 0 ? s->lowat : 1))
        return;
    if (setsockopt(sg_conn_fd(s->conn), SOL_SOCKET, SO_RCVLOWAT, &v, sizeof(v)) == 0)
        s->lowat = v;
}

static void session_process_frames(struct sg_session *s)
{
    const struct sg_config *cfg = s->core->cfg;
    struct evbuffer *in = sg_conn_input(s->conn);
    while (s->state != SG_SESS_CLOSING && !s->paused) {
        uint8_t hdr_copy[SG_FRAME_HEADER];
        const uint8_t *hdr = hdr_copy;
        uint32_t body_len = 0;
        /* The frame usually lies whole in the first chain: its header is
         * read there with no copy, and its body (session_frame_body). */
        struct evbuffer_iovec first;
        size_t have;
        if (evbuffer_peek(in, -1, NULL, &first, 1) < 1)
            return;
        if (first.iov_len >= SG_FRAME_HEADER) {
            hdr = first.iov_base;
            have = first.iov_len; /* at least; the whole length when needed */
        } else {
            have = evbuffer_get_length(in);
            if (have < SG_FRAME_HEADER)
                return;
            evbuffer_copyout(in, hdr_copy, SG_FRAME_HEADER);
        }
        int st = sg_frame_check(hdr, SG_FRAME_HEADER, cfg->max_frame_bytes, &body_len);
        if (st == SG_FRAME_TOO_LARGE) {
            SG_STAT_INC(&s->core->stats, bad_frames);
            sg_log_info("session %s: frame of %u bytes over the limit", s->peer, body_len);
            sg_session_fail(s, SLOTGATE__V1__CODE__CODE_FRAME_TOO_LARGE,
                            "frame larger than max_frame_bytes");
            return;
        }
        if (have < SG_FRAME_HEADER + (size_t)body_len && hdr != hdr_copy)
            have = evbuffer_get_length(in); /* more than the first chain */
        if (have < SG_FRAME_HEADER + (size_t)body_len) {
            session_rcvlowat(s, SG_FRAME_HEADER + (size_t)body_len - have);
            return;
        }
        session_rcvlowat(s, 0);
        struct sg_request *r = NULL;
        int by_ref = body_len >= SG_FRAME_BY_REF ? session_take_by_ref(s, in, body_len, &r) : 0;
        const uint8_t *body = by_ref != 0 ? NULL : session_frame_body(in, &first, body_len);
        if (by_ref < 0 || (by_ref == 0 && body == NULL)) {
            sg_log_error("session %s: out of memory for a %u-byte frame; closed", s->peer,
                         body_len);
            session_close_now(s);
            return;
        }
        if (by_ref == 0) {
            r = sg_request_decode(s->core, body, body_len);
            evbuffer_drain(in, SG_FRAME_HEADER + body_len);
        }
        SG_STAT_ADD(&s->core->stats, bytes_in, SG_FRAME_HEADER + body_len);
        if (r == NULL) {
            SG_STAT_INC(&s->core->stats, bad_frames);
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

/* A read: its requests are a new batch for write gathering. */
static void session_process(struct sg_session *s)
{
    if (s->holding)
        session_flush(s); /* the previous read's answers wait no longer */
    s->batch++;
    s->batch_left = 0;
    s->processing = 1;
    /* The read's requests arrived together: one clock reading serves
     * their start times (and their sub-ops' departures). */
    struct sg_stats *st = &s->core->stats;
    uint64_t outer = sg_stats_clock_hold(st);
    session_process_frames(s);
    sg_stats_clock_drop(st, outer);
    s->processing = 0;
    if (s->holding && s->state == SG_SESS_READY)
        session_hold_decide(s);
}

static void on_read(void *arg)
{
    struct sg_session *s = arg;
    if (s->state == SG_SESS_CLOSING) {
        struct evbuffer *in = sg_conn_input(s->conn);
        evbuffer_drain(in, evbuffer_get_length(in)); /* never read or executed */
        return;
    }
    session_process(s);
}

static void on_drained(void *arg)
{
    struct sg_session *s = arg;
    if (s->state == SG_SESS_CLOSING) {
        /* Everything is out, ConnectionError last: half-close and free on the
         * client's EOF or at the linger timer (on_timer). */
        shutdown(sg_conn_fd(s->conn), SHUT_WR);
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

/*
 * TLS (or plaintext) and the limits, once the client's address is known:
 * straight after accept, or after the PROXY header.
 */
static void session_start(struct sg_session *s)
{
    struct sg_core *w = s->core;
    const struct sg_config *cfg = w->cfg;
    SSL *ssl = NULL;
    if (w->server_tls != NULL &&
        (sg_fault_client_ssl_new() || (ssl = SSL_new(w->server_tls)) == NULL)) {
        /* Never fall back to plaintext on a TLS listener. */
        sg_log_error("session %s: SSL_new failed; closed", s->peer);
        SG_STAT_INC(&w->stats, tls_failures);
        sg_session_free(s);
        return;
    }
    int fd = s->fd;
    s->fd = -1;
    s->conn = sg_conn_new(w->base, fd, ssl, 1, 0, 0, &session_cbs, s);
    if (s->conn == NULL) {
        sg_log_error("session %s: out of memory setting up the connection; closed", s->peer);
        sg_session_free(s);
        return;
    }
    /* Sealed TLS records not yet written are memory owed to the client too. */
    sg_conn_count_cipher(s->conn, &w->buffered);
    s->resume_ev = event_new(w->base, -1, 0, on_resume, s);
    s->in_cb = evbuffer_add_cb(sg_conn_input(s->conn), session_buffer_changed, w);
    s->out_cb = evbuffer_add_cb(sg_conn_output(s->conn), session_buffer_changed, w);
    if (s->resume_ev == NULL || s->in_cb == NULL || s->out_cb == NULL) {
        sg_log_error("session %s: out of memory setting up the connection; closed", s->peer);
        sg_session_free(s);
        return;
    }
    s->state = SG_SESS_HANDSHAKE;
    uint32_t n = atomic_load(&sg_connections);
    if (n > cfg->max_connections) {
        SG_STAT_INC(&w->stats, connections_rejected);
        sg_log_warn("session %s: rejected, limits.max_connections (%u) reached", s->peer,
                    cfg->max_connections);
        sg_session_fail(s, SLOTGATE__V1__CODE__CODE_TOO_MANY_CONNECTIONS, "too many connections");
        return;
    }
    if (cfg->max_connections_per_ip > 0) {
        uint32_t from_ip = ip_take((const struct sockaddr *)&s->client);
        s->ip_counted = 1;
        if (from_ip > cfg->max_connections_per_ip) {
            SG_STAT_INC(&w->stats, connections_rejected_ip);
            sg_log_warn("session %s: rejected, limits.max_connections_per_ip (%u) reached", s->peer,
                        cfg->max_connections_per_ip);
            sg_session_fail(s, SLOTGATE__V1__CODE__CODE_TOO_MANY_CONNECTIONS,
                            "too many connections from this address");
            return;
        }
    }
    uint32_t hs = cfg->handshake_timeout_ms;
    struct timeval tv = {hs / 1000, (hs % 1000) * 1000};
    evtimer_add(s->timer, &tv);
}

static void session_pp_reject(struct sg_session *s, const char *why)
{
    SG_STAT_INC(&s->core->stats, proxy_bad_header);
    session_pp_log(s, "bad or missing PROXY header", why);
    sg_session_free(s);
}

/*
 * The socket is readable in SG_SESS_PROXY. Peek at what is there after the
 * bytes already taken; if it completes the header, take exactly the rest of
 * the header; if the header is still incomplete, every peeked byte belongs
 * to it (the parser's contract), so take them all (no busy loop on a
 * level-triggered socket, nothing of the TLS stream consumed).
 */
static void on_pp_read(evutil_socket_t fd, short what, void *arg)
{
    struct sg_session *s = arg;
    const struct sg_config *cfg = s->core->cfg;
    size_t room = SG_PP_MAX - s->pp_len;
    ssize_t n = recv(fd, s->pp_buf + s->pp_len, room, MSG_PEEK);
    if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR))
        return;
    if (n == 0 && s->pp_len == 0) {
        /* Connected and closed without a byte: a TCP-level probe (some
         * balancers' health checks), not a bad header. */
        sg_log_debug("session %s: closed before sending anything", s->peer);
        sg_session_free(s);
        return;
    }
    if (n <= 0) {
        session_pp_reject(s, n == 0 ? "closed before the header ended" : strerror(errno));
        return;
    }
    struct sg_pp_header h;
    const char *why = NULL;
    int rc = sg_proxyproto_parse(s->pp_buf, s->pp_len + (size_t)n, cfg->proxy_protocol, &h, &why);
    if (rc < 0) {
        session_pp_reject(s, why);
        return;
    }
    size_t take = rc > 0 ? (size_t)rc - s->pp_len : (size_t)n;
    if (recv(fd, s->pp_buf + s->pp_len, take, 0) != (ssize_t)take) {
        session_pp_reject(s, "short read of peeked bytes");
        return;
    }
    s->pp_len += take;
    if (rc == 0)
        return;
    event_free(s->pp_ev);
    s->pp_ev = NULL;
    free(s->pp_buf);
    s->pp_buf = NULL;
    evtimer_del(s->timer);
    snprintf(s->via, sizeof(s->via), "%s", s->peer);
    if (!h.local) {
        memcpy(&s->client, &h.src, sizeof(s->client));
        sg_sockaddr_format((const struct sockaddr *)&s->client, s->peer, sizeof(s->peer));
    }
    sg_log_debug("session %s: accepted via %s (PROXY v%d%s)", s->peer, s->via, h.version,
                 h.local ? ", LOCAL: the balancer's own connection" : "");
    session_start(s);
}

void sg_session_new(struct sg_core *w, int fd, const struct sockaddr *sa, int salen)
{
    const struct sg_config *cfg = w->cfg;
    struct sg_session *s = sg_calloc(1, sizeof(*s));
    s->core = w;
    s->fd = fd;
    TAILQ_INIT(&s->requests);
    if ((size_t)salen <= sizeof(s->client))
        memcpy(&s->client, sa, (size_t)salen);
    sg_sockaddr_format(sa, s->peer, sizeof(s->peer));
    int one = 1;
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
    s->timer = evtimer_new(w->base, on_timer, s);
    if (s->timer == NULL) {
        sg_log_error("session %s: out of memory; closed", s->peer);
        close(fd);
        free(s);
        return;
    }
    TAILQ_INSERT_TAIL(&w->sessions, s, entry);
    atomic_fetch_add(&sg_connections, 1);
    SG_STAT_INC(&w->stats, connections_accepted);
    SG_STAT_INC(&w->stats, connections_active);
    if (cfg->proxy_protocol == SG_PP_OFF) {
        sg_log_debug("session %s: accepted", s->peer);
        session_start(s);
        return;
    }
    if (!sg_cidr_match(cfg->proxy_trusted, cfg->n_proxy_trusted, sa)) {
        SG_STAT_INC(&w->stats, proxy_untrusted);
        session_pp_log(s, "peer not in listen.proxy_trusted", NULL);
        sg_session_free(s);
        return;
    }
    s->state = SG_SESS_PROXY;
    s->pp_buf = sg_malloc(SG_PP_MAX);
    s->pp_ev = event_new(w->base, fd, EV_READ | EV_PERSIST, on_pp_read, s);
    event_add(s->pp_ev, NULL);
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
        if (r != s->starting)
            session_snapshot_drop(s, r);
        session_value_release(s, r);
        sg_request_orphan(r);
    }
    TAILQ_REMOVE(&s->core->sessions, s, entry);
    atomic_fetch_sub(&sg_connections, 1);
    SG_STAT_DEC(&s->core->stats, connections_active);
    if (s->ip_counted)
        ip_release((const struct sockaddr *)&s->client);
    event_free(s->timer);
    if (s->resume_ev != NULL)
        event_free(s->resume_ev);
    if (s->pp_ev != NULL)
        event_free(s->pp_ev);
    free(s->pp_buf);
    if (s->conn != NULL) {
        /* The buffers leave the worker's count with the connection. */
        struct evbuffer *in = sg_conn_input(s->conn), *out = sg_conn_output(s->conn);
        if (s->in_cb != NULL) {
            evbuffer_remove_cb_entry(in, s->in_cb);
            s->core->buffered -= evbuffer_get_length(in);
        }
        if (s->out_cb != NULL) {
            evbuffer_remove_cb_entry(out, s->out_cb);
            s->core->buffered -= evbuffer_get_length(out);
        }
        SG_STAT_SET(&s->core->stats, buffered_bytes, s->core->buffered);
        sg_conn_free(s->conn);
    } else if (s->fd >= 0)
        close(s->fd);
    struct sg_core *w = s->core;
    free(s);
    if (w->hooks != NULL && w->hooks->session_closed != NULL)
        w->hooks->session_closed(w->owner);
}

struct sg_session *sg_session_first(struct sg_core *core)
{
    return TAILQ_FIRST(&core->sessions);
}

struct sg_session *sg_session_next(struct sg_session *s)
{
    return TAILQ_NEXT(s, entry);
}

static const char *state_name(int state)
{
    switch (state) {
    case SG_SESS_PROXY:
        return "proxy-header";
    case SG_SESS_HANDSHAKE:
        return "handshake";
    case SG_SESS_READY:
        return "ready";
    case SG_SESS_CLOSING:
        return "closing";
    }
    return "unknown";
}

void sg_session_describe(const struct sg_session *s, struct sg_text *out)
{
    struct sg_conn_io io = {0, 0};
    if (s->conn != NULL)
        sg_conn_get_io(s->conn, &io);
    sg_text_printf(out, "client=%s via=%s state=%s inflight=%u paused=%u reads=%llu writes=%llu",
                   s->peer[0] ? s->peer : "-", s->via[0] ? s->via : "-", state_name(s->state),
                   s->inflight, (unsigned)s->paused, (unsigned long long)io.reads,
                   (unsigned long long)io.writes);
}
