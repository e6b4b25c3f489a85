/*
 * fuzz_fastpb - the hand-written hot codec (fastpb.c) against protobuf-c on
 * every input. Decoding: whatever fastpb accepts, protobuf-c accepts with
 * the same content, and when fastpb declines it has allocated nothing; any
 * hot request protobuf-c decodes is, once packed canonically, taken by
 * fastpb. Encoding: any ServerMessage protobuf-c decodes from the input is
 * written by fastpb byte for byte as protobuf-c packs it (also with its
 * value left out and put in the gap, as a session sends a large value), or
 * left to it. Decoding with the first value left out (as a session takes a
 * large SET): taken exactly when the whole body is, with the same content
 * but that value's data.
 */
#include <stdlib.h>
#include <string.h>

#include "fuzz.h"

#include "fastpb.h"
#include "fastpb_equal.h"
#include "frame.h"

/* An allocator that counts what is live, so a decline can be checked to leave nothing. */

static int hot_op(int op)
{
    return op == SLOTGATE__V1__OP__OP_GET || op == SLOTGATE__V1__OP__OP_SET ||
           op == SLOTGATE__V1__OP__OP_DELETE || op == SLOTGATE__V1__OP__OP_MGET ||
           op == SLOTGATE__V1__OP__OP_MSET;
}

/* The body without the bytes of its first value, decoded around the gap;
 * fast is the whole body's decode (NULL: declined). */
static void check_gap(const uint8_t *body, size_t len, const Slotgate__V1__ClientMessage *fast)
{
    char why[128];
    size_t at = 0, vlen = 0;
    if (sg_fastpb_find_value(body, len, len, &at, &vlen) != 0 || vlen == 0)
        return;
    SG_FUZZ_CHECK(at + vlen <= len);
    /* Exact size, and the gap's bytes nowhere in it: reading them is an ASan report. */
    uint8_t *g = malloc(len - vlen ? len - vlen : 1);
    SG_FUZZ_CHECK(g != NULL);
    memcpy(g, body, at);
    memcpy(g + at, body + at + vlen, len - at - vlen);
    long live = fpe_live;
    Slotgate__V1__ClientMessage *gm =
        sg_fastpb_decode_client_gap(g, len - vlen, at, vlen, &fpe_counting);
    SG_FUZZ_CHECK((gm != NULL) == (fast != NULL));
    if (gm != NULL) {
        ProtobufCBinaryData *v = &gm->request->values[0];
        SG_FUZZ_CHECK(gm->request->n_values > 0 && v->data == NULL && v->len == vlen);
        SG_FUZZ_CHECK(memcmp(fast->request->values[0].data, body + at, vlen) == 0);
        v->data = fast->request->values[0].data;
        if (!fpe_client_equal(gm, fast, why, sizeof(why))) {
            fprintf(stderr, "gapped decode: %s\n", why);
            SG_FUZZ_CHECK(0);
        }
        v->data = NULL;
        sg_frame_free_client(gm, &fpe_counting);
    }
    SG_FUZZ_CHECK(fpe_live == live);
    free(g);
}

static void check_decode(const uint8_t *body, size_t len)
{
    char why[128];
    fpe_live = 0;
    Slotgate__V1__ClientMessage *fast = sg_fastpb_decode_client(body, len, &fpe_counting);
    if (fast == NULL)
        SG_FUZZ_CHECK(fpe_live == 0);
    check_gap(body, len, fast);
    Slotgate__V1__ClientMessage *ref = sg_frame_decode_client(body, len, NULL);
    if (fast != NULL) {
        SG_FUZZ_CHECK(ref != NULL);
        if (!fpe_client_equal(fast, ref, why, sizeof(why))) {
            fprintf(stderr, "fast decode: %s\n", why);
            SG_FUZZ_CHECK(0);
        }
        sg_frame_free_client(fast, &fpe_counting);
        SG_FUZZ_CHECK(fpe_live == 0);
    }
    /* Completeness: the canonical form of any hot request is fastpb's. */
    if (ref != NULL && ref->msg_case == SLOTGATE__V1__CLIENT_MESSAGE__MSG_REQUEST &&
        ref->base.n_unknown_fields == 0 && ref->request->base.n_unknown_fields == 0 &&
        hot_op(ref->request->op)) {
        size_t n = slotgate__v1__client_message__get_packed_size(ref);
        uint8_t *buf = malloc(n ? n : 1);
        SG_FUZZ_CHECK(buf != NULL);
        SG_FUZZ_CHECK(slotgate__v1__client_message__pack(ref, buf) == n);
        Slotgate__V1__ClientMessage *again = sg_fastpb_decode_client(buf, n, NULL);
        SG_FUZZ_CHECK(again != NULL);
        SG_FUZZ_CHECK(fpe_client_equal(again, ref, why, sizeof(why)));
        sg_frame_free_client(again, NULL);
        free(buf);
    }
    sg_frame_free_client(ref, NULL);
}

static void check_encode(const uint8_t *body, size_t len)
{
    Slotgate__V1__ServerMessage *m = slotgate__v1__server_message__unpack(NULL, len, body);
    if (m == NULL)
        return;
    size_t fast = sg_fastpb_server_size(m);
    if (m->msg_case == SLOTGATE__V1__SERVER_MESSAGE__MSG_RESPONSE &&
        m->base.n_unknown_fields == 0 && m->response->n_stats == 0 &&
        m->response->base.n_unknown_fields == 0) {
        int plain = 1;
        for (size_t i = 0; i < m->response->n_results; i++)
            plain &= m->response->results[i]->base.n_unknown_fields == 0;
        SG_FUZZ_CHECK(!plain || fast != 0); /* the shapes fastpb promises to write */
    }
    if (fast != 0) {
        size_t size = sg_frame_server_size(m);
        SG_FUZZ_CHECK(fast == size);
        uint8_t *a = malloc(size), *b = malloc(size);
        SG_FUZZ_CHECK(a != NULL && b != NULL);
        SG_FUZZ_CHECK(sg_frame_encode_server(m, a) == size);
        SG_FUZZ_CHECK(sg_fastpb_encode_server(m, b, size) == size);
        SG_FUZZ_CHECK(memcmp(a, b, size) == 0);
        /* Without the value's bytes (sent by reference), then put in the gap. */
        size_t vlen = m->response->value.len, gap = 0;
        SG_FUZZ_CHECK(sg_fastpb_encode_server_gap(m, b, size, &gap) == size - vlen);
        SG_FUZZ_CHECK(gap <= size - vlen && (vlen > 0 || gap == 0));
        memmove(b + gap + vlen, b + gap, size - vlen - gap);
        if (vlen > 0)
            memcpy(b + gap, m->response->value.data, vlen);
        SG_FUZZ_CHECK(memcmp(a, b, size) == 0);
        free(a);
        free(b);
    }
    slotgate__v1__server_message__free_unpacked(m, NULL);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    uint8_t *buf = sg_fuzz_exact_copy(data, size);
    if (buf == NULL)
        return 0;
    uint32_t body = 0;
    if (sg_frame_check(buf, size, UINT32_MAX, &body) == SG_FRAME_OK) {
        check_decode(buf + SG_FRAME_HEADER, body);
        check_encode(buf + SG_FRAME_HEADER, body);
    }
    check_decode(buf, size);
    check_encode(buf, size);
    free(buf);
    return 0;
}
