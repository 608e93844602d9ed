/* test_dedup - replays, out-of-order delivery, window slides, sensor restarts, persistence,
 * and late seqs told apart: duplicate (seen) or behind (given up unseen). */
#include <inttypes.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "dedup.h"
#include "xalloc.h"

static void test_dedup_in_order_then_replay_is_duplicate(void **state)
{
    dedup_t *d = dedup_new(0, 0);
    for (uint64_t s = 1; s <= 1000; s++)
        assert_int_equal(dedup_check(d, "a", "s1", s), DEDUP_NEW);
    for (uint64_t s = 1; s <= 1000; s++)
        assert_int_equal(dedup_check(d, "a", "s1", s), DEDUP_DUPLICATE);
    assert_int_equal(dedup_counters(d)->duplicates, 1000);
    assert_int_equal(dedup_check(d, "a", "s1", 1001), DEDUP_NEW);
    dedup_destroy(&d);
    assert_null(d);
    dedup_destroy(&d);
}

static void test_dedup_seq_zero_counts_once(void **state)
{
    dedup_t *d = dedup_new(0, 0);
    assert_int_equal(dedup_check(d, "a", "s1", 0), DEDUP_NEW);
    assert_int_equal(dedup_check(d, "a", "s1", 0), DEDUP_DUPLICATE);
    assert_int_equal(dedup_check(d, "a", "s1", 1), DEDUP_NEW);
    assert_int_equal(dedup_base(d, "a", "s1"), 1);
    dedup_destroy(&d);
}

static void test_dedup_out_of_order_within_window(void **state)
{
    dedup_t *d = dedup_new(0, 0);
    uint64_t seqs[2000];
    for (size_t i = 0; i < 2000; i++)
        seqs[i] = i;
    srand(7);
    for (size_t i = 1999; i > 0; i--) {
        size_t j = (size_t)rand() % (i + 1);
        uint64_t t = seqs[i];
        seqs[i] = seqs[j];
        seqs[j] = t;
    }
    for (size_t i = 0; i < 2000; i++)
        assert_int_equal(dedup_check(d, "a", "s1", seqs[i]), DEDUP_NEW);
    for (size_t i = 0; i < 2000; i++)
        assert_int_equal(dedup_check(d, "a", "s1", seqs[i]), DEDUP_DUPLICATE);
    assert_int_equal(dedup_base(d, "a", "s1"), 1999);
    assert_int_equal(dedup_counters(d)->skipped, 0);
    dedup_destroy(&d);
}

static void test_dedup_spool_replayed_after_live_events_counts(void **state)
{
    dedup_t *d = dedup_new(0, 0);
    /* the aggregator knew this sensor up to 5000, then an outage: 5001..5999 spooled */
    for (uint64_t s = 1; s <= 5000; s++)
        dedup_check(d, "a", "s1", s);
    /* live events after reconnect arrive first, the spool interleaves */
    for (uint64_t s = 6000; s < 6100; s++)
        assert_int_equal(dedup_check(d, "a", "s1", s), DEDUP_NEW);
    for (uint64_t s = 5001; s < 6000; s++)
        assert_int_equal(dedup_check(d, "a", "s1", s), DEDUP_NEW);
    /* the spool is replayed again (the sensor did not hear the ack): nothing counts twice */
    for (uint64_t s = 5001; s < 6100; s++)
        assert_int_equal(dedup_check(d, "a", "s1", s), DEDUP_DUPLICATE);
    dedup_destroy(&d);
}

static void test_dedup_first_contact_accepts_older_spool(void **state)
{
    dedup_t *d = dedup_new(0, 0);
    /* a fresh aggregator hears a live event first, then the sensor's spool */
    assert_int_equal(dedup_check(d, "a", "s1", 100000), DEDUP_NEW);
    for (uint64_t s = 99000; s < 100000; s++)
        assert_int_equal(dedup_check(d, "a", "s1", s), DEDUP_NEW);
    assert_int_equal(dedup_check(d, "a", "s1", 99500), DEDUP_DUPLICATE);
    dedup_destroy(&d);
}

