/*
 * test_shared - the allowlist entries and sites a failover pair keeps alike (shared.h):
 * identities, which of two versions wins, tombstones, the digest, and entries on the wire
 * (what is read back, and what is refused).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "allowlist.h"
#include "fp.h"
#include "shared.h"
#include "xalloc.h"
#include "zsock.h"

#define SEC  1000LL
#define HOUR (3600 * SEC)
#define T0   (1700000000LL * SEC)

/* ---- records ---- */

/* The record of a live allowlist entry of type and text, made by "ops" at T0. */
static shared_rec_t s_allow(allow_type_t type, const char *text)
{
    allow_entry_t e;
    memset(&e, 0, sizeof(e));
    assert_int_equal(allowlist_entry_parse(&e, type, text), 0);
    e.id = 17; /* not part of the record */
    strcpy(e.who, "ops");
    strcpy(e.reason, "our relay");
    e.created_ms = T0;
    shared_rec_t r;
    shared_rec_allow(&r, &e);
    return r;
}

/* The record of a key entry of scope for text (its fingerprint fp_text(text)). */
static shared_rec_t s_key(bs_scope_t scope, const char *text, const char *who, const char *reason,
                          int64_t created_ms)
{
    allow_entry_t e;
    memset(&e, 0, sizeof(e));
    e.type = ALLOW_KEY;
    e.scope = scope;
    e.fp = fp_text(text);
    decisions_strlcpy(e.text, text, ALLOW_TEXT_MAX);
    decisions_strlcpy(e.who, who, DECISION_NAME_MAX);
    decisions_strlcpy(e.reason, reason, DECISION_REASON_MAX);
    e.created_ms = created_ms;
    shared_rec_t r;
    shared_rec_allow(&r, &e);
    return r;
}

/* The record of a site (public_key NULL: none) made by "ops" at T0. */
static shared_rec_t s_site(const char *name, const char *public_key)
{
    shared_rec_t r;
    shared_rec_site(&r, name, public_key, T0, "ops");
    return r;
}

/* A valid Z85 CURVE public key. */
static void s_z85(char out[ZSOCK_Z85_LEN + 1])
{
    zsock_keys_t k;
    memset(&k, 0, sizeof(k));
    assert_int_equal(zsock_keys_generate(&k), 0);
    assert_true(zsock_key_valid(k.public_key));
    memcpy(out, k.public_key, ZSOCK_Z85_LEN + 1);
}

/* The digest of a set of one. */
static uint64_t s_digest1(const shared_rec_t *r)
{
    return shared_digest_add(0, r);
}

/* Asserts that b says what a says: every field a record carries across the wire. */
static void s_assert_same_rec(const shared_rec_t *a, const shared_rec_t *b)
{
    assert_int_equal(b->kind, a->kind);
    assert_int_equal(b->removed, a->removed);
    assert_int_equal(b->changed_ms, a->changed_ms);
    assert_string_equal(b->who, a->who);
    assert_string_equal(b->site, a->site);
    assert_string_equal(b->public_key, a->public_key);
    if (a->kind == SHARED_ALLOW) {
        assert_int_equal(b->allow.type, a->allow.type);
        assert_string_equal(b->allow.text, a->allow.text);
        assert_string_equal(b->allow.reason, a->allow.reason);
        assert_int_equal(b->allow.scope, a->allow.scope);
        assert_true(b->allow.fp == a->allow.fp);
        assert_memory_equal(b->allow.addr, a->allow.addr, sizeof(a->allow.addr));
        assert_int_equal(b->allow.prefix, a->allow.prefix);
    }
    assert_true(shared_identity(b) == shared_identity(a));
    assert_true(s_digest1(b) == s_digest1(a));
}

/* Writes r to the wire and reads it back into out; asserts it is read. */
static void s_wire_round_trip(const shared_rec_t *r, shared_rec_t *out)
{
    Backstop__SharedEntry pb;
    shared_rec_write(r, &pb);
    char err[128] = "";
    if (shared_rec_read(&pb, out, err, sizeof(err)) != 0)
        fail_msg("%s \"%s\" not read back: %s", shared_kind_name(r->kind), shared_rec_text(r), err);
    assert_string_equal(err, "");
}

/* Asserts shared_rec_read refuses pb with a reason. */
static void s_assert_refused(const Backstop__SharedEntry *pb)
{
    shared_rec_t out;
    char err[128] = "";
    assert_int_equal(shared_rec_read(pb, &out, err, sizeof(err)), -1);
    assert_true(strlen(err) > 0);
}

/* Asserts shared_rec_read accepts pb (the starting point of a refusal). */
static void s_assert_read(const Backstop__SharedEntry *pb)
{
    shared_rec_t out;
    char err[128] = "";
    if (shared_rec_read(pb, &out, err, sizeof(err)) != 0)
        fail_msg("not read: %s", err);
}

