/*
 * slot - hash slot computation for the router. The CRC16 variant is the
 * XMODEM one (poly 0x1021, init 0) that Redis Cluster specifies; the tables
 * are generated once at first use rather than pasted.
 *
 * Eight bytes at a time ("slicing-by-8"): table k holds the CRC of a byte
 * followed by k zero bytes, so a word's eight bytes are looked up
 * independently and their CRCs XORed, instead of eight dependent steps.
 * The register's two bytes fold into the word's first two. The byte-wise
 * step finishes what is left; both give the same CRC (test_slot checks
 * every length against a bit-by-bit reference).
 */
#include "slot.h"

#include <pthread.h>
#include <string.h>

static uint16_t crc16_table[8][256];
static pthread_once_t crc16_once = PTHREAD_ONCE_INIT;

static void crc16_table_init(void)
{
    for (unsigned i = 0; i < 256; i++) {
        uint16_t crc = (uint16_t)(i << 8);
        for (int b = 0; b < 8; b++)
            crc = (crc & 0x8000) ? (uint16_t)((crc << 1) ^ 0x1021) : (uint16_t)(crc << 1);
        crc16_table[0][i] = crc;
    }
    for (int k = 1; k < 8; k++)
        for (unsigned i = 0; i < 256; i++) {
            uint16_t prev = crc16_table[k - 1][i];
            crc16_table[k][i] = (uint16_t)((prev << 8) ^ crc16_table[0][prev >> 8]);
        }
}

uint16_t sg_crc16(const void *buf, size_t len)
{
    const uint8_t *p = buf;
    uint16_t crc = 0;
    pthread_once(&crc16_once, crc16_table_init);
    for (; len >= 8; p += 8, len -= 8)
        crc = crc16_table[7][p[0] ^ (crc >> 8)] ^ crc16_table[6][p[1] ^ (crc & 0xff)] ^
              crc16_table[5][p[2]] ^ crc16_table[4][p[3]] ^ crc16_table[3][p[4]] ^
              crc16_table[2][p[5]] ^ crc16_table[1][p[6]] ^ crc16_table[0][p[7]];
    for (size_t i = 0; i < len; i++)
        crc = (uint16_t)((crc << 8) ^ crc16_table[0][((crc >> 8) ^ p[i]) & 0xff]);
    return crc;
}

/*
 * Redis hashes only the part between the first '{' and the first '}' after
 * it, and only when that part is non-empty; otherwise the whole key.
 */
uint16_t sg_slot_of_key(const void *key, size_t len)
{
    const uint8_t *k = key;
    const uint8_t *open = len ? memchr(k, '{', len) : NULL;
    if (open == NULL)
        return sg_crc16(k, len) & (SG_SLOTS - 1);
    size_t after = (size_t)(open - k) + 1;
    const uint8_t *close = memchr(open + 1, '}', len - after);
    if (close == NULL || close == open + 1)
        return sg_crc16(k, len) & (SG_SLOTS - 1);
    return sg_crc16(open + 1, (size_t)(close - open - 1)) & (SG_SLOTS - 1);
}
