/*
 * topology - discovery of the cluster's slot map and its distribution to
 * workers. The manager runs on its own thread because discovery uses a
 * blocking client: the data path never waits on it. Workers ask for a
 * refresh (MOVED, link failure) by writing a byte to a pipe; a burst of
 * requests collapses into one refresh per topology_min_interval_ms.
 */
#include "topology.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "log.h"
#include "resp.h"
#include "util.h"
#include "worker.h"

struct sg_topology *sg_topology_ref(struct sg_topology *t)
{
    if (t != NULL)
        atomic_fetch_add_explicit(&t->refs, 1, memory_order_relaxed);
    return t;
}

void sg_topology_unref(struct sg_topology *t)
{
    if (t == NULL)
        return;
    if (atomic_fetch_sub_explicit(&t->refs, 1, memory_order_acq_rel) == 1) {
        free(t->shards);
        free(t);
    }
}

const struct sg_addr *sg_topology_master_of(const struct sg_topology *t, uint16_t slot)
{
    uint16_t s = t->slot_shard[slot];
    return s == SG_NO_SHARD ? NULL : &t->shards[s].master;
}

static int addr_eq(const struct sg_addr *a, const struct sg_addr *b)
{
    return a->port == b->port && strcmp(a->host, b->host) == 0;
}

int sg_topology_same(const struct sg_topology *a, const struct sg_topology *b)
{
    if (a == NULL || b == NULL)
        return a == b;
    for (int slot = 0; slot < SG_SLOTS; slot++) {
        const struct sg_addr *ma = sg_topology_master_of(a, (uint16_t)slot);
        const struct sg_addr *mb = sg_topology_master_of(b, (uint16_t)slot);
        if ((ma == NULL) != (mb == NULL))
            return 0;
        if (ma != NULL && !addr_eq(ma, mb))
            return 0;
    }
    return 1;
}

static int shard_index(struct sg_topology *t, const struct sg_addr *master)
{
    for (int i = 0; i < t->n_shards; i++)
        if (addr_eq(&t->shards[i].master, master))
            return i;
    t->shards = sg_realloc(t->shards, sizeof(*t->shards) * (size_t)(t->n_shards + 1));
    memset(&t->shards[t->n_shards], 0, sizeof(t->shards[0]));
    t->shards[t->n_shards].master = *master;
    return t->n_shards++;
}

/*
 * Reply element [ip, port, id, ...] to an address. An empty ip (a node that
 * does not know its own address) means "the node we asked".
 */
static int node_addr(const redisReply *n, const struct sg_addr *asked, struct sg_addr *out)
{
    if (n->type != REDIS_REPLY_ARRAY || n->elements < 2 ||
        n->element[0]->type != REDIS_REPLY_STRING || n->element[1]->type != REDIS_REPLY_INTEGER)
        return -1;
    if (n->element[0]->len == 0 || n->element[0]->len >= sizeof(out->host) - 1)
        snprintf(out->host, sizeof(out->host), "%s", asked->host);
    else
        snprintf(out->host, sizeof(out->host), "%s", n->element[0]->str);
    out->port = (int)n->element[1]->integer;
    return out->port > 0 && out->port < 65536 ? 0 : -1;
}

static struct sg_topology *topology_new(void)
{
    struct sg_topology *t = sg_calloc(1, sizeof(*t));
    atomic_init(&t->refs, 1);
    for (int i = 0; i < SG_SLOTS; i++)
        t->slot_shard[i] = SG_NO_SHARD;
    return t;
}

static struct sg_topology *topology_from_slots(const redisReply *r, const struct sg_addr *asked)
{
    struct sg_topology *t = topology_new();
    t->cluster = 1;
    for (size_t i = 0; i < r->elements; i++) {
        const redisReply *e = r->element[i];
        struct sg_addr master;
        if (e->type != REDIS_REPLY_ARRAY || e->elements < 3 ||
            e->element[0]->type != REDIS_REPLY_INTEGER ||
            e->element[1]->type != REDIS_REPLY_INTEGER || node_addr(e->element[2], asked, &master))
            continue;
        long long lo = e->element[0]->integer, hi = e->element[1]->integer;
        if (lo < 0 || hi >= SG_SLOTS || lo > hi)
            continue;
        int idx = shard_index(t, &master);
        struct sg_shard_info *sh = &t->shards[idx];
        for (size_t j = 3; j < e->elements; j++) {
            struct sg_addr rep;
            if (node_addr(e->element[j], asked, &rep) == 0 && sh->n_replicas < SG_MAX_REPLICAS) {
                int dup = 0;
                for (int k = 0; k < sh->n_replicas; k++)
                    dup |= addr_eq(&sh->replicas[k], &rep);
                if (!dup)
                    sh->replicas[sh->n_replicas++] = rep;
            }
        }
        for (long long s = lo; s <= hi; s++)
            t->slot_shard[s] = (uint16_t)idx;
    }
    return t;
}

