/* test_uplink - the uplink thread against a fake aggregator in the test (PUB, ROUTER, PULL on
 * ephemeral loopback ports): snapshot, in-sequence updates, resync with "changes since" on a
 * gap, full resync on a new epoch, a changes-since answer in several frames, a refused
 * snapshot, decisions refused as not enforceable, the bound on what is held while joining, a
 * snapshot and a feed of two epochs, silence judged by the heartbeat interval announced (in
 * heartbeats, and in the snapshot reply before the first heartbeat), and events arriving as
 * EventBatch frames. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <inttypes.h>
#include <cmocka.h>

#include "fp.h"
#include "milter_engine.h"
#include "msg.h"
#include "uplink.h"
#include "wire.h"
#include "xalloc.h"
#include "zsock.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <zmq.h>

typedef struct {
    void *ctx;                 /* zmq context of the fake aggregator */
    void *pub, *router, *pull; /* its sockets */
    char dir[64];              /* state directory */
    sensor_config_t *cfg;      /* the sensor's config */
    milter_engine_t *engine;   /* the sensor's shared state */
    uplink_t *up;              /* the thread under test */
    int logfd;                 /* where its log lines go (s_log_capture), -1: stderr */
} s_fix_t;

static void s_wait_ms(int ms)
{
    struct timespec ts = {.tv_sec = ms / 1000, .tv_nsec = (long)(ms % 1000) * 1000000L};
    nanosleep(&ts, NULL);
}

static int s_setup(void **state)
{
    s_fix_t *f = xcalloc(1, sizeof(*f));
    f->logfd = -1;
    f->ctx = zmq_ctx_new();
    f->pub = zsock_new(f->ctx, ZMQ_PUB);
    f->router = zsock_new(f->ctx, ZMQ_ROUTER);
    f->pull = zsock_new(f->ctx, ZMQ_PULL);
    assert_int_equal(zsock_bind(f->pub, "tcp://127.0.0.1:*", 0, (gid_t)-1), 0);
    assert_int_equal(zsock_bind(f->router, "tcp://127.0.0.1:*", 0, (gid_t)-1), 0);
    assert_int_equal(zsock_bind(f->pull, "tcp://127.0.0.1:*", 0, (gid_t)-1), 0);
    char *de = zsock_bound_endpoint(f->pub);
    char *sn = zsock_bound_endpoint(f->router);
    char *ev = zsock_bound_endpoint(f->pull);
    snprintf(f->dir, sizeof(f->dir), "/tmp/test_uplink.XXXXXX");
    assert_non_null(mkdtemp(f->dir));
    char *conf = xasprintf("%s/sensor.conf", f->dir);
    FILE *fp = fopen(conf, "w");
    assert_non_null(fp);
    fprintf(fp,
            "site = site1\nsensor_id = s1\nstate_directory = %s\naggregator_events = %s\n"
            "aggregator_decisions = %s\naggregator_snapshot = %s\nevent_flush = 1ms\n"
            "local_rule = no\n",
            f->dir, ev, de, sn);
    fclose(fp);
    char err[512];
    f->cfg = sensor_config_load(conf, err, sizeof(err));
    assert_non_null(f->cfg);
    f->engine = milter_engine_new(f->cfg, bs_clock_system(), err, sizeof(err));
    assert_non_null(f->engine);
    f->up = uplink_new(f->engine, err, sizeof(err));
    assert_non_null(f->up);
    assert_int_equal(uplink_start(f->up), 0);
    xfree(conf);
    xfree(de);
    xfree(sn);
    xfree(ev);
    *state = f;
    return 0;
}

static int s_teardown(void **state)
{
    s_fix_t *f = *state;
    uplink_destroy(&f->up);
    msg_set_fd(-1); /* after the thread: it may still log */
    if (f->logfd >= 0)
        close(f->logfd);
    milter_engine_destroy(&f->engine);
    sensor_config_destroy(&f->cfg);
    zsock_close(&f->pub);
    zsock_close(&f->router);
    zsock_close(&f->pull);
    zmq_ctx_term(f->ctx);
    char cmd[128];
    snprintf(cmd, sizeof(cmd), "rm -rf %s", f->dir);
    assert_int_equal(system(cmd), 0);
    xfree(f);
    return 0;
}

/* Receives the next snapshot request (5 s at most). */
static Backstop__Frame *s_request(s_fix_t *f, zsock_meta_t *meta)
{
    zmq_pollitem_t it = {.socket = f->router, .events = ZMQ_POLLIN};
    assert_int_equal(zmq_poll(&it, 1, 5000), 1);
    Backstop__Frame *fr = NULL;
    assert_int_equal(zsock_recv(f->router, 0, &fr, meta, NULL), 1);
    assert_int_equal(fr->body_case, BACKSTOP__FRAME__BODY_SNAPSHOT_REQUEST);
    return fr;
}

static int64_t s_now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* A fleet decision made a minute ago for an hour, as an aggregator makes them. */
static void s_decision(Backstop__Decision *d, const char *id, uint64_t fp)
{
    Backstop__Decision init = BACKSTOP__DECISION__INIT;
    *d = init;
    d->id = (char *)id;
    d->scope = BACKSTOP__SCOPE__ORIG_SUBJECT;
    d->fp = fp;
    d->action = BACKSTOP__ACTION__REJECT;
    d->reach = BACKSTOP__REACH__FLEET;
    d->created_ms = s_now_ms() - 60000;
    d->expires_ms = d->created_ms + 3600000;
    d->origin = BACKSTOP__ORIGIN__RULE;
}

static void s_reply_full(s_fix_t *f, const zsock_meta_t *to, uint64_t epoch, uint64_t seq,
                         Backstop__Decision **ds, size_t n)
{
    Backstop__SnapshotReply r = BACKSTOP__SNAPSHOT_REPLY__INIT;
    r.epoch = epoch;
    r.seq = seq;
    r.n_decisions = n;
    r.decisions = ds;
    Backstop__Frame fr;
    wire_frame_init(&fr, BACKSTOP__FRAME__BODY_SNAPSHOT_REPLY, &r);
    assert_int_equal(zsock_reply(f->router, to, &fr, 0), 0);
}

/* Answers the sensor's first request with an empty full snapshot at (1, 0): it goes live. */
static void s_live(s_fix_t *f)
{
    zsock_meta_t who;
    Backstop__Frame *rq = s_request(f, &who);
    wire_free(&rq);
    s_reply_full(f, &who, 1, 0, NULL, 0);
}

static void s_update(Backstop__DecisionUpdate *u, Backstop__Decision *d, uint64_t epoch,
                     uint64_t seq)
{
    Backstop__DecisionUpdate init = BACKSTOP__DECISION_UPDATE__INIT;
    *u = init;
    u->seq = seq;
    u->epoch = epoch;
    u->decision = d;
}

/* Publishes u until the sensor holds id (or 5 s pass): PUB drops what precedes the
 * subscription, and a repeated update is a duplicate to the sensor. */
static bool s_publish_until(s_fix_t *f, Backstop__DecisionUpdate *u, const char *id)
{
    dcache_entry_t e;
    for (int i = 0; i < 100; i++) {
        Backstop__Frame fr;
        wire_frame_init(&fr, BACKSTOP__FRAME__BODY_UPDATE, u);
        zsock_publish(f->pub, ZSOCK_TOPIC_FLEET, &fr, 0);
        for (int j = 0; j < 10; j++) {
            if (dcache_get(milter_engine_dcache(f->engine), id, &e) == 0)
                return true;
            s_wait_ms(5);
        }
    }
    return false;
}

static bool s_wait_decision(s_fix_t *f, const char *id)
{
    dcache_entry_t e;
    for (int i = 0; i < 1000; i++) {
        if (dcache_get(milter_engine_dcache(f->engine), id, &e) == 0)
            return true;
        s_wait_ms(5);
    }
    return false;
}

