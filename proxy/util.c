/*
 * util - allocation wrappers, monotonic clock, address parsing. The
 * allocators are the only place the proxy reacts to out-of-memory: a cache
 * proxy that cannot allocate is better restarted by its supervisor than
 * left limping with half-built sessions.
 */
#include "util.h"

#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "config.h"
#include "log.h"

static void sg_oom(size_t size)
{
    sg_log(SG_LOG_ERROR, "out of memory allocating %zu bytes", size);
    abort();
}

void *sg_malloc(size_t size)
{
    void *p = malloc(size ? size : 1);
    if (p == NULL)
        sg_oom(size);
    return p;
}

void *sg_calloc(size_t nmemb, size_t size)
{
    if (nmemb == 0 || size == 0)
        nmemb = size = 1;
    void *p = calloc(nmemb, size);
    if (p == NULL)
        sg_oom(nmemb * size);
    return p;
}

void *sg_realloc(void *ptr, size_t size)
{
    void *p = realloc(ptr, size ? size : 1);
    if (p == NULL)
        sg_oom(size);
    return p;
}

char *sg_strdup(const char *s)
{
    return sg_strndup(s, strlen(s));
}

char *sg_strndup(const char *s, size_t n)
{
    size_t len = strnlen(s, n);
    char *p = sg_malloc(len + 1);
    memcpy(p, s, len);
    p[len] = '\0';
    return p;
}

uint64_t sg_now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

static int sg_parse_port(const char *s, int *port)
{
    long v = 0;
    if (*s == '\0' || strlen(s) > 5)
        return -1;
    for (; *s; s++) {
        if (*s < '0' || *s > '9')
            return -1;
        v = v * 10 + (*s - '0');
    }
    if (v < 1 || v > 65535)
        return -1;
    *port = (int)v;
    return 0;
}

/* Characters allowed inside "[...]": hex digits, ':', '.', and a %zone id. */
static int sg_v6_char_ok(char c)
{
    return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == ':' ||
           c == '.' || c == '%' || c == '_' || c == '-';
}

/*
 * The port is what follows the last ':' outside brackets. A bracketed host
 * must be followed directly by ":port"; an unbracketed one may not contain
 * a second ':' (a bare IPv6 address is ambiguous and rejected).
 */
int sg_parse_hostport(const char *s, struct sg_addr *out)
{
    const char *host, *host_end, *port;
    if (s == NULL)
        return -1;
    if (s[0] == '[') {
        host = s + 1;
        host_end = strchr(host, ']');
        if (host_end == NULL || host_end[1] != ':')
            return -1;
        port = host_end + 2;
        for (const char *p = host; p < host_end; p++)
            if (!sg_v6_char_ok(*p))
                return -1;
        if (memchr(host, ':', (size_t)(host_end - host)) == NULL)
            return -1;
    } else {
        host = s;
        host_end = strchr(s, ':');
        if (host_end == NULL || strchr(host_end + 1, ':') != NULL)
            return -1;
        port = host_end + 1;
        for (const char *p = host; p < host_end; p++)
            if (*p <= ' ' || *p == '/' || *p == '[' || *p == ']' || *p == 0x7f)
                return -1;
    }
    size_t hlen = (size_t)(host_end - host);
    int portnum;
    if (hlen == 0 || hlen >= sizeof out->host || sg_parse_port(port, &portnum) != 0)
        return -1;
    memcpy(out->host, host, hlen);
    out->host[hlen] = '\0';
    out->port = portnum;
    return 0;
}
