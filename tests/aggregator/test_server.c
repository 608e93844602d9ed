/*
 * test_server - server_check_config(), the start's own checks that "-n" runs
 * too: a missing, malformed or public-only server_key_file, a non-loopback
 * endpoint in plain mode, an unknown control_group or user are refused with
 * the FILE:LINE of the key and the status the start exits with; what the
 * start accepts passes. And the loop's timers on a fake clock (server_turn()): a
 * sensor silent for SERVER_SENSOR_FORGET_MS is forgotten by the sweep, from status,
 * sites and the store (a restart does not bring it back); one silent for less is kept.
 * The data directory removed while it runs: noticed when two looks (SERVER_STORE_CHECK_MS
 * apart) agree and written anew (in one synced write), so a restart has every decision,
 * the epoch and seq, the allowlist, sites and sensors; while it cannot be (a file in its
 * place) status says the store is lost; moved away and back between two looks, it is left
 * alone.
 * Every snapshot reply (full, changes, refused) carries the configured heartbeat_interval.
 * And server_request_stop() from another thread than the loop's; the process's TERM and HUP
 * read by the loop from a signalfd, a TERM sent before the server existed included.
 */
#include <pthread.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <stdatomic.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sysexits.h>
#include <unistd.h>
#include <cmocka.h>
#include <jansson.h>
#include <zmq.h>

#include "agg_config.h"
#include "control.h"
#include "fp.h"
#include "server.h"
#include "sigfd.h"
#include "store.h"
#include "wire.h"
#include "xalloc.h"
#include "zsock.h"

/* LevelDB's syncs (a synced write is one fdatasync of its log), counted: this definition
 * takes the place of libc's for the whole process, LevelDB's library included. */
static atomic_long s_syncs;

int fdatasync(int fd)
{
    atomic_fetch_add(&s_syncs, 1);
    return (int)syscall(SYS_fdatasync, fd);
}

#define SEC 1000LL
#define DAY (86400 * SEC)
#define T0  (1700000000LL * SEC)

/* A temp dir per test, for the config and key files. */
typedef struct {
    char dir[64]; /* mkdtemp */
} s_fx_t;

static int s_setup(void **state)
{
    s_fx_t *fx = xcalloc(1, sizeof(*fx));
    snprintf(fx->dir, sizeof(fx->dir), "/tmp/test_server.XXXXXX");
    assert_non_null(mkdtemp(fx->dir));
    *state = fx;
    return 0;
}

static int s_teardown(void **state)
{
    s_fx_t *fx = *state;
    char *cmd = xasprintf("rm -rf '%s'", fx->dir);
    assert_int_equal(system(cmd), 0);
    xfree(cmd);
    xfree(fx);
    return 0;
}

/* Writes dir/name with text; returns its path (caller frees). */
static char *s_write(const s_fx_t *fx, const char *name, const char *text, mode_t mode)
{
    char *path = xasprintf("%s/%s", fx->dir, name);
    FILE *fp = fopen(path, "w");
    assert_non_null(fp);
    fputs(text, fp);
    fclose(fp);
    assert_int_equal(chmod(path, mode), 0);
    return path;
}

/* Loads a config of the base lines (1 and 2) and then extra, runs the check; its status,
 * errors in err, the config's path in *path_p (caller frees). */
static int s_check(const s_fx_t *fx, const char *extra, char *err, size_t errlen, char **path_p)
{
    char *text = xasprintf("control_endpoint = ipc://%s/ctl.sock\ndata_dir = %s/db\n%s", fx->dir,
                           fx->dir, extra);
    char *path = s_write(fx, "agg.conf", text, 0644);
    xfree(text);
    agg_config_t *cfg = agg_config_load(path, err, errlen);
    if (cfg == NULL)
        fail_msg("config refused before the check: %s", err);
    int rc = server_check_config(cfg, err, errlen);
    agg_config_destroy(&cfg);
    *path_p = path;
    return rc;
}

/* Asserts extra is refused with status want and "conf:line: what". */
static void s_refused(const s_fx_t *fx, const char *extra, int want, int line, const char *what)
{
    char err[4096], *path = NULL;
    int rc = s_check(fx, extra, err, sizeof(err), &path);
    if (rc != want)
        fail_msg("status %d, want %d: %s", rc, want, err);
    char *at = xasprintf("%s:%d: ", path, line);
    char *p = strstr(err, at);
    if (p == NULL || strstr(p, what) == NULL)
        fail_msg("want \"%s...%s\" in: %s", at, what, err);
    xfree(at);
    xfree(path);
}

