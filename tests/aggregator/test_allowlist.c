/* test_allowlist - entry parsing, what each type covers, and cancelling decisions. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <cmocka.h>

#include "allowlist.h"
#include "fp.h"

#define SEC  1000LL
#define HOUR (3600 * SEC)
#define T0   (1700000000LL * SEC)

static allow_entry_t s_entry(allow_type_t type, const char *text)
{
    allow_entry_t e = {0};
    assert_int_equal(allowlist_entry_parse(&e, type, text), 0);
    strcpy(e.who, "ops");
    e.created_ms = T0;
    return e;
}

static void test_allowlist_parse_accepts_and_refuses(void **state)
{
    static const struct {
        allow_type_t type; /* entry type */
        const char *text;  /* typed text */
        int rc;            /* expected */
    } cases[] = {
        {ALLOW_IP, "192.0.2.1", 0},         {ALLOW_IP, "2001:db8::1", 0},
        {ALLOW_IP, "192.0.2.0/24", -1}, /* a network is not an ip */
        {ALLOW_IP, "300.1.1.1", -1},        {ALLOW_IP, "", -1},
        {ALLOW_NET, "192.0.2.0/24", 0},     {ALLOW_NET, "2001:db8:1:2::/64", 0},
        {ALLOW_NET, "0.0.0.0/0", 0},        {ALLOW_NET, "192.0.2.1/24", -1}, /* host bits set */
        {ALLOW_NET, "192.0.2.0/33", -1},    {ALLOW_NET, "192.0.2.0/", -1},
        {ALLOW_NET, "192.0.2.0/-1", -1},    {ALLOW_NET, "192.0.2.0", -1},
        {ALLOW_DOMAIN, "Example.COM.", 0},  {ALLOW_DOMAIN, ".example.com", -1},
        {ALLOW_DOMAIN, "exa mple.com", -1}, {ALLOW_SITE, "acme", 0},
        {(allow_type_t)99, "x", -1},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        allow_entry_t e = {0};
        int rc = allowlist_entry_parse(&e, cases[i].type, cases[i].text);
        if (rc != cases[i].rc)
            fail_msg("case %zu (%s): rc %d", i, cases[i].text, rc);
    }
    allow_entry_t d = {0};
    allowlist_entry_parse(&d, ALLOW_DOMAIN, "Example.COM.");
    assert_string_equal(d.text, "example.com");
}

static void test_allowlist_ip_and_net_cover_addresses(void **state)
{
    allowlist_t *al = allowlist_new();
    allow_entry_t ip = s_entry(ALLOW_IP, "198.51.100.7");
    allow_entry_t net = s_entry(ALLOW_NET, "192.0.2.0/25");
    allow_entry_t net6 = s_entry(ALLOW_NET, "2001:db8:1::/48");
    allowlist_add(al, &ip, NULL, NULL);
    allowlist_add(al, &net, NULL, NULL);
    allowlist_add(al, &net6, NULL, NULL);
    static const struct {
        uint8_t addr[16]; /* address */
        size_t len;       /* 4 or 16 */
        bool covered;     /* expected */
    } cases[] = {
        {{198, 51, 100, 7}, 4, true},
        {{198, 51, 100, 8}, 4, false},
        {{192, 0, 2, 0}, 4, true},
        {{192, 0, 2, 127}, 4, true},
        {{192, 0, 2, 128}, 4, false},
        {{0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff, 192, 0, 2, 5}, 16, true}, /* v4-mapped */
        {{0x20, 0x01, 0x0d, 0xb8, 0, 1, 0xff, 0xff}, 16, true},
        {{0x20, 0x01, 0x0d, 0xb8, 0, 2}, 16, false},
        {{1, 2, 3}, 3, false}, /* bad length */
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++)
        if (allowlist_covers_ip(al, cases[i].addr, cases[i].len) != cases[i].covered)
            fail_msg("case %zu", i);
    /* the same through key texts */
    assert_true(allowlist_covers_key(al, BS_SCOPE_CLIENT_IP, 1, "192.0.2.9"));
    assert_false(allowlist_covers_key(al, BS_SCOPE_CLIENT_IP, 1, "192.0.2.200"));
    assert_true(allowlist_covers_key(al, BS_SCOPE_CLIENT_NET, 1, "192.0.2.0/26"));
    assert_false(allowlist_covers_key(al, BS_SCOPE_CLIENT_NET, 1, "192.0.2.0/24")); /* wider */
    assert_false(allowlist_covers_key(al, BS_SCOPE_CLIENT_IP, 1, NULL));
    assert_false(allowlist_covers_key(al, BS_SCOPE_SUBJECT, 1, "192.0.2.9"));
    allowlist_destroy(&al);
    assert_null(al);
    allowlist_destroy(&al);
}

