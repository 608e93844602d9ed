/*
 * ledger - the outbound ledger: which Message-IDs and senders this site sent
 *
 * When the sensor also sees the site's outbound mail, it records each
 * message's Message-ID and envelope sender here. A bounce that later quotes
 * one of those Message-IDs (or, when it quotes none, is addressed to one of
 * those senders) is a legitimate bounce: automatic decisions never reject it.
 *
 * Privacy: only salted hashes are kept (SipHash-2-4 under a random 16-byte
 * salt made once per state directory), never the addresses or IDs. Entries
 * live ttl_ms after their last use (7 days by default) and are then
 * forgotten. Message-IDs are compared without angle brackets and blanks,
 * addresses case-insensitively.
 *
 * Persistence: with a state path every entry is written through to a kv
 * store and loaded back by ledger_new() if it is still live then (the expired
 * ones are deleted from the store instead). Thread-safe (one mutex for the table;
 * a second one orders the writes to the store, so lookups never wait on disk).
 *
 * Expiry: ledger_expire() is called every second and holds the mutex the
 * milter threads wait on, so each call only sweeps the next slice of the
 * table (LEDGER_EXPIRE_SLOTS slots; with a store at most LEDGER_EXPIRE_DROPS
 * deletions on disk), and a full pass over a table of a few million entries
 * takes a few minutes. An entry past its TTL is never reported, whether or
 * not the sweep has reached it.
 *
 * Growth: when the table doubles, the new one is zeroed and then the entries
 * move into it a bounded slice at a time (LEDGER_MOVE_SLOTS slots a
 * ledger_add() or ledger_expire() call), lookups trying both tables until the
 * move is done; the sweep waits for it. Then the old table is given back to
 * the kernel a slice a call too (LEDGER_RELEASE_BYTES), after the mutex is
 * let go.
 */
#ifndef BS_LEDGER_H
#define BS_LEDGER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

typedef struct ledger ledger_t;

/* A ledger kept ttl_ms, stored at state_path (NULL: memory only, random salt); NULL when
 * the store cannot be opened (why in err, errno as kv_open()'s). Loads only the entries still live
 * at now_ms (as a lookup at now_ms sees them) and deletes the expired ones from the store. */
ledger_t *ledger_new_at(const char *state_path, int64_t ttl_ms, int64_t now_ms, char *err,
                        size_t errlen);

/* ledger_new_at() at the system clock's now (the wall clock ledger_add()'s times are read
 * from in the sensor). */
ledger_t *ledger_new(const char *state_path, int64_t ttl_ms, char *err, size_t errlen);

/* Frees the ledger and closes its store; sets *self_p = NULL; safe twice. */
void ledger_destroy(ledger_t **self_p);

/* Records an outbound message: its Message-ID (may be NULL) and envelope sender (may be
 * NULL or ""), at now_ms. */
void ledger_add(ledger_t *self, const char *message_id, const char *sender, int64_t now_ms);

/* Did this site send a message with this Message-ID within the TTL? */
bool ledger_has_message_id(ledger_t *self, const char *message_id, int64_t now_ms);

/* Did this site send from this address within the TTL? */
bool ledger_has_sender(ledger_t *self, const char *address, int64_t now_ms);

/* Slots of the table one ledger_expire() call looks at, at most. */
#define LEDGER_EXPIRE_SLOTS 8192

/* Entries one ledger_expire() call forgets at most when the ledger has a store (each is a
 * delete on disk); far more than a site adds a second. */
#define LEDGER_EXPIRE_DROPS 256

/* Slots of the old table one ledger_add() or ledger_expire() call moves into the new one at
 * most while the table grows. */
#define LEDGER_MOVE_SLOTS 512

/* Bytes of a moved old table one ledger_add() or ledger_expire() call gives back at most
 * (unmapping takes about 75 us a MB). */
#define LEDGER_RELEASE_BYTES (256 * 1024)

/* Forgets the entries older than the TTL (memory and disk) in the next slice of the table;
 * returns how many. */
size_t ledger_expire(ledger_t *self, int64_t now_ms);

/* Entries held (expired ones the sweep has not reached yet included), in both tables during
 * a move. */
size_t ledger_count(ledger_t *self);

typedef struct {
    size_t held;       /* entries held, as ledger_count() */
    size_t slots;      /* table capacity (the new table's during a move) */
    uint64_t examined; /* slots ledger_expire() has looked at since ledger_new() */
    uint64_t passes;   /* times the sweep went past the end of the table */
    size_t old_slots;  /* capacity of the table being moved into the new one, 0 when none */
    uint64_t moved;    /* slots of old tables moved since ledger_new() */
    size_t dead_bytes; /* bytes of a moved old table not given back yet */
} ledger_stats_t;

/* The table's size and the sweep's progress, for tests and benchmarks. */
void ledger_stats(ledger_t *self, ledger_stats_t *out);

#endif
