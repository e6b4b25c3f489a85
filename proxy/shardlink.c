/*
 * shardlink - one connection from one event loop to one Redis node.
 *
 * Ordering is the invariant everything rests on: replies arrive in the order
 * commands were written, so the FIFO head is always the record the next
 * reply belongs to. An ASK redirect writes ASKING before the command; that
 * record carries asking_pending so its extra +OK is consumed in place.
 * Whenever the order can no longer be trusted (EOF, I/O or protocol error,
 * a reply with no record waiting) the link is reset: the connection is
 * dropped and every pending record is handed back through its failure
 * callback (the request layer retries reads and fails writes with a typed
 * error). The link knows nothing of what its records belong to.
 */
#include "shardlink.h"

#include <errno.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>
#include <netinet/tcp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <event2/buffer.h>
#include <openssl/err.h>
#include <openssl/ssl.h>

#include "conn.h"
#include "core.h"
#include "fault.h"
#include "log.h"
#include "resp.h"
#include "stats.h"
#include "tls.h"
#include "util.h"

TAILQ_HEAD(sg_linkop_fifo, sg_linkop);

struct sg_shardlink {
    struct sg_core *core;
    struct sg_addr addr;
    int state;
    struct sg_conn *conn;
    /* Bumped by every reset: code that may reset the link (a reply
     * callback) compares it, not conn, whose address may be reused. */
    uint64_t generation;
    redisReader *reader;
    struct sg_resp_scan scan; /* headers checked before the reader sees them */
    uint64_t max_bulk;        /* the scan's bulk limit, for bulks taken in place */
    struct evbuffer *scratch; /* for cutting a half-formatted command off */
    struct sg_linkop_fifo fifo;
    uint32_t n_pending;
    uint32_t backoff_ms;
    uint64_t down_since_ms;
    struct event *reconnect_ev;
    struct event *stall_ev;    /* periodic check for a hung node */
    uint64_t last_progress_ms; /* last reply, or first command owed */
    int readonly;              /* replica link: READONLY after connect */
    int retired;               /* node left the topology: no new commands */
    int stats_slot;            /* node counters (stats.h), by address and role */
    int stats_state;           /* state last published to them, -1: none */
    struct sg_linkop auth_op, readonly_op;
};

static void link_connect(struct sg_shardlink *l);

/* The worker's counters for this link's node (stats.h). */
static struct sg_node_stats *link_stats(struct sg_shardlink *l)
{
    return &l->core->stats.node[l->stats_slot];
}

/* Every state change goes through here, so /metrics counts links per state. */
static void link_set_state(struct sg_shardlink *l, int state)
{
    l->state = state;
    if (l->stats_state == state)
        return;
    struct sg_node_stats *ns = link_stats(l);
    if (l->stats_state >= 0)
        SG_STAT_SET(ns, links[l->stats_state], 0);
    SG_STAT_SET(ns, links[state], 1);
    l->stats_state = state;
}

/* Queue depth gauge: commands written and owed a reply. */
static void link_publish_pending(struct sg_shardlink *l)
{
    SG_STAT_SET(link_stats(l), pending, l->n_pending);
}

static void link_schedule_reconnect(struct sg_shardlink *l)
{
    uint32_t max = l->core->cfg->reconnect_backoff_max_ms;
    l->backoff_ms = l->backoff_ms == 0 ? 50 : l->backoff_ms * 2;
    if (l->backoff_ms > max)
        l->backoff_ms = max;
    struct timeval tv = {l->backoff_ms / 1000, (l->backoff_ms % 1000) * 1000};
    evtimer_add(l->reconnect_ev, &tv);
}

/*
 * Drop the connection and hand every pending sub-op back to its request.
 * A link that was working reconnects at once (a single dropped connection
 * costs no delay); one that never got up backs off.
 */
