/*
 * resp - RESP encoding straight into evbuffers for the shard links, the
 * classification of Redis error replies that drive redirects and retries,
 * and the pre-scan of reply headers against size limits.
 */
#include "resp.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <event2/buffer.h>

#include "util.h"

static size_t fmt_u64(char *buf, uint64_t v)
{
    char tmp[24];
    size_t n = 0;
    do {
        tmp[n++] = (char)('0' + v % 10);
        v /= 10;
    } while (v != 0);
    for (size_t i = 0; i < n; i++)
        buf[i] = tmp[n - 1 - i];
    return n;
}

/*
 * A failed append (evbuffer_add can fail on allocation) is remembered here,
 * per thread, until sg_resp_format_failed() reads it: the command formatters
 * call these functions many times and the shard link checks once, before
 * the command joins the link's output.
 */
static __thread int resp_failed;

static void resp_add(struct evbuffer *out, const void *p, size_t len)
{
    if (evbuffer_add(out, p, len) != 0)
        resp_failed = 1;
}

void sg_resp_mark_failed(void)
{
    resp_failed = 1;
}

int sg_resp_format_failed(void)
{
    int f = resp_failed;
    resp_failed = 0;
    return f;
}

/* A RESP header line into buf (room for 23 bytes): the type character,
 * then n, then CRLF. Its length. */
static size_t header_into(char *buf, char type, uint64_t n)
{
    size_t k = 0;
    buf[k++] = type;
    k += fmt_u64(buf + k, n);
    buf[k++] = '\r';
    buf[k++] = '\n';
    return k;
}

/* Append a RESP header line. */
static void put_header(struct evbuffer *out, char type, uint64_t n)
{
    char hdr[32];
    resp_add(out, hdr, header_into(hdr, type, n));
}

void sg_resp_begin(struct evbuffer *out, int argc)
{
    put_header(out, '*', (uint64_t)argc);
}

void sg_resp_arg(struct evbuffer *out, const void *p, size_t len)
{
    put_header(out, '$', len);
    if (len > 0)
        resp_add(out, p, len);
    resp_add(out, "\r\n", 2);
}

#define SG_RESP_REF_MIN 4096

void sg_resp_arg_ref(struct evbuffer *out, const void *p, size_t len)
{
    if (len < SG_RESP_REF_MIN) {
        sg_resp_arg(out, p, len);
        return;
    }
    put_header(out, '$', len);
    /* The CRLF after it by reference too: appended with evbuffer_add, it
     * would get a new chain sized like the referenced one (libevent sizes a
     * chain from the last one's), a 128 KiB malloc per 64 KiB value. */
    static const char crlf[2] = {'\r', '\n'};
    if (evbuffer_add_reference(out, p, len, NULL, NULL) != 0 ||
        evbuffer_add_reference(out, crlf, 2, NULL, NULL) != 0)
        resp_failed = 1;
}

void sg_resp_arg_buffer(struct evbuffer *out, struct evbuffer *value)
{
    size_t len = evbuffer_get_length(value), done = 0;
    put_header(out, '$', len);
    struct evbuffer_ptr at;
    if (evbuffer_ptr_set(value, &at, 0, EVBUFFER_PTR_SET) != 0) {
        resp_failed = 1;
        return;
    }
    while (done < len) {
        struct evbuffer_iovec v[8];
        int n = evbuffer_peek(value, -1, &at, v, 8);
        if (n <= 0) {
            resp_failed = 1;
            return;
        }
        size_t step = 0;
        for (int i = 0; i < n && i < 8; i++) {
            if (evbuffer_add_reference(out, v[i].iov_base, v[i].iov_len, NULL, NULL) != 0) {
                resp_failed = 1;
                return;
            }
            step += v[i].iov_len;
        }
        done += step;
        if (done < len && evbuffer_ptr_set(value, &at, step, EVBUFFER_PTR_ADD) != 0) {
            resp_failed = 1;
            return;
        }
    }
    static const char crlf[2] = {'\r', '\n'};
    if (evbuffer_add_reference(out, crlf, 2, NULL, NULL) != 0)
        resp_failed = 1;
}

/* What sg_resp_cmdv formats in one append. */
#define SG_RESP_CMD_BUF 512

int sg_resp_cmdv(struct evbuffer *out, int argc, const struct iovec *argv)
{
    char buf[SG_RESP_CMD_BUF];
    size_t k = header_into(buf, '*', (uint64_t)argc);
    for (int i = 0; i < argc; i++) {
        size_t len = argv[i].iov_len;
        if (k + 23 > sizeof(buf) || len > sizeof(buf)) /* a header is at most 23 bytes */
            return -1;
        k += header_into(buf + k, '$', len);
        if (k + len + 2 > sizeof(buf))
            return -1;
        if (len > 0)
            memcpy(buf + k, argv[i].iov_base, len);
        k += len;
        buf[k++] = '\r';
        buf[k++] = '\n';
    }
    resp_add(out, buf, k);
    return 0;
}

