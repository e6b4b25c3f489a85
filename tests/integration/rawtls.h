/*
 * rawtls - a deliberately minimal slotgate client for tests that need to
 * misbehave: TLS straight from OpenSSL, frames (PROTOCOL.md section 2)
 * packed with the generated protobuf-c code, and nothing else. It writes
 * what it is told and reads only when asked, so a test can pipeline
 * requests and never read their replies.
 */
#ifndef SG_ITEST_RAWTLS_H
#define SG_ITEST_RAWTLS_H

#include <stddef.h>
#include <stdint.h>

#include <openssl/ssl.h>

#include "slotgate.pb-c.h"

struct rt_conn {
    int fd;
    SSL_CTX *ctx;
    SSL *ssl;
};

/*
 * TCP connect to 127.0.0.1:port and complete a TLS handshake verifying the
 * server against ca_file. 0, or -1 (nothing left open).
 */
int rt_connect(struct rt_conn *c, int port, const char *ca_file);
/* TCP connect only (no TLS yet): for tests of what the server does first. */
int rt_tcp_connect(int port);
void rt_close(struct rt_conn *c);

/* Write all of buf; 0 or -1. */
int rt_write(struct rt_conn *c, const void *buf, size_t len);
/*
 * The frame of one ClientMessage (4-byte length, then the message) into
 * out, when it fits in cap bytes; its length either way (out may be NULL
 * to ask). Frames put side by side in one buffer and written with one
 * rt_write reach the server in one TLS record: a pipelined batch.
 */
size_t rt_frame(const Slotgate__V1__ClientMessage *m, uint8_t *out, size_t cap);
/* The same for a one-key request op (SLOTGATE__V1__OP__OP_*) on key in
 * the default keyspace under request id, with value (NULL: none) and
 * deadline_ms (0: the server's default). */
size_t rt_frame_req(uint64_t id, int op, const char *key, const char *value, uint32_t deadline_ms,
                    uint8_t *out, size_t cap);
/* rt_frame_req for a GET. */
size_t rt_frame_get(uint64_t id, const char *key, uint32_t deadline_ms, uint8_t *out, size_t cap);
/* Frame and write one ClientMessage; 0 or -1. */
int rt_send(struct rt_conn *c, const Slotgate__V1__ClientMessage *m);
int rt_send_hello(struct rt_conn *c);
/* GET key in the default keyspace under request id. */
int rt_send_get(struct rt_conn *c, uint64_t id, const char *key);
/*
 * Read one frame and unpack it (free with slotgate__v1__server_message__free_unpacked
 * (m, NULL)); NULL on EOF, error or a frame over 64 MiB.
 */
Slotgate__V1__ServerMessage *rt_read(struct rt_conn *c);
/* Hello, then read the HelloReply; 0 or -1. */
int rt_handshake(struct rt_conn *c);

/* VmRSS of pid in KiB, or -1. */
long rt_rss_kib(int pid);

#endif
