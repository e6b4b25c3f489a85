/*
 * itest_metrics - /metrics on the admin port of a real slotgate in front of
 * a real cluster: `promtool check metrics` passes on a live scrape; every
 * family docs/OPERATIONS.md documents is exported and nothing undocumented
 * is; counters, histograms and gauges move when requests are made; a SIGHUP
 * that renames and reorders keyspaces leaves each keyspace's counters with
 * its name (in /metrics and in the STATS op); every metric the Grafana
 * dashboard queries exists in a live scrape.
 */
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cmocka.h>

#include "harness.h"

static struct sg_client *C;
static int admin_port;
static char extra_yaml[512];

/* Keyspaces before the reload: "room-a" (a dash, compressed) and "user_b". */
#define KS_BEFORE               \
    "keyspaces:\n"              \
    "  room-a:\n"               \
    "    compression: always\n" \
    "  user_b:\n"               \
    "    prefix: \"ub:\"\n"
/* After: user_b renamed room-c (same prefix), placed where room-a was. */
#define KS_AFTER            \
    "keyspaces:\n"          \
    "  room-c:\n"           \
    "    prefix: \"ub:\"\n" \
    "  room-a:\n"           \
    "    compression: always\n"

static void set_extra(const char *keyspaces)
{
    snprintf(extra_yaml, sizeof(extra_yaml), "admin:\n  address: 127.0.0.1\n  port: %d\n%s",
             admin_port, keyspaces);
    H.opts.extra_yaml = extra_yaml;
}

static int group_setup(void **state)
{
    admin_port = h_free_port();
    if (admin_port < 0)
        return -1;
    set_extra(KS_BEFORE);
    struct h_opts o = {.extra_yaml = extra_yaml};
    return h_group_start(&H, "metrics", &o, &C);
}

static int group_teardown(void **state)
{
    return h_group_stop(&H, &C);
}

/* GET path from the admin port; the body (caller frees) or NULL. */
static char *http_get(const char *path, int *status)
{
    return h_http_fetch(admin_port, path, status);
}

static char *scrape(void)
{
    int status = 0;
    char *body = http_get("/metrics", &status);
    if (body == NULL || status != 200)
        fail_msg("GET /metrics: status %d", status);
    return body;
}

/* Value of the sample written exactly as sample (name{labels}); -1 if absent. */
static double sample(const char *text, const char *name)
{
    size_t n = strlen(name);
    for (const char *p = text; p && *p; p = strchr(p, '\n'), p = p ? p + 1 : NULL) {
        if (strncmp(p, name, n) == 0 && p[n] == ' ')
            return strtod(p + n + 1, NULL);
    }
    return -1;
}

static double must(const char *text, const char *name)
{
    double v = sample(text, name);
    if (v < 0)
        fail_msg("no sample %s in /metrics", name);
    return v;
}

static void save(const char *text, char *path, size_t len, const char *tag)
{
    snprintf(path, len, "%s/scrape-%s.txt", H.scratch, tag);
    FILE *f = fopen(path, "w");
    assert_non_null(f);
    fputs(text, f);
    fclose(f);
}

static void test_promtool_check(void **state)
{
    /* Some traffic first, so labelled families have samples. */
    assert_int_equal(h_check_set_get(C, "promtool"), 0);
    assert_int_equal(hc_set(C, "room-a", "k", 1, "v", 1, 0, SG_COND_NONE), SG_OK);
    char *text = scrape();
    char path[H_PATH + 32];
    save(text, path, sizeof(path), "promtool");
    int rc = h_sh(&H, "promtool check metrics < '%s'", path);
    if (rc != 0) {
        h_sh(&H, "promtool check metrics < '%s' >&2", path);
        fail_msg("promtool check metrics failed (%d) on %s", rc, path);
    }
    free(text);
}

/* Family names in the table of docs/OPERATIONS.md: "| `slotgate_...` |", "| `process_...` |". */
static int documented(char names[][96], int max)
{
    FILE *f = fopen(SG_SOURCE_DIR "/docs/OPERATIONS.md", "r");
    assert_non_null(f);
    char line[1024];
    int n = 0;
    while (fgets(line, sizeof(line), f) && n < max)
        if (strncmp(line, "| `slotgate_", 12) == 0 || strncmp(line, "| `process_", 11) == 0) {
            char *end = strchr(line + 3, '`');
            if (end != NULL && end - (line + 3) < 96) {
                memcpy(names[n], line + 3, (size_t)(end - (line + 3)));
                names[n][end - (line + 3)] = '\0';
                n++;
            }
        }
    fclose(f);
    return n;
}

