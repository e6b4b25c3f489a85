/*
 * fastpb - the hot requests decoded and the responses encoded without
 * protobuf-c's descriptor walk. The session hands every frame body here
 * first (request.c) and every outgoing ServerMessage (session.c); what this
 * file declines goes through frame.c. The decoder's contract is one-sided:
 * whatever it accepts, protobuf-c accepts with the same content, so it may
 * decline anything unusual, and tests/fuzz/fuzz_fastpb.c checks exactly that.
 */
#include <stdlib.h>
#include <string.h>

#include "fastpb.h"

/* --- decoding --------------------------------------------------------------- */

/* Wire types. */
#define WT_VARINT 0
#define WT_LEN 2

/* Request field numbers (proto/slotgate.proto). */
enum {
    F_ID = 1,
    F_OP = 2,
    F_KEYSPACE = 3,
    F_KEYS = 4,
    F_VALUES = 5,
    F_TTL_MS = 6,
    F_CONDITION = 7,
    F_DEADLINE_MS = 8,
    F_TTLS_MS = 9,
    F_PATTERN = 10,
    F_LEASE = 11,
    F_VERSION = 12
};

/*
 * A varint of at most 10 bytes at *p (< end), as protobuf-c reads one: bits
 * past the 64th are dropped. Advances *p; -1 if it does not end in time.
 */
static int get_varint(const uint8_t **p, const uint8_t *end, uint64_t *v)
{
    const uint8_t *q = *p;
    uint64_t x = 0;
    for (unsigned i = 0; i < 10 && q < end; i++) {
        uint8_t b = *q++;
        x |= (uint64_t)(b & 0x7f) << (7 * i);
        if ((b & 0x80) == 0) {
            *p = q;
            *v = x;
            return 0;
        }
    }
    return -1;
}

/*
 * A length prefix and the bytes it announces, as protobuf-c's scan does: the
 * prefix is at most 5 bytes, at most INT_MAX, and must fit in what is left.
 * With gap != 0 the bytes are in a gapped body (sg_fastpb_decode_client_gap)
 * whose left-out value belongs right at end: a length of exactly gap there
 * is that value, *data is NULL, nothing is passed over, and 1 is returned.
 */
static int get_slice_gap(const uint8_t **p, const uint8_t *end, size_t gap, const uint8_t **data,
                         size_t *len)
{
    const uint8_t *q = *p;
    uint64_t n = 0;
    for (unsigned i = 0;; i++) {
        if (i == 5 || q == end)
            return -1;
        uint8_t b = *q++;
        n |= (uint64_t)(b & 0x7f) << (7 * i);
        if ((b & 0x80) == 0)
            break;
    }
    if (gap != 0 && q == end && n == gap) {
        *data = NULL;
        *len = (size_t)n;
        *p = q;
        return 1;
    }
    if (n > 0x7fffffff || n > (uint64_t)(end - q))
        return -1;
    *data = q;
    *len = (size_t)n;
    *p = q + n;
    return 0;
}

static int get_slice(const uint8_t **p, const uint8_t *end, const uint8_t **data, size_t *len)
{
    return get_slice_gap(p, end, 0, data, len);
}

/* Number of varints in a packed run, or -1 if one is cut off or too long. */
static long count_packed(const uint8_t *p, const uint8_t *end)
{
    long n = 0;
    uint64_t v;
    while (p < end) {
        if (get_varint(&p, end, &v) < 0)
            return -1;
        n++;
    }
    return n;
}

static int hot_op(uint64_t v)
{
    switch ((int32_t)(uint32_t)v) {
    case SLOTGATE__V1__OP__OP_GET:
    case SLOTGATE__V1__OP__OP_SET:
    case SLOTGATE__V1__OP__OP_DELETE:
    case SLOTGATE__V1__OP__OP_MGET:
    case SLOTGATE__V1__OP__OP_MSET:
        return 1;
    default:
        return 0;
    }
}

