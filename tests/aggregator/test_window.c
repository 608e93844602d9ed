/* test_window - sliding windows per key: bucket edges, sites and shares, expiry, persistence. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <cmocka.h>

#include "window.h"
#include "xalloc.h"

#define SEC 1000LL
/* A fixed base time, a whole multiple of every bucket size used here. */
#define T0 (1700000000LL * SEC)

static window_t *s_new(int64_t bucket_ms, int64_t span_ms)
{
    window_config_t cfg = {.bucket_ms = bucket_ms, .span_ms = span_ms, .text_min_events = 1};
    return window_new(&cfg);
}

static const window_key_t K1 = {.scope = 1, .tally = 0, .fp = 0x1111};
static const window_key_t K2 = {.scope = 1, .tally = 0, .fp = 0x2222};

/* Table: one event at T0 + event_s, counted at T0 + now_ms in a 120 s window of 10 s buckets. */
static void test_window_slides_at_bucket_edges(void **state)
{
    static const struct {
        int64_t event_ms; /* event time after T0 */
        int64_t now_ms;   /* query time after T0 */
        uint32_t expect;  /* events in the 120 s window */
    } cases[] = {
        {0, 0, 1},          /* same instant */
        {0, 119999, 1},     /* last ms of the 12th bucket: still in */
        {0, 120000, 0},     /* next bucket: slid out */
        {9999, 120000, 0},  /* anything in bucket 0 leaves together */
        {10000, 120000, 1}, /* bucket 1 stays */
        {10000, 129999, 1}, /* ...until bucket 13 starts */
        {10000, 130000, 0}, /* gone */
        {0, 300000, 0},     /* far beyond the span */
        {5000, 0, 1},       /* event a little ahead of now (skew): counted */
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        window_t *w = s_new(10 * SEC, 300 * SEC);
        int site = window_site_intern(w, "a");
        assert_int_equal(window_add(w, &K1, (unsigned)site, T0 + cases[i].event_ms, "x", 1), 0);
        uint32_t got = window_count(w, &K1, WINDOW_SITE_ALL, 120 * SEC, T0 + cases[i].now_ms);
        if (got != cases[i].expect)
            fail_msg("case %zu: got %u, want %u", i, got, cases[i].expect);
        window_destroy(&w);
    }
}

static void test_window_rules_of_different_length_share_buckets(void **state)
{
    window_t *w = s_new(10 * SEC, 300 * SEC);
    unsigned a = (unsigned)window_site_intern(w, "a");
    /* one event every 10 s for 300 s */
    for (int i = 0; i < 30; i++)
        assert_int_equal(window_add(w, &K1, a, T0 + i * 10 * SEC, NULL, 0), 0);
    int64_t now = T0 + 295 * SEC;
    assert_int_equal(window_count(w, &K1, WINDOW_SITE_ALL, 60 * SEC, now), 6);
    assert_int_equal(window_count(w, &K1, WINDOW_SITE_ALL, 120 * SEC, now), 12);
    assert_int_equal(window_count(w, &K1, WINDOW_SITE_ALL, 300 * SEC, now), 30);
    /* a window longer than the span is the span */
    assert_int_equal(window_count(w, &K1, WINDOW_SITE_ALL, 900 * SEC, now), 30);
    window_destroy(&w);
}

static void test_window_ring_reuses_buckets_after_gap(void **state)
{
    window_t *w = s_new(10 * SEC, 60 * SEC);
    unsigned a = (unsigned)window_site_intern(w, "a");
    for (int i = 0; i < 5; i++)
        window_add(w, &K1, a, T0, NULL, 0);
    /* 40 s later: buckets in between are cleared, old ones still counted */
    window_add(w, &K1, a, T0 + 40 * SEC, NULL, 0);
    assert_int_equal(window_count(w, &K1, WINDOW_SITE_ALL, 60 * SEC, T0 + 40 * SEC), 6);
    /* 60 s after the first events: the first bucket slot is reused for the new bucket */
    window_add(w, &K1, a, T0 + 60 * SEC, NULL, 0);
    assert_int_equal(window_count(w, &K1, WINDOW_SITE_ALL, 60 * SEC, T0 + 60 * SEC), 2);
    window_destroy(&w);
}

/* The clock stepped back an hour: a key counted before holds buckets an hour ahead of now.
 * Its next event starts it over instead of being refused as older than its ring, and the
 * sweep removes it; a key only a sensor's skew ahead still refuses events before its ring. */
static void test_window_key_from_before_the_clock_stepped_back_starts_over(void **state)
{
    window_t *w = s_new(10 * SEC, 60 * SEC);
    unsigned a = (unsigned)window_site_intern(w, "a");
    for (int i = 0; i < 5; i++)
        assert_int_equal(window_add(w, &K1, a, T0 + 3600 * SEC, NULL, 0), 0);
    window_set_now(w, T0, 60 * SEC);
    assert_int_equal(window_add(w, &K1, a, T0, NULL, 0), 0);
    assert_int_equal(window_count(w, &K1, WINDOW_SITE_ALL, 60 * SEC, T0), 1);
    assert_int_equal(window_counters(w)->refused_old, 0);
    /* a key a skewed sensor put 50 s ahead: an event before its ring is still refused */
    assert_int_equal(window_add(w, &K2, a, T0 + 50 * SEC, NULL, 0), 0);
    assert_int_equal(window_add(w, &K2, a, T0 - 20 * SEC, NULL, 0), -1);
    assert_int_equal(window_counters(w)->refused_old, 1);
    assert_int_equal(window_count(w, &K2, WINDOW_SITE_ALL, 60 * SEC, T0 + 50 * SEC), 1);
    /* the sweep removes a key from the future, and leaves the skewed one */
    window_t *v = s_new(10 * SEC, 60 * SEC);
    unsigned b = (unsigned)window_site_intern(v, "b");
    window_add(v, &K1, b, T0 + 3600 * SEC, NULL, 0);
    window_add(v, &K2, b, T0 + 50 * SEC, NULL, 0);
    window_set_now(v, T0, 60 * SEC);
    assert_int_equal(window_sweep(v, T0, 1000), 1);
    assert_int_equal(window_keys(v), 1);
    assert_int_equal(window_count(v, &K2, WINDOW_SITE_ALL, 60 * SEC, T0 + 50 * SEC), 1);
    window_destroy(&v);
    window_destroy(&w);
}

static void test_window_out_of_order_counts_and_too_old_refused(void **state)
{
    window_t *w = s_new(10 * SEC, 60 * SEC);
    unsigned a = (unsigned)window_site_intern(w, "a");
    assert_int_equal(window_add(w, &K1, a, T0 + 50 * SEC, NULL, 0), 0);
    assert_int_equal(window_add(w, &K1, a, T0 + 5 * SEC, NULL, 0), 0); /* late but in ring */
    assert_int_equal(window_count(w, &K1, WINDOW_SITE_ALL, 60 * SEC, T0 + 50 * SEC), 2);
    assert_int_equal(window_add(w, &K1, a, T0 - 20 * SEC, NULL, 0), -1); /* before the ring */
    assert_int_equal(window_counters(w)->refused_old, 1);
    window_stats_t st;
    window_stats(w, &K1, WINDOW_SITE_ALL, 60 * SEC, T0 + 50 * SEC, &st);
    assert_int_equal(st.first_ms, T0 + 5 * SEC);
    assert_int_equal(st.last_ms, T0 + 50 * SEC);
    window_destroy(&w);
}

