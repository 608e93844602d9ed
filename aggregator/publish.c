/*
 * publish - decisions onto the wire; see publish.h.
 *
 * Snapshot replies are cut at PUBLISH_CHUNK entries: a decision without
 * evidence is at most about 700 bytes on the wire (256-byte value, 160-byte
 * reason, 64-byte names), so 1024 of them stay well under WIRE_MAX_FRAME and
 * under WIRE_MAX_SNAPSHOT.
 */
#include "publish.h"

#include <errno.h>
#include <string.h>
#include <zmq.h>

#include "fp.h"
#include "xalloc.h"

/* Entries per SnapshotReply frame. */
#define PUBLISH_CHUNK 1024

/* protobuf-c wants char *; our records are const. Optional strings: NULL when empty. */
static char *s_str(const char *s)
{
    return (char *)s;
}

static char *s_opt(const char *s)
{
    return s && *s ? (char *)s : NULL;
}

void publish_pb_fill(publish_pb_t *pb, const decision_t *d, bool with_evidence)
{
    Backstop__Decision init = BACKSTOP__DECISION__INIT;
    pb->d = init;
    pb->d.id = s_str(d->id);
    pb->d.scope = (Backstop__Scope)d->scope;
    pb->d.fp = d->fp;
    pb->d.value = s_opt(d->value);
    pb->d.action = (Backstop__Action)d->action;
    pb->d.reach = (Backstop__Reach)d->reach;
    pb->d.site = s_opt(d->site);
    pb->d.reason = s_opt(d->reason);
    pb->d.created_ms = d->created_ms;
    pb->d.expires_ms = d->expires_ms;
    pb->d.origin = (Backstop__Origin)d->origin;
    pb->d.origin_who = s_opt(d->origin_who);
    pb->d.has_seq = 1;
    pb->d.seq = d->seq;
    pb->d.has_epoch = 1;
    pb->d.epoch = d->epoch;
    pb->d.has_mode = 1;
    pb->d.mode = (Backstop__Mode)d->mode;
    pb->d.has_all_mail = d->all_mail;
    pb->d.all_mail = d->all_mail;
    pb->d.has_mirrored = d->mirrored;
    pb->d.mirrored = d->mirrored;
    if (!with_evidence || !d->has_evidence)
        return;
    const evidence_t *e = &d->evidence;
    Backstop__Evidence einit = BACKSTOP__EVIDENCE__INIT;
    pb->ev = einit;
    pb->ev.rule = s_opt(e->rule);
    pb->ev.has_events = 1;
    pb->ev.events = e->events;
    pb->ev.has_sites = 1;
    pb->ev.sites = e->sites;
    size_t n = e->nshares < EVIDENCE_SHARES_MAX ? e->nshares : EVIDENCE_SHARES_MAX;
    for (size_t i = 0; i < n; i++) {
        Backstop__SiteShare sinit = BACKSTOP__SITE_SHARE__INIT;
        pb->shares[i] = sinit;
        pb->shares[i].site = s_str(e->shares[i].site);
        pb->shares[i].events = e->shares[i].events;
        pb->share_p[i] = &pb->shares[i];
    }
    pb->ev.n_shares = n;
    pb->ev.shares = n ? pb->share_p : NULL;
    pb->ev.has_first_ms = 1;
    pb->ev.first_ms = e->first_ms;
    pb->ev.has_last_ms = 1;
    pb->ev.last_ms = e->last_ms;
    pb->ev.sample = s_opt(e->sample);
    pb->ev.has_window_s = 1;
    pb->ev.window_s = e->window_s;
    pb->d.evidence = &pb->ev;
}

