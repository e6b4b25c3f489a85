/*
 * config - the one configuration file (YAML), parsed with libyaml into a
 * struct sg_config and validated as a whole. Every error names the file,
 * the line and the key. Used at start, by --check-config, and on reload.
 */
#ifndef SG_CONFIG_H
#define SG_CONFIG_H

#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "proxyproto.h"

#define SG_MAX_SEEDS 32
#define SG_MAX_TOKENS 16
#define SG_MAX_KEYSPACES 32
#define SG_MAX_TRUSTED 64
/* Number of restart-only keys (the table in config.c). */
#define SG_CFG_RESTART_KEYS 22

enum sg_compression { SG_COMPRESS_OFF = 0, SG_COMPRESS_AUTO, SG_COMPRESS_ALWAYS };

struct sg_addr {
    char host[256];
    int port;
};

/* 1 when a and b name the same node (host as written, and port). */
static inline int sg_addr_eq(const struct sg_addr *a, const struct sg_addr *b)
{
    return a->port == b->port && strcmp(a->host, b->host) == 0;
}

struct sg_keyspace_config {
    char name[64];
    char prefix[128];
    uint64_t default_ttl_ms;     /* 0: no expiry */
    uint64_t max_ttl_ms;         /* 0: unbounded */
    int compression;             /* enum sg_compression */
    uint32_t compress_threshold; /* bytes, for AUTO */
    uint32_t max_value_bytes;    /* 0: the global limit */
    int read_from_replicas;
};

struct sg_config {
    char path[512]; /* file this was loaded from */

    /* listen: */
    struct sg_addr listen; /* default 127.0.0.1:7420 */
    int plaintext;         /* listen.plaintext: default 0 (TLS) */
    int workers;           /* 0 = number of cores */
    int proxy_protocol;    /* listen.proxy_protocol: enum sg_pp_mode, default off */
    int n_proxy_trusted;   /* listen.proxy_trusted: who may send a PROXY header */
    struct sg_cidr proxy_trusted[SG_MAX_TRUSTED];

    /* tls: (server side) required unless plaintext */
    char tls_cert[512];
    char tls_key[512];
    char tls_client_ca[512];     /* set: verify client certificates */
    int tls_require_client_cert; /* default 1 when client_ca is set */

    /* auth: */
    int n_tokens;
    char tokens[SG_MAX_TOKENS][256];

    /* limits: */
    uint32_t max_frame_bytes;        /* default 8 MiB */
    uint32_t max_key_bytes;          /* default 1024 */
    uint32_t max_value_bytes;        /* default 4 MiB */
    uint32_t max_batch_keys;         /* default 1000 */
    uint32_t max_batch_bytes;        /* default 8 MiB */
    uint32_t max_connections;        /* per process, default 20000 */
    uint32_t max_connections_per_ip; /* per client address, 0 = no limit (default) */
    uint32_t max_inflight;           /* per connection, default 1024 */
    uint32_t output_high_watermark;  /* bytes, default 4 MiB */
    uint32_t max_output_bytes;       /* owed to one client: close above it; 32 MiB, 0 = off */
    uint64_t max_buffered_bytes;     /* client buffers, whole process; 256 MiB, 0 = off */
    uint32_t request_deadline_ms;    /* default 1000 */
    uint32_t max_deadline_ms;        /* cap on client deadline, default 30000 */
    uint32_t handshake_timeout_ms;   /* default 5000 */
    uint32_t idle_timeout_ms;        /* 0 = none (default) */
    uint32_t drain_timeout_ms;       /* SIGTERM: max wait for in-flight, default 5000 */
    uint32_t write_gather_us;        /* answers wait for their read's others; 200, 0 = off */

    /* redis: */
    int n_seeds;
    struct sg_addr seeds[SG_MAX_SEEDS];
    char redis_username[128];
    char redis_password[256];
    int redis_tls;
    char redis_tls_ca[512];
    char redis_tls_cert[512];
    char redis_tls_key[512];
    uint32_t connect_timeout_ms;         /* default 1000 */
    uint32_t topology_refresh_ms;        /* periodic refresh, default 5000 */
    uint32_t topology_min_interval_ms;   /* rate limit, default 100 */
    uint32_t max_redirects;              /* MOVED/ASK hops per sub-op, default 5 */
    uint32_t invalidate_page_keys;       /* SCAN COUNT per INVALIDATE page, default 200 */
    uint32_t invalidate_pause_ms;        /* pause between pages on a master, default 1 */
    uint32_t retry_backoff_ms;           /* TRYAGAIN/CLUSTERDOWN base, default 20 */
    uint32_t reconnect_backoff_max_ms;   /* default 1000 */
    uint32_t link_stall_ms;              /* reset a link with no reply this long; 0 = off; 5000 */
    uint32_t max_link_pending;           /* commands awaiting replies per link, default 100000 */
    int coalesce_gets;                   /* default 1 */
    uint64_t redis_max_reply_elements;   /* aggregate header limit; 0: derived (shardlink.h) */
    uint64_t redis_max_reply_bulk_bytes; /* bulk header limit; 0: derived */

    /* admin: */
    struct sg_addr admin; /* port 0 = disabled (default 0) */

    /* log: */
    int log_level; /* 0 error,1 warn,2 info,3 debug; default info */

    /* keyspaces: (index 0 is always the default, name "") */
    int n_keyspaces;
    struct sg_keyspace_config keyspaces[SG_MAX_KEYSPACES];

    /* Where each restart-only key was in the file (0: absent), so a refused
     * reload can name the line. Filled by sg_config_load*. */
    int restart_line[SG_CFG_RESTART_KEYS];
};

/* Fill cfg with defaults (no seeds, no TLS files). */
void sg_config_defaults(struct sg_config *cfg);

/*
 * Parse and validate path into cfg (defaults first, then the file).
 * Returns 0, or -1 with "FILE:LINE: key 'a.b': reason" in err.
 * Relative file paths in the config (tls.cert, ...) are resolved against
 * the directory of the config file.
 */
int sg_config_load(struct sg_config *cfg, const char *path, char *err, size_t errlen);

/* Same, from a string (name is used in messages in place of a file). */
int sg_config_load_string(struct sg_config *cfg, const char *yaml, const char *name, char *err,
                          size_t errlen);

/*
 * Reload gate, run before anything is built from next: 0 when next differs
 * from running only in keys that reload, else -1 with
 * "FILE:LINE: key 'listen.plaintext': changes need a restart (...)" in err
 * for the first restart-only key that differs. Restart-only: listen.*
 * (address, port, plaintext i.e. TLS on/off, workers, proxy_protocol,
 * proxy_trusted), turning client-certificate verification on or off
 * (tls.client_ca set or unset, tls.require_client_cert), the redis.* keys
 * the topology manager uses (seeds, username, password, tls.*,
 * connect_timeout_ms, topology_refresh_ms, topology_min_interval_ms), and
 * admin.*. Everything else reloads, in every worker; PROTOCOL.md section 3.
 */
int sg_config_reload_check(const struct sg_config *running, const struct sg_config *next, char *err,
                           size_t errlen);

/* Keyspace by name ("" = default); NULL if unknown. */
const struct sg_keyspace_config *sg_config_keyspace(const struct sg_config *cfg, const char *name);

#endif
