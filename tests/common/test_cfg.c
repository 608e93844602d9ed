/*
 * test_cfg - the config loader: every type and unit, bounds, FILE:LINE
 * errors, continuation lines, sections with defaults, duplicates, samples,
 * the line each key was set on (cfg_line).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cfg.h"

/* A section struct as a program would declare it. */
typedef struct {
    cfg_head_t head;    /* name and origin */
    char *scope;        /* what the rule counts */
    int64_t window_ms;  /* counting window */
    int64_t min_events; /* threshold */
    bool enforce;       /* block or only observe */
} test_rule_t;

/* A global struct as a program would declare it. */
typedef struct {
    char *listen;                 /* endpoint */
    bool foreground;              /* -f */
    int64_t workers;              /* threads */
    int64_t window_ms;            /* default window */
    int64_t max_message;          /* bytes */
    int mode;                     /* index into s_modes */
    cfg_list_t internal_networks; /* CIDRs */
    char *comment;                /* NULL default */
    test_rule_t *rules;           /* [rule NAME] sections */
    size_t rule_count;            /* how many */
} test_conf_t;

static const char *const s_modes[] = {"enforce", "observe", "off", NULL};

static const cfg_param_t s_rule_params[] = {
    CFG_STRING(test_rule_t, scope, "scope", "subject", "key the rule counts"),
    CFG_DURATION(test_rule_t, window_ms, "window", "60s", "s", "1s", "7d", "counting window"),
    CFG_INT(test_rule_t, min_events, "min_events", "10", "1", "1000000", "events to fire"),
    CFG_BOOL(test_rule_t, enforce, "enforce", "yes", "block, or only count"),
    CFG_END,
};

static const cfg_param_t s_params[] = {
    CFG_STRING(test_conf_t, listen, "listen", "tcp://*:7700", "event endpoint"),
    CFG_BOOL(test_conf_t, foreground, "foreground", "no", "stay in the foreground"),
    CFG_INT(test_conf_t, workers, "workers", "2", "1", "64", "worker threads"),
    CFG_DURATION(test_conf_t, window_ms, "window", "120", "s", "100ms", "1d", "default window"),
    CFG_SIZE(test_conf_t, max_message, "max_message", "10m", NULL, "1k", "1g", "body bound"),
    CFG_ENUM(test_conf_t, mode, "mode", "enforce", s_modes, "what decisions do"),
    CFG_LIST(test_conf_t, internal_networks, "internal_networks", "127.0.0.0/8 ::1/128",
             "networks whose mail is outbound"),
    CFG_STRING(test_conf_t, comment, "comment", NULL, "free text"),
    CFG_END,
};

static const cfg_section_t s_sections[] = {
    CFG_SECTION(test_conf_t, rules, rule_count, "rule", test_rule_t, s_rule_params,
                "one counting rule"),
    CFG_SECTION_END,
};

static const cfg_schema_t s_schema = {.params = s_params, .sections = s_sections};

static int s_parse(const char *text, test_conf_t *c, char *err, size_t errlen)
{
    memset(c, 0, sizeof(*c));
    return cfg_parse(&s_schema, text, strlen(text), "t.cf", c, err, errlen);
}

static void test_defaults_fill_every_type(void **state)
{
    test_conf_t c = {0};
    char err[256];
    assert_int_equal(cfg_defaults(&s_schema, &c, err, sizeof(err)), 0);
    assert_string_equal(c.listen, "tcp://*:7700");
    assert_false(c.foreground);
    assert_int_equal(c.workers, 2);
    assert_int_equal(c.window_ms, 120000); /* bare number in the default unit "s" */
    assert_int_equal(c.max_message, 10 * 1024 * 1024);
    assert_int_equal(c.mode, 0);
    assert_int_equal(c.internal_networks.n, 2);
    assert_string_equal(c.internal_networks.v[1], "::1/128");
    assert_null(c.internal_networks.v[2]);
    assert_null(c.comment);
    assert_int_equal(c.rule_count, 0);
    cfg_free(&s_schema, &c);
    assert_null(c.listen);
    cfg_free(&s_schema, &c); /* safe twice */
}

