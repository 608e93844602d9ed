/*
 * test_peer - the follower of the failover peer (PROTOCOL.md 4.2, 4.3, 4.6): the join
 * request after the first heartbeat, full and changes-only replies, updates in sequence,
 * duplicates, echoes, gaps and SKIPs, silence and join timeouts, epoch changes, the
 * reconciliation of a full snapshot (not for a new epoch; a fresh store's copies taken
 * back), updates queued while joining, bad frames and refusals; and the allowlist entries
 * and sites (PROTOCOL.md 4.7): the SharedRequest when the heartbeat's digest is new, the
 * SharedReply's entries handed to shared_apply.
 *
 * The request side is real: a ROUTER bound at inproc://peer-snap receives what the peer's
 * DEALER sends. Everything the peer would publish is handed over with peer_feed(), so the
 * order of frames is the test's. No sleeps: the one wait is a zmq_poll that returns as soon
 * as the request is there; its timeout only keeps a broken build from hanging.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include <errno.h>
#include <zmq.h>

#include "allowlist.h"
#include "decisions.h"
#include "msg.h"
#include "peer.h"
#include "publish.h"
#include "shared.h"
#include "wire.h"
#include "xalloc.h"
#include "zsock.h"

#define SEC   1000LL
#define MIN   (60 * SEC)
#define HOUR  (60 * MIN)
#define T0    (1700000000LL * SEC) /* wall clock of every change */
#define MONO0 (500 * SEC)          /* monotonic clock of every frame: never silent */

#define OUR_EPOCH   7ULL                  /* our table's epoch */
#define PEER_EPOCH  0xE1E1E1E1E1E1E1E1ULL /* the peer's */
#define PEER_EPOCH2 0xE2E2E2E2E2E2E2E2ULL /* the peer's after it lost its log */

#define EP_PUB  "inproc://peer-pub"  /* nobody binds it: the SUB just waits */
#define EP_SNAP "inproc://peer-snap" /* our ROUTER, standing in for the peer's */

#define BOUND_MS 5000 /* upper bound of any wait; never reached when things work */

/* Ids as the peer makes them (canonical Crockford base32). */
#define ID_A "AB12CD34"
#define ID_B "EF56GH78"
#define ID_C "JK90MN12"
#define ID_D "PQ34RS56"

/* Most records shared_apply keeps for a test to look at. */
#define S_SHARED_MAX 8

/* What the test's shared_apply was handed. Its answer is by who made the change: "refuse"
 * -1 (refused), "same" 0 (nothing to do), anyone else 1 (applied). */
typedef struct {
    size_t calls;                   /* calls so far */
    shared_rec_t got[S_SHARED_MAX]; /* the first S_SHARED_MAX records handed over */
} s_shared_log_t;

typedef struct {
    void *ctx;             /* a context of its own per test */
    void *router;          /* the peer's snapshot socket */
    decisions_t *table;    /* our decision table */
    peer_t *peer;          /* under test */
    int64_t mono;          /* monotonic clock of the frames fed (MONO0 unless a test moves it) */
    s_shared_log_t shared; /* what shared_apply was handed (a follower made with it) */
} s_fx_t;

/* peer_config_t.shared_apply of the tests: records r, answers by r->who (s_shared_log_t). */
static int s_shared_apply(void *arg, const shared_rec_t *r)
{
    s_shared_log_t *log = arg;
    if (log->calls < S_SHARED_MAX)
        log->got[log->calls] = *r;
    log->calls++;
    if (strcmp(r->who, "refuse") == 0)
        return -1;
    return strcmp(r->who, "same") == 0 ? 0 : 1;
}

/* A new follower (the old one destroyed) with no position; fresh: our store is new;
 * shared: it takes the peer's allowlist and sites (s_shared_apply). */
static void s_peer_make(s_fx_t *fx, bool fresh, bool shared)
{
    peer_config_t cfg = {
        .decisions = EP_PUB,
        .snapshot = EP_SNAP,
        .server_public = NULL,
        .keys = NULL,
        .name = "test",
        .silence_ms = 3000,
        .fresh = fresh,
        .shared_apply = shared ? s_shared_apply : NULL,
        .shared_arg = shared ? &fx->shared : NULL,
    };
    peer_destroy(&fx->peer);
    fx->peer = peer_new(fx->ctx, &cfg, 0, 0);
    assert_non_null(fx->peer);
}

/* A new follower (the old one destroyed) with no position; fresh: our store is new. */
static void s_peer_renew(s_fx_t *fx, bool fresh)
{
    s_peer_make(fx, fresh, false);
}

static int s_setup(void **state)
{
    s_fx_t *fx = xcalloc(1, sizeof(*fx));
    fx->ctx = zmq_ctx_new();
    assert_non_null(fx->ctx);
    /* bound before the peer's DEALER connects: it has ZMQ_IMMEDIATE */
    fx->router = zsock_new(fx->ctx, ZMQ_ROUTER);
    assert_non_null(fx->router);
    assert_int_equal(zsock_bind(fx->router, EP_SNAP, 0, (gid_t)-1), 0);
    fx->table = decisions_new(OUR_EPOCH, 0, 0);
    fx->mono = MONO0;
    s_peer_renew(fx, false);
    *state = fx;
    return 0;
}

static int s_teardown(void **state)
{
    s_fx_t *fx = *state;
    peer_destroy(&fx->peer);
    zsock_close(&fx->router);
    decisions_destroy(&fx->table);
    zmq_ctx_term(fx->ctx);
    xfree(fx);
    return 0;
}

/* ---- what the peer sends ---- */

/* A decision as the peer publishes it: its own id, seq and epoch. */
static decision_t s_peer_decision(const char *id, uint64_t fp)
{
    decision_t d = {0};
    decisions_strlcpy(d.id, id, DECISION_ID_LEN);
    d.scope = BS_SCOPE_SUBJECT;
    d.fp = fp;
    decisions_strlcpy(d.value, "cheap pills", DECISION_VALUE_MAX);
    d.action = BS_ACTION_REJECT;
    d.reach = BS_REACH_FLEET;
    decisions_strlcpy(d.reason, "wave", DECISION_REASON_MAX);
    d.created_ms = T0 - MIN;
    d.expires_ms = T0 + HOUR;
    d.origin = BS_ORIGIN_RULE;
    decisions_strlcpy(d.origin_who, "fleet_subject", DECISION_NAME_MAX);
    d.seq = 900;
    d.epoch = PEER_EPOCH;
    return d;
}

/* A decision of our own, made here by a rule; its id into id. */
static void s_own_decision(s_fx_t *fx, uint64_t fp, char *id)
{
    decision_t d = s_peer_decision("", fp);
    d.created_ms = 0;
    const decision_t *got = NULL;
    assert_int_equal(decisions_propose(fx->table, &d, MIN, T0, &got), DECISIONS_CREATED);
    strcpy(id, got->id);
}

/* A change of the peer's to d. */
static decision_change_t s_change(decision_kind_t kind, decision_why_t why, uint64_t epoch,
                                  uint64_t seq, const decision_t *d)
{
    decision_change_t c = {0};
    c.kind = kind;
    c.why = why;
    c.epoch = epoch;
    c.seq = seq;
    c.decision = *d;
    return c;
}

static int s_feed(s_fx_t *fx, Backstop__Frame__BodyCase body_case, void *body, bool feed)
{
    Backstop__Frame f;
    wire_frame_init(&f, body_case, body);
    return peer_feed(fx->peer, fx->table, &f, feed, fx->mono, T0);
}

/* Feeds a heartbeat of the peer at (epoch, seq). */
static void s_heartbeat(s_fx_t *fx, uint64_t epoch, uint64_t seq)
{
    Backstop__Heartbeat hb = BACKSTOP__HEARTBEAT__INIT;
    hb.epoch = epoch;
    hb.seq = seq;
    hb.time_ms = T0;
    hb.has_features = 1;
    hb.features = WIRE_FEATURE_COLUMNS;
    assert_int_equal(s_feed(fx, BACKSTOP__FRAME__BODY_HEARTBEAT, &hb, true), 0);
}

/* Feeds a heartbeat of the peer at (epoch, seq) that announces its heartbeat interval. */
static void s_heartbeat_interval(s_fx_t *fx, uint64_t epoch, uint64_t seq, uint32_t interval_ms)
{
    Backstop__Heartbeat hb = BACKSTOP__HEARTBEAT__INIT;
    hb.epoch = epoch;
    hb.seq = seq;
    hb.time_ms = T0;
    hb.has_features = 1;
    hb.features = WIRE_FEATURE_COLUMNS;
    hb.has_interval_ms = 1;
    hb.interval_ms = interval_ms;
    assert_int_equal(s_feed(fx, BACKSTOP__FRAME__BODY_HEARTBEAT, &hb, true), 0);
}

/* Feeds a heartbeat of the peer at (epoch, seq) that carries the digest of its allowlist
 * and sites. */
static void s_heartbeat_digest(s_fx_t *fx, uint64_t epoch, uint64_t seq, uint64_t digest)
{
    Backstop__Heartbeat hb = BACKSTOP__HEARTBEAT__INIT;
    hb.epoch = epoch;
    hb.seq = seq;
    hb.time_ms = T0;
    hb.has_features = 1;
    hb.features = WIRE_FEATURE_COLUMNS;
    hb.has_shared_digest = 1;
    hb.shared_digest = digest;
    assert_int_equal(s_feed(fx, BACKSTOP__FRAME__BODY_HEARTBEAT, &hb, true), 0);
}

/* Feeds a SharedReply of n wire entries (more: not the last part of the answer); returns
 * what peer_feed() returned. */