static void test_snapshot_updates_gap_and_epoch(void **state)
{
    s_fix_t *f = *state;
    zsock_meta_t who;
    Backstop__Frame *rq = s_request(f, &who);
    assert_string_equal(rq->snapshot_request->site, "site1");
    assert_false(rq->snapshot_request->has_since_seq); /* a first join asks for everything */
    wire_free(&rq);

    Backstop__Decision d1, d2, d3, d4;
    s_decision(&d1, "D1", 11);
    s_decision(&d2, "D2", 12);
    s_decision(&d3, "D3", 13);
    s_decision(&d4, "D4", 14);
    Backstop__Decision *snap[] = {&d1};
    s_reply_full(f, &who, 7, 1, snap, 1);
    assert_true(s_wait_decision(f, "D1"));

    Backstop__DecisionUpdate u2;
    s_update(&u2, &d2, 7, 2);
    assert_true(s_publish_until(f, &u2, "D2"));

    /* seq 4 after 2: a gap; the sensor asks for the changes since 2 */
    Backstop__DecisionUpdate u4;
    s_update(&u4, &d4, 7, 4);
    Backstop__Frame fr;
    wire_frame_init(&fr, BACKSTOP__FRAME__BODY_UPDATE, &u4);
    zsock_publish(f->pub, ZSOCK_TOPIC_FLEET, &fr, 0);
    rq = s_request(f, &who);
    assert_true(rq->snapshot_request->has_since_seq);
    assert_int_equal(rq->snapshot_request->since_seq, 2);
    assert_int_equal(rq->snapshot_request->epoch, 7);
    wire_free(&rq);
    dcache_entry_t e;
    assert_int_equal(dcache_get(milter_engine_dcache(f->engine), "D4", &e), -1);

    Backstop__DecisionUpdate u3;
    s_update(&u3, &d3, 7, 3);
    Backstop__DecisionUpdate *changes[] = {&u3, &u4};
    Backstop__SnapshotReply r = BACKSTOP__SNAPSHOT_REPLY__INIT;
    r.epoch = 7;
    r.seq = 4;
    r.has_changes_only = 1;
    r.changes_only = 1;
    r.n_changes = 2;
    r.changes = changes;
    wire_frame_init(&fr, BACKSTOP__FRAME__BODY_SNAPSHOT_REPLY, &r);
    assert_int_equal(zsock_reply(f->router, &who, &fr, 0), 0);
    assert_true(s_wait_decision(f, "D3"));
    assert_true(s_wait_decision(f, "D4"));

    /* a heartbeat from a new epoch: a full resync */
    Backstop__Heartbeat hb = BACKSTOP__HEARTBEAT__INIT;
    hb.epoch = 8;
    hb.seq = 1;
    wire_frame_init(&fr, BACKSTOP__FRAME__BODY_HEARTBEAT, &hb);
    zsock_publish(f->pub, ZSOCK_TOPIC_HEARTBEAT, &fr, 0);
    rq = s_request(f, &who);
    assert_false(rq->snapshot_request->has_since_seq);
    wire_free(&rq);
    s_reply_full(f, &who, 8, 1, snap, 1); /* only D1 survives the new epoch */
    for (int i = 0; i < 1000 && dcache_get(milter_engine_dcache(f->engine), "D2", &e) == 0; i++)
        s_wait_ms(5);
    assert_int_equal(dcache_get(milter_engine_dcache(f->engine), "D2", &e), -1);
    assert_int_equal(dcache_get(milter_engine_dcache(f->engine), "D1", &e), 0);
    uint64_t epoch, seq;
    dcache_position(milter_engine_dcache(f->engine), &epoch, &seq);
    assert_int_equal(epoch, 8);
}

/* A heartbeat behind the sequence the sensor applied, in the same epoch: the aggregator
 * lost changes the sensor holds and will number its next ones again. The sensor takes a
 * full snapshot (asking for "changes since" would get nothing) and drops what is gone. */
static void test_heartbeat_behind_in_the_same_epoch_resyncs_in_full(void **state)
{
    s_fix_t *f = *state;
    zsock_meta_t who;
    Backstop__Frame *rq = s_request(f, &who);
    wire_free(&rq);
    Backstop__Decision d1, d2;
    s_decision(&d1, "D1", 11);
    s_decision(&d2, "D2", 12);
    Backstop__Decision *snap[] = {&d1, &d2};
    s_reply_full(f, &who, 7, 5, snap, 2);
    assert_true(s_wait_decision(f, "D2"));

    Backstop__Heartbeat hb = BACKSTOP__HEARTBEAT__INIT;
    hb.epoch = 7;
    hb.seq = 2;
    Backstop__Frame fr;
    wire_frame_init(&fr, BACKSTOP__FRAME__BODY_HEARTBEAT, &hb);
    zsock_publish(f->pub, ZSOCK_TOPIC_HEARTBEAT, &fr, 0);
    rq = s_request(f, &who);
    assert_false(rq->snapshot_request->has_since_seq);
    wire_free(&rq);
    Backstop__Decision *kept[] = {&d1};
    s_reply_full(f, &who, 7, 2, kept, 1);
    dcache_entry_t e;
    for (int i = 0; i < 1000 && dcache_get(milter_engine_dcache(f->engine), "D2", &e) == 0; i++)
        s_wait_ms(5);
    assert_int_equal(dcache_get(milter_engine_dcache(f->engine), "D2", &e), -1);
    assert_int_equal(dcache_get(milter_engine_dcache(f->engine), "D1", &e), 0);
    uint64_t epoch, seq;
    dcache_position(milter_engine_dcache(f->engine), &epoch, &seq);
    assert_int_equal(seq, 2);
}

/* Publishes u on F until the sensor's applied sequence reaches want (or 5 s pass). */
static bool s_publish_until_seq(s_fix_t *f, Backstop__DecisionUpdate *u, uint64_t want)
{
    for (int i = 0; i < 100; i++) {
        Backstop__Frame fr;
        wire_frame_init(&fr, BACKSTOP__FRAME__BODY_UPDATE, u);
        zsock_publish(f->pub, ZSOCK_TOPIC_FLEET, &fr, 0);
        for (int j = 0; j < 10; j++) {
            uint64_t epoch, seq;
            dcache_position(milter_engine_dcache(f->engine), &epoch, &seq);
            if (seq >= want)
                return true;
            s_wait_ms(5);
        }
    }
    return false;
}

static void s_skip(Backstop__DecisionUpdate *u, Backstop__Decision *d, const char *site,
                   uint64_t epoch, uint64_t seq)
{
    Backstop__Decision init = BACKSTOP__DECISION__INIT;
    *d = init;
    d->id = (char *)"";
    d->reach = BACKSTOP__REACH__LOCAL;
    d->fp = fp_text(site);
    s_update(u, d, epoch, seq);
    u->kind = BACKSTOP__DECISION_UPDATE__KIND__SKIP;
}

/* Another site's local change is a SKIP on F: the sensor's sequence moves on with no
 * resync; a SKIP of its own site's change means it lost that update: it resyncs. */
