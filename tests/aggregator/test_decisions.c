/* test_decisions - creation, extension, expiry, revocation, sequence log and snapshots. */
#include <ctype.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "decisions.h"

#define SEC  1000LL
#define MIN  (60 * SEC)
#define HOUR (60 * MIN)
#define T0   (1700000000LL * SEC)

static decision_t s_rule_decision(bs_scope_t scope, uint64_t fp, bs_reach_t reach, const char *site,
                                  int64_t expires_ms)
{
    decision_t d = {0};
    d.scope = scope;
    d.fp = fp;
    decisions_strlcpy(d.value, "cheap pills", DECISION_VALUE_MAX);
    d.action = BS_ACTION_REJECT;
    d.reach = reach;
    decisions_strlcpy(d.site, site, DECISION_NAME_MAX);
    decisions_strlcpy(d.reason, "wave", DECISION_REASON_MAX);
    d.expires_ms = expires_ms;
    d.origin = BS_ORIGIN_RULE;
    decisions_strlcpy(d.origin_who, "fleet_subject", DECISION_NAME_MAX);
    d.has_evidence = true;
    d.evidence.events = 400;
    d.evidence.sites = 3;
    return d;
}

static void test_decisions_create_assigns_id_seq_epoch(void **state)
{
    decisions_t *t = decisions_new(7, 0, 0);
    decision_t d = s_rule_decision(BS_SCOPE_SUBJECT, 42, BS_REACH_FLEET, "", T0 + HOUR);
    const decision_t *got = NULL;
    assert_int_equal(decisions_propose(t, &d, MIN, T0, &got), DECISIONS_CREATED);
    assert_non_null(got);
    assert_int_equal(strlen(got->id), DECISION_ID_LEN);
    for (const char *p = got->id; *p; p++)
        assert_non_null(strchr("0123456789ABCDEFGHJKMNPQRSTVWXYZ", *p));
    assert_int_equal(got->seq, 1);
    assert_int_equal(got->epoch, 7);
    assert_int_equal(got->created_ms, T0);
    assert_int_equal(got->expires_ms, T0 + HOUR);
    assert_int_equal(decisions_count(t), 1);
    assert_int_equal(decisions_count_enforced(t), 1);
    assert_int_equal(decisions_pending(t), 1);
    decision_change_t c;
    assert_int_equal(decisions_take_change(t, &c), 1);
    assert_int_equal(c.kind, DECISION_UPSERT);
    assert_int_equal(c.why, DECISION_WHY_NEW);
    assert_int_equal(c.seq, 1);
    assert_int_equal(c.epoch, 7);
    assert_string_equal(c.decision.id, got->id);
    assert_int_equal(decisions_take_change(t, &c), 0);
    decisions_destroy(&t);
    assert_null(t);
    decisions_destroy(&t);
}

static void test_decisions_continuing_wave_extends(void **state)
{
    decisions_t *t = decisions_new(1, 0, 0);
    decision_t d = s_rule_decision(BS_SCOPE_SUBJECT, 42, BS_REACH_FLEET, "", T0 + HOUR);
    const decision_t *first, *again;
    decisions_propose(t, &d, MIN, T0, &first);
    char id[DECISION_ID_LEN + 1];
    strcpy(id, first->id);
    /* 10 minutes later the wave goes on: same decision, later expiry, fresh evidence */
    d.expires_ms = T0 + 10 * MIN + HOUR;
    d.evidence.events = 900;
    assert_int_equal(decisions_propose(t, &d, MIN, T0 + 10 * MIN, &again), DECISIONS_EXTENDED);
    assert_string_equal(again->id, id);
    assert_int_equal(again->expires_ms, T0 + 10 * MIN + HOUR);
    assert_int_equal(again->created_ms, T0);
    assert_int_equal(again->evidence.events, 900);
    assert_int_equal(again->seq, 2);
    assert_int_equal(decisions_count(t), 1);
    decision_change_t c;
    decisions_take_change(t, &c);
    decisions_take_change(t, &c);
    assert_int_equal(c.why, DECISION_WHY_EXTENDED);
    assert_int_equal(c.kind, DECISION_UPSERT);
    decisions_destroy(&t);
}

/* A decision made before any text reached its key shows the fingerprint; the first extension
 * that brings the text gives it the text, and a text once there stays. */
static void test_decisions_extension_brings_the_text_a_fingerprint_lacked(void **state)
{
    decisions_t *t = decisions_new(1, 0, 0);
    decision_t d = s_rule_decision(BS_SCOPE_SUBJECT, 0xabc, BS_REACH_FLEET, "", T0 + HOUR);
    decisions_strlcpy(d.value, "0000000000000abc", DECISION_VALUE_MAX);
    const decision_t *got;
    decisions_propose(t, &d, MIN, T0, &got);
    assert_string_equal(got->value, "0000000000000abc");
    /* not an extension yet: nothing changes, the text neither */
    decisions_strlcpy(d.value, "cheap pills", DECISION_VALUE_MAX);
    d.expires_ms = T0 + HOUR + 30 * SEC;
    assert_int_equal(decisions_propose(t, &d, MIN, T0 + 30 * SEC, &got), DECISIONS_UNCHANGED);
    assert_string_equal(got->value, "0000000000000abc");
    d.expires_ms = T0 + HOUR + 2 * MIN;
    assert_int_equal(decisions_propose(t, &d, MIN, T0 + 2 * MIN, &got), DECISIONS_EXTENDED);
    assert_string_equal(got->value, "cheap pills");
    decision_change_t c;
    decisions_take_change(t, &c);
    decisions_take_change(t, &c);
    assert_string_equal(c.decision.value, "cheap pills");
    /* an extension without text, or with another, leaves the text */
    decisions_strlcpy(d.value, "0000000000000abc", DECISION_VALUE_MAX);
    d.expires_ms = T0 + HOUR + 4 * MIN;
    assert_int_equal(decisions_propose(t, &d, MIN, T0 + 4 * MIN, &got), DECISIONS_EXTENDED);
    assert_string_equal(got->value, "cheap pills");
    decisions_strlcpy(d.value, "other", DECISION_VALUE_MAX);
    d.expires_ms = T0 + HOUR + 6 * MIN;
    assert_int_equal(decisions_propose(t, &d, MIN, T0 + 6 * MIN, &got), DECISIONS_EXTENDED);
    assert_string_equal(got->value, "cheap pills");
    decisions_destroy(&t);
}

