/*
 * control - the aggregator's answers to `backstop` (the control channel)
 *
 * See control.h for the documents. One function per command builds a JSON
 * document (jansson) from the server's tables; a request that changes
 * anything ends with server_apply_changes() so the change is in LevelDB
 * before a sensor hears of it. Each change is logged once, Postfix style,
 * with the operator's name.
 */
#include <errno.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sysexits.h>

#include "cli_key.h"
#include "control.h"
#include "fp.h"
#include "ingest.h"
#include "msg.h"
#include "netaddr.h"
#include "peer.h"
#include "xalloc.h"

#define S_LIST_DEFAULT 1000 /* decisions listed when the request sets no limit */
#define S_LIST_MAX     5000 /* most decisions in one reply */
#define S_REPLY_BUDGET (WIRE_MAX_JSON - 64 * 1024) /* JSON bytes of a reply's long list */
#define S_TOP_DEFAULT  20                          /* rows of top */
#define S_TOP_MAX      1000                        /* most rows of top */
#define S_STALE_MS     15000        /* a sensor silent this long is stale (3 status intervals) */
#define S_TTL_DEFAULT  3600         /* manual decision TTL when none is given */
#define S_TTL_MAX      (30 * 86400) /* longest manual decision */

/* What one command produced. */
typedef struct {
    int status;      /* 0 or a sysexits code */
    char error[320]; /* one line when status != 0 */
    json_t *doc;     /* the document when status == 0 */
    int64_t now_ms;  /* the server's clock for this request */
    const char *who; /* operator ("-" when the request names none) */
} s_ctx_t;

