/*
 * async.c - the asynchronous context: a blocking context (client.c) in
 * tracking mode, driven by an event loop through the adapter hooks in
 * ac->ev. Requests are recorded with their callbacks by id; every readable
 * event or timer drains whatever replies are ready without blocking and
 * calls the callback of each one's id, in whatever order they settle.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "slotgate/async.h"
#include "internal.h"

struct sg_async_cb {
    uint64_t id;
    sg_async_callback *cb;
    void *privdata;
};

struct sg_async_impl {
    struct sg_async pub; /* first: a context is an impl */
    struct sg_conn *conn;
    struct sg_async_cb *cbs; /* in send order; replies mostly come in it */
    size_t ncbs, capcbs;
    int fd;          /* the fd registered with the adapter, -1 = none */
    unsigned gen;    /* the connection it belongs to */
    int dispatching; /* inside handle_read/timeout: rearm once at the end */
};

static struct sg_client *sg_async_client(struct sg_async_impl *a)
{
    return (struct sg_client *)a->conn;
}

static void sg_async_copy_err(struct sg_async_impl *a)
{
    a->pub.err = sg_async_client(a)->err;
    snprintf(a->pub.errstr, sizeof(a->pub.errstr), "%s", sg_async_client(a)->errstr);
}

struct sg_async *sg_async_connect(const struct sg_client_options *opt)
{
    struct sg_async_impl *a = sg_xmalloc(sizeof(*a));

    memset(a, 0, sizeof(*a));
    a->fd = -1;
    a->conn = sg_conn_open(opt, 1);
    sg_conn_force_tracking(a->conn);
    sg_async_copy_err(a);
    return &a->pub;
}

const struct sg_limits *sg_async_limits(const struct sg_async *ac)
{
    return sg_client_limits((const struct sg_client *)((const struct sg_async_impl *)ac)->conn);
}

size_t sg_async_outstanding(const struct sg_async *ac)
{
    return ((const struct sg_async_impl *)ac)->ncbs;
}

/*
 * Tell the adapter what to wait for: the current fd (it changes after a
 * reconnect), and a timer for the earliest client deadline, or at once when
 * replies are already buffered (parked, TLS-buffered, made up after a loss)
 * and no readable event would come for them.
 */
void sg_async_rearm(struct sg_async *ac)
{
    struct sg_async_impl *a = (struct sg_async_impl *)ac;
    struct sg_client *c = sg_async_client(a);
    /* A closed socket stays readable (EOF): never watch it, or the loop spins. */
    int fd = sg_conn_closed(a->conn) ? -1 : sg_client_fd(c);
    int64_t dl, now;

    if (a->dispatching || ac->ev.add_read == NULL)
        return;
    if (fd != a->fd || sg_conn_generation(a->conn) != a->gen) {
        /* A reconnect's socket may reuse the old number: register anew. */
        ac->ev.del_read(ac->ev.data);
        if (fd >= 0)
            ac->ev.add_read(ac->ev.data, fd);
        a->fd = fd;
        a->gen = sg_conn_generation(a->conn);
    }
    if (a->ncbs == 0) {
        ac->ev.set_timer(ac->ev.data, -1);
        return;
    }
    if (sg_client_pending(c)) {
        ac->ev.set_timer(ac->ev.data, 0);
        return;
    }
    dl = sg_conn_next_deadline(a->conn);
    now = sg_now_ms();
    ac->ev.set_timer(ac->ev.data, dl == 0 ? -1 : dl > now ? (long)(dl - now) : 0);
}

static size_t sg_async_find(const struct sg_async_impl *a, uint64_t id)
{
    size_t i;

    for (i = 0; i < a->ncbs; i++)
        if (a->cbs[i].id == id)
            break;
    return i;
}