static void test_decisions_small_extension_changes_nothing(void **state)
{
    decisions_t *t = decisions_new(1, 0, 0);
    decision_t d = s_rule_decision(BS_SCOPE_SUBJECT, 42, BS_REACH_FLEET, "", T0 + HOUR);
    decisions_propose(t, &d, MIN, T0, NULL);
    d.expires_ms = T0 + HOUR + 59 * SEC; /* < extend_min later: no change published */
    assert_int_equal(decisions_propose(t, &d, MIN, T0 + 59 * SEC, NULL), DECISIONS_UNCHANGED);
    assert_int_equal(decisions_seq(t), 1);
    assert_int_equal(decisions_pending(t), 1);
    d.expires_ms = T0 + HOUR + MIN;
    assert_int_equal(decisions_propose(t, &d, MIN, T0 + MIN, NULL), DECISIONS_EXTENDED);
    decisions_destroy(&t);
}

/* A stronger action is taken even for a shorter time (the expiry stays); a weaker one for
 * a shorter time changes nothing; an operator's all mail is taken by itself too. */
static void test_decisions_stronger_action_is_taken_without_a_later_expiry(void **state)
{
    (void)state;
    decisions_t *t = decisions_new(1, 0, 0);
    decision_t d = s_rule_decision(BS_SCOPE_SUBJECT, 42, BS_REACH_FLEET, "", T0 + 2 * HOUR);
    d.action = BS_ACTION_TAG;
    const decision_t *out = NULL;
    decisions_propose(t, &d, 0, T0, NULL);
    d.expires_ms = T0 + HOUR;
    d.action = BS_ACTION_REJECT;
    assert_int_equal(decisions_propose(t, &d, 0, T0, &out), DECISIONS_EXTENDED);
    assert_int_equal(out->action, BS_ACTION_REJECT);
    assert_true(out->expires_ms == T0 + 2 * HOUR);
    d.action = BS_ACTION_TEMPFAIL;
    assert_int_equal(decisions_propose(t, &d, 0, T0, &out), DECISIONS_UNCHANGED);
    assert_int_equal(out->action, BS_ACTION_REJECT);
    d.origin = BS_ORIGIN_CLI;
    d.all_mail = true;
    assert_int_equal(decisions_propose(t, &d, 0, T0, &out), DECISIONS_EXTENDED);
    assert_true(out->all_mail);
    assert_true(out->expires_ms == T0 + 2 * HOUR);
    assert_int_equal(decisions_seq(t), 3);
    decisions_destroy(&t);
}

static void test_decisions_identity_includes_reach_site_and_mode(void **state)
{
    decisions_t *t = decisions_new(1, 0, 0);
    decision_t fleet = s_rule_decision(BS_SCOPE_SUBJECT, 42, BS_REACH_FLEET, "", T0 + HOUR);
    decision_t local_a = s_rule_decision(BS_SCOPE_SUBJECT, 42, BS_REACH_LOCAL, "a", T0 + HOUR);
    decision_t local_b = s_rule_decision(BS_SCOPE_SUBJECT, 42, BS_REACH_LOCAL, "b", T0 + HOUR);
    decision_t observe = fleet;
    observe.mode = BS_MODE_OBSERVE;
    decision_t ip = s_rule_decision(BS_SCOPE_CLIENT_IP, 42, BS_REACH_FLEET, "", T0 + HOUR);
    assert_int_equal(decisions_propose(t, &fleet, MIN, T0, NULL), DECISIONS_CREATED);
    assert_int_equal(decisions_propose(t, &local_a, MIN, T0, NULL), DECISIONS_CREATED);
    assert_int_equal(decisions_propose(t, &local_b, MIN, T0, NULL), DECISIONS_CREATED);
    assert_int_equal(decisions_propose(t, &observe, MIN, T0, NULL), DECISIONS_CREATED);
    assert_int_equal(decisions_propose(t, &ip, MIN, T0, NULL), DECISIONS_CREATED);
    assert_int_equal(decisions_count(t), 5);
    assert_int_equal(decisions_count_enforced(t), 4);
    const decision_t *found[8];
    assert_int_equal(decisions_find_key(t, BS_SCOPE_SUBJECT, 42, found, 8), 4);
    assert_int_equal(decisions_find_key(t, BS_SCOPE_CLIENT_IP, 42, found, 8), 1);
    assert_int_equal(decisions_find_key(t, BS_SCOPE_CLIENT_IP, 43, found, 8), 0);
    /* a fleet proposal's site is ignored */
    decision_t fleet_site = fleet;
    strcpy(fleet_site.site, "x");
    fleet_site.expires_ms += HOUR;
    assert_int_equal(decisions_propose(t, &fleet_site, MIN, T0, NULL), DECISIONS_EXTENDED);
    decisions_destroy(&t);
}

static void test_decisions_extension_keeps_stronger_action(void **state)
{
    decisions_t *t = decisions_new(1, 0, 0);
    decision_t d = s_rule_decision(BS_SCOPE_SUBJECT, 42, BS_REACH_FLEET, "", T0 + HOUR);
    d.action = BS_ACTION_TEMPFAIL;
    const decision_t *got;
    decisions_propose(t, &d, 0, T0, &got);
    d.action = BS_ACTION_REJECT;
    d.expires_ms += MIN;
    decisions_propose(t, &d, 0, T0, &got);
    assert_int_equal(got->action, BS_ACTION_REJECT);
    d.action = BS_ACTION_TAG;
    d.expires_ms += MIN;
    decisions_propose(t, &d, 0, T0, &got);
    assert_int_equal(got->action, BS_ACTION_REJECT);
    decisions_destroy(&t);
}

