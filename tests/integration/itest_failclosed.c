/*
 * itest_failclosed - fail-closed TLS and replies bounded before allocation
 * (issue 10, sections 4 and 5), against real processes:
 *  - the slotgate-fault binary (the proxy with proxy/fault.h's injection
 *    points live) made to fail SSL_new for a client: the connection is
 *    closed, never served in plaintext; and for a link to Redis: the link
 *    stays down, requests get a typed error, nothing is sent in plaintext;
 *    and made to fail formatting a command: that request gets INTERNAL and
 *    nothing of the command reaches the link;
 *  - a real redis-server with TLS (tls-port): links verify the node's
 *    certificate against the address dialled, so 127.0.0.1 (in the
 *    certificate) is served and 127.0.0.2 (same server, not in it) is
 *    refused;
 *  - one deliberately malicious fake "Redis" node (a thread of this test,
 *    on loopback; the only stand-in for Redis in the suite, because no real
 *    Redis sends these bytes): it answers data commands with an array
 *    header claiming two billion elements or a bulk header claiming 4 GiB.
 *    The proxy resets the link with a logged protocol error, answers the
 *    client with a typed error, and does not grow.
 * Misbehaving or raw clients are rawtls.c; every process started here is
 * stopped here.
 */
#include <errno.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdatomic.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <arpa/inet.h>
#include <cmocka.h>

#include "harness.h"
#include "rawtls.h"

static struct h_env env;

static int setup(void **state)
{
    struct h_opts o = {.plain = 1, .workers = 1};
    unsetenv("SG_FAULT"); /* only the proxies spawn() is told to fault */
    return h_env_start(&env, "itest_failclosed", &o);
}

static void stop(pid_t pid);

/* Every process spawn() started and stop() has not reaped: a failed
 * assertion skips the rest of its test, so teardown stops what is left. */
static pid_t started[32];

static int teardown(void **state)
{
    for (int i = 0; i < 32; i++)
        stop(started[i]);
    return h_env_stop(&env);
}

/* ---- processes started by this file -------------------------------------- */

/* Start argv (h_spawn) with SG_FAULT=fault (fault NULL: without SG_FAULT,
 * unset for the whole test in setup), and remember it for teardown. */
static pid_t spawn(const char *const argv[], const char *log, const char *fault)
{
    static char fault_env[64];
    if (fault != NULL)
        snprintf(fault_env, sizeof(fault_env), "SG_FAULT=%s", fault);
    pid_t pid = h_spawn(argv, log, 0, fault != NULL ? fault_env : NULL);
    for (int i = 0; pid > 0 && i < 32; i++)
        if (started[i] == 0) {
            started[i] = pid;
            break;
        }
    return pid;
}

static void stop(pid_t pid)
{
    if (pid <= 0)
        return;
    for (int i = 0; i < 32; i++)
        if (started[i] == pid)
            started[i] = 0;
    kill(pid, SIGTERM);
    int64_t deadline = h_now_ms() + 10000;
    int st;
    while (waitpid(pid, &st, WNOHANG) == 0) {
        if (h_now_ms() > deadline) {
            kill(pid, SIGKILL);
            waitpid(pid, &st, 0);
            return;
        }
        h_poll_pause();
    }
}

static int wait_tcp(int port)
{
    int64_t deadline = h_now_ms() + 30000;
    while (h_now_ms() < deadline) {
        int fd = rt_tcp_connect(port);
        if (fd >= 0) {
            close(fd);
            return 0;
        }
        h_poll_pause();
    }
    return -1;
}

struct proxy {
    pid_t pid;
    int port;
    char config[H_PATH + 64];
    char log[H_PATH + 64];
};

/* Extra lines under redis: in the next proxies' configs (indented 2), or NULL. */
static const char *redis_extra;

/*
 * Write a config for a proxy of our own towards seed (host:port) and start
 * bin with it. redis_tls: verify the node with the dev CA.
 */
