/*
 * shared - the allowlist entries and sites the two aggregators of a failover pair keep alike
 *
 * An operator changes the allowlist or the sites on either aggregator of a
 * mirroring pair (proto/PROTOCOL.md 4.7); the other takes the change as state,
 * not as a log. Each entry's version is the time it last changed: when it was
 * created, or when it was removed. A removal is kept as a tombstone, so the
 * other side's older copy does not come back. The later change wins; at the
 * same millisecond a removal wins, then the larger content hash, so that both
 * sides choose alike and their digests meet.
 *
 * This module keeps the tombstones, reads and writes entries on the wire and
 * decides; the server keeps the live entries (its allowlist and site table)
 * and applies what is decided. The digest of the whole (live entries and
 * tombstones) goes in every heartbeat; a follower asks for the peer's state
 * when its heartbeat carries a digest it has not fetched yet.
 *
 * Pure logic, no I/O, single-threaded.
 */
#ifndef BS_SHARED_H
#define BS_SHARED_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "allowlist.h"
#include "backstop.pb-c.h"
#include "wire.h"
#include "zsock.h"

typedef struct shared shared_t;

/* What an entry is. */
typedef enum {
    SHARED_ALLOW = 1, /* an allowlist entry */
    SHARED_SITE = 2,  /* a registered site */
} shared_kind_t;

/* One entry, live or removed. */
typedef struct {
    shared_kind_t kind;                 /* what it is */
    bool removed;                       /* a tombstone */
    int64_t changed_ms;                 /* when it was created, or removed */
    char who[DECISION_NAME_MAX + 1];    /* operator who made the change */
    allow_entry_t allow;                /* SHARED_ALLOW: the entry (its id and who unused) */
    char site[WIRE_MAX_ID + 1];         /* SHARED_SITE: the name */
    char public_key[ZSOCK_Z85_LEN + 1]; /* SHARED_SITE: its Z85 CURVE key, or "" */
} shared_rec_t;

/* Tombstones older than this are forgotten (at start, and when a peer sends one). */
#define SHARED_TOMB_KEEP_MS (180LL * 24 * 3600 * 1000)

shared_t *shared_new(void);
/* Frees it; *self_p becomes NULL; safe twice. */
void shared_destroy(shared_t **self_p);

/* The record of a live allowlist entry, or of a site. */
void shared_rec_allow(shared_rec_t *r, const allow_entry_t *e);
void shared_rec_site(shared_rec_t *r, const char *name, const char *public_key, int64_t created_ms,
                     const char *who);

/* What identifies an entry on both sides: an allowlist entry's type and what it matches
 * (a key entry's fingerprint, else its text), a site's name. */
uint64_t shared_identity(const shared_rec_t *r);
/* Whether a (the local record, NULL: none) loses to b, by the rules above. */
bool shared_loses(const shared_rec_t *a, const shared_rec_t *b);

/* Tombstones, by identity. put replaces one of the same identity; drop returns whether
 * there was one. */
void shared_tomb_put(shared_t *self, const shared_rec_t *r);
const shared_rec_t *shared_tomb_find(const shared_t *self, uint64_t identity);
bool shared_tomb_drop(shared_t *self, uint64_t identity);
/* The tombstones (borrowed, in no particular order) and their number. */
const shared_rec_t *shared_tombs(const shared_t *self, size_t *n_p);

/* Digest of a set: the sum of the records' hashes, so the order does not matter. Start
 * at 0 and add each record. */
uint64_t shared_digest_add(uint64_t digest, const shared_rec_t *r);

/* Reads a wire entry into r: the kind and type named, the text valid for its type (an
 * address, a network, a domain, a site name), a key entry's scope and fingerprint, a
 * site's key Z85 or none. 0, or -1 with a one-line reason in err. */
int shared_rec_read(const Backstop__SharedEntry *pb, shared_rec_t *r, char *err, size_t errlen);
/* Fills pb (initialised here) from r; its strings point into r. */
void shared_rec_write(const shared_rec_t *r, Backstop__SharedEntry *pb);

/* A record as stored (the packed SharedEntry), and back; -1 if unreadable. */
uint8_t *shared_rec_pack(const shared_rec_t *r, size_t *len_p);
int shared_rec_unpack(const uint8_t *buf, size_t len, shared_rec_t *r);

/* "allow" or "site", and the entry's text for log lines (an allowlist entry's, a site's
 * name). */
const char *shared_kind_name(shared_kind_t kind);
const char *shared_rec_text(const shared_rec_t *r);

#endif
