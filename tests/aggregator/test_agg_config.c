/*
 * test_agg_config - the aggregator's checks across keys: each error names the
 * FILE:LINE of the key it refuses (not the section's, not just FILE), a rule
 * window too long for window_resolution says the resolution that fits, and a
 * reload keeps every restart-only key at its running value and names it.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <cmocka.h>

#include "agg_config.h"
#include "xalloc.h"

/* The lines every test config starts with (valid on their own): lines 1 and 2. */
#define S_BASE "control_endpoint = ipc:///tmp/test_agg_config.sock\ndata_dir = /tmp/tac.db\n"

/* A config file holding text; the caller unlinks and frees its path. */
static char *s_file(const char *text)
{
    char *path = xstrdup("/tmp/test_agg_config.XXXXXX");
    int fd = mkstemp(path);
    assert_true(fd >= 0);
    size_t len = strlen(text);
    assert_int_equal(write(fd, text, len), (ssize_t)len);
    close(fd);
    return path;
}

/* Loads text; NULL with the errors, each line prefixed with the file's path, in err. */
static agg_config_t *s_load(const char *text, char *err, size_t errlen, char **path_p)
{
    char *path = s_file(text);
    agg_config_t *c = agg_config_load(path, err, errlen);
    unlink(path);
    if (path_p)
        *path_p = path;
    else
        xfree(path);
    return c;
}

/* Asserts text is refused with a message at path:line containing what. */
static void s_refused_at(const char *text, int line, const char *what)
{
    char err[4096], *path = NULL;
    agg_config_t *c = s_load(text, err, sizeof(err), &path);
    if (c != NULL)
        fail_msg("accepted: %s", text);
    char *want = xasprintf("%s:%d: ", path, line);
    char *at = strstr(err, want);
    if (at == NULL || strstr(at, what) == NULL)
        fail_msg("want \"%s...%s\" in: %s", want, what, err);
    xfree(want);
    xfree(path);
}

static void test_base_config_loads(void **state)
{
    char err[4096];
    agg_config_t *c = s_load(S_BASE, err, sizeof(err), NULL);
    if (!c)
        fail_msg("%s", err);
    agg_config_destroy(&c);
}

/* A rule's reach: fleet, or the one site, written local or site (the CLI's word). */
static void test_reach_site_is_local(void **state)
{
    char err[4096];
    agg_config_t *c = s_load(S_BASE "[rule a]\nreach = site\n\n[rule b]\nreach = local\n\n"
                                    "[rule c]\nreach = fleet\n",
                             err, sizeof(err), NULL);
    if (!c)
        fail_msg("%s", err);
    assert_int_equal(c->nrules, 3);
    assert_int_equal(c->rules[0].reach, BS_REACH_LOCAL);
    assert_int_equal(c->rules[1].reach, BS_REACH_LOCAL);
    assert_int_equal(c->rules[2].reach, BS_REACH_FLEET);
    agg_config_destroy(&c);
}

static void test_long_window_names_its_line_and_the_resolution_that_fits(void **state)
{
    s_refused_at(S_BASE "[rule day]\nscope = subject\nwindow = 1d\n", 5,
                 "rule day: window 1d needs window_resolution >= 22s (a window spans at most "
                 "4096 buckets; window_resolution is 10s)");
    /* the resolution it names is the least that fits: 22s loads, 21s does not */
    char err[4096];
    agg_config_t *c =
        s_load(S_BASE "window_resolution = 22s\n[rule day]\nwindow = 1d\n", err, sizeof(err), NULL);
    if (!c)
        fail_msg("%s", err);
    assert_int_equal(c->span_ms, 3928 * 22000LL);
    agg_config_destroy(&c);
    s_refused_at(S_BASE "window_resolution = 21s\n[rule day]\nwindow = 1d\n", 5,
                 "window 1d needs window_resolution >= 22s");
}

