/*
 * decisions - the table of block decisions, their sequence log and changes
 *
 * Active decisions are nodes on two intrusive chained hash tables: by id and by
 * identity (scope, fp, reach, site, mode). The sequence log is a ring of change
 * records holding seqs floor+1 .. seq; a change still waiting in the pending
 * queue is never dropped from the ring (it grows instead), so pending and log
 * share storage: pending is simply the changes after `taken`.
 */
#include <assert.h>
#include <ctype.h>
#include <stdlib.h>
#include <string.h>

#include "decisions.h"
#include "fp.h"
#include "xalloc.h"

#define S_ID_BITS     40
#define S_ID_MASK     ((1ULL << S_ID_BITS) - 1)
#define S_LOG_MAX     4096u
#define S_MIN_BUCKETS 64u

/* Crockford base32: no I, L, O, U. */
static const char s_alphabet[] = "0123456789ABCDEFGHJKMNPQRSTVWXYZ";

typedef struct s_node {
    decision_t d;            /* the decision */
    struct s_node *next_id;  /* chain in by_id */
    struct s_node *next_key; /* chain in by_key */
} s_node_t;

struct decisions {
    uint64_t epoch;         /* this table's epoch */
    uint64_t seq;           /* last sequence number used */
    uint64_t floor;         /* the log holds floor+1 .. seq */
    uint64_t taken;         /* changes up to here were taken */
    s_node_t **by_id;       /* id hash chains */
    s_node_t **by_key;      /* identity hash chains */
    size_t nbuckets;        /* power of two, both tables */
    size_t count;           /* active decisions */
    size_t enforced;        /* of which in enforce mode */
    uint64_t removals;      /* active decisions removed so far */
    decision_change_t *log; /* ring of changes */
    size_t log_cap;         /* ring slots allocated */
    size_t log_head;        /* ring index of seq floor+1 */
    size_t log_max;         /* changes to keep once taken */
    int64_t next_expiry;    /* earliest expires_ms, INT64_MAX if none (unless next_stale) */
    bool next_stale;        /* next_expiry must be found again (its decision went or moved) */
    bool mirroring;         /* the change being logged is the peer's (decisions_mirror) */
};

static uint64_t s_str_hash(const char *s)
{
    uint64_t h = 1469598103934665603ULL;
    for (; *s; s++)
        h = (h ^ (uint8_t)*s) * 1099511628211ULL;
    return h;
}

void decisions_strlcpy(char *dst, const char *src, size_t max)
{
    size_t len = src ? strnlen(src, max) : 0;
    if (len)
        memcpy(dst, src, len);
    dst[len] = 0;
}

static size_t s_id_bucket(const decisions_t *t, const char *id)
{
    return (size_t)s_str_hash(id) & (t->nbuckets - 1);
}

static size_t s_key_bucket(const decisions_t *t, const decision_t *d)
{
    uint64_t h = fp_mix64(d->fp ^ ((uint64_t)d->scope << 56) ^ ((uint64_t)d->reach << 48) ^
                          ((uint64_t)d->mode << 40)) ^
                 s_str_hash(d->site);
    return (size_t)fp_mix64(h) & (t->nbuckets - 1);
}

static int s_same_identity(const decision_t *a, const decision_t *b)
{
    return a->scope == b->scope && a->fp == b->fp && a->reach == b->reach && a->mode == b->mode &&
           strcmp(a->site, b->site) == 0;
}

/* Bijection on 40 bits: odd multiplications and xor-shifts, each invertible. */
static uint64_t s_permute40(uint64_t x)
{
    x &= S_ID_MASK;
    x = (x * 0x5DEECE66DULL) & S_ID_MASK;
    x ^= x >> 19;
    x = (x * 0x2545F4914FULL) & S_ID_MASK;
    x ^= x >> 23;
    x = (x * 0x9E3779B97ULL) & S_ID_MASK;
    x ^= x >> 17;
    return x;
}

