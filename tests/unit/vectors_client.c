/*
 * vectors_client - clients/c against the golden vectors: requests built with
 * the public request API and framed by the client's own encoder, server
 * frames decoded and flattened by the client's response path. Uses the
 * client's private header (clients/c/src/internal.h) for the frame builders
 * and sg_response_wrap, which the public API reaches only over a socket.
 */
#include "vectors_client.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "internal.h"
#include "pbjson.h"

/* Bytes from JSON (base64) handed to a clients/c setter. */
static int with_bytes(const json_t *v, struct sg_request *r,
                      void (*set)(struct sg_request *, const void *, size_t))
{
    uint8_t *b;
    size_t n;

    if (pbjson_bytes(v, &b, &n) < 0)
        return -1;
    set(r, b, n);
    free(b);
    return 0;
}

/*
 * A Request in canonical JSON built with the clients/c request API
 * (sg_request_new and the sg_request_* setters), as an application would.
 * Returns NULL with a reason for a field the API cannot express.
 */
static struct sg_request *request_from_json(const json_t *j, uint64_t *idp, const char **why)
{
    const char *key;
    const json_t *v, *e;
    struct sg_request *r;
    uint64_t id, u;
    int op, n, bad = 0;
    size_t i;

    if (pbjson_u64(json_object_get(j, "id"), &id) < 0 ||
        pbjson_enum(&slotgate__v1__op__descriptor, json_object_get(j, "op"), &op) < 0) {
        *why = "bad id or op";
        return NULL;
    }
    r = sg_request_new((enum sg_op)op);
    *idp = id;
    sg_request_skip_checks(r);
    json_object_foreach((json_t *)j, key, v)
    {
        if (strcmp(key, "id") == 0 || strcmp(key, "op") == 0) {
            continue;
        } else if (strcmp(key, "keyspace") == 0) {
            sg_request_keyspace(r, json_string_value(v));
        } else if (strcmp(key, "keys") == 0) {
            json_array_foreach(v, i, e) bad |= with_bytes(e, r, sg_request_add_key);
        } else if (strcmp(key, "values") == 0) {
            json_array_foreach(v, i, e) bad |= with_bytes(e, r, sg_request_add_value);
        } else if (strcmp(key, "ttlsMs") == 0) {
            json_array_foreach(v, i, e)
            {
                bad |= pbjson_u64(e, &u);
                sg_request_add_ttl(r, u);
            }
        } else if (strcmp(key, "ttlMs") == 0) {
            bad |= pbjson_u64(v, &u);
            sg_request_ttl(r, u);
        } else if (strcmp(key, "condition") == 0) {
            bad |= pbjson_enum(&slotgate__v1__condition__descriptor, v, &n);
            sg_request_condition(r, (enum sg_cond)n);
        } else if (strcmp(key, "deadlineMs") == 0) {
            bad |= pbjson_u64(v, &u) < 0 || u > UINT32_MAX;
            sg_request_deadline(r, (uint32_t)u);
        } else if (strcmp(key, "pattern") == 0) {
            bad |= with_bytes(v, r, sg_request_pattern);
        } else if (strcmp(key, "lease") == 0) {
            bad |= with_bytes(v, r, sg_request_lease);
        } else if (strcmp(key, "version") == 0) {
            bad |= pbjson_u64(v, &u);
            sg_request_version(r, u);
        } else {
            *why = "a Request field the case list does not know";
            bad = 1;
        }
    }
    if (bad) {
        if (*why == NULL)
            *why = "a field value does not parse";
        sg_request_free(r);
        return NULL;
    }
    return r;
}

