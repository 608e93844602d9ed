/*
 * kv - the one LevelDB adapter; see kv.h.
 *
 * LevelDB's C API reports errors through a malloc'd string in a char **; each
 * call here starts with a NULL error, and s_failed turns a set one into one
 * log line, frees it and makes the call return -1. The options, block cache
 * and bloom filter LevelDB was opened with must outlive the handle, so they
 * live in kv_t and are freed after leveldb_close.
 *
 * A bloom filter (10 bits per key) is on unless the database is opened
 * write_mostly: most lookups in Backstop are for keys that are not there (the
 * sensor's ledger and cache), and the filter answers those without reading a
 * table block; the aggregator's store is read back only by iterating.
 *
 * A failed write leaves the handle broken, and the next write opens the database
 * again first. LevelDB does not survive a failed log append (a full disk, say):
 * its log writer counts the bytes it could not write, so every later record it
 * appends to that log is misaligned and silently dropped when the log is read
 * back, although each write reported success; and a failed compaction makes
 * every later write fail until a reopen. Closing and opening recovers the log up
 * to the failed record and starts a new one. Every call holds a read lock, an
 * iterator until it is destroyed; the reopen takes the write lock only when it
 * is free (a thread holding an iterator on the handle just gets its write
 * refused, and a later write tries again; after a reopen that failed, the next try
 * waits S_RETRY_OPEN_MS). Error lines are limited to one a S_LOG_EVERY_S seconds a
 * handle, with the count of those left out.
 *
 * Bytes damaged in the middle of a log file (not the torn tail a crash leaves) make
 * LevelDB drop the records after them when it recovers the log at open, and it says so
 * only in its own LOG file in the database directory, which each open starts anew. An
 * open copies those lines to our log (s_report_drops), so such a loss is not silent.
 */
#include "kv.h"

#include <assert.h>
#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

#include <leveldb/c.h>

#include "msg.h"
#include "xalloc.h"

struct kv {
    leveldb_t *db;                  /* the open database */
    leveldb_options_t *options;     /* what it was opened with; outlives db */
    leveldb_cache_t *cache;         /* block cache, NULL for LevelDB's default */
    leveldb_filterpolicy_t *filter; /* bloom filter policy, NULL when write_mostly */
    leveldb_readoptions_t *ropts;   /* shared read options */
    leveldb_writeoptions_t *wopts;  /* kv_put/kv_del: sync as opened */
    leveldb_writeoptions_t *wsync;  /* batches with sync */
    leveldb_writeoptions_t *wasync; /* batches without sync */
    char *path;                     /* database directory, for log lines */
    pthread_rwlock_t lock;          /* read: any call (an iterator's life); write: reopen */
    atomic_bool broken;             /* a write failed: open again before the next one */
    atomic_llong logged_s;          /* monotonic second of the last error line */
    atomic_long unlogged;           /* errors since, not logged */
    atomic_llong retry_ms;          /* monotonic ms before which no reopen is tried again */
};

#define S_LOG_EVERY_S   10   /* seconds between two error lines of one handle */
#define S_RETRY_OPEN_MS 1000 /* after a reopen that failed (the disk still full) */

static long long s_mono_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

struct kv_batch {
    leveldb_writebatch_t *wb; /* queued operations */
    size_t count;             /* operations queued since creation or clear */
};

/* Where an iterator stands. */
typedef enum {
    S_ITER_FRESH,  /* not positioned yet: next seeks to the prefix */
    S_ITER_SEEKED, /* kv_iter_seek positioned it: next returns that entry */
    S_ITER_ON,     /* on an entry: next advances */
    S_ITER_END,    /* past the prefix or the data: next returns 0 */
} s_iter_state_t;

struct kv_iter {
    kv_t *kv;               /* database, borrowed, for log lines */
    bool locked;            /* holds kv's read lock (false: no database, iterates nothing) */
    leveldb_iterator_t *it; /* LevelDB's iterator */
    char *prefix;           /* keys must start with this */
    size_t plen;            /* its length */
    s_iter_state_t state;   /* see above */
};