static void link_reset(struct sg_shardlink *l, const char *why)
{
    int was_ready = l->state == SG_LINK_READY;
    sg_log_warn("worker %d: link %s:%d reset: %s (%u pending)", l->core->id, l->addr.host,
                l->addr.port, why, l->n_pending);
    SG_STAT_INC(&l->core->stats, link_resets);
    SG_STAT_INC(link_stats(l), resets);
    l->generation++;
    sg_conn_free(l->conn);
    l->conn = NULL;
    redisReaderFree(l->reader);
    l->reader = NULL;
    link_set_state(l, SG_LINK_DOWN);
    l->down_since_ms = sg_now_ms();
    struct sg_linkop_fifo failed = TAILQ_HEAD_INITIALIZER(failed);
    TAILQ_CONCAT(&failed, &l->fifo, entry);
    l->n_pending = 0;
    link_publish_pending(l);
    if (l->core->hooks != NULL && l->core->hooks->topology_refresh != NULL)
        l->core->hooks->topology_refresh(l->core->owner);
    if (l->retired) {
        /* The node left the topology: no reconnect. */
    } else if (was_ready) {
        l->backoff_ms = 0;
        link_connect(l);
    } else {
        link_schedule_reconnect(l);
    }
    struct sg_linkop *op;
    while ((op = TAILQ_FIRST(&failed)) != NULL) {
        TAILQ_REMOVE(&failed, op, entry);
        op->link = NULL;
        op->asking_pending = 0;
        if (op->cbs != NULL)
            op->cbs->failure(op, 1);
    }
}

static void on_reconnect(evutil_socket_t fd, short what, void *arg)
{
    link_connect(arg);
}

/*
 * A node that stops answering without closing (SIGSTOP, a wedged process)
 * would let commands and their requests pile up on the link for ever: the
 * requests are answered at their deadlines, but their sub-ops stay owed.
 * Resetting the link after link_stall_ms without any reply bounds that
 * memory to what arrives in that window.
 */
static void on_stall_check(evutil_socket_t fd, short what, void *arg)
{
    struct sg_shardlink *l = arg;
    uint32_t stall = l->core->cfg->link_stall_ms;
    if (stall == 0 || l->n_pending == 0 || l->conn == NULL)
        return;
    if (sg_now_ms() - l->last_progress_ms >= stall) {
        char why[64];
        snprintf(why, sizeof(why), "no reply for %u ms", stall);
        link_reset(l, why);
    }
}

static int link_take_replies_at(struct sg_shardlink *l, uint64_t now_us, int one);
static struct sg_linkop *link_pop(struct sg_shardlink *l, uint64_t now_us);

/*
 * Match every complete reply in the reader to the FIFO head (with one set:
 * the one reply the reader was given, and no further call to hiredis,
 * which would leave it waiting for a next reply, not idle). Returns 0, or
 * -1 when the link was reset (the caller must not touch it any more). The
 * clock is read once for the batch: replies read together arrived together,
 * and requests they complete are answered at that time.
 */
static int link_take_replies_at(struct sg_shardlink *l, uint64_t now_us, int one)
{
    for (int taken = 0;; taken++) {
        if (one && taken == 1) {
            link_publish_pending(l);
            return 0;
        }
        void *r = NULL;
        if (redisReaderGetReply(l->reader, &r) != REDIS_OK) {
            link_reset(l, "protocol error from Redis");
            return -1;
        }
        if (r == NULL) {
            link_publish_pending(l);
            return 0;
        }
        redisReply *reply = r;
        struct sg_linkop *op = TAILQ_FIRST(&l->fifo);
        if (op == NULL) {
            freeReplyObject(reply);
            link_reset(l, "reply with no command waiting");
            return -1;
        }
        if (op->asking_pending) {
            SG_STAT_INC(&l->core->stats, backend_replies);
            l->last_progress_ms = sg_now_ms();
            op->asking_pending = 0;
            freeReplyObject(reply);
            continue;
        }
        if (op->cbs == NULL) {
            SG_STAT_INC(&l->core->stats, backend_replies);
            TAILQ_REMOVE(&l->fifo, op, entry);
            l->n_pending--;
            op->link = NULL;
            l->last_progress_ms = sg_now_ms();
            int bad = reply->type == REDIS_REPLY_ERROR;
            if (bad)
                sg_log_error("link %s:%d: %s failed: %s", l->addr.host, l->addr.port,
                             op == &l->auth_op ? "AUTH" : "READONLY", reply->str);
            freeReplyObject(reply);
            if (bad) {
                link_set_state(l, SG_LINK_CONNECTING); /* back off, do not reconnect */
                link_reset(l, "link set-up command failed");
                return -1;
            }
            continue;
        }
        link_pop(l, now_us);
        uint64_t gen = l->generation;
        op->cbs->reply(op, reply);
        if (l->generation != gen)
            return -1; /* the link was reset under us */
    }
}

