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

#include "clientlist.h"
#include "coalesce.h"
#include "listener.h"
#include "request.h"
#include "log.h"
#include "session.h"
#include "shardlink.h"
#include "util.h"

_Atomic uint32_t sg_connections;

enum { SG_NOTIFY_MAILBOX = 1, SG_NOTIFY_DRAIN = 2, SG_NOTIFY_STOP = 4 };

/* ---- config snapshots ------------------------------------------------------ */

struct sg_snapshot *sg_snapshot_new(const struct sg_config *cfg, SSL_CTX *server_tls,
                                    uint64_t generation)
{
    struct sg_snapshot *s = sg_calloc(1, sizeof(*s));
    atomic_init(&s->refs, 1);
    s->generation = generation;
    s->cfg = *cfg;
    s->server_tls = server_tls;
    return s;
}

struct sg_snapshot *sg_snapshot_ref(struct sg_snapshot *s)
{
    if (s != NULL)
        atomic_fetch_add(&s->refs, 1);
    return s;
}

void sg_snapshot_unref(struct sg_snapshot *s)
{
    if (s == NULL || atomic_fetch_sub(&s->refs, 1) != 1)
        return;
    if (s->server_tls != NULL)
        SSL_CTX_free(s->server_tls);
    free(s);
}

static struct {
    pthread_mutex_t lock;
    struct sg_snapshot *current;
} snapshots = {.lock = PTHREAD_MUTEX_INITIALIZER};

void sg_snapshot_publish(struct sg_snapshot *s)
{
    sg_snapshot_ref(s);
    pthread_mutex_lock(&snapshots.lock);
    struct sg_snapshot *old = snapshots.current;
    snapshots.current = s;
    pthread_mutex_unlock(&snapshots.lock);
    sg_snapshot_unref(old);
}

struct sg_snapshot *sg_snapshot_acquire(void)
{
    pthread_mutex_lock(&snapshots.lock);
    struct sg_snapshot *s = sg_snapshot_ref(snapshots.current);
    pthread_mutex_unlock(&snapshots.lock);
    return s;
}

void sg_snapshot_release(struct sg_snapshot *s)
{
    sg_snapshot_unref(s);
}

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
    for (int i = 0; i < w->n_links; i++)
        if (w->links[i]->n_pending > 0)
            return 0;
    return 1;
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
        sg_log_debug("worker %d: config generation %llu released", w->id,
                     (unsigned long long)u->snap->generation);
        sg_snapshot_unref(u->snap);
        memmove(u, u + 1, sizeof(*u) * (size_t)(w->n_uses - i - 1));
        w->n_uses--;
    }
    if (idle == 1)
        for (int i = 0; i < w->n_uses; i++)
            w->uses[i].lingering = 0;
}

void sg_worker_snapshot_hold(struct sg_worker *w, const struct sg_keyspace_config *ks)
{
    struct sg_snapshot_use *u = worker_use_of(w, ks);
    if (u != NULL)
        u->requests++;
}

void sg_worker_snapshot_drop(struct sg_worker *w, const struct sg_keyspace_config *ks,
                             int lingering)
{
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
    w->cfg = &snap->cfg;
    w->server_tls = snap->server_tls;
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
        sg_clientlist_answer(clients, w);
        sg_clientlist_unref(clients);
    }
    if (t != NULL) {
        sg_topology_unref(w->topo);
        w->topo = t;
        free(w->master_links);
        w->master_links = NULL;
    }
    if (snap != NULL) {
        /* Requests in flight keep pointers into the old one (r->ks): it
         * stays in w->uses until they are done. */
        sg_log_debug("worker %d: config generation %llu in force", w->id,
                     (unsigned long long)snap->generation);
        worker_set_snapshot(w, snap);
    }
}

static void on_drain_timeout(evutil_socket_t fd, short what, void *arg)
{
    struct sg_worker *w = arg;
    sg_log_warn("worker %d: drain timeout, closing %s", w->id,
                TAILQ_EMPTY(&w->sessions) ? "nothing" : "remaining sessions");
    event_base_loopbreak(w->base);
}

