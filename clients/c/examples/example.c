/*
 * example.c - the blocking API of libslotgate.
 *
 * Connects over TLS (CA file from argv), does one SET and one GET with the
 * typed calls, then keeps 100 GETs in flight with sg_client_send and matches
 * the responses, which may arrive in any order, by the ids the library
 * assigned.
 *
 * Usage: slotgate-example CA_FILE [HOST [PORT [TOKEN]]]
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <slotgate.h>

#define N_PIPELINED 100

int main(int argc, char **argv)
{
    struct sg_client_options opt;
    struct sg_client *c;
    struct sg_request *r;
    struct sg_response *reply;
    uint64_t ids[N_PIPELINED];
    int seen[N_PIPELINED] = {0};
    int i, j, hits = 0;

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
    opt.client_name = "slotgate-example";
    c = sg_client_connect(&opt);
    if (c->err) {
        fprintf(stderr, "connect: %s: %s\n", sg_code_name(c->err), c->errstr);
        sg_client_free(c);
        return 1;
    }
    printf("connected to slotgate %s\n", sg_client_server_version(c));

    reply = sg_set(c, NULL, "example:greeting", 16, "hello", 5, 60000, SG_COND_NONE);
    if (reply == NULL || reply->code != SG_OK) {
        fprintf(stderr, "set: %s\n", reply ? sg_code_name(reply->code) : c->errstr);
        sg_response_free(reply);
        sg_client_free(c);
        return 1;
    }
    sg_response_free(reply);
    reply = sg_get(c, NULL, "example:greeting", 16);
    if (reply == NULL)
        fprintf(stderr, "get: %s\n", c->errstr);
    else if (reply->code == SG_OK)
        printf("get: %.*s\n", (int)reply->value_len, (const char *)reply->value);
    else
        printf("get: %s\n", sg_code_name(reply->code));
    sg_response_free(reply);

    /* Pipelined: send all requests first, then collect the responses. */
    r = sg_request_new(SG_OP_GET);
    sg_request_add_key(r, "example:greeting", 16);
    for (i = 0; i < N_PIPELINED; i++) {
        if (sg_client_send(c, r, &ids[i]) < 0) {
            fprintf(stderr, "send: %s\n", c->errstr);
            sg_request_free(r);
            sg_client_free(c);
            return 1;
        }
    }
    sg_request_free(r);
    for (i = 0; i < N_PIPELINED; i++) {
        if (sg_client_recv(c, &reply) < 0) {
            fprintf(stderr, "recv: %s\n", c->errstr);
            sg_client_free(c);
            return 1;
        }
        for (j = 0; j < N_PIPELINED && ids[j] != reply->id; j++)
            ;
        if (j == N_PIPELINED || seen[j]) {
            fprintf(stderr, "unexpected response id %llu (%s)\n", (unsigned long long)reply->id,
                    sg_code_name(reply->code));
            sg_response_free(reply);
            sg_client_free(c);
            return 1;
        }
        seen[j] = 1;
        if (reply->code == SG_OK)
            hits++;
        sg_response_free(reply);
    }
    printf("pipelined: %d responses, %d hits\n", N_PIPELINED, hits);
    sg_client_free(c);
    return 0;
}
