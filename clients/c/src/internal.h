/*
 * internal.h - private interfaces shared by the files of libslotgate.
 *
 * transport.c owns the socket and the optional TLS session, request.c builds
 * and encodes requests, response.c decodes server messages, and client.c
 * ties them into framing, the handshake, and the public calls. Nothing here
 * is installed or part of the public API.
 */
#ifndef SG_CLIENT_INTERNAL_H
#define SG_CLIENT_INTERNAL_H

#include <stddef.h>
#include <stdint.h>

#include <openssl/ssl.h>

#include "slotgate.h"
#include "slotgate.pb-c.h"

/* Largest frame body the client accepts from a server. */
#define SG_CLIENT_MAX_FRAME (64u * 1024u * 1024u)

/* Out-of-memory policy: log and abort (the API has void setters). */
void *sg_xmalloc(size_t n);
void *sg_xrealloc(void *p, size_t n);
char *sg_xstrdup(const char *s);
void *sg_xmemdup(const void *p, size_t n);

/* Monotonic clock in milliseconds. */
int64_t sg_now_ms(void);

/* Results of one non-blocking transport step. */
enum sg_io {
    SG_IO_DONE = 0,   /* *n bytes moved (n > 0) */
    SG_IO_EOF,        /* orderly close by the peer */
    SG_IO_WANT_READ,  /* retry after the socket is readable */
    SG_IO_WANT_WRITE, /* retry after the socket is writable */
    SG_IO_ERROR       /* failed; reason in the transport's err */
};

struct sg_transport {
    int fd;
    SSL_CTX *ctx;
    SSL *ssl;
    char err[256];
};

int sg_transport_open(struct sg_transport *t, const struct sg_client_options *opt,
                      int64_t deadline);
void sg_transport_close(struct sg_transport *t);
enum sg_io sg_transport_read(struct sg_transport *t, void *buf, size_t len, size_t *n);
enum sg_io sg_transport_write(struct sg_transport *t, const void *buf, size_t len, size_t *n);
int sg_transport_wait(struct sg_transport *t, short events, int64_t deadline, short *revents);
int sg_transport_pending(const struct sg_transport *t);

struct sg_request {
    enum sg_op op;
    int nocheck; /* sg_request_skip_checks */
    char *keyspace;
    ProtobufCBinaryData *keys;
    size_t n_keys, cap_keys;
    ProtobufCBinaryData *values;
    size_t n_values, cap_values;
    uint64_t *ttls;
    size_t n_ttls, cap_ttls;
    uint64_t ttl_ms;
    enum sg_cond cond;
    uint32_t deadline_ms;
    ProtobufCBinaryData pattern;
    ProtobufCBinaryData lease;
    uint64_t version;
};

uint8_t *sg_frame_request(const struct sg_request *r, uint64_t id, size_t *len);
size_t sg_request_size(const struct sg_request *r);
/* A cheap upper bound of sg_request_size. */
size_t sg_request_size_bound(const struct sg_request *r);
/* One request per op with the typed calls' arguments; the caller owns it. */
struct sg_request *sg_req_key(enum sg_op op, const char *keyspace, const void *key, size_t klen);
struct sg_request *sg_req_keys(enum sg_op op, const char *keyspace, size_t n,
                               const void *const *keys, const size_t *klens);
struct sg_request *sg_req_set(const char *keyspace, const void *key, size_t klen, const void *val,
                              size_t vlen, uint64_t ttl_ms, enum sg_cond cond);
struct sg_request *sg_req_expire(const char *keyspace, const void *key, size_t klen,
                                 uint64_t ttl_ms);
struct sg_request *sg_req_mset(const char *keyspace, size_t n, const void *const *keys,
                               const size_t *klens, const void *const *vals, const size_t *vlens,
                               const uint64_t *ttls, uint64_t ttl_ms, enum sg_cond cond);
struct sg_request *sg_req_invalidate(const char *keyspace, const void *pattern, size_t plen);
struct sg_request *sg_req_get_or_lease(const char *keyspace, const void *key, size_t klen,
                                       uint64_t lease_ttl_ms);
struct sg_request *sg_req_set_with_lease(const char *keyspace, const void *key, size_t klen,
                                         const void *val, size_t vlen, const void *lease,
                                         size_t llen, uint64_t ttl_ms);
struct sg_request *sg_req_set_versioned(const char *keyspace, const void *key, size_t klen,
                                        const void *val, size_t vlen, uint64_t version,
                                        uint64_t ttl_ms);

uint8_t *sg_frame_hello(const char *client_name, const void *token, size_t token_len, size_t *len);
struct sg_response *sg_response_wrap(Slotgate__V1__ServerMessage *msg);
struct sg_response *sg_response_synth(uint64_t id, int code, const char *message);

/*
 * The blocking context behind struct sg_client (client.c); the async
 * context (async.c) drives one in tracking mode.
 */
struct sg_conn;
struct sg_conn *sg_conn_open(const struct sg_client_options *opt, int hello);
/* Tracking mode only: the next settled response without waiting. 0 with
 * *out, -1 if none is ready yet, -2 if the connection is gone with nothing
 * outstanding. */
int sg_conn_recv_nowait(struct sg_conn *c, struct sg_response **out);
/* Earliest client deadline among pending requests (monotonic ms), 0 = none. */
int64_t sg_conn_next_deadline(const struct sg_conn *c);
/* Requests sent and not yet returned by recv (pending or parked). */
size_t sg_conn_outstanding(const struct sg_conn *c);
void sg_conn_force_tracking(struct sg_conn *c);
/* Changes whenever a new connection replaces the old one (even if the new
 * socket reuses the old fd number). */
unsigned sg_conn_generation(const struct sg_conn *c);
/* No further reads or writes on the current socket (a reconnect may follow). */
int sg_conn_closed(const struct sg_conn *c);

#endif
