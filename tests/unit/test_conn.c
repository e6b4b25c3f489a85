/*
 * test_conn - conn.c over real TLS on a socketpair, the proxy's server
 * context (tls.c) on one end and a plain OpenSSL client on the other, all
 * in one thread: a large response reaches a slow reader intact through
 * partial writes; the records of one flush leave in one writev; a conn
 * that carried 200 KiB each way and went idle holds no more heap than one
 * that carried a few bytes (no TLS record buffers, no ciphertext kept); a
 * KeyUpdate from the peer is answered and close_notify reads as EOF; the
 * connect side completes its handshake and talks. A TLS 1.3 server
 * connection is carried on by slotgate's record layer (tlsrec.c) once the
 * handshake is done, with each TLS 1.3 cipher suite, with and without
 * session tickets; a TLS 1.2 one keeps OpenSSL; a record that does not
 * authenticate is an error. OpenSSL's and libevent's
 * allocations are counted (CRYPTO_set_mem_functions,
 * event_set_mem_functions) so the idle test can see a record buffer or a
 * buffer chain that outlives the traffic.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>
#include <fcntl.h>
#include <poll.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <event2/buffer.h>
#include <event2/event.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>

#include "config.h"
#include "conn.h"
#include "tls.h"

#define BOUND_MS 20000
/* Smallest block counted as a buffer: below a TLS record (16 KiB + header)
 * and below the evbuffer chain that holds one. */
#define BIG_BLOCK 8192

/* ---- allocation counting -------------------------------------------------
 * Every block carries its size in a 16-byte header; blocks of BIG_BLOCK
 * bytes or more are counted while live. One thread: no atomics needed. */

static long big_live;

static void *count_malloc(size_t n)
{
    size_t *p = malloc(n + 16);
    if (p == NULL)
        return NULL;
    p[0] = n;
    if (n >= BIG_BLOCK)
        big_live++;
    return (char *)p + 16;
}

static void count_free(void *q)
{
    if (q == NULL)
        return;
    size_t *p = (size_t *)((char *)q - 16);
    if (p[0] >= BIG_BLOCK)
        big_live--;
    free(p);
}

static void *count_realloc(void *q, size_t n)
{
    if (q == NULL)
        return count_malloc(n);
    size_t *p = (size_t *)((char *)q - 16);
    size_t old = p[0];
    size_t *r = realloc(p, n + 16);
    if (r == NULL)
        return NULL;
    big_live += (n >= BIG_BLOCK) - (old >= BIG_BLOCK);
    r[0] = n;
    return (char *)r + 16;
}

static void *crypto_malloc(size_t n, const char *file, int line)
{
    (void)file;
    (void)line;
    return count_malloc(n);
}
static void *crypto_realloc(void *q, size_t n, const char *file, int line)
{
    (void)file;
    (void)line;
    return count_realloc(q, n);
}
static void crypto_free(void *q, const char *file, int line)
{
    (void)file;
    (void)line;
    count_free(q);
}

struct fx {
    struct event_base *base;
    SSL_CTX *sctx, *cctx;
    SSL_CTX *lctx;        /* the conn's connect side: tls.c's context for Redis links */
    struct sg_conn *conn; /* the proxy's end */
    SSL *peer;            /* the other end, driven by the test */
    int peer_fd;
    int peer_handshaken;
    size_t peer_read_max;     /* bytes the peer takes per step (slow reader) */
    struct evbuffer *got;     /* what the conn's owner read */
    struct evbuffer *peer_in; /* what the peer read */
    struct evbuffer *peer_out;
    int drained, eof, error, connected;
    char dir[64];
};

static struct fx F;

static void on_read(void *arg)
{
    struct fx *f = arg;
    evbuffer_add_buffer(f->got, sg_conn_input(f->conn));
}

static void on_drained(void *arg)
{
    ((struct fx *)arg)->drained++;
}

static void on_event(void *arg, int what)
{
    struct fx *f = arg;
    if (what == SG_CONN_EOF)
        f->eof = 1;
    else if (what == SG_CONN_CONNECTED)
        f->connected = 1;
    else
        f->error = 1;
}

