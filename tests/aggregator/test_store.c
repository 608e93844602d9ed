/*
 * test_store - the aggregator's LevelDB store, on a real database in a mkdtemp dir
 *
 * One behaviour per test: epoch creation and survival, decisions and the
 * sequence log written together and read back, changes-since from the stored
 * log and its pruning, a lost log means a new epoch without old decisions,
 * the host going down under a run moves the sequence on (a daemon crash does not),
 * written-behind window blobs, allowlist entries, sites, tombstones and sensor records;
 * the data directory lost while open: noticed (store_check), recreated with the epoch, seq
 * and what the caller writes again, another store or other files in its place left alone;
 * a rebuild cut short before the refill means a new epoch at the next start; a look that
 * fails (EIO) is no loss, and a store not lost is never recreated; a directory removed
 * but still mounted, or one where no file can be synced, is refused before anything is
 * closed.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <cmocka.h>

#include "kv.h"
#include "store.h"
#include "xalloc.h"

typedef struct {
    char dir[64]; /* the database directory */
} fixture_t;

/* A path whose stat() fails with EIO (NULL: none): a look that fails, as on NFS (ESTALE,
 * EIO), FUSE or under memory pressure. This stat() takes the place of libc's in the whole
 * test, the store's calls included. */
static const char *s_stat_eio;
/* A directory whose stat() says it has no link left (NULL: none): removed, and still the
 * path's through a bind mount of it. */
static const char *s_stat_unlinked;
/* fsync() fails with EIO (as where no file can be made or synced); LevelDB syncs with
 * fdatasync(), so this is the store's own look only. */
static bool s_fsync_eio;

int stat(const char *restrict path, struct stat *restrict st)
{
    if (s_stat_eio != NULL && strcmp(path, s_stat_eio) == 0) {
        errno = EIO;
        return -1;
    }
    int rc = (int)syscall(SYS_newfstatat, AT_FDCWD, path, st, 0);
    if (rc == 0 && s_stat_unlinked != NULL && strcmp(path, s_stat_unlinked) == 0)
        st->st_nlink = 0;
    return rc;
}

int fsync(int fd)
{
    if (s_fsync_eio) {
        errno = EIO;
        return -1;
    }
    return (int)syscall(SYS_fsync, fd);
}

static int s_setup(void **state)
{
    fixture_t *f = xcalloc(1, sizeof(*f));
    char tmpl[] = "/tmp/test_store.XXXXXX";
    assert_non_null(mkdtemp(tmpl));
    snprintf(f->dir, sizeof(f->dir), "%s/db", tmpl);
    *state = f;
    return 0;
}

static int s_teardown(void **state)
{
    fixture_t *f = *state;
    char cmd[160];
    snprintf(cmd, sizeof(cmd), "rm -rf '%.*s'", (int)(strrchr(f->dir, '/') - f->dir), f->dir);
    assert_int_equal(system(cmd), 0);
    xfree(f);
    return 0;
}

static decision_change_t s_change(uint64_t epoch, uint64_t seq, const char *id,
                                  decision_kind_t kind, const char *value)
{
    decision_change_t c;
    memset(&c, 0, sizeof(c));
    c.kind = kind;
    c.why = kind == DECISION_REMOVE ? DECISION_WHY_EXPIRED : DECISION_WHY_NEW;
    c.seq = seq;
    c.epoch = epoch;
    decision_t *d = &c.decision;
    snprintf(d->id, sizeof(d->id), "%s", id);
    d->scope = BS_SCOPE_SUBJECT;
    d->fp = 0x1234567890abcdefULL + seq;
    snprintf(d->value, sizeof(d->value), "%s", value);
    d->action = BS_ACTION_REJECT;
    d->reach = BS_REACH_FLEET;
    d->created_ms = 1000;
    d->expires_ms = 2000;
    d->origin = BS_ORIGIN_RULE;
    snprintf(d->origin_who, sizeof(d->origin_who), "fleet_subject");
    d->seq = seq;
    d->epoch = epoch;
    d->has_evidence = true;
    d->evidence.events = 450;
    d->evidence.sites = 3;
    d->evidence.nshares = 1;
    snprintf(d->evidence.shares[0].site, sizeof(d->evidence.shares[0].site), "site1");
    d->evidence.shares[0].events = 150;
    return c;
}

static void test_new_database_gets_epoch_that_survives_reopen(void **state)
{
    fixture_t *f = *state;
    bool created = false;
    store_t *s = store_open(f->dir, false, &created);
    assert_non_null(s);
    assert_true(created);
    uint64_t epoch = store_epoch(s);
    assert_true(epoch != 0);
    assert_int_equal(store_seq(s), 0);
    store_close(&s);
    assert_null(s);
    store_close(&s); /* safe twice */
    s = store_open(f->dir, false, &created);
    assert_false(created);
    assert_true(store_epoch(s) == epoch);
    store_close(&s);
}

typedef struct {
    decision_t got[8];
    size_t n;
} loaded_t;

static int s_collect(const decision_t *d, void *arg)
{
    loaded_t *l = arg;
    if (l->n < 8)
        l->got[l->n++] = *d;
    return 0;
}

static void test_changes_are_stored_with_seq_and_read_back(void **state)
{
    fixture_t *f = *state;
    store_t *s = store_open(f->dir, true, NULL);
    uint64_t e = store_epoch(s);
    decision_change_t c[3] = {
        s_change(e, 1, "AAAAAAAA", DECISION_UPSERT, "wave one"),
        s_change(e, 2, "BBBBBBBB", DECISION_UPSERT, "wave two"),
        s_change(e, 3, "AAAAAAAA", DECISION_REMOVE, "wave one"),
    };
    c[1].decision.mirrored = true; /* a copy of the failover peer's */
    assert_int_equal(store_changes_write(s, c, 3), 0);
    assert_int_equal(store_seq(s), 3);
    store_close(&s);

    s = store_open(f->dir, true, NULL);
    assert_int_equal(store_seq(s), 3);
    loaded_t l = {0};
    assert_int_equal(store_decisions_load(s, s_collect, &l), 1);
    assert_string_equal(l.got[0].id, "BBBBBBBB");
    assert_string_equal(l.got[0].value, "wave two");
    assert_true(l.got[0].fp == c[1].decision.fp);
    assert_int_equal(l.got[0].seq, 2);
    assert_true(l.got[0].epoch == e);
    assert_true(l.got[0].has_evidence);
    assert_int_equal(l.got[0].evidence.events, 450);
    assert_string_equal(l.got[0].evidence.shares[0].site, "site1");
    assert_true(l.got[0].mirrored);
    store_close(&s);
}

typedef struct {
    uint64_t seqs[16];
    size_t n;
} seqs_t;

static int s_seqs(const decision_change_t *c, void *arg)
{
    seqs_t *x = arg;
    if (x->n < 16)
        x->seqs[x->n++] = c->seq;
    return 0;
}

static void test_changes_since_reads_the_stored_log_until_pruned(void **state)
{
    fixture_t *f = *state;
    store_t *s = store_open(f->dir, false, NULL);
    uint64_t e = store_epoch(s);
    for (uint64_t q = 1; q <= 5; q++) {
        char id[9];
        snprintf(id, sizeof(id), "ID%06llu", (unsigned long long)q);
        decision_change_t c = s_change(e, q, id, DECISION_UPSERT, "w");
        assert_int_equal(store_changes_write(s, &c, 1), 0);
    }
    seqs_t x = {0};
    assert_int_equal(store_changes_since(s, 2, s_seqs, &x), 0);
    assert_int_equal(x.n, 3);
    assert_int_equal(x.seqs[0], 3);
    assert_int_equal(x.seqs[2], 5);
    x.n = 0;
    assert_int_equal(store_changes_since(s, 5, s_seqs, &x), 0); /* up to date: nothing */
    assert_int_equal(x.n, 0);
    assert_int_equal(store_changes_since(s, 6, s_seqs, &x), -1); /* from the future */

    store_log_prune(s, 3);
    assert_int_equal(store_flush(s), 0);
    assert_int_equal(store_log_floor(s), 3);
    assert_int_equal(store_changes_since(s, 2, s_seqs, &x), -1); /* older than the log */
    x.n = 0;
    assert_int_equal(store_changes_since(s, 3, s_seqs, &x), 0);
    assert_int_equal(x.n, 2);
    store_close(&s);
    /* a damaged key sorting after the log (found by fuzz_store) is not read: the answer
     * ends at seq, and the changes are still answered */
    kv_t *kv = kv_open(f->dir, 0, NULL);
    assert_non_null(kv);
    assert_int_equal(kv_put(kv, "q/\xff\xff\xff\xff\xff\xff\xff\xff\xff", 11, "junk", 4), 0);
    kv_close(&kv);
    /* the floor is found again after a reopen */
    s = store_open(f->dir, false, NULL);
    x.n = 0;
    assert_int_equal(store_changes_since(s, 3, s_seqs, &x), 0);
    assert_int_equal(x.n, 2);
    assert_int_equal(store_log_floor(s), 3);
    store_close(&s);
}

