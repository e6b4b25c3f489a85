/*
 * fuzz_envelope - the stored form of values, i.e. bytes that come back from
 * Redis. Decoding arbitrary bytes must not crash nor allocate more than the
 * bound it is given (sg_malloc is wrapped at link time, -Wl,--wrap, to see
 * every size envelope.c asks for), and every value must round-trip exactly
 * through every encoding the proxy uses: raw, compressed, versioned, lease,
 * and values that themselves begin with the envelope magic.
 */
#include <stdlib.h>
#include <string.h>

#include "fuzz.h"

#include "envelope.h"

#define FUZZ_MAX_LEN (1u << 20)

/* Link-time wrap of sg_malloc (see CMakeLists.txt): records the largest request. */
void *__real_sg_malloc(size_t size);
void *__wrap_sg_malloc(size_t size);

static int tracking;
static size_t largest_alloc;

void *__wrap_sg_malloc(size_t size)
{
    if (tracking && size > largest_alloc)
        largest_alloc = size;
    return __real_sg_malloc(size);
}

/* Decode arbitrary bytes with bound max_len and check the result's shape. */
static void check_decode_any(const uint8_t *stored, size_t len, size_t max_len)
{
    struct sg_env_decoded d;
    tracking = 1;
    largest_alloc = 0;
    int st = sg_envelope_decode(stored, len, max_len, &d);
    tracking = 0;
    SG_FUZZ_CHECK(largest_alloc <= (max_len ? max_len : 1));
    SG_FUZZ_CHECK(st == SG_ENV_OK || st == SG_ENV_CORRUPT || st == SG_ENV_TOO_LARGE);
    if (st != SG_ENV_OK) {
        SG_FUZZ_CHECK(sg_envelope_has_magic(stored, len));
        SG_FUZZ_CHECK(d.buf == NULL);
        return;
    }
    if (!sg_envelope_has_magic(stored, len)) {
        SG_FUZZ_CHECK(d.value == stored && d.len == len);
        SG_FUZZ_CHECK(d.flags == 0 && d.buf == NULL && d.version == 0);
        return;
    }
    SG_FUZZ_CHECK((d.flags & ~(SG_ENV_SNAPPY | SG_ENV_VERSIONED | SG_ENV_LEASE)) == 0);
    SG_FUZZ_CHECK(!(d.flags & SG_ENV_LEASE) || d.flags == SG_ENV_LEASE);
    SG_FUZZ_CHECK((d.flags & SG_ENV_VERSIONED) || d.version == 0);
    if (d.flags & SG_ENV_SNAPPY) {
        SG_FUZZ_CHECK(d.buf != NULL && d.value == d.buf);
        SG_FUZZ_CHECK(d.len <= max_len);
    } else {
        /* The payload is the rest of stored, in place. */
        SG_FUZZ_CHECK(d.buf == NULL);
        SG_FUZZ_CHECK(d.value >= stored + SG_ENV_HEADER && d.value + d.len == stored + len);
    }
    free(d.buf);
}

/* Decode stored and require exactly value (and version when versioned). */
static void check_decodes_to(const uint8_t *stored, size_t slen, const uint8_t *value, size_t len,
                             int versioned, uint64_t version)
{
    struct sg_env_decoded d;
    int st = sg_envelope_decode(stored, slen, len, &d);
    SG_FUZZ_CHECK(st == SG_ENV_OK);
    SG_FUZZ_CHECK(d.len == len);
    SG_FUZZ_CHECK(len == 0 || memcmp(d.value, value, len) == 0);
    SG_FUZZ_CHECK(!(d.flags & SG_ENV_LEASE));
    SG_FUZZ_CHECK(!!(d.flags & SG_ENV_VERSIONED) == !!versioned);
    if (versioned)
        SG_FUZZ_CHECK(d.version == version);
    free(d.buf);
}

static void check_round_trip(const uint8_t *value, size_t len, uint64_t version)
{
    static const struct {
        int compress;
        uint32_t threshold;
    } modes[] = {
        {SG_ENV_NO_COMPRESS, 0}, {SG_ENV_AUTO, 0}, {SG_ENV_AUTO, 1024}, {SG_ENV_ALWAYS_TRY, 0}};
    for (size_t i = 0; i < sizeof(modes) / sizeof(modes[0]); i++) {
        for (int versioned = 0; versioned <= 1; versioned++) {
            const uint8_t *out = NULL;
            int owned = 0;
            size_t slen = sg_envelope_encode(value, len, modes[i].compress, modes[i].threshold,
                                             versioned, version, &out, &owned);
            SG_FUZZ_CHECK(out != NULL);
            if (!owned) {
                /* Stored as-is only when nothing needs saying about it. */
                SG_FUZZ_CHECK(out == value && slen == len);
                SG_FUZZ_CHECK(!versioned && !sg_envelope_has_magic(value, len));
            } else {
                SG_FUZZ_CHECK(sg_envelope_has_magic(out, slen));
                if (out[4] & SG_ENV_SNAPPY)
                    SG_FUZZ_CHECK(slen <= len - len / SG_ENV_MIN_SAVING_DIV);
            }
            check_decodes_to(out, slen, value, len, versioned, version);
            if (owned)
                free((void *)out);
        }
    }
}

static void check_lease(const uint8_t *token, size_t len)
{
    uint8_t *out = NULL;
    size_t slen = sg_envelope_lease(token, len, &out);
    SG_FUZZ_CHECK(out != NULL && slen == SG_ENV_HEADER + len);
    struct sg_env_decoded d;
    SG_FUZZ_CHECK(sg_envelope_decode(out, slen, 0, &d) == SG_ENV_OK);
    SG_FUZZ_CHECK(d.flags == SG_ENV_LEASE && d.version == 0 && d.buf == NULL);
    SG_FUZZ_CHECK(d.len == len && (len == 0 || memcmp(d.value, token, len) == 0));
    free(out);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    /* An exact-size copy, so reading one byte too far is an ASan report. */
    uint8_t *exact = calloc(size ? size : 1, 1);
    uint8_t *buf = malloc(size + 3);
    if (exact == NULL || buf == NULL) {
        free(exact);
        free(buf);
        return 0;
    }
    if (size > 0) {
        memcpy(exact, data, size);
        memcpy(buf, data, size);
    }

    check_decode_any(exact, size, FUZZ_MAX_LEN);
    check_decode_any(exact, size, 0);
    check_decode_any(exact, size, size / 2);

    /* A version taken from the input, so 0 and UINT64_MAX both come up. */
    uint64_t version = size;
    if (size >= 8) {
        version = 0;
        for (size_t i = size - 8; i < size; i++)
            version = (version << 8) | buf[i];
    }
    check_round_trip(exact, size, version);
    check_lease(exact, size);
    free(exact);

    /* The same value behind the magic: must still come back untouched. */
    memmove(buf + 3, buf, size);
    buf[0] = SG_ENV_MAGIC0;
    buf[1] = SG_ENV_MAGIC1;
    buf[2] = SG_ENV_MAGIC2;
    check_round_trip(buf, size + 3, version);

    free(buf);
    return 0;
}
