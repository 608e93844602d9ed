/*
 * dedup - drop events already counted, by (site, sensor, sequence number)
 *
 * Sensors live on a chained hash table keyed by site and sensor name. Inside,
 * seqs are shifted by one (q = seq + 1) so that base 0 means "nothing seen"
 * even for a sensor that starts numbering at 0. Bit q % DEDUP_WINDOW of the
 * bitmap stands for q while base < q <= base + DEDUP_WINDOW. Gaps are
 * sorted, disjoint, non-adjacent q ranges at or below base (they only ever
 * grow at the top, since a slide gives up seqs above every older gap).
 */
#include <assert.h>
#include <stdbool.h>
#include <string.h>

#include "dedup.h"
#include "xalloc.h"

#define S_NAME_MAX   64
#define S_WORDS      (DEDUP_WINDOW / 64)
#define S_BLOB_MAGIC 'D'
#define S_BLOB_VER   2u /* 1: without gaps (still read) */

/* A range of q never seen, lo <= hi. */
typedef struct {
    uint64_t lo; /* lowest q */
    uint64_t hi; /* highest q */
} s_gap_t;

struct dedup_sensor {
    char site[S_NAME_MAX + 1];    /* site name */
    char sensor[S_NAME_MAX + 1];  /* sensor name */
    uint64_t base;                /* every q <= base seen or given up */
    uint64_t first;               /* first q seen (skips below it are not counted) */
    uint64_t top;                 /* highest q seen */
    uint64_t bits[S_WORDS];       /* q in (base, base + W] seen */
    s_gap_t gaps[DEDUP_GAPS + 1]; /* q ranges <= base never seen; +1: room to merge */
    size_t ngaps;                 /* ranges in use, at most DEDUP_GAPS between calls */
    struct dedup_sensor *next;    /* hash chain */
};
typedef struct dedup_sensor s_sensor_t;

struct dedup {
    s_sensor_t **buckets;      /* chains */
    size_t nbuckets;           /* power of two */
    size_t count;              /* sensors */
    size_t max_sensors;        /* cap */
    uint64_t reset_gap;        /* restart detection distance */
    dedup_counters_t counters; /* metrics */
};

static uint64_t s_hash(const char *site, const char *sensor)
{
    uint64_t h = 1469598103934665603ULL;
    for (const char *p = site; *p; p++)
        h = (h ^ (uint8_t)*p) * 1099511628211ULL;
    h = (h ^ 0xff) * 1099511628211ULL;
    for (const char *p = sensor; *p; p++)
        h = (h ^ (uint8_t)*p) * 1099511628211ULL;
    return h;
}

static s_sensor_t **s_slot(const dedup_t *d, const char *site, const char *sensor)
{
    s_sensor_t **pp = &d->buckets[s_hash(site, sensor) & (d->nbuckets - 1)];
    while (*pp && (strcmp((*pp)->site, site) != 0 || strcmp((*pp)->sensor, sensor) != 0))
        pp = &(*pp)->next;
    return pp;
}

static bool s_get(const s_sensor_t *s, uint64_t q)
{
    return (s->bits[(q % DEDUP_WINDOW) / 64] >> (q % 64)) & 1;
}

static void s_set(s_sensor_t *s, uint64_t q, bool on)
{
    uint64_t bit = 1ULL << (q % 64);
    if (on)
        s->bits[(q % DEDUP_WINDOW) / 64] |= bit;
    else
        s->bits[(q % DEDUP_WINDOW) / 64] &= ~bit;
}

/* Records lo..hi (above every gap) as given up unseen: extends the newest gap when
 * adjacent; past DEDUP_GAPS ranges, the two nearest ranges merge (the seen seqs
 * between them become "behind": conservative). */
static void s_gap_add(s_sensor_t *s, uint64_t lo, uint64_t hi)
{
    if (s->ngaps && s->gaps[s->ngaps - 1].hi + 1 >= lo) {
        if (hi > s->gaps[s->ngaps - 1].hi)
            s->gaps[s->ngaps - 1].hi = hi;
        return;
    }
    s->gaps[s->ngaps++] = (s_gap_t){.lo = lo, .hi = hi};
    if (s->ngaps <= DEDUP_GAPS)
        return;
    size_t best = 0;
    for (size_t i = 1; i + 1 < s->ngaps; i++)
        if (s->gaps[i + 1].lo - s->gaps[i].hi < s->gaps[best + 1].lo - s->gaps[best].hi)
            best = i;
    s->gaps[best].hi = s->gaps[best + 1].hi;
    memmove(&s->gaps[best + 1], &s->gaps[best + 2], (s->ngaps - best - 2) * sizeof(s->gaps[0]));
    s->ngaps--;
}

