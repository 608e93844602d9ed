/*
 * ingest - one event in, decision changes out: the aggregator's counting path
 *
 * Tallies: rules that count the same events (same class mask and
 * require_rule_match) share window keys; each distinct filter is a tally id,
 * part of the window key. tally_mask[scope] says which tallies a scope's keys
 * are counted under, so an event updates each (scope, tally) once however many
 * rules read it.
 *
 * Before a rule is even evaluated, the active decision with the same identity
 * is looked up: if a firing now would move its expiry by less than
 * extend_min_ms, the outcome cannot matter and nothing is computed at all. In
 * a storm that is every event after the first firing, so the cost per event
 * stays one hash lookup instead of a window sum and a walk of its sites.
 *
 * That lookup is itself cached (the in-force cache): a decision node is
 * large and cold, and its identity fields span several cache lines, so with
 * thousands of hot keys (a Zipf stream: every popular subject and address
 * ends up with a decision) the lookup was a tenth of the counting path. A
 * cached "in force until T" stays true until a decision is removed
 * (decisions_removals()): creations and extensions elsewhere do not touch it,
 * and an extension of this decision only moves T later, so a cached T is
 * never too late; once now reaches it the table is asked again. The cache
 * grows with the decision table, so each decision's keys have room.
 */
#include <assert.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sysexits.h>

#include "fp.h"
#include "ingest.h"
#include "msg.h"
#include "xalloc.h"

#define SEC 1000LL

/* One event filter. */
typedef struct {
    uint32_t classes;        /* classes counted */
    bool require_rule_match; /* only rule-matched events */
} s_tally_t;

/* Slots of the in-force cache at first, and at most (powers of two); it keeps at least
 * S_FORCE_PER_DECISION slots per active decision up to the maximum (32 bytes a slot). */
#define S_FORCE_MIN          256u
#define S_FORCE_MAX          65536u
#define S_FORCE_PER_DECISION 4u
#define S_FORCE_WAYS         2u /* slots a set: a 64-byte line */

/* A rule's decision on a key known to be active and in force long enough until until_ms,
 * as long as no decision has been removed since (see the header comment). */
typedef struct {
    uint64_t fp;      /* the key */
    uint64_t gen;     /* decisions_removals() + 1 when found; 0: empty */
    int64_t until_ms; /* a firing before this changes nothing */
    uint16_t rule;    /* rule index */
    uint16_t site;    /* site index for a local rule, else 0xFFFF */
} s_force_t;

struct ingest {
    rule_t rules[INGEST_RULES_MAX];                  /* rules, windows rounded to buckets */
    uint8_t rule_tally[INGEST_RULES_MAX];            /* tally of each rule */
    size_t nrules;                                   /* rules used */
    s_tally_t tallies[INGEST_RULES_MAX];             /* distinct filters */
    size_t ntallies;                                 /* used */
    uint32_t tally_mask[BS_SCOPE_COUNT];             /* tallies each scope is counted under */
    uint32_t counting[2][BS_CLASS_COUNT];            /* tallies that count an event, by whether
                                                        a rule matched it and by its class */
    uint32_t gate[BS_SCOPE_COUNT][INGEST_RULES_MAX]; /* smallest min_events of the rules on
                                                        (scope, tally): fewer events in the
                                                        key's ring and no rule is evaluated */
    uint32_t all_classes;                            /* classes any rule counts */
    int64_t span_ms;                                 /* longest window */
    int64_t bucket_ms;                               /* window resolution */
    int64_t max_skew_ms;                             /* accepted future lead */
    int64_t extend_min_ms;                           /* minimum expiry move to publish */
    int64_t oldest_ms;                               /* s_oldest_ms() for oldest_for_ms */
    int64_t oldest_for_ms;                           /* ... (INT64_MIN: nothing is too old) */
    window_t *window;                                /* counts (owned) */
    dedup_t *dedup;                                  /* seen seqs (owned) */
    decisions_t *decisions;                          /* decision table (borrowed) */
    allowlist_t *allow;                              /* allowlist (borrowed) */
    ingest_counters_t counters;                      /* metrics */
    s_force_t *force;                                /* in-force cache: a storm's hot keys
                                                        pass the gate on every event */
    size_t nforce;                                   /* its slots (a power of two) */
};

