/*
 * dcache - the sensor's decision cache; see dcache.h.
 *
 * Memory: a chained hash table keyed by (scope, fp); several decisions may
 * share a key (a fleet one and a local one). Each node is also chained in a
 * second table of the same size keyed by id, so an upsert, a removal and a
 * get find a decision by id without walking the table (a fleet storm with
 * many subjects can leave 100 k decisions and more at a site, and a local
 * rule firing in a milter thread gets and upserts one). And every node sits in
 * a binary min-heap by expiry time, so dcache_expire() takes the expired ones
 * off its top, a bounded number a call, instead of walking the table under the
 * write lock every second (150 ms at a million decisions); a lookup skips an
 * expired decision the heap has not given up yet.
 *
 * Growth is incremental, as rehashing a million nodes under the write lock
 * took most of a second: when the tables are full they are kept as the old
 * ones beside new ones twice the size, and every change moves the next
 * DCACHE_MOVE_BUCKETS buckets of both old tables into the new ones (a node's place
 * is in the old table while its old bucket is at or above the move cursor, so
 * every chain is in one table: lookups and inserts use that one). The old
 * tables are freed after the lock is let go.
 *
 * Disk: one record per decision under "d/ID", the text "scope fp action
 * observe all_mail origin created expires value" (value last, it may hold
 * blanks), and the feed position under "m/position".
 */
#include "dcache.h"

#include "fp.h"
#include "kv.h"
#include "msg.h"
#include "xalloc.h"

#include <errno.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef struct s_node {
    dcache_entry_t e;       /* the decision */
    uint64_t key_h;         /* hash of (scope, fp) */
    uint64_t id_h;          /* hash of the id */
    struct s_node *next;    /* next in its (scope, fp) bucket */
    struct s_node *id_next; /* next in its id bucket */
    size_t heap_i;          /* its place in the expiry heap */
} s_node_t;

/* A place in the expiry heap; the time is the node's, kept here so that sifting compares
 * without visiting the nodes. */
typedef struct {
    int64_t expires_ms; /* node->e.expires_ms */
    s_node_t *node;     /* the entry */
} s_heap_t;

struct dcache {
    pthread_rwlock_t lock; /* readers: lookups; writers: changes */
    s_node_t **buckets;    /* hash table by (scope, fp) */
    s_node_t **ids;        /* hash table by id, nbuckets too */
    size_t nbuckets;       /* power of two */
    s_node_t **old;        /* during a growth, the table by key being moved; else NULL */
    s_node_t **old_ids;    /* and the one by id */
    size_t old_nbuckets;   /* their size (nbuckets / 2), 0 when there is no growth */
    size_t moved;          /* old buckets below this have been moved */
    uint64_t moved_total;  /* old buckets moved since dcache_new() */
    void *dead[2];         /* old tables to free once the lock is let go */
    size_t count;          /* entries held, the heap's length */
    s_heap_t *heap;        /* every entry, a min-heap by expires_ms */
    size_t heap_cap;       /* room in heap */
    kv_t *kv;              /* write-through store, NULL: memory only */
    uint64_t epoch;        /* aggregator epoch applied */
    uint64_t seq;          /* aggregator sequence applied */
    bool disk_stale;       /* a write of an entry failed: the disk copy is not the memory's */
};

static const char s_pos_key[] = "m/position";

static uint64_t s_hash(int scope, uint64_t fp)
{
    uint64_t h = fp ^ ((uint64_t)scope * 0x9e3779b97f4a7c15ULL);
    return h ^ (h >> 29);
}

static uint64_t s_hash_id(const char *id)
{
    return fp_bytes(id, strlen(id));
}

/* The chain a node with key hash h is in (or goes into). */
static s_node_t **s_key_chain(const dcache_t *self, uint64_t h)
{
    size_t i = (size_t)(h & (self->old_nbuckets - 1));
    if (self->old && i >= self->moved)
        return &self->old[i];
    return &self->buckets[h & (self->nbuckets - 1)];
}

/* The chain a node with id hash h is in (or goes into). */
static s_node_t **s_id_chain(const dcache_t *self, uint64_t h)
{
    size_t i = (size_t)(h & (self->old_nbuckets - 1));
    if (self->old_ids && i >= self->moved)
        return &self->old_ids[i];
    return &self->ids[h & (self->nbuckets - 1)];
}

