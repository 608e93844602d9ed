/*
 * fuzz_allow - libFuzzer target: allowlist entries and address parsing on any text
 *
 * The input is lines of text, as operators type them (`backstop allow add`)
 * and as they come back from the store. The first byte of a line picks what
 * it is: (byte % 6) an allowlist type (ip, net, key, domain, site; 0: the
 * address parsers alone), bits 3-5 the scope of a key entry, bit 7 removes
 * an entry added before. Each line's text goes through the common/netaddr.h
 * parsers and formatters, then allowlist_entry_parse() of its type; an entry
 * that parses is added (allowlist_add, over a table of active decisions, so
 * the covered decisions are collected) and the text is asked about with
 * every covers query.
 *
 * Oracles: an address or block formats to a text that parses back to itself,
 * its network contains it; and the per-event lookups (allowlist_covers_key,
 * through the index) agree with the decision lookup (allowlist_covers_decision,
 * a scan of every entry) on the same key: an allowlisted key whose events do
 * not count must also have its decisions revoked, and the other way round.
 */
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include "allowlist.h"
#include "decisions.h"
#include "fp.h"
#include "netaddr.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define S_NOW (1700000000LL * 1000)

/* what the reads add up to: kept so that they are not optimised away */
static volatile size_t s_sink;

/* Every netaddr parser and formatter on text, checked against each other. */
static size_t s_netaddr(const char *text)
{
    size_t sink = 0;
    netaddr_t a, b;
    char buf[NETADDR_STRLEN], cbuf[NETADDR_CIDRLEN];
    if (netaddr_parse(&a, text) == 0) {
        if (netaddr_format(&a, buf, sizeof(buf)) != 0 || netaddr_parse(&b, buf) != 0 ||
            !netaddr_equal(&a, &b))
            abort();
        netaddr_cidr_t net, net2;
        if (netaddr_network(&a, &net) != 0 || !netaddr_cidr_contains(&net, &a))
            abort();
        if (netaddr_network_text(&a, cbuf, sizeof(cbuf)) != 0 ||
            netaddr_cidr_parse(&net2, cbuf) != 0 || !netaddr_equal(&net.addr, &net2.addr) ||
            net.prefix != net2.prefix)
            abort();
        const uint8_t *w;
        size_t wl = netaddr_to_wire(&a, &w);
        if (wl == 0 || netaddr_from_wire(&b, w, wl) != 0 || !netaddr_equal(&a, &b))
            abort();
        sink += strlen(buf) + strlen(cbuf);
    }
    netaddr_cidr_t c, c2;
    if (netaddr_cidr_parse(&c, text) == 0) {
        if (netaddr_cidr_format(&c, cbuf, sizeof(cbuf)) != 0 ||
            netaddr_cidr_parse(&c2, cbuf) != 0 || !netaddr_equal(&c.addr, &c2.addr) ||
            c.prefix != c2.prefix || !netaddr_cidr_contains(&c, &c.addr))
            abort();
        sink += strlen(cbuf);
    }
    /* the text's bytes as a wire address */
    size_t tl = strlen(text);
    if (netaddr_from_wire(&a, (const uint8_t *)text, tl) == 0)
        sink += netaddr_format(&a, buf, sizeof(buf)) == 0 ? strlen(buf) : 0;
    return sink;
}

/* A few active decisions for allowlist_add() to find covered. */
static decisions_t *s_decisions(void)
{
    static const struct {
        bs_scope_t scope;
        const char *value;
        bs_reach_t reach;
    } ds[] = {
        {BS_SCOPE_CLIENT_IP, "192.0.2.1", BS_REACH_FLEET},
        {BS_SCOPE_CLIENT_IP, "2001:db8::1", BS_REACH_FLEET},
        {BS_SCOPE_CLIENT_NET, "192.0.2.0/24", BS_REACH_FLEET},
        {BS_SCOPE_CLIENT_NET, "2001:db8::/64", BS_REACH_LOCAL},
        {BS_SCOPE_SUBJECT, "cheap pills", BS_REACH_LOCAL},
        {BS_SCOPE_ORIG_SUBJECT, "cheap pills", BS_REACH_FLEET},
    };
    decisions_t *t = decisions_new(1, 0, 16);
    for (size_t i = 0; i < sizeof(ds) / sizeof(ds[0]); i++) {
        decision_t d;
        memset(&d, 0, sizeof(d));
        d.scope = ds[i].scope;
        d.fp = fp_text(ds[i].value);
        strcpy(d.value, ds[i].value);
        d.action = BS_ACTION_REJECT;
        d.reach = ds[i].reach;
        if (d.reach == BS_REACH_LOCAL)
            strcpy(d.site, "site-a");
        d.expires_ms = S_NOW + 3600 * 1000;
        d.origin = BS_ORIGIN_CLI;
        decisions_propose(t, &d, 0, S_NOW, NULL);
    }
    return t;
}

