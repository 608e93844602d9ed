/*
 * dcache - the sensor's decision cache: in memory, persisted, expiring at TTL
 *
 * Holds the block decisions this sensor enforces: the aggregator's (fleet and
 * this site's), the local rule's and the operator's decision file. Milter
 * threads look decisions up by key (scope + fingerprint); the uplink thread
 * and the local rule change them. An entry past its expiry time is never
 * returned, whether or not anyone removed it, so a sensor cut off from the
 * aggregator stops enforcing at the TTL by itself; dcache_expire() frees them a
 * bounded number a call, earliest first.
 *
 * Persistence: with a state path, every change is written through to a kv
 * store (common/kv) before the call returns, and dcache_new() loads what was
 * there, so a restarted sensor enforces from its first message. The applied
 * (epoch, sequence) of the aggregator feed is stored alongside.
 *
 * Thread safety: all calls may be made from any thread (one rwlock; lookups
 * share it). Entries handed out are copies. No call holds the write lock for
 * work that grows with the number of decisions, but the snapshot and origin
 * replacements (which walk them all, atomically for readers) and a rewrite
 * after a failed write.
 */
#ifndef BS_DCACHE_H
#define BS_DCACHE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* Key scopes; the numbers are proto Scope's. */
typedef enum {
    DCACHE_SCOPE_SUBJECT = 1,      /* the bounce's own subject key */
    DCACHE_SCOPE_ORIG_SUBJECT = 2, /* the bounced original's subject key */
    DCACHE_SCOPE_CLIENT_IP = 3,    /* fp_text of the client address text */
    DCACHE_SCOPE_CLIENT_NET = 4,   /* fp_text of "a.b.c.0/24" or "x:x:x:x::/64" */
    DCACHE_SCOPE_SUBJECT_IP = 5,   /* fp_text of "SUBJECTKEY|IP" */
} dcache_scope_t;

/* Actions; the numbers are proto Action's. */
typedef enum {
    DCACHE_ACTION_REJECT = 1,
    DCACHE_ACTION_TEMPFAIL = 2,
    DCACHE_ACTION_TAG = 3,
} dcache_action_t;

/* Where a decision came from, which decides whether the ledger overrides it. */
typedef enum {
    DCACHE_ORIGIN_RULE = 1,  /* an aggregator rule: automatic */
    DCACHE_ORIGIN_CLI = 2,   /* an operator at the aggregator */
    DCACHE_ORIGIN_LOCAL = 3, /* this sensor's local rule: automatic, survives snapshots */
    DCACHE_ORIGIN_FILE = 4,  /* this sensor's decision_file: operator, survives snapshots */
} dcache_origin_t;

#define DCACHE_ID_SIZE   65  /* ids are at most 64 bytes */
#define DCACHE_TEXT_SIZE 257 /* display values are at most 256 bytes */

/* One decision as the sensor needs it. */
typedef struct {
    char id[DCACHE_ID_SIZE];      /* decision id, named in the SMTP reply */
    int scope;                    /* dcache_scope_t */
    uint64_t fp;                  /* fingerprint of the key it matches */
    int action;                   /* dcache_action_t */
    bool observe;                 /* observe mode: log only */
    bool all_mail;                /* applies beyond bounce-class mail */
    int origin;                   /* dcache_origin_t */
    int64_t created_ms;           /* when it was made */
    int64_t expires_ms;           /* when it stops applying */
    char value[DCACHE_TEXT_SIZE]; /* display text of the key */
} dcache_entry_t;

typedef struct dcache dcache_t;

/* A cache, loaded from and written through to state_path (NULL: memory only);
 * NULL when state_path cannot be opened (why in err, errno as kv_open()'s). */
dcache_t *dcache_new(const char *state_path, char *err, size_t errlen);

/* Closes the store and frees everything; sets *self_p = NULL; safe twice. */
void dcache_destroy(dcache_t **self_p);

/* Adds or replaces (by id) a decision; 0, or -1 when it could not be persisted. */
int dcache_upsert(dcache_t *self, const dcache_entry_t *entry);

/* Removes the decision with this id; 0 when it was there, -1 otherwise. */
int dcache_remove(dcache_t *self, const char *id);

/* Removes every decision of this origin (a reloaded decision file replaces its old set);
 * returns how many. */
size_t dcache_remove_origin(dcache_t *self, int origin);

/* Replaces every decision of this origin with the n given, atomically for readers (a reloaded
 * decision file); entries must carry that origin. 0, or -1 when one could not be persisted. */
int dcache_replace_origin(dcache_t *self, int origin, const dcache_entry_t *entries, size_t n);

/* Replaces every aggregator decision (origins RULE and CLI) with the n given,
 * keeping local and file ones, and records (epoch, seq): a snapshot. */
int dcache_replace_feed(dcache_t *self, const dcache_entry_t *entries, size_t n, uint64_t epoch,
                        uint64_t seq);

/* Copies up to max decisions matching (scope, fp) and not expired at now_ms into out; returns
 * how many matched (may exceed max). */
size_t dcache_lookup(dcache_t *self, int scope, uint64_t fp, int64_t now_ms, dcache_entry_t *out,
                     size_t max);

/* Copies the decision with this id into out; 0 found (even expired), -1 not. */
int dcache_get(dcache_t *self, const char *id, dcache_entry_t *out);

/* Decisions one dcache_expire() call drops at most (with a store, deletes on disk in one
 * batch), so a tick holds the write lock briefly even when a storm's blocks expire
 * together; the rest go at the next calls, and lookups skip them meanwhile. */
#define DCACHE_EXPIRE_DROPS 512

/* Drops entries expired at now_ms (from memory and disk), the earliest first and at most
 * DCACHE_EXPIRE_DROPS; returns how many. It never looks at an entry that has not
 * expired. */
size_t dcache_expire(dcache_t *self, int64_t now_ms);

/* Number of entries held (expired ones included until dcache_expire drops them). */
size_t dcache_count(dcache_t *self);

/* Buckets of the old tables one change (an upsert, a removal, an expiry call) moves into
 * the new ones while the tables grow: a growth never holds the write lock for a rehash. */
#define DCACHE_MOVE_BUCKETS 256

typedef struct {
    size_t held;        /* entries held, as dcache_count() */
    size_t buckets;     /* size of the tables (the new ones during a growth) */
    size_t old_buckets; /* size of the tables being moved into them, 0 when none */
    uint64_t moved;     /* old buckets moved since dcache_new() */
} dcache_stats_t;

/* The tables' size and a growth's progress, for tests and benchmarks. */
void dcache_stats(dcache_t *self, dcache_stats_t *out);

/* Records the aggregator feed position applied so far; persisted. */
void dcache_set_position(dcache_t *self, uint64_t epoch, uint64_t seq);

/* The last recorded feed position (0, 0 when none). */
void dcache_position(dcache_t *self, uint64_t *epoch, uint64_t *seq);

/* Name of an action for logs ("reject", "tempfail", "tag"). */
const char *dcache_action_name(int action);

/* Name of a scope for logs ("subject", "orig_subject", "client_ip", ...). */
const char *dcache_scope_name(int scope);

/* Scope from its name; -1 when unknown. */
int dcache_scope_from_name(const char *name);

#endif
