/*
 * store - the aggregator's state in LevelDB; see store.h for the layout and
 * what a crash can lose.
 *
 * Decisions and log entries are serialized Frames (Frame{update}), packed and
 * checked by common/wire like anything on the network, so a damaged record is
 * refused, not trusted. Allowlist entries, sites and sensor records are small
 * binary records: a version byte, then fields (numbers big-endian, strings
 * with a 16-bit length), read with bounds checks.
 */
#include "store.h"

#include <assert.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <string.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "fp.h"
#include "kv.h"
#include "msg.h"
#include "publish.h"
#include "wire.h"
#include "xalloc.h"

/* Version byte of the binary records. */
#define STORE_REC_V1 1

/* Batches handed to the writer thread and not yet written, at most; one more waits. */
#define S_WRITER_QUEUE 4

/* The window database's directory, inside the data directory. */
#define S_WINDOW_DIR "windows"
/* the host boot, told apart from a restart of the daemon (store_boot_id) */
#define S_BOOT_ID "/proc/sys/kernel/random/boot_id"

/* Window records moved from the main database per batch when an older data directory is
 * opened. */
#define S_MOVE_BATCH 4096

/* What store_check() compares: the data directory, the main database's LOCK, the window
 * database's LOCK. */
enum { S_ID_DIR, S_ID_LOCK, S_ID_WLOCK, S_ID__COUNT };

/* A file by device and inode; both 0 when it could not be looked at. */
typedef struct {
    dev_t dev;     /* its device */
    ino_t ino;     /* its inode */
    int err;       /* 0, or why stat() failed: ENOENT (or ENOTDIR) says it is not there, any
                      other error (EIO, ESTALE, ENOMEM ...) says nothing about it */
    bool unlinked; /* found, with no link left: removed, still reached through a mount */
} s_ident_t;

/* One flush step for the writer thread: its window records and the rest. */
typedef struct {
    kv_batch_t *wbatch;   /* for the window database; written first */
    window_copy_t *wcopy; /* window keys copied by the loop, encoded into wbatch by the
                             writer: the encoding is off the event loop */
    kv_batch_t *batch;    /* for the main database; all three cleared and kept for reuse */
    bool sync;            /* written synced (the end of a flush cycle) */
} s_job_t;

/* The write-behind thread (store_flush_behind): encoding the window keys the loop copied
 * and LevelDB's memtable insertion of a flush batch are most of a flush's cost, and the
 * event loop need not wait for them. Jobs are
 * written in the order handed over; the loop and the thread meet under one mutex once
 * per batch, never per event. */
typedef struct {
    pthread_t thread;                          /* the writer */
    pthread_mutex_t mu;                        /* guards everything below */
    pthread_cond_t cv;                         /* a job queued, done, or stop */
    s_job_t q[S_WRITER_QUEUE];                 /* ring of jobs */
    size_t head, n;                            /* first job, jobs not yet written (q[head] may be
                                                  being written: it leaves the queue after) */
    bool stop;                                 /* leave when the queue is empty */
    kv_batch_t *spare[2 * S_WRITER_QUEUE + 2]; /* cleared batches for reuse */
    size_t nspare;                             /* how many */
    window_copy_t *spare_copies[S_WRITER_QUEUE + 1]; /* cleared copies for reuse */
    size_t nspare_copies;                            /* how many */
    uint64_t failed; /* batches that failed to write (logged by kv) */
} s_writer_t;

struct store {
    kv_t *kv;                   /* the database */
    kv_t *wkv;                  /* the window database (S_WINDOW_DIR): its flush batches are
                                   large, and LevelDB takes one write at a time, so decision
                                   changes would queue behind them in one database */
    kv_batch_t *pending;        /* written-behind operations for the next flush */
    kv_batch_t *wpending;       /* ... of them, window records */
    window_copy_t *wcopy;       /* ... and window keys copied, encoded into wpending when it is
                                   written (by the writer thread), after what it holds */
    kv_batch_t *now;            /* scratch batch for immediate writes */
    kv_batch_t *refill;         /* what store_refill_*() queued for store_refill_write() */
    s_writer_t *writer;         /* started by the first store_flush_behind() */
    uint64_t failed_seen;       /* writer->failed at the last store_flush_behind() */
    uint64_t syncs;             /* m/sync: the writer's synced writes (a marker, never read) */
    uint64_t epoch;             /* m/epoch */
    uint64_t seq;               /* m/seq */
    uint64_t log_floor;         /* log holds floor+1 .. seq */
    bool sync_decisions;        /* store_sync() waits for the disk */
    bool jumped;                /* store_open() moved seq on by STORE_SEQ_JUMP */
    bool opened;                /* store_open() finished: store_close() marks a clean stop */
    uint64_t boot;              /* m/boot, as written at open */
    s_ident_t ids[S_ID__COUNT]; /* the files store_check() expects (S_ID_*) */
    bool detached;              /* store_recreate() gave up after closing the databases:
                                   nothing is written until one works */
    s_ident_t foreign[2];       /* detached by another store: its directory and LOCK, not
                                   opened again while they stay */
    uint64_t foreign_epoch;     /* ... and its epoch */
};

/* ---- small record codec ---- */

typedef struct {
    uint8_t *p; /* bytes */
    size_t len; /* used */
    size_t cap; /* allocated */
} s_buf_t;

static void s_put(s_buf_t *b, const void *v, size_t n)
{
    if (b->len + n > b->cap) {
        b->cap = (b->len + n) * 2 + 64;
        b->p = xrealloc(b->p, b->cap);
    }
    memcpy(b->p + b->len, v, n);
    b->len += n;
}

static void s_put_u64(s_buf_t *b, uint64_t v)
{
    uint8_t x[8];
    kv_u64_put(x, v);
    s_put(b, x, 8);
}

static void s_put_str(s_buf_t *b, const char *s)
{
    size_t n = strlen(s);
    if (n > 0xFFFF)
        n = 0xFFFF;
    uint8_t x[2] = {(uint8_t)(n >> 8), (uint8_t)n};
    s_put(b, x, 2);
    s_put(b, s, n);
}

typedef struct {
    const uint8_t *p; /* next byte */
    size_t left;      /* bytes left */
    int bad;          /* a read ran past the end */
} s_rd_t;

static const uint8_t *s_get(s_rd_t *r, size_t n)
{
    if (r->bad || r->left < n) {
        r->bad = 1;
        return NULL;
    }
    const uint8_t *q = r->p;
    r->p += n;
    r->left -= n;
    return q;
}

static uint64_t s_get_u64(s_rd_t *r)
{
    const uint8_t *q = s_get(r, 8);
    return q ? kv_u64_get(q) : 0;
}

/* Copies a string into dst (size cap incl. NUL), cutting what does not fit. */
static void s_get_str(s_rd_t *r, char *dst, size_t cap)
{
    const uint8_t *l = s_get(r, 2);
    size_t n = l ? ((size_t)l[0] << 8 | l[1]) : 0;
    const uint8_t *q = s_get(r, n);
    dst[0] = '\0';
    if (!q)
        return;
    size_t c = n < cap - 1 ? n : cap - 1;
    memcpy(dst, q, c);
    dst[c] = '\0';
}

/* ---- keys ---- */

static size_t s_key_u64(uint8_t *out, char prefix, uint64_t v)
{
    out[0] = (uint8_t)prefix;
    out[1] = '/';
    kv_u64_put(out + 2, v);
    return 10;
}

static size_t s_key_str(uint8_t *out, size_t cap, char prefix, const char *s)
{
    size_t n = strlen(s);
    if (n + 2 > cap)
        n = cap - 2;
    out[0] = (uint8_t)prefix;
    out[1] = '/';
    memcpy(out + 2, s, n);
    return n + 2;
}

