/* test_dcache - decisions are found by key until they expire, persist across reopen,
 * a snapshot replaces only the aggregator's decisions, a reloaded file only its own. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "dcache.h"
#include "kv.h"

#include <signal.h>
#include <stdio.h>
#include <sys/resource.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static dcache_entry_t s_entry(const char *id, int scope, uint64_t fp, int origin, int64_t exp)
{
    dcache_entry_t e;
    memset(&e, 0, sizeof(e));
    snprintf(e.id, sizeof(e.id), "%s", id);
    e.scope = scope;
    e.fp = fp;
    e.action = DCACHE_ACTION_REJECT;
    e.origin = origin;
    e.created_ms = 1000;
    e.expires_ms = exp;
    snprintf(e.value, sizeof(e.value), "value of %s", id);
    return e;
}

static void test_lookup_matches_scope_and_fp(void **state)
{
    dcache_t *c = dcache_new(NULL, NULL, 0);
    dcache_entry_t e = s_entry("A1", DCACHE_SCOPE_SUBJECT, 42, DCACHE_ORIGIN_RULE, 5000);
    assert_int_equal(dcache_upsert(c, &e), 0);
    dcache_entry_t out[4];
    assert_int_equal(dcache_lookup(c, DCACHE_SCOPE_SUBJECT, 42, 2000, out, 4), 1);
    assert_string_equal(out[0].id, "A1");
    assert_int_equal(dcache_lookup(c, DCACHE_SCOPE_ORIG_SUBJECT, 42, 2000, out, 4), 0);
    assert_int_equal(dcache_lookup(c, DCACHE_SCOPE_SUBJECT, 43, 2000, out, 4), 0);
    dcache_destroy(&c);
    assert_null(c);
    dcache_destroy(&c);
}

static void test_expired_entries_are_not_returned(void **state)
{
    dcache_t *c = dcache_new(NULL, NULL, 0);
    dcache_entry_t e = s_entry("A1", DCACHE_SCOPE_SUBJECT, 42, DCACHE_ORIGIN_RULE, 5000);
    dcache_upsert(c, &e);
    dcache_entry_t out[1];
    assert_int_equal(dcache_lookup(c, DCACHE_SCOPE_SUBJECT, 42, 4999, out, 1), 1);
    assert_int_equal(dcache_lookup(c, DCACHE_SCOPE_SUBJECT, 42, 5000, out, 1), 0);
    assert_int_equal(dcache_expire(c, 5000), 1);
    assert_int_equal(dcache_count(c), 0);
    dcache_destroy(&c);
}

static void test_upsert_replaces_by_id(void **state)
{
    dcache_t *c = dcache_new(NULL, NULL, 0);
    dcache_entry_t e = s_entry("A1", DCACHE_SCOPE_SUBJECT, 42, DCACHE_ORIGIN_RULE, 5000);
    dcache_upsert(c, &e);
    e.fp = 7; /* same id, another key: the old key no longer matches */
    dcache_upsert(c, &e);
    dcache_entry_t out[1];
    assert_int_equal(dcache_count(c), 1);
    assert_int_equal(dcache_lookup(c, DCACHE_SCOPE_SUBJECT, 42, 0, out, 1), 0);
    assert_int_equal(dcache_lookup(c, DCACHE_SCOPE_SUBJECT, 7, 0, out, 1), 1);
    assert_int_equal(dcache_remove(c, "A1"), 0);
    assert_int_equal(dcache_remove(c, "A1"), -1);
    dcache_destroy(&c);
}

/* Thousands of decisions, several a key, through many growths of the table: each is found by
 * id and by key; an upsert by id moves one to its new key, a removal by id or by origin
 * takes it out of both, and the rest stay. */
