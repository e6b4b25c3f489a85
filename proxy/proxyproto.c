/*
 * proxyproto - PROXY protocol v1/v2 header parsing and CIDR matching.
 * The parser is incremental in the simplest way: it is handed everything
 * read so far and either finds a whole header, asks for more, or refuses.
 * It rejects as early as it can (the first byte that cannot belong to a
 * header), so a client speaking TLS straight at a PROXY listener is closed
 * on its first read, not after the timeout.
 */
#include "proxyproto.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdio.h>
#include <string.h>

static const uint8_t pp_v2_sig[12] = {0x0D, 0x0A, 0x0D, 0x0A, 0x00, 0x0D,
                                      0x0A, 0x51, 0x55, 0x49, 0x54, 0x0A};
static const char pp_v1_sig[] = "PROXY ";

/* 1 when buf[0..len) is a prefix of sig[0..siglen) (or contains it). */
static int pp_prefix_of(const uint8_t *buf, size_t len, const void *sig, size_t siglen)
{
    size_t n = len < siglen ? len : siglen;
    return memcmp(buf, sig, n) == 0;
}

static int pp_fail(const char **why, const char *reason)
{
    if (why != NULL)
        *why = reason;
    return -1;
}

/* ---- v1 ------------------------------------------------------------------ */

/* Decimal port 0..65535, no sign, no leading zero (spec), whole string. */
static int pp_v1_port(const char *s, size_t n, uint16_t *out)
{
    if (n == 0 || n > 5 || (n > 1 && s[0] == '0'))
        return -1;
    uint32_t v = 0;
    for (size_t i = 0; i < n; i++) {
        if (s[i] < '0' || s[i] > '9')
            return -1;
        v = v * 10 + (uint32_t)(s[i] - '0');
    }
    if (v > 65535)
        return -1;
    *out = (uint16_t)v;
    return 0;
}

/* An IPv4 address in the spec's form: four 0..255 without leading zeros. */
static int pp_v1_ipv4(const char *s, size_t n, struct in_addr *out)
{
    char tmp[16];
    if (n == 0 || n >= sizeof tmp)
        return -1;
    memcpy(tmp, s, n);
    tmp[n] = '\0';
    /* inet_pton alone accepts "01.2.3.4" on some libcs: check the form. */
    int digits = 0, dots = 0;
    for (size_t i = 0; i < n; i++) {
        if (tmp[i] == '.') {
            if (digits == 0)
                return -1;
            dots++;
            digits = 0;
        } else if (tmp[i] >= '0' && tmp[i] <= '9') {
            if (digits == 1 && tmp[i - 1] == '0')
                return -1;
            digits++;
        } else {
            return -1;
        }
    }
    if (dots != 3 || digits == 0)
        return -1;
    return inet_pton(AF_INET, tmp, out) == 1 ? 0 : -1;
}

static int pp_v1_ipv6(const char *s, size_t n, struct in6_addr *out)
{
    char tmp[48];
    if (n == 0 || n >= sizeof tmp)
        return -1;
    memcpy(tmp, s, n);
    tmp[n] = '\0';
    for (size_t i = 0; i < n; i++)
        if (tmp[i] == '.' || tmp[i] == '%')
            return -1; /* no embedded IPv4, no zone: the spec's hex groups only */
    return inet_pton(AF_INET6, tmp, out) == 1 ? 0 : -1;
}

/*
 * "PROXY TCP4|TCP6 src dst sport dport\r\n" or "PROXY UNKNOWN...\r\n".
 * line is the whole line without CRLF (n bytes, no CR or LF inside).
 */
