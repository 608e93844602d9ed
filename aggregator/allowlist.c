/*
 * allowlist - what must never be blocked, and which decisions that cancels
 *
 * A growing array of entries kept in id order. Address parsing uses
 * inet_pton(3) (pure, no I/O); prefix matching compares whole bytes, then the
 * masked remainder.
 */
#include <arpa/inet.h>
#include <assert.h>
#include <ctype.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "allowlist.h"
#include "xalloc.h"

struct allowlist {
    allow_entry_t *entries; /* in id order */
    size_t n;               /* used */
    size_t alloc;           /* allocated */
    uint32_t next_id;       /* last id given */
};

static const uint8_t s_v4_mapped[12] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff};

/* 4 or 16 bytes into the 16-byte form; -1 for other lengths. */
static int s_to16(const uint8_t *ip, size_t len, uint8_t out[16])
{
    if (len == 4) {
        memcpy(out, s_v4_mapped, 12);
        memcpy(out + 12, ip, 4);
        return 0;
    }
    if (len == 16) {
        memcpy(out, ip, 16);
        return 0;
    }
    return -1;
}

static bool s_prefix_match(const uint8_t *net, unsigned prefix, const uint8_t *addr)
{
    unsigned whole = prefix / 8, rest = prefix % 8;
    if (memcmp(net, addr, whole) != 0)
        return false;
    if (rest == 0)
        return true;
    uint8_t mask = (uint8_t)(0xff << (8 - rest));
    return (net[whole] & mask) == (addr[whole] & mask);
}

/* Parses "ADDR" or "ADDR/LEN" into 16 bytes + prefix (IPv4 prefixes + 96). */
static int s_parse_net(const char *text, bool want_prefix, uint8_t out[16], uint8_t *prefix_p)
{
    char buf[INET6_ADDRSTRLEN + 8];
    if (text == NULL || strlen(text) >= sizeof(buf))
        return -1;
    strcpy(buf, text);
    char *slash = strchr(buf, '/');
    long plen = -1;
    if (slash) {
        if (!want_prefix)
            return -1;
        *slash = 0;
        char *end;
        if (!isdigit((unsigned char)slash[1]))
            return -1;
        plen = strtol(slash + 1, &end, 10);
        if (*end != 0)
            return -1;
    } else if (want_prefix) {
        return -1;
    }
    uint8_t raw[16];
    if (inet_pton(AF_INET, buf, raw) == 1) {
        if (plen > 32)
            return -1;
        s_to16(raw, 4, out);
        *prefix_p = (uint8_t)(plen < 0 ? 128 : plen + 96);
    } else if (inet_pton(AF_INET6, buf, raw) == 1) {
        if (plen > 128)
            return -1;
        memcpy(out, raw, 16);
        *prefix_p = (uint8_t)(plen < 0 ? 128 : plen);
    } else {
        return -1;
    }
    /* a network written with host bits set is a typo worth refusing */
    for (unsigned bit = *prefix_p; bit < 128; bit++)
        if (out[bit / 8] & (0x80 >> (bit % 8)))
            return -1;
    return 0;
}

allowlist_t *allowlist_new(void)
{
    return xcalloc(1, sizeof(allowlist_t));
}

void allowlist_destroy(allowlist_t **self_p)
{
    assert(self_p);
    if (*self_p == NULL)
        return;
    xfree((*self_p)->entries);
    xfree(*self_p);
    *self_p = NULL;
}

int allowlist_entry_parse(allow_entry_t *e, allow_type_t type, const char *text)
{
    if (text == NULL || *text == 0 || strlen(text) > ALLOW_TEXT_MAX)
        return -1;
    e->type = type;
    switch (type) {
    case ALLOW_IP:
        if (s_parse_net(text, false, e->addr, &e->prefix) < 0)
            return -1;
        break;
    case ALLOW_NET:
        if (s_parse_net(text, true, e->addr, &e->prefix) < 0)
            return -1;
        break;
    case ALLOW_DOMAIN: {
        size_t len = strlen(text);
        if (text[len - 1] == '.')
            len--;
        if (len == 0 || text[0] == '.')
            return -1;
        for (size_t i = 0; i < len; i++) {
            unsigned char c = (unsigned char)text[i];
            if (!(isalnum(c) || c == '-' || c == '.' || c == '_' || c >= 0x80))
                return -1;
            e->text[i] = (char)tolower(c);
        }
        e->text[len] = 0;
        return 0;
    }
    case ALLOW_SITE:
        break;
    default:
        return -1;
    }
    decisions_strlcpy(e->text, text, ALLOW_TEXT_MAX);
    return 0;
}

static bool s_is_subject(bs_scope_t s)
{
    return s == BS_SCOPE_SUBJECT || s == BS_SCOPE_ORIG_SUBJECT;
}

/* Whether domain equals suffix or ends with "." suffix (case-insensitive). */
static bool s_domain_match(const char *suffix, const char *domain)
{
    size_t ls = strlen(suffix), ld = strlen(domain);
    if (ld > 0 && domain[ld - 1] == '.')
        ld--;
    if (ld < ls || strncasecmp(domain + ld - ls, suffix, ls) != 0)
        return false;
    return ld == ls || domain[ld - ls - 1] == '.';
}

