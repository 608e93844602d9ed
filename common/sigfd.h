/*
 * sigfd - a daemon's signals as a descriptor its event loop polls
 *
 * sigfd_open() blocks the signals it is given in the calling thread and
 * returns a signalfd(2) that reads them. Every thread started afterwards
 * inherits the blocked mask (and so do the threads those start: ZeroMQ's I/O
 * threads, LevelDB's compaction thread, the store's writer), so no handler
 * ever runs and no thread is ever interrupted: a signal stays pending in the
 * process until the loop reads it from the descriptor, one that came before
 * the loop first looked included (a SIGTERM during a long start is not lost).
 * Standard signals do not queue: several of one kind pending read as one.
 *
 * What it promises: the mask is set before the descriptor exists, so a signal
 * is either taken by its default action (before the call) or read (after).
 * Call it before any thread starts: a thread made earlier keeps its own mask
 * and the kernel may hand it the signal. A program exec'd from a thread with
 * the mask inherits it blocked (the daemons exec nothing).
 *
 * Linux only (signalfd); this module is the one place that depends on it.
 */
#ifndef BS_SIGFD_H
#define BS_SIGFD_H

#include <sys/types.h>

/* Blocks the signals of sigs (a list ended by 0) in the calling thread and returns a
 * non-blocking, close-on-exec descriptor that reads them; -1 with errno when the kernel
 * refuses (the mask is then restored). */
int sigfd_open(const int *sigs);

/* The next pending signal of fd: its number, with the sender's pid in *pid_p (0 when
 * the kernel sent it; pid_p may be NULL). 0 when none is pending, -1 with errno on an
 * error. Never blocks. */
int sigfd_take(int fd, pid_t *pid_p);

/* Closes *fd_p and sets it to -1; safe twice. The signals stay blocked. */
void sigfd_close(int *fd_p);

#endif
