/*
 * bench_ledger - how long ledger_expire() holds the ledger's lock with a million entries
 *
 * NAME
 *   bench_ledger - fill the outbound ledger, print the lock hold of each expiry slice
 *
 * SYNOPSIS
 *   bench_ledger [--quick] [--entries N] [--store DIR]
 *   bench_ledger --load N [--store DIR]
 *
 * DESCRIPTION
 *   Adds N distinct Message-IDs (default 1 000 000) at one time, then:
 *
 *   lookup   the baseline: ledger_has_message_id() of present IDs, mean ns a call;
 *   idle     ledger_expire() calls with nothing expired until the sweep has gone
 *            once around the table (the every-second tick of a quiet week);
 *   expiry   ledger_expire() calls after the TTL until the ledger is empty (a
 *            sensor started after a long stop, or the end of a burst).
 *
 *   For each expiry phase it prints the calls, the mean, 99th percentile and
 *   worst ns a call, the worst as a ratio against the baseline lookup, the
 *   most CPU time one call took (its work without being scheduled out) and
 *   its ratio, and the worst wait of a lookup made meanwhile by a second
 *   thread (every 200 us).
 *   Without a store ledger_expire() holds the lock the milter threads wait on
 *   for the whole call, so the ratio is how many lookups one tick can delay;
 *   with one, the disk writes come after the lock is let go, and the reader's
 *   worst wait shows the hold. The ratio is what matters, not the ns; on a
 *   busy machine the worst values include being scheduled out.
 *   Also printed, for the fill: the worst ledger_add() and the most CPU time of
 *   one, both also as ratios against the baseline lookup, and the worst wait of
 *   a lookup made meanwhile by a second thread (every 200 us) and its ratio; a
 *   growth of the table happens under the lock, one slice at a time. Then the
 *   most CPU time of an add by kind: plain (the zeroing of a growth's new table
 *   included), moving (a growth's move under way), move_end (the add that
 *   finished one) and releasing (giving back the moved table, a slice an add);
 *   the plain adds' worst is the machine's noise. And, as the old behaviour,
 *   the CPU time of freeing a touched table the size of the last moved one at
 *   once, which the move_end add used to pay.
 *
 *   --quick uses 100 000 entries. --store DIR keeps the ledger in a LevelDB
 *   database at DIR (which must not exist; it is left behind), so the expiry
 *   phase includes the deletes on disk.
 *
 *   --load N writes N Message-IDs to a store (DIR, or a temporary one that is
 *   removed), half of them at a time that is past the TTL at the restart and
 *   half still live then, and times three starts, printing each one's ms, the
 *   entries held and the table's slots and MB:
 *
 *   first     the first start after writing (LevelDB replays its log), so that
 *             the next ones compare like with like;
 *   all_live  ledger_new_at() at a time when every entry is still live: the
 *             work the old ledger_new() did at any time, since it loaded every
 *             entry whatever its age (and left the expired ones to the sweep,
 *             whose calls it would take are printed);
 *   restart   at the time when half have expired: loads the live half and
 *             deletes the other on disk, with the ratios against all_live;
 *   again     a second start at that time, after those deletes.
 *
 * DIAGNOSTICS
 *   Exit 0, 1 when the ledger cannot be made, or 64 for a bad argument.
 */
#include <inttypes.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "ledger.h"

#define T0_MS  1700000000000LL
#define TTL_MS (7LL * 24 * 3600 * 1000)

static double s_now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec * 1e9 + (double)ts.tv_nsec;
}

typedef struct {
    size_t calls;   /* ledger_expire() calls */
    size_t dropped; /* entries they forgot */
    double sum_ns;  /* their total time */
    double *ns;     /* each one's time */
    size_t ns_cap;  /* room in ns */
    double cpu_max; /* the most CPU time of one (the time less being scheduled out) */
} s_phase_t;