/* server_request_stop/reload are safe from any thread. Here another thread asks for a reload
 * and a stop while the loop runs; the loop sees both and returns. Under ThreadSanitizer the
 * flags raced with the loop's reads when they were volatile sig_atomic_t (and set by a signal
 * handler on the store's writer or LevelDB's compaction thread, before the loop read the
 * signals itself). */
static void *s_requester(void *arg)
{
    server_t *srv = arg;
    server_request_reload(srv);
    server_request_stop(srv);
    return NULL;
}

static void test_stop_requested_from_another_thread(void **state)
{
    s_fx_t *fx = *state;
    char err[1024];
    char *text = xasprintf("event_endpoint = tcp://127.0.0.1:*\ndecision_endpoint = "
                           "tcp://127.0.0.1:*\nsnapshot_endpoint = tcp://127.0.0.1:*\n"
                           "control_endpoint = ipc://%s/ctl.sock\ndata_dir = %s/db\n",
                           fx->dir, fx->dir);
    char *path = s_write(fx, "agg.conf", text, 0644);
    agg_config_t *cfg = agg_config_load(path, err, sizeof(err));
    if (cfg == NULL)
        fail_msg("config: %s", err);
    server_t *srv = server_new(&cfg, NULL, NULL);
    assert_non_null(srv);
    pthread_t t;
    assert_int_equal(pthread_create(&t, NULL, s_requester, srv), 0);
    assert_int_equal(server_run(srv), 0);
    assert_int_equal(pthread_join(t, NULL), 0);
    server_destroy(&srv);
    xfree(path);
    xfree(text);
}

/* The loop reads the process's signals from a signalfd (server_watch_signals): a TERM sent
 * before the server existed (during server_new, a slow restore) stays pending and stops the
 * loop at its first turn; a HUP reloads the config file. main() blocked the three signals
 * before any thread, as backstop-aggregator's main does; alarm() ends a loop that never
 * stops. */
static void test_signals_are_read_by_the_loop(void **state)
{
    s_fx_t *fx = *state;
    char err[1024];
    char *text = xasprintf("event_endpoint = tcp://127.0.0.1:*\ndecision_endpoint = "
                           "tcp://127.0.0.1:*\nsnapshot_endpoint = tcp://127.0.0.1:*\n"
                           "control_endpoint = ipc://%s/ctl.sock\ndata_dir = %s/db\n",
                           fx->dir, fx->dir);
    char *path = s_write(fx, "agg.conf", text, 0644);
    agg_config_t *cfg = agg_config_load(path, err, sizeof(err));
    if (cfg == NULL)
        fail_msg("config: %s", err);
    static const int sigs[] = {SIGTERM, SIGINT, SIGHUP, 0};
    int fd = sigfd_open(sigs);
    assert_true(fd >= 0);
    assert_int_equal(kill(getpid(), SIGTERM), 0); /* before the server exists */
    server_t *srv = server_new(&cfg, path, NULL);
    server_watch_signals(srv, fd);
    /* a HUP: the next turn reloads, a new config in force */
    const agg_config_t *before = server_config(srv);
    assert_int_equal(kill(getpid(), SIGHUP), 0);
    assert_int_equal(server_turn(srv, 1000), 0);
    assert_ptr_not_equal(server_config(srv), before);
    /* the TERM was read at that turn too: the loop returns at once */
    alarm(10);
    assert_int_equal(server_run(srv), 0);
    alarm(0);
    assert_int_equal(sigfd_take(fd, NULL), 0);
    server_destroy(&srv);
    sigfd_close(&fd);
    xfree(path);
    xfree(text);
}

static void test_plain_loopback_config_passes(void **state)
{
    s_fx_t *fx = *state;
    char err[4096], *path = NULL;
    assert_int_equal(
        s_check(fx, "event_endpoint = tcp://127.0.0.1:1\nuser = root\n", err, sizeof(err), &path),
        EX_OK);
    assert_string_equal(err, "");
    xfree(path);
}

static void test_plain_mode_refuses_a_wildcard_endpoint(void **state)
{
    s_fx_t *fx = *state;
    s_refused(fx, "\nevent_endpoint = tcp://*:47570\n", EX_CONFIG, 4,
              "event_endpoint tcp://*:47570 is not loopback: plain mode (no server_key_file) "
              "may bind loopback only");
    s_refused(fx, "snapshot_endpoint = tcp://192.0.2.1:5572\n", EX_CONFIG, 3,
              "snapshot_endpoint tcp://192.0.2.1:5572 is not loopback");
}

