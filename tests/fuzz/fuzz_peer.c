/*
 * fuzz_peer - libFuzzer target: what an aggregator receives from its failover peer
 *
 * The input is a sequence of steps, each one selector byte, a 16-bit
 * big-endian length and that many bytes of a serialized Frame (fewer when the
 * input ends first). The selector's bits:
 *   bit 0     where the frame arrived: 0 the SUB (updates, heartbeats), 1 the
 *             DEALER (snapshot replies)
 *   bits 1-2  the monotonic clock moves on 1, 250, 1000 or 3000 ms (3000 is the
 *             peer's silence_ms: with bit 3, heartbeat silence)
 *   bit 3     peer_tick() after the clock moved, before the frame
 *   bits 4-5  the wall clock (now_ms) moves on 0 s, 1 s, 1 min or 1 h
 *   bits 6-7  3: the frame is not the peer's but ours (see "own changes"); else
 *             peer_feed(); 2 also runs the table's expiry timer after it
 * The clocks move and the tick runs before the frame is decoded, so a step
 * with an empty or undecodable frame is a pure tick. Frames are decoded with
 * wire_unpack() (the checks zsock_recv applies) and handed to peer_feed(),
 * as peer_handle() does with what its sockets read. An input of odd length
 * (a trailing byte, too short for a step, is enough) runs with
 * peer_config_t.fresh: our store is new, so the first full snapshot takes
 * back the peer's copies of ours.
 *
 * Each run: a fresh decisions_new(S_EPOCH, 0, 16) (16: the smallest
 * change_log; the default 4096 would be a 9 MB ring a run) and a fresh
 * peer_new(..., 0, 0), ticked once to open its sockets (JOINING).
 *
 * Sockets: peer_feed() does nothing before peer_tick() opened them, and a
 * snapshot reply is taken only once the request went out on the DEALER
 * (after a heartbeat). So there is a ZeroMQ context, made on the first run
 * with an inproc PUB for the peer's SUB (it never sends), and each run binds
 * a ROUTER of its own for the peer's DEALER, drained after every step: what
 * it receives is checked as the peer's SnapshotRequest. The PUB is poked
 * after every step so that the SUBs a silence closed can end. Nothing is
 * ever sent to the peer's sockets: every frame goes through peer_feed(), so
 * peer_handle()'s reading of them and peer_poll() are not reached, nor CURVE,
 * nor a socket that fails to open; neither is peer_feed() before the first
 * tick (state CLOSED), nor join-overflow (65536 updates queued: far beyond
 * an input). peer_tick() is: start, silence (sockets reopened), join-timeout
 * and the resend of a join. libFuzzer stops its leak check after every input
 * early on ("disabled leak detection after every mutation"): ZeroMQ frees a
 * closed socket on its reaper thread, after the run; LeakSanitizer still
 * checks at exit, where whatever a run lost would show.
 *
 * Own changes (bits 6-7 = 3) stand for what the aggregator does to its own
 * table meanwhile, so that the peer's changes meet decisions that are not its
 * own (refusals, merges, removals of ours, the full snapshot's sweep keeping
 * ours): an Update's decision is proposed (UPSERT) or revoked by id (REMOVE),
 * a SnapshotReply's decisions are proposed, a Heartbeat runs the expiry timer,
 * a SharedReply's readable entries become ours (see "shared").
 *
 * Shared (PROTOCOL.md 4.7): the peer has a shared_apply callback, so a
 * Heartbeat's shared_digest makes it send a SharedRequest once LIVE, and a
 * SharedReply on the DEALER hands each entry that reads to the callback. The
 * callback stands for server_shared_apply() on a model of ours: the latest
 * record of each identity this run (shared_loses() decides, as the server
 * does), 1 when the entry wins and replaces ours, 0 when ours is as new or
 * newer, -1 for a live site whose key another live site of ours has. It
 * checks what peer.c hands it (what shared_rec_read() promises): kind ALLOW
 * or SITE, changed_ms > 0, who and reason within their limits; a site's name
 * passes server_site_name_ok() and its key is none or a Z85 CURVE key; an
 * allowlist entry has a known type and a text, and a key entry a subject
 * scope and fp == fp_text(text); shared_rec_pack() then shared_rec_unpack()
 * gives it back alike (the same identity, neither losing to the other: what
 * the store keeps is what was decided); and shared_loses() is a strict order
 * (the two never both lose to each other). It is called only for a
 * SharedReply on the DEALER.
 *
 * Checked (the oracle; __builtin_trap() on a violation):
 *  - a SharedReply taken (on the DEALER, not our own): no decision change,
 *    peer_feed() returns the entries the callback applied (not decision
 *    changes: they stay out of the counts below), shared_applied grows by as
 *    many, shared_refused by the entries that do not read plus those the
 *    callback refused, the callback is called for every other entry; without
 *    more, shared_fetched is its digest and shared_fetches grows by one. Any
 *    other frame never reaches the callback;
 *  - after every step, the changes taken with decisions_take_change() follow
 *    the last one's seq by one each, carry the table's epoch (change and
 *    decision) and decision.seq == seq; after peer_feed() there are exactly as
 *    many as it returned and as peer_stats()->applied grew, all marked
 *    mirrored; after own changes exactly as many as the calls reported, none
 *    mirrored; after a tick none;
 *  - peer_stats(): applied, echoes, refused, resyncs, bad_frames and the
 *    shared counters (fetches, applied, refused) never go down; seq equals
 *    peer_position()'s; heard_mono is 0 or a time of this run;
 *  - every SnapshotRequest the peer sends: site "*", all_sites, our name,
 *    epoch and since_seq both or neither, and when there, a non-zero epoch and
 *    a position peer_position() gave after some step of the run (not
 *    necessarily the last: see s_drain_requests); every SharedRequest: our
 *    name, and a heartbeat with a digest was heard before it this run;
 *  - at the end: decisions_seq() == start seq + changes taken, nothing
 *    pending, peer_stats()->applied == mirrored changes taken == the sum of
 *    peer_feed()'s returns; every active decision has a canonical id (8
 *    characters of Crockford base32, upper case), a scope other than unknown,
 *    reach FLEET with no site or LOCAL with one, the table's epoch, a seq no
 *    later than the table's whose change was an upsert of that id with the
 *    same mirrored mark, and decisions_find()/decisions_find_identity() give
 *    it back; decisions_count() and decisions_count_enforced() agree.
 * Not checked: peer_stats()->epoch against peer_position() (a rejoin for a
 * new epoch zeroes the position's and keeps the counter's by design).
 * Logging goes to /dev/null unless BACKSTOP_FUZZ_LOG is set.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <zmq.h>

#include "decisions.h"
#include "fp.h"
#include "fuzz_lib.h"
#include "peer.h"
#include "publish.h"
#include "server.h"
#include "shared.h"
#include "wire.h"
#include "xalloc.h"
#include "zsock.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define S_EP_PUB    "inproc://fuzz-peer-decisions"
#define S_EP_ROUTER "inproc://fuzz-peer-snapshot-%llu" /* one a run */
#define S_NAME      "fuzz-peer"
#define S_SILENCE   3000
#define S_EPOCH     0x0123456789abcdefULL /* our table's epoch */
#define S_MONO0     1000000               /* the monotonic clock at the start of a run */
#define S_NOW0      1700000000000LL       /* the wall clock at the start of a run */
#define S_LOG_MAX   16                    /* change_log: its minimum */
#define S_MODEL_MAX 512                   /* identities the model of ours keeps */

