/*
 * bigmem - large zeroed tables on transparent huge pages (see bigmem.h)
 *
 * A request of at least S_MIN bytes is an anonymous mapping of the size
 * rounded up to S_HUGE plus one S_HUGE of slack, trimmed so the table starts
 * on a 2 MB boundary (the kernel only gives huge pages to aligned 2 MB
 * ranges), then madvise(MADV_HUGEPAGE). Smaller requests use calloc; the size
 * passed to bigmem_free tells which.
 */
#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <sys/mman.h>
#include <unistd.h>

#include "bigmem.h"
#include "msg.h"
#include "xalloc.h"

#define S_HUGE ((size_t)2 << 20)
#define S_MIN  S_HUGE

static size_t s_round(size_t bytes)
{
    return (bytes + S_HUGE - 1) & ~(S_HUGE - 1);
}

void *bigmem_calloc(size_t n, size_t size)
{
    if (size && n > SIZE_MAX / size)
        msg_panic("bigmem_calloc: %zu x %zu overflows", n, size);
    size_t bytes = n * size;
    if (bytes < S_MIN)
        return xcalloc(n ? n : 1, size ? size : 1);
    size_t len = s_round(bytes);
    uint8_t *p =
        mmap(NULL, len + S_HUGE, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (p == MAP_FAILED)
        msg_panic("bigmem_calloc: cannot map %zu bytes: %m", len);
    uint8_t *a = (uint8_t *)(((uintptr_t)p + S_HUGE - 1) & ~(uintptr_t)(S_HUGE - 1));
    if (a > p)
        munmap(p, (size_t)(a - p));
    if (a + len < p + len + S_HUGE)
        munmap(a + len, (size_t)(p + len + S_HUGE - (a + len)));
    /* advice only: a kernel without THP still gives a working (4 kB) mapping */
    (void)madvise(a, len, MADV_HUGEPAGE);
    return a;
}

void bigmem_free(void *p, size_t bytes)
{
    if (p == NULL)
        return;
    if (bytes < S_MIN) {
        xfree(p);
        return;
    }
    munmap(p, s_round(bytes));
}

/* Linux 5.14; older headers lack it */
#ifndef MADV_POPULATE_WRITE
#define MADV_POPULATE_WRITE 23
#endif

int bigmem_populate(void *p, size_t bytes)
{
    if (p == NULL || bytes == 0)
        return 0;
    if (bytes >= S_MIN) {
        if (madvise(p, s_round(bytes), MADV_POPULATE_WRITE) == 0)
            return 0;
        /* ENOMEM and the like: the kernel cannot back it now; only an older kernel's
         * EINVAL is worth the touching below */
        if (errno != EINVAL)
            return -1;
    }
    /* one write a page: the memory is zero and stays so */
    long pg = sysconf(_SC_PAGESIZE);
    size_t step = pg > 0 ? (size_t)pg : 4096;
    volatile uint8_t *b = p;
    for (size_t i = 0; i < bytes; i += step)
        b[i] = 0;
    b[bytes - 1] = 0;
    return 0;
}
