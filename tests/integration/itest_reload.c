/*
 * itest_reload - SIGHUP reload as one snapshot. A file that turns the TLS
 * listener to plaintext is refused whole (the verified defect: it used to
 * make the TLS port accept plaintext) and TLS stays required; a file that
 * changes any restart-only key is refused whole, its reloadable changes
 * included; the server certificate is rotated under load with zero failed
 * requests while new connections see the new certificate; and the
 * snapshot a worker stops using is released, not kept until exit.
 */
#include <pthread.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>

#include <openssl/err.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>

#include <cmocka.h>

#include "harness.h"

static struct sg_client *C;

static int group_setup(void **state)
{
    struct h_opts o = {.plain = 1, .workers = 2};
    return h_group_start(&H, "reload", &o, &C);
}

static int group_teardown(void **state)
{
    return h_group_stop(&H, &C);
}

static const char *LOG(void)
{
    return H.proxies[0].log;
}

/* Rewrite the config with these extra listen:/limits: lines, SIGHUP, and
 * wait until the log has one more line containing outcome. */
static void reload_with(const char *listen_yaml, const char *limits_yaml, const char *outcome)
{
    int before = h_count_lines(LOG(), outcome);
    H.opts.listen_yaml = listen_yaml;
    H.opts.limits_yaml = limits_yaml;
    assert_int_equal(h_proxy_write_config(&H, 0), 0);
    H.opts.listen_yaml = NULL;
    H.opts.limits_yaml = NULL;
    assert_int_equal(h_proxy_signal(&H, 0, SIGHUP), 0);
    assert_int_equal(h_wait_lines(LOG(), outcome, before + 1, 10000), 0);
}

/* Restore the file slotgate started with (so later reloads start clean). */
static void restore_config(void)
{
    assert_int_equal(h_proxy_write_config(&H, 0), 0);
}

/* Code of a request with a 100-byte key (limit tests). */
static int long_key_code(struct sg_client *c)
{
    char key[100];
    memset(key, 'k', sizeof key);
    return hc_set(c, "", key, sizeof key, "v", 1, 0, SG_COND_NONE);
}

static void test_reload_to_plaintext_refused(void **state)
{
    /* The file also lowers max_key_bytes: nothing of it may apply. */
    reload_with("  plaintext: true", "  max_key_bytes: 10",
                "key 'listen.plaintext': changed, but only a restart can change it");
    assert_true(h_count_lines(LOG(), "reload refused, keeping the running config") >= 1);
    /* The line names the file and line. */
    char want[700];
    snprintf(want, sizeof want, "%s:", H.proxies[0].config);
    assert_true(h_count_lines(LOG(), want) >= 1);

    /* A plaintext client cannot talk to the port... */
    struct sg_client_options opt;
    h_client_opts(&H, 0, &opt);
    opt.tls = 0;
    opt.timeout_ms = 3000;
    int code = 0;
    char err[256];
    struct sg_client *plain = h_connect_opts(&opt, &code, err, sizeof(err));
    if (plain != NULL) {
        sg_client_free(plain);
        fail_msg("a plaintext client was served after a refused reload to plaintext");
    }
    /* ...TLS clients still can, new and existing, under the old limits. */
    struct sg_client *c = h_connect(&H, 0, H_CERT_NONE);
    assert_non_null(c);
    assert_int_equal(h_check_set_get(c, "still-tls"), 0);
    assert_int_equal(long_key_code(c), SG_OK);
    assert_int_equal(h_check_set_get(C, "still-tls-old-conn"), 0);
    sg_client_free(c);
    restore_config();
}

static void test_restart_only_key_refuses_whole_file(void **state)
{
    reload_with("  proxy_protocol: v2\n  proxy_trusted: [\"127.0.0.1\"]", "  max_key_bytes: 10",
                "key 'listen.proxy_protocol': changed, but only a restart can change it");
    assert_int_equal(long_key_code(C), SG_OK); /* limits unchanged */
    restore_config();
    /* The same limit alone reloads and applies. */
    reload_with(NULL, "  max_key_bytes: 10", "reloaded ");
    assert_int_equal(long_key_code(C), SG_KEY_TOO_LARGE);
    restore_config();
    reload_with(NULL, NULL, "reloaded ");
    assert_int_equal(long_key_code(C), SG_OK);
}

