/*
 * itest_haproxy - Debian's haproxy, configured from deploy/haproxy/haproxy.cfg
 * (only the bind and server addresses, and a stats socket, substituted), in
 * front of two slotgate instances on a local Redis Cluster. Checks:
 *   - slotgate sees the client's own address through HAProxy (PROXY v2):
 *     its log names the client's source address and port, both for a raw
 *     connection from 127.0.0.77 and for the C client's own socket;
 *   - rolling restart under load: each instance in turn gets SIGTERM,
 *     /readyz turns 503 while it drains, HAProxy marks it DOWN and sends it
 *     no new connection, it exits 0 and is started again, and the load loses
 *     nothing: requests answered SHUTTING_DOWN are resent by the load loop
 *     on a new connection (PROTOCOL.md section 12) and succeed, no request
 *     ends with an unknown outcome, and every acknowledged write reads back;
 *   - SIGKILL of one instance: HAProxy marks it DOWN (the time is logged
 *     against its check interval) and the clients' retries succeed through
 *     the other.
 * Every wait is on a condition, bounded; nothing asserts a duration.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <pthread.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cmocka.h>

#include "harness.h"

static struct {
    pid_t pid;
    int port; /* the frontend */
    char cfg[H_PATH], log[H_PATH], sock[H_PATH];
    int check_inter_ms, fall;
} HA;

/* ---- HAProxy ------------------------------------------------------------- */

/*
 * The test's haproxy.cfg: the deploy file line by line, minus what needs
 * root or a raised file limit (chroot, user, group, the system stats
 * socket, the maxconn sizes), with the bind address and the server list
 * replaced by this test's ports.
 */
static int write_haproxy_cfg(void)
{
    char path[H_PATH];
    snprintf(path, sizeof path, "%s/deploy/haproxy/haproxy.cfg", SG_SOURCE_DIR);
    FILE *in = fopen(path, "r");
    FILE *out = fopen(HA.cfg, "w");
    if (in == NULL || out == NULL)
        return -1;
    char line[1024];
    int servers_written = 0, have[4] = {0};
    while (fgets(line, sizeof line, in)) {
        const char *t = line + strspn(line, " \t");
        if (strncmp(t, "chroot ", 7) == 0 || strncmp(t, "user ", 5) == 0 ||
            strncmp(t, "group ", 6) == 0 || strncmp(t, "stats socket ", 13) == 0 ||
            strncmp(t, "daemon", 6) == 0)
            continue;
        if (strncmp(t, "balance leastconn", 17) == 0)
            have[0] = 1;
        if (strncmp(t, "mode tcp", 8) == 0)
            have[1] = 1;
        if (strncmp(t, "option httpchk GET /readyz", 26) == 0)
            have[2] = 1;
        if (strncmp(t, "default-server ", 15) == 0) {
            have[3] = strstr(t, "send-proxy-v2") != NULL;
            const char *p = strstr(t, " inter ");
            if (p != NULL) {
                char *end;
                long v = strtol(p + 7, &end, 10);
                HA.check_inter_ms = (int)(strncmp(end, "ms", 2) == 0 ? v : v * 1000);
            }
            p = strstr(t, " fall ");
            HA.fall = p ? atoi(p + 6) : 3;
        }
        if (strncmp(t, "maxconn ", 8) == 0) {
            /* The deploy file's process limit needs a raised RLIMIT_NOFILE. */
            fprintf(out, "    maxconn 2000\n");
            continue;
        }
        if (strncmp(t, "bind ", 5) == 0) {
            fprintf(out, "    bind 127.0.0.1:%d\n", HA.port);
            continue;
        }
        if (strncmp(t, "server ", 7) == 0) {
            if (!servers_written)
                for (int i = 0; i < 2; i++)
                    fprintf(out, "    server sg%d 127.0.0.1:%d port %d\n", i + 1, H.proxies[i].port,
                            H.proxies[i].admin_port);
            servers_written = 1;
            continue;
        }
        fputs(line, out);
        if (strncmp(t, "global", 6) == 0)
            fprintf(out, "    stats socket %s mode 600 level admin\n", HA.sock);
    }
    fclose(in);
    fclose(out);
    if (!(have[0] && have[1] && have[2] && have[3] && servers_written)) {
        h_log("deploy/haproxy/haproxy.cfg lacks mode tcp, balance leastconn, "
              "option httpchk GET /readyz or send-proxy-v2");
        return -1;
    }
    return 0;
}