static void test_skip_keeps_sequence_without_resync(void **state)
{
    s_fix_t *f = *state;
    zsock_meta_t who;
    Backstop__Frame *rq = s_request(f, &who);
    wire_free(&rq);
    Backstop__Decision d1, d3, dskip, dmine;
    s_decision(&d1, "D1", 11);
    s_decision(&d3, "D3", 13);
    Backstop__Decision *snap[] = {&d1};
    s_reply_full(f, &who, 7, 1, snap, 1);
    assert_true(s_wait_decision(f, "D1"));

    Backstop__DecisionUpdate u2, u3, u4;
    s_skip(&u2, &dskip, "site9", 7, 2);
    assert_true(s_publish_until_seq(f, &u2, 2));
    s_update(&u3, &d3, 7, 3);
    assert_true(s_publish_until(f, &u3, "D3"));
    zmq_pollitem_t it = {.socket = f->router, .events = ZMQ_POLLIN};
    assert_int_equal(zmq_poll(&it, 1, 200), 0); /* no snapshot request: no gap was seen */
    dcache_entry_t e;
    assert_int_equal(dcache_count(milter_engine_dcache(f->engine)), 2);
    assert_int_equal(dcache_get(milter_engine_dcache(f->engine), "", &e), -1);

    s_skip(&u4, &dmine, "site1", 7, 4);
    Backstop__Frame fr;
    wire_frame_init(&fr, BACKSTOP__FRAME__BODY_UPDATE, &u4);
    zsock_publish(f->pub, ZSOCK_TOPIC_FLEET, &fr, 0);
    rq = s_request(f, &who);
    assert_true(rq->snapshot_request->has_since_seq);
    assert_int_equal(rq->snapshot_request->since_seq, 3);
    wire_free(&rq);
}

static void test_events_arrive_as_batches(void **state)
{
    s_fix_t *f = *state;
    s_live(f);
    evq_t *q = milter_engine_evq(f->engine);
    evq_event_t *ev = evq_event_new(q, 123456);
    evq_event_set_ip(ev, "192.0.2.9");
    ev->msg_class = 2;
    evq_event_add_key(ev, 2, 99, "cheap watches");
    assert_int_equal(evq_push(q, &ev), 0);
    zmq_pollitem_t it = {.socket = f->pull, .events = ZMQ_POLLIN};
    Backstop__Frame *fr = NULL;
    /* SensorStatus frames may come first */
    for (int i = 0; i < 10; i++) {
        assert_int_equal(zmq_poll(&it, 1, 5000), 1);
        assert_int_equal(zsock_recv(f->pull, 0, &fr, NULL, NULL), 1);
        if (fr->body_case == BACKSTOP__FRAME__BODY_EVENTS)
            break;
        wire_free(&fr);
    }
    assert_non_null(fr);
    assert_int_equal(fr->body_case, BACKSTOP__FRAME__BODY_EVENTS);
    Backstop__EventBatch *eb = fr->events;
    assert_string_equal(eb->site, "site1");
    assert_string_equal(eb->sensor, "s1");
    assert_int_equal(eb->n_events, 1);
    assert_int_equal(eb->events[0]->time_ms, 123456);
    assert_int_equal(eb->events[0]->client_ip.len, 4);
    assert_int_equal(eb->events[0]->n_keys, 1);
    assert_string_equal(eb->events[0]->keys[0]->text, "cheap watches");
    wire_free(&fr);
}

/* The next EventBatch on the fake aggregator's PULL (SensorStatus frames skipped). */
static Backstop__Frame *s_next_batch(s_fix_t *f)
{
    zmq_pollitem_t it = {.socket = f->pull, .events = ZMQ_POLLIN};
    for (int i = 0; i < 20; i++) {
        Backstop__Frame *fr = NULL;
        assert_int_equal(zmq_poll(&it, 1, 5000), 1);
        assert_int_equal(zsock_recv(f->pull, 0, &fr, NULL, NULL), 1);
        if (fr->body_case == BACKSTOP__FRAME__BODY_EVENTS)
            return fr;
        wire_free(&fr);
    }
    fail_msg("no event batch");
    return NULL;
}

/* Pushes one event with a key and a rule into the sensor's queue. */
static void s_push_event(s_fix_t *f, int64_t time_ms)
{
    evq_t *q = milter_engine_evq(f->engine);
    evq_event_t *ev = evq_event_new(q, time_ms);
    evq_event_set_ip(ev, "2001:db8::7");
    ev->msg_class = 2;
    evq_event_add_key(ev, 2, 99, "cheap watches");
    evq_event_add_rule(ev, "wave");
    assert_int_equal(evq_push(q, &ev), 0);
}

/* The next batch (the caller frees it), which must hold one event, of time_ms: into *e, its
 * keys into k (room for WIRE_MAX_KEYS). */
static Backstop__Frame *s_next_one(s_fix_t *f, int64_t time_ms, wire_event_t *e, wire_key_t *k)
{
    Backstop__Frame *b = s_next_batch(f);
    wire_events_t it;
    assert_int_equal(wire_events_open(&it, b->events), 1);
    assert_true(wire_events_next(&it, e, k));
    assert_int_equal(e->time_ms, time_ms);
    return b;
}

/* Publishes a heartbeat (features as given) and sends one event until a batch arrives in
 * the wanted form (the heartbeat may precede the subscription: PUB drops it then); true
 * when one did within 100 rounds. Every batch must carry its one event intact. */
static bool s_until_form(s_fix_t *f, bool with_bit, bool want_columns)
{
    for (int i = 0; i < 100; i++) {
        Backstop__Heartbeat hb = BACKSTOP__HEARTBEAT__INIT;
        hb.epoch = 1;
        hb.seq = 0;
        if (with_bit) {
            hb.has_features = 1;
            hb.features = WIRE_FEATURE_COLUMNS;
        }
        Backstop__Frame fr;
        wire_frame_init(&fr, BACKSTOP__FRAME__BODY_HEARTBEAT, &hb);
        zsock_publish(f->pub, ZSOCK_TOPIC_HEARTBEAT, &fr, 0);
        s_wait_ms(5);
        s_push_event(f, 5000 + i);
        wire_event_t e;
        wire_key_t k[WIRE_MAX_KEYS];
        Backstop__Frame *b = s_next_one(f, 5000 + i, &e, k);
        assert_int_equal(e.client_ip_len, 16);
        assert_int_equal(e.nkeys, 1);
        assert_int_equal(k[0].text_len, strlen("cheap watches"));
        assert_memory_equal(k[0].text, "cheap watches", k[0].text_len);
        assert_int_equal(e.nrules, 1);
        assert_string_equal(e.rules[0], "wave");
        bool columns = wire_batch_is_columnar(b->events);
        wire_free(&b);
        if (columns == want_columns)
            return true;
    }
    return false;
}

/* Columns only while the aggregator's latest heartbeat announces them: rows before any
 * heartbeat, columns after one with the bit, rows again after one without. */
static void test_events_as_columns_only_after_the_feature_bit(void **state)
{
    s_fix_t *f = *state;
    s_live(f);
    /* live, no heartbeat heard yet: rows */
    s_push_event(f, 4000);
    Backstop__Frame *b = s_next_batch(f);
    assert_false(wire_batch_is_columnar(b->events));
    assert_int_equal(b->events->n_events, 1);
    wire_free(&b);
    assert_true(s_until_form(f, true, true));
    assert_true(s_until_form(f, false, false));
}

/* Publishes a heartbeat announcing columns and, with text_once, WIRE_FEATURE_TEXT_ONCE. */
static void s_heartbeat_features(s_fix_t *f, bool text_once)
{
    Backstop__Heartbeat hb = BACKSTOP__HEARTBEAT__INIT;
    hb.epoch = 1;
    hb.has_features = 1;
    hb.features = WIRE_FEATURE_COLUMNS | (text_once ? WIRE_FEATURE_TEXT_ONCE : 0);
    Backstop__Frame fr;
    wire_frame_init(&fr, BACKSTOP__FRAME__BODY_HEARTBEAT, &hb);
    zsock_publish(f->pub, ZSOCK_TOPIC_HEARTBEAT, &fr, 0);
}

/* Sends one event (s_push_event's key) and returns whether its batch carried the key's
 * text (the text, when there, must be intact). */
static bool s_event_has_text(s_fix_t *f, int64_t time_ms)
{
    s_push_event(f, time_ms);
    wire_event_t e;
    wire_key_t k[WIRE_MAX_KEYS];
    Backstop__Frame *b = s_next_one(f, time_ms, &e, k);
    assert_int_equal(e.nkeys, 1);
    assert_int_equal(k[0].fp, 99);
    bool has = k[0].text_len != 0;
    if (has)
        assert_memory_equal(k[0].text, "cheap watches", k[0].text_len);
    else
        assert_true(wire_batch_is_columnar(b->events)); /* rows carry every text */
    wire_free(&b);
    return has;
}