static const struct sg_conn_cbs cbs = {on_read, on_drained, on_event};

/* A P-256 key and a self-signed certificate for it, as PEM files in dir. */
static void make_cert(const char *dir, char *cert, char *key)
{
    EVP_PKEY *pk = EVP_EC_gen("P-256");
    assert_non_null(pk);
    X509 *x = X509_new();
    ASN1_INTEGER_set(X509_get_serialNumber(x), 1);
    X509_gmtime_adj(X509_getm_notBefore(x), -60);
    X509_gmtime_adj(X509_getm_notAfter(x), 3600);
    X509_set_pubkey(x, pk);
    X509_NAME *name = X509_get_subject_name(x);
    X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_ASC, (const unsigned char *)"localhost", -1, -1,
                               0);
    X509_set_issuer_name(x, name);
    assert_true(X509_sign(x, pk, EVP_sha256()) > 0);
    snprintf(cert, 512, "%s/cert.pem", dir);
    snprintf(key, 512, "%s/key.pem", dir);
    FILE *fc = fopen(cert, "w"), *fk = fopen(key, "w");
    assert_non_null(fc);
    assert_non_null(fk);
    assert_int_equal(PEM_write_X509(fc, x), 1);
    assert_int_equal(PEM_write_PrivateKey(fk, pk, NULL, NULL, 0, NULL, NULL), 1);
    fclose(fc);
    fclose(fk);
    X509_free(x);
    EVP_PKEY_free(pk);
}

static int setup(void **state)
{
    (void)state;
    memset(&F, 0, sizeof(F));
    snprintf(F.dir, sizeof(F.dir), "/tmp/test_conn.XXXXXX");
    assert_non_null(mkdtemp(F.dir));
    struct sg_config cfg;
    sg_config_defaults(&cfg);
    make_cert(F.dir, cfg.tls_cert, cfg.tls_key);
    cfg.tls_client_ca[0] = '\0';
    char err[256];
    F.sctx = sg_tls_server_ctx(&cfg, err, sizeof(err));
    assert_non_null(F.sctx);
    cfg.redis_tls = 1;
    snprintf(cfg.redis_tls_ca, sizeof(cfg.redis_tls_ca), "%s", cfg.tls_cert);
    F.lctx = sg_tls_redis_ctx(&cfg, err, sizeof(err));
    assert_non_null(F.lctx);
    F.cctx = SSL_CTX_new(TLS_client_method());
    assert_non_null(F.cctx);
    SSL_CTX_set_verify(F.cctx, SSL_VERIFY_NONE, NULL);
    SSL_CTX_set_mode(F.cctx, SSL_MODE_RELEASE_BUFFERS);
    F.base = event_base_new();
    F.got = evbuffer_new();
    F.peer_in = evbuffer_new();
    F.peer_out = evbuffer_new();
    F.peer_read_max = 1 << 20;
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    sg_conn_free(F.conn);
    if (F.peer != NULL)
        SSL_free(F.peer);
    if (F.peer_fd > 0)
        close(F.peer_fd);
    F.conn = NULL;
    F.peer = NULL;
    evbuffer_free(F.got);
    evbuffer_free(F.peer_in);
    evbuffer_free(F.peer_out);
    event_base_free(F.base);
    SSL_CTX_free(F.sctx);
    SSL_CTX_free(F.cctx);
    SSL_CTX_free(F.lctx);
    char p[600];
    snprintf(p, sizeof(p), "%s/cert.pem", F.dir);
    unlink(p);
    snprintf(p, sizeof(p), "%s/key.pem", F.dir);
    unlink(p);
    rmdir(F.dir);
    return 0;
}

/*
 * A socketpair; the conn on one end (server: accept side with the proxy's
 * context; else connect side with the peer as the server), the peer's SSL
 * on the other. sndbuf/rcvbuf (0: default) size the conn's send buffer and
 * the peer's receive buffer.
 */