uint8_t *vc_client_frame(const json_t *j, size_t *len, const char **why)
{
    const json_t *h = json_object_get(j, "hello"), *rq = json_object_get(j, "request");
    struct sg_request *r;
    uint8_t *frame, *tok;
    size_t toklen;
    const char *name;
    uint64_t id;

    if (json_object_size(j) != 1 || (h == NULL && rq == NULL)) {
        *why = "not a hello or a request";
        return NULL;
    }
    if (h != NULL) {
        /* sg_frame_hello always sends protocol_version 1 and takes these two. */
        if (json_integer_value(json_object_get(h, "protocolVersion")) != 1 ||
            json_object_size(h) != 1u + (json_object_get(h, "clientName") != NULL) +
                                       (json_object_get(h, "authToken") != NULL)) {
            *why = "a Hello clients/c cannot express";
            return NULL;
        }
        name = json_string_value(json_object_get(h, "clientName"));
        if (pbjson_bytes(json_object_get(h, "authToken"), &tok, &toklen) < 0) {
            *why = "bad authToken";
            return NULL;
        }
        frame = sg_encode_hello(name ? name : "", tok, toklen, len);
        free(tok);
        return frame;
    }
    r = request_from_json(rq, &id, why);
    if (r == NULL)
        return NULL;
    frame = sg_encode_request(r, id, len);
    sg_request_free(r);
    return frame;
}

static int view_bytes(const json_t *v, const uint8_t *data, size_t len)
{
    uint8_t *want;
    size_t wlen;
    int same;

    if (pbjson_bytes(v, &want, &wlen) < 0)
        return 0;
    same = wlen == len && (len == 0 || memcmp(want, data, len) == 0);
    free(want);
    return same;
}

static int view_code(const json_t *v, int got)
{
    int want;

    return pbjson_enum(&slotgate__v1__code__descriptor, v, &want) == 0 && want == got;
}

static int view_str(const json_t *v, const char *got)
{
    return strcmp(v ? json_string_value(v) : "", got) == 0;
}

static int view_u64(const json_t *v, uint64_t got)
{
    uint64_t want;

    return pbjson_u64(v, &want) == 0 && want == got;
}

/*
 * The flat struct sg_response an application reads, against the case's
 * JSON. Returns NULL if equal, else what differs.
 */
static const char *view_check(const json_t *j, const struct sg_response *r)
{
    const json_t *rj = json_object_get(j, "response"), *ej = json_object_get(j, "error"), *kr;
    const json_t *stats;
    int64_t count;
    size_t i, k;

    if (rj == NULL && ej == NULL)
        return r == NULL ? NULL : "sg_response_wrap accepted a message that is no response";
    if (r == NULL)
        return "sg_response_wrap gave no response";
    if (ej != NULL) {
        int want;

        if (r->id != 0)
            return "ConnectionError: id is not 0";
        if (pbjson_enum(&slotgate__v1__code__descriptor, json_object_get(ej, "code"), &want) < 0 ||
            r->code != (want ? want : SG_CLIENT_PROTOCOL))
            return "ConnectionError: code";
        if (!view_str(json_object_get(ej, "message"), r->message))
            return "ConnectionError: message";
        return NULL;
    }
    if (!view_u64(json_object_get(rj, "id"), r->id))
        return "id";
    if (!view_code(json_object_get(rj, "code"), r->code))
        return "code";
    if (!view_str(json_object_get(rj, "message"), r->message))
        return "message";
    if (!view_bytes(json_object_get(rj, "value"), r->value, r->value_len))
        return "value";
    if (pbjson_i64(json_object_get(rj, "count"), &count) < 0 || count != r->count)
        return "count";
    if (!view_bytes(json_object_get(rj, "lease"), r->lease, r->lease_len))
        return "lease";
    if (!view_u64(json_object_get(rj, "retryAfterMs"), r->retry_after_ms))
        return "retry_after_ms";
    if (!view_u64(json_object_get(rj, "version"), r->version))
        return "version";
    if (json_array_size(json_object_get(rj, "results")) != r->n_results)
        return "number of results";
    json_array_foreach(json_object_get(rj, "results"), i, kr)
    {
        if (!view_code(json_object_get(kr, "code"), r->results[i].code) ||
            !view_bytes(json_object_get(kr, "value"), r->results[i].value,
                        r->results[i].value_len) ||
            !view_str(json_object_get(kr, "message"), r->results[i].message))
            return "a result differs";
    }
    stats = json_object_get(rj, "stats");
    if (json_object_size(stats) != r->n_stats)
        return "number of stats";
    for (i = 0; i < r->n_stats; i++) {
        for (k = 0; k < i; k++)
            if (strcmp(r->stat_names[k], r->stat_names[i]) == 0)
                return "a stats name twice";
        if (!view_u64(json_object_get(stats, r->stat_names[i]), r->stat_values[i]) ||
            json_object_get(stats, r->stat_names[i]) == NULL)
            return "a stats entry differs";
    }
    return NULL;
}

