/*
 * main - process start-up and shutdown. Loads and validates the config,
 * builds the TLS contexts, discovers the cluster (retrying the seeds until
 * one answers), starts the topology manager and the workers, then runs the
 * main thread's loop for signals and the admin listener. SIGINT/SIGTERM
 * drain: /readyz turns 503 at once and keeps answering while the workers
 * finish their in-flight requests; when the last worker's loop has ended
 * everything is stopped and freed, so sanitizer builds can check for leaks.
 */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <malloc.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <event2/event.h>
#include <openssl/ssl.h>

#include "admin.h"
#include "config.h"
#include "log.h"
#include "tls.h"
#include "topology.h"
#include "topomgr.h"
#include "util.h"
#include "worker.h"

static void usage(FILE *f)
{
    fprintf(f, "usage: slotgate --config FILE          run the proxy\n"
               "       slotgate --check-config FILE    validate FILE and exit\n"
               "       slotgate --version\n");
}

/* What the main thread's signal handlers work on. */
static struct {
    struct event_base *base;
    const char *config_path;
    struct sg_snapshot *snap; /* owned reference: the one in force */
    struct sg_worker **workers;
    int n_workers;
    int n_started; /* worker threads running */
    int n_exited;  /* of those, loops that have ended */
    int draining;
    struct sg_admin *admin;
} app;

/*
 * SIGTERM/SIGINT: the drain. /readyz answers 503 from now on (a load
 * balancer stops sending new connections), every worker stops accepting
 * and drains its sessions, and this loop keeps running (the admin
 * listener with it) until the last worker reports its loop has ended.
 */
static void on_stop_signal(evutil_socket_t sig, short what, void *arg)
{
    if (app.draining)
        return;
    app.draining = 1;
    sg_log_info("signal %d: draining (up to %u ms), then stopping", (int)sig,
                app.snap->cfg.drain_timeout_ms);
    sg_admin_set_draining(app.admin, 1);
    for (int i = 0; i < app.n_started; i++)
        sg_worker_drain(app.workers[i]);
    if (app.n_started == 0)
        event_base_loopbreak(app.base);
}

/* A worker's loop has ended (one byte each on the exit pipe). */
static void on_worker_exit(evutil_socket_t fd, short what, void *arg)
{
    char buf[64];
    ssize_t n;
    while ((n = read(fd, buf, sizeof(buf))) > 0)
        app.n_exited += (int)n;
    if (app.n_exited >= app.n_started)
        event_base_loopbreak(app.base);
}

/*
 * SIGHUP: load and validate the whole file into a scratch config; refuse
 * it whole if it changes a restart-only key (compared before anything is
 * built, sg_config_reload_check); build its server TLS context; then
 * publish config + context as one new snapshot and post it to every
 * worker. Any failure logs "reload refused" with the file, line and key
 * and leaves the running snapshot in force: there is no path on which a
 * listener changes between TLS and plaintext, or on which part of the
 * process takes new values and part keeps old ones.
 */
static void on_reload_signal(evutil_socket_t sig, short what, void *arg)
{
    char err[1024];
    struct sg_config *next = sg_calloc(1, sizeof(*next));
    const struct sg_config *running = &app.snap->cfg;
    SSL_CTX *tls = NULL;
    if (sg_config_load(next, app.config_path, err, sizeof(err)) != 0 ||
        sg_config_reload_check(running, next, err, sizeof(err)) != 0) {
        sg_log_error("reload refused, keeping the running config: %s", err);
        free(next);
        return;
    }
    if (!next->plaintext && (tls = sg_tls_server_ctx(next, err, sizeof(err))) == NULL) {
        sg_log_error("reload refused, keeping the running config: %s: %s", app.config_path, err);
        free(next);
        return;
    }
    struct sg_snapshot *snap = sg_snapshot_new(next, tls, app.snap->generation + 1);
    free(next);
    sg_snapshot_publish(snap);
    sg_log_set_level(snap->cfg.log_level);
    for (int i = 0; i < app.n_workers; i++)
        sg_worker_post_snapshot(app.workers[i], snap);
    sg_snapshot_unref(app.snap);
    app.snap = snap;
    sg_log_info("reloaded %s (config generation %llu)", app.config_path,
                (unsigned long long)snap->generation);
}

/* The topology manager's callback (its thread): hand t to every worker. */
static void publish_topology(void *arg, struct sg_topology *t)
{
    (void)arg;
    for (int i = 0; i < app.n_workers; i++)
        sg_worker_post_topology(app.workers[i], t);
}

