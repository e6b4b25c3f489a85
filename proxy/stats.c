/*
 * stats - summing the per-worker counters for a scrape (STATS, /metrics),
 * and the name tables that give keyspaces and backend nodes their counter
 * slots.
 * Process-wide figures (topology refreshes) are added here too; admin.c
 * adds the process and topology gauges of /metrics.
 */
#include "stats.h"

#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "config.h"
#include "core.h"
#include "slotgate.pb-c.h"
#include "snapshot.h"
#include "topology.h"
#include "util.h"

/* Keyspace names ("" is the default keyspace) and "host:port role" pairs. */
static struct sg_names ks_names, node_names;
static pthread_once_t names_once = PTHREAD_ONCE_INIT;

static void names_init(void)
{
    sg_names_init(&ks_names, SG_STATS_KEYSPACES);
    sg_names_init(&node_names, SG_STATS_NODES);
}

int sg_stats_keyspace_slot(struct sg_stats *st, const struct sg_keyspace_config *ks)
{
    size_t h = ((uintptr_t)ks / sizeof(*ks)) % (sizeof(st->ks_cache) / sizeof(st->ks_cache[0]));
    /* Trusted by address: the owner forgets the cache whenever it lets go
     * of a config snapshot (sg_stats_forget_keyspaces), so an address seen
     * here again belongs to a keyspace it still serves with. */
    if (st->ks_cache[h].ks == ks)
        return st->ks_cache[h].slot;
    pthread_once(&names_once, names_init);
    int slot = sg_names_slot(&ks_names, ks->name);
    st->ks_cache[h].ks = ks;
    st->ks_cache[h].slot = slot;
    return slot;
}

void sg_stats_forget_keyspaces(struct sg_stats *st)
{
    memset(st->ks_cache, 0, sizeof(st->ks_cache));
}

int sg_stats_node_slot(const struct sg_addr *addr, int readonly)
{
    pthread_once(&names_once, names_init);
    char key[SG_NAME_LEN];
    snprintf(key, sizeof(key), strchr(addr->host, ':') ? "[%s]:%d %s" : "%s:%d %s", addr->host,
             addr->port, readonly ? "replica" : "master");
    return sg_names_slot(&node_names, key);
}

/* Every worker's counters added into one struct (caller frees). */
static struct sg_stats *stats_sum(struct sg_core *const *workers, int n)
{
    struct sg_stats *sum = sg_calloc(1, sizeof(*sum));
    size_t words = offsetof(struct sg_stats, ks_cache) / sizeof(uint64_t);
    _Atomic uint64_t *dst = (_Atomic uint64_t *)sum;
    for (int i = 0; i < n; i++) {
        const _Atomic uint64_t *src = (const _Atomic uint64_t *)&workers[i]->stats;
        for (size_t j = 0; j < words; j++)
            atomic_store_explicit(&dst[j],
                                  atomic_load_explicit(&dst[j], memory_order_relaxed) +
                                      atomic_load_explicit(&src[j], memory_order_relaxed),
                                  memory_order_relaxed);
    }
    return sum;
}

/* Give every keyspace of the running config a slot, so each one is listed
 * (with zeros) before its first request. The config comes from the
 * published snapshot: workers' own pointers are theirs alone. */
static void register_keyspaces(void)
{
    pthread_once(&names_once, names_init);
    struct sg_snapshot *snap = sg_snapshot_acquire();
    for (int k = 0; snap != NULL && k < snap->cfg.n_keyspaces; k++)
        sg_names_slot(&ks_names, snap->cfg.keyspaces[k].name);
    sg_snapshot_release(snap);
}

static const char *ks_display(int slot)
{
    const char *name = sg_names_get(&ks_names, slot);
    return name[0] ? name : "default";
}

#define LOAD(p) atomic_load_explicit(&(p), memory_order_relaxed)

