/*
 * fuzz_tlsrec - slotgate's TLS 1.3 record layer (tlsrec.c), both ends made
 * from the same pair of traffic secrets, driven by a script of records:
 *   - application data the peer seals reads back byte for byte;
 *   - a record of any inner content type the peer seals is answered as
 *     RFC 8446 says (data, close_notify, an ignored user_canceled, a
 *     KeyUpdate, or refused), and a KeyUpdate leaves both ends in step;
 *   - bytes that were not sealed with the key (a forged or damaged record)
 *     are refused, never delivered;
 *   - what slotgate seals the peer opens to the same bytes.
 * Input: byte 0 picks the cipher suite; then one op per step, its low two
 * bits the kind, the following bytes its length and content.
 */
#include <string.h>

#include "fuzz.h"

#include "tlsrec.h"

static const unsigned suites[] = {0x1301, 0x1302, 0x1303};

struct in {
    const uint8_t *p;
    size_t n;
};

static int take(struct in *in, size_t k, const uint8_t **out)
{
    if (in->n < k)
        return -1;
    *out = in->p;
    in->p += k;
    in->n -= k;
    return 0;
}

static unsigned char rec[SG_TLSREC_MAX_RECORD + 64], plain[SG_TLSREC_MAX_RECORD + 64];

/*
 * What RFC 8446 makes of a record with this inner type and content, on the
 * accept side or (client) the connect side, which also takes the server's
 * NewSessionTicket messages. *key_update: the record ends with a KeyUpdate.
 */
