/*
 * topomgr - discovery on an event loop (topomgr.h).
 *
 * One refresh at a time: a list of nodes to ask and the attempt in flight
 * (a probe, one CLUSTER SLOTS record queued on that node's link). A probe
 * ends by its reply, by its link's failure, or by the attempt timer; a
 * probe given up on by the timer stays with its link until the link hands
 * it back (reply or failure), and is then only freed.
 */
#include "topomgr.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include <event2/event.h>

#include "core.h"
#include "log.h"
#include "resp.h"
#include "shardlink.h"
#include "util.h"

#define SG_DISCOVER_RETRY_MS 200
#define SG_DISCOVER_LOG_MS 5000

struct probe {
    struct sg_linkop lop;
    int abandoned; /* the refresh moved on; free it when the link hands it back */
};

static struct {
    int inited;
    struct sg_core core; /* its loop, config, counters of its links */
    struct sg_shardlink **links;
    int n_links, cap_links;
    /* The refresh in progress. */
    int busy;
    struct sg_addr *nodes;
    int n_nodes, next;
    struct probe *probe; /* the attempt in flight, or NULL */
    struct event *attempt_ev;
    char err[512];
    void (*done)(struct sg_topology *t); /* takes t's reference (NULL: failed) */
    /* Start-up discovery. */
    struct sg_topology *found;
    volatile sig_atomic_t *stop_flag;
    uint64_t last_log_ms;
    /* The manager thread. */
    struct sg_topology *current; /* the snapshot published last */
    sg_topomgr_publish_fn publish;
    void *publish_arg;
    uint64_t last_ms; /* end of the last refresh */
    int again;        /* a refresh was asked for during one */
    struct event *timer_ev, *soon_ev, *notify_ev;
    int notify_fd;
    atomic_int stopping;
    pthread_t thread;
    int running;
} M = {.notify_fd = -1};

static void attempt_next(void);

/* ---- links --------------------------------------------------------------- */

static struct sg_shardlink *mgr_link(const struct sg_addr *addr)
{
    for (int i = 0; i < M.n_links; i++)
        if (sg_addr_eq(sg_shardlink_addr(M.links[i]), addr))
            return M.links[i];
    if (M.n_links == M.cap_links) {
        M.cap_links = M.cap_links ? M.cap_links * 2 : 8;
        M.links = sg_realloc(M.links, sizeof(*M.links) * (size_t)M.cap_links);
    }
    struct sg_shardlink *l = sg_shardlink_new(&M.core, addr, 0);
    M.links[M.n_links++] = l;
    return l;
}

/* Close links to nodes this refresh will not ask, and links that are down
 * with nothing pending (they would keep reconnecting for nothing). Never
 * from a link's own callback. */
static void prune_links(void)
{
    int j = 0;
    for (int i = 0; i < M.n_links; i++) {
        struct sg_shardlink *l = M.links[i];
        int wanted = 0;
        for (int k = 0; k < M.n_nodes && !wanted; k++)
            wanted = sg_addr_eq(sg_shardlink_addr(l), &M.nodes[k]);
        int dead = sg_shardlink_state(l) == SG_LINK_DOWN && sg_shardlink_pending(l) == 0;
        if (!wanted || dead) {
            sg_shardlink_free(l);
            continue;
        }
        M.links[j++] = l;
    }
    M.n_links = j;
}

/* ---- one refresh: ask the nodes in turn ---------------------------------- */

static void probe_format(struct sg_linkop *lop, struct evbuffer *out)
{
    (void)lop;
    sg_resp_cmd2(out, "CLUSTER", "SLOTS", 5);
}

static void refresh_end(struct sg_topology *t)
{
    M.busy = 0;
    M.last_ms = sg_now_ms();
    if (M.done != NULL)
        M.done(t);
    else
        sg_topology_unref(t);
}