int publish_pb_read(const Backstop__Decision *pb, decision_t *out)
{
    memset(out, 0, sizeof(*out));
    if (!pb->id || strlen(pb->id) != DECISION_ID_LEN)
        return -1;
    if (pb->scope <= BACKSTOP__SCOPE__SCOPE_UNKNOWN || pb->scope > BACKSTOP__SCOPE__SITE)
        return -1;
    if (pb->reach != BACKSTOP__REACH__FLEET && pb->reach != BACKSTOP__REACH__LOCAL)
        return -1;
    decisions_strlcpy(out->id, pb->id, DECISION_ID_LEN);
    out->scope = (bs_scope_t)pb->scope;
    out->fp = pb->fp;
    decisions_strlcpy(out->value, pb->value ? pb->value : "", DECISION_VALUE_MAX);
    out->action = (bs_action_t)pb->action;
    out->reach = (bs_reach_t)pb->reach;
    decisions_strlcpy(out->site, pb->site ? pb->site : "", DECISION_NAME_MAX);
    decisions_strlcpy(out->reason, pb->reason ? pb->reason : "", DECISION_REASON_MAX);
    out->created_ms = pb->created_ms;
    out->expires_ms = pb->expires_ms;
    out->origin = (bs_origin_t)pb->origin;
    decisions_strlcpy(out->origin_who, pb->origin_who ? pb->origin_who : "", DECISION_NAME_MAX);
    out->seq = pb->has_seq ? pb->seq : 0;
    out->epoch = pb->has_epoch ? pb->epoch : 0;
    out->mode = pb->has_mode ? (bs_mode_t)pb->mode : BS_MODE_ENFORCE;
    out->all_mail = pb->has_all_mail && pb->all_mail;
    out->mirrored = pb->has_mirrored && pb->mirrored;
    if (pb->evidence) {
        const Backstop__Evidence *e = pb->evidence;
        evidence_t *o = &out->evidence;
        out->has_evidence = true;
        decisions_strlcpy(o->rule, e->rule ? e->rule : "", DECISION_NAME_MAX);
        o->events = e->events;
        o->sites = e->sites;
        size_t n = e->n_shares < EVIDENCE_SHARES_MAX ? e->n_shares : EVIDENCE_SHARES_MAX;
        for (size_t i = 0; i < n; i++) {
            decisions_strlcpy(o->shares[i].site, e->shares[i]->site, DECISION_NAME_MAX);
            o->shares[i].events = e->shares[i]->events;
        }
        o->nshares = (uint32_t)n;
        o->first_ms = e->first_ms;
        o->last_ms = e->last_ms;
        decisions_strlcpy(o->sample, e->sample ? e->sample : "", DECISION_VALUE_MAX);
        o->window_s = e->window_s;
    }
    return 0;
}

void publish_pb_update(Backstop__DecisionUpdate *u, publish_pb_t *pb, const decision_change_t *c)
{
    Backstop__DecisionUpdate init = BACKSTOP__DECISION_UPDATE__INIT;
    *u = init;
    publish_pb_fill(pb, &c->decision, c->kind == DECISION_UPSERT);
    u->kind = c->kind == DECISION_REMOVE ? BACKSTOP__DECISION_UPDATE__KIND__REMOVE
                                         : BACKSTOP__DECISION_UPDATE__KIND__UPSERT;
    u->seq = c->seq;
    u->epoch = c->epoch;
    u->decision = &pb->d;
    u->why = (char *)decisions_why_name(c->why);
}

void publish_pb_skip(Backstop__DecisionUpdate *u, publish_pb_t *pb, const decision_change_t *c)
{
    Backstop__DecisionUpdate uinit = BACKSTOP__DECISION_UPDATE__INIT;
    Backstop__Decision dinit = BACKSTOP__DECISION__INIT;
    *u = uinit;
    memset(pb, 0, sizeof(*pb));
    pb->d = dinit;
    pb->d.id = (char *)"";
    pb->d.reach = BACKSTOP__REACH__LOCAL;
    pb->d.fp = fp_text(c->decision.site);
    u->kind = BACKSTOP__DECISION_UPDATE__KIND__SKIP;
    u->seq = c->seq;
    u->epoch = c->epoch;
    u->decision = &pb->d;
}

int publish_topic(const decision_t *d, char *buf, size_t size)
{
    if (d->reach == BS_REACH_LOCAL)
        return zsock_site_topic(buf, size, d->site);
    if (size < 2)
        return -1;
    memcpy(buf, ZSOCK_TOPIC_FLEET, 2);
    return 0;
}

int publish_update(void *pub, const decision_change_t *c)
{
    char topic[ZSOCK_TOPIC_MAX];
    if (publish_topic(&c->decision, topic, sizeof(topic)) < 0) {
        errno = EINVAL;
        return -1;
    }
    publish_pb_t pb;
    Backstop__DecisionUpdate u;
    publish_pb_update(&u, &pb, c);
    Backstop__Frame f;
    wire_frame_init(&f, BACKSTOP__FRAME__BODY_UPDATE, &u);
    int rc = zsock_publish(pub, topic, &f, ZMQ_DONTWAIT);
    if (rc < 0 || c->decision.reach != BS_REACH_LOCAL)
        return rc;
    /* every other site's sensors see the sequence number go by on F, after the site's own
     * update, so nobody takes the number it spent for a gap */
    publish_pb_skip(&u, &pb, c);
    wire_frame_init(&f, BACKSTOP__FRAME__BODY_UPDATE, &u);
    return zsock_publish(pub, ZSOCK_TOPIC_FLEET, &f, ZMQ_DONTWAIT);
}

