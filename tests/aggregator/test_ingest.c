/* test_ingest - the counting path end to end: storms, quorum, local rule, dedup, skew,
 * ledger and classes, allowlists, observe mode, extension and expiry. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <cmocka.h>

#include "ingest.h"

#define SEC 1000LL
#define MIN (60 * SEC)
#define T0  (1700000000LL * SEC)

#define SUBJ_FP 0x5B5B5B5BULL
#define SUBJ    "cheap pills"

typedef struct {
    decisions_t *decisions; /* table */
    allowlist_t *allow;     /* allowlist */
    ingest_t *in;           /* under test */
    uint64_t seq;           /* next seq per test (one sensor name per site) */
} s_fx_t;

static void s_setup(s_fx_t *fx, const rule_t *rules, size_t nrules)
{
    memset(fx, 0, sizeof(*fx));
    fx->decisions = decisions_new(1, 0, 0);
    fx->allow = allowlist_new();
    ingest_config_t cfg = {.rules = rules, .nrules = nrules, .expected_keys = 1000};
    char err[128] = "";
    fx->in = ingest_new(&cfg, fx->decisions, fx->allow, err, sizeof(err));
    if (fx->in == NULL)
        fail_msg("ingest_new: %s", err);
}

static void s_teardown(s_fx_t *fx)
{
    ingest_destroy(&fx->in);
    ingest_destroy(&fx->in);
    decisions_destroy(&fx->decisions);
    allowlist_destroy(&fx->allow);
}

/* A bounce with a subject key and a client-ip key from site at time t. */
static ingest_result_t s_bounce(s_fx_t *fx, const char *site, int64_t t, int64_t now, size_t labels)
{
    static const uint8_t ip[4] = {192, 0, 2, 9};
    ingest_key_t keys[2] = {
        {.scope = BS_SCOPE_SUBJECT, .fp = SUBJ_FP, .text = SUBJ, .text_len = strlen(SUBJ)},
        {.scope = BS_SCOPE_CLIENT_IP, .fp = 0x1919, .text = "192.0.2.9", .text_len = 9},
    };
    ingest_event_t ev = {
        .site = site,
        .sensor = "mx1",
        .seq = ++fx->seq,
        .time_ms = t,
        .msg_class = BS_CLASS_BOUNCE,
        .client_ip = ip,
        .client_ip_len = 4,
        .keys = keys,
        .nkeys = 2,
        .nrule_labels = labels,
    };
    return ingest_event(fx->in, &ev, now);
}

/* n bounces spread over spread_ms from t, from site, all received at their time. */
static void s_storm(s_fx_t *fx, const char *site, int n, int64_t t, int64_t spread_ms,
                    size_t labels)
{
    for (int i = 0; i < n; i++) {
        int64_t at = t + spread_ms * i / n;
        assert_int_equal(s_bounce(fx, site, at, at, labels), INGEST_COUNTED);
    }
}

static rule_t s_fleet_rule(void)
{
    rule_t r = {
        .name = "fleet",
        .scope = BS_SCOPE_SUBJECT,
        .window_ms = 120 * SEC,
        .min_events = 30,
        .min_sites = 3,
        .max_site_share = 0.6,
        .ttl_ms = 10 * MIN,
        .action = BS_ACTION_REJECT,
        .reach = BS_REACH_FLEET,
    };
    return r;
}

static void test_ingest_one_site_storm_makes_no_fleet_decision(void **state)
{
    s_fx_t fx;
    s_setup(&fx, NULL, 0); /* shipped defaults */
    s_storm(&fx, "acme", 1000, T0, 100 * SEC, 0);
    assert_int_equal(decisions_count(fx.decisions), 0);
    assert_int_equal(ingest_counters(fx.in)->by_result[INGEST_COUNTED], 1000);
    s_teardown(&fx);
}

static void test_ingest_three_sites_storm_makes_one_decision(void **state)
{
    s_fx_t fx;
    s_setup(&fx, NULL, 0); /* shipped defaults: 400 in 120 s from >= 3 sites, <= 60% */
    const char *sites[] = {"acme", "globex", "initech"};
    for (int i = 0; i < 450; i++) {
        int64_t at = T0 + i * 200; /* 90 s */
        assert_int_equal(s_bounce(&fx, sites[i % 3], at, at, 0), INGEST_COUNTED);
    }
    /* one decision on the subject; the reflector rule (200 in 300 s) fired first on the IP */
    const decision_t *found[4];
    assert_int_equal(decisions_find_key(fx.decisions, BS_SCOPE_SUBJECT, SUBJ_FP, found, 4), 1);
    assert_int_equal(decisions_find_key(fx.decisions, BS_SCOPE_CLIENT_IP, 0x1919, found, 4), 1);
    assert_int_equal(found[0]->action, BS_ACTION_TEMPFAIL);
    assert_string_equal(found[0]->value, "192.0.2.9");
    assert_int_equal(decisions_count(fx.decisions), 2);
    decision_change_t c;
    assert_int_equal(decisions_take_change(fx.decisions, &c), 1);
    assert_int_equal(c.decision.scope, BS_SCOPE_CLIENT_IP);
    assert_int_equal(decisions_take_change(fx.decisions, &c), 1);
    assert_int_equal(c.why, DECISION_WHY_NEW);
    assert_int_equal(c.decision.scope, BS_SCOPE_SUBJECT);
    assert_int_equal(c.decision.fp, SUBJ_FP);
    assert_int_equal(c.decision.reach, BS_REACH_FLEET);
    assert_int_equal(c.decision.action, BS_ACTION_REJECT);
    assert_int_equal(c.decision.origin, BS_ORIGIN_RULE);
    assert_string_equal(c.decision.origin_who, "fleet_subject");
    assert_string_equal(c.decision.value, SUBJ);
    assert_int_equal(c.decision.evidence.events, 400);
    assert_int_equal(c.decision.evidence.sites, 3);
    assert_int_equal(c.decision.evidence.nshares, 3);
    assert_int_equal(c.decision.evidence.window_s, 120);
    assert_non_null(strstr(c.decision.reason, "400 events from 3 sites"));
    /* the rest of the storm within a minute changes nothing (extend_min 60 s) */
    assert_int_equal(decisions_take_change(fx.decisions, &c), 0);
    assert_int_equal(ingest_counters(fx.in)->decisions_created, 2);
    s_teardown(&fx);
}