static void test_window_distinct_sites_and_shares_largest_first(void **state)
{
    window_t *w = s_new(10 * SEC, 300 * SEC);
    unsigned a = (unsigned)window_site_intern(w, "a");
    unsigned b = (unsigned)window_site_intern(w, "b");
    unsigned c = (unsigned)window_site_intern(w, "c");
    /* a reports first, alone, then b and c join */
    for (int i = 0; i < 5; i++)
        window_add(w, &K1, a, T0 + i * SEC, "subj", 4);
    for (int i = 0; i < 2; i++)
        window_add(w, &K1, c, T0 + 10 * SEC, "subj", 4);
    for (int i = 0; i < 3; i++)
        window_add(w, &K1, b, T0 + 20 * SEC, "subj", 4);
    window_stats_t st;
    assert_int_equal(window_stats(w, &K1, WINDOW_SITE_ALL, 120 * SEC, T0 + 30 * SEC, &st), 0);
    assert_int_equal(st.events, 10);
    assert_int_equal(st.sites, 3);
    assert_int_equal(st.nshares, 3);
    assert_int_equal(st.shares[0].site, a);
    assert_int_equal(st.shares[0].events, 5);
    assert_int_equal(st.shares[1].site, b);
    assert_int_equal(st.shares[1].events, 3);
    assert_int_equal(st.shares[2].site, c);
    assert_int_equal(st.shares[2].events, 2);
    assert_string_equal(st.text, "subj");
    /* per-site views */
    assert_int_equal(window_count(w, &K1, a, 120 * SEC, T0 + 30 * SEC), 5);
    assert_int_equal(window_count(w, &K1, b, 120 * SEC, T0 + 30 * SEC), 3);
    window_stats(w, &K1, c, 120 * SEC, T0 + 30 * SEC, &st);
    assert_int_equal(st.events, 2);
    assert_int_equal(st.sites, 1);
    assert_int_equal(st.shares[0].site, c);
    window_destroy(&w);
}

static void test_window_single_site_key_is_one_entry(void **state)
{
    window_t *w = s_new(10 * SEC, 300 * SEC);
    unsigned a = (unsigned)window_site_intern(w, "a");
    unsigned b = (unsigned)window_site_intern(w, "b");
    for (int i = 0; i < 100; i++)
        window_add(w, &K1, a, T0 + i * 100, NULL, 0);
    assert_int_equal(window_entries(w), 1);
    assert_int_equal(window_count(w, &K1, a, 60 * SEC, T0 + 10 * SEC), 100);
    assert_int_equal(window_count(w, &K1, b, 60 * SEC, T0 + 10 * SEC), 0);
    window_stats_t st;
    window_stats(w, &K1, WINDOW_SITE_ALL, 60 * SEC, T0 + 10 * SEC, &st);
    assert_int_equal(st.sites, 1);
    assert_int_equal(st.shares[0].site, a);
    /* a second site: total + one series per site */
    window_add(w, &K1, b, T0 + 10 * SEC, NULL, 0);
    assert_int_equal(window_entries(w), 3);
    assert_int_equal(window_keys(w), 1);
    window_destroy(&w);
}

static void test_window_sites_slide_out_with_their_events(void **state)
{
    window_t *w = s_new(10 * SEC, 300 * SEC);
    unsigned a = (unsigned)window_site_intern(w, "a");
    unsigned b = (unsigned)window_site_intern(w, "b");
    window_add(w, &K1, a, T0, NULL, 0);
    window_add(w, &K1, b, T0 + 200 * SEC, NULL, 0);
    window_stats_t st;
    window_stats(w, &K1, WINDOW_SITE_ALL, 120 * SEC, T0 + 200 * SEC, &st);
    assert_int_equal(st.events, 1);
    assert_int_equal(st.sites, 1);
    assert_int_equal(st.shares[0].site, b);
    window_stats(w, &K1, WINDOW_SITE_ALL, 300 * SEC, T0 + 200 * SEC, &st);
    assert_int_equal(st.events, 2);
    assert_int_equal(st.sites, 2);
    window_destroy(&w);
}

static void test_window_sites_beyond_cap_share_other(void **state)
{
    window_t *w = s_new(10 * SEC, 300 * SEC);
    char name[16];
    for (int i = 0; i < WINDOW_SITES_MAX + 4; i++) {
        snprintf(name, sizeof(name), "site%d", i);
        unsigned s = (unsigned)window_site_intern(w, name);
        window_add(w, &K1, s, T0 + i * SEC, NULL, 0);
    }
    window_stats_t st;
    window_stats(w, &K1, WINDOW_SITE_ALL, 120 * SEC, T0 + 30 * SEC, &st);
    assert_int_equal(st.events, WINDOW_SITES_MAX + 4);
    assert_int_equal(st.sites, WINDOW_SITES_MAX + 1); /* 16 exact + "other" as one */
    assert_int_equal(st.shares[0].site, WINDOW_SITE_OTHER);
    assert_int_equal(st.shares[0].events, 4);
    assert_string_equal(window_site_name(w, WINDOW_SITE_OTHER), "other");
    window_destroy(&w);
}

/* Past the 16 tracked sites, the site reporting now is counted exactly: the smallest
 * tracked site is folded into "other" for it. A 17th site sending the rest of a wave alone
 * shows as itself (the share cap and its local rule see its count), not as "other". */
static void test_window_a_busy_17th_site_is_counted_as_itself(void **state)
{
    window_t *w = s_new(10 * SEC, 300 * SEC);
    char name[16];
    for (int i = 0; i < WINDOW_SITES_MAX; i++) {
        snprintf(name, sizeof(name), "site%d", i);
        window_add(w, &K1, (unsigned)window_site_intern(w, name), T0, NULL, 0);
    }
    unsigned x = (unsigned)window_site_intern(w, "attacker");
    for (int i = 0; i < 390; i++)
        window_add(w, &K1, x, T0 + SEC, NULL, 0);
    window_stats_t st;
    window_stats(w, &K1, WINDOW_SITE_ALL, 120 * SEC, T0 + 30 * SEC, &st);
    assert_int_equal(st.events, WINDOW_SITES_MAX + 390);
    assert_int_equal(st.shares[0].site, x);
    assert_int_equal(st.shares[0].events, 390);
    assert_int_equal(st.sites, WINDOW_SITES_MAX + 1); /* 15 tracked, the attacker, "other" */
    assert_int_equal(window_count(w, &K1, x, 120 * SEC, T0 + 30 * SEC), 390);
    assert_int_equal(window_counters(w)->sites_folded, 1);
    /* the one folded kept its event, in "other" */
    int other = -1;
    for (uint32_t i = 0; i < st.nshares; i++)
        if (st.shares[i].site == WINDOW_SITE_OTHER)
            other = (int)st.shares[i].events;
    assert_int_equal(other, 1);
    window_destroy(&w);
}

/* An import through a tally map: a kept tally is imported as mapped, a dropped one is
 * skipped (1) and the key as stored is reported, for the store to delete its record. */
static void test_window_import_mapped_keeps_or_drops_a_tally(void **state)
{
    window_t *w = s_new(10 * SEC, 60 * SEC);
    window_key_t k = {.scope = 1, .tally = 2, .fp = 0x3333};
    window_add(w, &k, (unsigned)window_site_intern(w, "a"), T0, NULL, 0);
    size_t len = 0;
    uint8_t *blob = window_export(w, &k, &len);
    assert_non_null(blob);
    uint8_t map[256];
    memset(map, 0xFF, sizeof(map));
    window_t *v = s_new(10 * SEC, 60 * SEC);
    window_key_t was;
    assert_int_equal(window_import_mapped(v, blob, len, T0, map, &was), 1);
    assert_int_equal(was.tally, 2);
    assert_true(was.fp == 0x3333);
    assert_int_equal(window_keys(v), 0);
    map[2] = 2;
    assert_int_equal(window_import_mapped(v, blob, len, T0, map, NULL), 0);
    assert_int_equal(window_count(v, &k, WINDOW_SITE_ALL, 60 * SEC, T0), 1);
    free(blob);
    window_destroy(&v);
    window_destroy(&w);
}

/* A key idle at import time is not restored and says so (WINDOW_IMPORT_IDLE), with the
 * key as stored, for the store to delete its record: nothing else ever would.
 * window_import() still returns 0 for it. */