/* The in-force cache set of rule ri's decision on fp (st: the site index of a local rule,
 * else 0xFFFF): S_FORCE_WAYS slots in one cache line, so two hot keys that hash alike do
 * not take turns evicting each other on every event. */
static s_force_t *s_force_at(const ingest_t *in, uint64_t fp, size_t ri, uint16_t st)
{
    return &in->force[fp_mix64(fp ^ ((uint64_t)ri << 48) ^ ((uint64_t)st << 32)) &
                      (in->nforce - S_FORCE_WAYS)];
}

/* An empty in-force cache of n slots, its sets aligned to cache lines. */
static s_force_t *s_force_new(size_t n)
{
    s_force_t *f = aligned_alloc(S_FORCE_WAYS * sizeof(s_force_t), n * sizeof(s_force_t));
    if (f == NULL)
        msg_fatal(EX_OSERR, "ingest: out of memory (%zu bytes)", n * sizeof(s_force_t));
    memset(f, 0, n * sizeof(s_force_t));
    return f;
}

ingest_t *ingest_new(const ingest_config_t *cfg, decisions_t *decisions, allowlist_t *allow,
                     char *err, size_t errlen)
{
    assert(decisions && allow);
    ingest_config_t c = {0};
    if (cfg)
        c = *cfg;
    if (c.rules == NULL)
        c.rules = rules_defaults(&c.nrules);
    if (c.bucket_ms == 0)
        c.bucket_ms = 10 * SEC;
    if (c.max_skew_ms == 0)
        c.max_skew_ms = 60 * SEC;
    if (c.extend_min_ms == 0)
        c.extend_min_ms = 60 * SEC;
    if (c.expected_keys == 0)
        c.expected_keys = 1000000;
    if (c.nrules == 0 || c.nrules > INGEST_RULES_MAX) {
        snprintf(err, errlen, "need 1 to %d rules, have %zu", INGEST_RULES_MAX, c.nrules);
        return NULL;
    }
    if (c.extend_min_ms < 0) {
        snprintf(err, errlen, "extend_min must not be negative");
        return NULL;
    }
    if (c.bucket_ms < 1000 || c.bucket_ms % 1000) {
        snprintf(err, errlen, "window resolution must be whole seconds, at least 1s");
        return NULL;
    }
    ingest_t *in = xcalloc(1, sizeof(*in));
    for (size_t i = 0; i < c.nrules; i++) {
        if (rules_check(&c.rules[i], err, errlen) < 0) {
            xfree(in);
            return NULL;
        }
        for (size_t j = 0; j < i; j++)
            if (strcmp(c.rules[i].name, c.rules[j].name) == 0) {
                snprintf(err, errlen, "rule %s: defined twice", c.rules[i].name);
                xfree(in);
                return NULL;
            }
        rule_t *r = &in->rules[i];
        *r = c.rules[i];
        r->window_ms = (r->window_ms + c.bucket_ms - 1) / c.bucket_ms * c.bucket_ms;
        if (r->window_ms / c.bucket_ms > INGEST_WINDOW_BUCKETS_MAX) {
            snprintf(err, errlen, "rule %s: window too long for the resolution", r->name);
            xfree(in);
            return NULL;
        }
        if (r->window_ms > in->span_ms)
            in->span_ms = r->window_ms;
        s_tally_t t = {.classes = rules_classes(r), .require_rule_match = r->require_rule_match};
        size_t k = 0;
        while (k < in->ntallies && (in->tallies[k].classes != t.classes ||
                                    in->tallies[k].require_rule_match != t.require_rule_match))
            k++;
        if (k == in->ntallies)
            in->tallies[in->ntallies++] = t;
        in->rule_tally[i] = (uint8_t)k;
        if (!(in->tally_mask[r->scope] & (1u << k)) || r->min_events < in->gate[r->scope][k])
            in->gate[r->scope][k] = r->min_events;
        in->tally_mask[r->scope] |= 1u << k;
        in->all_classes |= t.classes;
    }
    for (int matched = 0; matched < 2; matched++)
        for (unsigned cl = 0; cl < BS_CLASS_COUNT; cl++)
            for (size_t k = 0; k < in->ntallies; k++)
                if ((in->tallies[k].classes & (1u << cl)) &&
                    (matched || !in->tallies[k].require_rule_match))
                    in->counting[matched][cl] |= 1u << k;
    in->nrules = c.nrules;
    in->bucket_ms = c.bucket_ms;
    in->max_skew_ms = c.max_skew_ms;
    in->extend_min_ms = c.extend_min_ms;
    in->oldest_for_ms = in->oldest_ms = INT64_MIN; /* asked for no time yet */
    window_config_t wc = {
        .bucket_ms = c.bucket_ms,
        .span_ms = in->span_ms,
        .initial_entries = c.expected_keys,
        .max_entries = c.max_entries,
        .seed = c.seed,
        .track_dirty = c.track_dirty,
        .populate = c.populate,
    };
    in->window = window_new(&wc);
    /* A sensor numbers its events from its wall clock (evq: seq >= time_ms * 1000), so a
     * spool replayed again holds seqs as far below the sensor's newest as its events are
     * older: up to the longest window (older ones are too_old before dedup sees them) plus
     * the future skew the newest may have had. Only a seq further below than that means
     * numbering started again (a sensor that lost its state, a clock stepped back), or a
     * twice-replayed spool of more than a second's events was counted twice. */
    uint64_t reset_gap = c.dedup_reset_gap;
    if (reset_gap == 0)
        reset_gap = (uint64_t)(in->span_ms + in->max_skew_ms + 60 * SEC) * 1000u;
    in->dedup = dedup_new(c.dedup_max_sensors, reset_gap);
    in->decisions = decisions;
    in->allow = allow;
    in->nforce = S_FORCE_MIN;
    in->force = s_force_new(in->nforce);
    return in;
}