/* A small deterministic generator (xorshift64*). */
static uint64_t s_rand(uint64_t *s)
{
    *s ^= *s >> 12;
    *s ^= *s << 25;
    *s ^= *s >> 27;
    return *s * 0x2545F4914F6CDD1DULL;
}

static void s_shuffle(size_t *v, size_t n, uint64_t *seed)
{
    for (size_t i = n; i > 1; i--) {
        size_t j = (size_t)(s_rand(seed) % i);
        size_t t = v[i - 1];
        v[i - 1] = v[j];
        v[j] = t;
    }
}

/* The inverse of fp_mix64 (each step of SplitMix64's finalizer undone): a record's hash
 * in the digest is fp_mix64 of its content hash, the tie-breaker of shared_loses(). */
static uint64_t s_unmix64(uint64_t x)
{
    x ^= (x >> 31) ^ (x >> 62);
    x *= 0x319642b2d24d8ec3ULL;
    x ^= (x >> 27) ^ (x >> 54);
    x *= 0x96de1b173f119089ULL;
    x ^= (x >> 30) ^ (x >> 60);
    return x;
}

/* ---- identity ---- */

static void test_shared_identity_same_for_entries_matching_the_same_thing(void **state)
{
    shared_rec_t a = s_allow(ALLOW_IP, "192.0.2.1");
    shared_rec_t b = s_allow(ALLOW_IP, "192.0.2.1");
    /* who, reason, time and removal are not what the entry matches */
    strcpy(b.who, "someone-else");
    strcpy(b.allow.reason, "another reason");
    b.changed_ms = b.allow.created_ms = T0 + HOUR;
    b.removed = true;
    assert_true(shared_identity(&a) == shared_identity(&b));
    shared_rec_t n1 = s_allow(ALLOW_NET, "192.0.2.0/24");
    shared_rec_t n2 = s_allow(ALLOW_NET, "192.0.2.0/24");
    strcpy(n2.who, "x");
    assert_true(shared_identity(&n1) == shared_identity(&n2));
    shared_rec_t d1 = s_allow(ALLOW_DOMAIN, "Example.COM.");
    shared_rec_t d2 = s_allow(ALLOW_DOMAIN, "example.com");
    assert_true(shared_identity(&d1) == shared_identity(&d2)); /* the same once parsed */
}

static void test_shared_identity_of_key_entries_is_their_fingerprint(void **state)
{
    shared_rec_t a = s_key(BS_SCOPE_SUBJECT, "cheap pills", "ops", "wave", T0);
    /* the same fingerprint with another text, reason, who and creation time */
    shared_rec_t b = s_key(BS_SCOPE_SUBJECT, "other text", "bob", "other", T0 + HOUR);
    b.allow.fp = a.allow.fp;
    assert_true(shared_identity(&a) == shared_identity(&b));
    /* subject keys of either subject scope are one key (the fingerprint is of the text) */
    shared_rec_t c = s_key(BS_SCOPE_ORIG_SUBJECT, "cheap pills", "ops", "wave", T0);
    assert_true(shared_identity(&a) == shared_identity(&c));
    /* another fingerprint is another entry, whatever the text */
    shared_rec_t d = s_key(BS_SCOPE_SUBJECT, "cheap pills", "ops", "wave", T0);
    d.allow.fp ^= 1;
    assert_true(shared_identity(&a) != shared_identity(&d));
}

static void test_shared_identity_differs_by_type_and_text(void **state)
{
    shared_rec_t recs[] = {
        s_allow(ALLOW_IP, "192.0.2.1"),
        s_allow(ALLOW_IP, "192.0.2.2"),
        s_allow(ALLOW_NET, "192.0.2.0/24"),
        s_allow(ALLOW_NET, "192.0.2.0/25"),
        s_allow(ALLOW_DOMAIN, "example.com"),
        s_allow(ALLOW_DOMAIN, "example.net"),
        s_allow(ALLOW_SITE, "acme"),
        s_allow(ALLOW_SITE, "example.com"), /* a domain's text, as a whole-site entry */
        s_key(BS_SCOPE_SUBJECT, "acme", "ops", "", T0),
        s_site("acme", NULL),
        s_site("acme2", NULL),
    };
    size_t n = sizeof(recs) / sizeof(recs[0]);
    for (size_t i = 0; i < n; i++)
        for (size_t j = i + 1; j < n; j++)
            if (shared_identity(&recs[i]) == shared_identity(&recs[j]))
                fail_msg("%zu (%s) and %zu (%s) share an identity", i, shared_rec_text(&recs[i]), j,
                         shared_rec_text(&recs[j]));
}