/* The errno a LevelDB error stands for. Its env reports a failed system call as
 * "IO error: CONTEXT: strerror(errno)", a lock another process holds as "IO error: lock
 * PATH: strerror(EAGAIN)" and one this process holds as "... already held by process";
 * anything else (a damaged database, "Corruption: ...") is EIO. */
static int s_errno_of(const char *err)
{
    static const int known[] = {ENOSPC, EDQUOT, EACCES, EPERM, EROFS, ENOENT, ENOTDIR, EMFILE};
    if (strncmp(err, "IO error: lock ", 15) == 0 &&
        (strstr(err, strerror(EAGAIN)) || strstr(err, strerror(EACCES)) ||
         strstr(err, "already held")))
        return EAGAIN;
    if (strncmp(err, "IO error: ", 10) == 0)
        for (size_t i = 0; i < sizeof(known) / sizeof(known[0]); i++)
            if (strstr(err, strerror(known[i])))
                return known[i];
    return EIO;
}

/* Turns a LevelDB error into a log line (at most one a S_LOG_EVERY_S seconds a handle) and
 * errno (s_errno_of); true when there was one. */
static int s_failed(kv_t *self, const char *op, char *err)
{
    if (err == NULL)
        return 0;
    int errnum = s_errno_of(err);
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    long long last = self ? atomic_load(&self->logged_s) : 0;
    if (self == NULL || last == 0 || ts.tv_sec - last >= S_LOG_EVERY_S) {
        long more = self ? atomic_exchange(&self->unlogged, 0) : 0;
        if (self)
            atomic_store(&self->logged_s, (long long)ts.tv_sec);
        if (more > 0)
            msg_error("kv: op=%s path=%s: error=%s (and %ld more errors since the last line)", op,
                      self->path, err, more);
        else
            msg_error("kv: op=%s path=%s: error=%s", op, self ? self->path : "?", err);
    } else {
        atomic_fetch_add(&self->unlogged, 1);
    }
    leveldb_free(err);
    errno = errnum;
    return 1;
}

/* A write failed: the handle must be opened again before the next one. */
static int s_write_failed(kv_t *self, const char *op, char *err)
{
    if (!s_failed(self, op, err))
        return 0;
    atomic_store(&self->broken, true);
    return 1;
}

/* LevelDB's LOG lines saying how much of a damaged log file this open dropped, as
 * warnings (at most S_DROPS_MAX, then their count). */
#define S_DROPS_MAX 10
static void s_report_drops(const char *path, const char *op)
{
    char *logp = xasprintf("%s/LOG", path);
    FILE *fp = fopen(logp, "r");
    xfree(logp);
    if (fp == NULL)
        return;
    char line[1024];
    size_t n = 0;
    while (fgets(line, sizeof(line), fp)) {
        /* "DATE THREAD (ignoring error) DIR/000005.log: dropping 120 bytes; Corruption: .." */
        if (strstr(line, ".log: dropping ") == NULL)
            continue;
        if (n++ >= S_DROPS_MAX)
            continue;
        line[strcspn(line, "\n")] = '\0';
        const char *what = strstr(line, "(ignoring error) ");
        what = what ? what + strlen("(ignoring error) ") : line;
        msg_warn("kv: op=%s path=%s: records lost, LevelDB found a damaged log: %s", op, path,
                 what);
    }
    fclose(fp);
    if (n > S_DROPS_MAX)
        msg_warn("kv: op=%s path=%s: records lost, %zu more damaged places in its logs", op, path,
                 n - S_DROPS_MAX);
}

