/*
 * conn - socket I/O for sessions and shard links: reads on readiness into
 * the input evbuffer, and writes the output evbuffer at the end of the loop
 * turn in which it was filled (a zero-delay "flush" event queued behind the
 * turn's read callbacks), so the answers to every request read in a turn
 * leave in one write per connection.
 *
 * TLS ("gather" mode): the socket is read and written here, never by
 * OpenSSL. A flush seals up to SG_CONN_GATHER bytes of output into records
 * in raw_out and hands all of them to the kernel in one writev, instead of
 * one write() per 16 KiB record. On the read side one read() per readiness
 * fills a per-thread scratch window that is decrypted from without further
 * system calls; what is left (a partial record) is kept in raw_in.
 * Plaintext already sealed stays at the front of the output buffer until
 * its ciphertext is written, so the owner's view of what is still owed
 * (and its memory accounting) is the same as without TLS. OpenSSL does the
 * handshake through a BIO of our own over raw_in/raw_out, one record at a
 * time (no read-ahead); for TLS 1.3 the records after it are tlsrec.c's and
 * the SSL object is freed, for TLS 1.2 OpenSSL keeps sealing and opening
 * them through the same BIO.
 */
#include "conn.h"

#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <unistd.h>

#include <event2/buffer.h>
#include <openssl/bio.h>
#include <openssl/err.h>

#include "log.h"
#include "tlsrec.h"
#include "util.h"

#define SG_CONN_CHUNK 16384 /* plaintext per SSL_write: one full TLS record */
/* Bytes per read(). libevent adds its chain header to a reservation and
 * rounds up to a power of two: 64 KiB minus the header stays a 64 KiB heap
 * chunk instead of a 128 KiB one that the fixed mmap threshold (main.c)
 * would map and unmap on every read. */
#define SG_CONN_READ (65536 - 256)
/* Plaintext sealed into records ahead of one writev (gather mode). */
#define SG_CONN_GATHER (128 * 1024)
#define SG_CONN_SCRATCH (128 * 1024)
/* Largest reservation of sealed records in raw_out: one heap chunk of
 * 64 KiB with libevent's chain header, under the mmap threshold. */
#define SG_CONN_SEAL_RSV (65536 - 256)

struct sg_conn {
    int fd;
    SSL *ssl;              /* NULL once rec has taken over */
    struct sg_tlsrec *rec; /* TLS 1.3 records after the handshake (tlsrec.h) */
    long verify_result;    /* the peer's certificate check, kept from ssl */
    struct evbuffer *in, *out;
    /* Gather mode: ciphertext not yet written (created on first use) and
     * ciphertext read but not yet taken by OpenSSL (only when it stopped
     * early). win/win_len: this read's bytes in the thread's scratch. */
    struct evbuffer *raw_out, *raw_in;
    const unsigned char *win;
    size_t win_len;
    size_t sealed;         /* bytes at the front of out already in raw_out */
    uint64_t *cipher_held; /* counts raw_out's bytes, or NULL (sg_conn_count_cipher) */
    struct event_base *base;
    struct event *rev, *wev, *flush_ev, *timer; /* wev: made on first use */
    struct sg_conn_cbs cbs;
    void *arg;
    int idle_ms;
    unsigned reading : 1; /* read interest wanted by the owner */
    unsigned rev_added : 1;
    unsigned wev_added : 1;
    unsigned connecting : 1;  /* TCP connect in progress */
    unsigned handshaking : 1; /* TLS handshake in progress */
    unsigned write_wants_read : 1;
    unsigned raw_eof : 1; /* gather mode: the socket reached EOF */
    unsigned server : 1;  /* accept side */
    struct sg_conn_io io;
};

/* Per-thread read window, and the copy a record spanning chains is made in. */
static _Thread_local unsigned char conn_scratch[SG_CONN_SCRATCH];
static _Thread_local unsigned char conn_record[SG_CONN_CHUNK];

static void on_writable(evutil_socket_t fd, short what, void *arg);

/* TLS ("gather" mode): OpenSSL's through the handshake (and for TLS 1.2),
 * tlsrec's after a TLS 1.3 one. */
static int conn_is_tls(const struct sg_conn *c)
{
    return c->ssl != NULL || c->rec != NULL;
}

static void conn_update_read(struct sg_conn *c)
{
    int want = (c->reading || c->handshaking || c->write_wants_read) && !c->connecting;
    if (want && !c->rev_added) {
        struct timeval tv = {c->idle_ms / 1000, (c->idle_ms % 1000) * 1000};
        event_add(c->rev, c->idle_ms > 0 && !c->handshaking ? &tv : NULL);
        c->rev_added = 1;
    } else if (!want && c->rev_added) {
        event_del(c->rev);
        c->rev_added = 0;
    }
}

/*
 * Write interest. The write event is made the first time the socket is
 * full (or a connect is waiting): most connections never need it, and an
 * idle one holds no event for it. No memory for it: the project's OOM
 * policy (util.h), log and abort.
 */