/* The FIFO head is done: out of the FIFO, counted, timed. */
static struct sg_linkop *link_pop(struct sg_shardlink *l, uint64_t now_us)
{
    struct sg_linkop *op = TAILQ_FIRST(&l->fifo);
    TAILQ_REMOVE(&l->fifo, op, entry);
    l->n_pending--;
    op->link = NULL;
    SG_STAT_INC(&l->core->stats, backend_replies);
    sg_stats_backend_reply(&l->core->stats, l->stats_slot, now_us - op->sent_us);
    l->last_progress_ms = now_us / 1000; /* the batch's clock: CLOCK_MONOTONIC, as sg_now_ms */
    return op;
}

/*
 * 1 when hiredis holds no unparsed byte and no partial reply. A call that
 * found no reply leaves its stack set up for the next one (ridx 0) with
 * nothing of it read yet (its type still -1): that is idle too.
 */
static int reader_idle(const redisReader *r)
{
    return r->pos >= r->len && (r->ridx == -1 || (r->ridx == 0 && r->rstack[0].type < 0));
}

/* Bulk values shorter than this are lent to the simple callback in place. */
#define SG_LINK_LEND_MAX 4096

/*
 * The in-place path: when the FIFO head takes simple replies (cbs->simple)
 * and the reply at the head of the input is a bulk string, nil, status or
 * integer, hand it over without building a hiredis reply, and the replies
 * after it lying whole in the same chain too. Returns 1 when replies were
 * taken, 0 when the path does not apply (an error, an array, an odd
 * header: the caller feeds hiredis) or, with *wait set, when more bytes
 * are needed; -1 when the link was reset. Only called at a reply boundary
 * (hiredis idle), so the header scan's state is there too; a bulk's length
 * is checked against the same limit.
 */
static int link_take_simple(struct sg_shardlink *l, struct evbuffer *in, uint64_t now_us, int *wait)
{
    struct sg_linkop *op = TAILQ_FIRST(&l->fifo);
    if (op == NULL || op->cbs == NULL || op->cbs->simple == NULL || op->asking_pending)
        return 0;
    char hdr[SG_RESP_SIMPLE_LINE];
    size_t avail = evbuffer_get_length(in);
    /* Most replies lie whole in the input's first chain: read them there
     * (one copy of the value, one drain) rather than through copies. */
    struct evbuffer_iovec first = {NULL, 0};
    evbuffer_peek(in, -1, NULL, &first, 1);
    const char *at = first.iov_base;
    size_t seen = first.iov_len;
    if (seen < sizeof(hdr) && seen < avail) {
        ev_ssize_t got = evbuffer_copyout(in, hdr, avail < sizeof(hdr) ? avail : sizeof(hdr));
        at = hdr;
        seen = got > 0 ? (size_t)got : 0;
    }
    struct sg_resp_simple h;
    int rc = sg_resp_simple_header(at, seen, &h);
    if (rc != SG_RESP_SIMPLE_OK) {
        *wait = rc == SG_RESP_SIMPLE_MORE;
        return 0;
    }
    int64_t v = h.n;
    char *data = NULL;
    if (at != hdr) {
        /* In the chain: this reply and every one after it that lies whole
         * there, while the head takes simple replies, with one drain for
         * them all (a callback that resets the link frees the input: it is
         * not touched then). A bulk cut by the chain's end, or over the
         * limit, goes the way below when it comes first. */
        size_t off = 0;
        int taken = 0, borrowed;
        for (;;) {
            size_t left = first.iov_len - off, step = h.hlen;
            if (h.type == REDIS_REPLY_STRING) {
                if (h.hlen + (size_t)v + 2 > left || (uint64_t)v > l->max_bulk)
                    break;
                const char *p = at + h.hlen;
                if (p[v] != '\r' || p[v + 1] != '\n') {
                    evbuffer_drain(in, off);
                    SG_STAT_INC(&l->core->stats, link_protocol_errors);
                    link_reset(l, "protocol error from Redis: bulk string not ended by CRLF");
                    return -1;
                }
                /* Short values are lent where they lie (the input is
                 * drained after the walk); longer ones are copied out,
                 * for a session to send by reference. */
                borrowed = v < SG_LINK_LEND_MAX;
                if (borrowed) {
                    data = (char *)p;
                } else {
                    data = sg_malloc((size_t)v);
                    memcpy(data, p, (size_t)v);
                }
                step += (size_t)v + 2;
            } else if (h.type == REDIS_REPLY_STATUS) {
                borrowed = 0;
                memcpy(hdr, at, h.hlen); /* the text as a C string, in our copy */
                hdr[h.hlen - 2] = '\0';
                data = hdr + 1;
            } else { /* an integer or a nil */
                borrowed = 0;
                data = NULL;
            }
            off += step;
            taken++;
            op = link_pop(l, now_us);
            uint64_t gen = l->generation;
            op->cbs->simple(op, h.type, data, v, borrowed);
            if (l->generation != gen)
                return -1;
            op = TAILQ_FIRST(&l->fifo);
            if (op == NULL || op->cbs == NULL || op->cbs->simple == NULL || op->asking_pending)
                break;
            at = (const char *)first.iov_base + off;
            if (sg_resp_simple_header(at, first.iov_len - off, &h) != SG_RESP_SIMPLE_OK)
                break;
            v = h.n;
        }
        if (taken > 0) {
            evbuffer_drain(in, off);
            return 1;
        }
    }
    if (h.type == REDIS_REPLY_STATUS) { /* in hdr: one in the chain was taken above */
        hdr[h.hlen - 2] = '\0';         /* the CR, in our copy: the text is a C string */
        data = hdr + 1;
    } else if (h.type != REDIS_REPLY_INTEGER) { /* a bulk or nil: its bytes follow */
        if (v >= 0 && (uint64_t)v > l->max_bulk) {
            SG_STAT_INC(&l->core->stats, link_protocol_errors);
            link_reset(l, "protocol error from Redis: bulk header over the size limit");
            return -1;
        }
        if (avail < h.hlen + (v >= 0 ? (size_t)v + 2 : 0)) {
            *wait = 1;
            return 0;
        }
    }
    evbuffer_drain(in, h.hlen);
    if (h.type == REDIS_REPLY_STRING) {
        data = sg_malloc(v > 0 ? (size_t)v : 1);
        char crlf[2];
        if (evbuffer_remove(in, data, (size_t)v) != (ev_ssize_t)v ||
            evbuffer_remove(in, crlf, 2) != 2 || crlf[0] != '\r' || crlf[1] != '\n') {
            free(data);
            SG_STAT_INC(&l->core->stats, link_protocol_errors);
            link_reset(l, "protocol error from Redis: bulk string not ended by CRLF");
            return -1;
        }
    }
    op = link_pop(l, now_us);
    uint64_t gen = l->generation;
    op->cbs->simple(op, h.type, data, v, 0);
    return l->generation != gen ? -1 : 1;
}

