/*
 * request - the life cycle of one client request: fan-out of sub-ops to
 * shard links, redirects and retries, the deadline, and the single answer.
 *
 * Each sub-op settles exactly once (reply, typed error, or cancellation).
 * The response is produced once: when the last sub-op settles or when the
 * deadline fires, whichever comes first. The memory is released only when
 * the request is answered AND no sub-op is still queued on a link, so a
 * reply that arrives late (after the deadline, or after the client left)
 * still finds its sub-op, is read, and is dropped: the link's FIFO stays
 * aligned. What each op means in Redis lives in command.c.
 */
#include "request.h"

#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <event2/buffer.h>

#include "coalesce.h"
#include "deadline.h"
#include "command.h"
#include "core.h"
#include "fastpb.h"
#include "fault.h"
#include "frame.h"
#include "log.h"
#include "optable.h"
#include "replymap.h"
#include "resp.h"
#include "router.h"
#include "slot.h"
#include "stats.h"
#include "util.h"

#define SUBOP_OF(p, field) ((struct sg_subop *)((char *)(p)-offsetof(struct sg_subop, field)))

static void subop_format(struct sg_linkop *lop, struct evbuffer *out);
static void subop_reply(struct sg_linkop *lop, redisReply *reply);
static void subop_failure(struct sg_linkop *lop, int may_have_run);
static void subop_simple(struct sg_linkop *lop, int type, char *data, int64_t n, int borrowed);
static const struct sg_linkop_cbs subop_cbs = {subop_format, subop_reply, subop_failure, NULL};
/* Ops whose replies are simple (bulk, nil, status, integer; or an error):
 * the link hands them over in place, without a hiredis reply object. */
static const struct sg_linkop_cbs subop_simple_cbs = {subop_format, subop_reply, subop_failure,
                                                      subop_simple};

/* Ask the owner for a topology refresh (MOVED, CLUSTERDOWN, a link down). */
static void request_refresh(struct sg_core *core)
{
    if (core->hooks != NULL && core->hooks->topology_refresh != NULL)
        core->hooks->topology_refresh(core->owner);
}

static void request_finish(struct sg_request *r);
static void request_maybe_free(struct sg_request *r);

static void outcome_release(struct sg_key_outcome *o)
{
    if (o->reply != NULL)
        freeReplyObject(o->reply);
    free(o->buf);
    o->reply = NULL;
    o->buf = NULL;
}

static const ProtobufCBinaryData *subop_first_key(const struct sg_subop *op)
{
    return &op->req->keys[sg_request_key_of(op->req, op, 0)];
}

/* One sub-op fewer outstanding; the last one answers the request. */
static void subop_done(struct sg_subop *op)
{
    struct sg_request *r = op->req;
    op->done = 1;
    r->pending--;
    if (r->pending == 0) {
        if (!r->answered)
            request_finish(r);
        request_maybe_free(r);
    }
}

/* A follower takes a copy of its leader's outcome. */
static void coalesce_hand_over(struct sg_subop *leader, const struct sg_key_outcome *o)
{
    struct sg_co *c;
    while ((c = sg_coalesce_next_follower(&leader->co)) != NULL) {
        struct sg_subop *f = SUBOP_OF(c, co);
        struct sg_key_outcome copy = *o;
        copy.reply = NULL;
        copy.buf = NULL;
        if (o->value != NULL) {
            copy.buf = sg_malloc(o->value_len ? o->value_len : 1);
            memcpy(copy.buf, o->value, o->value_len);
            copy.value = copy.buf;
        }
        SG_STAT_INC(&f->req->core->stats, coalesced_gets);
        sg_request_settle(f, &copy);
    }
}

/* The leader will not produce a result: its followers go on their own. */
static void coalesce_release_followers(struct sg_subop *leader)
{
    struct sg_co *c;
    while ((c = sg_coalesce_next_follower(&leader->co)) != NULL)
        sg_request_dispatch(SUBOP_OF(c, co));
}

