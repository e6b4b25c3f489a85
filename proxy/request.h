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

#include "coalesce.h"
#include "config.h"
#include "deadline.h"
#include "shardlink.h"
#include "slotgate.pb-c.h"
#include "util.h"

struct sg_core;
struct evbuffer;
struct sg_request;

/*
 * One command on behalf of a request. Owned by its request (embedded or in
 * the request's array); while queued on a link the link only points to its
 * record (lop).
 */
enum sg_subop_kind {
    SG_SUBOP_KEYS = 0, /* one key, or one slot's keys of an MGET */
    SG_SUBOP_SCAN      /* one INVALIDATE page on one master */
};

struct sg_subop {
    struct sg_linkop lop; /* what the link queues */
    struct sg_request *req;
    uint32_t index; /* KEYS: first key; SCAN: shard number */
    uint32_t count; /* KEYS: number of keys (>1: grouped MGET) */
    uint8_t kind;
    uint8_t redirects;
    uint8_t retries;
    uint8_t parked; /* waiting on retry_ev */
    uint8_t done;
    uint8_t script_in_full; /* the node lacked the script: EVAL, not EVALSHA */
    uint8_t slot_known;     /* slot is set (KEYS: by the op's prepare) */
    uint16_t slot;          /* KEYS: hash slot of the sub-op's keys */
    struct sg_co co;        /* identical-GET coalescing (coalesce.h) */
    struct event retry_ev;
};

/*
 * Where a request's answer goes: the session that started it (an upward
 * notification, so the request layer never calls the session). respond
 * gets the response once; after it the request is no longer the owner's.
 * block, when not NULL, points to the malloc'd block m's value lies in:
 * the owner may take it (and set *block to NULL), then it frees it.
 */
struct sg_request_sink {
    void (*respond)(void *owner, struct sg_request *r, const Slotgate__V1__ServerMessage *m,
                    uint8_t **block);
};

/*
 * Outcome of one key (or, for INVALIDATE, of the whole request). code is
 * -1 until settled. value points into reply or buf, both owned here.
 */
struct sg_key_outcome {
    int code;
    const uint8_t *value;
    size_t value_len;
    redisReply *reply;
    uint8_t *buf;
    const char *message;
    int64_t count;
    uint64_t version;
    uint32_t retry_after_ms;
};

/* INVALIDATE progress on one master. */
struct sg_inval_shard {
    struct sg_addr addr;
    char cursor[24];
};

#define SG_REQUEST_ARENA 1024

/*
 * Bump allocator for protobuf-c: the decoded message of a request lives in
 * the request's own inline buffer (overflow goes to malloc), so decoding a
 * typical request costs no allocation at all.
 */
struct sg_arena {
    ProtobufCAllocator pa;
    size_t used;
    uint32_t overflow; /* allocations that went to malloc */
    _Alignas(16) uint8_t buf[SG_REQUEST_ARENA];
};

struct sg_request {
    struct sg_request *pool_next;  /* in the worker's pool of idle requests */
    TAILQ_ENTRY(sg_request) entry; /* in the session's list */
    void *owner;                   /* the session; NULL once answered or orphaned */
    const struct sg_request_sink *sink;
    struct sg_core *core;
    Slotgate__V1__ClientMessage *msg; /* owned: decoded frame */
    Slotgate__V1__Request *rq;        /* points into msg */
    const struct sg_keyspace_config *ks;
    int ks_index; /* counter slot of the keyspace (by name, stats.h) */
    uint64_t deadline_ms;
    uint64_t start_us; /* arrival, for the latency histogram */
    uint64_t ttl_ms;   /* resolved TTL for writes/EXPIRE */
    uint32_t n_keys;
    uint32_t n_out; /* outcomes: n_keys, or 1 */
    uint32_t n_subops;
    uint32_t pending; /* sub-ops not settled */
    uint8_t answered;
    uint8_t deadline_armed;      /* 0, 1: deadline_ev, 2: dl */
    uint16_t batch;              /* the owner's read it came in (session.c's write gathering) */
    int last_transient;          /* code to report if the deadline fires */
    ProtobufCBinaryData *keys;   /* full keys (prefix + key) */
    ProtobufCBinaryData *values; /* stored form (envelope) of values */
    uint32_t *order;             /* grouped MGET: key indexes by slot */
    struct sg_subop *subops;
    struct sg_key_outcome *out;
    struct sg_inval_shard *inval;
    ProtobufCBinaryData pattern; /* INVALIDATE: full MATCH pattern */
    ProtobufCBinaryData lease;   /* lease token (GET_OR_LEASE grants) */
    ProtobufCBinaryData marker;  /* lease marker as stored in Redis */
    /* A large SET value taken from the session's input by reference
     * (sg_request_take_value): rq->values[0] has its length and no data;
     * value_by_ref once command.c has chosen to send these bytes as they
     * are, else rq->values[0] was made contiguous. value_held: bytes the
     * owner counts as its own (session.c), 0 when it does not. */
    struct evbuffer *value_buf;
    size_t value_held;
    uint8_t value_by_ref;
    void **allocs; /* buffers freed with the request */
    uint32_t n_allocs, cap_allocs;
    /* Inline storage for the single-key case (no extra allocations). */
    ProtobufCBinaryData key1, value1;
    struct sg_key_outcome out1;
    /* Zeroed for each new request: everything above, and subop1 up to its
     * retry_ev. The two events are assigned before use; the arena's header
     * is set field by field (sg_request_decode). */
    struct sg_subop subop1;
    struct sg_deadline dl;    /* in the worker's lanes (deadline.h), deadline_armed 2 */
    struct event deadline_ev; /* a timer of its own, deadline_armed 1 */
    struct sg_arena arena;
};

