/*
 * slot - Redis Cluster hash slots: CRC16 (XMODEM) of the key, or of its
 * {hash tag} when the key has a non-empty one, modulo 16384. Pure function,
 * exactly Redis's keyHashSlot() rules.
 */
#ifndef SG_SLOT_H
#define SG_SLOT_H

#include <stddef.h>
#include <stdint.h>

#define SG_SLOTS 16384

uint16_t sg_crc16(const void *buf, size_t len);
uint16_t sg_slot_of_key(const void *key, size_t len);

#endif
