/*
 * session - one client connection: the PROXY header when the listener
 * expects one, TLS (or plaintext when configured), frame reading, the
 * Hello handshake, limits, and backpressure. Reading pauses while the
 * output buffer is over its watermark or the number of requests in flight
 * is at the cap; nothing is buffered without bound.
 */
#ifndef SG_SESSION_H
#define SG_SESSION_H

#include <stdint.h>
#include <sys/queue.h>
#include <sys/socket.h>

#include <event2/buffer.h>
#include <event2/event.h>

#include "conn.h"
#include "request.h"
#include "slotgate.pb-c.h"

/* PROXY: reading the PROXY header off the raw socket (no conn yet). */
enum sg_session_state { SG_SESS_HANDSHAKE = 0, SG_SESS_READY, SG_SESS_CLOSING, SG_SESS_PROXY };

struct sg_session {
    TAILQ_ENTRY(sg_session) entry; /* in the worker's list */
    struct sg_worker *worker;
    struct sg_conn *conn; /* NULL while in SG_SESS_PROXY */
    int state;
    uint32_t inflight;
    uint8_t paused;   /* reading paused for backpressure */
    uint8_t draining; /* close with SHUTTING_DOWN when inflight is 0 */
    TAILQ_HEAD(, sg_request) requests;
    struct event *timer; /* handshake timeout, then close-linger timeout */
    struct event *resume_ev;
    /* The client's address: the PROXY header's source when there is one,
     * else the socket's peer. peer is its "ip:port" text for logs. */
    struct sockaddr_storage client;
    char peer[72];
    char via[72];       /* the load balancer's "ip:port" when PROXY, else "" */
    uint8_t ip_counted; /* counted in limits.max_connections_per_ip */
    /* SG_SESS_PROXY: the socket and what has been read of the header. */
    int fd;
    struct event *pp_ev;
    uint8_t *pp_buf;
    size_t pp_len;
    /* The request being started (sg_request_start may answer it at once). */
    struct sg_request *starting;
    uint8_t start_done;
    uint8_t evicted; /* closed to keep limits.max_buffered_bytes; freed next turn */
    struct evbuffer_cb_entry *in_cb, *out_cb; /* keep worker->buffered */
};

/* Take ownership of an accepted socket. */
void sg_session_new(struct sg_worker *w, int fd, const struct sockaddr *sa, int salen);
void sg_session_free(struct sg_session *s);

/* Encode and queue a response; called by the request layer. */
void sg_session_send(struct sg_session *s, const Slotgate__V1__ServerMessage *m);
/* A request of this session was answered and left its list. */
void sg_session_request_done(struct sg_session *s, struct sg_request *r);
/* Server shutdown: SHUTTING_DOWN now if idle, else once in-flight is done. */
void sg_session_drain(struct sg_session *s);
/* Send ConnectionError(code, message) and close once it is written. */
void sg_session_fail(struct sg_session *s, int code, const char *message);

#endif