/* Closes and opens the database; the caller holds the write lock. */
static int s_reopen_locked(kv_t *self)
{
    char *err = NULL;
    if (self->db)
        leveldb_close(self->db);
    self->db = leveldb_open(self->options, self->path, &err);
    if (s_failed(self, "reopen", err) || self->db == NULL) {
        self->db = NULL;
        atomic_store(&self->broken, true);
        atomic_store(&self->retry_ms, s_mono_ms() + S_RETRY_OPEN_MS);
        return -1;
    }
    atomic_store(&self->broken, false);
    s_report_drops(self->path, "reopen");
    return 0;
}

int kv_reopen(kv_t *self)
{
    pthread_rwlock_wrlock(&self->lock);
    int rc = s_reopen_locked(self);
    pthread_rwlock_unlock(&self->lock);
    return rc;
}

/* Takes the read lock for a call; for a write on a broken handle, opens the database
 * again first (when no one else holds the handle). 0, or -1 (no lock held) when there is
 * no database to use. */
static int s_enter(kv_t *self, bool write)
{
    if (write && atomic_load(&self->broken) && s_mono_ms() >= atomic_load(&self->retry_ms) &&
        pthread_rwlock_trywrlock(&self->lock) == 0) {
        if (atomic_load(&self->broken) && s_reopen_locked(self) == 0)
            msg_info("kv: op=reopen path=%s: writing again after a failed write", self->path);
        pthread_rwlock_unlock(&self->lock);
    }
    pthread_rwlock_rdlock(&self->lock);
    if (self->db == NULL || (write && atomic_load(&self->broken))) {
        pthread_rwlock_unlock(&self->lock);
        return -1;
    }
    return 0;
}

static void s_leave(kv_t *self)
{
    pthread_rwlock_unlock(&self->lock);
}

static void s_free_parts(kv_t *self)
{
    if (self->db)
        leveldb_close(self->db);
    if (self->options)
        leveldb_options_destroy(self->options);
    if (self->cache)
        leveldb_cache_destroy(self->cache);
    if (self->filter)
        leveldb_filterpolicy_destroy(self->filter);
    if (self->ropts)
        leveldb_readoptions_destroy(self->ropts);
    if (self->wopts)
        leveldb_writeoptions_destroy(self->wopts);
    if (self->wsync)
        leveldb_writeoptions_destroy(self->wsync);
    if (self->wasync)
        leveldb_writeoptions_destroy(self->wasync);
    xfree(self->path);
    pthread_rwlock_destroy(&self->lock);
    xfree(self);
}

kv_t *kv_open(const char *path, int create, const kv_options_t *opts)
{
    static const kv_options_t defaults = {0};
    kv_t *self = xcalloc(1, sizeof(*self));
    char *err = NULL;

    assert(path);
    /* LevelDB makes the directory before it notices there is no database */
    struct stat st;
    if (!create && stat(path, &st) < 0) {
        int errnum = errno;
        msg_error("kv: op=open path=%s: error=%s", path, strerror(errnum));
        xfree(self);
        errno = errnum;
        return NULL;
    }
    if (opts == NULL)
        opts = &defaults;
    self->path = xstrdup(path);
    pthread_rwlock_init(&self->lock, NULL);
    self->options = leveldb_options_create();
    leveldb_options_set_create_if_missing(self->options, create ? 1 : 0);
    if (opts->write_buffer_size)
        leveldb_options_set_write_buffer_size(self->options, opts->write_buffer_size);
    if (opts->max_open_files)
        leveldb_options_set_max_open_files(self->options, opts->max_open_files);
    if (opts->cache_size) {
        self->cache = leveldb_cache_create_lru(opts->cache_size);
        leveldb_options_set_cache(self->options, self->cache);
    }
    if (opts->block_size)
        leveldb_options_set_block_size(self->options, opts->block_size);
    if (opts->write_mostly) {
        leveldb_options_set_compression(self->options, leveldb_no_compression);
    } else {
        self->filter = leveldb_filterpolicy_create_bloom(10);
        leveldb_options_set_filter_policy(self->options, self->filter);
    }
    self->ropts = leveldb_readoptions_create();
    self->wopts = leveldb_writeoptions_create();
    leveldb_writeoptions_set_sync(self->wopts, opts->sync ? 1 : 0);
    self->wsync = leveldb_writeoptions_create();
    leveldb_writeoptions_set_sync(self->wsync, 1);
    self->wasync = leveldb_writeoptions_create();
    leveldb_writeoptions_set_sync(self->wasync, 0);

    self->db = leveldb_open(self->options, path, &err);
    int failed = s_failed(self, "open", err);
    if (failed || self->db == NULL) {
        int errnum = failed ? errno : EIO;
        self->db = NULL;
        s_free_parts(self);
        errno = errnum;
        return NULL;
    }
    s_report_drops(path, "open");
    return self;
}

