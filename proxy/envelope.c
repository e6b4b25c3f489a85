/*
 * envelope - the stored form of values: Snappy compression on the way in,
 * restoration on the way out, and the wrapping that lets any byte string
 * (including one that starts with the magic) round-trip exactly.
 */
#include "envelope.h"

#include <stdlib.h>
#include <string.h>

#include <snappy-c.h>

#include "util.h"

int sg_envelope_has_magic(const uint8_t *stored, size_t len)
{
    return len >= 3 && stored[0] == SG_ENV_MAGIC0 && stored[1] == SG_ENV_MAGIC1 &&
           stored[2] == SG_ENV_MAGIC2;
}

static size_t put_header(uint8_t *p, int flags, uint64_t version)
{
    p[0] = SG_ENV_MAGIC0;
    p[1] = SG_ENV_MAGIC1;
    p[2] = SG_ENV_MAGIC2;
    p[3] = SG_ENV_VERSION;
    p[4] = (uint8_t)flags;
    if (!(flags & SG_ENV_VERSIONED))
        return SG_ENV_HEADER;
    for (int i = 0; i < 8; i++)
        p[SG_ENV_HEADER + i] = (uint8_t)(version >> (56 - 8 * i));
    return SG_ENV_HEADER + 8;
}

size_t sg_envelope_encode(const uint8_t *value, size_t len, int compress, uint32_t threshold,
                          int versioned, uint64_t version, const uint8_t **out, int *owned)
{
    int flags = versioned ? SG_ENV_VERSIONED : 0;
    size_t hdr = SG_ENV_HEADER + (versioned ? 8 : 0);
    int try_snappy = compress == SG_ENV_ALWAYS_TRY || (compress == SG_ENV_AUTO && len >= threshold);
    if (try_snappy && len > 0) {
        size_t cap = snappy_max_compressed_length(len);
        uint8_t *buf = sg_malloc(hdr + cap);
        size_t clen = cap;
        if (snappy_compress((const char *)value, len, (char *)buf + hdr, &clen) == SNAPPY_OK &&
            clen + hdr <= len - len / SG_ENV_MIN_SAVING_DIV) {
            put_header(buf, flags | SG_ENV_SNAPPY, version);
            *out = buf;
            *owned = 1;
            return hdr + clen;
        }
        free(buf);
    }
    if (!versioned && !sg_envelope_has_magic(value, len)) {
        *out = value;
        *owned = 0;
        return len;
    }
    uint8_t *buf = sg_malloc(hdr + len);
    put_header(buf, flags, version);
    if (len > 0)
        memcpy(buf + hdr, value, len);
    *out = buf;
    *owned = 1;
    return hdr + len;
}

size_t sg_envelope_lease(const uint8_t *token, size_t len, uint8_t **out)
{
    uint8_t *buf = sg_malloc(SG_ENV_HEADER + len);
    put_header(buf, SG_ENV_LEASE, 0);
    memcpy(buf + SG_ENV_HEADER, token, len);
    *out = buf;
    return SG_ENV_HEADER + len;
}

int sg_envelope_decode(const uint8_t *stored, size_t len, size_t max_len,
                       struct sg_env_decoded *out)
{
    memset(out, 0, sizeof(*out));
    if (!sg_envelope_has_magic(stored, len)) {
        out->value = stored;
        out->len = len;
        return SG_ENV_OK;
    }
    if (len < SG_ENV_HEADER || stored[3] != SG_ENV_VERSION)
        return SG_ENV_CORRUPT;
    int flags = stored[4];
    if (flags & ~(SG_ENV_SNAPPY | SG_ENV_VERSIONED | SG_ENV_LEASE))
        return SG_ENV_CORRUPT;
    if ((flags & SG_ENV_LEASE) && flags != SG_ENV_LEASE)
        return SG_ENV_CORRUPT;
    size_t off = SG_ENV_HEADER;
    if (flags & SG_ENV_VERSIONED) {
        if (len < off + 8)
            return SG_ENV_CORRUPT;
        for (int i = 0; i < 8; i++)
            out->version = (out->version << 8) | stored[off + i];
        off += 8;
    }
    out->flags = flags;
    const uint8_t *payload = stored + off;
    size_t plen = len - off;
    if (!(flags & SG_ENV_SNAPPY)) {
        out->value = payload;
        out->len = plen;
        return SG_ENV_OK;
    }
    size_t ulen = 0;
    if (snappy_uncompressed_length((const char *)payload, plen, &ulen) != SNAPPY_OK)
        return SG_ENV_CORRUPT;
    if (ulen > max_len)
        return SG_ENV_TOO_LARGE;
    uint8_t *buf = sg_malloc(ulen ? ulen : 1);
    size_t got = ulen;
    if (snappy_uncompress((const char *)payload, plen, (char *)buf, &got) != SNAPPY_OK ||
        got != ulen) {
        free(buf);
        return SG_ENV_CORRUPT;
    }
    out->value = buf;
    out->len = got;
    out->buf = buf;
    return SG_ENV_OK;
}
