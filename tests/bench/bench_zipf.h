/*
 * bench_zipf - the Zipf distribution the load tools draw subjects and addresses from
 *
 * bench_feed (the load tool) and bench_aggregator (its Zipf ingest mode) must
 * draw the same skew, so both include this. Header-only: bench programs are
 * single files. The caller supplies uniform numbers in [0, 1), so each tool
 * keeps its own seeded generator.
 */
#ifndef BS_BENCH_ZIPF_H
#define BS_BENCH_ZIPF_H

#include <math.h>

#include "xalloc.h"

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
