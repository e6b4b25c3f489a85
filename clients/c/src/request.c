/*
 * request.c - building requests and encoding client frames.
 *
 * A struct sg_request owns copies of every byte string handed to it, so the
 * caller's buffers can be reused at once. Encoding produces one complete
 * frame (4-byte big-endian length + packed ClientMessage) ready to write.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "internal.h"

void *sg_xmalloc(size_t n)
{
    void *p = malloc(n ? n : 1);

    if (p == NULL) {
        fprintf(stderr, "libslotgate: out of memory allocating %zu bytes\n", n);
        abort();
    }
    return p;
}

void *sg_xrealloc(void *p, size_t n)
{
    void *q = realloc(p, n ? n : 1);

    if (q == NULL) {
        fprintf(stderr, "libslotgate: out of memory allocating %zu bytes\n", n);
        abort();
    }
    return q;
}

char *sg_xstrdup(const char *s)
{
    return sg_xmemdup(s, strlen(s) + 1);
}

void *sg_xmemdup(const void *p, size_t n)
{
    void *q = sg_xmalloc(n);

    if (n)
        memcpy(q, p, n);
    return q;
}

int64_t sg_now_ms(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

struct sg_request *sg_request_new(enum sg_op op)
{
    struct sg_request *r = sg_xmalloc(sizeof(*r));

    memset(r, 0, sizeof(*r));
    r->op = op;
    return r;
}

void sg_request_free(struct sg_request *r)
{
    size_t i;

    if (r == NULL)
        return;
    for (i = 0; i < r->n_keys; i++)
        free(r->keys[i].data);
    for (i = 0; i < r->n_values; i++)
        free(r->values[i].data);
    free(r->keys);
    free(r->values);
    free(r->ttls);
    free(r->keyspace);
    free(r->pattern.data);
    free(r->lease.data);
    free(r);
}

void sg_request_keyspace(struct sg_request *r, const char *keyspace)
{
    free(r->keyspace);
    r->keyspace = keyspace ? sg_xstrdup(keyspace) : NULL;
}

/* Append a copy of (p, len) to a growable array of binary strings. */
static void sg_bytes_push(ProtobufCBinaryData **arr, size_t *n, size_t *cap, const void *p,
                          size_t len)
{
    if (*n == *cap) {
        *cap = *cap ? *cap * 2 : 4;
        *arr = sg_xrealloc(*arr, *cap * sizeof(**arr));
    }
    (*arr)[*n].data = sg_xmemdup(p, len);
    (*arr)[*n].len = len;
    (*n)++;
}

void sg_request_add_key(struct sg_request *r, const void *key, size_t len)
{
    sg_bytes_push(&r->keys, &r->n_keys, &r->cap_keys, key, len);
}

void sg_request_add_value(struct sg_request *r, const void *val, size_t len)
{
    sg_bytes_push(&r->values, &r->n_values, &r->cap_values, val, len);
}

void sg_request_add_ttl(struct sg_request *r, uint64_t ttl_ms)
{
    if (r->n_ttls == r->cap_ttls) {
        r->cap_ttls = r->cap_ttls ? r->cap_ttls * 2 : 4;
        r->ttls = sg_xrealloc(r->ttls, r->cap_ttls * sizeof(*r->ttls));
    }
    r->ttls[r->n_ttls++] = ttl_ms;
}

void sg_request_ttl(struct sg_request *r, uint64_t ttl_ms)
{
    r->ttl_ms = ttl_ms;
}

void sg_request_condition(struct sg_request *r, enum sg_cond cond)
{
    r->cond = cond;
}

void sg_request_deadline(struct sg_request *r, uint32_t deadline_ms)
{
    r->deadline_ms = deadline_ms;
}

/* Replace a single owned binary field with a copy of (p, len). */
static void sg_bytes_set(ProtobufCBinaryData *b, const void *p, size_t len)
{
    free(b->data);
    b->data = sg_xmemdup(p, len);
    b->len = len;
}

void sg_request_pattern(struct sg_request *r, const void *p, size_t len)
{
    sg_bytes_set(&r->pattern, p, len);
}