static void test_many_decisions_by_id_and_key(void **state)
{
    enum { N = 6000, KEYS = 1500 };
    dcache_t *c = dcache_new(NULL, NULL, 0);
    char id[32];
    for (int i = 0; i < N; i++) {
        snprintf(id, sizeof(id), "d%d", i);
        dcache_entry_t e = s_entry(id, DCACHE_SCOPE_SUBJECT, (uint64_t)(i % KEYS),
                                   i % 2 ? DCACHE_ORIGIN_LOCAL : DCACHE_ORIGIN_RULE, 9000);
        assert_int_equal(dcache_upsert(c, &e), 0);
    }
    assert_int_equal(dcache_count(c), N);
    dcache_entry_t out[8];
    for (int i = 0; i < N; i++) {
        snprintf(id, sizeof(id), "d%d", i);
        assert_int_equal(dcache_get(c, id, out), 0);
        assert_string_equal(out[0].id, id);
        assert_int_equal(out[0].fp, i % KEYS);
    }
    for (int k = 0; k < KEYS; k++)
        assert_int_equal(dcache_lookup(c, DCACHE_SCOPE_SUBJECT, (uint64_t)k, 0, out, 8), 4);
    for (int i = 0; i < N; i += 3) { /* to key KEYS + i */
        snprintf(id, sizeof(id), "d%d", i);
        dcache_entry_t e = s_entry(id, DCACHE_SCOPE_SUBJECT, (uint64_t)(KEYS + i),
                                   i % 2 ? DCACHE_ORIGIN_LOCAL : DCACHE_ORIGIN_RULE, 9000);
        assert_int_equal(dcache_upsert(c, &e), 0);
    }
    assert_int_equal(dcache_count(c), N);
    for (int i = 0; i < N; i++) {
        snprintf(id, sizeof(id), "d%d", i);
        assert_int_equal(dcache_get(c, id, out), 0);
        assert_int_equal(out[0].fp, i % 3 ? (uint64_t)(i % KEYS) : (uint64_t)(KEYS + i));
        if (i % 3 == 0)
            assert_int_equal(
                dcache_lookup(c, DCACHE_SCOPE_SUBJECT, (uint64_t)(KEYS + i), 0, out, 8), 1);
    }
    for (int i = 1; i < N; i += 3) {
        snprintf(id, sizeof(id), "d%d", i);
        assert_int_equal(dcache_remove(c, id), 0);
        assert_int_equal(dcache_remove(c, id), -1);
        assert_int_equal(dcache_get(c, id, out), -1);
    }
    assert_int_equal(dcache_count(c), N - N / 3);
    assert_int_equal(dcache_remove_origin(c, DCACHE_ORIGIN_LOCAL), N / 3);
    for (int i = 0; i < N; i++) {
        snprintf(id, sizeof(id), "d%d", i);
        assert_int_equal(dcache_get(c, id, out), i % 3 == 1 || i % 2 ? -1 : 0);
    }
    assert_int_equal(dcache_count(c), N - N / 3 - N / 3);
    dcache_destroy(&c);
}

/* From 64 buckets to 128 k: no upsert moves more than DCACHE_MOVE_BUCKETS buckets of the
 * old tables, each growth is finished before the next, and decisions are found by key and
 * by id while a growth is under way, those added and those removed during it too. */
static uint64_t s_fp_of(int i)
{
    return (uint64_t)i * 0x9e3779b97f4a7c15ULL;
}