static void test_missing_key_file_is_refused(void **state)
{
    s_fx_t *fx = *state;
    char *extra = xasprintf("server_key_file = %s/absent.key\n", fx->dir);
    s_refused(fx, extra, EX_CONFIG, 3, "absent.key: cannot load its key pair");
    xfree(extra);
}

static void test_key_file_that_is_no_file_is_refused(void **state)
{
    s_fx_t *fx = *state;
    char *extra = xasprintf("server_key_file = %s\n", fx->dir);
    s_refused(fx, extra, EX_CONFIG, 3, "cannot load its key pair");
    xfree(extra);
}

static void test_malformed_key_file_is_refused(void **state)
{
    s_fx_t *fx = *state;
    char *key = s_write(fx, "bad.key", "public = short\nsecret = short\n", 0600);
    char *extra = xasprintf("server_key_file = %s\n", key);
    s_refused(fx, extra, EX_CONFIG, 3, "bad.key: cannot load its key pair");
    xfree(extra);
    xfree(key);
}

static void test_public_only_key_file_is_refused(void **state)
{
    s_fx_t *fx = *state;
    if (!zsock_has_curve())
        skip();
    zsock_keys_t keys;
    assert_int_equal(zsock_keys_generate(&keys), 0);
    char *key = xasprintf("%s/pub.key", fx->dir);
    assert_int_equal(zsock_keys_save(key, &keys, 0), 0);
    char *extra = xasprintf("server_key_file = %s\n", key);
    s_refused(fx, extra, EX_CONFIG, 3, "has no secret key");
    xfree(extra);
    xfree(key);
}

static void test_curve_mode_may_bind_any_address(void **state)
{
    s_fx_t *fx = *state;
    if (!zsock_has_curve())
        skip();
    zsock_keys_t keys;
    assert_int_equal(zsock_keys_generate(&keys), 0);
    char *key = xasprintf("%s/server.key", fx->dir);
    assert_int_equal(zsock_keys_save(key, &keys, 1), 0);
    char *extra = xasprintf("server_key_file = %s\nevent_endpoint = tcp://*:47570\n", key);
    char err[4096], *path = NULL;
    assert_int_equal(s_check(fx, extra, err, sizeof(err), &path), EX_OK);
    xfree(path);
    xfree(extra);
    xfree(key);
}

static void test_unknown_control_group_is_refused(void **state)
{
    s_fx_t *fx = *state;
    s_refused(fx, "control_group = nosuchgroup-backstop\n", EX_CONFIG, 3,
              "control_group nosuchgroup-backstop: no such group");
}

static void test_unknown_user_is_refused_as_the_start_does(void **state)
{
    s_fx_t *fx = *state;
    /* the start has always exited EX_NOUSER for it; -n says EX_CONFIG (main) */
    s_refused(fx, "user = nosuchuser-backstop\n", EX_NOUSER, 3,
              "user nosuchuser-backstop: no such user");
}

static void test_every_problem_is_listed_first_status_wins(void **state)
{
    s_fx_t *fx = *state;
    char err[4096], *path = NULL;
    int rc = s_check(fx, "user = nosuchuser-backstop\ncontrol_group = nosuchgroup-backstop\n", err,
                     sizeof(err), &path);
    assert_int_equal(rc, EX_CONFIG);
    assert_non_null(strstr(err, "no such user"));
    assert_non_null(strstr(err, "no such group"));
    xfree(path);
}

/* ---- the loop's timers, on a fake clock ---- */

/* A server in fx->dir on clock (its config, store and control socket there), with the config
 * lines extra. */
static server_t *s_server_with(const s_fx_t *fx, bs_clock_t *clock, const char *extra)
{
    char err[4096];
    char *text = xasprintf("event_endpoint = tcp://127.0.0.1:*\n"
                           "decision_endpoint = tcp://127.0.0.1:*\n"
                           "snapshot_endpoint = tcp://127.0.0.1:*\n"
                           "control_endpoint = ipc://%s/ctl.sock\ndata_dir = %s/db\n%s",
                           fx->dir, fx->dir, extra);
    char *path = s_write(fx, "agg.conf", text, 0644);
    agg_config_t *cfg = agg_config_load(path, err, sizeof(err));
    if (cfg == NULL)
        fail_msg("config: %s", err);
    server_t *srv = server_new(&cfg, NULL, clock);
    assert_non_null(srv);
    xfree(text);
    xfree(path);
    return srv;
}