static void open_pair(int server, int sndbuf, int rcvbuf)
{
    int sv[2];
    assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM, 0, sv), 0);
    for (int i = 0; i < 2; i++)
        fcntl(sv[i], F_SETFL, fcntl(sv[i], F_GETFL) | O_NONBLOCK);
    if (sndbuf > 0)
        setsockopt(sv[0], SOL_SOCKET, SO_SNDBUF, &sndbuf, sizeof(sndbuf));
    if (rcvbuf > 0)
        setsockopt(sv[1], SOL_SOCKET, SO_RCVBUF, &rcvbuf, sizeof(rcvbuf));
    SSL *mine = SSL_new(server ? F.sctx : F.lctx);
    assert_non_null(mine);
    F.conn = sg_conn_new(F.base, sv[0], mine, server, !server, 0, &cbs, &F);
    assert_non_null(F.conn);
    F.peer = SSL_new(server ? F.cctx : F.sctx);
    assert_non_null(F.peer);
    SSL_set_fd(F.peer, sv[1]);
    if (server)
        SSL_set_connect_state(F.peer);
    else
        SSL_set_accept_state(F.peer);
    F.peer_fd = sv[1];
}

/* One step of the peer: handshake, or read (at most peer_read_max) and write. */
static void peer_step(void)
{
    if (!F.peer_handshaken) {
        int rc = SSL_do_handshake(F.peer);
        if (rc == 1) {
            F.peer_handshaken = 1;
        } else {
            int e = SSL_get_error(F.peer, rc);
            assert_true(e == SSL_ERROR_WANT_READ || e == SSL_ERROR_WANT_WRITE);
            return;
        }
    }
    size_t budget = F.peer_read_max;
    while (budget > 0) {
        char buf[16384];
        int n = SSL_read(F.peer, buf, (int)(budget < sizeof(buf) ? budget : sizeof(buf)));
        if (n <= 0) {
            int e = SSL_get_error(F.peer, n);
            assert_true(e == SSL_ERROR_WANT_READ || e == SSL_ERROR_WANT_WRITE ||
                        e == SSL_ERROR_ZERO_RETURN);
            break;
        }
        evbuffer_add(F.peer_in, buf, (size_t)n);
        budget -= (size_t)n;
    }
    while (evbuffer_get_length(F.peer_out) > 0) {
        size_t len = evbuffer_get_length(F.peer_out);
        int chunk = (int)(len < 16384 ? len : 16384);
        int n = SSL_write(F.peer, evbuffer_pullup(F.peer_out, chunk), chunk);
        if (n <= 0) {
            int e = SSL_get_error(F.peer, n);
            assert_true(e == SSL_ERROR_WANT_READ || e == SSL_ERROR_WANT_WRITE);
            break;
        }
        evbuffer_drain(F.peer_out, (size_t)n);
    }
}

static uint64_t now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

/* Run both ends until cond() holds; fails the test past the bound. */
static void pump(int (*cond)(void), const char *what)
{
    uint64_t end = now_ms() + BOUND_MS;
    for (;;) {
        event_base_loop(F.base, EVLOOP_NONBLOCK | EVLOOP_ONCE);
        peer_step();
        event_base_loop(F.base, EVLOOP_NONBLOCK | EVLOOP_ONCE);
        if (cond())
            return;
        if (now_ms() > end)
            fail_msg("not reached within %d ms: %s", BOUND_MS, what);
        struct pollfd p = {F.peer_fd, POLLIN, 0};
        poll(&p, 1, 5); /* wakes on the peer's input; bounded either way */
    }
}

static int c_handshaken(void)
{
    return F.peer_handshaken && evbuffer_get_length(F.got) == 5;
}

/* Handshake, and one small message the conn's owner reads. */
static void handshake_and_hello(void)
{
    evbuffer_add(F.peer_out, "hello", 5);
    pump(c_handshaken, "handshake and a 5-byte message");
    evbuffer_drain(F.got, 5);
}

static size_t want_peer;
static int c_peer_has_all(void)
{
    return evbuffer_get_length(F.peer_in) >= want_peer;
}
static size_t want_got;
static int c_got_all(void)
{
    return evbuffer_get_length(F.got) >= want_got;
}
static int c_drained_and_peer_has_all(void)
{
    return c_peer_has_all() && F.drained > 0 && sg_conn_held_bytes(F.conn) == 0;
}

