/*
 * stats - summing the per-worker counters for a scrape. Process-wide figures
 * (topology refreshes, open connections) are added here too.
 */
#include "stats.h"

#include <stdio.h>

#include "topology.h"
#include "worker.h"

void sg_stats_collect(struct sg_worker **workers, int n, sg_stats_visit_fn fn, void *arg)
{
#define SG_STATS_SUM(name)                                                              \
    {                                                                                   \
        uint64_t sum = 0;                                                               \
        for (int i = 0; i < n; i++)                                                     \
            sum += atomic_load_explicit(&workers[i]->stats.name, memory_order_relaxed); \
        fn(#name, sum, arg);                                                            \
    }
    SG_STATS_FIELDS(SG_STATS_SUM)
#undef SG_STATS_SUM
    fn("topology_refreshes", sg_topology_refresh_count(), arg);
    if (n == 0)
        return;
    /* Per keyspace: keyspace.<name>.<counter>; the default one is "default". */
    const struct sg_config *cfg = workers[0]->cfg;
    char name[96];
    for (int k = 0; k < cfg->n_keyspaces; k++) {
        const char *ks = cfg->keyspaces[k].name[0] ? cfg->keyspaces[k].name : "default";
#define SG_KS_SUM(field)                                                                       \
    {                                                                                          \
        uint64_t sum = 0;                                                                      \
        for (int i = 0; i < n; i++)                                                            \
            sum += atomic_load_explicit(&workers[i]->ks_stats[k].field, memory_order_relaxed); \
        snprintf(name, sizeof(name), "keyspace.%s.%s", ks, #field);                            \
        fn(name, sum, arg);                                                                    \
    }
        SG_KS_STATS_FIELDS(SG_KS_SUM)
#undef SG_KS_SUM
    }
    fn("workers", (uint64_t)n, arg);
}