static int pp_v1_line(const char *line, size_t n, struct sg_pp_header *out, const char **why)
{
    const char *p = line + 6, *end = line + n; /* after "PROXY " */
    const char *fields[5];
    size_t lens[5];
    int nf = 0;

    if ((size_t)(end - p) >= 7 && memcmp(p, "UNKNOWN", 7) == 0 && (end - p == 7 || p[7] == ' ')) {
        out->local = 1; /* the rest of the line is ignored (spec) */
        return 0;
    }
    int fam;
    if ((size_t)(end - p) > 4 && memcmp(p, "TCP4 ", 5) == 0)
        fam = AF_INET;
    else if ((size_t)(end - p) > 4 && memcmp(p, "TCP6 ", 5) == 0)
        fam = AF_INET6;
    else
        return pp_fail(why, "v1: protocol is not TCP4, TCP6 or UNKNOWN");
    p += 5;
    while (p <= end && nf < 5) {
        const char *sp = memchr(p, ' ', (size_t)(end - p));
        const char *fe = sp != NULL ? sp : end;
        fields[nf] = p;
        lens[nf] = (size_t)(fe - p);
        nf++;
        if (sp == NULL)
            break;
        p = sp + 1;
    }
    if (nf != 4 || fields[3] + lens[3] != end)
        return pp_fail(why, "v1: expected exactly \"src dst sport dport\"");
    uint16_t sport, dport;
    if (pp_v1_port(fields[2], lens[2], &sport) != 0 || pp_v1_port(fields[3], lens[3], &dport) != 0)
        return pp_fail(why, "v1: bad port");
    memset(&out->src, 0, sizeof out->src);
    memset(&out->dst, 0, sizeof out->dst);
    if (fam == AF_INET) {
        struct sockaddr_in *s4 = (struct sockaddr_in *)&out->src;
        struct sockaddr_in *d4 = (struct sockaddr_in *)&out->dst;
        if (pp_v1_ipv4(fields[0], lens[0], &s4->sin_addr) != 0 ||
            pp_v1_ipv4(fields[1], lens[1], &d4->sin_addr) != 0)
            return pp_fail(why, "v1: bad IPv4 address");
        s4->sin_family = d4->sin_family = AF_INET;
        s4->sin_port = htons(sport);
        d4->sin_port = htons(dport);
    } else {
        struct sockaddr_in6 *s6 = (struct sockaddr_in6 *)&out->src;
        struct sockaddr_in6 *d6 = (struct sockaddr_in6 *)&out->dst;
        if (pp_v1_ipv6(fields[0], lens[0], &s6->sin6_addr) != 0 ||
            pp_v1_ipv6(fields[1], lens[1], &d6->sin6_addr) != 0)
            return pp_fail(why, "v1: bad IPv6 address");
        s6->sin6_family = d6->sin6_family = AF_INET6;
        s6->sin6_port = htons(sport);
        d6->sin6_port = htons(dport);
    }
    out->local = 0;
    return 0;
}

static int pp_v1(const uint8_t *buf, size_t len, struct sg_pp_header *out, const char **why)
{
    size_t sig = sizeof pp_v1_sig - 1;
    if (!pp_prefix_of(buf, len, pp_v1_sig, sig))
        return pp_fail(why, "v1: does not start with \"PROXY \"");
    size_t lim = len < SG_PP_V1_MAX ? len : SG_PP_V1_MAX;
    for (size_t i = 0; i < lim; i++) {
        if (buf[i] == '\r') {
            if (i + 2 > SG_PP_V1_MAX)
                return pp_fail(why, "v1: no CRLF within 107 bytes");
            if (i + 1 == len)
                return 0; /* CR is the last byte so far: LF may follow */
            if (buf[i + 1] != '\n')
                return pp_fail(why, "v1: CR not followed by LF");
            if (i < sig)
                return pp_fail(why, "v1: line ends inside \"PROXY \"");
            if (pp_v1_line((const char *)buf, i, out, why) != 0)
                return -1;
            out->version = 1;
            out->len = i + 2;
            return (int)out->len;
        }
        if (buf[i] == '\n' || buf[i] == '\0')
            return pp_fail(why, "v1: LF or NUL inside the line");
    }
    if (len >= SG_PP_V1_MAX)
        return pp_fail(why, "v1: no CRLF within 107 bytes");
    return 0;
}

/* ---- v2 ------------------------------------------------------------------ */

static uint16_t pp_be16(const uint8_t *p)
{
    return (uint16_t)((p[0] << 8) | p[1]);
}

/* TLVs after the addresses: type(1) length(2) value; all skipped, but they
 * must tile the rest of the header exactly. */