/* Send cmd to the stats socket; the answer into out. 0 or -1. */
static int haproxy_cmd(const char *cmd, char *out, size_t len)
{
    int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    struct sockaddr_un a = {.sun_family = AF_UNIX};
    size_t pl = strlen(HA.sock);
    if (pl >= sizeof a.sun_path) {
        if (fd >= 0)
            close(fd);
        return -1;
    }
    memcpy(a.sun_path, HA.sock, pl + 1);
    if (fd < 0 || connect(fd, (struct sockaddr *)&a, sizeof a) != 0) {
        if (fd >= 0)
            close(fd);
        return -1;
    }
    if (write(fd, cmd, strlen(cmd)) != (ssize_t)strlen(cmd)) {
        close(fd);
        return -1;
    }
    size_t have = 0;
    ssize_t n;
    while (have < len - 1 && (n = read(fd, out + have, len - 1 - have)) > 0)
        have += (size_t)n;
    out[have] = '\0';
    close(fd);
    return 0;
}

/* Field `field` (e.g. "status", "stot") of server sv in "show stat". */
static int server_field(const char *sv, const char *field, char *val, size_t len)
{
    static char buf[65536];
    if (haproxy_cmd("show stat\n", buf, sizeof buf) != 0)
        return -1;
    int col = -1, i = 0;
    char *save = NULL, *lines = NULL;
    char *hdr = strtok_r(buf, "\n", &lines);
    if (hdr == NULL || strncmp(hdr, "# ", 2) != 0)
        return -1;
    for (char *f = strtok_r(hdr + 2, ",", &save); f; f = strtok_r(NULL, ",", &save), i++)
        if (strcmp(f, field) == 0)
            col = i;
    if (col < 0)
        return -1;
    for (char *l = strtok_r(NULL, "\n", &lines); l; l = strtok_r(NULL, "\n", &lines)) {
        /* "slotgate,sgN,..." : split keeping empty fields */
        char *p = l;
        int c = 0;
        const char *cols[128];
        cols[c++] = p;
        while ((p = strchr(p, ',')) != NULL && c < 128) {
            *p++ = '\0';
            cols[c++] = p;
        }
        if (c > col && strcmp(cols[0], "slotgate") == 0 && strcmp(cols[1], sv) == 0) {
            snprintf(val, len, "%s", cols[col]);
            return 0;
        }
    }
    return -1;
}

/* Wait (bounded) until server sv's status starts with want ("UP", "DOWN"). */
static int64_t wait_status(const char *sv, const char *want, int timeout_ms)
{
    int64_t t0 = h_now_ms();
    char st[64] = "";
    while (h_now_ms() - t0 < timeout_ms) {
        if (server_field(sv, "status", st, sizeof st) == 0 && strncmp(st, want, strlen(want)) == 0)
            return h_now_ms() - t0;
        h_poll_pause();
    }
    fail_msg("HAProxy did not mark %s %s within %d ms (status '%s')", sv, want, timeout_ms, st);
    return -1;
}

static long long server_stot(const char *sv)
{
    char v[64];
    assert_int_equal(server_field(sv, "stot", v, sizeof v), 0);
    return atoll(v);
}

