/* test_rules - every rule field: thresholds, sites, shares, window, reach, event filters. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <cmocka.h>

#include "rules.h"

#define SEC 1000LL
#define T0  (1700000000LL * SEC)

static const window_key_t K = {.scope = BS_SCOPE_SUBJECT, .fp = 0xABCD};

static rule_t s_fleet(void)
{
    rule_t r = {
        .name = "t_fleet",
        .scope = BS_SCOPE_SUBJECT,
        .window_ms = 120 * SEC,
        .min_events = 10,
        .min_sites = 3,
        .max_site_share = 0.6,
        .ttl_ms = 3600 * SEC,
        .action = BS_ACTION_REJECT,
        .reach = BS_REACH_FLEET,
    };
    return r;
}

static window_t *s_window(void)
{
    window_config_t cfg = {.bucket_ms = 10 * SEC, .span_ms = 300 * SEC};
    window_t *w = window_new(&cfg);
    const char *names[] = {"a", "b", "c", "d"};
    for (size_t i = 0; i < 4; i++)
        window_site_intern(w, names[i]);
    return w;
}

/* Adds n events of K from site at t. */
static void s_add(window_t *w, unsigned site, int n, int64_t t)
{
    for (int i = 0; i < n; i++)
        window_add(w, &K, site, t, "cheap pills", 11);
}

static void test_rules_defaults_are_valid_and_as_documented(void **state)
{
    size_t n;
    const rule_t *r = rules_defaults(&n);
    assert_int_equal(n, 4);
    char err[128];
    for (size_t i = 0; i < n; i++)
        assert_int_equal(rules_check(&r[i], err, sizeof(err)), 0);
    assert_string_equal(r[0].name, "fleet_subject");
    assert_int_equal(r[0].min_events, 400);
    assert_int_equal(r[0].window_ms, 120 * SEC);
    assert_int_equal(r[0].min_sites, 3);
    assert_true(r[0].max_site_share == 0.6);
    assert_int_equal(r[2].scope, BS_SCOPE_CLIENT_IP);
    assert_int_equal(r[2].action, BS_ACTION_TEMPFAIL);
    assert_int_equal(r[3].reach, BS_REACH_LOCAL);
    assert_true(r[3].require_rule_match);
    /* every default window fits the default 300 s span of 10 s buckets */
    for (size_t i = 0; i < n; i++)
        assert_true(r[i].window_ms <= 300 * SEC && r[i].window_ms % (10 * SEC) == 0);
}

static void test_rules_check_rejects_each_bad_field(void **state)
{
    static const struct {
        const char *what; /* field broken */
        int field;        /* which */
    } cases[] = {{"name", 0},   {"scope", 1},  {"window", 2},   {"min_events", 3},
                 {"reach", 4},  {"share0", 5}, {"share>1", 6},  {"ttl", 7},
                 {"action", 8}, {"mode", 9},   {"classes", 10}, {"min_sites", 11}};
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        rule_t r = s_fleet();
        switch (cases[i].field) {
        case 0:
            r.name[0] = 0;
            break;
        case 1:
            r.scope = BS_SCOPE_SITE;
            break;
        case 2:
            r.window_ms = 0;
            break;
        case 3:
            r.min_events = 0;
            break;
        case 4:
            r.reach = BS_REACH_UNKNOWN;
            break;
        case 5:
            r.max_site_share = 0;
            break;
        case 6:
            r.max_site_share = 1.5;
            break;
        case 7:
            r.ttl_ms = 0;
            break;
        case 8:
            r.action = BS_ACTION_NONE;
            break;
        case 9:
            r.mode = (bs_mode_t)7;
            break;
        case 10:
            r.classes = 1u << 9;
            break;
        case 11:
            r.min_sites = 0;
            break;
        }
        char err[128] = "";
        if (rules_check(&r, err, sizeof(err)) != -1)
            fail_msg("case %s accepted", cases[i].what);
        assert_non_null(strstr(err, "rule "));
    }
}