/* Moves the next budget buckets of the old tables into the new ones (SIZE_MAX: all); the
 * old tables are left in dead when they are empty. Caller holds the write lock. */
static void s_move(dcache_t *self, size_t budget)
{
    size_t mask = self->nbuckets - 1;
    for (; budget > 0 && self->old; budget--) {
        s_node_t *node = self->old[self->moved];
        while (node) {
            s_node_t *next = node->next;
            node->next = self->buckets[node->key_h & mask];
            self->buckets[node->key_h & mask] = node;
            node = next;
        }
        node = self->old_ids[self->moved];
        while (node) {
            s_node_t *next = node->id_next;
            node->id_next = self->ids[node->id_h & mask];
            self->ids[node->id_h & mask] = node;
            node = next;
        }
        self->moved++;
        self->moved_total++;
        if (self->moved == self->old_nbuckets) {
            xfree(self->dead[0]); /* only when growths end at once (a load) */
            xfree(self->dead[1]);
            self->dead[0] = self->old;
            self->dead[1] = self->old_ids;
            self->old = self->old_ids = NULL;
            self->old_nbuckets = 0;
            self->moved = 0;
        }
    }
}

/* Starts a growth when the tables hold as many entries as buckets and none is under way. */
static void s_grow(dcache_t *self)
{
    if (self->old || self->count < self->nbuckets)
        return;
    self->old = self->buckets;
    self->old_ids = self->ids;
    self->old_nbuckets = self->nbuckets;
    self->moved = 0;
    self->nbuckets *= 2;
    self->buckets = xcalloc(self->nbuckets, sizeof(*self->buckets));
    self->ids = xcalloc(self->nbuckets, sizeof(*self->ids));
}

/* Key chains: the new table's, then during a growth the old one's not moved yet; s_chain()
 * is the i-th of s_nchains(). */
static size_t s_nchains(const dcache_t *self)
{
    return self->nbuckets + (self->old ? self->old_nbuckets - self->moved : 0);
}

static s_node_t *s_chain(const dcache_t *self, size_t i)
{
    return i < self->nbuckets ? self->buckets[i] : self->old[self->moved + i - self->nbuckets];
}

/* Lets go of the write lock, then frees the old tables a growth has finished with
 * (freeing megabytes takes a millisecond or more). */
static void s_unlock(dcache_t *self)
{
    void *dead[2] = {self->dead[0], self->dead[1]};
    self->dead[0] = self->dead[1] = NULL;
    pthread_rwlock_unlock(&self->lock);
    xfree(dead[0]);
    xfree(dead[1]);
}

/* Puts node at heap[i]. */
static void s_heap_set(dcache_t *self, size_t i, s_node_t *node)
{
    self->heap[i].expires_ms = node->e.expires_ms;
    self->heap[i].node = node;
    node->heap_i = i;
}

/* Moves heap[i] up to its place. */
static void s_heap_up(dcache_t *self, size_t i)
{
    s_node_t *node = self->heap[i].node;
    int64_t t = self->heap[i].expires_ms;
    while (i > 0) {
        size_t parent = (i - 1) / 2;
        if (self->heap[parent].expires_ms <= t)
            break;
        s_heap_set(self, i, self->heap[parent].node);
        i = parent;
    }
    s_heap_set(self, i, node);
}

/* Moves heap[i] down to its place. */
static void s_heap_down(dcache_t *self, size_t i)
{
    s_node_t *node = self->heap[i].node;
    int64_t t = self->heap[i].expires_ms;
    for (;;) {
        size_t child = 2 * i + 1;
        if (child >= self->count)
            break;
        if (child + 1 < self->count &&
            self->heap[child + 1].expires_ms < self->heap[child].expires_ms)
            child++;
        if (t <= self->heap[child].expires_ms)
            break;
        s_heap_set(self, i, self->heap[child].node);
        i = child;
    }
    s_heap_set(self, i, node);
}