int vc_client_read(const uint8_t *frame, size_t len, const json_t *j, char *err, size_t errlen)
{
    Slotgate__V1__ServerMessage *m;
    struct sg_response *r;
    enum sg_msg_kind kind;
    struct sg_limits lim;
    const char *why;
    size_t body;

    if (len < 4 || (m = slotgate__v1__server_message__unpack(NULL, len - 4, frame + 4)) == NULL) {
        snprintf(err, errlen, "unpack: does not decode");
        return -1;
    }
    if (pbjson_equal(&m->base, j, err, errlen) < 0) {
        slotgate__v1__server_message__free_unpacked(m, NULL);
        return -1;
    }
    r = sg_response_wrap(m); /* takes m */
    why = view_check(j, r);
    sg_response_free(r);
    if (why != NULL) {
        snprintf(err, errlen, "struct sg_response: %s", why);
        return -1;
    }
    /* The public codec gives the same view (HelloReply: the limits). */
    if (sg_decode_frame_len(frame, len, &body) != 1 || body != len - 4 ||
        sg_decode_response(frame + 4, body, &r, &kind, &lim) < 0) {
        snprintf(err, errlen, "sg_decode_response: does not decode");
        return -1;
    }
    if (r != NULL) {
        why = view_check(j, r);
        sg_response_free(r);
        if (why != NULL) {
            snprintf(err, errlen, "sg_decode_response: %s", why);
            return -1;
        }
    } else if (kind != SG_MSG_HELLO_REPLY) {
        snprintf(err, errlen, "sg_decode_response: no reply and not a HelloReply");
        return -1;
    }
    return 0;
}

/* The server side of vc_client_session, run on its own thread. */
struct vc_server {
    int lfd;
    const struct vc_frame *hello_reply;
    size_t expect;          /* bytes the client must write: Hello + requests */
    const uint8_t *replies; /* played back once expect bytes have arrived */
    size_t replies_len;
    uint8_t *got; /* what the client wrote (read until EOF) */
    size_t got_len;
    const char *fail; /* NULL, or why the server gave up */
};

/* Wait (bounded) for fd to be readable; 0 or -1 on timeout/error. */
static int vc_wait_readable(int fd)
{
    struct pollfd p = {fd, POLLIN, 0};

    return poll(&p, 1, 10000) == 1 ? 0 : -1;
}

static int vc_write_all(int fd, const uint8_t *p, size_t len)
{
    while (len > 0) {
        ssize_t n = send(fd, p, len, MSG_NOSIGNAL);

        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            return -1;
        p += n;
        len -= (size_t)n;
    }
    return 0;
}

/* Read until want bytes are in s->got in all, or EOF when want is 0. */
static int vc_read_until(struct vc_server *s, int fd, size_t want)
{
    for (;;) {
        ssize_t n;

        if (want > 0 && s->got_len >= want)
            return 0;
        if (vc_wait_readable(fd) < 0)
            return -1;
        s->got = realloc(s->got, s->got_len + 4096);
        if (s->got == NULL)
            return -1;
        n = recv(fd, s->got + s->got_len, 4096, 0);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0)
            return -1;
        if (n == 0)
            return want == 0 ? 0 : -1;
        s->got_len += (size_t)n;
    }
}