static void conn_want_write(struct sg_conn *c, int on)
{
    if (on && c->wev == NULL) {
        c->wev = event_new(c->base, c->fd, EV_WRITE | EV_PERSIST, on_writable, c);
        if (c->wev == NULL) {
            sg_log_error("out of memory making a write event");
            abort();
        }
    }
    if (on && !c->wev_added) {
        event_add(c->wev, NULL);
        c->wev_added = 1;
    } else if (!on && c->wev_added) {
        event_del(c->wev);
        c->wev_added = 0;
    }
}

/* ---- the gather BIO ---------------------------------------------------------
 * A source/sink BIO over the conn: writes append to raw_out (never block),
 * reads take raw_in, then the current window, and ask for a retry when both
 * are empty (0 at EOF, as a socket BIO does). */

static BIO_METHOD *conn_bio_method;
static pthread_once_t conn_bio_once = PTHREAD_ONCE_INIT;

/* raw_out, made on first use; NULL out of memory. */
static struct evbuffer *conn_raw_out(struct sg_conn *c)
{
    if (c->raw_out == NULL)
        c->raw_out = evbuffer_new();
    return c->raw_out;
}

/* Count len bytes just added to raw_out. */
static void conn_raw_added(struct sg_conn *c, size_t len)
{
    if (c->cipher_held != NULL)
        *c->cipher_held += (uint64_t)len;
}

/* Commit the first used bytes of a reservation in raw_out, and count them. */
static void conn_raw_commit(struct sg_conn *c, struct evbuffer_iovec *v, size_t used)
{
    v->iov_len = used;
    evbuffer_commit_space(c->raw_out, v, 1);
    conn_raw_added(c, used);
}

static int conn_bio_write(BIO *b, const char *data, int len)
{
    struct sg_conn *c = BIO_get_data(b);
    BIO_clear_retry_flags(b);
    if (len <= 0)
        return 0;
    if (conn_raw_out(c) == NULL || evbuffer_add(c->raw_out, data, (size_t)len) != 0)
        return -1;
    conn_raw_added(c, (size_t)len);
    return len;
}

static int conn_bio_read(BIO *b, char *buf, int len)
{
    struct sg_conn *c = BIO_get_data(b);
    BIO_clear_retry_flags(b);
    if (len <= 0)
        return 0;
    size_t want = (size_t)len, got = 0;
    if (c->raw_in != NULL && evbuffer_get_length(c->raw_in) > 0) {
        int n = evbuffer_remove(c->raw_in, buf, want);
        if (n > 0)
            got = (size_t)n;
    }
    if (got < want && c->win_len > 0) {
        size_t k = want - got < c->win_len ? want - got : c->win_len;
        memcpy(buf + got, c->win, k);
        c->win += k;
        c->win_len -= k;
        got += k;
    }
    if (got > 0)
        return (int)got;
    if (c->raw_eof)
        return 0;
    BIO_set_retry_read(b);
    return -1;
}

static size_t conn_raw_pending(const struct sg_conn *c)
{
    return (c->raw_in != NULL ? evbuffer_get_length(c->raw_in) : 0) + c->win_len;
}

static long conn_bio_ctrl(BIO *b, int cmd, long num, void *ptr)
{
    struct sg_conn *c = BIO_get_data(b);
    (void)num;
    (void)ptr;
    switch (cmd) {
    case BIO_CTRL_FLUSH:
        return 1;
    case BIO_CTRL_PENDING:
        return c != NULL ? (long)conn_raw_pending(c) : 0;
    case BIO_CTRL_WPENDING:
        return c != NULL && c->raw_out != NULL ? (long)evbuffer_get_length(c->raw_out) : 0;
    case BIO_CTRL_EOF:
        return c != NULL && c->raw_eof && conn_raw_pending(c) == 0;
    default:
        return 0;
    }
}

static int conn_bio_create(BIO *b)
{
    BIO_set_init(b, 1);
    return 1;
}

static void conn_bio_init(void)
{
    BIO_METHOD *m = BIO_meth_new(BIO_get_new_index() | BIO_TYPE_SOURCE_SINK, "slotgate conn");
    if (m == NULL || BIO_meth_set_write(m, conn_bio_write) != 1 ||
        BIO_meth_set_read(m, conn_bio_read) != 1 || BIO_meth_set_ctrl(m, conn_bio_ctrl) != 1 ||
        BIO_meth_set_create(m, conn_bio_create) != 1) {
        BIO_meth_free(m);
        return;
    }
    conn_bio_method = m;
}

/* Attach a gather BIO to c->ssl. 0, or -1 (no memory). */
static int conn_bio_attach(struct sg_conn *c)
{
    pthread_once(&conn_bio_once, conn_bio_init);
    if (conn_bio_method == NULL)
        return -1;
    BIO *b = BIO_new(conn_bio_method);
    if (b == NULL)
        return -1;
    BIO_set_data(b, c);
    SSL_set_bio(c->ssl, b, b); /* one reference, owned by the SSL */
    return 0;
}

