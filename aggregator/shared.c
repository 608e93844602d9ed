/*
 * shared - the allowlist entries and sites a failover pair keeps alike; see shared.h.
 *
 * Tombstones are kept sorted by identity (an operator removes entries now and
 * then; a merge looks one up per entry the peer sends).
 */
#include "shared.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli_key.h"
#include "fp.h"
#include "xalloc.h"

struct shared {
    shared_rec_t *tombs; /* sorted by ids[] */
    uint64_t *ids;       /* their identities, ascending */
    size_t n, cap;       /* used, allocated */
};

shared_t *shared_new(void)
{
    return xcalloc(1, sizeof(shared_t));
}

void shared_destroy(shared_t **self_p)
{
    if (!self_p || !*self_p)
        return;
    xfree((*self_p)->tombs);
    xfree((*self_p)->ids);
    xfree(*self_p);
    *self_p = NULL;
}

void shared_rec_allow(shared_rec_t *r, const allow_entry_t *e)
{
    memset(r, 0, sizeof(*r));
    r->kind = SHARED_ALLOW;
    r->changed_ms = e->created_ms;
    decisions_strlcpy(r->who, e->who, DECISION_NAME_MAX);
    r->allow = *e;
    r->allow.id = 0;
    r->allow.who[0] = 0;
}

void shared_rec_site(shared_rec_t *r, const char *name, const char *public_key, int64_t created_ms,
                     const char *who)
{
    memset(r, 0, sizeof(*r));
    r->kind = SHARED_SITE;
    r->changed_ms = created_ms;
    decisions_strlcpy(r->site, name, WIRE_MAX_ID);
    decisions_strlcpy(r->public_key, public_key ? public_key : "", ZSOCK_Z85_LEN);
    decisions_strlcpy(r->who, who ? who : "", DECISION_NAME_MAX);
}

uint64_t shared_identity(const shared_rec_t *r)
{
    /* the same rule as "allow add" uses to find an entry that exists already */
    char buf[ALLOW_TEXT_MAX + 32];
    int n;
    if (r->kind == SHARED_SITE)
        n = snprintf(buf, sizeof(buf), "s\037%s", r->site);
    else if (r->allow.type == ALLOW_KEY)
        n = snprintf(buf, sizeof(buf), "a\037%d\037%016llx", (int)r->allow.type,
                     (unsigned long long)r->allow.fp);
    else
        n = snprintf(buf, sizeof(buf), "a\037%d\037%s", (int)r->allow.type, r->allow.text);
    return fp_bytes(buf, (size_t)n);
}

/* Hash of everything a record says. */
static uint64_t s_content(const shared_rec_t *r)
{
    char buf[ALLOW_TEXT_MAX + DECISION_REASON_MAX + DECISION_NAME_MAX + ZSOCK_Z85_LEN + 96];
    int n = snprintf(buf, sizeof(buf), "%016llx\037%lld\037%d\037%s\037%d\037%s\037%s\037%s",
                     (unsigned long long)shared_identity(r), (long long)r->changed_ms,
                     r->removed ? 1 : 0, r->who, (int)r->allow.scope, r->allow.text,
                     r->allow.reason, r->public_key);
    return fp_bytes(buf, (size_t)n < sizeof(buf) ? (size_t)n : sizeof(buf) - 1);
}

bool shared_loses(const shared_rec_t *a, const shared_rec_t *b)
{
    if (a == NULL)
        return true;
    if (a->changed_ms != b->changed_ms)
        return a->changed_ms < b->changed_ms;
    if (a->removed != b->removed)
        return b->removed;
    return s_content(a) < s_content(b);
}

uint64_t shared_digest_add(uint64_t digest, const shared_rec_t *r)
{
    return digest + fp_mix64(s_content(r));
}

/* ---- tombstones ---- */

/* Index of the first identity >= id. */
static size_t s_lower(const shared_t *self, uint64_t id)
{
    size_t lo = 0, hi = self->n;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        if (self->ids[mid] < id)
            lo = mid + 1;
        else
            hi = mid;
    }
    return lo;
}

