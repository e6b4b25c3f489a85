/*
 * test_resilience - libslotgate's tracking mode against a scripted server.
 *
 * A thread plays the server over plaintext loopback TCP with the generated
 * protobuf code, one script per case, so each case controls exactly when a
 * connection answers, drains (SHUTTING_DOWN) or breaks:
 *   - after SHUTTING_DOWN the client reconnects and resends exactly the
 *     requests that were not answered, in order, and every call succeeds;
 *   - a connection lost without SHUTTING_DOWN fails the unanswered request
 *     (SG_CLIENT_IO, by id), resends nothing, and the next call reconnects;
 *   - a request with deadline_ms fails with SG_TIMEOUT when the server does
 *     not answer, the late answer is dropped, the connection keeps working;
 *   - without the new options, behaviour is unchanged (id-0 ConnectionError);
 *   - requests over the HelloReply's limits fail locally with the protocol's
 *     code and never reach the server;
 *   - the async context on libevent gets the same resend and deadline
 *     behaviour, one callback per request, replies matched by id;
 *   - the public codec encodes with the caller's id and rejects garbage.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <event2/event.h>

#include <slotgate/adapters/libevent.h>
#include <slotgate/async.h>

#include "slotgate.h"
#include "slotgate.pb-c.h"

static int failures;

#define CHECK(cond)                                                                  \
    do {                                                                             \
        if (!(cond)) {                                                               \
            fprintf(stderr, "%s:%d: CHECK failed: %s\n", __FILE__, __LINE__, #cond); \
            failures++;                                                              \
        }                                                                            \
    } while (0)

static int64_t now_ms(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* ---- the scripted server ------------------------------------------------------- */

struct server {
    int lfd, port;
    pthread_t th;
    void (*script)(struct server *);
    /* what the script saw, for the checks (read after join) */
    uint64_t seen[16];
    int nseen, conns;
};

static int read_full(int fd, void *buf, size_t n)
{
    size_t off = 0;
    ssize_t r;

    while (off < n) {
        r = read(fd, (char *)buf + off, n - off);
        if (r < 0 && errno == EINTR)
            continue;
        if (r <= 0)
            return -1;
        off += (size_t)r;
    }
    return 0;
}

static Slotgate__V1__ClientMessage *read_msg(int fd)
{
    uint8_t hdr[4], *body;
    Slotgate__V1__ClientMessage *m;
    uint32_t len;

    if (read_full(fd, hdr, 4) < 0)
        return NULL;
    len = (uint32_t)hdr[0] << 24 | (uint32_t)hdr[1] << 16 | (uint32_t)hdr[2] << 8 | hdr[3];
    body = malloc(len ? len : 1);
    if (read_full(fd, body, len) < 0) {
        free(body);
        return NULL;
    }
    m = slotgate__v1__client_message__unpack(NULL, len, body);
    free(body);
    return m;
}

static void write_msg(int fd, const Slotgate__V1__ServerMessage *m)
{
    size_t len = slotgate__v1__server_message__get_packed_size(m);
    uint8_t *buf = malloc(len + 4);

    buf[0] = (uint8_t)(len >> 24);
    buf[1] = (uint8_t)(len >> 16);
    buf[2] = (uint8_t)(len >> 8);
    buf[3] = (uint8_t)len;
    slotgate__v1__server_message__pack(m, buf + 4);
    if (write(fd, buf, len + 4) != (ssize_t)(len + 4))
        fprintf(stderr, "server: short write\n");
    free(buf);
}

/* Accept one connection and complete the Hello. */
static int srv_accept(struct server *s)
{
    Slotgate__V1__ServerMessage m = SLOTGATE__V1__SERVER_MESSAGE__INIT;
    Slotgate__V1__HelloReply hr = SLOTGATE__V1__HELLO_REPLY__INIT;
    Slotgate__V1__Limits lim = SLOTGATE__V1__LIMITS__INIT;
    Slotgate__V1__ClientMessage *hello;
    struct pollfd pfd = {s->lfd, POLLIN, 0};
    int fd;

    /* bounded: a client that never comes back fails the case, not the run */
    if (poll(&pfd, 1, 5000) != 1)
        return -1;
    fd = accept(s->lfd, NULL, NULL);
    if (fd < 0)
        return -1;
    s->conns++;
    hello = read_msg(fd);
    if (hello == NULL || hello->msg_case != SLOTGATE__V1__CLIENT_MESSAGE__MSG_HELLO) {
        close(fd);
        return -1;
    }
    slotgate__v1__client_message__free_unpacked(hello, NULL);
    lim.max_inflight = 1024;
    lim.max_key_bytes = 16;
    lim.max_value_bytes = 64;
    lim.max_batch_keys = 4;
    hr.protocol_version = 1;
    hr.server_version = "test";
    hr.server_name = "slotgate";
    hr.limits = &lim;
    m.msg_case = SLOTGATE__V1__SERVER_MESSAGE__MSG_HELLO_REPLY;
    m.hello_reply = &hr;
    write_msg(fd, &m);
    return fd;
}