static void on_drain(struct sg_worker *w)
{
    if (w->draining)
        return;
    w->draining = 1;
    sg_listener_free(w->listener);
    w->listener = NULL;
    struct sg_session *s, *next;
    for (s = TAILQ_FIRST(&w->sessions); s != NULL; s = next) {
        next = TAILQ_NEXT(s, entry);
        sg_session_drain(s);
    }
    if (TAILQ_EMPTY(&w->sessions)) {
        event_base_loopbreak(w->base);
        return;
    }
    uint32_t ms = w->cfg->drain_timeout_ms;
    struct timeval tv = {ms / 1000, (ms % 1000) * 1000};
    w->drain_timer = evtimer_new(w->base, on_drain_timeout, w);
    evtimer_add(w->drain_timer, &tv);
}

void sg_worker_session_closed(struct sg_worker *w)
{
    if (w->draining && TAILQ_EMPTY(&w->sessions))
        event_base_loopbreak(w->base);
}

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
        event_base_loopbreak(w->base);
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
    w->id = id;
    worker_set_snapshot(w, sg_snapshot_ref(snap));
    w->redis_tls = redis_tls;
    w->topo = sg_topology_ref(topo);
    TAILQ_INIT(&w->sessions);
    pthread_mutex_init(&w->mbox_lock, NULL);
    /* Everything on this base runs on this thread: no locks. (No epoll
     * changelist: it defers EPOLL_CTL_DEL past close(), onto an fd number
     * another thread may already have reused; conn.c registers write
     * interest only when a socket is full, so there is little to fold.) */
    struct event_config *ec = event_config_new();
    event_config_set_flag(ec, EVENT_BASE_FLAG_NOLOCK);
    w->base = event_base_new_with_config(ec);
    event_config_free(ec);
    w->notify_fd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
    if (w->base == NULL || w->notify_fd < 0) {
        snprintf(err, errlen, "event_base_new failed");
        sg_worker_free(w);
        return NULL;
    }
    w->coalesce = sg_coalesce_new();
    w->notify_ev = event_new(w->base, w->notify_fd, EV_READ | EV_PERSIST, on_notify, w);
    event_add(w->notify_ev, NULL);
    w->listener = sg_listener_new(w, cfg->listen.host, cfg->listen.port, err, errlen);
    if (w->listener == NULL) {
        sg_worker_free(w);
        return NULL;
    }
    return w;
}

static void *worker_main(void *arg)
{
    struct sg_worker *w = arg;
    event_base_dispatch(w->base);
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
    while ((s = TAILQ_FIRST(&w->sessions)) != NULL)
        sg_session_free(s);
    for (int i = 0; i < w->n_links; i++)
        sg_shardlink_free(w->links[i]);
    free(w->links);
    free(w->master_links);
    sg_coalesce_free(w->coalesce);
    sg_request_pool_free(w);
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
    if (w->base)
        event_base_free(w->base);
    sg_topology_unref(w->mbox_topo);
    sg_topology_unref(w->topo);
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

struct sg_shardlink *sg_worker_shard_link(struct sg_worker *w, uint16_t sh)
{
    if (w->master_links == NULL)
        w->master_links = sg_calloc((size_t)w->topo->n_shards, sizeof(*w->master_links));
    if (w->master_links[sh] == NULL)
        w->master_links[sh] = sg_worker_link(w, &w->topo->shards[sh].master, 0);
    return w->master_links[sh];
}

struct sg_shardlink *sg_worker_link(struct sg_worker *w, const struct sg_addr *addr, int readonly)
{
    for (int i = 0; i < w->n_links; i++) {
        struct sg_shardlink *l = w->links[i];
        if (l->addr.port == addr->port && l->readonly == readonly &&
            strcmp(l->addr.host, addr->host) == 0)
            return l;
    }
    if (w->n_links == w->cap_links) {
        w->cap_links = w->cap_links ? w->cap_links * 2 : 8;
        w->links = sg_realloc(w->links, sizeof(*w->links) * (size_t)w->cap_links);
    }
    struct sg_shardlink *l = sg_shardlink_new(w, addr, readonly);
    w->links[w->n_links++] = l;
    return l;
}