static void test_ingest_site_quorum_and_share(void **state)
{
    static const struct {
        int per_site[3]; /* events from a, b, c */
        size_t expect;   /* decisions */
    } cases[] = {
        {{30, 0, 0}, 0},   /* one site */
        {{15, 15, 0}, 0},  /* two sites */
        {{10, 10, 10}, 1}, /* quorum, 33% each */
        {{24, 3, 3}, 0},   /* 80% from one site */
        {{18, 6, 6}, 1},   /* exactly 60% */
    };
    rule_t r = s_fleet_rule();
    const char *sites[] = {"a", "b", "c"};
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        s_fx_t fx;
        s_setup(&fx, &r, 1);
        /* interleave so the decision, if any, sees the final mix */
        int left[3] = {cases[i].per_site[0], cases[i].per_site[1], cases[i].per_site[2]};
        while (left[0] + left[1] + left[2] > 0)
            for (int s = 0; s < 3; s++)
                if (left[s] > 0) {
                    left[s]--;
                    s_bounce(&fx, sites[s], T0, T0, 0);
                }
        if (decisions_count(fx.decisions) != cases[i].expect)
            fail_msg("case %zu: %zu decisions", i, decisions_count(fx.decisions));
        s_teardown(&fx);
    }
}

static void test_ingest_local_rule_blocks_at_that_site_only(void **state)
{
    s_fx_t fx;
    s_setup(&fx, NULL, 0); /* local_subject: 50 rule-matching bounces in 300 s at one site */
    s_storm(&fx, "acme", 49, T0, 60 * SEC, 1);
    s_storm(&fx, "globex", 100, T0, 60 * SEC, 0); /* no content rule matched: not counted */
    assert_int_equal(decisions_count(fx.decisions), 0);
    s_storm(&fx, "acme", 1, T0 + 61 * SEC, 0, 1);
    assert_int_equal(decisions_count(fx.decisions), 1);
    decision_change_t c;
    decisions_take_change(fx.decisions, &c);
    assert_int_equal(c.decision.reach, BS_REACH_LOCAL);
    assert_string_equal(c.decision.site, "acme");
    assert_string_equal(c.decision.origin_who, "local_subject");
    assert_int_equal(c.decision.evidence.events, 50);
    assert_int_equal(c.decision.expires_ms, T0 + 61 * SEC + 60 * MIN);
    s_teardown(&fx);
}

/* The subject key of the tests' storms. */
static ingest_key_t s_subject_key(void)
{
    return (ingest_key_t){.scope = BS_SCOPE_SUBJECT, .fp = SUBJ_FP, .text = SUBJ, .text_len = 11};
}

/* A bounce of key alone from sensor mx1 of site a at T0 (seq 0: set it). */
static ingest_event_t s_one_key_bounce(const ingest_key_t *key)
{
    return (ingest_event_t){.site = "a",
                            .sensor = "mx1",
                            .msg_class = BS_CLASS_BOUNCE,
                            .keys = key,
                            .nkeys = 1,
                            .time_ms = T0};
}

static void test_ingest_replayed_spool_is_not_counted_twice(void **state)
{
    rule_t r = s_fleet_rule();
    s_fx_t fx;
    s_setup(&fx, &r, 1);
    ingest_key_t key = s_subject_key();
    ingest_event_t ev = s_one_key_bounce(&key);
    for (int round = 0; round < 3; round++)
        for (uint64_t s = 1; s <= 20; s++) {
            ev.seq = s;
            ingest_result_t res = ingest_event(fx.in, &ev, T0);
            assert_int_equal(res, round == 0 ? INGEST_COUNTED : INGEST_DUPLICATE);
        }
    window_key_t wk = {
        .scope = BS_SCOPE_SUBJECT, .tally = ingest_rule_tally(fx.in, 0), .fp = SUBJ_FP};
    assert_int_equal(window_count(ingest_window(fx.in), &wk, WINDOW_SITE_ALL, 120 * SEC, T0), 20);
    assert_int_equal(ingest_counters(fx.in)->by_result[INGEST_DUPLICATE], 40);
    /* the same seqs from another sensor of the site are other events */
    ev.sensor = "mx2";
    ev.seq = 1;
    assert_int_equal(ingest_event(fx.in, &ev, T0), INGEST_COUNTED);
    s_teardown(&fx);
}

/* A sensor numbers its events from its wall clock (seq >= time_ms x 1000), so a spool of
 * events a minute apart spans 60 M seqs: replayed a second time, it is still duplicates, not
 * a sensor that started numbering again (it was, with a restart distance of 2^20 seqs: about
 * a second of the sensor's clock). */