static int pp_v2_tlvs(const uint8_t *p, size_t n, const char **why)
{
    while (n > 0) {
        if (n < 3)
            return pp_fail(why, "v2: truncated TLV header");
        size_t vlen = pp_be16(p + 1);
        if (vlen > n - 3)
            return pp_fail(why, "v2: TLV longer than the header");
        p += 3 + vlen;
        n -= 3 + vlen;
    }
    return 0;
}

static int pp_v2(const uint8_t *buf, size_t len, struct sg_pp_header *out, const char **why)
{
    if (!pp_prefix_of(buf, len, pp_v2_sig, sizeof pp_v2_sig))
        return pp_fail(why, "v2: bad signature");
    if (len < 13)
        return 0;
    uint8_t ver = buf[12] >> 4, cmd = buf[12] & 0x0f;
    if (ver != 2)
        return pp_fail(why, "v2: version is not 2");
    if (cmd > 1)
        return pp_fail(why, "v2: command is neither LOCAL nor PROXY");
    if (len < 14)
        return 0;
    uint8_t fam = buf[13] >> 4, proto = buf[13] & 0x0f;
    if (fam > 3 || proto > 2)
        return pp_fail(why, "v2: unknown address family or transport");
    if (len < SG_PP_V2_FIXED)
        return 0;
    size_t body = pp_be16(buf + 14);
    if (body > SG_PP_V2_MAX_BODY)
        return pp_fail(why, "v2: address block over the size bound");
    if (len < SG_PP_V2_FIXED + body)
        return 0;

    const uint8_t *b = buf + SG_PP_V2_FIXED;
    size_t alen = 0;
    out->local = 1;
    memset(&out->src, 0, sizeof out->src);
    memset(&out->dst, 0, sizeof out->dst);
    if (fam == 1)
        alen = 12;
    else if (fam == 2)
        alen = 36;
    else if (fam == 3)
        alen = 216;
    if (alen > body)
        return pp_fail(why, "v2: address block shorter than its family needs");
    if (cmd == 1 && proto == 1 && fam == 1) {
        struct sockaddr_in *s4 = (struct sockaddr_in *)&out->src;
        struct sockaddr_in *d4 = (struct sockaddr_in *)&out->dst;
        s4->sin_family = d4->sin_family = AF_INET;
        memcpy(&s4->sin_addr, b, 4);
        memcpy(&d4->sin_addr, b + 4, 4);
        memcpy(&s4->sin_port, b + 8, 2);
        memcpy(&d4->sin_port, b + 10, 2);
        out->local = 0;
    } else if (cmd == 1 && proto == 1 && fam == 2) {
        struct sockaddr_in6 *s6 = (struct sockaddr_in6 *)&out->src;
        struct sockaddr_in6 *d6 = (struct sockaddr_in6 *)&out->dst;
        s6->sin6_family = d6->sin6_family = AF_INET6;
        memcpy(&s6->sin6_addr, b, 16);
        memcpy(&d6->sin6_addr, b + 16, 16);
        memcpy(&s6->sin6_port, b + 32, 2);
        memcpy(&d6->sin6_port, b + 34, 2);
        out->local = 0;
    }
    /* LOCAL, UNSPEC, UNIX or DGRAM: the real endpoints are used (spec). */
    if (pp_v2_tlvs(b + alen, body - alen, why) != 0)
        return -1;
    out->version = 2;
    out->len = SG_PP_V2_FIXED + body;
    return (int)out->len;
}

int sg_proxyproto_parse(const uint8_t *buf, size_t len, int mode, struct sg_pp_header *out,
                        const char **why)
{
    memset(out, 0, sizeof *out); /* src/dst all zero unless set below */
    if (mode != SG_PP_V1 && mode != SG_PP_V2 && mode != SG_PP_ANY)
        return pp_fail(why, "PROXY protocol is off");
    if (len == 0)
        return 0;
    /* The signatures differ in their first byte ('P' vs CR). */
    if (buf[0] == 'P') {
        if (!(mode & SG_PP_V1))
            return pp_fail(why, "v1 header where only v2 is accepted");
        return pp_v1(buf, len, out, why);
    }
    if (buf[0] == 0x0D) {
        if (!(mode & SG_PP_V2))
            return pp_fail(why, "v2 header where only v1 is accepted");
        return pp_v2(buf, len, out, why);
    }
    return pp_fail(why, "no PROXY header");
}

