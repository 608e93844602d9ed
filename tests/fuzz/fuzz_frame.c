/*
 * fuzz_frame - libFuzzer target: the bytes an aggregator reads on its event socket
 *
 * The input is one ZeroMQ data part as a sensor sends it: a serialized Frame.
 * It goes the way the aggregator's intake (server.c, s_drain_events and
 * s_on_batch) takes it: wire_unpack_in() into an arena, the body case and the
 * site and sensor names checked (server_site_name_ok), wire_events_open()/
 * wire_events_next() over the batch (rows or columns), each event turned into
 * an ingest_event_t by server_event_from_wire() and
 * the batch counted by ingest_batch() into a real window and decision table
 * at a fixed clock, the decision changes drained and the timers run. The
 * rules are the shipped defaults plus a few that fire after a handful of
 * events, so that the decision path is reached by small inputs; one address
 * and one domain are allowlisted.
 *
 * Two oracles besides the sanitizers: the same bytes unpacked without an
 * arena must give the same verdict (and are freed, so a leak shows), and a
 * batch that passed the checks must pack again, as columns and as rows, into
 * frames that unpack to the very same events (wire_batch_add/pack): what the
 * aggregator accepts a sensor must be able to send, and the two forms must
 * agree.
 *
 * The events' times only count near the fixed clock S_NOW; the seeds carry
 * such times.
 */
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "allowlist.h"
#include "decisions.h"
#include "ingest.h"
#include "server.h"
#include "wire.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define S_NOW (1700000000LL * 1000) /* the aggregator's clock, fixed */

/* what the reads add up to: kept so that they are not optimised away */
static volatile size_t s_sink;

/* Rules that fire on a few events, besides the defaults. */
static size_t s_rules(rule_t *out, size_t max)
{
    size_t n = 0;
    const rule_t *def = rules_defaults(&n);
    memcpy(out, def, n * sizeof(*out));
    static const struct {
        const char *name;
        bs_scope_t scope;
        bs_reach_t reach;
        bs_mode_t mode;
        uint32_t classes;
    } quick[] = {
        {"q_subject", BS_SCOPE_SUBJECT, BS_REACH_FLEET, BS_MODE_ENFORCE, 0},
        {"q_orig", BS_SCOPE_ORIG_SUBJECT, BS_REACH_LOCAL, BS_MODE_ENFORCE, 0},
        {"q_ip", BS_SCOPE_CLIENT_IP, BS_REACH_FLEET, BS_MODE_OBSERVE,
         (1u << BS_CLASS_BOUNCE) | (1u << BS_CLASS_AUTOREPLY)},
        {"q_net", BS_SCOPE_CLIENT_NET, BS_REACH_LOCAL, BS_MODE_ENFORCE, 0},
        {"q_subject_ip", BS_SCOPE_SUBJECT_IP, BS_REACH_FLEET, BS_MODE_ENFORCE,
         (1u << BS_CLASS_BOUNCE) | (1u << BS_CLASS_MDN) | (1u << BS_CLASS_ARF)},
    };
    for (size_t i = 0; i < sizeof(quick) / sizeof(quick[0]) && n < max; i++, n++) {
        rule_t *r = &out[n];
        memset(r, 0, sizeof(*r));
        strcpy(r->name, quick[i].name);
        r->scope = quick[i].scope;
        r->window_ms = 60 * 1000;
        r->min_events = 2;
        r->min_sites = 1;
        r->max_site_share = 1.0;
        r->ttl_ms = 600 * 1000;
        r->action = BS_ACTION_REJECT;
        r->reach = quick[i].reach;
        r->mode = quick[i].mode;
        r->classes = quick[i].classes;
    }
    return n;
}