static void test_decisions_expire_at_ttl_in_expiry_order(void **state)
{
    decisions_t *t = decisions_new(1, 0, 0);
    decision_t a = s_rule_decision(BS_SCOPE_SUBJECT, 1, BS_REACH_FLEET, "", T0 + 30 * MIN);
    decision_t b = s_rule_decision(BS_SCOPE_SUBJECT, 2, BS_REACH_FLEET, "", T0 + 10 * MIN);
    decision_t c = s_rule_decision(BS_SCOPE_SUBJECT, 3, BS_REACH_FLEET, "", T0 + HOUR);
    decisions_propose(t, &a, MIN, T0, NULL);
    decisions_propose(t, &b, MIN, T0, NULL);
    decisions_propose(t, &c, MIN, T0, NULL);
    decision_change_t ch;
    while (decisions_take_change(t, &ch))
        ;
    assert_int_equal(decisions_next_expiry(t), T0 + 10 * MIN);
    assert_int_equal(decisions_expire(t, T0 + 10 * MIN - 1), 0);
    assert_int_equal(decisions_expire(t, T0 + 30 * MIN), 2);
    assert_int_equal(decisions_count(t), 1);
    assert_int_equal(decisions_take_change(t, &ch), 1);
    assert_int_equal(ch.kind, DECISION_REMOVE);
    assert_int_equal(ch.why, DECISION_WHY_EXPIRED);
    assert_int_equal(ch.decision.fp, 2);
    assert_int_equal(ch.seq, 4);
    assert_int_equal(decisions_take_change(t, &ch), 1);
    assert_int_equal(ch.decision.fp, 1);
    assert_int_equal(ch.seq, 5);
    assert_int_equal(decisions_next_expiry(t), T0 + HOUR);
    decisions_expire(t, T0 + HOUR);
    assert_int_equal(decisions_next_expiry(t), INT64_MAX);
    decisions_destroy(&t);
}

static int s_min_expiry(const decision_t *d, void *arg)
{
    int64_t *min = arg;
    if (d->expires_ms < *min)
        *min = d->expires_ms;
    return 0;
}

/* The earliest expiry is kept, not scanned for on every call: through random creations,
 * extensions (of the earliest one too), revocations and expiries it always equals a scan
 * of the table. */
static void test_decisions_next_expiry_follows_every_change(void **state)
{
    decisions_t *t = decisions_new(1, 0, 0);
    uint64_t x = 0x9E3779B97F4A7C15ULL;
    int64_t now = T0;
    for (int i = 0; i < 5000; i++) {
        x ^= x << 13, x ^= x >> 7, x ^= x << 17;
        uint64_t fp = 1 + x % 50;
        switch ((x >> 8) % 4) {
        case 0:
        case 1: { /* create, or extend when it exists */
            decision_t d = s_rule_decision(BS_SCOPE_SUBJECT, fp, BS_REACH_FLEET, "",
                                           now + MIN + (int64_t)((x >> 16) % (60 * MIN)));
            decisions_propose(t, &d, MIN, now, NULL);
            break;
        }
        case 2: { /* revoke */
            const decision_t *d = decisions_find_identity(t, BS_SCOPE_SUBJECT, fp, BS_REACH_FLEET,
                                                          "", BS_MODE_ENFORCE);
            if (d) {
                char id[DECISION_ID_LEN + 1];
                memcpy(id, d->id, sizeof(id));
                assert_int_equal(decisions_remove(t, id, DECISION_WHY_REVOKED, now), 0);
            }
            break;
        }
        default: /* time passes, some expire */
            now += (int64_t)((x >> 16) % (5 * MIN));
            decisions_expire(t, now);
            break;
        }
        decision_change_t ch;
        while (decisions_take_change(t, &ch))
            ;
        int64_t want = INT64_MAX;
        decisions_foreach(t, NULL, s_min_expiry, &want);
        if (decisions_next_expiry(t) != want)
            fail_msg("step %d: next expiry %lld, table says %lld", i,
                     (long long)decisions_next_expiry(t), (long long)want);
    }
    decisions_destroy(&t);
}

static void test_decisions_revoke_by_id_tolerates_misreads(void **state)
{
    decisions_t *t = decisions_new(1, 0, 0);
    decision_t d = s_rule_decision(BS_SCOPE_SUBJECT, 42, BS_REACH_FLEET, "", T0 + HOUR);
    const decision_t *got;
    decisions_propose(t, &d, MIN, T0, &got);
    char typed[DECISION_ID_LEN + 1];
    strcpy(typed, got->id);
    for (char *p = typed; *p; p++) {
        if (*p == '0')
            *p = 'o';
        else if (*p == '1')
            *p = 'l';
        else if (*p >= 'A' && *p <= 'Z')
            *p = (char)(*p - 'A' + 'a');
    }
    assert_non_null(decisions_find(t, typed));
    assert_int_equal(decisions_remove(t, "NOTANID!", DECISION_WHY_REVOKED, T0), -1);
    assert_int_equal(decisions_remove(t, "short", DECISION_WHY_REVOKED, T0), -1);
    assert_int_equal(decisions_remove(t, typed, DECISION_WHY_REVOKED, T0), 0);
    assert_int_equal(decisions_count(t), 0);
    assert_null(decisions_find(t, typed));
    assert_int_equal(decisions_remove(t, typed, DECISION_WHY_REVOKED, T0), -1);
    decision_change_t ch;
    decisions_take_change(t, &ch);
    decisions_take_change(t, &ch);
    assert_int_equal(ch.kind, DECISION_REMOVE);
    assert_int_equal(ch.why, DECISION_WHY_REVOKED);
    assert_string_equal(decisions_why_name(ch.why), "revoked");
    /* the key can be decided again: a new decision with a new id */
    const decision_t *again;
    assert_int_equal(decisions_propose(t, &d, MIN, T0, &again), DECISIONS_CREATED);
    assert_string_not_equal(again->id, ch.decision.id);
    decisions_destroy(&t);
}

static void test_decisions_seq_strictly_increasing_over_all_changes(void **state)
{
    decisions_t *t = decisions_new(99, 1000, 0);
    uint64_t last = decisions_seq(t);
    assert_int_equal(last, 1000);
    for (int i = 0; i < 200; i++) {
        decision_t d = s_rule_decision(BS_SCOPE_SUBJECT, (uint64_t)(i % 50), BS_REACH_FLEET, "",
                                       T0 + HOUR + i * MIN);
        const decision_t *got;
        decisions_propose(t, &d, MIN, T0 + i * MIN, &got);
        if (i % 7 == 0)
            decisions_remove(t, got->id, DECISION_WHY_REVOKED, T0 + i * MIN);
        decisions_expire(t, T0 + i * MIN);
    }
    decision_change_t c;
    size_t n = 0;
    while (decisions_take_change(t, &c)) {
        assert_int_equal(c.seq, last + 1);
        assert_int_equal(c.epoch, 99);
        assert_int_equal(c.decision.seq, c.seq);
        last = c.seq;
        n++;
    }
    assert_int_equal(last, decisions_seq(t));
    assert_true(n > 200);
    decisions_destroy(&t);
}

