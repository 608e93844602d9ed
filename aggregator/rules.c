/*
 * rules - what makes a wave: thresholds over a key's window, and the defaults
 *
 * See rules.h for the model and the defaults. The share test ignores the
 * "other" series (several sites folded together, never one site's share).
 */
#include <stdio.h>
#include <string.h>

#include "rules.h"

#define SEC  1000LL
#define MIN  (60 * SEC)
#define HOUR (60 * MIN)

static const rule_t s_defaults[] = {
    {
        .name = "fleet_subject",
        .scope = BS_SCOPE_SUBJECT,
        .window_ms = 120 * SEC,
        .min_events = 400,
        .min_sites = 3,
        .max_site_share = 0.6,
        .ttl_ms = HOUR,
        .action = BS_ACTION_REJECT,
        .reach = BS_REACH_FLEET,
        .mode = BS_MODE_ENFORCE,
    },
    {
        .name = "fleet_orig_subject",
        .scope = BS_SCOPE_ORIG_SUBJECT,
        .window_ms = 120 * SEC,
        .min_events = 400,
        .min_sites = 3,
        .max_site_share = 0.6,
        .ttl_ms = HOUR,
        .action = BS_ACTION_REJECT,
        .reach = BS_REACH_FLEET,
        .mode = BS_MODE_ENFORCE,
    },
    {
        .name = "fleet_reflector_ip",
        .scope = BS_SCOPE_CLIENT_IP,
        .window_ms = 300 * SEC,
        .min_events = 200,
        .min_sites = 3,
        .max_site_share = 0.6,
        .ttl_ms = 30 * MIN,
        .action = BS_ACTION_TEMPFAIL,
        .reach = BS_REACH_FLEET,
        .mode = BS_MODE_ENFORCE,
    },
    {
        .name = "local_subject",
        .scope = BS_SCOPE_SUBJECT,
        .window_ms = 300 * SEC,
        .min_events = 50,
        .min_sites = 1,
        .max_site_share = 1.0,
        .ttl_ms = HOUR,
        .action = BS_ACTION_REJECT,
        .reach = BS_REACH_LOCAL,
        .mode = BS_MODE_ENFORCE,
        .require_rule_match = true,
    },
};

const rule_t *rules_defaults(size_t *n_p)
{
    *n_p = sizeof(s_defaults) / sizeof(s_defaults[0]);
    return s_defaults;
}

int rules_check(const rule_t *r, char *err, size_t errlen)
{
    const char *why = NULL;
    if (r->name[0] == 0)
        why = "rule has no name";
    else if (r->scope < BS_SCOPE_SUBJECT || r->scope > BS_SCOPE_SUBJECT_IP)
        why = "scope must be subject, orig_subject, client_ip, client_net or subject_ip";
    else if (r->window_ms < 1000)
        why = "window must be at least 1s";
    else if (r->min_events < 1)
        why = "min_events must be at least 1";
    else if (r->reach != BS_REACH_FLEET && r->reach != BS_REACH_LOCAL)
        why = "reach must be fleet or local";
    else if (r->reach == BS_REACH_FLEET && r->min_sites < 1)
        why = "min_sites must be at least 1";
    else if (!(r->max_site_share > 0.0 && r->max_site_share <= 1.0))
        why = "max_site_share must be in (0, 1]";
    else if (r->ttl_ms < 1000)
        why = "ttl must be at least 1s";
    else if (r->action < BS_ACTION_REJECT || r->action > BS_ACTION_TAG)
        why = "action must be reject, tempfail or tag";
    else if (r->mode != BS_MODE_ENFORCE && r->mode != BS_MODE_OBSERVE)
        why = "mode must be enforce or observe";
    else if (r->classes >> BS_CLASS_COUNT)
        why = "classes names an unknown class";
    if (why == NULL)
        return 0;
    if (err && errlen)
        snprintf(err, errlen, "rule %s: %s", r->name[0] ? r->name : "(unnamed)", why);
    return -1;
}

uint32_t rules_classes(const rule_t *r)
{
    return r->classes ? r->classes : BS_CLASS_MASK_BOUNCE;
}

bool rules_counts(const rule_t *r, bs_class_t msg_class, bool rule_matched, bool ledger_hit)
{
    if (ledger_hit)
        return false;
    if ((unsigned)msg_class >= BS_CLASS_COUNT || !(rules_classes(r) & (1u << msg_class)))
        return false;
    return !r->require_rule_match || rule_matched;
}

static void s_fill_evidence(const rule_t *r, const window_t *w, const window_stats_t *st,
                            evidence_t *ev)
{
    memset(ev, 0, sizeof(*ev));
    decisions_strlcpy(ev->rule, r->name, DECISION_NAME_MAX);
    ev->events = st->events;
    ev->sites = st->sites;
    ev->nshares = st->nshares < EVIDENCE_SHARES_MAX ? st->nshares : EVIDENCE_SHARES_MAX;
    for (uint32_t i = 0; i < ev->nshares; i++) {
        decisions_strlcpy(ev->shares[i].site, window_site_name(w, st->shares[i].site),
                          DECISION_NAME_MAX);
        ev->shares[i].events = st->shares[i].events;
    }
    ev->first_ms = st->first_ms;
    ev->last_ms = st->last_ms;
    decisions_strlcpy(ev->sample, st->text, DECISION_VALUE_MAX);
    ev->window_s = (uint32_t)(r->window_ms / 1000);
}

rules_verdict_t rules_eval(const rule_t *r, const window_t *w, const window_key_t *key,
                           unsigned site, int64_t now_ms, evidence_t *ev)
{
    unsigned view = r->reach == BS_REACH_LOCAL ? site : WINDOW_SITE_ALL;
    /* cheap early exit: most keys never come near a threshold */
    if (ev == NULL) {
        uint32_t n = window_count(w, key, view, r->window_ms, now_ms);
        if (n < r->min_events)
            return n ? RULES_TOO_FEW_EVENTS : RULES_NO_EVENTS;
    }
    window_stats_t st;
    window_stats(w, key, view, r->window_ms, now_ms, &st);
    if (ev)
        s_fill_evidence(r, w, &st, ev);
    if (st.events == 0)
        return RULES_NO_EVENTS;
    if (st.events < r->min_events)
        return RULES_TOO_FEW_EVENTS;
    if (r->reach == BS_REACH_LOCAL)
        return RULES_FIRES;
    if (st.sites < r->min_sites)
        return RULES_TOO_FEW_SITES;
    for (uint32_t i = 0; i < st.nshares; i++) {
        if (st.shares[i].site == WINDOW_SITE_OTHER)
            continue;
        /* shares are largest first: the first real site is the largest */
        if ((double)st.shares[i].events > r->max_site_share * (double)st.events)
            return RULES_SHARE_TOO_HIGH;
        break;
    }
    return RULES_FIRES;
}

const char *rules_verdict_name(rules_verdict_t v)
{
    switch (v) {
    case RULES_FIRES:
        return "fires";
    case RULES_NO_EVENTS:
        return "no events";
    case RULES_TOO_FEW_EVENTS:
        return "too few events";
    case RULES_TOO_FEW_SITES:
        return "too few sites";
    case RULES_SHARE_TOO_HIGH:
        return "one site's share too high";
    }
    return "unknown";
}