/* What the first pass learns: the last occurrence of each singular field. */
struct scan {
    uint64_t id, op, ttl_ms, condition, deadline_ms, version;
    const uint8_t *keyspace, *pattern, *lease;
    size_t keyspace_len, pattern_len, lease_len;
    int has_keyspace, has_pattern, has_lease;
    int gap_seen; /* the left-out value of a gapped body was a values field */
    size_t n_keys, n_values, n_ttls;
};

/*
 * First pass over a Request body: every field is one this file knows with
 * the wire type protobuf-c requires (packed or not for ttls_ms), singular
 * fields keep their last value, repeated ones are counted. -1: not mine.
 * A body in pieces is scanned piece by piece into the same s; gap != 0:
 * the left-out value of a gapped body belongs at end (get_slice_gap), and
 * only a values field may be it.
 */
static int scan_request(const uint8_t *p, const uint8_t *end, size_t gap, struct scan *s)
{
    while (p < end) {
        uint8_t tag = *p++;
        const uint8_t *d;
        size_t n;
        uint64_t v;
        if ((tag & 0x80) != 0)
            return -1; /* field numbers above 15: none of ours */
        unsigned wt = tag & 7u;
        switch (tag >> 3) {
        case F_ID:
        case F_OP:
        case F_TTL_MS:
        case F_CONDITION:
        case F_DEADLINE_MS:
        case F_VERSION:
            if (wt != WT_VARINT || get_varint(&p, end, &v) < 0)
                return -1;
            switch (tag >> 3) {
            case F_ID:
                s->id = v;
                break;
            case F_OP:
                s->op = v;
                break;
            case F_TTL_MS:
                s->ttl_ms = v;
                break;
            case F_CONDITION:
                s->condition = v;
                break;
            case F_DEADLINE_MS:
                s->deadline_ms = v;
                break;
            default:
                s->version = v;
                break;
            }
            break;
        case F_KEYSPACE:
        case F_PATTERN:
        case F_LEASE:
            if (wt != WT_LEN || get_slice(&p, end, &d, &n) < 0)
                return -1;
            if ((tag >> 3) == F_KEYSPACE) {
                s->keyspace = d;
                s->keyspace_len = n;
                s->has_keyspace = 1;
            } else if ((tag >> 3) == F_PATTERN) {
                s->pattern = d;
                s->pattern_len = n;
                s->has_pattern = 1;
            } else {
                s->lease = d;
                s->lease_len = n;
                s->has_lease = 1;
            }
            break;
        case F_KEYS:
            if (wt != WT_LEN || get_slice(&p, end, &d, &n) < 0)
                return -1;
            s->n_keys++;
            break;
        case F_VALUES: {
            int rc = wt == WT_LEN ? get_slice_gap(&p, end, gap, &d, &n) : -1;
            if (rc < 0)
                return -1;
            s->gap_seen |= rc;
            s->n_values++;
            break;
        }
        case F_TTLS_MS:
            if (wt == WT_VARINT) {
                if (get_varint(&p, end, &v) < 0)
                    return -1;
                s->n_ttls++;
            } else if (wt == WT_LEN) {
                long c;
                if (get_slice(&p, end, &d, &n) < 0 || (c = count_packed(d, d + n)) < 0)
                    return -1;
                s->n_ttls += (size_t)c;
            } else {
                return -1;
            }
            break;
        default:
            return -1; /* unknown fields are kept by protobuf-c: not mine */
        }
    }
    return 0;
}

static void *pb_alloc(ProtobufCAllocator *a, size_t size)
{
    return a->alloc(a->allocator_data, size);
}

/* protobuf-c's bytes: a copy, or data NULL when empty. -1 out of memory. */
static int copy_bytes(ProtobufCAllocator *a, ProtobufCBinaryData *bd, const uint8_t *d, size_t n)
{
    bd->len = n;
    bd->data = NULL;
    if (n == 0)
        return 0;
    bd->data = pb_alloc(a, n);
    if (bd->data == NULL)
        return -1;
    memcpy(bd->data, d, n);
    return 0;
}

static void *sys_alloc(void *data, size_t size)
{
    (void)data;
    return malloc(size);
}

static void sys_free(void *data, void *p)
{
    (void)data;
    free(p);
}

static ProtobufCAllocator sys_allocator = {sys_alloc, sys_free, NULL};

