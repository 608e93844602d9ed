/* test_msg - the repeated-line rate limit msg_due(): the first line is due, then one an
 * interval, measured from the last one said; msg_set_fd() while another thread logs; and
 * msg_quote(), how a free-text value is written into a log line. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <string.h>

#include "msg.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

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

enum { S_LINES = 2000 };

static void *s_logger(void *arg)
{
    (void)arg;
    for (int i = 0; i < S_LINES; i++)
        msg_info("test_msg: line=%d", i);
    return NULL;
}

/* Lines of fp holding "test_msg: line=", each checked whole (the counter ends it). */
static int s_count_lines(FILE *fp)
{
    rewind(fp);
    char line[256];
    int n = 0;
    while (fgets(line, sizeof(line), fp)) {
        const char *at = strstr(line, "test_msg: line=");
        assert_non_null(at);
        char *end = NULL;
        long i = strtol(at + strlen("test_msg: line="), &end, 10);
        assert_true(i >= 0 && i < S_LINES);
        assert_string_equal(end, "\n");
        n++;
    }
    return n;
}

/* The tests capture log lines of a running thread by moving the descriptor under it (the
 * uplink's do): every line lands whole in one of the two files. Under ThreadSanitizer this
 * raced on the descriptor when it was a plain int. */
static void test_set_fd_while_another_thread_logs(void **state)
{
    (void)state;
    FILE *a = tmpfile(), *b = tmpfile();
    assert_non_null(a);
    assert_non_null(b);
    msg_set_fd(fileno(a));
    pthread_t t;
    assert_int_equal(pthread_create(&t, NULL, s_logger, NULL), 0);
    for (int i = 0; i < S_LINES; i++)
        msg_set_fd(fileno(i % 2 ? a : b));
    assert_int_equal(pthread_join(t, NULL), 0);
    msg_set_fd(-1);
    assert_int_equal(s_count_lines(a) + s_count_lines(b), S_LINES);
    fclose(a);
    fclose(b);
}

/* A value cannot forge fields: it is one quoted string, its quotes, backslashes and
 * control bytes escaped; UTF-8 as it is. */
static void test_quote_escapes(void **state)
{
    (void)state;
    char b[MSG_QUOTE_SIZE(64)];
    assert_string_equal(msg_quote(b, sizeof(b), "pay now reach=site why=expired"),
                        "\"pay now reach=site why=expired\"");
    assert_string_equal(msg_quote(b, sizeof(b), "a\"b\\c"), "\"a\\\"b\\\\c\"");
    assert_string_equal(msg_quote(b, sizeof(b), "l1\nx=y\r\t\x7f\x1b"),
                        "\"l1\\x0ax=y\\x0d\\x09\\x7f\\x1b\"");
    assert_string_equal(msg_quote(b, sizeof(b), "caf\xc3\xa9"), "\"caf\xc3\xa9\"");
    assert_string_equal(msg_quote(b, sizeof(b), ""), "\"\"");
    assert_string_equal(msg_quote(b, sizeof(b), NULL), "\"\"");
    assert_string_equal(msg_quote_n(b, sizeof(b), "d/\0x", 4), "\"d/\\x00x\"");
    /* every byte escaped still fits the size the macro gives */
    char all[64 + 1];
    memset(all, '\n', 64);
    all[64] = '\0';
    msg_quote(b, sizeof(b), all);
    assert_int_equal(strlen(b), sizeof(b) - 1);
    assert_int_equal(b[sizeof(b) - 2], '"');
}

/* Too small a buffer cuts the value on a whole character and an escape, and keeps the
 * closing quote. */
static void test_quote_cuts_on_characters(void **state)
{
    (void)state;
    char b[8];
    assert_string_equal(msg_quote(b, sizeof(b), "abcdefghij"), "\"abcde\"");
    assert_string_equal(msg_quote(b, sizeof(b), "abcd\xc3\xa9"), "\"abcd\""); /* not half an é */
    assert_string_equal(msg_quote(b, sizeof(b), "abc\xc3\xa9x"), "\"abc\xc3\xa9\"");
    assert_string_equal(msg_quote(b, sizeof(b), "abc\n"), "\"abc\""); /* not half \x0a */
    assert_string_equal(msg_quote(b, 3, "abc"), "\"\"");
    char tiny[2] = "x";
    assert_string_equal(msg_quote(tiny, sizeof(tiny), "abc"), "");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_due_once_an_interval),
        cmocka_unit_test(test_set_fd_while_another_thread_logs),
        cmocka_unit_test(test_quote_escapes),
        cmocka_unit_test(test_quote_cuts_on_characters),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
