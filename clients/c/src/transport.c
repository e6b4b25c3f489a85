/*
 * transport.c - the byte stream under a client: TCP plus optional TLS.
 *
 * The socket is non-blocking; callers get single non-blocking steps
 * (read/write returning WANT_READ/WANT_WRITE) and sg_transport_wait, which
 * polls until an absolute deadline. That is what turns a per-call timeout
 * into a hard bound even in the middle of a TLS record.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <openssl/err.h>
#include <openssl/x509v3.h>

#include "internal.h"

/*
 * OpenSSL writes to the socket with write(), which raises SIGPIPE on a
 * closed peer. A library must not change the process's signal disposition,
 * so SIGPIPE is blocked around each TLS call and a SIGPIPE raised by it is
 * consumed before the old mask is restored (the libpq technique).
 */
struct sg_sigpipe_guard {
    sigset_t old;
    int was_pending;
};

static void sg_sigpipe_block(struct sg_sigpipe_guard *g)
{
    sigset_t set, pending;

    sigemptyset(&set);
    sigaddset(&set, SIGPIPE);
    sigemptyset(&pending);
    sigpending(&pending);
    g->was_pending = sigismember(&pending, SIGPIPE);
    pthread_sigmask(SIG_BLOCK, &set, &g->old);
}

static void sg_sigpipe_restore(struct sg_sigpipe_guard *g)
{
    sigset_t set, pending;
    struct timespec zero = {0, 0};

    sigemptyset(&pending);
    sigpending(&pending);
    if (!g->was_pending && sigismember(&pending, SIGPIPE)) {
        sigemptyset(&set);
        sigaddset(&set, SIGPIPE);
        while (sigtimedwait(&set, NULL, &zero) < 0 && errno == EINTR)
            ;
    }
    pthread_sigmask(SIG_SETMASK, &g->old, NULL);
}

/* Record the newest OpenSSL error (or fallback) in t->err. */
static void sg_transport_ssl_error(struct sg_transport *t, const char *what, const char *fallback)
{
    unsigned long e = ERR_peek_last_error();
    char buf[200];

    if (e != 0) {
        ERR_error_string_n(e, buf, sizeof(buf));
        snprintf(t->err, sizeof(t->err), "%s: %s", what, buf);
    } else {
        snprintf(t->err, sizeof(t->err), "%s: %s", what, fallback);
    }
    ERR_clear_error();
}

int sg_transport_wait(struct sg_transport *t, short events, int64_t deadline, short *revents)
{
    struct pollfd pfd;
    int64_t left;
    int rc;

    for (;;) {
        left = deadline - sg_now_ms();
        if (left <= 0) {
            snprintf(t->err, sizeof(t->err), "timed out");
            return -1;
        }
        pfd.fd = t->fd;
        pfd.events = events;
        pfd.revents = 0;
        rc = poll(&pfd, 1, left > 1000000 ? 1000000 : (int)left);
        if (rc < 0 && errno == EINTR)
            continue;
        if (rc < 0) {
            snprintf(t->err, sizeof(t->err), "poll: %s", strerror(errno));
            return -1;
        }
        if (rc > 0) {
            if (revents)
                *revents = pfd.revents;
            return 0;
        }
    }
}

/* Non-blocking connect to one address, finished within the deadline. */
static int sg_transport_connect_addr(struct sg_transport *t, const struct addrinfo *ai,
                                     int64_t deadline)
{
    int fd, one = 1, soerr = 0;
    socklen_t slen = sizeof(soerr);

    fd = socket(ai->ai_family, ai->ai_socktype | SOCK_NONBLOCK | SOCK_CLOEXEC, ai->ai_protocol);
    if (fd < 0) {
        snprintf(t->err, sizeof(t->err), "socket: %s", strerror(errno));
        return -1;
    }
    t->fd = fd;
    if (connect(fd, ai->ai_addr, ai->ai_addrlen) < 0) {
        if (errno != EINPROGRESS) {
            soerr = errno;
        } else if (sg_transport_wait(t, POLLOUT, deadline, NULL) < 0) {
            snprintf(t->err, sizeof(t->err), "connect: timed out");
            goto fail;
        } else if (getsockopt(fd, SOL_SOCKET, SO_ERROR, &soerr, &slen) < 0) {
            soerr = errno;
        }
        if (soerr != 0) {
            snprintf(t->err, sizeof(t->err), "connect: %s", strerror(soerr));
            goto fail;
        }
    }
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
    return 0;
fail:
    close(fd);
    t->fd = -1;
    return -1;
}

/* Is name an IPv4 or IPv6 literal (which gets an IP check and no SNI)? */
static int sg_is_ip_literal(const char *name)
{
    unsigned char buf[sizeof(struct in6_addr)];

    return inet_pton(AF_INET, name, buf) == 1 || inet_pton(AF_INET6, name, buf) == 1;
}

