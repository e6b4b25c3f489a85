/*
 * slot - hash slot computation for the router. The CRC16 variant is the
 * XMODEM one (poly 0x1021, init 0) that Redis Cluster specifies; the table is
 * generated once at first use rather than pasted.
 */
#include "slot.h"

#include <pthread.h>

static uint16_t crc16_table[256];
static pthread_once_t crc16_once = PTHREAD_ONCE_INIT;

static void crc16_table_init(void)
{
    for (unsigned i = 0; i < 256; i++) {
        uint16_t crc = (uint16_t)(i << 8);
        for (int b = 0; b < 8; b++)
            crc = (crc & 0x8000) ? (uint16_t)((crc << 1) ^ 0x1021) : (uint16_t)(crc << 1);
        crc16_table[i] = crc;
    }
}

uint16_t sg_crc16(const void *buf, size_t len)
{
    const uint8_t *p = buf;
    uint16_t crc = 0;
    pthread_once(&crc16_once, crc16_table_init);
    for (size_t i = 0; i < len; i++)
        crc = (uint16_t)((crc << 8) ^ crc16_table[((crc >> 8) ^ p[i]) & 0xff]);
    return crc;
}

/*
 * Redis hashes only the part between the first '{' and the first '}' after
 * it, and only when that part is non-empty; otherwise the whole key.
 */
uint16_t sg_slot_of_key(const void *key, size_t len)
{
    const uint8_t *k = key;
    size_t open, close;
    for (open = 0; open < len; open++)
        if (k[open] == '{')
            break;
    if (open == len)
        return sg_crc16(k, len) & (SG_SLOTS - 1);
    for (close = open + 1; close < len; close++)
        if (k[close] == '}')
            break;
    if (close == len || close == open + 1)
        return sg_crc16(k, len) & (SG_SLOTS - 1);
    return sg_crc16(k + open + 1, close - open - 1) & (SG_SLOTS - 1);
}