/* OpenSSL error to our outcome: 1 would block (flags set), -1 fatal. */
static int conn_ssl_wait(struct sg_conn *c, int rc, int writing)
{
    int e = SSL_get_error(c->ssl, rc);
    if (e == SSL_ERROR_WANT_READ) {
        if (writing)
            c->write_wants_read = 1;
        conn_update_read(c);
        return 1;
    }
    if (e == SSL_ERROR_WANT_WRITE) {
        conn_want_write(c, 1);
        return 1;
    }
    ERR_clear_error();
    return -1;
}

/*
 * Gather mode: write raw_out. 1 when it is empty, 0 when the socket is
 * full (write interest registered), -1 on error. Once it is empty, the
 * plaintext it carried leaves the output buffer.
 */
static int conn_raw_write(struct sg_conn *c)
{
    while (c->raw_out != NULL && evbuffer_get_length(c->raw_out) > 0) {
        int n = evbuffer_write(c->raw_out, c->fd);
        c->io.writes++;
        if (n > 0 && c->cipher_held != NULL)
            *c->cipher_held -= (uint64_t)n;
        if (n < 0) {
            if (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR) {
                conn_want_write(c, 1);
                return 0;
            }
            return -1;
        }
    }
    if (c->sealed > 0) {
        evbuffer_drain(c->out, c->sealed);
        c->sealed = 0;
    }
    return 1;
}

/*
 * The next len bytes of out after the sealed ones, contiguous: in place
 * when one chain holds them, else copied into the thread's record buffer.
 */
static const unsigned char *conn_out_span(struct sg_conn *c, size_t len)
{
    struct evbuffer_ptr pos;
    struct evbuffer_iovec v;
    if (evbuffer_ptr_set(c->out, &pos, c->sealed, EVBUFFER_PTR_SET) != 0 ||
        evbuffer_peek(c->out, (ev_ssize_t)len, &pos, &v, 1) < 1)
        return NULL;
    if (v.iov_len >= len)
        return v.iov_base;
    if (evbuffer_copyout_from(c->out, &pos, conn_record, len) != (ev_ssize_t)len)
        return NULL;
    return conn_record;
}

/*
 * The next len bytes of out after the sealed ones as at most 16 spans,
 * in place; when they lie in more chains than that, one span copied into
 * the thread's record buffer. The number of spans, or -1.
 */
static int conn_out_spans(struct sg_conn *c, size_t len, struct iovec *iov)
{
    struct evbuffer_ptr pos;
    struct evbuffer_iovec v[16];
    if (evbuffer_ptr_set(c->out, &pos, c->sealed, EVBUFFER_PTR_SET) != 0)
        return -1;
    int n = evbuffer_peek(c->out, (ev_ssize_t)len, &pos, v, 16);
    if (n < 1)
        return -1;
    if (n <= 16) {
        for (int i = 0; i < n; i++)
            iov[i] = (struct iovec){v[i].iov_base, v[i].iov_len};
        return n;
    }
    const unsigned char *p = conn_out_span(c, len);
    if (p == NULL)
        return -1;
    iov[0] = (struct iovec){(void *)p, len};
    return 1;
}

/*
 * Our own records (rec): seal up to SG_CONN_GATHER bytes of the output
 * straight from its chains into space reserved at the end of raw_out, no
 * copy in between. 0 or -1.
 */
static int conn_rec_seal(struct sg_conn *c, size_t len)
{
    if (conn_raw_out(c) == NULL)
        return -1;
    size_t end = len < SG_CONN_GATHER ? len : SG_CONN_GATHER;
    struct evbuffer_iovec rv = {NULL, 0};
    size_t used = 0;
    while (c->sealed < end) {
        size_t chunk = end - c->sealed < SG_CONN_CHUNK ? end - c->sealed : SG_CONN_CHUNK;
        if (rv.iov_base == NULL || rv.iov_len - used < SG_TLSREC_SEAL_ROOM(chunk)) {
            if (rv.iov_base != NULL)
                conn_raw_commit(c, &rv, used);
            size_t left = end - c->sealed;
            size_t want = left + (left / SG_CONN_CHUNK + 1) * SG_TLSREC_OVERHEAD;
            if (want > SG_CONN_SEAL_RSV)
                want = SG_CONN_SEAL_RSV;
            if (want < SG_TLSREC_SEAL_ROOM(chunk))
                want = SG_TLSREC_SEAL_ROOM(chunk);
            if (evbuffer_reserve_space(c->raw_out, (ev_ssize_t)want, &rv, 1) < 1)
                return -1;
            used = 0;
        }
        struct iovec iov[16];
        int n = conn_out_spans(c, chunk, iov);
        size_t w =
            n > 0 ? sg_tlsrec_seal(c->rec, iov, n, chunk, (unsigned char *)rv.iov_base + used) : 0;
        if (w == 0) {
            conn_raw_commit(c, &rv, used);
            return -1;
        }
        used += w;
        c->sealed += chunk;
    }
    if (rv.iov_base != NULL)
        conn_raw_commit(c, &rv, used);
    return 0;
}

