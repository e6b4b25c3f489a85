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
/* One sub-op per key (the preparation of most ops; optable.h). */
void sg_command_subops_per_key(struct sg_request *r);
/*
 * Carry out m, replymap's reading of reply, for every action but redirect
 * and retry (request.c's): restore stored values, count, settle, next
 * INVALIDATE page, lease wait. Takes ownership of reply.
 */
struct sg_rm_result;
void sg_command_apply(struct sg_subop *op, redisReply *reply, const struct sg_rm_result *m);
/* Fill and send the response of an answered request. */
void sg_command_respond(struct sg_request *r, Slotgate__V1__Response *resp);

#endif