static void coalesce_leave(struct sg_subop *op)
{
    const ProtobufCBinaryData *k = subop_first_key(op);
    sg_coalesce_leave(op->req->core->coalesce, k->data, k->len, &op->co);
}

void sg_request_settle(struct sg_subop *op, struct sg_key_outcome *o)
{
    struct sg_request *r = op->req;
    if (op->done) {
        if (o != NULL)
            outcome_release(o);
        return;
    }
    if (op->co.role == SG_CO_LEADER) {
        coalesce_leave(op);
        if (o != NULL)
            coalesce_hand_over(op, o);
    }
    if (o != NULL) {
        if (r->answered) {
            outcome_release(o);
            SG_STAT_INC(&r->core->stats, orphaned_replies);
        } else if (op->kind == SG_SUBOP_SCAN) {
            struct sg_key_outcome *agg = &r->out[0];
            agg->count += o->count;
            if (o->code != SLOTGATE__V1__CODE__CODE_OK &&
                agg->code == SLOTGATE__V1__CODE__CODE_OK) {
                /* o->message may point into o->reply, released below. */
                agg->code = o->code;
                agg->message =
                    o->reply != NULL ? "a master answered INVALIDATE with an error" : o->message;
            }
            outcome_release(o);
        } else {
            r->out[sg_request_key_of(r, op, 0)] = *o;
        }
    }
    subop_done(op);
}

void sg_request_settle_error(struct sg_subop *op, int code, const char *message)
{
    struct sg_request *r = op->req;
    if (op->count > 1 && !r->answered && !op->done) {
        for (uint32_t j = 0; j < op->count; j++) {
            struct sg_key_outcome *o = &r->out[sg_request_key_of(r, op, j)];
            o->code = code;
            o->message = message;
        }
        sg_request_settle(op, NULL);
        return;
    }
    struct sg_key_outcome o = {.code = code, .message = message};
    sg_request_settle(op, &o);
}

/* Take a sub-op that is not on any link out of play (parked, follower). */
static void subop_cancel(struct sg_subop *op)
{
    if (op->done)
        return;
    if (op->parked) {
        event_del(&op->retry_ev);
        op->parked = 0;
    } else if (op->co.role == SG_CO_FOLLOWER) {
        sg_coalesce_unfollow(&op->co);
    } else {
        return; /* on a link: its reply will settle it */
    }
    if (op->co.role == SG_CO_LEADER) {
        coalesce_leave(op);
        coalesce_release_followers(op);
    }
    op->done = 1;
    op->req->pending--;
}

static void on_retry(evutil_socket_t fd, short what, void *arg)
{
    struct sg_subop *op = arg;
    op->parked = 0;
    sg_request_dispatch(op);
}

void sg_request_retry_later(struct sg_subop *op, int code, const char *message)
{
    struct sg_request *r = op->req;
    uint32_t delay = sg_backoff_ms(r->core->cfg->retry_backoff_ms, op->retries);
    r->last_transient = code;
    if (r->answered ||
        !sg_retry_fits(op->retries, SG_RETRY_MAX, sg_now_ms(), delay, r->deadline_ms)) {
        sg_request_settle_error(op, code, message);
        return;
    }
    sg_request_park(op, delay);
}

void sg_request_park(struct sg_subop *op, uint32_t delay)
{
    struct sg_request *r = op->req;
    op->retries++;
    SG_STAT_INC(&r->core->stats, retries);
    struct timeval tv = {delay / 1000, (delay % 1000) * 1000};
    event_assign(&op->retry_ev, r->core->base, -1, 0, on_retry, op);
    op->parked = 1;
    evtimer_add(&op->retry_ev, &tv);
}

void sg_request_next_page(struct sg_subop *op, uint32_t pause_ms)
{
    if (pause_ms == 0) {
        sg_request_dispatch(op);
        return;
    }
    struct timeval tv = {pause_ms / 1000, (pause_ms % 1000) * 1000};
    event_assign(&op->retry_ev, op->req->core->base, -1, 0, on_retry, op);
    op->parked = 1;
    evtimer_add(&op->retry_ev, &tv);
}