static void test_shared_identity_of_a_site_is_its_name(void **state)
{
    char key[ZSOCK_Z85_LEN + 1];
    s_z85(key);
    shared_rec_t a = s_site("acme", NULL);
    shared_rec_t b;
    shared_rec_site(&b, "acme", key, T0 + HOUR, "bob");
    assert_true(shared_identity(&a) == shared_identity(&b));
    /* a whole-site allowlist entry of the same text is not the site */
    shared_rec_t allow = s_allow(ALLOW_SITE, "acme");
    assert_true(shared_identity(&a) != shared_identity(&allow));
}

/* ---- which version wins ---- */

static void test_shared_loses_nothing_local_loses(void **state)
{
    shared_rec_t b = s_allow(ALLOW_IP, "192.0.2.1");
    assert_true(shared_loses(NULL, &b));
    b.removed = true;
    assert_true(shared_loses(NULL, &b));
}

static void test_shared_loses_the_later_change_wins(void **state)
{
    shared_rec_t older = s_allow(ALLOW_IP, "192.0.2.1");
    shared_rec_t newer = older;
    newer.changed_ms = older.changed_ms + 1;
    assert_true(shared_loses(&older, &newer));
    assert_false(shared_loses(&newer, &older));
    /* the time decides before removal and content: a later re-add beats an older removal,
     * a later removal beats an older entry */
    shared_rec_t tomb = older;
    tomb.removed = true;
    assert_true(shared_loses(&tomb, &newer));
    assert_false(shared_loses(&newer, &tomb));
    shared_rec_t late_tomb = newer;
    late_tomb.removed = true;
    assert_true(shared_loses(&older, &late_tomb));
    assert_false(shared_loses(&late_tomb, &older));
}

static void test_shared_loses_a_removal_wins_at_the_same_time(void **state)
{
    /* whatever the content: try several, so the content order cannot decide */
    const char *reasons[] = {"a", "b", "c", "d", "e", "f", "g", "h"};
    for (size_t i = 0; i < sizeof(reasons) / sizeof(reasons[0]); i++) {
        shared_rec_t live = s_allow(ALLOW_IP, "192.0.2.1");
        strcpy(live.allow.reason, reasons[i]);
        shared_rec_t tomb = s_allow(ALLOW_IP, "192.0.2.1");
        tomb.removed = true;
        if (!shared_loses(&live, &tomb) || shared_loses(&tomb, &live))
            fail_msg("reason %s: the live entry was not the loser", reasons[i]);
    }
}

static void test_shared_loses_a_tie_is_decided_one_way(void **state)
{
    /* same time, same removal: exactly one of two different versions loses */
    shared_rec_t v[12];
    size_t n = 0;
    v[n++] = s_key(BS_SCOPE_SUBJECT, "cheap pills", "ops", "wave", T0);
    v[n++] = s_key(BS_SCOPE_SUBJECT, "cheap pills", "bob", "wave", T0);
    v[n++] = s_key(BS_SCOPE_SUBJECT, "cheap pills", "ops", "other", T0);
    v[n++] = s_key(BS_SCOPE_ORIG_SUBJECT, "cheap pills", "ops", "wave", T0);
    for (int i = 0; i < 4; i++) {
        shared_rec_t s = s_site("acme", NULL);
        snprintf(s.who, sizeof(s.who), "op%d", i);
        v[n++] = s;
    }
    for (int i = 0; i < 4; i++) {
        shared_rec_t s = s_allow(ALLOW_DOMAIN, "example.com");
        snprintf(s.allow.reason, sizeof(s.allow.reason), "reason %d", i);
        v[n++] = s;
    }
    for (int removed = 0; removed < 2; removed++) {
        for (size_t i = 0; i < n; i++) {
            shared_rec_t a = v[i];
            a.removed = removed;
            for (size_t j = 0; j < n; j++) {
                shared_rec_t b = v[j];
                b.removed = removed;
                if (shared_identity(&a) != shared_identity(&b))
                    continue;
                bool ab = shared_loses(&a, &b), ba = shared_loses(&b, &a);
                if (i == j && (ab || ba))
                    fail_msg("%zu loses to an identical copy of itself", i);
                if (i != j && ab == ba)
                    fail_msg("%zu and %zu (removed=%d): loses %d both ways", i, j, removed, ab);
            }
        }
    }
}

