/*
 * envelope - how a value is stored in Redis. A value is stored as-is unless
 * it is compressed, versioned, a lease marker, or happens to begin with the
 * envelope magic; then it is wrapped:
 *
 *   offset 0..2  magic  0xFE 'S' 'G'
 *   offset 3     layout version (1)
 *   offset 4     flags: bit0 SNAPPY, bit1 VERSIONED, bit2 LEASE
 *   [VERSIONED]  8-byte big-endian version
 *   payload      the value (Snappy-compressed when SNAPPY), or the lease
 *                token when LEASE
 *
 * Pure functions, no I/O: unit-tested and fuzzed on their own.
 */
#ifndef SG_ENVELOPE_H
#define SG_ENVELOPE_H

#include <stddef.h>
#include <stdint.h>

#define SG_ENV_MAGIC0 0xFE
#define SG_ENV_MAGIC1 'S'
#define SG_ENV_MAGIC2 'G'
#define SG_ENV_VERSION 1
#define SG_ENV_HEADER 5
#define SG_ENV_SNAPPY 0x01
#define SG_ENV_VERSIONED 0x02
#define SG_ENV_LEASE 0x04

/* A value is stored compressed only when that saves at least 1/8 of it. */
#define SG_ENV_MIN_SAVING_DIV 8

enum sg_env_compress { SG_ENV_NO_COMPRESS = 0, SG_ENV_AUTO, SG_ENV_ALWAYS_TRY };

/*
 * Encode value for storage. compress: whether to try Snappy (AUTO tries
 * when len >= threshold). versioned: prepend version. Returns the stored
 * length; *out is either value itself (no copy needed) or a new buffer the
 * caller frees with free() (*owned = 1).
 */
size_t sg_envelope_encode(const uint8_t *value, size_t len, int compress, uint32_t threshold,
                          int versioned, uint64_t version, const uint8_t **out, int *owned);

/* Encode a lease marker holding token; the caller frees *out. */
size_t sg_envelope_lease(const uint8_t *token, size_t len, uint8_t **out);

enum sg_env_status {
    SG_ENV_OK = 0,
    SG_ENV_CORRUPT = -1,  /* magic present but the rest does not decode */
    SG_ENV_TOO_LARGE = -2 /* decoded size above max_len */
};

struct sg_env_decoded {
    const uint8_t *value; /* into stored, or into *buf when decompressed */
    size_t len;
    uint8_t *buf;     /* non-NULL when allocated: caller frees */
    int flags;        /* SG_ENV_* of the envelope, 0 for a raw value */
    uint64_t version; /* 0 unless VERSIONED */
};

/*
 * Decode a stored value. A value without the magic is returned as-is.
 * max_len bounds the decompressed size (a hostile or corrupt length claim
 * is refused before any allocation).
 */
int sg_envelope_decode(const uint8_t *stored, size_t len, size_t max_len,
                       struct sg_env_decoded *out);

/* 1 when stored begins with the envelope magic. */
int sg_envelope_has_magic(const uint8_t *stored, size_t len);

#endif