static server_t *s_server(const s_fx_t *fx, bs_clock_t *clock)
{
    return s_server_with(fx, clock, "");
}

/* One bounce event of sensor site/sensor at the server's now, sent over a PUSH socket to
 * its event endpoint; turns the loop until the server has heard from the sensor. */
static void s_sensor_sends(server_t *srv, void *push, const char *site, const char *sensor)
{
    static uint64_t seq = 1;
    const char *subject = "undeliverable: your message";
    wire_key_t key = {BACKSTOP__SCOPE__SUBJECT, fp_text(subject), subject, strlen(subject)};
    wire_event_t ev = {.seq = seq++,
                       .time_ms = server_now_ms(srv),
                       .msg_class = BACKSTOP__MSG_CLASS__BOUNCE,
                       .keys = &key,
                       .nkeys = 1};
    wire_batch_t *wb = wire_batch_new();
    wire_batch_add(wb, &ev);
    size_t len = 0;
    uint8_t *buf = wire_batch_pack(wb, site, sensor, false, &len, NULL);
    assert_non_null(buf);
    assert_int_equal(zsock_send_raw(push, buf, len, 0), 0);
    xfree(buf);
    wire_batch_destroy(&wb);
    for (int i = 0; i < 50; i++) {
        size_t n = 0;
        const server_sensor_t *s = server_sensors(srv, &n);
        for (size_t k = 0; k < n; k++)
            if (strcmp(s[k].site, site) == 0 && strcmp(s[k].sensor, sensor) == 0 &&
                s[k].last_seen_ms == server_now_ms(srv))
                return;
        assert_int_equal(server_turn(srv, 100), 0);
    }
    fail_msg("the server never heard from %s/%s", site, sensor);
}

/* The document of a control request that succeeds (json_decref it). */
static json_t *s_control(server_t *srv, Backstop__ControlRequest *req)
{
    Backstop__ControlReply reply = BACKSTOP__CONTROL_REPLY__INIT;
    req->who = "tester";
    int rc = control_handle(srv, req, &reply);
    if (rc != 0)
        fail_msg("control request %d: status %d: %s", req->command, rc,
                 reply.error ? reply.error : "");
    assert_int_equal(server_apply_changes(srv) >= 0, 1);
    json_t *doc = json_loads(reply.json, 0, NULL);
    assert_non_null(doc);
    free(reply.json);
    return doc;
}

static json_t *s_command(server_t *srv, Backstop__ControlRequest__Command command)
{
    Backstop__ControlRequest req = BACKSTOP__CONTROL_REQUEST__INIT;
    req.command = command;
    return s_control(srv, &req);
}

/* The sensors `backstop status` and `backstop sites` list, as "site/sensor" joined by
 * spaces (status order) into out; asserts the two agree on how many. */
static void s_listed(server_t *srv, char *out, size_t outlen)
{
    json_t *doc = s_command(srv, BACKSTOP__CONTROL_REQUEST__COMMAND__STATUS);
    out[0] = '\0';
    size_t i, nstatus = json_array_size(json_object_get(doc, "sensors"));
    json_t *s;
    json_array_foreach(json_object_get(doc, "sensors"), i, s)
    {
        size_t at = strlen(out);
        snprintf(out + at, outlen - at, "%s%s/%s", at ? " " : "",
                 json_string_value(json_object_get(s, "site")),
                 json_string_value(json_object_get(s, "sensor")));
    }
    json_decref(doc);

    doc = s_command(srv, BACKSTOP__CONTROL_REQUEST__COMMAND__SITES);
    size_t nsites = 0;
    json_array_foreach(json_object_get(doc, "sites"), i, s)
    {
        nsites += json_array_size(json_object_get(s, "sensors"));
    }
    json_decref(doc);
    assert_int_equal(nsites, nstatus);
}

/* store_sensor_load(): counts the records of one sensor (arg: "site\0sensor"). */
static int s_count_records(const char *site, const char *sensor, const void *val, size_t len,
                           void *arg)
{
    (void)val;
    (void)len;
    const char **want = arg;
    if (strcmp(site, want[0]) == 0 && strcmp(sensor, want[1]) == 0)
        ((long *)want[2])[0]++;
    return 0;
}

/* Records ('n' status and 'x' dedup) the store in dir/db holds of site/sensor. */
static long s_records(const s_fx_t *fx, const char *site, const char *sensor)
{
    char *db = xasprintf("%s/db", fx->dir);
    store_t *st = store_open_boot(db, false, 0, NULL);
    assert_non_null(st);
    long n = 0;
    const char *want[3] = {site, sensor, (const char *)&n};
    assert_true(store_sensor_load(st, 'n', s_count_records, want) >= 0);
    assert_true(store_sensor_load(st, 'x', s_count_records, want) >= 0);
    store_close(&st);
    xfree(db);
    return n;
}

