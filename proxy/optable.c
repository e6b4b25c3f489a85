/*
 * optable - the table of ops, indexed by protocol op number. PING and STATS
 * are answered by the proxy itself and have no entry.
 */
#include "optable.h"

#include <stddef.h>

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