static void test_lost_log_means_new_epoch_and_no_old_decisions(void **state)
{
    fixture_t *f = *state;
    store_t *s = store_open(f->dir, false, NULL);
    uint64_t e = store_epoch(s);
    decision_change_t c = s_change(e, 1, "CCCCCCCC", DECISION_UPSERT, "old");
    assert_int_equal(store_changes_write(s, &c, 1), 0);
    store_close(&s);

    kv_t *kv = kv_open(f->dir, 0, NULL);
    assert_non_null(kv);
    assert_int_equal(kv_del(kv, "m/epoch", 7), 0);
    kv_close(&kv);

    bool created = false;
    s = store_open(f->dir, false, &created);
    assert_true(created);
    assert_true(store_epoch(s) != e);
    assert_int_equal(store_seq(s), 0);
    loaded_t l = {0};
    assert_int_equal(store_decisions_load(s, s_collect, &l), 0);
    store_close(&s);
}

typedef struct {
    size_t n;
    size_t bytes;
} blobs_t;

static int s_blob(const uint8_t *blob, size_t len, void *arg)
{
    blobs_t *b = arg;
    b->n++;
    b->bytes += len;
    return 0;
}

static void test_window_blobs_are_written_behind(void **state)
{
    fixture_t *f = *state;
    store_t *s = store_open(f->dir, false, NULL);
    window_key_t k1 = {.scope = BS_SCOPE_SUBJECT, .tally = 0, .fp = 1};
    window_key_t k2 = {.scope = BS_SCOPE_CLIENT_IP, .tally = 1, .fp = 2};
    store_window_queue(s, &k1, (const uint8_t *)"abc", 3);
    store_window_queue(s, &k2, (const uint8_t *)"defg", 4);
    assert_int_equal(store_pending(s), 2);
    blobs_t b = {0};
    assert_int_equal(store_window_load(s, s_blob, &b), 0); /* not written yet */
    assert_int_equal(store_flush(s), 0);
    assert_int_equal(store_pending(s), 0);
    assert_int_equal(store_window_load(s, s_blob, &b), 2);
    assert_int_equal(b.bytes, 7);
    store_window_queue(s, &k1, NULL, 0); /* expired key: deleted */
    store_close(&s);                     /* close flushes */
    s = store_open(f->dir, false, NULL);
    b = (blobs_t){0};
    assert_int_equal(store_window_load(s, s_blob, &b), 1);
    assert_int_equal(b.bytes, 4);
    store_close(&s);
}

/* Window records live in a database of their own (decision writes do not queue behind
 * flush batches); a data directory from before it has them in the main one, and they
 * move at the next start, more than one move batch of them, and only once. */
static void test_window_records_of_an_older_directory_move(void **state)
{
    fixture_t *f = *state;
    enum { OLD = 10000 };
    kv_t *kv = kv_open(f->dir, 1, NULL);
    assert_non_null(kv);
    for (uint64_t i = 0; i < OLD; i++) {
        uint8_t key[12] = {'w', '/', BS_SCOPE_SUBJECT, 0};
        kv_u64_put(key + 4, i);
        assert_int_equal(kv_put(kv, key, sizeof(key), "old", 3), 0);
    }
    kv_close(&kv);
    store_t *s = store_open(f->dir, false, NULL);
    assert_non_null(s);
    blobs_t b = {0};
    assert_int_equal(store_window_load(s, s_blob, &b), OLD);
    assert_int_equal(b.bytes, 3 * OLD);
    /* a newer value of a moved key, written the new way, wins over nothing left behind */
    window_key_t k0 = {.scope = BS_SCOPE_SUBJECT, .tally = 0, .fp = 0};
    store_window_queue(s, &k0, (const uint8_t *)"newer", 5);
    store_close(&s);
    kv = kv_open(f->dir, 0, NULL);
    kv_iter_t *it = kv_iter_new(kv, "w/", 2);
    assert_int_equal(kv_iter_next(it), 0); /* none left in the main database */
    kv_iter_destroy(&it);
    kv_close(&kv);
    s = store_open(f->dir, false, NULL);
    b = (blobs_t){0};
    assert_int_equal(store_window_load(s, s_blob, &b), OLD);
    assert_int_equal(b.bytes, 3 * OLD + 2);
    store_close(&s);
}

/* The daemon's flush hands batches to the store's writer thread: many batches in a row
 * (more than its queue holds) are all written, in the order handed over (the last value
 * of a key wins, a delete after a put deletes), a synced hand-over puts them on disk, and
 * store_flush and store_close write what the thread still holds first. */
static void test_flush_behind_writes_in_order(void **state)
{
    fixture_t *f = *state;
    store_t *s = store_open(f->dir, true, NULL);
    enum { ROUNDS = 40, KEYS = 50 };
    for (int r = 0; r < ROUNDS; r++) {
        for (int k = 0; k < KEYS; k++) {
            window_key_t wk = {.scope = BS_SCOPE_SUBJECT, .tally = 0, .fp = (uint64_t)k};
            uint8_t blob[8];
            memset(blob, 'a' + r % 26, sizeof(blob));
            /* the blob's length says the round: the last round's must win */
            store_window_queue(s, &wk, blob, (size_t)1 + (size_t)r % 8);
        }
        if (r == ROUNDS - 1) {
            window_key_t gone = {.scope = BS_SCOPE_SUBJECT, .tally = 0, .fp = 0};
            store_window_queue(s, &gone, NULL, 0); /* deleted after its puts */
        }
        assert_int_equal(store_flush_behind(s, r % 10 == 9), 0);
        assert_int_equal(store_pending(s), 0);
    }
    assert_int_equal(store_flush(s), 0); /* waits for the writer */
    blobs_t b = {0};
    assert_int_equal(store_window_load(s, s_blob, &b), KEYS - 1);
    assert_int_equal(b.bytes, (KEYS - 1) * (1 + (ROUNDS - 1) % 8));
    /* handed over, then closed at once: written before the clean mark */
    window_key_t k9 = {.scope = BS_SCOPE_CLIENT_IP, .tally = 0, .fp = 9};
    store_window_queue(s, &k9, (const uint8_t *)"0123456789", 10);
    assert_int_equal(store_flush_behind(s, false), 0);
    store_close(&s);
    s = store_open(f->dir, true, NULL);
    b = (blobs_t){0};
    assert_int_equal(store_window_load(s, s_blob, &b), KEYS);
    assert_int_equal(b.bytes, (KEYS - 1) * (1 + (ROUNDS - 1) % 8) + 10);
    /* a synced hand-over with nothing queued still syncs (the decisions before it) */
    assert_int_equal(store_flush_behind(s, true), 0);
    assert_int_equal(store_sync(s), 0);
    store_close(&s);
}

typedef struct {
    uint8_t *blob[64]; /* the blobs loaded, in key order */
    size_t len[64];
    size_t n;
} loaded_blobs_t;

static int s_keep_blob(const uint8_t *blob, size_t len, void *arg)
{
    loaded_blobs_t *l = arg;
    assert_true(l->n < 64);
    l->blob[l->n] = xmalloc(len);
    memcpy(l->blob[l->n], blob, len);
    l->len[l->n++] = len;
    return 0;
}

/* The flush copies window keys on the event loop and the writer thread encodes them: what
 * is stored is window_export()'s blob of each key as last copied, and a blob queued after
 * a copy of the same key is written after it (it wins). */
