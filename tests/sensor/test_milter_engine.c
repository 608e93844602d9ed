/* test_milter_engine - the operator's decision file: each value is the key the sensor computes
 * from mail, so a decision typed as a person reads it ("Cheap Watches", "2001:DB8::1") blocks
 * a real message, and a value that can be no such key is refused with its FILE:LINE rather
 * than loaded as a block that never fires. Table-driven: a decision file, then a bounce put
 * through the classifier and the enforcer as the milter does at end of data. And the engine's
 * promise to milter threads: messages, reloads and housekeeping from many threads at once (a
 * test for ThreadSanitizer, which the TSan build runs it under). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "classify.h"
#include "enforce.h"
#include "fp.h"
#include "milter_engine.h"
#include "msg.h"
#include "sensor_config.h"
#include "subject.h"
#include "xalloc.h"

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

/* A Postfix DSN for a spam run through a reflector: the bounce's own Subject, then the bounced
 * original's. The client address is the connection's, not in the text. */
static const char s_bounce[] =
    "Return-Path: <>\r\n"
    "From: MAILER-DAEMON@mx.reflector.example (Mail Delivery System)\r\n"
    "Subject: %s\r\n"
    "To: alice@victim.example\r\n"
    "Auto-Submitted: auto-replied\r\n"
    "MIME-Version: 1.0\r\n"
    "Content-Type: multipart/report; report-type=delivery-status; boundary=\"B\"\r\n"
    "\r\n"
    "--B\r\n"
    "Content-Type: text/plain\r\n"
    "\r\n"
    "Your message could not be delivered.\r\n"
    "--B\r\n"
    "Content-Type: message/delivery-status\r\n"
    "\r\n"
    "Reporting-MTA: dns; mx.reflector.example\r\n"
    "\r\n"
    "Final-Recipient: rfc822; nobody@reflector.example\r\n"
    "Action: failed\r\n"
    "Status: 5.1.1\r\n"
    "--B\r\n"
    "Content-Type: message/rfc822\r\n"
    "\r\n"
    "From: \"Alice\" <alice@victim.example>\r\n"
    "To: nobody@reflector.example\r\n"
    "Subject: %s\r\n"
    "Message-ID: <spam.1@victim.example>\r\n"
    "\r\n"
    "Buy now.\r\n"
    "--B--\r\n";

/* A scratch directory holding one decision file. */
typedef struct {
    char dir[64]; /* mkdtemp */
    char *path;   /* DIR/decisions */
} s_dir_t;

static int s_setup(void **state)
{
    s_dir_t *d = xcalloc(1, sizeof(*d));
    snprintf(d->dir, sizeof(d->dir), "/tmp/test_milter_engine.XXXXXX");
    assert_non_null(mkdtemp(d->dir));
    d->path = xasprintf("%s/decisions", d->dir);
    *state = d;
    return 0;
}

static int s_teardown(void **state)
{
    s_dir_t *d = *state;
    unlink(d->path);
    rmdir(d->dir);
    xfree(d->path);
    xfree(d);
    return 0;
}

/* Writes "# comment\nLINE\n" (the decision on line 2) and loads it into a new memory cache;
 * the cache, or NULL with err. */
static dcache_t *s_load(s_dir_t *d, const char *line, char *err, size_t errlen)
{
    FILE *fp = fopen(d->path, "w");
    assert_non_null(fp);
    fprintf(fp, "# scope action ttl value\n%s\n", line);
    fclose(fp);
    dcache_t *cache = dcache_new(NULL, err, errlen);
    assert_non_null(cache);
    if (milter_engine_load_decisions(cache, d->path, 1000, err, errlen) != 0)
        dcache_destroy(&cache);
    return cache;
}

typedef struct {
    const char *line;      /* the decision as an operator types it */
    const char *subject;   /* the bounce's Subject */
    const char *original;  /* the bounced original's Subject */
    const char *client_ip; /* the connecting client, as the MTA gives it */
    int scope;             /* the decision that must fire */
    const char *value;     /* its stored (displayed) key text */
} s_match_t;

