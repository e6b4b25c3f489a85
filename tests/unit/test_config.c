/*
 * test_config - loading and validating the YAML configuration: the shipped
 * example, defaults, and one case per class of error, each checked for the
 * exact "FILE:LINE: key 'a.b':" prefix. Configs are written into a private
 * temp directory together with the TLS files they name.
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
#include "log.h"
#include "util.h"

static char tmpdir[256];
static char cfgpath[512];
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
    (void)state;
    char p[512];
    snprintf(tmpdir, sizeof tmpdir, "/tmp/sg_test_config.XXXXXX");
    if (mkdtemp(tmpdir) == NULL)
        return -1;
    snprintf(p, sizeof p, "%s/tls", tmpdir);
    if (mkdir(p, 0700) != 0)
        return -1;
    snprintf(p, sizeof p, "%s/tls/server.pem", tmpdir);
    write_file(p, "cert\n");
    snprintf(p, sizeof p, "%s/tls/server-key.pem", tmpdir);
    write_file(p, "key\n");
    snprintf(p, sizeof p, "%s/cert.pem", tmpdir);
    write_file(p, "cert\n");
    snprintf(p, sizeof p, "%s/key.pem", tmpdir);
    write_file(p, "key\n");
    snprintf(cfgpath, sizeof cfgpath, "%s/slotgate.yaml", tmpdir);
    return 0;
}

static int rm_entry(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
    (void)st;
    (void)flag;
    (void)ftw;
    return remove(path);
}

static int teardown(void **state)
{
    (void)state;
    return nftw(tmpdir, rm_entry, 8, FTW_DEPTH | FTW_PHYS);
}

/* Write yaml to the temp dir's slotgate.yaml and load it. */
static int load(struct sg_config *cfg, const char *yaml)
{
    write_file(cfgpath, yaml);
    errbuf[0] = '\0';
    return sg_config_load(cfg, cfgpath, errbuf, sizeof errbuf);
}

/* Loading must fail with "<cfgpath>:<line>: key '<key>': ...<reason>...". */
static void expect_error(const char *yaml, int line, const char *key, const char *reason)
{
    struct sg_config cfg;
    char prefix[700];
    if (load(&cfg, yaml) == 0)
        fail_msg("loaded without error:\n%s", yaml);
    snprintf(prefix, sizeof prefix, "%s:%d: key '%s': ", cfgpath, line, key);
    if (strncmp(errbuf, prefix, strlen(prefix)) != 0)
        fail_msg("want prefix \"%s\"\n got \"%s\"", prefix, errbuf);
    if (reason != NULL && strstr(errbuf, reason) == NULL)
        fail_msg("want \"%s\" in \"%s\"", reason, errbuf);
}

static char *read_all(const char *path)
{
    FILE *f = fopen(path, "r");
    assert_non_null(f);
    char *buf = sg_malloc(1 << 16);
    size_t n = fread(buf, 1, (1 << 16) - 1, f);
    buf[n] = '\0';
    fclose(f);
    return buf;
}

#define PLAIN "listen:\n  plaintext: true\n"
#define SEEDS "redis:\n  seeds: [\"127.0.0.1:7000\"]\n"

static void test_defaults(void **state)
{
    (void)state;
    struct sg_config c;
    sg_config_defaults(&c);
    assert_string_equal(c.listen.host, "127.0.0.1");
    assert_int_equal(c.listen.port, 7420);
    assert_int_equal(c.plaintext, 0);
    assert_int_equal(c.workers, 0);
    assert_int_equal(c.max_frame_bytes, 8388608);
    assert_int_equal(c.max_key_bytes, 1024);
    assert_int_equal(c.max_value_bytes, 4194304);
    assert_int_equal(c.max_batch_keys, 1000);
    assert_int_equal(c.max_batch_bytes, 8388608);
    assert_int_equal(c.max_connections, 20000);
    assert_int_equal(c.max_inflight, 1024);
    assert_int_equal(c.output_high_watermark, 4194304);
    assert_int_equal(c.request_deadline_ms, 1000);
    assert_int_equal(c.max_deadline_ms, 30000);
    assert_int_equal(c.handshake_timeout_ms, 5000);
    assert_int_equal(c.idle_timeout_ms, 0);
    assert_int_equal(c.write_gather_us, 200);
    assert_int_equal(c.connect_timeout_ms, 1000);
    assert_int_equal(c.topology_refresh_ms, 5000);
    assert_int_equal(c.topology_min_interval_ms, 100);
    assert_int_equal(c.max_redirects, 5);
    assert_int_equal(c.retry_backoff_ms, 20);
    assert_int_equal(c.reconnect_backoff_max_ms, 1000);
    assert_int_equal(c.coalesce_gets, 1);
    assert_int_equal(c.admin.port, 0);
    assert_int_equal(c.log_level, SG_LOG_INFO);
    assert_int_equal(c.n_seeds, 0);
    assert_int_equal(c.n_keyspaces, 1);
    assert_string_equal(c.keyspaces[0].name, "");
    assert_string_equal(c.keyspaces[0].prefix, "");
    assert_int_equal(c.keyspaces[0].default_ttl_ms, 0);
    assert_int_equal(c.keyspaces[0].compression, SG_COMPRESS_OFF);
}

