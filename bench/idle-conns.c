/*
 * slotgate-idle - open N client connections to slotgate, complete TLS and
 * Hello on each, then hold them idle.
 *
 * Used by bench/idle-conns.sh to measure the proxy's memory per idle
 * connection. Connections are opened at most --concurrency at a time so the
 * proxy's handshake timeout is never the limit. When every connection has
 * either completed Hello or failed, one line "ready connected=N failed=F"
 * goes to stdout; the program then holds the connections until SIGINT or
 * SIGTERM (or --hold seconds) and reports any that the server closed.
 * Exit status: 0 if all N connected, 1 otherwise.
 */
#include <errno.h>
#include <getopt.h>
#include <netdb.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/socket.h>

#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/bufferevent_ssl.h>
#include <event2/event.h>
#include <openssl/err.h>
#include <openssl/ssl.h>

#include "bench_tls.h"
#include "bench_wire.h"

struct idle_conn {
    struct bufferevent *bev;
    int state; /* 0 connecting, 1 held, 2 failed or closed */
};

struct idle_ctx {
    const char *host;
    int port;
    int tls;
    const char *cacert, *cert, *key;
    int total;
    int concurrency;
    int hold_secs;
    struct sockaddr_storage addr;
    socklen_t addrlen;
    SSL_CTX *ssl_ctx;
    struct event_base *base;
    struct idle_conn *conns;
    int next;    /* next connection to open */
    int pending; /* opened, not yet held or failed */
    int held;
    int failed;
    int closed_after; /* held connections the server closed later */
    int reported;
    char first_err[256];
};

static void idle_die(const char *fmt, ...) __attribute__((format(printf, 1, 2), noreturn));

static void idle_die(const char *fmt, ...)
{
    va_list ap;
    fputs("slotgate-idle: ", stderr);
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fputc('\n', stderr);
    exit(1);
}

static void idle_open_more(struct idle_ctx *x);

/* The one context; callbacks reach it through here (single-threaded). */
static struct idle_ctx *idle_global;

static void idle_check_ready(struct idle_ctx *x)
{
    if (x->reported || x->held + x->failed < x->total)
        return;
    x->reported = 1;
    printf("ready connected=%d failed=%d\n", x->held, x->failed);
    fflush(stdout);
    if (x->failed > 0)
        fprintf(stderr, "slotgate-idle: %d connections failed; first error: %s\n", x->failed,
                x->first_err);
}

static void idle_conn_fail(struct idle_ctx *x, struct idle_conn *c, const char *why)
{
    if (c->state == 1) {
        x->held--;
        x->closed_after++;
        fprintf(stderr, "slotgate-idle: held connection closed: %s (%d still held)\n", why,
                x->held);
    } else {
        x->pending--;
        x->failed++;
        if (x->first_err[0] == '\0')
            snprintf(x->first_err, sizeof x->first_err, "%s", why);
    }
    c->state = 2;
    bufferevent_free(c->bev);
    c->bev = NULL;
    idle_open_more(x);
    idle_check_ready(x);
}

static void idle_read_cb(struct bufferevent *bev, void *arg)
{
    struct idle_conn *c = arg;
    struct idle_ctx *x = idle_global;
    struct sg_bench_msg m;
    int rc;

    while ((rc = sg_bench_wire_take(bufferevent_get_input(bev), &m)) == 1) {
        if (m.kind == SG_BENCH_MSG_HELLO_REPLY && c->state == 0) {
            c->state = 1;
            x->pending--;
            x->held++;
            bufferevent_set_timeouts(bev, NULL, NULL);
            idle_open_more(x);
            idle_check_ready(x);
        } else if (m.kind == SG_BENCH_MSG_CONN_ERROR) {
            char buf[32], why[96];
            snprintf(why, sizeof why, "ConnectionError %s",
                     sg_bench_code_name(m.code, buf, sizeof buf));
            idle_conn_fail(x, c, why);
            return;
        }
    }
    if (rc < 0)
        idle_conn_fail(x, c, "malformed frame");
}