static void test_allowlist_key_domain_site(void **state)
{
    allowlist_t *al = allowlist_new();
    allow_entry_t key = {.type = ALLOW_KEY, .scope = BS_SCOPE_SUBJECT, .fp = 42};
    strcpy(key.text, "your order");
    allowlist_add(al, &key, NULL, NULL);
    allow_entry_t dom = s_entry(ALLOW_DOMAIN, "example.com");
    allowlist_add(al, &dom, NULL, NULL);
    allow_entry_t site = s_entry(ALLOW_SITE, "acme");
    allowlist_add(al, &site, NULL, NULL);
    assert_true(allowlist_covers_key(al, BS_SCOPE_SUBJECT, 42, NULL));
    assert_true(allowlist_covers_key(al, BS_SCOPE_ORIG_SUBJECT, 42, NULL)); /* same text */
    assert_false(allowlist_covers_key(al, BS_SCOPE_CLIENT_IP, 42, NULL));
    assert_false(allowlist_covers_key(al, BS_SCOPE_SUBJECT, 43, NULL));
    assert_true(allowlist_covers_domain(al, "example.com"));
    assert_true(allowlist_covers_domain(al, "mail.Example.com."));
    assert_false(allowlist_covers_domain(al, "badexample.com"));
    assert_false(allowlist_covers_domain(al, "com"));
    /* a sender domain longer than any entry still matches by its parents */
    char longdom[300];
    memset(longdom, 'a', 250);
    strcpy(longdom + 250, ".Mail.example.com");
    assert_true(allowlist_covers_domain(al, longdom));
    assert_true(allowlist_covers_key(al, BS_SCOPE_SENDER_DOMAIN, 0, longdom));
    longdom[253] = '-'; /* "...aaa-ail.example.com": still under example.com */
    assert_true(allowlist_covers_domain(al, longdom));
    strcpy(longdom + 250, "badexample.com");
    assert_false(allowlist_covers_domain(al, longdom));
    assert_true(allowlist_covers_key(al, BS_SCOPE_SENDER_DOMAIN, 0, "bounce.example.com"));
    assert_true(allowlist_covers_site(al, "acme"));
    assert_false(allowlist_covers_site(al, "acme2"));
    assert_int_equal(allowlist_count(al), 3);
    allowlist_destroy(&al);
}

static decision_t s_decision(bs_scope_t scope, uint64_t fp, const char *value, bs_reach_t reach,
                             const char *site)
{
    decision_t d = {0};
    d.scope = scope;
    d.fp = fp;
    decisions_strlcpy(d.value, value, DECISION_VALUE_MAX);
    d.action = BS_ACTION_REJECT;
    d.reach = reach;
    decisions_strlcpy(d.site, site, DECISION_NAME_MAX);
    d.expires_ms = T0 + HOUR;
    d.origin = BS_ORIGIN_RULE;
    return d;
}

