/*
 * peer - follows the other aggregator of a failover pair; see peer.h.
 *
 * States: CLOSED (no sockets yet, or about to reopen), JOINING (subscribed to
 * everything; waiting for the first heartbeat to send the request, then for
 * the reply; updates queue meanwhile), LIVE (updates applied in sequence).
 * The steps are PROTOCOL.md 4.2's with three differences: one subscription
 * to every topic, SnapshotRequest.all_sites, and a full snapshot merged into
 * the table (decisions_mirror) instead of replacing it.
 *
 * An answer may come in several frames (more = true on all but the last),
 * changes-only ones too: each frame's changes are applied as it comes, and the
 * position is the answer's seq, and the follower LIVE, only after the last;
 * updates keep queueing until then. A reply with refused set (our key is not
 * the one the peer knows as peer_public_key) is no snapshot: nothing is
 * applied or removed, and the join times out and is sent again.
 *
 * Log lines (key=value):
 *   peer: state=joining reason=start|gap|epoch|heartbeat-ahead|silence|join-timeout|
 *         join-overflow peer=ENDPOINT epoch=E seq=S (silence and join-timeout while
 *         not live: the first, then one a minute)
 *   peer: state=live peer=ENDPOINT sync=full|changes epoch=E seq=S changes=N removed=R
 *   peer: peer ENDPOINT refused the snapshot: ... count=N (once a minute at most)
 *   peer: decision=ID refused: ... (once a minute at most, with a count)
 *   peer: decision=ID merged: ... kept=ID (one of ours had its identity)
 *
 * Silence is judged as a sensor judges it (PROTOCOL.md 4.3): silence_ms, or 3 of the
 * heartbeat intervals the peer announces (in its heartbeats and snapshot replies) when
 * that is longer, so a peer configured with a longer heartbeat_interval than ours is not
 * given up between two of its heartbeats.
 */
#include "peer.h"

#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

#include "msg.h"
#include "publish.h"
#include "wire.h"
#include "xalloc.h"

/* Updates held while joining; more means start again. */
#define S_MAX_QUEUED 65536
/* A refusal is logged at most once per this interval. */
#define S_REFUSED_LOG_MS 60000

typedef enum { S_CLOSED, S_JOINING, S_LIVE } s_state_t;

/* One change read off the wire. */
typedef struct {
    bool skip;           /* a SKIP: another site's change, nothing to apply */
    bool bad;            /* its decision is unusable here: only its seq counts */
    decision_change_t c; /* the change (not for a SKIP) */
} s_update_t;

struct peer {
    void *ctx;                        /* ZeroMQ context (borrowed) */
    char *ep_decisions;               /* the peer's PUB */
    char *ep_snapshot;                /* ... ROUTER */
    char *server_public;              /* its CURVE key, "" in plain mode */
    char *name;                       /* our name in requests */
    zsock_keys_t keys;                /* our key pair (CURVE) */
    bool curve;                       /* CURVE mode */
    int64_t silence_ms;               /* silence before reconnecting, at least */
    int64_t peer_interval_ms;         /* the peer's heartbeat interval (0: not announced) */
    void *sub;                        /* the peer's updates and heartbeats */
    void *dealer;                     /* requests to its snapshot socket */
    s_state_t state;                  /* see the header comment */
    bool join_wanted;                 /* JOINING: the request is still to be sent */
    int64_t join_mono;                /* when the join began, or the request went out */
    bool hb_ahead;                    /* the last heartbeat said the peer is ahead of us */
    uint64_t epoch;                   /* the peer's epoch followed (0: ask for a full snapshot) */
    uint64_t known_epoch;             /* the peer's epoch when we were last in sequence with it */
    bool adopt;                       /* our store is new: the peer's copies of ours are adopted */
    s_update_t *queued;               /* JOINING: updates that came before the reply */
    size_t nqueued, queued_cap;       /* used, allocated */
    char (*ids)[DECISION_ID_LEN + 1]; /* ids of a full snapshot so far */
    size_t nids, ids_cap;             /* used, allocated */
    size_t joins;                     /* joins so far */
    size_t changes;                   /* changes applied since the join began */
    int64_t retry_log_mono;           /* when a reconnect was last logged (0: none yet) */
    int (*shared_apply)(void *, const shared_rec_t *); /* cfg's */
    void *shared_arg;                                  /* its arg */
    bool shared_asked;                                 /* a SharedRequest is out */
    int64_t shared_ask_mono;                           /* when it went */
    bool shared_have;              /* an answer was taken in full (st.shared_fetched) */
    size_t shared_got;             /* entries of the answer under way */
    size_t shared_took;            /* ... of which applied */
    int64_t shared_log_mono;       /* when a refused entry was last logged */
    uint64_t refused_logged;       /* refusals already logged */
    int64_t refused_log_mono;      /* when last logged */
    uint64_t snap_refused_logged;  /* st.snapshots_refused already logged */
    int64_t snap_refused_log_mono; /* when last logged (0: never) */
    peer_stats_t st;               /* counters */
};