/* Adds node to the heap: one more entry held. */
static void s_heap_push(dcache_t *self, s_node_t *node)
{
    if (self->count == self->heap_cap) {
        self->heap_cap = self->heap_cap ? 2 * self->heap_cap : 64;
        self->heap = xrealloc(self->heap, self->heap_cap * sizeof(*self->heap));
    }
    s_heap_set(self, self->count++, node);
    s_heap_up(self, node->heap_i);
}

/* Takes node out of the heap: one entry fewer held. */
static void s_heap_remove(dcache_t *self, s_node_t *node)
{
    s_node_t *last = self->heap[--self->count].node;
    if (last == node)
        return;
    s_heap_set(self, node->heap_i, last);
    s_heap_up(self, last->heap_i);
    s_heap_down(self, last->heap_i);
}

/* The node with this id, or NULL. Caller holds the lock. */
static s_node_t *s_find_id(const dcache_t *self, const char *id)
{
    uint64_t h = s_hash_id(id);
    s_node_t *node = *s_id_chain(self, h);
    while (node && (node->id_h != h || strcmp(node->e.id, id)))
        node = node->id_next;
    return node;
}

/* Takes node out of both tables and the heap. Caller holds the write lock. */
static void s_unlink_node(dcache_t *self, s_node_t *node)
{
    s_node_t **pp = s_key_chain(self, node->key_h);
    while (*pp != node)
        pp = &(*pp)->next;
    *pp = node->next;
    pp = s_id_chain(self, node->id_h);
    while (*pp != node)
        pp = &(*pp)->id_next;
    *pp = node->id_next;
    s_heap_remove(self, node);
}

/* Unlinks and returns the node with this id, or NULL. Caller holds the write lock. */
static s_node_t *s_unlink(dcache_t *self, const char *id)
{
    s_node_t *node = s_find_id(self, id);
    if (node)
        s_unlink_node(self, node);
    return node;
}

/* Adds or replaces (by id) a decision; a change, so it moves the next buckets of a growth
 * under way. Caller holds the write lock. */
static void s_insert(dcache_t *self, const dcache_entry_t *e)
{
    s_node_t *node = xmalloc(sizeof(*node));
    node->e = *e;
    node->e.id[DCACHE_ID_SIZE - 1] = '\0';
    node->e.value[DCACHE_TEXT_SIZE - 1] = '\0';
    xfree(s_unlink(self, node->e.id));
    s_grow(self);
    s_move(self, DCACHE_MOVE_BUCKETS);
    node->key_h = s_hash(e->scope, e->fp);
    node->id_h = s_hash_id(node->e.id);
    s_node_t **chain = s_key_chain(self, node->key_h);
    node->next = *chain;
    *chain = node;
    chain = s_id_chain(self, node->id_h);
    node->id_next = *chain;
    *chain = node;
    s_heap_push(self, node);
}

static char *s_record(const dcache_entry_t *e, size_t *len)
{
    char *r = xasprintf("%d %" PRIx64 " %d %d %d %d %" PRId64 " %" PRId64 " %s", e->scope, e->fp,
                        e->action, e->observe ? 1 : 0, e->all_mail ? 1 : 0, e->origin,
                        e->created_ms, e->expires_ms, e->value);
    *len = strlen(r);
    return r;
}

/* Parses a stored record; 0 or -1 (a corrupt record is skipped by the caller). */
static int s_parse(const char *id, size_t idlen, const char *rec, dcache_entry_t *e)
{
    memset(e, 0, sizeof(*e));
    /* a NUL inside the key would cut the id short: the entry would live under another id
       than its key, so removing or expiring it would delete "d/<id>" and leave the record
       to come back at every start. We never write such a key: it is corrupt. */
    if (idlen == 0 || idlen >= DCACHE_ID_SIZE || memchr(id, '\0', idlen))
        return -1;
    memcpy(e->id, id, idlen);
    int observe = 0, all_mail = 0, off = 0;
    if (sscanf(rec, "%d %" SCNx64 " %d %d %d %d %" SCNd64 " %" SCNd64 " %n", &e->scope, &e->fp,
               &e->action, &observe, &all_mail, &e->origin, &e->created_ms, &e->expires_ms,
               &off) < 8)
        return -1;
    e->observe = observe != 0;
    e->all_mail = all_mail != 0;
    snprintf(e->value, sizeof(e->value), "%s", rec + off);
    return 0;
}