static void idle_event_cb(struct bufferevent *bev, short what, void *arg)
{
    struct idle_conn *c = arg;
    char why[256];

    if (what & BEV_EVENT_CONNECTED)
        return;
    sg_bench_bev_why(bev, what, why, sizeof why);
    idle_conn_fail(idle_global, c, why);
}

static void idle_open_one(struct idle_ctx *x, struct idle_conn *c)
{
    x->pending++;
    c->bev = sg_bench_bev_new(x->base, x->tls ? x->ssl_ctx : NULL, x->host);
    if (c->bev == NULL)
        idle_die("cannot create the connection (TLS session or bufferevent)");
    bufferevent_setcb(c->bev, idle_read_cb, NULL, idle_event_cb, c);
    struct timeval tmo = {10, 0};
    bufferevent_set_timeouts(c->bev, &tmo, &tmo);
    bufferevent_enable(c->bev, EV_READ | EV_WRITE);
    if (bufferevent_socket_connect(c->bev, (struct sockaddr *)&x->addr, (int)x->addrlen) != 0) {
        char why[128];
        snprintf(why, sizeof why, "connect: %s",
                 evutil_socket_error_to_string(EVUTIL_SOCKET_ERROR()));
        /* bufferevent_socket_connect may already have reported the error. */
        if (c->bev != NULL && c->state == 0)
            idle_conn_fail(x, c, why);
        return;
    }
    if (sg_bench_wire_put_hello(bufferevent_get_output(c->bev), "slotgate-idle") != 0)
        idle_die("cannot encode Hello");
}

/* Keep up to --concurrency connections in their handshake. */
static void idle_open_more(struct idle_ctx *x)
{
    while (x->next < x->total && x->pending < x->concurrency)
        idle_open_one(x, &x->conns[x->next++]);
}

static void idle_signal_cb(evutil_socket_t sig, short what, void *arg)
{
    event_base_loopbreak(arg);
}

static void idle_hold_done_cb(evutil_socket_t fd, short what, void *arg)
{
    event_base_loopbreak(arg);
}

/* RLIMIT_NOFILE must cover every connection; raise the hard limit too when
 * permitted (root), else fail early with a clear message. */
static void idle_raise_nofile(int total)
{
    struct rlimit rl;
    rlim_t want = (rlim_t)total + 64;
    if (getrlimit(RLIMIT_NOFILE, &rl) != 0)
        idle_die("getrlimit: %s", strerror(errno));
    if (rl.rlim_cur >= want)
        return;
    if (rl.rlim_max < want)
        rl.rlim_max = want;
    rl.rlim_cur = want;
    if (setrlimit(RLIMIT_NOFILE, &rl) != 0)
        idle_die("cannot raise open-file limit to %llu: %s (try ulimit -n)",
                 (unsigned long long)want, strerror(errno));
}

static void idle_usage(FILE *o)
{
    fputs("Usage: slotgate-idle [OPTIONS]\n"
          "  -h HOST            server host (default 127.0.0.1)\n"
          "  -p PORT            server port (default 7420)\n"
          "  -n CONNS           connections to open and hold (default 10000)\n"
          "  --concurrency N    handshakes in progress at once (default 200)\n"
          "  --hold SECS        exit after holding SECS seconds (default: until SIGTERM)\n"
          "  --tls, --cacert FILE, --cert FILE, --key FILE   as slotgate-bench\n",
          o);
}

