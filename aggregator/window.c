/*
 * window - sliding-window event counts per key, compact enough for millions
 *
 * See window.h for the model. Layout of the table: cap slots of `stride`
 * bytes, each an entry_t header followed by nb uint16 bucket counters. A slot
 * with scope 0 is empty. The slot of a key is found by linear probing from
 * home = (hash * cap) >> 64, so cap need not be a power of two and the table
 * grows by 1.5x instead of doubling (memory is the hard limit here).
 * Deletion shifts later entries of the probe run back, so there are no
 * tombstones and lookups never slow down with churn.
 *
 * Entries are either a key's total (site == WINDOW_SITE_ALL) or one site's
 * series of a multi-site key (site == its index, or WINDOW_SITE_OTHER).
 * The total's `link` holds the sole site of a single-site key or, once the key
 * is multi-site (S_MULTI), the first site of the chain of series; each
 * series' `link` names the next site. Links are site indexes, not pointers,
 * because entries move when others are deleted or the table grows.
 *
 * Bucket numbers are floor(time / bucket_ms) kept as uint32; with
 * bucket_ms >= 1000 they do not wrap before the year 2106, and differences
 * are taken modulo 2^32 anyway.
 */
#include <assert.h>
#include <stdbool.h>
#include <stddef.h>
#include <string.h>

#include "bigmem.h"
#include "fp.h"
#include "msg.h"
#include "window.h"
#include "xalloc.h"

/* Entry flags. */
#define S_MULTI 0x01u /* total of a key seen by more than one site: has a chain */
#define S_DIRTY 0x02u /* changed since window_dirty_take() last returned it */

/* No next site in a chain. */
#define S_LINK_NONE 0xFFFFu

/* Bucket counters saturate here. */
#define S_COUNT_MAX 0xFFFFu

/* Text slab: slots of WINDOW_TEXT_MAX + 1 bytes, in chunks. */
/* Text slabs: S_TEXT_CLASSES slot sizes (16, 32, 64 bytes: most keys are short, an
 * address or a few words), each in chunks of S_TEXT_CHUNK slots. A text handle is
 * (class << S_TEXT_CLASS_SHIFT) | (slot + 1). */
#define S_TEXT_CLASSES     3
#define S_TEXT_CHUNK       1024u
#define S_TEXT_CLASS_SHIFT 28
#define S_TEXT_SLOT_MASK   ((1u << S_TEXT_CLASS_SHIFT) - 1)
#define S_MIN_CAP          64u
#define S_BLOB_MAGIC       'W'
#define S_BLOB_VER         1u

typedef struct {
    uint64_t fp;        /* key fingerprint */
    int64_t first_ms;   /* first event since the series (re)started */
    int64_t last_ms;    /* latest event */
    uint32_t head;      /* bucket number of the newest bucket in the ring */
    uint32_t text;      /* text slab slot + 1; 0: none (totals only) */
    uint32_t ring;      /* sum of buckets[]: the events in the whole ring, kept as they change */
    uint16_t site;      /* WINDOW_SITE_ALL for a key's total, else the series' site */
    uint16_t link;      /* total: sole site or chain start; series: next site */
    uint8_t scope;      /* bs_scope_t; 0 marks an empty slot */
    uint8_t tally;      /* event filter that counted it */
    uint8_t nsites;     /* total: exactly tracked sites in the chain (not "other") */
    uint8_t flags;      /* S_MULTI, S_DIRTY */
    uint16_t buckets[]; /* nb counters, bucket b at index b % nb */
} entry_t;

/* A growing byte buffer (the export encoding). */
typedef struct {
    uint8_t *p;   /* bytes */
    size_t len;   /* used */
    size_t alloc; /* allocated */
} s_buf_t;

/* One key being exported by window_dirty_export(): its entries, found once. */
typedef struct {
    window_key_t key;                            /* the key */
    uint64_t seeded;                             /* s_seeded() of its fingerprint */
    uint64_t h;                                  /* hash of the entry looked up next */
    uint32_t at;                                 /* its slot hint (s_find_hinted()) */
    const entry_t *total;                        /* its total, NULL if gone (expired) */
    uint16_t next;                               /* next chain site still to find */
    uint8_t ns;                                  /* series found */
    const entry_t *series[WINDOW_SITES_MAX + 1]; /* their entries */
} s_export_t;

/* One text slab: slots of one size. */
typedef struct {
    uint8_t **chunks; /* chunks of S_TEXT_CHUNK slots */
    size_t nchunks;   /* chunks allocated */
    uint32_t fresh;   /* next never-used slot */
    uint32_t free;    /* free list head: slot + 1, 0 empty */
} s_slab_t;

struct window {
    int64_t bucket_ms;             /* resolution */
    int64_t span_ms;               /* nb * bucket_ms */
    uint32_t nb;                   /* buckets per ring */
    bool now_known;                /* window_set_now() was called */
    uint32_t now_b;                /* its bucket */
    uint32_t future_b;             /* buckets an event may lie ahead of it */
    int64_t last_lo, last_hi;      /* s_bucket_at(): the times of the bucket asked for last, */
    uint32_t last_b, last_bi;      /* its number and its ring index (empty: lo > hi) */
    size_t stride;                 /* bytes per slot */
    uint8_t *slots;                /* cap slots */
    uint8_t *tags;                 /* per slot: 0 empty, else 0x80 | top 7 bits of its hash, so a
                                      probe reads 64 slots per cache line, not one entry */
    size_t cap;                    /* slots allocated */
    size_t used;                   /* slots in use */
    size_t keys;                   /* of which totals */
    size_t max_entries;            /* cap on used, 0 = none */
    int populate;                  /* back each table with memory when it is made */
    uint32_t text_min;             /* events before text is kept */
    uint64_t seed;                 /* hash seed */
    size_t sweep_pos;              /* where window_sweep() continues */
    char **site_names;             /* interned names by index */
    uint8_t *site_lens;            /* their lengths (at most WINDOW_SITE_NAME_MAX) */
    size_t nsites;                 /* names used */
    size_t site_alloc;             /* names allocated */
    uint32_t *site_index;          /* open-addressing index: site + 1, 0 empty */
    size_t site_index_cap;         /* power of two */
    s_slab_t text[S_TEXT_CLASSES]; /* display texts by slot size */
    int track_dirty;               /* remember changed keys */
    window_key_t *dirty;           /* changed keys not yet taken: a FIFO, dirty_head .. ndirty */
    size_t dirty_head;             /* next to take */
    size_t ndirty;                 /* end of the queue */
    size_t dirty_alloc;            /* allocated */
    s_export_t *xp;                /* window_dirty_export() scratch, one per key taken */
    size_t xp_alloc;               /* allocated */
    window_copy_t *xcopy;          /* window_dirty_export()'s copy, encoded at once */
    uint64_t serial;               /* which window this is, for copies (s_copy_sync) */
    window_counters_t counters;    /* metrics */
};

/* A key in a window_copy_t's records: this head, then its text (padded to 8 bytes),
 * then its total and ns series (chain order), stride bytes each, as in the table. */
typedef struct {
    window_key_t key; /* the key */
    uint32_t size;    /* bytes of the record, this head included */
    uint8_t ns;       /* series */
    uint8_t gone;     /* 1: the key expired (no entries follow) */
    uint8_t text_len; /* display text bytes */
} s_copy_head_t;

struct window_copy {
    uint64_t owner;    /* serial of the window whose shape and site names it holds */
    int64_t bucket_ms; /* that window's resolution */
    uint32_t nb;       /* its buckets per ring */
    size_t stride;     /* its bytes per entry */
    char **names;      /* its site names, copied: sites are only ever added */
    uint8_t *lens;     /* their lengths */
    size_t nnames;     /* names copied */
    size_t names_alloc;
    s_buf_t rec; /* the keys' records */
    size_t keys; /* how many */
    s_buf_t enc; /* window_copy_encode()'s encoding buffer */
};

/* ---------------------------------------------------------------- helpers */

static uint64_t s_window_serial(void);

/* The hash of an entry is s_hash_of(s_seeded(fp), ...): the first half depends on the
 * fingerprint alone, so the entries of one key (its total and its series) share it. A
 * series' hash is its total's plus a step per site (S_SERIES_STEP), so its home lies a
 * slot or so per 2^20 slots of capacity past the total's: a key's tags are mostly in one
 * cache line, which the lookup of its total has brought in (a tenth less CPU for counting
 * and for the flush's copy in bench_ingest). The step is the same at every capacity, so a
 * window_loc_t's hashes stay valid when the table grows. The tags (low bits) differ. */
static uint64_t s_seeded(const window_t *w, uint64_t fp)
{
    return fp_mix64(fp ^ w->seed);
}

#define S_SERIES_STEP ((UINT64_C(1) << 44) | UINT64_C(0x2B))

static uint64_t s_hash_of(uint64_t seeded, uint8_t scope, uint8_t tally, uint16_t site)
{
    uint64_t h = fp_mix64(seeded ^ (((uint64_t)scope << 56) | ((uint64_t)tally << 48)));
    return site == WINDOW_SITE_ALL ? h : h + ((uint64_t)site + 1) * S_SERIES_STEP;
}

static uint64_t s_hash(const window_t *w, uint8_t scope, uint8_t tally, uint16_t site, uint64_t fp)
{
    return s_hash_of(s_seeded(w, fp), scope, tally, site);
}

static size_t s_home(const window_t *w, uint64_t h)
{
    return (size_t)(((unsigned __int128)h * w->cap) >> 64);
}

static entry_t *s_slot(const window_t *w, size_t i)
{
    return (entry_t *)(w->slots + i * w->stride);
}