static void test_window_copies_are_encoded_by_the_writer(void **state)
{
    fixture_t *f = *state;
    store_t *s = store_open(f->dir, true, NULL);
    window_config_t cfg = {.bucket_ms = 10000, .span_ms = 60000, .track_dirty = 1};
    window_t *w = window_new(&cfg);
    enum { KEYS = 40, ROUNDS = 12 };
    const int64_t t0 = 1700000000000LL;
    for (int r = 0; r < ROUNDS; r++) {
        for (int k = 0; k < KEYS; k++) {
            if ((k + r) % 3 == 0)
                continue; /* not every key changes every round */
            window_key_t wk = {.scope = BS_SCOPE_SUBJECT, .tally = 0, .fp = (uint64_t)k + 1};
            char site[16];
            snprintf(site, sizeof(site), "site%d", (k * r) % 5);
            window_add(w, &wk, (unsigned)window_site_intern(w, site), t0 + r * 1000, "subject", 7);
        }
        size_t taken = window_dirty_copy(w, KEYS, store_window_copy(s));
        assert_true(taken > 0);
        assert_int_equal(store_pending(s), taken);
        assert_int_equal(store_flush_behind(s, r % 4 == 3), 0);
        assert_int_equal(store_pending(s), 0);
    }
    /* a copy, then a blob queued for the same key: the queued one is written last */
    window_key_t k1 = {.scope = BS_SCOPE_SUBJECT, .tally = 0, .fp = 1};
    window_add(w, &k1, 0, t0 + ROUNDS * 1000, NULL, 0);
    assert_int_equal(window_dirty_copy(w, KEYS, store_window_copy(s)), 1);
    store_window_queue(s, &k1, (const uint8_t *)"queued", 6);
    assert_int_equal(store_flush_behind(s, false), 0);
    assert_int_equal(store_flush(s), 0);
    loaded_blobs_t l = {0};
    assert_int_equal(store_window_load(s, s_keep_blob, &l), KEYS);
    for (size_t i = 0; i < l.n; i++) {
        window_key_t wk = {.scope = BS_SCOPE_SUBJECT, .tally = 0, .fp = (uint64_t)i + 1};
        size_t len = 0;
        uint8_t *want = i == 0 ? (uint8_t *)xstrdup("queued") : window_export(w, &wk, &len);
        if (i == 0)
            len = 6;
        assert_int_equal(l.len[i], len);
        assert_memory_equal(l.blob[i], want, len);
        xfree(want);
        xfree(l.blob[i]);
    }
    window_destroy(&w);
    store_close(&s);
}

static int s_allow(const allow_entry_t *e, void *arg)
{
    *(allow_entry_t *)arg = *e;
    return 0;
}

static void test_allowlist_entries_round_trip(void **state)
{
    fixture_t *f = *state;
    store_t *s = store_open(f->dir, false, NULL);
    allow_entry_t e;
    memset(&e, 0, sizeof(e));
    assert_int_equal(allowlist_entry_parse(&e, ALLOW_NET, "192.0.2.0/24"), 0);
    e.id = 7;
    e.created_ms = 42;
    snprintf(e.who, sizeof(e.who), "alice");
    snprintf(e.reason, sizeof(e.reason), "our relay");
    assert_int_equal(store_allow_put(s, &e), 0);
    store_close(&s);
    s = store_open(f->dir, false, NULL);
    allow_entry_t got;
    memset(&got, 0, sizeof(got));
    assert_int_equal(store_allow_load(s, s_allow, &got), 1);
    assert_int_equal(got.id, 7);
    assert_int_equal(got.type, ALLOW_NET);
    assert_int_equal(got.prefix, e.prefix);
    assert_memory_equal(got.addr, e.addr, 16);
    assert_string_equal(got.text, "192.0.2.0/24");
    assert_string_equal(got.who, "alice");
    assert_string_equal(got.reason, "our relay");
    assert_int_equal(got.created_ms, 42);
    assert_int_equal(store_allow_del(s, 7), 0);
    assert_int_equal(store_allow_load(s, s_allow, &got), 0);
    store_close(&s);
}

typedef struct {
    char name[64];
    char pub[64];
    char who[64];
    int64_t created;
    size_t n;
} site_seen_t;

static int s_site(const char *name, const char *pub, int64_t created, const char *who, void *arg)
{
    site_seen_t *x = arg;
    snprintf(x->name, sizeof(x->name), "%s", name);
    snprintf(x->pub, sizeof(x->pub), "%s", pub);
    snprintf(x->who, sizeof(x->who), "%s", who);
    x->created = created;
    x->n++;
    return 0;
}

static void test_sites_round_trip(void **state)
{
    fixture_t *f = *state;
    store_t *s = store_open(f->dir, false, NULL);
    const char *key = "rq:rM>}U?@Lns47E1%kR.o@n%FcmmsL/@{H8]yf7";
    assert_int_equal(store_site_put(s, "site-a.example", key, 99, "bob"), 0);
    site_seen_t x = {0};
    assert_int_equal(store_site_load(s, s_site, &x), 1);
    assert_string_equal(x.name, "site-a.example");
    assert_string_equal(x.pub, key);
    assert_string_equal(x.who, "bob");
    assert_int_equal(x.created, 99);
    assert_int_equal(store_site_del(s, "site-a.example"), 0);
    x.n = 0;
    assert_int_equal(store_site_load(s, s_site, &x), 0);
    store_close(&s);
}

/* Tombstones seen by store_tomb_load, in key order. */
typedef struct {
    uint64_t id[4];
    char blob[4][16];
    size_t n;
} tomb_seen_t;

static int s_tomb(uint64_t identity, const uint8_t *blob, size_t len, void *arg)
{
    tomb_seen_t *x = arg;
    if (x->n < 4) {
        x->id[x->n] = identity;
        snprintf(x->blob[x->n], sizeof(x->blob[x->n]), "%.*s", (int)len, (const char *)blob);
    }
    x->n++;
    return 0;
}

static void test_tombstones_round_trip(void **state)
{
    fixture_t *f = *state;
    store_t *s = store_open(f->dir, false, NULL);
    const uint64_t big = 0xfedcba9876543210ULL, small = 0x0123456789abcdefULL;
    assert_int_equal(store_tomb_put(s, big, (const uint8_t *)"second", 6), 0);
    assert_int_equal(store_tomb_put(s, small, (const uint8_t *)"first", 5), 0);
    assert_int_equal(store_tomb_put(s, small, (const uint8_t *)"first v2", 8), 0); /* replaced */
    store_close(&s);
    s = store_open(f->dir, false, NULL);
    tomb_seen_t x = {0};
    assert_int_equal(store_tomb_load(s, s_tomb, &x), 2);
    assert_int_equal(x.n, 2);
    /* the identity as put, all 64 bits; in key order */
    assert_true(x.id[0] == small);
    assert_string_equal(x.blob[0], "first v2");
    assert_true(x.id[1] == big);
    assert_string_equal(x.blob[1], "second");
    assert_int_equal(store_tomb_del(s, small), 0);
    memset(&x, 0, sizeof(x));
    assert_int_equal(store_tomb_load(s, s_tomb, &x), 1);
    assert_true(x.id[0] == big);
    store_close(&s);
    s = store_open(f->dir, false, NULL);
    memset(&x, 0, sizeof(x));
    assert_int_equal(store_tomb_load(s, s_tomb, &x), 1);
    assert_true(x.id[0] == big);
    store_close(&s);
}

/* A tombstone key that is not "t/" and 8 bytes (damaged or edited): skipped, not read as
 * an identity; the sound one beside it loads. */
static void test_tombstone_record_with_a_malformed_key_is_skipped(void **state)
{
    fixture_t *f = *state;
    store_t *s = store_open(f->dir, false, NULL);
    assert_int_equal(store_tomb_put(s, 42, (const uint8_t *)"sound", 5), 0);
    store_close(&s);
    kv_t *kv = kv_open(f->dir, 0, NULL);
    assert_non_null(kv);
    assert_int_equal(kv_put(kv, "t/", 2, "empty", 5), 0);
    assert_int_equal(kv_put(kv, "t/abc", 5, "short", 5), 0);
    assert_int_equal(kv_put(kv, "t/abcdefghi", 11, "long", 4), 0);
    kv_close(&kv);
    s = store_open(f->dir, false, NULL);
    tomb_seen_t x = {0};
    assert_int_equal(store_tomb_load(s, s_tomb, &x), 1);
    assert_int_equal(x.n, 1);
    assert_true(x.id[0] == 42);
    assert_string_equal(x.blob[0], "sound");
    store_close(&s);
}