static int haproxy_start(void)
{
    snprintf(HA.cfg, sizeof HA.cfg, "%s/haproxy.cfg", H.scratch);
    snprintf(HA.log, sizeof HA.log, "%s/haproxy.log", H.scratch);
    snprintf(HA.sock, sizeof HA.sock, "%s/haproxy.sock", H.scratch);
    HA.port = h_free_port();
    if (HA.port < 0 || write_haproxy_cfg() != 0)
        return -1;
    if (h_sh(&H, "haproxy -c -f '%s'", HA.cfg) != 0) {
        h_log("haproxy -c refused %s", HA.cfg);
        return -1;
    }
    const char *argv[] = {"haproxy", "-db", "-f", HA.cfg, NULL};
    pid_t pid = h_spawn(argv, HA.log, 1, NULL);
    if (pid < 0)
        return -1;
    HA.pid = pid;
    h_log("haproxy pid %d on port %d (config %s; checks every %d ms, down after %d)", (int)pid,
          HA.port, HA.cfg, HA.check_inter_ms, HA.fall);
    wait_status("sg1", "UP", 30000);
    wait_status("sg2", "UP", 30000);
    return 0;
}

static void haproxy_stop(void)
{
    if (HA.pid <= 0)
        return;
    kill(HA.pid, SIGTERM);
    int64_t deadline = h_now_ms() + 10000;
    while (waitpid(HA.pid, NULL, WNOHANG) == 0) {
        if (h_now_ms() > deadline) {
            kill(HA.pid, SIGKILL);
            waitpid(HA.pid, NULL, 0);
            break;
        }
        h_poll_pause();
    }
    HA.pid = 0;
}

static int group_setup(void **state)
{
    struct h_opts o = {
        .replicas = -1,
        .admin = 1,
        .listen_yaml = "  proxy_protocol: v2\n  proxy_trusted: [\"127.0.0.1/32\"]",
        .limits_yaml = "  drain_timeout_ms: 3000",
        /* An INVALIDATE that pages slowly holds a drain open (see below). */
        .redis_yaml = "  invalidate_page_keys: 1\n  invalidate_pause_ms: 500",
        .extra_yaml = "keyspaces:\n  slow: {}",
    };
    if (h_env_start(&H, "haproxy", &o) != 0)
        return -1;
    if (h_proxy_start(&H, 0) != 1)
        return -1;
    return haproxy_start();
}

static int group_teardown(void **state)
{
    haproxy_stop();
    return h_env_stop(&H);
}

/* Client options for the HAProxy frontend. */
static void ha_opts(struct sg_client_options *opt)
{
    h_client_opts(&H, 0, opt);
    opt->port = HA.port;
}

static struct sg_client *ha_connect(void)
{
    struct sg_client_options opt;
    ha_opts(&opt);
    int code = 0;
    char err[256];
    struct sg_client *c = h_connect_opts(&opt, &code, err, sizeof err);
    if (c == NULL)
        h_log("connect through haproxy: %s", err);
    return c;
}

/* 1 if either slotgate's log has a line containing needle. */
static int any_log_has(const char *needle)
{
    return h_count_lines(H.proxies[0].log, needle) + h_count_lines(H.proxies[1].log, needle) > 0;
}

static void wait_any_log(const char *needle)
{
    int64_t deadline = h_now_ms() + 10000;
    while (!any_log_has(needle)) {
        if (h_now_ms() > deadline)
            fail_msg("no slotgate logged \"%s\"", needle);
        h_poll_pause();
    }
}

/* ---- 1. the client's own address ------------------------------------------ */