/* A reload keeps the running value of the keys only a restart changes, of every type, and
 * names those that differed; the other keys keep the new file's values. */
static void test_keep_copies_the_running_values_of_the_keys_named(void **state)
{
    (void)state;
    test_conf_t run, fresh;
    char err[256], changed[128];
    assert_int_equal(s_parse("listen = tcp://a:1\nworkers = 3\nmode = observe\n"
                             "internal_networks = 10.0.0.0/8\n",
                             &run, err, sizeof(err)),
                     0);
    assert_int_equal(
        s_parse("listen = tcp://b:2\nworkers = 3\nwindow = 5s\n", &fresh, err, sizeof(err)), 0);
    static const char *const keys[] = {"listen", "workers", "mode", "internal_networks", NULL};
    assert_int_equal(cfg_keep(s_params, keys, &fresh, &run, changed, sizeof(changed)), 3);
    assert_string_equal(changed, "listen mode internal_networks");
    assert_string_equal(fresh.listen, "tcp://a:1");
    assert_int_equal(fresh.mode, run.mode);
    assert_int_equal(fresh.internal_networks.n, 1);
    assert_string_equal(fresh.internal_networks.v[0], "10.0.0.0/8");
    assert_null(fresh.internal_networks.v[1]);
    assert_int_equal(fresh.window_ms, 5000); /* not named: the new value */
    assert_int_equal(cfg_keep(s_params, keys, &fresh, &run, changed, sizeof(changed)), 0);
    assert_string_equal(changed, "");
    cfg_free(&s_schema, &run);
    cfg_free(&s_schema, &fresh);
}

static void test_good_file_loads(void **state)
{
    test_conf_t c = {0};
    char err[512];
    int rc = cfg_load(&s_schema, FIXTURES_DIR "/cfg/good.cf", &c, err, sizeof(err));
    assert_int_equal(rc, 0);
    assert_string_equal(c.listen, "tcp://127.0.0.1:7701");
    assert_true(c.foreground);
    assert_int_equal(c.workers, 8);
    assert_int_equal(c.window_ms, 120000);
    assert_int_equal(c.max_message, 65536);
    assert_int_equal(c.mode, 1);
    cfg_free(&s_schema, &c);
}

static void test_continuation_line_extends_value(void **state)
{
    test_conf_t c = {0};
    char err[512];
    assert_int_equal(cfg_load(&s_schema, FIXTURES_DIR "/cfg/good.cf", &c, err, sizeof(err)), 0);
    assert_int_equal(c.internal_networks.n, 3);
    assert_string_equal(c.internal_networks.v[0], "192.0.2.0/24");
    assert_string_equal(c.internal_networks.v[1], "198.51.100.0/24");
    assert_string_equal(c.internal_networks.v[2], "2001:db8::/32");
    cfg_free(&s_schema, &c);
}

static void test_sections_get_own_values_and_defaults(void **state)
{
    test_conf_t c = {0};
    char err[512];
    assert_int_equal(cfg_load(&s_schema, FIXTURES_DIR "/cfg/good.cf", &c, err, sizeof(err)), 0);
    assert_int_equal(c.rule_count, 2);
    assert_string_equal(c.rules[0].head.name, "fleet_subject");
    assert_string_equal(c.rules[0].head.origin, FIXTURES_DIR "/cfg/good.cf:14");
    assert_int_equal(c.rules[0].window_ms, 120000);
    assert_int_equal(c.rules[0].min_events, 400);
    assert_true(c.rules[0].enforce);
    assert_string_equal(c.rules[1].head.name, "per_site");
    assert_string_equal(c.rules[1].scope, "subject");
    assert_int_equal(c.rules[1].window_ms, 60000);
    assert_int_equal(c.rules[1].min_events, 10);
    cfg_free(&s_schema, &c);
    assert_null(c.rules);
    assert_int_equal(c.rule_count, 0);
}

