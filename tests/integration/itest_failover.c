/*
 * itest_failover - masters that hang or die under load.
 *
 * hung master: one master is SIGSTOPped. Keys on the other masters must keep
 * getting OK answers promptly, on the same connection, while the request for
 * a key on the stopped master ends in TIMEOUT at its deadline (no head-of-line
 * blocking across shards). SIGCONT afterwards and everything recovers.
 *
 * killed master: four pipelined connections keep about a thousand GETs in
 * flight across keys of every shard; one master gets SIGKILL. Every request
 * must be answered exactly once (ids are counted), any error must be TIMEOUT,
 * SHARD_UNAVAILABLE or CLUSTER_DOWN, every OK must carry the right value, and
 * once the replica is promoted, that shard's keys work again through the same
 * slotgate process.
 *
 * write gathering (limits.write_gather_us, session.c): the answers to one
 * read's pipelined GETs over keys of every master leave in one write, even
 * when one master answers long after the others; and with that master
 * stopped, the others' answers leave once the bound has passed, long
 * before the stopped one's TIMEOUT.
 */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <pthread.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include <cmocka.h>

#include "harness.h"
#include "rawtls.h"

#define NKEYS 300

static struct sg_client *C;

static void fo_key(int i, char *k, size_t n)
{
    snprintf(k, n, "fo:%d", i);
}
static void fo_val(int i, char *v, size_t n)
{
    snprintf(v, n, "fo-value-%d-%s", i, "xxxxxxxx" + (i % 8));
}

static int group_setup(void **state)
{
    /* link_stall_ms: a link owing replies with none for 1 s is reset */
    struct h_opts o = {.deadline_ms = 1500, .redis_yaml = "  link_stall_ms: 1000", .admin = 1};
    if (h_group_start(&H, "failover", &o, &C) != 0)
        return -1;
    char k[64], v[64];
    for (int i = 0; i < NKEYS; i++) {
        fo_key(i, k, sizeof(k));
        fo_val(i, v, sizeof(v));
        if (hc_set(C, "", k, strlen(k), v, strlen(v), 0, SG_COND_NONE) != SG_OK)
            return -1;
    }
    /* the replicas must hold the data before any master is harmed */
    return h_sync_replicas(&H);
}

static int group_teardown(void **state)
{
    return h_group_stop(&H, &C);
}

/* Index of keys whose owner is (or is not) port. */
static int keys_on(int port, int want_on, int *idx, int max)
{
    char k[64];
    int n = 0;
    for (int i = 0; i < NKEYS && n < max; i++) {
        fo_key(i, k, sizeof(k));
        int owner = h_key_owner(&H, k, strlen(k));
        if ((owner == port) == (want_on != 0))
            idx[n++] = i;
    }
    return n;
}

/* Poll (bounded) until GET of key i through c answers OK with its value. */
static int wait_key_ok(struct sg_client *c, int i, int timeout_ms)
{
    char k[64], v[64];
    fo_key(i, k, sizeof(k));
    fo_val(i, v, sizeof(v));
    int64_t deadline = h_now_ms() + timeout_ms;
    int rc = -1;
    while (h_now_ms() < deadline) {
        void *got = NULL;
        size_t glen = 0;
        rc = hc_get(c, "", k, strlen(k), &got, &glen);
        int ok = rc == SG_OK && glen == strlen(v) && memcmp(got, v, glen) == 0;
        free(got);
        if (ok)
            return 0;
        if (rc == SG_OK)
            fail_msg("GET %s returned a wrong value", k);
        h_poll_pause();
    }
    h_log("GET %s still answers %s after %d ms", k, sg_code_name(rc), timeout_ms);
    return -1;
}

static void check_all_keys(struct sg_client *c)
{
    for (int i = 0; i < NKEYS; i++)
        if (wait_key_ok(c, i, 15000) != 0)
            fail_msg("key fo:%d does not recover", i);
}

/* ---- hung master -------------------------------------------------------------- */