static size_t s_next(const window_t *w, size_t i)
{
    return i + 1 == w->cap ? 0 : i + 1;
}

static int64_t s_bucket(const window_t *w, int64_t t)
{
    int64_t b = t / w->bucket_ms;
    if (t % w->bucket_ms < 0)
        b--;
    return b;
}

/* s_bucket() as the uint32 bucket number it is kept as, and its ring index in *bi_p:
 * without a division for a time in the bucket asked for last, as an event's nearly
 * always is. */
static uint32_t s_bucket_at(window_t *w, int64_t t, uint32_t *bi_p)
{
    if (t < w->last_lo || t >= w->last_hi) {
        int64_t b = s_bucket(w, t);
        w->last_b = (uint32_t)b;
        w->last_bi = w->last_b % w->nb;
        w->last_lo = b * w->bucket_ms;
        /* no bucket remembered where its end does not fit */
        w->last_hi =
            w->last_lo <= INT64_MAX - w->bucket_ms ? w->last_lo + w->bucket_ms : w->last_lo;
    }
    *bi_p = w->last_bi;
    return w->last_b;
}

/* How many buckets head lies behind cur (negative: ahead). */
static int32_t s_age(uint32_t cur, uint32_t head)
{
    return (int32_t)(cur - head);
}

static bool s_idle(const window_t *w, const entry_t *e, uint32_t cur)
{
    return s_age(cur, e->head) >= (int32_t)w->nb;
}

/* A key counted under a clock that has since stepped back: its newest bucket lies further
 * ahead of now than any event time accepted now can (window_set_now). Nothing it holds is
 * in anyone's window any more; without this it would refuse every event as older than its
 * ring until the clock caught up. */
static bool s_from_the_future(const window_t *w, const entry_t *e)
{
    return w->now_known && s_age(e->head, w->now_b) > (int32_t)w->future_b;
}

static uint8_t s_tag(uint64_t h)
{
    return (uint8_t)(0x80u | (h & 0x7Fu));
}

/* The slot of the entry with hash h (s_hash() of the other arguments), or SIZE_MAX. */
static size_t s_find_idx_h(const window_t *w, uint8_t scope, uint8_t tally, uint16_t site,
                           uint64_t fp, uint64_t h)
{
    if (w->used == 0)
        return SIZE_MAX;
    uint8_t tag = s_tag(h);
    size_t i = s_home(w, h);
    for (;;) {
        uint8_t t = w->tags[i];
        if (t == 0)
            return SIZE_MAX;
        if (t == tag) {
            const entry_t *e = s_slot(w, i);
            if (e->fp == fp && e->scope == scope && e->tally == tally && e->site == site)
                return i;
        }
        i = s_next(w, i);
    }
}

static size_t s_find_idx(const window_t *w, uint8_t scope, uint8_t tally, uint16_t site,
                         uint64_t fp)
{
    return s_find_idx_h(w, scope, tally, site, fp, s_hash(w, scope, tally, site, fp));
}

/* Prefetch helpers are always inlined: GCC's IPA analysis takes a static function whose
 * only effect is __builtin_prefetch for a pure one and deletes every call to it (gcc 12
 * emitted not one prefetch instruction for this file before). */
#define S_PREFETCHER static inline __attribute__((always_inline)) void

/* Asks for the tag bytes of the key with hash h: the first stage of a lookup ahead of time. */
S_PREFETCHER s_ask_tags(const window_t *w, uint64_t h)
{
    __builtin_prefetch(w->tags + s_home(w, h), 0, 3);
}

/* Second stage, once the tags are in cache: asks for the whole slot the tags point at (the
 * first slot of the probe run with the key's tag), not merely the home slot a probe starts
 * from, so the comparison and the counters that follow find it in cache. Returns that
 * slot, or SIZE_MAX when the probe run ends first (the key is absent). */
static inline __attribute__((always_inline)) size_t s_ask_slot(const window_t *w, uint64_t h)
{
    size_t i = s_home(w, h);
    uint8_t tag = s_tag(h);
    for (unsigned n = 0; n < 32; n++) {
        uint8_t t = w->tags[i];
        if (t == 0)
            return SIZE_MAX;
        if (t == tag)
            break;
        i = s_next(w, i);
    }
    const uint8_t *p = w->slots + i * w->stride;
    __builtin_prefetch(p, 1, 3);
    __builtin_prefetch(p + 64, 1, 3);
    __builtin_prefetch(p + w->stride - 1, 1, 3);
    return i;
}

void window_locate(const window_t *self, const window_key_t *key, unsigned site, window_loc_t *loc)
{
    uint64_t seeded = s_seeded(self, key->fp);
    loc->key = *key;
    loc->total = s_hash_of(seeded, key->scope, key->tally, WINDOW_SITE_ALL);
    loc->site = site < WINDOW_SITE_LIMIT ? (uint16_t)site : WINDOW_SITE_ALL;
    loc->series = loc->site == WINDOW_SITE_ALL
                      ? loc->total
                      : s_hash_of(seeded, key->scope, key->tally, loc->site);
    loc->total_at = UINT32_MAX;
    loc->series_at = UINT32_MAX;
}

void window_prefetch_tags(const window_t *self, const window_loc_t *loc)
{
    if (self->cap == 0)
        return;
    s_ask_tags(self, loc->total);
    if (loc->site != WINDOW_SITE_ALL)
        s_ask_tags(self, loc->series);
}

/* A slot index as a hint (UINT32_MAX: none; a table that large does without hints). */
static uint32_t s_hint(size_t i)
{
    return i < UINT32_MAX ? (uint32_t)i : UINT32_MAX;
}

void window_prefetch(const window_t *self, window_loc_t *loc)
{
    if (self->cap == 0)
        return;
    loc->total_at = s_hint(s_ask_slot(self, loc->total));
    if (loc->site != WINDOW_SITE_ALL)
        loc->series_at = s_hint(s_ask_slot(self, loc->series));
}

static entry_t *s_find(const window_t *w, const window_key_t *k, uint16_t site)
{
    size_t i = s_find_idx(w, k->scope, k->tally, site, k->fp);
    return i == SIZE_MAX ? NULL : s_slot(w, i);
}

/* s_find() with the hash already known. */
static entry_t *s_find_h(const window_t *w, const window_key_t *k, uint16_t site, uint64_t h)
{
    size_t i = s_find_idx_h(w, k->scope, k->tally, site, k->fp, h);
    return i == SIZE_MAX ? NULL : s_slot(w, i);
}

/* The entry of k at site in slot hint (where window_prefetch() found its tag), or NULL when
 * the hint no longer holds (the table changed since) or there is none. */
static entry_t *s_at_hint(const window_t *w, const window_key_t *k, uint16_t site, uint32_t hint)
{
    if (hint >= w->cap || w->tags[hint] == 0)
        return NULL;
    entry_t *e = s_slot(w, hint);
    if (e->fp == k->fp && e->scope == k->scope && e->tally == k->tally && e->site == site)
        return e;
    return NULL;
}

/* s_find_h() that first tries the slot hint: a stale one costs a probe. */
static entry_t *s_find_hinted(const window_t *w, const window_key_t *k, uint16_t site, uint64_t h,
                              uint32_t hint)
{
    entry_t *e = s_at_hint(w, k, site, hint);
    return e ? e : s_find_h(w, k, site, h);
}

uint32_t window_loc_ring(const window_t *self, const window_loc_t *loc)
{
    const entry_t *e = s_at_hint(self, &loc->key, WINDOW_SITE_ALL, loc->total_at);
    return e ? e->ring : 0;
}

static void s_place(window_t *w, const entry_t *src)
{
    uint64_t h = s_hash(w, src->scope, src->tally, src->site, src->fp);
    size_t i = s_home(w, h);
    while (w->tags[i] != 0)
        i = s_next(w, i);
    memcpy(s_slot(w, i), src, w->stride);
    w->tags[i] = s_tag(h);
}

/* Allocates an empty table of cap slots, backed at once when the window was made so. */
static void s_alloc_table(window_t *w, size_t cap)
{
    w->slots = bigmem_calloc(cap, w->stride);
    w->tags = bigmem_calloc(cap, 1);
    w->cap = cap;
    if (w->populate &&
        (bigmem_populate(w->slots, cap * w->stride) < 0 || bigmem_populate(w->tags, cap) < 0))
        msg_warn("window: cannot back the %zu MB table now: %m; its pages are taken as keys "
                 "arrive",
                 (cap * (w->stride + 1)) >> 20);
}

static void s_grow(window_t *w, size_t want)
{
    size_t old_cap = w->cap;
    uint8_t *old = w->slots;
    bigmem_free(w->tags, old_cap);
    size_t cap = old_cap + old_cap / 2;
    if (cap < want)
        cap = want;
    if (cap < S_MIN_CAP)
        cap = S_MIN_CAP;
    s_alloc_table(w, cap);
    w->sweep_pos = 0;
    for (size_t i = 0; i < old_cap; i++) {
        const entry_t *e = (const entry_t *)(old + i * w->stride);
        if (e->scope != 0)
            s_place(w, e);
    }
    bigmem_free(old, old_cap * w->stride);
}

/* Makes room for extra more entries without passing 80% load. */
static inline void s_reserve(window_t *w, size_t extra)
{
    size_t need = w->used + extra;
    if (need * 5 > w->cap * 4)
        s_grow(w, need * 5 / 4 + 1);
}

/* Inserts a zeroed entry for a key known to be absent; NULL when max_entries is hit.
 * The caller reserved room, so no existing entry moves. */