static int s_sensor(const char *site, const char *sensor, const void *val, size_t len, void *arg)
{
    char *out = arg;
    snprintf(out, 128, "%s|%s|%.*s", site, sensor, (int)len, (const char *)val);
    return 0;
}

static void test_meta_numbers_written_now_or_with_the_flush(void **state)
{
    fixture_t *f = *state;
    store_t *s = store_open(f->dir, true, NULL);
    uint64_t v = 0;
    assert_int_equal(store_meta_get(s, "peer_epoch", &v), 0);
    static const char *const names[2] = {"peer_epoch", "peer_seq"};
    const uint64_t vals[2] = {0xE1E1E1E1E1E1E1E1ULL, 41};
    assert_int_equal(store_meta_write(s, names, vals, 2), 0);
    /* written at once: there without any flush */
    assert_int_equal(store_meta_get(s, "peer_epoch", &v), 1);
    assert_true(v == vals[0]);
    assert_int_equal(store_meta_get(s, "peer_seq", &v), 1);
    assert_int_equal(v, 41);
    /* queued: only with the flush */
    store_meta_queue(s, "peer_seq", 42);
    assert_int_equal(store_meta_get(s, "peer_seq", &v), 1);
    assert_int_equal(v, 41);
    assert_int_equal(store_flush(s), 0);
    assert_int_equal(store_meta_get(s, "peer_seq", &v), 1);
    assert_int_equal(v, 42);
    store_close(&s);
    s = store_open(f->dir, true, NULL);
    assert_int_equal(store_meta_get(s, "peer_epoch", &v), 1);
    assert_true(v == vals[0]);
    store_close(&s);
}

static void test_sensor_records_keep_site_and_sensor_apart(void **state)
{
    fixture_t *f = *state;
    store_t *s = store_open(f->dir, false, NULL);
    store_sensor_queue(s, 'n', "site1", "mx1", "status", 6);
    store_sensor_queue(s, 'x', "site1", "mx1", "dedup", 5);
    assert_int_equal(store_flush(s), 0);
    char got[128] = "";
    assert_int_equal(store_sensor_load(s, 'n', s_sensor, got), 1);
    assert_string_equal(got, "site1|mx1|status");
    assert_int_equal(store_sensor_load(s, 'x', s_sensor, got), 1);
    assert_string_equal(got, "site1|mx1|dedup");
    store_close(&s);
}

static int s_count_change(const decision_change_t *c, void *arg)
{
    (void)c;
    (*(int *)arg)++;
    return 0;
}

/* A damaged sensor key: the site name alone longer than its buffer, the key not (found
 * by fuzz_store: a stack overflow). Skipped, the sound one beside it loads. */
static void test_sensor_record_with_an_overlong_name_is_skipped(void **state)
{
    fixture_t *f = *state;
    store_t *s = store_open(f->dir, false, NULL);
    store_close(&s);
    kv_t *kv = kv_open(f->dir, 0, NULL);
    assert_non_null(kv);
    uint8_t key[2 + 300 + 1 + 3];
    memcpy(key, "n/", 2);
    memset(key + 2, 'a', 300);
    key[302] = 0;
    memcpy(key + 303, "mx1", 3);
    assert_int_equal(kv_put(kv, key, sizeof(key), "status", 6), 0);
    kv_close(&kv);
    s = store_open(f->dir, false, NULL);
    store_sensor_queue(s, 'n', "site1", "mx1", "status", 6);
    assert_int_equal(store_flush(s), 0);
    char got[128] = "";
    assert_int_equal(store_sensor_load(s, 'n', s_sensor, got), 1);
    assert_string_equal(got, "site1|mx1|status");
    store_close(&s);
}

/* Puts the number v under key (8 bytes) straight into the database of dir. */
static void s_kv_u64(const fixture_t *f, const char *key, size_t klen, uint64_t v)
{
    kv_t *kv = kv_open(f->dir, 0, NULL);
    assert_non_null(kv);
    uint8_t b[8];
    kv_u64_put(b, v);
    assert_int_equal(kv_put(kv, key, klen, b, 8), 0);
    kv_close(&kv);
}

/* m/seq behind the log (damaged or edited; found by fuzz_store: the log floor was above
 * seq, and numbers the sensors hold would have been given again): seq moves on to the
 * log's end; a stray q/0 does not make the floor wrap. */
static void test_log_beyond_stored_seq_moves_seq_on(void **state)
{
    fixture_t *f = *state;
    store_t *s = store_open(f->dir, false, NULL);
    uint64_t e = store_epoch(s);
    decision_change_t c[3] = {
        s_change(e, 1, "AAAAAAAA", DECISION_UPSERT, "one"),
        s_change(e, 2, "BBBBBBBB", DECISION_UPSERT, "two"),
        s_change(e, 3, "CCCCCCCC", DECISION_UPSERT, "three"),
    };
    assert_int_equal(store_changes_write(s, c, 3), 0);
    store_close(&s);
    s_kv_u64(f, "m/seq", 5, 1);
    uint8_t q0[10] = {'q', '/'};
    kv_u64_put(q0 + 2, 0);
    s_kv_u64(f, (const char *)q0, sizeof(q0), 0);

    s = store_open(f->dir, false, NULL);
    assert_int_equal(store_epoch(s), e);
    assert_int_equal(store_seq(s), 3);
    assert_true(store_log_floor(s) <= store_seq(s));
    int n = 0;
    assert_int_equal(store_changes_since(s, 1, s_count_change, &n), 0);
    assert_int_equal(n, 2);
    store_close(&s);
}

/* m/seq at the top of the range (found by fuzz_store): the next change, or a jump, would
 * wrap round to numbers the sensors hold. The start is refused (logged), as with a log
 * entry that far. */
static void test_seq_beyond_any_real_one_is_refused(void **state)
{
    fixture_t *f = *state;
    store_t *s = store_open(f->dir, false, NULL);
    store_close(&s);
    s_kv_u64(f, "m/seq", 5, UINT64_MAX);
    errno = 0;
    assert_null(store_open_boot(f->dir, false, 1, NULL));
    assert_int_equal(errno, EINVAL); /* not "another aggregator running?" */
    s_kv_u64(f, "m/seq", 5, 7);
    uint8_t q[10] = {'q', '/'};
    kv_u64_put(q + 2, UINT64_MAX - 1);
    s_kv_u64(f, (const char *)q, sizeof(q), 0);
    assert_null(store_open_boot(f->dir, false, 1, NULL));

    /* at the highest seq a store starts, but writes nothing beyond it: its next start
     * would refuse the store (found by fuzz_store) */
    kv_t *kv = kv_open(f->dir, 0, NULL);
    assert_non_null(kv);
    assert_int_equal(kv_del(kv, q, sizeof(q)), 0);
    kv_close(&kv);
    s_kv_u64(f, "m/seq", 5, STORE_SEQ_MAX - 1);
    s = store_open_boot(f->dir, false, 1, NULL);
    assert_non_null(s);
    uint64_t e = store_epoch(s);
    decision_change_t c[2] = {
        s_change(e, STORE_SEQ_MAX, "AAAAAAAA", DECISION_UPSERT, "last"),
        s_change(e, STORE_SEQ_MAX + 1, "BBBBBBBB", DECISION_UPSERT, "beyond"),
    };
    assert_int_equal(store_changes_write(s, c, 1), 0);
    assert_int_equal(store_changes_write(s, c + 1, 1), -1);
    assert_int_equal(store_seq(s), STORE_SEQ_MAX);
    store_close(&s);
    s = store_open_boot(f->dir, false, 1, NULL);
    assert_non_null(s);
    assert_int_equal(store_seq(s), STORE_SEQ_MAX);
    store_close(&s);
    /* a host failure under that run: the jump would pass the highest seq, so this start is
     * refused, not the next */
    s_kv_u64(f, "m/clean", 7, 0);
    assert_null(store_open_boot(f->dir, false, 2, NULL));
}

/* A decision record under a key other than d/<its id> would come back after its removal
 * deleted d/<id>; one with a seq beyond the store's would have its number, and id, given
 * again (found by fuzz_store). Both are skipped. */
