/*
 * testing.h - test-only hooks of libslotgate. Not part of the public API and
 * not exported from the shared library: tests link the static library and
 * include this header explicitly.
 */
#ifndef SG_CLIENT_TESTING_H
#define SG_CLIENT_TESTING_H

#include <stddef.h>

#include "slotgate.h"

/* Connect (and TLS) without the Hello handshake; check c->err. */
struct sg_client *sg_client_connect_nohello(const struct sg_client_options *opt);
/* Write bytes as-is (crafted frames). 0, or -1 with c->err. */
int sg_client_write_raw(struct sg_client *c, const void *buf, size_t len);

#endif