/* To an aggregator announcing WIRE_FEATURE_TEXT_ONCE a key's text goes with its first
 * event, then not; after the feed was silent for more than two heartbeats (the aggregator
 * may have restarted and lost the newest texts) it goes again; to an aggregator that stops
 * announcing the bit every text goes. */
static void test_key_text_once_after_the_feature_bit(void **state)
{
    s_fix_t *f = *state;
    s_live(f);
    /* no heartbeat heard: every event has its text */
    assert_true(s_event_has_text(f, 6000));
    assert_true(s_event_has_text(f, 6001));
    bool left_out = false;
    for (int i = 0; i < 100 && !left_out; i++) {
        s_heartbeat_features(f, true);
        s_wait_ms(5);
        left_out = !s_event_has_text(f, 6100 + i);
    }
    assert_true(left_out);
    s_heartbeat_features(f, true);
    assert_false(s_event_has_text(f, 6300));
    /* silent for 2.3 s (more than two 1 s heartbeats, less than the 3 s that rejoins) */
    s_wait_ms(2300);
    s_heartbeat_features(f, true);
    s_wait_ms(50);
    assert_true(s_event_has_text(f, 6400));
    assert_false(s_event_has_text(f, 6401));
    /* the bit gone: texts again */
    bool back = false;
    for (int i = 0; i < 100 && !back; i++) {
        s_heartbeat_features(f, false);
        s_wait_ms(5);
        back = s_event_has_text(f, 6500 + i);
    }
    assert_true(back);
}

/* Publishes a heartbeat announcing columns, and with scopes non-zero the scopes of the keys
 * it reads. */
static void s_heartbeat_scopes(s_fix_t *f, uint32_t scopes)
{
    Backstop__Heartbeat hb = BACKSTOP__HEARTBEAT__INIT;
    hb.epoch = 1;
    hb.has_features = 1;
    hb.features = WIRE_FEATURE_COLUMNS;
    hb.has_scopes = scopes != 0;
    hb.scopes = scopes;
    Backstop__Frame fr;
    wire_frame_init(&fr, BACKSTOP__FRAME__BODY_HEARTBEAT, &hb);
    zsock_publish(f->pub, ZSOCK_TOPIC_HEARTBEAT, &fr, 0);
}

/* Sends one event with a subject (fp 41) and an orig_subject key (fp 42); returns its keys'
 * scopes as bits, once its batch is columns (rows carry every key: they must have both). */
static uint32_t s_event_scopes(s_fix_t *f, int64_t time_ms, bool *columns)
{
    evq_t *q = milter_engine_evq(f->engine);
    evq_event_t *ev = evq_event_new(q, time_ms);
    evq_event_set_ip(ev, "192.0.2.9");
    ev->msg_class = 2;
    evq_event_add_key(ev, BACKSTOP__SCOPE__SUBJECT, 41, "bounce: cheap watches");
    evq_event_add_key(ev, BACKSTOP__SCOPE__ORIG_SUBJECT, 42, "cheap watches");
    assert_int_equal(evq_push(q, &ev), 0);
    wire_event_t e;
    wire_key_t k[WIRE_MAX_KEYS];
    Backstop__Frame *b = s_next_one(f, time_ms, &e, k);
    uint32_t bits = 0;
    for (size_t i = 0; i < e.nkeys; i++) {
        assert_int_equal(k[i].fp, k[i].scope == BACKSTOP__SCOPE__SUBJECT ? 41 : 42);
        bits |= 1u << k[i].scope;
    }
    *columns = wire_batch_is_columnar(b->events);
    if (!*columns)
        assert_int_equal(e.nkeys, 2);
    wire_free(&b);
    return bits;
}

/* To an aggregator whose heartbeat names the scopes it reads, only keys of those go (the
 * event itself always goes); without the field every key goes. */
static void test_keys_only_of_the_scopes_the_aggregator_reads(void **state)
{
    s_fix_t *f = *state;
    s_live(f);
    const uint32_t subj = 1u << BACKSTOP__SCOPE__SUBJECT,
                   orig = 1u << BACKSTOP__SCOPE__ORIG_SUBJECT;
    const uint32_t cases[][2] = {
        {subj, subj}, {orig, orig}, {0, subj | orig}, {subj | orig, subj | orig}};
    for (size_t c = 0; c < sizeof(cases) / sizeof(cases[0]); c++) {
        bool seen = false;
        for (int i = 0; i < 100 && !seen; i++) {
            s_heartbeat_scopes(f, cases[c][0]);
            s_wait_ms(5);
            bool columns;
            uint32_t got = s_event_scopes(f, 7000 + (int64_t)c * 100 + i, &columns);
            seen = columns && got == cases[c][1];
        }
        assert_true(seen);
    }
}

/* Publishes a heartbeat announcing columns. */
static void s_heartbeat_columns(s_fix_t *f)
{
    Backstop__Heartbeat hb = BACKSTOP__HEARTBEAT__INIT;
    hb.epoch = 1;
    hb.has_features = 1;
    hb.features = WIRE_FEATURE_COLUMNS;
    Backstop__Frame fr;
    wire_frame_init(&fr, BACKSTOP__FRAME__BODY_HEARTBEAT, &hb);
    zsock_publish(f->pub, ZSOCK_TOPIC_HEARTBEAT, &fr, 0);
}

/* The aggregator's event socket goes away for 30 events (the heartbeats go on, so the
 * sensor stays live and spools what it cannot send: events 9000-9029), then is bound again
 * at the same endpoint. */
static void s_pull_outage(s_fix_t *f)
{
    char *ep = zsock_bound_endpoint(f->pull);
    zsock_close(&f->pull);
    for (int i = 0; i < 30; i++) {
        s_heartbeat_columns(f);
        s_push_event(f, 9000 + i);
        s_wait_ms(10);
    }
    f->pull = zsock_new(f->ctx, ZMQ_PULL);
    assert_int_equal(zsock_bind(f->pull, ep, 0, (gid_t)-1), 0);
    xfree(ep);
}

/* While its PULL is gone the sensor spools, and the spool is rows although the aggregator
 * announces columns: a spool may be replayed to any aggregator. */
static void test_spool_is_rows_while_live_is_columns(void **state)
{
    s_fix_t *f = *state;
    s_live(f);
    assert_true(s_until_form(f, true, true));
    s_pull_outage(f);
    /* batches from the outage arrive (replayed, as rows); batches before the reconnect was
     * noticed were lost with the connection */
    bool replayed = false;
    for (int i = 0; i < 200 && !replayed; i++) {
        s_heartbeat_columns(f);
        Backstop__Frame *b = s_next_batch(f);
        wire_events_t it;
        wire_event_t e;
        wire_key_t k[WIRE_MAX_KEYS];
        wire_events_open(&it, b->events);
        while (wire_events_next(&it, &e, k))
            if (e.time_ms >= 9000 && e.time_ms < 9030) {
                assert_false(wire_batch_is_columnar(b->events));
                replayed = true;
            }
        wire_free(&b);
    }
    assert_true(replayed);
}

/* ---- the follower's defences ---- */

static uplink_stats_t s_stats(s_fix_t *f)
{
    uplink_stats_t st;
    uplink_stats(f->up, &st);
    return st;
}

/* Sends the sensor a changes-only reply frame of n changes at (epoch, seq); more: not the
 * last frame of the answer. */
