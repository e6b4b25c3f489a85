/*
 * slotgate.h - the C client library for slotgate (libslotgate), shaped like
 * hiredis: a blocking context (struct sg_client) with the reason for the last
 * failure in c->err / c->errstr, typed calls for every op plus a generic
 * request path, a public codec, and (slotgate/async.h) an asynchronous
 * context with event-loop adapters (slotgate/adapters/libevent.h).
 *
 * Error model: functions return 0 (or a non-NULL pointer) on success and -1
 * (or NULL) on failure, with the reason in the context: c->err is an enum
 * sg_code (a protocol code such as SG_KEY_TOO_LARGE for a local limit check,
 * SG_TIMEOUT for a passed client deadline, SG_SHUTTING_DOWN for a
 * ConnectionError, or SG_ERR_IO / SG_ERR_PROTOCOL) and c->errstr says why.
 * A server answer is never a failure: NOT_FOUND, NOT_APPLIED, KEY_TOO_LARGE
 * from the server... come back as a reply with that code.
 *
 * Request ids are assigned by the library (monotonic from 1) and returned.
 * Replies (struct sg_response) are owned by the caller and freed with
 * sg_response_free. A context must be used by one thread at a time.
 */
#ifndef SLOTGATE_H
#define SLOTGATE_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/* Export marker: the shared library exports only what carries it. */
#if defined(__GNUC__) && !defined(SG_STATIC)
#define SG_API __attribute__((visibility("default")))
#else
#define SG_API
#endif

/*
 * Status and error codes: the protocol's codes (slotgate.v1.Code) one to one,
 * plus client-side failures (never sent by the server).
 */
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
    SG_OUTPUT_LIMIT = 107,
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
    SG_ERR_IO = 1000,       /* connect/read/write failed, connection closed, timeout_ms */
    SG_ERR_PROTOCOL = 1001, /* the server sent something that does not decode */
    /* Old names of the two above (before the reshape). */
    SG_CLIENT_IO = SG_ERR_IO,
    SG_CLIENT_PROTOCOL = SG_ERR_PROTOCOL
};

/* Name of a code ("NOT_FOUND", "TIMEOUT", ...); never NULL. */
SG_API const char *sg_code_name(int code);

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
    /*
     * Resilience; 0 (the default) for both keeps the simple behaviour. Either
     * one makes the client track every request it sends until its response
     * arrives ("tracking mode", below). The async context always tracks.
     * reconnect: 1 = when the server ends the connection with SHUTTING_DOWN,
     *   reconnect (backoff with jitter, for up to timeout_ms) and resend every
     *   request still unanswered: the server never executed them. After any
     *   other loss (EOF, I/O error, another ConnectionError) the outcome of
     *   unanswered requests is unknown: they fail (SG_ERR_IO, or the
     *   ConnectionError's code) and the next call reconnects.
     * deadline_margin_ms: > 0 = a request with deadline_ms fails locally with
     *   SG_TIMEOUT once deadline_ms + deadline_margin_ms have passed since it
     *   was sent without a response (a hung proxy); a late response to it is
     *   dropped. The connection stays open.
     */
    int reconnect;
    int deadline_margin_ms;
    /* 1: do not check requests against the server's limits before sending. */
    int no_local_checks;
};

/* Server limits, as announced in HelloReply (0 = not announced). */
struct sg_limits {
    uint32_t max_frame_bytes, max_key_bytes, max_value_bytes, max_batch_keys;
    uint32_t max_inflight, default_deadline_ms, max_batch_bytes;
};

/*
 * The blocking context. The library allocates it (it is larger than this);
 * only these members are public. err is SG_OK until a call fails; after a
 * call returned -1 or NULL, err and errstr say why.
 */
struct sg_client {
    enum sg_code err;
    char errstr[256];
};

/*
 * Connect, perform TLS (if asked) and the Hello handshake. Always returns a
 * context (out of memory aborts): check c->err. A server that refuses the
 * Hello leaves its code in c->err (SG_AUTH_FAILED, SG_TOO_MANY_CONNECTIONS,
 * ...). A failed context must still be freed with sg_client_free.
 */
