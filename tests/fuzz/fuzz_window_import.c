/*
 * fuzz_window_import - libFuzzer target: window_import() of any blob
 *
 * Window blobs come back from LevelDB when the aggregator starts (store.c,
 * server.c s_restore_window), and a disk or a bug may have damaged them: a
 * corrupt blob must be refused, and whatever is accepted must leave the window
 * sound. The first input byte picks the window: bit 0 a 1 s resolution over
 * 60 s instead of 10 s over 300 s, bit 1 a cap of a few entries, bit 2 keys
 * and sites counted before the import (so it replaces state); the rest is the
 * blob. It is imported twice (the second time over itself), then every key is
 * read back as the daemon would: window_count, window_stats for the total and
 * each of its sites, window_top, window_export; an event is counted on it,
 * and the window is swept and flushed (window_dirty_export, window_dirty_copy).
 *
 * Oracle: an accepted key exports to a blob that a fresh window imports and
 * exports again byte for byte (what the store writes it must read back).
 */
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "window.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define S_NOW (1700000000LL * 1000) /* the clock of the restore, fixed */

/* what the reads add up to: kept so that they are not optimised away */
static volatile size_t s_sink;

/* The window the first byte asks for. */
static window_t *s_window(uint8_t how)
{
    window_config_t cfg = {
        .bucket_ms = (how & 1) ? 1000 : 10000,
        .span_ms = (how & 1) ? 60000 : 300000,
        .initial_entries = 16,
        .max_entries = (how & 2) ? 6 : 0,
        .seed = 0x5eed,
        .track_dirty = 1,
    };
    return window_new(&cfg);
}

/* Keys seen by window_foreach(). */
typedef struct {
    window_key_t keys[64];
    size_t n;
} s_keys_t;

static int s_collect(const window_key_t *key, void *arg)
{
    s_keys_t *k = arg;
    if (k->n < sizeof(k->keys) / sizeof(k->keys[0]))
        k->keys[k->n++] = *key;
    return 0;
}

static void s_export_cb(const window_key_t *key, const uint8_t *blob, size_t len, void *arg)
{
    size_t *sink = arg;
    *sink += key->fp + (blob ? len + blob[len - 1] : 0);
}

/* Exported, imported into a fresh window and exported again: the same bytes. */
static void s_roundtrip(uint8_t how, const uint8_t *blob, size_t len)
{
    window_t *w = s_window(how & 1);
    if (window_import(w, blob, len, S_NOW) != 0)
        abort();
    s_keys_t k = {.n = 0};
    window_foreach(w, s_collect, &k);
    if (k.n != 1)
        abort();
    size_t len2 = 0;
    uint8_t *again = window_export(w, &k.keys[0], &len2);
    if (again == NULL || len2 != len || memcmp(again, blob, len) != 0)
        abort();
    free(again);
    window_destroy(&w);
}

/* Reads every key as the control handler and the store do. */
static void s_read_back(window_t *w, uint8_t how, int64_t now)
{
    size_t sink = window_keys(w) + window_entries(w) + window_memory(w) + window_sites(w);
    s_keys_t k = {.n = 0};
    window_foreach(w, s_collect, &k);
    for (size_t i = 0; i < k.n; i++) {
        const window_key_t *key = &k.keys[i];
        window_stats_t st;
        uint32_t all = window_count(w, key, WINDOW_SITE_ALL, window_span_ms(w), now);
        if (window_stats(w, key, WINDOW_SITE_ALL, window_span_ms(w), now, &st) != 0 ||
            st.events != all)
            abort();
        sink += strlen(st.text) + (size_t)st.first_ms + (size_t)st.last_ms + st.sites;
        for (uint32_t s = 0; s < st.nshares; s++) {
            window_stats_t one;
            sink += window_count(w, key, st.shares[s].site, 60000, now);
            sink += strlen(window_site_name(w, st.shares[s].site));
            if (window_stats(w, key, st.shares[s].site, 60000, now, &one) == 0)
                sink += one.events;
        }
        size_t len = 0;
        uint8_t *blob = window_export(w, key, &len);
        if (blob == NULL)
            abort();
        s_roundtrip(how, blob, len);
        free(blob);
    }
    window_top_t top[8];
    for (uint8_t scope = 1; scope < 9; scope++)
        sink += window_top(w, scope, 0, window_span_ms(w), now, top, 8);
    s_sink = sink;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size == 0)
        return 0;
    uint8_t how = data[0];
    const uint8_t *blob = data + 1;
    size_t len = size - 1;
    window_t *w = s_window(how);
    if (how & 4) {
        static const char *const sites[] = {"site-a", "site-b", "site-c"};
        for (int i = 0; i < 12; i++) {
            window_key_t key = {.scope = (uint8_t)(1 + i % 3), .tally = 0, .fp = 0x1111u * (i % 4)};
            int site = window_site_intern(w, sites[i % 3]);
            window_add(w, &key, (unsigned)site, S_NOW - 1000 * i, "some text", 9);
        }
    }
    size_t sink = 0;
    /* blobs with the bytes right behind them: a reader that overruns is caught */
    uint8_t *copy = malloc(len ? len : 1);
    memcpy(copy, blob, len);
    int rc = window_import(w, copy, len, S_NOW);
    if (rc == 0)
        rc = window_import(w, copy, len, S_NOW); /* the same key again: replaced */
    free(copy);
    s_read_back(w, how, S_NOW);
    /* the imported keys count on; then time passes */
    s_keys_t k = {.n = 0};
    window_foreach(w, s_collect, &k);
    for (size_t i = 0; i < k.n; i++) {
        int site = window_site_intern(w, (i & 1) ? "site-z" : "site-a");
        if (site >= 0)
            window_add(w, &k.keys[i], (unsigned)site, S_NOW, "later", 5);
    }
    s_read_back(w, how, S_NOW + window_span_ms(w) / 2);
    sink += window_dirty_export(w, 1000, s_export_cb, &sink);
    window_copy_t *c = window_copy_new();
    /* a key may lead the clock by less than a ring (window_import): two spans on, all idle */
    window_sweep(w, S_NOW + 2 * window_span_ms(w) + 2 * window_bucket_ms(w), 1u << 20);
    sink += window_dirty_copy(w, 1000, c);
    window_copy_encode(c, s_export_cb, &sink);
    window_copy_destroy(&c);
    if (window_keys(w) != 0)
        abort(); /* every key idle after the span: swept */
    s_sink = sink + (size_t)rc;
    window_destroy(&w);
    return 0;
}
