/* test_ledger - outbound Message-IDs and senders vouch for bounces within the TTL, survive a
 * reopen, and nothing readable is stored. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "ledger.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define DAY_MS (24LL * 3600 * 1000)

static void test_message_id_vouches_within_ttl(void **state)
{
    ledger_t *l = ledger_new(NULL, 7 * DAY_MS, NULL, 0);
    ledger_add(l, "<abc@site.example>", "user@site.example", 1000);
    assert_true(ledger_has_message_id(l, "abc@site.example", 2000));
    assert_true(ledger_has_message_id(l, " <ABC@site.example> ", 2000));
    assert_false(ledger_has_message_id(l, "abd@site.example", 2000));
    assert_false(ledger_has_message_id(l, "abc@site.example", 1000 + 7 * DAY_MS));
    assert_true(ledger_has_sender(l, "User@Site.example", 2000));
    assert_false(ledger_has_sender(l, "abc@site.example", 2000)); /* ids and senders apart */
    ledger_destroy(&l);
    assert_null(l);
    ledger_destroy(&l);
}

static void test_empty_values_are_ignored(void **state)
{
    ledger_t *l = ledger_new(NULL, DAY_MS, NULL, 0);
    ledger_add(l, NULL, "", 0);
    assert_int_equal(ledger_count(l), 0);
    assert_false(ledger_has_sender(l, "", 0));
    assert_false(ledger_has_message_id(l, NULL, 0));
    ledger_destroy(&l);
}

static void test_expire_forgets_old_entries(void **state)
{
    ledger_t *l = ledger_new(NULL, DAY_MS, NULL, 0);
    for (int i = 0; i < 5000; i++) {
        char id[64];
        snprintf(id, sizeof(id), "m%d@x", i);
        ledger_add(l, id, NULL, i < 2500 ? 0 : DAY_MS);
    }
    assert_int_equal(ledger_count(l), 5000);
    assert_int_equal(ledger_expire(l, DAY_MS + 1), 2500);
    assert_int_equal(ledger_count(l), 2500);
    assert_true(ledger_has_message_id(l, "m4999@x", DAY_MS + 1));
    ledger_destroy(&l);
}

static void test_persists_salted_hashes_only(void **state)
{
    char dir[] = "/tmp/test_ledger.XXXXXX";
    assert_non_null(mkdtemp(dir));
    char path[128], cmd[256];
    snprintf(path, sizeof(path), "%s/db", dir);
    char err[256];
    ledger_t *l = ledger_new(path, 7 * DAY_MS, err, sizeof(err));
    assert_non_null(l);
    ledger_add(l, "secret-id-1@site.example", "alice@site.example", 1000);
    ledger_destroy(&l);
    snprintf(cmd, sizeof(cmd), "grep -rqa -e secret-id-1 -e alice %s", dir);
    assert_int_not_equal(system(cmd), 0);
    l = ledger_new(path, 7 * DAY_MS, err, sizeof(err));
    assert_non_null(l);
    assert_true(ledger_has_message_id(l, "secret-id-1@site.example", 2000));
    assert_true(ledger_has_sender(l, "alice@site.example", 2000));
    ledger_destroy(&l);
    snprintf(cmd, sizeof(cmd), "rm -rf %s", dir);
    assert_int_equal(system(cmd), 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_message_id_vouches_within_ttl),
        cmocka_unit_test(test_empty_values_are_ignored),
        cmocka_unit_test(test_expire_forgets_old_entries),
        cmocka_unit_test(test_persists_salted_hashes_only),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