static enum sg_tlsrec_open expected(unsigned char type, const uint8_t *c, size_t len, int client,
                                    int *reply, int *key_update)
{
    *reply = 0;
    *key_update = 0;
    if (type == 23)
        return SG_TLSREC_DATA;
    if (type == 21 && len == 2)
        return c[1] == 0 ? SG_TLSREC_CLOSE : c[1] == 90 ? SG_TLSREC_CONTROL : SG_TLSREC_BAD;
    if (type != 22 || len == 0)
        return SG_TLSREC_BAD;
    size_t at = 0;
    while (at < len) {
        if (len - at < 4)
            return SG_TLSREC_BAD;
        size_t m = (size_t)c[at + 1] << 16 | (size_t)c[at + 2] << 8 | c[at + 3];
        if (m > len - at - 4)
            return SG_TLSREC_BAD;
        if (c[at] == 4 && client) {
            at += 4 + m;
            continue;
        }
        if (c[at] == 24 && m == 1 && at + 5 == len && c[at + 4] <= 1) {
            *reply = c[at + 4];
            *key_update = 1;
            return SG_TLSREC_CONTROL;
        }
        return SG_TLSREC_BAD;
    }
    return SG_TLSREC_CONTROL;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1)
        return 0;
    unsigned suite = suites[data[0] % 3];
    int client = (data[0] >> 2) & 1; /* which end "me" is */
    size_t hash = suite == 0x1302 ? 48 : 32;
    unsigned char cs[48], ss[48];
    for (size_t i = 0; i < sizeof(cs); i++) {
        cs[i] = (unsigned char)(i * 7 + 1);
        ss[i] = (unsigned char)(i * 13 + 5);
    }
    /* Ours reads the client's secret and writes the server's; the peer the reverse. */
    struct sg_tlsrec *me = sg_tlsrec_new(suite, cs, ss, hash, client);
    struct sg_tlsrec *peer = sg_tlsrec_new(suite, ss, cs, hash, !client);
    SG_FUZZ_CHECK(me != NULL && peer != NULL);
    struct in in = {data + 1, size - 1};
    const uint8_t *op, *lenb, *c;
    while (take(&in, 1, &op) == 0) {
        size_t len, got = 0, w;
        int reply = 0, want_reply;
        enum sg_tlsrec_open r;
        switch (op[0] & 3) {
        case 0: /* application data from the peer */
        case 3: /* ... or from us, to the peer */
            if (take(&in, 2, &lenb) != 0)
                goto done;
            len = ((size_t)lenb[0] << 8 | lenb[1]) % (SG_TLSREC_MAX_PLAIN + 1);
            if (len > in.n)
                len = in.n;
            if (len == 0 || take(&in, len, &c) != 0)
                goto done;
            {
                struct sg_tlsrec *from = (op[0] & 3) == 0 ? peer : me;
                struct sg_tlsrec *to = (op[0] & 3) == 0 ? me : peer;
                w = sg_tlsrec_seal_inner(from, 23, c, len, rec);
                SG_FUZZ_CHECK(w == len + SG_TLSREC_OVERHEAD);
                SG_FUZZ_CHECK(sg_tlsrec_record_len(rec) == w);
                r = sg_tlsrec_open(to, rec, w, plain, &got, &reply);
                SG_FUZZ_CHECK(r == SG_TLSREC_DATA && got == len && reply == 0);
                SG_FUZZ_CHECK(memcmp(plain, c, len) == 0);
            }
            break;
        case 1: /* any inner content type from the peer */
            if (take(&in, 2, &lenb) != 0)
                goto done;
            len = lenb[1] % 64;
            if (take(&in, len, &c) != 0)
                goto done;
            if (lenb[0] == 22 && len == 5 && c[0] == 24 && c[1] == 0 && c[2] == 0 && c[3] == 1 &&
                c[4] == 0) {
                /* A real KeyUpdate: the peer moves to its next key too. */
                w = sg_tlsrec_seal_key_update(peer, rec);
                SG_FUZZ_CHECK(w > 0);
                r = sg_tlsrec_open(me, rec, w, plain, &got, &reply);
                SG_FUZZ_CHECK(r == SG_TLSREC_CONTROL && reply == 0 && got == 0);
                break;
            }
            w = sg_tlsrec_seal_inner(peer, lenb[0], c, len, rec);
            SG_FUZZ_CHECK(w == len + SG_TLSREC_OVERHEAD);
            r = sg_tlsrec_open(me, rec, w, plain, &got, &reply);
            int key_update;
            enum sg_tlsrec_open want = expected(lenb[0], c, len, client, &want_reply, &key_update);
            /* A type of 0 puts the real type further back (it is padding). */
            if (lenb[0] == 0)
                goto done;
            SG_FUZZ_CHECK(r == want);
            SG_FUZZ_CHECK(r != SG_TLSREC_DATA || (got == len && memcmp(plain, c, len) == 0));
            SG_FUZZ_CHECK(r == SG_TLSREC_DATA || got == 0);
            if (r == SG_TLSREC_CONTROL && key_update) {
                /* Ours moved to the next read key; the peer did not: from
                 * here on its records no longer authenticate. */
                SG_FUZZ_CHECK(reply == want_reply);
                goto done;
            }
            if (r != SG_TLSREC_DATA && r != SG_TLSREC_CONTROL)
                goto done;
            break;
        case 2: /* bytes nobody sealed: a forged or damaged record */
            if (take(&in, 1, &lenb) != 0)
                goto done;
            len = lenb[0] * 67u % (SG_TLSREC_MAX_RECORD + 1);
            if (len > in.n)
                len = in.n;
            if (take(&in, len, &c) != 0 || len < SG_TLSREC_HEADER)
                goto done;
            memcpy(rec, c, len);
            w = sg_tlsrec_record_len(rec);
            if (w == 0 || w != len)
                break; /* refused from its header, or not a whole record */
            r = sg_tlsrec_open(me, rec, w, plain, &got, &reply);
            SG_FUZZ_CHECK(r == SG_TLSREC_BAD && got == 0 && reply == 0);
            goto done; /* the connection would be closed here */
        }
    }
done:
    sg_tlsrec_free(me);
    sg_tlsrec_free(peer);
    return 0;
}
