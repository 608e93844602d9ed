/*
 * sigfd - a daemon's signals as a descriptor its event loop polls; see
 * sigfd.h.
 */
#include "sigfd.h"

#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <sys/signalfd.h>
#include <unistd.h>

int sigfd_open(const int *sigs)
{
    sigset_t set, old;
    sigemptyset(&set);
    for (const int *s = sigs; *s; s++)
        sigaddset(&set, *s);
    /* blocked first: from the descriptor's birth on, nothing is left to a default action */
    int err = pthread_sigmask(SIG_BLOCK, &set, &old);
    if (err != 0) {
        errno = err;
        return -1;
    }
    int fd = signalfd(-1, &set, SFD_NONBLOCK | SFD_CLOEXEC);
    if (fd < 0) {
        int saved = errno;
        (void)pthread_sigmask(SIG_SETMASK, &old, NULL);
        errno = saved;
    }
    return fd;
}

int sigfd_take(int fd, pid_t *pid_p)
{
    struct signalfd_siginfo si;
    ssize_t r;
    do
        r = read(fd, &si, sizeof(si));
    while (r < 0 && errno == EINTR);
    if (r < 0)
        return errno == EAGAIN ? 0 : -1;
    if (r != (ssize_t)sizeof(si)) {
        errno = EIO; /* the kernel reads whole records only */
        return -1;
    }
    if (pid_p)
        *pid_p = (pid_t)si.ssi_pid;
    return (int)si.ssi_signo;
}

void sigfd_close(int *fd_p)
{
    if (!fd_p || *fd_p < 0)
        return;
    close(*fd_p);
    *fd_p = -1;
}