static void *vc_server_run(void *arg)
{
    struct vc_server *s = arg;
    int fd;
    size_t hello_len;

    if (vc_wait_readable(s->lfd) < 0 || (fd = accept(s->lfd, NULL, NULL)) < 0) {
        s->fail = "no connection";
        return NULL;
    }
    if (vc_read_until(s, fd, 4) < 0) {
        s->fail = "no Hello header";
    } else {
        hello_len = 4 + ((size_t)s->got[0] << 24 | (size_t)s->got[1] << 16 |
                         (size_t)s->got[2] << 8 | s->got[3]);
        if (vc_read_until(s, fd, hello_len) < 0 ||
            vc_write_all(fd, s->hello_reply->bytes, s->hello_reply->len) < 0)
            s->fail = "Hello exchange failed";
        else if (vc_read_until(s, fd, s->expect) < 0)
            s->fail = "the requests did not arrive";
        else if (vc_write_all(fd, s->replies, s->replies_len) < 0 || vc_read_until(s, fd, 0) < 0)
            s->fail = "replies not delivered, or no EOF from the client";
    }
    close(fd);
    return NULL;
}

/* Loopback listener on an ephemeral port; the fd, or -1. */
static int vc_listen(int *port)
{
    struct sockaddr_in a;
    socklen_t alen = sizeof(a);
    int fd = socket(AF_INET, SOCK_STREAM, 0);

    memset(&a, 0, sizeof(a));
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (fd < 0 || bind(fd, (struct sockaddr *)&a, sizeof(a)) < 0 || listen(fd, 1) < 0 ||
        getsockname(fd, (struct sockaddr *)&a, &alen) < 0) {
        if (fd >= 0)
            close(fd);
        return -1;
    }
    *port = ntohs(a.sin_port);
    return fd;
}

/* The client's view of limits and version against the HelloReply JSON. */
static const char *vc_check_hello(const struct sg_client *c, const json_t *j)
{
    const json_t *hr = json_object_get(j, "helloReply");
    const json_t *l = json_object_get(hr, "limits");
    const struct sg_limits *got = sg_client_limits(c);

    if (!view_u64(json_object_get(l, "maxFrameBytes"), got->max_frame_bytes) ||
        !view_u64(json_object_get(l, "maxKeyBytes"), got->max_key_bytes) ||
        !view_u64(json_object_get(l, "maxValueBytes"), got->max_value_bytes) ||
        !view_u64(json_object_get(l, "maxBatchKeys"), got->max_batch_keys) ||
        !view_u64(json_object_get(l, "maxInflight"), got->max_inflight) ||
        !view_u64(json_object_get(l, "defaultDeadlineMs"), got->default_deadline_ms) ||
        !view_u64(json_object_get(l, "maxBatchBytes"), got->max_batch_bytes))
        return "sg_client_limits differs from the HelloReply";
    if (!view_str(json_object_get(hr, "serverVersion"), sg_client_server_version(c)))
        return "sg_client_server_version differs from the HelloReply";
    return NULL;
}

/* The client half: connect, send, receive, compare. NULL or why not. */
static const char *vc_client_play(int port, const json_t *hello, const struct vc_frame *requests,
                                  size_t n_requests, const struct vc_frame *replies,
                                  size_t n_replies, const json_t *hello_reply, char *err,
                                  size_t errlen)
{
    struct sg_client_options o;
    struct sg_client *c;
    struct sg_response *r;
    const char *why = NULL;
    uint8_t *token;
    size_t token_len, i;
    uint64_t id;

    memset(&o, 0, sizeof(o));
    o.host = "127.0.0.1";
    o.port = port;
    o.client_name = json_string_value(json_object_get(hello, "clientName"));
    o.client_name = o.client_name ? o.client_name : "";
    if (pbjson_bytes(json_object_get(hello, "authToken"), &token, &token_len) < 0)
        return "bad authToken";
    o.auth_token = token;
    o.auth_token_len = token_len;
    o.timeout_ms = 10000;
    c = sg_client_connect(&o);
    if (c->err) {
        snprintf(err, errlen, "%s", c->errstr);
        sg_client_free(c);
        free(token);
        return err;
    }
    why = vc_check_hello(c, hello_reply);
    for (i = 0; why == NULL && i < n_requests; i++) {
        struct sg_request *rq =
            request_from_json(json_object_get(requests[i].json, "request"), &id, &why);
        if (rq != NULL && sg_client_send(c, rq, &id) < 0)
            why = c->errstr;
        else if (rq != NULL && id != i + 1)
            why = "the library did not assign ids 1, 2, ... in send order";
        sg_request_free(rq);
    }
    for (i = 0; why == NULL && i < n_replies; i++) {
        if (sg_client_recv(c, &r) < 0) {
            snprintf(err, errlen, "sg_client_recv of reply %zu: %s", i, c->errstr);
            why = err;
        } else {
            why = view_check(replies[i].json, r);
            if (why != NULL) {
                snprintf(err, errlen, "sg_client_recv of reply %zu: %s", i, why);
                why = err;
            }
            sg_response_free(r);
        }
    }
    sg_client_free(c);
    free(token);
    return why;
}