/*
 * Gather mode: seal the output into records, at most SG_CONN_GATHER bytes
 * at a time, and write each batch with one writev, until the output is
 * empty or the socket is full. 0 or -1.
 */
static int conn_write_gather(struct sg_conn *c)
{
    for (;;) {
        int rc = conn_raw_write(c);
        if (rc <= 0)
            return rc;
        size_t len = evbuffer_get_length(c->out);
        if (len == 0)
            break;
        if (c->rec != NULL) {
            if (conn_rec_seal(c, len) < 0)
                return -1;
            continue;
        }
        while (c->sealed < len && c->sealed < SG_CONN_GATHER) {
            size_t chunk = len - c->sealed < SG_CONN_CHUNK ? len - c->sealed : SG_CONN_CHUNK;
            const unsigned char *p = conn_out_span(c, chunk);
            if (p == NULL)
                return -1;
            int n = SSL_write(c->ssl, p, (int)chunk);
            if (n <= 0) /* the BIO never blocks: a TLS failure */
                return conn_ssl_wait(c, n, 1) > 0 ? 0 : -1;
            c->sealed += (size_t)n;
        }
    }
    /* All written: an idle conn keeps no ciphertext buffer. */
    if (c->raw_out != NULL) {
        evbuffer_free(c->raw_out);
        c->raw_out = NULL;
    }
    conn_want_write(c, 0);
    return 0;
}

/*
 * Write as much of the output as the socket takes. Returns 0 (all written
 * or would block) or -1 on error.
 */
static int conn_write(struct sg_conn *c)
{
    if (conn_is_tls(c))
        return conn_write_gather(c);
    while (evbuffer_get_length(c->out) > 0) {
        int n = evbuffer_write(c->out, c->fd);
        c->io.writes++;
        if (n < 0) {
            if (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR) {
                conn_want_write(c, 1);
                return 0;
            }
            return -1;
        }
    }
    conn_want_write(c, 0);
    return 0;
}

/* Nothing left to write: the output and (gather mode) its ciphertext. */
static int conn_out_empty(const struct sg_conn *c)
{
    return evbuffer_get_length(c->out) == 0 &&
           (c->raw_out == NULL || evbuffer_get_length(c->raw_out) == 0);
}

/*
 * SSL_read into the input buffer until OpenSSL has nothing more. Returns 1
 * if bytes arrived, 0 if none, -1 EOF/error (*eof tells which).
 */
static int conn_ssl_read(struct sg_conn *c, int *eof)
{
    int got = 0;
    for (;;) {
        struct evbuffer_iovec v;
        if (evbuffer_reserve_space(c->in, SG_CONN_CHUNK, &v, 1) < 1)
            return -1;
        int room = (int)v.iov_len;
        int n = SSL_read(c->ssl, v.iov_base, room);
        if (n <= 0) {
            v.iov_len = 0;
            evbuffer_commit_space(c->in, &v, 1);
            int e = SSL_get_error(c->ssl, n);
            if (e == SSL_ERROR_ZERO_RETURN) {
                *eof = 1;
                return got ? 1 : -1;
            }
            if (e == SSL_ERROR_SYSCALL && ERR_peek_error() == 0) {
                *eof = 1; /* peer closed without close_notify */
                ERR_clear_error();
                return got ? 1 : -1;
            }
            int w = conn_ssl_wait(c, n, 0);
            return w > 0 ? got : -1;
        }
        v.iov_len = (size_t)n;
        evbuffer_commit_space(c->in, &v, 1);
        got = 1;
        /* Stop when OpenSSL holds nothing more and nothing read is left
         * for it (no empty reservation is left behind in the input buffer):
         * the socket may still have bytes, and level-triggered epoll will
         * say so next turn. */
        if (!SSL_has_pending(c->ssl) && conn_raw_pending(c) == 0)
            return 1;
    }
}

/*
 * Plaintext: read what is there. Returns 1 if bytes arrived, 0 if none, -1
 * EOF/error. Not evbuffer_read: it takes at most 4 KiB per call, which
 * turns a 64 KiB reply into sixteen loop turns. One readv takes up to
 * 64 KiB into the buffer and as much again into the thread's scratch (then
 * copied, so the buffer grows by what arrived, not by a fixed
 * reservation); up to four such reads per turn.
 */