/* The attempt in flight is over (its probe is no longer M's). */
static void attempt_over(const char *why)
{
    const struct sg_addr *a = &M.nodes[M.next];
    snprintf(M.err, sizeof(M.err), "%.300s:%d: %.160s", a->host, a->port, why);
    sg_log_debug("topology: %s", M.err);
    M.probe = NULL;
    evtimer_del(M.attempt_ev);
    M.next++;
    if (!atomic_load(&M.stopping))
        attempt_next();
}

static void probe_reply(struct sg_linkop *lop, redisReply *reply)
{
    struct probe *p = (struct probe *)lop;
    if (p->abandoned || p != M.probe) {
        freeReplyObject(reply);
        free(p);
        return;
    }
    char err[256];
    struct sg_topology *t = sg_topology_from_reply(reply, &M.nodes[M.next], err, sizeof(err));
    freeReplyObject(reply);
    free(p);
    if (t == NULL) {
        /* err already names the node */
        const char *colon = strstr(err, ": ");
        attempt_over(colon != NULL ? colon + 2 : err);
        return;
    }
    M.probe = NULL;
    evtimer_del(M.attempt_ev);
    refresh_end(t);
}

static void probe_failure(struct sg_linkop *lop, int may_have_run)
{
    (void)may_have_run;
    struct probe *p = (struct probe *)lop;
    if (p->abandoned || p != M.probe) {
        free(p);
        return;
    }
    free(p);
    attempt_over("no answer (connection failed or lost)");
}

static const struct sg_linkop_cbs probe_cbs = {probe_format, probe_reply, probe_failure, NULL};

static void on_attempt_timeout(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    (void)arg;
    if (M.probe == NULL)
        return;
    M.probe->abandoned = 1;
    attempt_over("timed out");
}

static void attempt_next(void)
{
    while (M.next < M.n_nodes) {
        struct probe *p = sg_calloc(1, sizeof(*p));
        p->lop.cbs = &probe_cbs;
        if (sg_shardlink_send(mgr_link(&M.nodes[M.next]), &p->lop) == 0) {
            M.probe = p;
            uint32_t ms =
                2 * (M.core.cfg->connect_timeout_ms ? M.core.cfg->connect_timeout_ms : 1000);
            struct timeval tv = {ms / 1000, (ms % 1000) * 1000};
            evtimer_add(M.attempt_ev, &tv);
            return;
        }
        free(p);
        const struct sg_addr *a = &M.nodes[M.next];
        snprintf(M.err, sizeof(M.err), "%.300s:%d: cannot connect", a->host, a->port);
        M.next++;
    }
    refresh_end(NULL);
}

static void add_node(const struct sg_addr *a, int cap)
{
    for (int i = 0; i < M.n_nodes; i++)
        if (sg_addr_eq(&M.nodes[i], a))
            return;
    if (M.n_nodes < cap)
        M.nodes[M.n_nodes++] = *a;
}

/* Ask the known masters, their replicas, then the seeds. */
static void refresh_begin(void)
{
    const struct sg_topology *t = M.current;
    const struct sg_config *cfg = M.core.cfg;
    int cap = cfg->n_seeds;
    if (t != NULL)
        for (int i = 0; i < t->n_shards; i++)
            cap += 1 + t->shards[i].n_replicas;
    free(M.nodes);
    M.nodes = sg_calloc((size_t)(cap > 0 ? cap : 1), sizeof(*M.nodes));
    M.n_nodes = 0;
    if (t != NULL) {
        for (int i = 0; i < t->n_shards; i++)
            add_node(&t->shards[i].master, cap);
        for (int i = 0; i < t->n_shards; i++)
            for (int j = 0; j < t->shards[i].n_replicas; j++)
                add_node(&t->shards[i].replicas[j], cap);
    }
    for (int i = 0; i < cfg->n_seeds; i++)
        add_node(&cfg->seeds[i], cap);
    snprintf(M.err, sizeof(M.err), "no nodes to ask");
    M.next = 0;
    M.busy = 1;
    M.again = 0;
    prune_links();
    attempt_next();
}