void ingest_destroy(ingest_t **self_p)
{
    assert(self_p);
    ingest_t *in = *self_p;
    if (in == NULL)
        return;
    window_destroy(&in->window);
    dedup_destroy(&in->dedup);
    xfree(in->force);
    xfree(in);
    *self_p = NULL;
}

static bool s_valid_name(const char *s)
{
    return s && *s && strlen(s) <= DECISION_NAME_MAX;
}

/* Whether rule ri's decision on k (at site for a local rule) is in force long enough that
 * a firing now would change nothing: then the rule need not even be evaluated. The answer
 * "yes, until T" is cached until a decision is removed. */
static bool s_in_force(ingest_t *in, size_t ri, const ingest_key_t *k, unsigned site,
                       const char *site_name, int64_t now_ms)
{
    const rule_t *r = &in->rules[ri];
    uint16_t st = r->reach == BS_REACH_LOCAL ? (uint16_t)site : 0xFFFFu;
    uint64_t gen = decisions_removals(in->decisions) + 1;
    s_force_t *set = s_force_at(in, k->fp, ri, st);
    for (unsigned w = 0; w < S_FORCE_WAYS; w++) {
        const s_force_t *c = &set[w];
        if (c->gen == gen && c->fp == k->fp && c->rule == ri && c->site == st &&
            now_ms < c->until_ms)
            return true;
    }
    const char *dsite = r->reach == BS_REACH_LOCAL ? site_name : "";
    const decision_t *cur =
        decisions_find_identity(in->decisions, r->scope, k->fp, r->reach, dsite, r->mode);
    if (cur == NULL)
        return false;
    /* now + ttl < expires + extend_min, for every now before until */
    int64_t until = cur->expires_ms + in->extend_min_ms - r->ttl_ms;
    if (now_ms >= until)
        return false;
    size_t want = decisions_count(in->decisions) * S_FORCE_PER_DECISION;
    if (want > in->nforce && in->nforce < S_FORCE_MAX) {
        /* a bigger table: the cached answers are dropped, they are found again */
        while (in->nforce < want && in->nforce < S_FORCE_MAX)
            in->nforce *= 2;
        xfree(in->force);
        in->force = s_force_new(in->nforce);
        set = s_force_at(in, k->fp, ri, st);
    }
    /* into the first way; what was there moves to the second (the older answer goes) */
    static_assert(S_FORCE_WAYS == 2 && sizeof(s_force_t) * S_FORCE_WAYS == 64,
                  "an in-force set is two slots, one cache line");
    set[1] = set[0];
    set[0] =
        (s_force_t){.fp = k->fp, .gen = gen, .until_ms = until, .rule = (uint16_t)ri, .site = st};
    return true;
}

