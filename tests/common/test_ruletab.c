/*
 * test_ruletab - Postfix-style rule tables: syntax errors with line numbers,
 * flags, negation, first match, if/endif, labels, the seed rule, and a
 * catastrophic-backtracking pattern stopped by the match limit.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <pthread.h>
#include <stdio.h>
#include <string.h>

#include "ruletab.h"

#define RULES FIXTURES_DIR "/rules/"

static ruletab_t *s_load(const char *file)
{
    char err[512];
    ruletab_t *t = ruletab_load(file, err, sizeof(err));
    if (t == NULL)
        fail_msg("%s: %s", file, err);
    return t;
}

/* The label of the rule that fires on line, or NULL. */
static const char *s_label(const ruletab_t *t, const char *line)
{
    const ruletab_rule_t *r = ruletab_match(t, line, strlen(line));
    return r ? ruletab_rule_label(r) : NULL;
}

static void test_seed_rule_is_expressible(void **state)
{
    ruletab_t *t = s_load(RULES "seed");
    assert_int_equal(ruletab_count(t), 1);
    const char *hit = "From: Mail Delivery Subsystem <MAILER-DAEMON@example.net>";
    const ruletab_rule_t *r = ruletab_match(t, hit, strlen(hit));
    assert_non_null(r);
    assert_int_equal(ruletab_rule_action(r), RULETAB_REJECT);
    assert_string_equal(ruletab_rule_action_word(r), "REJECT");
    assert_string_equal(ruletab_rule_text(r), "");
    assert_string_equal(ruletab_rule_label(r), RULES "seed:1");
    assert_int_equal(ruletab_rule_line(r), 1);
    assert_null(s_label(t, "From: alice@example.org"));
    assert_null(s_label(t, "Subject: Mailer"));
    ruletab_destroy(&t);
    assert_null(t);
    ruletab_destroy(&t);
}

/* Line, and the label of the rule expected to fire (NULL: none). */
static const struct {
    const char *line; /* subject of the match */
    const char *want; /* label, or NULL */
} s_header_cases[] = {
    /* the seed rule, caseless by default */
    {"From: MAILER-DAEMON@example.net", RULES "header_checks:3"},
    {"from: postmaster mailer", RULES "header_checks:3"},
    /* action text becomes the label */
    {"Subject: cheap VIAGRA", "pharma spam"},
    /* "i" turns caseless off */
    {"X-Case: Exact", "case sensitive"},
    {"X-Case: exact", RULES "header_checks:6"},
    /* negation: fires on lines the pattern does not match */
    {"X-Anything: 1", RULES "header_checks:6"},
    {"Received: from mx.example.net", NULL},
    /* first match wins: the seed rule comes before the negated one */
    {"From: Mailer", RULES "header_checks:3"},
};

static void test_header_checks_flags_negation_first_match(void **state)
{
    ruletab_t *t = s_load(RULES "header_checks");
    assert_int_equal(ruletab_count(t), 4);
    for (size_t i = 0; i < sizeof(s_header_cases) / sizeof(s_header_cases[0]); i++) {
        const char *got = s_label(t, s_header_cases[i].line);
        const char *want = s_header_cases[i].want;
        if ((got == NULL) != (want == NULL) || (got && strcmp(got, want) != 0))
            fail_msg("\"%s\": got %s, want %s", s_header_cases[i].line, got ? got : "(none)",
                     want ? want : "(none)");
    }
    ruletab_destroy(&t);
}

static const struct {
    const char *line; /* subject of the match */
    const char *want; /* label, or NULL */
} s_nested_cases[] = {
    {"Subject: Undeliverable: hello", "undeliverable subject"},
    {"Subject: Mail undelivered", "undeliverable subject"},
    /* inner if fails: falls through to the rule after it */
    {"Subject: newsletter undeliverable", "subject line"},
    /* outer if fails: nothing inside applies */
    {"X-Note: undeliverable", NULL},
    /* continuation line carries the text */
    {"From: bob", "from line"},
    {"X-Multi: first\nsecond", "multi-line"},
    {"X-Dot:a\nb", "dotall"},
    {"X-Ext: a b", "extended"},
    {"X-Slash: a/b", "slash"},
    {"X-Comment: x", NULL},
    {"X-At: abc", "other delimiter"},
    {"", NULL},
};

static void test_if_endif_and_flags(void **state)
{
    ruletab_t *t = s_load(RULES "nested_if");
    assert_int_equal(ruletab_count(t), 8);
    for (size_t i = 0; i < sizeof(s_nested_cases) / sizeof(s_nested_cases[0]); i++) {
        const char *got = s_label(t, s_nested_cases[i].line);
        const char *want = s_nested_cases[i].want;
        if ((got == NULL) != (want == NULL) || (got && strcmp(got, want) != 0))
            fail_msg("\"%s\": got %s, want %s", s_nested_cases[i].line, got ? got : "(none)",
                     want ? want : "(none)");
    }
    const char *line = "Subject: undeliverable";
    const ruletab_rule_t *r = ruletab_match(t, line, strlen(line));
    assert_int_equal(ruletab_rule_action(r), RULETAB_BOUNCE_RULE);
    assert_int_equal(ruletab_rule_line(r), 5);
    ruletab_destroy(&t);
}