/* ---- set-up --------------------------------------------------------------- */

static int mgr_init(const struct sg_config *cfg, SSL_CTX *tls)
{
    if (M.inited)
        return 0;
    /* Its own loop, used by one thread at a time (the caller of discover,
     * then the manager thread): no locks. */
    struct event_config *ec = event_config_new();
    event_config_set_flag(ec, EVENT_BASE_FLAG_NOLOCK);
    M.core.base = event_base_new_with_config(ec);
    event_config_free(ec);
    if (M.core.base == NULL)
        return -1;
    M.core.id = -1;
    M.core.cfg = cfg;
    M.core.redis_tls = tls;
    M.attempt_ev = evtimer_new(M.core.base, on_attempt_timeout, NULL);
    M.inited = 1;
    return 0;
}

/* ---- start-up discovery ---------------------------------------------------- */

static void discover_done(struct sg_topology *t)
{
    if (t != NULL) {
        M.found = t;
        event_base_loopbreak(M.core.base);
        return;
    }
    uint64_t now = sg_now_ms();
    if (now - M.last_log_ms >= SG_DISCOVER_LOG_MS) {
        sg_log_warn("waiting for Redis: %s", M.err);
        M.last_log_ms = now;
    }
}

/* Every retry period: stop when asked, else ask again if the last round
 * of nodes is over (a signal does not interrupt the loop, so the stop
 * flag is polled). */
static void on_discover_poll(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    (void)arg;
    if (*M.stop_flag)
        event_base_loopbreak(M.core.base);
    else if (!M.busy && M.found == NULL)
        refresh_begin();
}

struct sg_topology *sg_topomgr_discover(const struct sg_config *cfg, SSL_CTX *tls,
                                        volatile sig_atomic_t *stop)
{
    if (mgr_init(cfg, tls) != 0)
        return NULL;
    M.stop_flag = stop;
    M.found = NULL;
    M.done = discover_done;
    struct event *poll_ev = event_new(M.core.base, -1, EV_PERSIST, on_discover_poll, NULL);
    struct timeval tv = {0, SG_DISCOVER_RETRY_MS * 1000};
    evtimer_add(poll_ev, &tv);
    refresh_begin();
    while (M.found == NULL && !*stop)
        event_base_loop(M.core.base, EVLOOP_ONCE);
    event_free(poll_ev);
    M.done = NULL;
    if (M.found != NULL)
        sg_topology_note_answer();
    struct sg_topology *t = M.found;
    M.found = NULL;
    return t;
}

/* ---- the manager thread ------------------------------------------------------ */

static void publish_done(struct sg_topology *t)
{
    sg_topology_count_refresh(t != NULL);
    if (t == NULL) {
        sg_log_warn("topology refresh failed: %s", M.err);
    } else if (sg_topology_same(t, M.current)) {
        sg_topology_unref(t);
    } else {
        t->epoch = M.current ? M.current->epoch + 1 : 1;
        sg_log_info("topology changed: %d shard(s), epoch %llu", t->n_shards,
                    (unsigned long long)t->epoch);
        for (int i = 0; i < t->n_shards; i++)
            sg_log_info("  shard %d: master %s:%d, %d replica(s)", i, t->shards[i].master.host,
                        t->shards[i].master.port, t->shards[i].n_replicas);
        M.publish(M.publish_arg, t);
        sg_topology_unref(M.current);
        M.current = sg_topology_ref(t);
        sg_topology_set_current(t); /* takes the reference */
    }
    if (M.again && !atomic_load(&M.stopping)) {
        /* Asked for during this one: again, after the minimum interval. */
        M.again = 0;
        uint32_t ms = M.core.cfg->topology_min_interval_ms;
        struct timeval tv = {ms / 1000, (ms % 1000) * 1000};
        evtimer_add(M.soon_ev, &tv);
    }
}

