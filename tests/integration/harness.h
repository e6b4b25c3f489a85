/*
 * harness - shared setup for slotgate's integration tests.
 *
 * Each test executable calls h_env_start() once (cmocka group setup): it
 * makes a scratch directory of its own, writes the dev certificates, starts
 * a Redis Cluster (or a plain Redis) on free loopback ports through
 * scripts/cluster.sh, writes a slotgate config and spawns the real slotgate
 * binary, waiting until it answers PING over TLS. h_env_stop() (group
 * teardown) undoes all of it; a watchdog process does the same if the test
 * process dies in any way, including SIGKILL from a ctest timeout, so a
 * failing test never leaves redis-server or slotgate behind.
 *
 * No fixed sleeps: every wait polls a condition against a deadline.
 */
#ifndef SG_ITEST_HARNESS_H
#define SG_ITEST_HARNESS_H

#include <hiredis/hiredis.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "slotgate.h"

#define H_MAX_NODES 16
#define H_MAX_PROXIES 4
#define H_PATH 512

/* How to build the environment (zero = defaults). */
struct h_opts {
    int plain;               /* 1: one non-cluster redis instead of a cluster */
    int masters;             /* default 3 */
    int replicas;            /* per master; 0 = default 1, negative = none */
    int mtls;                /* 1: the first proxy requires client certs */
    int workers;             /* listen.workers, default 2 */
    uint32_t deadline_ms;    /* limits.request_deadline_ms, default 1500 */
    uint32_t refresh_ms;     /* redis.topology_refresh_ms, default 1000 */
    const char *limits_yaml; /* extra lines under limits:, indented 2 */
    const char *redis_yaml;  /* extra lines under redis:, indented 2 */
    const char *extra_yaml;  /* extra top-level sections (e.g. keyspaces:), appended */
    const char *listen_yaml; /* extra lines under listen:, indented 2 */
    int admin;               /* 1: each proxy gets an admin HTTP port */
};

/* One running slotgate process. */
struct h_proxy {
    pid_t pid; /* 0: not running */
    int port;
    int admin_port; /* 0 unless opts.admin */
    int bad_exit;   /* crashed, exited non-zero, or needed SIGKILL */
    int mtls;
    char config[H_PATH];
    char log[H_PATH];
};

struct h_env {
    char name[64];
    char scratch[H_PATH - 96]; /* SG_ITEST_SCRATCH/<name> */
    char certs[H_PATH];        /* scratch/certs */
    char ca_file[H_PATH + 16]; /* certs/ca.pem */
    char redis_dir[H_PATH];    /* scratch/redis (cluster.sh DIR) */
    struct h_opts opts;
    int n_nodes;
    int nodes[H_MAX_NODES]; /* every redis port */
    int n_proxies;
    struct h_proxy proxies[H_MAX_PROXIES];
};

/* Client certificate choice for h_connect. */
enum h_cert { H_CERT_NONE = 0, H_CERT_CLIENT, H_CERT_OTHER };

/* ---- environment --------------------------------------------------------- */

/* Build everything described above; 0 or -1 (reason on stderr). */
int h_env_start(struct h_env *e, const char *name, const struct h_opts *o);
/*
 * Stop every proxy and every redis of e; safe to call twice. Returns -1 if a
 * proxy did not shut down cleanly on SIGTERM (crash, non-zero status such as
 * a sanitizer report, or SIGKILL needed) at any point, else 0.
 */
int h_env_stop(struct h_env *e);
/* Print the last lines of every proxy log (on failure). */
void h_env_dump_logs(const struct h_env *e, int lines);

/*
 * The group setup and teardown every test file uses: start e, connect *c to
 * proxy 0 without a client certificate; then free *c and stop e (the stop
 * fails the group if slotgate crashed or did not exit cleanly).
 */
int h_group_start(struct h_env *e, const char *name, const struct h_opts *o, struct sg_client **c);
int h_group_stop(struct h_env *e, struct sg_client **c);

/*
 * Start one more slotgate against e's redis; returns its index or -1.
 * Ready means PING answers over TLS, or, when listen_yaml turns the PROXY
 * protocol on (a bare client cannot talk to it), /readyz answers 200.
 */