static void proxy_start_opt(struct proxy *p, const char *name, const char *bin, const char *fault,
                            const char *seed, int redis_tls, int wait)
{
    p->port = h_free_port();
    snprintf(p->config, sizeof(p->config), "%s/%s.yaml", env.scratch, name);
    snprintf(p->log, sizeof(p->log), "%s/%s.log", env.scratch, name);
    FILE *f = fopen(p->config, "w");
    assert_non_null(f);
    fprintf(f,
            "listen:\n  address: 127.0.0.1\n  port: %d\n  workers: 1\n"
            "tls:\n  cert: \"%s/server.pem\"\n  key: \"%s/server-key.pem\"\n"
            "limits:\n  request_deadline_ms: 300\n"
            "redis:\n  seeds:\n    - \"%s\"\n  connect_timeout_ms: 500\n"
            "  topology_refresh_ms: 1000\n",
            p->port, env.certs, env.certs, seed);
    if (redis_tls)
        fprintf(f, "  tls:\n    enabled: true\n    ca: \"%s/ca.pem\"\n", env.certs);
    if (redis_extra != NULL)
        fprintf(f, "%s", redis_extra);
    fprintf(f, "log:\n  level: debug\n");
    assert_int_equal(fclose(f), 0);
    const char *argv[] = {bin, "--config", p->config, NULL};
    p->pid = spawn(argv, p->log, fault);
    assert_true(p->pid > 0);
    if (wait)
        assert_int_equal(wait_tcp(p->port), 0);
}

/* The same, waiting until the proxy listens (it first waits for Redis). */
static void proxy_start(struct proxy *p, const char *name, const char *bin, const char *fault,
                        const char *seed, int redis_tls)
{
    proxy_start_opt(p, name, bin, fault, seed, redis_tls, 1);
}

/* One GET on a fresh raw connection: its code, or -1 if no Response came. */
static int get_code(const struct proxy *p, const char *key)
{
    struct rt_conn c;
    if (rt_connect(&c, p->port, env.ca_file) != 0)
        return -1;
    int code = -1;
    if (rt_handshake(&c) == 0 && rt_send_get(&c, 1, key) == 0) {
        Slotgate__V1__ServerMessage *m = rt_read(&c);
        if (m != NULL && m->msg_case == SLOTGATE__V1__SERVER_MESSAGE__MSG_RESPONSE)
            code = m->response->code;
        if (m != NULL)
            slotgate__v1__server_message__free_unpacked(m, NULL);
    }
    rt_close(&c);
    return code;
}

/* GET until it is answered NOT_FOUND (the key does not exist): 0, or -1. */
static int wait_served(const struct proxy *p)
{
    int64_t deadline = h_now_ms() + 30000;
    while (h_now_ms() < deadline) {
        if (get_code(p, "itest-failclosed-missing") == SLOTGATE__V1__CODE__CODE_NOT_FOUND)
            return 0;
        h_poll_pause();
    }
    return -1;
}

/* ---- SSL_new failure ------------------------------------------------------ */

static void test_client_ssl_new_failure_closes_the_connection(void **state)
{
    char seed[64];
    snprintf(seed, sizeof(seed), "127.0.0.1:%d", env.nodes[0]);
    struct proxy p;
    proxy_start(&p, "fault-client", SG_SLOTGATE_FAULT_BIN, "client_ssl_new", seed, 0);
    /* A TLS client gets no handshake... */
    struct rt_conn c;
    assert_int_equal(rt_connect(&c, p.port, env.ca_file), -1);
    assert_int_equal(h_wait_lines(p.log, "SSL_new failed; closed", 1, 10000), 0);
    /* ...and a plaintext Hello gets no HelloReply: the socket is closed. */
    int fd = rt_tcp_connect(p.port);
    assert_true(fd >= 0);
    static const uint8_t hello[] = {0, 0, 0, 4, 0x0a, 0x02, 0x08, 0x01};
    ssize_t w = write(fd, hello, sizeof(hello));
    (void)w;
    uint8_t buf[64];
    ssize_t n = read(fd, buf, sizeof(buf));
    assert_true(n <= 0);
    close(fd);
    assert_true(h_count_lines(p.log, "SSL_new failed; closed") >= 2);
    stop(p.pid);
}

