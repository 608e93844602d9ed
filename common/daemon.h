/*
 * daemon - becoming a daemon, with the start-up status reported to the shell
 *
 * daemon_detach() forks. The parent stays until the child says it is ready
 * (or fails), then exits with the child's start-up status, so an init script
 * or an operator typing the command sees a failure that happens after the
 * fork (cannot bind, cannot drop privileges) as the command's exit status.
 * The child starts a new session in / with stdin, stdout and stderr on
 * /dev/null and logs to syslog from then on; when it has opened what it
 * needs, it calls daemon_ready() once. Should it exit before that (e.g.
 * msg_fatal), the parent exits with the child's exit status.
 *
 * Call it before any thread starts (fork copies only the calling thread).
 */
#ifndef BS_DAEMON_H
#define BS_DAEMON_H

#include <stdbool.h>

/* Forks. In the parent, sets *parent and returns the child's start-up status (a sysexits.h code)
 * once known. In the child, returns EX_OK with *ready_fd set for daemon_ready(), having detached
 * and switched logging to syslog as progname (borrowed, must outlive logging). EX_OSERR (logged)
 * when the pipe or fork fails. */
int daemon_detach(const char *progname, bool *parent, int *ready_fd);

/* Reports the start-up status (EX_OK: ready) to the waiting parent once and closes *ready_fd;
 * a no-op when *ready_fd is -1 (foreground, or already reported). */
void daemon_ready(int *ready_fd, int status);

#endif