static void test_hung_master(void **state)
{
    int masters[H_MAX_NODES];
    assert_int_equal(h_masters(&H, masters, H_MAX_NODES), 3);
    int victim = masters[2];
    int on[NKEYS], off[NKEYS];
    int n_on = keys_on(victim, 1, on, NKEYS);
    int n_off = keys_on(victim, 0, off, NKEYS);
    assert_true(n_on > 0 && n_off >= 30);
    char k[64], v[64];
    int64_t resets0 = h_stat(C, "link_resets");
    assert_true(resets0 >= 0);

    assert_int_equal(h_node_signal(&H, victim, SIGSTOP), 0);
    h_log("SIGSTOP master %d", victim);
    int64_t t0 = h_now_ms();

    /* first the request that cannot be answered, then 30 that can */
    struct sg_request *r = sg_request_new(SG_OP_GET);
    fo_key(on[0], k, sizeof(k));
    sg_request_add_key(r, k, strlen(k));
    sg_request_deadline(r, 800);
    assert_int_equal(hc_send(C, r, 1), 0);
    sg_request_free(r);
    for (int j = 0; j < 30; j++) {
        r = sg_request_new(SG_OP_GET);
        fo_key(off[j], k, sizeof(k));
        sg_request_add_key(r, k, strlen(k));
        assert_int_equal(hc_send(C, r, 100 + (uint64_t)j), 0);
        sg_request_free(r);
    }
    int got_hung = 0, got_ok = 0, hung_code = -1;
    int64_t hung_ms = 0, slowest_ok = 0;
    for (int n = 0; n < 31; n++) {
        struct sg_response *resp = NULL;
        if (hc_recv(C, &resp) != 0) {
            h_node_signal(&H, victim, SIGCONT);
            fail_msg("recv %d of 31: %s", n, C->errstr);
        }
        int64_t dt = h_now_ms() - t0;
        if (resp->id == 1) {
            got_hung++;
            hung_code = resp->code;
            hung_ms = dt;
        } else {
            int j = (int)resp->id - 100;
            assert_true(j >= 0 && j < 30);
            fo_val(off[j], v, sizeof(v));
            if (resp->code != SG_OK || resp->value_len != strlen(v) ||
                memcmp(resp->value, v, resp->value_len) != 0) {
                h_node_signal(&H, victim, SIGCONT);
                fail_msg("key on a healthy master answered %s while %d is stopped",
                         sg_code_name(resp->code), victim);
            }
            if (got_hung) /* arrived after the TIMEOUT: it was blocked behind it */
                h_log("healthy-shard answer %d arrived after the hung one", j);
            got_ok++;
            if (dt > slowest_ok)
                slowest_ok = dt;
        }
        sg_response_free(resp);
    }
    /* The sub-op still owed by the stopped node must not stay queued for
     * ever: the link is reset once it has owed a reply for link_stall_ms. */
    int64_t resets = resets0;
    for (int64_t until = h_now_ms() + 10000; resets <= resets0 && h_now_ms() < until;) {
        resets = h_stat(C, "link_resets");
        if (resets <= resets0)
            h_poll_pause();
    }
    assert_int_equal(h_node_signal(&H, victim, SIGCONT), 0);
    if (resets <= resets0)
        fail_msg("the link to the stopped master was never reset (link_resets %lld)",
                 (long long)resets);
    h_log("SIGCONT master %d: healthy answers within %lld ms, hung key %s after %lld ms", victim,
          (long long)slowest_ok, sg_code_name(hung_code), (long long)hung_ms);
    assert_int_equal(got_hung, 1);
    assert_int_equal(got_ok, 30);
    if (slowest_ok >= hung_ms)
        fail_msg("healthy shards answered only after %lld ms with one shard hung",
                 (long long)slowest_ok);
    if (hung_code != SG_TIMEOUT)
        fail_msg("request to the stopped master answered %s, expected TIMEOUT",
                 sg_code_name(hung_code));
    if (hung_ms < 700 || hung_ms > 1700)
        fail_msg("TIMEOUT with deadline 800 ms arrived after %lld ms", (long long)hung_ms);

    /* the node may or may not have been failed over meanwhile; either way */
    assert_int_equal(h_wait_cluster(&H, 30000), 0);
    check_all_keys(C);
    assert_int_equal(hc_ping(C), SG_OK);
}