/* ---- certificate rotation under load --------------------------------------- */

/* Subject of the certificate the server presents to a new connection. */
static int presented_subject(int port, char *out, size_t len)
{
    char ca[H_PATH + 16];
    snprintf(ca, sizeof ca, "%s/ca.pem", H.certs);
    SSL_CTX *ctx = SSL_CTX_new(TLS_client_method());
    SSL_CTX_load_verify_locations(ctx, ca, NULL);
    SSL_CTX_set_verify(ctx, SSL_VERIFY_PEER, NULL);
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
    inet_pton(AF_INET, "127.0.0.1", &a.sin_addr);
    int rc = -1;
    SSL *ssl = NULL;
    if (connect(fd, (struct sockaddr *)&a, sizeof a) == 0) {
        ssl = SSL_new(ctx);
        SSL_set_fd(ssl, fd);
        SSL_set_tlsext_host_name(ssl, "localhost");
        SSL_set1_host(ssl, "localhost");
        if (SSL_connect(ssl) == 1) {
            X509 *cert = SSL_get1_peer_certificate(ssl);
            if (cert != NULL) {
                X509_NAME_oneline(X509_get_subject_name(cert), out, (int)len);
                X509_free(cert);
                rc = 0;
            }
        }
    }
    if (ssl != NULL)
        SSL_free(ssl);
    close(fd);
    SSL_CTX_free(ctx);
    ERR_clear_error();
    return rc;
}

struct load {
    pthread_t thread;
    struct sg_client_options opt;
    atomic_int *stop;
    int id;
    _Atomic long ok, failed, connections;
    char last_error[256];
};

/* Connect, 10 SET+GET pairs, close; again until told to stop. Every new
 * connection is a new TLS handshake, so the rotation happens between and
 * during handshakes and requests. */
static void *load_main(void *arg)
{
    struct load *l = arg;
    char key[64], val[64];
    long n = 0;
    while (!*l->stop) {
        int code = 0;
        struct sg_client *c = h_connect_opts(&l->opt, &code, l->last_error, sizeof l->last_error);
        if (c == NULL) {
            l->failed++;
            continue;
        }
        l->connections++;
        for (int i = 0; i < 10; i++, n++) {
            snprintf(key, sizeof key, "rot:%d:%ld", l->id, n);
            snprintf(val, sizeof val, "v%ld", n);
            int rc = hc_set(c, "", key, strlen(key), val, strlen(val), 0, SG_COND_NONE);
            void *got = NULL;
            size_t glen = 0;
            if (rc == SG_OK)
                rc = hc_get(c, "", key, strlen(key), &got, &glen);
            if (rc == SG_OK && (glen != strlen(val) || memcmp(got, val, glen) != 0))
                rc = -1000;
            free(got);
            if (rc == SG_OK) {
                l->ok++;
            } else {
                l->failed++;
                snprintf(l->last_error, sizeof l->last_error, "%s: %.200s", sg_code_name(rc),
                         c->errstr);
            }
        }
        sg_client_free(c);
    }
    return NULL;
}

