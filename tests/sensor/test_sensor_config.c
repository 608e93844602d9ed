/* test_sensor_config - defaults, units, bounds and cross-field checks of the sensor's table,
 * and what a reload may not change. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "sensor_config.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static sensor_config_t *s_load_text(const char *text, char *err, size_t errlen)
{
    char path[] = "/tmp/test_sensor_config.XXXXXX";
    int fd = mkstemp(path);
    assert_true(fd >= 0);
    assert_int_equal(write(fd, text, strlen(text)), (ssize_t)strlen(text));
    close(fd);
    sensor_config_t *c = sensor_config_load(path, err, errlen);
    unlink(path);
    return c;
}

static void test_defaults(void **state)
{
    char err[512];
    sensor_config_t *c = s_load_text("site = s1\n", err, sizeof(err));
    assert_non_null(c);
    assert_string_equal(c->site, "s1");
    assert_true(c->sensor_id[0] != '\0'); /* host name */
    assert_int_equal(c->ledger_ttl_ms, 7LL * 24 * 3600 * 1000);
    assert_int_equal(c->heartbeat_timeout_ms, 3000);
    assert_int_equal(c->on_internal_error, SENSOR_FAIL_ACCEPT);
    assert_int_equal(c->on_no_aggregator, SENSOR_FAIL_ACCEPT);
    assert_true(sensor_config_enforces_class(c, "bounce"));
    assert_false(sensor_config_enforces_class(c, "normal"));
    sensor_config_destroy(&c);
    assert_null(c);
    sensor_config_destroy(&c);
}

static void test_units_and_enums(void **state)
{
    char err[512];
    sensor_config_t *c = s_load_text("site = s1\nlocal_rule_period = 2m\nmessage_limit = 64k\n"
                                     "on_overload = tempfail\nlocal_block_action = tag\n"
                                     "enforce_classes = bounce, autoreply\n",
                                     err, sizeof(err));
    assert_non_null(c);
    assert_int_equal(c->local_rule_period_ms, 120000);
    assert_int_equal(c->message_limit, 65536);
    assert_int_equal(c->on_overload, SENSOR_FAIL_TEMPFAIL);
    assert_int_equal(c->local_block_action, SENSOR_LOCAL_TAG);
    assert_true(sensor_config_enforces_class(c, "autoreply"));
    sensor_config_destroy(&c);
}

/* 65 bytes: one more than a site or sensor name may have (WIRE_MAX_ID) */
#define S_65 "a1234567890123456789012345678901234567890123456789012345678901234"
/* a valid Z85 CURVE public key (libzmq's documented client example) */
#define S_KEY "Yne@$w-vo<fVvi]a<NY6T1ed:M$fCG*[IaLV{hID"

typedef struct {
    const char *text;  /* config */
    const char *error; /* expected in the message */
} s_bad_t;