/* ---- write gathering ------------------------------------------------------------ */

#define GBATCH 45

/* The /clients line's field= (" writes", " inflight") of the connection
 * from 127.0.0.1:lport, or -1. */
static long long client_field(int admin_port, int lport, const char *field)
{
    static char body[1 << 16];
    char needle[64];
    if (h_http_get(admin_port, "/clients", body, sizeof(body)) != 0)
        return -1;
    snprintf(needle, sizeof(needle), "client=127.0.0.1:%d ", lport);
    char *line = strstr(body, needle), *w, *eol;
    if (line == NULL || (w = strstr(line, field)) == NULL)
        return -1;
    if ((eol = strchr(line, '\n')) != NULL && w > eol)
        return -1;
    return atoll(w + strlen(field));
}

static int local_port(int fd)
{
    struct sockaddr_in a;
    socklen_t len = sizeof(a);
    return getsockname(fd, (struct sockaddr *)&a, &len) == 0 ? ntohs(a.sin_port) : -1;
}

/* GETs of keys fo:idx[0..n) under ids id0.., framed side by side in one
 * buffer and written at once: one TLS record, one read for the proxy. The
 * first has deadline0 (0: the default). */
static void send_batch(struct rt_conn *rc, const int *idx, int n, uint64_t id0, uint32_t deadline0)
{
    static uint8_t buf[GBATCH * 64];
    size_t len = 0;
    char k[64];
    assert_true(n <= GBATCH);
    for (int j = 0; j < n; j++) {
        fo_key(idx[j], k, sizeof(k));
        size_t f = rt_frame_get(id0 + (uint64_t)j, k, j == 0 ? deadline0 : 0, buf + len,
                                sizeof(buf) - len);
        assert_true(len + f <= sizeof(buf));
        len += f;
    }
    assert_int_equal(rt_write(rc, buf, len), 0);
}

/* One answer of send_batch's: its index (id - id0), with the key's value checked. */
static int recv_batch_answer(struct rt_conn *rc, const int *idx, int n, uint64_t id0, int *code)
{
    Slotgate__V1__ServerMessage *m = rt_read(rc);
    if (m == NULL || m->msg_case != SLOTGATE__V1__SERVER_MESSAGE__MSG_RESPONSE)
        fail_msg("no Response on the raw connection");
    int j = (int)(m->response->id - id0);
    assert_true(j >= 0 && j < n);
    *code = m->response->code;
    if (*code == SLOTGATE__V1__CODE__CODE_OK) {
        char v[64];
        fo_val(idx[j], v, sizeof(v));
        assert_int_equal(m->response->value.len, strlen(v));
        assert_memory_equal(m->response->value.data, v, strlen(v));
    }
    slotgate__v1__server_message__free_unpacked(m, NULL);
    return j;
}

#define RT_N 10

/*
 * Replies of every kind the link takes in place, back to back in one read:
 * with the master of slot {rt} stopped, one record of 40 requests on that
 * slot (SET: a status; GET of a set key: a bulk; DELETE: an integer; GET of
 * a missing key: a nil) reaches the proxy and is sent on; once the master
 * runs again it answers all 40 in one go. Every answer must be the one its
 * request is owed (the link walks the replies in its input and drains
 * them once).
 */
