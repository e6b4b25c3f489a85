/*
 * harness - processes, ports, certificates and Redis helpers shared by the
 * integration tests (see harness.h). Everything it starts is found again by
 * its scratch directory: redis-server and slotgate carry that path in their
 * command lines, which is also what itest_no_leftovers checks.
 */
#include "harness.h"

#include <arpa/inet.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <poll.h>
#include <pthread.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <setjmp.h>
#include <cmocka.h>

#ifndef SG_SLOTGATE_BIN
#error "SG_SLOTGATE_BIN must be defined (path of the slotgate binary)"
#endif
#ifndef SG_SCRIPTS_DIR
#error "SG_SCRIPTS_DIR must be defined"
#endif
#ifndef SG_ITEST_SCRATCH
#error "SG_ITEST_SCRATCH must be defined"
#endif

struct h_env H;
int h_stop_failed;

static int g_watch_fd = -1; /* write end of the watchdog pipe */
static pid_t g_watch_pid = 0;
static struct h_env *g_env; /* for atexit */
static int g_atexit_set;

/* ---- misc ---------------------------------------------------------------- */

int64_t h_now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

void h_poll_pause(void)
{
    struct timespec ts = {0, 20 * 1000 * 1000};
    nanosleep(&ts, NULL);
}

void h_log(const char *fmt, ...)
{
    va_list ap;
    char buf[1024];
    va_start(ap, fmt);
    vsnprintf(buf, sizeof(buf), fmt, ap);
    va_end(ap);
    fprintf(stderr, "[itest %s %lld] %s\n", H.name[0] ? H.name : "-",
            (long long)h_now_ms() % 100000, buf);
}

/* Close every descriptor above stderr: children (daemonized redis in
 * particular) must not keep test sockets or the watchdog pipe open. */
static void close_fds_from(int lowfd)
{
    long max = sysconf(_SC_OPEN_MAX);
    if (max < 0 || max > 65536)
        max = 65536;
    for (int fd = lowfd; fd < max; fd++)
        close(fd);
}

/*
 * In a child about to exec: stdout and stderr to log (opened with
 * open_flags, after banner when not NULL), stdin from /dev/null, nothing
 * else open.
 */
static void child_stdio(const char *log, int open_flags, const char *banner)
{
    int fd = open(log, O_WRONLY | O_CREAT | open_flags, 0644);
    if (fd >= 0) {
        if (banner != NULL)
            dprintf(fd, "$ %s\n", banner);
        dup2(fd, 1);
        dup2(fd, 2);
    }
    int nul = open("/dev/null", O_RDONLY);
    if (nul >= 0)
        dup2(nul, 0);
    close_fds_from(3);
}

pid_t h_spawn(const char *const argv[], const char *log, int truncate, const char *env)
{
    pid_t parent = getpid();
    fflush(NULL);
    pid_t pid = fork();
    if (pid != 0)
        return pid;
    /* die with the test process, whatever kills it */
    prctl(PR_SET_PDEATHSIG, SIGKILL);
    if (getppid() != parent)
        _exit(1);
    child_stdio(log, truncate ? O_TRUNC : O_APPEND, NULL);
    if (env != NULL)
        putenv((char *)env);
    execvp(argv[0], (char *const *)argv);
    dprintf(2, "exec %s: %s\n", argv[0], strerror(errno));
    _exit(127);
}

int h_sh(const struct h_env *e, const char *fmt, ...)
{
    char cmd[4096], logp[H_PATH + 32];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(cmd, sizeof(cmd), fmt, ap);
    va_end(ap);
    snprintf(logp, sizeof(logp), "%s/scripts.log", e->scratch);

    pid_t pid = fork();
    if (pid < 0)
        return -1;
    if (pid == 0) {
        child_stdio(logp, O_APPEND, cmd);
        execl("/bin/sh", "sh", "-c", cmd, (char *)NULL);
        _exit(127);
    }
    int st;
    while (waitpid(pid, &st, 0) < 0)
        if (errno != EINTR)
            return -1;
    int rc = WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
    if (rc != 0) {
        h_log("command failed (%d): %s", rc, cmd);
        char tail[H_PATH + 64];
        snprintf(tail, sizeof(tail), "tail -n 25 '%s' >&2", logp);
        if (system(tail) != 0)
            h_log("(no log)");
    }
    return rc;
}

static int port_free(int port)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    if (fd < 0)
        return 0;
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    int ok = bind(fd, (struct sockaddr *)&a, sizeof(a)) == 0;
    close(fd);
    return ok;
}

int h_free_port(void)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    if (fd < 0)
        return -1;
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = 0};
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    socklen_t len = sizeof(a);
    if (bind(fd, (struct sockaddr *)&a, sizeof(a)) != 0 ||
        getsockname(fd, (struct sockaddr *)&a, &len) != 0) {
        close(fd);
        return -1;
    }
    close(fd);
    return ntohs(a.sin_port);
}

/*
 * A base port with n consecutive free ports and their cluster bus ports
 * (+10000). Kept in 15000..22000 so the bus ports (25000..32000) stay below
 * the kernel's ephemeral range and no outgoing connection takes them.
 */
static int pick_base_port(int n)
{
    unsigned seed = (unsigned)getpid() ^ (unsigned)h_now_ms();
    for (int attempt = 0; attempt < 500; attempt++) {
        int base = 15000 + (int)(rand_r(&seed) % 700) * 10;
        int ok = 1;
        for (int i = 0; i < n && ok; i++)
            ok = port_free(base + i) && port_free(base + i + 10000);
        if (ok)
            return base;
    }
    return -1;
}

static int mkdir_p(const char *path)
{
    char tmp[H_PATH];
    snprintf(tmp, sizeof(tmp), "%s", path);
    for (char *p = tmp + 1; *p; p++) {
        if (*p == '/') {
            *p = 0;
            if (mkdir(tmp, 0755) != 0 && errno != EEXIST)
                return -1;
            *p = '/';
        }
    }
    return (mkdir(tmp, 0755) != 0 && errno != EEXIST) ? -1 : 0;
}

/* ---- leftovers ------------------------------------------------------------ */

/* A redis-server (first word), or slotgate (first word, or run by a
 * wrapper such as valgrind: "... slotgate --config ..."). */
static int is_ours_argv0(const char *cmdline)
{
    if (strstr(cmdline, "slotgate --config "))
        return 1;
    size_t n = strcspn(cmdline, " ");
    const char *base = cmdline;
    for (size_t i = 0; i < n; i++)
        if (cmdline[i] == '/')
            base = cmdline + i + 1;
    size_t bl = n - (size_t)(base - cmdline);
    return (bl == 12 && strncmp(base, "redis-server", 12) == 0) ||
           (bl == 8 && strncmp(base, "slotgate", 8) == 0);
}

