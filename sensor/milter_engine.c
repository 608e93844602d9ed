/*
 * milter_engine - what the sensor does with a message at end of data; see
 * milter_engine.h.
 *
 * LOG LINES (one per message, queue id first)
 *   QID: class=bounce client=192.0.2.1 from=<> subject_fp=... orig_subject_fp=...
 *        original=headers ledger=no action=reject decision=ID scope=orig_subject
 *        (action= is what the MTA was told: accept, reject, tempfail or tag; with
 *        failure=no_aggregator when on_no_aggregator = tempfail answered it)
 *   QID: outbound=yes ledger=add from=<user@site>
 *   QID: localrule=fire key=... count=N decision=ID ttl=...
 *   QID: failure=internal_error action=accept count=N (once per interval)
 *   error: milter: cannot open decision cache|ledger PATH: No space left on device: the
 *          decision cache|the outbound ledger is kept in memory only until a restart
 */
#include "milter_engine.h"

#include "classify.h"
#include "enforce.h"
#include "fp.h"
#include "localrule.h"
#include "keytext.h"
#include "msg.h"
#include "netaddr.h"
#include "ruletab.h"
#include "xalloc.h"

#include <ctype.h>
#include <errno.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

/* Counts and log throttling of one failure class. */
typedef struct {
    uint64_t total;      /* since start */
    uint64_t unlogged;   /* since the last log line */
    int64_t last_log_ms; /* monotonic time of the last log line */
} s_fail_t;

struct milter_snap {
    _Atomic long refs;          /* the engine's while current, plus one per message in flight */
    const sensor_config_t *cfg; /* the configuration */
    sensor_config_t *owned;     /* cfg when this snapshot frees it (reloads); NULL: boot config */
    ruletab_t *rules;           /* local content rules, NULL: every bounce counts */
    netaddr_cidr_t *internal;   /* internal_networks, parsed */
    size_t ninternal;           /* entries in internal */
};

struct milter_engine {
    const sensor_config_t *boot;        /* borrowed: the configuration the process started with */
    bs_clock_t *clock;                  /* borrowed */
    dcache_t *dcache;                   /* decisions enforced */
    ledger_t *ledger;                   /* outbound ledger */
    evq_t *evq;                         /* events for the uplink thread */
    size_t expired_unlogged;            /* decisions expired since the last dcache: line */
    int64_t expired_logged_ms;          /* when that line was (monotonic; the tick's own) */
    pthread_mutex_t snap_lock;          /* guards the snap pointer (a snapshot never changes) */
    milter_snap_t *snap;                /* the current configuration */
    pthread_mutex_t lr_lock;            /* guards lr */
    localrule_t *lr;                    /* the per-site rule, NULL when disabled */
    pthread_mutex_t fail_lock;          /* guards fails */
    s_fail_t fails[MILTER_FAIL__COUNT]; /* per failure class */
    _Atomic long max_conns;             /* max_connections of the current snapshot */
    _Atomic long conns;                 /* connections open now */
    _Atomic bool aggregator_up;         /* the uplink hears the aggregator */
    bool uplink_configured;             /* an aggregator is configured at all (restart-only) */
};

static const char *const s_fail_names[] = {"internal_error", "overload", "no_aggregator"};

/* ---- configuration snapshots ---- */

static void s_snap_free(milter_snap_t *snap)
{
    ruletab_destroy(&snap->rules);
    xfree(snap->internal);
    sensor_config_destroy(&snap->owned);
    xfree(snap);
}

/* A snapshot of cfg with its rules and networks loaded (one reference); owned is cfg when the
 * snapshot takes it (freed on failure too), NULL when cfg is borrowed. NULL with err. */
static milter_snap_t *s_snap_new(const sensor_config_t *cfg, sensor_config_t *owned, char *err,
                                 size_t errlen)
{
    milter_snap_t *snap = xcalloc(1, sizeof(*snap));
    atomic_init(&snap->refs, 1);
    snap->cfg = cfg;
    snap->owned = owned;
    if (cfg->local_rule_file && *cfg->local_rule_file) {
        char why[1024];
        snap->rules = ruletab_load(cfg->local_rule_file, why, sizeof(why));
        if (!snap->rules) {
            snprintf(err, errlen, "local_rule_file: %s", why);
            s_snap_free(snap);
            return NULL;
        }
    }
    snap->ninternal = cfg->internal_networks.n;
    snap->internal = xcalloc(snap->ninternal + 1, sizeof(*snap->internal));
    for (size_t i = 0; i < snap->ninternal; i++) {
        if (netaddr_cidr_parse(&snap->internal[i], cfg->internal_networks.v[i]) != 0) {
            snprintf(err, errlen, "internal_networks: bad network '%s'",
                     cfg->internal_networks.v[i]);
            s_snap_free(snap);
            return NULL;
        }
    }
    return snap;
}