static void test_decision_record_off_its_key_or_seq_is_skipped(void **state)
{
    fixture_t *f = *state;
    store_t *s = store_open(f->dir, false, NULL);
    uint64_t e = store_epoch(s);
    decision_change_t c[2] = {
        s_change(e, 1, "AAAAAAAA", DECISION_UPSERT, "one"),
        s_change(e, 2, "BBBBBBBB", DECISION_UPSERT, "two"),
    };
    assert_int_equal(store_changes_write(s, c, 2), 0);
    store_close(&s);
    kv_t *kv = kv_open(f->dir, 0, NULL);
    assert_non_null(kv);
    char *v = NULL;
    size_t vl = 0;
    assert_int_equal(kv_get(kv, "d/AAAAAAAA", 10, &v, &vl), 1);
    assert_int_equal(kv_put(kv, "d/aaaaaaaa", 10, v, vl), 0);
    xfree(v);
    /* BBBBBBBB's change (2) is lost from the log and m/seq: as if never numbered */
    uint8_t q2[10] = {'q', '/'};
    kv_u64_put(q2 + 2, 2);
    assert_int_equal(kv_del(kv, q2, sizeof(q2)), 0);
    kv_close(&kv);
    s_kv_u64(f, "m/seq", 5, 1);

    s = store_open(f->dir, false, NULL);
    assert_int_equal(store_seq(s), 1);
    loaded_t l = {.n = 0};
    assert_int_equal(store_decisions_load(s, s_collect, &l), 1);
    assert_string_equal(l.got[0].id, "AAAAAAAA");
    store_close(&s);
}

/* Writes three changes under boot 1 and leaves the database as a run that never stopped
 * would: m/clean 0 (the lock forces a close first; the flag is what a crash leaves). */
static uint64_t s_run_and_die(const fixture_t *f, uint64_t *epoch_p)
{
    store_t *s = store_open_boot(f->dir, true, 1, NULL);
    uint64_t e = store_epoch(s);
    decision_change_t c[3] = {
        s_change(e, 1, "AAAAAAAA", DECISION_UPSERT, "wave one"),
        s_change(e, 2, "BBBBBBBB", DECISION_UPSERT, "wave two"),
        s_change(e, 3, "CCCCCCCC", DECISION_UPSERT, "wave three"),
    };
    assert_int_equal(store_changes_write(s, c, 3), 0);
    assert_int_equal(store_sync(s), 0);
    store_close(&s);
    kv_t *kv = kv_open(f->dir, 0, NULL);
    assert_non_null(kv);
    uint8_t v[8];
    kv_u64_put(v, 0);
    assert_int_equal(kv_put(kv, "m/clean", 7, v, 8), 0);
    kv_close(&kv);
    *epoch_p = e;
    return 3;
}

static void test_daemon_crash_same_boot_keeps_sequence_and_log(void **state)
{
    fixture_t *f = *state;
    uint64_t e;
    uint64_t seq = s_run_and_die(f, &e);
    store_t *s = store_open_boot(f->dir, true, 1, NULL);
    assert_false(store_jumped(s));
    assert_true(store_epoch(s) == e);
    assert_int_equal(store_seq(s), seq);
    int n = 0;
    assert_int_equal(store_changes_since(s, 1, s_count_change, &n), 0);
    assert_int_equal(n, 2);
    store_close(&s);
}

static void test_host_down_under_a_run_jumps_sequence_and_drops_log(void **state)
{
    fixture_t *f = *state;
    uint64_t e;
    uint64_t seq = s_run_and_die(f, &e);
    store_t *s = store_open_boot(f->dir, true, 2, NULL);
    assert_true(store_jumped(s));
    assert_true(store_epoch(s) == e); /* the log's numbering goes on: same epoch */
    assert_true(store_seq(s) == seq + STORE_SEQ_JUMP);
    /* no sensor's "changes since" is answered from the log: they all take a snapshot */
    int n = 0;
    assert_int_equal(store_changes_since(s, seq, s_count_change, &n), -1);
    assert_int_equal(store_changes_since(s, seq + 1, s_count_change, &n), -1);
    assert_int_equal(n, 0);
    /* the decisions themselves are kept */
    loaded_t l = {0};
    assert_int_equal(store_decisions_load(s, s_collect, &l), 3);
    /* numbering goes on from the jump */
    decision_change_t c = s_change(e, seq + STORE_SEQ_JUMP + 1, "DDDDDDDD", DECISION_UPSERT, "x");
    assert_int_equal(store_changes_write(s, &c, 1), 0);
    assert_int_equal(store_changes_since(s, seq + STORE_SEQ_JUMP, s_count_change, &n), 0);
    assert_int_equal(n, 1);
    store_close(&s);

    /* stopped cleanly this time: a later boot finds nothing to fear */
    s = store_open_boot(f->dir, true, 3, NULL);
    assert_false(store_jumped(s));
    assert_true(store_seq(s) == seq + STORE_SEQ_JUMP + 1);
    store_close(&s);
}

static void test_clean_stop_then_reboot_keeps_sequence(void **state)
{
    fixture_t *f = *state;
    store_t *s = store_open_boot(f->dir, true, 1, NULL);
    uint64_t e = store_epoch(s);
    decision_change_t c = s_change(e, 1, "AAAAAAAA", DECISION_UPSERT, "wave one");
    assert_int_equal(store_changes_write(s, &c, 1), 0);
    store_close(&s);
    s = store_open_boot(f->dir, true, 2, NULL);
    assert_false(store_jumped(s));
    assert_int_equal(store_seq(s), 1);
    store_close(&s);
}

static void test_unknown_boot_never_jumps(void **state)
{
    fixture_t *f = *state;
    uint64_t e;
    uint64_t seq = s_run_and_die(f, &e);
    store_t *s = store_open_boot(f->dir, true, 0, NULL); /* this boot unknown */
    assert_false(store_jumped(s));
    assert_int_equal(store_seq(s), seq);
    store_close(&s);
    /* the last run's boot unknown (it stored 0), and it died: nothing to compare */
    kv_t *kv = kv_open(f->dir, 0, NULL);
    uint8_t v[8];
    kv_u64_put(v, 0);
    assert_int_equal(kv_put(kv, "m/clean", 7, v, 8), 0);
    assert_int_equal(kv_put(kv, "m/boot", 6, v, 8), 0);
    kv_close(&kv);
    s = store_open_boot(f->dir, true, 5, NULL);
    assert_false(store_jumped(s));
    store_close(&s);
}

static void test_second_open_of_same_dir_fails(void **state)
{
    fixture_t *f = *state;
    store_t *a = store_open(f->dir, false, NULL);
    assert_non_null(a);
    errno = 0;
    store_t *b = store_open(f->dir, false, NULL);
    assert_null(b);
    assert_int_equal(errno, EAGAIN); /* the server's fatal line says another aggregator */
    store_close(&a);
}

/* ---- the data directory lost while open ---- */

/* Runs a shell command, each '@' in it the fixture's directory (quoted by the caller). */
static void s_sh(const fixture_t *f, const char *cmd)
{
    char buf[1024];
    size_t n = 0;
    for (const char *p = cmd; *p && n + sizeof(f->dir) < sizeof(buf); p++) {
        if (*p == '@') {
            memcpy(buf + n, f->dir, strlen(f->dir));
            n += strlen(f->dir);
        } else {
            buf[n++] = *p;
        }
    }
    buf[n] = '\0';
    assert_int_equal(system(buf), 0);
}

/* A table with decisions made and stored (seq 1..3: two made, the first extended) and the
 * store it went into. */
static decisions_t *s_table_stored(store_t *s)
{
    decisions_t *t = decisions_new(store_epoch(s), store_seq(s), 0);
    for (int i = 0; i < 3; i++) {
        decision_t d =
            s_change(store_epoch(s), 0, "", DECISION_UPSERT, i == 1 ? "two" : "one").decision;
        d.fp = (uint64_t)(i == 1 ? 2 : 1);
        d.expires_ms = 2000 + 1000 * i;
        assert_int_not_equal(decisions_propose(t, &d, 0, 1000, NULL), DECISIONS_UNCHANGED);
    }
    decision_change_t c[3];
    for (int i = 0; i < 3; i++)
        assert_int_equal(decisions_take_change(t, &c[i]), 1);
    assert_int_equal(store_changes_write(s, c, 3), 0);
    assert_int_equal(store_seq(s), 3);
    return t;
}

static int s_count_blob(const uint8_t *blob, size_t len, void *arg)
{
    (void)blob, (void)len, (void)arg;
    return 0;
}

