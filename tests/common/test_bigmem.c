/* test_bigmem - large tables: zeroed, writable end to end, 2 MB aligned when large. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
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

/* Resident memory of this process, in bytes (/proc/self/statm). */
static size_t s_rss(void)
{
    FILE *fp = fopen("/proc/self/statm", "r");
    assert_non_null(fp);
    unsigned long size = 0, resident = 0;
    assert_int_equal(fscanf(fp, "%lu %lu", &size, &resident), 2);
    fclose(fp);
    return (size_t)resident * (size_t)sysconf(_SC_PAGESIZE);
}

/* bigmem_populate() backs every page at once and leaves the bytes zero, for a huge-page
 * table and for a small (calloc) one alike. */
static void test_bigmem_populate_backs_the_pages_at_once(void **state)
{
    (void)state;
    static const size_t sizes[] = {16u << 20, (1u << 20) + 4093};
    for (size_t i = 0; i < sizeof(sizes) / sizeof(sizes[0]); i++) {
        uint8_t *p = bigmem_calloc(sizes[i], 1);
        size_t before = s_rss();
        assert_int_equal(bigmem_populate(p, sizes[i]), 0);
        size_t grown = s_rss() - before;
        if (grown < sizes[i] - 4096)
            fail_msg("%zu bytes populated, the process grew %zu", sizes[i], grown);
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
