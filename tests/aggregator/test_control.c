/* test_control - control_handle() against a real server (store in a temp dir, fake clock):
 * every command's document, the checks on request values, changes stored before they are
 * published, allowlist cancellation, what a failover pair shares (the peer's entries
 * applied, tombstones, change times, the digest, tombstones across a restart), and the
 * JSON forms. */
#include <jansson.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sysexits.h>
#include <unistd.h>
#include <cmocka.h>

#include "agg_config.h"
#include "control.h"
#include "fp.h"
#include "ingest.h"
#include "kv.h"
#include "msg.h"
#include "server.h"
#include "store.h"
#include "xalloc.h"
#include "zsock.h"

#define SEC 1000LL
#define T0  (1700000000LL * SEC)

/* A server of its own per test. */
typedef struct {
    char dir[64];      /* temp dir: config, store, control socket */
    bs_clock_t *clock; /* fake clock */
    server_t *srv;     /* under test */
    uint64_t seq;      /* next event seq */
    json_t *doc;       /* last reply document */
    int status;        /* last reply status */
    char error[256];   /* last reply error */
} s_fx_t;

/* A server with its config, store and control socket in dir, on clock. */
static server_t *s_server_in(const char *dir, bs_clock_t *clock)
{
    char err[1024];
    char *conf = xasprintf("%s/agg.conf", dir);
    FILE *fp = fopen(conf, "w");
    assert_non_null(fp);
    fprintf(fp,
            "event_endpoint = tcp://127.0.0.1:*\ndecision_endpoint = tcp://127.0.0.1:*\n"
            "snapshot_endpoint = tcp://127.0.0.1:*\ncontrol_endpoint = ipc://%s/ctl.sock\n"
            "data_dir = %s/db\n",
            dir, dir);
    fclose(fp);
    agg_config_t *cfg = agg_config_load(conf, err, sizeof(err));
    if (cfg == NULL)
        fail_msg("config: %s", err);
    server_t *srv = server_new(&cfg, NULL, clock);
    assert_non_null(srv);
    xfree(conf);
    return srv;
}

static int s_setup(void **state)
{
    s_fx_t *fx = xcalloc(1, sizeof(*fx));
    snprintf(fx->dir, sizeof(fx->dir), "/tmp/test_control.XXXXXX");
    assert_non_null(mkdtemp(fx->dir));
    fx->clock = bs_clock_fake_new(T0);
    fx->srv = s_server_in(fx->dir, fx->clock);
    fx->seq = 1;
    *state = fx;
    return 0;
}

static int s_teardown(void **state)
{
    s_fx_t *fx = *state;
    server_destroy(&fx->srv);
    json_decref(fx->doc);
    char *cmd = xasprintf("rm -rf '%s'", fx->dir);
    assert_int_equal(system(cmd), 0);
    xfree(cmd);
    bs_clock_destroy(&fx->clock);
    xfree(fx);
    return 0;
}

/* Stops the server and starts it again on the same data dir (and clock). */
static void s_restart(s_fx_t *fx)
{
    server_destroy(&fx->srv);
    fx->srv = s_server_in(fx->dir, fx->clock);
}

/* Sends req; keeps the status, error and parsed document in fx. */
static int s_call(s_fx_t *fx, Backstop__ControlRequest *req)
{
    Backstop__ControlReply reply = BACKSTOP__CONTROL_REPLY__INIT;
    json_error_t jerr;

    if (req->who == NULL)
        req->who = "tester";
    json_decref(fx->doc);
    fx->doc = NULL;
    fx->error[0] = '\0';
    fx->status = control_handle(fx->srv, req, &reply);
    assert_int_equal(fx->status, reply.status);
    if (reply.status == 0) {
        assert_non_null(reply.json);
        assert_null(reply.error);
        fx->doc = json_loads(reply.json, 0, &jerr);
        assert_non_null(fx->doc);
        assert_true(json_integer_value(json_object_get(fx->doc, "now_ms")) ==
                    server_now_ms(fx->srv));
    } else {
        assert_null(reply.json);
        assert_non_null(reply.error);
        snprintf(fx->error, sizeof(fx->error), "%s", reply.error);
    }
    free(reply.json);
    free(reply.error);
    return fx->status;
}

/* The member at a path of keys ("decision", "value") in the last document. */
static json_t *s_get(s_fx_t *fx, const char *k1, const char *k2)
{
    json_t *v = json_object_get(fx->doc, k1);
    return k2 ? json_object_get(v, k2) : v;
}

static const char *s_str(s_fx_t *fx, const char *k1, const char *k2)
{
    const char *s = json_string_value(s_get(fx, k1, k2));
    assert_non_null(s);
    return s;
}

/* A manual fleet decision on a subject; returns its id (static buffer). */
static const char *s_add_subject(s_fx_t *fx, const char *subject)
{
    static char id[DECISION_ID_LEN + 1];
    Backstop__ControlRequest req = BACKSTOP__CONTROL_REQUEST__INIT;
    req.command = BACKSTOP__CONTROL_REQUEST__COMMAND__DECISION_ADD;
    req.has_scope = 1;
    req.scope = BACKSTOP__SCOPE__SUBJECT;
    req.value = (char *)subject;
    assert_int_equal(s_call(fx, &req), 0);
    snprintf(id, sizeof(id), "%s", s_str(fx, "decision", "id"));
    return id;
}

/* n bounce events with subject key text from site, at the fake clock's now. */
static void s_events(s_fx_t *fx, const char *site, const char *text, int n)
{
    ingest_key_t key = {BS_SCOPE_SUBJECT, fp_text(text), text, strlen(text)};
    for (int i = 0; i < n; i++) {
        ingest_event_t ev = {.site = site,
                             .sensor = "s1",
                             .seq = fx->seq++,
                             .time_ms = server_now_ms(fx->srv),
                             .msg_class = BS_CLASS_BOUNCE,
                             .keys = &key,
                             .nkeys = 1,
                             .nrule_labels = 1};
        ingest_event(server_ingest(fx->srv), &ev, server_now_ms(fx->srv));
    }
    assert_true(server_apply_changes(fx->srv) >= 0);
}

/* ---- status ---- */

static void test_status_fresh(void **state)
{
    s_fx_t *fx = *state;
    Backstop__ControlRequest req = BACKSTOP__CONTROL_REQUEST__INIT;
    req.command = BACKSTOP__CONTROL_REQUEST__COMMAND__STATUS;
    assert_int_equal(s_call(fx, &req), 0);
    assert_int_equal(json_integer_value(s_get(fx, "seq", NULL)), 0);
    assert_int_equal(json_integer_value(s_get(fx, "decisions", "active")), 0);
    assert_int_equal(json_array_size(s_get(fx, "sensors", NULL)), 0);
    assert_non_null(json_object_get(s_get(fx, "events", "dropped"), "garbage"));
    assert_non_null(json_object_get(s_get(fx, "events", "dropped"), "refused"));
    assert_non_null(json_object_get(s_get(fx, "events", "dropped"), "sensors_full"));
    /* libzmq closes the connection of an oversized frame: nothing counts it, none shown */
    assert_null(json_object_get(s_get(fx, "events", "dropped"), "oversize"));
    assert_int_equal(json_integer_value(s_get(fx, "window", "keys_refused")), 0);
    assert_int_equal(json_integer_value(s_get(fx, "window", "full")), 0);
    /* counted without dedup (its table full): never at the server's bound, but shown */
    assert_true(json_is_integer(s_get(fx, "events", "untracked")));
    assert_int_equal(json_integer_value(s_get(fx, "events", "untracked")), 0);
    assert_non_null(s_get(fx, "window", "max_keys"));
    assert_int_equal(strlen(s_str(fx, "epoch", NULL)), 16);
    /* the data directory is the one opened: nothing lost, nothing recreated */
    assert_true(json_is_null(s_get(fx, "store", "lost_since_ms")));
    assert_true(json_is_null(s_get(fx, "store", "lost_reason")));
    assert_true(json_is_null(s_get(fx, "store", "lost_error")));
    assert_int_equal(json_integer_value(s_get(fx, "store", "recreated")), 0);
}

static void test_status_counts_events_keys_decisions(void **state)
{
    s_fx_t *fx = *state;
    s_events(fx, "a", "some wave", 3);
    s_add_subject(fx, "manual one");
    Backstop__ControlRequest req = BACKSTOP__CONTROL_REQUEST__INIT;
    req.command = BACKSTOP__CONTROL_REQUEST__COMMAND__STATUS;
    assert_int_equal(s_call(fx, &req), 0);
    assert_true(json_integer_value(s_get(fx, "keys", NULL)) >= 1);
    assert_int_equal(json_integer_value(s_get(fx, "decisions", "active")), 1);
    assert_int_equal(json_integer_value(s_get(fx, "seq", NULL)), 1);
}

/* Dedup tracks every sensor the server admits (SERVER_SENSORS_MAX; the server makes room
 * by forgetting silent ones, here too): with that many sensors seen, a replay from the
 * last of them is a duplicate, not counted a second time. */
static void test_dedup_tracks_every_sensor_the_server_admits(void **state)
{
    s_fx_t *fx = *state;
    ingest_t *in = server_ingest(fx->srv);
    assert_int_equal(dedup_max_sensors(ingest_dedup(in)), SERVER_SENSORS_MAX);
    int64_t now = server_now_ms(fx->srv);
    char text[32], name[16];
    ingest_key_t key = {BS_SCOPE_SUBJECT, 0, text, 0};
    ingest_event_t ev = {.site = "a",
                         .sensor = name,
                         .seq = 1,
                         .time_ms = now,
                         .msg_class = BS_CLASS_BOUNCE,
                         .keys = &key,
                         .nkeys = 1,
                         .nrule_labels = 1};
    for (int i = 0; i < SERVER_SENSORS_MAX; i++) {
        snprintf(name, sizeof(name), "s%d", i);
        snprintf(text, sizeof(text), "one-time %d", i);
        key.fp = fp_text(text);
        key.text_len = strlen(text);
        assert_int_equal(ingest_event(in, &ev, now), INGEST_COUNTED);
    }
    /* the last sensor's spool, replayed */
    assert_int_equal(ingest_event(in, &ev, now), INGEST_DUPLICATE);
    assert_int_equal(dedup_sensors(ingest_dedup(in)), SERVER_SENSORS_MAX);
    assert_int_equal(dedup_counters(ingest_dedup(in))->untracked, 0);
}

/* ---- decisions ---- */

static void test_add_normalises_and_fingerprints(void **state)
{
    s_fx_t *fx = *state;
    char hex[FP_HEX_SIZE];
    s_add_subject(fx, "Undeliverable: Cheap meds 123");
    assert_string_equal(s_str(fx, "result", NULL), "created");
    assert_string_equal(s_str(fx, "decision", "value"), "cheap meds #");
    assert_string_equal(s_str(fx, "decision", "fp"), fp_hex(fp_text("cheap meds #"), hex));
    assert_string_equal(s_str(fx, "decision", "origin"), "cli");
    assert_string_equal(s_str(fx, "decision", "origin_who"), "tester");
    assert_string_equal(s_str(fx, "decision", "reach"), "fleet");
    assert_string_equal(s_str(fx, "decision", "action"), "reject");
    assert_null(s_get(fx, "decision", "site"));
    assert_int_equal(json_integer_value(s_get(fx, "decision", "expires_ms")), T0 + 3600 * SEC);
}

static void test_add_is_stored_and_published(void **state)
{
    s_fx_t *fx = *state;
    s_add_subject(fx, "stored wave");
    decisions_t *d = server_decisions(fx->srv);
    assert_int_equal(decisions_pending(d), 0); /* taken: written, then published */
    assert_int_equal(decisions_seq(d), 1);
    assert_true(server_stats(fx->srv)->updates_published >= 1);
}

static void test_add_local_ip_with_options(void **state)
{
    s_fx_t *fx = *state;
    Backstop__ControlRequest req = BACKSTOP__CONTROL_REQUEST__INIT;
    req.command = BACKSTOP__CONTROL_REQUEST__COMMAND__DECISION_ADD;
    req.has_scope = 1;
    req.scope = BACKSTOP__SCOPE__CLIENT_IP;
    req.value = "[IPv6:2001:DB8::1]";
    req.has_reach = 1;
    req.reach = BACKSTOP__REACH__LOCAL;
    req.site = "acme";
    req.has_action = 1;
    req.action = BACKSTOP__ACTION__TAG;
    req.has_ttl_s = 1;
    req.ttl_s = 90;
    req.has_all_mail = 1;
    req.all_mail = 1;
    req.reason = "seen by hand";
    /* a site the aggregator does not know (a typo blocks nothing): refused, unless forced
     * or known */
    assert_int_equal(s_call(fx, &req), EX_DATAERR);
    assert_non_null(strstr(fx->error, "decisions add: no site acme is registered or has sensors "
                                      "reporting (backstop sites lists the sites known; --force "
                                      "takes it anyway)"));
    req.has_force = 1;
    req.force = 1;
    assert_int_equal(s_call(fx, &req), 0);
    assert_string_equal(s_str(fx, "decision", "value"), "2001:db8::1");
    assert_string_equal(s_str(fx, "decision", "site"), "acme");
    assert_string_equal(s_str(fx, "decision", "action"), "tag");
    assert_string_equal(s_str(fx, "decision", "reason"), "seen by hand");
    assert_true(json_is_true(s_get(fx, "decision", "all_mail")));
    assert_int_equal(json_integer_value(s_get(fx, "decision", "expires_in_s")), 90);
}

/* A site is known when it is registered (or one of its sensors reported); an allowlist
 * entry for any other site is refused unless forced, as a site decision is. */
