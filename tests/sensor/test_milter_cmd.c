/* test_milter_cmd - "backstop-sensor milter -n": 0 for a configuration the start would take,
 * 78 naming the file (and line) for one it would refuse after loading it (the files it names:
 * local rules, operator decisions, the key pair). -n opens no socket and no state, so these
 * run as any user. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "sensor_cmds.h"
#include "xalloc.h"
#include "zsock.h"

#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sysexits.h>
#include <unistd.h>

/* A directory with a good rule file, decision file and key pair. */
typedef struct {
    char dir[64];   /* mkdtemp */
    char *conf;     /* DIR/sensor.conf, written by s_check */
    char *out;      /* DIR/stderr, what -n wrote there */
    char *rules;    /* DIR/rules: compiles */
    char *bad_re;   /* DIR/bad_re: a regex that does not compile, line 2 */
    char *dec;      /* DIR/decisions: parses */
    char *bad_dec;  /* DIR/bad_dec: the old documented order, line 2 */
    char *key;      /* DIR/sensor.key: a key pair, mode 0600; NULL without CURVE */
    char *pub_only; /* DIR/public.key: a public key only */
} s_dir_t;

static void s_write(const char *path, const char *text)
{
    FILE *fp = fopen(path, "w");
    assert_non_null(fp);
    fputs(text, fp);
    fclose(fp);
}

static int s_setup(void **state)
{
    s_dir_t *d = xcalloc(1, sizeof(*d));
    snprintf(d->dir, sizeof(d->dir), "/tmp/test_milter_cmd.XXXXXX");
    assert_non_null(mkdtemp(d->dir));
    d->conf = xasprintf("%s/sensor.conf", d->dir);
    d->out = xasprintf("%s/stderr", d->dir);
    d->rules = xasprintf("%s/rules", d->dir);
    d->bad_re = xasprintf("%s/bad_re", d->dir);
    d->dec = xasprintf("%s/decisions", d->dir);
    d->bad_dec = xasprintf("%s/bad_dec", d->dir);
    s_write(d->rules, "/^Subject:.*watches/ REJECT watches\n");
    s_write(d->bad_re, "# the reviewer's rule\n/^From:.*(/ REJECT x\n");
    s_write(d->dec, "# scope action ttl value\norig_subject reject 1h cheap watches\n"
                    "client_ip tempfail 0 192.0.2.1\n");
    s_write(d->bad_dec, "# scope value action ttl\norig_subject cheap reject 1h\n");
    if (zsock_has_curve()) {
        zsock_keys_t keys;
        d->key = xasprintf("%s/sensor.key", d->dir);
        d->pub_only = xasprintf("%s/public.key", d->dir);
        assert_int_equal(zsock_keys_generate(&keys), 0);
        assert_int_equal(zsock_keys_save(d->key, &keys, 1), 0);
        assert_int_equal(zsock_keys_save(d->pub_only, &keys, 0), 0);
    }
    *state = d;
    return 0;
}

static int s_teardown(void **state)
{
    s_dir_t *d = *state;
    char *files[] = {d->conf, d->out, d->rules, d->bad_re, d->dec, d->bad_dec, d->key, d->pub_only};
    for (size_t i = 0; i < sizeof(files) / sizeof(files[0]); i++) {
        if (files[i])
            unlink(files[i]);
        xfree(files[i]);
    }
    rmdir(d->dir);
    xfree(d);
    return 0;
}

/* Runs "milter FLAG -c CONF" with conf as the file; its exit status, stderr in d->out. */
static int s_run(s_dir_t *d, char *flag, const char *conf)
{
    s_write(d->conf, conf);
    char *argv[] = {"milter", flag, "-c", d->conf, NULL};
    fflush(stderr);
    int saved = dup(2);
    int fd = open(d->out, O_WRONLY | O_CREAT | O_TRUNC, 0600);
    assert_true(saved >= 0 && fd >= 0);
    dup2(fd, 2);
    close(fd);
    int rc = milter_cmd_main(4, argv);
    fflush(stderr);
    dup2(saved, 2);
    close(saved);
    return rc;
}

/* Runs "milter -n -c CONF" with conf as the file; its exit status, stderr in d->out. */
static int s_check(s_dir_t *d, const char *conf)
{
    return s_run(d, "-n", conf);
}