static void test_shared_loses_a_tie_goes_to_the_larger_content_hash(void **state)
{
    /* the content hash is what the digest mixes: fp_mix64 undone gives it back */
    for (uint64_t k = 1; k < 1000000; k += 9973)
        assert_true(s_unmix64(fp_mix64(k * 0x9E3779B97F4A7C15ULL)) == k * 0x9E3779B97F4A7C15ULL);
    size_t larger_won = 0;
    for (int i = 0; i < 32; i++) {
        shared_rec_t a = s_site("acme", NULL), b = s_site("acme", NULL);
        snprintf(a.who, sizeof(a.who), "a%d", i);
        snprintf(b.who, sizeof(b.who), "b%d", i);
        uint64_t ha = s_unmix64(s_digest1(&a)), hb = s_unmix64(s_digest1(&b));
        assert_true(ha != hb);
        const shared_rec_t *larger = ha > hb ? &a : &b, *smaller = ha > hb ? &b : &a;
        if (shared_loses(smaller, larger) && !shared_loses(larger, smaller))
            larger_won++;
    }
    assert_int_equal(larger_won, 32);
}

/* ---- tombstones ---- */

static void test_shared_tomb_put_find_drop(void **state)
{
    shared_t *sh = shared_new();
    size_t n = 99;
    shared_tombs(sh, &n);
    assert_int_equal(n, 0);
    shared_rec_t r = s_allow(ALLOW_NET, "192.0.2.0/24");
    r.changed_ms = T0 + HOUR;
    uint64_t id = shared_identity(&r);
    assert_null(shared_tomb_find(sh, id));
    shared_tomb_put(sh, &r);
    const shared_rec_t *got = shared_tomb_find(sh, id);
    assert_non_null(got);
    assert_true(got->removed); /* put as a tombstone, whatever r said */
    assert_int_equal(got->changed_ms, T0 + HOUR);
    assert_string_equal(got->allow.text, "192.0.2.0/24");
    const shared_rec_t *all = shared_tombs(sh, &n);
    assert_int_equal(n, 1);
    assert_ptr_equal(all, got);
    /* another identity is not found */
    shared_rec_t other = s_allow(ALLOW_NET, "192.0.2.0/25");
    assert_null(shared_tomb_find(sh, shared_identity(&other)));
    assert_false(shared_tomb_drop(sh, shared_identity(&other)));
    assert_true(shared_tomb_drop(sh, id));
    assert_null(shared_tomb_find(sh, id));
    assert_false(shared_tomb_drop(sh, id));
    shared_tombs(sh, &n);
    assert_int_equal(n, 0);
    shared_destroy(&sh);
    assert_null(sh);
    shared_destroy(&sh); /* safe twice */
}

static void test_shared_tomb_put_replaces_the_same_identity(void **state)
{
    shared_t *sh = shared_new();
    shared_rec_t r = s_site("acme", NULL);
    r.removed = true;
    shared_tomb_put(sh, &r);
    shared_rec_t later = r;
    later.changed_ms = T0 + HOUR;
    strcpy(later.who, "bob");
    shared_tomb_put(sh, &later);
    size_t n = 0;
    shared_tombs(sh, &n);
    assert_int_equal(n, 1);
    const shared_rec_t *got = shared_tomb_find(sh, shared_identity(&r));
    assert_non_null(got);
    assert_int_equal(got->changed_ms, T0 + HOUR);
    assert_string_equal(got->who, "bob");
    shared_destroy(&sh);
}

static void test_shared_tomb_many_in_random_order(void **state)
{
    enum { N = 500 };
    shared_t *sh = shared_new();
    uint64_t seed = 0x5eed5eed12345ULL;
    shared_rec_t *recs = xcalloc(N, sizeof(*recs));
    size_t order[N];
    for (size_t i = 0; i < N; i++) {
        char name[32];
        snprintf(name, sizeof(name), "site-%016llx", (unsigned long long)s_rand(&seed));
        recs[i] = s_site(name, NULL);
        recs[i].changed_ms = T0 + (int64_t)i;
        order[i] = i;
    }
    s_shuffle(order, N, &seed);
    for (size_t k = 0; k < N; k++)
        shared_tomb_put(sh, &recs[order[k]]);
    size_t n = 0;
    const shared_rec_t *all = shared_tombs(sh, &n);
    assert_int_equal(n, N);
    assert_non_null(all);
    for (size_t i = 0; i < N; i++) {
        const shared_rec_t *got = shared_tomb_find(sh, shared_identity(&recs[i]));
        if (got == NULL || strcmp(got->site, recs[i].site) != 0 ||
            got->changed_ms != recs[i].changed_ms)
            fail_msg("tombstone %zu (%s) not found", i, recs[i].site);
    }
    /* drop every other one, in another random order: the rest stay findable */
    s_shuffle(order, N, &seed);
    for (size_t k = 0; k < N; k++)
        if (order[k] % 2 == 0)
            assert_true(shared_tomb_drop(sh, shared_identity(&recs[order[k]])));
    shared_tombs(sh, &n);
    assert_int_equal(n, N / 2);
    for (size_t i = 0; i < N; i++) {
        const shared_rec_t *got = shared_tomb_find(sh, shared_identity(&recs[i]));
        if (i % 2 == 0 && got != NULL)
            fail_msg("dropped tombstone %zu still found", i);
        if (i % 2 == 1 && (got == NULL || strcmp(got->site, recs[i].site) != 0))
            fail_msg("kept tombstone %zu not found", i);
    }
    xfree(recs);
    shared_destroy(&sh);
}