/* A rule fired and its decision is not in force long enough (s_in_force() false):
 * propose or extend its decision. */
static void s_fire(ingest_t *in, const rule_t *r, const window_key_t *wk, const ingest_key_t *k,
                   unsigned site, const char *site_name, int64_t now_ms)
{
    const char *dsite = r->reach == BS_REACH_LOCAL ? site_name : "";
    decision_t d;
    memset(&d, 0, sizeof(d));
    if (rules_eval(r, in->window, wk, site, now_ms, &d.evidence) != RULES_FIRES)
        return;
    d.has_evidence = true;
    d.scope = r->scope;
    d.fp = k->fp;
    if (k->text && k->text_len) {
        size_t len = k->text_len < DECISION_VALUE_MAX ? k->text_len : DECISION_VALUE_MAX;
        memcpy(d.value, k->text, len);
        d.value[len] = 0;
    } else if (d.evidence.sample[0]) {
        memcpy(d.value, d.evidence.sample, sizeof(d.value));
    } else {
        char hex[FP_HEX_SIZE];
        decisions_strlcpy(d.value, fp_hex(k->fp, hex), DECISION_VALUE_MAX);
    }
    d.action = r->action;
    d.reach = r->reach;
    decisions_strlcpy(d.site, dsite, DECISION_NAME_MAX);
    if (r->reach == BS_REACH_LOCAL)
        snprintf(d.reason, sizeof(d.reason), "%s: %" PRIu64 " events at %s in %" PRId64 "s",
                 r->name, d.evidence.events, site_name, (int64_t)(r->window_ms / 1000));
    else
        snprintf(d.reason, sizeof(d.reason), "%s: %" PRIu64 " events from %u sites in %" PRId64 "s",
                 r->name, d.evidence.events, d.evidence.sites, (int64_t)(r->window_ms / 1000));
    d.expires_ms = now_ms + r->ttl_ms;
    d.origin = BS_ORIGIN_RULE;
    decisions_strlcpy(d.origin_who, r->name, DECISION_NAME_MAX);
    d.mode = r->mode;
    d.all_mail = false;
    if (allowlist_covers_decision(in->allow, &d)) {
        in->counters.allowlisted_fires++;
        return;
    }
    decisions_result_t res = decisions_propose(in->decisions, &d, in->extend_min_ms, now_ms, NULL);
    if (res == DECISIONS_UNCHANGED)
        return;
    if (res == DECISIONS_CREATED)
        in->counters.decisions_created++;
    else
        in->counters.decisions_extended++;
    if (r->mode == BS_MODE_OBSERVE)
        in->counters.fires_observe++;
    else
        in->counters.fires++;
}

static int64_t s_bucket(const ingest_t *in, int64_t t)
{
    int64_t b = t / in->bucket_ms;
    return t % in->bucket_ms < 0 ? b - 1 : b;
}

/* The oldest event time still in the longest window (the ring) at now_ms: an event is
 * too old when s_bucket(time) <= s_bucket(now) - span / bucket, that is when time <
 * (s_bucket(now) - span / bucket + 1) * bucket. Kept for the last now_ms asked (a batch
 * has one), so an event costs a comparison, not two divisions. */
static int64_t s_oldest_ms(ingest_t *in, int64_t now_ms)
{
    if (now_ms != in->oldest_for_ms) {
        in->oldest_for_ms = now_ms;
        in->oldest_ms = (s_bucket(in, now_ms) - in->span_ms / in->bucket_ms + 1) * in->bucket_ms;
    }
    return in->oldest_ms;
}

static ingest_result_t s_result(ingest_t *in, ingest_result_t r)
{
    in->counters.by_result[r]++;
    return r;
}

/* What the events of one sensor share, resolved once per run of them in a batch. */
typedef struct {
    const char *site_name;   /* the names it was resolved from (borrowed) */
    const char *sensor_name; /* ... */
    bool valid;              /* both names are acceptable */
    dedup_sensor_t *dedup;   /* the sensor's dedup state; NULL: untracked */
    int site;                /* window site index; -1: not interned yet */
} s_source_t;