/* Runs "milter -f -c CONF" (a start) with conf as the file; its exit status, stderr in
 * d->out. Give it a socket in a directory that does not exist: a start that got past its
 * checks then ends at opening it (69) instead of serving. */
static int s_start(s_dir_t *d, const char *conf)
{
    return s_run(d, "-f", conf);
}

/* Does what -n wrote on stderr contain text? */
static bool s_said(s_dir_t *d, const char *text)
{
    char buf[4096];
    FILE *fp = fopen(d->out, "r");
    assert_non_null(fp);
    size_t n = fread(buf, 1, sizeof(buf) - 1, fp);
    fclose(fp);
    buf[n] = '\0';
    if (!strstr(buf, text)) {
        printf("expected \"%s\" in: %s\n", text, buf);
        return false;
    }
    return true;
}

static void test_good_files_pass(void **state)
{
    s_dir_t *d = *state;
    char *conf = xasprintf("site = s1\nlocal_rule_file = %s\ndecision_file = %s\n"
                           "internal_networks = 10.0.0.0/8, 192.0.2.0/24\n",
                           d->rules, d->dec);
    assert_int_equal(s_check(d, conf), EX_OK);
    xfree(conf);
}

static void test_missing_local_rule_file_is_refused(void **state)
{
    s_dir_t *d = *state;
    assert_int_equal(s_check(d, "site = s1\nlocal_rule_file = /nonexistent\n"), EX_CONFIG);
    /* the line of the key that names the file */
    assert_true(s_said(d, ".conf:2: local_rule_file: /nonexistent"));
}

static void test_rule_that_does_not_compile_is_refused_with_its_line(void **state)
{
    s_dir_t *d = *state;
    char *conf = xasprintf("site = s1\nlocal_rule_file = %s\n", d->bad_re);
    char *where = xasprintf(".conf:2: local_rule_file: %s:2:", d->bad_re);
    assert_int_equal(s_check(d, conf), EX_CONFIG);
    assert_true(s_said(d, where));
    xfree(where);
    xfree(conf);
}

static void test_missing_decision_file_is_refused(void **state)
{
    s_dir_t *d = *state;
    assert_int_equal(s_check(d, "site = s1\ndecision_file = /nonexistent\n"), EX_CONFIG);
    assert_true(s_said(d, ".conf:2: decision_file: /nonexistent"));
}

static void test_bad_decision_line_is_refused_with_its_line(void **state)
{
    s_dir_t *d = *state;
    char *conf = xasprintf("site = s1\ndecision_file = %s\n", d->bad_dec);
    char *where = xasprintf("decision_file: %s:2:", d->bad_dec);
    assert_int_equal(s_check(d, conf), EX_CONFIG);
    assert_true(s_said(d, where));
    xfree(where);
    xfree(conf);
}

/* A decision that could match no mail (a client_net wider than the /24 mail is keyed by) is a
 * configuration error -n reports with its line, not a block that silently never fires. */
static void test_decision_matching_no_mail_is_refused_with_its_line(void **state)
{
    s_dir_t *d = *state;
    s_write(d->bad_dec, "# scope action ttl value\nclient_net reject 0 192.0.0.0/16\n");
    char *conf = xasprintf("site = s1\ndecision_file = %s\n", d->bad_dec);
    char *where =
        xasprintf("decision_file: %s:2: network \"192.0.0.0/16\" would match no mail", d->bad_dec);
    assert_int_equal(s_check(d, conf), EX_CONFIG);
    assert_true(s_said(d, where));
    xfree(where);
    xfree(conf);
}

static void test_every_bad_file_is_reported(void **state)
{
    s_dir_t *d = *state;
    assert_int_equal(
        s_check(d, "site = s1\nlocal_rule_file = /nonexistent/r\ndecision_file = /nonexistent/d\n"),
        EX_CONFIG);
    assert_true(s_said(d, ".conf:2: local_rule_file: /nonexistent/r"));
    assert_true(s_said(d, ".conf:3: decision_file: /nonexistent/d"));
}