static void s_reply_changes(s_fix_t *f, const zsock_meta_t *to, uint64_t epoch, uint64_t seq,
                            Backstop__DecisionUpdate **ups, size_t n, bool more)
{
    Backstop__SnapshotReply r = BACKSTOP__SNAPSHOT_REPLY__INIT;
    r.epoch = epoch;
    r.seq = seq;
    r.has_changes_only = 1;
    r.changes_only = 1;
    r.n_changes = n;
    r.changes = ups;
    if (more) {
        r.has_more = 1;
        r.more = 1;
    }
    Backstop__Frame fr;
    wire_frame_init(&fr, BACKSTOP__FRAME__BODY_SNAPSHOT_REPLY, &r);
    assert_int_equal(zsock_reply(f->router, to, &fr, 0), 0);
}

/* Sends the log lines of the uplink thread to f->dir/log from now on (s_teardown undoes it). */
static void s_log_capture(s_fix_t *f)
{
    char *path = xasprintf("%s/log", f->dir);
    FILE *fp = fopen(path, "w");
    assert_non_null(fp);
    f->logfd = dup(fileno(fp));
    msg_set_fd(f->logfd);
    fclose(fp);
    xfree(path);
}

/* How many lines of the captured log hold needle. */
static int s_log_count(s_fix_t *f, const char *needle)
{
    char *path = xasprintf("%s/log", f->dir);
    FILE *fp = fopen(path, "r");
    assert_non_null(fp);
    char line[2048];
    int n = 0;
    while (fgets(line, sizeof(line), fp))
        if (strstr(line, needle))
            n++;
    fclose(fp);
    xfree(path);
    return n;
}

static bool s_wait_gone(s_fix_t *f, const char *id)
{
    dcache_entry_t e;
    for (int i = 0; i < 1000; i++) {
        if (dcache_get(milter_engine_dcache(f->engine), id, &e) != 0)
            return true;
        s_wait_ms(5);
    }
    return false;
}

static uint64_t s_position(s_fix_t *f)
{
    uint64_t epoch, seq;
    dcache_position(milter_engine_dcache(f->engine), &epoch, &seq);
    return seq;
}

/* The line that says the spool is replayed counts what the replay sent: it said sent=N, the
 * events sent since the start, live ones included. */
static void test_spool_replayed_line_counts_the_replay(void **state)
{
    s_fix_t *f = *state;
    s_log_capture(f);
    s_live(f);
    assert_true(s_until_form(f, true, true)); /* live events first */
    for (int i = 0; i < 5; i++) {
        s_push_event(f, 7000 + i);
        Backstop__Frame *b = s_next_batch(f);
        wire_free(&b);
    }
    s_pull_outage(f);
    /* count the outage's events that arrive (some were lost with the connection) until the
     * replay is said done, then what is still on its way */
    uint64_t got = 0;
    zmq_pollitem_t it = {.socket = f->pull, .events = ZMQ_POLLIN};
    for (int i = 0; i < 400; i++) {
        s_heartbeat_columns(f);
        bool said = s_log_count(f, "uplink: spool=replayed") > 0;
        if (zmq_poll(&it, 1, said ? 200 : 20) != 1) {
            if (said)
                break;
            continue;
        }
        Backstop__Frame *b = NULL;
        assert_int_equal(zsock_recv(f->pull, 0, &b, NULL, NULL), 1);
        if (b->body_case == BACKSTOP__FRAME__BODY_EVENTS) {
            wire_events_t ev;
            wire_event_t e;
            wire_key_t k[WIRE_MAX_KEYS];
            wire_events_open(&ev, b->events);
            while (wire_events_next(&ev, &e, k))
                if (e.time_ms >= 9000 && e.time_ms < 9030)
                    got++;
        }
        wire_free(&b);
    }
    assert_true(got > 0);
    char *want = xasprintf("uplink: spool=replayed events=%" PRIu64 " frames=", got);
    assert_int_equal(s_log_count(f, want), 1);
    xfree(want);
}

/* A changes-since answer in two frames (the aggregator cuts one every 1024 changes, every
 * frame with the answer's seq): the first frame's changes, then the second's, a removal among
 * them; live at the answer's seq only after the second, and an update that came between the
 * two applied after them. */
static void test_changes_reply_in_two_frames(void **state)
{
    s_fix_t *f = *state;
    zsock_meta_t who;
    Backstop__Frame *rq = s_request(f, &who);
    wire_free(&rq);
    Backstop__Decision d1, d2, d3, d4, d7;
    s_decision(&d1, "D1", 11);
    s_decision(&d2, "D2", 12);
    s_decision(&d3, "D3", 13);
    s_decision(&d4, "D4", 14);
    s_decision(&d7, "D7", 17);
    Backstop__Decision *snap[] = {&d1};
    s_reply_full(f, &who, 7, 1, snap, 1);
    assert_true(s_wait_decision(f, "D1"));
    Backstop__DecisionUpdate u2;
    s_update(&u2, &d2, 7, 2);
    assert_true(s_publish_until(f, &u2, "D2"));

    /* a gap (6 after 2): the changes since 2 */
    Backstop__DecisionUpdate u6;
    s_update(&u6, &d4, 7, 6);
    Backstop__Frame fr;
    wire_frame_init(&fr, BACKSTOP__FRAME__BODY_UPDATE, &u6);
    zsock_publish(f->pub, ZSOCK_TOPIC_FLEET, &fr, 0);
    rq = s_request(f, &who);
    assert_int_equal(rq->snapshot_request->since_seq, 2);
    wire_free(&rq);

    Backstop__DecisionUpdate u3, u4, u5, u6b, u7;
    s_update(&u3, &d3, 7, 3);
    s_update(&u4, &d4, 7, 4);
    s_update(&u5, &d1, 7, 5);
    u5.kind = BACKSTOP__DECISION_UPDATE__KIND__REMOVE;
    u5.why = (char *)"revoked";
    s_update(&u6b, &d4, 7, 6);
    Backstop__DecisionUpdate *part1[] = {&u3, &u4};
    Backstop__DecisionUpdate *part2[] = {&u5, &u6b};
    s_reply_changes(f, &who, 7, 6, part1, 2, true);
    assert_true(s_wait_decision(f, "D4"));
    s_wait_ms(100);
    /* joining still, at what it applied, not the answer's seq */
    assert_false(s_stats(f).live);
    assert_int_equal(s_position(f), 4);
    /* an update meanwhile is held */
    s_update(&u7, &d7, 7, 7);
    wire_frame_init(&fr, BACKSTOP__FRAME__BODY_UPDATE, &u7);
    zsock_publish(f->pub, ZSOCK_TOPIC_FLEET, &fr, 0);
    s_wait_ms(100);
    dcache_entry_t e;
    assert_int_equal(dcache_get(milter_engine_dcache(f->engine), "D7", &e), -1);
    s_reply_changes(f, &who, 7, 6, part2, 2, false);
    assert_true(s_wait_gone(f, "D1"));
    assert_true(s_wait_decision(f, "D7"));
    for (int i = 0; i < 200 && !s_stats(f).live; i++)
        s_wait_ms(5);
    assert_true(s_stats(f).live);
    assert_int_equal(s_position(f), 7);
    assert_int_equal(dcache_get(milter_engine_dcache(f->engine), "D3", &e), 0);
    /* and no other request: nothing was missed */
    zmq_pollitem_t it = {.socket = f->router, .events = ZMQ_POLLIN};
    assert_int_equal(zmq_poll(&it, 1, 200), 0);
}

/* A refused snapshot (this sensor's key is another site's): the cache stays, the feed stays
 * joining, the refusal is logged; the join is tried again later. */