static void test_rules_counts_classes_matches_and_ledger(void **state)
{
    rule_t plain = s_fleet();
    rule_t matched = s_fleet();
    matched.require_rule_match = true;
    rule_t autoreply = s_fleet();
    autoreply.classes = (1u << BS_CLASS_BOUNCE) | (1u << BS_CLASS_AUTOREPLY);
    static const struct {
        int rule;       /* 0 plain, 1 require_rule_match, 2 bounce+autoreply */
        bs_class_t cls; /* event class */
        bool matched;   /* content rules matched */
        bool ledger;    /* ledger vouched */
        bool counts;    /* expected */
    } cases[] = {
        {0, BS_CLASS_BOUNCE, false, false, true},
        {0, BS_CLASS_NORMAL, false, false, false},
        {0, BS_CLASS_AUTOREPLY, false, false, false},
        {0, BS_CLASS_BOUNCE, false, true, false}, /* legitimate bounce */
        {1, BS_CLASS_BOUNCE, false, false, false},
        {1, BS_CLASS_BOUNCE, true, false, true},
        {1, BS_CLASS_BOUNCE, true, true, false},
        {2, BS_CLASS_AUTOREPLY, false, false, true},
        {2, BS_CLASS_MDN, false, false, false},
        {0, (bs_class_t)42, false, false, false}, /* out of range */
    };
    const rule_t *rules[] = {&plain, &matched, &autoreply};
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        bool got =
            rules_counts(rules[cases[i].rule], cases[i].cls, cases[i].matched, cases[i].ledger);
        if (got != cases[i].counts)
            fail_msg("case %zu: got %d", i, got);
    }
}

/* Table over thresholds: events per site (a, b, c, d) at T0, expected verdict. */
static void test_rules_fleet_thresholds(void **state)
{
    static const struct {
        int per_site[4];        /* events from sites a..d */
        rules_verdict_t expect; /* verdict of s_fleet() */
    } cases[] = {
        {{0, 0, 0, 0}, RULES_NO_EVENTS},
        {{3, 3, 3, 0}, RULES_TOO_FEW_EVENTS},     /* 9 < min_events 10 */
        {{4, 3, 3, 0}, RULES_FIRES},              /* exactly 10, 3 sites, top 40% */
        {{5, 5, 0, 0}, RULES_TOO_FEW_SITES},      /* 2 sites */
        {{50, 0, 0, 0}, RULES_TOO_FEW_SITES},     /* one site alone: never fleet */
        {{7, 2, 1, 0}, RULES_SHARE_TOO_HIGH},     /* 70% from a */
        {{6, 2, 2, 0}, RULES_FIRES},              /* exactly 60% is allowed */
        {{61, 13, 13, 13}, RULES_SHARE_TOO_HIGH}, /* 61% */
        {{60, 14, 13, 13}, RULES_FIRES},
    };
    rule_t r = s_fleet();
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        window_t *w = s_window();
        for (unsigned s = 0; s < 4; s++)
            s_add(w, s, cases[i].per_site[s], T0);
        rules_verdict_t v = rules_eval(&r, w, &K, 0, T0 + SEC, NULL);
        if (v != cases[i].expect)
            fail_msg("case %zu: %s, want %s", i, rules_verdict_name(v),
                     rules_verdict_name(cases[i].expect));
        /* with evidence the verdict is the same */
        evidence_t ev;
        assert_int_equal(rules_eval(&r, w, &K, 0, T0 + SEC, &ev), cases[i].expect);
        window_destroy(&w);
    }
}

static void test_rules_window_length_decides_what_counts(void **state)
{
    window_t *w = s_window();
    s_add(w, 0, 4, T0);
    s_add(w, 1, 3, T0);
    s_add(w, 2, 3, T0 + 100 * SEC);
    rule_t long_rule = s_fleet();
    rule_t short_rule = s_fleet();
    short_rule.window_ms = 60 * SEC;
    int64_t now = T0 + 110 * SEC;
    assert_int_equal(rules_eval(&long_rule, w, &K, 0, now, NULL), RULES_FIRES);
    assert_int_equal(rules_eval(&short_rule, w, &K, 0, now, NULL), RULES_TOO_FEW_EVENTS);
    /* the wave ends: 130 s after it began the long rule stops firing too */
    assert_int_equal(rules_eval(&long_rule, w, &K, 0, T0 + 130 * SEC, NULL), RULES_TOO_FEW_EVENTS);
    window_destroy(&w);
}

static void test_rules_local_counts_each_site_alone(void **state)
{
    window_t *w = s_window();
    s_add(w, 0, 50, T0);
    s_add(w, 1, 49, T0);
    rule_t r = s_fleet();
    r.reach = BS_REACH_LOCAL;
    r.min_events = 50;
    r.min_sites = 3; /* ignored by local rules */
    evidence_t ev;
    assert_int_equal(rules_eval(&r, w, &K, 0, T0, &ev), RULES_FIRES);
    assert_int_equal(ev.events, 50);
    assert_int_equal(ev.sites, 1);
    assert_string_equal(ev.shares[0].site, "a");
    assert_int_equal(rules_eval(&r, w, &K, 1, T0, NULL), RULES_TOO_FEW_EVENTS);
    assert_int_equal(rules_eval(&r, w, &K, 2, T0, NULL), RULES_NO_EVENTS);
    /* the same 99 events as a fleet rule: 2 sites, a has 51% */
    r.reach = BS_REACH_FLEET;
    r.min_sites = 2;
    assert_int_equal(rules_eval(&r, w, &K, 0, T0, NULL), RULES_FIRES);
    window_destroy(&w);
}

