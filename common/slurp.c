/*
 * slurp - read a whole file with a size bound; see slurp.h.
 */
#include "slurp.h"

#include "xalloc.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

char *slurp_file(const char *path, size_t max_bytes, slurp_large_t large, size_t *len_out,
                 int *truncated, char *err, size_t errlen)
{
    if (truncated)
        *truncated = 0;
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
        snprintf(err, errlen, "cannot open: %s", strerror(errno));
        return NULL;
    }
    struct stat st;
    if (fstat(fd, &st) < 0 || !S_ISREG(st.st_mode)) {
        snprintf(err, errlen, "not a regular file");
        close(fd);
        return NULL;
    }
    /* the size is a hint (the file may grow while we read): the loop enforces the bound */
    size_t cap = (size_t)st.st_size < max_bytes ? (size_t)st.st_size : max_bytes;
    size_t n = 0;
    char *buf = xmalloc(cap + 1);
    for (;;) {
        if (n == cap) {
            if (cap >= max_bytes) {
                char probe;
                ssize_t more = read(fd, &probe, 1);
                if (more <= 0)
                    break;
                if (large == SLURP_TRUNCATE_LARGE) {
                    if (truncated)
                        *truncated = 1;
                    break;
                }
                snprintf(err, errlen, "larger than %zu bytes", max_bytes);
                xfree(buf);
                close(fd);
                return NULL;
            }
            cap = cap < 4096 ? 4096 : cap * 2;
            if (cap > max_bytes)
                cap = max_bytes;
            buf = xrealloc(buf, cap + 1);
        }
        ssize_t got = read(fd, buf + n, cap - n);
        if (got < 0 && errno == EINTR)
            continue;
        if (got < 0) {
            snprintf(err, errlen, "read error: %s", strerror(errno));
            xfree(buf);
            close(fd);
            return NULL;
        }
        if (got == 0)
            break;
        n += (size_t)got;
    }
    close(fd);
    buf[n] = '\0';
    *len_out = n;
    return buf;
}