static int s_shared_reply_pb(s_fx_t *fx, uint64_t digest, bool more, Backstop__SharedEntry *pbs,
                             size_t n)
{
    Backstop__SharedEntry **ep = xcalloc(n + 1, sizeof(*ep));
    for (size_t i = 0; i < n; i++)
        ep[i] = &pbs[i];
    Backstop__SharedReply r = BACKSTOP__SHARED_REPLY__INIT;
    r.digest = digest;
    r.n_entries = n;
    r.entries = n ? ep : NULL;
    if (more) {
        r.has_more = 1;
        r.more = 1;
    }
    int rc = s_feed(fx, BACKSTOP__FRAME__BODY_SHARED_REPLY, &r, false);
    xfree(ep);
    return rc;
}

/* Feeds a SharedReply of n records. */
static int s_shared_reply(s_fx_t *fx, uint64_t digest, bool more, const shared_rec_t *recs,
                          size_t n)
{
    Backstop__SharedEntry *pbs = xcalloc(n + 1, sizeof(*pbs));
    for (size_t i = 0; i < n; i++)
        shared_rec_write(&recs[i], &pbs[i]);
    int rc = s_shared_reply_pb(fx, digest, more, pbs, n);
    xfree(pbs);
    return rc;
}

/* An allowlist entry of the peer's for an address, made by who. */
static shared_rec_t s_shared_ip(const char *text, const char *who)
{
    allow_entry_t e;
    memset(&e, 0, sizeof(e));
    assert_int_equal(allowlist_entry_parse(&e, ALLOW_IP, text), 0);
    decisions_strlcpy(e.who, who, DECISION_NAME_MAX);
    decisions_strlcpy(e.reason, "our relay", DECISION_REASON_MAX);
    e.created_ms = T0 - MIN;
    shared_rec_t r;
    shared_rec_allow(&r, &e);
    return r;
}

/* Feeds change c as the peer publishes it; returns what peer_feed() returned. */
static int s_update(s_fx_t *fx, const decision_change_t *c)
{
    publish_pb_t pb;
    Backstop__DecisionUpdate u;
    publish_pb_update(&u, &pb, c);
    return s_feed(fx, BACKSTOP__FRAME__BODY_UPDATE, &u, true);
}

/* Feeds a SKIP at (epoch, seq): another site's local change went by. */
static int s_skip(s_fx_t *fx, uint64_t epoch, uint64_t seq)
{
    decision_t d = s_peer_decision(ID_D, 99);
    d.reach = BS_REACH_LOCAL;
    decisions_strlcpy(d.site, "site1", DECISION_NAME_MAX);
    decision_change_t c = s_change(DECISION_UPSERT, DECISION_WHY_NEW, epoch, seq, &d);
    publish_pb_t pb;
    Backstop__DecisionUpdate u;
    publish_pb_skip(&u, &pb, &c);
    return s_feed(fx, BACKSTOP__FRAME__BODY_UPDATE, &u, true);
}

/* Feeds a full snapshot reply (one frame) of n decisions at (epoch, seq). */
static int s_full_reply(s_fx_t *fx, uint64_t epoch, uint64_t seq, const decision_t *ds, size_t n)
{
    publish_pb_t *pb = xcalloc(n + 1, sizeof(*pb));
    Backstop__Decision **dp = xcalloc(n + 1, sizeof(*dp));
    for (size_t i = 0; i < n; i++) {
        publish_pb_fill(&pb[i], &ds[i], false);
        dp[i] = &pb[i].d;
    }
    Backstop__SnapshotReply r = BACKSTOP__SNAPSHOT_REPLY__INIT;
    r.epoch = epoch;
    r.seq = seq;
    r.n_decisions = n;
    r.decisions = n ? dp : NULL;
    int rc = s_feed(fx, BACKSTOP__FRAME__BODY_SNAPSHOT_REPLY, &r, false);
    xfree(dp);
    xfree(pb);
    return rc;
}

/* Feeds one frame of a changes-only reply of n changes at (epoch, seq); more: not the last. */
static int s_changes_reply_part(s_fx_t *fx, uint64_t epoch, uint64_t seq,
                                const decision_change_t *cs, size_t n, bool more)
{
    publish_pb_t *pb = xcalloc(n + 1, sizeof(*pb));
    Backstop__DecisionUpdate *ups = xcalloc(n + 1, sizeof(*ups));
    Backstop__DecisionUpdate **up = xcalloc(n + 1, sizeof(*up));
    for (size_t i = 0; i < n; i++) {
        publish_pb_update(&ups[i], &pb[i], &cs[i]);
        pb[i].d.evidence = NULL;
        up[i] = &ups[i];
    }
    Backstop__SnapshotReply r = BACKSTOP__SNAPSHOT_REPLY__INIT;
    r.epoch = epoch;
    r.seq = seq;
    r.has_changes_only = 1;
    r.changes_only = 1;
    r.n_changes = n;
    r.changes = n ? up : NULL;
    if (more) {
        r.has_more = 1;
        r.more = 1;
    }
    int rc = s_feed(fx, BACKSTOP__FRAME__BODY_SNAPSHOT_REPLY, &r, false);
    xfree(up);
    xfree(ups);
    xfree(pb);
    return rc;
}

/* Feeds a changes-only reply of n changes at (epoch, seq), in one frame. */
static int s_changes_reply(s_fx_t *fx, uint64_t epoch, uint64_t seq, const decision_change_t *cs,
                           size_t n)
{
    return s_changes_reply_part(fx, epoch, seq, cs, n, false);
}

/* Feeds a refused reply at (epoch, seq): no decisions, refused set (PROTOCOL.md 1.3). */
static int s_refused_reply(s_fx_t *fx, uint64_t epoch, uint64_t seq)
{
    Backstop__SnapshotReply r = BACKSTOP__SNAPSHOT_REPLY__INIT;
    r.epoch = epoch;
    r.seq = seq;
    r.has_refused = 1;
    r.refused = 1;
    return s_feed(fx, BACKSTOP__FRAME__BODY_SNAPSHOT_REPLY, &r, false);
}

/* ---- what the peer receives ---- */

/* The next SnapshotRequest the peer's ROUTER got (wire_free it). */
static Backstop__Frame *s_request(s_fx_t *fx)
{
    zmq_pollitem_t item = {fx->router, 0, ZMQ_POLLIN, 0};
    assert_int_equal(zmq_poll(&item, 1, BOUND_MS), 1);
    Backstop__Frame *f = NULL;
    zsock_meta_t meta;
    wire_err_t err;
    assert_int_equal(zsock_recv(fx->router, ZMQ_DONTWAIT, &f, &meta, &err), 1);
    assert_true(meta.id_len > 0);
    assert_int_equal(f->body_case, BACKSTOP__FRAME__BODY_SNAPSHOT_REQUEST);
    const Backstop__SnapshotRequest *rq = f->snapshot_request;
    /* what every request of the peer's says (PROTOCOL.md 4.6) */
    assert_true(rq->has_all_sites);
    assert_true(rq->all_sites);
    assert_string_equal(rq->site, PUBLISH_ALL_SITES);
    assert_string_equal(rq->sensor, "test");
    return f;
}

/* Receives a request that must ask for a full snapshot. */
static void s_expect_full_request(s_fx_t *fx)
{
    Backstop__Frame *f = s_request(fx);
    assert_false(f->snapshot_request->has_epoch);
    assert_false(f->snapshot_request->has_since_seq);
    wire_free(&f);
}

/* Receives a request that must ask for the changes after (epoch, since_seq). */
static void s_expect_changes_request(s_fx_t *fx, uint64_t epoch, uint64_t since_seq)
{
    Backstop__Frame *f = s_request(fx);
    assert_true(f->snapshot_request->has_epoch);
    assert_true(f->snapshot_request->epoch == epoch);
    assert_true(f->snapshot_request->has_since_seq);
    assert_int_equal(f->snapshot_request->since_seq, since_seq);
    wire_free(&f);
}

/* Nothing is waiting on the ROUTER (inproc delivers at once: no wait needed). */
static void s_expect_no_request(s_fx_t *fx)
{
    Backstop__Frame *f = NULL;
    errno = 0;
    int rc = zsock_recv(fx->router, ZMQ_DONTWAIT, &f, NULL, NULL);
    if (rc >= 0)
        wire_free(&f);
    assert_int_equal(rc, -1);
    assert_int_equal(errno, EAGAIN);
}

/* Receives a SharedRequest from the peer's DEALER. */
static void s_expect_shared_request(s_fx_t *fx)
{
    zmq_pollitem_t item = {fx->router, 0, ZMQ_POLLIN, 0};
    assert_int_equal(zmq_poll(&item, 1, BOUND_MS), 1);
    Backstop__Frame *f = NULL;
    zsock_meta_t meta;
    wire_err_t err;
    assert_int_equal(zsock_recv(fx->router, ZMQ_DONTWAIT, &f, &meta, &err), 1);
    assert_true(meta.id_len > 0);
    assert_int_equal(f->body_case, BACKSTOP__FRAME__BODY_SHARED_REQUEST);
    assert_non_null(f->shared_request->name);
    assert_string_equal(f->shared_request->name, "test");
    wire_free(&f);
}

/* ---- steps ---- */

/* Takes every pending change of our table; returns how many, the last into *last. */
static size_t s_take_all(s_fx_t *fx, decision_change_t *last)
{
    size_t n = 0;
    decision_change_t c;
    while (decisions_take_change(fx->table, &c)) {
        if (last)
            *last = c;
        n++;
    }
    return n;
}

/* The first join: sockets, heartbeat, request, and a full reply of n decisions at
 * (PEER_EPOCH, seq); the table's changes are taken. Live afterwards. */
static void s_join(s_fx_t *fx, uint64_t seq, const decision_t *ds, size_t n)
{
    peer_tick(fx->peer, MONO0);
    s_heartbeat(fx, PEER_EPOCH, seq);
    s_expect_full_request(fx);
    assert_int_equal(s_full_reply(fx, PEER_EPOCH, seq, ds, n), (int)n);
    assert_true(peer_stats(fx->peer)->live);
    s_take_all(fx, NULL);
}