static entry_t *s_insert(window_t *w, const window_key_t *k, uint16_t site)
{
    if (w->max_entries && w->used >= w->max_entries) {
        w->counters.refused_full++;
        return NULL;
    }
    assert(w->used + 1 < w->cap);
    uint64_t h = s_hash(w, k->scope, k->tally, site, k->fp);
    size_t i = s_home(w, h);
    while (w->tags[i] != 0)
        i = s_next(w, i);
    w->tags[i] = s_tag(h);
    entry_t *e = s_slot(w, i);
    memset(e, 0, w->stride);
    e->fp = k->fp;
    e->scope = k->scope;
    e->tally = k->tally;
    e->site = site;
    e->link = S_LINK_NONE;
    w->used++;
    return e;
}

/* Backward-shift deletion: entries later in the probe run that may live earlier move up. */
static void s_delete_idx(window_t *w, size_t i)
{
    size_t j = i;
    for (;;) {
        j = s_next(w, j);
        if (w->tags[j] == 0)
            break;
        entry_t *ej = s_slot(w, j);
        size_t k = s_home(w, s_hash(w, ej->scope, ej->tally, ej->site, ej->fp));
        bool stays = i <= j ? (k > i && k <= j) : (k > i || k <= j);
        if (!stays) {
            memcpy(s_slot(w, i), ej, w->stride);
            w->tags[i] = w->tags[j];
            i = j;
        }
    }
    memset(s_slot(w, i), 0, w->stride);
    w->tags[i] = 0;
    w->used--;
}

static void s_reset_series(window_t *w, entry_t *e, uint32_t b, int64_t t)
{
    memset(e->buckets, 0, w->nb * sizeof(uint16_t));
    e->ring = 0;
    e->head = b;
    e->first_ms = t;
    e->last_ms = t;
}

/* Moves e's ring on to bucket b when b is later than its head (the buckets it passes are
 * emptied). */
static inline void s_advance(window_t *w, entry_t *e, uint32_t b)
{
    int32_t d = s_age(b, e->head);
    if (d > 0) {
        if (d >= (int32_t)w->nb) {
            memset(e->buckets, 0, w->nb * sizeof(uint16_t));
            e->ring = 0;
        } else {
            for (int32_t k = 1; k <= d; k++) {
                uint16_t *old = &e->buckets[(e->head + (uint32_t)k) % w->nb];
                e->ring -= *old;
                *old = 0;
            }
        }
        e->head = b;
    }
}

/* Counts an event at time t in bucket b (ring index bi = b % nb) of e. */
static inline void s_bump(window_t *w, entry_t *e, uint32_t b, uint32_t bi, int64_t t)
{
    s_advance(w, e, b);
    uint16_t *c = &e->buckets[bi];
    if (*c < S_COUNT_MAX) {
        (*c)++;
        e->ring++;
    }
    if (t < e->first_ms)
        e->first_ms = t;
    if (t > e->last_ms)
        e->last_ms = t;
}

/* Ring index of the bucket k (< nb) steps before e's head: bucket b is counted at
 * index b mod nb, so this is (head - k) mod nb, taken without letting head - k wrap
 * below zero. Walking back from s_ring_at(w, e, 0) one step at a time with
 * s_ring_prev() gives the same indexes without a division per step. */
static uint32_t s_ring_at(const window_t *w, const entry_t *e, uint32_t k)
{
    assert(k < w->nb);
    uint32_t h0 = e->head % w->nb;
    return h0 >= k ? h0 - k : h0 + w->nb - k;
}

static uint32_t s_ring_prev(const window_t *w, uint32_t idx)
{
    return idx ? idx - 1 : w->nb - 1;
}

/* Sum of the buckets of e in the n buckets ending at cur; *oldest_p (if not NULL) gets
 * the bucket number of the oldest non-zero one. */
static uint32_t s_sum(const window_t *w, const entry_t *e, uint32_t cur, uint32_t n,
                      int64_t *oldest_p)
{
    int64_t lim = (int64_t)n - s_age(cur, e->head); /* buckets k with d0 + k < n */
    if (lim > (int64_t)w->nb)
        lim = w->nb;
    uint32_t sum = 0;
    uint32_t idx = s_ring_at(w, e, 0);
    for (int64_t k = 0; k < lim; k++) {
        uint16_t c = e->buckets[idx];
        if (c) {
            sum += c;
            if (oldest_p)
                *oldest_p = (int64_t)(e->head - (uint32_t)k);
        }
        idx = s_ring_prev(w, idx);
    }
    return sum;
}

static uint32_t s_buckets_for(const window_t *w, int64_t window_ms)
{
    assert(window_ms > 0);
    int64_t n = (window_ms + w->bucket_ms - 1) / w->bucket_ms;
    return n > (int64_t)w->nb ? w->nb : (uint32_t)n;
}

/* ------------------------------------------------------------------ texts */

static size_t s_text_slot_size(unsigned cls)
{
    return (size_t)16 << cls;
}

static char *s_text_at(const window_t *w, unsigned cls, uint32_t slot)
{
    return (char *)w->text[cls].chunks[slot / S_TEXT_CHUNK] +
           (size_t)(slot % S_TEXT_CHUNK) * s_text_slot_size(cls);
}

static uint32_t s_text_put(window_t *w, const char *text, size_t len)
{
    const char *nul = memchr(text, 0, len);
    if (nul)
        len = (size_t)(nul - text);
    if (len > WINDOW_TEXT_MAX)
        len = WINDOW_TEXT_MAX;
    unsigned cls = 0;
    while (s_text_slot_size(cls) < len + 1)
        cls++;
    s_slab_t *sl = &w->text[cls];
    uint32_t slot;
    if (sl->free) {
        slot = sl->free - 1;
        memcpy(&sl->free, s_text_at(w, cls, slot), sizeof(uint32_t));
    } else {
        slot = sl->fresh++;
        assert(slot < S_TEXT_SLOT_MASK);
        if (slot / S_TEXT_CHUNK >= sl->nchunks) {
            sl->chunks = xrealloc(sl->chunks, (sl->nchunks + 1) * sizeof(*sl->chunks));
            sl->chunks[sl->nchunks++] = xmalloc((size_t)S_TEXT_CHUNK * s_text_slot_size(cls));
        }
    }
    char *p = s_text_at(w, cls, slot);
    memcpy(p, text, len);
    p[len] = 0;
    return ((uint32_t)cls << S_TEXT_CLASS_SHIFT) | (slot + 1);
}

static void s_text_free(window_t *w, uint32_t handle)
{
    if (handle == 0)
        return;
    unsigned cls = handle >> S_TEXT_CLASS_SHIFT;
    uint32_t slot = (handle & S_TEXT_SLOT_MASK) - 1;
    memcpy(s_text_at(w, cls, slot), &w->text[cls].free, sizeof(uint32_t));
    w->text[cls].free = slot + 1;
}

static const char *s_text_get(const window_t *w, uint32_t handle)
{
    return handle ? s_text_at(w, handle >> S_TEXT_CLASS_SHIFT, (handle & S_TEXT_SLOT_MASK) - 1)
                  : "";
}

/* ------------------------------------------------------------------ dirty */

static void s_dirty_push(window_t *w, const window_key_t *k)
{
    if (!w->track_dirty)
        return;
    if (w->ndirty == w->dirty_alloc && w->dirty_head > w->dirty_alloc / 2) {
        /* more than half already taken: slide the rest down instead of growing */
        w->ndirty -= w->dirty_head;
        memmove(w->dirty, w->dirty + w->dirty_head, w->ndirty * sizeof(*w->dirty));
        w->dirty_head = 0;
    }
    if (w->ndirty == w->dirty_alloc) {
        w->dirty_alloc = w->dirty_alloc ? w->dirty_alloc * 2 : 256;
        w->dirty = xrealloc(w->dirty, w->dirty_alloc * sizeof(*w->dirty));
    }
    w->dirty[w->ndirty++] = *k;
}

static void s_mark_dirty(window_t *w, entry_t *a)
{
    if (!w->track_dirty || (a->flags & S_DIRTY))
        return;
    a->flags |= S_DIRTY;
    window_key_t k = {.scope = a->scope, .tally = a->tally, .fp = a->fp};
    s_dirty_push(w, &k);
}

/* ----------------------------------------------------------------- chains */

/* Collects a multi-site key's chain (at most WINDOW_SITES_MAX + 1 sites) and, when
 * entries is not NULL, the series entries (valid until the table changes). */
static size_t s_chain_entries(const window_t *w, const window_key_t *k, const entry_t *a,
                              uint16_t *sites, const entry_t **entries)
{
    size_t n = 0;
    uint16_t site = a->link;
    while (site != S_LINK_NONE && n < WINDOW_SITES_MAX + 1) {
        const entry_t *e = s_find(w, k, site);
        if (e == NULL)
            break;
        if (entries)
            entries[n] = e;
        sites[n++] = site;
        site = e->link;
    }
    return n;
}

static size_t s_chain(const window_t *w, const window_key_t *k, const entry_t *a, uint16_t *sites)
{
    return s_chain_entries(w, k, a, sites, NULL);
}

/* Deletes a key's total and all its series. */
static void s_remove_key(window_t *w, const window_key_t *k)
{
    entry_t *a = s_find(w, k, WINDOW_SITE_ALL);
    if (a == NULL)
        return;
    uint16_t sites[WINDOW_SITES_MAX + 1];
    size_t n = (a->flags & S_MULTI) ? s_chain(w, k, a, sites) : 0;
    s_text_free(w, a->text);
    s_delete_idx(w, s_find_idx(w, k->scope, k->tally, WINDOW_SITE_ALL, k->fp));
    for (size_t i = 0; i < n; i++) {
        size_t idx = s_find_idx(w, k->scope, k->tally, sites[i], k->fp);
        if (idx != SIZE_MAX)
            s_delete_idx(w, idx);
    }
    w->keys--;
    w->counters.keys_expired++;
    s_dirty_push(w, k);
}