/* True if q (<= base) went below base without being seen. */
static bool s_in_gap(const s_sensor_t *s, uint64_t q)
{
    for (size_t i = 0; i < s->ngaps; i++)
        if (q >= s->gaps[i].lo && q <= s->gaps[i].hi)
            return true;
    return false;
}

/* The base a sensor starts with when its first q is q: half the window below q. */
static uint64_t s_start_base(uint64_t q)
{
    return q - 1 > DEDUP_WINDOW / 2 ? q - 1 - DEDUP_WINDOW / 2 : 0;
}

static void s_start(s_sensor_t *s, uint64_t q)
{
    memset(s->bits, 0, sizeof(s->bits));
    s->first = q;
    s->top = q;
    s->base = s_start_base(q);
    s->ngaps = 0;
    if (s->base) /* never seen: whether they were ever counted, nobody knows */
        s_gap_add(s, 1, s->base);
}

/* Moves base up to new_base, giving up seqs never seen. */
static void s_slide(dedup_t *d, s_sensor_t *s, uint64_t new_base)
{
    uint64_t span = new_base - s->base;
    uint64_t look = span < DEDUP_WINDOW ? span : DEDUP_WINDOW;
    for (uint64_t i = 1; i <= look; i++) {
        uint64_t q = s->base + i;
        if (!s_get(s, q)) {
            if (q >= s->first)
                d->counters.skipped++;
            s_gap_add(s, q, q);
        }
        s_set(s, q, false);
    }
    if (span > DEDUP_WINDOW) {
        uint64_t lo = s->base + DEDUP_WINDOW + 1;
        s_gap_add(s, lo, new_base);
        if (lo < s->first)
            lo = s->first;
        if (new_base >= lo)
            d->counters.skipped += new_base - lo + 1;
    }
    s->base = new_base;
}

dedup_t *dedup_new(size_t max_sensors, uint64_t reset_gap)
{
    dedup_t *d = xcalloc(1, sizeof(*d));
    d->max_sensors = max_sensors ? max_sensors : DEDUP_SENSORS_DEFAULT;
    d->reset_gap = reset_gap ? reset_gap : (1ULL << 20);
    d->nbuckets = 64;
    d->buckets = xcalloc(d->nbuckets, sizeof(*d->buckets));
    return d;
}

void dedup_destroy(dedup_t **self_p)
{
    assert(self_p);
    dedup_t *d = *self_p;
    if (d == NULL)
        return;
    for (size_t i = 0; i < d->nbuckets; i++) {
        s_sensor_t *s = d->buckets[i];
        while (s) {
            s_sensor_t *next = s->next;
            xfree(s);
            s = next;
        }
    }
    xfree(d->buckets);
    xfree(d);
    *self_p = NULL;
}

static void s_grow(dedup_t *d)
{
    size_t n = d->nbuckets * 2;
    s_sensor_t **b = xcalloc(n, sizeof(*b));
    for (size_t i = 0; i < d->nbuckets; i++) {
        s_sensor_t *s = d->buckets[i];
        while (s) {
            s_sensor_t *next = s->next;
            size_t k = s_hash(s->site, s->sensor) & (n - 1);
            s->next = b[k];
            b[k] = s;
            s = next;
        }
    }
    xfree(d->buckets);
    d->buckets = b;
    d->nbuckets = n;
}

/* The sensor's state, created on first use; NULL when the table is full. */
static s_sensor_t *s_sensor(dedup_t *d, const char *site, const char *sensor)
{
    s_sensor_t **pp = s_slot(d, site, sensor);
    if (*pp)
        return *pp;
    if (d->count >= d->max_sensors)
        return NULL;
    if (d->count + 1 > d->nbuckets) {
        s_grow(d);
        pp = s_slot(d, site, sensor);
    }
    s_sensor_t *s = xcalloc(1, sizeof(*s));
    memcpy(s->site, site, strlen(site) + 1);
    memcpy(s->sensor, sensor, strlen(sensor) + 1);
    *pp = s;
    d->count++;
    return s;
}

