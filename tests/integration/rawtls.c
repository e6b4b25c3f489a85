/*
 * rawtls - see rawtls.h. Blocking sockets; every call is bounded by the
 * socket timeouts set at connect (10 s), so a test never hangs for ever.
 */
#include "rawtls.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>

#include <openssl/err.h>

int rt_tcp_connect(int port)
{
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0)
        return -1;
    struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    struct timeval tv = {10, 0};
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
    setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
    int one = 1;
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
    if (connect(fd, (struct sockaddr *)&sa, sizeof(sa)) != 0) {
        close(fd);
        return -1;
    }
    return fd;
}

int rt_connect(struct rt_conn *c, int port, const char *ca_file)
{
    memset(c, 0, sizeof(*c));
    c->fd = rt_tcp_connect(port);
    if (c->fd < 0)
        return -1;
    c->ctx = SSL_CTX_new(TLS_client_method());
    if (c->ctx == NULL || SSL_CTX_load_verify_locations(c->ctx, ca_file, NULL) != 1)
        goto fail;
    SSL_CTX_set_verify(c->ctx, SSL_VERIFY_PEER, NULL);
    c->ssl = SSL_new(c->ctx);
    if (c->ssl == NULL || SSL_set_fd(c->ssl, c->fd) != 1 || SSL_set1_host(c->ssl, "localhost") != 1)
        goto fail;
    if (SSL_connect(c->ssl) != 1)
        goto fail;
    return 0;
fail:
    ERR_clear_error();
    rt_close(c);
    return -1;
}

void rt_close(struct rt_conn *c)
{
    if (c->ssl != NULL)
        SSL_free(c->ssl);
    if (c->ctx != NULL)
        SSL_CTX_free(c->ctx);
    if (c->fd >= 0)
        close(c->fd);
    c->ssl = NULL;
    c->ctx = NULL;
    c->fd = -1;
}

int rt_write(struct rt_conn *c, const void *buf, size_t len)
{
    const uint8_t *p = buf;
    while (len > 0) {
        int n = SSL_write(c->ssl, p, (int)(len > 65536 ? 65536 : len));
        if (n <= 0) {
            ERR_clear_error();
            return -1;
        }
        p += n;
        len -= (size_t)n;
    }
    return 0;
}

size_t rt_frame(const Slotgate__V1__ClientMessage *m, uint8_t *out, size_t cap)
{
    size_t n = slotgate__v1__client_message__get_packed_size(m);
    if (out == NULL || n + 4 > cap)
        return n + 4;
    out[0] = (uint8_t)(n >> 24);
    out[1] = (uint8_t)(n >> 16);
    out[2] = (uint8_t)(n >> 8);
    out[3] = (uint8_t)n;
    slotgate__v1__client_message__pack(m, out + 4);
    return n + 4;
}

int rt_send(struct rt_conn *c, const Slotgate__V1__ClientMessage *m)
{
    size_t n = rt_frame(m, NULL, 0);
    uint8_t *buf = malloc(n);
    if (buf == NULL)
        return -1;
    rt_frame(m, buf, n);
    int rc = rt_write(c, buf, n);
    free(buf);
    return rc;
}

int rt_send_hello(struct rt_conn *c)
{
    Slotgate__V1__Hello h = SLOTGATE__V1__HELLO__INIT;
    h.protocol_version = 1;
    h.client_name = "rawtls";
    Slotgate__V1__ClientMessage m = SLOTGATE__V1__CLIENT_MESSAGE__INIT;
    m.msg_case = SLOTGATE__V1__CLIENT_MESSAGE__MSG_HELLO;
    m.hello = &h;
    return rt_send(c, &m);
}

size_t rt_frame_req(uint64_t id, int op, const char *key, const char *value, uint32_t deadline_ms,
                    uint8_t *out, size_t cap)
{
    ProtobufCBinaryData k = {strlen(key), (uint8_t *)key};
    ProtobufCBinaryData v = {value != NULL ? strlen(value) : 0, (uint8_t *)value};
    Slotgate__V1__Request r = SLOTGATE__V1__REQUEST__INIT;
    r.id = id;
    r.op = op;
    r.deadline_ms = deadline_ms;
    r.n_keys = 1;
    r.keys = &k;
    if (value != NULL) {
        r.n_values = 1;
        r.values = &v;
    }
    Slotgate__V1__ClientMessage m = SLOTGATE__V1__CLIENT_MESSAGE__INIT;
    m.msg_case = SLOTGATE__V1__CLIENT_MESSAGE__MSG_REQUEST;
    m.request = &r;
    return rt_frame(&m, out, cap);
}

size_t rt_frame_get(uint64_t id, const char *key, uint32_t deadline_ms, uint8_t *out, size_t cap)
{
    return rt_frame_req(id, SLOTGATE__V1__OP__OP_GET, key, NULL, deadline_ms, out, cap);
}

int rt_send_get(struct rt_conn *c, uint64_t id, const char *key)
{
    size_t n = rt_frame_get(id, key, 0, NULL, 0);
    uint8_t *buf = malloc(n);
    if (buf == NULL)
        return -1;
    rt_frame_get(id, key, 0, buf, n);
    int rc = rt_write(c, buf, n);
    free(buf);
    return rc;
}

static int rt_read_full(struct rt_conn *c, uint8_t *p, size_t len)
{
    while (len > 0) {
        int n = SSL_read(c->ssl, p, (int)(len > 1048576 ? 1048576 : len));
        if (n <= 0) {
            ERR_clear_error();
            return -1;
        }
        p += n;
        len -= (size_t)n;
    }
    return 0;
}

Slotgate__V1__ServerMessage *rt_read(struct rt_conn *c)
{
    uint8_t hdr[4];
    if (rt_read_full(c, hdr, 4) != 0)
        return NULL;
    size_t n = (size_t)hdr[0] << 24 | (size_t)hdr[1] << 16 | (size_t)hdr[2] << 8 | hdr[3];
    if (n > (64u << 20))
        return NULL;
    uint8_t *body = malloc(n ? n : 1);
    if (body == NULL || rt_read_full(c, body, n) != 0) {
        free(body);
        return NULL;
    }
    Slotgate__V1__ServerMessage *m = slotgate__v1__server_message__unpack(NULL, n, body);
    free(body);
    return m;
}

int rt_handshake(struct rt_conn *c)
{
    if (rt_send_hello(c) != 0)
        return -1;
    Slotgate__V1__ServerMessage *m = rt_read(c);
    int ok = m != NULL && m->msg_case == SLOTGATE__V1__SERVER_MESSAGE__MSG_HELLO_REPLY;
    if (m != NULL)
        slotgate__v1__server_message__free_unpacked(m, NULL);
    return ok ? 0 : -1;
}

long rt_rss_kib(int pid)
{
    char path[64], line[256];
    snprintf(path, sizeof(path), "/proc/%d/status", pid);
    FILE *f = fopen(path, "r");
    if (f == NULL)
        return -1;
    long kib = -1;
    while (fgets(line, sizeof(line), f) != NULL)
        if (sscanf(line, "VmRSS: %ld kB", &kib) == 1)
            break;
    fclose(f);
    return kib;
}