static int conn_read(struct sg_conn *c, int *eof)
{
    int got = 0;
    *eof = 0;
    for (int i = 0; i < 4; i++) {
        struct evbuffer_iovec v;
        if (evbuffer_reserve_space(c->in, SG_CONN_READ, &v, 1) < 1)
            return -1;
        struct iovec iov[2] = {{v.iov_base, v.iov_len}, {conn_scratch, SG_CONN_READ}};
        ssize_t n = readv(c->fd, iov, 2);
        c->io.reads++;
        if (n <= 0) {
            v.iov_len = 0;
            evbuffer_commit_space(c->in, &v, 1);
            if (n == 0) {
                *eof = 1;
                return got ? 1 : -1;
            }
            if (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR)
                return got;
            return -1;
        }
        size_t room = v.iov_len + SG_CONN_READ;
        size_t first = (size_t)n < v.iov_len ? (size_t)n : v.iov_len;
        v.iov_len = first;
        evbuffer_commit_space(c->in, &v, 1);
        if ((size_t)n > first && evbuffer_add(c->in, conn_scratch, (size_t)n - first) != 0)
            return -1;
        got = 1;
        if ((size_t)n < room)
            return 1;
    }
    return 1;
}

/*
 * Gather mode: one read() into the thread's scratch window. 1 bytes (or
 * EOF) arrived, 0 would block, -1 error. The window must be given to
 * OpenSSL or kept (conn_window_keep) before the handler returns.
 */
static int conn_raw_read(struct sg_conn *c)
{
    if (c->raw_eof)
        return 1;
    ssize_t n = read(c->fd, conn_scratch, sizeof(conn_scratch));
    c->io.reads++;
    if (n > 0) {
        c->win = conn_scratch;
        c->win_len = (size_t)n;
        return 1;
    }
    if (n == 0) {
        c->raw_eof = 1;
        return 1;
    }
    return errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR ? 0 : -1;
}

/* Keep what OpenSSL did not take of the window. 0, or -1 (no memory). */
static int conn_window_keep(struct sg_conn *c)
{
    if (c->win_len == 0)
        return 0;
    int rc = 0;
    if ((c->raw_in == NULL && (c->raw_in = evbuffer_new()) == NULL) ||
        evbuffer_add(c->raw_in, c->win, c->win_len) != 0)
        rc = -1;
    c->win = NULL;
    c->win_len = 0;
    return rc;
}

/* Move bytes from the window to raw_in until it holds need bytes or the
 * window is empty. Returns raw_in's length (raw_in exists). */
static size_t conn_raw_top_up(struct sg_conn *c, size_t need)
{
    size_t have = evbuffer_get_length(c->raw_in);
    if (have < need && c->win_len > 0) {
        size_t k = need - have < c->win_len ? need - have : c->win_len;
        if (evbuffer_add(c->raw_in, c->win, k) != 0)
            return 0;
        c->win += k;
        c->win_len -= k;
        have += k;
    }
    return have;
}

/* Our KeyUpdate, sealed at the end of raw_out. 0 or -1. */
static int conn_rec_key_update(struct sg_conn *c)
{
    struct evbuffer_iovec rv;
    if (conn_raw_out(c) == NULL ||
        evbuffer_reserve_space(c->raw_out, SG_TLSREC_OVERHEAD + 5, &rv, 1) < 1)
        return -1;
    size_t w = sg_tlsrec_seal_key_update(c->rec, rv.iov_base);
    conn_raw_commit(c, &rv, w);
    return w > 0 ? 0 : -1;
}

/*
 * Our own records (rec): open every whole record read so far straight
 * into the input buffer; a partial one waits in raw_in. Returns 1 if bytes
 * arrived, 0 if none, -1 EOF/error (*eof tells which), like conn_ssl_read.
 */