static void test_client_address_through_haproxy(void **state)
{
    /* A raw connection from another loopback address. */
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    struct sockaddr_in b = {.sin_family = AF_INET}, a = {.sin_family = AF_INET};
    inet_pton(AF_INET, "127.0.0.77", &b.sin_addr);
    assert_int_equal(bind(fd, (struct sockaddr *)&b, sizeof b), 0);
    a.sin_port = htons((uint16_t)HA.port);
    inet_pton(AF_INET, "127.0.0.1", &a.sin_addr);
    assert_int_equal(connect(fd, (struct sockaddr *)&a, sizeof a), 0);
    socklen_t bl = sizeof b;
    assert_int_equal(getsockname(fd, (struct sockaddr *)&b, &bl), 0);
    char needle[128];
    snprintf(needle, sizeof needle,
             "session 127.0.0.77:%d: accepted via 127.0.0.1:", ntohs(b.sin_port));
    wait_any_log(needle);
    close(fd);

    /* The C client: slotgate logs the client's own source port, not HAProxy's. */
    struct sg_client *c = ha_connect();
    assert_non_null(c);
    assert_int_equal(h_check_set_get(c, "through-haproxy"), 0);
    struct sockaddr_in me;
    socklen_t ml = sizeof me;
    assert_int_equal(getsockname(sg_client_fd(c), (struct sockaddr *)&me, &ml), 0);
    snprintf(needle, sizeof needle,
             "session 127.0.0.1:%d: accepted via 127.0.0.1:", ntohs(me.sin_port));
    wait_any_log(needle);
    h_log("seen through HAProxy: %s", needle);
    sg_client_free(c);
}

/* ---- load with resend of never-executed requests ---------------------------- */

struct loader {
    pthread_t thread;
    int id;
    const char *phase;
    atomic_int *stop;
    _Atomic long next;      /* keys phase:id:0 .. next-1 are acknowledged */
    _Atomic long resent;    /* after SHUTTING_DOWN: never executed, sent again */
    _Atomic long io_errors; /* connection lost without SHUTTING_DOWN */
    _Atomic long failed;    /* answered with an error code */
    _Atomic long connects, connect_failures;
    char last[256];
};

/*
 * One SET at a time through HAProxy. SHUTTING_DOWN means the request was
 * never read (PROTOCOL.md section 3): reconnect and send it again. A lost
 * connection without it leaves the outcome unknown: counted, then (SET is
 * idempotent) sent again on a new connection, which is the client retry.
 */
static void *loader_main(void *arg)
{
    struct loader *l = arg;
    struct sg_client_options opt;
    ha_opts(&opt);
    struct sg_client *c = NULL;
    char key[64], val[64];
    while (!*l->stop) {
        if (c == NULL) {
            int code = 0;
            c = h_connect_opts(&opt, &code, l->last, sizeof l->last);
            if (c == NULL) {
                l->connect_failures++;
                h_poll_pause();
                continue;
            }
            l->connects++;
        }
        snprintf(key, sizeof key, "%s:%d:%ld", l->phase, l->id, l->next);
        snprintf(val, sizeof val, "value-%ld", l->next);
        int rc = hc_set(c, "", key, strlen(key), val, strlen(val), 0, SG_COND_NONE);
        if (rc == SG_OK) {
            l->next++;
            continue;
        }
        snprintf(l->last, sizeof l->last, "%s: %.200s", sg_code_name(rc), c->errstr);
        if (rc == SG_SHUTTING_DOWN)
            l->resent++;
        else if (rc == SG_CLIENT_IO)
            l->io_errors++;
        else
            l->failed++;
        sg_client_free(c);
        c = NULL;
    }
    sg_client_free(c);
    return NULL;
}

static long acked(struct loader *ls, int n)
{
    long s = 0;
    for (int i = 0; i < n; i++)
        s += ls[i].next;
    return s;
}

/* Wait (bounded) until every loader has acknowledged `more` more writes. */
static void wait_progress(struct loader *ls, int n, long more)
{
    long base[8];
    for (int i = 0; i < n; i++)
        base[i] = ls[i].next;
    int64_t deadline = h_now_ms() + 30000;
    for (int i = 0; i < n; i++)
        while (ls[i].next < base[i] + more) {
            if (h_now_ms() > deadline)
                fail_msg("loader %d stuck at %ld (last: %s)", i, ls[i].next, ls[i].last);
            h_poll_pause();
        }
}