static const s_match_t s_matches[] = {
    {"orig_subject reject 0 Cheap Watches", "Undelivered Mail Returned to Sender", "Cheap Watches",
     "192.0.2.25", DCACHE_SCOPE_ORIG_SUBJECT, "cheap watches"},
    {"orig_subject reject 1h   Re: CHEAP  watches 42  ", "Undelivered Mail Returned to Sender",
     "cheap watches 7", "192.0.2.25", DCACHE_SCOPE_ORIG_SUBJECT, "cheap watches #"},
    {"orig_subject reject 0 =?UTF-8?Q?Cheap_Watches?=", "Undelivered Mail Returned to Sender",
     "Cheap Watches", "192.0.2.25", DCACHE_SCOPE_ORIG_SUBJECT, "cheap watches"},
    {"subject tempfail 0 Undeliverable: Cheap Watches", "Undeliverable: Cheap Watches",
     "Something else", "192.0.2.25", DCACHE_SCOPE_SUBJECT, "cheap watches"},
    {"client_ip reject 0 2001:DB8::1", "Undelivered Mail Returned to Sender", "Hello",
     "IPv6:2001:db8::1", DCACHE_SCOPE_CLIENT_IP, "2001:db8::1"},
    {"client_ip reject 0 ::ffff:192.0.2.25", "Undelivered Mail Returned to Sender", "Hello",
     "192.0.2.25", DCACHE_SCOPE_CLIENT_IP, "192.0.2.25"},
    {"client_net reject 0 2001:DB8:0:0::/64", "Undelivered Mail Returned to Sender", "Hello",
     "2001:db8::1", DCACHE_SCOPE_CLIENT_NET, "2001:db8::/64"},
    {"client_net reject 0 ::ffff:192.0.2.0/120", "Undelivered Mail Returned to Sender", "Hello",
     "192.0.2.25", DCACHE_SCOPE_CLIENT_NET, "192.0.2.0/24"},
    {"subject_ip reject 0 Undeliverable: Cheap Watches | 2001:DB8::1",
     "Undeliverable: Cheap Watches", "Hello", "2001:db8::1", DCACHE_SCOPE_SUBJECT_IP,
     "cheap watches|2001:db8::1"},
    {"subject_ip reject 0 Undeliverable: Cheap|Watches|192.0.2.25", "Undeliverable: Cheap|Watches",
     "Hello", "192.0.2.25", DCACHE_SCOPE_SUBJECT_IP, "cheap|watches|192.0.2.25"},
};

/* Each decision, typed as an operator would, acts on the message it names. */
static void test_typed_values_match_real_mail(void **state)
{
    s_dir_t *d = *state;
    for (size_t i = 0; i < sizeof(s_matches) / sizeof(s_matches[0]); i++) {
        const s_match_t *t = &s_matches[i];
        printf("case: %s\n", t->line);
        char err[1024] = "";
        dcache_t *cache = s_load(d, t->line, err, sizeof(err));
        if (!cache)
            printf("refused: %s\n", err);
        assert_non_null(cache);

        char *msg = xasprintf(s_bounce, t->subject, t->original);
        classify_input_t ci = {
            .msg = msg, .len = strlen(msg), .client_ip = t->client_ip, .env_from = ""};
        classify_result_t *cr = classify_message(&ci);
        assert_string_equal(classify_class_name(classify_result_class(cr)), "bounce");
        enforce_input_t in;
        memset(&in, 0, sizeof(in));
        char *subject_ip = NULL;
        enforce_keys_from(cr, &in, &subject_ip);
        in.class_enforced = true;
        enforce_verdict_t v;
        enforce_decide(cache, &in, 2000, &v);

        assert_int_not_equal(v.action, 0);
        assert_int_equal(v.decision.scope, t->scope);
        assert_string_equal(v.decision.value, t->value);
        assert_true(v.decision.fp == fp_text(t->value));
        xfree(subject_ip);
        classify_result_destroy(&cr);
        xfree(msg);
        dcache_destroy(&cache);
    }
}

/* The reviewer's case, stated as the classifier's own normalisation: the decision's fingerprint
 * is fp_text(subject_key(...)) of what the operator typed, and the display text is that key. */
