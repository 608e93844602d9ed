/*
 * msg - diagnostics in the Postfix style; see msg.h.
 *
 * Each line is formatted whole into a stack buffer and written with one
 * write(2), so lines from milter threads never interleave. Lines longer than
 * the buffer are truncated with "..." rather than split.
 */
#include "msg.h"

#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <syslog.h>
#include <unistd.h>

int msg_verbose = 0;

static const char *s_progname = "backstop"; /* prefix of every stderr line */
static msg_sink_t s_sink = MSG_TO_STDERR;   /* where lines go */
static _Atomic int s_fd = 2;                /* stderr sink's descriptor (other threads log
                                               while msg_set_fd() changes it) */

void msg_open(const char *progname, msg_sink_t sink)
{
    s_progname = progname;
    s_sink = sink;
    if (sink == MSG_TO_SYSLOG)
        openlog(progname, LOG_PID | LOG_NDELAY, LOG_MAIL);
}

void msg_set_fd(int fd)
{
    atomic_store(&s_fd, fd < 0 ? 2 : fd);
}

/* fmt is a printf format for ap: said, so that -Wformat=2 (clang) lets vsnprintf() take it */
static void s_vlog(int priority, const char *severity, const char *fmt, va_list ap)
    __attribute__((format(printf, 3, 0)));

static void s_vlog(int priority, const char *severity, const char *fmt, va_list ap)
{
    char line[2048];
    int n = 0;

    if (s_sink == MSG_TO_STDERR)
        n = snprintf(line, sizeof(line), "%s[%ld]: ", s_progname, (long)getpid());
    if (severity)
        n += snprintf(line + n, sizeof(line) - (size_t)n, "%s: ", severity);
    int body = vsnprintf(line + n, sizeof(line) - (size_t)n, fmt, ap);
    if (body < 0)
        body = 0;
    n += body;
    if ((size_t)n >= sizeof(line) - 1) {
        n = (int)sizeof(line) - 2;
        memcpy(line + n - 3, "...", 3);
    }
    if (s_sink == MSG_TO_SYSLOG) {
        line[n] = '\0';
        syslog(priority, "%s", line);
        return;
    }
    line[n++] = '\n';
    ssize_t ignored = write(atomic_load(&s_fd), line, (size_t)n);
    (void)ignored;
}

void msg_info(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    s_vlog(LOG_INFO, NULL, fmt, ap);
    va_end(ap);
}

void msg_warn(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    s_vlog(LOG_WARNING, "warning", fmt, ap);
    va_end(ap);
}

void msg_error(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    s_vlog(LOG_ERR, "error", fmt, ap);
    va_end(ap);
}

void msg_fatal(int status, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    s_vlog(LOG_CRIT, "fatal", fmt, ap);
    va_end(ap);
    exit(status);
}

void msg_panic(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    s_vlog(LOG_CRIT, "panic", fmt, ap);
    va_end(ap);
    abort();
}

bool msg_due(int64_t *last_ms, int64_t now_ms, int64_t every_ms)
{
    if (*last_ms != 0 && now_ms - *last_ms < every_ms)
        return false;
    *last_ms = now_ms;
    return true;
}

const char *msg_quote(char *buf, size_t size, const char *text)
{
    return msg_quote_n(buf, size, text, text ? strlen(text) : 0);
}

const char *msg_quote_n(char *buf, size_t size, const void *text, size_t len_in)
{
    static const char hex[] = "0123456789abcdef";
    size_t n = 0, whole = 1; /* bytes written; the end of the last whole character */
    if (size < 3) {
        if (size)
            buf[0] = '\0';
        return buf;
    }
    buf[n++] = '"';
    const unsigned char *t = text, *end = t ? t + len_in : t;
    for (const unsigned char *p = t; p < end; p++) {
        char esc[4];
        size_t len = 0;
        if (*p == '"' || *p == '\\') {
            esc[len++] = '\\';
            esc[len++] = (char)*p;
        } else if (*p < 0x20 || *p == 0x7f) {
            esc[len++] = '\\';
            esc[len++] = 'x';
            esc[len++] = hex[*p >> 4];
            esc[len++] = hex[*p & 15];
        } else {
            esc[len++] = (char)*p;
        }
        if (n + len + 2 > size) {
            /* no room: end on a whole character (not inside a UTF-8 sequence) */
            if ((*p & 0xc0) == 0x80)
                n = whole;
            break;
        }
        memcpy(buf + n, esc, len);
        n += len;
        if (p + 1 == end || (p[1] & 0xc0) != 0x80)
            whole = n;
    }
    buf[n++] = '"';
    buf[n] = '\0';
    return buf;
}