/* The second thread: a lookup every 200 us, keeping the worst wait. */
typedef struct {
    ledger_t *l;
    volatile int stop;
    double worst_ns; /* reset by the main thread between phases (a race only for the bench) */
} s_reader_t;

static void *s_reader(void *arg)
{
    s_reader_t *r = arg;
    while (!r->stop) {
        double t = s_now_ns();
        (void)ledger_has_message_id(r->l, "<m5@bench.example>", T0_MS + 1000);
        double d = s_now_ns() - t;
        if (d > r->worst_ns)
            r->worst_ns = d;
        usleep(200);
    }
    return NULL;
}

static double s_cpu_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
    return (double)ts.tv_sec * 1e9 + (double)ts.tv_nsec;
}

static void s_expire(ledger_t *l, int64_t now_ms, s_phase_t *p)
{
    double c = s_cpu_ns(), t = s_now_ns();
    p->dropped += ledger_expire(l, now_ms);
    double d = s_now_ns() - t;
    c = s_cpu_ns() - c;
    if (c > p->cpu_max)
        p->cpu_max = c;
    if (p->calls == p->ns_cap) {
        p->ns_cap = p->ns_cap ? 2 * p->ns_cap : 1024;
        p->ns = realloc(p->ns, p->ns_cap * sizeof(*p->ns));
        if (!p->ns)
            abort();
    }
    p->ns[p->calls++] = d;
    p->sum_ns += d;
}

/* What an add of the fill did besides adding: the move or the release of a growth. */
enum { S_PLAIN, S_MOVING, S_MOVE_END, S_RELEASING, S_KINDS };
static const char *const s_kind_names[S_KINDS] = {"plain", "moving", "move_end", "releasing"};

typedef struct {
    size_t adds;    /* adds of this kind */
    double cpu_max; /* the most CPU time of one */
} s_kind_t;

static int s_kind(const ledger_stats_t *before, const ledger_stats_t *after)
{
    if (before->old_slots && !after->old_slots)
        return S_MOVE_END;
    if (after->old_slots)
        return S_MOVING;
    return before->dead_bytes ? S_RELEASING : S_PLAIN;
}

/* The CPU time of freeing a table of that many bytes, all of its pages touched: what the add
 * that ended a move paid before old tables were given back a slice a call. */
static double s_free_at_once(size_t bytes)
{
    char *p = malloc(bytes);
    if (!p)
        abort();
    memset(p, 1, bytes);
    __asm__ volatile("" : : "r"(p) : "memory"); /* the pages are touched: keep the memset */
    double c = s_cpu_ns();
    free(p);
    return s_cpu_ns() - c;
}