peer_t *peer_new(void *ctx, const peer_config_t *cfg, uint64_t epoch, uint64_t seq)
{
    peer_t *self = xcalloc(1, sizeof(*self));
    self->ctx = ctx;
    self->ep_decisions = xstrdup(cfg->decisions);
    self->ep_snapshot = xstrdup(cfg->snapshot);
    self->server_public = xstrdup(cfg->server_public ? cfg->server_public : "");
    self->name = xstrdup(cfg->name && *cfg->name ? cfg->name : "aggregator");
    self->curve = *self->server_public && cfg->keys;
    if (self->curve)
        self->keys = *cfg->keys;
    self->silence_ms = cfg->silence_ms > 0 ? cfg->silence_ms : 3000;
    self->epoch = self->known_epoch = self->st.epoch = epoch;
    self->st.seq = seq;
    self->adopt = cfg->fresh;
    self->shared_apply = cfg->shared_apply;
    self->shared_arg = cfg->shared_arg;
    return self;
}

static void s_sockets_close(peer_t *self)
{
    zsock_close(&self->sub);
    zsock_close(&self->dealer);
}

void peer_destroy(peer_t **self_p)
{
    if (!self_p || !*self_p)
        return;
    peer_t *self = *self_p;
    s_sockets_close(self);
    memset(&self->keys, 0, sizeof(self->keys));
    xfree(self->ep_decisions);
    xfree(self->ep_snapshot);
    xfree(self->server_public);
    xfree(self->name);
    xfree(self->queued);
    xfree(self->ids);
    xfree(self);
    *self_p = NULL;
}

static void *s_socket(peer_t *self, int type, const char *endpoint)
{
    void *s = zsock_new(self->ctx, type);
    if (!s)
        return NULL;
    if (self->curve && zsock_curve_client(s, &self->keys, self->server_public) != 0) {
        zsock_close(&s);
        return NULL;
    }
    if (zsock_connect(s, endpoint) != 0)
        zsock_close(&s);
    return s;
}

/* Back to JOINING; with reopen, on new sockets (silence, start). */
static void s_rejoin(peer_t *self, const char *reason, bool reopen, int64_t mono)
{
    /* while the peer is away, reconnects repeat every silence_ms: the first is logged,
     * then one a minute */
    bool retry =
        (reopen || !strcmp(reason, "join-timeout")) && self->state != S_LIVE && self->joins > 0;
    if (!retry || self->retry_log_mono == 0 || mono - self->retry_log_mono >= 60000) {
        msg_info("peer: state=joining reason=%s peer=%s epoch=%016" PRIx64 " seq=%" PRIu64
                 " resyncs=%" PRIu64,
                 reason, self->ep_decisions, self->epoch, self->st.seq, self->st.resyncs);
        if (retry)
            self->retry_log_mono = mono;
    }
    if (self->joins++ > 0)
        self->st.resyncs++;
    self->state = S_JOINING;
    self->st.live = false;
    self->hb_ahead = false;
    self->nqueued = 0;
    self->nids = 0;
    self->changes = 0;
    self->join_wanted = true;
    self->join_mono = mono;
    if (reopen) {
        self->shared_asked = false; /* its answer went with the socket */
        s_sockets_close(self);
        self->st.heard_mono = 0;
        self->sub = s_socket(self, ZMQ_SUB, self->ep_decisions);
        if (self->sub)
            zsock_subscribe(self->sub, ""); /* every topic: fleet, every site, heartbeats */
        self->dealer = s_socket(self, ZMQ_DEALER, self->ep_snapshot);
    }
}