static bool s_entry_covers_key(const allow_entry_t *e, bs_scope_t scope, uint64_t fp,
                               const char *text)
{
    uint8_t addr[16], prefix;
    switch (e->type) {
    case ALLOW_KEY:
        return e->fp == fp &&
               (e->scope == scope || (s_is_subject(e->scope) && s_is_subject(scope)));
    case ALLOW_IP:
    case ALLOW_NET:
        if (text == NULL)
            return false;
        if (scope == BS_SCOPE_CLIENT_IP && s_parse_net(text, false, addr, &prefix) == 0)
            return s_prefix_match(e->addr, e->prefix, addr);
        if (scope == BS_SCOPE_CLIENT_NET && s_parse_net(text, true, addr, &prefix) == 0)
            return prefix >= e->prefix && s_prefix_match(e->addr, e->prefix, addr);
        return false;
    case ALLOW_DOMAIN:
        return scope == BS_SCOPE_SENDER_DOMAIN && text && s_domain_match(e->text, text);
    case ALLOW_SITE:
        return scope == BS_SCOPE_SITE && text && strcmp(e->text, text) == 0;
    }
    return false;
}

bool allowlist_covers_key(const allowlist_t *self, bs_scope_t scope, uint64_t fp, const char *text)
{
    for (size_t i = 0; i < self->n; i++)
        if (s_entry_covers_key(&self->entries[i], scope, fp, text))
            return true;
    return false;
}

static bool s_entry_covers_decision(const allow_entry_t *e, const decision_t *d)
{
    if (e->type == ALLOW_SITE)
        return d->reach == BS_REACH_LOCAL && strcmp(e->text, d->site) == 0;
    return s_entry_covers_key(e, d->scope, d->fp, d->value);
}

bool allowlist_covers_decision(const allowlist_t *self, const decision_t *d)
{
    for (size_t i = 0; i < self->n; i++)
        if (s_entry_covers_decision(&self->entries[i], d))
            return true;
    return false;
}

bool allowlist_covers_ip(const allowlist_t *self, const uint8_t *ip, size_t len)
{
    uint8_t addr[16];
    if (ip == NULL || s_to16(ip, len, addr) < 0)
        return false;
    for (size_t i = 0; i < self->n; i++) {
        const allow_entry_t *e = &self->entries[i];
        if ((e->type == ALLOW_IP || e->type == ALLOW_NET) &&
            s_prefix_match(e->addr, e->prefix, addr))
            return true;
    }
    return false;
}

bool allowlist_covers_domain(const allowlist_t *self, const char *domain)
{
    if (domain == NULL || *domain == 0)
        return false;
    for (size_t i = 0; i < self->n; i++)
        if (self->entries[i].type == ALLOW_DOMAIN && s_domain_match(self->entries[i].text, domain))
            return true;
    return false;
}

bool allowlist_covers_site(const allowlist_t *self, const char *site)
{
    if (site == NULL)
        return false;
    for (size_t i = 0; i < self->n; i++)
        if (self->entries[i].type == ALLOW_SITE && strcmp(self->entries[i].text, site) == 0)
            return true;
    return false;
}

static void s_append(allowlist_t *self, const allow_entry_t *e)
{
    if (self->n == self->alloc) {
        self->alloc = self->alloc ? self->alloc * 2 : 16;
        self->entries = xrealloc(self->entries, self->alloc * sizeof(*self->entries));
    }
    /* keep id order: restored entries may arrive in any order */
    size_t i = self->n;
    while (i > 0 && self->entries[i - 1].id > e->id) {
        self->entries[i] = self->entries[i - 1];
        i--;
    }
    self->entries[i] = *e;
    self->n++;
}

typedef struct {
    const allow_entry_t *entry; /* the new entry */
    allowlist_ids_t *out;       /* ids covered */
} s_cover_t;

static int s_collect(const decision_t *d, void *arg)
{
    s_cover_t *c = arg;
    if (!s_entry_covers_decision(c->entry, d))
        return 0;
    c->out->id = xrealloc(c->out->id, (c->out->n + 1) * sizeof(*c->out->id));
    memcpy(c->out->id[c->out->n++], d->id, DECISION_ID_LEN + 1);
    return 0;
}

uint32_t allowlist_add(allowlist_t *self, const allow_entry_t *e, const decisions_t *active,
                       allowlist_ids_t *covered)
{
    assert(e->type >= ALLOW_IP && e->type <= ALLOW_SITE);
    allow_entry_t copy = *e;
    copy.id = ++self->next_id;
    s_append(self, &copy);
    if (covered && active) {
        s_cover_t c = {.entry = &copy, .out = covered};
        decisions_foreach(active, NULL, s_collect, &c);
    }
    return copy.id;
}

int allowlist_restore(allowlist_t *self, const allow_entry_t *e)
{
    if (e->id == 0 || allowlist_find(self, e->id) || e->type < ALLOW_IP || e->type > ALLOW_SITE)
        return -1;
    s_append(self, e);
    if (e->id > self->next_id)
        self->next_id = e->id;
    return 0;
}

int allowlist_remove(allowlist_t *self, uint32_t id)
{
    for (size_t i = 0; i < self->n; i++) {
        if (self->entries[i].id == id) {
            memmove(&self->entries[i], &self->entries[i + 1],
                    (self->n - i - 1) * sizeof(*self->entries));
            self->n--;
            return 0;
        }
    }
    return -1;
}

const allow_entry_t *allowlist_find(const allowlist_t *self, uint32_t id)
{
    for (size_t i = 0; i < self->n; i++)
        if (self->entries[i].id == id)
            return &self->entries[i];
    return NULL;
}

size_t allowlist_count(const allowlist_t *self)
{
    return self->n;
}

int allowlist_foreach(const allowlist_t *self, int (*cb)(const allow_entry_t *e, void *arg),
                      void *arg)
{
    for (size_t i = 0; i < self->n; i++) {
        int rc = cb(&self->entries[i], arg);
        if (rc)
            return rc;
    }
    return 0;
}

void allowlist_ids_clear(allowlist_ids_t *ids)
{
    xfree(ids->id);
    ids->id = NULL;
    ids->n = 0;
}