static int s_site_count(const char *name, const char *public_key, int64_t created_ms,
                        const char *who, void *arg)
{
    (void)name, (void)public_key, (void)created_ms, (void)who, (void)arg;
    return 0;
}

static int s_tomb_count(uint64_t identity, const uint8_t *blob, size_t len, void *arg)
{
    (void)identity, (void)blob, (void)len, (void)arg;
    return 0;
}

static void test_removed_directory_is_noticed_and_recreated_in_the_epoch(void **state)
{
    fixture_t *f = *state;
    store_t *s = store_open(f->dir, false, NULL);
    uint64_t e = store_epoch(s);
    decisions_t *t = s_table_stored(s);
    char why[256] = "";
    assert_int_equal(store_check(s, why, sizeof(why)), 0);

    s_sh(f, "rm -rf '@'");
    assert_int_equal(store_check(s, why, sizeof(why)), -1);
    assert_string_equal(why, "removed");
    assert_int_equal(store_recreate(s, why, sizeof(why)), 0);
    struct stat st;
    assert_int_equal(stat(f->dir, &st), 0);
    assert_int_equal(st.st_mode & 0777, 0750);
    assert_int_equal(store_check(s, why, sizeof(why)), 0);
    assert_false(store_detached(s));
    assert_true(store_epoch(s) == e);
    assert_int_equal(store_seq(s), 3);
    /* what the caller holds goes in again, in one batch; the store writes on */
    allow_entry_t a;
    memset(&a, 0, sizeof(a));
    assert_int_equal(allowlist_entry_parse(&a, ALLOW_NET, "192.0.2.0/24"), 0);
    a.id = 7;
    store_refill_allow(s, &a);
    store_refill_site(s, "acme", "", 1000, "tester");
    store_refill_tomb(s, 42, (const uint8_t *)"abc", 3);
    store_refill_meta(s, "peer_seq", 9);
    assert_int_equal(store_refill_write(s, t), 0);
    a.id = 8;
    assert_int_equal(store_allow_put(s, &a), 0);
    store_close(&s);

    bool created = true;
    s = store_open(f->dir, false, &created);
    assert_false(created);
    assert_true(store_epoch(s) == e);
    assert_int_equal(store_seq(s), 3);
    loaded_t l = {0};
    assert_int_equal(store_decisions_load(s, s_collect, &l), 2);
    for (size_t i = 0; i < l.n; i++)
        assert_non_null(decisions_find(t, l.got[i].id));
    /* the log the table had answers changes since its start */
    seqs_t x = {0};
    assert_int_equal(store_changes_since(s, 0, s_seqs, &x), 0);
    assert_int_equal(x.n, 3);
    assert_int_equal(x.seqs[2], 3);
    allow_entry_t got;
    assert_int_equal(store_allow_load(s, s_allow, &got), 2);
    assert_int_equal(store_site_load(s, s_site_count, NULL), 1);
    assert_int_equal(store_tomb_load(s, s_tomb_count, NULL), 1);
    uint64_t v = 0;
    assert_int_equal(store_meta_get(s, "peer_seq", &v), 1);
    assert_int_equal(v, 9);
    store_close(&s);
    decisions_destroy(&t);
}

/* Emptied (its files removed, the directory kept): noticed, and what is left in the
 * directory opened is cleared, so nothing the caller does not write comes back. windows/
 * alone removed: only the window database is made again; the decisions, the epoch and seq
 * stay where they are. */
static void test_emptied_directory_or_windows_is_noticed_and_cleared(void **state)
{
    fixture_t *f = *state;
    store_t *s = store_open(f->dir, false, NULL);
    uint64_t e = store_epoch(s);
    decisions_t *t = s_table_stored(s);
    window_key_t k = {.scope = BS_SCOPE_SUBJECT, .fp = 0x77};
    store_window_queue(s, &k, (const uint8_t *)"old", 3);
    assert_int_equal(store_flush(s), 0);
    char why[256] = "";
    s_sh(f, "rm -rf '@'/windows");
    assert_int_equal(store_check(s, why, sizeof(why)), -1);
    assert_string_equal(why, "windows_removed");
    assert_int_equal(store_recreate(s, why, sizeof(why)), 1);
    assert_int_equal(store_check(s, why, sizeof(why)), 0);
    /* the decisions were in the main database: kept, as is the epoch */
    loaded_t l = {0};
    assert_int_equal(store_decisions_load(s, s_collect, &l), 2);
    assert_int_equal(store_window_load(s, s_count_blob, NULL), 0);
    store_window_queue(s, &k, (const uint8_t *)"new", 3);
    assert_int_equal(store_flush(s), 0);
    store_close(&s);
    bool created = true;
    s = store_open(f->dir, false, &created);
    assert_false(created);
    assert_true(store_epoch(s) == e);
    assert_int_equal(store_seq(s), 3);
    l.n = 0;
    assert_int_equal(store_decisions_load(s, s_collect, &l), 2);
    assert_int_equal(store_window_load(s, s_count_blob, NULL), 1);

    s_sh(f, "find '@' -maxdepth 1 -type f -delete");
    assert_int_equal(store_check(s, why, sizeof(why)), -1);
    assert_string_equal(why, "emptied");
    assert_int_equal(store_recreate(s, why, sizeof(why)), 0);
    assert_int_equal(store_check(s, why, sizeof(why)), 0);
    assert_int_equal(store_seq(s), 3);
    /* the window database survived in the directory opened: cleared with it */
    assert_int_equal(store_window_load(s, s_count_blob, NULL), 0);
    store_close(&s);
    decisions_destroy(&t);
}

/* The names in dir, sorted, joined by spaces into out. */
static void s_names(const char *dir, char *out, size_t outlen)
{
    struct dirent **e = NULL;
    int n = scandir(dir, &e, NULL, alphasort);
    assert_true(n >= 0);
    out[0] = '\0';
    for (int i = 0; i < n; i++) {
        size_t at = strlen(out);
        snprintf(out + at, outlen - at, "%s ", e[i]->d_name);
        free(e[i]);
    }
    free(e);
}

/* Another store put in its place is left as it was: nothing of ours goes into it (the
 * store is detached, every write fails) until it is gone; then we recreate. */
static void test_another_store_in_its_place_is_left_alone(void **state)
{
    fixture_t *f = *state;
    store_t *s = store_open(f->dir, false, NULL);
    decisions_t *t = s_table_stored(s);
    char *other = xasprintf("%s.other", f->dir);
    store_t *o = store_open(other, false, NULL);
    uint64_t oe = store_epoch(o);
    assert_true(oe != store_epoch(s));
    store_close(&o);
    char *cmd = xasprintf("rm -rf '%s' && mv '%s' '%s'", f->dir, other, f->dir);
    assert_int_equal(system(cmd), 0);
    xfree(cmd);

    char why[256] = "";
    assert_int_equal(store_check(s, why, sizeof(why)), -1);
    assert_string_equal(why, "replaced");
    assert_int_equal(store_recreate(s, why, sizeof(why)), -1);
    assert_non_null(strstr(why, "holds another store (epoch "));
    assert_true(store_detached(s));
    /* asked again, it does not open that store again (an open writes new files) */
    char before[1024], after[1024];
    s_names(f->dir, before, sizeof(before));
    assert_int_equal(store_recreate(s, why, sizeof(why)), -1);
    assert_non_null(strstr(why, "holds another store (epoch "));
    s_names(f->dir, after, sizeof(after));
    assert_string_equal(before, after);
    assert_int_equal(store_check(s, why, sizeof(why)), -1);
    allow_entry_t a;
    memset(&a, 0, sizeof(a));
    assert_int_equal(allowlist_entry_parse(&a, ALLOW_NET, "192.0.2.0/24"), 0);
    a.id = 7;
    assert_int_equal(store_allow_put(s, &a), -1);
    decision_change_t c = s_change(store_epoch(s), 4, "CCCCCCCC", DECISION_UPSERT, "four");
    assert_int_equal(store_changes_write(s, &c, 1), -1);
    assert_int_equal(store_refill_write(s, t), -1);
    assert_int_equal(store_flush(s), -1);
    assert_int_equal(store_sync(s), -1);
    store_close(&s);
    /* the other store is as it was */
    s = store_open(f->dir, false, NULL);
    assert_true(store_epoch(s) == oe);
    assert_int_equal(store_seq(s), 0);
    allow_entry_t got;
    assert_int_equal(store_allow_load(s, s_allow, &got), 0);
    store_close(&s);
    decisions_destroy(&t);
    xfree(other);
}