/* Send sig to every redis-server/slotgate whose command line contains dir/. */
static int kill_by_cmdline(const char *dir, int sig)
{
    char needle[H_PATH + 2];
    snprintf(needle, sizeof(needle), "%s/", dir);
    DIR *d = opendir("/proc");
    if (!d)
        return 0;
    int n = 0;
    struct dirent *de;
    while ((de = readdir(d)) != NULL) {
        char *end;
        long pid = strtol(de->d_name, &end, 10);
        if (*end || pid <= 0 || pid == getpid())
            continue;
        char path[64], buf[4096];
        snprintf(path, sizeof(path), "/proc/%ld/cmdline", pid);
        int fd = open(path, O_RDONLY);
        if (fd < 0)
            continue;
        ssize_t len = read(fd, buf, sizeof(buf) - 1);
        close(fd);
        if (len <= 0)
            continue;
        for (ssize_t i = 0; i < len; i++)
            if (buf[i] == 0)
                buf[i] = ' ';
        buf[len] = 0;
        if (strstr(buf, needle) && is_ours_argv0(buf)) {
            kill((pid_t)pid, sig);
            n++;
        }
    }
    closedir(d);
    return n;
}

/*
 * The watchdog: a child in its own session that waits for the test process
 * to go away (EOF on a pipe only we hold the write end of) and then removes
 * everything the test started. It covers crashes and SIGKILL (ctest timeout),
 * which no atexit or signal handler sees.
 */
static void watchdog_start(const struct h_env *e)
{
    int p[2];
    if (pipe(p) != 0)
        return;
    pid_t pid = fork();
    if (pid < 0) {
        close(p[0]);
        close(p[1]);
        return;
    }
    if (pid == 0) {
        setsid();
        signal(SIGINT, SIG_IGN);
        signal(SIGTERM, SIG_IGN);
        signal(SIGHUP, SIG_IGN);
        close(p[1]);
        /* keep only the read end of the pipe and stderr */
        long max = sysconf(_SC_OPEN_MAX);
        if (max < 0 || max > 65536)
            max = 65536;
        for (int fd = 3; fd < max; fd++)
            if (fd != p[0])
                close(fd);
        char c;
        while (read(p[0], &c, 1) > 0 || errno == EINTR)
            ;
        char cmd[4096];
        snprintf(cmd, sizeof(cmd), "'%s/cluster.sh' stop '%s' >/dev/null 2>&1", SG_SCRIPTS_DIR,
                 e->redis_dir);
        if (system(cmd) != 0) { /* fall through to the scan */
        }
        for (int i = 0; i < 3; i++)
            if (kill_by_cmdline(e->scratch, SIGKILL) == 0)
                break;
        _exit(0);
    }
    close(p[0]);
    fcntl(p[1], F_SETFD, FD_CLOEXEC);
    g_watch_fd = p[1];
    g_watch_pid = pid;
}

static void watchdog_stop(void)
{
    if (g_watch_fd >= 0) {
        close(g_watch_fd);
        g_watch_fd = -1;
    }
    if (g_watch_pid > 0) {
        int64_t deadline = h_now_ms() + 20000;
        while (waitpid(g_watch_pid, NULL, WNOHANG) == 0) {
            if (h_now_ms() > deadline) {
                kill(g_watch_pid, SIGKILL);
                waitpid(g_watch_pid, NULL, 0);
                break;
            }
            h_poll_pause();
        }
        g_watch_pid = 0;
    }
}

static void atexit_cleanup(void)
{
    if (g_env)
        h_env_stop(g_env);
}

/* ---- proxies ---------------------------------------------------------------- */

static int write_config(const struct h_env *e, struct h_proxy *p)
{
    FILE *f = fopen(p->config, "w");
    if (!f)
        return -1;
    const struct h_opts *o = &e->opts;
    fprintf(f,
            "# generated by tests/integration/harness.c\n"
            "listen:\n"
            "  address: 127.0.0.1\n"
            "  port: %d\n"
            "  workers: %d\n",
            p->port, o->workers);
    if (o->listen_yaml)
        fprintf(f, "%s\n", o->listen_yaml);
    fprintf(f,
            "tls:\n"
            "  cert: \"%s/server.pem\"\n"
            "  key: \"%s/server-key.pem\"\n",
            e->certs, e->certs);
    if (p->mtls)
        fprintf(f,
                "  client_ca: \"%s/ca.pem\"\n"
                "  require_client_cert: true\n",
                e->certs);
    fprintf(f, "limits:\n  request_deadline_ms: %u\n", o->deadline_ms);
    if (o->limits_yaml)
        fprintf(f, "%s\n", o->limits_yaml);
    fprintf(f, "redis:\n  seeds:\n");
    for (int i = 0; i < e->n_nodes; i++)
        fprintf(f, "    - \"127.0.0.1:%d\"\n", e->nodes[i]);
    fprintf(f, "  connect_timeout_ms: 500\n  topology_refresh_ms: %u\n", o->refresh_ms);
    if (o->redis_yaml)
        fprintf(f, "%s\n", o->redis_yaml);
    fprintf(f, "log:\n  level: debug\n");
    if (p->admin_port > 0)
        fprintf(f, "admin:\n  address: 127.0.0.1\n  port: %d\n", p->admin_port);
    if (o->extra_yaml)
        fprintf(f, "%s\n", o->extra_yaml);
    return fclose(f) == 0 ? 0 : -1;
}

static void tail_file(const char *path, int lines)
{
    char cmd[H_PATH + 64];
    snprintf(cmd, sizeof(cmd), "tail -n %d '%s' >&2", lines, path);
    fprintf(stderr, "----- last %d lines of %s -----\n", lines, path);
    fflush(stderr);
    if (system(cmd) != 0)
        fprintf(stderr, "(cannot read %s)\n", path);
    fprintf(stderr, "----- end of %s -----\n", path);
}

void h_env_dump_logs(const struct h_env *e, int lines)
{
    for (int i = 0; i < e->n_proxies; i++)
        tail_file(e->proxies[i].log, lines);
}