static void test_allowlist_add_reports_covered_decisions(void **state)
{
    decisions_t *t = decisions_new(1, 0, 0);
    decision_t ip = s_decision(BS_SCOPE_CLIENT_IP, 1, "192.0.2.9", BS_REACH_FLEET, "");
    decision_t ip_out = s_decision(BS_SCOPE_CLIENT_IP, 2, "203.0.113.9", BS_REACH_FLEET, "");
    decision_t net = s_decision(BS_SCOPE_CLIENT_NET, 3, "192.0.2.0/24", BS_REACH_FLEET, "");
    decision_t subj = s_decision(BS_SCOPE_SUBJECT, 4, "pills", BS_REACH_LOCAL, "acme");
    const decision_t *p_ip, *p_net, *p_subj;
    decisions_propose(t, &ip, 0, T0, &p_ip);
    char ip_id[DECISION_ID_LEN + 1];
    strcpy(ip_id, p_ip->id);
    decisions_propose(t, &ip_out, 0, T0, NULL);
    decisions_propose(t, &net, 0, T0, &p_net);
    decisions_propose(t, &subj, 0, T0, &p_subj);
    char subj_id[DECISION_ID_LEN + 1];
    strcpy(subj_id, p_subj->id);

    allowlist_t *al = allowlist_new();
    allow_entry_t e = s_entry(ALLOW_NET, "192.0.2.0/24");
    allowlist_ids_t ids = {0};
    uint32_t id = allowlist_add(al, &e, t, &ids);
    assert_true(id > 0);
    assert_int_equal(ids.n, 2); /* the ip inside and the /24 itself, not 203.0.113.9 */
    assert_true(strcmp(ids.id[0], ip_id) == 0 || strcmp(ids.id[1], ip_id) == 0);
    allowlist_ids_clear(&ids);
    assert_int_equal(ids.n, 0);

    allow_entry_t s = s_entry(ALLOW_SITE, "acme");
    allowlist_add(al, &s, t, &ids);
    assert_int_equal(ids.n, 1);
    assert_string_equal(ids.id[0], subj_id);
    allowlist_ids_clear(&ids);
    assert_true(allowlist_covers_decision(al, p_subj));
    decisions_destroy(&t);
    allowlist_destroy(&al);
}

static void test_allowlist_remove_restore_and_ids(void **state)
{
    allowlist_t *al = allowlist_new();
    allow_entry_t a = s_entry(ALLOW_SITE, "a");
    allow_entry_t b = s_entry(ALLOW_SITE, "b");
    uint32_t ida = allowlist_add(al, &a, NULL, NULL);
    uint32_t idb = allowlist_add(al, &b, NULL, NULL);
    assert_int_not_equal(ida, idb);
    assert_string_equal(allowlist_find(al, idb)->text, "b");
    assert_int_equal(allowlist_remove(al, ida), 0);
    assert_int_equal(allowlist_remove(al, ida), -1);
    assert_false(allowlist_covers_site(al, "a"));
    assert_null(allowlist_find(al, ida));

    allowlist_t *back = allowlist_new();
    allow_entry_t r = *allowlist_find(al, idb);
    assert_int_equal(allowlist_restore(back, &r), 0);
    assert_int_equal(allowlist_restore(back, &r), -1);
    allow_entry_t c = s_entry(ALLOW_SITE, "c");
    assert_true(allowlist_add(back, &c, NULL, NULL) > idb); /* ids never reused */
    assert_true(allowlist_covers_site(back, "b"));
    allowlist_destroy(&al);
    allowlist_destroy(&back);
}

/* A stored ip/net record with a prefix beyond 128 bits (a damaged store) is refused, not
 * indexed: the prefix indexes a 129-slot table and masks a 16-byte address. */
static void test_allowlist_restore_refuses_prefix_over_128(void **state)
{
    allowlist_t *al = allowlist_new();
    allow_entry_t ok = s_entry(ALLOW_NET, "192.0.2.0/24");
    ok.id = 1;
    assert_int_equal(allowlist_restore(al, &ok), 0);
    static const uint8_t bad_prefix[] = {129, 200, 255};
    for (size_t i = 0; i < sizeof(bad_prefix); i++) {
        for (allow_type_t t = ALLOW_IP; t <= ALLOW_NET; t++) {
            allow_entry_t e = ok;
            e.id = (uint32_t)(10 + 2 * i + (size_t)t);
            e.type = t;
            e.prefix = bad_prefix[i];
            assert_int_equal(allowlist_restore(al, &e), -1);
            assert_null(allowlist_find(al, e.id));
        }
    }
    assert_int_equal(allowlist_count(al), 1);
    const uint8_t ip[4] = {192, 0, 2, 9}, other[4] = {198, 51, 100, 1};
    assert_true(allowlist_covers_ip(al, ip, 4));
    assert_false(allowlist_covers_ip(al, other, 4));
    allowlist_destroy(&al);
}