static void request_send(struct sg_subop *op, struct sg_shardlink *link)
{
    op->lop.cbs = sg_op_simple_replies(op->req->rq->op, op->count) && op->kind == SG_SUBOP_KEYS
                      ? &subop_simple_cbs
                      : &subop_cbs;
    int rc = sg_shardlink_send(link, &op->lop);
    if (rc == -2) {
        sg_request_settle_error(op, SLOTGATE__V1__CODE__CODE_INTERNAL,
                                "the command could not be formatted (out of memory)");
        return;
    }
    if (rc != 0) {
        request_refresh(op->req->core);
        op->req->last_transient = SLOTGATE__V1__CODE__CODE_SHARD_UNAVAILABLE;
        sg_request_settle_error(op, SLOTGATE__V1__CODE__CODE_SHARD_UNAVAILABLE,
                                "the owning shard is unavailable (link down or not keeping up)");
    }
}

/* Coalesce a plain GET onto an identical one in flight; 1 if it joined. */
static int dispatch_coalesce(struct sg_subop *op)
{
    struct sg_request *r = op->req;
    struct sg_core *w = r->core;
    const ProtobufCBinaryData *k = subop_first_key(op);
    int o = r->rq->op;
    if (sg_op_flags(o) & SG_OPF_WRITE) {
        sg_coalesce_forget_key(w->coalesce, k->data, k->len);
        return 0;
    }
    if (o != SLOTGATE__V1__OP__OP_GET || !w->cfg->coalesce_gets || op->retries || op->redirects ||
        op->co.role != SG_CO_NONE)
        return 0;
    return sg_coalesce_join(w->coalesce, k->data, k->len, &op->co);
}

void sg_request_dispatch(struct sg_subop *op)
{
    struct sg_request *r = op->req;
    struct sg_router *rt = r->core->router;
    if (op->kind == SG_SUBOP_SCAN) {
        request_send(op, sg_router_addr_link(rt, &r->inval[op->index].addr));
        return;
    }
    if (op->count == 1 && dispatch_coalesce(op))
        return;
    const ProtobufCBinaryData *k = subop_first_key(op);
    int replica_ok = r->ks->read_from_replicas && (sg_op_flags(r->rq->op) & SG_OPF_READ) &&
                     op->redirects == 0 && op->retries == 0;
    uint16_t slot = op->slot_known ? op->slot : sg_slot_of_key(k->data, k->len);
    struct sg_shardlink *l = sg_router_slot_link(rt, slot, replica_ok);
    if (l == NULL) {
        request_refresh(r->core);
        sg_request_retry_later(op, SLOTGATE__V1__CODE__CODE_CLUSTER_DOWN, "slot not served");
        return;
    }
    request_send(op, l);
}

static void subop_format(struct sg_linkop *lop, struct evbuffer *out)
{
    struct sg_subop *op = SUBOP_OF(lop, lop);
    /* Only prepared requests have sub-ops: their op has an entry. */
    sg_op_of(op->req->rq->op)->format(op, out);
    if (sg_fault_format())
        sg_resp_mark_failed(); /* as if an append had failed */
}

/*
 * What comes back for op after its request was answered, with no follower
 * waiting on it, is only dropped: op is done (which may free the request).
 * 1 in that case.
 */
static int subop_drop_late(struct sg_subop *op)
{
    if (!op->req->answered || op->co.next != NULL)
        return 0;
    if (op->co.role == SG_CO_LEADER)
        coalesce_leave(op);
    subop_done(op);
    return 1;
}

/* What replymap needs to know of op. */
static struct sg_rm_subop subop_rm(const struct sg_subop *op)
{
    const struct sg_request *r = op->req;
    return (struct sg_rm_subop){.op = r->rq->op,
                                .kind = op->kind,
                                .count = op->count,
                                .grouped = r->order != NULL,
                                .script_in_full = op->script_in_full};
}

