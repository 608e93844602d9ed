/*
 * xalloc - allocation that never returns NULL; see xalloc.h.
 */
#include "xalloc.h"

#include "msg.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

void *xmalloc(size_t len)
{
    void *p = malloc(len ? len : 1);
    if (!p)
        msg_panic("xmalloc: out of memory allocating %zu bytes", len);
    return p;
}

void *xcalloc(size_t n, size_t size)
{
    void *p = calloc(n ? n : 1, size ? size : 1);
    if (!p)
        msg_panic("xcalloc: out of memory allocating %zu x %zu bytes", n, size);
    return p;
}

void *xrealloc(void *ptr, size_t len)
{
    void *p = realloc(ptr, len ? len : 1);
    if (!p)
        msg_panic("xrealloc: out of memory allocating %zu bytes", len);
    return p;
}

char *xstrdup(const char *s)
{
    return xstrndup(s, strlen(s));
}

char *xstrndup(const char *s, size_t len)
{
    size_t n = strnlen(s, len);
    char *p = xmalloc(n + 1);
    memcpy(p, s, n);
    p[n] = '\0';
    return p;
}

char *xasprintf(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    char *out = NULL;
    int n = vasprintf(&out, fmt, ap);
    va_end(ap);
    if (n < 0)
        msg_panic("xasprintf: out of memory");
    return out;
}

void xfree(void *ptr)
{
    free(ptr);
}
