/*
 * request - fan-out, retries and the single answer of one client request.
 *
 * Life of a request: validated, then one sub-op per key is routed by slot
 * to its shard link. Each sub-op settles exactly once (reply, typed error,
 * or cancellation at the deadline). The response is produced once, when the
 * last sub-op settles or when the deadline fires, whichever is first. The
 * memory is released only when the request is answered AND no sub-op is
 * still queued on a link: a reply that arrives after the deadline (or after
 * the client left) still finds its sub-op, is read, and is dropped.
 */
#include "request.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <event2/buffer.h>

#include "frame.h"
#include "log.h"
#include "resp.h"
#include "session.h"
#include "slot.h"
#include "stats.h"
#include "topology.h"
#include "util.h"
#include "worker.h"

#define SG_MAX_RETRIES 8

static void request_finish(struct sg_request *r);
static void request_maybe_free(struct sg_request *r);

static int op_is_read(int op)
{
    return op == SLOTGATE__V1__OP__OP_GET || op == SLOTGATE__V1__OP__OP_MGET;
}

static int op_is_batch(int op)
{
    return op == SLOTGATE__V1__OP__OP_MGET || op == SLOTGATE__V1__OP__OP_MSET ||
           op == SLOTGATE__V1__OP__OP_MDELETE;
}

/* Record the outcome of one sub-op; the last one completes the request. */
static void subop_settle(struct sg_subop *op, int code, redisReply *reply, const char *message)
{
    struct sg_request *r = op->req;
    if (op->done) {
        if (reply)
            freeReplyObject(reply);
        return;
    }
    op->done = 1;
    if (r->answered) {
        if (reply)
            freeReplyObject(reply);
        SG_STAT_INC(&r->worker->stats, orphaned_replies);
    } else {
        struct sg_key_outcome *o = &r->out[op->index];
        o->code = code;
        o->reply = reply;
        o->message = message;
    }
    r->pending--;
    if (r->pending == 0) {
        if (!r->answered)
            request_finish(r);
        request_maybe_free(r);
    }
}

/* Drop a sub-op parked for a retry; the caller frees the request. */
static void subop_cancel(struct sg_subop *op)
{
    if (!op->parked)
        return;
    event_del(&op->retry_ev);
    op->parked = 0;
    op->done = 1;
    op->req->pending--;
}

static void on_retry(evutil_socket_t fd, short what, void *arg)
{
    struct sg_subop *op = arg;
    op->parked = 0;
    if (op->req->answered) {
        subop_settle(op, SLOTGATE__V1__CODE__CODE_TIMEOUT, NULL, NULL);
        return;
    }
    sg_request_dispatch(op);
}

/*
 * Retry op after a backoff if its deadline leaves room; otherwise settle it
 * with code. Backoff doubles per retry from redis.retry_backoff_ms.
 */
static void subop_retry_later(struct sg_subop *op, int code, const char *message)
{
    struct sg_request *r = op->req;
    uint32_t delay = r->worker->cfg->retry_backoff_ms << (op->retries < 6 ? op->retries : 6);
    r->last_transient = code;
    if (op->retries >= SG_MAX_RETRIES || sg_now_ms() + delay >= r->deadline_ms) {
        subop_settle(op, code, NULL, message);
        return;
    }
    op->retries++;
    SG_STAT_INC(&r->worker->stats, retries);
    struct timeval tv = {delay / 1000, (delay % 1000) * 1000};
    event_assign(&op->retry_ev, r->worker->base, -1, 0, on_retry, op);
    op->parked = 1;
    evtimer_add(&op->retry_ev, &tv);
}

static void subop_send(struct sg_subop *op, struct sg_shardlink *link)
{
    if (sg_shardlink_send(link, op) != 0) {
        sg_topology_request_refresh();
        subop_settle(op, SLOTGATE__V1__CODE__CODE_SHARD_UNAVAILABLE, NULL,
                     "link to the owning shard is down");
    }
}

void sg_request_dispatch(struct sg_subop *op)
{
    struct sg_request *r = op->req;
    struct sg_worker *w = r->worker;
    const ProtobufCBinaryData *k = &r->keys[op->index];
    uint16_t slot = sg_slot_of_key(k->data, k->len);
    const struct sg_addr *master = sg_topology_master_of(w->topo, slot);
    if (master == NULL) {
        sg_topology_request_refresh();
        subop_retry_later(op, SLOTGATE__V1__CODE__CODE_CLUSTER_DOWN, "slot not served");
        return;
    }
    subop_send(op, sg_worker_link(w, master));
}