/* A piece of a Request body; gap: as scan_request's. */
struct piece {
    const uint8_t *p, *end;
    size_t gap;
};

/*
 * Second pass: the repeated fields in wire order into arrays of the counted
 * sizes. The counts live in locals (the struct's were just written by the
 * generated init's block copy, and reading them back stalls) and are stored
 * on every exit, so a message cut short by a failed allocation stays
 * freeable. The left-out value of a gapped body gets its length and no
 * bytes (data NULL): the caller holds them.
 */
static int fill_repeated(ProtobufCAllocator *a, const struct piece *pc, size_t n_pieces,
                         Slotgate__V1__Request *rq)
{
    size_t nk = 0, nv = 0, nt = 0;
    int rc = 0;
    for (size_t i = 0; i < n_pieces && rc == 0; i++) {
        const uint8_t *p = pc[i].p, *end = pc[i].end;
        while (p < end && rc == 0) {
            uint8_t tag = *p++;
            const uint8_t *d = NULL;
            size_t n = 0;
            uint64_t v = 0;
            if ((tag & 7u) == WT_VARINT) {
                (void)get_varint(&p, end, &v);
                if ((tag >> 3) == F_TTLS_MS)
                    rq->ttls_ms[nt++] = v;
                continue;
            }
            int gap = get_slice_gap(&p, end, (tag >> 3) == F_VALUES ? pc[i].gap : 0, &d, &n);
            switch (tag >> 3) {
            case F_KEYS:
                rc = copy_bytes(a, &rq->keys[nk], d, n);
                nk += rc == 0;
                break;
            case F_VALUES:
                if (gap == 1) {
                    rq->values[nv].len = n;
                    rq->values[nv].data = NULL;
                } else {
                    rc = copy_bytes(a, &rq->values[nv], d, n);
                }
                nv += rc == 0;
                break;
            case F_TTLS_MS:
                for (const uint8_t *q = d; q < d + n;) {
                    if (get_varint(&q, d + n, &v) < 0)
                        break; /* not reached: scan_request checked the run */
                    rq->ttls_ms[nt++] = v;
                }
                break;
            default:
                break;
            }
        }
    }
    rq->n_keys = nk;
    rq->n_values = nv;
    rq->n_ttls_ms = nt;
    return rc;
}

/* Build the Request from a successful scan; -1 out of memory. */
static int build_request(ProtobufCAllocator *a, const struct scan *s, const struct piece *pc,
                         size_t n_pieces, Slotgate__V1__Request *rq)
{
    rq->id = s->id;
    rq->op = (Slotgate__V1__Op)(int32_t)(uint32_t)s->op;
    rq->ttl_ms = s->ttl_ms;
    rq->condition = (Slotgate__V1__Condition)(int32_t)(uint32_t)s->condition;
    rq->deadline_ms = (uint32_t)s->deadline_ms;
    rq->version = s->version;
    if (s->has_keyspace && s->keyspace_len > 0) {
        char *ks = pb_alloc(a, s->keyspace_len + 1);
        if (ks == NULL)
            return -1;
        memcpy(ks, s->keyspace, s->keyspace_len);
        ks[s->keyspace_len] = '\0';
        rq->keyspace = ks;
    }
    if (s->has_pattern && copy_bytes(a, &rq->pattern, s->pattern, s->pattern_len) < 0)
        return -1;
    if (s->has_lease && copy_bytes(a, &rq->lease, s->lease, s->lease_len) < 0)
        return -1;
    if (s->n_keys > 0 && (rq->keys = pb_alloc(a, s->n_keys * sizeof(*rq->keys))) == NULL)
        return -1;
    if (s->n_values > 0 && (rq->values = pb_alloc(a, s->n_values * sizeof(*rq->values))) == NULL)
        return -1;
    if (s->n_ttls > 0 && (rq->ttls_ms = pb_alloc(a, s->n_ttls * sizeof(*rq->ttls_ms))) == NULL)
        return -1;
    if (s->n_keys + s->n_values + s->n_ttls > 0)
        return fill_repeated(a, pc, n_pieces, rq);
    return 0;
}