static void test_subject_fingerprint_is_the_classifiers(void **state)
{
    s_dir_t *d = *state;
    char err[1024] = "";
    dcache_t *cache = s_load(d, "orig_subject reject 0 Cheap Watches", err, sizeof(err));
    assert_non_null(cache);
    char *key = subject_key("Cheap Watches");
    dcache_entry_t e;
    assert_int_equal(dcache_lookup(cache, DCACHE_SCOPE_ORIG_SUBJECT, fp_text(key), 2000, &e, 1), 1);
    assert_string_equal(e.value, key);
    assert_int_equal(
        dcache_lookup(cache, DCACHE_SCOPE_ORIG_SUBJECT, fp_text("Cheap Watches"), 2000, &e, 1), 0);
    xfree(key);
    dcache_destroy(&cache);
}

/* Two spellings of one key are one decision (same id), as the same block at the CLI is. */
static void test_spellings_of_one_key_share_an_id(void **state)
{
    s_dir_t *d = *state;
    char err[1024] = "";
    dcache_entry_t a, b;
    dcache_t *cache = s_load(d, "client_ip reject 0 2001:DB8::1", err, sizeof(err));
    assert_non_null(cache);
    assert_int_equal(
        dcache_lookup(cache, DCACHE_SCOPE_CLIENT_IP, fp_text("2001:db8::1"), 2000, &a, 1), 1);
    dcache_destroy(&cache);
    cache = s_load(d, "client_ip reject 0 [IPv6:2001:db8:0::1]", err, sizeof(err));
    assert_non_null(cache);
    assert_int_equal(
        dcache_lookup(cache, DCACHE_SCOPE_CLIENT_IP, fp_text("2001:db8::1"), 2000, &b, 1), 1);
    assert_string_equal(a.id, b.id);
    dcache_destroy(&cache);
}

typedef struct {
    const char *line; /* a decision that can match no mail */
    const char *why;  /* what the error says after "FILE:2: " */
} s_refusal_t;

static const s_refusal_t s_refusals[] = {
    {"orig_subject reject 0 12345", "normalises to nothing"},
    {"subject reject 0 Undelivered Mail Returned to Sender", "normalises to nothing"},
    {"client_ip reject 0 mx.example.com", "invalid IP address \"mx.example.com\""},
    {"client_ip reject 0 192.0.2.0/24", "invalid IP address"},
    {"client_net reject 0 192.0.0.0/16", "would match no mail"},
    {"client_net reject 0 192.0.2.25", "would match no mail"},
    {"client_net reject 0 2001:db8::/48", "would match no mail"},
    {"client_net reject 0 192.0.2.1/24", "invalid network"},
    {"subject_ip reject 0 Cheap Watches", "is not SUBJECT|IP"},
    {"subject_ip reject 0 Cheap Watches|not-an-ip", "invalid IP address \"not-an-ip\""},
    {"subject_ip reject 0 12345|192.0.2.25", "normalises to nothing"},
};

/* A value that is no key the sensor makes is refused, naming the file and line. */
static void test_values_that_match_no_mail_are_refused(void **state)
{
    s_dir_t *d = *state;
    char *where = xasprintf("%s:2: ", d->path);
    for (size_t i = 0; i < sizeof(s_refusals) / sizeof(s_refusals[0]); i++) {
        const s_refusal_t *t = &s_refusals[i];
        printf("case: %s\n", t->line);
        char err[1024] = "";
        dcache_t *cache = s_load(d, t->line, err, sizeof(err));
        assert_null(cache);
        printf("err: %s\n", err);
        assert_true(!strncmp(err, where, strlen(where)));
        assert_non_null(strstr(err, t->why));
    }
    xfree(where);
}

/* A storm's decisions expiring together are dropped DCACHE_EXPIRE_DROPS a tick; the log
 * says so once when the first go and once when the last have gone, with the count, not a
 * line a tick (1954 lines for a million). */
/* A store that cannot be opened for another reason than a full disk refuses the start, and
 * the refusal says why, not only which store: here the ledger's path is a file. */