static void test_length_bounds_the_subject(void **state)
{
    ruletab_t *t = s_load(RULES "seed");
    const char *line = "From: Mailer-Daemon";
    /* only "From: Mai" is looked at */
    assert_null(ruletab_match(t, line, 9));
    assert_non_null(ruletab_match(t, line, strlen(line)));
    ruletab_destroy(&t);
}

/* Bad tables and the error each must report. */
static const struct {
    const char *file; /* fixture */
    const char *want; /* error text */
} s_bad_tables[] = {
    {"bad_delimiter", "bad_delimiter:2: missing closing \"/\" of the pattern"},
    {"bad_flag", "bad_flag:3: unknown pattern flag \"q\""},
    {"missing_action", "missing_action:2: missing action after the pattern"},
    {"unknown_action", "unknown_action:2: unknown action \"EXPLODE\""},
    {"bad_regex", "bad_regex:3: bad pattern \"a(b\": missing closing parenthesis at offset 3"},
    {"missing_endif", "missing_endif:1: if without endif"},
    {"stray_endif", "stray_endif:2: endif without if"},
    {"orphan_continuation", "orphan_continuation:1: continuation line without a rule"},
    {"absent", "absent: cannot open"},
};

static void test_syntax_errors_name_file_and_line(void **state)
{
    for (size_t i = 0; i < sizeof(s_bad_tables) / sizeof(s_bad_tables[0]); i++) {
        char path[512], err[512];
        snprintf(path, sizeof(path), RULES "%s", s_bad_tables[i].file);
        ruletab_t *t = ruletab_load(path, err, sizeof(err));
        if (t != NULL)
            fail_msg("%s was accepted", s_bad_tables[i].file);
        if (strstr(err, s_bad_tables[i].want) == NULL)
            fail_msg("%s: \"%s\" lacks \"%s\"", s_bad_tables[i].file, err, s_bad_tables[i].want);
    }
}

static const struct {
    const char *text; /* table text */
    const char *want; /* error text */
} s_bad_texts[] = {
    {"REJECT", "t:1: expected /pattern/"},
    {"if /a/ REJECT\nendif", "t:1: text after the if pattern"},
    {"if /a/\nendif now", "t:2: text after endif"},
    {"/a/ REJECT\n\n\n/(?<=a+)b/ REJECT", "t:4: bad pattern"},
    {"!", "t:1: expected /pattern/"},
    {"/", "t:1: missing closing"},
};

static void test_syntax_errors_in_text(void **state)
{
    for (size_t i = 0; i < sizeof(s_bad_texts) / sizeof(s_bad_texts[0]); i++) {
        char err[512];
        ruletab_t *t = ruletab_parse(s_bad_texts[i].text, "t", err, sizeof(err));
        if (t != NULL)
            fail_msg("\"%s\" was accepted", s_bad_texts[i].text);
        if (strstr(err, s_bad_texts[i].want) == NULL)
            fail_msg("\"%s\": \"%s\" lacks \"%s\"", s_bad_texts[i].text, err, s_bad_texts[i].want);
    }
}

static void test_actions_any_case_word_kept(void **state)
{
    char err[256];
    ruletab_t *t =
        ruletab_parse("/a/ reject\n/b/ Count  counted  \n/c/ BOUNCE_RULE\n", "t", err, sizeof(err));
    assert_non_null(t);
    const ruletab_rule_t *r = ruletab_match(t, "a", 1);
    assert_int_equal(ruletab_rule_action(r), RULETAB_REJECT);
    assert_string_equal(ruletab_rule_action_word(r), "reject");
    r = ruletab_match(t, "b", 1);
    assert_int_equal(ruletab_rule_action(r), RULETAB_COUNT);
    assert_string_equal(ruletab_rule_text(r), "counted");
    r = ruletab_match(t, "c", 1);
    assert_int_equal(ruletab_rule_action(r), RULETAB_BOUNCE_RULE);
    assert_string_equal(ruletab_action_name(RULETAB_BOUNCE_RULE), "BOUNCE_RULE");
    ruletab_destroy(&t);
}

static void test_empty_table_matches_nothing(void **state)
{
    ruletab_t *t = s_load(RULES "empty");
    assert_int_equal(ruletab_count(t), 0);
    assert_null(ruletab_match(t, "From: Mailer", 12));
    assert_string_equal(ruletab_name(t), RULES "empty");
    ruletab_destroy(&t);
}