static int conn_rec_read(struct sg_conn *c, int *eof)
{
    int got = 0, reply = 0, rc = 0;
    /* Plaintext goes into one reservation for as many records as fit
     * (up to SG_CONN_READ): a 64 KiB frame lands in one or two chains, not
     * a 32 KiB chain per 16 KiB record, and can be moved on by reference
     * (session.c) instead of copied. */
    struct evbuffer_iovec v = {NULL, 0};
    size_t used = 0;
    for (;;) {
        const unsigned char *rec;
        size_t avail, len;
        /* A record begun in an earlier read is completed from the window
         * (only its missing bytes are copied); the rest is read in place. */
        int from_raw = c->raw_in != NULL && evbuffer_get_length(c->raw_in) > 0;
        unsigned char hdr[SG_TLSREC_HEADER];
        if (from_raw) {
            if (conn_raw_top_up(c, SG_TLSREC_HEADER) < SG_TLSREC_HEADER)
                break;
            evbuffer_copyout(c->raw_in, hdr, SG_TLSREC_HEADER);
            rec = hdr;
        } else {
            if (c->win_len < SG_TLSREC_HEADER)
                break;
            rec = c->win;
        }
        if ((len = sg_tlsrec_record_len(rec)) == 0) {
            rc = -1;
            break;
        }
        avail = from_raw ? conn_raw_top_up(c, len) : c->win_len;
        if (avail < len)
            break;
        if (from_raw && (rec = evbuffer_pullup(c->raw_in, (ev_ssize_t)len)) == NULL) {
            rc = -1;
            break;
        }
        size_t room = len - SG_TLSREC_OVERHEAD + 1; /* the inner plaintext */
        if (v.iov_base == NULL || v.iov_len - used < room) {
            if (v.iov_base != NULL) {
                v.iov_len = used;
                evbuffer_commit_space(c->in, &v, 1);
            }
            /* After a large record more usually follow: room for them
             * too, so the next reads' records join this chain. */
            size_t want = room >= SG_CONN_CHUNK / 2   ? SG_CONN_READ
                          : c->win_len < SG_CONN_READ ? c->win_len
                                                      : SG_CONN_READ;
            if (evbuffer_reserve_space(c->in, (ev_ssize_t)(want > room ? want : room), &v, 1) < 1) {
                v.iov_base = NULL;
                rc = -1;
                break;
            }
            used = 0;
        }
        size_t n = 0;
        enum sg_tlsrec_open r =
            sg_tlsrec_open(c->rec, rec, len, (unsigned char *)v.iov_base + used, &n, &reply);
        used += n;
        if (from_raw) {
            evbuffer_drain(c->raw_in, len);
        } else {
            c->win += len;
            c->win_len -= len;
        }
        if (reply) {
            reply = 0;
            if (conn_rec_key_update(c) < 0) {
                rc = -1;
                break;
            }
            sg_conn_flush_soon(c);
        }
        if (r == SG_TLSREC_BAD) {
            rc = -1;
            break;
        }
        if (r == SG_TLSREC_CLOSE) {
            /* Nothing after close_notify counts; the next read sees EOF. */
            c->raw_eof = 1;
            c->win_len = 0;
            if (c->raw_in != NULL)
                evbuffer_drain(c->raw_in, evbuffer_get_length(c->raw_in));
            *eof = 1;
            rc = -1;
            break;
        }
        got |= n > 0;
    }
    if (v.iov_base != NULL) {
        v.iov_len = used;
        evbuffer_commit_space(c->in, &v, 1);
    }
    if (rc == 0 && conn_window_keep(c) < 0)
        rc = -1;
    if (rc == 0 && c->raw_eof) {
        *eof = 1; /* closed without close_notify, or inside a record */
        rc = -1;
    }
    if (rc < 0)
        return got && *eof ? 1 : -1;
    return got;
}

/*
 * A TLS 1.3 handshake just finished in gather mode: hand the connection to
 * our own record layer and free the SSL object, unless OpenSSL cannot be
 * left (then it simply carries on). sent_before: raw_out's length before
 * the handshake step that finished. On the accept side what that step
 * wrote is the session tickets, already sealed with the server's
 * application key, so their records are counted into the write sequence;
 * on the connect side it is the client's Finished, under the handshake key.
 */
static void conn_rec_take(struct sg_conn *c, size_t sent_before)
{
    size_t end = c->raw_out != NULL ? evbuffer_get_length(c->raw_out) : 0;
    size_t off = c->server ? sent_before : end;
    uint64_t records = 0;
    while (off < end) {
        unsigned char h[SG_TLSREC_HEADER];
        struct evbuffer_ptr p;
        if (end - off < SG_TLSREC_HEADER ||
            evbuffer_ptr_set(c->raw_out, &p, off, EVBUFFER_PTR_SET) != 0 ||
            evbuffer_copyout_from(c->raw_out, &p, h, SG_TLSREC_HEADER) != SG_TLSREC_HEADER ||
            sg_tlsrec_record_len(h) == 0)
            return;
        off += sg_tlsrec_record_len(h);
        records++;
    }
    if (off != end)
        return;
    struct sg_tlsrec *r = sg_tlsrec_take(c->ssl, records);
    if (r == NULL)
        return;
    c->verify_result = SSL_get_verify_result(c->ssl);
    SSL_free(c->ssl);
    c->ssl = NULL;
    c->rec = r;
}

static void conn_handshake_done(struct sg_conn *c)
{
    c->handshaking = 0;
    conn_update_read(c);
    if (c->timer != NULL)
        evtimer_del(c->timer);
    if (evbuffer_get_length(c->out) > 0)
        sg_conn_flush_soon(c);
    if ((c->ssl != NULL && SSL_has_pending(c->ssl)) || conn_raw_pending(c) > 0)
        event_active(c->rev, EV_READ, 0);
    if (!c->server)
        c->cbs.on_event(c->arg, SG_CONN_CONNECTED);
}

static void conn_handshake(struct sg_conn *c)
{
    size_t sent_before = c->raw_out != NULL ? evbuffer_get_length(c->raw_out) : 0;
    int rc = SSL_do_handshake(c->ssl);
    if (rc == 1)
        conn_rec_take(c, sent_before);
    /* Send what the step produced now; keep unread bytes for later. */
    if (conn_window_keep(c) < 0 || (!c->wev_added && conn_raw_write(c) < 0)) {
        c->cbs.on_event(c->arg, SG_CONN_ERROR);
        return;
    }
    if (rc == 1) {
        conn_handshake_done(c);
        return;
    }
    if (conn_ssl_wait(c, rc, 0) < 0)
        c->cbs.on_event(c->arg, SG_CONN_ERROR);
}