static void test_replies_read_together(void **state)
{
    char k[64], v[64];
    for (int i = 0; i < RT_N; i++) {
        snprintf(k, sizeof(k), "{rt}:s%d", i);
        snprintf(v, sizeof(v), "rt-old-%d", i);
        assert_int_equal(hc_set(C, "", k, strlen(k), v, strlen(v), 0, SG_COND_NONE), SG_OK);
        snprintf(k, sizeof(k), "{rt}:m%d", i);
        hc_del(C, "", k, strlen(k));
    }
    int master = h_key_owner(&H, "{rt}:s0", 7);
    assert_true(master >= 0);
    struct rt_conn rc;
    assert_int_equal(rt_connect(&rc, H.proxies[0].port, H.ca_file), 0);
    assert_int_equal(rt_handshake(&rc), 0);
    static uint8_t buf[4 * RT_N * 96];
    size_t len = 0;
    for (int i = 0; i < RT_N; i++) {
        uint64_t id = 5000 + 4 * (uint64_t)i;
        snprintf(k, sizeof(k), "{rt}:n%d", i);
        snprintf(v, sizeof(v), "rt-new-%d", i);
        len += rt_frame_req(id, SLOTGATE__V1__OP__OP_SET, k, v, 0, buf + len, sizeof(buf) - len);
        snprintf(k, sizeof(k), "{rt}:s%d", i);
        len += rt_frame_req(id + 1, SLOTGATE__V1__OP__OP_GET, k, NULL, 0, buf + len,
                            sizeof(buf) - len);
        len += rt_frame_req(id + 2, SLOTGATE__V1__OP__OP_DELETE, k, NULL, 0, buf + len,
                            sizeof(buf) - len);
        snprintf(k, sizeof(k), "{rt}:m%d", i);
        len += rt_frame_req(id + 3, SLOTGATE__V1__OP__OP_GET, k, NULL, 0, buf + len,
                            sizeof(buf) - len);
        assert_true(len < sizeof(buf));
    }
    int64_t sent0 = h_stat(C, "backend_commands");
    assert_int_equal(h_node_signal(&H, master, SIGSTOP), 0);
    assert_int_equal(rt_write(&rc, buf, len), 0);
    int64_t sent = sent0, until = h_now_ms() + 1000;
    while ((sent = h_stat(C, "backend_commands")) < sent0 + 4 * RT_N && h_now_ms() < until)
        h_poll_pause();
    assert_int_equal(h_node_signal(&H, master, SIGCONT), 0);
    h_log("%lld of %d commands sent before the master ran again", (long long)(sent - sent0),
          4 * RT_N);

    int seen[4 * RT_N] = {0};
    for (int n = 0; n < 4 * RT_N; n++) {
        Slotgate__V1__ServerMessage *m = rt_read(&rc);
        assert_non_null(m);
        assert_int_equal(m->msg_case, SLOTGATE__V1__SERVER_MESSAGE__MSG_RESPONSE);
        const Slotgate__V1__Response *r = m->response;
        int j = (int)(r->id - 5000);
        assert_true(j >= 0 && j < 4 * RT_N);
        assert_int_equal(seen[j]++, 0);
        int i = j / 4;
        switch (j % 4) {
        case 0: /* SET */
            assert_int_equal(r->code, SLOTGATE__V1__CODE__CODE_OK);
            break;
        case 1: /* GET of a set key, before its DELETE */
            assert_int_equal(r->code, SLOTGATE__V1__CODE__CODE_OK);
            snprintf(v, sizeof(v), "rt-old-%d", i);
            assert_int_equal(r->value.len, strlen(v));
            assert_memory_equal(r->value.data, v, strlen(v));
            break;
        case 2: /* DELETE */
            assert_int_equal(r->code, SLOTGATE__V1__CODE__CODE_OK);
            assert_int_equal(r->count, 1);
            break;
        default: /* GET of a missing key */
            assert_int_equal(r->code, SLOTGATE__V1__CODE__CODE_NOT_FOUND);
        }
        slotgate__v1__server_message__free_unpacked(m, NULL);
    }
    rt_close(&rc);
    for (int i = 0; i < RT_N; i++) { /* the SETs landed */
        void *got = NULL;
        size_t glen = 0;
        snprintf(k, sizeof(k), "{rt}:n%d", i);
        snprintf(v, sizeof(v), "rt-new-%d", i);
        assert_int_equal(hc_get(C, "", k, strlen(k), &got, &glen), SG_OK);
        assert_int_equal(glen, strlen(v));
        assert_memory_equal(got, v, glen);
        free(got);
    }
}

