/*
 * fuzz_store - libFuzzer target: the aggregator's start from any data directory
 *
 * At start the aggregator opens its LevelDB data directory (store_open: the
 * main database and windows/, moving window records of an older layout) and
 * reads everything back: decisions (restored into the decision table),
 * the sequence log, allowlist entries (restored into the allowlist), sites,
 * tombstones of removed allowlist entries and sites (for the failover peer),
 * sensor status and dedup state, window counters (imported into the window)
 * and the meta numbers. A damaged or hand-edited directory must give a
 * skipped record or a refused start, never a crash or a state that makes no
 * sense. LevelDB's own file format is LevelDB's to check, so the input gives
 * records, written into a fresh directory for every run.
 *
 * Input: the first byte picks the run: bit 0 the boot of this start (1 or 2,
 * so a record m/boot of the other with m/clean 0 means the host went down),
 * bit 1 sync_decisions. The rest is a list of records, each a selector byte,
 * a key length byte, a value length byte, then the key and value bytes. The
 * selector's low 4 bits put the record in a place with a prefix:
 *   0 main, key as given        8  main "n/"  (sensor status)
 *   1 main "m/"                 9  main "x/"  (dedup state)
 *   2 main "d/"                 10 main "m/epoch" (key bytes ignored)
 *   3 main "q/" + 8-byte seq    11 main "m/seq"
 *     of the first key byte     12 main "m/boot"
 *   4 main "w/" (older layout)  13 main "m/clean"
 *   5 windows "w/"              14 main "m/wkeys"
 *   6 main "a/" (allowlist)     15 windows, key as given
 *   7 main "s/" (sites)
 * Bit 4 of the selector adds 256 to the key length (names longer than a store
 * buffer). Bit 5 of the selector puts the record in main under "t/" + the key
 * bytes (a tombstone; its low 4 bits are then ignored): 8 key bytes make the
 * 10-byte key store_tomb_load reads (the big-endian identity), any other length
 * one it skips. A value is 8 bytes when the value length byte is 0xFF (m/
 * numbers).
 *
 * The directory is opened with store_open_boot() and read by every loader as
 * server_new() does (decisions_restore, allowlist_restore, window_import,
 * dedup_import; a tombstone is kept as s_restore_tomb keeps it: it unpacks
 * with shared_rec_unpack, is removed and its identity is its key's), then
 * changes are written, the store flushed, closed and opened again: what loads
 * must be what was there plus the changes.
 *
 * The change written removes every decision restored (as a revocation would)
 * and adds a new one, deletes the first tombstone loaded (store_tomb_del) and
 * puts a valid one (an IP entry's, store_tomb_put).
 *
 * Oracles: the sequence number is at least every restored decision's and the
 * log floor is at most the sequence number; changes-since answers in order and
 * up to the sequence number; a tombstone kept is of an allowlist entry or a
 * site (a valid site name), changed after 0, and packs and unpacks to the same
 * identity; the reopened store has the same epoch, the written seq, the same
 * allowlist, window, dedup, site and tombstone records (each tombstone kept or
 * not as before), the new decision and tombstone, and none of those removed (a
 * record that outlives its removal comes back at every start).
 * Logging goes to /dev/null unless BACKSTOP_FUZZ_LOG is set.
 */
#include <fcntl.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "allowlist.h"
#include "decisions.h"
#include "dedup.h"
#include "kv.h"
#include "msg.h"
#include "server.h"
#include "shared.h"
#include "store.h"
#include "window.h"
#include "xalloc.h"
#include "fuzz_lib.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define S_NOW (1700000000LL * 1000) /* the clock of the restore, fixed */

#define CHECK(cond) FUZZ_CHECK(cond)

static char s_root[64]; /* a scratch directory, one data directory in it per run */
static unsigned s_runs;

/* what the reads add up to: kept so that they are not optimised away */
static volatile size_t s_sink;

static void s_cleanup(void)
{
    fuzz_rmtree(s_root);
}

static void s_init(void)
{
    fuzz_quiet();
    /* in memory when it can be: the store syncs its writes, and a disk makes that slow */
    struct stat sb;
    snprintf(s_root, sizeof(s_root), "%s/fuzz_store.XXXXXX",
             stat("/dev/shm", &sb) == 0 && S_ISDIR(sb.st_mode) ? "/dev/shm" : "/tmp");
    fuzz_mkdtemp(s_root);
    atexit(s_cleanup);
}