/* ---- the digest ---- */

static void test_shared_digest_does_not_depend_on_the_order(void **state)
{
    enum { N = 40 };
    shared_rec_t recs[N];
    for (size_t i = 0; i < N; i++) {
        char text[32];
        snprintf(text, sizeof(text), "192.0.2.%zu", i);
        recs[i] = i % 2 ? s_allow(ALLOW_IP, text) : s_site(text + 8, NULL);
        recs[i].removed = i % 3 == 0;
    }
    size_t order[N];
    for (size_t i = 0; i < N; i++)
        order[i] = i;
    uint64_t seed = 42;
    uint64_t in_order = 0, reversed = 0, shuffled = 0;
    for (size_t i = 0; i < N; i++) {
        in_order = shared_digest_add(in_order, &recs[i]);
        reversed = shared_digest_add(reversed, &recs[N - 1 - i]);
    }
    s_shuffle(order, N, &seed);
    for (size_t i = 0; i < N; i++)
        shuffled = shared_digest_add(shuffled, &recs[order[i]]);
    assert_true(in_order == reversed);
    assert_true(in_order == shuffled);
    assert_true(in_order != 0);
    /* one record fewer is another digest */
    uint64_t fewer = 0;
    for (size_t i = 1; i < N; i++)
        fewer = shared_digest_add(fewer, &recs[i]);
    assert_true(fewer != in_order);
}

static void test_shared_digest_changes_with_every_field(void **state)
{
    char key[ZSOCK_Z85_LEN + 1], key2[ZSOCK_Z85_LEN + 1];
    s_z85(key);
    s_z85(key2);
    assert_string_not_equal(key, key2);

    shared_rec_t allow = s_allow(ALLOW_DOMAIN, "example.com");
    uint64_t d0 = s_digest1(&allow);
    assert_true(s_digest1(&allow) == d0); /* the same record, the same digest */
    shared_rec_t m = allow;
    m.changed_ms++;
    assert_true(s_digest1(&m) != d0);
    m = allow;
    m.removed = true;
    assert_true(s_digest1(&m) != d0);
    m = allow;
    strcpy(m.who, "bob");
    assert_true(s_digest1(&m) != d0);
    m = allow;
    strcpy(m.allow.reason, "another reason");
    assert_true(s_digest1(&m) != d0);
    m = allow;
    strcpy(m.allow.text, "example.net");
    assert_true(s_digest1(&m) != d0);

    shared_rec_t key_entry = s_key(BS_SCOPE_SUBJECT, "cheap pills", "ops", "wave", T0);
    m = key_entry;
    m.allow.scope = BS_SCOPE_ORIG_SUBJECT;
    assert_true(s_digest1(&m) != s_digest1(&key_entry));

    shared_rec_t site = s_site("acme", key);
    uint64_t s0 = s_digest1(&site);
    m = site;
    strcpy(m.public_key, key2);
    assert_true(s_digest1(&m) != s0);
    m = site;
    m.public_key[0] = 0;
    assert_true(s_digest1(&m) != s0);
    m = site;
    m.changed_ms--;
    assert_true(s_digest1(&m) != s0);
    m = site;
    m.removed = true;
    assert_true(s_digest1(&m) != s0);
    m = site;
    strcpy(m.who, "bob");
    assert_true(s_digest1(&m) != s0);
    m = site;
    strcpy(m.site, "acme2");
    assert_true(s_digest1(&m) != s0);
}

/* ---- the wire ---- */

static void test_shared_rec_round_trip_of_allow_entries(void **state)
{
    static const struct {
        allow_type_t type; /* entry type */
        const char *text;  /* its text */
    } cases[] = {
        {ALLOW_IP, "192.0.2.1"},      {ALLOW_IP, "2001:db8::1"},     {ALLOW_NET, "192.0.2.0/24"},
        {ALLOW_NET, "2001:db8::/32"}, {ALLOW_DOMAIN, "example.com"}, {ALLOW_SITE, "acme"},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        shared_rec_t r = s_allow(cases[i].type, cases[i].text);
        shared_rec_t out;
        s_wire_round_trip(&r, &out);
        s_assert_same_rec(&r, &out);
        assert_int_equal(out.allow.created_ms, r.changed_ms);
        assert_int_equal(out.allow.id, 0);
        assert_string_equal(shared_rec_text(&out), cases[i].text);
        assert_string_equal(shared_kind_name(out.kind), "allow");
    }
}