/* Sends the request (after the first heartbeat: the subscription is in place). With
 * ZMQ_IMMEDIATE this fails until the DEALER is connected; peer_tick() tries again. */
static void s_send_join(peer_t *self, int64_t mono)
{
    Backstop__SnapshotRequest rq;
    wire_snapshot_request_init(&rq, PUBLISH_ALL_SITES, self->name, self->epoch, self->st.seq);
    rq.has_all_sites = 1;
    rq.all_sites = 1;
    Backstop__Frame f;
    wire_frame_init(&f, BACKSTOP__FRAME__BODY_SNAPSHOT_REQUEST, &rq);
    if (self->dealer && zsock_send(self->dealer, &f, ZMQ_DONTWAIT) == 0) {
        self->join_wanted = false;
        self->join_mono = mono;
    }
}

/* Reads update u into out (a decision this table cannot use is marked bad: its seq still
 * counts, so a newer peer's change is no gap). */
static void s_update_read(const Backstop__DecisionUpdate *u, s_update_t *out)
{
    memset(out, 0, sizeof(*out));
    out->c.seq = u->seq;
    out->c.epoch = u->epoch;
    if (u->kind == BACKSTOP__DECISION_UPDATE__KIND__SKIP) {
        out->skip = true;
        return;
    }
    out->c.kind =
        u->kind == BACKSTOP__DECISION_UPDATE__KIND__REMOVE ? DECISION_REMOVE : DECISION_UPSERT;
    int why = decisions_why_parse(u->why);
    out->c.why = why >= 0                         ? (decision_why_t)why
                 : out->c.kind == DECISION_REMOVE ? DECISION_WHY_REVOKED
                                                  : DECISION_WHY_NEW;
    out->bad = publish_pb_read(u->decision, &out->c.decision) < 0;
}

static void s_refused(peer_t *self, const decision_t *d, int64_t mono)
{
    self->st.refused++;
    if (!msg_due(&self->refused_log_mono, mono, S_REFUSED_LOG_MS))
        return;
    char qv[MSG_QUOTE_SIZE(DECISION_VALUE_MAX)], qi[MSG_QUOTE_SIZE(DECISION_ID_LEN)];
    msg_warn("peer: decision=%s refused: another decision here has its id, or it is not "
             "one this table can hold (scope=%s value=%s); refused=%" PRIu64,
             msg_quote(qi, sizeof(qi), d->id), bs_enums_scope_name(d->scope),
             msg_quote(qv, sizeof(qv), d->value), self->st.refused - self->refused_logged);
    self->refused_logged = self->st.refused;
}

/* Applies one decision change the peer made; 1 when the table changed. */
static int s_mirror(peer_t *self, decisions_t *table, decision_kind_t kind, decision_why_t why,
                    const decision_t *d, int64_t mono, int64_t now_ms)
{
    decisions_mirror_t r = decisions_mirror(table, kind, why, d, now_ms);
    if (r == DECISIONS_MIRROR_REFUSED)
        s_refused(self, d, mono);
    if (r == DECISIONS_MIRROR_MERGED) {
        const decision_t *kept =
            decisions_find_identity(table, d->scope, d->fp, d->reach, d->site, d->mode);
        self->st.merged++;
        char qv[MSG_QUOTE_SIZE(DECISION_VALUE_MAX)];
        msg_info("peer: decision=%s merged: one of ours had its scope and key (scope=%s "
                 "value=%s), made while we were apart; kept=%s",
                 d->id, bs_enums_scope_name(d->scope), msg_quote(qv, sizeof(qv), d->value),
                 kept ? kept->id : "-");
    }
    if (r != DECISIONS_MIRROR_APPLIED && r != DECISIONS_MIRROR_MERGED)
        return 0;
    self->st.applied++;
    self->changes++;
    return 1;
}