static void subop_reply(struct sg_linkop *lop, redisReply *reply)
{
    struct sg_subop *op = SUBOP_OF(lop, lop);
    struct sg_request *r = op->req;
    struct sg_core *w = r->core;
    if (subop_drop_late(op)) {
        freeReplyObject(reply);
        SG_STAT_INC(&w->stats, orphaned_replies);
        return;
    }
    struct sg_rm_subop in = subop_rm(op);
    struct sg_rm_result m;
    sg_replymap(&in, reply, &m);
    switch (m.action) {
    case SG_RM_REDIRECT:
        freeReplyObject(reply);
        if (m.stat == SG_RM_STAT_MOVED) {
            SG_STAT_INC(&w->stats, moved);
            request_refresh(w);
        } else {
            SG_STAT_INC(&w->stats, ask);
            op->lop.asking = 1;
        }
        if (++op->redirects > w->cfg->max_redirects) {
            sg_request_settle_error(op, m.code, m.message);
            return;
        }
        request_send(op, sg_router_addr_link(w->router, &m.target));
        return;
    case SG_RM_SCRIPT_RESEND:
        freeReplyObject(reply);
        op->script_in_full = 1;
        sg_request_dispatch(op);
        return;
    case SG_RM_RETRY:
        if (m.stat == SG_RM_STAT_TRYAGAIN)
            SG_STAT_INC(&w->stats, tryagain);
        else
            SG_STAT_INC(&w->stats, clusterdown);
        freeReplyObject(reply);
        if (m.refresh)
            request_refresh(w);
        sg_request_retry_later(op, m.code, m.message);
        return;
    default:
        if (m.error_reply)
            sg_log_debug("Redis error: %.*s", (int)reply->len, reply->str);
        break;
    }
    struct sg_key_outcome o;
    uint32_t delay = 0;
    switch (sg_command_apply(op, reply, &m, &o, &delay)) {
    case SG_APPLY_SETTLE:
        sg_request_settle(op, &o);
        return;
    case SG_APPLY_SETTLED_KEYS:
        sg_request_settle(op, NULL);
        return;
    case SG_APPLY_ERROR:
        sg_request_settle_error(op, o.code, o.message);
        return;
    case SG_APPLY_PARK:
        sg_request_park(op, delay);
        return;
    case SG_APPLY_NEXT_PAGE:
        sg_request_next_page(op, delay);
        return;
    }
}

/*
 * A simple reply read in place by the link: the same reading as
 * subop_reply gives the equivalent hiredis reply (replymap decides; a
 * stack reply stands for it and nothing of it is freed), with data (owned
 * when a bulk) backing the value instead of a reply object.
 */
static void subop_simple(struct sg_linkop *lop, int type, char *data, int64_t n, int borrowed)
{
    struct sg_subop *op = SUBOP_OF(lop, lop);
    struct sg_request *r = op->req;
    struct sg_core *w = r->core;
    char *owned = type == REDIS_REPLY_STRING && !borrowed ? data : NULL;
    if (subop_drop_late(op)) {
        free(owned);
        SG_STAT_INC(&w->stats, orphaned_replies);
        return;
    }
    /* A lent value may be used in place only by the last sub-op of a
     * single-key GET, which is answered (its frame encoded) before this
     * returns; anything that keeps the outcome gets a copy. */
    if (type == REDIS_REPLY_STRING && borrowed &&
        !(r->rq->op == SLOTGATE__V1__OP__OP_GET && r->n_subops == 1 && r->pending == 1)) {
        owned = sg_malloc(n > 0 ? (size_t)n : 1);
        memcpy(owned, data, (size_t)n);
        data = owned;
    }
    redisReply stand_in = {.type = type};
    if (type == REDIS_REPLY_INTEGER) {
        stand_in.integer = n;
    } else if (data != NULL) {
        stand_in.str = data;
        stand_in.len = (size_t)n;
    }
    struct sg_rm_subop in = subop_rm(op);
    struct sg_rm_result m;
    sg_replymap(&in, &stand_in, &m);
    struct sg_key_outcome o;
    sg_command_apply_value(op, &m, owned, &o);
    sg_request_settle(op, &o);
}