static void test_ingest_spool_replayed_twice_across_minutes_is_not_counted_again(void **state)
{
    rule_t r = s_fleet_rule();
    r.window_ms = 10 * MIN;
    s_fx_t fx;
    s_setup(&fx, &r, 1);
    ingest_key_t key = s_subject_key();
    ingest_event_t ev = s_one_key_bounce(&key);
    const int64_t now = T0 + 6 * MIN;
    for (int round = 0; round < 3; round++)
        for (int64_t i = 0; i < 6; i++) {
            ev.time_ms = T0 + i * MIN;
            ev.seq = (uint64_t)ev.time_ms * 1000u;
            ingest_result_t res = ingest_event(fx.in, &ev, now);
            if (res != (round == 0 ? INGEST_COUNTED : INGEST_DUPLICATE))
                fail_msg("round %d event %d: %s", round, (int)i, ingest_result_name(res));
        }
    window_key_t wk = {
        .scope = BS_SCOPE_SUBJECT, .tally = ingest_rule_tally(fx.in, 0), .fp = SUBJ_FP};
    assert_int_equal(window_count(ingest_window(fx.in), &wk, WINDOW_SITE_ALL, 10 * MIN, now), 6);
    assert_int_equal(dedup_counters(ingest_dedup(fx.in))->resets, 0);
    /* a sensor that numbers from scratch again (seq 1) is still told apart */
    ev.seq = 1;
    assert_int_equal(ingest_event(fx.in, &ev, now), INGEST_COUNTED);
    assert_int_equal(dedup_counters(ingest_dedup(fx.in))->resets, 1);
    s_teardown(&fx);
}

static void test_ingest_late_event_is_duplicate_or_behind(void **state)
{
    rule_t r = s_fleet_rule();
    s_fx_t fx;
    s_setup(&fx, &r, 1);
    ingest_key_t key = s_subject_key();
    ingest_event_t ev = s_one_key_bounce(&key);
    static const struct {
        uint64_t seq;           /* in this order */
        ingest_result_t expect; /* outcome */
    } cases[] = {
        {1, INGEST_COUNTED},
        {2 + DEDUP_WINDOW + 100, INGEST_COUNTED}, /* slides 2..101 out unseen */
        {1, INGEST_DUPLICATE},                    /* counted: a replay */
        {50, INGEST_BEHIND},                      /* never counted, too late to tell */
        {50, INGEST_BEHIND},
        {200, INGEST_COUNTED}, /* still in the window */
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        ev.seq = cases[i].seq;
        ingest_result_t got = ingest_event(fx.in, &ev, T0);
        if (got != cases[i].expect)
            fail_msg("case %zu: %s", i, ingest_result_name(got));
    }
    assert_int_equal(ingest_counters(fx.in)->by_result[INGEST_DUPLICATE], 1);
    assert_int_equal(ingest_counters(fx.in)->by_result[INGEST_BEHIND], 2);
    assert_int_equal(ingest_counters(fx.in)->by_result[INGEST_COUNTED], 3);
    assert_string_equal(ingest_result_name(INGEST_BEHIND), "behind");
    assert_string_equal(ingest_result_name(INGEST_DUPLICATE), "duplicate");
    s_teardown(&fx);
}

static void test_ingest_clock_skew_drops(void **state)
{
    rule_t r = s_fleet_rule(); /* window 120 s: the span */
    s_fx_t fx;
    s_setup(&fx, &r, 1);
    static const struct {
        int64_t offset_ms;      /* event time - now */
        ingest_result_t expect; /* outcome */
    } cases[] = {
        {0, INGEST_COUNTED},
        {60 * SEC, INGEST_COUNTED},       /* at the skew limit */
        {60 * SEC + 1, INGEST_FUTURE},    /* beyond */
        {-110 * SEC, INGEST_COUNTED},     /* oldest bucket still in the window */
        {-110 * SEC - 1, INGEST_TOO_OLD}, /* its bucket slid out (10 s buckets) */
        {-3600 * SEC, INGEST_TOO_OLD},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        ingest_result_t got = s_bounce(&fx, "a", T0 + cases[i].offset_ms, T0, 0);
        if (got != cases[i].expect)
            fail_msg("case %zu: %s", i, ingest_result_name(got));
    }
    assert_int_equal(ingest_counters(fx.in)->by_result[INGEST_FUTURE], 1);
    assert_int_equal(ingest_counters(fx.in)->by_result[INGEST_TOO_OLD], 2);
    /* a future event within the skew counts now, not later */
    window_key_t wk = {.scope = BS_SCOPE_SUBJECT, .fp = SUBJ_FP};
    assert_int_equal(window_count(ingest_window(fx.in), &wk, WINDOW_SITE_ALL, 10 * SEC, T0), 2);
    /* an event refused for its time is not marked seen: sent again later, when its time
     * fits, it counts */
    uint64_t seq = fx.seq;
    assert_int_equal(s_bounce(&fx, "a", T0 + 120 * SEC, T0, 0), INGEST_FUTURE);
    fx.seq = seq; /* the same event again */
    assert_int_equal(s_bounce(&fx, "a", T0 + 120 * SEC, T0 + 100 * SEC, 0), INGEST_COUNTED);
    s_teardown(&fx);
}