/* A directory of other files in its place: left alone (the store keeps writing to the
 * files it has); emptied, it is used. */
static void test_other_files_in_its_place_are_left_alone(void **state)
{
    fixture_t *f = *state;
    store_t *s = store_open(f->dir, false, NULL);
    uint64_t e = store_epoch(s);
    decisions_t *t = s_table_stored(s);
    s_sh(f, "rm -rf '@' && mkdir '@' && echo keep >'@'/notes");
    char why[256] = "";
    assert_int_equal(store_check(s, why, sizeof(why)), -1);
    assert_string_equal(why, "replaced");
    assert_int_equal(store_recreate(s, why, sizeof(why)), -1);
    assert_non_null(strstr(why, "holds files that are no database: left alone"));
    assert_false(store_detached(s));
    decision_change_t c = s_change(e, 4, "CCCCCCCC", DECISION_UPSERT, "four");
    assert_int_equal(store_changes_write(s, &c, 1), 0);
    s_sh(f, "rm '@'/notes");
    assert_int_equal(store_recreate(s, why, sizeof(why)), 0);
    assert_int_equal(store_check(s, why, sizeof(why)), 0);
    assert_int_equal(store_seq(s), 4);
    assert_int_equal(store_refill_write(s, t), 0);
    store_close(&s);
    s = store_open(f->dir, false, NULL);
    assert_true(store_epoch(s) == e);
    assert_int_equal(store_seq(s), 4);
    store_close(&s);
    decisions_destroy(&t);
}

/* A healthy store never reads as lost: heavy window writes (LevelDB rolls its logs and
 * compacts in both databases), store_loaded()'s reopen, many decision changes. */
static void test_healthy_store_never_reads_as_lost(void **state)
{
    fixture_t *f = *state;
    store_t *s = store_open(f->dir, true, NULL);
    char why[256] = "";
    assert_int_equal(store_loaded(s), 0);
    assert_int_equal(store_check(s, why, sizeof(why)), 0);
    uint8_t blob[512];
    memset(blob, 'x', sizeof(blob));
    for (int r = 0; r < 40; r++) {
        for (int k = 0; k < 2000; k++) {
            window_key_t wk = {
                .scope = BS_SCOPE_SUBJECT, .tally = 0, .fp = (uint64_t)k * 7919 + (uint64_t)r};
            store_window_queue(s, &wk, blob, sizeof(blob));
        }
        assert_int_equal(store_flush_behind(s, r % 4 == 3), 0);
        assert_int_equal(store_check(s, why, sizeof(why)), 0);
    }
    for (uint64_t i = 1; i <= 20000; i++) {
        decision_change_t c = s_change(store_epoch(s), i, "ABCDEFGH", DECISION_UPSERT, "v");
        assert_int_equal(store_changes_write(s, &c, 1), 0);
    }
    assert_int_equal(store_flush(s), 0);
    assert_int_equal(store_check(s, why, sizeof(why)), 0);
    store_close(&s);
}

/* A look that fails (EIO on a LOCK file) says nothing: store_check() says so (1), and a
 * recreate asked anyway closes and clears nothing. It took the store for emptied, and the
 * recreate wiped it and wrote it again from memory. */
static void test_failed_look_is_no_loss(void **state)
{
    fixture_t *f = *state;
    store_t *s = store_open(f->dir, false, NULL);
    uint64_t e = store_epoch(s);
    decisions_t *t = s_table_stored(s);
    char *lock = xasprintf("%s/LOCK", f->dir);
    struct stat before, after;
    assert_int_equal(stat(lock, &before), 0);
    s_stat_eio = lock;
    char why[256] = "";
    assert_int_equal(store_check(s, why, sizeof(why)), 1);
    char *want = xasprintf("cannot look at %s: %s", lock, strerror(EIO));
    assert_string_equal(why, want);
    assert_int_equal(store_recreate(s, why, sizeof(why)), -1);
    assert_string_equal(why, want);
    s_stat_eio = NULL;
    assert_int_equal(store_check(s, why, sizeof(why)), 0);
    assert_int_equal(stat(lock, &after), 0);
    assert_true(before.st_ino == after.st_ino);
    loaded_t l = {0};
    assert_int_equal(store_decisions_load(s, s_collect, &l), 2);
    store_close(&s);
    bool created = true;
    s = store_open(f->dir, false, &created);
    assert_false(created);
    assert_true(store_epoch(s) == e);
    assert_int_equal(store_seq(s), 3);
    store_close(&s);
    decisions_destroy(&t);
    xfree(want);
    xfree(lock);
}

/* store_recreate() on a store that is not lost (its directory and LOCK files the ones
 * opened) refuses, and the store is as it was: it used to wipe it. */
static void test_recreate_refuses_a_store_not_lost(void **state)
{
    fixture_t *f = *state;
    store_t *s = store_open(f->dir, false, NULL);
    decisions_t *t = s_table_stored(s);
    char why[256] = "";
    assert_int_equal(store_recreate(s, why, sizeof(why)), -1);
    assert_non_null(strstr(why, "are the ones opened: not lost"));
    assert_false(store_detached(s));
    loaded_t l = {0};
    assert_int_equal(store_decisions_load(s, s_collect, &l), 2);
    seqs_t x = {0};
    assert_int_equal(store_changes_since(s, 0, s_seqs, &x), 0);
    assert_int_equal(x.n, 3);
    store_close(&s);
    decisions_destroy(&t);
}

/* The data directory a bind mount of one whose source was removed (systemd's
 * ReadWritePaths=, the directory removed from the host): the path leads to the removed
 * directory, where nothing can be made. Refused before anything is closed: the store goes
 * on with the databases it has (decisions still stored and published). It closed them,
 * LevelDB could not open new ones there, and the store was detached until a restart. */
static void test_removed_dir_still_mounted_is_refused_and_kept(void **state)
{
    fixture_t *f = *state;
    store_t *s = store_open(f->dir, false, NULL);
    uint64_t e = store_epoch(s);
    decisions_t *t = s_table_stored(s);
    s_sh(f, "rm -rf '@'/*");
    s_stat_unlinked = f->dir;
    char why[256] = "";
    assert_int_equal(store_check(s, why, sizeof(why)), -1);
    assert_string_equal(why, "removed");
    assert_int_equal(store_recreate(s, why, sizeof(why)), -1);
    char *want =
        xasprintf("%s was removed but is still mounted here: restart the aggregator", f->dir);
    assert_string_equal(why, want);
    assert_false(store_detached(s));
    decision_change_t c = s_change(e, 4, "CCCCCCCC", DECISION_UPSERT, "four");
    assert_int_equal(store_changes_write(s, &c, 1), 0);
    assert_int_equal(store_sync(s), 0);
    loaded_t l = {0};
    assert_int_equal(store_decisions_load(s, s_collect, &l), 3);
    s_stat_unlinked = NULL;
    store_close(&s);
    decisions_destroy(&t);
    xfree(want);
}

/* Where no file can be made and synced (here: fsync fails), nothing is closed: the store
 * goes on with the databases it has; once files can be, the recreate works. */
static void test_recreate_waits_until_a_file_can_be_synced_there(void **state)
{
    fixture_t *f = *state;
    store_t *s = store_open(f->dir, false, NULL);
    uint64_t e = store_epoch(s);
    decisions_t *t = s_table_stored(s);
    s_sh(f, "rm -rf '@'");
    char why[256] = "";
    assert_int_equal(store_check(s, why, sizeof(why)), -1);
    s_fsync_eio = true;
    assert_int_equal(store_recreate(s, why, sizeof(why)), -1);
    s_fsync_eio = false;
    char *want =
        xasprintf("cannot make and sync a file in %s: %s: left as it is", f->dir, strerror(EIO));
    assert_string_equal(why, want);
    assert_false(store_detached(s));
    decision_change_t c = s_change(e, 4, "CCCCCCCC", DECISION_UPSERT, "four");
    assert_int_equal(store_changes_write(s, &c, 1), 0);
    char names[1024];
    s_names(f->dir, names, sizeof(names));
    assert_string_equal(names, ". .. "); /* the probe's file is gone */
    assert_int_equal(store_recreate(s, why, sizeof(why)), 0);
    assert_int_equal(store_seq(s), 4);
    store_close(&s);
    decisions_destroy(&t);
    xfree(want);
}

