/*
 * store - the aggregator's state in LevelDB (through common/kv only)
 *
 * Two databases: the main one in the data directory, and the window counters in its
 * subdirectory windows/ (w/ records; a directory from before has them moved there at the
 * next start). LevelDB takes one write at a time per database, and a flush batch of a
 * thousand window records would hold a decision change up, between an event and the
 * sensors, for milliseconds. Layout (one prefix per record type; numbers big-endian):
 *   m/epoch            the epoch (8 bytes), written once when the log is created
 *   m/seq              last sequence number stored (8 bytes)
 *   m/wkeys            window entries at the last flush (to presize the table)
 *   m/boot             the host boot the database was last opened in (store_boot_id)
 *   m/clean            1 after store_close(), 0 while open
 *   m/sync             a counter the write-behind thread's synced batches carry (in both)
 *   m/moved            window records moved to windows/ from an older directory (a marker)
 *   d/<id>             an active decision: a Frame{update UPSERT} as published
 *   q/<seq>            the sequence log: one Frame{update} per change
 *   w/<scope><tally><fp>  a window key's counters (window_export blob), in windows/
 *   m/tallies          (in windows/) the filter each tally byte counted, 4 bytes a tally
 *   a/<id>             an allowlist entry (text record, see store.c)
 *   s/<site>           a registered site (text record)
 *   t/<identity>       a removed allowlist entry or site, kept for the failover peer
 *                      (a packed SharedEntry, see shared.h)
 *   n/<site>\0<sensor> a sensor's last status (text record)
 *   x/<site>\0<sensor> a sensor's dedup state (dedup_export blob)
 *
 * Durability (state this in the README):
 *  - decision changes, the sequence log and the epoch are written in one batch
 *    per group of changes BEFORE they are published (store_changes_write): once
 *    LevelDB has the batch the kernel has it, so the daemon dying (kill -9,
 *    crash) loses nothing. With sync_decisions the daemon calls store_sync()
 *    at the end of every write-behind flush (once a flush_interval, one fsync
 *    for everything written since) and before it answers a CLI change; the
 *    fsync is never in the path from an event to the sensors.
 *  - the host going down can lose what was written but not yet synced
 *    (with sync_decisions, about the last flush_interval). store_open()
 *    sees it: the database was left open (m/clean 0) under another boot
 *    (m/boot). Then it drops the sequence log and moves seq on by
 *    STORE_SEQ_JUMP, keeping the epoch and the decisions it has: every sensor
 *    is behind the next heartbeat, its "changes since" is older than the log,
 *    so it takes a full snapshot and forgets a decision the aggregator lost.
 *    The jump is far larger than any number of changes in the kernel's
 *    writeback delay, so no sensor can hold a sequence number ahead of it.
 *  - allowlist entries, sites and their tombstones are written at once (synced);
 *  - window counters, sensor status and dedup state are written behind: the
 *    daemon queues them and hands them in batches to the store's writer thread
 *    (store_flush_behind) every flush_interval (1 s), each cycle within half an
 *    interval; the thread holds at most a few batches (beyond, the daemon
 *    waits). A daemon crash loses at most about one and a half intervals of
 *    counts; with sync_decisions so does a power loss (the cycle's last batch
 *    is written synced; without it, what the kernel had not written back yet).
 *
 * The epoch changes only when the sequence log is lost: a database without
 * m/epoch (new, or wiped) gets a new random epoch and starts at seq 0.
 *
 * The data directory lost while the daemon runs (removed, replaced, emptied):
 * LevelDB would go on writing to files no one can open again, and the next
 * start would begin a new epoch with nothing. store_check() notices (the
 * directory and each database's LOCK file, which LevelDB holds while it runs,
 * are no longer the ones opened); store_recreate() opens new, empty databases
 * where the directory was, with this store's seq, for the daemon to write what
 * it holds into, in one batch that ends with the epoch (store_refill_write()):
 * until that is written the store has no epoch, and a restart a new one. It
 * writes only into a directory that is missing,
 * empty, the one opened, or holds a database of no epoch or of this one: a
 * directory with other files, or another store (another epoch), is left alone.
 * When it gave up after closing the lost databases (another store was there,
 * the new ones would not open), the store is detached: every write fails
 * (-1) until a store_recreate() works, so nothing goes into a store that is
 * not this one.
 *
 * Errors: a failed write logs once (kv does) and returns -1; the caller counts
 * it and keeps running. Ownership: records passed in are copied; callbacks get
 * borrowed pointers valid during the call.
 */