void shared_tomb_put(shared_t *self, const shared_rec_t *r)
{
    uint64_t id = shared_identity(r);
    size_t i = s_lower(self, id);
    if (i < self->n && self->ids[i] == id) {
        self->tombs[i] = *r;
        self->tombs[i].removed = true;
        return;
    }
    if (self->n == self->cap) {
        self->cap = self->cap ? self->cap * 2 : 16;
        self->tombs = xrealloc(self->tombs, self->cap * sizeof(*self->tombs));
        self->ids = xrealloc(self->ids, self->cap * sizeof(*self->ids));
    }
    memmove(self->tombs + i + 1, self->tombs + i, (self->n - i) * sizeof(*self->tombs));
    memmove(self->ids + i + 1, self->ids + i, (self->n - i) * sizeof(*self->ids));
    self->tombs[i] = *r;
    self->tombs[i].removed = true;
    self->ids[i] = id;
    self->n++;
}

const shared_rec_t *shared_tomb_find(const shared_t *self, uint64_t identity)
{
    size_t i = s_lower(self, identity);
    return i < self->n && self->ids[i] == identity ? &self->tombs[i] : NULL;
}

bool shared_tomb_drop(shared_t *self, uint64_t identity)
{
    size_t i = s_lower(self, identity);
    if (i == self->n || self->ids[i] != identity)
        return false;
    memmove(self->tombs + i, self->tombs + i + 1, (self->n - i - 1) * sizeof(*self->tombs));
    memmove(self->ids + i, self->ids + i + 1, (self->n - i - 1) * sizeof(*self->ids));
    self->n--;
    return true;
}

const shared_rec_t *shared_tombs(const shared_t *self, size_t *n_p)
{
    *n_p = self->n;
    return self->tombs;
}

/* ---- the wire ---- */

static int s_fail(char *err, size_t errlen, const char *why)
{
    snprintf(err, errlen, "%s", why);
    return -1;
}

int shared_rec_read(const Backstop__SharedEntry *pb, shared_rec_t *r, char *err, size_t errlen)
{
    memset(r, 0, sizeof(*r));
    if (pb->changed_ms <= 0)
        return s_fail(err, errlen, "no time of change");
    r->changed_ms = pb->changed_ms;
    r->removed = pb->has_removed && pb->removed;
    decisions_strlcpy(r->who, pb->who ? pb->who : "", DECISION_NAME_MAX);
    const char *text = pb->text ? pb->text : "";
    switch (pb->kind) {
    case BACKSTOP__SHARED_ENTRY__KIND__SITE:
        r->kind = SHARED_SITE;
        if (!cli_key_site_valid(text))
            return s_fail(err, errlen, "not a site name");
        decisions_strlcpy(r->site, text, WIRE_MAX_ID);
        if (pb->public_key && *pb->public_key) {
            if (!zsock_key_valid(pb->public_key))
                return s_fail(err, errlen, "site key is not a Z85 CURVE key");
            decisions_strlcpy(r->public_key, pb->public_key, ZSOCK_Z85_LEN);
        }
        return 0;
    case BACKSTOP__SHARED_ENTRY__KIND__ALLOW:
        break;
    default:
        return s_fail(err, errlen, "unknown kind");
    }
    r->kind = SHARED_ALLOW;
    allow_entry_t *e = &r->allow;
    e->created_ms = pb->changed_ms;
    decisions_strlcpy(e->reason, pb->reason ? pb->reason : "", DECISION_REASON_MAX);
    if (!pb->has_type)
        return s_fail(err, errlen, "allowlist entry without a type");
    if (pb->type == BACKSTOP__SHARED_ENTRY__ALLOW_TYPE__KEY) {
        if (!pb->has_scope || !pb->has_fp || *text == 0 || strlen(text) > ALLOW_TEXT_MAX)
            return s_fail(err, errlen, "key entry without scope, fingerprint or text");
        /* "allow add" makes key entries of the subject scopes only; the rest have types */
        if (pb->scope != BACKSTOP__SCOPE__SUBJECT && pb->scope != BACKSTOP__SCOPE__ORIG_SUBJECT)
            return s_fail(err, errlen, "key entry of a scope other than the subjects'");
        if (pb->fp != fp_text(text))
            return s_fail(err, errlen, "key entry whose fingerprint is not its text's");
        e->type = ALLOW_KEY;
        e->scope = (bs_scope_t)pb->scope;
        e->fp = pb->fp;
        decisions_strlcpy(e->text, text, ALLOW_TEXT_MAX);
        return 0;
    }
    allow_type_t type;
    bs_scope_t scope;
    switch (pb->type) {
    case BACKSTOP__SHARED_ENTRY__ALLOW_TYPE__IP:
        type = ALLOW_IP;
        scope = BS_SCOPE_CLIENT_IP;
        break;
    case BACKSTOP__SHARED_ENTRY__ALLOW_TYPE__NET:
        type = ALLOW_NET;
        scope = BS_SCOPE_CLIENT_NET;
        break;
    case BACKSTOP__SHARED_ENTRY__ALLOW_TYPE__DOMAIN:
        type = ALLOW_DOMAIN;
        scope = BS_SCOPE_SENDER_DOMAIN;
        break;
    case BACKSTOP__SHARED_ENTRY__ALLOW_TYPE__WHOLE_SITE:
        type = ALLOW_SITE;
        scope = BS_SCOPE_SITE;
        break;
    default:
        return s_fail(err, errlen, "unknown allowlist type");
    }
    /* the text as "allow add" stores it, canonical: the same entry has one text on both
     * sides (identity is by text) */
    char kerr[128];
    char *canon = cli_key_text(scope, text, kerr, sizeof(kerr));
    bool same = canon && strcmp(canon, text) == 0;
    xfree(canon);
    if (!same || allowlist_entry_parse(e, type, text) < 0)
        return s_fail(err, errlen, "allowlist text not valid, or not canonical, for its type");
    return 0;
}