static volatile sig_atomic_t early_stop;
static void on_early_signal(int sig)
{
    early_stop = 1;
}

int main(int argc, char **argv)
{
    const char *config_path = NULL;
    int check_only = 0;
    static const struct option opts[] = {{"config", required_argument, NULL, 'c'},
                                         {"check-config", required_argument, NULL, 'C'},
                                         {"version", no_argument, NULL, 'v'},
                                         {"help", no_argument, NULL, 'h'},
                                         {NULL, 0, NULL, 0}};
    /*
     * Large buffers (values, reply frames) straight from mmap and back to the
     * kernel when freed: glibc's default raises its mmap threshold after the
     * first such free, after which 256 KiB replies come from the heaps of the
     * worker threads and the process keeps their high-water mark. A fixed
     * threshold keeps RSS close to what is actually buffered, which is what
     * limits.max_buffered_bytes bounds.
     *
     * Fixing it also fixes the trim threshold at its 128 KiB default: a
     * worker's heap then gave every freed 64 KiB value back to the kernel
     * (madvise) and faulted it in again for the next one, 380 madvise calls
     * and a tenth of the CPU of 5,000 GETs of 64 KiB. Up to 8 MiB of free
     * space at the top of a heap is kept for reuse instead (1-7 faults
     * per 64 KiB SET in plaintext and 10-12 over TLS before, none now).
     * Peak RSS is unchanged; after a burst, up to this much per worker
     * stays mapped until the next.
     */
    mallopt(M_MMAP_THRESHOLD, 128 * 1024);
    mallopt(M_TRIM_THRESHOLD, 8 * 1024 * 1024);
    int ch;
    while ((ch = getopt_long(argc, argv, "c:hv", opts, NULL)) != -1) {
        switch (ch) {
        case 'c':
            config_path = optarg;
            break;
        case 'C':
            config_path = optarg;
            check_only = 1;
            break;
        case 'v':
            printf("slotgate %s\n", SG_VERSION);
            return 0;
        case 'h':
            usage(stdout);
            return 0;
        default:
            usage(stderr);
            return 2;
        }
    }
    if (config_path == NULL || optind != argc) {
        usage(stderr);
        return 2;
    }

    /* The start-up config stays alive until exit: the topology manager and
     * the admin listener keep pointers to it (they only read restart-only
     * keys). Workers serve from snapshots. */
    static struct sg_config cfg;
    char err[1024];
    app.config_path = config_path;
    if (sg_config_load(&cfg, config_path, err, sizeof(err)) != 0) {
        fprintf(stderr, "slotgate: %s\n", err);
        return 1;
    }
    sg_log_set_level(cfg.log_level);

    SSL_CTX *server_tls = NULL, *redis_tls = NULL;
    if (!cfg.plaintext && (server_tls = sg_tls_server_ctx(&cfg, err, sizeof(err))) == NULL) {
        fprintf(stderr, "slotgate: %s: %s\n", config_path, err);
        return 1;
    }
    redis_tls = sg_tls_redis_ctx(&cfg, err, sizeof(err));
    if (redis_tls == NULL && err[0] != '\0') {
        fprintf(stderr, "slotgate: %s: %s\n", config_path, err);
        SSL_CTX_free(server_tls);
        return 1;
    }
    if (check_only) {
        printf("%s: ok\n", config_path);
        SSL_CTX_free(server_tls);
        SSL_CTX_free(redis_tls);
        return 0;
    }
    if (cfg.plaintext)
        sg_log_warn("listen.plaintext is true: client connections are NOT encrypted");

    signal(SIGPIPE, SIG_IGN);
    signal(SIGINT, on_early_signal);
    signal(SIGTERM, on_early_signal);

    struct sg_topology *topo = sg_topomgr_discover(&cfg, redis_tls, &early_stop);
    if (topo == NULL) {
        sg_topomgr_stop();
        SSL_CTX_free(server_tls);
        SSL_CTX_free(redis_tls);
        return 0;
    }
    sg_log_info("cluster discovered: %d shard(s)%s", topo->n_shards,
                topo->cluster ? "" : " (plain Redis, not a cluster)");
    for (int i = 0; i < topo->n_shards; i++)
        sg_log_info("  shard %d: master %s:%d, %d replica(s)", i, topo->shards[i].master.host,
                    topo->shards[i].master.port, topo->shards[i].n_replicas);

    int n_workers = cfg.workers > 0 ? cfg.workers : (int)sysconf(_SC_NPROCESSORS_ONLN);
    if (n_workers < 1)
        n_workers = 1;
    app.snap = sg_snapshot_new(&cfg, server_tls, 1); /* owns server_tls from here */
    server_tls = NULL;
    sg_snapshot_publish(app.snap);
    struct sg_worker **workers = sg_calloc((size_t)n_workers, sizeof(*workers));
    struct sg_core **cores = sg_calloc((size_t)n_workers, sizeof(*cores));
    int rc = 1;
    int started = 0;
    for (int i = 0; i < n_workers; i++) {
        workers[i] = sg_worker_new(i, app.snap, redis_tls, topo, err, sizeof(err));
        if (workers[i] == NULL) {
            fprintf(stderr, "slotgate: %s\n", err);
            goto out;
        }
    }
    for (int i = 0; i < n_workers; i++)
        cores[i] = sg_worker_core(workers[i]);
    for (int i = 0; i < n_workers; i++)
        sg_worker_set_all(workers[i], cores, n_workers);

    struct event_base *base = event_base_new();
    app.base = base;
    app.workers = workers;
    app.n_workers = n_workers;
    struct event *sigint = evsignal_new(base, SIGINT, on_stop_signal, NULL);
    struct event *sigterm = evsignal_new(base, SIGTERM, on_stop_signal, NULL);
    struct event *sighup = evsignal_new(base, SIGHUP, on_reload_signal, NULL);
    evsignal_add(sigint, NULL);
    evsignal_add(sigterm, NULL);
    evsignal_add(sighup, NULL);
    int exit_pipe[2] = {-1, -1};
    struct event *exits = NULL;
    if (pipe2(exit_pipe, O_CLOEXEC | O_NONBLOCK) == 0) {
        for (int i = 0; i < n_workers; i++)
            sg_worker_set_exit_fd(workers[i], exit_pipe[1]);
        exits = event_new(base, exit_pipe[0], EV_READ | EV_PERSIST, on_worker_exit, NULL);
        event_add(exits, NULL);
    }
    struct sg_admin *admin = sg_admin_new(base, &cfg, workers, cores, n_workers, err, sizeof(err));
    app.admin = admin;
    if (admin == NULL && cfg.admin.port != 0) {
        fprintf(stderr, "slotgate: %s\n", err);
        goto out_base;
    }
    if (sg_topomgr_start(topo, publish_topology, NULL) != 0) {
        fprintf(stderr, "slotgate: cannot start the topology manager\n");
        goto out_admin;
    }
    for (; started < n_workers; started++) {
        if (sg_worker_start(workers[started]) != 0) {
            fprintf(stderr, "slotgate: cannot start worker %d\n", started);
            goto out_workers;
        }
        app.n_started = started + 1;
    }
    sg_log_info("slotgate %s listening on %s:%d (%s), %d worker(s)", SG_VERSION, cfg.listen.host,
                cfg.listen.port,
                cfg.plaintext          ? "plaintext"
                : cfg.tls_client_ca[0] ? "TLS, client certificates verified"
                                       : "TLS",
                n_workers);
    if (admin != NULL)
        sg_log_info("admin HTTP on %s:%d (/healthz /readyz /metrics /clients)", cfg.admin.host,
                    cfg.admin.port);
    if (!early_stop)
        event_base_dispatch(base);
    rc = 0;
    for (int i = 0; i < started; i++)
        sg_worker_drain(workers[i]);
out_workers:
    if (rc != 0)
        for (int i = 0; i < started; i++)
            sg_worker_stop(workers[i]);
    for (int i = 0; i < started; i++)
        sg_worker_join(workers[i]);
    sg_topomgr_stop();
out_admin:
    sg_admin_free(admin);
out_base:
    if (exits != NULL)
        event_free(exits);
    if (exit_pipe[0] >= 0) {
        close(exit_pipe[0]);
        close(exit_pipe[1]);
    }
    event_free(sigint);
    event_free(sigterm);
    event_free(sighup);
    event_base_free(base);
out:
    for (int i = 0; i < n_workers; i++)
        sg_worker_free(workers[i]);
    free(workers);
    free(cores);
    sg_topomgr_stop(); /* if it never started: its start-up links */
    sg_topology_unref(topo);
    SSL_CTX_free(redis_tls);
    sg_snapshot_publish(NULL);
    sg_snapshot_unref(app.snap);
    sg_log_info("slotgate stopped");
    return rc;
}
