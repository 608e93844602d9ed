/* test_enforce - the safety rules: class, ledger, observe, strongest action. Table-driven. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "enforce.h"

#include <stdio.h>
#include <string.h>

typedef struct {
    const char *name;    /* the behaviour */
    int origin;          /* of the one decision on key 1 */
    int action;          /* its action */
    bool observe;        /* its mode */
    bool all_mail;       /* its reach over classes */
    bool class_enforced; /* the message is bounce-class */
    bool ledger_hit;     /* the ledger vouches */
    int want_action;     /* expected verdict */
    bool want_observed;  /* an observe match reported */
    bool want_spared;    /* a spared decision reported */
} s_case_t;

static const s_case_t s_cases[] = {
    {"bounce meets a rule decision", DCACHE_ORIGIN_RULE, DCACHE_ACTION_REJECT, false, false, true,
     false, DCACHE_ACTION_REJECT, false, false},
    {"normal mail is spared", DCACHE_ORIGIN_RULE, DCACHE_ACTION_REJECT, false, false, false, false,
     0, false, true},
    {"all_mail applies to normal mail", DCACHE_ORIGIN_CLI, DCACHE_ACTION_REJECT, false, true, false,
     false, DCACHE_ACTION_REJECT, false, false},
    {"ledger spares a rule decision", DCACHE_ORIGIN_RULE, DCACHE_ACTION_REJECT, false, false, true,
     true, 0, false, true},
    {"ledger spares a local decision", DCACHE_ORIGIN_LOCAL, DCACHE_ACTION_TEMPFAIL, false, false,
     true, true, 0, false, true},
    {"ledger does not spare an operator", DCACHE_ORIGIN_CLI, DCACHE_ACTION_REJECT, false, false,
     true, true, DCACHE_ACTION_REJECT, false, false},
    {"ledger still allows a tag", DCACHE_ORIGIN_RULE, DCACHE_ACTION_TAG, false, false, true, true,
     DCACHE_ACTION_TAG, false, false},
    {"observe only reports", DCACHE_ORIGIN_RULE, DCACHE_ACTION_REJECT, true, false, true, false, 0,
     true, false},
    {"tempfail", DCACHE_ORIGIN_RULE, DCACHE_ACTION_TEMPFAIL, false, false, true, false,
     DCACHE_ACTION_TEMPFAIL, false, false},
};

static void s_add(dcache_t *c, const char *id, uint64_t fp, int origin, int action, bool observe,
                  bool all_mail)
{
    dcache_entry_t e;
    memset(&e, 0, sizeof(e));
    snprintf(e.id, sizeof(e.id), "%s", id);
    e.scope = DCACHE_SCOPE_SUBJECT;
    e.fp = fp;
    e.origin = origin;
    e.action = action;
    e.observe = observe;
    e.all_mail = all_mail;
    e.expires_ms = 10000;
    dcache_upsert(c, &e);
}

static void test_table(void **state)
{
    for (size_t i = 0; i < sizeof(s_cases) / sizeof(s_cases[0]); i++) {
        const s_case_t *t = &s_cases[i];
        dcache_t *c = dcache_new(NULL, NULL, 0);
        s_add(c, "D1", 1, t->origin, t->action, t->observe, t->all_mail);
        enforce_input_t in;
        memset(&in, 0, sizeof(in));
        enforce_add_key(&in, DCACHE_SCOPE_SUBJECT, 1, "k");
        in.class_enforced = t->class_enforced;
        in.ledger_hit = t->ledger_hit;
        enforce_verdict_t v;
        enforce_decide(c, &in, 5000, &v);
        printf("case: %s\n", t->name);
        assert_int_equal(v.action, t->want_action);
        if (t->want_action)
            assert_string_equal(v.decision.id, "D1");
        assert_int_equal(v.observed, t->want_observed);
        assert_int_equal(v.spared_ledger || v.spared_class, t->want_spared);
        dcache_destroy(&c);
    }
}

static void test_strongest_action_wins(void **state)
{
    dcache_t *c = dcache_new(NULL, NULL, 0);
    s_add(c, "TAG", 1, DCACHE_ORIGIN_RULE, DCACHE_ACTION_TAG, false, false);
    s_add(c, "REJ", 2, DCACHE_ORIGIN_RULE, DCACHE_ACTION_REJECT, false, false);
    s_add(c, "TMP", 3, DCACHE_ORIGIN_RULE, DCACHE_ACTION_TEMPFAIL, false, false);
    enforce_input_t in;
    memset(&in, 0, sizeof(in));
    enforce_add_key(&in, DCACHE_SCOPE_SUBJECT, 1, NULL);
    enforce_add_key(&in, DCACHE_SCOPE_SUBJECT, 3, NULL);
    enforce_add_key(&in, DCACHE_SCOPE_SUBJECT, 2, NULL);
    in.class_enforced = true;
    enforce_verdict_t v;
    enforce_decide(c, &in, 0, &v);
    assert_int_equal(v.action, DCACHE_ACTION_REJECT);
    assert_string_equal(v.decision.id, "REJ");
    dcache_destroy(&c);
}

static void test_expired_decision_does_nothing(void **state)
{
    dcache_t *c = dcache_new(NULL, NULL, 0);
    s_add(c, "D1", 1, DCACHE_ORIGIN_RULE, DCACHE_ACTION_REJECT, false, false);
    enforce_input_t in;
    memset(&in, 0, sizeof(in));
    enforce_add_key(&in, DCACHE_SCOPE_SUBJECT, 1, NULL);
    in.class_enforced = true;
    enforce_verdict_t v;
    enforce_decide(c, &in, 10000, &v);
    assert_int_equal(v.action, 0);
    dcache_destroy(&c);
}

static void test_keys_are_bounded(void **state)
{
    enforce_input_t in;
    memset(&in, 0, sizeof(in));
    for (int i = 0; i < ENFORCE_MAX_KEYS + 3; i++)
        enforce_add_key(&in, DCACHE_SCOPE_SUBJECT, (uint64_t)i, NULL);
    assert_int_equal(in.nkeys, ENFORCE_MAX_KEYS);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_table),
        cmocka_unit_test(test_strongest_action_wins),
        cmocka_unit_test(test_expired_decision_does_nothing),
        cmocka_unit_test(test_keys_are_bounded),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