/*
 * A second proxy, gathering for up to 1 s. One master is stopped while
 * the batch is read, so its keys' answers come after the others' have
 * reached the proxy (its backend_replies count them); the client's
 * connection must still have been written to once, after the last.
 */
static void test_gather_one_write(void **state)
{
    int masters[H_MAX_NODES];
    assert_int_equal(h_masters(&H, masters, H_MAX_NODES), 3);
    int slow = masters[0];
    int idx[GBATCH], on_slow = 0, owners[3] = {0, 0, 0};
    for (int j = 0; j < GBATCH; j++) {
        char k[64];
        idx[j] = j;
        fo_key(j, k, sizeof(k));
        int owner = h_key_owner(&H, k, strlen(k));
        for (int m = 0; m < 3; m++)
            owners[m] += owner == masters[m];
        on_slow += owner == slow;
    }
    assert_true(owners[0] > 0 && owners[1] > 0 && owners[2] > 0);

    const char *limits0 = H.opts.limits_yaml;
    H.opts.limits_yaml = "  write_gather_us: 1000000";
    int p = h_proxy_start(&H, 0);
    H.opts.limits_yaml = limits0;
    assert_true(p > 0);
    struct sg_client *c = h_connect(&H, p, H_CERT_NONE);
    assert_non_null(c);
    struct rt_conn rc;
    assert_int_equal(rt_connect(&rc, H.proxies[p].port, H.ca_file), 0);
    assert_int_equal(rt_handshake(&rc), 0);
    int lport = local_port(rc.fd);
    long long w0 = client_field(H.proxies[p].admin_port, lport, " writes=");
    int64_t replies0 = h_stat(c, "backend_replies");
    assert_true(w0 > 0 && replies0 >= 0);

    assert_int_equal(h_node_signal(&H, slow, SIGSTOP), 0);
    send_batch(&rc, idx, GBATCH, 1000, 0);
    /* every answer but the stopped master's has reached the proxy */
    int64_t replies = replies0, until = h_now_ms() + 10000;
    while ((replies = h_stat(c, "backend_replies")) < replies0 + (GBATCH - on_slow) &&
           h_now_ms() < until)
        h_poll_pause();
    assert_int_equal(h_node_signal(&H, slow, SIGCONT), 0);
    if (replies < replies0 + (GBATCH - on_slow))
        fail_msg("only %lld of %d replies from the running masters within 10 s",
                 (long long)(replies - replies0), GBATCH - on_slow);

    int seen[GBATCH] = {0};
    for (int n = 0; n < GBATCH; n++) {
        int code;
        int j = recv_batch_answer(&rc, idx, GBATCH, 1000, &code);
        assert_int_equal(code, SLOTGATE__V1__CODE__CODE_OK);
        assert_int_equal(seen[j]++, 0);
    }
    long long w1 = client_field(H.proxies[p].admin_port, lport, " writes=");
    h_log("%d GETs over 3 masters (%d on the one stopped a while): %lld write(s)", GBATCH, on_slow,
          w1 - w0);
    assert_int_equal(w1 - w0, 1);
    rt_close(&rc);
    sg_client_free(c);
    assert_int_equal(h_proxy_stop(&H, p), 0);
}

/*
 * The default bound (200 us) on proxy 0: with a master stopped, a batch of
 * one read with a key on it gets the 30 other keys' answers while that key
 * is still in flight (/clients: inflight=1), then its TIMEOUT at its
 * deadline; the bound is counted. Without the bound the 30 would wait for
 * the TIMEOUT and leave with it.
 */
