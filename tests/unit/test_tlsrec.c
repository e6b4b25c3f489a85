/*
 * test_tlsrec - the record layer's own KeyUpdate: after its share of
 * records under one write key, sg_tlsrec_seal puts a KeyUpdate
 * (update_not_requested) before the next record and seals it under the next
 * key; the peer opens every record in order, the data intact, and never
 * has to answer. With the default share nothing of the kind happens in the
 * first records. (Interop with OpenSSL, KeyUpdate from the peer, tickets
 * and every suite: test_conn; any record script: fuzz_tlsrec.)
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "tlsrec.h"

static unsigned char cs[32], ss[32];

/* Seal n records of growing size from me, open them at peer; the number of
 * KeyUpdates the peer saw. */
static int exchange(struct sg_tlsrec *me, struct sg_tlsrec *peer, int n)
{
    static unsigned char data[4096], out[SG_TLSREC_SEAL_ROOM(4096)], plain[SG_TLSREC_MAX_RECORD];
    int updates = 0;
    for (int i = 0; i < n; i++) {
        size_t len = 1 + (size_t)i * 97 % sizeof(data);
        for (size_t j = 0; j < len; j++)
            data[j] = (unsigned char)(i + j);
        struct iovec v = {data, len};
        size_t w = sg_tlsrec_seal(me, &v, 1, len, out);
        assert_true(w >= len + SG_TLSREC_OVERHEAD);
        assert_true(w <= SG_TLSREC_SEAL_ROOM(len));
        size_t at = 0;
        int got_data = 0;
        while (at < w) {
            size_t rl = sg_tlsrec_record_len(out + at);
            assert_true(rl > 0 && at + rl <= w);
            size_t n_plain = 0;
            int reply = 0;
            enum sg_tlsrec_open r = sg_tlsrec_open(peer, out + at, rl, plain, &n_plain, &reply);
            assert_int_equal(reply, 0); /* ours never asks for the peer's */
            if (r == SG_TLSREC_CONTROL) {
                assert_int_equal(got_data, 0); /* the KeyUpdate comes first */
                updates++;
            } else {
                assert_int_equal(r, SG_TLSREC_DATA);
                assert_int_equal(n_plain, len);
                assert_memory_equal(plain, data, len);
                got_data = 1;
            }
            at += rl;
        }
        assert_int_equal(got_data, 1);
    }
    return updates;
}

static void test_rekeys_after_its_share(void **state)
{
    (void)state;
    for (unsigned suite = 0x1301; suite <= 0x1303; suite++) {
        size_t hash = suite == 0x1302 ? 48 : 32;
        unsigned char c48[48] = {0}, s48[48] = {0};
        memcpy(c48, cs, sizeof(cs));
        memcpy(s48, ss, sizeof(ss));
        struct sg_tlsrec *me = sg_tlsrec_new(suite, c48, s48, hash, 0);
        struct sg_tlsrec *peer = sg_tlsrec_new(suite, s48, c48, hash, 1);
        assert_non_null(me);
        assert_non_null(peer);
        sg_tlsrec_set_rekey_after(me, 3);
        /* Records 1-3 under the first key, then a KeyUpdate before 4, 7, 10. */
        assert_int_equal(exchange(me, peer, 10), 3);
        sg_tlsrec_free(me);
        sg_tlsrec_free(peer);
    }
}

static void test_default_share_is_large(void **state)
{
    (void)state;
    struct sg_tlsrec *me = sg_tlsrec_new(0x1301, cs, ss, 32, 0);
    struct sg_tlsrec *peer = sg_tlsrec_new(0x1301, ss, cs, 32, 1);
    assert_int_equal(exchange(me, peer, 200), 0);
    sg_tlsrec_free(me);
    sg_tlsrec_free(peer);
}

int main(void)
{
    for (size_t i = 0; i < sizeof(cs); i++) {
        cs[i] = (unsigned char)(i * 3 + 1);
        ss[i] = (unsigned char)(i * 5 + 2);
    }
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_rekeys_after_its_share),
        cmocka_unit_test(test_default_share_is_large),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