void sg_request_lease(struct sg_request *r, const void *lease, size_t len)
{
    sg_bytes_set(&r->lease, lease, len);
}

void sg_request_version(struct sg_request *r, uint64_t version)
{
    r->version = version;
}

/*
 * Pack one ClientMessage behind a 4-byte big-endian length. Returns a
 * malloc'ed frame the caller owns, or NULL if the body does not fit the
 * 32-bit length prefix.
 */
static uint8_t *sg_frame_pack(const Slotgate__V1__ClientMessage *m, size_t *len)
{
    size_t body = slotgate__v1__client_message__get_packed_size(m);
    uint8_t *buf;

    if (body > UINT32_MAX)
        return NULL;
    buf = sg_xmalloc(body + 4);
    buf[0] = (uint8_t)(body >> 24);
    buf[1] = (uint8_t)(body >> 16);
    buf[2] = (uint8_t)(body >> 8);
    buf[3] = (uint8_t)body;
    slotgate__v1__client_message__pack(m, buf + 4);
    *len = body + 4;
    return buf;
}

void sg_request_skip_checks(struct sg_request *r)
{
    r->nocheck = 1;
}

/* Fill m (borrowing r's arrays) as the ClientMessage for r with id. */
static void sg_request_message(const struct sg_request *r, uint64_t id, Slotgate__V1__Request *req,
                               Slotgate__V1__ClientMessage *m)
{
    slotgate__v1__request__init(req);
    slotgate__v1__client_message__init(m);
    req->id = id;
    req->op = (Slotgate__V1__Op)r->op;
    if (r->keyspace)
        req->keyspace = r->keyspace;
    req->n_keys = r->n_keys;
    req->keys = r->keys;
    req->n_values = r->n_values;
    req->values = r->values;
    req->ttl_ms = r->ttl_ms;
    req->condition = (Slotgate__V1__Condition)r->cond;
    req->deadline_ms = r->deadline_ms;
    req->n_ttls_ms = r->n_ttls;
    req->ttls_ms = r->ttls;
    req->pattern = r->pattern;
    req->lease = r->lease;
    req->version = r->version;
    m->msg_case = SLOTGATE__V1__CLIENT_MESSAGE__MSG_REQUEST;
    m->request = req;
}

/* Encoded body size of r (with the largest id), without the 4-byte header. */
size_t sg_request_size(const struct sg_request *r)
{
    Slotgate__V1__Request req;
    Slotgate__V1__ClientMessage m;

    sg_request_message(r, UINT64_MAX, &req, &m);
    return slotgate__v1__client_message__get_packed_size(&m);
}

size_t sg_request_size_bound(const struct sg_request *r)
{
    /* every field: at most 1 tag byte + a 10-byte varint (length or value) */
    size_t n = 16 * 11 + r->pattern.len + r->lease.len, i;

    if (r->keyspace)
        n += strlen(r->keyspace);
    for (i = 0; i < r->n_keys; i++)
        n += 11 + r->keys[i].len;
    for (i = 0; i < r->n_values; i++)
        n += 11 + r->values[i].len;
    return n + 11 * r->n_ttls;
}

/*
 * Encode r as a frame with request id id. The protobuf message only borrows
 * r's arrays, so nothing but the returned buffer (caller-owned) is allocated.
 */
uint8_t *sg_frame_request(const struct sg_request *r, uint64_t id, size_t *len)
{
    Slotgate__V1__Request req;
    Slotgate__V1__ClientMessage m;

    sg_request_message(r, id, &req, &m);
    return sg_frame_pack(&m, len);
}

uint8_t *sg_encode_request(const struct sg_request *r, uint64_t id, size_t *len)
{
    return sg_frame_request(r, id, len);
}

uint8_t *sg_encode_hello(const char *client_name, const void *token, size_t token_len, size_t *len)
{
    return sg_frame_hello(client_name, token, token_len, len);
}