/* Read one request, record its id; returns the id or 0. */
static uint64_t srv_read_request(struct server *s, int fd)
{
    Slotgate__V1__ClientMessage *m = read_msg(fd);
    uint64_t id = 0;

    if (m != NULL && m->msg_case == SLOTGATE__V1__CLIENT_MESSAGE__MSG_REQUEST) {
        id = m->request->id;
        if (s->nseen < 16)
            s->seen[s->nseen++] = id;
    }
    if (m != NULL)
        slotgate__v1__client_message__free_unpacked(m, NULL);
    return id;
}

/* Answer id with OK and value "v<id>". */
static void srv_answer(int fd, uint64_t id)
{
    Slotgate__V1__ServerMessage m = SLOTGATE__V1__SERVER_MESSAGE__INIT;
    Slotgate__V1__Response r = SLOTGATE__V1__RESPONSE__INIT;
    char val[32];

    snprintf(val, sizeof(val), "v%llu", (unsigned long long)id);
    r.id = id;
    r.value.data = (uint8_t *)val;
    r.value.len = strlen(val);
    m.msg_case = SLOTGATE__V1__SERVER_MESSAGE__MSG_RESPONSE;
    m.response = &r;
    write_msg(fd, &m);
}

static void srv_conn_error(int fd, int code)
{
    Slotgate__V1__ServerMessage m = SLOTGATE__V1__SERVER_MESSAGE__INIT;
    Slotgate__V1__ConnectionError e = SLOTGATE__V1__CONNECTION_ERROR__INIT;

    e.code = (Slotgate__V1__Code)code;
    e.message = "server is shutting down";
    m.msg_case = SLOTGATE__V1__SERVER_MESSAGE__MSG_ERROR;
    m.error = &e;
    write_msg(fd, &m);
}

static void *srv_main(void *arg)
{
    struct server *s = arg;

    s->script(s);
    return NULL;
}