static void test_unknown_sites_need_force(void **state)
{
    s_fx_t *fx = *state;
    char err[256] = "";
    Backstop__ControlRequest allow = BACKSTOP__CONTROL_REQUEST__INIT;
    allow.command = BACKSTOP__CONTROL_REQUEST__COMMAND__ALLOW_ADD;
    allow.has_scope = 1;
    allow.scope = BACKSTOP__SCOPE__SITE;
    allow.value = "nosuchsite";
    assert_int_equal(s_call(fx, &allow), EX_DATAERR);
    assert_non_null(strstr(fx->error, "allow add: no site nosuchsite is registered"));
    assert_int_equal(allowlist_count(server_allowlist(fx->srv)), 0);
    allow.has_force = 1;
    allow.force = 1;
    assert_int_equal(s_call(fx, &allow), 0);
    assert_int_equal(allowlist_count(server_allowlist(fx->srv)), 1);

    /* registered: known */
    assert_int_equal(server_site_add(fx->srv, "acme", NULL, "tester", err, sizeof(err)), 0);
    /* (a site one of whose sensors reported is known too: test_cli.sh, through the event
     * socket) */
    Backstop__ControlRequest add = BACKSTOP__CONTROL_REQUEST__INIT;
    add.command = BACKSTOP__CONTROL_REQUEST__COMMAND__DECISION_ADD;
    add.has_scope = 1;
    add.scope = BACKSTOP__SCOPE__SUBJECT;
    add.value = "local wave";
    add.site = "acme";
    add.has_reach = 1;
    add.reach = BACKSTOP__REACH__LOCAL;
    assert_int_equal(s_call(fx, &add), 0);
    add.site = "acne";
    assert_int_equal(s_call(fx, &add), EX_DATAERR);
    allow.has_force = 0;
    allow.force = 0;
    allow.value = "acme";
    assert_int_equal(s_call(fx, &allow), 0);
    assert_int_equal(allowlist_count(server_allowlist(fx->srv)), 2);
}

static void test_add_again_extends(void **state)
{
    s_fx_t *fx = *state;
    const char *id = s_add_subject(fx, "wave again");
    char first[DECISION_ID_LEN + 1];
    snprintf(first, sizeof(first), "%s", id);
    bs_clock_fake_advance(fx->clock, 600 * SEC);
    s_add_subject(fx, "wave again");
    assert_string_equal(s_str(fx, "result", NULL), "extended");
    assert_string_equal(s_str(fx, "decision", "id"), first);
}

/* An add that asks for less than the decision in force says what was kept. */
static void test_add_says_what_the_decision_in_force_kept(void **state)
{
    s_fx_t *fx = *state;
    Backstop__ControlRequest req = BACKSTOP__CONTROL_REQUEST__INIT;
    req.command = BACKSTOP__CONTROL_REQUEST__COMMAND__DECISION_ADD;
    req.has_scope = 1;
    req.scope = BACKSTOP__SCOPE__CLIENT_IP;
    req.value = "192.0.2.5";
    req.has_ttl_s = 1;
    req.ttl_s = 7200;
    assert_int_equal(s_call(fx, &req), 0);
    assert_int_equal(json_object_size(s_get(fx, "kept", NULL)), 0);
    req.ttl_s = 3600;
    req.has_action = 1;
    req.action = BACKSTOP__ACTION__TAG;
    assert_int_equal(s_call(fx, &req), 0);
    assert_string_equal(s_str(fx, "result", NULL), "unchanged");
    assert_string_equal(s_str(fx, "kept", "action"), "reject");
    assert_true(json_integer_value(s_get(fx, "kept", "expires_ms")) ==
                server_now_ms(fx->srv) + 7200 * SEC);
}

/* A revoked decision whose rule still sees the wave: the reply names the rule. */
static void test_del_says_which_rule_blocks_again(void **state)
{
    s_fx_t *fx = *state;
    s_events(fx, "a", "storm wave", 150);
    s_events(fx, "b", "storm wave", 150);
    s_events(fx, "c", "storm wave", 150);
    const decision_t *found[8];
    size_t n = decisions_find_key(server_decisions(fx->srv), BS_SCOPE_SUBJECT,
                                  fp_text("storm wave"), found, 8);
    char id[DECISION_ID_LEN + 1] = "";
    for (size_t i = 0; i < n && i < 8; i++)
        if (found[i]->reach == BS_REACH_FLEET)
            snprintf(id, sizeof(id), "%s", found[i]->id);
    assert_true(id[0]);
    Backstop__ControlRequest req = BACKSTOP__CONTROL_REQUEST__INIT;
    req.command = BACKSTOP__CONTROL_REQUEST__COMMAND__DECISION_DEL;
    req.id = id;
    assert_int_equal(s_call(fx, &req), 0);
    json_t *refires = s_get(fx, "refires", NULL);
    assert_int_equal(json_array_size(refires), 1);
    assert_string_equal(json_string_value(json_array_get(refires, 0)), "fleet_subject");
    /* a manual decision on a quiet key: no rule */
    req.id = (char *)s_add_subject(fx, "quiet key");
    assert_int_equal(s_call(fx, &req), 0);
    assert_int_equal(json_array_size(s_get(fx, "refires", NULL)), 0);
}

static void test_list_and_show(void **state)
{
    s_fx_t *fx = *state;
    char id[DECISION_ID_LEN + 1];
    snprintf(id, sizeof(id), "%s", s_add_subject(fx, "first"));
    s_add_subject(fx, "second");
    Backstop__ControlRequest req = BACKSTOP__CONTROL_REQUEST__INIT;
    req.command = BACKSTOP__CONTROL_REQUEST__COMMAND__DECISION_LIST;
    assert_int_equal(s_call(fx, &req), 0);
    assert_int_equal(json_array_size(s_get(fx, "decisions", NULL)), 2);
    assert_int_equal(json_integer_value(s_get(fx, "total", NULL)), 2);
    req.has_limit = 1;
    req.limit = 1;
    assert_int_equal(s_call(fx, &req), 0);
    assert_int_equal(json_array_size(s_get(fx, "decisions", NULL)), 1);
    assert_true(json_is_true(s_get(fx, "truncated", NULL)));

    Backstop__ControlRequest show = BACKSTOP__CONTROL_REQUEST__INIT;
    show.command = BACKSTOP__CONTROL_REQUEST__COMMAND__DECISION_SHOW;
    for (char *p = id; *p; p++)
        *p = (char)(*p >= 'A' && *p <= 'Z' ? *p - 'A' + 'a' : *p);
    show.id = id;
    assert_int_equal(s_call(fx, &show), 0);
    assert_string_equal(s_str(fx, "decision", "value"), "first");
}

/* A reason or an operator name with control characters would forge log lines: refused,
 * whatever the client. */
static void test_control_characters_are_refused(void **state)
{
    s_fx_t *fx = *state;
    char id[DECISION_ID_LEN + 1];
    snprintf(id, sizeof(id), "%s", s_add_subject(fx, "wave one"));
    Backstop__ControlRequest req = BACKSTOP__CONTROL_REQUEST__INIT;
    req.command = BACKSTOP__CONTROL_REQUEST__COMMAND__DECISION_DEL;
    req.id = id;
    req.reason = "oops\nbackstop-aggregator[1]: control: op=allow_add fake";
    assert_int_equal(s_call(fx, &req), EX_DATAERR);
    assert_non_null(strstr(fx->error, "one line of printable text"));
    req.reason = "fine";
    req.who = "bob\x1b[2J";
    assert_int_equal(s_call(fx, &req), EX_DATAERR);
    assert_non_null(strstr(fx->error, "operator name"));
    req.who = "bob smith";
    assert_int_equal(s_call(fx, &req), EX_DATAERR);
    req.who = "bob";
    assert_int_equal(decisions_count(server_decisions(fx->srv)), 1);
    assert_int_equal(s_call(fx, &req), 0);
    assert_int_equal(decisions_count(server_decisions(fx->srv)), 0);
}

/* A distinct subject key of about len bytes for n (subjects' digits normalise away). */
static const char *s_long_subject(unsigned n, size_t len)
{
    static char buf[WIRE_MAX_TEXT + 1];
    size_t i = 0;
    for (unsigned v = n; i < 8; v /= 26)
        buf[i++] = (char)('a' + v % 26);
    buf[i++] = ' ';
    while (i < len && i < WIRE_MAX_TEXT)
        buf[i++] = 'w';
    buf[i] = '\0';
    return buf;
}

/* However long the texts, a list reply fits one frame: it says how many it left out. */
static void test_long_lists_fit_one_reply(void **state)
{
    s_fx_t *fx = *state;
    char reason[WIRE_MAX_TEXT + 1];
    memset(reason, 'r', WIRE_MAX_TEXT);
    reason[WIRE_MAX_TEXT] = '\0';
    for (unsigned i = 0; i < 2000; i++) {
        Backstop__ControlRequest req = BACKSTOP__CONTROL_REQUEST__INIT;
        req.command = BACKSTOP__CONTROL_REQUEST__COMMAND__DECISION_ADD;
        req.has_scope = 1;
        req.scope = BACKSTOP__SCOPE__SUBJECT;
        req.value = (char *)s_long_subject(i, 250);
        req.reason = reason;
        assert_int_equal(s_call(fx, &req), 0);
    }
    Backstop__ControlRequest req = BACKSTOP__CONTROL_REQUEST__INIT;
    req.command = BACKSTOP__CONTROL_REQUEST__COMMAND__DECISION_LIST;
    req.has_limit = 1;
    req.limit = 5000;
    assert_int_equal(s_call(fx, &req), 0);
    size_t listed = json_array_size(s_get(fx, "decisions", NULL));
    assert_true(listed > 100 && listed < 2000);
    assert_int_equal(json_integer_value(s_get(fx, "total", NULL)), 2000);
    assert_true(json_is_true(s_get(fx, "truncated", NULL)));
    char *text = json_dumps(fx->doc, JSON_COMPACT);
    assert_true(strlen(text) < WIRE_MAX_JSON);
    free(text);
}

/* An allowlist entry covering more decisions than a reply lists: all are revoked, the
 * reply lists the first and counts them all (it used to fail after making the change). */
static void test_allow_add_covering_many_lists_the_first(void **state)
{
    s_fx_t *fx = *state;
    for (unsigned i = 0; i < 1100; i++) {
        char ip[32];
        snprintf(ip, sizeof(ip), "198.18.%u.%u", i / 250, i % 250 + 1);
        Backstop__ControlRequest req = BACKSTOP__CONTROL_REQUEST__INIT;
        req.command = BACKSTOP__CONTROL_REQUEST__COMMAND__DECISION_ADD;
        req.has_scope = 1;
        req.scope = BACKSTOP__SCOPE__CLIENT_IP;
        req.value = ip;
        assert_int_equal(s_call(fx, &req), 0);
    }
    Backstop__ControlRequest req = BACKSTOP__CONTROL_REQUEST__INIT;
    req.command = BACKSTOP__CONTROL_REQUEST__COMMAND__ALLOW_ADD;
    req.has_scope = 1;
    req.scope = BACKSTOP__SCOPE__CLIENT_NET;
    req.value = "198.18.0.0/16";
    assert_int_equal(s_call(fx, &req), 0);
    assert_string_equal(s_str(fx, "result", NULL), "created");
    assert_int_equal(json_array_size(s_get(fx, "revoked", NULL)), 1000);
    assert_int_equal(json_integer_value(s_get(fx, "revoked_total", NULL)), 1100);
    assert_true(json_is_true(s_get(fx, "revoked_truncated", NULL)));
    assert_int_equal(decisions_count(server_decisions(fx->srv)), 0);
}

static void test_del_revokes(void **state)
{
    s_fx_t *fx = *state;
    char id[DECISION_ID_LEN + 1];
    snprintf(id, sizeof(id), "%s", s_add_subject(fx, "to revoke"));
    Backstop__ControlRequest req = BACKSTOP__CONTROL_REQUEST__INIT;
    req.command = BACKSTOP__CONTROL_REQUEST__COMMAND__DECISION_DEL;
    req.id = id;
    assert_int_equal(s_call(fx, &req), 0);
    assert_string_equal(s_str(fx, "revoked", "id"), id);
    assert_int_equal(decisions_count(server_decisions(fx->srv)), 0);
    assert_int_equal(decisions_seq(server_decisions(fx->srv)), 2);
    assert_int_equal(decisions_pending(server_decisions(fx->srv)), 0);
    assert_int_equal(s_call(fx, &req), EX_DATAERR);
}

/* ---- bad requests: a table ---- */

typedef struct {
    const char *what;                      /* the case */
    Backstop__ControlRequest__Command cmd; /* command */
    int scope;                             /* 0: unset */
    const char *value;                     /* value */
    const char *id;                        /* id */
    int reach;                             /* 0: unset */
    const char *site;                      /* site */
    int ttl_s;                             /* -1: unset */
    int status;                            /* expected */
    const char *error;                     /* substring of the error */
} s_bad_t;