/* Every covers query on text (and its fingerprint) as a key of each scope. */
static size_t s_queries(const allowlist_t *al, const char *text)
{
    size_t sink = 0;
    uint64_t fp = fp_text(text);
    /* site: only local decisions name one, and by their site, not their key */
    for (int scope = BS_SCOPE_SUBJECT; scope <= BS_SCOPE_SENDER_DOMAIN; scope++) {
        bool ev = allowlist_covers_key(al, (bs_scope_t)scope, fp, text);
        sink += ev;
        sink += allowlist_covers_key(al, (bs_scope_t)scope, fp, NULL);
        if (strlen(text) >= DECISION_VALUE_MAX)
            continue;
        decision_t d;
        memset(&d, 0, sizeof(d));
        d.scope = (bs_scope_t)scope;
        d.fp = fp;
        strcpy(d.value, text);
        d.reach = BS_REACH_FLEET;
        bool dv = allowlist_covers_decision(al, &d);
        /* a net decision is covered by any overlap, its key only by an entry holding all of
         * it (allowlist.c); otherwise the index and the scan must agree */
        if (scope == BS_SCOPE_CLIENT_NET ? ev && !dv : dv != ev)
            abort();
    }
    netaddr_t a;
    if (netaddr_parse(&a, text) == 0) {
        const uint8_t *w;
        size_t wl = netaddr_to_wire(&a, &w);
        sink += allowlist_covers_ip(al, w, wl);
    }
    sink += allowlist_covers_ip(al, (const uint8_t *)text, strlen(text));
    sink += allowlist_covers_domain(al, text) + allowlist_covers_site(al, text);
    return sink;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    allowlist_t *al = allowlist_new();
    decisions_t *active = s_decisions();
    size_t sink = 0;
    const uint8_t *p = data, *end = data + size;
    for (int lines = 0; p < end && lines < 32; lines++) {
        const uint8_t *nl = memchr(p, '\n', (size_t)(end - p));
        size_t len = (size_t)((nl ? nl : end) - p);
        uint8_t how = len ? p[0] : 0;
        char *text = malloc(len + 1);
        if (len > 1)
            memcpy(text, p + 1, len - 1);
        text[len ? len - 1 : 0] = '\0';
        p = nl ? nl + 1 : end;

        sink += s_netaddr(text);
        if (how & 0x80) {
            uint32_t id = (how & 7u) + 1;
            if (allowlist_remove(al, id) == 0 && allowlist_find(al, id) != NULL)
                abort();
        }
        allow_type_t type = (allow_type_t)(how % 6);
        allow_entry_t e;
        memset(&e, 0, sizeof(e));
        int rc = -1;
        if (type == ALLOW_KEY) {
            /* filled by the caller, as the control handler does */
            e.type = ALLOW_KEY;
            e.scope = (bs_scope_t)(1 + (how >> 3 & 7) % 7);
            e.fp = fp_text(text);
            decisions_strlcpy(e.text, text, ALLOW_TEXT_MAX);
            rc = 0;
        } else if (type != 0) {
            rc = allowlist_entry_parse(&e, type, text);
        }
        if (rc == 0) {
            allowlist_ids_t covered = {0, NULL};
            uint32_t id = allowlist_add(al, &e, active, &covered);
            const allow_entry_t *got = allowlist_find(al, id);
            if (got == NULL || got->type != e.type)
                abort();
            for (size_t i = 0; i < covered.n; i++)
                sink += strlen(covered.id[i]);
            allowlist_ids_clear(&covered);
        }
        sink += s_queries(al, text);
        free(text);
    }
    sink += allowlist_count(al);
    s_sink = sink;
    decisions_destroy(&active);
    allowlist_destroy(&al);
    return 0;
}