milter_snap_t *milter_engine_snap(milter_engine_t *self)
{
    pthread_mutex_lock(&self->snap_lock);
    milter_snap_t *snap = self->snap;
    atomic_fetch_add(&snap->refs, 1);
    pthread_mutex_unlock(&self->snap_lock);
    return snap;
}

void milter_snap_release(milter_snap_t **snap_p)
{
    if (!snap_p || !*snap_p)
        return;
    if (atomic_fetch_sub(&(*snap_p)->refs, 1) == 1)
        s_snap_free(*snap_p);
    *snap_p = NULL;
}

const sensor_config_t *milter_snap_config(const milter_snap_t *snap)
{
    return snap->cfg;
}

static localrule_t *s_localrule_new(const sensor_config_t *cfg)
{
    if (!cfg->local_rule)
        return NULL;
    return localrule_new((uint32_t)cfg->local_rule_threshold, cfg->local_rule_period_ms,
                         (size_t)cfg->local_rule_max_keys);
}

/* ---- the engine ---- */

/* A store that cannot be opened for want of space (LevelDB writes as it opens) is kept in
 * memory until a restart instead: a sensor that refused to start would leave the mail
 * unfiltered (or tempfailed, under Postfix's default milter_default_action), where a
 * running one enforces what its aggregator and decision_file give it. Anything else (a
 * damaged store, another sensor on it) still refuses the start. */
static bool s_disk_full(int errnum, char *err, size_t errlen, const char *what)
{
    if (errnum != ENOSPC && errnum != EDQUOT) {
        /* the refusal says why ("Permission denied", "Resource temporarily unavailable" for
         * a store another sensor holds), not only which store */
        size_t at = strlen(err);
        if (errnum && at < errlen)
            snprintf(err + at, errlen - at, ": %s", strerror(errnum));
        return false;
    }
    msg_error("milter: %s: %s: %s is kept in memory only until a restart", err, strerror(errnum),
              what);
    return true;
}

milter_engine_t *milter_engine_new(const sensor_config_t *cfg, bs_clock_t *clock, char *err,
                                   size_t errlen)
{
    milter_engine_t *self = xcalloc(1, sizeof(*self));
    self->boot = cfg;
    self->clock = clock;
    pthread_mutex_init(&self->snap_lock, NULL);
    pthread_mutex_init(&self->lr_lock, NULL);
    pthread_mutex_init(&self->fail_lock, NULL);
    self->uplink_configured = cfg->aggregator_events && *cfg->aggregator_events;
    atomic_init(&self->aggregator_up, false);
    atomic_init(&self->conns, 0);
    atomic_init(&self->max_conns, (long)cfg->max_connections);
    char *dpath = xasprintf("%s/decisions", cfg->state_directory);
    char *lpath = xasprintf("%s/ledger", cfg->state_directory);
    self->dcache = dcache_new(dpath, err, errlen);
    if (!self->dcache && s_disk_full(errno, err, errlen, "the decision cache"))
        self->dcache = dcache_new(NULL, err, errlen);
    if (self->dcache) {
        int64_t now = bs_clock_now_ms(clock);
        self->ledger = ledger_new_at(lpath, cfg->ledger_ttl_ms, now, err, errlen);
        if (!self->ledger && s_disk_full(errno, err, errlen, "the outbound ledger"))
            self->ledger = ledger_new_at(NULL, cfg->ledger_ttl_ms, now, err, errlen);
    }
    xfree(dpath);
    xfree(lpath);
    if (!self->dcache || !self->ledger)
        goto fail;
    int64_t now = bs_clock_now_ms(clock);
    if (cfg->decision_file && *cfg->decision_file &&
        milter_engine_load_decisions(self->dcache, cfg->decision_file, now, err, errlen) != 0)
        goto fail;
    self->snap = s_snap_new(cfg, NULL, err, errlen);
    if (!self->snap)
        goto fail;
    self->lr = s_localrule_new(cfg);
    self->evq = evq_new((size_t)cfg->event_queue);
    return self;
fail:
    milter_engine_destroy(&self);
    return NULL;
}