/* Gather mode: the socket is readable (or raw_in holds bytes). */
static void conn_gather_readable(struct sg_conn *c)
{
    int rr = conn_raw_read(c);
    if (rr < 0) {
        c->cbs.on_event(c->arg, SG_CONN_ERROR);
        return;
    }
    if (rr == 0 && conn_raw_pending(c) == 0 && (c->ssl == NULL || !SSL_has_pending(c->ssl)))
        return; /* nothing new: no SSL_read, no empty reservation in c->in */
    if (c->handshaking) {
        conn_handshake(c);
        return;
    }
    int eof = 0;
    int rc = c->rec != NULL ? conn_rec_read(c, &eof) : conn_ssl_read(c, &eof);
    if (c->write_wants_read && rc >= 0) {
        /* An SSL_write waited for input (not expected with TLS 1.3 and no
         * renegotiation, but OpenSSL may ask): try the flush again. */
        c->write_wants_read = 0;
        conn_update_read(c);
        sg_conn_flush_soon(c);
    }
    /* Anything OpenSSL wrote while reading (a KeyUpdate answer, an alert)
     * goes out now, unless a write is already waiting for the socket. */
    if (conn_window_keep(c) < 0 ||
        (!c->wev_added && c->raw_out != NULL && evbuffer_get_length(c->raw_out) > 0 &&
         c->sealed == 0 && conn_raw_write(c) < 0))
        rc = -1;
    if (rc < 0) {
        c->cbs.on_event(c->arg, eof ? SG_CONN_EOF : SG_CONN_ERROR);
        return;
    }
    if (rc > 0 && c->reading)
        c->cbs.on_read(c->arg);
}

static void on_readable(evutil_socket_t fd, short what, void *arg)
{
    struct sg_conn *c = arg;
    if (what & EV_TIMEOUT) {
        /* A persistent event stays armed: the owner decides what to do. */
        c->cbs.on_event(c->arg, SG_CONN_TIMEOUT);
        return;
    }
    if (conn_is_tls(c)) {
        conn_gather_readable(c);
        return;
    }
    int eof;
    int rc = conn_read(c, &eof);
    if (rc < 0) {
        c->cbs.on_event(c->arg, eof ? SG_CONN_EOF : SG_CONN_ERROR);
        return;
    }
    if (rc > 0 && c->reading)
        c->cbs.on_read(c->arg);
}

static void conn_connected(struct sg_conn *c)
{
    c->connecting = 0;
    conn_want_write(c, 0);
    if (c->ssl != NULL) {
        c->handshaking = 1;
        conn_handshake(c);
        return;
    }
    if (c->timer != NULL)
        evtimer_del(c->timer);
    conn_update_read(c);
    if (evbuffer_get_length(c->out) > 0)
        sg_conn_flush_soon(c);
    c->cbs.on_event(c->arg, SG_CONN_CONNECTED);
}

static void on_writable(evutil_socket_t fd, short what, void *arg)
{
    struct sg_conn *c = arg;
    if (c->connecting) {
        int err = 0;
        socklen_t len = sizeof(err);
        getsockopt(c->fd, SOL_SOCKET, SO_ERROR, &err, &len);
        if (err != 0) {
            conn_want_write(c, 0);
            c->cbs.on_event(c->arg, SG_CONN_ERROR);
            return;
        }
        conn_connected(c);
        return;
    }
    if (c->handshaking) { /* the rest of a handshake flight */
        int rc = conn_raw_write(c);
        if (rc < 0)
            c->cbs.on_event(c->arg, SG_CONN_ERROR);
        else if (rc > 0)
            conn_want_write(c, 0);
        return;
    }
    if (conn_write(c) < 0) {
        c->cbs.on_event(c->arg, SG_CONN_ERROR);
        return;
    }
    if (conn_out_empty(c) && c->cbs.on_drained != NULL)
        c->cbs.on_drained(c->arg);
}

static void on_flush(evutil_socket_t fd, short what, void *arg)
{
    struct sg_conn *c = arg;
    if (c->connecting || c->handshaking || c->wev_added || c->write_wants_read)
        return; /* the write event (or the read that unblocks it) will flush */
    if (conn_write(c) < 0) {
        c->cbs.on_event(c->arg, SG_CONN_ERROR);
        return;
    }
    if (conn_out_empty(c) && c->cbs.on_drained != NULL)
        c->cbs.on_drained(c->arg);
}

static void on_timer(evutil_socket_t fd, short what, void *arg)
{
    struct sg_conn *c = arg;
    c->cbs.on_event(c->arg, SG_CONN_TIMEOUT);
}