static int s_cmp(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

static void s_report(const char *name, s_phase_t *p, double lookup_ns, double reader_ns)
{
    if (!p->calls)
        return;
    qsort(p->ns, p->calls, sizeof(*p->ns), s_cmp);
    double max = p->ns[p->calls - 1], p99 = p->ns[(p->calls - 1) * 99 / 100];
    printf("%-7s calls=%zu dropped=%zu mean=%.0f ns p99=%.0f ns max=%.0f ns (%.3f ms) "
           "max/lookup=%.0f cpu_max=%.0f ns cpu_max/lookup=%.0f reader_worst=%.3f ms\n",
           name, p->calls, p->dropped, p->sum_ns / (double)p->calls, p99, max, max / 1e6,
           max / lookup_ns, p->cpu_max, p->cpu_max / lookup_ns, reader_ns / 1e6);
    free(p->ns);
}

/* One start of the ledger in --load: its ms and what it holds; the ledger is closed again. */
static int s_start(const char *name, const char *path, int64_t now_ms, double base_ms,
                   const ledger_stats_t *base, double *ms, ledger_stats_t *st)
{
    char err[256] = "";
    double t = s_now_ns();
    ledger_t *l = ledger_new_at(path, TTL_MS, now_ms, err, sizeof(err));
    *ms = (s_now_ns() - t) / 1e6;
    if (!l) {
        fprintf(stderr, "bench_ledger: %s\n", err);
        return -1;
    }
    ledger_stats(l, st);
    ledger_destroy(&l);
    printf("%-8s start=%.1f ms held=%zu slots=%zu table=%.1f MB", name, *ms, st->held, st->slots,
           (double)st->slots * 16 / 1e6);
    if (base)
        printf(" start/all_live=%.2f slots/all_live=%.2f", *ms / base_ms,
               (double)st->slots / (double)base->slots);
    printf("\n");
    return 0;
}

/* --load: n entries in a store, half expired at the restart; three starts. */
static int s_load(long n, const char *store)
{
    char tmp[] = "/tmp/bench_ledger.XXXXXX", path[512];
    if (!store && !mkdtemp(tmp)) {
        perror("bench_ledger: mkdtemp");
        return 1;
    }
    snprintf(path, sizeof(path), "%s%s", store ? store : tmp, store ? "" : "/db");
    char err[256] = "", id[64];
    ledger_t *l = ledger_new_at(path, TTL_MS, T0_MS, err, sizeof(err));
    if (!l) {
        fprintf(stderr, "bench_ledger: %s\n", err);
        return 1;
    }
    double t = s_now_ns();
    for (long i = 0; i < n; i++) {
        snprintf(id, sizeof(id), "<m%ld@bench.example>", i);
        ledger_add(l, id, NULL, i % 2 ? T0_MS + TTL_MS / 2 : T0_MS);
    }
    ledger_destroy(&l);
    printf("load    entries=%ld written=%.1f s (half at T0, half at T0 + TTL/2)\n", n,
           (s_now_ns() - t) / 1e9);
    double all_ms, ms;
    ledger_stats_t all, st;
    int rc = s_start("first", path, T0_MS + 1, 0, NULL, &all_ms, &all);
    if (rc == 0)
        rc = s_start("all_live", path, T0_MS + 1, 0, NULL, &all_ms, &all);
    if (rc == 0) /* what all_live's start would have left to the sweep at the restart's time */
        printf("         at the restart time: expired_held=%ld, at least %ld ledger_expire() "
               "calls of %d deletes on disk to drop them\n",
               (n + 1) / 2, ((n + 1) / 2 + LEDGER_EXPIRE_DROPS - 1) / LEDGER_EXPIRE_DROPS,
               LEDGER_EXPIRE_DROPS);
    if (rc == 0)
        rc = s_start("restart", path, T0_MS + TTL_MS + 1, all_ms, &all, &ms, &st);
    if (rc == 0)
        rc = s_start("again", path, T0_MS + TTL_MS + 1, all_ms, &all, &ms, &st);
    if (!store) {
        char cmd[600];
        snprintf(cmd, sizeof(cmd), "rm -rf %s", tmp);
        if (system(cmd) != 0)
            fprintf(stderr, "bench_ledger: could not remove %s\n", tmp);
    }
    return rc ? 1 : 0;
}

int main(int argc, char **argv)
{
    long n = 1000000, load = 0;
    const char *store = NULL;
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--quick") == 0)
            n = 100000;
        else if (strcmp(argv[i], "--entries") == 0 && i + 1 < argc)
            n = strtol(argv[++i], NULL, 10);
        else if (strcmp(argv[i], "--load") == 0 && i + 1 < argc)
            load = strtol(argv[++i], NULL, 10);
        else if (strcmp(argv[i], "--store") == 0 && i + 1 < argc)
            store = argv[++i];
        else {
            fprintf(stderr, "usage: bench_ledger [--quick] [--entries N] [--store DIR]\n"
                            "       bench_ledger --load N [--store DIR]\n");
            return 64;
        }
    }
    if (n < 1 || load < 0) {
        fprintf(stderr, "bench_ledger: --entries and --load must be positive\n");
        return 64;
    }
    if (load)
        return s_load(load, store);
    char err[256] = "";
    ledger_t *l = ledger_new_at(store, TTL_MS, T0_MS, err, sizeof(err));
    if (!l) {
        fprintf(stderr, "bench_ledger: %s\n", err);
        return 1;
    }
    char id[64];
    s_reader_t fr = {.l = l};
    pthread_t ftid;
    if (pthread_create(&ftid, NULL, s_reader, &fr) != 0)
        abort();
    double t = s_now_ns(), add_max = 0, add_cpu_max = 0;
    s_kind_t kinds[S_KINDS] = {{0}};
    ledger_stats_t st;
    ledger_stats(l, &st);
    for (long i = 0; i < n; i++) {
        snprintf(id, sizeof(id), "<m%ld@bench.example>", i);
        ledger_stats_t before = st;
        double c = s_cpu_ns(), a = s_now_ns();
        ledger_add(l, id, NULL, T0_MS);
        double d = s_now_ns() - a;
        c = s_cpu_ns() - c;
        ledger_stats(l, &st);
        if (d > add_max)
            add_max = d;
        if (c > add_cpu_max)
            add_cpu_max = c;
        s_kind_t *k = &kinds[s_kind(&before, &st)];
        k->adds++;
        if (c > k->cpu_max)
            k->cpu_max = c;
    }
    double fill_ns = s_now_ns() - t;
    fr.stop = 1;
    pthread_join(ftid, NULL);
    double free_ns = s_free_at_once(st.slots / 2 * 16);

    long lookups = n < 200000 ? n : 200000;
    t = s_now_ns();
    long hits = 0;
    for (long i = 0; i < lookups; i++) {
        snprintf(id, sizeof(id), "<m%ld@bench.example>", (i * 7919) % n);
        hits += ledger_has_message_id(l, id, T0_MS + 1000);
    }
    double lookup_ns = (s_now_ns() - t) / (double)lookups;
    printf("entries=%ld slots=%zu store=%s fill=%.0f ns/add worst_add=%.3f ms "
           "worst_add/lookup=%.0f add_cpu_max/lookup=%.0f fill_reader_worst=%.3f ms "
           "fill_reader_worst/lookup=%.0f\n",
           n, st.slots, store ? store : "none", fill_ns / (double)n, add_max / 1e6,
           add_max / lookup_ns, add_cpu_max / lookup_ns, fr.worst_ns / 1e6,
           fr.worst_ns / lookup_ns);
    printf("lookup  calls=%ld hits=%ld mean=%.0f ns\n", lookups, hits, lookup_ns);
    for (int k = 0; k < S_KINDS; k++)
        printf("adds    kind=%-9s adds=%zu cpu_max=%.3f ms\n", s_kind_names[k], kinds[k].adds,
               kinds[k].cpu_max / 1e6);
    printf("old     free_at_once=%.3f ms (the last moved table, %zu MB, as the add that ended "
           "its move freed it) worst_add_cpu/free_at_once=%.2f\n",
           free_ns / 1e6, st.slots / 2 * 16 >> 20, add_cpu_max / free_ns);

    s_reader_t r = {.l = l};
    pthread_t tid;
    if (pthread_create(&tid, NULL, s_reader, &r) != 0)
        abort();
    s_phase_t idle = {0};
    uint64_t passes = st.passes;
    do {
        s_expire(l, T0_MS + 1000, &idle);
        ledger_stats(l, &st);
    } while (st.passes == passes);
    size_t pass = idle.calls;
    s_report("idle", &idle, lookup_ns, r.worst_ns);

    r.worst_ns = 0;
    s_phase_t gone = {0};
    while (ledger_count(l) > 0)
        s_expire(l, T0_MS + TTL_MS + 1, &gone);
    s_report("expiry", &gone, lookup_ns, r.worst_ns);
    r.stop = 1;
    pthread_join(tid, NULL);
    printf("pass=%zu calls (%zu s at one a second)\n", pass, pass);
    ledger_destroy(&l);
    return 0;
}
