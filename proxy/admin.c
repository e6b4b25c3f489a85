/*
 * admin - operators' HTTP endpoints on the main thread's event_base, away
 * from the workers: /healthz (the process runs), /readyz (topology known,
 * not draining: what a load balancer should check), /metrics (Prometheus).
 */
#include "admin.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <dirent.h>
#include <sys/resource.h>
#include <time.h>
#include <unistd.h>

#include <event2/buffer.h>
#include <event2/event.h>
#include <event2/http.h>
#include <hiredis/hiredis.h>
#include <openssl/crypto.h>

#include "clientlist.h"
#include "metrics.h"
#include "stats.h"
#include "topology.h"
#include "util.h"
#include "worker.h"

struct sg_admin {
    struct event_base *base;
    struct evhttp *http;
    /* The /clients request being answered (one at a time), its listing and
     * the event on the listing's eventfd. */
    struct evhttp_request *clients_req;
    struct sg_clientlist *clients;
    struct event *clients_ev;
    struct sg_worker **workers;
    struct sg_core *const *cores;
    int n;
    int draining;
    time_t started;
};

static void reply_text(struct evhttp_request *req, int code, const char *reason, const char *body)
{
    struct evbuffer *b = evbuffer_new();
    evbuffer_add_printf(b, "%s\n", body);
    evhttp_add_header(evhttp_request_get_output_headers(req), "Content-Type", "text/plain");
    evhttp_send_reply(req, code, reason, b);
    evbuffer_free(b);
}

static void on_healthz(struct evhttp_request *req, void *arg)
{
    reply_text(req, 200, "OK", "ok");
}

static void on_readyz(struct evhttp_request *req, void *arg)
{
    struct sg_admin *a = arg;
    if (a->draining)
        reply_text(req, 503, "Service Unavailable", "draining");
    else if (!sg_topology_ready())
        reply_text(req, 503, "Service Unavailable", "topology unknown or incomplete");
    else
        reply_text(req, 200, "OK", "ready");
}

/* A shard's label: its master's "host:port" ("[v6]:port"), as the links name nodes. */
static const char *shard_name(const struct sg_addr *m, char *buf, size_t len)
{
    snprintf(buf, len, strchr(m->host, ':') ? "[%s]:%d" : "%s:%d", m->host, m->port);
    return buf;
}

/*
 * The standard process_* families (the names Prometheus client libraries
 * use), from /proc/self: CPU, resident memory and descriptors are what the
 * sizing in docs/OPERATIONS.md is about. A file that cannot be read leaves
 * its sample out, never the scrape.
 */
static void metrics_os_process(struct sg_admin *a, struct sg_text *t)
{
    sg_metrics_family(t, "process_start_time_seconds", "gauge",
                      "Start time of the process since the Unix epoch, in seconds.");
    sg_metrics_u64(t, "process_start_time_seconds", NULL, (uint64_t)a->started);
    long tick = sysconf(_SC_CLK_TCK), page = sysconf(_SC_PAGESIZE);
    unsigned long utime = 0, stime = 0, rss_pages = 0;
    FILE *f = fopen("/proc/self/stat", "r");
    char buf[1024];
    int have_stat = 0;
    if (f != NULL) {
        size_t n = fread(buf, 1, sizeof(buf) - 1, f);
        fclose(f);
        buf[n] = '\0';
        /* fields after "(comm)": state is field 3, utime 14, stime 15, rss 24 */
        char *p = strrchr(buf, ')');
        have_stat = p != NULL && sscanf(p + 2,
                                        "%*c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u %lu %lu "
                                        "%*d %*d %*d %*d %*d %*d %*u %*u %lu",
                                        &utime, &stime, &rss_pages) == 3;
    }
    sg_metrics_family(t, "process_cpu_seconds_total", "counter",
                      "User and system CPU time spent, in seconds.");
    if (have_stat && tick > 0)
        sg_metrics_f64(t, "process_cpu_seconds_total", NULL,
                       (double)(utime + stime) / (double)tick);
    sg_metrics_family(t, "process_resident_memory_bytes", "gauge",
                      "Resident memory size in bytes.");
    if (have_stat && page > 0)
        sg_metrics_u64(t, "process_resident_memory_bytes", NULL,
                       (uint64_t)rss_pages * (uint64_t)page);
    int fds = 0;
    DIR *d = opendir("/proc/self/fd");
    if (d != NULL) {
        while (readdir(d) != NULL)
            fds++;
        closedir(d);
        fds -= 3; /* ".", "..", and the descriptor of the listing itself */
    }
    sg_metrics_family(t, "process_open_fds", "gauge", "Open file descriptors.");
    if (d != NULL)
        sg_metrics_u64(t, "process_open_fds", NULL, (uint64_t)(fds > 0 ? fds : 0));
    struct rlimit rl;
    sg_metrics_family(t, "process_max_fds", "gauge", "Limit on open file descriptors.");
    if (getrlimit(RLIMIT_NOFILE, &rl) == 0)
        sg_metrics_u64(t, "process_max_fds", NULL, (uint64_t)rl.rlim_cur);
}