static unsigned char pattern_byte(size_t i)
{
    return (unsigned char)((i * 2654435761u) >> 13);
}

/* Queue len pattern bytes (from offset off) on the conn, in pieces. */
static void queue_pattern(size_t off, size_t len)
{
    struct evbuffer *out = sg_conn_output(F.conn);
    unsigned char piece[7919];
    while (len > 0) {
        size_t k = len < sizeof(piece) ? len : sizeof(piece);
        for (size_t i = 0; i < k; i++)
            piece[i] = pattern_byte(off + i);
        evbuffer_add(out, piece, k);
        off += k;
        len -= k;
    }
    sg_conn_flush_soon(F.conn);
}

static void check_pattern(struct evbuffer *b, size_t len)
{
    assert_int_equal(evbuffer_get_length(b), len);
    const unsigned char *p = evbuffer_pullup(b, (ev_ssize_t)len);
    for (size_t i = 0; i < len; i++)
        if (p[i] != pattern_byte(i))
            fail_msg("byte %zu differs", i);
}

static void test_slow_reader_gets_every_byte(void **state)
{
    (void)state;
    open_pair(1, 4096, 4096);
    handshake_and_hello();
    F.peer_read_max = 1000;
    struct sg_conn_io io0, io1;
    sg_conn_get_io(F.conn, &io0);
    want_peer = 1 << 20;
    queue_pattern(0, want_peer);
    F.drained = 0;
    pump(c_drained_and_peer_has_all, "1 MiB through a 4 KiB socket buffer, 1000 bytes a step");
    check_pattern(F.peer_in, want_peer);
    assert_int_equal(sg_conn_own_records(F.conn), 1);
    sg_conn_get_io(F.conn, &io1);
    /* The socket was full many times: the partial-write path was taken. */
    assert_true(io1.writes - io0.writes > 8);
    assert_int_equal(evbuffer_get_length(sg_conn_output(F.conn)), 0);
    assert_int_equal(F.error, 0);
}

static void test_one_writev_per_flush(void **state)
{
    (void)state;
    open_pair(1, 1 << 20, 1 << 20);
    handshake_and_hello();
    struct sg_conn_io io0, io1;
    sg_conn_get_io(F.conn, &io0);
    /* A 64 KiB response and 50 small ones, queued in one turn: five full
     * records and more, one flush. */
    want_peer = 65536 + 50 * 100;
    F.drained = 0;
    queue_pattern(0, want_peer);
    event_base_loop(F.base, EVLOOP_NONBLOCK | EVLOOP_ONCE);
    sg_conn_get_io(F.conn, &io1);
    assert_int_equal(io1.writes - io0.writes, 1);
    assert_int_equal(sg_conn_held_bytes(F.conn), 0);
    pump(c_drained_and_peer_has_all, "69 KiB to the peer");
    check_pattern(F.peer_in, want_peer);
    sg_conn_get_io(F.conn, &io1);
    assert_int_equal(io1.writes - io0.writes, 1);
}

/* Close both ends (the fixture's teardown also accepts a closed pair). */
static void close_pair(void)
{
    sg_conn_free(F.conn);
    F.conn = NULL;
    SSL_free(F.peer);
    F.peer = NULL;
    close(F.peer_fd);
    F.peer_fd = -1;
    F.peer_handshaken = 0;
}

/* size bytes each way, intact, on a pair that is talking already. */
static void both_ways_after_handshake(size_t size)
{
    unsigned char *b = malloc(size);
    assert_non_null(b);
    for (size_t i = 0; i < size; i++)
        b[i] = pattern_byte(i);
    evbuffer_add(F.peer_out, b, size);
    free(b);
    want_got = size;
    pump(c_got_all, "the peer's bytes in");
    check_pattern(F.got, size);
    evbuffer_drain(F.got, size);
    want_peer = size;
    F.drained = 0;
    queue_pattern(0, size);
    pump(c_drained_and_peer_has_all, "the conn's bytes out");
    check_pattern(F.peer_in, size);
    evbuffer_drain(F.peer_in, size);
    assert_int_equal(F.error, 0);
}

