/*
 * command - preparing a request for its op (limits, keyspace policy, full
 * keys, stored values, sub-ops), carrying out what a reply means, and the
 * response. Each op's own description is in the op table (optable.h); how
 * a reply maps to an outcome is replymap.h's. request.c owns the life cycle.
 */
#ifndef SG_COMMAND_H
#define SG_COMMAND_H

#include "request.h"

/*
 * Validate r and prepare it: keyspace, TTL, full keys, stored values, and
 * the sub-ops (r->subops, r->n_subops, r->out, r->n_out). Returns 0, or an
 * error code with *why set to a static message.
 */
int sg_command_prepare(struct sg_request *r, const char **why);
/* What request.c does with a sub-op after sg_command_apply. */
enum sg_apply {
    SG_APPLY_SETTLE,       /* settle it with *out */
    SG_APPLY_SETTLED_KEYS, /* its keys' outcomes are in r->out: settle it with none */
    SG_APPLY_ERROR,        /* settle every key it covers with out->code, out->message */
    SG_APPLY_PARK,         /* send it again after *delay ms, as a retry */
    SG_APPLY_NEXT_PAGE     /* send its next INVALIDATE page after *delay ms */
};

/*
 * Read m, replymap's reading of reply, for every action but redirect and
 * retry (request.c's): restore stored values, count, and decide. Takes
 * ownership of reply (it ends up in *out, in r->out, or freed). Calls
 * nothing in request.c: the caller carries the decision out.
 */
struct sg_rm_result;
enum sg_apply sg_command_apply(struct sg_subop *op, redisReply *reply, const struct sg_rm_result *m,
                               struct sg_key_outcome *out, uint32_t *delay);
/*
 * The same for a simple reply the link read in place (bulk, nil, status,
 * integer; shardlink.h): m is replymap's reading of it, data (owned, may
 * be NULL) holds a bulk's bytes and ends up backing out's value or freed.
 * Always a settle.
 */
void sg_command_apply_value(struct sg_subop *op, const struct sg_rm_result *m, char *data,
                            struct sg_key_outcome *out);
/* Fill and send the response of an answered request. */
void sg_command_respond(struct sg_request *r, Slotgate__V1__Response *resp);

#endif
