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
 * behind it are fresh. The table never shrinks (it did not before either); a
 * growth rehashes it and starts the pass again at slot 0.
 */
#include "ledger.h"

#include "fp.h"
#include "kv.h"
#include "msg.h"
#include "xalloc.h"

#include <ctype.h>
#include <pthread.h>
#include <stdio.h>
#include <string.h>
#include <sys/random.h>

typedef struct {
    uint64_t h;      /* salted hash; 0 = empty slot */
    int64_t when_ms; /* last time it was recorded */
} s_slot_t;

struct ledger {
    pthread_mutex_t store_lock; /* with kv: held by a change and its writes to kv, taken
                                   before lock (see s_change_begin) */
    pthread_mutex_t lock;       /* guards everything below but kv */
    unsigned char salt[16];     /* SipHash key for this site */
    int64_t ttl_ms;             /* entries live this long */
    s_slot_t *slots;            /* open addressing, linear probing */
    size_t cap;                 /* power of two */
    size_t n;                   /* used slots */
    size_t sweep;               /* next slot ledger_expire() looks at */
    uint64_t examined;          /* slots ledger_expire() has looked at */
    uint64_t passes;            /* times the sweep wrapped around */
    kv_t *kv;                   /* write-through store or NULL */
};

static const char s_salt_key[] = "m/salt";

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

static void s_put(ledger_t *self, uint64_t h, int64_t when_ms);

/* Where h's probe run starts. */
static size_t s_home(const ledger_t *self, uint64_t h)
{
    return (size_t)(h * 0x9e3779b97f4a7c15ULL >> 20) & (self->cap - 1);
}

static void s_grow(ledger_t *self)
{
    s_slot_t *old = self->slots;
    size_t oldcap = self->cap;
    self->cap = oldcap ? oldcap * 2 : 1024;
    self->slots = xcalloc(self->cap, sizeof(*self->slots));
    self->n = 0;
    self->sweep = 0; /* entries moved: the pass starts again */
    for (size_t i = 0; i < oldcap; i++)
        if (old[i].h)
            s_put(self, old[i].h, old[i].when_ms);
    xfree(old);
}

static void s_put(ledger_t *self, uint64_t h, int64_t when_ms)
{
    if ((self->n + 1) * 4 > self->cap * 3)
        s_grow(self);
    size_t i = s_home(self, h);
    while (self->slots[i].h && self->slots[i].h != h)
        i = (i + 1) & (self->cap - 1);
    if (!self->slots[i].h)
        self->n++;
    self->slots[i].h = h;
    if (when_ms > self->slots[i].when_ms)
        self->slots[i].when_ms = when_ms;
}

static int64_t s_get(const ledger_t *self, uint64_t h)
{
    if (!self->cap)
        return -1;
    size_t i = s_home(self, h);
    while (self->slots[i].h) {
        if (self->slots[i].h == h)
            return self->slots[i].when_ms;
        i = (i + 1) & (self->cap - 1);
    }
    return -1;
}

/* Backward-shift deletion of slot i: entries later in its probe run whose home is not
 * between i and where they sit move up into the hole, which ends at the run's end. */
static void s_delete(ledger_t *self, size_t i)
{
    size_t mask = self->cap - 1;
    for (size_t j = (i + 1) & mask; self->slots[j].h; j = (j + 1) & mask) {
        size_t k = s_home(self, self->slots[j].h);
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

static int s_open_store(ledger_t *self, const char *path, char *err, size_t errlen)
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
    kv_iter_t *it = kv_iter_new(self->kv, "h/", 2);
    while (kv_iter_next(it) == 1) {
        size_t klen, vlen;
        const uint8_t *k = kv_iter_key(it, &klen);
        const uint8_t *v = kv_iter_value(it, &vlen);
        if (klen == 10 && vlen == 8)
            s_put(self, kv_u64_get(k + 2), (int64_t)kv_u64_get(v));
    }
    kv_iter_destroy(&it);
    return 0;
}

ledger_t *ledger_new(const char *state_path, int64_t ttl_ms, char *err, size_t errlen)
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
    if (state_path && s_open_store(self, state_path, err, errlen) != 0)
        ledger_destroy(&self);
    return self;
}

void ledger_destroy(ledger_t **self_p)
{
    if (!self_p || !*self_p)
        return;
    ledger_t *self = *self_p;
    kv_close(&self->kv);
    xfree(self->slots);
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
    s_change_store(self);
    if (hm)
        s_store(self, hm, now_ms);
    if (hs)
        s_store(self, hs, now_ms);
    s_change_end(self);
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
    for (size_t left = LEDGER_EXPIRE_SLOTS; left > 0 && self->n > 0; left--) {
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
    s_change_store(self);
    if (b)
        kv_batch_write(self->kv, b, 0);
    s_change_end(self);
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
    pthread_mutex_unlock(&self->lock);
}