/* The sweep on its timer: a sensor silent for SERVER_SENSOR_FORGET_MS goes from status,
 * sites and the store, and stays gone after a restart; one silent for less stays. */
static void test_sweep_forgets_a_sensor_silent_for_seven_days(void **state)
{
    s_fx_t *fx = *state;
    bs_clock_t *clock = bs_clock_fake_new(T0);
    server_t *srv = s_server(fx, clock);
    void *ctx = zmq_ctx_new();
    void *push = zsock_new(ctx, ZMQ_PUSH);
    assert_non_null(push);
    assert_int_equal(zmq_connect(push, server_endpoint(srv, "event")), 0);

    s_sensor_sends(srv, push, "a", "old");
    bs_clock_fake_advance(clock, 2 * DAY);
    s_sensor_sends(srv, push, "a", "recent");
    /* a flush (its timer) writes both sensors' records */
    bs_clock_fake_advance(clock, SEC);
    for (int i = 0; i < 3; i++)
        assert_int_equal(server_turn(srv, 0), 0);
    char listed[256];
    s_listed(srv, listed, sizeof(listed));
    assert_string_equal(listed, "a/old a/recent");

    /* a day short of the bound for "old": the sweeps keep both */
    bs_clock_fake_advance(clock, 4 * DAY);
    for (int i = 0; i < 3; i++)
        assert_int_equal(server_turn(srv, 0), 0);
    s_listed(srv, listed, sizeof(listed));
    assert_string_equal(listed, "a/old a/recent");

    /* "old" silent past SERVER_SENSOR_FORGET_MS (past the horizon too), "recent" for 5 days */
    bs_clock_fake_set(clock, T0 + SERVER_SENSOR_FORGET_MS + SEC);
    assert_true(SERVER_SENSOR_FORGET_MS + SEC > server_sensor_horizon_ms(srv));
    for (int i = 0; i < 3; i++)
        assert_int_equal(server_turn(srv, 0), 0);
    s_listed(srv, listed, sizeof(listed));
    assert_string_equal(listed, "a/recent");

    zsock_close(&push);
    zmq_ctx_term(ctx);
    server_destroy(&srv);
    /* the store: no record of "old" (the sweep's deletions went with a flush), "recent"'s
     * status and dedup state are there */
    assert_int_equal(s_records(fx, "a", "old"), 0);
    assert_int_equal(s_records(fx, "a", "recent"), 2);
    /* and a restart lists only "recent" */
    srv = s_server(fx, clock);
    s_listed(srv, listed, sizeof(listed));
    assert_string_equal(listed, "a/recent");
    server_destroy(&srv);
    bs_clock_destroy(&clock);
}

/* A manual fleet block on subject; its id into id (DECISION_ID_LEN + 1). */
static void s_block(server_t *srv, const char *subject, char *id)
{
    Backstop__ControlRequest req = BACKSTOP__CONTROL_REQUEST__INIT;
    req.command = BACKSTOP__CONTROL_REQUEST__COMMAND__DECISION_ADD;
    req.has_scope = 1;
    req.scope = BACKSTOP__SCOPE__SUBJECT;
    req.value = (char *)subject;
    json_t *doc = s_control(srv, &req);
    snprintf(id, DECISION_ID_LEN + 1, "%s",
             json_string_value(json_object_get(json_object_get(doc, "decision"), "id")));
    json_decref(doc);
}

/* Turns the loop after the store check's timer ran out: one look at the data directory. */
static void s_store_looked(server_t *srv, bs_clock_t *clock)
{
    bs_clock_fake_advance(clock, SERVER_STORE_CHECK_MS);
    for (int i = 0; i < 3; i++)
        assert_int_equal(server_turn(srv, 0), 0);
}

/* Two looks: a loss is acted on when two in a row find it. */
static void s_store_checked(server_t *srv, bs_clock_t *clock)
{
    s_store_looked(srv, clock);
    s_store_looked(srv, clock);
}

/* The data directory removed under a running server: within a store check the server has
 * written all it holds into a new one there; while it cannot (a file in the way), status
 * says the store is lost and why. A restart then finds every decision (made before and
 * after), the epoch and seq, the allowlist entry, the site and the sensor. */
