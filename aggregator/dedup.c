/*
 * dedup - drop events already counted, by (site, sensor, sequence number)
 *
 * Sensors live on a chained hash table keyed by site and sensor name. Inside,
 * seqs are shifted by one (q = seq + 1) so that base 0 means "nothing seen"
 * even for a sensor that starts numbering at 0. Bit q % DEDUP_WINDOW of the
 * bitmap stands for q while base < q <= base + DEDUP_WINDOW.
 */
#include <assert.h>
#include <stdbool.h>
#include <string.h>

#include "dedup.h"
#include "xalloc.h"

#define S_NAME_MAX   64
#define S_WORDS      (DEDUP_WINDOW / 64)
#define S_BLOB_MAGIC 'D'
#define S_BLOB_VER   1u

typedef struct s_sensor {
    char site[S_NAME_MAX + 1];   /* site name */
    char sensor[S_NAME_MAX + 1]; /* sensor name */
    uint64_t base;               /* every q <= base seen or given up */
    uint64_t first;              /* first q seen (skips below it are not counted) */
    uint64_t top;                /* highest q seen */
    uint64_t bits[S_WORDS];      /* q in (base, base + W] seen */
    struct s_sensor *next;       /* hash chain */
} s_sensor_t;

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

static void s_start(s_sensor_t *s, uint64_t q)
{
    memset(s->bits, 0, sizeof(s->bits));
    s->first = q;
    s->top = q;
    s->base = q - 1 > DEDUP_WINDOW / 2 ? q - 1 - DEDUP_WINDOW / 2 : 0;
}

/* Moves base up to new_base, giving up seqs never seen. */
static void s_slide(dedup_t *d, s_sensor_t *s, uint64_t new_base)
{
    uint64_t span = new_base - s->base;
    uint64_t look = span < DEDUP_WINDOW ? span : DEDUP_WINDOW;
    for (uint64_t i = 1; i <= look; i++) {
        uint64_t q = s->base + i;
        if (!s_get(s, q) && q >= s->first)
            d->counters.skipped++;
        s_set(s, q, false);
    }
    if (span > DEDUP_WINDOW) {
        uint64_t lo = s->base + DEDUP_WINDOW + 1;
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
    d->max_sensors = max_sensors ? max_sensors : 8192;
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

dedup_result_t dedup_check(dedup_t *self, const char *site, const char *sensor, uint64_t seq)
{
    if (site == NULL || sensor == NULL || strlen(site) > S_NAME_MAX ||
        strlen(sensor) > S_NAME_MAX) {
        self->counters.untracked++;
        return DEDUP_UNTRACKED;
    }
    bool fresh = *s_slot(self, site, sensor) == NULL;
    s_sensor_t *s = s_sensor(self, site, sensor);
    if (s == NULL) {
        self->counters.untracked++;
        return DEDUP_UNTRACKED;
    }
    uint64_t q = seq + 1;
    if (q == 0) { /* seq UINT64_MAX: nothing sane to remember */
        self->counters.duplicates++;
        return DEDUP_DUPLICATE;
    }
    if (fresh) {
        s_start(s, q);
    } else if (s->top > q && s->top - q > self->reset_gap) {
        self->counters.resets++; /* the sensor numbers from scratch again */
        s_start(s, q);
    } else if (q <= s->base) {
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
 * count (u16 LE), then the count non-zero words of the bitmap as (index u16 LE,
 * word 8 LE). */
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
    uint8_t *b = xmalloc(2 + 1 + ls + 1 + ln + 26 + S_WORDS * 10);
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
    if (len < 4 || blob[0] != S_BLOB_MAGIC || blob[1] != S_BLOB_VER)
        return -1;
    n = 2;
    size_t ls = blob[n++];
    if (ls == 0 || ls > S_NAME_MAX || n + ls + 1 > len)
        return -1;
    memcpy(site, blob + n, ls);
    site[ls] = 0;
    n += ls;
    size_t ln = blob[n++];
    if (ln == 0 || ln > S_NAME_MAX || n + ln + 26 > len)
        return -1;
    memcpy(sensor, blob + n, ln);
    sensor[ln] = 0;
    n += ln;
    size_t count = blob[n + 24] | (size_t)blob[n + 25] << 8;
    if (memchr(site, 0, ls) || memchr(sensor, 0, ln) || len - n - 26 != count * 10)
        return -1;
    uint64_t bits[S_WORDS] = {0};
    uint64_t base = s_get64(blob + n), first = s_get64(blob + n + 8), top = s_get64(blob + n + 16);
    if (top < base)
        return -1;
    for (size_t p = n + 26; p < len; p += 10) {
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
    return 0;
}
