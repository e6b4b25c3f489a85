/*
 * slotgate-bench - load generator for slotgate, in the style of
 * redis-benchmark.
 *
 * Opens -c connections (TLS with --tls), completes Hello on each, then runs
 * each test of -t in turn: like redis-benchmark, every connection sends -P
 * requests, waits for all their answers, and repeats (--sliding keeps -P in
 * flight at all times instead) until -n requests have completed. Latency is taken per request from
 * the moment it is appended to the output buffer to the moment its response is scanned, into a
 * log-linear histogram. With --threads N, connections are split over N threads, each with its own
 * event_base; the threads share nothing during a test and their results are merged after it.
 *
 * --rate R makes the run open-loop: R requests per second in all (split evenly over the threads)
 * are sent on a fixed schedule, each on the next connection with room in its window (-P), and
 * each request's latency is taken from its intended send time on that schedule, not from when it
 * was actually written; a request that had to wait for a free window or a late timer carries that
 * wait in its latency, so queueing is not hidden (no coordinated omission).
 *
 * --resp speaks plain RESP (GET/SET) to a Redis Cluster instead of the slotgate protocol, with the
 * same connection, pacing and latency code, so a direct run is measured exactly like a proxied
 * one. -h/-p name one node; the masters and their slots come from CLUSTER SLOTS. Connection i
 * talks to master i mod M and only uses keys (rkey:NNNNNNNN, distinct from the proxy side's
 * key:NNNNNNNN, whose values the proxy stores in its envelope) that hash to that master's slots,
 * so no request is ever redirected. Fill SETs every key of -r once on its owner.
 */
#include <errno.h>
#include <getopt.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/bufferevent_ssl.h>
#include <event2/event.h>
#include <openssl/err.h>
#include <openssl/ssl.h>

#include "bench_hist.h"
#include "bench_tls.h"
#include "bench_wire.h"
#include "slotgate.pb-c.h"

#define BENCH_FILL_DEPTH 64 /* in-flight SETs per connection while pre-populating */
#define BENCH_SLOT_BITS 20  /* low bits of a request id: the in-flight slot */
#define BENCH_MAX_CODE 400  /* codes are < 400 (see slotgate.proto) */
#define BENCH_KEY_MAX 32
#define BENCH_MAX_NODES 16 /* --resp: masters */
#define BENCH_CLUSTER_SLOTS 16384

enum bench_test {
    BENCH_GET,
    BENCH_SET,
    BENCH_MGET,
    BENCH_MSET,
    BENCH_FILL, /* pre-population SETs: not measured, sequential keys */
};

static const char *const bench_test_names[] = {"GET", "SET", "MGET", "MSET", "FILL"};

struct bench_opts {
    const char *host;
    int port;
    int conns;
    uint64_t requests;
    size_t datasize;
    uint32_t pipeline;
    uint64_t keyspace_len; /* -r; 0: single key */
    enum bench_test tests[8];
    int ntests;
    uint32_t batch_keys;
    int tls;
    const char *cacert, *cert, *key;
    const char *keyspace;
    int csv, quiet;
    int threads;
    int stall_secs;
    int no_prefill;
    int sliding;            /* --sliding: refill each answered slot at once */
    const char *value_file; /* --value-file: SET/MSET value bytes, instead of -d */
    double rate;            /* --rate: requests/s in all, open-loop; 0 = closed loop */
    int resp;               /* --resp: plain RESP to a Redis Cluster */
};

struct bench_thread;

/* One client connection; owned by its thread. Slots index the in-flight
 * requests: the id sent is (sequence << BENCH_SLOT_BITS) | slot, so a
 * response finds its send time without a lookup structure. */
struct bench_conn {
    struct bench_thread *t;
    struct bufferevent *bev;
    int ready;
    int dead;
    uint32_t inflight;
    uint32_t window;
    uint32_t nslots;
    uint64_t seq;
    uint64_t *sent_ns; /* per slot; 0 = free */
    uint32_t *free_slots;
    uint32_t nfree;
    int node;      /* --resp: index of the master this connection talks to */
    uint64_t rseq; /* --resp: responses taken (replies come in request order) */
};

struct bench_thread {
    int idx;
    struct event_base *base;
    struct event *tick;
    struct bench_conn *conns;
    int nconns;
    int pending_connects;
    char connect_err[256];

    /* Current phase; in_phase is 0 while connecting. */
    int in_phase;
    enum bench_test test;
    uint64_t quota, issued, done;
    uint64_t fill_next, fill_end;
    uint64_t last_done;
    int idle_ticks;
    int stalled;
    uint64_t t_end_ns;
    /* --rate: request k of the phase is due at t0_ns + k * interval_ns. */
    int paced;
    double interval_ns;
    uint64_t t0_ns;
    uint64_t max_lag_ns; /* latest actual send behind its intended time */
    int rr;              /* next connection to try */
    struct event *pace;
    /* --resp fill: this thread's range of each master's key list */
    uint64_t rfill_next[BENCH_MAX_NODES], rfill_end[BENCH_MAX_NODES];
    struct sg_bench_hist hist;
    uint64_t failed; /* requests with an error outcome */
    uint64_t misses; /* NOT_FOUND outcomes (keys) */
    uint64_t lost;   /* in flight on a connection that closed or stalled */
    int closed_reports;
    uint64_t err_by_code[BENCH_MAX_CODE];
    uint64_t keyerr_by_code[BENCH_MAX_CODE];

    uint64_t rng;
    char keybuf[BENCH_KEY_MAX * 1024];
    struct sg_bench_slice keys[1024];
    struct sg_bench_slice values[1024];
};

static struct bench_opts opts = {
    .host = "127.0.0.1",
    .port = 7420,
    .conns = 50,
    .requests = 100000,
    .datasize = 100,
    .pipeline = 1,
    .batch_keys = 10,
    .threads = 1,
    .stall_secs = 10,
};
static SSL_CTX *bench_ssl_ctx;
static struct sockaddr_storage bench_addr;
static socklen_t bench_addrlen;
static uint8_t *bench_value;
static int bench_key_digits = 8;
static const char *bench_key_prefix = "key:";

/* --resp: the masters, the owner of every slot, and per master the key
 * numbers in [0, -r) whose slot it owns. */
static int bench_nnodes;
static struct {
    char host[64];
    int port;
    struct sockaddr_storage addr;
    socklen_t addrlen;
    uint32_t *keys;
    uint64_t nkeys;
} bench_nodes[BENCH_MAX_NODES];
static uint8_t bench_slot_node[BENCH_CLUSTER_SLOTS];

static void bench_die(const char *fmt, ...) __attribute__((format(printf, 1, 2), noreturn));

static void bench_die(const char *fmt, ...)
{
    va_list ap;
    fputs("slotgate-bench: ", stderr);
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fputc('\n', stderr);
    exit(1);
}

static void *bench_xcalloc(size_t n, size_t sz)
{
    void *p = calloc(n, sz);
    if (p == NULL)
        bench_die("out of memory");
    return p;
}

static uint64_t bench_now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

static uint64_t bench_rand(struct bench_thread *t)
{
    /* xorshift64*: cheap and good enough to spread keys over slots. */
    uint64_t x = t->rng;
    x ^= x >> 12;
    x ^= x << 25;
    x ^= x >> 27;
    t->rng = x;
    return x * 0x2545F4914F6CDD1DULL;
}

