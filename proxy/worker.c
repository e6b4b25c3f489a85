/*
 * worker - a thread running one event_base. Everything a worker owns
 * (sessions, shard links, requests) is touched only by its thread, and its
 * event_base is created without locks. Other threads reach a worker only
 * through worker_notify: a bit in notify_bits plus a write to its eventfd.
 * The mailbox (topology snapshot, config snapshot) sits under mbox_lock,
 * taken only when something changes, never per request.
 *
 * Config snapshots: the worker serves with w->snap and keeps, in w->uses,
 * every older snapshot that a request in flight may still read (r->ks
 * points into its keyspace table). Sessions report requests starting and
 * ending (sg_worker_snapshot_hold/drop, worker thread only, no atomics);
 * an older snapshot is unreferenced as soon as none is left, so a reload
 * costs memory only while requests that began before it are in flight.
 */
#include "worker.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include <pthread.h>
#include <stdatomic.h>
#include <sys/queue.h>

#include "clientlist.h"
#include "coalesce.h"
#include "deadline.h"
#include "core.h"
#include "listener.h"
#include "log.h"
#include "request.h"
#include "router.h"
#include "session.h"
#include "topomgr.h"
#include "util.h"

/* How many requests of a worker started under one snapshot are in flight. */
struct sg_snapshot_use {
    struct sg_snapshot *snap; /* owned reference */
    uint32_t requests;        /* started, not yet answered */
    uint32_t lingering;       /* answered, but sub-ops were still on a link */
};

struct sg_worker {
    /* What the layers below see (core.h): loop, config in force, counters,
     * sessions, router, coalescing, request pool, hooks back to here. */
    struct sg_core core;
    pthread_t thread;
    /* The snapshot in force: new connections and new requests use it
     * (core.cfg and core.server_tls point into it). */
    struct sg_snapshot *snap;
    /* Snapshots still referenced by requests in flight (the current one
     * first); an older one is dropped once nothing can reach it. */
    struct sg_snapshot_use *uses;
    int n_uses, cap_uses;
    struct sg_listener *listener;
    /* Cross-thread notifications: another thread sets bits in notify_bits
     * and writes to the eventfd; the worker's loop reads both. The event
     * base itself takes no locks. Mailbox contents are under mbox_lock. */
    int notify_fd;
    _Atomic unsigned notify_bits;
    struct event *notify_ev;
    pthread_mutex_t mbox_lock;
    struct sg_topology *mbox_topo;
    struct sg_snapshot *mbox_snap;      /* SIGHUP reload */
    struct sg_clientlist *mbox_clients; /* an admin /clients listing */
    struct event *drain_timer;
    int draining;
    /* Written one byte when the worker's loop has ended (main waits for
     * all of them while it keeps serving /readyz during a drain); -1: none. */
    int exit_fd;
};

enum { SG_NOTIFY_MAILBOX = 1, SG_NOTIFY_DRAIN = 2, SG_NOTIFY_STOP = 4 };

static void worker_use_add(struct sg_worker *w, struct sg_snapshot *snap)
{
    if (w->n_uses == w->cap_uses) {
        w->cap_uses = w->cap_uses ? w->cap_uses * 2 : 4;
        w->uses = sg_realloc(w->uses, sizeof(*w->uses) * (size_t)w->cap_uses);
    }
    /* The current one goes first: most requests find it at index 0. */
    memmove(w->uses + 1, w->uses, sizeof(*w->uses) * (size_t)w->n_uses);
    w->uses[0] = (struct sg_snapshot_use){.snap = snap};
    w->n_uses++;
}

static struct sg_snapshot_use *worker_use_of(struct sg_worker *w,
                                             const struct sg_keyspace_config *ks)
{
    for (int i = 0; i < w->n_uses; i++) {
        const struct sg_keyspace_config *t = w->uses[i].snap->cfg.keyspaces;
        if (ks >= t && ks < t + SG_MAX_KEYSPACES)
            return &w->uses[i];
    }
    return NULL;
}

