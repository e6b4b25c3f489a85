/*
 * listener - accepting sockets. Each worker binds its own socket to the same
 * address with SO_REUSEPORT; the kernel balances new connections across
 * them, so no connection is ever handed between threads.
 */
#include "listener.h"

#include <netdb.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <event2/listener.h>

#include "session.h"
#include "util.h"
#include "core.h"

struct sg_listener {
    struct evconnlistener *evl;
    struct sg_core *core;
};

static void on_accept(struct evconnlistener *evl, evutil_socket_t fd, struct sockaddr *sa,
                      int salen, void *arg)
{
    struct sg_listener *l = arg;
    sg_session_new(l->core, fd, sa, salen);
}

struct sg_listener *sg_listener_new(struct sg_core *w, const char *host, int port, char *err,
                                    size_t errlen)
{
    char portstr[16];
    struct addrinfo hints = {.ai_socktype = SOCK_STREAM, .ai_flags = AI_PASSIVE}, *res = NULL;
    snprintf(portstr, sizeof(portstr), "%d", port);
    int gai = getaddrinfo(host, portstr, &hints, &res);
    if (gai != 0) {
        snprintf(err, errlen, "listen %s:%d: %s", host, port, gai_strerror(gai));
        return NULL;
    }
    struct sg_listener *l = sg_calloc(1, sizeof(*l));
    l->core = w;
    l->evl = evconnlistener_new_bind(w->base, on_accept, l,
                                     LEV_OPT_CLOSE_ON_FREE | LEV_OPT_REUSEABLE |
                                         LEV_OPT_REUSEABLE_PORT | LEV_OPT_CLOSE_ON_EXEC,
                                     1024, res->ai_addr, (int)res->ai_addrlen);
    freeaddrinfo(res);
    if (l->evl == NULL) {
        snprintf(err, errlen, "listen %s:%d: %s", host, port,
                 evutil_socket_error_to_string(EVUTIL_SOCKET_ERROR()));
        free(l);
        return NULL;
    }
    return l;
}

void sg_listener_free(struct sg_listener *l)
{
    if (l == NULL)
        return;
    evconnlistener_free(l->evl);
    free(l);
}