static void s_encode_id(uint64_t x, char *out)
{
    for (int i = DECISION_ID_LEN - 1; i >= 0; i--) {
        out[i] = s_alphabet[x & 31];
        x >>= 5;
    }
    out[DECISION_ID_LEN] = 0;
}

/* Canonical form of a typed id: upper case, o -> 0, i/l -> 1. -1 if not an id. */
static int s_normalise_id(const char *in, char *out)
{
    if (in == NULL || strlen(in) != DECISION_ID_LEN)
        return -1;
    for (int i = 0; i < DECISION_ID_LEN; i++) {
        int c = toupper((unsigned char)in[i]);
        if (c == 'O')
            c = '0';
        else if (c == 'I' || c == 'L')
            c = '1';
        if (c == 0 || strchr(s_alphabet, c) == NULL)
            return -1;
        out[i] = (char)c;
    }
    out[DECISION_ID_LEN] = 0;
    return 0;
}

static s_node_t *s_find_id(const decisions_t *t, const char *canon)
{
    for (s_node_t *n = t->by_id[s_id_bucket(t, canon)]; n; n = n->next_id)
        if (strcmp(n->d.id, canon) == 0)
            return n;
    return NULL;
}

/* Whether d's value is only its fingerprint in hex: no text had reached the key when it was
 * made (a sensor sends a key's text once a minute, PROTOCOL.md 5.5). */
static bool s_value_is_fp(const decision_t *d)
{
    char hex[FP_HEX_SIZE];
    return strcmp(d->value, fp_hex(d->fp, hex)) == 0;
}

static s_node_t *s_find_identity(const decisions_t *t, const decision_t *d)
{
    for (s_node_t *n = t->by_key[s_key_bucket(t, d)]; n; n = n->next_key)
        if (s_same_identity(&n->d, d))
            return n;
    return NULL;
}

static void s_link(decisions_t *t, s_node_t *n)
{
    size_t bi = s_id_bucket(t, n->d.id), bk = s_key_bucket(t, &n->d);
    n->next_id = t->by_id[bi];
    t->by_id[bi] = n;
    n->next_key = t->by_key[bk];
    t->by_key[bk] = n;
}

static void s_rehash(decisions_t *t, size_t nbuckets)
{
    s_node_t **old = t->by_id;
    size_t old_n = t->nbuckets;
    t->nbuckets = nbuckets;
    t->by_id = xcalloc(nbuckets, sizeof(s_node_t *));
    xfree(t->by_key);
    t->by_key = xcalloc(nbuckets, sizeof(s_node_t *));
    for (size_t i = 0; i < old_n; i++) {
        s_node_t *n = old[i];
        while (n) {
            s_node_t *next = n->next_id;
            s_link(t, n);
            n = next;
        }
    }
    xfree(old);
}

static void s_unlink(decisions_t *t, s_node_t *n)
{
    s_node_t **pp = &t->by_id[s_id_bucket(t, n->d.id)];
    while (*pp != n)
        pp = &(*pp)->next_id;
    *pp = n->next_id;
    pp = &t->by_key[s_key_bucket(t, &n->d)];
    while (*pp != n)
        pp = &(*pp)->next_key;
    *pp = n->next_key;
}

static decision_change_t *s_log_at(const decisions_t *t, uint64_t seq)
{
    assert(seq > t->floor && seq <= t->seq);
    return &t->log[(t->log_head + (size_t)(seq - t->floor - 1)) % t->log_cap];
}