/* Write "key:" and n zero-padded to bench_key_digits into dst; returns the
 * length. dst holds BENCH_KEY_MAX bytes. */
static size_t bench_format_key(char *dst, uint64_t n)
{
    size_t plen = strlen(bench_key_prefix);
    memcpy(dst, bench_key_prefix, plen);
    char *p = dst + plen + bench_key_digits;
    for (int i = 0; i < bench_key_digits; i++) {
        *--p = (char)('0' + n % 10);
        n /= 10;
    }
    return plen + (size_t)bench_key_digits;
}

/* ---- requests ------------------------------------------------------------- */

static uint64_t bench_next_key(struct bench_conn *c)
{
    struct bench_thread *t = c->t;
    if (opts.resp) {
        if (t->test == BENCH_FILL)
            return bench_nodes[c->node].keys[t->rfill_next[c->node]++];
        return bench_nodes[c->node].keys[bench_rand(t) % bench_nodes[c->node].nkeys];
    }
    if (t->test == BENCH_FILL)
        return t->fill_next++;
    if (opts.keyspace_len == 0)
        return 0;
    return bench_rand(t) % opts.keyspace_len;
}

/* Whether c may send another request of the current phase (a --resp fill
 * runs out per master). */
static int bench_conn_has_work(const struct bench_conn *c)
{
    const struct bench_thread *t = c->t;
    if (opts.resp && t->test == BENCH_FILL)
        return t->rfill_next[c->node] < t->rfill_end[c->node];
    return 1;
}

/* Append "$<len>\r\n<bytes>\r\n"; large values by reference. */
static int bench_resp_bulk(struct evbuffer *out, const void *p, size_t len)
{
    if (evbuffer_add_printf(out, "$%zu\r\n", len) < 0)
        return -1;
    int rc =
        len >= 4096 ? evbuffer_add_reference(out, p, len, NULL, NULL) : evbuffer_add(out, p, len);
    return rc == 0 ? evbuffer_add(out, "\r\n", 2) : -1;
}

/* --resp: the GET or SET (fill included) for one key. */
static int bench_resp_put(struct evbuffer *out, const struct bench_thread *t)
{
    if (t->test == BENCH_GET)
        return evbuffer_add(out, "*2\r\n$3\r\nGET\r\n", 13) == 0
                   ? bench_resp_bulk(out, t->keys[0].ptr, t->keys[0].len)
                   : -1;
    if (evbuffer_add(out, "*3\r\n$3\r\nSET\r\n", 13) != 0 ||
        bench_resp_bulk(out, t->keys[0].ptr, t->keys[0].len) != 0)
        return -1;
    return bench_resp_bulk(out, bench_value, opts.datasize);
}

/*
 * --resp: take one reply off in. Simple string, integer and bulk string
 * replies are answers (a nil bulk is a miss); an error reply (MOVED
 * included) counts as CODE_BACKEND_ERROR. Arrays are not expected from GET
 * or SET and make the stream unusable (-1).
 */
static int bench_resp_take(struct evbuffer *in, struct sg_bench_msg *m)
{
    size_t eollen;
    struct evbuffer_ptr eol = evbuffer_search_eol(in, NULL, &eollen, EVBUFFER_EOL_CRLF_STRICT);
    if (eol.pos < 0)
        return evbuffer_get_length(in) > 256 ? -1 : 0;
    if (eol.pos < 1 || eol.pos > 64)
        return -1;
    char line[72];
    evbuffer_copyout(in, line, (size_t)eol.pos);
    line[eol.pos] = '\0';
    size_t need = (size_t)eol.pos + 2;
    memset(m, 0, sizeof *m);
    m->kind = SG_BENCH_MSG_RESPONSE;
    switch (line[0]) {
    case '+':
    case ':':
        break;
    case '-':
        m->code = SLOTGATE__V1__CODE__CODE_BACKEND_ERROR;
        break;
    case '$': {
        char *end;
        long long n = strtoll(line + 1, &end, 10);
        if (*end != '\0' || n < -1 || n > (long long)SG_BENCH_MAX_FRAME)
            return -1;
        if (n < 0) {
            m->code = SLOTGATE__V1__CODE__CODE_NOT_FOUND;
            break;
        }
        need += (size_t)n + 2;
        if (evbuffer_get_length(in) < need)
            return 0;
        break;
    }
    default:
        return -1;
    }
    evbuffer_drain(in, need);
    return 1;
}

/* Encode one request of the current test into c's output buffer. Its
 * latency counts from intended_ns (the --rate schedule), or from now when 0. */
static void bench_conn_send_one(struct bench_conn *c, uint64_t intended_ns)
{
    struct bench_thread *t = c->t;
    uint32_t nkeys = (t->test == BENCH_MGET || t->test == BENCH_MSET) ? opts.batch_keys : 1;
    int op;

    switch (t->test) {
    case BENCH_GET:
        op = SLOTGATE__V1__OP__OP_GET;
        break;
    case BENCH_MGET:
        op = SLOTGATE__V1__OP__OP_MGET;
        break;
    case BENCH_MSET:
        op = SLOTGATE__V1__OP__OP_MSET;
        break;
    default:
        op = SLOTGATE__V1__OP__OP_SET;
        break;
    }
    for (uint32_t i = 0; i < nkeys; i++) {
        char *k = t->keybuf + (size_t)i * BENCH_KEY_MAX;
        t->keys[i].ptr = (const uint8_t *)k;
        t->keys[i].len = bench_format_key(k, bench_next_key(c));
    }
    if (opts.resp) {
        /* Replies come in order: the slots are used as a ring. */
        uint32_t slot = (uint32_t)(c->seq++ % c->nslots);
        c->nfree--;
        if (bench_resp_put(bufferevent_get_output(c->bev), t) != 0)
            bench_die("cannot encode request (out of memory)");
        c->sent_ns[slot] = intended_ns ? intended_ns : bench_now_ns();
        c->inflight++;
        t->issued++;
        return;
    }
    uint32_t slot = c->free_slots[--c->nfree];
    struct sg_bench_req req = {
        .id = (++c->seq << BENCH_SLOT_BITS) | slot,
        .op = op,
        .keyspace = {(const uint8_t *)opts.keyspace, opts.keyspace ? strlen(opts.keyspace) : 0},
        .keys = t->keys,
        .nkeys = nkeys,
        .values =
            (op == SLOTGATE__V1__OP__OP_SET || op == SLOTGATE__V1__OP__OP_MSET) ? t->values : NULL,
    };
    if (sg_bench_wire_put_request(bufferevent_get_output(c->bev), &req) != 0)
        bench_die("cannot encode request (out of memory)");
    c->sent_ns[slot] = intended_ns ? intended_ns : bench_now_ns();
    c->inflight++;
    t->issued++;
}

/* --rate: a connection that can take a request now (round robin), or NULL. */
static struct bench_conn *bench_thread_free_conn(struct bench_thread *t)
{
    for (int k = 0; k < t->nconns; k++) {
        int i = (t->rr + k) % t->nconns;
        struct bench_conn *c = &t->conns[i];
        if (!c->dead && c->ready && c->inflight < c->window) {
            t->rr = (i + 1) % t->nconns;
            return c;
        }
    }
    return NULL;
}