#define CHECK(cond) FUZZ_CHECK(cond)

static void *s_ctx;
static void *s_pub;               /* where the peer's SUB connects; never sends */
static void *s_router;            /* where this run's peer's DEALER connects; drained */
static unsigned long long s_runs; /* runs so far: names the ROUTER's endpoint */

/* One change taken during a run. */
typedef struct {
    decision_kind_t kind;
    bool mirrored;
    char id[DECISION_ID_LEN + 1];
} s_taken_t;

typedef struct {
    decisions_t *table;
    peer_t *peer;
    uint64_t start_seq; /* decisions_seq() at the start */
    s_taken_t *taken;   /* changes taken, taken[i] has seq start_seq + 1 + i */
    size_t ntaken, cap;
    uint64_t mirrored; /* of which marked mirrored */
    uint64_t returned; /* sum of peer_feed()'s returns, SharedReplies' left out */
    peer_stats_t last; /* peer_stats() after the previous step */
    bool heard_digest; /* a step ended with peer_stats()->shared_heard */
    /* the model of our allowlist and sites: the latest record of each identity */
    shared_rec_t *model;
    uint64_t *model_id;
    size_t nmodel, model_cap;
    /* what the shared_apply callback did */
    uint64_t cb_calls, cb_applied, cb_refused;
} s_run_t;

