/*
 * bench_window - memory and speed of the window store with a million keys
 *
 * NAME
 *   bench_window - insert N distinct keys, print RSS and ns/event against a baseline
 *
 * SYNOPSIS
 *   bench_window [--quick] [--keys N] [--multi PCT] [--no-presize] [--ingest [--allow N]]
 *
 * DESCRIPTION
 *   Generates N events with distinct subject keys (SplitMix64 fingerprints,
 *   display text "subject NNN", 50 sites, times spread over 100 s) and counts
 *   them in a window configured as the shipped rules need it (10 s buckets, 300 s
 *   span). PCT percent of the keys get two more events from two other sites
 *   (multi-site keys cost one extra entry per site). With --ingest the events go
 *   through ingest_event() with the default rules (dedup, skew, allowlist,
 *   rules) instead of window_add(). --allow N (with --ingest) also gives every
 *   event a client address and its client_ip key, and loads N allowlist entries
 *   that match none of them (half addresses, a quarter networks of 4 prefix
 *   lengths, a quarter subject keys; duplicates collapse): what an operator's
 *   long list costs per event.
 *
 *   The baseline is the same event generation with a checksum instead of the
 *   window, in the same run; the ratio is what matters, not the absolute ns.
 *   RSS is VmRSS from /proc/self/status before and after; the goal is
 *   <= 256 MB for 1 M active keys for the whole aggregator.
 *
 *   --quick uses 100 000 keys. --no-presize starts from an empty table and lets
 *   it grow (1.5x steps), to show the cost of not sizing it.
 *
 * DIAGNOSTICS
 *   Exit 0, or 64 for a bad argument.
 */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "allowlist.h"
#include "ingest.h"
#include "window.h"

#define T0_MS 1700000000000LL

static uint64_t s_splitmix(uint64_t x)
{
    x += 0x9E3779B97F4A7C15ULL;
    x = (x ^ (x >> 30)) * 0xBF58476D1CE4E5B9ULL;
    x = (x ^ (x >> 27)) * 0x94D049BB133111EBULL;
    return x ^ (x >> 31);
}

static long s_rss_kb(const char *field)
{
    FILE *f = fopen("/proc/self/status", "r");
    if (f == NULL)
        return -1;
    char line[256];
    long kb = -1;
    size_t flen = strlen(field);
    while (fgets(line, sizeof(line), f))
        if (strncmp(line, field, flen) == 0 && line[flen] == ':')
            kb = strtol(line + flen + 1, NULL, 10);
    fclose(f);
    return kb;
}

static double s_now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec * 1e9 + (double)ts.tv_nsec;
}

/* Event i of n: key, site and time; text into buf. */
typedef struct {
    uint64_t fp;     /* key fingerprint */
    unsigned site;   /* site index */
    int64_t time_ms; /* event time */
    size_t text_len; /* bytes in the text buffer */
} s_event_t;

static void s_event(size_t i, size_t n, size_t key, unsigned site, char *buf, s_event_t *ev)
{
    ev->fp = s_splitmix(key);
    ev->site = site;
    ev->time_ms = T0_MS + (int64_t)(100000.0 * (double)i / (double)n);
    ev->text_len = (size_t)snprintf(buf, 48, "subject %zu", key);
}