/* An address or a network allowlisted inside a blocked network: the block would stop its
 * mail too (sensors look mail up by the client's network), so it is covered. A subject_ip
 * block is covered by its subject's entry or its address's. */
static void test_allowlist_covers_a_net_holding_it_and_subject_ip_parts(void **state)
{
    (void)state;
    allowlist_t *al = allowlist_new();
    allow_entry_t e = {0};
    assert_int_equal(allowlist_entry_parse(&e, ALLOW_IP, "192.0.2.10"), 0);
    allowlist_add(al, &e, NULL, NULL);
    decision_t net = s_decision(BS_SCOPE_CLIENT_NET, 1, "192.0.2.0/24", BS_REACH_FLEET, "");
    decision_t other = s_decision(BS_SCOPE_CLIENT_NET, 2, "198.51.100.0/24", BS_REACH_FLEET, "");
    assert_true(allowlist_covers_decision(al, &net));
    assert_false(allowlist_covers_decision(al, &other));
    decision_t sip =
        s_decision(BS_SCOPE_SUBJECT_IP, 3, "cheap pills|192.0.2.10", BS_REACH_FLEET, "");
    decision_t sip2 =
        s_decision(BS_SCOPE_SUBJECT_IP, 4, "cheap pills|198.51.100.7", BS_REACH_FLEET, "");
    assert_true(allowlist_covers_decision(al, &sip));
    assert_true(allowlist_covers_key(al, BS_SCOPE_SUBJECT_IP, 3, "cheap pills|192.0.2.10"));
    assert_false(allowlist_covers_decision(al, &sip2));
    allow_entry_t k = {.type = ALLOW_KEY, .scope = BS_SCOPE_SUBJECT, .fp = fp_text("cheap pills")};
    allowlist_add(al, &k, NULL, NULL);
    assert_true(allowlist_covers_decision(al, &sip2));
    assert_true(allowlist_covers_key(al, BS_SCOPE_SUBJECT_IP, 4, "cheap pills|198.51.100.7"));
    allowlist_destroy(&al);
}

static uint64_t s_rand(uint64_t *x)
{
    *x ^= *x << 13;
    *x ^= *x >> 7;
    *x ^= *x << 17;
    return *x;
}

/* A random entry text of type t from a small space, so that queries hit often. */
static void s_random_text(uint64_t *r, allow_type_t t, char *out, size_t size)
{
    static const char *const doms[] = {"example.com", "mail.example.com",
                                       "example.org", "b.example.com",
                                       "com",         "x.y.example.net"};
    unsigned a = (unsigned)(s_rand(r) % 4), b = (unsigned)(s_rand(r) % 4);
    switch (t) {
    case ALLOW_IP:
        if (s_rand(r) % 4 == 0)
            snprintf(out, size, "2001:db8:%u::%u", a, b);
        else
            snprintf(out, size, "10.%u.%u.%u", a, b, (unsigned)(s_rand(r) % 4));
        break;
    case ALLOW_NET: {
        static const char *const nets[] = {"10.0.0.0/8",      "10.1.0.0/16",   "10.2.3.0/24",
                                           "10.4.0.0/14",     "10.1.2.0/23",   "0.0.0.0/0",
                                           "2001:db8:1::/48", "2001:db8::/32", "10.0.1.2/31"};
        snprintf(out, size, "%s", nets[s_rand(r) % 9]);
        break;
    }
    case ALLOW_DOMAIN:
        snprintf(out, size, "%s", doms[s_rand(r) % 6]);
        break;
    default:
        snprintf(out, size, "site%u", a);
        break;
    }
}

/* The index must answer exactly as the entries do one by one (allowlist_covers_decision
 * still asks each entry): random lists, random keys, adds, removals and restores. */