/* Drops the idle series of a multi-site key from its chain. */
static void s_prune_chain(window_t *w, const window_key_t *k, uint32_t cur)
{
    entry_t *a = s_find(w, k, WINDOW_SITE_ALL);
    if (a == NULL || !(a->flags & S_MULTI))
        return;
    uint16_t sites[WINDOW_SITES_MAX + 1], kept[WINDOW_SITES_MAX + 1], gone[WINDOW_SITES_MAX + 1];
    size_t n = s_chain(w, k, a, sites), nk = 0, ng = 0;
    for (size_t i = 0; i < n; i++) {
        if (s_idle(w, s_find(w, k, sites[i]), cur))
            gone[ng++] = sites[i];
        else
            kept[nk++] = sites[i];
    }
    if (ng == 0)
        return;
    uint8_t tracked = 0;
    for (size_t i = 0; i < nk; i++) {
        s_find(w, k, kept[i])->link = i + 1 < nk ? kept[i + 1] : S_LINK_NONE;
        if (kept[i] != WINDOW_SITE_OTHER)
            tracked++;
    }
    a->link = nk ? kept[0] : S_LINK_NONE;
    a->nsites = tracked;
    s_mark_dirty(w, a); /* the stored record still has the gone sites */
    for (size_t i = 0; i < ng; i++)
        s_delete_idx(w, s_find_idx(w, k->scope, k->tally, gone[i], k->fp));
}

/* Links a new series for site at the head of the key's chain. */
static entry_t *s_new_series(window_t *w, const window_key_t *k, entry_t *a, uint16_t site)
{
    entry_t *s = s_insert(w, k, site);
    if (s == NULL)
        return NULL;
    s->link = a->link;
    a->link = site;
    if (site != WINDOW_SITE_OTHER)
        a->nsites++;
    return s;
}

/* Adds series s's counts into o (two series of one key): o's ring moves on to s's head if
 * that is later; what s holds before o's ring is in no window any more. */
static void s_merge_series(window_t *w, entry_t *o, const entry_t *s)
{
    s_advance(w, o, s->head);
    for (uint32_t k = 0; k < w->nb; k++) {
        uint32_t bn = s->head - k; /* a bucket of s's ring */
        if (s_age(o->head, bn) >= (int32_t)w->nb)
            break; /* older than o's ring, and so are the rest */
        uint32_t idx = bn % w->nb;
        uint32_t sum = (uint32_t)o->buckets[idx] + s->buckets[idx];
        uint16_t v = sum > S_COUNT_MAX ? (uint16_t)S_COUNT_MAX : (uint16_t)sum;
        o->ring += (uint32_t)(v - o->buckets[idx]);
        o->buckets[idx] = v;
    }
    if (s->first_ms < o->first_ms)
        o->first_ms = s->first_ms;
    if (s->last_ms > o->last_ms)
        o->last_ms = s->last_ms;
}

/*
 * Makes room among a key's WINDOW_SITES_MAX exactly tracked sites for one more: the one
 * with the fewest events in its ring goes into the "other" series. The site reporting now
 * is then counted exactly. Folding it into "other" instead would let one site hide there:
 * the 17th site to report a subject could send the rest of a wave alone, escape the share
 * cap (other is no one site) and make a fleet decision by itself, and its local rule would
 * never see its own count. A site with many events is never the one folded; what "other"
 * holds is the small sites'. Returns the key's total entry (entries may have moved).
 */
static entry_t *s_evict_smallest(window_t *w, const window_key_t *k, entry_t *a, uint32_t b)
{
    uint16_t sites[WINDOW_SITES_MAX + 1];
    const entry_t *series[WINDOW_SITES_MAX + 1];
    size_t n = s_chain_entries(w, k, a, sites, series);
    size_t victim = SIZE_MAX;
    entry_t *other = NULL;
    for (size_t i = 0; i < n; i++) {
        if (sites[i] == WINDOW_SITE_OTHER)
            other = s_find(w, k, WINDOW_SITE_OTHER);
        else if (victim == SIZE_MAX || series[i]->ring < series[victim]->ring)
            victim = i;
    }
    if (victim == SIZE_MAX)
        return a;
    if (other == NULL) {
        other = s_new_series(w, k, a, WINDOW_SITE_OTHER);
        if (other == NULL)
            return a; /* table full: the event goes nowhere new, as before */
        s_reset_series(w, other, series[victim]->head, series[victim]->first_ms);
        /* s_chain_entries' pointers may be stale after an insert: look the victim up again */
        series[victim] = s_find(w, k, sites[victim]);
        a = s_find(w, k, WINDOW_SITE_ALL);
    }
    if (s_idle(w, other, b))
        s_reset_series(w, other, series[victim]->head, series[victim]->first_ms);
    s_merge_series(w, other, series[victim]);
    /* unlink the victim from the chain, then delete it */
    uint16_t gone = sites[victim], next = series[victim]->link;
    if (a->link == gone) {
        a->link = next;
    } else {
        for (entry_t *e = s_find(w, k, a->link); e; e = s_find(w, k, e->link)) {
            if (e->link == gone) {
                e->link = next;
                break;
            }
            if (e->link == S_LINK_NONE)
                break;
        }
    }
    a->nsites--;
    s_delete_idx(w, s_find_idx(w, k->scope, k->tally, gone, k->fp));
    w->counters.sites_folded++;
    return s_find(w, k, WINDOW_SITE_ALL);
}

/* ------------------------------------------------------------------ sites */

static uint64_t s_str_hash(const char *s)
{
    uint64_t h = 1469598103934665603ULL;
    for (; *s; s++)
        h = (h ^ (uint8_t)*s) * 1099511628211ULL;
    return h;
}

int window_site_find(const window_t *self, const char *name)
{
    if (name == NULL || self->site_index_cap == 0)
        return -1;
    size_t mask = self->site_index_cap - 1;
    for (size_t i = s_str_hash(name) & mask;; i = (i + 1) & mask) {
        uint32_t v = self->site_index[i];
        if (v == 0)
            return -1;
        if (strncmp(self->site_names[v - 1], name, WINDOW_SITE_NAME_MAX) == 0 &&
            strlen(name) <= WINDOW_SITE_NAME_MAX)
            return (int)(v - 1);
    }
}

static void s_site_index_put(window_t *w, size_t idx)
{
    size_t mask = w->site_index_cap - 1;
    size_t i = s_str_hash(w->site_names[idx]) & mask;
    while (w->site_index[i])
        i = (i + 1) & mask;
    w->site_index[i] = (uint32_t)idx + 1;
}

int window_site_intern(window_t *self, const char *name)
{
    if (name == NULL || *name == 0 || strlen(name) > WINDOW_SITE_NAME_MAX)
        return -1;
    int found = window_site_find(self, name);
    if (found >= 0)
        return found;
    if (self->nsites >= WINDOW_SITE_LIMIT) {
        self->counters.refused_sites++;
        return -1;
    }
    if (self->nsites == self->site_alloc) {
        self->site_alloc = self->site_alloc ? self->site_alloc * 2 : 64;
        self->site_names = xrealloc(self->site_names, self->site_alloc * sizeof(char *));
        self->site_lens = xrealloc(self->site_lens, self->site_alloc);
    }
    self->site_names[self->nsites] = xstrdup(name);
    self->site_lens[self->nsites] = (uint8_t)strlen(name);
    if ((self->nsites + 1) * 2 > self->site_index_cap) {
        xfree(self->site_index);
        self->site_index_cap = self->site_index_cap ? self->site_index_cap * 2 : 128;
        self->site_index = xcalloc(self->site_index_cap, sizeof(uint32_t));
        for (size_t i = 0; i < self->nsites; i++)
            s_site_index_put(self, i);
    }
    s_site_index_put(self, self->nsites);
    return (int)self->nsites++;
}

const char *window_site_name(const window_t *self, unsigned site)
{
    if (site == WINDOW_SITE_OTHER)
        return "other";
    if (site >= self->nsites)
        return "";
    return self->site_names[site];
}

size_t window_sites(const window_t *self)
{
    return self->nsites;
}

/* ------------------------------------------------------------- lifecycle */

window_t *window_new(const window_config_t *cfg)
{
    window_config_t c = {0};
    if (cfg)
        c = *cfg;
    if (c.bucket_ms == 0)
        c.bucket_ms = 10000;
    if (c.span_ms == 0)
        c.span_ms = 300000;
    if (c.text_min_events == 0)
        c.text_min_events = 1;
    assert(c.bucket_ms >= 1000);
    assert(c.span_ms >= c.bucket_ms && c.span_ms % c.bucket_ms == 0);
    assert(c.span_ms / c.bucket_ms <= 4096);

    window_t *w = xcalloc(1, sizeof(*w));
    w->bucket_ms = c.bucket_ms;
    w->nb = (uint32_t)(c.span_ms / c.bucket_ms);
    w->span_ms = c.span_ms;
    w->last_lo = 1; /* no bucket asked for yet */
    w->last_hi = 0;
    /* from where the counters start, not sizeof (which pads the header to 8) */
    w->stride = (offsetof(entry_t, buckets) + w->nb * sizeof(uint16_t) + 7) & ~(size_t)7;
    w->max_entries = c.max_entries;
    w->text_min = c.text_min_events;
    w->seed = c.seed;
    w->track_dirty = c.track_dirty;
    w->serial = s_window_serial();
    w->populate = c.populate;
    /* room for initial_entries below the 80% growth threshold */
    size_t cap = c.initial_entries + c.initial_entries / 4 + S_MIN_CAP;
    s_alloc_table(w, cap < S_MIN_CAP ? S_MIN_CAP : cap);
    return w;
}

