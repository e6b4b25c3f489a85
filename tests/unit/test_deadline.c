/*
 * test_deadline - the worker's deadline lanes (deadline.c): entries fire
 * in deadline order and only once due; a removed entry never fires; each
 * duration takes a lane, a fifth duration is refused while four are busy
 * and accepted once one empties; an entry that a firing removes does not
 * fire; a clock reading older than the last is still kept in order; and
 * the real timer fires an entry, not before its deadline, within a bound.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include "deadline.h"
#include "stats.h"

#define N_ENT 8

struct ent {
    struct sg_deadline d;
    int id;
};

static int fired[64], n_fired;
static struct sg_deadlines *cur_q;
static struct ent *remove_on_fire; /* removed by the next firing */

static void on_fire(struct sg_deadline *d)
{
    struct ent *e = (struct ent *)((char *)d - offsetof(struct ent, d));
    assert_int_equal(d->lane, -1); /* out of its lane before its callback */
    fired[n_fired++] = e->id;
    if (remove_on_fire != NULL) {
        sg_deadlines_remove(cur_q, &remove_on_fire->d);
        remove_on_fire = NULL;
    }
}

static struct sg_deadlines *setup(struct event_base **base, struct ent *ents, int n)
{
    *base = event_base_new();
    assert_non_null(*base);
    struct sg_deadlines *q = sg_deadlines_new(*base);
    assert_non_null(q);
    for (int i = 0; i < n; i++) {
        memset(&ents[i], 0, sizeof(ents[i]));
        ents[i].id = i;
        ents[i].d.fire = on_fire;
        ents[i].d.lane = -1;
    }
    n_fired = 0;
    cur_q = q;
    remove_on_fire = NULL;
    return q;
}

static void teardown(struct event_base *base, struct sg_deadlines *q)
{
    sg_deadlines_free(q);
    event_base_free(base);
}

static void test_fire_in_order_when_due(void **state)
{
    (void)state;
    struct event_base *base;
    struct ent e[N_ENT];
    struct sg_deadlines *q = setup(&base, e, N_ENT);
    /* 1000 ms entries added at t = 0, 10, 20 ms; one of 100 ms at 30 ms. */
    assert_int_equal(sg_deadlines_add(q, &e[0].d, 0, 1000), 0);
    assert_int_equal(sg_deadlines_add(q, &e[1].d, 10000, 1000), 0);
    assert_int_equal(sg_deadlines_add(q, &e[2].d, 20000, 1000), 0);
    assert_int_equal(sg_deadlines_add(q, &e[3].d, 30000, 100), 0);
    assert_int_not_equal(e[3].d.lane, e[0].d.lane); /* another duration, another lane */
    sg_deadlines_run(q, 129999);
    assert_int_equal(n_fired, 0);
    sg_deadlines_run(q, 130000);
    assert_int_equal(n_fired, 1);
    assert_int_equal(fired[0], 3);
    sg_deadlines_run(q, 1010000);
    assert_int_equal(n_fired, 3);
    assert_int_equal(fired[1], 0);
    assert_int_equal(fired[2], 1);
    sg_deadlines_remove(q, &e[2].d); /* removed before it is due */
    assert_int_equal(e[2].d.lane, -1);
    sg_deadlines_remove(q, &e[2].d); /* twice is nothing */
    sg_deadlines_run(q, 5000000);
    assert_int_equal(n_fired, 3);
    teardown(base, q);
}

static void test_lanes_are_bounded(void **state)
{
    (void)state;
    struct event_base *base;
    struct ent e[N_ENT];
    struct sg_deadlines *q = setup(&base, e, N_ENT);
    for (int i = 0; i < SG_DEADLINE_LANES; i++)
        assert_int_equal(sg_deadlines_add(q, &e[i].d, 0, 100 + (uint32_t)i), 0);
    /* A fifth duration is refused and its entry left as it was... */
    assert_int_equal(sg_deadlines_add(q, &e[4].d, 0, 500), -1);
    assert_int_equal(e[4].d.lane, -1);
    /* ...while a duration that has a lane joins it. */
    assert_int_equal(sg_deadlines_add(q, &e[5].d, 1, 101), 0);
    assert_int_equal(e[5].d.lane, e[1].d.lane);
    /* Once a lane empties, the fifth duration takes it. */
    sg_deadlines_remove(q, &e[0].d);
    assert_int_equal(sg_deadlines_add(q, &e[4].d, 2, 500), 0);
    assert_int_equal(e[4].d.lane, 0);
    sg_deadlines_run(q, 10000000);
    assert_int_equal(n_fired, 5); /* e1, e5 (101 ms), e2, e3, e4 */
    teardown(base, q);
}

static void test_firing_removes_the_next(void **state)
{
    (void)state;
    struct event_base *base;
    struct ent e[N_ENT];
    struct sg_deadlines *q = setup(&base, e, N_ENT);
    assert_int_equal(sg_deadlines_add(q, &e[0].d, 0, 50), 0);
    assert_int_equal(sg_deadlines_add(q, &e[1].d, 1, 50), 0);
    assert_int_equal(sg_deadlines_add(q, &e[2].d, 2, 50), 0);
    remove_on_fire = &e[1]; /* e0's firing removes e1, due at the same run */
    sg_deadlines_run(q, 1000000);
    assert_int_equal(n_fired, 2);
    assert_int_equal(fired[0], 0);
    assert_int_equal(fired[1], 2);
    teardown(base, q);
}

static void test_older_clock_kept_in_order(void **state)
{
    (void)state;
    struct event_base *base;
    struct ent e[N_ENT];
    struct sg_deadlines *q = setup(&base, e, N_ENT);
    assert_int_equal(sg_deadlines_add(q, &e[0].d, 5000, 100), 0);
    assert_int_equal(sg_deadlines_add(q, &e[1].d, 9000, 100), 0);
    assert_int_equal(sg_deadlines_add(q, &e[2].d, 1000, 100), 0); /* read earlier */
    sg_deadlines_run(q, 101000);
    assert_int_equal(n_fired, 1);
    assert_int_equal(fired[0], 2);
    sg_deadlines_run(q, 200000);
    assert_int_equal(n_fired, 3);
    assert_int_equal(fired[1], 0);
    assert_int_equal(fired[2], 1);
    teardown(base, q);
}

/* The timer itself: an entry of 30 ms fires, not before 30 ms have passed,
 * and the loop is run for at most 5 s waiting for it. An entry removed
 * meanwhile does not fire. */
static void test_timer_fires(void **state)
{
    (void)state;
    struct event_base *base;
    struct ent e[N_ENT];
    struct sg_deadlines *q = setup(&base, e, N_ENT);
    uint64_t t0 = sg_stats_now_us();
    assert_int_equal(sg_deadlines_add(q, &e[0].d, t0, 30), 0);
    assert_int_equal(sg_deadlines_add(q, &e[1].d, t0, 30), 0);
    sg_deadlines_remove(q, &e[1].d);
    while (n_fired == 0 && sg_stats_now_us() - t0 < 5000000)
        event_base_loop(base, EVLOOP_ONCE);
    assert_int_equal(n_fired, 1);
    assert_int_equal(fired[0], 0);
    assert_true(sg_stats_now_us() - t0 >= 30000);
    teardown(base, q);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_fire_in_order_when_due),
        cmocka_unit_test(test_lanes_are_bounded),
        cmocka_unit_test(test_firing_removes_the_next),
        cmocka_unit_test(test_older_clock_kept_in_order),
        cmocka_unit_test(test_timer_fires),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