static void test_dedup_jump_beyond_window_gives_up_gap(void **state)
{
    dedup_t *d = dedup_new(0, 0);
    assert_int_equal(dedup_check(d, "a", "s1", 1), DEDUP_NEW);
    assert_int_equal(dedup_check(d, "a", "s1", 2), DEDUP_NEW);
    uint64_t far = 3 * DEDUP_WINDOW;
    assert_int_equal(dedup_check(d, "a", "s1", far), DEDUP_NEW);
    /* seqs 3 .. far - DEDUP_WINDOW were given up */
    assert_int_equal(dedup_counters(d)->skipped, far - DEDUP_WINDOW - 2);
    assert_int_equal(dedup_check(d, "a", "s1", 3), DEDUP_BEHIND);
    assert_int_equal(dedup_check(d, "a", "s1", 1), DEDUP_DUPLICATE);
    assert_int_equal(dedup_counters(d)->behind, 1);
    assert_int_equal(dedup_counters(d)->duplicates, 1);
    /* but the window right below the new seq is still open */
    assert_int_equal(dedup_check(d, "a", "s1", far - 10), DEDUP_NEW);
    dedup_destroy(&d);
}

/* Live events 0..999, an outage (1000..1999 spooled, not sent), then live 2000..LIVE_END
 * and LIVE_END + 5: the window slides past the spool, which was never seen. */
#define LIVE_END (2500 + DEDUP_WINDOW)

static dedup_t *s_outage(void)
{
    dedup_t *d = dedup_new(0, 0);
    for (uint64_t s = 0; s < 1000; s++)
        assert_int_equal(dedup_check(d, "a", "s1", s), DEDUP_NEW);
    for (uint64_t s = 2000; s <= LIVE_END; s++)
        assert_int_equal(dedup_check(d, "a", "s1", s), DEDUP_NEW);
    assert_int_equal(dedup_check(d, "a", "s1", LIVE_END + 5), DEDUP_NEW); /* ahead of 4 */
    return d;
}

/* Late seqs after s_outage(): what each one is. */
static const struct {
    uint64_t seq;          /* arrives late */
    dedup_result_t expect; /* outcome */
} s_late[] = {
    {0, DEDUP_DUPLICATE},            /* counted before the outage: a replay */
    {999, DEDUP_DUPLICATE},          /* the last one before it */
    {1000, DEDUP_BEHIND},            /* the spool, replayed too late: never counted */
    {1500, DEDUP_BEHIND},            /* ... */
    {1999, DEDUP_BEHIND},            /* ... its last event */
    {1500, DEDUP_BEHIND},            /* still not counted, still behind */
    {2000, DEDUP_DUPLICATE},         /* live, counted, slid out seen */
    {2400, DEDUP_DUPLICATE},         /* ... */
    {LIVE_END + 5, DEDUP_DUPLICATE}, /* above base, in the window, seen */
    {LIVE_END + 1, DEDUP_NEW},       /* the next live one */
    {LIVE_END + 1, DEDUP_DUPLICATE}, /* ... sent twice */
};

static void s_check_late(dedup_t *d)
{
    uint64_t dup0 = dedup_counters(d)->duplicates, behind0 = dedup_counters(d)->behind;
    uint64_t dups = 0, behind = 0;
    for (size_t i = 0; i < sizeof(s_late) / sizeof(s_late[0]); i++) {
        dedup_result_t got = dedup_check(d, "a", "s1", s_late[i].seq);
        if (got != s_late[i].expect)
            fail_msg("case %zu: seq %llu gave %d, want %d", i, (unsigned long long)s_late[i].seq,
                     (int)got, (int)s_late[i].expect);
        dups += got == DEDUP_DUPLICATE;
        behind += got == DEDUP_BEHIND;
    }
    assert_int_equal(dedup_counters(d)->duplicates - dup0, dups);
    assert_int_equal(dedup_counters(d)->behind - behind0, behind);
}

