/*
 * tls - OpenSSL contexts: the server context for client connections (TLS
 * 1.2+, optional client-certificate verification) and the client context
 * for links to Redis. Built once at start and shared read-only by workers.
 */
#ifndef SG_TLS_H
#define SG_TLS_H

#include <openssl/ssl.h>

#include "config.h"

/* The TLS 1.3 suites of the server context, in the server's order (tls.c). */
#define SG_TLS13_SUITES "TLS_AES_128_GCM_SHA256:TLS_AES_256_GCM_SHA384:TLS_CHACHA20_POLY1305_SHA256"

/* NULL with the reason in err on failure. */
SSL_CTX *sg_tls_server_ctx(const struct sg_config *cfg, char *err, size_t errlen);
/*
 * Make ssl (a connection to a Redis node at host) verify the node's
 * certificate against host: as an IP address when host is one (no SNI then,
 * RFC 6066), else as a DNS name (and send it as SNI). 0, or -1.
 */
int sg_tls_set_peer_name(SSL *ssl, const char *host);
/* NULL when redis.tls is off (and err empty), or on failure (err set). */
SSL_CTX *sg_tls_redis_ctx(const struct sg_config *cfg, char *err, size_t errlen);

#endif