static void test_example_config(void **state)
{
    (void)state;
    struct sg_config c;
    char *text = read_all(SG_SOURCE_DIR "/deploy/slotgate.example.yaml");
    int rc = load(&c, text);
    free(text);
    if (rc != 0)
        fail_msg("%s", errbuf);

    char want[600];
    assert_string_equal(c.listen.host, "127.0.0.1");
    assert_int_equal(c.listen.port, 7420);
    assert_int_equal(c.plaintext, 0);
    snprintf(want, sizeof want, "%s/tls/server.pem", tmpdir);
    assert_string_equal(c.tls_cert, want);
    snprintf(want, sizeof want, "%s/tls/server-key.pem", tmpdir);
    assert_string_equal(c.tls_key, want);
    assert_string_equal(c.tls_client_ca, "");
    assert_int_equal(c.tls_require_client_cert, 0);
    assert_string_equal(c.path, cfgpath);
    assert_int_equal(c.n_tokens, 0);
    assert_int_equal(c.n_seeds, 1);
    assert_string_equal(c.seeds[0].host, "127.0.0.1");
    assert_int_equal(c.seeds[0].port, 7000);
    assert_int_equal(c.redis_tls, 0);
    assert_int_equal(c.coalesce_gets, 1);
    assert_int_equal(c.log_level, SG_LOG_INFO);

    assert_int_equal(c.n_keyspaces, 5);
    assert_non_null(sg_config_keyspace(&c, ""));
    assert_null(sg_config_keyspace(&c, "nope"));
    const struct sg_keyspace_config *ks = sg_config_keyspace(&c, "session");
    assert_non_null(ks);
    assert_string_equal(ks->prefix, "session:");
    assert_int_equal(ks->default_ttl_ms, 3600000);
    assert_int_equal(ks->max_ttl_ms, 86400000);
    assert_int_equal(ks->compression, SG_COMPRESS_OFF);
    ks = sg_config_keyspace(&c, "room");
    assert_non_null(ks);
    assert_int_equal(ks->compression, SG_COMPRESS_AUTO);
    assert_int_equal(ks->compress_threshold, 1024);
    assert_int_equal(ks->max_value_bytes, 4194304);
    ks = sg_config_keyspace(&c, "asset");
    assert_non_null(ks);
    assert_int_equal(ks->read_from_replicas, 1);
    assert_int_equal(ks->max_ttl_ms, 0);
    ks = sg_config_keyspace(&c, "gamesystem");
    assert_non_null(ks);
    assert_string_equal(ks->prefix, "gamesystem:");
    assert_int_equal(ks->default_ttl_ms, 7200000);
}

static void test_plaintext_minimal(void **state)
{
    (void)state;
    struct sg_config c;
    int rc = load(&c, PLAIN "redis:\n  seeds:\n    - 10.0.0.1:7000\n    - \"[::1]:7001\"\n"
                            "    - redis-0.redis:6379\n");
    if (rc != 0)
        fail_msg("%s", errbuf);
    assert_int_equal(c.plaintext, 1);
    assert_string_equal(c.tls_cert, "");
    assert_int_equal(c.n_seeds, 3);
    assert_string_equal(c.seeds[1].host, "::1");
    assert_int_equal(c.seeds[1].port, 7001);
    assert_string_equal(c.seeds[2].host, "redis-0.redis");
    assert_int_equal(c.max_frame_bytes, 8388608);
    assert_int_equal(c.n_keyspaces, 1);
}