static void test_dedup_late_seqs_are_duplicate_or_behind(void **state)
{
    dedup_t *d = s_outage();
    assert_int_equal(dedup_counters(d)->skipped, 1000);
    assert_int_equal(dedup_base(d, "a", "s1"), LIVE_END); /* past the gap, all seen */
    s_check_late(d);
    assert_int_equal(dedup_counters(d)->behind, 4);
    dedup_destroy(&d);
}

static void test_dedup_seqs_below_first_half_window_are_behind(void **state)
{
    dedup_t *d = dedup_new(0, 0);
    /* a fresh aggregator's first event from this sensor is 100000: what came long before
     * it may or may not have been counted (by an aggregator that lost its state) */
    assert_int_equal(dedup_check(d, "a", "s1", 100000), DEDUP_NEW);
    assert_int_equal(dedup_check(d, "a", "s1", 100000 - DEDUP_WINDOW / 2), DEDUP_NEW);
    assert_int_equal(dedup_check(d, "a", "s1", 100000 - DEDUP_WINDOW / 2 - 1), DEDUP_BEHIND);
    assert_int_equal(dedup_check(d, "a", "s1", 0), DEDUP_BEHIND);
    assert_int_equal(dedup_counters(d)->behind, 2);
    assert_int_equal(dedup_counters(d)->duplicates, 0);
    dedup_destroy(&d);
}

static void test_dedup_too_many_gaps_merge_conservatively(void **state)
{
    /* DEDUP_GAPS + 1 single seqs never sent, all slid out; the two nearest (800, 805) share
     * one range, so the seen seqs between them turn "behind"; every other answer is exact */
    uint64_t holes[DEDUP_GAPS + 1];
    for (size_t i = 0; i < DEDUP_GAPS; i++)
        holes[i] = 100 * (i + 1);
    holes[DEDUP_GAPS] = holes[DEDUP_GAPS - 1] + 5;
    dedup_t *d = dedup_new(0, 0);
    size_t h = 0;
    for (uint64_t s = 0; s < 2000 + DEDUP_WINDOW; s++) {
        if (h <= DEDUP_GAPS && s == holes[h]) {
            h++;
            continue;
        }
        assert_int_equal(dedup_check(d, "a", "s1", s), DEDUP_NEW);
    }
    assert_int_equal(dedup_counters(d)->skipped, DEDUP_GAPS + 1);
    for (size_t i = 0; i <= DEDUP_GAPS; i++) {
        assert_int_equal(dedup_check(d, "a", "s1", holes[i]), DEDUP_BEHIND);
        assert_int_equal(dedup_check(d, "a", "s1", holes[i] - 1),
                         i == DEDUP_GAPS ? DEDUP_BEHIND : DEDUP_DUPLICATE);
        assert_int_equal(dedup_check(d, "a", "s1", holes[i] + 1),
                         i == DEDUP_GAPS - 1 ? DEDUP_BEHIND : DEDUP_DUPLICATE);
    }
    dedup_destroy(&d);
}

static void test_dedup_sensor_restart_numbering(void **state)
{
    dedup_t *d = dedup_new(0, 1000);
    for (uint64_t s = 5000; s < 7000; s++)
        dedup_check(d, "a", "s1", s);
    /* 500 below base: a late duplicate, not a restart */
    assert_int_equal(dedup_check(d, "a", "s1", 6499), DEDUP_DUPLICATE);
    /* far below: the sensor lost its state and counts from 1 again */
    assert_int_equal(dedup_check(d, "a", "s1", 1), DEDUP_NEW);
    assert_int_equal(dedup_counters(d)->resets, 1);
    assert_int_equal(dedup_check(d, "a", "s1", 2), DEDUP_NEW);
    assert_int_equal(dedup_check(d, "a", "s1", 1), DEDUP_DUPLICATE);
    dedup_destroy(&d);
}