/* The same on the open pair, handshake included. */
static void both_ways(size_t size)
{
    handshake_and_hello();
    both_ways_after_handshake(size);
}

static void test_idle_conn_keeps_no_buffers(void **state)
{
    (void)state;
    /* A first connection, so that whatever OpenSSL and libevent set up once
     * per process or thread exists before counting starts. */
    open_pair(1, 0, 0);
    handshake_and_hello();
    close_pair();
    long base = big_live;
    open_pair(1, 0, 0);
    both_ways(200 * 1024);
    /* Idle now: nothing owed either way, and no block the size of a TLS
     * record buffer or of a chain that carried one is still allocated by
     * OpenSSL or libevent, in the conn or in the peer (whose context also
     * releases its buffers). */
    assert_int_equal(sg_conn_held_bytes(F.conn), 0);
    if (big_live != base)
        fail_msg("%ld blocks of %d bytes or more still allocated while idle", big_live - base,
                 BIG_BLOCK);
}

static int c_pong(void)
{
    return evbuffer_get_length(F.peer_in) >= 4;
}
static int c_eof(void)
{
    return F.eof || F.error;
}

static void test_key_update_and_close_notify(void **state)
{
    (void)state;
    open_pair(1, 0, 0);
    handshake_and_hello();
    assert_int_equal(SSL_version(F.peer), TLS1_3_VERSION);
    assert_int_equal(sg_conn_own_records(F.conn), 1);
    /* The peer updates its keys and asks for ours: the conn answers while
     * reading, and what it sends next is under its new keys. */
    assert_int_equal(SSL_key_update(F.peer, SSL_KEY_UPDATE_REQUESTED), 1);
    evbuffer_add(F.peer_out, "ping", 4);
    want_got = 4;
    pump(c_got_all, "ping after a KeyUpdate");
    assert_memory_equal(evbuffer_pullup(F.got, 4), "ping", 4);
    evbuffer_add(sg_conn_output(F.conn), "pong", 4);
    sg_conn_flush_soon(F.conn);
    pump(c_pong, "pong after the conn's KeyUpdate");
    assert_memory_equal(evbuffer_pullup(F.peer_in, 4), "pong", 4);
    /* close_notify, then the peer's FIN: EOF, not an error. */
    assert_true(SSL_shutdown(F.peer) >= 0);
    shutdown(F.peer_fd, SHUT_WR);
    pump(c_eof, "EOF after close_notify");
    assert_int_equal(F.eof, 1);
    assert_int_equal(F.error, 0);
}

static void test_every_tls13_suite_is_taken_over(void **state)
{
    (void)state;
    static const char *suites[] = {"TLS_AES_128_GCM_SHA256", "TLS_AES_256_GCM_SHA384",
                                   "TLS_CHACHA20_POLY1305_SHA256"};
    for (int tickets = 0; tickets <= 2; tickets += 2) {
        /* With tickets the server seals them with its application key in
         * the handshake's last step: the record layer must count them. */
        assert_int_equal(SSL_CTX_set_num_tickets(F.sctx, (size_t)tickets), 1);
        for (size_t i = 0; i < sizeof(suites) / sizeof(suites[0]); i++) {
            open_pair(1, 0, 0);
            assert_int_equal(SSL_set_ciphersuites(F.peer, suites[i]), 1);
            both_ways(100 * 1024 + 7);
            assert_string_equal(SSL_CIPHER_get_name(SSL_get_current_cipher(F.peer)), suites[i]);
            assert_int_equal(sg_conn_own_records(F.conn), 1);
            close_pair();
        }
    }
}

/* The server's order picks the suite: AES-128-GCM for a client offering
 * OpenSSL's default list (AES-256-GCM first), ChaCha20-Poly1305 for one
 * that lists it first, and what a client offers alone. */