int publish_heartbeat(void *pub, uint64_t epoch, uint64_t seq, int64_t now_ms,
                      uint64_t shared_digest, int64_t interval_ms, uint32_t scopes)
{
    Backstop__Heartbeat hb = BACKSTOP__HEARTBEAT__INIT;
    hb.epoch = epoch;
    hb.seq = seq;
    hb.time_ms = now_ms;
    hb.has_shared_digest = 1;
    hb.shared_digest = shared_digest;
    /* followers judge silence by it: a longer interval than their timeout made them flap */
    hb.has_interval_ms = 1;
    hb.interval_ms = (uint32_t)interval_ms;
    /* sensors send this aggregator their events as columns, each key's text once a minute */
    hb.has_features = 1;
    hb.features = WIRE_FEATURE_COLUMNS | WIRE_FEATURE_TEXT_ONCE;
    /* ... and only the keys it reads */
    hb.has_scopes = 1;
    hb.scopes = scopes;
    Backstop__Frame f;
    wire_frame_init(&f, BACKSTOP__FRAME__BODY_HEARTBEAT, &hb);
    return zsock_publish(pub, ZSOCK_TOPIC_HEARTBEAT, &f, ZMQ_DONTWAIT);
}

/* A reply being built: up to PUBLISH_CHUNK entries, then sent. */
typedef struct {
    void *router;                   /* the snapshot ROUTER */
    const zsock_meta_t *to;         /* the peer */
    const char *site;               /* the site asking ("" : nobody's) */
    uint64_t epoch;                 /* table epoch */
    uint64_t seq;                   /* table seq at the time of the request */
    uint32_t interval_ms;           /* the heartbeat_interval, in every frame */
    bool changes_only;              /* building changes, not decisions */
    size_t n;                       /* entries in the chunk */
    decision_t *dec;                /* copies of the chunk's decisions */
    decision_change_t *chg;         /* copies of the chunk's changes */
    publish_pb_t *pb;               /* their pb forms */
    Backstop__Decision **dp;        /* pointers for SnapshotReply.decisions */
    Backstop__DecisionUpdate *ups;  /* updates for SnapshotReply.changes */
    Backstop__DecisionUpdate **up;  /* pointers to them */
    publish_snapshot_result_t *res; /* what was sent */
    int failed;                     /* a send failed: stop */
} s_reply_t;

/* Whether decision d concerns site (fleet, or local to it; PUBLISH_ALL_SITES: any). */
static bool s_for_site(const decision_t *d, const char *site)
{
    return d->reach == BS_REACH_FLEET ||
           (*site && (strcmp(site, PUBLISH_ALL_SITES) == 0 || strcmp(d->site, site) == 0));
}

/* Sends the chunk as one SnapshotReply; more says whether another follows. */
static int s_flush(s_reply_t *r, bool more)
{
    Backstop__SnapshotReply rep = BACKSTOP__SNAPSHOT_REPLY__INIT;
    rep.epoch = r->epoch;
    rep.seq = r->seq;
    rep.has_changes_only = r->changes_only;
    rep.changes_only = r->changes_only;
    rep.has_more = more;
    rep.more = more;
    rep.has_heartbeat_interval_ms = 1;
    rep.heartbeat_interval_ms = r->interval_ms;
    for (size_t i = 0; i < r->n; i++) {
        if (r->changes_only && !s_for_site(&r->chg[i].decision, r->site)) {
            publish_pb_skip(&r->ups[i], &r->pb[i], &r->chg[i]);
            r->up[i] = &r->ups[i];
        } else if (r->changes_only) {
            publish_pb_update(&r->ups[i], &r->pb[i], &r->chg[i]);
            /* snapshots travel without evidence (PROTOCOL.md 4.2) */
            r->pb[i].d.evidence = NULL;
            r->up[i] = &r->ups[i];
        } else {
            publish_pb_fill(&r->pb[i], &r->dec[i], false);
            r->dp[i] = &r->pb[i].d;
        }
    }
    if (r->changes_only) {
        rep.n_changes = r->n;
        rep.changes = r->n ? r->up : NULL;
    } else {
        rep.n_decisions = r->n;
        rep.decisions = r->n ? r->dp : NULL;
    }
    Backstop__Frame f;
    wire_frame_init(&f, BACKSTOP__FRAME__BODY_SNAPSHOT_REPLY, &rep);
    int rc = zsock_reply(r->router, r->to, &f, ZMQ_DONTWAIT);
    r->res->entries += r->n;
    r->n = 0;
    if (rc < 0) {
        r->failed = 1;
        return -1;
    }
    r->res->frames++;
    return 0;
}