void sg_stats_collect(struct sg_core *const *workers, int n, sg_stats_visit_fn fn, void *arg)
{
    struct sg_stats *sum = stats_sum(workers, n);
#define SG_STATS_VISIT(name) fn(#name, LOAD(sum->name), arg);
    SG_STATS_FIELDS(SG_STATS_VISIT)
#undef SG_STATS_VISIT
    fn("topology_refreshes", sg_topology_refresh_count(), arg);
    if (n > 0) {
        /* Per keyspace: keyspace.<name>.<counter>; the default one is "default". */
        register_keyspaces();
        char name[SG_NAME_LEN + 32];
        int nk = sg_names_count(&ks_names);
        for (int k = 0; k < nk; k++) {
#define SG_KS_VISIT(field)                                                 \
    snprintf(name, sizeof(name), "keyspace.%s.%s", ks_display(k), #field); \
    fn(name, LOAD(sum->ks[k].field), arg);
            SG_KS_STATS_FIELDS(SG_KS_VISIT)
#undef SG_KS_VISIT
        }
    }
    fn("workers", (uint64_t)n, arg);
    free(sum);
}

/* --- the STATS op's response --------------------------------------------- */

#define SG_STATS_NAME_LEN 96

struct stats_build {
    Slotgate__V1__Response__StatsEntry *entries;
    Slotgate__V1__Response__StatsEntry **ptrs;
    char *names;
    size_t n, cap;
};

static void stats_visit(const char *name, uint64_t value, void *arg)
{
    struct stats_build *b = arg;
    if (b->n == b->cap)
        return;
    Slotgate__V1__Response__StatsEntry *e = &b->entries[b->n];
    slotgate__v1__response__stats_entry__init(e);
    char *copy = b->names + b->n * SG_STATS_NAME_LEN;
    size_t len = strnlen(name, SG_STATS_NAME_LEN - 1); /* longer names are cut */
    memcpy(copy, name, len);
    copy[len] = '\0';
    e->key = copy;
    e->value = value;
    b->ptrs[b->n] = e;
    b->n++;
}

void sg_stats_response(struct sg_core *const *workers, int n, Slotgate__V1__Response *resp)
{
    /* One block: the pointer array first (resp->stats, what is freed),
     * then the entries, then their names. */
    struct stats_build b = {.cap = 64 + SG_STATS_KEYSPACES * 16};
    size_t ptrs = b.cap * sizeof(*b.ptrs), entries = b.cap * sizeof(*b.entries);
    uint8_t *block = sg_calloc(1, ptrs + entries + b.cap * SG_STATS_NAME_LEN);
    b.ptrs = (Slotgate__V1__Response__StatsEntry **)block;
    b.entries = (Slotgate__V1__Response__StatsEntry *)(block + ptrs);
    b.names = (char *)(block + ptrs + entries);
    sg_stats_collect(workers, n, stats_visit, &b);
    resp->n_stats = b.n;
    resp->stats = b.ptrs;
}

void sg_stats_response_free(Slotgate__V1__Response *resp)
{
    free(resp->stats);
    resp->stats = NULL;
    resp->n_stats = 0;
}

/* --- Prometheus ------------------------------------------------------------ */

/*
 * The flat counters under their Prometheus names. NULL name: exported with
 * labels elsewhere (responses and errors by op and code, link resets by
 * node). A counter missing here is exported as slotgate_<name>_total.
 */
static const struct {
    const char *field, *name, *type, *help;
} flat[] = {
    {"connections_accepted", "slotgate_connections_accepted_total", "counter",
     "Client connections accepted."},
    {"connections_active", "slotgate_connections_active", "gauge", "Client connections open."},
    {"connections_rejected", "slotgate_connections_rejected_total", "counter",
     "Client connections refused (limits.max_connections)."},
    {"requests", "slotgate_requests_total", "counter", "Requests received (every op)."},
    {"responses", NULL, NULL, NULL},
    {"errors", NULL, NULL, NULL},
    {"timeouts", "slotgate_request_deadline_expired_total", "counter",
     "Requests answered by their deadline before every shard replied."},
    {"bad_frames", "slotgate_bad_frames_total", "counter",
     "Client frames that did not decode (the connection is closed)."},
    {"moved", "slotgate_backend_moved_total", "counter", "MOVED redirects from Redis."},
    {"ask", "slotgate_backend_ask_total", "counter", "ASK redirects from Redis."},
    {"tryagain", "slotgate_backend_tryagain_total", "counter",
     "TRYAGAIN/LOADING/busy answers from Redis (retried with backoff)."},
    {"clusterdown", "slotgate_backend_clusterdown_total", "counter",
     "CLUSTERDOWN answers from Redis."},
    {"link_resets", NULL, NULL, NULL},
    {"backend_writes", "slotgate_backend_writes_total", "counter",
     "Socket writes to Redis (many commands per write when pipelined)."},
    {"backend_commands", "slotgate_backend_commands_total", "counter", "Commands sent to Redis."},
    {"backend_replies", "slotgate_backend_replies_total", "counter", "Replies read from Redis."},
    {"retries", "slotgate_backend_retries_total", "counter",
     "Sub-operations sent again (backoff, lost link)."},
    {"orphaned_replies", "slotgate_backend_orphaned_replies_total", "counter",
     "Replies that arrived after their request was answered (read and dropped)."},
    {"coalesced_gets", "slotgate_coalesced_gets_total", "counter",
     "GETs answered from an identical GET already in flight."},
    {"bytes_in", "slotgate_client_received_bytes_total", "counter",
     "Bytes of client frames received."},
    {"bytes_out", "slotgate_client_sent_bytes_total", "counter",
     "Bytes of frames sent to clients."},
    {"proxy_untrusted", "slotgate_proxy_protocol_untrusted_total", "counter",
     "Connections closed: from a source outside listen.proxy_trusted while the PROXY "
     "protocol is on."},
    {"proxy_bad_header", "slotgate_proxy_protocol_bad_header_total", "counter",
     "Connections closed: PROXY protocol header missing, malformed or too large."},
    {"proxy_timeouts", "slotgate_proxy_protocol_timeouts_total", "counter",
     "Connections closed: no complete PROXY protocol header in time."},
    {"connections_rejected_ip", "slotgate_connections_rejected_per_ip_total", "counter",
     "Client connections refused at limits.max_connections_per_ip."},
    {"link_protocol_errors", NULL, NULL, NULL},
    {"link_format_errors", NULL, NULL, NULL},
    {"output_limit_closes", "slotgate_output_limit_closes_total", "counter",
     "Client connections closed for owing more than limits.max_output_bytes, or evicted to "
     "keep limits.max_buffered_bytes."},
    {"budget_evictions", NULL, NULL, NULL},
    {"buffered_bytes", "slotgate_buffered_bytes", "gauge",
     "Bytes held in client connections' buffers (replies owed, request data), all workers."},
    {"tls_failures", NULL, NULL, NULL},
    {"write_gather_timeouts", "slotgate_write_gather_timeouts_total", "counter",
     "Times a client's answers were written only once limits.write_gather_us had passed "
     "without the rest of their read's answers (a slow shard, or a read larger than one loop "
     "turn answers)."},
};

static void prom_flat(struct sg_text *out, const char *field, uint64_t v)
{
    for (size_t i = 0; i < sizeof(flat) / sizeof(flat[0]); i++) {
        if (strcmp(flat[i].field, field) != 0)
            continue;
        if (flat[i].name != NULL) {
            sg_metrics_family(out, flat[i].name, flat[i].type, flat[i].help);
            sg_metrics_u64(out, flat[i].name, NULL, v);
        }
        return;
    }
    char name[128];
    snprintf(name, sizeof(name), "slotgate_%s_total", field);
    sg_metrics_family(out, name, "counter", "Counter of the STATS op (proto/PROTOCOL.md).");
    sg_metrics_u64(out, name, NULL, v);
}

/* Prometheus names and help for the keyspace counters, by field. */
static const char *ks_prom_name(const char *field, const char **help)
{
    static const struct {
        const char *field, *name, *help;
    } t[] = {
        {"hits", "slotgate_keyspace_hits_total", "Reads that returned a value."},
        {"misses", "slotgate_keyspace_misses_total",
         "Reads that found nothing (NOT_FOUND, lease markers, lease grants)."},
        {"sets", "slotgate_keyspace_sets_total", "Values written."},
        {"bytes_raw", "slotgate_keyspace_value_raw_bytes_total",
         "Value bytes received in writes, before the envelope; compression ratio = "
         "raw / stored."},
        {"bytes_stored", "slotgate_keyspace_value_stored_bytes_total",
         "Value bytes written to Redis after the envelope (compressed or not)."},
        {"invalidated", "slotgate_keyspace_invalidated_keys_total", "Keys removed by INVALIDATE."},
        {"lease_grants", "slotgate_keyspace_lease_grants_total", "GET_OR_LEASE leases granted."},
        {"lease_waits", "slotgate_keyspace_lease_waits_total",
         "GET_OR_LEASE polls that found a lease held."},
        {"lease_rejects", "slotgate_keyspace_lease_rejects_total",
         "SET_WITH_LEASE refused (LEASE_INVALID)."},
        {"version_conflicts", "slotgate_keyspace_version_conflicts_total",
         "SET_VERSIONED compare-and-set failures."},
        {"corrupt_values", "slotgate_keyspace_corrupt_values_total",
         "Stored values that did not decode (CORRUPT_VALUE)."},
    };
    for (size_t i = 0; i < sizeof(t) / sizeof(t[0]); i++)
        if (strcmp(t[i].field, field) == 0) {
            *help = t[i].help;
            return t[i].name;
        }
    *help = "Keyspace counter of the STATS op (proto/PROTOCOL.md).";
    return NULL;
}

static void prom_keyspaces(struct sg_text *out, const struct sg_stats *sum)
{
    int nk = sg_names_count(&ks_names);
    char fallback[128];
#define SG_KS_PROM(field)                                                               \
    {                                                                                   \
        const char *help;                                                               \
        const char *name = ks_prom_name(#field, &help);                                 \
        if (name == NULL) {                                                             \
            snprintf(fallback, sizeof(fallback), "slotgate_keyspace_%s_total", #field); \
            name = fallback;                                                            \
        }                                                                               \
        sg_metrics_family(out, name, "counter", help);                                  \
        for (int k = 0; k < nk; k++) {                                                  \
            const char *labels[] = {"keyspace", ks_display(k), NULL};                   \
            sg_metrics_u64(out, name, labels, LOAD(sum->ks[k].field));                  \
        }                                                                               \
    }
    SG_KS_STATS_FIELDS(SG_KS_PROM)
#undef SG_KS_PROM
}

static void prom_requests(struct sg_text *out, const struct sg_stats *sum)
{
    uint64_t counts[SG_HIST_SLOTS];
    sg_metrics_family(out, "slotgate_request_duration_seconds", "histogram",
                      "Time from a request's arrival to its answer, per op.");
    for (int o = 0; o < SG_OP_N; o++) {
        for (int b = 0; b < SG_HIST_SLOTS; b++)
            counts[b] = LOAD(sum->req_hist[o][b]);
        const char *labels[] = {"op", sg_metrics_op_name(o), NULL};
        sg_metrics_histogram(out, "slotgate_request_duration_seconds", labels, counts,
                             LOAD(sum->req_sum_us[o]));
    }
    sg_metrics_family(out, "slotgate_responses_total", "counter",
                      "Responses sent, per op and Response.code (proto/PROTOCOL.md section 9; "
                      "a batch is OK even when some keys failed).");
    for (int o = 0; o < SG_OP_N; o++)
        for (int c = 0; c < SG_CODE_N; c++) {
            uint64_t v = LOAD(sum->responses_by[o][c]);
            /* Zero series only for OK, so every op shows up from the start. */
            if (v == 0 && c != 0)
                continue;
            const char *labels[] = {"op", sg_metrics_op_name(o), "code", sg_metrics_code_name(c),
                                    NULL};
            sg_metrics_u64(out, "slotgate_responses_total", labels, v);
        }
    sg_metrics_family(out, "slotgate_requests_in_flight", "gauge",
                      "Requests received and not answered yet.");
    sg_metrics_u64(out, "slotgate_requests_in_flight", NULL, LOAD(sum->inflight));
}

static void prom_nodes(struct sg_text *out, const struct sg_stats *sum)
{
    int nn = sg_names_count(&node_names);
    char node[SG_NAME_LEN];
    uint64_t counts[SG_HIST_SLOTS];
    static const char *const states[3] = {"down", "connecting", "up"};
    static const char *const fams[][3] = {
        {"slotgate_backend_duration_seconds", "histogram",
         "Time from a command's write to its reply, per Redis node."},
        {"slotgate_backend_pending_commands", "gauge",
         "Commands written to a node and awaiting a reply (queue depth, all workers)."},
        {"slotgate_backend_links", "gauge",
         "Worker links to a node, per state (up, connecting, down)."},
        {"slotgate_backend_link_resets_total", "counter",
         "Links to a node dropped (I/O error, EOF, protocol error, stall)."},
    };
    for (int f = 0; f < 4; f++) {
        sg_metrics_family(out, fams[f][0], fams[f][1], fams[f][2]);
        for (int i = 0; i < nn; i++) {
            snprintf(node, sizeof(node), "%s", sg_names_get(&node_names, i));
            char *sp = strrchr(node, ' ');
            const char *role = "other";
            if (sp != NULL) {
                *sp = '\0';
                role = sp + 1;
            }
            const struct sg_node_stats *ns = &sum->node[i];
            const char *labels[] = {"node", node, "role", role, NULL};
            if (f == 0) {
                for (int b = 0; b < SG_HIST_SLOTS; b++)
                    counts[b] = LOAD(ns->hist[b]);
                sg_metrics_histogram(out, fams[f][0], labels, counts, LOAD(ns->sum_us));
            } else if (f == 1) {
                sg_metrics_u64(out, fams[f][0], labels, LOAD(ns->pending));
            } else if (f == 2) {
                for (int s = 0; s < 3; s++) {
                    const char *l3[] = {"node", node, "role", role, "state", states[s], NULL};
                    sg_metrics_u64(out, fams[f][0], l3, LOAD(ns->links[s]));
                }
            } else {
                sg_metrics_u64(out, fams[f][0], labels, LOAD(ns->resets));
            }
        }
    }
}

void sg_stats_prometheus(struct sg_core *const *workers, int n, struct sg_text *out)
{
    struct sg_stats *sum = stats_sum(workers, n);
    register_keyspaces();
#define SG_STATS_PROM(name) prom_flat(out, #name, LOAD(sum->name));
    SG_STATS_FIELDS(SG_STATS_PROM)
#undef SG_STATS_PROM
    prom_requests(out, sum);
    prom_keyspaces(out, sum);
    prom_nodes(out, sum);
    free(sum);
}