/* Writes the input's records into the main database dir and its windows/. */
static void s_write_dir(const char *dir, const uint8_t *data, size_t size)
{
    char *wdir = xasprintf("%s/windows", dir);
    kv_t *kv = kv_open(dir, 1, NULL);
    kv_t *wkv = kv_open(wdir, 1, NULL);
    if (!kv || !wkv)
        abort();
    kv_batch_t *b = kv_batch_new(), *wb = kv_batch_new();
    static const char *const meta[] = {"m/epoch", "m/seq", "m/boot", "m/clean", "m/wkeys"};
    static const char *const prefix[] = {"",   "m/", "d/", "q/", "w/", "w/", "a/", "s/",
                                         "n/", "x/", "",   "",   "",   "",   "",   ""};
    while (size >= 3) {
        uint8_t sel = data[0] & 15;
        bool tomb = (data[0] & 32) != 0;
        size_t klen = data[1] + ((data[0] & 16) ? 256 : 0), vlen = data[2];
        bool u64val = data[2] == 0xFF;
        data += 3;
        size -= 3;
        if (klen > size)
            klen = size;
        const uint8_t *k = data;
        data += klen;
        size -= klen;
        if (u64val)
            vlen = 8;
        if (vlen > size)
            vlen = size;
        const uint8_t *v = data;
        data += vlen;
        size -= vlen;

        uint8_t key[2 + 512];
        size_t kl = 0;
        if (tomb) {
            memcpy(key, "t/", 2);
            memcpy(key + 2, k, klen);
            kl = 2 + klen;
        } else if (sel >= 10 && sel <= 14) {
            kl = strlen(meta[sel - 10]);
            memcpy(key, meta[sel - 10], kl);
        } else if (sel == 3) {
            memcpy(key, "q/", 2);
            kv_u64_put(key + 2, klen ? k[0] : 0);
            kl = 10;
        } else {
            kl = strlen(prefix[sel]);
            memcpy(key, prefix[sel], kl);
            memcpy(key + kl, k, klen);
            kl += klen;
        }
        kv_batch_put(!tomb && (sel == 5 || sel == 15) ? wb : b, key, kl, v, vlen);
    }
    if (kv_batch_write(kv, b, 0) != 0 || kv_batch_write(wkv, wb, 0) != 0)
        abort();
    kv_batch_destroy(&b);
    kv_batch_destroy(&wb);
    kv_close(&wkv);
    kv_close(&kv);
    xfree(wdir);
}

/* A tombstone record loaded: its identity and whether it was kept. */
typedef struct {
    uint64_t identity;
    bool kept;
} s_tomb_t;

/* What one start loaded. */
typedef struct {
    decisions_t *decisions;
    allowlist_t *allow;
    window_t *window;
    dedup_t *dedup;
    uint64_t max_seq; /* highest seq of a restored decision */
    long nd, na, nw, nsen, ndd, nsit, ntomb;
    size_t restored_d, restored_a, windows_ok, dedup_ok;
    s_tomb_t *tombs; /* ntomb of them, in the order loaded */
    size_t tombs_cap, tombs_kept;
    size_t sink;
} s_state_t;

static int s_decision(const decision_t *d, void *arg)
{
    s_state_t *s = arg;
    s->sink += strlen(d->id) + strlen(d->value) + strlen(d->site) + strlen(d->reason) +
               strlen(d->origin_who) + strlen(d->evidence.rule) + strlen(d->evidence.sample);
    for (uint32_t i = 0; i < d->evidence.nshares; i++)
        s->sink += strlen(d->evidence.shares[i].site);
    if (decisions_restore(s->decisions, d) == 0) {
        s->restored_d++;
        if (d->seq > s->max_seq)
            s->max_seq = d->seq;
    }
    return 0;
}

static int s_allow(const allow_entry_t *e, void *arg)
{
    s_state_t *s = arg;
    s->sink += strlen(e->text) + strlen(e->who) + strlen(e->reason);
    if (allowlist_restore(s->allow, e) == 0)
        s->restored_a++;
    return 0;
}

static int s_window(const uint8_t *blob, size_t len, void *arg)
{
    s_state_t *s = arg;
    if (window_import(s->window, blob, len, S_NOW) == 0)
        s->windows_ok++;
    return 0;
}