/* Are two events (one from each frame) the same? */
static bool s_same_event(const wire_event_t *a, const wire_event_t *b)
{
    if (a->seq != b->seq || a->time_ms != b->time_ms || a->msg_class != b->msg_class ||
        a->nkeys != b->nkeys || a->nrules != b->nrules || a->original != b->original ||
        a->ledger_hit != b->ledger_hit || a->enforced != b->enforced ||
        a->client_ip_len != b->client_ip_len || (a->client_ip == NULL) != (b->client_ip == NULL))
        return false;
    if (a->client_ip_len && memcmp(a->client_ip, b->client_ip, a->client_ip_len) != 0)
        return false;
    for (size_t k = 0; k < a->nkeys; k++) {
        const wire_key_t *x = &a->keys[k], *y = &b->keys[k];
        if (x->scope != y->scope || x->fp != y->fp || x->text_len != y->text_len ||
            (x->text_len && memcmp(x->text, y->text, x->text_len) != 0))
            return false;
    }
    for (size_t r = 0; r < a->nrules; r++)
        if (strcmp(a->rules[r], b->rules[r]) != 0)
            return false;
    if ((a->decision_id == NULL) != (b->decision_id == NULL))
        return false;
    return a->decision_id == NULL || strcmp(a->decision_id, b->decision_id) == 0;
}

/* The events of b, packed again by a sensor's batch builder as columns or rows, must
 * unpack to the same events. */
static void s_repack(const Backstop__EventBatch *b, bool columns)
{
    wire_batch_t *wb = wire_batch_new();
    wire_events_t it;
    wire_event_t ev;
    wire_key_t keys[WIRE_MAX_KEYS];
    wire_events_open(&it, b);
    while (wire_events_next(&it, &ev, keys))
        wire_batch_add(wb, &ev);
    size_t len = 0;
    wire_err_t err = WIRE_OK;
    uint8_t *buf = wire_batch_pack(wb, b->site, b->sensor, columns, &len, &err);
    if (buf == NULL && err == WIRE_ERR_OVERSIZE) {
        wire_batch_destroy(&wb); /* rows of many keys may outgrow the columns' frame */
        return;
    }
    if (buf == NULL)
        abort(); /* a checked batch that cannot be sent again */
    Backstop__Frame *f = wire_unpack(buf, len, &err);
    if (f == NULL || f->body_case != BACKSTOP__FRAME__BODY_EVENTS ||
        wire_batch_is_columnar(f->events) != columns)
        abort();
    wire_events_t a, c;
    wire_event_t ea, ec;
    wire_key_t ka[WIRE_MAX_KEYS], kc[WIRE_MAX_KEYS];
    if (wire_events_open(&a, b) != wire_events_open(&c, f->events))
        abort();
    while (wire_events_next(&a, &ea, ka)) {
        if (!wire_events_next(&c, &ec, kc) || !s_same_event(&ea, &ec))
            abort();
    }
    wire_free(&f);
    free(buf);
    wire_batch_destroy(&wb);
}

