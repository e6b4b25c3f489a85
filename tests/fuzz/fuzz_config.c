/*
 * fuzz_config - the YAML configuration, which on reload comes from a file an
 * operator (or a deploy tool) just rewrote. Loading any text must not crash;
 * a refusal must say why, starting with the name it was given, and leave the
 * caller's config untouched (a failed reload keeps the running one); an
 * accepted config must hold together (seeds, keyspaces, TLS or plaintext).
 */
#include <stdlib.h>
#include <string.h>

#include "fuzz.h"

#include "config.h"

#define FUZZ_NAME "fuzz.yaml"
#define FUZZ_POISON 0xa5

static int terminated(const char *s, size_t size)
{
    return memchr(s, '\0', size) != NULL;
}

static void check_accepted(const struct sg_config *cfg)
{
    SG_FUZZ_CHECK(terminated(cfg->path, sizeof(cfg->path)) && strcmp(cfg->path, FUZZ_NAME) == 0);
    SG_FUZZ_CHECK(cfg->n_seeds >= 1 && cfg->n_seeds <= SG_MAX_SEEDS);
    for (int i = 0; i < cfg->n_seeds; i++) {
        SG_FUZZ_CHECK(terminated(cfg->seeds[i].host, sizeof(cfg->seeds[i].host)));
        SG_FUZZ_CHECK(cfg->seeds[i].host[0] != '\0');
        SG_FUZZ_CHECK(cfg->seeds[i].port >= 1 && cfg->seeds[i].port <= 65535);
    }
    SG_FUZZ_CHECK(cfg->n_tokens >= 0 && cfg->n_tokens <= SG_MAX_TOKENS);
    for (int i = 0; i < cfg->n_tokens; i++)
        SG_FUZZ_CHECK(terminated(cfg->tokens[i], sizeof(cfg->tokens[i])));
    SG_FUZZ_CHECK(cfg->plaintext || (cfg->tls_cert[0] != '\0' && cfg->tls_key[0] != '\0'));
    SG_FUZZ_CHECK(!!cfg->redis_tls_cert[0] == !!cfg->redis_tls_key[0]);
    SG_FUZZ_CHECK(cfg->max_key_bytes <= cfg->max_frame_bytes);
    SG_FUZZ_CHECK(cfg->max_value_bytes <= cfg->max_frame_bytes);
    SG_FUZZ_CHECK(cfg->max_batch_bytes <= cfg->max_frame_bytes);
    SG_FUZZ_CHECK(cfg->request_deadline_ms <= cfg->max_deadline_ms);
    SG_FUZZ_CHECK(cfg->topology_min_interval_ms <= cfg->topology_refresh_ms);
    SG_FUZZ_CHECK(cfg->retry_backoff_ms <= cfg->reconnect_backoff_max_ms);
    SG_FUZZ_CHECK(terminated(cfg->listen.host, sizeof(cfg->listen.host)));
    SG_FUZZ_CHECK(terminated(cfg->admin.host, sizeof(cfg->admin.host)));

    SG_FUZZ_CHECK(cfg->n_keyspaces >= 1 && cfg->n_keyspaces <= SG_MAX_KEYSPACES);
    SG_FUZZ_CHECK(cfg->keyspaces[0].name[0] == '\0');
    SG_FUZZ_CHECK(sg_config_keyspace(cfg, "") == &cfg->keyspaces[0]);
    for (int i = 1; i < cfg->n_keyspaces; i++) {
        const struct sg_keyspace_config *ks = &cfg->keyspaces[i];
        SG_FUZZ_CHECK(terminated(ks->name, sizeof(ks->name)) && ks->name[0] != '\0');
        SG_FUZZ_CHECK(terminated(ks->prefix, sizeof(ks->prefix)) && ks->prefix[0] != '\0');
        SG_FUZZ_CHECK(sg_config_keyspace(cfg, ks->name) == ks);
        SG_FUZZ_CHECK(ks->compression >= SG_COMPRESS_OFF && ks->compression <= SG_COMPRESS_ALWAYS);
        SG_FUZZ_CHECK(ks->max_ttl_ms == 0 || ks->default_ttl_ms <= ks->max_ttl_ms);
        SG_FUZZ_CHECK(ks->max_value_bytes <= cfg->max_value_bytes);
        for (int j = 1; j < i; j++)
            SG_FUZZ_CHECK(strcmp(cfg->keyspaces[j].prefix, ks->prefix) != 0);
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char *yaml = malloc(size + 1);
    struct sg_config *cfg = malloc(sizeof(*cfg));
    if (yaml == NULL || cfg == NULL) {
        free(yaml);
        free(cfg);
        return 0;
    }
    if (size > 0)
        memcpy(yaml, data, size);
    yaml[size] = '\0';
    memset(cfg, FUZZ_POISON, sizeof(*cfg));

    char err[1024];
    memset(err, 0, sizeof(err));
    int rc = sg_config_load_string(cfg, yaml, FUZZ_NAME, err, sizeof(err));
    SG_FUZZ_CHECK(rc == 0 || rc == -1);
    if (rc == 0) {
        check_accepted(cfg);
    } else {
        SG_FUZZ_CHECK(err[0] != '\0' && terminated(err, sizeof(err)));
        SG_FUZZ_CHECK(strncmp(err, FUZZ_NAME, strlen(FUZZ_NAME)) == 0);
        const unsigned char *p = (const unsigned char *)cfg;
        for (size_t i = 0; i < sizeof(*cfg); i++)
            SG_FUZZ_CHECK(p[i] == FUZZ_POISON);
    }
    free(cfg);
    free(yaml);
    return 0;
}
