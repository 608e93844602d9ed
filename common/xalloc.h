/*
 * xalloc - memory allocation that never returns NULL
 *
 * As Postfix's mymalloc: running out of memory is not a condition callers can
 * handle usefully, so these panic instead of returning NULL and callers never
 * check. xfree(NULL) is a no-op.
 */
#ifndef BS_XALLOC_H
#define BS_XALLOC_H

#include <stddef.h>

void *xmalloc(size_t len);
void *xcalloc(size_t n, size_t size);
void *xrealloc(void *ptr, size_t len);
char *xstrdup(const char *s);
/* Copies at most len bytes of s and terminates the copy. */
char *xstrndup(const char *s, size_t len);
/* printf into a new string owned by the caller. */
char *xasprintf(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
void xfree(void *ptr);

#endif