SG_API struct sg_client *sg_client_connect(const struct sg_client_options *opt);
SG_API void sg_client_free(struct sg_client *c);
SG_API const struct sg_limits *sg_client_limits(const struct sg_client *c);
SG_API const char *sg_client_server_version(const struct sg_client *c);
/* The file descriptor (for poll() in pipelined use); -1 when closed. */
SG_API int sg_client_fd(const struct sg_client *c);
/*
 * 1 if sg_client_recv can return a response without the fd becoming
 * readable (parked response, complete buffered frame, TLS-buffered data);
 * check it before poll() on sg_client_fd in pipelined use.
 */
SG_API int sg_client_pending(const struct sg_client *c);

/* A request under construction; byte strings are copied in. */
struct sg_request;
SG_API struct sg_request *sg_request_new(enum sg_op op);
SG_API void sg_request_free(struct sg_request *r);
SG_API void sg_request_keyspace(struct sg_request *r, const char *keyspace);
SG_API void sg_request_add_key(struct sg_request *r, const void *key, size_t len);
SG_API void sg_request_add_value(struct sg_request *r, const void *val, size_t len);
SG_API void sg_request_add_ttl(struct sg_request *r, uint64_t ttl_ms); /* MSET per item */
SG_API void sg_request_ttl(struct sg_request *r, uint64_t ttl_ms);
SG_API void sg_request_condition(struct sg_request *r, enum sg_cond cond);
SG_API void sg_request_deadline(struct sg_request *r, uint32_t deadline_ms);
SG_API void sg_request_pattern(struct sg_request *r, const void *p, size_t len);
SG_API void sg_request_lease(struct sg_request *r, const void *lease, size_t len);
SG_API void sg_request_version(struct sg_request *r, uint64_t version);
/* Send r exactly as built, without the local limit checks (tests, tools). */
SG_API void sg_request_skip_checks(struct sg_request *r);

/* A decoded response (a reply); all pointers are owned by the response. */
struct sg_key_result {
    int code; /* an enum sg_code value (or one newer than this header) */
    const uint8_t *value;
    size_t value_len;
    const char *message;
};
struct sg_response {
    uint64_t id;
    int code;            /* an enum sg_code value (or one newer than this header) */
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
    int local;   /* 1: made up by the client (no server answer): code says why */
    void *priv_; /* internal */
};
/* Free a reply and everything it points to; NULL is fine. */
SG_API void sg_response_free(struct sg_response *r);

/*
 * Local checks against the server's limits (PROTOCOL.md section 12 item 6):
 * key and pattern <= max_key_bytes, value <= max_value_bytes, batch keys and
 * bytes <= max_batch_keys / max_batch_bytes, frame <= max_frame_bytes. 0, or
 * -1 with c->err the code the server would answer (SG_KEY_TOO_LARGE,
 * SG_VALUE_TOO_LARGE, SG_BATCH_TOO_LARGE, SG_FRAME_TOO_LARGE). Every send
 * runs it unless the option no_local_checks is set.
 */
SG_API int sg_client_check(struct sg_client *c, const struct sg_request *r);

/*
 * Pipelined mode. sg_client_send assigns the request an id, stores it in *id
 * (if id != NULL) and writes the request (it may block while the socket is
 * full). sg_client_recv blocks for the next response, whichever request it
 * answers. Both return 0, or -1 with c->err / c->errstr. If the server sends
 * a ConnectionError outside tracking mode, sg_client_recv returns a response
 * with id 0 and that code, and the client is closed afterwards.
 *
 * Tracking mode (options reconnect or deadline_margin_ms): every request
 * that sg_client_send accepted (returned 0) gets exactly one response from
 * sg_client_recv, either the server's or one the client made up (local = 1)
 * with the request's id and a failure code (SG_TIMEOUT for a passed client
 * deadline, SG_ERR_IO or a ConnectionError code for a lost connection,
 * message says which). No id-0 response is returned; sg_client_recv returns
 * -1 only when nothing is outstanding and the connection is gone, or on
 * timeout_ms. sg_client_send reconnects a closed client first (reconnect).
 * The fd may change after a reconnect: read sg_client_fd before each poll().
 */
SG_API int sg_client_send(struct sg_client *c, const struct sg_request *r, uint64_t *id);
SG_API int sg_client_recv(struct sg_client *c, struct sg_response **out);

/*
 * General blocking form: send r (assigning it an id) and wait for its
 * response; responses to other ids are parked for sg_client_recv. Returns 0
 * with *out the server's reply (whatever its code), or -1 with *out NULL and
 * c->err set: a client-side failure, a local limit check, a ConnectionError
 * (its code), or in tracking mode a made-up failure (SG_TIMEOUT at the
 * client deadline, SG_ERR_IO or SG_SHUTTING_DOWN for a lost connection).
 */
