/*
 * resp - RESP encoding straight into evbuffers for the shard links, the
 * classification of Redis error replies that drive redirects and retries,
 * and a blocking RESP client used only by the topology manager thread.
 */
#include "resp.h"

#include <errno.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <event2/buffer.h>
#include <openssl/err.h>
#include <openssl/ssl.h>

#include "tls.h"
#include "util.h"

static size_t fmt_u64(char *buf, uint64_t v)
{
    char tmp[24];
    size_t n = 0;
    do {
        tmp[n++] = (char)('0' + v % 10);
        v /= 10;
    } while (v != 0);
    for (size_t i = 0; i < n; i++)
        buf[i] = tmp[n - 1 - i];
    return n;
}

/*
 * A failed append (evbuffer_add can fail on allocation) is remembered here,
 * per thread, until sg_resp_format_failed() reads it: the command formatters
 * call these functions many times and the shard link checks once, before
 * the command joins the link's output.
 */
static __thread int resp_failed;

static void resp_add(struct evbuffer *out, const void *p, size_t len)
{
    if (evbuffer_add(out, p, len) != 0)
        resp_failed = 1;
}

int sg_resp_format_failed(void)
{
    int f = resp_failed;
    resp_failed = 0;
    return f;
}

/* Append a RESP header line: the type character, then n, then CRLF. */
static void put_header(struct evbuffer *out, char type, uint64_t n)
{
    char hdr[32];
    size_t k = 0;
    hdr[k++] = type;
    k += fmt_u64(hdr + k, n);
    hdr[k++] = '\r';
    hdr[k++] = '\n';
    resp_add(out, hdr, k);
}

void sg_resp_begin(struct evbuffer *out, int argc)
{
    put_header(out, '*', (uint64_t)argc);
}

void sg_resp_arg(struct evbuffer *out, const void *p, size_t len)
{
    put_header(out, '$', len);
    if (len > 0)
        resp_add(out, p, len);
    resp_add(out, "\r\n", 2);
}

#define SG_RESP_REF_MIN 4096

void sg_resp_arg_ref(struct evbuffer *out, const void *p, size_t len)
{
    if (len < SG_RESP_REF_MIN) {
        sg_resp_arg(out, p, len);
        return;
    }
    put_header(out, '$', len);
    if (evbuffer_add_reference(out, p, len, NULL, NULL) != 0)
        resp_failed = 1;
    resp_add(out, "\r\n", 2);
}

void sg_resp_arg_str(struct evbuffer *out, const char *s)
{
    sg_resp_arg(out, s, strlen(s));
}

void sg_resp_arg_u64(struct evbuffer *out, uint64_t v)
{
    char buf[24];
    size_t n = fmt_u64(buf, v);
    sg_resp_arg(out, buf, n);
}

static int has_prefix(const char *s, size_t len, const char *p)
{
    size_t pl = strlen(p);
    return len >= pl && memcmp(s, p, pl) == 0;
}

/* "MOVED 3999 127.0.0.1:6381" / "ASK 3999 127.0.0.1:6381" */
static int parse_redirect(const char *s, size_t len, struct sg_addr *addr)
{
    char buf[300];
    if (len >= sizeof(buf))
        return -1;
    memcpy(buf, s, len);
    buf[len] = '\0';
    char *sp1 = strchr(buf, ' ');
    char *sp2 = sp1 ? strchr(sp1 + 1, ' ') : NULL;
    if (sp2 == NULL)
        return -1;
    return sg_parse_hostport(sp2 + 1, addr);
}

