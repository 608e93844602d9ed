/* test_ledger - outbound Message-IDs and senders vouch for bounces within the TTL, survive a
 * reopen, and nothing readable is stored; expiry sweeps the table in bounded slices. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "ledger.h"

#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define DAY_MS (24LL * 3600 * 1000)

static void test_message_id_vouches_within_ttl(void **state)
{
    ledger_t *l = ledger_new(NULL, 7 * DAY_MS, NULL, 0);
    ledger_add(l, "<abc@site.example>", "user@site.example", 1000);
    assert_true(ledger_has_message_id(l, "abc@site.example", 2000));
    assert_true(ledger_has_message_id(l, " <ABC@site.example> ", 2000));
    assert_false(ledger_has_message_id(l, "abd@site.example", 2000));
    assert_false(ledger_has_message_id(l, "abc@site.example", 1000 + 7 * DAY_MS));
    assert_true(ledger_has_sender(l, "User@Site.example", 2000));
    assert_false(ledger_has_sender(l, "abc@site.example", 2000)); /* ids and senders apart */
    ledger_destroy(&l);
    assert_null(l);
    ledger_destroy(&l);
}

static void test_empty_values_are_ignored(void **state)
{
    ledger_t *l = ledger_new(NULL, DAY_MS, NULL, 0);
    ledger_add(l, NULL, "", 0);
    assert_int_equal(ledger_count(l), 0);
    assert_false(ledger_has_sender(l, "", 0));
    assert_false(ledger_has_message_id(l, NULL, 0));
    ledger_destroy(&l);
}

/* Calls ledger_expire() until the sweep has gone n times around the table (2: it has
 * looked at every slot) or the table is empty; the entries it forgot. */
static size_t s_expire_passes(ledger_t *l, int64_t now_ms, int n)
{
    ledger_stats_t st;
    ledger_stats(l, &st);
    uint64_t until = st.passes + (uint64_t)n;
    size_t dropped = 0;
    for (int guard = 0; st.passes < until && st.held > 0; guard++) {
        assert_true(guard < 1000000);
        dropped += ledger_expire(l, now_ms);
        ledger_stats(l, &st);
    }
    return dropped;
}

static void test_expire_forgets_old_entries(void **state)
{
    ledger_t *l = ledger_new(NULL, DAY_MS, NULL, 0);
    for (int i = 0; i < 5000; i++) {
        char id[64];
        snprintf(id, sizeof(id), "m%d@x", i);
        ledger_add(l, id, NULL, i < 2500 ? 0 : DAY_MS);
    }
    assert_int_equal(ledger_count(l), 5000);
    /* past the TTL an entry is not reported, before the sweep has reached it */
    assert_false(ledger_has_message_id(l, "m0@x", DAY_MS));
    assert_false(ledger_has_message_id(l, "m2499@x", DAY_MS + 1));
    assert_true(ledger_has_message_id(l, "m2500@x", DAY_MS + 1));
    assert_int_equal(s_expire_passes(l, DAY_MS + 1, 1), 2500);
    assert_int_equal(ledger_count(l), 2500);
    for (int i = 0; i < 5000; i++) {
        char id[64];
        snprintf(id, sizeof(id), "m%d@x", i);
        assert_int_equal(ledger_has_message_id(l, id, DAY_MS + 1), i >= 2500);
    }
    assert_int_equal(s_expire_passes(l, DAY_MS + 1, 2), 0);
    assert_int_equal(s_expire_passes(l, 2 * DAY_MS, 2), 2500);
    assert_int_equal(ledger_count(l), 0);
    assert_int_equal(ledger_expire(l, 2 * DAY_MS), 0);
    ledger_destroy(&l);
}

/* A million live entries: one call looks at LEDGER_EXPIRE_SLOTS slots, and a pass over the
 * table takes slots / LEDGER_EXPIRE_SLOTS calls. */