/*
 * --rate: send every request whose intended time has come, as long as a
 * connection has room; then arm the timer for the next one. When every
 * window is full the due requests wait (their latency keeps counting from
 * the schedule) and the next response calls this again.
 */
static void bench_thread_pace(struct bench_thread *t)
{
    if (!t->paced || t->issued >= t->quota)
        return;
    uint64_t now = bench_now_ns();
    uint64_t due = (uint64_t)((double)(now - t->t0_ns) / t->interval_ns) + 1;
    if (due > t->quota)
        due = t->quota;
    while (t->issued < due) {
        struct bench_conn *c = bench_thread_free_conn(t);
        if (c == NULL)
            break;
        uint64_t intended = t->t0_ns + (uint64_t)((double)t->issued * t->interval_ns);
        if (now - intended > t->max_lag_ns)
            t->max_lag_ns = now - intended;
        bench_conn_send_one(c, intended);
    }
    if (t->issued < t->quota && t->issued == due) {
        uint64_t next = t->t0_ns + (uint64_t)((double)t->issued * t->interval_ns);
        uint64_t wait = next > now ? next - now : 0;
        struct timeval tv = {(time_t)(wait / 1000000000u),
                             (suseconds_t)(wait % 1000000000u / 1000)};
        evtimer_add(t->pace, &tv);
    }
}

static void bench_thread_pace_cb(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    bench_thread_pace(arg);
}

/* Top up c's window while the thread's quota lasts. */
static void bench_conn_fill(struct bench_conn *c)
{
    struct bench_thread *t = c->t;
    /* Like redis-benchmark -P: send a window, wait for all of it, send the
     * next one. --sliding keeps the window full instead. */
    if (t->paced) {
        bench_thread_pace(t);
        return;
    }
    if (!opts.sliding && c->inflight > 0)
        return;
    while (!c->dead && c->ready && c->inflight < c->window && t->issued < t->quota &&
           bench_conn_has_work(c))
        bench_conn_send_one(c, 0);
}

static void bench_thread_check_done(struct bench_thread *t)
{
    if (t->in_phase && t->done >= t->quota && t->t_end_ns == 0) {
        t->t_end_ns = bench_now_ns();
        event_base_loopbreak(t->base);
    }
}

/* Close c; whatever it had in flight counts as lost (and as done, so the
 * phase can finish on the other connections). The quota it had not yet
 * issued is picked up by the others. */
static void bench_conn_kill(struct bench_conn *c, const char *why)
{
    struct bench_thread *t = c->t;
    if (c->dead)
        return;
    c->dead = 1;
    if (!c->ready) {
        snprintf(t->connect_err, sizeof t->connect_err, "%s", why);
        t->pending_connects--;
        if (t->pending_connects == 0)
            event_base_loopbreak(t->base);
    } else if (t->closed_reports++ < 3) {
        fprintf(stderr, "slotgate-bench: connection closed during %s: %s (%u in flight)%s\n",
                bench_test_names[t->test], why, c->inflight,
                t->closed_reports == 3 ? "; further closes not shown" : "");
    }
    t->lost += c->inflight;
    t->done += c->inflight;
    c->inflight = 0;
    bufferevent_free(c->bev);
    c->bev = NULL;
    int alive = 0;
    for (int i = 0; i < t->nconns; i++)
        alive += !t->conns[i].dead;
    if (alive == 0) {
        t->done = t->quota;
        t->issued = t->quota;
    }
    /* Another connection takes over the unissued part of the quota. */
    for (int i = 0; i < t->nconns; i++)
        bench_conn_fill(&t->conns[i]);
    bench_thread_check_done(t);
}

static void bench_conn_on_response(struct bench_conn *c, const struct sg_bench_msg *m, uint64_t now)
{
    struct bench_thread *t = c->t;
    uint32_t slot = (uint32_t)(m->id & ((1u << BENCH_SLOT_BITS) - 1));
    if (slot >= c->nslots || c->sent_ns[slot] == 0) {
        bench_conn_kill(c, "response with an unknown id");
        return;
    }
    uint64_t sent = c->sent_ns[slot];
    c->sent_ns[slot] = 0;
    c->free_slots[c->nfree++] = slot;
    c->inflight--;
    t->done++;
    if (t->test == BENCH_FILL) {
        if (m->code >= 100) {
            t->failed++;
            if (m->code < BENCH_MAX_CODE)
                t->err_by_code[m->code]++;
        }
        return;
    }
    sg_bench_hist_record(&t->hist, (now - sent) / 1000);
    if (m->code == SLOTGATE__V1__CODE__CODE_NOT_FOUND)
        t->misses++;
    if (m->code >= 100 || m->key_errors > 0) {
        t->failed++;
        if (m->code >= 100 && m->code < BENCH_MAX_CODE)
            t->err_by_code[m->code]++;
        if (m->key_errors > 0 && m->first_key_error < BENCH_MAX_CODE)
            t->keyerr_by_code[m->first_key_error] += m->key_errors;
    }
    t->misses += m->key_misses;
}

static void bench_conn_read_cb(struct bufferevent *bev, void *arg)
{
    struct bench_conn *c = arg;
    struct bench_thread *t = c->t;
    struct evbuffer *in = bufferevent_get_input(bev);
    struct sg_bench_msg m;
    uint64_t now = bench_now_ns();
    int rc;

    while ((rc = opts.resp ? bench_resp_take(in, &m) : sg_bench_wire_take(in, &m)) == 1) {
        if (opts.resp) {
            if (c->inflight == 0) {
                bench_conn_kill(c, "reply with no request in flight");
                return;
            }
            m.id = c->rseq++ % c->nslots;
        }
        switch (m.kind) {
        case SG_BENCH_MSG_HELLO_REPLY:
            if (c->ready) {
                bench_conn_kill(c, "second HelloReply");
                return;
            }
            if (m.max_inflight != 0 && opts.pipeline > m.max_inflight && t->idx == 0 &&
                c == &t->conns[0])
                fprintf(stderr, "slotgate-bench: warning: -P %u exceeds server max_inflight %u\n",
                        opts.pipeline, m.max_inflight);
            c->ready = 1;
            bufferevent_set_timeouts(bev, NULL, NULL);
            if (--t->pending_connects == 0)
                event_base_loopbreak(t->base);
            break;
        case SG_BENCH_MSG_RESPONSE:
            bench_conn_on_response(c, &m, now);
            if (c->dead)
                return;
            break;
        case SG_BENCH_MSG_CONN_ERROR: {
            char buf[32], why[96];
            snprintf(why, sizeof why, "server sent ConnectionError %s",
                     sg_bench_code_name(m.code, buf, sizeof buf));
            bench_conn_kill(c, why);
            return;
        }
        default:
            break;
        }
    }
    if (rc < 0) {
        bench_conn_kill(c, "malformed frame from server");
        return;
    }
    bench_conn_fill(c);
    bench_thread_check_done(t);
}

static void bench_conn_event_cb(struct bufferevent *bev, short what, void *arg)
{
    struct bench_conn *c = arg;
    char why[256];

    if (what & BEV_EVENT_CONNECTED) {
        /* RESP has no handshake: connected is ready. */
        if (opts.resp && !c->ready && !c->dead) {
            c->ready = 1;
            bufferevent_set_timeouts(bev, NULL, NULL);
            if (--c->t->pending_connects == 0)
                event_base_loopbreak(c->t->base);
        }
        return;
    }
    sg_bench_bev_why(bev, what, why, sizeof why);
    bench_conn_kill(c, why);
}

