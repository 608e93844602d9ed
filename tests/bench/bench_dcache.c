/*
 * bench_dcache - how long the decision cache's write lock is held with many decisions
 *
 * NAME
 *   bench_dcache - fill the decision cache, print each phase's lock holds and the waits
 *   of a milter thread's lookups meanwhile
 *
 * SYNOPSIS
 *   bench_dcache [--quick] [--entries N] [--store DIR]
 *
 * DESCRIPTION
 *   Fills a cache with N local decisions (distinct ids and keys, a fleet storm's worth
 *   of subjects; default 1 000 000) while a second thread looks a decision up every
 *   200 us, as a milter thread does, then:
 *
 *   lookup  dcache_lookup() of present keys, mean ns a call: the baseline;
 *   get     dcache_get() of present ids, mean ns a call (the local rule's check
 *           before its upsert);
 *   walk    dcache_remove_origin() of an origin no decision has: a walk over every
 *           bucket under the write lock, which is what the old dcache_expire() did
 *           every second whatever had expired;
 *   idle    dcache_expire() calls with nothing expired, for a minute of ticks;
 *   storm   dcache_expire() calls after all N have expired (the end of a storm's
 *           blocks: made together, they expire together) until the cache is empty;
 *   old_storm  the cache filled again the same way, then emptied by
 *           dcache_remove_origin() of their origin: one write lock over a walk that
 *           unlinks (and with a store deletes on disk) every decision, as the old
 *           dcache_expire() did when they had all expired.
 *
 *   The upserts of the fill that started or moved a growth of the tables are
 *   also reported apart (growing), and the worst of each against the walk:
 *   when a growth rehashed every decision at once under the write lock, it
 *   took longer than the walk.
 *
 *   For the fill, each phase prints the calls, the mean, 99th percentile and worst
 *   ms a call (the write lock's hold, for all but get), the most CPU time of one,
 *   and the worst wait of the reader's lookups meanwhile; the ratios are against
 *   the old walk. On a busy machine the worst values include being scheduled out.
 *
 *   --quick uses 100 000 decisions. --store DIR writes the cache through to a
 *   LevelDB database at DIR (which must not exist; it is left behind; old_storm
 *   uses DIR.old), so upserts and expiry include the writes on disk.
 *
 * DIAGNOSTICS
 *   Exit 0, 1 when a cache cannot be made, or 64 for a bad argument.
 */
#include <inttypes.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "dcache.h"

#define T0_MS  1700000000000LL
#define TTL_MS (3600LL * 1000)

static double s_now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec * 1e9 + (double)ts.tv_nsec;
}

static double s_cpu_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
    return (double)ts.tv_sec * 1e9 + (double)ts.tv_nsec;
}

static uint64_t s_fp(long i)
{
    uint64_t x = (uint64_t)i * 0x9e3779b97f4a7c15ULL + 1;
    x ^= x >> 31;
    return x * 0xbf58476d1ce4e5b9ULL;
}

/* Decision i: a local block of subject key s_fp(i), made at T0, expiring TTL later
 * (within the same second for all of them). */
static void s_entry(long i, dcache_entry_t *e)
{
    memset(e, 0, sizeof(*e));
    snprintf(e->id, sizeof(e->id), "local-%016" PRIx64, s_fp(i));
    e->scope = DCACHE_SCOPE_SUBJECT;
    e->fp = s_fp(i);
    e->action = DCACHE_ACTION_REJECT;
    e->origin = DCACHE_ORIGIN_LOCAL;
    e->created_ms = T0_MS;
    e->expires_ms = T0_MS + TTL_MS + i % 1000;
    snprintf(e->value, sizeof(e->value), "undeliverable: storm subject number %ld", i);
}

/* The second thread: a lookup every 200 us, keeping the worst wait. */
typedef struct {
    dcache_t *c;
    volatile int stop;
    volatile double worst_ns;    /* reset by the main thread between phases (a race only for
                                    the bench) */
    volatile unsigned long done; /* lookups made */
} s_reader_t;