int sg_resp_classify_error(const char *str, size_t len, struct sg_addr *addr)
{
    if (has_prefix(str, len, "MOVED "))
        return parse_redirect(str, len, addr) == 0 ? SG_RESP_ERR_MOVED : SG_RESP_ERR_OTHER;
    if (has_prefix(str, len, "ASK "))
        return parse_redirect(str, len, addr) == 0 ? SG_RESP_ERR_ASK : SG_RESP_ERR_OTHER;
    if (has_prefix(str, len, "TRYAGAIN") || has_prefix(str, len, "LOADING") ||
        has_prefix(str, len, "MASTERDOWN") || has_prefix(str, len, "BUSY "))
        return SG_RESP_ERR_TRYAGAIN;
    if (has_prefix(str, len, "CLUSTERDOWN"))
        return SG_RESP_ERR_CLUSTERDOWN;
    return SG_RESP_ERR_OTHER;
}

/* --- pre-scan of replies ---------------------------------------------------- */

enum { SCAN_TYPE = 0, SCAN_NUM, SCAN_NUM_LF, SCAN_LINE, SCAN_BULK, SCAN_FAILED };

void sg_resp_scan_init(struct sg_resp_scan *s, uint64_t max_elements, uint64_t max_bulk)
{
    memset(s, 0, sizeof(*s));
    s->max_elements = max_elements;
    s->max_bulk = max_bulk;
    s->state = SCAN_TYPE;
}

static int scan_fail(struct sg_resp_scan *s, const char **why, const char *reason)
{
    s->state = SCAN_FAILED;
    if (why != NULL)
        *why = reason;
    return -1;
}

/* A complete "*N" or "$N" header: check N, then expect what follows it. */
static int scan_header_done(struct sg_resp_scan *s, const char **why)
{
    if (s->digits == 0)
        return scan_fail(s, why, "header without a number");
    if (s->neg) {
        if (s->num != 1) /* only -1 (nil) is meaningful */
            return scan_fail(s, why, "negative length other than -1");
        s->state = SCAN_TYPE;
        return 0;
    }
    if (s->type == '*') {
        if (s->num > s->max_elements)
            return scan_fail(s, why, "aggregate header over the element limit");
        s->state = SCAN_TYPE;
        return 0;
    }
    if (s->num > s->max_bulk)
        return scan_fail(s, why, "bulk header over the size limit");
    s->skip = s->num + 2;
    s->state = SCAN_BULK;
    return 0;
}

int sg_resp_scan(struct sg_resp_scan *s, const void *buf, size_t len, const char **why)
{
    const uint8_t *p = buf, *end = p + len;
    if (s->state == SCAN_FAILED)
        return scan_fail(s, why, "stream already refused");
    while (p < end) {
        switch (s->state) {
        case SCAN_TYPE: {
            uint8_t c = *p++;
            s->type = c;
            if (c == '*' || c == '$') {
                s->num = 0;
                s->neg = 0;
                s->digits = 0;
                s->state = SCAN_NUM;
            } else if (c == '+' || c == '-' || c == ':') {
                s->line = 0;
                s->cr = 0;
                s->state = SCAN_LINE;
            } else {
                return scan_fail(s, why, "byte that starts no RESP2 reply");
            }
            break;
        }
        case SCAN_NUM: {
            uint8_t c = *p++;
            if (c == '-' && s->digits == 0 && !s->neg) {
                s->neg = 1;
            } else if (c >= '0' && c <= '9') {
                if (++s->digits > 19)
                    return scan_fail(s, why, "header number too long");
                s->num = s->num * 10 + (uint64_t)(c - '0');
            } else if (c == '\r') {
                s->state = SCAN_NUM_LF;
            } else {
                return scan_fail(s, why, "bad character in a header number");
            }
            break;
        }
        case SCAN_NUM_LF:
            if (*p++ != '\n')
                return scan_fail(s, why, "header not ended by CRLF");
            if (scan_header_done(s, why) != 0)
                return -1;
            break;
        case SCAN_LINE: {
            /* Up to and including the "\r\n" that ends the line. */
            const uint8_t *nl = memchr(p, '\n', (size_t)(end - p));
            size_t n = nl != NULL ? (size_t)(nl - p) + 1 : (size_t)(end - p);
            int ended = nl != NULL && ((n >= 2 && nl[-1] == '\r') || (n == 1 && s->cr));
            if ((uint64_t)s->line + n > SG_RESP_SCAN_MAX_LINE)
                return scan_fail(s, why, "status or error line too long");
            s->line += (uint32_t)n;
            s->cr = p[n - 1] == '\r';
            p += n;
            if (ended)
                s->state = SCAN_TYPE;
            break;
        }
        case SCAN_BULK: {
            size_t n = (size_t)(end - p);
            if ((uint64_t)n > s->skip)
                n = (size_t)s->skip;
            s->skip -= n;
            p += n;
            if (s->skip == 0)
                s->state = SCAN_TYPE;
            break;
        }
        default:
            return scan_fail(s, why, "stream already refused");
        }
    }
    return 0;
}