/*
 * The Request made of n pieces of body (wire order; one, or the two sides
 * of a gapped body's value), or NULL having allocated nothing when it is
 * not a hot request in a form this file takes.
 */
static Slotgate__V1__ClientMessage *decode_request(const struct piece *pc, size_t n,
                                                   ProtobufCAllocator *alloc)
{
    struct scan s;
    /*
     * Field by field, not memset: compilers turn a memset of this size into
     * "rep stos", and the counters read back at once then wait for those
     * stores to retire (measured: two thirds of this function under GET load).
     */
    s.id = s.op = s.ttl_ms = s.condition = s.deadline_ms = s.version = 0;
    s.keyspace = s.pattern = s.lease = NULL;
    s.keyspace_len = s.pattern_len = s.lease_len = 0;
    s.has_keyspace = s.has_pattern = s.has_lease = 0;
    s.gap_seen = 0;
    s.n_keys = s.n_values = s.n_ttls = 0;
    for (size_t i = 0; i < n; i++)
        if (scan_request(pc[i].p, pc[i].end, pc[i].gap, &s) < 0)
            return NULL;
    if (!hot_op(s.op) || (n > 1 && !s.gap_seen))
        return NULL;

    if (alloc == NULL)
        alloc = &sys_allocator;
    Slotgate__V1__ClientMessage *m = pb_alloc(alloc, sizeof(*m));
    if (m == NULL)
        return NULL;
    slotgate__v1__client_message__init(m);
    Slotgate__V1__Request *rq = pb_alloc(alloc, sizeof(*rq));
    if (rq == NULL) {
        alloc->free(alloc->allocator_data, m);
        return NULL;
    }
    slotgate__v1__request__init(rq);
    m->msg_case = SLOTGATE__V1__CLIENT_MESSAGE__MSG_REQUEST;
    m->request = rq;
    if (build_request(alloc, &s, pc, n, rq) < 0) {
        slotgate__v1__client_message__free_unpacked(m, alloc);
        return NULL;
    }
    return m;
}

/*
 * The only form taken: exactly one field, request (tag 2, length-delimited),
 * spanning the whole body. A Hello, a repeated request (protobuf-c merges
 * them) or anything after it is declined. Everything is checked before the
 * first allocation, so declining never leaves anything behind.
 */
Slotgate__V1__ClientMessage *sg_fastpb_decode_client(const uint8_t *body, size_t len,
                                                     ProtobufCAllocator *alloc)
{
    const uint8_t *p = body, *end = body + len, *rb;
    size_t rlen;

    if (len < 2 || *p++ != ((2u << 3) | WT_LEN) || get_slice(&p, end, &rb, &rlen) < 0 || p != end)
        return NULL;
    struct piece pc = {rb, rb + rlen, 0};
    return decode_request(&pc, 1, alloc);
}

/*
 * The gapped body is the whole one with the value's bytes left out: the
 * request's outer length counts them, and the piece before the gap must
 * end with the values field's tag and length (get_slice_gap), the piece
 * after it goes on from there.
 */
Slotgate__V1__ClientMessage *sg_fastpb_decode_client_gap(const uint8_t *body, size_t len,
                                                         size_t gap, size_t gap_len,
                                                         ProtobufCAllocator *alloc)
{
    const uint8_t *p = body, *head_end = body + gap, *end = body + len;
    uint64_t rlen;

    if (gap_len == 0 || gap > len || gap < 2 || *p++ != ((2u << 3) | WT_LEN) ||
        get_varint(&p, p + 5 < head_end ? p + 5 : head_end, &rlen) < 0 ||
        rlen != (uint64_t)(end - p) + gap_len || rlen > 0x7fffffff)
        return NULL;
    struct piece pc[2] = {{p, head_end, gap_len}, {head_end, end, 0}};
    return decode_request(pc, 2, alloc);
}

/*
 * Where the value of a request's first values field lies in its frame body,
 * from the first head bytes of a body of len: the fields before it must be
 * whole in head (and ones this file knows), the value's tag and length too.
 */
