/*
 * window - sliding-window event counts per key, compact enough for millions
 *
 * A key is (scope, tally, 64-bit fingerprint). The scope is a bs_scope_t; the
 * tally says which events were counted (ingest gives rules with different
 * event filters, e.g. "rule-violating bounces only", their own tally). For
 * every key the window keeps a ring of per-bucket counts covering the longest
 * rule window (span), first/last event time, the sites that reported it with
 * per-site counts, and a display text.
 *
 * Store: one open-addressing hash table (linear probing, backward-shift
 * deletion, capacity any integer, grown by 1.5x at 80% load) of fixed-size
 * entries: a 40-byte header plus one uint16 counter per bucket (saturating).
 * A key seen by one site is one entry. When a second site reports it, the key
 * gets one extra entry per site (same layout, keyed by the site index), linked
 * into a chain from the key's entry: per-site counts are then exact in every
 * window. Up to WINDOW_SITES_MAX sites are tracked exactly; further sites
 * share one "other" series. Sites are interned to uint16 indexes. Display text
 * (capped at WINDOW_TEXT_MAX bytes) is stored only for keys that reach
 * text_min_events in the span (default 1: sensors may send the text only
 * with a key's first event), in separate slabs of 16-, 32- and 64-byte slots
 * (the smallest that holds it). A one-byte hash tag per slot, kept apart from the
 * entries, lets a probe skip non-matching slots without touching them.
 *
 * Window semantics: bucket b holds events with time in [b*B, (b+1)*B). A
 * window of W ms at time now sums the W/B buckets ending with the bucket that
 * holds now, so it covers between W-B and W ms of history. Events may arrive
 * out of order; an event older than the key's ring is refused (counted).
 * Keys with no event in the span expire lazily (on their next event) and by
 * window_sweep(), which the event loop calls with a work budget.
 *
 * Pure logic: no I/O, the time is always an argument. Not thread-safe (one
 * event loop owns it). Pointers and texts returned are borrowed and valid
 * until the next call that changes the window.
 */
#ifndef BS_WINDOW_H
#define BS_WINDOW_H

#include <stddef.h>
#include <stdint.h>

typedef struct window window_t;

/* Distinct sites tracked exactly per key; more share the "other" series. */
#define WINDOW_SITES_MAX 16
/* Site index of the "other" series (sites beyond WINDOW_SITES_MAX). */
#define WINDOW_SITE_OTHER 0xFFFEu
/* Site index meaning "all sites" (the key's total) in queries. */
#define WINDOW_SITE_ALL 0xFFFFu
/* Largest number of interned sites (indexes 0 .. WINDOW_SITE_LIMIT-1). */
#define WINDOW_SITE_LIMIT 0xFFF0u
/* Longest site name kept, in bytes. */
#define WINDOW_SITE_NAME_MAX 63
/* Longest display text kept per key, in bytes (longer texts are cut). */
#define WINDOW_TEXT_MAX 63

/* Construction parameters; zero fields take the documented defaults. */
typedef struct {
    int64_t bucket_ms;        /* resolution, >= 1000, default 10 s */
    int64_t span_ms;          /* longest window (multiple of bucket_ms), default 300 s */
    size_t initial_entries;   /* presize for this many entries (untouched pages cost no RSS) */
    size_t max_entries;       /* hard cap on entries (keys + per-site series), 0 = none */
    uint32_t text_min_events; /* keep display text once a key has this many events, default 1 */
    uint64_t seed;            /* hash seed (random in the daemon, fixed in tests) */
    int track_dirty;          /* 1: remember changed keys for window_dirty_take() */
    int populate;             /* 1: back the table with memory when it is made or grown, not
                                 page by page as keys arrive (the daemon: no page faults while
                                 counting) */
} window_config_t;

/* A counted key. */
typedef struct {
    uint8_t scope; /* bs_scope_t, never 0 */
    uint8_t tally; /* which event filter counted it (0 for the default) */
    uint64_t fp;   /* fingerprint of the normalised text */
} window_key_t;

/* One site's events in a window. */
typedef struct {
    uint16_t site;   /* site index, or WINDOW_SITE_OTHER */
    uint32_t events; /* its events in the window */
} window_share_t;

/* What a key looks like in one window at one time. */
typedef struct {
    uint32_t events;                             /* events in the window */
    uint32_t sites;                              /* sites with events ("other" counts as 1) */
    uint32_t nshares;                            /* entries used in shares */
    window_share_t shares[WINDOW_SITES_MAX + 1]; /* per-site counts, largest first */
    int64_t first_ms;                            /* first event in the window (bucket precision) */
    int64_t last_ms;                             /* latest event */
    const char *text;                            /* display text, "" if none kept (borrowed) */
} window_stats_t;

/* One row of window_top(). */
typedef struct {
    window_key_t key; /* the key */
    uint32_t events;  /* its events in the asked window */
} window_top_t;