static void test_values_and_empty_sections(void **state)
{
    (void)state;
    struct sg_config c;
    int rc = load(&c, "listen:\n  plaintext: yes\n  port: 9000\n  workers: 4\n"
                      "auth:\n  tokens: [\"s3cret\", other]\n"
                      "tls:\n"
                      "limits:\n  idle_timeout_ms: 0\n  max_key_bytes: 512\n"
                      "  write_gather_us: 0\n"
                      "log:\n  level: debug\n"
                      "admin:\n  port: 9100\n" SEEDS "keyspaces:\n  plain-ks_1:\n");
    if (rc != 0)
        fail_msg("%s", errbuf);
    assert_int_equal(c.listen.port, 9000);
    assert_int_equal(c.workers, 4);
    assert_int_equal(c.n_tokens, 2);
    assert_string_equal(c.tokens[1], "other");
    assert_int_equal(c.max_key_bytes, 512);
    assert_int_equal(c.write_gather_us, 0);
    assert_int_equal(c.log_level, SG_LOG_DEBUG);
    assert_int_equal(c.admin.port, 9100);
    const struct sg_keyspace_config *ks = sg_config_keyspace(&c, "plain-ks_1");
    assert_non_null(ks);
    assert_string_equal(ks->prefix, "plain-ks_1:");
}

static void test_load_string(void **state)
{
    (void)state;
    struct sg_config c;
    char yaml[1200];
    snprintf(yaml, sizeof yaml, SEEDS "tls:\n  cert: %s/cert.pem\n  key: %s/key.pem\n", tmpdir,
             tmpdir);
    assert_int_equal(sg_config_load_string(&c, yaml, "inline", errbuf, sizeof errbuf), 0);
    assert_int_equal(sg_config_load_string(&c, "redis: {}\n", "inline", errbuf, sizeof errbuf), -1);
    assert_string_equal(errbuf,
                        "inline:1: key 'redis.seeds': required: at least one \"host:port\"");
}

static void test_failed_load_keeps_config(void **state)
{
    (void)state;
    struct sg_config c;
    assert_int_equal(load(&c, PLAIN SEEDS "limits:\n  max_inflight: 7\n"), 0);
    assert_int_equal(load(&c, PLAIN SEEDS "limits:\n  max_inflight: x\n"), -1);
    assert_int_equal(c.max_inflight, 7);
    assert_int_equal(c.n_seeds, 1);
}

static void test_cannot_open(void **state)
{
    (void)state;
    struct sg_config c;
    char path[600];
    snprintf(path, sizeof path, "%s/missing.yaml", tmpdir);
    assert_int_equal(sg_config_load(&c, path, errbuf, sizeof errbuf), -1);
    char want[700];
    snprintf(want, sizeof want, "%s: cannot open: No such file or directory", path);
    assert_string_equal(errbuf, want);
    assert_int_equal(sg_config_load(&c, tmpdir, errbuf, sizeof errbuf), -1);
    assert_non_null(strstr(errbuf, "cannot open: Is a directory"));
}

static void test_unknown_keys(void **state)
{
    (void)state;
    expect_error(PLAIN SEEDS "bogus: 1\n", 5, "bogus", "unknown key");
    expect_error("listen:\n  plaintext: true\n  colour: red\n" SEEDS, 3, "listen.colour",
                 "unknown key");
    expect_error(PLAIN "redis:\n  seeds: [\"a:1\"]\n  tls:\n    enable: true\n", 6,
                 "redis.tls.enable", "unknown key");
    expect_error(PLAIN SEEDS "keyspaces:\n  s:\n    prefix: \"s:\"\n    ttl: 5\n", 8,
                 "keyspaces.s.ttl", "unknown key");
}

static void test_bad_numbers(void **state)
{
    (void)state;
    expect_error(PLAIN SEEDS "limits:\n  max_key_bytes: abc\n", 6, "limits.max_key_bytes",
                 "expected a positive integer, got 'abc'");
    expect_error(PLAIN SEEDS "limits:\n  max_frame_bytes: 0\n", 6, "limits.max_frame_bytes",
                 "expected a positive integer, got '0'");
    expect_error(PLAIN SEEDS "limits:\n  max_inflight: -1\n", 6, "limits.max_inflight", "got '-1'");
    expect_error(PLAIN SEEDS "limits:\n  max_connections: 4294967296\n", 6,
                 "limits.max_connections", "at most 4294967295");
    expect_error(PLAIN SEEDS "limits:\n  max_key_bytes: 2048\n  max_frame_bytes: 1024\n", 6,
                 "limits.max_key_bytes", "must not exceed limits.max_frame_bytes");
    expect_error(PLAIN SEEDS "limits:\n  max_value_bytes: [1]\n", 6, "limits.max_value_bytes",
                 "got a list");
    expect_error(PLAIN SEEDS "limits:\n  write_gather_us: 1000001\n", 6, "limits.write_gather_us",
                 "must be between 0 and 1000000, got 1000001");
}

