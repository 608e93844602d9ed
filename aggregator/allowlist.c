/*
 * allowlist - what must never be blocked, and which decisions that cancels
 *
 * A growing array of entries kept in id order, and an index for the per-event
 * lookups: an open-addressing table from a hash of what an entry matches (its
 * masked network and prefix length, its key, its domain, its site) to the
 * entry. An address is looked up once per prefix length in use (longest
 * first), a domain once per label, a key once, so the cost of a lookup does
 * not grow with the list. Every hit is checked against the entry itself.
 * Appending updates the index; anything else (an entry restored out of order,
 * a removal) rebuilds it: changes are an operator's, rare.
 *
 * Address parsing uses inet_pton(3) (pure, no I/O); prefix matching compares
 * whole bytes, then the masked remainder.
 */
#include <arpa/inet.h>
#include <assert.h>
#include <ctype.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "allowlist.h"
#include "fp.h"
#include "xalloc.h"

/* One index slot: the match hash of entry idx - 1; idx 0 marks an empty slot. */
typedef struct {
    uint64_t h;   /* s_hash_*() of what the entry matches */
    uint32_t idx; /* entry index + 1 */
} s_slot_t;

struct allowlist {
    allow_entry_t *entries; /* in id order */
    size_t n;               /* used */
    size_t alloc;           /* allocated */
    uint32_t next_id;       /* last id given */
    s_slot_t *index;        /* match hash -> entry; load at most 1/2 */
    size_t index_cap;       /* slots, a power of two (0: none yet) */
    uint32_t nprefix[129];  /* ip/net entries per prefix length */
    uint8_t prefixes[129];  /* the prefix lengths in use, longest first */
    size_t nprefixes;       /* used */
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

/* ---- the index ---- */

/* A network: the first prefix bits of addr (the rest ignored). */
static uint64_t s_hash_net(const uint8_t *addr, unsigned prefix)
{
    uint8_t m[16] = {0};
    unsigned whole = prefix / 8, rest = prefix % 8;
    memcpy(m, addr, whole);
    if (rest)
        m[whole] = (uint8_t)(addr[whole] & (0xff << (8 - rest)));
    uint64_t a, b;
    memcpy(&a, m, 8);
    memcpy(&b, m + 8, 8);
    return fp_mix64(fp_mix64(a ^ 0x6e6574) ^ b ^ ((uint64_t)prefix << 56));
}

/* Subject keys cover both subject scopes (the fingerprint is of the text alone). */
static bool s_is_subject(bs_scope_t s)
{
    return s == BS_SCOPE_SUBJECT || s == BS_SCOPE_ORIG_SUBJECT;
}

static uint64_t s_hash_key(bs_scope_t scope, uint64_t fp)
{
    unsigned cls = s_is_subject(scope) ? 0xffu : (unsigned)scope;
    return fp_mix64(fp ^ ((uint64_t)cls << 48) ^ 0x6b6579);
}

/* A string of len bytes under a tag ('d' domain, 's' site); FNV-1a, then mixed. */
static uint64_t s_hash_str(char tag, const char *str, size_t len)
{
    uint64_t h = 1469598103934665603ULL ^ (uint64_t)(unsigned char)tag;
    for (size_t i = 0; i < len; i++)
        h = (h ^ (unsigned char)str[i]) * 1099511628211ULL;
    return fp_mix64(h);
}

/* What entry e matches, as an index hash. */
static uint64_t s_entry_hash(const allow_entry_t *e)
{
    switch (e->type) {
    case ALLOW_IP:
    case ALLOW_NET:
        return s_hash_net(e->addr, e->prefix);
    case ALLOW_KEY:
        return s_hash_key(e->scope, e->fp);
    case ALLOW_DOMAIN:
        return s_hash_str('d', e->text, strlen(e->text));
    case ALLOW_SITE:
        return s_hash_str('s', e->text, strlen(e->text));
    }
    return 0;
}

static void s_index_put(allowlist_t *self, size_t i)
{
    const allow_entry_t *e = &self->entries[i];
    uint64_t h = s_entry_hash(e);
    size_t mask = self->index_cap - 1, j = (size_t)h & mask;
    while (self->index[j].idx)
        j = (j + 1) & mask;
    self->index[j].h = h;
    self->index[j].idx = (uint32_t)i + 1;
    if ((e->type == ALLOW_IP || e->type == ALLOW_NET) && self->nprefix[e->prefix]++ == 0) {
        /* a new prefix length: keep the list longest first */
        size_t k = self->nprefixes++;
        while (k > 0 && self->prefixes[k - 1] < e->prefix) {
            self->prefixes[k] = self->prefixes[k - 1];
            k--;
        }
        self->prefixes[k] = e->prefix;
    }
}

/* Rebuilds the index for the entries there are, with room to append. */
static void s_index_rebuild(allowlist_t *self)
{
    size_t cap = 16;
    while (cap < 2 * (self->n + 1))
        cap *= 2;
    xfree(self->index);
    self->index = xcalloc(cap, sizeof(*self->index));
    self->index_cap = cap;
    memset(self->nprefix, 0, sizeof(self->nprefix));
    self->nprefixes = 0;
    for (size_t i = 0; i < self->n; i++)
        s_index_put(self, i);
}

/* Whether match(entry, arg) holds for an entry indexed under h. */
static bool s_index_any(const allowlist_t *self, uint64_t h,
                        bool (*match)(const allow_entry_t *e, const void *arg), const void *arg)
{
    if (self->index_cap == 0)
        return false;
    size_t mask = self->index_cap - 1;
    for (size_t j = (size_t)h & mask; self->index[j].idx; j = (j + 1) & mask)
        if (self->index[j].h == h && match(&self->entries[self->index[j].idx - 1], arg))
            return true;
    return false;
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
    xfree((*self_p)->index);
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

/* A subject_ip key's text "SUBJECTKEY|IP": the subject key's fingerprint and the address
 * (16-byte form); false when it is no such text. */
static bool s_subject_ip_parts(const char *text, uint64_t *subject_fp, uint8_t addr[16])
{
    const char *bar = text ? strrchr(text, '|') : NULL;
    uint8_t prefix;
    if (bar == NULL || s_parse_net(bar + 1, false, addr, &prefix) != 0)
        return false;
    char subject[ALLOW_TEXT_MAX + 1];
    size_t n = (size_t)(bar - text);
    if (n > ALLOW_TEXT_MAX)
        return false;
    memcpy(subject, text, n);
    subject[n] = 0;
    *subject_fp = fp_text(subject);
    return true;
}

/* Whether e covers the key (scope, fp, text): the same key, a subject key of either kind, an
 * address or a network it holds, a subject_ip key whose subject or address it covers. */
static bool s_entry_covers_key(const allow_entry_t *e, bs_scope_t scope, uint64_t fp,
                               const char *text)
{
    uint8_t addr[16], prefix;
    uint64_t sfp;
    if (scope == BS_SCOPE_SUBJECT_IP && e->type != ALLOW_SITE && e->type != ALLOW_DOMAIN &&
        !(e->type == ALLOW_KEY && e->scope == BS_SCOPE_SUBJECT_IP) &&
        s_subject_ip_parts(text, &sfp, addr))
        return e->type == ALLOW_KEY ? s_is_subject(e->scope) && e->fp == sfp
                                    : s_prefix_match(e->addr, e->prefix, addr);
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

/* ---- per-event lookups, through the index ---- */

/* An address (16-byte form) and the longest prefix an entry may have to cover it. */
typedef struct {
    uint8_t addr[16]; /* the address or network */
    unsigned within;  /* the entry's prefix must be <= this (128: any) */
} s_addr_arg_t;

static bool s_match_net(const allow_entry_t *e, const void *arg)
{
    const s_addr_arg_t *a = arg;
    return (e->type == ALLOW_IP || e->type == ALLOW_NET) && e->prefix <= a->within &&
           s_prefix_match(e->addr, e->prefix, a->addr);
}

/* Whether an ip/net entry with a prefix of at most within covers addr. */
static bool s_covers_addr(const allowlist_t *self, const uint8_t addr[16], unsigned within)
{
    s_addr_arg_t a = {.within = within};
    memcpy(a.addr, addr, 16);
    for (size_t i = 0; i < self->nprefixes; i++) {
        unsigned p = self->prefixes[i];
        if (p <= within && s_index_any(self, s_hash_net(addr, p), s_match_net, &a))
            return true;
    }
    return false;
}

typedef struct {
    bs_scope_t scope; /* the key's scope */
    uint64_t fp;      /* its fingerprint */
} s_key_arg_t;

static bool s_match_key(const allow_entry_t *e, const void *arg)
{
    const s_key_arg_t *k = arg;
    return e->type == ALLOW_KEY && e->fp == k->fp &&
           (e->scope == k->scope || (s_is_subject(e->scope) && s_is_subject(k->scope)));
}

static bool s_match_domain(const allow_entry_t *e, const void *arg)
{
    return e->type == ALLOW_DOMAIN && strcmp(e->text, arg) == 0;
}

static bool s_match_site(const allow_entry_t *e, const void *arg)
{
    return e->type == ALLOW_SITE && strcmp(e->text, arg) == 0;
}

bool allowlist_covers_key(const allowlist_t *self, bs_scope_t scope, uint64_t fp, const char *text)
{
    if (self->n == 0)
        return false;
    s_key_arg_t k = {.scope = scope, .fp = fp};
    if (s_index_any(self, s_hash_key(scope, fp), s_match_key, &k))
        return true;
    if (text == NULL)
        return false;
    uint8_t addr[16], prefix;
    uint64_t sfp;
    switch (scope) {
    case BS_SCOPE_SUBJECT_IP:
        /* its subject allowlisted, or its address */
        if (!s_subject_ip_parts(text, &sfp, addr))
            return false;
        k.scope = BS_SCOPE_SUBJECT;
        k.fp = sfp;
        return s_index_any(self, s_hash_key(BS_SCOPE_SUBJECT, sfp), s_match_key, &k) ||
               (self->nprefixes && s_covers_addr(self, addr, 128));
    case BS_SCOPE_CLIENT_IP:
        return self->nprefixes && s_parse_net(text, false, addr, &prefix) == 0 &&
               s_covers_addr(self, addr, 128);
    case BS_SCOPE_CLIENT_NET:
        return self->nprefixes && s_parse_net(text, true, addr, &prefix) == 0 &&
               s_covers_addr(self, addr, prefix);
    case BS_SCOPE_SENDER_DOMAIN:
        return allowlist_covers_domain(self, text);
    case BS_SCOPE_SITE:
        return allowlist_covers_site(self, text);
    default:
        return false;
    }
}

static bool s_entry_covers_decision(const allow_entry_t *e, const decision_t *d)
{
    if (e->type == ALLOW_SITE)
        return d->reach == BS_REACH_LOCAL && strcmp(e->text, d->site) == 0;
    uint8_t addr[16], prefix;
    if ((e->type == ALLOW_IP || e->type == ALLOW_NET) && d->scope == BS_SCOPE_CLIENT_NET &&
        s_parse_net(d->value, true, addr, &prefix) == 0)
        /* a block of a network would block the addresses allowlisted inside it too (sensors
         * look mail up by its client's network): any overlap covers it */
        return s_prefix_match(e->addr, e->prefix < prefix ? e->prefix : prefix, addr);
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
    if (self->nprefixes == 0 || ip == NULL || s_to16(ip, len, addr) < 0)
        return false;
    return s_covers_addr(self, addr, 128);
}

bool allowlist_covers_domain(const allowlist_t *self, const char *domain)
{
    if (self->n == 0 || domain == NULL || *domain == 0)
        return false;
    /* without a trailing dot; then itself and each parent domain, lower-cased. Entries
     * are at most ALLOW_TEXT_MAX long, so only the last that many bytes can match. */
    size_t len = strlen(domain);
    if (domain[len - 1] == '.')
        len--;
    if (len == 0)
        return false;
    size_t from = len > ALLOW_TEXT_MAX ? len - ALLOW_TEXT_MAX : 0;
    char low[ALLOW_TEXT_MAX + 1];
    for (size_t i = from; i < len; i++)
        low[i - from] = (char)tolower((unsigned char)domain[i]);
    low[len - from] = 0;
    for (size_t i = from; i < len; i++) {
        const char *suffix = low + (i - from);
        if ((i == 0 || domain[i - 1] == '.') &&
            s_index_any(self, s_hash_str('d', suffix, len - i), s_match_domain, suffix))
            return true;
    }
    return false;
}

bool allowlist_covers_site(const allowlist_t *self, const char *site)
{
    if (self->n == 0 || site == NULL)
        return false;
    return s_index_any(self, s_hash_str('s', site, strlen(site)), s_match_site, site);
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
    if (i + 1 < self->n || 2 * (self->n + 1) > self->index_cap)
        s_index_rebuild(self); /* entries moved, or the index is full */
    else
        s_index_put(self, i);
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
    /* a damaged record: the index and the matching read prefix bits of 16 bytes only */
    if ((e->type == ALLOW_IP || e->type == ALLOW_NET) && e->prefix > 128)
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
            s_index_rebuild(self);
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

/* s_index_any() match: the same entry as arg (allowlist_find_same()'s rule). */
static bool s_match_same(const allow_entry_t *x, const void *arg)
{
    const allow_entry_t *e = arg;
    if (x->type != e->type)
        return false;
    return e->type == ALLOW_KEY ? x->fp == e->fp : strcmp(x->text, e->text) == 0;
}

uint32_t allowlist_find_same(const allowlist_t *self, const allow_entry_t *e)
{
    /* the index has it under the hash of what it matches (key entries are of subject
     * scopes, which hash alike) */
    if (self->index_cap == 0)
        return 0;
    uint64_t h = s_entry_hash(e);
    size_t mask = self->index_cap - 1;
    for (size_t j = (size_t)h & mask; self->index[j].idx; j = (j + 1) & mask) {
        const allow_entry_t *x = &self->entries[self->index[j].idx - 1];
        if (self->index[j].h == h && s_match_same(x, e))
            return x->id;
    }
    return 0;
}
