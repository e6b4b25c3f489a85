/*
 * test_coalesce - the table of in-flight GET leaders (coalesce.c): a second
 * GET of a key follows the first; a leader that leaves is forgotten and the
 * next GET leads; a leader forgotten by a write and replaced by a newer one
 * does not take the newer one's entry with it when it leaves; thousands of
 * keys (the bucket array grows) all come and go.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include "coalesce.h"

static int join(struct sg_coalesce *c, const char *key, struct sg_co *me)
{
    return sg_coalesce_join(c, (const uint8_t *)key, strlen(key), me);
}

static void leave(struct sg_coalesce *c, const char *key, struct sg_co *leader)
{
    sg_coalesce_leave(c, (const uint8_t *)key, strlen(key), leader);
}

static void test_follow_and_leave(void **state)
{
    (void)state;
    struct sg_coalesce *c = sg_coalesce_new();
    struct sg_co a = {0}, b = {0}, d = {0}, e = {0};
    assert_int_equal(join(c, "k1", &a), 0);
    assert_int_equal(a.role, SG_CO_LEADER);
    assert_int_equal(join(c, "k1", &b), 1);
    assert_int_equal(b.role, SG_CO_FOLLOWER);
    assert_ptr_equal(b.leader, &a);
    assert_int_equal(join(c, "k2", &d), 0); /* another key leads on its own */
    leave(c, "k1", &a);
    assert_int_equal(a.role, SG_CO_NONE);
    assert_ptr_equal(sg_coalesce_next_follower(&a), &b);
    assert_null(sg_coalesce_next_follower(&a));
    assert_int_equal(join(c, "k1", &e), 0); /* k1 has no leader any more */
    leave(c, "k1", &e);
    leave(c, "k2", &d);
    sg_coalesce_free(c);
}

static void test_replaced_leader_leaves_alone(void **state)
{
    (void)state;
    struct sg_coalesce *c = sg_coalesce_new();
    struct sg_co old = {0}, newer = {0}, f = {0};
    assert_int_equal(join(c, "room:1", &old), 0);
    /* A write forgets the leader; the next GET leads. */
    sg_coalesce_forget_key(c, (const uint8_t *)"room:1", 6);
    assert_int_equal(join(c, "room:1", &newer), 0);
    /* The old leader settles: the newer one must still lead. */
    leave(c, "room:1", &old);
    assert_int_equal(join(c, "room:1", &f), 1);
    assert_ptr_equal(f.leader, &newer);
    sg_coalesce_unfollow(&f);
    leave(c, "room:1", &newer);
    struct sg_co g = {0};
    assert_int_equal(join(c, "room:1", &g), 0);
    leave(c, "room:1", &g);
    sg_coalesce_free(c);
}

static void test_many_keys_grow_and_go(void **state)
{
    (void)state;
    enum { N = 5000 };
    static struct sg_co ops[N], followers[N];
    static char keys[N][24];
    struct sg_coalesce *c = sg_coalesce_new();
    for (int i = 0; i < N; i++) {
        snprintf(keys[i], sizeof(keys[i]), "key:%08d", i);
        assert_int_equal(join(c, keys[i], &ops[i]), 0);
    }
    for (int i = 0; i < N; i++) {
        assert_int_equal(join(c, keys[i], &followers[i]), 1);
        assert_ptr_equal(followers[i].leader, &ops[i]);
        sg_coalesce_unfollow(&followers[i]);
    }
    for (int i = 0; i < N; i++)
        leave(c, keys[i], &ops[i]);
    for (int i = 0; i < N; i++) { /* every entry went: each key leads anew */
        struct sg_co again = {0};
        assert_int_equal(join(c, keys[i], &again), 0);
        leave(c, keys[i], &again);
    }
    sg_coalesce_free(c);
}

/*
 * Joins, leaves and forgets in random order over 400 keys, against a model
 * (which op leads each key): with entries removed from the middle of probe
 * runs over and over, every key the model says is led is still found, by
 * a join that must follow it, and no other key is.
 */
static void test_random_against_model(void **state)
{
    (void)state;
    enum { K = 400, STEPS = 200000 };
    static struct sg_co pool[STEPS];
    static struct sg_co *model[K];
    static char keys[K][24];
    struct sg_coalesce *c = sg_coalesce_new();
    for (int k = 0; k < K; k++)
        snprintf(keys[k], sizeof(keys[k]), "k%d", k);
    memset(model, 0, sizeof(model));
    uint32_t x = 88172645u;
    for (int step = 0; step < STEPS; step++) {
        x ^= x << 13, x ^= x >> 17, x ^= x << 5;
        int k = (int)(x % K), what = (int)((x >> 16) % 4);
        struct sg_co *me = &pool[step];
        if (what <= 1) { /* a GET */
            int r = join(c, keys[k], me);
            if (model[k] != NULL) {
                assert_int_equal(r, 1);
                assert_ptr_equal(me->leader, model[k]);
                sg_coalesce_unfollow(me);
            } else {
                assert_int_equal(r, 0);
                model[k] = me;
            }
        } else if (what == 2 && model[k] != NULL) { /* the leader settles */
            leave(c, keys[k], model[k]);
            model[k] = NULL;
        } else if (what == 3) { /* a write to the key */
            sg_coalesce_forget_key(c, (const uint8_t *)keys[k], strlen(keys[k]));
            if (model[k] != NULL)
                model[k]->role = SG_CO_NONE; /* it settles later, not as leader */
            model[k] = NULL;
        }
    }
    for (int k = 0; k < K; k++) {
        struct sg_co probe = {0};
        int r = join(c, keys[k], &probe);
        assert_int_equal(r, model[k] != NULL);
        if (r == 1)
            sg_coalesce_unfollow(&probe);
        else
            leave(c, keys[k], &probe);
    }
    sg_coalesce_free(c);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_follow_and_leave),
        cmocka_unit_test(test_replaced_leader_leaves_alone),
        cmocka_unit_test(test_many_keys_grow_and_go),
        cmocka_unit_test(test_random_against_model),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