/* The peer's positions (epoch, seq) after the steps of this run. */
typedef struct {
    uint64_t epoch, seq;
} s_pos_t;
static s_pos_t *s_hist;
static size_t s_nhist, s_hist_cap;

static void s_cleanup(void)
{
    zsock_close(&s_router);
    zsock_close(&s_pub);
    xfree(s_hist);
    s_hist = NULL;
    if (s_ctx)
        zmq_ctx_term(s_ctx);
    s_ctx = NULL;
}

static void s_init(void)
{
    fuzz_quiet();
    s_ctx = zmq_ctx_new();
    if (!s_ctx)
        abort();
    s_pub = zsock_new(s_ctx, ZMQ_PUB);
    if (!s_pub || zsock_bind(s_pub, S_EP_PUB, 0, (gid_t)-1) != 0)
        abort();
    atexit(s_cleanup);
}

/* Lets the PUB process its commands (subscriptions, ends of closed SUBs) so that nothing
 * piles up across runs; it never has anything to send. */
static void s_poke_pub(void)
{
    int events;
    size_t len = sizeof(events);
    zmq_getsockopt(s_pub, ZMQ_EVENTS, &events, &len);
}

static void s_hist_add(const peer_t *peer)
{
    s_pos_t pos;
    peer_position(peer, &pos.epoch, &pos.seq);
    if (s_nhist && s_hist[s_nhist - 1].epoch == pos.epoch && s_hist[s_nhist - 1].seq == pos.seq)
        return;
    if (s_nhist == s_hist_cap) {
        s_hist_cap = s_hist_cap ? s_hist_cap * 2 : 64;
        s_hist = xrealloc(s_hist, s_hist_cap * sizeof(*s_hist));
    }
    s_hist[s_nhist++] = pos;
}

static bool s_hist_has(uint64_t epoch, uint64_t seq)
{
    for (size_t i = 0; i < s_nhist; i++)
        if (s_hist[i].epoch == epoch && s_hist[i].seq == seq)
            return true;
    return false;
}

/* Reads every request the peer sent and checks it; records the peer's position first. A
 * request is sent within a step, with the position the peer has at the end of it; the
 * ROUTER usually has it by the drain after that step, but not always (its mailbox takes
 * commands from the reaper thread too, which ends closed sockets, and ours can wait behind
 * a wake-up the reaper has yet to send), so the position is looked up among those of the
 * run. Each run has its own ROUTER, so a late request never reaches another run. */