static void test_allowlist_index_agrees_with_each_entry(void **state)
{
    uint64_t r = 0x1234567;
    for (int round = 0; round < 40; round++) {
        allowlist_t *al = allowlist_new();
        size_t n = 1 + s_rand(&r) % 60;
        for (size_t i = 0; i < n; i++) {
            allow_entry_t e = {0};
            allow_type_t t = (allow_type_t)(1 + s_rand(&r) % 4); /* ip net key domain */
            if (t == ALLOW_KEY) {
                e.type = ALLOW_KEY;
                e.scope = s_rand(&r) % 2 ? BS_SCOPE_SUBJECT : BS_SCOPE_ORIG_SUBJECT;
                e.fp = s_rand(&r) % 8;
            } else {
                char text[64];
                s_random_text(&r, t, text, sizeof(text));
                assert_int_equal(allowlist_entry_parse(&e, t, text), 0);
            }
            allowlist_add(al, &e, NULL, NULL);
        }
        /* some removals, and a copy restored in reverse order */
        for (int k = 0; k < 3; k++)
            (void)allowlist_remove(al, (uint32_t)(1 + s_rand(&r) % n));
        allowlist_t *back = allowlist_new();
        for (uint32_t id = (uint32_t)n; id > 0; id--)
            if (allowlist_find(al, id))
                assert_int_equal(allowlist_restore(back, allowlist_find(al, id)), 0);
        for (int q = 0; q < 400; q++) {
            static const bs_scope_t scopes[] = {BS_SCOPE_SUBJECT, BS_SCOPE_ORIG_SUBJECT,
                                                BS_SCOPE_CLIENT_IP, BS_SCOPE_CLIENT_NET,
                                                BS_SCOPE_SENDER_DOMAIN};
            bs_scope_t sc = scopes[s_rand(&r) % 5];
            char text[64] = "";
            if (sc == BS_SCOPE_CLIENT_IP)
                s_random_text(&r, ALLOW_IP, text, sizeof(text));
            else if (sc == BS_SCOPE_CLIENT_NET)
                s_random_text(&r, ALLOW_NET, text, sizeof(text));
            else if (sc == BS_SCOPE_SENDER_DOMAIN)
                s_random_text(&r, ALLOW_DOMAIN, text, sizeof(text));
            uint64_t fp = s_rand(&r) % 8;
            decision_t d = s_decision(sc, fp, text, BS_REACH_FLEET, "");
            bool want = allowlist_covers_decision(al, &d);
            if (sc == BS_SCOPE_CLIENT_NET) {
                /* a net decision is covered by any overlap, its key only by an entry
                 * holding all of it (what is counted; the decision is refused at firing) */
                bool in = allowlist_covers_key(al, sc, fp, text);
                assert_true(!in || want);
                assert_int_equal(allowlist_covers_key(back, sc, fp, text), in);
                continue;
            }
            assert_int_equal(allowlist_covers_key(al, sc, fp, text), want);
            assert_int_equal(allowlist_covers_key(back, sc, fp, text), want);
            if (sc == BS_SCOPE_CLIENT_IP && strchr(text, ':') == NULL) {
                unsigned a, b, c, e;
                assert_int_equal(sscanf(text, "%u.%u.%u.%u", &a, &b, &c, &e), 4);
                uint8_t ip[4] = {(uint8_t)a, (uint8_t)b, (uint8_t)c, (uint8_t)e};
                assert_int_equal(allowlist_covers_ip(al, ip, 4), want);
            }
            if (sc == BS_SCOPE_SENDER_DOMAIN)
                assert_int_equal(allowlist_covers_domain(al, text), want);
        }
        allowlist_destroy(&al);
        allowlist_destroy(&back);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_allowlist_parse_accepts_and_refuses),
        cmocka_unit_test(test_allowlist_ip_and_net_cover_addresses),
        cmocka_unit_test(test_allowlist_key_domain_site),
        cmocka_unit_test(test_allowlist_add_reports_covered_decisions),
        cmocka_unit_test(test_allowlist_remove_restore_and_ids),
        cmocka_unit_test(test_allowlist_restore_refuses_prefix_over_128),
        cmocka_unit_test(test_allowlist_covers_a_net_holding_it_and_subject_ip_parts),
        cmocka_unit_test(test_allowlist_index_agrees_with_each_entry),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
