/*
 * decisions - the table of block decisions, their sequence log and changes
 *
 * A decision says: mail matching (scope, fp) gets action, everywhere (fleet)
 * or at one site (local), until expires_ms. Rules propose decisions; a
 * proposal for a key that already has an active decision with the same
 * identity (scope, fp, reach, site, mode) extends it instead of creating
 * another. Operators add (origin cli) and revoke them; allowlists cancel them;
 * they expire by themselves.
 *
 * Every change (new, extended, revoked, allowlisted, expired) gets the next
 * sequence number of the table's epoch (strictly increasing, never reused in
 * an epoch) and goes to two places: a pending queue the daemon drains in order
 * with decisions_take_change() (to write LevelDB first, then publish), and a
 * bounded log that answers "changes since seq N" for sensors that were briefly
 * away; a sensor whose N is older than the log gets -1: send a full snapshot.
 *
 * Ids are 8 characters of Crockford base32 (no I, L, O, U): readable over the
 * phone. They are a 40-bit bijective mix of (epoch, sequence of the creating
 * change), so they never repeat within an epoch, and are checked against the
 * active set across epochs. Lookups accept lower case and the usual misreads
 * (o -> 0, i/l -> 1).
 *
 * Records are fixed-size (strings are cut at their documented maxima), so
 * copies need no freeing. Pure logic: time is an argument; single-threaded.
 * Pointers returned are borrowed until the next call that changes the table.
 */
#ifndef BS_DECISIONS_H
#define BS_DECISIONS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "bs_enums.h"

typedef struct decisions decisions_t;

/* Characters in a decision id (plus a terminating NUL). */
#define DECISION_ID_LEN 8
/* Longest key text / sample kept. */
#define DECISION_VALUE_MAX 256
/* Longest site name, rule name, operator name kept. */
#define DECISION_NAME_MAX 63
/* Longest reason kept. */
#define DECISION_REASON_MAX 159
/* Per-site shares kept in evidence (16 exact sites + "other"). */
#define EVIDENCE_SHARES_MAX 17

/* One site's part of the events behind a decision. */
typedef struct {
    char site[DECISION_NAME_MAX + 1]; /* site name ("other" for the rest) */
    uint64_t events;                  /* its events in the window */
} evidence_share_t;

/* The counts behind a rule decision (what `backstop why` shows). */
typedef struct {
    char rule[DECISION_NAME_MAX + 1];             /* rule that fired */
    uint64_t events;                              /* events in the window when it fired */
    uint32_t sites;                               /* distinct sites */
    uint32_t nshares;                             /* shares used */
    evidence_share_t shares[EVIDENCE_SHARES_MAX]; /* per-site counts, largest first */
    int64_t first_ms;                             /* first event in the window */
    int64_t last_ms;                              /* latest event */
    char sample[DECISION_VALUE_MAX + 1];          /* sample normalised text */
    uint32_t window_s;                            /* rule window */
} evidence_t;

/* A decision (mirrors proto Decision). */
typedef struct {
    char id[DECISION_ID_LEN + 1];           /* assigned by the table */
    bs_scope_t scope;                       /* what kind of key it matches */
    uint64_t fp;                            /* key fingerprint */
    char value[DECISION_VALUE_MAX + 1];     /* display text of the key (IP, net, subject) */
    bs_action_t action;                     /* reject, tempfail, tag */
    bs_reach_t reach;                       /* fleet or local */
    char site[DECISION_NAME_MAX + 1];       /* for local: the site; "" for fleet */
    char reason[DECISION_REASON_MAX + 1];   /* one line for humans */
    bool has_evidence;                      /* evidence is filled (rule decisions) */
    evidence_t evidence;                    /* the counts behind it */
    int64_t created_ms;                     /* when it was created */
    int64_t expires_ms;                     /* when it ends by itself */
    bs_origin_t origin;                     /* rule or cli */
    char origin_who[DECISION_NAME_MAX + 1]; /* rule name or operator */
    uint64_t seq;                           /* sequence of its latest change */
    uint64_t epoch;                         /* epoch of that change */
    bs_mode_t mode;                         /* enforce or observe */
    bool all_mail;                          /* applies beyond bounce-class mail */
    bool mirrored;                          /* its latest change came from the peer
                                               aggregator (decisions_mirror) */
} decision_t;

