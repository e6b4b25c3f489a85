/*
 * fuzz_resp - replies from Redis as the shard links and the topology manager
 * read them: hiredis's redisReader fed in chunks (split points derived from
 * the input's first byte, as a socket would cut them), every reply walked
 * and freed, every error reply classified by sg_resp_classify_error. The
 * replies must not depend on where the stream was cut, and a MOVED/ASK
 * target must be a usable host:port. As on a link, every chunk passes the
 * header pre-scan (sg_resp_scan) first and hiredis sees only what it let
 * through, so a header claiming gigabytes is refused before any allocation;
 * the scan's verdict must not depend on the cuts either. And the header
 * reader of the links' in-place path (sg_resp_simple_header) must agree
 * with hiredis on every simple reply it accepts.
 */
#include <stdlib.h>
#include <string.h>

#include <hiredis/hiredis.h>

#include "fuzz.h"

#include "config.h"
#include "resp.h"

#define FUZZ_MAX_DEPTH 64

static void check_classified(const char *str, size_t len)
{
    struct sg_addr addr;
    memset(&addr, 0x5a, sizeof(addr));
    int kind = sg_resp_classify_error(str, len, &addr);
    SG_FUZZ_CHECK(kind >= SG_RESP_ERR_OTHER && kind <= SG_RESP_ERR_CLUSTERDOWN);
    if (kind == SG_RESP_ERR_MOVED || kind == SG_RESP_ERR_ASK) {
        size_t hl = strnlen(addr.host, sizeof(addr.host));
        SG_FUZZ_CHECK(hl > 0 && hl < sizeof(addr.host));
        SG_FUZZ_CHECK(addr.port >= 1 && addr.port <= 65535);
        SG_FUZZ_CHECK(len >= 4 && (memcmp(str, "ASK ", 4) == 0 || memcmp(str, "MOVED ", 6) == 0));
    }
}

static uint64_t mix(uint64_t h, const void *p, size_t len)
{
    const uint8_t *b = p;
    for (size_t i = 0; i < len; i++)
        h = (h ^ b[i]) * 0x100000001b3ull;
    return h;
}

/* Walk one reply: check its shape, classify its errors, fold it into a digest. */
static uint64_t walk_reply(const redisReply *r, int depth, uint64_t h)
{
    SG_FUZZ_CHECK(r != NULL && depth <= FUZZ_MAX_DEPTH);
    int type = r->type;
    h = mix(h, &type, sizeof(type));
    switch (r->type) {
    case REDIS_REPLY_STRING:
    case REDIS_REPLY_STATUS:
    case REDIS_REPLY_ERROR:
        SG_FUZZ_CHECK(r->str != NULL && r->str[r->len] == '\0');
        h = mix(h, &r->len, sizeof(r->len));
        h = mix(h, r->str, r->len);
        if (r->type == REDIS_REPLY_ERROR) {
            /* An exact-size copy: the classifier gets no NUL to lean on. */
            char *copy = malloc(r->len ? r->len : 1);
            SG_FUZZ_CHECK(copy != NULL);
            memcpy(copy, r->str, r->len);
            check_classified(copy, r->len);
            free(copy);
        }
        break;
    case REDIS_REPLY_INTEGER:
        h = mix(h, &r->integer, sizeof(r->integer));
        break;
    case REDIS_REPLY_NIL:
        break;
    case REDIS_REPLY_ARRAY:
        h = mix(h, &r->elements, sizeof(r->elements));
        for (size_t i = 0; i < r->elements; i++)
            h = walk_reply(r->element[i], depth + 1, h);
        break;
    default:
        SG_FUZZ_CHECK(!"unknown reply type");
    }
    return h;
}

/* Small limits, so the fuzzer reaches them easily. */
#define FUZZ_MAX_ELEMENTS 4096
#define FUZZ_MAX_BULK (1u << 20)

struct outcome {
    uint64_t digest;
    size_t replies;
    int error;   /* the reader reported a protocol error */
    int refused; /* the pre-scan refused the stream */
};

/* Take every complete reply out of the reader; 0 to go on, -1 after an error. */
static int drain(redisReader *rd, struct outcome *o)
{
    for (;;) {
        void *reply = NULL;
        if (redisReaderGetReply(rd, &reply) != REDIS_OK) {
            SG_FUZZ_CHECK(reply == NULL && rd->err != 0 && rd->errstr[0] != '\0');
            o->error = 1;
            return -1;
        }
        if (reply == NULL)
            return 0;
        o->digest = walk_reply(reply, 0, o->digest);
        o->replies++;
        freeReplyObject(reply);
    }
}

