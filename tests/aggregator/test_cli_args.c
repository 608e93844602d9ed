/* test_cli_args - the backstop command line: what each command sends, and every way a
 * command line is refused (usage or data error, with the reason). Table-driven. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <cmocka.h>

#include "cli_args.h"

#define ARGV_MAX 32

/* Splits a command line on '~' (so values may hold spaces) into argv with "backstop" first. */
static int s_argv(const char *line, char *buf, size_t size, char *argv[ARGV_MAX])
{
    int argc = 0;
    argv[argc++] = "backstop";
    snprintf(buf, size, "%s", line);
    if (buf[0] == '\0')
        return argc;
    for (char *p = buf; p && argc < ARGV_MAX - 1;) {
        argv[argc++] = p;
        p = strchr(p, '~');
        if (p)
            *p++ = '\0';
    }
    argv[argc] = NULL;
    return argc;
}

/* A line that parses. */
typedef struct {
    const char *line;                      /* '~'-separated arguments */
    Backstop__ControlRequest__Command cmd; /* request sent */
    const char *id;                        /* expected id, NULL: unset */
    const char *value;                     /* expected value, NULL: unset */
    int scope;                             /* expected scope, -1: unset */
} s_ok_t;

static const s_ok_t s_ok[] = {
    {"status", BACKSTOP__CONTROL_REQUEST__COMMAND__STATUS, NULL, NULL, -1},
    {"decisions", BACKSTOP__CONTROL_REQUEST__COMMAND__DECISION_LIST, NULL, NULL, -1},
    {"decisions~list", BACKSTOP__CONTROL_REQUEST__COMMAND__DECISION_LIST, NULL, NULL, -1},
    {"decisions~show~ab12cd34", BACKSTOP__CONTROL_REQUEST__COMMAND__DECISION_SHOW, "ab12cd34", NULL,
     -1},
    {"decisions~del~AB12CD34", BACKSTOP__CONTROL_REQUEST__COMMAND__DECISION_DEL, "AB12CD34", NULL,
     -1},
    {"decisions~add~--scope~subject~--value~Undeliverable: Cheap meds 123",
     BACKSTOP__CONTROL_REQUEST__COMMAND__DECISION_ADD, NULL, "cheap meds #",
     BACKSTOP__SCOPE__SUBJECT},
    {"decisions~add~--scope=ip~--value=[192.0.2.1]",
     BACKSTOP__CONTROL_REQUEST__COMMAND__DECISION_ADD, NULL, "192.0.2.1",
     BACKSTOP__SCOPE__CLIENT_IP},
    {"decisions~add~--scope~net~--value~2001:DB8:1:2::/64",
     BACKSTOP__CONTROL_REQUEST__COMMAND__DECISION_ADD, NULL, "2001:db8:1:2::/64",
     BACKSTOP__SCOPE__CLIENT_NET},
    {"decisions~add~--scope~subject_ip~--value~Re: Hello 5|192.0.2.9",
     BACKSTOP__CONTROL_REQUEST__COMMAND__DECISION_ADD, NULL, "hello #|192.0.2.9",
     BACKSTOP__SCOPE__SUBJECT_IP},
    {"why~Cheap~meds~42", BACKSTOP__CONTROL_REQUEST__COMMAND__WHY, NULL, NULL, -1},
    {"top", BACKSTOP__CONTROL_REQUEST__COMMAND__TOP, NULL, NULL, -1},
    {"top~--scope~ip~--limit~5", BACKSTOP__CONTROL_REQUEST__COMMAND__TOP, NULL, NULL,
     BACKSTOP__SCOPE__CLIENT_IP},
    {"allow", BACKSTOP__CONTROL_REQUEST__COMMAND__ALLOW_LIST, NULL, NULL, -1},
    {"allow~add~--type~sender_domain~--value~Example.ORG.",
     BACKSTOP__CONTROL_REQUEST__COMMAND__ALLOW_ADD, NULL, "example.org",
     BACKSTOP__SCOPE__SENDER_DOMAIN},
    {"allow~del~7", BACKSTOP__CONTROL_REQUEST__COMMAND__ALLOW_DEL, "7", NULL, -1},
    {"allow~del~--type~site~--value~acme", BACKSTOP__CONTROL_REQUEST__COMMAND__ALLOW_DEL, NULL,
     "acme", BACKSTOP__SCOPE__SITE},
    {"sites", BACKSTOP__CONTROL_REQUEST__COMMAND__SITES, NULL, NULL, -1},
    {"sites~add~acme~--key-dir~/tmp", BACKSTOP__CONTROL_REQUEST__COMMAND__SITE_ADD, "acme", NULL,
     -1},
    /* a key made elsewhere (the failover peer's copy of a site): sent as is */
    {"sites~add~acme~--public-key~=p<f+xs^88af{THujGttN2{]3tmx!JdlO+?7pR<z",
     BACKSTOP__CONTROL_REQUEST__COMMAND__SITE_ADD, "acme",
     "=p<f+xs^88af{THujGttN2{]3tmx!JdlO+?7pR<z", -1},
    {"sites~del~acme", BACKSTOP__CONTROL_REQUEST__COMMAND__SITE_DEL, "acme", NULL, -1},
    {"--json~status", BACKSTOP__CONTROL_REQUEST__COMMAND__STATUS, NULL, NULL, -1},
    {"status~--json~--socket~ipc:///x", BACKSTOP__CONTROL_REQUEST__COMMAND__STATUS, NULL, NULL, -1},
};

