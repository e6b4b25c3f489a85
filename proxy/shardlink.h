/*
 * shardlink - one connection from one event loop (a worker, the topology
 * manager) to one Redis node: the one Redis client of the process. Commands
 * are appended straight to the connection's output buffer, so everything
 * queued in one loop turn leaves in one write; replies are parsed with
 * hiredis's redisReader and matched to the head of a FIFO of pending
 * records. Any break in that order (lost link, protocol error) resets the
 * link and hands every pending record back; the link then reconnects with
 * backoff. Every connection to Redis is set up here: TLS with the node's
 * name verified, AUTH, READONLY for replica links.
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

struct evbuffer;

struct sg_core;

/*
 * What a link queues: one command on behalf of someone above (a request's
 * sub-op, the topology manager's CLUSTER SLOTS). The link knows nothing
 * of requests: it formats the command through cbs->format and hands back
 * the reply or its failure through cbs->reply / cbs->failure. The owner
 * embeds the record; while queued the link only points to it.
 */
struct sg_linkop;
struct sg_linkop_cbs {
    /* Append the command to out (sg_resp_* helpers: errors are detected
     * through sg_resp_format_failed()). */
    void (*format)(struct sg_linkop *op, struct evbuffer *out);
    /* Its reply; ownership of reply passes to the callee. */
    void (*reply)(struct sg_linkop *op, redisReply *reply);
    /* The link dropped it: reset or freed (may_have_run: the command may
     * have reached Redis). */
    void (*failure)(struct sg_linkop *op, int may_have_run);
    /*
     * Optional: a simple reply read in place from the link's input instead
     * of through a hiredis reply object (errors and arrays still come to
     * reply). type is hiredis's: REDIS_REPLY_STRING (n bytes at data:
     * malloc'd with ownership passing, or, when borrowed, lying in the
     * link's input and valid during the call only), REDIS_REPLY_NIL (data
     * NULL), REDIS_REPLY_STATUS (n bytes at data, NUL-terminated, valid
     * during the call only) or REDIS_REPLY_INTEGER (n is the value, data
     * NULL).
     */
    void (*simple)(struct sg_linkop *op, int type, char *data, int64_t n, int borrowed);
};

struct sg_linkop {
    TAILQ_ENTRY(sg_linkop) entry;
    const struct sg_linkop_cbs *cbs; /* NULL: the link's own set-up command */
    struct sg_shardlink *link;       /* link it is queued on, or NULL */
    uint64_t sent_us;                /* when queued (backend latency) */
    uint8_t asking;                  /* send ASKING first (ASK redirect) */
    uint8_t asking_pending;          /* ASKING's reply not read yet */
};

enum sg_link_state { SG_LINK_DOWN = 0, SG_LINK_CONNECTING, SG_LINK_READY };

/* The link's object is private to shardlink.c. */
struct sg_shardlink;

/* A link to addr, connecting at once (readonly: a replica link, READONLY
 * after AUTH). Counters go to core->stats; a lost link calls
 * core->hooks->topology_refresh. */
struct sg_shardlink *sg_shardlink_new(struct sg_core *core, const struct sg_addr *addr,
                                      int readonly);
/* Hands every pending record back (failure, may have run), then frees. */
void sg_shardlink_free(struct sg_shardlink *l);

const struct sg_addr *sg_shardlink_addr(const struct sg_shardlink *l);
int sg_shardlink_readonly(const struct sg_shardlink *l);
int sg_shardlink_state(const struct sg_shardlink *l);
/* Commands written and owed a reply. */
uint32_t sg_shardlink_pending(const struct sg_shardlink *l);
/*
 * Retire a link whose node left the topology: it takes no new command and
 * does not reconnect; what is pending is still answered (or failed when
 * the connection goes). sg_shardlink_revive undoes it (the node is back,
 * or a MOVED names it before the topology does).
 */
void sg_shardlink_retire(struct sg_shardlink *l);
void sg_shardlink_revive(struct sg_shardlink *l);
int sg_shardlink_retired(const struct sg_shardlink *l);

/*
 * Queue op on l: format its command into the output buffer and append it to
 * the FIFO. Returns 0; -1 when the link is down, retired or not keeping up
 * (nothing queued, no callback); -2 when the command could not be formatted
 * (nothing of it was queued).
 */
int sg_shardlink_send(struct sg_shardlink *l, struct sg_linkop *op);

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