dedup_sensor_t *dedup_sensor(dedup_t *self, const char *site, const char *sensor)
{
    if (site == NULL || sensor == NULL || strlen(site) > S_NAME_MAX || strlen(sensor) > S_NAME_MAX)
        return NULL;
    return s_sensor(self, site, sensor);
}

dedup_result_t dedup_check(dedup_t *self, const char *site, const char *sensor, uint64_t seq)
{
    return dedup_check_at(self, dedup_sensor(self, site, sensor), seq);
}

dedup_result_t dedup_check_at(dedup_t *self, dedup_sensor_t *s, uint64_t seq)
{
    if (s == NULL) {
        self->counters.untracked++;
        return DEDUP_UNTRACKED;
    }
    uint64_t q = seq + 1;
    if (q == 0) { /* seq UINT64_MAX: nothing sane to remember */
        self->counters.duplicates++;
        return DEDUP_DUPLICATE;
    }
    if (s->top == 0) { /* never started: top is the highest q seen, and q >= 1 */
        s_start(s, q);
    } else if (s->top > q && s->top - q > self->reset_gap) {
        self->counters.resets++; /* the sensor numbers from scratch again */
        s_start(s, q);
    } else if (q <= s->base) {
        if (s_in_gap(s, q)) {
            self->counters.behind++;
            return DEDUP_BEHIND;
        }
        self->counters.duplicates++;
        return DEDUP_DUPLICATE;
    }
    if (q > s->top)
        s->top = q;
    if (q > s->base + DEDUP_WINDOW)
        s_slide(self, s, q - DEDUP_WINDOW);
    if (s_get(s, q)) {
        self->counters.duplicates++;
        return DEDUP_DUPLICATE;
    }
    s_set(s, q, true);
    while (s_get(s, s->base + 1) && s->base + 1 > s->base) {
        s_set(s, s->base + 1, false);
        s->base++;
    }
    return DEDUP_NEW;
}

uint64_t dedup_base(const dedup_t *self, const char *site, const char *sensor)
{
    const s_sensor_t *s = *s_slot(self, site, sensor);
    return s && s->base ? s->base - 1 : 0;
}

size_t dedup_sensors(const dedup_t *self)
{
    return self->count;
}

size_t dedup_max_sensors(const dedup_t *self)
{
    return self->max_sensors;
}

const dedup_counters_t *dedup_counters(const dedup_t *self)
{
    return &self->counters;
}

int dedup_forget(dedup_t *self, const char *site, const char *sensor)
{
    s_sensor_t **pp = s_slot(self, site, sensor);
    if (*pp == NULL)
        return -1;
    s_sensor_t *s = *pp;
    *pp = s->next;
    xfree(s);
    self->count--;
    return 0;
}

int dedup_foreach(const dedup_t *self, int (*cb)(const char *site, const char *sensor, void *arg),
                  void *arg)
{
    for (size_t i = 0; i < self->nbuckets; i++)
        for (const s_sensor_t *s = self->buckets[i]; s; s = s->next) {
            int rc = cb(s->site, s->sensor, arg);
            if (rc)
                return rc;
        }
    return 0;
}

/* Blob: magic, version, site len+bytes, sensor len+bytes, base, first, top (8 LE each),
 * (version 2 only) the gap count (u8) and the gaps as (lo, hi) (8 LE each), then count
 * (u16 LE) and the count non-zero words of the bitmap as (index u16 LE, word 8 LE). */
static void s_put64(uint8_t *p, uint64_t v)
{
    for (int i = 0; i < 8; i++)
        p[i] = (uint8_t)(v >> (8 * i));
}

static uint64_t s_get64(const uint8_t *p)
{
    uint64_t v = 0;
    for (int i = 0; i < 8; i++)
        v |= (uint64_t)p[i] << (8 * i);
    return v;
}