void sg_resp_cmd2(struct evbuffer *out, const char *cmd, const void *arg, size_t len)
{
    struct iovec v[2] = {{(void *)cmd, strlen(cmd)}, {(void *)arg, len}};
    if (sg_resp_cmdv(out, 2, v) == 0)
        return;
    sg_resp_begin(out, 2);
    sg_resp_arg(out, v[0].iov_base, v[0].iov_len);
    sg_resp_arg(out, arg, len);
}

size_t sg_resp_u64(char *buf, uint64_t v)
{
    return fmt_u64(buf, v);
}

void sg_resp_arg_str(struct evbuffer *out, const char *s)
{
    sg_resp_arg(out, s, strlen(s));
}

void sg_resp_arg_u64(struct evbuffer *out, uint64_t v)
{
    char buf[SG_RESP_U64_MAX];
    size_t n = fmt_u64(buf, v);
    sg_resp_arg(out, buf, n);
}

static int has_prefix(const char *s, size_t len, const char *p)
{
    size_t pl = strlen(p);
    return len >= pl && memcmp(s, p, pl) == 0;
}

/* "MOVED 3999 127.0.0.1:6381" / "ASK 3999 127.0.0.1:6381" */
static int parse_redirect(const char *s, size_t len, struct sg_addr *addr)
{
    char buf[300];
    if (len >= sizeof(buf))
        return -1;
    memcpy(buf, s, len);
    buf[len] = '\0';
    char *sp1 = strchr(buf, ' ');
    char *sp2 = sp1 ? strchr(sp1 + 1, ' ') : NULL;
    if (sp2 == NULL)
        return -1;
    return sg_parse_hostport(sp2 + 1, addr);
}

int sg_resp_classify_error(const char *str, size_t len, struct sg_addr *addr)
{
    if (has_prefix(str, len, "MOVED "))
        return parse_redirect(str, len, addr) == 0 ? SG_RESP_ERR_MOVED : SG_RESP_ERR_OTHER;
    if (has_prefix(str, len, "ASK "))
        return parse_redirect(str, len, addr) == 0 ? SG_RESP_ERR_ASK : SG_RESP_ERR_OTHER;
    if (has_prefix(str, len, "TRYAGAIN") || has_prefix(str, len, "LOADING") ||
        has_prefix(str, len, "MASTERDOWN") || has_prefix(str, len, "BUSY "))
        return SG_RESP_ERR_TRYAGAIN;
    if (has_prefix(str, len, "CLUSTERDOWN"))
        return SG_RESP_ERR_CLUSTERDOWN;
    return SG_RESP_ERR_OTHER;
}

/* --- pre-scan of replies ---------------------------------------------------- */

enum { SCAN_TYPE = 0, SCAN_NUM, SCAN_NUM_LF, SCAN_LINE, SCAN_BULK, SCAN_FAILED };

void sg_resp_scan_init(struct sg_resp_scan *s, uint64_t max_elements, uint64_t max_bulk)
{
    memset(s, 0, sizeof(*s));
    s->max_elements = max_elements;
    s->max_bulk = max_bulk;
    s->state = SCAN_TYPE;
}

static int scan_fail(struct sg_resp_scan *s, const char **why, const char *reason)
{
    s->state = SCAN_FAILED;
    if (why != NULL)
        *why = reason;
    return -1;
}

/* A complete "*N" or "$N" header: check N, then expect what follows it. */
static int scan_header_done(struct sg_resp_scan *s, const char **why)
{
    if (s->digits == 0)
        return scan_fail(s, why, "header without a number");
    if (s->neg) {
        if (s->num != 1) /* only -1 (nil) is meaningful */
            return scan_fail(s, why, "negative length other than -1");
        s->state = SCAN_TYPE;
        return 0;
    }
    if (s->type == '*') {
        if (s->num > s->max_elements)
            return scan_fail(s, why, "aggregate header over the element limit");
        s->state = SCAN_TYPE;
        return 0;
    }
    if (s->num > s->max_bulk)
        return scan_fail(s, why, "bulk header over the size limit");
    s->skip = s->num + 2;
    s->state = SCAN_BULK;
    return 0;
}

