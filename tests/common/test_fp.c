/* test_fp - SipHash-2-4 matches the reference vectors; the fleet key is pinned. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <string.h>

#include "fp.h"

/* Vectors of the SipHash paper / reference implementation: key 00..0f,
   message 00 01 .. (len-1). */
static const struct {
    size_t len;      /* message length */
    uint64_t expect; /* SipHash-2-4 */
} s_vectors[] = {
    {0, 0x726fdb47dd0e0e31ULL}, {1, 0x74f839c593dc67fdULL},  {2, 0x0d6c8009d9a94f5aULL},
    {8, 0x93f5f5799a932462ULL}, {15, 0xa129ca6149be45e5ULL},
};

static void test_reference_vectors(void **state)
{
    unsigned char key[16], msg[64];
    for (int i = 0; i < 16; i++)
        key[i] = (unsigned char)i;
    for (int i = 0; i < 64; i++)
        msg[i] = (unsigned char)i;
    for (size_t i = 0; i < sizeof(s_vectors) / sizeof(*s_vectors); i++)
        assert_int_equal(fp_siphash24(key, msg, s_vectors[i].len), s_vectors[i].expect);
}

static void test_fleet_key_is_pinned(void **state)
{
    assert_int_equal(FP_KEY_LEN, 16);
    assert_memory_equal(FP_KEY, "backstop-fp-v1\0\0", 16);
    /* the text fingerprint is SipHash under that key, without the NUL */
    assert_int_equal(fp_text("cheap meds #"),
                     fp_siphash24((const unsigned char *)"backstop-fp-v1\0\0", "cheap meds #", 12));
    assert_int_equal(fp_text("cheap meds #"), fp_bytes("cheap meds #", 12));
}

static void test_different_texts_differ(void **state)
{
    assert_true(fp_text("cheap meds #") != fp_text("cheap meds"));
    assert_true(fp_text("") != fp_text(" "));
}

static void test_hex_is_16_lowercase_digits(void **state)
{
    char out[FP_HEX_SIZE];
    assert_string_equal(fp_hex(0xa129ca6149be45e5ULL, out), "a129ca6149be45e5");
    assert_string_equal(fp_hex(1, out), "0000000000000001");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_reference_vectors),
        cmocka_unit_test(test_fleet_key_is_pinned),
        cmocka_unit_test(test_different_texts_differ),
        cmocka_unit_test(test_hex_is_16_lowercase_digits),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