static void test_dedup_sensors_are_independent(void **state)
{
    dedup_t *d = dedup_new(0, 0);
    assert_int_equal(dedup_check(d, "a", "s1", 7), DEDUP_NEW);
    assert_int_equal(dedup_check(d, "a", "s2", 7), DEDUP_NEW);
    assert_int_equal(dedup_check(d, "b", "s1", 7), DEDUP_NEW);
    assert_int_equal(dedup_check(d, "as", "1", 7), DEDUP_NEW); /* no name-joining aliasing */
    assert_int_equal(dedup_check(d, "a", "s1", 7), DEDUP_DUPLICATE);
    assert_int_equal(dedup_sensors(d), 4);
    assert_int_equal(dedup_forget(d, "a", "s2"), 0);
    assert_int_equal(dedup_forget(d, "a", "s2"), -1);
    assert_int_equal(dedup_sensors(d), 3);
    dedup_destroy(&d);
}

static void test_dedup_full_table_fails_open(void **state)
{
    dedup_t *d = dedup_new(2, 0);
    dedup_check(d, "a", "s1", 1);
    dedup_check(d, "a", "s2", 1);
    assert_int_equal(dedup_check(d, "a", "s3", 1), DEDUP_UNTRACKED);
    assert_int_equal(dedup_check(d, "a", "s3", 1), DEDUP_UNTRACKED);
    assert_int_equal(dedup_counters(d)->untracked, 2);
    char longname[100];
    memset(longname, 'x', sizeof(longname) - 1);
    longname[sizeof(longname) - 1] = 0;
    assert_int_equal(dedup_check(d, "a", longname, 1), DEDUP_UNTRACKED);
    dedup_destroy(&d);
}

/* The default table holds DEDUP_SENSORS_DEFAULT sensors (the daemon's bound on sensors,
 * twice the 8192 it once held): with all of them seen, the last one's replay is still a
 * duplicate; only one more sensor is untracked, and counted as such. */
static void test_dedup_default_tracks_the_daemons_sensors(void **state)
{
    dedup_t *d = dedup_new(0, 0);
    assert_int_equal(dedup_max_sensors(d), DEDUP_SENSORS_DEFAULT);
    char name[16];
    for (unsigned i = 0; i < DEDUP_SENSORS_DEFAULT; i++) {
        snprintf(name, sizeof(name), "s%u", i);
        assert_int_equal(dedup_check(d, "a", name, 1), DEDUP_NEW);
    }
    assert_int_equal(dedup_check(d, "a", name, 1), DEDUP_DUPLICATE);
    assert_int_equal(dedup_counters(d)->untracked, 0);
    assert_int_equal(dedup_check(d, "a", "one more", 1), DEDUP_UNTRACKED);
    assert_int_equal(dedup_counters(d)->untracked, 1);
    /* forgetting one makes room */
    assert_int_equal(dedup_forget(d, "a", "s0"), 0);
    assert_int_equal(dedup_check(d, "a", "one more", 1), DEDUP_NEW);
    assert_int_equal(dedup_check(d, "a", "one more", 1), DEDUP_DUPLICATE);
    dedup_destroy(&d);
}

/* A sensor looked up once (dedup_sensor) and checked many times (dedup_check_at) decides
 * exactly as dedup_check() by names: in order, late, replayed, jumping, restarting, for
 * three sensors taking turns, and a full table gives a NULL handle: untracked. */
