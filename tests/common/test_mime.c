/* test_mime - the MIME adapter: part splitting, decoding, content types, UTF-8. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <string.h>

#include "mime.h"
#include "xalloc.h"

static const char s_report[] =
    "Content-Type: multipart/report; report-type=Delivery-Status; boundary=\"b1\"\n"
    "\n"
    "preamble\n"
    "--b1\n"
    "Content-Type: text/plain\n"
    "Content-Transfer-Encoding: base64\n"
    "\n"
    "aGVsbG8gd29ybGQ=\n"
    "--b1\n"
    "Content-Type: message/delivery-status\n"
    "\n"
    "Reporting-MTA: dns; x\n"
    "--b1\n"
    "Content-Type: message/rfc822\n"
    "\n"
    "Subject: orig\n"
    "\n"
    "text of the original\n"
    "--b1--\n"
    "epilogue\n";

static void test_report_parts(void **state)
{
    mime_tree_t *t = mime_tree_parse(s_report, sizeof(s_report) - 1);
    assert_int_equal(mime_tree_count(t), 4);
    const mime_part_t *p = mime_tree_part(t, 0);
    assert_string_equal(p->type, "multipart");
    assert_string_equal(p->report_type, "delivery-status");
    p = mime_tree_part(t, 1);
    assert_string_equal(p->subtype, "plain");
    assert_int_equal(p->depth, 1);
    assert_string_equal(p->body, "hello world");
    p = mime_tree_part(t, 2);
    assert_string_equal(p->subtype, "delivery-status");
    assert_string_equal(p->body, "Reporting-MTA: dns; x");
    p = mime_tree_part(t, 3);
    assert_string_equal(p->subtype, "rfc822");
    assert_string_equal(p->body, "Subject: orig\n\n");
    assert_true(p->enclosed_body);
    assert_null(mime_tree_part(t, 4));
    mime_tree_destroy(&t);
    assert_null(t);
    mime_tree_destroy(&t);
}

static void test_cut_message_keeps_last_part(void **state)
{
    size_t cut = (size_t)(strstr(s_report, "text of the") - s_report);
    mime_tree_t *t = mime_tree_parse(s_report, cut);
    assert_int_equal(mime_tree_count(t), 4);
    assert_false(mime_tree_part(t, 3)->enclosed_body);
    mime_tree_destroy(&t);
}

static void test_no_boundary_and_garbage(void **state)
{
    static const char *const inputs[] = {
        "Content-Type: multipart/mixed\n\n--x\n\n",
        "Content-Type: ;;;\n\nbody",
        "\n\n\n",
        "--\n--\n",
    };
    for (size_t i = 0; i < sizeof(inputs) / sizeof(*inputs); i++) {
        mime_tree_t *t = mime_tree_parse(inputs[i], strlen(inputs[i]));
        assert_true(mime_tree_count(t) >= 1);
        mime_tree_destroy(&t);
    }
    mime_tree_t *t = mime_tree_parse(NULL, 0);
    assert_int_equal(mime_tree_count(t), 0);
    mime_tree_destroy(&t);
}

static void test_content_type(void **state)
{
    char *type, *sub, *rt;
    assert_int_equal(mime_content_type("Multipart/Report; report-type=\"feedback-report\"; "
                                       "boundary=x",
                                       &type, &sub, &rt),
                     0);
    assert_string_equal(type, "multipart");
    assert_string_equal(sub, "report");
    assert_string_equal(rt, "feedback-report");
    xfree(type);
    xfree(sub);
    xfree(rt);
    assert_int_equal(mime_content_type("garbage", &type, &sub, &rt), -1);
    assert_null(type);
}

static void test_text_helpers(void **state)
{
    size_t n;
    char *d = mime_transfer_decode("quoted-printable", "caf=C3=A9=\n!", 12, &n);
    assert_string_equal(d, "café!");
    xfree(d);
    d = mime_to_utf8("iso-8859-1", "caf\xe9", 4);
    assert_string_equal(d, "café");
    xfree(d);
    d = mime_utf8_lower("ÀÉÎ ПРИВЕТ");
    assert_string_equal(d, "àéî привет");
    xfree(d);
    assert_true(mime_utf8_valid("abc", 3));
    assert_false(mime_utf8_valid("\xff", 1));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_report_parts),
        cmocka_unit_test(test_cut_message_keeps_last_part),
        cmocka_unit_test(test_no_boundary_and_garbage),
        cmocka_unit_test(test_content_type),
        cmocka_unit_test(test_text_helpers),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
