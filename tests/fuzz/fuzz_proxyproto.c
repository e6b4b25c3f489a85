/*
 * fuzz_proxyproto - the PROXY protocol header, the first bytes slotgate
 * reads from a load balancer's connection, and the CIDR strings of
 * listen.proxy_trusted. For every mode it checks that the parser reads only
 * the bytes it is given, that a header it accepts is within the spec's size
 * bounds and does not depend on the bytes after it, that every shorter
 * prefix asks for more (the session relies on that to consume peeked bytes
 * safely), and that a refused buffer stays refused whatever follows it.
 */
#include <string.h>

#include <netinet/in.h>

#include "fuzz.h"

#include "proxyproto.h"

static const int modes[] = {SG_PP_V1, SG_PP_V2, SG_PP_ANY};

static void check_mode(const uint8_t *data, size_t size, int mode)
{
    struct sg_pp_header h;
    const char *why = NULL;
    int rc = sg_proxyproto_parse(data, size, mode, &h, &why);
    SG_FUZZ_CHECK(rc >= -1);
    if (rc > 0) {
        size_t n = (size_t)rc;
        SG_FUZZ_CHECK(n <= size && n == h.len);
        SG_FUZZ_CHECK(h.version == 1 || h.version == 2);
        SG_FUZZ_CHECK(h.version == 1 ? (mode & SG_PP_V1) && n <= SG_PP_V1_MAX
                                     : (mode & SG_PP_V2) && n <= SG_PP_MAX);
        if (!h.local)
            SG_FUZZ_CHECK((h.src.ss_family == AF_INET || h.src.ss_family == AF_INET6) &&
                          h.dst.ss_family == h.src.ss_family);
        /* Exactly the header: same answer without the bytes after it. */
        struct sg_pp_header h2;
        SG_FUZZ_CHECK(sg_proxyproto_parse(data, n, mode, &h2, &why) == rc);
        SG_FUZZ_CHECK(h2.local == h.local && memcmp(&h2.src, &h.src, sizeof h.src) == 0);
        for (size_t i = 0; i < n; i++)
            SG_FUZZ_CHECK(sg_proxyproto_parse(data, i, mode, &h2, &why) == 0);
    } else if (rc == 0) {
        SG_FUZZ_CHECK(size < SG_PP_MAX);
        for (size_t i = 0; i < size; i++)
            SG_FUZZ_CHECK(sg_proxyproto_parse(data, i, mode, &h, &why) == 0);
    } else {
        SG_FUZZ_CHECK(why != NULL);
        /* Refused stays refused, whatever comes next. */
        uint8_t *more = malloc(size + 20);
        memcpy(more, data, size);
        memcpy(more + size, "\r\n\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0", 20);
        SG_FUZZ_CHECK(sg_proxyproto_parse(more, size + 20, mode, &h, &why) == -1);
        free(more);
    }
}

static void check_cidr(const uint8_t *data, size_t size)
{
    char s[80];
    size_t n = size < sizeof s - 1 ? size : sizeof s - 1;
    memcpy(s, data, n);
    s[n] = '\0';
    struct sg_cidr c;
    const char *why = NULL;
    if (sg_cidr_parse(s, &c, &why) != 0) {
        SG_FUZZ_CHECK(why != NULL);
        return;
    }
    SG_FUZZ_CHECK(c.family == AF_INET ? c.prefix >= 0 && c.prefix <= 32
                                      : c.family == AF_INET6 && c.prefix >= 0 && c.prefix <= 128);
    /* The network's own address is inside it. */
    struct sockaddr_storage ss;
    memset(&ss, 0, sizeof ss);
    if (c.family == AF_INET) {
        struct sockaddr_in *in = (struct sockaddr_in *)&ss;
        in->sin_family = AF_INET;
        memcpy(&in->sin_addr, c.addr, 4);
    } else {
        struct sockaddr_in6 *in6 = (struct sockaddr_in6 *)&ss;
        in6->sin6_family = AF_INET6;
        memcpy(&in6->sin6_addr, c.addr, 16);
    }
    SG_FUZZ_CHECK(sg_cidr_match(&c, 1, (struct sockaddr *)&ss) == 1);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    uint8_t *buf = sg_fuzz_exact_copy(data, size);
    if (buf == NULL)
        return 0;
    for (size_t i = 0; i < sizeof modes / sizeof modes[0]; i++)
        check_mode(buf, size, modes[i]);
    check_cidr(buf, size);
    free(buf);
    return 0;
}