/* Record how proxy i ended; st is its waitpid status. */
static void proxy_reaped(struct h_env *e, int i, int st, int expected_term)
{
    struct h_proxy *p = &e->proxies[i];
    if (WIFEXITED(st) && WEXITSTATUS(st) == 0 && expected_term) {
        /* clean shutdown */
    } else if (WIFEXITED(st)) {
        h_log("slotgate (proxy %d) exited with status %d%s", i, WEXITSTATUS(st),
              expected_term ? "" : " unexpectedly");
        p->bad_exit = 1;
    } else if (WIFSIGNALED(st)) {
        h_log("slotgate (proxy %d) killed by signal %d%s", i, WTERMSIG(st),
              WCOREDUMP(st) ? " (core dumped)" : "");
        p->bad_exit = 1;
    }
    p->pid = 0;
}

int h_proxy_alive(struct h_env *e, int i)
{
    struct h_proxy *p = &e->proxies[i];
    if (p->pid <= 0)
        return 0;
    int st;
    pid_t r = waitpid(p->pid, &st, WNOHANG);
    if (r == p->pid) {
        proxy_reaped(e, i, st, 0);
        return 0;
    }
    return r == 0;
}

int h_proxy_stop(struct h_env *e, int i)
{
    struct h_proxy *p = &e->proxies[i];
    if (p->pid <= 0 || !h_proxy_alive(e, i))
        return p->bad_exit ? -1 : 0;
    kill(p->pid, SIGTERM);
    int64_t deadline = h_now_ms() + 5000;
    int st;
    pid_t r;
    while ((r = waitpid(p->pid, &st, WNOHANG)) == 0) {
        if (h_now_ms() > deadline) {
            h_log("slotgate (proxy %d) ignored SIGTERM for 5 s: SIGKILL", i);
            kill(p->pid, SIGKILL);
            waitpid(p->pid, NULL, 0);
            p->bad_exit = 1;
            p->pid = 0;
            return -1;
        }
        h_poll_pause();
    }
    if (r == p->pid)
        proxy_reaped(e, i, st, 1);
    p->pid = 0;
    return p->bad_exit ? -1 : 0;
}

int h_proxy_signal(struct h_env *e, int i, int sig)
{
    if (i < 0 || i >= e->n_proxies || !h_proxy_alive(e, i))
        return -1;
    return kill(e->proxies[i].pid, sig) == 0 ? 0 : -1;
}

int h_proxy_wait_exit(struct h_env *e, int i, int timeout_ms)
{
    struct h_proxy *p = &e->proxies[i];
    if (p->pid <= 0)
        return p->bad_exit ? -1 : 0;
    int64_t deadline = h_now_ms() + timeout_ms;
    int st;
    pid_t r;
    while ((r = waitpid(p->pid, &st, WNOHANG)) == 0) {
        if (h_now_ms() > deadline) {
            h_log("slotgate (proxy %d) still running after %d ms: SIGKILL", i, timeout_ms);
            kill(p->pid, SIGKILL);
            waitpid(p->pid, NULL, 0);
            p->bad_exit = 1;
            p->pid = 0;
            return -1;
        }
        h_poll_pause();
    }
    if (r == p->pid)
        proxy_reaped(e, i, st, 1);
    p->pid = 0;
    return p->bad_exit ? -1 : 0;
}

int h_proxy_write_config(struct h_env *e, int i)
{
    if (i < 0 || i >= e->n_proxies)
        return -1;
    return write_config(e, &e->proxies[i]);
}

/* Wait until proxy i answers PING over TLS, or exits, or 30 s pass. */
static int proxy_wait_ready(struct h_env *e, int i)
{
    int64_t deadline = h_now_ms() + 30000;
    char err[256] = "";
    int via_admin = e->opts.listen_yaml != NULL &&
                    strstr(e->opts.listen_yaml, "proxy_protocol") != NULL &&
                    e->proxies[i].admin_port > 0;
    while (h_now_ms() < deadline) {
        if (!h_proxy_alive(e, i)) {
            h_log("slotgate exited before it was ready");
            tail_file(e->proxies[i].log, 40);
            return -1;
        }
        if (via_admin) {
            int st = h_http_status(e->proxies[i].admin_port, "/readyz");
            if (st == 200)
                return 0;
            snprintf(err, sizeof(err), "/readyz answered %d", st);
            h_poll_pause();
            continue;
        }
        struct sg_client_options opt;
        h_client_opts(e, i, &opt);
        opt.timeout_ms = 1000;
        char cert[H_PATH + 16], key[H_PATH + 16];
        if (e->proxies[i].mtls) {
            snprintf(cert, sizeof(cert), "%s/client.pem", e->certs);
            snprintf(key, sizeof(key), "%s/client-key.pem", e->certs);
            opt.cert = cert;
            opt.key = key;
        }
        struct sg_client *c = sg_client_connect(&opt);
        if (c->err == SG_OK) {
            int rc = hc_ping(c);
            if (rc == SG_OK) {
                sg_client_free(c);
                return 0;
            }
            snprintf(err, sizeof(err), "PING answered %s", sg_code_name(rc));
        } else {
            snprintf(err, sizeof(err), "%s", c->errstr);
        }
        sg_client_free(c);
        h_poll_pause();
    }
    h_log("slotgate not ready within 30 s (last error: %s)", err);
    tail_file(e->proxies[i].log, 40);
    return -1;
}

/* Write proxy i's config, fork and exec slotgate, wait until it is ready. */
static int proxy_spawn(struct h_env *e, int i)
{
    struct h_proxy *p = &e->proxies[i];
    p->pid = 0;
    if (write_config(e, p) != 0) {
        h_log("cannot write %s", p->config);
        return -1;
    }
    /* SG_ITEST_WRAPPER: run under e.g. "valgrind --error-exitcode=99" */
    const char *wrap = getenv("SG_ITEST_WRAPPER");
    const char *plain[] = {SG_SLOTGATE_BIN, "--config", p->config, NULL};
    const char *wrapped[] = {
        "/bin/sh",       "-c",      "exec $SG_ITEST_WRAPPER \"$0\" --config \"$1\"",
        SG_SLOTGATE_BIN, p->config, NULL};
    pid_t pid = h_spawn(wrap && *wrap ? wrapped : plain, p->log, 0, NULL);
    if (pid < 0)
        return -1;
    p->pid = pid;
    h_log("slotgate pid %d on port %d%s (config %s)", (int)pid, p->port, p->mtls ? " (mTLS)" : "",
          p->config);
    if (proxy_wait_ready(e, i) != 0) {
        h_proxy_stop(e, i);
        return -1;
    }
    return 0;
}

