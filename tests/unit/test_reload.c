/*
 * test_reload - the reload gate (sg_config_reload_check): a file that
 * changes a restart-only key is refused as a whole with "FILE:LINE: key
 * 'k':", whatever else it changes; a file that changes only reloadable keys
 * passes. Also the new listen.proxy_protocol / proxy_trusted and
 * limits.max_connections_per_ip keys and their errors.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <ftw.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>

#include "config.h"
#include "util.h"

static char tmpdir[256];
static char errbuf[1024];

static void write_file(const char *path, const char *text)
{
    FILE *f = fopen(path, "w");
    assert_non_null(f);
    fputs(text, f);
    assert_int_equal(fclose(f), 0);
}

static int setup(void **state)
{
    char p[512];
    snprintf(tmpdir, sizeof tmpdir, "/tmp/sg_test_reload.XXXXXX");
    if (mkdtemp(tmpdir) == NULL)
        return -1;
    const char *files[] = {"a.pem", "a-key.pem", "b.pem", "b-key.pem", "ca.pem", "ca2.pem"};
    for (size_t i = 0; i < sizeof files / sizeof files[0]; i++) {
        snprintf(p, sizeof p, "%s/%s", tmpdir, files[i]);
        write_file(p, "x\n");
    }
    return 0;
}

static int rm_entry(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
    return remove(path);
}

static int teardown(void **state)
{
    return nftw(tmpdir, rm_entry, 8, FTW_DEPTH | FTW_PHYS);
}

/* Load yaml from tmpdir/name into cfg; fails the test if it does not load. */
static void load(struct sg_config *cfg, const char *name, const char *yaml)
{
    char path[512];
    snprintf(path, sizeof path, "%s/%s", tmpdir, name);
    write_file(path, yaml);
    if (sg_config_load(cfg, path, errbuf, sizeof errbuf) != 0)
        fail_msg("%s", errbuf);
}

#define BASE_TLS                          \
    "listen:\n"                           \
    "  address: 127.0.0.1\n"              \
    "  port: 7420\n"                      \
    "  workers: 2\n"                      \
    "tls:\n"                              \
    "  cert: a.pem\n"                     \
    "  key: a-key.pem\n"                  \
    "redis:\n"                            \
    "  seeds: [\"127.0.0.1:7000\"]\n"     \
    "  max_redirects: 5\n"                \
    "limits:\n"                           \
    "  max_key_bytes: 100\n"              \
    "keyspaces:\n"                        \
    "  players: {default_ttl_ms: 1000}\n" \
    "  sessions: {}\n"

/* next must be refused naming key at line (the line in the new file). */
static void expect_refused(const char *running_yaml, const char *next_yaml, const char *key,
                           int line)
{
    struct sg_config *a = sg_malloc(sizeof *a), *b = sg_malloc(sizeof *b);
    char want[700];
    load(a, "running.yaml", running_yaml);
    load(b, "next.yaml", next_yaml);
    errbuf[0] = '\0';
    if (sg_config_reload_check(a, b, errbuf, sizeof errbuf) != -1)
        fail_msg("reload not refused; want key '%s'", key);
    snprintf(want, sizeof want, "%s/next.yaml:%d: key '%s': ", tmpdir, line, key);
    if (strncmp(errbuf, want, strlen(want)) != 0)
        fail_msg("want prefix \"%s\"\n got \"%s\"", want, errbuf);
    assert_non_null(strstr(errbuf, "restart"));
    free(a);
    free(b);
}

static void expect_allowed(const char *running_yaml, const char *next_yaml)
{
    struct sg_config *a = sg_malloc(sizeof *a), *b = sg_malloc(sizeof *b);
    load(a, "running.yaml", running_yaml);
    load(b, "next.yaml", next_yaml);
    if (sg_config_reload_check(a, b, errbuf, sizeof errbuf) != 0)
        fail_msg("refused: %s", errbuf);
    free(a);
    free(b);
}

static void test_same_file_reloads(void **state)
{
    expect_allowed(BASE_TLS, BASE_TLS);
}

static void test_plaintext_refused(void **state)
{
    /* The verified defect: TLS running, the file now says plaintext. */
    expect_refused(BASE_TLS,
                   "listen:\n  plaintext: true\n  address: 127.0.0.1\n  port: 7420\n"
                   "  workers: 2\n"
                   "redis:\n  seeds: [\"127.0.0.1:7000\"]\n",
                   "listen.plaintext", 2);
    /* And the other way round. */
    expect_refused("listen:\n  plaintext: true\nredis:\n  seeds: [\"127.0.0.1:7000\"]\n",
                   "tls:\n  cert: a.pem\n  key: a-key.pem\nredis:\n  seeds: [\"127.0.0.1:7000\"]\n",
                   "listen.plaintext", 1);
}