void window_destroy(window_t **self_p)
{
    assert(self_p);
    window_t *w = *self_p;
    if (w == NULL)
        return;
    bigmem_free(w->slots, w->cap * w->stride);
    bigmem_free(w->tags, w->cap);
    for (size_t i = 0; i < w->nsites; i++)
        xfree(w->site_names[i]);
    xfree(w->site_names);
    xfree(w->site_lens);
    xfree(w->site_index);
    for (unsigned c = 0; c < S_TEXT_CLASSES; c++) {
        for (size_t i = 0; i < w->text[c].nchunks; i++)
            xfree(w->text[c].chunks[i]);
        xfree(w->text[c].chunks);
    }
    xfree(w->dirty);
    xfree(w->xp);
    window_copy_destroy(&w->xcopy);
    xfree(w);
    *self_p = NULL;
}

int64_t window_bucket_ms(const window_t *self)
{
    return self->bucket_ms;
}

int64_t window_span_ms(const window_t *self)
{
    return self->span_ms;
}

/* -------------------------------------------------------------- counting */

int window_add(window_t *self, const window_key_t *key, unsigned site, int64_t time_ms,
               const char *text, size_t text_len)
{
    return window_add_count(self, key, site, NULL, time_ms, text, text_len, NULL);
}

int window_add_count(window_t *self, const window_key_t *key, unsigned site,
                     const window_loc_t *loc, int64_t time_ms, const char *text, size_t text_len,
                     window_rings_t *rings_p)
{
    assert(key && key->scope != 0);
    assert(site < WINDOW_SITE_LIMIT);
    window_t *w = self;
    uint32_t bi;
    uint32_t b = s_bucket_at(w, time_ms, &bi);
    uint16_t st = (uint16_t)site;
    window_loc_t here;
    if (loc == NULL || loc->site != st || loc->key.fp != key->fp || loc->key.scope != key->scope ||
        loc->key.tally != key->tally) {
        window_locate(w, key, site, &here);
        loc = &here;
    }

    s_reserve(w, 3);
    entry_t *a = s_find_hinted(w, key, WINDOW_SITE_ALL, loc->total, loc->total_at);
    if (a == NULL) {
        a = s_insert(w, key, WINDOW_SITE_ALL);
        if (a == NULL)
            return -1;
        s_reset_series(w, a, b, time_ms);
        a->link = st;
        a->nsites = 1;
        w->keys++;
        w->counters.keys_created++;
    } else if (s_idle(w, a, b) ||
               (s_age(a->head, b) >= (int32_t)w->nb && s_from_the_future(w, a))) {
        /* lazy expiry (or a key from before the clock stepped back): the key starts over,
         * with this event's site alone */
        if (a->flags & S_MULTI) {
            uint16_t sites[WINDOW_SITES_MAX + 1];
            size_t n = s_chain(w, key, a, sites);
            for (size_t i = 0; i < n; i++)
                s_delete_idx(w, s_find_idx(w, key->scope, key->tally, sites[i], key->fp));
            a = s_find(w, key, WINDOW_SITE_ALL);
        }
        s_text_free(w, a->text);
        a->text = 0;
        a->flags &= (uint8_t)~S_MULTI;
        s_reset_series(w, a, b, time_ms);
        a->link = st;
        a->nsites = 1;
        w->counters.keys_expired++;
        w->counters.keys_created++;
    } else if (s_age(a->head, b) >= (int32_t)w->nb) {
        w->counters.refused_old++;
        return -1;
    }

    if (!(a->flags & S_MULTI) && a->link != st) {
        /* second site: the first site's history so far is the key's history */
        entry_t *first = s_insert(w, key, a->link);
        if (first) {
            memcpy(first->buckets, a->buckets, w->nb * sizeof(uint16_t));
            first->ring = a->ring;
            first->head = a->head;
            first->first_ms = a->first_ms;
            first->last_ms = a->last_ms;
            a->flags |= S_MULTI;
        }
    }
    uint32_t site_ring = 0; /* ring total of the series that counted the event (multi-site) */
    if (a->flags & S_MULTI) {
        entry_t *s = s_find_hinted(w, key, st, loc->series, loc->series_at);
        if (s == NULL && a->nsites >= WINDOW_SITES_MAX) {
            s_prune_chain(w, key, b);
            a = s_find(w, key, WINDOW_SITE_ALL);
        }
        if (s == NULL && a->nsites >= WINDOW_SITES_MAX)
            a = s_evict_smallest(w, key, a, b);
        if (s == NULL) {
            uint16_t target = a->nsites < WINDOW_SITES_MAX ? st : (uint16_t)WINDOW_SITE_OTHER;
            s = target == WINDOW_SITE_OTHER ? s_find(w, key, WINDOW_SITE_OTHER) : NULL;
            if (s == NULL) {
                s = s_new_series(w, key, a, target);
                if (s)
                    s_reset_series(w, s, b, time_ms);
            } else if (s_idle(w, s, b)) {
                s_reset_series(w, s, b, time_ms);
            }
        } else if (s_idle(w, s, b)) {
            s_reset_series(w, s, b, time_ms);
        }
        if (s)
            s_bump(w, s, b, bi, time_ms);
        site_ring = s ? s->ring : 0;
    }
    s_bump(w, a, b, bi, time_ms);
    uint32_t ring = a->ring;
    if (rings_p) {
        rings_p->total = ring;
        rings_p->site = (a->flags & S_MULTI) ? site_ring : ring;
    }
    if (a->text == 0 && text && text_len && ring >= w->text_min)
        a->text = s_text_put(w, text, text_len);
    s_mark_dirty(w, a);
    return 0;
}

uint32_t window_count(const window_t *self, const window_key_t *key, unsigned site,
                      int64_t window_ms, int64_t now_ms)
{
    uint32_t n = s_buckets_for(self, window_ms);
    uint32_t cur = (uint32_t)s_bucket(self, now_ms);
    const entry_t *a = s_find(self, key, WINDOW_SITE_ALL);
    if (a == NULL)
        return 0;
    if (site == WINDOW_SITE_ALL)
        return s_sum(self, a, cur, n, NULL);
    if (!(a->flags & S_MULTI))
        return a->link == site ? s_sum(self, a, cur, n, NULL) : 0;
    const entry_t *s = s_find(self, key, (uint16_t)site);
    return s ? s_sum(self, s, cur, n, NULL) : 0;
}

static void s_sort_shares(window_stats_t *out)
{
    for (uint32_t i = 1; i < out->nshares; i++) {
        window_share_t x = out->shares[i];
        uint32_t j = i;
        while (j > 0 &&
               (out->shares[j - 1].events < x.events ||
                (out->shares[j - 1].events == x.events && out->shares[j - 1].site > x.site))) {
            out->shares[j] = out->shares[j - 1];
            j--;
        }
        out->shares[j] = x;
    }
}

int window_stats(const window_t *self, const window_key_t *key, unsigned site, int64_t window_ms,
                 int64_t now_ms, window_stats_t *out)
{
    memset(out, 0, sizeof(*out));
    out->text = "";
    uint32_t n = s_buckets_for(self, window_ms);
    uint32_t cur = (uint32_t)s_bucket(self, now_ms);
    const entry_t *a = s_find(self, key, WINDOW_SITE_ALL);
    if (a == NULL)
        return -1;
    out->text = s_text_get(self, a->text);

    const entry_t *series = a;
    if (site != WINDOW_SITE_ALL && (a->flags & S_MULTI))
        series = s_find(self, key, (uint16_t)site);
    else if (site != WINDOW_SITE_ALL && a->link != site)
        series = NULL;
    if (series == NULL)
        return 0;

    int64_t oldest = 0;
    out->events = s_sum(self, series, cur, n, &oldest);
    if (out->events == 0)
        return 0;
    int64_t start = oldest * self->bucket_ms;
    out->first_ms = series->first_ms > start ? series->first_ms : start;
    out->last_ms = series->last_ms;

    if (site != WINDOW_SITE_ALL || !(a->flags & S_MULTI)) {
        out->sites = 1;
        out->nshares = 1;
        out->shares[0].site = site != WINDOW_SITE_ALL ? (uint16_t)site : a->link;
        out->shares[0].events = out->events;
        return 0;
    }
    uint16_t sites[WINDOW_SITES_MAX + 1];
    size_t ns = s_chain(self, key, a, sites);
    for (size_t i = 0; i < ns; i++) {
        uint32_t c = s_sum(self, s_find(self, key, sites[i]), cur, n, NULL);
        if (c == 0)
            continue;
        out->shares[out->nshares].site = sites[i];
        out->shares[out->nshares].events = c;
        out->nshares++;
    }
    out->sites = out->nshares;
    s_sort_shares(out);
    return 0;
}

/* ------------------------------------------------------------ maintenance */

void window_set_now(window_t *self, int64_t now_ms, int64_t future_ms)
{
    self->now_known = true;
    self->now_b = (uint32_t)s_bucket(self, now_ms);
    int64_t fb = future_ms > 0 ? future_ms / self->bucket_ms + 1 : 1;
    self->future_b = fb > INT32_MAX / 2 ? INT32_MAX / 2 : (uint32_t)fb;
}