static void test_crlf_lines_and_continuation(void **state)
{
    test_conf_t c = {0};
    char err[512];
    assert_int_equal(cfg_load(&s_schema, FIXTURES_DIR "/cfg/crlf.cf", &c, err, sizeof(err)), 0);
    assert_string_equal(c.listen, "tcp:// 0.0.0.0:1"); /* joined by one space, as main.cf */
    assert_int_equal(c.workers, 3);
    cfg_free(&s_schema, &c);
}

/* Values accepted, by key, and what lands in the struct. */
static const struct {
    const char *text; /* config text */
    int64_t want;     /* value of the int64 field */
    size_t off;       /* which field */
} s_good_values[] = {
    {"window = 500ms", 500, offsetof(test_conf_t, window_ms)},
    {"window = 120s", 120000, offsetof(test_conf_t, window_ms)},
    {"window = 2m", 120000, offsetof(test_conf_t, window_ms)},
    {"window = 1h", 3600000, offsetof(test_conf_t, window_ms)},
    {"window = 1d", 86400000, offsetof(test_conf_t, window_ms)},
    {"window = 90", 90000, offsetof(test_conf_t, window_ms)},
    {"window = 1s", 1000, offsetof(test_conf_t, window_ms)},
    {"max_message = 2048", 2048, offsetof(test_conf_t, max_message)},
    {"max_message = 64k", 65536, offsetof(test_conf_t, max_message)},
    {"max_message = 64K", 65536, offsetof(test_conf_t, max_message)},
    {"max_message = 10m", 10485760, offsetof(test_conf_t, max_message)},
    {"max_message = 1g", 1073741824, offsetof(test_conf_t, max_message)},
    {"max_message = 1k", 1024, offsetof(test_conf_t, max_message)},
    {"workers = 1", 1, offsetof(test_conf_t, workers)},
    {"workers = 64", 64, offsetof(test_conf_t, workers)},
    {"workers=  +7  ", 7, offsetof(test_conf_t, workers)},
};

static void test_every_unit_parses(void **state)
{
    for (size_t i = 0; i < sizeof(s_good_values) / sizeof(s_good_values[0]); i++) {
        test_conf_t c;
        char err[256];
        if (s_parse(s_good_values[i].text, &c, err, sizeof(err)) != 0)
            fail_msg("\"%s\": %s", s_good_values[i].text, err);
        int64_t got = *(int64_t *)(void *)((char *)&c + s_good_values[i].off);
        if (got != s_good_values[i].want)
            fail_msg("\"%s\": got %lld", s_good_values[i].text, (long long)got);
        cfg_free(&s_schema, &c);
    }
}

static void test_every_bool_word_parses(void **state)
{
    static const struct {
        const char *text;
        bool want;
    } cases[] = {
        {"yes", true}, {"no", false}, {"true", true}, {"false", false}, {"1", true},
        {"0", false},  {"on", true},  {"off", false}, {"YES", true},    {"Off", false},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        char text[64], err[256];
        test_conf_t c;
        snprintf(text, sizeof(text), "foreground = %s\n", cases[i].text);
        assert_int_equal(s_parse(text, &c, err, sizeof(err)), 0);
        assert_int_equal(c.foreground, cases[i].want);
        cfg_free(&s_schema, &c);
    }
}

