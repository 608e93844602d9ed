/* test_msg - the repeated-line rate limit msg_due(): the first line is due, then one an
 * interval, measured from the last one said; and msg_set_fd() while another thread logs. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

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

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_due_once_an_interval),
        cmocka_unit_test(test_set_fd_while_another_thread_logs),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
