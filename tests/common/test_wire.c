/*
 * test_wire - the protobuf-c adapter: round trips of every body, and every way
 * untrusted bytes can be wrong (empty, truncated, oversized, wrong version, no
 * body, limits, bad values, random garbage) failing cleanly with its reason.
 *
 * Frames a sender would refuse to pack are written here with a tiny protobuf
 * encoder (s_pb_*), so the receiver's checks are tested on their own.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "wire.h"
#include "xalloc.h"

/* ---- a minimal protobuf writer for hand-made frames ---- */

typedef struct {
    uint8_t *buf; /* bytes written so far */
    size_t len;   /* used */
    size_t cap;   /* allocated */
} pb_t;

static void s_pb_raw(pb_t *pb, const void *data, size_t len)
{
    if (pb->len + len > pb->cap) {
        pb->cap = (pb->len + len) * 2 + 64;
        pb->buf = xrealloc(pb->buf, pb->cap);
    }
    if (len)
        memcpy(pb->buf + pb->len, data, len);
    pb->len += len;
}

static void s_pb_varint(pb_t *pb, uint64_t v)
{
    uint8_t b[10];
    size_t n = 0;
    do {
        b[n] = (uint8_t)(v & 0x7F);
        v >>= 7;
        if (v)
            b[n] |= 0x80;
        n++;
    } while (v);
    s_pb_raw(pb, b, n);
}

static void s_pb_uint(pb_t *pb, unsigned field, uint64_t v)
{
    s_pb_varint(pb, (uint64_t)field << 3);
    s_pb_varint(pb, v);
}

static void s_pb_fixed64(pb_t *pb, unsigned field, uint64_t v)
{
    uint8_t b[8];
    s_pb_varint(pb, ((uint64_t)field << 3) | 1);
    for (int i = 0; i < 8; i++)
        b[i] = (uint8_t)(v >> (8 * i));
    s_pb_raw(pb, b, 8);
}

static void s_pb_bytes(pb_t *pb, unsigned field, const void *data, size_t len)
{
    s_pb_varint(pb, ((uint64_t)field << 3) | 2);
    s_pb_varint(pb, len);
    s_pb_raw(pb, data, len);
}

static void s_pb_str(pb_t *pb, unsigned field, const char *s)
{
    s_pb_bytes(pb, field, s, strlen(s));
}

/* Appends sub as a length-delimited field and frees it. */
static void s_pb_sub(pb_t *pb, unsigned field, pb_t *sub)
{
    s_pb_bytes(pb, field, sub->buf, sub->len);
    xfree(sub->buf);
    memset(sub, 0, sizeof(*sub));
}

/* What a hand-made event batch frame contains. */
typedef struct {
    uint32_t version;     /* Frame.version */
    const char *site;     /* EventBatch.site */
    size_t events;        /* number of events */
    const char *key_text; /* Key.text of each event's one key */
    uint64_t scope;       /* Key.scope */
    size_t ip_len;        /* client_ip bytes, 0 = absent */
    uint64_t msg_class;   /* Event.msg_class */
    const char *rule;     /* one rule label, NULL = none */
} raw_batch_t;

static const raw_batch_t s_good_batch = {1, "site1", 3, "undeliverable #", 1, 4, 2, NULL};

static pb_t s_raw_batch(const raw_batch_t *r)
{
    pb_t frame = {0}, batch = {0};
    s_pb_uint(&frame, 1, r->version);
    s_pb_str(&batch, 1, r->site);
    s_pb_str(&batch, 2, "mx1");
    for (size_t i = 0; i < r->events; i++) {
        pb_t ev = {0}, key = {0};
        static const uint8_t ip[17] = {192, 0, 2, 1};
        s_pb_uint(&ev, 1, i + 1);
        s_pb_uint(&ev, 2, 1700000000000ULL + i);
        if (r->ip_len)
            s_pb_bytes(&ev, 3, ip, r->ip_len);
        s_pb_uint(&ev, 4, r->msg_class);
        s_pb_uint(&key, 1, r->scope);
        s_pb_fixed64(&key, 2, 0x0123456789abcdefULL);
        s_pb_str(&key, 3, r->key_text);
        s_pb_sub(&ev, 5, &key);
        if (r->rule)
            s_pb_str(&ev, 6, r->rule);
        s_pb_sub(&batch, 3, &ev);
    }
    s_pb_sub(&frame, 10, &batch);
    return frame;
}

static wire_err_t s_unpack_err(const pb_t *pb)
{
    wire_err_t err = WIRE_ERR__COUNT;
    Backstop__Frame *f = wire_unpack(pb->buf, pb->len, &err);
    if (f) {
        assert_int_equal(err, WIRE_OK);
        wire_free(&f);
    } else {
        assert_int_not_equal(err, WIRE_OK);
    }
    return err;
}

static wire_err_t s_raw_batch_err(const raw_batch_t *r)
{
    pb_t pb = s_raw_batch(r);
    wire_err_t err = s_unpack_err(&pb);
    xfree(pb.buf);
    return err;
}

static char *s_repeat(char c, size_t n)
{
    char *s = xmalloc(n + 1);
    memset(s, c, n);
    s[n] = '\0';
    return s;
}

/* ---- frames built with the generated structs, one per body ---- */

/* Storage for one built frame: everything it points at lives here. */
typedef struct {
    Backstop__Frame frame;
    Backstop__EventBatch batch;
    Backstop__Event event, *events[1];
    Backstop__Key key, *keys[1];
    char *rules[2];
    uint8_t ip[16];
    Backstop__Decision decision, *decisions[1];
    Backstop__Evidence evidence;
    Backstop__SiteShare share, *shares[1];
    Backstop__DecisionUpdate update, *updates[1];
    Backstop__SnapshotRequest sreq;
    Backstop__SnapshotReply srep;
    Backstop__Heartbeat hb;
    Backstop__SensorStatus status;
    Backstop__ControlRequest creq;
    Backstop__ControlReply crep;
} built_t;

static void s_fill_decision(built_t *b)
{
    backstop__site_share__init(&b->share);
    b->share.site = "site2";
    b->share.events = 17;
    b->shares[0] = &b->share;
    backstop__evidence__init(&b->evidence);
    b->evidence.rule = "fleet_subject";
    b->evidence.has_events = 1;
    b->evidence.events = 420;
    b->evidence.n_shares = 1;
    b->evidence.shares = b->shares;
    b->evidence.sample = "undeliverable: cheap watches";
    backstop__decision__init(&b->decision);
    b->decision.id = "K7P-2QX";
    b->decision.scope = BACKSTOP__SCOPE__SUBJECT;
    b->decision.fp = 0xfeedfacecafebeefULL;
    b->decision.value = "cheap watches";
    b->decision.action = BACKSTOP__ACTION__REJECT;
    b->decision.reach = BACKSTOP__REACH__FLEET;
    b->decision.evidence = &b->evidence;
    b->decision.created_ms = 1700000000000LL;
    b->decision.expires_ms = 1700003600000LL;
    b->decision.origin = BACKSTOP__ORIGIN__RULE;
    b->decision.has_seq = 1;
    b->decision.seq = 99;
    b->decisions[0] = &b->decision;
}

static void s_build(built_t *b, Backstop__Frame__BodyCase body_case)
{
    memset(b, 0, sizeof(*b));
    void *body = NULL;
    switch (body_case) {
    case BACKSTOP__FRAME__BODY_EVENTS:
        backstop__key__init(&b->key);
        b->key.scope = BACKSTOP__SCOPE__ORIG_SUBJECT;
        b->key.fp = 42;
        b->key.text = "r\xc3\xa9sultat #";
        b->keys[0] = &b->key;
        backstop__event__init(&b->event);
        b->event.seq = 7;
        b->event.time_ms = 1700000000123LL;
        b->event.has_client_ip = 1;
        b->event.client_ip.len = 16;
        b->event.client_ip.data = b->ip;
        b->ip[0] = 0x20, b->ip[1] = 0x01, b->ip[15] = 1;
        b->event.msg_class = BACKSTOP__MSG_CLASS__BOUNCE;
        b->event.n_keys = 1;
        b->event.keys = b->keys;
        b->rules[0] = "mailer_from";
        b->rules[1] = "no_content";
        b->event.n_rules = 2;
        b->event.rules = b->rules;
        b->event.has_original = 1;
        b->event.original = BACKSTOP__ORIGINAL__ORIGINAL_HEADERS;
        b->event.has_ledger_hit = 1;
        b->event.ledger_hit = 1;
        b->events[0] = &b->event;
        backstop__event_batch__init(&b->batch);
        b->batch.site = "site1";
        b->batch.sensor = "mx1";
        b->batch.n_events = 1;
        b->batch.events = b->events;
        body = &b->batch;
        break;
    case BACKSTOP__FRAME__BODY_UPDATE:
        s_fill_decision(b);
        backstop__decision_update__init(&b->update);
        b->update.kind = BACKSTOP__DECISION_UPDATE__KIND__REMOVE;
        b->update.seq = 100;
        b->update.epoch = 3;
        b->update.decision = &b->decision;
        b->update.why = "revoked";
        body = &b->update;
        break;
    case BACKSTOP__FRAME__BODY_SNAPSHOT_REQUEST:
        backstop__snapshot_request__init(&b->sreq);
        b->sreq.site = "site1";
        b->sreq.sensor = "mx1";
        b->sreq.has_since_seq = 1;
        b->sreq.since_seq = 55;
        body = &b->sreq;
        break;
    case BACKSTOP__FRAME__BODY_SNAPSHOT_REPLY:
        s_fill_decision(b);
        backstop__decision_update__init(&b->update);
        b->update.seq = 100;
        b->update.epoch = 3;
        b->update.decision = &b->decision;
        b->updates[0] = &b->update;
        backstop__snapshot_reply__init(&b->srep);
        b->srep.epoch = 3;
        b->srep.seq = 100;
        b->srep.n_decisions = 1;
        b->srep.decisions = b->decisions;
        b->srep.n_changes = 1;
        b->srep.changes = b->updates;
        b->srep.has_more = 1;
        b->srep.more = 1;
        body = &b->srep;
        break;
    case BACKSTOP__FRAME__BODY_HEARTBEAT:
        backstop__heartbeat__init(&b->hb);
        b->hb.epoch = 3;
        b->hb.seq = 100;
        b->hb.time_ms = 1700000000000LL;
        body = &b->hb;
        break;
    case BACKSTOP__FRAME__BODY_STATUS:
        backstop__sensor_status__init(&b->status);
        b->status.site = "site1";
        b->status.sensor = "mx1";
        b->status.epoch = 3;
        b->status.applied_seq = 98;
        b->status.time_ms = 1700000000000LL;
        b->status.has_events_dropped = 1;
        b->status.events_dropped = 5;
        body = &b->status;
        break;
    case BACKSTOP__FRAME__BODY_CONTROL_REQUEST:
        backstop__control_request__init(&b->creq);
        b->creq.command = BACKSTOP__CONTROL_REQUEST__COMMAND__DECISION_ADD;
        b->creq.has_scope = 1;
        b->creq.scope = BACKSTOP__SCOPE__CLIENT_NET;
        b->creq.value = "192.0.2.0/24";
        b->creq.has_ttl_s = 1;
        b->creq.ttl_s = 3600;
        b->creq.who = "alice";
        body = &b->creq;
        break;
    case BACKSTOP__FRAME__BODY_CONTROL_REPLY:
        backstop__control_reply__init(&b->crep);
        b->crep.status = 0;
        b->crep.json = "{\"decisions\":[]}";
        body = &b->crep;
        break;
    default:
        fail_msg("no builder for body %d", body_case);
    }
    wire_frame_init(&b->frame, body_case, body);
}