static void test_refused_snapshot_keeps_the_cache(void **state)
{
    s_fix_t *f = *state;
    s_log_capture(f);
    zsock_meta_t who;
    Backstop__Frame *rq = s_request(f, &who);
    wire_free(&rq);
    Backstop__Decision d1;
    s_decision(&d1, "D1", 11);
    Backstop__Decision *snap[] = {&d1};
    s_reply_full(f, &who, 7, 1, snap, 1);
    assert_true(s_wait_decision(f, "D1"));
    /* a new epoch: a full snapshot is asked for, and refused */
    Backstop__Heartbeat hb = BACKSTOP__HEARTBEAT__INIT;
    hb.epoch = 8;
    hb.seq = 1;
    Backstop__Frame fr;
    wire_frame_init(&fr, BACKSTOP__FRAME__BODY_HEARTBEAT, &hb);
    zsock_publish(f->pub, ZSOCK_TOPIC_HEARTBEAT, &fr, 0);
    rq = s_request(f, &who);
    wire_free(&rq);
    Backstop__SnapshotReply r = BACKSTOP__SNAPSHOT_REPLY__INIT;
    r.epoch = 8;
    r.seq = 1;
    r.has_refused = 1;
    r.refused = 1;
    wire_frame_init(&fr, BACKSTOP__FRAME__BODY_SNAPSHOT_REPLY, &r);
    assert_int_equal(zsock_reply(f->router, &who, &fr, 0), 0);
    for (int i = 0; i < 400 && s_stats(f).snapshots_refused == 0; i++)
        s_wait_ms(5);
    s_wait_ms(100);
    uplink_stats_t st = s_stats(f);
    assert_int_equal(st.snapshots_refused, 1);
    assert_false(st.live);
    dcache_entry_t e;
    assert_int_equal(dcache_get(milter_engine_dcache(f->engine), "D1", &e), 0);
    uint64_t epoch, seq;
    dcache_position(milter_engine_dcache(f->engine), &epoch, &seq);
    assert_int_equal(epoch, 7);
    assert_int_equal(seq, 1);
    assert_int_equal(s_log_count(f, "uplink: aggregator tcp://127.0.0.1:"), 1);
    assert_int_equal(s_log_count(f, "refused the snapshot: this sensor's key is not site "
                                    "site1's (sensor_secret_key_file?)"),
                     1);
    /* the join times out (heartbeat_timeout) and asks again */
    rq = s_request(f, &who);
    assert_false(rq->snapshot_request->has_since_seq);
    wire_free(&rq);
    assert_false(s_stats(f).live);
}

/* Decisions no aggregator makes, in a snapshot or an update, are refused and counted; an
 * update's seq still counts (no resync). */
static void test_decisions_not_enforceable_are_refused(void **state)
{
    s_fix_t *f = *state;
    s_log_capture(f);
    zsock_meta_t who;
    Backstop__Frame *rq = s_request(f, &who);
    wire_free(&rq);
    Backstop__Decision good, noid, badid, site, none, backwards, forever;
    s_decision(&good, "GOOD1", 11);
    s_decision(&noid, "", 12);
    s_decision(&badid, "B\nAD", 13);
    s_decision(&site, "SITE1", 14);
    site.scope = BACKSTOP__SCOPE__SITE;
    s_decision(&none, "NONE1", 15);
    none.action = BACKSTOP__ACTION__ACTION_NONE;
    s_decision(&backwards, "BACK1", 16);
    backwards.expires_ms = backwards.created_ms;
    s_decision(&forever, "EVER1", 17);
    forever.expires_ms = INT64_MAX;
    Backstop__Decision *snap[] = {&good, &noid, &badid, &site, &none, &backwards, &forever};
    s_reply_full(f, &who, 7, 1, snap, 7);
    assert_true(s_wait_decision(f, "GOOD1"));
    for (int i = 0; i < 200 && !s_stats(f).live; i++)
        s_wait_ms(5);
    assert_int_equal(dcache_count(milter_engine_dcache(f->engine)), 1);
    assert_int_equal(s_stats(f).decisions_refused, 6);

    /* 32 days: beyond the longest TTL and the day the clocks may differ */
    Backstop__Decision month, next;
    s_decision(&month, "MONTH1", 18);
    month.expires_ms = s_now_ms() + 32LL * 86400 * 1000;
    s_decision(&next, "NEXT1", 19);
    Backstop__DecisionUpdate u2, u3;
    s_update(&u2, &month, 7, 2);
    assert_true(s_publish_until_seq(f, &u2, 2));
    s_update(&u3, &next, 7, 3);
    assert_true(s_publish_until(f, &u3, "NEXT1"));
    dcache_entry_t e;
    assert_int_equal(dcache_get(milter_engine_dcache(f->engine), "MONTH1", &e), -1);
    assert_int_equal(s_stats(f).decisions_refused, 7);
    zmq_pollitem_t it = {.socket = f->router, .events = ZMQ_POLLIN};
    assert_int_equal(zmq_poll(&it, 1, 200), 0); /* no resync */
    /* logged once (a minute), with the count */
    assert_int_equal(s_log_count(f, "refused: "), 1);
}

/* The TTL bound reads the aggregator's clock where it can: a new 30-day decision from an
 * aggregator whose clock is ahead (a sensor behind), a rule's decision extended for weeks and
 * one extended just now by a clock ahead are taken; one created far ahead of any clock, or
 * lasting more than the TTL and the clocks' margin past its creation, is not. */
static void test_decision_ttl_across_clocks(void **state)
{
    s_fix_t *f = *state;
    zsock_meta_t who;
    Backstop__Frame *rq = s_request(f, &who);
    wire_free(&rq);
    const int64_t day = 86400LL * 1000, hour = 3600LL * 1000;
    int64_t now = s_now_ms();
    Backstop__Decision ahead, weeks, extended, future, long_ahead;
    s_decision(&ahead, "AHEAD1", 21);
    ahead.created_ms = now + 2 * hour;
    ahead.expires_ms = ahead.created_ms + 30 * day;
    s_decision(&weeks, "WEEKS1", 22);
    weeks.created_ms = now - 40 * day;
    weeks.expires_ms = now + hour;
    s_decision(&extended, "EXT1", 23);
    extended.created_ms = now - 10 * day;
    extended.expires_ms = now + 2 * hour + 30 * day;
    s_decision(&future, "FUTURE1", 24);
    future.created_ms = now + 100 * day;
    future.expires_ms = future.created_ms + hour;
    s_decision(&long_ahead, "LONG1", 25);
    long_ahead.created_ms = now + 2 * hour;
    long_ahead.expires_ms = long_ahead.created_ms + 31 * day + hour;
    Backstop__Decision *snap[] = {&future, &long_ahead, &ahead, &weeks, &extended};
    s_reply_full(f, &who, 9, 1, snap, 5);
    assert_true(s_wait_decision(f, "EXT1"));
    for (int i = 0; i < 200 && !s_stats(f).live; i++)
        s_wait_ms(5);
    dcache_entry_t e;
    assert_int_equal(dcache_get(milter_engine_dcache(f->engine), "AHEAD1", &e), 0);
    assert_int_equal(e.expires_ms, ahead.expires_ms);
    assert_int_equal(dcache_get(milter_engine_dcache(f->engine), "WEEKS1", &e), 0);
    assert_int_equal(dcache_get(milter_engine_dcache(f->engine), "FUTURE1", &e), -1);
    assert_int_equal(dcache_get(milter_engine_dcache(f->engine), "LONG1", &e), -1);
    assert_int_equal(dcache_count(milter_engine_dcache(f->engine)), 3);
    assert_int_equal(s_stats(f).decisions_refused, 2);

    /* the same by update: a new 30-day decision from a clock 2 h ahead is enforced */
    Backstop__Decision late;
    s_decision(&late, "LATE1", 26);
    late.created_ms = s_now_ms() + 2 * hour;
    late.expires_ms = late.created_ms + 30 * day;
    Backstop__DecisionUpdate u;
    s_update(&u, &late, 9, 2);
    assert_true(s_publish_until(f, &u, "LATE1"));
    assert_int_equal(s_stats(f).decisions_refused, 2);
}

/* Publishes an update whose frame is padded to about pad bytes with an unknown field (which
 * protobuf keeps in memory). */
