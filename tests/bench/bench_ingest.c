/*
 * bench_ingest - the aggregator's counting path alone, on bench_aggregator's workloads
 *
 * NAME
 *   bench_ingest - CPU time per event of ingest_batch() and the flush, in process
 *
 * SYNOPSIS
 *   bench_ingest [--quick] [--zipf] [--sites N] [--subjects N] [--presize N] [--unreachable]
 *                [--events N] [--rate N] [--check]
 *
 * DESCRIPTION
 *   Makes the event stream of `bench_aggregator ingest` (bench_stream.h: 4 sites, each
 *   with its own generator, frames of 200 events taking turns, three keys an event;
 *   uniform over 100 000 subjects and 50 000 addresses, or --zipf with storms), then
 *   feeds it to ingest_batch() with the default rules, as the daemon's event loop
 *   does, and every --rate events (default 1 000 000: one flush a second at 1 M events/s)
 *   flushes the changed keys as the write-behind flush does: copied with
 *   window_dirty_copy() (the event loop's part), then encoded with window_copy_encode()
 *   (the store writer thread's part), each timed (the blobs are discarded: LevelDB is not
 *   measured here). "event loop" is counting and copying: what bounds the daemon's rate.
 *
 *   Each frame is made into the same buffers just before it is counted, as the daemon
 *   decodes each frame into the same arena. Times are this thread's CPU time
 *   (CLOCK_THREAD_CPUTIME_ID), which other processes on the machine disturb less than
 *   wall time. The baseline, in the same run, is making the events; the ratios are what
 *   to compare between builds. Without ZeroMQ, LevelDB and the event loop this is not the
 *   daemon's rate, only the part of it that the counting code decides.
 *
 *   --quick: 2 000 000 events instead of 8 000 000. --sites: how many of the 4 sites
 *   send. --subjects N: N subjects and N/2 addresses (the table's size). --presize N:
 *   the window's expected keys (default 1 M, as in the daemon). --unreachable: the
 *   shipped rules with thresholds no key reaches (counting alone, no rule evaluated).
 *   --check: print a hash of every flushed blob's bytes, to check that two builds encode
 *   alike (it costs time: not for timing).
 *
 * DIAGNOSTICS
 *   Exit 0, or 64 for a bad argument.
 */
#include <inttypes.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "allowlist.h"
#include "bench_stream.h"
#include "decisions.h"
#include "fp.h"
#include "ingest.h"
#include "window.h"
#include "xalloc.h"

#define S_T0_MS  1700000000000LL
#define S_STORMS 4
#define S_SITES  4 /* sites at most */
#define S_BATCH  200

static double s_cpu_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
    return (double)ts.tv_sec * 1e9 + (double)ts.tv_nsec;
}

/* What the flush callback keeps of the blobs. */
typedef struct {
    uint64_t bytes; /* their total size */
    uint64_t hash;  /* FNV-1a of their bytes in order, with --check */
    bool check;     /* hash them (costs time: off when timing) */
} s_sink_t;

/* Discards a flushed blob, keeping its size (and with --check a hash of its bytes, to
 * compare the encoding of two builds). */
static void s_discard(const window_key_t *key, const uint8_t *blob, size_t len, void *arg)
{
    s_sink_t *sink = arg;
    sink->bytes += len;
    if (sink->check) {
        sink->hash = (sink->hash ^ key->fp) * 1099511628211ULL;
        for (size_t i = 0; i < len; i++)
            sink->hash = (sink->hash ^ blob[i]) * 1099511628211ULL;
    }
}

