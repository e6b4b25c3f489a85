/*
 * test_metrics - the pure parts of /metrics: bucket choice at the bounds,
 * op and code labels against the proto's enums, label escaping, histogram
 * text (cumulative buckets, +Inf, sum in seconds, count), and the name table
 * that keeps a keyspace's counter slot across reloads (stable slots, one
 * overflow slot when full, concurrent adds of one name agree).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <ctype.h>
#include <pthread.h>

#include <cmocka.h>

#include "metrics.h"
#include "slotgate.pb-c.h"

static void test_buckets(void **state)
{
    assert_int_equal(sg_hist_bucket(0), 0);
    assert_int_equal(sg_hist_bucket(100), 0); /* le is inclusive */
    assert_int_equal(sg_hist_bucket(101), 1);
    assert_int_equal(sg_hist_bucket(1000), 3);
    assert_int_equal(sg_hist_bucket(10000000), SG_HIST_BOUNDS - 1);
    assert_int_equal(sg_hist_bucket(10000001), SG_HIST_BOUNDS); /* +Inf */
    assert_int_equal(sg_hist_bucket(UINT64_MAX), SG_HIST_BOUNDS);
    for (int i = 1; i < SG_HIST_BOUNDS; i++)
        assert_true(sg_hist_bounds_us[i] > sg_hist_bounds_us[i - 1]);
}

/* "OP_GET_OR_LEASE" -> "get_or_lease" */
static void lower_suffix(const char *name, const char *prefix, char *out, size_t len)
{
    snprintf(out, len, "%s", name + strlen(prefix));
    for (char *p = out; *p; p++)
        *p = (char)tolower((unsigned char)*p);
}

static void test_op_labels(void **state)
{
    const ProtobufCEnumDescriptor *d = &slotgate__v1__op__descriptor;
    int seen[SG_OP_N] = {0};
    char want[64];
    for (unsigned i = 0; i < d->n_values; i++) {
        int v = d->values[i].value;
        int idx = sg_metrics_op_index(v);
        if (v == 0) {
            assert_int_equal(idx, 0);
            continue;
        }
        assert_true(idx > 0 && idx < SG_OP_N);
        assert_int_equal(seen[idx]++, 0);
        lower_suffix(d->values[i].name, "OP_", want, sizeof(want));
        assert_string_equal(sg_metrics_op_name(idx), want);
    }
    assert_int_equal(sg_metrics_op_index(9999), 0);
    assert_string_equal(sg_metrics_op_name(0), "unknown");
}

static void test_code_labels(void **state)
{
    const ProtobufCEnumDescriptor *d = &slotgate__v1__code__descriptor;
    int seen[SG_CODE_N] = {0};
    char want[64];
    for (unsigned i = 0; i < d->n_values; i++) {
        int v = d->values[i].value;
        if (v >= 100 && v < 200)
            continue; /* connection errors: never a Response */
        int idx = sg_metrics_code_index(v);
        assert_true(idx >= 0 && idx < SG_CODE_N - 1);
        assert_int_equal(seen[idx]++, 0);
        lower_suffix(d->values[i].name, "CODE_", want, sizeof(want));
        assert_string_equal(sg_metrics_code_name(idx), want);
    }
    assert_int_equal(sg_metrics_code_index(250), SG_CODE_N - 1);
    assert_string_equal(sg_metrics_code_name(SG_CODE_N - 1), "other");
}

static void test_escape(void **state)
{
    char out[64];
    assert_int_equal(sg_metrics_escape("room-a_1", out, sizeof(out)), 8);
    assert_string_equal(out, "room-a_1");
    sg_metrics_escape("a\"b\\c\nd", out, sizeof(out));
    assert_string_equal(out, "a\\\"b\\\\c\\nd");
    /* cut before an escape, never inside one */
    sg_metrics_escape("ab\"", out, 4);
    assert_string_equal(out, "ab");
    sg_metrics_escape("abc", out, 1);
    assert_string_equal(out, "");
}