/* Headers a reply may have for link_reply_len to measure it. */
#define LINK_WALK_MAX 4096

/*
 * The length of the reply at the head of in (any RESP2 reply: errors,
 * arrays, nested arrays), found by walking its headers without parsing
 * anything else. 1 with *len set when all of it is there; 0 when more
 * bytes are needed; -1 when the walk gives up (an odd header, a bulk over
 * max_bulk, more than LINK_WALK_MAX headers): the caller then feeds hiredis
 * whole chunks, and hiredis and the header scan judge the bytes.
 */
static int link_reply_len(struct evbuffer *in, uint64_t max_bulk, size_t *len)
{
    size_t avail = evbuffer_get_length(in);
    struct evbuffer_ptr pos;
    if (evbuffer_ptr_set(in, &pos, 0, EVBUFFER_PTR_SET) != 0)
        return -1;
    uint64_t remaining = 1;
    for (uint32_t walked = 0; remaining > 0; walked++) {
        if (walked >= LINK_WALK_MAX)
            return -1;
        size_t eol_len = 0;
        struct evbuffer_ptr eol = evbuffer_search_eol(in, &pos, &eol_len, EVBUFFER_EOL_CRLF_STRICT);
        if (eol.pos < 0)
            return avail - (size_t)pos.pos > SG_RESP_SCAN_MAX_LINE ? -1 : 0;
        size_t line = (size_t)(eol.pos - pos.pos);
        char hdr[24];
        size_t got = line < sizeof(hdr) ? line : sizeof(hdr);
        if (line < 1 || evbuffer_copyout_from(in, &pos, hdr, got) != (ev_ssize_t)got)
            return -1;
        /* Only a bulk's or an array's number is read: a longer line there
         * is odd (a status or error line may be long). */
        if ((hdr[0] == '$' || hdr[0] == '*') && got < line)
            return -1;
        size_t next = (size_t)eol.pos + 2;
        int64_t v = 0;
        remaining--;
        switch (hdr[0]) {
        case '+':
        case '-':
        case ':':
            break;
        case '$':
            if (sg_resp_number(hdr + 1, line - 1, &v) != 0 || v > (int64_t)max_bulk)
                return -1;
            if (v >= 0)
                next += (size_t)v + 2;
            break;
        case '*':
            if (sg_resp_number(hdr + 1, line - 1, &v) != 0 || v > LINK_WALK_MAX)
                return -1;
            if (v > 0)
                remaining += (uint64_t)v;
            break;
        default:
            return -1;
        }
        if (next > avail)
            return 0;
        if (evbuffer_ptr_set(in, &pos, next, EVBUFFER_PTR_SET) != 0)
            return -1;
    }
    *len = (size_t)pos.pos;
    return 1;
}