/* A rebuild cut short (the refill failed: disk full, EIO; or the daemon was killed before
 * it) leaves a store of no epoch: the next start begins a new one, and sensors, told by
 * the epoch that the log is lost, resynchronise. Kept, our epoch at our seq without the
 * decisions would let them keep decisions the aggregator forgot, never to be revoked. */
static void test_rebuild_cut_short_means_a_new_epoch(void **state)
{
    fixture_t *f = *state;
    store_t *s = store_open(f->dir, false, NULL);
    uint64_t e = store_epoch(s);
    decisions_t *t = s_table_stored(s);
    char why[256] = "";
    s_sh(f, "rm -rf '@'");
    assert_int_equal(store_check(s, why, sizeof(why)), -1);
    assert_int_equal(store_recreate(s, why, sizeof(why)), 0);
    /* decisions made meanwhile are written, as ever */
    decision_change_t c = s_change(e, 4, "CCCCCCCC", DECISION_UPSERT, "four");
    assert_int_equal(store_changes_write(s, &c, 1), 0);
    assert_int_equal(store_sync(s), 0);
    store_close(&s); /* no store_refill_write() */
    bool created = false;
    s = store_open(f->dir, false, &created);
    assert_true(created);
    assert_true(store_epoch(s) != e);
    assert_int_equal(store_seq(s), 0);
    loaded_t l = {0};
    assert_int_equal(store_decisions_load(s, s_collect, &l), 0);
    store_close(&s);
    decisions_destroy(&t);
}

/* A copy of this store put in its place (its epoch, an older seq): recreated, its epoch
 * deleted before anything else, so a rebuild cut short there too means a new epoch. */
static void test_copy_of_our_store_in_its_place_loses_its_epoch_first(void **state)
{
    fixture_t *f = *state;
    store_t *s = store_open(f->dir, true, NULL);
    uint64_t e = store_epoch(s);
    decisions_t *t = s_table_stored(s);
    assert_int_equal(store_sync(s), 0);
    s_sh(f, "cp -r '@' '@.copy' && rm -f '@.copy/LOCK' '@.copy/windows/LOCK'");
    decision_change_t c = s_change(e, 4, "CCCCCCCC", DECISION_UPSERT, "four");
    assert_int_equal(store_changes_write(s, &c, 1), 0);
    s_sh(f, "rm -rf '@' && mv '@.copy' '@'");
    char why[256] = "";
    assert_int_equal(store_check(s, why, sizeof(why)), -1);
    assert_string_equal(why, "replaced");
    assert_int_equal(store_recreate(s, why, sizeof(why)), 0);
    assert_int_equal(store_seq(s), 4);
    store_close(&s);
    bool created = false;
    s = store_open(f->dir, false, &created);
    assert_true(created);
    assert_true(store_epoch(s) != e);
    loaded_t l = {0};
    assert_int_equal(store_decisions_load(s, s_collect, &l), 0);
    store_close(&s);

    /* refilled, it is this store again: the epoch, seq and decisions */
    s_sh(f, "rm -rf '@'");
    s = store_open(f->dir, false, NULL);
    e = store_epoch(s);
    decisions_destroy(&t);
    t = s_table_stored(s);
    s_sh(f, "rm -rf '@'");
    assert_int_equal(store_check(s, why, sizeof(why)), -1);
    assert_int_equal(store_recreate(s, why, sizeof(why)), 0);
    assert_int_equal(store_refill_write(s, t), 0);
    store_close(&s);
    s = store_open(f->dir, false, &created);
    assert_false(created);
    assert_true(store_epoch(s) == e);
    assert_int_equal(store_seq(s), 3);
    assert_int_equal(store_decisions_load(s, s_collect, &l), 2);
    store_close(&s);
    decisions_destroy(&t);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_new_database_gets_epoch_that_survives_reopen, s_setup,
                                        s_teardown),
        cmocka_unit_test_setup_teardown(test_changes_are_stored_with_seq_and_read_back, s_setup,
                                        s_teardown),
        cmocka_unit_test_setup_teardown(test_changes_since_reads_the_stored_log_until_pruned,
                                        s_setup, s_teardown),
        cmocka_unit_test_setup_teardown(test_lost_log_means_new_epoch_and_no_old_decisions, s_setup,
                                        s_teardown),
        cmocka_unit_test_setup_teardown(test_window_blobs_are_written_behind, s_setup, s_teardown),
        cmocka_unit_test_setup_teardown(test_window_records_of_an_older_directory_move, s_setup,
                                        s_teardown),
        cmocka_unit_test_setup_teardown(test_flush_behind_writes_in_order, s_setup, s_teardown),
        cmocka_unit_test_setup_teardown(test_window_copies_are_encoded_by_the_writer, s_setup,
                                        s_teardown),
        cmocka_unit_test_setup_teardown(test_allowlist_entries_round_trip, s_setup, s_teardown),
        cmocka_unit_test_setup_teardown(test_sites_round_trip, s_setup, s_teardown),
        cmocka_unit_test_setup_teardown(test_tombstones_round_trip, s_setup, s_teardown),
        cmocka_unit_test_setup_teardown(test_tombstone_record_with_a_malformed_key_is_skipped,
                                        s_setup, s_teardown),
        cmocka_unit_test_setup_teardown(test_meta_numbers_written_now_or_with_the_flush, s_setup,
                                        s_teardown),
        cmocka_unit_test_setup_teardown(test_sensor_records_keep_site_and_sensor_apart, s_setup,
                                        s_teardown),
        cmocka_unit_test_setup_teardown(test_sensor_record_with_an_overlong_name_is_skipped,
                                        s_setup, s_teardown),
        cmocka_unit_test_setup_teardown(test_log_beyond_stored_seq_moves_seq_on, s_setup,
                                        s_teardown),
        cmocka_unit_test_setup_teardown(test_decision_record_off_its_key_or_seq_is_skipped, s_setup,
                                        s_teardown),
        cmocka_unit_test_setup_teardown(test_seq_beyond_any_real_one_is_refused, s_setup,
                                        s_teardown),
        cmocka_unit_test_setup_teardown(test_daemon_crash_same_boot_keeps_sequence_and_log, s_setup,
                                        s_teardown),
        cmocka_unit_test_setup_teardown(test_host_down_under_a_run_jumps_sequence_and_drops_log,
                                        s_setup, s_teardown),
        cmocka_unit_test_setup_teardown(test_clean_stop_then_reboot_keeps_sequence, s_setup,
                                        s_teardown),
        cmocka_unit_test_setup_teardown(test_unknown_boot_never_jumps, s_setup, s_teardown),
        cmocka_unit_test_setup_teardown(test_second_open_of_same_dir_fails, s_setup, s_teardown),
        cmocka_unit_test_setup_teardown(
            test_removed_directory_is_noticed_and_recreated_in_the_epoch, s_setup, s_teardown),
        cmocka_unit_test_setup_teardown(test_emptied_directory_or_windows_is_noticed_and_cleared,
                                        s_setup, s_teardown),
        cmocka_unit_test_setup_teardown(test_another_store_in_its_place_is_left_alone, s_setup,
                                        s_teardown),
        cmocka_unit_test_setup_teardown(test_other_files_in_its_place_are_left_alone, s_setup,
                                        s_teardown),
        cmocka_unit_test_setup_teardown(test_healthy_store_never_reads_as_lost, s_setup,
                                        s_teardown),
        cmocka_unit_test_setup_teardown(test_failed_look_is_no_loss, s_setup, s_teardown),
        cmocka_unit_test_setup_teardown(test_recreate_refuses_a_store_not_lost, s_setup,
                                        s_teardown),
        cmocka_unit_test_setup_teardown(test_removed_dir_still_mounted_is_refused_and_kept, s_setup,
                                        s_teardown),
        cmocka_unit_test_setup_teardown(test_recreate_waits_until_a_file_can_be_synced_there,
                                        s_setup, s_teardown),
        cmocka_unit_test_setup_teardown(test_rebuild_cut_short_means_a_new_epoch, s_setup,
                                        s_teardown),
        cmocka_unit_test_setup_teardown(test_copy_of_our_store_in_its_place_loses_its_epoch_first,
                                        s_setup, s_teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