static void test_removed_data_dir_is_written_anew(void **state)
{
    s_fx_t *fx = *state;
    bs_clock_t *clock = bs_clock_fake_new(T0);
    server_t *srv = s_server(fx, clock);
    void *ctx = zmq_ctx_new();
    void *push = zsock_new(ctx, ZMQ_PUSH);
    assert_int_equal(zmq_connect(push, server_endpoint(srv, "event")), 0);
    s_sensor_sends(srv, push, "a", "mx1");
    char before[DECISION_ID_LEN + 1], after[DECISION_ID_LEN + 1];
    s_block(srv, "before the loss", before);
    char err[256];
    assert_int_equal(server_site_add(srv, "a", NULL, "tester", err, sizeof(err)), 0);
    allow_entry_t e;
    memset(&e, 0, sizeof(e));
    assert_int_equal(allowlist_entry_parse(&e, ALLOW_NET, "192.0.2.0/24"), 0);
    assert_true(server_allow_add(srv, &e, NULL, err, sizeof(err)) > 0);
    uint64_t epoch = decisions_epoch(server_decisions(srv));
    char *db = xasprintf("%s/db", fx->dir);
    char *cmd = xasprintf("rm -rf '%s'", db);

    /* removed: recreated at the next check, status says so */
    assert_int_equal(system(cmd), 0);
    s_store_checked(srv, clock);
    json_t *doc = s_command(srv, BACKSTOP__CONTROL_REQUEST__COMMAND__STATUS);
    json_t *store = json_object_get(doc, "store");
    assert_true(json_is_null(json_object_get(store, "lost_since_ms")));
    assert_int_equal(json_integer_value(json_object_get(store, "recreated")), 1);
    json_decref(doc);
    struct stat st;
    assert_int_equal(stat(db, &st), 0);

    /* a file in its place: lost, and status says why it is not recreated */
    assert_int_equal(system(cmd), 0);
    FILE *fp = fopen(db, "w");
    assert_non_null(fp);
    fclose(fp);
    s_store_checked(srv, clock);
    doc = s_command(srv, BACKSTOP__CONTROL_REQUEST__COMMAND__STATUS);
    store = json_object_get(doc, "store");
    /* (since the first of the two looks) */
    assert_int_equal(json_integer_value(json_object_get(store, "lost_since_ms")),
                     T0 + 3 * SERVER_STORE_CHECK_MS);
    assert_string_equal(json_string_value(json_object_get(store, "lost_reason")), "replaced");
    assert_non_null(strstr(json_string_value(json_object_get(store, "lost_error")),
                           "is not a directory: left alone"));
    json_decref(doc);
    /* decisions go on meanwhile (into the files the store still has) */
    s_block(srv, "after the loss", after);

    /* the file gone: written anew, the decision made meanwhile too */
    assert_int_equal(unlink(db), 0);
    s_store_checked(srv, clock);
    doc = s_command(srv, BACKSTOP__CONTROL_REQUEST__COMMAND__STATUS);
    store = json_object_get(doc, "store");
    assert_true(json_is_null(json_object_get(store, "lost_since_ms")));
    assert_int_equal(json_integer_value(json_object_get(store, "recreated")), 2);
    json_decref(doc);
    uint64_t seq = decisions_seq(server_decisions(srv));
    assert_int_equal(seq, 2);

    zsock_close(&push);
    zmq_ctx_term(ctx);
    server_destroy(&srv);
    srv = s_server(fx, clock);
    assert_true(decisions_epoch(server_decisions(srv)) == epoch);
    assert_int_equal(decisions_seq(server_decisions(srv)), seq);
    assert_non_null(decisions_find(server_decisions(srv), before));
    assert_non_null(decisions_find(server_decisions(srv), after));
    assert_int_equal(allowlist_count(server_allowlist(srv)), 1);
    assert_non_null(server_site_find(srv, "a"));
    char listed[256];
    s_listed(srv, listed, sizeof(listed));
    assert_string_equal(listed, "a/mx1");
    server_destroy(&srv);
    xfree(cmd);
    xfree(db);
    bs_clock_destroy(&clock);
}

/* The data directory moved away and back between two looks (an operator's mv, a passing
 * state): the one look that found it gone does nothing, and the next finds it in place.
 * On one look the store was made again at the path (the move back then failed) and
 * written from memory. */