static void *s_reader(void *arg)
{
    s_reader_t *r = arg;
    dcache_entry_t out[2];
    while (!r->stop) {
        double t = s_now_ns();
        (void)dcache_lookup(r->c, DCACHE_SCOPE_SUBJECT, s_fp(5), T0_MS + 1000, out, 2);
        double d = s_now_ns() - t;
        if (d > r->worst_ns)
            r->worst_ns = d;
        r->done++;
        usleep(200);
    }
    return NULL;
}

typedef struct {
    size_t calls;   /* calls timed */
    size_t items;   /* what they returned, summed */
    double sum_ns;  /* their total time */
    double *ns;     /* each one's time */
    size_t ns_cap;  /* room in ns */
    double cpu_max; /* the most CPU time of one */
    double cpu_sum; /* their CPU time */
} s_phase_t;

static void s_note(s_phase_t *p, double ns, double cpu_ns, size_t items)
{
    if (cpu_ns > p->cpu_max)
        p->cpu_max = cpu_ns;
    p->cpu_sum += cpu_ns;
    if (p->calls == p->ns_cap) {
        p->ns_cap = p->ns_cap ? 2 * p->ns_cap : 1024;
        p->ns = realloc(p->ns, p->ns_cap * sizeof(*p->ns));
        if (!p->ns)
            abort();
    }
    p->ns[p->calls++] = ns;
    p->sum_ns += ns;
    p->items += items;
}