static const s_bad_t s_bad[] = {
    {"add without scope", BACKSTOP__CONTROL_REQUEST__COMMAND__DECISION_ADD, 0, "x", NULL, 0, NULL,
     -1, EX_USAGE, "required"},
    {"add sender_domain", BACKSTOP__CONTROL_REQUEST__COMMAND__DECISION_ADD,
     BACKSTOP__SCOPE__SENDER_DOMAIN, "example.com", NULL, 0, NULL, -1, EX_USAGE, "cannot"},
    {"add bad ip", BACKSTOP__CONTROL_REQUEST__COMMAND__DECISION_ADD, BACKSTOP__SCOPE__CLIENT_IP,
     "300.1.1.1", NULL, 0, NULL, -1, EX_DATAERR, "invalid IP"},
    {"add net with host bits", BACKSTOP__CONTROL_REQUEST__COMMAND__DECISION_ADD,
     BACKSTOP__SCOPE__CLIENT_NET, "192.0.2.1/24", NULL, 0, NULL, -1, EX_DATAERR, "network"},
    {"add net wider than a /24", BACKSTOP__CONTROL_REQUEST__COMMAND__DECISION_ADD,
     BACKSTOP__SCOPE__CLIENT_NET, "10.0.0.0/8", NULL, 0, NULL, -1, EX_DATAERR,
     "would match no mail"},
    {"add net narrower than a /64", BACKSTOP__CONTROL_REQUEST__COMMAND__DECISION_ADD,
     BACKSTOP__SCOPE__CLIENT_NET, "2001:db8::/96", NULL, 0, NULL, -1, EX_DATAERR,
     "would match no mail"},
    {"add empty subject key", BACKSTOP__CONTROL_REQUEST__COMMAND__DECISION_ADD,
     BACKSTOP__SCOPE__SUBJECT, "Undeliverable:", NULL, 0, NULL, -1, EX_DATAERR, "nothing"},
    {"add ttl 0", BACKSTOP__CONTROL_REQUEST__COMMAND__DECISION_ADD, BACKSTOP__SCOPE__SUBJECT, "x y",
     NULL, 0, NULL, 0, EX_DATAERR, "ttl"},
    {"add local without site", BACKSTOP__CONTROL_REQUEST__COMMAND__DECISION_ADD,
     BACKSTOP__SCOPE__SUBJECT, "x y", NULL, BACKSTOP__REACH__LOCAL, NULL, -1, EX_DATAERR, "site"},
    {"add fleet with site", BACKSTOP__CONTROL_REQUEST__COMMAND__DECISION_ADD,
     BACKSTOP__SCOPE__SUBJECT, "x y", NULL, BACKSTOP__REACH__FLEET, "acme", -1, EX_DATAERR, "site"},
    {"show unknown", BACKSTOP__CONTROL_REQUEST__COMMAND__DECISION_SHOW, 0, NULL, "ZZZZZZZZ", 0,
     NULL, -1, EX_DATAERR, "no active decision"},
    {"show without id", BACKSTOP__CONTROL_REQUEST__COMMAND__DECISION_SHOW, 0, NULL, NULL, 0, NULL,
     -1, EX_USAGE, "id"},
    {"del unknown", BACKSTOP__CONTROL_REQUEST__COMMAND__DECISION_DEL, 0, NULL, "ZZZZZZZZ", 0, NULL,
     -1, EX_DATAERR, "no active decision"},
    {"why nothing", BACKSTOP__CONTROL_REQUEST__COMMAND__WHY, 0, NULL, NULL, 0, NULL, -1, EX_USAGE,
     "why"},
    {"allow subject_ip", BACKSTOP__CONTROL_REQUEST__COMMAND__ALLOW_ADD, BACKSTOP__SCOPE__SUBJECT_IP,
     "a|192.0.2.1", NULL, 0, NULL, -1, EX_DATAERR, "type"},
    {"allow bad domain", BACKSTOP__CONTROL_REQUEST__COMMAND__ALLOW_ADD,
     BACKSTOP__SCOPE__SENDER_DOMAIN, "a..b", NULL, 0, NULL, -1, EX_DATAERR, "domain"},
    {"allow del not a number", BACKSTOP__CONTROL_REQUEST__COMMAND__ALLOW_DEL, 0, NULL, "abc", 0,
     NULL, -1, EX_DATAERR, "entry id"},
    {"allow del unknown id", BACKSTOP__CONTROL_REQUEST__COMMAND__ALLOW_DEL, 0, NULL, "42", 0, NULL,
     -1, EX_DATAERR, "no allowlist entry"},
    {"allow del unknown value", BACKSTOP__CONTROL_REQUEST__COMMAND__ALLOW_DEL,
     BACKSTOP__SCOPE__CLIENT_IP, "192.0.2.9", NULL, 0, NULL, -1, EX_DATAERR, "no allowlist entry"},
    {"site add bad name", BACKSTOP__CONTROL_REQUEST__COMMAND__SITE_ADD, 0, NULL, "a/b", 0, NULL, -1,
     EX_DATAERR, "site name"},
    {"site add bad key", BACKSTOP__CONTROL_REQUEST__COMMAND__SITE_ADD, 0, "not-a-key", "acme", 0,
     NULL, -1, EX_DATAERR, "key"},
    {"site del unknown", BACKSTOP__CONTROL_REQUEST__COMMAND__SITE_DEL, 0, NULL, "nope", 0, NULL, -1,
     EX_DATAERR, "no site"},
    {"unknown command", (Backstop__ControlRequest__Command)99, 0, NULL, NULL, 0, NULL, -1, EX_USAGE,
     "unknown command"},
};

static void test_bad_requests(void **state)
{
    s_fx_t *fx = *state;
    for (size_t i = 0; i < sizeof(s_bad) / sizeof(s_bad[0]); i++) {
        const s_bad_t *b = &s_bad[i];
        Backstop__ControlRequest req = BACKSTOP__CONTROL_REQUEST__INIT;
        req.command = b->cmd;
        if (b->scope) {
            req.has_scope = 1;
            req.scope = (Backstop__Scope)b->scope;
        }
        req.value = (char *)b->value;
        req.id = (char *)b->id;
        if (b->reach) {
            req.has_reach = 1;
            req.reach = (Backstop__Reach)b->reach;
        }
        req.site = (char *)b->site;
        if (b->ttl_s >= 0) {
            req.has_ttl_s = 1;
            req.ttl_s = (uint32_t)b->ttl_s;
        }
        int st = s_call(fx, &req);
        if (st != b->status || strstr(fx->error, b->error) == NULL)
            fail_msg("%s: status %d error \"%s\", wanted %d and \"%s\"", b->what, st, fx->error,
                     b->status, b->error);
    }
    /* nothing of it changed anything */
    assert_int_equal(decisions_seq(server_decisions(fx->srv)), 0);
    assert_int_equal(allowlist_count(server_allowlist(fx->srv)), 0);
}

/* ---- why and top ---- */

static void test_why_decision_shows_evidence(void **state)
{
    s_fx_t *fx = *state;
    s_events(fx, "a", "storm wave", 150);
    s_events(fx, "b", "storm wave", 150);
    s_events(fx, "c", "storm wave", 150);
    const decision_t *found[8];
    size_t n = decisions_find_key(server_decisions(fx->srv), BS_SCOPE_SUBJECT,
                                  fp_text("storm wave"), found, 8);
    const decision_t *fleet = NULL;
    for (size_t i = 0; i < n && i < 8; i++)
        if (found[i]->reach == BS_REACH_FLEET)
            fleet = found[i];
    assert_non_null(fleet);
    Backstop__ControlRequest req = BACKSTOP__CONTROL_REQUEST__INIT;
    req.command = BACKSTOP__CONTROL_REQUEST__COMMAND__WHY;
    req.query = (char *)fleet->id;
    assert_int_equal(s_call(fx, &req), 0);
    assert_string_equal(s_str(fx, "kind", NULL), "decision");
    json_t *d0 = json_array_get(s_get(fx, "decisions", NULL), 0);
    json_t *ev = json_object_get(d0, "evidence");
    assert_string_equal(json_string_value(json_object_get(ev, "rule")), "fleet_subject");
    assert_int_equal(json_integer_value(json_object_get(ev, "sites")), 3);
    assert_int_equal(json_array_size(json_object_get(ev, "shares")), 3);
    json_t *rules = json_object_get(json_array_get(s_get(fx, "keys", NULL), 0), "rules");
    assert_true(json_array_size(rules) >= 1);
    assert_true(json_is_true(json_object_get(json_array_get(rules, 0), "fires")));
}

/* The row of the fleet rule on subject text in the last why document. */
static json_t *s_why_fleet_row(s_fx_t *fx)
{
    json_t *rules = json_object_get(json_array_get(s_get(fx, "keys", NULL), 0), "rules");
    for (size_t i = 0; i < json_array_size(rules); i++) {
        json_t *r = json_array_get(rules, i);
        if (strcmp(json_string_value(json_object_get(r, "reach")), "fleet") == 0)
            return r;
    }
    fail_msg("no fleet rule row");
    return NULL;
}

/* Rules are evaluated only when an event comes: a rule whose decision is no longer in
 * force (ran out, revoked) still "fires" on the window until the key's next event. Why
 * says whether its decision is in force (decided), so the two can be told apart. */
static void test_why_says_whether_a_firing_rules_decision_is_in_force(void **state)
{
    s_fx_t *fx = *state;
    s_events(fx, "a", "storm wave", 150);
    s_events(fx, "b", "storm wave", 150);
    s_events(fx, "c", "storm wave", 150);
    const decision_t *fleet =
        decisions_find_identity(server_decisions(fx->srv), BS_SCOPE_SUBJECT, fp_text("storm wave"),
                                BS_REACH_FLEET, "", BS_MODE_ENFORCE);
    assert_non_null(fleet);
    char id[DECISION_ID_LEN + 1];
    snprintf(id, sizeof(id), "%s", fleet->id);
    Backstop__ControlRequest req = BACKSTOP__CONTROL_REQUEST__INIT;
    req.command = BACKSTOP__CONTROL_REQUEST__COMMAND__WHY;
    req.query = "storm wave";
    assert_int_equal(s_call(fx, &req), 0);
    json_t *r = s_why_fleet_row(fx);
    assert_true(json_is_true(json_object_get(r, "fires")));
    assert_true(json_is_true(json_object_get(r, "decided")));
    /* a rule that does not fire has no decision either */
    json_t *rules = json_object_get(json_array_get(s_get(fx, "keys", NULL), 1), "rules");
    assert_true(json_is_false(json_object_get(json_array_get(rules, 0), "fires")));
    assert_true(json_is_false(json_object_get(json_array_get(rules, 0), "decided")));

    Backstop__ControlRequest del = BACKSTOP__CONTROL_REQUEST__INIT;
    del.command = BACKSTOP__CONTROL_REQUEST__COMMAND__DECISION_DEL;
    del.id = id;
    assert_int_equal(s_call(fx, &del), 0);
    assert_int_equal(s_call(fx, &req), 0);
    r = s_why_fleet_row(fx);
    assert_string_equal(json_string_value(json_object_get(r, "verdict")), "fires");
    assert_true(json_is_true(json_object_get(r, "fires")));
    assert_true(json_is_false(json_object_get(r, "decided")));
    /* the next event makes it again */
    s_events(fx, "a", "storm wave", 1);
    assert_int_equal(s_call(fx, &req), 0);
    assert_true(json_is_true(json_object_get(s_why_fleet_row(fx), "decided")));
}

/* An id a reject named, no longer in force: why says why and what it was (while the change
 * log holds it); a decision of the peer's that took its place is named. */
static void test_why_of_an_id_no_longer_in_force(void **state)
{
    s_fx_t *fx = *state;
    char id[DECISION_ID_LEN + 1];
    snprintf(id, sizeof(id), "%s", s_add_subject(fx, "gone wave"));
    Backstop__ControlRequest del = BACKSTOP__CONTROL_REQUEST__INIT;
    del.command = BACKSTOP__CONTROL_REQUEST__COMMAND__DECISION_DEL;
    del.id = id;
    assert_int_equal(s_call(fx, &del), 0);
    Backstop__ControlRequest req = BACKSTOP__CONTROL_REQUEST__INIT;
    req.command = BACKSTOP__CONTROL_REQUEST__COMMAND__WHY;
    req.query = id;
    assert_int_equal(s_call(fx, &req), 0);
    assert_string_equal(s_str(fx, "kind", NULL), "decision");
    assert_string_equal(s_str(fx, "removed", "why"), "revoked");
    assert_true(json_is_null(json_object_get(s_get(fx, "removed", NULL), "replaced_by")));
    json_t *was = json_array_get(s_get(fx, "decisions", NULL), 0);
    assert_string_equal(json_string_value(json_object_get(was, "id")), id);
    assert_string_equal(json_string_value(json_object_get(was, "value")), "gone wave");
    assert_int_equal(json_array_size(s_get(fx, "decisions", NULL)), 1);

    /* superseded: the peer's decision on the same key, with the smaller id, took its place */
    snprintf(id, sizeof(id), "%s", s_add_subject(fx, "split wave"));
    decisions_t *t = server_decisions(fx->srv);
    decision_t p = *decisions_find(t, id);
    strcpy(p.id, "00000000");
    p.mirrored = false;
    assert_int_equal(decisions_mirror(t, DECISION_UPSERT, DECISION_WHY_NEW, &p, T0),
                     DECISIONS_MIRROR_MERGED);
    (void)server_apply_changes(fx->srv);
    req.query = id;
    assert_int_equal(s_call(fx, &req), 0);
    assert_string_equal(s_str(fx, "removed", "why"), "superseded");
    assert_string_equal(s_str(fx, "removed", "replaced_by"), "00000000");
    json_t *now = json_array_get(s_get(fx, "decisions", NULL), 1);
    assert_string_equal(json_string_value(json_object_get(now, "id")), "00000000");

    /* an id-like query nothing ever had is a subject, as before */
    req.query = "ZZZZZZZZ";
    assert_int_equal(s_call(fx, &req), 0);
    assert_string_equal(s_str(fx, "kind", NULL), "subject");
    assert_null(s_get(fx, "removed", NULL));
}

/* What `why` knows of decisions no longer in force (revoked, allowlisted, expired), it
 * knows after a restart too: the change log comes back from the store. */
