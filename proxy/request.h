/*
 * request - one client request. It is split into sub-ops (one per key),
 * each routed by slot to a shard link; it completes when every sub-op has
 * settled or its deadline fires, and produces exactly one response. Its
 * memory lives until both have happened: answered and no sub-op left on any
 * link, so a late reply always finds its sub-op (and is then dropped).
 */
#ifndef SG_REQUEST_H
#define SG_REQUEST_H

#include <stdint.h>
#include <sys/queue.h>

#include <event2/event.h>
#include <event2/event_struct.h>
#include <hiredis/hiredis.h>

#include "config.h"
#include "shardlink.h"
#include "slotgate.pb-c.h"

struct sg_session;
struct sg_worker;
struct evbuffer;

/* Per-key outcome. value points into reply (owned) or is NULL. */
struct sg_key_outcome {
    int code;
    redisReply *reply;
    const char *message;
};

struct sg_request {
    TAILQ_ENTRY(sg_request) entry; /* in the session's list */
    struct sg_session *session;    /* NULL once orphaned */
    struct sg_worker *worker;
    Slotgate__V1__ClientMessage *msg; /* owned: decoded frame */
    Slotgate__V1__Request *rq;        /* points into msg */
    const struct sg_keyspace_config *ks;
    uint64_t deadline_ms;
    uint64_t ttl_ms;                  /* resolved TTL for SET/EXPIRE */
    struct event deadline_ev;
    uint32_t n_keys;
    uint32_t pending;                 /* sub-ops not settled */
    uint8_t answered;
    uint8_t deadline_armed;
    int last_transient;               /* code to report if the deadline fires */
    /* Full keys (prefix + key); point into msg when there is no prefix. */
    ProtobufCBinaryData *keys;
    struct sg_subop *subops;
    struct sg_key_outcome *out;
    /* Inline storage for the single-key case (no extra allocations). */
    ProtobufCBinaryData key1;
    struct sg_subop subop1;
    struct sg_key_outcome out1;
};

/*
 * Start handling a decoded request message. Takes ownership of msg. Answers
 * at once for validation errors and local ops (PING, STATS); otherwise
 * dispatches sub-ops to shard links. The request registers itself with the
 * session until answered.
 */
void sg_request_start(struct sg_session *s, Slotgate__V1__ClientMessage *msg);

/* Route a sub-op with the worker's current topology and queue it. */
void sg_request_dispatch(struct sg_subop *op);
/* Format the sub-op's Redis command into out (called by the link). */
void sg_request_format(struct sg_subop *op, struct evbuffer *out);
/*
 * A reply for op arrived (takes ownership of reply), or the link failed
 * (reply NULL, link_code the typed error; retryable says whether the command
 * may have been executed: 0 means surely not).
 */
void sg_request_on_reply(struct sg_subop *op, redisReply *reply);
void sg_request_on_link_failure(struct sg_subop *op, int may_have_run);
/* The session is going away: answer nothing more, free what can be freed. */
void sg_request_orphan(struct sg_request *r);

#endif