static void test_growth_is_bounded(void **state)
{
    enum { N = 100000 };
    dcache_t *c = dcache_new(NULL, NULL, 0);
    bool *gone = calloc(N, sizeof(*gone));
    assert_non_null(gone);
    dcache_stats_t st;
    dcache_stats(c, &st);
    size_t prev = st.buckets, growths = 0, during = 0, removed = 0;
    uint64_t olds_total = 0;
    char id[32];
    dcache_entry_t out[2];
    for (int i = 0; i < N; i++) {
        snprintf(id, sizeof(id), "d%d", i);
        dcache_entry_t e =
            s_entry(id, DCACHE_SCOPE_CLIENT_IP, s_fp_of(i), DCACHE_ORIGIN_LOCAL, 1LL << 50);
        uint64_t moved = st.moved;
        assert_int_equal(dcache_upsert(c, &e), 0);
        dcache_stats(c, &st);
        assert_true(st.moved - moved <= DCACHE_MOVE_BUCKETS);
        if (st.buckets != prev) {
            assert_int_equal(st.buckets, 2 * prev);
            /* being moved, or moved at once by the upsert that started it */
            assert_true(st.old_buckets == prev || (!st.old_buckets && prev <= DCACHE_MOVE_BUCKETS));
            olds_total += prev;
            prev = st.buckets;
            growths++;
        }
        if (!st.old_buckets)
            continue;
        during++; /* a growth under way: an earlier one, this one, a removal */
        int j = (int)((uint64_t)i * 2654435761u % (uint64_t)(i + 1));
        snprintf(id, sizeof(id), "d%d", j);
        assert_int_equal(dcache_get(c, id, out), gone[j] ? -1 : 0);
        assert_int_equal(dcache_lookup(c, DCACHE_SCOPE_CLIENT_IP, s_fp_of(j), 0, out, 2), !gone[j]);
        assert_int_equal(dcache_lookup(c, DCACHE_SCOPE_CLIENT_IP, s_fp_of(i), 0, out, 2), 1);
        snprintf(id, sizeof(id), "d%d", i / 2);
        assert_int_equal(dcache_remove(c, id), gone[i / 2] ? -1 : 0);
        removed += !gone[i / 2];
        gone[i / 2] = true;
        assert_int_equal(dcache_get(c, id, out), -1);
        dcache_stats(c, &st);
    }
    assert_true(growths >= 10);
    assert_true(during > 200); /* an upsert and a removal move 2 slices */
    while (st.old_buckets) {   /* expiry calls finish a growth, a slice at a time */
        uint64_t moved = st.moved;
        assert_int_equal(dcache_expire(c, 0), 0);
        dcache_stats(c, &st);
        assert_true(st.moved > moved && st.moved - moved <= DCACHE_MOVE_BUCKETS);
    }
    assert_int_equal(st.moved, olds_total); /* every old bucket, once */
    assert_int_equal(st.held, N - removed);
    for (int i = 0; i < N; i++) {
        snprintf(id, sizeof(id), "d%d", i);
        assert_int_equal(dcache_get(c, id, out), gone[i] ? -1 : 0);
        assert_int_equal(dcache_lookup(c, DCACHE_SCOPE_CLIENT_IP, s_fp_of(i), 0, out, 2), !gone[i]);
    }
    free(gone);
    dcache_destroy(&c);
}

/* A storm's blocks expire together: each dcache_expire() call drops at most
 * DCACHE_EXPIRE_DROPS, the earliest first and only expired ones, and a lookup treats an
 * expired decision as absent whether or not it has been dropped; the calls drop every
 * expired one in the end and leave the live ones. */
static void test_expire_is_bounded_and_earliest_first(void **state)
{
    enum { N = 3 * DCACHE_EXPIRE_DROPS + 100, LIVE = 200 };
    dcache_t *c = dcache_new(NULL, NULL, 0);
    char id[32];
    for (int i = 0; i < N + LIVE; i++) { /* expiry rank r: 1000 + 10 r, shuffled */
        int r = (int)((long)i * 7919 % N);
        snprintf(id, sizeof(id), "d%d", i);
        dcache_entry_t e = s_entry(id, DCACHE_SCOPE_SUBJECT, (uint64_t)i, DCACHE_ORIGIN_LOCAL,
                                   i < N ? 1000 + 10 * r : 1LL << 50);
        assert_int_equal(dcache_upsert(c, &e), 0);
    }
    int64_t now = 1000 + 10 * N;
    dcache_entry_t out[2];
    for (int i = 0; i < N + LIVE; i++) /* nothing dropped yet, the expired not returned */
        assert_int_equal(dcache_lookup(c, DCACHE_SCOPE_SUBJECT, (uint64_t)i, now, out, 2), i >= N);
    assert_int_equal(dcache_count(c), N + LIVE);
    assert_int_equal(dcache_expire(c, 1000 + 10 * 50), 51); /* ranks 0..50 only */
    size_t dropped = 51, calls = 0, n;
    while ((n = dcache_expire(c, now)) > 0) {
        assert_true(n <= DCACHE_EXPIRE_DROPS);
        dropped += n;
        calls++;
        for (int i = 0; i < N; i++) { /* exactly the earliest are gone */
            int r = (int)((long)i * 7919 % N);
            snprintf(id, sizeof(id), "d%d", i);
            assert_int_equal(dcache_get(c, id, out), (size_t)r < dropped ? -1 : 0);
        }
        assert_int_equal(dcache_count(c), N + LIVE - dropped);
    }
    assert_int_equal(dropped, N);
    assert_int_equal(calls, (N - 51 + DCACHE_EXPIRE_DROPS - 1) / DCACHE_EXPIRE_DROPS);
    for (int i = N; i < N + LIVE; i++)
        assert_int_equal(dcache_lookup(c, DCACHE_SCOPE_SUBJECT, (uint64_t)i, now, out, 2), 1);
    dcache_destroy(&c);
}