static void test_window_import_mapped_reports_an_idle_key(void **state)
{
    window_t *w = s_new(10 * SEC, 60 * SEC);
    window_key_t k = {.scope = 1, .tally = 2, .fp = 0x4444};
    window_add(w, &k, (unsigned)window_site_intern(w, "a"), T0, NULL, 0);
    size_t len = 0;
    uint8_t *blob = window_export(w, &k, &len);
    assert_non_null(blob);
    uint8_t map[256];
    memset(map, 0xFF, sizeof(map));
    map[2] = 1; /* kept, as another tally */
    window_t *v = s_new(10 * SEC, 60 * SEC);
    window_key_t was = {0};
    int64_t later = T0 + 120 * SEC; /* two spans on */
    assert_int_equal(window_import_mapped(v, blob, len, later, map, &was), WINDOW_IMPORT_IDLE);
    assert_int_equal(was.tally, 2); /* as stored, not as mapped */
    assert_true(was.fp == 0x4444);
    assert_int_equal(window_keys(v), 0);
    assert_int_equal(window_import_mapped(v, blob, len, later, NULL, NULL), WINDOW_IMPORT_IDLE);
    assert_int_equal(window_import(v, blob, len, later), 0);
    assert_int_equal(window_keys(v), 0);
    /* one bucket earlier it still counts */
    assert_int_equal(window_import_mapped(v, blob, len, T0 + 50 * SEC, map, NULL), 0);
    assert_int_equal(window_keys(v), 1);
    free(blob);
    window_destroy(&v);
    window_destroy(&w);
}

static void test_window_idle_site_frees_its_place(void **state)
{
    window_t *w = s_new(10 * SEC, 60 * SEC);
    char name[16];
    for (int i = 0; i < WINDOW_SITES_MAX; i++) {
        snprintf(name, sizeof(name), "site%d", i);
        window_add(w, &K1, (unsigned)window_site_intern(w, name), T0, NULL, 0);
    }
    /* keep site0 busy; the others go idle; a new site gets an exact series */
    window_add(w, &K1, 0, T0 + 50 * SEC, NULL, 0);
    unsigned late = (unsigned)window_site_intern(w, "late");
    window_add(w, &K1, late, T0 + 70 * SEC, NULL, 0);
    window_stats_t st;
    window_stats(w, &K1, WINDOW_SITE_ALL, 60 * SEC, T0 + 70 * SEC, &st);
    assert_int_equal(st.events, 2);
    assert_int_equal(st.sites, 2);
    assert_int_not_equal(st.shares[0].site, WINDOW_SITE_OTHER);
    assert_int_not_equal(st.shares[1].site, WINDOW_SITE_OTHER);
    assert_int_equal(window_entries(w), 3);
    window_destroy(&w);
}

static void test_window_text_kept_after_min_events_and_capped(void **state)
{
    window_config_t cfg = {.bucket_ms = 10 * SEC, .span_ms = 60 * SEC, .text_min_events = 3};
    window_t *w = window_new(&cfg);
    char longtext[200];
    memset(longtext, 'x', sizeof(longtext));
    window_stats_t st;
    window_add(w, &K1, 0, T0, longtext, sizeof(longtext));
    window_add(w, &K1, 0, T0, longtext, sizeof(longtext));
    window_stats(w, &K1, WINDOW_SITE_ALL, 60 * SEC, T0, &st);
    assert_string_equal(st.text, "");
    window_add(w, &K1, 0, T0, longtext, sizeof(longtext));
    window_stats(w, &K1, WINDOW_SITE_ALL, 60 * SEC, T0, &st);
    assert_int_equal(strlen(st.text), WINDOW_TEXT_MAX);
    window_destroy(&w);
}

static void test_window_sweep_expires_idle_keys_only(void **state)
{
    window_t *w = s_new(10 * SEC, 60 * SEC);
    for (uint64_t i = 1; i <= 100; i++) {
        window_key_t k = {.scope = 1, .fp = i};
        window_add(w, &k, i % 3, (i % 2) ? T0 : T0 + 50 * SEC, "t", 1);
    }
    assert_int_equal(window_keys(w), 100);
    /* at T0+65 s the T0 keys are idle (their bucket left the 60 s span) */
    size_t expired = window_sweep(w, T0 + 65 * SEC, 1000000);
    assert_int_equal(expired, 50);
    assert_int_equal(window_keys(w), 50);
    assert_int_equal(window_counters(w)->keys_expired, 50);
    for (uint64_t i = 1; i <= 100; i++) {
        window_key_t k = {.scope = 1, .fp = i};
        window_stats_t st;
        assert_int_equal(window_stats(w, &k, WINDOW_SITE_ALL, 60 * SEC, T0 + 65 * SEC, &st),
                         (i % 2) ? -1 : 0);
    }
    window_destroy(&w);
}

static void test_window_sweep_respects_budget(void **state)
{
    window_t *w = s_new(10 * SEC, 60 * SEC);
    for (uint64_t i = 1; i <= 1000; i++) {
        window_key_t k = {.scope = 1, .fp = i};
        window_add(w, &k, 0, T0, NULL, 0);
    }
    size_t total = 0, calls = 0;
    while (window_keys(w) > 0 && calls < 10000) {
        size_t n = window_sweep(w, T0 + 100 * SEC, 50);
        assert_true(n <= 50);
        total += n;
        calls++;
    }
    assert_int_equal(total, 1000);
    assert_true(calls > 20);
    assert_int_equal(window_entries(w), 0);
    window_destroy(&w);
}

static void test_window_idle_key_starts_over_on_next_event(void **state)
{
    window_t *w = s_new(10 * SEC, 60 * SEC);
    window_add(w, &K1, 0, T0, NULL, 0);
    window_add(w, &K1, 1, T0, NULL, 0);
    window_add(w, &K1, 2, T0 + 200 * SEC, NULL, 0);
    window_stats_t st;
    window_stats(w, &K1, WINDOW_SITE_ALL, 60 * SEC, T0 + 200 * SEC, &st);
    assert_int_equal(st.events, 1);
    assert_int_equal(st.sites, 1);
    assert_int_equal(st.first_ms, T0 + 200 * SEC);
    assert_int_equal(window_entries(w), 1);
    window_destroy(&w);
}

static void test_window_grows_and_keeps_every_key(void **state)
{
    window_t *w = s_new(10 * SEC, 60 * SEC);
    for (uint64_t i = 1; i <= 20000; i++) {
        window_key_t k = {.scope = (uint8_t)(1 + i % 5), .fp = i * 0x9E3779B97F4A7C15ULL};
        window_add(w, &k, (unsigned)(i % 4), T0, NULL, 0);
        if (i % 7 == 0)
            window_add(w, &k, (unsigned)((i + 1) % 4), T0, NULL, 0);
    }
    assert_int_equal(window_keys(w), 20000);
    for (uint64_t i = 1; i <= 20000; i++) {
        window_key_t k = {.scope = (uint8_t)(1 + i % 5), .fp = i * 0x9E3779B97F4A7C15ULL};
        assert_int_equal(window_count(w, &k, WINDOW_SITE_ALL, 60 * SEC, T0), i % 7 ? 1 : 2);
    }
    window_destroy(&w);
}

static void test_window_scope_and_tally_are_part_of_the_key(void **state)
{
    window_t *w = s_new(10 * SEC, 60 * SEC);
    window_key_t a = {.scope = 1, .tally = 0, .fp = 7};
    window_key_t b = {.scope = 2, .tally = 0, .fp = 7};
    window_key_t c = {.scope = 1, .tally = 1, .fp = 7};
    window_add(w, &a, 0, T0, NULL, 0);
    window_add(w, &a, 0, T0, NULL, 0);
    window_add(w, &b, 0, T0, NULL, 0);
    assert_int_equal(window_count(w, &a, WINDOW_SITE_ALL, 60 * SEC, T0), 2);
    assert_int_equal(window_count(w, &b, WINDOW_SITE_ALL, 60 * SEC, T0), 1);
    assert_int_equal(window_count(w, &c, WINDOW_SITE_ALL, 60 * SEC, T0), 0);
    window_destroy(&w);
}

