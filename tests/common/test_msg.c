/* test_msg - the repeated-line rate limit msg_due(): the first line is due, then one an
 * interval, measured from the last one said. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "msg.h"

static void test_due_once_an_interval(void **state)
{
    (void)state;
    int64_t last = 0;
    assert_true(msg_due(&last, 5000, 60000)); /* never said: due */
    assert_int_equal(last, 5000);
    assert_false(msg_due(&last, 5001, 60000));
    assert_false(msg_due(&last, 64999, 60000));
    assert_int_equal(last, 5000); /* a line not due leaves the time alone */
    assert_true(msg_due(&last, 65000, 60000));
    assert_int_equal(last, 65000);
    assert_false(msg_due(&last, 65000, 60000));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_due_once_an_interval),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