static void test_catastrophic_pattern_hits_limit_and_does_not_fire(void **state)
{
    ruletab_t *t = s_load(RULES "catastrophic");
    char line[128];
    memset(line, 'a', 60);
    strcpy(line + 60, "!");
    /* (a|aa)+$ on 60 a's and a '!' needs ~fib(60) steps without a limit */
    assert_null(ruletab_match(t, line, strlen(line)));
    assert_int_equal(ruletab_limit_hits(t), 1);
    /* the rules after the slow one still run */
    assert_string_equal(s_label(t, "Subject: x"), "after the slow one");
    /* a short line matches normally */
    assert_string_equal(s_label(t, "aaaa"), "backtracking");
    ruletab_destroy(&t);
}

static void test_limit_hit_does_not_fire_negated_rule(void **state)
{
    char err[256];
    ruletab_t *t = ruletab_parse("!/^(a|aa)+$/ REJECT negated\n", "t", err, sizeof(err));
    assert_non_null(t);
    char line[128];
    memset(line, 'a', 60);
    strcpy(line + 60, "!");
    assert_null(ruletab_match(t, line, strlen(line)));
    assert_int_equal(ruletab_limit_hits(t), 1);
    assert_string_equal(s_label(t, "b"), "negated");
    ruletab_destroy(&t);
}

static void test_small_limits_can_be_set(void **state)
{
    char err[256];
    ruletab_t *t = ruletab_parse("/^(a|aa)+$/ REJECT\n", "t", err, sizeof(err));
    assert_non_null(t);
    char line[64];
    memset(line, 'a', 20);
    strcpy(line + 20, "!");
    /* ~fib(20) steps: within the default limit, so a plain no-match */
    assert_null(ruletab_match(t, line, strlen(line)));
    assert_int_equal(ruletab_limit_hits(t), 0);
    ruletab_set_limits(t, 100, 100);
    assert_null(ruletab_match(t, line, strlen(line)));
    assert_int_equal(ruletab_limit_hits(t), 1);
    assert_non_null(ruletab_match(t, "aaa", 3));
    ruletab_destroy(&t);
}

static void test_long_folded_header_still_matches(void **state)
{
    /* 4000 repetitions overflow PCRE2's default 32 KiB JIT stack */
    char err[256];
    ruletab_t *t = ruletab_parse("/^(a|b)*c/ REJECT long\n", "t", err, sizeof(err));
    assert_non_null(t);
    static char line[4002];
    memset(line, 'a', 4000);
    line[4000] = 'c';
    assert_non_null(ruletab_match(t, line, 4001));
    assert_int_equal(ruletab_limit_hits(t), 0);
    ruletab_destroy(&t);
}

/* Shared by the threads of the next test. */
typedef struct {
    const ruletab_t *t; /* table under test */
    int wrong;          /* results that differ from the expected */
} s_thread_arg_t;

static void *s_matcher(void *arg)
{
    s_thread_arg_t *a = arg;
    for (int i = 0; i < 2000; i++) {
        const char *got = s_label(a->t, (i % 2) ? "From: mailer" : "Subject: viagra");
        const char *want = (i % 2) ? RULES "header_checks:3" : "pharma spam";
        if (got == NULL || strcmp(got, want) != 0)
            a->wrong++;
    }
    return NULL;
}

static void test_many_threads_match_at_once(void **state)
{
    ruletab_t *t = s_load(RULES "header_checks");
    pthread_t th[8];
    s_thread_arg_t args[8];
    for (int i = 0; i < 8; i++) {
        args[i] = (s_thread_arg_t){t, 0};
        assert_int_equal(pthread_create(&th[i], NULL, s_matcher, &args[i]), 0);
    }
    for (int i = 0; i < 8; i++) {
        pthread_join(th[i], NULL);
        assert_int_equal(args[i].wrong, 0);
    }
    ruletab_destroy(&t);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_seed_rule_is_expressible),
        cmocka_unit_test(test_header_checks_flags_negation_first_match),
        cmocka_unit_test(test_if_endif_and_flags),
        cmocka_unit_test(test_length_bounds_the_subject),
        cmocka_unit_test(test_syntax_errors_name_file_and_line),
        cmocka_unit_test(test_syntax_errors_in_text),
        cmocka_unit_test(test_actions_any_case_word_kept),
        cmocka_unit_test(test_empty_table_matches_nothing),
        cmocka_unit_test(test_catastrophic_pattern_hits_limit_and_does_not_fire),
        cmocka_unit_test(test_limit_hit_does_not_fire_negated_rule),
        cmocka_unit_test(test_small_limits_can_be_set),
        cmocka_unit_test(test_long_folded_header_still_matches),
        cmocka_unit_test(test_many_threads_match_at_once),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
