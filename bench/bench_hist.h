/*
 * bench_hist - a small log-linear latency histogram (HdrHistogram-style).
 *
 * Values are microseconds. Below 128 µs every microsecond has its own
 * bucket; above, each power of two is split into 64 linear sub-buckets, so
 * the relative error stays under 1/64 (1.6%) up to the 10 s ceiling. Values
 * above the ceiling land in the last bucket; the exact maximum is kept
 * separately. One histogram per thread, merged at the end; no locking.
 */
#ifndef SG_BENCH_HIST_H
#define SG_BENCH_HIST_H

#include <stdint.h>

#define SG_BENCH_HIST_MAX_US 10000000u /* 10 s */
#define SG_BENCH_HIST_BUCKETS 1280

struct sg_bench_hist {
    uint64_t count;
    uint64_t max_us;
    uint64_t buckets[SG_BENCH_HIST_BUCKETS];
};

void sg_bench_hist_reset(struct sg_bench_hist *h);
void sg_bench_hist_record(struct sg_bench_hist *h, uint64_t us);
void sg_bench_hist_merge(struct sg_bench_hist *dst, const struct sg_bench_hist *src);

/* Value at quantile q in [0,1], in µs: the upper edge of the bucket holding
 * the q-th value, capped at the recorded maximum; 0 when empty. */
double sg_bench_hist_quantile_us(const struct sg_bench_hist *h, double q);

#endif