static void s_resolve(ingest_t *in, s_source_t *src, const ingest_event_t *ev)
{
    src->site_name = ev->site;
    src->sensor_name = ev->sensor;
    src->valid = s_valid_name(ev->site) && s_valid_name(ev->sensor);
    src->dedup = src->valid ? dedup_sensor(in->dedup, ev->site, ev->sensor) : NULL;
    src->site = src->valid ? window_site_find(in->window, ev->site) : -1;
}

/* Window updates of one event that the batch pipeline locates ahead (more are located
 * when counted). */
#define S_LOCS_MAX 16

/* The tallies that count ev (its class, and its rule matches when the tally needs them). */
static uint32_t s_counting(const ingest_t *in, const ingest_event_t *ev)
{
    if ((unsigned)ev->msg_class >= BS_CLASS_COUNT)
        return 0;
    return in->counting[ev->nrule_labels > 0][ev->msg_class];
}

/* The located update for wk among locs, searched from *cur on (they are in counting order,
 * so a key passed over, such as an allowlisted one, is merely skipped); NULL if none. */
static const window_loc_t *s_loc_for(const window_loc_t *locs, size_t nlocs, size_t *cur,
                                     uint8_t scope, uint8_t tally, uint64_t fp)
{
    for (size_t i = *cur; i < nlocs; i++) {
        const window_key_t *k = &locs[i].key;
        if (k->fp == fp && k->scope == scope && k->tally == tally) {
            *cur = i + 1;
            return &locs[i];
        }
    }
    return NULL;
}

/* One event from src; locs (nlocs of them, may be NULL) holds window_locate() results
 * for its updates, in the order s_locate() writes them. */
static ingest_result_t s_event(ingest_t *in, const ingest_event_t *ev, s_source_t *src,
                               const window_loc_t *locs, size_t nlocs, int64_t now_ms)
{
    in->counters.events_in++;
    if (!src->valid)
        return s_result(in, INGEST_INVALID);
    /* the time first: an event refused for it is not marked as seen, so the same event
     * sent again when it fits (a sensor's clock put right, then its spool) still counts */
    if (ev->time_ms > now_ms + in->max_skew_ms)
        return s_result(in, INGEST_FUTURE);
    /* too old: its bucket has left the longest window (the ring) */
    if (ev->time_ms < s_oldest_ms(in, now_ms))
        return s_result(in, INGEST_TOO_OLD);
    switch (dedup_check_at(in->dedup, src->dedup, ev->seq)) {
    case DEDUP_DUPLICATE:
        return s_result(in, INGEST_DUPLICATE);
    case DEDUP_BEHIND:
        return s_result(in, INGEST_BEHIND);
    case DEDUP_NEW:
    case DEDUP_UNTRACKED:
        break;
    }
    int64_t t = ev->time_ms < now_ms ? ev->time_ms : now_ms;
    if (ev->ledger_hit)
        return s_result(in, INGEST_LEDGER);
    if ((unsigned)ev->msg_class >= BS_CLASS_COUNT || !(in->all_classes & (1u << ev->msg_class)))
        return s_result(in, INGEST_UNCOUNTED);
    bool any_allowed = allowlist_count(in->allow) > 0;
    if (any_allowed && allowlist_covers_ip(in->allow, ev->client_ip, ev->client_ip_len))
        return s_result(in, INGEST_ALLOWLISTED);
    for (size_t i = 0; any_allowed && i < ev->nkeys; i++) {
        const ingest_key_t *k = &ev->keys[i];
        if (k->scope == BS_SCOPE_SENDER_DOMAIN && k->text && k->text_len &&
            k->text_len <= ALLOW_TEXT_MAX) {
            char dom[ALLOW_TEXT_MAX + 1];
            memcpy(dom, k->text, k->text_len);
            dom[k->text_len] = 0;
            if (allowlist_covers_domain(in->allow, dom))
                return s_result(in, INGEST_ALLOWLISTED);
        }
    }
    if (src->site < 0) {
        src->site = window_site_intern(in->window, ev->site);
        if (src->site < 0)
            return s_result(in, INGEST_INVALID);
    }
    int site = src->site;

    uint32_t counting = s_counting(in, ev);
    bool counted = false, allowlisted = false, refused = false;
    size_t li = 0; /* where the next located update is searched from */
    for (size_t i = 0; i < ev->nkeys; i++) {
        const ingest_key_t *k = &ev->keys[i];
        if ((unsigned)k->scope >= BS_SCOPE_COUNT || in->tally_mask[k->scope] == 0)
            continue;
        uint32_t mask = in->tally_mask[k->scope];
        size_t tlen = k->text && k->text_len ? k->text_len : 0;
        if (tlen > DECISION_VALUE_MAX)
            tlen = DECISION_VALUE_MAX;
        if (any_allowed) {
            char text[DECISION_VALUE_MAX + 1];
            if (tlen)
                memcpy(text, k->text, tlen);
            text[tlen] = 0;
            if (allowlist_covers_key(in->allow, k->scope, k->fp, tlen ? text : NULL)) {
                in->counters.keys_allowlisted++;
                allowlisted = true;
                continue;
            }
        }
        for (uint32_t m = mask & counting, tl = 0; m; m >>= 1, tl++) {
            if (!(m & 1u))
                continue;
            window_key_t wk = {.scope = (uint8_t)k->scope, .tally = (uint8_t)tl, .fp = k->fp};
            const window_loc_t *loc = s_loc_for(locs, nlocs, &li, wk.scope, wk.tally, wk.fp);
            window_rings_t rings = {0};
            if (window_add_count(in->window, &wk, (unsigned)site, loc, t, k->text, tlen, &rings) <
                0) {
                in->counters.keys_refused++;
                refused = true;
                continue;
            }
            in->counters.keys_counted++;
            counted = true;
            if (rings.total < in->gate[k->scope][tl])
                continue; /* far below every threshold: most keys, most of the time */
            for (size_t ri = 0; ri < in->nrules; ri++) {
                const rule_t *r = &in->rules[ri];
                if (r->scope != k->scope || in->rule_tally[ri] != tl)
                    continue;
                /* no window of the key (or of this site, for a local rule) can hold more */
                if ((r->reach == BS_REACH_LOCAL ? rings.site : rings.total) < r->min_events)
                    continue;
                /* a storm's hot keys: the decision is made, evaluating again changes nothing */
                if (s_in_force(in, ri, k, (unsigned)site, ev->site, now_ms))
                    continue;
                if (rules_eval(r, in->window, &wk, (unsigned)site, now_ms, NULL) == RULES_FIRES)
                    s_fire(in, r, &wk, k, (unsigned)site, ev->site, now_ms);
            }
        }
    }
    if (counted)
        return s_result(in, INGEST_COUNTED);
    /* refused on every key that would have counted it: not counted, and not silently */
    if (refused)
        return s_result(in, INGEST_REFUSED);
    return s_result(in, allowlisted ? INGEST_ALLOWLISTED : INGEST_UNCOUNTED);
}