void milter_engine_destroy(milter_engine_t **self_p)
{
    if (!self_p || !*self_p)
        return;
    milter_engine_t *self = *self_p;
    dcache_destroy(&self->dcache);
    ledger_destroy(&self->ledger);
    evq_destroy(&self->evq);
    milter_snap_release(&self->snap);
    localrule_destroy(&self->lr);
    pthread_mutex_destroy(&self->snap_lock);
    pthread_mutex_destroy(&self->lr_lock);
    pthread_mutex_destroy(&self->fail_lock);
    xfree(self);
    *self_p = NULL;
}

dcache_t *milter_engine_dcache(milter_engine_t *self)
{
    return self->dcache;
}

ledger_t *milter_engine_ledger(milter_engine_t *self)
{
    return self->ledger;
}

evq_t *milter_engine_evq(milter_engine_t *self)
{
    return self->evq;
}

const sensor_config_t *milter_engine_config(const milter_engine_t *self)
{
    return self->boot;
}

void milter_engine_set_aggregator_up(milter_engine_t *self, bool up)
{
    atomic_store(&self->aggregator_up, up);
}

bool milter_engine_conn_begin(milter_engine_t *self)
{
    long n = atomic_fetch_add(&self->conns, 1) + 1;
    return n <= atomic_load(&self->max_conns);
}

void milter_engine_conn_end(milter_engine_t *self)
{
    atomic_fetch_sub(&self->conns, 1);
}

/* ---- verdicts ---- */

static void s_verdict(milter_verdict_t *out, milter_verdict_kind_t kind, const char *text)
{
    memset(out, 0, sizeof(*out));
    out->kind = kind;
    if (kind == MILTER_VERDICT_REJECT) {
        memcpy(out->rcode, "550", 4);
        memcpy(out->xcode, "5.7.1", 6);
    } else if (kind == MILTER_VERDICT_TEMPFAIL) {
        memcpy(out->rcode, "451", 4);
        memcpy(out->xcode, "4.7.1", 6);
    }
    /* libmilter treats '%' as a format character in reply text */
    size_t j = 0;
    for (const char *p = text ? text : ""; *p && j + 1 < sizeof(out->text); p++)
        if (*p != '%' && (unsigned char)*p >= 0x20)
            out->text[j++] = *p;
    out->text[j] = '\0';
}

const char *milter_verdict_name(milter_verdict_kind_t kind)
{
    switch (kind) {
    case MILTER_VERDICT_REJECT:
        return "reject";
    case MILTER_VERDICT_TEMPFAIL:
        return "tempfail";
    case MILTER_VERDICT_TAG:
        return "tag";
    default:
        return "accept";
    }
}

void milter_engine_fail(milter_engine_t *self, milter_fail_t cls, const char *qid,
                        milter_verdict_t *out)
{
    milter_snap_t *snap = milter_engine_snap(self);
    const sensor_config_t *cfg = snap->cfg;
    int policy = cls == MILTER_FAIL_INTERNAL   ? cfg->on_internal_error
                 : cls == MILTER_FAIL_OVERLOAD ? cfg->on_overload
                                               : cfg->on_no_aggregator;
    int64_t interval = cfg->fail_log_interval_ms;
    milter_snap_release(&snap);
    if (policy == SENSOR_FAIL_TEMPFAIL)
        s_verdict(out, MILTER_VERDICT_TEMPFAIL, "Backstop sensor unavailable, try again later");
    else
        s_verdict(out, MILTER_VERDICT_ACCEPT, NULL);
    int64_t now = bs_clock_mono_ms(self->clock);
    pthread_mutex_lock(&self->fail_lock);
    s_fail_t *f = &self->fails[cls];
    f->total++;
    f->unlogged++;
    bool log = f->last_log_ms == 0 || now - f->last_log_ms >= interval;
    uint64_t count = f->unlogged, total = f->total;
    if (log) {
        f->last_log_ms = now;
        f->unlogged = 0;
    }
    pthread_mutex_unlock(&self->fail_lock);
    if (log)
        msg_warn("%s: failure=%s action=%s count=%" PRIu64 " total=%" PRIu64, qid ? qid : "NOQUEUE",
                 s_fail_names[cls], policy == SENSOR_FAIL_TEMPFAIL ? "tempfail" : "accept", count,
                 total);
}