static int s_sensor(const char *site, const char *sensor, const void *val, size_t len, void *arg)
{
    s_state_t *s = arg;
    s->sink += strlen(site) + strlen(sensor) + len + (len ? ((const uint8_t *)val)[len - 1] : 0);
    return 0;
}

static int s_dedup(const char *site, const char *sensor, const void *val, size_t len, void *arg)
{
    s_state_t *s = arg;
    s->sink += strlen(site) + strlen(sensor);
    if (dedup_import(s->dedup, val, len) == 0)
        s->dedup_ok++;
    return 0;
}

static int s_site(const char *name, const char *pub, int64_t created, const char *who, void *arg)
{
    s_state_t *s = arg;
    s->sink += strlen(name) + strlen(pub) + strlen(who) + (size_t)created;
    return 0;
}

/* A tombstone as server.c's s_restore_tomb takes it, up to the reconciliation with the
 * live entries: kept when it unpacks, is removed and its identity is its key's. */
static int s_tomb(uint64_t identity, const uint8_t *blob, size_t len, void *arg)
{
    s_state_t *s = arg;
    shared_rec_t r;
    bool kept =
        shared_rec_unpack(blob, len, &r) == 0 && r.removed && shared_identity(&r) == identity;
    if (s->tombs_cap == (size_t)s->ntomb) {
        s->tombs_cap = s->tombs_cap ? 2 * s->tombs_cap : 8;
        s->tombs = xrealloc(s->tombs, s->tombs_cap * sizeof(*s->tombs));
    }
    s->tombs[s->ntomb++] = (s_tomb_t){.identity = identity, .kept = kept};
    if (!kept)
        return 0;
    s->tombs_kept++;
    CHECK(r.kind == SHARED_ALLOW || r.kind == SHARED_SITE);
    CHECK(r.changed_ms > 0);
    if (r.kind == SHARED_SITE)
        CHECK(server_site_name_ok(r.site));
    /* what the daemon would send its peer, or store again, reads back as the same entry */
    size_t plen = 0;
    uint8_t *p = shared_rec_pack(&r, &plen);
    shared_rec_t back;
    CHECK(shared_rec_unpack(p, plen, &back) == 0);
    CHECK(back.removed && back.kind == r.kind && shared_identity(&back) == identity);
    xfree(p);
    /* the reconciliation's lookup of a live entry the same */
    if (r.kind == SHARED_ALLOW)
        s->sink += allowlist_find_same(s->allow, &r.allow);
    s->sink += strlen(shared_rec_text(&r)) + strlen(r.who) + (size_t)r.changed_ms;
    return 0;
}

/* The loaded tombstone of identity, or NULL. */
static const s_tomb_t *s_tomb_find(const s_state_t *s, uint64_t identity)
{
    for (long i = 0; i < s->ntomb; i++)
        if (s->tombs[i].identity == identity)
            return &s->tombs[i];
    return NULL;
}

/* changes-since: strictly in order, one after since */
typedef struct {
    uint64_t next;
    size_t sink;
} s_since_t;

static int s_change(const decision_change_t *c, void *arg)
{
    s_since_t *s = arg;
    if (c->seq != s->next)
        abort();
    s->next++;
    s->sink += strlen(c->decision.id) + (size_t)c->kind;
    return 0;
}