static int s_persist(dcache_t *self, const dcache_entry_t *e)
{
    if (!self->kv)
        return 0;
    char key[2 + DCACHE_ID_SIZE];
    int klen = snprintf(key, sizeof(key), "d/%s", e->id);
    size_t vlen;
    char *val = s_record(e, &vlen);
    int rc = kv_put(self->kv, key, (size_t)klen, val, vlen);
    xfree(val);
    if (rc < 0)
        self->disk_stale = true;
    return rc;
}

static void s_unpersist(dcache_t *self, const char *id)
{
    if (!self->kv)
        return;
    char key[2 + DCACHE_ID_SIZE];
    int klen = snprintf(key, sizeof(key), "d/%s", id);
    if (kv_del(self->kv, key, (size_t)klen) < 0)
        self->disk_stale = true;
}

/* After a failed write (a full disk): writes the disk copy anew from memory, in one batch
 * (every stored entry deleted, every held one put). 0, or -1 with the copy still stale.
 * The caller holds the write lock. */
static int s_rewrite(dcache_t *self)
{
    kv_batch_t *b = kv_batch_new();
    kv_iter_t *it = kv_iter_new(self->kv, "d/", 2);
    int rc;
    while ((rc = kv_iter_next(it)) == 1) {
        size_t klen;
        const char *k = kv_iter_key(it, &klen);
        kv_batch_del(b, k, klen);
    }
    kv_iter_destroy(&it);
    for (size_t i = 0; rc == 0 && i < s_nchains(self); i++) {
        for (s_node_t *node = s_chain(self, i); node; node = node->next) {
            char key[2 + DCACHE_ID_SIZE];
            int klen = snprintf(key, sizeof(key), "d/%s", node->e.id);
            size_t vlen;
            char *val = s_record(&node->e, &vlen);
            kv_batch_put(b, key, (size_t)klen, val, vlen);
            xfree(val);
        }
    }
    if (rc == 0)
        rc = kv_batch_write(self->kv, b, 0);
    kv_batch_destroy(&b);
    if (rc == 0) {
        self->disk_stale = false;
        msg_info("dcache: path=%s rewritten entries=%zu after a failed write", kv_path(self->kv),
                 self->count);
    }
    return rc;
}

static void s_load(dcache_t *self)
{
    kv_iter_t *it = kv_iter_new(self->kv, "d/", 2);
    size_t bad = 0;
    while (kv_iter_next(it) == 1) {
        size_t klen, vlen;
        const char *k = kv_iter_key(it, &klen);
        const char *v = kv_iter_value(it, &vlen);
        char rec[512];
        snprintf(rec, sizeof(rec), "%.*s", (int)(vlen < sizeof(rec) ? vlen : sizeof(rec) - 1), v);
        dcache_entry_t e;
        if (s_parse(k + 2, klen - 2, rec, &e) == 0)
            s_insert(self, &e);
        else
            bad++;
    }
    kv_iter_destroy(&it);
    if (bad)
        msg_warn("dcache: path=%s skipped=%zu reason=corrupt-record", kv_path(self->kv), bad);
    char *pos = NULL;
    if (kv_get(self->kv, s_pos_key, sizeof(s_pos_key) - 1, &pos, NULL) == 1) {
        if (sscanf(pos, "%" SCNu64 " %" SCNu64, &self->epoch, &self->seq) != 2)
            self->epoch = self->seq = 0;
    }
    xfree(pos);
}

dcache_t *dcache_new(const char *state_path, char *err, size_t errlen)
{
    dcache_t *self = xcalloc(1, sizeof(*self));
    pthread_rwlock_init(&self->lock, NULL);
    self->nbuckets = 64;
    self->buckets = xcalloc(self->nbuckets, sizeof(*self->buckets));
    self->ids = xcalloc(self->nbuckets, sizeof(*self->ids));
    if (state_path) {
        self->kv = kv_open(state_path, 1, NULL);
        if (!self->kv) {
            int errnum = errno;
            snprintf(err, errlen, "cannot open decision cache %s", state_path);
            dcache_destroy(&self);
            errno = errnum;
            return NULL;
        }
        s_load(self);
        s_move(self, SIZE_MAX); /* nothing waits on the lock yet */
        xfree(self->dead[0]);
        xfree(self->dead[1]);
        self->dead[0] = self->dead[1] = NULL;
    }
    return self;
}