static void s_drain_requests(const peer_t *peer, bool heard_digest)
{
    if (peer)
        s_hist_add(peer);
    s_poke_pub();
    for (;;) {
        Backstop__Frame *f = NULL;
        zsock_meta_t meta;
        wire_err_t err;
        int rc = zsock_recv(s_router, ZMQ_DONTWAIT, &f, &meta, &err);
        if (rc < 0)
            break;
        CHECK(rc == 1);
        if (f->body_case == BACKSTOP__FRAME__BODY_SHARED_REQUEST) {
            /* asked for our allowlist and sites: only after a digest was heard */
            CHECK(strcmp(f->shared_request->name, S_NAME) == 0);
            CHECK(heard_digest);
            wire_free(&f);
            continue;
        }
        /* else what the peer sends is one well-formed SnapshotRequest */
        CHECK(f->body_case == BACKSTOP__FRAME__BODY_SNAPSHOT_REQUEST);
        const Backstop__SnapshotRequest *rq = f->snapshot_request;
        CHECK(strcmp(rq->site, PUBLISH_ALL_SITES) == 0 && strcmp(rq->sensor, S_NAME) == 0);
        CHECK(rq->has_all_sites && rq->all_sites);
        CHECK(rq->has_epoch == rq->has_since_seq);
        /* the changes since a position the peer had; epoch 0 asks for a full snapshot */
        CHECK(!rq->has_epoch || (rq->epoch != 0 && s_hist_has(rq->epoch, rq->since_seq)));
        wire_free(&f);
    }
}

/* Takes the changes the last step made: expect of them, all marked mirrored or none. */
/* Takes every pending change, mirrored or not (checked as s_take() does). */
static void s_take_any(s_run_t *r)
{
    decision_change_t c;
    while (decisions_take_change(r->table, &c) == 1) {
        CHECK(c.seq == r->start_seq + 1 + r->ntaken);
        CHECK(c.epoch == S_EPOCH && c.decision.epoch == S_EPOCH && c.decision.seq == c.seq);
        CHECK(c.kind == DECISION_UPSERT || c.kind == DECISION_REMOVE);
        if (r->ntaken == r->cap) {
            r->cap = r->cap ? r->cap * 2 : 64;
            r->taken = xrealloc(r->taken, r->cap * sizeof(*r->taken));
        }
        s_taken_t *t = &r->taken[r->ntaken++];
        t->kind = c.kind;
        t->mirrored = c.decision.mirrored;
        memcpy(t->id, c.decision.id, sizeof(t->id));
        if (c.decision.mirrored)
            r->mirrored++;
    }
}

/* Takes every pending change: expect of them, each marked mirrored or not as said. */
static void s_take(s_run_t *r, size_t expect, bool mirrored)
{
    size_t before = r->ntaken;
    s_take_any(r);
    CHECK(r->ntaken - before == expect);
    for (size_t i = before; i < r->ntaken; i++)
        CHECK(r->taken[i].mirrored == mirrored);
    CHECK(decisions_pending(r->table) == 0);
}

/* Takes what the peer's n changes applied logged, dm of them merges of a decision of the
 * peer's with one of ours (decisions_mirror() MERGED): every other change is logged once,
 * marked mirrored; a merge logs the peer's decision (mirrored) when it takes the place of
 * ours, ours removed, and an extension (both ours, not mirrored), or only the extension of
 * ours when ours stays. */
static void s_take_peer(s_run_t *r, size_t n, size_t dm)
{
    size_t before = r->ntaken, mirrored = r->mirrored;
    s_take_any(r);
    size_t m = r->mirrored - mirrored, u = r->ntaken - before - m;
    CHECK(m <= n && m + dm >= n);
    CHECK(u <= 2 * dm);
}