size_t window_sweep(window_t *self, int64_t now_ms, size_t budget)
{
    window_t *w = self;
    uint32_t cur = (uint32_t)s_bucket(w, now_ms);
    size_t expired = 0;
    while (budget-- > 0 && w->used > 0) {
        if (w->sweep_pos >= w->cap)
            w->sweep_pos = 0;
        entry_t *e = s_slot(w, w->sweep_pos);
        if (e->scope == 0) {
            w->sweep_pos++;
            continue;
        }
        window_key_t k = {.scope = e->scope, .tally = e->tally, .fp = e->fp};
        if (e->site == WINDOW_SITE_ALL) {
            if (s_idle(w, e, cur) || s_from_the_future(w, e)) {
                s_remove_key(w, &k);
                expired++;
                continue; /* another entry may have moved into this slot */
            }
            if (e->flags & S_MULTI)
                s_prune_chain(w, &k, cur);
        } else if (s_find(w, &k, WINDOW_SITE_ALL) == NULL) {
            s_delete_idx(w, w->sweep_pos); /* orphan series: cannot happen, but costs nothing */
            continue;
        }
        w->sweep_pos++;
    }
    return expired;
}

size_t window_top(const window_t *self, uint8_t scope, uint8_t tally, int64_t window_ms,
                  int64_t now_ms, window_top_t *out, size_t n)
{
    if (n == 0)
        return 0;
    uint32_t nb = s_buckets_for(self, window_ms);
    uint32_t cur = (uint32_t)s_bucket(self, now_ms);
    size_t have = 0;
    for (size_t i = 0; i < self->cap; i++) {
        const entry_t *e = s_slot(self, i);
        if (e->scope != scope || e->tally != tally || e->site != WINDOW_SITE_ALL)
            continue;
        uint32_t c = s_sum(self, e, cur, nb, NULL);
        if (c == 0 || (have == n && c <= out[n - 1].events))
            continue;
        size_t j = have < n ? have++ : n - 1;
        while (j > 0 && out[j - 1].events < c) {
            out[j] = out[j - 1];
            j--;
        }
        out[j].key.scope = e->scope;
        out[j].key.tally = e->tally;
        out[j].key.fp = e->fp;
        out[j].events = c;
    }
    return have;
}

size_t window_keys(const window_t *self)
{
    return self->keys;
}

size_t window_entries(const window_t *self)
{
    return self->used;
}

size_t window_memory(const window_t *self)
{
    size_t m = sizeof(*self) + self->cap * (self->stride + 1);
    for (unsigned c = 0; c < S_TEXT_CLASSES; c++)
        m += self->text[c].nchunks * (size_t)S_TEXT_CHUNK * s_text_slot_size(c);
    m += self->site_alloc * sizeof(char *) + self->site_index_cap * sizeof(uint32_t);
    for (size_t i = 0; i < self->nsites; i++)
        m += strlen(self->site_names[i]) + 1;
    m += self->dirty_alloc * sizeof(window_key_t);
    m += self->xp_alloc * sizeof(s_export_t);
    if (self->xcopy)
        m += self->xcopy->rec.alloc + self->xcopy->enc.alloc;
    return m;
}

const window_counters_t *window_counters(const window_t *self)
{
    return &self->counters;
}

int window_foreach(const window_t *self, int (*cb)(const window_key_t *key, void *arg), void *arg)
{
    for (size_t i = 0; i < self->cap; i++) {
        const entry_t *e = s_slot(self, i);
        if (e->scope == 0 || e->site != WINDOW_SITE_ALL)
            continue;
        window_key_t k = {.scope = e->scope, .tally = e->tally, .fp = e->fp};
        int rc = cb(&k, arg);
        if (rc)
            return rc;
    }
    return 0;
}

/* An emptied queue starts over at the front (and gives back a big array). */
static void s_dirty_reset(window_t *w)
{
    if (w->dirty_head < w->ndirty)
        return;
    w->dirty_head = w->ndirty = 0;
    if (w->dirty_alloc > 4096) {
        xfree(w->dirty);
        w->dirty = NULL;
        w->dirty_alloc = 0;
    }
}

size_t window_dirty_all(window_t *self)
{
    size_t n = 0;
    /* by the tags: an empty slot's page is never touched (a presized table's are not) */
    for (size_t i = 0; self->track_dirty && i < self->cap; i++) {
        if (self->tags[i] == 0)
            continue;
        entry_t *e = s_slot(self, i);
        if (e->scope != 0 && e->site == WINDOW_SITE_ALL && !(e->flags & S_DIRTY)) {
            s_mark_dirty(self, e);
            n++;
        }
    }
    return n;
}

size_t window_dirty_pending(const window_t *self)
{
    return self->ndirty - self->dirty_head;
}

size_t window_dirty_take(window_t *self, window_key_t *out, size_t max)
{
    size_t n = 0;
    while (n < max && self->dirty_head < self->ndirty) {
        out[n] = self->dirty[self->dirty_head++];
        s_ask_tags(self, s_hash(self, out[n].scope, out[n].tally, WINDOW_SITE_ALL, out[n].fp));
        n++;
    }
    /* the tags asked for above have arrived meanwhile; the slot itself is one cache line */
    for (size_t i = 0; i < n; i++) {
        entry_t *a = s_find(self, &out[i], WINDOW_SITE_ALL);
        if (a)
            a->flags &= (uint8_t)~S_DIRTY;
    }
    s_dirty_reset(self);
    return n;
}

/* ------------------------------------------------------------ persistence */

/* Writes v as a varint at o; returns the byte after it. */
static uint8_t *s_varint_at(uint8_t *o, uint64_t v)
{
    while (v >= 0x80) {
        *o++ = (uint8_t)(v | 0x80);
        v >>= 7;
    }
    *o++ = (uint8_t)v;
    return o;
}

static uint64_t s_zigzag(int64_t v)
{
    return ((uint64_t)v << 1) ^ (uint64_t)(v >> 63);
}

/* Room for need more bytes at the end of b; returns where they go. */
static uint8_t *s_room(s_buf_t *b, size_t need)
{
    if (b->len + need > b->alloc) {
        b->alloc = (b->len + need) * 2 + 64;
        b->p = xrealloc(b->p, b->alloc);
    }
    return b->p + b->len;
}

/* Writes len (at most 255) bytes at s as a length byte and the bytes at o; returns the
 * byte after. */
static uint8_t *s_bytes_at(uint8_t *o, const char *s, size_t len)
{
    *o++ = (uint8_t)len;
    memcpy(o, s, len);
    return o + len;
}

/* s_bytes_at() of a NUL-terminated s. */
static uint8_t *s_str_at(uint8_t *o, const char *s)
{
    return s_bytes_at(o, s, strlen(s));
}

/* What encoding a key needs besides its entries: the window's shape and its site
 * names. It points into the window for window_export(), into a window_copy_t (which
 * holds the names it needs) for window_copy_encode(). */
typedef struct {
    int64_t bucket_ms;   /* resolution */
    uint32_t nb;         /* buckets per ring */
    char *const *names;  /* site names by index */
    const uint8_t *lens; /* their lengths */
    size_t nnames;       /* how many */
} s_fmt_t;

static s_fmt_t s_fmt_of(const window_t *w)
{
    return (s_fmt_t){.bucket_ms = w->bucket_ms,
                     .nb = w->nb,
                     .names = w->site_names,
                     .lens = w->site_lens,
                     .nnames = w->nsites};
}

/* s_bytes_at() of the name of a site (window_site_name()'s, the length known). */
static uint8_t *s_site_at(const s_fmt_t *f, uint8_t *o, uint16_t site)
{
    if (site < f->nnames)
        return s_bytes_at(o, f->names[site], f->lens[site]);
    return s_str_at(o, site == WINDOW_SITE_OTHER ? "other" : "");
}

static void s_put_series(const s_fmt_t *f, s_buf_t *b, const entry_t *e)
{
    /* at most: head, first, last and count (10 bytes each), then per bucket an age (2
     * bytes: < 4096) and a count (3 bytes); written in place, with no call per byte */
    uint32_t nb = f->nb;
    uint8_t *o = s_room(b, 40 + (size_t)nb * 5);
    /* times relative to the head bucket's start: a byte or three instead of six */
    int64_t base = (int64_t)e->head * f->bucket_ms;
    o = s_varint_at(o, e->head);
    o = s_varint_at(o, s_zigzag((int64_t)((uint64_t)e->first_ms - (uint64_t)base)));
    o = s_varint_at(o, s_zigzag((int64_t)((uint64_t)e->last_ms - (uint64_t)base)));
    /* the non-zero counters, found four at a time: most of a ring is zero */
    const uint16_t *bk = e->buckets;
    uint16_t nz[4096];
    uint32_t n = 0, i = 0;
    for (; i + 4 <= nb; i += 4) {
        uint64_t four;
        memcpy(&four, bk + i, sizeof(four));
        if (four == 0)
            continue;
        for (uint32_t j = i; j < i + 4; j++)
            if (bk[j])
                nz[n++] = (uint16_t)j;
    }
    for (; i < nb; i++)
        if (bk[i])
            nz[n++] = (uint16_t)i;
    o = s_varint_at(o, n);
    /* newest first: as s_ring_at(), the age of index x is h0 - x for x <= h0, then
     * h0 + nb - x */
    uint32_t h0 = e->head % nb, split = 0;
    while (split < n && nz[split] <= h0)
        split++;
    for (uint32_t k = split; k-- > 0;) {
        o = s_varint_at(o, h0 - nz[k]);
        o = s_varint_at(o, bk[nz[k]]);
    }
    for (uint32_t k = n; k-- > split;) {
        o = s_varint_at(o, h0 + nb - nz[k]);
        o = s_varint_at(o, bk[nz[k]]);
    }
    b->len = (size_t)(o - b->p);
}

