/* test_ledger - outbound Message-IDs and senders vouch for bounces within the TTL, survive a
 * reopen, and nothing readable is stored; expiry sweeps the table in bounded slices, and a
 * growth moves it into the bigger table in bounded slices too. */
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

/* Adds a Message-ID and checks that the call moved at most LEDGER_MOVE_SLOTS slots of an old
 * table, and gave back at most LEDGER_RELEASE_BYTES of a moved one (16 bytes a slot), which
 * is given back from the call that ends its move on; true when a move was in progress after
 * it. */
static bool s_add_bounded(ledger_t *l, const char *id, const char *sender, int64_t now_ms)
{
    ledger_stats_t st;
    ledger_stats(l, &st);
    uint64_t before = st.moved;
    size_t old_slots = st.old_slots, dead = st.dead_bytes;
    ledger_add(l, id, sender, now_ms);
    ledger_stats(l, &st);
    assert_true(st.moved - before <= LEDGER_MOVE_SLOTS);
    if (old_slots && !st.old_slots) {
        assert_int_equal(dead, 0);
        size_t bytes = old_slots * 16;
        assert_int_equal(st.dead_bytes,
                         bytes > LEDGER_RELEASE_BYTES ? bytes - LEDGER_RELEASE_BYTES : 0);
    } else {
        assert_true(st.dead_bytes <= dead && st.dead_bytes + LEDGER_RELEASE_BYTES >= dead);
        assert_true(st.dead_bytes == 0 || dead - st.dead_bytes == LEDGER_RELEASE_BYTES);
    }
    return st.old_slots > 0;
}

/* From 1024 slots to a million: no add moves more than LEDGER_MOVE_SLOTS slots, every slot
 * of every old table is moved before the next growth, and what was added stays found, while
 * a move is in progress too; a moved old table is given back a slice a call, all of it long
 * before the next growth. */
static void test_growth_is_bounded(void **state)
{
    enum { N = 600000 };
    ledger_t *l = ledger_new(NULL, 7 * DAY_MS, NULL, 0);
    ledger_stats_t st;
    ledger_stats(l, &st);
    assert_int_equal(st.slots, 1024);
    assert_int_equal(st.old_slots, 0);
    char id[64], sender[64];
    size_t prev_slots = st.slots, growths = 0, moving_adds = 0;
    uint64_t olds_total = 0;
    for (int i = 0; i < N; i++) {
        snprintf(id, sizeof(id), "<%d@grow.example>", i);
        snprintf(sender, sizeof(sender), "s%d@grow.example", i);
        moving_adds += s_add_bounded(l, id, i % 3 ? NULL : sender, 1000);
        ledger_stats(l, &st);
        if (st.slots != prev_slots) {
            assert_int_equal(st.slots, 2 * prev_slots);
            assert_int_equal(st.old_slots, prev_slots);
            assert_int_equal(st.dead_bytes, 0);
            olds_total += prev_slots;
            prev_slots = st.slots;
            growths++;
        }
        if (st.old_slots && i % 97 == 0) { /* lookups during a move: old and new entries */
            int j = (int)((uint64_t)i * 2654435761u % (uint64_t)(i + 1));
            snprintf(id, sizeof(id), "<%d@grow.example>", j);
            assert_true(ledger_has_message_id(l, id, 2000));
            snprintf(id, sizeof(id), "<%d@grow.example>", i);
            assert_true(ledger_has_message_id(l, id, 2000));
            snprintf(id, sizeof(id), "<%d@grow.example>", N + i);
            assert_false(ledger_has_message_id(l, id, 2000));
        }
    }
    size_t want = N + (N + 2) / 3;
    assert_true(growths >= 10);
    assert_true(moving_adds > 0);
    assert_int_equal(st.held, want);
    assert_int_equal(ledger_count(l), want);
    /* expiry calls finish a move in progress, LEDGER_MOVE_SLOTS at a time, sweeping nothing */
    while (st.old_slots) {
        uint64_t moved = st.moved, examined = st.examined;
        assert_int_equal(ledger_expire(l, 2000), 0);
        ledger_stats(l, &st);
        assert_true(st.moved - moved <= LEDGER_MOVE_SLOTS && st.moved > moved);
        assert_int_equal(st.examined, examined);
    }
    assert_int_equal(st.moved, olds_total); /* every slot of every old table, once */
    assert_int_equal(st.held, want);
    size_t calls = 0; /* and expiry calls give the last one back, a slice at a time */
    while (st.dead_bytes) {
        size_t dead = st.dead_bytes;
        assert_int_equal(ledger_expire(l, 2000), 0);
        ledger_stats(l, &st);
        assert_true(st.dead_bytes < dead && st.dead_bytes + LEDGER_RELEASE_BYTES >= dead);
        calls++;
    }
    assert_true(calls <= (size_t)(st.slots / 2 * 16 / LEDGER_RELEASE_BYTES));
    for (int i = 0; i < N; i++) {
        snprintf(id, sizeof(id), "<%d@grow.example>", i);
        assert_true(ledger_has_message_id(l, id, 2000));
        snprintf(sender, sizeof(sender), "S%d@Grow.example", i);
        assert_int_equal(ledger_has_sender(l, sender, 2000), i % 3 == 0);
    }
    ledger_destroy(&l);
}