void milter_engine_tick(milter_engine_t *self)
{
    int64_t now = bs_clock_now_ms(self->clock);
    size_t gone = dcache_expire(self->dcache, now);
    /* a call drops at most DCACHE_EXPIRE_DROPS: a storm's decisions expiring together take
     * many ticks, logged as one line a minute until the last of them is gone */
    self->expired_unlogged += gone;
    if (self->expired_unlogged &&
        (gone < DCACHE_EXPIRE_DROPS ||
         msg_due(&self->expired_logged_ms, bs_clock_mono_ms(self->clock), 60000))) {
        msg_info("dcache: expired=%zu held=%zu", self->expired_unlogged,
                 dcache_count(self->dcache));
        self->expired_unlogged = 0;
        self->expired_logged_ms = bs_clock_mono_ms(self->clock);
    }
    ledger_expire(self->ledger, now);
}

/* ---- outbound ---- */

static bool s_listed(const cfg_list_t *list, const char *word)
{
    for (size_t i = 0; i < list->n; i++)
        if (!strcasecmp(list->v[i], word))
            return true;
    return false;
}

static bool s_outbound(const milter_snap_t *snap, const milter_conn_t *conn)
{
    if (snap->cfg->outbound_auth && conn->msg->auth)
        return true;
    if (conn->daemon_name[0] && s_listed(&snap->cfg->outbound_daemons, conn->daemon_name))
        return true;
    netaddr_t a;
    if (snap->ninternal && netaddr_parse(&a, conn->client_ip) == 0)
        for (size_t i = 0; i < snap->ninternal; i++)
            if (netaddr_cidr_contains(&snap->internal[i], &a))
                return true;
    return false;
}

/* ---- content rules ---- */

/* The label of the first local content rule a header line of msg fires, or NULL. */
static const char *s_content_rule(const milter_snap_t *snap, const milter_msg_t *m)
{
    if (!snap->rules)
        return NULL;
    const char *p = m->text, *end = m->text + m->len;
    while (p < end) {
        /* a logical header: up to a CRLF not followed by a blank */
        const char *q = p;
        while (q < end) {
            const char *nl = memchr(q, '\n', (size_t)(end - q));
            if (!nl) {
                q = end;
                break;
            }
            q = nl + 1;
            if (q >= end || (*q != ' ' && *q != '\t'))
                break;
        }
        size_t len = (size_t)(q - p);
        while (len > 0 && (p[len - 1] == '\n' || p[len - 1] == '\r'))
            len--;
        if (len == 0)
            break; /* the empty line: end of the header */
        const ruletab_rule_t *r = ruletab_match(snap->rules, p, len);
        if (r)
            return ruletab_rule_label(r);
        p = q;
    }
    return NULL;
}

/* ---- the message ---- */

static bool s_ledger_vouches(milter_engine_t *self, const sensor_config_t *cfg,
                             const milter_msg_t *m, const classify_result_t *cr, int64_t now)
{
    const char *omid = classify_result_orig_message_id(cr);
    if (omid && *omid)
        return ledger_has_message_id(self->ledger, omid, now);
    if (!cfg->ledger_match_recipient)
        return false;
    for (size_t i = 0; i < m->nrcpts; i++)
        if (ledger_has_sender(self->ledger, m->rcpts[i], now))
            return true;
    return false;
}