static void test_unopenable_ledger_refusal_says_why(void **state)
{
    s_dir_t *d = *state;
    char *conf = xasprintf("%s/sensor.conf", d->dir);
    FILE *fp = fopen(conf, "w");
    assert_non_null(fp);
    fprintf(fp, "site = site1\nstate_directory = %s\nlocal_rule = no\n", d->dir);
    fclose(fp);
    char *ledger = xasprintf("%s/ledger", d->dir);
    fp = fopen(ledger, "w"); /* a file where the ledger's directory would be */
    assert_non_null(fp);
    fclose(fp);
    char err[512];
    sensor_config_t *cfg = sensor_config_load(conf, err, sizeof(err));
    assert_non_null(cfg);
    bs_clock_t *clock = bs_clock_fake_new(1700000000000);
    err[0] = 0;
    assert_null(milter_engine_new(cfg, clock, err, sizeof(err)));
    assert_non_null(strstr(err, "cannot open ledger"));
    assert_non_null(strstr(err, strerror(ENOTDIR)));
    bs_clock_destroy(&clock);
    sensor_config_destroy(&cfg);
    xfree(ledger);
    xfree(conf);
}

static void test_expiring_storm_is_logged_once_a_minute(void **state)
{
    s_dir_t *d = *state;
    char *conf = xasprintf("%s/sensor.conf", d->dir);
    FILE *fp = fopen(conf, "w");
    assert_non_null(fp);
    fprintf(fp, "site = site1\nstate_directory = %s\nlocal_rule = no\n", d->dir);
    fclose(fp);
    char err[512];
    sensor_config_t *cfg = sensor_config_load(conf, err, sizeof(err));
    assert_non_null(cfg);
    bs_clock_t *clock = bs_clock_fake_new(1700000000000);
    milter_engine_t *e = milter_engine_new(cfg, clock, err, sizeof(err));
    assert_non_null(e);
    const size_t n = 3 * DCACHE_EXPIRE_DROPS + 100;
    for (size_t i = 0; i < n; i++) {
        dcache_entry_t de = {.scope = DCACHE_SCOPE_SUBJECT,
                             .fp = 1000 + i,
                             .action = DCACHE_ACTION_REJECT,
                             .created_ms = 1700000000000,
                             .expires_ms = 1700000060000};
        snprintf(de.id, sizeof(de.id), "D%zu", i);
        snprintf(de.value, sizeof(de.value), "storm %zu", i);
        assert_int_equal(dcache_upsert(milter_engine_dcache(e), &de), 0);
    }
    char *log = xasprintf("%s/log", d->dir);
    int fd = open(log, O_RDWR | O_CREAT | O_TRUNC, 0600);
    assert_true(fd >= 0);
    msg_set_fd(fd);
    bs_clock_fake_advance(clock, 61000);
    int ticks = 0;
    while (dcache_count(milter_engine_dcache(e)) > 0 && ticks < 100) {
        milter_engine_tick(e);
        ticks++;
    }
    msg_set_fd(-1);
    assert_int_equal(ticks, 4); /* it still drains DCACHE_EXPIRE_DROPS a tick */
    char buf[4096] = "";
    ssize_t got = pread(fd, buf, sizeof(buf) - 1, 0);
    assert_true(got > 0);
    close(fd);
    size_t lines = 0, sum = 0;
    for (const char *p = buf; (p = strstr(p, "dcache: expired=")) != NULL; p++) {
        sum += strtoul(p + strlen("dcache: expired="), NULL, 10);
        lines++;
    }
    assert_int_equal(lines, 2);
    assert_int_equal(sum, n);
    assert_non_null(strstr(buf, "held=0"));
    milter_engine_destroy(&e);
    bs_clock_destroy(&clock);
    sensor_config_destroy(&cfg);
    char *cmd = xasprintf("rm -rf %s/*", d->dir);
    assert_int_equal(system(cmd), 0);
    xfree(cmd);
    xfree(log);
    xfree(conf);
}

/* ---- many threads at once ---- */

enum { S_MAIL_THREADS = 4, S_MESSAGES = 90, S_RELOADS = 20 };

typedef struct {
    s_dir_t *d;              /* the scratch directory */
    milter_engine_t *engine; /* shared by every thread */
    atomic_bool done;        /* the mail and reload threads are finished */
    size_t events;           /* events the housekeeping thread popped */
} s_shared_t;

typedef struct {
    s_shared_t *sh; /* what the threads share */
    int id;         /* this mail thread */
} s_mailer_t;

/* Writes DIR/sensor.conf and DIR/decisions for generation n: the local rule's threshold, the
 * content rules, the operator's decision and max_connections all change from one to the next.
 */