static void s_assert_position(s_fx_t *fx, uint64_t epoch, uint64_t seq)
{
    uint64_t e = 1, s = 1;
    peer_position(fx->peer, &e, &s);
    assert_true(e == epoch);
    assert_int_equal(s, seq);
}

/* ---- the first join ---- */

static void test_peer_first_join_asks_after_the_first_heartbeat(void **state)
{
    s_fx_t *fx = *state;
    peer_tick(fx->peer, MONO0);
    assert_false(peer_stats(fx->peer)->live);
    /* no request before a heartbeat proves the subscription is in place */
    s_expect_no_request(fx);
    s_heartbeat(fx, PEER_EPOCH, 5);
    /* no position yet: every site's decisions, no epoch, no since_seq */
    s_expect_full_request(fx);
    /* a second heartbeat while the request is out sends no other */
    s_heartbeat(fx, PEER_EPOCH, 5);
    s_expect_no_request(fx);
}

static void test_peer_full_snapshot_mirrors_the_peers_decisions(void **state)
{
    s_fx_t *fx = *state;
    peer_tick(fx->peer, MONO0);
    s_heartbeat(fx, PEER_EPOCH, 5);
    s_expect_full_request(fx);
    decision_t ds[2] = {s_peer_decision(ID_A, 42), s_peer_decision(ID_B, 43)};
    assert_int_equal(s_full_reply(fx, PEER_EPOCH, 5, ds, 2), 2);
    for (size_t i = 0; i < 2; i++) {
        const decision_t *got = decisions_find(fx->table, ds[i].id);
        assert_non_null(got);
        assert_true(got->mirrored);
        assert_int_equal(got->fp, ds[i].fp);
        assert_int_equal(got->expires_ms, T0 + HOUR);
        assert_int_equal(got->epoch, OUR_EPOCH); /* stored under our own sequence */
    }
    assert_int_equal(decisions_count(fx->table), 2);
    const peer_stats_t *st = peer_stats(fx->peer);
    assert_true(st->live);
    assert_true(st->epoch == PEER_EPOCH);
    assert_int_equal(st->seq, 5);
    assert_int_equal(st->applied, 2);
    assert_int_equal(st->resyncs, 0);
    assert_int_equal(st->heard_mono, MONO0);
    s_assert_position(fx, PEER_EPOCH, 5);
    /* both changes logged for the store and our sensors, marked mirrored */
    decision_change_t c;
    for (size_t i = 0; i < 2; i++) {
        assert_int_equal(decisions_take_change(fx->table, &c), 1);
        assert_int_equal(c.kind, DECISION_UPSERT);
        assert_int_equal(c.why, DECISION_WHY_NEW);
        assert_true(c.decision.mirrored);
        assert_true(c.epoch == OUR_EPOCH);
    }
    assert_int_equal(decisions_take_change(fx->table, &c), 0);
}

/* ---- live: updates in sequence ---- */

static void test_peer_applies_updates_in_sequence(void **state)
{
    s_fx_t *fx = *state;
    s_join(fx, 5, NULL, 0);
    decision_t d = s_peer_decision(ID_A, 42);
    decision_change_t c = s_change(DECISION_UPSERT, DECISION_WHY_NEW, PEER_EPOCH, 6, &d);
    assert_int_equal(s_update(fx, &c), 1);
    assert_non_null(decisions_find(fx->table, ID_A));
    assert_true(decisions_find(fx->table, ID_A)->mirrored);
    s_assert_position(fx, PEER_EPOCH, 6);
    decision_change_t got = {0};
    assert_int_equal(s_take_all(fx, &got), 1);
    assert_int_equal(got.kind, DECISION_UPSERT);
    assert_true(got.decision.mirrored);

    /* seq 7 removes it */
    decision_change_t rm = s_change(DECISION_REMOVE, DECISION_WHY_REVOKED, PEER_EPOCH, 7, &d);
    assert_int_equal(s_update(fx, &rm), 1);
    assert_null(decisions_find(fx->table, ID_A));
    assert_int_equal(decisions_count(fx->table), 0);
    s_assert_position(fx, PEER_EPOCH, 7);
    assert_int_equal(s_take_all(fx, &got), 1);
    assert_int_equal(got.kind, DECISION_REMOVE);
    assert_int_equal(got.why, DECISION_WHY_REVOKED);
    assert_true(got.decision.mirrored);
    assert_int_equal(peer_stats(fx->peer)->applied, 2);
    assert_true(peer_stats(fx->peer)->live);
}

static void test_peer_ignores_a_duplicate_seq(void **state)
{
    s_fx_t *fx = *state;
    s_join(fx, 5, NULL, 0);
    decision_t d = s_peer_decision(ID_A, 42);
    decision_change_t c = s_change(DECISION_UPSERT, DECISION_WHY_NEW, PEER_EPOCH, 6, &d);
    assert_int_equal(s_update(fx, &c), 1);
    s_take_all(fx, NULL);
    uint64_t seq = decisions_seq(fx->table);
    /* seq 6 again, and with content that would change the table if it were applied: the
     * sequence number alone makes it a duplicate */
    c.decision.expires_ms = T0 + 2 * HOUR;
    assert_int_equal(s_update(fx, &c), 0);
    assert_int_equal(decisions_find(fx->table, ID_A)->expires_ms, T0 + HOUR);
    assert_int_equal(decisions_seq(fx->table), seq);
    assert_int_equal(decisions_pending(fx->table), 0);
    s_assert_position(fx, PEER_EPOCH, 6);
    assert_int_equal(peer_stats(fx->peer)->applied, 1);
    assert_true(peer_stats(fx->peer)->live);
    /* an older one too (a REMOVE at seq 4 would take it away) */
    decision_change_t old = s_change(DECISION_REMOVE, DECISION_WHY_REVOKED, PEER_EPOCH, 4, &d);
    assert_int_equal(s_update(fx, &old), 0);
    assert_non_null(decisions_find(fx->table, ID_A));
    s_assert_position(fx, PEER_EPOCH, 6);
}

static void test_peer_skips_echoes_of_our_own_changes(void **state)
{
    s_fx_t *fx = *state;
    char id[DECISION_ID_LEN + 1];
    s_own_decision(fx, 42, id);
    s_join(fx, 5, NULL, 0);
    uint64_t seq = decisions_seq(fx->table);
    /* the peer copied our decision and publishes the copy marked mirrored; a later expiry
     * would extend ours if it were applied */
    decision_t echo = *decisions_find(fx->table, id);
    echo.mirrored = true;
    echo.expires_ms = T0 + 2 * HOUR;
    echo.seq = 6;
    echo.epoch = PEER_EPOCH;
    decision_change_t c = s_change(DECISION_UPSERT, DECISION_WHY_EXTENDED, PEER_EPOCH, 6, &echo);
    assert_int_equal(s_update(fx, &c), 0);
    const decision_t *own = decisions_find(fx->table, id);
    assert_non_null(own);
    assert_int_equal(own->expires_ms, T0 + HOUR);
    assert_false(own->mirrored);
    assert_int_equal(decisions_seq(fx->table), seq);
    assert_int_equal(decisions_pending(fx->table), 0);
    const peer_stats_t *st = peer_stats(fx->peer);
    assert_int_equal(st->echoes, 1);
    assert_int_equal(st->applied, 0);
    /* the position moves on all the same: no gap at the next one */
    s_assert_position(fx, PEER_EPOCH, 6);
    assert_true(st->live);
    /* an echo of a decision we do not have (removed here meanwhile) is not added either */
    decision_t gone = s_peer_decision(ID_B, 43);
    gone.mirrored = true;
    decision_change_t c2 = s_change(DECISION_UPSERT, DECISION_WHY_NEW, PEER_EPOCH, 7, &gone);
    assert_int_equal(s_update(fx, &c2), 0);
    assert_null(decisions_find(fx->table, ID_B));
    assert_int_equal(st->echoes, 2);
    s_assert_position(fx, PEER_EPOCH, 7);
}

/* ---- gaps and resync ---- */

static void test_peer_gap_rejoins_asking_for_the_changes_since(void **state)
{
    s_fx_t *fx = *state;
    s_join(fx, 5, NULL, 0);
    decision_t a = s_peer_decision(ID_A, 42);
    decision_t b = s_peer_decision(ID_B, 43);
    /* 6 and 7 never arrived */
    decision_change_t c8 = s_change(DECISION_UPSERT, DECISION_WHY_NEW, PEER_EPOCH, 8, &b);
    assert_int_equal(s_update(fx, &c8), 0);
    assert_null(decisions_find(fx->table, ID_B));
    const peer_stats_t *st = peer_stats(fx->peer);
    assert_false(st->live);
    assert_int_equal(st->resyncs, 1);
    s_assert_position(fx, PEER_EPOCH, 5);
    /* the request goes out with the next heartbeat, for the changes after 5 */
    s_expect_no_request(fx);
    s_heartbeat(fx, PEER_EPOCH, 8);
    s_expect_changes_request(fx, PEER_EPOCH, 5);
    /* the answer: 6 adds A, 7 adds B, 8 removes A; only in order is A gone at the end */
    decision_change_t cs[3] = {
        s_change(DECISION_UPSERT, DECISION_WHY_NEW, PEER_EPOCH, 6, &a),
        s_change(DECISION_UPSERT, DECISION_WHY_NEW, PEER_EPOCH, 7, &b),
        s_change(DECISION_REMOVE, DECISION_WHY_REVOKED, PEER_EPOCH, 8, &a),
    };
    assert_int_equal(s_changes_reply(fx, PEER_EPOCH, 8, cs, 3), 3);
    assert_null(decisions_find(fx->table, ID_A));
    assert_non_null(decisions_find(fx->table, ID_B));
    assert_true(st->live);
    s_assert_position(fx, PEER_EPOCH, 8);
    decision_change_t got = {0};
    assert_int_equal(decisions_take_change(fx->table, &got), 1);
    assert_int_equal(got.kind, DECISION_UPSERT);
    assert_string_equal(got.decision.id, ID_A);
    assert_int_equal(decisions_take_change(fx->table, &got), 1);
    assert_int_equal(got.kind, DECISION_UPSERT);
    assert_string_equal(got.decision.id, ID_B);
    assert_int_equal(decisions_take_change(fx->table, &got), 1);
    assert_int_equal(got.kind, DECISION_REMOVE);
    assert_string_equal(got.decision.id, ID_A);
    assert_int_equal(decisions_take_change(fx->table, &got), 0);
}