static void test_shared_rec_round_trip_of_a_key_entry(void **state)
{
    shared_rec_t r = s_key(BS_SCOPE_SUBJECT, "cheap pills", "ops", "wave", T0);
    shared_rec_t out;
    s_wire_round_trip(&r, &out);
    s_assert_same_rec(&r, &out);
    assert_int_equal(out.allow.type, ALLOW_KEY);
    assert_int_equal(out.allow.scope, BS_SCOPE_SUBJECT);
    assert_true(out.allow.fp == fp_text("cheap pills"));
    /* the other subject scope, without a reason or who */
    shared_rec_t o = s_key(BS_SCOPE_ORIG_SUBJECT, "cheap pills", "", "", T0);
    s_wire_round_trip(&o, &out);
    s_assert_same_rec(&o, &out);
    assert_int_equal(out.allow.scope, BS_SCOPE_ORIG_SUBJECT);
}

static void test_shared_rec_round_trip_of_sites(void **state)
{
    char key[ZSOCK_Z85_LEN + 1];
    s_z85(key);
    shared_rec_t with = s_site("acme-1.example", key);
    shared_rec_t out;
    s_wire_round_trip(&with, &out);
    s_assert_same_rec(&with, &out);
    assert_string_equal(out.public_key, key);
    assert_string_equal(shared_kind_name(out.kind), "site");
    assert_string_equal(shared_rec_text(&out), "acme-1.example");

    shared_rec_t without = s_site("acme_2", NULL);
    Backstop__SharedEntry pb;
    shared_rec_write(&without, &pb);
    assert_null(pb.public_key); /* no key: none on the wire */
    s_wire_round_trip(&without, &out);
    s_assert_same_rec(&without, &out);
    assert_string_equal(out.public_key, "");
}

static void test_shared_rec_round_trip_of_tombstones(void **state)
{
    shared_rec_t tomb = s_allow(ALLOW_IP, "192.0.2.1");
    tomb.removed = true;
    tomb.changed_ms = T0 + HOUR;
    tomb.allow.created_ms = T0 + HOUR;
    shared_rec_t out;
    s_wire_round_trip(&tomb, &out);
    s_assert_same_rec(&tomb, &out);
    assert_true(out.removed);

    shared_rec_t site = s_site("acme", NULL);
    site.removed = true;
    s_wire_round_trip(&site, &out);
    s_assert_same_rec(&site, &out);
    assert_true(out.removed);

    /* a live record says it is not removed */
    shared_rec_t live = s_site("acme", NULL);
    Backstop__SharedEntry pb;
    shared_rec_write(&live, &pb);
    assert_false(pb.has_removed && pb.removed);
}

static void test_shared_rec_pack_and_unpack_round_trip(void **state)
{
    char key[ZSOCK_Z85_LEN + 1];
    s_z85(key);
    shared_rec_t recs[] = {
        s_allow(ALLOW_IP, "192.0.2.1"),
        s_allow(ALLOW_NET, "2001:db8::/32"),
        s_allow(ALLOW_DOMAIN, "example.com"),
        s_allow(ALLOW_SITE, "acme"),
        s_key(BS_SCOPE_SUBJECT, "cheap pills", "ops", "wave", T0),
        s_site("acme", key),
        s_site("acme", NULL),
    };
    recs[1].removed = true;
    recs[6].removed = true;
    for (size_t i = 0; i < sizeof(recs) / sizeof(recs[0]); i++) {
        size_t len = 0;
        uint8_t *buf = shared_rec_pack(&recs[i], &len);
        assert_non_null(buf);
        assert_true(len > 0);
        shared_rec_t out;
        if (shared_rec_unpack(buf, len, &out) != 0)
            fail_msg("record %zu (%s) not unpacked", i, shared_rec_text(&recs[i]));
        s_assert_same_rec(&recs[i], &out);
        xfree(buf);
    }
}

/* ---- refusals ---- */

static void test_shared_rec_read_refuses_no_time_of_change(void **state)
{
    shared_rec_t r = s_site("acme", NULL);
    Backstop__SharedEntry pb;
    shared_rec_write(&r, &pb);
    s_assert_read(&pb);
    pb.changed_ms = 0;
    s_assert_refused(&pb);
    pb.changed_ms = -1;
    s_assert_refused(&pb);
}