int h_proxy_start(struct h_env *e, int mtls);
/* Start proxy i again (after it stopped) on the same ports; 0 or -1. */
int h_proxy_respawn(struct h_env *e, int i);
/* SIGKILL proxy i on purpose and reap it (not counted as a bad exit). */
int h_proxy_kill(struct h_env *e, int i);
/* SIGTERM (then SIGKILL after a bound) and reap proxy i; 0 if it exited
 * with status 0, -1 otherwise (also recorded in bad_exit). */
int h_proxy_stop(struct h_env *e, int i);
/* 1 if proxy i's process is still running (not exited, not a zombie). */
int h_proxy_alive(struct h_env *e, int i);
/* Send sig to proxy i (SIGHUP, SIGTERM, ...); 0 or -1 if it is not running. */
int h_proxy_signal(struct h_env *e, int i, int sig);
/* Wait (bounded) for proxy i to exit after a signal the test sent; 0 if it
 * exited with status 0, -1 otherwise (also recorded in bad_exit). SIGKILL
 * and -1 if it is still running after timeout_ms. */
int h_proxy_wait_exit(struct h_env *e, int i, int timeout_ms);
/* Write proxy i's config file again from e->opts (for reload tests). */
int h_proxy_write_config(struct h_env *e, int i);

/* ---- clients ------------------------------------------------------------- */

/* Fill opt for proxy i: TLS against the dev CA, SNI localhost, timeout 5 s. */
void h_client_opts(const struct h_env *e, int i, struct sg_client_options *opt);
/* Connect to proxy i with the given client cert; NULL on failure (logged). */
struct sg_client *h_connect(const struct h_env *e, int i, enum h_cert cert);
/* Same, with every option given; *code/err as sg_client_connect. */
struct sg_client *h_connect_opts(const struct sg_client_options *opt, int *code, char *err,
                                 size_t errlen);
/* SET then GET of a fresh key through c; 0 if both worked and matched. */
int h_check_set_get(struct sg_client *c, const char *tag);
/* The stats counter named name from an OP_STATS call; -1 if absent/failed. */
int64_t h_stat(struct sg_client *c, const char *name);

/*
 * cmocka helpers (fail the current test on error):
 * h_call sends r (and frees it), returns the response (caller frees);
 * h_expect_value GETs key and asserts the value; h_get_code returns the code
 * of a GET, discarding the value.
 */
struct sg_response *h_call(struct sg_client *c, struct sg_request *r);

/*
 * The C client's calls in the form these tests were written for: the
 * server's code, or the context's error code (c->err: SG_CLIENT_IO,
 * SG_TIMEOUT, a ConnectionError's code) when no reply came. hc_get stores a
 * malloc'ed copy of the value (free()). hc_call leaves *out NULL then.
 */
int hc_ping(struct sg_client *c);
int hc_get(struct sg_client *c, const char *keyspace, const void *key, size_t klen, void **val,
           size_t *vlen);
int hc_set(struct sg_client *c, const char *keyspace, const void *key, size_t klen, const void *val,
           size_t vlen, uint64_t ttl_ms, int cond);
int hc_del(struct sg_client *c, const char *keyspace, const void *key, size_t klen);
int hc_expire(struct sg_client *c, const char *keyspace, const void *key, size_t klen,
              uint64_t ttl_ms);
int hc_call(struct sg_client *c, const struct sg_request *r, struct sg_response **out);
/*
 * sg_client_send / sg_client_recv with the test's own request ids: responses
 * to a request sent with test_id != 0 come back from hc_recv carrying
 * test_id instead of the library's id. Thread-safe across connections.
 */
int hc_send(struct sg_client *c, const struct sg_request *r, uint64_t test_id);
int hc_recv(struct sg_client *c, struct sg_response **out);
void h_expect_value(struct sg_client *c, const void *key, size_t klen, const void *val,
                    size_t vlen);
int h_get_code(struct sg_client *c, const void *key, size_t klen);

/* ---- redis nodes ----------------------------------------------------------- */

/* Connect to a redis node (1 s timeout); NULL if it does not answer. */
redisContext *h_redis(int port);
/* Run a command on node port; returns the reply (caller frees) or NULL. */
redisReply *h_redis_cmd(int port, const char *fmt, ...);
/* CLUSTER KEYSLOT key, asked of a live node; -1 on failure. */
int h_keyslot(const struct h_env *e, const void *key, size_t len);
/* Port of the master owning slot, per CLUSTER SLOTS of a live node; -1. */
int h_slot_owner(const struct h_env *e, int slot);
/* Port of the master owning key; -1. */
int h_key_owner(const struct h_env *e, const void *key, size_t len);
/* PTTL of key (a C string) on the master that owns it, asked directly;
 * fails the current test if the owner cannot be asked. */