static void test_documented_families(void **state)
{
    static char names[256][96];
    int n = documented(names, 256);
    assert_true(n >= 40);
    char *text = scrape();
    char want[160];
    for (int i = 0; i < n; i++) {
        snprintf(want, sizeof(want), "# TYPE %.95s ", names[i]);
        if (strstr(text, want) == NULL)
            fail_msg("documented family %s missing from /metrics", names[i]);
        snprintf(want, sizeof(want), "# HELP %.95s ", names[i]);
        assert_non_null(strstr(text, want));
    }
    /* and every exported family is documented */
    for (const char *p = strstr(text, "# TYPE "); p; p = strstr(p + 1, "# TYPE ")) {
        char fam[128];
        sscanf(p + 7, "%127s", fam);
        int found = 0;
        for (int i = 0; i < n && !found; i++)
            found = strcmp(names[i], fam) == 0;
        if (!found)
            fail_msg("/metrics exports %s, which docs/OPERATIONS.md does not document", fam);
    }
    /* build info and topology of the 3-master, 3-replica cluster */
    assert_non_null(strstr(text, "slotgate_build_info{version=\""));
    assert_int_equal(must(text, "slotgate_topology_slots_covered"), 16384);
    assert_int_equal(must(text, "slotgate_topology_masters"), 3);
    assert_int_equal(must(text, "slotgate_topology_replicas"), 3);
    assert_int_equal(must(text, "slotgate_ready"), 1);
    assert_int_equal(must(text, "slotgate_workers"), 2);
    assert_true(must(text, "slotgate_topology_last_refresh_age_seconds") < 3600);
    assert_true(must(text, "process_resident_memory_bytes") > 1000000);
    assert_true(must(text, "process_open_fds") >= 3);
    assert_true(must(text, "process_max_fds") >= must(text, "process_open_fds"));
    assert_true(must(text, "process_cpu_seconds_total") >= 0);
    free(text);
}

static void test_counters_move(void **state)
{
    char *before = scrape();
    char val[1000];
    memset(val, 'z', sizeof(val)); /* compresses well */
    char key[32];
    for (int i = 0; i < 20; i++) {
        snprintf(key, sizeof(key), "move:%d", i);
        assert_int_equal(hc_set(C, "room-a", key, strlen(key), val, sizeof(val), 0, SG_COND_NONE),
                         SG_OK);
        assert_int_equal(h_get_code(C, key, strlen(key)), SG_NOT_FOUND); /* default: a miss */
    }
    for (int i = 0; i < 20; i++) {
        snprintf(key, sizeof(key), "move:%d", i);
        void *v = NULL;
        size_t vl = 0;
        assert_int_equal(hc_get(C, "room-a", key, strlen(key), &v, &vl), SG_OK);
        assert_int_equal(vl, sizeof(val));
        free(v);
    }
    char *after = scrape();
#define DELTA(name) (must(after, name) - (sample(before, name) < 0 ? 0 : sample(before, name)))
    assert_true(DELTA("slotgate_responses_total{op=\"set\",code=\"ok\"}") >= 20);
    assert_true(DELTA("slotgate_responses_total{op=\"get\",code=\"ok\"}") >= 20);
    assert_true(DELTA("slotgate_request_duration_seconds_count{op=\"set\"}") >= 20);
    assert_true(DELTA("slotgate_request_duration_seconds_bucket{op=\"get\",le=\"+Inf\"}") >= 40);
    assert_true(DELTA("slotgate_request_duration_seconds_sum{op=\"get\"}") > 0);
    assert_true(DELTA("slotgate_requests_total") >= 60);
    assert_int_equal(DELTA("slotgate_keyspace_sets_total{keyspace=\"room-a\"}"), 20);
    assert_int_equal(DELTA("slotgate_keyspace_hits_total{keyspace=\"room-a\"}"), 20);
    assert_true(DELTA("slotgate_keyspace_misses_total{keyspace=\"default\"}") >= 20);
    double raw = DELTA("slotgate_keyspace_value_raw_bytes_total{keyspace=\"room-a\"}");
    double stored = DELTA("slotgate_keyspace_value_stored_bytes_total{keyspace=\"room-a\"}");
    assert_int_equal(raw, 20 * sizeof(val));
    assert_true(stored > 0 && stored < raw / 4); /* compression: always */
    assert_true(DELTA("slotgate_backend_commands_total") >= 60);
    /* backend latency per node: every master saw some of the 40 keys */
    int masters[8];
    int nm = h_masters(&H, masters, 8);
    assert_int_equal(nm, 3);
    double total = 0;
    for (int i = 0; i < nm; i++) {
        char name[160];
        snprintf(name, sizeof(name),
                 "slotgate_backend_duration_seconds_count{node=\"127.0.0.1:%d\",role=\"master\"}",
                 masters[i]);
        total += DELTA(name);
        snprintf(name, sizeof(name),
                 "slotgate_backend_links{node=\"127.0.0.1:%d\",role=\"master\",state=\"up\"}",
                 masters[i]);
        /* links are per worker, opened on first use: the client's worker has one */
        assert_true(must(after, name) >= 1);
        snprintf(name, sizeof(name),
                 "slotgate_backend_links{node=\"127.0.0.1:%d\",role=\"master\",state=\"down\"}",
                 masters[i]);
        assert_int_equal(must(after, name), 0);
        snprintf(name, sizeof(name),
                 "slotgate_backend_pending_commands{node=\"127.0.0.1:%d\",role=\"master\"}",
                 masters[i]);
        assert_int_equal(must(after, name), 0); /* nothing owed between requests */
    }
    assert_true(total >= 60);
    assert_int_equal(must(after, "slotgate_requests_in_flight"), 0);
    assert_true(must(after, "slotgate_connections_active") >= 1);
    free(before);
    free(after);
}

