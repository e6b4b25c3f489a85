/*
 * conn - socket I/O for sessions and shard links: reads on readiness into
 * the input evbuffer, and writes the output evbuffer at the end of the loop
 * turn in which it was filled (a zero-delay "flush" event queued behind the
 * turn's read callbacks), so the answers to every request read in a turn
 * leave in one write per connection. With TLS, read-ahead is on and reads
 * continue while OpenSSL still holds buffered bytes, so no data is ever
 * left in OpenSSL where epoll cannot see it.
 */
#include "conn.h"

#include <errno.h>
#include <stdlib.h>
#include <sys/socket.h>
#include <unistd.h>

#include <event2/buffer.h>
#include <openssl/err.h>

#include "util.h"

#define SG_CONN_CHUNK 16384
#define SG_CONN_READ 65536

struct sg_conn {
    int fd;
    SSL *ssl;
    struct evbuffer *in, *out;
    struct event *rev, *wev, *flush_ev, *timer;
    struct sg_conn_cbs cbs;
    void *arg;
    int idle_ms;
    unsigned reading : 1; /* read interest wanted by the owner */
    unsigned rev_added : 1;
    unsigned wev_added : 1;
    unsigned connecting : 1;  /* TCP connect in progress */
    unsigned handshaking : 1; /* TLS handshake in progress */
    unsigned write_wants_read : 1;
    int pending_write; /* SSL_write length to repeat, 0 if none */
};

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

static void conn_want_write(struct sg_conn *c, int on)
{
    if (on && !c->wev_added) {
        event_add(c->wev, NULL);
        c->wev_added = 1;
    } else if (!on && c->wev_added) {
        event_del(c->wev);
        c->wev_added = 0;
    }
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
 * Write as much of the output as the socket takes. Returns 0 (all written
 * or would block) or -1 on error.
 */
static int conn_write(struct sg_conn *c)
{
    while (evbuffer_get_length(c->out) > 0) {
        if (c->ssl == NULL) {
            int n = evbuffer_write(c->out, c->fd);
            if (n < 0) {
                if (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR) {
                    conn_want_write(c, 1);
                    return 0;
                }
                return -1;
            }
            continue;
        }
        size_t len = evbuffer_get_length(c->out);
        int chunk =
            c->pending_write ? c->pending_write : (int)(len < SG_CONN_CHUNK ? len : SG_CONN_CHUNK);
        const unsigned char *p = evbuffer_pullup(c->out, chunk);
        int n = SSL_write(c->ssl, p, chunk);
        if (n <= 0) {
            c->pending_write = chunk;
            return conn_ssl_wait(c, n, 1) > 0 ? 0 : -1;
        }
        c->pending_write = 0;
        evbuffer_drain(c->out, (size_t)n);
    }
    conn_want_write(c, 0);
    return 0;
}

/* Read what is there. Returns 1 if bytes arrived, 0 if none, -1 EOF/error. */
static int conn_read(struct sg_conn *c, int *eof)
{
    int got = 0;
    *eof = 0;
    if (c->ssl == NULL) {
        /* Not evbuffer_read: it takes at most 4 KiB per call, which turns a
         * 64 KiB reply into sixteen loop turns. Read up to 256 KiB now. */
        for (int i = 0; i < 4; i++) {
            struct evbuffer_iovec v;
            if (evbuffer_reserve_space(c->in, SG_CONN_READ, &v, 1) < 1)
                return -1;
            ssize_t n = read(c->fd, v.iov_base, v.iov_len);
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
            size_t room = v.iov_len;
            v.iov_len = (size_t)n;
            evbuffer_commit_space(c->in, &v, 1);
            got = 1;
            if ((size_t)n < room)
                return 1;
        }
        return 1;
    }
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
        /* Stop when OpenSSL holds nothing more: the socket may still have
         * bytes, and level-triggered epoll will say so next turn. */
        if (!SSL_has_pending(c->ssl) && n < room)
            return 1;
    }
}

static void conn_handshake(struct sg_conn *c)
{
    int rc = SSL_do_handshake(c->ssl);
    if (rc == 1) {
        c->handshaking = 0;
        conn_update_read(c);
        if (c->timer != NULL)
            evtimer_del(c->timer);
        if (evbuffer_get_length(c->out) > 0)
            sg_conn_flush_soon(c);
        if (SSL_has_pending(c->ssl))
            event_active(c->rev, EV_READ, 0);
        if (!SSL_is_server(c->ssl))
            c->cbs.on_event(c->arg, SG_CONN_CONNECTED);
        return;
    }
    if (conn_ssl_wait(c, rc, 0) < 0)
        c->cbs.on_event(c->arg, SG_CONN_ERROR);
}

static void on_readable(evutil_socket_t fd, short what, void *arg)
{
    struct sg_conn *c = arg;
    if (what & EV_TIMEOUT) {
        /* A persistent event stays armed: the owner decides what to do. */
        c->cbs.on_event(c->arg, SG_CONN_TIMEOUT);
        return;
    }
    if (c->handshaking) {
        conn_handshake(c);
        return;
    }
    if (c->write_wants_read) {
        c->write_wants_read = 0;
        if (conn_write(c) < 0) {
            c->cbs.on_event(c->arg, SG_CONN_ERROR);
            return;
        }
        conn_update_read(c);
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
    if (c->handshaking) {
        conn_want_write(c, 0);
        conn_handshake(c);
        return;
    }
    if (conn_write(c) < 0) {
        c->cbs.on_event(c->arg, SG_CONN_ERROR);
        return;
    }
    if (evbuffer_get_length(c->out) == 0 && c->cbs.on_drained != NULL)
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
    if (evbuffer_get_length(c->out) == 0 && c->cbs.on_drained != NULL)
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
    c->ssl = ssl;
    c->cbs = *cbs;
    c->arg = arg;
    c->in = evbuffer_new();
    c->out = evbuffer_new();
    c->rev = event_new(base, fd, EV_READ | EV_PERSIST, on_readable, c);
    c->wev = event_new(base, fd, EV_WRITE | EV_PERSIST, on_writable, c);
    c->flush_ev = event_new(base, -1, 0, on_flush, c);
    if (timeout_ms > 0)
        c->timer = evtimer_new(base, on_timer, c);
    c->reading = 1;
    if (c->in == NULL || c->out == NULL || c->rev == NULL || c->wev == NULL ||
        c->flush_ev == NULL || (timeout_ms > 0 && c->timer == NULL) ||
        (ssl != NULL && SSL_set_fd(ssl, fd) != 1)) {
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
    close(c->fd);
    if (c->in != NULL)
        evbuffer_free(c->in);
    if (c->out != NULL)
        evbuffer_free(c->out);
    free(c);
}

void sg_conn_discard_output(struct sg_conn *c)
{
    evbuffer_drain(c->out, evbuffer_get_length(c->out));
    c->pending_write = 0; /* a TLS write to repeat is abandoned with the rest */
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

const char *sg_conn_verify_error(const struct sg_conn *c)
{
    if (c->ssl == NULL)
        return NULL;
    long v = SSL_get_verify_result(c->ssl);
    return v == X509_V_OK ? NULL : X509_verify_cert_error_string(v);
}