static void s_publish_padded(s_fix_t *f, uint64_t epoch, uint64_t seq, size_t pad)
{
    Backstop__Decision d;
    s_decision(&d, "PAD1", 77);
    Backstop__DecisionUpdate u;
    s_update(&u, &d, epoch, seq);
    Backstop__Frame fr;
    wire_frame_init(&fr, BACKSTOP__FRAME__BODY_UPDATE, &u);
    size_t len = 0;
    uint8_t *buf = wire_pack(&fr, &len, NULL);
    assert_non_null(buf);
    size_t plen = pad - len - 8;
    uint8_t *out = xmalloc(len + plen + 16);
    memcpy(out, buf, len);
    size_t o = len;
    out[o++] = (((100 << 3) | 2) & 0x7f) | 0x80; /* field 100, length-delimited */
    out[o++] = ((100 << 3) | 2) >> 7;
    for (size_t v = plen;; v >>= 7) {
        out[o++] = (uint8_t)((v & 0x7f) | (v >= 0x80 ? 0x80 : 0));
        if (v < 0x80)
            break;
    }
    memset(out + o, 'A', plen);
    o += plen;
    zmq_send(f->pub, "F", 1, ZMQ_SNDMORE);
    zmq_send(f->pub, out, o, 0);
    xfree(out);
    xfree(buf);
}

/* Updates held while joining are bounded in bytes: padded 1 MB frames past 16 MiB are
 * dropped, and after the join's answer the sensor asks for the changes since it. */
static void test_held_updates_are_bounded_in_bytes(void **state)
{
    s_fix_t *f = *state;
    zsock_meta_t who;
    Backstop__Frame *rq = s_request(f, &who);
    wire_free(&rq);
    for (uint64_t seq = 2; seq < 200 && s_stats(f).join_overflows == 0; seq++) {
        s_publish_padded(f, 7, seq, 1000000);
        s_wait_ms(10);
    }
    uplink_stats_t st = s_stats(f);
    assert_int_equal(st.join_overflows, 1);
    assert_true(st.queued_bytes_peak > 8u << 20);
    assert_true(st.queued_bytes_peak <= 16u << 20);
    for (int i = 0; i < 20; i++) /* more of them change nothing */
        s_publish_padded(f, 7, 300 + (uint64_t)i, 1000000);
    Backstop__Decision d1;
    s_decision(&d1, "D1", 11);
    Backstop__Decision *snap[] = {&d1};
    s_reply_full(f, &who, 7, 1, snap, 1);
    assert_true(s_wait_decision(f, "D1"));
    /* resync: the changes since the snapshot's seq */
    rq = s_request(f, &who);
    assert_true(rq->snapshot_request->has_since_seq);
    assert_int_equal(rq->snapshot_request->since_seq, 1);
    wire_free(&rq);
    assert_false(s_stats(f).live);
    s_reply_changes(f, &who, 7, 1, NULL, 0, false);
    /* padded frames still on their way may overflow this join too, or look like a gap: each
     * request is answered until the flood is over and the sensor live */
    for (int i = 0; i < 500 && !s_stats(f).live; i++) {
        zmq_pollitem_t it = {.socket = f->router, .events = ZMQ_POLLIN};
        if (zmq_poll(&it, 1, 10) == 1) {
            rq = s_request(f, &who);
            wire_free(&rq);
            s_reply_changes(f, &who, 7, 1, NULL, 0, false);
        }
    }
    assert_true(s_stats(f).live);
    assert_true(s_stats(f).queued_bytes_peak <= 16u << 20);
}

/* A snapshot endpoint and a feed of two aggregators (two epochs): the sensor does not flap
 * live <-> joining twice a second with a line each time: one warning naming both endpoints,
 * the requests wait longer and longer, and the repeated lines are said once a minute. The
 * epochs are logged in hex. */
static void test_snapshot_and_feed_of_two_epochs_do_not_flap(void **state)
{
    s_fix_t *f = *state;
    s_log_capture(f);
    Backstop__Decision d1;
    s_decision(&d1, "D1", 11);
    Backstop__Decision *snap[] = {&d1};
    int requests = 0;
    for (int i = 0; i < 225; i++) { /* 4.5 s */
        Backstop__Heartbeat hb = BACKSTOP__HEARTBEAT__INIT;
        hb.epoch = 0xaaaa;
        hb.seq = 1;
        Backstop__Frame fr;
        wire_frame_init(&fr, BACKSTOP__FRAME__BODY_HEARTBEAT, &hb);
        zsock_publish(f->pub, ZSOCK_TOPIC_HEARTBEAT, &fr, 0);
        zmq_pollitem_t it = {.socket = f->router, .events = ZMQ_POLLIN};
        while (zmq_poll(&it, 1, 0) == 1) {
            zsock_meta_t who;
            Backstop__Frame *rq = NULL;
            assert_int_equal(zsock_recv(f->router, 0, &rq, &who, NULL), 1);
            wire_free(&rq);
            s_reply_full(f, &who, 0xbbbb, 1, snap, 1);
            requests++;
        }
        s_wait_ms(20);
    }
    /* 3 at once, then after 1 s and 2 s (and maybe 4 s) */
    assert_true(requests >= 4);
    assert_true(requests <= 7);
    assert_int_equal(s_log_count(f, "is not the heartbeat's epoch=000000000000aaaa"), 1);
    assert_int_equal(s_log_count(f, "snapshot epoch=000000000000bbbb from tcp://"), 1);
    assert_true(s_log_count(f, "uplink: state=joining reason=epoch") <= 2);
    assert_true(s_log_count(f, "uplink: state=live") <= 3);
    assert_true(s_log_count(f, "uplink: state=live aggregator=primary epoch=000000000000bbbb") >=
                1);
}

/* Publishes a heartbeat of (epoch, seq) announcing interval_ms (0: none, as an older
 * aggregator), a few times over 30 ms: PUB drops what a subscription has not reached yet,
 * and a repeated heartbeat is the same news. */
static void s_heartbeat(s_fix_t *f, uint64_t epoch, uint64_t seq, uint32_t interval_ms)
{
    Backstop__Heartbeat hb = BACKSTOP__HEARTBEAT__INIT;
    hb.epoch = epoch;
    hb.seq = seq;
    hb.time_ms = s_now_ms();
    hb.has_interval_ms = interval_ms != 0;
    hb.interval_ms = interval_ms;
    for (int i = 0; i < 3; i++) {
        Backstop__Frame fr;
        wire_frame_init(&fr, BACKSTOP__FRAME__BODY_HEARTBEAT, &hb);
        zsock_publish(f->pub, ZSOCK_TOPIC_HEARTBEAT, &fr, 0);
        s_wait_ms(10);
    }
}

/* Waits up to ms for the feed to be live (want) or not; true when it was. */
static bool s_wait_live(s_fix_t *f, bool want, int ms)
{
    for (int i = 0; i < ms / 10; i++) {
        if (s_stats(f).live == want)
            return true;
        s_wait_ms(10);
    }
    return s_stats(f).live == want;
}

/* An aggregator whose heartbeat_interval (3.5 s) is longer than heartbeat_timeout (3 s): the
 * sensor flapped between joining and live every interval, with no word. It judges silence by
 * 3 of the intervals the heartbeat announces and says once that its timeout is too short. */
static void test_silence_follows_the_announced_heartbeat_interval(void **state)
{
    s_fix_t *f = *state;
    s_log_capture(f);
    assert_int_equal(f->cfg->heartbeat_timeout_ms, 3000);
    zsock_meta_t who;
    Backstop__Frame *rq = s_request(f, &who);
    wire_free(&rq);
    s_reply_full(f, &who, 7, 0, NULL, 0);
    assert_true(s_wait_live(f, true, 5000));
    for (int beat = 0; beat < 3; beat++) { /* 7 s: two gaps of 3.5 s */
        s_heartbeat(f, 7, 0, 3500);
        for (int i = 0; i < 347; i++) {
            assert_true(s_stats(f).live);
            s_wait_ms(10);
        }
    }
    assert_int_equal(s_log_count(f, "uplink: state=joining reason=silence"), 0);
    assert_int_equal(s_log_count(f,
                                 "warning: uplink: aggregator=primary heartbeat_interval=3500ms: "
                                 "heartbeat_timeout=3000ms is shorter than 3 of its "
                                 "heartbeats; the feed counts as silent after 10500ms"),
                     1);
    assert_int_equal(s_stats(f).requests, 1);
}