/* Puts the number v under m/<name> into batch b. */
static void s_meta_put(kv_batch_t *b, const char *name, uint64_t v)
{
    uint8_t key[2 + 256], val[8];
    size_t kl = s_key_str(key, sizeof(key), 'm', name);
    kv_u64_put(val, v);
    kv_batch_put(b, key, kl, val, 8);
}

/* "k/<site>\0<sensor>" */
static size_t s_key_sensor(uint8_t *out, size_t cap, char prefix, const char *site,
                           const char *sensor)
{
    size_t a = strlen(site), b = strlen(sensor);
    if (a + b + 3 > cap)
        return 0;
    out[0] = (uint8_t)prefix;
    out[1] = '/';
    memcpy(out + 2, site, a);
    out[2 + a] = 0;
    memcpy(out + 3 + a, sensor, b);
    return a + b + 3;
}

/* ---- open / close ---- */

static int s_meta_get(kv_t *kv, const char *key, uint64_t *out)
{
    char *v = NULL;
    size_t vl = 0;
    int rc = kv_get(kv, key, strlen(key), &v, &vl);
    if (rc == 1 && vl == 8)
        *out = kv_u64_get(v);
    else if (rc == 1)
        rc = -1;
    xfree(v);
    return rc;
}

static uint64_t s_random_epoch(void)
{
    uint64_t e = 0;
    while (e == 0) {
        if (getrandom(&e, sizeof(e), 0) != (ssize_t)sizeof(e)) {
            struct timespec ts;
            clock_gettime(CLOCK_REALTIME, &ts);
            e = (uint64_t)ts.tv_sec * 1000000007ULL ^ (uint64_t)ts.tv_nsec ^
                ((uint64_t)getpid() << 32);
        }
    }
    return e;
}

/* Finds the lowest and highest seq in the log, to know how far back it answers and
 * whether it reaches beyond m/seq; false when it holds no entry. Changes are numbered
 * from 1: a key of another length or of seq 0 is no log entry (damaged), and is left
 * to store_changes_since(), which refuses it. */
static bool s_log_range(kv_t *kv, uint64_t *low, uint64_t *high)
{
    kv_iter_t *it = kv_iter_new(kv, "q/", 2);
    bool any = false;
    while (kv_iter_next(it) == 1) {
        size_t kl = 0;
        const uint8_t *k = kv_iter_key(it, &kl);
        uint64_t s = kl == 10 ? kv_u64_get(k + 2) : 0;
        if (s == 0)
            continue;
        if (!any)
            *low = s;
        *high = s;
        any = true;
    }
    kv_iter_destroy(&it);
    return any;
}

/* 0 with errno set when unreadable (a ProcSubset=pid unit hides /proc/sys) */
uint64_t store_boot_id(void)
{
    char buf[64] = "";
    FILE *fp = fopen(S_BOOT_ID, "r");
    if (!fp)
        return 0;
    if (!fgets(buf, sizeof(buf), fp))
        buf[0] = 0;
    int e = ferror(fp) ? errno : ENODATA;
    fclose(fp);
    buf[strcspn(buf, "\n")] = 0;
    if (!buf[0])
        errno = e;
    return buf[0] ? fp_text(buf) : 0;
}

/* Drops the whole sequence log and moves seq on by STORE_SEQ_JUMP: see store.h. */
static int s_jump(store_t *self)
{
    kv_iter_t *it = kv_iter_new(self->kv, "q/", 2);
    while (kv_iter_next(it) == 1) {
        size_t kl;
        const void *k = kv_iter_key(it, &kl);
        kv_batch_del(self->now, k, kl);
    }
    kv_iter_destroy(&it);
    self->seq += STORE_SEQ_JUMP;
    s_meta_put(self->now, "seq", self->seq);
    self->jumped = true;
    return 0;
}

/* window_export_fn: the record of a window key into the batch arg. */
static void s_window_put(const window_key_t *k, const uint8_t *blob, size_t len, void *arg)
{
    kv_batch_t *b = arg;
    uint8_t key[12];
    key[0] = 'w';
    key[1] = '/';
    key[2] = k->scope;
    key[3] = k->tally;
    kv_u64_put(key + 4, k->fp);
    if (blob)
        kv_batch_put(b, key, sizeof(key), blob, len);
    else
        kv_batch_del(b, key, sizeof(key));
}

static void s_encode_copy(kv_batch_t *wbatch, window_copy_t *wcopy)
{
    window_copy_encode(wcopy, s_window_put, wbatch);
    window_copy_clear(wcopy);
}

/* ---- the write-behind thread ---- */

/* Writes a flush step: the window records (those of wcopy encoded after what wbatch
 * holds), then the rest (synced: each database's log with everything written to it
 * before; a synced step carries a marker for each, so neither is empty). A batch written
 * is cleared, one that failed is kept. 0 or -1. */
static int s_write_both(store_t *self, kv_batch_t *wbatch, window_copy_t *wcopy, kv_batch_t *batch,
                        bool sync)
{
    s_encode_copy(wbatch, wcopy);
    int rc = 0;
    kv_batch_t *const both[2] = {wbatch, batch};
    kv_t *const dbs[2] = {self->wkv, self->kv};
    for (int i = 0; i < 2; i++) {
        if (kv_batch_count(both[i]) == 0)
            continue;
        if (kv_batch_write(dbs[i], both[i], sync) < 0)
            rc = -1;
        else
            kv_batch_clear(both[i]);
    }
    return rc;
}

static void *s_writer_run(void *arg)
{
    store_t *self = arg;
    s_writer_t *wr = self->writer;
    (void)pthread_setname_np(pthread_self(), "store-writer"); /* as top -H and perf show it */
    pthread_mutex_lock(&wr->mu);
    for (;;) {
        while (wr->n == 0 && !wr->stop)
            pthread_cond_wait(&wr->cv, &wr->mu);
        if (wr->n == 0)
            break;
        s_job_t job = wr->q[wr->head];
        pthread_mutex_unlock(&wr->mu);
        int rc = s_write_both(self, job.wbatch, job.wcopy, job.batch, job.sync);
        kv_batch_clear(job.wbatch); /* a failed batch is counted, not tried again */
        kv_batch_clear(job.batch);
        pthread_mutex_lock(&wr->mu);
        wr->head = (wr->head + 1) % S_WRITER_QUEUE;
        wr->n--;
        if (rc < 0)
            wr->failed++;
        wr->spare[wr->nspare++] = job.wbatch;
        wr->spare[wr->nspare++] = job.batch;
        wr->spare_copies[wr->nspare_copies++] = job.wcopy;
        pthread_cond_broadcast(&wr->cv);
    }
    pthread_mutex_unlock(&wr->mu);
    return NULL;
}

/* Starts the writer; false (logged) if the thread cannot be made. */
static bool s_writer_start(store_t *self)
{
    s_writer_t *wr = xcalloc(1, sizeof(*wr));
    pthread_mutex_init(&wr->mu, NULL);
    pthread_cond_init(&wr->cv, NULL);
    self->writer = wr;
    int err = pthread_create(&wr->thread, NULL, s_writer_run, self);
    if (err != 0) {
        msg_error("store: cannot start the writer thread: %s", strerror(err));
        pthread_cond_destroy(&wr->cv);
        pthread_mutex_destroy(&wr->mu);
        xfree(wr);
        self->writer = NULL;
        return false;
    }
    return true;
}

/* Waits until the writer has written everything handed to it. */
static void s_writer_drain(store_t *self)
{
    s_writer_t *wr = self->writer;
    if (wr == NULL)
        return;
    pthread_mutex_lock(&wr->mu);
    while (wr->n > 0)
        pthread_cond_wait(&wr->cv, &wr->mu);
    pthread_mutex_unlock(&wr->mu);
}