/*
 * Hand hiredis exactly len bytes from the head of in (checked by the
 * header scan first) and drain them. 0, or -1 after resetting the link.
 */
static int link_feed(struct sg_shardlink *l, struct evbuffer *in, size_t len)
{
    while (len > 0) {
        struct evbuffer_iovec vec;
        if (evbuffer_peek(in, -1, NULL, &vec, 1) <= 0) {
            /* Cannot happen (the bytes were counted); the order of what is
             * left could not be trusted. */
            link_reset(l, "reply bytes missing from the input");
            return -1;
        }
        size_t n = vec.iov_len < len ? vec.iov_len : len;
        const char *why = NULL;
        if (sg_resp_scan(&l->scan, vec.iov_base, n, &why) != 0) {
            char msg[128];
            snprintf(msg, sizeof(msg), "protocol error from Redis: %s", why);
            SG_STAT_INC(&l->core->stats, link_protocol_errors);
            link_reset(l, msg);
            return -1;
        }
        if (redisReaderFeed(l->reader, vec.iov_base, n) != REDIS_OK) {
            link_reset(l, "protocol error from Redis: reader refused input");
            return -1;
        }
        evbuffer_drain(in, n);
        len -= n;
    }
    return 0;
}

/*
 * Feed what was read to the reader one buffer chunk at a time, taking the
 * complete replies after each: hiredis shifts its buffer down after every
 * reply it returns, so feeding a megabyte of pipelined replies at once
 * would cost a memmove of the rest per reply. At a reply boundary a bulk
 * owed to a record that takes simple replies is taken in place
 * (link_take_simple); any other reply that is all there (an error, an
 * MGET group's array, a script's answer) is measured and hiredis gets
 * exactly its bytes, so the reader is idle again after it and the replies
 * behind it still go the in-place way (fed a whole chunk, hiredis would
 * read every reply of it, each paying a memmove of the rest).
 * The clock is read once for the batch: replies read together arrived
 * together, and requests they complete are answered at that time.
 */
static void on_read(void *arg)
{
    struct sg_shardlink *l = arg;
    struct evbuffer *in = sg_conn_input(l->conn);
    struct sg_stats *st = &l->core->stats;
    uint64_t outer = sg_stats_clock_hold(st), now_us = st->clock_us; /* one read per batch */
    struct evbuffer_iovec vec;
    for (;;) {
        if (reader_idle(l->reader)) {
            int wait = 0;
            int rc = link_take_simple(l, in, now_us, &wait);
            if (rc < 0)
                break;
            if (rc > 0)
                continue;
            if (wait)
                break;
            size_t len = 0;
            int m = link_reply_len(in, l->max_bulk, &len);
            if (m == 0)
                break; /* the rest of the reply is on its way */
            if (m > 0) {
                if (link_feed(l, in, len) != 0 || link_take_replies_at(l, now_us, 1) != 0)
                    break;
                continue;
            }
        }
        if (evbuffer_peek(in, -1, NULL, &vec, 1) <= 0)
            break;
        const char *why = NULL;
        if (sg_resp_scan(&l->scan, vec.iov_base, vec.iov_len, &why) != 0) {
            char msg[128];
            snprintf(msg, sizeof(msg), "protocol error from Redis: %s", why);
            SG_STAT_INC(&l->core->stats, link_protocol_errors);
            link_reset(l, msg);
            break;
        }
        if (redisReaderFeed(l->reader, vec.iov_base, vec.iov_len) != REDIS_OK) {
            link_reset(l, "protocol error from Redis: reader refused input");
            break;
        }
        evbuffer_drain(in, vec.iov_len);
        if (link_take_replies_at(l, now_us, 0) != 0)
            break;
    }
    link_publish_pending(l); /* the gauge, once per read (a reset publishes its own 0) */
    sg_stats_clock_drop(st, outer);
}

static void on_drained(void *arg)
{
    struct sg_shardlink *l = arg;
    SG_STAT_INC(&l->core->stats, backend_writes);
}