static const Backstop__Frame__BodyCase s_bodies[] = {
    BACKSTOP__FRAME__BODY_EVENTS,           BACKSTOP__FRAME__BODY_UPDATE,
    BACKSTOP__FRAME__BODY_SNAPSHOT_REQUEST, BACKSTOP__FRAME__BODY_SNAPSHOT_REPLY,
    BACKSTOP__FRAME__BODY_HEARTBEAT,        BACKSTOP__FRAME__BODY_STATUS,
    BACKSTOP__FRAME__BODY_CONTROL_REQUEST,  BACKSTOP__FRAME__BODY_CONTROL_REPLY,
};
#define N_BODIES (sizeof(s_bodies) / sizeof(s_bodies[0]))

static uint8_t *s_pack_body(Backstop__Frame__BodyCase body_case, size_t *len)
{
    built_t *b = xmalloc(sizeof(*b));
    wire_err_t err = WIRE_ERR__COUNT;
    s_build(b, body_case);
    uint8_t *buf = wire_pack(&b->frame, len, &err);
    assert_non_null(buf);
    assert_int_equal(err, WIRE_OK);
    assert_int_equal(*len, wire_packed_size(&b->frame));
    xfree(b);
    return buf;
}

/* ---- tests ---- */

static void test_round_trip_every_body(void **state)
{
    for (size_t i = 0; i < N_BODIES; i++) {
        size_t len, len2;
        wire_err_t err = WIRE_ERR__COUNT;
        uint8_t *buf = s_pack_body(s_bodies[i], &len);
        Backstop__Frame *f = wire_unpack(buf, len, &err);
        assert_non_null(f);
        assert_int_equal(err, WIRE_OK);
        assert_int_equal(f->version, WIRE_VERSION);
        assert_int_equal(f->body_case, s_bodies[i]);
        /* packing is deterministic, so the decoded frame re-packs to the same bytes */
        uint8_t *buf2 = wire_pack(f, &len2, NULL);
        assert_non_null(buf2);
        assert_int_equal(len2, len);
        assert_memory_equal(buf2, buf, len);
        xfree(buf2);
        xfree(buf);
        wire_free(&f);
    }
}

static void test_round_trip_keeps_fields(void **state)
{
    size_t len;
    uint8_t *buf = s_pack_body(BACKSTOP__FRAME__BODY_EVENTS, &len);
    Backstop__Frame *f = wire_unpack(buf, len, NULL);
    assert_non_null(f);
    Backstop__EventBatch *b = f->events;
    assert_string_equal(b->site, "site1");
    assert_int_equal(b->n_events, 1);
    Backstop__Event *e = b->events[0];
    assert_int_equal(e->seq, 7);
    assert_int_equal(e->time_ms, 1700000000123LL);
    assert_int_equal(e->client_ip.len, 16);
    assert_int_equal(e->client_ip.data[0], 0x20);
    assert_int_equal(e->n_keys, 1);
    assert_string_equal(e->keys[0]->text, "r\xc3\xa9sultat #");
    assert_int_equal(e->keys[0]->fp, 42);
    assert_int_equal(e->n_rules, 2);
    assert_string_equal(e->rules[1], "no_content");
    assert_true(e->has_ledger_hit && e->ledger_hit);
    assert_int_equal(e->original, BACKSTOP__ORIGINAL__ORIGINAL_HEADERS);
    xfree(buf);
    wire_free(&f);
}

static void test_every_prefix_decodes_or_fails_cleanly(void **state)
{
    for (size_t i = 0; i < N_BODIES; i++) {
        size_t len, failed = 0;
        uint8_t *buf = s_pack_body(s_bodies[i], &len);
        for (size_t n = 0; n < len; n++) {
            /* a copy of exactly n bytes, so ASan sees any read past the end */
            uint8_t *cut = xmalloc(n ? n : 1);
            memcpy(cut, buf, n);
            wire_err_t err = WIRE_ERR__COUNT;
            Backstop__Frame *f = wire_unpack(n ? cut : NULL, n, &err);
            if (f == NULL) {
                assert_true(err > WIRE_OK && err < WIRE_ERR__COUNT);
                failed++;
            } else {
                assert_int_equal(err, WIRE_OK);
            }
            wire_free(&f);
            xfree(cut);
        }
        /* the version alone, or a cut-off body, never passes */
        assert_true(failed >= 2);
        xfree(buf);
    }
}

static void test_empty_input_is_refused(void **state)
{
    wire_err_t err = WIRE_OK;
    uint8_t byte = 0;
    assert_null(wire_unpack(NULL, 0, &err));
    assert_int_equal(err, WIRE_ERR_EMPTY);
    err = WIRE_OK;
    assert_null(wire_unpack(&byte, 0, &err));
    assert_int_equal(err, WIRE_ERR_EMPTY);
}

static void test_oversized_input_is_refused_unread(void **state)
{
    wire_err_t err = WIRE_OK;
    /* a valid frame padded with an unknown field up to one byte over the limit */
    pb_t pb = {0};
    s_pb_uint(&pb, 1, 1);
    pb_t hb = {0};
    s_pb_uint(&hb, 1, 1);
    s_pb_uint(&hb, 2, 1);
    s_pb_uint(&hb, 3, 1);
    s_pb_sub(&pb, 14, &hb);
    size_t pad = WIRE_MAX_FRAME + 1 - pb.len - 4; /* tag 1 byte + length varint 3 bytes */
    char *junk = s_repeat('x', pad);
    s_pb_bytes(&pb, 9, junk, pad);
    assert_int_equal(pb.len, WIRE_MAX_FRAME + 1);
    assert_null(wire_unpack(pb.buf, pb.len, &err));
    assert_int_equal(err, WIRE_ERR_OVERSIZE);
    /* one byte less of padding is exactly the limit: accepted, unknown field ignored */
    pb.len = 0;
    s_pb_uint(&pb, 1, 1);
    pb_t hb2 = {0};
    s_pb_uint(&hb2, 1, 1);
    s_pb_uint(&hb2, 2, 1);
    s_pb_uint(&hb2, 3, 1);
    s_pb_sub(&pb, 14, &hb2);
    s_pb_bytes(&pb, 9, junk, pad - 1);
    assert_int_equal(pb.len, WIRE_MAX_FRAME);
    assert_int_equal(s_unpack_err(&pb), WIRE_OK);
    xfree(junk);
    xfree(pb.buf);
}

static void test_oversized_frame_is_not_packed(void **state)
{
    Backstop__ControlReply rep = BACKSTOP__CONTROL_REPLY__INIT;
    Backstop__Frame frame;
    size_t len = 1;
    wire_err_t err = WIRE_OK;
    rep.json = s_repeat('a', WIRE_MAX_FRAME);
    wire_frame_init(&frame, BACKSTOP__FRAME__BODY_CONTROL_REPLY, &rep);
    assert_null(wire_pack(&frame, &len, &err));
    assert_int_equal(err, WIRE_ERR_OVERSIZE);
    assert_int_equal(len, 0);
    xfree(rep.json);
}

/* version, then a heartbeat, by hand */
static const uint8_t s_hb_v1[] = {0x08, 0x01, 0x72, 0x06, 0x08, 0x01, 0x10, 0x01, 0x18, 0x01};
static const uint8_t s_hb_v2[] = {0x08, 0x02, 0x72, 0x06, 0x08, 0x01, 0x10, 0x01, 0x18, 0x01};
static const uint8_t s_hb_v0[] = {0x08, 0x00, 0x72, 0x06, 0x08, 0x01, 0x10, 0x01, 0x18, 0x01};
/* heartbeat without its required time_ms */
static const uint8_t s_hb_short[] = {0x08, 0x01, 0x72, 0x04, 0x08, 0x01, 0x10, 0x01};
/* no version at all */
static const uint8_t s_hb_nover[] = {0x72, 0x06, 0x08, 0x01, 0x10, 0x01, 0x18, 0x01};
/* version only */
static const uint8_t s_nobody[] = {0x08, 0x01};
/* version and a body type from a newer protocol (field 30): no body we know */
static const uint8_t s_newbody[] = {0x08, 0x01, 0xF2, 0x01, 0x02, 0x08, 0x01};
/* heartbeat with an unknown field 9 inside: ignored */
static const uint8_t s_hb_unknown[] = {0x08, 0x01, 0x72, 0x08, 0x08, 0x01,
                                       0x10, 0x01, 0x18, 0x01, 0x48, 0x05};
/* a length that runs past the end */
static const uint8_t s_overrun[] = {0x08, 0x01, 0x72, 0x7f, 0x08, 0x01};

