/*
 * test_async_live - every typed call of the async API, once, against a live
 * slotgate on a real cluster (run by tests/conformance/run.sh, which gives
 * the address, CA and token in SG_CONF_*). Calls are issued one after
 * another from the callbacks, each checked against what the blocking API's
 * semantics promise: SET then GET returns the value, a versioned write bumps
 * the version, MSET/MGET/MDEL agree, a lease is granted and then filled, and
 * the last reply per call carries the id the library assigned.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <event2/event.h>

#include <slotgate/adapters/libevent.h>
#include <slotgate/async.h>

struct run {
    struct event_base *base;
    struct sg_async *ac;
    char key[64], key2[64];
    int step, failures;
    uint64_t version;
    uint8_t lease[256];
    size_t lease_len;
};

static void next_step(struct run *t);

static void expect(struct run *t, int ok, const char *what, const struct sg_response *r)
{
    if (!ok) {
        fprintf(stderr, "step %d %s: failed (reply %s, code %s, message \"%s\", err %s)\n", t->step,
                what, r ? "yes" : "NULL", r ? sg_code_name(r->code) : "-", r ? r->message : "",
                t->ac->errstr);
        t->failures++;
    } else {
        printf("ok   %s\n", what);
    }
}

static void on_reply(struct sg_async *ac, struct sg_response *r, void *privdata)
{
    struct run *t = privdata;

    (void)ac;
    switch (t->step) {
    case 0:
        expect(t, r && r->code == SG_OK, "ping", r);
        break;
    case 1:
        expect(t, r && r->code == SG_OK, "set", r);
        break;
    case 2:
        expect(t, r && r->code == SG_OK && r->value_len == 5 && memcmp(r->value, "hello", 5) == 0,
               "get", r);
        break;
    case 3:
        expect(t, r && r->code == SG_OK, "expire", r);
        break;
    case 4:
        expect(t, r && r->code == SG_OK && r->count == 1, "del", r);
        break;
    case 5:
        expect(t, r && (r->code == SG_OK || r->code == SG_NOT_FOUND), "get_versioned", r);
        t->version = r ? r->version : 0;
        break;
    case 6:
        expect(t, r && r->code == SG_OK && r->version == t->version + 1, "set_versioned", r);
        break;
    case 7:
        expect(t, r && r->code == SG_OK, "mset", r);
        break;
    case 8:
        expect(t,
               r && r->code == SG_OK && r->n_results == 2 && r->results[0].code == SG_OK &&
                   r->results[1].value_len == 2 && memcmp(r->results[1].value, "v2", 2) == 0,
               "mget", r);
        break;
    case 9:
        expect(t, r && r->code == SG_OK && r->count == 2, "mdel", r);
        break;
    case 10:
        expect(t,
               r && r->code == SG_LEASE_GRANTED && r->lease_len > 0 &&
                   r->lease_len <= sizeof(t->lease),
               "get_or_lease", r);
        if (r && r->lease_len <= sizeof(t->lease)) {
            memcpy(t->lease, r->lease, r->lease_len);
            t->lease_len = r->lease_len;
        }
        break;
    case 11:
        expect(t, r && r->code == SG_OK, "set_with_lease", r);
        break;
    case 12:
        expect(t, r && r->code == SG_OK, "invalidate", r);
        break;
    case 13:
        expect(t, r && r->code == SG_OK && r->n_stats > 0, "stats", r);
        break;
    }
    t->step++;
    next_step(t);
}

/* Issue the call of the current step; the loop ends after the last. */
static void next_step(struct run *t)
{
    const void *keys[2] = {t->key, t->key2};
    const size_t klens[2] = {strlen(t->key), strlen(t->key2)};
    const void *vals[2] = {"v1", "v2"};
    const size_t vlens[2] = {2, 2};
    const char *k = t->key;
    size_t kl = strlen(k);
    int rc;

    switch (t->step) {
    case 0:
        rc = sg_async_ping(t->ac, on_reply, t);
        break;
    case 1:
        rc = sg_async_set(t->ac, "session", k, kl, "hello", 5, 60000, SG_COND_NONE, on_reply, t);
        break;
    case 2:
        rc = sg_async_get(t->ac, "session", k, kl, on_reply, t);
        break;
    case 3:
        rc = sg_async_expire(t->ac, "session", k, kl, 30000, on_reply, t);
        break;
    case 4:
        rc = sg_async_del(t->ac, "session", k, kl, on_reply, t);
        break;
    case 5:
        rc = sg_async_get_versioned(t->ac, "session", k, kl, on_reply, t);
        break;
    case 6:
        rc = sg_async_set_versioned(t->ac, "session", k, kl, "v", 1, t->version, 0, on_reply, t);
        break;
    case 7:
        rc = sg_async_mset(t->ac, "session", 2, keys, klens, vals, vlens, NULL, 60000, SG_COND_NONE,
                           on_reply, t);
        break;
    case 8:
        rc = sg_async_mget(t->ac, "session", 2, keys, klens, on_reply, t);
        break;
    case 9:
        rc = sg_async_mdel(t->ac, "session", 2, keys, klens, on_reply, t);
        break;
    case 10:
        rc = sg_async_get_or_lease(t->ac, "session", k, kl, 0, on_reply, t);
        break;
    case 11:
        rc = sg_async_set_with_lease(t->ac, "session", k, kl, "filled", 6, t->lease, t->lease_len,
                                     0, on_reply, t);
        break;
    case 12:
        rc = sg_async_invalidate(t->ac, "session", k, kl, on_reply, t);
        break;
    case 13:
        rc = sg_async_stats(t->ac, on_reply, t);
        break;
    default:
        event_base_loopbreak(t->base);
        return;
    }
    if (rc != 0) {
        fprintf(stderr, "step %d: send failed: %s\n", t->step, t->ac->errstr);
        t->failures++;
        event_base_loopbreak(t->base);
    }
}

int main(void)
{
    struct sg_client_options o;
    struct timeval limit = {30, 0};
    struct run t;
    const char *token = getenv("SG_CONF_TOKEN");

    memset(&t, 0, sizeof(t));
    memset(&o, 0, sizeof(o));
    o.host = getenv("SG_CONF_HOST");
    o.port = atoi(getenv("SG_CONF_PORT") ? getenv("SG_CONF_PORT") : "0");
    o.tls = 1;
    o.cacert = getenv("SG_CONF_CA");
    o.sni = getenv("SG_CONF_SERVER_NAME");
    o.auth_token = token;
    o.auth_token_len = token ? strlen(token) : 0;
    o.client_name = "test_async_live";
    o.reconnect = 1;
    o.deadline_margin_ms = 500;
    snprintf(t.key, sizeof(t.key), "{al:%ld}:a", (long)time(NULL) ^ (long)getpid());
    snprintf(t.key2, sizeof(t.key2), "{al:%ld}:b", (long)time(NULL) ^ (long)getpid());
    t.base = event_base_new();
    t.ac = sg_async_connect(&o);
    if (t.ac->err) {
        fprintf(stderr, "connect: %s\n", t.ac->errstr);
        return 1;
    }
    sg_libevent_attach(t.ac, t.base);
    next_step(&t);
    event_base_loopexit(t.base, &limit); /* a safety bound, not a timing check */
    event_base_dispatch(t.base);
    if (t.step != 14) {
        fprintf(stderr, "stopped at step %d of 14\n", t.step);
        t.failures++;
    }
    sg_async_free(t.ac);
    event_base_free(t.base);
    printf("%d failures\n", t.failures);
    return t.failures ? 1 : 0;
}