static const s_bad_t s_bad[] = {
    {"sensor_id = x\n", "site is required"},
    {"site = s\nbogus = 1\n", ":2:"},
    {"site = s\nmessage_limit = 1k\n", ":2:"},
    {"site = s\nmilter_umask = 999\n", "milter_umask"},
    {"site = s\nenforce_classes = bounce, spam\n", "spam"},
    {"site = s\naggregator_decisions = tcp://127.0.0.1:1\n", "aggregator_snapshot"},
    {"site = s\non_internal_error = maybe\n", ":2:"},
    {"site = s\naggregator_backup_events = tcp://127.0.0.1:1\n", "backup aggregator"},
    /* at or below the aggregator's 1 s heartbeat a live feed would flap */
    {"site = s\nheartbeat_timeout = 1s\n", "heartbeat_timeout"},
    {"site = s\nheartbeat_timeout = 1499ms\n", "heartbeats every 1s"},
    /* names the aggregator would refuse on every batch (bad_site) or could not pack */
    {"site = acme corp\n", ":1: site \"acme corp\""},
    {"site = a/b\n", ":1: site"},
    {"site = " S_65 "\n", ":1: site"},
    {"site = caf\xc3\xa9\n", ":1: site"},
    {"site = s\xff\n", ":1: site"},
    {"site = s\nsensor_id = mx 1\n", ":2: sensor_id"},
    {"site = s\nsensor_id = " S_65 "\n", ":2: sensor_id"},
    {"site = s\nsensor_id = mx\xc3\xa9\n", ":2: sensor_id"},
    /* a feed without events would be ignored: the sensor runs standalone */
    {"site = s\naggregator_decisions = tcp://127.0.0.1:1\naggregator_snapshot = "
     "tcp://127.0.0.1:2\n",
     ":2: aggregator_decisions without aggregator_events"},
    {"site = s\naggregator_snapshot = tcp://127.0.0.1:2\n",
     ":2: aggregator_snapshot without aggregator_events"},
    /* '#' after a value is part of it */
    {"site = s\ninternal_networks = 10.0.0.0/8 # x\n", ":2: internal_networks: bad network '#'"},
    {"site = s\ninternal_networks = 10.0.0.0/33\n", ":2: internal_networks"},
    {"site = s\naggregator_public_key = notakey\n", ":2: aggregator_public_key"},
    {"site = s\naggregator_backup_public_key = " S_KEY "x\n", ":2: aggregator_backup_public_key"},
    {"site = s\naggregator_events = tcp://127.0.0.1:1\naggregator_public_key = " S_KEY "\n",
     ":3: aggregator_public_key needs sensor_secret_key_file"},
    /* endpoints zmq_connect() refuses: at start one "Invalid argument", then silence */
    {"site = s\naggregator_events = 127.0.0.1:35570\n",
     ":2: aggregator_events 127.0.0.1:35570 is not an endpoint (tcp://HOST:PORT, ipc://PATH)"},
    {"site = s\naggregator_events = bogus\n", ":2: aggregator_events bogus is not an endpoint"},
    {"site = s\naggregator_events = tcp://127.0.0.1:1\naggregator_decisions = "
     "tcp://127.0.0.1\naggregator_snapshot = tcp://127.0.0.1:3\n",
     ":3: aggregator_decisions tcp://127.0.0.1"},
    {"site = s\naggregator_events = tcp://127.0.0.1:1\naggregator_decisions = "
     "tcp://127.0.0.1:2\naggregator_snapshot = tcp://127.0.0.1:99999\n",
     ":4: aggregator_snapshot tcp://127.0.0.1:99999"},
    {"site = s\naggregator_backup_events = tcp://*:1\n", ":2: aggregator_backup_events tcp://*:1"},
    {"site = s\naggregator_backup_decisions = ipc://\n", ":2: aggregator_backup_decisions ipc://"},
    {"site = s\naggregator_backup_snapshot = tcp://b:x\n",
     ":2: aggregator_backup_snapshot tcp://b:x"},
};

static void test_bad_configs_are_refused_with_a_reason(void **state)
{
    for (size_t i = 0; i < sizeof(s_bad) / sizeof(s_bad[0]); i++) {
        char err[512] = "";
        sensor_config_t *c = s_load_text(s_bad[i].text, err, sizeof(err));
        printf("case %zu: %s\n", i, err);
        assert_null(c);
        assert_non_null(strstr(err, s_bad[i].error));
    }
}

static void test_names_the_aggregator_takes_are_accepted(void **state)
{
    char err[512] = "";
    sensor_config_t *c = s_load_text("site = Acme.eu-west_1\nsensor_id = mx1.example.net:25\n"
                                     "internal_networks = 10.0.0.0/8, 2001:db8::/32\n",
                                     err, sizeof(err));
    assert_non_null(c);
    assert_string_equal(c->site, "Acme.eu-west_1");
    assert_string_equal(c->sensor_id, "mx1.example.net:25");
    sensor_config_destroy(&c);
    /* 64 bytes, the longest (65 is in s_bad) */
    c = s_load_text(
        "site = 1234567890123456789012345678901234567890123456789012345678901234\n"
        "sensor_id = 1234567890123456789012345678901234567890123456789012345678901234\n",
        err, sizeof(err));
    assert_non_null(c);
    sensor_config_destroy(&c);
}

static void test_an_uplink_with_events_and_keys_is_accepted(void **state)
{
    char err[512] = "";
    sensor_config_t *c = s_load_text("site = s\naggregator_events = tcp://127.0.0.1:1\n"
                                     "aggregator_decisions = tcp://127.0.0.1:2\n"
                                     "aggregator_snapshot = tcp://127.0.0.1:3\n"
                                     "aggregator_public_key = " S_KEY "\n"
                                     "sensor_secret_key_file = /etc/backstop/sensor.key\n",
                                     err, sizeof(err));
    printf("%s\n", err);
    assert_non_null(c);
    sensor_config_destroy(&c);
}