static const struct {
    const char *name;
    const uint8_t *buf;
    size_t len;
    wire_err_t want;
} s_handmade[] = {
    {"v1 heartbeat", s_hb_v1, sizeof(s_hb_v1), WIRE_OK},
    {"v2 heartbeat", s_hb_v2, sizeof(s_hb_v2), WIRE_ERR_VERSION},
    {"v0 heartbeat", s_hb_v0, sizeof(s_hb_v0), WIRE_ERR_VERSION},
    {"missing required", s_hb_short, sizeof(s_hb_short), WIRE_ERR_GARBAGE},
    {"missing version", s_hb_nover, sizeof(s_hb_nover), WIRE_ERR_GARBAGE},
    {"no body", s_nobody, sizeof(s_nobody), WIRE_ERR_NOBODY},
    {"unknown body", s_newbody, sizeof(s_newbody), WIRE_ERR_NOBODY},
    {"unknown field", s_hb_unknown, sizeof(s_hb_unknown), WIRE_OK},
    {"length overrun", s_overrun, sizeof(s_overrun), WIRE_ERR_GARBAGE},
};

static void test_handmade_frames(void **state)
{
    for (size_t i = 0; i < sizeof(s_handmade) / sizeof(s_handmade[0]); i++) {
        pb_t pb = {(uint8_t *)s_handmade[i].buf, s_handmade[i].len, 0};
        wire_err_t got = s_unpack_err(&pb);
        if (got != s_handmade[i].want)
            fail_msg("%s: got %s, want %s", s_handmade[i].name, wire_err_name(got),
                     wire_err_name(s_handmade[i].want));
    }
}

static void test_batch_event_count_limit(void **state)
{
    raw_batch_t r = s_good_batch;
    r.events = WIRE_MAX_EVENTS;
    assert_int_equal(s_raw_batch_err(&r), WIRE_OK);
    r.events = WIRE_MAX_EVENTS + 1;
    assert_int_equal(s_raw_batch_err(&r), WIRE_ERR_LIMIT);
}

static void test_sender_refuses_too_many_events(void **state)
{
    built_t *b = xmalloc(sizeof(*b));
    size_t len;
    wire_err_t err = WIRE_OK;
    s_build(b, BACKSTOP__FRAME__BODY_EVENTS);
    Backstop__Event **many = xcalloc(WIRE_MAX_EVENTS + 1, sizeof(*many));
    for (size_t i = 0; i <= WIRE_MAX_EVENTS; i++)
        many[i] = &b->event;
    b->batch.events = many;
    b->batch.n_events = WIRE_MAX_EVENTS + 1;
    assert_null(wire_pack(&b->frame, &len, &err));
    assert_int_equal(err, WIRE_ERR_LIMIT);
    b->batch.n_events = WIRE_MAX_EVENTS;
    uint8_t *buf = wire_pack(&b->frame, &len, &err);
    assert_non_null(buf);
    xfree(buf);
    xfree(many);
    xfree(b);
}

static void test_string_limits(void **state)
{
    char *id64 = s_repeat('s', WIRE_MAX_ID), *id65 = s_repeat('s', WIRE_MAX_ID + 1);
    char *t256 = s_repeat('k', WIRE_MAX_TEXT), *t257 = s_repeat('k', WIRE_MAX_TEXT + 1);
    const struct {
        const char *site, *text, *rule;
        wire_err_t want;
    } cases[] = {
        {id64, "k", NULL, WIRE_OK}, {id65, "k", NULL, WIRE_ERR_LIMIT},
        {"s", t256, NULL, WIRE_OK}, {"s", t257, NULL, WIRE_ERR_LIMIT},
        {"s", "k", id64, WIRE_OK},  {"s", "k", id65, WIRE_ERR_LIMIT},
        {"s", "", NULL, WIRE_OK},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        raw_batch_t r = s_good_batch;
        r.site = cases[i].site;
        r.key_text = cases[i].text;
        r.rule = cases[i].rule;
        wire_err_t got = s_raw_batch_err(&r);
        if (got != cases[i].want)
            fail_msg("case %zu: got %s, want %s", i, wire_err_name(got),
                     wire_err_name(cases[i].want));
    }
    xfree(id64), xfree(id65), xfree(t256), xfree(t257);
}

static void test_client_ip_length(void **state)
{
    static const struct {
        size_t len;
        wire_err_t want;
    } cases[] = {{0, WIRE_OK},  {1, WIRE_ERR_VALUE}, {3, WIRE_ERR_VALUE},
                 {4, WIRE_OK},  {5, WIRE_ERR_VALUE}, {15, WIRE_ERR_VALUE},
                 {16, WIRE_OK}, {17, WIRE_ERR_VALUE}};
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        raw_batch_t r = s_good_batch;
        r.ip_len = cases[i].len;
        assert_int_equal(s_raw_batch_err(&r), cases[i].want);
    }
}

static void test_present_but_empty_ip_is_refused(void **state)
{
    pb_t frame = {0}, batch = {0}, ev = {0};
    s_pb_uint(&frame, 1, 1);
    s_pb_str(&batch, 1, "site1");
    s_pb_str(&batch, 2, "mx1");
    s_pb_uint(&ev, 1, 1);
    s_pb_uint(&ev, 2, 1);
    s_pb_bytes(&ev, 3, "", 0);
    s_pb_uint(&ev, 4, 2);
    s_pb_sub(&batch, 3, &ev);
    s_pb_sub(&frame, 10, &batch);
    assert_int_equal(s_unpack_err(&frame), WIRE_ERR_VALUE);
    xfree(frame.buf);
}

static void test_unknown_enum_values(void **state)
{
    static const struct {
        uint64_t msg_class, scope;
        wire_err_t want;
    } cases[] = {
        {2, 1, WIRE_OK},         {5, 7, WIRE_OK},        {6, 1, WIRE_ERR_VALUE},
        {99, 1, WIRE_ERR_VALUE}, {2, 8, WIRE_ERR_VALUE}, {2, 0xffffffffULL, WIRE_ERR_VALUE},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        raw_batch_t r = s_good_batch;
        r.msg_class = cases[i].msg_class;
        r.scope = cases[i].scope;
        assert_int_equal(s_raw_batch_err(&r), cases[i].want);
    }
}

static void test_utf8_is_checked(void **state)
{
    static const struct {
        const char *text;
        wire_err_t want;
    } cases[] = {
        {"plain ascii", WIRE_OK},
        {"caf\xc3\xa9", WIRE_OK},             /* U+00E9 */
        {"\xe2\x82\xac 5", WIRE_OK},          /* U+20AC */
        {"\xf0\x9f\x93\xa7", WIRE_OK},        /* U+1F4E7 */
        {"caf\xe9", WIRE_ERR_VALUE},          /* Latin-1 */
        {"\xc0\xaf", WIRE_ERR_VALUE},         /* overlong '/' */
        {"\xe0\x80\xaf", WIRE_ERR_VALUE},     /* overlong, 3 bytes */
        {"\xed\xa0\x80", WIRE_ERR_VALUE},     /* surrogate D800 */
        {"\xf4\x90\x80\x80", WIRE_ERR_VALUE}, /* above U+10FFFF */
        {"\xe2\x82", WIRE_ERR_VALUE},         /* cut short */
        {"\x80 stray", WIRE_ERR_VALUE},       /* continuation first */
        {"\xff", WIRE_ERR_VALUE},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        raw_batch_t r = s_good_batch;
        r.key_text = cases[i].text;
        wire_err_t got = s_raw_batch_err(&r);
        if (got != cases[i].want)
            fail_msg("case %zu: got %s, want %s", i, wire_err_name(got),
                     wire_err_name(cases[i].want));
    }
}

static void test_sender_refuses_missing_body(void **state)
{
    Backstop__Frame frame;
    size_t len;
    wire_err_t err = WIRE_OK;
    wire_frame_init(&frame, BACKSTOP__FRAME__BODY__NOT_SET, NULL);
    assert_null(wire_pack(&frame, &len, &err));
    assert_int_equal(err, WIRE_ERR_NOBODY);
    wire_frame_init(&frame, BACKSTOP__FRAME__BODY_HEARTBEAT, NULL);
    assert_null(wire_pack(&frame, &len, &err));
    assert_int_equal(err, WIRE_ERR_NOBODY);
    /* a required sub-message left NULL */
    Backstop__DecisionUpdate up = BACKSTOP__DECISION_UPDATE__INIT;
    wire_frame_init(&frame, BACKSTOP__FRAME__BODY_UPDATE, &up);
    assert_null(wire_pack(&frame, &len, &err));
    assert_int_equal(err, WIRE_ERR_NOBODY);
}

/* xorshift64: a fixed, portable sequence */
static uint64_t s_rand(uint64_t *s)
{
    *s ^= *s << 13;
    *s ^= *s >> 7;
    *s ^= *s << 17;
    return *s;
}

static void test_random_garbage_fails_cleanly(void **state)
{
    uint64_t seed = 0x9e3779b97f4a7c15ULL;
    size_t decoded = 0;
    uint8_t *buf = xmalloc(512);
    for (int iter = 0; iter < 200000; iter++) {
        size_t len = 1 + s_rand(&seed) % 512;
        for (size_t i = 0; i < len; i++)
            buf[i] = (uint8_t)s_rand(&seed);
        pb_t pb = {buf, len, 0};
        if (s_unpack_err(&pb) == WIRE_OK)
            decoded++;
    }
    /* random bytes are essentially never a valid v1 frame with a body */
    assert_true(decoded < 10);
    xfree(buf);
}

static void test_mutated_frames_fail_cleanly(void **state)
{
    uint64_t seed = 12345;
    for (size_t b = 0; b < N_BODIES; b++) {
        size_t len;
        uint8_t *orig = s_pack_body(s_bodies[b], &len);
        uint8_t *buf = xmalloc(len);
        for (int iter = 0; iter < 5000; iter++) {
            memcpy(buf, orig, len);
            int flips = 1 + (int)(s_rand(&seed) % 4);
            for (int k = 0; k < flips; k++)
                buf[s_rand(&seed) % len] = (uint8_t)s_rand(&seed);
            pb_t pb = {buf, len, 0};
            (void)s_unpack_err(&pb);
        }
        xfree(buf);
        xfree(orig);
    }
}