static void test_every_window_too_long_is_reported(void **state)
{
    char err[4096], *path = NULL;
    agg_config_t *c = s_load(S_BASE "window_resolution = 1s\n[rule a]\nwindow = 2h\n"
                                    "[rule b]\nwindow = 1m\n[rule c]\nwindow = 3h\n",
                             err, sizeof(err), &path);
    assert_null(c);
    char *a = xasprintf("%s:5: rule a: window 2h needs window_resolution >= 2s", path);
    char *cc = xasprintf("%s:9: rule c: window 3h needs window_resolution >= 3s", path);
    assert_non_null(strstr(err, a));
    assert_non_null(strstr(err, cc));
    assert_null(strstr(err, "rule b"));
    xfree(a);
    xfree(cc);
    xfree(path);
}

static void test_resolution_must_be_whole_seconds(void **state)
{
    s_refused_at(S_BASE "window_resolution = 1500ms\n", 3,
                 "window_resolution 1500ms must be whole seconds");
}

static void test_max_site_share_names_its_own_line(void **state)
{
    s_refused_at(S_BASE "[rule r]\nscope = subject\nmin_events = 3\nmax_site_share = 2\n", 6,
                 "max_site_share '2' is not a number in (0, 1]");
}

static void test_unknown_class_names_its_own_line(void **state)
{
    s_refused_at(S_BASE "[rule r]\nscope = subject\nclasses = bounce, nonsense\n", 5,
                 "classes: unknown class 'nonsense'");
}

static void test_empty_data_dir_names_its_line(void **state)
{
    s_refused_at("control_endpoint = ipc:///tmp/x.sock\n\ndata_dir =\n", 3,
                 "data_dir must not be empty");
}

static void test_empty_endpoint_names_its_line(void **state)
{
    s_refused_at(S_BASE "snapshot_endpoint =\n", 3, "snapshot_endpoint must not be empty");
}

static void test_tcp_control_endpoint_names_its_line(void **state)
{
    s_refused_at("data_dir = /tmp/x\n# the CLI\ncontrol_endpoint = tcp://127.0.0.1:5\n", 3,
                 "control_endpoint must be an ipc:// endpoint");
}

static void test_peer_errors_name_the_key(void **state)
{
    s_refused_at(S_BASE "peer_snapshot = tcp://127.0.0.1:5\n", 3,
                 "a peer needs both peer_decisions and peer_snapshot");
    s_refused_at(S_BASE "peer_public_key = short\n", 3,
                 "peer_public_key is not a 40-character Z85 key");
    s_refused_at(S_BASE "peer_decisions = tcp://127.0.0.1:5\npeer_snapshot = tcp://192.0.2.1:6\n",
                 4, "plain mode (no server_key_file): peer endpoints must be loopback");
    s_refused_at(S_BASE "server_key_file = /tmp/k\npeer_decisions = tcp://192.0.2.1:5\n"
                        "peer_snapshot = tcp://192.0.2.1:6\n",
                 4, "peer_public_key must be a 40-character Z85 key");
}

/* An endpoint zmq_bind or zmq_connect cannot take is refused at its line, in CURVE mode
 * too (where nothing else looks at its text): a peer endpoint libzmq would retry forever. */