/*
 * The link carrying op went away. A read is safe to repeat, so it is sent
 * again (a bounded number of times, within the deadline); a write may or
 * may not have been applied, so the client is told the shard failed.
 */
static void subop_failure(struct sg_linkop *lop, int may_have_run)
{
    struct sg_subop *op = SUBOP_OF(lop, lop);
    struct sg_request *r = op->req;
    if (subop_drop_late(op))
        return;
    int idempotent = (sg_op_flags(r->rq->op) & SG_OPF_READ) || op->kind == SG_SUBOP_SCAN;
    op->lop.asking_pending = 0;
    if ((idempotent || !may_have_run) && op->retries < SG_RETRY_LINK_MAX &&
        sg_now_ms() < r->deadline_ms) {
        op->retries++;
        SG_STAT_INC(&r->core->stats, retries);
        sg_request_dispatch(op);
        return;
    }
    r->last_transient = SLOTGATE__V1__CODE__CODE_SHARD_UNAVAILABLE;
    sg_request_settle_error(op, SLOTGATE__V1__CODE__CODE_SHARD_UNAVAILABLE,
                            idempotent ? "lost the link to the shard"
                                       : "lost the link to the shard; the write may or may "
                                         "not have been applied");
}

/* --- answering ------------------------------------------------------------ */

/*
 * The block the response's value lives in, when the owner may take it
 * (the value of a single-key answer, held in a buffer of the request's own
 * rather than in a hiredis reply): a session sends a large value by
 * reference instead of copying it into the frame.
 */
static uint8_t **value_block(struct sg_request *r, const Slotgate__V1__Response *resp)
{
    if (resp->value.len == 0 || r->out == NULL || r->n_out == 0)
        return NULL;
    struct sg_key_outcome *o = &r->out[0];
    if (o->buf == NULL || o->value != resp->value.data || o->value < o->buf)
        return NULL;
    return &o->buf;
}

static void send_response(struct sg_request *r, Slotgate__V1__Response *resp)
{
    Slotgate__V1__ServerMessage m = SLOTGATE__V1__SERVER_MESSAGE__INIT;
    m.msg_case = SLOTGATE__V1__SERVER_MESSAGE__MSG_RESPONSE;
    m.response = resp;
    r->answered = 1;
    struct sg_stats *st = &r->core->stats;
    if (resp->code >= 200)
        SG_STAT_INC(st, errors);
    SG_STAT_INC(st, responses);
    SG_STAT_DEC(st, inflight);
    sg_stats_request_done(st, r->rq->op, resp->code, sg_stats_clock(st) - r->start_us);
    if (r->owner != NULL) {
        void *owner = r->owner;
        r->owner = NULL;
        r->sink->respond(owner, r, &m, value_block(r, resp));
    }
}

/* The deadline's timer (1) or its place in the worker's lanes (2). */
static void request_disarm(struct sg_request *r)
{
    if (r->deadline_armed == 1)
        event_del(&r->deadline_ev);
    else if (r->deadline_armed == 2)
        sg_deadlines_remove(r->core->deadlines, &r->dl);
    r->deadline_armed = 0;
}

static void request_finish(struct sg_request *r)
{
    Slotgate__V1__Response resp;
    slotgate__v1__response__init(&resp);
    resp.id = r->rq->id;
    request_disarm(r);
    sg_command_respond(r, &resp);
    send_response(r, &resp);
}