/* s_on_batch(): the batch's events counted at S_NOW. */
static void s_on_batch(ingest_t *in, decisions_t *dec, const Backstop__EventBatch *b)
{
    if (!server_site_name_ok(b->site) || !*b->sensor)
        return;
    wire_events_t it;
    size_t nev = wire_events_open(&it, b);
    ingest_event_t *evs = calloc(nev ? nev : 1, sizeof(*evs));
    ingest_key_t *evkeys = calloc((nev ? nev : 1) * WIRE_MAX_KEYS, sizeof(*evkeys));
    ingest_result_t *res = calloc(nev ? nev : 1, sizeof(*res));
    wire_event_t we;
    wire_key_t wk[WIRE_MAX_KEYS];
    size_t n = 0, sink = 0;
    while (n < nev && wire_events_next(&it, &we, wk)) {
        ingest_key_t *keys = evkeys + n * WIRE_MAX_KEYS;
        server_event_from_wire(b, &we, keys, &evs[n++]);
        for (size_t r = 0; r < we.nrules; r++)
            sink += strlen(we.rules[r]);
        if (we.decision_id)
            sink += strlen(we.decision_id);
    }
    if (n != nev)
        abort(); /* a checked frame gives all its events */
    /* the first half as a batch, the rest one by one, as a burst of frames would go */
    ingest_batch(in, evs, n / 2, S_NOW, res);
    for (size_t i = n / 2; i < n; i++)
        res[i] = ingest_event(in, &evs[i], S_NOW);
    for (size_t i = 0; i < n; i++)
        sink += strlen(ingest_result_name(res[i]));
    decision_change_t ch;
    while (decisions_take_change(dec, &ch))
        sink += ch.seq + strlen(ch.decision.id);
    /* what `backstop top` and the store read */
    window_t *w = ingest_window(in);
    window_top_t top[8];
    for (uint8_t scope = BS_SCOPE_SUBJECT; scope <= BS_SCOPE_SUBJECT_IP; scope++) {
        size_t nt = window_top(w, scope, 0, 300 * 1000, S_NOW, top, 8);
        for (size_t i = 0; i < nt; i++) {
            window_stats_t st;
            if (window_stats(w, &top[i].key, WINDOW_SITE_ALL, 300 * 1000, S_NOW, &st) == 0)
                sink += st.events + strlen(st.text);
        }
    }
    ingest_tick(in, S_NOW + 3600 * 1000, 1u << 20);
    s_sink = sink;
    free(evs);
    free(evkeys);
    free(res);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    wire_err_t err = WIRE_OK, err2 = WIRE_OK;
    /* the same verdict with and without an arena */
    Backstop__Frame *plain = wire_unpack(data, size, &err2);
    wire_arena_t *arena = wire_arena_new();
    Backstop__Frame *f = wire_unpack_in(arena, data, size, &err);
    if ((f == NULL) != (plain == NULL) || err != err2)
        abort();
    wire_free(&plain);
    s_sink = strlen(wire_err_name(err));
    if (f == NULL) {
        wire_arena_destroy(&arena);
        return 0;
    }
    s_sink = strlen(wire_body_name(f->body_case));
    if (f->body_case == BACKSTOP__FRAME__BODY_EVENTS) {
        if (wire_check(f) != WIRE_OK)
            abort();
        s_repack(f->events, true);
        s_repack(f->events, false);

        rule_t rules[INGEST_RULES_MAX];
        size_t nrules = s_rules(rules, INGEST_RULES_MAX);
        decisions_t *dec = decisions_new(1, 0, 64);
        allowlist_t *allow = allowlist_new();
        allow_entry_t e;
        memset(&e, 0, sizeof(e));
        if (allowlist_entry_parse(&e, ALLOW_IP, "192.0.2.99") == 0)
            allowlist_add(allow, &e, NULL, NULL);
        memset(&e, 0, sizeof(e));
        if (allowlist_entry_parse(&e, ALLOW_DOMAIN, "example.org") == 0)
            allowlist_add(allow, &e, NULL, NULL);
        ingest_config_t cfg = {
            .rules = rules,
            .nrules = nrules,
            .expected_keys = 64,
            .max_entries = 4096,
            .seed = 0x5eed,
            .track_dirty = 1,
        };
        char why[256];
        ingest_t *in = ingest_new(&cfg, dec, allow, why, sizeof(why));
        if (in == NULL)
            abort();
        s_on_batch(in, dec, f->events);
        /* the same frame again: every event a duplicate, nothing new counted */
        s_on_batch(in, dec, f->events);
        ingest_destroy(&in);
        allowlist_destroy(&allow);
        decisions_destroy(&dec);
    } else if (f->body_case == BACKSTOP__FRAME__BODY_STATUS) {
        const Backstop__SensorStatus *st = f->status;
        s_sink = strlen(st->site) + strlen(st->sensor) + (size_t)st->applied_seq;
    }
    wire_arena_reset(arena);
    wire_arena_destroy(&arena);
    return 0;
}