static void test_server_chooses_the_suite(void **state)
{
    (void)state;
    static const struct {
        const char *offer, *chosen;
    } cases[] = {
        {NULL, "TLS_AES_128_GCM_SHA256"},
        {"TLS_AES_256_GCM_SHA384:TLS_AES_128_GCM_SHA256", "TLS_AES_128_GCM_SHA256"},
        {"TLS_CHACHA20_POLY1305_SHA256:TLS_AES_256_GCM_SHA384:TLS_AES_128_GCM_SHA256",
         "TLS_CHACHA20_POLY1305_SHA256"},
        {"TLS_AES_256_GCM_SHA384", "TLS_AES_256_GCM_SHA384"},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        open_pair(1, 0, 0);
        if (cases[i].offer != NULL)
            assert_int_equal(SSL_set_ciphersuites(F.peer, cases[i].offer), 1);
        both_ways(1000);
        assert_string_equal(SSL_CIPHER_get_name(SSL_get_current_cipher(F.peer)), cases[i].chosen);
        close_pair();
    }
}

static void test_tls12_keeps_openssl(void **state)
{
    (void)state;
    open_pair(1, 0, 0);
    assert_int_equal(SSL_set_max_proto_version(F.peer, TLS1_2_VERSION), 1);
    both_ways(50 * 1024);
    assert_int_equal(SSL_version(F.peer), TLS1_2_VERSION);
    assert_int_equal(sg_conn_own_records(F.conn), 0);
}

static void test_forged_record_is_an_error(void **state)
{
    (void)state;
    open_pair(1, 0, 0);
    handshake_and_hello();
    assert_int_equal(sg_conn_own_records(F.conn), 1);
    /* A well-formed application_data record whose tag is wrong. */
    unsigned char rec[5 + 40] = {23, 3, 3, 0, 40};
    memset(rec + 5, 0xa5, 40);
    assert_int_equal(write(F.peer_fd, rec, sizeof(rec)), (ssize_t)sizeof(rec));
    pump(c_eof, "a forged record refused");
    assert_int_equal(F.error, 1);
    assert_int_equal(F.eof, 0);
    assert_int_equal(evbuffer_get_length(F.got), 0);
}

static int c_connected_and_got(void)
{
    return F.connected && evbuffer_get_length(F.got) >= 5;
}

static void test_connect_side(void **state)
{
    (void)state;
    open_pair(0, 0, 0);
    /* Queued before the handshake: sent once it is done. */
    evbuffer_add(sg_conn_output(F.conn), "PING\n", 5);
    sg_conn_flush_soon(F.conn);
    evbuffer_add(F.peer_out, "+PONG", 5);
    pump(c_connected_and_got, "connect side: handshake, then a reply");
    want_peer = 5;
    pump(c_peer_has_all, "connect side: the queued request");
    assert_memory_equal(evbuffer_pullup(F.peer_in, 5), "PING\n", 5);
    assert_memory_equal(evbuffer_pullup(F.got, 5), "+PONG", 5);
    /* TLS 1.3: the records are the conn's own from the handshake on, and
     * the peer's session tickets, which came first, were passed over. */
    assert_int_equal(SSL_version(F.peer), TLS1_3_VERSION);
    assert_int_equal(sg_conn_own_records(F.conn), 1);
    evbuffer_drain(F.got, 5);
    evbuffer_drain(F.peer_in, 5);
    both_ways_after_handshake(70 * 1024);
}

int main(void)
{
    /* Before any OpenSSL or libevent allocation. */
    if (CRYPTO_set_mem_functions(crypto_malloc, crypto_realloc, crypto_free) != 1)
        return 1;
    event_set_mem_functions(count_malloc, count_realloc, count_free);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_slow_reader_gets_every_byte, setup, teardown),
        cmocka_unit_test_setup_teardown(test_one_writev_per_flush, setup, teardown),
        cmocka_unit_test_setup_teardown(test_idle_conn_keeps_no_buffers, setup, teardown),
        cmocka_unit_test_setup_teardown(test_key_update_and_close_notify, setup, teardown),
        cmocka_unit_test_setup_teardown(test_connect_side, setup, teardown),
        cmocka_unit_test_setup_teardown(test_every_tls13_suite_is_taken_over, setup, teardown),
        cmocka_unit_test_setup_teardown(test_server_chooses_the_suite, setup, teardown),
        cmocka_unit_test_setup_teardown(test_tls12_keeps_openssl, setup, teardown),
        cmocka_unit_test_setup_teardown(test_forged_record_is_an_error, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