static void test_samples_and_histogram(void **state)
{
    struct sg_text t = {0};
    sg_metrics_family(&t, "x_total", "counter", "Things.");
    const char *labels[] = {"keyspace", "a\"b", "op", "get", NULL};
    sg_metrics_u64(&t, "x_total", labels, 7);
    sg_metrics_u64(&t, "x_total", NULL, 8);
    assert_string_equal(t.buf, "# HELP x_total Things.\n# TYPE x_total counter\n"
                               "x_total{keyspace=\"a\\\"b\",op=\"get\"} 7\nx_total 8\n");
    free(t.buf);

    struct sg_text h = {0};
    uint64_t counts[SG_HIST_SLOTS] = {0};
    counts[0] = 2;              /* <= 100 us */
    counts[3] = 1;              /* <= 1 ms */
    counts[SG_HIST_BOUNDS] = 1; /* > 10 s */
    const char *l[] = {"op", "get", NULL};
    sg_metrics_histogram(&h, "d_seconds", l, counts, 12000500);
    assert_non_null(strstr(h.buf, "d_seconds_bucket{op=\"get\",le=\"0.0001\"} 2\n"));
    assert_non_null(strstr(h.buf, "d_seconds_bucket{op=\"get\",le=\"0.0005\"} 2\n"));
    assert_non_null(strstr(h.buf, "d_seconds_bucket{op=\"get\",le=\"0.001\"} 3\n"));
    assert_non_null(strstr(h.buf, "d_seconds_bucket{op=\"get\",le=\"10\"} 3\n"));
    assert_non_null(strstr(h.buf, "d_seconds_bucket{op=\"get\",le=\"+Inf\"} 4\n"));
    assert_non_null(strstr(h.buf, "d_seconds_sum{op=\"get\"} 12.0005\n"));
    assert_non_null(strstr(h.buf, "d_seconds_count{op=\"get\"} 4\n"));
    int lines = 0;
    for (const char *p = h.buf; *p; p++)
        lines += *p == '\n';
    assert_int_equal(lines, SG_HIST_SLOTS + 2);
    free(h.buf);
}

static void test_names_stable(void **state)
{
    static struct sg_names t;
    sg_names_init(&t, 4);
    assert_int_equal(sg_names_find(&t, "room-a"), -1);
    assert_int_equal(sg_names_slot(&t, ""), 0);
    assert_int_equal(sg_names_slot(&t, "room-a"), 1);
    assert_int_equal(sg_names_slot(&t, "user_b"), 2);
    /* a "reload" that reorders: slots follow names */
    assert_int_equal(sg_names_slot(&t, "user_b"), 2);
    assert_int_equal(sg_names_slot(&t, "room-a"), 1);
    assert_int_equal(sg_names_find(&t, ""), 0);
    /* full: new names share the overflow slot */
    assert_int_equal(sg_names_slot(&t, "c"), 3);
    assert_int_equal(sg_names_slot(&t, "d"), 3);
    assert_int_equal(sg_names_count(&t), 4);
    assert_string_equal(sg_names_get(&t, 3), "(other)");
    assert_int_equal(sg_names_slot(&t, "room-a"), 1);
}

static struct sg_names shared;
static void *add_names(void *arg)
{
    long *slots = arg;
    char name[16];
    for (int i = 0; i < 50; i++) {
        snprintf(name, sizeof(name), "ks%d", i);
        slots[i] = sg_names_slot(&shared, name);
    }
    return NULL;
}

static void test_names_concurrent(void **state)
{
    sg_names_init(&shared, SG_NAMES_MAX);
    long a[50], b[50];
    pthread_t ta, tb;
    pthread_create(&ta, NULL, add_names, a);
    pthread_create(&tb, NULL, add_names, b);
    pthread_join(ta, NULL);
    pthread_join(tb, NULL);
    assert_int_equal(sg_names_count(&shared), 50);
    for (int i = 0; i < 50; i++) {
        assert_int_equal(a[i], b[i]);
        char name[16];
        snprintf(name, sizeof(name), "ks%d", i);
        assert_string_equal(sg_names_get(&shared, (int)a[i]), name);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_buckets),
        cmocka_unit_test(test_op_labels),
        cmocka_unit_test(test_code_labels),
        cmocka_unit_test(test_escape),
        cmocka_unit_test(test_samples_and_histogram),
        cmocka_unit_test(test_names_stable),
        cmocka_unit_test(test_names_concurrent),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