static void test_ingest_ledger_and_classes_do_not_count(void **state)
{
    rule_t rules[2] = {s_fleet_rule(), s_fleet_rule()};
    strcpy(rules[1].name, "autoreplies");
    rules[1].scope = BS_SCOPE_ORIG_SUBJECT;
    rules[1].classes = 1u << BS_CLASS_AUTOREPLY;
    s_fx_t fx;
    s_setup(&fx, rules, 2);
    ingest_key_t keys[2] = {{.scope = BS_SCOPE_SUBJECT, .fp = 1},
                            {.scope = BS_SCOPE_ORIG_SUBJECT, .fp = 2}};
    static const struct {
        bs_class_t cls;         /* class */
        bool ledger;            /* ledger hit */
        ingest_result_t expect; /* outcome */
    } cases[] = {
        {BS_CLASS_BOUNCE, false, INGEST_COUNTED},    {BS_CLASS_BOUNCE, true, INGEST_LEDGER},
        {BS_CLASS_NORMAL, false, INGEST_UNCOUNTED},  {BS_CLASS_MDN, false, INGEST_UNCOUNTED},
        {BS_CLASS_AUTOREPLY, false, INGEST_COUNTED}, /* rule 2 counts autoreplies */
        {BS_CLASS_AUTOREPLY, true, INGEST_LEDGER},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        ingest_event_t ev = {.site = "a",
                             .sensor = "s",
                             .seq = i,
                             .time_ms = T0,
                             .msg_class = cases[i].cls,
                             .keys = keys,
                             .nkeys = 2,
                             .ledger_hit = cases[i].ledger};
        ingest_result_t got = ingest_event(fx.in, &ev, T0);
        if (got != cases[i].expect)
            fail_msg("case %zu: %s", i, ingest_result_name(got));
    }
    window_t *w = ingest_window(fx.in);
    window_key_t subj = {.scope = BS_SCOPE_SUBJECT, .tally = ingest_rule_tally(fx.in, 0), .fp = 1};
    window_key_t orig = {
        .scope = BS_SCOPE_ORIG_SUBJECT, .tally = ingest_rule_tally(fx.in, 1), .fp = 2};
    assert_int_not_equal(subj.tally, orig.tally);
    assert_int_equal(window_count(w, &subj, WINDOW_SITE_ALL, 60 * SEC, T0), 1); /* the bounce */
    assert_int_equal(window_count(w, &orig, WINDOW_SITE_ALL, 60 * SEC, T0), 1); /* autoreply */
    s_teardown(&fx);
}

static void test_ingest_allowlisted_ip_and_key_are_not_counted(void **state)
{
    rule_t r = s_fleet_rule();
    s_fx_t fx;
    s_setup(&fx, &r, 1);
    allow_entry_t e = {0};
    allowlist_entry_parse(&e, ALLOW_NET, "192.0.2.0/24");
    ingest_allow_add(fx.in, &e, T0, NULL);
    assert_int_equal(s_bounce(&fx, "a", T0, T0, 0), INGEST_ALLOWLISTED);

    allowlist_remove(fx.allow, 1);
    allow_entry_t k = {.type = ALLOW_KEY, .scope = BS_SCOPE_ORIG_SUBJECT, .fp = SUBJ_FP};
    ingest_allow_add(fx.in, &k, T0, NULL);
    for (int i = 0; i < 50; i++) {
        const char *sites[] = {"a", "b", "c"};
        assert_int_equal(s_bounce(&fx, sites[i % 3], T0, T0, 0), INGEST_ALLOWLISTED);
    }
    assert_int_equal(decisions_count(fx.decisions), 0);
    assert_int_equal(ingest_counters(fx.in)->keys_allowlisted, 50);
    s_teardown(&fx);
}

static void test_ingest_allowlist_add_revokes_active_decision(void **state)
{
    rule_t r = s_fleet_rule();
    s_fx_t fx;
    s_setup(&fx, &r, 1);
    for (int i = 0; i < 30; i++) {
        const char *sites[] = {"a", "b", "c"};
        s_bounce(&fx, sites[i % 3], T0, T0, 0);
    }
    assert_int_equal(decisions_count(fx.decisions), 1);
    decision_change_t c;
    decisions_take_change(fx.decisions, &c);
    allow_entry_t k = {.type = ALLOW_KEY, .scope = BS_SCOPE_SUBJECT, .fp = SUBJ_FP};
    size_t revoked = 0;
    ingest_allow_add(fx.in, &k, T0 + SEC, &revoked);
    assert_int_equal(revoked, 1);
    assert_int_equal(decisions_count(fx.decisions), 0);
    assert_int_equal(decisions_take_change(fx.decisions, &c), 1);
    assert_int_equal(c.kind, DECISION_REMOVE);
    assert_int_equal(c.why, DECISION_WHY_ALLOWLISTED);
    /* and the wave going on does not bring it back */
    for (int i = 0; i < 30; i++) {
        const char *sites[] = {"a", "b", "c"};
        s_bounce(&fx, sites[i % 3], T0 + 2 * SEC, T0 + 2 * SEC, 0);
    }
    assert_int_equal(decisions_count(fx.decisions), 0);
    s_teardown(&fx);
}

static void test_ingest_site_allowlist_suppresses_local_decision(void **state)
{
    s_fx_t fx;
    s_setup(&fx, NULL, 0);
    allow_entry_t e = {0};
    allowlist_entry_parse(&e, ALLOW_SITE, "acme");
    ingest_allow_add(fx.in, &e, T0, NULL);
    s_storm(&fx, "acme", 60, T0, 60 * SEC, 1);
    assert_int_equal(decisions_count(fx.decisions), 0);
    assert_true(ingest_counters(fx.in)->allowlisted_fires > 0);
    s_teardown(&fx);
}

static void test_ingest_observe_mode_makes_observe_decision(void **state)
{
    rule_t r = s_fleet_rule();
    r.mode = BS_MODE_OBSERVE;
    s_fx_t fx;
    s_setup(&fx, &r, 1);
    for (int i = 0; i < 30; i++) {
        const char *sites[] = {"a", "b", "c"};
        s_bounce(&fx, sites[i % 3], T0, T0, 0);
    }
    assert_int_equal(decisions_count(fx.decisions), 1);
    assert_int_equal(decisions_count_enforced(fx.decisions), 0);
    decision_change_t c;
    decisions_take_change(fx.decisions, &c);
    assert_int_equal(c.decision.mode, BS_MODE_OBSERVE);
    assert_int_equal(ingest_counters(fx.in)->fires_observe, 1);
    assert_int_equal(ingest_counters(fx.in)->fires, 0);
    s_teardown(&fx);
}

