/*
 * test_sigfd - the signals given to sigfd_open() are blocked and read from its
 * descriptor: one sent before the first read is kept (a TERM during a start),
 * several of a kind read as one, the sender's pid comes with it; a thread
 * started afterwards has them blocked and a signal sent while it runs is still
 * read from the descriptor; an empty descriptor answers 0 without blocking;
 * sigfd_close() is safe twice.
 */
#include <pthread.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <unistd.h>
#include <cmocka.h>

#include "sigfd.h"

static const int s_sigs[] = {SIGTERM, SIGINT, SIGHUP, 0};

static void test_a_signal_sent_before_the_first_read_is_kept(void **state)
{
    (void)state;
    int fd = sigfd_open(s_sigs);
    assert_true(fd >= 0);
    assert_int_equal(kill(getpid(), SIGTERM), 0);
    pid_t pid = 0;
    assert_int_equal(sigfd_take(fd, &pid), SIGTERM);
    assert_int_equal(pid, getpid());
    assert_int_equal(sigfd_take(fd, &pid), 0);
    sigfd_close(&fd);
    assert_int_equal(fd, -1);
    sigfd_close(&fd);
}

static void test_several_of_a_kind_read_as_one(void **state)
{
    (void)state;
    int fd = sigfd_open(s_sigs);
    assert_true(fd >= 0);
    for (int i = 0; i < 5; i++)
        assert_int_equal(kill(getpid(), SIGHUP), 0);
    assert_int_equal(kill(getpid(), SIGINT), 0);
    int hup = 0, intr = 0, sig;
    while ((sig = sigfd_take(fd, NULL)) > 0) {
        hup += sig == SIGHUP;
        intr += sig == SIGINT;
    }
    assert_int_equal(sig, 0);
    assert_int_equal(hup, 1);
    assert_int_equal(intr, 1);
    sigfd_close(&fd);
}

/* The thread's own mask, and a process-directed TERM sent from it while it runs. */
static void *s_thread(void *arg)
{
    bool *blocked = arg;
    sigset_t cur;
    pthread_sigmask(SIG_BLOCK, NULL, &cur);
    *blocked = sigismember(&cur, SIGTERM) == 1 && sigismember(&cur, SIGINT) == 1 &&
               sigismember(&cur, SIGHUP) == 1;
    (void)kill(getpid(), SIGTERM);
    return NULL;
}

static void test_a_thread_started_afterwards_has_them_blocked(void **state)
{
    (void)state;
    int fd = sigfd_open(s_sigs);
    assert_true(fd >= 0);
    bool blocked = false;
    pthread_t t;
    assert_int_equal(pthread_create(&t, NULL, s_thread, &blocked), 0);
    assert_int_equal(pthread_join(t, NULL), 0);
    assert_true(blocked);
    assert_int_equal(sigfd_take(fd, NULL), SIGTERM);
    assert_int_equal(sigfd_take(fd, NULL), 0);
    sigfd_close(&fd);
}

static void test_a_closed_descriptor_is_an_error(void **state)
{
    (void)state;
    int fd = sigfd_open(s_sigs);
    assert_true(fd >= 0);
    int copy = fd;
    sigfd_close(&fd);
    assert_int_equal(sigfd_take(copy, NULL), -1);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_a_signal_sent_before_the_first_read_is_kept),
        cmocka_unit_test(test_several_of_a_kind_read_as_one),
        cmocka_unit_test(test_a_thread_started_afterwards_has_them_blocked),
        cmocka_unit_test(test_a_closed_descriptor_is_an_error),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