int sg_fastpb_find_value(const uint8_t *head, size_t head_len, size_t len, size_t *at,
                         size_t *value_len)
{
    const uint8_t *p = head, *end = head + head_len;
    uint64_t rlen, v;
    if (head_len > len || head_len < 2 || *p++ != ((2u << 3) | WT_LEN) ||
        get_varint(&p, p + 5 < end ? p + 5 : end, &rlen) < 0 ||
        rlen != (uint64_t)(len - (size_t)(p - head)))
        return -1;
    while (p < end) {
        uint8_t tag = *p++;
        const uint8_t *d;
        size_t n;
        if ((tag & 0x80) != 0)
            return -1;
        switch (tag & 7u) {
        case WT_VARINT:
            if (get_varint(&p, end, &v) < 0)
                return -1;
            break;
        case WT_LEN:
            if ((tag >> 3) == F_VALUES) {
                if (get_varint(&p, p + 5 < end ? p + 5 : end, &v) < 0 ||
                    v > (uint64_t)(len - (size_t)(p - head)))
                    return -1;
                *at = (size_t)(p - head);
                *value_len = (size_t)v;
                return 0;
            }
            if (get_slice(&p, end, &d, &n) < 0)
                return -1;
            break;
        default:
            return -1;
        }
    }
    return -1;
}

/* --- encoding --------------------------------------------------------------- */

static size_t varint_size(uint64_t v)
{
    size_t n = 1;
    while (v >= 0x80) {
        v >>= 7;
        n++;
    }
    return n;
}

static uint8_t *put_varint(uint8_t *o, uint64_t v)
{
    while (v >= 0x80) {
        *o++ = (uint8_t)(v | 0x80);
        v >>= 7;
    }
    *o++ = (uint8_t)v;
    return o;
}

/* protobuf-c writes a negative int32 (enum) as its 64-bit sign extension. */
static uint64_t enum_wire(int32_t v)
{
    return (uint64_t)(int64_t)v;
}

/* Size of a length-delimited field of n bytes with a one-byte tag. */
static size_t len_field_size(size_t n)
{
    return 1 + varint_size(n) + n;
}

/*
 * protobuf-c omits a string that is NULL or "", and bytes of length 0 (its
 * zero test reads the first word of ProtobufCBinaryData, which is len).
 */
static size_t string_len(const char *s)
{
    return (s == NULL || *s == '\0') ? 0 : strlen(s);
}

static size_t key_result_size(const Slotgate__V1__KeyResult *kr)
{
    size_t n = 0, sl;
    if (kr->code != 0)
        n += 1 + varint_size(enum_wire(kr->code));
    if (kr->value.len != 0)
        n += len_field_size(kr->value.len);
    if ((sl = string_len(kr->message)) > 0)
        n += len_field_size(sl);
    return n;
}

/* Response body size, or 0 with *ok = 0 for a Response left to protobuf-c. */
static size_t response_size(const Slotgate__V1__Response *r, int *ok)
{
    size_t n = 0, sl;
    if (r->n_stats != 0 || r->base.n_unknown_fields != 0) {
        *ok = 0;
        return 0;
    }
    if (r->id != 0)
        n += 1 + varint_size(r->id);
    if (r->code != 0)
        n += 1 + varint_size(enum_wire(r->code));
    if ((sl = string_len(r->message)) > 0)
        n += len_field_size(sl);
    if (r->value.len != 0)
        n += len_field_size(r->value.len);
    for (size_t i = 0; i < r->n_results; i++) {
        const Slotgate__V1__KeyResult *kr = r->results[i];
        if (kr->base.n_unknown_fields != 0) {
            *ok = 0;
            return 0;
        }
        n += len_field_size(key_result_size(kr));
    }
    if (r->count != 0)
        n += 1 + varint_size((uint64_t)r->count);
    if (r->lease.len != 0)
        n += len_field_size(r->lease.len);
    if (r->retry_after_ms != 0)
        n += 1 + varint_size(r->retry_after_ms);
    if (r->version != 0)
        n += 1 + varint_size(r->version);
    *ok = 1;
    return n;
}

