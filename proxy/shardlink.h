/*
 * shardlink - one connection from one worker to one Redis node. Commands are
 * appended straight to the bufferevent's output buffer, so everything queued
 * in one loop turn leaves in one write; replies are parsed with hiredis's
 * redisReader and matched to the head of a FIFO of pending sub-ops. Any break
 * in that order (lost link, protocol error) resets the link and settles every
 * pending sub-op; the link then reconnects with backoff.
 */
#ifndef SG_SHARDLINK_H
#define SG_SHARDLINK_H

#include <stdint.h>
#include <sys/queue.h>

#include <event2/event.h>
#include <event2/event_struct.h>
#include <hiredis/hiredis.h>

#include "config.h"
#include "resp.h"

struct sg_request;
struct sg_worker;

/*
 * One command on behalf of a request. Owned by its request (embedded or in
 * the request's array); while queued on a link the link only points to it.
 */
enum sg_subop_kind {
    SG_SUBOP_KEYS = 0, /* one key, or one slot's keys of an MGET */
    SG_SUBOP_SCAN      /* one INVALIDATE page on one master */
};

struct sg_subop {
    TAILQ_ENTRY(sg_subop) entry;
    struct sg_request *req;
    struct sg_shardlink *link; /* link it is queued on, or NULL */
    uint32_t index;            /* KEYS: first key; SCAN: shard number */
    uint32_t count;            /* KEYS: number of keys (>1: grouped MGET) */
    uint8_t kind;
    uint8_t asking;         /* send ASKING first (ASK redirect) */
    uint8_t asking_pending; /* ASKING's reply not read yet */
    uint8_t redirects;
    uint8_t retries;
    uint8_t parked; /* waiting on retry_ev */
    uint8_t done;
    uint8_t internal;           /* link's own command (AUTH, READONLY) */
    uint8_t co_role;            /* SG_CO_*: identical-GET coalescing */
    uint8_t script_in_full;     /* the node lacked the script: EVAL, not EVALSHA */
    uint64_t sent_us;           /* when queued on its link (backend latency) */
    struct sg_subop *co_next;   /* leader: first follower; follower: next */
    struct sg_subop *co_leader; /* follower: the sub-op it waits on */
    struct event retry_ev;
};
TAILQ_HEAD(sg_subop_fifo, sg_subop);

enum sg_link_state { SG_LINK_DOWN = 0, SG_LINK_CONNECTING, SG_LINK_READY };

struct sg_shardlink {
    struct sg_worker *worker;
    struct sg_addr addr;
    int state;
    struct sg_conn *conn;
    /* Bumped by every reset: code that may reset the link (a reply
     * callback) compares it, not conn, whose address may be reused. */
    uint64_t generation;
    redisReader *reader;
    struct sg_resp_scan scan; /* headers checked before the reader sees them */
    struct evbuffer *scratch; /* for cutting a half-formatted command off */
    struct sg_subop_fifo fifo;
    uint32_t n_pending;
    uint32_t backoff_ms;
    uint64_t down_since_ms;
    struct event *reconnect_ev;
    struct event *stall_ev;    /* periodic check for a hung node */
    uint64_t last_progress_ms; /* last reply, or first command owed */
    int readonly;              /* replica link: READONLY after connect */
    int stats_slot;            /* node counters (stats.h), by address and role */
    int stats_state;           /* state last published to them, -1: none */
    struct sg_subop auth_op, readonly_op;
};

struct sg_shardlink *sg_shardlink_new(struct sg_worker *w, const struct sg_addr *addr,
                                      int readonly);
/* Settles every pending sub-op with SHARD_UNAVAILABLE, then frees. */
void sg_shardlink_free(struct sg_shardlink *l);

/*
 * Queue op on l: format its command into the output buffer and append it to
 * the FIFO. If the link is down, the sub-op is settled (or parked for retry)
 * at once by the request layer; returns -1 in that case, and -2 when the
 * command could not be formatted (nothing of it was queued).
 */
int sg_shardlink_send(struct sg_shardlink *l, struct sg_subop *op);

/*
 * The limits a link's reply pre-scan applies (resp.h): redis.max_reply_elements
 * and redis.max_reply_bulk_bytes, or, when those are 0, values derived from
 * the largest legitimate reply: an MGET of limits.max_batch_keys keys or an
 * INVALIDATE page, and a value of the largest max_value_bytes plus room for
 * the envelope.
 */
void sg_shardlink_reply_limits(const struct sg_config *cfg, uint64_t *max_elements,
                               uint64_t *max_bulk);

#endif
