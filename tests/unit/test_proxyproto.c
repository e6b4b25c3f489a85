/*
 * test_proxyproto - the PROXY protocol header parser and the CIDR lists:
 * v1 TCP4/TCP6/UNKNOWN, v2 PROXY/LOCAL (IPv4, IPv6, UNSPEC, UNIX, UDP), TLVs
 * skipped, every prefix of a valid header asking for more, every malformed
 * case refused, the mode restrictions, and trusted-network matching.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <arpa/inet.h>
#include <netinet/in.h>

#include <cmocka.h>

#include "proxyproto.h"

static const uint8_t SIG[12] = {0x0D, 0x0A, 0x0D, 0x0A, 0x00, 0x0D,
                                0x0A, 0x51, 0x55, 0x49, 0x54, 0x0A};

static int parse(const void *buf, size_t len, int mode, struct sg_pp_header *h)
{
    const char *why = NULL;
    int rc = sg_proxyproto_parse(buf, len, mode, h, &why);
    if (rc < 0)
        assert_non_null(why);
    return rc;
}

/* Every strict prefix asks for more; the whole returns its length. */
static void expect_whole(const void *buf, size_t len, int mode, struct sg_pp_header *h)
{
    for (size_t i = 0; i < len; i++)
        if (parse(buf, i, mode, h) != 0)
            fail_msg("prefix of %zu bytes (of %zu) not accepted as incomplete", i, len);
    assert_int_equal(parse(buf, len, mode, h), (int)len);
    assert_int_equal(h->len, len);
}

static void expect_bad(const void *buf, size_t len, int mode)
{
    struct sg_pp_header h;
    if (parse(buf, len, mode, &h) != -1)
        fail_msg("%zu-byte header not refused", len);
}

static void expect_bad_str(const char *s, int mode)
{
    expect_bad(s, strlen(s), mode);
}

static void expect_v4(const struct sockaddr_storage *ss, const char *ip, int port)
{
    char buf[64];
    assert_int_equal(ss->ss_family, AF_INET);
    const struct sockaddr_in *in = (const struct sockaddr_in *)ss;
    inet_ntop(AF_INET, &in->sin_addr, buf, sizeof buf);
    assert_string_equal(buf, ip);
    assert_int_equal(ntohs(in->sin_port), port);
}

static void expect_v6(const struct sockaddr_storage *ss, const char *ip, int port)
{
    char buf[64];
    assert_int_equal(ss->ss_family, AF_INET6);
    const struct sockaddr_in6 *in = (const struct sockaddr_in6 *)ss;
    inet_ntop(AF_INET6, &in->sin6_addr, buf, sizeof buf);
    assert_string_equal(buf, ip);
    assert_int_equal(ntohs(in->sin6_port), port);
}

/* ---- v1 ------------------------------------------------------------------- */

static void test_v1_tcp4(void **state)
{
    struct sg_pp_header h;
    const char *s = "PROXY TCP4 192.168.0.1 192.168.0.11 56324 443\r\n";
    expect_whole(s, strlen(s), SG_PP_V1, &h);
    assert_int_equal(h.version, 1);
    assert_int_equal(h.local, 0);
    expect_v4(&h.src, "192.168.0.1", 56324);
    expect_v4(&h.dst, "192.168.0.11", 443);
    /* The TLS bytes that follow are not part of the header. */
    char buf[128];
    snprintf(buf, sizeof buf, "%s\x16\x03\x01", s);
    assert_int_equal(parse(buf, strlen(buf), SG_PP_ANY, &h), (int)strlen(s));
    /* Extremes: 0 and 65535, 0.0.0.0 and 255.255.255.255. */
    s = "PROXY TCP4 255.255.255.255 0.0.0.0 65535 0\r\n";
    expect_whole(s, strlen(s), SG_PP_ANY, &h);
    expect_v4(&h.src, "255.255.255.255", 65535);
}

static void test_v1_tcp6(void **state)
{
    struct sg_pp_header h;
    const char *s = "PROXY TCP6 2001:db8::1 ::1 1234 7420\r\n";
    expect_whole(s, strlen(s), SG_PP_V1, &h);
    assert_int_equal(h.local, 0);
    expect_v6(&h.src, "2001:db8::1", 1234);
    expect_v6(&h.dst, "::1", 7420);
    /* The longest TCP6 line the spec allows (104 bytes). */
    s = "PROXY TCP6 ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff "
        "ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff 65535 65535\r\n";
    assert_int_equal(strlen(s), 104);
    expect_whole(s, strlen(s), SG_PP_V1, &h);
    expect_v6(&h.src, "ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff", 65535);
}