void shared_rec_write(const shared_rec_t *r, Backstop__SharedEntry *pb)
{
    backstop__shared_entry__init(pb);
    pb->changed_ms = r->changed_ms;
    if (r->removed) {
        pb->has_removed = 1;
        pb->removed = 1;
    }
    pb->who = r->who[0] ? (char *)r->who : NULL;
    if (r->kind == SHARED_SITE) {
        pb->kind = BACKSTOP__SHARED_ENTRY__KIND__SITE;
        pb->text = (char *)r->site;
        pb->public_key = r->public_key[0] ? (char *)r->public_key : NULL;
        return;
    }
    pb->kind = BACKSTOP__SHARED_ENTRY__KIND__ALLOW;
    pb->has_type = 1;
    /* allow_type_t's values are the wire's */
    pb->type = (Backstop__SharedEntry__AllowType)r->allow.type;
    pb->text = (char *)r->allow.text;
    pb->reason = r->allow.reason[0] ? (char *)r->allow.reason : NULL;
    if (r->allow.type == ALLOW_KEY) {
        pb->has_scope = 1;
        pb->scope = (Backstop__Scope)r->allow.scope;
        pb->has_fp = 1;
        pb->fp = r->allow.fp;
    }
}

uint8_t *shared_rec_pack(const shared_rec_t *r, size_t *len_p)
{
    Backstop__SharedEntry pb;
    shared_rec_write(r, &pb);
    size_t len = backstop__shared_entry__get_packed_size(&pb);
    uint8_t *buf = xmalloc(len ? len : 1);
    *len_p = backstop__shared_entry__pack(&pb, buf);
    return buf;
}

int shared_rec_unpack(const uint8_t *buf, size_t len, shared_rec_t *r)
{
    if (len > WIRE_MAX_FRAME)
        return -1;
    Backstop__SharedEntry *pb = backstop__shared_entry__unpack(NULL, len, buf);
    if (pb == NULL)
        return -1;
    char err[128];
    /* the same checks as for the wire: a record is stored only after them */
    int rc = shared_rec_read(pb, r, err, sizeof(err));
    backstop__shared_entry__free_unpacked(pb, NULL);
    return rc;
}

const char *shared_kind_name(shared_kind_t kind)
{
    return kind == SHARED_SITE ? "site" : "allow";
}

const char *shared_rec_text(const shared_rec_t *r)
{
    return r->kind == SHARED_SITE ? r->site : r->allow.text;
}