static void test_every_cross_field_error_names_its_line(void **state)
{
    char err[1024] = "";
    sensor_config_t *c = s_load_text(
        "# a comment\nsite = a b\nmilter_umask = 999\n"
        "enforce_classes = bounce,\n    spam\naggregator_snapshot = tcp://127.0.0.1:2\n",
        err, sizeof(err));
    printf("%s\n", err);
    assert_null(c);
    assert_non_null(strstr(err, ":2: site \"a b\""));
    assert_non_null(strstr(err, ":3: milter_umask"));
    assert_non_null(strstr(err, ":4: enforce_classes: unknown class 'spam'"));
    assert_non_null(strstr(err, ":6: aggregator_snapshot without aggregator_events"));
    /* one "FILE:LINE: why" per line, as cfg_load writes them */
    size_t lines = 1;
    for (const char *p = err; *p; p++)
        lines += *p == '\n';
    assert_int_equal(lines, 4);
}

/* The help text (--help, the sample config, the man page) says what the parser in
 * milter_engine.c reads: scope, action, a required ttl, then the value it normalises. */
static void test_decision_file_help_matches_the_parser(void **state)
{
    const char *help = NULL;
    for (const cfg_param_t *p = sensor_config_schema()->params; p->name; p++)
        if (!strcmp(p->name, "decision_file"))
            help = p->help;
    assert_non_null(help);
    assert_non_null(strstr(help, "'scope action ttl value'"));
    assert_null(strstr(help, "[ttl]"));
    assert_non_null(strstr(help, "0 for no expiry"));
    /* values are normalised as the sensor keys mail, and a net is only ever a /24 or /64 */
    assert_non_null(strstr(help, "normalised as the sensor keys mail"));
    assert_non_null(strstr(help, "a subject as typed"));
    assert_non_null(strstr(help, "/24 (IPv4) or /64 (IPv6)"));
}

static void test_heartbeat_timeout_just_above_the_heartbeat_is_accepted(void **state)
{
    char err[512] = "";
    sensor_config_t *c = s_load_text("site = s\nheartbeat_timeout = 1500ms\n", err, sizeof(err));
    assert_non_null(c);
    assert_int_equal(c->heartbeat_timeout_ms, 1500);
    sensor_config_destroy(&c);
}

static void test_reload_keeps_restart_only_settings(void **state)
{
    char err[512];
    sensor_config_t *run = s_load_text("site = s1\nsensor_id = a\nmilter_socket = unix:/x\n"
                                       "reply_text = old\nevent_batch = 10\n",
                                       err, sizeof(err));
    sensor_config_t *fresh = s_load_text("site = s2\nsensor_id = a\nmilter_socket = unix:/y\n"
                                         "reply_text = new\nevent_batch = 20\n"
                                         "local_rule_threshold = 7\n",
                                         err, sizeof(err));
    assert_non_null(run);
    assert_non_null(fresh);
    char changed[128];
    assert_int_equal(sensor_config_keep_restart(fresh, run, changed, sizeof(changed)), 3);
    assert_string_equal(changed, "site milter_socket event_batch");
    assert_string_equal(fresh->site, "s1");
    assert_string_equal(fresh->milter_socket, "unix:/x");
    assert_int_equal(fresh->event_batch, 10);
    assert_string_equal(fresh->reply_text, "new"); /* reloadable: the new value stays */
    assert_int_equal(fresh->local_rule_threshold, 7);
    assert_int_equal(sensor_config_keep_restart(fresh, run, changed, sizeof(changed)), 0);
    assert_string_equal(changed, "");
    sensor_config_destroy(&fresh);
    sensor_config_destroy(&run);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_defaults),
        cmocka_unit_test(test_units_and_enums),
        cmocka_unit_test(test_bad_configs_are_refused_with_a_reason),
        cmocka_unit_test(test_names_the_aggregator_takes_are_accepted),
        cmocka_unit_test(test_an_uplink_with_events_and_keys_is_accepted),
        cmocka_unit_test(test_every_cross_field_error_names_its_line),
        cmocka_unit_test(test_decision_file_help_matches_the_parser),
        cmocka_unit_test(test_heartbeat_timeout_just_above_the_heartbeat_is_accepted),
        cmocka_unit_test(test_reload_keeps_restart_only_settings),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