static int s_add_decision(const decision_t *d, void *arg)
{
    s_reply_t *r = arg;
    if (!s_for_site(d, r->site))
        return 0;
    if (r->n == PUBLISH_CHUNK && s_flush(r, true) < 0)
        return -1;
    r->dec[r->n++] = *d;
    return 0;
}

static int s_add_change(const decision_change_t *c, void *arg)
{
    s_reply_t *r = arg;
    /* another site's change goes in as a SKIP, keeping the answer's sequence contiguous */
    if (c->seq > r->seq)
        return 0;
    if (r->n == PUBLISH_CHUNK && s_flush(r, true) < 0)
        return -1;
    r->chg[r->n++] = *c;
    return 0;
}

int publish_snapshot(void *router, const zsock_meta_t *to, const decisions_t *table,
                     const char *site, const Backstop__SnapshotRequest *req, publish_since_fn since,
                     void *since_arg, int64_t interval_ms, publish_snapshot_result_t *res)
{
    publish_snapshot_result_t dummy;
    if (!res)
        res = &dummy;
    memset(res, 0, sizeof(*res));
    s_reply_t r = {
        .router = router,
        .to = to,
        .site = site ? site : "",
        .epoch = decisions_epoch(table),
        .seq = decisions_seq(table),
        .interval_ms = (uint32_t)interval_ms,
        .res = res,
    };
    /* not zeroed: each entry is written in full before a frame reads it, and zeroing the
     * arrays (about 5 MB) for every request made a reconnect storm of N sensors cost the
     * loop N times that */
    r.pb = xmalloc(PUBLISH_CHUNK * sizeof(*r.pb));
    r.dp = xmalloc(PUBLISH_CHUNK * sizeof(*r.dp));
    r.ups = xmalloc(PUBLISH_CHUNK * sizeof(*r.ups));
    r.up = xmalloc(PUBLISH_CHUNK * sizeof(*r.up));

    int rc = -1;
    if (*r.site && req->has_epoch && req->has_since_seq) {
        /* First check the log can answer, then stream it: a half-sent answer would be
         * worse than a full snapshot. */
        r.chg = xmalloc(PUBLISH_CHUNK * sizeof(*r.chg));
        r.changes_only = true;
        if (since)
            rc = since(since_arg, req->epoch, req->since_seq, s_add_change, &r);
        else
            rc = decisions_changes_since(table, req->epoch, req->since_seq, s_add_change, &r);
        if (rc == 0 && !r.failed)
            rc = s_flush(&r, false);
        else if (r.failed)
            rc = -1;
        else {
            /* the log cannot answer: a full snapshot instead (nothing was sent: every
             * source checks its range before the first callback) */
            r.changes_only = false;
            r.n = 0;
            rc = 1;
        }
        if (rc == 0)
            res->changes_only = true;
    }
    if (!res->changes_only && !r.failed) {
        r.changes_only = false;
        r.n = 0;
        r.dec = xmalloc(PUBLISH_CHUNK * sizeof(*r.dec));
        if (*r.site)
            decisions_foreach(table, NULL, s_add_decision, &r);
        rc = r.failed ? -1 : s_flush(&r, false);
    }
    xfree(r.dec);
    xfree(r.chg);
    xfree(r.pb);
    xfree(r.dp);
    xfree(r.ups);
    xfree(r.up);
    return rc < 0 ? -1 : 0;
}

int publish_refused(void *router, const zsock_meta_t *to, const decisions_t *table,
                    int64_t interval_ms)
{
    Backstop__SnapshotReply rep = BACKSTOP__SNAPSHOT_REPLY__INIT;
    rep.epoch = decisions_epoch(table);
    rep.seq = decisions_seq(table);
    rep.has_refused = true;
    rep.refused = true;
    rep.has_heartbeat_interval_ms = 1;
    rep.heartbeat_interval_ms = (uint32_t)interval_ms;
    Backstop__Frame f;
    wire_frame_init(&f, BACKSTOP__FRAME__BODY_SNAPSHOT_REPLY, &rep);
    return zsock_reply(router, to, &f, ZMQ_DONTWAIT);
}