static void test_bad_ports(void **state)
{
    (void)state;
    expect_error("listen:\n  plaintext: true\n  port: 70000\n" SEEDS, 3, "listen.port",
                 "between 1 and 65535, got 70000");
    expect_error("listen:\n  plaintext: true\n  port: 0\n" SEEDS, 3, "listen.port", NULL);
    expect_error(PLAIN SEEDS "admin:\n  port: 65536\n", 6, "admin.port", "between 0 and 65535");
}

static void test_seeds(void **state)
{
    (void)state;
    expect_error(PLAIN "redis:\n  username: x\n", 3, "redis.seeds", "required");
    expect_error(PLAIN, 1, "redis.seeds", "required");
    expect_error(PLAIN "redis:\n  seeds: []\n", 4, "redis.seeds", "required");
    expect_error(PLAIN "redis:\n  seeds:\n    - 127.0.0.1:7000\n    - nohost\n", 6, "redis.seeds",
                 "expected \"host:port\", got 'nohost'");
    expect_error(PLAIN "redis:\n  seeds:\n    - \"h:0\"\n", 5, "redis.seeds", NULL);
    expect_error(PLAIN "redis:\n  seeds: \"h:1\"\n", 4, "redis.seeds", "list");
}

static void test_tls_required(void **state)
{
    (void)state;
    expect_error(SEEDS, 1, "tls.cert", "required unless listen.plaintext is true");
    expect_error(SEEDS "tls:\n  key: key.pem\n", 3, "tls.cert", "required unless");
    expect_error(SEEDS "tls:\n  cert: cert.pem\n", 3, "tls.key", "required unless");
    expect_error(SEEDS "listen:\n  plaintext: false\n", 1, "tls.cert", NULL);

    struct sg_config c;
    assert_int_equal(load(&c, SEEDS "tls:\n  cert: cert.pem\n  key: ./key.pem\n"
                                    "  client_ca: cert.pem\n"),
                     0);
    char want[600];
    snprintf(want, sizeof want, "%s/./key.pem", tmpdir);
    assert_string_equal(c.tls_key, want);
    assert_int_equal(c.tls_require_client_cert, 1);
}

static void test_unreadable_files(void **state)
{
    (void)state;
    expect_error(SEEDS "tls:\n  cert: missing.pem\n  key: key.pem\n", 4, "tls.cert", "cannot read");
    expect_error(SEEDS "tls:\n  cert: cert.pem\n  key: tls\n", 5, "tls.key", "not a regular file");
    expect_error(PLAIN "redis:\n  seeds: [\"a:1\"]\n  tls:\n    enabled: true\n"
                       "    ca: /nonexistent/ca.pem\n",
                 7, "redis.tls.ca", "cannot read '/nonexistent/ca.pem': No such file or directory");
    expect_error(PLAIN "redis:\n  seeds: [\"a:1\"]\n  tls:\n    cert: cert.pem\n", 6,
                 "redis.tls.key", "required when redis.tls.cert is set");
}

static void test_bad_enums(void **state)
{
    (void)state;
    expect_error("listen:\n  plaintext: maybe\n" SEEDS, 2, "listen.plaintext",
                 "expected true/false/yes/no, got 'maybe'");
    expect_error(PLAIN SEEDS "redis:\n", 5, "redis", "duplicate key");
    expect_error(PLAIN SEEDS "keyspaces:\n  s:\n    compression: fast\n", 7,
                 "keyspaces.s.compression", "expected off|auto|always, got 'fast'");
    expect_error(PLAIN SEEDS "log:\n  level: verbose\n", 6, "log.level",
                 "expected error|warn|info|debug, got 'verbose'");
    expect_error("listen: 5\n", 1, "listen", "expected a mapping");
}

static void test_keyspaces(void **state)
{
    (void)state;
    expect_error(PLAIN SEEDS "keyspaces:\n  s:\n    prefix: \"a:\"\n  t:\n    prefix: \"b:\"\n"
                             "  s:\n    prefix: \"c:\"\n",
                 10, "keyspaces.s", "duplicate keyspace");
    expect_error(PLAIN SEEDS "keyspaces:\n  \"bad name\":\n    prefix: x\n", 6,
                 "keyspaces.bad name", "[A-Za-z0-9_-]{1,63}");
    expect_error(PLAIN SEEDS "keyspaces:\n  default:\n    prefix: x\n", 6, "keyspaces.default",
                 "reserved");
    expect_error(PLAIN SEEDS "keyspaces:\n  s:\n    prefix: \"a:\"\n  t:\n    prefix: \"a:\"\n", 9,
                 "keyspaces.t.prefix", "already the prefix of keyspace 's'");
    expect_error(PLAIN SEEDS "keyspaces:\n  s:\n    default_ttl_ms: 10\n    max_ttl_ms: 5\n", 7,
                 "keyspaces.s.default_ttl_ms", "must not exceed keyspaces.s.max_ttl_ms");
    expect_error(PLAIN SEEDS "keyspaces: [a, b]\n", 5, "keyspaces", "expected a mapping");
}