static int worker_links_idle(const struct sg_worker *w)
{
    return sg_router_idle(w->core.router);
}

/* Drop older snapshots nothing can reach any more. */
static void worker_retire_snapshots(struct sg_worker *w)
{
    if (w->n_uses <= 1)
        return;
    int idle = -1;
    for (int i = w->n_uses - 1; i >= 1; i--) {
        struct sg_snapshot_use *u = &w->uses[i];
        if (u->requests > 0)
            continue;
        if (u->lingering > 0) {
            if (idle < 0)
                idle = worker_links_idle(w);
            if (!idle)
                continue;
        }
        sg_log_debug("worker %d: config generation %llu released", w->core.id,
                     (unsigned long long)u->snap->generation);
        sg_stats_forget_keyspaces(&w->core.stats); /* its keyspaces' addresses */
        sg_snapshot_unref(u->snap);
        memmove(u, u + 1, sizeof(*u) * (size_t)(w->n_uses - i - 1));
        w->n_uses--;
    }
    if (idle == 1)
        for (int i = 0; i < w->n_uses; i++)
            w->uses[i].lingering = 0;
}

static void hook_snapshot_hold(void *owner, const struct sg_keyspace_config *ks)
{
    struct sg_worker *w = owner;
    struct sg_snapshot_use *u = worker_use_of(w, ks);
    if (u != NULL)
        u->requests++;
}

static void hook_snapshot_drop(void *owner, const struct sg_keyspace_config *ks, int lingering)
{
    struct sg_worker *w = owner;
    struct sg_snapshot_use *u = worker_use_of(w, ks);
    if (u == NULL || u->requests == 0)
        return;
    u->requests--;
    if (lingering)
        u->lingering++;
    if (w->n_uses > 1)
        worker_retire_snapshots(w);
}

/* Serve with snap from now on (takes over the caller's reference). */
static void worker_set_snapshot(struct sg_worker *w, struct sg_snapshot *snap)
{
    w->snap = snap;
    w->core.cfg = &snap->cfg;
    w->core.server_tls = snap->server_tls;
    worker_use_add(w, snap);
    worker_retire_snapshots(w);
}

static void worker_notify(struct sg_worker *w, unsigned bit)
{
    atomic_fetch_or(&w->notify_bits, bit);
    uint64_t one = 1;
    ssize_t n = write(w->notify_fd, &one, sizeof(one)); /* EAGAIN: already signalled */
    (void)n;
}

static void on_mailbox(struct sg_worker *w)
{
    pthread_mutex_lock(&w->mbox_lock);
    struct sg_topology *t = w->mbox_topo;
    w->mbox_topo = NULL;
    struct sg_snapshot *snap = w->mbox_snap;
    w->mbox_snap = NULL;
    struct sg_clientlist *clients = w->mbox_clients;
    w->mbox_clients = NULL;
    pthread_mutex_unlock(&w->mbox_lock);
    if (clients != NULL) {
        sg_clientlist_answer(clients, &w->core);
        sg_clientlist_unref(clients);
    }
    if (t != NULL)
        sg_router_set_topology(w->core.router, t);
    if (snap != NULL) {
        /* Requests in flight keep pointers into the old one (r->ks): it
         * stays in w->uses until they are done. */
        sg_log_debug("worker %d: config generation %llu in force", w->core.id,
                     (unsigned long long)snap->generation);
        worker_set_snapshot(w, snap);
    }
}

static void on_drain_timeout(evutil_socket_t fd, short what, void *arg)
{
    struct sg_worker *w = arg;
    sg_log_warn("worker %d: drain timeout, closing %s", w->core.id,
                TAILQ_EMPTY(&w->core.sessions) ? "nothing" : "remaining sessions");
    event_base_loopbreak(w->core.base);
}