static void test_window_max_entries_refuses_new_keys(void **state)
{
    window_config_t cfg = {.bucket_ms = 10 * SEC, .span_ms = 60 * SEC, .max_entries = 10};
    window_t *w = window_new(&cfg);
    int refused = 0;
    for (uint64_t i = 1; i <= 20; i++) {
        window_key_t k = {.scope = 1, .fp = i};
        refused += window_add(w, &k, 0, T0, NULL, 0) != 0;
    }
    assert_int_equal(refused, 10);
    assert_int_equal(window_keys(w), 10);
    assert_int_equal(window_counters(w)->refused_full, 10);
    window_key_t k1 = {.scope = 1, .fp = 1};
    assert_int_equal(window_add(w, &k1, 0, T0, NULL, 0), 0); /* known keys still count */
    window_destroy(&w);
}

static void test_window_site_table(void **state)
{
    window_t *w = s_new(10 * SEC, 60 * SEC);
    assert_int_equal(window_site_intern(w, "alpha"), 0);
    assert_int_equal(window_site_intern(w, "beta"), 1);
    assert_int_equal(window_site_intern(w, "alpha"), 0);
    assert_int_equal(window_site_find(w, "beta"), 1);
    assert_int_equal(window_site_find(w, "gamma"), -1);
    assert_string_equal(window_site_name(w, 1), "beta");
    assert_string_equal(window_site_name(w, 99), "");
    assert_int_equal(window_site_intern(w, ""), -1);
    char longname[100];
    memset(longname, 'n', sizeof(longname) - 1);
    longname[sizeof(longname) - 1] = 0;
    assert_int_equal(window_site_intern(w, longname), -1);
    char name[16];
    for (int i = 0; i < 1000; i++) {
        snprintf(name, sizeof(name), "s%d", i);
        assert_int_equal(window_site_intern(w, name), i + 2);
    }
    assert_int_equal(window_site_find(w, "s500"), 502);
    assert_int_equal(window_sites(w), 1002);
    window_destroy(&w);
}

static void test_window_top_lists_busiest_keys(void **state)
{
    window_t *w = s_new(10 * SEC, 60 * SEC);
    for (uint64_t i = 1; i <= 50; i++) {
        window_key_t k = {.scope = 1, .fp = i};
        for (uint64_t j = 0; j < i; j++)
            window_add(w, &k, 0, T0, NULL, 0);
    }
    window_key_t other = {.scope = 3, .fp = 999};
    for (int j = 0; j < 500; j++)
        window_add(w, &other, 0, T0, NULL, 0);
    window_top_t top[5];
    size_t n = window_top(w, 1, 0, 60 * SEC, T0, top, 5);
    assert_int_equal(n, 5);
    for (size_t i = 0; i < 5; i++) {
        assert_int_equal(top[i].key.fp, 50 - i);
        assert_int_equal(top[i].events, 50 - i);
    }
    assert_int_equal(window_top(w, 1, 0, 60 * SEC, T0 + 100 * SEC, top, 5), 0);
    window_destroy(&w);
}

static void test_window_export_import_round_trip(void **state)
{
    window_t *w = s_new(10 * SEC, 300 * SEC);
    unsigned a = (unsigned)window_site_intern(w, "a");
    unsigned b = (unsigned)window_site_intern(w, "b");
    for (int i = 0; i < 7; i++)
        window_add(w, &K1, a, T0 + i * 20 * SEC, "wave", 4);
    for (int i = 0; i < 3; i++)
        window_add(w, &K1, b, T0 + 100 * SEC, "wave", 4);
    window_add(w, &K2, b, T0, "single", 6);
    size_t len1 = 0, len2 = 0;
    uint8_t *blob1 = window_export(w, &K1, &len1);
    uint8_t *blob2 = window_export(w, &K2, &len2);
    assert_non_null(blob1);
    assert_non_null(blob2);
    assert_true(len1 < 100); /* 3 series, 15 non-zero buckets */

    window_t *r = s_new(10 * SEC, 300 * SEC);
    window_site_intern(r, "zzz"); /* different site indexes in the new process */
    assert_int_equal(window_import(r, blob1, len1, T0 + 130 * SEC), 0);
    assert_int_equal(window_import(r, blob2, len2, T0 + 130 * SEC), 0);
    int64_t now = T0 + 130 * SEC;
    window_stats_t st1, st2;
    for (int64_t win = 60 * SEC; win <= 300 * SEC; win += 60 * SEC) {
        window_stats(w, &K1, WINDOW_SITE_ALL, win, now, &st1);
        window_stats(r, &K1, WINDOW_SITE_ALL, win, now, &st2);
        assert_int_equal(st1.events, st2.events);
        assert_int_equal(st1.sites, st2.sites);
        assert_int_equal(st1.first_ms, st2.first_ms);
        assert_int_equal(st1.last_ms, st2.last_ms);
    }
    assert_string_equal(st2.text, "wave");
    assert_int_equal(window_count(r, &K1, (unsigned)window_site_find(r, "a"), 300 * SEC, now), 7);
    assert_int_equal(window_count(r, &K1, (unsigned)window_site_find(r, "b"), 300 * SEC, now), 3);
    window_stats(r, &K2, WINDOW_SITE_ALL, 300 * SEC, now, &st2);
    assert_int_equal(st2.events, 1);
    assert_int_equal(st2.shares[0].site, (unsigned)window_site_find(r, "b"));
    /* the restored key keeps counting */
    window_add(r, &K1, (unsigned)window_site_find(r, "a"), now, NULL, 0);
    assert_int_equal(window_count(r, &K1, WINDOW_SITE_ALL, 300 * SEC, now), 11);
    /* a key idle by import time is skipped */
    window_t *late = s_new(10 * SEC, 300 * SEC);
    assert_int_equal(window_import(late, blob2, len2, T0 + 1000 * SEC), 0);
    assert_int_equal(window_keys(late), 0);
    xfree(blob1);
    xfree(blob2);
    window_destroy(&w);
    window_destroy(&r);
    window_destroy(&late);
}

/* Bucket numbers below the ring's length (times near the epoch, as only made-up clocks
 * have) take the export's other path to order the counters: a round trip still gives
 * back every window's count, per site too. */
static void test_window_export_import_near_time_zero(void **state)
{
    window_t *w = s_new(10 * SEC, 300 * SEC);
    unsigned a = (unsigned)window_site_intern(w, "a");
    unsigned b = (unsigned)window_site_intern(w, "b");
    for (int i = 0; i < 12; i++)
        window_add(w, &K1, i % 3 ? a : b, 35 * SEC + i * 17 * SEC, "near zero", 9);
    size_t len = 0;
    uint8_t *blob = window_export(w, &K1, &len);
    assert_non_null(blob);
    int64_t now = 35 * SEC + 11 * 17 * SEC;
    window_t *r = s_new(10 * SEC, 300 * SEC);
    assert_int_equal(window_import(r, blob, len, now), 0);
    for (int64_t win = 10 * SEC; win <= 300 * SEC; win += 10 * SEC) {
        assert_int_equal(window_count(r, &K1, WINDOW_SITE_ALL, win, now),
                         window_count(w, &K1, WINDOW_SITE_ALL, win, now));
        assert_int_equal(window_count(r, &K1, (unsigned)window_site_find(r, "a"), win, now),
                         window_count(w, &K1, a, win, now));
    }
    assert_int_equal(window_count(r, &K1, WINDOW_SITE_ALL, 300 * SEC, now), 12);
    xfree(blob);
    window_destroy(&w);
    window_destroy(&r);
}

