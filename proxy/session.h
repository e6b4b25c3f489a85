/*
 * session - one client connection: the PROXY header when the listener
 * expects one, TLS (or plaintext when configured), frame reading, the
 * Hello handshake, limits, and backpressure. Reading pauses while the
 * output buffer is over its watermark or the number of requests in flight
 * is at the cap; nothing is buffered without bound.
 */
#ifndef SG_SESSION_H
#define SG_SESSION_H

#include <stdatomic.h>
#include <stdint.h>
#include <sys/queue.h>
#include <sys/socket.h>

#include <event2/buffer.h>
#include <event2/event.h>

#include "slotgate.pb-c.h"

struct sg_core;
struct sg_session; /* private to session.c */
struct sg_text;

/* Connections open in the process, against limits.max_connections. */
extern _Atomic uint32_t sg_connections;

/* Take ownership of an accepted socket. */
void sg_session_new(struct sg_core *core, int fd, const struct sockaddr *sa, int salen);
void sg_session_free(struct sg_session *s);

/* Walk a core's sessions (core->sessions). */
struct sg_session *sg_session_first(struct sg_core *core);
struct sg_session *sg_session_next(struct sg_session *s);
/* Append "client=... via=... state=... inflight=N paused=N" (admin /clients). */
void sg_session_describe(const struct sg_session *s, struct sg_text *out);
/* Server shutdown: SHUTTING_DOWN now if idle, else once in-flight is done. */
void sg_session_drain(struct sg_session *s);
/* Send ConnectionError(code, message) and close once it is written. */
void sg_session_fail(struct sg_session *s, int code, const char *message);

#endif