/* Values rejected, with the message each must contain. */
static const struct {
    const char *text; /* config text */
    const char *want; /* substring of the error */
} s_bad_values[] = {
    {"window = 0s", "t.cf:1: bad value for \"window\": \"0s\" is out of bounds (100ms .. 1d)"},
    {"window = 2d", "out of bounds (100ms .. 1d)"},
    {"window = 99ms", "out of bounds"},
    {"window = 3x", "unknown unit \"x\" (use ms, s, m, h, d, w)"},
    {"window = 2M", "unknown unit \"M\""},
    {"window = -5s", "is not a duration"},
    {"window = s", "is not a duration"},
    {"window = 99999999999999999999d", "too large"},
    {"window = 9999999999999999d", "too large"},
    {"window = 1 h x", "trailing text"},
    {"max_message = 512", "out of bounds (1k .. 1g)"},
    {"max_message = 2g", "out of bounds"},
    {"max_message = 10q", "unknown unit \"q\""},
    {"workers = 0", "\"0\" is out of bounds (1 .. 64)"},
    {"workers = 65", "out of bounds (1 .. 64)"},
    {"workers = many", "\"many\" is not an integer"},
    {"workers = 4x", "is not an integer"},
    {"workers =", "is not an integer"},
    {"workers = 99999999999999999999", "out of range"},
    {"foreground = maybe", "\"maybe\" is not a boolean"},
    {"mode = loud", "\"loud\" is not one of: enforce, observe, off"},
    {"nonsense", "t.cf:1: missing \"=\""},
    {"= 5", "missing key"},
    {"[rule]", "section [rule] needs a name"},
    {"[rule x", "lacks the closing \"]\""},
    {"[rule a b]", "bad section name \"a b\""},
    {"[rule x]\nworkers = 3", "t.cf:2: key \"workers\" is not valid in section [rule x]"},
    {"[rule x]\nfoo = 3", "t.cf:2: unknown key \"foo\" in section [rule x]"},
    {"[rule x]\nwindow = 0", "t.cf:2: bad value for \"window\""},
    {"[rule x]\nmin_events = 1\nmin_events = 2", "t.cf:3: duplicate key \"min_events\""},
    {"[rule x\n  y]", "t.cf:1: section header continues"},
    {"[rule x]\n  more", "t.cf:1: section header continues"},
};

static void test_bad_values_are_reported_with_line(void **state)
{
    for (size_t i = 0; i < sizeof(s_bad_values) / sizeof(s_bad_values[0]); i++) {
        test_conf_t c;
        char err[512];
        if (s_parse(s_bad_values[i].text, &c, err, sizeof(err)) != -1)
            fail_msg("\"%s\" was accepted", s_bad_values[i].text);
        if (strstr(err, s_bad_values[i].want) == NULL)
            fail_msg("\"%s\": error \"%s\" lacks \"%s\"", s_bad_values[i].text, err,
                     s_bad_values[i].want);
        assert_null(c.listen); /* nothing half-filled is left */
        assert_null(c.rules);
    }
}

static void test_nul_byte_is_an_error(void **state)
{
    static const char text[] = "workers = 1\nlisten = a\0b\n";
    test_conf_t c = {0};
    char err[256];
    assert_int_equal(cfg_parse(&s_schema, text, sizeof(text) - 1, "t.cf", &c, err, sizeof(err)),
                     -1);
    assert_non_null(strstr(err, "t.cf:2: NUL byte"));
}

static void test_unknown_key_names_file_and_line(void **state)
{
    test_conf_t c = {0};
    char err[512];
    assert_int_equal(cfg_load(&s_schema, FIXTURES_DIR "/cfg/unknown_key.cf", &c, err, sizeof(err)),
                     -1);
    assert_string_equal(err, FIXTURES_DIR "/cfg/unknown_key.cf:2: unknown key \"bogus_key\"");
    assert_null(c.listen);
}

static void test_every_error_is_reported(void **state)
{
    test_conf_t c = {0};
    char err[512];
    assert_int_equal(cfg_load(&s_schema, FIXTURES_DIR "/cfg/two_errors.cf", &c, err, sizeof(err)),
                     -1);
    const char *first = strstr(err, "two_errors.cf:2: bad value for \"workers\"");
    const char *second = strstr(err, "two_errors.cf:4: bad value for \"window\"");
    assert_non_null(first);
    assert_non_null(second);
    assert_true(first < second);
    assert_non_null(strchr(err, '\n'));
}

static void test_duplicate_key_is_an_error(void **state)
{
    test_conf_t c = {0};
    char err[512];
    assert_int_equal(
        cfg_load(&s_schema, FIXTURES_DIR "/cfg/duplicate_key.cf", &c, err, sizeof(err)), -1);
    assert_non_null(strstr(err, "duplicate_key.cf:3: duplicate key \"workers\" (first set at "
                                "line 1)"));
}

static void test_orphan_continuation_is_an_error(void **state)
{
    test_conf_t c = {0};
    char err[512];
    assert_int_equal(
        cfg_load(&s_schema, FIXTURES_DIR "/cfg/orphan_continuation.cf", &c, err, sizeof(err)), -1);
    assert_non_null(strstr(err, "orphan_continuation.cf:1: continuation line without a key"));
}