/*
 * A request object from the worker's pool with body decoded into its arena,
 * or NULL when the bytes do not decode as a ClientMessage. The caller owns
 * it: either sg_request_start or sg_request_discard.
 */
struct sg_request *sg_request_decode(struct sg_core *core, const uint8_t *body, size_t len);
/*
 * The same for a frame body held in two places: body (len bytes) is the
 * body with the bytes of its SET's value left out at offset gap, gap_len of
 * them (sg_fastpb_decode_client_gap). NULL unless it decodes as a SET of
 * one key and that value (anything else is for sg_request_decode with the
 * whole body); then the caller hands the value's bytes over with
 * sg_request_take_value before anything else.
 */
struct sg_request *sg_request_decode_gap(struct sg_core *core, const uint8_t *body, size_t len,
                                         size_t gap, size_t gap_len);
/*
 * Move the value's bytes, the first rq->values[0].len bytes of in, into a
 * buffer of r's own (value_buf), chains moved rather than copied where
 * whole, held until r is freed; or, when they lie in many small chains,
 * copy them into a block r owns (rq->values[0].data, no value_buf). 0, or
 * -1 out of memory (in may have lost part of them).
 */
int sg_request_take_value(struct sg_request *r, struct evbuffer *in);
/* Return a request that will not be started (e.g. a Hello) to the pool. */
void sg_request_discard(struct sg_request *r);
/*
 * Start handling a decoded request (r->msg->request set) for owner, which
 * gets its answer through sink exactly once: at once for validation errors
 * and local ops (PING, STATS), else when its sub-ops have settled or its
 * deadline fires.
 */
void sg_request_start(struct sg_request *r, const struct sg_request_sink *sink, void *owner);
/* Free the core's pool of idle request objects. */
void sg_request_pool_free(struct sg_core *core);

/* Route a sub-op with the router and queue it. */
void sg_request_dispatch(struct sg_subop *op);
/* The owner is going away: answer nothing more, free what can be freed. */
void sg_request_orphan(struct sg_request *r);

/* --- used by command.c ---------------------------------------------------- */

/*
 * Settle a sub-op. o (may be NULL when the caller already stored the
 * outcomes of a grouped MGET) is moved into the request's outcome for
 * op->index, or dropped if the request was already answered. A coalescing
 * leader hands a copy of o to each follower first.
 */
void sg_request_settle(struct sg_subop *op, struct sg_key_outcome *o);
/* Settle with an error code for every key the sub-op covers. */
void sg_request_settle_error(struct sg_subop *op, int code, const char *message);
/* Try again after a backoff within the deadline, else settle with code. */
void sg_request_retry_later(struct sg_subop *op, int code, const char *message);
/*
 * Send op again after delay ms, counted as a retry; for a caller that has
 * already decided the wait fits its own retry budget and the deadline.
 */
void sg_request_park(struct sg_subop *op, uint32_t delay);
/* INVALIDATE: send op's next page after pause_ms (0: now). */
void sg_request_next_page(struct sg_subop *op, uint32_t pause_ms);
/* Keep p until the request is freed. */
static inline void sg_request_own(struct sg_request *r, void *p)
{
    if (r->n_allocs == r->cap_allocs) {
        r->cap_allocs = r->cap_allocs ? r->cap_allocs * 2 : 4;
        r->allocs = sg_realloc(r->allocs, sizeof(*r->allocs) * r->cap_allocs);
    }
    r->allocs[r->n_allocs++] = p;
}
/* Key index of the j-th key a sub-op covers. */
static inline uint32_t sg_request_key_of(const struct sg_request *r, const struct sg_subop *op,
                                         uint32_t j)
{
    return r->order ? r->order[op->index + j] : op->index + j;
}

#endif