/* --- blocking client (topology manager only) ------------------------------ */

/* Topology replies (CLUSTER SHARDS/SLOTS/NODES) of even a large cluster
 * fit well within these. */
#define SG_RESP_TOPOLOGY_MAX_ELEMENTS (1u << 20)
#define SG_RESP_TOPOLOGY_MAX_BULK (64u << 20)

struct sg_resp_conn {
    int fd;
    SSL *ssl;
    int timeout_ms;
    redisReader *reader;
    struct sg_resp_scan scan;
};

static int wait_fd(int fd, short events, int timeout_ms)
{
    struct pollfd p = {.fd = fd, .events = events};
    int rc;
    do {
        rc = poll(&p, 1, timeout_ms);
    } while (rc < 0 && errno == EINTR);
    return rc > 0 ? 0 : -1;
}

struct sg_resp_conn *sg_resp_connect(const struct sg_addr *addr, SSL_CTX *tls, int timeout_ms,
                                     char *err, size_t errlen)
{
    char port[16];
    struct addrinfo hints = {.ai_socktype = SOCK_STREAM}, *res = NULL;
    snprintf(port, sizeof(port), "%d", addr->port);
    int gai = getaddrinfo(addr->host, port, &hints, &res);
    if (gai != 0) {
        snprintf(err, errlen, "%s:%d: %s", addr->host, addr->port, gai_strerror(gai));
        return NULL;
    }
    int fd = socket(res->ai_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0) {
        snprintf(err, errlen, "socket: %s", strerror(errno));
        freeaddrinfo(res);
        return NULL;
    }
    int rc = connect(fd, res->ai_addr, res->ai_addrlen);
    freeaddrinfo(res);
    if (rc < 0 && errno != EINPROGRESS) {
        snprintf(err, errlen, "%s:%d: connect: %s", addr->host, addr->port, strerror(errno));
        close(fd);
        return NULL;
    }
    if (rc < 0) {
        int soerr = 0;
        socklen_t sl = sizeof(soerr);
        if (wait_fd(fd, POLLOUT, timeout_ms) < 0) {
            snprintf(err, errlen, "%s:%d: connect timed out", addr->host, addr->port);
            close(fd);
            return NULL;
        }
        getsockopt(fd, SOL_SOCKET, SO_ERROR, &soerr, &sl);
        if (soerr != 0) {
            snprintf(err, errlen, "%s:%d: connect: %s", addr->host, addr->port, strerror(soerr));
            close(fd);
            return NULL;
        }
    }
    int one = 1;
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
    struct sg_resp_conn *c = sg_calloc(1, sizeof(*c));
    c->fd = fd;
    c->timeout_ms = timeout_ms;
    c->reader = redisReaderCreate();
    if (c->reader == NULL) {
        snprintf(err, errlen, "cannot create a reply reader");
        sg_resp_conn_free(c);
        return NULL;
    }
    sg_resp_scan_init(&c->scan, SG_RESP_TOPOLOGY_MAX_ELEMENTS, SG_RESP_TOPOLOGY_MAX_BULK);
    if (tls != NULL) {
        c->ssl = SSL_new(tls);
        if (c->ssl == NULL || SSL_set_fd(c->ssl, fd) != 1 ||
            sg_tls_set_peer_name(c->ssl, addr->host) != 0) {
            /* Never talk to a node in plaintext when TLS is configured. */
            ERR_clear_error();
            snprintf(err, errlen, "%s:%d: cannot set up TLS", addr->host, addr->port);
            sg_resp_conn_free(c);
            return NULL;
        }
        for (;;) {
            int r = SSL_connect(c->ssl);
            if (r == 1)
                break;
            int e = SSL_get_error(c->ssl, r);
            short ev = e == SSL_ERROR_WANT_READ ? POLLIN : e == SSL_ERROR_WANT_WRITE ? POLLOUT : 0;
            if (ev == 0 || wait_fd(fd, ev, timeout_ms) < 0) {
                long v = SSL_get_verify_result(c->ssl);
                snprintf(err, errlen, "%s:%d: TLS handshake failed%s%s", addr->host, addr->port,
                         v != X509_V_OK ? ": the node's certificate was refused: " : "",
                         v != X509_V_OK ? X509_verify_cert_error_string(v) : "");
                ERR_clear_error();
                sg_resp_conn_free(c);
                return NULL;
            }
        }
    }
    return c;
}