/*
 * Build the TLS context and session: TLS 1.2 minimum, verification against
 * cacert (or the system store) unless insecure, the expected name checked as
 * a host name or an IP address, SNI for names, optional client cert/key.
 */
static int sg_transport_tls_setup(struct sg_transport *t, const struct sg_client_options *opt,
                                  const char *host)
{
    const char *name = opt->sni ? opt->sni : host;

    t->ctx = SSL_CTX_new(TLS_client_method());
    if (t->ctx == NULL) {
        sg_transport_ssl_error(t, "tls", "cannot create context");
        return -1;
    }
    SSL_CTX_set_min_proto_version(t->ctx, TLS1_2_VERSION);
    if (!opt->insecure) {
        SSL_CTX_set_verify(t->ctx, SSL_VERIFY_PEER, NULL);
        if (opt->cacert) {
            if (access(opt->cacert, R_OK) != 0) {
                snprintf(t->err, sizeof(t->err), "tls: cannot read CA file %.100s: %s", opt->cacert,
                         strerror(errno));
                return -1;
            }
            if (SSL_CTX_load_verify_locations(t->ctx, opt->cacert, NULL) != 1) {
                sg_transport_ssl_error(t, "tls: cannot load CA file", opt->cacert);
                return -1;
            }
        } else if (SSL_CTX_set_default_verify_paths(t->ctx) != 1) {
            sg_transport_ssl_error(t, "tls", "cannot load system CA store");
            return -1;
        }
    }
    if (opt->cert && SSL_CTX_use_certificate_chain_file(t->ctx, opt->cert) != 1) {
        sg_transport_ssl_error(t, "tls: cannot load client certificate", opt->cert);
        return -1;
    }
    if (opt->key) {
        if (SSL_CTX_use_PrivateKey_file(t->ctx, opt->key, SSL_FILETYPE_PEM) != 1) {
            sg_transport_ssl_error(t, "tls: cannot load client key", opt->key);
            return -1;
        }
        if (SSL_CTX_check_private_key(t->ctx) != 1) {
            sg_transport_ssl_error(t, "tls", "client key does not match certificate");
            return -1;
        }
    }
    t->ssl = SSL_new(t->ctx);
    if (t->ssl == NULL || SSL_set_fd(t->ssl, t->fd) != 1) {
        sg_transport_ssl_error(t, "tls", "cannot create session");
        return -1;
    }
    if (sg_is_ip_literal(name)) {
        if (!opt->insecure && X509_VERIFY_PARAM_set1_ip_asc(SSL_get0_param(t->ssl), name) != 1) {
            sg_transport_ssl_error(t, "tls: bad IP address", name);
            return -1;
        }
    } else {
        if (SSL_set_tlsext_host_name(t->ssl, name) != 1 ||
            (!opt->insecure && SSL_set1_host(t->ssl, name) != 1)) {
            sg_transport_ssl_error(t, "tls: bad server name", name);
            return -1;
        }
    }
    return 0;
}

/* Drive SSL_connect to completion or the deadline. */
static int sg_transport_tls_handshake(struct sg_transport *t, int64_t deadline)
{
    struct sg_sigpipe_guard g;
    long vr;
    int rc, e, saved_errno;

    for (;;) {
        ERR_clear_error();
        errno = 0;
        sg_sigpipe_block(&g);
        rc = SSL_connect(t->ssl);
        e = rc == 1 ? SSL_ERROR_NONE : SSL_get_error(t->ssl, rc);
        saved_errno = errno;
        sg_sigpipe_restore(&g);
        if (rc == 1)
            return 0;
        if (e == SSL_ERROR_WANT_READ || e == SSL_ERROR_WANT_WRITE) {
            if (sg_transport_wait(t, e == SSL_ERROR_WANT_READ ? POLLIN : POLLOUT, deadline, NULL) <
                0) {
                snprintf(t->err, sizeof(t->err), "tls handshake: timed out");
                return -1;
            }
            continue;
        }
        vr = SSL_get_verify_result(t->ssl);
        if (vr != X509_V_OK) {
            snprintf(t->err, sizeof(t->err), "tls handshake: certificate verify failed: %s",
                     X509_verify_cert_error_string(vr));
            ERR_clear_error();
        } else if (e == SSL_ERROR_SYSCALL && ERR_peek_last_error() == 0) {
            snprintf(t->err, sizeof(t->err), "tls handshake: %s",
                     saved_errno ? strerror(saved_errno) : "connection closed by server");
        } else {
            sg_transport_ssl_error(t, "tls handshake", "failed");
        }
        return -1;
    }
}

/*
 * Resolve host, connect to the first address that answers, then run the TLS
 * handshake if opt->tls. On failure t is left closed and t->err says why.
 */