/* Kind of change (values of proto DecisionUpdate.Kind). */
typedef enum {
    DECISION_UPSERT = 0, /* new or extended */
    DECISION_REMOVE = 1, /* expired, revoked or allowlisted */
} decision_kind_t;

/* Why a change happened. */
typedef enum {
    DECISION_WHY_NEW = 0,         /* created */
    DECISION_WHY_EXTENDED = 1,    /* a continuing wave moved its expiry */
    DECISION_WHY_EXPIRED = 2,     /* TTL ran out */
    DECISION_WHY_REVOKED = 3,     /* an operator removed it */
    DECISION_WHY_ALLOWLISTED = 4, /* an allowlist entry covers it */
    DECISION_WHY_SUPERSEDED = 5,  /* the failover peer's decision on the same key, made
                                     while the two were apart, took its place
                                     (decisions_mirror) */
} decision_why_t;

/* One change, as published and logged. */
typedef struct {
    decision_kind_t kind; /* upsert or remove */
    decision_why_t why;   /* reason for the change */
    uint64_t seq;         /* its sequence number */
    uint64_t epoch;       /* its epoch */
    decision_t decision;  /* the decision after the change (as it was, for removals) */
} decision_change_t;

/* Result of decisions_propose(). */
typedef enum {
    DECISIONS_UNCHANGED = 0, /* an active decision already covers it well enough */
    DECISIONS_CREATED = 1,   /* a new decision */
    DECISIONS_EXTENDED = 2,  /* the active decision was extended */
} decisions_result_t;

/* A new table for epoch, whose last used sequence number is last_seq (0 for a new
 * log); log_max changes are kept for decisions_changes_since() (0: 4096). */
decisions_t *decisions_new(uint64_t epoch, uint64_t last_seq, size_t log_max);
/* Frees the table; *self_p becomes NULL; safe twice. */
void decisions_destroy(decisions_t **self_p);

/* The table's epoch. */
uint64_t decisions_epoch(const decisions_t *self);
/* The last sequence number used (0: none yet). */
uint64_t decisions_seq(const decisions_t *self);
/* Active decisions removed so far (expired, revoked, allowlisted). Only a removal ends a
 * decision or makes its expiry earlier (an extension only moves it later): "the decision
 * with this identity is active and expires no earlier than E" stays true while this
 * number stands still, however many other changes there are. */
uint64_t decisions_removals(const decisions_t *self);
/* Smallest since_seq decisions_changes_since() can answer. */
uint64_t decisions_log_floor(const decisions_t *self);
/* How strong an action is: reject 3, tempfail 2, tag 1, none 0. */
int decisions_action_rank(bs_action_t a);
/* Active decisions. */
size_t decisions_count(const decisions_t *self);
/* Active decisions in enforce mode (observe-mode ones not counted). */
size_t decisions_count_enforced(const decisions_t *self);

/* Proposes d (id, seq, epoch, created are ignored; expires_ms is set by the caller).
 * Creates it, or extends the active one with the same identity: its expiry when d
 * expires at least extend_min_ms (>= 0: an expiry never moves earlier) later than it
 * (evidence refreshed too), its action when d's is stronger, all_mail when an operator's
 * d sets it; an operator's d also becomes its origin and reason. Unchanged when d would
 * change none of these. *out_p (may be NULL) gets the active decision. */
decisions_result_t decisions_propose(decisions_t *self, const decision_t *d, int64_t extend_min_ms,
                                     int64_t now_ms, const decision_t **out_p);

/* Removes the active decision id with why (REVOKED or ALLOWLISTED); 0, or -1 unknown. */
int decisions_remove(decisions_t *self, const char *id, decision_why_t why, int64_t now_ms);

/* Removes every decision with expires_ms <= now_ms; returns how many. */
size_t decisions_expire(decisions_t *self, int64_t now_ms);
/* Earliest expires_ms of the active decisions, INT64_MAX if none (for the timer). */
int64_t decisions_next_expiry(decisions_t *self);

/* The active decision with this id (case and misread tolerant), or NULL. */
const decision_t *decisions_find(const decisions_t *self, const char *id);
/* The latest change of decision id (case and misread tolerant) the change log still holds,
 * or NULL; borrowed until the next change. For a decision no longer in force it says why
 * and what it was (`backstop why` of an id a reject named before). It looks through the
 * whole log: for the control socket, not the counting path. */
const decision_change_t *decisions_last_change(const decisions_t *self, const char *id);
/* The active decision with this identity (site ignored for fleet), or NULL. O(1): the
 * counting path asks it before building a proposal. */