int h_proxy_start(struct h_env *e, int mtls)
{
    if (e->n_proxies >= H_MAX_PROXIES)
        return -1;
    int i = e->n_proxies;
    struct h_proxy *p = &e->proxies[i];
    memset(p, 0, sizeof(*p));
    p->mtls = mtls;
    p->port = h_free_port();
    if (p->port < 0)
        return -1;
    if (e->opts.admin && (p->admin_port = h_free_port()) < 0)
        return -1;
    snprintf(p->config, sizeof(p->config), "%s/slotgate-%d.yaml", e->scratch, i);
    snprintf(p->log, sizeof(p->log), "%s/slotgate-%d.log", e->scratch, i);
    int fd = open(p->log, O_WRONLY | O_CREAT | O_TRUNC, 0644);
    if (fd >= 0)
        close(fd);
    e->n_proxies++;
    return proxy_spawn(e, i) == 0 ? i : -1;
}

int h_proxy_kill(struct h_env *e, int i)
{
    struct h_proxy *p = &e->proxies[i];
    if (p->pid <= 0)
        return -1;
    kill(p->pid, SIGKILL);
    waitpid(p->pid, NULL, 0);
    p->pid = 0;
    return 0;
}

int h_proxy_respawn(struct h_env *e, int i)
{
    if (i < 0 || i >= e->n_proxies || h_proxy_alive(e, i))
        return -1;
    return proxy_spawn(e, i);
}

/* ---- environment ------------------------------------------------------------ */

int h_env_start(struct h_env *e, const char *name, const struct h_opts *o)
{
    memset(e, 0, sizeof(*e));
    snprintf(e->name, sizeof(e->name), "%s", name);
    if (e == &H || H.name[0] == 0)
        snprintf(H.name, sizeof(H.name), "%s", name);
    if (o)
        e->opts = *o;
    if (e->opts.masters == 0)
        e->opts.masters = 3;
    /* replicas: 0 = default (1), negative = none */
    if (e->opts.replicas == 0)
        e->opts.replicas = 1;
    else if (e->opts.replicas < 0)
        e->opts.replicas = 0;
    if (e->opts.workers == 0)
        e->opts.workers = 2;
    if (e->opts.deadline_ms == 0)
        e->opts.deadline_ms = 1500;
    if (e->opts.refresh_ms == 0)
        e->opts.refresh_ms = 1000;
    snprintf(e->scratch, sizeof(e->scratch), "%s/%s", SG_ITEST_SCRATCH, name);
    snprintf(e->certs, sizeof(e->certs), "%s/certs", e->scratch);
    snprintf(e->ca_file, sizeof(e->ca_file), "%s/ca.pem", e->certs);
    snprintf(e->redis_dir, sizeof(e->redis_dir), "%s/redis", e->scratch);
    signal(SIGPIPE, SIG_IGN);

    /* Leftovers of an earlier run that was killed: stop them first. */
    if (mkdir_p(e->scratch) != 0) {
        h_log("cannot create %s: %s", e->scratch, strerror(errno));
        return -1;
    }
    if (h_sh(e, "'%s/cluster.sh' stop '%s'", SG_SCRIPTS_DIR, e->redis_dir) != 0)
        return -1;
    kill_by_cmdline(e->scratch, SIGKILL);
    if (h_sh(e, "rm -rf '%s'", e->redis_dir) != 0)
        return -1;

    g_env = e;
    if (!g_atexit_set) {
        atexit(atexit_cleanup);
        g_atexit_set = 1;
    }
    watchdog_start(e);

    if (h_sh(e, "'%s/gen-certs.sh' '%s'", SG_SCRIPTS_DIR, e->certs) != 0)
        goto fail;

    int64_t t0 = h_now_ms();
    if (e->opts.plain) {
        int port = pick_base_port(1);
        if (port < 0)
            goto fail;
        if (h_sh(e, "'%s/cluster.sh' start-plain '%s' %d", SG_SCRIPTS_DIR, e->redis_dir, port) != 0)
            goto fail;
        e->n_nodes = 1;
        e->nodes[0] = port;
    } else {
        int n = e->opts.masters * (1 + e->opts.replicas);
        if (n > H_MAX_NODES)
            goto fail;
        int ok = 0;
        for (int attempt = 0; attempt < 3 && !ok; attempt++) {
            int base = pick_base_port(n);
            if (base < 0)
                goto fail;
            if (h_sh(e, "'%s/cluster.sh' start '%s' %d %d %d", SG_SCRIPTS_DIR, e->redis_dir, base,
                     e->opts.masters, e->opts.replicas) == 0) {
                ok = 1;
                e->n_nodes = n;
                for (int i = 0; i < n; i++)
                    e->nodes[i] = base + i;
            } else {
                h_sh(e, "'%s/cluster.sh' stop '%s'", SG_SCRIPTS_DIR, e->redis_dir);
            }
        }
        if (!ok)
            goto fail;
    }
    h_log("redis %s on ports %d..%d ready in %lld ms", e->opts.plain ? "(plain)" : "cluster",
          e->nodes[0], e->nodes[e->n_nodes - 1], (long long)(h_now_ms() - t0));

    if (h_proxy_start(e, e->opts.mtls) < 0)
        goto fail;
    return 0;
fail:
    h_log("environment setup failed; see %s", e->scratch);
    h_env_stop(e);
    return -1;
}

int h_env_stop(struct h_env *e)
{
    if (e->scratch[0] == 0)
        return 0;
    int rc = 0;
    for (int i = 0; i < e->n_proxies; i++)
        if (h_proxy_stop(e, i) != 0)
            rc = -1;
    if (e->redis_dir[0])
        h_sh(e, "'%s/cluster.sh' stop '%s'", SG_SCRIPTS_DIR, e->redis_dir);
    kill_by_cmdline(e->scratch, SIGKILL);
    watchdog_stop();
    if (g_env == e)
        g_env = NULL;
    e->redis_dir[0] = 0;
    if (rc != 0) {
        h_log("slotgate did not shut down cleanly; logs in %s", e->scratch);
        h_stop_failed = 1;
    }
    return rc;
}

/* ---- clients -------------------------------------------------------------- */

void h_client_opts(const struct h_env *e, int i, struct sg_client_options *opt)
{
    memset(opt, 0, sizeof(*opt));
    opt->host = "127.0.0.1";
    opt->port = e->proxies[i].port;
    /* A proxy listening in plaintext (listen_yaml "  plaintext: true"). */
    opt->tls =
        e->opts.listen_yaml == NULL || strstr(e->opts.listen_yaml, "plaintext: true") == NULL;
    opt->cacert = e->ca_file; /* written once by h_env_start: safe from any thread */
    opt->sni = "localhost";
    opt->client_name = e->name;
    opt->timeout_ms = 5000;
    /* These tests check what the proxy enforces: send oversize requests. */
    opt->no_local_checks = 1;
}