uint8_t *dedup_export(const dedup_t *self, const char *site, const char *sensor, size_t *len_p)
{
    const s_sensor_t *s = *s_slot(self, site, sensor);
    if (s == NULL)
        return NULL;
    size_t ls = strlen(s->site), ln = strlen(s->sensor);
    uint8_t *b = xmalloc(2 + 1 + ls + 1 + ln + 27 + DEDUP_GAPS * 16 + S_WORDS * 10);
    size_t n = 0;
    b[n++] = S_BLOB_MAGIC;
    b[n++] = S_BLOB_VER;
    b[n++] = (uint8_t)ls;
    memcpy(b + n, s->site, ls);
    n += ls;
    b[n++] = (uint8_t)ln;
    memcpy(b + n, s->sensor, ln);
    n += ln;
    s_put64(b + n, s->base);
    s_put64(b + n + 8, s->first);
    s_put64(b + n + 16, s->top);
    n += 24;
    b[n++] = (uint8_t)s->ngaps;
    for (size_t i = 0; i < s->ngaps; i++) {
        s_put64(b + n, s->gaps[i].lo);
        s_put64(b + n + 8, s->gaps[i].hi);
        n += 16;
    }
    size_t count_at = n;
    unsigned count = 0;
    n += 2;
    for (uint16_t i = 0; i < S_WORDS; i++) {
        if (s->bits[i] == 0)
            continue;
        b[n++] = (uint8_t)(i & 0xff);
        b[n++] = (uint8_t)(i >> 8);
        s_put64(b + n, s->bits[i]);
        n += 8;
        count++;
    }
    b[count_at] = (uint8_t)(count & 0xff);
    b[count_at + 1] = (uint8_t)(count >> 8);
    *len_p = n;
    return b;
}

int dedup_import(dedup_t *self, const uint8_t *blob, size_t len)
{
    char site[S_NAME_MAX + 1], sensor[S_NAME_MAX + 1];
    size_t n = 0;
    if (len < 4 || blob[0] != S_BLOB_MAGIC || (blob[1] != 1 && blob[1] != S_BLOB_VER))
        return -1;
    unsigned ver = blob[1];
    n = 2;
    size_t ls = blob[n++];
    if (ls == 0 || ls > S_NAME_MAX || n + ls + 1 > len)
        return -1;
    memcpy(site, blob + n, ls);
    site[ls] = 0;
    n += ls;
    size_t ln = blob[n++];
    if (ln == 0 || ln > S_NAME_MAX || n + ln + 24 + (ver >= 2) + 2 > len)
        return -1;
    memcpy(sensor, blob + n, ln);
    sensor[ln] = 0;
    n += ln;
    if (memchr(site, 0, ls) || memchr(sensor, 0, ln))
        return -1;
    uint64_t base = s_get64(blob + n), first = s_get64(blob + n + 8), top = s_get64(blob + n + 16);
    n += 24;
    if (top < base)
        return -1;
    s_gap_t gaps[DEDUP_GAPS];
    size_t ngaps = 0;
    if (ver >= 2) {
        ngaps = blob[n++];
        if (ngaps > DEDUP_GAPS || n + ngaps * 16 + 2 > len)
            return -1;
        for (size_t i = 0; i < ngaps; i++, n += 16) {
            gaps[i].lo = s_get64(blob + n);
            gaps[i].hi = s_get64(blob + n + 8);
            if (gaps[i].lo == 0 || gaps[i].lo > gaps[i].hi || gaps[i].hi > base ||
                (i > 0 && gaps[i].lo <= gaps[i - 1].hi + 1))
                return -1;
        }
    } else {
        /* no gaps recorded: all of base is "cannot tell", unless the window never slid
         * (a slide needs a seq above the start base + DEDUP_WINDOW) */
        uint64_t start = first ? s_start_base(first) : base;
        uint64_t hi = first && top <= start + DEDUP_WINDOW && start <= base ? start : base;
        if (hi) {
            gaps[0] = (s_gap_t){.lo = 1, .hi = hi};
            ngaps = 1;
        }
    }
    size_t count = blob[n] | (size_t)blob[n + 1] << 8;
    n += 2;
    if (len - n != count * 10)
        return -1;
    uint64_t bits[S_WORDS] = {0};
    for (size_t p = n; p < len; p += 10) {
        unsigned i = blob[p] | (unsigned)blob[p + 1] << 8;
        if (i >= S_WORDS)
            return -1;
        bits[i] = s_get64(blob + p + 2);
    }
    s_sensor_t *s = s_sensor(self, site, sensor);
    if (s == NULL)
        return -1;
    s->base = base;
    s->first = first;
    s->top = top;
    memcpy(s->bits, bits, sizeof(bits));
    memcpy(s->gaps, gaps, ngaps * sizeof(gaps[0]));
    s->ngaps = ngaps;
    return 0;
}