static void test_why_of_ended_decisions_after_a_restart(void **state)
{
    s_fx_t *fx = *state;
    char revoked[DECISION_ID_LEN + 1], allowed[DECISION_ID_LEN + 1], expired[DECISION_ID_LEN + 1];
    snprintf(revoked, sizeof(revoked), "%s", s_add_subject(fx, "revoked wave"));
    snprintf(allowed, sizeof(allowed), "%s", s_add_subject(fx, "allowed wave"));
    snprintf(expired, sizeof(expired), "%s", s_add_subject(fx, "expired wave"));
    Backstop__ControlRequest req = BACKSTOP__CONTROL_REQUEST__INIT;
    req.command = BACKSTOP__CONTROL_REQUEST__COMMAND__DECISION_DEL;
    req.id = revoked;
    assert_int_equal(s_call(fx, &req), 0);
    Backstop__ControlRequest allow = BACKSTOP__CONTROL_REQUEST__INIT;
    allow.command = BACKSTOP__CONTROL_REQUEST__COMMAND__ALLOW_ADD;
    allow.has_scope = 1;
    allow.scope = BACKSTOP__SCOPE__SUBJECT;
    allow.value = "allowed wave";
    assert_int_equal(s_call(fx, &allow), 0);
    decisions_t *t = server_decisions(fx->srv);
    /* the one left in force runs out */
    assert_int_equal(decisions_expire(t, T0 + 3601 * SEC), 1);
    (void)server_apply_changes(fx->srv);
    uint64_t seq = decisions_seq(t);

    s_restart(fx);
    t = server_decisions(fx->srv);
    assert_true(decisions_seq(t) == seq);
    assert_true(decisions_log_floor(t) == 0); /* the whole log is back */
    const char *ids[] = {revoked, allowed, expired};
    const char *whys[] = {"revoked", "allowlisted", "expired"};
    const char *values[] = {"revoked wave", "allowed wave", "expired wave"};
    Backstop__ControlRequest why = BACKSTOP__CONTROL_REQUEST__INIT;
    why.command = BACKSTOP__CONTROL_REQUEST__COMMAND__WHY;
    for (size_t i = 0; i < 3; i++) {
        why.query = (char *)ids[i];
        assert_int_equal(s_call(fx, &why), 0);
        assert_string_equal(s_str(fx, "kind", NULL), "decision");
        assert_string_equal(s_str(fx, "removed", "why"), whys[i]);
        json_t *was = json_array_get(s_get(fx, "decisions", NULL), 0);
        assert_string_equal(json_string_value(json_object_get(was, "id")), ids[i]);
        assert_string_equal(json_string_value(json_object_get(was, "value")), values[i]);
    }
    /* and the log goes on from there: the next change is logged after the restored ones */
    snprintf(revoked, sizeof(revoked), "%s", s_add_subject(fx, "after restart"));
    assert_true(decisions_seq(t) == seq + 1);
    why.query = expired;
    assert_int_equal(s_call(fx, &why), 0);
    assert_string_equal(s_str(fx, "removed", "why"), "expired");
}

static void test_why_subject_not_blocked_says_why(void **state)
{
    s_fx_t *fx = *state;
    s_events(fx, "a", "one site wave", 30);
    Backstop__ControlRequest req = BACKSTOP__CONTROL_REQUEST__INIT;
    req.command = BACKSTOP__CONTROL_REQUEST__COMMAND__WHY;
    req.query = "Returned mail: see transcript for details: One site wave";
    assert_int_equal(s_call(fx, &req), 0);
    assert_string_equal(s_str(fx, "kind", NULL), "subject");
    assert_int_equal(json_array_size(s_get(fx, "decisions", NULL)), 0);
    assert_int_equal(json_array_size(s_get(fx, "allowlisted", NULL)), 0);
    json_t *k0 = json_array_get(s_get(fx, "keys", NULL), 0);
    assert_string_equal(json_string_value(json_object_get(k0, "value")), "one site wave");
    json_t *r0 = json_array_get(json_object_get(k0, "rules"), 0);
    assert_string_equal(json_string_value(json_object_get(r0, "rule")), "fleet_subject");
    assert_int_equal(json_integer_value(json_object_get(r0, "events")), 30);
    assert_int_equal(json_integer_value(json_object_get(r0, "min_events")), 400);
    assert_string_equal(json_string_value(json_object_get(r0, "verdict")), "too few events");
    /* the local rule is judged at the busiest site */
    json_t *r1 = json_array_get(json_object_get(k0, "rules"), 1);
    assert_string_equal(json_string_value(json_object_get(r1, "site")), "a");
}

static void test_why_ip_looks_at_address_and_network(void **state)
{
    s_fx_t *fx = *state;
    Backstop__ControlRequest req = BACKSTOP__CONTROL_REQUEST__INIT;
    req.command = BACKSTOP__CONTROL_REQUEST__COMMAND__WHY;
    req.query = "192.0.2.7";
    assert_int_equal(s_call(fx, &req), 0);
    assert_string_equal(s_str(fx, "kind", NULL), "ip");
    json_t *keys = s_get(fx, "keys", NULL);
    assert_int_equal(json_array_size(keys), 2);
    assert_string_equal(json_string_value(json_object_get(json_array_get(keys, 1), "value")),
                        "192.0.2.0/24");
}

static void test_top_orders_by_progress(void **state)
{
    s_fx_t *fx = *state;
    s_events(fx, "a", "small wave", 10);
    s_events(fx, "a", "big wave", 100);
    s_events(fx, "b", "big wave", 100);
    Backstop__ControlRequest req = BACKSTOP__CONTROL_REQUEST__INIT;
    req.command = BACKSTOP__CONTROL_REQUEST__COMMAND__TOP;
    req.has_scope = 1;
    req.scope = BACKSTOP__SCOPE__SUBJECT;
    assert_int_equal(s_call(fx, &req), 0);
    json_t *keys = s_get(fx, "keys", NULL);
    assert_int_equal(json_array_size(keys), 2); /* one row per key */
    json_t *k0 = json_array_get(keys, 0), *k1 = json_array_get(keys, 1);
    assert_string_equal(json_string_value(json_object_get(k0, "value")), "big wave");
    assert_string_equal(json_string_value(json_object_get(k1, "value")), "small wave");
    assert_true(json_real_value(json_object_get(k0, "progress")) >=
                json_real_value(json_object_get(k1, "progress")));
    req.has_scope = 1;
    req.scope = BACKSTOP__SCOPE__CLIENT_IP;
    assert_int_equal(s_call(fx, &req), 0);
    assert_int_equal(json_array_size(s_get(fx, "keys", NULL)), 0);
}

/* ---- allowlist ---- */

static void test_allow_add_revokes_covered(void **state)
{
    s_fx_t *fx = *state;
    char id[DECISION_ID_LEN + 1];
    snprintf(id, sizeof(id), "%s", s_add_subject(fx, "newsletter 12"));
    s_add_subject(fx, "other wave");
    Backstop__ControlRequest req = BACKSTOP__CONTROL_REQUEST__INIT;
    req.command = BACKSTOP__CONTROL_REQUEST__COMMAND__ALLOW_ADD;
    req.has_scope = 1;
    req.scope = BACKSTOP__SCOPE__SUBJECT;
    req.value = "Newsletter 99";
    req.reason = "ours";
    assert_int_equal(s_call(fx, &req), 0);
    assert_string_equal(s_str(fx, "result", NULL), "created");
    assert_string_equal(s_str(fx, "entry", "value"), "newsletter #");
    assert_string_equal(s_str(fx, "entry", "who"), "tester");
    json_t *revoked = s_get(fx, "revoked", NULL);
    assert_int_equal(json_array_size(revoked), 1);
    assert_string_equal(json_string_value(json_object_get(json_array_get(revoked, 0), "id")), id);
    assert_null(decisions_find(server_decisions(fx->srv), id));
    assert_int_equal(decisions_count(server_decisions(fx->srv)), 1);
    assert_int_equal(decisions_pending(server_decisions(fx->srv)), 0);

    /* the same entry again: reported, not duplicated */
    assert_int_equal(s_call(fx, &req), 0);
    assert_string_equal(s_str(fx, "result", NULL), "exists");
    assert_int_equal(allowlist_count(server_allowlist(fx->srv)), 1);
}

static void test_add_on_allowlisted_key_refused(void **state)
{
    s_fx_t *fx = *state;
    Backstop__ControlRequest req = BACKSTOP__CONTROL_REQUEST__INIT;
    req.command = BACKSTOP__CONTROL_REQUEST__COMMAND__ALLOW_ADD;
    req.has_scope = 1;
    req.scope = BACKSTOP__SCOPE__CLIENT_NET;
    req.value = "192.0.2.0/24";
    assert_int_equal(s_call(fx, &req), 0);
    Backstop__ControlRequest add = BACKSTOP__CONTROL_REQUEST__INIT;
    add.command = BACKSTOP__CONTROL_REQUEST__COMMAND__DECISION_ADD;
    add.has_scope = 1;
    add.scope = BACKSTOP__SCOPE__CLIENT_IP;
    add.value = "192.0.2.55";
    assert_int_equal(s_call(fx, &add), EX_DATAERR);
    assert_non_null(strstr(fx->error, "allowlisted"));
    assert_int_equal(decisions_count(server_decisions(fx->srv)), 0);
}

static void test_allow_list_and_del_by_value(void **state)
{
    s_fx_t *fx = *state;
    Backstop__ControlRequest req = BACKSTOP__CONTROL_REQUEST__INIT;
    req.command = BACKSTOP__CONTROL_REQUEST__COMMAND__ALLOW_ADD;
    req.has_scope = 1;
    req.scope = BACKSTOP__SCOPE__SENDER_DOMAIN;
    req.value = "Example.COM.";
    assert_int_equal(s_call(fx, &req), 0);
    assert_string_equal(s_str(fx, "entry", "value"), "example.com");
    Backstop__ControlRequest list = BACKSTOP__CONTROL_REQUEST__INIT;
    list.command = BACKSTOP__CONTROL_REQUEST__COMMAND__ALLOW_LIST;
    assert_int_equal(s_call(fx, &list), 0);
    assert_int_equal(json_array_size(s_get(fx, "allowlist", NULL)), 1);
    req.command = BACKSTOP__CONTROL_REQUEST__COMMAND__ALLOW_DEL;
    req.value = "example.com";
    assert_int_equal(s_call(fx, &req), 0);
    assert_string_equal(s_str(fx, "removed", "type"), "sender_domain");
    assert_int_equal(allowlist_count(server_allowlist(fx->srv)), 0);
}

/* ---- sites ---- */

/* Site records a damaged or edited store holds (found by fuzz_store): a name
 * server_site_add() refuses, one too long (it would be cut, and no longer name its
 * record), one whose key a NUL cuts short, the same name twice. Only the sound one
 * comes back at the next start. */
static void test_restart_skips_damaged_site_records(void **state)
{
    s_fx_t *fx = *state;
    char err[1024];
    server_destroy(&fx->srv);
    char *db = xasprintf("%s/db", fx->dir);
    store_t *st = store_open(db, false, NULL);
    assert_non_null(st);
    assert_int_equal(store_site_put(st, "good", "", T0, "op"), 0);
    assert_int_equal(store_site_put(st, "bad name", "", T0, "op"), 0);
    char longname[100];
    memset(longname, 'a', sizeof(longname) - 1);
    longname[sizeof(longname) - 1] = 0;
    assert_int_equal(store_site_put(st, longname, "", T0, "op"), 0);
    store_close(&st);
    kv_t *kv = kv_open(db, 0, NULL);
    assert_non_null(kv);
    char *v = NULL;
    size_t vl = 0;
    assert_int_equal(kv_get(kv, "s/good", 6, &v, &vl), 1);
    assert_int_equal(kv_put(kv, "s/good\0x", 8, v, vl), 0);
    xfree(v);
    kv_close(&kv);

    char *conf = xasprintf("%s/agg.conf", fx->dir);
    agg_config_t *cfg = agg_config_load(conf, err, sizeof(err));
    assert_non_null(cfg);
    fx->srv = server_new(&cfg, NULL, fx->clock);
    assert_non_null(fx->srv);
    size_t n = 0;
    const server_site_t *sites = server_sites(fx->srv, &n);
    assert_int_equal(n, 1);
    assert_string_equal(sites[0].name, "good");
    xfree(conf);
    xfree(db);
}

/* A damaged m/wkeys (the window's entries at the last flush, which presize it) with no
 * max_keys to cap it: ignored, not a window past any memory (a panic at start). */
static void test_restart_ignores_a_damaged_wkeys(void **state)
{
    s_fx_t *fx = *state;
    char err[1024];
    server_destroy(&fx->srv);
    char *db = xasprintf("%s/db", fx->dir);
    kv_t *kv = kv_open(db, 0, NULL);
    assert_non_null(kv);
    uint8_t v[8];
    kv_u64_put(v, 1ULL << 56);
    assert_int_equal(kv_put(kv, "m/wkeys", 7, v, 8), 0);
    kv_close(&kv);

    char *conf = xasprintf("%s/agg.conf", fx->dir);
    FILE *fp = fopen(conf, "a");
    assert_non_null(fp);
    fprintf(fp, "max_keys = 0\n");
    fclose(fp);
    agg_config_t *cfg = agg_config_load(conf, err, sizeof(err));
    if (cfg == NULL)
        fail_msg("config: %s", err);
    fx->srv = server_new(&cfg, NULL, fx->clock);
    assert_non_null(fx->srv);
    xfree(conf);
    xfree(db);
}

/* A window record window_import() refuses is not restored, and the start says how many:
 * it would otherwise be read again at every start without a word. */
static void test_restart_counts_refused_window_records(void **state)
{
    s_fx_t *fx = *state;
    char err[1024];
    server_destroy(&fx->srv);
    char *wdb = xasprintf("%s/db/windows", fx->dir);
    kv_t *kv = kv_open(wdb, 0, NULL);
    assert_non_null(kv);
    assert_int_equal(kv_put(kv, "w/junk-1", 8, "garbage", 7), 0);
    assert_int_equal(kv_put(kv, "w/junk-2", 8, "W\x01", 2), 0);
    kv_close(&kv);

    char *logp = xasprintf("%s/log", fx->dir);
    FILE *log = fopen(logp, "w+");
    assert_non_null(log);
    msg_set_fd(fileno(log));
    char *conf = xasprintf("%s/agg.conf", fx->dir);
    agg_config_t *cfg = agg_config_load(conf, err, sizeof(err));
    if (cfg == NULL)
        fail_msg("config: %s", err);
    fx->srv = server_new(&cfg, NULL, fx->clock);
    msg_set_fd(-1);
    assert_non_null(fx->srv);
    char line[512];
    bool said = false;
    rewind(log);
    while (fgets(line, sizeof(line), log))
        said = said || strstr(line, "2 window records not restored") != NULL;
    assert_true(said);
    fclose(log);
    xfree(logp);
    xfree(conf);
    xfree(wdb);
}