static void test_lines_that_parse(void **state)
{
    (void)state;
    for (size_t i = 0; i < sizeof(s_ok) / sizeof(s_ok[0]); i++) {
        char buf[512], err[256];
        char *argv[ARGV_MAX];
        cli_args_t a;
        int argc = s_argv(s_ok[i].line, buf, sizeof(buf), argv);
        cli_args_result_t r = cli_args_parse(&a, argc, argv, "alice", err, sizeof(err));
        if (r != CLI_ARGS_RUN)
            fail_msg("\"%s\": result %d: %s", s_ok[i].line, r, err);
        assert_int_equal(a.req.command, s_ok[i].cmd);
        assert_string_equal(a.req.who, "alice");
        if (s_ok[i].id)
            assert_string_equal(a.req.id, s_ok[i].id);
        if (s_ok[i].value)
            assert_string_equal(a.req.value, s_ok[i].value);
        if (s_ok[i].scope >= 0) {
            assert_true(a.req.has_scope);
            assert_int_equal(a.req.scope, s_ok[i].scope);
        } else {
            assert_false(a.req.has_scope);
        }
        cli_args_free(&a);
        cli_args_free(&a); /* safe twice */
    }
}

static void test_decision_add_defaults_and_options(void **state)
{
    (void)state;
    char buf[512], err[256];
    char *argv[ARGV_MAX];
    cli_args_t a;
    int argc = s_argv("decisions~add~--scope~ip~--value~192.0.2.1", buf, sizeof(buf), argv);
    assert_int_equal(cli_args_parse(&a, argc, argv, NULL, err, sizeof(err)), CLI_ARGS_RUN);
    assert_int_equal(a.req.ttl_s, 3600);
    assert_int_equal(a.req.action, BACKSTOP__ACTION__REJECT);
    assert_int_equal(a.req.reach, BACKSTOP__REACH__FLEET);
    assert_null(a.req.site);
    assert_false(a.req.has_all_mail);
    assert_null(a.req.who);
    cli_args_free(&a);

    argc = s_argv("decisions~add~--scope~ip~--value~192.0.2.1~--ttl~90m~--action~tempfail~"
                  "--site~acme~--reason~by hand~--all-mail",
                  buf, sizeof(buf), argv);
    assert_int_equal(cli_args_parse(&a, argc, argv, "bob", err, sizeof(err)), CLI_ARGS_RUN);
    assert_int_equal(a.req.ttl_s, 5400);
    assert_int_equal(a.req.action, BACKSTOP__ACTION__TEMPFAIL);
    assert_int_equal(a.req.reach, BACKSTOP__REACH__LOCAL); /* --site implies it */
    assert_string_equal(a.req.site, "acme");
    assert_string_equal(a.req.reason, "by hand");
    assert_true(a.req.has_all_mail && a.req.all_mail);
    assert_false(a.req.has_force);
    cli_args_free(&a);

    /* --force: a site the aggregator does not know is taken */
    argc = s_argv("decisions~add~--scope~ip~--value~192.0.2.1~--site~newsite~--force", buf,
                  sizeof(buf), argv);
    assert_int_equal(cli_args_parse(&a, argc, argv, "bob", err, sizeof(err)), CLI_ARGS_RUN);
    assert_true(a.req.has_force && a.req.force);
    assert_false(a.req.has_all_mail);
    cli_args_free(&a);
    argc = s_argv("allow~add~--type~site~--value~newsite~--force", buf, sizeof(buf), argv);
    assert_int_equal(cli_args_parse(&a, argc, argv, "bob", err, sizeof(err)), CLI_ARGS_RUN);
    assert_true(a.req.has_force && a.req.force);
    cli_args_free(&a);
}