struct sg_conn *sg_conn_new(struct event_base *base, int fd, SSL *ssl, int server, int connecting,
                            int timeout_ms, const struct sg_conn_cbs *cbs, void *arg)
{
    struct sg_conn *c = calloc(1, sizeof(*c));
    if (c == NULL) {
        if (ssl != NULL)
            SSL_free(ssl);
        close(fd);
        return NULL;
    }
    c->fd = fd;
    c->base = base;
    c->ssl = ssl;
    c->cbs = *cbs;
    c->arg = arg;
    c->in = evbuffer_new();
    c->out = evbuffer_new();
    c->rev = event_new(base, fd, EV_READ | EV_PERSIST, on_readable, c);
    c->flush_ev = event_new(base, -1, 0, on_flush, c);
    if (timeout_ms > 0)
        c->timer = evtimer_new(base, on_timer, c);
    c->reading = 1;
    c->server = server ? 1 : 0;
    if (c->in == NULL || c->out == NULL || c->rev == NULL || c->flush_ev == NULL ||
        (timeout_ms > 0 && c->timer == NULL) || (ssl != NULL && conn_bio_attach(c) != 0)) {
        ERR_clear_error();
        sg_conn_free(c);
        return NULL;
    }
    if (ssl != NULL) {
        if (server)
            SSL_set_accept_state(ssl);
        else
            SSL_set_connect_state(ssl);
    }
    if (timeout_ms > 0) {
        struct timeval tv = {timeout_ms / 1000, (timeout_ms % 1000) * 1000};
        evtimer_add(c->timer, &tv);
    }
    if (connecting) {
        c->connecting = 1;
        conn_want_write(c, 1);
    } else if (ssl != NULL) {
        c->handshaking = 1;
        conn_update_read(c);
    } else {
        conn_update_read(c);
    }
    return c;
}

void sg_conn_free(struct sg_conn *c)
{
    if (c == NULL)
        return;
    if (c->rev != NULL)
        event_free(c->rev);
    if (c->wev != NULL)
        event_free(c->wev);
    if (c->flush_ev != NULL)
        event_free(c->flush_ev);
    if (c->timer != NULL)
        event_free(c->timer);
    if (c->ssl != NULL)
        SSL_free(c->ssl);
    sg_tlsrec_free(c->rec);
    close(c->fd);
    if (c->in != NULL)
        evbuffer_free(c->in);
    if (c->out != NULL)
        evbuffer_free(c->out);
    if (c->raw_in != NULL)
        evbuffer_free(c->raw_in);
    if (c->raw_out != NULL) {
        if (c->cipher_held != NULL)
            *c->cipher_held -= evbuffer_get_length(c->raw_out);
        evbuffer_free(c->raw_out);
    }
    free(c);
}

void sg_conn_count_cipher(struct sg_conn *c, uint64_t *counter)
{
    c->cipher_held = counter;
}

void sg_conn_discard_output(struct sg_conn *c)
{
    evbuffer_drain(c->out, evbuffer_get_length(c->out));
    c->sealed = 0;
    if (c->raw_out != NULL) {
        if (c->cipher_held != NULL)
            *c->cipher_held -= evbuffer_get_length(c->raw_out);
        evbuffer_drain(c->raw_out, evbuffer_get_length(c->raw_out));
    }
    conn_want_write(c, 0);
}

struct evbuffer *sg_conn_input(struct sg_conn *c)
{
    return c->in;
}

struct evbuffer *sg_conn_output(struct sg_conn *c)
{
    return c->out;
}

void sg_conn_flush_soon(struct sg_conn *c)
{
    event_active(c->flush_ev, EV_WRITE, 0);
}

void sg_conn_read_enable(struct sg_conn *c, int on)
{
    c->reading = on ? 1 : 0;
    conn_update_read(c);
}

void sg_conn_set_idle_timeout(struct sg_conn *c, int ms)
{
    c->idle_ms = ms;
    if (c->rev_added) {
        event_del(c->rev);
        c->rev_added = 0;
    }
    conn_update_read(c);
}

int sg_conn_fd(const struct sg_conn *c)
{
    return c->fd;
}

int sg_conn_own_records(const struct sg_conn *c)
{
    return c->rec != NULL;
}

const char *sg_conn_verify_error(const struct sg_conn *c)
{
    if (c->ssl == NULL && c->rec == NULL)
        return NULL;
    long v = c->ssl != NULL ? SSL_get_verify_result(c->ssl) : c->verify_result;
    return v == X509_V_OK ? NULL : X509_verify_cert_error_string(v);
}

void sg_conn_get_io(const struct sg_conn *c, struct sg_conn_io *io)
{
    *io = c->io;
}

size_t sg_conn_held_bytes(const struct sg_conn *c)
{
    return evbuffer_get_length(c->in) + evbuffer_get_length(c->out) + conn_raw_pending(c) +
           (c->raw_out != NULL ? evbuffer_get_length(c->raw_out) : 0);
}