struct sg_client *h_connect_opts(const struct sg_client_options *opt, int *code, char *err,
                                 size_t errlen)
{
    struct sg_client *c = NULL;
    int dummy_code = 0;
    char dummy_err[256];
    if (!code)
        code = &dummy_code;
    if (!err) {
        err = dummy_err;
        errlen = sizeof(dummy_err);
    }
    err[0] = 0;
    *code = 0;
    c = sg_client_connect(opt);
    if (c->err) {
        *code = c->err;
        snprintf(err, errlen, "%s", c->errstr);
        sg_client_free(c);
        return NULL;
    }
    return c;
}

struct sg_client *h_connect(const struct h_env *e, int i, enum h_cert cert)
{
    struct sg_client_options opt;
    char certp[H_PATH + 32], keyp[H_PATH + 32];
    h_client_opts(e, i, &opt);
    if (cert == H_CERT_CLIENT) {
        snprintf(certp, sizeof(certp), "%s/client.pem", e->certs);
        snprintf(keyp, sizeof(keyp), "%s/client-key.pem", e->certs);
    } else if (cert == H_CERT_OTHER) {
        snprintf(certp, sizeof(certp), "%s/other-client.pem", e->certs);
        snprintf(keyp, sizeof(keyp), "%s/other-client-key.pem", e->certs);
    }
    if (cert != H_CERT_NONE) {
        opt.cert = certp;
        opt.key = keyp;
    }
    char err[256];
    int code;
    struct sg_client *c = h_connect_opts(&opt, &code, err, sizeof(err));
    if (!c)
        h_log("connect to proxy %d (port %d) failed: %s (code %d)", i, opt.port, err, code);
    return c;
}

int h_check_set_get(struct sg_client *c, const char *tag)
{
    static unsigned counter;
    char key[128], val[128];
    snprintf(key, sizeof(key), "health:%s:%u:%d", tag, counter, (int)getpid());
    snprintf(val, sizeof(val), "value-%u-%lld", counter++, (long long)h_now_ms());
    int rc = hc_set(c, "", key, strlen(key), val, strlen(val), 0, SG_COND_NONE);
    if (rc != SG_OK) {
        h_log("%s: healthy SET answered %s (%s)", tag, sg_code_name(rc), c->errstr);
        return -1;
    }
    void *got = NULL;
    size_t glen = 0;
    rc = hc_get(c, "", key, strlen(key), &got, &glen);
    int ok = rc == SG_OK && glen == strlen(val) && memcmp(got, val, glen) == 0;
    if (!ok)
        h_log("%s: healthy GET answered %s, %zu bytes", tag, sg_code_name(rc), glen);
    free(got);
    return ok ? 0 : -1;
}

int64_t h_stat(struct sg_client *c, const char *name)
{
    struct sg_request *r = sg_request_new(SG_OP_STATS);
    struct sg_response *resp = NULL;
    int rc = hc_call(c, r, &resp);
    sg_request_free(r);
    int64_t v = -1;
    if (resp && resp->code == SG_OK) {
        for (size_t i = 0; i < resp->n_stats; i++)
            if (strcmp(resp->stat_names[i], name) == 0)
                v = (int64_t)resp->stat_values[i];
    } else {
        h_log("STATS answered %s", sg_code_name(resp ? resp->code : rc));
    }
    sg_response_free(resp);
    return v;
}

struct sg_response *h_call(struct sg_client *c, struct sg_request *r)
{
    struct sg_response *resp = NULL;
    int rc = hc_call(c, r, &resp);
    sg_request_free(r);
    if (!resp)
        fail_msg("sg_call failed: %s (%s)", sg_code_name(rc), c->errstr);
    return resp;
}

void h_expect_value(struct sg_client *c, const void *key, size_t klen, const void *val, size_t vlen)
{
    void *got = NULL;
    size_t glen = 0;
    int rc = hc_get(c, "", key, klen, &got, &glen);
    if (rc != SG_OK)
        fail_msg("GET answered %s (%s)", sg_code_name(rc), rc >= 1000 ? c->errstr : "");
    if (glen != vlen || (vlen && memcmp(got, val, vlen) != 0))
        fail_msg("GET returned %zu bytes, expected %zu (or different bytes)", glen, vlen);
    free(got);
}

int h_get_code(struct sg_client *c, const void *key, size_t klen)
{
    void *got = NULL;
    size_t glen = 0;
    int rc = hc_get(c, "", key, klen, &got, &glen);
    free(got);
    return rc;
}

/* ---- redis nodes ------------------------------------------------------------ */

redisContext *h_redis(int port)
{
    struct timeval tv = {1, 0};
    redisContext *c = redisConnectWithTimeout("127.0.0.1", port, tv);
    if (!c)
        return NULL;
    if (c->err) {
        redisFree(c);
        return NULL;
    }
    redisSetTimeout(c, tv);
    return c;
}

redisReply *h_redis_cmd(int port, const char *fmt, ...)
{
    redisContext *c = h_redis(port);
    if (!c)
        return NULL;
    va_list ap;
    va_start(ap, fmt);
    redisReply *r = redisvCommand(c, fmt, ap);
    va_end(ap);
    redisFree(c);
    return r;
}

/* First node that is alive and answers PING. */
static int live_node(const struct h_env *e)
{
    for (int i = 0; i < e->n_nodes; i++) {
        if (!h_node_alive(e, e->nodes[i]))
            continue;
        redisReply *r = h_redis_cmd(e->nodes[i], "PING");
        int ok = r && r->type == REDIS_REPLY_STATUS;
        freeReplyObject(r);
        if (ok)
            return e->nodes[i];
    }
    return -1;
}

int h_keyslot(const struct h_env *e, const void *key, size_t len)
{
    int port = live_node(e);
    if (port < 0)
        return -1;
    redisReply *r = h_redis_cmd(port, "CLUSTER KEYSLOT %b", key, len);
    int slot = (r && r->type == REDIS_REPLY_INTEGER) ? (int)r->integer : -1;
    freeReplyObject(r);
    return slot;
}

/* CLUSTER SLOTS of a live node, or NULL. */
static redisReply *cluster_slots(const struct h_env *e)
{
    int port = live_node(e);
    if (port < 0)
        return NULL;
    redisReply *r = h_redis_cmd(port, "CLUSTER SLOTS");
    if (!r || r->type != REDIS_REPLY_ARRAY) {
        freeReplyObject(r);
        return NULL;
    }
    return r;
}

static int range_master_port(const redisReply *range)
{
    if (range->type != REDIS_REPLY_ARRAY || range->elements < 3)
        return -1;
    const redisReply *m = range->element[2];
    if (m->type != REDIS_REPLY_ARRAY || m->elements < 2 ||
        m->element[1]->type != REDIS_REPLY_INTEGER)
        return -1;
    return (int)m->element[1]->integer;
}