static void test_listen_refused(void **state)
{
    expect_refused(BASE_TLS,
                   "listen:\n  address: 127.0.0.1\n  port: 7421\n  workers: 2\n"
                   "tls:\n  cert: a.pem\n  key: a-key.pem\n"
                   "redis:\n  seeds: [\"127.0.0.1:7000\"]\n",
                   "listen.port", 3);
    expect_refused(BASE_TLS,
                   "listen:\n  address: 127.0.0.1\n  port: 7420\n  workers: 3\n"
                   "tls:\n  cert: a.pem\n  key: a-key.pem\n"
                   "redis:\n  seeds: [\"127.0.0.1:7000\"]\n",
                   "listen.workers", 4);
    expect_refused(BASE_TLS,
                   "listen:\n  address: localhost\n  port: 7420\n  workers: 2\n"
                   "tls:\n  cert: a.pem\n  key: a-key.pem\n"
                   "redis:\n  seeds: [\"127.0.0.1:7000\"]\n",
                   "listen.address", 2);
    expect_refused(BASE_TLS,
                   "listen:\n  address: 127.0.0.1\n  port: 7420\n  workers: 2\n"
                   "  proxy_protocol: v2\n  proxy_trusted: [10.0.0.0/8]\n"
                   "tls:\n  cert: a.pem\n  key: a-key.pem\n"
                   "redis:\n  seeds: [\"127.0.0.1:7000\"]\n",
                   "listen.proxy_protocol", 5);
    const char *pp = "listen:\n  proxy_protocol: any\n  proxy_trusted: [10.0.0.0/8]\n"
                     "tls:\n  cert: a.pem\n  key: a-key.pem\n"
                     "redis:\n  seeds: [\"127.0.0.1:7000\"]\n";
    expect_allowed(pp, pp);
    expect_refused(pp,
                   "listen:\n  proxy_protocol: any\n  proxy_trusted: [10.0.0.0/8, \"::1\"]\n"
                   "tls:\n  cert: a.pem\n  key: a-key.pem\n"
                   "redis:\n  seeds: [\"127.0.0.1:7000\"]\n",
                   "listen.proxy_trusted", 3);
}

static void test_client_cert_toggle_refused(void **state)
{
    const char *mtls = "tls:\n  cert: a.pem\n  key: a-key.pem\n  client_ca: ca.pem\n"
                       "redis:\n  seeds: [\"127.0.0.1:7000\"]\n";
    const char *no_mtls = "tls:\n  cert: a.pem\n  key: a-key.pem\n"
                          "redis:\n  seeds: [\"127.0.0.1:7000\"]\n";
    expect_refused(mtls, no_mtls, "tls.client_ca", 1);
    expect_refused(no_mtls, mtls, "tls.client_ca", 4);
    expect_refused(mtls,
                   "tls:\n  cert: a.pem\n  key: a-key.pem\n  client_ca: ca.pem\n"
                   "  require_client_cert: false\n"
                   "redis:\n  seeds: [\"127.0.0.1:7000\"]\n",
                   "tls.require_client_cert", 5);
    /* Rotating the CA file (verification stays on) reloads. */
    expect_allowed(mtls, "tls:\n  cert: a.pem\n  key: a-key.pem\n  client_ca: ca2.pem\n"
                         "redis:\n  seeds: [\"127.0.0.1:7000\"]\n");
}

static void test_redis_refused(void **state)
{
    expect_refused(BASE_TLS,
                   "listen:\n  address: 127.0.0.1\n  port: 7420\n  workers: 2\n"
                   "tls:\n  cert: a.pem\n  key: a-key.pem\n"
                   "redis:\n  seeds: [\"127.0.0.1:7001\"]\n",
                   "redis.seeds", 9);
    const char *tail = "listen:\n  address: 127.0.0.1\n  port: 7420\n  workers: 2\n"
                       "tls:\n  cert: a.pem\n  key: a-key.pem\n"
                       "redis:\n  seeds: [\"127.0.0.1:7000\"]\n";
    char buf[1024];
    snprintf(buf, sizeof buf, "%s  password: secret\n", tail);
    expect_refused(BASE_TLS, buf, "redis.password", 10);
    snprintf(buf, sizeof buf, "%s  tls:\n    enabled: true\n", tail);
    expect_refused(BASE_TLS, buf, "redis.tls.enabled", 11);
    snprintf(buf, sizeof buf, "%s  topology_refresh_ms: 1234\n", tail);
    expect_refused(BASE_TLS, buf, "redis.topology_refresh_ms", 10);
    snprintf(buf, sizeof buf, "%s  connect_timeout_ms: 99\n", tail);
    expect_refused(BASE_TLS, buf, "redis.connect_timeout_ms", 10);
    /* Keys only workers read reload. */
    snprintf(buf, sizeof buf,
             "%s  max_redirects: 7\n  coalesce_gets: false\n"
             "  retry_backoff_ms: 5\n  link_stall_ms: 0\n",
             tail);
    expect_allowed(BASE_TLS, buf);
}

