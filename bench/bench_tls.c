/*
 * bench_tls - OpenSSL client context and per-connection SSL objects shared
 * by slotgate-bench and slotgate-idle.
 */
#include "bench_tls.h"

#include <arpa/inet.h>
#include <stdio.h>

#include <event2/bufferevent.h>
#include <event2/bufferevent_ssl.h>
#include <openssl/err.h>
#include <openssl/x509v3.h>

static void tls_err(char *err, size_t errlen, const char *what, const char *file)
{
    unsigned long e = ERR_get_error();
    char buf[256] = "";
    if (e != 0)
        ERR_error_string_n(e, buf, sizeof buf);
    snprintf(err, errlen, "%s%s%s: %s", what, file ? " " : "", file ? file : "", buf);
}

SSL_CTX *sg_bench_tls_ctx_new(const char *cacert, const char *cert, const char *key, char *err,
                              size_t errlen)
{
    SSL_CTX *ctx = SSL_CTX_new(TLS_client_method());
    if (ctx == NULL) {
        tls_err(err, errlen, "SSL_CTX_new", NULL);
        return NULL;
    }
    SSL_CTX_set_min_proto_version(ctx, TLS1_2_VERSION);
    if (cacert != NULL) {
        if (SSL_CTX_load_verify_locations(ctx, cacert, NULL) != 1) {
            tls_err(err, errlen, "cannot load CA", cacert);
            goto fail;
        }
        SSL_CTX_set_verify(ctx, SSL_VERIFY_PEER, NULL);
    } else {
        SSL_CTX_set_verify(ctx, SSL_VERIFY_NONE, NULL);
    }
    if (cert != NULL && SSL_CTX_use_certificate_chain_file(ctx, cert) != 1) {
        tls_err(err, errlen, "cannot load certificate", cert);
        goto fail;
    }
    if (key != NULL && SSL_CTX_use_PrivateKey_file(ctx, key, SSL_FILETYPE_PEM) != 1) {
        tls_err(err, errlen, "cannot load key", key);
        goto fail;
    }
    return ctx;
fail:
    SSL_CTX_free(ctx);
    return NULL;
}

SSL *sg_bench_tls_new_ssl(SSL_CTX *ctx, const char *host)
{
    SSL *ssl = SSL_new(ctx);
    unsigned char addr[16];
    if (ssl == NULL)
        return NULL;
    int is_ip = inet_pton(AF_INET, host, addr) == 1 || inet_pton(AF_INET6, host, addr) == 1;
    if (!is_ip)
        SSL_set_tlsext_host_name(ssl, host);
    if (SSL_get_verify_mode(ssl) & SSL_VERIFY_PEER) {
        X509_VERIFY_PARAM *vp = SSL_get0_param(ssl);
        int rc = is_ip ? X509_VERIFY_PARAM_set1_ip_asc(vp, host)
                       : X509_VERIFY_PARAM_set1_host(vp, host, 0);
        if (rc != 1) {
            SSL_free(ssl);
            return NULL;
        }
    }
    return ssl;
}

/* Per read and write system call on a plaintext connection. */
#define SG_BENCH_MAX_SINGLE_IO (256 * 1024)

struct bufferevent *sg_bench_bev_new(struct event_base *base, SSL_CTX *ctx, const char *host)
{
    if (ctx == NULL) {
        /* libevent reads and writes at most 16 KiB per system call by
         * default, so a 64 KiB frame went out in four writes (the proxy
         * took two reads per SET). The clients (and redis-benchmark's
         * hiredis) hand the kernel a whole frame at once: do the same. */
        struct bufferevent *bev = bufferevent_socket_new(base, -1, BEV_OPT_CLOSE_ON_FREE);
        if (bev != NULL && (bufferevent_set_max_single_write(bev, SG_BENCH_MAX_SINGLE_IO) != 0 ||
                            bufferevent_set_max_single_read(bev, SG_BENCH_MAX_SINGLE_IO) != 0)) {
            bufferevent_free(bev);
            return NULL;
        }
        return bev;
    }
    SSL *ssl = sg_bench_tls_new_ssl(ctx, host);
    if (ssl == NULL)
        return NULL;
    struct bufferevent *bev = bufferevent_openssl_socket_new(
        base, -1, ssl, BUFFEREVENT_SSL_CONNECTING, BEV_OPT_CLOSE_ON_FREE);
    if (bev != NULL)
        bufferevent_openssl_set_allow_dirty_shutdown(bev, 1);
    return bev;
}

void sg_bench_bev_why(struct bufferevent *bev, short what, char *why, size_t len)
{
    if (what & BEV_EVENT_TIMEOUT) {
        snprintf(why, len, "timed out");
    } else if (what & BEV_EVENT_EOF) {
        snprintf(why, len, "server closed the connection");
    } else {
        unsigned long e = bufferevent_get_openssl_error(bev);
        if (e != 0) {
            char buf[200];
            ERR_error_string_n(e, buf, sizeof buf);
            snprintf(why, len, "TLS: %s", buf);
        } else {
            int err = EVUTIL_SOCKET_ERROR();
            snprintf(why, len, "%s", err ? evutil_socket_error_to_string(err) : "error");
        }
    }
}
