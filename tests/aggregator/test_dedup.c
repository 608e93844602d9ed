/* test_dedup - replays, out-of-order delivery, window slides, sensor restarts, persistence. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
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
    assert_int_equal(dedup_check(d, "a", "s1", 3), DEDUP_DUPLICATE);
    /* but the window right below the new seq is still open */
    assert_int_equal(dedup_check(d, "a", "s1", far - 10), DEDUP_NEW);
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

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_dedup_in_order_then_replay_is_duplicate),
        cmocka_unit_test(test_dedup_seq_zero_counts_once),
        cmocka_unit_test(test_dedup_out_of_order_within_window),
        cmocka_unit_test(test_dedup_spool_replayed_after_live_events_counts),
        cmocka_unit_test(test_dedup_first_contact_accepts_older_spool),
        cmocka_unit_test(test_dedup_jump_beyond_window_gives_up_gap),
        cmocka_unit_test(test_dedup_sensor_restart_numbering),
        cmocka_unit_test(test_dedup_sensors_are_independent),
        cmocka_unit_test(test_dedup_full_table_fails_open),
        cmocka_unit_test(test_dedup_export_import_survives_restart),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