/* A keyspace's sets counter from /metrics and from the STATS op. */
static double ks_sets(const char *text, const char *ks)
{
    char name[128];
    snprintf(name, sizeof(name), "slotgate_keyspace_sets_total{keyspace=\"%s\"}", ks);
    return sample(text, name);
}

static int64_t stats_sets(const char *ks)
{
    char name[128];
    snprintf(name, sizeof(name), "keyspace.%s.sets", ks);
    return h_stat(C, name);
}

static void test_reload_keeps_names(void **state)
{
    for (int i = 0; i < 3; i++)
        assert_int_equal(hc_set(C, "user_b", "b", 1, "v", 1, 0, SG_COND_NONE), SG_OK);
    char *before = scrape();
    double a0 = ks_sets(before, "room-a"), b0 = ks_sets(before, "user_b");
    assert_true(a0 >= 20 && b0 == 3);
    assert_true(ks_sets(before, "room-c") < 0);
    assert_int_equal(stats_sets("room-a"), (int64_t)a0);
    assert_int_equal(stats_sets("user_b"), 3);

    /* rename user_b to room-c and move room-a after it, then SIGHUP */
    set_extra(KS_AFTER);
    assert_int_equal(h_proxy_write_config(&H, 0), 0);
    assert_int_equal(h_proxy_signal(&H, 0, SIGHUP), 0);
    int64_t deadline = h_now_ms() + 10000;
    int rc;
    while ((rc = hc_set(C, "room-c", "c", 1, "v", 1, 0, SG_COND_NONE)) != SG_OK &&
           h_now_ms() < deadline)
        h_poll_pause();
    assert_int_equal(rc, SG_OK);
    assert_int_equal(hc_set(C, "user_b", "b", 1, "v", 1, 0, SG_COND_NONE), SG_UNKNOWN_KEYSPACE);

    char *after = scrape();
    /* room-a now sits where user_b was, room-c where room-a was: each name
     * keeps its own count */
    assert_int_equal(ks_sets(after, "room-a"), a0);
    assert_int_equal(ks_sets(after, "room-c"), 1);
    assert_int_equal(ks_sets(after, "user_b"), 3); /* kept until restart */
    assert_int_equal(stats_sets("room-a"), (int64_t)a0);
    assert_int_equal(stats_sets("room-c"), 1);
    assert_int_equal(hc_set(C, "room-a", "a", 1, "v", 1, 0, SG_COND_NONE), SG_OK);
    char *last = scrape();
    assert_int_equal(ks_sets(last, "room-a"), a0 + 1);
    assert_int_equal(ks_sets(last, "room-c"), 1);
    assert_int_equal(stats_sets("room-a"), (int64_t)a0 + 1);
    free(before);
    free(after);
    free(last);
}

/* Every sample name the dashboard's PromQL uses exists in a live scrape. */
static void test_dashboard_metrics_exist(void **state)
{
    char *text = scrape();
    char cmd[H_PATH * 2];
    snprintf(cmd, sizeof(cmd), "python3 '%s/tests/integration/dashboard_metrics.py' '%s'",
             SG_SOURCE_DIR, SG_SOURCE_DIR "/deploy/grafana/slotgate.json");
    FILE *p = popen(cmd, "r");
    assert_non_null(p);
    char name[256];
    int n = 0;
    while (fgets(name, sizeof(name), p)) {
        name[strcspn(name, "\n")] = '\0';
        if (name[0] == '\0')
            continue;
        n++;
        /* a sample line "name " or "name{" */
        char a[300], b[300];
        snprintf(a, sizeof(a), "\n%s ", name);
        snprintf(b, sizeof(b), "\n%s{", name);
        if (strstr(text, a) == NULL && strstr(text, b) == NULL)
            fail_msg("the dashboard queries %s, which /metrics does not export", name);
    }
    assert_int_equal(pclose(p), 0);
    assert_true(n >= 10);
    free(text);
}

static void test_health_endpoints(void **state)
{
    int status = 0;
    char *b = http_get("/healthz", &status);
    assert_int_equal(status, 200);
    free(b);
    b = http_get("/readyz", &status);
    assert_int_equal(status, 200);
    free(b);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_health_endpoints),        cmocka_unit_test(test_promtool_check),
        cmocka_unit_test(test_documented_families),     cmocka_unit_test(test_counters_move),
        cmocka_unit_test(test_dashboard_metrics_exist), cmocka_unit_test(test_reload_keeps_names),
    };
    int failed = cmocka_run_group_tests_name("itest_metrics", tests, group_setup, group_teardown);
    failed += h_stop_failed;
    if (failed)
        h_env_dump_logs(&H, 60);
    return failed ? 1 : 0;
}