static char *s_threads_conf(s_dir_t *d, int n)
{
    FILE *fp = fopen(d->path, "w");
    assert_non_null(fp);
    fprintf(fp, "orig_subject reject 1h Cheap watches %d\n", n % 4);
    fclose(fp);
    char *conf = xasprintf("%s/sensor.conf", d->dir);
    fp = fopen(conf, "w");
    assert_non_null(fp);
    /* content rules every other time (header_checks counts every message), none between
     * (then every bounce counts) */
    fprintf(fp,
            "site = site1\nstate_directory = %s/state\ninternal_networks = 10.0.0.0/8\n"
            "decision_file = %s\nlocal_rule_threshold = %d\nmax_connections = %d\n%s\n",
            d->dir, d->path, 2 + n % 3, 10 + n,
            n % 2 ? "" : "local_rule_file = " FIXTURES_DIR "/rules/header_checks");
    fclose(fp);
    return conf;
}

/* Hands text to msg as the MTA does: header by header (one line each here), then the body. */
static void s_feed(milter_msg_t *msg, const char *text)
{
    const char *end = strstr(text, "\r\n\r\n");
    assert_non_null(end);
    for (const char *p = text; p < end;) {
        const char *eol = strstr(p, "\r\n");
        const char *colon = memchr(p, ':', (size_t)(eol - p));
        assert_non_null(colon);
        char *name = xstrndup(p, (size_t)(colon - p));
        char *value = xstrndup(colon + 2, (size_t)(eol - colon - 2));
        milter_msg_add_header(msg, name, value);
        xfree(name);
        xfree(value);
        p = eol + 2;
    }
    milter_msg_end_header(msg);
    milter_msg_add_body(msg, (const unsigned char *)end + 4, strlen(end + 4));
}

/* A milter thread: outbound mail (into the ledger) and bounces (classified, enforced, counted
 * by the local rule, queued as events), each under the snapshot it began with. */
static void *s_mailer(void *arg)
{
    s_mailer_t *m = arg;
    milter_engine_t *engine = m->sh->engine;
    for (int i = 0; i < S_MESSAGES; i++) {
        bool outbound = i % 3 == 0;
        milter_snap_t *snap = milter_engine_snap(engine);
        milter_conn_t *conn = milter_conn_new();
        milter_conn_set_client(conn, outbound ? "10.0.0.1" : "192.0.2.25", "client.example");
        milter_msg_t *msg = milter_conn_begin(conn, 65536);
        milter_msg_set_from(msg, outbound ? "<billing@site1.example>" : "<>");
        milter_msg_add_rcpt(msg, "<alice@victim.example>");
        char qid[32], mid[64], subject[64];
        snprintf(qid, sizeof(qid), "T%dQ%d", m->id, i);
        milter_msg_set_queue_id(msg, qid);
        snprintf(mid, sizeof(mid), "<out.%d.%d@site1.example>", m->id, i);
        milter_msg_add_header(msg, "Message-ID", mid);
        snprintf(subject, sizeof(subject), "Cheap watches %d", i % 4);
        char *text = xasprintf(s_bounce, "Undelivered Mail Returned to Sender", subject);
        s_feed(msg, text);
        xfree(text);
        milter_verdict_t v;
        milter_engine_eom(engine, snap, conn, &v);
        milter_conn_destroy(&conn);
        milter_snap_release(&snap);
    }
    return NULL;
}

/* SIGHUP, again and again. */
static void *s_reloader(void *arg)
{
    s_shared_t *sh = arg;
    for (int n = 1; n <= S_RELOADS; n++) {
        char err[1024];
        char *conf = s_threads_conf(sh->d, n);
        sensor_config_t *cfg = sensor_config_load(conf, err, sizeof(err));
        xfree(conf);
        if (cfg == NULL)
            fail_msg("reload %d: %s", n, err);
        if (milter_engine_reload(sh->engine, &cfg, err, sizeof(err)) != 0)
            fail_msg("reload %d: %s", n, err);
    }
    return NULL;
}

