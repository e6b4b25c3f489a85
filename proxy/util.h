/*
 * util - small helpers every part of the proxy uses: allocation wrappers
 * that log and abort() on out-of-memory (the project's one OOM policy, as in
 * Redis), a monotonic millisecond clock, and "host:port" parsing.
 */
#ifndef SG_UTIL_H
#define SG_UTIL_H

#include <stddef.h>
#include <stdint.h>

struct sg_addr; /* config.h */

/*
 * Never return NULL: on failure they log the size and abort(). A zero size
 * is treated as one byte so the result is always a unique pointer. The
 * caller owns the result and releases it with free().
 */
void *sg_malloc(size_t size);
void *sg_calloc(size_t nmemb, size_t size);
void *sg_realloc(void *ptr, size_t size);
char *sg_strdup(const char *s);
char *sg_strndup(const char *s, size_t n);

/* Milliseconds from CLOCK_MONOTONIC: for deadlines and intervals only. */
uint64_t sg_now_ms(void);

/*
 * Parse "host:port" or "[ipv6]:port" into out (brackets removed from the
 * host). The port must be 1..65535 in decimal; the host must be non-empty,
 * fit in out->host and hold no whitespace; an unbracketed host may not
 * contain ':'. Returns 0, or -1 leaving out unchanged.
 */
int sg_parse_hostport(const char *s, struct sg_addr *out);

#endif