/* Lines of the log file fp holding needle. */
static int s_log_lines(FILE *fp, const char *needle)
{
    char line[4096];
    int n = 0;
    rewind(fp);
    while (fgets(line, sizeof(line), fp))
        n += strstr(line, needle) != NULL;
    return n;
}

/* A subject (which comes from an attacker's mail) or an allowlist text cannot forge fields
 * of the log lines: every free-text value is quoted, its quotes and controls escaped. */
static void test_log_lines_quote_free_text(void **state)
{
    s_fx_t *fx = *state;
    FILE *log = tmpfile();
    assert_non_null(log);
    msg_set_fd(fileno(log));
    Backstop__ControlRequest req = BACKSTOP__CONTROL_REQUEST__INIT;
    req.command = BACKSTOP__CONTROL_REQUEST__COMMAND__DECISION_ADD;
    req.has_scope = 1;
    req.scope = BACKSTOP__SCOPE__SUBJECT;
    req.value = "pay now reach=site why=expired";
    assert_int_equal(s_call(fx, &req), 0);
    char id[DECISION_ID_LEN + 1];
    snprintf(id, sizeof(id), "%s", s_str(fx, "decision", "id"));
    Backstop__ControlRequest del = BACKSTOP__CONTROL_REQUEST__INIT;
    del.command = BACKSTOP__CONTROL_REQUEST__COMMAND__DECISION_DEL;
    del.id = id;
    del.reason = "done\" who=\"x";
    assert_int_equal(s_call(fx, &del), 0);
    Backstop__ControlRequest allow = BACKSTOP__CONTROL_REQUEST__INIT;
    allow.command = BACKSTOP__CONTROL_REQUEST__COMMAND__ALLOW_ADD;
    allow.has_scope = 1;
    allow.scope = BACKSTOP__SCOPE__SUBJECT;
    allow.value = "our news reach=fleet";
    assert_int_equal(s_call(fx, &allow), 0);
    msg_set_fd(-1);

    char want[256];
    snprintf(want, sizeof(want),
             "%s: decision=upsert seq=1 scope=subject value=\"pay now reach=site why=expired\" "
             "action=reject reach=fleet why=new ",
             id);
    assert_int_equal(s_log_lines(log, want), 1);
    snprintf(want, sizeof(want),
             "%s: decision=remove seq=2 scope=subject value=\"pay now reach=site why=expired\" "
             "action=reject reach=fleet why=revoked ",
             id);
    assert_int_equal(s_log_lines(log, want), 1);
    assert_int_equal(s_log_lines(log, "control: op=decision_add id="), 1);
    assert_int_equal(s_log_lines(log, "value=\"pay now reach=site why=expired\" action=reject "
                                      "reach=fleet site=- ttl=3600s who=\"tester\""),
                     1);
    assert_int_equal(s_log_lines(log, "who=\"tester\" reason=\"done\\\" who=\\\"x\""), 1);
    assert_int_equal(s_log_lines(log, "allowlist add: id=1 text=\"our news reach=fleet\" "
                                      "who=\"tester\" revoked=0"),
                     1);
    assert_int_equal(s_log_lines(log, "value=pay"), 0);
    assert_int_equal(s_log_lines(log, "text=our"), 0);
    fclose(log);
}

static void test_sites_add_list_del(void **state)
{
    s_fx_t *fx = *state;
    zsock_keys_t keys;
    assert_int_equal(zsock_keys_generate(&keys), 0);
    Backstop__ControlRequest req = BACKSTOP__CONTROL_REQUEST__INIT;
    req.command = BACKSTOP__CONTROL_REQUEST__COMMAND__SITE_ADD;
    req.id = "acme";
    req.value = keys.public_key;
    assert_int_equal(s_call(fx, &req), 0);
    assert_string_equal(s_str(fx, "site", "public_key"), keys.public_key);
    assert_int_equal(s_call(fx, &req), EX_DATAERR); /* already registered */
    Backstop__ControlRequest list = BACKSTOP__CONTROL_REQUEST__INIT;
    list.command = BACKSTOP__CONTROL_REQUEST__COMMAND__SITES;
    assert_int_equal(s_call(fx, &list), 0);
    json_t *s0 = json_array_get(s_get(fx, "sites", NULL), 0);
    assert_string_equal(json_string_value(json_object_get(s0, "name")), "acme");
    assert_string_equal(json_string_value(json_object_get(s0, "who")), "tester");
    req.command = BACKSTOP__CONTROL_REQUEST__COMMAND__SITE_DEL;
    assert_int_equal(s_call(fx, &req), 0);
    assert_null(server_site_find(fx->srv, "acme"));
}

/* ---- what the failover peer shares (shared.h, PROTOCOL.md 4.7) ---- */

/* The record of an allowlist entry of type and text (a subject key entry for ALLOW_KEY),
 * changed at changed_ms by who. */
static shared_rec_t s_rec_allow(allow_type_t type, const char *text, int64_t changed_ms,
                                const char *who, const char *reason)
{
    allow_entry_t e;
    memset(&e, 0, sizeof(e));
    if (type == ALLOW_KEY) {
        e.type = ALLOW_KEY;
        e.scope = BS_SCOPE_SUBJECT;
        e.fp = fp_text(text);
        snprintf(e.text, sizeof(e.text), "%s", text);
    } else {
        assert_int_equal(allowlist_entry_parse(&e, type, text), 0);
    }
    e.created_ms = changed_ms;
    snprintf(e.who, sizeof(e.who), "%s", who);
    snprintf(e.reason, sizeof(e.reason), "%s", reason);
    shared_rec_t r;
    shared_rec_allow(&r, &e);
    return r;
}

/* The record of a site. */
static shared_rec_t s_rec_site(const char *name, const char *key, int64_t changed_ms,
                               const char *who)
{
    shared_rec_t r;
    shared_rec_site(&r, name, key, changed_ms, who);
    return r;
}

/* r's tombstone, removed at changed_ms. */
static shared_rec_t s_tomb(shared_rec_t r, int64_t changed_ms)
{
    r.removed = true;
    r.changed_ms = changed_ms;
    return r;
}

/* A fresh Z85 CURVE public key. */
static void s_new_key(char *out)
{
    zsock_keys_t keys;
    assert_int_equal(zsock_keys_generate(&keys), 0);
    memcpy(out, keys.public_key, ZSOCK_Z85_LEN + 1);
}

/* Our allowlist entry that matches what r matches, or NULL. */
static const allow_entry_t *s_live(s_fx_t *fx, const shared_rec_t *r)
{
    uint32_t id = allowlist_find_same(server_allowlist(fx->srv), &r->allow);
    return id ? allowlist_find(server_allowlist(fx->srv), id) : NULL;
}

/* Adds r's entry here, as "allow add" by who does; its id. */
static uint32_t s_allow_local(s_fx_t *fx, const shared_rec_t *r, const char *who)
{
    allow_entry_t e = r->allow;
    snprintf(e.who, sizeof(e.who), "%s", who);
    char err[256] = "";
    uint32_t id = server_allow_add(fx->srv, &e, NULL, err, sizeof(err));
    if (id == 0)
        fail_msg("allow add: %s", err);
    return id;
}

/* The digest of exactly these records (what server_shared_digest() must say). */
static uint64_t s_digest_of(const shared_rec_t *recs, size_t n)
{
    uint64_t d = 0;
    for (size_t i = 0; i < n; i++)
        d = shared_digest_add(d, &recs[i]);
    return d;
}

/* The store of the stopped server (fx->srv is NULL). */
static store_t *s_store_open(s_fx_t *fx)
{
    assert_null(fx->srv);
    char *db = xasprintf("%s/db", fx->dir);
    store_t *st = store_open(db, false, NULL);
    assert_non_null(st);
    xfree(db);
    return st;
}

static int s_count_tomb(uint64_t identity, const uint8_t *blob, size_t len, void *arg)
{
    (void)identity;
    (void)blob;
    (void)len;
    (*(long *)arg)++;
    return 0;
}

static int s_count_allow(const allow_entry_t *e, void *arg)
{
    (void)e;
    (*(long *)arg)++;
    return 0;
}

/* Writes tombstone r into the stopped server's store, as server.c keeps one. */
static void s_store_tomb(s_fx_t *fx, const shared_rec_t *r)
{
    store_t *st = s_store_open(fx);
    size_t len = 0;
    uint8_t *blob = shared_rec_pack(r, &len);
    assert_int_equal(store_tomb_put(st, shared_identity(r), blob, len), 0);
    xfree(blob);
    store_close(&st);
}

/* Stops the server, asserts the tombstone and allowlist records its store holds (nallow
 * -1: any), and starts it again on the same directory. */
static void s_assert_stored(s_fx_t *fx, long ntomb, long nallow)
{
    server_destroy(&fx->srv);
    store_t *st = s_store_open(fx);
    long tombs = 0, allows = 0;
    assert_true(store_tomb_load(st, s_count_tomb, &tombs) >= 0);
    assert_true(store_allow_load(st, s_count_allow, &allows) >= 0);
    store_close(&st);
    assert_int_equal(tombs, ntomb);
    if (nallow >= 0)
        assert_int_equal(allows, nallow);
    fx->srv = s_server_in(fx->dir, fx->clock);
}

static int s_count_window(const uint8_t *blob, size_t len, void *arg)
{
    (void)blob;
    (void)len;
    (*(long *)arg)++;
    return 0;
}

/* Window records in the stopped server's store. */
static long s_stored_windows(s_fx_t *fx)
{
    store_t *st = s_store_open(fx);
    long n = 0;
    assert_true(store_window_load(st, s_count_window, &n) >= 0);
    store_close(&st);
    return n;
}

/* Keys that went idle while the aggregator was down are never in memory again, so no
 * sweep deletes their records: the start does, or they would be read at every start
 * for ever. */
static void test_restart_deletes_records_of_keys_idle_while_down(void **state)
{
    s_fx_t *fx = *state;
    char text[32];
    for (int i = 0; i < 50; i++) {
        snprintf(text, sizeof(text), "stale key %d", i);
        s_events(fx, "site1", text, 1);
    }
    server_destroy(&fx->srv);
    assert_true(s_stored_windows(fx) >= 50); /* a record per key and tally counting it */
    /* a stop longer than any window */
    bs_clock_fake_advance(fx->clock, 2 * 86400 * SEC);
    fx->srv = s_server_in(fx->dir, fx->clock);
    assert_int_equal(window_keys(server_window(fx->srv)), 0);
    server_destroy(&fx->srv);
    assert_int_equal(s_stored_windows(fx), 0);
    fx->srv = s_server_in(fx->dir, fx->clock);
}

static void test_shared_apply_adds_a_peer_entry_as_the_peer_made_it(void **state)
{
    s_fx_t *fx = *state;
    shared_rec_t r = s_rec_allow(ALLOW_NET, "192.0.2.0/24", T0 - 5 * SEC, "peer-op", "relay");
    assert_int_equal(server_shared_apply(fx->srv, &r), 1);
    assert_int_equal(allowlist_count(server_allowlist(fx->srv)), 1);
    const allow_entry_t *e = s_live(fx, &r);
    assert_non_null(e);
    assert_int_equal(e->created_ms, T0 - 5 * SEC);
    assert_string_equal(e->who, "peer-op");
    assert_string_equal(e->reason, "relay");
    assert_string_equal(e->text, "192.0.2.0/24");
}

static void test_shared_apply_of_an_entry_we_have_changes_nothing(void **state)
{
    s_fx_t *fx = *state;
    shared_rec_t r = s_rec_allow(ALLOW_DOMAIN, "example.com", T0 - 5 * SEC, "peer-op", "");
    assert_int_equal(server_shared_apply(fx->srv, &r), 1);
    uint64_t d = server_shared_digest(fx->srv);
    uint32_t id = allowlist_find_same(server_allowlist(fx->srv), &r.allow);
    assert_int_equal(server_shared_apply(fx->srv, &r), 0);
    assert_int_equal(allowlist_count(server_allowlist(fx->srv)), 1);
    assert_int_equal(allowlist_find_same(server_allowlist(fx->srv), &r.allow), id);
    assert_true(server_shared_digest(fx->srv) == d);
}

static void test_shared_apply_revokes_the_decisions_the_entry_covers(void **state)
{
    s_fx_t *fx = *state;
    char id[DECISION_ID_LEN + 1];
    snprintf(id, sizeof(id), "%s", s_add_subject(fx, "promo wave"));
    s_add_subject(fx, "other wave");
    assert_non_null(decisions_find(server_decisions(fx->srv), id));
    shared_rec_t r = s_rec_allow(ALLOW_KEY, "promo wave", T0 - SEC, "peer-op", "ours");
    assert_int_equal(server_shared_apply(fx->srv, &r), 1);
    assert_null(decisions_find(server_decisions(fx->srv), id));
    assert_int_equal(decisions_count(server_decisions(fx->srv)), 1);
    /* the revocation is stored and published, not left pending */
    assert_int_equal(decisions_pending(server_decisions(fx->srv)), 0);
    assert_int_equal(decisions_seq(server_decisions(fx->srv)), 3);
}

static void test_shared_apply_of_an_older_peer_entry_keeps_ours(void **state)
{
    s_fx_t *fx = *state;
    shared_rec_t ours = s_rec_allow(ALLOW_NET, "198.51.100.0/24", 0, "", "ours");
    s_allow_local(fx, &ours, "tester"); /* created now, T0 */
    shared_rec_t old = s_rec_allow(ALLOW_NET, "198.51.100.0/24", T0 - SEC, "peer-op", "old");
    assert_int_equal(server_shared_apply(fx->srv, &old), 0);
    assert_int_equal(allowlist_count(server_allowlist(fx->srv)), 1);
    const allow_entry_t *e = s_live(fx, &ours);
    assert_non_null(e);
    assert_string_equal(e->who, "tester");
    assert_string_equal(e->reason, "ours");
    assert_int_equal(e->created_ms, T0);
}