static void test_error_names_are_distinct(void **state)
{
    for (int a = 0; a < WIRE_ERR__COUNT; a++) {
        assert_non_null(wire_err_name(a));
        assert_string_not_equal(wire_err_name(a), "unknown");
        for (int b = a + 1; b < WIRE_ERR__COUNT; b++)
            assert_string_not_equal(wire_err_name(a), wire_err_name(b));
    }
    assert_string_equal(wire_err_name(WIRE_ERR_OVERSIZE), "oversize");
    assert_string_equal(wire_body_name(BACKSTOP__FRAME__BODY_STATUS), "status");
    assert_string_equal(wire_body_name(BACKSTOP__FRAME__BODY__NOT_SET), "none");
}

static void test_free_is_safe_twice(void **state)
{
    Backstop__Frame *f = wire_unpack(s_hb_v1, sizeof(s_hb_v1), NULL);
    assert_non_null(f);
    wire_free(&f);
    assert_null(f);
    wire_free(&f);
}

/* A batch of n events, each with one key of text: a frame bigger than one arena chunk. */
static uint8_t *s_pack_big_batch(size_t n, size_t *len)
{
    Backstop__Event *ev = xcalloc(n, sizeof(*ev));
    Backstop__Event **evp = xcalloc(n, sizeof(*evp));
    Backstop__Key *key = xcalloc(n, sizeof(*key));
    Backstop__Key **keyp = xcalloc(n, sizeof(*keyp));
    for (size_t i = 0; i < n; i++) {
        backstop__event__init(&ev[i]);
        backstop__key__init(&key[i]);
        key[i].scope = BACKSTOP__SCOPE__SUBJECT;
        key[i].fp = i;
        key[i].text = "a subject of some length, to fill the arena up";
        keyp[i] = &key[i];
        ev[i].seq = i + 1;
        ev[i].keys = &keyp[i];
        ev[i].n_keys = 1;
        evp[i] = &ev[i];
    }
    Backstop__EventBatch b = BACKSTOP__EVENT_BATCH__INIT;
    b.site = "site1";
    b.sensor = "mx1";
    b.events = evp;
    b.n_events = n;
    Backstop__Frame f;
    wire_frame_init(&f, BACKSTOP__FRAME__BODY_EVENTS, &b);
    uint8_t *buf = wire_pack(&f, len, NULL);
    xfree(ev);
    xfree(evp);
    xfree(key);
    xfree(keyp);
    return buf;
}

static void test_arena_frames_equal_heap_frames_until_reset(void **state)
{
    wire_arena_t *a = wire_arena_new();
    for (int round = 0; round < 3; round++) {
        /* every body, and a batch far bigger than a chunk, side by side in the arena */
        Backstop__Frame *f[N_BODIES + 1];
        uint8_t *buf[N_BODIES + 1];
        size_t len[N_BODIES + 1];
        for (size_t i = 0; i < N_BODIES; i++)
            buf[i] = s_pack_body(s_bodies[i], &len[i]);
        buf[N_BODIES] = s_pack_big_batch(WIRE_MAX_EVENTS, &len[N_BODIES]);
        for (size_t i = 0; i <= N_BODIES; i++) {
            wire_err_t err = WIRE_ERR__COUNT;
            f[i] = wire_unpack_in(a, buf[i], len[i], &err);
            assert_non_null(f[i]);
            assert_int_equal(err, WIRE_OK);
        }
        /* all still intact after the others were unpacked: they re-pack to the input */
        for (size_t i = 0; i <= N_BODIES; i++) {
            size_t len2;
            uint8_t *buf2 = wire_pack(f[i], &len2, NULL);
            assert_int_equal(len2, len[i]);
            assert_memory_equal(buf2, buf[i], len2);
            xfree(buf2);
            xfree(buf[i]);
        }
        assert_int_equal(f[N_BODIES]->events->n_events, WIRE_MAX_EVENTS);
        wire_arena_reset(a);
    }
    wire_arena_destroy(&a);
    assert_null(a);
    wire_arena_destroy(&a);
}

static void test_arena_reuses_its_memory_after_reset(void **state)
{
    /* under ASan a stale pointer into a reused chunk would be caught by the re-pack */
    wire_arena_t *a = wire_arena_new();
    size_t len;
    uint8_t *big = s_pack_big_batch(WIRE_MAX_EVENTS, &len);
    for (int round = 0; round < 50; round++) {
        Backstop__Frame *f = wire_unpack_in(a, big, len, NULL);
        assert_non_null(f);
        assert_int_equal(f->events->n_events, WIRE_MAX_EVENTS);
        assert_int_equal(f->events->events[WIRE_MAX_EVENTS - 1]->seq, WIRE_MAX_EVENTS);
        size_t len2;
        uint8_t *again = wire_pack(f, &len2, NULL);
        assert_int_equal(len2, len);
        assert_memory_equal(again, big, len);
        xfree(again);
        wire_arena_reset(a);
    }
    xfree(big);
    wire_arena_destroy(&a);
}

static void test_arena_takes_bad_input_without_leaks(void **state)
{
    /* run under ASan: a refused frame's partial allocations go with the reset */
    wire_arena_t *a = wire_arena_new();
    uint64_t seed = 777;
    for (size_t b = 0; b < N_BODIES; b++) {
        size_t len;
        uint8_t *orig = s_pack_body(s_bodies[b], &len);
        for (size_t n = 0; n < len; n++) {
            wire_err_t err = WIRE_OK;
            Backstop__Frame *f = wire_unpack_in(a, orig, n, &err);
            if (f == NULL)
                assert_true(err > WIRE_OK && err < WIRE_ERR__COUNT);
        }
        for (int iter = 0; iter < 500; iter++) {
            uint8_t *buf = xmalloc(len);
            memcpy(buf, orig, len);
            buf[s_rand(&seed) % len] = (uint8_t)s_rand(&seed);
            (void)wire_unpack_in(a, buf, len, NULL);
            xfree(buf);
            if (iter % 50 == 0)
                wire_arena_reset(a);
        }
        xfree(orig);
    }
    wire_arena_destroy(&a);
}

/* ---- event batches as columns ---- */

#define COL_EVENTS 1100 /* room for per-event columns (more than WIRE_MAX_EVENTS) */
#define COL_KEYS   64   /* room for key columns */

/* What a hand-made EventColumns batch contains: every column with its own length, so a case
 * can make exactly one of them wrong. */
typedef struct {
    size_t n_seq, n_time, n_class, n_flags, n_iplen, n_kcount, n_scope, n_fp, n_tlen, n_rcount;
    uint64_t seq[COL_EVENTS];    /* deltas as on the wire */
    int64_t time[COL_EVENTS];    /* deltas */
    uint64_t cls[COL_EVENTS];    /* msg_class */
    uint64_t flags[COL_EVENTS];  /* flags */
    uint64_t iplen[COL_EVENTS];  /* ip_len */
    uint64_t kcount[COL_EVENTS]; /* key_count */
    uint64_t rcount[COL_EVENTS]; /* rule_count */
    uint64_t scope[COL_KEYS];    /* key_scope */
    uint64_t fp[COL_KEYS];       /* key_fp */
    uint64_t tlen[COL_KEYS];     /* key_text_len */
    uint8_t ip[64];              /* client_ip blob */
    size_t ip_bytes;             /* its length */
    bool has_ip;                 /* blob present */
    char text[1024];             /* key_text blob */
    size_t text_bytes;           /* its length */
    bool has_text;               /* blob present */
    const char *rules[40];       /* rules */
    size_t nrules;               /* how many */
    const char *ids[8];          /* decision_id */
    size_t nids;                 /* how many */
    bool with_row;               /* also one row event */
} cols_t;

/* Appends a packed field of varints (zigzag: sint64). */
static void s_pb_packed(pb_t *pb, unsigned field, const uint64_t *v, size_t n, bool zigzag)
{
    pb_t sub = {0};
    for (size_t i = 0; i < n; i++)
        s_pb_varint(&sub, zigzag ? ((v[i] << 1) ^ (uint64_t)((int64_t)v[i] >> 63)) : v[i]);
    if (n)
        s_pb_sub(pb, field, &sub);
}

static pb_t s_raw_columns(const cols_t *c)
{
    pb_t frame = {0}, batch = {0}, cols = {0};
    s_pb_uint(&frame, 1, WIRE_VERSION);
    s_pb_str(&batch, 1, "site1");
    s_pb_str(&batch, 2, "mx1");
    if (c->with_row) {
        pb_t ev = {0};
        s_pb_uint(&ev, 1, 1);
        s_pb_uint(&ev, 2, 1);
        s_pb_uint(&ev, 4, 2);
        s_pb_sub(&batch, 3, &ev);
    }
    uint64_t t[COL_EVENTS];
    for (size_t i = 0; i < c->n_time; i++)
        t[i] = (uint64_t)c->time[i];
    s_pb_packed(&cols, 1, c->seq, c->n_seq, false);
    s_pb_packed(&cols, 2, t, c->n_time, true);
    s_pb_packed(&cols, 3, c->cls, c->n_class, false);
    s_pb_packed(&cols, 4, c->flags, c->n_flags, false);
    s_pb_packed(&cols, 5, c->iplen, c->n_iplen, false);
    if (c->has_ip)
        s_pb_bytes(&cols, 6, c->ip, c->ip_bytes);
    s_pb_packed(&cols, 7, c->kcount, c->n_kcount, false);
    s_pb_packed(&cols, 8, c->scope, c->n_scope, false);
    if (c->n_fp) {
        pb_t sub = {0};
        for (size_t i = 0; i < c->n_fp; i++)
            for (int b = 0; b < 8; b++) {
                uint8_t byte = (uint8_t)(c->fp[i] >> (8 * b));
                s_pb_raw(&sub, &byte, 1);
            }
        s_pb_sub(&cols, 9, &sub);
    }
    s_pb_packed(&cols, 10, c->tlen, c->n_tlen, false);
    if (c->has_text)
        s_pb_bytes(&cols, 11, c->text, c->text_bytes);
    s_pb_packed(&cols, 12, c->rcount, c->n_rcount, false);
    for (size_t i = 0; i < c->nrules; i++)
        s_pb_str(&cols, 13, c->rules[i]);
    for (size_t i = 0; i < c->nids; i++)
        s_pb_str(&cols, 14, c->ids[i]);
    s_pb_sub(&batch, 4, &cols);
    s_pb_sub(&frame, 10, &batch);
    return frame;
}