static void test_data_dir_moved_away_and_back_is_left_alone(void **state)
{
    s_fx_t *fx = *state;
    bs_clock_t *clock = bs_clock_fake_new(T0);
    server_t *srv = s_server(fx, clock);
    char id[DECISION_ID_LEN + 1];
    s_block(srv, "kept where it is", id);
    uint64_t epoch = decisions_epoch(server_decisions(srv));
    char *db = xasprintf("%s/db", fx->dir);
    char *away = xasprintf("%s/db.away", fx->dir);
    char *lock = xasprintf("%s/db/LOCK", fx->dir);
    struct stat before, after;
    assert_int_equal(stat(lock, &before), 0);

    assert_int_equal(rename(db, away), 0);
    s_store_looked(srv, clock);
    assert_int_equal(access(db, F_OK), -1);
    assert_int_equal(rename(away, db), 0);
    s_store_looked(srv, clock);
    s_store_looked(srv, clock);
    json_t *doc = s_command(srv, BACKSTOP__CONTROL_REQUEST__COMMAND__STATUS);
    json_t *store = json_object_get(doc, "store");
    assert_true(json_is_null(json_object_get(store, "lost_since_ms")));
    assert_int_equal(json_integer_value(json_object_get(store, "recreated")), 0);
    json_decref(doc);
    assert_int_equal(stat(lock, &after), 0);
    assert_true(before.st_ino == after.st_ino);

    server_destroy(&srv);
    srv = s_server(fx, clock);
    assert_true(decisions_epoch(server_decisions(srv)) == epoch);
    assert_non_null(decisions_find(server_decisions(srv), id));
    server_destroy(&srv);
    xfree(lock);
    xfree(away);
    xfree(db);
    bs_clock_destroy(&clock);
}

/* The refill after the data directory was removed is one synced write, however much the
 * daemon holds: 100 allowlist entries and 10 sites written one by one were 110 fsyncs
 * with the event loop waiting (2000 entries took 12.8 s; sensors give up after 3 s). */
static void test_refill_of_a_removed_data_dir_is_one_synced_write(void **state)
{
    s_fx_t *fx = *state;
    bs_clock_t *clock = bs_clock_fake_new(T0);
    server_t *srv = s_server(fx, clock);
    char err[256];
    for (int i = 0; i < 100; i++) {
        allow_entry_t e;
        memset(&e, 0, sizeof(e));
        char net[32];
        snprintf(net, sizeof(net), "10.0.%d.0/24", i);
        assert_int_equal(allowlist_entry_parse(&e, ALLOW_NET, net), 0);
        assert_true(server_allow_add(srv, &e, NULL, err, sizeof(err)) > 0);
    }
    for (int i = 0; i < 10; i++) {
        char name[16];
        snprintf(name, sizeof(name), "site%d", i);
        assert_int_equal(server_site_add(srv, name, NULL, "tester", err, sizeof(err)), 0);
    }
    char *cmd = xasprintf("rm -rf '%s/db'", fx->dir);
    assert_int_equal(system(cmd), 0);
    long before = atomic_load(&s_syncs);
    s_store_checked(srv, clock);
    long syncs = atomic_load(&s_syncs) - before;
    json_t *doc = s_command(srv, BACKSTOP__CONTROL_REQUEST__COMMAND__STATUS);
    assert_int_equal(
        json_integer_value(json_object_get(json_object_get(doc, "store"), "recreated")), 1);
    json_decref(doc);
    /* the refill's one, the flush's, the opening of two new databases (a manifest, CURRENT
     * and the directory each): 14 here; one an entry would be over 110 */
    if (syncs > 30)
        fail_msg("%ld fsyncs while the store was recreated and refilled", syncs);
    server_destroy(&srv);
    srv = s_server(fx, clock);
    assert_int_equal(allowlist_count(server_allowlist(srv)), 100);
    assert_non_null(server_site_find(srv, "site9"));
    server_destroy(&srv);
    xfree(cmd);
    bs_clock_destroy(&clock);
}

/* Sends srv a SnapshotRequest of site on dealer (epoch 0: for a full snapshot, else for the
 * changes since since_seq) and turns its loop until the reply is there: its first frame
 * (wire_free it). */
