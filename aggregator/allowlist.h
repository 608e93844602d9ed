/*
 * allowlist - what must never be blocked, and which decisions that cancels
 *
 * Entry types and what they cover:
 *   ip      one client address (4- or 16-byte; IPv4-mapped IPv6 equals IPv4):
 *           events from it do not count, decisions on it (client_ip) are cancelled;
 *   net     a CIDR network: the same for every address in it, and client_net
 *           decisions on a network inside it;
 *   key     a key fingerprint of a scope (subject keys cover both subject and
 *           orig_subject, since the fingerprint is of the text alone): the key is
 *           not counted and decisions on it are cancelled;
 *   domain  a sender domain, matching itself and its subdomains: events whose
 *           sender_domain key matches do not count;
 *   site    a site: it is never blocked by a local decision (its events still
 *           count for fleet rules, and the snapshot logic may skip it).
 * Adding an entry reports the active decisions it covers, so the caller
 * revokes them at once (ingest_allow_add() does both).
 *
 * The per-event lookups (covers_ip, covers_key, covers_domain, covers_site) go
 * through an index, so their cost does not grow with the list: one hash probe
 * per prefix length in use, per domain label, per key. Adding, removing and
 * cancelling decisions scan the list (an operator's action). Addresses are
 * kept as 16 bytes (IPv4 mapped into ::ffff:0:0/96) plus a prefix length.
 * Pure logic, no I/O, single-threaded.
 */
#ifndef BS_ALLOWLIST_H
#define BS_ALLOWLIST_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "bs_enums.h"
#include "decisions.h"

typedef struct allowlist allowlist_t;

/* Longest entry text (address, network, domain, site, key text). */
#define ALLOW_TEXT_MAX 255

/* What an entry matches. */
typedef enum {
    ALLOW_IP = 1,     /* one address */
    ALLOW_NET = 2,    /* a CIDR network */
    ALLOW_KEY = 3,    /* a (scope, fp) key */
    ALLOW_DOMAIN = 4, /* a sender domain and its subdomains */
    ALLOW_SITE = 5,   /* a site */
} allow_type_t;

/* One entry. */
typedef struct {
    uint32_t id;                          /* assigned by allowlist_add(), > 0 */
    allow_type_t type;                    /* what it matches */
    uint8_t addr[16];                     /* ip/net: address, IPv4 mapped */
    uint8_t prefix;                       /* ip/net: prefix length over the 16 bytes */
    bs_scope_t scope;                     /* key: scope */
    uint64_t fp;                          /* key: fingerprint */
    char text[ALLOW_TEXT_MAX + 1];        /* as typed: address, network, domain, site, key */
    char who[DECISION_NAME_MAX + 1];      /* operator who added it */
    char reason[DECISION_REASON_MAX + 1]; /* why */
    int64_t created_ms;                   /* when */
} allow_entry_t;

/* Decision ids, owned by the caller; free with allowlist_ids_clear(). */
typedef struct {
    size_t n;                        /* ids */
    char (*id)[DECISION_ID_LEN + 1]; /* n ids */
} allowlist_ids_t;

allowlist_t *allowlist_new(void);
/* Frees the list; *self_p becomes NULL; safe twice. */
void allowlist_destroy(allowlist_t **self_p);

/* Fills e's match fields from text for type ip ("192.0.2.1", "2001:db8::1"), net
 * ("192.0.2.0/24"; host bits must be zero), domain (lower-cased, trailing dot
 * dropped) or site. Returns 0, or -1 when text is not valid for the type. Key
 * entries are filled by the caller (scope, fp from the common fingerprint). */
int allowlist_entry_parse(allow_entry_t *e, allow_type_t type, const char *text);

/* Adds a copy of e (id assigned, returned); covered (may be NULL) gets the ids of
 * the active decisions in `active` the entry covers. Returns the new id. */
uint32_t allowlist_add(allowlist_t *self, const allow_entry_t *e, const decisions_t *active,
                       allowlist_ids_t *covered);
/* Removes entry id; 0, or -1 if unknown. */
int allowlist_remove(allowlist_t *self, uint32_t id);
/* Entry by id (borrowed), or NULL. */
const allow_entry_t *allowlist_find(const allowlist_t *self, uint32_t id);
/* Number of entries. */
size_t allowlist_count(const allowlist_t *self);
/* Calls cb for each entry in id order; stops and returns cb's value when non-zero. */
int allowlist_foreach(const allowlist_t *self, int (*cb)(const allow_entry_t *e, void *arg),
                      void *arg);
/* The id of the entry that matches what e matches (a key entry's fingerprint, else the
 * same type and text), or 0: "allow add" of such an entry adds nothing. */
uint32_t allowlist_find_same(const allowlist_t *self, const allow_entry_t *e);
/* Puts back an entry read from the store (its id kept); -1 if the id is taken or 0. */
int allowlist_restore(allowlist_t *self, const allow_entry_t *e);

/* Whether a client address (4 or 16 bytes, network order) is allowlisted. */
bool allowlist_covers_ip(const allowlist_t *self, const uint8_t *ip, size_t len);
/* Whether a sender domain is allowlisted (itself or a parent domain). */
bool allowlist_covers_domain(const allowlist_t *self, const char *domain);
/* Whether a site is allowlisted. */
bool allowlist_covers_site(const allowlist_t *self, const char *site);
/* Whether an event key is allowlisted: by key entry, or by its text for client_ip,
 * client_net, sender_domain and site scopes. text may be NULL. */
bool allowlist_covers_key(const allowlist_t *self, bs_scope_t scope, uint64_t fp, const char *text);
/* Whether a decision is covered: its key (as above, using its value), or its site
 * for a local decision. */
bool allowlist_covers_decision(const allowlist_t *self, const decision_t *d);

/* Frees the ids in *ids and empties it. */
void allowlist_ids_clear(allowlist_ids_t *ids);

#endif