static void test_ingest_continuing_wave_extends_then_expires(void **state)
{
    rule_t r = s_fleet_rule(); /* ttl 10 min */
    s_fx_t fx;
    s_setup(&fx, &r, 1);
    const char *sites[] = {"a", "b", "c"};
    /* 30 events every minute for 5 minutes */
    for (int m = 0; m < 5; m++)
        for (int i = 0; i < 30; i++)
            s_bounce(&fx, sites[i % 3], T0 + m * MIN, T0 + m * MIN, 0);
    assert_int_equal(decisions_count(fx.decisions), 1);
    decision_change_t c;
    int created = 0, extended = 0;
    while (decisions_take_change(fx.decisions, &c))
        c.why == DECISION_WHY_NEW ? created++ : extended++;
    assert_int_equal(created, 1);
    assert_int_equal(extended, 4);
    assert_int_equal(c.decision.expires_ms, T0 + 4 * MIN + 10 * MIN);
    /* quiet afterwards: expiry at the TTL after the last extension */
    assert_int_equal(ingest_tick(fx.in, T0 + 14 * MIN - 1, 1000), 0);
    assert_int_equal(ingest_tick(fx.in, T0 + 14 * MIN, 1000), 1);
    assert_int_equal(decisions_take_change(fx.decisions, &c), 1);
    assert_int_equal(c.kind, DECISION_REMOVE);
    assert_int_equal(c.why, DECISION_WHY_EXPIRED);
    /* the window has been swept too */
    assert_int_equal(window_keys(ingest_window(fx.in)), 0);
    s_teardown(&fx);
}

/* A decision in force is remembered per (rule, key) so a storm's hot key does not look it up
 * on every event; revoking it must end that at once: the storm's next event makes it again. */
static void test_ingest_revoked_decision_is_made_again_at_once(void **state)
{
    rule_t r = s_fleet_rule(); /* 30 in 120 s from 3 sites, ttl 10 min */
    s_fx_t fx;
    s_setup(&fx, &r, 1);
    const char *sites[] = {"a", "b", "c"};
    for (int i = 0; i < 60; i++)
        s_bounce(&fx, sites[i % 3], T0 + i * 100, T0 + i * 100, 0);
    const decision_t *found[2];
    assert_int_equal(decisions_find_key(fx.decisions, BS_SCOPE_SUBJECT, SUBJ_FP, found, 2), 1);
    char id[DECISION_ID_LEN + 1];
    memcpy(id, found[0]->id, sizeof(id));
    assert_int_equal(ingest_counters(fx.in)->decisions_created, 1);
    assert_int_equal(decisions_remove(fx.decisions, id, DECISION_WHY_REVOKED, T0 + 6 * SEC), 0);
    assert_int_equal(decisions_count(fx.decisions), 0);
    s_bounce(&fx, "a", T0 + 7 * SEC, T0 + 7 * SEC, 0);
    assert_int_equal(decisions_count(fx.decisions), 1);
    assert_int_equal(ingest_counters(fx.in)->decisions_created, 2);
    /* and in force again: the rest of the storm changes nothing */
    for (int i = 0; i < 30; i++)
        s_bounce(&fx, sites[i % 3], T0 + 8 * SEC, T0 + 8 * SEC, 0);
    assert_int_equal(ingest_counters(fx.in)->decisions_created, 2);
    assert_int_equal(ingest_counters(fx.in)->decisions_extended, 0);
    s_teardown(&fx);
}

/* A bounce with only a subject key fp, from site at time t (received then). */
static void s_subject_bounce(s_fx_t *fx, const char *site, uint64_t fp, int64_t t)
{
    ingest_key_t key = {.scope = BS_SCOPE_SUBJECT, .fp = fp, .text = SUBJ, .text_len = 4};
    ingest_event_t ev = {
        .site = site,
        .sensor = "mx1",
        .seq = ++fx->seq,
        .time_ms = t,
        .msg_class = BS_CLASS_BOUNCE,
        .keys = &key,
        .nkeys = 1,
    };
    assert_int_equal(ingest_event(fx->in, &ev, t), INGEST_COUNTED);
}

/* The in-force cache remembers "in force until T" across other decisions' changes; a
 * decision that expires (TTL shorter than extend_min, so T is later than its expiry) must
 * be made again by the storm's next event, not hidden by the cached T. */
static void test_ingest_expired_decision_is_made_again_at_once(void **state)
{
    rule_t r = s_fleet_rule(); /* 30 in 120 s from 3 sites */
    r.ttl_ms = 30 * SEC;       /* extend_min is 60 s: in force until 60 s after the firing */
    s_fx_t fx;
    s_setup(&fx, &r, 1);
    const char *sites[] = {"a", "b", "c"};
    for (int i = 0; i < 30; i++)
        s_subject_bounce(&fx, sites[i % 3], SUBJ_FP, T0 + i * 100);
    assert_int_equal(ingest_counters(fx.in)->decisions_created, 1);
    /* the storm goes on (cached: in force), other keys' decisions come and go meanwhile */
    for (int i = 0; i < 25; i++) {
        s_subject_bounce(&fx, sites[i % 3], SUBJ_FP, T0 + 4 * SEC + i * SEC);
        for (int j = 0; j < 30; j++)
            s_subject_bounce(&fx, sites[j % 3], 0x1000 + (uint64_t)i, T0 + 4 * SEC + i * SEC);
    }
    assert_int_equal(ingest_counters(fx.in)->decisions_created, 26);
    assert_int_equal(ingest_counters(fx.in)->decisions_extended, 0);
    /* the first decision expires at T0 + 32.9 s, the next storm event makes it again */
    assert_int_equal(ingest_tick(fx.in, T0 + 33 * SEC, 0), 1);
    s_subject_bounce(&fx, "a", SUBJ_FP, T0 + 34 * SEC);
    assert_int_equal(ingest_counters(fx.in)->decisions_created, 27);
    const decision_t *found[2];
    assert_int_equal(decisions_find_key(fx.decisions, BS_SCOPE_SUBJECT, SUBJ_FP, found, 2), 1);
    assert_int_equal(found[0]->expires_ms, T0 + 64 * SEC);
    s_teardown(&fx);
}

