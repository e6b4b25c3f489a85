/*
 * bench_tls - client TLS context for the benchmark tools.
 *
 * With a CA file the server certificate is verified against it (host name or
 * IP address of -h); without one verification is off, as the tools measure
 * throughput, not trust. A client certificate is loaded when given (the
 * proxy requires one by default).
 */
#ifndef SG_BENCH_TLS_H
#define SG_BENCH_TLS_H

#include <stddef.h>

#include <openssl/ssl.h>

/* Returns a new context the caller owns (SSL_CTX_free), or NULL with the
 * reason in err. cacert, cert and key may be NULL. */
SSL_CTX *sg_bench_tls_ctx_new(const char *cacert, const char *cert, const char *key, char *err,
                              size_t errlen);

/* Returns a new SSL for one connection to host (SNI and verification name),
 * or NULL. The caller owns it (bufferevent_openssl takes it over). */
SSL *sg_bench_tls_new_ssl(SSL_CTX *ctx, const char *host);

struct event_base;
struct bufferevent;
/*
 * A client bufferevent not yet connected: TLS when ctx is non-NULL (dirty
 * shutdowns allowed), plain otherwise. NULL on failure.
 */
struct bufferevent *sg_bench_bev_new(struct event_base *base, SSL_CTX *ctx, const char *host);
/* Why a client bufferevent reported what (timeout, EOF, TLS or socket error). */
void sg_bench_bev_why(struct bufferevent *bev, short what, char *why, size_t len);

#endif
