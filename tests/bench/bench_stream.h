/*
 * bench_stream - the ingest benchmarks' event stream, one definition for all of them
 *
 * `bench_aggregator ingest` sends it to a real daemon and bench_ingest feeds it to the
 * counting code in process; both must draw the same keys in the same order, so both
 * include this. Header-only: bench programs are single files.
 *
 * Three keys an event: a subject, a client address and its /24. Uniform (zipf 0):
 * event g of a site takes subject g mod nsubjects and address g mod nips, so every site
 * cycles through every key (each key seen by every site: the worst case). Zipf (zipf 1):
 * subjects Zipf 0.8 and addresses Zipf 0.6 (bench_feed's defaults: a few hot keys, a long
 * tail), and one event in 20 belongs to one of BENCH_STORMS storms every site sees (they
 * cross the fleet rules).
 */
#ifndef BS_BENCH_STREAM_H
#define BS_BENCH_STREAM_H

#include <stdint.h>
#include <stdio.h>

#include "bench_zipf.h"
#include "fp.h"
#include "xalloc.h"

/* Storm subjects of the Zipf stream. */
#define BENCH_STORMS 4

/* Key texts of one kind by rank, with their lengths and fingerprints. */
typedef struct {
    char (*text)[48];
    size_t *len;
    uint64_t *fp;
} bench_keys_t;

/* The key table of kind 0 (subjects), 1 (addresses), 2 (their /24s) or 3 (storms). */
static inline void bench_keys_init(bench_keys_t *t, int n, int kind)
{
    t->text = xcalloc((size_t)n, sizeof(*t->text));
    t->len = xcalloc((size_t)n, sizeof(*t->len));
    t->fp = xcalloc((size_t)n, sizeof(*t->fp));
    for (int i = 0; i < n; i++) {
        int l;
        if (kind == 0)
            l = snprintf(t->text[i], sizeof(t->text[i]), "bench wave-%d", i);
        else if (kind == 1)
            l = snprintf(t->text[i], sizeof(t->text[i]), "10.%d.%d.%d", (i >> 16) & 255,
                         (i >> 8) & 255, i & 255);
        else if (kind == 2)
            l = snprintf(t->text[i], sizeof(t->text[i]), "10.%d.%d.0/24", (i >> 16) & 255,
                         (i >> 8) & 255);
        else
            l = snprintf(t->text[i], sizeof(t->text[i]), "bench storm %d", i);
        t->len[i] = (size_t)l;
        t->fp[i] = fp_text(t->text[i]);
    }
}

static inline void bench_keys_free(bench_keys_t *t)
{
    xfree(t->text);
    xfree(t->len);
    xfree(t->fp);
}

/* The whole stream's tables. */
typedef struct {
    int zipf;                   /* 0 uniform, 1 Zipf with storms */
    int nsubjects, nips;        /* key ranks */
    bench_keys_t subj, ip, net; /* by rank */
    bench_keys_t storm;         /* BENCH_STORMS storm subjects */
    double *zs, *zi;            /* Zipf CDFs (zipf 1) */
} bench_stream_t;

/* The generator state of the site with this seed (bench_aggregator: 1, 2, ... by site). */
static inline uint64_t bench_stream_seed(uint64_t seed)
{
    return 88172645463325252ULL ^ (seed * 0x9E3779B97F4A7C15ULL);
}

static inline void bench_stream_init(bench_stream_t *s, int zipf, int nsubjects, int nips)
{
    s->zipf = zipf;
    s->nsubjects = nsubjects;
    s->nips = nips;
    bench_keys_init(&s->subj, nsubjects, 0);
    bench_keys_init(&s->ip, nips, 1);
    bench_keys_init(&s->net, nips, 2);
    bench_keys_init(&s->storm, BENCH_STORMS, 3);
    s->zs = zipf ? zipf_cdf_new(nsubjects, 0.8) : NULL;
    s->zi = zipf ? zipf_cdf_new(nips, 0.6) : NULL;
}

static inline void bench_stream_free(bench_stream_t *s)
{
    bench_keys_free(&s->subj);
    bench_keys_free(&s->ip);
    bench_keys_free(&s->net);
    bench_keys_free(&s->storm);
    xfree(s->zs);
    xfree(s->zi);
}

/* Event g of the site whose generator is *rng: its subject table and rank, and its
 * address rank. */
static inline void bench_stream_draw(const bench_stream_t *s, uint64_t *rng, long g,
                                     const bench_keys_t **subj, int *si, int *ii)
{
    *subj = &s->subj;
    if (!s->zipf) {
        *si = (int)(g % s->nsubjects);
        *ii = (int)(g % s->nips);
    } else if (bench_rand(rng) % 20 == 0) {
        *subj = &s->storm;
        *si = (int)(bench_rand(rng) % BENCH_STORMS);
        *ii = zipf_draw(s->zi, s->nips, bench_uniform(rng));
    } else {
        *si = zipf_draw(s->zs, s->nsubjects, bench_uniform(rng));
        *ii = zipf_draw(s->zi, s->nips, bench_uniform(rng));
    }
}

#endif