/* Loads everything as server_new() does; checks what makes sense. */
static void s_load(store_t *st, s_state_t *s)
{
    memset(s, 0, sizeof(*s));
    uint64_t epoch = store_epoch(st), seq = store_seq(st);
    if (epoch == 0)
        abort();
    s->decisions = decisions_new(epoch, seq, 64);
    s->allow = allowlist_new();
    window_config_t wc = {.bucket_ms = 10000,
                          .span_ms = 300000,
                          .initial_entries = 16,
                          .max_entries = 4096,
                          .seed = 0x5eed,
                          .track_dirty = 1};
    s->window = window_new(&wc);
    s->dedup = dedup_new(64, 0);
    uint64_t wkeys = 0;
    s->sink += (size_t)store_meta_get(st, "wkeys", &wkeys) + (size_t)wkeys;
    s->nd = store_decisions_load(st, s_decision, s);
    s->na = store_allow_load(st, s_allow, s);
    s->nw = store_window_load(st, s_window, s);
    s->nsen = store_sensor_load(st, 'n', s_sensor, s);
    s->ndd = store_sensor_load(st, 'x', s_dedup, s);
    s->nsit = store_site_load(st, s_site, s);
    long ntomb = store_tomb_load(st, s_tomb, s);
    if (s->nd < 0 || s->na < 0 || s->nw < 0 || s->nsen < 0 || s->ndd < 0 || s->nsit < 0 ||
        ntomb < 0)
        abort(); /* a read error on a sound LevelDB */
    /* the count is of the records it called back for */
    CHECK(ntomb == s->ntomb);
    /* a restored decision's change is one the store has numbered */
    if (s->max_seq > seq)
        abort();
    if (store_log_floor(st) > seq)
        abort();
    uint64_t since[] = {0, store_log_floor(st), seq > 0 ? seq - 1 : 0, seq, seq + 1, 3};
    for (size_t i = 0; i < sizeof(since) / sizeof(since[0]); i++) {
        s_since_t ss = {.next = since[i] + 1};
        if (store_changes_since(st, since[i], s_change, &ss) == 0 && ss.next != seq + 1)
            abort();
        s->sink += ss.sink;
    }
    uint64_t v = 0;
    static const char *const names[] = {"epoch", "seq", "boot", "clean", "moved", "sync", "x"};
    for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++)
        s->sink += (size_t)store_meta_get(st, names[i], &v) + (size_t)v;
    s->sink += (size_t)store_jumped(st) + decisions_count(s->decisions) +
               allowlist_count(s->allow) + window_keys(s->window) + dedup_sensors(s->dedup);
    /* restored decisions run out as after a start */
    s->sink += decisions_expire(s->decisions, S_NOW);
}

static void s_free(s_state_t *s)
{
    decisions_destroy(&s->decisions);
    allowlist_destroy(&s->allow);
    window_destroy(&s->window);
    dedup_destroy(&s->dedup);
    xfree(s->tombs);
}

/* Removal changes for the restored decisions, numbered on from seq. */
typedef struct {
    uint64_t epoch, seq;
    decision_change_t *c;
    size_t n;
} s_changes_t;

static int s_remove(const decision_t *d, void *arg)
{
    s_changes_t *ch = arg;
    decision_change_t *c = &ch->c[ch->n++];
    memset(c, 0, sizeof(*c));
    c->kind = DECISION_REMOVE;
    c->why = DECISION_WHY_REVOKED;
    c->seq = ++ch->seq;
    c->epoch = ch->epoch;
    c->decision = *d;
    c->decision.seq = c->seq;
    return 0;
}