/* The operator's name is printable ASCII whatever $USER holds; a reason or a query in
 * another charset is sent as UTF-8, as values are. */
static void test_texts_are_sent_as_the_wire_takes_them(void **state)
{
    (void)state;
    char buf[512], err[256];
    char *argv[ARGV_MAX];
    cli_args_t a;
    int argc = s_argv("decisions~del~AB12CD34~--reason~caf\xe9", buf, sizeof(buf), argv);
    assert_int_equal(cli_args_parse(&a, argc, argv, "bob\nfake", err, sizeof(err)), CLI_ARGS_RUN);
    assert_string_equal(a.req.who, "bob?fake");
    assert_string_equal(a.req.reason, "caf\xc3\xa9");
    cli_args_free(&a);
    /* a long name cut in the middle of a character is no longer invalid UTF-8 */
    char who[80];
    memset(who, 'a', 63);
    strcpy(who + 63, "\xc3\xa9");
    argc = s_argv("why~caf\xe9 meds", buf, sizeof(buf), argv);
    assert_int_equal(cli_args_parse(&a, argc, argv, who, err, sizeof(err)), CLI_ARGS_RUN);
    assert_int_equal(strlen(a.req.who), 64);
    assert_int_equal(a.req.who[63], '?');
    assert_string_equal(a.req.query, "caf\xc3\xa9 meds");
    cli_args_free(&a);
}

static void test_global_options(void **state)
{
    (void)state;
    char buf[512], err[256];
    char *argv[ARGV_MAX];
    cli_args_t a;
    int argc =
        s_argv("--timeout~250~--config~/etc/x.conf~top~--json~--limit=7", buf, sizeof(buf), argv);
    assert_int_equal(cli_args_parse(&a, argc, argv, NULL, err, sizeof(err)), CLI_ARGS_RUN);
    assert_int_equal(a.timeout_ms, 250);
    assert_string_equal(a.config, "/etc/x.conf");
    assert_true(a.json);
    assert_null(a.socket);
    assert_int_equal(a.req.limit, 7);
    cli_args_free(&a);
    argc = s_argv("status", buf, sizeof(buf), argv);
    assert_int_equal(cli_args_parse(&a, argc, argv, NULL, err, sizeof(err)), CLI_ARGS_RUN);
    assert_int_equal(a.timeout_ms, CLI_TIMEOUT_MS_DEFAULT);
    assert_false(a.json);
    cli_args_free(&a);
}

/* A line that is refused. */
typedef struct {
    const char *line;         /* '~'-separated arguments */
    cli_args_result_t result; /* USAGE or DATA */
    const char *reason;       /* substring of err */
} s_bad_t;

