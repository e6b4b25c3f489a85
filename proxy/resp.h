/*
 * resp - the RESP side of the shard link: appending commands to an output
 * evbuffer without intermediate strings, reading error replies (MOVED, ASK,
 * TRYAGAIN, ...), the pre-scan of reply headers against size limits, and
 * the first line of a simple reply read in place. All pure: the links'
 * sockets are conn.c's.
 */
#ifndef SG_RESP_H
#define SG_RESP_H

#include <stddef.h>
#include <sys/uio.h>
#include <stdint.h>

#include <hiredis/hiredis.h>

#include "config.h"

struct evbuffer;

/* Append "*argc\r\n" then each argument as a bulk string. */
void sg_resp_begin(struct evbuffer *out, int argc);
void sg_resp_arg(struct evbuffer *out, const void *p, size_t len);
void sg_resp_arg_str(struct evbuffer *out, const char *s);
/*
 * A whole two-word command (GET key, UNLINK key, CLUSTER SLOTS): the same
 * bytes as sg_resp_begin(out, 2) and two sg_resp_arg, in one append when
 * they are short (every GET: one evbuffer_add instead of seven).
 */
void sg_resp_cmd2(struct evbuffer *out, const char *cmd, const void *arg, size_t len);
/*
 * A whole command of argc arguments in one append, the same bytes as
 * sg_resp_begin and an sg_resp_arg each: 0, or -1 with nothing appended
 * when its bytes would pass 512, or come within a header's 23 bytes of it
 * (the caller appends it piece by piece).
 */
int sg_resp_cmdv(struct evbuffer *out, int argc, const struct iovec *argv);
/* v in decimal digits into buf (SG_RESP_U64_MAX bytes, no NUL); their count. */
#define SG_RESP_U64_MAX 20
size_t sg_resp_u64(char *buf, uint64_t v);
/*
 * Same as sg_resp_arg, but large payloads are added by reference, not
 * copied: p must stay valid until the buffer has been written or freed.
 */
void sg_resp_arg_ref(struct evbuffer *out, const void *p, size_t len);
/*
 * The same for an argument that is value's bytes (in chains), added by
 * reference chain by chain: value must stay unchanged and alive until out
 * has been written or freed.
 */
void sg_resp_arg_buffer(struct evbuffer *out, struct evbuffer *value);
void sg_resp_arg_u64(struct evbuffer *out, uint64_t v);
/*
 * 1 if an append by the functions above failed on this thread since the
 * last call (and clears it), else 0. A command with a failed append is
 * incomplete and must not be sent.
 */
int sg_resp_format_failed(void);
/* A formatter that failed on its own (not through an append) says so. */
void sg_resp_mark_failed(void);

enum sg_resp_err {
    SG_RESP_ERR_OTHER = 0,
    SG_RESP_ERR_MOVED,
    SG_RESP_ERR_ASK,
    SG_RESP_ERR_TRYAGAIN, /* TRYAGAIN, LOADING, MASTERDOWN, BUSY */
    SG_RESP_ERR_CLUSTERDOWN
};

/* Classify an error reply; for MOVED/ASK fill addr with the target. */
int sg_resp_classify_error(const char *str, size_t len, struct sg_addr *addr);

/*
 * Pre-scan of the byte stream a Redis node sends, run on every chunk before
 * hiredis sees it. hiredis 0.14 allocates what a header claims (an array
 * header "*1000000000" is a calloc of 8 GB before any element arrives), so
 * the headers are checked here first: an aggregate claiming more than
 * max_elements, a bulk string claiming more than max_bulk bytes, a status,
 * error or integer line longer than SG_RESP_SCAN_MAX_LINE, or a byte that
 * cannot start a RESP2 reply, and the stream is refused. The scanner only
 * tokenizes (type byte, header line, bulk payload); it keeps a few words of
 * state across chunks and allocates nothing.
 */
#define SG_RESP_SCAN_MAX_LINE 65536

struct sg_resp_scan {
    uint64_t max_elements;
    uint64_t max_bulk;
    uint64_t num;   /* header number being read */
    uint64_t skip;  /* bulk payload bytes (and its CRLF) still to pass */
    uint32_t line;  /* bytes of the current line */
    uint8_t state;  /* private */
    uint8_t type;   /* type byte of the current header */
    uint8_t neg;    /* header number had a '-' */
    uint8_t digits; /* digits read in the header number */
    uint8_t cr;     /* last byte of a status/error/integer line was '\r' */
};

void sg_resp_scan_init(struct sg_resp_scan *s, uint64_t max_elements, uint64_t max_bulk);
/*
 * Scan the next len bytes of the stream. Returns 0 when every header seen
 * so far is within the limits, or -1 with a static reason in *why; after
 * -1 the stream cannot be trusted (the caller resets the link) and every
 * later call returns -1 too.
 */
int sg_resp_scan(struct sg_resp_scan *s, const void *buf, size_t len, const char **why);

/*
 * The header line of a simple reply at buf (len bytes available): a bulk
 * string ("$n", n >= 0), nil ("$-1"), status ("+text") or integer (":n").
 * SG_RESP_SIMPLE_OK fills out: type (hiredis's REDIS_REPLY_*), n (a bulk's
 * length, the integer, a status's length: its text is buf + 1), hlen (the
 * line with its CRLF; a bulk's n bytes and CRLF follow it).
 * SG_RESP_SIMPLE_MORE: the line is not complete yet. SG_RESP_SIMPLE_NO:
 * anything else (errors, arrays, a line longer than SG_RESP_SIMPLE_LINE,
 * a malformed number): for hiredis to read. Pure; never reads past len.
 */
#define SG_RESP_SIMPLE_LINE 24
enum { SG_RESP_SIMPLE_NO = 0, SG_RESP_SIMPLE_MORE, SG_RESP_SIMPLE_OK };
struct sg_resp_simple {
    int type;
    int64_t n;
    size_t hlen;
};
int sg_resp_simple_header(const char *buf, size_t len, struct sg_resp_simple *out);
/*
 * The number of a header line (the n bytes after its type byte, up to the
 * CR): decimal, maybe negative, nothing else, and written as Redis writes
 * it (hiredis refuses "007" and "-0"). 0 with *v, or -1.
 */
int sg_resp_number(const char *p, size_t n, int64_t *v);

#endif
