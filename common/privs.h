/*
 * privs - dropping root after start-up, as Postfix daemons do
 *
 * A daemon started as root opens what needs root first (sockets, its data
 * directory), then becomes an unprivileged user before it reads any
 * untrusted input (pre-init, drop, post-init). Files the daemon keeps
 * writing after the drop (a LevelDB directory made during pre-init) are
 * handed to that user first.
 *
 * Not thread-safe: call it before any thread starts.
 */
#ifndef BS_PRIVS_H
#define BS_PRIVS_H

/*
 * Becomes user (setgid, initgroups, setuid) and checks root cannot be
 * regained. Before that, hands each path in trees (NULL-terminated; a file, or
 * a directory with everything below it, down to two levels) to the user.
 * user NULL or "" keeps the current user. Started as another user than root,
 * it only warns when user differs and carries on. what names the caller in log
 * lines. Returns EX_OK or a sysexits.h code (EX_NOUSER, EX_OSERR), having
 * logged why.
 */
int privs_drop(const char *what, const char *user, const char *const *trees);

#endif