/* A heartbeat without an interval (an older aggregator) leaves heartbeat_timeout alone: 3 s of
 * silence after it and the sensor rejoins, as before; an interval of 1 s changes nothing. */
static void test_silence_without_an_announced_interval_is_heartbeat_timeout(void **state)
{
    s_fix_t *f = *state;
    s_log_capture(f);
    zsock_meta_t who;
    Backstop__Frame *rq = s_request(f, &who);
    wire_free(&rq);
    s_reply_full(f, &who, 7, 0, NULL, 0);
    assert_true(s_wait_live(f, true, 5000));
    s_heartbeat(f, 7, 0, 1000);
    s_wait_ms(500);
    s_heartbeat(f, 7, 0, 0);
    assert_true(s_wait_live(f, true, 10));
    assert_false(s_wait_live(f, false, 2300)); /* not before 3 s */
    assert_true(s_wait_live(f, false, 1500));
    assert_int_equal(s_log_count(f, "uplink: state=joining reason=silence"), 1);
    assert_int_equal(s_log_count(f, "warning: uplink: aggregator=primary heartbeat_interval="), 0);
}

/* An empty full snapshot reply at (epoch, seq) whose aggregator announces interval_ms as its
 * heartbeat_interval (0: no such field, as an older aggregator). */
static void s_reply_interval(s_fix_t *f, const zsock_meta_t *to, uint64_t epoch, uint64_t seq,
                             uint32_t interval_ms)
{
    Backstop__SnapshotReply r = BACKSTOP__SNAPSHOT_REPLY__INIT;
    r.epoch = epoch;
    r.seq = seq;
    r.has_heartbeat_interval_ms = interval_ms != 0;
    r.heartbeat_interval_ms = interval_ms;
    Backstop__Frame fr;
    wire_frame_init(&fr, BACKSTOP__FRAME__BODY_SNAPSHOT_REPLY, &r);
    assert_int_equal(zsock_reply(f->router, to, &fr, 0), 0);
}

/* Live on a reply that says interval_ms, then not a word from the aggregator: the sensor is
 * still live after quiet_ms and has given the aggregator up (reason=silence) within
 * quiet_ms + grace_ms more. */
static void s_reply_then_silence(s_fix_t *f, uint32_t interval_ms, int quiet_ms, int grace_ms)
{
    zsock_meta_t who;
    Backstop__Frame *rq = s_request(f, &who);
    wire_free(&rq);
    s_reply_interval(f, &who, 7, 0, interval_ms);
    assert_true(s_wait_live(f, true, 5000));
    assert_false(s_wait_live(f, false, quiet_ms));
    assert_true(s_wait_live(f, false, grace_ms));
    assert_int_equal(s_log_count(f, "uplink: state=joining reason=silence"), 1);
}

/* An aggregator that dies between its snapshot reply and its first heartbeat: the reply says
 * its heartbeat_interval (1 s), so the sensor gives it up after max(heartbeat_timeout, 3 s) =
 * 3 s of silence, not after the 10 s it allowed an aggregator whose interval it did not know
 * (on_no_aggregator applies that much sooner). */
static void test_reply_interval_judges_silence_before_the_first_heartbeat(void **state)
{
    s_fix_t *f = *state;
    s_log_capture(f);
    assert_int_equal(f->cfg->heartbeat_timeout_ms, 3000);
    /* not before 3 s (2.5 s after the test saw it live); by 3 s plus a loaded machine's margin
     * (the loop looks every 200 ms at most), far from 10 s */
    s_reply_then_silence(f, 1000, 2500, 2500);
    assert_int_equal(s_log_count(f, "warning: uplink: aggregator=primary heartbeat_interval="), 0);
}

/* The interval of the reply is what counts, not heartbeat_timeout alone: 2 s announced, and
 * the sensor waits 3 of them (6 s) before it gives the aggregator up, and says once that its
 * heartbeat_timeout is shorter, as for a heartbeat's announcement. */
static void test_reply_interval_longer_than_the_timeout(void **state)
{
    s_fix_t *f = *state;
    s_log_capture(f);
    s_reply_then_silence(f, 2000, 5500, 2500);
    assert_int_equal(s_log_count(f,
                                 "warning: uplink: aggregator=primary heartbeat_interval=2000ms: "
                                 "heartbeat_timeout=3000ms is shorter than 3 of its "
                                 "heartbeats; the feed counts as silent after 6000ms"),
                     1);
}

/* A reply without the field (an older aggregator) says nothing of the interval: before its
 * first heartbeat the aggregator may take the longest interval one takes, 10 s, as before. */
static void test_reply_without_interval_keeps_the_ten_seconds(void **state)
{
    s_fix_t *f = *state;
    s_log_capture(f);
    s_reply_then_silence(f, 0, 9500, 2500);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_snapshot_updates_gap_and_epoch, s_setup, s_teardown),
        cmocka_unit_test_setup_teardown(test_heartbeat_behind_in_the_same_epoch_resyncs_in_full,
                                        s_setup, s_teardown),
        cmocka_unit_test_setup_teardown(test_skip_keeps_sequence_without_resync, s_setup,
                                        s_teardown),
        cmocka_unit_test_setup_teardown(test_events_arrive_as_batches, s_setup, s_teardown),
        cmocka_unit_test_setup_teardown(test_key_text_once_after_the_feature_bit, s_setup,
                                        s_teardown),
        cmocka_unit_test_setup_teardown(test_keys_only_of_the_scopes_the_aggregator_reads, s_setup,
                                        s_teardown),
        cmocka_unit_test_setup_teardown(test_events_as_columns_only_after_the_feature_bit, s_setup,
                                        s_teardown),
        cmocka_unit_test_setup_teardown(test_spool_is_rows_while_live_is_columns, s_setup,
                                        s_teardown),
        cmocka_unit_test_setup_teardown(test_spool_replayed_line_counts_the_replay, s_setup,
                                        s_teardown),
        cmocka_unit_test_setup_teardown(test_changes_reply_in_two_frames, s_setup, s_teardown),
        cmocka_unit_test_setup_teardown(test_refused_snapshot_keeps_the_cache, s_setup, s_teardown),
        cmocka_unit_test_setup_teardown(test_decisions_not_enforceable_are_refused, s_setup,
                                        s_teardown),
        cmocka_unit_test_setup_teardown(test_decision_ttl_across_clocks, s_setup, s_teardown),
        cmocka_unit_test_setup_teardown(test_held_updates_are_bounded_in_bytes, s_setup,
                                        s_teardown),
        cmocka_unit_test_setup_teardown(test_snapshot_and_feed_of_two_epochs_do_not_flap, s_setup,
                                        s_teardown),
        cmocka_unit_test_setup_teardown(test_silence_follows_the_announced_heartbeat_interval,
                                        s_setup, s_teardown),
        cmocka_unit_test_setup_teardown(
            test_silence_without_an_announced_interval_is_heartbeat_timeout, s_setup, s_teardown),
        cmocka_unit_test_setup_teardown(
            test_reply_interval_judges_silence_before_the_first_heartbeat, s_setup, s_teardown),
        cmocka_unit_test_setup_teardown(test_reply_interval_longer_than_the_timeout, s_setup,
                                        s_teardown),
        cmocka_unit_test_setup_teardown(test_reply_without_interval_keeps_the_ten_seconds, s_setup,
                                        s_teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