static void test_bad_internal_network_is_refused(void **state)
{
    s_dir_t *d = *state;
    assert_int_equal(s_check(d, "site = s1\ninternal_networks = 10.0.0.0/8 # x\n"), EX_CONFIG);
    assert_true(s_said(d, ":2: internal_networks: bad network '#'"));
}

static void test_bad_public_key_is_refused(void **state)
{
    s_dir_t *d = *state;
    assert_int_equal(s_check(d, "site = s1\naggregator_events = tcp://127.0.0.1:1\n"
                                "aggregator_public_key = notakey\n"),
                     EX_CONFIG);
    assert_true(s_said(d, ":3: aggregator_public_key"));
}

static void test_key_files(void **state)
{
    s_dir_t *d = *state;
    assert_int_equal(s_check(d, "site = s1\nsensor_secret_key_file = /nonexistent\n"), EX_CONFIG);
    assert_true(s_said(d, ".conf:2: sensor_secret_key_file: /nonexistent"));
    if (!d->key)
        skip();
    char *conf = xasprintf("site = s1\naggregator_events = tcp://127.0.0.1:1\n"
                           "aggregator_decisions = tcp://127.0.0.1:2\n"
                           "aggregator_snapshot = tcp://127.0.0.1:3\n"
                           "aggregator_public_key = Yne@$w-vo<fVvi]a<NY6T1ed:M$fCG*[IaLV{hID\n"
                           "sensor_secret_key_file = %s\n",
                           d->key);
    assert_int_equal(s_check(d, conf), EX_OK);
    xfree(conf);
    conf = xasprintf("site = s1\nsensor_secret_key_file = %s\n", d->pub_only);
    assert_int_equal(s_check(d, conf), EX_CONFIG);
    assert_true(s_said(d, ".conf:2: sensor_secret_key_file: "));
    assert_true(s_said(d, "holds no secret key"));
    xfree(conf);
}

/* An aggregator named without its decision feed and snapshot endpoint never goes live (the
 * log stays at state=joining, on_no_aggregator applies for ever): -n and the start refuse it
 * on the line of the key that is set, naming the ones missing. */
static void test_incomplete_aggregator_is_refused(void **state)
{
    s_dir_t *d = *state;
    static const char *const bad[][2] = {
        {"site = s1\naggregator_events = tcp://127.0.0.1:1\n",
         ":2: aggregator_events is set but aggregator_decisions and aggregator_snapshot are "
         "not"},
        {"site = s1\naggregator_events = tcp://127.0.0.1:1\n"
         "aggregator_snapshot = tcp://127.0.0.1:3\n",
         ":2: aggregator_events is set but aggregator_decisions is not"},
        {"site = s1\naggregator_events = tcp://127.0.0.1:1\n"
         "aggregator_decisions = tcp://127.0.0.1:2\n",
         ":2: aggregator_events is set but aggregator_snapshot is not"},
        {"site = s1\naggregator_snapshot = tcp://127.0.0.1:3\n",
         ":2: aggregator_snapshot is set but aggregator_events and aggregator_decisions are "
         "not"},
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        assert_int_equal(s_check(d, bad[i][0]), EX_CONFIG);
        assert_true(s_said(d, bad[i][1]));
        char *conf = xasprintf("%smilter_socket = unix:%s/no/such/dir/s.sock\n"
                               "state_directory = %s/state\n",
                               bad[i][0], d->dir, d->dir);
        assert_int_equal(s_start(d, conf), EX_CONFIG);
        assert_true(s_said(d, bad[i][1]));
        xfree(conf);
    }
    assert_int_equal(s_check(d, "site = s1\naggregator_events = tcp://127.0.0.1:1\n"
                                "aggregator_decisions = tcp://127.0.0.1:2\n"
                                "aggregator_snapshot = tcp://127.0.0.1:3\n"),
                     EX_OK);
}

/* An endpoint zmq_connect() refuses passed -n, and the start logged one "Invalid argument"
 * and went silent: -n and the start refuse it as any configuration error, with its line. */