static void on_drain(struct sg_worker *w)
{
    if (w->draining)
        return;
    w->draining = 1;
    sg_listener_free(w->listener);
    w->listener = NULL;
    struct sg_session *s, *next;
    for (s = sg_session_first(&w->core); s != NULL; s = next) {
        next = sg_session_next(s);
        sg_session_drain(s);
    }
    if (TAILQ_EMPTY(&w->core.sessions)) {
        event_base_loopbreak(w->core.base);
        return;
    }
    uint32_t ms = w->core.cfg->drain_timeout_ms;
    struct timeval tv = {ms / 1000, (ms % 1000) * 1000};
    w->drain_timer = evtimer_new(w->core.base, on_drain_timeout, w);
    evtimer_add(w->drain_timer, &tv);
}

static void hook_session_closed(void *owner)
{
    struct sg_worker *w = owner;
    if (w->draining && TAILQ_EMPTY(&w->core.sessions))
        event_base_loopbreak(w->core.base);
}

static void hook_topology_refresh(void *owner)
{
    (void)owner;
    sg_topomgr_request_refresh();
}

static const struct sg_core_hooks worker_hooks = {
    .session_closed = hook_session_closed,
    .snapshot_hold = hook_snapshot_hold,
    .snapshot_drop = hook_snapshot_drop,
    .topology_refresh = hook_topology_refresh,
};

static void on_notify(evutil_socket_t fd, short what, void *arg)
{
    struct sg_worker *w = arg;
    uint64_t v;
    ssize_t n = read(w->notify_fd, &v, sizeof(v));
    (void)n;
    unsigned bits = atomic_exchange(&w->notify_bits, 0);
    if (bits & SG_NOTIFY_MAILBOX)
        on_mailbox(w);
    if (bits & SG_NOTIFY_STOP) {
        event_base_loopbreak(w->core.base);
        return;
    }
    if (bits & SG_NOTIFY_DRAIN)
        on_drain(w);
}

void sg_worker_drain(struct sg_worker *w)
{
    worker_notify(w, SG_NOTIFY_DRAIN);
}

void sg_worker_post_snapshot(struct sg_worker *w, struct sg_snapshot *snap)
{
    sg_snapshot_ref(snap);
    pthread_mutex_lock(&w->mbox_lock);
    struct sg_snapshot *old = w->mbox_snap; /* never taken: superseded */
    w->mbox_snap = snap;
    pthread_mutex_unlock(&w->mbox_lock);
    sg_snapshot_unref(old);
    worker_notify(w, SG_NOTIFY_MAILBOX);
}

void sg_worker_post_clientlist(struct sg_worker *w, struct sg_clientlist *l)
{
    sg_clientlist_ref(l);
    pthread_mutex_lock(&w->mbox_lock);
    struct sg_clientlist *old = w->mbox_clients;
    w->mbox_clients = l;
    pthread_mutex_unlock(&w->mbox_lock);
    if (old != NULL) {
        sg_clientlist_skip(old);
        sg_clientlist_unref(old);
    }
    worker_notify(w, SG_NOTIFY_MAILBOX);
}