/* Writes what the writer holds, stops and frees it. */
static void s_writer_stop(store_t *self)
{
    s_writer_t *wr = self->writer;
    if (wr == NULL)
        return;
    pthread_mutex_lock(&wr->mu);
    wr->stop = true;
    pthread_cond_broadcast(&wr->cv);
    pthread_mutex_unlock(&wr->mu);
    pthread_join(wr->thread, NULL);
    for (size_t i = 0; i < wr->nspare; i++)
        kv_batch_destroy(&wr->spare[i]);
    for (size_t i = 0; i < wr->nspare_copies; i++)
        window_copy_destroy(&wr->spare_copies[i]);
    pthread_cond_destroy(&wr->cv);
    pthread_mutex_destroy(&wr->mu);
    xfree(wr);
    self->writer = NULL;
}

/* Writes the batch to kv when it holds S_MOVE_BATCH operations (or, final, at all: then
 * synced), and clears it. 0 or -1. */
static int s_move_step(kv_t *kv, kv_batch_t *b, bool final)
{
    if (!final && kv_batch_count(b) < S_MOVE_BATCH)
        return 0;
    int rc = kv_batch_write(kv, b, final);
    kv_batch_clear(b);
    return rc < 0 ? -1 : 0;
}

/* A data directory from before the window database has its window records in the main
 * one: they move, once. All the copies are on disk (synced) before the first deletion is
 * written, so a crash in between leaves both, and the next start moves them again. 0 or
 * -1. */
static int s_move_windows(store_t *self)
{
    long n = 0;
    int rc = 0;
    kv_batch_t *b = self->wpending;
    for (int pass = 0; pass < 2 && rc == 0; pass++) {
        kv_iter_t *it = kv_iter_new(self->kv, "w/", 2);
        kv_t *to = pass == 0 ? self->wkv : self->kv;
        while (rc == 0 && (rc = kv_iter_next(it)) == 1) {
            size_t kl = 0, vl = 0;
            const void *k = kv_iter_key(it, &kl);
            if (pass == 0) {
                const void *v = kv_iter_value(it, &vl);
                kv_batch_put(b, k, kl, v, vl);
                n++;
            } else {
                kv_batch_del(b, k, kl);
            }
            rc = s_move_step(to, b, false) < 0 ? -1 : 0;
        }
        kv_iter_destroy(&it);
        if (n == 0 || rc < 0)
            break;
        s_meta_put(b, "moved", (uint64_t)n); /* the final write is never empty */
        rc = s_move_step(to, b, true);
    }
    kv_batch_clear(b);
    if (rc == 0 && n > 0)
        msg_info("store: moved %ld window records to %s/%s", n, kv_path(self->kv), S_WINDOW_DIR);
    return rc < 0 ? -1 : 0;
}

/* The identity of path, or zeros and why not (err) when it cannot be looked at. */
static s_ident_t s_ident(const char *path)
{
    struct stat st;
    if (stat(path, &st) < 0)
        return (s_ident_t){0, 0, errno ? errno : EIO, false};
    return (s_ident_t){st.st_dev, st.st_ino, 0, st.st_nlink == 0};
}

/* Whether the look found no file there (rather than failing to look), or one removed
 * that a mount still leads to. */
static bool s_ident_gone(s_ident_t a)
{
    return a.err == ENOENT || a.err == ENOTDIR || a.unlinked;
}

/* Whether the look failed and so says nothing. */
static bool s_ident_unknown(s_ident_t a)
{
    return a.err != 0 && !s_ident_gone(a);
}

static bool s_ident_same(s_ident_t a, s_ident_t b)
{
    return a.ino != 0 && a.dev == b.dev && a.ino == b.ino;
}

/* The path of what store_check() looks at (S_ID_*), for xfree. */
static char *s_id_path(const store_t *self, int which)
{
    if (which == S_ID_DIR)
        return xstrdup(kv_path(self->kv));
    return xasprintf("%s/LOCK", kv_path(which == S_ID_LOCK ? self->kv : self->wkv));
}

/* The files store_check() looks at, as they are now. */
static void s_idents(const store_t *self, s_ident_t ids[S_ID__COUNT])
{
    for (int i = 0; i < S_ID__COUNT; i++) {
        char *path = s_id_path(self, i);
        ids[i] = s_ident(path);
        xfree(path);
    }
}

/* Says which look failed, and how, in why; the first that did, or -1 when none did. */
static int s_unknown(const store_t *self, const s_ident_t ids[S_ID__COUNT], char *why,
                     size_t whylen)
{
    for (int i = 0; i < S_ID__COUNT; i++) {
        if (!s_ident_unknown(ids[i]))
            continue;
        char *path = s_id_path(self, i);
        snprintf(why, whylen, "cannot look at %s: %s", path, strerror(ids[i].err));
        xfree(path);
        return i;
    }
    return -1;
}

store_t *store_open(const char *dir, bool sync_decisions, bool *created_p)
{
    uint64_t boot = store_boot_id();
    if (boot == 0)
        msg_warn("store: cannot read %s: %s; a host crash will not be detected", S_BOOT_ID,
                 strerror(errno));
    return store_open_boot(dir, sync_decisions, boot, created_p);
}

/* store_open_boot() gives up: closes what it opened, errno kept for the caller. */
static store_t *s_open_failed(store_t **self_p)
{
    int errnum = errno;
    store_close(self_p);
    errno = errnum;
    return NULL;
}

store_t *store_open_boot(const char *dir, bool sync_decisions, uint64_t boot, bool *created_p)
{
    /* small caches: the daemon reads the store only at start; RSS goes to the window. It
     * rewrites every busy window key every second and reads it back only by iterating at
     * start: snappy and bloom filters would cost CPU in every compaction and save nothing
     * (measured in-process: 150 k records of 110 bytes a second took 24 % less CPU without
     * compression, 30-35 % less with 64 KiB blocks and no filters too) */
    kv_options_t opts = {.write_buffer_size = 4u << 20,
                         .cache_size = 4u << 20,
                         .block_size = 64u << 10,
                         .write_mostly = 1};
    /* kv_put/kv_del are the allowlist's and sites' writes, answered to the operator at
     * once: synced as store.h promises (nothing else would sync them) */
    opts.sync = sync_decisions;
    kv_t *kv = kv_open(dir, 1, &opts);
    if (!kv)
        return NULL;
    store_t *self = xcalloc(1, sizeof(*self));
    self->kv = kv;
    self->pending = kv_batch_new();
    self->wpending = kv_batch_new();
    self->wcopy = window_copy_new();
    self->now = kv_batch_new();
    self->refill = kv_batch_new();
    char *wdir = xasprintf("%s/%s", dir, S_WINDOW_DIR);
    self->wkv = kv_open(wdir, 1, &opts);
    xfree(wdir);
    if (self->wkv == NULL || s_move_windows(self) < 0) {
        return s_open_failed(&self);
    }
    self->sync_decisions = sync_decisions;
    bool created = false;
    int rc = s_meta_get(kv, "m/epoch", &self->epoch);
    if (rc < 0) {
        return s_open_failed(&self);
    }
    if (rc == 0 || self->epoch == 0) {
        /* No sequence log: new database, or the log was lost. Old decisions and log
         * entries (if any) belong to the lost epoch: drop them. */
        created = true;
        self->epoch = s_random_epoch();
        self->seq = 0;
        const char *drop[] = {"d/", "q/"};
        for (size_t i = 0; i < 2; i++) {
            kv_iter_t *it = kv_iter_new(kv, drop[i], 2);
            while (kv_iter_next(it) == 1) {
                size_t kl;
                const void *k = kv_iter_key(it, &kl);
                kv_batch_del(self->now, k, kl);
            }
            kv_iter_destroy(&it);
        }
        s_meta_put(self->now, "epoch", self->epoch);
        s_meta_put(self->now, "seq", 0);
        if (kv_batch_write(kv, self->now, 1) < 0) {
            return s_open_failed(&self);
        }
        kv_batch_clear(self->now);
    } else if (s_meta_get(kv, "m/seq", &self->seq) < 0) {
        return s_open_failed(&self);
    }
    /* m/seq is written in the batch of every log entry (store_changes_write), so a log
     * reaching beyond it means m/seq was damaged or edited. Sensors may hold any number
     * logged, and numbering again from below would give them changes they take for
     * ones they have: move seq on to the end of the log. */
    uint64_t low = 0, high = 0;
    bool logged = !created && s_log_range(kv, &low, &high);
    if (logged && high > self->seq) {
        msg_warn("store: %s: the sequence log reaches %llu, beyond m/seq %llu: seq moved on", dir,
                 (unsigned long long)high, (unsigned long long)self->seq);
        self->seq = high;
        s_meta_put(self->now, "seq", self->seq);
    }
    /* the host went down under the last run: what it published after its last sync may be
     * gone from the disk, and sensors may hold sequence numbers we no longer know */
    uint64_t last_boot = 0, clean = 1;
    /* (never from a seq beyond the highest: the jump could wrap it round to a small one) */
    if (!created && self->seq <= STORE_SEQ_MAX && s_meta_get(kv, "m/boot", &last_boot) == 1 &&
        s_meta_get(kv, "m/clean", &clean) == 1 && clean == 0 && boot != 0 && last_boot != 0 &&
        last_boot != boot)
        s_jump(self);
    /* checked on the seq this run would go on from (nothing is written yet) */
    if (self->seq > STORE_SEQ_MAX) {
        msg_error("store: %s: sequence number %llu is beyond any real one (m/seq or the log "
                  "damaged): not starting on it",
                  dir, (unsigned long long)self->seq);
        errno = EINVAL;
        return s_open_failed(&self);
    }
    s_meta_put(self->now, "boot", boot);
    s_meta_put(self->now, "clean", 0);
    if (kv_batch_write(kv, self->now, 1) < 0) {
        return s_open_failed(&self);
    }
    kv_batch_clear(self->now);
    /* the log answers from its first entry; the jump dropped it all */
    self->log_floor = logged && !self->jumped ? low - 1 : self->seq;
    self->boot = boot;
    s_idents(self, self->ids);
    self->opened = true;
    if (created_p)
        *created_p = created;
    return self;
}

