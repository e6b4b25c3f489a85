/*
 * snapshot - the reloadable configuration as one immutable, reference-
 * counted object, and the process-wide current one.
 */
#ifndef SG_SNAPSHOT_H
#define SG_SNAPSHOT_H

#include <stdatomic.h>
#include <stdint.h>

#include <openssl/ssl.h>

#include "config.h"

/*
 * The reloadable configuration as one immutable, reference-counted object:
 * the validated config (keyspace table included) and the server TLS
 * context built from it. main builds one at start and one per accepted
 * SIGHUP, publishes it (sg_snapshot_publish) and posts it to every worker,
 * which swaps to it between two events of its loop. Nothing in it changes
 * after sg_snapshot_new; the last sg_snapshot_unref frees it and its TLS
 * context (connections already accepted hold their own SSL reference).
 */
struct sg_snapshot {
    atomic_int refs;
    uint64_t generation; /* 1 at start, +1 per accepted reload */
    struct sg_config cfg;
    SSL_CTX *server_tls; /* NULL when listen.plaintext */
};

/* A copy of cfg with server_tls (ownership taken, may be NULL); one reference. */
struct sg_snapshot *sg_snapshot_new(const struct sg_config *cfg, SSL_CTX *server_tls,
                                    uint64_t generation);
struct sg_snapshot *sg_snapshot_ref(struct sg_snapshot *s);
/* Drop a reference (NULL is fine); the last one frees the snapshot. */
void sg_snapshot_unref(struct sg_snapshot *s);

/*
 * The process-wide current snapshot, for threads that are not workers (the
 * admin endpoints and STATS read keyspace names from it). publish (main
 * thread) takes a reference to s and drops the previous one. acquire (any
 * thread) returns the current one with a reference the caller drops with
 * sg_snapshot_release, or NULL before the first publish. Both take a
 * mutex for a pointer swap / refcount bump: never on the request path.
 */
void sg_snapshot_publish(struct sg_snapshot *s);
struct sg_snapshot *sg_snapshot_acquire(void);
void sg_snapshot_release(struct sg_snapshot *s);

#endif