void dcache_destroy(dcache_t **self_p)
{
    if (!self_p || !*self_p)
        return;
    dcache_t *self = *self_p;
    for (size_t i = 0; i < self->count; i++)
        xfree(self->heap[i].node);
    xfree(self->buckets);
    xfree(self->ids);
    xfree(self->old);
    xfree(self->old_ids);
    xfree(self->dead[0]);
    xfree(self->dead[1]);
    xfree(self->heap);
    kv_close(&self->kv);
    pthread_rwlock_destroy(&self->lock);
    xfree(self);
    *self_p = NULL;
}

int dcache_upsert(dcache_t *self, const dcache_entry_t *entry)
{
    pthread_rwlock_wrlock(&self->lock);
    s_insert(self, entry);
    int rc = s_persist(self, entry);
    s_unlock(self);
    return rc;
}

int dcache_remove(dcache_t *self, const char *id)
{
    pthread_rwlock_wrlock(&self->lock);
    s_node_t *node = s_unlink(self, id);
    if (node)
        s_unpersist(self, id);
    s_move(self, DCACHE_MOVE_BUCKETS);
    s_unlock(self);
    xfree(node);
    return node ? 0 : -1;
}

/* Unlinks (and unpersists) every entry drop() picks; the caller holds the write lock. */
static size_t s_sweep(dcache_t *self, bool (*drop)(int origin, int arg), int arg)
{
    size_t n = 0;
    for (size_t i = 0; i < s_nchains(self); i++) {
        s_node_t *node = s_chain(self, i);
        while (node) {
            s_node_t *next = node->next;
            if (drop(node->e.origin, arg)) {
                s_unlink_node(self, node);
                s_unpersist(self, node->e.id);
                xfree(node);
                n++;
            }
            node = next;
        }
    }
    return n;
}

static bool s_is_origin(int origin, int arg)
{
    return origin == arg;
}

static bool s_from_feed(int origin, int arg)
{
    (void)arg;
    return origin == DCACHE_ORIGIN_RULE || origin == DCACHE_ORIGIN_CLI;
}

/* Sweeps, then inserts entries, all under one write lock: readers see the old set or the new. */
static int s_replace(dcache_t *self, bool (*drop)(int origin, int arg), int arg,
                     const dcache_entry_t *entries, size_t n)
{
    int rc = 0;
    pthread_rwlock_wrlock(&self->lock);
    s_sweep(self, drop, arg);
    for (size_t i = 0; i < n; i++) {
        s_insert(self, &entries[i]);
        if (s_persist(self, &entries[i]) != 0)
            rc = -1;
    }
    s_unlock(self);
    return rc;
}

size_t dcache_remove_origin(dcache_t *self, int origin)
{
    pthread_rwlock_wrlock(&self->lock);
    size_t n = s_sweep(self, s_is_origin, origin);
    s_move(self, DCACHE_MOVE_BUCKETS);
    s_unlock(self);
    return n;
}

int dcache_replace_origin(dcache_t *self, int origin, const dcache_entry_t *entries, size_t n)
{
    return s_replace(self, s_is_origin, origin, entries, n);
}

int dcache_replace_feed(dcache_t *self, const dcache_entry_t *entries, size_t n, uint64_t epoch,
                        uint64_t seq)
{
    int rc = s_replace(self, s_from_feed, 0, entries, n);
    dcache_set_position(self, epoch, seq);
    return rc;
}

size_t dcache_lookup(dcache_t *self, int scope, uint64_t fp, int64_t now_ms, dcache_entry_t *out,
                     size_t max)
{
    size_t n = 0;
    pthread_rwlock_rdlock(&self->lock);
    for (s_node_t *node = *s_key_chain(self, s_hash(scope, fp)); node; node = node->next) {
        if (node->e.scope != scope || node->e.fp != fp || node->e.expires_ms <= now_ms)
            continue;
        if (n < max)
            out[n] = node->e;
        n++;
    }
    pthread_rwlock_unlock(&self->lock);
    return n;
}