/* Many decisions (the cache grows with them, dropping what it knew): each key is still in
 * force exactly while its decision is; one revoked among them is made again, only it. */
static void test_ingest_many_decisions_one_revoked(void **state)
{
    enum { NKEYS = 300 };
    rule_t r = s_fleet_rule();
    s_fx_t fx;
    s_setup(&fx, &r, 1);
    const char *sites[] = {"a", "b", "c"};
    for (int round = 0; round < 40; round++)
        for (uint64_t k = 0; k < NKEYS; k++)
            s_subject_bounce(&fx, sites[(round + k) % 3], 0x2000 + k, T0 + round * 100);
    assert_int_equal(decisions_count(fx.decisions), NKEYS);
    assert_int_equal(ingest_counters(fx.in)->decisions_created, NKEYS);
    const decision_t *found[2];
    assert_int_equal(decisions_find_key(fx.decisions, BS_SCOPE_SUBJECT, 0x2000 + 123, found, 2), 1);
    char id[DECISION_ID_LEN + 1];
    memcpy(id, found[0]->id, sizeof(id));
    assert_int_equal(decisions_remove(fx.decisions, id, DECISION_WHY_REVOKED, T0 + 5 * SEC), 0);
    for (uint64_t k = 0; k < NKEYS; k++)
        s_subject_bounce(&fx, sites[k % 3], 0x2000 + k, T0 + 6 * SEC);
    assert_int_equal(decisions_count(fx.decisions), NKEYS);
    assert_int_equal(ingest_counters(fx.in)->decisions_created, NKEYS + 1);
    assert_int_equal(decisions_find_key(fx.decisions, BS_SCOPE_SUBJECT, 0x2000 + 123, found, 2), 1);
    assert_string_not_equal(found[0]->id, id);
    /* 60 s after the firings: no longer in force long enough, every key is extended once */
    for (uint64_t k = 0; k < NKEYS; k++)
        s_subject_bounce(&fx, sites[k % 3], 0x2000 + k, T0 + 64 * SEC);
    assert_int_equal(ingest_counters(fx.in)->decisions_extended, NKEYS - 1);
    s_teardown(&fx);
}

static void test_ingest_invalid_names(void **state)
{
    rule_t r = s_fleet_rule();
    s_fx_t fx;
    s_setup(&fx, &r, 1);
    char longname[100];
    memset(longname, 'x', sizeof(longname) - 1);
    longname[sizeof(longname) - 1] = 0;
    const char *bad_sites[] = {NULL, "", longname};
    for (size_t i = 0; i < 3; i++) {
        ingest_event_t ev = {
            .site = bad_sites[i], .sensor = "s", .time_ms = T0, .msg_class = BS_CLASS_BOUNCE};
        assert_int_equal(ingest_event(fx.in, &ev, T0), INGEST_INVALID);
    }
    ingest_event_t ev = {.site = "a", .sensor = NULL, .time_ms = T0};
    assert_int_equal(ingest_event(fx.in, &ev, T0), INGEST_INVALID);
    assert_int_equal(ingest_counters(fx.in)->events_in, 4);
    assert_string_equal(ingest_result_name(INGEST_INVALID), "invalid");
    s_teardown(&fx);
}

/* A window at max_entries: an event none of whose keys fits is REFUSED (a drop the daemon
 * counts and shows), not UNCOUNTED; one that counts on a key already there is COUNTED and
 * only keys_refused shows the keys that did not fit. */
static void test_ingest_full_window_refuses(void **state)
{
    rule_t r = s_fleet_rule();
    s_fx_t fx;
    memset(&fx, 0, sizeof(fx));
    fx.decisions = decisions_new(1, 0, 0);
    fx.allow = allowlist_new();
    ingest_config_t cfg = {.rules = &r, .nrules = 1, .expected_keys = 64, .max_entries = 4};
    char err[128] = "";
    fx.in = ingest_new(&cfg, fx.decisions, fx.allow, err, sizeof(err));
    assert_non_null(fx.in);
    ingest_result_t res[3];
    for (uint64_t k = 0; k < 10; k++) {
        ingest_key_t key = {.scope = r.scope, .fp = 0x7000 + k, .text = "x", .text_len = 1};
        ingest_event_t ev = {.site = "acme",
                             .sensor = "mx1",
                             .seq = ++fx.seq,
                             .time_ms = T0,
                             .msg_class = BS_CLASS_BOUNCE,
                             .keys = &key,
                             .nkeys = 1};
        ingest_result_t got = ingest_event(fx.in, &ev, T0);
        assert_int_equal(got, k < 4 ? INGEST_COUNTED : INGEST_REFUSED);
    }
    assert_int_equal(ingest_counters(fx.in)->by_result[INGEST_REFUSED], 6);
    assert_int_equal(ingest_counters(fx.in)->keys_refused, 6);
    assert_true(window_counters(ingest_window(fx.in))->refused_full >= 6);
    /* one key known, one new: counted, the new one refused; the batch path agrees */
    ingest_key_t two[2] = {{.scope = r.scope, .fp = 0x7000, .text = "x", .text_len = 1},
                           {.scope = r.scope, .fp = 0x7FFF, .text = "y", .text_len = 1}};
    ingest_event_t evs[3];
    for (int i = 0; i < 3; i++)
        evs[i] = (ingest_event_t){.site = "acme",
                                  .sensor = "mx1",
                                  .seq = ++fx.seq,
                                  .time_ms = T0,
                                  .msg_class = BS_CLASS_BOUNCE,
                                  .keys = i == 0 ? two : &two[1],
                                  .nkeys = i == 0 ? 2 : 1};
    ingest_batch(fx.in, evs, 3, T0, res);
    assert_int_equal(res[0], INGEST_COUNTED);
    assert_int_equal(res[1], INGEST_REFUSED);
    assert_int_equal(res[2], INGEST_REFUSED);
    assert_int_equal(ingest_counters(fx.in)->keys_refused, 9);
    assert_string_equal(ingest_result_name(INGEST_REFUSED), "refused");
    s_teardown(&fx);
}

