/*
 * slotgate.h - the C client library for slotgate (libslotgate).
 *
 * One connection = one struct sg_client. Blocking calls (sg_get, sg_set, ...)
 * send one request and wait for its response. Pipelined mode
 * (sg_client_send / sg_client_recv) keeps many requests in flight on one
 * connection; responses may come back in any order and carry the request id.
 *
 * Thread safety: a struct sg_client must be used by one thread at a time.
 * Ownership: every object returned through an out-parameter is owned by the
 * caller and freed with the matching *_free function.
 */
#ifndef SLOTGATE_H
#define SLOTGATE_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/* Status and error codes: identical to slotgate.v1.Code in slotgate.proto. */
enum sg_code {
    SG_OK = 0,
    SG_NOT_FOUND = 1,
    SG_NOT_APPLIED = 2,
    SG_LEASE_GRANTED = 3,
    SG_LEASE_WAIT = 4,
    SG_BAD_FRAME = 100,
    SG_FRAME_TOO_LARGE = 101,
    SG_HANDSHAKE_REQUIRED = 102,
    SG_UNSUPPORTED_VERSION = 103,
    SG_AUTH_FAILED = 104,
    SG_TOO_MANY_CONNECTIONS = 105,
    SG_SHUTTING_DOWN = 106,
    SG_UNKNOWN_OP = 200,
    SG_INVALID_ARGUMENT = 201,
    SG_INVALID_KEY = 202,
    SG_KEY_TOO_LARGE = 203,
    SG_VALUE_TOO_LARGE = 204,
    SG_BATCH_TOO_LARGE = 205,
    SG_UNKNOWN_KEYSPACE = 206,
    SG_TTL_OUT_OF_RANGE = 207,
    SG_LEASE_INVALID = 208,
    SG_VERSION_CONFLICT = 209,
    SG_TIMEOUT = 300,
    SG_SHARD_UNAVAILABLE = 301,
    SG_CLUSTER_DOWN = 302,
    SG_BACKEND_ERROR = 303,
    SG_CORRUPT_VALUE = 304,
    SG_INTERNAL = 399,
    /* Client-side failures (never sent by the server). */
    SG_CLIENT_IO = 1000,      /* connect/read/write failed or connection closed */
    SG_CLIENT_PROTOCOL = 1001 /* server sent something that does not decode */
};

/* Name of a code ("NOT_FOUND", "TIMEOUT", ...); never NULL. */
const char *sg_code_name(int code);

enum sg_op {
    SG_OP_PING = 1,
    SG_OP_GET = 2,
    SG_OP_SET = 3,
    SG_OP_DELETE = 4,
    SG_OP_EXPIRE = 5,
    SG_OP_MGET = 10,
    SG_OP_MSET = 11,
    SG_OP_MDELETE = 12,
    SG_OP_INVALIDATE = 20,
    SG_OP_GET_OR_LEASE = 21,
    SG_OP_SET_WITH_LEASE = 22,
    SG_OP_SET_VERSIONED = 23,
    SG_OP_GET_VERSIONED = 24,
    SG_OP_STATS = 30
};

enum sg_cond { SG_COND_NONE = 0, SG_COND_NX = 1, SG_COND_XX = 2 };

struct sg_client_options {
    const char *host;        /* default "127.0.0.1" */
    int port;                /* default 7420 */
    int tls;                 /* 1: TLS (verify server against cacert) */
    const char *cacert;      /* PEM CA file; NULL: system default store */
    const char *cert;        /* client certificate (mTLS), optional */
    const char *key;         /* client private key (mTLS), optional */
    const char *sni;         /* server name to verify; default: host */
    int insecure;            /* 1: skip certificate verification */
    const char *client_name; /* sent in Hello; default "libslotgate" */
    const void *auth_token;  /* optional, sent in Hello */
    size_t auth_token_len;
    int timeout_ms; /* connect and per-call I/O timeout; 0 = 5000 */
    int skip_hello; /* testing only: connect without the handshake */
    /*
     * Resilience; 0 (the default) keeps the behaviour described above. Either
     * one makes the client track every request it sends until its response
     * arrives ("tracking mode", below).
     * reconnect: 1 = when the server ends the connection with SHUTTING_DOWN,
     *   reconnect (backoff with jitter, for up to timeout_ms) and resend every
     *   request still unanswered: the server never executed them. After any
     *   other loss (EOF, I/O error, another ConnectionError) the outcome of
     *   unanswered requests is unknown: they fail (SG_CLIENT_IO, or the
     *   ConnectionError's code) and the next call reconnects.
     * deadline_margin_ms: > 0 = a request with deadline_ms fails locally with
     *   SG_TIMEOUT once deadline_ms + deadline_margin_ms have passed since it
     *   was sent without a response (a hung proxy); a late response to it is
     *   dropped. The connection stays open.
     */
    int reconnect;
    int deadline_margin_ms;
};

/* Server limits, as announced in HelloReply. */
struct sg_limits {
    uint32_t max_frame_bytes, max_key_bytes, max_value_bytes, max_batch_keys;
    uint32_t max_inflight, default_deadline_ms, max_batch_bytes;
};

struct sg_client;