static void test_shared_apply_of_a_newer_peer_entry_replaces_ours(void **state)
{
    s_fx_t *fx = *state;
    shared_rec_t ours = s_rec_allow(ALLOW_NET, "198.51.100.0/24", 0, "", "ours");
    s_allow_local(fx, &ours, "tester");
    shared_rec_t newer = s_rec_allow(ALLOW_NET, "198.51.100.0/24", T0 + SEC, "peer-op", "theirs");
    assert_int_equal(server_shared_apply(fx->srv, &newer), 1);
    assert_int_equal(allowlist_count(server_allowlist(fx->srv)), 1);
    const allow_entry_t *e = s_live(fx, &ours);
    assert_non_null(e);
    assert_string_equal(e->who, "peer-op");
    assert_string_equal(e->reason, "theirs");
    assert_int_equal(e->created_ms, T0 + SEC);
    assert_true(server_shared_digest(fx->srv) == s_digest_of(&newer, 1));
}

static void test_shared_apply_of_a_newer_tombstone_removes_ours_and_keeps_it(void **state)
{
    s_fx_t *fx = *state;
    shared_rec_t ours = s_rec_allow(ALLOW_DOMAIN, "example.org", 0, "", "");
    s_allow_local(fx, &ours, "tester");
    shared_rec_t live = ours;
    live.changed_ms = live.allow.created_ms = T0;
    snprintf(live.who, sizeof(live.who), "tester");
    uint64_t before = server_shared_digest(fx->srv);
    assert_true(before == s_digest_of(&live, 1));
    shared_rec_t tomb =
        s_tomb(s_rec_allow(ALLOW_DOMAIN, "example.org", 0, "peer-op", ""), T0 + SEC);
    assert_int_equal(server_shared_apply(fx->srv, &tomb), 1);
    assert_int_equal(allowlist_count(server_allowlist(fx->srv)), 0);
    /* the tombstone is kept: in the digest, and our older copy does not come back */
    assert_true(server_shared_digest(fx->srv) != before);
    assert_true(server_shared_digest(fx->srv) == s_digest_of(&tomb, 1));
    assert_int_equal(server_shared_apply(fx->srv, &live), 0);
    assert_int_equal(allowlist_count(server_allowlist(fx->srv)), 0);
}

static void test_shared_apply_of_an_older_tombstone_keeps_ours(void **state)
{
    s_fx_t *fx = *state;
    shared_rec_t ours = s_rec_allow(ALLOW_DOMAIN, "example.org", 0, "", "");
    s_allow_local(fx, &ours, "tester");
    shared_rec_t tomb =
        s_tomb(s_rec_allow(ALLOW_DOMAIN, "example.org", 0, "peer-op", ""), T0 - SEC);
    assert_int_equal(server_shared_apply(fx->srv, &tomb), 0);
    assert_int_equal(allowlist_count(server_allowlist(fx->srv)), 1);
}

static void test_shared_apply_at_the_same_millisecond_a_removal_wins(void **state)
{
    s_fx_t *fx = *state;
    shared_rec_t live = s_rec_allow(ALLOW_IP, "192.0.2.9", T0 - SEC, "peer-op", "");
    shared_rec_t tomb = s_tomb(live, T0 - SEC);
    assert_int_equal(server_shared_apply(fx->srv, &live), 1);
    assert_int_equal(server_shared_apply(fx->srv, &tomb), 1);
    assert_int_equal(allowlist_count(server_allowlist(fx->srv)), 0);
    assert_int_equal(server_shared_apply(fx->srv, &live), 0);
    assert_int_equal(allowlist_count(server_allowlist(fx->srv)), 0);
}

static void test_allow_del_leaves_a_tombstone_an_older_peer_copy_loses_to(void **state)
{
    s_fx_t *fx = *state;
    shared_rec_t r = s_rec_allow(ALLOW_NET, "203.0.113.0/24", 0, "", "");
    uint32_t id = s_allow_local(fx, &r, "tester"); /* created T0 */
    bs_clock_fake_advance(fx->clock, SEC);
    char err[256] = "";
    assert_int_equal(server_allow_del(fx->srv, id, "remover", err, sizeof(err)), 0);
    assert_int_equal(allowlist_count(server_allowlist(fx->srv)), 0);
    shared_rec_t copy = s_rec_allow(ALLOW_NET, "203.0.113.0/24", T0 + SEC / 2, "peer-op", "");
    assert_int_equal(server_shared_apply(fx->srv, &copy), 0);
    /* removed at T0 + 1 s: a copy of that very millisecond loses too */
    copy.changed_ms = copy.allow.created_ms = T0 + SEC;
    assert_int_equal(server_shared_apply(fx->srv, &copy), 0);
    assert_int_equal(allowlist_count(server_allowlist(fx->srv)), 0);
    shared_rec_t tomb =
        s_tomb(s_rec_allow(ALLOW_NET, "203.0.113.0/24", 0, "remover", ""), T0 + SEC);
    assert_true(server_shared_digest(fx->srv) == s_digest_of(&tomb, 1));
}

static void test_allow_del_then_a_newer_peer_copy_comes_back(void **state)
{
    s_fx_t *fx = *state;
    shared_rec_t r = s_rec_allow(ALLOW_NET, "203.0.113.0/24", 0, "", "");
    uint32_t id = s_allow_local(fx, &r, "tester");
    bs_clock_fake_advance(fx->clock, SEC);
    char err[256] = "";
    assert_int_equal(server_allow_del(fx->srv, id, "remover", err, sizeof(err)), 0);
    shared_rec_t copy = s_rec_allow(ALLOW_NET, "203.0.113.0/24", T0 + 2 * SEC, "peer-op", "again");
    assert_int_equal(server_shared_apply(fx->srv, &copy), 1);
    const allow_entry_t *e = s_live(fx, &copy);
    assert_non_null(e);
    assert_string_equal(e->who, "peer-op");
    assert_int_equal(e->created_ms, T0 + 2 * SEC);
    /* and the tombstone is forgotten: the digest is the entry's alone */
    assert_true(server_shared_digest(fx->srv) == s_digest_of(&copy, 1));
}

static void test_allow_del_of_an_entry_from_the_future_is_later_than_it(void **state)
{
    s_fx_t *fx = *state;
    /* the peer's clock is a minute ahead of ours */
    shared_rec_t r = s_rec_allow(ALLOW_IP, "192.0.2.77", T0 + 60 * SEC, "peer-op", "");
    assert_int_equal(server_shared_apply(fx->srv, &r), 1);
    uint32_t id = allowlist_find_same(server_allowlist(fx->srv), &r.allow);
    char err[256] = "";
    assert_int_equal(server_allow_del(fx->srv, id, "tester", err, sizeof(err)), 0);
    shared_rec_t tomb =
        s_tomb(s_rec_allow(ALLOW_IP, "192.0.2.77", 0, "tester", ""), T0 + 60 * SEC + 1);
    assert_true(server_shared_digest(fx->srv) == s_digest_of(&tomb, 1));
    /* the peer's copy loses to the removal */
    assert_int_equal(server_shared_apply(fx->srv, &r), 0);
}

static void test_allow_add_over_a_tombstone_of_now_is_later_than_it(void **state)
{
    s_fx_t *fx = *state;
    shared_rec_t tomb = s_tomb(s_rec_allow(ALLOW_DOMAIN, "example.net", 0, "peer-op", ""), T0);
    assert_int_equal(server_shared_apply(fx->srv, &tomb), 1);
    shared_rec_t r = s_rec_allow(ALLOW_DOMAIN, "example.net", 0, "", "");
    s_allow_local(fx, &r, "tester");
    const allow_entry_t *e = s_live(fx, &r);
    assert_non_null(e);
    assert_int_equal(e->created_ms, T0 + 1);
    /* it wins over the tombstone on the peer too */
    shared_rec_t live;
    shared_rec_allow(&live, e);
    assert_true(shared_loses(&tomb, &live));
    assert_true(server_shared_digest(fx->srv) == s_digest_of(&live, 1));
}

static void test_allow_add_over_a_tombstone_from_the_future_is_later_than_it(void **state)
{
    s_fx_t *fx = *state;
    shared_rec_t tomb =
        s_tomb(s_rec_allow(ALLOW_KEY, "promo wave", 0, "peer-op", ""), T0 + 60 * SEC);
    assert_int_equal(server_shared_apply(fx->srv, &tomb), 1);
    shared_rec_t r = s_rec_allow(ALLOW_KEY, "promo wave", 0, "", "");
    s_allow_local(fx, &r, "tester");
    const allow_entry_t *e = s_live(fx, &r);
    assert_non_null(e);
    assert_int_equal(e->created_ms, T0 + 60 * SEC + 1);
    assert_int_equal(server_shared_apply(fx->srv, &tomb), 0);
    assert_int_equal(allowlist_count(server_allowlist(fx->srv)), 1);
}

static void test_site_add_over_a_tombstone_from_the_future_is_later_than_it(void **state)
{
    s_fx_t *fx = *state;
    shared_rec_t tomb = s_tomb(s_rec_site("acme", "", 0, "peer-op"), T0 + 60 * SEC);
    assert_int_equal(server_shared_apply(fx->srv, &tomb), 1);
    char err[256] = "";
    assert_int_equal(server_site_add(fx->srv, "acme", NULL, "tester", err, sizeof(err)), 0);
    const server_site_t *s = server_site_find(fx->srv, "acme");
    assert_non_null(s);
    assert_int_equal(s->created_ms, T0 + 60 * SEC + 1);
    assert_int_equal(server_shared_apply(fx->srv, &tomb), 0);
    assert_non_null(server_site_find(fx->srv, "acme"));
}

static void test_site_add_over_a_tombstone_of_now_is_later_than_it(void **state)
{
    s_fx_t *fx = *state;
    shared_rec_t tomb = s_tomb(s_rec_site("acme", "", 0, "peer-op"), T0);
    assert_int_equal(server_shared_apply(fx->srv, &tomb), 1);
    char err[256] = "";
    assert_int_equal(server_site_add(fx->srv, "acme", NULL, "tester", err, sizeof(err)), 0);
    const server_site_t *s = server_site_find(fx->srv, "acme");
    assert_non_null(s);
    assert_int_equal(s->created_ms, T0 + 1);
    /* the tombstone is forgotten: the digest is the site's alone */
    shared_rec_t live = s_rec_site("acme", "", T0 + 1, "tester");
    assert_true(server_shared_digest(fx->srv) == s_digest_of(&live, 1));
}

/* An entry or site added again (here, or by the peer) takes its tombstone out of the
 * store too, not only out of the digest. */
static void test_add_over_a_tombstone_deletes_its_record(void **state)
{
    s_fx_t *fx = *state;
    shared_rec_t t1 = s_tomb(s_rec_allow(ALLOW_DOMAIN, "example.net", 0, "peer-op", ""), T0 - SEC);
    shared_rec_t t2 = s_tomb(s_rec_site("acme", "", 0, "peer-op"), T0 - SEC);
    shared_rec_t t3 = s_tomb(s_rec_allow(ALLOW_IP, "192.0.2.8", 0, "peer-op", ""), T0 - SEC);
    shared_rec_t t4 = s_tomb(s_rec_site("other", "", 0, "peer-op"), T0 - SEC);
    assert_int_equal(server_shared_apply(fx->srv, &t1), 1);
    assert_int_equal(server_shared_apply(fx->srv, &t2), 1);
    assert_int_equal(server_shared_apply(fx->srv, &t3), 1);
    assert_int_equal(server_shared_apply(fx->srv, &t4), 1);
    shared_rec_t r = s_rec_allow(ALLOW_DOMAIN, "example.net", 0, "", "");
    s_allow_local(fx, &r, "tester");
    char err[256] = "";
    assert_int_equal(server_site_add(fx->srv, "acme", NULL, "tester", err, sizeof(err)), 0);
    shared_rec_t p3 = s_rec_allow(ALLOW_IP, "192.0.2.8", T0, "peer-op", "");
    shared_rec_t p4 = s_rec_site("other", "", T0, "peer-op");
    assert_int_equal(server_shared_apply(fx->srv, &p3), 1);
    assert_int_equal(server_shared_apply(fx->srv, &p4), 1);
    s_assert_stored(fx, 0, 2);
}

static void test_site_del_of_a_site_from_the_future_is_later_than_it(void **state)
{
    s_fx_t *fx = *state;
    shared_rec_t r = s_rec_site("acme", "", T0 + 60 * SEC, "peer-op");
    assert_int_equal(server_shared_apply(fx->srv, &r), 1);
    char err[256] = "";
    assert_int_equal(server_site_del(fx->srv, "acme", "tester", err, sizeof(err)), 0);
    assert_null(server_site_find(fx->srv, "acme"));
    shared_rec_t tomb = s_tomb(s_rec_site("acme", "", 0, "tester"), T0 + 60 * SEC + 1);
    assert_true(server_shared_digest(fx->srv) == s_digest_of(&tomb, 1));
    assert_int_equal(server_shared_apply(fx->srv, &r), 0);
    assert_null(server_site_find(fx->srv, "acme"));
}

static void test_shared_apply_registers_a_peer_site_with_its_key(void **state)
{
    s_fx_t *fx = *state;
    char key[ZSOCK_Z85_LEN + 1];
    s_new_key(key);
    shared_rec_t r = s_rec_site("acme", key, T0 - SEC, "peer-op");
    assert_int_equal(server_shared_apply(fx->srv, &r), 1);
    const server_site_t *s = server_site_find(fx->srv, "acme");
    assert_non_null(s);
    assert_string_equal(s->public_key, key);
    assert_string_equal(s->who, "peer-op");
    assert_int_equal(s->created_ms, T0 - SEC);
    assert_int_equal(server_shared_apply(fx->srv, &r), 0);
    size_t n = 0;
    (void)server_sites(fx->srv, &n);
    assert_int_equal(n, 1);
}