static void test_shared_rec_read_refuses_an_unknown_kind(void **state)
{
    shared_rec_t r = s_allow(ALLOW_IP, "192.0.2.1");
    Backstop__SharedEntry pb;
    shared_rec_write(&r, &pb);
    s_assert_read(&pb);
    pb.kind = BACKSTOP__SHARED_ENTRY__KIND__KIND_UNKNOWN;
    s_assert_refused(&pb);
    pb.kind = (Backstop__SharedEntry__Kind)7;
    s_assert_refused(&pb);
}

static void test_shared_rec_read_refuses_an_allow_entry_without_a_type(void **state)
{
    shared_rec_t r = s_allow(ALLOW_IP, "192.0.2.1");
    Backstop__SharedEntry pb;
    shared_rec_write(&r, &pb);
    s_assert_read(&pb);
    pb.has_type = 0;
    s_assert_refused(&pb);
    pb.has_type = 1;
    pb.type = BACKSTOP__SHARED_ENTRY__ALLOW_TYPE__TYPE_UNKNOWN;
    s_assert_refused(&pb);
}

static void test_shared_rec_read_refuses_a_key_fingerprint_not_of_its_text(void **state)
{
    shared_rec_t r = s_key(BS_SCOPE_SUBJECT, "cheap pills", "ops", "wave", T0);
    Backstop__SharedEntry pb;
    shared_rec_write(&r, &pb);
    s_assert_read(&pb);
    pb.fp ^= 1;
    s_assert_refused(&pb);
    pb.fp ^= 1;
    pb.has_fp = 0;
    s_assert_refused(&pb);
}

static void test_shared_rec_read_refuses_a_key_entry_of_another_scope(void **state)
{
    shared_rec_t r = s_key(BS_SCOPE_SUBJECT, "192.0.2.1", "ops", "wave", T0);
    Backstop__SharedEntry pb;
    shared_rec_write(&r, &pb);
    s_assert_read(&pb);
    pb.scope = BACKSTOP__SCOPE__CLIENT_IP;
    s_assert_refused(&pb);
    pb.scope = BACKSTOP__SCOPE__SUBJECT;
    pb.has_scope = 0;
    s_assert_refused(&pb);
}

static void test_shared_rec_read_refuses_an_invalid_ip(void **state)
{
    shared_rec_t r = s_allow(ALLOW_IP, "192.0.2.1");
    Backstop__SharedEntry pb;
    shared_rec_write(&r, &pb);
    s_assert_read(&pb);
    const char *bad[] = {"300.1.1.1", "192.0.2.0/24", "example.com", ""};
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        pb.text = (char *)bad[i];
        s_assert_refused(&pb);
    }
    pb.text = NULL;
    s_assert_refused(&pb);
}

/* identity is by text: a text "allow add" would have written otherwise would be a second
 * entry for the same thing */
static void test_shared_rec_read_refuses_texts_not_in_canonical_form(void **state)
{
    (void)state;
    struct {
        allow_type_t type;
        const char *good, *bad;
    } cases[] = {
        {ALLOW_IP, "2001:db8::1", "2001:DB8::1"},
        {ALLOW_IP, "192.0.2.1", "::ffff:192.0.2.1"},
        {ALLOW_NET, "2001:db8::/32", "2001:DB8::/32"},
        {ALLOW_DOMAIN, "example.com", "Example.COM"},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        shared_rec_t r = s_allow(cases[i].type, cases[i].good);
        Backstop__SharedEntry pb;
        shared_rec_write(&r, &pb);
        s_assert_read(&pb);
        pb.text = (char *)cases[i].bad;
        s_assert_refused(&pb);
    }
}

static void test_shared_rec_read_refuses_a_whole_site_entry_that_is_no_site_name(void **state)
{
    (void)state;
    shared_rec_t r = s_allow(ALLOW_SITE, "acme");
    Backstop__SharedEntry pb;
    shared_rec_write(&r, &pb);
    s_assert_read(&pb);
    const char *bad[] = {"a b", "x/../../etc", "acme\n"};
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        pb.text = (char *)bad[i];
        s_assert_refused(&pb);
    }
}

static void test_shared_rec_read_refuses_a_net_with_host_bits(void **state)
{
    shared_rec_t r = s_allow(ALLOW_NET, "192.0.2.0/24");
    Backstop__SharedEntry pb;
    shared_rec_write(&r, &pb);
    s_assert_read(&pb);
    pb.text = "192.0.2.1/24";
    s_assert_refused(&pb);
}

static void test_shared_rec_read_refuses_a_bad_site_name(void **state)
{
    shared_rec_t r = s_site("acme", NULL);
    Backstop__SharedEntry pb;
    shared_rec_write(&r, &pb);
    s_assert_read(&pb);
    char longname[WIRE_MAX_ID + 2];
    memset(longname, 'a', WIRE_MAX_ID + 1);
    longname[WIRE_MAX_ID + 1] = 0;
    const char *bad[] = {"a b", "", "acme/1", longname};
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        pb.text = (char *)bad[i];
        s_assert_refused(&pb);
    }
}