/* ---- connections and phases ------------------------------------------------ */

static void bench_conn_open(struct bench_thread *t, struct bench_conn *c, int idx)
{
    const struct sockaddr *addr = (const struct sockaddr *)&bench_addr;
    socklen_t addrlen = bench_addrlen;
    if (opts.resp) {
        c->node = idx % bench_nnodes;
        addr = (const struct sockaddr *)&bench_nodes[c->node].addr;
        addrlen = bench_nodes[c->node].addrlen;
    }
    uint32_t slots = opts.pipeline + BENCH_FILL_DEPTH;
    c->t = t;
    c->window = opts.pipeline;
    c->nslots = slots;
    c->sent_ns = bench_xcalloc(slots, sizeof *c->sent_ns);
    c->free_slots = bench_xcalloc(slots, sizeof *c->free_slots);
    for (uint32_t i = 0; i < slots; i++)
        c->free_slots[c->nfree++] = slots - 1 - i;

    c->bev = sg_bench_bev_new(t->base, opts.tls ? bench_ssl_ctx : NULL, opts.host);
    if (c->bev == NULL)
        bench_die("cannot create the connection (TLS session or bufferevent)");
    bufferevent_setcb(c->bev, bench_conn_read_cb, NULL, bench_conn_event_cb, c);
    struct timeval tmo = {5, 0};
    bufferevent_set_timeouts(c->bev, &tmo, &tmo);
    bufferevent_enable(c->bev, EV_READ | EV_WRITE);
    if (bufferevent_socket_connect(c->bev, addr, (int)addrlen) != 0) {
        char why[128];
        snprintf(why, sizeof why, "connect: %s",
                 evutil_socket_error_to_string(EVUTIL_SOCKET_ERROR()));
        /* libevent may already have run the event callback, killing c. */
        bench_conn_kill(c, why);
        return;
    }
    evutil_socket_t fd = bufferevent_getfd(c->bev);
    int one = 1;
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    if (!opts.resp &&
        sg_bench_wire_put_hello(bufferevent_get_output(c->bev), "slotgate-bench") != 0)
        bench_die("cannot encode Hello");
}

/* Stall detector: a phase that makes no progress for --stall-timeout seconds
 * is abandoned; its in-flight requests count as lost and the connections
 * holding them are closed, so late responses cannot leak into the next test. */
static void bench_thread_tick_cb(evutil_socket_t fd, short what, void *arg)
{
    struct bench_thread *t = arg;
    if (t->done != t->last_done || t->done >= t->quota) {
        t->last_done = t->done;
        t->idle_ticks = 0;
        return;
    }
    if (++t->idle_ticks < opts.stall_secs)
        return;
    uint64_t inflight = 0;
    for (int i = 0; i < t->nconns; i++)
        inflight += t->conns[i].dead ? 0 : t->conns[i].inflight;
    fprintf(stderr,
            "slotgate-bench: %s stalled: no response for %d s, %llu requests in flight "
            "(%llu/%llu done)\n",
            bench_test_names[t->test], opts.stall_secs, (unsigned long long)inflight,
            (unsigned long long)t->done, (unsigned long long)t->quota);
    t->stalled = 1;
    t->issued = t->quota;
    for (int i = 0; i < t->nconns; i++)
        if (!t->conns[i].dead && t->conns[i].inflight > 0)
            bench_conn_kill(&t->conns[i], "stalled");
    t->done = t->quota;
    bench_thread_check_done(t);
}

static void bench_thread_init(struct bench_thread *t, int idx, int nconns)
{
    t->idx = idx;
    /* --rate arms a timer per intended send: ask for timerfd precision
     * rather than epoll's milliseconds. */
    struct event_config *ec = event_config_new();
    if (ec == NULL)
        bench_die("out of memory");
    if (opts.rate > 0)
        event_config_set_flag(ec, EVENT_BASE_FLAG_PRECISE_TIMER);
    t->base = event_base_new_with_config(ec);
    event_config_free(ec);
    if (t->base == NULL)
        bench_die("cannot create event base");
    t->pace = evtimer_new(t->base, bench_thread_pace_cb, t);
    if (t->pace == NULL)
        bench_die("out of memory");
    t->nconns = nconns;
    t->conns = bench_xcalloc((size_t)nconns, sizeof *t->conns);
    t->rng = 0x9E3779B97F4A7C15ULL * (uint64_t)(idx + 1) ^ (uint64_t)getpid() ^ bench_now_ns();
    if (t->rng == 0)
        t->rng = 1;
    for (size_t i = 0; i < 1024; i++)
        t->values[i] = (struct sg_bench_slice){bench_value, opts.datasize};
    struct timeval one = {1, 0};
    t->tick = event_new(t->base, -1, EV_PERSIST, bench_thread_tick_cb, t);
    event_add(t->tick, &one);
    t->pending_connects = nconns;
    for (int i = 0; i < nconns; i++)
        bench_conn_open(t, &t->conns[i], i);
}

static void bench_thread_begin_phase(struct bench_thread *t, enum bench_test test, uint64_t quota,
                                     uint64_t fill_from)
{
    t->in_phase = 1;
    t->test = test;
    t->quota = quota;
    t->issued = t->done = 0;
    t->fill_next = fill_from;
    t->fill_end = fill_from + quota;
    t->last_done = 0;
    t->idle_ticks = 0;
    t->stalled = 0;
    t->t_end_ns = 0;
    t->failed = t->misses = t->lost = 0;
    memset(t->err_by_code, 0, sizeof t->err_by_code);
    memset(t->keyerr_by_code, 0, sizeof t->keyerr_by_code);
    sg_bench_hist_reset(&t->hist);
    evtimer_del(t->pace);
    t->paced = opts.rate > 0 && test != BENCH_FILL;
    t->interval_ns = t->paced ? 1e9 * opts.threads / opts.rate : 0;
    t->max_lag_ns = 0;
    for (int i = 0; i < t->nconns; i++)
        t->conns[i].window =
            test == BENCH_FILL
                ? (opts.pipeline > BENCH_FILL_DEPTH ? opts.pipeline : BENCH_FILL_DEPTH)
                : opts.pipeline;
}

static void *bench_thread_run(void *arg)
{
    struct bench_thread *t = arg;
    t->t0_ns = bench_now_ns();
    if (t->paced)
        bench_thread_pace(t);
    else
        for (int i = 0; i < t->nconns; i++)
            bench_conn_fill(&t->conns[i]);
    bench_thread_check_done(t);
    if (t->t_end_ns == 0)
        event_base_dispatch(t->base);
    return NULL;
}

static void *bench_thread_connect(void *arg)
{
    struct bench_thread *t = arg;
    if (t->pending_connects > 0)
        event_base_dispatch(t->base);
    return NULL;
}

/* Run fn on every thread's base: in the caller when there is one thread. */
static void bench_run_threads(struct bench_thread *th, void *(*fn)(void *))
{
    if (opts.threads <= 1) {
        fn(&th[0]);
        return;
    }
    pthread_t *tid = bench_xcalloc((size_t)opts.threads, sizeof *tid);
    for (int i = 0; i < opts.threads; i++)
        if (pthread_create(&tid[i], NULL, fn, &th[i]) != 0)
            bench_die("pthread_create failed");
    for (int i = 0; i < opts.threads; i++)
        pthread_join(tid[i], NULL);
    free(tid);
}