/*
 * A command that cannot be formatted (an append to the buffer failed) never
 * reaches the link: the request gets INTERNAL, the link's replies stay
 * aligned (the PING answered locally and the next GETs are all answered).
 */
static void test_format_failure_fails_the_request_only(void **state)
{
    char seed[64];
    snprintf(seed, sizeof(seed), "127.0.0.1:%d", env.nodes[0]);
    struct proxy p;
    proxy_start(&p, "fault-format", SG_SLOTGATE_FAULT_BIN, "format", seed, 0);
    for (int i = 0; i < 3; i++)
        assert_int_equal(get_code(&p, "itest-failclosed-missing"),
                         SLOTGATE__V1__CODE__CODE_INTERNAL);
    assert_true(h_count_lines(p.log, "cannot format a command") >= 3);
    assert_int_equal(h_count_lines(p.log, "reset:"), 0); /* no link was reset */
    stop(p.pid);
}

/* redis-server serving TLS only, on 127.0.0.1 and 127.0.0.2. */
static pid_t tls_redis_start_opt(int *port, int cluster);

static pid_t tls_redis_start(int *port)
{
    return tls_redis_start_opt(port, 0);
}

/*
 * cluster: a one-node TLS cluster owning every slot that announces itself
 * as 127.0.0.2, so a proxy seeded with 127.0.0.1 (verifiable) is told to
 * open its shard link to 127.0.0.2 (not in the certificate).
 */
static pid_t tls_redis_start_opt(int *port, int cluster)
{
    *port = h_free_port();
    char portstr[16], dir[H_PATH + 32], log[H_PATH + 32], cert[H_PATH + 32], key[H_PATH + 32],
        ca[H_PATH + 32];
    snprintf(portstr, sizeof(portstr), "%d", *port);
    snprintf(dir, sizeof(dir), "%s", env.scratch);
    snprintf(log, sizeof(log), "%s/redis-tls.log", env.scratch);
    snprintf(cert, sizeof(cert), "%s/server.pem", env.certs);
    snprintf(key, sizeof(key), "%s/server-key.pem", env.certs);
    snprintf(ca, sizeof(ca), "%s/ca.pem", env.certs);
    char nodes[H_PATH + 64], cport[16];
    snprintf(cport, sizeof(cport), "%d", h_free_port()); /* not port + 10000 */
    snprintf(nodes, sizeof(nodes), "nodes-tls-%d.conf", *port);
    const char *argv[] = {"/usr/bin/redis-server", "--port", "0", "--tls-port", portstr, "--bind",
                          "127.0.0.1", "127.0.0.2", "--tls-cert-file", cert, "--tls-key-file", key,
                          "--tls-ca-cert-file", ca, "--tls-auth-clients", "no", "--save", "",
                          "--appendonly", "no", "--dir", dir, "--daemonize", "no",
                          /* a plain server: NULL ends argv here */
                          cluster ? "--cluster-enabled" : NULL, "yes", "--tls-cluster", "yes",
                          "--cluster-announce-ip", "127.0.0.2", "--cluster-config-file", nodes,
                          "--cluster-port", cport, NULL};
    pid_t pid = spawn(argv, log, NULL);
    if (pid > 0 && wait_tcp(*port) != 0) {
        stop(pid);
        return -1;
    }
    if (pid > 0 && cluster &&
        h_sh(&env, "redis-cli --tls --cacert '%s' -h 127.0.0.1 -p %d CLUSTER ADDSLOTSRANGE 0 16383",
             ca, *port) != 0) {
        stop(pid);
        return -1;
    }
    return pid;
}