ingest_result_t ingest_event(ingest_t *self, const ingest_event_t *ev, int64_t now_ms)
{
    window_set_now(self->window, now_ms, self->max_skew_ms);
    s_source_t src;
    s_resolve(self, &src, ev);
    return s_event(self, ev, &src, NULL, 0, now_ms);
}

/* Locates the window updates ev will make (the keys' tallies that count it) at site index
 * site (-1: unknown, the keys' totals only) into locs, in the order s_event() makes them
 * (at most S_LOCS_MAX; returns how many), and asks for their tag bytes. */
static size_t s_locate(const ingest_t *in, const ingest_event_t *ev, int site, window_loc_t *locs)
{
    unsigned st = site < 0 ? WINDOW_SITE_ALL : (unsigned)site;
    uint32_t counting = s_counting(in, ev);
    size_t n = 0;
    for (size_t i = 0; i < ev->nkeys; i++) {
        const ingest_key_t *k = &ev->keys[i];
        if ((unsigned)k->scope >= BS_SCOPE_COUNT)
            continue;
        for (uint32_t m = in->tally_mask[k->scope] & counting, tl = 0; m; m >>= 1, tl++) {
            if (!(m & 1u))
                continue;
            if (n == S_LOCS_MAX)
                return n;
            window_key_t wk = {.scope = (uint8_t)k->scope, .tally = (uint8_t)tl, .fp = k->fp};
            window_locate(in->window, &wk, st, &locs[n]);
            window_prefetch_tags(in->window, &locs[n]);
            n++;
        }
    }
    return n;
}