/* Records a change of d: bumps the sequence, stamps d, appends to the log. */
static void s_log(decisions_t *t, decision_kind_t kind, decision_why_t why, decision_t *d)
{
    size_t len = (size_t)(t->seq - t->floor);
    /* drop the oldest taken changes beyond the retention */
    while (len >= t->log_max && t->floor < t->taken) {
        t->floor++;
        t->log_head = (t->log_head + 1) % t->log_cap;
        len--;
    }
    if (len == t->log_cap) {
        /* everything in the ring is still pending: grow, unwrapping the ring */
        size_t cap = t->log_cap * 2;
        decision_change_t *ring = xmalloc(cap * sizeof(*ring));
        for (size_t i = 0; i < len; i++)
            ring[i] = t->log[(t->log_head + i) % t->log_cap];
        xfree(t->log);
        t->log = ring;
        t->log_cap = cap;
        t->log_head = 0;
    }
    t->seq++;
    d->seq = t->seq;
    d->epoch = t->epoch;
    d->mirrored = t->mirroring;
    decision_change_t *c = &t->log[(t->log_head + len) % t->log_cap];
    c->kind = kind;
    c->why = why;
    c->seq = t->seq;
    c->epoch = t->epoch;
    c->decision = *d;
}

int decisions_action_rank(bs_action_t a)
{
    switch (a) {
    case BS_ACTION_REJECT:
        return 3;
    case BS_ACTION_TEMPFAIL:
        return 2;
    case BS_ACTION_TAG:
        return 1;
    default:
        return 0;
    }
}

decisions_t *decisions_new(uint64_t epoch, uint64_t last_seq, size_t log_max)
{
    decisions_t *t = xcalloc(1, sizeof(*t));
    t->epoch = epoch;
    t->seq = t->floor = t->taken = last_seq;
    t->log_max = log_max ? log_max : S_LOG_MAX;
    t->next_expiry = INT64_MAX;
    t->log_cap = t->log_max < 16 ? 16 : t->log_max;
    t->log = xmalloc(t->log_cap * sizeof(*t->log));
    t->nbuckets = S_MIN_BUCKETS;
    t->by_id = xcalloc(t->nbuckets, sizeof(s_node_t *));
    t->by_key = xcalloc(t->nbuckets, sizeof(s_node_t *));
    return t;
}

void decisions_destroy(decisions_t **self_p)
{
    assert(self_p);
    decisions_t *t = *self_p;
    if (t == NULL)
        return;
    for (size_t i = 0; i < t->nbuckets; i++) {
        s_node_t *n = t->by_id[i];
        while (n) {
            s_node_t *next = n->next_id;
            xfree(n);
            n = next;
        }
    }
    xfree(t->by_id);
    xfree(t->by_key);
    xfree(t->log);
    xfree(t);
    *self_p = NULL;
}

uint64_t decisions_epoch(const decisions_t *self)
{
    return self->epoch;
}

uint64_t decisions_seq(const decisions_t *self)
{
    return self->seq;
}

uint64_t decisions_removals(const decisions_t *self)
{
    return self->removals;
}

uint64_t decisions_log_floor(const decisions_t *self)
{
    return self->floor;
}

size_t decisions_count(const decisions_t *self)
{
    return self->count;
}

size_t decisions_count_enforced(const decisions_t *self)
{
    return self->enforced;
}

static s_node_t *s_insert(decisions_t *t, const decision_t *d)
{
    if (t->count + 1 > t->nbuckets)
        s_rehash(t, t->nbuckets * 2);
    s_node_t *n = xcalloc(1, sizeof(*n));
    n->d = *d;
    s_link(t, n);
    t->count++;
    if (d->expires_ms < t->next_expiry)
        t->next_expiry = d->expires_ms; /* a stale value only gets earlier: still a bound */
    if (n->d.mode == BS_MODE_ENFORCE)
        t->enforced++;
    return n;
}

static void s_assign_id(decisions_t *t, decision_t *d)
{
    /* the creating change's seq is unique in the epoch; the epoch moves the start */
    uint64_t base = t->seq + 1 + fp_mix64(t->epoch);
    for (uint64_t i = 0;; i++) {
        s_encode_id(s_permute40(base + i * 0x10000001ULL), d->id);
        if (s_find_id(t, d->id) == NULL)
            return;
    }
}

