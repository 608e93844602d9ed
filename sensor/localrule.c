/*
 * localrule - the seed's per-site rule; see localrule.h.
 *
 * Each key keeps a ring of its last threshold event times. The key fires when
 * the ring is full and its oldest time is within the period: exactly "at
 * least threshold events in the last period", with memory threshold * 8
 * bytes per key.
 */
#include "localrule.h"

#include "xalloc.h"

#include <string.h>

typedef struct s_key {
    uint64_t fp;        /* the subject key's fingerprint */
    uint32_t n;         /* times held (<= threshold) */
    uint32_t head;      /* index of the oldest time when full, else of the next slot */
    int64_t last_ms;    /* newest time, for eviction */
    struct s_key *next; /* bucket chain */
    int64_t times[];    /* ring of up to threshold times */
} s_key_t;

struct localrule {
    uint32_t threshold; /* x */
    int64_t period_ms;  /* the window */
    size_t max_keys;    /* bound on keys */
    size_t nkeys;       /* keys held */
    size_t nbuckets;    /* power of two >= max_keys / 2 */
    s_key_t **buckets;  /* hash table by fp */
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

/* Forgets idle keys; if none was idle, the least recently seen one. */
static void s_evict(localrule_t *self, int64_t now_ms)
{
    s_key_t **oldest = NULL;
    size_t freed = 0;
    for (size_t i = 0; i < self->nbuckets; i++) {
        s_key_t **pp = &self->buckets[i];
        while (*pp) {
            s_key_t *k = *pp;
            if (k->last_ms <= now_ms - self->period_ms) {
                *pp = k->next;
                xfree(k);
                self->nkeys--;
                freed++;
                continue;
            }
            if (!oldest || k->last_ms < (*oldest)->last_ms)
                oldest = pp;
            pp = &k->next;
        }
    }
    if (freed == 0 && oldest) {
        s_key_t *k = *oldest;
        *oldest = k->next;
        xfree(k);
        self->nkeys--;
    }
}

bool localrule_note(localrule_t *self, uint64_t fp, int64_t now_ms)
{
    s_key_t *k = s_find(self, fp);
    if (!k) {
        if (self->nkeys >= self->max_keys)
            s_evict(self, now_ms);
        k = xcalloc(1, sizeof(*k) + self->threshold * sizeof(k->times[0]));
        k->fp = fp;
        size_t b = s_bucket(self, fp);
        k->next = self->buckets[b];
        self->buckets[b] = k;
        self->nkeys++;
    }
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