/* Feed data in pseudo-random chunks drawn from split; split 0 = all at once. */
static void read_stream(const uint8_t *data, size_t size, uint8_t split, struct outcome *o)
{
    redisReader *rd = redisReaderCreate();
    SG_FUZZ_CHECK(rd != NULL);
    struct sg_resp_scan scan;
    sg_resp_scan_init(&scan, FUZZ_MAX_ELEMENTS, FUZZ_MAX_BULK);
    memset(o, 0, sizeof(*o));
    o->digest = 0xcbf29ce484222325ull;
    uint32_t rng = split * 2654435761u + 1;
    size_t off = 0;
    while (off < size) {
        size_t n = size - off;
        if (split != 0) {
            rng = rng * 1103515245u + 12345u;
            size_t cut = 1 + (rng >> 16) % (1 + (split & 0x3f));
            n = cut < n ? cut : n;
        }
        const char *why = NULL;
        if (sg_resp_scan(&scan, data + off, n, &why) != 0) {
            SG_FUZZ_CHECK(why != NULL && why[0] != '\0');
            o->refused = 1;
            break;
        }
        SG_FUZZ_CHECK(redisReaderFeed(rd, (const char *)data + off, n) == REDIS_OK);
        off += n;
        if (drain(rd, o) != 0)
            break;
    }
    redisReaderFree(rd);
}

/*
 * The shard links' in-place path reads a simple reply's header with
 * sg_resp_simple_header instead of hiredis: whatever it accepts as a whole
 * reply, hiredis must read as the same reply (type, length, bytes, value).
 * Every prefix of the input is tried as what has arrived so far.
 */
static void check_simple(const uint8_t *data, size_t size)
{
    for (size_t avail = 0; avail <= size && avail <= 64; avail++) {
        struct sg_resp_simple h;
        int rc = sg_resp_simple_header((const char *)data, avail, &h);
        SG_FUZZ_CHECK(rc == SG_RESP_SIMPLE_NO || rc == SG_RESP_SIMPLE_MORE ||
                      rc == SG_RESP_SIMPLE_OK);
        if (rc == SG_RESP_SIMPLE_MORE)
            SG_FUZZ_CHECK(avail < SG_RESP_SIMPLE_LINE);
        if (rc != SG_RESP_SIMPLE_OK)
            continue;
        SG_FUZZ_CHECK(h.hlen >= 3 && h.hlen <= avail && h.hlen <= SG_RESP_SIMPLE_LINE);
        size_t whole = h.hlen;
        if (h.type == REDIS_REPLY_STRING) {
            SG_FUZZ_CHECK(h.n >= 0);
            if ((uint64_t)h.n > size || whole + (size_t)h.n + 2 > size)
                continue; /* the payload has not arrived: nothing to compare */
            whole += (size_t)h.n + 2;
            if (data[whole - 2] != '\r' || data[whole - 1] != '\n')
                continue; /* the link refuses this (not ended by CRLF) */
        }
        redisReader *rd = redisReaderCreate();
        SG_FUZZ_CHECK(rd != NULL);
        SG_FUZZ_CHECK(redisReaderFeed(rd, (const char *)data, whole) == REDIS_OK);
        void *r = NULL;
        SG_FUZZ_CHECK(redisReaderGetReply(rd, &r) == REDIS_OK && r != NULL);
        const redisReply *reply = r;
        SG_FUZZ_CHECK(reply->type == h.type);
        if (h.type == REDIS_REPLY_INTEGER)
            SG_FUZZ_CHECK(reply->integer == h.n);
        if (h.type == REDIS_REPLY_STRING || h.type == REDIS_REPLY_STATUS) {
            SG_FUZZ_CHECK(reply->len == (size_t)h.n);
            size_t at = h.type == REDIS_REPLY_STRING ? h.hlen : 1;
            SG_FUZZ_CHECK(memcmp(reply->str, data + at, reply->len) == 0);
        }
        freeReplyObject(r);
        redisReaderFree(rd);
        break;
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    check_simple(data, size);
    struct outcome whole, cut;
    read_stream(data, size, 0, &whole);
    uint8_t split = size > 0 ? (uint8_t)(data[0] ^ size) : 1;
    read_stream(data, size, split ? split : 1, &cut);
    /* Replies taken before a refusal depend on where it fell: compare
     * everything only when the scan let the whole stream through. */
    SG_FUZZ_CHECK(whole.refused == cut.refused || whole.error || cut.error);
    if (!whole.refused && !cut.refused) {
        SG_FUZZ_CHECK(whole.error == cut.error);
        SG_FUZZ_CHECK(whole.replies == cut.replies);
        SG_FUZZ_CHECK(whole.digest == cut.digest);
    }

    /* The classifier on the raw bytes too (not only what hiredis lets through). */
    char *copy = (char *)sg_fuzz_exact_copy(data, size);
    if (copy != NULL) {
        check_classified(copy, size);
        free(copy);
    }
    return 0;
}