/* ---- CIDR -------------------------------------------------------------------- */

int sg_cidr_parse(const char *s, struct sg_cidr *out, const char **why)
{
    char host[64];
    const char *slash = strchr(s, '/');
    size_t hl = slash != NULL ? (size_t)(slash - s) : strlen(s);
    if (hl == 0 || hl >= sizeof host)
        return pp_fail(why, "expected an address or address/prefix");
    memcpy(host, s, hl);
    host[hl] = '\0';
    struct sg_cidr c;
    memset(&c, 0, sizeof c);
    int max;
    if (inet_pton(AF_INET, host, c.addr) == 1) {
        c.family = AF_INET;
        max = 32;
    } else if (inet_pton(AF_INET6, host, c.addr) == 1) {
        c.family = AF_INET6;
        max = 128;
    } else {
        return pp_fail(why, "not an IPv4 or IPv6 address");
    }
    c.prefix = max;
    if (slash != NULL) {
        const char *p = slash + 1;
        if (*p == '\0' || strlen(p) > 3)
            return pp_fail(why, "bad prefix length");
        int v = 0;
        for (; *p; p++) {
            if (*p < '0' || *p > '9')
                return pp_fail(why, "bad prefix length");
            v = v * 10 + (*p - '0');
        }
        if (v > max)
            return pp_fail(why, "prefix length too long for the address family");
        c.prefix = v;
    }
    for (int bit = c.prefix; bit < max; bit++)
        if (c.addr[bit / 8] & (0x80 >> (bit % 8)))
            return pp_fail(why, "address has bits set beyond the prefix length");
    *out = c;
    return 0;
}

static int cidr_has(const struct sg_cidr *c, int family, const uint8_t *addr)
{
    if (c->family != family)
        return 0;
    int full = c->prefix / 8, rest = c->prefix % 8;
    if (memcmp(c->addr, addr, (size_t)full) != 0)
        return 0;
    if (rest == 0)
        return 1;
    uint8_t mask = (uint8_t)(0xff << (8 - rest));
    return (c->addr[full] & mask) == (addr[full] & mask);
}

int sg_cidr_match(const struct sg_cidr *list, int n, const struct sockaddr *sa)
{
    int family;
    const uint8_t *addr;
    if (sa->sa_family == AF_INET) {
        family = AF_INET;
        addr = (const uint8_t *)&((const struct sockaddr_in *)sa)->sin_addr;
    } else if (sa->sa_family == AF_INET6) {
        const struct in6_addr *a6 = &((const struct sockaddr_in6 *)sa)->sin6_addr;
        if (IN6_IS_ADDR_V4MAPPED(a6)) {
            family = AF_INET;
            addr = (const uint8_t *)a6 + 12;
        } else {
            family = AF_INET6;
            addr = (const uint8_t *)a6;
        }
    } else {
        return 0;
    }
    for (int i = 0; i < n; i++)
        if (cidr_has(&list[i], family, addr))
            return 1;
    return 0;
}

void sg_sockaddr_format(const struct sockaddr *sa, char *buf, size_t len)
{
    char host[INET6_ADDRSTRLEN];
    if (sa->sa_family == AF_INET) {
        const struct sockaddr_in *in = (const struct sockaddr_in *)sa;
        inet_ntop(AF_INET, &in->sin_addr, host, sizeof host);
        snprintf(buf, len, "%s:%d", host, ntohs(in->sin_port));
    } else if (sa->sa_family == AF_INET6) {
        const struct sockaddr_in6 *in6 = (const struct sockaddr_in6 *)sa;
        inet_ntop(AF_INET6, &in6->sin6_addr, host, sizeof host);
        snprintf(buf, len, "[%s]:%d", host, ntohs(in6->sin6_port));
    } else {
        snprintf(buf, len, "?");
    }
}