static struct sg_topology *fetch_one(const struct sg_config *cfg, SSL_CTX *tls,
                                     const struct sg_addr *node, char *err, size_t errlen)
{
    struct sg_resp_conn *c = sg_resp_connect(node, tls, (int)cfg->connect_timeout_ms, err, errlen);
    if (c == NULL)
        return NULL;
    redisReply *r;
    if (cfg->redis_password[0] != '\0') {
        const char *argv[3] = {"AUTH", cfg->redis_username, cfg->redis_password};
        size_t lens[3] = {4, strlen(argv[1]), strlen(argv[2])};
        int with_user = cfg->redis_username[0] != '\0';
        r = with_user ? sg_resp_command(c, 3, argv, lens, err, errlen)
                      : sg_resp_command(c, 2, (const char *[]){"AUTH", cfg->redis_password},
                                        (size_t[]){4, lens[2]}, err, errlen);
        if (r == NULL || r->type == REDIS_REPLY_ERROR) {
            if (r != NULL)
                snprintf(err, errlen, "%s:%d: AUTH: %s", node->host, node->port, r->str);
            freeReplyObject(r);
            sg_resp_conn_free(c);
            return NULL;
        }
        freeReplyObject(r);
    }
    const char *argv[2] = {"CLUSTER", "SLOTS"};
    size_t lens[2] = {7, 5};
    r = sg_resp_command(c, 2, argv, lens, err, errlen);
    sg_resp_conn_free(c);
    if (r == NULL)
        return NULL;
    struct sg_topology *t = NULL;
    if (r->type == REDIS_REPLY_ERROR && strstr(r->str, "cluster support disabled") != NULL) {
        t = topology_new();
        shard_index(t, node);
        for (int s = 0; s < SG_SLOTS; s++)
            t->slot_shard[s] = 0;
    } else if (r->type == REDIS_REPLY_ARRAY) {
        t = topology_from_slots(r, node);
        if (t->n_shards == 0) {
            snprintf(err, errlen, "%s:%d: CLUSTER SLOTS lists no shards", node->host, node->port);
            sg_topology_unref(t);
            t = NULL;
        }
    } else {
        snprintf(err, errlen, "%s:%d: CLUSTER SLOTS: %s", node->host, node->port,
                 r->type == REDIS_REPLY_ERROR ? r->str : "unexpected reply");
    }
    freeReplyObject(r);
    return t;
}

struct sg_topology *sg_topology_fetch(const struct sg_config *cfg, SSL_CTX *tls,
                                      const struct sg_addr *nodes, int n_nodes, char *err,
                                      size_t errlen)
{
    snprintf(err, errlen, "no nodes to ask");
    for (int i = 0; i < n_nodes; i++) {
        struct sg_topology *t = fetch_one(cfg, tls, &nodes[i], err, errlen);
        if (t != NULL)
            return t;
        sg_log_debug("topology: %s", err);
    }
    return NULL;
}

/* --- the manager thread --------------------------------------------------- */

static struct {
    const struct sg_config *cfg;
    SSL_CTX *tls;
    struct sg_worker **workers;
    int n_workers;
    struct sg_topology *current; /* owned by the manager thread */
    pthread_t thread;
    int pipe_rd, pipe_wr;
    atomic_int stop;
    atomic_int ready;
    _Atomic uint64_t refreshes;
    _Atomic uint64_t refresh_failures;
    _Atomic uint64_t last_ok_ms;
    /* Taken to swap current (manager thread) and by other threads to take
     * a reference to it; never by workers. */
    pthread_mutex_t current_lock;
    int running;
} mgr = {.pipe_rd = -1, .pipe_wr = -1, .current_lock = PTHREAD_MUTEX_INITIALIZER};

struct sg_topology *sg_topology_current(void)
{
    pthread_mutex_lock(&mgr.current_lock);
    struct sg_topology *t = sg_topology_ref(mgr.current);
    pthread_mutex_unlock(&mgr.current_lock);
    return t;
}

uint64_t sg_topology_last_refresh_ms(void)
{
    return atomic_load_explicit(&mgr.last_ok_ms, memory_order_relaxed);
}

uint64_t sg_topology_refresh_failures(void)
{
    return atomic_load_explicit(&mgr.refresh_failures, memory_order_relaxed);
}

/* Replace the current snapshot (manager thread); takes over t's reference. */
static void set_current(struct sg_topology *t)
{
    pthread_mutex_lock(&mgr.current_lock);
    struct sg_topology *old = mgr.current;
    mgr.current = t;
    pthread_mutex_unlock(&mgr.current_lock);
    sg_topology_unref(old);
}

void sg_topology_request_refresh(void)
{
    if (mgr.pipe_wr >= 0) {
        char b = 'r';
        ssize_t n = write(mgr.pipe_wr, &b, 1); /* full pipe: a refresh is already due */
        (void)n;
    }
}

uint64_t sg_topology_refresh_count(void)
{
    return atomic_load_explicit(&mgr.refreshes, memory_order_relaxed);
}

int sg_topology_ready(void)
{
    return atomic_load(&mgr.ready);
}