/* peer_stats() after a step: counters only grow; the position agrees. */
static void s_check_stats(s_run_t *r, int64_t mono)
{
    const peer_stats_t *st = peer_stats(r->peer);
    CHECK(st->applied >= r->last.applied && st->echoes >= r->last.echoes);
    CHECK(st->refused >= r->last.refused && st->resyncs >= r->last.resyncs);
    CHECK(st->merged >= r->last.merged);
    CHECK(st->bad_frames >= r->last.bad_frames);
    CHECK(st->shared_fetches >= r->last.shared_fetches);
    CHECK(st->shared_applied >= r->last.shared_applied);
    CHECK(st->shared_refused >= r->last.shared_refused);
    CHECK(st->shared_heard || !r->last.shared_heard);
    if (st->shared_heard)
        r->heard_digest = true;
    CHECK(st->heard_mono == 0 || (st->heard_mono >= S_MONO0 && st->heard_mono <= mono));
    uint64_t epoch, seq;
    peer_position(r->peer, &epoch, &seq);
    CHECK(st->seq == seq);
    r->last = *st;
}

/* ---- shared: the model of our allowlist and sites, and the callback ---- */

/* The model's record of identity, or NULL. */
static shared_rec_t *s_model_find(s_run_t *r, uint64_t identity)
{
    for (size_t i = 0; i < r->nmodel; i++)
        if (r->model_id[i] == identity)
            return &r->model[i];
    return NULL;
}

/* Makes rec the model's record of its identity (dropped when the model is full). */
static void s_model_put(s_run_t *r, const shared_rec_t *rec)
{
    uint64_t id = shared_identity(rec);
    shared_rec_t *have = s_model_find(r, id);
    if (have) {
        *have = *rec;
        return;
    }
    if (r->nmodel == S_MODEL_MAX)
        return;
    if (r->nmodel == r->model_cap) {
        r->model_cap = r->model_cap ? r->model_cap * 2 : 16;
        r->model = xrealloc(r->model, r->model_cap * sizeof(*r->model));
        r->model_id = xrealloc(r->model_id, r->model_cap * sizeof(*r->model_id));
    }
    r->model[r->nmodel] = *rec;
    r->model_id[r->nmodel++] = id;
}

/* What shared_rec_read() promises of a record it read. */
static void s_check_rec(const shared_rec_t *rec)
{
    CHECK(rec->kind == SHARED_ALLOW || rec->kind == SHARED_SITE);
    CHECK(rec->changed_ms > 0);
    CHECK(strlen(rec->who) <= DECISION_NAME_MAX);
    if (rec->kind == SHARED_SITE) {
        CHECK(server_site_name_ok(rec->site));
        CHECK(rec->public_key[0] == 0 || zsock_key_valid(rec->public_key));
    } else {
        const allow_entry_t *e = &rec->allow;
        CHECK(e->type >= ALLOW_IP && e->type <= ALLOW_SITE);
        CHECK(e->text[0] != 0 && strlen(e->text) <= ALLOW_TEXT_MAX);
        CHECK(strlen(e->reason) <= DECISION_REASON_MAX);
        CHECK(e->created_ms == rec->changed_ms);
        if (e->type == ALLOW_KEY) {
            CHECK(e->scope == BS_SCOPE_SUBJECT || e->scope == BS_SCOPE_ORIG_SUBJECT);
            CHECK(e->fp == fp_text(e->text));
        }
    }
    /* stored and read back (a tombstone record, the peer's next answer): alike */
    size_t len = 0;
    uint8_t *blob = shared_rec_pack(rec, &len);
    shared_rec_t back;
    CHECK(shared_rec_unpack(blob, len, &back) == 0);
    xfree(blob);
    CHECK(back.kind == rec->kind && back.removed == rec->removed);
    CHECK(back.changed_ms == rec->changed_ms);
    CHECK(shared_identity(&back) == shared_identity(rec));
    CHECK(!shared_loses(&back, rec) && !shared_loses(rec, &back));
}

