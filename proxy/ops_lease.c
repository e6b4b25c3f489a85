/*
 * ops_lease - leases against the thundering herd:
 *
 *   GET_OR_LEASE    EVAL: value, or a lease marker SET NX, or the lease TTL
 *   SET_WITH_LEASE  EVAL: SET only if the key still holds our lease marker
 */
#include "ops.h"

#include <stdio.h>
#include <stdlib.h>

#include <openssl/rand.h>

#include "envelope.h"
#include "util.h"

#define SG_LEASE_TTL_MS 10000
#define SG_LEASE_TOKEN_BYTES 16

/* ARGV: lease marker, lease ttl, marker header. {0,v} hit, {1} granted,
 * {2,pttl} someone else holds the lease. */
struct sg_ops_script sg_script_get_or_lease = {
    .src = "local v = redis.call('GET', KEYS[1]) "
           "if not v then redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2]) return {1} end "
           "if string.sub(v, 1, 5) == ARGV[3] then return {2, redis.call('PTTL', KEYS[1])} end "
           "return {0, v}"};

/* ARGV: our lease marker, stored value, ttl (0 = none). */
struct sg_ops_script sg_script_set_with_lease = {
    .src = "if redis.call('GET', KEYS[1]) ~= ARGV[1] then return 0 end "
           "if ARGV[3] ~= '0' then redis.call('SET', KEYS[1], ARGV[2], 'PX', ARGV[3]) "
           "else redis.call('SET', KEYS[1], ARGV[2]) end "
           "return 1"};

static const uint8_t LEASE_HEADER[SG_ENV_HEADER] = {SG_ENV_MAGIC0, SG_ENV_MAGIC1, SG_ENV_MAGIC2,
                                                    SG_ENV_VERSION, SG_ENV_LEASE};

static int shape_set_with_lease(const Slotgate__V1__Request *rq, uint32_t max_batch,
                                const char **why)
{
    (void)max_batch;
    if (rq->n_keys != 1 || rq->n_values != 1 || rq->lease.len == 0)
        return *why = "expects one key, one value and the lease", SG_INVALID_ARGUMENT;
    return 0;
}

static void format_get_or_lease(struct sg_subop *op, struct evbuffer *out)
{
    struct sg_request *r = op->req;
    sg_ops_format_script(op, out, &sg_script_get_or_lease, 1, 4);
    sg_ops_arg_bin(out, sg_ops_key(op, 0));
    sg_ops_arg_bin(out, &r->marker);
    sg_resp_arg_u64(out, r->rq->ttl_ms ? r->rq->ttl_ms : SG_LEASE_TTL_MS);
    sg_resp_arg(out, LEASE_HEADER, sizeof(LEASE_HEADER));
}

static void format_set_with_lease(struct sg_subop *op, struct evbuffer *out)
{
    struct sg_request *r = op->req;
    sg_ops_format_script(op, out, &sg_script_set_with_lease, 1, 4);
    sg_ops_arg_bin(out, sg_ops_key(op, 0));
    sg_ops_arg_bin(out, &r->marker);
    sg_ops_arg_value(out, &r->values[0]);
    sg_resp_arg_u64(out, r->ttl_ms);
}

/* {0, value} hit, {1} granted, {2, pttl} someone else holds the lease. */
static void map_get_or_lease(const struct sg_rm_subop *in, const redisReply *reply,
                             struct sg_rm_result *m)
{
    (void)in;
    if (reply->type != REDIS_REPLY_ARRAY || reply->elements < 1 ||
        reply->element[0]->type != REDIS_REPLY_INTEGER)
        return;
    long long kind = reply->element[0]->integer;
    if (kind == 0 && reply->elements == 2 && reply->element[1]->type == REDIS_REPLY_STRING) {
        sg_rm_value(m, reply->element[1]->str, reply->element[1]->len);
        return;
    }
    if (kind == 1) {
        m->stat = SG_RM_STAT_LEASE_GRANT;
        sg_rm_settle(m, SG_C(LEASE_GRANTED), NULL);
        return;
    }
    if (kind == 2 && reply->elements == 2) {
        long long pttl =
            reply->element[1]->type == REDIS_REPLY_INTEGER ? reply->element[1]->integer : 0;
        m->action = SG_RM_LEASE_WAIT;
        m->code = SG_C(LEASE_WAIT);
        m->message = "another caller holds the lease";
        m->retry_after_ms = (uint32_t)(pttl > 0 && pttl < 100 ? pttl : 100);
    }
}

/* 1 stored, 0 the lease expired or is someone else's. */
static void map_set_with_lease(const struct sg_rm_subop *in, const redisReply *reply,
                               struct sg_rm_result *m)
{
    (void)in;
    if (reply->type != REDIS_REPLY_INTEGER)
        return;
    if (reply->integer == 1) {
        m->stat = SG_RM_STAT_SETS;
        sg_rm_settle(m, SG_C(OK), NULL);
    } else {
        m->stat = SG_RM_STAT_LEASE_REJECT;
        sg_rm_settle(m, SG_C(LEASE_INVALID), "the lease expired or belongs to another caller");
    }
}

static void build_lease(struct sg_request *r)
{
    uint8_t token[SG_LEASE_TOKEN_BYTES];
    char *hex = sg_malloc(SG_LEASE_TOKEN_BYTES * 2 + 1);
    sg_request_own(r, hex);
    if (RAND_bytes(token, sizeof(token)) != 1)
        abort();
    for (int i = 0; i < SG_LEASE_TOKEN_BYTES; i++)
        snprintf(hex + 2 * i, 3, "%02x", token[i]);
    r->lease.data = (uint8_t *)hex;
    r->lease.len = SG_LEASE_TOKEN_BYTES * 2;
}

/* The lease marker as stored in Redis, for the token tok. */
static void build_marker(struct sg_request *r, const ProtobufCBinaryData *tok)
{
    uint8_t *m;
    r->marker.len = sg_envelope_lease(tok->data, tok->len, &m);
    r->marker.data = m;
    sg_request_own(r, m);
}

/* A fresh token for the lease this request may be granted. */
static int prepare_get_or_lease(struct sg_request *r, const char **why)
{
    (void)why;
    build_lease(r);
    build_marker(r, &r->lease);
    sg_ops_subops_per_key(r);
    return 0;
}

static int prepare_set_with_lease(struct sg_request *r, const char **why)
{
    (void)why;
    build_marker(r, &r->rq->lease);
    sg_ops_subops_per_key(r);
    return 0;
}

const struct sg_op sg_op_get_or_lease = {"GET_OR_LEASE",       SG_OPF_WRITE | SG_OPF_SCRIPT,
                                         sg_ops_shape_one_key, format_get_or_lease,
                                         map_get_or_lease,     prepare_get_or_lease};
const struct sg_op sg_op_set_with_lease = {"SET_WITH_LEASE",     SG_OPF_WRITE | SG_OPF_SCRIPT,
                                           shape_set_with_lease, format_set_with_lease,
                                           map_set_with_lease,   prepare_set_with_lease};