static void test_malformed_endpoint_is_refused(void **state)
{
    s_dir_t *d = *state;
    char *conf = xasprintf("site = s1\naggregator_events = 127.0.0.1:35570\n"
                           "aggregator_decisions = tcp://127.0.0.1:2\n"
                           "aggregator_snapshot = tcp://127.0.0.1:3\n"
                           "milter_socket = unix:%s/no/such/dir/s.sock\n"
                           "state_directory = %s/state\n",
                           d->dir, d->dir);
    const char *said = ":2: aggregator_events 127.0.0.1:35570 is not an endpoint";
    assert_int_equal(s_check(d, conf), EX_CONFIG);
    assert_true(s_said(d, said));
    assert_int_equal(s_start(d, conf), EX_CONFIG);
    assert_true(s_said(d, said));
    xfree(conf);
}

/* libmilter takes a spec without a type as a path: "bogus" passed -n and the start made
 * ./bogus. -n and the start take the forms it documents and refuse others with their line. */
static void test_milter_socket_forms(void **state)
{
    s_dir_t *d = *state;
    static const char *const good[] = {"unix:/run/backstop/sensor.sock",
                                       "local:/run/backstop/sensor.sock",
                                       "inet:8891@127.0.0.1",
                                       "inet:8891@localhost",
                                       "inet:8891",
                                       "inet:8891@[127.0.0.1]",
                                       "inet6:8891@::1",
                                       "inet6:8891@[::1]",
                                       "inet:smtp@127.0.0.1"};
    for (size_t i = 0; i < sizeof(good) / sizeof(good[0]); i++) {
        char *conf = xasprintf("site = s1\nmilter_socket = %s\n", good[i]);
        printf("%s\n", good[i]);
        assert_int_equal(s_check(d, conf), EX_OK);
        xfree(conf);
    }
    static const char *const bad[] = {"bogus",
                                      "run/sensor.sock",
                                      "unix:sensor.sock",
                                      "tcp:8891@x",
                                      "inet:@127.0.0.1",
                                      "inet:0@127.0.0.1",
                                      "inet:70000",
                                      "inet:8891@::1",
                                      "inet6:8891@127.0.0.1",
                                      "inet:8891@a b",
                                      "inet:8891@",
                                      "inet:no-such-service-x",
                                      "inet:8891@[::1",
                                      "unix:"};
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        char *conf = xasprintf("site = s1\nmilter_socket = %s\n", bad[i]);
        char *said = xasprintf(".conf:2: milter_socket %s ", bad[i]);
        printf("%s\n", bad[i]);
        assert_int_equal(s_check(d, conf), EX_CONFIG);
        assert_true(s_said(d, said));
        xfree(said);
        xfree(conf);
    }
    /* the start refuses it before libmilter makes a file of it (a state_directory it cannot
     * make ends a start that got that far, 73, instead of serving) */
    char *cwd = getcwd(NULL, 0);
    assert_int_equal(chdir(d->dir), 0);
    char *conf =
        xasprintf("site = s1\nmilter_socket = bogus\nstate_directory = %s/no/such\n", d->dir);
    int rc = s_start(d, conf);
    bool made = access("bogus", F_OK) == 0;
    unlink("bogus");
    assert_int_equal(chdir(cwd), 0);
    free(cwd);
    xfree(conf);
    assert_int_equal(rc, EX_CONFIG);
    assert_false(made);
    assert_true(s_said(d, ".conf:2: milter_socket bogus "));
}

/* A state_directory the start cannot make (it makes the last component only) passed -n and
 * the start exited 73: -n says so, with its line. One it can make passes. */
static void test_state_directory_the_start_cannot_make_is_refused(void **state)
{
    s_dir_t *d = *state;
    char *conf = xasprintf("site = s1\nstate_directory = %s/no/such\n", d->dir);
    assert_int_equal(s_check(d, conf), EX_CONFIG);
    assert_true(s_said(d, ".conf:2: state_directory "));
    assert_true(s_said(d, "/no/such does not exist"));
    xfree(conf);
    conf = xasprintf("site = s1\nstate_directory = %s\n", d->rules);
    assert_int_equal(s_check(d, conf), EX_CONFIG);
    assert_true(s_said(d, ".conf:2: state_directory "));
    assert_true(s_said(d, "is not a directory"));
    xfree(conf);
    conf = xasprintf("site = s1\nstate_directory = %s/new\n", d->dir);
    assert_int_equal(s_check(d, conf), EX_OK);
    xfree(conf);
}

