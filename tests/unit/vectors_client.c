/*
 * vectors_client - clients/c against the golden vectors: requests built with
 * the public request API and framed by the client's own encoder, server
 * frames decoded and flattened by the client's response path. Uses the
 * client's private header (clients/c/src/internal.h) for the frame builders
 * and sg_response_wrap, which the public API reaches only over a socket.
 */
#include "vectors_client.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

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
static struct sg_request *request_from_json(const json_t *j, const char **why)
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
    r = sg_request_new(id, op);
    json_object_foreach ((json_t *)j, key, v) {
        if (strcmp(key, "id") == 0 || strcmp(key, "op") == 0) {
            continue;
        } else if (strcmp(key, "keyspace") == 0) {
            sg_request_keyspace(r, json_string_value(v));
        } else if (strcmp(key, "keys") == 0) {
            json_array_foreach (v, i, e)
                bad |= with_bytes(e, r, sg_request_add_key);
        } else if (strcmp(key, "values") == 0) {
            json_array_foreach (v, i, e)
                bad |= with_bytes(e, r, sg_request_add_value);
        } else if (strcmp(key, "ttlsMs") == 0) {
            json_array_foreach (v, i, e) {
                bad |= pbjson_u64(e, &u);
                sg_request_add_ttl(r, u);
            }
        } else if (strcmp(key, "ttlMs") == 0) {
            bad |= pbjson_u64(v, &u);
            sg_request_ttl(r, u);
        } else if (strcmp(key, "condition") == 0) {
            bad |= pbjson_enum(&slotgate__v1__condition__descriptor, v, &n);
            sg_request_condition(r, n);
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
        frame = sg_frame_hello(name ? name : "", tok, toklen, len);
        free(tok);
        return frame;
    }
    r = request_from_json(rq, why);
    if (r == NULL)
        return NULL;
    frame = sg_frame_request(r, len);
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
    json_array_foreach (json_object_get(rj, "results"), i, kr) {
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
    const char *why;

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
    return 0;
}
