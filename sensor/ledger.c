/*
 * ledger - the outbound ledger; see ledger.h.
 *
 * Memory: an open-addressing hash set of 64-bit salted hashes with their
 * last-use time (16 bytes an entry; a week of a busy site's outbound mail is
 * a few million entries at most). Disk: "h/" + 8-byte hash -> 8-byte time,
 * and "m/salt" -> the 16-byte salt. Message-ID hashes and sender hashes share
 * the table, told apart by a domain prefix inside the hashed text.
 *
 * Expiry sweeps in place: a cursor walks LEDGER_EXPIRE_SLOTS slots a call and
 * removes the expired entries it finds by backward-shift deletion (the later
 * entries of the probe run move up, so there are no tombstones and a lookup
 * still stops at the first empty slot), then deletes their keys on disk in
 * one batch written after the table's mutex is let go (store_lock keeps the
 * writes to disk in the order of the table's changes). A deletion only moves
 * entries from after the cursor to the cursor or between it and where they
 * were, so no entry slips behind the cursor during a pass; entries added
 * behind it are fresh. The table never shrinks (it did not before either).
 *
 * Growth is incremental, so no call holds the mutex for a whole rehash. At
 * 3/4 load a table twice the size is mapped (its pages are zero but not
 * there yet: the move's scattered writes would fault in up to a page a slot)
 * and every ledger_add() and ledger_expire() zeroes the next
 * 8 * LEDGER_MOVE_SLOTS of its slots, which faults them in, the small table
 * still in use. Then the small table becomes the old one, kept beside the new
 * one, and every call moves its next LEDGER_MOVE_SLOTS slots into the new
 * one, in slot order, until it is empty. Then it is given back to the kernel
 * LEDGER_RELEASE_BYTES a call, after the mutex is let go (unmapping 32 MB at
 * once took 3-6 ms of the add that finished the move; so each table is a
 * mapping of its own, and a slice is unmapped by whichever call took it off
 * the table's remainder). The old table is never changed meanwhile (its probe runs
 * stay intact): its slots below the move cursor count as moved, and an entry
 * added again while it still sits above the cursor is taken out of it by
 * marking it S_MOVED and put into the new table with the later of the two
 * times. So each entry is live in exactly one table, and a lookup tries the
 * new table, then the old one. Zeroing adds at most a 1/1024 of the small
 * table's size in entries to it, and the new table is at most 3/8 full when
 * the move starts, which a 1/256 of the old table's size in adds finish; so
 * a growth is done long before it would be needed again (s_put finishes one
 * at once if a table ever were 7/8 full). The expiry sweep pauses during a
 * move (its ledger_expire() calls only move slots) and starts its pass again
 * at slot 0 of the new table.
 */
#include "ledger.h"

#include "bs_clock.h"
#include "fp.h"
#include "kv.h"
#include "msg.h"
#include "xalloc.h"

#include <ctype.h>
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/random.h>

typedef struct {
    uint64_t h;      /* salted hash; 0 = empty slot */
    int64_t when_ms; /* last time it was recorded; S_MOVED in the old table: moved */
} s_slot_t;

/* when_ms of an old table's slot whose entry was added again during the move (and so put
 * into the new table): its hash stays, so the old table's probe runs stay intact. */
#define S_MOVED INT64_MIN

/* Deletes of expired keys ledger_new_at() writes to the store in one batch. */
#define S_LOAD_DROPS 4096

/* Slots of a table being prepared zeroed a call for each slot a call may move. */
#define S_ZERO_PER_SLOT 8

struct ledger {
    pthread_mutex_t store_lock; /* with kv: held by a change and its writes to kv, taken
                                   before lock (see s_change_begin) */
    pthread_mutex_t lock;       /* guards everything below but kv */
    unsigned char salt[16];     /* SipHash key for this site */
    int64_t ttl_ms;             /* entries live this long */
    s_slot_t *slots;            /* open addressing, linear probing */
    size_t cap;                 /* power of two */
    size_t n;                   /* entries held, in both tables */
    s_slot_t *next;             /* the bigger table being zeroed, or NULL */
    size_t nextcap;             /* its capacity */
    size_t zeroed;              /* its slots zeroed so far */
    s_slot_t *old;              /* the table being moved into slots, or NULL */
    size_t oldcap;              /* its capacity; 0 when there is no move */
    size_t move;                /* old's slots below this have been moved */
    size_t sweep;               /* next slot ledger_expire() looks at */
    uint64_t examined;          /* slots ledger_expire() has looked at */
    uint64_t passes;            /* times the sweep wrapped around */
    uint64_t moved;             /* old slots moved since ledger_new() */
    char *dead;                 /* what is left of a moved old table to unmap, or NULL */
    size_t dead_bytes;          /* its size */
    kv_t *kv;                   /* write-through store or NULL */
};