typedef struct {
    uint64_t seqs[64]; /* seqs seen */
    size_t n;          /* how many */
} s_seen_t;

static int s_collect(const decision_change_t *c, void *arg)
{
    s_seen_t *s = arg;
    if (s->n < 64)
        s->seqs[s->n] = c->seq;
    s->n++;
    return 0;
}

/* The change log read back at restart answers as it did before the stop: the latest
 * log_max of the stored changes; refused when the changes do not end at the table's seq,
 * are not consecutive, are of another epoch, or the table has logged since it was made. */
static void test_decisions_log_restore(void **state)
{
    decisions_t *old = decisions_new(5, 0, 4);
    decision_change_t log[10];
    size_t n = 0;
    for (uint64_t i = 1; i <= 6; i++) {
        decision_t d = s_rule_decision(BS_SCOPE_SUBJECT, i, BS_REACH_FLEET, "", T0 + HOUR);
        const decision_t *made = NULL;
        decisions_propose(old, &d, MIN, T0, &made);
        if (i == 6)
            assert_int_equal(decisions_remove(old, made->id, DECISION_WHY_REVOKED, T0), 0);
        while (decisions_take_change(old, &log[n]))
            n++;
    }
    assert_int_equal(n, 7);
    const decision_change_t *gone = decisions_last_change(old, log[6].decision.id);
    assert_non_null(gone);

    decisions_t *t = decisions_new(5, 7, 4);
    assert_int_equal(decisions_log_restore(t, log, 6), -1);    /* ends at 6, not 7 */
    assert_int_equal(decisions_log_restore(t, log + 1, 6), 0); /* 2..7: the last 4 kept */
    assert_int_equal(decisions_log_floor(t), 3);
    gone = decisions_last_change(t, log[6].decision.id);
    assert_non_null(gone);
    assert_int_equal(gone->kind, DECISION_REMOVE);
    assert_int_equal(gone->why, DECISION_WHY_REVOKED);
    s_seen_t seen = {0};
    assert_int_equal(decisions_changes_since(t, 5, 3, s_collect, &seen), 0);
    assert_int_equal(seen.n, 4);
    assert_int_equal(seen.seqs[3], 7);
    /* once restored, or once it logged a change, a table takes no more */
    assert_int_equal(decisions_log_restore(t, log + 1, 6), -1);
    decisions_destroy(&t);

    t = decisions_new(9, 7, 4);
    assert_int_equal(decisions_log_restore(t, log + 1, 6), -1); /* another epoch */
    decisions_destroy(&t);
    t = decisions_new(5, 7, 4);
    decision_change_t holed[3] = {log[4], log[4], log[6]};
    assert_int_equal(decisions_log_restore(t, holed, 3), -1);
    assert_int_equal(decisions_log_floor(t), 7);
    assert_null(decisions_last_change(t, log[6].decision.id));
    decisions_destroy(&t);
    decisions_destroy(&old);
}

static void test_decisions_changes_since_and_too_old(void **state)
{
    decisions_t *t = decisions_new(5, 0, 4);
    decision_change_t c;
    for (uint64_t i = 1; i <= 10; i++) {
        decision_t d = s_rule_decision(BS_SCOPE_SUBJECT, i, BS_REACH_FLEET, "", T0 + HOUR);
        decisions_propose(t, &d, MIN, T0, NULL);
        while (decisions_take_change(t, &c))
            ;
    }
    /* the log keeps the last 4 taken changes: 7..10 */
    assert_int_equal(decisions_log_floor(t), 6);
    s_seen_t seen = {0};
    assert_int_equal(decisions_changes_since(t, 5, 7, s_collect, &seen), 0);
    assert_int_equal(seen.n, 3);
    assert_int_equal(seen.seqs[0], 8);
    assert_int_equal(seen.seqs[2], 10);
    seen.n = 0;
    assert_int_equal(decisions_changes_since(t, 5, 6, s_collect, &seen), 0);
    assert_int_equal(seen.n, 4);
    seen.n = 0;
    assert_int_equal(decisions_changes_since(t, 5, 10, s_collect, &seen), 0);
    assert_int_equal(seen.n, 0);
    assert_int_equal(decisions_changes_since(t, 5, 5, s_collect, &seen), -1);  /* too old */
    assert_int_equal(decisions_changes_since(t, 5, 11, s_collect, &seen), -1); /* future */
    assert_int_equal(decisions_changes_since(t, 4, 8, s_collect, &seen), -1);  /* other epoch */
    assert_int_equal(seen.n, 0);
    decisions_destroy(&t);
}

static void test_decisions_pending_changes_are_never_dropped(void **state)
{
    decisions_t *t = decisions_new(1, 0, 4);
    for (uint64_t i = 1; i <= 100; i++) {
        decision_t d = s_rule_decision(BS_SCOPE_SUBJECT, i, BS_REACH_FLEET, "", T0 + HOUR);
        decisions_propose(t, &d, MIN, T0, NULL);
    }
    assert_int_equal(decisions_pending(t), 100);
    decision_change_t c;
    for (uint64_t i = 1; i <= 100; i++) {
        assert_int_equal(decisions_take_change(t, &c), 1);
        assert_int_equal(c.seq, i);
        assert_int_equal(c.decision.fp, i);
    }
    assert_int_equal(decisions_take_change(t, &c), 0);
    decisions_destroy(&t);
}

static void test_decisions_new_table_continues_sequence(void **state)
{
    decisions_t *t = decisions_new(3, 41, 0);
    s_seen_t seen = {0};
    assert_int_equal(decisions_changes_since(t, 3, 41, s_collect, &seen), 0);
    assert_int_equal(decisions_changes_since(t, 3, 40, s_collect, &seen), -1);
    decision_t d = s_rule_decision(BS_SCOPE_SUBJECT, 1, BS_REACH_FLEET, "", T0 + HOUR);
    const decision_t *got;
    decisions_propose(t, &d, MIN, T0, &got);
    assert_int_equal(got->seq, 42);
    decisions_destroy(&t);
}

typedef struct {
    uint64_t fps[16]; /* fps visited */
    size_t n;         /* how many */
} s_snap_t;

static int s_snap(const decision_t *d, void *arg)
{
    s_snap_t *s = arg;
    s->fps[s->n++] = d->fp;
    return 0;
}