static const s_bad_t s_bad[] = {
    {"", CLI_ARGS_USAGE, "no command"},
    {"frob", CLI_ARGS_USAGE, "unknown command"},
    {"--frob~status", CLI_ARGS_USAGE, "unknown option --frob"},
    {"status~extra", CLI_ARGS_USAGE, "unexpected argument"},
    {"status~--scope~ip", CLI_ARGS_USAGE, "unknown option --scope"},
    {"status~-x", CLI_ARGS_USAGE, "unknown option -x"},
    {"decisions~frob", CLI_ARGS_USAGE, "unknown subcommand"},
    {"decisions~show", CLI_ARGS_USAGE, "missing argument"},
    {"decisions~add~--scope~subject", CLI_ARGS_USAGE, "required"},
    {"decisions~add~--scope~site~--value~x", CLI_ARGS_USAGE, "--scope is"},
    {"decisions~add~--scope~ip~--value", CLI_ARGS_USAGE, "needs a value"},
    {"decisions~add~--scope~ip~--value~1.2.3", CLI_ARGS_DATA, "invalid IP"},
    {"decisions~add~--scope~net~--value~10.0.0.1/8", CLI_ARGS_DATA, "invalid network"},
    /* sensors look up a client's /24 or /64: no other network matches any mail */
    {"decisions~add~--scope~net~--value~10.0.0.0/8", CLI_ARGS_DATA, "would match no mail"},
    {"decisions~add~--scope~net~--value~10.0.0.0", CLI_ARGS_DATA, "would match no mail"},
    {"decisions~add~--scope~net~--value~2001:db8::/32", CLI_ARGS_DATA, "would match no mail"},
    {"decisions~add~--scope~subject~--value~Returned mail: see transcript for details",
     CLI_ARGS_DATA, "normalises to nothing"},
    {"decisions~add~--scope~subject_ip~--value~hello", CLI_ARGS_DATA, "SUBJECT|IP"},
    {"decisions~add~--scope~ip~--value~192.0.2.1~--ttl~0s", CLI_ARGS_USAGE, "--ttl"},
    {"decisions~add~--scope~ip~--value~192.0.2.1~--ttl~31d", CLI_ARGS_USAGE, "--ttl"},
    {"decisions~add~--scope~ip~--value~192.0.2.1~--ttl~soon", CLI_ARGS_USAGE, "--ttl"},
    {"decisions~add~--scope~ip~--value~192.0.2.1~--action~drop", CLI_ARGS_USAGE, "--action"},
    {"decisions~add~--scope~ip~--value~192.0.2.1~--reach~site", CLI_ARGS_USAGE, "needs --site"},
    {"decisions~add~--scope~ip~--value~192.0.2.1~--reach~fleet~--site~a", CLI_ARGS_USAGE,
     "--site applies only"},
    {"decisions~add~--scope~ip~--value~192.0.2.1~--site~a/b", CLI_ARGS_DATA, "invalid site"},
    {"decisions~add~--scope~ip~--value~192.0.2.1~--all-mail=yes", CLI_ARGS_USAGE, "takes no value"},
    {"decisions~add~--scope~ip~--value~192.0.2.1~--force=yes", CLI_ARGS_USAGE, "takes no value"},
    {"allow~del~--type~site~--value~a~--force", CLI_ARGS_USAGE, "unknown option --force"},
    {"decisions~list~--limit~0", CLI_ARGS_USAGE, "--limit"},
    {"decisions~--limit~5001", CLI_ARGS_USAGE, "--limit"},
    {"decisions~show~AB12CD34~--limit~5", CLI_ARGS_USAGE, "unknown option --limit"},
    {"top~--limit~0", CLI_ARGS_USAGE, "--limit"},
    {"top~--limit~1001", CLI_ARGS_USAGE, "--limit"},
    {"top~--scope~site", CLI_ARGS_USAGE, "--scope"},
    {"allow~add~--type~subject_ip~--value~a|192.0.2.1", CLI_ARGS_USAGE, "--type"},
    {"allow~add~--type~sender_domain~--value~bad domain", CLI_ARGS_DATA, "invalid domain"},
    {"allow~del~1~--type~ip~--value~192.0.2.1", CLI_ARGS_USAGE, "either ID"},
    {"sites~add", CLI_ARGS_USAGE, "missing argument"},
    {"sites~add~a b", CLI_ARGS_DATA, "invalid site name"},
    {"sites~add~acme~--public-key~short", CLI_ARGS_DATA, "40-character Z85"},
    {"sites~add~acme~--public-key~=p<f+xs^88af{THujGttN2{]3tmx!JdlO+?7pR<z~--key-dir~/tmp",
     CLI_ARGS_USAGE, "no --key-dir"},
    {"decisions~list~--public-key~=p<f+xs^88af{THujGttN2{]3tmx!JdlO+?7pR<z", CLI_ARGS_USAGE,
     "unknown option --public-key"},
    /* a reason or a query goes into log lines and terminals: one line, no escapes */
    {"decisions~del~AB12CD34~--reason~oops\nbackstop-aggregator[1]: fake", CLI_ARGS_DATA,
     "one line of printable text"},
    {"allow~add~--type~ip~--value~192.0.2.1~--reason~\x1b[31mred", CLI_ARGS_DATA,
     "one line of printable text"},
    {"why~cheap\rmeds", CLI_ARGS_DATA, "on one line"},
    {"--timeout~0~status", CLI_ARGS_USAGE, "--timeout"},
    {"--socket~~status", CLI_ARGS_USAGE, "--socket"},
    {"--socket~garbage~status", CLI_ARGS_USAGE, "ipc://PATH or tcp://HOST:PORT, not \"garbage\""},
    {"--socket~ipc://~status", CLI_ARGS_USAGE, "--socket wants"},
    {"--socket~tcp://127.0.0.1~status", CLI_ARGS_USAGE, "--socket wants"},
    {"--socket~tcp://127.0.0.1:0~status", CLI_ARGS_USAGE, "--socket wants"},
    {"--socket~tcp://:5555~status", CLI_ARGS_USAGE, "--socket wants"},
    {"--socket~tcp://h\xff:1~status", CLI_ARGS_USAGE, "--socket wants"},
    {"--socket~inproc://x~status", CLI_ARGS_USAGE, "--socket wants"},
    {"--json=1~status", CLI_ARGS_USAGE, "takes no value"},
    {"help~frob", CLI_ARGS_USAGE, "unknown command"},
};