/* Counters for metrics. */
typedef struct {
    uint64_t keys_created;  /* keys first seen (or seen again after expiry) */
    uint64_t keys_expired;  /* keys removed by sweep or reset when idle */
    uint64_t refused_full;  /* events or series refused: max_entries reached */
    uint64_t refused_old;   /* events older than the key's ring */
    uint64_t sites_folded;  /* tracked sites folded into "other" for a new one */
    uint64_t refused_sites; /* sites not interned: site table full */
} window_counters_t;

/* A new empty window; cfg may be NULL for defaults. Asserts on invalid values. */
window_t *window_new(const window_config_t *cfg);
/* Frees the window; *self_p becomes NULL; safe twice. */
void window_destroy(window_t **self_p);

/* Bucket resolution and span actually in use. */
int64_t window_bucket_ms(const window_t *self);
int64_t window_span_ms(const window_t *self);

/* The index of site name (interned on first use); -1 if the table is full or the name empty. */
int window_site_intern(window_t *self, const char *name);
/* The index of a known site name, or -1. */
int window_site_find(const window_t *self, const char *name);
/* The name of a site index ("other" for WINDOW_SITE_OTHER, "" if unknown; borrowed). */
const char *window_site_name(const window_t *self, unsigned site);
/* Number of interned sites. */
size_t window_sites(const window_t *self);

/* Counts one event of key from site at time_ms; text (len bytes, may be NULL) is the
 * display text. Returns 0 when counted, -1 when refused (too old for the key, or full). */
int window_add(window_t *self, const window_key_t *key, unsigned site, int64_t time_ms,
               const char *text, size_t text_len);

/* The events in a key's whole ring (the longest window) after window_add_count(): no
 * window count can exceed them, so a caller can skip every rule whose min_events they
 * do not reach without computing a window sum. */
typedef struct {
    uint32_t total; /* every site: bounds any count for WINDOW_SITE_ALL */
    uint32_t site;  /* the event's site: bounds any count for that site */
} window_rings_t;

/* Where a key's entries for one site lie: their hashes, computed once by window_locate()
 * for the stages of a batch (window_prefetch_tags(), window_prefetch(),
 * window_add_count()), valid for the life of the window, and the slots window_prefetch()
 * found their tags at: hints, which window_add_count() checks against the entry there, so
 * a change of the table in between costs only a probe. */
typedef struct {
    window_key_t key;   /* the key located */
    uint64_t total;     /* hash of its total */
    uint64_t series;    /* hash of its series for site (total when site is WINDOW_SITE_ALL) */
    uint16_t site;      /* the site, or WINDOW_SITE_ALL: the total only */
    uint32_t total_at;  /* slot hint for the total (UINT32_MAX: none) */
    uint32_t series_at; /* slot hint for the series (UINT32_MAX: none) */
} window_loc_t;

/* Computes loc for key at site (WINDOW_SITE_ALL or an unknown index: the total only). */
void window_locate(const window_t *self, const window_key_t *key, unsigned site, window_loc_t *loc);

/* window_add() that also writes the key's ring totals after counting to *rings_p (may
 * be NULL). loc (may be NULL) is the key's window_locate() for this site, which saves
 * computing it again (one for another key or site is ignored). */
int window_add_count(window_t *self, const window_key_t *key, unsigned site,
                     const window_loc_t *loc, int64_t time_ms, const char *text, size_t text_len,
                     window_rings_t *rings_p);

/* Hints the CPU to fetch the tag bytes that lead to a located key's total and to its
 * series: the first of two stages, so a batch can ask for all its keys' tags, then
 * (window_prefetch) for the slots they point at, then count. No effect on the window's
 * state. */
void window_prefetch_tags(const window_t *self, const window_loc_t *loc);
/* The second stage: the table slots themselves (found through the tags, which should be
 * in cache by now: otherwise this waits for them), noted in loc as hints. */
void window_prefetch(const window_t *self, window_loc_t *loc);
/* After window_prefetch() (and once the slot is in cache): the located key's ring total as
 * it stands, read through loc's hint, or 0 when the hint no longer holds. An early look for
 * a caller that prefetches what counting the key will need next (it is not the count: that
 * is window_add_count()'s). */
uint32_t window_loc_ring(const window_t *self, const window_loc_t *loc);

/* Events of key in the last window_ms at now_ms, for one site or WINDOW_SITE_ALL. */
uint32_t window_count(const window_t *self, const window_key_t *key, unsigned site,
                      int64_t window_ms, int64_t now_ms);

/* Full view of key in the last window_ms at now_ms for site (or WINDOW_SITE_ALL): events,
 * distinct sites, shares. Returns 0, or -1 if the key is unknown (out zeroed). */
int window_stats(const window_t *self, const window_key_t *key, unsigned site, int64_t window_ms,
                 int64_t now_ms, window_stats_t *out);

/* Expires idle keys, examining at most budget table slots from where the last call
 * stopped. Returns the number of keys expired. */
size_t window_sweep(window_t *self, int64_t now_ms, size_t budget);

/* The n keys of (scope, tally) with the most events in window_ms at now_ms, largest first,
 * written to out; returns how many. Scans the whole table (for the CLI, not per event). */
