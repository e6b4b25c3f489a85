/*
 * ops - what the op families share (ops.h): scripts sent by SHA with the
 * full text as fallback, and the default preparation (a sub-op per key).
 * Below the family files: it calls none of them.
 */
#include "ops.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <string.h>

#include <openssl/sha.h>

#include "util.h"

static pthread_mutex_t sha_lock = PTHREAD_MUTEX_INITIALIZER;

/* The script's SHA1 as Redis names it in its script cache, computed on
 * first use (any worker thread; the flag is read without the lock after). */
static const char *script_sha(struct sg_ops_script *s)
{
    if (atomic_load_explicit(&s->sha_ready, memory_order_acquire))
        return s->sha;
    pthread_mutex_lock(&sha_lock);
    if (!atomic_load_explicit(&s->sha_ready, memory_order_relaxed)) {
        unsigned char md[SHA_DIGEST_LENGTH];
        SHA1((const unsigned char *)s->src, strlen(s->src), md);
        for (int j = 0; j < SHA_DIGEST_LENGTH; j++)
            snprintf(s->sha + 2 * j, 3, "%02x", md[j]);
        atomic_store_explicit(&s->sha_ready, 1, memory_order_release);
    }
    pthread_mutex_unlock(&sha_lock);
    return s->sha;
}

void sg_ops_format_script(const struct sg_subop *op, struct evbuffer *out, struct sg_ops_script *s,
                          int numkeys, int nargs)
{
    const char *sha = script_sha(s);
    sg_resp_begin(out, 3 + nargs);
    if (op->script_in_full) {
        sg_resp_arg(out, "EVAL", 4);
        sg_resp_arg_str(out, s->src);
    } else {
        sg_resp_arg(out, "EVALSHA", 7);
        sg_resp_arg(out, sha, 40);
    }
    sg_resp_arg_u64(out, (uint64_t)numkeys);
}

void sg_ops_subops_per_key(struct sg_request *r)
{
    r->n_subops = r->n_keys;
    r->subops = r->n_keys == 1 ? &r->subop1 : sg_calloc(r->n_keys, sizeof(*r->subops));
    for (uint32_t i = 0; i < r->n_keys; i++) {
        r->subops[i].index = i;
        r->subops[i].count = 1;
    }
}