/* Feeds the local rule; on firing, (re)writes the local decision. */
static void s_local_rule(milter_engine_t *self, const sensor_config_t *cfg, const milter_msg_t *m,
                         const enforce_input_t *in, int64_t now)
{
    /* the subject the wave is about: the original's when quoted, else the bounce's own */
    const enforce_key_t *key = NULL;
    for (size_t i = 0; i < in->nkeys && !key; i++)
        if (in->keys[i].scope == DCACHE_SCOPE_ORIG_SUBJECT ||
            in->keys[i].scope == DCACHE_SCOPE_SUBJECT)
            key = &in->keys[i];
    if (!key)
        return;
    pthread_mutex_lock(&self->lr_lock);
    bool fire = false;
    uint32_t count = 0;
    if (self->lr) { /* NULL when local_rule = no (a reload may switch it) */
        fire = localrule_note(self->lr, key->fp, now);
        count = localrule_count(self->lr, key->fp, now);
    }
    pthread_mutex_unlock(&self->lr_lock);
    if (!fire)
        return;
    dcache_entry_t d;
    memset(&d, 0, sizeof(d));
    localrule_decision_id(key->fp, d.id);
    bool fresh = dcache_get(self->dcache, d.id, &d) != 0 || d.expires_ms <= now;
    if (fresh)
        d.created_ms = now;
    localrule_decision_id(key->fp, d.id);
    d.scope = key->scope;
    d.fp = key->fp;
    static const int actions[] = {DCACHE_ACTION_REJECT, DCACHE_ACTION_TEMPFAIL, DCACHE_ACTION_TAG};
    d.action = actions[cfg->local_block_action];
    d.observe = cfg->local_rule_observe;
    d.all_mail = false;
    d.origin = DCACHE_ORIGIN_LOCAL;
    d.expires_ms = now + cfg->local_block_ttl_ms;
    snprintf(d.value, sizeof(d.value), "%s", key->text ? key->text : "");
    if (dcache_upsert(self->dcache, &d) != 0)
        msg_error("%s: localrule=fire decision=%s error=persist", m->queue_id, d.id);
    if (fresh)
        msg_info("%s: localrule=fire decision=%s scope=%s count=%" PRIu32 " ttl_s=%" PRId64
                 " action=%s%s key=\"%.80s\"",
                 m->queue_id, d.id, dcache_scope_name(d.scope), count,
                 cfg->local_block_ttl_ms / 1000, dcache_action_name(d.action),
                 d.observe ? " mode=observe" : "", d.value);
}

static void s_event(milter_engine_t *self, const milter_msg_t *m, const classify_result_t *cr,
                    const enforce_input_t *in, const char *rule, bool ledger_hit,
                    const enforce_verdict_t *v, int64_t now)
{
    evq_event_t *ev = evq_event_new(self->evq, now);
    evq_event_set_ip(ev, classify_result_client_ip(cr));
    ev->msg_class = classify_result_class(cr);
    for (size_t i = 0; i < in->nkeys; i++)
        evq_event_add_key(ev, in->keys[i].scope, in->keys[i].fp, in->keys[i].text);
    if (rule)
        evq_event_add_rule(ev, rule);
    ev->original = classify_result_original(cr);
    ev->ledger_hit = ledger_hit;
    ev->enforced = v->action;
    if (v->action)
        ev->decision_id = xstrdup(v->decision.id);
    if (evq_push(self->evq, &ev) != 0)
        msg_debug(1, "%s: event=dropped reason=queue-full", m->queue_id);
}

static void s_apply(const sensor_config_t *cfg, const enforce_verdict_t *v, milter_verdict_t *out)
{
    char text[300];
    switch (v->action) {
    case DCACHE_ACTION_REJECT:
    case DCACHE_ACTION_TEMPFAIL:
        snprintf(text, sizeof(text), "%s (backstop decision %s)", cfg->reply_text, v->decision.id);
        s_verdict(out,
                  v->action == DCACHE_ACTION_REJECT ? MILTER_VERDICT_REJECT
                                                    : MILTER_VERDICT_TEMPFAIL,
                  text);
        break;
    case DCACHE_ACTION_TAG:
        s_verdict(out, MILTER_VERDICT_TAG, NULL);
        snprintf(out->header_name, sizeof(out->header_name), "%s", MILTER_TAG_HEADER);
        snprintf(out->header_value, sizeof(out->header_value), "decision=%s", v->decision.id);
        break;
    default:
        s_verdict(out, MILTER_VERDICT_ACCEPT, NULL);
    }
}

