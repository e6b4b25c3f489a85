/*
 * example.c - a minimal libslotgate program.
 *
 * Connects over TLS (CA file from argv), does one SET and one GET with the
 * blocking calls, then keeps 100 GETs in flight with sg_client_send and
 * matches the responses, which may arrive in any order, by request id.
 *
 * Usage: slotgate-example CA_FILE [HOST [PORT]]
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "slotgate.h"

#define N_PIPELINED 100

int main(int argc, char **argv)
{
    struct sg_client_options opt;
    struct sg_client *c;
    struct sg_request *r;
    struct sg_response *resp;
    uint64_t first_id = 0, id;
    int seen[N_PIPELINED] = {0};
    char err[256];
    void *val;
    size_t vlen;
    int i, rc, hits = 0;

    if (argc < 2) {
        fprintf(stderr, "usage: %s CA_FILE [HOST [PORT]]\n", argv[0]);
        return 2;
    }
    memset(&opt, 0, sizeof(opt));
    opt.tls = 1;
    opt.cacert = argv[1];
    opt.host = argc > 2 ? argv[2] : "127.0.0.1";
    opt.port = argc > 3 ? atoi(argv[3]) : 7420;
    opt.client_name = "slotgate-example";
    if (sg_client_connect(&opt, &c, NULL, err, sizeof(err)) < 0) {
        fprintf(stderr, "connect: %s\n", err);
        return 1;
    }
    printf("connected to slotgate %s\n", sg_client_server_version(c));

    rc = sg_set(c, NULL, "example:greeting", 16, "hello", 5, 60000, SG_COND_NONE);
    if (rc != SG_OK) {
        fprintf(stderr, "set: %s %s\n", sg_code_name(rc), sg_client_errstr(c));
        sg_client_free(c);
        return 1;
    }
    rc = sg_get(c, NULL, "example:greeting", 16, &val, &vlen);
    if (rc == SG_OK)
        printf("get: %.*s\n", (int)vlen, (const char *)val);
    else
        printf("get: %s\n", sg_code_name(rc));
    free(val);

    /* Pipelined: send all requests first, then collect the responses. */
    for (i = 0; i < N_PIPELINED; i++) {
        id = sg_client_next_id(c);
        if (i == 0)
            first_id = id;
        r = sg_request_new(id, SG_OP_GET);
        sg_request_add_key(r, "example:greeting", 16);
        rc = sg_client_send(c, r);
        sg_request_free(r);
        if (rc < 0) {
            fprintf(stderr, "send: %s\n", sg_client_errstr(c));
            sg_client_free(c);
            return 1;
        }
    }
    for (i = 0; i < N_PIPELINED; i++) {
        if (sg_client_recv(c, &resp) < 0) {
            fprintf(stderr, "recv: %s\n", sg_client_errstr(c));
            sg_client_free(c);
            return 1;
        }
        if (resp->id < first_id || resp->id >= first_id + N_PIPELINED ||
            seen[resp->id - first_id]) {
            fprintf(stderr, "unexpected response id %llu (%s)\n", (unsigned long long)resp->id,
                    sg_code_name(resp->code));
            sg_response_free(resp);
            sg_client_free(c);
            return 1;
        }
        seen[resp->id - first_id] = 1;
        if (resp->code == SG_OK)
            hits++;
        sg_response_free(resp);
    }
    printf("pipelined: %d responses, %d hits\n", N_PIPELINED, hits);
    sg_client_free(c);
    return 0;
}