void kv_close(kv_t **self_p)
{
    assert(self_p);
    if (*self_p) {
        s_free_parts(*self_p);
        *self_p = NULL;
    }
}

const char *kv_path(const kv_t *self)
{
    assert(self);
    return self->path;
}

int kv_get(kv_t *self, const void *key, size_t klen, char **val, size_t *vlen)
{
    char *err = NULL;
    size_t len = 0;

    assert(self && val && (key || klen == 0));
    *val = NULL;
    if (vlen)
        *vlen = 0;
    if (s_enter(self, false) < 0)
        return -1;
    char *found = leveldb_get(self->db, self->ropts, key, klen, &len, &err);
    s_leave(self);
    if (s_failed(self, "get", err)) {
        if (found)
            leveldb_free(found);
        return -1;
    }
    if (found == NULL)
        return 0;
    *val = xmalloc(len + 1);
    memcpy(*val, found, len);
    (*val)[len] = '\0';
    leveldb_free(found);
    if (vlen)
        *vlen = len;
    return 1;
}

int kv_put(kv_t *self, const void *key, size_t klen, const void *val, size_t vlen)
{
    char *err = NULL;
    assert(self && (key || klen == 0) && (val || vlen == 0));
    if (s_enter(self, true) < 0)
        return -1;
    leveldb_put(self->db, self->wopts, key, klen, val, vlen, &err);
    s_leave(self);
    return s_write_failed(self, "put", err) ? -1 : 0;
}

int kv_del(kv_t *self, const void *key, size_t klen)
{
    char *err = NULL;
    assert(self && (key || klen == 0));
    if (s_enter(self, true) < 0)
        return -1;
    leveldb_delete(self->db, self->wopts, key, klen, &err);
    s_leave(self);
    return s_write_failed(self, "del", err) ? -1 : 0;
}

kv_batch_t *kv_batch_new(void)
{
    kv_batch_t *batch = xcalloc(1, sizeof(*batch));
    batch->wb = leveldb_writebatch_create();
    return batch;
}

void kv_batch_put(kv_batch_t *batch, const void *key, size_t klen, const void *val, size_t vlen)
{
    assert(batch && (key || klen == 0) && (val || vlen == 0));
    leveldb_writebatch_put(batch->wb, key, klen, val, vlen);
    batch->count++;
}

void kv_batch_del(kv_batch_t *batch, const void *key, size_t klen)
{
    assert(batch && (key || klen == 0));
    leveldb_writebatch_delete(batch->wb, key, klen);
    batch->count++;
}

size_t kv_batch_count(const kv_batch_t *batch)
{
    assert(batch);
    return batch->count;
}

void kv_batch_clear(kv_batch_t *batch)
{
    assert(batch);
    leveldb_writebatch_clear(batch->wb);
    batch->count = 0;
}

int kv_batch_write(kv_t *self, kv_batch_t *batch, int sync)
{
    char *err = NULL;
    assert(self && batch);
    if (s_enter(self, true) < 0)
        return -1;
    leveldb_write(self->db, sync ? self->wsync : self->wasync, batch->wb, &err);
    s_leave(self);
    return s_write_failed(self, "batch", err) ? -1 : 0;
}