static void test_decisions_snapshot_for_site_is_fleet_plus_own(void **state)
{
    decisions_t *t = decisions_new(1, 0, 0);
    decision_t f = s_rule_decision(BS_SCOPE_SUBJECT, 1, BS_REACH_FLEET, "", T0 + HOUR);
    decision_t la = s_rule_decision(BS_SCOPE_SUBJECT, 2, BS_REACH_LOCAL, "a", T0 + HOUR);
    decision_t lb = s_rule_decision(BS_SCOPE_SUBJECT, 3, BS_REACH_LOCAL, "b", T0 + HOUR);
    decisions_propose(t, &f, MIN, T0, NULL);
    decisions_propose(t, &la, MIN, T0, NULL);
    decisions_propose(t, &lb, MIN, T0, NULL);
    s_snap_t s = {0};
    decisions_foreach(t, "a", s_snap, &s);
    assert_int_equal(s.n, 2);
    assert_int_equal(s.fps[0], 1); /* oldest sequence first */
    assert_int_equal(s.fps[1], 2);
    s.n = 0;
    decisions_foreach(t, "c", s_snap, &s);
    assert_int_equal(s.n, 1);
    s.n = 0;
    decisions_foreach(t, NULL, s_snap, &s);
    assert_int_equal(s.n, 3);
    decisions_destroy(&t);
}

typedef struct {
    char (*ids)[DECISION_ID_LEN + 1]; /* collected ids */
    size_t n;                         /* how many */
} s_ids_t;

static int s_id_collect(const decision_t *d, void *arg)
{
    s_ids_t *s = arg;
    strcpy(s->ids[s->n++], d->id);
    return 0;
}

static int s_id_cmp(const void *a, const void *b)
{
    return strcmp(a, b);
}

static void test_decisions_ids_unique_among_many(void **state)
{
    decisions_t *t = decisions_new(12345, 0, 16);
    decision_change_t c;
    for (uint64_t i = 1; i <= 20000; i++) {
        decision_t d = s_rule_decision(BS_SCOPE_SUBJECT, i, BS_REACH_FLEET, "", T0 + HOUR);
        assert_int_equal(decisions_propose(t, &d, MIN, T0, NULL), DECISIONS_CREATED);
        while (decisions_take_change(t, &c))
            ;
    }
    assert_int_equal(decisions_count(t), 20000);
    /* all ids distinct, and each finds its own decision */
    s_ids_t ids = {.ids = calloc(20000, sizeof(*ids.ids))};
    decisions_foreach(t, NULL, s_id_collect, &ids);
    assert_int_equal(ids.n, 20000);
    qsort(ids.ids, ids.n, sizeof(*ids.ids), s_id_cmp);
    for (size_t i = 1; i < ids.n; i++)
        assert_string_not_equal(ids.ids[i - 1], ids.ids[i]);
    for (size_t i = 0; i < ids.n; i += 97)
        assert_string_equal(decisions_find(t, ids.ids[i])->id, ids.ids[i]);
    free(ids.ids);
    decisions_destroy(&t);
}

static void test_decisions_restore_keeps_identity(void **state)
{
    decisions_t *old = decisions_new(1, 0, 0);
    decision_t d = s_rule_decision(BS_SCOPE_CLIENT_IP, 77, BS_REACH_LOCAL, "a", T0 + HOUR);
    const decision_t *got;
    decisions_propose(old, &d, MIN, T0, &got);
    decision_t saved = *got;
    decisions_destroy(&old);

    decisions_t *t = decisions_new(1, saved.seq, 0);
    assert_int_equal(decisions_restore(t, &saved), 0);
    assert_int_equal(decisions_restore(t, &saved), -1); /* same id twice */
    const decision_t *back = decisions_find(t, saved.id);
    assert_non_null(back);
    assert_int_equal(back->seq, saved.seq);
    assert_int_equal(back->created_ms, T0);
    assert_int_equal(decisions_pending(t), 0);
    /* the wave goes on after the restart: the restored decision is extended */
    d.expires_ms = T0 + 2 * HOUR;
    assert_int_equal(decisions_propose(t, &d, MIN, T0 + HOUR - MIN, &got), DECISIONS_EXTENDED);
    assert_string_equal(got->id, saved.id);
    assert_int_equal(got->seq, saved.seq + 1);
    decision_t bad = saved;
    strcpy(bad.id, "UUUUUUUU");
    assert_int_equal(decisions_restore(t, &bad), -1);
    decisions_destroy(&t);
}

/* A stored id in another spelling (lower case, a misread letter) is a damaged record:
 * restored under its canonical id, its removal would delete d/<canonical> and leave the
 * record to come back at every start (found by fuzz_store). */
static void test_decisions_restore_refuses_a_non_canonical_id(void **state)
{
    (void)state;
    decisions_t *old = decisions_new(1, 0, 0);
    decision_t d = s_rule_decision(BS_SCOPE_CLIENT_IP, 78, BS_REACH_FLEET, "", T0 + HOUR);
    const decision_t *got;
    decisions_propose(old, &d, MIN, T0, &got);
    decision_t saved = *got;
    decisions_destroy(&old);

    decisions_t *t = decisions_new(1, saved.seq, 0);
    decision_t lower = saved;
    for (char *p = lower.id; *p; p++)
        *p = (char)tolower((unsigned char)*p);
    assert_string_not_equal(lower.id, saved.id); /* the id has a letter */
    assert_int_equal(decisions_restore(t, &lower), -1);
    assert_int_equal(decisions_restore(t, &saved), 0);
    decisions_destroy(&t);
}

/* The removal count moves with each removal (revoked, allowlisted, expired) and with
 * nothing else: ingest caches "this decision is in force" until it moves. */
