/* test_hdrs - header blocks indexed in place: folding, line ends, lenient ends. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <string.h>

#include "hdrs.h"
#include "xalloc.h"

static hdrs_t s_hs; /* one test at a time; too big for cmocka's stack habits */

static void test_fields_and_body(void **state)
{
    static const char m[] = "From: a@b.example\r\nSubject: one\r\n two\r\n\r\nbody\r\n";
    hdrs_parse(m, sizeof(m) - 1, &s_hs);
    assert_int_equal(s_hs.count, 2);
    assert_true(s_hs.terminated);
    assert_string_equal(s_hs.body, "body\r\n");
    char *v = hdrs_get(&s_hs, "SUBJECT");
    assert_string_equal(v, "one two");
    xfree(v);
    assert_null(hdrs_get(&s_hs, "To"));
}

static void test_mbox_line_and_bare_lf(void **state)
{
    static const char m[] = "From someone Mon Jan  1 00:00:00 2024\nTo: x@y.example\n\nhi\n";
    hdrs_parse(m, sizeof(m) - 1, &s_hs);
    assert_int_equal(s_hs.count, 1);
    assert_int_equal(s_hs.h[0].name_len, 2);
    assert_string_equal(s_hs.body, "hi\n");
}

static void test_non_field_line_ends_block(void **state)
{
    static const char m[] = "Subject: x\nthis is not a header\nmore\n";
    hdrs_parse(m, sizeof(m) - 1, &s_hs);
    assert_int_equal(s_hs.count, 1);
    assert_true(s_hs.bad_line);
    assert_false(s_hs.terminated);
    assert_string_equal(s_hs.body, "this is not a header\nmore\n");
}

static void test_unterminated_block(void **state)
{
    static const char m[] = "Subject: cut in the mid";
    hdrs_parse(m, sizeof(m) - 1, &s_hs);
    assert_int_equal(s_hs.count, 1);
    assert_false(s_hs.terminated);
    assert_int_equal(s_hs.body_len, 0);
}

static void test_unfold_trims_and_bounds(void **state)
{
    char *v = hdrs_unfold(" \ta\r\n\tb \r\n", 10);
    assert_string_equal(v, "a b");
    xfree(v);
    char big[3000];
    memset(big, 'x', sizeof(big));
    v = hdrs_unfold(big, sizeof(big));
    assert_int_equal(strlen(v), HDRS_MAX_VALUE);
    xfree(v);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_fields_and_body),
        cmocka_unit_test(test_mbox_line_and_bare_lf),
        cmocka_unit_test(test_non_field_line_ends_block),
        cmocka_unit_test(test_unterminated_block),
        cmocka_unit_test(test_unfold_trims_and_bounds),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
