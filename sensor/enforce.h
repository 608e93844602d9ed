/*
 * enforce - which decision, if any, a message meets: pure logic
 *
 * Given a message's keys, its class and whether the outbound ledger vouched
 * for it, enforce_decide() looks each key up in the decision cache and picks
 * the verdict the safety rules allow:
 *   - a decision applies to the classes the site enforces (bounce-class mail
 *     by default) unless it says all_mail;
 *   - a ledger hit (a legitimate bounce of mail this site sent) is never
 *     rejected or tempfailed by an automatic decision (aggregator rule or
 *     local rule); only an operator's decision or a tag still applies;
 *   - an observe-mode decision is reported, never acted on;
 *   - of several applicable decisions the strongest wins (reject, tempfail,
 *     tag), then the earliest key in the message's key order.
 * No I/O, no clock: the time is an argument. Thread-safe (dcache locks).
 */
#ifndef BS_ENFORCE_H
#define BS_ENFORCE_H

#include "classify.h"
#include "dcache.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define ENFORCE_MAX_KEYS 6 /* subject, orig subject, client ip, client net, subject+ip, spare */

/* One key of a message. */
typedef struct {
    int scope;        /* dcache_scope_t */
    uint64_t fp;      /* its fingerprint */
    const char *text; /* display text (borrowed), for events and logs */
} enforce_key_t;

/* What enforce_decide needs to know about a message. */
typedef struct {
    enforce_key_t keys[ENFORCE_MAX_KEYS]; /* the message's keys, most specific first */
    size_t nkeys;                         /* keys used */
    bool class_enforced;                  /* its class is one decisions apply to */
    bool ledger_hit;                      /* the outbound ledger vouched for it */
} enforce_input_t;

/* The verdict, with what was spared and why, for the log line and the event. */
typedef struct {
    int action;                     /* dcache_action_t, or 0: accept */
    dcache_entry_t decision;        /* the decision acted on (action != 0) */
    bool observed;                  /* an observe-mode decision matched */
    dcache_entry_t observe;         /* that decision (observed) */
    bool spared_ledger;             /* an automatic decision matched but the ledger vouched */
    bool spared_class;              /* a decision matched but the class is exempt */
    char spared_id[DCACHE_ID_SIZE]; /* the decision spared (spared_*) */
} enforce_verdict_t;

/* Decides what happens to a message with these keys at now_ms. */
void enforce_decide(dcache_t *cache, const enforce_input_t *in, int64_t now_ms,
                    enforce_verdict_t *out);

/* Appends a key to in (ignored when full). */
void enforce_add_key(enforce_input_t *in, int scope, uint64_t fp, const char *text);

/* Adds a classified message's keys to in, most specific first: original subject, subject,
 * subject+IP, client IP, client net (PROTOCOL.md 5.5). Texts are borrowed from cr, except the
 * subject+IP text, returned in *subject_ip (the caller frees it; NULL when there is none). */
void enforce_keys_from(const classify_result_t *cr, enforce_input_t *in, char **subject_ip);

#endif
