/* test_localrule - x events with one key within the period fire; older ones do not count;
 * memory stays bounded. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "localrule.h"

#include <string.h>

static void test_fires_at_threshold(void **state)
{
    localrule_t *lr = localrule_new(3, 60000, 100);
    assert_false(localrule_note(lr, 7, 1000));
    assert_false(localrule_note(lr, 7, 2000));
    assert_true(localrule_note(lr, 7, 3000));
    assert_true(localrule_note(lr, 7, 4000)); /* the wave goes on: keeps firing */
    assert_int_equal(localrule_count(lr, 7, 4000), 3);
    localrule_destroy(&lr);
    assert_null(lr);
    localrule_destroy(&lr);
}

static void test_events_outside_period_do_not_count(void **state)
{
    localrule_t *lr = localrule_new(3, 10000, 100);
    localrule_note(lr, 7, 0);
    localrule_note(lr, 7, 5000);
    assert_false(localrule_note(lr, 7, 10000)); /* the one at 0 is out of the window */
    assert_true(localrule_note(lr, 7, 11000));
    localrule_destroy(&lr);
}

static void test_keys_are_independent(void **state)
{
    localrule_t *lr = localrule_new(2, 10000, 100);
    assert_false(localrule_note(lr, 1, 0));
    assert_false(localrule_note(lr, 2, 0));
    assert_true(localrule_note(lr, 1, 1));
    assert_int_equal(localrule_count(lr, 2, 1), 1);
    localrule_destroy(&lr);
}

static void test_memory_is_bounded(void **state)
{
    localrule_t *lr = localrule_new(5, 10000, 16);
    for (uint64_t k = 0; k < 1000; k++)
        localrule_note(lr, k, (int64_t)k);
    assert_true(localrule_keys(lr) <= 16);
    /* the most recent key is still counted */
    assert_int_equal(localrule_count(lr, 999, 999), 1);
    localrule_destroy(&lr);
}

/* A table far from full does not keep the keys of a past period: a sensor that saw one
 * bounce subject after another held every one (200 bytes each with the default threshold)
 * until max_keys was reached, days later, while the keys of the last period were a few. */
static void test_idle_keys_are_forgotten_before_the_table_fills(void **state)
{
    localrule_t *lr = localrule_new(20, 10000, 100000);
    for (uint64_t k = 0; k < 1000; k++)
        localrule_note(lr, k, (int64_t)k);
    assert_int_equal(localrule_keys(lr), 1000);
    /* a period later, one new key a second: the old ones go, a few a note */
    for (uint64_t k = 0; k < 100; k++)
        localrule_note(lr, 5000 + k, 20000 + (int64_t)k * 1000);
    assert_int_equal(localrule_keys(lr), 10); /* the keys of the last 10 s */
    assert_int_equal(localrule_count(lr, 5099, 119000), 1);
    assert_int_equal(localrule_count(lr, 0, 119000), 0);
    localrule_destroy(&lr);
}

/* A key noted again moves to the end of the list: a full table forgets the least recently
 * noted key, not the one first seen. */
static void test_full_table_forgets_least_recently_noted(void **state)
{
    localrule_t *lr = localrule_new(5, 100000, 3);
    localrule_note(lr, 1, 1000);
    localrule_note(lr, 2, 2000);
    localrule_note(lr, 3, 3000);
    localrule_note(lr, 1, 4000); /* 1 is the most recent now, 2 the least */
    localrule_note(lr, 4, 5000);
    assert_int_equal(localrule_keys(lr), 3);
    assert_int_equal(localrule_count(lr, 2, 5000), 0);
    assert_int_equal(localrule_count(lr, 1, 5000), 2);
    assert_int_equal(localrule_count(lr, 3, 5000), 1);
    assert_int_equal(localrule_count(lr, 4, 5000), 1);
    localrule_destroy(&lr);
}

static void test_decision_id_is_stable_and_short(void **state)
{
    char a[9], b[9], c[9];
    localrule_decision_id(0x1234567890abcdefULL, a);
    localrule_decision_id(0x1234567890abcdefULL, b);
    localrule_decision_id(0x1234567890abcdeeULL, c);
    assert_string_equal(a, b);
    assert_string_not_equal(a, c);
    assert_int_equal(strlen(a), 8);
    assert_int_equal(a[0], 'L');
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_fires_at_threshold),
        cmocka_unit_test(test_events_outside_period_do_not_count),
        cmocka_unit_test(test_keys_are_independent),
        cmocka_unit_test(test_memory_is_bounded),
        cmocka_unit_test(test_idle_keys_are_forgotten_before_the_table_fills),
        cmocka_unit_test(test_full_table_forgets_least_recently_noted),
        cmocka_unit_test(test_decision_id_is_stable_and_short),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