/* Answer at once: validation errors and local ops. */
static void request_answer_now(struct sg_request *r, int code, const char *message)
{
    Slotgate__V1__Response resp;
    slotgate__v1__response__init(&resp);
    resp.id = r->rq->id;
    resp.code = code;
    resp.message = (char *)(message ? message : "");
    send_response(r, &resp);
}

/*
 * Deadline: unsettled keys get the transient error seen so far (or
 * TIMEOUT); sub-ops parked for a retry or waiting on a coalescing leader are
 * cancelled; sub-ops still on a link stay there and are dropped later.
 */
static void request_deadline(struct sg_request *r)
{
    r->deadline_armed = 0;
    if (r->answered)
        return;
    int code = r->last_transient ? r->last_transient : SLOTGATE__V1__CODE__CODE_TIMEOUT;
    for (uint32_t i = 0; i < r->n_out; i++) {
        if (r->out[i].code < 0 || r->inval != NULL) {
            r->out[i].code = code;
            r->out[i].message = "deadline passed before the shard answered";
        }
    }
    SG_STAT_INC(&r->core->stats, timeouts);
    request_finish(r);
    for (uint32_t i = 0; i < r->n_subops; i++)
        subop_cancel(&r->subops[i]);
    request_maybe_free(r);
}

static void on_deadline(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    request_deadline(arg);
}

static void on_lane_deadline(struct sg_deadline *d)
{
    request_deadline((struct sg_request *)((char *)d - offsetof(struct sg_request, dl)));
}

/* --- allocation ----------------------------------------------------------- */

#define SG_REQUEST_POOL_MAX 4096

static void *arena_alloc(void *data, size_t size)
{
    struct sg_arena *a = data;
    size_t n = (size + 15) & ~(size_t)15;
    if (a->used + n <= sizeof(a->buf)) {
        void *p = a->buf + a->used;
        a->used += n;
        return p;
    }
    a->overflow++;
    return sg_malloc(size);
}

static void arena_free(void *data, void *p)
{
    struct sg_arena *a = data;
    if ((uint8_t *)p >= a->buf && (uint8_t *)p < a->buf + sizeof(a->buf))
        return;
    free(p);
}

/* A request object from the pool (or new), zeroed as request.h says. */
static struct sg_request *request_get(struct sg_core *w)
{
    struct sg_request *r = w->request_pool;
    if (r != NULL) {
        w->request_pool = r->pool_next;
        w->request_pool_n--;
    } else {
        r = sg_malloc(sizeof(*r));
    }
    /* Zeroed up to sub-op 1's retry event (request.h); the events are
     * assigned before use and the arena's header is set here. */
    memset(r, 0, offsetof(struct sg_request, subop1) + offsetof(struct sg_subop, retry_ev));
    r->core = w;
    r->arena.used = 0;
    r->arena.overflow = 0;
    r->arena.pa.alloc = arena_alloc;
    r->arena.pa.free = arena_free;
    r->arena.pa.allocator_data = &r->arena;
    return r;
}

struct sg_request *sg_request_decode(struct sg_core *w, const uint8_t *body, size_t len)
{
    struct sg_request *r = request_get(w);
    /* The hot requests without protobuf-c (fastpb.h); it declines the rest. */
    r->msg = sg_fastpb_decode_client(body, len, &r->arena.pa);
    if (r->msg == NULL)
        r->msg = sg_frame_decode_client(body, len, &r->arena.pa);
    if (r->msg == NULL) {
        sg_request_discard(r);
        return NULL;
    }
    return r;
}

struct sg_request *sg_request_decode_gap(struct sg_core *w, const uint8_t *body, size_t len,
                                         size_t gap, size_t gap_len)
{
    struct sg_request *r = request_get(w);
    r->msg = sg_fastpb_decode_client_gap(body, len, gap, gap_len, &r->arena.pa);
    const Slotgate__V1__Request *rq = r->msg != NULL ? r->msg->request : NULL;
    if (rq == NULL || rq->op != SLOTGATE__V1__OP__OP_SET || rq->n_keys != 1 || rq->n_values != 1 ||
        rq->values[0].data != NULL) {
        sg_request_discard(r);
        return NULL;
    }
    return r;
}