void sg_request_format(struct sg_subop *op, struct evbuffer *out)
{
    struct sg_request *r = op->req;
    const Slotgate__V1__Request *rq = r->rq;
    const ProtobufCBinaryData *k = &r->keys[op->index];
    switch (rq->op) {
    case SLOTGATE__V1__OP__OP_GET:
    case SLOTGATE__V1__OP__OP_MGET:
        sg_resp_begin(out, 2);
        sg_resp_arg(out, "GET", 3);
        sg_resp_arg(out, k->data, k->len);
        break;
    case SLOTGATE__V1__OP__OP_SET:
    case SLOTGATE__V1__OP__OP_MSET: {
        uint64_t ttl = r->ttl_ms;
        if (rq->op == SLOTGATE__V1__OP__OP_MSET && rq->n_ttls_ms > 0 && rq->ttls_ms[op->index])
            ttl = rq->ttls_ms[op->index];
        int cond = rq->condition == SLOTGATE__V1__CONDITION__COND_NX ||
                   rq->condition == SLOTGATE__V1__CONDITION__COND_XX;
        sg_resp_begin(out, 3 + (ttl ? 2 : 0) + cond);
        sg_resp_arg(out, "SET", 3);
        sg_resp_arg(out, k->data, k->len);
        sg_resp_arg(out, rq->values[op->index].data, rq->values[op->index].len);
        if (ttl) {
            sg_resp_arg(out, "PX", 2);
            sg_resp_arg_u64(out, ttl);
        }
        if (cond)
            sg_resp_arg(out, rq->condition == SLOTGATE__V1__CONDITION__COND_NX ? "NX" : "XX", 2);
        break;
    }
    case SLOTGATE__V1__OP__OP_DELETE:
    case SLOTGATE__V1__OP__OP_MDELETE:
        sg_resp_begin(out, 2);
        sg_resp_arg(out, "UNLINK", 6);
        sg_resp_arg(out, k->data, k->len);
        break;
    case SLOTGATE__V1__OP__OP_EXPIRE:
        sg_resp_begin(out, 3);
        sg_resp_arg(out, "PEXPIRE", 7);
        sg_resp_arg(out, k->data, k->len);
        sg_resp_arg_u64(out, r->ttl_ms);
        break;
    default:
        break;
    }
}

/* Interpret a non-error reply for the request's op. */
static void subop_result(struct sg_subop *op, redisReply *reply)
{
    int o = op->req->rq->op;
    int code = SLOTGATE__V1__CODE__CODE_BACKEND_ERROR;
    switch (o) {
    case SLOTGATE__V1__OP__OP_GET:
    case SLOTGATE__V1__OP__OP_MGET:
        if (reply->type == REDIS_REPLY_STRING)
            code = SLOTGATE__V1__CODE__CODE_OK;
        else if (reply->type == REDIS_REPLY_NIL)
            code = SLOTGATE__V1__CODE__CODE_NOT_FOUND;
        break;
    case SLOTGATE__V1__OP__OP_SET:
    case SLOTGATE__V1__OP__OP_MSET:
        if (reply->type == REDIS_REPLY_STATUS)
            code = SLOTGATE__V1__CODE__CODE_OK;
        else if (reply->type == REDIS_REPLY_NIL)
            code = SLOTGATE__V1__CODE__CODE_NOT_APPLIED;
        break;
    case SLOTGATE__V1__OP__OP_DELETE:
    case SLOTGATE__V1__OP__OP_MDELETE:
    case SLOTGATE__V1__OP__OP_EXPIRE:
        if (reply->type == REDIS_REPLY_INTEGER)
            code = reply->integer > 0 ? SLOTGATE__V1__CODE__CODE_OK
                                      : SLOTGATE__V1__CODE__CODE_NOT_FOUND;
        break;
    }
    if (code == SLOTGATE__V1__CODE__CODE_BACKEND_ERROR) {
        freeReplyObject(reply);
        subop_settle(op, code, NULL, "unexpected reply type from Redis");
        return;
    }
    subop_settle(op, code, reply, NULL);
}