#ifndef BS_STORE_H
#define BS_STORE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "allowlist.h"
#include "decisions.h"
#include "window.h"

typedef struct store store_t;

/* How far seq moves on when the host went down under the last run (see above). */
#define STORE_SEQ_JUMP (1ULL << 32)
/* The highest sequence number a store holds: it takes 2^30 host failures to get near it,
 * so a store beyond is damaged (store_open refuses it), and a store never writes beyond
 * (store_changes_write fails): far enough below 2^64 that nothing can wrap round to
 * numbers sensors hold. */
#define STORE_SEQ_MAX (1ULL << 62)

/* Opens (creating) the database directory dir. *created_p is set when it had no
 * sequence log (new or lost): then a new random epoch is chosen and stored.
 * sync_decisions: store_sync() waits for the disk. NULL on error (logged), errno as kv's:
 * EAGAIN when another process holds it, ENOSPC for a full disk, EINVAL for a sequence
 * number past STORE_SEQ_MAX, EIO for a damaged database. */
store_t *store_open(const char *dir, bool sync_decisions, bool *created_p);
/* store_open() with the boot given: boot is store_boot_id() of the running host (0:
 * unknown, never jump). */
store_t *store_open_boot(const char *dir, bool sync_decisions, uint64_t boot, bool *created_p);
/* This host boot: a fingerprint of /proc/sys/kernel/random/boot_id, 0 if unreadable. */
uint64_t store_boot_id(void);
/* Whether store_open() found the host went down under the last run and jumped seq. */
bool store_jumped(const store_t *self);

/* Writes what is queued (store_flush) and closes; sets *self_p = NULL; safe twice. */
void store_close(store_t **self_p);

/* The epoch and the last stored sequence number. */
uint64_t store_epoch(const store_t *self);
uint64_t store_seq(const store_t *self);

/* Writes n changes (in seq order): the d/ record put or deleted, the q/ log entry, and
 * m/seq, in one batch, without waiting for the disk. 0, or -1 (nothing written). */
int store_changes_write(store_t *self, const decision_change_t *changes, size_t n);
/* With sync_decisions, waits until everything written so far is on disk; else nothing.
 * 0, or -1 (logged). */
int store_sync(store_t *self);

/* Calls cb for every stored active decision; stops on non-zero. Returns the number read or
 * -1 on a read error. Malformed records are skipped and logged. */
long store_decisions_load(store_t *self, int (*cb)(const decision_t *d, void *arg), void *arg);

/* Calls cb for every logged change with seq > since_seq, in order (for changes-since after
 * a restart); stops on non-zero. 0, or -1 when the log does not reach back that far. */
int store_changes_since(store_t *self, uint64_t since_seq,
                        int (*cb)(const decision_change_t *c, void *arg), void *arg);

/* Deletes log entries with seq <= below (queued; written with the next flush). */
void store_log_prune(store_t *self, uint64_t below);
/* Smallest seq still in the log minus one (what store_changes_since can answer from). */
uint64_t store_log_floor(const store_t *self);

/* ---- written behind (queued; store_flush writes them) ---- */

/* Queues the state of window key k (blob from window_export), or its deletion (blob NULL). */
void store_window_queue(store_t *self, const window_key_t *k, const uint8_t *blob, size_t len);
/* Queues, in the window database and the same batch as the window records queued with
 * it, the signatures of the event filters their tally bytes stand for (ingest_tally_sigs):
 * the window records and the meaning of their tallies are written together. */