static void test_shared_rec_read_refuses_a_site_key_not_z85(void **state)
{
    char key[ZSOCK_Z85_LEN + 1];
    s_z85(key);
    shared_rec_t r = s_site("acme", key);
    Backstop__SharedEntry pb;
    shared_rec_write(&r, &pb);
    s_assert_read(&pb);
    char short_key[ZSOCK_Z85_LEN];
    memcpy(short_key, key, ZSOCK_Z85_LEN - 1);
    short_key[ZSOCK_Z85_LEN - 1] = 0;
    char bad_char[ZSOCK_Z85_LEN + 1];
    memcpy(bad_char, key, sizeof(bad_char));
    bad_char[5] = ' ';
    const char *bad[] = {"not a key", short_key, bad_char};
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        pb.public_key = (char *)bad[i];
        s_assert_refused(&pb);
    }
}

static void test_shared_rec_unpack_refuses_garbage(void **state)
{
    shared_rec_t out;
    static const uint8_t junk[] = {0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff};
    assert_int_equal(shared_rec_unpack(junk, sizeof(junk), &out), -1);
    /* nothing: the required fields are missing */
    assert_int_equal(shared_rec_unpack(junk, 0, &out), -1);
    /* a valid record cut short */
    shared_rec_t r = s_key(BS_SCOPE_SUBJECT, "cheap pills", "ops", "wave", T0);
    size_t len = 0;
    uint8_t *buf = shared_rec_pack(&r, &len);
    assert_int_equal(shared_rec_unpack(buf, len, &out), 0);
    assert_int_equal(shared_rec_unpack(buf, len - 3, &out), -1);
    xfree(buf);
    /* well-formed but not a readable entry (no time of change) */
    shared_rec_t z = s_site("acme", NULL);
    z.changed_ms = 0;
    buf = shared_rec_pack(&z, &len);
    assert_int_equal(shared_rec_unpack(buf, len, &out), -1);
    xfree(buf);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_shared_identity_same_for_entries_matching_the_same_thing),
        cmocka_unit_test(test_shared_identity_of_key_entries_is_their_fingerprint),
        cmocka_unit_test(test_shared_identity_differs_by_type_and_text),
        cmocka_unit_test(test_shared_identity_of_a_site_is_its_name),
        cmocka_unit_test(test_shared_loses_nothing_local_loses),
        cmocka_unit_test(test_shared_loses_the_later_change_wins),
        cmocka_unit_test(test_shared_loses_a_removal_wins_at_the_same_time),
        cmocka_unit_test(test_shared_loses_a_tie_is_decided_one_way),
        cmocka_unit_test(test_shared_loses_a_tie_goes_to_the_larger_content_hash),
        cmocka_unit_test(test_shared_tomb_put_find_drop),
        cmocka_unit_test(test_shared_tomb_put_replaces_the_same_identity),
        cmocka_unit_test(test_shared_tomb_many_in_random_order),
        cmocka_unit_test(test_shared_digest_does_not_depend_on_the_order),
        cmocka_unit_test(test_shared_digest_changes_with_every_field),
        cmocka_unit_test(test_shared_rec_round_trip_of_allow_entries),
        cmocka_unit_test(test_shared_rec_round_trip_of_a_key_entry),
        cmocka_unit_test(test_shared_rec_round_trip_of_sites),
        cmocka_unit_test(test_shared_rec_round_trip_of_tombstones),
        cmocka_unit_test(test_shared_rec_pack_and_unpack_round_trip),
        cmocka_unit_test(test_shared_rec_read_refuses_no_time_of_change),
        cmocka_unit_test(test_shared_rec_read_refuses_an_unknown_kind),
        cmocka_unit_test(test_shared_rec_read_refuses_an_allow_entry_without_a_type),
        cmocka_unit_test(test_shared_rec_read_refuses_a_key_fingerprint_not_of_its_text),
        cmocka_unit_test(test_shared_rec_read_refuses_a_key_entry_of_another_scope),
        cmocka_unit_test(test_shared_rec_read_refuses_an_invalid_ip),
        cmocka_unit_test(test_shared_rec_read_refuses_texts_not_in_canonical_form),
        cmocka_unit_test(test_shared_rec_read_refuses_a_whole_site_entry_that_is_no_site_name),
        cmocka_unit_test(test_shared_rec_read_refuses_a_net_with_host_bits),
        cmocka_unit_test(test_shared_rec_read_refuses_a_bad_site_name),
        cmocka_unit_test(test_shared_rec_read_refuses_a_site_key_not_z85),
        cmocka_unit_test(test_shared_rec_unpack_refuses_garbage),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