/* Applies u, whose seq is seq + 1; -1 when it is a SKIP: an update of a site topic went
 * by unseen (we subscribe to all of them), so the caller resynchronises. */
static int s_apply(peer_t *self, decisions_t *table, const s_update_t *u, int64_t mono,
                   int64_t now_ms)
{
    if (u->skip)
        return -1;
    self->st.seq = u->c.seq;
    if (u->bad) {
        self->st.bad_frames++;
        return 0;
    }
    if (u->c.decision.mirrored) {
        self->st.echoes++; /* ours, copied back: the peer never made it */
        return 0;
    }
    return s_mirror(self, table, u->c.kind, u->c.why, &u->c.decision, mono, now_ms);
}

static int s_go_live(peer_t *self, decisions_t *table, const char *sync, size_t removed,
                     int64_t mono, int64_t now_ms)
{
    int n = 0;
    self->state = S_LIVE;
    for (size_t i = 0; i < self->nqueued; i++) {
        const s_update_t *u = &self->queued[i];
        if (u->c.epoch != self->epoch || u->c.seq <= self->st.seq)
            continue;
        int k = u->c.seq == self->st.seq + 1 ? s_apply(self, table, u, mono, now_ms) : -1;
        if (k < 0) {
            s_rejoin(self, "gap", false, mono);
            return n;
        }
        n += k;
    }
    self->nqueued = 0;
    self->st.live = true;
    self->retry_log_mono = 0;
    self->known_epoch = self->epoch;
    self->adopt = false;
    msg_info("peer: state=live peer=%s sync=%s epoch=%016" PRIx64 " seq=%" PRIu64
             " changes=%zu removed=%zu",
             self->ep_decisions, sync, self->epoch, self->st.seq, self->changes, removed);
    return n;
}

static int s_cmp_id(const void *a, const void *b)
{
    return strcmp(a, b);
}

/* After a full snapshot: the decisions whose latest change came from the peer and that
 * it no longer has were removed there while we did not follow; they go here too. */
typedef struct {
    peer_t *self;
    char (*gone)[DECISION_ID_LEN + 1];
    size_t ngone, cap;
} s_sweep_t;

static int s_find_gone(const decision_t *d, void *arg)
{
    s_sweep_t *s = arg;
    const peer_t *self = s->self;
    /* ids is NULL until a snapshot had a decision: not for bsearch */
    if (!d->mirrored ||
        (self->nids && bsearch(d->id, self->ids, self->nids, sizeof(*self->ids), s_cmp_id)))
        return 0;
    if (s->ngone == s->cap) {
        s->cap = s->cap ? s->cap * 2 : 16;
        s->gone = xrealloc(s->gone, s->cap * sizeof(*s->gone));
    }
    memcpy(s->gone[s->ngone++], d->id, sizeof(*s->gone));
    return 0;
}

static size_t s_remove_gone(peer_t *self, decisions_t *table, int64_t mono, int64_t now_ms)
{
    if (self->nids) /* ids is NULL until a snapshot had a decision: not for qsort */
        qsort(self->ids, self->nids, sizeof(*self->ids), s_cmp_id);
    s_sweep_t s = {.self = self};
    decisions_foreach(table, NULL, s_find_gone, &s);
    size_t n = 0;
    for (size_t i = 0; i < s.ngone; i++) {
        const decision_t *d = decisions_find(table, s.gone[i]);
        if (d) {
            decision_t copy = *d; /* the removal frees the table's */
            n += (size_t)s_mirror(self, table, DECISION_REMOVE, DECISION_WHY_REVOKED, &copy, mono,
                                  now_ms);
        }
    }
    xfree(s.gone);
    return n;
}

/* The heartbeat interval the peer announced (0 or absent: none) is kept. */
static void s_interval_heard(peer_t *self, bool has, uint32_t interval_ms)
{
    if (has && interval_ms > 0)
        self->peer_interval_ms = interval_ms;
}