/* Drain every reply that is ready and run its callback. */
static void sg_async_dispatch(struct sg_async_impl *a)
{
    struct sg_response *r;
    struct sg_async_cb cb;
    size_t i;

    a->dispatching = 1;
    while (a->ncbs > 0 && sg_conn_recv_nowait(a->conn, &r) == 0) {
        i = sg_async_find(a, r->id);
        if (i == a->ncbs) { /* not ours (cannot happen in tracking mode) */
            sg_response_free(r);
            continue;
        }
        cb = a->cbs[i];
        memmove(&a->cbs[i], &a->cbs[i + 1], (a->ncbs - i - 1) * sizeof(*a->cbs));
        a->ncbs--;
        if (cb.cb)
            cb.cb(&a->pub, r, cb.privdata);
        sg_response_free(r);
    }
    a->dispatching = 0;
    sg_async_rearm(&a->pub);
}

void sg_async_handle_read(struct sg_async *ac)
{
    struct sg_async_impl *a = (struct sg_async_impl *)ac;

    if (a->ncbs == 0) {
        /* Nothing outstanding: read anyway so an EOF or ConnectionError is
         * noticed and the fd dropped (it would stay readable forever). */
        struct sg_response *r;

        while (sg_conn_recv_nowait(a->conn, &r) == 0)
            sg_response_free(r);
        sg_async_rearm(ac);
        return;
    }
    sg_async_dispatch(a);
}

void sg_async_handle_timeout(struct sg_async *ac)
{
    sg_async_dispatch((struct sg_async_impl *)ac);
}

int sg_async_send(struct sg_async *ac, const struct sg_request *r, sg_async_callback *cb,
                  void *privdata, uint64_t *id)
{
    struct sg_async_impl *a = (struct sg_async_impl *)ac;
    uint64_t rid;

    if (sg_client_send(sg_async_client(a), r, &rid) < 0) {
        sg_async_copy_err(a);
        sg_async_rearm(ac);
        return -1;
    }
    if (a->ncbs == a->capcbs) {
        a->capcbs = a->capcbs ? a->capcbs * 2 : 16;
        a->cbs = sg_xrealloc(a->cbs, a->capcbs * sizeof(*a->cbs));
    }
    a->cbs[a->ncbs].id = rid;
    a->cbs[a->ncbs].cb = cb;
    a->cbs[a->ncbs].privdata = privdata;
    a->ncbs++;
    if (id)
        *id = rid;
    sg_async_rearm(ac);
    return 0;
}

/* Send r (consumed) with its callback. */
static int sg_async_run(struct sg_async *ac, struct sg_request *r, sg_async_callback *cb,
                        void *privdata)
{
    int rc = sg_async_send(ac, r, cb, privdata, NULL);

    sg_request_free(r);
    return rc;
}

int sg_async_ping(struct sg_async *ac, sg_async_callback *cb, void *privdata)
{
    return sg_async_run(ac, sg_request_new(SG_OP_PING), cb, privdata);
}

int sg_async_get(struct sg_async *ac, const char *keyspace, const void *key, size_t klen,
                 sg_async_callback *cb, void *privdata)
{
    return sg_async_run(ac, sg_req_key(SG_OP_GET, keyspace, key, klen), cb, privdata);
}

int sg_async_set(struct sg_async *ac, const char *keyspace, const void *key, size_t klen,
                 const void *val, size_t vlen, uint64_t ttl_ms, enum sg_cond cond,
                 sg_async_callback *cb, void *privdata)
{
    return sg_async_run(ac, sg_req_set(keyspace, key, klen, val, vlen, ttl_ms, cond), cb, privdata);
}

int sg_async_del(struct sg_async *ac, const char *keyspace, const void *key, size_t klen,
                 sg_async_callback *cb, void *privdata)
{
    return sg_async_run(ac, sg_req_key(SG_OP_DELETE, keyspace, key, klen), cb, privdata);
}

int sg_async_expire(struct sg_async *ac, const char *keyspace, const void *key, size_t klen,
                    uint64_t ttl_ms, sg_async_callback *cb, void *privdata)
{
    return sg_async_run(ac, sg_req_expire(keyspace, key, klen, ttl_ms), cb, privdata);
}