void store_window_tallies_queue(store_t *self, const uint32_t *sigs, size_t n);
/* Reads them back (at most max): their number, or -1 when none are stored (a data
 * directory from before them) or the record is damaged. */
long store_window_tallies_get(store_t *self, uint32_t *sigs, size_t max);
/* The copy to fill with window_dirty_copy() for the next flush: its keys are queued
 * after what was queued before, and encoded when written, by the writer thread of
 * store_flush_behind() (or by store_flush()). Borrowed, until the next
 * store_flush_behind(). */
window_copy_t *store_window_copy(store_t *self);
/* The start's loads are done (call it once, before the first flush): lets go of the table
 * files they read, which LevelDB would keep mapped, in RSS, for the life of the daemon.
 * 0, or -1 when the database cannot be opened again (then only store_close()). */
int store_loaded(store_t *self);

/* Calls cb with every stored window blob; returns the number read or -1. */
long store_window_load(store_t *self, int (*cb)(const uint8_t *blob, size_t len, void *arg),
                       void *arg);

/* Queues a per-sensor record: kind 'n' (status text) or 'x' (dedup blob). */
void store_sensor_queue(store_t *self, char kind, const char *site, const char *sensor,
                        const void *val, size_t len);
/* Queues the deletion of a sensor's records (status and dedup state): a sensor forgotten. */
void store_sensor_del_queue(store_t *self, const char *site, const char *sensor);
/* Calls cb(site, sensor, val, len) for every record of kind; returns the number or -1. */
long store_sensor_load(store_t *self, char kind,
                       int (*cb)(const char *site, const char *sensor, const void *val, size_t len,
                                 void *arg),
                       void *arg);

/* Queues a number kept under m/<name> (e.g. "wkeys", the window's entries, to presize it at
 * the next start); written with the next flush. */
void store_meta_queue(store_t *self, const char *name, uint64_t v);
/* Writes m/<names[i]> = v[i] for i < n in one batch, here and now, as decision changes are
 * written (not synced). 0 or -1. */
int store_meta_write(store_t *self, const char *const *names, const uint64_t *v, size_t n);
/* Reads m/<name>: 1 and *v when stored, 0 when not, -1 on error. */
int store_meta_get(store_t *self, const char *name, uint64_t *v);

/* Operations queued for the next flush. */
size_t store_pending(const store_t *self);
/* Writes the queued operations in one batch, here and now (not synced: a process crash
 * keeps them, the OS has them), after what store_flush_behind() handed over. 0, or -1
 * (they stay queued). */
int store_flush(store_t *self);
/* Hands the queued operations to the store's writer thread (started on first use) and
 * returns: the daemon's flush, so LevelDB's work on a batch overlaps counting. Batches
 * are written in the order handed over; with sync (and sync_decisions) that batch is
 * written synced, which puts everything written before it on disk. At most a few
 * batches wait: beyond, this waits for the disk. A batch that fails to write is
 * dropped (kv logs it; its keys are written again when they next change): -1 is
 * returned by the next call after such a failure, else 0. store_flush, store_sync and
 * store_close wait for the writer first. */
int store_flush_behind(store_t *self, bool sync);

/* ---- the data directory lost while running ---- */

/* Whether the data directory and both databases are the ones store_open() opened (by
 * device and inode of the directory and of each database's LOCK file: three stat()s).
 * 0 when they are; -1 when not, with a word for what happened in why: "removed" (no
 * directory there), "replaced" (another directory, or no directory, in its place),
 * "emptied" (its database files are gone), "windows_removed" (windows/ is gone). Only a
 * file that is not there (ENOENT, ENOTDIR) or is another (device and inode) counts: a
 * stat() that failed otherwise (EIO, ESTALE, ENOMEM ...) says nothing, and gives 1 with
 * "cannot look at PATH: ERROR" in why. */