/* The silence after which the peer is given up: see the header comment. */
static int64_t s_silence(const peer_t *self)
{
    int64_t three = 3 * self->peer_interval_ms;
    return three > self->silence_ms ? three : self->silence_ms;
}

static int s_on_snapshot(peer_t *self, decisions_t *table, const Backstop__SnapshotReply *r,
                         int64_t mono, int64_t now_ms)
{
    s_interval_heard(self, r->has_heartbeat_interval_ms, r->heartbeat_interval_ms);
    if (self->state != S_JOINING || self->join_wanted)
        return 0;
    if (r->has_refused && r->refused) {
        /* our key is not its peer_public_key: no snapshot, and its having nothing says
         * nothing; the join times out and is sent again */
        self->st.snapshots_refused++;
        if (msg_due(&self->snap_refused_log_mono, mono, S_REFUSED_LOG_MS)) {
            msg_warn("peer: peer %s refused the snapshot: our key is not its peer_public_key "
                     "(server_key_file?) count=%" PRIu64,
                     self->ep_snapshot, self->st.snapshots_refused - self->snap_refused_logged);
            self->snap_refused_logged = self->st.snapshots_refused;
        }
        return 0;
    }
    /* a reply carries nothing to tell which request it answers: one older than what was
     * applied is the late answer to a request sent again since (the one sent now is
     * still to come) */
    if (self->epoch && r->epoch == self->epoch && r->seq < self->st.seq)
        return 0;
    if (r->epoch == 0) { /* no aggregator's: epochs are never 0 */
        self->st.bad_frames++;
        return 0;
    }
    int n = 0;
    if (r->has_changes_only && r->changes_only) {
        if (r->epoch != self->epoch) {
            self->epoch = 0;
            s_rejoin(self, "epoch", false, mono);
            return 0;
        }
        for (size_t i = 0; i < r->n_changes; i++) {
            s_update_t u;
            s_update_read(r->changes[i], &u);
            if (u.c.seq <= self->st.seq)
                continue;
            int k = u.c.seq == self->st.seq + 1 ? s_apply(self, table, &u, mono, now_ms) : -1;
            if (k < 0) {
                self->epoch = 0; /* ask for a full snapshot */
                s_rejoin(self, "gap", false, mono);
                return n;
            }
            n += k;
        }
        if (r->has_more && r->more) {
            self->join_mono = mono; /* the answer is coming: no timeout while it does */
            return n;
        }
        self->st.seq = r->seq;
        return n + s_go_live(self, table, "changes", 0, mono, now_ms);
    }
    for (size_t i = 0; i < r->n_decisions; i++) {
        decision_t d;
        if (publish_pb_read(r->decisions[i], &d) < 0) {
            self->st.bad_frames++;
            continue;
        }
        if (self->nids == self->ids_cap) {
            self->ids_cap = self->ids_cap ? self->ids_cap * 2 : 64;
            self->ids = xrealloc(self->ids, self->ids_cap * sizeof(*self->ids));
        }
        memcpy(self->ids[self->nids++], d.id, sizeof(*self->ids));
        /* a copy of ours is an echo, unless our store is new: then it is what we had
         * before we lost it, taken back */
        if (d.mirrored && !self->adopt)
            self->st.echoes++;
        else
            n += s_mirror(self, table, DECISION_UPSERT, DECISION_WHY_NEW, &d, mono, now_ms);
    }
    if (r->has_more && r->more) {
        self->join_mono = mono;
        return n;
    }
    /* what the peer no longer has was removed there while we did not follow, if it is the
     * peer we followed: a peer that lost its store (a new epoch) says nothing by having
     * nothing, and the blocks in force stay until their TTL */
    size_t removed = r->epoch == self->known_epoch ? s_remove_gone(self, table, mono, now_ms) : 0;
    self->nids = 0;
    self->epoch = self->st.epoch = r->epoch;
    self->st.seq = r->seq;
    return n + (int)removed + s_go_live(self, table, "full", removed, mono, now_ms);
}