static void test_cert_rotation_under_load(void **state)
{
    char before[512] = "", after[512] = "", marker[64];
    /* Unique per run: the certs directory outlives a run. */
    snprintf(marker, sizeof marker, "slotgate-rotated-%d-%lld", (int)getpid(),
             (long long)h_now_ms());
    assert_int_equal(presented_subject(H.proxies[0].port, before, sizeof before), 0);
    assert_null(strstr(before, marker));

    /* A new server certificate from the same CA, distinguishable by O=. */
    assert_int_equal(
        h_sh(&H,
             "cd '%s' && openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 "
             "-out rot-key.pem && openssl req -new -key rot-key.pem -out rot.csr "
             "-subj '/O=%s/CN=localhost' && printf '%%s\\n' "
             "'basicConstraints = critical, CA:FALSE' 'keyUsage = critical, digitalSignature' "
             "'extendedKeyUsage = serverAuth' 'subjectAltName = DNS:localhost, IP:127.0.0.1, "
             "IP:::1' > rot.ext && openssl x509 -req -in rot.csr -CA ca.pem -CAkey ca-key.pem "
             "-CAcreateserial -out rot.pem -days 30 -sha256 -extfile rot.ext",
             H.certs, marker),
        0);

    atomic_int stop = 0;
    struct load loads[3];
    memset(loads, 0, sizeof loads);
    for (int i = 0; i < 3; i++) {
        h_client_opts(&H, 0, &loads[i].opt);
        loads[i].stop = &stop;
        loads[i].id = i;
        assert_int_equal(pthread_create(&loads[i].thread, NULL, load_main, &loads[i]), 0);
    }
    /* Load is flowing before the rotation. */
    int64_t deadline = h_now_ms() + 20000;
    while (loads[0].ok + loads[1].ok + loads[2].ok < 300 && h_now_ms() < deadline)
        h_poll_pause();

    /* Replace the files in place (rename: never a half-written file), then
     * SIGHUP, as an operator or cert-manager would. */
    int reloads = h_count_lines(LOG(), "reloaded ");
    assert_int_equal(h_sh(&H,
                          "cd '%s' && cp rot-key.pem server-key.pem.new && cp rot.pem "
                          "server.pem.new && mv server-key.pem.new server-key.pem && "
                          "mv server.pem.new server.pem",
                          H.certs),
                     0);
    assert_int_equal(h_proxy_signal(&H, 0, SIGHUP), 0);
    assert_int_equal(h_wait_lines(LOG(), "reloaded ", reloads + 1, 10000), 0);

    /* New connections see the new certificate. */
    deadline = h_now_ms() + 10000;
    while (presented_subject(H.proxies[0].port, after, sizeof after) != 0 ||
           strstr(after, marker) == NULL) {
        if (h_now_ms() > deadline)
            fail_msg("still presenting '%s' after the reload", after);
        h_poll_pause();
    }
    /* Every load thread makes new connections after the switch. */
    long conns[3];
    for (int i = 0; i < 3; i++)
        conns[i] = loads[i].connections;
    deadline = h_now_ms() + 20000;
    for (int i = 0; i < 3; i++)
        while (loads[i].connections < conns[i] + 3 && h_now_ms() < deadline)
            h_poll_pause();
    stop = 1;
    long ok = 0, failed = 0, connections = 0;
    for (int i = 0; i < 3; i++) {
        pthread_join(loads[i].thread, NULL);
        ok += loads[i].ok;
        failed += loads[i].failed;
        connections += loads[i].connections;
        if (loads[i].failed)
            h_log("load %d: %ld failed, last: %s", i, loads[i].failed, loads[i].last_error);
        assert_true(loads[i].connections >= conns[i] + 3);
    }
    h_log("rotation under load: %ld requests ok, %ld failed, %ld connections; cert now '%s'", ok,
          failed, connections, after);
    assert_int_equal(failed, 0);
    assert_true(ok > 300);
}

static void test_old_snapshot_released(void **state)
{
    /* Reload twice with nothing in flight: each worker lets go of the
     * generation it served before as soon as it swaps. */
    reload_with(NULL, NULL, "reloaded ");
    FILE *f = fopen(LOG(), "r");
    assert_non_null(f);
    char line[4096];
    unsigned long long gen = 0;
    while (fgets(line, sizeof line, f)) {
        const char *p = strstr(line, "(config generation ");
        if (p != NULL && strstr(line, "reloaded ") != NULL)
            sscanf(p, "(config generation %llu)", &gen);
    }
    fclose(f);
    assert_true(gen >= 2);
    char want[96];
    snprintf(want, sizeof want, "config generation %llu released", gen - 1);
    assert_int_equal(h_wait_lines(LOG(), want, H.opts.workers, 10000), 0);
    assert_int_equal(h_check_set_get(C, "after-release"), 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_reload_to_plaintext_refused),
        cmocka_unit_test(test_restart_only_key_refuses_whole_file),
        cmocka_unit_test(test_cert_rotation_under_load),
        cmocka_unit_test(test_old_snapshot_released),
    };
    int failed = cmocka_run_group_tests_name("itest_reload", tests, group_setup, group_teardown);
    failed += h_stop_failed;
    if (failed)
        h_env_dump_logs(&H, 80);
    return failed ? 1 : 0;
}