int dcache_get(dcache_t *self, const char *id, dcache_entry_t *out)
{
    pthread_rwlock_rdlock(&self->lock);
    const s_node_t *node = s_find_id(self, id);
    if (node)
        *out = node->e;
    pthread_rwlock_unlock(&self->lock);
    return node ? 0 : -1;
}

size_t dcache_expire(dcache_t *self, int64_t now_ms)
{
    size_t n = 0;
    kv_batch_t *b = self->kv ? kv_batch_new() : NULL;
    pthread_rwlock_wrlock(&self->lock);
    while (n < DCACHE_EXPIRE_DROPS && self->count && self->heap[0].expires_ms <= now_ms) {
        s_node_t *node = self->heap[0].node;
        s_unlink_node(self, node);
        if (b) {
            char key[2 + DCACHE_ID_SIZE];
            int klen = snprintf(key, sizeof(key), "d/%s", node->e.id);
            kv_batch_del(b, key, (size_t)klen);
        }
        xfree(node);
        n++;
    }
    /* under the lock: a decision upserted again once the lock is let go (a local rule
       firing anew) must not be deleted on disk after it was written */
    if (n && b && kv_batch_write(self->kv, b, 0) < 0)
        self->disk_stale = true;
    s_move(self, DCACHE_MOVE_BUCKETS);
    s_unlock(self);
    kv_batch_destroy(&b);
    return n;
}

size_t dcache_count(dcache_t *self)
{
    pthread_rwlock_rdlock(&self->lock);
    size_t n = self->count;
    pthread_rwlock_unlock(&self->lock);
    return n;
}

void dcache_stats(dcache_t *self, dcache_stats_t *out)
{
    pthread_rwlock_rdlock(&self->lock);
    out->held = self->count;
    out->buckets = self->nbuckets;
    out->old_buckets = self->old_nbuckets;
    out->moved = self->moved_total;
    pthread_rwlock_unlock(&self->lock);
}

void dcache_set_position(dcache_t *self, uint64_t epoch, uint64_t seq)
{
    pthread_rwlock_wrlock(&self->lock);
    self->epoch = epoch;
    self->seq = seq;
    if (self->kv) {
        /* the stored position vouches for the stored entries: after a failed write it is
         * stored only once they are written anew, and meanwhile it is "none", so that a
         * restart takes a full snapshot instead of trusting entries (a revoked one, say)
         * the memory no longer has */
        bool whole = !self->disk_stale || s_rewrite(self) == 0;
        char val[64];
        int len =
            snprintf(val, sizeof(val), "%" PRIu64 " %" PRIu64, whole ? epoch : 0, whole ? seq : 0);
        (void)kv_put(self->kv, s_pos_key, sizeof(s_pos_key) - 1, val, (size_t)len);
    }
    pthread_rwlock_unlock(&self->lock);
}

void dcache_position(dcache_t *self, uint64_t *epoch, uint64_t *seq)
{
    pthread_rwlock_rdlock(&self->lock);
    *epoch = self->epoch;
    *seq = self->seq;
    pthread_rwlock_unlock(&self->lock);
}

const char *dcache_action_name(int action)
{
    switch (action) {
    case DCACHE_ACTION_REJECT:
        return "reject";
    case DCACHE_ACTION_TEMPFAIL:
        return "tempfail";
    case DCACHE_ACTION_TAG:
        return "tag";
    default:
        return "none";
    }
}

static const char *const s_scope_names[] = {
    "unknown", "subject", "orig_subject", "client_ip", "client_net", "subject_ip",
};

const char *dcache_scope_name(int scope)
{
    if (scope < 0 || scope >= (int)(sizeof(s_scope_names) / sizeof(s_scope_names[0])))
        return "unknown";
    return s_scope_names[scope];
}

int dcache_scope_from_name(const char *name)
{
    for (int i = 1; i < (int)(sizeof(s_scope_names) / sizeof(s_scope_names[0])); i++)
        if (!strcmp(s_scope_names[i], name))
            return i;
    return -1;
}