static void test_unknown_section_type_is_an_error(void **state)
{
    test_conf_t c = {0};
    char err[512];
    assert_int_equal(cfg_load(&s_schema, FIXTURES_DIR "/cfg/bad_section.cf", &c, err, sizeof(err)),
                     -1);
    assert_non_null(strstr(err, "bad_section.cf:2: unknown section type \"frobnicate\""));
}

static void test_duplicate_section_is_an_error(void **state)
{
    test_conf_t c = {0};
    char err[512];
    assert_int_equal(
        cfg_load(&s_schema, FIXTURES_DIR "/cfg/duplicate_section.cf", &c, err, sizeof(err)), -1);
    assert_non_null(strstr(err, "duplicate_section.cf:3: duplicate section [rule a] (first at "));
    /* the keys of the rejected section are not reported again */
    assert_null(strchr(err, '\n'));
}

static void test_missing_file_is_an_error(void **state)
{
    test_conf_t c = {0};
    char err[512];
    assert_int_equal(cfg_load(&s_schema, FIXTURES_DIR "/cfg/absent.cf", &c, err, sizeof(err)), -1);
    assert_non_null(strstr(err, "absent.cf: cannot open"));
}

static void test_error_buffer_is_truncated_safely(void **state)
{
    test_conf_t c;
    char err[16];
    assert_int_equal(s_parse("workers = lots\nwindow = x\n", &c, err, sizeof(err)), -1);
    assert_int_equal(strlen(err), sizeof(err) - 1);
    assert_int_equal(s_parse("workers = lots\n", &c, NULL, 0), -1);
}

static void test_broken_default_is_reported(void **state)
{
    static const cfg_param_t params[] = {
        CFG_DURATION(test_conf_t, window_ms, "window", "ten", "s", NULL, NULL, "broken"),
        CFG_END,
    };
    static const cfg_schema_t schema = {.params = params, .sections = NULL};
    test_conf_t c = {0};
    char err[256];
    assert_int_equal(cfg_defaults(&schema, &c, err, sizeof(err)), -1);
    assert_non_null(strstr(err, "built-in default of \"window\""));
}

static void test_set_overrides_one_key(void **state)
{
    test_conf_t c = {0};
    char err[256];
    assert_int_equal(cfg_defaults(&s_schema, &c, err, sizeof(err)), 0);
    assert_int_equal(cfg_set(&s_schema, &c, "listen", "ipc:///tmp/x", err, sizeof(err)), 0);
    assert_string_equal(c.listen, "ipc:///tmp/x");
    assert_int_equal(cfg_set(&s_schema, &c, "workers", "100", err, sizeof(err)), -1);
    assert_non_null(strstr(err, "out of bounds"));
    assert_int_equal(c.workers, 2);
    assert_int_equal(cfg_set(&s_schema, &c, "nope", "1", err, sizeof(err)), -1);
    assert_non_null(strstr(err, "unknown key \"nope\""));
    cfg_free(&s_schema, &c);
}

/* A global struct that starts with a head, so its keys' lines are kept too. */
typedef struct {
    cfg_head_t head;    /* lines of the global keys */
    char *listen;       /* endpoint */
    int64_t workers;    /* threads */
    test_rule_t *rules; /* [rule NAME] sections */
    size_t rule_count;  /* how many */
} test_lined_t;

static const cfg_param_t s_lined_params[] = {
    CFG_STRING(test_lined_t, listen, "listen", "tcp://*:7700", "event endpoint"),
    CFG_INT(test_lined_t, workers, "workers", "2", "1", "64", "worker threads"),
    CFG_END,
};

static const cfg_section_t s_lined_sections[] = {
    CFG_SECTION(test_lined_t, rules, rule_count, "rule", test_rule_t, s_rule_params,
                "one counting rule"),
    CFG_SECTION_END,
};

static const cfg_schema_t s_lined_schema = {
    .params = s_lined_params, .sections = s_lined_sections, .global_head = true};