int vc_client_session(const struct vc_frame *hello, const struct vc_frame *hello_reply,
                      const struct vc_frame *requests, size_t n_requests,
                      const struct vc_frame *replies, size_t n_replies, char *err, size_t errlen)
{
    struct vc_server s;
    pthread_t th;
    uint8_t *sent = NULL, *out = NULL, **frames;
    size_t i, sent_len = hello->len, out_len = 0, *lens;
    const char *why = NULL;
    uint64_t id;
    int port, rc = -1;

    memset(&s, 0, sizeof(s));
    /* The library numbers requests 1, 2, ...: expect each case's frame
     * re-encoded with that id (the codec itself is checked byte for byte
     * against the vectors' ids in vc_client_frame). */
    frames = calloc(n_requests + 1, sizeof(*frames));
    lens = calloc(n_requests + 1, sizeof(*lens));
    for (i = 0; frames != NULL && lens != NULL && i < n_requests; i++) {
        struct sg_request *rq =
            request_from_json(json_object_get(requests[i].json, "request"), &id, &why);
        if (rq == NULL) {
            snprintf(err, errlen, "request %zu: %s", i, why);
            goto out;
        }
        frames[i] = sg_encode_request(rq, i + 1, &lens[i]);
        sg_request_free(rq);
        sent_len += lens[i];
    }
    for (i = 0; i < n_replies; i++)
        out_len += replies[i].len;
    sent = malloc(sent_len);
    out = malloc(out_len + 1);
    if (sent == NULL || out == NULL || frames == NULL || lens == NULL) {
        snprintf(err, errlen, "out of memory");
        goto out;
    }
    memcpy(sent, hello->bytes, hello->len);
    for (i = 0, sent_len = hello->len; i < n_requests; i++) {
        memcpy(sent + sent_len, frames[i], lens[i]);
        sent_len += lens[i];
    }
    for (i = 0, out_len = 0; i < n_replies; i++) {
        memcpy(out + out_len, replies[i].bytes, replies[i].len);
        out_len += replies[i].len;
    }
    s.lfd = vc_listen(&port);
    s.hello_reply = hello_reply;
    s.expect = sent_len;
    s.replies = out;
    s.replies_len = out_len;
    if (s.lfd < 0 || pthread_create(&th, NULL, vc_server_run, &s) != 0) {
        snprintf(err, errlen, "cannot start the loopback server");
    } else {
        why = vc_client_play(port, json_object_get(hello->json, "hello"), requests, n_requests,
                             replies, n_replies, hello_reply->json, err, errlen);
        pthread_join(th, NULL);
        if (why != NULL) {
            if (why != err)
                snprintf(err, errlen, "%s", why);
        } else if (s.fail != NULL) {
            snprintf(err, errlen, "server: %s", s.fail);
        } else if (s.got_len != sent_len || memcmp(s.got, sent, sent_len) != 0) {
            snprintf(err, errlen,
                     "the %zu bytes the client wrote differ from the %zu bytes of the "
                     "Hello and request frames",
                     s.got_len, sent_len);
        } else {
            rc = 0;
        }
    }
    if (s.lfd >= 0)
        close(s.lfd);
out:
    for (i = 0; frames != NULL && i < n_requests; i++)
        free(frames[i]);
    free(frames);
    free(lens);
    free(s.got);
    free(sent);
    free(out);
    return rc;
}