int sg_resp_scan(struct sg_resp_scan *s, const void *buf, size_t len, const char **why)
{
    const uint8_t *p = buf, *end = p + len;
    if (s->state == SCAN_FAILED)
        return scan_fail(s, why, "stream already refused");
    while (p < end) {
        switch (s->state) {
        case SCAN_TYPE: {
            uint8_t c = *p++;
            s->type = c;
            if (c == '*' || c == '$') {
                s->num = 0;
                s->neg = 0;
                s->digits = 0;
                s->state = SCAN_NUM;
            } else if (c == '+' || c == '-' || c == ':') {
                s->line = 0;
                s->cr = 0;
                s->state = SCAN_LINE;
            } else {
                return scan_fail(s, why, "byte that starts no RESP2 reply");
            }
            break;
        }
        case SCAN_NUM: {
            uint8_t c = *p++;
            if (c == '-' && s->digits == 0 && !s->neg) {
                s->neg = 1;
            } else if (c >= '0' && c <= '9') {
                if (++s->digits > 19)
                    return scan_fail(s, why, "header number too long");
                s->num = s->num * 10 + (uint64_t)(c - '0');
            } else if (c == '\r') {
                s->state = SCAN_NUM_LF;
            } else {
                return scan_fail(s, why, "bad character in a header number");
            }
            break;
        }
        case SCAN_NUM_LF:
            if (*p++ != '\n')
                return scan_fail(s, why, "header not ended by CRLF");
            if (scan_header_done(s, why) != 0)
                return -1;
            break;
        case SCAN_LINE: {
            /* Up to and including the "\r\n" that ends the line. */
            const uint8_t *nl = memchr(p, '\n', (size_t)(end - p));
            size_t n = nl != NULL ? (size_t)(nl - p) + 1 : (size_t)(end - p);
            int ended = nl != NULL && ((n >= 2 && nl[-1] == '\r') || (n == 1 && s->cr));
            if ((uint64_t)s->line + n > SG_RESP_SCAN_MAX_LINE)
                return scan_fail(s, why, "status or error line too long");
            s->line += (uint32_t)n;
            s->cr = p[n - 1] == '\r';
            p += n;
            if (ended)
                s->state = SCAN_TYPE;
            break;
        }
        case SCAN_BULK: {
            size_t n = (size_t)(end - p);
            if ((uint64_t)n > s->skip)
                n = (size_t)s->skip;
            s->skip -= n;
            p += n;
            if (s->skip == 0)
                s->state = SCAN_TYPE;
            break;
        }
        default:
            return scan_fail(s, why, "stream already refused");
        }
    }
    return 0;
}

int sg_resp_number(const char *p, size_t n, int64_t *v)
{
    const char *end = p + n;
    int neg = p < end && *p == '-';
    p += neg;
    if (p == end || (*p == '0' && (neg || p + 1 != end)))
        return -1;
    int64_t x = 0;
    for (; p < end; p++) {
        if (*p < '0' || *p > '9' || x > (INT64_MAX - 9) / 10)
            return -1;
        x = x * 10 + (*p - '0');
    }
    *v = neg ? -x : x;
    return 0;
}

int sg_resp_simple_header(const char *buf, size_t len, struct sg_resp_simple *out)
{
    if (len == 0)
        return SG_RESP_SIMPLE_MORE;
    if (buf[0] != '$' && buf[0] != '+' && buf[0] != ':')
        return SG_RESP_SIMPLE_NO;
    size_t scan = len < SG_RESP_SIMPLE_LINE ? len : SG_RESP_SIMPLE_LINE;
    const char *cr = memchr(buf, '\r', scan);
    if (cr == NULL || (size_t)(cr - buf) + 1 >= scan)
        return len < SG_RESP_SIMPLE_LINE ? SG_RESP_SIMPLE_MORE : SG_RESP_SIMPLE_NO;
    if (cr[1] != '\n')
        return SG_RESP_SIMPLE_NO;
    out->hlen = (size_t)(cr - buf) + 2;
    if (buf[0] == '+') {
        /* hiredis keeps a status line's bytes as they are, up to the CR */
        if (memchr(buf + 1, '\n', (size_t)(cr - buf) - 1) != NULL)
            return SG_RESP_SIMPLE_NO;
        out->type = REDIS_REPLY_STATUS;
        out->n = (int64_t)(cr - buf) - 1;
        return SG_RESP_SIMPLE_OK;
    }
    /* $len or :integer */
    int64_t v;
    if (sg_resp_number(buf + 1, (size_t)(cr - buf) - 1, &v) != 0)
        return SG_RESP_SIMPLE_NO;
    if (buf[0] == ':') {
        out->type = REDIS_REPLY_INTEGER;
        out->n = v;
        return SG_RESP_SIMPLE_OK;
    }
    if (v < -1)
        return SG_RESP_SIMPLE_NO;
    out->type = v < 0 ? REDIS_REPLY_NIL : REDIS_REPLY_STRING;
    out->n = v;
    return SG_RESP_SIMPLE_OK;
}