static void test_line_of_each_global_key_is_kept(void **state)
{
    test_lined_t c = {0};
    char err[256];
    const char *text = "# a comment\n\nworkers = 4\nlisten = tcp://127.0.0.1:1\n";
    assert_int_equal(cfg_parse(&s_lined_schema, text, strlen(text), "t.cf", &c, err, sizeof(err)),
                     0);
    assert_int_equal(cfg_line(&c.head, s_lined_params, "workers"), 3);
    assert_int_equal(cfg_line(&c.head, s_lined_params, "listen"), 4);
    assert_int_equal(cfg_line(&c.head, s_lined_params, "nope"), 0);
    /* a value from the command line is not the file's: no line to blame */
    assert_int_equal(cfg_set(&s_lined_schema, &c, "workers", "5", err, sizeof(err)), 0);
    assert_int_equal(cfg_line(&c.head, s_lined_params, "workers"), 0);
    cfg_free(&s_lined_schema, &c);
    assert_null(c.head.lines);
    cfg_free(&s_lined_schema, &c); /* safe twice */
}

static void test_line_of_a_default_is_zero(void **state)
{
    test_lined_t c = {0};
    char err[256];
    assert_int_equal(cfg_parse(&s_lined_schema, "workers = 4\n", 12, "t.cf", &c, err, sizeof(err)),
                     0);
    assert_int_equal(cfg_line(&c.head, s_lined_params, "listen"), 0);
    cfg_free(&s_lined_schema, &c);
    assert_int_equal(cfg_defaults(&s_lined_schema, &c, err, sizeof(err)), 0);
    assert_int_equal(cfg_line(&c.head, s_lined_params, "workers"), 0);
    cfg_free(&s_lined_schema, &c);
}

static void test_line_of_each_section_key_is_kept(void **state)
{
    test_lined_t c = {0};
    char err[256];
    const char *text = "[rule a]\nscope = ip\n\n[rule b]\nwindow = 10s\nmin_events =\n  20\n";
    assert_int_equal(cfg_parse(&s_lined_schema, text, strlen(text), "t.cf", &c, err, sizeof(err)),
                     0);
    assert_int_equal(c.rule_count, 2);
    assert_int_equal(cfg_line(&c.rules[0].head, s_rule_params, "scope"), 2);
    assert_int_equal(cfg_line(&c.rules[0].head, s_rule_params, "window"), 0);
    assert_int_equal(cfg_line(&c.rules[1].head, s_rule_params, "window"), 5);
    /* a continued value: the line its key is on */
    assert_int_equal(cfg_line(&c.rules[1].head, s_rule_params, "min_events"), 6);
    assert_int_equal(c.rules[1].min_events, 20);
    assert_int_equal(cfg_line(&c.rules[1].head, s_rule_params, "scope"), 0);
    /* a schema without a global head keeps the sections' lines all the same */
    test_conf_t d = {0};
    assert_int_equal(s_parse(text, &d, err, sizeof(err)), 0);
    assert_int_equal(cfg_line(&d.rules[1].head, s_rule_params, "window"), 5);
    cfg_free(&s_schema, &d);
    cfg_free(&s_lined_schema, &c);
}

static void test_lines_are_freed_with_a_refused_file(void **state)
{
    test_lined_t c = {0};
    char err[256];
    const char *text = "workers = 4\n[rule a]\nscope = ip\n[rule b]\nwindow = soon\n";
    assert_int_equal(cfg_parse(&s_lined_schema, text, strlen(text), "t.cf", &c, err, sizeof(err)),
                     -1);
    assert_null(c.head.lines);
    assert_null(c.rules);
}