static const char s_salt_key[] = "m/salt";

/* A zeroed table of cap slots, a mapping of its own (see s_release). */
static s_slot_t *s_table_new(size_t cap)
{
    void *p = mmap(NULL, cap * sizeof(s_slot_t), PROT_READ | PROT_WRITE,
                   MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (p == MAP_FAILED)
        msg_panic("ledger: out of memory mapping a table of %zu slots", cap);
    return p;
}

/* Unmaps bytes at p (a whole table, or a slice of one); NULL is a no-op. */
static void s_unmap(void *p, size_t bytes)
{
    if (p && munmap(p, bytes) != 0)
        msg_panic("ledger: munmap of %zu bytes failed", bytes);
}

/* Hash of "domain:normalised text"; 0 is remapped so it can mark empty slots. */
static uint64_t s_hash(const ledger_t *self, char domain, const char *text)
{
    size_t len = strlen(text);
    char *buf = xmalloc(len + 3);
    size_t j = 0;
    buf[j++] = domain;
    buf[j++] = ':';
    /* Message-IDs: strip <> and blanks; both: lower case */
    for (size_t i = 0; i < len; i++) {
        unsigned char c = (unsigned char)text[i];
        if (isspace(c) || c == '<' || c == '>')
            continue;
        buf[j++] = (char)tolower(c);
    }
    uint64_t h = fp_siphash24(self->salt, buf, j);
    xfree(buf);
    return h ? h : 1;
}

/* Where h's probe run starts in a table of cap slots. */
static size_t s_home(size_t cap, uint64_t h)
{
    return (size_t)(h * 0x9e3779b97f4a7c15ULL >> 20) & (cap - 1);
}

/* The slot holding h in a table, or cap when it is not there. */
static size_t s_find(const s_slot_t *slots, size_t cap, uint64_t h)
{
    size_t i = s_home(cap, h);
    while (slots[i].h) {
        if (slots[i].h == h)
            return i;
        i = (i + 1) & (cap - 1);
    }
    return cap;
}

/* Records h at when_ms in the new table (the later time wins); true when h is new there. */
static bool s_insert(ledger_t *self, uint64_t h, int64_t when_ms)
{
    size_t i = s_home(self->cap, h);
    while (self->slots[i].h && self->slots[i].h != h)
        i = (i + 1) & (self->cap - 1);
    bool fresh = !self->slots[i].h;
    if (fresh) {
        self->slots[i].h = h;
        self->slots[i].when_ms = when_ms;
    } else if (when_ms > self->slots[i].when_ms) {
        self->slots[i].when_ms = when_ms;
    }
    return fresh;
}

/* Zeroes the next part of the table being prepared, or moves the next budget slots of the
 * old table into the new one, whichever is under way (with budget SIZE_MAX: both, to the
 * end). The old table is unmapped later, outside the lock (see s_release). */
static void s_move(ledger_t *self, size_t budget)
{
    if (self->next) {
        size_t z = self->nextcap - self->zeroed;
        if (budget < z / S_ZERO_PER_SLOT)
            z = budget * S_ZERO_PER_SLOT;
        memset(self->next + self->zeroed, 0, z * sizeof(*self->next));
        self->zeroed += z;
        if (self->zeroed < self->nextcap)
            return;
        self->old = self->slots; /* the move starts */
        self->oldcap = self->cap;
        self->move = 0;
        self->slots = self->next;
        self->cap = self->nextcap;
        self->next = NULL;
        self->nextcap = 0;
        if (budget != SIZE_MAX)
            return;
    }
    for (; budget > 0 && self->old; budget--) {
        s_slot_t *s = &self->old[self->move];
        if (s->h && s->when_ms != S_MOVED)
            (void)s_insert(self, s->h, s->when_ms); /* never there yet: see s_put */
        self->move++;
        self->moved++;
        if (self->move == self->oldcap) {
            /* another one still there: only when moves are ended at once (a load, or s_put's
               end of a growth), where nothing waits on the lock */
            s_unmap(self->dead, self->dead_bytes);
            self->dead = (char *)self->old;
            self->dead_bytes = self->oldcap * sizeof(*self->old);
            self->old = NULL;
            self->oldcap = 0;
            self->move = 0;
            self->sweep = 0; /* entries moved: the pass starts again */
        }
    }
}

/* A slice of a moved old table, taken off it under the lock and unmapped after it is let
 * go: slices are disjoint, so calls may unmap theirs in any order. */
typedef struct {
    void *p;      /* start, page-aligned; NULL: none */
    size_t bytes; /* length */
} s_release_t;

/* The next slice of the moved old table (LEDGER_RELEASE_BYTES at most); call with the lock
 * held and pass it to s_release() once it is let go. */
static s_release_t s_release_take(ledger_t *self)
{
    s_release_t r = {self->dead, self->dead_bytes};
    if (r.bytes > LEDGER_RELEASE_BYTES)
        r.bytes = LEDGER_RELEASE_BYTES;
    self->dead_bytes -= r.bytes;
    self->dead = self->dead_bytes ? self->dead + r.bytes : NULL;
    return r;
}

static void s_release(s_release_t r)
{
    s_unmap(r.p, r.bytes);
}

/* Starts a growth: a table twice the size is zeroed a slice at a time, then the entries move
 * into it (the first table, of 1024 slots, at once). */
static void s_grow(ledger_t *self)
{
    if (!self->cap) {
        self->cap = 1024;
        self->slots = s_table_new(self->cap);
        return;
    }
    self->nextcap = self->cap * 2;
    self->next = s_table_new(self->nextcap);
    self->zeroed = 0;
}

static void s_put(ledger_t *self, uint64_t h, int64_t when_ms)
{
    if (when_ms == S_MOVED)
        when_ms++; /* that value marks the old table's moved slots */
    if ((self->n + 1) * 8 > self->cap * 7)
        s_move(self, SIZE_MAX); /* a growth under way ends first (never needed: see above) */
    if (!self->next && !self->old && (self->n + 1) * 4 > self->cap * 3)
        s_grow(self);
    if (self->old) { /* still in the old table: take it out, keep the later time */
        size_t i = s_find(self->old, self->oldcap, h);
        if (i < self->oldcap && i >= self->move && self->old[i].when_ms != S_MOVED) {
            if (self->old[i].when_ms > when_ms)
                when_ms = self->old[i].when_ms;
            self->old[i].when_ms = S_MOVED;
            self->n--;
        }
    }
    if (s_insert(self, h, when_ms))
        self->n++;
}

static int64_t s_get(const ledger_t *self, uint64_t h)
{
    size_t i = s_find(self->slots, self->cap, h);
    if (i < self->cap)
        return self->slots[i].when_ms;
    if (self->old) {
        i = s_find(self->old, self->oldcap, h);
        if (i < self->oldcap && i >= self->move && self->old[i].when_ms != S_MOVED)
            return self->old[i].when_ms;
    }
    return -1;
}

/* Backward-shift deletion of slot i: entries later in its probe run whose home is not
 * between i and where they sit move up into the hole, which ends at the run's end. */
static void s_delete(ledger_t *self, size_t i)
{
    size_t mask = self->cap - 1;
    for (size_t j = (i + 1) & mask; self->slots[j].h; j = (j + 1) & mask) {
        size_t k = s_home(self->cap, self->slots[j].h);
        bool stays = i <= j ? (k > i && k <= j) : (k > i || k <= j);
        if (!stays) {
            self->slots[i] = self->slots[j];
            i = j;
        }
    }
    self->slots[i].h = 0;
    self->slots[i].when_ms = 0;
    self->n--;
}

static void s_store(ledger_t *self, uint64_t h, int64_t when_ms)
{
    if (!self->kv)
        return;
    uint8_t key[10] = {'h', '/'};
    uint8_t val[8];
    kv_u64_put(key + 2, h);
    kv_u64_put(val, (uint64_t)when_ms);
    kv_put(self->kv, key, sizeof(key), val, sizeof(val));
}

static int s_open_store(ledger_t *self, const char *path, int64_t now_ms, char *err, size_t errlen)
{
    self->kv = kv_open(path, 1, NULL);
    if (!self->kv) {
        snprintf(err, errlen, "cannot open ledger %s", path);
        return -1;
    }
    char *salt = NULL;
    size_t slen = 0;
    if (kv_get(self->kv, s_salt_key, sizeof(s_salt_key) - 1, &salt, &slen) == 1 &&
        slen == sizeof(self->salt)) {
        memcpy(self->salt, salt, sizeof(self->salt));
    } else if (kv_put(self->kv, s_salt_key, sizeof(s_salt_key) - 1, self->salt,
                      sizeof(self->salt)) != 0) {
        xfree(salt);
        snprintf(err, errlen, "cannot write ledger salt in %s", path);
        return -1;
    }
    xfree(salt);
    /* only the live entries are loaded (the test is s_has's); the expired ones are deleted on
       disk here, since the sweep only ever sees what is in the table */
    int64_t cutoff = now_ms - self->ttl_ms;
    size_t loaded = 0, expired = 0;
    kv_batch_t *b = kv_batch_new();
    kv_iter_t *it = kv_iter_new(self->kv, "h/", 2);
    while (kv_iter_next(it) == 1) {
        size_t klen, vlen;
        const uint8_t *k = kv_iter_key(it, &klen);
        const uint8_t *v = kv_iter_value(it, &vlen);
        if (klen != 10 || vlen != 8)
            continue;
        int64_t when_ms = (int64_t)kv_u64_get(v);
        if (when_ms > cutoff) {
            s_put(self, kv_u64_get(k + 2), when_ms);
            loaded++;
            continue;
        }
        kv_batch_del(b, k, klen);
        expired++;
        if (kv_batch_count(b) == S_LOAD_DROPS) {
            (void)kv_batch_write(self->kv, b, 0); /* a failure: they go at the next start */
            kv_batch_clear(b);
        }
    }
    kv_iter_destroy(&it);
    if (kv_batch_count(b))
        (void)kv_batch_write(self->kv, b, 0);
    kv_batch_destroy(&b);
    s_move(self, SIZE_MAX); /* nothing waits on the lock yet */
    s_unmap(self->dead, self->dead_bytes);
    self->dead = NULL;
    self->dead_bytes = 0;
    if (expired)
        msg_info("ledger: path=%s loaded=%zu expired=%zu", path, loaded, expired);
    return 0;
}

ledger_t *ledger_new(const char *state_path, int64_t ttl_ms, char *err, size_t errlen)
{
    return ledger_new_at(state_path, ttl_ms, bs_clock_now_ms(bs_clock_system()), err, errlen);
}

ledger_t *ledger_new_at(const char *state_path, int64_t ttl_ms, int64_t now_ms, char *err,
                        size_t errlen)
{
    ledger_t *self = xcalloc(1, sizeof(*self));
    pthread_mutex_init(&self->lock, NULL);
    pthread_mutex_init(&self->store_lock, NULL);
    self->ttl_ms = ttl_ms;
    if (getrandom(self->salt, sizeof(self->salt), 0) != (ssize_t)sizeof(self->salt)) {
        snprintf(err, errlen, "getrandom failed for the ledger salt");
        ledger_destroy(&self);
        return NULL;
    }
    s_grow(self);
    if (state_path && s_open_store(self, state_path, now_ms, err, errlen) != 0) {
        int errnum = errno;
        ledger_destroy(&self);
        errno = errnum;
    }
    return self;
}

void ledger_destroy(ledger_t **self_p)
{
    if (!self_p || !*self_p)
        return;
    ledger_t *self = *self_p;
    kv_close(&self->kv);
    s_unmap(self->slots, self->cap * sizeof(*self->slots));
    s_unmap(self->old, self->oldcap * sizeof(*self->old));
    s_unmap(self->next, self->nextcap * sizeof(*self->next));
    s_unmap(self->dead, self->dead_bytes);
    pthread_mutex_destroy(&self->lock);
    pthread_mutex_destroy(&self->store_lock);
    xfree(self);
    *self_p = NULL;
}

/* The salted hash of text, or 0 when there is none. */
static uint64_t s_hash_opt(const ledger_t *self, char domain, const char *text)
{
    return text && *text ? s_hash(self, domain, text) : 0;
}

/* A change to the table and then its writes to the store: with a store, store_lock is held
 * throughout, so the writes to the store are in the order of the table's changes, and
 * self->lock only for the change, so lookups never wait on the disk. */
static void s_change_begin(ledger_t *self)
{
    if (self->kv)
        pthread_mutex_lock(&self->store_lock);
    pthread_mutex_lock(&self->lock);
}

/* The table changed; its writes to the store follow. */
static void s_change_store(ledger_t *self)
{
    pthread_mutex_unlock(&self->lock);
}

static void s_change_end(ledger_t *self)
{
    if (self->kv)
        pthread_mutex_unlock(&self->store_lock);
}

void ledger_add(ledger_t *self, const char *message_id, const char *sender, int64_t now_ms)
{
    uint64_t hm = s_hash_opt(self, 'm', message_id);
    uint64_t hs = s_hash_opt(self, 's', sender);
    if (!hm && !hs)
        return;
    s_change_begin(self);
    if (hm)
        s_put(self, hm, now_ms);
    if (hs)
        s_put(self, hs, now_ms);
    s_move(self, LEDGER_MOVE_SLOTS);
    s_release_t r = s_release_take(self);
    s_change_store(self);
    if (hm)
        s_store(self, hm, now_ms);
    if (hs)
        s_store(self, hs, now_ms);
    s_change_end(self);
    s_release(r); /* no lock held: neither lookups nor the next change wait on it */
}

static bool s_has(ledger_t *self, char domain, const char *text, int64_t now_ms)
{
    if (!text || !*text)
        return false;
    uint64_t h = s_hash(self, domain, text);
    pthread_mutex_lock(&self->lock);
    int64_t when = s_get(self, h);
    pthread_mutex_unlock(&self->lock);
    return when >= 0 && when > now_ms - self->ttl_ms;
}

bool ledger_has_message_id(ledger_t *self, const char *message_id, int64_t now_ms)
{
    return s_has(self, 'm', message_id, now_ms);
}

bool ledger_has_sender(ledger_t *self, const char *address, int64_t now_ms)
{
    return s_has(self, 's', address, now_ms);
}

size_t ledger_expire(ledger_t *self, int64_t now_ms)
{
    int64_t cutoff = now_ms - self->ttl_ms;
    size_t dropped = 0;
    kv_batch_t *b = NULL;
    s_change_begin(self);
    s_move(self, LEDGER_MOVE_SLOTS);
    size_t left = self->old ? 0 : LEDGER_EXPIRE_SLOTS; /* the sweep waits for a move */
    for (; left > 0 && self->n > 0; left--) {
        if (self->sweep >= self->cap) {
            self->sweep = 0;
            self->passes++;
        }
        s_slot_t *s = &self->slots[self->sweep];
        bool expired = s->h && s->when_ms <= cutoff;
        if (expired && self->kv && dropped == LEDGER_EXPIRE_DROPS)
            break; /* enough deletes on disk: the next call starts here */
        self->examined++;
        if (!expired) {
            self->sweep++;
            continue;
        }
        if (self->kv) {
            if (!b)
                b = kv_batch_new();
            uint8_t key[10] = {'h', '/'};
            kv_u64_put(key + 2, s->h);
            kv_batch_del(b, key, sizeof(key));
        }
        s_delete(self, self->sweep);
        dropped++;
        /* the same slot again: a later entry of the run may have moved into it */
    }
    s_release_t r = s_release_take(self);
    s_change_store(self);
    if (b)
        kv_batch_write(self->kv, b, 0);
    s_change_end(self);
    s_release(r);
    kv_batch_destroy(&b);
    return dropped;
}

size_t ledger_count(ledger_t *self)
{
    pthread_mutex_lock(&self->lock);
    size_t n = self->n;
    pthread_mutex_unlock(&self->lock);
    return n;
}

void ledger_stats(ledger_t *self, ledger_stats_t *out)
{
    pthread_mutex_lock(&self->lock);
    out->held = self->n;
    out->slots = self->cap;
    out->examined = self->examined;
    out->passes = self->passes;
    out->old_slots = self->oldcap;
    out->moved = self->moved;
    out->dead_bytes = self->dead_bytes;
    pthread_mutex_unlock(&self->lock);
}