bool store_jumped(const store_t *self)
{
    return self->jumped;
}

void store_close(store_t **self_p)
{
    if (!self_p || !*self_p)
        return;
    store_t *self = *self_p;
    s_writer_stop(self);
    if (self->kv && self->wkv && store_pending(self) > 0)
        (void)store_flush(self);
    if (self->kv && self->opened && !self->detached) {
        kv_batch_clear(self->now);
        s_meta_put(self->now, "clean", 1);
        (void)kv_batch_write(self->kv, self->now, 1);
    }
    kv_batch_destroy(&self->pending);
    kv_batch_destroy(&self->wpending);
    window_copy_destroy(&self->wcopy);
    kv_batch_destroy(&self->now);
    kv_batch_destroy(&self->refill);
    kv_close(&self->wkv);
    kv_close(&self->kv);
    xfree(self);
    *self_p = NULL;
}

uint64_t store_epoch(const store_t *self)
{
    return self->epoch;
}

uint64_t store_seq(const store_t *self)
{
    return self->seq;
}

/* ---- decisions and the sequence log ---- */

/* Packs change c as Frame{update}; buffer for xfree. */
static uint8_t *s_pack_change(const decision_change_t *c, size_t *len)
{
    publish_pb_t pb;
    Backstop__DecisionUpdate u;
    publish_pb_update(&u, &pb, c);
    Backstop__Frame f;
    wire_frame_init(&f, BACKSTOP__FRAME__BODY_UPDATE, &u);
    return wire_pack(&f, len, NULL);
}

/* Unpacks a Frame{update}; 0 or -1. */
static int s_unpack_change(const void *buf, size_t len, decision_change_t *out)
{
    wire_err_t err = WIRE_OK;
    Backstop__Frame *f = wire_unpack(buf, len, &err);
    if (!f)
        return -1;
    int rc = -1;
    if (f->body_case == BACKSTOP__FRAME__BODY_UPDATE) {
        const Backstop__DecisionUpdate *u = f->update;
        memset(out, 0, sizeof(*out));
        out->kind =
            u->kind == BACKSTOP__DECISION_UPDATE__KIND__REMOVE ? DECISION_REMOVE : DECISION_UPSERT;
        out->seq = u->seq;
        out->epoch = u->epoch;
        int why = decisions_why_parse(u->why);
        out->why = why < 0 ? DECISION_WHY_NEW : (decision_why_t)why;
        rc = publish_pb_read(u->decision, &out->decision);
    }
    wire_free(&f);
    return rc;
}

/* Puts change c as d/<id> (upsert) or deletes it, and as q/<seq> when log. false when it
 * cannot be packed (logged). */
static bool s_put_change(kv_batch_t *b, const decision_change_t *c, bool log)
{
    size_t len = 0;
    uint8_t *rec = s_pack_change(c, &len);
    if (!rec) {
        msg_error("store: cannot pack change seq=%llu id=%s", (unsigned long long)c->seq,
                  c->decision.id);
        return false;
    }
    uint8_t key[64];
    size_t kl = s_key_str(key, sizeof(key), 'd', c->decision.id);
    if (c->kind == DECISION_UPSERT)
        kv_batch_put(b, key, kl, rec, len);
    else
        kv_batch_del(b, key, kl);
    if (log) {
        kl = s_key_u64(key, 'q', c->seq);
        kv_batch_put(b, key, kl, rec, len);
    }
    xfree(rec);
    return true;
}

int store_changes_write(store_t *self, const decision_change_t *changes, size_t n)
{
    if (self->detached)
        return -1;
    if (n == 0)
        return 0;
    kv_batch_clear(self->now);
    uint64_t last = self->seq;
    for (size_t i = 0; i < n; i++) {
        const decision_change_t *c = &changes[i];
        /* never a seq that the next start would refuse */
        if (c->seq > STORE_SEQ_MAX) {
            msg_error("store: change seq=%llu id=%s is beyond the highest sequence number %llu: "
                      "not stored",
                      (unsigned long long)c->seq, c->decision.id,
                      (unsigned long long)STORE_SEQ_MAX);
            kv_batch_clear(self->now);
            return -1;
        }
        if (!s_put_change(self->now, c, true)) {
            kv_batch_clear(self->now);
            return -1;
        }
        if (c->seq > last)
            last = c->seq;
    }
    s_meta_put(self->now, "seq", last);
    int rc = kv_batch_write(self->kv, self->now, 0);
    kv_batch_clear(self->now);
    if (rc < 0)
        return -1;
    self->seq = last;
    return 0;
}

int store_sync(store_t *self)
{
    if (self->detached)
        return -1;
    if (!self->sync_decisions)
        return 0;
    /* a synced write makes LevelDB fsync its log, and with it every write before: after
     * the writer's, which the caller handed over earlier and counts on too */
    s_writer_drain(self);
    kv_batch_clear(self->now);
    s_meta_put(self->now, "seq", self->seq);
    int rc = kv_batch_write(self->kv, self->now, 1);
    kv_batch_clear(self->now);
    return rc < 0 ? -1 : 0;
}

/* Bytes of a damaged record's key a log line quotes. */
#define S_QKEY_MAX 128

/* A record key (any bytes) as a log value, quoted (msg_quote), its first S_QKEY_MAX bytes;
 * buf holds MSG_QUOTE_SIZE(S_QKEY_MAX). */
static const char *s_quote_key(char *buf, const void *k, size_t kl)
{
    return msg_quote_n(buf, MSG_QUOTE_SIZE(S_QKEY_MAX), k, kl < S_QKEY_MAX ? kl : S_QKEY_MAX);
}