static void on_event(void *arg, int what)
{
    struct sg_shardlink *l = arg;
    if (what == SG_CONN_CONNECTED) {
        int one = 1;
        setsockopt(sg_conn_fd(l->conn), IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
        link_set_state(l, SG_LINK_READY);
        l->backoff_ms = 0;
        sg_log_debug("worker %d: link %s:%d up", l->core->id, l->addr.host, l->addr.port);
        return;
    }
    const char *verify = l->state == SG_LINK_CONNECTING ? sg_conn_verify_error(l->conn) : NULL;
    if (verify != NULL) {
        char why[160];
        snprintf(why, sizeof(why), "TLS: the node's certificate was refused: %s", verify);
        SG_STAT_INC(&l->core->stats, tls_failures);
        link_reset(l, why);
        return;
    }
    link_reset(l, what == SG_CONN_TIMEOUT ? "connect timed out"
                  : what == SG_CONN_EOF   ? "connection closed"
                                          : "I/O error");
}

static const struct sg_conn_cbs link_cbs = {on_read, on_drained, on_event};

/* Queue an AUTH as the link's first command when a password is set. */
static void link_queue_auth(struct sg_shardlink *l)
{
    const struct sg_config *cfg = l->core->cfg;
    if (cfg->redis_password[0] == '\0')
        return;
    struct evbuffer *out = sg_conn_output(l->conn);
    int with_user = cfg->redis_username[0] != '\0';
    sg_resp_begin(out, with_user ? 3 : 2);
    sg_resp_arg_str(out, "AUTH");
    if (with_user)
        sg_resp_arg_str(out, cfg->redis_username);
    sg_resp_arg_str(out, cfg->redis_password);
    memset(&l->auth_op, 0, sizeof(l->auth_op));
    l->auth_op.link = l;
    TAILQ_INSERT_TAIL(&l->fifo, &l->auth_op, entry);
    l->n_pending++;
}

/* Replica links must declare READONLY before serving reads. */
static void link_queue_readonly(struct sg_shardlink *l)
{
    if (!l->readonly)
        return;
    struct evbuffer *out = sg_conn_output(l->conn);
    sg_resp_begin(out, 1);
    sg_resp_arg_str(out, "READONLY");
    memset(&l->readonly_op, 0, sizeof(l->readonly_op));
    l->readonly_op.link = l;
    TAILQ_INSERT_TAIL(&l->fifo, &l->readonly_op, entry);
    l->n_pending++;
}

/*
 * The TLS object of a link to Redis: SNI, and verification of the node's
 * certificate against the address we dial, as an IP address when it is one
 * (cluster nodes announce IPs), else as a host name. Returns 0, or -1 after
 * logging, with nothing allocated.
 */
static int link_tls_new(struct sg_shardlink *l, SSL **out)
{
    SSL *ssl = sg_fault_ssl_new() ? NULL : SSL_new(l->core->redis_tls);
    if (ssl == NULL) {
        sg_log_error("link %s:%d: SSL_new failed; not connecting", l->addr.host, l->addr.port);
        return -1;
    }
    int ok = sg_tls_set_peer_name(ssl, l->addr.host) == 0;
    if (!ok) {
        sg_log_error("link %s:%d: cannot set the name to verify; not connecting", l->addr.host,
                     l->addr.port);
        ERR_clear_error();
        SSL_free(ssl);
        return -1;
    }
    *out = ssl;
    return 0;
}

void sg_shardlink_reply_limits(const struct sg_config *cfg, uint64_t *max_elements,
                               uint64_t *max_bulk)
{
    uint64_t el = cfg->redis_max_reply_elements;
    if (el == 0) {
        uint64_t keys = cfg->max_batch_keys, page = cfg->invalidate_page_keys;
        /* A SCAN page may hold a few times COUNT; the rest is headroom for
         * the small arrays of scripts and set-up commands. */
        el = 2 * (keys > 4 * page ? keys : 4 * page) + 1024;
    }
    uint64_t bulk = cfg->redis_max_reply_bulk_bytes;
    if (bulk == 0) {
        uint64_t v = cfg->max_value_bytes;
        for (int i = 0; i < cfg->n_keyspaces; i++)
            if (cfg->keyspaces[i].max_value_bytes > v)
                v = cfg->keyspaces[i].max_value_bytes;
        bulk = v + 65536; /* envelope header and a margin for raw values */
    }
    *max_elements = el;
    *max_bulk = bulk;
}

static void link_connect(struct sg_shardlink *l)
{
    l->last_progress_ms = sg_now_ms();
    struct sg_core *w = l->core;
    struct sockaddr_storage ss;
    int sslen = sizeof(ss);
    char hp[300];
    snprintf(hp, sizeof(hp), strchr(l->addr.host, ':') ? "[%s]:%d" : "%s:%d", l->addr.host,
             l->addr.port);
    if (evutil_parse_sockaddr_port(hp, (struct sockaddr *)&ss, &sslen) != 0) {
        /* Not an IP literal (e.g. "localhost" as a seed): resolve it. This
         * blocks, but only for names, which cluster nodes do not announce. */
        struct evutil_addrinfo hints = {.ai_socktype = SOCK_STREAM}, *res = NULL;
        char port[16];
        snprintf(port, sizeof(port), "%d", l->addr.port);
        if (evutil_getaddrinfo(l->addr.host, port, &hints, &res) != 0 || res == NULL) {
            sg_log_warn("link %s:%d: cannot resolve", l->addr.host, l->addr.port);
            link_schedule_reconnect(l);
            return;
        }
        memcpy(&ss, res->ai_addr, res->ai_addrlen);
        sslen = (int)res->ai_addrlen;
        evutil_freeaddrinfo(res);
    }
    int fd = socket(ss.ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0 ||
        (connect(fd, (struct sockaddr *)&ss, (socklen_t)sslen) != 0 && errno != EINPROGRESS)) {
        sg_log_warn("link %s:%d: connect: %s", l->addr.host, l->addr.port, strerror(errno));
        if (fd >= 0)
            close(fd);
        link_set_state(l, SG_LINK_DOWN);
        link_schedule_reconnect(l);
        return;
    }
    SSL *ssl = NULL;
    if (w->redis_tls != NULL && link_tls_new(l, &ssl) != 0) {
        /* Never fall back to plaintext when redis.tls is on. */
        close(fd);
        link_set_state(l, SG_LINK_DOWN);
        link_schedule_reconnect(l);
        return;
    }
    /* Even a connect that completed at once is reported through the
     * writable event, so CONNECTED always arrives from the loop. */
    l->conn = sg_conn_new(w->base, fd, ssl, 0, 1, (int)w->cfg->connect_timeout_ms, &link_cbs, l);
    if (l->conn == NULL) {
        sg_log_error("link %s:%d: cannot allocate a connection", l->addr.host, l->addr.port);
        link_set_state(l, SG_LINK_DOWN);
        link_schedule_reconnect(l);
        return;
    }
    l->reader = redisReaderCreate();
    if (l->reader == NULL) {
        sg_log_error("link %s:%d: cannot create a reply reader", l->addr.host, l->addr.port);
        sg_conn_free(l->conn);
        l->conn = NULL;
        link_set_state(l, SG_LINK_DOWN);
        link_schedule_reconnect(l);
        return;
    }
    if (l->scratch == NULL && (l->scratch = evbuffer_new()) == NULL) {
        sg_log_error("link %s:%d: cannot allocate a buffer", l->addr.host, l->addr.port);
        sg_conn_free(l->conn);
        l->conn = NULL;
        redisReaderFree(l->reader);
        l->reader = NULL;
        link_set_state(l, SG_LINK_DOWN);
        link_schedule_reconnect(l);
        return;
    }
    uint64_t max_el, max_bulk;
    sg_shardlink_reply_limits(w->cfg, &max_el, &max_bulk);
    sg_resp_scan_init(&l->scan, max_el, max_bulk);
    l->max_bulk = max_bulk;
    link_set_state(l, SG_LINK_CONNECTING);
    (void)sg_resp_format_failed();
    link_queue_auth(l);
    link_queue_readonly(l);
    if (sg_resp_format_failed()) {
        /* Nothing else is queued yet: start over. */
        link_reset(l, "cannot format the set-up commands (out of memory)");
    }
}

struct sg_shardlink *sg_shardlink_new(struct sg_core *w, const struct sg_addr *addr, int readonly)
{
    struct sg_shardlink *l = sg_calloc(1, sizeof(*l));
    l->core = w;
    l->readonly = readonly;
    l->addr = *addr;
    l->stats_slot = sg_stats_node_slot(addr, readonly);
    l->stats_state = -1;
    TAILQ_INIT(&l->fifo);
    l->reconnect_ev = evtimer_new(w->base, on_reconnect, l);
    l->stall_ev = event_new(w->base, -1, EV_PERSIST, on_stall_check, l);
    uint32_t every = w->cfg->link_stall_ms / 4;
    if (every == 0 || every > 1000)
        every = 1000;
    struct timeval tv = {every / 1000, (every % 1000) * 1000};
    evtimer_add(l->stall_ev, &tv);
    link_connect(l);
    return l;
}

void sg_shardlink_free(struct sg_shardlink *l)
{
    if (l == NULL)
        return;
    sg_conn_free(l->conn);
    l->conn = NULL;
    l->state = SG_LINK_DOWN;
    if (l->stats_state >= 0) /* no link to this node any more */
        SG_STAT_SET(link_stats(l), links[l->stats_state], 0);
    l->n_pending = 0;
    link_publish_pending(l);
    struct sg_linkop *op;
    while ((op = TAILQ_FIRST(&l->fifo)) != NULL) {
        TAILQ_REMOVE(&l->fifo, op, entry);
        op->link = NULL;
        if (op->cbs != NULL)
            op->cbs->failure(op, 1);
    }
    if (l->reader)
        redisReaderFree(l->reader);
    if (l->scratch != NULL)
        evbuffer_free(l->scratch);
    event_free(l->reconnect_ev);
    event_free(l->stall_ev);
    free(l);
}

/*
 * Cut the link's output back to its first len bytes (evbuffer has no tail
 * truncation: move the head aside, drop the rest, move the head back). Only
 * on the failure path. 0, or -1 if that too failed.
 */
static int link_truncate_output(struct sg_shardlink *l, size_t len)
{
    struct evbuffer *out = sg_conn_output(l->conn), *keep = l->scratch;
    if (evbuffer_remove_buffer(out, keep, len) != (int)len) {
        evbuffer_drain(keep, evbuffer_get_length(keep));
        return -1;
    }
    evbuffer_drain(out, evbuffer_get_length(out));
    return evbuffer_add_buffer(out, keep);
}

int sg_shardlink_send(struct sg_shardlink *l, struct sg_linkop *op)
{
    if (l->state == SG_LINK_DOWN || l->conn == NULL)
        return -1;
    if (l->n_pending >= l->core->cfg->max_link_pending)
        return -1; /* the node is not keeping up: fail fast, do not queue */
    if (l->n_pending == 0)
        l->last_progress_ms = sg_now_ms();
    /* Format straight into the output; if any append failed, cut the
     * output back to where this command began before anything of it is
     * written (the write happens at the end of the loop turn): a
     * half-written command would misalign every reply after it. */
    struct evbuffer *out = sg_conn_output(l->conn);
    size_t before = evbuffer_get_length(out);
    (void)sg_resp_format_failed();
    if (op->asking) {
        sg_resp_begin(out, 1);
        sg_resp_arg(out, "ASKING", 6);
    }
    op->cbs->format(op, out);
    if (sg_resp_format_failed()) {
        sg_log_error("link %s:%d: cannot format a command (out of memory)", l->addr.host,
                     l->addr.port);
        SG_STAT_INC(&l->core->stats, link_format_errors);
        if (link_truncate_output(l, before) != 0)
            link_reset(l, "cannot remove a half-formatted command");
        return -2;
    }
    if (op->asking) {
        op->asking = 0;
        op->asking_pending = 1;
    }
    TAILQ_INSERT_TAIL(&l->fifo, op, entry);
    op->link = l;
    op->sent_us = sg_stats_clock(&l->core->stats);
    l->n_pending++;
    link_publish_pending(l);
    sg_conn_flush_soon(l->conn);
    SG_STAT_INC(&l->core->stats, backend_commands);
    return 0;
}

const struct sg_addr *sg_shardlink_addr(const struct sg_shardlink *l)
{
    return &l->addr;
}

int sg_shardlink_readonly(const struct sg_shardlink *l)
{
    return l->readonly;
}

int sg_shardlink_state(const struct sg_shardlink *l)
{
    return l->state;
}

uint32_t sg_shardlink_pending(const struct sg_shardlink *l)
{
    return l->n_pending;
}

void sg_shardlink_retire(struct sg_shardlink *l)
{
    if (l->retired)
        return;
    l->retired = 1;
    evtimer_del(l->reconnect_ev);
    sg_log_info("worker %d: link %s:%d retired (the node left the topology; %u pending)",
                l->core->id, l->addr.host, l->addr.port, l->n_pending);
}

void sg_shardlink_revive(struct sg_shardlink *l)
{
    if (!l->retired)
        return;
    l->retired = 0;
    if (l->conn == NULL && !evtimer_pending(l->reconnect_ev, NULL)) {
        l->backoff_ms = 0;
        link_connect(l);
    }
}

int sg_shardlink_retired(const struct sg_shardlink *l)
{
    return l->retired;
}