static void test_rules_local_single_site_key(void **state)
{
    window_t *w = s_window();
    s_add(w, 3, 60, T0);
    size_t n;
    const rule_t *local = &rules_defaults(&n)[3];
    assert_int_equal(rules_eval(local, w, &K, 3, T0, NULL), RULES_FIRES);
    assert_int_equal(rules_eval(local, w, &K, 0, T0, NULL), RULES_NO_EVENTS);
    window_destroy(&w);
}

static void test_rules_evidence_names_sites_largest_first(void **state)
{
    window_t *w = s_window();
    s_add(w, 2, 2, T0 + 5 * SEC);
    s_add(w, 0, 5, T0 + 20 * SEC);
    s_add(w, 1, 3, T0 + 30 * SEC);
    rule_t r = s_fleet();
    evidence_t ev;
    assert_int_equal(rules_eval(&r, w, &K, 0, T0 + 40 * SEC, &ev), RULES_FIRES);
    assert_string_equal(ev.rule, "t_fleet");
    assert_int_equal(ev.events, 10);
    assert_int_equal(ev.sites, 3);
    assert_int_equal(ev.nshares, 3);
    assert_string_equal(ev.shares[0].site, "a");
    assert_int_equal(ev.shares[0].events, 5);
    assert_string_equal(ev.shares[1].site, "b");
    assert_string_equal(ev.shares[2].site, "c");
    assert_int_equal(ev.first_ms, T0 + 5 * SEC);
    assert_int_equal(ev.last_ms, T0 + 30 * SEC);
    assert_string_equal(ev.sample, "cheap pills");
    assert_int_equal(ev.window_s, 120);
    window_destroy(&w);
}

static void test_rules_other_series_is_not_one_sites_share(void **state)
{
    window_config_t cfg = {.bucket_ms = 10 * SEC, .span_ms = 300 * SEC};
    window_t *w = window_new(&cfg);
    char name[16];
    /* 16 sites with 1 event each, then 20 more sites with 1 each: "other" holds 20 of 36 */
    for (int i = 0; i < 36; i++) {
        snprintf(name, sizeof(name), "s%d", i);
        s_add(w, (unsigned)window_site_intern(w, name), 1, T0);
    }
    rule_t r = s_fleet();
    assert_int_equal(rules_eval(&r, w, &K, 0, T0, NULL), RULES_FIRES);
    window_destroy(&w);
}

/* One site cannot make a fleet decision alone by being the 17th to report a subject: 16
 * sites send one bounce each, then it sends the rest of the wave. */
static void test_rules_a_17th_site_alone_does_not_pass_the_share_cap(void **state)
{
    window_config_t cfg = {.bucket_ms = 10 * SEC, .span_ms = 300 * SEC};
    window_t *w = window_new(&cfg);
    char name[16];
    for (int i = 0; i < 16; i++) {
        snprintf(name, sizeof(name), "s%d", i);
        s_add(w, (unsigned)window_site_intern(w, name), 1, T0);
    }
    s_add(w, (unsigned)window_site_intern(w, "attacker"), 390, T0);
    rule_t r = s_fleet();
    evidence_t ev;
    assert_int_equal(rules_eval(&r, w, &K, 0, T0, &ev), RULES_SHARE_TOO_HIGH);
    assert_string_equal(ev.shares[0].site, "attacker");
    window_destroy(&w);
}

static void test_rules_unknown_key_has_no_events(void **state)
{
    window_t *w = s_window();
    rule_t r = s_fleet();
    evidence_t ev;
    window_key_t other = {.scope = BS_SCOPE_SUBJECT, .fp = 1};
    assert_int_equal(rules_eval(&r, w, &other, 0, T0, &ev), RULES_NO_EVENTS);
    assert_int_equal(ev.events, 0);
    assert_string_equal(rules_verdict_name(RULES_SHARE_TOO_HIGH), "one site's share too high");
    window_destroy(&w);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_rules_defaults_are_valid_and_as_documented),
        cmocka_unit_test(test_rules_check_rejects_each_bad_field),
        cmocka_unit_test(test_rules_counts_classes_matches_and_ledger),
        cmocka_unit_test(test_rules_fleet_thresholds),
        cmocka_unit_test(test_rules_window_length_decides_what_counts),
        cmocka_unit_test(test_rules_local_counts_each_site_alone),
        cmocka_unit_test(test_rules_local_single_site_key),
        cmocka_unit_test(test_rules_evidence_names_sites_largest_first),
        cmocka_unit_test(test_rules_other_series_is_not_one_sites_share),
        cmocka_unit_test(test_rules_a_17th_site_alone_does_not_pass_the_share_cap),
        cmocka_unit_test(test_rules_unknown_key_has_no_events),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