const decision_t *decisions_find_identity(const decisions_t *self, bs_scope_t scope, uint64_t fp,
                                          bs_reach_t reach, const char *site, bs_mode_t mode);
/* Active decisions on (scope, fp), any reach/site/mode: up to max in out; returns how
 * many exist. */
size_t decisions_find_key(const decisions_t *self, bs_scope_t scope, uint64_t fp,
                          const decision_t **out, size_t max);

/* Calls cb for each active decision a site applies: fleet ones plus that site's local
 * ones (site NULL: all), oldest sequence first. Stops and returns cb's value when
 * non-zero. */
int decisions_foreach(const decisions_t *self, const char *site,
                      int (*cb)(const decision_t *d, void *arg), void *arg);

/* Calls cb for each logged change with seq > since_seq, in order. Returns 0, or -1 when
 * the request cannot be answered from the log (other epoch, since_seq older than
 * decisions_log_floor() or newer than decisions_seq()): send a full snapshot. */
int decisions_changes_since(const decisions_t *self, uint64_t epoch, uint64_t since_seq,
                            int (*cb)(const decision_change_t *c, void *arg), void *arg);

/* Moves the oldest change not yet taken into *out; 1 if there was one, else 0. */
int decisions_take_change(decisions_t *self, decision_change_t *out);
/* Changes waiting to be taken. */
size_t decisions_pending(const decisions_t *self);

/* What decisions_mirror() did with a change of the peer aggregator's. */
typedef enum {
    DECISIONS_MIRROR_REFUSED = -1, /* another active decision has its id or its identity,
                                      or the decision is unusable */
    DECISIONS_MIRROR_SAME = 0,     /* nothing to change: already so, an unknown id to
                                      remove, a decision already expired, an expiry the
                                      table knows a later end for, or an upsert of a
                                      decision an operator or allowlist removed here
                                      (among the last 4096 changes: the peer's change crossed
                                      the removal, which reaches it next) */
    DECISIONS_MIRROR_APPLIED = 1,  /* the table changed and logged the change */
    DECISIONS_MIRROR_MERGED = 2,   /* one of ours had its identity under another id (both
                                      made while the two were apart): the smaller id is kept,
                                      with the later expiry and the stronger action of both */
} decisions_mirror_t;

/* Applies a change the peer aggregator made itself to decision d (its id kept): an
 * upsert adds it, or merges it into the active decision with that id the way an
 * extension does (the later expiry, the stronger action); a removal removes it (an
 * expiry only when the table knows no later end). The change is logged with the next
 * sequence number like any other, marked mirrored, which is what keeps the peer from
 * taking it back. Changes the table makes itself are never marked mirrored, even to a
 * decision that came from the peer. An upsert whose identity (scope, key, reach, site,
 * mode) one of ours has under another id is merged: both sides keep the decision with the
 * smaller id, ours removed (why superseded) if it is the larger, and merge the other's
 * expiry and action into it (an extension of ours, which the peer takes). */
decisions_mirror_t decisions_mirror(decisions_t *self, decision_kind_t kind, decision_why_t why,
                                    const decision_t *d, int64_t now_ms);

/* Puts back a decision read from the store at restart, as it was (id, seq, epoch kept;
 * no change logged). -1 if its id is already active or the record is invalid. */
int decisions_restore(decisions_t *self, const decision_t *d);

/* Puts back the change log read from the store at restart: changes[0..n), consecutive
 * seqs of the table's epoch ending at its seq (the latest log_max of them are kept). What
 * the log answers before the stop it answers after: decisions_last_change() (`backstop why`
 * of an id no longer in force), decisions_changes_since(), and the mirror's memory of
 * removals. Only on a table that has logged nothing since decisions_new(). 0, or -1 (and
 * nothing restored) when the changes are not that. */
int decisions_log_restore(decisions_t *self, const decision_change_t *changes, size_t n);

/* Names of the change reasons: "new", "extended", "expired", "revoked", "allowlisted",
 * "superseded". */
const char *decisions_why_name(decision_why_t why);

/* The reason named name (as decisions_why_name() gives it); -1 when none is. */
int decisions_why_parse(const char *name);

/* Copies at most max bytes of src into dst (size max + 1), always terminated. */
void decisions_strlcpy(char *dst, const char *src, size_t max);

#endif