static void test_value_parsers_for_command_lines(void **state)
{
    int64_t v;
    bool b;
    assert_int_equal(cfg_parse_duration("1h", "s", &v, NULL, 0), 0);
    assert_int_equal(v, 3600000);
    assert_int_equal(cfg_parse_duration("7d", NULL, &v, NULL, 0), 0);
    assert_int_equal(v, 7LL * 86400000);
    assert_int_equal(cfg_parse_duration("30", "ms", &v, NULL, 0), 0);
    assert_int_equal(v, 30);
    assert_int_equal(cfg_parse_duration("", "s", &v, NULL, 0), -1);
    assert_int_equal(cfg_parse_size("3", "k", &v, NULL, 0), 0);
    assert_int_equal(v, 3072);
    assert_int_equal(cfg_parse_bool("on", &b), 0);
    assert_true(b);
    assert_int_equal(cfg_parse_bool("", &b), -1);
    char buf[32];
    cfg_format_duration(120000, buf, sizeof(buf));
    assert_string_equal(buf, "2m");
    cfg_format_duration(1500, buf, sizeof(buf));
    assert_string_equal(buf, "1500ms");
    cfg_format_duration(0, buf, sizeof(buf));
    assert_string_equal(buf, "0ms");
}

static void test_sample_config_lists_every_key_and_reloads(void **state)
{
    char *text = NULL;
    size_t len = 0;
    FILE *fp = open_memstream(&text, &len);
    cfg_print_sample(&s_schema, fp);
    fclose(fp);
    for (const cfg_param_t *p = s_params; p->name; p++) {
        char want[128];
        snprintf(want, sizeof(want), "\n#%s =", p->name);
        if (strstr(text, want) == NULL)
            fail_msg("sample lacks %s", p->name);
    }
    assert_non_null(strstr(text, "#window = 120\n"));
    assert_non_null(strstr(text, "100ms .. 1d"));
    assert_non_null(strstr(text, "#[rule NAME]"));
    assert_non_null(strstr(text, "#min_events = 10\n"));
    /* a sample is all comments, so it loads as the defaults */
    test_conf_t c = {0};
    char err[256];
    assert_int_equal(cfg_parse(&s_schema, text, len, "sample", &c, err, sizeof(err)), 0);
    assert_int_equal(c.workers, 2);
    cfg_free(&s_schema, &c);
    free(text);
}

static void test_help_lists_every_key(void **state)
{
    char *text = NULL;
    size_t len = 0;
    FILE *fp = open_memstream(&text, &len);
    cfg_print_help(&s_schema, fp);
    fclose(fp);
    assert_non_null(strstr(text, "mode = enforce"));
    assert_non_null(strstr(text, "one of: enforce observe off"));
    assert_non_null(strstr(text, "[rule NAME]"));
    free(text);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_defaults_fill_every_type),
        cmocka_unit_test(test_keep_copies_the_running_values_of_the_keys_named),
        cmocka_unit_test(test_good_file_loads),
        cmocka_unit_test(test_continuation_line_extends_value),
        cmocka_unit_test(test_sections_get_own_values_and_defaults),
        cmocka_unit_test(test_crlf_lines_and_continuation),
        cmocka_unit_test(test_every_unit_parses),
        cmocka_unit_test(test_every_bool_word_parses),
        cmocka_unit_test(test_bad_values_are_reported_with_line),
        cmocka_unit_test(test_nul_byte_is_an_error),
        cmocka_unit_test(test_unknown_key_names_file_and_line),
        cmocka_unit_test(test_every_error_is_reported),
        cmocka_unit_test(test_duplicate_key_is_an_error),
        cmocka_unit_test(test_orphan_continuation_is_an_error),
        cmocka_unit_test(test_unknown_section_type_is_an_error),
        cmocka_unit_test(test_duplicate_section_is_an_error),
        cmocka_unit_test(test_missing_file_is_an_error),
        cmocka_unit_test(test_error_buffer_is_truncated_safely),
        cmocka_unit_test(test_broken_default_is_reported),
        cmocka_unit_test(test_set_overrides_one_key),
        cmocka_unit_test(test_line_of_each_global_key_is_kept),
        cmocka_unit_test(test_line_of_a_default_is_zero),
        cmocka_unit_test(test_line_of_each_section_key_is_kept),
        cmocka_unit_test(test_lines_are_freed_with_a_refused_file),
        cmocka_unit_test(test_value_parsers_for_command_lines),
        cmocka_unit_test(test_sample_config_lists_every_key_and_reloads),
        cmocka_unit_test(test_help_lists_every_key),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
