/*
 * ops_versioned - optimistic concurrency on a version kept in the envelope:
 *
 *   SET_VERSIONED  EVAL: SET only if the stored version equals the expected
 *   GET_VERSIONED  GET, with the version read from the envelope
 */
#include "ops.h"

#include "envelope.h"

/*
 * ARGV: expected version (8 bytes BE), stored value, ttl (0 = none), then
 * the envelope's layout from envelope.h (its magic and format version, and
 * the versioned flag bit), so the script holds no copy of it. The flags
 * byte follows the magic; the 8-byte version follows the flags.
 * {1,cur} applied, {0,cur} conflict; cur is the 8-byte stored version.
 */
struct sg_ops_script sg_script_set_versioned = {
    .src = "local v = redis.call('GET', KEYS[1]) "
           "local h = string.len(ARGV[4]) + 1 "
           "local f = tonumber(ARGV[5]) "
           "local cur = '\\0\\0\\0\\0\\0\\0\\0\\0' "
           "if v and string.len(v) >= h + 8 and string.sub(v, 1, h - 1) == ARGV[4] "
           "and bit.band(string.byte(v, h), f) == f then cur = string.sub(v, h + 1, h + 8) end "
           "if cur ~= ARGV[1] then return {0, cur} end "
           "if ARGV[3] ~= '0' then redis.call('SET', KEYS[1], ARGV[2], 'PX', ARGV[3]) "
           "else redis.call('SET', KEYS[1], ARGV[2]) end "
           "return {1, cur}"};

/* The envelope's magic and format version: the header up to its flags byte. */
static const uint8_t ENV_MAGIC[SG_ENV_HEADER - 1] = {SG_ENV_MAGIC0, SG_ENV_MAGIC1, SG_ENV_MAGIC2,
                                                     SG_ENV_VERSION};

static void format_set_versioned(struct sg_subop *op, struct evbuffer *out)
{
    struct sg_request *r = op->req;
    uint8_t expected[8];
    for (int i = 0; i < 8; i++)
        expected[i] = (uint8_t)(r->rq->version >> (56 - 8 * i));
    sg_ops_format_script(op, out, &sg_script_set_versioned, 1, 6);
    sg_ops_arg_bin(out, sg_ops_key(op, 0));
    sg_resp_arg(out, expected, 8);
    sg_ops_arg_value(out, &r->values[0]);
    sg_resp_arg_u64(out, r->ttl_ms);
    sg_resp_arg(out, ENV_MAGIC, sizeof(ENV_MAGIC));
    sg_resp_arg_u64(out, SG_ENV_VERSIONED);
}

/* {1, cur} applied (the new version is cur + 1), {0, cur} conflict. */
static void map_set_versioned(const struct sg_rm_subop *in, const redisReply *reply,
                              struct sg_rm_result *m)
{
    (void)in;
    if (reply->type != REDIS_REPLY_ARRAY || reply->elements != 2 ||
        reply->element[0]->type != REDIS_REPLY_INTEGER ||
        reply->element[1]->type != REDIS_REPLY_STRING || reply->element[1]->len != 8)
        return;
    const uint8_t *p = (const uint8_t *)reply->element[1]->str;
    uint64_t cur = 0;
    for (int i = 0; i < 8; i++)
        cur = (cur << 8) | p[i];
    if (reply->element[0]->integer == 1) {
        m->stat = SG_RM_STAT_SETS;
        sg_rm_settle(m, SG_C(OK), NULL);
        m->version = cur + 1;
    } else {
        m->stat = SG_RM_STAT_VERSION_CONFLICT;
        sg_rm_settle(m, SG_C(VERSION_CONFLICT), "the stored version differs from the expected one");
        m->version = cur;
    }
}

const struct sg_op sg_op_set_versioned = {"SET_VERSIONED",        SG_OPF_WRITE | SG_OPF_SCRIPT,
                                          sg_ops_shape_key_value, format_set_versioned,
                                          map_set_versioned,      NULL};
const struct sg_op sg_op_get_versioned = {"GET_VERSIONED",   SG_OPF_READ,    sg_ops_shape_one_key,
                                          sg_ops_format_get, sg_ops_map_get, NULL};
