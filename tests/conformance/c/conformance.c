/*
 * conformance.c - the C client's adapter for the conformance suite.
 *
 * Reads $SG_CONF_SCENARIOS (tests/conformance/scenarios.json) and runs every
 * scenario against the slotgate that tests/conformance/run.sh started, through
 * libslotgate's public API: requests built with sg_request_* and sent with
 * sg_call (one call) or sg_client_send/sg_client_recv (many in flight, driven
 * by one poll() loop over the client's connections). Each adapter client is a
 * pool of libslotgate connections opened lazily, in tracking mode (reconnect
 * and resend after SHUTTING_DOWN, client-side deadlines). Prints one line per
 * scenario and a closing "N passed, M failed"; exits non-zero on any failure.
 *
 *   run.sh -- conformance-c [SCENARIOS.json]
 */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <poll.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <jansson.h>

#include "slotgate.h"

#define CF_DEFAULT_POOL 2
#define CF_MAX_CLIENTS 32
#define CF_MAX_VARS 32
#define CF_ERR 1024
/* Added to deadline_ms for the client-side deadline (PROTOCOL.md 12.7). */
#define CF_DEADLINE_MARGIN_MS 200
/* Per-call I/O bound and reconnect window of the clients. */
#define CF_TIMEOUT_MS 10000
/* Bound on one concurrent/stampede/load step. */
#define CF_STEP_LIMIT_MS 60000

struct bytes {
    uint8_t *p;
    size_t n;
};

struct aclient {
    char name[64];
    int pool;
    struct sg_client **conns;
    int *inflight; /* per connection, requests sent and not yet settled */
    char *token;   /* NULL: the environment's */
};

struct var {
    char name[64];
    int is_int;
    uint64_t u;
    struct bytes b;
};

struct env {
    const char *host, *ca, *sni, *cert, *key, *token, *ctl;
    int port;
};

/* State of one scenario run. */
struct ctx {
    struct env *env;
    char run[48];
    struct aclient *clients[CF_MAX_CLIENTS];
    int nclients;
    struct var vars[CF_MAX_VARS];
    int nvars;
    char err[CF_ERR];
};

struct result {
    int code;
    int has_value;
    struct bytes value;
};

/* What a call produced, in the suite's terms (README "outcome"). */
struct outcome {
    int code;
    char message[256];
    int has_value;
    struct bytes value;
    size_t nres;
    struct result *res;
    int64_t count;
    uint64_t version;
    struct bytes lease;
    uint32_t retry_after_ms;
    size_t nstats;
    char **stats;
    int64_t elapsed_ms;
};

/* ---- small helpers ---------------------------------------------------------- */

