/*
 * tls - OpenSSL context construction. Both contexts refuse anything below
 * TLS 1.2. SSL_MODE_RELEASE_BUFFERS keeps TLS 1.2 connections small:
 * OpenSSL drops its read/write buffers between records instead of holding
 * ~34 KiB per connection. TLS 1.3 connections leave OpenSSL after the
 * handshake (tlsrec.h). Kernel TLS is not asked for: it would keep every
 * connection's SSL object (20-25 kB) alive.
 */
#include "tls.h"

#include <stdio.h>
#include <string.h>

#include <openssl/err.h>
#include <openssl/x509v3.h>

#include "tlsrec.h"

static void tls_err(char *err, size_t errlen, const char *what, const char *path)
{
    char buf[256];
    ERR_error_string_n(ERR_get_error(), buf, sizeof(buf));
    snprintf(err, errlen, "%s %s: %s", what, path, buf);
    ERR_clear_error();
}

SSL_CTX *sg_tls_server_ctx(const struct sg_config *cfg, char *err, size_t errlen)
{
    SSL_CTX *ctx = SSL_CTX_new(TLS_server_method());
    if (ctx == NULL) {
        snprintf(err, errlen, "SSL_CTX_new failed");
        return NULL;
    }
    SSL_CTX_set_min_proto_version(ctx, TLS1_2_VERSION);
    SSL_CTX_set_mode(ctx, SSL_MODE_RELEASE_BUFFERS | SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER);
    SSL_CTX_set_options(ctx, SSL_OP_NO_RENEGOTIATION | SSL_OP_CIPHER_SERVER_PREFERENCE |
                                 SSL_OP_PRIORITIZE_CHACHA);
    /* TLS 1.3 suites in the server's order, as Mozilla's server guidelines
     * and Go's crypto/tls rank them: AES-128-GCM first (it seals a 64 KiB
     * answer about 15 % faster than AES-256-GCM with AES-NI, and 128-bit
     * keys are TLS 1.3's baseline), then AES-256-GCM; ChaCha20-Poly1305
     * when the client lists it first (PRIORITIZE_CHACHA: a client without
     * AES instructions says so that way). OpenSSL's own order, which a
     * server that prefers its own would otherwise use, starts with
     * AES-256-GCM. */
    if (SSL_CTX_set_ciphersuites(ctx, SG_TLS13_SUITES) != 1) {
        snprintf(err, errlen, "SSL_CTX_set_ciphersuites failed");
        goto fail;
    }
    /* conn.c takes TLS 1.3 connections over with its own record layer
     * once the handshake is done; it needs the traffic secrets. No
     * read-ahead: OpenSSL reads a record at a time, so that no record after
     * the handshake's last is inside OpenSSL when it ends. */
    SSL_CTX_set_keylog_callback(ctx, sg_tlsrec_keylog);
    if (SSL_CTX_use_certificate_chain_file(ctx, cfg->tls_cert) != 1) {
        tls_err(err, errlen, "tls.cert", cfg->tls_cert);
        goto fail;
    }
    if (SSL_CTX_use_PrivateKey_file(ctx, cfg->tls_key, SSL_FILETYPE_PEM) != 1 ||
        SSL_CTX_check_private_key(ctx) != 1) {
        tls_err(err, errlen, "tls.key", cfg->tls_key);
        goto fail;
    }
    if (cfg->tls_client_ca[0] != '\0') {
        if (SSL_CTX_load_verify_locations(ctx, cfg->tls_client_ca, NULL) != 1) {
            tls_err(err, errlen, "tls.client_ca", cfg->tls_client_ca);
            goto fail;
        }
        STACK_OF(X509_NAME) *names = SSL_load_client_CA_file(cfg->tls_client_ca);
        if (names != NULL)
            SSL_CTX_set_client_CA_list(ctx, names);
        int mode = SSL_VERIFY_PEER;
        if (cfg->tls_require_client_cert)
            mode |= SSL_VERIFY_FAIL_IF_NO_PEER_CERT;
        SSL_CTX_set_verify(ctx, mode, NULL);
    }
    return ctx;
fail:
    SSL_CTX_free(ctx);
    return NULL;
}

int sg_tls_set_peer_name(SSL *ssl, const char *host)
{
    X509_VERIFY_PARAM *vp = SSL_get0_param(ssl);
    int ok;
    if (X509_VERIFY_PARAM_set1_ip_asc(vp, host) == 1) {
        ok = 1;
    } else {
        ERR_clear_error();
        X509_VERIFY_PARAM_set_hostflags(vp, X509_CHECK_FLAG_NO_PARTIAL_WILDCARDS);
        ok = SSL_set1_host(ssl, host) == 1 && SSL_set_tlsext_host_name(ssl, host) == 1;
    }
    if (!ok)
        ERR_clear_error();
    return ok ? 0 : -1;
}

SSL_CTX *sg_tls_redis_ctx(const struct sg_config *cfg, char *err, size_t errlen)
{
    err[0] = '\0';
    if (!cfg->redis_tls)
        return NULL;
    SSL_CTX *ctx = SSL_CTX_new(TLS_client_method());
    if (ctx == NULL) {
        snprintf(err, errlen, "SSL_CTX_new failed");
        return NULL;
    }
    SSL_CTX_set_min_proto_version(ctx, TLS1_2_VERSION);
    SSL_CTX_set_mode(ctx, SSL_MODE_RELEASE_BUFFERS | SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER);
    SSL_CTX_set_keylog_callback(ctx, sg_tlsrec_keylog); /* as for clients, above */
    if (cfg->redis_tls_ca[0] != '\0') {
        if (SSL_CTX_load_verify_locations(ctx, cfg->redis_tls_ca, NULL) != 1) {
            tls_err(err, errlen, "redis.tls.ca", cfg->redis_tls_ca);
            goto fail;
        }
    } else {
        SSL_CTX_set_default_verify_paths(ctx);
    }
    SSL_CTX_set_verify(ctx, SSL_VERIFY_PEER, NULL);
    if (cfg->redis_tls_cert[0] != '\0') {
        if (SSL_CTX_use_certificate_chain_file(ctx, cfg->redis_tls_cert) != 1) {
            tls_err(err, errlen, "redis.tls.cert", cfg->redis_tls_cert);
            goto fail;
        }
        if (SSL_CTX_use_PrivateKey_file(ctx, cfg->redis_tls_key, SSL_FILETYPE_PEM) != 1) {
            tls_err(err, errlen, "redis.tls.key", cfg->redis_tls_key);
            goto fail;
        }
    }
    return ctx;
fail:
    SSL_CTX_free(ctx);
    return NULL;
}