long long h_owner_pttl(const struct h_env *e, const char *key);
/* Node id (CLUSTER MYID) of node port into id (41 bytes); 0 or -1. */
int h_node_id(int port, char *id, size_t idlen);
/* Live masters owning slots (ports), sorted; returns the count. */
int h_masters(const struct h_env *e, int *ports, int max);
/* Replica ports of master port (from its INFO replication). */
int h_replicas_of(int master_port, int *ports, int max);
/* pid of node port from its pidfile; -1. */
pid_t h_node_pid(const struct h_env *e, int port);
/* Send sig to node port (SIGKILL, SIGSTOP, SIGCONT); 0 or -1. */
int h_node_signal(const struct h_env *e, int port, int sig);
/* 1 if node port's process runs. */
int h_node_alive(const struct h_env *e, int port);
/*
 * Wait (bounded by timeout_ms) until every live node reports cluster_state:ok
 * and every slot's owner is a live node (cluster.sh wait). 0 or -1.
 */
int h_wait_cluster(const struct h_env *e, int timeout_ms);
/* Wait until no slot is owned by dead_port any more, then h_wait_cluster. */
int h_wait_failover(const struct h_env *e, int dead_port, int timeout_ms);
/* WAIT for every master's replicas to acknowledge writes so far; 0 or -1. */
int h_sync_replicas(const struct h_env *e);

/* ---- HTTP and a PROXY-protocol relay ---------------------------------------- */

/* GET path from 127.0.0.1:port (5 s timeout): the whole body (the caller
 * frees it) with *status set to the HTTP status, or NULL. */
char *h_http_fetch(int port, const char *path, int *status);
/* The same with a 1 s timeout, for the status alone; -1 when none came. */
int h_http_status(int port, const char *path);
/* h_http_fetch into buf: 0 with the body of a 200 answer (NUL-terminated,
 * cut at cap - 1 bytes), or -1. */
int h_http_get(int port, const char *path, char *buf, size_t cap);
/* The value of the first /metrics sample line that starts with metric
 * (name and labels as written, then a space), or -1. */
long long h_metric(int port, const char *metric);

/*
 * A TCP relay on a free loopback port that, for each connection it
 * accepts, connects to 127.0.0.1:target, writes the header bytes first (a
 * PROXY header as a load balancer would), then copies both ways until
 * either side closes. Lets the unmodified client library talk to a
 * PROXY-protocol listener. One thread; up to 64 connections at a time.
 */
struct h_relay;
struct h_relay *h_relay_start(int target, const void *header, size_t len);
int h_relay_port(const struct h_relay *r);
/* The header written on connections accepted from now on. */
void h_relay_set_header(struct h_relay *r, const void *header, size_t len);
void h_relay_stop(struct h_relay *r);

/* ---- misc ---------------------------------------------------------------- */

/* Lines of file path that contain needle (0 if it cannot be read). */
int h_count_lines(const char *path, const char *needle);
/* Wait (bounded) until at least n lines of path contain needle; 0 or -1. */
int h_wait_lines(const char *path, const char *needle, int n, int timeout_ms);

/* Monotonic milliseconds. */
int64_t h_now_ms(void);
/* Short pause between polls of a condition (never a wait by itself). */
void h_poll_pause(void);
/* Print a "[itest name] ..." line to stderr. */
void h_log(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
/* Run a shell command line, output appended to the scratch log; exit code. */
int h_sh(const struct h_env *e, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/*
 * Start argv (argv[0] found in PATH) with stdout and stderr to log (emptied
 * first with truncate, else appended), stdin from /dev/null, no other
 * descriptor, and env ("NAME=VALUE", or NULL) added to its environment;
 * it dies with the test process. Its pid, or -1.
 */
pid_t h_spawn(const char *const argv[], const char *log, int truncate, const char *env);
/* A free TCP port on 127.0.0.1 (bind to port 0); -1. */
int h_free_port(void);

/*
 * Standard main for a test group: runs tests with h_env as group state,
 * dumps proxy logs if anything failed. Group setup/teardown must call
 * h_env_start/h_env_stop.
 */
extern struct h_env H; /* the environment of this test executable */
/* Set when h_env_stop found an unclean proxy exit. cmocka 1.1 does not count
 * a failing group teardown, so each main() adds this to its result. */
extern int h_stop_failed;

#endif
