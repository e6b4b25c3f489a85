/*
 * example-libevent.c - the asynchronous API of libslotgate on libevent.
 *
 * Connects over TLS (CA file from argv), attaches the context to an
 * event_base, sends one SET and then 100 GETs without waiting, each with its
 * own callback; replies arrive in any order, matched by id by the library.
 * The loop ends when the last callback ran.
 *
 * Usage: slotgate-example-async CA_FILE [HOST [PORT [TOKEN]]]
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <event2/event.h>

#include <slotgate/adapters/libevent.h>
#include <slotgate/async.h>

#define N_GETS 100

struct state {
    struct event_base *base;
    int done, hits, failed;
};

static void on_reply(struct sg_async *ac, struct sg_response *reply, void *privdata)
{
    struct state *st = privdata;

    if (reply == NULL)
        st->failed++; /* context freed before the answer */
    else if (reply->code == SG_OK)
        st->hits++;
    else if (reply->code != SG_NOT_FOUND)
        st->failed++;
    if (++st->done == N_GETS + 1 || sg_async_outstanding(ac) == 0)
        event_base_loopbreak(st->base);
}

int main(int argc, char **argv)
{
    struct sg_client_options opt;
    struct state st = {0};
    struct sg_async *ac;
    int i;

    if (argc < 2) {
        fprintf(stderr, "usage: %s CA_FILE [HOST [PORT [TOKEN]]]\n", argv[0]);
        return 2;
    }
    memset(&opt, 0, sizeof(opt));
    opt.tls = 1;
    opt.cacert = argv[1];
    opt.host = argc > 2 ? argv[2] : "127.0.0.1";
    opt.port = argc > 3 ? atoi(argv[3]) : 7420;
    if (argc > 4) {
        opt.auth_token = argv[4];
        opt.auth_token_len = strlen(argv[4]);
    }
    opt.client_name = "slotgate-example-async";
    opt.reconnect = 1;            /* resend what a draining server never ran */
    opt.deadline_margin_ms = 200; /* fail a request 200 ms after its deadline */
    st.base = event_base_new();
    ac = sg_async_connect(&opt);
    if (ac->err) {
        fprintf(stderr, "connect: %s: %s\n", sg_code_name(ac->err), ac->errstr);
        sg_async_free(ac);
        event_base_free(st.base);
        return 1;
    }
    sg_libevent_attach(ac, st.base);
    if (sg_async_set(ac, NULL, "example:greeting", 16, "hello", 5, 60000, SG_COND_NONE, on_reply,
                     &st) < 0) {
        fprintf(stderr, "set: %s\n", ac->errstr);
        sg_async_free(ac);
        event_base_free(st.base);
        return 1;
    }
    for (i = 0; i < N_GETS; i++)
        if (sg_async_get(ac, NULL, "example:greeting", 16, on_reply, &st) < 0)
            fprintf(stderr, "get: %s\n", ac->errstr);
    event_base_dispatch(st.base);
    printf("async: %d replies, %d hits, %d failed\n", st.done, st.hits, st.failed);
    sg_async_free(ac);
    event_base_free(st.base);
    return st.failed ? 1 : 0;
}