static void test_expire_is_bounded(void **state)
{
    ledger_t *l = ledger_new(NULL, 7 * DAY_MS, NULL, 0);
    char id[64];
    for (int i = 0; i < 1000000; i++) {
        snprintf(id, sizeof(id), "<%d@big.example>", i);
        ledger_add(l, id, NULL, 1000);
    }
    ledger_stats_t st;
    ledger_stats(l, &st);
    assert_int_equal(st.held, 1000000);
    assert_true(st.slots >= 1000000 && st.slots % LEDGER_EXPIRE_SLOTS == 0);
    uint64_t before = st.examined;
    assert_int_equal(ledger_expire(l, 2000), 0);
    ledger_stats(l, &st);
    assert_true(st.examined - before <= LEDGER_EXPIRE_SLOTS);
    assert_true(st.examined - before > 0);
    size_t calls = st.slots / LEDGER_EXPIRE_SLOTS;
    for (size_t i = 1; i < calls; i++) {
        before = st.examined;
        assert_int_equal(ledger_expire(l, 2000), 0);
        ledger_stats(l, &st);
        assert_true(st.examined - before <= LEDGER_EXPIRE_SLOTS);
    }
    assert_int_equal(st.passes, 0);
    assert_int_equal(st.examined, st.slots);
    ledger_expire(l, 2000);
    ledger_stats(l, &st);
    assert_int_equal(st.passes, 1); /* the cursor wrapped around */
    assert_int_equal(st.held, 1000000);

    /* all expired: still at most a slice a call (memory only: no limit on deletes) */
    int64_t late = 1000 + 7 * DAY_MS;
    before = st.examined;
    size_t dropped = ledger_expire(l, late);
    ledger_stats(l, &st);
    assert_true(st.examined - before <= LEDGER_EXPIRE_SLOTS);
    assert_true(dropped > 0 && dropped < LEDGER_EXPIRE_SLOTS);
    assert_int_equal(st.held, 1000000 - dropped);
    assert_false(ledger_has_message_id(l, "<999999@big.example>", late));
    ledger_destroy(&l);
}

/* Adds, re-adds and expiry interleaved at a high load factor, against a model: what was
 * added within the TTL is found, nothing else, wherever the cursor is; entries added behind
 * or ahead of the cursor in the middle of a pass, and runs that wrap around the end of the
 * table, keep lookups right, and a full pass leaves exactly the live entries. */
static void test_expire_interleaved_with_adds(void **state)
{
    enum { IDS = 180000, ROUNDS = 64, ADDS = 9000, CHECKS = 4000 };
    const int64_t ttl = 160000, step = ttl / 16;
    ledger_t *l = ledger_new(NULL, ttl, NULL, 0);
    int64_t *last = malloc(IDS * sizeof(*last));
    assert_non_null(last);
    for (int i = 0; i < IDS; i++)
        last[i] = -1;
    uint64_t rnd = 0x9e3779b97f4a7c15ULL;
    char id[64];
    int64_t now = 0;
    size_t dropped = 0, max_load_pct = 0;
    ledger_stats_t st;
    for (int r = 0; r < ROUNDS; r++) {
        now += step;
        for (int k = 0; k < ADDS; k++) {
            if (k % (ADDS / 2) == 0) /* two slices a step; adds land on both sides */
                dropped += ledger_expire(l, now);
            rnd = rnd * 6364136223846793005ULL + 1442695040888963407ULL;
            int i = (int)((rnd >> 33) % IDS);
            int64_t t = now - (int64_t)((rnd >> 13) % (uint64_t)step);
            snprintf(id, sizeof(id), "<%d@mix.example>", i);
            ledger_add(l, id, NULL, t);
            if (t > last[i])
                last[i] = t;
        }
        ledger_stats(l, &st);
        if (st.held * 100 / st.slots > max_load_pct)
            max_load_pct = st.held * 100 / st.slots;
        for (int k = 0; k < CHECKS; k++) {
            rnd = rnd * 6364136223846793005ULL + 1442695040888963407ULL;
            int i = (int)((rnd >> 33) % IDS);
            snprintf(id, sizeof(id), "<%d@mix.example>", i);
            bool live = last[i] >= 0 && last[i] > now - ttl;
            assert_int_equal(ledger_has_message_id(l, id, now), live);
        }
    }
    ledger_stats(l, &st);
    assert_true(st.passes >= 1);                      /* the cursor went around */
    assert_true(max_load_pct >= 60);                  /* at a high load factor */
    assert_true(st.slots / LEDGER_EXPIRE_SLOTS >= 8); /* in many slices a pass */
    dropped += s_expire_passes(l, now, 2);
    size_t live = 0;
    for (int i = 0; i < IDS; i++) {
        snprintf(id, sizeof(id), "<%d@mix.example>", i);
        bool want = last[i] >= 0 && last[i] > now - ttl;
        live += want;
        assert_int_equal(ledger_has_message_id(l, id, now), want);
    }
    assert_int_equal(ledger_count(l), live);
    assert_true(dropped > 0);
    free(last);
    ledger_destroy(&l);
}

/* A small table near its growth point (1024 slots, up to 760 entries): probe runs often wrap
 * around its end, and every call sweeps it whole, so deletions move entries across the
 * end all the time; lookups and the count stay right. */
