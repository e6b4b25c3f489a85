/*
 * command - what each protocol op means in Redis: validation against the
 * protocol and the keyspace policy, the stored form of values (envelope),
 * the RESP command each sub-op sends, and how each reply becomes a typed
 * outcome. request.c owns the life cycle; this file owns the semantics.
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
/* Append op's RESP command to out. */
void sg_command_format(struct sg_subop *op, struct evbuffer *out);
/*
 * Carry out m, replymap's reading of reply, for every action but redirect
 * and retry (request.c's): restore stored values, count, settle, next
 * INVALIDATE page, lease wait. Takes ownership of reply.
 */
struct sg_rm_result;
void sg_command_apply(struct sg_subop *op, redisReply *reply, const struct sg_rm_result *m);
/* Fill and send the response of an answered request. */
void sg_command_respond(struct sg_request *r, Slotgate__V1__Response *resp);
/* 1 for ops that only read (safe to resend, may go to replicas). */
int sg_command_is_read(int op);
/* 1 for ops that change keys (they end identical-GET coalescing). */
int sg_command_is_write(int op);

#endif
