/*
 * msg - diagnostics in the Postfix style
 *
 * One line per event, "key=value" pairs after an optional queue id, written to
 * stderr in the foreground and to syslog(3) (facility mail) as a daemon.
 * Severities: info, warn (something odd, we go on), error (an operation failed,
 * we go on), fatal (broken environment at start-up: clean exit with a
 * sysexits.h code), panic (our own bug: abort with a core).
 *
 * Thread-safe: every call formats into a local buffer and writes it once.
 */
#ifndef BS_MSG_H
#define BS_MSG_H

#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sysexits.h>

/* Verbosity: 0 quiet, 1 per-message detail, 2 and up debugging. */
extern int msg_verbose;

/* Where lines go. */
typedef enum {
    MSG_TO_STDERR, /* foreground: "prog[pid]: severity: text" on stderr */
    MSG_TO_SYSLOG, /* daemon: syslog(LOG_MAIL) with the same text */
} msg_sink_t;

/* Names the program (borrowed, must outlive logging) and chooses the sink. */
void msg_open(const char *progname, msg_sink_t sink);

/* Redirect stderr-sink output to fd (tests capture log lines this way); -1 restores 2. Safe
 * while other threads log: each line goes whole to the old descriptor or the new one (which
 * is why the old one must stay open until they are done). */
void msg_set_fd(int fd);

void msg_info(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
void msg_warn(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
void msg_error(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
/* Exits with status (a sysexits.h code such as EX_CONFIG, EX_UNAVAILABLE). */
void msg_fatal(int status, const char *fmt, ...) __attribute__((format(printf, 2, 3), noreturn));
/* Aborts: for states our own code must never reach. */
void msg_panic(const char *fmt, ...) __attribute__((format(printf, 1, 2), noreturn));

/* A repeated line's rate limit: true, and *last_ms becomes now_ms, when the line is due
 * (never said: *last_ms is 0, or said every_ms or more before now_ms); false when it was
 * said less than every_ms ago. Times on one clock, in ms (a monotonic one). */
bool msg_due(int64_t *last_ms, int64_t now_ms, int64_t every_ms);

/* Bytes msg_quote() needs for a text of len bytes, so that nothing is cut: every byte
 * escaped (\xNN), the two quotes and the NUL. */
#define MSG_QUOTE_SIZE(len) (4 * (len) + 3)

/* text as a log line's value: in double quotes, with '"' and '\' escaped by '\' and
 * control bytes (below 0x20, and 0x7f) as \xNN; other bytes (UTF-8) as they are. Every
 * free-text value (a subject, a reason, an allowlist text, a name a peer sent) goes
 * through it, so that a value holding ' reach=site why=expired' reads as one value, not
 * as forged fields. Cut to fit size (at least 3; on a character, the closing quote kept);
 * NULL reads as "". Returns buf. */
const char *msg_quote(char *buf, size_t size, const char *text);
/* msg_quote() of len bytes that need not end in a NUL (a NUL among them is \x00). */
const char *msg_quote_n(char *buf, size_t size, const void *text, size_t len);

/* Debug lines, printed only when msg_verbose >= level. */
#define msg_debug(level, ...)                                                                      \
    do {                                                                                           \
        if (msg_verbose >= (level))                                                                \
            msg_info(__VA_ARGS__);                                                                 \
    } while (0)

#endif
