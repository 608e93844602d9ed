/*
 * classify - is this message a bounce, and what does it bounce?
 *
 * classify_message() judges one raw message (headers and body, possibly cut
 * at a body bound) plus what the MTA knows about it, and returns a class
 * with the reasons that decided it:
 *   bounce     a DSN / non-delivery or delay report from an MTA or filter
 *              (RFC 3464 multipart/report, message/delivery-status parts,
 *              X-Failed-Recipients, or a bounce sender / null sender with
 *              bounce subjects, NDR body phrases or an enclosed original);
 *   autoreply  RFC 3834 vacation / out-of-office / challenge-response;
 *   mdn        RFC 3798/8098 read receipt (report-type=disposition-notification);
 *   arf        RFC 5965 feedback report (report-type=feedback-report);
 *   normal     everything else.
 * For bounces it extracts the DSN fields, whether and how the original is
 * enclosed, and the original's Subject, Message-ID, From and To. For every
 * message it returns the decoded subject and its normalised key with a
 * fingerprint (subject.h, fp.h); for bounces also the original's.
 *
 * Promises: never crashes, hangs or leaks on any input (binary garbage,
 * broken MIME, a message cut anywhere); never returns NULL; thread-safe (no
 * static mutable state; GMime is initialised once inside mime.c). The result
 * owns all its strings, which are all valid UTF-8; const char * accessors borrow from it and stay
 * valid until classify_result_destroy().
 */
#ifndef BS_CLASSIFY_H
#define BS_CLASSIFY_H

#include <stddef.h>
#include <stdint.h>

/* The class of a message; same numbers as proto MsgClass. */
typedef enum {
    CLASSIFY_UNKNOWN = 0,
    CLASSIFY_NORMAL = 1,
    CLASSIFY_BOUNCE = 2,
    CLASSIFY_AUTOREPLY = 3,
    CLASSIFY_MDN = 4,
    CLASSIFY_ARF = 5,
} classify_class_t;

/* How much of the bounced original a bounce encloses; same numbers as proto Original. */
typedef enum {
    CLASSIFY_ORIG_NONE = 0,    /* nothing of it */
    CLASSIFY_ORIG_HEADERS = 1, /* its headers: text/rfc822-headers, or quoted inline */
    CLASSIFY_ORIG_RFC822 = 2,  /* the whole message: message/rfc822 with a body */
} classify_orig_t;

/* What the classifier is told about one message. All pointers are borrowed. */
typedef struct {
    const char *msg;          /* raw message, headers + body, possibly cut at the body bound */
    size_t len;               /* bytes at msg */
    int truncated;            /* 1 if msg was cut (a cut MIME structure is not broken) */
    const char *client_ip;    /* connecting client's address, NULL if unknown */
    const char *helo;         /* HELO/EHLO name, NULL if unknown */
    const char *env_from;     /* envelope sender: NULL unknown, "" the null sender <> */
    const char *const *rcpts; /* envelope recipients, may be NULL when nrcpts is 0 */
    size_t nrcpts;            /* number of rcpts */
} classify_input_t;

/* The verdict on one message (opaque; read it with the accessors below). */
typedef struct classify_result classify_result_t;

/* Most reasons a result records. */
#define CLASSIFY_MAX_REASONS 16

/* Classifies one message. Never NULL; the caller destroys the result. */
classify_result_t *classify_message(const classify_input_t *in);

/* Frees a result and sets *self_p to NULL; safe twice. */
void classify_result_destroy(classify_result_t **self_p);

/* The class decided. */
classify_class_t classify_result_class(const classify_result_t *r);

/* "bounce", "autoreply", "mdn", "arf", "normal" ("unknown" for 0 or out of range). */
const char *classify_class_name(classify_class_t c);

/* "rfc822", "headers", "none". */
const char *classify_orig_name(classify_orig_t o);

/* Number of reasons, and the i-th ("from=mailer-daemon", "subject=undeliverable",
   "ct=multipart/report;report-type=delivery-status", "auto-submitted=auto-replied"...). */
size_t classify_result_reason_count(const classify_result_t *r);
const char *classify_result_reason(const classify_result_t *r, size_t i);

/* How much of the original a bounce encloses (NONE for other classes). */
classify_orig_t classify_result_original(const classify_result_t *r);

/* The message's own Subject decoded to UTF-8 ("" when absent), its key text
   ("" when nothing is left after normalising) and the key's fingerprint (0
   for the empty key). */
const char *classify_result_subject(const classify_result_t *r);
const char *classify_result_subject_key(const classify_result_t *r);
uint64_t classify_result_subject_fp(const classify_result_t *r);

/* The bounced original's Subject (decoded), key and fingerprint; NULL/0 when
   the bounce does not enclose or quote it. */
const char *classify_result_orig_subject(const classify_result_t *r);
const char *classify_result_orig_subject_key(const classify_result_t *r);
uint64_t classify_result_orig_subject_fp(const classify_result_t *r);

/* The original's Message-ID (without <>), From and To values; NULL when unknown. */
const char *classify_result_orig_message_id(const classify_result_t *r);
const char *classify_result_orig_from(const classify_result_t *r);
const char *classify_result_orig_to(const classify_result_t *r);

/* DSN fields of the first report (address types like "rfc822;" and "dns;"
   stripped); NULL when absent. */
const char *classify_result_reporting_mta(const classify_result_t *r);
const char *classify_result_final_recipient(const classify_result_t *r);
const char *classify_result_action(const classify_result_t *r);
const char *classify_result_status(const classify_result_t *r);
const char *classify_result_diagnostic_code(const classify_result_t *r);

/* The client address as given and its network ("192.0.2.0/24",
   "2001:db8:1:2::/64"); NULL when unknown or unparsable. */
const char *classify_result_client_ip(const classify_result_t *r);
const char *classify_result_client_net(const classify_result_t *r);

/* Checks that len bytes look like a mail message at all: returns 0, or -1
   with *why set to a static phrase ("empty", "binary data", "no header
   block", "truncated header block"). */
int classify_check_mail(const char *msg, size_t len, const char **why);

#endif
