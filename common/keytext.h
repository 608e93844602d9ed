/*
 * keytext - the key text mail is counted and matched by, from what a person types
 *
 * SYNOPSIS
 *   #include "keytext.h"
 *
 * DESCRIPTION
 *   A person types a key as they read it ("Cheap Watches 123", "2001:DB8::1",
 *   "[192.0.2.7]"); the sensor keys mail by the fingerprint of a normalised
 *   text (classify.c: subject_key() of the decoded Subject, the client's
 *   canonical address, its /24 or /64). A block or an allowlist entry made from
 *   the typed text would match nothing, so the CLI (aggregator/cli_key.c) and
 *   the sensor's decision file (sensor/milter_engine.c) both turn what was typed
 *   into the very text the sensor computes from a message, with these.
 *
 *   Each returns a new string (xfree), or NULL with a one-line reason in err
 *   when the value can be no key of its kind.
 */
#ifndef BS_KEYTEXT_H
#define BS_KEYTEXT_H

#include <stdbool.h>
#include <stddef.h>

/* A subject's key: subject_key() of the value decoded as a Subject header (plain text
 * passes unchanged; a pasted RFC 2047 subject means what the mail says). Refused when
 * nothing is left (only a bounce phrase, say). */
char *keytext_subject(const char *value, char *err, size_t errlen);

/* A client address in canonical form (netaddr_format). */
char *keytext_ip(const char *value, char *err, size_t errlen);

/* A network in canonical form (ADDR/PREFIX, no host bits). keyed: it must also be a
 * network mail is keyed by (the client's /24 for IPv4, /64 for IPv6): no other matches
 * any message (an allowlist entry may be any network; a decision may not). */
char *keytext_net(const char *value, bool keyed, char *err, size_t errlen);

/* "SUBJECTKEY|IP": split at the last '|' (a subject may hold one, an address never), each
 * half as above. */
char *keytext_subject_ip(const char *value, char *err, size_t errlen);

/* Whether name is a site name: 1 to WIRE_MAX_ID bytes of [A-Za-z0-9._-] (the aggregator
 * takes no other in a batch, the CLI registers no other, the sensor configures no other). */
bool keytext_site_valid(const char *name);

#endif