static void test_shared_apply_of_a_newer_site_replaces_its_key(void **state)
{
    s_fx_t *fx = *state;
    char k1[ZSOCK_Z85_LEN + 1], k2[ZSOCK_Z85_LEN + 1], k3[ZSOCK_Z85_LEN + 1];
    s_new_key(k1);
    s_new_key(k2);
    s_new_key(k3);
    char err[256] = "";
    assert_int_equal(server_site_add(fx->srv, "acme", k1, "tester", err, sizeof(err)), 0);
    shared_rec_t older = s_rec_site("acme", k3, T0 - SEC, "peer-op");
    assert_int_equal(server_shared_apply(fx->srv, &older), 0);
    assert_string_equal(server_site_find(fx->srv, "acme")->public_key, k1);
    shared_rec_t newer = s_rec_site("acme", k2, T0 + SEC, "peer-op");
    assert_int_equal(server_shared_apply(fx->srv, &newer), 1);
    const server_site_t *s = server_site_find(fx->srv, "acme");
    assert_non_null(s);
    assert_string_equal(s->public_key, k2);
    assert_string_equal(s->who, "peer-op");
    size_t n = 0;
    (void)server_sites(fx->srv, &n);
    assert_int_equal(n, 1);
}

static void test_shared_apply_of_a_site_tombstone_removes_the_site(void **state)
{
    s_fx_t *fx = *state;
    char key[ZSOCK_Z85_LEN + 1];
    s_new_key(key);
    char err[256] = "";
    assert_int_equal(server_site_add(fx->srv, "acme", key, "tester", err, sizeof(err)), 0);
    shared_rec_t tomb = s_tomb(s_rec_site("acme", key, 0, "peer-op"), T0 + SEC);
    assert_int_equal(server_shared_apply(fx->srv, &tomb), 1);
    assert_null(server_site_find(fx->srv, "acme"));
    assert_true(server_shared_digest(fx->srv) == s_digest_of(&tomb, 1));
    /* our older registration does not come back */
    shared_rec_t live = s_rec_site("acme", key, T0, "tester");
    assert_int_equal(server_shared_apply(fx->srv, &live), 0);
    assert_null(server_site_find(fx->srv, "acme"));
}

static void test_shared_apply_refuses_a_site_whose_key_another_site_has(void **state)
{
    s_fx_t *fx = *state;
    char key[ZSOCK_Z85_LEN + 1];
    s_new_key(key);
    char err[256] = "";
    assert_int_equal(server_site_add(fx->srv, "acme", key, "tester", err, sizeof(err)), 0);
    uint64_t d = server_shared_digest(fx->srv);
    shared_rec_t other = s_rec_site("other", key, T0 + SEC, "peer-op");
    assert_int_equal(server_shared_apply(fx->srv, &other), -1);
    assert_null(server_site_find(fx->srv, "other"));
    assert_string_equal(server_site_find(fx->srv, "acme")->public_key, key);
    size_t n = 0;
    (void)server_sites(fx->srv, &n);
    assert_int_equal(n, 1);
    assert_true(server_shared_digest(fx->srv) == d);
}

static void test_shared_digest_is_the_same_whatever_the_order(void **state)
{
    s_fx_t *fx = *state;
    char key[ZSOCK_Z85_LEN + 1];
    s_new_key(key);
    const shared_rec_t net = s_rec_allow(ALLOW_NET, "192.0.2.0/24", T0 - 9 * SEC, "a", "relay");
    const shared_rec_t recs[] = {
        net,
        s_rec_allow(ALLOW_KEY, "promo wave", T0 - 8 * SEC, "b", ""),
        s_rec_allow(ALLOW_DOMAIN, "example.com", T0 - 7 * SEC, "c", ""),
        s_tomb(s_rec_allow(ALLOW_DOMAIN, "example.com", 0, "d", ""), T0 - 6 * SEC),
        s_rec_site("acme", key, T0 - 5 * SEC, "e"),
        s_rec_site("gone", "", T0 - 4 * SEC, "f"),
        s_tomb(s_rec_site("gone", "", 0, "g"), T0 - 3 * SEC),
        s_rec_allow(ALLOW_NET, "192.0.2.0/24", T0 - 2 * SEC, "h", "relay, v2"),
    };
    const size_t n = sizeof(recs) / sizeof(recs[0]);

    char dir2[64];
    snprintf(dir2, sizeof(dir2), "/tmp/test_control.XXXXXX");
    assert_non_null(mkdtemp(dir2));
    server_t *other = s_server_in(dir2, fx->clock);
    for (size_t i = 0; i < n; i++) {
        assert_true(server_shared_apply(fx->srv, &recs[i]) >= 0);
        assert_true(server_shared_apply(other, &recs[n - 1 - i]) >= 0);
    }
    uint64_t d = server_shared_digest(fx->srv);
    assert_true(d != 0);
    assert_true(server_shared_digest(other) == d);
    assert_int_equal(allowlist_count(server_allowlist(fx->srv)), 2);
    assert_int_equal(allowlist_count(server_allowlist(other)), 2);
    /* what is left: the newer net, the key, the domain's and gone's tombstones, acme */
    const shared_rec_t left[] = {recs[7], recs[1], recs[3], recs[4], recs[6]};
    assert_true(d == s_digest_of(left, sizeof(left) / sizeof(left[0])));

    server_destroy(&other);
    char *cmd = xasprintf("rm -rf '%s'", dir2);
    assert_int_equal(system(cmd), 0);
    xfree(cmd);
}

static void test_shared_digest_changes_with_every_allow_and_site_change(void **state)
{
    s_fx_t *fx = *state;
    char err[256] = "";
    uint64_t d[6];
    size_t n = 0;
    d[n++] = server_shared_digest(fx->srv);
    assert_true(d[0] == 0);
    shared_rec_t r = s_rec_allow(ALLOW_IP, "192.0.2.1", 0, "", "");
    uint32_t id = s_allow_local(fx, &r, "tester");
    d[n++] = server_shared_digest(fx->srv);
    assert_true(server_shared_digest(fx->srv) == d[n - 1]); /* unchanged: the same */
    bs_clock_fake_advance(fx->clock, SEC);
    assert_int_equal(server_allow_del(fx->srv, id, "tester", err, sizeof(err)), 0);
    d[n++] = server_shared_digest(fx->srv);
    bs_clock_fake_advance(fx->clock, SEC);
    assert_int_equal(server_site_add(fx->srv, "acme", NULL, "tester", err, sizeof(err)), 0);
    d[n++] = server_shared_digest(fx->srv);
    bs_clock_fake_advance(fx->clock, SEC);
    assert_int_equal(server_site_del(fx->srv, "acme", "tester", err, sizeof(err)), 0);
    d[n++] = server_shared_digest(fx->srv);
    shared_rec_t peer = s_rec_allow(ALLOW_IP, "192.0.2.2", T0, "peer-op", "");
    assert_int_equal(server_shared_apply(fx->srv, &peer), 1);
    d[n++] = server_shared_digest(fx->srv);
    for (size_t i = 0; i < n; i++)
        for (size_t j = i + 1; j < n; j++)
            if (d[i] == d[j])
                fail_msg("digest after change %zu equals the one after change %zu", j, i);
}

static void test_restart_keeps_the_tombstone_of_an_allow_del(void **state)
{
    s_fx_t *fx = *state;
    shared_rec_t r = s_rec_allow(ALLOW_NET, "203.0.113.0/24", 0, "", "");
    uint32_t id = s_allow_local(fx, &r, "tester");
    bs_clock_fake_advance(fx->clock, SEC);
    char err[256] = "";
    assert_int_equal(server_allow_del(fx->srv, id, "tester", err, sizeof(err)), 0);
    uint64_t d = server_shared_digest(fx->srv);
    s_restart(fx);
    assert_true(server_shared_digest(fx->srv) == d);
    shared_rec_t copy = s_rec_allow(ALLOW_NET, "203.0.113.0/24", T0 + SEC / 2, "peer-op", "");
    assert_int_equal(server_shared_apply(fx->srv, &copy), 0);
    assert_int_equal(allowlist_count(server_allowlist(fx->srv)), 0);
}

static void test_restart_keeps_the_tombstone_of_a_site_del(void **state)
{
    s_fx_t *fx = *state;
    char err[256] = "";
    assert_int_equal(server_site_add(fx->srv, "acme", NULL, "tester", err, sizeof(err)), 0);
    bs_clock_fake_advance(fx->clock, SEC);
    assert_int_equal(server_site_del(fx->srv, "acme", "tester", err, sizeof(err)), 0);
    s_restart(fx);
    assert_null(server_site_find(fx->srv, "acme"));
    shared_rec_t copy = s_rec_site("acme", "", T0 + SEC / 2, "peer-op");
    assert_int_equal(server_shared_apply(fx->srv, &copy), 0);
    assert_null(server_site_find(fx->srv, "acme"));
}

/* Tombstone records a damaged or edited store holds: not a SharedEntry, a live entry, one
 * under another entry's identity, a key of the wrong length. Skipped, the server starts,
 * and the sound one beside them comes back alone. */
static void test_restart_skips_damaged_tombstone_records(void **state)
{
    s_fx_t *fx = *state;
    server_destroy(&fx->srv);
    shared_rec_t sound = s_tomb(s_rec_allow(ALLOW_IP, "192.0.2.1", 0, "op", ""), T0 - SEC);
    s_store_tomb(fx, &sound);
    char *db = xasprintf("%s/db", fx->dir);
    kv_t *kv = kv_open(db, 0, NULL);
    assert_non_null(kv);
    uint8_t key[11] = {'t', '/'};
    /* not a SharedEntry */
    kv_u64_put(key + 2, 1);
    assert_int_equal(kv_put(kv, key, 10, "\xff\xff\xff", 3), 0);
    /* a live entry, under its own identity */
    shared_rec_t live = s_rec_allow(ALLOW_IP, "192.0.2.2", T0 - SEC, "op", "");
    size_t len = 0;
    uint8_t *blob = shared_rec_pack(&live, &len);
    kv_u64_put(key + 2, shared_identity(&live));
    assert_int_equal(kv_put(kv, key, 10, blob, len), 0);
    xfree(blob);
    /* a tombstone under another identity */
    shared_rec_t moved = s_tomb(s_rec_allow(ALLOW_IP, "192.0.2.3", 0, "op", ""), T0 - SEC);
    blob = shared_rec_pack(&moved, &len);
    kv_u64_put(key + 2, shared_identity(&moved) ^ 1);
    assert_int_equal(kv_put(kv, key, 10, blob, len), 0);
    /* a sound tombstone under a key one byte too long, and one too short */
    kv_u64_put(key + 2, shared_identity(&moved));
    key[10] = 0;
    assert_int_equal(kv_put(kv, key, 11, blob, len), 0);
    assert_int_equal(kv_put(kv, key, 9, blob, len), 0);
    xfree(blob);
    kv_close(&kv);
    xfree(db);

    fx->srv = s_server_in(fx->dir, fx->clock);
    assert_true(server_shared_digest(fx->srv) == s_digest_of(&sound, 1));
    assert_int_equal(allowlist_count(server_allowlist(fx->srv)), 0);
}

/* The daemon died between the two writes of an allow del: the tombstone is stored, the
 * entry too. The entry goes, from the store as well; the tombstone stays. */
static void test_restart_drops_an_entry_a_newer_tombstone_removed(void **state)
{
    s_fx_t *fx = *state;
    shared_rec_t r = s_rec_allow(ALLOW_NET, "203.0.113.0/24", 0, "", "");
    s_allow_local(fx, &r, "tester"); /* created T0 */
    server_destroy(&fx->srv);
    shared_rec_t tomb = s_tomb(s_rec_allow(ALLOW_NET, "203.0.113.0/24", 0, "tester", ""), T0 + SEC);
    s_store_tomb(fx, &tomb);
    fx->srv = s_server_in(fx->dir, fx->clock);
    assert_int_equal(allowlist_count(server_allowlist(fx->srv)), 0);
    assert_true(server_shared_digest(fx->srv) == s_digest_of(&tomb, 1));
    shared_rec_t copy = s_rec_allow(ALLOW_NET, "203.0.113.0/24", T0, "tester", "");
    assert_int_equal(server_shared_apply(fx->srv, &copy), 0);
    s_assert_stored(fx, 1, 0);
}

/* The daemon died between the two writes of an allow add over a tombstone: the entry is
 * newer and stays; the tombstone goes, from the store as well. */
static void test_restart_drops_a_tombstone_older_than_its_entry(void **state)
{
    s_fx_t *fx = *state;
    shared_rec_t r = s_rec_allow(ALLOW_NET, "203.0.113.0/24", 0, "", "");
    s_allow_local(fx, &r, "tester"); /* created T0 */
    server_destroy(&fx->srv);
    shared_rec_t tomb = s_tomb(s_rec_allow(ALLOW_NET, "203.0.113.0/24", 0, "tester", ""), T0 - SEC);
    s_store_tomb(fx, &tomb);
    fx->srv = s_server_in(fx->dir, fx->clock);
    assert_int_equal(allowlist_count(server_allowlist(fx->srv)), 1);
    const allow_entry_t *e = s_live(fx, &r);
    assert_non_null(e);
    assert_int_equal(e->created_ms, T0);
    shared_rec_t live;
    shared_rec_allow(&live, e);
    assert_true(server_shared_digest(fx->srv) == s_digest_of(&live, 1));
    s_assert_stored(fx, 0, 1);
}

