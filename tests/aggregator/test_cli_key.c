/* test_cli_key - typed keys become the text a sensor hashes: subjects normalised, addresses
 * and networks canonical, domains lower case, site names checked; and the scope names. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <cmocka.h>

#include "cli_key.h"
#include "fp.h"
#include "xalloc.h"

typedef struct {
    bs_scope_t scope;  /* scope */
    const char *value; /* as typed */
    const char *text;  /* canonical text, NULL: refused */
} s_case_t;

static const s_case_t s_cases[] = {
    {BS_SCOPE_SUBJECT, "Undeliverable: Cheap meds 123", "cheap meds #"},
    {BS_SCOPE_SUBJECT, "cheap meds #", "cheap meds #"}, /* idempotent */
    {BS_SCOPE_ORIG_SUBJECT, "=?UTF-8?B?Q2hlYXAgbWVkcyA0?=", "cheap meds #"},
    {BS_SCOPE_SUBJECT, "Undeliverable:", NULL},
    {BS_SCOPE_SUBJECT, "", NULL},
    {BS_SCOPE_CLIENT_IP, "[192.0.2.1]", "192.0.2.1"},
    {BS_SCOPE_CLIENT_IP, "IPv6:2001:DB8:0::1", "2001:db8::1"},
    {BS_SCOPE_CLIENT_IP, "::ffff:192.0.2.1", "192.0.2.1"},
    {BS_SCOPE_CLIENT_IP, "192.0.2.256", NULL},
    {BS_SCOPE_CLIENT_NET, "192.0.2.0/24", "192.0.2.0/24"},
    {BS_SCOPE_CLIENT_NET, "192.0.2.5/24", NULL},
    {BS_SCOPE_CLIENT_NET, "nonsense", NULL},
    {BS_SCOPE_SUBJECT_IP, "Re: Hello 5|[192.0.2.9]", "hello #|192.0.2.9"},
    {BS_SCOPE_SUBJECT_IP, "hello", NULL},
    {BS_SCOPE_SUBJECT_IP, "hello|nope", NULL},
    {BS_SCOPE_SENDER_DOMAIN, "Mail.Example.COM.", "mail.example.com"},
    {BS_SCOPE_SENDER_DOMAIN, "a..b", NULL},
    {BS_SCOPE_SENDER_DOMAIN, "bad domain", NULL},
    {BS_SCOPE_SITE, "site-01.eu_west", "site-01.eu_west"},
    {BS_SCOPE_SITE, "a/b", NULL},
    {BS_SCOPE_UNKNOWN, "x", NULL},
};

static void test_key_texts(void **state)
{
    (void)state;
    for (size_t i = 0; i < sizeof(s_cases) / sizeof(s_cases[0]); i++) {
        char err[200] = "";
        char *t = cli_key_text(s_cases[i].scope, s_cases[i].value, err, sizeof(err));
        if (s_cases[i].text == NULL) {
            if (t != NULL)
                fail_msg("\"%s\" accepted as \"%s\"", s_cases[i].value, t);
            assert_true(err[0] != '\0');
        } else {
            if (t == NULL)
                fail_msg("\"%s\" refused: %s", s_cases[i].value, err);
            assert_string_equal(t, s_cases[i].text);
        }
        xfree(t);
    }
}

static void test_too_long_refused(void **state)
{
    (void)state;
    char value[400] = "", err[200];
    for (int i = 0; i < 70; i++)
        strcat(value, "word ");
    assert_null(cli_key_text(BS_SCOPE_SUBJECT, value, err, sizeof(err)));
    assert_non_null(strstr(err, "longer"));
}

static void test_fp_is_the_sensors(void **state)
{
    (void)state;
    assert_true(cli_key_fp("cheap meds #") == fp_text("cheap meds #"));
}

static void test_scope_names(void **state)
{
    (void)state;
    static const struct {
        const char *name; /* typed */
        int scope;        /* parsed */
    } cases[] = {{"ip", BS_SCOPE_CLIENT_IP},
                 {"client_ip", BS_SCOPE_CLIENT_IP},
                 {"net", BS_SCOPE_CLIENT_NET},
                 {"subject", BS_SCOPE_SUBJECT},
                 {"domain", BS_SCOPE_SENDER_DOMAIN},
                 {"site", BS_SCOPE_SITE},
                 {"unknown", -1},
                 {"", -1}};
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++)
        assert_int_equal(cli_key_scope_parse(cases[i].name), cases[i].scope);
    assert_int_equal(cli_key_scope_parse(NULL), -1);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_key_texts),
        cmocka_unit_test(test_too_long_refused),
        cmocka_unit_test(test_fp_is_the_sensors),
        cmocka_unit_test(test_scope_names),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