SG_API int sg_call(struct sg_client *c, const struct sg_request *r, struct sg_response **out);

/*
 * Typed blocking calls, one per op. Each returns the reply (caller frees it
 * with sg_response_free; check reply->code, per-key codes in results for
 * batches) or NULL with c->err / c->errstr, exactly as sg_call. keyspace
 * NULL or "" is the default keyspace. ttl_ms 0 = keyspace default.
 */
SG_API struct sg_response *sg_ping(struct sg_client *c);
SG_API struct sg_response *sg_get(struct sg_client *c, const char *keyspace, const void *key,
                                  size_t klen);
SG_API struct sg_response *sg_set(struct sg_client *c, const char *keyspace, const void *key,
                                  size_t klen, const void *val, size_t vlen, uint64_t ttl_ms,
                                  enum sg_cond cond);
SG_API struct sg_response *sg_del(struct sg_client *c, const char *keyspace, const void *key,
                                  size_t klen);
SG_API struct sg_response *sg_expire(struct sg_client *c, const char *keyspace, const void *key,
                                     size_t klen, uint64_t ttl_ms);
/* n keys: keys[i] of klens[i] bytes. */
SG_API struct sg_response *sg_mget(struct sg_client *c, const char *keyspace, size_t n,
                                   const void *const *keys, const size_t *klens);
/* ttls NULL: ttl_ms for every item; else ttls[i] per item (0 = ttl_ms). */
SG_API struct sg_response *sg_mset(struct sg_client *c, const char *keyspace, size_t n,
                                   const void *const *keys, const size_t *klens,
                                   const void *const *vals, const size_t *vlens,
                                   const uint64_t *ttls, uint64_t ttl_ms, enum sg_cond cond);
SG_API struct sg_response *sg_mdel(struct sg_client *c, const char *keyspace, size_t n,
                                   const void *const *keys, const size_t *klens);
SG_API struct sg_response *sg_invalidate(struct sg_client *c, const char *keyspace,
                                         const void *pattern, size_t plen);
/* lease_ttl_ms: TTL of a granted lease (0 = server default). */
SG_API struct sg_response *sg_get_or_lease(struct sg_client *c, const char *keyspace,
                                           const void *key, size_t klen, uint64_t lease_ttl_ms);
SG_API struct sg_response *sg_set_with_lease(struct sg_client *c, const char *keyspace,
                                             const void *key, size_t klen, const void *val,
                                             size_t vlen, const void *lease, size_t llen,
                                             uint64_t ttl_ms);
SG_API struct sg_response *sg_get_versioned(struct sg_client *c, const char *keyspace,
                                            const void *key, size_t klen);
SG_API struct sg_response *sg_set_versioned(struct sg_client *c, const char *keyspace,
                                            const void *key, size_t klen, const void *val,
                                            size_t vlen, uint64_t version, uint64_t ttl_ms);
SG_API struct sg_response *sg_stats(struct sg_client *c);

/*
 * Codec, free of I/O (for load generators and other event loops).
 * sg_encode_request: the whole frame (4-byte big-endian length and the
 * ClientMessage) for r with request id id, in a malloc'ed buffer the caller
 * frees; NULL if it does not fit in one frame. sg_encode_hello: the Hello
 * frame. sg_decode_frame_len: 1 and *body_len when buf holds at least the
 * 4-byte header, 0 if it needs more bytes. sg_decode_response: decode one
 * ServerMessage body (the bytes after the header) into a reply the caller
 * owns: 0, or -1 if it does not decode. A ConnectionError decodes to a
 * reply with id 0 and its code; *kind says which message it was.
 */
enum sg_msg_kind { SG_MSG_RESPONSE = 1, SG_MSG_CONNECTION_ERROR = 2, SG_MSG_HELLO_REPLY = 3 };
SG_API uint8_t *sg_encode_request(const struct sg_request *r, uint64_t id, size_t *len);
SG_API uint8_t *sg_encode_hello(const char *client_name, const void *token, size_t token_len,
                                size_t *len);
SG_API int sg_decode_frame_len(const uint8_t *buf, size_t len, size_t *body_len);
SG_API int sg_decode_response(const uint8_t *body, size_t len, struct sg_response **out,
                              enum sg_msg_kind *kind, struct sg_limits *limits);

#ifdef __cplusplus
}
#endif
#endif