static void test_admin_refused(void **state)
{
    expect_refused(BASE_TLS, BASE_TLS "admin:\n  port: 9100\n", "admin.port", 17);
}

static void test_reloadable_changes(void **state)
{
    /* New certificate, limits, tokens, log level, keyspaces renamed and
     * reordered: all reload. */
    expect_allowed(BASE_TLS, "listen:\n  address: 127.0.0.1\n  port: 7420\n  workers: 2\n"
                             "tls:\n  cert: b.pem\n  key: b-key.pem\n"
                             "auth:\n  tokens: [t1, t2]\n"
                             "redis:\n  seeds: [\"127.0.0.1:7000\"]\n"
                             "limits:\n  max_key_bytes: 50\n  max_connections_per_ip: 10\n"
                             "  handshake_timeout_ms: 100\n"
                             "log:\n  level: debug\n"
                             "keyspaces:\n  sessions: {}\n  gamers: {prefix: \"players:\"}\n");
}

static void test_new_keys(void **state)
{
    struct sg_config c;
    load(&c, "pp.yaml",
         "listen:\n  plaintext: true\n  proxy_protocol: v2\n"
         "  proxy_trusted: [\"10.0.0.0/8\", \"fd00::/8\", 127.0.0.1]\n"
         "limits:\n  max_connections_per_ip: 64\n"
         "redis:\n  seeds: [\"127.0.0.1:7000\"]\n");
    assert_int_equal(c.proxy_protocol, SG_PP_V2);
    assert_int_equal(c.n_proxy_trusted, 3);
    assert_int_equal(c.proxy_trusted[2].prefix, 32);
    assert_int_equal(c.max_connections_per_ip, 64);
    const char *modes[] = {"off", "v1", "v2", "any"};
    for (int i = 0; i < 4; i++) {
        char y[256];
        snprintf(y, sizeof y,
                 "listen:\n  plaintext: true\n  proxy_protocol: %s\n  proxy_trusted: [\"::1\"]\n"
                 "redis:\n  seeds: [\"127.0.0.1:7000\"]\n",
                 modes[i]);
        load(&c, "pp.yaml", y);
        assert_int_equal(c.proxy_protocol, i);
    }
    struct sg_config d;
    sg_config_defaults(&d);
    assert_int_equal(d.proxy_protocol, SG_PP_OFF);
    assert_int_equal(d.max_connections_per_ip, 0);
}

static void expect_load_error(const char *yaml, int line, const char *key, const char *reason)
{
    char path[512], want[700];
    struct sg_config c;
    snprintf(path, sizeof path, "%s/bad.yaml", tmpdir);
    write_file(path, yaml);
    if (sg_config_load(&c, path, errbuf, sizeof errbuf) == 0)
        fail_msg("loaded: %s", yaml);
    snprintf(want, sizeof want, "%s:%d: key '%s': ", path, line, key);
    if (strncmp(errbuf, want, strlen(want)) != 0 || strstr(errbuf, reason) == NULL)
        fail_msg("want \"%s...%s\"\n got \"%s\"", want, reason, errbuf);
}

static void test_new_key_errors(void **state)
{
    expect_load_error("listen:\n  plaintext: true\n  proxy_protocol: v3\n"
                      "redis:\n  seeds: [\"127.0.0.1:7000\"]\n",
                      3, "listen.proxy_protocol", "off|v1|v2|any");
    expect_load_error("listen:\n  plaintext: true\n  proxy_protocol: v2\n"
                      "redis:\n  seeds: [\"127.0.0.1:7000\"]\n",
                      3, "listen.proxy_trusted", "required");
    expect_load_error("listen:\n  plaintext: true\n  proxy_protocol: v2\n"
                      "  proxy_trusted:\n    - 10.0.0.0/8\n    - 10.0.0.1/8\n"
                      "redis:\n  seeds: [\"127.0.0.1:7000\"]\n",
                      6, "listen.proxy_trusted", "beyond the prefix");
    expect_load_error("listen:\n  plaintext: true\n  proxy_trusted: 10.0.0.0/8\n"
                      "redis:\n  seeds: [\"127.0.0.1:7000\"]\n",
                      3, "listen.proxy_trusted", "list");
    expect_load_error("listen:\n  plaintext: true\nlimits:\n  max_connections_per_ip: -1\n"
                      "redis:\n  seeds: [\"127.0.0.1:7000\"]\n",
                      4, "limits.max_connections_per_ip", "");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_same_file_reloads),
        cmocka_unit_test(test_plaintext_refused),
        cmocka_unit_test(test_listen_refused),
        cmocka_unit_test(test_client_cert_toggle_refused),
        cmocka_unit_test(test_redis_refused),
        cmocka_unit_test(test_admin_refused),
        cmocka_unit_test(test_reloadable_changes),
        cmocka_unit_test(test_new_keys),
        cmocka_unit_test(test_new_key_errors),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