int sg_transport_open(struct sg_transport *t, const struct sg_client_options *opt, int64_t deadline)
{
    const char *host = opt->host ? opt->host : "127.0.0.1";
    struct addrinfo hints, *res = NULL, *ai;
    char port[16];
    int rc;

    memset(t, 0, sizeof(*t));
    t->fd = -1;
    memset(&hints, 0, sizeof(hints));
    hints.ai_family = AF_UNSPEC;
    hints.ai_socktype = SOCK_STREAM;
    snprintf(port, sizeof(port), "%d", opt->port ? opt->port : 7420);
    rc = getaddrinfo(host, port, &hints, &res);
    if (rc != 0) {
        snprintf(t->err, sizeof(t->err), "cannot resolve %s: %s", host, gai_strerror(rc));
        return -1;
    }
    rc = -1;
    for (ai = res; ai != NULL && rc < 0; ai = ai->ai_next)
        rc = sg_transport_connect_addr(t, ai, deadline);
    freeaddrinfo(res);
    if (rc < 0) {
        char why[sizeof(t->err)];

        memcpy(why, t->err, sizeof(why));
        snprintf(t->err, sizeof(t->err), "%.80s:%.5s: %.150s", host, port, why);
        return -1;
    }
    if (opt->tls &&
        (sg_transport_tls_setup(t, opt, host) < 0 || sg_transport_tls_handshake(t, deadline) < 0)) {
        sg_transport_close(t);
        return -1;
    }
    return 0;
}

void sg_transport_close(struct sg_transport *t)
{
    struct sg_sigpipe_guard g;

    if (t->ssl) {
        sg_sigpipe_block(&g);
        SSL_shutdown(t->ssl);
        sg_sigpipe_restore(&g);
        SSL_free(t->ssl);
        t->ssl = NULL;
    }
    SSL_CTX_free(t->ctx);
    t->ctx = NULL;
    if (t->fd >= 0)
        close(t->fd);
    t->fd = -1;
    ERR_clear_error();
}

/* Map the outcome of an SSL_read_ex/SSL_write_ex call to an sg_io. */
static enum sg_io sg_transport_ssl_result(struct sg_transport *t, int rc, const char *what)
{
    int e = SSL_get_error(t->ssl, rc);

    switch (e) {
    case SSL_ERROR_WANT_READ:
        return SG_IO_WANT_READ;
    case SSL_ERROR_WANT_WRITE:
        return SG_IO_WANT_WRITE;
    case SSL_ERROR_ZERO_RETURN:
        return SG_IO_EOF;
    case SSL_ERROR_SYSCALL:
        if (ERR_peek_last_error() == 0) {
            if (errno == 0)
                return SG_IO_EOF;
            snprintf(t->err, sizeof(t->err), "%s: %s", what, strerror(errno));
            return SG_IO_ERROR;
        }
        break;
    default:
        break;
    }
    sg_transport_ssl_error(t, what, "tls error");
    return SG_IO_ERROR;
}

enum sg_io sg_transport_read(struct sg_transport *t, void *buf, size_t len, size_t *n)
{
    struct sg_sigpipe_guard g;
    enum sg_io io;
    ssize_t rc;
    int ok;

    if (t->ssl) {
        ERR_clear_error();
        errno = 0;
        sg_sigpipe_block(&g);
        ok = SSL_read_ex(t->ssl, buf, len, n);
        io = ok ? SG_IO_DONE : sg_transport_ssl_result(t, ok, "read");
        sg_sigpipe_restore(&g);
        return io;
    }
    do {
        rc = recv(t->fd, buf, len, 0);
    } while (rc < 0 && errno == EINTR);
    if (rc > 0) {
        *n = (size_t)rc;
        return SG_IO_DONE;
    }
    if (rc == 0)
        return SG_IO_EOF;
    if (errno == EAGAIN || errno == EWOULDBLOCK)
        return SG_IO_WANT_READ;
    snprintf(t->err, sizeof(t->err), "read: %s", strerror(errno));
    return SG_IO_ERROR;
}

enum sg_io sg_transport_write(struct sg_transport *t, const void *buf, size_t len, size_t *n)
{
    struct sg_sigpipe_guard g;
    enum sg_io io;
    ssize_t rc;
    int ok;

    if (t->ssl) {
        ERR_clear_error();
        errno = 0;
        sg_sigpipe_block(&g);
        ok = SSL_write_ex(t->ssl, buf, len, n);
        io = ok ? SG_IO_DONE : sg_transport_ssl_result(t, ok, "write");
        sg_sigpipe_restore(&g);
        return io;
    }
    do {
        rc = send(t->fd, buf, len, MSG_NOSIGNAL);
    } while (rc < 0 && errno == EINTR);
    if (rc >= 0) {
        *n = (size_t)rc;
        return SG_IO_DONE;
    }
    if (errno == EAGAIN || errno == EWOULDBLOCK)
        return SG_IO_WANT_WRITE;
    snprintf(t->err, sizeof(t->err), "write: %s", strerror(errno));
    return SG_IO_ERROR;
}

int sg_transport_pending(const struct sg_transport *t)
{
    return t->ssl != NULL && SSL_pending(t->ssl) > 0;
}
