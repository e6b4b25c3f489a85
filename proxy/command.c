/*
 * command - what the ops share around the op table (optable.h, ops_*.c):
 * validation against the limits and the keyspace policy, full keys, the
 * stored form of values (envelope), the sub-ops of a request (per key, per
 * MGET slot, per INVALIDATE master), carrying out replymap's reading of a
 * reply, and the response.
 *
 * Values are stored in the envelope format (envelope.h): compressed per
 * the keyspace's policy, and always restored exactly on the way out.
 */
#include "command.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <event2/buffer.h>

#include "coalesce.h"
#include "envelope.h"
#include "ops.h"
#include "optable.h"
#include "replymap.h"
#include "resp.h"
#include "slot.h"
#include "stats.h"
#include "core.h"
#include "util.h"

static struct sg_ks_stats *ks_stats(struct sg_request *r)
{
    return &r->core->stats.ks[r->ks_index];
}

/* --- preparation ----------------------------------------------------------- */

/* Sizes and TTLs against the limits and the keyspace policy. */
static int check_limits(struct sg_request *r, const char **why)
{
    const struct sg_config *cfg = r->core->cfg;
    const Slotgate__V1__Request *rq = r->rq;
    size_t batch_bytes = 0;
    for (size_t i = 0; i < rq->n_keys; i++) {
        if (rq->keys[i].len == 0)
            return *why = "empty key", SLOTGATE__V1__CODE__CODE_INVALID_KEY;
        if (rq->keys[i].len > cfg->max_key_bytes)
            return *why = "key longer than limits.max_key_bytes",
                   SLOTGATE__V1__CODE__CODE_KEY_TOO_LARGE;
        batch_bytes += rq->keys[i].len;
    }
    if (rq->pattern.len > cfg->max_key_bytes)
        return *why = "pattern longer than limits.max_key_bytes",
               SLOTGATE__V1__CODE__CODE_KEY_TOO_LARGE;
    uint32_t max_value = r->ks->max_value_bytes ? r->ks->max_value_bytes : cfg->max_value_bytes;
    for (size_t i = 0; i < rq->n_values; i++) {
        if (rq->values[i].len > max_value)
            return *why = "value larger than the value size limit",
                   SLOTGATE__V1__CODE__CODE_VALUE_TOO_LARGE;
        batch_bytes += rq->values[i].len;
    }
    if (rq->n_keys > 1 && batch_bytes > cfg->max_batch_bytes)
        return *why = "batch larger than limits.max_batch_bytes",
               SLOTGATE__V1__CODE__CODE_BATCH_TOO_LARGE;
    if (rq->op == SLOTGATE__V1__OP__OP_EXPIRE)
        r->ttl_ms = rq->ttl_ms;
    else if (rq->op != SLOTGATE__V1__OP__OP_GET_OR_LEASE)
        r->ttl_ms = rq->ttl_ms ? rq->ttl_ms : r->ks->default_ttl_ms;
    uint64_t max_ttl = r->ks->max_ttl_ms;
    if (max_ttl && (sg_op_flags(rq->op) & SG_OPF_WRITE) &&
        rq->op != SLOTGATE__V1__OP__OP_GET_OR_LEASE) {
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

/* Full keys: the keyspace prefix, then the client's key. */
static void build_keys(struct sg_request *r)
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
    sg_request_own(r, block);
    ProtobufCBinaryData *keys = &r->key1;
    if (r->n_keys > 1) {
        keys = sg_calloc(r->n_keys, sizeof(*keys));
        sg_request_own(r, keys);
    }
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

/* Stored form of every value, per the keyspace's compression policy. */
static void build_values(struct sg_request *r)
{
    const Slotgate__V1__Request *rq = r->rq;
    if (rq->n_values == 0)
        return;
    int compress = r->ks->compression == SG_COMPRESS_ALWAYS ? SG_ENV_ALWAYS_TRY
                   : r->ks->compression == SG_COMPRESS_AUTO ? SG_ENV_AUTO
                                                            : SG_ENV_NO_COMPRESS;
    int versioned = rq->op == SLOTGATE__V1__OP__OP_SET_VERSIONED;
    ProtobufCBinaryData *vals = &r->value1;
    if (rq->n_values > 1) {
        vals = sg_calloc(rq->n_values, sizeof(*vals));
        sg_request_own(r, vals);
    }
    struct sg_ks_stats *st = ks_stats(r);
    if (r->value_buf != NULL) {
        /* A large SET value held by reference (request.h): sent as it is
         * when its stored form is its bytes (no compression tried, no
         * header, no magic to escape), else made contiguous for the
         * envelope. */
        size_t len = rq->values[0].len;
        uint8_t head[3] = {0, 0, 0};
        evbuffer_copyout(r->value_buf, head, sizeof(head));
        if (compress != SG_ENV_ALWAYS_TRY &&
            (compress != SG_ENV_AUTO || len < r->ks->compress_threshold) && !versioned &&
            !sg_envelope_has_magic(head, len)) {
            r->value1 = rq->values[0];
            r->values = &r->value1;
            r->value_by_ref = 1;
            SG_STAT_ADD(st, bytes_raw, len);
            SG_STAT_ADD(st, bytes_stored, len);
            return;
        }
        uint8_t *block = sg_malloc(len);
        evbuffer_copyout(r->value_buf, block, len);
        sg_request_own(r, block);
        r->rq->values[0].data = block;
    }
    for (size_t i = 0; i < rq->n_values; i++) {
        const uint8_t *out;
        int owned = 0;
        size_t n =
            sg_envelope_encode(rq->values[i].data, rq->values[i].len, compress,
                               r->ks->compress_threshold, versioned, rq->version + 1, &out, &owned);
        if (owned)
            sg_request_own(r, (void *)out);
        vals[i].data = (uint8_t *)out;
        vals[i].len = n;
        SG_STAT_ADD(st, bytes_raw, rq->values[i].len);
        SG_STAT_ADD(st, bytes_stored, n);
    }
    r->values = vals;
}

int sg_command_prepare(struct sg_request *r, const char **why)
{
    const struct sg_config *cfg = r->core->cfg;
    const Slotgate__V1__Request *rq = r->rq;
    const struct sg_op *desc = sg_op_of(rq->op);
    if (desc == NULL)
        return *why = "unknown op", SLOTGATE__V1__CODE__CODE_UNKNOWN_OP;
    int code = desc->check_shape(rq, cfg->max_batch_keys, why);
    if (code != 0)
        return code;
    r->ks = sg_config_keyspace(cfg, rq->keyspace ? rq->keyspace : "");
    if (r->ks == NULL)
        return *why = "unknown keyspace", SLOTGATE__V1__CODE__CODE_UNKNOWN_KEYSPACE;
    r->ks_index = sg_stats_keyspace_slot(&r->core->stats, r->ks); /* counters by name */
    code = check_limits(r, why);
    if (code != 0)
        return code;
    r->n_keys = (uint32_t)rq->n_keys;
    build_keys(r);
    build_values(r);
    if (r->n_keys > 0) {
        r->n_out = r->n_keys;
        r->out = r->n_keys == 1 ? &r->out1 : sg_calloc(r->n_keys, sizeof(*r->out));
        for (uint32_t i = 0; i < r->n_out; i++)
            r->out[i].code = -1;
    }
    if (desc->prepare != NULL)
        return desc->prepare(r, why);
    sg_ops_subops_per_key(r);
    return 0;
}

/* --- replies ---------------------------------------------------------------- */

/*
 * Turn a stored value into an outcome: restore the envelope; a lease
 * marker reads as a miss; a corrupt envelope is a typed error.
 */
static void decode_value(struct sg_request *r, const char *data, size_t len,
                         struct sg_key_outcome *o)
{
    const struct sg_config *cfg = r->core->cfg;
    size_t max = r->ks->max_value_bytes ? r->ks->max_value_bytes : cfg->max_value_bytes;
    struct sg_env_decoded d;
    int rc = sg_envelope_decode((const uint8_t *)data, len, max, &d);
    struct sg_ks_stats *st = ks_stats(r);
    if (rc != SG_ENV_OK) {
        SG_STAT_INC(st, corrupt_values);
        o->code = SLOTGATE__V1__CODE__CODE_CORRUPT_VALUE;
        o->message = rc == SG_ENV_TOO_LARGE ? "stored value decompresses beyond the size limit"
                                            : "stored value has a corrupt envelope";
        return;
    }
    if (d.flags & SG_ENV_LEASE) {
        SG_STAT_INC(st, misses);
        o->code = SLOTGATE__V1__CODE__CODE_NOT_FOUND;
        return;
    }
    SG_STAT_INC(st, hits);
    o->code = SLOTGATE__V1__CODE__CODE_OK;
    o->value = d.value;
    o->value_len = d.len;
    o->buf = d.buf;
    o->version = d.version;
}

/* Counters of the keyspace for what replymap saw (decode counts its own). */
static void count_reply(struct sg_request *r, int stat)
{
    struct sg_ks_stats *st = ks_stats(r);
    switch (stat) {
    case SG_RM_STAT_SETS:
        SG_STAT_INC(st, sets);
        break;
    case SG_RM_STAT_MISS:
        SG_STAT_INC(st, misses);
        break;
    case SG_RM_STAT_LEASE_GRANT:
        SG_STAT_INC(st, misses);
        SG_STAT_INC(st, lease_grants);
        break;
    case SG_RM_STAT_LEASE_REJECT:
        SG_STAT_INC(st, lease_rejects);
        break;
    case SG_RM_STAT_VERSION_CONFLICT:
        SG_STAT_INC(st, version_conflicts);
        break;
    default:
        break;
    }
}

/* The outcome of one MGET key from its array element. */
static void mget_element(struct sg_request *r, const redisReply *e, struct sg_key_outcome *o)
{
    if (e->type == REDIS_REPLY_STRING) {
        decode_value(r, e->str, e->len, o);
    } else {
        SG_STAT_INC(ks_stats(r), misses);
        o->code = SLOTGATE__V1__CODE__CODE_NOT_FOUND;
    }
}

static enum sg_apply apply_mget(struct sg_subop *op, redisReply *reply, struct sg_key_outcome *out)
{
    struct sg_request *r = op->req;
    (void)out; /* a sub-op of one key is a GET (ops_batch.c): only groups come here */
    if (r->answered) {
        freeReplyObject(reply);
        return SG_APPLY_SETTLED_KEYS;
    }
    for (uint32_t j = 0; j < op->count; j++) {
        struct sg_key_outcome *o = &r->out[sg_request_key_of(r, op, j)];
        memset(o, 0, sizeof(*o));
        mget_element(r, reply->element[j], o);
    }
    /* The array backs every value that was not decompressed. */
    r->out[sg_request_key_of(r, op, 0)].reply = reply;
    return SG_APPLY_SETTLED_KEYS;
}

/* One INVALIDATE page came back: count it, then the next page or done. */
static enum sg_apply apply_page(struct sg_subop *op, redisReply *reply,
                                const struct sg_rm_result *m, struct sg_key_outcome *out,
                                uint32_t *delay)
{
    struct sg_request *r = op->req;
    struct sg_inval_shard *sh = &r->inval[op->index];
    freeReplyObject(reply);
    memcpy(sh->cursor, m->cursor, sizeof(sh->cursor));
    SG_STAT_ADD(ks_stats(r), invalidated, (uint64_t)m->count);
    if (!r->answered)
        r->out[0].count += m->count;
    if (m->action != SG_RM_NEXT_PAGE || r->answered) {
        *out = (struct sg_key_outcome){.code = SLOTGATE__V1__CODE__CODE_OK};
        return SG_APPLY_SETTLE;
    }
    /* Next page after a short pause: the sub-op stays outstanding, and the
     * master serves other traffic between pages instead of back to back. */
    *delay = r->core->cfg->invalidate_pause_ms;
    return SG_APPLY_NEXT_PAGE;
}

/*
 * Someone else is filling the key: wait (bounded by the deadline) by
 * polling with backoff; past it, hand out a hint.
 */
static enum sg_apply apply_lease_wait(struct sg_subop *op, redisReply *reply,
                                      const struct sg_rm_result *m, struct sg_key_outcome *out,
                                      uint32_t *delay)
{
    struct sg_request *r = op->req;
    freeReplyObject(reply);
    SG_STAT_INC(ks_stats(r), lease_waits);
    op->redirects = 0;
    *delay = sg_backoff_ms(r->core->cfg->retry_backoff_ms, op->retries);
    if (!r->answered &&
        sg_retry_fits(op->retries, SG_RETRY_LEASE_MAX, sg_now_ms(), *delay, r->deadline_ms)) {
        /* Decided here, once: a second check against a later clock could
         * settle it with no hint. The deadline firing while parked answers
         * LEASE_WAIT with hint 0 and the deadline message (on_deadline). */
        r->last_transient = m->code;
        return SG_APPLY_PARK;
    }
    *out = (struct sg_key_outcome){
        .code = m->code, .message = m->message, .retry_after_ms = m->retry_after_ms};
    return SG_APPLY_SETTLE;
}

enum sg_apply sg_command_apply(struct sg_subop *op, redisReply *reply, const struct sg_rm_result *m,
                               struct sg_key_outcome *out, uint32_t *delay)
{
    struct sg_request *r = op->req;
    count_reply(r, m->stat);
    if (op->kind == SG_SUBOP_SCAN && m->cursor[0] != '\0')
        return apply_page(op, reply, m, out, delay);
    switch (m->action) {
    case SG_RM_SETTLE_MGET:
        return apply_mget(op, reply, out);
    case SG_RM_LEASE_WAIT:
        return apply_lease_wait(op, reply, m, out, delay);
    default:
        break;
    }
    if (m->decode) {
        *out = (struct sg_key_outcome){.code = SLOTGATE__V1__CODE__CODE_OK};
        decode_value(r, m->value, m->value_len, out);
        out->reply = reply;
        return SG_APPLY_SETTLE;
    }
    if (op->count > 1) {
        freeReplyObject(reply);
        *out = (struct sg_key_outcome){.code = m->code, .message = m->message};
        return SG_APPLY_ERROR;
    }
    *out = (struct sg_key_outcome){.code = m->code,
                                   .message = m->message,
                                   .count = m->count,
                                   .version = m->version,
                                   .retry_after_ms = m->retry_after_ms};
    if (m->keep_reply)
        out->reply = reply;
    else
        freeReplyObject(reply);
    return SG_APPLY_SETTLE;
}

void sg_command_apply_value(struct sg_subop *op, const struct sg_rm_result *m, char *data,
                            struct sg_key_outcome *out)
{
    struct sg_request *r = op->req;
    count_reply(r, m->stat);
    if (m->decode) {
        *out = (struct sg_key_outcome){.code = SLOTGATE__V1__CODE__CODE_OK};
        decode_value(r, m->value, m->value_len, out);
        if (out->buf == NULL && out->value != NULL)
            out->buf = (uint8_t *)data; /* the value points into it */
        else
            free(data);
        return;
    }
    free(data);
    /* Nothing of the reply is kept: a message from it (keep_reply) would
     * be Redis's error text, and errors never come this way. */
    *out = (struct sg_key_outcome){.code = m->code,
                                   .message =
                                       m->keep_reply ? "unexpected reply from Redis" : m->message,
                                   .count = m->count,
                                   .version = m->version,
                                   .retry_after_ms = m->retry_after_ms};
}

/* --- the response ------------------------------------------------------------ */

void sg_command_respond(struct sg_request *r, Slotgate__V1__Response *resp)
{
    int op = r->rq->op;
    int batch = (sg_op_flags(op) & SG_OPF_BATCH) != 0;
    if (!batch) {
        struct sg_key_outcome *o = &r->out[0];
        resp->code = o->code;
        resp->message = (char *)(o->message ? o->message : "");
        if (o->code == SLOTGATE__V1__CODE__CODE_OK && o->value != NULL) {
            resp->value.data = (uint8_t *)o->value;
            resp->value.len = o->value_len;
        }
        resp->count = o->count;
        resp->version = o->version;
        resp->retry_after_ms = o->retry_after_ms;
        if (o->code == SLOTGATE__V1__CODE__CODE_LEASE_GRANTED) {
            resp->lease = r->lease;
        }
        return;
    }
    /* Batch: per-key results in the client's key order. The arrays are
     * released right after the response is encoded (request_finish). */
    Slotgate__V1__KeyResult *res = sg_calloc(r->n_keys, sizeof(*res));
    Slotgate__V1__KeyResult **ptrs = sg_calloc(r->n_keys, sizeof(*ptrs));
    sg_request_own(r, res);
    sg_request_own(r, ptrs);
    int64_t count = 0;
    for (uint32_t i = 0; i < r->n_keys; i++) {
        struct sg_key_outcome *o = &r->out[i];
        slotgate__v1__key_result__init(&res[i]);
        res[i].code = o->code;
        res[i].message = (char *)(o->message ? o->message : "");
        if (o->code == SLOTGATE__V1__CODE__CODE_OK && o->value != NULL) {
            res[i].value.data = (uint8_t *)o->value;
            res[i].value.len = o->value_len;
        }
        count += o->count;
        ptrs[i] = &res[i];
    }
    resp->code = SLOTGATE__V1__CODE__CODE_OK;
    resp->message = "";
    resp->n_results = r->n_keys;
    resp->results = ptrs;
    resp->count = count;
}