static void test_malformed_endpoints_name_their_line(void **state)
{
    s_refused_at(S_BASE "server_key_file = /tmp/k\npeer_public_key = "
                        "rq:rM>}U?@Lns47E1%kR.o@n%FcmmsL/@{H8]yf7\n"
                        "peer_decisions = $ADE\npeer_snapshot = tcp://192.0.2.1:6\n",
                 5, "peer_decisions $ADE is not an endpoint");
    s_refused_at(S_BASE "server_key_file = /tmp/k\npeer_public_key = "
                        "rq:rM>}U?@Lns47E1%kR.o@n%FcmmsL/@{H8]yf7\n"
                        "peer_decisions = tcp://192.0.2.1:5\npeer_snapshot = tcp://192.0.2.1\n",
                 6, "peer_snapshot tcp://192.0.2.1 has no :PORT");
    s_refused_at(S_BASE "peer_decisions = tcp://*:5\npeer_snapshot = tcp://127.0.0.1:6\n", 3,
                 "peer_decisions tcp://*:5 has no host or address to connect to");
    s_refused_at(S_BASE "event_endpoint = tcp://127.0.0.1:70000\n", 3,
                 "event_endpoint tcp://127.0.0.1:70000 has no port (0-65535 or *)");
    s_refused_at(S_BASE "server_key_file = /tmp/k\ndecision_endpoint = tcp://$HOST:5571\n", 4,
                 "decision_endpoint tcp://$HOST:5571 has no host, address, interface or *");
    s_refused_at(S_BASE "snapshot_endpoint = 127.0.0.1:5572\n", 3,
                 "snapshot_endpoint 127.0.0.1:5572 is not an endpoint");
    /* what ZeroMQ takes passes */
    char err[4096];
    agg_config_t *c = s_load(S_BASE "server_key_file = /tmp/k\nevent_endpoint = tcp://*:5570\n"
                                    "decision_endpoint = tcp://[::1]:5571\n"
                                    "snapshot_endpoint = tcp://eth0:5572\n"
                                    "peer_public_key = rq:rM>}U?@Lns47E1%kR.o@n%FcmmsL/@{H8]yf7\n"
                                    "peer_decisions = tcp://agg2.example.net:5571\n"
                                    "peer_snapshot = tcp://10.0.0.1;192.0.2.2:5572\n",
                             err, sizeof(err), NULL);
    if (c == NULL)
        fail_msg("refused: %s", err);
    agg_config_destroy(&c);
    /* a link-local peer with its zone, a system-picked port to bind, a source port 0 */
    c = s_load(S_BASE "server_key_file = /tmp/k\nevent_endpoint = tcp://127.0.0.1:0\n"
                      "peer_public_key = rq:rM>}U?@Lns47E1%kR.o@n%FcmmsL/@{H8]yf7\n"
                      "peer_decisions = tcp://[fe80::fc:ff:fe00:1%eth0]:5556\n"
                      "peer_snapshot = tcp://127.0.0.1:0;fe80::1%lo:5572\n",
               err, sizeof(err), NULL);
    if (c == NULL)
        fail_msg("refused: %s", err);
    agg_config_destroy(&c);
    s_refused_at(S_BASE "server_key_file = /tmp/k\npeer_public_key = "
                        "rq:rM>}U?@Lns47E1%kR.o@n%FcmmsL/@{H8]yf7\n"
                        "peer_decisions = tcp://[fe80::1%]:5\npeer_snapshot = tcp://192.0.2.1:6\n",
                 5, "has no host or address to connect to");
}

/* Two endpoints on one address would fail at the second bind (exit 69 at start): -n and
 * the start refuse them at the FILE:LINE of one of them, naming the other. */
static void test_endpoints_on_one_address_are_refused(void **state)
{
    s_refused_at(S_BASE "event_endpoint = tcp://127.0.0.1:5570\n"
                        "decision_endpoint = tcp://127.0.0.1:5570\n",
                 4,
                 "decision_endpoint tcp://127.0.0.1:5570 takes the address event_endpoint "
                 "tcp://127.0.0.1:5570 binds (");
    s_refused_at(S_BASE "server_key_file = /tmp/k\nsnapshot_endpoint = tcp://*:6000\n"
                        "event_endpoint = tcp://192.0.2.1:6000\n",
                 5,
                 "event_endpoint tcp://192.0.2.1:6000 takes the address snapshot_endpoint "
                 "tcp://*:6000 binds (");
    s_refused_at(S_BASE "snapshot_endpoint = ipc:///tmp/test_agg_config.sock\n", 3,
                 "snapshot_endpoint ipc:///tmp/test_agg_config.sock takes the address "
                 "control_endpoint ipc:///tmp/test_agg_config.sock binds (");
    /* the default decision_endpoint's port, on the address the default binds: at the line
     * that is in the file */
    s_refused_at(S_BASE "event_endpoint = tcp://localhost:5571\n", 3,
                 "event_endpoint tcp://localhost:5571 takes the address decision_endpoint "
                 "tcp://127.0.0.1:5571 binds (by default)");
    /* other ports, other addresses, ports the system picks: fine */
    char err[4096];
    agg_config_t *c = s_load(S_BASE "event_endpoint = tcp://127.0.0.1:0\n"
                                    "decision_endpoint = tcp://127.0.0.1:0\n"
                                    "snapshot_endpoint = tcp://127.0.0.2:5571\n",
                             err, sizeof(err), NULL);
    if (c == NULL)
        fail_msg("refused: %s", err);
    agg_config_destroy(&c);
}