decisions_result_t decisions_propose(decisions_t *self, const decision_t *d, int64_t extend_min_ms,
                                     int64_t now_ms, const decision_t **out_p)
{
    assert(d && d->scope != BS_SCOPE_UNKNOWN);
    assert(d->reach == BS_REACH_FLEET || (d->reach == BS_REACH_LOCAL && d->site[0]));
    assert(d->expires_ms > now_ms);
    assert(extend_min_ms >= 0);
    decision_t want = *d;
    if (want.reach == BS_REACH_FLEET)
        want.site[0] = 0;

    s_node_t *n = s_find_identity(self, &want);
    if (n) {
        if (out_p)
            *out_p = &n->d;
        /* a later expiry, a stronger action, or (an operator's) all mail: each is taken
         * by itself, so asking for a stronger block for less time still strengthens it */
        bool later = want.expires_ms >= n->d.expires_ms + extend_min_ms;
        bool stronger = decisions_action_rank(want.action) > decisions_action_rank(n->d.action);
        bool wider = want.origin == BS_ORIGIN_CLI && want.all_mail && !n->d.all_mail;
        if (!later && !stronger && !wider)
            return DECISIONS_UNCHANGED;
        if (later) {
            if (n->d.expires_ms <= self->next_expiry)
                self->next_stale = true;
            n->d.expires_ms = want.expires_ms;
            if (want.has_evidence) {
                n->d.evidence = want.evidence;
                n->d.has_evidence = true;
            }
            /* a value that was only the fingerprint takes the text an extension brings */
            if (want.value[0] && s_value_is_fp(&n->d) && !s_value_is_fp(&want))
                memcpy(n->d.value, want.value, sizeof(n->d.value));
        }
        if (stronger)
            n->d.action = want.action;
        if (want.origin == BS_ORIGIN_CLI) {
            n->d.origin = BS_ORIGIN_CLI;
            memcpy(n->d.origin_who, want.origin_who, sizeof(n->d.origin_who));
            memcpy(n->d.reason, want.reason, sizeof(n->d.reason));
            n->d.all_mail = n->d.all_mail || want.all_mail;
        }
        s_log(self, DECISION_UPSERT, DECISION_WHY_EXTENDED, &n->d);
        return DECISIONS_EXTENDED;
    }
    s_assign_id(self, &want);
    want.created_ms = now_ms;
    n = s_insert(self, &want);
    s_log(self, DECISION_UPSERT, DECISION_WHY_NEW, &n->d);
    if (out_p)
        *out_p = &n->d;
    return DECISIONS_CREATED;
}

static void s_remove_node(decisions_t *t, s_node_t *n, decision_why_t why)
{
    if (n->d.expires_ms <= t->next_expiry)
        t->next_stale = true;
    s_unlink(t, n);
    t->count--;
    t->removals++;
    if (n->d.mode == BS_MODE_ENFORCE)
        t->enforced--;
    s_log(t, DECISION_REMOVE, why, &n->d);
    xfree(n);
}

int decisions_remove(decisions_t *self, const char *id, decision_why_t why, int64_t now_ms)
{
    char canon[DECISION_ID_LEN + 1];
    if (s_normalise_id(id, canon) < 0)
        return -1;
    s_node_t *n = s_find_id(self, canon);
    if (n == NULL)
        return -1;
    s_remove_node(self, n, why);
    return 0;
}

/* Merges the peer's upsert u into n as an extension would; true when n changed. */
static bool s_merge(decisions_t *t, s_node_t *n, const decision_t *u)
{
    bool changed = false;
    if (u->expires_ms > n->d.expires_ms) {
        if (n->d.expires_ms <= t->next_expiry)
            t->next_stale = true;
        n->d.expires_ms = u->expires_ms;
        if (u->has_evidence) {
            n->d.evidence = u->evidence;
            n->d.has_evidence = true;
        }
        changed = true;
    }
    if (decisions_action_rank(u->action) > decisions_action_rank(n->d.action)) {
        n->d.action = u->action;
        changed = true;
    }
    if (u->all_mail && !n->d.all_mail) {
        n->d.all_mail = true;
        changed = true;
    }
    if (u->origin == BS_ORIGIN_CLI && n->d.origin != BS_ORIGIN_CLI) {
        n->d.origin = BS_ORIGIN_CLI;
        memcpy(n->d.origin_who, u->origin_who, sizeof(n->d.origin_who));
        memcpy(n->d.reason, u->reason, sizeof(n->d.reason));
        changed = true;
    }
    return changed;
}

