/*
 * bigmem - large zeroed tables on transparent huge pages
 *
 * The aggregator's hash tables are hundreds of MB probed at random: with 4 kB
 * pages nearly every probe also misses the TLB, and under a hypervisor a TLB
 * miss is a two-level page walk that costs more than the cache miss itself.
 * bigmem maps a table on its own, aligned to 2 MB and marked MADV_HUGEPAGE,
 * so the kernel backs it with 2 MB pages where it can (transparent_hugepage
 * "always" or "madvise"; with "never" it is an ordinary mapping). Small
 * sizes come from calloc. Memory is zeroed, as calloc's; pages not touched
 * yet cost no RSS (a touched huge page costs 2 MB).
 *
 * Never NULL: like xalloc, running out of memory panics.
 */
#ifndef BS_BIGMEM_H
#define BS_BIGMEM_H

#include <stddef.h>

/* n * size zeroed bytes; free with bigmem_free(p, n * size). */
void *bigmem_calloc(size_t n, size_t size);
/* Frees what bigmem_calloc returned for that byte size; NULL is a no-op. */
void bigmem_free(void *p, size_t bytes);

/* Backs the bytes bigmem_calloc returned with memory now, their contents unchanged (zero):
 * madvise(MADV_POPULATE_WRITE), or on a kernel before 5.14 a write to each page. For a
 * table that will fill anyway: its page faults are taken here, at once, and not one at a
 * time in a hot path as keys arrive. A page's first touch is dear under a hypervisor (on
 * the 2-core test VM 136 MB took 188 ms the first time, 7 ms when the host had already
 * backed the memory). Returns 0, or -1 with errno when the kernel could not back it all
 * (the rest is backed as it is touched, as without this). */
int bigmem_populate(void *p, size_t bytes);

#endif
