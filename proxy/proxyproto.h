/*
 * proxyproto - the PROXY protocol header (HAProxy's spec, v1 text and v2
 * binary) that an L4 load balancer sends ahead of the client's bytes, and
 * the CIDR lists that say which peers may send one. Pure functions over
 * byte buffers, no I/O: the session reads the header off the socket before
 * the TLS handshake and asks sg_proxyproto_parse whether it has a whole one.
 */
#ifndef SG_PROXYPROTO_H
#define SG_PROXYPROTO_H

#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

/* Which headers a listener accepts (listen.proxy_protocol). */
enum sg_pp_mode { SG_PP_OFF = 0, SG_PP_V1 = 1, SG_PP_V2 = 2, SG_PP_ANY = 3 };

/* v1: the spec's longest line, CRLF included. */
#define SG_PP_V1_MAX 107
/* v2: the fixed part, and the bound on what follows it (addresses + TLVs).
 * HAProxy's own headers are 16 + 12 (IPv4) or 16 + 36 (IPv6) plus any TLVs
 * it was told to add; anything announcing more than this is refused. */
#define SG_PP_V2_FIXED 16
#define SG_PP_V2_MAX_BODY 512
#define SG_PP_MAX (SG_PP_V2_FIXED + SG_PP_V2_MAX_BODY)

struct sg_pp_header {
    int version; /* 1 or 2 */
    /* 1: use the socket's own endpoints: v2 LOCAL (health checks), v1
     * UNKNOWN, or a v2 PROXY of a family we do not carry (UNSPEC, UNIX,
     * UDP). 0: src/dst below are the original connection's. */
    int local;
    struct sockaddr_storage src, dst; /* AF_INET or AF_INET6, ports set */
    size_t len;                       /* bytes of the header, all consumed */
};

/*
 * Look for one PROXY header at the start of buf[0..len) for a listener in
 * mode (SG_PP_V1, SG_PP_V2 or SG_PP_ANY).
 * Returns the header's length (> 0) with *out filled when buf starts with a
 * whole, valid header; 0 when every byte so far is a valid beginning of one
 * and more are needed (every byte of buf is then part of the header, so a
 * caller may consume all of them); -1 when buf cannot start a valid header,
 * with a static reason in *why. Never reads outside buf.
 */
int sg_proxyproto_parse(const uint8_t *buf, size_t len, int mode, struct sg_pp_header *out,
                        const char **why);

/* One network of a trusted list: IPv4 or IPv6 address and prefix length. */
struct sg_cidr {
    int family; /* AF_INET or AF_INET6 */
    uint8_t addr[16];
    int prefix; /* 0..32 or 0..128 */
};

/*
 * Parse "a.b.c.d/n", "x::y/n" or a bare address (a host: /32 or /128).
 * Host bits beyond the prefix must be zero ("10.0.0.1/8" is refused: it
 * is almost always a typo). Returns 0, or -1 with a static reason in *why.
 */
int sg_cidr_parse(const char *s, struct sg_cidr *out, const char **why);

/* 1 when sa (AF_INET or AF_INET6; a v4-mapped IPv6 address counts as its
 * IPv4 address) is inside one of the n networks, else 0. */
int sg_cidr_match(const struct sg_cidr *list, int n, const struct sockaddr *sa);

/* "ip:port" or "[ip6]:port" of sa into buf; "?" for another family. */
void sg_sockaddr_format(const struct sockaddr *sa, char *buf, size_t len);

#endif
