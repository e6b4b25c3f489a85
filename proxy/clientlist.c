/*
 * clientlist - the admin's /clients view. The admin thread makes one
 * listing per HTTP request and posts it to every worker's mailbox; each
 * worker writes a line per session it owns (the client's address, from the
 * PROXY header when there is one, and the balancer's) and the last one to
 * answer wakes the admin through the listing's eventfd. The listing is
 * refcounted because a worker may answer after the admin gave up waiting.
 */
#include "clientlist.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include "metrics.h"
#include "session.h"
#include "util.h"
#include "core.h"

struct sg_clientlist {
    _Atomic int refs;
    int done_fd;
    pthread_mutex_t lock; /* guards pending and the text */
    int pending;          /* workers that have not answered */
    struct sg_text text;
};

struct sg_clientlist *sg_clientlist_new(int n_workers)
{
    int fd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
    if (fd < 0)
        return NULL;
    struct sg_clientlist *l = sg_calloc(1, sizeof(*l));
    atomic_init(&l->refs, 1);
    l->done_fd = fd;
    l->pending = n_workers;
    pthread_mutex_init(&l->lock, NULL);
    if (n_workers == 0) {
        uint64_t one = 1;
        ssize_t n = write(fd, &one, sizeof(one));
        (void)n;
    }
    return l;
}

void sg_clientlist_ref(struct sg_clientlist *l)
{
    atomic_fetch_add(&l->refs, 1);
}

void sg_clientlist_unref(struct sg_clientlist *l)
{
    if (l == NULL || atomic_fetch_sub(&l->refs, 1) != 1)
        return;
    close(l->done_fd);
    pthread_mutex_destroy(&l->lock);
    free(l->text.buf);
    free(l);
}

int sg_clientlist_fd(const struct sg_clientlist *l)
{
    return l->done_fd;
}

/* Under l->lock: one worker fewer to wait for; wake the admin after the last. */
static void clientlist_done(struct sg_clientlist *l)
{
    if (--l->pending == 0) {
        uint64_t one = 1;
        ssize_t n = write(l->done_fd, &one, sizeof(one));
        (void)n;
    }
}

void sg_clientlist_answer(struct sg_clientlist *l, struct sg_core *w)
{
    /* The sessions are this thread's alone; the lock only orders the
     * workers' lines and the admin's read (an admin path, not the data path). */
    pthread_mutex_lock(&l->lock);
    for (struct sg_session *s = sg_session_first(w); s != NULL; s = sg_session_next(s)) {
        sg_text_printf(&l->text, "worker=%d ", w->id);
        sg_session_describe(s, &l->text);
        sg_text_printf(&l->text, "\n");
    }
    clientlist_done(l);
    pthread_mutex_unlock(&l->lock);
}

void sg_clientlist_skip(struct sg_clientlist *l)
{
    pthread_mutex_lock(&l->lock);
    clientlist_done(l);
    pthread_mutex_unlock(&l->lock);
}

char *sg_clientlist_text(struct sg_clientlist *l, size_t *len, int *missing)
{
    pthread_mutex_lock(&l->lock);
    char *t = sg_malloc(l->text.len + 1);
    memcpy(t, l->text.buf ? l->text.buf : "", l->text.len);
    t[l->text.len] = '\0';
    *len = l->text.len;
    *missing = l->pending;
    pthread_mutex_unlock(&l->lock);
    return t;
}