static wire_err_t s_raw_columns_err(const cols_t *c)
{
    pb_t pb = s_raw_columns(c);
    wire_err_t err = s_unpack_err(&pb);
    xfree(pb.buf);
    return err;
}

/* Appends one key with text t (NULL: none) to c. */
static void s_col_key(cols_t *c, uint64_t scope, uint64_t fp, const char *t)
{
    size_t len = t ? strlen(t) : 0;
    c->scope[c->n_scope++] = scope;
    c->fp[c->n_fp++] = fp;
    c->tlen[c->n_tlen++] = len;
    memcpy(c->text + c->text_bytes, t ? t : "", len);
    c->text_bytes += len;
    c->has_text = c->text_bytes > 0;
}

/* Three good events: IPv4 with two keys and ledger/headers flags; IPv6, one UTF-8 key, two
 * rules, enforced with a decision id; no address, three keys (one without text). */
static cols_t *s_good_columns(void)
{
    cols_t *c = xcalloc(1, sizeof(*c));
    static const uint64_t seq[] = {100, 1, 7};
    static const int64_t time[] = {1700000000000LL, 5, -3};
    static const uint64_t cls[] = {2, 3, 1};
    static const uint64_t flags[] = {0x1 | 1u << 1, 1u << 3 | 0x20, 0};
    static const uint64_t iplen[] = {4, 16, 0};
    static const uint64_t kcount[] = {2, 1, 3};
    static const uint64_t rcount[] = {0, 2, 0};
    c->n_seq = c->n_time = c->n_class = c->n_flags = c->n_iplen = c->n_kcount = c->n_rcount = 3;
    memcpy(c->seq, seq, sizeof(seq));
    memcpy(c->time, time, sizeof(time));
    memcpy(c->cls, cls, sizeof(cls));
    memcpy(c->flags, flags, sizeof(flags));
    memcpy(c->iplen, iplen, sizeof(iplen));
    memcpy(c->kcount, kcount, sizeof(kcount));
    memcpy(c->rcount, rcount, sizeof(rcount));
    static const uint8_t ip[20] = {192, 0, 2, 1, 0x20, 0x01, 0x0d, 0xb8, [19] = 1};
    memcpy(c->ip, ip, sizeof(ip));
    c->ip_bytes = 20;
    c->has_ip = true;
    s_col_key(c, 1, 11, "cheap watches");
    s_col_key(c, 3, 12, "192.0.2.1");
    s_col_key(c, 2, 13, "r\xc3\xa9sum\xc3\xa9");
    s_col_key(c, 1, 14, "abc");
    s_col_key(c, 4, 15, NULL);
    s_col_key(c, 5, 16, "abc|2001:db8::1");
    c->rules[c->nrules++] = "r1";
    c->rules[c->nrules++] = "r2";
    c->ids[c->nids++] = "D-1";
    return c;
}

static void s_m_time_short(cols_t *c)
{
    c->n_time--;
}
static void s_m_time_long(cols_t *c)
{
    c->time[c->n_time++] = 1;
}
static void s_m_class_short(cols_t *c)
{
    c->n_class--;
}
static void s_m_flags_long(cols_t *c)
{
    c->flags[c->n_flags++] = 0;
}
static void s_m_kcount_short(cols_t *c)
{
    c->n_kcount--;
}
static void s_m_iplen_short(cols_t *c)
{
    c->n_iplen--;
}
static void s_m_rcount_long(cols_t *c)
{
    c->rcount[c->n_rcount++] = 0;
}
static void s_m_scope_long(cols_t *c)
{
    c->scope[c->n_scope++] = 1;
}
static void s_m_fp_short(cols_t *c)
{
    c->n_fp--;
}
static void s_m_tlen_short(cols_t *c)
{
    c->n_tlen--;
}
static void s_m_kcount_more(cols_t *c)
{
    c->kcount[2]++;
}
static void s_m_ip_blob_short(cols_t *c)
{
    c->ip_bytes--;
}
static void s_m_ip_blob_absent(cols_t *c)
{
    c->has_ip = false;
}
static void s_m_text_blob_long(cols_t *c)
{
    c->text[c->text_bytes++] = 'x';
}
static void s_m_text_blob_absent(cols_t *c)
{
    c->has_text = false;
}
static void s_m_rules_extra(cols_t *c)
{
    c->rules[c->nrules++] = "r3";
}
static void s_m_id_missing(cols_t *c)
{
    c->nids = 0;
}
static void s_m_id_extra(cols_t *c)
{
    c->ids[c->nids++] = "D-2";
}
static void s_m_both_forms(cols_t *c)
{
    c->with_row = true;
}
static void s_m_bad_class(cols_t *c)
{
    c->cls[1] = 99;
}
static void s_m_bad_scope(cols_t *c)
{
    c->scope[3] = 42;
}
static void s_m_bad_flag_bit(cols_t *c)
{
    c->flags[2] |= 0x40;
}
static void s_m_bad_original(cols_t *c)
{
    c->flags[2] |= 3u << 1;
}
static void s_m_bad_ip_len(cols_t *c)
{
    c->iplen[0] = 5, c->ip_bytes++;
}
static void s_m_nul_in_text(cols_t *c)
{
    c->text[2] = '\0';
}
static void s_m_bad_utf8(cols_t *c)
{
    c->text[0] = (char)0xC0, c->text[1] = (char)0x80;
}
/* "resume" with its accents moved: the first text ends in a lead byte, the next starts with
 * its continuation; the blob is valid UTF-8 as a whole, each text is not */
static void s_m_utf8_across_texts(cols_t *c)
{
    size_t first = c->tlen[0];
    c->text[first - 1] = (char)0xC3;
    c->text[first] = (char)0xA9;
}
static void s_m_long_rule(cols_t *c)
{
    static char r[WIRE_MAX_ID + 2];
    memset(r, 'r', WIRE_MAX_ID + 1);
    c->rules[0] = r;
}
static void s_m_bad_utf8_id(cols_t *c)
{
    c->ids[0] = "D\xff";
}
static void s_m_long_text(cols_t *c)
{
    /* the last key's text grows to WIRE_MAX_TEXT + 1 bytes, the blob with it */
    size_t grow = WIRE_MAX_TEXT + 1 - c->tlen[c->n_tlen - 1];
    memset(c->text + c->text_bytes, 'k', grow);
    c->text_bytes += grow;
    c->tlen[c->n_tlen - 1] = WIRE_MAX_TEXT + 1;
}
static void s_m_max_text(cols_t *c)
{
    size_t grow = WIRE_MAX_TEXT - c->tlen[c->n_tlen - 1];
    memset(c->text + c->text_bytes, 'k', grow);
    c->text_bytes += grow;
    c->tlen[c->n_tlen - 1] = WIRE_MAX_TEXT;
}
static void s_m_too_many_keys(cols_t *c)
{
    while (c->kcount[2] < WIRE_MAX_KEYS + 1) {
        s_col_key(c, 1, 99, NULL);
        c->kcount[2]++;
    }
}
static void s_m_max_keys(cols_t *c)
{
    while (c->kcount[2] < WIRE_MAX_KEYS) {
        s_col_key(c, 1, 99, NULL);
        c->kcount[2]++;
    }
}
static void s_m_too_many_rules(cols_t *c)
{
    c->rcount[2] = WIRE_MAX_RULES + 1;
    while (c->nrules < 2 + WIRE_MAX_RULES + 1)
        c->rules[c->nrules++] = "rx";
}
static void s_m_events(cols_t *c, size_t n)
{
    while (c->n_seq < n) {
        size_t i = c->n_seq;
        c->seq[i] = 1, c->time[i] = 1, c->cls[i] = 2, c->flags[i] = 0, c->iplen[i] = 0;
        c->kcount[i] = 0, c->rcount[i] = 0;
        c->n_seq++, c->n_time++, c->n_class++, c->n_flags++, c->n_iplen++, c->n_kcount++;
        c->n_rcount++;
    }
}
static void s_m_max_events(cols_t *c)
{
    s_m_events(c, WIRE_MAX_EVENTS);
}
static void s_m_too_many_events(cols_t *c)
{
    s_m_events(c, WIRE_MAX_EVENTS + 1);
}
static void s_m_no_ip_column(cols_t *c)
{
    c->n_iplen = 0, c->has_ip = false;
}
static void s_m_no_rule_column(cols_t *c)
{
    c->n_rcount = 0, c->nrules = 0;
}
static void s_m_nothing(cols_t *c)
{
    (void)c;
}

