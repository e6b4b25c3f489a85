/*
 * admin - operators' HTTP endpoints on the main thread's event_base, away
 * from the workers: /healthz (the process runs), /readyz (topology known,
 * not draining: what a load balancer should check), /metrics (Prometheus).
 */
#include "admin.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <event2/buffer.h>
#include <event2/http.h>

#include "stats.h"
#include "topology.h"
#include "util.h"
#include "worker.h"

struct sg_admin {
    struct evhttp *http;
    struct sg_worker **workers;
    int n;
    int draining;
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

static void metrics_visit(const char *name, uint64_t value, void *arg)
{
    struct evbuffer *b = arg;
    char metric[128];
    snprintf(metric, sizeof(metric), "%s", name);
    for (char *p = metric; *p; p++)
        if (*p == '.')
            *p = '_';
    name = metric;
    int gauge = strcmp(name, "workers") == 0 || strcmp(name, "connections_active") == 0;
    evbuffer_add_printf(b, "# TYPE slotgate_%s %s\nslotgate_%s %llu\n", name,
                        gauge ? "gauge" : "counter", name, (unsigned long long)value);
}

static void on_metrics(struct evhttp_request *req, void *arg)
{
    struct sg_admin *a = arg;
    struct evbuffer *b = evbuffer_new();
    sg_stats_collect(a->workers, a->n, metrics_visit, b);
    evbuffer_add_printf(b, "# TYPE slotgate_ready gauge\nslotgate_ready %d\n",
                        sg_topology_ready() && !a->draining);
    evhttp_add_header(evhttp_request_get_output_headers(req), "Content-Type",
                      "text/plain; version=0.0.4");
    evhttp_send_reply(req, 200, "OK", b);
    evbuffer_free(b);
}

struct sg_admin *sg_admin_new(struct event_base *base, const struct sg_config *cfg,
                              struct sg_worker **workers, int n, char *err, size_t errlen)
{
    if (cfg->admin.port == 0)
        return NULL;
    struct sg_admin *a = sg_calloc(1, sizeof(*a));
    a->workers = workers;
    a->n = n;
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
    if (a->http != NULL)
        evhttp_free(a->http);
    free(a);
}
