/*
 * ingest - one event in, decision changes out: the aggregator's counting path
 *
 * For each event: dedup by (site, sensor, seq) (seen before: duplicate;
 * below its sensor's dedup window and never seen: behind; both dropped and
 * counted) -> clock skew check against
 * now (its bucket older than the longest rule window: too_old; more than max_skew_ms in
 * the future: future; both dropped and counted; a smaller lead is clamped to
 * now) -> events the ledger vouched for, and classes no rule counts, are
 * counted apart and go no further -> allowlist (client address or sender
 * domain allowlisted: the event does not count; an allowlisted key is not
 * counted) -> window update for each key, once per distinct event filter
 * ("tally") the rules on its scope use -> evaluation of those rules on the
 * touched keys -> decisions created or extended in the decision table.
 *
 * Observe-mode rules go through the same path and create decisions marked
 * mode observe (published, so sensors log what they would have done; they
 * enforce nothing), counted apart in fires_observe. A prospective decision an
 * allowlist covers (key, network, or the site for a local rule) is not
 * created (allowlisted_fires).
 *
 * The caller drains the changes from the decision table
 * (decisions_take_change) after each call, writes them to the store, then
 * publishes. ingest_tick() runs the timers: decision expiry and a budgeted
 * window sweep. Pure logic: time is an argument, no I/O, no locks (the single
 * event loop owns it). The decision table and allowlist are borrowed (the
 * daemon and the CLI handler share them); the window and dedup are owned.
 */
#ifndef BS_INGEST_H
#define BS_INGEST_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "allowlist.h"
#include "bs_enums.h"
#include "decisions.h"
#include "dedup.h"
#include "rules.h"
#include "window.h"

typedef struct ingest ingest_t;

/* Most rules one ingest evaluates. */
#define INGEST_RULES_MAX 32
/* Buckets of window_resolution one rule window may span (the window's per-key ring). */
#define INGEST_WINDOW_BUCKETS_MAX 4096

/* Construction parameters; zero fields take the documented defaults. */
typedef struct {
    const rule_t *rules;      /* rule set (copied); NULL: rules_defaults() */
    size_t nrules;            /* rules in it */
    int64_t bucket_ms;        /* window resolution, default 10 s; rule windows are rounded
                                 up to a multiple of it */
    int64_t max_skew_ms;      /* largest accepted lead of event time over now, default 60 s */
    int64_t extend_min_ms;    /* a firing extends a decision only if its expiry moves at least
                                 this much, default 60 s (bounds publish traffic in a storm) */
    size_t expected_keys;     /* presize the window for this many keys, default 1 M */
    size_t max_entries;       /* window hard cap (keys + per-site series), default 0: none */
    uint64_t seed;            /* window hash seed (random in the daemon) */
    int track_dirty;          /* window remembers changed keys for the store */
    int populate;             /* window takes its table's memory at once (window_config_t) */
    size_t dedup_max_sensors; /* dedup cap, default DEDUP_SENSORS_DEFAULT (the daemon
                                 passes its bound on sensors) */
    uint64_t dedup_reset_gap; /* dedup restart distance, default (longest window + max_skew_ms
                                 + 60 s) x 1000: sensors number from ms x 1000 */
} ingest_config_t;

/* One key of an event. */
typedef struct {
    bs_scope_t scope; /* what it is */
    uint64_t fp;      /* fingerprint of its text */
    const char *text; /* normalised text or address (may be NULL) */
    size_t text_len;  /* bytes of text */
} ingest_key_t;

/* One event as the wire adapter hands it over (all borrowed). */
typedef struct {
    const char *site;         /* reporting site (authenticated by CurveZMQ) */
    const char *sensor;       /* sensor within the site */
    uint64_t seq;             /* sensor sequence number */
    int64_t time_ms;          /* when the sensor saw it */
    bs_class_t msg_class;     /* classification */
    const uint8_t *client_ip; /* 4 or 16 bytes, or NULL */
    size_t client_ip_len;     /* its length */
    const ingest_key_t *keys; /* keys */
    size_t nkeys;             /* how many */
    size_t nrule_labels;      /* content rules that matched (labels themselves not needed) */
    bool ledger_hit;          /* the outbound ledger vouched for it */
} ingest_event_t;

/* What happened to one event. */
typedef enum {
    INGEST_COUNTED = 0,     /* counted in at least one window */
    INGEST_DUPLICATE = 1,   /* dedup: seen before */
    INGEST_TOO_OLD = 2,     /* older than the longest window */
    INGEST_FUTURE = 3,      /* too far in the future */
    INGEST_LEDGER = 4,      /* vouched for by the ledger: never counts */
    INGEST_UNCOUNTED = 5,   /* no rule counts its class (or its rule matches) */
    INGEST_ALLOWLISTED = 6, /* its client address or sender domain is allowlisted */
    INGEST_INVALID = 7,     /* no usable site or sensor name */
    INGEST_BEHIND = 8,      /* dedup: below its sensor's window, never seen (cannot tell) */
    INGEST_REFUSED = 9,     /* the window refused it on every key it would have counted
                               (table full at max_entries, or older than the key's ring);
                               an event some of whose keys were refused is COUNTED and
                               only keys_refused shows the others */
} ingest_result_t;