/* Split total over the threads; thread i gets share(i). */
static uint64_t bench_share(uint64_t total, int i)
{
    uint64_t n = (uint64_t)opts.threads;
    return total / n + ((uint64_t)i < total % n ? 1 : 0);
}

/* SET every key of the key space once (key 0 only without -r). */
static void bench_fill(struct bench_thread *th)
{
    uint64_t total = opts.keyspace_len ? opts.keyspace_len : 1;
    uint64_t from = 0;
    for (int i = 0; i < opts.threads; i++) {
        uint64_t q = bench_share(total, i);
        bench_thread_begin_phase(&th[i], BENCH_FILL, q, from);
        from += q;
    }
    if (opts.resp) {
        /* Each thread SETs its share of every master's key list. */
        for (int j = 0; j < bench_nnodes; j++) {
            uint64_t nfrom = 0;
            for (int i = 0; i < opts.threads; i++) {
                uint64_t q = bench_nodes[j].nkeys / (uint64_t)opts.threads +
                             ((uint64_t)i < bench_nodes[j].nkeys % (uint64_t)opts.threads);
                th[i].rfill_next[j] = nfrom;
                th[i].rfill_end[j] = nfrom + q;
                nfrom += q;
            }
        }
        for (int i = 0; i < opts.threads; i++) {
            th[i].quota = 0;
            for (int j = 0; j < bench_nnodes; j++)
                th[i].quota += th[i].rfill_end[j] - th[i].rfill_next[j];
        }
    }
    bench_run_threads(th, bench_thread_run);
    uint64_t failed = 0, lost = 0;
    for (int i = 0; i < opts.threads; i++) {
        failed += th[i].failed;
        lost += th[i].lost;
    }
    if (failed + lost > 0)
        fprintf(stderr, "slotgate-bench: pre-populate: %llu of %llu SETs failed\n",
                (unsigned long long)(failed + lost), (unsigned long long)total);
}

static void bench_report(struct bench_thread *th, enum bench_test test, uint64_t start_ns)
{
    struct sg_bench_hist *h = bench_xcalloc(1, sizeof *h);
    uint64_t end = start_ns, failed = 0, lost = 0, misses = 0, done = 0;
    uint64_t err[BENCH_MAX_CODE] = {0}, kerr[BENCH_MAX_CODE] = {0};
    int stalled = 0;
    uint64_t max_lag = 0;

    for (int i = 0; i < opts.threads; i++) {
        struct bench_thread *t = &th[i];
        if (t->max_lag_ns > max_lag)
            max_lag = t->max_lag_ns;
        sg_bench_hist_merge(h, &t->hist);
        if (t->t_end_ns > end)
            end = t->t_end_ns;
        failed += t->failed;
        lost += t->lost;
        misses += t->misses;
        done += t->done;
        stalled |= t->stalled;
        for (int c = 0; c < BENCH_MAX_CODE; c++) {
            err[c] += t->err_by_code[c];
            kerr[c] += t->keyerr_by_code[c];
        }
    }
    double secs = (double)(end - start_ns) / 1e9;
    if (secs <= 0)
        secs = 1e-9;
    uint64_t answered = h->count;
    double rps = (double)answered / secs;
    uint32_t kpr = (test == BENCH_MGET || test == BENCH_MSET) ? opts.batch_keys : 1;
    double kps = rps * kpr;
    double p50 = sg_bench_hist_quantile_us(h, 0.50) / 1000.0;
    double p99 = sg_bench_hist_quantile_us(h, 0.99) / 1000.0;
    double p999 = sg_bench_hist_quantile_us(h, 0.999) / 1000.0;
    double mx = (double)h->max_us / 1000.0;
    uint64_t errors = failed + lost;

    if (opts.csv) {
        printf("%s,%.2f,%.2f,%.3f,%.3f,%.3f,%.3f,%llu\n", bench_test_names[test], rps, kps, p50,
               p99, p999, mx, (unsigned long long)errors);
    } else if (opts.quiet) {
        printf("%s: %.2f requests per second, p50=%.3f msec\n", bench_test_names[test], rps, p50);
    } else {
        printf("====== %s ======\n", bench_test_names[test]);
        printf("  %llu requests completed in %.3f seconds\n", (unsigned long long)answered, secs);
        printf("  %d connections, pipeline %u, %zu-byte values", opts.conns, opts.pipeline,
               opts.datasize);
        if (kpr > 1)
            printf(", %u keys per batch", kpr);
        if (opts.keyspace_len)
            printf(", %llu random keys", (unsigned long long)opts.keyspace_len);
        else
            printf(", single key");
        printf(", %d thread(s)%s%s\n", opts.threads, opts.tls ? ", TLS" : "",
               opts.resp ? ", RESP to the masters" : "");
        if (opts.rate > 0)
            printf("  paced at %.0f requests/s (open loop); latest send %.3f ms behind schedule\n",
                   opts.rate, (double)max_lag / 1e6);
        printf("  throughput: %.2f requests/s, %.2f keys/s\n", rps, kps);
        printf("  latency (ms): p50 %.3f  p99 %.3f  p99.9 %.3f  max %.3f\n", p50, p99, p999, mx);
        if (misses)
            printf("  not found: %llu\n", (unsigned long long)misses);
        printf("  errors: %llu\n", (unsigned long long)errors);
    }
    if (errors > 0 || stalled) {
        FILE *o = opts.csv ? stderr : stdout;
        char buf[32];
        fprintf(o, "  %s errors by code:", bench_test_names[test]);
        for (int c = 0; c < BENCH_MAX_CODE; c++)
            if (err[c])
                fprintf(o, " %s=%llu", sg_bench_code_name(c, buf, sizeof buf),
                        (unsigned long long)err[c]);
        for (int c = 0; c < BENCH_MAX_CODE; c++)
            if (kerr[c])
                fprintf(o, " key:%s=%llu", sg_bench_code_name(c, buf, sizeof buf),
                        (unsigned long long)kerr[c]);
        if (lost)
            fprintf(o, " CONNECTION_LOST=%llu", (unsigned long long)lost);
        if (stalled)
            fprintf(o, " (stalled)");
        fputc('\n', o);
    }
    fflush(stdout);
    free(h);
}

/* ---- command line ------------------------------------------------------------ */

