/*
 * rules - what makes a wave: thresholds over a key's window, and the defaults
 *
 * A rule names a scope, a window and thresholds: at least min_events events
 * from at least min_sites distinct sites, with no one site above
 * max_site_share of them. A fleet rule counts every site's events of the key;
 * a local rule counts each site on its own and, when one site crosses the
 * thresholds, blocks the key at that site only (min_sites and max_site_share
 * do not apply). Which events count is part of the rule: their classes
 * (default bounces only) and, with require_rule_match, only events whose
 * content rules matched. Events the outbound ledger vouched for never count.
 *
 * rules_eval() looks at a window and says whether the rule fires, and fills
 * the evidence either way (for `backstop why`). The config loader fills
 * rule_t; rules_check() validates one. Pure logic, no state of its own.
 *
 * Shipped defaults (rules_defaults()), chosen so the whole set fits a 300 s
 * span of 10 s buckets (30 counters per key, a 104-byte entry):
 *   fleet_subject       subject       >= 400 in 120 s, >= 3 sites, share <= 0.6,
 *                                     reject, fleet, 1 h   (the storm in DESIGN.md)
 *   fleet_orig_subject  orig_subject  same thresholds, for bounces quoting the spam
 *   fleet_reflector_ip  client_ip     >= 200 in 300 s, >= 3 sites, share <= 0.6,
 *                                     tempfail (a provider's legitimate mail retries), 30 min
 *   local_subject       subject       >= 50 rule-matching bounces in 300 s at one site,
 *                                     reject at that site, 1 h  (the seed's per-site rule)
 */
#ifndef BS_RULES_H
#define BS_RULES_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "bs_enums.h"
#include "decisions.h"
#include "window.h"

/* Longest rule name. */
#define RULE_NAME_MAX 63

/* One rule, as the config describes it. */
typedef struct {
    char name[RULE_NAME_MAX + 1]; /* names decisions' origin and evidence */
    bs_scope_t scope;             /* key scope it counts */
    int64_t window_ms;            /* window length */
    uint32_t min_events;          /* events needed in the window (>= 1) */
    uint32_t min_sites;           /* distinct sites needed (fleet; >= 1) */
    double max_site_share;        /* largest allowed share of one site, (0, 1]; fleet only */
    int64_t ttl_ms;               /* decision lifetime from the last firing */
    bs_action_t action;           /* reject, tempfail or tag */
    bs_reach_t reach;             /* fleet, or local (the site that saw it) */
    bs_mode_t mode;               /* enforce, or observe (decisions marked observe) */
    bool require_rule_match;      /* count only events whose content rules matched */
    uint32_t classes;             /* mask of (1u << bs_class_t) that count; 0: bounces */
} rule_t;

/* Outcome of rules_eval(). */
typedef enum {
    RULES_FIRES = 0,          /* all thresholds met */
    RULES_NO_EVENTS = 1,      /* nothing counted in the window */
    RULES_TOO_FEW_EVENTS = 2, /* below min_events */
    RULES_TOO_FEW_SITES = 3,  /* below min_sites */
    RULES_SHARE_TOO_HIGH = 4, /* one site above max_site_share */
} rules_verdict_t;

/* The built-in rule set; *n_p gets its length. Borrowed, static. */
const rule_t *rules_defaults(size_t *n_p);

/* 0 if r is usable, else -1 with a one-line reason in err (size errlen). */
int rules_check(const rule_t *r, char *err, size_t errlen);

/* The class mask r counts (its classes, or bounces when 0). */
uint32_t rules_classes(const rule_t *r);

/* Whether an event of msg_class, with or without content-rule matches, vouched for
 * by the ledger or not, counts for r. */
bool rules_counts(const rule_t *r, bs_class_t msg_class, bool rule_matched, bool ledger_hit);

/* Evaluates r on key in w at now_ms. site is the reporting site's index (used by local
 * rules; fleet rules look at all sites). ev (may be NULL) gets the evidence. */
rules_verdict_t rules_eval(const rule_t *r, const window_t *w, const window_key_t *key,
                           unsigned site, int64_t now_ms, evidence_t *ev);

/* Name of a verdict: "fires", "no events", "too few events", ... */
const char *rules_verdict_name(rules_verdict_t v);

#endif