/*
 * Connect, perform TLS (if asked) and the Hello handshake.
 * Returns 0 and sets *out, or -1 with a one-line reason in err (errlen bytes).
 * A server that refuses the Hello yields -1 and, if code != NULL, its code.
 */
int sg_client_connect(const struct sg_client_options *opt, struct sg_client **out, int *code,
                      char *err, size_t errlen);
void sg_client_free(struct sg_client *c);
const struct sg_limits *sg_client_limits(const struct sg_client *c);
const char *sg_client_server_version(const struct sg_client *c);
/* Last error text of this client (I/O or protocol). */
const char *sg_client_errstr(const struct sg_client *c);
/* The file descriptor (for poll() in pipelined use). */
int sg_client_fd(const struct sg_client *c);
/*
 * 1 if sg_client_recv can return a response without the fd becoming
 * readable (parked response, complete buffered frame, TLS-buffered data);
 * check it before poll() on sg_client_fd in pipelined use.
 */
int sg_client_pending(const struct sg_client *c);

/* A request under construction; byte strings are copied in. */
struct sg_request;
struct sg_request *sg_request_new(uint64_t id, int op);
void sg_request_free(struct sg_request *r);
void sg_request_keyspace(struct sg_request *r, const char *keyspace);
void sg_request_add_key(struct sg_request *r, const void *key, size_t len);
void sg_request_add_value(struct sg_request *r, const void *val, size_t len);
void sg_request_add_ttl(struct sg_request *r, uint64_t ttl_ms); /* MSET per item */
void sg_request_ttl(struct sg_request *r, uint64_t ttl_ms);
void sg_request_condition(struct sg_request *r, int cond);
void sg_request_deadline(struct sg_request *r, uint32_t deadline_ms);
void sg_request_pattern(struct sg_request *r, const void *p, size_t len);
void sg_request_lease(struct sg_request *r, const void *lease, size_t len);
void sg_request_version(struct sg_request *r, uint64_t version);

/* A decoded response; all pointers are owned by the response. */
struct sg_key_result {
    int code;
    const uint8_t *value;
    size_t value_len;
    const char *message;
};
struct sg_response {
    uint64_t id;
    int code;
    const char *message; /* "" when none */
    const uint8_t *value;
    size_t value_len;
    int64_t count;
    size_t n_results;
    const struct sg_key_result *results;
    const uint8_t *lease;
    size_t lease_len;
    uint32_t retry_after_ms;
    uint64_t version;
    size_t n_stats;
    const char *const *stat_names;
    const uint64_t *stat_values;
    void *priv_; /* internal */
};
void sg_response_free(struct sg_response *r);

/*
 * Pipelined mode. sg_client_send queues and writes one request (it may block
 * while the socket is full). sg_client_recv blocks for the next response,
 * whichever request it answers. Both return 0, or -1 on I/O/protocol error
 * (see sg_client_errstr). If the server sends a ConnectionError,
 * sg_client_recv returns a response with id 0 and that code, and the client
 * is closed afterwards.
 *
 * Tracking mode (options reconnect or deadline_margin_ms): every request
 * that sg_client_send accepted (returned 0) gets exactly one response from
 * sg_client_recv, either the server's or one the client made up with the
 * request's id and a failure code (SG_TIMEOUT for a passed client deadline,
 * SG_CLIENT_IO or a ConnectionError code for a lost connection, message
 * says which). No id-0 response is returned; sg_client_recv returns -1 only
 * when nothing is outstanding and the connection is gone, or on timeout_ms.
 * sg_client_send reconnects a closed client first (reconnect). The fd may
 * change after a reconnect: read sg_client_fd again before each poll().
 */
int sg_client_send(struct sg_client *c, const struct sg_request *r);
int sg_client_recv(struct sg_client *c, struct sg_response **out);

/* Raw access for tests: write bytes as-is / a frame with an arbitrary body. */
int sg_client_write_raw(struct sg_client *c, const void *buf, size_t len);

/*
 * Blocking calls: send one request, wait for its response. Return the
 * response code (SG_OK, SG_NOT_FOUND, ...) or SG_CLIENT_IO /
 * SG_CLIENT_PROTOCOL. Request ids are assigned by the client.
 * sg_get stores a malloc'ed copy of the value in *val (free with free()).
 */
int sg_ping(struct sg_client *c);
int sg_get(struct sg_client *c, const char *keyspace, const void *key, size_t klen, void **val,
           size_t *vlen);
int sg_set(struct sg_client *c, const char *keyspace, const void *key, size_t klen, const void *val,
           size_t vlen, uint64_t ttl_ms, int cond);
int sg_del(struct sg_client *c, const char *keyspace, const void *key, size_t klen);
int sg_expire(struct sg_client *c, const char *keyspace, const void *key, size_t klen,
              uint64_t ttl_ms);
/*
 * General form: send r, wait for the response with r's id. In tracking mode
 * the wait also ends at r's client deadline (SG_TIMEOUT, *out set), and a
 * closed client is reconnected first (reconnect).
 */
int sg_call(struct sg_client *c, const struct sg_request *r, struct sg_response **out);
/* Next request id this client would assign (monotonic, starts at 1). */
uint64_t sg_client_next_id(struct sg_client *c);

#ifdef __cplusplus
}
#endif
#endif