/* Adds, re-adds (with earlier and later times) and expiry interleaved from the smallest table
 * up, against a model, so the table grows many times with the sweep in the middle of a
 * pass: lookups are right after every step, during the moves too, the count is right
 * whenever no expired entry is held, and full passes leave exactly the live entries. */
static void test_growth_interleaved_with_expiry(void **state)
{
    enum { IDS = 400000, ROUNDS = 48, CHECKS = 3000 };
    const int64_t ttl = 12 * 1000, step = 1000;
    ledger_t *l = ledger_new(NULL, ttl, NULL, 0);
    int64_t *last = malloc(IDS * sizeof(*last));
    assert_non_null(last);
    for (int i = 0; i < IDS; i++)
        last[i] = -1;
    uint64_t rnd = 0x2545f4914f6cdd1dULL;
    char id[64];
    int64_t now = 0;
    size_t checked_moving = 0, growths = 0, sweeps_moving = 0;
    ledger_stats_t st;
    ledger_stats(l, &st);
    size_t slots = st.slots;
    for (int r = 0; r < ROUNDS; r++) {
        now += step;
        int adds = 1000 + r * 400; /* more each round: the table keeps growing */
        for (int k = 0; k < adds; k++) {
            if (k % 100 == 0) {
                ledger_stats(l, &st);
                uint64_t moved = st.moved;
                bool moving = st.old_slots > 0;
                ledger_expire(l, now);
                ledger_stats(l, &st);
                assert_true(st.moved - moved <= LEDGER_MOVE_SLOTS);
                sweeps_moving += moving;
            }
            rnd = rnd * 6364136223846793005ULL + 1442695040888963407ULL;
            /* mostly a prefix of the ids that widens: many re-adds, and new ones */
            int span = IDS * (r + 1) / ROUNDS;
            int i = (int)((rnd >> 33) % (uint64_t)span);
            int64_t t = now - (int64_t)((rnd >> 13) % (uint64_t)step);
            snprintf(id, sizeof(id), "<%d@g.example>", i);
            bool moving = s_add_bounded(l, id, NULL, t);
            if (t > last[i])
                last[i] = t;
            if (moving || k % 64 == 0) { /* this one and a random one */
                rnd = rnd * 6364136223846793005ULL + 1442695040888963407ULL;
                int j = (int)((rnd >> 33) % IDS);
                snprintf(id, sizeof(id), "<%d@g.example>", j);
                assert_int_equal(ledger_has_message_id(l, id, now),
                                 last[j] >= 0 && last[j] > now - ttl);
                checked_moving += moving;
            }
        }
        ledger_stats(l, &st);
        if (st.slots != slots) {
            growths += 1;
            slots = st.slots;
        }
        for (int k = 0; k < CHECKS; k++) {
            rnd = rnd * 6364136223846793005ULL + 1442695040888963407ULL;
            int i = (int)((rnd >> 33) % IDS);
            snprintf(id, sizeof(id), "<%d@g.example>", i);
            assert_int_equal(ledger_has_message_id(l, id, now),
                             last[i] >= 0 && last[i] > now - ttl);
        }
    }
    assert_true(growths >= 5);
    assert_true(st.slots >= 1024 << 7); /* it grew seven times at least */
    assert_true(checked_moving > 100);
    assert_true(sweeps_moving > 0);
    ledger_stats(l, &st);
    assert_true(st.passes >= 1);
    /* the move ends, then two passes: exactly the live entries are left */
    for (int guard = 0; st.old_slots; guard++) {
        assert_true(guard < 1000000);
        ledger_expire(l, now);
        ledger_stats(l, &st);
    }
    s_expire_passes(l, now, 2);
    size_t live = 0;
    for (int i = 0; i < IDS; i++) {
        snprintf(id, sizeof(id), "<%d@g.example>", i);
        bool want = last[i] >= 0 && last[i] > now - ttl;
        live += want;
        assert_int_equal(ledger_has_message_id(l, id, now), want);
    }
    assert_int_equal(ledger_count(l), live);
    free(last);
    ledger_destroy(&l);
}