/* A changes-since answer in two frames (publish.c cuts one every PUBLISH_CHUNK changes, each
 * frame with the answer's seq): the first frame's changes, then the second's, a removal among
 * them; live, at the answer's seq, only after the second, and what came meanwhile queued. */
static void test_peer_changes_reply_in_two_frames(void **state)
{
    s_fx_t *fx = *state;
    s_join(fx, 5, NULL, 0);
    decision_t a = s_peer_decision(ID_A, 42);
    decision_t b = s_peer_decision(ID_B, 43);
    decision_t c = s_peer_decision(ID_C, 44);
    decision_change_t c9 = s_change(DECISION_UPSERT, DECISION_WHY_NEW, PEER_EPOCH, 9, &b);
    assert_int_equal(s_update(fx, &c9), 0); /* 6 to 8 went by unseen */
    s_heartbeat(fx, PEER_EPOCH, 9);
    s_expect_changes_request(fx, PEER_EPOCH, 5);
    decision_change_t part1[2] = {
        s_change(DECISION_UPSERT, DECISION_WHY_NEW, PEER_EPOCH, 6, &a),
        s_change(DECISION_UPSERT, DECISION_WHY_NEW, PEER_EPOCH, 7, &b),
    };
    decision_change_t part2[2] = {
        s_change(DECISION_REMOVE, DECISION_WHY_REVOKED, PEER_EPOCH, 8, &a),
        s_change(DECISION_UPSERT, DECISION_WHY_NEW, PEER_EPOCH, 9, &b),
    };
    assert_int_equal(s_changes_reply_part(fx, PEER_EPOCH, 9, part1, 2, true), 2);
    assert_non_null(decisions_find(fx->table, ID_A));
    assert_non_null(decisions_find(fx->table, ID_B));
    const peer_stats_t *st = peer_stats(fx->peer);
    assert_false(st->live);
    s_assert_position(fx, PEER_EPOCH, 7); /* what it applied, not the answer's seq */
    /* an update between the two frames is queued, not applied */
    decision_change_t c10 = s_change(DECISION_UPSERT, DECISION_WHY_NEW, PEER_EPOCH, 10, &c);
    assert_int_equal(s_update(fx, &c10), 0);
    assert_null(decisions_find(fx->table, ID_C));
    /* the second frame: A removed, B again (no change), then 10 from the queue */
    assert_int_equal(s_changes_reply_part(fx, PEER_EPOCH, 9, part2, 2, false), 2);
    assert_null(decisions_find(fx->table, ID_A));
    assert_non_null(decisions_find(fx->table, ID_B));
    assert_non_null(decisions_find(fx->table, ID_C));
    assert_true(st->live);
    s_assert_position(fx, PEER_EPOCH, 10);
    s_expect_no_request(fx);
}

/* A refused reply (our key is not the peer's peer_public_key) is no snapshot: nothing of the
 * peer's is removed, the position stays, the follower stays joining and asks again when the
 * join times out. Without refused, the same reply would be an empty full snapshot. */
static void test_peer_refused_reply_changes_nothing(void **state)
{
    s_fx_t *fx = *state;
    decision_t a = s_peer_decision(ID_A, 42);
    s_join(fx, 5, &a, 1);
    assert_non_null(decisions_find(fx->table, ID_A));
    /* a gap: the changes since 5 asked for, and refused */
    decision_change_t c8 = s_change(DECISION_UPSERT, DECISION_WHY_NEW, PEER_EPOCH, 8, &a);
    assert_int_equal(s_update(fx, &c8), 0);
    s_heartbeat(fx, PEER_EPOCH, 8);
    s_expect_changes_request(fx, PEER_EPOCH, 5);
    assert_int_equal(s_refused_reply(fx, PEER_EPOCH, 8), 0);
    const peer_stats_t *st = peer_stats(fx->peer);
    assert_non_null(decisions_find(fx->table, ID_A));
    assert_int_equal(decisions_pending(fx->table), 0);
    assert_false(st->live);
    assert_int_equal(st->snapshots_refused, 1);
    s_assert_position(fx, PEER_EPOCH, 5);
    /* the join times out and is sent again, still for the changes since 5 */
    fx->mono = MONO0 + 2 * SEC;
    s_heartbeat(fx, PEER_EPOCH, 8);
    peer_tick(fx->peer, MONO0 + 3 * SEC);
    s_expect_changes_request(fx, PEER_EPOCH, 5);
    /* the answer to that one is taken */
    decision_change_t cs[3] = {
        s_change(DECISION_UPSERT, DECISION_WHY_NEW, PEER_EPOCH, 6, &a),
        s_change(DECISION_UPSERT, DECISION_WHY_NEW, PEER_EPOCH, 7, &a),
        s_change(DECISION_REMOVE, DECISION_WHY_REVOKED, PEER_EPOCH, 8, &a),
    };
    s_changes_reply(fx, PEER_EPOCH, 8, cs, 3);
    assert_null(decisions_find(fx->table, ID_A));
    assert_true(st->live);
    s_assert_position(fx, PEER_EPOCH, 8);
}

static void test_peer_late_reply_to_an_earlier_request_is_ignored(void **state)
{
    s_fx_t *fx = *state;
    s_join(fx, 5, NULL, 0);
    decision_t b = s_peer_decision(ID_B, 43);
    decision_change_t c6 = s_change(DECISION_UPSERT, DECISION_WHY_NEW, PEER_EPOCH, 6, &b);
    assert_int_equal(s_update(fx, &c6), 1);
    /* a gap at 9 asks for the changes since 6 */
    decision_change_t c9 = s_change(DECISION_UPSERT, DECISION_WHY_NEW, PEER_EPOCH, 9, &b);
    assert_int_equal(s_update(fx, &c9), 0);
    s_heartbeat(fx, PEER_EPOCH, 9);
    s_expect_changes_request(fx, PEER_EPOCH, 6);
    /* the late answer to an earlier request, as of seq 4 and without B: not taken, not
     * even as a full snapshot that would remove B */
    assert_int_equal(s_full_reply(fx, PEER_EPOCH, 4, NULL, 0), 0);
    assert_non_null(decisions_find(fx->table, ID_B));
    assert_false(peer_stats(fx->peer)->live);
    s_assert_position(fx, PEER_EPOCH, 6);
    /* the answer to the request sent now is */
    assert_int_equal(s_changes_reply(fx, PEER_EPOCH, 6, NULL, 0), 0);
    assert_true(peer_stats(fx->peer)->live);
}

static void test_peer_tick_sends_the_request_after_a_gap(void **state)
{
    s_fx_t *fx = *state;
    s_join(fx, 5, NULL, 0);
    decision_t b = s_peer_decision(ID_B, 43);
    decision_change_t c8 = s_change(DECISION_UPSERT, DECISION_WHY_NEW, PEER_EPOCH, 8, &b);
    assert_int_equal(s_update(fx, &c8), 0);
    assert_false(peer_stats(fx->peer)->live);
    /* heard from it already: the timer sends the request without waiting for a heartbeat */
    peer_tick(fx->peer, MONO0 + SEC);
    s_expect_changes_request(fx, PEER_EPOCH, 5);
}

static void test_peer_skip_at_the_next_seq_is_a_gap(void **state)
{
    s_fx_t *fx = *state;
    s_join(fx, 5, NULL, 0);
    /* a SKIP at 6 stands for a site's update at 6, which we never saw */
    assert_int_equal(s_skip(fx, PEER_EPOCH, 6), 0);
    const peer_stats_t *st = peer_stats(fx->peer);
    assert_false(st->live);
    assert_int_equal(st->resyncs, 1);
    s_assert_position(fx, PEER_EPOCH, 5);
    s_heartbeat(fx, PEER_EPOCH, 6);
    s_expect_changes_request(fx, PEER_EPOCH, 5);
}

static void test_peer_skip_after_the_site_update_is_a_duplicate(void **state)
{
    s_fx_t *fx = *state;
    s_join(fx, 5, NULL, 0);
    decision_t d = s_peer_decision(ID_A, 42);
    d.reach = BS_REACH_LOCAL;
    decisions_strlcpy(d.site, "site1", DECISION_NAME_MAX);
    decision_change_t c = s_change(DECISION_UPSERT, DECISION_WHY_NEW, PEER_EPOCH, 6, &d);
    assert_int_equal(s_update(fx, &c), 1);
    /* the SKIP with the same seq that follows it on F changes nothing */
    assert_int_equal(s_skip(fx, PEER_EPOCH, 6), 0);
    assert_true(peer_stats(fx->peer)->live);
    assert_int_equal(peer_stats(fx->peer)->resyncs, 0);
    s_assert_position(fx, PEER_EPOCH, 6);
    assert_non_null(decisions_find(fx->table, ID_A));
}

static void test_peer_heartbeat_ahead_twice_rejoins(void **state)
{
    s_fx_t *fx = *state;
    s_join(fx, 5, NULL, 0);
    /* one heartbeat ahead may be followed by the update: not yet a gap */
    s_heartbeat(fx, PEER_EPOCH, 6);
    assert_true(peer_stats(fx->peer)->live);
    s_expect_no_request(fx);
    /* the next one still ahead: the update was lost */
    s_heartbeat(fx, PEER_EPOCH, 6);
    assert_false(peer_stats(fx->peer)->live);
    assert_int_equal(peer_stats(fx->peer)->resyncs, 1);
    s_expect_changes_request(fx, PEER_EPOCH, 5);
}