/* The uplink thread's part: housekeeping, the aggregator coming and going, events taken. */
static void *s_housekeeper(void *arg)
{
    s_shared_t *sh = arg;
    evq_t *q = milter_engine_evq(sh->engine);
    for (bool last = false; !last;) {
        last = atomic_load(&sh->done);
        milter_engine_tick(sh->engine);
        evq_event_t *evs[64];
        size_t n;
        while ((n = evq_pop(q, evs, 64)) > 0) {
            sh->events += n;
            for (size_t i = 0; i < n; i++)
                evq_event_destroy(&evs[i]);
        }
        milter_engine_set_aggregator_up(sh->engine, sh->events % 2 == 0);
    }
    return NULL;
}

/* Every call of the engine may come from any thread at once (milter_engine.h): messages on
 * four threads, reloads that swap the configuration, the content rules and the local rule under
 * them, and the uplink's housekeeping. Every bounce is reported once and every outbound
 * message is in the ledger; under ThreadSanitizer nothing races. */
static void test_messages_reloads_and_housekeeping_at_once(void **state)
{
    s_shared_t sh = {.d = *state};
    char err[1024];
    char *state_dir = xasprintf("%s/state", sh.d->dir);
    assert_int_equal(mkdir(state_dir, 0700), 0);
    char *conf = s_threads_conf(sh.d, 0);
    sensor_config_t *boot = sensor_config_load(conf, err, sizeof(err));
    if (boot == NULL)
        fail_msg("config: %s", err);
    sh.engine = milter_engine_new(boot, bs_clock_system(), err, sizeof(err));
    if (sh.engine == NULL)
        fail_msg("engine: %s", err);
    atomic_init(&sh.done, false);

    pthread_t mailers[S_MAIL_THREADS], reloader, keeper;
    s_mailer_t m[S_MAIL_THREADS];
    assert_int_equal(pthread_create(&keeper, NULL, s_housekeeper, &sh), 0);
    for (int i = 0; i < S_MAIL_THREADS; i++) {
        m[i] = (s_mailer_t){.sh = &sh, .id = i};
        assert_int_equal(pthread_create(&mailers[i], NULL, s_mailer, &m[i]), 0);
    }
    assert_int_equal(pthread_create(&reloader, NULL, s_reloader, &sh), 0);
    for (int i = 0; i < S_MAIL_THREADS; i++)
        assert_int_equal(pthread_join(mailers[i], NULL), 0);
    assert_int_equal(pthread_join(reloader, NULL), 0);
    atomic_store(&sh.done, true);
    assert_int_equal(pthread_join(keeper, NULL), 0);

    size_t bounces = S_MAIL_THREADS * (S_MESSAGES - (S_MESSAGES + 2) / 3);
    evq_t *q = milter_engine_evq(sh.engine);
    assert_int_equal(sh.events + evq_dropped(q), bounces);
    ledger_t *ledger = milter_engine_ledger(sh.engine);
    for (int t = 0; t < S_MAIL_THREADS; t++)
        for (int i = 0; i < S_MESSAGES; i += 3) {
            char mid[64];
            snprintf(mid, sizeof(mid), "<out.%d.%d@site1.example>", t, i);
            assert_true(ledger_has_message_id(ledger, mid, bs_clock_now_ms(bs_clock_system())));
        }
    milter_engine_destroy(&sh.engine);
    sensor_config_destroy(&boot);
    char *cmd = xasprintf("rm -rf '%s' '%s'", state_dir, conf);
    assert_int_equal(system(cmd), 0);
    xfree(cmd);
    xfree(conf);
    xfree(state_dir);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_typed_values_match_real_mail, s_setup, s_teardown),
        cmocka_unit_test_setup_teardown(test_subject_fingerprint_is_the_classifiers, s_setup,
                                        s_teardown),
        cmocka_unit_test_setup_teardown(test_spellings_of_one_key_share_an_id, s_setup, s_teardown),
        cmocka_unit_test_setup_teardown(test_unopenable_ledger_refusal_says_why, s_setup,
                                        s_teardown),
        cmocka_unit_test_setup_teardown(test_expiring_storm_is_logged_once_a_minute, s_setup,
                                        s_teardown),
        cmocka_unit_test_setup_teardown(test_values_that_match_no_mail_are_refused, s_setup,
                                        s_teardown),
        cmocka_unit_test_setup_teardown(test_messages_reloads_and_housekeeping_at_once, s_setup,
                                        s_teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