static void test_redis_link_ssl_new_failure_never_plaintext(void **state)
{
    int port;
    pid_t redis = tls_redis_start(&port);
    assert_true(redis > 0);
    char seed[64];
    snprintf(seed, sizeof(seed), "127.0.0.1:%d", port);
    /* Control: the same proxy without the fault is served over TLS. */
    struct proxy ok;
    proxy_start(&ok, "tls-link-ok", SG_SLOTGATE_BIN, NULL, seed, 1);
    assert_int_equal(wait_served(&ok), 0);
    stop(ok.pid);

    /* Every connection to Redis (the topology manager's too) is a shard
     * link: with SSL_new failing, none comes up, so the proxy never learns
     * the topology and never serves; it keeps trying, never in plaintext. */
    struct proxy p;
    proxy_start_opt(&p, "fault-link", SG_SLOTGATE_FAULT_BIN, "redis_ssl_new", seed, 1, 0);
    assert_int_equal(h_wait_lines(p.log, "SSL_new failed; not connecting", 3, 20000), 0);
    assert_int_equal(h_wait_lines(p.log, "waiting for Redis", 1, 20000), 0);
    char up[96];
    snprintf(up, sizeof(up), "link %s up", seed);
    assert_int_equal(h_count_lines(p.log, up), 0);
    assert_true(h_count_lines(ok.log, up) >= 1);
    assert_int_equal(kill(p.pid, 0), 0); /* still running, still trying */
    stop(p.pid);
    stop(redis);
}

static void test_topology_client_verifies_the_node_address(void **state)
{
    int port;
    pid_t redis = tls_redis_start(&port);
    assert_true(redis > 0);
    char seed[64];
    /* Same server, reached at an address its certificate does not name:
     * discovery is refused, so the proxy never starts serving. */
    snprintf(seed, sizeof(seed), "127.0.0.2:%d", port);
    struct proxy p;
    proxy_start_opt(&p, "tls-wrong-seed", SG_SLOTGATE_BIN, NULL, seed, 1, 0);
    assert_int_equal(h_wait_lines(p.log, "IP address mismatch", 1, 20000), 0);
    assert_true(rt_tcp_connect(p.port) < 0);
    stop(p.pid);
    stop(redis);
}

static void test_redis_link_verifies_the_node_address(void **state)
{
    int port;
    pid_t redis = tls_redis_start_opt(&port, 1);
    assert_true(redis > 0);
    char seed[64], link[96];
    snprintf(seed, sizeof(seed), "127.0.0.1:%d", port);
    struct proxy p;
    proxy_start(&p, "tls-wrong-link", SG_SLOTGATE_BIN, NULL, seed, 1);
    for (int i = 0; i < 3; i++) {
        int code = get_code(&p, "itest-failclosed-missing");
        assert_true(code != SLOTGATE__V1__CODE__CODE_OK &&
                    code != SLOTGATE__V1__CODE__CODE_NOT_FOUND);
    }
    snprintf(link, sizeof(link),
             "link 127.0.0.2:%d reset: TLS: the node's certificate was "
             "refused: IP address mismatch",
             port);
    assert_int_equal(h_wait_lines(p.log, link, 1, 20000), 0);
    snprintf(link, sizeof(link), "link 127.0.0.2:%d up", port);
    assert_int_equal(h_count_lines(p.log, link), 0);
    stop(p.pid);
    stop(redis);
}

/* ---- a malicious node ------------------------------------------------------ */

struct fake_node {
    int lfd, port;
    pthread_t thread;
    _Atomic int stop;          /* set by the test thread, read by the fake node's */
    _Atomic int data_commands; /* counted across connections */
    _Atomic int conns;         /* connection threads still running */
};