/* ---- timers ---- */

static void test_peer_silence_reopens_and_asks_for_the_changes_since(void **state)
{
    s_fx_t *fx = *state;
    s_join(fx, 5, NULL, 0);
    peer_tick(fx->peer, MONO0 + 3 * SEC - 1);
    assert_true(peer_stats(fx->peer)->live);
    /* nothing heard for silence_ms: new sockets, and a join after their first heartbeat */
    peer_tick(fx->peer, MONO0 + 3 * SEC);
    const peer_stats_t *st = peer_stats(fx->peer);
    assert_false(st->live);
    assert_int_equal(st->resyncs, 1);
    assert_int_equal(st->heard_mono, 0);
    s_expect_no_request(fx);
    fx->mono = MONO0 + 4 * SEC;
    s_heartbeat(fx, PEER_EPOCH, 5);
    s_expect_changes_request(fx, PEER_EPOCH, 5);
    assert_int_equal(s_changes_reply(fx, PEER_EPOCH, 5, NULL, 0), 0);
    assert_true(st->live);
    s_assert_position(fx, PEER_EPOCH, 5);
}

/* A peer whose heartbeat_interval is longer than ours (a pair configured apart) is judged
 * by 3 of its own intervals, as sensors judge it: with 2 s heartbeats, 3 s of silence is
 * no more than one missed heartbeat and the follower stays live; 6 s gives it up. */
static void test_peer_silence_counts_the_intervals_the_peer_announces(void **state)
{
    s_fx_t *fx = *state;
    s_join(fx, 5, NULL, 0);
    s_heartbeat_interval(fx, PEER_EPOCH, 5, 2000);
    peer_tick(fx->peer, MONO0 + 3 * SEC);
    assert_true(peer_stats(fx->peer)->live);
    peer_tick(fx->peer, MONO0 + 6 * SEC - 1);
    assert_true(peer_stats(fx->peer)->live);
    peer_tick(fx->peer, MONO0 + 6 * SEC);
    assert_false(peer_stats(fx->peer)->live);
    assert_int_equal(peer_stats(fx->peer)->resyncs, 1);
}

/* The snapshot reply announces the interval too: a peer that answers and then falls silent
 * before its next heartbeat is judged by it (an interval shorter than ours changes nothing:
 * test_peer_shorter_announced_interval_keeps_our_silence). */
static void test_peer_silence_counts_the_interval_of_the_snapshot_reply(void **state)
{
    s_fx_t *fx = *state;
    peer_tick(fx->peer, MONO0);
    s_heartbeat(fx, PEER_EPOCH, 5);
    s_expect_full_request(fx);
    Backstop__SnapshotReply r = BACKSTOP__SNAPSHOT_REPLY__INIT;
    r.epoch = PEER_EPOCH;
    r.seq = 5;
    r.has_heartbeat_interval_ms = 1;
    r.heartbeat_interval_ms = 4000;
    assert_int_equal(s_feed(fx, BACKSTOP__FRAME__BODY_SNAPSHOT_REPLY, &r, false), 0);
    assert_true(peer_stats(fx->peer)->live);
    peer_tick(fx->peer, MONO0 + 12 * SEC - 1);
    assert_true(peer_stats(fx->peer)->live);
    peer_tick(fx->peer, MONO0 + 12 * SEC);
    assert_false(peer_stats(fx->peer)->live);
}

static void test_peer_shorter_announced_interval_keeps_our_silence(void **state)
{
    s_fx_t *fx = *state;
    s_join(fx, 5, NULL, 0);
    s_heartbeat_interval(fx, PEER_EPOCH, 5, 200);
    peer_tick(fx->peer, MONO0 + 3 * SEC - 1);
    assert_true(peer_stats(fx->peer)->live);
    peer_tick(fx->peer, MONO0 + 3 * SEC);
    assert_false(peer_stats(fx->peer)->live);
}

static void test_peer_unanswered_request_is_sent_again(void **state)
{
    s_fx_t *fx = *state;
    peer_tick(fx->peer, MONO0);
    s_heartbeat(fx, PEER_EPOCH, 5);
    s_expect_full_request(fx);
    /* heartbeats go on but no reply comes */
    fx->mono = MONO0 + 2 * SEC;
    s_heartbeat(fx, PEER_EPOCH, 5);
    peer_tick(fx->peer, MONO0 + 3 * SEC - 1);
    s_expect_no_request(fx);
    peer_tick(fx->peer, MONO0 + 3 * SEC);
    s_expect_full_request(fx);
    assert_int_equal(peer_stats(fx->peer)->resyncs, 1);
    assert_false(peer_stats(fx->peer)->live);
}

/* ---- epochs ---- */

static void test_peer_heartbeat_of_another_epoch_asks_for_a_full_snapshot(void **state)
{
    s_fx_t *fx = *state;
    decision_t a = s_peer_decision(ID_A, 42);
    s_join(fx, 5, &a, 1);
    s_heartbeat(fx, PEER_EPOCH2, 1);
    assert_false(peer_stats(fx->peer)->live);
    assert_int_equal(peer_stats(fx->peer)->resyncs, 1);
    s_expect_full_request(fx);
    /* the new epoch's snapshot still has A: it stays, and we follow the new epoch */
    assert_int_equal(s_full_reply(fx, PEER_EPOCH2, 1, &a, 1), 0);
    assert_non_null(decisions_find(fx->table, ID_A));
    assert_true(peer_stats(fx->peer)->live);
    assert_true(peer_stats(fx->peer)->epoch == PEER_EPOCH2);
    s_assert_position(fx, PEER_EPOCH2, 1);
}

static void test_peer_update_of_another_epoch_asks_for_a_full_snapshot(void **state)
{
    s_fx_t *fx = *state;
    s_join(fx, 5, NULL, 0);
    decision_t b = s_peer_decision(ID_B, 43);
    /* seq 6 would be next in the old epoch: the epoch alone makes it a resync */
    decision_change_t c = s_change(DECISION_UPSERT, DECISION_WHY_NEW, PEER_EPOCH2, 6, &b);
    assert_int_equal(s_update(fx, &c), 0);
    assert_null(decisions_find(fx->table, ID_B));
    assert_false(peer_stats(fx->peer)->live);
    s_heartbeat(fx, PEER_EPOCH2, 6);
    s_expect_full_request(fx);
}

/* ---- a full snapshot reconciles ---- */

static void test_peer_full_snapshot_removes_the_peers_gone_and_keeps_ours(void **state)
{
    s_fx_t *fx = *state;
    decision_t a = s_peer_decision(ID_A, 42);
    s_join(fx, 5, &a, 1);
    char own[DECISION_ID_LEN + 1];
    s_own_decision(fx, 43, own);
    s_take_all(fx, NULL);
    assert_true(decisions_find(fx->table, ID_A)->mirrored);
    assert_false(decisions_find(fx->table, own)->mirrored);
    /* we miss 6..9 (A revoked there among them); the peer's log no longer reaches back to
     * 5, so it answers our changes request with a full snapshot of the same epoch: C only */
    decision_t b = s_peer_decision(ID_B, 45);
    decision_change_t c10 = s_change(DECISION_UPSERT, DECISION_WHY_NEW, PEER_EPOCH, 10, &b);
    assert_int_equal(s_update(fx, &c10), 0);
    s_heartbeat(fx, PEER_EPOCH, 10);
    s_expect_changes_request(fx, PEER_EPOCH, 5);
    decision_t c = s_peer_decision(ID_C, 44);
    assert_int_equal(s_full_reply(fx, PEER_EPOCH, 9, &c, 1), 2);
    assert_null(decisions_find(fx->table, ID_A));
    assert_non_null(decisions_find(fx->table, own));
    assert_false(decisions_find(fx->table, own)->mirrored);
    assert_non_null(decisions_find(fx->table, ID_C));
    assert_int_equal(decisions_count(fx->table), 2);
    /* logged: C added, A removed (revoked), both as the peer's */
    decision_change_t got = {0};
    assert_int_equal(decisions_take_change(fx->table, &got), 1);
    assert_int_equal(got.kind, DECISION_UPSERT);
    assert_string_equal(got.decision.id, ID_C);
    assert_int_equal(decisions_take_change(fx->table, &got), 1);
    assert_int_equal(got.kind, DECISION_REMOVE);
    assert_int_equal(got.why, DECISION_WHY_REVOKED);
    assert_string_equal(got.decision.id, ID_A);
    assert_true(got.decision.mirrored);
    assert_int_equal(decisions_take_change(fx->table, &got), 0);
    assert_true(peer_stats(fx->peer)->live);
    s_assert_position(fx, PEER_EPOCH, 9);
}

static void test_peer_empty_full_snapshot_removes_the_peers_gone(void **state)
{
    s_fx_t *fx = *state;
    /* nothing in force at the peer when we joined: no snapshot ever had a decision */
    s_join(fx, 5, NULL, 0);
    decision_t a = s_peer_decision(ID_A, 42);
    decision_change_t c6 = s_change(DECISION_UPSERT, DECISION_WHY_NEW, PEER_EPOCH, 6, &a);
    assert_int_equal(s_update(fx, &c6), 1);
    /* 7..9 missed (A revoked among them); the answer is a full snapshot with nothing */
    decision_change_t c10 = s_change(DECISION_UPSERT, DECISION_WHY_NEW, PEER_EPOCH, 10, &a);
    assert_int_equal(s_update(fx, &c10), 0);
    s_heartbeat(fx, PEER_EPOCH, 10);
    s_expect_changes_request(fx, PEER_EPOCH, 6);
    assert_int_equal(s_full_reply(fx, PEER_EPOCH, 9, NULL, 0), 1);
    assert_null(decisions_find(fx->table, ID_A));
    assert_true(peer_stats(fx->peer)->live);
    s_assert_position(fx, PEER_EPOCH, 9);
}

