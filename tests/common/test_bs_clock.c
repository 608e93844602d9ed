/* test_bs_clock - the fake clock moves only when told; the system clock moves. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "bs_clock.h"

static void test_fake_clock_is_fixed_until_moved(void **state)
{
    bs_clock_t *c = bs_clock_fake_new(1000);
    assert_int_equal(bs_clock_now_ms(c), 1000);
    assert_int_equal(bs_clock_mono_ms(c), 1000);
    bs_clock_fake_advance(c, 250);
    assert_int_equal(bs_clock_now_ms(c), 1250);
    bs_clock_fake_set(c, 5);
    assert_int_equal(bs_clock_mono_ms(c), 5);
    bs_clock_destroy(&c);
    assert_null(c);
    bs_clock_destroy(&c);
}

static void test_system_clock_is_wall_time(void **state)
{
    /* 2020-01-01 in ms: any real clock is past it */
    assert_true(bs_clock_now_ms(bs_clock_system()) > 1577836800000LL);
    int64_t a = bs_clock_mono_ms(bs_clock_system());
    assert_true(bs_clock_mono_ms(bs_clock_system()) >= a);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_fake_clock_is_fixed_until_moved),
        cmocka_unit_test(test_system_clock_is_wall_time),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