int main(int argc, char **argv)
{
    size_t nkeys = 1000000;
    unsigned multi_pct = 0;
    int presize = 1, via_ingest = 0;
    size_t nallow = 0;
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--quick") == 0)
            nkeys = 100000;
        else if (strcmp(argv[i], "--keys") == 0 && i + 1 < argc)
            nkeys = strtoul(argv[++i], NULL, 10);
        else if (strcmp(argv[i], "--multi") == 0 && i + 1 < argc)
            multi_pct = (unsigned)strtoul(argv[++i], NULL, 10);
        else if (strcmp(argv[i], "--no-presize") == 0)
            presize = 0;
        else if (strcmp(argv[i], "--ingest") == 0)
            via_ingest = 1;
        else if (strcmp(argv[i], "--allow") == 0 && i + 1 < argc)
            nallow = strtoul(argv[++i], NULL, 10);
        else {
            fprintf(stderr, "usage: bench_window [--quick] [--keys N] [--multi PCT] [--no-presize] "
                            "[--ingest [--allow N]]\n");
            return 64;
        }
    }
    /* the event list: every key once, plus two more sites for multi_pct of them */
    size_t extra = nkeys * multi_pct / 100 * 2;
    size_t nev = nkeys + extra;
    char buf[48];
    s_event_t ev;

    /* baseline: generate the same events, fold them into a checksum */
    uint64_t sum = 0;
    double t0 = s_now_ns();
    for (size_t i = 0; i < nev; i++) {
        size_t key = i < nkeys ? i : (i - nkeys) / 2;
        s_event(i, nev, key, (unsigned)((key + (i >= nkeys) * (1 + (i - nkeys) % 2)) % 50), buf,
                &ev);
        sum += ev.fp ^ (uint64_t)ev.time_ms ^ ev.site ^ (uint64_t)buf[ev.text_len - 1];
    }
    double base_ns = (s_now_ns() - t0) / (double)nev;

    long rss_before = s_rss_kb("VmRSS");
    window_t *w = NULL;
    ingest_t *in = NULL;
    decisions_t *dec = NULL;
    allowlist_t *allow = NULL;
    if (via_ingest) {
        dec = decisions_new(1, 0, 0);
        allow = allowlist_new();
        ingest_config_t cfg = {.expected_keys = presize ? nkeys + extra / 2 : 64};
        char err[128];
        in = ingest_new(&cfg, dec, allow, err, sizeof(err));
        if (in == NULL) {
            fprintf(stderr, "bench_window: %s\n", err);
            return 70;
        }
        w = ingest_window(in);
        for (size_t i = 0; i < nallow; i++) {
            allow_entry_t e;
            memset(&e, 0, sizeof(e));
            char text[64];
            int rc;
            if (i % 4 < 2) {
                snprintf(text, sizeof(text), "198.51.%zu.%zu", (i / 256) % 256, i % 256);
                rc = allowlist_entry_parse(&e, ALLOW_IP, text);
            } else if (i % 4 == 2) {
                static const int plen[4] = {16, 20, 24, 28};
                int p = plen[(i / 4) % 4];
                uint32_t a = (172u << 24) | (uint32_t)(i << 4);
                a &= ~0u << (32 - p);
                snprintf(text, sizeof(text), "%u.%u.%u.%u/%d", a >> 24, (a >> 16) & 255,
                         (a >> 8) & 255, a & 255, p);
                rc = allowlist_entry_parse(&e, ALLOW_NET, text);
            } else {
                e.type = ALLOW_KEY;
                e.scope = BS_SCOPE_SUBJECT;
                e.fp = s_splitmix(i + (1ULL << 40));
                snprintf(e.text, sizeof(e.text), "allowed %zu", i);
                rc = 0;
            }
            if (rc == 0)
                ingest_allow_add(in, &e, T0_MS, NULL);
        }
    } else {
        window_config_t cfg = {.bucket_ms = 10000,
                               .span_ms = 300000,
                               .initial_entries = presize ? nkeys + extra / 2 * 3 : 0};
        w = window_new(&cfg);
    }
    char name[16];
    for (unsigned s = 0; s < 50; s++) {
        snprintf(name, sizeof(name), "site%u", s);
        window_site_intern(w, name);
    }

    t0 = s_now_ns();
    for (size_t i = 0; i < nev; i++) {
        size_t key = i < nkeys ? i : (i - nkeys) / 2;
        s_event(i, nev, key, (unsigned)((key + (i >= nkeys) * (1 + (i - nkeys) % 2)) % 50), buf,
                &ev);
        if (via_ingest) {
            uint8_t ip[4] = {10, (uint8_t)(key >> 16), (uint8_t)(key >> 8), (uint8_t)key};
            char iptext[20];
            ingest_key_t k[2] = {
                {.scope = BS_SCOPE_SUBJECT, .fp = ev.fp, .text = buf, .text_len = ev.text_len},
                {.scope = BS_SCOPE_CLIENT_IP, .fp = ev.fp ^ 1, .text = iptext},
            };
            k[1].text_len =
                (size_t)snprintf(iptext, sizeof(iptext), "10.%u.%u.%u", ip[1], ip[2], ip[3]);
            ingest_event_t e = {.site = window_site_name(w, ev.site),
                                .sensor = "mx",
                                .seq = i + 1,
                                .time_ms = ev.time_ms,
                                .msg_class = BS_CLASS_BOUNCE,
                                .client_ip = nallow ? ip : NULL,
                                .client_ip_len = nallow ? 4 : 0,
                                .keys = k,
                                .nkeys = nallow ? 2 : 1};
            ingest_event(in, &e, ev.time_ms);
        } else {
            window_key_t k = {.scope = 1, .tally = 0, .fp = ev.fp};
            window_add(w, &k, ev.site, ev.time_ms, buf, ev.text_len);
        }
    }
    double win_ns = (s_now_ns() - t0) / (double)nev;
    long rss_after = s_rss_kb("VmRSS");
    long hwm = s_rss_kb("VmHWM");

    printf("bench_window: %s keys=%zu events=%zu multi_site=%u%% presize=%s allowlist=%zu\n",
           via_ingest ? "ingest_event" : "window_add", window_keys(w), nev, multi_pct,
           presize ? "yes" : "no", nallow);
    printf("  entries=%zu window_memory=%.1f MB (%.0f bytes/key)\n", window_entries(w),
           (double)window_memory(w) / 1048576.0, (double)window_memory(w) / (double)nkeys);
    printf("  rss_before=%.1f MB rss_after=%.1f MB rss_delta=%.1f MB peak(VmHWM)=%.1f MB "
           "goal<=256 MB for 1M keys\n",
           rss_before / 1024.0, rss_after / 1024.0, (rss_after - rss_before) / 1024.0,
           hwm / 1024.0);
    printf("  baseline=%.1f ns/event counted=%.1f ns/event ratio=%.2fx (checksum %" PRIx64 ")\n",
           base_ns, win_ns, win_ns / base_ns, sum);
    if (via_ingest) {
        ingest_destroy(&in);
        decisions_destroy(&dec);
        allowlist_destroy(&allow);
    } else {
        window_destroy(&w);
    }
    return 0;
}