/* Whether the log's last S_LOG_MAX changes hold an operator's removal (revoked,
 * allowlisted) of id: a crossing takes milliseconds, and a change_log of a million must
 * not make each new decision of the peer's a scan of it. */
static bool s_revoked_recently(const decisions_t *t, const char *id)
{
    uint64_t from = t->seq - t->floor > S_LOG_MAX ? t->seq - S_LOG_MAX + 1 : t->floor + 1;
    for (uint64_t s = from; s <= t->seq; s++) {
        const decision_change_t *c = s_log_at(t, s);
        if (c->kind == DECISION_REMOVE && c->why != DECISION_WHY_EXPIRED &&
            strcmp(c->decision.id, id) == 0)
            return true;
    }
    return false;
}

/* The peer's decision d and ours have one identity under two ids: both made while the
 * two aggregators were apart (each refuses to make a second decision on a key it holds
 * one for). Both sides keep the smaller id and merge the other into it, so that one
 * revocation later ends the block everywhere. Called with t->mirroring set. */
static decisions_mirror_t s_merge_split(decisions_t *t, s_node_t *ours, const decision_t *d)
{
    decision_t mine = ours->d;
    bool theirs_kept = strcmp(mine.id, d->id) > 0;
    s_node_t *kept = ours;
    if (theirs_kept) {
        /* ours goes (our change, for our sensors), theirs comes as the peer's */
        t->mirroring = false;
        s_remove_node(t, ours, DECISION_WHY_SUPERSEDED);
        t->mirroring = true;
        kept = s_insert(t, d);
        s_log(t, DECISION_UPSERT, DECISION_WHY_NEW, &kept->d);
    }
    /* what the other held beyond the one kept (a later expiry, a stronger action) is an
     * extension of ours, which the peer takes */
    t->mirroring = false;
    if (s_merge(t, kept, theirs_kept ? &mine : d))
        s_log(t, DECISION_UPSERT, DECISION_WHY_EXTENDED, &kept->d);
    t->mirroring = true;
    return DECISIONS_MIRROR_MERGED;
}

decisions_mirror_t decisions_mirror(decisions_t *self, decision_kind_t kind, decision_why_t why,
                                    const decision_t *d, int64_t now_ms)
{
    char canon[DECISION_ID_LEN + 1];
    if (s_normalise_id(d->id, canon) < 0 || strcmp(canon, d->id) != 0)
        return DECISIONS_MIRROR_REFUSED;
    s_node_t *n = s_find_id(self, canon);
    decisions_mirror_t rc = DECISIONS_MIRROR_SAME;
    self->mirroring = true;
    if (kind == DECISION_REMOVE) {
        /* an expiry the peer saw before it heard of an extension made here is not one */
        if (n && (why != DECISION_WHY_EXPIRED || n->d.expires_ms <= d->expires_ms)) {
            s_remove_node(self, n, why);
            rc = DECISIONS_MIRROR_APPLIED;
        }
    } else if (d->scope == BS_SCOPE_UNKNOWN ||
               (d->reach != BS_REACH_FLEET && !(d->reach == BS_REACH_LOCAL && d->site[0])) ||
               (d->reach == BS_REACH_FLEET && d->site[0])) {
        rc = DECISIONS_MIRROR_REFUSED;
    } else if (n) {
        if (!s_same_identity(&n->d, d))
            rc = DECISIONS_MIRROR_REFUSED;
        else if (s_merge(self, n, d)) {
            s_log(self, DECISION_UPSERT, DECISION_WHY_EXTENDED, &n->d);
            rc = DECISIONS_MIRROR_APPLIED;
        }
    } else if (d->expires_ms > now_ms && !s_revoked_recently(self, canon)) {
        /* (an upsert of what was revoked here: the peer had not heard of it yet, and will) */
        s_node_t *ours = s_find_identity(self, d);
        if (ours) {
            rc = s_merge_split(self, ours, d);
        } else {
            n = s_insert(self, d);
            s_log(self, DECISION_UPSERT, DECISION_WHY_NEW, &n->d);
            rc = DECISIONS_MIRROR_APPLIED;
        }
    }
    self->mirroring = false;
    return rc;
}