static void value_tail_free(const void *data, size_t len, void *block)
{
    (void)data;
    (void)len;
    free(block);
}

/* A value is held by reference when its chains hold at least this much
 * each on average (the last two aside). */
#define SG_VALUE_REF_CHAIN 32768

int sg_request_take_value(struct sg_request *r, struct evbuffer *in)
{
    ProtobufCBinaryData *v = &r->msg->request->values[0];
    if (evbuffer_peek(in, (ev_ssize_t)v->len, NULL, NULL, 0) >
        (int)(2 + v->len / SG_VALUE_REF_CHAIN)) {
        /* Many small chains (TLS reads of a record each): held as they
         * are they would take twice the value's size or more until the
         * link has written it, so it is copied once into a block of its
         * size instead, and is a value like any other. */
        uint8_t *block = malloc(v->len);
        if (block == NULL || evbuffer_remove(in, block, v->len) != (int)v->len) {
            free(block);
            return -1;
        }
        sg_request_own(r, block);
        v->data = block;
        return 0;
    }
    /* Chain by chain: a whole one moves; the part of the last one the
     * frame's next bytes share is copied into a block of its own size
     * (evbuffer_remove_buffer would copy it into a new chain sized like the
     * chain before it, 64 KiB for a few hundred bytes). */
    r->value_buf = evbuffer_new();
    if (r->value_buf == NULL)
        return -1;
    size_t left = v->len;
    while (left > 0) {
        struct evbuffer_iovec c[4];
        int n = evbuffer_peek(in, -1, NULL, c, 4), i = 0;
        while (i < n && i < 4 && c[i].iov_len == 0)
            i++; /* an empty chain moves with the next one */
        if (i == n || i == 4)
            return -1;
        if (c[i].iov_len <= left) {
            if (evbuffer_remove_buffer(in, r->value_buf, c[i].iov_len) != (int)c[i].iov_len)
                return -1;
            left -= c[i].iov_len;
            continue;
        }
        uint8_t *tail = malloc(left);
        if (tail == NULL || evbuffer_remove(in, tail, left) != (int)left ||
            evbuffer_add_reference(r->value_buf, tail, left, value_tail_free, tail) != 0) {
            free(tail);
            return -1;
        }
        left = 0;
    }
    return 0;
}

void sg_request_discard(struct sg_request *r)
{
    struct sg_core *w = r->core;
    /* A request discarded unstarted may own a value already (a large SET's,
     * sg_request_take_value), so this is where what it owns goes. */
    for (uint32_t i = 0; i < r->n_allocs; i++)
        free(r->allocs[i]);
    free(r->allocs);
    r->allocs = NULL;
    r->n_allocs = r->cap_allocs = 0;
    if (r->value_buf != NULL) {
        evbuffer_free(r->value_buf);
        r->value_buf = NULL;
    }
    /* Nothing to walk when every piece of the message is in the arena. */
    if (r->arena.overflow > 0)
        sg_frame_free_client(r->msg, &r->arena.pa);
    r->msg = NULL;
    if (w->request_pool_n >= SG_REQUEST_POOL_MAX) {
        free(r);
        return;
    }
    r->pool_next = w->request_pool;
    w->request_pool = r;
    w->request_pool_n++;
}

void sg_request_pool_free(struct sg_core *w)
{
    struct sg_request *r;
    while ((r = w->request_pool) != NULL) {
        w->request_pool = r->pool_next;
        free(r);
    }
    w->request_pool_n = 0;
}

static void request_free(struct sg_request *r)
{
    for (uint32_t i = 0; r->out != NULL && i < r->n_out; i++)
        outcome_release(&r->out[i]);
    if (r->subops != &r->subop1)
        free(r->subops);
    if (r->out != &r->out1)
        free(r->out);
    sg_request_discard(r);
}