size_t sg_fastpb_server_size(const Slotgate__V1__ServerMessage *m)
{
    int ok = 0;
    if (m->msg_case != SLOTGATE__V1__SERVER_MESSAGE__MSG_RESPONSE || m->response == NULL ||
        m->base.n_unknown_fields != 0)
        return 0;
    size_t body = len_field_size(response_size(m->response, &ok));
    return ok ? 4 + body : 0;
}

static uint8_t *put_bytes(uint8_t *o, uint8_t tag, const void *d, size_t n)
{
    *o++ = tag;
    o = put_varint(o, n);
    if (n > 0)
        memcpy(o, d, n);
    return o + n;
}

/* Fields in number order, as protobuf-c packs them. */
static uint8_t *put_key_result(uint8_t *o, const Slotgate__V1__KeyResult *kr)
{
    size_t sl;
    if (kr->code != 0) {
        *o++ = (1 << 3) | WT_VARINT;
        o = put_varint(o, enum_wire(kr->code));
    }
    if (kr->value.len != 0)
        o = put_bytes(o, (2 << 3) | WT_LEN, kr->value.data, kr->value.len);
    if ((sl = string_len(kr->message)) > 0)
        o = put_bytes(o, (3 << 3) | WT_LEN, kr->message, sl);
    return o;
}

/* The frame; with gap, everything but the value's bytes (their place is
 * *gap, an offset into out). */
static size_t encode_server(const Slotgate__V1__ServerMessage *m, uint8_t *out, size_t size,
                            size_t *gap)
{
    const Slotgate__V1__Response *r = m->response;
    size_t body = size - 4, sl;
    uint8_t *o = out;

    *o++ = (uint8_t)(body >> 24);
    *o++ = (uint8_t)(body >> 16);
    *o++ = (uint8_t)(body >> 8);
    *o++ = (uint8_t)body;
    /* body = tag + varint(rlen) + rlen: the response's size follows from it. */
    size_t rlen = body - 2;
    while (1 + varint_size(rlen) + rlen > body)
        rlen--;
    *o++ = (2 << 3) | WT_LEN;
    o = put_varint(o, rlen);
    if (r->id != 0) {
        *o++ = (1 << 3) | WT_VARINT;
        o = put_varint(o, r->id);
    }
    if (r->code != 0) {
        *o++ = (2 << 3) | WT_VARINT;
        o = put_varint(o, enum_wire(r->code));
    }
    if ((sl = string_len(r->message)) > 0)
        o = put_bytes(o, (3 << 3) | WT_LEN, r->message, sl);
    if (r->value.len != 0 && gap != NULL) {
        *o++ = (4 << 3) | WT_LEN;
        o = put_varint(o, r->value.len);
        *gap = (size_t)(o - out);
    } else if (r->value.len != 0) {
        o = put_bytes(o, (4 << 3) | WT_LEN, r->value.data, r->value.len);
    }
    for (size_t i = 0; i < r->n_results; i++) {
        *o++ = (5 << 3) | WT_LEN;
        o = put_varint(o, key_result_size(r->results[i]));
        o = put_key_result(o, r->results[i]);
    }
    if (r->count != 0) {
        *o++ = (6 << 3) | WT_VARINT;
        o = put_varint(o, (uint64_t)r->count);
    }
    if (r->lease.len != 0)
        o = put_bytes(o, (7 << 3) | WT_LEN, r->lease.data, r->lease.len);
    if (r->retry_after_ms != 0) {
        *o++ = (8 << 3) | WT_VARINT;
        o = put_varint(o, r->retry_after_ms);
    }
    if (r->version != 0) {
        *o++ = (9 << 3) | WT_VARINT;
        o = put_varint(o, r->version);
    }
    return (size_t)(o - out);
}

size_t sg_fastpb_encode_server(const Slotgate__V1__ServerMessage *m, uint8_t *out, size_t size)
{
    return encode_server(m, out, size, NULL);
}

size_t sg_fastpb_encode_server_gap(const Slotgate__V1__ServerMessage *m, uint8_t *out, size_t size,
                                   size_t *gap)
{
    *gap = 0;
    return encode_server(m, out, size, gap);
}