static void test_window_import_rejects_bad_blobs(void **state)
{
    window_t *w = s_new(10 * SEC, 300 * SEC);
    window_add(w, &K1, (unsigned)window_site_intern(w, "a"), T0, "t", 1);
    window_add(w, &K1, (unsigned)window_site_intern(w, "b"), T0, "t", 1);
    size_t len = 0;
    uint8_t *blob = window_export(w, &K1, &len);
    window_t *r = s_new(10 * SEC, 300 * SEC);
    for (size_t cut = 0; cut < len; cut++)
        assert_int_equal(window_import(r, blob, cut, T0), -1);
    uint8_t *copy = xmalloc(len);
    for (size_t i = 0; i < len; i++) { /* flip each byte: never crashes, rarely accepted */
        memcpy(copy, blob, len);
        copy[i] ^= 0xA5;
        (void)window_import(r, copy, len, T0);
    }
    window_t *other = s_new(20 * SEC, 300 * SEC);
    assert_int_equal(window_import(other, blob, len, T0), -1); /* another resolution */
    xfree(copy);
    xfree(blob);
    assert_null(window_export(w, &K2, &len));
    window_destroy(&w);
    window_destroy(&r);
    window_destroy(&other);
}

/* A blob whose newest bucket lies a ring or more ahead of the restore clock (damage) is
 * refused: kept, the key would refuse every event as too old and never go idle. A lead
 * of less than a ring (the clock went back a little) is kept and the key counts on. */
static void test_window_import_refuses_a_key_from_the_future(void **state)
{
    window_t *w = s_new(10 * SEC, 300 * SEC);
    int64_t later = T0 + 365LL * 86400 * SEC;
    window_add(w, &K1, (unsigned)window_site_intern(w, "a"), later, "t", 1);
    window_add(w, &K2, (unsigned)window_site_intern(w, "a"), T0 + 20 * SEC, "t", 1);
    window_add(w, &K2, (unsigned)window_site_intern(w, "b"), T0 + 20 * SEC, "t", 1);
    size_t len1 = 0, len2 = 0;
    uint8_t *far = window_export(w, &K1, &len1);
    uint8_t *near = window_export(w, &K2, &len2);
    window_t *r = s_new(10 * SEC, 300 * SEC);
    assert_int_equal(window_import(r, far, len1, T0), -1);
    assert_int_equal(window_keys(r), 0);
    assert_int_equal(window_add(r, &K1, (unsigned)window_site_intern(r, "a"), T0, "t", 1), 0);
    assert_int_equal(window_count(r, &K1, WINDOW_SITE_ALL, 300 * SEC, T0), 1);
    assert_int_equal(window_import(r, near, len2, T0), 0);
    assert_int_equal(window_add(r, &K2, (unsigned)window_site_find(r, "a"), T0, "t", 1), 0);
    assert_int_equal(window_count(r, &K2, WINDOW_SITE_ALL, 300 * SEC, T0 + 20 * SEC), 3);
    /* idle once the ring has passed its newest bucket */
    assert_int_equal(window_sweep(r, T0 + 20 * SEC + 310 * SEC, 1000), 2);
    assert_int_equal(window_keys(r), 0);
    xfree(far);
    xfree(near);
    window_destroy(&w);
    window_destroy(&r);
}

/* A single-site blob of K1 from site "a" (10 s buckets), its one series' newest bucket
 * head, with one event in it; written by hand so that head can be any varint. */
static size_t s_blob_with_head(uint8_t *out, uint64_t head)
{
    static const uint8_t start[] = {'W',  1,    0x90, 0x4E,              /* bucket_ms 10000 */
                                    1,    0,                             /* scope, tally */
                                    0x11, 0x11, 0,    0,    0,  0, 0, 0, /* fp */
                                    0,    1,    0,    1,    'a'}; /* no text, 1 series, "a" */
    size_t n = sizeof(start);
    memcpy(out, start, n);
    do {
        out[n++] = (uint8_t)(head | (head >= 0x80 ? 0x80 : 0));
        head >>= 7;
    } while (head);
    static const uint8_t end[] = {0, 0, 1, 0, 1}; /* first, last, one (age 0, count 1) */
    memcpy(out + n, end, sizeof(end));
    return n + sizeof(end);
}

/* A head beyond 32 bits is refused, also one of 2^63 or more (negative as int64_t). */
static void test_window_import_refuses_a_huge_head(void **state)
{
    uint8_t blob[64];
    window_t *r = s_new(10 * SEC, 300 * SEC);
    size_t len = s_blob_with_head(blob, (uint64_t)(T0 / (10 * SEC)));
    assert_int_equal(window_import(r, blob, len, T0), 0); /* the layout is right */
    assert_int_equal(window_count(r, &K1, WINDOW_SITE_ALL, 300 * SEC, T0), 1);
    static const uint64_t bad[] = {(uint64_t)UINT32_MAX + 1, (uint64_t)1 << 63,
                                   0x9999999999999999ULL, UINT64_MAX};
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        len = s_blob_with_head(blob, bad[i]);
        assert_int_equal(window_import(r, blob, len, T0), -1);
    }
    /* half the bucket counter's range from now: as far ahead as behind, never idle (found
     * by fuzz_window_import) */
    len = s_blob_with_head(blob, (uint64_t)(T0 / (10 * SEC)) + (1ULL << 31));
    assert_int_equal(window_import(r, blob, len, T0), -1);
    assert_int_equal(window_count(r, &K1, WINDOW_SITE_ALL, 300 * SEC, T0), 1); /* untouched */
    window_destroy(&r);
}

static void test_window_dirty_keys_are_taken_once(void **state)
{
    window_config_t cfg = {.bucket_ms = 10 * SEC, .span_ms = 60 * SEC, .track_dirty = 1};
    window_t *w = window_new(&cfg);
    window_add(w, &K1, 0, T0, NULL, 0);
    window_add(w, &K1, 0, T0, NULL, 0);
    window_add(w, &K2, 0, T0 + 30 * SEC, NULL, 0);
    window_key_t out[8];
    assert_int_equal(window_dirty_take(w, out, 8), 2);
    assert_int_equal(window_dirty_take(w, out, 8), 0);
    window_add(w, &K1, 0, T0 + 1, NULL, 0);
    assert_int_equal(window_dirty_take(w, out, 8), 1);
    assert_int_equal(out[0].fp, K1.fp);
    /* expiry makes the key dirty: the store deletes what export no longer finds */
    window_sweep(w, T0 + 65 * SEC, 1000);
    assert_int_equal(window_dirty_take(w, out, 8), 1);
    assert_int_equal(out[0].fp, K1.fp);
    size_t len;
    assert_null(window_export(w, &out[0], &len));
    window_destroy(&w);
}

/* After a failed write, every key is written again: each once, multi-site keys too. */
static void test_window_dirty_all_marks_every_key_once(void **state)
{
    window_config_t cfg = {.bucket_ms = 10 * SEC, .span_ms = 60 * SEC, .track_dirty = 1};
    window_t *w = window_new(&cfg);
    window_add(w, &K1, 0, T0, NULL, 0);
    window_add(w, &K1, 1, T0, NULL, 0);
    window_add(w, &K2, 0, T0, NULL, 0);
    window_key_t out[8];
    assert_int_equal(window_dirty_take(w, out, 8), 2);
    assert_int_equal(window_dirty_all(w), 2);
    assert_int_equal(window_dirty_all(w), 0); /* already marked */
    assert_int_equal(window_dirty_take(w, out, 8), 2);
    assert_int_equal(window_dirty_take(w, out, 8), 0);
    window_destroy(&w);
}

/* Resident memory of this process, in bytes (/proc/self/statm). */
static size_t s_rss(void)
{
    FILE *fp = fopen("/proc/self/statm", "r");
    assert_non_null(fp);
    unsigned long size = 0, resident = 0;
    assert_int_equal(fscanf(fp, "%lu %lu", &size, &resident), 2);
    fclose(fp);
    return (size_t)resident * (size_t)sysconf(_SC_PAGESIZE);
}

/* Marking every key looks only at the slots that hold one: the daemon's window is
 * presized for a million entries or more (two here), whose untouched pages cost no memory, and the
 * rewrite after a recreated store (or a failed write) faulted them all in, hundreds of
 * MB and a second on the event loop. */