static void test_gather_bounded(void **state)
{
    int masters[H_MAX_NODES];
    assert_int_equal(h_masters(&H, masters, H_MAX_NODES), 3);
    int victim = masters[1];
    int on[NKEYS], off[NKEYS];
    assert_true(keys_on(victim, 1, on, NKEYS) > 0);
    assert_true(keys_on(victim, 0, off, NKEYS) >= 30);
    int idx[31];
    idx[0] = on[0];
    memcpy(idx + 1, off, 30 * sizeof(int));
    int64_t bounds0 = h_stat(C, "write_gather_timeouts");
    assert_true(bounds0 >= 0);
    struct rt_conn rc;
    assert_int_equal(rt_connect(&rc, H.proxies[0].port, H.ca_file), 0);
    assert_int_equal(rt_handshake(&rc), 0);
    int lport = local_port(rc.fd);

    assert_int_equal(h_node_signal(&H, victim, SIGSTOP), 0);
    send_batch(&rc, idx, 31, 1, 800);
    int code;
    for (int n = 0; n < 30; n++) {
        int j = recv_batch_answer(&rc, idx, 31, 1, &code);
        if (j == 0 || code != SLOTGATE__V1__CODE__CODE_OK) {
            h_node_signal(&H, victim, SIGCONT);
            fail_msg("answer %d: key %d %s while master %d is stopped", n, j, sg_code_name(code),
                     victim);
        }
    }
    long long inflight = client_field(H.proxies[0].admin_port, lport, " inflight=");
    int j = recv_batch_answer(&rc, idx, 31, 1, &code);
    assert_int_equal(h_node_signal(&H, victim, SIGCONT), 0);
    int64_t bounds = h_stat(C, "write_gather_timeouts");
    h_log("30 answers with the stopped master's key in flight (%lld), then %s; "
          "write_gather_timeouts +%lld",
          inflight, sg_code_name(code), (long long)(bounds - bounds0));
    assert_int_equal(inflight, 1);
    assert_int_equal(j, 0);
    assert_int_equal(code, SLOTGATE__V1__CODE__CODE_TIMEOUT);
    assert_true(bounds > bounds0);
    rt_close(&rc);
    assert_int_equal(h_wait_cluster(&H, 30000), 0);
    check_all_keys(C);
}

/* ---- killed master under pipelined load ------------------------------------- */

#define NTHREADS 4
#define WINDOW 256
#define MAXREQ (1 << 20)

struct loader {
    pthread_t th;
    int n; /* thread number */
    struct sg_client *c;
    volatile int stop;
    uint64_t sent, answered;
    uint8_t *seen; /* answers per id (id = index + 1) */
    long dup, unknown, bad_code, wrong_value, io_error;
    long codes[4]; /* OK, TIMEOUT, SHARD_UNAVAILABLE, CLUSTER_DOWN */
    char first_problem[256];
};

static void problem(struct loader *L, const char *fmt, ...)
{
    if (L->first_problem[0])
        return;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(L->first_problem, sizeof(L->first_problem), fmt, ap);
    va_end(ap);
}

