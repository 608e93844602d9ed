/*
 * daemon - becoming a daemon, with the start-up status reported to the
 * shell; see daemon.h.
 */
#include "daemon.h"

#include "msg.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <sysexits.h>
#include <unistd.h>

/* The parent's side: the status byte the child writes, else (it exited first) its exit status. */
static int s_wait_child(const char *progname, pid_t pid, int fd)
{
    unsigned char st = 0;
    ssize_t r;
    do
        r = read(fd, &st, 1);
    while (r < 0 && errno == EINTR);
    close(fd);
    int status = EX_SOFTWARE;
    if (r == 1) {
        status = st;
    } else {
        int ws;
        pid_t w;
        do
            w = waitpid(pid, &ws, 0);
        while (w < 0 && errno == EINTR);
        if (w == pid && WIFEXITED(ws))
            status = WEXITSTATUS(ws);
    }
    if (status != EX_OK)
        fprintf(stderr, "%s: start-up failed (status %d); see the mail log\n", progname, status);
    return status;
}

int daemon_detach(const char *progname, bool *parent, int *ready_fd)
{
    int p[2];
    *parent = false;
    *ready_fd = -1;
    if (pipe(p) != 0) {
        msg_error("daemon: pipe: %s", strerror(errno));
        return EX_OSERR;
    }
    pid_t pid = fork();
    if (pid < 0) {
        msg_error("daemon: fork: %s", strerror(errno));
        close(p[0]);
        close(p[1]);
        return EX_OSERR;
    }
    if (pid > 0) {
        *parent = true;
        close(p[1]);
        return s_wait_child(progname, pid, p[0]);
    }
    close(p[0]);
    fcntl(p[1], F_SETFD, FD_CLOEXEC);
    *ready_fd = p[1];
    setsid();
    if (chdir("/") != 0)
        msg_warn("daemon: chdir /: %s", strerror(errno));
    int fd = open("/dev/null", O_RDWR);
    if (fd >= 0) {
        dup2(fd, 0);
        dup2(fd, 1);
        dup2(fd, 2);
        if (fd > 2)
            close(fd);
    }
    msg_open(progname, MSG_TO_SYSLOG);
    return EX_OK;
}

void daemon_ready(int *ready_fd, int status)
{
    if (*ready_fd < 0)
        return;
    unsigned char st = (unsigned char)status;
    ssize_t ignored = write(*ready_fd, &st, 1);
    (void)ignored;
    close(*ready_fd);
    *ready_fd = -1;
}