static void test_window_dirty_all_leaves_empty_slots_untouched(void **state)
{
    (void)state;
    window_config_t cfg = {
        .bucket_ms = 10 * SEC, .span_ms = 60 * SEC, .track_dirty = 1, .initial_entries = 2000000};
    window_t *w = window_new(&cfg);
    window_add(w, &K1, 0, T0, NULL, 0);
    window_add(w, &K2, 0, T0, NULL, 0);
    window_key_t out[8];
    assert_int_equal(window_dirty_take(w, out, 8), 2);
    size_t before = s_rss();
    assert_int_equal(window_dirty_all(w), 2);
    size_t grown = s_rss() - before;
    if (grown > (size_t)32 << 20)
        fail_msg("window_dirty_all() made the process %zu MB larger", grown >> 20);
    assert_int_equal(window_dirty_take(w, out, 8), 2);
    window_destroy(&w);
}

/* A window made to populate takes its table's memory when it is made, as the daemon's does
 * (no page faults while counting); one that is not takes pages as keys arrive. Either
 * counts the same. */
static void test_window_populate_backs_the_table_when_made(void **state)
{
    (void)state;
    const size_t want = (size_t)200000 * 48; /* slots of over 40 header bytes + 6 counters */
    for (int populate = 0; populate <= 1; populate++) {
        window_config_t cfg = {.bucket_ms = 10 * SEC,
                               .span_ms = 60 * SEC,
                               .initial_entries = 200000,
                               .populate = populate};
        size_t before = s_rss();
        window_t *w = window_new(&cfg);
        size_t grown = s_rss() - before;
        if (populate && grown < want)
            fail_msg("populate: the process grew %zu kB, the table is over %zu kB", grown >> 10,
                     want >> 10);
        if (!populate && grown > want / 4)
            fail_msg("no populate: the process grew %zu kB for an empty table", grown >> 10);
        assert_int_equal(window_add(w, &K1, 0, T0, NULL, 0), 0);
        assert_int_equal(window_count(w, &K1, WINDOW_SITE_ALL, 60 * SEC, T0), 1);
        window_destroy(&w);
    }
}

typedef struct {
    window_t *w;        /* the window exported */
    window_key_t k[40]; /* keys handed over, in order */
    int gone[40];       /* 1: handed over as expired (blob NULL) */
    size_t n;           /* handed over */
} exported_t;

/* window_export_fn: each blob must be byte for byte what window_export() gives. */
static void s_check_export(const window_key_t *key, const uint8_t *blob, size_t len, void *arg)
{
    exported_t *x = arg;
    size_t want_len = 0;
    uint8_t *want = window_export(x->w, key, &want_len);
    if (blob == NULL) {
        assert_null(want);
    } else {
        assert_non_null(want);
        assert_int_equal(len, want_len);
        assert_memory_equal(blob, want, len);
    }
    xfree(want);
    assert_true(x->n < 40);
    x->k[x->n] = *key;
    x->gone[x->n++] = blob == NULL;
}

/* Adds n keys (first's fingerprint + i), key i seen by i % mod + 1 sites "site0", ... one
 * second apart, each event with text. */
static void s_add_keys_at_sites(window_t *w, window_key_t first, uint64_t n, unsigned mod,
                                const char *text)
{
    for (uint64_t i = 0; i < n; i++) {
        window_key_t k = first;
        k.fp += i;
        for (unsigned s = 0; s < i % mod + 1; s++) {
            char name[16];
            snprintf(name, sizeof(name), "site%u", s);
            window_add(w, &k, (unsigned)window_site_intern(w, name), T0 + s * SEC, text,
                       strlen(text));
        }
    }
}

static void test_window_dirty_export_walks_each_key_once_oldest_first(void **state)
{
    window_config_t cfg = {.bucket_ms = 10 * SEC, .span_ms = 60 * SEC, .track_dirty = 1};
    window_t *w = window_new(&cfg);
    exported_t x = {.w = w};
    /* 30 keys, key i seen by i % 20 + 1 sites (past WINDOW_SITES_MAX: the "other" series) */
    s_add_keys_at_sites(w, (window_key_t){.scope = 1, .tally = 0, .fp = 0x100}, 30, 20, "t");
    assert_int_equal(window_dirty_pending(w), 30);
    assert_int_equal(window_dirty_export(w, 12, s_check_export, &x), 12);
    assert_int_equal(window_dirty_export(w, 100, s_check_export, &x), 18);
    assert_int_equal(window_dirty_export(w, 100, s_check_export, &x), 0);
    assert_int_equal(x.n, 30);
    for (size_t i = 0; i < 30; i++) {
        assert_int_equal(x.k[i].fp, 0x100 + i); /* oldest change first */
        assert_false(x.gone[i]);
    }
    /* changed again after being taken: queued again, behind what was queued first */
    window_key_t k5 = {.scope = 1, .tally = 0, .fp = 0x105};
    window_add(w, &K2, 0, T0 + 2 * SEC, NULL, 0);
    window_add(w, &k5, 0, T0 + 2 * SEC, NULL, 0);
    window_add(w, &K2, 0, T0 + 2 * SEC, NULL, 0); /* still queued: not twice */
    x.n = 0;
    assert_int_equal(window_dirty_export(w, 100, s_check_export, &x), 2);
    assert_int_equal(x.k[0].fp, K2.fp);
    assert_int_equal(x.k[1].fp, k5.fp);
    /* expired keys are handed over without a blob */
    window_sweep(w, T0 + 200 * SEC, 1000);
    x.n = 0;
    assert_int_equal(window_dirty_export(w, 100, s_check_export, &x), 31);
    for (size_t i = 0; i < x.n; i++)
        assert_true(x.gone[i]);
    window_destroy(&w);
}

/* A copy is the window's keys as they were when copied, encoded from the copy alone: the
 * blobs are window_export()'s at that moment, though the window changed (new sites, a new
 * count, expiry) and was even destroyed before the encoding; a copy moved on to another
 * window takes that one's site names. */
typedef struct {
    uint8_t *blob[40]; /* window_export() of the keys, when they were copied */
    size_t len[40];
    size_t n;    /* blobs handed to s_check_copy */
    size_t keys; /* how many were expected */
} copied_t;

static void s_check_copy(const window_key_t *key, const uint8_t *blob, size_t len, void *arg)
{
    copied_t *x = arg;
    (void)key;
    assert_true(x->n < x->keys);
    if (x->blob[x->n] == NULL) {
        assert_null(blob);
    } else {
        assert_non_null(blob);
        assert_int_equal(len, x->len[x->n]);
        assert_memory_equal(blob, x->blob[x->n], len);
    }
    xfree(x->blob[x->n]);
    x->blob[x->n++] = NULL;
}

static void s_count_copied(const window_key_t *key, const uint8_t *blob, size_t len, void *arg)
{
    (void)key;
    (void)blob;
    (void)len;
    ++*(size_t *)arg;
}