static void request_maybe_free(struct sg_request *r)
{
    if (r->answered && r->pending == 0 && r->owner == NULL)
        request_free(r);
}

void sg_request_orphan(struct sg_request *r)
{
    r->owner = NULL;
    if (!r->answered) {
        r->answered = 1;
        SG_STAT_DEC(&r->core->stats, inflight);
        request_disarm(r);
        for (uint32_t i = 0; i < r->n_subops; i++)
            subop_cancel(&r->subops[i]);
    }
    request_maybe_free(r);
}

/* --- starting ------------------------------------------------------------- */

static void request_answer_stats(struct sg_request *r)
{
    Slotgate__V1__Response resp;
    slotgate__v1__response__init(&resp);
    resp.id = r->rq->id;
    sg_stats_response(r->core->all, r->core->n_all, &resp);
    send_response(r, &resp);
    sg_stats_response_free(&resp);
}

static void request_start(struct sg_request *r)
{
    struct sg_core *w = r->core;
    r->rq = r->msg->request;
    SG_STAT_INC(&w->stats, requests);
    SG_STAT_INC(&w->stats, inflight);
    r->start_us = w->stats.clock_us; /* held by sg_request_start: its sub-ops leave now too */

    if (r->rq->op == SLOTGATE__V1__OP__OP_PING) {
        request_answer_now(r, SLOTGATE__V1__CODE__CODE_OK, "PONG");
        request_maybe_free(r);
        return;
    }
    if (r->rq->op == SLOTGATE__V1__OP__OP_STATS) {
        request_answer_stats(r);
        request_maybe_free(r);
        return;
    }
    const char *why = NULL;
    int code = sg_command_prepare(r, &why);
    if (code != 0) {
        request_answer_now(r, code, why);
        request_maybe_free(r);
        return;
    }
    const struct sg_config *cfg = w->cfg;
    uint32_t dl = r->rq->deadline_ms ? r->rq->deadline_ms
                  : r->inval         ? cfg->max_deadline_ms
                                     : cfg->request_deadline_ms;
    if (dl > cfg->max_deadline_ms)
        dl = cfg->max_deadline_ms;
    r->deadline_ms = r->start_us / 1000 + dl; /* CLOCK_MONOTONIC, as sg_now_ms */
    r->dl.fire = on_lane_deadline;
    if (w->deadlines != NULL && sg_deadlines_add(w->deadlines, &r->dl, r->start_us, dl) == 0) {
        r->deadline_armed = 2;
    } else { /* every lane holds another duration: a timer of its own */
        struct timeval tv = {dl / 1000, (dl % 1000) * 1000};
        evtimer_assign(&r->deadline_ev, w->base, on_deadline, r);
        evtimer_add(&r->deadline_ev, &tv);
        r->deadline_armed = 1;
    }
    r->pending = r->n_subops;
    for (uint32_t i = 0; i < r->n_subops; i++)
        r->subops[i].req = r;
    /* Dispatch may settle sub-ops at once (a down link): hold the request
     * open until every sub-op has been handed out. */
    r->pending++;
    for (uint32_t i = 0; i < r->n_subops; i++)
        sg_request_dispatch(&r->subops[i]);
    r->pending--;
    if (r->pending == 0) {
        if (!r->answered)
            request_finish(r);
        request_maybe_free(r);
    }
}

/* The clock reading at arrival (the owner's, for all the requests of one
 * read, or one taken here) serves the sub-ops dispatched here and, for an
 * answer given at once, the answer; then the owner's is put back (the
 * owner may be gone by then, and the request with it: the core is taken
 * first). */
void sg_request_start(struct sg_request *r, const struct sg_request_sink *sink, void *owner)
{
    struct sg_core *w = r->core;
    uint64_t outer = sg_stats_clock_hold(&w->stats);
    r->sink = sink;
    r->owner = owner;
    request_start(r);
    sg_stats_clock_drop(&w->stats, outer);
}