/* Length of the first complete RESP command in buf, 0 if incomplete. */
static size_t resp_command_len(const char *buf, size_t len, char *name, size_t namelen)
{
    const char *p = buf, *end = buf + len;
    const char *nl = memchr(p, '\n', (size_t)(end - p));
    if (nl == NULL || *p != '*')
        return 0;
    long argc = strtol(p + 1, NULL, 10);
    p = nl + 1;
    name[0] = '\0';
    for (long i = 0; i < argc; i++) {
        nl = memchr(p, '\n', (size_t)(end - p));
        if (nl == NULL)
            return 0;
        long alen = strtol(p + 1, NULL, 10);
        p = nl + 1;
        if (end - p < alen + 2)
            return 0;
        if (i == 0)
            snprintf(name, namelen, "%.*s",
                     (int)(alen < (long)namelen - 1 ? alen : (long)namelen - 1), p);
        p += alen + 2;
    }
    return (size_t)(p - buf);
}

static void fake_serve(struct fake_node *n, int fd)
{
    char buf[65536];
    size_t have = 0;
    for (;;) {
        ssize_t r = read(fd, buf + have, sizeof(buf) - have);
        if (r <= 0 || n->stop)
            return;
        have += (size_t)r;
        char name[32];
        size_t used;
        while ((used = resp_command_len(buf, have, name, sizeof(name))) > 0) {
            const char *reply;
            if (strcasecmp(name, "CLUSTER") == 0)
                reply = "-ERR This instance has cluster support disabled\r\n";
            else if (strcasecmp(name, "PING") == 0)
                reply = "+PONG\r\n";
            else if (n->data_commands++ % 2 == 0)
                reply = "*2147483647\r\n"; /* two billion elements: 16 GiB of pointers */
            else
                reply = "$4294967296\r\n"; /* a 4 GiB string */
            if (write(fd, reply, strlen(reply)) < 0)
                return;
            memmove(buf, buf + used, have - used);
            have -= used;
        }
        if (have == sizeof(buf))
            return;
    }
}

struct fake_conn {
    struct fake_node *n;
    int fd;
};

/* One connection (the proxy keeps its topology link and its data link
 * open at once, like a real node's clients). */
static void *fake_conn_main(void *arg)
{
    struct fake_conn *c = arg;
    for (;;) {
        fake_serve(c->n, c->fd);
        if (c->n->stop || errno != EAGAIN)
            break;
    }
    close(c->fd);
    c->n->conns--;
    free(c);
    return NULL;
}

static void *fake_main(void *arg)
{
    struct fake_node *n = arg;
    while (!n->stop) {
        int fd = accept(n->lfd, NULL, NULL);
        if (fd < 0)
            continue;
        struct timeval tv = {0, 200000};
        setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
        struct fake_conn *c = malloc(sizeof(*c));
        c->n = n;
        c->fd = fd;
        n->conns++;
        pthread_t t;
        if (pthread_create(&t, NULL, fake_conn_main, c) != 0) {
            n->conns--;
            close(fd);
            free(c);
            continue;
        }
        pthread_detach(t);
    }
    return NULL;
}