static const struct {
    const char *name;          /* what is wrong */
    void (*mutate)(cols_t *c); /* makes it wrong */
    wire_err_t want;           /* the receiver's verdict */
} s_column_cases[] = {
    {"good", s_m_nothing, WIRE_OK},
    {"no ip_len column (no addresses)", s_m_no_ip_column, WIRE_OK},
    {"no rule_count column (no rules)", s_m_no_rule_column, WIRE_OK},
    {"WIRE_MAX_EVENTS events", s_m_max_events, WIRE_OK},
    {"WIRE_MAX_KEYS keys", s_m_max_keys, WIRE_OK},
    {"WIRE_MAX_TEXT text", s_m_max_text, WIRE_OK},
    {"time_ms short", s_m_time_short, WIRE_ERR_GARBAGE},
    {"time_ms long", s_m_time_long, WIRE_ERR_GARBAGE},
    {"msg_class short", s_m_class_short, WIRE_ERR_GARBAGE},
    {"flags long", s_m_flags_long, WIRE_ERR_GARBAGE},
    {"key_count short", s_m_kcount_short, WIRE_ERR_GARBAGE},
    {"ip_len short", s_m_iplen_short, WIRE_ERR_GARBAGE},
    {"rule_count long", s_m_rcount_long, WIRE_ERR_GARBAGE},
    {"key_scope long", s_m_scope_long, WIRE_ERR_GARBAGE},
    {"key_fp short", s_m_fp_short, WIRE_ERR_GARBAGE},
    {"key_text_len short", s_m_tlen_short, WIRE_ERR_GARBAGE},
    {"key_count sums past the key columns", s_m_kcount_more, WIRE_ERR_GARBAGE},
    {"client_ip blob short", s_m_ip_blob_short, WIRE_ERR_GARBAGE},
    {"client_ip blob absent", s_m_ip_blob_absent, WIRE_ERR_GARBAGE},
    {"key_text blob long", s_m_text_blob_long, WIRE_ERR_GARBAGE},
    {"key_text blob absent", s_m_text_blob_absent, WIRE_ERR_GARBAGE},
    {"a rule label too many", s_m_rules_extra, WIRE_ERR_GARBAGE},
    {"decision_id missing", s_m_id_missing, WIRE_ERR_GARBAGE},
    {"decision_id too many", s_m_id_extra, WIRE_ERR_GARBAGE},
    {"rows and columns", s_m_both_forms, WIRE_ERR_VALUE},
    {"unknown msg_class", s_m_bad_class, WIRE_ERR_VALUE},
    {"unknown scope", s_m_bad_scope, WIRE_ERR_VALUE},
    {"unknown flag bit", s_m_bad_flag_bit, WIRE_ERR_VALUE},
    {"unknown original", s_m_bad_original, WIRE_ERR_VALUE},
    {"ip_len 5", s_m_bad_ip_len, WIRE_ERR_VALUE},
    {"NUL in a key text", s_m_nul_in_text, WIRE_ERR_VALUE},
    {"overlong UTF-8 in a key text", s_m_bad_utf8, WIRE_ERR_VALUE},
    {"UTF-8 split across two key texts", s_m_utf8_across_texts, WIRE_ERR_VALUE},
    {"invalid UTF-8 in a decision id", s_m_bad_utf8_id, WIRE_ERR_VALUE},
    {"rule label over WIRE_MAX_ID", s_m_long_rule, WIRE_ERR_LIMIT},
    {"key text over WIRE_MAX_TEXT", s_m_long_text, WIRE_ERR_LIMIT},
    {"keys over WIRE_MAX_KEYS", s_m_too_many_keys, WIRE_ERR_LIMIT},
    {"rules over WIRE_MAX_RULES", s_m_too_many_rules, WIRE_ERR_LIMIT},
    {"events over WIRE_MAX_EVENTS", s_m_too_many_events, WIRE_ERR_LIMIT},
};

static void test_columns_malformed_are_refused_by_reason(void **state)
{
    for (size_t i = 0; i < sizeof(s_column_cases) / sizeof(s_column_cases[0]); i++) {
        cols_t *c = s_good_columns();
        s_column_cases[i].mutate(c);
        wire_err_t got = s_raw_columns_err(c);
        xfree(c);
        if (got != s_column_cases[i].want)
            fail_msg("%s: got %s, want %s", s_column_cases[i].name, wire_err_name(got),
                     wire_err_name(s_column_cases[i].want));
    }
}

/* Plain ASCII key texts are checked a word at a time: a NUL or a byte >= 0x80 anywhere in
 * them (at each position, in a word or in the tail) is still refused, DEL is not. */
static void test_columns_ascii_texts_every_position(void **state)
{
    static const struct {
        char byte;
        wire_err_t want;
    } bytes[] = {{'\0', WIRE_ERR_VALUE},
                 {(char)0x80, WIRE_ERR_VALUE},
                 {(char)0xFF, WIRE_ERR_VALUE},
                 {0x7F, WIRE_OK},
                 {0x01, WIRE_OK}};
    for (size_t b = 0; b < sizeof(bytes) / sizeof(bytes[0]); b++)
        for (size_t at = 0; at < 37; at++) {
            cols_t *c = xcalloc(1, sizeof(*c));
            s_m_events(c, 1);
            c->n_iplen = c->n_rcount = 0;
            c->kcount[0] = 2;
            s_col_key(c, 1, 1, "twenty ascii bytes..");
            s_col_key(c, 2, 2, "seventeen bytes..");
            c->text[at] = bytes[b].byte;
            wire_err_t got = s_raw_columns_err(c);
            xfree(c);
            if (got != bytes[b].want)
                fail_msg("byte 0x%02x at %zu: got %s, want %s", (unsigned char)bytes[b].byte, at,
                         wire_err_name(got), wire_err_name(bytes[b].want));
        }
}

static void test_columns_handmade_view(void **state)
{
    cols_t *c = s_good_columns();
    pb_t pb = s_raw_columns(c);
    xfree(c);
    Backstop__Frame *f = wire_unpack(pb.buf, pb.len, NULL);
    assert_non_null(f);
    assert_true(wire_batch_is_columnar(f->events));
    wire_events_t it;
    assert_int_equal(wire_events_open(&it, f->events), 3);
    wire_event_t e;
    wire_key_t k[WIRE_MAX_KEYS];
    assert_true(wire_events_next(&it, &e, k));
    assert_int_equal(e.seq, 100);
    assert_int_equal(e.time_ms, 1700000000000LL);
    assert_int_equal(e.client_ip_len, 4);
    assert_int_equal(e.client_ip[0], 192);
    assert_int_equal(e.nkeys, 2);
    assert_int_equal(k[1].text_len, 9);
    assert_memory_equal(k[1].text, "192.0.2.1", 9);
    assert_true(e.ledger_hit);
    assert_int_equal(e.original, BACKSTOP__ORIGINAL__ORIGINAL_HEADERS);
    assert_int_equal(e.enforced, 0);
    assert_null(e.decision_id);
    assert_true(wire_events_next(&it, &e, k));
    assert_int_equal(e.seq, 101);
    assert_int_equal(e.time_ms, 1700000000005LL);
    assert_int_equal(e.client_ip_len, 16);
    assert_int_equal(e.client_ip[0], 0x20);
    assert_int_equal(e.client_ip[15], 1);
    assert_int_equal(e.nrules, 2);
    assert_string_equal(e.rules[1], "r2");
    assert_int_equal(e.enforced, BACKSTOP__ACTION__REJECT);
    assert_string_equal(e.decision_id, "D-1");
    assert_int_equal(k[0].text_len, 8);
    assert_true(wire_events_next(&it, &e, k));
    assert_int_equal(e.seq, 108);
    assert_int_equal(e.time_ms, 1700000000002LL);
    assert_null(e.client_ip);
    assert_int_equal(e.nkeys, 3);
    assert_null(k[1].text);
    assert_int_equal(k[1].text_len, 0);
    assert_memory_equal(k[2].text, "abc|2001:db8::1", 15);
    assert_false(wire_events_next(&it, &e, k));
    wire_free(&f);
    xfree(pb.buf);
}

/* A batch with a bit of everything, for round trips: IPv4/IPv6/none, rules, enforced, keys
 * with and without text, seq and time going backwards and to the extremes. */
static wire_batch_t *s_varied_batch(size_t n)
{
    static const uint8_t ip6[16] = {0x20, 0x01, 0x0d, 0xb8, [15] = 9};
    static const uint8_t ip4[4] = {198, 51, 100, 7};
    static const char *const rules[] = {"bounce-wave", "r\xc3\xa8gle"};
    wire_batch_t *b = wire_batch_new();
    for (size_t i = 0; i < n; i++) {
        char t0[32], t1[300];
        snprintf(t0, sizeof(t0), "subject %zu", i % 17);
        memset(t1, 'a' + (int)(i % 26), sizeof(t1));
        wire_key_t keys[3] = {
            {1, 1000 + i, t0, strlen(t0)},
            {3, 2000 + i, i % 3 ? NULL : "192.0.2.1", i % 3 ? 0 : 9},
            {2, 3000 + i, t1, i % 5 == 0 ? WIRE_MAX_TEXT : i % 40},
        };
        wire_event_t e = {
            .seq = i == 2 ? 5 : (i == 3 ? UINT64_MAX : 1000 + i * 3),
            .time_ms = i == 4 ? INT64_MIN : (i == 5 ? INT64_MAX : 1700000000000LL - (int64_t)i),
            .client_ip = i % 3 == 0 ? ip4 : (i % 3 == 1 ? ip6 : NULL),
            .client_ip_len = i % 3 == 0 ? 4 : (i % 3 == 1 ? 16 : 0),
            .msg_class = (int)(i % 6),
            .keys = keys,
            .nkeys = i % 4,
            .rules = rules,
            .nrules = i % 7 == 1 ? 2 : 0,
            .original = (int)(i % 3),
            .ledger_hit = i % 2,
            .enforced = (int)(i % 4),
            .decision_id = i % 4 == 1 ? "D-42" : NULL,
        };
        wire_batch_add(b, &e);
    }
    return b;
}

/* Asserts that two events (and their keys) say the same. */
static void s_assert_same_event(const wire_event_t *a, const wire_event_t *b)
{
    assert_int_equal(a->seq, b->seq);
    assert_true(a->time_ms == b->time_ms);
    assert_int_equal(a->client_ip_len, b->client_ip_len);
    if (a->client_ip_len)
        assert_memory_equal(a->client_ip, b->client_ip, a->client_ip_len);
    else
        assert_true(a->client_ip == NULL && b->client_ip == NULL);
    assert_int_equal(a->msg_class, b->msg_class);
    assert_int_equal(a->nkeys, b->nkeys);
    for (size_t k = 0; k < a->nkeys; k++) {
        assert_int_equal(a->keys[k].scope, b->keys[k].scope);
        assert_int_equal(a->keys[k].fp, b->keys[k].fp);
        assert_int_equal(a->keys[k].text_len, b->keys[k].text_len);
        assert_true((a->keys[k].text == NULL) == (a->keys[k].text_len == 0));
        assert_true((b->keys[k].text == NULL) == (b->keys[k].text_len == 0));
        if (a->keys[k].text_len)
            assert_memory_equal(a->keys[k].text, b->keys[k].text, a->keys[k].text_len);
    }
    assert_int_equal(a->nrules, b->nrules);
    for (size_t r = 0; r < a->nrules; r++)
        assert_string_equal(a->rules[r], b->rules[r]);
    assert_int_equal(a->original, b->original);
    assert_int_equal(a->ledger_hit, b->ledger_hit);
    assert_int_equal(a->enforced, b->enforced);
    if (a->decision_id || b->decision_id) {
        assert_non_null(a->decision_id);
        assert_non_null(b->decision_id);
        assert_string_equal(a->decision_id, b->decision_id);
    }
}

