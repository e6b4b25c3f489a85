/*
 * test_slot - sg_slot_of_key against slots computed by a real Redis
 * (CLUSTER KEYSLOT), read from keyslot_vectors.txt, which
 * gen_keyslot_vectors.sh produced once; plus the CRC16 check value.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "slot.h"

static int hexval(int c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    if (c >= 'A' && c <= 'F')
        return c - 'A' + 10;
    return -1;
}

static void test_crc16_check_value(void **state)
{
    (void)state;
    assert_int_equal(sg_crc16("123456789", 9), 0x31C3);
    assert_int_equal(sg_crc16("", 0), 0);
}

static void test_known_slots(void **state)
{
    (void)state;
    assert_int_equal(sg_slot_of_key("foo", 3), 12182);
    assert_int_equal(sg_slot_of_key("{user:123}:profile", 18), sg_slot_of_key("user:123", 8));
    assert_int_equal(sg_slot_of_key("{}", 2), sg_crc16("{}", 2) & 16383);
}

/*
 * Each non-comment line is "<slot> <hex key>" ("-" for the empty key). The
 * line buffer is large enough for the longest key in the file; a line that
 * does not fit fails the test rather than being split.
 */
static void test_redis_vectors(void **state)
{
    (void)state;
    FILE *f = fopen(SG_KEYSLOT_VECTORS, "r");
    assert_non_null(f);
    size_t cap = 1 << 16;
    char *line = malloc(cap);
    uint8_t *key = malloc(cap / 2);
    assert_non_null(line);
    assert_non_null(key);
    int n = 0, lineno = 0;
    while (fgets(line, (int)cap, f) != NULL) {
        lineno++;
        size_t len = strlen(line);
        assert_true(len > 0 && line[len - 1] == '\n');
        line[--len] = '\0';
        if (line[0] == '#' || len == 0)
            continue;
        char *sp = strchr(line, ' ');
        assert_non_null(sp);
        *sp = '\0';
        long want = strtol(line, NULL, 10);
        const char *hex = sp + 1;
        size_t klen = 0;
        if (strcmp(hex, "-") != 0) {
            size_t hl = strlen(hex);
            assert_int_equal(hl % 2, 0);
            for (size_t i = 0; i < hl; i += 2) {
                int hi = hexval(hex[i]), lo = hexval(hex[i + 1]);
                assert_true(hi >= 0 && lo >= 0);
                key[klen++] = (uint8_t)(hi << 4 | lo);
            }
        }
        uint16_t got = sg_slot_of_key(key, klen);
        if (got != want)
            fail_msg("line %d: key %s: got slot %u, Redis says %ld", lineno, hex, got, want);
        n++;
    }
    fclose(f);
    free(line);
    free(key);
    assert_true(n >= 300);
}

/* CRC16/XMODEM one bit at a time, straight from its definition. */
static uint16_t crc16_bitwise(const uint8_t *p, size_t len)
{
    uint16_t crc = 0;
    for (size_t i = 0; i < len; i++) {
        crc ^= (uint16_t)(p[i] << 8);
        for (int b = 0; b < 8; b++)
            crc = (crc & 0x8000) ? (uint16_t)((crc << 1) ^ 0x1021) : (uint16_t)(crc << 1);
    }
    return crc;
}

/* sg_crc16 reads eight bytes at a time, then one: every length from 0 to
 * 300, at every alignment, over random bytes, gives the bit-wise CRC. */
static void test_crc16_every_length(void **state)
{
    (void)state;
    uint8_t buf[320];
    uint32_t x = 2463534242u; /* xorshift32: the same bytes every run */
    for (size_t i = 0; i < sizeof(buf); i++) {
        x ^= x << 13, x ^= x >> 17, x ^= x << 5;
        buf[i] = (uint8_t)x;
    }
    for (size_t off = 0; off < 8; off++)
        for (size_t len = 0; len <= 300; len++)
            if (sg_crc16(buf + off, len) != crc16_bitwise(buf + off, len))
                fail_msg("offset %zu length %zu: got %04x, want %04x", off, len,
                         sg_crc16(buf + off, len), crc16_bitwise(buf + off, len));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_crc16_check_value),
        cmocka_unit_test(test_crc16_every_length),
        cmocka_unit_test(test_known_slots),
        cmocka_unit_test(test_redis_vectors),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