void sg_request_on_reply(struct sg_subop *op, redisReply *reply)
{
    struct sg_request *r = op->req;
    struct sg_worker *w = r->worker;
    if (r->answered) {
        subop_settle(op, 0, reply, NULL);
        return;
    }
    if (reply->type != REDIS_REPLY_ERROR) {
        subop_result(op, reply);
        return;
    }
    struct sg_addr target;
    int kind = sg_resp_classify_error(reply->str, reply->len, &target);
    switch (kind) {
    case SG_RESP_ERR_MOVED:
    case SG_RESP_ERR_ASK:
        freeReplyObject(reply);
        if (kind == SG_RESP_ERR_MOVED) {
            SG_STAT_INC(&w->stats, moved);
            sg_topology_request_refresh();
        } else {
            SG_STAT_INC(&w->stats, ask);
            op->asking = 1;
        }
        if (++op->redirects > w->cfg->max_redirects) {
            subop_settle(op, SLOTGATE__V1__CODE__CODE_BACKEND_ERROR, NULL, "too many redirects");
            return;
        }
        subop_send(op, sg_worker_link(w, &target));
        return;
    case SG_RESP_ERR_TRYAGAIN:
        SG_STAT_INC(&w->stats, tryagain);
        freeReplyObject(reply);
        subop_retry_later(op, SLOTGATE__V1__CODE__CODE_TIMEOUT, "shard busy (TRYAGAIN/LOADING)");
        return;
    case SG_RESP_ERR_CLUSTERDOWN:
        SG_STAT_INC(&w->stats, clusterdown);
        freeReplyObject(reply);
        sg_topology_request_refresh();
        subop_retry_later(op, SLOTGATE__V1__CODE__CODE_CLUSTER_DOWN, "cluster is down");
        return;
    default:
        /* Keep Redis's text: the reply stays owned by the outcome. */
        subop_settle(op, SLOTGATE__V1__CODE__CODE_BACKEND_ERROR, reply, reply->str);
        return;
    }
}

/*
 * The link carrying op went away. A read is safe to repeat, so it is sent
 * again (at most SG_MAX_RETRIES times, within the deadline); a write may
 * or may not have been applied, so the client is told the shard failed.
 */
void sg_request_on_link_failure(struct sg_subop *op, int may_have_run)
{
    struct sg_request *r = op->req;
    if (r->answered) {
        subop_settle(op, 0, NULL, NULL);
        return;
    }
    if ((op_is_read(r->rq->op) || !may_have_run) && op->retries < 2 &&
        sg_now_ms() < r->deadline_ms) {
        op->retries++;
        SG_STAT_INC(&r->worker->stats, retries);
        sg_request_dispatch(op);
        return;
    }
    r->last_transient = SLOTGATE__V1__CODE__CODE_SHARD_UNAVAILABLE;
    subop_settle(op, SLOTGATE__V1__CODE__CODE_SHARD_UNAVAILABLE, NULL,
                 "lost the link to the shard; the write may or may not have been applied");
}

/* --- answering ------------------------------------------------------------ */

static void response_init(Slotgate__V1__Response *resp, const struct sg_request *r)
{
    slotgate__v1__response__init(resp);
    resp->id = r->rq->id;
}

static void send_response(struct sg_request *r, Slotgate__V1__Response *resp)
{
    Slotgate__V1__ServerMessage m = SLOTGATE__V1__SERVER_MESSAGE__INIT;
    m.msg_case = SLOTGATE__V1__SERVER_MESSAGE__MSG_RESPONSE;
    m.response = resp;
    if (resp->code >= 200)
        SG_STAT_INC(&r->worker->stats, errors);
    if (resp->code == SLOTGATE__V1__CODE__CODE_TIMEOUT)
        SG_STAT_INC(&r->worker->stats, timeouts);
    SG_STAT_INC(&r->worker->stats, responses);
    if (r->session != NULL) {
        struct sg_session *s = r->session;
        sg_session_send(s, &m);
        sg_session_request_done(s, r);
    }
}

/* Answer with an error before anything was dispatched. */
static void request_fail_now(struct sg_request *r, int code, const char *message)
{
    Slotgate__V1__Response resp;
    response_init(&resp, r);
    resp.code = code;
    resp.message = (char *)message;
    r->answered = 1;
    send_response(r, &resp);
}