/* The expiry order survives every other change, against a model: upserts that move a
 * decision's expiry either way, removals by id and by origin, snapshots, and expiry calls
 * at advancing times; each call drops the earliest expired ones up to the bound, and
 * the set held is the model's after every call. */
static void test_expire_order_survives_changes(void **state)
{
    enum { IDS = 4000, ROUNDS = 40, OPS = 3000, SEC = 100000 }; /* times: seconds * SEC + id */
    dcache_t *c = dcache_new(NULL, NULL, 0);
    int64_t *exp = malloc(IDS * sizeof(*exp)); /* the model: 0 = absent */
    int *origin = malloc(IDS * sizeof(*origin));
    assert_non_null(exp);
    assert_non_null(origin);
    memset(exp, 0, IDS * sizeof(*exp));
    uint64_t rnd = 88172645463325252ULL;
    char id[32];
    int64_t now_s = 0;
    size_t bounded = 0;
    dcache_entry_t out[1];
    for (int round = 0; round < ROUNDS; round++) {
        for (int k = 0; k < OPS; k++) {
            rnd ^= rnd << 13, rnd ^= rnd >> 7, rnd ^= rnd << 17;
            int i = (int)(rnd % IDS);
            snprintf(id, sizeof(id), "d%d", i);
            if ((rnd >> 20) % 5 == 0) {
                assert_int_equal(dcache_remove(c, id), exp[i] ? 0 : -1);
                exp[i] = 0;
                continue;
            }
            /* unique times, some already expired */
            int64_t t = (now_s + (int64_t)((rnd >> 24) % 60) - 10) * SEC + i;
            int o = (rnd >> 40) % 2 ? DCACHE_ORIGIN_LOCAL : DCACHE_ORIGIN_RULE;
            dcache_entry_t e = s_entry(id, DCACHE_SCOPE_SUBJECT, (uint64_t)i, o, t);
            assert_int_equal(dcache_upsert(c, &e), 0);
            exp[i] = t;
            origin[i] = o;
        }
        if (round % 7 == 3) { /* a snapshot: the feed's decisions replaced by a few */
            dcache_entry_t snap[3];
            for (int k = 0; k < 3; k++) {
                int i = (round * 3 + k) % IDS;
                snprintf(id, sizeof(id), "d%d", i);
                snap[k] = s_entry(id, DCACHE_SCOPE_SUBJECT, (uint64_t)i, DCACHE_ORIGIN_RULE,
                                  (now_s + 30) * SEC + i);
            }
            for (int i = 0; i < IDS; i++)
                if (exp[i] && origin[i] == DCACHE_ORIGIN_RULE)
                    exp[i] = 0;
            assert_int_equal(dcache_replace_feed(c, snap, 3, 1, (uint64_t)round), 0);
            for (int k = 0; k < 3; k++) {
                int i = (round * 3 + k) % IDS;
                exp[i] = snap[k].expires_ms;
                origin[i] = DCACHE_ORIGIN_RULE;
            }
        }
        if (round % 11 == 5) {
            size_t n = 0;
            for (int i = 0; i < IDS; i++)
                if (exp[i] && origin[i] == DCACHE_ORIGIN_LOCAL) {
                    exp[i] = 0;
                    n++;
                }
            assert_int_equal(dcache_remove_origin(c, DCACHE_ORIGIN_LOCAL), n);
        }
        now_s += 7;
        int64_t cutoff = now_s * SEC;
        for (int pass = 0; pass < 4; pass++) {
            size_t expired = 0, held = 0;
            for (int i = 0; i < IDS; i++) {
                held += exp[i] != 0;
                expired += exp[i] && exp[i] <= cutoff;
            }
            size_t want = expired < DCACHE_EXPIRE_DROPS ? expired : DCACHE_EXPIRE_DROPS;
            bounded += expired > DCACHE_EXPIRE_DROPS;
            /* the model drops the want earliest */
            for (size_t d = 0; d < want; d++) {
                int min = -1;
                for (int i = 0; i < IDS; i++)
                    if (exp[i] && exp[i] <= cutoff && (min < 0 || exp[i] < exp[min]))
                        min = i;
                exp[min] = 0;
            }
            assert_int_equal(dcache_expire(c, cutoff), want);
            assert_int_equal(dcache_count(c), held - want);
            for (int i = 0; i < IDS; i++) {
                snprintf(id, sizeof(id), "d%d", i);
                assert_int_equal(dcache_get(c, id, out), exp[i] ? 0 : -1);
                if (exp[i])
                    assert_true(out[0].expires_ms == exp[i]);
            }
        }
    }
    assert_true(bounded >= ROUNDS / 2); /* the bound was hit, and the next call went on */
    free(exp);
    free(origin);
    dcache_destroy(&c);
}