/* Process, readiness and topology families: what is not a worker counter. */
static void metrics_process(struct sg_admin *a, struct sg_text *t)
{
    char hiredis[32];
    snprintf(hiredis, sizeof(hiredis), "%d.%d.%d", HIREDIS_MAJOR, HIREDIS_MINOR, HIREDIS_PATCH);
    const char *build[] = {
        "version",  SG_VERSION,          "openssl", OpenSSL_version(OPENSSL_VERSION_STRING),
        "libevent", event_get_version(), "hiredis", hiredis,
        NULL};
    sg_metrics_family(t, "slotgate_build_info", "gauge",
                      "Always 1; the labels say which build and libraries run.");
    sg_metrics_u64(t, "slotgate_build_info", build, 1);
    metrics_os_process(a, t);
    sg_metrics_family(t, "slotgate_workers", "gauge", "Worker threads.");
    sg_metrics_u64(t, "slotgate_workers", NULL, (uint64_t)a->n);
    sg_metrics_family(t, "slotgate_ready", "gauge",
                      "1 when /readyz answers 200 (topology known, not draining).");
    sg_metrics_u64(t, "slotgate_ready", NULL, sg_topology_ready() && !a->draining);
    sg_metrics_family(t, "slotgate_draining", "gauge", "1 once SIGTERM/SIGINT started the drain.");
    sg_metrics_u64(t, "slotgate_draining", NULL, a->draining != 0);

    sg_metrics_family(t, "slotgate_topology_refreshes_total", "counter",
                      "Cluster topology refreshes attempted (timer, MOVED, link loss).");
    sg_metrics_u64(t, "slotgate_topology_refreshes_total", NULL, sg_topology_refresh_count());
    sg_metrics_family(t, "slotgate_topology_refresh_failures_total", "counter",
                      "Topology refreshes that no node answered.");
    sg_metrics_u64(t, "slotgate_topology_refresh_failures_total", NULL,
                   sg_topology_refresh_failures());
    uint64_t last = sg_topology_last_refresh_ms(), now = sg_now_ms();
    sg_metrics_family(t, "slotgate_topology_last_refresh_age_seconds", "gauge",
                      "Seconds since a topology refresh last got an answer.");
    sg_metrics_f64(t, "slotgate_topology_last_refresh_age_seconds", NULL,
                   last && now > last ? (double)(now - last) / 1e3 : 0.0);

    struct sg_topology *topo = sg_topology_current();
    int covered = 0, replicas = 0;
    int *slots = NULL;
    if (topo != NULL) {
        slots = sg_calloc((size_t)topo->n_shards + 1, sizeof(*slots));
        for (int s = 0; s < SG_SLOTS; s++)
            if (topo->slot_shard[s] != SG_NO_SHARD) {
                covered++;
                slots[topo->slot_shard[s]]++;
            }
        for (int i = 0; i < topo->n_shards; i++)
            replicas += topo->shards[i].n_replicas;
    }
    sg_metrics_family(t, "slotgate_topology_slots_covered", "gauge",
                      "Hash slots (of 16384) that have a master in the current topology.");
    sg_metrics_u64(t, "slotgate_topology_slots_covered", NULL, (uint64_t)covered);
    sg_metrics_family(t, "slotgate_topology_masters", "gauge",
                      "Masters (shards) in the current topology.");
    sg_metrics_u64(t, "slotgate_topology_masters", NULL, topo ? (uint64_t)topo->n_shards : 0);
    sg_metrics_family(t, "slotgate_topology_replicas", "gauge",
                      "Replicas in the current topology.");
    sg_metrics_u64(t, "slotgate_topology_replicas", NULL, (uint64_t)replicas);
    sg_metrics_family(t, "slotgate_topology_epoch", "gauge",
                      "Increases each time a changed topology is published.");
    sg_metrics_u64(t, "slotgate_topology_epoch", NULL, topo ? topo->epoch : 0);
    sg_metrics_family(t, "slotgate_topology_shard_slots", "gauge",
                      "Hash slots owned by each shard (label shard: its master's address).");
    char shard[300];
    for (int i = 0; topo != NULL && i < topo->n_shards; i++) {
        const char *labels[] = {"shard", shard_name(&topo->shards[i].master, shard, sizeof(shard)),
                                NULL};
        sg_metrics_u64(t, "slotgate_topology_shard_slots", labels, (uint64_t)slots[i]);
    }
    sg_metrics_family(t, "slotgate_topology_shard_replicas", "gauge",
                      "Replicas of each shard in the current topology.");
    for (int i = 0; topo != NULL && i < topo->n_shards; i++) {
        const char *labels[] = {"shard", shard_name(&topo->shards[i].master, shard, sizeof(shard)),
                                NULL};
        sg_metrics_u64(t, "slotgate_topology_shard_replicas", labels,
                       (uint64_t)topo->shards[i].n_replicas);
    }
    free(slots);
    sg_topology_unref(topo);
}