static void test_columns_and_rows_view_alike(void **state)
{
    wire_batch_t *b = s_varied_batch(300);
    assert_int_equal(wire_batch_count(b), 300);
    size_t lc, lr;
    uint8_t *bc = wire_batch_pack(b, "site1", "mx1", true, &lc, NULL);
    uint8_t *br = wire_batch_pack(b, "site1", "mx1", false, &lr, NULL);
    assert_non_null(bc);
    assert_non_null(br);
    assert_true(lc < lr); /* the point of columns, besides decoding */
    Backstop__Frame *fc = wire_unpack(bc, lc, NULL);
    Backstop__Frame *fr = wire_unpack(br, lr, NULL);
    assert_non_null(fc);
    assert_non_null(fr);
    assert_true(wire_batch_is_columnar(fc->events));
    assert_false(wire_batch_is_columnar(fr->events));
    assert_int_equal(wire_batch_events(fc->events), 300);
    assert_int_equal(wire_batch_events(fr->events), 300);
    wire_events_t ic, ir;
    assert_int_equal(wire_events_open(&ic, fc->events), 300);
    assert_int_equal(wire_events_open(&ir, fr->events), 300);
    wire_event_t ec, er;
    wire_key_t kc[WIRE_MAX_KEYS], kr[WIRE_MAX_KEYS];
    size_t n = 0;
    while (wire_events_next(&ic, &ec, kc)) {
        assert_true(wire_events_next(&ir, &er, kr));
        s_assert_same_event(&ec, &er);
        n++;
    }
    assert_false(wire_events_next(&ir, &er, kr));
    assert_int_equal(n, 300);
    /* and both are what went in: event 3 has the extremes */
    wire_events_open(&ic, fc->events);
    for (int i = 0; i < 6; i++)
        assert_true(wire_events_next(&ic, &ec, kc));
    assert_true(ec.time_ms == INT64_MAX);
    wire_free(&fc);
    wire_free(&fr);
    xfree(bc);
    xfree(br);
    wire_batch_destroy(&b);
    wire_batch_destroy(&b);
}

static void test_columns_round_trip_keeps_every_field(void **state)
{
    wire_batch_t *b = s_varied_batch(40);
    size_t len;
    uint8_t *buf = wire_batch_pack(b, "site1", "mx1", true, &len, NULL);
    assert_non_null(buf);
    Backstop__Frame *f = wire_unpack(buf, len, NULL);
    assert_non_null(f);
    assert_string_equal(f->events->site, "site1");
    assert_string_equal(f->events->sensor, "mx1");
    wire_events_t it;
    wire_events_open(&it, f->events);
    wire_event_t e;
    wire_key_t k[WIRE_MAX_KEYS];
    for (size_t i = 0; wire_events_next(&it, &e, k); i++) {
        assert_int_equal(e.seq, i == 2 ? 5 : (i == 3 ? UINT64_MAX : 1000 + i * 3));
        if (i == 4)
            assert_true(e.time_ms == INT64_MIN);
        assert_int_equal(e.client_ip_len, i % 3 == 0 ? 4 : (i % 3 == 1 ? 16 : 0));
        assert_int_equal(e.msg_class, (int)(i % 6));
        assert_int_equal(e.nkeys, i % 4);
        if (e.nkeys > 1)
            assert_int_equal(k[1].text_len, i % 3 ? 0 : 9);
        if (e.nkeys > 2)
            assert_int_equal(k[2].text_len, i % 5 == 0 ? WIRE_MAX_TEXT : i % 40);
        assert_int_equal(e.nrules, i % 7 == 1 ? 2 : 0);
        if (e.nrules)
            assert_string_equal(e.rules[1], "r\xc3\xa8gle");
        assert_int_equal(e.original, (int)(i % 3));
        assert_int_equal(e.ledger_hit, i % 2);
        assert_int_equal(e.enforced, (int)(i % 4));
        if (i % 4 == 1)
            assert_string_equal(e.decision_id, "D-42");
        else
            assert_null(e.decision_id);
    }
    wire_free(&f);
    xfree(buf);
    /* reset keeps nothing of the last batch */
    wire_batch_reset(b);
    assert_int_equal(wire_batch_count(b), 0);
    buf = wire_batch_pack(b, "site1", "mx1", true, &len, NULL);
    assert_non_null(buf);
    f = wire_unpack(buf, len, NULL);
    assert_non_null(f);
    assert_true(wire_batch_is_columnar(f->events));
    assert_int_equal(wire_events_open(&it, f->events), 0);
    assert_false(wire_events_next(&it, &e, k));
    wire_free(&f);
    xfree(buf);
    wire_batch_destroy(&b);
}

static void test_batch_builder_refuses_what_receivers_drop(void **state)
{
    static const uint8_t ip5[5] = {1, 2, 3, 4, 5};
    char t257[WIRE_MAX_TEXT + 1];
    memset(t257, 't', sizeof(t257));
    wire_key_t many[WIRE_MAX_KEYS + 1];
    for (size_t k = 0; k <= WIRE_MAX_KEYS; k++)
        many[k] = (wire_key_t){1, k, NULL, 0};
    wire_key_t long_text = {1, 1, t257, sizeof(t257)};
    wire_key_t bad_text = {1, 1, "a\xff", 2};
    const struct {
        wire_event_t e;
        wire_err_t want;
    } cases[] = {
        {{.seq = 1, .msg_class = 2, .keys = many, .nkeys = WIRE_MAX_KEYS}, WIRE_OK},
        {{.seq = 1, .msg_class = 2, .keys = many, .nkeys = WIRE_MAX_KEYS + 1}, WIRE_ERR_LIMIT},
        {{.seq = 1, .msg_class = 2, .keys = &long_text, .nkeys = 1}, WIRE_ERR_LIMIT},
        {{.seq = 1, .msg_class = 2, .keys = &bad_text, .nkeys = 1}, WIRE_ERR_VALUE},
        {{.seq = 1, .msg_class = 2, .client_ip = ip5, .client_ip_len = 5}, WIRE_ERR_VALUE},
        {{.seq = 1, .msg_class = 77}, WIRE_ERR_VALUE},
        {{.seq = 1, .msg_class = 2, .original = 7}, WIRE_ERR_VALUE},
        {{.seq = 1, .msg_class = 2, .enforced = 4}, WIRE_ERR_VALUE},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++)
        for (int columns = 0; columns < 2; columns++) {
            wire_batch_t *b = wire_batch_new();
            wire_batch_add(b, &cases[i].e);
            size_t len;
            wire_err_t err = WIRE_ERR__COUNT;
            uint8_t *buf = wire_batch_pack(b, "site1", "mx1", columns, &len, &err);
            if (err != cases[i].want)
                fail_msg("case %zu %s: got %s, want %s", i, columns ? "columns" : "rows",
                         wire_err_name(err), wire_err_name(cases[i].want));
            assert_true((buf != NULL) == (cases[i].want == WIRE_OK));
            xfree(buf);
            wire_batch_destroy(&b);
        }
    /* over WIRE_MAX_EVENTS */
    wire_batch_t *b = wire_batch_new();
    wire_event_t e = {.seq = 1, .msg_class = 2};
    for (size_t i = 0; i <= WIRE_MAX_EVENTS; i++)
        wire_batch_add(b, &e);
    size_t len;
    wire_err_t err = WIRE_OK;
    assert_null(wire_batch_pack(b, "site1", "mx1", true, &len, &err));
    assert_int_equal(err, WIRE_ERR_LIMIT);
    wire_batch_destroy(&b);
}

static void test_columns_mutations_fail_cleanly(void **state)
{
    /* run under ASan: every prefix and random byte changes of a column batch decode or
     * fail with a reason, never over-read or leak, on the heap and in an arena */
    wire_batch_t *b = s_varied_batch(60);
    size_t len;
    uint8_t *orig = wire_batch_pack(b, "site1", "mx1", true, &len, NULL);
    assert_non_null(orig);
    wire_arena_t *a = wire_arena_new();
    for (size_t n = 0; n < len; n++) {
        wire_err_t err = WIRE_OK;
        Backstop__Frame *f = wire_unpack(orig, n, &err);
        if (f == NULL)
            assert_true(err > WIRE_OK && err < WIRE_ERR__COUNT);
        wire_free(&f);
    }
    uint64_t seed = 4242;
    for (int iter = 0; iter < 3000; iter++) {
        uint8_t *buf = xmalloc(len);
        memcpy(buf, orig, len);
        for (int m = 0; m < 1 + iter % 3; m++)
            buf[s_rand(&seed) % len] = (uint8_t)s_rand(&seed);
        Backstop__Frame *f = wire_unpack_in(a, buf, len, NULL);
        if (f && f->body_case == BACKSTOP__FRAME__BODY_EVENTS) {
            /* whatever passed the check can be walked to the end */
            wire_events_t it;
            wire_event_t e;
            wire_key_t k[WIRE_MAX_KEYS];
            size_t n = wire_events_open(&it, f->events), seen = 0;
            while (wire_events_next(&it, &e, k)) {
                for (size_t j = 0; j < e.nkeys; j++)
                    if (k[j].text_len)
                        seed += (unsigned char)k[j].text[k[j].text_len - 1];
                if (e.client_ip_len)
                    seed += e.client_ip[e.client_ip_len - 1];
                seen++;
            }
            assert_int_equal(seen, n);
        }
        xfree(buf);
        if (iter % 50 == 0)
            wire_arena_reset(a);
    }
    wire_arena_destroy(&a);
    xfree(orig);
    wire_batch_destroy(&b);
}

static void test_heartbeat_features_round_trip(void **state)
{
    Backstop__Heartbeat hb = BACKSTOP__HEARTBEAT__INIT;
    hb.epoch = 1;
    hb.has_features = 1;
    hb.features = WIRE_FEATURE_COLUMNS;
    Backstop__Frame f;
    wire_frame_init(&f, BACKSTOP__FRAME__BODY_HEARTBEAT, &hb);
    size_t len;
    uint8_t *buf = wire_pack(&f, &len, NULL);
    assert_non_null(buf);
    Backstop__Frame *got = wire_unpack(buf, len, NULL);
    assert_non_null(got);
    assert_true(got->heartbeat->has_features);
    assert_int_equal(got->heartbeat->features, WIRE_FEATURE_COLUMNS);
    wire_free(&got);
    xfree(buf);
}