long store_decisions_load(store_t *self, int (*cb)(const decision_t *d, void *arg), void *arg)
{
    char q[MSG_QUOTE_SIZE(S_QKEY_MAX)];
    kv_iter_t *it = kv_iter_new(self->kv, "d/", 2);
    long n = 0;
    int rc;
    while ((rc = kv_iter_next(it)) == 1) {
        size_t vl = 0;
        const void *v = kv_iter_value(it, &vl);
        decision_change_t c;
        size_t kl = 0;
        const char *k = kv_iter_key(it, &kl);
        if (s_unpack_change(v, vl, &c) < 0) {
            msg_warn("store: skipping malformed decision record %s", s_quote_key(q, k, kl));
            continue;
        }
        /* its key is d/<id> (a removal deletes that key: under another it would come back
         * at every start), and its change one the store has numbered (a seq beyond would
         * be given again, and its id with it) */
        const decision_t *d = &c.decision;
        if (kl != 2 + strlen(d->id) || memcmp(k + 2, d->id, kl - 2) != 0 || d->seq > self->seq) {
            msg_warn("store: skipping decision record %s: id %s seq %llu does not match "
                     "its key or the store's seq %llu",
                     s_quote_key(q, k, kl), d->id, (unsigned long long)d->seq,
                     (unsigned long long)self->seq);
            continue;
        }
        n++;
        if (cb(&c.decision, arg))
            break;
    }
    kv_iter_destroy(&it);
    return rc < 0 ? -1 : n;
}

int store_changes_since(store_t *self, uint64_t since_seq,
                        int (*cb)(const decision_change_t *c, void *arg), void *arg)
{
    if (self->detached)
        return -1;
    if (since_seq < self->log_floor || since_seq > self->seq)
        return -1;
    kv_iter_t *it = kv_iter_new(self->kv, "q/", 2);
    uint8_t key[10];
    s_key_u64(key, 'q', since_seq + 1);
    kv_iter_seek(it, key, sizeof(key));
    uint64_t expect = since_seq + 1;
    int rc = 0;
    /* up to seq: a damaged key sorting after the log is not an answer's business */
    while (expect <= self->seq && kv_iter_next(it) == 1) {
        size_t vl = 0;
        const void *v = kv_iter_value(it, &vl);
        decision_change_t c;
        if (s_unpack_change(v, vl, &c) < 0 || c.seq != expect) {
            rc = -1; /* a hole or a damaged entry: the caller sends a full snapshot */
            break;
        }
        expect++;
        if ((rc = cb(&c, arg)) != 0)
            break;
    }
    kv_iter_destroy(&it);
    if (rc == 0 && expect != self->seq + 1)
        rc = -1;
    return rc;
}

void store_log_prune(store_t *self, uint64_t below)
{
    if (below > self->seq)
        below = self->seq;
    for (uint64_t s = self->log_floor + 1; s <= below; s++) {
        uint8_t key[10];
        s_key_u64(key, 'q', s);
        kv_batch_del(self->pending, key, sizeof(key));
    }
    if (below > self->log_floor)
        self->log_floor = below;
}

uint64_t store_log_floor(const store_t *self)
{
    return self->log_floor;
}

/* ---- written behind ---- */

void store_window_queue(store_t *self, const window_key_t *k, const uint8_t *blob, size_t len)
{
    s_encode_copy(self->wpending, self->wcopy); /* keys copied before come first */
    s_window_put(k, blob, len, self->wpending);
}

void store_window_tallies_queue(store_t *self, const uint32_t *sigs, size_t n)
{
    s_encode_copy(self->wpending, self->wcopy);
    uint8_t *v = xmalloc(n * 4 + 1);
    for (size_t i = 0; i < n; i++) {
        v[4 * i] = (uint8_t)(sigs[i] >> 24);
        v[4 * i + 1] = (uint8_t)(sigs[i] >> 16);
        v[4 * i + 2] = (uint8_t)(sigs[i] >> 8);
        v[4 * i + 3] = (uint8_t)sigs[i];
    }
    kv_batch_put(self->wpending, "m/tallies", 9, v, n * 4);
    xfree(v);
}

long store_window_tallies_get(store_t *self, uint32_t *sigs, size_t max)
{
    char *v = NULL;
    size_t vl = 0;
    int rc = kv_get(self->wkv, "m/tallies", 9, &v, &vl);
    long n = -1;
    if (rc == 1 && vl % 4 == 0 && vl / 4 <= max) {
        const uint8_t *b = (const uint8_t *)v;
        n = (long)(vl / 4);
        for (long i = 0; i < n; i++)
            sigs[i] = (uint32_t)b[4 * i] << 24 | (uint32_t)b[4 * i + 1] << 16 |
                      (uint32_t)b[4 * i + 2] << 8 | b[4 * i + 3];
    }
    xfree(v);
    return n;
}

window_copy_t *store_window_copy(store_t *self)
{
    return self->wcopy;
}

int store_loaded(store_t *self)
{
    assert(self->writer == NULL); /* before the first flush starts the writer thread */
    return kv_reopen(self->kv) < 0 || kv_reopen(self->wkv) < 0 ? -1 : 0;
}

long store_window_load(store_t *self, int (*cb)(const uint8_t *blob, size_t len, void *arg),
                       void *arg)
{
    kv_iter_t *it = kv_iter_new(self->wkv, "w/", 2);
    long n = 0;
    int rc;
    while ((rc = kv_iter_next(it)) == 1) {
        size_t vl = 0;
        const uint8_t *v = kv_iter_value(it, &vl);
        n++;
        if (cb(v, vl, arg))
            break;
    }
    kv_iter_destroy(&it);
    return rc < 0 ? -1 : n;
}

void store_sensor_queue(store_t *self, char kind, const char *site, const char *sensor,
                        const void *val, size_t len)
{
    uint8_t key[2 * 256 + 3];
    size_t kl = s_key_sensor(key, sizeof(key), kind, site, sensor);
    if (kl)
        kv_batch_put(self->pending, key, kl, val, len);
}

void store_sensor_del_queue(store_t *self, const char *site, const char *sensor)
{
    uint8_t key[2 * 256 + 3];
    static const char kinds[2] = {'n', 'x'};
    for (size_t i = 0; i < sizeof(kinds); i++) {
        size_t kl = s_key_sensor(key, sizeof(key), kinds[i], site, sensor);
        if (kl)
            kv_batch_del(self->pending, key, kl);
    }
}

long store_sensor_load(store_t *self, char kind,
                       int (*cb)(const char *site, const char *sensor, const void *val, size_t len,
                                 void *arg),
                       void *arg)
{
    char prefix[2] = {kind, '/'};
    kv_iter_t *it = kv_iter_new(self->kv, prefix, 2);
    long n = 0;
    int rc;
    while ((rc = kv_iter_next(it)) == 1) {
        size_t kl = 0, vl = 0;
        const char *k = kv_iter_key(it, &kl);
        const void *v = kv_iter_value(it, &vl);
        const char *nul = memchr(k + 2, 0, kl - 2);
        if (!nul)
            continue;
        char site[256], sensor[256];
        size_t a = (size_t)(nul - (k + 2)), b = kl - 3 - a;
        /* each name must fit on its own: the key's length bounds only their sum */
        if (a >= sizeof(site) || b >= sizeof(sensor)) {
            msg_warn("store: skipping sensor record with a name of over %zu bytes",
                     sizeof(site) - 1);
            continue;
        }
        memcpy(site, k + 2, a);
        site[a] = 0;
        memcpy(sensor, nul + 1, b);
        sensor[b] = 0;
        n++;
        if (cb(site, sensor, v, vl, arg))
            break;
    }
    kv_iter_destroy(&it);
    return rc < 0 ? -1 : n;
}

void store_meta_queue(store_t *self, const char *name, uint64_t v)
{
    s_meta_put(self->pending, name, v);
}

int store_meta_write(store_t *self, const char *const *names, const uint64_t *v, size_t n)
{
    if (self->detached)
        return -1;
    kv_batch_clear(self->now);
    for (size_t i = 0; i < n; i++)
        s_meta_put(self->now, names[i], v[i]);
    int rc = kv_batch_write(self->kv, self->now, 0);
    kv_batch_clear(self->now);
    return rc;
}