/* All active nodes, in an array the caller frees. */
static s_node_t **s_all(const decisions_t *t)
{
    s_node_t **all = xmalloc((t->count + 1) * sizeof(*all));
    size_t k = 0;
    for (size_t i = 0; i < t->nbuckets; i++)
        for (s_node_t *n = t->by_id[i]; n; n = n->next_id)
            all[k++] = n;
    assert(k == t->count);
    return all;
}

static int s_by_expiry(const void *a, const void *b)
{
    const decision_t *x = &(*(s_node_t *const *)a)->d, *y = &(*(s_node_t *const *)b)->d;
    if (x->expires_ms != y->expires_ms)
        return x->expires_ms < y->expires_ms ? -1 : 1;
    return x->seq < y->seq ? -1 : x->seq > y->seq;
}

static int s_by_seq(const void *a, const void *b)
{
    const decision_t *x = &(*(s_node_t *const *)a)->d, *y = &(*(s_node_t *const *)b)->d;
    return x->seq < y->seq ? -1 : x->seq > y->seq;
}

size_t decisions_expire(decisions_t *self, int64_t now_ms)
{
    if (self->count == 0 || decisions_next_expiry(self) > now_ms)
        return 0;
    s_node_t **all = s_all(self);
    size_t total = self->count, n = 0;
    qsort(all, total, sizeof(*all), s_by_expiry);
    for (size_t i = 0; i < total && all[i]->d.expires_ms <= now_ms; i++, n++)
        s_remove_node(self, all[i], DECISION_WHY_EXPIRED);
    xfree(all);
    return n;
}

int64_t decisions_next_expiry(decisions_t *self)
{
    /* the event loop asks on every turn: the table is scanned only after the earliest
     * decision went or was extended */
    if (!self->next_stale)
        return self->next_expiry;
    int64_t next = INT64_MAX;
    for (size_t i = 0; i < self->nbuckets; i++)
        for (s_node_t *n = self->by_id[i]; n; n = n->next_id)
            if (n->d.expires_ms < next)
                next = n->d.expires_ms;
    self->next_expiry = next;
    self->next_stale = false;
    return next;
}

const decision_t *decisions_find(const decisions_t *self, const char *id)
{
    char canon[DECISION_ID_LEN + 1];
    if (s_normalise_id(id, canon) < 0)
        return NULL;
    s_node_t *n = s_find_id(self, canon);
    return n ? &n->d : NULL;
}

const decision_change_t *decisions_last_change(const decisions_t *self, const char *id)
{
    char canon[DECISION_ID_LEN + 1];
    if (s_normalise_id(id, canon) < 0)
        return NULL;
    for (uint64_t s = self->seq; s > self->floor; s--) {
        const decision_change_t *c = s_log_at(self, s);
        if (strcmp(c->decision.id, canon) == 0)
            return c;
    }
    return NULL;
}

const decision_t *decisions_find_identity(const decisions_t *self, bs_scope_t scope, uint64_t fp,
                                          bs_reach_t reach, const char *site, bs_mode_t mode)
{
    decision_t probe;
    probe.scope = scope;
    probe.fp = fp;
    probe.reach = reach;
    probe.mode = mode;
    if (reach == BS_REACH_FLEET || site == NULL)
        probe.site[0] = 0;
    else
        decisions_strlcpy(probe.site, site, DECISION_NAME_MAX);
    s_node_t *n = s_find_identity(self, &probe);
    return n ? &n->d : NULL;
}