struct sg_worker *sg_worker_new(int id, struct sg_snapshot *snap, SSL_CTX *redis_tls,
                                struct sg_topology *topo, char *err, size_t errlen)
{
    const struct sg_config *cfg = &snap->cfg;
    struct sg_worker *w = sg_calloc(1, sizeof(*w));
    w->notify_fd = -1;
    w->exit_fd = -1;
    w->core.id = id;
    w->core.hooks = &worker_hooks;
    w->core.owner = w;
    worker_set_snapshot(w, sg_snapshot_ref(snap));
    w->core.redis_tls = redis_tls;
    TAILQ_INIT(&w->core.sessions);
    pthread_mutex_init(&w->mbox_lock, NULL);
    /* Everything on this base runs on this thread: no locks. (No epoll
     * changelist: it defers EPOLL_CTL_DEL past close(), onto an fd number
     * another thread may already have reused; conn.c registers write
     * interest only when a socket is full, so there is little to fold.) */
    struct event_config *ec = event_config_new();
    event_config_set_flag(ec, EVENT_BASE_FLAG_NOLOCK);
    w->core.base = event_base_new_with_config(ec);
    event_config_free(ec);
    w->notify_fd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
    if (w->core.base == NULL || w->notify_fd < 0) {
        snprintf(err, errlen, "event_base_new failed");
        sg_worker_free(w);
        return NULL;
    }
    w->core.coalesce = sg_coalesce_new();
    w->core.deadlines = sg_deadlines_new(w->core.base);
    w->core.router = sg_router_new(&w->core, topo);
    w->notify_ev = event_new(w->core.base, w->notify_fd, EV_READ | EV_PERSIST, on_notify, w);
    event_add(w->notify_ev, NULL);
    w->listener = sg_listener_new(&w->core, cfg->listen.host, cfg->listen.port, err, errlen);
    if (w->listener == NULL) {
        sg_worker_free(w);
        return NULL;
    }
    return w;
}

static void *worker_main(void *arg)
{
    struct sg_worker *w = arg;
    event_base_dispatch(w->core.base);
    if (w->exit_fd >= 0) {
        char b = 'x';
        ssize_t n = write(w->exit_fd, &b, 1);
        (void)n;
    }
    return NULL;
}

int sg_worker_start(struct sg_worker *w)
{
    return pthread_create(&w->thread, NULL, worker_main, w) == 0 ? 0 : -1;
}

void sg_worker_stop(struct sg_worker *w)
{
    worker_notify(w, SG_NOTIFY_STOP);
}

void sg_worker_join(struct sg_worker *w)
{
    pthread_join(w->thread, NULL);
}

/*
 * Called after the thread has exited: sessions first (their requests are
 * orphaned), then links (which settles and frees what is left).
 */
void sg_worker_free(struct sg_worker *w)
{
    if (w == NULL)
        return;
    struct sg_session *s;
    while ((s = TAILQ_FIRST(&w->core.sessions)) != NULL)
        sg_session_free(s);
    sg_router_free(w->core.router);
    sg_coalesce_free(w->core.coalesce);
    sg_request_pool_free(&w->core);
    sg_deadlines_free(w->core.deadlines);
    sg_listener_free(w->listener);
    if (w->notify_ev)
        event_free(w->notify_ev);
    if (w->notify_fd >= 0)
        close(w->notify_fd);
    if (w->drain_timer)
        event_free(w->drain_timer);
    for (int i = 0; i < w->n_uses; i++)
        sg_snapshot_unref(w->uses[i].snap);
    free(w->uses);
    sg_snapshot_unref(w->mbox_snap);
    if (w->mbox_clients != NULL) {
        sg_clientlist_skip(w->mbox_clients);
        sg_clientlist_unref(w->mbox_clients);
    }
    if (w->core.base)
        event_base_free(w->core.base);
    sg_topology_unref(w->mbox_topo);
    pthread_mutex_destroy(&w->mbox_lock);
    free(w);
}

void sg_worker_post_topology(struct sg_worker *w, struct sg_topology *t)
{
    sg_topology_ref(t);
    pthread_mutex_lock(&w->mbox_lock);
    struct sg_topology *old = w->mbox_topo;
    w->mbox_topo = t;
    pthread_mutex_unlock(&w->mbox_lock);
    sg_topology_unref(old);
    worker_notify(w, SG_NOTIFY_MAILBOX);
}

void sg_worker_set_all(struct sg_worker *w, struct sg_core *const *all, int n_all)
{
    w->core.all = all;
    w->core.n_all = n_all;
}

void sg_worker_set_exit_fd(struct sg_worker *w, int fd)
{
    w->exit_fd = fd;
}

struct sg_core *sg_worker_core(struct sg_worker *w)
{
    return &w->core;
}
