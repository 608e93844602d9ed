/* test_bigmem - large tables: zeroed, writable end to end, 2 MB aligned when large. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>
#include <cmocka.h>

#include "bigmem.h"

static void test_bigmem_sizes_are_zeroed_and_writable(void **state)
{
    static const struct {
        size_t n, size; /* request */
        int huge;       /* expect a 2 MB aligned mapping */
    } cases[] = {
        {0, 8, 0},        /* empty: still a pointer */
        {1, 1, 0},        /* tiny: calloc */
        {1000, 104, 0},   /* below 2 MB */
        {20165, 104, 1},  /* just above 2 MB, not a multiple of it */
        {3u << 20, 1, 1}, /* 3 MB of bytes */
        {100000, 104, 1}, /* about 10 MB of table */
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        size_t bytes = cases[i].n * cases[i].size;
        uint8_t *p = bigmem_calloc(cases[i].n, cases[i].size);
        assert_non_null(p);
        if (cases[i].huge && ((uintptr_t)p & ((2u << 20) - 1)) != 0)
            fail_msg("case %zu: %p is not 2 MB aligned", i, (void *)p);
        for (size_t j = 0; j < bytes; j += 4093)
            if (p[j] != 0)
                fail_msg("case %zu: byte %zu not zero", i, j);
        if (bytes) {
            assert_int_equal(p[bytes - 1], 0);
            memset(p, 0xA5, bytes); /* every byte is ours (ASan checks the small ones) */
        }
        bigmem_free(p, bytes);
    }
    bigmem_free(NULL, 1u << 30); /* no-op */
}

/* How many of the pages holding bytes [p, p + len) are resident (mincore). */
static size_t s_resident_pages(const void *p, size_t len)
{
    size_t pg = (size_t)sysconf(_SC_PAGESIZE);
    uintptr_t lo = (uintptr_t)p & ~(uintptr_t)(pg - 1);
    size_t n = ((uintptr_t)p + len - lo + pg - 1) / pg;
    unsigned char *vec = calloc(n, 1);
    assert_non_null(vec);
    assert_int_equal(mincore((void *)lo, n * pg, vec), 0);
    size_t in = 0;
    for (size_t i = 0; i < n; i++)
        in += vec[i] & 1;
    free(vec);
    return in;
}

/* bigmem_populate() backs every page at once and leaves the bytes zero, for a huge-page
 * table and for a small (calloc) one alike. */
static void test_bigmem_populate_backs_the_pages_at_once(void **state)
{
    (void)state;
    static const size_t sizes[] = {16u << 20, (1u << 20) + 4093};
    size_t pg = (size_t)sysconf(_SC_PAGESIZE);
    for (size_t i = 0; i < sizeof(sizes) / sizeof(sizes[0]); i++) {
        uint8_t *p = bigmem_calloc(sizes[i], 1);
        size_t pages = (sizes[i] + pg - 1) / pg;
        /* a mapping of its own starts unbacked (calloc's memory may not: it may reuse) */
        if (sizes[i] >= (2u << 20) && s_resident_pages(p, sizes[i]) >= pages)
            fail_msg("size %zu: every page resident before populating", sizes[i]);
        assert_int_equal(bigmem_populate(p, sizes[i]), 0);
        size_t in = s_resident_pages(p, sizes[i]);
        if (in < pages)
            fail_msg("size %zu: %zu of its pages resident after populating", sizes[i], in);
        for (size_t j = 0; j < sizes[i]; j += 4093)
            if (p[j] != 0)
                fail_msg("size %zu: byte %zu not zero", sizes[i], j);
        assert_int_equal(p[sizes[i] - 1], 0);
        bigmem_free(p, sizes[i]);
    }
    assert_int_equal(bigmem_populate(NULL, 0), 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_bigmem_sizes_are_zeroed_and_writable),
        cmocka_unit_test(test_bigmem_populate_backs_the_pages_at_once),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