int h_slot_owner(const struct h_env *e, int slot)
{
    if (e->opts.plain)
        return e->nodes[0];
    redisReply *r = cluster_slots(e);
    if (!r)
        return -1;
    int port = -1;
    for (size_t i = 0; i < r->elements && port < 0; i++) {
        redisReply *rg = r->element[i];
        if (rg->type != REDIS_REPLY_ARRAY || rg->elements < 3)
            continue;
        if (slot >= rg->element[0]->integer && slot <= rg->element[1]->integer)
            port = range_master_port(rg);
    }
    freeReplyObject(r);
    return port;
}

int h_key_owner(const struct h_env *e, const void *key, size_t len)
{
    if (e->opts.plain)
        return e->nodes[0];
    int slot = h_keyslot(e, key, len);
    return slot < 0 ? -1 : h_slot_owner(e, slot);
}

int h_node_id(int port, char *id, size_t idlen)
{
    redisReply *r = h_redis_cmd(port, "CLUSTER MYID");
    int ok = r && r->type == REDIS_REPLY_STRING;
    if (ok)
        snprintf(id, idlen, "%s", r->str);
    freeReplyObject(r);
    return ok ? 0 : -1;
}

static int cmp_int(const void *a, const void *b)
{
    return *(const int *)a - *(const int *)b;
}

int h_masters(const struct h_env *e, int *ports, int max)
{
    if (e->opts.plain) {
        if (max > 0)
            ports[0] = e->nodes[0];
        return 1;
    }
    redisReply *r = cluster_slots(e);
    if (!r)
        return 0;
    int n = 0;
    for (size_t i = 0; i < r->elements; i++) {
        int p = range_master_port(r->element[i]);
        int seen = 0;
        for (int j = 0; j < n; j++)
            seen |= ports[j] == p;
        if (p > 0 && !seen && n < max)
            ports[n++] = p;
    }
    freeReplyObject(r);
    qsort(ports, (size_t)n, sizeof(int), cmp_int);
    return n;
}

int h_replicas_of(int master_port, int *ports, int max)
{
    redisReply *r = h_redis_cmd(master_port, "INFO replication");
    int n = 0;
    if (r && r->type == REDIS_REPLY_STRING) {
        /* lines like "slave0:ip=127.0.0.1,port=31003,state=online,..." */
        for (const char *line = r->str; line && *line && n < max;) {
            if (strncmp(line, "slave", 5) == 0 && line[5] >= '0' && line[5] <= '9') {
                const char *q = strstr(line, "port=");
                const char *eol = strchr(line, '\n');
                if (q && (!eol || q < eol))
                    ports[n++] = atoi(q + 5);
            }
            line = strchr(line, '\n');
            if (line)
                line++;
        }
    }
    freeReplyObject(r);
    return n;
}

pid_t h_node_pid(const struct h_env *e, int port)
{
    char path[H_PATH + 32];
    snprintf(path, sizeof(path), "%s/%d/redis.pid", e->redis_dir, port);
    FILE *f = fopen(path, "r");
    if (!f)
        return -1;
    long pid = -1;
    if (fscanf(f, "%ld", &pid) != 1)
        pid = -1;
    fclose(f);
    return (pid_t)pid;
}

int h_node_alive(const struct h_env *e, int port)
{
    pid_t pid = h_node_pid(e, port);
    if (pid <= 0)
        return 0;
    char path[64], buf[512];
    snprintf(path, sizeof(path), "/proc/%d/stat", (int)pid);
    FILE *f = fopen(path, "r");
    if (!f)
        return 0;
    size_t n = fread(buf, 1, sizeof(buf) - 1, f);
    fclose(f);
    buf[n] = 0;
    const char *rp = strrchr(buf, ')');
    return rp && rp[1] == ' ' && rp[2] != 'Z' && rp[2] != 'X';
}

int h_node_signal(const struct h_env *e, int port, int sig)
{
    pid_t pid = h_node_pid(e, port);
    if (pid <= 0 || !h_node_alive(e, port))
        return -1;
    if (kill(pid, sig) != 0)
        return -1;
    if (sig == SIGKILL) {
        int64_t deadline = h_now_ms() + 5000;
        while (h_node_alive(e, port) && h_now_ms() < deadline)
            h_poll_pause();
    }
    return 0;
}

int h_wait_cluster(const struct h_env *e, int timeout_ms)
{
    if (e->opts.plain)
        return 0;
    return h_sh(e, "CLUSTER_WAIT_SECS=%d '%s/cluster.sh' wait '%s'", (timeout_ms + 999) / 1000,
                SG_SCRIPTS_DIR, e->redis_dir) == 0
               ? 0
               : -1;
}

int h_wait_failover(const struct h_env *e, int dead_port, int timeout_ms)
{
    int64_t deadline = h_now_ms() + timeout_ms;
    for (;;) {
        int masters[H_MAX_NODES];
        int n = h_masters(e, masters, H_MAX_NODES);
        int still = n == 0;
        for (int i = 0; i < n; i++)
            still |= masters[i] == dead_port;
        if (!still)
            break;
        if (h_now_ms() > deadline) {
            h_log("no failover away from %d within %d ms", dead_port, timeout_ms);
            return -1;
        }
        h_poll_pause();
    }
    int left = (int)(deadline - h_now_ms());
    return h_wait_cluster(e, left < 1000 ? 1000 : left);
}

int h_sync_replicas(const struct h_env *e)
{
    if (e->opts.plain)
        return 0;
    int masters[H_MAX_NODES];
    int n = h_masters(e, masters, H_MAX_NODES);
    for (int i = 0; i < n; i++) {
        int reps[H_MAX_NODES];
        int nr = h_replicas_of(masters[i], reps, H_MAX_NODES);
        if (nr == 0)
            continue;
        redisReply *r = h_redis_cmd(masters[i], "WAIT %d 3000", nr);
        int ok = r && r->type == REDIS_REPLY_INTEGER && r->integer >= nr;
        freeReplyObject(r);
        if (!ok) {
            h_log("replicas of %d did not acknowledge writes", masters[i]);
            return -1;
        }
    }
    return 0;
}

long long h_owner_pttl(const struct h_env *e, const char *key)
{
    int port = h_key_owner(e, key, strlen(key));
    assert_true(port > 0);
    redisReply *r = h_redis_cmd(port, "PTTL %s", key);
    assert_non_null(r);
    assert_int_equal(r->type, REDIS_REPLY_INTEGER);
    long long v = r->integer;
    freeReplyObject(r);
    return v;
}

