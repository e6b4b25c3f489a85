/*
 * deadline - per-duration FIFO lanes of deadlines under one timer
 * (deadline.h).
 */
#include "deadline.h"

#include <stdlib.h>

#include "stats.h"
#include "util.h"

/*
 * libevent times its timers by a coarse clock, which may run up to a tick
 * behind ours: a timer for less than a millisecond could fire, find
 * nothing due yet, and be armed again at once. At least 1 ms, then.
 */
static void deadline_arm(struct sg_deadlines *q, uint64_t at_us, uint64_t now_us)
{
    uint64_t wait = at_us > now_us ? at_us - now_us : 0;
    if (wait < 1000)
        wait = 1000;
    struct timeval tv = {(time_t)(wait / 1000000u), (suseconds_t)(wait % 1000000u)};
    evtimer_add(q->timer, &tv);
    q->armed_at = now_us + wait;
}

static void on_deadline_timer(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    sg_deadlines_run(arg, sg_stats_now_us());
}

struct sg_deadlines *sg_deadlines_new(struct event_base *base)
{
    struct sg_deadlines *q = sg_calloc(1, sizeof(*q));
    for (int i = 0; i < SG_DEADLINE_LANES; i++)
        TAILQ_INIT(&q->lane[i].q);
    q->timer = evtimer_new(base, on_deadline_timer, q);
    if (q->timer == NULL) {
        free(q);
        return NULL;
    }
    return q;
}

void sg_deadlines_free(struct sg_deadlines *q)
{
    if (q == NULL)
        return;
    event_free(q->timer);
    free(q);
}

int sg_deadlines_add(struct sg_deadlines *q, struct sg_deadline *d, uint64_t now_us, uint32_t ms)
{
    int free_lane = -1, l;
    for (l = 0; l < SG_DEADLINE_LANES; l++) {
        if (TAILQ_EMPTY(&q->lane[l].q)) {
            if (free_lane < 0)
                free_lane = l;
        } else if (q->lane[l].ms == ms) {
            break;
        }
    }
    if (l == SG_DEADLINE_LANES) {
        if (free_lane < 0)
            return -1;
        l = free_lane;
        q->lane[l].ms = ms;
    }
    d->at_us = now_us + (uint64_t)ms * 1000u;
    d->lane = (int8_t)l;
    /* In order even if a caller's clock reading were older than the last
     * one: walk back from the tail (no steps when it is not). */
    struct sg_deadline *after = TAILQ_LAST(&q->lane[l].q, sg_deadline_list);
    while (after != NULL && after->at_us > d->at_us)
        after = TAILQ_PREV(after, sg_deadline_list, link);
    if (after != NULL)
        TAILQ_INSERT_AFTER(&q->lane[l].q, after, d, link);
    else
        TAILQ_INSERT_HEAD(&q->lane[l].q, d, link);
    if (q->armed_at == 0 || d->at_us < q->armed_at)
        deadline_arm(q, d->at_us, now_us);
    return 0;
}

void sg_deadlines_remove(struct sg_deadlines *q, struct sg_deadline *d)
{
    if (d->lane < 0)
        return;
    TAILQ_REMOVE(&q->lane[d->lane].q, d, link);
    d->lane = -1;
}

void sg_deadlines_run(struct sg_deadlines *q, uint64_t now_us)
{
    q->armed_at = 0;
    /* A firing may remove or add other entries (an answer frees its
     * request, or the client's next one): the heads are read afresh. */
    for (int l = 0; l < SG_DEADLINE_LANES; l++) {
        struct sg_deadline *d;
        while ((d = TAILQ_FIRST(&q->lane[l].q)) != NULL && d->at_us <= now_us) {
            sg_deadlines_remove(q, d);
            d->fire(d);
        }
    }
    uint64_t first = 0;
    for (int l = 0; l < SG_DEADLINE_LANES; l++) {
        struct sg_deadline *d = TAILQ_FIRST(&q->lane[l].q);
        if (d != NULL && (first == 0 || d->at_us < first))
            first = d->at_us;
    }
    if (first != 0 && (q->armed_at == 0 || first < q->armed_at))
        deadline_arm(q, first, now_us);
}