/*
 * /metrics: Prometheus text format 0.0.4. Families are written one after
 * the other with every sample of a family together, as the format requires.
 */
static void on_metrics(struct evhttp_request *req, void *arg)
{
    struct sg_admin *a = arg;
    struct sg_text t = {0};
    metrics_process(a, &t);
    sg_stats_prometheus(a->cores, a->n, &t);
    struct evbuffer *b = evbuffer_new();
    evbuffer_add(b, t.buf, t.len);
    free(t.buf);
    evhttp_add_header(evhttp_request_get_output_headers(req), "Content-Type",
                      "text/plain; version=0.0.4; charset=utf-8");
    evhttp_send_reply(req, 200, "OK", b);
    evbuffer_free(b);
}

#define SG_CLIENTS_WAIT_MS 1000

static void clients_finish(struct sg_admin *a)
{
    size_t len;
    int missing;
    char *text = sg_clientlist_text(a->clients, &len, &missing);
    struct evbuffer *b = evbuffer_new();
    evbuffer_add(b, text, len);
    if (missing > 0)
        evbuffer_add_printf(b, "# %d worker(s) did not answer within %d ms\n", missing,
                            SG_CLIENTS_WAIT_MS);
    free(text);
    evhttp_add_header(evhttp_request_get_output_headers(a->clients_req), "Content-Type",
                      "text/plain; charset=utf-8");
    evhttp_send_reply(a->clients_req, 200, "OK", b);
    evbuffer_free(b);
    event_free(a->clients_ev);
    a->clients_ev = NULL;
    sg_clientlist_unref(a->clients);
    a->clients = NULL;
    a->clients_req = NULL;
}

static void on_clients_done(evutil_socket_t fd, short what, void *arg)
{
    clients_finish(arg); /* all answered, or EV_TIMEOUT */
}

/*
 * /clients: one line per client connection, with the client's own address
 * (the PROXY header's source behind a load balancer) and the balancer's.
 * Each worker lists its own sessions on its own thread (clientlist.c); the
 * reply goes out when all have answered, or after SG_CLIENTS_WAIT_MS with a
 * note naming how many did not (a worker whose loop has already ended).
 */
static void on_clients(struct evhttp_request *req, void *arg)
{
    struct sg_admin *a = arg;
    if (a->clients_req != NULL) {
        reply_text(req, 503, "Service Unavailable", "another /clients listing is in progress");
        return;
    }
    a->clients = sg_clientlist_new(a->n);
    if (a->clients == NULL) {
        reply_text(req, 503, "Service Unavailable", "cannot make an eventfd");
        return;
    }
    a->clients_ev = event_new(a->base, sg_clientlist_fd(a->clients), EV_READ, on_clients_done, a);
    a->clients_req = req;
    struct timeval tv = {SG_CLIENTS_WAIT_MS / 1000, (SG_CLIENTS_WAIT_MS % 1000) * 1000};
    event_add(a->clients_ev, &tv);
    for (int i = 0; i < a->n; i++)
        sg_worker_post_clientlist(a->workers[i], a->clients);
}

struct sg_admin *sg_admin_new(struct event_base *base, const struct sg_config *cfg,
                              struct sg_worker **workers, struct sg_core *const *cores, int n,
                              char *err, size_t errlen)
{
    if (cfg->admin.port == 0)
        return NULL;
    struct sg_admin *a = sg_calloc(1, sizeof(*a));
    a->workers = workers;
    a->cores = cores;
    a->n = n;
    a->started = time(NULL);
    a->base = base;
    a->http = evhttp_new(base);
    if (a->http == NULL ||
        evhttp_bind_socket(a->http, cfg->admin.host, (ev_uint16_t)cfg->admin.port) != 0) {
        snprintf(err, errlen, "admin: cannot listen on %s:%d", cfg->admin.host, cfg->admin.port);
        sg_admin_free(a);
        return NULL;
    }
    evhttp_set_allowed_methods(a->http, EVHTTP_REQ_GET | EVHTTP_REQ_HEAD);
    evhttp_set_cb(a->http, "/healthz", on_healthz, a);
    evhttp_set_cb(a->http, "/readyz", on_readyz, a);
    evhttp_set_cb(a->http, "/metrics", on_metrics, a);
    evhttp_set_cb(a->http, "/clients", on_clients, a);
    return a;
}

void sg_admin_set_draining(struct sg_admin *a, int draining)
{
    if (a != NULL)
        a->draining = draining;
}

void sg_admin_free(struct sg_admin *a)
{
    if (a == NULL)
        return;
    if (a->clients_ev != NULL)
        event_free(a->clients_ev);
    sg_clientlist_unref(a->clients);
    if (a->http != NULL)
        evhttp_free(a->http);
    free(a);
}
