/*
 * fuzz_lib - what the fuzz targets share: quiet logs, scratch directories, files in memory
 *
 * Header only (static inline), for the targets in tests/fuzz; none of it is
 * project code under test.
 */
#ifndef BS_FUZZ_LIB_H
#define BS_FUZZ_LIB_H

#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>
#include <zmq.h>

#include "msg.h"

/* An oracle: when cond is false, says which file, line and condition, and traps (libFuzzer
 * keeps the input). */
#define FUZZ_CHECK(cond)                                                                           \
    do {                                                                                           \
        if (!(cond)) {                                                                             \
            fprintf(stderr, "%s: check failed at line %d: %s\n", __FILE__, __LINE__, #cond);       \
            __builtin_trap();                                                                      \
        }                                                                                          \
    } while (0)

/* ---- signals that interrupt libzmq ----
 *
 * libzmq fails a call with EINTR when a signal lands in its bookkeeping, even with
 * ZMQ_DONTWAIT. libFuzzer's own timers did so about once in a million runs of the socket
 * targets, which then failed on a harness send or on a check of errno: a flake. These targets
 * now interrupt themselves on purpose (fuzz_interrupt_every), so the project's code meets
 * EINTR in every run (zsock takes a message's later parts again, never half of one), and the
 * harness's own calls go through fuzz_send() and fuzz_msg_recv(), which try again. */

static inline void fuzz_tick(int sig)
{
    (void)sig;
}

/* The timer of fuzz_interrupt_every(), for fuzz_interrupt_stop(). */
static timer_t fuzz_timer;
static int fuzz_timer_set;

/* SIGUSR2 every us microseconds from now on, with a handler that does nothing (no
 * SA_RESTART: calls it interrupts fail with EINTR). */
static inline void fuzz_interrupt_every(long us)
{
    struct sigaction sa;
    memset(&sa, 0, sizeof(sa));
    sa.sa_handler = fuzz_tick;
    sigaction(SIGUSR2, &sa, NULL);
    struct sigevent sev;
    memset(&sev, 0, sizeof(sev));
    sev.sigev_notify = SIGEV_SIGNAL;
    sev.sigev_signo = SIGUSR2;
    if (timer_create(CLOCK_MONOTONIC, &sev, &fuzz_timer) != 0)
        abort();
    fuzz_timer_set = 1;
    struct itimerspec its = {{us / 1000000, us % 1000000 * 1000},
                             {us / 1000000, us % 1000000 * 1000}};
    timer_settime(fuzz_timer, 0, &its, NULL);
}

/* Stops fuzz_interrupt_every()'s signals: before the clean-up at exit, whose
 * zmq_ctx_term() would give up on EINTR and leave the context to the leak checker. */
static inline void fuzz_interrupt_stop(void)
{
    if (fuzz_timer_set) {
        timer_delete(fuzz_timer);
        fuzz_timer_set = 0;
    }
}

/* zmq_send(), tried again when a signal interrupted it. */
static inline int fuzz_send(void *sock, const void *buf, size_t len, int flags)
{
    int rc;
    while ((rc = zmq_send(sock, buf, len, flags)) < 0 && errno == EINTR)
        ;
    return rc;
}

/* zmq_msg_recv(), tried again when a signal interrupted it. */
static inline int fuzz_msg_recv(zmq_msg_t *m, void *sock, int flags)
{
    int rc;
    while ((rc = zmq_msg_recv(m, sock, flags)) < 0 && errno == EINTR)
        ;
    return rc;
}

/* The next step of an input made of steps: a selector byte, a 16-bit big-endian length and
 * that many bytes (fewer when the input ends first) into *sel, *buf and *len, and moves
 * *data and *size past it. 0 when fewer than 3 bytes are left. */
static inline int fuzz_step(const uint8_t **data, size_t *size, uint8_t *sel, const uint8_t **buf,
                            size_t *len)
{
    if (*size < 3)
        return 0;
    const uint8_t *d = *data;
    size_t n = (size_t)d[1] << 8 | d[2], left = *size - 3;
    *sel = d[0];
    *buf = d + 3;
    *len = n < left ? n : left;
    *data = d + 3 + *len;
    *size = left - *len;
    return 1;
}

/* Sends the project's log lines to /dev/null, unless BACKSTOP_FUZZ_LOG is set: they would
 * drown libFuzzer's own. */
static inline void fuzz_quiet(void)
{
    if (getenv("BACKSTOP_FUZZ_LOG"))
        return;
    int fd = open("/dev/null", O_WRONLY | O_CLOEXEC);
    if (fd >= 0)
        msg_set_fd(fd);
}

static inline int fuzz_rm_one(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
    (void)st;
    (void)flag;
    (void)ftw;
    return remove(path);
}

/* Removes the tree at dir (nothing when dir is empty). */
static inline void fuzz_rmtree(const char *dir)
{
    if (dir[0])
        nftw(dir, fuzz_rm_one, 16, FTW_DEPTH | FTW_PHYS);
}

/* Makes a scratch directory from template (mkdtemp's XXXXXX); aborts when it cannot. */
static inline void fuzz_mkdtemp(char *template)
{
    if (mkdtemp(template) == NULL) {
        perror(template);
        abort();
    }
}

/* The bytes as a file a loader can open by path (a memfd, /proc/self/fd/N, in path).
 * Returns the fd to close afterwards, or -1. */
static inline int fuzz_memfd(const char *name, const uint8_t *data, size_t size, char *path,
                             size_t cap)
{
    int fd = memfd_create(name, MFD_CLOEXEC);
    if (fd < 0)
        return -1;
    if (write(fd, data, size) != (ssize_t)size) {
        close(fd);
        return -1;
    }
    snprintf(path, cap, "/proc/self/fd/%d", fd);
    return fd;
}

#endif