static Backstop__Frame *s_snapshot(server_t *srv, void *dealer, const char *site, uint64_t epoch,
                                   uint64_t since_seq)
{
    Backstop__SnapshotRequest rq;
    wire_snapshot_request_init(&rq, site, "s1", epoch, since_seq);
    Backstop__Frame f;
    wire_frame_init(&f, BACKSTOP__FRAME__BODY_SNAPSHOT_REQUEST, &rq);
    bool sent = false;
    for (int i = 0; i < 100; i++) {
        /* the DEALER refuses to send (ZMQ_IMMEDIATE) until it is connected */
        if (!sent)
            sent = zsock_send(dealer, &f, ZMQ_DONTWAIT) == 0;
        assert_int_equal(server_turn(srv, 50), 0);
        Backstop__Frame *reply = NULL;
        if (sent && zsock_recv(dealer, ZMQ_DONTWAIT, &reply, NULL, NULL) == 1) {
            assert_int_equal(reply->body_case, BACKSTOP__FRAME__BODY_SNAPSHOT_REPLY);
            return reply;
        }
    }
    fail_msg("no snapshot reply (request %s)", sent ? "sent" : "never sent");
    return NULL;
}

/* A snapshot reply says the aggregator's heartbeat_interval, so that a sensor judges silence
 * by it from the reply on, before it hears a heartbeat (PROTOCOL.md 4.3): a full snapshot, a
 * changes answer and a refused request each carry the configured one (700 ms here). */
static void test_snapshot_replies_carry_the_heartbeat_interval(void **state)
{
    s_fx_t *fx = *state;
    bs_clock_t *clock = bs_clock_fake_new(T0);
    server_t *srv = s_server_with(fx, clock, "heartbeat_interval = 700ms\n");
    char id[DECISION_ID_LEN + 1];
    s_block(srv, "undeliverable: cheap watches", id);
    void *ctx = zmq_ctx_new();
    void *dealer = zsock_new(ctx, ZMQ_DEALER);
    assert_non_null(dealer);
    assert_int_equal(zmq_connect(dealer, server_endpoint(srv, "snapshot")), 0);

    Backstop__Frame *f = s_snapshot(srv, dealer, "site1", 0, 0);
    const Backstop__SnapshotReply *r = f->snapshot_reply;
    assert_false(r->has_changes_only && r->changes_only);
    assert_int_equal(r->n_decisions, 1);
    assert_true(r->has_heartbeat_interval_ms);
    assert_int_equal(r->heartbeat_interval_ms, 700);
    wire_free(&f);

    f = s_snapshot(srv, dealer, "site1", decisions_epoch(server_decisions(srv)), 0);
    r = f->snapshot_reply;
    assert_true(r->has_changes_only && r->changes_only);
    assert_int_equal(r->n_changes, 1);
    assert_true(r->has_heartbeat_interval_ms);
    assert_int_equal(r->heartbeat_interval_ms, 700);
    wire_free(&f);

    f = s_snapshot(srv, dealer, "no/site", 0, 0); /* not a site name: refused */
    r = f->snapshot_reply;
    assert_true(r->has_refused && r->refused);
    assert_true(r->has_heartbeat_interval_ms);
    assert_int_equal(r->heartbeat_interval_ms, 700);
    wire_free(&f);

    zsock_close(&dealer);
    zmq_ctx_term(ctx);
    server_destroy(&srv);
    bs_clock_destroy(&clock);
}

int main(void)
{
    /* before any thread (LevelDB's background thread lives as long as the process): the
     * signals test_signals_are_read_by_the_loop sends reach no thread's default action */
    sigset_t sigs;
    sigemptyset(&sigs);
    sigaddset(&sigs, SIGTERM);
    sigaddset(&sigs, SIGINT);
    sigaddset(&sigs, SIGHUP);
    pthread_sigmask(SIG_BLOCK, &sigs, NULL);
#define T(f) cmocka_unit_test_setup_teardown(f, s_setup, s_teardown)
    const struct CMUnitTest tests[] = {
        T(test_plain_loopback_config_passes),
        T(test_plain_mode_refuses_a_wildcard_endpoint),
        T(test_missing_key_file_is_refused),
        T(test_key_file_that_is_no_file_is_refused),
        T(test_malformed_key_file_is_refused),
        T(test_public_only_key_file_is_refused),
        T(test_curve_mode_may_bind_any_address),
        T(test_unknown_control_group_is_refused),
        T(test_unknown_user_is_refused_as_the_start_does),
        T(test_every_problem_is_listed_first_status_wins),
        T(test_sweep_forgets_a_sensor_silent_for_seven_days),
        T(test_removed_data_dir_is_written_anew),
        T(test_stop_requested_from_another_thread),
        T(test_signals_are_read_by_the_loop),
        T(test_refill_of_a_removed_data_dir_is_one_synced_write),
        T(test_data_dir_moved_away_and_back_is_left_alone),
        T(test_snapshot_replies_carry_the_heartbeat_interval),
    };
#undef T
    return cmocka_run_group_tests(tests, NULL, NULL);
}