static void test_more_rules_than_counting_takes_are_refused(void **state)
{
    char *text = xstrdup(S_BASE);
    for (int i = 0; i < 33; i++) {
        char *more = xasprintf("%s[rule r%d]\n", text, i);
        xfree(text);
        text = more;
    }
    /* the 33rd section is on line 3 + 32 */
    s_refused_at(text, 35, "rule r32: more than 32 rules");
    xfree(text);
}

static void test_restart_keys_are_keys_of_the_table(void **state)
{
    const cfg_schema_t *schema = agg_config_schema();
    const char *const *keys = agg_config_restart_keys();
    size_t n = 0;
    for (; keys[n]; n++) {
        bool found = false;
        for (const cfg_param_t *p = schema->params; p->name; p++)
            found = found || !strcmp(p->name, keys[n]);
        if (!found)
            fail_msg("restart-only key %s is not a parameter", keys[n]);
    }
    assert_true(n >= 15);
}

static void test_reload_keeps_every_restart_only_key(void **state)
{
    char err[4096], changed[1024];
    agg_config_t *running = s_load(S_BASE, err, sizeof(err), NULL);
    assert_non_null(running);
    agg_config_t *fresh =
        s_load("control_endpoint = ipc:///tmp/other.sock\ndata_dir = /tmp/other.db\n"
               "event_endpoint = tcp://127.0.0.1:1\ndecision_endpoint = tcp://127.0.0.1:2\n"
               "snapshot_endpoint = tcp://127.0.0.1:3\ncontrol_group = adm\nuser = nobody\n"
               "server_key_file = /tmp/k\npeer_decisions = tcp://127.0.0.1:4\n"
               "peer_snapshot = tcp://127.0.0.1:5\n"
               "peer_public_key = nQn9UqgFNv7p*sbah5nt>[AxHUSZCF)I:}ffR]T{\n"
               "window_resolution = 20s\nheartbeat_interval = 2s\nchange_log = 100\n"
               "sync_decisions = no\n"
               /* these take effect at once */
               "flush_interval = 2s\nmax_keys = 1000\nextend_min = 5m\n[rule r]\nwindow = 1h\n",
               err, sizeof(err), NULL);
    if (!fresh)
        fail_msg("%s", err);
    int n = agg_config_keep_restart(fresh, running, changed, sizeof(changed), err, sizeof(err));
    assert_int_equal(n, 15);
    assert_string_equal(changed, "event_endpoint decision_endpoint snapshot_endpoint "
                                 "control_endpoint control_group data_dir user server_key_file "
                                 "peer_decisions peer_snapshot peer_public_key window_resolution "
                                 "heartbeat_interval change_log sync_decisions");
    /* the running values, as status and the rest of the daemon will read them */
    assert_string_equal(fresh->event_endpoint, running->event_endpoint);
    assert_string_equal(fresh->control_endpoint, running->control_endpoint);
    assert_string_equal(fresh->data_dir, running->data_dir);
    assert_string_equal(fresh->control_group, "");
    assert_string_equal(fresh->user, "");
    assert_string_equal(fresh->server_key_file, "");
    assert_string_equal(fresh->peer_decisions, "");
    assert_string_equal(fresh->peer_public_key, "");
    assert_int_equal(fresh->window_resolution_ms, 10000);
    assert_int_equal(fresh->heartbeat_interval_ms, 1000);
    assert_int_equal(fresh->change_log, 4096);
    assert_true(fresh->sync_decisions);
    /* the rest is the new file's; span follows the kept resolution */
    assert_int_equal(fresh->flush_interval_ms, 2000);
    assert_int_equal(fresh->max_keys, 1000);
    assert_int_equal(fresh->extend_min_ms, 300000);
    assert_int_equal(fresh->nrules, 1);
    assert_int_equal(fresh->span_ms, 3600000);
    agg_config_destroy(&fresh);
    agg_config_destroy(&running);
}