static void s_explain_cb(const rule_t *r, rules_verdict_t v, const evidence_t *ev, void *arg)
{
    char *out = arg;
    size_t len = strlen(out);
    snprintf(out + len, 256 - len, "%s=%s/%u;", r->name, rules_verdict_name(v),
             (unsigned)ev->events);
}

static void test_ingest_explain_says_why_not(void **state)
{
    s_fx_t fx;
    s_setup(&fx, NULL, 0);
    s_storm(&fx, "acme", 10, T0, SEC, 1);
    char out[256] = "";
    ingest_explain(fx.in, BS_SCOPE_SUBJECT, SUBJ_FP, "acme", T0 + 2 * SEC, s_explain_cb, out);
    assert_string_equal(out, "fleet_subject=too few events/10;local_subject=too few events/10;");
    out[0] = 0;
    ingest_explain(fx.in, BS_SCOPE_SUBJECT, SUBJ_FP, NULL, T0 + 2 * SEC, s_explain_cb, out);
    assert_string_equal(out, "fleet_subject=too few events/10;");
    s_teardown(&fx);
}

static void test_ingest_rejects_bad_config(void **state)
{
    decisions_t *t = decisions_new(1, 0, 0);
    allowlist_t *al = allowlist_new();
    char err[128];
    rule_t bad = s_fleet_rule();
    bad.min_events = 0;
    ingest_config_t cfg = {.rules = &bad, .nrules = 1};
    assert_null(ingest_new(&cfg, t, al, err, sizeof(err)));
    assert_non_null(strstr(err, "min_events"));
    rule_t twice[2] = {s_fleet_rule(), s_fleet_rule()};
    cfg.rules = twice;
    cfg.nrules = 2;
    assert_null(ingest_new(&cfg, t, al, err, sizeof(err)));
    assert_non_null(strstr(err, "twice"));
    /* a negative extend_min would let an extension move an expiry earlier */
    cfg.rules = twice;
    cfg.nrules = 1;
    cfg.extend_min_ms = -1;
    assert_null(ingest_new(&cfg, t, al, err, sizeof(err)));
    assert_non_null(strstr(err, "extend_min"));
    cfg.extend_min_ms = 0;
    /* a window not a multiple of the resolution is rounded up */
    rule_t odd = s_fleet_rule();
    odd.window_ms = 125 * SEC;
    cfg.rules = &odd;
    cfg.nrules = 1;
    cfg.expected_keys = 10;
    ingest_t *in = ingest_new(&cfg, t, al, err, sizeof(err));
    assert_non_null(in);
    assert_int_equal(ingest_span_ms(in), 130 * SEC);
    ingest_destroy(&in);
    decisions_destroy(&t);
    allowlist_destroy(&al);
}

/* One run of test_ingest_batch_is_the_events_one_by_one with these rules. */
static void s_batch_matches(const rule_t *rules, size_t nrules)
{
    enum { N = 1200 };
    static const uint8_t ip[4] = {192, 0, 2, 9};
    static ingest_key_t keys[N][2];
    static ingest_event_t evs[N];
    static const char *sites[] = {"acme", "globex", "initech"};
    for (int i = 0; i < N; i++) {
        uint64_t subj = i % 7 ? SUBJ_FP : 0x7000 + (uint64_t)i; /* a storm, and a long tail */
        keys[i][0] = (ingest_key_t){
            .scope = BS_SCOPE_SUBJECT, .fp = subj, .text = SUBJ, .text_len = strlen(SUBJ)};
        keys[i][1] = (ingest_key_t){.scope = BS_SCOPE_CLIENT_IP,
                                    .fp = 0x1919 + (uint64_t)(i % 3),
                                    .text = "192.0.2.9",
                                    .text_len = 9};
        evs[i] = (ingest_event_t){
            .site = sites[(i / 5) % 3],          /* a batch changes site every five events */
            .sensor = i % 5 < 3 ? "mx1" : "mx2", /* changes within a site's run */
            .nrule_labels = (size_t)(i % 2),
            .seq = (uint64_t)i + 1 - (i % 5 < 3 ? 0 : 2), /* mx2 reuses mx1's numbers */
            .time_ms = T0 + i * 50,
            .msg_class = BS_CLASS_BOUNCE,
            .client_ip = ip,
            .client_ip_len = 4,
            .keys = keys[i],
            .nkeys = 2,
        };
    }
    evs[41].seq = evs[40].seq;         /* a duplicate of the event before (same site) */
    evs[42].time_ms = T0 - 3600 * SEC; /* too old */
    evs[77].site = "";                 /* invalid */
    static const size_t batch_sizes[] = {1, 3, 8, 9, 50, 200};
    for (size_t bi = 0; bi < sizeof(batch_sizes) / sizeof(batch_sizes[0]); bi++) {
        s_fx_t one, bat;
        s_setup(&one, rules, nrules);
        s_setup(&bat, rules, nrules);
        ingest_result_t res[200];
        for (size_t i = 0; i < N; i += batch_sizes[bi]) {
            size_t n = N - i < batch_sizes[bi] ? N - i : batch_sizes[bi];
            int64_t now = evs[i + n - 1].time_ms > T0 ? evs[i + n - 1].time_ms : T0;
            ingest_batch(bat.in, &evs[i], n, now, res);
            for (size_t j = 0; j < n; j++) {
                ingest_result_t want = ingest_event(one.in, &evs[i + j], now);
                if (res[j] != want)
                    fail_msg("batch %zu, event %zu: %s, one by one %s", batch_sizes[bi], i + j,
                             ingest_result_name(res[j]), ingest_result_name(want));
            }
        }
        const ingest_counters_t *a = ingest_counters(one.in), *b = ingest_counters(bat.in);
        assert_memory_equal(a, b, sizeof(*a));
        assert_int_equal(a->by_result[INGEST_DUPLICATE], 1);
        assert_int_equal(a->by_result[INGEST_TOO_OLD], 1);
        assert_int_equal(a->by_result[INGEST_INVALID], 1);
        assert_true(a->decisions_created > 0);
        assert_int_equal(decisions_count(one.decisions), decisions_count(bat.decisions));
        for (int tally = 0; tally < (nrules ? 2 : 1); tally++) {
            window_key_t wk = {.scope = BS_SCOPE_SUBJECT, .tally = (uint8_t)tally, .fp = SUBJ_FP};
            assert_true(window_count(ingest_window(one.in), &wk, WINDOW_SITE_ALL, 300 * SEC,
                                     T0 + N * 50) > 0);
            for (int si = 0; si < 3; si++) {
                int s1 = window_site_find(ingest_window(one.in), sites[si]);
                int s2 = window_site_find(ingest_window(bat.in), sites[si]);
                assert_int_equal(
                    window_count(ingest_window(one.in), &wk, (unsigned)s1, 300 * SEC, T0 + N * 50),
                    window_count(ingest_window(bat.in), &wk, (unsigned)s2, 300 * SEC, T0 + N * 50));
            }
        }
        s_teardown(&one);
        s_teardown(&bat);
    }
}