static void test_decisions_removals_count_removals_only(void **state)
{
    decisions_t *t = decisions_new(1, 0, 0);
    assert_int_equal(decisions_removals(t), 0);
    const decision_t *got;
    decision_t d = s_rule_decision(BS_SCOPE_SUBJECT, 42, BS_REACH_FLEET, "", T0 + HOUR);
    decisions_propose(t, &d, MIN, T0, &got);
    char id42[DECISION_ID_LEN + 1];
    strcpy(id42, got->id);
    d = s_rule_decision(BS_SCOPE_SUBJECT, 43, BS_REACH_LOCAL, "acme", T0 + 2 * HOUR);
    decisions_propose(t, &d, MIN, T0, &got);
    char id43[DECISION_ID_LEN + 1];
    strcpy(id43, got->id);
    d = s_rule_decision(BS_SCOPE_SUBJECT, 44, BS_REACH_FLEET, "", T0 + 3 * HOUR);
    decisions_propose(t, &d, MIN, T0, NULL);
    /* creations, an extension and a proposal that changes nothing: no removal */
    d.expires_ms = T0 + 4 * HOUR;
    assert_int_equal(decisions_propose(t, &d, MIN, T0, NULL), DECISIONS_EXTENDED);
    assert_int_equal(decisions_propose(t, &d, MIN, T0, NULL), DECISIONS_UNCHANGED);
    assert_int_equal(decisions_removals(t), 0);
    assert_int_equal(decisions_remove(t, "nosuchid", DECISION_WHY_REVOKED, T0), -1);
    assert_int_equal(decisions_expire(t, T0 + HOUR - 1), 0);
    assert_int_equal(decisions_removals(t), 0);
    assert_int_equal(decisions_remove(t, id42, DECISION_WHY_REVOKED, T0), 0);
    assert_int_equal(decisions_removals(t), 1);
    assert_int_equal(decisions_remove(t, id43, DECISION_WHY_ALLOWLISTED, T0), 0);
    assert_int_equal(decisions_removals(t), 2);
    assert_int_equal(decisions_expire(t, T0 + 4 * HOUR), 1);
    assert_int_equal(decisions_removals(t), 3);
    assert_int_equal(decisions_count(t), 0);
    decisions_destroy(&t);
}

/* ---- decisions_mirror: the failover peer's changes ---- */

/* A decision as the peer publishes it: its own id, seq and epoch. */
static decision_t s_peer_decision(const char *id, uint64_t fp, int64_t expires_ms)
{
    decision_t d = s_rule_decision(BS_SCOPE_SUBJECT, fp, BS_REACH_FLEET, "", expires_ms);
    decisions_strlcpy(d.id, id, DECISION_ID_LEN);
    d.created_ms = T0 - MIN;
    d.seq = 900;
    d.epoch = 99;
    return d;
}

/* Takes every pending change; the last one into *last. */
static size_t s_take_all(decisions_t *t, decision_change_t *last)
{
    size_t n = 0;
    decision_change_t c = {0};
    while (decisions_take_change(t, &c)) {
        *last = c;
        n++;
    }
    return n;
}

static void test_decisions_mirror_adds_the_peers_decision_under_its_id(void **state)
{
    decisions_t *t = decisions_new(7, 10, 0);
    decision_t p = s_peer_decision("AB12CD34", 42, T0 + HOUR);
    assert_int_equal(decisions_mirror(t, DECISION_UPSERT, DECISION_WHY_NEW, &p, T0),
                     DECISIONS_MIRROR_APPLIED);
    const decision_t *got = decisions_find(t, "AB12CD34");
    assert_non_null(got);
    assert_true(got->mirrored);
    assert_int_equal(got->created_ms, T0 - MIN); /* the peer's, kept */
    assert_int_equal(got->expires_ms, T0 + HOUR);
    assert_int_equal(got->seq, 11); /* our sequence, our epoch */
    assert_int_equal(got->epoch, 7);
    assert_ptr_equal(
        decisions_find_identity(t, BS_SCOPE_SUBJECT, 42, BS_REACH_FLEET, NULL, BS_MODE_ENFORCE),
        got);
    decision_change_t c = {0};
    assert_int_equal(s_take_all(t, &c), 1);
    assert_int_equal(c.kind, DECISION_UPSERT);
    assert_int_equal(c.why, DECISION_WHY_NEW);
    assert_int_equal(c.seq, 11);
    assert_true(c.decision.mirrored); /* so the peer skips it when it comes back */
    /* the same change again (a resync) changes nothing and logs nothing */
    assert_int_equal(decisions_mirror(t, DECISION_UPSERT, DECISION_WHY_NEW, &p, T0),
                     DECISIONS_MIRROR_SAME);
    assert_int_equal(decisions_pending(t), 0);
    decisions_destroy(&t);
}

static void test_decisions_mirror_merges_like_an_extension(void **state)
{
    decisions_t *t = decisions_new(7, 0, 0);
    decision_t p = s_peer_decision("AB12CD34", 42, T0 + HOUR);
    p.action = BS_ACTION_TEMPFAIL;
    decisions_mirror(t, DECISION_UPSERT, DECISION_WHY_NEW, &p, T0);
    decision_change_t c = {0};
    s_take_all(t, &c);
    /* later expiry and a stronger action from the peer: taken */
    p.expires_ms = T0 + 2 * HOUR;
    p.action = BS_ACTION_REJECT;
    assert_int_equal(decisions_mirror(t, DECISION_UPSERT, DECISION_WHY_EXTENDED, &p, T0),
                     DECISIONS_MIRROR_APPLIED);
    assert_int_equal(s_take_all(t, &c), 1);
    assert_int_equal(c.why, DECISION_WHY_EXTENDED);
    assert_int_equal(c.decision.expires_ms, T0 + 2 * HOUR);
    assert_int_equal(c.decision.action, BS_ACTION_REJECT);
    assert_int_equal(decisions_next_expiry(t), T0 + 2 * HOUR);
    /* an older copy (earlier expiry, weaker action) never takes anything back */
    p.expires_ms = T0 + HOUR;
    p.action = BS_ACTION_TAG;
    assert_int_equal(decisions_mirror(t, DECISION_UPSERT, DECISION_WHY_EXTENDED, &p, T0),
                     DECISIONS_MIRROR_SAME);
    const decision_t *got = decisions_find(t, "AB12CD34");
    assert_int_equal(got->expires_ms, T0 + 2 * HOUR);
    assert_int_equal(got->action, BS_ACTION_REJECT);
    assert_int_equal(decisions_removals(t), 0);
    decisions_destroy(&t);
}