int store_meta_get(store_t *self, const char *name, uint64_t *v)
{
    char key[2 + 256];
    snprintf(key, sizeof(key), "m/%s", name);
    return s_meta_get(self->kv, key, v);
}

size_t store_pending(const store_t *self)
{
    return kv_batch_count(self->pending) + kv_batch_count(self->wpending) +
           window_copy_keys(self->wcopy);
}

/* A detached store drops what is queued (the daemon writes everything again once a
 * store_recreate() works): nothing piles up meanwhile. -1. */
static int s_drop_queued(store_t *self)
{
    kv_batch_clear(self->pending);
    kv_batch_clear(self->wpending);
    window_copy_clear(self->wcopy);
    return -1;
}

int store_flush(store_t *self)
{
    if (self->detached)
        return s_drop_queued(self);
    s_writer_drain(self); /* what was handed over first is written first */
    if (store_pending(self) == 0)
        return 0;
    return s_write_both(self, self->wpending, self->wcopy, self->pending, false);
}

int store_flush_behind(store_t *self, bool sync)
{
    if (self->detached)
        return s_drop_queued(self);
    if (store_pending(self) == 0 && !sync)
        return 0;
    if (sync && self->sync_decisions) {
        /* a sync marker of the writer's own in each database: m/seq is the event loop's
         * alone, and an older value written later from here could set it back */
        s_meta_put(self->pending, "sync", ++self->syncs);
        s_meta_put(self->wpending, "sync", self->syncs);
    }
    if (self->writer == NULL && !s_writer_start(self)) {
        /* no thread: write here */
        int rc = s_write_both(self, self->wpending, self->wcopy, self->pending,
                              sync && self->sync_decisions);
        if (sync && store_sync(self) < 0)
            rc = -1;
        return rc;
    }
    s_writer_t *wr = self->writer;
    pthread_mutex_lock(&wr->mu);
    while (wr->n == S_WRITER_QUEUE)
        pthread_cond_wait(&wr->cv, &wr->mu); /* back-pressure: the disk is behind */
    wr->q[(wr->head + wr->n) % S_WRITER_QUEUE] = (s_job_t){.wbatch = self->wpending,
                                                           .wcopy = self->wcopy,
                                                           .batch = self->pending,
                                                           .sync = sync && self->sync_decisions};
    wr->n++;
    self->pending = wr->nspare ? wr->spare[--wr->nspare] : NULL;
    self->wpending = wr->nspare ? wr->spare[--wr->nspare] : NULL;
    self->wcopy = wr->nspare_copies ? wr->spare_copies[--wr->nspare_copies] : NULL;
    uint64_t failed = wr->failed;
    pthread_cond_broadcast(&wr->cv);
    pthread_mutex_unlock(&wr->mu);
    if (self->pending == NULL)
        self->pending = kv_batch_new();
    if (self->wpending == NULL)
        self->wpending = kv_batch_new();
    if (self->wcopy == NULL)
        self->wcopy = window_copy_new();
    if (failed != self->failed_seen) {
        self->failed_seen = failed;
        return -1;
    }
    return 0;
}

/* ---- the data directory lost while running ---- */

int store_check(const store_t *self, char *why, size_t whylen)
{
    static const char *const gone[S_ID__COUNT] = {"removed", "emptied", "windows_removed"};
    static const char *const other[S_ID__COUNT] = {"replaced", "emptied", "windows_removed"};
    s_ident_t now[S_ID__COUNT];
    s_idents(self, now);
    /* in order: the directory, then what is in it (gone with it) */
    for (int i = 0; i < S_ID__COUNT; i++) {
        if (s_ident_unknown(now[i])) {
            (void)s_unknown(self, now, why, whylen); /* this one: those before were seen */
            return 1;
        }
        if (s_ident_gone(now[i]) || !s_ident_same(now[i], self->ids[i])) {
            snprintf(why, whylen, "%s", s_ident_gone(now[i]) ? gone[i] : other[i]);
            return -1;
        }
    }
    return 0;
}

/* Whether dir holds nothing, or a LevelDB database (its CURRENT file): what
 * store_recreate() may open a database in. */
static bool s_dir_usable(const char *dir)
{
    char *current = xasprintf("%s/CURRENT", dir);
    bool db = access(current, F_OK) == 0;
    xfree(current);
    if (db)
        return true;
    DIR *d = opendir(dir);
    if (d == NULL)
        return false;
    bool empty = true;
    struct dirent *e;
    while (empty && (e = readdir(d)) != NULL)
        empty = strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0;
    closedir(d);
    return empty;
}

/* Deletes every record of kv (in batches, the last synced). 0 or -1. */
static int s_wipe(kv_t *kv, kv_batch_t *b)
{
    kv_iter_t *it = kv_iter_new(kv, "", 0);
    int rc;
    while ((rc = kv_iter_next(it)) == 1) {
        size_t kl = 0;
        const void *k = kv_iter_key(it, &kl);
        kv_batch_del(b, k, kl);
        if (s_move_step(kv, b, false) < 0) {
            rc = -1;
            break;
        }
    }
    kv_iter_destroy(&it);
    if (rc == 0 && kv_batch_count(b) > 0)
        rc = s_move_step(kv, b, true);
    kv_batch_clear(b);
    return rc < 0 ? -1 : 0;
}

/* Says why another store is left alone. -1. */
static int s_foreign(const store_t *self, char *why, size_t whylen)
{
    snprintf(why, whylen,
             "%s holds another store (epoch %016llx): left alone, nothing written until it is "
             "removed or the aggregator restarted",
             kv_path(self->kv), (unsigned long long)self->foreign_epoch);
    return -1;
}

/* Whether a file can be made and synced in dir, as LevelDB must to open a database there
 * (a directory removed under a bind mount, read-only, or full takes nothing): one is
 * written, fsynced and removed. 0, or -1 with why. */
static int s_probe(const char *dir, char *why, size_t whylen)
{
    char *path = xasprintf("%s/.probe-%ld", dir, (long)getpid());
    int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC | O_NOFOLLOW, 0640);
    int rc = fd < 0 || write(fd, "", 1) != 1 || fsync(fd) < 0 ? -1 : 0;
    int err = errno;
    if (fd >= 0) {
        (void)close(fd);
        (void)unlink(path);
    }
    if (rc < 0)
        snprintf(why, whylen, "cannot make and sync a file in %s: %s: left as it is", dir,
                 strerror(err));
    xfree(path);
    return rc;
}

/* store_recreate() where only windows/ went: the window database alone is opened again
 * there, and cleared (the caller writes every key again). 1, or -1 with why. */
static int s_recreate_windows(store_t *self, char *why, size_t whylen)
{
    const char *wdir = kv_path(self->wkv);
    struct stat st;
    bool there = stat(wdir, &st) == 0;
    if (!there && errno != ENOENT) {
        snprintf(why, whylen, "cannot look at %s: %s", wdir, strerror(errno));
        return -1;
    }
    if (there && (!S_ISDIR(st.st_mode) || !s_dir_usable(wdir))) {
        snprintf(why, whylen, "%s holds something that is no database: left alone", wdir);
        return -1;
    }
    if (s_probe(there ? wdir : kv_path(self->kv), why, whylen) < 0)
        return -1;
    /* what the writer holds for the lost windows/ goes there first; the window records
     * queued are dropped, those of the main database kept */
    s_writer_drain(self);
    kv_batch_clear(self->wpending);
    window_copy_clear(self->wcopy);
    /* (a failure leaves the main database as it is: only window writes fail meanwhile) */
    if (kv_reopen(self->wkv) < 0) {
        snprintf(why, whylen, "cannot open a database in %s (see the kv: line)", wdir);
        return -1;
    }
    if (s_wipe(self->wkv, self->now) < 0) {
        snprintf(why, whylen, "cannot clear the database in %s (see the kv: line)", wdir);
        return -1;
    }
    s_idents(self, self->ids);
    return 1;
}