uint8_t *sg_frame_hello(const char *client_name, const void *token, size_t token_len, size_t *len)
{
    Slotgate__V1__Hello h = SLOTGATE__V1__HELLO__INIT;
    Slotgate__V1__ClientMessage m = SLOTGATE__V1__CLIENT_MESSAGE__INIT;

    h.protocol_version = 1;
    h.client_name = (char *)client_name;
    if (token != NULL && token_len > 0) {
        h.auth_token.data = (uint8_t *)token;
        h.auth_token.len = token_len;
    }
    m.msg_case = SLOTGATE__V1__CLIENT_MESSAGE__MSG_HELLO;
    m.hello = &h;
    return sg_frame_pack(&m, len);
}

/* ---- one request per op, for the typed calls (blocking and async) --------- */

struct sg_request *sg_req_key(enum sg_op op, const char *keyspace, const void *key, size_t klen)
{
    struct sg_request *r = sg_request_new(op);

    if (keyspace)
        sg_request_keyspace(r, keyspace);
    sg_request_add_key(r, key, klen);
    return r;
}

struct sg_request *sg_req_keys(enum sg_op op, const char *keyspace, size_t n,
                               const void *const *keys, const size_t *klens)
{
    struct sg_request *r = sg_request_new(op);
    size_t i;

    if (keyspace)
        sg_request_keyspace(r, keyspace);
    for (i = 0; i < n; i++)
        sg_request_add_key(r, keys[i], klens[i]);
    return r;
}

struct sg_request *sg_req_set(const char *keyspace, const void *key, size_t klen, const void *val,
                              size_t vlen, uint64_t ttl_ms, enum sg_cond cond)
{
    struct sg_request *r = sg_req_key(SG_OP_SET, keyspace, key, klen);

    sg_request_add_value(r, val, vlen);
    sg_request_ttl(r, ttl_ms);
    sg_request_condition(r, cond);
    return r;
}

struct sg_request *sg_req_expire(const char *keyspace, const void *key, size_t klen,
                                 uint64_t ttl_ms)
{
    struct sg_request *r = sg_req_key(SG_OP_EXPIRE, keyspace, key, klen);

    sg_request_ttl(r, ttl_ms);
    return r;
}

struct sg_request *sg_req_mset(const char *keyspace, size_t n, const void *const *keys,
                               const size_t *klens, const void *const *vals, const size_t *vlens,
                               const uint64_t *ttls, uint64_t ttl_ms, enum sg_cond cond)
{
    struct sg_request *r = sg_req_keys(SG_OP_MSET, keyspace, n, keys, klens);
    size_t i;

    for (i = 0; i < n; i++) {
        sg_request_add_value(r, vals[i], vlens[i]);
        if (ttls)
            sg_request_add_ttl(r, ttls[i]);
    }
    sg_request_ttl(r, ttl_ms);
    sg_request_condition(r, cond);
    return r;
}

struct sg_request *sg_req_invalidate(const char *keyspace, const void *pattern, size_t plen)
{
    struct sg_request *r = sg_request_new(SG_OP_INVALIDATE);

    if (keyspace)
        sg_request_keyspace(r, keyspace);
    sg_request_pattern(r, pattern, plen);
    return r;
}

struct sg_request *sg_req_get_or_lease(const char *keyspace, const void *key, size_t klen,
                                       uint64_t lease_ttl_ms)
{
    struct sg_request *r = sg_req_key(SG_OP_GET_OR_LEASE, keyspace, key, klen);

    sg_request_ttl(r, lease_ttl_ms);
    return r;
}

struct sg_request *sg_req_set_with_lease(const char *keyspace, const void *key, size_t klen,
                                         const void *val, size_t vlen, const void *lease,
                                         size_t llen, uint64_t ttl_ms)
{
    struct sg_request *r = sg_req_key(SG_OP_SET_WITH_LEASE, keyspace, key, klen);

    sg_request_add_value(r, val, vlen);
    sg_request_lease(r, lease, llen);
    sg_request_ttl(r, ttl_ms);
    return r;
}

struct sg_request *sg_req_set_versioned(const char *keyspace, const void *key, size_t klen,
                                        const void *val, size_t vlen, uint64_t version,
                                        uint64_t ttl_ms)
{
    struct sg_request *r = sg_req_key(SG_OP_SET_VERSIONED, keyspace, key, klen);

    sg_request_add_value(r, val, vlen);
    sg_request_version(r, version);
    sg_request_ttl(r, ttl_ms);
    return r;
}