static void test_peer_reply_of_epoch_zero_is_a_bad_frame(void **state)
{
    s_fx_t *fx = *state;
    peer_tick(fx->peer, MONO0);
    s_heartbeat(fx, PEER_EPOCH, 5);
    s_expect_full_request(fx);
    /* no aggregator has epoch 0: not a position to follow */
    decision_t a = s_peer_decision(ID_A, 42);
    assert_int_equal(s_full_reply(fx, 0, 5, &a, 1), 0);
    assert_null(decisions_find(fx->table, ID_A));
    assert_false(peer_stats(fx->peer)->live);
    assert_int_equal(peer_stats(fx->peer)->bad_frames, 1);
}

static void test_peer_full_snapshot_of_a_new_epoch_removes_nothing(void **state)
{
    s_fx_t *fx = *state;
    decision_t a = s_peer_decision(ID_A, 42);
    s_join(fx, 5, &a, 1);
    /* the peer lost its store and starts again with C only: its not having A says
     * nothing, so A stays until its TTL */
    s_heartbeat(fx, PEER_EPOCH2, 3);
    s_expect_full_request(fx);
    decision_t c = s_peer_decision(ID_C, 44);
    c.epoch = PEER_EPOCH2;
    assert_int_equal(s_full_reply(fx, PEER_EPOCH2, 3, &c, 1), 1);
    assert_non_null(decisions_find(fx->table, ID_A));
    assert_non_null(decisions_find(fx->table, ID_C));
    decision_change_t got = {0};
    assert_int_equal(s_take_all(fx, &got), 1);
    assert_int_equal(got.kind, DECISION_UPSERT);
    assert_string_equal(got.decision.id, ID_C);
    assert_true(peer_stats(fx->peer)->live);
    s_assert_position(fx, PEER_EPOCH2, 3);
    /* from then on it is the peer we follow: a full snapshot of its epoch sweeps again */
    decision_change_t c5 = s_change(DECISION_UPSERT, DECISION_WHY_NEW, PEER_EPOCH2, 5, &c);
    assert_int_equal(s_update(fx, &c5), 0); /* 4 missed */
    s_heartbeat(fx, PEER_EPOCH2, 5);
    s_expect_changes_request(fx, PEER_EPOCH2, 3);
    assert_int_equal(s_full_reply(fx, PEER_EPOCH2, 5, &c, 1), 1);
    assert_null(decisions_find(fx->table, ID_A));
    assert_non_null(decisions_find(fx->table, ID_C));
}

static void test_peer_full_snapshot_skips_the_peers_copies_of_ours(void **state)
{
    s_fx_t *fx = *state;
    peer_tick(fx->peer, MONO0);
    s_heartbeat(fx, PEER_EPOCH, 5);
    s_expect_full_request(fx);
    /* a copy of a decision of ours the peer holds; we no longer do */
    decision_t copy = s_peer_decision(ID_A, 42);
    copy.mirrored = true;
    assert_int_equal(s_full_reply(fx, PEER_EPOCH, 5, &copy, 1), 0);
    assert_null(decisions_find(fx->table, ID_A));
    assert_int_equal(peer_stats(fx->peer)->echoes, 1);
    assert_true(peer_stats(fx->peer)->live);
}

static void test_peer_fresh_store_takes_its_copies_back_once(void **state)
{
    s_fx_t *fx = *state;
    s_peer_renew(fx, true);
    peer_tick(fx->peer, MONO0);
    s_heartbeat(fx, PEER_EPOCH, 5);
    s_expect_full_request(fx);
    /* our store is new: the peer's copy of what we made before is taken back */
    decision_t copy = s_peer_decision(ID_A, 42);
    copy.mirrored = true;
    assert_int_equal(s_full_reply(fx, PEER_EPOCH, 5, &copy, 1), 1);
    assert_non_null(decisions_find(fx->table, ID_A));
    assert_int_equal(peer_stats(fx->peer)->echoes, 0);
    assert_true(peer_stats(fx->peer)->live);
    /* only the first full snapshot: after it, copies of ours are echoes again */
    decision_t other = s_peer_decision(ID_B, 43);
    other.mirrored = true;
    assert_int_equal(s_skip(fx, PEER_EPOCH, 7), 0); /* 6 missed */
    s_heartbeat(fx, PEER_EPOCH, 7);
    s_expect_changes_request(fx, PEER_EPOCH, 5);
    decision_t both[2] = {copy, other};
    assert_int_equal(s_full_reply(fx, PEER_EPOCH, 7, both, 2), 0);
    assert_non_null(decisions_find(fx->table, ID_A));
    assert_null(decisions_find(fx->table, ID_B));
    assert_int_equal(peer_stats(fx->peer)->echoes, 2);
}

/* ---- updates while joining ---- */

static void test_peer_queues_updates_while_joining(void **state)
{
    s_fx_t *fx = *state;
    peer_tick(fx->peer, MONO0);
    s_heartbeat(fx, PEER_EPOCH, 3);
    s_expect_full_request(fx);
    /* before the reply: 4 and 5 are in it already (X and Y were gone by then), 6 is not */
    decision_t x = s_peer_decision(ID_A, 42);
    decision_t y = s_peer_decision(ID_B, 43);
    decision_t z = s_peer_decision(ID_C, 44);
    decision_change_t c4 = s_change(DECISION_UPSERT, DECISION_WHY_NEW, PEER_EPOCH, 4, &x);
    decision_change_t c5 = s_change(DECISION_UPSERT, DECISION_WHY_NEW, PEER_EPOCH, 5, &y);
    decision_change_t c6 = s_change(DECISION_UPSERT, DECISION_WHY_NEW, PEER_EPOCH, 6, &z);
    assert_int_equal(s_update(fx, &c4), 0);
    assert_int_equal(s_update(fx, &c5), 0);
    assert_int_equal(s_update(fx, &c6), 0);
    assert_int_equal(decisions_count(fx->table), 0); /* queued, not applied */
    assert_int_equal(decisions_pending(fx->table), 0);
    s_assert_position(fx, 0, 0);
    decision_t w = s_peer_decision(ID_D, 45);
    assert_int_equal(s_full_reply(fx, PEER_EPOCH, 5, &w, 1), 2);
    assert_non_null(decisions_find(fx->table, ID_D));
    assert_non_null(decisions_find(fx->table, ID_C));
    assert_null(decisions_find(fx->table, ID_A));
    assert_null(decisions_find(fx->table, ID_B));
    assert_int_equal(decisions_count(fx->table), 2);
    assert_true(peer_stats(fx->peer)->live);
    s_assert_position(fx, PEER_EPOCH, 6);
}

/* ---- what does not belong ---- */

static void test_peer_counts_frames_of_the_wrong_body(void **state)
{
    s_fx_t *fx = *state;
    s_join(fx, 5, NULL, 0);
    uint64_t seq = decisions_seq(fx->table);
    /* a control request on the feed */
    Backstop__ControlRequest cr = BACKSTOP__CONTROL_REQUEST__INIT;
    assert_int_equal(s_feed(fx, BACKSTOP__FRAME__BODY_CONTROL_REQUEST, &cr, true), 0);
    assert_int_equal(peer_stats(fx->peer)->bad_frames, 1);
    /* an update (the next in sequence) on the snapshot socket: not applied */
    decision_t d = s_peer_decision(ID_A, 42);
    decision_change_t c = s_change(DECISION_UPSERT, DECISION_WHY_NEW, PEER_EPOCH, 6, &d);
    publish_pb_t pb;
    Backstop__DecisionUpdate u;
    publish_pb_update(&u, &pb, &c);
    assert_int_equal(s_feed(fx, BACKSTOP__FRAME__BODY_UPDATE, &u, false), 0);
    /* a snapshot reply on the feed: not applied either */
    Backstop__SnapshotReply r = BACKSTOP__SNAPSHOT_REPLY__INIT;
    Backstop__Decision *dp[1] = {u.decision};
    r.epoch = PEER_EPOCH;
    r.seq = 6;
    r.n_decisions = 1;
    r.decisions = dp;
    assert_int_equal(s_feed(fx, BACKSTOP__FRAME__BODY_SNAPSHOT_REPLY, &r, true), 0);
    const peer_stats_t *st = peer_stats(fx->peer);
    assert_int_equal(st->bad_frames, 3);
    assert_null(decisions_find(fx->table, ID_A));
    assert_int_equal(decisions_count(fx->table), 0);
    assert_int_equal(decisions_seq(fx->table), seq);
    assert_true(st->live);
    assert_int_equal(st->resyncs, 0);
    s_assert_position(fx, PEER_EPOCH, 5);
    s_expect_no_request(fx);
}

static void test_peer_counts_an_unusable_decision_and_moves_on(void **state)
{
    s_fx_t *fx = *state;
    s_join(fx, 5, NULL, 0);
    decision_t d = s_peer_decision("SHORT", 42);
    decision_change_t c = s_change(DECISION_UPSERT, DECISION_WHY_NEW, PEER_EPOCH, 6, &d);
    assert_int_equal(s_update(fx, &c), 0);
    assert_int_equal(peer_stats(fx->peer)->bad_frames, 1);
    assert_int_equal(decisions_count(fx->table), 0);
    assert_int_equal(decisions_pending(fx->table), 0);
    /* its seq counts all the same: the next change is no gap */
    s_assert_position(fx, PEER_EPOCH, 6);
    assert_true(peer_stats(fx->peer)->live);
    decision_t b = s_peer_decision(ID_B, 43);
    decision_change_t c7 = s_change(DECISION_UPSERT, DECISION_WHY_NEW, PEER_EPOCH, 7, &b);
    assert_int_equal(s_update(fx, &c7), 1);
    assert_int_equal(peer_stats(fx->peer)->resyncs, 0);
    s_assert_position(fx, PEER_EPOCH, 7);
}