/* peer_config_t.shared_apply: server_shared_apply() on the model. */
static int s_shared_apply(void *arg, const shared_rec_t *rec)
{
    s_run_t *r = arg;
    r->cb_calls++;
    s_check_rec(rec);
    shared_rec_t *have = s_model_find(r, shared_identity(rec));
    bool loses = shared_loses(have, rec);
    /* a strict order: two records never both lose to each other */
    CHECK(!(have && loses && shared_loses(rec, have)));
    if (!loses)
        return 0;
    if (rec->kind == SHARED_SITE && !rec->removed && rec->public_key[0]) {
        for (size_t i = 0; i < r->nmodel; i++) {
            const shared_rec_t *o = &r->model[i];
            if (o->kind == SHARED_SITE && !o->removed && strcmp(o->site, rec->site) != 0 &&
                strcmp(o->public_key, rec->public_key) == 0) {
                r->cb_refused++;
                return -1;
            }
        }
    }
    s_model_put(r, rec);
    r->cb_applied++;
    return 1;
}

/* How many entries of a SharedReply do not read (peer.c refuses them before the
 * callback). */
static size_t s_shared_unreadable(const Backstop__SharedReply *rp)
{
    size_t n = 0;
    for (size_t i = 0; i < rp->n_entries; i++) {
        shared_rec_t rec;
        char err[128];
        if (shared_rec_read(rp->entries[i], &rec, err, sizeof(err)) < 0)
            n++;
    }
    return n;
}

/* A decision of a frame as one of our own proposals; false when the table would not take
 * it (decisions_propose() asserts what it is given). */
static bool s_own_proposal(const Backstop__Decision *pb, int64_t now_ms, decision_t *d)
{
    if (!pb || publish_pb_read(pb, d) < 0)
        return false;
    if (d->reach != BS_REACH_FLEET && !(d->reach == BS_REACH_LOCAL && d->site[0]))
        return false;
    return d->expires_ms > now_ms;
}

/* Proposes d as ours; the changes it made (0 or 1). */
static size_t s_own_propose(decisions_t *table, const Backstop__Decision *pb, int64_t now_ms)
{
    decision_t d;
    if (!s_own_proposal(pb, now_ms, &d))
        return 0;
    return decisions_propose(table, &d, 0, now_ms, NULL) == DECISIONS_UNCHANGED ? 0 : 1;
}

/* What the aggregator itself does with f meanwhile; the changes it made. */
static size_t s_own(s_run_t *r, decisions_t *table, const Backstop__Frame *f, int64_t now_ms)
{
    size_t n = 0;
    switch (f->body_case) {
    case BACKSTOP__FRAME__BODY_UPDATE: {
        const Backstop__DecisionUpdate *u = f->update;
        if (u->kind == BACKSTOP__DECISION_UPDATE__KIND__UPSERT) {
            n += s_own_propose(table, u->decision, now_ms);
        } else if (u->kind == BACKSTOP__DECISION_UPDATE__KIND__REMOVE && u->decision) {
            decision_why_t why = u->why && strcmp(u->why, "allowlisted") == 0
                                     ? DECISION_WHY_ALLOWLISTED
                                     : DECISION_WHY_REVOKED;
            if (decisions_remove(table, u->decision->id, why, now_ms) == 0)
                n++;
        }
        break;
    }
    case BACKSTOP__FRAME__BODY_SNAPSHOT_REPLY: {
        const Backstop__SnapshotReply *rp = f->snapshot_reply;
        for (size_t i = 0; i < rp->n_decisions; i++)
            n += s_own_propose(table, rp->decisions[i], now_ms);
        break;
    }
    case BACKSTOP__FRAME__BODY_HEARTBEAT:
        n += decisions_expire(table, now_ms);
        break;
    case BACKSTOP__FRAME__BODY_SHARED_REPLY: {
        /* operators change our allowlist and sites: these are ours now */
        const Backstop__SharedReply *rp = f->shared_reply;
        for (size_t i = 0; i < rp->n_entries; i++) {
            shared_rec_t rec;
            char err[128];
            if (shared_rec_read(rp->entries[i], &rec, err, sizeof(err)) == 0)
                s_model_put(r, &rec);
        }
        break;
    }
    default:
        break;
    }
    return n;
}