/* Build the response from the per-key outcomes (or the timeout). */
static void request_finish(struct sg_request *r)
{
    Slotgate__V1__Response resp;
    response_init(&resp, r);
    r->answered = 1;
    if (r->deadline_armed) {
        event_del(&r->deadline_ev);
        r->deadline_armed = 0;
    }
    int op = r->rq->op;
    if (!op_is_batch(op)) {
        struct sg_key_outcome *o = &r->out[0];
        resp.code = o->code;
        resp.message = (char *)(o->message ? o->message : "");
        if (o->code == SLOTGATE__V1__CODE__CODE_OK && op == SLOTGATE__V1__OP__OP_GET) {
            resp.value.data = (uint8_t *)o->reply->str;
            resp.value.len = o->reply->len;
        }
        if (op == SLOTGATE__V1__OP__OP_DELETE && o->reply != NULL)
            resp.count = o->reply->integer;
        send_response(r, &resp);
        return;
    }
    Slotgate__V1__KeyResult *res = sg_calloc(r->n_keys, sizeof(*res));
    Slotgate__V1__KeyResult **resp_ptrs = sg_calloc(r->n_keys, sizeof(*resp_ptrs));
    int64_t count = 0;
    for (uint32_t i = 0; i < r->n_keys; i++) {
        struct sg_key_outcome *o = &r->out[i];
        slotgate__v1__key_result__init(&res[i]);
        res[i].code = o->code;
        res[i].message = (char *)(o->message ? o->message : "");
        if (o->code == SLOTGATE__V1__CODE__CODE_OK && op == SLOTGATE__V1__OP__OP_MGET) {
            res[i].value.data = (uint8_t *)o->reply->str;
            res[i].value.len = o->reply->len;
        }
        if (op == SLOTGATE__V1__OP__OP_MDELETE && o->reply != NULL)
            count += o->reply->integer;
        resp_ptrs[i] = &res[i];
    }
    resp.code = SLOTGATE__V1__CODE__CODE_OK;
    resp.n_results = r->n_keys;
    resp.results = resp_ptrs;
    resp.count = count;
    send_response(r, &resp);
    free(resp_ptrs);
    free(res);
}

/*
 * Deadline: unsettled keys get the transient error seen so far (or
 * TIMEOUT); sub-ops parked for a retry are cancelled; sub-ops still on a
 * link stay there and are dropped when their reply comes.
 */
static void on_deadline(evutil_socket_t fd, short what, void *arg)
{
    struct sg_request *r = arg;
    r->deadline_armed = 0;
    if (r->answered)
        return;
    int code = r->last_transient ? r->last_transient : SLOTGATE__V1__CODE__CODE_TIMEOUT;
    for (uint32_t i = 0; i < r->n_keys; i++) {
        if (!r->subops[i].done) {
            r->out[i].code = code;
            r->out[i].message = "deadline passed before the shard answered";
        }
    }
    SG_STAT_INC(&r->worker->stats, timeouts);
    request_finish(r);
    for (uint32_t i = 0; i < r->n_keys; i++)
        subop_cancel(&r->subops[i]);
    request_maybe_free(r);
}

static void request_free(struct sg_request *r)
{
    for (uint32_t i = 0; r->out != NULL && i < r->n_keys; i++)
        if (r->out[i].reply != NULL)
            freeReplyObject(r->out[i].reply);
    if (r->keys != &r->key1 && r->keys != NULL && r->keys != r->rq->keys) {
        free(r->keys[0].data); /* one block holds every prefixed key */
        free(r->keys);
    } else if (r->keys == &r->key1 && r->key1.data != r->rq->keys[0].data) {
        free(r->key1.data);
    }
    if (r->subops != &r->subop1)
        free(r->subops);
    if (r->out != &r->out1)
        free(r->out);
    sg_frame_free_client(r->msg, NULL);
    free(r);
}

static void request_maybe_free(struct sg_request *r)
{
    if (r->answered && r->pending == 0 && r->session == NULL)
        request_free(r);
}

void sg_request_orphan(struct sg_request *r)
{
    r->session = NULL;
    if (!r->answered) {
        r->answered = 1;
        if (r->deadline_armed) {
            event_del(&r->deadline_ev);
            r->deadline_armed = 0;
        }
        for (uint32_t i = 0; i < r->n_keys; i++)
            subop_cancel(&r->subops[i]);
    }
    request_maybe_free(r);
}

/* --- starting ------------------------------------------------------------- */

struct stats_build {
    Slotgate__V1__Response__StatsEntry *entries;
    Slotgate__V1__Response__StatsEntry **ptrs;
    size_t n, cap;
};

static void stats_visit(const char *name, uint64_t value, void *arg)
{
    struct stats_build *b = arg;
    if (b->n == b->cap)
        return;
    Slotgate__V1__Response__StatsEntry *e = &b->entries[b->n];
    slotgate__v1__response__stats_entry__init(e);
    e->key = (char *)name;
    e->value = value;
    b->ptrs[b->n] = e;
    b->n++;
}