/* The README's example, with its placeholder key, a key file and a rule file that are not
 * there: -n reports all three, each on the line of its key, not only the first. */
static void test_every_error_is_reported_with_its_line(void **state)
{
    s_dir_t *d = *state;
    assert_int_equal(s_check(d, "site = acme\n"
                                "milter_socket = unix:/run/backstop/sensor.sock\n"
                                "aggregator_events = tcp://agg.example.net:5570\n"
                                "aggregator_decisions = tcp://agg.example.net:5571\n"
                                "aggregator_snapshot = tcp://agg.example.net:5572\n"
                                "aggregator_public_key = rL0...Z85...\n"
                                "sensor_secret_key_file = /nonexistent/acme.key\n"
                                "internal_networks = 10.0.0.0/8\n"
                                "local_rule_file = /nonexistent/bounce_checks\n"
                                "decision_file = /nonexistent/decisions\n"
                                "user = no-such-user-backstop\n"),
                     EX_CONFIG);
    assert_true(s_said(d, ".conf:6: aggregator_public_key is not"));
    assert_true(s_said(d, ".conf:7: sensor_secret_key_file: /nonexistent/acme.key"));
    assert_true(s_said(d, ".conf:9: local_rule_file: /nonexistent/bounce_checks"));
    assert_true(s_said(d, ".conf:10: decision_file: /nonexistent/decisions"));
    assert_true(s_said(d, ".conf:11: user no-such-user-backstop: no such user"));
}

/* An unknown user gave 78 under -n and 67 at the start (from the daemon's log): the start now
 * refuses it as -n does, before it opens anything: 78 (EX_CONFIG), with its line. */
static void test_unknown_user_is_a_configuration_error_for_n_and_start(void **state)
{
    s_dir_t *d = *state;
    char *conf = xasprintf("site = s1\nuser = no-such-user-backstop\n"
                           "milter_socket = unix:%s/no/such/dir/s.sock\n"
                           "state_directory = %s/state\n",
                           d->dir, d->dir);
    assert_int_equal(s_check(d, conf), EX_CONFIG);
    assert_true(s_said(d, ".conf:2: user no-such-user-backstop: no such user"));
    assert_int_equal(s_start(d, conf), EX_CONFIG);
    assert_true(s_said(d, ".conf:2: user no-such-user-backstop: no such user"));
    xfree(conf);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_good_files_pass, s_setup, s_teardown),
        cmocka_unit_test_setup_teardown(test_missing_local_rule_file_is_refused, s_setup,
                                        s_teardown),
        cmocka_unit_test_setup_teardown(test_rule_that_does_not_compile_is_refused_with_its_line,
                                        s_setup, s_teardown),
        cmocka_unit_test_setup_teardown(test_missing_decision_file_is_refused, s_setup, s_teardown),
        cmocka_unit_test_setup_teardown(test_bad_decision_line_is_refused_with_its_line, s_setup,
                                        s_teardown),
        cmocka_unit_test_setup_teardown(test_decision_matching_no_mail_is_refused_with_its_line,
                                        s_setup, s_teardown),
        cmocka_unit_test_setup_teardown(test_every_bad_file_is_reported, s_setup, s_teardown),
        cmocka_unit_test_setup_teardown(test_bad_internal_network_is_refused, s_setup, s_teardown),
        cmocka_unit_test_setup_teardown(test_bad_public_key_is_refused, s_setup, s_teardown),
        cmocka_unit_test_setup_teardown(test_key_files, s_setup, s_teardown),
        cmocka_unit_test_setup_teardown(test_incomplete_aggregator_is_refused, s_setup, s_teardown),
        cmocka_unit_test_setup_teardown(test_malformed_endpoint_is_refused, s_setup, s_teardown),
        cmocka_unit_test_setup_teardown(test_milter_socket_forms, s_setup, s_teardown),
        cmocka_unit_test_setup_teardown(test_state_directory_the_start_cannot_make_is_refused,
                                        s_setup, s_teardown),
        cmocka_unit_test_setup_teardown(test_every_error_is_reported_with_its_line, s_setup,
                                        s_teardown),
        cmocka_unit_test_setup_teardown(test_unknown_user_is_a_configuration_error_for_n_and_start,
                                        s_setup, s_teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