static void bench_usage(FILE *o)
{
    fputs("Usage: slotgate-bench [OPTIONS]\n"
          "  -h HOST          server host (default 127.0.0.1)\n"
          "  -p PORT          server port (default 7420)\n"
          "  -c CONNS         connections (default 50)\n"
          "  -n REQUESTS      requests per test (default 100000)\n"
          "  -d BYTES         value size (default 100)\n"
          "  --value-file F   use the bytes of file F as the value of set/mset/fill\n"
          "                   (its size replaces -d)\n"
          "  -P DEPTH         requests in flight per connection (default 1)\n"
          "  -r KEYSPACELEN   random keys key:NNNNNNNN in [0,KEYSPACELEN) (default: one key)\n"
          "  -t TESTS         comma list of get,set,mget,mset,fill (default get,set);\n"
          "                   fill only pre-populates the key space\n"
          "  --no-prefill     do not pre-populate before get/mget (keys already set)\n"
          "  --sliding        keep -P requests in flight at all times (default: like\n"
          "                   redis-benchmark, send -P, wait for all of them, repeat)\n"
          "  --keys N         keys per mget/mset batch (default 10)\n"
          "  -k KEYSPACE      slotgate keyspace (default: server default)\n"
          "  --tls            use TLS\n"
          "  --cacert FILE    CA to verify the server (without it: no verification)\n"
          "  --cert FILE      client certificate\n"
          "  --key FILE       client private key\n"
          "  --threads N      client threads, each with its own event loop (default 1)\n"
          "  --rate R         open loop: R requests/s in all on a fixed schedule, latency\n"
          "                   from each request's intended send time; -P caps what one\n"
          "                   connection has in flight (default: closed loop)\n"
          "  --resp           plain RESP GET/SET to a Redis Cluster (-h/-p: any node;\n"
          "                   masters from CLUSTER SLOTS; keys rkey:N on their owner)\n"
          "  --stall-timeout S abandon a test after S seconds without a response (default 10)\n"
          "  --csv            one CSV line per test:\n"
          "                   test,rps,keys_per_s,p50_ms,p99_ms,p999_ms,max_ms,errors\n"
          "  -q               quiet: one line per test\n"
          "  --help           this help\n"
          "GET and MGET tests first SET every key once (not measured), unless\n"
          "--no-prefill.\n",
          o);
}

static uint64_t bench_parse_u64(const char *s, const char *what, uint64_t min, uint64_t max)
{
    char *end;
    errno = 0;
    unsigned long long v = strtoull(s, &end, 10);
    if (errno != 0 || end == s || *end != '\0' || *s == '-' || v < min || v > max)
        bench_die("invalid %s: %s", what, s);
    return v;
}

static void bench_parse_tests(const char *list)
{
    char *dup = strdup(list), *save = NULL;
    opts.ntests = 0;
    for (char *tok = strtok_r(dup, ",", &save); tok; tok = strtok_r(NULL, ",", &save)) {
        enum bench_test t;
        if (strcasecmp(tok, "get") == 0)
            t = BENCH_GET;
        else if (strcasecmp(tok, "set") == 0)
            t = BENCH_SET;
        else if (strcasecmp(tok, "mget") == 0)
            t = BENCH_MGET;
        else if (strcasecmp(tok, "mset") == 0)
            t = BENCH_MSET;
        else if (strcasecmp(tok, "fill") == 0)
            t = BENCH_FILL;
        else
            bench_die("unknown test %s (get, set, mget, mset, fill)", tok);
        if (opts.ntests == (int)(sizeof opts.tests / sizeof opts.tests[0]))
            bench_die("too many tests");
        opts.tests[opts.ntests++] = t;
    }
    free(dup);
    if (opts.ntests == 0)
        bench_die("empty test list");
}

static void bench_parse_args(int argc, char **argv)
{
    enum {
        O_TLS = 256,
        O_CACERT,
        O_CERT,
        O_KEY,
        O_CSV,
        O_THREADS,
        O_KEYS,
        O_HELP,
        O_STALL,
        O_NOFILL,
        O_SLIDING,
        O_VALUE_FILE,
        O_RATE,
        O_RESP,
    };
    static const struct option longopts[] = {
        {"tls", no_argument, NULL, O_TLS},
        {"cacert", required_argument, NULL, O_CACERT},
        {"cert", required_argument, NULL, O_CERT},
        {"key", required_argument, NULL, O_KEY},
        {"csv", no_argument, NULL, O_CSV},
        {"threads", required_argument, NULL, O_THREADS},
        {"keys", required_argument, NULL, O_KEYS},
        {"stall-timeout", required_argument, NULL, O_STALL},
        {"no-prefill", no_argument, NULL, O_NOFILL},
        {"sliding", no_argument, NULL, O_SLIDING},
        {"value-file", required_argument, NULL, O_VALUE_FILE},
        {"rate", required_argument, NULL, O_RATE},
        {"resp", no_argument, NULL, O_RESP},
        {"help", no_argument, NULL, O_HELP},
        {NULL, 0, NULL, 0},
    };
    int ch;
    bench_parse_tests("get,set");
    while ((ch = getopt_long(argc, argv, "h:p:c:n:d:P:r:t:k:q", longopts, NULL)) != -1) {
        switch (ch) {
        case 'h':
            opts.host = optarg;
            break;
        case 'p':
            opts.port = (int)bench_parse_u64(optarg, "port", 1, 65535);
            break;
        case 'c':
            opts.conns = (int)bench_parse_u64(optarg, "connections", 1, 1000000);
            break;
        case 'n':
            opts.requests = bench_parse_u64(optarg, "requests", 1, UINT64_MAX >> 8);
            break;
        case 'd':
            opts.datasize = (size_t)bench_parse_u64(optarg, "value size", 0, 64u << 20);
            break;
        case 'P':
            opts.pipeline = (uint32_t)bench_parse_u64(
                optarg, "pipeline", 1, (1u << BENCH_SLOT_BITS) - BENCH_FILL_DEPTH - 1);
            break;
        case 'r':
            opts.keyspace_len = bench_parse_u64(optarg, "keyspace length", 1, UINT64_MAX >> 8);
            break;
        case 't':
            bench_parse_tests(optarg);
            break;
        case 'k':
            opts.keyspace = optarg;
            break;
        case 'q':
            opts.quiet = 1;
            break;
        case O_TLS:
            opts.tls = 1;
            break;
        case O_CACERT:
            opts.cacert = optarg;
            break;
        case O_CERT:
            opts.cert = optarg;
            break;
        case O_KEY:
            opts.key = optarg;
            break;
        case O_CSV:
            opts.csv = 1;
            break;
        case O_THREADS:
            opts.threads = (int)bench_parse_u64(optarg, "threads", 1, 256);
            break;
        case O_KEYS:
            opts.batch_keys = (uint32_t)bench_parse_u64(optarg, "keys per batch", 1, 1024);
            break;
        case O_STALL:
            opts.stall_secs = (int)bench_parse_u64(optarg, "stall timeout", 1, 3600);
            break;
        case O_NOFILL:
            opts.no_prefill = 1;
            break;
        case O_SLIDING:
            opts.sliding = 1;
            break;
        case O_VALUE_FILE:
            opts.value_file = optarg;
            break;
        case O_RATE:
            opts.rate = (double)bench_parse_u64(optarg, "rate", 1, 100000000);
            break;
        case O_RESP:
            opts.resp = 1;
            break;
        case O_HELP:
            bench_usage(stdout);
            exit(0);
        default:
            bench_usage(stderr);
            exit(2);
        }
    }
    if (optind < argc)
        bench_die("unexpected argument %s", argv[optind]);
    if ((opts.cert == NULL) != (opts.key == NULL))
        bench_die("--cert and --key go together");
    if ((opts.cacert || opts.cert) && !opts.tls)
        bench_die("--cacert/--cert/--key need --tls");
    if (opts.threads > opts.conns)
        opts.threads = opts.conns;
    if (opts.resp) {
        if (opts.tls)
            bench_die("--resp is plain TCP (no --tls)");
        if (opts.keyspace_len == 0)
            bench_die("--resp needs -r (keys are spread over the masters)");
        for (int k = 0; k < opts.ntests; k++)
            if (opts.tests[k] == BENCH_MGET || opts.tests[k] == BENCH_MSET)
                bench_die("--resp does get, set and fill only");
        if (opts.keyspace != NULL)
            bench_die("--resp has no keyspaces (-k)");
        bench_key_prefix = "rkey:";
    }
    if (opts.keyspace_len > 1) {
        uint64_t v = opts.keyspace_len - 1;
        int digits = 1;
        while (v >= 10) {
            v /= 10;
            digits++;
        }
        bench_key_digits = digits > 8 ? digits : 8;
        if (bench_key_digits + 5 > BENCH_KEY_MAX)
            bench_die("keyspace length too large");
    }
}