static void test_dedup_check_at_is_check_by_name(void **state)
{
    static const char *const sensors[3] = {"s1", "s2", "s3"};
    dedup_t *byname = dedup_new(0, 0), *byhandle = dedup_new(0, 0);
    dedup_sensor_t *h[3];
    for (int i = 0; i < 3; i++)
        h[i] = dedup_sensor(byhandle, "a", sensors[i]);
    uint64_t x = 88172645463325252ULL, top[3] = {100, 100, 100};
    for (int n = 0; n < 200000; n++) {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        int s = (int)(x % 3);
        uint64_t v = x >> 8, q;
        if (v % 1000 == 0)
            q = top[s] + 40000; /* a jump past the window */
        else if (v % 5000 == 1)
            q = 5; /* a restart */
        else if (v % 4 == 0)
            q = top[s] > 30000 ? top[s] - (v >> 4) % 30000 : 1; /* late or replayed */
        else
            q = top[s] + 1;
        if (q > top[s] || v % 5000 == 1)
            top[s] = q;
        dedup_result_t want = dedup_check(byname, "a", sensors[s], q);
        dedup_result_t got = dedup_check_at(byhandle, h[s], q);
        if (got != want)
            fail_msg("step %d sensor %s seq %" PRIu64 ": %d, by name %d", n, sensors[s], q, got,
                     want);
    }
    assert_memory_equal(dedup_counters(byname), dedup_counters(byhandle), sizeof(dedup_counters_t));
    assert_true(dedup_counters(byname)->duplicates > 0);
    assert_true(dedup_counters(byname)->behind > 0);
    dedup_t *full = dedup_new(1, 0);
    assert_non_null(dedup_sensor(full, "a", "s1"));
    assert_null(dedup_sensor(full, "a", "s2"));
    assert_int_equal(dedup_check_at(full, NULL, 1), DEDUP_UNTRACKED);
    assert_int_equal(dedup_counters(full)->untracked, 1);
    dedup_destroy(&full);
    dedup_destroy(&byname);
    dedup_destroy(&byhandle);
}

static int s_count(const char *site, const char *sensor, void *arg)
{
    (*(int *)arg)++;
    return 0;
}

static void test_dedup_export_import_survives_restart(void **state)
{
    dedup_t *d = dedup_new(0, 0);
    for (uint64_t s = 1; s <= 3000; s++)
        if (s % 3 != 0)
            dedup_check(d, "site-a", "mx1", s);
    size_t len = 0;
    uint8_t *blob = dedup_export(d, "site-a", "mx1", &len);
    assert_non_null(blob);
    size_t none;
    assert_null(dedup_export(d, "site-a", "nope", &none));

    dedup_t *r = dedup_new(0, 0);
    assert_int_equal(dedup_import(r, blob, len), 0);
    int n = 0;
    dedup_foreach(r, s_count, &n);
    assert_int_equal(n, 1);
    for (uint64_t s = 1; s <= 3000; s++)
        assert_int_equal(dedup_check(r, "site-a", "mx1", s),
                         s % 3 != 0 ? DEDUP_DUPLICATE : DEDUP_NEW);
    dedup_t *bad = dedup_new(0, 0);
    for (size_t cut = 0; cut < len; cut++)
        assert_int_equal(dedup_import(bad, blob, cut), -1);
    assert_int_equal(dedup_sensors(bad), 0);
    dedup_destroy(&bad);
    xfree(blob);
    dedup_destroy(&d);
    dedup_destroy(&r);
}

static void test_dedup_export_import_keeps_behind_apart(void **state)
{
    dedup_t *d = s_outage();
    size_t len = 0;
    uint8_t *blob = dedup_export(d, "a", "s1", &len);
    assert_non_null(blob);
    assert_int_equal(blob[1], 2); /* the version with gaps */
    dedup_t *r = dedup_new(0, 0);
    assert_int_equal(dedup_import(r, blob, len), 0);
    s_check_late(r);
    dedup_t *bad = dedup_new(0, 0);
    for (size_t cut = 0; cut < len; cut++)
        assert_int_equal(dedup_import(bad, blob, cut), -1);
    uint8_t *odd = xmalloc(len);
    memcpy(odd, blob, len);
    odd[1] = 3; /* an unknown version */
    assert_int_equal(dedup_import(bad, odd, len), -1);
    assert_int_equal(dedup_sensors(bad), 0);
    xfree(odd);
    dedup_destroy(&bad);
    xfree(blob);
    dedup_destroy(&d);
    dedup_destroy(&r);
}

/* A version 1 blob (before gaps) with an empty bitmap; base, first and top are seq + 1. */
static size_t s_v1_blob(uint8_t *b, const char *site, const char *sensor, uint64_t base,
                        uint64_t first, uint64_t top)
{
    size_t n = 0;
    b[n++] = 'D';
    b[n++] = 1;
    b[n++] = (uint8_t)strlen(site);
    memcpy(b + n, site, strlen(site));
    n += strlen(site);
    b[n++] = (uint8_t)strlen(sensor);
    memcpy(b + n, sensor, strlen(sensor));
    n += strlen(sensor);
    uint64_t v[3] = {base, first, top};
    for (int k = 0; k < 3; k++)
        for (int i = 0; i < 8; i++)
            b[n++] = (uint8_t)(v[k] >> (8 * i));
    b[n++] = 0; /* no bitmap words */
    b[n++] = 0;
    return n;
}