static int s_fail(s_ctx_t *c, int status, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static int s_fail(s_ctx_t *c, int status, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(c->error, sizeof(c->error), fmt, ap);
    va_end(ap);
    c->status = status;
    return status;
}

/* 16 hex digits of a 64-bit value (fingerprints and epochs exceed JSON's safe integers). */
static json_t *s_hex(uint64_t v)
{
    char buf[FP_HEX_SIZE];
    return json_string(fp_hex(v, buf));
}

/* A string that is valid UTF-8 for jansson (key texts are; a cut one may not be). */
static json_t *s_text(const char *s)
{
    json_t *j = json_string(s ? s : "");
    return j ? j : json_string("?");
}

/* ---- JSON forms ---- */

static json_t *s_evidence(const evidence_t *ev)
{
    json_t *shares = json_array();
    for (uint32_t i = 0; i < ev->nshares && i < EVIDENCE_SHARES_MAX; i++) {
        double share = ev->events ? (double)ev->shares[i].events / (double)ev->events : 0.0;
        json_array_append_new(shares, json_pack("{s:o, s:I, s:f}", "site",
                                                s_text(ev->shares[i].site), "events",
                                                (json_int_t)ev->shares[i].events, "share", share));
    }
    return json_pack("{s:o, s:I, s:I, s:I, s:I, s:I, s:o, s:o}", "rule", s_text(ev->rule), "events",
                     (json_int_t)ev->events, "sites", (json_int_t)ev->sites, "window_s",
                     (json_int_t)ev->window_s, "first_ms", (json_int_t)ev->first_ms, "last_ms",
                     (json_int_t)ev->last_ms, "sample", s_text(ev->sample), "shares", shares);
}

json_t *control_json_decision(const decision_t *d, int64_t now_ms, bool with_evidence)
{
    int64_t left = (d->expires_ms - now_ms) / 1000;
    json_t *j = json_pack(
        "{s:s, s:s, s:o, s:o, s:s, s:s, s:o, s:I, s:I, s:I, s:s, s:o, s:I, s:o, s:s, s:b}", "id",
        d->id, "scope", bs_enums_scope_name(d->scope), "value", s_text(d->value), "fp",
        s_hex(d->fp), "action", bs_enums_action_name(d->action), "reach",
        bs_enums_reach_name(d->reach), "reason", s_text(d->reason), "created_ms",
        (json_int_t)d->created_ms, "expires_ms", (json_int_t)d->expires_ms, "expires_in_s",
        (json_int_t)(left < 0 ? 0 : left), "origin", bs_enums_origin_name(d->origin), "origin_who",
        s_text(d->origin_who), "seq", (json_int_t)d->seq, "epoch", s_hex(d->epoch), "mode",
        bs_enums_mode_name(d->mode), "all_mail", d->all_mail);
    if (d->reach == BS_REACH_LOCAL)
        json_object_set_new(j, "site", s_text(d->site));
    json_object_set_new(j, "mirrored", json_boolean(d->mirrored));
    if (with_evidence && d->has_evidence)
        json_object_set_new(j, "evidence", s_evidence(&d->evidence));
    return j;
}

/* Lower-case name of an allowlist type as the CLI types it. */
static const char *s_allow_type(const allow_entry_t *e)
{
    switch (e->type) {
    case ALLOW_IP:
        return "ip";
    case ALLOW_NET:
        return "net";
    case ALLOW_KEY:
        return bs_enums_scope_name(e->scope);
    case ALLOW_DOMAIN:
        return "sender_domain";
    case ALLOW_SITE:
        return "site";
    }
    return "unknown";
}

json_t *control_json_allow(const allow_entry_t *e)
{
    json_t *j = json_pack("{s:I, s:s, s:o, s:o, s:o, s:I}", "id", (json_int_t)e->id, "type",
                          s_allow_type(e), "value", s_text(e->text), "reason", s_text(e->reason),
                          "who", s_text(e->who), "created_ms", (json_int_t)e->created_ms);
    if (e->type == ALLOW_KEY)
        json_object_set_new(j, "fp", s_hex(e->fp));
    return j;
}

/* The largest real site's share of ev (the "other" series is never one site). */
static double s_top_share(const evidence_t *ev)
{
    for (uint32_t i = 0; i < ev->nshares && i < EVIDENCE_SHARES_MAX; i++)
        if (strcmp(ev->shares[i].site, "other") != 0)
            return ev->events ? (double)ev->shares[i].events / (double)ev->events : 0.0;
    return 0.0;
}

json_t *control_json_verdict(const rule_t *r, rules_verdict_t v, const evidence_t *ev)
{
    bool local = r->reach == BS_REACH_LOCAL;
    return json_pack("{s:s, s:s, s:s, s:I, s:I, s:I, s:I, s:I, s:f, s:f, s:s, s:b}", "rule",
                     r->name, "reach", bs_enums_reach_name(r->reach), "mode",
                     bs_enums_mode_name(r->mode), "window_s", (json_int_t)(r->window_ms / 1000),
                     "events", (json_int_t)ev->events, "min_events", (json_int_t)r->min_events,
                     "sites", (json_int_t)ev->sites, "min_sites",
                     (json_int_t)(local ? 1 : r->min_sites), "top_share", s_top_share(ev),
                     "max_site_share", local ? 1.0 : r->max_site_share, "verdict",
                     rules_verdict_name(v), "fires", v == RULES_FIRES);
}

/* ---- helpers ---- */

/* Sets the document, adding now_ms first. */
static int s_ok(s_ctx_t *c, json_t *doc)
{
    json_t *out = json_pack("{s:I}", "now_ms", (json_int_t)c->now_ms);
    json_object_update(out, doc);
    json_decref(doc);
    c->doc = out;
    c->status = 0;
    return 0;
}

/* Stores and publishes what the table has pending; EX_SOFTWARE when the store failed. */
static int s_apply(server_t *srv, s_ctx_t *c)
{
    if (server_apply_changes(srv) < 0)
        return s_fail(c, EX_SOFTWARE,
                      "the change is made but could not be written to the store yet; it is "
                      "retried and published once stored (see the aggregator's log)");
    return 0;
}

/* The sensor rows shared by status and sites. */
static json_t *s_sensor(const server_sensor_t *s, uint64_t epoch, uint64_t seq, int64_t now_ms)
{
    bool same_epoch = s->epoch == epoch;
    uint64_t lag = same_epoch && s->applied_seq <= seq ? seq - s->applied_seq : seq;
    bool stale = now_ms - s->last_seen_ms > S_STALE_MS || (s->epoch != 0 && !same_epoch);
    return json_pack("{s:o, s:o, s:I, s:o, s:I, s:I, s:b, s:I, s:I}", "site", s_text(s->site),
                     "sensor", s_text(s->sensor), "last_seen_ms", (json_int_t)s->last_seen_ms,
                     "epoch", s_hex(s->epoch), "applied_seq", (json_int_t)s->applied_seq, "lag",
                     (json_int_t)lag, "stale", stale, "events", (json_int_t)s->events, "decisions",
                     (json_int_t)s->decisions);
}

/* A reply's long list (decisions, allowlist entries): at most max items, and no more JSON
 * than S_REPLY_BUDGET, so that the reply fits one frame whatever the texts in it. */
typedef struct {
    json_t *arr;  /* the items so far */
    size_t max;   /* at most this many */
    size_t total; /* offered */
    size_t bytes; /* their JSON */
    bool full;    /* one did not fit: the rest are only counted */
} s_list_t;

static void s_list_init(s_list_t *l, size_t max)
{
    *l = (s_list_t){.arr = json_array(), .max = max};
}

/* Appends v (taking it) while the list has room; counts it either way. */
static void s_list_add(s_list_t *l, json_t *v)
{
    l->total++;
    size_t n = l->full || json_array_size(l->arr) >= l->max
                   ? 0
                   : json_dumpb(v, NULL, 0, JSON_COMPACT | JSON_REAL_PRECISION(6)) + 1;
    if (n == 0 || l->bytes + n > S_REPLY_BUDGET) {
        l->full = true;
        json_decref(v);
        return;
    }
    l->bytes += n;
    json_array_append_new(l->arr, v);
}

/* name: the list, into doc with how many there were and whether some were left out:
 * "total" and "truncated", or "NAME_total" and "NAME_truncated" (named: the list is not
 * what the document is about). */
static json_t *s_list_put(json_t *doc, const char *name, s_list_t *l, bool named)
{
    char total[64], truncated[64];
    snprintf(total, sizeof(total), "%s%stotal", named ? name : "", named ? "_" : "");
    snprintf(truncated, sizeof(truncated), "%s%struncated", named ? name : "", named ? "_" : "");
    json_object_set_new(doc, total, json_integer((json_int_t)l->total));
    json_object_set_new(doc, truncated, json_boolean(json_array_size(l->arr) < l->total));
    json_object_set_new(doc, name, l->arr);
    return doc;
}

/* ---- commands ---- */

static int s_status(server_t *srv, s_ctx_t *c)
{
    const server_stats_t *st = server_stats(srv);
    decisions_t *d = server_decisions(srv);
    size_t nsensors, nsites;
    const server_sensor_t *sensors = server_sensors(srv, &nsensors);
    (void)server_sites(srv, &nsites);

    json_t *dropped = json_object();
    for (int i = 1; i < SERVER_DROP__COUNT; i++)
        /* not oversize: libzmq (ZMQ_MAXMSGSIZE) closes the sender's connection before the
         * frame is read, so it cannot be counted (PROTOCOL.md 2) */
        if (i != SERVER_DROP_OVERSIZE)
            json_object_set_new(dropped, server_drop_name((server_drop_t)i),
                                json_integer((json_int_t)st->drops[i]));
    s_list_t sl;
    s_list_init(&sl, S_LIST_DEFAULT);
    for (size_t i = 0; i < nsensors; i++)
        s_list_add(&sl, s_sensor(&sensors[i], decisions_epoch(d), decisions_seq(d), c->now_ms));
    /* lost: the data directory is not the one opened and no new store holds it all yet */
    bool lost = st->store_lost_ms != 0;
    json_t *store = json_pack(
        "{s:I, s:o, s:I, s:o, s:o, s:o, s:I}", "errors", (json_int_t)st->store_errors,
        "failing_since_ms",
        st->store_failing_ms ? json_integer((json_int_t)st->store_failing_ms) : json_null(),
        "unstored", (json_int_t)server_unstored(srv), "lost_since_ms",
        lost ? json_integer((json_int_t)st->store_lost_ms) : json_null(), "lost_reason",
        lost ? s_text(st->store_lost_reason) : json_null(), "lost_error",
        lost && st->store_lost_error[0] ? s_text(st->store_lost_error) : json_null(), "recreated",
        (json_int_t)st->store_recreated);
    int64_t up = (c->now_ms - st->started_ms) / 1000;
    json_t *peer = json_null();
    const peer_stats_t *ps = server_peer(srv);
    if (ps)
        peer = json_pack(
            "{s:s, s:s, s:o, s:I, s:I, s:I, s:I, s:I, s:I, s:I, s:{s:b, s:I, s:I, s:I}}",
            "decisions", server_config(srv)->peer_decisions, "state", ps->live ? "live" : "joining",
            "epoch", s_hex(ps->epoch), "seq", (json_int_t)ps->seq, "applied",
            (json_int_t)ps->applied, "echoes", (json_int_t)ps->echoes, "refused",
            (json_int_t)ps->refused, "merged", (json_int_t)ps->merged, "resyncs",
            (json_int_t)ps->resyncs, "bad_frames", (json_int_t)ps->bad_frames, "shared", "same",
            ps->shared_heard && ps->shared_digest == server_shared_digest(srv), "fetches",
            (json_int_t)ps->shared_fetches, "applied", (json_int_t)ps->shared_applied, "refused",
            (json_int_t)ps->shared_refused);
    /* when it was last heard: while it is not live, what status says of it is as of then */
    if (ps)
        json_object_set_new(peer, "heard_ms",
                            ps->heard_ms ? json_integer((json_int_t)ps->heard_ms) : json_null());
    json_t *doc = json_pack(
        "{s:I, s:I, s:o, s:I, s:f, s:{s:I, s:I, s:I, s:o, s:I}, s:I, s:{s:I, s:I, s:I}, s:I, "
        "s:I, s:o, s:o}",
        "started_ms", (json_int_t)st->started_ms, "uptime_s", (json_int_t)(up < 0 ? 0 : up),
        "epoch", s_hex(decisions_epoch(d)), "seq", (json_int_t)decisions_seq(d), "events_per_s",
        st->events_per_s, "events", "received", (json_int_t)st->events_in, "counted",
        (json_int_t)st->events_counted, "allowlisted", (json_int_t)st->events_allowlisted,
        "dropped", dropped, "untracked", (json_int_t)st->events_untracked, "keys",
        (json_int_t)window_keys(server_window(srv)), "decisions", "active",
        (json_int_t)decisions_count(d), "enforced", (json_int_t)decisions_count_enforced(d),
        "pending", (json_int_t)decisions_pending(d), "allowlist",
        (json_int_t)allowlist_count(server_allowlist(srv)), "sites", (json_int_t)nsites, "store",
        store, "peer", peer);
    json_object_set_new(doc, "handshakes_refused",
                        json_integer((json_int_t)server_handshakes_refused(srv)));
    /* the window's room: keys refused are counts lost (the events refused on every key
     * are the drop "refused"); "full" counts those refused because max_keys was reached */
    json_object_set_new(
        doc, "window",
        json_pack("{s:I, s:I, s:I, s:I}", "keys", (json_int_t)window_keys(server_window(srv)),
                  "max_keys", (json_int_t)server_config(srv)->max_keys, "keys_refused",
                  (json_int_t)st->keys_refused, "full", (json_int_t)st->keys_refused_full));
    /* every sensor that ever reported is listed, as many as a reply holds */
    return s_ok(c, s_list_put(doc, "sensors", &sl, true));
}

/* decisions_foreach state for the list. */
typedef struct {
    s_list_t list;  /* the decisions */
    int64_t now_ms; /* for expires_in_s */
} s_dlist_t;

static int s_list_cb(const decision_t *d, void *arg)
{
    s_dlist_t *l = arg;
    s_list_add(&l->list, control_json_decision(d, l->now_ms, false));
    return 0;
}

static int s_decision_list(server_t *srv, const Backstop__ControlRequest *req, s_ctx_t *c)
{
    s_dlist_t l = {.now_ms = c->now_ms};
    s_list_init(&l.list, req->has_limit && req->limit > 0
                             ? (req->limit < S_LIST_MAX ? req->limit : S_LIST_MAX)
                             : S_LIST_DEFAULT);
    decisions_foreach(server_decisions(srv), NULL, s_list_cb, &l);
    return s_ok(c, s_list_put(json_object(), "decisions", &l.list, false));
}

static int s_decision_show(server_t *srv, const Backstop__ControlRequest *req, s_ctx_t *c)
{
    if (req->id == NULL || req->id[0] == '\0')
        return s_fail(c, EX_USAGE, "decisions show: which decision? (an id)");
    const decision_t *d = decisions_find(server_decisions(srv), req->id);
    if (d == NULL)
        return s_fail(c, EX_DATAERR, "no active decision %s (expired or revoked?)", req->id);
    return s_ok(c, json_pack("{s:o}", "decision", control_json_decision(d, c->now_ms, true)));
}

/* Whether the aggregator knows site name: registered, or one of its sensors reported (in
 * plain mode no site is registered). A decision or allowlist entry for any other site
 * (a typo) would block or allow nothing, so it needs force. */
static bool s_site_known(const server_t *srv, const char *name)
{
    size_t n;
    if (server_site_find(srv, name))
        return true;
    const server_sensor_t *sensors = server_sensors(srv, &n);
    for (size_t i = 0; i < n; i++)
        if (strcmp(sensors[i].site, name) == 0)
            return true;
    return false;
}

/* Why an unknown site is refused, into buf. */
static const char *s_unknown_site(const char *name, char *buf, size_t len)
{
    snprintf(buf, len,
             "no site %.64s is registered or has sensors reporting (backstop sites lists the "
             "sites known; --force takes it anyway)",
             name);
    return buf;
}

static int s_decision_add(server_t *srv, const Backstop__ControlRequest *req, s_ctx_t *c)
{
    char kerr[256];
    decision_t d;
    const decision_t *out = NULL;
    decisions_t *table = server_decisions(srv);

    if (!req->has_scope || req->value == NULL)
        return s_fail(c, EX_USAGE, "decisions add: scope and value are required");
    bs_scope_t scope = (bs_scope_t)req->scope;
    if (scope < BS_SCOPE_SUBJECT || scope > BS_SCOPE_SUBJECT_IP)
        return s_fail(c, EX_USAGE, "decisions add: scope %s cannot be blocked",
                      bs_enums_scope_name(scope));
    char *text = cli_key_decision_text(scope, req->value, kerr, sizeof(kerr));
    if (text == NULL)
        return s_fail(c, EX_DATAERR, "decisions add: %s", kerr);
    uint32_t ttl_s = req->has_ttl_s ? req->ttl_s : S_TTL_DEFAULT;
    bs_action_t action = req->has_action ? (bs_action_t)req->action : BS_ACTION_REJECT;
    bs_reach_t reach = req->has_reach ? (bs_reach_t)req->reach : BS_REACH_FLEET;
    if (ttl_s < 1 || ttl_s > S_TTL_MAX) {
        xfree(text);
        return s_fail(c, EX_DATAERR, "decisions add: ttl must be 1 s to 30 days");
    }
    if (action == BS_ACTION_NONE || reach == BS_REACH_UNKNOWN) {
        xfree(text);
        return s_fail(c, EX_DATAERR, "decisions add: action and reach must be set");
    }
    if (reach == BS_REACH_LOCAL ? !cli_key_site_valid(req->site) : req->site && req->site[0]) {
        xfree(text);
        return s_fail(c, EX_DATAERR,
                      "decisions add: a site decision needs a valid site, a "
                      "fleet decision none");
    }
    if (reach == BS_REACH_LOCAL && !s_site_known(srv, req->site) && !req->force) {
        xfree(text);
        return s_fail(c, EX_DATAERR, "decisions add: %s",
                      s_unknown_site(req->site, kerr, sizeof(kerr)));
    }

    memset(&d, 0, sizeof(d));
    d.scope = scope;
    d.fp = cli_key_fp(text);
    decisions_strlcpy(d.value, text, DECISION_VALUE_MAX);
    xfree(text);
    d.action = action;
    d.reach = reach;
    if (reach == BS_REACH_LOCAL)
        decisions_strlcpy(d.site, req->site, DECISION_NAME_MAX);
    if (req->reason && req->reason[0])
        decisions_strlcpy(d.reason, req->reason, DECISION_REASON_MAX);
    else
        snprintf(d.reason, sizeof(d.reason), "added by %s", c->who);
    d.expires_ms = c->now_ms + (int64_t)ttl_s * 1000;
    d.origin = BS_ORIGIN_CLI;
    decisions_strlcpy(d.origin_who, c->who, DECISION_NAME_MAX);
    d.mode = BS_MODE_ENFORCE;
    d.all_mail = req->has_all_mail && req->all_mail;

    if (allowlist_covers_decision(server_allowlist(srv), &d))
        return s_fail(c, EX_DATAERR,
                      "decisions add: %s %s is allowlisted; remove the allowlist entry first "
                      "(backstop allow list)",
                      bs_enums_scope_name(scope), d.value);

    decisions_result_t r = decisions_propose(table, &d, 0, c->now_ms, &out);
    decision_t copy = *out; /* the pointer is good only until the next change */
    /* what the decision in force kept against the request: add never weakens a block */
    json_t *kept = json_object();
    if (copy.expires_ms > d.expires_ms + 1000)
        json_object_set_new(kept, "expires_ms", json_integer((json_int_t)copy.expires_ms));
    if (decisions_action_rank(copy.action) > decisions_action_rank(action))
        json_object_set_new(kept, "action", json_string(bs_enums_action_name(copy.action)));
    static const char *const names[] = {"unchanged", "created", "extended"};
    char qv[MSG_QUOTE_SIZE(DECISION_VALUE_MAX)], qw[MSG_QUOTE_SIZE(DECISION_NAME_MAX)];
    msg_info("control: op=decision_add id=%s result=%s scope=%s value=%s action=%s reach=%s "
             "site=%s ttl=%us who=%s",
             copy.id, names[r], bs_enums_scope_name(scope), msg_quote(qv, sizeof(qv), copy.value),
             bs_enums_action_name(action), bs_enums_reach_name(reach),
             copy.site[0] ? copy.site : "-", ttl_s, msg_quote(qw, sizeof(qw), c->who));
    if (s_apply(srv, c) != 0) {
        json_decref(kept);
        return c->status;
    }
    return s_ok(c, json_pack("{s:s, s:o, s:o}", "result", names[r], "decision",
                             control_json_decision(&copy, c->now_ms, true), "kept", kept));
}

/* ingest_explain state for a revoked decision: the rules that would make it again. */
typedef struct {
    const decision_t *d; /* the decision revoked */
    json_t *rules;       /* names of the rules that fire on its key now */
} s_refire_t;

static void s_refire_cb(const rule_t *r, rules_verdict_t v, const evidence_t *ev, void *arg)
{
    (void)ev;
    s_refire_t *x = arg;
    if (v == RULES_FIRES && r->reach == x->d->reach && r->mode == x->d->mode)
        json_array_append_new(x->rules, json_string(r->name));
}

static int s_decision_del(server_t *srv, const Backstop__ControlRequest *req, s_ctx_t *c)
{
    decisions_t *table = server_decisions(srv);

    if (req->id == NULL || req->id[0] == '\0')
        return s_fail(c, EX_USAGE, "decisions del: which decision? (an id)");
    const decision_t *d = decisions_find(table, req->id);
    if (d == NULL)
        return s_fail(c, EX_DATAERR, "no active decision %s (expired or revoked?)", req->id);
    decision_t copy = *d;
    if (decisions_remove(table, copy.id, DECISION_WHY_REVOKED, c->now_ms) < 0)
        return s_fail(c, EX_SOFTWARE, "decision %s could not be removed", copy.id);
    char qv[MSG_QUOTE_SIZE(DECISION_VALUE_MAX)], qw[MSG_QUOTE_SIZE(DECISION_NAME_MAX)];
    char qr[MSG_QUOTE_SIZE(DECISION_REASON_MAX)];
    msg_info("control: op=decision_del id=%s scope=%s value=%s who=%s reason=%s", copy.id,
             bs_enums_scope_name(copy.scope), msg_quote(qv, sizeof(qv), copy.value),
             msg_quote(qw, sizeof(qw), c->who), msg_quote(qr, sizeof(qr), req->reason));
    if (s_apply(srv, c) != 0)
        return c->status;
    /* a rule that still sees the wave blocks the key again at its next event: say so */
    s_refire_t x = {&copy, json_array()};
    ingest_explain(server_ingest(srv), copy.scope, copy.fp,
                   copy.reach == BS_REACH_LOCAL ? copy.site : NULL, c->now_ms, s_refire_cb, &x);
    return s_ok(c, json_pack("{s:o, s:o}", "revoked",
                             control_json_decision(&copy, c->now_ms, false), "refires", x.rules));
}

/* ---- why ---- */

/* A key `why` looks at. */
typedef struct {
    bs_scope_t scope;                  /* its scope */
    char text[DECISION_VALUE_MAX + 1]; /* canonical text */
} s_key_t;

/* ingest_explain state: the rules' rows, the busiest site, the longest window. */
typedef struct {
    const decisions_t *decisions;         /* where a rule's decision is looked up */
    uint64_t fp;                          /* the key's fingerprint */
    json_t *rules;                        /* verdict rows */
    bool local_only;                      /* second pass: local rules only */
    char top_site[DECISION_NAME_MAX + 1]; /* site with most events (fleet evidence) */
    uint64_t events;                      /* events in the longest window seen */
    int64_t span_ms;                      /* that window */
} s_explain_t;

static void s_explain_cb(const rule_t *r, rules_verdict_t v, const evidence_t *ev, void *arg)
{
    s_explain_t *x = arg;
    bool local = r->reach == BS_REACH_LOCAL;
    if (x->local_only != local)
        return;
    json_t *row = control_json_verdict(r, v, ev);
    if (local && x->top_site[0])
        json_object_set_new(row, "site", s_text(x->top_site));
    /* whether the rule's decision (its identity: one a firing would make or extend) is in
     * force: rules are evaluated only when an event comes, so a rule whose decision ran
     * out (a TTL shorter than the window) or was revoked "fires" here and blocks nothing
     * until the key's next event */
    const decision_t *cur = decisions_find_identity(x->decisions, r->scope, x->fp, r->reach,
                                                    local ? x->top_site : "", r->mode);
    json_object_set_new(row, "decided", json_boolean(cur != NULL));
    json_array_append_new(x->rules, row);
    if (!local) {
        for (uint32_t i = 0; i < ev->nshares && x->top_site[0] == '\0'; i++)
            if (strcmp(ev->shares[i].site, "other") != 0)
                decisions_strlcpy(x->top_site, ev->shares[i].site, DECISION_NAME_MAX);
        if (r->window_ms >= x->span_ms) {
            x->span_ms = r->window_ms;
            x->events = ev->events;
        }
    }
}

/* The rows of one key: fleet rules, then local rules at site (or the busiest site). */
static json_t *s_explain_key(server_t *srv, const s_key_t *k, const char *site, int64_t now_ms)
{
    const ingest_t *in = server_ingest(srv);
    uint64_t fp = cli_key_fp(k->text);
    s_explain_t x;

    memset(&x, 0, sizeof(x));
    x.decisions = server_decisions(srv);
    x.fp = fp;
    x.rules = json_array();
    ingest_explain(in, k->scope, fp, NULL, now_ms, s_explain_cb, &x);
    if (site && site[0])
        decisions_strlcpy(x.top_site, site, DECISION_NAME_MAX);
    if (x.top_site[0]) {
        x.local_only = true;
        ingest_explain(in, k->scope, fp, x.top_site, now_ms, s_explain_cb, &x);
    }
    return json_pack("{s:s, s:o, s:o, s:I, s:I, s:o}", "scope", bs_enums_scope_name(k->scope),
                     "value", s_text(k->text), "fp", s_hex(fp), "events", (json_int_t)x.events,
                     "span_s", (json_int_t)(x.span_ms / 1000), "rules", x.rules);
}

/* allowlist_foreach state: the entries covering a key or decision. */
typedef struct {
    json_t *arr;             /* matching entries */
    const decision_t *probe; /* the (pseudo) decision to test */
} s_cover_t;

static int s_cover_cb(const allow_entry_t *e, void *arg)
{
    s_cover_t *cv = arg;
    allowlist_t *one = allowlist_new();
    if (allowlist_restore(one, e) == 0 && allowlist_covers_decision(one, cv->probe))
        json_array_append_new(cv->arr, control_json_allow(e));
    allowlist_destroy(&one);
    return 0;
}

/* The allowlist entries that cover key k (as a fleet decision on it would be covered). */
static void s_covering(server_t *srv, const s_key_t *k, const char *site, json_t *arr)
{
    decision_t probe;
    memset(&probe, 0, sizeof(probe));
    probe.scope = k->scope;
    probe.fp = cli_key_fp(k->text);
    decisions_strlcpy(probe.value, k->text, DECISION_VALUE_MAX);
    probe.reach = site && site[0] ? BS_REACH_LOCAL : BS_REACH_FLEET;
    if (site)
        decisions_strlcpy(probe.site, site, DECISION_NAME_MAX);
    s_cover_t cv = {arr, &probe};
    allowlist_foreach(server_allowlist(srv), s_cover_cb, &cv);
}

/* Adds the active decisions on k to arr, skipping the id already listed. */
static void s_decisions_on(server_t *srv, const s_key_t *k, const char *skip_id, int64_t now_ms,
                           json_t *arr)
{
    const decision_t *found[16];
    size_t n = decisions_find_key(server_decisions(srv), k->scope, cli_key_fp(k->text), found, 16);
    for (size_t i = 0; i < n && i < 16; i++)
        if (skip_id == NULL || strcmp(found[i]->id, skip_id) != 0)
            json_array_append_new(arr, control_json_decision(found[i], now_ms, true));
}

static int s_why(server_t *srv, const Backstop__ControlRequest *req, s_ctx_t *c)
{
    s_key_t keys[2];
    size_t nkeys = 0;
    const char *kind, *site = NULL, *skip = NULL;
    char kerr[256];
    netaddr_t addr;
    netaddr_cidr_t cidr;
    json_t *decisions = json_array(), *allowed = json_array(), *karr = json_array();
    const char *q = req->query ? req->query : req->id;

    if (q == NULL || q[0] == '\0') {
        json_decref(decisions);
        json_decref(allowed);
        json_decref(karr);
        return s_fail(c, EX_USAGE, "why: give a decision id, an IP address or a subject");
    }
    memset(keys, 0, sizeof(keys));
    bool id_like = strlen(q) <= DECISION_ID_LEN + 2 && !strchr(q, ' ');
    const decision_t *d = id_like ? decisions_find(server_decisions(srv), q) : NULL;
    /* an id a reject named before, no longer in force: why, and what it was, while the
     * change log holds it */
    const decision_change_t *gone =
        id_like && !d ? decisions_last_change(server_decisions(srv), q) : NULL;
    json_t *removed = NULL;
    if (gone && gone->kind == DECISION_REMOVE) {
        d = &gone->decision;
        const decision_t *by = gone->why == DECISION_WHY_SUPERSEDED
                                   ? decisions_find_identity(server_decisions(srv), d->scope, d->fp,
                                                             d->reach, d->site, d->mode)
                                   : NULL;
        removed = json_pack("{s:s, s:o}", "why", decisions_why_name(gone->why), "replaced_by",
                            by ? json_string(by->id) : json_null());
    }
    if (d) {
        kind = "decision";
        json_array_append_new(decisions, control_json_decision(d, c->now_ms, true));
        keys[0].scope = d->scope;
        decisions_strlcpy(keys[0].text, d->value, DECISION_VALUE_MAX);
        nkeys = 1;
        if (d->reach == BS_REACH_LOCAL)
            site = d->site;
        skip = d->id;
    } else if (netaddr_parse(&addr, q) == 0) {
        kind = "ip";
        keys[0].scope = BS_SCOPE_CLIENT_IP;
        netaddr_format(&addr, keys[0].text, sizeof(keys[0].text));
        keys[1].scope = BS_SCOPE_CLIENT_NET;
        netaddr_network_text(&addr, keys[1].text, sizeof(keys[1].text));
        nkeys = 2;
    } else if (strchr(q, '/') && netaddr_cidr_parse(&cidr, q) == 0) {
        kind = "net";
        keys[0].scope = BS_SCOPE_CLIENT_NET;
        netaddr_cidr_format(&cidr, keys[0].text, sizeof(keys[0].text));
        nkeys = 1;
    } else {
        const char *bar = strrchr(q, '|');
        bool subject_ip = bar && netaddr_parse(&addr, bar + 1) == 0;
        bs_scope_t scope = subject_ip ? BS_SCOPE_SUBJECT_IP : BS_SCOPE_SUBJECT;
        char *text = cli_key_text(scope, q, kerr, sizeof(kerr));
        if (text == NULL) {
            json_decref(decisions);
            json_decref(allowed);
            json_decref(karr);
            return s_fail(c, EX_DATAERR, "why: \"%s\" is no active decision id, no address, and %s",
                          q, kerr);
        }
        kind = subject_ip ? "subject_ip" : "subject";
        keys[0].scope = scope;
        decisions_strlcpy(keys[0].text, text, DECISION_VALUE_MAX);
        nkeys = 1;
        if (!subject_ip) {
            keys[1].scope = BS_SCOPE_ORIG_SUBJECT;
            decisions_strlcpy(keys[1].text, text, DECISION_VALUE_MAX);
            nkeys = 2;
        }
        xfree(text);
    }
    for (size_t i = 0; i < nkeys; i++) {
        s_decisions_on(srv, &keys[i], skip, c->now_ms, decisions);
        if (json_array_size(allowed) == 0)
            s_covering(srv, &keys[i], site, allowed);
        json_array_append_new(karr, s_explain_key(srv, &keys[i], site, c->now_ms));
    }
    json_t *doc = json_pack("{s:o, s:s, s:o, s:o, s:o}", "query", s_text(q), "kind", kind,
                            "decisions", decisions, "allowlisted", allowed, "keys", karr);
    if (removed)
        json_object_set_new(doc, "removed", removed);
    return s_ok(c, doc);
}

/* ---- top ---- */

/* One candidate row of top. */
typedef struct {
    const rule_t *rule;               /* the rule it is measured against */
    window_key_t key;                 /* the key */
    evidence_t ev;                    /* its counts in that rule's window */
    rules_verdict_t v;                /* the rule's verdict */
    double progress;                  /* 0..1, how near the thresholds */
    char site[DECISION_NAME_MAX + 1]; /* for local rules: the busiest site */
} s_top_t;

static int s_top_cmp(const void *a, const void *b)
{
    const s_top_t *x = a, *y = b;
    if (x->progress != y->progress)
        return x->progress < y->progress ? 1 : -1;
    return x->ev.events < y->ev.events ? 1 : x->ev.events > y->ev.events ? -1 : 0;
}

/* How near a key is to a rule's thresholds: the smallest of events/min_events and (fleet)
 * sites/min_sites, capped at 1; a rule that fires is 1. */
static double s_progress(const rule_t *r, rules_verdict_t v, const evidence_t *ev)
{
    if (v == RULES_FIRES)
        return 1.0;
    double p = r->min_events ? (double)ev->events / (double)r->min_events : 1.0;
    if (r->reach == BS_REACH_FLEET && r->min_sites) {
        double s = (double)ev->sites / (double)r->min_sites;
        if (s < p)
            p = s;
    }
    if (p > 0.999)
        p = 0.999; /* it meets the counts but not the share: not there */
    return p;
}

static int s_top(server_t *srv, const Backstop__ControlRequest *req, s_ctx_t *c)
{
    const ingest_t *in = server_ingest(srv);
    const window_t *w = server_window(srv);
    size_t nrules, n = 0, cap;
    const rule_t *rules = ingest_rules(in, &nrules);
    uint32_t limit = req->has_limit && req->limit > 0 ? req->limit : S_TOP_DEFAULT;

    if (limit > S_TOP_MAX)
        limit = S_TOP_MAX;
    cap = (size_t)limit * (nrules ? nrules : 1);
    s_top_t *rows = xcalloc(cap, sizeof(*rows));
    window_top_t *top = xcalloc(limit, sizeof(*top));
    for (size_t i = 0; i < nrules; i++) {
        const rule_t *r = &rules[i];
        if (req->has_scope && (bs_scope_t)req->scope != r->scope)
            continue;
        size_t got = window_top(w, (uint8_t)r->scope, ingest_rule_tally(in, i), r->window_ms,
                                c->now_ms, top, limit);
        for (size_t k = 0; k < got && n < cap; k++) {
            s_top_t *row = &rows[n++];
            row->rule = r;
            row->key = top[k].key;
            unsigned site = 0;
            if (r->reach == BS_REACH_LOCAL) {
                window_stats_t st;
                if (window_stats(w, &top[k].key, WINDOW_SITE_ALL, r->window_ms, c->now_ms, &st) ==
                        0 &&
                    st.nshares > 0 && st.shares[0].site != WINDOW_SITE_OTHER) {
                    site = st.shares[0].site;
                    decisions_strlcpy(row->site, window_site_name(w, site), DECISION_NAME_MAX);
                }
            }
            row->v = rules_eval(r, w, &top[k].key, site, c->now_ms, &row->ev);
            row->progress = s_progress(r, row->v, &row->ev);
        }
    }
    qsort(rows, n, sizeof(*rows), s_top_cmp);

    json_t *arr = json_array();
    size_t shown = 0;
    for (size_t i = 0; i < n && shown < limit; i++) {
        /* one row per key: its nearest rule */
        bool dup = false;
        for (size_t j = 0; j < i && !dup; j++)
            dup = rows[j].key.scope == rows[i].key.scope && rows[j].key.fp == rows[i].key.fp;
        if (dup)
            continue;
        const s_top_t *row = &rows[i];
        const decision_t *found[1];
        window_stats_t st;
        const char *text = row->ev.sample;
        if (text[0] == '\0' &&
            window_stats(w, &row->key, WINDOW_SITE_ALL, row->rule->window_ms, c->now_ms, &st) == 0)
            text = st.text;
        json_t *j = control_json_verdict(row->rule, row->v, &row->ev);
        json_object_set_new(j, "scope", json_string(bs_enums_scope_name(row->key.scope)));
        json_object_set_new(j, "value", s_text(text));
        json_object_set_new(j, "fp", s_hex(row->key.fp));
        json_object_set_new(j, "progress", json_real(row->progress));
        json_object_set_new(
            j, "decided",
            json_boolean(decisions_find_key(server_decisions(srv), (bs_scope_t)row->key.scope,
                                            row->key.fp, found, 1) > 0));
        if (row->site[0])
            json_object_set_new(j, "site", s_text(row->site));
        json_array_append_new(arr, j);
        shown++;
    }
    xfree(rows);
    xfree(top);
    return s_ok(c, json_pack("{s:o}", "keys", arr));
}

/* ---- allowlist ---- */

static int s_allow_list_cb(const allow_entry_t *e, void *arg)
{
    s_list_add(arg, control_json_allow(e));
    return 0;
}

static int s_allow_list(server_t *srv, s_ctx_t *c)
{
    s_list_t l;
    s_list_init(&l, SIZE_MAX);
    allowlist_foreach(server_allowlist(srv), s_allow_list_cb, &l);
    return s_ok(c, s_list_put(json_object(), "allowlist", &l, false));
}

/* Fills e from a request's scope and value; 0, or a status with c's error set. */
static int s_allow_entry(const Backstop__ControlRequest *req, allow_entry_t *e, s_ctx_t *c)
{
    char kerr[256];
    memset(e, 0, sizeof(*e));
    if (!req->has_scope || req->value == NULL)
        return s_fail(c, EX_USAGE, "allow: type and value are required");
    bs_scope_t scope = (bs_scope_t)req->scope;
    char *text = scope == BS_SCOPE_SUBJECT_IP || scope == BS_SCOPE_UNKNOWN
                     ? NULL
                     : cli_key_text(scope, req->value, kerr, sizeof(kerr));
    if (text == NULL)
        return s_fail(c, EX_DATAERR, "allow: %s",
                      scope == BS_SCOPE_SUBJECT_IP || scope == BS_SCOPE_UNKNOWN
                          ? "type must be ip, net, subject, orig_subject, sender_domain or site"
                          : kerr);
    int rc = 0;
    switch (scope) {
    case BS_SCOPE_CLIENT_IP:
        rc = allowlist_entry_parse(e, ALLOW_IP, text);
        break;
    case BS_SCOPE_CLIENT_NET:
        rc = allowlist_entry_parse(e, ALLOW_NET, text);
        break;
    case BS_SCOPE_SENDER_DOMAIN:
        rc = allowlist_entry_parse(e, ALLOW_DOMAIN, text);
        break;
    case BS_SCOPE_SITE:
        rc = allowlist_entry_parse(e, ALLOW_SITE, text);
        break;
    default:
        e->type = ALLOW_KEY;
        e->scope = scope;
        e->fp = cli_key_fp(text);
        decisions_strlcpy(e->text, text, ALLOW_TEXT_MAX);
        break;
    }
    xfree(text);
    if (rc < 0)
        return s_fail(c, EX_DATAERR, "allow: \"%s\" is not a valid %s", req->value,
                      bs_enums_scope_name(scope));
    return 0;
}

static int s_allow_add(server_t *srv, const Backstop__ControlRequest *req, s_ctx_t *c)
{
    allow_entry_t e;
    allowlist_ids_t covered = {0, NULL};
    char err[256];

    if (s_allow_entry(req, &e, c) != 0)
        return c->status;
    if (e.type == ALLOW_SITE && !s_site_known(srv, e.text) && !req->force)
        return s_fail(c, EX_DATAERR, "allow add: %s", s_unknown_site(e.text, err, sizeof(err)));
    uint32_t same = allowlist_find_same(server_allowlist(srv), &e);
    if (same) {
        const allow_entry_t *old = allowlist_find(server_allowlist(srv), same);
        return s_ok(c, json_pack("{s:s, s:o, s:[]}", "result", "exists", "entry",
                                 control_json_allow(old), "revoked"));
    }
    decisions_strlcpy(e.who, c->who, DECISION_NAME_MAX);
    if (req->reason)
        decisions_strlcpy(e.reason, req->reason, DECISION_REASON_MAX);
    e.created_ms = c->now_ms;

    /* which decisions it will revoke, as they are now (the server revokes them); as many
     * as a reply holds, and how many in all */
    s_list_t revoked;
    s_list_init(&revoked, S_LIST_DEFAULT);
    allowlist_t *one = allowlist_new();
    (void)allowlist_add(one, &e, server_decisions(srv), &covered);
    for (size_t i = 0; i < covered.n; i++) {
        const decision_t *d = decisions_find(server_decisions(srv), covered.id[i]);
        if (d)
            s_list_add(&revoked, control_json_decision(d, c->now_ms, false));
    }
    allowlist_ids_clear(&covered);
    allowlist_destroy(&one);

    size_t nrevoked = 0;
    uint32_t id = server_allow_add(srv, &e, &nrevoked, err, sizeof(err));
    if (id == 0) {
        json_decref(revoked.arr);
        return s_fail(c, EX_SOFTWARE, "allow add: %s", err);
    }
    char qv[MSG_QUOTE_SIZE(ALLOW_TEXT_MAX)], qw[MSG_QUOTE_SIZE(DECISION_NAME_MAX)];
    msg_info("control: op=allow_add id=%u type=%s value=%s who=%s revoked=%zu", id,
             s_allow_type(&e), msg_quote(qv, sizeof(qv), e.text), msg_quote(qw, sizeof(qw), c->who),
             nrevoked);
    const allow_entry_t *stored = allowlist_find(server_allowlist(srv), id);
    return s_ok(c, s_list_put(json_pack("{s:s, s:o}", "result", "created", "entry",
                                        control_json_allow(stored ? stored : &e)),
                              "revoked", &revoked, true));
}

static int s_allow_del(server_t *srv, const Backstop__ControlRequest *req, s_ctx_t *c)
{
    uint32_t id = 0;
    char err[256];

    if (req->id && req->id[0]) {
        char *end;
        errno = 0;
        unsigned long v = strtoul(req->id, &end, 10);
        if (errno || *end || v == 0 || v > UINT32_MAX)
            return s_fail(c, EX_DATAERR, "allow del: \"%s\" is not an entry id", req->id);
        id = (uint32_t)v;
    } else {
        allow_entry_t e;
        if (s_allow_entry(req, &e, c) != 0)
            return c->status;
        id = allowlist_find_same(server_allowlist(srv), &e);
        if (id == 0)
            return s_fail(c, EX_DATAERR, "allow del: no allowlist entry for %s %s",
                          s_allow_type(&e), e.text);
    }
    const allow_entry_t *old = allowlist_find(server_allowlist(srv), id);
    if (old == NULL)
        return s_fail(c, EX_DATAERR, "allow del: no allowlist entry %u", id);
    json_t *gone = control_json_allow(old);
    if (server_allow_del(srv, id, c->who, err, sizeof(err)) < 0) {
        json_decref(gone);
        return s_fail(c, EX_SOFTWARE, "allow del: %s", err);
    }
    char qw[MSG_QUOTE_SIZE(DECISION_NAME_MAX)];
    msg_info("control: op=allow_del id=%u who=%s", id, msg_quote(qw, sizeof(qw), c->who));
    return s_ok(c, json_pack("{s:o}", "removed", gone));
}

/* ---- sites ---- */

static json_t *s_site(const server_site_t *s)
{
    return json_pack("{s:o, s:b, s:o, s:I, s:o, s:n, s:[]}", "name", s_text(s->name), "registered",
                     1, "public_key", s_text(s->public_key), "created_ms",
                     (json_int_t)s->created_ms, "who", s_text(s->who), "removed_ms", "sensors");
}

static int s_sites(server_t *srv, s_ctx_t *c)
{
    size_t nsites, nsensors;
    const server_site_t *sites = server_sites(srv, &nsites);
    const server_sensor_t *sensors = server_sensors(srv, &nsensors);
    decisions_t *d = server_decisions(srv);
    json_t *arr = json_array(), *by_name = json_object();

    for (size_t i = 0; i < nsites; i++) {
        json_t *s = s_site(&sites[i]);
        json_array_append_new(arr, s);
        json_object_set(by_name, sites[i].name, s);
    }
    for (size_t i = 0; i < nsensors; i++) {
        json_t *s = json_object_get(by_name, sensors[i].site);
        if (s == NULL) {
            /* sensors of sites nobody registered (plain mode), or whose registration was
             * removed (sites del) since they reported: when, while the tombstone says */
            int64_t gone = server_site_removed_ms(srv, sensors[i].site);
            s = json_pack("{s:o, s:b, s:s, s:I, s:s, s:o, s:[]}", "name", s_text(sensors[i].site),
                          "registered", 0, "public_key", "", "created_ms", (json_int_t)0, "who", "",
                          "removed_ms", gone ? json_integer((json_int_t)gone) : json_null(),
                          "sensors");
            json_array_append_new(arr, s);
            json_object_set(by_name, sensors[i].site, s);
        }
        json_array_append_new(
            json_object_get(s, "sensors"),
            s_sensor(&sensors[i], decisions_epoch(d), decisions_seq(d), c->now_ms));
    }
    json_decref(by_name);
    /* as many sites (with their sensors) as a reply holds */
    s_list_t l;
    s_list_init(&l, SIZE_MAX);
    size_t i;
    json_t *site;
    json_array_foreach(arr, i, site)
    {
        s_list_add(&l, json_incref(site));
    }
    json_decref(arr);
    return s_ok(c, s_list_put(json_object(), "sites", &l, true));
}

static int s_site_add(server_t *srv, const Backstop__ControlRequest *req, s_ctx_t *c)
{
    char err[256];
    if (!cli_key_site_valid(req->id))
        return s_fail(c, EX_DATAERR, "sites add: invalid site name (1-64 of A-Z a-z 0-9 . _ -)");
    if (server_site_add(srv, req->id, req->value, c->who, err, sizeof(err)) < 0)
        return s_fail(
            c, server_site_find(srv, req->id) || strstr(err, "key") ? EX_DATAERR : EX_SOFTWARE,
            "sites add: %s", err);
    const server_site_t *s = server_site_find(srv, req->id);
    return s_ok(c, json_pack("{s:o}", "site", s_site(s)));
}

static int s_site_del(server_t *srv, const Backstop__ControlRequest *req, s_ctx_t *c)
{
    char err[256];
    if (req->id == NULL || server_site_find(srv, req->id) == NULL)
        return s_fail(c, EX_DATAERR, "sites del: no site %s", req->id ? req->id : "");
    if (server_site_del(srv, req->id, c->who, err, sizeof(err)) < 0)
        return s_fail(c, EX_SOFTWARE, "sites del: %s", err);
    return s_ok(c, json_pack("{s:{s:s}}", "removed", "name", req->id));
}

bool control_changes(const Backstop__ControlRequest *req)
{
    switch (req->command) {
    case BACKSTOP__CONTROL_REQUEST__COMMAND__STATUS:
    case BACKSTOP__CONTROL_REQUEST__COMMAND__DECISION_LIST:
    case BACKSTOP__CONTROL_REQUEST__COMMAND__DECISION_SHOW:
    case BACKSTOP__CONTROL_REQUEST__COMMAND__WHY:
    case BACKSTOP__CONTROL_REQUEST__COMMAND__TOP:
    case BACKSTOP__CONTROL_REQUEST__COMMAND__ALLOW_LIST:
    case BACKSTOP__CONTROL_REQUEST__COMMAND__SITES:
        return false;
    default:
        return true;
    }
}

/* Runs one command into c. */
static void s_dispatch(server_t *srv, const Backstop__ControlRequest *req, s_ctx_t *c)
{
    switch (req->command) {
    case BACKSTOP__CONTROL_REQUEST__COMMAND__STATUS:
        s_status(srv, c);
        break;
    case BACKSTOP__CONTROL_REQUEST__COMMAND__DECISION_LIST:
        s_decision_list(srv, req, c);
        break;
    case BACKSTOP__CONTROL_REQUEST__COMMAND__DECISION_SHOW:
        s_decision_show(srv, req, c);
        break;
    case BACKSTOP__CONTROL_REQUEST__COMMAND__DECISION_ADD:
        s_decision_add(srv, req, c);
        break;
    case BACKSTOP__CONTROL_REQUEST__COMMAND__DECISION_DEL:
        s_decision_del(srv, req, c);
        break;
    case BACKSTOP__CONTROL_REQUEST__COMMAND__WHY:
        s_why(srv, req, c);
        break;
    case BACKSTOP__CONTROL_REQUEST__COMMAND__TOP:
        s_top(srv, req, c);
        break;
    case BACKSTOP__CONTROL_REQUEST__COMMAND__ALLOW_LIST:
        s_allow_list(srv, c);
        break;
    case BACKSTOP__CONTROL_REQUEST__COMMAND__ALLOW_ADD:
        s_allow_add(srv, req, c);
        break;
    case BACKSTOP__CONTROL_REQUEST__COMMAND__ALLOW_DEL:
        s_allow_del(srv, req, c);
        break;
    case BACKSTOP__CONTROL_REQUEST__COMMAND__SITES:
        s_sites(srv, c);
        break;
    case BACKSTOP__CONTROL_REQUEST__COMMAND__SITE_ADD:
        s_site_add(srv, req, c);
        break;
    case BACKSTOP__CONTROL_REQUEST__COMMAND__SITE_DEL:
        s_site_del(srv, req, c);
        break;
    default:
        s_fail(c, EX_USAGE, "unknown command %d", (int)req->command);
        break;
    }
}

int control_handle(server_t *srv, const Backstop__ControlRequest *req,
                   Backstop__ControlReply *reply)
{
    s_ctx_t c;

    memset(&c, 0, sizeof(c));
    c.now_ms = server_now_ms(srv);
    c.who = req->who && req->who[0] ? req->who : "-";
    /* both go into log lines and other operators' terminals as they are */
    if (!cli_key_line_ok(req->reason))
        s_fail(&c, EX_DATAERR, "the reason must be one line of printable text");
    else if (!cli_key_line_ok(c.who) || strchr(c.who, ' '))
        s_fail(&c, EX_DATAERR, "the operator name must be printable text without blanks");
    else
        s_dispatch(srv, req, &c);
    if (c.status == 0 && c.doc) {
        reply->json =
            json_dumps(c.doc, JSON_COMPACT | JSON_PRESERVE_ORDER | JSON_REAL_PRECISION(6));
        json_decref(c.doc);
        if (reply->json == NULL)
            s_fail(&c, EX_SOFTWARE, "the reply could not be encoded");
    } else {
        json_decref(c.doc);
        if (c.status == 0)
            s_fail(&c, EX_SOFTWARE, "no reply document");
    }
    reply->status = c.status;
    if (c.status != 0)
        reply->error = strdup(c.error);
    return c.status;
}