/* Asks for the in-force cache slots a located key will look at when it is counted: those
 * of its rules, once its ring (read through the loc's slot hint, which should be in cache
 * by now) has reached the gate, so only hot keys (in a storm, most of them have a
 * decision) cost anything. */
static void s_ask_force(const ingest_t *in, const window_loc_t *loc)
{
    const window_key_t *wk = &loc->key;
    if (window_loc_ring(in->window, loc) < in->gate[wk->scope][wk->tally])
        return;
    for (size_t ri = 0; ri < in->nrules; ri++) {
        const rule_t *r = &in->rules[ri];
        if (r->scope != wk->scope || in->rule_tally[ri] != wk->tally)
            continue;
        uint16_t st = r->reach == BS_REACH_LOCAL ? loc->site : 0xFFFFu;
        if (st == WINDOW_SITE_ALL && r->reach == BS_REACH_LOCAL)
            continue; /* a site not interned yet */
        __builtin_prefetch(s_force_at(in, wk->fp, ri, st), 0, 3);
    }
}

/* A software pipeline over a batch: while event i is counted, the in-force cache slots of
 * event i + S_AHEAD_FORCE, the window slots of event i + S_AHEAD_SLOTS and the tags of
 * event i + S_AHEAD_TAGS are on their way. Far enough ahead that they arrive in time, near
 * enough that they are still in the cache when used and the CPU's outstanding-miss slots
 * do not overflow (8 and 4: the best of 4..32 for four keys an event over a 1.25 M entry
 * table, measured on the 2-core test VM). A table that grows meanwhile only makes some
 * hints useless. The keys' hashes are computed once, at the first stage (S_RING events'
 * worth are kept). */
#define S_AHEAD_TAGS  8
#define S_AHEAD_SLOTS 4
#define S_AHEAD_FORCE 2
#define S_RING        16 /* > S_AHEAD_TAGS, a power of two */

void ingest_batch(ingest_t *self, const ingest_event_t *evs, size_t n, int64_t now_ms,
                  ingest_result_t *results)
{
    window_loc_t locs[S_RING][S_LOCS_MAX];
    size_t nlocs[S_RING];
    window_set_now(self->window, now_ms, self->max_skew_ms);
    /* a batch is normally one sensor: names are looked up again only when they change */
    const char *ahead_name = NULL;
    int ahead_site = -1;
    s_source_t src = {0};
    bool resolved = false;
    for (size_t i = 0; i < n + S_AHEAD_TAGS; i++) {
        if (i < n) {
            if (evs[i].site != ahead_name) {
                ahead_name = evs[i].site;
                ahead_site =
                    s_valid_name(ahead_name) ? window_site_find(self->window, ahead_name) : -1;
            }
            nlocs[i % S_RING] = s_locate(self, &evs[i], ahead_site, locs[i % S_RING]);
        }
        /* event i is located; the one counted now is i - S_AHEAD_TAGS */
        if (i >= S_AHEAD_TAGS - S_AHEAD_SLOTS && i - (S_AHEAD_TAGS - S_AHEAD_SLOTS) < n) {
            size_t j = i - (S_AHEAD_TAGS - S_AHEAD_SLOTS);
            for (size_t l = 0; l < nlocs[j % S_RING]; l++)
                window_prefetch(self->window, &locs[j % S_RING][l]);
        }
        if (i >= S_AHEAD_TAGS - S_AHEAD_FORCE && i - (S_AHEAD_TAGS - S_AHEAD_FORCE) < n) {
            size_t j = i - (S_AHEAD_TAGS - S_AHEAD_FORCE);
            for (size_t l = 0; l < nlocs[j % S_RING]; l++)
                s_ask_force(self, &locs[j % S_RING][l]);
        }
        if (i >= S_AHEAD_TAGS) {
            size_t j = i - S_AHEAD_TAGS;
            if (!resolved || evs[j].site != src.site_name || evs[j].sensor != src.sensor_name) {
                s_resolve(self, &src, &evs[j]);
                resolved = true;
            }
            results[j] = s_event(self, &evs[j], &src, locs[j % S_RING], nlocs[j % S_RING], now_ms);
        }
    }
}

uint32_t ingest_scopes(const ingest_t *self)
{
    /* a sender_domain key allowlists its whole event, counted or not */
    uint32_t bits = 1u << BS_SCOPE_SENDER_DOMAIN;
    for (unsigned s = 0; s < BS_SCOPE_COUNT; s++)
        if (self->tally_mask[s])
            bits |= 1u << s;
    return bits;
}