static void test_lines_refused(void **state)
{
    (void)state;
    for (size_t i = 0; i < sizeof(s_bad) / sizeof(s_bad[0]); i++) {
        char buf[512], err[256];
        char *argv[ARGV_MAX];
        cli_args_t a;
        int argc = s_argv(s_bad[i].line, buf, sizeof(buf), argv);
        cli_args_result_t r = cli_args_parse(&a, argc, argv, "alice", err, sizeof(err));
        if (r != s_bad[i].result || strstr(err, s_bad[i].reason) == NULL)
            fail_msg("\"%s\": result %d \"%s\", wanted %d and \"%s\"", s_bad[i].line, r, err,
                     s_bad[i].result, s_bad[i].reason);
        cli_args_free(&a);
    }
}

static void test_help_topics(void **state)
{
    (void)state;
    static const struct {
        const char *line;  /* arguments */
        const char *topic; /* NULL: the whole page */
    } cases[] = {
        {"--help", NULL},
        {"-h~status", NULL},
        {"help", NULL},
        {"help~sites", "sites"},
        {"decisions~--help", "decisions"},
        {"why~-h", "why"},
        {"allow~add~--help", "allow"},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        char buf[256], err[256];
        char *argv[ARGV_MAX];
        cli_args_t a;
        int argc = s_argv(cases[i].line, buf, sizeof(buf), argv);
        if (cli_args_parse(&a, argc, argv, NULL, err, sizeof(err)) != CLI_ARGS_HELP)
            fail_msg("\"%s\" is not a help request", cases[i].line);
        if (cases[i].topic)
            assert_string_equal(a.help_topic, cases[i].topic);
        else
            assert_null(a.help_topic);
        cli_args_free(&a);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_lines_that_parse),
        cmocka_unit_test(test_decision_add_defaults_and_options),
        cmocka_unit_test(test_texts_are_sent_as_the_wire_takes_them),
        cmocka_unit_test(test_global_options),
        cmocka_unit_test(test_lines_refused),
        cmocka_unit_test(test_help_topics),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
