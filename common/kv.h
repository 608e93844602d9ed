/*
 * kv - the one LevelDB adapter: an ordered key/value store on disk
 *
 * Used by the aggregator (counters, decisions, sequence log, allowlists,
 * sites) and the sensor (decision cache, ledger, spool). Keys and values are
 * byte strings; keys sort bytewise, so a module keeps its records under one
 * prefix ("d/", "q/", ...) and big-endian numbers (kv_u64_put) sort in
 * numeric order.
 *
 * Errors: LevelDB's malloc'd error strings never leave this module. A failed
 * operation logs one msg_error line ("kv: op=put path=...: error=...") and
 * returns -1 (or NULL from kv_open) with errno set: EAGAIN when another process
 * (or this one) holds the database's lock, the system call's errno for a failed
 * one (ENOSPC, EACCES, EROFS...), EIO for anything else (a damaged database);
 * the caller decides whether that is fatal.
 *
 * Ownership: kv_get returns a value the caller frees with xfree; kv_iter_key
 * and kv_iter_value return pointers borrowed until the next kv_iter_next or
 * kv_iter_destroy. Destroy iterators and batches before kv_close.
 *
 * Threads: one kv_t may be shared by threads (LevelDB locks inside); a batch
 * or an iterator belongs to one thread. One process opens a path once (LevelDB
 * holds a lock file; a second kv_open of the same path fails).
 */
#ifndef BS_KV_H
#define BS_KV_H

#include <stddef.h>
#include <stdint.h>

typedef struct kv kv_t;
typedef struct kv_batch kv_batch_t;
typedef struct kv_iter kv_iter_t;

/* Tuning; a zero field keeps LevelDB's default. */
typedef struct {
    size_t write_buffer_size; /* bytes buffered in memory before a table is written (4 MiB) */
    size_t cache_size;        /* bytes of the block cache (8 MiB) */
    int max_open_files;       /* table files kept open (1000) */
    int sync;                 /* kv_put/kv_del wait until the write reached the disk */
    size_t block_size;        /* bytes of a table block (4 KiB) */
    int write_mostly;         /* no snappy compression and no bloom filters: for a database
                                 rewritten every second and read by key almost never, where
                                 both only cost CPU in every compaction */
} kv_options_t;

/* Opens the database directory path (creating it when create); opts may be NULL. NULL on error. */
kv_t *kv_open(const char *path, int create, const kv_options_t *opts);

/* Closes and opens the database again with the same options: LevelDB keeps every table
 * file it has read mapped (up to a thousand of them), so after reading the whole database
 * once (a start) they stay in RSS until this. No iterator may be open and no other thread
 * may use it meanwhile. 0, or -1 when it cannot be opened again: then only kv_close() may
 * be called. */
int kv_reopen(kv_t *self);

/* Closes the database; sets *self_p = NULL; safe on NULL and twice. */
void kv_close(kv_t **self_p);

/* Directory the database lives in (borrowed). */
const char *kv_path(const kv_t *self);

/* Looks key up: 1 and a new NUL-terminated copy in *val (length *vlen, vlen may be NULL)
 * when found, 0 when not, -1 on error; *val is NULL unless 1. */
int kv_get(kv_t *self, const void *key, size_t klen, char **val, size_t *vlen);

/* Stores key = val (sync as opened). 0 or -1. */
int kv_put(kv_t *self, const void *key, size_t klen, const void *val, size_t vlen);

/* Deletes key; deleting a missing key is not an error. 0 or -1. */
int kv_del(kv_t *self, const void *key, size_t klen);

/* A set of puts and deletes applied all together or not at all. */
kv_batch_t *kv_batch_new(void);
void kv_batch_put(kv_batch_t *batch, const void *key, size_t klen, const void *val, size_t vlen);
void kv_batch_del(kv_batch_t *batch, const void *key, size_t klen);
/* Operations queued since creation or the last kv_batch_clear. */
size_t kv_batch_count(const kv_batch_t *batch);
/* Forgets every queued operation, so the batch can be reused. */
void kv_batch_clear(kv_batch_t *batch);
/* Applies the batch atomically; sync waits for the disk. The batch is unchanged. 0 or -1. */
int kv_batch_write(kv_t *self, kv_batch_t *batch, int sync);
/* Frees the batch; sets *batch_p = NULL; safe on NULL and twice. */
void kv_batch_destroy(kv_batch_t **batch_p);

/* Iterates, in key order, over the keys that start with prefix (plen 0: every key), as of now. */
kv_iter_t *kv_iter_new(kv_t *self, const void *prefix, size_t plen);
/* Makes the next kv_iter_next return the first key >= key (still within the prefix). */
void kv_iter_seek(kv_iter_t *it, const void *key, size_t klen);
/* Moves to the next entry (the first on the first call): 1 positioned, 0 at the end, -1 error. */
int kv_iter_next(kv_iter_t *it);
/* The current entry's key and value, borrowed until the next kv_iter_next. */
const void *kv_iter_key(const kv_iter_t *it, size_t *klen);
const void *kv_iter_value(const kv_iter_t *it, size_t *vlen);
/* Frees the iterator; sets *it_p = NULL; safe on NULL and twice. */
void kv_iter_destroy(kv_iter_t **it_p);

/* Big-endian 64-bit numbers for keys that sort numerically (sequence log, spool). */
void kv_u64_put(uint8_t out[8], uint64_t v);
uint64_t kv_u64_get(const void *p);

#endif