static void test_peer_merges_a_decision_with_the_identity_of_ours(void **state)
{
    s_fx_t *fx = *state;
    char own[DECISION_ID_LEN + 1], own2[DECISION_ID_LEN + 1];
    s_own_decision(fx, 42, own);
    s_own_decision(fx, 43, own2);
    s_join(fx, 5, NULL, 0);
    while (decisions_pending(fx->table)) {
        decision_change_t x;
        (void)decisions_take_change(fx->table, &x);
    }
    /* both sides fired on the same wave while apart: the peer's has our scope, key, reach
     * and mode, and the smaller id: it takes the place of ours */
    decision_t p = s_peer_decision("00000000", 42);
    p.expires_ms = T0 + 2 * HOUR;
    decision_change_t c = s_change(DECISION_UPSERT, DECISION_WHY_NEW, PEER_EPOCH, 6, &p);
    assert_int_equal(s_update(fx, &c), 1);
    const peer_stats_t *st = peer_stats(fx->peer);
    assert_int_equal(st->merged, 1);
    assert_int_equal(st->refused, 0);
    assert_null(decisions_find(fx->table, own));
    const decision_t *kept = decisions_find_identity(fx->table, BS_SCOPE_SUBJECT, 42,
                                                     BS_REACH_FLEET, NULL, BS_MODE_ENFORCE);
    assert_non_null(kept);
    assert_string_equal(kept->id, "00000000");
    assert_int_equal(kept->expires_ms, T0 + 2 * HOUR);
    /* ours removed for our sensors (superseded), theirs added as the peer's */
    decision_change_t x;
    assert_true(decisions_take_change(fx->table, &x));
    assert_int_equal(x.kind, DECISION_REMOVE);
    assert_int_equal(x.why, DECISION_WHY_SUPERSEDED);
    assert_string_equal(x.decision.id, own);
    assert_true(decisions_take_change(fx->table, &x));
    assert_string_equal(x.decision.id, "00000000");
    assert_true(x.decision.mirrored);
    assert_int_equal(decisions_pending(fx->table), 0);
    /* the larger id: ours stays and takes the peer's later expiry, as our own change */
    decision_t q = s_peer_decision("ZZZZZZZZ", 43);
    q.expires_ms = T0 + 3 * HOUR;
    decision_change_t c7 = s_change(DECISION_UPSERT, DECISION_WHY_NEW, PEER_EPOCH, 7, &q);
    assert_int_equal(s_update(fx, &c7), 1);
    assert_int_equal(st->merged, 2);
    assert_null(decisions_find(fx->table, "ZZZZZZZZ"));
    const decision_t *mine = decisions_find(fx->table, own2);
    assert_non_null(mine);
    assert_int_equal(mine->expires_ms, T0 + 3 * HOUR);
    assert_true(decisions_take_change(fx->table, &x));
    assert_int_equal(x.why, DECISION_WHY_EXTENDED);
    assert_false(x.decision.mirrored);
    assert_true(st->live);
    s_assert_position(fx, PEER_EPOCH, 7);
}

/* ---- the allowlist entries and sites ---- */

#define DIGEST1 0xD1D1D1D1D1D1D1D1ULL
#define DIGEST2 0xD2D2D2D2D2D2D2D2ULL

/* A live follower with shared_apply that heard DIGEST1 and asked for it. */
static void s_live_asked(s_fx_t *fx)
{
    s_peer_make(fx, false, true);
    s_join(fx, 5, NULL, 0);
    s_heartbeat_digest(fx, PEER_EPOCH, 5, DIGEST1);
    s_expect_shared_request(fx);
}

static void test_peer_shared_live_follower_asks_when_the_digest_is_new(void **state)
{
    s_fx_t *fx = *state;
    s_peer_make(fx, false, true);
    s_join(fx, 5, NULL, 0);
    /* heartbeats without a digest (a peer that does not share): nothing to ask for */
    s_heartbeat(fx, PEER_EPOCH, 5);
    s_expect_no_request(fx);
    assert_false(peer_stats(fx->peer)->shared_heard);
    s_heartbeat_digest(fx, PEER_EPOCH, 5, DIGEST1);
    s_expect_shared_request(fx);
    const peer_stats_t *st = peer_stats(fx->peer);
    assert_true(st->shared_heard);
    assert_true(st->shared_digest == DIGEST1);
    /* while the answer is outstanding, the next heartbeats ask nothing more, even with
     * another digest */
    s_heartbeat_digest(fx, PEER_EPOCH, 5, DIGEST1);
    s_expect_no_request(fx);
    s_heartbeat_digest(fx, PEER_EPOCH, 5, DIGEST2);
    s_expect_no_request(fx);
    assert_true(st->shared_digest == DIGEST2);
    assert_int_equal(st->shared_fetches, 0);
    assert_true(st->live);
}

static void test_peer_shared_asks_once_even_for_an_empty_digest(void **state)
{
    s_fx_t *fx = *state;
    s_peer_make(fx, false, true);
    s_join(fx, 5, NULL, 0);
    /* a peer with no entries and no tombstones has digest 0: nothing was taken yet, so
     * it is asked for all the same, once */
    s_heartbeat_digest(fx, PEER_EPOCH, 5, 0);
    s_expect_shared_request(fx);
    assert_int_equal(s_shared_reply(fx, 0, false, NULL, 0), 0);
    assert_int_equal(peer_stats(fx->peer)->shared_fetches, 1);
    assert_int_equal(fx->shared.calls, 0);
    s_heartbeat_digest(fx, PEER_EPOCH, 5, 0);
    s_expect_no_request(fx);
}

static void test_peer_shared_joining_follower_does_not_ask(void **state)
{
    s_fx_t *fx = *state;
    s_peer_make(fx, false, true);
    peer_tick(fx->peer, MONO0);
    /* the first heartbeat's digest is noted, but the join comes first */
    s_heartbeat_digest(fx, PEER_EPOCH, 5, DIGEST1);
    s_expect_full_request(fx);
    s_expect_no_request(fx);
    assert_true(peer_stats(fx->peer)->shared_heard);
    assert_int_equal(s_full_reply(fx, PEER_EPOCH, 5, NULL, 0), 0);
    assert_true(peer_stats(fx->peer)->live);
    /* live: the next heartbeat asks */
    s_heartbeat_digest(fx, PEER_EPOCH, 5, DIGEST1);
    s_expect_shared_request(fx);
}

static void test_peer_shared_unanswered_request_is_sent_again(void **state)
{
    s_fx_t *fx = *state;
    s_live_asked(fx);
    fx->mono = MONO0 + 3 * SEC - 1;
    s_heartbeat_digest(fx, PEER_EPOCH, 5, DIGEST1);
    s_expect_no_request(fx);
    /* silence_ms without an answer: asked again */
    fx->mono = MONO0 + 3 * SEC;
    s_heartbeat_digest(fx, PEER_EPOCH, 5, DIGEST1);
    s_expect_shared_request(fx);
    assert_true(peer_stats(fx->peer)->live);
}

static void test_peer_shared_reply_hands_each_entry_over(void **state)
{
    s_fx_t *fx = *state;
    s_live_asked(fx);
    shared_rec_t recs[4];
    recs[0] = s_shared_ip("192.0.2.1", "ops");
    shared_rec_site(&recs[1], "acme", NULL, T0 - HOUR, "same");
    recs[2] = s_shared_ip("192.0.2.2", "refuse");
    recs[3] = s_shared_ip("192.0.2.3", "ops");
    recs[3].removed = true;
    recs[3].changed_ms = T0;
    /* applied: the one entry and the tombstone */
    assert_int_equal(s_shared_reply(fx, DIGEST1, false, recs, 4), 2);
    assert_int_equal(fx->shared.calls, 4);
    assert_int_equal(fx->shared.got[0].kind, SHARED_ALLOW);
    assert_int_equal(fx->shared.got[0].allow.type, ALLOW_IP);
    assert_string_equal(fx->shared.got[0].allow.text, "192.0.2.1");
    assert_string_equal(fx->shared.got[0].allow.reason, "our relay");
    assert_string_equal(fx->shared.got[0].who, "ops");
    assert_int_equal(fx->shared.got[0].changed_ms, T0 - MIN);
    assert_false(fx->shared.got[0].removed);
    assert_int_equal(fx->shared.got[1].kind, SHARED_SITE);
    assert_string_equal(fx->shared.got[1].site, "acme");
    assert_int_equal(fx->shared.got[1].changed_ms, T0 - HOUR);
    assert_string_equal(fx->shared.got[2].allow.text, "192.0.2.2");
    assert_true(fx->shared.got[3].removed);
    assert_int_equal(fx->shared.got[3].changed_ms, T0);
    const peer_stats_t *st = peer_stats(fx->peer);
    assert_int_equal(st->shared_applied, 2);
    assert_int_equal(st->shared_refused, 1);
    assert_true(st->shared_fetched == DIGEST1);
    assert_int_equal(st->shared_fetches, 1);
    /* no decision changes, no bad frame, still live */
    assert_int_equal(decisions_pending(fx->table), 0);
    assert_int_equal(st->bad_frames, 0);
    assert_true(st->live);
    /* the digest it has already: nothing to ask; another: asked */
    s_heartbeat_digest(fx, PEER_EPOCH, 5, DIGEST1);
    s_expect_no_request(fx);
    s_heartbeat_digest(fx, PEER_EPOCH, 5, DIGEST2);
    s_expect_shared_request(fx);
}