void kv_batch_destroy(kv_batch_t **batch_p)
{
    assert(batch_p);
    if (*batch_p) {
        leveldb_writebatch_destroy((*batch_p)->wb);
        xfree(*batch_p);
        *batch_p = NULL;
    }
}

kv_iter_t *kv_iter_new(kv_t *self, const void *prefix, size_t plen)
{
    assert(self && (prefix || plen == 0));
    kv_iter_t *it = xcalloc(1, sizeof(*it));
    it->kv = self;
    /* the read lock lives as long as the iterator: no reopen under it */
    it->locked = s_enter(self, false) == 0;
    it->it = it->locked ? leveldb_create_iterator(self->db, self->ropts) : NULL;
    it->prefix = xmalloc(plen + 1);
    if (plen)
        memcpy(it->prefix, prefix, plen);
    it->plen = plen;
    it->state = S_ITER_FRESH;
    return it;
}

/* Bytewise a < b, as LevelDB's default comparator orders keys. */
static int s_key_less(const void *a, size_t alen, const void *b, size_t blen)
{
    size_t n = alen < blen ? alen : blen;
    int c = n ? memcmp(a, b, n) : 0;
    return c < 0 || (c == 0 && alen < blen);
}

void kv_iter_seek(kv_iter_t *it, const void *key, size_t klen)
{
    assert(it && (key || klen == 0));
    if (!it->locked)
        return; /* no database: next says so */
    /* never before the prefix: the first key >= max(key, prefix) */
    if (s_key_less(key, klen, it->prefix, it->plen))
        leveldb_iter_seek(it->it, it->prefix, it->plen);
    else
        leveldb_iter_seek(it->it, key, klen);
    it->state = S_ITER_SEEKED;
}

int kv_iter_next(kv_iter_t *it)
{
    assert(it);
    switch (it->state) {
    case S_ITER_END:
        return 0;
    case S_ITER_FRESH:
        if (!it->locked) {
            it->state = S_ITER_END;
            return -1; /* the database could not be opened again */
        }
        if (it->plen)
            leveldb_iter_seek(it->it, it->prefix, it->plen);
        else
            leveldb_iter_seek_to_first(it->it);
        break;
    case S_ITER_SEEKED:
        break;
    case S_ITER_ON:
        leveldb_iter_next(it->it);
        break;
    }
    if (!leveldb_iter_valid(it->it)) {
        char *err = NULL;
        it->state = S_ITER_END;
        leveldb_iter_get_error(it->it, &err);
        return s_failed(it->kv, "iter", err) ? -1 : 0;
    }
    size_t klen;
    const char *key = leveldb_iter_key(it->it, &klen);
    if (klen < it->plen || memcmp(key, it->prefix, it->plen) != 0) {
        it->state = S_ITER_END;
        return 0;
    }
    it->state = S_ITER_ON;
    return 1;
}

const void *kv_iter_key(const kv_iter_t *it, size_t *klen)
{
    assert(it && klen && it->state == S_ITER_ON);
    return leveldb_iter_key(it->it, klen);
}

const void *kv_iter_value(const kv_iter_t *it, size_t *vlen)
{
    assert(it && vlen && it->state == S_ITER_ON);
    return leveldb_iter_value(it->it, vlen);
}

void kv_iter_destroy(kv_iter_t **it_p)
{
    assert(it_p);
    if (*it_p) {
        if ((*it_p)->it)
            leveldb_iter_destroy((*it_p)->it);
        if ((*it_p)->locked)
            s_leave((*it_p)->kv);
        xfree((*it_p)->prefix);
        xfree(*it_p);
        *it_p = NULL;
    }
}

void kv_u64_put(uint8_t out[8], uint64_t v)
{
    for (int i = 7; i >= 0; i--) {
        out[i] = (uint8_t)(v & 0xFF);
        v >>= 8;
    }
}

uint64_t kv_u64_get(const void *p)
{
    const uint8_t *b = p;
    uint64_t v = 0;
    for (int i = 0; i < 8; i++)
        v = (v << 8) | b[i];
    return v;
}