int store_recreate(store_t *self, char *why, size_t whylen)
{
    const char *dir = kv_path(self->kv);
    s_ident_t now[S_ID__COUNT];
    s_idents(self, now);
    /* a look that failed says nothing: nothing is closed or cleared on it */
    if (s_unknown(self, now, why, whylen) >= 0)
        return -1;
    bool dir_same = !self->detached && s_ident_same(now[S_ID_DIR], self->ids[S_ID_DIR]);
    bool main_same = dir_same && s_ident_same(now[S_ID_LOCK], self->ids[S_ID_LOCK]);
    if (main_same && s_ident_same(now[S_ID_WLOCK], self->ids[S_ID_WLOCK])) {
        snprintf(why, whylen, "%s and its databases are the ones opened: not lost, left as it is",
                 dir);
        return -1;
    }
    /* the directory and the main database are the ones opened: windows/ alone went, and
     * alone is made again (the decisions, allowlist and sites are where they were) */
    if (main_same)
        return s_recreate_windows(self, why, whylen);
    /* the other store found last time, still there: not opened (and so changed) again */
    if (self->detached && s_ident_same(now[S_ID_DIR], self->foreign[0]) &&
        s_ident_same(now[S_ID_LOCK], self->foreign[1]))
        return s_foreign(self, why, whylen);
    struct stat st;
    if (stat(dir, &st) < 0) {
        if (errno != ENOENT || mkdir(dir, 0750) < 0) {
            snprintf(why, whylen, "cannot create %s: %s", dir, strerror(errno));
            return -1;
        }
    } else if (!S_ISDIR(st.st_mode)) {
        snprintf(why, whylen, "%s is not a directory: left alone", dir);
        return -1;
    } else if (st.st_nlink == 0) {
        /* the path leads to a directory that was removed: a bind mount of it (systemd's
         * ReadWritePaths=) whose source went. Nothing can be made in it, and nothing
         * outside this process's mounts sees it: only a restart gets a store back. */
        snprintf(why, whylen, "%s was removed but is still mounted here: restart the aggregator",
                 dir);
        return -1;
    } else if (!s_ident_same(s_ident(dir), self->ids[S_ID_DIR]) && !s_dir_usable(dir)) {
        snprintf(why, whylen, "%s holds files that are no database: left alone", dir);
        return -1;
    }
    if (access(dir, W_OK | X_OK) < 0) {
        snprintf(why, whylen, "cannot write in %s: %s", dir, strerror(errno));
        return -1;
    }
    /* the databases that work go only once new ones can be made */
    if (s_probe(dir, why, whylen) < 0)
        return -1;
    /* the lost databases go: what the writer holds for them is written there first, and
     * what is queued is dropped (the caller writes everything again) */
    s_writer_drain(self);
    (void)s_drop_queued(self);
    self->detached = true;
    if (kv_reopen(self->kv) < 0 || kv_reopen(self->wkv) < 0) {
        snprintf(why, whylen, "cannot open a database in %s (see the kv: line)", dir);
        return -1;
    }
    uint64_t epoch = 0;
    int rc = s_meta_get(self->kv, "m/epoch", &epoch);
    if (rc < 0) {
        snprintf(why, whylen, "cannot read the database in %s (see the kv: line)", dir);
        return -1;
    }
    if (rc == 1 && epoch != self->epoch) {
        s_idents(self, now);
        self->foreign[0] = now[S_ID_DIR];
        self->foreign[1] = now[S_ID_LOCK];
        self->foreign_epoch = epoch;
        return s_foreign(self, why, whylen);
    }
    /* our epoch there (a copy of this store put in its place): it goes first, on its own
     * and synced, so that a wipe or a refill cut short leaves a store of no epoch, which the
     * next start gives a new one (the sequence log is lost: sensors resynchronise), never
     * our epoch without the decisions sensors hold */
    if (rc == 1) {
        kv_batch_del(self->now, "m/epoch", 7);
        rc = kv_batch_write(self->kv, self->now, 1);
        kv_batch_clear(self->now);
        if (rc < 0) {
            snprintf(why, whylen, "cannot write to the database in %s (see the kv: line)", dir);
            return -1;
        }
    }
    if (s_wipe(self->kv, self->now) < 0 || s_wipe(self->wkv, self->now) < 0) {
        snprintf(why, whylen, "cannot clear the database in %s (see the kv: line)", dir);
        return -1;
    }
    /* no m/epoch until store_refill_write() has written everything */
    self->log_floor = self->seq;
    self->detached = false;
    s_idents(self, self->ids);
    return 0;
}

bool store_detached(const store_t *self)
{
    return self->detached;
}

/* ---- allowlist and sites ---- */

/* The record of allowlist entry e, and its key (a/<id>) in key; b.p for xfree. */
static s_buf_t s_allow_record(const allow_entry_t *e, uint8_t key[10])
{
    s_buf_t b = {0};
    uint8_t v = STORE_REC_V1;
    s_put(&b, &v, 1);
    s_put_u64(&b, e->id);
    s_put_u64(&b, (uint64_t)e->type);
    s_put(&b, e->addr, 16);
    s_put(&b, &e->prefix, 1);
    s_put_u64(&b, (uint64_t)e->scope);
    s_put_u64(&b, e->fp);
    s_put_u64(&b, (uint64_t)e->created_ms);
    s_put_str(&b, e->text);
    s_put_str(&b, e->who);
    s_put_str(&b, e->reason);
    s_key_u64(key, 'a', e->id);
    return b;
}

int store_allow_put(store_t *self, const allow_entry_t *e)
{
    if (self->detached)
        return -1;
    uint8_t key[10];
    s_buf_t b = s_allow_record(e, key);
    int rc = kv_put(self->kv, key, sizeof(key), b.p, b.len);
    xfree(b.p);
    return rc;
}

int store_allow_del(store_t *self, uint32_t id)
{
    if (self->detached)
        return -1;
    uint8_t key[10];
    s_key_u64(key, 'a', id);
    return kv_del(self->kv, key, sizeof(key));
}

long store_allow_load(store_t *self, int (*cb)(const allow_entry_t *e, void *arg), void *arg)
{
    kv_iter_t *it = kv_iter_new(self->kv, "a/", 2);
    long n = 0;
    int rc;
    while ((rc = kv_iter_next(it)) == 1) {
        size_t vl = 0;
        s_rd_t r = {.p = kv_iter_value(it, &vl)};
        r.left = vl;
        allow_entry_t e;
        memset(&e, 0, sizeof(e));
        const uint8_t *ver = s_get(&r, 1);
        if (!ver || *ver != STORE_REC_V1)
            continue;
        e.id = (uint32_t)s_get_u64(&r);
        e.type = (allow_type_t)s_get_u64(&r);
        const uint8_t *a = s_get(&r, 16);
        if (a)
            memcpy(e.addr, a, 16);
        const uint8_t *p = s_get(&r, 1);
        e.prefix = p ? *p : 0;
        e.scope = (bs_scope_t)s_get_u64(&r);
        e.fp = s_get_u64(&r);
        e.created_ms = (int64_t)s_get_u64(&r);
        s_get_str(&r, e.text, sizeof(e.text));
        s_get_str(&r, e.who, sizeof(e.who));
        s_get_str(&r, e.reason, sizeof(e.reason));
        if (r.bad) {
            msg_warn("store: skipping malformed allowlist record");
            continue;
        }
        n++;
        if (cb(&e, arg))
            break;
    }
    kv_iter_destroy(&it);
    return rc < 0 ? -1 : n;
}