/* The same for a site whose tombstone is newer than it. */
static void test_restart_drops_a_site_a_newer_tombstone_removed(void **state)
{
    s_fx_t *fx = *state;
    char err[256] = "";
    assert_int_equal(server_site_add(fx->srv, "acme", NULL, "tester", err, sizeof(err)), 0);
    server_destroy(&fx->srv);
    shared_rec_t tomb = s_tomb(s_rec_site("acme", "", 0, "tester"), T0 + SEC);
    s_store_tomb(fx, &tomb);
    fx->srv = s_server_in(fx->dir, fx->clock);
    assert_null(server_site_find(fx->srv, "acme"));
    assert_true(server_shared_digest(fx->srv) == s_digest_of(&tomb, 1));
    s_restart(fx);
    assert_null(server_site_find(fx->srv, "acme"));
}

/* A tombstone older than SHARED_TOMB_KEEP_MS is forgotten at start, from the store too. */
static void test_restart_forgets_a_tombstone_past_keeping(void **state)
{
    s_fx_t *fx = *state;
    shared_rec_t r = s_rec_allow(ALLOW_IP, "192.0.2.5", 0, "", "");
    uint32_t id = s_allow_local(fx, &r, "tester");
    char err[256] = "";
    assert_int_equal(server_allow_del(fx->srv, id, "tester", err, sizeof(err)), 0);
    bs_clock_fake_advance(fx->clock, SHARED_TOMB_KEEP_MS + 2 * SEC);
    s_restart(fx);
    assert_true(server_shared_digest(fx->srv) == 0);
    s_assert_stored(fx, 0, -1);
}

/* The peer's tombstone older than SHARED_TOMB_KEEP_MS is forgotten here already. */
static void test_shared_apply_of_a_tombstone_past_keeping_changes_nothing(void **state)
{
    s_fx_t *fx = *state;
    shared_rec_t tomb =
        s_tomb(s_rec_allow(ALLOW_IP, "192.0.2.5", 0, "op", ""), T0 - SHARED_TOMB_KEEP_MS - SEC);
    assert_int_equal(server_shared_apply(fx->srv, &tomb), 0);
    assert_true(server_shared_digest(fx->srv) == 0);
}

/* ---- JSON forms ---- */

static void test_json_decision_forms(void **state)
{
    (void)state;
    decision_t d;
    memset(&d, 0, sizeof(d));
    snprintf(d.id, sizeof(d.id), "ABCD2345");
    d.scope = BS_SCOPE_SUBJECT;
    d.fp = 0x0123456789abcdefULL;
    snprintf(d.value, sizeof(d.value), "wave");
    d.action = BS_ACTION_REJECT;
    d.reach = BS_REACH_LOCAL;
    snprintf(d.site, sizeof(d.site), "acme");
    d.expires_ms = T0 + 61 * SEC;
    d.origin = BS_ORIGIN_RULE;
    d.has_evidence = true;
    d.evidence.events = 10;
    d.evidence.nshares = 1;
    snprintf(d.evidence.shares[0].site, sizeof(d.evidence.shares[0].site), "acme");
    d.evidence.shares[0].events = 10;

    json_t *j = control_json_decision(&d, T0, false);
    assert_string_equal(json_string_value(json_object_get(j, "fp")), "0123456789abcdef");
    assert_string_equal(json_string_value(json_object_get(j, "site")), "acme");
    assert_int_equal(json_integer_value(json_object_get(j, "expires_in_s")), 61);
    assert_null(json_object_get(j, "evidence"));
    json_decref(j);
    j = control_json_decision(&d, T0 + 100 * SEC, true);
    assert_int_equal(json_integer_value(json_object_get(j, "expires_in_s")), 0);
    json_t *share = json_array_get(json_object_get(json_object_get(j, "evidence"), "shares"), 0);
    assert_true(json_real_value(json_object_get(share, "share")) == 1.0);
    json_decref(j);
    d.reach = BS_REACH_FLEET;
    j = control_json_decision(&d, T0, false);
    assert_null(json_object_get(j, "site"));
    json_decref(j);
}

/* Which commands wait for the disk before replying: every add and delete, and any
 * command this build does not know; never a read. */
static void test_control_changes_only_for_writes(void **state)
{
    static const struct {
        Backstop__ControlRequest__Command cmd;
        bool changes;
    } cases[] = {
        {BACKSTOP__CONTROL_REQUEST__COMMAND__STATUS, false},
        {BACKSTOP__CONTROL_REQUEST__COMMAND__DECISION_LIST, false},
        {BACKSTOP__CONTROL_REQUEST__COMMAND__DECISION_SHOW, false},
        {BACKSTOP__CONTROL_REQUEST__COMMAND__WHY, false},
        {BACKSTOP__CONTROL_REQUEST__COMMAND__TOP, false},
        {BACKSTOP__CONTROL_REQUEST__COMMAND__ALLOW_LIST, false},
        {BACKSTOP__CONTROL_REQUEST__COMMAND__SITES, false},
        {BACKSTOP__CONTROL_REQUEST__COMMAND__DECISION_ADD, true},
        {BACKSTOP__CONTROL_REQUEST__COMMAND__DECISION_DEL, true},
        {BACKSTOP__CONTROL_REQUEST__COMMAND__ALLOW_ADD, true},
        {BACKSTOP__CONTROL_REQUEST__COMMAND__ALLOW_DEL, true},
        {BACKSTOP__CONTROL_REQUEST__COMMAND__SITE_ADD, true},
        {BACKSTOP__CONTROL_REQUEST__COMMAND__SITE_DEL, true},
        {(Backstop__ControlRequest__Command)999, true},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        Backstop__ControlRequest req = BACKSTOP__CONTROL_REQUEST__INIT;
        req.command = cases[i].cmd;
        if (control_changes(&req) != cases[i].changes)
            fail_msg("command %d: changes %d, want %d", (int)cases[i].cmd, !cases[i].changes,
                     cases[i].changes);
    }
}

int main(void)
{
    msg_open("test_control", MSG_TO_STDERR);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_control_changes_only_for_writes),
        cmocka_unit_test_setup_teardown(test_status_fresh, s_setup, s_teardown),
        cmocka_unit_test_setup_teardown(test_status_counts_events_keys_decisions, s_setup,
                                        s_teardown),
        cmocka_unit_test_setup_teardown(test_dedup_tracks_every_sensor_the_server_admits, s_setup,
                                        s_teardown),
        cmocka_unit_test_setup_teardown(test_add_normalises_and_fingerprints, s_setup, s_teardown),
        cmocka_unit_test_setup_teardown(test_add_is_stored_and_published, s_setup, s_teardown),
        cmocka_unit_test_setup_teardown(test_add_local_ip_with_options, s_setup, s_teardown),
        cmocka_unit_test_setup_teardown(test_unknown_sites_need_force, s_setup, s_teardown),
        cmocka_unit_test_setup_teardown(test_add_again_extends, s_setup, s_teardown),
        cmocka_unit_test_setup_teardown(test_add_says_what_the_decision_in_force_kept, s_setup,
                                        s_teardown),
        cmocka_unit_test_setup_teardown(test_del_says_which_rule_blocks_again, s_setup, s_teardown),
        cmocka_unit_test_setup_teardown(test_list_and_show, s_setup, s_teardown),
        cmocka_unit_test_setup_teardown(test_control_characters_are_refused, s_setup, s_teardown),
        cmocka_unit_test_setup_teardown(test_long_lists_fit_one_reply, s_setup, s_teardown),
        cmocka_unit_test_setup_teardown(test_allow_add_covering_many_lists_the_first, s_setup,
                                        s_teardown),
        cmocka_unit_test_setup_teardown(test_del_revokes, s_setup, s_teardown),
        cmocka_unit_test_setup_teardown(test_bad_requests, s_setup, s_teardown),
        cmocka_unit_test_setup_teardown(test_why_decision_shows_evidence, s_setup, s_teardown),
        cmocka_unit_test_setup_teardown(test_why_says_whether_a_firing_rules_decision_is_in_force,
                                        s_setup, s_teardown),
        cmocka_unit_test_setup_teardown(test_why_of_an_id_no_longer_in_force, s_setup, s_teardown),
        cmocka_unit_test_setup_teardown(test_why_of_ended_decisions_after_a_restart, s_setup,
                                        s_teardown),
        cmocka_unit_test_setup_teardown(test_why_subject_not_blocked_says_why, s_setup, s_teardown),
        cmocka_unit_test_setup_teardown(test_why_ip_looks_at_address_and_network, s_setup,
                                        s_teardown),
        cmocka_unit_test_setup_teardown(test_top_orders_by_progress, s_setup, s_teardown),
        cmocka_unit_test_setup_teardown(test_allow_add_revokes_covered, s_setup, s_teardown),
        cmocka_unit_test_setup_teardown(test_add_on_allowlisted_key_refused, s_setup, s_teardown),
        cmocka_unit_test_setup_teardown(test_allow_list_and_del_by_value, s_setup, s_teardown),
        cmocka_unit_test_setup_teardown(test_log_lines_quote_free_text, s_setup, s_teardown),
        cmocka_unit_test_setup_teardown(test_sites_add_list_del, s_setup, s_teardown),
        cmocka_unit_test_setup_teardown(test_restart_skips_damaged_site_records, s_setup,
                                        s_teardown),
        cmocka_unit_test_setup_teardown(test_restart_ignores_a_damaged_wkeys, s_setup, s_teardown),
        cmocka_unit_test_setup_teardown(test_restart_counts_refused_window_records, s_setup,
                                        s_teardown),
        cmocka_unit_test_setup_teardown(test_restart_deletes_records_of_keys_idle_while_down,
                                        s_setup, s_teardown),
        cmocka_unit_test_setup_teardown(test_shared_apply_adds_a_peer_entry_as_the_peer_made_it,
                                        s_setup, s_teardown),
        cmocka_unit_test_setup_teardown(test_shared_apply_of_an_entry_we_have_changes_nothing,
                                        s_setup, s_teardown),
        cmocka_unit_test_setup_teardown(test_shared_apply_revokes_the_decisions_the_entry_covers,
                                        s_setup, s_teardown),
        cmocka_unit_test_setup_teardown(test_shared_apply_of_an_older_peer_entry_keeps_ours,
                                        s_setup, s_teardown),
        cmocka_unit_test_setup_teardown(test_shared_apply_of_a_newer_peer_entry_replaces_ours,
                                        s_setup, s_teardown),
        cmocka_unit_test_setup_teardown(
            test_shared_apply_of_a_newer_tombstone_removes_ours_and_keeps_it, s_setup, s_teardown),
        cmocka_unit_test_setup_teardown(test_shared_apply_of_an_older_tombstone_keeps_ours, s_setup,
                                        s_teardown),
        cmocka_unit_test_setup_teardown(test_shared_apply_at_the_same_millisecond_a_removal_wins,
                                        s_setup, s_teardown),
        cmocka_unit_test_setup_teardown(
            test_allow_del_leaves_a_tombstone_an_older_peer_copy_loses_to, s_setup, s_teardown),
        cmocka_unit_test_setup_teardown(test_allow_del_then_a_newer_peer_copy_comes_back, s_setup,
                                        s_teardown),
        cmocka_unit_test_setup_teardown(test_allow_del_of_an_entry_from_the_future_is_later_than_it,
                                        s_setup, s_teardown),
        cmocka_unit_test_setup_teardown(test_allow_add_over_a_tombstone_of_now_is_later_than_it,
                                        s_setup, s_teardown),
        cmocka_unit_test_setup_teardown(
            test_allow_add_over_a_tombstone_from_the_future_is_later_than_it, s_setup, s_teardown),
        cmocka_unit_test_setup_teardown(
            test_site_add_over_a_tombstone_from_the_future_is_later_than_it, s_setup, s_teardown),
        cmocka_unit_test_setup_teardown(test_site_add_over_a_tombstone_of_now_is_later_than_it,
                                        s_setup, s_teardown),
        cmocka_unit_test_setup_teardown(test_add_over_a_tombstone_deletes_its_record, s_setup,
                                        s_teardown),
        cmocka_unit_test_setup_teardown(test_site_del_of_a_site_from_the_future_is_later_than_it,
                                        s_setup, s_teardown),
        cmocka_unit_test_setup_teardown(test_shared_apply_registers_a_peer_site_with_its_key,
                                        s_setup, s_teardown),
        cmocka_unit_test_setup_teardown(test_shared_apply_of_a_newer_site_replaces_its_key, s_setup,
                                        s_teardown),
        cmocka_unit_test_setup_teardown(test_shared_apply_of_a_site_tombstone_removes_the_site,
                                        s_setup, s_teardown),
        cmocka_unit_test_setup_teardown(test_shared_apply_refuses_a_site_whose_key_another_site_has,
                                        s_setup, s_teardown),
        cmocka_unit_test_setup_teardown(test_shared_digest_is_the_same_whatever_the_order, s_setup,
                                        s_teardown),
        cmocka_unit_test_setup_teardown(test_shared_digest_changes_with_every_allow_and_site_change,
                                        s_setup, s_teardown),
        cmocka_unit_test_setup_teardown(test_restart_keeps_the_tombstone_of_an_allow_del, s_setup,
                                        s_teardown),
        cmocka_unit_test_setup_teardown(test_restart_keeps_the_tombstone_of_a_site_del, s_setup,
                                        s_teardown),
        cmocka_unit_test_setup_teardown(test_restart_skips_damaged_tombstone_records, s_setup,
                                        s_teardown),
        cmocka_unit_test_setup_teardown(test_restart_drops_an_entry_a_newer_tombstone_removed,
                                        s_setup, s_teardown),
        cmocka_unit_test_setup_teardown(test_restart_drops_a_tombstone_older_than_its_entry,
                                        s_setup, s_teardown),
        cmocka_unit_test_setup_teardown(test_restart_drops_a_site_a_newer_tombstone_removed,
                                        s_setup, s_teardown),
        cmocka_unit_test_setup_teardown(test_restart_forgets_a_tombstone_past_keeping, s_setup,
                                        s_teardown),
        cmocka_unit_test_setup_teardown(
            test_shared_apply_of_a_tombstone_past_keeping_changes_nothing, s_setup, s_teardown),
        cmocka_unit_test(test_json_decision_forms),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