static void test_snapshot_keeps_local_and_file_decisions(void **state)
{
    dcache_t *c = dcache_new(NULL, NULL, 0);
    dcache_entry_t a = s_entry("R1", DCACHE_SCOPE_SUBJECT, 1, DCACHE_ORIGIN_RULE, 9000);
    dcache_entry_t b = s_entry("L1", DCACHE_SCOPE_SUBJECT, 2, DCACHE_ORIGIN_LOCAL, 9000);
    dcache_entry_t f = s_entry("F1", DCACHE_SCOPE_SUBJECT, 3, DCACHE_ORIGIN_FILE, 9000);
    dcache_upsert(c, &a);
    dcache_upsert(c, &b);
    dcache_upsert(c, &f);
    dcache_entry_t snap[2] = {s_entry("R2", DCACHE_SCOPE_CLIENT_IP, 4, DCACHE_ORIGIN_RULE, 9000),
                              s_entry("C1", DCACHE_SCOPE_CLIENT_NET, 5, DCACHE_ORIGIN_CLI, 9000)};
    assert_int_equal(dcache_replace_feed(c, snap, 2, 77, 12), 0);
    dcache_entry_t out;
    assert_int_equal(dcache_get(c, "R1", &out), -1);
    assert_int_equal(dcache_get(c, "L1", &out), 0);
    assert_int_equal(dcache_get(c, "F1", &out), 0);
    assert_int_equal(dcache_get(c, "R2", &out), 0);
    assert_int_equal(dcache_count(c), 4);
    uint64_t epoch, seq;
    dcache_position(c, &epoch, &seq);
    assert_int_equal(epoch, 77);
    assert_int_equal(seq, 12);
    dcache_destroy(&c);
}

