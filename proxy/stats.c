/*
 * stats - summing the per-worker counters for a scrape. Process-wide figures
 * (topology refreshes, open connections) are added here too.
 */
#include "stats.h"

#include "topology.h"
#include "worker.h"

void sg_stats_collect(struct sg_worker **workers, int n, sg_stats_visit_fn fn, void *arg)
{
#define SG_STATS_SUM(name)                                                           \
    {                                                                                \
        uint64_t sum = 0;                                                            \
        for (int i = 0; i < n; i++)                                                  \
            sum += atomic_load_explicit(&workers[i]->stats.name, memory_order_relaxed); \
        fn(#name, sum, arg);                                                         \
    }
    SG_STATS_FIELDS(SG_STATS_SUM)
#undef SG_STATS_SUM
    fn("topology_refreshes", sg_topology_refresh_count(), arg);
    fn("workers", (uint64_t)n, arg);
}