static void test_yaml_syntax(void **state)
{
    (void)state;
    struct sg_config c;
    char want[700];
    assert_int_equal(load(&c, PLAIN SEEDS "limits:\n  max_key_bytes: [1, 2\n"), -1);
    snprintf(want, sizeof want, "%s:", cfgpath);
    assert_memory_equal(errbuf, want, strlen(want));
    assert_non_null(strstr(errbuf, "YAML syntax error: did not find expected"));

    assert_int_equal(load(&c, "listen:\n  plaintext: true\n   port: 1\n"), -1);
    snprintf(want, sizeof want, "%s:3: YAML syntax error: mapping values are not allowed", cfgpath);
    if (strncmp(errbuf, want, strlen(want)) != 0)
        fail_msg("want \"%s\", got \"%s\"", want, errbuf);

    assert_int_equal(load(&c, PLAIN SEEDS "---\nlisten: {}\n"), -1);
    assert_non_null(strstr(errbuf, "only one YAML document"));
    assert_int_equal(load(&c, "- a\n- b\n"), -1);
    assert_non_null(strstr(errbuf, "top level must be a mapping"));
}

static void test_parse_hostport(void **state)
{
    (void)state;
    struct sg_addr a;
    assert_int_equal(sg_parse_hostport("localhost:6379", &a), 0);
    assert_string_equal(a.host, "localhost");
    assert_int_equal(a.port, 6379);
    assert_int_equal(sg_parse_hostport("[fe80::1%eth0]:1", &a), 0);
    assert_string_equal(a.host, "fe80::1%eth0");
    assert_int_equal(a.port, 1);
    assert_int_equal(sg_parse_hostport("h:65535", &a), 0);
    static const char *const bad[] = {"",      "h",        "h:",        ":1",     "h:0",  "h:65536",
                                      "h:1x",  "::1:7000", "[::1]7000", "[::1]:", "[]:1", "[abc]:1",
                                      "a b:1", "h:+1",     "h:-1",      "[::1:1"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
        if (sg_parse_hostport(bad[i], &a) != -1)
            fail_msg("accepted '%s'", bad[i]);
}

static void test_util_and_log(void **state)
{
    (void)state;
    uint64_t t0 = sg_now_ms();
    assert_true(sg_now_ms() >= t0);
    char *s = sg_strdup("abc");
    assert_string_equal(s, "abc");
    s = sg_realloc(s, 10);
    free(s);
    s = sg_strndup("abcdef", 2);
    assert_string_equal(s, "ab");
    free(s);
    free(sg_calloc(0, 0));
    free(sg_malloc(0));

    assert_int_equal(sg_log_level_from_name("warn"), SG_LOG_WARN);
    assert_int_equal(sg_log_level_from_name("loud"), -1);
    assert_string_equal(sg_log_level_name(SG_LOG_DEBUG), "debug");
    sg_log_set_level(SG_LOG_ERROR);
    assert_false(sg_log_enabled(SG_LOG_INFO));
    assert_true(sg_log_enabled(SG_LOG_ERROR));
    sg_log_set_level(99);
    assert_int_equal(sg_log_get_level(), SG_LOG_DEBUG);
    sg_log_debug("test_config: debug line %d", 1);
    sg_log_set_level(SG_LOG_INFO);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_defaults),
        cmocka_unit_test(test_example_config),
        cmocka_unit_test(test_plaintext_minimal),
        cmocka_unit_test(test_values_and_empty_sections),
        cmocka_unit_test(test_load_string),
        cmocka_unit_test(test_failed_load_keeps_config),
        cmocka_unit_test(test_cannot_open),
        cmocka_unit_test(test_unknown_keys),
        cmocka_unit_test(test_bad_numbers),
        cmocka_unit_test(test_bad_ports),
        cmocka_unit_test(test_seeds),
        cmocka_unit_test(test_tls_required),
        cmocka_unit_test(test_unreadable_files),
        cmocka_unit_test(test_bad_enums),
        cmocka_unit_test(test_keyspaces),
        cmocka_unit_test(test_yaml_syntax),
        cmocka_unit_test(test_parse_hostport),
        cmocka_unit_test(test_util_and_log),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
