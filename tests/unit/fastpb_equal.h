/*
 * fastpb_equal - field-by-field comparison of two decoded ClientMessages,
 * shared by test_fastpb.c and fuzz_fastpb.c: fastpb's output against
 * protobuf-c's for the same bytes. Bytes compare by length, content and by
 * whether data is NULL (protobuf-c leaves it NULL when empty, and its packer
 * tells the two apart); strings compare as the C strings the proxy reads.
 */
#ifndef SG_TEST_FASTPB_EQUAL_H
#define SG_TEST_FASTPB_EQUAL_H

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "slotgate.pb-c.h"

/* An allocator that counts what is not yet freed: a decoder that declines
 * a frame must leave nothing behind, and one that accepts frees all. */
static long fpe_live;

static void *fpe_count_alloc(void *data, size_t size)
{
    (void)data;
    fpe_live++;
    return malloc(size ? size : 1);
}

static void fpe_count_free(void *data, void *p)
{
    (void)data;
    if (p != NULL)
        fpe_live--;
    free(p);
}

static ProtobufCAllocator fpe_counting = {fpe_count_alloc, fpe_count_free, NULL};

static int fpe_bytes_equal(const ProtobufCBinaryData *a, const ProtobufCBinaryData *b)
{
    if (a->len != b->len || (a->data == NULL) != (b->data == NULL))
        return 0;
    return a->len == 0 || memcmp(a->data, b->data, a->len) == 0;
}

static int fpe_str_equal(const char *a, const char *b)
{
    return strcmp(a ? a : "", b ? b : "") == 0 && (a == NULL) == (b == NULL);
}

/* 1 if a and b hold the same message; else 0 with the first difference in why. */
static int fpe_client_equal(const Slotgate__V1__ClientMessage *a,
                            const Slotgate__V1__ClientMessage *b, char *why, size_t n)
{
#define FPE_DIFF(what)                        \
    do {                                      \
        snprintf(why, n, "%s differs", what); \
        return 0;                             \
    } while (0)
    if (a->msg_case != b->msg_case)
        FPE_DIFF("msg_case");
    if (a->base.n_unknown_fields != b->base.n_unknown_fields)
        FPE_DIFF("ClientMessage unknown fields");
    if (a->msg_case != SLOTGATE__V1__CLIENT_MESSAGE__MSG_REQUEST)
        FPE_DIFF("(not a request)");
    const Slotgate__V1__Request *x = a->request, *y = b->request;
    if ((x == NULL) != (y == NULL))
        FPE_DIFF("request presence");
    if (x == NULL)
        return 1;
    if (x->base.n_unknown_fields != y->base.n_unknown_fields)
        FPE_DIFF("Request unknown fields");
    if (x->id != y->id)
        FPE_DIFF("id");
    if (x->op != y->op)
        FPE_DIFF("op");
    if (!fpe_str_equal(x->keyspace, y->keyspace))
        FPE_DIFF("keyspace");
    if (x->n_keys != y->n_keys)
        FPE_DIFF("n_keys");
    for (size_t i = 0; i < x->n_keys; i++)
        if (!fpe_bytes_equal(&x->keys[i], &y->keys[i]))
            FPE_DIFF("keys[i]");
    if (x->n_values != y->n_values)
        FPE_DIFF("n_values");
    for (size_t i = 0; i < x->n_values; i++)
        if (!fpe_bytes_equal(&x->values[i], &y->values[i]))
            FPE_DIFF("values[i]");
    if (x->ttl_ms != y->ttl_ms)
        FPE_DIFF("ttl_ms");
    if (x->condition != y->condition)
        FPE_DIFF("condition");
    if (x->deadline_ms != y->deadline_ms)
        FPE_DIFF("deadline_ms");
    if (x->n_ttls_ms != y->n_ttls_ms)
        FPE_DIFF("n_ttls_ms");
    for (size_t i = 0; i < x->n_ttls_ms; i++)
        if (x->ttls_ms[i] != y->ttls_ms[i])
            FPE_DIFF("ttls_ms[i]");
    if (!fpe_bytes_equal(&x->pattern, &y->pattern))
        FPE_DIFF("pattern");
    if (!fpe_bytes_equal(&x->lease, &y->lease))
        FPE_DIFF("lease");
    if (x->version != y->version)
        FPE_DIFF("version");
    return 1;
#undef FPE_DIFF
}

#endif