static void s_eom(milter_engine_t *self, const milter_snap_t *snap, milter_conn_t *conn,
                  milter_verdict_t *out)
{
    const sensor_config_t *cfg = snap->cfg;
    milter_msg_t *m = conn->msg;
    int64_t now = bs_clock_now_ms(self->clock);
    if (!m) {
        milter_engine_fail(self, MILTER_FAIL_INTERNAL, NULL, out);
        return;
    }
    const char *from_log = m->env_from ? m->env_from : "?";
    if (s_outbound(snap, conn)) {
        ledger_add(self->ledger, m->message_id, m->env_from, now);
        msg_info("%s: outbound=yes ledger=add from=<%s> message_id=%s", m->queue_id, from_log,
                 m->message_id ? "yes" : "no");
        s_verdict(out, MILTER_VERDICT_ACCEPT, NULL);
        return;
    }
    classify_input_t ci = {
        .msg = m->text,
        .len = m->len,
        .truncated = m->truncated,
        .client_ip = conn->client_ip[0] ? conn->client_ip : NULL,
        .helo = conn->helo[0] ? conn->helo : NULL,
        .env_from = m->env_from,
        .rcpts = (const char *const *)m->rcpts,
        .nrcpts = m->nrcpts,
    };
    classify_result_t *cr = classify_message(&ci);
    classify_class_t cls = classify_result_class(cr);
    const char *cname = classify_class_name(cls);
    enforce_input_t in;
    memset(&in, 0, sizeof(in));
    char *subject_ip = NULL;
    enforce_keys_from(cr, &in, &subject_ip);
    in.class_enforced = sensor_config_enforces_class(cfg, cname);
    in.ledger_hit = in.class_enforced && s_ledger_vouches(self, cfg, m, cr, now);
    enforce_verdict_t v;
    enforce_decide(self->dcache, &in, now, &v);

    const char *rule = NULL;
    bool counts = false;
    if (in.class_enforced && !in.ledger_hit) {
        rule = s_content_rule(snap, m);
        counts = snap->rules ? rule != NULL : true;
    }
    bool no_aggregator = v.action == 0 && in.class_enforced && !in.ledger_hit &&
                         self->uplink_configured && !atomic_load(&self->aggregator_up) &&
                         cfg->on_no_aggregator == SENSOR_FAIL_TEMPFAIL;
    if (no_aggregator)
        milter_engine_fail(self, MILTER_FAIL_NO_AGGREGATOR, m->queue_id, out);
    else
        s_apply(cfg, &v, out);

    /* action= is what the MTA was told (out), whatever decided it: a decision, or a failure
     * class's policy (failure=), which the decision fields then do not name */
    char fp1[FP_HEX_SIZE], fp2[FP_HEX_SIZE];
    /* the keys come from the sender's Subject: quoted and escaped (msg_quote), so one holding
     * '" action=accept' reads as one value; 60 bytes of text at most, cut on a character */
    char q1[63], q2[63];
    const char *ok = classify_result_orig_subject_key(cr);
    msg_info("%s: class=%s client=%s from=<%s> subject_fp=%s orig_subject_fp=%s original=%s "
             "ledger=%s action=%s%s%s%s%s%s%s%s%s%s rule=%s subject_key=%s orig_subject_key=%s",
             m->queue_id, cname, ci.client_ip ? ci.client_ip : "unknown", from_log,
             fp_hex(classify_result_subject_fp(cr), fp1),
             fp_hex(classify_result_orig_subject_fp(cr), fp2),
             classify_orig_name(classify_result_original(cr)), in.ledger_hit ? "hit" : "no",
             milter_verdict_name(out->kind), no_aggregator ? " failure=no_aggregator" : "",
             v.action ? " decision=" : "", v.action ? v.decision.id : "", v.action ? " scope=" : "",
             v.action ? dcache_scope_name(v.decision.scope) : "", v.observed ? " observe=" : "",
             v.observed ? v.observe.id : "", v.spared_id[0] ? " spared=" : "", v.spared_id,
             rule ? rule : "-", msg_quote(q1, sizeof(q1), classify_result_subject_key(cr)),
             msg_quote(q2, sizeof(q2), ok));

    if (in.class_enforced) {
        if (counts)
            s_local_rule(self, cfg, m, &in, now);
        s_event(self, m, cr, &in, rule, in.ledger_hit, &v, now);
    }
    xfree(subject_ip);
    classify_result_destroy(&cr);
}

void milter_engine_eom(milter_engine_t *self, const milter_snap_t *snap, milter_conn_t *conn,
                       milter_verdict_t *out)
{
    milter_snap_t *current = snap ? NULL : milter_engine_snap(self);
    s_eom(self, snap ? snap : current, conn, out);
    milter_snap_release(&current);
}

/* ---- the operator's decision file ---- */

/*
 * An operator types a key as a person reads it ("Cheap Watches", "2001:DB8::1"); the sensor
 * looks mail up by the fingerprint of the normalised text (enforce_keys_from). A value
 * fingerprinted as typed matches no mail and the block silently does nothing, so each value
 * becomes the text the sensor computes from a message (keytext.h, as the CLI's are); a value
 * that can be no such text is refused.
 */

