/*
 * slotgate/adapters/libevent.h - drive a struct sg_async from a libevent
 * event_base, as hiredis's adapters/libevent.h does for redisAsyncContext.
 * Header-only: include it in the program that owns the event_base and link
 * libevent there; libslotgate itself does not depend on libevent.
 *
 *     struct sg_async *ac = sg_async_connect(&opt);
 *     if (ac->err) ...;
 *     sg_libevent_attach(ac, base);
 *     sg_async_get(ac, "session", "k", 1, on_reply, NULL);
 *     event_base_dispatch(base);
 */
#ifndef SLOTGATE_ADAPTERS_LIBEVENT_H
#define SLOTGATE_ADAPTERS_LIBEVENT_H

#include <stdlib.h>

#include <event2/event.h>

#include <slotgate/async.h>

struct sg_libevent {
    struct sg_async *ac;
    struct event_base *base;
    struct event *rev, *tev;
    int fd;
};

static void sg_libevent_on_read(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    sg_async_handle_read(((struct sg_libevent *)arg)->ac);
}

static void sg_libevent_on_timer(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    sg_async_handle_timeout(((struct sg_libevent *)arg)->ac);
}

static void sg_libevent_del_read(void *data)
{
    struct sg_libevent *e = (struct sg_libevent *)data;

    if (e->rev != NULL) {
        event_free(e->rev);
        e->rev = NULL;
    }
    e->fd = -1;
}

static void sg_libevent_add_read(void *data, int fd)
{
    struct sg_libevent *e = (struct sg_libevent *)data;

    sg_libevent_del_read(e);
    e->rev = event_new(e->base, fd, EV_READ | EV_PERSIST, sg_libevent_on_read, e);
    if (e->rev != NULL && event_add(e->rev, NULL) == 0)
        e->fd = fd;
}

static void sg_libevent_set_timer(void *data, long ms)
{
    struct sg_libevent *e = (struct sg_libevent *)data;
    struct timeval tv;

    if (ms < 0) {
        evtimer_del(e->tev);
        return;
    }
    tv.tv_sec = ms / 1000;
    tv.tv_usec = (ms % 1000) * 1000;
    evtimer_add(e->tev, &tv);
}

static void sg_libevent_cleanup(void *data)
{
    struct sg_libevent *e = (struct sg_libevent *)data;

    sg_libevent_del_read(e);
    event_free(e->tev);
    free(e);
}

/* Attach ac to base. 0, or -1 if ac already has an adapter or on OOM. */
static int sg_libevent_attach(struct sg_async *ac, struct event_base *base)
{
    struct sg_libevent *e;

    if (ac->ev.data != NULL)
        return -1;
    e = (struct sg_libevent *)calloc(1, sizeof(*e));
    if (e == NULL)
        return -1;
    e->ac = ac;
    e->base = base;
    e->fd = -1;
    e->tev = evtimer_new(base, sg_libevent_on_timer, e);
    if (e->tev == NULL) {
        free(e);
        return -1;
    }
    ac->ev.data = e;
    ac->ev.add_read = sg_libevent_add_read;
    ac->ev.del_read = sg_libevent_del_read;
    ac->ev.set_timer = sg_libevent_set_timer;
    ac->ev.cleanup = sg_libevent_cleanup;
    sg_async_rearm(ac);
    return 0;
}

#endif