static void test_window_copy_encodes_the_keys_as_copied(void **state)
{
    window_config_t cfg = {.bucket_ms = 10 * SEC, .span_ms = 60 * SEC, .track_dirty = 1};
    window_t *w = window_new(&cfg);
    window_copy_t *c = window_copy_new();
    copied_t x = {0};
    /* keys 0..19 seen by i % 19 + 1 sites (past WINDOW_SITES_MAX: "other"), with texts */
    s_add_keys_at_sites(w, (window_key_t){.scope = 2, .tally = 1, .fp = 0x200}, 20, 19, "text");
    for (uint64_t i = 0; i < 20; i++) {
        window_key_t k = {.scope = 2, .tally = 1, .fp = 0x200 + i};
        x.blob[i] = window_export(w, &k, &x.len[i]);
    }
    x.keys = 20;
    assert_int_equal(window_dirty_copy(w, 7, c), 7); /* in two steps, appended */
    assert_int_equal(window_dirty_copy(w, 100, c), 13);
    assert_int_equal(window_copy_keys(c), 20);
    assert_int_equal(window_dirty_pending(w), 0);
    /* the window changes after the copy: a new site, a new count for a copied key */
    window_key_t k0 = {.scope = 2, .tally = 1, .fp = 0x200};
    window_add(w, &k0, (unsigned)window_site_intern(w, "late"), T0 + 30 * SEC, NULL, 0);
    window_destroy(&w);
    window_copy_encode(c, s_check_copy, &x);
    assert_int_equal(x.n, 20);
    size_t again = 0;
    window_copy_encode(c, s_count_copied, &again); /* encoding does not clear it */
    assert_int_equal(again, 20);
    window_copy_clear(c);
    assert_int_equal(window_copy_keys(c), 0);

    /* another window, other site names; then an expired key, encoded as gone */
    w = window_new(&cfg);
    window_add(w, &K1, (unsigned)window_site_intern(w, "zeta"), T0, "one", 3);
    window_add(w, &K1, (unsigned)window_site_intern(w, "eta"), T0 + SEC, NULL, 0);
    x = (copied_t){.keys = 2};
    x.blob[0] = window_export(w, &K1, &x.len[0]);
    assert_int_equal(window_dirty_copy(w, 10, c), 1);
    window_sweep(w, T0 + 200 * SEC, 1000);
    assert_int_equal(window_dirty_copy(w, 10, c), 1);
    window_destroy(&w);
    window_copy_encode(c, s_check_copy, &x);
    assert_int_equal(x.n, 2);
    window_copy_destroy(&c);
    window_copy_destroy(&c);
}

static void test_window_sweep_pruning_a_site_marks_the_key_changed(void **state)
{
    window_config_t cfg = {.bucket_ms = 10 * SEC, .span_ms = 60 * SEC, .track_dirty = 1};
    window_t *w = window_new(&cfg);
    window_add(w, &K1, (unsigned)window_site_intern(w, "a"), T0, NULL, 0);
    window_add(w, &K1, (unsigned)window_site_intern(w, "b"), T0 + 50 * SEC, NULL, 0);
    window_key_t out[8];
    assert_int_equal(window_dirty_take(w, out, 8), 1);
    /* site a's series has left the window, b's has not: the sweep drops a */
    window_sweep(w, T0 + 75 * SEC, 1000);
    assert_int_equal(window_dirty_pending(w), 1);
    size_t len;
    uint8_t *blob = window_export(w, &K1, &len);
    window_t *r = window_new(&cfg);
    assert_int_equal(window_import(r, blob, len, T0 + 75 * SEC), 0);
    window_stats_t st;
    window_stats(r, &K1, WINDOW_SITE_ALL, 60 * SEC, T0 + 75 * SEC, &st);
    assert_int_equal(st.sites, 1);
    xfree(blob);
    window_destroy(&r);
    window_destroy(&w);
}

static int s_count_key(const window_key_t *k, void *arg)
{
    (*(int *)arg)++;
    return 0;
}

static void test_window_foreach_visits_keys_not_series(void **state)
{
    window_t *w = s_new(10 * SEC, 60 * SEC);
    window_add(w, &K1, 0, T0, NULL, 0);
    window_add(w, &K1, 1, T0, NULL, 0);
    window_add(w, &K2, 0, T0, NULL, 0);
    int count = 0;
    int rc = window_foreach(w, s_count_key, &count);
    assert_int_equal(rc, 0);
    assert_int_equal(count, 2);
    window_destroy(&w);
}

/* A small deterministic generator for the randomized tests. */
static uint64_t s_rand(uint64_t *x)
{
    *x ^= *x << 13;
    *x ^= *x >> 7;
    *x ^= *x << 17;
    return *x;
}

/* window_add_count()'s ring totals are kept as buckets change, not summed per event: the
 * key's must equal a full-span count at its newest bucket, and the site's bound the
 * site's count, through every path (new key,
 * second site, out-of-order events, buckets sliding out, a gap past the span, import). */
static void test_window_ring_total_matches_the_buckets(void **state)
{
    enum { NKEYS = 40, NEVENTS = 20000 };
    window_t *w = s_new(10 * SEC, 300 * SEC);
    window_t *r = s_new(10 * SEC, 300 * SEC);
    unsigned sites[5];
    for (int i = 0; i < 5; i++) {
        char name[8];
        snprintf(name, sizeof(name), "s%d", i);
        sites[i] = (unsigned)window_site_intern(w, name);
        (void)window_site_intern(r, name);
    }
    int64_t newest[NKEYS] = {0};
    static window_loc_t last[NKEYS][5]; /* a located key's loc, by site */
    memset(last, 0, sizeof(last));
    uint64_t x = 88172645463325252ULL;
    int64_t now = T0;
    for (int n = 0; n < NEVENTS; n++) {
        uint64_t v = s_rand(&x);
        /* time mostly creeps forward; now and then it jumps past the span */
        now += (int64_t)(v % 400);
        if (v % 997 == 0)
            now += 400 * SEC;
        int k = (int)((v >> 16) % NKEYS);
        int64_t t = now - (int64_t)((v >> 32) % (200 * SEC)); /* up to 200 s late */
        window_key_t key = {.scope = 1, .tally = 0, .fp = 0x100 + (uint64_t)k};
        window_rings_t ring = {0};
        unsigned site = sites[(v >> 40) % 5];
        /* located ahead as a batch does: for this site, for another site or another key
         * (both ignored), or not at all; or located and prefetched at the key's last event
         * at this site, so its slot hints may be stale (entries move when others expire) */
        window_loc_t loc;
        window_key_t other = {.scope = 1, .tally = 0, .fp = 0x100 + (uint64_t)(k + 1) % NKEYS};
        unsigned how = (unsigned)(v >> 50) % 5;
        window_locate(w, how == 3 ? &other : &key, how == 2 ? sites[0] : site, &loc);
        window_prefetch(w, &loc);
        window_loc_t *old = &last[k][(v >> 40) % 5];
        if (how == 4 && old->key.scope != 0)
            loc = *old;
        *old = loc;
        if (window_add_count(w, &key, site, how ? &loc : NULL, t, NULL, 0, &ring) < 0)
            continue;
        /* the key's newest event (a key idle for a span starts over with this one) */
        if (t > newest[k] || t >= newest[k] + 300 * SEC || newest[k] < t - 300 * SEC)
            newest[k] = t;
        uint32_t want = window_count(w, &key, WINDOW_SITE_ALL, 300 * SEC, newest[k]);
        if (ring.total != want)
            fail_msg("event %d key %d: ring %u, buckets %u", n, k, ring.total, want);
        /* the site's ring bounds its count, and is its count when this event is the newest */
        uint32_t at_site = window_count(w, &key, site, 300 * SEC, newest[k]);
        if (ring.site < at_site || (t == newest[k] && ring.site != at_site))
            fail_msg("event %d key %d: site ring %u, site buckets %u", n, k, ring.site, at_site);
        if (n % 1000 == 999) {
            /* a restored key goes on from the right total */
            size_t len = 0;
            uint8_t *blob = window_export(w, &key, &len);
            assert_non_null(blob);
            assert_int_equal(window_import(r, blob, len, newest[k]), 0);
            xfree(blob);
            uint32_t before = window_count(r, &key, WINDOW_SITE_ALL, 300 * SEC, newest[k]);
            assert_int_equal(window_add_count(r, &key, sites[0], NULL, newest[k], NULL, 0, &ring),
                             0);
            assert_int_equal(ring.total, before + 1);
        }
    }
    window_destroy(&w);
    window_destroy(&r);
}

/* A slot hint is checked, not trusted: one that points at another key's entry (as after
 * the table grew or entries moved) counts nothing there. */