int store_check(const store_t *self, char *why, size_t whylen);
/* Opens the databases again where the data directory is, empty, after store_check()
 * said it was lost; refuses (-1, nothing closed or cleared) when a look at the directory
 * or a LOCK file fails (as store_check() gives 1), or when the directory and both LOCK
 * files are the ones opened (not lost). Makes the directory (mode 0750) when it is missing; refuses
 * (-1, the store untouched and still writing to the lost files) a path that is no directory, one
 * this process cannot write in, or a directory other than the one opened that is neither empty nor
 * a database. Then closes the lost databases and opens the ones there: a database of another epoch
 * there is left as it is and the store detached (-1, see above); else whatever the databases hold
 * is deleted (our own m/epoch first, in a synced write of its own), the sequence log starts empty
 * at seq, and store_check() compares with the new directory. No m/epoch is written:
 * store_refill_write() writes it, last, so that a store whose refill failed or was cut short (the
 * daemon killed) has none, and the next start gives it a new epoch (sensors resynchronise) rather
 * than keeping ours without the decisions it stands for. Where the directory and the main database
 * are the ones opened (only windows/ went), only the window database is opened again there and
 * cleared (one that would not open leaves the main database as it is; a path that is no database is
 * left alone): 1, and the caller writes every window key again. 0, or -1 with one line on
 * why in why. After 0 the caller writes everything it holds again (store_refill_*(): the
 * decisions, allowlist, sites, tombstones, in one batch; every window key and sensor
 * record with the next flushes). */
int store_recreate(store_t *self, char *why, size_t whylen);
/* Whether the store is detached (store_recreate() gave up after closing the databases). */
bool store_detached(const store_t *self);

/* ---- allowlist and sites (written at once, synced) ---- */

int store_allow_put(store_t *self, const allow_entry_t *e);
int store_allow_del(store_t *self, uint32_t id);
/* Calls cb for every stored entry; returns the number read or -1. */
long store_allow_load(store_t *self, int (*cb)(const allow_entry_t *e, void *arg), void *arg);

int store_site_put(store_t *self, const char *name, const char *public_key, int64_t created_ms,
                   const char *who);
int store_site_del(store_t *self, const char *name);
/* Calls cb for every stored site; returns the number read or -1. */
long store_site_load(store_t *self,
                     int (*cb)(const char *name, const char *public_key, int64_t created_ms,
                               const char *who, void *arg),
                     void *arg);

/* Tombstones of removed allowlist entries and sites, by their shared_identity(). */
int store_tomb_put(store_t *self, uint64_t identity, const uint8_t *blob, size_t len);
int store_tomb_del(store_t *self, uint64_t identity);
/* Calls cb for every stored tombstone; returns the number read or -1. */
long store_tomb_load(store_t *self,
                     int (*cb)(uint64_t identity, const uint8_t *blob, size_t len, void *arg),
                     void *arg);

/* ---- refilling a recreated store: one batch, one fsync ---- */

/* Queue an allowlist entry, a site, a tombstone, a number under m/<name> for
 * store_refill_write() (copied; nothing is written until then). */
void store_refill_allow(store_t *self, const allow_entry_t *e);
void store_refill_site(store_t *self, const char *name, const char *public_key, int64_t created_ms,
                       const char *who);
void store_refill_tomb(store_t *self, uint64_t identity, const uint8_t *blob, size_t len);
void store_refill_meta(store_t *self, const char *name, uint64_t v);
/* Writes what store_refill_*() queued, every active decision of d as its d/ record, the
 * changes d's log still holds up to the stored seq as the sequence log (when they reach
 * it without a hole: store_changes_since() then answers from the first), m/seq, m/boot,
 * m/clean and, last, m/epoch, in ONE
 * synced batch: the refill after store_recreate(), a single fsync on the event loop
 * however many entries there are. The queue is emptied either way (the caller queues it
 * all again to retry). 0 or -1. */
int store_refill_write(store_t *self, const decisions_t *d);

#endif