static int all_covered(const struct sg_topology *t)
{
    for (int s = 0; s < SG_SLOTS; s++)
        if (t->slot_shard[s] == SG_NO_SHARD)
            return 0;
    return 1;
}

/* Ask the known masters, their replicas, then the seeds. */
static void refresh_once(void)
{
    int cap = mgr.cfg->n_seeds + 1;
    if (mgr.current != NULL)
        for (int i = 0; i < mgr.current->n_shards; i++)
            cap += 1 + mgr.current->shards[i].n_replicas;
    struct sg_addr *nodes = sg_calloc((size_t)cap, sizeof(*nodes));
    int n = 0;
    if (mgr.current != NULL) {
        for (int i = 0; i < mgr.current->n_shards; i++)
            nodes[n++] = mgr.current->shards[i].master;
        for (int i = 0; i < mgr.current->n_shards; i++)
            for (int j = 0; j < mgr.current->shards[i].n_replicas; j++)
                nodes[n++] = mgr.current->shards[i].replicas[j];
    }
    for (int i = 0; i < mgr.cfg->n_seeds; i++)
        nodes[n++] = mgr.cfg->seeds[i];
    char err[256];
    struct sg_topology *t = sg_topology_fetch(mgr.cfg, mgr.tls, nodes, n, err, sizeof(err));
    free(nodes);
    atomic_fetch_add_explicit(&mgr.refreshes, 1, memory_order_relaxed);
    if (t == NULL) {
        atomic_fetch_add_explicit(&mgr.refresh_failures, 1, memory_order_relaxed);
        sg_log_warn("topology refresh failed: %s", err);
        return;
    }
    atomic_store_explicit(&mgr.last_ok_ms, sg_now_ms(), memory_order_relaxed);
    if (sg_topology_same(t, mgr.current)) {
        sg_topology_unref(t);
        return;
    }
    t->epoch = mgr.current ? mgr.current->epoch + 1 : 1;
    sg_log_info("topology changed: %d shard(s), epoch %llu", t->n_shards,
                (unsigned long long)t->epoch);
    for (int i = 0; i < t->n_shards; i++)
        sg_log_info("  shard %d: master %s:%d, %d replica(s)", i, t->shards[i].master.host,
                    t->shards[i].master.port, t->shards[i].n_replicas);
    for (int i = 0; i < mgr.n_workers; i++)
        sg_worker_post_topology(mgr.workers[i], t);
    set_current(t);
    atomic_store(&mgr.ready, all_covered(t));
}

static void *manager_main(void *arg)
{
    uint64_t last = sg_now_ms();
    while (!atomic_load(&mgr.stop)) {
        uint64_t now = sg_now_ms();
        uint64_t due = last + mgr.cfg->topology_refresh_ms;
        int timeout = due > now ? (int)(due - now) : 0;
        struct pollfd p = {.fd = mgr.pipe_rd, .events = POLLIN};
        int rc = poll(&p, 1, timeout);
        if (atomic_load(&mgr.stop))
            break;
        if (rc > 0) {
            char buf[256];
            while (read(mgr.pipe_rd, buf, sizeof(buf)) > 0)
                ;
            /* Rate limit: at most one refresh per min interval. */
            now = sg_now_ms();
            if (now < last + mgr.cfg->topology_min_interval_ms)
                usleep((useconds_t)((last + mgr.cfg->topology_min_interval_ms - now) * 1000));
            while (read(mgr.pipe_rd, buf, sizeof(buf)) > 0)
                ;
        }
        if (atomic_load(&mgr.stop))
            break;
        refresh_once();
        last = sg_now_ms();
    }
    return NULL;
}

int sg_topology_manager_start(const struct sg_config *cfg, SSL_CTX *tls,
                              struct sg_topology *initial, struct sg_worker **workers,
                              int n_workers)
{
    int fds[2];
    if (pipe2(fds, O_NONBLOCK | O_CLOEXEC) < 0)
        return -1;
    mgr.cfg = cfg;
    mgr.tls = tls;
    mgr.workers = workers;
    mgr.n_workers = n_workers;
    set_current(sg_topology_ref(initial));
    atomic_store_explicit(&mgr.last_ok_ms, sg_now_ms(), memory_order_relaxed);
    mgr.pipe_rd = fds[0];
    mgr.pipe_wr = fds[1];
    atomic_store(&mgr.stop, 0);
    atomic_store(&mgr.ready, all_covered(initial));
    if (pthread_create(&mgr.thread, NULL, manager_main, NULL) != 0)
        return -1;
    mgr.running = 1;
    return 0;
}

void sg_topology_manager_stop(void)
{
    if (!mgr.running)
        return;
    atomic_store(&mgr.stop, 1);
    sg_topology_request_refresh();
    pthread_join(mgr.thread, NULL);
    mgr.running = 0;
    close(mgr.pipe_rd);
    close(mgr.pipe_wr);
    mgr.pipe_rd = mgr.pipe_wr = -1;
    set_current(NULL);
}