static void test_reload_with_nothing_restart_only_changed_says_nothing(void **state)
{
    char err[4096], changed[1024];
    agg_config_t *running = s_load(S_BASE, err, sizeof(err), NULL);
    agg_config_t *fresh = s_load(S_BASE "flush_interval = 2s\n", err, sizeof(err), NULL);
    assert_non_null(running);
    assert_non_null(fresh);
    assert_int_equal(
        agg_config_keep_restart(fresh, running, changed, sizeof(changed), err, sizeof(err)), 0);
    assert_string_equal(changed, "");
    agg_config_destroy(&fresh);
    agg_config_destroy(&running);
}

static void test_reload_refuses_rules_the_running_resolution_cannot_count(void **state)
{
    char err[4096], changed[1024], *path = NULL;
    agg_config_t *running = s_load(S_BASE, err, sizeof(err), NULL);
    /* fits the new resolution, which a reload does not take */
    agg_config_t *fresh = s_load(S_BASE "window_resolution = 30s\n[rule day]\nwindow = 1d\n", err,
                                 sizeof(err), &path);
    assert_non_null(running);
    assert_non_null(fresh);
    assert_int_equal(
        agg_config_keep_restart(fresh, running, changed, sizeof(changed), err, sizeof(err)), -1);
    char *want = xasprintf("%s:5: rule day: window 1d needs window_resolution >= 22s", path);
    if (strstr(err, want) == NULL)
        fail_msg("want \"%s\" in: %s", want, err);
    xfree(want);
    xfree(path);
    agg_config_destroy(&fresh);
    agg_config_destroy(&running);
}

static void test_where_names_the_line_or_the_file(void **state)
{
    char err[4096], buf[256], *path = NULL;
    agg_config_t *c = s_load(S_BASE "user = nobody\n", err, sizeof(err), &path);
    assert_non_null(c);
    char *want = xasprintf("%s:3", path);
    assert_string_equal(agg_config_where(c, "user", buf, sizeof(buf)), want);
    assert_string_equal(agg_config_where(c, "control_group", buf, sizeof(buf)), path);
    xfree(want);
    xfree(path);
    agg_config_destroy(&c);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_base_config_loads),
        cmocka_unit_test(test_reach_site_is_local),
        cmocka_unit_test(test_long_window_names_its_line_and_the_resolution_that_fits),
        cmocka_unit_test(test_every_window_too_long_is_reported),
        cmocka_unit_test(test_resolution_must_be_whole_seconds),
        cmocka_unit_test(test_max_site_share_names_its_own_line),
        cmocka_unit_test(test_unknown_class_names_its_own_line),
        cmocka_unit_test(test_empty_data_dir_names_its_line),
        cmocka_unit_test(test_empty_endpoint_names_its_line),
        cmocka_unit_test(test_tcp_control_endpoint_names_its_line),
        cmocka_unit_test(test_peer_errors_name_the_key),
        cmocka_unit_test(test_malformed_endpoints_name_their_line),
        cmocka_unit_test(test_endpoints_on_one_address_are_refused),
        cmocka_unit_test(test_more_rules_than_counting_takes_are_refused),
        cmocka_unit_test(test_restart_keys_are_keys_of_the_table),
        cmocka_unit_test(test_reload_keeps_every_restart_only_key),
        cmocka_unit_test(test_reload_with_nothing_restart_only_changed_says_nothing),
        cmocka_unit_test(test_reload_refuses_rules_the_running_resolution_cannot_count),
        cmocka_unit_test(test_where_names_the_line_or_the_file),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
