/*
 * localrule - the seed's per-site rule; see localrule.h.
 *
 * Each key keeps a ring of its last threshold event times. The key fires when
 * the ring is full and its oldest time is within the period: exactly "at
 * least threshold events in the last period", with memory threshold * 8
 * bytes per key.
 *
 * Keys are also on a list in the order they were last noted, so each note
 * forgets a few keys idle for a period from its head (LR_EXPIRE_MAX a call):
 * the table holds about the keys of the last period, instead of filling up to
 * max_keys with keys seen once days ago (20 MB with the defaults) and then
 * walking all of them in a milter call to free the idle ones at once. A full
 * table forgets its head, the least recently noted key. Milter threads may
 * note a slightly older time after a newer one; such a key sits a little
 * early in the list and is forgotten when it reaches the head idle.
 */
#include "localrule.h"

#include "xalloc.h"

#include <string.h>

/* Idle keys forgotten by one note at most: bounds the work of a milter call. */
#define LR_EXPIRE_MAX 64

typedef struct s_key {
    uint64_t fp;            /* the subject key's fingerprint */
    uint32_t n;             /* times held (<= threshold) */
    uint32_t head;          /* index of the oldest time when full, else of the next slot */
    int64_t last_ms;        /* newest time, for expiry */
    struct s_key *next;     /* bucket chain */
    struct s_key *prev_lru; /* noted before it, NULL at the head */
    struct s_key *next_lru; /* noted after it, NULL at the tail */
    int64_t times[];        /* ring of up to threshold times */
} s_key_t;

struct localrule {
    uint32_t threshold; /* x */
    int64_t period_ms;  /* the window */
    size_t max_keys;    /* bound on keys */
    size_t nkeys;       /* keys held */
    size_t nbuckets;    /* power of two >= max_keys / 2 */
    s_key_t **buckets;  /* hash table by fp */
    s_key_t *lru_head;  /* least recently noted key */
    s_key_t *lru_tail;  /* most recently noted key */
};

localrule_t *localrule_new(uint32_t threshold, int64_t period_ms, size_t max_keys)
{
    localrule_t *self = xcalloc(1, sizeof(*self));
    self->threshold = threshold ? threshold : 1;
    self->period_ms = period_ms;
    self->max_keys = max_keys ? max_keys : 1;
    self->nbuckets = 16;
    while (self->nbuckets < self->max_keys / 2)
        self->nbuckets *= 2;
    self->buckets = xcalloc(self->nbuckets, sizeof(*self->buckets));
    return self;
}

void localrule_destroy(localrule_t **self_p)
{
    if (!self_p || !*self_p)
        return;
    localrule_t *self = *self_p;
    for (size_t i = 0; i < self->nbuckets; i++) {
        s_key_t *k = self->buckets[i];
        while (k) {
            s_key_t *next = k->next;
            xfree(k);
            k = next;
        }
    }
    xfree(self->buckets);
    xfree(self);
    *self_p = NULL;
}

static size_t s_bucket(const localrule_t *self, uint64_t fp)
{
    uint64_t h = fp * 0x9e3779b97f4a7c15ULL;
    return (size_t)(h >> 32) & (self->nbuckets - 1);
}

static s_key_t *s_find(const localrule_t *self, uint64_t fp)
{
    for (s_key_t *k = self->buckets[s_bucket(self, fp)]; k; k = k->next)
        if (k->fp == fp)
            return k;
    return NULL;
}

static void s_lru_unlink(localrule_t *self, s_key_t *k)
{
    if (k->prev_lru)
        k->prev_lru->next_lru = k->next_lru;
    else
        self->lru_head = k->next_lru;
    if (k->next_lru)
        k->next_lru->prev_lru = k->prev_lru;
    else
        self->lru_tail = k->prev_lru;
    k->prev_lru = k->next_lru = NULL;
}

static void s_lru_append(localrule_t *self, s_key_t *k)
{
    k->prev_lru = self->lru_tail;
    k->next_lru = NULL;
    if (self->lru_tail)
        self->lru_tail->next_lru = k;
    else
        self->lru_head = k;
    self->lru_tail = k;
}

/* Takes k out of its bucket and the list, and frees it. */
static void s_forget(localrule_t *self, s_key_t *k)
{
    s_key_t **pp = &self->buckets[s_bucket(self, k->fp)];
    while (*pp != k)
        pp = &(*pp)->next;
    *pp = k->next;
    s_lru_unlink(self, k);
    xfree(k);
    self->nkeys--;
}

/* Forgets up to LR_EXPIRE_MAX keys idle for a period, from the head of the list. */
static void s_expire(localrule_t *self, int64_t now_ms)
{
    for (int i = 0;
         i < LR_EXPIRE_MAX && self->lru_head && self->lru_head->last_ms <= now_ms - self->period_ms;
         i++)
        s_forget(self, self->lru_head);
}

bool localrule_note(localrule_t *self, uint64_t fp, int64_t now_ms)
{
    s_expire(self, now_ms);
    s_key_t *k = s_find(self, fp);
    if (!k) {
        if (self->nkeys >= self->max_keys)
            s_forget(self, self->lru_head);
        k = xcalloc(1, sizeof(*k) + self->threshold * sizeof(k->times[0]));
        k->fp = fp;
        size_t b = s_bucket(self, fp);
        k->next = self->buckets[b];
        self->buckets[b] = k;
        self->nkeys++;
    } else {
        s_lru_unlink(self, k);
    }
    s_lru_append(self, k);
    if (k->n < self->threshold) {
        k->times[(k->head + k->n) % self->threshold] = now_ms;
        k->n++;
    } else {
        /* full: overwrite the oldest, which moves head to the next oldest */
        k->times[k->head] = now_ms;
        k->head = (k->head + 1) % self->threshold;
    }
    if (now_ms > k->last_ms)
        k->last_ms = now_ms;
    return localrule_count(self, fp, now_ms) >= self->threshold;
}

uint32_t localrule_count(const localrule_t *self, uint64_t fp, int64_t now_ms)
{
    const s_key_t *k = s_find(self, fp);
    if (!k)
        return 0;
    uint32_t c = 0;
    for (uint32_t i = 0; i < k->n; i++) {
        int64_t t = k->times[(k->head + i) % self->threshold];
        if (t > now_ms - self->period_ms && t <= now_ms)
            c++;
    }
    return c;
}

size_t localrule_keys(const localrule_t *self)
{
    return self->nkeys;
}

void localrule_decision_id(uint64_t fp, char out[9])
{
    /* Crockford-style alphabet: no I, L, O, U to misread over the phone */
    static const char a[] = "0123456789ABCDEFGHJKMNPQRSTVWXYZ";
    out[0] = 'L';
    for (int i = 1; i < 8; i++) {
        out[i] = a[fp & 31];
        fp >>= 5;
    }
    out[8] = '\0';
}
