/*
 * bench_zipf - the Zipf distribution the load tools draw subjects and addresses from
 *
 * bench_feed (the load tool) and bench_aggregator (its Zipf ingest mode) must
 * draw the same skew, so both include this, and the generator they draw with.
 * Header-only: bench programs are single files. Each tool keeps its own
 * generator state, seeded as it likes.
 */
#ifndef BS_BENCH_ZIPF_H
#define BS_BENCH_ZIPF_H

#include <math.h>
#include <stdint.h>

#include "xalloc.h"

/* xorshift64*: fast, seedable, good enough for load. */
static inline uint64_t bench_rand(uint64_t *state)
{
    *state ^= *state >> 12;
    *state ^= *state << 25;
    *state ^= *state >> 27;
    return *state * 2685821657736338717ULL;
}

/* A uniform number in [0, 1). */
static inline double bench_uniform(uint64_t *state)
{
    return (double)(bench_rand(state) >> 11) / 9007199254740992.0;
}

/* Cumulative Zipf weights over n ranks with exponent s (rank 1 most likely); caller frees. */
static inline double *zipf_cdf_new(int n, double s)
{
    double *cdf = xmalloc((size_t)n * sizeof(double)), sum = 0;
    for (int i = 0; i < n; i++) {
        sum += 1.0 / pow((double)(i + 1), s);
        cdf[i] = sum;
    }
    for (int i = 0; i < n; i++)
        cdf[i] /= sum;
    return cdf;
}

/* The rank 0..n-1 that uniform u in [0, 1) falls on. */
static inline int zipf_draw(const double *cdf, int n, double u)
{
    int lo = 0, hi = n - 1;
    while (lo < hi) {
        int mid = (lo + hi) / 2;
        if (cdf[mid] < u)
            lo = mid + 1;
        else
            hi = mid;
    }
    return lo;
}

#endif
