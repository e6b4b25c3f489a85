/*
 * deadline - one worker's request deadlines without a libevent timer each.
 *
 * Almost every request of a worker has one of a few durations (the
 * configured request_deadline_ms, max_deadline_ms for INVALIDATE, the one
 * a client sends with each request). Deadlines of one duration, taken in
 * arrival order from a monotonic clock, come due in that same order, so
 * each duration is a FIFO "lane": adding and removing an entry are list
 * operations, and one timer, armed for the earliest head, serves them all.
 * A removal never re-arms it: when it fires early it finds nothing due and
 * is armed again for the new earliest head, about once per duration under
 * steady load.
 *
 * A duration that finds every lane taken by others is refused; the caller
 * then keeps a timer of its own for that entry.
 */
#ifndef SG_DEADLINE_H
#define SG_DEADLINE_H

#include <stdint.h>
#include <sys/queue.h>

#include <event2/event.h>

#define SG_DEADLINE_LANES 4

/* An entry, embedded in what has the deadline. */
struct sg_deadline {
    TAILQ_ENTRY(sg_deadline) link;
    uint64_t at_us;                      /* CLOCK_MONOTONIC, microseconds */
    void (*fire)(struct sg_deadline *d); /* called once, after it is removed */
    int8_t lane;                         /* -1 while not queued */
};

TAILQ_HEAD(sg_deadline_list, sg_deadline);

struct sg_deadlines {
    struct event *timer;
    uint64_t armed_at; /* 0: not armed */
    struct {
        uint32_t ms; /* the lane's duration; any, while it is empty */
        struct sg_deadline_list q;
    } lane[SG_DEADLINE_LANES];
};

/* NULL when libevent cannot make the timer. */
struct sg_deadlines *sg_deadlines_new(struct event_base *base);
/* Every entry must have been removed. */
void sg_deadlines_free(struct sg_deadlines *q);
/*
 * Queue d to fire ms milliseconds after now_us (CLOCK_MONOTONIC
 * microseconds; a caller's successive now_us never go back). 0, or -1
 * (d untouched) when every lane holds another duration.
 */
int sg_deadlines_add(struct sg_deadlines *q, struct sg_deadline *d, uint64_t now_us, uint32_t ms);
/* Take d out before it fires; nothing when it is not queued. */
void sg_deadlines_remove(struct sg_deadlines *q, struct sg_deadline *d);
/* Fire every entry due at now_us, then arm the timer for the earliest left
 * (the timer's own callback, exposed for tests). */
void sg_deadlines_run(struct sg_deadlines *q, uint64_t now_us);

#endif
