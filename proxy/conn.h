/*
 * conn - a nonblocking stream socket, plain or TLS, with evbuffers for input
 * and output. It replaces libevent's bufferevents on the data path because
 * of when it writes: output appended during a loop turn is flushed once,
 * at the end of that turn, with one writev (TLS: the records of up to
 * 128 KiB of output gathered into it), and write interest is registered
 * with epoll only if the socket is full. A bufferevent registers write
 * interest, writes on the next turn, then unregisters: two epoll_ctl calls
 * and a turn of latency per response.
 */
#ifndef SG_CONN_H
#define SG_CONN_H

#include <stddef.h>
#include <stdint.h>

#include <event2/event.h>
#include <openssl/ssl.h>

struct evbuffer;

enum sg_conn_event {
    SG_CONN_CONNECTED = 1, /* outbound connect (and TLS handshake) done */
    SG_CONN_EOF,           /* peer closed */
    SG_CONN_ERROR,         /* I/O or TLS error */
    SG_CONN_TIMEOUT        /* connect timeout or read idle timeout */
};

/*
 * Callbacks. Each is the last thing the conn does in its handler, so a
 * callback may free the conn. on_read: new bytes in the input buffer.
 * on_drained: the output buffer became empty after a write.
 */
struct sg_conn_cbs {
    void (*on_read)(void *arg);
    void (*on_drained)(void *arg);
    void (*on_event)(void *arg, int what);
};

struct sg_conn;

/*
 * Wrap fd (nonblocking, owned from now on). ssl (owned, may be NULL):
 * accept side when server is 1, connect side otherwise. connecting: fd is
 * an outbound connect in progress; timeout_ms bounds it (0 = none).
 * Returns NULL when an allocation fails; fd and ssl are then closed and
 * freed all the same (ownership was taken).
 */
struct sg_conn *sg_conn_new(struct event_base *base, int fd, SSL *ssl, int server, int connecting,
                            int timeout_ms, const struct sg_conn_cbs *cbs, void *arg);
/* Closes the socket and frees the SSL and both buffers. Accepts NULL. */
void sg_conn_free(struct sg_conn *c);

struct evbuffer *sg_conn_input(struct sg_conn *c);
struct evbuffer *sg_conn_output(struct sg_conn *c);
/*
 * Drop everything not yet written (the connection is being closed and
 * nothing more will be queued): its memory is released at once.
 */
void sg_conn_discard_output(struct sg_conn *c);
/* Schedule a flush of the output at the end of this loop turn. */
void sg_conn_flush_soon(struct sg_conn *c);
/*
 * Count the TLS records sealed but not yet written (gather mode) in
 * *counter (added as OpenSSL writes them, taken off as the socket takes
 * them, and when discarded or freed): the session adds them to its
 * worker's buffered bytes, since they are memory owed to the client like
 * the plaintext they stand for. NULL: not counted.
 */
void sg_conn_count_cipher(struct sg_conn *c, uint64_t *counter);
/* Start / stop reading (backpressure). */
void sg_conn_read_enable(struct sg_conn *c, int on);
/* Read idle timeout (0 = none); it fires SG_CONN_TIMEOUT. */
void sg_conn_set_idle_timeout(struct sg_conn *c, int ms);
int sg_conn_fd(const struct sg_conn *c);
/*
 * 1 when a TLS 1.3 connection's records are ours (tlsrec.h): its handshake
 * is done and its SSL object freed. 0 for plaintext and TLS 1.2
 * connections, and during the handshake.
 */
int sg_conn_own_records(const struct sg_conn *c);
/* Why the peer's certificate was refused, or NULL (no TLS, or accepted). */
const char *sg_conn_verify_error(const struct sg_conn *c);

/* System calls a conn made for its data: read() and write()/writev(). */
struct sg_conn_io {
    uint64_t reads;
    uint64_t writes;
};
void sg_conn_get_io(const struct sg_conn *c, struct sg_conn_io *io);
/*
 * Bytes the conn holds for its peer or owner: input, output and, with TLS,
 * ciphertext read but not decrypted or sealed but not written. Memory
 * inside OpenSSL is not counted (SSL_MODE_RELEASE_BUFFERS drops it between
 * records).
 */
size_t sg_conn_held_bytes(const struct sg_conn *c);

#endif