/* A copy of the n bytes at s without white space around them. */
static char *s_trimmed(const char *s, size_t n)
{
    while (n > 0 && isspace((unsigned char)*s)) {
        s++;
        n--;
    }
    while (n > 0 && isspace((unsigned char)s[n - 1]))
        n--;
    return xstrndup(s, n);
}

/* The key text the sensor computes from mail for value typed in scope; NULL + why if none. */
static char *s_decision_key(int scope, const char *value, char *why, size_t whylen)
{
    switch (scope) {
    case DCACHE_SCOPE_SUBJECT:
    case DCACHE_SCOPE_ORIG_SUBJECT:
        return keytext_subject(value, why, whylen);
    case DCACHE_SCOPE_CLIENT_IP:
        return keytext_ip(value, why, whylen);
    case DCACHE_SCOPE_CLIENT_NET:
        return keytext_net(value, true, why, whylen);
    case DCACHE_SCOPE_SUBJECT_IP:
        return keytext_subject_ip(value, why, whylen);
    default:
        snprintf(why, whylen, "scope %s has no key in mail", dcache_scope_name(scope));
        return NULL;
    }
}

/* Parses the operator's decision file into a new array (*out, caller frees). 0, or -1 + err. */
static int s_parse_decisions(const char *path, int64_t now_ms, dcache_entry_t **out, size_t *nout,
                             char *err, size_t errlen)
{
    *out = NULL;
    *nout = 0;
    FILE *fp = fopen(path, "r");
    if (!fp) {
        snprintf(err, errlen, "%s: %s", path, strerror(errno));
        return -1;
    }
    char line[1024];
    int lineno = 0, rc = 0;
    size_t cap = 0;
    while (rc == 0 && fgets(line, sizeof(line), fp)) {
        lineno++;
        line[strcspn(line, "\r\n")] = '\0';
        char *p = line;
        while (isspace((unsigned char)*p))
            p++;
        if (!*p || *p == '#')
            continue;
        char scope[32], action[32], ttl[32];
        int off = 0;
        if (sscanf(p, "%31s %31s %31s %n", scope, action, ttl, &off) < 3 || !p[off]) {
            snprintf(err, errlen, "%s:%d: expected 'scope action ttl value'", path, lineno);
            rc = -1;
            break;
        }
        dcache_entry_t d;
        memset(&d, 0, sizeof(d));
        d.scope = dcache_scope_from_name(scope);
        d.action = !strcasecmp(action, "reject")     ? DCACHE_ACTION_REJECT
                   : !strcasecmp(action, "tempfail") ? DCACHE_ACTION_TEMPFAIL
                   : !strcasecmp(action, "tag")      ? DCACHE_ACTION_TAG
                   : !strcasecmp(action, "observe")  ? DCACHE_ACTION_REJECT
                                                     : 0;
        d.observe = !strcasecmp(action, "observe");
        int64_t ttl_ms = 0;
        char why[512];
        if (d.scope < 0 || d.action == 0 ||
            cfg_parse_duration(ttl, "s", &ttl_ms, why, sizeof(why)) != 0) {
            snprintf(err, errlen, "%s:%d: bad scope, action or ttl", path, lineno);
            rc = -1;
            break;
        }
        char *typed = s_trimmed(p + off, strlen(p + off));
        char *key = s_decision_key(d.scope, typed, why, sizeof(why));
        xfree(typed);
        if (!key) {
            snprintf(err, errlen, "%s:%d: %s", path, lineno, why);
            rc = -1;
            break;
        }
        /* the fingerprint and id are of the whole key; only the display text may be cut */
        d.fp = fp_text(key);
        snprintf(d.value, sizeof(d.value), "%s", key);
        char hex[FP_HEX_SIZE];
        char *idtext = xasprintf("%s:%s", scope, key);
        snprintf(d.id, sizeof(d.id), "F%.7s", fp_hex(fp_text(idtext), hex));
        xfree(idtext);
        xfree(key);
        for (char *c = d.id; *c; c++)
            *c = (char)toupper((unsigned char)*c);
        d.origin = DCACHE_ORIGIN_FILE;
        d.created_ms = now_ms;
        d.expires_ms = ttl_ms > 0 ? now_ms + ttl_ms : INT64_MAX;
        if (*nout == cap) {
            cap = cap ? cap * 2 : 16;
            *out = xrealloc(*out, cap * sizeof(**out));
        }
        (*out)[(*nout)++] = d;
    }
    fclose(fp);
    if (rc != 0) {
        xfree(*out);
        *out = NULL;
        *nout = 0;
    }
    return rc;
}