static void test_decisions_mirror_removes_unless_extended_here(void **state)
{
    decisions_t *t = decisions_new(7, 0, 0);
    decision_t p = s_peer_decision("AB12CD34", 42, T0 + HOUR);
    decision_t q = s_peer_decision("EF56GH78", 43, T0 + HOUR);
    decisions_mirror(t, DECISION_UPSERT, DECISION_WHY_NEW, &p, T0);
    decisions_mirror(t, DECISION_UPSERT, DECISION_WHY_NEW, &q, T0);
    /* a wave here extended q after the peer's copy */
    decision_t wave = s_rule_decision(BS_SCOPE_SUBJECT, 43, BS_REACH_FLEET, "", T0 + 3 * HOUR);
    assert_int_equal(decisions_propose(t, &wave, MIN, T0 + 10 * MIN, NULL), DECISIONS_EXTENDED);
    assert_false(decisions_find(t, "EF56GH78")->mirrored); /* our change: the peer takes it */
    decision_change_t c = {0};
    s_take_all(t, &c);
    /* the peer's expiry of its copy: ours lasts longer, so it stays */
    assert_int_equal(decisions_mirror(t, DECISION_REMOVE, DECISION_WHY_EXPIRED, &q, T0 + HOUR),
                     DECISIONS_MIRROR_SAME);
    assert_non_null(decisions_find(t, "EF56GH78"));
    /* a revocation there is one here, whatever the expiry */
    assert_int_equal(decisions_mirror(t, DECISION_REMOVE, DECISION_WHY_REVOKED, &q, T0),
                     DECISIONS_MIRROR_APPLIED);
    assert_null(decisions_find(t, "EF56GH78"));
    assert_int_equal(s_take_all(t, &c), 1);
    assert_int_equal(c.kind, DECISION_REMOVE);
    assert_int_equal(c.why, DECISION_WHY_REVOKED);
    assert_true(c.decision.mirrored);
    /* the peer's expiry of an unextended copy removes it; a removal of an unknown id is
     * nothing */
    assert_int_equal(decisions_mirror(t, DECISION_REMOVE, DECISION_WHY_EXPIRED, &p, T0 + HOUR),
                     DECISIONS_MIRROR_APPLIED);
    assert_int_equal(decisions_mirror(t, DECISION_REMOVE, DECISION_WHY_REVOKED, &p, T0),
                     DECISIONS_MIRROR_SAME);
    assert_int_equal(decisions_count(t), 0);
    assert_int_equal(decisions_removals(t), 2);
    decisions_destroy(&t);
}

static void test_decisions_mirror_does_not_bring_back_a_revocation(void **state)
{
    decisions_t *t = decisions_new(7, 0, 0);
    decision_t p = s_peer_decision("AB12CD34", 42, T0 + HOUR);
    decision_t q = s_peer_decision("EF56GH78", 43, T0 + HOUR);
    decisions_mirror(t, DECISION_UPSERT, DECISION_WHY_NEW, &p, T0);
    decisions_mirror(t, DECISION_UPSERT, DECISION_WHY_NEW, &q, T0);
    /* an operator revokes p here, while the peer extends it: the extension crosses the
     * revocation on the wire and must not bring p back */
    assert_int_equal(decisions_remove(t, "AB12CD34", DECISION_WHY_REVOKED, T0), 0);
    p.expires_ms = T0 + 2 * HOUR;
    assert_int_equal(decisions_mirror(t, DECISION_UPSERT, DECISION_WHY_EXTENDED, &p, T0),
                     DECISIONS_MIRROR_SAME);
    assert_null(decisions_find(t, "AB12CD34"));
    /* an expiry is no verdict: a wave the peer still sees extends q past it */
    assert_int_equal(decisions_expire(t, T0 + HOUR), 1);
    q.expires_ms = T0 + 2 * HOUR;
    assert_int_equal(decisions_mirror(t, DECISION_UPSERT, DECISION_WHY_EXTENDED, &q, T0 + HOUR),
                     DECISIONS_MIRROR_APPLIED);
    assert_non_null(decisions_find(t, "EF56GH78"));
    decisions_destroy(&t);
}

/* Every pending change, in order, into out (at most max); returns how many. */
static size_t s_take_n(decisions_t *t, decision_change_t *out, size_t max)
{
    size_t n = 0;
    decision_change_t c = {0};
    while (decisions_take_change(t, &c))
        if (n < max)
            out[n++] = c;
    return n;
}

/* Both sides fired on the same wave while they were apart: the smaller id stays on both,
 * with the later expiry and the stronger action of the two. */
static void test_decisions_mirror_merges_a_split_decision_into_the_smaller_id(void **state)
{
    (void)state;
    decisions_t *t = decisions_new(7, 0, 0);
    decision_t own = s_rule_decision(BS_SCOPE_SUBJECT, 42, BS_REACH_FLEET, "", T0 + 3 * HOUR);
    own.action = BS_ACTION_TEMPFAIL;
    const decision_t *mine;
    decisions_propose(t, &own, MIN, T0, &mine);
    char ours[DECISION_ID_LEN + 1];
    strcpy(ours, mine->id);
    decision_change_t c[8];
    (void)s_take_n(t, c, 8);
    /* theirs has the smaller id: ours goes (superseded, ours to tell), theirs comes as the
     * peer's, and our later expiry is an extension of it, ours to tell */
    decision_t p = s_peer_decision("00000000", 42, T0 + HOUR);
    p.action = BS_ACTION_REJECT;
    assert_int_equal(decisions_mirror(t, DECISION_UPSERT, DECISION_WHY_NEW, &p, T0),
                     DECISIONS_MIRROR_MERGED);
    assert_null(decisions_find(t, ours));
    const decision_t *kept = decisions_find(t, "00000000");
    assert_non_null(kept);
    assert_int_equal(kept->expires_ms, T0 + 3 * HOUR);
    assert_int_equal(kept->action, BS_ACTION_REJECT);
    assert_int_equal(decisions_count(t), 1);
    assert_int_equal(s_take_n(t, c, 8), 3);
    assert_int_equal(c[0].kind, DECISION_REMOVE);
    assert_int_equal(c[0].why, DECISION_WHY_SUPERSEDED);
    assert_string_equal(c[0].decision.id, ours);
    assert_false(c[0].decision.mirrored);
    assert_int_equal(c[1].kind, DECISION_UPSERT);
    assert_string_equal(c[1].decision.id, "00000000");
    assert_true(c[1].decision.mirrored);
    assert_int_equal(c[1].decision.expires_ms, T0 + HOUR);
    assert_int_equal(c[2].why, DECISION_WHY_EXTENDED);
    assert_false(c[2].decision.mirrored);
    assert_int_equal(c[2].decision.expires_ms, T0 + 3 * HOUR);
    assert_string_equal(decisions_why_name(DECISION_WHY_SUPERSEDED), "superseded");
    assert_int_equal(decisions_why_parse("superseded"), DECISION_WHY_SUPERSEDED);
    /* theirs has the larger id: ours stays and takes its later expiry, ours to tell */
    decision_t q = s_peer_decision("ZZZZZZZZ", 42, T0 + 4 * HOUR);
    assert_int_equal(decisions_mirror(t, DECISION_UPSERT, DECISION_WHY_NEW, &q, T0),
                     DECISIONS_MIRROR_MERGED);
    assert_null(decisions_find(t, "ZZZZZZZZ"));
    kept = decisions_find(t, "00000000");
    assert_non_null(kept);
    assert_int_equal(kept->expires_ms, T0 + 4 * HOUR);
    assert_int_equal(s_take_n(t, c, 8), 1);
    assert_int_equal(c[0].why, DECISION_WHY_EXTENDED);
    assert_false(c[0].decision.mirrored);
    /* and nothing to merge: no change at all */
    q.expires_ms = T0 + HOUR;
    assert_int_equal(decisions_mirror(t, DECISION_UPSERT, DECISION_WHY_NEW, &q, T0),
                     DECISIONS_MIRROR_MERGED);
    assert_int_equal(decisions_pending(t), 0);
    decisions_destroy(&t);
}