int main(int argc, char **argv)
{
    enum { O_TLS = 256, O_CACERT, O_CERT, O_KEY, O_CONC, O_HOLD, O_HELP };
    static const struct option longopts[] = {
        {"tls", no_argument, NULL, O_TLS},
        {"cacert", required_argument, NULL, O_CACERT},
        {"cert", required_argument, NULL, O_CERT},
        {"key", required_argument, NULL, O_KEY},
        {"concurrency", required_argument, NULL, O_CONC},
        {"hold", required_argument, NULL, O_HOLD},
        {"help", no_argument, NULL, O_HELP},
        {NULL, 0, NULL, 0},
    };
    static struct idle_ctx x = {
        .host = "127.0.0.1", .port = 7420, .total = 10000, .concurrency = 200};
    int ch;

    idle_global = &x;
    signal(SIGPIPE, SIG_IGN);
    while ((ch = getopt_long(argc, argv, "h:p:n:", longopts, NULL)) != -1) {
        switch (ch) {
        case 'h':
            x.host = optarg;
            break;
        case 'p':
            x.port = atoi(optarg);
            break;
        case 'n':
            x.total = atoi(optarg);
            break;
        case O_TLS:
            x.tls = 1;
            break;
        case O_CACERT:
            x.cacert = optarg;
            break;
        case O_CERT:
            x.cert = optarg;
            break;
        case O_KEY:
            x.key = optarg;
            break;
        case O_CONC:
            x.concurrency = atoi(optarg);
            break;
        case O_HOLD:
            x.hold_secs = atoi(optarg);
            break;
        case O_HELP:
            idle_usage(stdout);
            return 0;
        default:
            idle_usage(stderr);
            return 2;
        }
    }
    if (x.total < 1 || x.concurrency < 1 || x.port < 1 || x.port > 65535 || x.hold_secs < 0)
        idle_die("invalid arguments");
    idle_raise_nofile(x.total);

    struct addrinfo hints = {.ai_family = AF_UNSPEC, .ai_socktype = SOCK_STREAM}, *res;
    char port[16];
    snprintf(port, sizeof port, "%d", x.port);
    int rc = getaddrinfo(x.host, port, &hints, &res);
    if (rc != 0)
        idle_die("cannot resolve %s: %s", x.host, gai_strerror(rc));
    memcpy(&x.addr, res->ai_addr, res->ai_addrlen);
    x.addrlen = res->ai_addrlen;
    freeaddrinfo(res);

    if (x.tls) {
        char err[512];
        x.ssl_ctx = sg_bench_tls_ctx_new(x.cacert, x.cert, x.key, err, sizeof err);
        if (x.ssl_ctx == NULL)
            idle_die("%s", err);
        /* Idle connections need no record buffers on this side either. */
        SSL_CTX_set_mode(x.ssl_ctx, SSL_MODE_RELEASE_BUFFERS);
    }
    x.base = event_base_new();
    if (x.base == NULL)
        idle_die("cannot create event base");
    x.conns = calloc((size_t)x.total, sizeof *x.conns);
    if (x.conns == NULL)
        idle_die("out of memory");

    struct event *sigint = evsignal_new(x.base, SIGINT, idle_signal_cb, x.base);
    struct event *sigterm = evsignal_new(x.base, SIGTERM, idle_signal_cb, x.base);
    event_add(sigint, NULL);
    event_add(sigterm, NULL);
    struct event *hold = NULL;
    if (x.hold_secs > 0) {
        struct timeval tv = {x.hold_secs, 0};
        hold = evtimer_new(x.base, idle_hold_done_cb, x.base);
        evtimer_add(hold, &tv);
    }

    idle_open_more(&x);
    event_base_dispatch(x.base);

    if (!x.reported)
        fprintf(stderr, "slotgate-idle: stopped with %d held, %d failed, %d pending\n", x.held,
                x.failed, x.pending);
    else
        fprintf(stderr,
                "slotgate-idle: releasing %d connections (%d closed by server while held)\n",
                x.held, x.closed_after);
    for (int i = 0; i < x.total; i++)
        if (x.conns[i].bev != NULL)
            bufferevent_free(x.conns[i].bev);
    free(x.conns);
    event_free(sigint);
    event_free(sigterm);
    if (hold)
        event_free(hold);
    event_base_free(x.base);
    SSL_CTX_free(x.ssl_ctx);
    return x.held == x.total && x.closed_after == 0 ? 0 : 1;
}