static bool s_canonical_id(const char *id)
{
    static const char alphabet[] = "0123456789ABCDEFGHJKMNPQRSTVWXYZ";
    if (strnlen(id, DECISION_ID_LEN + 1) != DECISION_ID_LEN)
        return false;
    for (size_t i = 0; i < DECISION_ID_LEN; i++)
        if (id[i] == 0 || !strchr(alphabet, id[i]))
            return false;
    return true;
}

typedef struct {
    const s_run_t *r;
    size_t count, enforced;
} s_walk_t;

static int s_check_decision(const decision_t *d, void *arg)
{
    s_walk_t *w = arg;
    const s_run_t *r = w->r;
    CHECK(s_canonical_id(d->id));
    CHECK(d->scope > BS_SCOPE_UNKNOWN && d->scope < BS_SCOPE_COUNT);
    CHECK((d->reach == BS_REACH_FLEET && d->site[0] == 0) ||
          (d->reach == BS_REACH_LOCAL && d->site[0] != 0));
    CHECK(d->epoch == S_EPOCH);
    CHECK(d->seq > r->start_seq && d->seq <= decisions_seq(r->table));
    /* its latest change was an upsert of it, marked as it is */
    const s_taken_t *t = &r->taken[d->seq - r->start_seq - 1];
    CHECK(t->kind == DECISION_UPSERT && strcmp(t->id, d->id) == 0 && t->mirrored == d->mirrored);
    CHECK(decisions_find(r->table, d->id) == d);
    CHECK(decisions_find_identity(r->table, d->scope, d->fp, d->reach, d->site, d->mode) == d);
    w->count++;
    if (d->mode == BS_MODE_ENFORCE)
        w->enforced++;
    return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (!s_ctx)
        s_init();
    /* this run's ROUTER, at an endpoint of its own */
    char ep_router[64];
    snprintf(ep_router, sizeof(ep_router), S_EP_ROUTER, ++s_runs);
    /* sockets closed by the last run still hold their slots until the reaper thread ends
     * them: give it a moment when they are all taken (EMFILE) */
    for (int tries = 0; !(s_router = zsock_new(s_ctx, ZMQ_ROUTER)); tries++) {
        if (errno != EMFILE || tries == 1000) {
            fprintf(stderr, "fuzz_peer: ROUTER: %s\n", zmq_strerror(errno));
            abort();
        }
        s_poke_pub();
        usleep(1000);
    }
    if (zsock_bind(s_router, ep_router, 0, (gid_t)-1) != 0) {
        fprintf(stderr, "fuzz_peer: bind %s: %s\n", ep_router, zmq_strerror(errno));
        abort();
    }
    s_nhist = 0;
    s_run_t r = {0};
    r.table = decisions_new(S_EPOCH, 0, S_LOG_MAX);
    r.start_seq = decisions_seq(r.table);
    peer_config_t pc = {
        .decisions = S_EP_PUB,
        .snapshot = ep_router,
        .name = S_NAME,
        .silence_ms = S_SILENCE,
        .fresh = size & 1, /* our store is new: the first full snapshot adopts */
        .shared_apply = s_shared_apply,
        .shared_arg = &r,
    };
    r.peer = peer_new(s_ctx, &pc, 0, 0);
    int64_t mono = S_MONO0, now_ms = S_NOW0;
    static const int64_t mono_step[4] = {1, 250, 1000, S_SILENCE};
    static const int64_t now_step[4] = {0, 1000, 60000, 3600000};
    peer_tick(r.peer, mono); /* opens the sockets: JOINING */
    s_take(&r, 0, true);
    s_check_stats(&r, mono);
    s_drain_requests(r.peer, r.heard_digest);

    uint8_t sel;
    const uint8_t *buf;
    size_t len;
    while (fuzz_step(&data, &size, &sel, &buf, &len)) {

        mono += mono_step[(sel >> 1) & 3];
        now_ms += now_step[(sel >> 4) & 3];
        if (sel & 8) {
            peer_tick(r.peer, mono);
            s_take(&r, 0, true);
            s_check_stats(&r, mono);
            s_drain_requests(r.peer, r.heard_digest);
        }
        wire_err_t werr = WIRE_OK;
        Backstop__Frame *f = wire_unpack(buf, len, &werr);
        if (!f)
            continue;
        /* what wire_unpack returns must pass its own check (wire.h) */
        CHECK(wire_check(f) == WIRE_OK);
        unsigned what = sel >> 6;
        if (what == 3) {
            size_t n = s_own(&r, r.table, f, now_ms);
            s_take(&r, n, false);
        } else if (f->body_case == BACKSTOP__FRAME__BODY_SHARED_REPLY && (sel & 1)) {
            /* the peer's allowlist and sites: to the callback, no decision changes */
            const Backstop__SharedReply *rp = f->shared_reply;
            size_t bad = s_shared_unreadable(rp);
            peer_stats_t before = *peer_stats(r.peer);
            uint64_t calls = r.cb_calls, applied = r.cb_applied, refused = r.cb_refused;
            int n = peer_feed(r.peer, r.table, f, false, mono, now_ms);
            const peer_stats_t *st = peer_stats(r.peer);
            CHECK(n >= 0 && (uint64_t)n == r.cb_applied - applied);
            CHECK(r.cb_calls - calls == rp->n_entries - bad);
            CHECK(st->shared_applied - before.shared_applied == (uint64_t)n);
            CHECK(st->shared_refused - before.shared_refused == bad + (r.cb_refused - refused));
            CHECK(st->applied == before.applied && st->bad_frames == before.bad_frames);
            if (rp->has_more && rp->more) {
                CHECK(st->shared_fetches == before.shared_fetches);
            } else {
                CHECK(st->shared_fetches == before.shared_fetches + 1);
                CHECK(st->shared_fetched == rp->digest);
            }
            s_take(&r, 0, true);
            if (what == 2) {
                size_t k = decisions_expire(r.table, now_ms);
                s_take(&r, k, false);
            }
        } else {
            uint64_t applied = peer_stats(r.peer)->applied, calls = r.cb_calls;
            uint64_t merged = peer_stats(r.peer)->merged;
            int n = peer_feed(r.peer, r.table, f, !(sel & 1), mono, now_ms);
            CHECK(n >= 0);
            CHECK(peer_stats(r.peer)->applied - applied == (uint64_t)n);
            CHECK(r.cb_calls == calls);
            r.returned += (uint64_t)n;
            s_take_peer(&r, (size_t)n, (size_t)(peer_stats(r.peer)->merged - merged));
            if (what == 2) {
                size_t k = decisions_expire(r.table, now_ms);
                s_take(&r, k, false);
            }
        }
        s_check_stats(&r, mono);
        s_drain_requests(r.peer, r.heard_digest);
        wire_free(&f);
    }

    /* the end: the sequence, the counters and every decision in force */
    CHECK(decisions_seq(r.table) == r.start_seq + r.ntaken);
    CHECK(decisions_pending(r.table) == 0);
    /* a merge counts as applied, and logs the peer's decision only when it took the place
     * of ours */
    const peer_stats_t *fin = peer_stats(r.peer);
    CHECK(fin->applied == r.returned && fin->merged <= fin->applied);
    CHECK(r.mirrored <= fin->applied && r.mirrored + fin->merged >= fin->applied);
    s_walk_t w = {.r = &r};
    CHECK(decisions_foreach(r.table, NULL, s_check_decision, &w) == 0);
    CHECK(w.count == decisions_count(r.table) && w.enforced == decisions_count_enforced(r.table));

    peer_destroy(&r.peer);
    decisions_destroy(&r.table);
    xfree(r.taken);
    xfree(r.model);
    xfree(r.model_id);
    s_drain_requests(NULL, r.heard_digest);
    zsock_close(&s_router);
    return 0;
}