static void request_answer_stats(struct sg_request *r)
{
    struct stats_build b = {.cap = 64};
    b.entries = sg_calloc(b.cap, sizeof(*b.entries));
    b.ptrs = sg_calloc(b.cap, sizeof(*b.ptrs));
    sg_stats_collect(r->worker->all, r->worker->n_all, stats_visit, &b);
    Slotgate__V1__Response resp;
    response_init(&resp, r);
    resp.n_stats = b.n;
    resp.stats = b.ptrs;
    r->answered = 1;
    send_response(r, &resp);
    free(b.entries);
    free(b.ptrs);
}

/*
 * Check a request against the protocol's shape and the configured limits.
 * Returns 0, or a code with *why set to a static message.
 */
static int request_validate(struct sg_request *r, const char **why)
{
    const struct sg_config *cfg = r->worker->cfg;
    const Slotgate__V1__Request *rq = r->rq;
    size_t nk = rq->n_keys, nv = rq->n_values;
    switch (rq->op) {
    case SLOTGATE__V1__OP__OP_GET:
    case SLOTGATE__V1__OP__OP_DELETE:
        if (nk != 1)
            return *why = "expects exactly one key", SLOTGATE__V1__CODE__CODE_INVALID_ARGUMENT;
        break;
    case SLOTGATE__V1__OP__OP_SET:
        if (nk != 1 || nv != 1)
            return *why = "SET expects one key and one value",
                   SLOTGATE__V1__CODE__CODE_INVALID_ARGUMENT;
        break;
    case SLOTGATE__V1__OP__OP_EXPIRE:
        if (nk != 1)
            return *why = "expects exactly one key", SLOTGATE__V1__CODE__CODE_INVALID_ARGUMENT;
        if (rq->ttl_ms == 0)
            return *why = "EXPIRE needs ttl_ms > 0", SLOTGATE__V1__CODE__CODE_TTL_OUT_OF_RANGE;
        break;
    case SLOTGATE__V1__OP__OP_MGET:
    case SLOTGATE__V1__OP__OP_MDELETE:
    case SLOTGATE__V1__OP__OP_MSET:
        if (nk == 0)
            return *why = "batch needs at least one key", SLOTGATE__V1__CODE__CODE_INVALID_ARGUMENT;
        if (nk > cfg->max_batch_keys)
            return *why = "more keys than limits.max_batch_keys",
                   SLOTGATE__V1__CODE__CODE_BATCH_TOO_LARGE;
        if (rq->op == SLOTGATE__V1__OP__OP_MSET &&
            (nv != nk || (rq->n_ttls_ms != 0 && rq->n_ttls_ms != nk)))
            return *why = "MSET needs one value (and optionally one TTL) per key",
                   SLOTGATE__V1__CODE__CODE_INVALID_ARGUMENT;
        break;
    default:
        return *why = "unknown or unsupported op", SLOTGATE__V1__CODE__CODE_UNKNOWN_OP;
    }
    r->ks = sg_config_keyspace(cfg, rq->keyspace ? rq->keyspace : "");
    if (r->ks == NULL)
        return *why = "unknown keyspace", SLOTGATE__V1__CODE__CODE_UNKNOWN_KEYSPACE;
    size_t batch_bytes = 0;
    for (size_t i = 0; i < nk; i++) {
        if (rq->keys[i].len == 0)
            return *why = "empty key", SLOTGATE__V1__CODE__CODE_INVALID_KEY;
        if (rq->keys[i].len > cfg->max_key_bytes)
            return *why = "key longer than limits.max_key_bytes",
                   SLOTGATE__V1__CODE__CODE_KEY_TOO_LARGE;
        batch_bytes += rq->keys[i].len;
    }
    uint32_t max_value = r->ks->max_value_bytes ? r->ks->max_value_bytes : cfg->max_value_bytes;
    for (size_t i = 0; i < nv; i++) {
        if (rq->values[i].len > max_value)
            return *why = "value larger than the value size limit",
                   SLOTGATE__V1__CODE__CODE_VALUE_TOO_LARGE;
        batch_bytes += rq->values[i].len;
    }
    if (op_is_batch(rq->op) && batch_bytes > cfg->max_batch_bytes)
        return *why = "batch larger than limits.max_batch_bytes",
               SLOTGATE__V1__CODE__CODE_BATCH_TOO_LARGE;
    r->ttl_ms = rq->ttl_ms ? rq->ttl_ms : r->ks->default_ttl_ms;
    if (rq->op == SLOTGATE__V1__OP__OP_EXPIRE)
        r->ttl_ms = rq->ttl_ms;
    uint64_t max_ttl = r->ks->max_ttl_ms;
    if (max_ttl) {
        if (r->ttl_ms > max_ttl)
            return *why = "TTL above the keyspace's max_ttl_ms",
                   SLOTGATE__V1__CODE__CODE_TTL_OUT_OF_RANGE;
        for (size_t i = 0; i < rq->n_ttls_ms; i++)
            if (rq->ttls_ms[i] > max_ttl)
                return *why = "TTL above the keyspace's max_ttl_ms",
                       SLOTGATE__V1__CODE__CODE_TTL_OUT_OF_RANGE;
    }
    return 0;
}