static void refresh_now(void)
{
    if (atomic_load(&M.stopping))
        return;
    if (M.busy) {
        M.again = 1;
        return;
    }
    evtimer_del(M.soon_ev);
    refresh_begin();
}

static void on_timer(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    (void)arg;
    refresh_now();
}

static void on_notify(evutil_socket_t fd, short what, void *arg)
{
    (void)what;
    (void)arg;
    uint64_t v;
    ssize_t n = read(fd, &v, sizeof(v));
    (void)n;
    if (atomic_load(&M.stopping)) {
        event_base_loopbreak(M.core.base);
        return;
    }
    if (M.busy) {
        M.again = 1;
        return;
    }
    if (evtimer_pending(M.soon_ev, NULL))
        return; /* one is already due */
    uint64_t now = sg_now_ms(), min = M.core.cfg->topology_min_interval_ms;
    uint64_t wait = now < M.last_ms + min ? M.last_ms + min - now : 0;
    struct timeval tv = {(time_t)(wait / 1000), (suseconds_t)((wait % 1000) * 1000)};
    evtimer_add(M.soon_ev, &tv);
}

static void *manager_main(void *arg)
{
    (void)arg;
    event_base_dispatch(M.core.base);
    return NULL;
}

int sg_topomgr_start(struct sg_topology *initial, sg_topomgr_publish_fn publish, void *arg)
{
    if (!M.inited)
        return -1;
    M.publish = publish;
    M.publish_arg = arg;
    M.done = publish_done;
    M.current = sg_topology_ref(initial);
    sg_topology_set_current(sg_topology_ref(initial));
    sg_topology_note_answer();
    M.last_ms = sg_now_ms();
    M.notify_fd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
    if (M.notify_fd < 0)
        return -1;
    M.notify_ev = event_new(M.core.base, M.notify_fd, EV_READ | EV_PERSIST, on_notify, NULL);
    event_add(M.notify_ev, NULL);
    M.soon_ev = evtimer_new(M.core.base, on_timer, NULL);
    M.timer_ev = event_new(M.core.base, -1, EV_PERSIST, on_timer, NULL);
    uint32_t every = M.core.cfg->topology_refresh_ms;
    struct timeval tv = {every / 1000, (every % 1000) * 1000};
    evtimer_add(M.timer_ev, &tv);
    atomic_store(&M.stopping, 0);
    if (pthread_create(&M.thread, NULL, manager_main, NULL) != 0)
        return -1;
    M.running = 1;
    return 0;
}

void sg_topomgr_request_refresh(void)
{
    if (M.notify_fd >= 0) {
        uint64_t one = 1;
        ssize_t n = write(M.notify_fd, &one, sizeof(one)); /* EAGAIN: already signalled */
        (void)n;
    }
}

void sg_topomgr_stop(void)
{
    if (!M.inited)
        return;
    atomic_store(&M.stopping, 1);
    if (M.running) {
        sg_topomgr_request_refresh();
        pthread_join(M.thread, NULL);
        M.running = 0;
    }
    M.probe = NULL; /* freed when its link hands it back, below */
    for (int i = 0; i < M.n_links; i++)
        sg_shardlink_free(M.links[i]);
    free(M.links);
    M.links = NULL;
    M.n_links = M.cap_links = 0;
    free(M.nodes);
    M.nodes = NULL;
    event_free(M.attempt_ev);
    if (M.notify_ev != NULL)
        event_free(M.notify_ev);
    if (M.soon_ev != NULL)
        event_free(M.soon_ev);
    if (M.timer_ev != NULL)
        event_free(M.timer_ev);
    if (M.notify_fd >= 0)
        close(M.notify_fd);
    M.notify_fd = -1;
    event_base_free(M.core.base);
    sg_topology_unref(M.current);
    M.current = NULL;
    sg_topology_set_current(NULL);
    M.inited = 0;
}