static void test_decisions_last_change_says_what_became_of_an_id(void **state)
{
    (void)state;
    decisions_t *t = decisions_new(7, 0, 0);
    decision_t own = s_rule_decision(BS_SCOPE_SUBJECT, 42, BS_REACH_FLEET, "", T0 + HOUR);
    const decision_t *mine;
    decisions_propose(t, &own, MIN, T0, &mine);
    char id[DECISION_ID_LEN + 1], lower[DECISION_ID_LEN + 1];
    strcpy(id, mine->id);
    const decision_change_t *c = decisions_last_change(t, id);
    assert_non_null(c);
    assert_int_equal(c->kind, DECISION_UPSERT);
    assert_int_equal(decisions_remove(t, id, DECISION_WHY_REVOKED, T0), 0);
    for (size_t i = 0; i <= DECISION_ID_LEN; i++)
        lower[i] = (char)tolower((unsigned char)id[i]);
    c = decisions_last_change(t, lower); /* typed as read over the phone */
    assert_non_null(c);
    assert_int_equal(c->kind, DECISION_REMOVE);
    assert_int_equal(c->why, DECISION_WHY_REVOKED);
    assert_string_equal(c->decision.id, id);
    assert_int_equal(c->decision.fp, 42);
    assert_null(decisions_last_change(t, "ZZZZZZZZ"));
    assert_null(decisions_last_change(t, "not an id"));
    decisions_destroy(&t);
}

static void test_decisions_mirror_refuses_another_decisions_id(void **state)
{
    decisions_t *t = decisions_new(7, 0, 0);
    decision_t own = s_rule_decision(BS_SCOPE_SUBJECT, 42, BS_REACH_FLEET, "", T0 + HOUR);
    const decision_t *mine;
    decisions_propose(t, &own, MIN, T0, &mine);
    char id[DECISION_ID_LEN + 1];
    strcpy(id, mine->id);
    /* our id on another key */
    decision_t q = s_peer_decision(id, 43, T0 + HOUR);
    assert_int_equal(decisions_mirror(t, DECISION_UPSERT, DECISION_WHY_NEW, &q, T0),
                     DECISIONS_MIRROR_REFUSED);
    /* unusable: a non-canonical id, a local decision without its site */
    decision_t r = s_peer_decision("ab12cd34", 44, T0 + HOUR);
    assert_int_equal(decisions_mirror(t, DECISION_UPSERT, DECISION_WHY_NEW, &r, T0),
                     DECISIONS_MIRROR_REFUSED);
    decision_t l = s_peer_decision("AB12CD35", 45, T0 + HOUR);
    l.reach = BS_REACH_LOCAL;
    assert_int_equal(decisions_mirror(t, DECISION_UPSERT, DECISION_WHY_NEW, &l, T0),
                     DECISIONS_MIRROR_REFUSED);
    /* one already expired is not added */
    decision_t old = s_peer_decision("AB12CD36", 46, T0 - SEC);
    assert_int_equal(decisions_mirror(t, DECISION_UPSERT, DECISION_WHY_NEW, &old, T0),
                     DECISIONS_MIRROR_SAME);
    assert_int_equal(decisions_count(t), 1);
    assert_int_equal(decisions_find(t, id)->expires_ms, T0 + HOUR);
    decisions_destroy(&t);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_decisions_create_assigns_id_seq_epoch),
        cmocka_unit_test(test_decisions_continuing_wave_extends),
        cmocka_unit_test(test_decisions_small_extension_changes_nothing),
        cmocka_unit_test(test_decisions_stronger_action_is_taken_without_a_later_expiry),
        cmocka_unit_test(test_decisions_identity_includes_reach_site_and_mode),
        cmocka_unit_test(test_decisions_extension_keeps_stronger_action),
        cmocka_unit_test(test_decisions_expire_at_ttl_in_expiry_order),
        cmocka_unit_test(test_decisions_next_expiry_follows_every_change),
        cmocka_unit_test(test_decisions_revoke_by_id_tolerates_misreads),
        cmocka_unit_test(test_decisions_seq_strictly_increasing_over_all_changes),
        cmocka_unit_test(test_decisions_changes_since_and_too_old),
        cmocka_unit_test(test_decisions_log_restore),
        cmocka_unit_test(test_decisions_pending_changes_are_never_dropped),
        cmocka_unit_test(test_decisions_new_table_continues_sequence),
        cmocka_unit_test(test_decisions_snapshot_for_site_is_fleet_plus_own),
        cmocka_unit_test(test_decisions_ids_unique_among_many),
        cmocka_unit_test(test_decisions_restore_keeps_identity),
        cmocka_unit_test(test_decisions_restore_refuses_a_non_canonical_id),
        cmocka_unit_test(test_decisions_removals_count_removals_only),
        cmocka_unit_test(test_decisions_mirror_adds_the_peers_decision_under_its_id),
        cmocka_unit_test(test_decisions_mirror_merges_like_an_extension),
        cmocka_unit_test(test_decisions_mirror_removes_unless_extended_here),
        cmocka_unit_test(test_decisions_mirror_does_not_bring_back_a_revocation),
        cmocka_unit_test(test_decisions_mirror_merges_a_split_decision_into_the_smaller_id),
        cmocka_unit_test(test_decisions_last_change_says_what_became_of_an_id),
        cmocka_unit_test(test_decisions_mirror_refuses_another_decisions_id),
        cmocka_unit_test(test_decisions_extension_brings_the_text_a_fingerprint_lacked),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