static void test_replace_origin_swaps_only_that_origin(void **state)
{
    dcache_t *c = dcache_new(NULL, NULL, 0);
    dcache_entry_t a = s_entry("R1", DCACHE_SCOPE_SUBJECT, 1, DCACHE_ORIGIN_RULE, 9000);
    dcache_entry_t f1 = s_entry("F1", DCACHE_SCOPE_SUBJECT, 3, DCACHE_ORIGIN_FILE, 9000);
    dcache_entry_t f2 = s_entry("F2", DCACHE_SCOPE_SUBJECT, 4, DCACHE_ORIGIN_FILE, 9000);
    dcache_upsert(c, &a);
    dcache_upsert(c, &f1);
    dcache_upsert(c, &f2);
    dcache_entry_t fresh[2] = {s_entry("F2", DCACHE_SCOPE_SUBJECT, 5, DCACHE_ORIGIN_FILE, 9000),
                               s_entry("F3", DCACHE_SCOPE_SUBJECT, 6, DCACHE_ORIGIN_FILE, 9000)};
    assert_int_equal(dcache_replace_origin(c, DCACHE_ORIGIN_FILE, fresh, 2), 0);
    dcache_entry_t out;
    assert_int_equal(dcache_get(c, "R1", &out), 0);
    assert_int_equal(dcache_get(c, "F1", &out), -1);
    assert_int_equal(dcache_get(c, "F2", &out), 0);
    assert_int_equal(out.fp, 5);
    assert_int_equal(dcache_lookup(c, DCACHE_SCOPE_SUBJECT, 4, 2000, &out, 1), 0);
    assert_int_equal(dcache_count(c), 3);
    assert_int_equal(dcache_replace_origin(c, DCACHE_ORIGIN_FILE, NULL, 0), 0);
    assert_int_equal(dcache_count(c), 1);
    dcache_destroy(&c);
}

static void test_persists_across_reopen(void **state)
{
    char dir[] = "/tmp/test_dcache.XXXXXX";
    assert_non_null(mkdtemp(dir));
    char path[128];
    snprintf(path, sizeof(path), "%s/db", dir);
    char err[256];
    dcache_t *c = dcache_new(path, err, sizeof(err));
    assert_non_null(c);
    dcache_entry_t e = s_entry("P1", DCACHE_SCOPE_ORIG_SUBJECT, 0xfeedfacecafebeefULL,
                               DCACHE_ORIGIN_LOCAL, 123456789);
    snprintf(e.value, sizeof(e.value), "text with blanks");
    e.observe = true;
    dcache_upsert(c, &e);
    dcache_set_position(c, 5, 6);
    dcache_destroy(&c);

    c = dcache_new(path, err, sizeof(err));
    assert_non_null(c);
    dcache_entry_t out;
    assert_int_equal(dcache_get(c, "P1", &out), 0);
    assert_true(out.fp == 0xfeedfacecafebeefULL);
    assert_true(out.observe);
    assert_int_equal(out.expires_ms, 123456789);
    assert_string_equal(out.value, "text with blanks");
    uint64_t epoch, seq;
    dcache_position(c, &epoch, &seq);
    assert_int_equal(seq, 6);
    dcache_remove(c, "P1");
    dcache_destroy(&c);
    c = dcache_new(path, err, sizeof(err));
    assert_int_equal(dcache_count(c), 0);
    dcache_destroy(&c);
    char cmd[160];
    snprintf(cmd, sizeof(cmd), "rm -rf %s", dir);
    assert_int_equal(system(cmd), 0);
}

/* What a bounded expiry call drops is deleted on disk too (in one batch): a restart after
 * one call holds the rest, and after the last call only the live ones. */