void sg_resp_conn_free(struct sg_resp_conn *c)
{
    if (c == NULL)
        return;
    if (c->ssl != NULL)
        SSL_free(c->ssl);
    if (c->fd >= 0)
        close(c->fd);
    if (c->reader != NULL)
        redisReaderFree(c->reader);
    free(c);
}

static ssize_t conn_io(struct sg_resp_conn *c, void *buf, size_t len, int writing)
{
    for (;;) {
        ssize_t n;
        short ev;
        if (c->ssl != NULL) {
            int r = writing ? SSL_write(c->ssl, buf, (int)len) : SSL_read(c->ssl, buf, (int)len);
            if (r > 0)
                return r;
            int e = SSL_get_error(c->ssl, r);
            if (e == SSL_ERROR_WANT_READ)
                ev = POLLIN;
            else if (e == SSL_ERROR_WANT_WRITE)
                ev = POLLOUT;
            else
                return -1;
        } else {
            n = writing ? write(c->fd, buf, len) : read(c->fd, buf, len);
            if (n > 0)
                return n;
            if (n == 0 || (errno != EAGAIN && errno != EINTR))
                return -1;
            ev = writing ? POLLOUT : POLLIN;
        }
        if (wait_fd(c->fd, ev, c->timeout_ms) < 0)
            return -1;
    }
}

redisReply *sg_resp_command(struct sg_resp_conn *c, int argc, const char **argv, const size_t *lens,
                            char *err, size_t errlen)
{
    char *cmd = NULL;
    int len = redisFormatCommandArgv(&cmd, argc, argv, lens);
    if (len < 0) {
        snprintf(err, errlen, "cannot format command");
        return NULL;
    }
    for (size_t off = 0; off < (size_t)len;) {
        ssize_t n = conn_io(c, cmd + off, (size_t)len - off, 1);
        if (n < 0) {
            snprintf(err, errlen, "write failed or timed out");
            free(cmd);
            return NULL;
        }
        off += (size_t)n;
    }
    free(cmd);
    for (;;) {
        void *reply = NULL;
        if (redisReaderGetReply(c->reader, &reply) != REDIS_OK) {
            snprintf(err, errlen, "protocol error: %s", c->reader->errstr);
            return NULL;
        }
        if (reply != NULL)
            return reply;
        char buf[16384];
        ssize_t n = conn_io(c, buf, sizeof(buf), 0);
        if (n < 0) {
            snprintf(err, errlen, "read failed or timed out");
            return NULL;
        }
        const char *why = NULL;
        if (sg_resp_scan(&c->scan, buf, (size_t)n, &why) != 0) {
            snprintf(err, errlen, "protocol error: %s", why);
            return NULL;
        }
        if (redisReaderFeed(c->reader, buf, (size_t)n) != REDIS_OK) {
            snprintf(err, errlen, "protocol error: reader refused input");
            return NULL;
        }
    }
}