static int s_cmp(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

/* Prints a phase; its worst call in ms, or 0 when it had none. */
static double s_report(const char *name, s_phase_t *p, double walk_ms, s_reader_t *r)
{
    double reader_ns = -1e6; /* none: printed as -1 */
    if (r) {
        unsigned long done = r->done;
        while (r->done < done + 2) /* a lookup the last call held up has finished */
            usleep(100);
        reader_ns = r->worst_ns;
        r->worst_ns = 0;
    }
    if (!p->calls)
        return 0;
    qsort(p->ns, p->calls, sizeof(*p->ns), s_cmp);
    double max = p->ns[p->calls - 1] / 1e6, p99 = p->ns[(p->calls - 1) * 99 / 100] / 1e6;
    printf("%-9s calls=%zu items=%zu mean=%.4f ms p99=%.3f ms max=%.3f ms cpu_mean=%.4f ms "
           "cpu_max=%.3f ms reader_worst=%.3f ms",
           name, p->calls, p->items, p->sum_ns / (double)p->calls / 1e6, p99, max,
           p->cpu_sum / (double)p->calls / 1e6, p->cpu_max / 1e6, reader_ns / 1e6);
    if (walk_ms > 0)
        printf(" max/old_walk=%.3f", max / walk_ms);
    printf("\n");
    free(p->ns);
    memset(p, 0, sizeof(*p));
    return max;
}

static dcache_t *s_open(const char *path)
{
    char err[256] = "";
    dcache_t *c = dcache_new(path, err, sizeof(err));
    if (!c)
        fprintf(stderr, "bench_dcache: %s\n", err);
    return c;
}

/* Upserts the n decisions, timing each into p, and those that started or moved a growth of
 * the tables into growing too (when not NULL). */
static void s_fill(dcache_t *c, long n, s_phase_t *p, s_phase_t *growing)
{
    dcache_entry_t e;
    dcache_stats_t before, after;
    dcache_stats(c, &after);
    for (long i = 0; i < n; i++) {
        s_entry(i, &e);
        before = after;
        double cpu = s_cpu_ns(), t = s_now_ns();
        (void)dcache_upsert(c, &e);
        t = s_now_ns() - t;
        cpu = s_cpu_ns() - cpu;
        s_note(p, t, cpu, 1);
        dcache_stats(c, &after);
        if (growing && (after.buckets != before.buckets || after.moved != before.moved))
            s_note(growing, t, cpu, 1);
    }
}

int main(int argc, char **argv)
{
    long n = 1000000;
    const char *store = NULL;
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--quick") == 0)
            n = 100000;
        else if (strcmp(argv[i], "--entries") == 0 && i + 1 < argc)
            n = strtol(argv[++i], NULL, 10);
        else if (strcmp(argv[i], "--store") == 0 && i + 1 < argc)
            store = argv[++i];
        else {
            fprintf(stderr, "usage: bench_dcache [--quick] [--entries N] [--store DIR]\n");
            return 64;
        }
    }
    if (n < 1) {
        fprintf(stderr, "bench_dcache: --entries must be positive\n");
        return 64;
    }
    dcache_t *c = s_open(store);
    if (!c)
        return 1;
    s_reader_t r = {.c = c};
    pthread_t tid;
    if (pthread_create(&tid, NULL, s_reader, &r) != 0)
        abort();
    s_phase_t p = {0}, growing = {0};
    double t = s_now_ns();
    s_fill(c, n, &p, &growing);
    double fill_s = (s_now_ns() - t) / 1e9;
    printf("entries=%ld store=%s fill=%.1f s\n", n, store ? store : "none", fill_s);
    double fill_max = s_report("fill", &p, 0, &r);
    double growing_max = s_report("growing", &growing, 0, NULL); /* the reader: in fill's */

    dcache_entry_t e, out[2];
    long probes = n < 100000 ? n : 100000;
    t = s_now_ns();
    size_t hits = 0;
    for (long i = 0; i < probes; i++)
        hits += dcache_lookup(c, DCACHE_SCOPE_SUBJECT, s_fp(i * 7919 % n), T0_MS + 1000, out, 2);
    double lookup_ns = (s_now_ns() - t) / (double)probes;
    printf("lookup    calls=%ld hits=%zu mean=%.0f ns\n", probes, hits, lookup_ns);
    long gets = n < 2000 ? n : 2000; /* few: with a scan by id each one walks the table */
    t = s_now_ns();
    hits = 0;
    for (long i = 0; i < gets; i++) {
        s_entry(i * 7919 % n, &e);
        hits += dcache_get(c, e.id, &e) == 0;
    }
    printf("get       calls=%ld hits=%zu mean=%.0f ns\n", gets, hits,
           (s_now_ns() - t) / (double)gets);

    r.worst_ns = 0;
    for (int i = 0; i < 5; i++) {
        double cpu = s_cpu_ns();
        t = s_now_ns();
        size_t k = dcache_remove_origin(c, 99);
        s_note(&p, s_now_ns() - t, s_cpu_ns() - cpu, k);
    }
    double walk_ms = s_report("walk", &p, 0, &r);
    printf("fill      worst_upsert/old_walk=%.3f worst_growing_upsert/old_walk=%.3f (a "
           "growth's rehash at once touched every decision, as the walk does)\n",
           fill_max / walk_ms, growing_max / walk_ms);

    for (int i = 0; i < 60; i++) {
        double cpu = s_cpu_ns();
        t = s_now_ns();
        size_t k = dcache_expire(c, T0_MS + 1000 + i * 1000);
        s_note(&p, s_now_ns() - t, s_cpu_ns() - cpu, k);
    }
    s_report("idle", &p, walk_ms, &r);

    int64_t end = T0_MS + TTL_MS + 1000;
    for (long guard = 0; dcache_count(c) > 0 && guard < 100000000; guard++) {
        double cpu = s_cpu_ns();
        t = s_now_ns();
        size_t k = dcache_expire(c, end);
        s_note(&p, s_now_ns() - t, s_cpu_ns() - cpu, k);
    }
    s_report("storm", &p, walk_ms, &r);
    r.stop = 1;
    pthread_join(tid, NULL);
    dcache_destroy(&c);

    char old[600];
    snprintf(old, sizeof(old), "%s.old", store ? store : "");
    c = s_open(store ? old : NULL);
    if (!c)
        return 1;
    s_fill(c, n, &p, NULL);
    free(p.ns);
    memset(&p, 0, sizeof(p));
    r = (s_reader_t){.c = c};
    if (pthread_create(&tid, NULL, s_reader, &r) != 0)
        abort();
    usleep(1000);
    double cpu = s_cpu_ns();
    t = s_now_ns();
    size_t k = dcache_remove_origin(c, DCACHE_ORIGIN_LOCAL);
    s_note(&p, s_now_ns() - t, s_cpu_ns() - cpu, k);
    usleep(1000);
    s_report("old_storm", &p, walk_ms, &r);
    r.stop = 1;
    pthread_join(tid, NULL);
    dcache_destroy(&c);
    return 0;
}