/* Number of ingest_result_t values. */
#define INGEST_RESULTS 10

/* Metrics. */
typedef struct {
    uint64_t events_in;                 /* events offered */
    uint64_t by_result[INGEST_RESULTS]; /* events by outcome */
    uint64_t keys_counted;              /* window updates */
    uint64_t keys_allowlisted;          /* keys not counted: allowlisted */
    uint64_t keys_refused;              /* window updates refused (full, too old for the key):
                                           window_counters() says which */
    uint64_t fires;                     /* rule firings (enforce) */
    uint64_t fires_observe;             /* rule firings (observe) */
    uint64_t allowlisted_fires;         /* firings an allowlist suppressed */
    uint64_t decisions_created;         /* new decisions */
    uint64_t decisions_extended;        /* extensions */
} ingest_counters_t;

/* A new ingest over decisions and allow (borrowed, must outlive it). Rules are checked
 * with rules_check(); -1 style failure is a msg_fatal-worthy config error, so this
 * returns NULL and writes the reason to err (size errlen). */
ingest_t *ingest_new(const ingest_config_t *cfg, decisions_t *decisions, allowlist_t *allow,
                     char *err, size_t errlen);
/* Frees it (not the borrowed table and allowlist); *self_p becomes NULL; safe twice. */
void ingest_destroy(ingest_t **self_p);

/* Takes one event at now_ms. */
ingest_result_t ingest_event(ingest_t *self, const ingest_event_t *ev, int64_t now_ms);

/* Takes the n events of a batch at now_ms, in order, as ingest_event() each; results[i]
 * gets event i's outcome. The window's cache misses of the next few events overlap the
 * counting of this one (a software prefetch pipeline), each key's place in the window is
 * computed once, and a run of events with the same site and sensor name pointers (a
 * frame's events: one sensor) has its names checked and looked up once, so a batch costs
 * far less than n single calls. The evs array and its strings must not change during the
 * call. */
void ingest_batch(ingest_t *self, const ingest_event_t *evs, size_t n, int64_t now_ms,
                  ingest_result_t *results);

/* The scopes whose event keys it reads, as bits (1u << scope): those its rules count, and
 * sender_domain (allowlists). Sensors may leave the other keys out (PROTOCOL.md 5.5). */
uint32_t ingest_scopes(const ingest_t *self);

/* Timers: expires decisions at now_ms and sweeps at most sweep_budget window slots.
 * Returns the number of decisions expired. */
size_t ingest_tick(ingest_t *self, int64_t now_ms, size_t sweep_budget);

/* Adds an allowlist entry and revokes (why allowlisted) the active decisions it covers;
 * *revoked_p (may be NULL) gets how many. Returns the entry id. */
uint32_t ingest_allow_add(ingest_t *self, const allow_entry_t *e, int64_t now_ms,
                          size_t *revoked_p);

/* Evaluates every rule on (scope, fp) for site (a name, or NULL for fleet rules only) at
 * now_ms, calling cb with each rule, its verdict and evidence: `backstop why`. */
void ingest_explain(const ingest_t *self, bs_scope_t scope, uint64_t fp, const char *site,
                    int64_t now_ms,
                    void (*cb)(const rule_t *r, rules_verdict_t v, const evidence_t *ev, void *arg),
                    void *arg);

/* A tally (the event filter a window key was counted under) is its rule order's index: the
 * same filter gets another tally when the rules are reordered, added or removed. Its
 * signature is the filter itself, stable across configs. Writes the signatures of the
 * tallies, in tally order, into sigs (room for INGEST_RULES_MAX); returns how many. */
size_t ingest_tally_sigs(const ingest_t *self, uint32_t *sigs);

/* map[t] for each old tally t (signatures old_sigs[0..nold)): t when self counts the same
 * filter under t, else INGEST_TALLY_NONE (its keys are dropped: their counts start over,
 * none is counted under a filter it was not). */
#define INGEST_TALLY_NONE 0xFFu
void ingest_tally_keep(const ingest_t *self, const uint32_t *old_sigs, size_t nold,
                       uint8_t map[256]);

/* The window (for the store, `backstop top`) and dedup (for the store); borrowed. */
window_t *ingest_window(ingest_t *self);
dedup_t *ingest_dedup(ingest_t *self);
/* The rules in use and their tally (window key filter) ids. */
const rule_t *ingest_rules(const ingest_t *self, size_t *n_p);
uint8_t ingest_rule_tally(const ingest_t *self, size_t rule_index);
/* Longest rule window (events older than it are too old). */
int64_t ingest_span_ms(const ingest_t *self);
/* Metrics (borrowed). */
const ingest_counters_t *ingest_counters(const ingest_t *self);
/* Name of a result: "counted", "duplicate", "too_old", "future", "ledger", ..., "behind",
 * "refused". */
const char *ingest_result_name(ingest_result_t r);

#endif