static void test_expire_deletes_on_disk(void **state)
{
    enum { N = DCACHE_EXPIRE_DROPS + 188, LIVE = 5 };
    char dir[] = "/tmp/test_dcache.XXXXXX";
    assert_non_null(mkdtemp(dir));
    char path[128], err[256], id[32];
    snprintf(path, sizeof(path), "%s/db", dir);
    dcache_t *c = dcache_new(path, err, sizeof(err));
    assert_non_null(c);
    for (int i = 0; i < N + LIVE; i++) {
        snprintf(id, sizeof(id), "d%d", i);
        dcache_entry_t e = s_entry(id, DCACHE_SCOPE_SUBJECT, (uint64_t)i, DCACHE_ORIGIN_LOCAL,
                                   i < N ? 2000 + i : 1LL << 50);
        assert_int_equal(dcache_upsert(c, &e), 0);
    }
    assert_int_equal(dcache_expire(c, 1LL << 40), DCACHE_EXPIRE_DROPS);
    dcache_destroy(&c);
    c = dcache_new(path, err, sizeof(err));
    assert_non_null(c);
    assert_int_equal(dcache_count(c), N + LIVE - DCACHE_EXPIRE_DROPS);
    dcache_entry_t out;
    assert_int_equal(dcache_get(c, "d0", &out), -1); /* the earliest went */
    snprintf(id, sizeof(id), "d%d", N - 1);
    assert_int_equal(dcache_get(c, id, &out), 0);
    assert_int_equal(dcache_expire(c, 1LL << 40), N - DCACHE_EXPIRE_DROPS);
    assert_int_equal(dcache_expire(c, 1LL << 40), 0);
    dcache_destroy(&c);
    c = dcache_new(path, err, sizeof(err));
    assert_non_null(c);
    assert_int_equal(dcache_count(c), LIVE);
    dcache_destroy(&c);
    char cmd[160];
    snprintf(cmd, sizeof(cmd), "rm -rf %s", dir);
    assert_int_equal(system(cmd), 0);
}

/* The size of the biggest LevelDB log file in dir (the one being written). */
static long s_log_size(const char *dir)
{
    char cmd[256];
    snprintf(cmd, sizeof(cmd), "ls -S %s/*.log | head -1 | xargs stat -c %%s", dir);
    FILE *p = popen(cmd, "r");
    assert_non_null(p);
    long n = -1;
    assert_int_equal(fscanf(p, "%ld", &n), 1);
    pclose(p);
    return n;
}

/* A removal that could not be written (a full disk; the file size limit here) must not
 * come back at the next start as a block the aggregator revoked: the stored position is
 * "none" (a full snapshot at the start) until the stored entries are written anew. */
static void test_a_removal_lost_on_a_full_disk_does_not_come_back(void **state)
{
    char dir[] = "/tmp/test_dcache.XXXXXX";
    assert_non_null(mkdtemp(dir));
    char path[128], err[256];
    snprintf(path, sizeof(path), "%s/db", dir);
    dcache_t *c = dcache_new(path, err, sizeof(err));
    assert_non_null(c);
    dcache_entry_t a = s_entry("A1", DCACHE_SCOPE_SUBJECT, 1, DCACHE_ORIGIN_RULE, 1LL << 50);
    dcache_entry_t b = s_entry("B1", DCACHE_SCOPE_SUBJECT, 2, DCACHE_ORIGIN_RULE, 1LL << 50);
    assert_int_equal(dcache_upsert(c, &a), 0);
    dcache_set_position(c, 7, 1);

    struct rlimit old, full;
    assert_int_equal(getrlimit(RLIMIT_FSIZE, &old), 0);
    signal(SIGXFSZ, SIG_IGN);
    full = old;
    full.rlim_cur = (rlim_t)s_log_size(path); /* not one byte more */
    assert_int_equal(setrlimit(RLIMIT_FSIZE, &full), 0);
    assert_int_equal(dcache_remove(c, "A1"), 0); /* gone from memory, not from the disk */
    dcache_set_position(c, 7, 2);
    assert_int_equal(setrlimit(RLIMIT_FSIZE, &old), 0);
    signal(SIGXFSZ, SIG_DFL);

    /* room again (after the second a failed reopen waits): the next change writes the
     * entries anew, then the position */
    usleep(1100 * 1000);
    assert_int_equal(dcache_upsert(c, &b), 0);
    dcache_set_position(c, 7, 3);
    dcache_destroy(&c);
    c = dcache_new(path, err, sizeof(err));
    assert_non_null(c);
    dcache_entry_t out;
    assert_int_equal(dcache_get(c, "A1", &out), -1);
    assert_int_equal(dcache_get(c, "B1", &out), 0);
    uint64_t epoch, seq;
    dcache_position(c, &epoch, &seq);
    assert_int_equal(seq, 3);
    dcache_destroy(&c);

    /* still full at the last change: the stored position is none, the start resyncs */
    c = dcache_new(path, err, sizeof(err));
    assert_int_equal(getrlimit(RLIMIT_FSIZE, &old), 0);
    signal(SIGXFSZ, SIG_IGN);
    full.rlim_cur = (rlim_t)s_log_size(path);
    assert_int_equal(setrlimit(RLIMIT_FSIZE, &full), 0);
    assert_int_equal(dcache_remove(c, "B1"), 0);
    assert_int_equal(setrlimit(RLIMIT_FSIZE, &old), 0);
    signal(SIGXFSZ, SIG_DFL);
    usleep(1100 * 1000);
    dcache_set_position(c, 7, 4); /* the rewrite works now: position 4 with B1 gone */
    dcache_destroy(&c);
    c = dcache_new(path, err, sizeof(err));
    assert_int_equal(dcache_get(c, "B1", &out), -1);
    dcache_position(c, &epoch, &seq);
    assert_int_equal(seq, 4);
    dcache_destroy(&c);
    char cmd[160];
    snprintf(cmd, sizeof(cmd), "rm -rf %s", dir);
    assert_int_equal(system(cmd), 0);
}