int milter_engine_load_decisions(dcache_t *cache, const char *path, int64_t now_ms, char *err,
                                 size_t errlen)
{
    dcache_entry_t *file = NULL;
    size_t n = 0;
    if (s_parse_decisions(path, now_ms, &file, &n, err, errlen) != 0)
        return -1;
    int rc = dcache_replace_origin(cache, DCACHE_ORIGIN_FILE, file, n);
    if (rc != 0)
        snprintf(err, errlen, "%s: cannot store the decisions", path);
    xfree(file);
    return rc;
}

/* ---- checking a configuration (-n) ---- */

int milter_engine_check(const sensor_config_t *cfg, const char *path, char *err, size_t errlen)
{
    const cfg_param_t *params = sensor_config_schema()->params;
    char why[1024], at[1024];
    int n = 0;
    /* the content rules a snapshot compiles (its internal_networks are the config's check) */
    if (*cfg->local_rule_file) {
        ruletab_t *rules = ruletab_load(cfg->local_rule_file, why, sizeof(why));
        if (!rules) {
            cfg_err_line(
                err, errlen,
                cfg_where(&cfg->head, params, "local_rule_file", path, NULL, at, sizeof(at)),
                "local_rule_file: %s", why);
            n++;
        }
        ruletab_destroy(&rules);
    }
    dcache_entry_t *file = NULL;
    size_t nfile = 0;
    if (*cfg->decision_file &&
        s_parse_decisions(cfg->decision_file, 0, &file, &nfile, why, sizeof(why)) != 0) {
        cfg_err_line(err, errlen,
                     cfg_where(&cfg->head, params, "decision_file", path, NULL, at, sizeof(at)),
                     "decision_file: %s", why);
        n++;
    }
    xfree(file);
    return n ? -1 : 0;
}

/* ---- reload ---- */

int milter_engine_reload(milter_engine_t *self, sensor_config_t **cfg_p, char *err, size_t errlen)
{
    sensor_config_t *fresh = *cfg_p;
    *cfg_p = NULL;
    milter_snap_t *old = milter_engine_snap(self);
    char changed[512];
    if (sensor_config_keep_restart(fresh, old->cfg, changed, sizeof(changed)) > 0)
        msg_warn("reload: needs restart: %s (running values kept)", changed);
    milter_snap_t *snap = s_snap_new(fresh, fresh, err, errlen);
    dcache_entry_t *file = NULL;
    size_t nfile = 0;
    int64_t now = bs_clock_now_ms(self->clock);
    if (!snap ||
        (*snap->cfg->decision_file &&
         s_parse_decisions(snap->cfg->decision_file, now, &file, &nfile, err, errlen) != 0)) {
        milter_snap_release(&snap);
        milter_snap_release(&old);
        return -1;
    }
    /* from here on nothing can fail: commit */
    if (dcache_replace_origin(self->dcache, DCACHE_ORIGIN_FILE, file, nfile) != 0)
        msg_error("reload: decision_file=%s error=persist", snap->cfg->decision_file);
    xfree(file);
    const sensor_config_t *o = old->cfg, *n = snap->cfg;
    if (o->local_rule != n->local_rule || o->local_rule_threshold != n->local_rule_threshold ||
        o->local_rule_period_ms != n->local_rule_period_ms ||
        o->local_rule_max_keys != n->local_rule_max_keys) {
        localrule_t *lr = s_localrule_new(n);
        pthread_mutex_lock(&self->lr_lock);
        localrule_t *gone = self->lr;
        self->lr = lr;
        pthread_mutex_unlock(&self->lr_lock);
        localrule_destroy(&gone);
        msg_info(
            "reload: localrule=%s threshold=%" PRId64 " period_s=%" PRId64 " (counts start over)",
            n->local_rule ? "on" : "off", n->local_rule_threshold, n->local_rule_period_ms / 1000);
    }
    atomic_store(&self->max_conns, (long)n->max_connections);
    pthread_mutex_lock(&self->snap_lock);
    milter_snap_t *prev = self->snap;
    self->snap = snap;
    pthread_mutex_unlock(&self->snap_lock);
    msg_info("reload: decision_file_entries=%zu local_rule_file=%s", nfile,
             *n->local_rule_file ? n->local_rule_file : "-");
    milter_snap_release(&prev);
    milter_snap_release(&old);
    return 0;
}