/* Apply the keyspace prefix: keys point into msg when there is none. */
static void request_build_keys(struct sg_request *r)
{
    const Slotgate__V1__Request *rq = r->rq;
    size_t plen = strlen(r->ks->prefix);
    if (plen == 0) {
        r->keys = rq->keys;
        return;
    }
    size_t total = 0;
    for (size_t i = 0; i < r->n_keys; i++)
        total += plen + rq->keys[i].len;
    uint8_t *block = sg_malloc(total);
    ProtobufCBinaryData *keys = r->n_keys == 1 ? &r->key1 : sg_calloc(r->n_keys, sizeof(*keys));
    uint8_t *p = block;
    for (size_t i = 0; i < r->n_keys; i++) {
        memcpy(p, r->ks->prefix, plen);
        memcpy(p + plen, rq->keys[i].data, rq->keys[i].len);
        keys[i].data = p;
        keys[i].len = plen + rq->keys[i].len;
        p += keys[i].len;
    }
    r->keys = keys;
}

void sg_request_start(struct sg_session *s, Slotgate__V1__ClientMessage *msg)
{
    struct sg_worker *w = s->worker;
    struct sg_request *r = sg_calloc(1, sizeof(*r));
    r->worker = w;
    r->msg = msg;
    r->rq = msg->request;
    r->session = s;
    TAILQ_INSERT_TAIL(&s->requests, r, entry);
    s->inflight++;
    SG_STAT_INC(&w->stats, requests);

    if (r->rq->op == SLOTGATE__V1__OP__OP_PING) {
        r->answered = 1;
        Slotgate__V1__Response resp;
        response_init(&resp, r);
        resp.message = "PONG";
        send_response(r, &resp);
        request_maybe_free(r);
        return;
    }
    if (r->rq->op == SLOTGATE__V1__OP__OP_STATS) {
        request_answer_stats(r);
        request_maybe_free(r);
        return;
    }
    const char *why = NULL;
    int code = request_validate(r, &why);
    if (code != 0) {
        request_fail_now(r, code, why);
        request_maybe_free(r);
        return;
    }
    const struct sg_config *cfg = w->cfg;
    uint32_t dl = r->rq->deadline_ms ? r->rq->deadline_ms : cfg->request_deadline_ms;
    if (dl > cfg->max_deadline_ms)
        dl = cfg->max_deadline_ms;
    r->deadline_ms = sg_now_ms() + dl;
    r->n_keys = (uint32_t)r->rq->n_keys;
    request_build_keys(r);
    if (r->n_keys == 1) {
        r->subops = &r->subop1;
        r->out = &r->out1;
    } else {
        r->subops = sg_calloc(r->n_keys, sizeof(*r->subops));
        r->out = sg_calloc(r->n_keys, sizeof(*r->out));
    }
    struct timeval tv = {dl / 1000, (dl % 1000) * 1000};
    evtimer_assign(&r->deadline_ev, w->base, on_deadline, r);
    evtimer_add(&r->deadline_ev, &tv);
    r->deadline_armed = 1;
    r->pending = r->n_keys;
    for (uint32_t i = 0; i < r->n_keys; i++) {
        r->subops[i].req = r;
        r->subops[i].index = i;
    }
    /* Dispatch may settle sub-ops at once (down link): guard the request
     * until every sub-op has been handed out. */
    r->pending++;
    for (uint32_t i = 0; i < r->n_keys; i++)
        sg_request_dispatch(&r->subops[i]);
    r->pending--;
    if (r->pending == 0) {
        if (!r->answered)
            request_finish(r);
        request_maybe_free(r);
    }
}