/* A stored key with a NUL inside its id is a corrupt record: loaded under the cut id, it
 * could never be removed from disk and came back at every start (found by fuzz_dcache). */
static void test_key_with_nul_is_corrupt(void **state)
{
    char dir[] = "/tmp/test_dcache.XXXXXX";
    assert_non_null(mkdtemp(dir));
    char path[128];
    snprintf(path, sizeof(path), "%s/db", dir);
    kv_t *kv = kv_open(path, 1, NULL);
    assert_non_null(kv);
    static const char key[] = "d/N\0X";
    static const char rec[] = "1 2a 1 0 0 1 1000 1000 expired long ago";
    assert_int_equal(kv_put(kv, key, sizeof(key) - 1, rec, sizeof(rec) - 1), 0);
    kv_close(&kv);

    char err[256];
    dcache_t *c = dcache_new(path, err, sizeof(err));
    assert_non_null(c);
    dcache_expire(c, 2000);
    dcache_destroy(&c);
    c = dcache_new(path, err, sizeof(err));
    assert_non_null(c);
    assert_int_equal(dcache_count(c), 0);
    dcache_destroy(&c);
    char cmd[160];
    snprintf(cmd, sizeof(cmd), "rm -rf %s", dir);
    assert_int_equal(system(cmd), 0);
}

static void test_names_round_trip(void **state)
{
    for (int s = DCACHE_SCOPE_SUBJECT; s <= DCACHE_SCOPE_SUBJECT_IP; s++)
        assert_int_equal(dcache_scope_from_name(dcache_scope_name(s)), s);
    assert_int_equal(dcache_scope_from_name("bogus"), -1);
    assert_string_equal(dcache_action_name(DCACHE_ACTION_TAG), "tag");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_lookup_matches_scope_and_fp),
        cmocka_unit_test(test_expired_entries_are_not_returned),
        cmocka_unit_test(test_upsert_replaces_by_id),
        cmocka_unit_test(test_many_decisions_by_id_and_key),
        cmocka_unit_test(test_growth_is_bounded),
        cmocka_unit_test(test_expire_is_bounded_and_earliest_first),
        cmocka_unit_test(test_expire_order_survives_changes),
        cmocka_unit_test(test_snapshot_keeps_local_and_file_decisions),
        cmocka_unit_test(test_replace_origin_swaps_only_that_origin),
        cmocka_unit_test(test_persists_across_reopen),
        cmocka_unit_test(test_expire_deletes_on_disk),
        cmocka_unit_test(test_a_removal_lost_on_a_full_disk_does_not_come_back),
        cmocka_unit_test(test_key_with_nul_is_corrupt),
        cmocka_unit_test(test_names_round_trip),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