int main(int argc, char **argv)
{
    long nev = 8000000, rate = 1000000;
    int zipf = 0, nsites = S_SITES, nsubjects = 100000;
    long presize = 0;
    int quiet_rules = 0;
    s_sink_t sink = {.hash = 1469598103934665603ULL};
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--quick") == 0)
            nev = 2000000;
        else if (strcmp(argv[i], "--zipf") == 0)
            zipf = 1;
        else if (strcmp(argv[i], "--sites") == 0 && i + 1 < argc)
            nsites = atoi(argv[++i]);
        else if (strcmp(argv[i], "--subjects") == 0 && i + 1 < argc)
            nsubjects = atoi(argv[++i]);
        else if (strcmp(argv[i], "--check") == 0)
            sink.check = true;
        else if (strcmp(argv[i], "--unreachable") == 0)
            quiet_rules = 1;
        else if (strcmp(argv[i], "--presize") == 0 && i + 1 < argc)
            presize = atol(argv[++i]);
        else if (strcmp(argv[i], "--events") == 0 && i + 1 < argc)
            nev = atol(argv[++i]);
        else if (strcmp(argv[i], "--rate") == 0 && i + 1 < argc)
            rate = atol(argv[++i]);
        else {
            fprintf(stderr, "usage: bench_ingest [--quick] [--zipf] [--sites 1-4] [--subjects N] "
                            "[--presize N] [--unreachable] [--events N] [--rate N] [--check]\n");
            return 64;
        }
    }
    if (nsites < 1 || nsites > S_SITES) {
        fprintf(stderr, "bench_ingest: --sites must be 1 to %d\n", S_SITES);
        return 64;
    }
    if (nev < S_BATCH || rate < S_BATCH) {
        fprintf(stderr, "bench_ingest: --events and --rate must be at least %d\n", S_BATCH);
        return 64;
    }
    nev -= nev % S_BATCH;

    bench_stream_t bs;
    bench_stream_init(&bs, zipf, nsubjects, nsubjects / 2 > 0 ? nsubjects / 2 : 1);
    uint64_t rng[S_SITES]; /* each site its own generator, seeded as bench_aggregator's */
    for (int i = 0; i < S_SITES; i++)
        rng[i] = bench_stream_seed((uint64_t)i + 1);
    static const char *const sites[S_SITES] = {"site1", "site2", "site3", "site4"};

    decisions_t *dec = decisions_new(1, 0, 0);
    allowlist_t *allow = allowlist_new();
    ingest_config_t cfg = {
        .track_dirty = 1, .seed = 42, .expected_keys = (size_t)presize, .populate = 1};
    rule_t rules[INGEST_RULES_MAX];
    if (quiet_rules) {
        /* the shipped rules with thresholds no key reaches: counting alone */
        const rule_t *def = rules_defaults(&cfg.nrules);
        memcpy(rules, def, cfg.nrules * sizeof(*rules));
        for (size_t i = 0; i < cfg.nrules; i++)
            rules[i].min_events = 1u << 30;
        cfg.rules = rules;
    }
    char err[128];
    ingest_t *in = ingest_new(&cfg, dec, allow, err, sizeof(err));
    if (in == NULL) {
        fprintf(stderr, "bench_ingest: %s\n", err);
        return 70;
    }
    window_t *w = ingest_window(in);

    /* Frames of S_BATCH events, sites taking turns, each with its own sequence numbers,
     * made one at a time into the same buffers, as the daemon decodes each frame into
     * the same arena. Making them is the baseline. */
    ingest_event_t evs[S_BATCH];
    ingest_key_t keys[S_BATCH * 3];
    uint8_t ips[S_BATCH][4];
    ingest_result_t res[S_BATCH];
    long per_site[S_SITES] = {0};
    uint64_t flushes = 0, counted = 0, sum = 0;
    double make_ns = 0, count_ns = 0, copy_ns = 0, encode_ns = 0;
    window_copy_t *copy = window_copy_new();
    for (long f = 0; f < nev; f += S_BATCH) {
        double t0 = s_cpu_ns();
        int site = (int)(f / S_BATCH % nsites);
        for (int i = 0; i < S_BATCH; i++) {
            long g = per_site[site]++;
            int si, ii;
            const bench_keys_t *st;
            bench_stream_draw(&bs, &rng[site], g, &st, &si, &ii);
            uint8_t *a = ips[i];
            a[0] = 10;
            a[1] = (uint8_t)(ii >> 16);
            a[2] = (uint8_t)(ii >> 8);
            a[3] = (uint8_t)ii;
            ingest_key_t *k = &keys[i * 3];
            k[0] = (ingest_key_t){BS_SCOPE_SUBJECT, st->fp[si], st->text[si], st->len[si]};
            k[1] = (ingest_key_t){BS_SCOPE_CLIENT_IP, bs.ip.fp[ii], bs.ip.text[ii], bs.ip.len[ii]};
            k[2] =
                (ingest_key_t){BS_SCOPE_CLIENT_NET, bs.net.fp[ii], bs.net.text[ii], bs.net.len[ii]};
            evs[i] = (ingest_event_t){.site = sites[site],
                                      .sensor = "bench",
                                      .seq = (uint64_t)g + 1,
                                      .time_ms = S_T0_MS + (f + i) * 1000 / rate,
                                      .msg_class = BS_CLASS_BOUNCE,
                                      .client_ip = a,
                                      .client_ip_len = 4,
                                      .keys = k,
                                      .nkeys = 3};
            sum += k[0].fp ^ k[1].fp;
        }
        double t1 = s_cpu_ns();
        make_ns += t1 - t0;
        ingest_batch(in, evs, S_BATCH, evs[0].time_ms, res);
        double t2 = s_cpu_ns();
        count_ns += t2 - t1;
        for (int j = 0; j < S_BATCH; j++)
            counted += res[j] == INGEST_COUNTED;
        if ((f + S_BATCH) % rate < S_BATCH) {
            /* as the daemon: the loop copies steps of 1024 keys, the writer encodes them */
            for (;;) {
                double t3 = s_cpu_ns();
                size_t n = window_dirty_copy(w, 1024, copy);
                double t4 = s_cpu_ns();
                copy_ns += t4 - t3;
                if (n == 0)
                    break;
                window_copy_encode(copy, s_discard, &sink);
                window_copy_clear(copy);
                encode_ns += s_cpu_ns() - t4;
            }
            flushes++;
        }
    }
    double base_ns = make_ns;

    printf("bench_ingest: %s events=%ld sites=%d batch=%d keys=%zu entries=%zu counted=%" PRIu64
           " decisions=%zu\n",
           zipf ? "zipf" : "uniform", nev, nsites, S_BATCH, window_keys(w), window_entries(w),
           counted, decisions_count(dec));
    printf("  baseline (make the events): %.1f ns/event (checksum %" PRIx64 ")\n",
           base_ns / (double)nev, sum);
    printf("  ingest_batch:               %.1f ns/event, ratio %.1fx\n", count_ns / (double)nev,
           count_ns / base_ns);
    printf("  flush copy (event loop):    %.1f ns/event, ratio %.1fx (%" PRIu64 " flushes)\n",
           copy_ns / (double)nev, copy_ns / base_ns, flushes);
    printf("  flush encode (writer):      %.1f ns/event, ratio %.1fx (%.1f MB)\n",
           encode_ns / (double)nev, encode_ns / base_ns, (double)sink.bytes / 1048576.0);
    if (sink.check)
        printf("  flushed blobs hash %016" PRIx64 "\n", sink.hash);
    printf("  event loop:                 %.1f ns/event = %.2f M events/s of one core\n",
           (count_ns + copy_ns) / (double)nev, (double)nev / (count_ns + copy_ns) * 1e3);
    printf("  all:                        %.1f ns/event\n",
           (count_ns + copy_ns + encode_ns) / (double)nev);

    window_copy_destroy(&copy);
    ingest_destroy(&in);
    decisions_destroy(&dec);
    allowlist_destroy(&allow);
    bench_stream_free(&bs);
    return 0;
}