static int s_on_update(peer_t *self, decisions_t *table, const Backstop__DecisionUpdate *pu,
                       int64_t mono, int64_t now_ms)
{
    s_update_t u;
    s_update_read(pu, &u);
    if (self->state == S_JOINING) {
        if (self->nqueued >= S_MAX_QUEUED) {
            s_rejoin(self, "join-overflow", false, mono);
            return 0;
        }
        if (self->nqueued == self->queued_cap) {
            self->queued_cap = self->queued_cap ? self->queued_cap * 2 : 64;
            self->queued = xrealloc(self->queued, self->queued_cap * sizeof(*self->queued));
        }
        self->queued[self->nqueued++] = u;
        return 0;
    }
    if (self->state != S_LIVE)
        return 0;
    if (u.c.epoch != self->epoch) {
        self->epoch = 0;
        s_rejoin(self, "epoch", false, mono);
        return 0;
    }
    if (u.c.seq <= self->st.seq)
        return 0; /* a duplicate, or the SKIP after a site's update we applied */
    int n = u.c.seq == self->st.seq + 1 ? s_apply(self, table, &u, mono, now_ms) : -1;
    if (n < 0) {
        s_rejoin(self, "gap", false, mono);
        return 0;
    }
    self->hb_ahead = false;
    return n;
}

/* Asks for the peer's allowlist and sites when its heartbeat says they changed since the
 * answer taken last (once at least; again if an answer does not come within silence_ms). */
static void s_shared_check(peer_t *self, int64_t mono)
{
    if (!self->shared_apply || !self->st.shared_heard || !self->dealer)
        return;
    if (self->shared_have && self->st.shared_fetched == self->st.shared_digest)
        return;
    if (self->shared_asked && mono - self->shared_ask_mono < self->silence_ms)
        return;
    Backstop__SharedRequest rq = BACKSTOP__SHARED_REQUEST__INIT;
    rq.name = self->name;
    Backstop__Frame f;
    wire_frame_init(&f, BACKSTOP__FRAME__BODY_SHARED_REQUEST, &rq);
    if (zsock_send(self->dealer, &f, ZMQ_DONTWAIT) == 0) {
        self->shared_asked = true;
        self->shared_ask_mono = mono;
    }
}

/* A SharedReply: every entry to shared_apply; the last one of an answer records its
 * digest. Returns the entries applied. */
static int s_on_shared(peer_t *self, const Backstop__SharedReply *r, int64_t mono)
{
    if (!self->shared_apply) {
        self->st.bad_frames++;
        return 0;
    }
    int n = 0;
    for (size_t i = 0; i < r->n_entries; i++) {
        shared_rec_t rec;
        char err[128];
        if (shared_rec_read(r->entries[i], &rec, err, sizeof(err)) < 0) {
            self->st.shared_refused++;
            if (msg_due(&self->shared_log_mono, mono, S_REFUSED_LOG_MS)) {
                msg_warn("peer: shared entry refused: %s peer=%s", err, self->ep_snapshot);
            }
            continue;
        }
        int rc = self->shared_apply(self->shared_arg, &rec);
        if (rc > 0) {
            self->st.shared_applied++;
            n++;
        } else if (rc < 0) {
            self->st.shared_refused++;
        }
    }
    self->shared_got += r->n_entries;
    self->shared_took += (size_t)n;
    if (!(r->has_more && r->more)) {
        self->st.shared_fetched = r->digest;
        self->st.shared_fetches++;
        self->shared_have = true;
        self->shared_asked = false;
        if (self->shared_took > 0)
            msg_info("peer: shared entries=%zu applied=%zu digest=%016" PRIx64 " peer=%s",
                     self->shared_got, self->shared_took, r->digest, self->ep_snapshot);
        self->shared_got = self->shared_took = 0;
    }
    return n;
}