/* A growth while the sweep is in the middle of a pass with expired entries ahead of it: the
 * sweep waits for the move, expired entries moved to the new table are not reported and are
 * swept after it, and the live ones stay. */
static void test_growth_during_sweep(void **state)
{
    ledger_t *l = ledger_new(NULL, DAY_MS, NULL, 0);
    char id[64];
    ledger_stats_t st;
    /* up to just below a growth of a 64 Ki-slot table, half of it expired at DAY_MS + 1 */
    int n = 0;
    for (;; n++) {
        ledger_stats(l, &st);
        if (st.slots == 65536 && !st.old_slots && (st.held + 1) * 4 > st.slots * 3)
            break;
        snprintf(id, sizeof(id), "a%d", n);
        ledger_add(l, id, NULL, n % 2 ? DAY_MS : 0);
    }
    assert_int_equal(st.held, n);
    /* part of a pass: the cursor is inside the table */
    size_t dropped = ledger_expire(l, DAY_MS + 1) + ledger_expire(l, DAY_MS + 1);
    ledger_stats(l, &st);
    assert_true(dropped > 0 && st.examined > 0 && st.examined < st.slots);
    assert_int_equal(st.held, n - dropped);
    /* adds until one starts the growth; the sweep does nothing until the move is done */
    int b = 0;
    do {
        snprintf(id, sizeof(id), "b%d", b++);
        ledger_add(l, id, NULL, DAY_MS + 1);
        ledger_stats(l, &st);
    } while (!st.old_slots);
    assert_int_equal(st.held, n - dropped + b);
    assert_int_equal(st.slots, 131072);
    assert_int_equal(st.old_slots, 65536);
    uint64_t examined = st.examined;
    while (st.old_slots) {
        assert_int_equal(ledger_expire(l, DAY_MS + 1), 0);
        snprintf(id, sizeof(id), "b%d", b++);
        s_add_bounded(l, id, NULL, DAY_MS + 1);
        ledger_stats(l, &st);
        assert_int_equal(st.examined, examined);
        for (int i = 0; i < n; i += 37) {
            snprintf(id, sizeof(id), "a%d", i);
            assert_int_equal(ledger_has_message_id(l, id, DAY_MS + 1), i % 2);
        }
    }
    assert_int_equal(st.held, n - dropped + b);
    /* the pass starts again over the new table and forgets the rest of the expired ones */
    dropped += s_expire_passes(l, DAY_MS + 1, 2);
    assert_int_equal(dropped, (size_t)(n + 1) / 2); /* the even ones */
    assert_int_equal(ledger_count(l), (size_t)(n - n / 2 + b));
    for (int i = 0; i < n; i++) {
        snprintf(id, sizeof(id), "a%d", i);
        assert_int_equal(ledger_has_message_id(l, id, DAY_MS + 1), i % 2);
    }
    for (int i = 0; i < b; i++) {
        snprintf(id, sizeof(id), "b%d", i);
        assert_true(ledger_has_message_id(l, id, DAY_MS + 1));
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
    ledger_t *l = ledger_new_at(path, DAY_MS, 0, err, sizeof(err));
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

    l = ledger_new_at(path, DAY_MS, 0, err, sizeof(err)); /* at 0 all of them would load */
    assert_non_null(l);
    assert_int_equal(ledger_count(l), 101); /* the expired keys are gone from the disk */
    ledger_stats(l, &st);
    assert_int_equal(st.old_slots, 0); /* the load grew the table all the way */
    assert_true(ledger_has_message_id(l, "new0@x", DAY_MS + 3));
    assert_true(ledger_has_message_id(l, "old7@x", DAY_MS + 3));
    assert_false(ledger_has_message_id(l, "old8@x", DAY_MS + 3));
    ledger_destroy(&l);
    snprintf(cmd, sizeof(cmd), "rm -rf %s", dir);
    assert_int_equal(system(cmd), 0);
}

/* A restart loads only what is still live: the entries past their TTL (the one exactly at
 * it included, as a lookup has it) are neither held nor reported, the table is sized for
 * the live ones, and the expired keys are deleted on disk, so a later start at a time when
 * they would have been live does not find them either. */
static void test_load_skips_expired_entries(void **state)
{
    char dir[] = "/tmp/test_ledger.XXXXXX";
    assert_non_null(mkdtemp(dir));
    char path[128], cmd[256], err[256], id[64];
    snprintf(path, sizeof(path), "%s/db", dir);
    ledger_t *l = ledger_new_at(path, DAY_MS, 0, err, sizeof(err));
    assert_non_null(l);
    for (int i = 0; i < 6000; i++) { /* 5000 already expired at the restart, 1000 live */
        snprintf(id, sizeof(id), "m%d@x", i);
        ledger_add(l, id, i < 5000 ? "old@x" : NULL, i < 5000 ? 1 : 2);
    }
    ledger_stats_t st;
    ledger_stats(l, &st);
    assert_int_equal(st.held, 6001);
    assert_true(st.slots >= 8192);
    ledger_destroy(&l);

    l = ledger_new_at(path, DAY_MS, DAY_MS + 1, err, sizeof(err)); /* cutoff: 1 */
    assert_non_null(l);
    ledger_stats(l, &st);
    assert_int_equal(st.held, 1000);
    assert_int_equal(st.slots, 2048); /* what 1000 entries need, not 6001 */
    assert_int_equal(st.old_slots, 0);
    for (int i = 0; i < 6000; i++) {
        snprintf(id, sizeof(id), "m%d@x", i);
        assert_int_equal(ledger_has_message_id(l, id, DAY_MS + 1), i >= 5000);
    }
    assert_false(ledger_has_sender(l, "old@x", DAY_MS + 1));
    assert_int_equal(ledger_expire(l, DAY_MS + 1), 0); /* nothing left for the sweep */
    ledger_destroy(&l);

    l = ledger_new_at(path, DAY_MS, 0, err, sizeof(err)); /* all would be live at 0 */
    assert_non_null(l);
    assert_int_equal(ledger_count(l), 1000);
    assert_false(ledger_has_message_id(l, "m0@x", 2));
    assert_true(ledger_has_message_id(l, "m5000@x", 2));
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
    ledger_t *l = ledger_new_at(path, 7 * DAY_MS, 1000, err, sizeof(err));
    assert_non_null(l);
    ledger_add(l, "secret-id-1@site.example", "alice@site.example", 1000);
    ledger_destroy(&l);
    snprintf(cmd, sizeof(cmd), "grep -rqa -e secret-id-1 -e alice %s", dir);
    assert_int_not_equal(system(cmd), 0);
    l = ledger_new_at(path, 7 * DAY_MS, 2000, err, sizeof(err));
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
        cmocka_unit_test(test_growth_is_bounded),
        cmocka_unit_test(test_growth_interleaved_with_expiry),
        cmocka_unit_test(test_growth_during_sweep),
        cmocka_unit_test(test_expire_with_store_is_bounded),
        cmocka_unit_test(test_load_skips_expired_entries),
        cmocka_unit_test(test_persists_salted_hashes_only),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