size_t ingest_tick(ingest_t *self, int64_t now_ms, size_t sweep_budget)
{
    size_t n = decisions_expire(self->decisions, now_ms);
    window_set_now(self->window, now_ms, self->max_skew_ms);
    window_sweep(self->window, now_ms, sweep_budget);
    return n;
}

uint32_t ingest_allow_add(ingest_t *self, const allow_entry_t *e, int64_t now_ms, size_t *revoked_p)
{
    allowlist_ids_t ids = {0};
    uint32_t id = allowlist_add(self->allow, e, self->decisions, &ids);
    size_t n = 0;
    for (size_t i = 0; i < ids.n; i++)
        if (decisions_remove(self->decisions, ids.id[i], DECISION_WHY_ALLOWLISTED, now_ms) == 0)
            n++;
    allowlist_ids_clear(&ids);
    if (revoked_p)
        *revoked_p = n;
    return id;
}

void ingest_explain(const ingest_t *self, bs_scope_t scope, uint64_t fp, const char *site,
                    int64_t now_ms,
                    void (*cb)(const rule_t *r, rules_verdict_t v, const evidence_t *ev, void *arg),
                    void *arg)
{
    int site_idx = site ? window_site_find(self->window, site) : -1;
    for (size_t i = 0; i < self->nrules; i++) {
        const rule_t *r = &self->rules[i];
        if (r->scope != scope)
            continue;
        if (r->reach == BS_REACH_LOCAL && site == NULL)
            continue;
        window_key_t wk = {.scope = (uint8_t)scope, .tally = self->rule_tally[i], .fp = fp};
        evidence_t ev;
        rules_verdict_t v;
        if (r->reach == BS_REACH_LOCAL && site_idx < 0) {
            memset(&ev, 0, sizeof(ev));
            decisions_strlcpy(ev.rule, r->name, DECISION_NAME_MAX);
            v = RULES_NO_EVENTS;
        } else {
            v = rules_eval(r, self->window, &wk, site_idx < 0 ? 0 : (unsigned)site_idx, now_ms,
                           &ev);
        }
        cb(r, v, &ev, arg);
    }
}

/* A filter as one number: its classes, bit 30 set (never 0), bit 31 for rule matches. */
static uint32_t s_tally_sig(const s_tally_t *t)
{
    return (t->classes & 0x3FFFFFFFu) | (1u << 30) | (t->require_rule_match ? 1u << 31 : 0);
}

size_t ingest_tally_sigs(const ingest_t *self, uint32_t *sigs)
{
    for (size_t k = 0; k < self->ntallies; k++)
        sigs[k] = s_tally_sig(&self->tallies[k]);
    return self->ntallies;
}

void ingest_tally_keep(const ingest_t *self, const uint32_t *old_sigs, size_t nold,
                       uint8_t map[256])
{
    memset(map, INGEST_TALLY_NONE, 256);
    for (size_t t = 0; t < nold && t < self->ntallies; t++)
        if (s_tally_sig(&self->tallies[t]) == old_sigs[t])
            map[t] = (uint8_t)t;
}

window_t *ingest_window(ingest_t *self)
{
    return self->window;
}

dedup_t *ingest_dedup(ingest_t *self)
{
    return self->dedup;
}

const rule_t *ingest_rules(const ingest_t *self, size_t *n_p)
{
    *n_p = self->nrules;
    return self->rules;
}

uint8_t ingest_rule_tally(const ingest_t *self, size_t rule_index)
{
    assert(rule_index < self->nrules);
    return self->rule_tally[rule_index];
}

int64_t ingest_span_ms(const ingest_t *self)
{
    return self->span_ms;
}

const ingest_counters_t *ingest_counters(const ingest_t *self)
{
    return &self->counters;
}

const char *ingest_result_name(ingest_result_t r)
{
    static const char *const names[INGEST_RESULTS] = {
        "counted",   "duplicate",   "too_old", "future", "ledger",
        "uncounted", "allowlisted", "invalid", "behind", "refused",
    };
    return (unsigned)r < INGEST_RESULTS ? names[r] : "unknown";
}