/* A decision restored after the removals: only the new one, none of those removed. */
static int s_removed(const decision_t *d, void *arg)
{
    const s_state_t *a = arg;
    return strcmp(d->id, "ZZZZZZZZ") != 0 && decisions_find(a->decisions, d->id) != NULL;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size == 0)
        return 0;
    if (!s_root[0])
        s_init();
    char dir[96];
    snprintf(dir, sizeof(dir), "%s/d%u", s_root, s_runs++);
    uint64_t boot = (data[0] & 1) ? 2 : 1;
    bool sync = (data[0] & 2) != 0;
    s_write_dir(dir, data + 1, size - 1);

    bool created = false;
    store_t *st = store_open_boot(dir, sync, boot, &created);
    if (st == NULL) {
        fuzz_rmtree(dir);
        return 0; /* refused (logged) */
    }
    s_state_t a;
    s_load(st, &a);
    uint64_t epoch = store_epoch(st), seq = store_seq(st);

    /* the daemon goes on: every restored decision removed, a new one, a sensor record, a
     * flush */
    s_changes_t ch = {.epoch = epoch, .seq = seq};
    ch.c = xcalloc(decisions_count(a.decisions) + 1, sizeof(*ch.c));
    decisions_foreach(a.decisions, NULL, s_remove, &ch);
    decision_change_t *c = &ch.c[ch.n++];
    c->kind = DECISION_UPSERT;
    c->why = DECISION_WHY_NEW;
    c->seq = ++ch.seq;
    c->epoch = epoch;
    snprintf(c->decision.id, sizeof(c->decision.id), "ZZZZZZZZ");
    c->decision.scope = BS_SCOPE_SUBJECT;
    c->decision.fp = 0xf00dULL;
    snprintf(c->decision.value, sizeof(c->decision.value), "cheap meds");
    c->decision.action = BS_ACTION_REJECT;
    c->decision.reach = BS_REACH_FLEET;
    c->decision.created_ms = S_NOW;
    c->decision.expires_ms = S_NOW + 3600000;
    c->decision.origin = BS_ORIGIN_CLI;
    c->decision.seq = ch.seq;
    c->decision.epoch = epoch;
    int written = store_changes_write(st, ch.c, ch.n);
    xfree(ch.c);
    if (ch.seq > STORE_SEQ_MAX) {
        /* the store numbers nothing beyond its highest seq (its next start would refuse) */
        if (written == 0 || store_seq(st) != seq)
            abort();
        s_free(&a);
        store_close(&st);
        fuzz_rmtree(dir);
        return 0;
    }
    if (written != 0)
        abort();
    /* an operator's removals for the peer: the first tombstone loaded goes (it was
     * reconciled away), a valid one comes */
    bool del = a.ntomb > 0;
    uint64_t del_id = del ? a.tombs[0].identity : 0;
    if (del)
        CHECK(store_tomb_del(st, del_id) == 0);
    allow_entry_t e;
    memset(&e, 0, sizeof(e));
    CHECK(allowlist_entry_parse(&e, ALLOW_IP, "192.0.2.77") == 0);
    snprintf(e.who, sizeof(e.who), "op");
    snprintf(e.reason, sizeof(e.reason), "relay");
    e.created_ms = S_NOW - 60000;
    shared_rec_t tomb;
    shared_rec_allow(&tomb, &e);
    tomb.removed = true;
    tomb.changed_ms = S_NOW;
    uint64_t put_id = shared_identity(&tomb);
    size_t tlen = 0;
    uint8_t *tblob = shared_rec_pack(&tomb, &tlen);
    CHECK(store_tomb_put(st, put_id, tblob, tlen) == 0);
    xfree(tblob);
    /* what the reopened store holds: the same records less the one deleted, plus the one
     * put unless it replaced one (its identity is the input's to pick too) */
    long ntomb = a.ntomb - (del ? 1 : 0) +
                 (s_tomb_find(&a, put_id) != NULL && !(del && del_id == put_id) ? 0 : 1);
    store_sensor_queue(st, 'n', "fuzz-site", "fuzz-sensor", "status", 6);
    store_meta_queue(st, "wkeys", window_entries(a.window));
    if (store_flush(st) != 0)
        abort();
    s_since_t ss = {.next = seq + 1};
    if (store_changes_since(st, seq, s_change, &ss) != 0 || ss.next != ch.seq + 1)
        abort();
    store_close(&st);

    /* a clean stop in the same boot: the same epoch, the written seq, the same records */
    st = store_open_boot(dir, sync, boot, &created);
    if (st == NULL)
        abort();
    if (created || store_jumped(st) || store_epoch(st) != epoch || store_seq(st) != ch.seq)
        abort();
    s_state_t b;
    s_load(st, &b);
    if (b.na != a.na || b.nw != a.nw || b.ndd != a.ndd || b.nsit != a.nsit ||
        b.restored_a != a.restored_a || b.windows_ok != a.windows_ok)
        abort();
    /* the tombstones: every one as it was (kept or not), the one deleted gone, the one put
     * there and kept */
    CHECK(b.ntomb == ntomb);
    for (long i = 0; i < b.ntomb; i++) {
        const s_tomb_t *t = &b.tombs[i], *was = s_tomb_find(&a, t->identity);
        if (t->identity == put_id)
            continue;
        CHECK(!(del && t->identity == del_id));
        CHECK(was != NULL && was->kept == t->kept);
    }
    const s_tomb_t *put = s_tomb_find(&b, put_id);
    CHECK(put != NULL && put->kept);
    /* what was removed stays removed; the new decision is there */
    if (decisions_foreach(b.decisions, NULL, s_removed, &a) != 0 ||
        decisions_find(b.decisions, "ZZZZZZZZ") == NULL)
        abort();
    s_sink = a.sink + b.sink;
    s_free(&a);
    s_free(&b);
    store_close(&st);
    fuzz_rmtree(dir);
    return 0;
}