static void test_dedup_imports_version_1_blobs(void **state)
{
    uint8_t blob[200];
    dedup_t *d = dedup_new(0, 0);
    /* seqs 0..999 seen in order: the window never slid, everything below base was seen */
    size_t len = s_v1_blob(blob, "a", "s1", 1000, 1, 1000);
    assert_int_equal(dedup_import(d, blob, len), 0);
    assert_int_equal(dedup_check(d, "a", "s1", 0), DEDUP_DUPLICATE);
    assert_int_equal(dedup_check(d, "a", "s1", 999), DEDUP_DUPLICATE);
    assert_int_equal(dedup_check(d, "a", "s1", 1000), DEDUP_NEW);
    /* first seen at 100000, never slid: below its half window it cannot tell */
    len = s_v1_blob(blob, "a", "s2", 100001, 100001, 100001);
    assert_int_equal(dedup_import(d, blob, len), 0);
    assert_int_equal(dedup_check(d, "a", "s2", 99999), DEDUP_DUPLICATE);
    assert_int_equal(dedup_check(d, "a", "s2", 100000 - DEDUP_WINDOW / 2), DEDUP_DUPLICATE);
    assert_int_equal(dedup_check(d, "a", "s2", 100000 - DEDUP_WINDOW / 2 - 1), DEDUP_BEHIND);
    /* slid: which seqs below base were seen is unknown, so all of them are behind */
    len = s_v1_blob(blob, "a", "s3", 30000, 1, 30000);
    assert_int_equal(dedup_import(d, blob, len), 0);
    assert_int_equal(dedup_check(d, "a", "s3", 0), DEDUP_BEHIND);
    assert_int_equal(dedup_check(d, "a", "s3", 29999), DEDUP_BEHIND);
    assert_int_equal(dedup_check(d, "a", "s3", 30000), DEDUP_NEW);
    assert_int_equal(dedup_check(d, "a", "s3", 30000), DEDUP_DUPLICATE);
    /* truncated version 1 blobs are refused */
    len = s_v1_blob(blob, "a", "s4", 1000, 1, 1000);
    for (size_t cut = 0; cut < len; cut++)
        assert_int_equal(dedup_import(d, blob, cut), -1);
    assert_int_equal(dedup_sensors(d), 3);
    dedup_destroy(&d);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_dedup_in_order_then_replay_is_duplicate),
        cmocka_unit_test(test_dedup_seq_zero_counts_once),
        cmocka_unit_test(test_dedup_out_of_order_within_window),
        cmocka_unit_test(test_dedup_spool_replayed_after_live_events_counts),
        cmocka_unit_test(test_dedup_first_contact_accepts_older_spool),
        cmocka_unit_test(test_dedup_jump_beyond_window_gives_up_gap),
        cmocka_unit_test(test_dedup_late_seqs_are_duplicate_or_behind),
        cmocka_unit_test(test_dedup_seqs_below_first_half_window_are_behind),
        cmocka_unit_test(test_dedup_too_many_gaps_merge_conservatively),
        cmocka_unit_test(test_dedup_sensor_restart_numbering),
        cmocka_unit_test(test_dedup_sensors_are_independent),
        cmocka_unit_test(test_dedup_full_table_fails_open),
        cmocka_unit_test(test_dedup_default_tracks_the_daemons_sensors),
        cmocka_unit_test(test_dedup_check_at_is_check_by_name),
        cmocka_unit_test(test_dedup_export_import_survives_restart),
        cmocka_unit_test(test_dedup_export_import_keeps_behind_apart),
        cmocka_unit_test(test_dedup_imports_version_1_blobs),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
