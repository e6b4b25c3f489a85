/*
 * bench_hist - log-linear histogram: exact below 128 µs, 64 sub-buckets per
 * power of two above. See bench_hist.h for the error bound.
 */
#include "bench_hist.h"

#include <string.h>

static unsigned hist_index(uint64_t us)
{
    if (us > SG_BENCH_HIST_MAX_US)
        us = SG_BENCH_HIST_MAX_US;
    if (us < 128)
        return (unsigned)us;
    unsigned msb = 63u - (unsigned)__builtin_clzll(us); /* >= 7 */
    unsigned shift = msb - 6;                           /* us >> shift in [64,127] */
    return 128u + (shift - 1) * 64u + (unsigned)((us >> shift) - 64);
}

/* Largest value that maps to bucket idx. */
static uint64_t hist_upper(unsigned idx)
{
    if (idx < 128)
        return idx;
    unsigned shift = (idx - 128) / 64 + 1;
    uint64_t sub = (idx - 128) % 64 + 64;
    return ((sub + 1) << shift) - 1;
}

void sg_bench_hist_reset(struct sg_bench_hist *h)
{
    memset(h, 0, sizeof *h);
}

void sg_bench_hist_record(struct sg_bench_hist *h, uint64_t us)
{
    h->buckets[hist_index(us)]++;
    h->count++;
    if (us > h->max_us)
        h->max_us = us;
}

void sg_bench_hist_merge(struct sg_bench_hist *dst, const struct sg_bench_hist *src)
{
    for (unsigned i = 0; i < SG_BENCH_HIST_BUCKETS; i++)
        dst->buckets[i] += src->buckets[i];
    dst->count += src->count;
    if (src->max_us > dst->max_us)
        dst->max_us = src->max_us;
}

double sg_bench_hist_quantile_us(const struct sg_bench_hist *h, double q)
{
    if (h->count == 0)
        return 0;
    uint64_t rank = (uint64_t)(q * (double)h->count + 0.5);
    if (rank < 1)
        rank = 1;
    if (rank > h->count)
        rank = h->count;
    uint64_t seen = 0;
    for (unsigned i = 0; i < SG_BENCH_HIST_BUCKETS; i++) {
        seen += h->buckets[i];
        if (seen >= rank) {
            uint64_t v = hist_upper(i);
            return (double)(v < h->max_us ? v : h->max_us);
        }
    }
    return (double)h->max_us;
}
