/*
 * optable - the table of ops, indexed by protocol op number. PING and STATS
 * are answered by the proxy itself and have no entry.
 */
#include "optable.h"

#include <pthread.h>
#include <stddef.h>
#include <stdio.h>
#include <string.h>

#include <openssl/sha.h>

#include "ops.h"

#define OP(x) SLOTGATE__V1__OP__OP_##x

static const struct sg_op *const TABLE[] = {
    [OP(GET)] = &sg_op_get,
    [OP(SET)] = &sg_op_set,
    [OP(DELETE)] = &sg_op_delete,
    [OP(EXPIRE)] = &sg_op_expire,
    [OP(MGET)] = &sg_op_mget,
    [OP(MSET)] = &sg_op_mset,
    [OP(MDELETE)] = &sg_op_mdelete,
    [OP(INVALIDATE)] = &sg_op_invalidate,
    [OP(GET_OR_LEASE)] = &sg_op_get_or_lease,
    [OP(SET_WITH_LEASE)] = &sg_op_set_with_lease,
    [OP(SET_VERSIONED)] = &sg_op_set_versioned,
    [OP(GET_VERSIONED)] = &sg_op_get_versioned,
};

const struct sg_op *sg_op_of(int op)
{
    if (op < 0 || (size_t)op >= sizeof(TABLE) / sizeof(TABLE[0]))
        return NULL;
    return TABLE[op];
}

static pthread_once_t scripts_once = PTHREAD_ONCE_INIT;

/* SHA1 of every script, as Redis names it in its script cache. */
static void scripts_init(void)
{
    struct sg_ops_script *all[] = {&sg_script_scan_unlink, &sg_script_get_or_lease,
                                   &sg_script_set_with_lease, &sg_script_set_versioned};
    for (size_t i = 0; i < sizeof(all) / sizeof(all[0]); i++) {
        unsigned char md[SHA_DIGEST_LENGTH];
        SHA1((const unsigned char *)all[i]->src, strlen(all[i]->src), md);
        for (int j = 0; j < SHA_DIGEST_LENGTH; j++)
            snprintf(all[i]->sha + 2 * j, 3, "%02x", md[j]);
    }
}

void sg_ops_format_script(const struct sg_subop *op, struct evbuffer *out, struct sg_ops_script *s,
                          int numkeys, int nargs)
{
    pthread_once(&scripts_once, scripts_init);
    sg_resp_begin(out, 3 + nargs);
    if (op->script_in_full) {
        sg_resp_arg(out, "EVAL", 4);
        sg_resp_arg_str(out, s->src);
    } else {
        sg_resp_arg(out, "EVALSHA", 7);
        sg_resp_arg(out, s->sha, 40);
    }
    sg_resp_arg_u64(out, (uint64_t)numkeys);
}