static void test_window_slot_hints_are_checked(void **state)
{
    window_config_t cfg = {.bucket_ms = 10 * SEC, .span_ms = 300 * SEC, .initial_entries = 8};
    window_t *w = window_new(&cfg);
    unsigned s0 = (unsigned)window_site_intern(w, "s0");
    unsigned s1 = (unsigned)window_site_intern(w, "s1");
    assert_int_equal(window_add(w, &K1, s0, T0, NULL, 0), 0);
    assert_int_equal(window_add(w, &K2, s0, T0, NULL, 0), 0);
    assert_int_equal(window_add(w, &K2, s1, T0, NULL, 0), 0);
    window_loc_t l1, l2;
    window_locate(w, &K1, s1, &l1);
    window_prefetch(w, &l1);
    window_locate(w, &K2, s1, &l2);
    window_prefetch(w, &l2);
    assert_int_not_equal(l1.total_at, UINT32_MAX);
    assert_int_equal(l1.series_at, UINT32_MAX); /* K1 has no series at s1 yet */
    assert_int_not_equal(l2.series_at, UINT32_MAX);
    /* the ring read early through a hint, and nothing through one that does not hold */
    assert_int_equal(window_loc_ring(w, &l1), 1);
    assert_int_equal(window_loc_ring(w, &l2), 2);
    /* K1's loc with K2's slots */
    window_loc_t forged = l1;
    forged.total_at = l2.total_at;
    forged.series_at = l2.series_at;
    assert_int_equal(window_loc_ring(w, &forged), 0);
    assert_int_equal(window_add_count(w, &K1, s1, &forged, T0, NULL, 0, NULL), 0);
    /* hints from before the table grew past many times its size */
    for (uint64_t i = 0; i < 1000; i++) {
        window_key_t k = {.scope = 1, .tally = 0, .fp = 0x9000 + i};
        assert_int_equal(window_add(w, &k, s0, T0, NULL, 0), 0);
    }
    assert_int_equal(window_add_count(w, &K2, s1, &l2, T0, NULL, 0, NULL), 0);
    assert_int_equal(window_count(w, &K1, WINDOW_SITE_ALL, 60 * SEC, T0), 2);
    assert_int_equal(window_count(w, &K1, s1, 60 * SEC, T0), 1);
    assert_int_equal(window_count(w, &K2, WINDOW_SITE_ALL, 60 * SEC, T0), 3);
    assert_int_equal(window_count(w, &K2, s1, 60 * SEC, T0), 2);
    assert_int_equal(window_count(w, &K2, s0, 60 * SEC, T0), 1);
    window_destroy(&w);
}

/* What test_window_dirty_export_in_passes_matches_export's callback checks against. */
typedef struct {
    window_t *w;      /* the window exported */
    uint64_t next_fp; /* the fingerprint expected next (oldest change first) */
    int bad;          /* a blob differed from window_export() or came out of order */
} s_export_ck_t;

static void s_export_check(const window_key_t *key, const uint8_t *blob, size_t len, void *arg)
{
    s_export_ck_t *ck = arg;
    size_t want_len = 0;
    uint8_t *want = window_export(ck->w, key, &want_len);
    if (key->fp != ck->next_fp++ || want == NULL || blob == NULL || len != want_len ||
        memcmp(blob, want, len) != 0)
        ck->bad++;
    xfree(want);
}

/* The flush exports in passes of a few hundred keys: a thousand keys of one to three
 * sites come out once each, oldest change first, each blob what window_export() gives. */
static void test_window_dirty_export_in_passes_matches_export(void **state)
{
    enum { NKEYS = 1000 };
    window_config_t cfg = {.bucket_ms = 10 * SEC, .span_ms = 300 * SEC, .track_dirty = 1};
    window_t *w = window_new(&cfg);
    unsigned a = (unsigned)window_site_intern(w, "a");
    unsigned b = (unsigned)window_site_intern(w, "b");
    unsigned c = (unsigned)window_site_intern(w, "c");
    for (int i = 0; i < NKEYS; i++) {
        window_key_t key = {.scope = 1, .tally = 0, .fp = 0x5000 + (uint64_t)i};
        assert_int_equal(window_add(w, &key, a, T0 + i, "t", 1), 0);
        if (i % 3)
            assert_int_equal(window_add(w, &key, b, T0 + i, NULL, 0), 0);
        if (i % 5 == 0)
            assert_int_equal(window_add(w, &key, c, T0 + 20 * SEC, NULL, 0), 0);
    }
    s_export_ck_t ck = {.w = w, .next_fp = 0x5000};
    size_t got = 0, n;
    while ((n = window_dirty_export(w, 700, s_export_check, &ck)) > 0)
        got += n;
    assert_int_equal(ck.bad, 0);
    assert_int_equal(got, NKEYS);
    assert_int_equal(window_dirty_pending(w), 0);
    window_destroy(&w);
}

static void test_window_destroy_is_safe_twice(void **state)
{
    window_t *w = window_new(NULL);
    assert_int_equal(window_bucket_ms(w), 10 * SEC);
    assert_int_equal(window_span_ms(w), 300 * SEC);
    window_destroy(&w);
    assert_null(w);
    window_destroy(&w);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_window_slides_at_bucket_edges),
        cmocka_unit_test(test_window_rules_of_different_length_share_buckets),
        cmocka_unit_test(test_window_ring_reuses_buckets_after_gap),
        cmocka_unit_test(test_window_out_of_order_counts_and_too_old_refused),
        cmocka_unit_test(test_window_key_from_before_the_clock_stepped_back_starts_over),
        cmocka_unit_test(test_window_distinct_sites_and_shares_largest_first),
        cmocka_unit_test(test_window_single_site_key_is_one_entry),
        cmocka_unit_test(test_window_sites_slide_out_with_their_events),
        cmocka_unit_test(test_window_sites_beyond_cap_share_other),
        cmocka_unit_test(test_window_a_busy_17th_site_is_counted_as_itself),
        cmocka_unit_test(test_window_import_mapped_keeps_or_drops_a_tally),
        cmocka_unit_test(test_window_import_mapped_reports_an_idle_key),
        cmocka_unit_test(test_window_idle_site_frees_its_place),
        cmocka_unit_test(test_window_text_kept_after_min_events_and_capped),
        cmocka_unit_test(test_window_sweep_expires_idle_keys_only),
        cmocka_unit_test(test_window_sweep_respects_budget),
        cmocka_unit_test(test_window_idle_key_starts_over_on_next_event),
        cmocka_unit_test(test_window_grows_and_keeps_every_key),
        cmocka_unit_test(test_window_scope_and_tally_are_part_of_the_key),
        cmocka_unit_test(test_window_max_entries_refuses_new_keys),
        cmocka_unit_test(test_window_site_table),
        cmocka_unit_test(test_window_top_lists_busiest_keys),
        cmocka_unit_test(test_window_export_import_round_trip),
        cmocka_unit_test(test_window_dirty_export_walks_each_key_once_oldest_first),
        cmocka_unit_test(test_window_copy_encodes_the_keys_as_copied),
        cmocka_unit_test(test_window_sweep_pruning_a_site_marks_the_key_changed),
        cmocka_unit_test(test_window_export_import_near_time_zero),
        cmocka_unit_test(test_window_slot_hints_are_checked),
        cmocka_unit_test(test_window_import_rejects_bad_blobs),
        cmocka_unit_test(test_window_import_refuses_a_key_from_the_future),
        cmocka_unit_test(test_window_import_refuses_a_huge_head),
        cmocka_unit_test(test_window_dirty_keys_are_taken_once),
        cmocka_unit_test(test_window_dirty_all_marks_every_key_once),
        cmocka_unit_test(test_window_dirty_all_leaves_empty_slots_untouched),
        cmocka_unit_test(test_window_populate_backs_the_table_when_made),
        cmocka_unit_test(test_window_ring_total_matches_the_buckets),
        cmocka_unit_test(test_window_dirty_export_in_passes_matches_export),
        cmocka_unit_test(test_window_foreach_visits_keys_not_series),
        cmocka_unit_test(test_window_destroy_is_safe_twice),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