static void bench_resolve(void)
{
    struct addrinfo hints = {.ai_family = AF_UNSPEC, .ai_socktype = SOCK_STREAM}, *res;
    char port[16];
    snprintf(port, sizeof port, "%d", opts.port);
    int rc = getaddrinfo(opts.host, port, &hints, &res);
    if (rc != 0)
        bench_die("cannot resolve %s: %s", opts.host, gai_strerror(rc));
    memcpy(&bench_addr, res->ai_addr, res->ai_addrlen);
    bench_addrlen = res->ai_addrlen;
    freeaddrinfo(res);
}

/* ---- --resp: the cluster's masters ------------------------------------------------ */

/* CRC16-CCITT (XMODEM), as Redis Cluster hashes keys; the keys used here have
 * no hash tag, so the whole key is hashed. */
static unsigned bench_key_slot(const char *k, size_t len)
{
    unsigned crc = 0;
    for (size_t i = 0; i < len; i++) {
        crc ^= (unsigned)(unsigned char)k[i] << 8;
        for (int b = 0; b < 8; b++)
            crc = crc & 0x8000 ? ((crc << 1) ^ 0x1021) & 0xffff : (crc << 1) & 0xffff;
    }
    return crc % BENCH_CLUSTER_SLOTS;
}

/* A cursor over a RESP reply held whole in memory. Each reader returns 0, or
 * -1 when the bytes end early or are not what was expected. */
struct bench_rc {
    const char *p, *end;
};

static int bench_rc_line(struct bench_rc *r, char type, long long *v)
{
    if (r->p >= r->end || *r->p != type)
        return -1;
    const char *eol = memchr(r->p, '\r', (size_t)(r->end - r->p));
    if (eol == NULL || eol + 1 >= r->end || eol[1] != '\n')
        return -1;
    char *e;
    *v = strtoll(r->p + 1, &e, 10);
    if (e != eol)
        return -1;
    r->p = eol + 2;
    return 0;
}

static int bench_rc_bulk(struct bench_rc *r, const char **s, size_t *len)
{
    long long n;
    if (bench_rc_line(r, '$', &n) != 0 || n < 0 || r->end - r->p < n + 2)
        return -1;
    *s = r->p;
    *len = (size_t)n;
    r->p += n + 2;
    return 0;
}

/* Skip one value of any type. */
static int bench_rc_skip(struct bench_rc *r, int depth)
{
    long long n;
    const char *s;
    size_t len;
    if (r->p >= r->end || depth > 8)
        return -1;
    switch (*r->p) {
    case '$':
        return bench_rc_bulk(r, &s, &len);
    case ':':
        return bench_rc_line(r, ':', &n);
    case '+':
    case '-': {
        const char *eol = memchr(r->p, '\n', (size_t)(r->end - r->p));
        if (eol == NULL)
            return -1;
        r->p = eol + 1;
        return 0;
    }
    case '*':
    case '%': {
        char t = *r->p;
        if (bench_rc_line(r, t, &n) != 0)
            return -1;
        for (long long i = 0; i < (t == '%' ? 2 * n : n); i++)
            if (bench_rc_skip(r, depth + 1) != 0)
                return -1;
        return 0;
    }
    default:
        return -1;
    }
}

/* Parse a whole CLUSTER SLOTS reply into bench_nodes/bench_slot_node (the
 * first node of each range is its master). Returns 0, or -1 if incomplete
 * or malformed. */
static int bench_parse_cluster_slots(const char *buf, size_t len, int *covered)
{
    struct bench_rc r = {buf, buf + len};
    long long nranges;
    *covered = 0;
    bench_nnodes = 0;
    if (bench_rc_line(&r, '*', &nranges) != 0)
        return -1;
    for (long long i = 0; i < nranges; i++) {
        long long n, lo, hi, nn, port;
        const char *host;
        size_t hostlen;
        if (bench_rc_line(&r, '*', &n) != 0 || n < 3 || bench_rc_line(&r, ':', &lo) != 0 ||
            bench_rc_line(&r, ':', &hi) != 0 || bench_rc_line(&r, '*', &nn) != 0 || nn < 2 ||
            bench_rc_bulk(&r, &host, &hostlen) != 0 || bench_rc_line(&r, ':', &port) != 0)
            return -1;
        for (long long k = 2; k < nn; k++)
            if (bench_rc_skip(&r, 0) != 0)
                return -1;
        for (long long k = 3; k < n; k++)
            if (bench_rc_skip(&r, 0) != 0)
                return -1;
        if (lo < 0 || hi >= BENCH_CLUSTER_SLOTS || lo > hi || hostlen >= sizeof bench_nodes[0].host)
            return -1;
        char h[64];
        /* An empty host means the node we asked. */
        snprintf(h, sizeof h, "%.*s", (int)hostlen, hostlen ? host : opts.host);
        int j;
        for (j = 0; j < bench_nnodes; j++)
            if (bench_nodes[j].port == port && strcmp(bench_nodes[j].host, h) == 0)
                break;
        if (j == bench_nnodes) {
            if (bench_nnodes == BENCH_MAX_NODES)
                bench_die("more than %d masters", BENCH_MAX_NODES);
            snprintf(bench_nodes[j].host, sizeof bench_nodes[j].host, "%s", h);
            bench_nodes[j].port = (int)port;
            bench_nnodes++;
        }
        for (long long s = lo; s <= hi; s++)
            bench_slot_node[s] = (uint8_t)j;
        *covered += (int)(hi - lo + 1);
    }
    return 0;
}

/* Ask -h/-p for CLUSTER SLOTS (blocking, before any event loop), resolve the
 * masters, and sort the key numbers of -r by owner. */