static void test_peer_shared_reply_in_parts_records_the_digest_at_the_end(void **state)
{
    s_fx_t *fx = *state;
    s_live_asked(fx);
    shared_rec_t a = s_shared_ip("192.0.2.1", "ops");
    shared_rec_t b = s_shared_ip("192.0.2.2", "ops");
    assert_int_equal(s_shared_reply(fx, DIGEST1, true, &a, 1), 1);
    const peer_stats_t *st = peer_stats(fx->peer);
    assert_int_equal(fx->shared.calls, 1);
    assert_int_equal(st->shared_applied, 1);
    assert_int_equal(st->shared_fetches, 0);
    assert_true(st->shared_fetched == 0);
    /* the answer is not complete: still outstanding, nothing asked */
    s_heartbeat_digest(fx, PEER_EPOCH, 5, DIGEST1);
    s_expect_no_request(fx);
    assert_int_equal(s_shared_reply(fx, DIGEST1, false, &b, 1), 1);
    assert_int_equal(fx->shared.calls, 2);
    assert_string_equal(fx->shared.got[1].allow.text, "192.0.2.2");
    assert_int_equal(st->shared_applied, 2);
    assert_int_equal(st->shared_fetches, 1);
    assert_true(st->shared_fetched == DIGEST1);
    s_heartbeat_digest(fx, PEER_EPOCH, 5, DIGEST1);
    s_expect_no_request(fx);
}

static void test_peer_shared_change_during_the_fetch_asks_again(void **state)
{
    s_fx_t *fx = *state;
    s_live_asked(fx);
    /* the peer changed something after it answered: its heartbeat says DIGEST2 before its
     * answer, as of DIGEST1, arrives */
    s_heartbeat_digest(fx, PEER_EPOCH, 5, DIGEST2);
    s_expect_no_request(fx);
    shared_rec_t a = s_shared_ip("192.0.2.1", "ops");
    assert_int_equal(s_shared_reply(fx, DIGEST1, false, &a, 1), 1);
    const peer_stats_t *st = peer_stats(fx->peer);
    assert_true(st->shared_fetched == DIGEST1); /* what the answer was of */
    assert_true(st->shared_digest == DIGEST2);
    /* so the next heartbeat asks for the newer state */
    s_heartbeat_digest(fx, PEER_EPOCH, 5, DIGEST2);
    s_expect_shared_request(fx);
}

static void test_peer_shared_unreadable_entry_is_refused_not_handed_over(void **state)
{
    s_fx_t *fx = *state;
    s_live_asked(fx);
    shared_rec_t good = s_shared_ip("192.0.2.1", "ops");
    shared_rec_t bad = s_shared_ip("192.0.2.2", "ops");
    Backstop__SharedEntry pbs[2];
    shared_rec_write(&bad, &pbs[0]);
    pbs[0].has_type = 0; /* an allowlist entry without a type */
    shared_rec_write(&good, &pbs[1]);
    assert_int_equal(s_shared_reply_pb(fx, DIGEST1, false, pbs, 2), 1);
    assert_int_equal(fx->shared.calls, 1);
    assert_string_equal(fx->shared.got[0].allow.text, "192.0.2.1");
    const peer_stats_t *st = peer_stats(fx->peer);
    assert_int_equal(st->shared_refused, 1);
    assert_int_equal(st->shared_applied, 1);
    assert_int_equal(st->shared_fetches, 1);
    assert_int_equal(st->bad_frames, 0);
}

static void test_peer_shared_without_apply_asks_nothing(void **state)
{
    s_fx_t *fx = *state;
    /* the fixture's follower has no shared_apply */
    s_join(fx, 5, NULL, 0);
    s_heartbeat_digest(fx, PEER_EPOCH, 5, DIGEST1);
    s_expect_no_request(fx);
    fx->mono = MONO0 + 10 * SEC;
    s_heartbeat_digest(fx, PEER_EPOCH, 5, DIGEST2);
    s_expect_no_request(fx);
    /* a reply nobody asked for is not what the socket carries */
    shared_rec_t a = s_shared_ip("192.0.2.1", "ops");
    assert_int_equal(s_shared_reply(fx, DIGEST1, false, &a, 1), 0);
    const peer_stats_t *st = peer_stats(fx->peer);
    assert_int_equal(st->bad_frames, 1);
    assert_int_equal(st->shared_fetches, 0);
    assert_int_equal(st->shared_applied, 0);
    assert_int_equal(fx->shared.calls, 0);
    assert_true(st->live);
}

int main(void)
{
    msg_open("test_peer", MSG_TO_STDERR);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_peer_first_join_asks_after_the_first_heartbeat,
                                        s_setup, s_teardown),
        cmocka_unit_test_setup_teardown(test_peer_full_snapshot_mirrors_the_peers_decisions,
                                        s_setup, s_teardown),
        cmocka_unit_test_setup_teardown(test_peer_applies_updates_in_sequence, s_setup, s_teardown),
        cmocka_unit_test_setup_teardown(test_peer_ignores_a_duplicate_seq, s_setup, s_teardown),
        cmocka_unit_test_setup_teardown(test_peer_skips_echoes_of_our_own_changes, s_setup,
                                        s_teardown),
        cmocka_unit_test_setup_teardown(test_peer_gap_rejoins_asking_for_the_changes_since, s_setup,
                                        s_teardown),
        cmocka_unit_test_setup_teardown(test_peer_changes_reply_in_two_frames, s_setup, s_teardown),
        cmocka_unit_test_setup_teardown(test_peer_refused_reply_changes_nothing, s_setup,
                                        s_teardown),
        cmocka_unit_test_setup_teardown(test_peer_late_reply_to_an_earlier_request_is_ignored,
                                        s_setup, s_teardown),
        cmocka_unit_test_setup_teardown(test_peer_tick_sends_the_request_after_a_gap, s_setup,
                                        s_teardown),
        cmocka_unit_test_setup_teardown(test_peer_skip_at_the_next_seq_is_a_gap, s_setup,
                                        s_teardown),
        cmocka_unit_test_setup_teardown(test_peer_skip_after_the_site_update_is_a_duplicate,
                                        s_setup, s_teardown),
        cmocka_unit_test_setup_teardown(test_peer_heartbeat_ahead_twice_rejoins, s_setup,
                                        s_teardown),
        cmocka_unit_test_setup_teardown(test_peer_silence_reopens_and_asks_for_the_changes_since,
                                        s_setup, s_teardown),
        cmocka_unit_test_setup_teardown(test_peer_silence_counts_the_intervals_the_peer_announces,
                                        s_setup, s_teardown),
        cmocka_unit_test_setup_teardown(test_peer_silence_counts_the_interval_of_the_snapshot_reply,
                                        s_setup, s_teardown),
        cmocka_unit_test_setup_teardown(test_peer_shorter_announced_interval_keeps_our_silence,
                                        s_setup, s_teardown),
        cmocka_unit_test_setup_teardown(test_peer_unanswered_request_is_sent_again, s_setup,
                                        s_teardown),
        cmocka_unit_test_setup_teardown(
            test_peer_heartbeat_of_another_epoch_asks_for_a_full_snapshot, s_setup, s_teardown),
        cmocka_unit_test_setup_teardown(test_peer_update_of_another_epoch_asks_for_a_full_snapshot,
                                        s_setup, s_teardown),
        cmocka_unit_test_setup_teardown(
            test_peer_full_snapshot_removes_the_peers_gone_and_keeps_ours, s_setup, s_teardown),
        cmocka_unit_test_setup_teardown(test_peer_empty_full_snapshot_removes_the_peers_gone,
                                        s_setup, s_teardown),
        cmocka_unit_test_setup_teardown(test_peer_reply_of_epoch_zero_is_a_bad_frame, s_setup,
                                        s_teardown),
        cmocka_unit_test_setup_teardown(test_peer_full_snapshot_of_a_new_epoch_removes_nothing,
                                        s_setup, s_teardown),
        cmocka_unit_test_setup_teardown(test_peer_full_snapshot_skips_the_peers_copies_of_ours,
                                        s_setup, s_teardown),
        cmocka_unit_test_setup_teardown(test_peer_fresh_store_takes_its_copies_back_once, s_setup,
                                        s_teardown),
        cmocka_unit_test_setup_teardown(test_peer_queues_updates_while_joining, s_setup,
                                        s_teardown),
        cmocka_unit_test_setup_teardown(test_peer_counts_frames_of_the_wrong_body, s_setup,
                                        s_teardown),
        cmocka_unit_test_setup_teardown(test_peer_counts_an_unusable_decision_and_moves_on, s_setup,
                                        s_teardown),
        cmocka_unit_test_setup_teardown(test_peer_merges_a_decision_with_the_identity_of_ours,
                                        s_setup, s_teardown),
        cmocka_unit_test_setup_teardown(test_peer_shared_live_follower_asks_when_the_digest_is_new,
                                        s_setup, s_teardown),
        cmocka_unit_test_setup_teardown(test_peer_shared_asks_once_even_for_an_empty_digest,
                                        s_setup, s_teardown),
        cmocka_unit_test_setup_teardown(test_peer_shared_joining_follower_does_not_ask, s_setup,
                                        s_teardown),
        cmocka_unit_test_setup_teardown(test_peer_shared_unanswered_request_is_sent_again, s_setup,
                                        s_teardown),
        cmocka_unit_test_setup_teardown(test_peer_shared_reply_hands_each_entry_over, s_setup,
                                        s_teardown),
        cmocka_unit_test_setup_teardown(
            test_peer_shared_reply_in_parts_records_the_digest_at_the_end, s_setup, s_teardown),
        cmocka_unit_test_setup_teardown(test_peer_shared_change_during_the_fetch_asks_again,
                                        s_setup, s_teardown),
        cmocka_unit_test_setup_teardown(
            test_peer_shared_unreadable_entry_is_refused_not_handed_over, s_setup, s_teardown),
        cmocka_unit_test_setup_teardown(test_peer_shared_without_apply_asks_nothing, s_setup,
                                        s_teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