/* Appends the export encoding of key: total a with its display text (text_len bytes)
 * and its ns series in chain order (each series' site is its own). */
static void s_encode(const s_fmt_t *f, s_buf_t *b, const window_key_t *key, const entry_t *a,
                     const char *text, size_t text_len, size_t ns, const entry_t *const *series)
{
    /* magic, version, bucket_ms, scope, tally, fp, text, series count, kind, site */
    uint8_t *o =
        s_room(b, 2 + 10 + 2 + 8 + 1 + WINDOW_TEXT_MAX + 10 + 1 + 1 + WINDOW_SITE_NAME_MAX);
    *o++ = S_BLOB_MAGIC;
    *o++ = S_BLOB_VER;
    o = s_varint_at(o, (uint64_t)f->bucket_ms);
    *o++ = key->scope;
    *o++ = key->tally;
    for (int i = 0; i < 8; i++)
        *o++ = (uint8_t)(key->fp >> (8 * i));
    o = s_bytes_at(o, text, text_len);
    o = s_varint_at(o, 1 + ns);
    *o++ = 0;
    o = (a->flags & S_MULTI) ? s_bytes_at(o, "", 0) : s_site_at(f, o, a->link);
    b->len = (size_t)(o - b->p);
    s_put_series(f, b, a);
    /* chain order is newest site first; write it reversed so import rebuilds the same order */
    for (size_t i = ns; i-- > 0;) {
        o = s_room(b, 1 + 1 + WINDOW_SITE_NAME_MAX);
        if (series[i]->site == WINDOW_SITE_OTHER) {
            *o++ = 2;
        } else {
            *o++ = 1;
            o = s_site_at(f, o, series[i]->site);
        }
        b->len = (size_t)(o - b->p);
        s_put_series(f, b, series[i]);
    }
}

uint8_t *window_export(const window_t *self, const window_key_t *key, size_t *len_p)
{
    const entry_t *a = s_find(self, key, WINDOW_SITE_ALL);
    if (a == NULL)
        return NULL;
    uint16_t sites[WINDOW_SITES_MAX + 1];
    const entry_t *series[WINDOW_SITES_MAX + 1];
    size_t ns = (a->flags & S_MULTI) ? s_chain_entries(self, key, a, sites, series) : 0;
    s_buf_t b = {.p = xmalloc(256), .alloc = 256};
    s_fmt_t f = s_fmt_of(self);
    const char *text = s_text_get(self, a->text);
    s_encode(&f, &b, key, a, text, strlen(text), ns, series);
    *len_p = b.len;
    return b.p;
}

/* --------------------------------------------------------------- copies */

/* Windows are numbered so that a copy can tell which one its names are from. */
static uint64_t s_window_serial(void)
{
    static uint64_t serial;
    return __atomic_add_fetch(&serial, 1, __ATOMIC_RELAXED);
}

window_copy_t *window_copy_new(void)
{
    return xcalloc(1, sizeof(window_copy_t));
}

static void s_copy_forget_names(window_copy_t *c)
{
    for (size_t i = 0; i < c->nnames; i++)
        xfree(c->names[i]);
    c->nnames = 0;
}

void window_copy_destroy(window_copy_t **self_p)
{
    assert(self_p);
    window_copy_t *c = *self_p;
    if (c == NULL)
        return;
    s_copy_forget_names(c);
    xfree(c->names);
    xfree(c->lens);
    xfree(c->rec.p);
    xfree(c->enc.p);
    xfree(c);
    *self_p = NULL;
}

void window_copy_clear(window_copy_t *self)
{
    self->rec.len = 0;
    self->keys = 0;
}

size_t window_copy_keys(const window_copy_t *self)
{
    return self->keys;
}

/* Makes c a copy of w's shape and site names (those added since it last was). */
static void s_copy_sync(window_copy_t *c, const window_t *w)
{
    if (c->owner != w->serial) {
        assert(c->keys == 0); /* one window's keys at a time */
        s_copy_forget_names(c);
        c->owner = w->serial;
        c->bucket_ms = w->bucket_ms;
        c->nb = w->nb;
        c->stride = w->stride;
    }
    if (c->nnames == w->nsites)
        return;
    if (w->nsites > c->names_alloc) {
        c->names_alloc = w->site_alloc;
        c->names = xrealloc(c->names, c->names_alloc * sizeof(*c->names));
        c->lens = xrealloc(c->lens, c->names_alloc);
    }
    for (; c->nnames < w->nsites; c->nnames++) {
        c->names[c->nnames] = xstrdup(w->site_names[c->nnames]);
        c->lens[c->nnames] = w->site_lens[c->nnames];
    }
}

static size_t s_pad8(size_t n)
{
    return (n + 7) & ~(size_t)7;
}

/* Appends key's record to c: its total a (NULL: expired) and ns series. */
static void s_copy_put(window_copy_t *c, const window_t *w, const window_key_t *key,
                       const entry_t *a, size_t ns, const entry_t *const *series)
{
    const char *text = a ? s_text_get(w, a->text) : "";
    size_t tl = strlen(text);
    size_t size = sizeof(s_copy_head_t) + s_pad8(tl) + (a ? (1 + ns) * w->stride : 0);
    uint8_t *o = s_room(&c->rec, size);
    s_copy_head_t h = {.key = *key,
                       .size = (uint32_t)size,
                       .ns = (uint8_t)ns,
                       .gone = !a,
                       .text_len = (uint8_t)tl};
    memcpy(o, &h, sizeof(h));
    o += sizeof(h);
    memcpy(o, text, tl);
    o += s_pad8(tl);
    if (a) {
        memcpy(o, a, w->stride);
        o += w->stride;
        for (size_t i = 0; i < ns; i++, o += w->stride)
            memcpy(o, series[i], w->stride);
    }
    c->rec.len += size;
    c->keys++;
}

void window_copy_encode(window_copy_t *self, window_export_fn *cb, void *arg)
{
    window_copy_t *c = self;
    s_fmt_t f = {.bucket_ms = c->bucket_ms,
                 .nb = c->nb,
                 .names = c->names,
                 .lens = c->lens,
                 .nnames = c->nnames};
    for (size_t off = 0; off < c->rec.len;) {
        s_copy_head_t h;
        memcpy(&h, c->rec.p + off, sizeof(h));
        const uint8_t *p = c->rec.p + off + sizeof(h);
        off += h.size;
        if (h.gone) {
            cb(&h.key, NULL, 0, arg);
            continue;
        }
        const char *text = (const char *)p;
        p += s_pad8(h.text_len);
        const entry_t *a = (const entry_t *)p; /* records and strides are 8-byte aligned */
        const entry_t *series[WINDOW_SITES_MAX + 1];
        for (size_t i = 0; i < h.ns; i++)
            series[i] = (const entry_t *)(p + (1 + i) * c->stride);
        c->enc.len = 0;
        s_encode(&f, &c->enc, &h.key, a, text, h.text_len, h.ns, series);
        cb(&h.key, c->enc.p, c->enc.len, arg);
    }
}

/* Keys exported per pass: their entries (up to WINDOW_SITES_MAX + 2 of about 100 bytes
 * each) should still be in the core's cache when they are encoded. */
#define S_EXPORT_PASS 256u

/* Copies n <= S_EXPORT_PASS keys of the dirty queue into c: finds every key's entries in
 * staged passes (tags asked for, then the slots they point at, then compared: one pass
 * earlier each), then copies them in order, while they are in the core's cache. */
static void s_export_pass(window_t *w, size_t n, window_copy_t *c)
{
    s_export_t *x = w->xp;
    for (size_t i = 0; i < n; i++) {
        x[i].key = w->dirty[w->dirty_head++];
        x[i].seeded = s_seeded(w, x[i].key.fp);
        x[i].h = s_hash_of(x[i].seeded, x[i].key.scope, x[i].key.tally, WINDOW_SITE_ALL);
        s_ask_tags(w, x[i].h);
    }
    for (size_t i = 0; i < n; i++)
        x[i].at = s_hint(s_ask_slot(w, x[i].h));
    size_t more = 0;
    for (size_t i = 0; i < n; i++) {
        entry_t *a = s_find_hinted(w, &x[i].key, WINDOW_SITE_ALL, x[i].h, x[i].at);
        x[i].total = a;
        x[i].ns = 0;
        x[i].next = S_LINK_NONE;
        if (a == NULL)
            continue;
        a->flags &= (uint8_t)~S_DIRTY;
        if (a->text) /* the copy reads it at the end of the pass */
            __builtin_prefetch(s_text_get(w, a->text), 0, 3);
        if (a->flags & S_MULTI && a->link != S_LINK_NONE) {
            x[i].next = a->link;
            x[i].h = s_hash_of(x[i].seeded, x[i].key.scope, x[i].key.tally, a->link);
            s_ask_tags(w, x[i].h);
            more++;
        }
    }
    /* one chain step per round */
    while (more > 0) {
        for (size_t i = 0; i < n; i++)
            if (x[i].next != S_LINK_NONE)
                x[i].at = s_hint(s_ask_slot(w, x[i].h));
        more = 0;
        for (size_t i = 0; i < n; i++) {
            if (x[i].next == S_LINK_NONE)
                continue;
            const entry_t *e = s_find_hinted(w, &x[i].key, x[i].next, x[i].h, x[i].at);
            if (e == NULL) {
                x[i].next = S_LINK_NONE;
                continue;
            }
            x[i].series[x[i].ns++] = e;
            x[i].next = x[i].ns < WINDOW_SITES_MAX + 1 ? e->link : S_LINK_NONE;
            if (x[i].next != S_LINK_NONE) {
                x[i].h = s_hash_of(x[i].seeded, x[i].key.scope, x[i].key.tally, x[i].next);
                s_ask_tags(w, x[i].h);
                more++;
            }
        }
    }
    for (size_t i = 0; i < n; i++)
        s_copy_put(c, w, &x[i].key, x[i].total, x[i].ns, x[i].series);
}