int sg_async_mget(struct sg_async *ac, const char *keyspace, size_t n, const void *const *keys,
                  const size_t *klens, sg_async_callback *cb, void *privdata)
{
    return sg_async_run(ac, sg_req_keys(SG_OP_MGET, keyspace, n, keys, klens), cb, privdata);
}

int sg_async_mset(struct sg_async *ac, const char *keyspace, size_t n, const void *const *keys,
                  const size_t *klens, const void *const *vals, const size_t *vlens,
                  const uint64_t *ttls, uint64_t ttl_ms, enum sg_cond cond, sg_async_callback *cb,
                  void *privdata)
{
    return sg_async_run(ac, sg_req_mset(keyspace, n, keys, klens, vals, vlens, ttls, ttl_ms, cond),
                        cb, privdata);
}

int sg_async_mdel(struct sg_async *ac, const char *keyspace, size_t n, const void *const *keys,
                  const size_t *klens, sg_async_callback *cb, void *privdata)
{
    return sg_async_run(ac, sg_req_keys(SG_OP_MDELETE, keyspace, n, keys, klens), cb, privdata);
}

int sg_async_invalidate(struct sg_async *ac, const char *keyspace, const void *pattern, size_t plen,
                        sg_async_callback *cb, void *privdata)
{
    return sg_async_run(ac, sg_req_invalidate(keyspace, pattern, plen), cb, privdata);
}

int sg_async_get_or_lease(struct sg_async *ac, const char *keyspace, const void *key, size_t klen,
                          uint64_t lease_ttl_ms, sg_async_callback *cb, void *privdata)
{
    return sg_async_run(ac, sg_req_get_or_lease(keyspace, key, klen, lease_ttl_ms), cb, privdata);
}

int sg_async_set_with_lease(struct sg_async *ac, const char *keyspace, const void *key, size_t klen,
                            const void *val, size_t vlen, const void *lease, size_t llen,
                            uint64_t ttl_ms, sg_async_callback *cb, void *privdata)
{
    return sg_async_run(ac,
                        sg_req_set_with_lease(keyspace, key, klen, val, vlen, lease, llen, ttl_ms),
                        cb, privdata);
}

int sg_async_get_versioned(struct sg_async *ac, const char *keyspace, const void *key, size_t klen,
                           sg_async_callback *cb, void *privdata)
{
    return sg_async_run(ac, sg_req_key(SG_OP_GET_VERSIONED, keyspace, key, klen), cb, privdata);
}

int sg_async_set_versioned(struct sg_async *ac, const char *keyspace, const void *key, size_t klen,
                           const void *val, size_t vlen, uint64_t version, uint64_t ttl_ms,
                           sg_async_callback *cb, void *privdata)
{
    return sg_async_run(ac, sg_req_set_versioned(keyspace, key, klen, val, vlen, version, ttl_ms),
                        cb, privdata);
}

int sg_async_stats(struct sg_async *ac, sg_async_callback *cb, void *privdata)
{
    return sg_async_run(ac, sg_request_new(SG_OP_STATS), cb, privdata);
}

void sg_async_free(struct sg_async *ac)
{
    struct sg_async_impl *a = (struct sg_async_impl *)ac;
    struct sg_async_cb cb;

    if (a == NULL)
        return;
    a->dispatching = 1;
    while (a->ncbs > 0) {
        cb = a->cbs[0];
        memmove(&a->cbs[0], &a->cbs[1], (a->ncbs - 1) * sizeof(*a->cbs));
        a->ncbs--;
        if (cb.cb)
            cb.cb(ac, NULL, cb.privdata);
    }
    if (ac->ev.cleanup)
        ac->ev.cleanup(ac->ev.data);
    sg_client_free(sg_async_client(a));
    free(a->cbs);
    free(a);
}