static int64_t now_ms(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void sleep_ms(int64_t ms)
{
    struct timespec ts = {(time_t)(ms / 1000), (long)(ms % 1000) * 1000000L};

    while (nanosleep(&ts, &ts) < 0 && errno == EINTR)
        ;
}

static void *xmalloc(size_t n)
{
    void *p = calloc(1, n ? n : 1);

    if (p == NULL) {
        fprintf(stderr, "conformance: out of memory\n");
        abort();
    }
    return p;
}

static int fail(struct ctx *x, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static int fail(struct ctx *x, const char *fmt, ...)
{
    va_list ap;

    va_start(ap, fmt);
    vsnprintf(x->err, sizeof(x->err), fmt, ap);
    va_end(ap);
    return -1;
}

static void bytes_free(struct bytes *b)
{
    free(b->p);
    b->p = NULL;
    b->n = 0;
}

static void bytes_set(struct bytes *b, const void *p, size_t n)
{
    bytes_free(b);
    b->p = xmalloc(n + 1);
    if (n)
        memcpy(b->p, p, n);
    b->n = n;
}

/* Printable rendering of bytes for messages (escaped, truncated). */
static const char *show(const struct bytes *b, char *buf, size_t cap)
{
    size_t i, o = 0;

    for (i = 0; i < b->n && o + 8 < cap; i++) {
        uint8_t ch = b->p[i];

        if (ch >= 0x20 && ch < 0x7f && ch != '\\')
            buf[o++] = (char)ch;
        else
            o += (size_t)snprintf(buf + o, cap - o, "\\x%02x", ch);
    }
    if (i < b->n && o + 4 < cap)
        o += (size_t)snprintf(buf + o, cap - o, "...");
    buf[o] = '\0';
    return buf;
}

/* ---- codes ------------------------------------------------------------------ */

static const int known_codes[] = {SG_OK,
                                  SG_NOT_FOUND,
                                  SG_NOT_APPLIED,
                                  SG_LEASE_GRANTED,
                                  SG_LEASE_WAIT,
                                  SG_BAD_FRAME,
                                  SG_FRAME_TOO_LARGE,
                                  SG_HANDSHAKE_REQUIRED,
                                  SG_UNSUPPORTED_VERSION,
                                  SG_AUTH_FAILED,
                                  SG_TOO_MANY_CONNECTIONS,
                                  SG_SHUTTING_DOWN,
                                  SG_UNKNOWN_OP,
                                  SG_INVALID_ARGUMENT,
                                  SG_INVALID_KEY,
                                  SG_KEY_TOO_LARGE,
                                  SG_VALUE_TOO_LARGE,
                                  SG_BATCH_TOO_LARGE,
                                  SG_UNKNOWN_KEYSPACE,
                                  SG_TTL_OUT_OF_RANGE,
                                  SG_LEASE_INVALID,
                                  SG_VERSION_CONFLICT,
                                  SG_TIMEOUT,
                                  SG_SHARD_UNAVAILABLE,
                                  SG_CLUSTER_DOWN,
                                  SG_BACKEND_ERROR,
                                  SG_CORRUPT_VALUE,
                                  SG_INTERNAL,
                                  SG_CLIENT_IO,
                                  SG_CLIENT_PROTOCOL};

static int code_of_name(const char *name)
{
    size_t i;

    for (i = 0; i < sizeof(known_codes) / sizeof(known_codes[0]); i++)
        if (strcmp(sg_code_name(known_codes[i]), name) == 0)
            return known_codes[i];
    return -1;
}

/* ---- ${run} / ${i} substitution ------------------------------------------------ */

static char *subst_str(const char *s, const char *run, long idx)
{
    size_t cap = strlen(s) * 2 + 64, o = 0;
    char *out = xmalloc(cap), num[32];
    const char *rep;
    size_t rl, skip;

    while (*s) {
        rep = NULL;
        skip = 0;
        if (strncmp(s, "${run}", 6) == 0) {
            rep = run;
            skip = 6;
        } else if (idx >= 0 && strncmp(s, "${i}", 4) == 0) {
            snprintf(num, sizeof(num), "%ld", idx);
            rep = num;
            skip = 4;
        }
        if (rep) {
            rl = strlen(rep);
            while (o + rl + 1 >= cap)
                out = realloc(out, cap *= 2);
            memcpy(out + o, rep, rl);
            o += rl;
            s += skip;
        } else {
            if (o + 2 >= cap)
                out = realloc(out, cap *= 2);
            out[o++] = *s++;
        }
    }
    out[o] = '\0';
    return out;
}

/* A deep copy of j with ${run} (and ${i} if idx >= 0) replaced in every string. */
static json_t *subst(const json_t *j, const char *run, long idx)
{
    json_t *out, *v;
    const char *k;
    size_t i;
    char *s;

    switch (json_typeof(j)) {
    case JSON_STRING:
        s = subst_str(json_string_value(j), run, idx);
        out = json_string(s);
        free(s);
        return out;
    case JSON_ARRAY:
        out = json_array();
        json_array_foreach(j, i, v)
        {
            json_array_append_new(out, subst(v, run, idx));
        }
        return out;
    case JSON_OBJECT:
        out = json_object();
        json_object_foreach((json_t *)j, k, v)
        {
            json_object_set_new(out, k, subst(v, run, idx));
        }
        return out;
    default:
        return json_deep_copy(j);
    }
}

/* ---- byte strings, integers, variables ------------------------------------------- */

static struct var *var_find(struct ctx *x, const char *name)
{
    int i;

    for (i = 0; i < x->nvars; i++)
        if (strcmp(x->vars[i].name, name) == 0)
            return &x->vars[i];
    return NULL;
}

static struct var *var_put(struct ctx *x, const char *name)
{
    struct var *v = var_find(x, name);

    if (v == NULL && x->nvars < CF_MAX_VARS) {
        v = &x->vars[x->nvars++];
        snprintf(v->name, sizeof(v->name), "%s", name);
    }
    return v;
}

static int hexval(int ch)
{
    if (ch >= '0' && ch <= '9')
        return ch - '0';
    if (ch >= 'a' && ch <= 'f')
        return ch - 'a' + 10;
    if (ch >= 'A' && ch <= 'F')
        return ch - 'A' + 10;
    return -1;
}

/* Evaluate byte-string notation (README "Byte strings") into out. */
static int bstr(struct ctx *x, const json_t *j, struct bytes *out)
{
    const json_t *h, *r, *c, *v;
    struct bytes one = {0};
    struct var *var;
    const char *s;
    size_t n, i;
    json_int_t cnt;

    bytes_free(out);
    if (json_is_string(j)) {
        bytes_set(out, json_string_value(j), json_string_length(j));
        return 0;
    }
    if (!json_is_object(j))
        return fail(x, "not a byte string");
    if ((h = json_object_get(j, "hex")) != NULL) {
        if (!json_is_string(h) || json_string_length(h) % 2 != 0)
            return fail(x, "bad hex byte string");
        s = json_string_value(h);
        n = json_string_length(h) / 2;
        out->p = xmalloc(n + 1);
        out->n = n;
        for (i = 0; i < n; i++) {
            int hi = hexval(s[2 * i]), lo = hexval(s[2 * i + 1]);

            if (hi < 0 || lo < 0)
                return fail(x, "bad hex digit in \"%s\"", s);
            out->p[i] = (uint8_t)(hi << 4 | lo);
        }
        return 0;
    }
    if ((r = json_object_get(j, "repeat")) != NULL) {
        c = json_object_get(j, "count");
        if (!json_is_integer(c) || (cnt = json_integer_value(c)) < 0)
            return fail(x, "repeat needs a non-negative count");
        if (bstr(x, r, &one) < 0)
            return -1;
        out->n = one.n * (size_t)cnt;
        out->p = xmalloc(out->n + 1);
        for (i = 0; i < (size_t)cnt; i++)
            memcpy(out->p + i * one.n, one.p, one.n);
        bytes_free(&one);
        return 0;
    }
    if ((v = json_object_get(j, "var")) != NULL) {
        if (!json_is_string(v) || (var = var_find(x, json_string_value(v))) == NULL)
            return fail(x, "unknown variable");
        if (var->is_int)
            return fail(x, "variable %s holds an integer, not bytes", var->name);
        bytes_set(out, var->b.p, var->b.n);
        return 0;
    }
    return fail(x, "unknown byte-string form");
}

/* An unsigned integer: a JSON integer, a decimal string, or {"var": NAME}. */
static int uint_of(struct ctx *x, const json_t *j, uint64_t *out)
{
    struct var *var;
    const json_t *v;
    char *end;

    if (json_is_integer(j) && json_integer_value(j) >= 0) {
        *out = (uint64_t)json_integer_value(j);
        return 0;
    }
    if (json_is_string(j)) {
        errno = 0;
        *out = strtoull(json_string_value(j), &end, 10);
        if (errno == 0 && *end == '\0' && end != json_string_value(j))
            return 0;
    }
    if (json_is_object(j) && (v = json_object_get(j, "var")) != NULL && json_is_string(v) &&
        (var = var_find(x, json_string_value(v))) != NULL && var->is_int) {
        *out = var->u;
        return 0;
    }
    return fail(x, "not an unsigned integer");
}

/* ---- clients ------------------------------------------------------------------- */

static struct aclient *client_find(struct ctx *x, const char *name)
{
    int i;

    for (i = 0; i < x->nclients; i++)
        if (strcmp(x->clients[i]->name, name) == 0)
            return x->clients[i];
    return NULL;
}

static void client_close(struct aclient *ac)
{
    int i;

    if (ac == NULL)
        return;
    for (i = 0; i < ac->pool; i++)
        sg_client_free(ac->conns[i]);
    free(ac->conns);
    free(ac->inflight);
    free(ac->token);
    free(ac);
}

static struct aclient *client_new(const char *name, int pool, const char *token)
{
    struct aclient *ac = xmalloc(sizeof(*ac));

    snprintf(ac->name, sizeof(ac->name), "%s", name);
    ac->pool = pool > 0 ? pool : CF_DEFAULT_POOL;
    ac->conns = xmalloc((size_t)ac->pool * sizeof(*ac->conns));
    ac->inflight = xmalloc((size_t)ac->pool * sizeof(*ac->inflight));
    ac->token = token ? strdup(token) : NULL;
    return ac;
}

/*
 * Connection i of ac, connected on first use (and again if a connect failed
 * before). NULL with *code (the server's refusal, e.g. AUTH_FAILED, or
 * SG_CLIENT_IO) and msg when it cannot connect.
 */
static struct sg_client *client_conn(struct env *e, struct aclient *ac, int i, int *code, char *msg,
                                     size_t msglen)
{
    struct sg_client_options o;
    const char *token = ac->token ? ac->token : e->token;

    if (ac->conns[i] != NULL)
        return ac->conns[i];
    memset(&o, 0, sizeof(o));
    o.host = e->host;
    o.port = e->port;
    o.tls = 1;
    o.cacert = e->ca;
    o.sni = e->sni;
    o.cert = e->cert;
    o.key = e->key;
    o.client_name = "conformance-c";
    o.auth_token = token;
    o.auth_token_len = token ? strlen(token) : 0;
    o.timeout_ms = CF_TIMEOUT_MS;
    o.reconnect = 1;
    o.deadline_margin_ms = CF_DEADLINE_MARGIN_MS;
    *code = 0;
    ac->conns[i] = sg_client_connect(&o);
    if (ac->conns[i]->err) {
        *code = ac->conns[i]->err;
        snprintf(msg, msglen, "%s", ac->conns[i]->errstr);
        sg_client_free(ac->conns[i]);
        ac->conns[i] = NULL;
        return NULL;
    }
    return ac->conns[i];
}

/* ---- requests ------------------------------------------------------------------ */

static const struct {
    const char *call;
    int op;
} calls[] = {{"ping", SG_OP_PING},
             {"get", SG_OP_GET},
             {"set", SG_OP_SET},
             {"del", SG_OP_DELETE},
             {"expire", SG_OP_EXPIRE},
             {"mget", SG_OP_MGET},
             {"mset", SG_OP_MSET},
             {"mdel", SG_OP_MDELETE},
             {"invalidate", SG_OP_INVALIDATE},
             {"get_or_lease", SG_OP_GET_OR_LEASE},
             {"set_with_lease", SG_OP_SET_WITH_LEASE},
             {"get_versioned", SG_OP_GET_VERSIONED},
             {"set_versioned", SG_OP_SET_VERSIONED},
             {"stats", SG_OP_STATS}};

static const struct {
    const char *name;
    int op;
} op_names[] = {{"OP_UNSPECIFIED", 0},
                {"OP_PING", 1},
                {"OP_GET", 2},
                {"OP_SET", 3},
                {"OP_DELETE", 4},
                {"OP_EXPIRE", 5},
                {"OP_MGET", 10},
                {"OP_MSET", 11},
                {"OP_MDELETE", 12},
                {"OP_INVALIDATE", 20},
                {"OP_GET_OR_LEASE", 21},
                {"OP_SET_WITH_LEASE", 22},
                {"OP_SET_VERSIONED", 23},
                {"OP_GET_VERSIONED", 24},
                {"OP_STATS", 30}};

/* Which args each call accepts (anything else is a scenario-file error). */
static int arg_allowed(const char *call, const char *arg)
{
    static const char *const common[] = {"keyspace", "deadline_ms", NULL};
    static const struct {
        const char *call;
        const char *args[6];
    } t[] = {{"ping", {NULL}},
             {"get", {"key", NULL}},
             {"set", {"key", "value", "ttl_ms", "nx", "xx", NULL}},
             {"del", {"key", NULL}},
             {"expire", {"key", "ttl_ms", NULL}},
             {"mget", {"keys", NULL}},
             {"mset", {"items", "ttl_ms", "nx", "xx", NULL}},
             {"mdel", {"keys", NULL}},
             {"invalidate", {"pattern", NULL}},
             {"get_or_lease", {"key", "ttl_ms", NULL}},
             {"set_with_lease", {"key", "value", "lease", "ttl_ms", NULL}},
             {"get_versioned", {"key", NULL}},
             {"set_versioned", {"key", "value", "version", "ttl_ms", NULL}},
             {"stats", {NULL}}};
    size_t i, k;

    for (k = 0; common[k]; k++)
        if (strcmp(common[k], arg) == 0)
            return 1;
    for (i = 0; i < sizeof(t) / sizeof(t[0]); i++)
        if (strcmp(t[i].call, call) == 0)
            for (k = 0; t[i].args[k]; k++)
                if (strcmp(t[i].args[k], arg) == 0)
                    return 1;
    return 0;
}

static int add_key_arg(struct ctx *x, struct sg_request *r, const json_t *j, int key)
{
    struct bytes b = {0};

    if (bstr(x, j, &b) < 0)
        return -1;
    if (key)
        sg_request_add_key(r, b.p, b.n);
    else
        sg_request_add_value(r, b.p, b.n);
    bytes_free(&b);
    return 0;
}

static int base64_decode(const char *s, struct bytes *out)
{
    static const char tbl[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    size_t n = strlen(s), o = 0;
    uint32_t acc = 0;
    int bits = 0;
    const char *p;

    bytes_free(out);
    out->p = xmalloc(n + 1);
    for (; *s && *s != '='; s++) {
        p = strchr(tbl, *s);
        if (p == NULL || *s == '\0') {
            /* URL-safe alphabet too (proto3 JSON parsers accept it) */
            if (*s == '-')
                p = tbl + 62;
            else if (*s == '_')
                p = tbl + 63;
            else
                return -1;
        }
        acc = acc << 6 | (uint32_t)(p - tbl);
        bits += 6;
        if (bits >= 8) {
            bits -= 8;
            out->p[o++] = (uint8_t)(acc >> bits);
        }
    }
    out->n = o;
    return 0;
}

/* A Request in protobuf canonical JSON (lowerCamelCase or proto field names). */
static struct sg_request *raw_request(struct ctx *x, const json_t *rq)
{
    struct sg_request *r;
    struct bytes b = {0};
    const json_t *v, *e;
    const char *k;
    uint64_t u = 0;
    size_t i, n;
    int op = 0, cond;

    if (!json_is_object(rq)) {
        fail(x, "raw: request must be an object");
        return NULL;
    }
    if ((v = json_object_get(rq, "op")) != NULL) {
        if (json_is_integer(v)) {
            op = (int)json_integer_value(v);
        } else if (json_is_string(v)) {
            op = -1;
            for (i = 0; i < sizeof(op_names) / sizeof(op_names[0]); i++)
                if (strcmp(op_names[i].name, json_string_value(v)) == 0)
                    op = op_names[i].op;
            if (op < 0) {
                fail(x, "raw: unknown op name %s", json_string_value(v));
                return NULL;
            }
        }
    }
    r = sg_request_new((enum sg_op)op);
    sg_request_skip_checks(r); /* raw: the server must see it as written */
    json_object_foreach((json_t *)rq, k, v)
    {
        if (strcmp(k, "op") == 0) {
            continue;
        } else if (strcmp(k, "keyspace") == 0 && json_is_string(v)) {
            sg_request_keyspace(r, json_string_value(v));
        } else if (strcmp(k, "keys") == 0 || strcmp(k, "values") == 0) {
            json_array_foreach(v, i, e)
            {
                if (!json_is_string(e) || base64_decode(json_string_value(e), &b) < 0)
                    goto bad;
                if (k[0] == 'k')
                    sg_request_add_key(r, b.p, b.n);
                else
                    sg_request_add_value(r, b.p, b.n);
            }
        } else if (strcmp(k, "ttlMs") == 0 || strcmp(k, "ttl_ms") == 0) {
            if (uint_of(x, v, &u) < 0)
                goto bad;
            sg_request_ttl(r, u);
        } else if (strcmp(k, "ttlsMs") == 0 || strcmp(k, "ttls_ms") == 0) {
            n = json_array_size(v);
            for (i = 0; i < n; i++) {
                if (uint_of(x, json_array_get(v, i), &u) < 0)
                    goto bad;
                sg_request_add_ttl(r, u);
            }
        } else if (strcmp(k, "deadlineMs") == 0 || strcmp(k, "deadline_ms") == 0) {
            if (uint_of(x, v, &u) < 0)
                goto bad;
            sg_request_deadline(r, (uint32_t)u);
        } else if (strcmp(k, "version") == 0) {
            if (uint_of(x, v, &u) < 0)
                goto bad;
            sg_request_version(r, u);
        } else if (strcmp(k, "condition") == 0) {
            if (json_is_integer(v))
                cond = (int)json_integer_value(v);
            else if (json_is_string(v) && strcmp(json_string_value(v), "COND_NX") == 0)
                cond = SG_COND_NX;
            else if (json_is_string(v) && strcmp(json_string_value(v), "COND_XX") == 0)
                cond = SG_COND_XX;
            else
                cond = SG_COND_NONE;
            sg_request_condition(r, cond);
        } else if ((strcmp(k, "pattern") == 0 || strcmp(k, "lease") == 0) && json_is_string(v)) {
            if (base64_decode(json_string_value(v), &b) < 0)
                goto bad;
            if (k[0] == 'p')
                sg_request_pattern(r, b.p, b.n);
            else
                sg_request_lease(r, b.p, b.n);
        } else {
            fail(x, "raw: unsupported field %s", k);
            goto out;
        }
    }
    bytes_free(&b);
    return r;
bad:
    fail(x, "raw: bad value for field %s", k);
out:
    bytes_free(&b);
    sg_request_free(r);
    return NULL;
}

/* Build the request for one call (README "Calls and their args"). */
static struct sg_request *build_request(struct ctx *x, const char *call, const json_t *args)
{
    struct sg_request *r;
    const json_t *v, *it;
    const char *k;
    uint64_t u;
    size_t i;
    int op = -1, nx, xx;
    struct bytes b = {0};

    if (strcmp(call, "raw") == 0)
        return raw_request(x, json_object_get(args, "request"));
    for (i = 0; i < sizeof(calls) / sizeof(calls[0]); i++)
        if (strcmp(calls[i].call, call) == 0)
            op = calls[i].op;
    if (op < 0) {
        fail(x, "unknown call %s", call);
        return NULL;
    }
    json_object_foreach((json_t *)args, k, v)
    {
        if (!arg_allowed(call, k)) {
            fail(x, "call %s takes no argument %s", call, k);
            return NULL;
        }
    }
    r = sg_request_new((enum sg_op)op);
    if ((v = json_object_get(args, "keyspace")) != NULL && json_is_string(v))
        sg_request_keyspace(r, json_string_value(v));
    if ((v = json_object_get(args, "deadline_ms")) != NULL) {
        if (uint_of(x, v, &u) < 0)
            goto bad;
        sg_request_deadline(r, (uint32_t)u);
    }
    if ((v = json_object_get(args, "key")) != NULL && add_key_arg(x, r, v, 1) < 0)
        goto bad;
    if ((v = json_object_get(args, "keys")) != NULL) {
        json_array_foreach(v, i, it)
        {
            if (add_key_arg(x, r, it, 1) < 0)
                goto bad;
        }
    }
    if ((v = json_object_get(args, "value")) != NULL && add_key_arg(x, r, v, 0) < 0)
        goto bad;
    if ((v = json_object_get(args, "items")) != NULL) {
        int any_ttl = 0;

        json_array_foreach(v, i, it)
        {
            any_ttl |= json_object_get(it, "ttl_ms") != NULL;
        }
        json_array_foreach(v, i, it)
        {
            if (add_key_arg(x, r, json_object_get(it, "key"), 1) < 0 ||
                add_key_arg(x, r, json_object_get(it, "value"), 0) < 0)
                goto bad;
            u = 0;
            if (json_object_get(it, "ttl_ms") != NULL &&
                uint_of(x, json_object_get(it, "ttl_ms"), &u) < 0)
                goto bad;
            if (any_ttl)
                sg_request_add_ttl(r, u);
        }
    }
    if ((v = json_object_get(args, "ttl_ms")) != NULL) {
        if (uint_of(x, v, &u) < 0)
            goto bad;
        sg_request_ttl(r, u);
    }
    nx = json_is_true(json_object_get(args, "nx"));
    xx = json_is_true(json_object_get(args, "xx"));
    if (nx || xx)
        sg_request_condition(r, nx ? SG_COND_NX : SG_COND_XX);
    if ((v = json_object_get(args, "pattern")) != NULL) {
        if (bstr(x, v, &b) < 0)
            goto bad;
        sg_request_pattern(r, b.p, b.n);
    }
    if ((v = json_object_get(args, "lease")) != NULL) {
        if (bstr(x, v, &b) < 0)
            goto bad;
        sg_request_lease(r, b.p, b.n);
    }
    if ((v = json_object_get(args, "version")) != NULL) {
        if (uint_of(x, v, &u) < 0)
            goto bad;
        sg_request_version(r, u);
    }
    bytes_free(&b);
    return r;
bad:
    bytes_free(&b);
    sg_request_free(r);
    return NULL;
}

/* ---- outcomes ------------------------------------------------------------------ */

static void outcome_free(struct outcome *o)
{
    size_t i;

    bytes_free(&o->value);
    bytes_free(&o->lease);
    for (i = 0; i < o->nres; i++)
        bytes_free(&o->res[i].value);
    free(o->res);
    for (i = 0; i < o->nstats; i++)
        free(o->stats[i]);
    free(o->stats);
    memset(o, 0, sizeof(*o));
}

static void outcome_code(struct outcome *o, int code, const char *msg)
{
    outcome_free(o);
    o->code = code;
    snprintf(o->message, sizeof(o->message), "%s", msg ? msg : "");
}

static void outcome_from(struct outcome *o, const struct sg_response *r)
{
    size_t i;

    outcome_free(o);
    o->code = r->code;
    snprintf(o->message, sizeof(o->message), "%s", r->message);
    if (r->code == SG_OK || r->value_len > 0) {
        o->has_value = 1;
        bytes_set(&o->value, r->value, r->value_len);
    }
    o->count = r->count;
    o->version = r->version;
    bytes_set(&o->lease, r->lease, r->lease_len);
    o->retry_after_ms = r->retry_after_ms;
    if (r->n_results > 0) {
        o->nres = r->n_results;
        o->res = xmalloc(o->nres * sizeof(*o->res));
        for (i = 0; i < o->nres; i++) {
            o->res[i].code = r->results[i].code;
            if (r->results[i].code == SG_OK) {
                o->res[i].has_value = 1;
                bytes_set(&o->res[i].value, r->results[i].value, r->results[i].value_len);
            }
        }
    }
    if (r->n_stats > 0) {
        o->nstats = r->n_stats;
        o->stats = xmalloc(o->nstats * sizeof(*o->stats));
        for (i = 0; i < o->nstats; i++)
            o->stats[i] = strdup(r->stat_names[i]);
    }
}

/* code / code_in against one code */
static int match_code(struct ctx *x, const json_t *exp, int code, const char *what)
{
    const json_t *c = json_object_get(exp, "code"), *in = json_object_get(exp, "code_in"), *e;
    size_t i;
    int want;

    if (c != NULL) {
        if (!json_is_string(c) || (want = code_of_name(json_string_value(c))) < 0)
            return fail(x, "%s: unknown expected code", what);
        if (want != code)
            return fail(x, "%s: code %s, expected %s", what, sg_code_name(code),
                        json_string_value(c));
    }
    if (in != NULL) {
        json_array_foreach(in, i, e)
        {
            if (!json_is_string(e) || (want = code_of_name(json_string_value(e))) < 0)
                return fail(x, "%s: unknown code in code_in", what);
            if (want == code)
                return 0;
        }
        return fail(x, "%s: code %s, expected one of the code_in list", what, sg_code_name(code));
    }
    return 0;
}

static int match_bytes(struct ctx *x, const json_t *exp, int has, const struct bytes *got,
                       const char *what)
{
    struct bytes want = {0};
    char b1[160], b2[160];
    int rc = 0;

    if (bstr(x, exp, &want) < 0)
        return -1;
    if (!has)
        rc = fail(x, "%s: no value, expected \"%s\"", what, show(&want, b1, sizeof(b1)));
    else if (want.n != got->n || (want.n && memcmp(want.p, got->p, want.n) != 0))
        rc = fail(x, "%s: value \"%s\" (%zu bytes), expected \"%s\" (%zu bytes)", what,
                  show(got, b1, sizeof(b1)), got->n, show(&want, b2, sizeof(b2)), want.n);
    bytes_free(&want);
    return rc;
}

static int match_int(struct ctx *x, const json_t *exp, int64_t got, const char *what)
{
    const json_t *mn, *mx;
    uint64_t u = 0;

    if (json_is_object(exp) && json_object_get(exp, "var") == NULL) {
        mn = json_object_get(exp, "min");
        mx = json_object_get(exp, "max");
        if ((mn && got < json_integer_value(mn)) || (mx && got > json_integer_value(mx)))
            return fail(x,
                        "%s: %" PRId64 ", expected %" JSON_INTEGER_FORMAT "..%" JSON_INTEGER_FORMAT,
                        what, got, mn ? json_integer_value(mn) : INT64_MIN,
                        mx ? json_integer_value(mx) : INT64_MAX);
        return 0;
    }
    if (json_is_integer(exp) && json_integer_value(exp) < 0) {
        if (got != json_integer_value(exp))
            return fail(x, "%s: %" PRId64 ", expected %" JSON_INTEGER_FORMAT, what, got,
                        json_integer_value(exp));
        return 0;
    }
    if (uint_of(x, exp, &u) < 0)
        return fail(x, "%s: bad expected integer", what);
    if ((uint64_t)got != u)
        return fail(x, "%s: %" PRId64 ", expected %" PRIu64, what, got, u);
    return 0;
}

/* Check an outcome against expect (README "expect checks the outcome"). */
static int match(struct ctx *x, const struct outcome *o, const json_t *exp)
{
    const json_t *v, *e;
    const char *k;
    char what[64];
    size_t i, j;

    if (exp == NULL)
        return 0;
    json_object_foreach((json_t *)exp, k, v)
    {
        if (strcmp(k, "code") == 0 || strcmp(k, "code_in") == 0) {
            continue;
        } else if (strcmp(k, "value") == 0) {
            if (match_bytes(x, v, o->has_value, &o->value, "value") < 0)
                return -1;
        } else if (strcmp(k, "results") == 0) {
            if (json_array_size(v) != o->nres)
                return fail(x, "%zu results, expected %zu (code %s)", o->nres, json_array_size(v),
                            sg_code_name(o->code));
            json_array_foreach(v, i, e)
            {
                snprintf(what, sizeof(what), "results[%zu]", i);
                if (match_code(x, e, o->res[i].code, what) < 0)
                    return -1;
                if (json_object_get(e, "value") != NULL &&
                    match_bytes(x, json_object_get(e, "value"), o->res[i].has_value,
                                &o->res[i].value, what) < 0)
                    return -1;
            }
        } else if (strcmp(k, "count") == 0) {
            if (match_int(x, v, o->count, "count") < 0)
                return -1;
        } else if (strcmp(k, "version") == 0) {
            if (match_int(x, v, (int64_t)o->version, "version") < 0)
                return -1;
        } else if (strcmp(k, "lease_present") == 0) {
            if (json_is_true(v) != (o->lease.n > 0))
                return fail(x, "lease %s, expected %s", o->lease.n ? "present" : "absent",
                            json_is_true(v) ? "present" : "absent");
        } else if (strcmp(k, "stats_has") == 0) {
            json_array_foreach(v, i, e)
            {
                for (j = 0; j < o->nstats; j++)
                    if (strcmp(o->stats[j], json_string_value(e)) == 0)
                        break;
                if (j == o->nstats)
                    return fail(x, "stats has no %s (%zu names)", json_string_value(e), o->nstats);
            }
        } else if (strcmp(k, "within_ms") == 0) {
            if (o->elapsed_ms > json_integer_value(v))
                return fail(x,
                            "settled after %" PRId64 " ms, expected within %" JSON_INTEGER_FORMAT,
                            o->elapsed_ms, json_integer_value(v));
        } else {
            return fail(x, "unknown expectation key %s", k);
        }
    }
    /* code last: it names the failure best when everything else matched */
    if (match_code(x, exp, o->code, "code") < 0) {
        if (o->message[0]) {
            size_t n = strlen(x->err);

            snprintf(x->err + n, sizeof(x->err) - n, " (message: %s)", o->message);
        }
        return -1;
    }
    return 0;
}

/* ---- one call -------------------------------------------------------------------- */

/* Run one call step synchronously on connection 0 of its client. */
static int do_call(struct ctx *x, const json_t *step, struct outcome *o)
{
    const json_t *args = json_object_get(step, "args");
    const char *call = json_string_value(json_object_get(step, "call"));
    const char *cname = json_string_value(json_object_get(step, "client"));
    struct aclient *ac = client_find(x, cname ? cname : "default");
    struct sg_response *resp = NULL;
    struct sg_request *r;
    struct sg_client *c;
    char msg[256];
    int64_t t0;
    int code;
    json_t *empty = NULL;

    if (ac == NULL)
        return fail(x, "no client named %s", cname);
    if (args == NULL)
        args = empty = json_object();
    t0 = now_ms();
    c = client_conn(x->env, ac, 0, &code, msg, sizeof(msg));
    if (c == NULL) {
        outcome_code(o, code, msg);
    } else {
        r = build_request(x, call, args);
        if (r == NULL) {
            json_decref(empty);
            return -1;
        }
        sg_call(c, r, &resp);
        sg_request_free(r);
        if (resp != NULL)
            outcome_from(o, resp);
        else /* a client-side failure: a local check, a client deadline, I/O */
            outcome_code(o, c->err, c->errstr);
        sg_response_free(resp);
    }
    o->elapsed_ms = now_ms() - t0;
    json_decref(empty);
    return 0;
}

static int save_vars(struct ctx *x, const struct outcome *o, const json_t *save)
{
    const json_t *v;
    const char *k;
    struct var *var;

    json_object_foreach((json_t *)save, k, v)
    {
        if (!json_is_string(v) || (var = var_put(x, json_string_value(v))) == NULL)
            return fail(x, "bad save target");
        bytes_free(&var->b);
        var->is_int = 0;
        if (strcmp(k, "lease") == 0) {
            bytes_set(&var->b, o->lease.p, o->lease.n);
        } else if (strcmp(k, "value") == 0) {
            bytes_set(&var->b, o->value.p, o->value.n);
        } else if (strcmp(k, "version") == 0) {
            var->is_int = 1;
            var->u = o->version;
        } else if (strcmp(k, "count") == 0) {
            var->is_int = 1;
            var->u = (uint64_t)o->count;
        } else {
            return fail(x, "cannot save %s", k);
        }
    }
    return 0;
}

/* ---- the control command ------------------------------------------------------------ */

/* Start $SG_CONF_CTL verb [arg] with stdout to fd out (or /dev/null); returns its pid. */
static pid_t ctl_spawn(struct env *e, const char *verb, const char *arg, int out)
{
    pid_t pid = fork();

    if (pid == 0) {
        int nul = open("/dev/null", O_RDWR), fd;
        long max = sysconf(_SC_OPEN_MAX);

        dup2(nul, 0);
        dup2(out >= 0 ? out : nul, 1);
        /* Nothing else may leak into ctl and what it starts (a daemonized
         * redis-server holding our pipe would make the read never end). */
        for (fd = 3; fd < (max > 0 && max < 65536 ? max : 65536); fd++)
            close(fd);
        execl(e->ctl, e->ctl, verb, arg, (char *)NULL);
        fprintf(stderr, "conformance: exec %s: %s\n", e->ctl, strerror(errno));
        _exit(127);
    }
    return pid;
}

static int ctl_status_ok(struct ctx *x, const char *verb, int st)
{
    if (WIFEXITED(st) && WEXITSTATUS(st) == 0)
        return 0;
    return fail(x, "ctl %s failed (status %d; see its message above)", verb,
                WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st));
}

static int do_ctl(struct ctx *x, const json_t *step)
{
    const char *verb = json_string_value(json_object_get(step, "ctl"));
    const char *arg = json_string_value(json_object_get(step, "arg"));
    const json_t *exp = json_object_get(step, "expect"), *eq;
    char buf[256];
    size_t n = 0;
    ssize_t got;
    int fds[2], st;
    long long val;
    char *end;
    pid_t pid;

    if (pipe(fds) < 0)
        return fail(x, "pipe: %s", strerror(errno));
    pid = ctl_spawn(x->env, verb, arg, fds[1]);
    close(fds[1]);
    while (n + 1 < sizeof(buf) && (got = read(fds[0], buf + n, sizeof(buf) - 1 - n)) != 0) {
        if (got < 0 && errno == EINTR)
            continue;
        if (got < 0)
            break;
        n += (size_t)got;
    }
    buf[n] = '\0';
    close(fds[0]);
    while (waitpid(pid, &st, 0) < 0)
        if (errno != EINTR)
            return fail(x, "waitpid: %s", strerror(errno));
    if (ctl_status_ok(x, verb, st) < 0)
        return -1;
    if (exp == NULL)
        return 0;
    errno = 0;
    val = strtoll(buf, &end, 10);
    if (errno != 0 || end == buf)
        return fail(x, "ctl %s printed \"%s\", not an integer", verb, buf);
    if ((eq = json_object_get(exp, "equals")) != NULL) {
        if (val != json_integer_value(eq))
            return fail(x, "ctl %s %s: %lld, expected %" JSON_INTEGER_FORMAT, verb, arg ? arg : "",
                        val, json_integer_value(eq));
        return 0;
    }
    if ((json_object_get(exp, "min") && val < json_integer_value(json_object_get(exp, "min"))) ||
        (json_object_get(exp, "max") && val > json_integer_value(json_object_get(exp, "max"))))
        return fail(x, "ctl %s %s: %lld, expected %" JSON_INTEGER_FORMAT "..%" JSON_INTEGER_FORMAT,
                    verb, arg ? arg : "", val, json_integer_value(json_object_get(exp, "min")),
                    json_integer_value(json_object_get(exp, "max")));
    return 0;
}

/* ---- many calls in flight: one poll() loop over the connections ---------------------- */

enum job_kind { JOB_CALL, JOB_LEASE };

struct job {
    struct aclient *ac;
    int conn;
    long index; /* ${i} of the current call */
    /* in flight */
    struct sg_client *c;
    uint64_t id;
    int busy;
    int64_t issued;
    int64_t wake;
    int done;
    /* stampede */
    int phase; /* 0: GET_OR_LEASE, 1: SET_WITH_LEASE */
    struct bytes lease, final;
    int fills;
};

struct engine {
    struct ctx *x;
    enum job_kind kind;
    struct job *jobs;
    size_t njobs;
    /* concurrent / load */
    const char *call;
    const json_t *args, *expect;
    long next, count;
    long failed, completed;
    char first_fail[CF_ERR];
    /* load: the control verb run once after `after` completions */
    long after;
    const char *during;
    pid_t ctl_pid;
    int ctl_started, ctl_status, ctl_running_at_end;
    /* stampede */
    const char *keyspace;
    struct bytes key, value;
};

/* The next request of job j, or NULL when j is done (or sleeping: wake set). */
static struct sg_request *job_request(struct engine *g, struct job *j)
{
    struct sg_request *r;
    json_t *args;

    if (g->kind == JOB_LEASE) {
        r = sg_request_new(j->phase == 0 ? SG_OP_GET_OR_LEASE : SG_OP_SET_WITH_LEASE);
        sg_request_keyspace(r, g->keyspace);
        sg_request_add_key(r, g->key.p, g->key.n);
        if (j->phase == 1) {
            sg_request_add_value(r, g->value.p, g->value.n);
            sg_request_lease(r, j->lease.p, j->lease.n);
        }
        return r;
    }
    args = subst(g->args, "", j->index); /* ${run} is already substituted */
    r = build_request(g->x, g->call, args);
    json_decref(args);
    return r;
}

static void engine_fail(struct engine *g, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
static void engine_fail(struct engine *g, const char *fmt, ...)
{
    va_list ap;

    g->failed++;
    if (g->first_fail[0])
        return;
    va_start(ap, fmt);
    vsnprintf(g->first_fail, sizeof(g->first_fail), fmt, ap);
    va_end(ap);
}

/* Job j's call settled with outcome o: check it and pick j's next call. */
static void job_settled(struct engine *g, struct job *j, struct outcome *o)
{
    json_t *exp;

    if (j->busy)
        j->ac->inflight[j->conn]--;
    j->busy = 0;
    g->completed++;
    if (g->kind == JOB_LEASE) {
        if (j->phase == 0 && o->code == SG_OK) {
            bytes_set(&j->final, o->value.p, o->value.n);
            j->done = 1;
        } else if (j->phase == 0 && o->code == SG_LEASE_GRANTED) {
            j->fills++;
            bytes_set(&j->lease, o->lease.p, o->lease.n);
            j->phase = 1;
        } else if (j->phase == 0 && o->code == SG_LEASE_WAIT) {
            j->wake = now_ms() + (o->retry_after_ms ? o->retry_after_ms : 10);
        } else if (j->phase == 1 && o->code == SG_OK) {
            bytes_set(&j->final, g->value.p, g->value.n);
            j->done = 1;
        } else if (j->phase == 1 && o->code == SG_LEASE_INVALID) {
            j->phase = 0;
        } else {
            engine_fail(g, "caller %ld: %s answered %s (%s)", j->index,
                        j->phase ? "set_with_lease" : "get_or_lease", sg_code_name(o->code),
                        o->message);
            j->done = 1;
        }
        return;
    }
    if (g->expect != NULL) {
        exp = subst(g->expect, "", j->index);
        if (match(g->x, o, exp) < 0)
            engine_fail(g, "call %ld: %s", j->index, g->x->err);
        json_decref(exp);
    }
    if (g->next < g->count)
        j->index = g->next++;
    else
        j->done = 1;
}

static struct job *engine_owner(struct engine *g, struct sg_client *c, uint64_t id)
{
    size_t i;

    for (i = 0; i < g->njobs; i++)
        if (g->jobs[i].busy && g->jobs[i].c == c && g->jobs[i].id == id)
            return &g->jobs[i];
    return NULL;
}

/* Receive one response on c and hand it to its job; -1 if c failed. */
static int engine_recv(struct engine *g, struct sg_client *c)
{
    struct sg_response *resp;
    struct outcome o = {0};
    struct job *j;
    size_t i;

    if (sg_client_recv(c, &resp) < 0) {
        for (i = 0; i < g->njobs; i++) {
            if (g->jobs[i].busy && g->jobs[i].c == c) {
                outcome_code(&o, SG_CLIENT_IO, c->errstr);
                o.elapsed_ms = now_ms() - g->jobs[i].issued;
                job_settled(g, &g->jobs[i], &o);
            }
        }
        outcome_free(&o);
        return -1;
    }
    j = engine_owner(g, c, resp->id);
    if (j != NULL) {
        outcome_from(&o, resp);
        o.elapsed_ms = now_ms() - j->issued;
        job_settled(g, j, &o);
    }
    sg_response_free(resp);
    outcome_free(&o);
    return 0;
}

static int engine_busy_on(const struct engine *g, const struct sg_client *c)
{
    size_t i;

    for (i = 0; i < g->njobs; i++)
        if (g->jobs[i].busy && g->jobs[i].c == c)
            return 1;
    return 0;
}

static void engine_ctl_poll(struct engine *g, int block)
{
    int st;
    pid_t r;

    if (g->ctl_pid <= 0)
        return;
    do {
        r = waitpid(g->ctl_pid, &st, block ? 0 : WNOHANG);
    } while (r < 0 && errno == EINTR);
    if (r == g->ctl_pid) {
        g->ctl_status = st;
        g->ctl_pid = 0;
    }
}

/*
 * Drive every job to completion: issue each idle job's next request on its
 * connection, then wait (poll) for answers on every connection with requests
 * in flight, and hand each answer to its job. Returns -1 (x->err) only for
 * a step that cannot run at all; call failures are counted in g->failed.
 */
static int engine_run(struct engine *g)
{
    struct pollfd pfd[CF_MAX_CLIENTS * 8];
    struct sg_client *cs[CF_MAX_CLIENTS * 8];
    int64_t limit = now_ms() + CF_STEP_LIMIT_MS, now, wake;
    struct sg_request *r;
    struct outcome o = {0};
    struct job *j;
    size_t i, k, n, active;
    char msg[256];
    int code, timeout, progressed;

    for (;;) {
        now = now_ms();
        active = 0;
        wake = now + 20;
        if (g->during && !g->ctl_started && g->completed >= g->after) {
            g->ctl_started = 1;
            g->ctl_pid = ctl_spawn(g->x->env, g->during, NULL, -1);
        }
        engine_ctl_poll(g, 0);
        for (i = 0; i < g->njobs; i++) {
            j = &g->jobs[i];
            if (j->done)
                continue;
            active++;
            if (j->busy)
                continue;
            if (j->wake > now) {
                wake = j->wake < wake ? j->wake : wake;
                continue;
            }
            j->c = client_conn(g->x->env, j->ac, j->conn, &code, msg, sizeof(msg));
            j->issued = now;
            if (j->c == NULL) {
                outcome_code(&o, code, msg);
                job_settled(g, j, &o);
                continue;
            }
            /* never more than the announced max_inflight on one connection */
            if (sg_client_limits(j->c)->max_inflight > 0 &&
                j->ac->inflight[j->conn] >= (int)sg_client_limits(j->c)->max_inflight)
                continue;
            r = job_request(g, j);
            if (r == NULL) {
                outcome_free(&o);
                return -1;
            }
            if (sg_client_send(j->c, r, &j->id) < 0) {
                outcome_code(&o, j->c->err, j->c->errstr);
                job_settled(g, j, &o);
            } else {
                j->busy = 1;
                j->ac->inflight[j->conn]++;
            }
            sg_request_free(r);
        }
        outcome_free(&o);
        if (active == 0)
            break;
        if (now_ms() > limit) {
            engine_fail(g, "step still running after %d ms", CF_STEP_LIMIT_MS);
            return 0;
        }
        /* connections with requests in flight */
        n = 0;
        for (i = 0; i < g->njobs; i++) {
            if (!g->jobs[i].busy)
                continue;
            for (k = 0; k < n && cs[k] != g->jobs[i].c; k++)
                ;
            if (k == n && n < sizeof(cs) / sizeof(cs[0]))
                cs[n++] = g->jobs[i].c;
        }
        if (n == 0) {
            now = now_ms();
            if (wake > now)
                sleep_ms(wake - now);
            continue;
        }
        /* answers already buffered (or client deadlines passed) first */
        progressed = 0;
        for (k = 0; k < n; k++) {
            while (engine_busy_on(g, cs[k]) && sg_client_pending(cs[k])) {
                progressed = 1;
                if (engine_recv(g, cs[k]) < 0)
                    break;
            }
        }
        if (progressed)
            continue;
        for (k = 0; k < n; k++) {
            pfd[k].fd = sg_client_fd(cs[k]);
            pfd[k].events = POLLIN;
            pfd[k].revents = 0;
        }
        now = now_ms();
        timeout = wake > now ? (int)(wake - now) : 0;
        if (poll(pfd, (nfds_t)n, timeout) < 0 && errno != EINTR)
            return fail(g->x, "poll: %s", strerror(errno));
        for (k = 0; k < n; k++)
            if (pfd[k].revents != 0 || pfd[k].fd < 0)
                engine_recv(g, cs[k]);
    }
    return 0;
}

static void engine_free(struct engine *g)
{
    size_t i;

    for (i = 0; i < g->njobs; i++) {
        bytes_free(&g->jobs[i].lease);
        bytes_free(&g->jobs[i].final);
    }
    free(g->jobs);
    bytes_free(&g->key);
    bytes_free(&g->value);
}

/* {"concurrent": {count, client?, call, args}, "expect": ...} */
static int do_concurrent(struct ctx *x, const json_t *step)
{
    const json_t *c = json_object_get(step, "concurrent");
    const char *cname = json_string_value(json_object_get(c, "client"));
    struct aclient *ac = client_find(x, cname ? cname : "default");
    struct engine g;
    size_t i;
    int rc;

    if (ac == NULL)
        return fail(x, "no client named %s", cname);
    memset(&g, 0, sizeof(g));
    g.x = x;
    g.kind = JOB_CALL;
    g.call = json_string_value(json_object_get(c, "call"));
    g.args = json_object_get(c, "args");
    g.expect = json_object_get(step, "expect");
    g.count = (long)json_integer_value(json_object_get(c, "count"));
    g.njobs = (size_t)g.count;
    g.next = g.count;
    g.jobs = xmalloc(g.njobs * sizeof(*g.jobs) + 1);
    for (i = 0; i < g.njobs; i++) {
        g.jobs[i].ac = ac;
        g.jobs[i].conn = (int)(i % (size_t)ac->pool);
        g.jobs[i].index = (long)i;
    }
    rc = engine_run(&g);
    if (rc == 0 && g.failed > 0)
        rc = fail(x, "%ld of %ld calls failed; first: %s", g.failed, g.count, g.first_fail);
    engine_free(&g);
    return rc;
}

/* {"load": {count, concurrency, after, during, call, args, client?}, "expect": {"failed": n}} */
static int do_load(struct ctx *x, const json_t *step)
{
    const json_t *l = json_object_get(step, "load");
    const json_t *exp = json_object_get(step, "expect");
    const char *cname = json_string_value(json_object_get(l, "client"));
    struct aclient *ac = client_find(x, cname ? cname : "default");
    struct engine g;
    long conc;
    size_t i;
    int rc = 0;

    if (ac == NULL)
        return fail(x, "no client named %s", cname);
    memset(&g, 0, sizeof(g));
    g.x = x;
    g.kind = JOB_CALL;
    g.call = json_string_value(json_object_get(l, "call"));
    g.args = json_object_get(l, "args");
    g.count = (long)json_integer_value(json_object_get(l, "count"));
    conc = (long)json_integer_value(json_object_get(l, "concurrency"));
    if (conc <= 0)
        conc = 1;
    if (conc > g.count)
        conc = g.count;
    g.after = (long)json_integer_value(json_object_get(l, "after"));
    g.during = json_string_value(json_object_get(l, "during"));
    /* a call counts as failed unless its code is OK */
    g.expect = NULL;
    g.njobs = (size_t)conc;
    g.next = conc;
    g.jobs = xmalloc(g.njobs * sizeof(*g.jobs) + 1);
    for (i = 0; i < g.njobs; i++) {
        g.jobs[i].ac = ac;
        g.jobs[i].conn = (int)(i % (size_t)ac->pool);
        g.jobs[i].index = (long)i;
    }
    {
        json_t *okexp = json_pack("{s:s}", "code", "OK");

        g.expect = okexp;
        rc = engine_run(&g);
        json_decref(okexp);
    }
    if (g.during && !g.ctl_started) {
        g.ctl_started = 1;
        g.ctl_pid = ctl_spawn(x->env, g.during, NULL, -1);
    }
    g.ctl_running_at_end = g.ctl_pid > 0;
    engine_ctl_poll(&g, 1);
    /* Not a failure by the README, but worth knowing: a load that ended
     * before its fault did not test much. */
    fprintf(stderr, "    load: %ld calls, %ld failed, %s %s\n", g.count, g.failed,
            g.during ? g.during : "-",
            g.ctl_running_at_end ? "still running when the last call settled"
                                 : "done within the load");
    if (rc == 0 && g.during && ctl_status_ok(x, g.during, g.ctl_status) < 0)
        rc = -1;
    if (rc == 0 && exp && json_object_get(exp, "failed") &&
        g.failed != (long)json_integer_value(json_object_get(exp, "failed")))
        rc = fail(x, "%ld of %ld calls failed (expected %" JSON_INTEGER_FORMAT "); first: %s",
                  g.failed, g.count, json_integer_value(json_object_get(exp, "failed")),
                  g.first_fail);
    engine_free(&g);
    return rc;
}

/* {"stampede": {callers, clients?, keyspace?, key, value}, "expect": {fills, value}} */
static int do_stampede(struct ctx *x, const json_t *step)
{
    const json_t *s = json_object_get(step, "stampede"), *exp = json_object_get(step, "expect");
    struct aclient *acs[CF_MAX_CLIENTS];
    struct bytes want = {0};
    struct engine g;
    long callers, nclients, fills = 0;
    char b1[160], b2[160], name[32];
    size_t i;
    int rc;

    memset(&g, 0, sizeof(g));
    g.x = x;
    g.kind = JOB_LEASE;
    callers = (long)json_integer_value(json_object_get(s, "callers"));
    nclients =
        json_object_get(s, "clients") ? (long)json_integer_value(json_object_get(s, "clients")) : 1;
    if (nclients < 1 || nclients > CF_MAX_CLIENTS || callers < 1)
        return fail(x, "stampede: bad callers/clients");
    g.keyspace = json_string_value(json_object_get(s, "keyspace"));
    if (bstr(x, json_object_get(s, "key"), &g.key) < 0 ||
        bstr(x, json_object_get(s, "value"), &g.value) < 0) {
        engine_free(&g);
        return -1;
    }
    for (i = 0; i < (size_t)nclients; i++) {
        snprintf(name, sizeof(name), "stampede-%zu", i);
        acs[i] = client_new(name, 0, NULL);
    }
    g.njobs = (size_t)callers;
    g.jobs = xmalloc(g.njobs * sizeof(*g.jobs));
    for (i = 0; i < g.njobs; i++) {
        g.jobs[i].ac = acs[i % (size_t)nclients];
        g.jobs[i].conn = (int)((i / (size_t)nclients) % (size_t)g.jobs[i].ac->pool);
        g.jobs[i].index = (long)i;
    }
    rc = engine_run(&g);
    for (i = 0; i < g.njobs; i++)
        fills += g.jobs[i].fills;
    if (rc == 0 && g.failed > 0)
        rc = fail(x, "%ld callers failed; first: %s", g.failed, g.first_fail);
    if (rc == 0 && json_object_get(exp, "fills") &&
        fills != (long)json_integer_value(json_object_get(exp, "fills")))
        rc = fail(x, "%ld fills, expected %" JSON_INTEGER_FORMAT, fills,
                  json_integer_value(json_object_get(exp, "fills")));
    if (rc == 0 && json_object_get(exp, "value")) {
        if (bstr(x, json_object_get(exp, "value"), &want) < 0)
            rc = -1;
        for (i = 0; rc == 0 && i < g.njobs; i++)
            if (g.jobs[i].final.n != want.n ||
                (want.n && memcmp(g.jobs[i].final.p, want.p, want.n) != 0))
                rc = fail(x, "caller %zu ended with \"%s\", expected \"%s\"", i,
                          show(&g.jobs[i].final, b1, sizeof(b1)), show(&want, b2, sizeof(b2)));
    }
    bytes_free(&want);
    for (i = 0; i < (size_t)nclients; i++)
        client_close(acs[i]);
    engine_free(&g);
    return rc;
}

/* {"wait_until": {call step}, "timeout_ms": n} */
static int do_wait_until(struct ctx *x, const json_t *step)
{
    const json_t *inner = json_object_get(step, "wait_until");
    json_int_t timeout = json_integer_value(json_object_get(step, "timeout_ms"));
    int64_t deadline = now_ms() + (timeout > 0 ? timeout : 10000);
    struct outcome o = {0};
    int rc;

    for (;;) {
        if (do_call(x, inner, &o) < 0) {
            outcome_free(&o);
            return -1;
        }
        rc = match(x, &o, json_object_get(inner, "expect"));
        outcome_free(&o);
        if (rc == 0)
            return 0;
        if (now_ms() >= deadline) {
            char last[CF_ERR];

            snprintf(last, sizeof(last), "%s", x->err);
            return fail(x, "not reached within %" JSON_INTEGER_FORMAT " ms; last: %.900s", timeout,
                        last);
        }
        sleep_ms(50);
    }
}

static int do_step(struct ctx *x, const json_t *step)
{
    const json_t *v;
    struct outcome o = {0};
    struct aclient *ac;
    const char *name;
    int rc;

    if (json_object_get(step, "call")) {
        if (do_call(x, step, &o) < 0) {
            outcome_free(&o);
            return -1;
        }
        rc = match(x, &o, json_object_get(step, "expect"));
        if (rc == 0 && (v = json_object_get(step, "save")) != NULL)
            rc = save_vars(x, &o, v);
        outcome_free(&o);
        return rc;
    }
    if ((v = json_object_get(step, "new_client")) != NULL) {
        const json_t *opts = json_object_get(step, "options");
        const json_t *pool = json_object_get(opts, "pool_size");

        name = json_string_value(v);
        if (name == NULL || client_find(x, name) || x->nclients == CF_MAX_CLIENTS)
            return fail(x, "bad or duplicate client name");
        ac = client_new(name, pool ? (int)json_integer_value(pool) : 0,
                        json_string_value(json_object_get(opts, "token")));
        x->clients[x->nclients++] = ac;
        return 0;
    }
    if ((v = json_object_get(step, "close_client")) != NULL) {
        int i;

        name = json_string_value(v);
        for (i = 0; i < x->nclients; i++) {
            if (strcmp(x->clients[i]->name, name) == 0) {
                client_close(x->clients[i]);
                x->clients[i] = x->clients[--x->nclients];
                return 0;
            }
        }
        return fail(x, "no client named %s", name);
    }
    if (json_object_get(step, "ctl"))
        return do_ctl(x, step);
    if (json_object_get(step, "concurrent"))
        return do_concurrent(x, step);
    if (json_object_get(step, "stampede"))
        return do_stampede(x, step);
    if (json_object_get(step, "load"))
        return do_load(x, step);
    if (json_object_get(step, "wait_until"))
        return do_wait_until(x, step);
    return fail(x, "unknown step kind");
}

/* ---- scenarios ---------------------------------------------------------------------- */

static int selected(const char *only, const char *name)
{
    size_t n = strlen(name);
    const char *p = only;

    if (only == NULL || *only == '\0')
        return 1;
    while ((p = strstr(p, name)) != NULL) {
        if ((p == only || p[-1] == ',') && (p[n] == '\0' || p[n] == ','))
            return 1;
        p += n;
    }
    return 0;
}

static int run_scenario(struct env *e, const json_t *sc, int seq)
{
    const json_t *steps = json_object_get(sc, "steps"), *raw;
    struct ctx *x = xmalloc(sizeof(*x));
    json_t *step;
    char *txt;
    size_t i;
    int rc = 0, k;

    x->env = e;
    snprintf(x->run, sizeof(x->run), "c%x%x%d", (unsigned)getpid(),
             (unsigned)(now_ms() & 0xfffffff), seq);
    x->clients[x->nclients++] = client_new("default", 0, NULL);
    json_array_foreach(steps, i, raw)
    {
        step = subst(raw, x->run, -1);
        if (do_step(x, step) < 0) {
            txt = json_dumps(raw, JSON_COMPACT);
            fprintf(stderr, "    step %zu %.300s%s\n    -> %s\n", i, txt,
                    strlen(txt) > 300 ? "..." : "", x->err);
            free(txt);
            json_decref(step);
            rc = -1;
            break;
        }
        json_decref(step);
    }
    for (k = 0; k < x->nclients; k++)
        client_close(x->clients[k]);
    for (k = 0; k < x->nvars; k++)
        bytes_free(&x->vars[k].b);
    free(x);
    return rc;
}

int main(int argc, char **argv)
{
    const char *path = argc > 1 ? argv[1] : getenv("SG_CONF_SCENARIOS");
    const char *only = getenv("SG_CONF_ONLY");
    const json_t *scs, *sc;
    struct env e;
    json_error_t jerr;
    json_t *root;
    int passed = 0, failed = 0, skipped = 0;
    int64_t t0;
    size_t i;

    signal(SIGPIPE, SIG_IGN);
    setvbuf(stdout, NULL, _IOLBF, 0);
    memset(&e, 0, sizeof(e));
    e.host = getenv("SG_CONF_HOST");
    e.port = getenv("SG_CONF_PORT") ? atoi(getenv("SG_CONF_PORT")) : 0;
    e.ca = getenv("SG_CONF_CA");
    e.sni = getenv("SG_CONF_SERVER_NAME");
    e.cert = getenv("SG_CONF_CERT");
    e.key = getenv("SG_CONF_KEY");
    e.token = getenv("SG_CONF_TOKEN");
    e.ctl = getenv("SG_CONF_CTL");
    if (path == NULL || e.host == NULL || e.port == 0 || e.ca == NULL || e.ctl == NULL) {
        fprintf(stderr, "conformance-c: run me through tests/conformance/run.sh -- %s\n", argv[0]);
        return 2;
    }
    root = json_load_file(path, 0, &jerr);
    if (root == NULL) {
        fprintf(stderr, "conformance-c: %s:%d: %s\n", path, jerr.line, jerr.text);
        return 2;
    }
    scs = json_object_get(root, "scenarios");
    json_array_foreach(scs, i, sc)
    {
        const char *name = json_string_value(json_object_get(sc, "name"));

        if (!selected(only, name)) {
            skipped++;
            continue;
        }
        printf("[ RUN      ] %s\n", name);
        t0 = now_ms();
        if (run_scenario(&e, sc, (int)i) == 0) {
            passed++;
            printf("[       OK ] %s (%lld ms)\n", name, (long long)(now_ms() - t0));
        } else {
            failed++;
            printf("[  FAILED  ] %s (%lld ms)\n", name, (long long)(now_ms() - t0));
        }
    }
    json_decref(root);
    if (skipped)
        printf("%d scenario(s) skipped (SG_CONF_ONLY)\n", skipped);
    printf("%d passed, %d failed\n", passed, failed);
    return failed == 0 && passed > 0 ? 0 : 1;
}
