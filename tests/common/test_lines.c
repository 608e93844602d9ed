/*
 * test_lines - the Postfix-style logical line reader: comments, blank lines,
 * continuation joining, orphan continuations, NUL lines, CRLF, line numbers,
 * long lines, a missing final newline, and freeing a half-read text.
 *
 * Each table case is an input and the events it must produce, written as
 * "T<line>[+]:<text>" (a logical line; "+" when continuation lines were
 * joined), "O<line>" (orphan continuation) and "N<line>" (NUL line), joined
 * by "|"; an input with no events gives "".
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "lines.h"
#include "xalloc.h"

/* Reads every event of len bytes of text into a new string in the notation above. */
static char *s_events(const char *text, size_t len)
{
    lines_t *lines = lines_new(text, len);
    size_t cap = 256, used = 0;
    char *out = xmalloc(cap);
    out[0] = '\0';
    lines_item_t it;
    lines_event_t ev;
    while ((ev = lines_next(lines, &it)) != LINES_END) {
        char head[32];
        if (ev == LINES_TEXT)
            snprintf(head, sizeof(head), "T%d%s:", it.line, it.continued ? "+" : "");
        else
            snprintf(head, sizeof(head), "%c%d", ev == LINES_ORPHAN ? 'O' : 'N', it.line);
        if (ev != LINES_TEXT)
            assert_null(it.text);
        const char *body = it.text ? it.text : "";
        size_t need = used + 1 + strlen(head) + strlen(body) + 1;
        if (need > cap) {
            cap = need * 2;
            out = xrealloc(out, cap);
        }
        used += (size_t)sprintf(out + used, "%s%s%s", used ? "|" : "", head, body);
        xfree(it.text);
    }
    assert_int_equal(lines_next(lines, &it), LINES_END); /* stays at the end */
    assert_null(it.text);
    lines_destroy(&lines);
    return out;
}

/* An input (NUL-terminated unless len is set) and its events. */
typedef struct {
    const char *name; /* what the case shows */
    const char *text; /* input */
    size_t len;       /* input length when it holds a NUL, else 0 (strlen) */
    const char *want; /* expected events */
} s_case_t;

static const s_case_t s_cases[] = {
    {"empty text", "", 0, ""},
    {"plain lines", "a = 1\nb = 2\n", 0, "T1:a = 1|T2:b = 2"},
    {"missing final newline", "a = 1\nb = 2", 0, "T1:a = 1|T2:b = 2"},
    {"missing final newline after continuation", "a = 1\n  2", 0, "T1+:a = 1 2"},
    {"comments skipped", "# top\na\n#b\nc\n", 0, "T2:a|T4:c"},
    {"indented comment is a comment", "a\n   # note\n\t#x\nb\n", 0, "T1:a|T4:b"},
    {"# inside a line is text", "a = b # not a comment\n", 0, "T1:a = b # not a comment"},
    {"# after a continuation blank is a comment", "a\n  #c\n  d\n", 0, "T1+:a d"},
    {"blank lines skipped", "\n\n  \n\t\na\n\n\n", 0, "T5:a"},
    {"white space only lines", " \n\f\n\v\n\r\n", 0, ""},
    {"only newlines", "\n\n\n", 0, ""},
    {"continuation joins with one space", "a = b\n  c\n\t\td\n", 0, "T1+:a = b c d"},
    {"continuation keeps trailing blanks", "a  \n  b  \n", 0, "T1+:a   b  "},
    {"comment between continuations", "a\n# x\n  b\n", 0, "T1+:a b"},
    {"blank line between continuations", "a\n\n  b\n", 0, "T1+:a b"},
    {"continuation at top of file", "  x\na\n", 0, "O1|T2:a"},
    {"each orphan continuation reported", "# c\n\n  x\n\ty\nk\n", 0, "O3|O4|T5:k"},
    {"line numbers of logical lines", "a\n  b\n\nc\n  d\n  e\nf", 0, "T1+:a b|T4+:c d e|T7:f"},
    {"CRLF lines", "a\r\n  b\r\n\r\n# c\r\nc\r\n", 0, "T1+:a b|T5:c"},
    {"only one CR is dropped", "a\r\r\n", 0, "T1:a\r"},
    {"CR inside a line is text", "a\rb\n", 0, "T1:a\rb"},
    {"bare CR at the end of the text", "a\r", 0, "T1:a"},
    {"NUL line skipped and reported", "a\n\0b\nc\n", 7, "N2|T1:a|T3:c"},
    {"NUL line inside continuations", "a\n x\0\n  b\n", 10, "N2|T1+:a b"},
    {"NUL line at top does not start a line", "\0\n  b\nc", 7, "N1|O2|T3:c"},
    {"NUL in the last line without newline", "a\nb\0", 4, "N2|T1:a"},
};

