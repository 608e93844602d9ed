/*
 * NAME
 *   bench_pages - what a random slot of a big table costs on this machine, and why
 *
 * SYNOPSIS
 *   bench_pages [--quick] [--mb N]
 *
 * DESCRIPTION
 *   The aggregator counts each event in two or three entries of its window table, at
 *   random places in about 136 MB (presized for 1 M entries of 104 bytes), with the
 *   entries asked for (prefetched) several events ahead. This measures the machine's part
 *   of that alone: a loop that takes one random 104-byte slot a step, prefetched 8 steps
 *   ahead (three lines, as window_prefetch() asks), touches it and then does a fixed amount
 *   of arithmetic, as counting does between lookups. Tables are bigmem tables (2 MB pages
 *   where the kernel gives them), backed before the timing (bigmem_populate()). Four runs:
 *
 *   baseline     a 4 MB table: lines and pages stay in the caches and the TLB;
 *   table        --mb N (136) of slots, random: lines from memory, pages past the TLB;
 *   no prefetch  the same without the prefetch, to show what it hides;
 *   pages        one line of each of the table's 4 kB pages, at random: 2 % of the bytes
 *                (it fits in the L3), every page of them.
 *
 *   Each is run three times, interleaved; printed are the medians in ns a step and their
 *   ratio to the baseline. When "pages" costs about as much as "table", the cost of a
 *   random slot is its page (a TLB miss: a page walk, which even a prefetch waits for),
 *   not its bytes; under a hypervisor that backs guest memory with 4 kB pages it is so
 *   even though the guest has 2 MB pages. That is what the Zipf ingest stream meets and
 *   the uniform one does not (README, Benchmarks).
 *
 *   --quick: a tenth of the steps.
 *
 * DIAGNOSTICS
 *   Exit 0, or 64 for a bad argument.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "bench_zipf.h"
#include "bigmem.h"
#include "xalloc.h"

#define S_SLOT   104u /* bytes: a window entry of 30 buckets */
#define S_AHEAD  8u   /* steps a slot is asked for ahead of its use */
#define S_WORK   100  /* arithmetic rounds a step (8 independent chains of an add and a xor) */
#define S_ROUNDS 3

typedef enum { S_BASELINE, S_TABLE, S_NOPREFETCH, S_PAGES, S_MODES } s_mode_t;

static const char *s_names[S_MODES] = {"baseline (4 MB)", "table", "table, no prefetch",
                                       "pages (a line of each)"};

static double s_now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

/* One run: steps random slots of the bytes at t; ns a step. */
static double s_run(uint8_t *t, size_t bytes, s_mode_t mode, size_t steps)
{
    size_t *at = xcalloc(steps, sizeof(*at));
    uint64_t x = 88172645463325252ULL;
    size_t slots = bytes / S_SLOT, pages = bytes / 4096;
    for (size_t i = 0; i < steps; i++)
        at[i] =
            mode == S_PAGES ? (bench_rand(&x) % pages) * 4096 : (bench_rand(&x) % slots) * S_SLOT;
    uint64_t sum = 0;
    double t0 = s_now();
    for (size_t i = 0; i < steps; i++) {
        if (mode != S_NOPREFETCH && i + S_AHEAD < steps) {
            const uint8_t *p = t + at[i + S_AHEAD];
            __builtin_prefetch(p, 1, 3);
            __builtin_prefetch(p + 64, 1, 3);
            __builtin_prefetch(p + S_SLOT - 1, 1, 3);
        }
        uint8_t *q = t + at[i];
        q[0]++;
        q[70]++;
        sum += q[100];
        /* eight independent chains, as the counting code's work is mostly independent */
        uint64_t a0 = sum, a1 = i, a2 = 3, a3 = 5, a4 = 7, a5 = 9, a6 = 11, a7 = 13;
        for (int k = 0; k < S_WORK; k++) {
            a0 += (uint64_t)k;
            a1 ^= a0;
            a2 += (uint64_t)k;
            a3 ^= a2;
            a4 += (uint64_t)k;
            a5 ^= a4;
            a6 += (uint64_t)k;
            a7 ^= a6;
            __asm__ volatile("" : "+r"(a0), "+r"(a1), "+r"(a2), "+r"(a3));
            __asm__ volatile("" : "+r"(a4), "+r"(a5), "+r"(a6), "+r"(a7));
        }
        sum += a0 + a1 + a2 + a3 + a4 + a5 + a6 + a7;
    }
    double ns = (s_now() - t0) * 1e9 / (double)steps;
    __asm__ volatile("" : : "r"(sum));
    xfree(at);
    return ns;
}

static int s_cmp(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

static int s_usage(void)
{
    fprintf(stderr, "usage: bench_pages [--quick] [--mb N] (N: 8 .. 65536)\n");
    return 64;
}

int main(int argc, char **argv)
{
    size_t mb = 136, steps = 4000000;
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--quick") == 0) {
            steps /= 10;
        } else if (strcmp(argv[i], "--mb") == 0 && i + 1 < argc) {
            char *end;
            long v = strtol(argv[++i], &end, 10);
            if (*end || v < 8 || v > 65536)
                return s_usage();
            mb = (size_t)v;
        } else {
            return s_usage();
        }
    }
    size_t small = (size_t)4 << 20, big = mb << 20;
    uint8_t *ts = bigmem_calloc(small, 1), *tb = bigmem_calloc(big, 1);
    if (bigmem_populate(ts, small) < 0 || bigmem_populate(tb, big) < 0)
        fprintf(stderr, "bench_pages: cannot back the tables now; the first run pays for it\n");
    double ns[S_MODES][S_ROUNDS];
    for (int r = 0; r < S_ROUNDS; r++)
        for (int m = 0; m < S_MODES; m++)
            ns[m][r] = m == S_BASELINE ? s_run(ts, small, S_BASELINE, steps)
                                       : s_run(tb, big, (s_mode_t)m, steps);
    printf("pages: table=%zu MB slot=%u bytes steps=%zu prefetch_ahead=%u rounds=%d\n", mb, S_SLOT,
           steps, S_AHEAD, S_ROUNDS);
    double base = 0;
    for (int m = 0; m < S_MODES; m++) {
        qsort(ns[m], S_ROUNDS, sizeof(double), s_cmp);
        double med = ns[m][S_ROUNDS / 2];
        if (m == S_BASELINE)
            base = med;
        printf("  %-24s %7.1f ns a step (%.1f-%.1f), ratio %.2fx\n", s_names[m], med, ns[m][0],
               ns[m][S_ROUNDS - 1], med / base);
    }
    bigmem_free(ts, small);
    bigmem_free(tb, big);
    return 0;
}
