/*
 * slotgate/async.h - the asynchronous context of libslotgate, as hiredis's
 * async.h: requests carry a callback, replies arrive in any order and are
 * matched by the id the library assigned, and an event-loop adapter (see
 * slotgate/adapters/libevent.h) tells the context when its socket is
 * readable or its timer fired.
 *
 * The context always runs in tracking mode (slotgate.h): every request that
 * sg_async_send accepted gets exactly one callback, with the server's reply
 * or one the client made up (reply->local = 1: SG_TIMEOUT once deadline_ms +
 * deadline_margin_ms passed, SG_ERR_IO or a ConnectionError code for a lost
 * connection). With the option reconnect, requests the server never executed
 * (SHUTTING_DOWN) are resent on a new connection, exactly as the blocking
 * client does.
 *
 * What is not event-driven: the connect, TLS and Hello (sg_async_connect),
 * a reconnect, and writes happen synchronously (bounded by timeout_ms), as
 * they do in the blocking client. Reads, replies and client deadlines are
 * driven by the event loop.
 *
 * Callbacks run from sg_async_handle_read / sg_async_handle_timeout (never
 * from sg_async_send). The reply is freed when the callback returns; a
 * callback copies what it needs to keep. A callback may send new requests,
 * but must not free the context (free it after the loop returns).
 * sg_async_free calls every callback still outstanding with reply NULL.
 */
#ifndef SLOTGATE_ASYNC_H
#define SLOTGATE_ASYNC_H

#include <slotgate.h>

#ifdef __cplusplus
extern "C" {
#endif

struct sg_async;
typedef void sg_async_callback(struct sg_async *ac, struct sg_response *reply, void *privdata);

/*
 * The async context; the library allocates it (it is larger than this).
 * err/errstr as in struct sg_client. data is for the caller. ev is filled
 * in by an event-loop adapter.
 */
struct sg_async {
    enum sg_code err;
    char errstr[256];
    void *data;
    struct {
        void *data;
        void (*add_read)(void *data, int fd); /* watch fd for reading (replaces any) */
        void (*del_read)(void *data);
        void (*set_timer)(void *data, long ms); /* one-shot in ms; ms < 0 cancels */
        void (*cleanup)(void *data);            /* context freed: drop the adapter */
    } ev;
};

/* Connect (synchronously, as sg_client_connect); check ac->err. */
SG_API struct sg_async *sg_async_connect(const struct sg_client_options *opt);
/* Call every outstanding callback with NULL, run ev.cleanup, free. */
SG_API void sg_async_free(struct sg_async *ac);
SG_API const struct sg_limits *sg_async_limits(const struct sg_async *ac);

/*
 * Send r with a callback (cb may be NULL: the reply is dropped). 0 with *id
 * (if id != NULL) the library's id for r, or -1 with ac->err (a local limit
 * check, or a closed connection that cannot reconnect); then cb is never
 * called.
 */
SG_API int sg_async_send(struct sg_async *ac, const struct sg_request *r, sg_async_callback *cb,
                         void *privdata, uint64_t *id);
/*
 * Typed calls, one per op, with the arguments of the blocking ones
 * (slotgate.h) plus the callback: 0, or -1 with ac->err as sg_async_send.
 */
SG_API int sg_async_ping(struct sg_async *ac, sg_async_callback *cb, void *privdata);
SG_API int sg_async_get(struct sg_async *ac, const char *keyspace, const void *key, size_t klen,
                        sg_async_callback *cb, void *privdata);
SG_API int sg_async_set(struct sg_async *ac, const char *keyspace, const void *key, size_t klen,
                        const void *val, size_t vlen, uint64_t ttl_ms, enum sg_cond cond,
                        sg_async_callback *cb, void *privdata);
SG_API int sg_async_del(struct sg_async *ac, const char *keyspace, const void *key, size_t klen,
                        sg_async_callback *cb, void *privdata);
SG_API int sg_async_expire(struct sg_async *ac, const char *keyspace, const void *key, size_t klen,
                           uint64_t ttl_ms, sg_async_callback *cb, void *privdata);
SG_API int sg_async_mget(struct sg_async *ac, const char *keyspace, size_t n,
                         const void *const *keys, const size_t *klens, sg_async_callback *cb,
                         void *privdata);
SG_API int sg_async_mset(struct sg_async *ac, const char *keyspace, size_t n,
                         const void *const *keys, const size_t *klens, const void *const *vals,
                         const size_t *vlens, const uint64_t *ttls, uint64_t ttl_ms,
                         enum sg_cond cond, sg_async_callback *cb, void *privdata);
SG_API int sg_async_mdel(struct sg_async *ac, const char *keyspace, size_t n,
                         const void *const *keys, const size_t *klens, sg_async_callback *cb,
                         void *privdata);
SG_API int sg_async_invalidate(struct sg_async *ac, const char *keyspace, const void *pattern,
                               size_t plen, sg_async_callback *cb, void *privdata);
SG_API int sg_async_get_or_lease(struct sg_async *ac, const char *keyspace, const void *key,
                                 size_t klen, uint64_t lease_ttl_ms, sg_async_callback *cb,
                                 void *privdata);
SG_API int sg_async_set_with_lease(struct sg_async *ac, const char *keyspace, const void *key,
                                   size_t klen, const void *val, size_t vlen, const void *lease,
                                   size_t llen, uint64_t ttl_ms, sg_async_callback *cb,
                                   void *privdata);
SG_API int sg_async_get_versioned(struct sg_async *ac, const char *keyspace, const void *key,
                                  size_t klen, sg_async_callback *cb, void *privdata);
SG_API int sg_async_set_versioned(struct sg_async *ac, const char *keyspace, const void *key,
                                  size_t klen, const void *val, size_t vlen, uint64_t version,
                                  uint64_t ttl_ms, sg_async_callback *cb, void *privdata);
SG_API int sg_async_stats(struct sg_async *ac, sg_async_callback *cb, void *privdata);

/* Requests sent whose callback has not run yet. */
SG_API size_t sg_async_outstanding(const struct sg_async *ac);

/* For adapters: the socket is readable / the timer fired / (re)arm both. */
SG_API void sg_async_handle_read(struct sg_async *ac);
SG_API void sg_async_handle_timeout(struct sg_async *ac);
SG_API void sg_async_rearm(struct sg_async *ac);

#ifdef __cplusplus
}
#endif
#endif