/* ---- what an aggregator reads ---- */

/* Only keys of the announced scopes stay, in order; 0 announces every scope. */
static void test_keys_read_keeps_the_announced_scopes(void **state)
{
    (void)state;
    wire_key_t k[4] = {{BACKSTOP__SCOPE__SUBJECT, 1, NULL, 0},
                       {BACKSTOP__SCOPE__CLIENT_NET, 2, NULL, 0},
                       {BACKSTOP__SCOPE__CLIENT_IP, 3, NULL, 0},
                       {99, 4, NULL, 0}};
    assert_int_equal(wire_keys_read(k, 4, 0), 4);
    uint32_t scopes = 1u << BACKSTOP__SCOPE__SUBJECT | 1u << BACKSTOP__SCOPE__CLIENT_IP;
    assert_int_equal(wire_keys_read(k, 4, scopes), 2);
    assert_int_equal(k[0].fp, 1);
    assert_int_equal(k[1].fp, 3);
}

/* ---- key texts sent lately ---- */

static void s_keys(wire_key_t k[6])
{
    k[0] = (wire_key_t){BACKSTOP__SCOPE__SUBJECT, 11, "cheap watches", 13};
    k[1] = (wire_key_t){BACKSTOP__SCOPE__ORIG_SUBJECT, 12, "hello", 5};
    k[2] = (wire_key_t){BACKSTOP__SCOPE__CLIENT_IP, 13, "192.0.2.7", 9};
    k[3] = (wire_key_t){BACKSTOP__SCOPE__CLIENT_NET, 14, "192.0.2.0/24", 12};
    k[4] = (wire_key_t){BACKSTOP__SCOPE__SUBJECT_IP, 15, "cheap watches|192.0.2.7", 23};
    k[5] = (wire_key_t){BACKSTOP__SCOPE__SENDER_DOMAIN, 16, "example.org", 11};
}

static const uint8_t s_addr[4] = {192, 0, 2, 7};

/* A bounce with the keys k (n of them), with or without its address. */
static wire_event_t s_bounce(wire_key_t *k, size_t n, bool with_addr)
{
    return (wire_event_t){.msg_class = BACKSTOP__MSG_CLASS__BOUNCE,
                          .client_ip = with_addr ? s_addr : NULL,
                          .client_ip_len = with_addr ? 4 : 0,
                          .keys = k,
                          .nkeys = n};
}

/* s_keys() afresh, stripped as a bounce's keys at now_ms; how many texts were left out. */
static size_t s_strip6(wire_textmem_t *tm, wire_key_t k[6], bool with_addr, int64_t now_ms)
{
    s_keys(k);
    wire_event_t ev = s_bounce(k, 6, with_addr);
    return wire_textmem_strip(tm, &ev, k, now_ms);
}

/* A display-only text goes with the key's first event, not with the next ones within the
 * ttl, and again after it; the allowlist's texts (subject_ip, sender_domain) always go. */
static void test_textmem_sends_display_texts_once_per_ttl(void **state)
{
    (void)state;
    wire_textmem_t *tm = wire_textmem_new(1024, 60000);
    wire_key_t k[6];
    assert_int_equal(s_strip6(tm, k, true, 1000), 0);
    for (int i = 0; i < 6; i++)
        assert_non_null(k[i].text);
    assert_int_equal(s_strip6(tm, k, true, 60999), 4);
    for (int i = 0; i < 4; i++) {
        assert_null(k[i].text);
        assert_int_equal(k[i].text_len, 0);
    }
    assert_string_equal(k[4].text, "cheap watches|192.0.2.7");
    assert_string_equal(k[5].text, "example.org");
    /* a minute after it went, it goes again (and is remembered from then) */
    assert_int_equal(s_strip6(tm, k, true, 61000), 0);
    assert_int_equal(s_strip6(tm, k, true, 61001), 4);
    wire_textmem_destroy(&tm);
    assert_null(tm);
    wire_textmem_destroy(&tm);
}

/* Without the event's address the aggregator's allowlist reads the address keys' texts:
 * they always go. The same fingerprint in another scope is another key. */
static void test_textmem_keeps_what_allowlists_read(void **state)
{
    (void)state;
    wire_textmem_t *tm = wire_textmem_new(1024, 60000);
    wire_key_t k[6];
    s_strip6(tm, k, false, 5);
    assert_int_equal(s_strip6(tm, k, false, 6), 2);
    assert_null(k[0].text);
    assert_null(k[1].text);
    assert_non_null(k[2].text);
    assert_non_null(k[3].text);
    wire_key_t other = {BACKSTOP__SCOPE__ORIG_SUBJECT, 11, "cheap watches", 13};
    wire_event_t ev = s_bounce(&other, 1, true);
    assert_int_equal(wire_textmem_strip(tm, &ev, &other, 7), 0);
    assert_non_null(other.text);
    /* a key without text stays so and is not remembered */
    wire_key_t bare = {BACKSTOP__SCOPE__SUBJECT, 99, NULL, 0};
    ev = s_bounce(&bare, 1, true);
    assert_int_equal(wire_textmem_strip(tm, &ev, &bare, 8), 0);
    wire_key_t withtext = {BACKSTOP__SCOPE__SUBJECT, 99, "x", 1};
    ev = s_bounce(&withtext, 1, true);
    assert_int_equal(wire_textmem_strip(tm, &ev, &withtext, 9), 0);
    assert_non_null(withtext.text);
    wire_textmem_destroy(&tm);
}

/* The aggregator keeps a text per key and event filter, and an event of another kind (class,
 * a content rule matched, the ledger vouched) may count where the earlier ones did not: its
 * first event of each kind in the minute carries the text. */
static void test_textmem_sends_each_kind_of_event_its_text(void **state)
{
    (void)state;
    wire_textmem_t *tm = wire_textmem_new(1024, 60000);
    const char *rule = "wave";
    wire_event_t kinds[4];
    wire_key_t k = {BACKSTOP__SCOPE__SUBJECT, 77, "cheap watches", 13};
    for (int i = 0; i < 4; i++)
        kinds[i] = s_bounce(&k, 1, true);
    kinds[1].ledger_hit = true;
    kinds[2].rules = &rule;
    kinds[2].nrules = 1;
    kinds[3].msg_class = BACKSTOP__MSG_CLASS__AUTOREPLY;
    for (int round = 0; round < 2; round++)
        for (int i = 0; i < 4; i++) {
            k = (wire_key_t){BACKSTOP__SCOPE__SUBJECT, 77, "cheap watches", 13};
            assert_int_equal(wire_textmem_strip(tm, &kinds[i], &k, 100 + round), (size_t)round);
            assert_true(round ? k.text == NULL : k.text != NULL);
        }
    wire_textmem_destroy(&tm);
}

/* Cleared, or asked with a clock behind the time a text went, it sends every text again;
 * a slot taken by another key sends the first key's text again. */
static void test_textmem_forgets_when_in_doubt(void **state)
{
    (void)state;
    wire_textmem_t *tm = wire_textmem_new(1024, 60000);
    wire_key_t k[6];
    s_strip6(tm, k, true, 5000);
    wire_textmem_clear(tm);
    assert_int_equal(s_strip6(tm, k, true, 5001), 0);
    assert_int_equal(s_strip6(tm, k, true, 4000), 0);
    /* 16 slots (the least), 64 subjects: most evict each other, none is left out wrongly */
    wire_textmem_t *small = wire_textmem_new(1, 60000);
    size_t left = 0;
    for (int round = 0; round < 2; round++)
        for (uint64_t fp = 1; fp <= 64; fp++) {
            wire_key_t s = {BACKSTOP__SCOPE__SUBJECT, fp, "s", 1};
            wire_event_t ev = s_bounce(&s, 1, true);
            left += wire_textmem_strip(small, &ev, &s, 100 + round);
        }
    assert_true(left <= 16);
    wire_textmem_destroy(&small);
    wire_textmem_destroy(&tm);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_round_trip_every_body),
        cmocka_unit_test(test_round_trip_keeps_fields),
        cmocka_unit_test(test_every_prefix_decodes_or_fails_cleanly),
        cmocka_unit_test(test_empty_input_is_refused),
        cmocka_unit_test(test_oversized_input_is_refused_unread),
        cmocka_unit_test(test_oversized_frame_is_not_packed),
        cmocka_unit_test(test_handmade_frames),
        cmocka_unit_test(test_batch_event_count_limit),
        cmocka_unit_test(test_sender_refuses_too_many_events),
        cmocka_unit_test(test_string_limits),
        cmocka_unit_test(test_client_ip_length),
        cmocka_unit_test(test_present_but_empty_ip_is_refused),
        cmocka_unit_test(test_unknown_enum_values),
        cmocka_unit_test(test_utf8_is_checked),
        cmocka_unit_test(test_sender_refuses_missing_body),
        cmocka_unit_test(test_random_garbage_fails_cleanly),
        cmocka_unit_test(test_mutated_frames_fail_cleanly),
        cmocka_unit_test(test_error_names_are_distinct),
        cmocka_unit_test(test_free_is_safe_twice),
        cmocka_unit_test(test_arena_frames_equal_heap_frames_until_reset),
        cmocka_unit_test(test_arena_reuses_its_memory_after_reset),
        cmocka_unit_test(test_arena_takes_bad_input_without_leaks),
        cmocka_unit_test(test_columns_malformed_are_refused_by_reason),
        cmocka_unit_test(test_columns_ascii_texts_every_position),
        cmocka_unit_test(test_columns_handmade_view),
        cmocka_unit_test(test_columns_and_rows_view_alike),
        cmocka_unit_test(test_columns_round_trip_keeps_every_field),
        cmocka_unit_test(test_batch_builder_refuses_what_receivers_drop),
        cmocka_unit_test(test_columns_mutations_fail_cleanly),
        cmocka_unit_test(test_heartbeat_features_round_trip),
        cmocka_unit_test(test_keys_read_keeps_the_announced_scopes),
        cmocka_unit_test(test_textmem_sends_display_texts_once_per_ttl),
        cmocka_unit_test(test_textmem_keeps_what_allowlists_read),
        cmocka_unit_test(test_textmem_sends_each_kind_of_event_its_text),
        cmocka_unit_test(test_textmem_forgets_when_in_doubt),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