int h_group_start(struct h_env *e, const char *name, const struct h_opts *o, struct sg_client **c)
{
    if (h_env_start(e, name, o) != 0)
        return -1;
    *c = h_connect(e, 0, H_CERT_NONE);
    return *c ? 0 : -1;
}

int h_group_stop(struct h_env *e, struct sg_client **c)
{
    sg_client_free(*c);
    *c = NULL;
    return h_env_stop(e);
}

/* ---- HTTP and a PROXY-protocol relay ----------------------------------------- */

static int tcp_connect_local(int port, int timeout_ms)
{
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0)
        return -1;
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    struct timeval tv = {timeout_ms / 1000, (timeout_ms % 1000) * 1000};
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
    setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
    if (connect(fd, (struct sockaddr *)&a, sizeof(a)) != 0) {
        close(fd);
        return -1;
    }
    return fd;
}

/* GET path: the whole body (malloc'd, NUL-terminated) with *status set,
 * or NULL. */
static char *http_fetch(int port, const char *path, int timeout_ms, int *status)
{
    int fd = tcp_connect_local(port, timeout_ms);
    if (fd < 0)
        return NULL;
    char req[256];
    int n = snprintf(req, sizeof(req), "GET %s HTTP/1.0\r\nHost: 127.0.0.1\r\n\r\n", path);
    if (write(fd, req, (size_t)n) != n) {
        close(fd);
        return NULL;
    }
    size_t have = 0, cap = 1 << 16;
    char *buf = malloc(cap);
    ssize_t r;
    while (buf != NULL) {
        if (have + 4096 > cap) {
            char *grown = realloc(buf, cap *= 2);
            if (grown == NULL) {
                free(buf);
                buf = NULL;
                break;
            }
            buf = grown;
        }
        if ((r = read(fd, buf + have, cap - 1 - have)) <= 0)
            break;
        have += (size_t)r;
    }
    close(fd);
    if (buf == NULL)
        return NULL;
    buf[have] = '\0';
    char *body = strstr(buf, "\r\n\r\n");
    if (sscanf(buf, "HTTP/%*d.%*d %d", status) != 1 || body == NULL) {
        free(buf);
        return NULL;
    }
    memmove(buf, body + 4, strlen(body + 4) + 1);
    return buf;
}

char *h_http_fetch(int port, const char *path, int *status)
{
    return http_fetch(port, path, 5000, status);
}

int h_http_status(int port, const char *path)
{
    int status = -1;
    free(http_fetch(port, path, 1000, &status));
    return status;
}

int h_http_get(int port, const char *path, char *buf, size_t cap)
{
    int status = -1;
    char *body = http_fetch(port, path, 5000, &status);
    if (body == NULL || status != 200) {
        free(body);
        return -1;
    }
    snprintf(buf, cap, "%s", body);
    free(body);
    return 0;
}

long long h_metric(int port, const char *metric)
{
    int status = -1;
    char *body = http_fetch(port, "/metrics", 5000, &status);
    long long v = -1;
    size_t ml = strlen(metric);
    for (char *line = body; status == 200 && line != NULL && *line != '\0';) {
        char *nl = strchr(line, '\n');
        if (strncmp(line, metric, ml) == 0 && line[ml] == ' ') {
            v = strtoll(line + ml + 1, NULL, 10);
            break;
        }
        line = nl != NULL ? nl + 1 : NULL;
    }
    free(body);
    return v;
}

#define H_RELAY_MAX 64

struct h_relay {
    int lfd, port, target;
    pthread_t thread;
    atomic_int stop;
    pthread_mutex_t lock;
    uint8_t header[600];
    size_t header_len;
    int n;
    int fds[H_RELAY_MAX][2]; /* client side, server side */
};

static void relay_close(struct h_relay *r, int k)
{
    close(r->fds[k][0]);
    close(r->fds[k][1]);
    r->fds[k][0] = r->fds[k][1] = -1;
}

static void relay_accept(struct h_relay *r)
{
    int c = accept4(r->lfd, NULL, NULL, SOCK_CLOEXEC);
    if (c < 0)
        return;
    int k = 0;
    while (k < H_RELAY_MAX && r->fds[k][0] >= 0)
        k++;
    int s = k < H_RELAY_MAX ? tcp_connect_local(r->target, 1000) : -1;
    if (s < 0) {
        close(c);
        return;
    }
    pthread_mutex_lock(&r->lock);
    ssize_t w = r->header_len ? write(s, r->header, r->header_len) : 0;
    pthread_mutex_unlock(&r->lock);
    if (w < 0) {
        close(c);
        close(s);
        return;
    }
    r->fds[k][0] = c;
    r->fds[k][1] = s;
}

/* Copy what is readable on side `from` of pair k to the other side. */
static int relay_copy(struct h_relay *r, int k, int from)
{
    char buf[16384];
    ssize_t n = read(r->fds[k][from], buf, sizeof(buf));
    if (n <= 0)
        return -1;
    for (ssize_t off = 0; off < n;) {
        ssize_t w = write(r->fds[k][!from], buf + off, (size_t)(n - off));
        if (w <= 0)
            return -1;
        off += w;
    }
    return 0;
}

static void *relay_main(void *arg)
{
    struct h_relay *r = arg;
    while (!r->stop) {
        struct pollfd p[1 + 2 * H_RELAY_MAX];
        int idx[1 + 2 * H_RELAY_MAX];
        int n = 0;
        p[n].fd = r->lfd;
        p[n].events = POLLIN;
        idx[n++] = -1;
        for (int k = 0; k < H_RELAY_MAX; k++)
            if (r->fds[k][0] >= 0)
                for (int side = 0; side < 2; side++) {
                    p[n].fd = r->fds[k][side];
                    p[n].events = POLLIN;
                    idx[n++] = k * 2 + side;
                }
        if (poll(p, (nfds_t)n, 100) <= 0)
            continue;
        for (int i = 0; i < n; i++) {
            if (!(p[i].revents & (POLLIN | POLLHUP | POLLERR)))
                continue;
            if (idx[i] < 0) {
                relay_accept(r);
                continue;
            }
            int k = idx[i] / 2, side = idx[i] % 2;
            if (r->fds[k][0] >= 0 && relay_copy(r, k, side) != 0)
                relay_close(r, k);
        }
    }
    return NULL;
}

