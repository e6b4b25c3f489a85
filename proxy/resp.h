/*
 * resp - the RESP side of the shard link: appending commands to an output
 * evbuffer without intermediate strings, reading error replies (MOVED, ASK,
 * TRYAGAIN, ...), and a small blocking client (plain or TLS) used only off
 * the data path, by the topology manager.
 */
#ifndef SG_RESP_H
#define SG_RESP_H

#include <stddef.h>
#include <stdint.h>

#include <hiredis/hiredis.h>

#include "config.h"

struct evbuffer;
struct ssl_ctx_st;

/* Append "*argc\r\n" then each argument as a bulk string. */
void sg_resp_begin(struct evbuffer *out, int argc);
void sg_resp_arg(struct evbuffer *out, const void *p, size_t len);
void sg_resp_arg_str(struct evbuffer *out, const char *s);
/*
 * Same as sg_resp_arg, but large payloads are added by reference, not
 * copied: p must stay valid until the buffer has been written or freed.
 */
void sg_resp_arg_ref(struct evbuffer *out, const void *p, size_t len);
void sg_resp_arg_u64(struct evbuffer *out, uint64_t v);

enum sg_resp_err {
    SG_RESP_ERR_OTHER = 0,
    SG_RESP_ERR_MOVED,
    SG_RESP_ERR_ASK,
    SG_RESP_ERR_TRYAGAIN, /* TRYAGAIN, LOADING, MASTERDOWN, BUSY */
    SG_RESP_ERR_CLUSTERDOWN
};

/* Classify an error reply; for MOVED/ASK fill addr with the target. */
int sg_resp_classify_error(const char *str, size_t len, struct sg_addr *addr);

/* Blocking connection for the topology manager (never on a worker). */
struct sg_resp_conn;
struct sg_resp_conn *sg_resp_connect(const struct sg_addr *addr, struct ssl_ctx_st *tls,
                                     int timeout_ms, char *err, size_t errlen);
void sg_resp_conn_free(struct sg_resp_conn *c);
/* Send argv and wait for the reply (caller frees with freeReplyObject). */
redisReply *sg_resp_command(struct sg_resp_conn *c, int argc, const char **argv, const size_t *lens,
                            char *err, size_t errlen);

#endif