static void bench_cluster_slots(void)
{
    int fd = socket(bench_addr.ss_family, SOCK_STREAM, 0);
    if (fd < 0 || connect(fd, (struct sockaddr *)&bench_addr, bench_addrlen) != 0)
        bench_die("cannot connect to %s:%d: %s", opts.host, opts.port, strerror(errno));
    static const char cmd[] = "*2\r\n$7\r\nCLUSTER\r\n$5\r\nSLOTS\r\n";
    if (write(fd, cmd, sizeof cmd - 1) != (ssize_t)(sizeof cmd - 1))
        bench_die("cannot send CLUSTER SLOTS: %s", strerror(errno));
    size_t cap = 1 << 16, len = 0;
    char *buf = bench_xcalloc(1, cap);
    int covered = 0;
    for (;;) {
        if (len == cap) {
            if (cap >= (size_t)16 << 20)
                bench_die("CLUSTER SLOTS reply too large");
            cap *= 2;
            char *nb = realloc(buf, cap);
            if (nb == NULL)
                bench_die("out of memory");
            buf = nb;
        }
        ssize_t n = read(fd, buf + len, cap - len);
        if (n <= 0)
            bench_die("CLUSTER SLOTS: %s", n == 0 ? "connection closed" : strerror(errno));
        len += (size_t)n;
        if (len > 0 && buf[0] == '-')
            bench_die("CLUSTER SLOTS: %.*s", (int)(len > 200 ? 200 : len), buf);
        if (bench_parse_cluster_slots(buf, len, &covered) == 0)
            break;
    }
    close(fd);
    free(buf);
    if (bench_nnodes == 0 || covered != BENCH_CLUSTER_SLOTS)
        bench_die("CLUSTER SLOTS covers %d of %d slots", covered, BENCH_CLUSTER_SLOTS);
    if (opts.conns / opts.threads < bench_nnodes)
        bench_die("--resp needs at least %d connections per thread (one per master)", bench_nnodes);
    for (int j = 0; j < bench_nnodes; j++) {
        struct addrinfo hints = {.ai_family = AF_UNSPEC, .ai_socktype = SOCK_STREAM}, *res;
        char port[16];
        snprintf(port, sizeof port, "%d", bench_nodes[j].port);
        int rc = getaddrinfo(bench_nodes[j].host, port, &hints, &res);
        if (rc != 0)
            bench_die("cannot resolve %s: %s", bench_nodes[j].host, gai_strerror(rc));
        memcpy(&bench_nodes[j].addr, res->ai_addr, res->ai_addrlen);
        bench_nodes[j].addrlen = res->ai_addrlen;
        freeaddrinfo(res);
        bench_nodes[j].keys = bench_xcalloc(opts.keyspace_len, sizeof(uint32_t));
    }
    if (opts.keyspace_len > UINT32_MAX)
        bench_die("--resp: -r at most %u", UINT32_MAX);
    char k[BENCH_KEY_MAX];
    for (uint64_t n = 0; n < opts.keyspace_len; n++) {
        int j = bench_slot_node[bench_key_slot(k, bench_format_key(k, n))];
        bench_nodes[j].keys[bench_nodes[j].nkeys++] = (uint32_t)n;
    }
    for (int j = 0; j < bench_nnodes; j++)
        if (bench_nodes[j].nkeys == 0)
            bench_die("--resp: no key of -r %llu lands on %s:%d; use a larger -r",
                      (unsigned long long)opts.keyspace_len, bench_nodes[j].host,
                      bench_nodes[j].port);
}

/*
 * Read path whole into bench_value and set opts.datasize to its size, so
 * every SET/MSET (and fill) sends exactly the file's bytes. The size limit
 * is the one -d has (64 MiB).
 */
static void bench_load_value_file(const char *path)
{
    FILE *f = fopen(path, "rb");
    if (f == NULL)
        bench_die("cannot open %s: %s", path, strerror(errno));
    size_t cap = 1 << 16, len = 0;
    bench_value = malloc(cap);
    if (bench_value == NULL)
        bench_die("out of memory");
    for (;;) {
        if (len == cap) {
            if (cap >= (size_t)64 << 20)
                bench_die("%s: larger than 64 MiB", path);
            cap *= 2;
            uint8_t *p = realloc(bench_value, cap);
            if (p == NULL)
                bench_die("out of memory");
            bench_value = p;
        }
        size_t n = fread(bench_value + len, 1, cap - len, f);
        len += n;
        if (n == 0)
            break;
    }
    if (ferror(f))
        bench_die("cannot read %s", path);
    fclose(f);
    if (len > (size_t)64 << 20)
        bench_die("%s: larger than 64 MiB", path);
    opts.datasize = len;
}

/* Make room for one descriptor per connection plus slack. */
static void bench_raise_nofile(void)
{
    struct rlimit rl;
    rlim_t want = (rlim_t)opts.conns + 64;
    if (getrlimit(RLIMIT_NOFILE, &rl) != 0 || rl.rlim_cur >= want)
        return;
    rl.rlim_cur = want < rl.rlim_max ? want : rl.rlim_max;
    setrlimit(RLIMIT_NOFILE, &rl);
}

int main(int argc, char **argv)
{
    signal(SIGPIPE, SIG_IGN);
    bench_parse_args(argc, argv);
    bench_resolve();
    if (opts.resp)
        bench_cluster_slots();
    bench_raise_nofile();

    if (opts.value_file != NULL) {
        bench_load_value_file(opts.value_file);
    } else {
        bench_value = malloc(opts.datasize ? opts.datasize : 1);
        if (bench_value == NULL)
            bench_die("out of memory");
        memset(bench_value, 'x', opts.datasize);
    }

    if (opts.tls) {
        char err[512];
        bench_ssl_ctx = sg_bench_tls_ctx_new(opts.cacert, opts.cert, opts.key, err, sizeof err);
        if (bench_ssl_ctx == NULL)
            bench_die("%s", err);
    }

    struct bench_thread *th = bench_xcalloc((size_t)opts.threads, sizeof *th);
    for (int i = 0; i < opts.threads; i++)
        bench_thread_init(&th[i], i, (int)bench_share((uint64_t)opts.conns, i));
    bench_run_threads(th, bench_thread_connect);
    for (int i = 0; i < opts.threads; i++)
        for (int j = 0; j < th[i].nconns; j++)
            if (th[i].conns[j].dead)
                bench_die("cannot connect to %s:%d: %s", opts.host, opts.port,
                          th[i].connect_err[0] ? th[i].connect_err : "failed");

    if (opts.csv)
        printf("test,rps,keys_per_s,p50_ms,p99_ms,p999_ms,max_ms,errors\n");
    int rc = 0;
    for (int k = 0; k < opts.ntests; k++) {
        enum bench_test test = opts.tests[k];
        if (test == BENCH_FILL) {
            uint64_t start = bench_now_ns();
            bench_fill(th);
            if (!opts.csv)
                printf("FILL: %llu keys set in %.3f seconds\n",
                       (unsigned long long)(opts.keyspace_len ? opts.keyspace_len : 1),
                       (double)(bench_now_ns() - start) / 1e9);
            continue;
        }
        if ((test == BENCH_GET || test == BENCH_MGET) && !opts.no_prefill)
            bench_fill(th);
        for (int i = 0; i < opts.threads; i++)
            bench_thread_begin_phase(&th[i], test, bench_share(opts.requests, i), 0);
        uint64_t start = bench_now_ns();
        bench_run_threads(th, bench_thread_run);
        bench_report(th, test, start);
        int alive = 0;
        for (int i = 0; i < opts.threads; i++)
            for (int j = 0; j < th[i].nconns; j++)
                alive += !th[i].conns[j].dead;
        if (alive == 0) {
            fprintf(stderr, "slotgate-bench: every connection is closed; stopping\n");
            rc = 1;
            break;
        }
    }

    for (int i = 0; i < opts.threads; i++) {
        for (int j = 0; j < th[i].nconns; j++) {
            struct bench_conn *c = &th[i].conns[j];
            if (c->bev)
                bufferevent_free(c->bev);
            free(c->sent_ns);
            free(c->free_slots);
        }
        free(th[i].conns);
        event_free(th[i].tick);
        event_free(th[i].pace);
        event_base_free(th[i].base);
    }
    free(th);
    for (int j = 0; j < bench_nnodes; j++)
        free(bench_nodes[j].keys);
    free(bench_value);
    SSL_CTX_free(bench_ssl_ctx);
    return rc;
}
