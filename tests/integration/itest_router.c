/*
 * itest_router - links follow the topology (proxy/router.c).
 *
 * Reads of a keyspace with read_from_replicas go to the shards' replicas
 * over links the router opens on first use and keeps per shard. When a
 * replica leaves the cluster (redis-cli --cluster del-node), the change of
 * replicas alone is published, the link to it is retired and closed, and
 * it is not reconnected; reads of its shard go on, from the master.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "harness.h"

#define N_KEYS 300

static struct sg_client *C;

static const char YAML[] = "keyspaces:\n"
                           "  replica_reads:\n"
                           "    prefix: \"rr:\"\n"
                           "    read_from_replicas: true\n";

static int group_setup(void **state)
{
    struct h_opts o = {
        .masters = 3, .replicas = 1, .workers = 1, .refresh_ms = 500, .extra_yaml = YAML};
    return h_group_start(&H, "router", &o, &C);
}

static int group_teardown(void **state)
{
    return h_group_stop(&H, &C);
}

static void key_of(int i, char *key, size_t len)
{
    snprintf(key, len, "router-key-%d", i);
}

/* Every key reads back its value through the replica-reading keyspace. */
static void read_all(const char *tag)
{
    for (int i = 0; i < N_KEYS; i++) {
        char key[64], want[64];
        key_of(i, key, sizeof(key));
        snprintf(want, sizeof(want), "value-%d", i);
        void *val = NULL;
        size_t vlen = 0;
        int code = hc_get(C, "replica_reads", key, strlen(key), &val, &vlen);
        if (code != SG_OK || vlen != strlen(want) || memcmp(val, want, vlen) != 0)
            h_log("%s: key %s: code %d, %zu bytes", tag, key, code, vlen);
        assert_int_equal(code, SG_OK);
        assert_int_equal(vlen, strlen(want));
        assert_memory_equal(val, want, vlen);
        free(val);
    }
}

static void test_replica_leaves(void **state)
{
    const char *log = H.proxies[0].log;
    for (int i = 0; i < N_KEYS; i++) {
        char key[64], val[64];
        key_of(i, key, sizeof(key));
        snprintf(val, sizeof(val), "value-%d", i);
        assert_int_equal(
            hc_set(C, "replica_reads", key, strlen(key), val, strlen(val), 0, SG_COND_NONE), SG_OK);
    }
    assert_int_equal(h_sync_replicas(&H), 0);
    read_all("before");

    /* The replica of the first master: its link was opened by the reads. */
    int masters[8], replicas[4];
    assert_true(h_masters(&H, masters, 8) >= 3);
    assert_int_equal(h_replicas_of(masters[0], replicas, 4), 1);
    int gone = replicas[0];
    char up[96], retired[96], reset[96];
    snprintf(up, sizeof(up), "link 127.0.0.1:%d up", gone);
    snprintf(retired, sizeof(retired), "link 127.0.0.1:%d closed (retired)", gone);
    snprintf(reset, sizeof(reset), "link 127.0.0.1:%d reset", gone);
    assert_true(h_count_lines(log, up) >= 1);
    int changed = h_count_lines(log, "topology changed");

    char id[64];
    assert_int_equal(h_node_id(gone, id, sizeof(id)), 0);
    h_log("removing replica %d (%s) of master %d", gone, id, masters[0]);
    assert_int_equal(h_sh(&H, "redis-cli -p %d --cluster del-node 127.0.0.1:%d %s >/dev/null",
                          masters[0], masters[0], id),
                     0);

    /* Only a replica changed: the topology is published all the same... */
    assert_int_equal(h_wait_lines(log, "topology changed", changed + 1, 20000), 0);
    /* ...and the link to the node that left is retired, then closed. */
    assert_int_equal(h_wait_lines(log, retired, 1, 20000), 0);
    int resets = h_count_lines(log, reset);

    /* Reads of every shard go on (that shard's from its master). */
    read_all("after");
    /* A closed, retired link never reconnects: no new reset of it while
     * the reads above ran (a reconnecting link to a dead node would fail
     * and log a reset at least every reconnect backoff). */
    read_all("again");
    assert_int_equal(h_count_lines(log, reset), resets);
    assert_int_equal(h_count_lines(log, retired), 1);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_replica_leaves),
    };
    return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