/* Every acknowledged key reads back with its value. */
static void verify_acked(struct loader *ls, int n)
{
    struct sg_client *c = ha_connect();
    assert_non_null(c);
    char key[64], val[64];
    for (int i = 0; i < n; i++)
        for (long k = 0; k < ls[i].next; k++) {
            snprintf(key, sizeof key, "%s:%d:%ld", ls[i].phase, ls[i].id, k);
            snprintf(val, sizeof val, "value-%ld", k);
            h_expect_value(c, key, strlen(key), val, strlen(val));
        }
    sg_client_free(c);
}

static void start_loaders(struct loader *ls, int n, const char *phase, atomic_int *stop)
{
    memset(ls, 0, sizeof(*ls) * (size_t)n);
    for (int i = 0; i < n; i++) {
        ls[i].id = i;
        ls[i].phase = phase;
        ls[i].stop = stop;
        assert_int_equal(pthread_create(&ls[i].thread, NULL, loader_main, &ls[i]), 0);
    }
}

static void stop_loaders(struct loader *ls, int n, atomic_int *stop)
{
    *stop = 1;
    for (int i = 0; i < n; i++)
        pthread_join(ls[i].thread, NULL);
    for (int i = 0; i < n; i++)
        h_log("loader %d (%s): %ld acknowledged, %ld resent after SHUTTING_DOWN, %ld lost "
              "connections, %ld error answers, %ld connects (%ld refused); last: %s",
              i, ls[i].phase, ls[i].next, ls[i].resent, ls[i].io_errors, ls[i].failed,
              ls[i].connects, ls[i].connect_failures, ls[i].last);
}

/* ---- 2. rolling restart ------------------------------------------------------- */

/*
 * An INVALIDATE sent straight to proxy i (through a relay that adds the
 * PROXY header HAProxy would) that pages slowly (1 key per page, 500 ms
 * apart): while it is in flight a drain of proxy i cannot finish before
 * limits.drain_timeout_ms, which makes the draining state observable.
 */
static struct sg_client *slow_request(int i, struct h_relay **relay)
{
    static const uint8_t local[16] = {0x0D, 0x0A, 0x0D, 0x0A, 0x00, 0x0D, 0x0A, 0x51,
                                      0x55, 0x49, 0x54, 0x0A, 0x20, 0x00, 0x00, 0x00};
    *relay = h_relay_start(H.proxies[i].port, local, sizeof local);
    assert_non_null(*relay);
    struct sg_client_options opt;
    h_client_opts(&H, 0, &opt);
    opt.port = h_relay_port(*relay);
    int code;
    char err[256];
    struct sg_client *c = h_connect_opts(&opt, &code, err, sizeof err);
    assert_non_null(c);
    for (int k = 0; k < 20; k++) {
        char key[32];
        snprintf(key, sizeof key, "k%d", k);
        assert_int_equal(hc_set(c, "slow", key, strlen(key), "x", 1, 0, SG_COND_NONE), SG_OK);
    }
    struct sg_request *r = sg_request_new(SG_OP_INVALIDATE);
    sg_request_keyspace(r, "slow");
    sg_request_pattern(r, "*", 1);
    assert_int_equal(hc_send(c, r, 0), 0);
    sg_request_free(r);
    return c;
}