size_t decisions_find_key(const decisions_t *self, bs_scope_t scope, uint64_t fp,
                          const decision_t **out, size_t max)
{
    size_t k = 0;
    for (size_t i = 0; i < self->nbuckets; i++)
        for (s_node_t *n = self->by_id[i]; n; n = n->next_id)
            if (n->d.scope == scope && n->d.fp == fp) {
                if (k < max)
                    out[k] = &n->d;
                k++;
            }
    return k;
}

int decisions_foreach(const decisions_t *self, const char *site,
                      int (*cb)(const decision_t *d, void *arg), void *arg)
{
    s_node_t **all = s_all(self);
    qsort(all, self->count, sizeof(*all), s_by_seq);
    int rc = 0;
    for (size_t i = 0; i < self->count && rc == 0; i++) {
        const decision_t *d = &all[i]->d;
        if (site == NULL || d->reach == BS_REACH_FLEET || strcmp(d->site, site) == 0)
            rc = cb(d, arg);
    }
    xfree(all);
    return rc;
}

int decisions_changes_since(const decisions_t *self, uint64_t epoch, uint64_t since_seq,
                            int (*cb)(const decision_change_t *c, void *arg), void *arg)
{
    if (epoch != self->epoch || since_seq < self->floor || since_seq > self->seq)
        return -1;
    for (uint64_t s = since_seq + 1; s <= self->seq; s++) {
        int rc = cb(s_log_at(self, s), arg);
        if (rc)
            return rc;
    }
    return 0;
}

int decisions_take_change(decisions_t *self, decision_change_t *out)
{
    if (self->taken == self->seq)
        return 0;
    self->taken++;
    *out = *s_log_at(self, self->taken);
    return 1;
}

size_t decisions_pending(const decisions_t *self)
{
    return (size_t)(self->seq - self->taken);
}

int decisions_restore(decisions_t *self, const decision_t *d)
{
    char canon[DECISION_ID_LEN + 1];
    /* the id as the table writes it (canonical): the store keys the record by it, and a
     * removal deletes that key only */
    if (s_normalise_id(d->id, canon) < 0 || strcmp(canon, d->id) != 0 ||
        d->scope == BS_SCOPE_UNKNOWN)
        return -1;
    if (d->reach != BS_REACH_FLEET && !(d->reach == BS_REACH_LOCAL && d->site[0]))
        return -1;
    if (s_find_id(self, canon) || s_find_identity(self, d))
        return -1;
    decision_t copy = *d;
    memcpy(copy.id, canon, sizeof(copy.id));
    s_insert(self, &copy);
    return 0;
}

int decisions_log_restore(decisions_t *self, const decision_change_t *changes, size_t n)
{
    if (self->seq != self->floor || self->taken != self->seq)
        return -1;
    if (n > self->log_max) {
        changes += n - self->log_max;
        n = self->log_max;
    }
    if (n > self->seq)
        return -1;
    for (size_t i = 0; i < n; i++)
        if (changes[i].epoch != self->epoch || changes[i].seq != self->seq - n + 1 + i)
            return -1;
    assert(n <= self->log_cap);
    memcpy(self->log, changes, n * sizeof(*changes));
    self->log_head = 0;
    self->floor = self->seq - n;
    return 0;
}

const char *decisions_why_name(decision_why_t why)
{
    switch (why) {
    case DECISION_WHY_NEW:
        return "new";
    case DECISION_WHY_EXTENDED:
        return "extended";
    case DECISION_WHY_EXPIRED:
        return "expired";
    case DECISION_WHY_REVOKED:
        return "revoked";
    case DECISION_WHY_ALLOWLISTED:
        return "allowlisted";
    case DECISION_WHY_SUPERSEDED:
        return "superseded";
    }
    return "unknown";
}

int decisions_why_parse(const char *name)
{
    for (int w = DECISION_WHY_NEW; name && w <= DECISION_WHY_SUPERSEDED; w++)
        if (strcmp(name, decisions_why_name((decision_why_t)w)) == 0)
            return w;
    return -1;
}
