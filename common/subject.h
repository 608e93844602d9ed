/*
 * subject - decode a Subject header and normalise it into a key
 *
 * One spam wave reflected by many servers arrives with many subjects:
 * "Undeliverable: Cheap meds 123", "Unzustellbar: cheap meds 456",
 * "failure notice", and inside the bounce the original "Cheap meds 789".
 * subject_key() maps them to one key text ("cheap meds #") that the
 * aggregator counts by its fingerprint (fp.h):
 *   1. lowercase (Unicode-aware: Latin, Greek, Cyrillic...), all white space
 *      runs to one space, trimmed;
 *   2. strip, repeatedly, leading reply/forward prefixes (Re:, Fw:, AW:, WG:,
 *      TR:, SV:, Antw:, R:, RIF:, Re[2]:...), bracketed tags ("[SPAM]",
 *      "***SPAM***"), auto-reply prefixes and bounce prefixes in several
 *      languages ("Undeliverable:", "Returned mail: see transcript for
 *      details", "Delivery Status Notification (Failure)", "Unzustellbar:",
 *      "Non remis :", "No se puede entregar:", "Onbestelbaar:"...);
 *   3. mask volatile tokens: e-mail addresses -> "@", digit runs -> "#",
 *      long ids and hex strings -> "#".
 * A subject that is nothing but a bounce phrase (with the status or address
 * it announces: "Delivery Report (failure) for a@b", "Message delayed
 * (a@b)") or holds no letters after masking has the empty key "".
 *
 * Pure functions, no state: thread-safe. Returned strings are the caller's.
 */
#ifndef BS_SUBJECT_H
#define BS_SUBJECT_H

/* Decodes a raw (possibly folded) Subject value: RFC 2047 encoded words and
   raw 8-bit text to valid UTF-8, control characters to spaces, trimmed.
   NULL gives "". Never NULL. */
char *subject_decode(const char *raw);

/* The normalised key text of a decoded subject (see above). NULL gives "".
   Never NULL. */
char *subject_key(const char *decoded);

/* 1 if the decoded subject contains a word or phrase typical of bounces
   ("undeliverable", "returned mail", "delivery status notification",
   "failure notice", and translations); 0 otherwise. */
int subject_is_bounce(const char *decoded);

/* The bounce word or phrase subject_is_bounce() found (static, lowercase), or NULL. */
const char *subject_bounce_word(const char *decoded);

/* 1 if the decoded subject starts with a reply or forward prefix (Re:, Fwd:,
   AW:...), also after leading tags ("[list] Re: ...", "[SPAM] Fwd: ..."). */
int subject_is_reply(const char *decoded);

/* 1 if the decoded subject looks like an auto-reply ("Out of Office",
   "Automatic reply:", "Auto:", "Abwesenheitsnotiz"...); 0 otherwise. */
int subject_is_autoreply(const char *decoded);

#endif