static void test_table(void **state)
{
    (void)state;
    int failed = 0;
    for (size_t i = 0; i < sizeof(s_cases) / sizeof(s_cases[0]); i++) {
        const s_case_t *c = &s_cases[i];
        char *got = s_events(c->text, c->len ? c->len : strlen(c->text));
        if (strcmp(got, c->want) != 0) {
            print_error("%s: got \"%s\", want \"%s\"\n", c->name, got, c->want);
            failed++;
        }
        xfree(got);
    }
    assert_int_equal(failed, 0);
}

static void test_null_text_with_zero_length_is_empty(void **state)
{
    (void)state;
    char *got = s_events(NULL, 0);
    assert_string_equal(got, "");
    xfree(got);
}

static void test_length_bounds_the_text(void **state)
{
    (void)state;
    char *got = s_events("a\nb\nc\n", 3); /* "a\nb" */
    assert_string_equal(got, "T1:a|T2:b");
    xfree(got);
}

static void test_very_long_lines_are_whole(void **state)
{
    (void)state;
    const size_t n = 1024 * 1024;
    char *text = xmalloc(2 * n + 16);
    size_t l = 0;
    memset(text + l, 'x', n);
    l += n;
    text[l++] = '\n';
    text[l++] = '\t';
    memset(text + l, 'y', n);
    l += n;
    text[l++] = '\n';
    text[l++] = 'z';

    lines_t *lines = lines_new(text, l);
    lines_item_t it;
    assert_int_equal(lines_next(lines, &it), LINES_TEXT);
    assert_int_equal(it.line, 1);
    assert_true(it.continued);
    assert_int_equal(strlen(it.text), 2 * n + 1);
    assert_int_equal(it.text[0], 'x');
    assert_int_equal(it.text[n - 1], 'x');
    assert_int_equal(it.text[n], ' ');
    assert_int_equal(it.text[n + 1], 'y');
    assert_int_equal(it.text[2 * n], 'y');
    xfree(it.text);
    assert_int_equal(lines_next(lines, &it), LINES_TEXT);
    assert_int_equal(it.line, 3);
    assert_string_equal(it.text, "z");
    xfree(it.text);
    assert_int_equal(lines_next(lines, &it), LINES_END);
    lines_destroy(&lines);
    xfree(text);
}

static void test_many_continuations_join_in_order(void **state)
{
    (void)state;
    const int n = 10000;
    char *text = xmalloc((size_t)n * 8 + 16);
    size_t l = (size_t)sprintf(text, "k =");
    for (int i = 0; i < n; i++)
        l += (size_t)sprintf(text + l, "\n %d", i % 10);
    lines_t *lines = lines_new(text, l);
    lines_item_t it;
    assert_int_equal(lines_next(lines, &it), LINES_TEXT);
    assert_int_equal(it.line, 1);
    assert_int_equal(strlen(it.text), 3 + 2 * (size_t)n);
    assert_int_equal(strncmp(it.text, "k = 0 1 2", 9), 0);
    assert_int_equal(it.text[strlen(it.text) - 1], '9');
    xfree(it.text);
    assert_int_equal(lines_next(lines, &it), LINES_END);
    lines_destroy(&lines);
    xfree(text);
}

static void test_text_is_not_modified(void **state)
{
    (void)state;
    char text[] = "a\r\n  b\n# c\n";
    char copy[sizeof(text)];
    memcpy(copy, text, sizeof(text));
    xfree(s_events(text, strlen(text)));
    assert_memory_equal(text, copy, sizeof(text));
}

static void test_destroy_mid_text_frees_pending(void **state)
{
    (void)state;
    /* the reader holds "b c" when it hands out "a"; sanitizer builds catch a leak */
    lines_t *lines = lines_new("a\nb\n  c\n", 8);
    lines_item_t it;
    assert_int_equal(lines_next(lines, &it), LINES_TEXT);
    assert_string_equal(it.text, "a");
    xfree(it.text);
    lines_destroy(&lines);
    assert_null(lines);
    lines_destroy(&lines); /* safe twice */
    lines_destroy(NULL);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_table),
        cmocka_unit_test(test_null_text_with_zero_length_is_empty),
        cmocka_unit_test(test_length_bounds_the_text),
        cmocka_unit_test(test_very_long_lines_are_whole),
        cmocka_unit_test(test_many_continuations_join_in_order),
        cmocka_unit_test(test_text_is_not_modified),
        cmocka_unit_test(test_destroy_mid_text_frees_pending),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