/* ingest_batch() is ingest_event() on each event in order, with the window's cache misses
 * overlapped and names looked up once per run: for batches shorter and longer than its
 * prefetch distance, with sites and sensors changing within a batch, an invalid name, a
 * duplicate, a too-old event, a storm that fires mid-batch, and rules that count keys
 * under two tallies, both give the same outcomes, counters, window counts and
 * decisions. */
static void test_ingest_batch_is_the_events_one_by_one(void **state)
{
    /* the shipped rules, plus one that counts rule-matched bounces only (a second tally) */
    size_t ndef = 0;
    const rule_t *def = rules_defaults(&ndef);
    rule_t rules[INGEST_RULES_MAX];
    memcpy(rules, def, ndef * sizeof(*rules));
    rules[ndef] = def[0];
    snprintf(rules[ndef].name, sizeof(rules[ndef].name), "matched_subject");
    rules[ndef].require_rule_match = true;
    rules[ndef].min_events = 30;
    for (int set = 0; set < 2; set++)
        s_batch_matches(set ? rules : NULL, set ? ndef + 1 : 0);
}

/* The scopes whose keys it reads: those its rules count, and sender_domain (allowlists). */
static void test_ingest_scopes_are_the_counted_and_sender_domain(void **state)
{
    (void)state;
    s_fx_t fx;
    size_t n;
    const rule_t *defaults = rules_defaults(&n);
    s_setup(&fx, defaults, n);
    assert_int_equal(ingest_scopes(fx.in), 1u << BS_SCOPE_SUBJECT | 1u << BS_SCOPE_ORIG_SUBJECT |
                                               1u << BS_SCOPE_CLIENT_IP |
                                               1u << BS_SCOPE_SENDER_DOMAIN);
    s_teardown(&fx);
    rule_t net = defaults[0];
    net.scope = BS_SCOPE_CLIENT_NET;
    s_setup(&fx, &net, 1);
    assert_int_equal(ingest_scopes(fx.in),
                     1u << BS_SCOPE_CLIENT_NET | 1u << BS_SCOPE_SENDER_DOMAIN);
    s_teardown(&fx);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_ingest_one_site_storm_makes_no_fleet_decision),
        cmocka_unit_test(test_ingest_three_sites_storm_makes_one_decision),
        cmocka_unit_test(test_ingest_site_quorum_and_share),
        cmocka_unit_test(test_ingest_local_rule_blocks_at_that_site_only),
        cmocka_unit_test(test_ingest_replayed_spool_is_not_counted_twice),
        cmocka_unit_test(test_ingest_spool_replayed_twice_across_minutes_is_not_counted_again),
        cmocka_unit_test(test_ingest_late_event_is_duplicate_or_behind),
        cmocka_unit_test(test_ingest_clock_skew_drops),
        cmocka_unit_test(test_ingest_ledger_and_classes_do_not_count),
        cmocka_unit_test(test_ingest_allowlisted_ip_and_key_are_not_counted),
        cmocka_unit_test(test_ingest_allowlist_add_revokes_active_decision),
        cmocka_unit_test(test_ingest_site_allowlist_suppresses_local_decision),
        cmocka_unit_test(test_ingest_observe_mode_makes_observe_decision),
        cmocka_unit_test(test_ingest_continuing_wave_extends_then_expires),
        cmocka_unit_test(test_ingest_revoked_decision_is_made_again_at_once),
        cmocka_unit_test(test_ingest_expired_decision_is_made_again_at_once),
        cmocka_unit_test(test_ingest_many_decisions_one_revoked),
        cmocka_unit_test(test_ingest_invalid_names),
        cmocka_unit_test(test_ingest_full_window_refuses),
        cmocka_unit_test(test_ingest_explain_says_why_not),
        cmocka_unit_test(test_ingest_rejects_bad_config),
        cmocka_unit_test(test_ingest_batch_is_the_events_one_by_one),
        cmocka_unit_test(test_ingest_scopes_are_the_counted_and_sender_domain),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