static void test_expire_wraps_around(void **state)
{
    enum { IDS = 760, ROUNDS = 400, ADDS = 40 };
    const int64_t step = 1000, ttl = 20 * step;
    ledger_t *l = ledger_new(NULL, ttl, NULL, 0);
    int64_t last[IDS];
    for (int i = 0; i < IDS; i++)
        last[i] = -1;
    uint64_t rnd = 42;
    char id[64];
    int64_t now = 0;
    ledger_stats_t st;
    for (int r = 0; r < ROUNDS; r++) {
        now += step;
        for (int k = 0; k < ADDS; k++) {
            rnd = rnd * 6364136223846793005ULL + 1442695040888963407ULL;
            int i = (int)((rnd >> 33) % IDS);
            snprintf(id, sizeof(id), "w%d", i);
            ledger_add(l, id, NULL, now);
            last[i] = now;
        }
        ledger_expire(l, now);
        size_t live = 0;
        for (int i = 0; i < IDS; i++) {
            snprintf(id, sizeof(id), "w%d", i);
            bool want = last[i] >= 0 && last[i] > now - ttl;
            live += want;
            assert_int_equal(ledger_has_message_id(l, id, now), want);
        }
        ledger_stats(l, &st);
        assert_int_equal(st.slots, 1024);
        assert_int_equal(st.held, live); /* one call sweeps the whole small table */
    }
    ledger_destroy(&l);
}

/* With a store, a call deletes at most LEDGER_EXPIRE_DROPS keys on disk; after the sweep
 * the store holds just the live entries, and a hash added again after its expiry stays. */
static void test_expire_with_store_is_bounded(void **state)
{
    char dir[] = "/tmp/test_ledger.XXXXXX";
    assert_non_null(mkdtemp(dir));
    char path[128], cmd[256], err[256], id[64];
    snprintf(path, sizeof(path), "%s/db", dir);
    ledger_t *l = ledger_new(path, DAY_MS, err, sizeof(err));
    assert_non_null(l);
    for (int i = 0; i < 3000; i++) {
        snprintf(id, sizeof(id), "old%d@x", i);
        ledger_add(l, id, NULL, 0);
    }
    for (int i = 0; i < 100; i++) {
        snprintf(id, sizeof(id), "new%d@x", i);
        ledger_add(l, id, NULL, DAY_MS);
    }
    size_t dropped = 0, calls = 0;
    ledger_stats_t st;
    do {
        size_t d = ledger_expire(l, DAY_MS + 1);
        assert_true(d <= LEDGER_EXPIRE_DROPS);
        dropped += d;
        calls++;
        ledger_stats(l, &st);
    } while (st.held > 100 && calls < 1000);
    assert_int_equal(dropped, 3000);
    assert_true(calls >= 3000 / LEDGER_EXPIRE_DROPS);
    ledger_add(l, "old7@x", NULL, DAY_MS + 2); /* back after its expiry */
    ledger_destroy(&l);

    l = ledger_new(path, DAY_MS, err, sizeof(err));
    assert_non_null(l);
    assert_int_equal(ledger_count(l), 101); /* the expired keys are gone from the disk */
    assert_true(ledger_has_message_id(l, "new0@x", DAY_MS + 3));
    assert_true(ledger_has_message_id(l, "old7@x", DAY_MS + 3));
    assert_false(ledger_has_message_id(l, "old8@x", DAY_MS + 3));
    ledger_destroy(&l);
    snprintf(cmd, sizeof(cmd), "rm -rf %s", dir);
    assert_int_equal(system(cmd), 0);
}

static void test_persists_salted_hashes_only(void **state)
{
    char dir[] = "/tmp/test_ledger.XXXXXX";
    assert_non_null(mkdtemp(dir));
    char path[128], cmd[256];
    snprintf(path, sizeof(path), "%s/db", dir);
    char err[256];
    ledger_t *l = ledger_new(path, 7 * DAY_MS, err, sizeof(err));
    assert_non_null(l);
    ledger_add(l, "secret-id-1@site.example", "alice@site.example", 1000);
    ledger_destroy(&l);
    snprintf(cmd, sizeof(cmd), "grep -rqa -e secret-id-1 -e alice %s", dir);
    assert_int_not_equal(system(cmd), 0);
    l = ledger_new(path, 7 * DAY_MS, err, sizeof(err));
    assert_non_null(l);
    assert_true(ledger_has_message_id(l, "secret-id-1@site.example", 2000));
    assert_true(ledger_has_sender(l, "alice@site.example", 2000));
    ledger_destroy(&l);
    snprintf(cmd, sizeof(cmd), "rm -rf %s", dir);
    assert_int_equal(system(cmd), 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_message_id_vouches_within_ttl),
        cmocka_unit_test(test_empty_values_are_ignored),
        cmocka_unit_test(test_expire_forgets_old_entries),
        cmocka_unit_test(test_expire_is_bounded),
        cmocka_unit_test(test_expire_interleaved_with_adds),
        cmocka_unit_test(test_expire_wraps_around),
        cmocka_unit_test(test_expire_with_store_is_bounded),
        cmocka_unit_test(test_persists_salted_hashes_only),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
