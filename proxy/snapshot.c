/*
 * snapshot - config snapshots (snapshot.h). The process-wide current one
 * sits under a mutex, taken only by main (publish) and by threads that are
 * not workers (admin, STATS's keyspace names), never per request.
 */
#include "snapshot.h"

#include <pthread.h>
#include <stdlib.h>

#include "util.h"

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