size_t window_top(const window_t *self, uint8_t scope, uint8_t tally, int64_t window_ms,
                  int64_t now_ms, window_top_t *out, size_t n);

/* Keys tracked (not counting per-site series). */
size_t window_keys(const window_t *self);
/* Table entries used (keys + per-site series). */
size_t window_entries(const window_t *self);
/* Bytes the window has allocated (table, text slab, sites). */
size_t window_memory(const window_t *self);
/* Metrics (borrowed). */
const window_counters_t *window_counters(const window_t *self);

/* Calls cb for every key (not per-site series); stops and returns cb's value when it
 * is non-zero, else 0. cb must not change the window. */
int window_foreach(const window_t *self, int (*cb)(const window_key_t *key, void *arg), void *arg);

/* With track_dirty: moves up to max keys changed (or expired) since they were last
 * taken into out, oldest changes first; returns how many. A taken key that window_export() no
 * longer finds was expired: the store deletes it. */
size_t window_dirty_take(window_t *self, window_key_t *out, size_t max);

/* Changed keys waiting to be taken, oldest first. */
size_t window_dirty_pending(const window_t *self);
/* Tells the window what time it is and how far ahead of it an event time may be (the
 * ingest's max_skew). A key whose newest bucket lies further ahead was counted under a
 * clock that has since stepped back: its next event starts it over (instead of being
 * refused as older than its ring until the clock catches up), and the sweep removes it. */
void window_set_now(window_t *self, int64_t now_ms, int64_t future_ms);

/* With track_dirty: marks every key changed, so the next flush writes them all (after a
 * failed write, whose keys are not dirty any more); returns how many were not already. */
size_t window_dirty_all(window_t *self);

/* The key's full state (counts per site by site name, times, text) as a compact blob
 * owned by the caller (xfree), length in *len_p; NULL if the key is unknown. */
uint8_t *window_export(const window_t *self, const window_key_t *key, size_t *len_p);

/* Called by window_dirty_export() for each key taken: blob (borrowed, valid during the
 * call) is what window_export() would return, or NULL when the key expired (delete it). */
typedef void window_export_fn(const window_key_t *key, const uint8_t *blob, size_t len, void *arg);
/* window_dirty_take() and window_export() of up to max keys, oldest changes first, in
 * one walk of each key's entries (with the table slots asked for ahead of use): the
 * write-behind flush, in one call (window_dirty_copy() then window_copy_encode(); the
 * daemon makes the copy on its event loop and has the store's writer thread encode it).
 * cb must not change the window. Returns how many keys were taken. */
size_t window_dirty_export(window_t *self, size_t max, window_export_fn *cb, void *arg);
/* The flush's copy of changed keys: what window_dirty_export() encodes, taken on the
 * event loop by window_dirty_copy() (a memcpy of each key's entries while they are in
 * the core's cache) and encoded later by window_copy_encode(), which reads the copy
 * alone: another thread may encode it (the store's writer does) while the window goes
 * on changing. A copy holds one window's keys at a time. */
typedef struct window_copy window_copy_t;

/* A new empty copy. */
window_copy_t *window_copy_new(void);
/* Frees the copy; *self_p becomes NULL; safe twice. */
void window_copy_destroy(window_copy_t **self_p);
/* Drops the keys copied, keeping the memory for the next. */
void window_copy_clear(window_copy_t *self);
/* Keys copied since the last clear. */
size_t window_copy_keys(const window_copy_t *self);
/* window_dirty_export() of up to max keys into copy (appended): returns how many keys
 * were taken. */
size_t window_dirty_copy(window_t *self, size_t max, window_copy_t *copy);
/* Calls cb for every key in copy, in the order taken, with what window_export() gave
 * when the key was copied (NULL: expired). Does not clear the copy. */
void window_copy_encode(window_copy_t *self, window_export_fn *cb, void *arg);

/* Restores a key from window_export() output, replacing any state it had. Keys idle
 * at now_ms are skipped. Returns 0, or -1 for a malformed blob or another bucket_ms. */
int window_import(window_t *self, const uint8_t *blob, size_t len, int64_t now_ms);
/* What window_import_mapped() returns for a key idle at now_ms (nothing restored; any
 * state the key had is gone): its stored record is of no more use, and no sweep will
 * see the key to delete it, so the caller deletes it. */
#define WINDOW_IMPORT_IDLE 2
/* window_import() with the key's tally translated through tally_map (256 entries; NULL:
 * as stored): a blob whose tally maps to 0xFF is skipped (its filter is counted no more, or
 * by another tally), returning 1; a key idle at now_ms is skipped, returning
 * WINDOW_IMPORT_IDLE (window_import() returns 0 for it). Either way, stored (may be NULL)
 * gets the key as the blob has it: the key of its record. */
int window_import_mapped(window_t *self, const uint8_t *blob, size_t len, int64_t now_ms,
                         const uint8_t *tally_map, window_key_t *stored);

#endif