static void restart_one(int i, struct loader *ls, int n)
{
    char sv[16];
    snprintf(sv, sizeof sv, "sg%d", i + 1);
    struct h_relay *relay;
    struct sg_client *slow = slow_request(i, &relay);

    assert_int_equal(h_http_status(H.proxies[i].admin_port, "/readyz"), 200);
    assert_int_equal(h_proxy_signal(&H, i, SIGTERM), 0);
    /* /readyz is false from the start of the drain, while the process runs. */
    int64_t deadline = h_now_ms() + 10000;
    int st;
    while ((st = h_http_status(H.proxies[i].admin_port, "/readyz")) != 503) {
        if (h_now_ms() > deadline || !h_proxy_alive(&H, i))
            fail_msg("%s: /readyz never answered 503 during the drain (last %d)", sv, st);
        h_poll_pause();
    }
    /* HAProxy takes it out, and sends it nothing new from then on. */
    int64_t down_ms = wait_status(sv, "DOWN", 20000);
    long long stot = server_stot(sv);
    h_log("%s draining: /readyz 503, HAProxy DOWN after %lld ms (checks every %d ms, fall %d)", sv,
          (long long)down_ms, HA.check_inter_ms, HA.fall);
    h_log("%s: %s when HAProxy marked it DOWN", sv,
          h_proxy_alive(&H, i) ? "still draining" : "already exited");
    assert_int_equal(h_proxy_wait_exit(&H, i, 20000), 0);
    assert_int_equal(server_stot(sv), stot);
    sg_client_free(slow);
    h_relay_stop(relay);

    /* The others carried the load meanwhile; restart and wait for UP. */
    wait_progress(ls, n, 20);
    assert_int_equal(h_proxy_respawn(&H, i), 0);
    wait_status(sv, "UP", 30000);
    wait_progress(ls, n, 20);
}

static void test_rolling_restart_loses_nothing(void **state)
{
    atomic_int stop = 0;
    struct loader ls[4];
    start_loaders(ls, 4, "roll", &stop);
    wait_progress(ls, 4, 50);
    restart_one(0, ls, 4);
    restart_one(1, ls, 4);
    wait_progress(ls, 4, 50);
    stop_loaders(ls, 4, &stop);
    long resent = 0, io = 0, failed = 0;
    for (int i = 0; i < 4; i++) {
        resent += ls[i].resent;
        io += ls[i].io_errors;
        failed += ls[i].failed;
    }
    h_log("rolling restart: %ld writes acknowledged, %ld resent after SHUTTING_DOWN", acked(ls, 4),
          resent);
    assert_int_equal(io, 0);     /* no request with an unknown outcome */
    assert_int_equal(failed, 0); /* no error answers */
    verify_acked(ls, 4);         /* and every acknowledged write is there */
}

/* ---- 3. SIGKILL --------------------------------------------------------------- */

static void test_sigkill_marked_down_retries_succeed(void **state)
{
    atomic_int stop = 0;
    struct loader ls[4];
    start_loaders(ls, 4, "kill", &stop);
    wait_progress(ls, 4, 50);
    int64_t t0 = h_now_ms();
    assert_int_equal(h_proxy_kill(&H, 1), 0);
    int64_t down_ms = wait_status("sg2", "DOWN", 30000);
    h_log("sg2 killed: HAProxy marked it DOWN after %lld ms (checks every %d ms, fall %d)",
          (long long)(h_now_ms() - t0), HA.check_inter_ms, HA.fall);
    (void)down_ms;
    long long stot = server_stot("sg2");
    /* Every client goes on through sg1 (their retries succeed). */
    wait_progress(ls, 4, 50);
    assert_int_equal(server_stot("sg2"), stot);
    stop_loaders(ls, 4, &stop);
    long failed = 0;
    for (int i = 0; i < 4; i++)
        failed += ls[i].failed;
    assert_int_equal(failed, 0);
    verify_acked(ls, 4);
    /* Back to two, so the group ends as it began. */
    assert_int_equal(h_proxy_respawn(&H, 1), 0);
    wait_status("sg2", "UP", 30000);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_client_address_through_haproxy),
        cmocka_unit_test(test_rolling_restart_loses_nothing),
        cmocka_unit_test(test_sigkill_marked_down_retries_succeed),
    };
    int failed = cmocka_run_group_tests_name("itest_haproxy", tests, group_setup, group_teardown);
    failed += h_stop_failed;
    if (failed) {
        h_env_dump_logs(&H, 60);
        char cmd[H_PATH + 32];
        snprintf(cmd, sizeof cmd, "tail -n 40 '%s' >&2", HA.log);
        if (system(cmd) != 0) {
        }
    }
    return failed ? 1 : 0;
}