static void s_on_heartbeat(peer_t *self, const Backstop__Heartbeat *hb, int64_t mono)
{
    s_interval_heard(self, hb->has_interval_ms, hb->interval_ms);
    if (hb->has_shared_digest) {
        self->st.shared_heard = true;
        self->st.shared_digest = hb->shared_digest;
    }
    if (self->state == S_LIVE)
        s_shared_check(self, mono);
    if (self->state == S_JOINING) {
        if (self->join_wanted)
            s_send_join(self, mono); /* the subscription is in place now */
        return;
    }
    if (self->state != S_LIVE)
        return;
    if (hb->epoch != self->epoch) {
        self->epoch = 0;
        s_rejoin(self, "epoch", false, mono);
        s_send_join(self, mono);
    } else if (hb->seq > self->st.seq) {
        if (self->hb_ahead) {
            s_rejoin(self, "heartbeat-ahead", false, mono);
            s_send_join(self, mono);
        } else {
            self->hb_ahead = true;
        }
    } else {
        self->hb_ahead = false;
    }
}

int peer_poll(peer_t *self, zmq_pollitem_t *items)
{
    int n = 0;
    void *socks[2] = {self->dealer, self->sub};
    for (int i = 0; i < 2; i++)
        if (socks[i]) {
            zmq_pollitem_t it = {socks[i], 0, ZMQ_POLLIN, 0};
            items[n++] = it;
        }
    return n;
}

int peer_feed(peer_t *self, decisions_t *table, const Backstop__Frame *f, bool feed, int64_t mono,
              int64_t now_ms)
{
    if (!feed) {
        if (f->body_case == BACKSTOP__FRAME__BODY_SNAPSHOT_REPLY)
            return s_on_snapshot(self, table, f->snapshot_reply, mono, now_ms);
        if (f->body_case == BACKSTOP__FRAME__BODY_SHARED_REPLY)
            return s_on_shared(self, f->shared_reply, mono);
        self->st.bad_frames++;
        return 0;
    }
    self->st.heard_mono = mono;
    self->st.heard_ms = now_ms;
    if (f->body_case == BACKSTOP__FRAME__BODY_HEARTBEAT)
        s_on_heartbeat(self, f->heartbeat, mono);
    else if (f->body_case == BACKSTOP__FRAME__BODY_UPDATE)
        return s_on_update(self, table, f->update, mono, now_ms);
    else
        self->st.bad_frames++;
    return 0;
}

int peer_handle(peer_t *self, decisions_t *table, int64_t mono, int64_t now_ms)
{
    int n = 0;
    /* the reply first: updates read after it are applied in order, not queued (a rejoin
     * here keeps the sockets: only peer_tick() reopens them) */
    void *socks[2] = {self->dealer, self->sub};
    for (int i = 0; i < 2; i++) {
        bool feed = i == 1;
        while (socks[i]) {
            Backstop__Frame *f = NULL;
            wire_err_t werr;
            int rc = zsock_recv(socks[i], ZMQ_DONTWAIT, &f, NULL, &werr);
            if (rc < 0)
                break;
            if (rc == 1) {
                n += peer_feed(self, table, f, feed, mono, now_ms);
            } else {
                self->st.bad_frames++;
                if (feed) {
                    self->st.heard_mono = mono;
                    self->st.heard_ms = now_ms;
                }
            }
            wire_free(&f);
        }
    }
    return n;
}

void peer_tick(peer_t *self, int64_t mono)
{
    if (self->state == S_CLOSED) {
        s_rejoin(self, "start", true, mono);
        return;
    }
    int64_t heard = self->st.heard_mono ? self->st.heard_mono : self->join_mono;
    int64_t silence = s_silence(self);
    if (mono - heard >= silence) {
        s_rejoin(self, "silence", true, mono);
    } else if (self->state == S_JOINING && !self->join_wanted &&
               mono - self->join_mono >= silence) {
        s_rejoin(self, "join-timeout", false, mono);
        s_send_join(self, mono);
    } else if (self->state == S_JOINING && self->join_wanted && self->st.heard_mono) {
        s_send_join(self, mono); /* heard already, but the DEALER was not connected */
    }
}

void peer_position(const peer_t *self, uint64_t *epoch, uint64_t *seq)
{
    *epoch = self->epoch;
    *seq = self->st.seq;
}

const peer_stats_t *peer_stats(const peer_t *self)
{
    return &self->st;
}
