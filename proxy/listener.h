/*
 * listener - the worker's accepting socket: libevent's evconnlistener bound
 * with SO_REUSEPORT, so each worker accepts on its own socket and the kernel
 * spreads connections across workers.
 */
#ifndef SG_LISTENER_H
#define SG_LISTENER_H

#include <stddef.h>

struct sg_core;
struct sg_listener;

struct sg_listener *sg_listener_new(struct sg_core *w, const char *host, int port, char *err,
                                    size_t errlen);
void sg_listener_free(struct sg_listener *l);

#endif