static void test_hostile_node_headers_reset_the_link(void **state)
{
    static struct fake_node n;
    memset(&n, 0, sizeof(n));
    n.lfd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    assert_true(n.lfd >= 0);
    int one = 1;
    setsockopt(n.lfd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
    struct sockaddr_in sa = {.sin_family = AF_INET};
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    assert_int_equal(bind(n.lfd, (struct sockaddr *)&sa, sizeof(sa)), 0);
    socklen_t sl = sizeof(sa);
    getsockname(n.lfd, (struct sockaddr *)&sa, &sl);
    n.port = ntohs(sa.sin_port);
    assert_int_equal(listen(n.lfd, 16), 0);
    struct timeval tv = {0, 200000};
    setsockopt(n.lfd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
    assert_int_equal(pthread_create(&n.thread, NULL, fake_main, &n), 0);

    char seed[64];
    snprintf(seed, sizeof(seed), "127.0.0.1:%d", n.port);
    struct proxy p;
    proxy_start(&p, "hostile-node", SG_SLOTGATE_BIN, NULL, seed, 0);
    long base = rt_rss_kib((int)p.pid);
    for (int i = 0; i < 4; i++) {
        int code = get_code(&p, "itest-failclosed-key");
        assert_true(code == SLOTGATE__V1__CODE__CODE_SHARD_UNAVAILABLE ||
                    code == SLOTGATE__V1__CODE__CODE_TIMEOUT);
    }
    assert_int_equal(
        h_wait_lines(p.log, "protocol error from Redis: aggregate header over the element limit", 1,
                     10000),
        0);
    assert_int_equal(
        h_wait_lines(p.log, "protocol error from Redis: bulk header over the size limit", 1, 10000),
        0);
    long after = rt_rss_kib((int)p.pid);
    h_log("RSS %ld KiB before, %ld KiB after %d hostile replies", base, after, n.data_commands);
    assert_true(after - base < 16 * 1024);
    assert_int_equal(kill(p.pid, 0), 0); /* still running */
    stop(p.pid);
    n.stop = 1;
    pthread_join(n.thread, NULL);
    for (int i = 0; i < 50 && n.conns > 0; i++) /* each ends within its 200 ms read timeout */
        h_poll_pause();
    close(n.lfd);
}

/* ---- one AUTH path ---------------------------------------------------------- */

/*
 * Every connection to Redis is set up by shardlink.c, the topology
 * manager's too: with the right password discovery and the data link both
 * authenticate (a GET is served); with a wrong one the node's refusal is
 * logged and nothing is served, nor tried without AUTH.
 */
static void test_auth_is_one_path(void **state)
{
    int port = h_free_port();
    char portstr[16], log[H_PATH + 32], seed[64];
    snprintf(portstr, sizeof(portstr), "%d", port);
    snprintf(log, sizeof(log), "%s/redis-auth.log", env.scratch);
    const char *argv[] = {"/usr/bin/redis-server",
                          "--port",
                          portstr,
                          "--bind",
                          "127.0.0.1",
                          "--requirepass",
                          "itest-s3cret",
                          "--save",
                          "",
                          "--appendonly",
                          "no",
                          "--dir",
                          env.scratch,
                          "--daemonize",
                          "no",
                          NULL};
    pid_t redis = spawn(argv, log, NULL);
    assert_true(redis > 0);
    assert_int_equal(wait_tcp(port), 0);
    snprintf(seed, sizeof(seed), "127.0.0.1:%d", port);

    redis_extra = "  password: itest-s3cret\n";
    struct proxy ok;
    proxy_start(&ok, "auth-ok", SG_SLOTGATE_BIN, NULL, seed, 0);
    assert_int_equal(wait_served(&ok), 0);
    assert_int_equal(h_count_lines(ok.log, "AUTH failed"), 0);
    stop(ok.pid);

    redis_extra = "  password: not-the-password\n";
    struct proxy bad;
    proxy_start_opt(&bad, "auth-bad", SG_SLOTGATE_BIN, NULL, seed, 0, 0);
    assert_int_equal(h_wait_lines(bad.log, "AUTH failed: WRONGPASS", 1, 20000), 0);
    assert_int_equal(h_wait_lines(bad.log, "waiting for Redis", 1, 20000), 0);
    assert_int_equal(get_code(&bad, "itest-failclosed-missing"), -1); /* not listening */
    stop(bad.pid);
    redis_extra = NULL;
    stop(redis);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_client_ssl_new_failure_closes_the_connection),
        cmocka_unit_test(test_redis_link_ssl_new_failure_never_plaintext),
        cmocka_unit_test(test_format_failure_fails_the_request_only),
        cmocka_unit_test(test_topology_client_verifies_the_node_address),
        cmocka_unit_test(test_redis_link_verifies_the_node_address),
        cmocka_unit_test(test_hostile_node_headers_reset_the_link),
        cmocka_unit_test(test_auth_is_one_path),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