size_t window_dirty_copy(window_t *self, size_t max, window_copy_t *copy)
{
    window_t *w = self;
    size_t n = window_dirty_pending(w) < max ? window_dirty_pending(w) : max;
    if (n == 0)
        return 0;
    s_copy_sync(copy, w);
    if (w->xp_alloc < S_EXPORT_PASS) {
        w->xp_alloc = S_EXPORT_PASS;
        w->xp = xrealloc(w->xp, S_EXPORT_PASS * sizeof(*w->xp));
    }
    for (size_t done = 0; done < n;) {
        size_t k = n - done < S_EXPORT_PASS ? n - done : S_EXPORT_PASS;
        s_export_pass(w, k, copy);
        done += k;
    }
    s_dirty_reset(w);
    return n;
}

size_t window_dirty_export(window_t *self, size_t max, window_export_fn *cb, void *arg)
{
    if (self->xcopy == NULL)
        self->xcopy = window_copy_new();
    size_t n = window_dirty_copy(self, max, self->xcopy);
    window_copy_encode(self->xcopy, cb, arg);
    window_copy_clear(self->xcopy);
    return n;
}

typedef struct {
    const uint8_t *p;   /* next byte */
    const uint8_t *end; /* end of blob */
    int bad;            /* set on overrun or malformed data */
} s_rd_t;

static uint8_t s_get_u8(s_rd_t *r)
{
    if (r->p >= r->end) {
        r->bad = 1;
        return 0;
    }
    return *r->p++;
}

static uint64_t s_get_varint(s_rd_t *r)
{
    uint64_t v = 0;
    for (int shift = 0; shift < 64; shift += 7) {
        uint8_t c = s_get_u8(r);
        v |= (uint64_t)(c & 0x7f) << shift;
        if (!(c & 0x80))
            return v;
    }
    r->bad = 1;
    return 0;
}

static int64_t s_get_zigzag(s_rd_t *r)
{
    uint64_t v = s_get_varint(r);
    return (int64_t)(v >> 1) ^ -(int64_t)(v & 1);
}

static void s_get_str(s_rd_t *r, char *out, size_t max)
{
    size_t len = s_get_u8(r);
    if (len > max || (size_t)(r->end - r->p) < len) {
        r->bad = 1;
        out[0] = 0;
        return;
    }
    memcpy(out, r->p, len);
    out[len] = 0;
    r->p += len;
    if (memchr(out, 0, len))
        r->bad = 1;
}

typedef struct {
    uint8_t kind;                        /* 0 total, 1 site, 2 other */
    char name[WINDOW_SITE_NAME_MAX + 1]; /* site name (kind 1; kind 0 when single-site) */
    int64_t head;                        /* bucket number of the newest bucket */
    int64_t first_ms;                    /* first event */
    int64_t last_ms;                     /* latest event */
    const uint8_t *counts;               /* start of the (age, count) pairs */
    uint32_t nz;                         /* pairs */
} s_series_t;

static void s_get_series(s_rd_t *r, s_series_t *s, int64_t bucket_ms)
{
    /* bounded before it is made signed: a varint of 2^63 or more would pass as negative */
    uint64_t head = s_get_varint(r);
    if (head > UINT32_MAX) {
        r->bad = 1;
        return;
    }
    s->head = (int64_t)head;
    int64_t base = s->head * bucket_ms;
    /* unsigned: a hostile blob must not overflow a signed sum */
    s->first_ms = (int64_t)((uint64_t)base + (uint64_t)s_get_zigzag(r));
    s->last_ms = (int64_t)((uint64_t)base + (uint64_t)s_get_zigzag(r));
    uint64_t nz = s_get_varint(r);
    if (nz > 4096) {
        r->bad = 1;
        return;
    }
    s->nz = (uint32_t)nz;
    s->counts = r->p;
    for (uint32_t i = 0; i < s->nz && !r->bad; i++) {
        s_get_varint(r);
        if (s_get_varint(r) > S_COUNT_MAX)
            r->bad = 1;
    }
}

static void s_fill_series(window_t *w, entry_t *e, const s_series_t *s, const uint8_t *end)
{
    s_rd_t r = {.p = s->counts, .end = end};
    e->head = (uint32_t)s->head;
    e->first_ms = s->first_ms;
    e->last_ms = s->last_ms;
    for (uint32_t i = 0; i < s->nz; i++) {
        uint64_t age = s_get_varint(&r);
        uint64_t c = s_get_varint(&r);
        if (age < w->nb && age <= e->head) /* no bucket before bucket 0 */
            e->buckets[s_ring_at(w, e, (uint32_t)age)] = (uint16_t)c;
    }
    /* summed from the ring, not from the blob: a blob naming one age twice stays consistent */
    e->ring = 0;
    for (uint32_t i = 0; i < w->nb; i++)
        e->ring += e->buckets[i];
}

int window_import(window_t *self, const uint8_t *blob, size_t len, int64_t now_ms)
{
    int rc = window_import_mapped(self, blob, len, now_ms, NULL, NULL);
    return rc == WINDOW_IMPORT_IDLE ? 0 : rc;
}

int window_import_mapped(window_t *self, const uint8_t *blob, size_t len, int64_t now_ms,
                         const uint8_t *tally_map, window_key_t *stored)
{
    window_t *w = self;
    s_rd_t r = {.p = blob, .end = blob + len};
    if (s_get_u8(&r) != S_BLOB_MAGIC || s_get_u8(&r) != S_BLOB_VER)
        return -1;
    if ((int64_t)s_get_varint(&r) != w->bucket_ms)
        return -1;
    window_key_t k = {0};
    k.scope = s_get_u8(&r);
    k.tally = s_get_u8(&r);
    for (int i = 0; i < 8; i++)
        k.fp |= (uint64_t)s_get_u8(&r) << (8 * i);
    if (stored)
        *stored = k;
    if (tally_map && !r.bad) {
        if (tally_map[k.tally] == 0xFFu)
            return 1;
        k.tally = tally_map[k.tally];
    }
    char text[256];
    s_get_str(&r, text, sizeof(text) - 1);
    uint64_t ns = s_get_varint(&r);
    if (r.bad || k.scope == 0 || ns < 1 || ns > WINDOW_SITES_MAX + 2)
        return -1;
    s_series_t series[WINDOW_SITES_MAX + 2];
    for (size_t i = 0; i < ns; i++) {
        s_series_t *s = &series[i];
        s->kind = s_get_u8(&r);
        s->name[0] = 0;
        if (s->kind == 0 || s->kind == 1)
            s_get_str(&r, s->name, WINDOW_SITE_NAME_MAX);
        else if (s->kind != 2)
            r.bad = 1;
        if ((i == 0) != (s->kind == 0))
            r.bad = 1;
        if (r.bad)
            return -1;
        s_get_series(&r, s, w->bucket_ms);
        if (r.bad)
            return -1;
    }
    if (r.p != r.end)
        return -1;
    if (ns == 1 && series[0].name[0] == 0)
        return -1;

    uint32_t cur = (uint32_t)s_bucket(w, now_ms);
    /* a series whose newest bucket lies a whole ring or more ahead of now is damage, not
     * a clock that went back a little: window_add() would refuse every event of the key as
     * too old for its ring, and the key would not go idle (nor be swept) until the clock
     * caught up, years later maybe. So is one exactly half the bucket counter's range
     * away (2^31 buckets), where ahead and behind are the same: s_age() is INT32_MIN both
     * ways, the key neither counts nor ever goes idle */
    for (size_t i = 0; i < ns; i++) {
        int32_t ahead = s_age((uint32_t)series[i].head, cur);
        if (ahead >= (int32_t)w->nb || ahead == INT32_MIN)
            return -1;
    }
    if (s_find(w, &k, WINDOW_SITE_ALL)) {
        s_remove_key(w, &k);
        w->counters.keys_expired--; /* replacing is not expiring */
    }
    /* idle at now: nothing to restore, and nothing in memory will ever delete its record
     * (no sweep sees a key that is not there); the caller does */
    if (s_age(cur, (uint32_t)series[0].head) >= (int32_t)w->nb)
        return WINDOW_IMPORT_IDLE;

    s_reserve(w, ns);
    entry_t *a = s_insert(w, &k, WINDOW_SITE_ALL);
    if (a == NULL)
        return -1;
    w->keys++;
    s_fill_series(w, a, &series[0], r.end);
    if (text[0])
        a->text = s_text_put(w, text, strlen(text));
    if (ns == 1) {
        int site = window_site_intern(w, series[0].name);
        a->link = site < 0 ? 0 : (uint16_t)site;
        a->nsites = 1;
    } else {
        a->flags |= S_MULTI;
        for (size_t i = 1; i < ns; i++) {
            int site = series[i].kind == 2 ? (int)WINDOW_SITE_OTHER
                                           : window_site_intern(w, series[i].name);
            if (site < 0 || s_find(w, &k, (uint16_t)site))
                continue;
            if (site != (int)WINDOW_SITE_OTHER && a->nsites >= WINDOW_SITES_MAX)
                continue;
            entry_t *s = s_new_series(w, &k, a, (uint16_t)site);
            if (s)
                s_fill_series(w, s, &series[i], r.end);
        }
    }
    s_mark_dirty(w, a);
    return 0;
}