static void *loader_main(void *arg)
{
    struct loader *L = arg;
    char k[64], v[64];
    for (;;) {
        int stopping = __atomic_load_n(&L->stop, __ATOMIC_ACQUIRE);
        while (!stopping && L->sent - L->answered < WINDOW && L->sent < MAXREQ) {
            uint64_t id = ++L->sent;
            int ki = (int)((id * 7 + (uint64_t)L->n * 13) % NKEYS);
            fo_key(ki, k, sizeof(k));
            struct sg_request *r = sg_request_new(SG_OP_GET);
            sg_request_add_key(r, k, strlen(k));
            int rc = hc_send(L->c, r, id);
            sg_request_free(r);
            if (rc != 0) {
                L->io_error++;
                problem(L, "send id %llu: %s", (unsigned long long)id, L->c->errstr);
                return NULL;
            }
        }
        if (L->answered == L->sent && (stopping || L->sent >= MAXREQ))
            return NULL;
        struct sg_response *resp = NULL;
        if (hc_recv(L->c, &resp) != 0) {
            L->io_error++;
            problem(L, "recv with %llu outstanding: %s",
                    (unsigned long long)(L->sent - L->answered), L->c->errstr);
            return NULL;
        }
        __atomic_fetch_add(&L->answered, 1, __ATOMIC_RELAXED);
        uint64_t id = resp->id;
        if (id == 0 || id > L->sent) {
            L->unknown++;
            problem(L, "answer for id %llu never sent (code %s)", (unsigned long long)id,
                    sg_code_name(resp->code));
        } else if (L->seen[id - 1]++) {
            L->dup++;
            problem(L, "id %llu answered twice", (unsigned long long)id);
        }
        switch (resp->code) {
        case SG_OK: {
            L->codes[0]++;
            int ki = (int)((id * 7 + (uint64_t)L->n * 13) % NKEYS);
            fo_val(ki, v, sizeof(v));
            if (resp->value_len != strlen(v) || memcmp(resp->value, v, resp->value_len) != 0) {
                L->wrong_value++;
                problem(L, "id %llu (fo:%d) returned \"%.*s\"", (unsigned long long)id, ki,
                        (int)resp->value_len, (const char *)resp->value);
            }
            break;
        }
        case SG_TIMEOUT:
            L->codes[1]++;
            break;
        case SG_SHARD_UNAVAILABLE:
            L->codes[2]++;
            break;
        case SG_CLUSTER_DOWN:
            L->codes[3]++;
            break;
        default:
            L->bad_code++;
            problem(L, "id %llu answered %s (%s)", (unsigned long long)id, sg_code_name(resp->code),
                    resp->message);
        }
        sg_response_free(resp);
    }
}

static uint64_t total_answered(struct loader *Ls)
{
    uint64_t t = 0;
    for (int i = 0; i < NTHREADS; i++)
        t += __atomic_load_n(&Ls[i].answered, __ATOMIC_RELAXED);
    return t;
}

/* Wait (bounded) until the loaders have answered `more` further requests. */
static int wait_progress(struct loader *Ls, uint64_t more, int timeout_ms)
{
    uint64_t target = total_answered(Ls) + more;
    int64_t deadline = h_now_ms() + timeout_ms;
    while (total_answered(Ls) < target) {
        if (h_now_ms() > deadline)
            return -1;
        h_poll_pause();
    }
    return 0;
}

