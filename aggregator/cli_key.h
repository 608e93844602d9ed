/*
 * cli_key - the canonical key text an operator means, and its fingerprint
 *
 * Operators type keys the way they see them: a bounce subject as it stands
 * in the mail ("Undeliverable: Cheap meds 123"), an address with brackets, a
 * network with a mask. The aggregator counts and matches keys by the
 * fingerprint of their normalised text (PROTOCOL.md 5.5), so a typed value is
 * turned into exactly the text a sensor would have hashed:
 *   subject, orig_subject   subject_key(subject_decode(value)), never empty
 *   client_ip               the address as inet_ntop prints it
 *   client_net              "ADDR/PREFIX" with no host bits set
 *   subject_ip              "SUBJECT|IP": the subject part normalised as above
 *                           (split at the last '|'), the address canonical
 *   sender_domain           lower case, no trailing dot, a plausible domain
 *   site                    a site name: [A-Za-z0-9._-]{1,64}
 * The CLI uses it to check arguments before it sends them, the control
 * handler to check requests (from any client) and to compute the fingerprint.
 *
 * Pure functions, no I/O. Returned strings are the caller's (xfree).
 */
#ifndef BS_CLI_KEY_H
#define BS_CLI_KEY_H

#include <stddef.h>
#include <stdint.h>

#include "bs_enums.h"

/* Parses a scope as operators type it: the bs_enums names plus "ip", "net"; -1 if unknown. */
int cli_key_scope_parse(const char *name);

/* Canonical key text of value in scope; NULL with a one-line reason in err when value
 * cannot be a key of that scope. */
char *cli_key_text(bs_scope_t scope, const char *value, char *err, size_t errlen);

/* cli_key_text for a decision: a net decision must also be a network the sensors key mail
 * by (netaddr_network: /24 for IPv4, /64 for IPv6), since no other one matches any mail. */
char *cli_key_decision_text(bs_scope_t scope, const char *value, char *err, size_t errlen);

/* The fingerprint the aggregator counts the canonical text under (fp_text). */
uint64_t cli_key_fp(const char *canonical);

/* True when s (UTF-8) is one line of printable text: no control characters (C0, DEL, C1),
 * which would forge a log line or drive the operator's terminal. */
int cli_key_line_ok(const char *s);

/* Replaces each control character of s (cli_key_line_ok) with '?', in place. */
void cli_key_line_mask(char *s);

/* True when name is a valid site name ([A-Za-z0-9._-], 1 to 64 bytes). */
int cli_key_site_valid(const char *name);

#endif