static void test_v1_unknown(void **state)
{
    struct sg_pp_header h;
    const char *s = "PROXY UNKNOWN\r\n";
    expect_whole(s, strlen(s), SG_PP_V1, &h);
    assert_int_equal(h.local, 1);
    s = "PROXY UNKNOWN ffff:f::1 ffff:f::2 65535 65535\r\n";
    expect_whole(s, strlen(s), SG_PP_ANY, &h);
    assert_int_equal(h.local, 1);
    /* 107 bytes is the limit, CRLF included. */
    char line[200];
    memset(line, 'x', sizeof line);
    memcpy(line, "PROXY UNKNOWN ", 14);
    memcpy(line + 105, "\r\n", 2);
    assert_int_equal(parse(line, 107, SG_PP_V1, &h), 107);
    memcpy(line + 105, "x\r\n", 3);
    expect_bad(line, 108, SG_PP_V1);
    expect_bad(line, 107, SG_PP_V1); /* no CRLF within 107 bytes */
}

static void test_v1_malformed(void **state)
{
    const char *bad[] = {
        "PROXY TCP5 1.2.3.4 5.6.7.8 1 2\r\n",
        "PROXY TCP4 1.2.3.4 5.6.7.8 1 2\n",
        "PROXY TCP4 1.2.3.4 5.6.7.8 1 2\rX",
        "PROXY TCP4 1.2.3.4 5.6.7.8 1\r\n",
        "PROXY TCP4 1.2.3.4 5.6.7.8 1 2 3\r\n",
        "PROXY TCP4 1.2.3.4 5.6.7.8 1 65536\r\n",
        "PROXY TCP4 1.2.3.4 5.6.7.8 01 2\r\n",
        "PROXY TCP4 1.2.3.4 5.6.7.8 -1 2\r\n",
        "PROXY TCP4 01.2.3.4 5.6.7.8 1 2\r\n",
        "PROXY TCP4 1.2.3 5.6.7.8 1 2\r\n",
        "PROXY TCP4 1.2.3.256 5.6.7.8 1 2\r\n",
        "PROXY TCP4 ::1 5.6.7.8 1 2\r\n",
        "PROXY TCP6 1.2.3.4 ::1 1 2\r\n",
        "PROXY TCP6 ::ffff:1.2.3.4 ::1 1 2\r\n",
        "PROXY TCP4  1.2.3.4 5.6.7.8 1 2\r\n",
        "PROXY TCP4 1.2.3.4 5.6.7.8 1 2 \r\n",
        "PROXY TCP4\r\n",
        "PROXY \r\n",
        "PROXY\r\n",
        "proxy TCP4 1.2.3.4 5.6.7.8 1 2\r\n",
        "PROXY UNKNOWNX\r\n",
        "GET / HTTP/1.1\r\n",
        "\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03",
        "PROXY TCP4 1.2.3.4\r\n5.6.7.8 1 2\r\n",
        "P\r\n",
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
        expect_bad_str(bad[i], SG_PP_ANY);
    expect_bad("PROXY TCP4 1.2.3.4\0 5.6.7.8 1 2\r\n", 33, SG_PP_ANY);
    /* Refused at the first impossible byte, not after a timeout. */
    expect_bad("PROXY-", 6, SG_PP_V1);
    expect_bad("X", 1, SG_PP_ANY);
    /* No CRLF within 107 bytes, however the bytes trickle in. */
    char line[200];
    memset(line, 'x', sizeof line);
    memcpy(line, "PROXY TCP4 ", 11);
    struct sg_pp_header h;
    assert_int_equal(parse(line, 106, SG_PP_V1, &h), 0);
    expect_bad(line, 107, SG_PP_V1);
    expect_bad(line, 200, SG_PP_V1);
}

/* ---- v2 ------------------------------------------------------------------- */

static size_t v2(uint8_t *out, uint8_t ver_cmd, uint8_t fam, const uint8_t *body, size_t len)
{
    memcpy(out, SIG, 12);
    out[12] = ver_cmd;
    out[13] = fam;
    out[14] = (uint8_t)(len >> 8);
    out[15] = (uint8_t)len;
    if (len > 0)
        memcpy(out + 16, body, len);
    return 16 + len;
}

static const uint8_t V4_BODY[12] = {10, 1, 2, 3, 192, 168, 0, 11, 0xdc, 0x04, 0x01, 0xbb};

static void test_v2_proxy_tcp4(void **state)
{
    uint8_t buf[600];
    struct sg_pp_header h;
    size_t n = v2(buf, 0x21, 0x11, V4_BODY, sizeof V4_BODY);
    expect_whole(buf, n, SG_PP_V2, &h);
    assert_int_equal(h.version, 2);
    assert_int_equal(h.local, 0);
    expect_v4(&h.src, "10.1.2.3", 56324);
    expect_v4(&h.dst, "192.168.0.11", 443);
    /* Bytes after the header are left alone. */
    buf[n] = 0x16;
    assert_int_equal(parse(buf, n + 1, SG_PP_ANY, &h), (int)n);
}

static void test_v2_proxy_tcp6(void **state)
{
    uint8_t body[36] = {0}, buf[64];
    struct sg_pp_header h;
    body[0] = 0x20, body[1] = 0x01, body[2] = 0x0d, body[3] = 0xb8, body[15] = 7; /* 2001:db8::7 */
    body[31] = 1;                                                                 /* ::1 */
    body[32] = 0x30, body[33] = 0x39;                                             /* 12345 */
    body[34] = 0x1c, body[35] = 0xfc;                                             /* 7420 */
    size_t n = v2(buf, 0x21, 0x21, body, sizeof body);
    expect_whole(buf, n, SG_PP_ANY, &h);
    assert_int_equal(h.local, 0);
    expect_v6(&h.src, "2001:db8::7", 12345);
    expect_v6(&h.dst, "::1", 7420);
}

static void test_v2_local(void **state)
{
    uint8_t buf[64];
    struct sg_pp_header h;
    /* HAProxy's health-check form: LOCAL, UNSPEC, no address. */
    size_t n = v2(buf, 0x20, 0x00, NULL, 0);
    expect_whole(buf, n, SG_PP_V2, &h);
    assert_int_equal(h.local, 1);
    assert_int_equal(h.len, 16);
    /* LOCAL with an address block: skipped, the real endpoints are used. */
    n = v2(buf, 0x20, 0x11, V4_BODY, sizeof V4_BODY);
    assert_int_equal(parse(buf, n, SG_PP_V2, &h), (int)n);
    assert_int_equal(h.local, 1);
}

static void test_v2_other_families(void **state)
{
    uint8_t buf[300], body[216] = {0};
    struct sg_pp_header h;
    /* PROXY with UNSPEC, UNIX stream, UDP over IPv4: real endpoints. */
    size_t n = v2(buf, 0x21, 0x00, NULL, 0);
    assert_int_equal(parse(buf, n, SG_PP_V2, &h), 16);
    assert_int_equal(h.local, 1);
    n = v2(buf, 0x21, 0x31, body, sizeof body);
    assert_int_equal(parse(buf, n, SG_PP_V2, &h), (int)n);
    assert_int_equal(h.local, 1);
    n = v2(buf, 0x21, 0x12, V4_BODY, sizeof V4_BODY);
    assert_int_equal(parse(buf, n, SG_PP_V2, &h), (int)n);
    assert_int_equal(h.local, 1);
}

static void test_v2_tlvs_skipped(void **state)
{
    uint8_t body[64], buf[128];
    struct sg_pp_header h;
    size_t n = 0;
    memcpy(body, V4_BODY, 12);
    n = 12;
    const uint8_t tlvs[] = {0x01, 0x00, 0x02, 'h',  '2',        /* ALPN */
                            0x04, 0x00, 0x03, 0x00, 0x00, 0x00, /* NOOP */
                            0x05, 0x00, 0x00};                  /* UNIQUE_ID, empty */
    memcpy(body + n, tlvs, sizeof tlvs);
    n += sizeof tlvs;
    size_t total = v2(buf, 0x21, 0x11, body, n);
    expect_whole(buf, total, SG_PP_V2, &h);
    expect_v4(&h.src, "10.1.2.3", 56324);
    /* The largest body allowed. */
    uint8_t big[SG_PP_MAX + 8], bigbody[SG_PP_V2_MAX_BODY];
    memset(bigbody, 0, sizeof bigbody);
    memcpy(bigbody, V4_BODY, 12);
    bigbody[12] = 0x04; /* one NOOP TLV filling the rest */
    bigbody[13] = (uint8_t)((SG_PP_V2_MAX_BODY - 15) >> 8);
    bigbody[14] = (uint8_t)(SG_PP_V2_MAX_BODY - 15);
    total = v2(big, 0x21, 0x11, bigbody, sizeof bigbody);
    assert_int_equal(parse(big, total, SG_PP_V2, &h), SG_PP_MAX);
}

static void test_v2_malformed(void **state)
{
    uint8_t buf[700], body[600] = {0};
    size_t n;
    memcpy(body, V4_BODY, 12);

    n = v2(buf, 0x21, 0x11, V4_BODY, 12);
    buf[5] ^= 0xff; /* signature */
    expect_bad(buf, n, SG_PP_V2);
    expect_bad(buf, 6, SG_PP_V2);         /* refused as soon as the byte is seen */
    n = v2(buf, 0x11, 0x11, V4_BODY, 12); /* version 1 */
    expect_bad(buf, n, SG_PP_V2);
    expect_bad(buf, 13, SG_PP_V2);
    n = v2(buf, 0x31, 0x11, V4_BODY, 12); /* version 3 */
    expect_bad(buf, n, SG_PP_V2);
    n = v2(buf, 0x22, 0x11, V4_BODY, 12); /* command 2 */
    expect_bad(buf, n, SG_PP_V2);
    n = v2(buf, 0x2f, 0x11, V4_BODY, 12); /* command 15 */
    expect_bad(buf, n, SG_PP_V2);
    n = v2(buf, 0x21, 0x41, V4_BODY, 12); /* family 4 */
    expect_bad(buf, n, SG_PP_V2);
    expect_bad(buf, 14, SG_PP_V2);
    n = v2(buf, 0x21, 0x13, V4_BODY, 12); /* transport 3 */
    expect_bad(buf, n, SG_PP_V2);
    n = v2(buf, 0x21, 0x11, V4_BODY, 11); /* IPv4 needs 12 */
    expect_bad(buf, n, SG_PP_V2);
    n = v2(buf, 0x21, 0x21, body, 35); /* IPv6 needs 36 */
    expect_bad(buf, n, SG_PP_V2);
    n = v2(buf, 0x21, 0x31, body, 215); /* UNIX needs 216 */
    expect_bad(buf, n, SG_PP_V2);
    n = v2(buf, 0x21, 0x11, body, SG_PP_V2_MAX_BODY + 1); /* over the bound */
    expect_bad(buf, n, SG_PP_V2);
    expect_bad(buf, 16, SG_PP_V2); /* refused from the length field alone */
    buf[14] = 0xff, buf[15] = 0xff;
    expect_bad(buf, 16, SG_PP_V2);
    /* TLVs that do not tile the rest of the header. */
    body[12] = 0x04;
    n = v2(buf, 0x21, 0x11, body, 13); /* one byte of a TLV header */
    expect_bad(buf, n, SG_PP_V2);
    n = v2(buf, 0x21, 0x11, body, 14); /* two bytes */
    expect_bad(buf, n, SG_PP_V2);
    body[13] = 0x00, body[14] = 0x05;
    n = v2(buf, 0x21, 0x11, body, 12 + 3 + 4); /* value one byte short */
    expect_bad(buf, n, SG_PP_V2);
}

static void test_modes(void **state)
{
    uint8_t buf[64];
    struct sg_pp_header h;
    const char *v1 = "PROXY TCP4 1.2.3.4 5.6.7.8 1 2\r\n";
    size_t n = v2(buf, 0x21, 0x11, V4_BODY, 12);
    expect_bad_str(v1, SG_PP_V2);
    expect_bad(buf, n, SG_PP_V1);
    expect_bad(buf, 1, SG_PP_V1);
    expect_bad(v1, 1, SG_PP_V2);
    assert_int_equal(parse(v1, strlen(v1), SG_PP_ANY, &h), (int)strlen(v1));
    assert_int_equal(parse(buf, n, SG_PP_ANY, &h), (int)n);
    expect_bad(buf, n, SG_PP_OFF);
    /* Nothing read yet: ask for more in every mode that is on. */
    assert_int_equal(parse(buf, 0, SG_PP_V1, &h), 0);
}

/* ---- CIDR ---------------------------------------------------------------- */

static struct sockaddr_storage sa_of(const char *ip)
{
    struct sockaddr_storage ss;
    memset(&ss, 0, sizeof ss);
    struct sockaddr_in *in = (struct sockaddr_in *)&ss;
    struct sockaddr_in6 *in6 = (struct sockaddr_in6 *)&ss;
    if (inet_pton(AF_INET, ip, &in->sin_addr) == 1)
        in->sin_family = AF_INET;
    else if (inet_pton(AF_INET6, ip, &in6->sin6_addr) == 1)
        in6->sin6_family = AF_INET6;
    else
        fail_msg("bad test address %s", ip);
    return ss;
}

static int matches(const struct sg_cidr *list, int n, const char *ip)
{
    struct sockaddr_storage ss = sa_of(ip);
    return sg_cidr_match(list, n, (const struct sockaddr *)&ss);
}

static void test_cidr(void **state)
{
    struct sg_cidr c[4];
    const char *why = NULL;
    assert_int_equal(sg_cidr_parse("10.0.0.0/8", &c[0], &why), 0);
    assert_int_equal(sg_cidr_parse("127.0.0.1", &c[1], &why), 0);
    assert_int_equal(c[1].prefix, 32);
    assert_int_equal(sg_cidr_parse("fd00::/8", &c[2], &why), 0);
    assert_int_equal(sg_cidr_parse("192.168.1.128/25", &c[3], &why), 0);
    assert_true(matches(c, 4, "10.255.1.2"));
    assert_true(matches(c, 4, "127.0.0.1"));
    assert_false(matches(c, 4, "127.0.0.2"));
    assert_true(matches(c, 4, "fd12:3456::1"));
    assert_false(matches(c, 4, "fe80::1"));
    assert_true(matches(c, 4, "::ffff:10.9.9.9")); /* v4-mapped counts as IPv4 */
    assert_true(matches(c, 4, "192.168.1.200"));
    assert_false(matches(c, 4, "192.168.1.127"));
    assert_false(matches(c, 0, "10.0.0.1"));
    struct sg_cidr all;
    assert_int_equal(sg_cidr_parse("0.0.0.0/0", &all, &why), 0);
    assert_true(matches(&all, 1, "8.8.8.8"));
    assert_false(matches(&all, 1, "::1"));

    const char *bad[] = {"10.0.0.1/8", "1.2.3.4/33", "::/129", "abc",          "1.2.3.4/", "/8",
                         "1.2.3.4/x",  "1.2.3.4/-1", "",       "1.2.3.4/0008", "::1/12a"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        why = NULL;
        if (sg_cidr_parse(bad[i], &c[0], &why) != -1)
            fail_msg("'%s' accepted", bad[i]);
        assert_non_null(why);
    }
}

static void test_format(void **state)
{
    char buf[72];
    struct sockaddr_storage ss = sa_of("10.1.2.3");
    ((struct sockaddr_in *)&ss)->sin_port = htons(4242);
    sg_sockaddr_format((struct sockaddr *)&ss, buf, sizeof buf);
    assert_string_equal(buf, "10.1.2.3:4242");
    ss = sa_of("2001:db8::1");
    ((struct sockaddr_in6 *)&ss)->sin6_port = htons(1);
    sg_sockaddr_format((struct sockaddr *)&ss, buf, sizeof buf);
    assert_string_equal(buf, "[2001:db8::1]:1");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_v1_tcp4),         cmocka_unit_test(test_v1_tcp6),
        cmocka_unit_test(test_v1_unknown),      cmocka_unit_test(test_v1_malformed),
        cmocka_unit_test(test_v2_proxy_tcp4),   cmocka_unit_test(test_v2_proxy_tcp6),
        cmocka_unit_test(test_v2_local),        cmocka_unit_test(test_v2_other_families),
        cmocka_unit_test(test_v2_tlvs_skipped), cmocka_unit_test(test_v2_malformed),
        cmocka_unit_test(test_modes),           cmocka_unit_test(test_cidr),
        cmocka_unit_test(test_format),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
