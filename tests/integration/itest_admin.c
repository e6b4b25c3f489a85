/*
 * itest_admin - the operators' /clients view: one line per client
 * connection with the client's own address, which behind a load balancer is
 * the PROXY header's source, and the balancer's address beside it. Raw
 * sockets only (a PROXY header, then nothing or a TLS ClientHello pending),
 * so the view is checked in every session state the listener can hold.
 */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cmocka.h>

#include "harness.h"

static const uint8_t SIG[12] = {0x0D, 0x0A, 0x0D, 0x0A, 0x00, 0x0D,
                                0x0A, 0x51, 0x55, 0x49, 0x54, 0x0A};

static int group_setup(void **state)
{
    struct h_opts o = {
        .plain = 1,
        .admin = 1,
        .workers = 2,
        .listen_yaml = "  proxy_protocol: v2\n  proxy_trusted: [\"127.0.0.1/32\"]",
        .limits_yaml = "  handshake_timeout_ms: 20000",
    };
    return h_env_start(&H, "admin", &o);
}

static int group_teardown(void **state)
{
    return h_env_stop(&H);
}

/* A raw TCP connection to the proxy's client port. */
static int raw_connect(void)
{
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    assert_true(fd >= 0);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons((uint16_t)H.proxies[0].port)};
    inet_pton(AF_INET, "127.0.0.1", &a.sin_addr);
    assert_int_equal(connect(fd, (struct sockaddr *)&a, sizeof(a)), 0);
    return fd;
}

/* Send a v2 PROXY TCP4 header claiming src:sport. */
static void send_v2(int fd, const char *src, int sport)
{
    uint8_t h[28];
    memcpy(h, SIG, 12);
    h[12] = 0x21, h[13] = 0x11, h[14] = 0, h[15] = 12;
    inet_pton(AF_INET, src, h + 16);
    inet_pton(AF_INET, "127.0.0.1", h + 20);
    h[24] = (uint8_t)(sport >> 8), h[25] = (uint8_t)sport;
    h[26] = 0x1c, h[27] = 0xfc;
    assert_int_equal(write(fd, h, sizeof(h)), (ssize_t)sizeof(h));
}

/* GET path from the admin port; the body in buf (NUL-terminated), or -1. */
static int http_get(const char *path, char *buf, size_t cap)
{
    return h_http_get(H.proxies[0].admin_port, path, buf, cap);
}

/* Wait (bounded) until /clients has a line containing every needle. */
static int wait_clients_line(const char *needle1, const char *needle2, char *out, size_t cap)
{
    int64_t deadline = h_now_ms() + 10000;
    while (h_now_ms() < deadline) {
        if (http_get("/clients", out, cap) == 0) {
            for (char *line = strtok(out, "\n"); line != NULL; line = strtok(NULL, "\n")) {
                if (strstr(line, needle1) && strstr(line, needle2))
                    return 0;
            }
        }
        h_poll_pause();
    }
    return -1;
}

/* The header's source is the client; the relay (our socket) is "via". */
static void test_clients_show_header_address(void **state)
{
    int a = raw_connect(), b = raw_connect();
    send_v2(a, "10.20.30.40", 5555);
    send_v2(b, "192.0.2.7", 4242);
    static char body[65536];
    assert_int_equal(
        wait_clients_line("client=10.20.30.40:5555", "via=127.0.0.1:", body, sizeof(body)), 0);
    assert_int_equal(
        wait_clients_line("client=192.0.2.7:4242", "state=handshake", body, sizeof(body)), 0);
    close(a);
    close(b);
}

/* A connection still waiting for its header is listed by its socket. */
static void test_clients_before_header(void **state)
{
    int fd = raw_connect();
    static char body[65536];
    assert_int_equal(
        wait_clients_line("state=proxy-header", "client=127.0.0.1:", body, sizeof(body)), 0);
    close(fd);
}

/* A closed connection leaves the view. */
static void test_clients_forget_closed(void **state)
{
    int fd = raw_connect();
    send_v2(fd, "198.51.100.9", 9999);
    static char body[65536];
    assert_int_equal(wait_clients_line("client=198.51.100.9:9999", "", body, sizeof(body)), 0);
    close(fd);
    int64_t deadline = h_now_ms() + 10000;
    for (;;) {
        assert_int_equal(http_get("/clients", body, sizeof(body)), 0);
        if (strstr(body, "198.51.100.9") == NULL)
            break;
        if (h_now_ms() > deadline)
            fail_msg("closed client still listed:\n%s", body);
        h_poll_pause();
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_clients_show_header_address),
        cmocka_unit_test(test_clients_before_header),
        cmocka_unit_test(test_clients_forget_closed),
    };
    return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