/* The record of a site, and its key (s/<name>, *kl bytes) in key; b.p for xfree. */
static s_buf_t s_site_record(const char *name, const char *public_key, int64_t created_ms,
                             const char *who, uint8_t *key, size_t keycap, size_t *kl)
{
    s_buf_t b = {0};
    uint8_t v = STORE_REC_V1;
    s_put(&b, &v, 1);
    s_put_str(&b, public_key ? public_key : "");
    s_put_u64(&b, (uint64_t)created_ms);
    s_put_str(&b, who ? who : "");
    *kl = s_key_str(key, keycap, 's', name);
    return b;
}

int store_site_put(store_t *self, const char *name, const char *public_key, int64_t created_ms,
                   const char *who)
{
    if (self->detached)
        return -1;
    uint8_t key[2 + 256];
    size_t kl = 0;
    s_buf_t b = s_site_record(name, public_key, created_ms, who, key, sizeof(key), &kl);
    int rc = kv_put(self->kv, key, kl, b.p, b.len);
    xfree(b.p);
    return rc;
}

int store_site_del(store_t *self, const char *name)
{
    if (self->detached)
        return -1;
    uint8_t key[2 + 256];
    size_t kl = s_key_str(key, sizeof(key), 's', name);
    return kv_del(self->kv, key, kl);
}

long store_site_load(store_t *self,
                     int (*cb)(const char *name, const char *public_key, int64_t created_ms,
                               const char *who, void *arg),
                     void *arg)
{
    char q[MSG_QUOTE_SIZE(S_QKEY_MAX)];
    kv_iter_t *it = kv_iter_new(self->kv, "s/", 2);
    long n = 0;
    int rc;
    while ((rc = kv_iter_next(it)) == 1) {
        size_t kl = 0, vl = 0;
        const char *k = kv_iter_key(it, &kl);
        s_rd_t r = {.p = kv_iter_value(it, &vl)};
        r.left = vl;
        char name[256], pub[64], who[256];
        /* a NUL would cut the name short of its key: deleting the site by that name would
         * leave the record, to come back at every start */
        if (kl - 2 >= sizeof(name) || memchr(k + 2, 0, kl - 2)) {
            msg_warn("store: skipping site record with a malformed key %s", s_quote_key(q, k, kl));
            continue;
        }
        memcpy(name, k + 2, kl - 2);
        name[kl - 2] = 0;
        const uint8_t *ver = s_get(&r, 1);
        if (!ver || *ver != STORE_REC_V1)
            continue;
        s_get_str(&r, pub, sizeof(pub));
        int64_t created = (int64_t)s_get_u64(&r);
        s_get_str(&r, who, sizeof(who));
        if (r.bad) {
            msg_warn("store: skipping malformed site record %s",
                     s_quote_key(q, name, strlen(name)));
            continue;
        }
        n++;
        if (cb(name, pub, created, who, arg))
            break;
    }
    kv_iter_destroy(&it);
    return rc < 0 ? -1 : n;
}

/* ---- tombstones ---- */

int store_tomb_put(store_t *self, uint64_t identity, const uint8_t *blob, size_t len)
{
    if (self->detached)
        return -1;
    uint8_t key[10];
    s_key_u64(key, 't', identity);
    return kv_put(self->kv, key, sizeof(key), blob, len);
}

int store_tomb_del(store_t *self, uint64_t identity)
{
    if (self->detached)
        return -1;
    uint8_t key[10];
    s_key_u64(key, 't', identity);
    return kv_del(self->kv, key, sizeof(key));
}

long store_tomb_load(store_t *self,
                     int (*cb)(uint64_t identity, const uint8_t *blob, size_t len, void *arg),
                     void *arg)
{
    kv_iter_t *it = kv_iter_new(self->kv, "t/", 2);
    long n = 0;
    int rc;
    while ((rc = kv_iter_next(it)) == 1) {
        size_t kl = 0, vl = 0;
        const uint8_t *k = (const uint8_t *)kv_iter_key(it, &kl);
        const uint8_t *v = kv_iter_value(it, &vl);
        if (kl != 10) {
            msg_warn("store: skipping tombstone record with a malformed key");
            continue;
        }
        n++;
        if (cb(kv_u64_get(k + 2), v, vl, arg))
            break;
    }
    kv_iter_destroy(&it);
    return rc < 0 ? -1 : n;
}

/* ---- refilling a recreated store ---- */

/* Writing the decision table into the refill batch: the log's first seq (0: none). */
typedef struct {
    store_t *store;    /* the store */
    kv_batch_t *batch; /* where the records go; NULL: only look whether the log is whole */
    uint64_t first;    /* first log entry */
    uint64_t next;     /* seq the next one must have */
    bool broken;       /* the log has a hole, or an entry could not be packed */
} s_put_all_t;

static int s_put_logged(const decision_change_t *c, void *arg)
{
    s_put_all_t *pa = arg;
    if (c->seq > pa->store->seq)
        return 1; /* not stored yet: the caller writes it as it does every change */
    if ((pa->next != 0 && c->seq != pa->next) ||
        (pa->batch != NULL && !s_put_change(pa->batch, c, true))) {
        pa->broken = true;
        return 1;
    }
    if (pa->first == 0)
        pa->first = c->seq;
    pa->next = c->seq + 1;
    return 0;
}

static int s_put_active(const decision_t *d, void *arg)
{
    s_put_all_t *pa = arg;
    if (d->seq > pa->store->seq)
        return 0; /* its change is not stored yet (see s_put_logged) */
    decision_change_t c = {.kind = DECISION_UPSERT, .seq = d->seq, .epoch = d->epoch};
    c.decision = *d;
    if (!s_put_change(pa->batch, &c, false))
        pa->broken = true;
    return 0;
}

void store_refill_allow(store_t *self, const allow_entry_t *e)
{
    uint8_t key[10];
    s_buf_t b = s_allow_record(e, key);
    kv_batch_put(self->refill, key, sizeof(key), b.p, b.len);
    xfree(b.p);
}

void store_refill_site(store_t *self, const char *name, const char *public_key, int64_t created_ms,
                       const char *who)
{
    uint8_t key[2 + 256];
    size_t kl = 0;
    s_buf_t b = s_site_record(name, public_key, created_ms, who, key, sizeof(key), &kl);
    kv_batch_put(self->refill, key, kl, b.p, b.len);
    xfree(b.p);
}

void store_refill_tomb(store_t *self, uint64_t identity, const uint8_t *blob, size_t len)
{
    uint8_t key[10];
    s_key_u64(key, 't', identity);
    kv_batch_put(self->refill, key, sizeof(key), blob, len);
}

void store_refill_meta(store_t *self, const char *name, uint64_t v)
{
    s_meta_put(self->refill, name, v);
}

int store_refill_write(store_t *self, const decisions_t *d)
{
    kv_batch_t *b = self->refill;
    s_put_all_t look = {.store = self};
    /* the log, when what the table holds of it reaches the stored seq without a hole (no
     * log rather than one with a hole), then every decision in force as it is now (the
     * log may hold an older version of one, or its removal before it was made again) */
    (void)decisions_changes_since(d, decisions_epoch(d), decisions_log_floor(d), s_put_logged,
                                  &look);
    bool logged = !look.broken && look.first != 0 && look.next == self->seq + 1;
    s_put_all_t pa = {.store = self, .batch = b};
    if (logged)
        (void)decisions_changes_since(d, decisions_epoch(d), decisions_log_floor(d), s_put_logged,
                                      &pa);
    (void)decisions_foreach(d, NULL, s_put_active, &pa);
    s_meta_put(b, "seq", self->seq);
    s_meta_put(b, "boot", self->boot);
    s_meta_put(b, "clean", 0);
    /* the epoch last, with everything it stands for (store_recreate() wrote none) */
    s_meta_put(b, "epoch", self->epoch);
    /* one write, one fsync: on the event loop, however much the daemon holds */
    int rc = pa.broken || self->detached ? -1 : kv_batch_write(self->kv, b, 1);
    kv_batch_clear(b);
    if (rc < 0)
        return -1;
    self->log_floor = logged ? pa.first - 1 : self->seq;
    return 0;
}