struct h_relay *h_relay_start(int target, const void *header, size_t len)
{
    struct h_relay *r = calloc(1, sizeof(*r));
    r->target = target;
    pthread_mutex_init(&r->lock, NULL);
    for (int k = 0; k < H_RELAY_MAX; k++)
        r->fds[k][0] = r->fds[k][1] = -1;
    h_relay_set_header(r, header, len);
    r->lfd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    struct sockaddr_in a = {.sin_family = AF_INET};
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    socklen_t al = sizeof(a);
    if (r->lfd < 0 || bind(r->lfd, (struct sockaddr *)&a, sizeof(a)) != 0 ||
        listen(r->lfd, 64) != 0 || getsockname(r->lfd, (struct sockaddr *)&a, &al) != 0 ||
        pthread_create(&r->thread, NULL, relay_main, r) != 0) {
        if (r->lfd >= 0)
            close(r->lfd);
        free(r);
        return NULL;
    }
    r->port = ntohs(a.sin_port);
    return r;
}

int h_relay_port(const struct h_relay *r)
{
    return r->port;
}

void h_relay_set_header(struct h_relay *r, const void *header, size_t len)
{
    pthread_mutex_lock(&r->lock);
    if (len > sizeof(r->header))
        len = sizeof(r->header);
    memcpy(r->header, header, len);
    r->header_len = len;
    pthread_mutex_unlock(&r->lock);
}

void h_relay_stop(struct h_relay *r)
{
    if (r == NULL)
        return;
    r->stop = 1;
    pthread_join(r->thread, NULL);
    for (int k = 0; k < H_RELAY_MAX; k++)
        if (r->fds[k][0] >= 0)
            relay_close(r, k);
    close(r->lfd);
    pthread_mutex_destroy(&r->lock);
    free(r);
}

int h_count_lines(const char *path, const char *needle)
{
    FILE *f = fopen(path, "r");
    if (!f)
        return 0;
    char line[4096];
    int n = 0;
    while (fgets(line, sizeof(line), f))
        n += strstr(line, needle) != NULL;
    fclose(f);
    return n;
}

int h_wait_lines(const char *path, const char *needle, int n, int timeout_ms)
{
    int64_t deadline = h_now_ms() + timeout_ms;
    while (h_count_lines(path, needle) < n) {
        if (h_now_ms() > deadline) {
            h_log("no %d line(s) with \"%s\" in %s within %d ms", n, needle, path, timeout_ms);
            return -1;
        }
        h_poll_pause();
    }
    return 0;
}

/* ---- the old code-returning calls over the new API ----------------------------- */

/* The reply's code (reply freed), or the context's error when there is none. */
static int hc_code(struct sg_client *c, struct sg_response *reply)
{
    int code = reply ? reply->code : (int)c->err;

    sg_response_free(reply);
    return code;
}

int hc_ping(struct sg_client *c)
{
    return hc_code(c, sg_ping(c));
}

int hc_get(struct sg_client *c, const char *keyspace, const void *key, size_t klen, void **val,
           size_t *vlen)
{
    struct sg_response *reply = sg_get(c, keyspace, key, klen);

    *val = NULL;
    *vlen = 0;
    if (reply && reply->code == SG_OK) {
        *val = malloc(reply->value_len + 1); /* one spare NUL for printing */
        if (*val == NULL)
            abort();
        if (reply->value_len)
            memcpy(*val, reply->value, reply->value_len);
        ((char *)*val)[reply->value_len] = '\0';
        *vlen = reply->value_len;
    }
    return hc_code(c, reply);
}

int hc_set(struct sg_client *c, const char *keyspace, const void *key, size_t klen, const void *val,
           size_t vlen, uint64_t ttl_ms, int cond)
{
    return hc_code(c, sg_set(c, keyspace, key, klen, val, vlen, ttl_ms, (enum sg_cond)cond));
}

int hc_del(struct sg_client *c, const char *keyspace, const void *key, size_t klen)
{
    return hc_code(c, sg_del(c, keyspace, key, klen));
}

int hc_expire(struct sg_client *c, const char *keyspace, const void *key, size_t klen,
              uint64_t ttl_ms)
{
    return hc_code(c, sg_expire(c, keyspace, key, klen, ttl_ms));
}

int hc_call(struct sg_client *c, const struct sg_request *r, struct sg_response **out)
{
    if (sg_call(c, r, out) < 0)
        return c->err;
    return (*out)->code;
}

/*
 * Request ids: the library assigns them, but several tests encode meaning in
 * the ids they used to choose (a thread, a phase, a key). hc_send records
 * "library id -> the test's id" per connection and hc_recv puts the test's
 * id back into the response, so those tests keep asserting what they did.
 */
struct hc_idmap {
    const struct sg_client *c;
    uint64_t lid, tid;
    struct hc_idmap *next;
};
#define HC_BUCKETS 4096
static struct hc_idmap *hc_ids[HC_BUCKETS];
static pthread_mutex_t hc_ids_lock = PTHREAD_MUTEX_INITIALIZER;

static size_t hc_bucket(const struct sg_client *c, uint64_t lid)
{
    return (size_t)(((uintptr_t)c >> 4) * 31 + lid) % HC_BUCKETS;
}

/* Remove and return the entry for (c, lid), or NULL; caller holds the lock. */
static struct hc_idmap *hc_take(const struct sg_client *c, uint64_t lid)
{
    struct hc_idmap **pp = &hc_ids[hc_bucket(c, lid)], *e;

    for (; (e = *pp) != NULL; pp = &e->next) {
        if (e->c == c && e->lid == lid) {
            *pp = e->next;
            return e;
        }
    }
    return NULL;
}

int hc_send(struct sg_client *c, const struct sg_request *r, uint64_t test_id)
{
    struct hc_idmap *e;
    uint64_t lid;

    if (sg_client_send(c, r, &lid) != 0)
        return -1;
    pthread_mutex_lock(&hc_ids_lock);
    free(hc_take(c, lid)); /* left over from a freed client at the same address */
    if (test_id != 0) {
        e = malloc(sizeof(*e));
        if (e == NULL)
            abort();
        e->c = c;
        e->lid = lid;
        e->tid = test_id;
        e->next = hc_ids[hc_bucket(c, lid)];
        hc_ids[hc_bucket(c, lid)] = e;
    }
    pthread_mutex_unlock(&hc_ids_lock);
    return 0;
}

int hc_recv(struct sg_client *c, struct sg_response **out)
{
    struct hc_idmap *e;

    if (sg_client_recv(c, out) != 0)
        return -1;
    pthread_mutex_lock(&hc_ids_lock);
    e = (*out)->id != 0 ? hc_take(c, (*out)->id) : NULL;
    pthread_mutex_unlock(&hc_ids_lock);
    if (e != NULL) {
        (*out)->id = e->tid;
        free(e);
    }
    return 0;
}