static void srv_start(struct server *s, void (*script)(struct server *))
{
    struct sockaddr_in a;
    socklen_t alen = sizeof(a);
    int one = 1;

    memset(s, 0, sizeof(*s));
    s->script = script;
    s->lfd = socket(AF_INET, SOCK_STREAM, 0);
    setsockopt(s->lfd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
    memset(&a, 0, sizeof(a));
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (bind(s->lfd, (struct sockaddr *)&a, sizeof(a)) < 0 || listen(s->lfd, 8) < 0 ||
        getsockname(s->lfd, (struct sockaddr *)&a, &alen) < 0) {
        perror("server");
        exit(2);
    }
    s->port = ntohs(a.sin_port);
    pthread_create(&s->th, NULL, srv_main, s);
}

static void srv_join(struct server *s)
{
    pthread_join(s->th, NULL);
    close(s->lfd);
}

static struct sg_client *connect_to(const struct server *s, int reconnect, int margin)
{
    struct sg_client_options o;
    struct sg_client *c;

    memset(&o, 0, sizeof(o));
    o.host = "127.0.0.1";
    o.port = s->port;
    o.timeout_ms = 3000;
    o.reconnect = reconnect;
    o.deadline_margin_ms = margin;
    c = sg_client_connect(&o);
    if (c->err) {
        fprintf(stderr, "connect: %s\n", c->errstr);
        exit(2);
    }
    return c;
}

static struct sg_request *get_request(struct sg_client *c, const char *key)
{
    struct sg_request *r = sg_request_new(SG_OP_GET);

    sg_request_add_key(r, key, strlen(key));
    return r;
}

/* ---- case 1: SHUTTING_DOWN, reconnect, resend the unanswered -------------------- */

static void script_drain(struct server *s)
{
    uint64_t a, b, c;
    int fd = srv_accept(s);

    if (fd < 0)
        return;
    a = srv_read_request(s, fd);
    b = srv_read_request(s, fd);
    c = srv_read_request(s, fd);
    srv_answer(fd, a);
    srv_conn_error(fd, SG_SHUTTING_DOWN);
    close(fd); /* everything sent was read: a FIN, not a reset */
    if ((fd = srv_accept(s)) < 0)
        return;
    /* only b and c come again, in order */
    b = srv_read_request(s, fd);
    c = srv_read_request(s, fd);
    srv_answer(fd, c);
    srv_answer(fd, b);
    close(fd);
}

static void case_resend_after_shutdown(void)
{
    struct server s;
    struct sg_client *c;
    struct sg_request *r[3];
    struct sg_response *resp;
    int i, got[3] = {0, 0, 0};

    srv_start(&s, script_drain);
    c = connect_to(&s, 1, 0);
    for (i = 0; i < 3; i++) {
        r[i] = get_request(c, "k");
        CHECK(sg_client_send(c, r[i], NULL) == 0);
    }
    for (i = 0; i < 3; i++) {
        CHECK(sg_client_recv(c, &resp) == 0);
        if (resp == NULL)
            break;
        CHECK(resp->code == SG_OK);
        CHECK(resp->id >= 1 && resp->id <= 3);
        if (resp->id >= 1 && resp->id <= 3)
            got[resp->id - 1]++;
        sg_response_free(resp);
    }
    CHECK(got[0] == 1 && got[1] == 1 && got[2] == 1);
    sg_client_free(c);
    srv_join(&s);
    CHECK(s.conns == 2);
    /* first connection: 1,2,3; second: the unanswered 2,3 and nothing else */
    CHECK(s.nseen == 5);
    CHECK(s.seen[3] == 2 && s.seen[4] == 3);
    for (i = 0; i < 3; i++)
        sg_request_free(r[i]);
}

/* ---- case 2: a connection lost without SHUTTING_DOWN ------------------------------ */

static void script_break(struct server *s)
{
    uint64_t a;
    int fd = srv_accept(s);

    if (fd < 0)
        return;
    a = srv_read_request(s, fd);
    srv_read_request(s, fd);
    srv_answer(fd, a);
    close(fd); /* no ConnectionError: the second request's outcome is unknown */
    if ((fd = srv_accept(s)) < 0)
        return;
    srv_answer(fd, srv_read_request(s, fd));
    close(fd);
}

static void case_loss_fails_unanswered(void)
{
    struct server s;
    struct sg_client *c;
    struct sg_request *r1, *r2, *r3;
    struct sg_response *resp;

    srv_start(&s, script_break);
    c = connect_to(&s, 1, 0);
    r1 = get_request(c, "a");
    r2 = get_request(c, "b");
    CHECK(sg_client_send(c, r1, NULL) == 0);
    CHECK(sg_client_send(c, r2, NULL) == 0);
    CHECK(sg_client_recv(c, &resp) == 0);
    CHECK(resp != NULL && resp->id == 1 && resp->code == SG_OK);
    sg_response_free(resp);
    CHECK(sg_client_recv(c, &resp) == 0);
    CHECK(resp != NULL && resp->id == 2 && resp->code == SG_CLIENT_IO);
    sg_response_free(resp);
    /* nothing outstanding, connection gone: recv says so instead of blocking */
    CHECK(sg_client_recv(c, &resp) < 0);
    /* the next call reconnects */
    r3 = get_request(c, "c");
    CHECK(sg_call(c, r3, &resp) == 0 && resp->code == SG_OK);
    CHECK(resp != NULL && resp->value_len == 2 && memcmp(resp->value, "v3", 2) == 0);
    sg_response_free(resp);
    sg_client_free(c);
    srv_join(&s);
    CHECK(s.conns == 2);
    CHECK(s.nseen == 3); /* request 2 was not resent */
    sg_request_free(r1);
    sg_request_free(r2);
    sg_request_free(r3);
}

/* ---- case 3: client-side deadline ---------------------------------------------- */

static void script_hang(struct server *s)
{
    uint64_t late, next;
    int fd = srv_accept(s);

    if (fd < 0)
        return;
    late = srv_read_request(s, fd); /* not answered in time */
    next = srv_read_request(s, fd); /* sent after the client gave up */
    srv_answer(fd, late);
    srv_answer(fd, next);
    close(fd);
}

static void case_client_deadline(void)
{
    struct server s;
    struct sg_client *c;
    struct sg_request *r1, *r2;
    struct sg_response *resp;
    int64_t t0, took;

    srv_start(&s, script_hang);
    c = connect_to(&s, 0, 50);
    r1 = get_request(c, "slow");
    sg_request_deadline(r1, 100);
    t0 = now_ms();
    CHECK(sg_call(c, r1, &resp) == -1);
    took = now_ms() - t0;
    CHECK(resp == NULL && c->err == SG_TIMEOUT);
    CHECK(took >= 100 && took < 2500); /* the client's own deadline, not timeout_ms */
    sg_response_free(resp);
    /* the late answer to r1 arrives first and is dropped */
    r2 = get_request(c, "next");
    CHECK(sg_call(c, r2, &resp) == 0 && resp->code == SG_OK);
    CHECK(resp != NULL && resp->id == 2 && resp->value_len == 2 &&
          memcmp(resp->value, "v2", 2) == 0);
    sg_response_free(resp);
    sg_client_free(c);
    srv_join(&s);
    sg_request_free(r1);
    sg_request_free(r2);
}

/* ---- case 4: default options keep the old behaviour ----------------------------------- */

static void script_drain_once(struct server *s)
{
    int fd = srv_accept(s);

    if (fd < 0)
        return;
    srv_read_request(s, fd);
    srv_conn_error(fd, SG_SHUTTING_DOWN);
    close(fd);
}

static void case_untracked_unchanged(void)
{
    struct server s;
    struct sg_client *c;
    struct sg_request *r;
    struct sg_response *resp;

    srv_start(&s, script_drain_once);
    c = connect_to(&s, 0, 0);
    r = get_request(c, "k");
    CHECK(sg_client_send(c, r, NULL) == 0);
    CHECK(sg_client_recv(c, &resp) == 0);
    CHECK(resp != NULL && resp->id == 0 && resp->code == SG_SHUTTING_DOWN);
    sg_response_free(resp);
    sg_client_free(c);
    srv_join(&s);
    CHECK(s.conns == 1);
    sg_request_free(r);
}

/* ---- case 5: local limit checks ------------------------------------------------- */

static void script_one(struct server *s)
{
    uint64_t id;
    int fd = srv_accept(s);

    if (fd < 0)
        return;
    id = srv_read_request(s, fd);
    srv_answer(fd, id);
    srv_read_request(s, fd); /* EOF when the client goes */
    close(fd);
}

static void case_local_limits(void)
{
    static const char big_key[] = "0123456789abcdefX"; /* 17 bytes > 16 */
    char big_val[65];
    const void *keys[5] = {"a", "b", "c", "d", "e"};
    const size_t klens[5] = {1, 1, 1, 1, 1};
    struct server s;
    struct sg_client *c;
    struct sg_response *resp;

    memset(big_val, 'v', sizeof(big_val));
    srv_start(&s, script_one);
    c = connect_to(&s, 0, 0);
    CHECK(sg_get(c, "", big_key, 17) == NULL && c->err == SG_KEY_TOO_LARGE);
    CHECK(sg_set(c, "", "k", 1, big_val, sizeof(big_val), 0, SG_COND_NONE) == NULL &&
          c->err == SG_VALUE_TOO_LARGE);
    CHECK(sg_mget(c, "", 5, keys, klens) == NULL && c->err == SG_BATCH_TOO_LARGE);
    CHECK(sg_invalidate(c, "", big_key, 17) == NULL && c->err == SG_KEY_TOO_LARGE);
    resp = sg_get(c, "", "k", 1);
    CHECK(resp != NULL && resp->code == SG_OK && resp->id == 1);
    sg_response_free(resp);
    sg_client_free(c);
    srv_join(&s);
    CHECK(s.nseen == 1 && s.seen[0] == 1); /* nothing over a limit was sent */
}

/* ---- cases 6 and 7: the async context on libevent --------------------------------- */

struct async_state {
    struct event_base *base;
    int calls, codes[8], local[8];
    uint64_t ids[8];
    int want;
};

static void on_async_reply(struct sg_async *ac, struct sg_response *reply, void *privdata)
{
    struct async_state *st = privdata;

    (void)ac;
    if (st->calls < 8) {
        st->codes[st->calls] = reply ? (int)reply->code : -1;
        st->local[st->calls] = reply ? reply->local : -1;
        st->ids[st->calls] = reply ? reply->id : 0;
    }
    if (++st->calls == st->want)
        event_base_loopbreak(st->base);
}

static struct sg_async *async_connect_to(const struct server *s, int reconnect, int margin,
                                         struct event_base *base)
{
    struct sg_client_options o;
    struct sg_async *ac;

    memset(&o, 0, sizeof(o));
    o.host = "127.0.0.1";
    o.port = s->port;
    o.timeout_ms = 3000;
    o.reconnect = reconnect;
    o.deadline_margin_ms = margin;
    ac = sg_async_connect(&o);
    if (ac->err) {
        fprintf(stderr, "async connect: %s\n", ac->errstr);
        exit(2);
    }
    CHECK(sg_libevent_attach(ac, base) == 0);
    return ac;
}

/* Run the loop until st->want callbacks ran, bounded by a 10 s safety timer. */
static void async_run(struct async_state *st)
{
    struct timeval tv = {10, 0};

    event_base_loopexit(st->base, &tv);
    event_base_dispatch(st->base);
}

static void case_async_resend_after_shutdown(void)
{
    struct async_state st;
    struct server s;
    struct sg_async *ac;
    uint64_t id;
    int i, got[3] = {0, 0, 0};

    memset(&st, 0, sizeof(st));
    st.base = event_base_new();
    st.want = 3;
    srv_start(&s, script_drain);
    ac = async_connect_to(&s, 1, 0, st.base);
    for (i = 0; i < 3; i++) {
        CHECK(sg_async_get(ac, "", "k", 1, on_async_reply, &st) == 0);
    }
    CHECK(sg_async_outstanding(ac) == 3);
    async_run(&st);
    CHECK(st.calls == 3);
    for (i = 0; i < 3 && i < st.calls; i++) {
        CHECK(st.codes[i] == SG_OK && st.local[i] == 0);
        id = st.ids[i];
        if (id >= 1 && id <= 3)
            got[id - 1]++;
    }
    CHECK(got[0] == 1 && got[1] == 1 && got[2] == 1);
    /* the second connection answered 3 before 2: callbacks follow the wire */
    CHECK(st.calls == 3 && st.ids[1] == 3 && st.ids[2] == 2);
    sg_async_free(ac);
    srv_join(&s);
    CHECK(s.conns == 2);
    event_base_free(st.base);
}

static void case_async_client_deadline(void)
{
    struct async_state st;
    struct sg_request *r;
    struct server s;
    struct sg_async *ac;

    memset(&st, 0, sizeof(st));
    st.base = event_base_new();
    st.want = 1;
    srv_start(&s, script_hang);
    ac = async_connect_to(&s, 0, 50, st.base);
    r = sg_request_new(SG_OP_GET);
    sg_request_add_key(r, "slow", 4);
    sg_request_deadline(r, 100);
    CHECK(sg_async_send(ac, r, on_async_reply, &st, NULL) == 0);
    sg_request_free(r);
    async_run(&st);
    CHECK(st.calls == 1 && st.codes[0] == SG_TIMEOUT && st.local[0] == 1 && st.ids[0] == 1);
    /* the late answer to 1 is dropped; 2 gets its own */
    st.want = 2;
    CHECK(sg_async_get(ac, "", "next", 4, on_async_reply, &st) == 0);
    async_run(&st);
    CHECK(st.calls == 2 && st.codes[1] == SG_OK && st.ids[1] == 2);
    /* a local limit check fails the send, no callback */
    CHECK(sg_async_get(ac, "", "0123456789abcdefX", 17, on_async_reply, &st) == -1 &&
          ac->err == SG_KEY_TOO_LARGE);
    sg_async_free(ac);
    srv_join(&s);
    CHECK(st.calls == 2);
    event_base_free(st.base);
}

/* ---- case 9: async, an idle connection closed by the server ----------------------- */

static void script_close_idle_then_one(struct server *s)
{
    uint64_t id;
    int fd = srv_accept(s);

    if (fd < 0)
        return;
    close(fd); /* idle timeout: EOF without a ConnectionError */
    if ((fd = srv_accept(s)) < 0)
        return;
    id = srv_read_request(s, fd);
    srv_answer(fd, id);
    srv_read_request(s, fd); /* EOF when the client goes */
    close(fd);
}

static void on_safety(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    (void)arg;
}

static void case_async_idle_eof(void)
{
    struct async_state st;
    struct server s;
    struct sg_async *ac;
    struct timeval tv = {10, 0};
    struct event *safety;

    memset(&st, 0, sizeof(st));
    st.base = event_base_new();
    st.want = 1;
    srv_start(&s, script_close_idle_then_one);
    ac = async_connect_to(&s, 1, 0, st.base);
    /* One loop turn reads the EOF (a safety timer bounds the wait); then the
     * dead socket is unwatched and nothing is registered any more, so a
     * non-blocking turn returns 1. A watched EOF would stay readable and
     * keep the loop busy. */
    safety = evtimer_new(st.base, on_safety, NULL);
    evtimer_add(safety, &tv);
    CHECK(event_base_loop(st.base, EVLOOP_ONCE) == 0);
    evtimer_del(safety);
    event_free(safety);
    CHECK(((struct sg_libevent *)ac->ev.data)->rev == NULL);
    CHECK(event_base_loop(st.base, EVLOOP_NONBLOCK) == 1);
    /* the next request reconnects */
    CHECK(sg_async_get(ac, "", "k", 1, on_async_reply, &st) == 0);
    async_run(&st);
    CHECK(st.calls == 1 && st.codes[0] == SG_OK);
    sg_async_free(ac);
    srv_join(&s);
    CHECK(s.conns == 2);
    event_base_free(st.base);
}

/* ---- case 8: the public codec, without a connection ------------------------------ */

static void case_codec(void)
{
    static const uint8_t garbage[] = {0x0f, 0x01}; /* wire type 7 does not exist */
    Slotgate__V1__ClientMessage *m;
    struct sg_response *resp;
    enum sg_msg_kind kind;
    struct sg_request *r;
    uint8_t *frame;
    size_t len, body;

    r = sg_request_new(SG_OP_SET);
    sg_request_keyspace(r, "session");
    sg_request_add_key(r, "k", 1);
    sg_request_add_value(r, "v", 1);
    frame = sg_encode_request(r, 42, &len);
    sg_request_free(r);
    CHECK(frame != NULL && sg_decode_frame_len(frame, len, &body) == 1 && body + 4 == len);
    CHECK(sg_decode_frame_len(frame, 3, &body) == 0); /* needs the whole header */
    m = frame ? slotgate__v1__client_message__unpack(NULL, len - 4, frame + 4) : NULL;
    CHECK(m != NULL && m->msg_case == SLOTGATE__V1__CLIENT_MESSAGE__MSG_REQUEST &&
          m->request->id == 42 && m->request->op == SLOTGATE__V1__OP__OP_SET &&
          strcmp(m->request->keyspace, "session") == 0);
    if (m)
        slotgate__v1__client_message__free_unpacked(m, NULL);
    free(frame);
    CHECK(sg_decode_response(garbage, sizeof(garbage), &resp, &kind, NULL) == -1 && resp == NULL);
}

int main(void)
{
    static const struct {
        const char *name;
        void (*fn)(void);
    } cases[] = {{"resend_after_shutdown", case_resend_after_shutdown},
                 {"loss_fails_unanswered", case_loss_fails_unanswered},
                 {"client_deadline", case_client_deadline},
                 {"untracked_unchanged", case_untracked_unchanged},
                 {"local_limits", case_local_limits},
                 {"async_resend_after_shutdown", case_async_resend_after_shutdown},
                 {"async_client_deadline", case_async_client_deadline},
                 {"async_idle_eof", case_async_idle_eof},
                 {"codec", case_codec}};
    size_t i;
    int passed = 0, failed = 0, before;

    for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        before = failures;
        cases[i].fn();
        if (failures == before) {
            passed++;
            printf("ok   %s\n", cases[i].name);
        } else {
            failed++;
            printf("FAIL %s\n", cases[i].name);
        }
    }
    printf("%d passed, %d failed\n", passed, failed);
    return failed ? 1 : 0;
}