static void test_kill_master_inflight(void **state)
{
    int masters[H_MAX_NODES];
    assert_int_equal(h_masters(&H, masters, H_MAX_NODES), 3);
    char k[64];
    fo_key(1, k, sizeof(k));
    int victim = h_key_owner(&H, k, strlen(k));
    assert_true(victim > 0);
    int reps[H_MAX_NODES];
    assert_true(h_replicas_of(victim, reps, H_MAX_NODES) >= 1);
    int on[NKEYS];
    int n_on = keys_on(victim, 1, on, NKEYS);
    assert_true(n_on > 0);
    assert_int_equal(h_sync_replicas(&H), 0);

    struct loader Ls[NTHREADS];
    memset(Ls, 0, sizeof(Ls));
    for (int i = 0; i < NTHREADS; i++) {
        Ls[i].n = i;
        Ls[i].c = h_connect(&H, 0, H_CERT_NONE);
        assert_non_null(Ls[i].c);
        Ls[i].seen = calloc(MAXREQ, 1);
        assert_non_null(Ls[i].seen);
    }
    for (int i = 0; i < NTHREADS; i++)
        assert_int_equal(pthread_create(&Ls[i].th, NULL, loader_main, &Ls[i]), 0);

    int ok = wait_progress(Ls, 5000, 20000) == 0;
    if (ok) {
        h_log("load running (%llu answered); SIGKILL master %d (replica %d)",
              (unsigned long long)total_answered(Ls), victim, reps[0]);
        assert_int_equal(h_node_signal(&H, victim, SIGKILL), 0);
    }
    int64_t t_kill = h_now_ms();
    int failover_ok = ok && h_wait_failover(&H, victim, 30000) == 0;
    int64_t t_failover = h_now_ms();
    /* the proxy learns the new master: that shard's keys answer OK again */
    int recovered = failover_ok;
    for (int j = 0; j < n_on && recovered; j++)
        recovered = wait_key_ok(C, on[j], 20000) == 0;
    int64_t t_recovered = h_now_ms();
    /* and the loaders keep going on the new topology for a while */
    int progressed = recovered && wait_progress(Ls, 5000, 20000) == 0;

    for (int i = 0; i < NTHREADS; i++)
        __atomic_store_n(&Ls[i].stop, 1, __ATOMIC_RELEASE);
    for (int i = 0; i < NTHREADS; i++)
        pthread_join(Ls[i].th, NULL);

    uint64_t sent = 0, answered = 0;
    long codes[4] = {0}, bad = 0, dup = 0, unknown = 0, wrong = 0, io = 0, missing = 0;
    const char *first = NULL;
    for (int i = 0; i < NTHREADS; i++) {
        struct loader *L = &Ls[i];
        sent += L->sent;
        answered += L->answered;
        for (int c = 0; c < 4; c++)
            codes[c] += L->codes[c];
        bad += L->bad_code;
        dup += L->dup;
        unknown += L->unknown;
        wrong += L->wrong_value;
        io += L->io_error;
        for (uint64_t id = 1; id <= L->sent; id++)
            missing += L->seen[id - 1] == 0;
        if (!first && L->first_problem[0])
            first = L->first_problem;
        free(L->seen);
        sg_client_free(L->c);
    }
    h_log("sent %llu answered %llu: OK %ld TIMEOUT %ld SHARD_UNAVAILABLE %ld CLUSTER_DOWN %ld; "
          "other %ld, duplicates %ld, unknown ids %ld, wrong values %ld, unanswered %ld, io %ld",
          (unsigned long long)sent, (unsigned long long)answered, codes[0], codes[1], codes[2],
          codes[3], bad, dup, unknown, wrong, missing, io);
    if (ok)
        h_log("failover visible after %lld ms, shard recovered in slotgate after %lld ms more",
              (long long)(t_failover - t_kill), (long long)(t_recovered - t_failover));
    h_log("STATS: timeouts %lld link_resets %lld topology_refreshes %lld moved %lld",
          (long long)h_stat(C, "timeouts"), (long long)h_stat(C, "link_resets"),
          (long long)h_stat(C, "topology_refreshes"), (long long)h_stat(C, "moved"));

    if (!ok)
        fail_msg("load did not get going: %s", first ? first : "no progress");
    if (first)
        fail_msg("first problem: %s", first);
    assert_int_equal(io, 0);
    assert_int_equal(dup, 0);
    assert_int_equal(unknown, 0);
    assert_int_equal(missing, 0);
    assert_int_equal(bad, 0);
    assert_int_equal(wrong, 0);
    assert_true(answered == sent);
    if (!failover_ok)
        fail_msg("the replica of %d was not promoted in time", victim);
    if (!recovered)
        fail_msg("keys of the failed shard did not recover through slotgate");
    if (!progressed)
        fail_msg("the load made no progress after the failover");
    assert_true(h_proxy_alive(&H, 0));
    check_all_keys(C);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_replies_read_together), cmocka_unit_test(test_gather_one_write),
        cmocka_unit_test(test_gather_bounded),        cmocka_unit_test(test_hung_master),
        cmocka_unit_test(test_kill_master_inflight),
    };
    int failed = cmocka_run_group_tests_name("itest_failover", tests, group_setup, group_teardown);
    failed += h_stop_failed;
    if (failed)
        h_env_dump_logs(&H, 80);
    return failed ? 1 : 0;
}
