/*
 * replymap - how one Redis reply to one sub-op becomes an outcome and an
 * action, as a pure function: no request, no worker, no clock, no I/O.
 * request.c performs the action (settle, retry after backoff, follow a
 * redirect, send the next INVALIDATE page, wait for a lease); command.c
 * restores stored values (envelope) for the settle actions that carry one.
 * The retry/backoff policy lives here too, so that it is computed in one
 * place.
 */
#ifndef SG_REPLYMAP_H
#define SG_REPLYMAP_H

#include <stddef.h>
#include <stdint.h>

#include <hiredis/hiredis.h>

#include "config.h"

/* What the caller of sg_replymap must do with the sub-op. */
enum sg_rm_action {
    SG_RM_SETTLE = 0,   /* settle with code and fields (value: see decode) */
    SG_RM_SETTLE_MGET,  /* settle an MGET sub-op: element j of the array is key j */
    SG_RM_RETRY,        /* retry after backoff; code if retries run out */
    SG_RM_REDIRECT,     /* MOVED or ASK (asking set) to target */
    SG_RM_NEXT_PAGE,    /* INVALIDATE: count keys removed; send page at cursor */
    SG_RM_LEASE_WAIT,   /* someone else holds the lease: poll, or settle with hint */
    SG_RM_SCRIPT_RESEND /* NOSCRIPT to EVALSHA: send again with the script in full */
};

/* Counter the caller bumps for this reply (besides hits/misses of decode). */
enum sg_rm_stat {
    SG_RM_STAT_NONE = 0,
    SG_RM_STAT_SETS,
    SG_RM_STAT_LEASE_GRANT, /* a miss that granted a lease */
    SG_RM_STAT_LEASE_REJECT,
    SG_RM_STAT_VERSION_CONFLICT,
    SG_RM_STAT_MOVED,
    SG_RM_STAT_ASK,
    SG_RM_STAT_TRYAGAIN,
    SG_RM_STAT_CLUSTERDOWN,
    SG_RM_STAT_MISS
};

/* The sub-op a reply answers. */
struct sg_rm_subop {
    int op;             /* SLOTGATE__V1__OP__* of the request */
    int kind;           /* SG_SUBOP_KEYS or SG_SUBOP_SCAN */
    uint32_t count;     /* keys the sub-op covers */
    int grouped;        /* MGET split by slot (the request has an order) */
    int script_in_full; /* a script was sent with EVAL, not EVALSHA */
};

#define SG_RM_CURSOR_MAX 24

/*
 * The mapping. Pointers (message, value) point into the reply or at static
 * strings; keep_reply says the outcome must keep the reply alive.
 */
struct sg_rm_result {
    int action;
    int code;            /* SLOTGATE__V1__CODE__*: settle, or retry's final code */
    const char *message; /* NULL for none */
    int stat;            /* enum sg_rm_stat */
    int refresh;         /* ask the topology manager for a refresh */
    int keep_reply;      /* message or value points into the reply */
    int decode;          /* value/value_len is a stored value to restore */
    int error_reply;     /* Redis answered with an error settled as such */
    const char *value;
    size_t value_len;
    int64_t count;
    uint64_t version;
    uint32_t retry_after_ms;       /* LEASE_WAIT: hint for the client */
    struct sg_addr target;         /* REDIRECT */
    int asking;                    /* REDIRECT: ASK (send ASKING first) */
    char cursor[SG_RM_CURSOR_MAX]; /* NEXT_PAGE, and a last page ("0") */
};

/*
 * Map reply (any type, non-NULL) to the sub-op described by in into *out.
 * Pure and total: every reply gives a defined action. Returns 0.
 */
int sg_replymap(const struct sg_rm_subop *in, const redisReply *reply, struct sg_rm_result *out);

/*
 * For the ops' own reply shapes (struct sg_op's map, ops_*.c): settle with
 * code and message; settle with a stored value to restore (data, len point
 * into the reply).
 */
static inline void sg_rm_settle(struct sg_rm_result *m, int code, const char *message)
{
    m->action = SG_RM_SETTLE;
    m->code = code;
    m->message = message;
}

/* A stored value to restore: decoding decides hit, lease marker (a miss),
 * or corrupt. */
static inline void sg_rm_value(struct sg_rm_result *m, const char *data, size_t len)
{
    m->action = SG_RM_SETTLE;
    m->code = 0; /* CODE_OK */
    m->message = NULL;
    m->decode = 1;
    m->keep_reply = 1;
    m->value = data;
    m->value_len = len;
}

/* --- the one retry/backoff policy -------------------------------------------- */

#define SG_RETRY_MAX 8       /* retries after TRYAGAIN/CLUSTERDOWN/slot not served */
#define SG_RETRY_LINK_MAX 2  /* resends after a lost link (reads, unsent writes) */
#define SG_RETRY_LEASE_MAX 6 /* lease polls before the client gets a hint */
#define SG_RETRY_SHIFT_MAX 6 /* backoff doubles at most this many times */

/* Delay before retry number retries+1: base doubled per retry, capped. */
static inline uint32_t sg_backoff_ms(uint32_t base_ms, uint32_t retries)
{
    uint32_t shift = retries < SG_RETRY_SHIFT_MAX ? retries : SG_RETRY_SHIFT_MAX;
    return base_ms << shift;
}

/* 1 when one more retry (max of them allowed) fits before the deadline. */
static inline int sg_retry_fits(uint32_t retries, uint32_t max, uint64_t now_ms, uint32_t delay_ms,
                                uint64_t deadline_ms)
{
    return retries < max && now_ms + delay_ms < deadline_ms;
}

#endif
