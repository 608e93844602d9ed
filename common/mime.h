/*
 * mime - the one adapter to GMime (MIME structure, RFC 2047, charsets)
 *
 * Everything Backstop needs from a MIME library goes through here, so GLib and
 * GMime types never leave mime.c: callers see plain C strings and the flat
 * mime_tree_t below. GMime is initialised once per process (pthread_once) on
 * first use; after that every function is safe to call from many threads at
 * once (no shared mutable state: the parser options are built once and only
 * read).
 *
 * Bad input never fails: a message GMime cannot parse yields an empty tree,
 * undecodable text yields valid UTF-8 with replacement characters. Returned
 * char * are the caller's (free with xfree); const char * are borrowed from
 * the object they come from.
 */
#ifndef BS_MIME_H
#define BS_MIME_H

#include <stddef.h>

/* Most parts a tree records; the rest of a larger message is ignored. */
#define MIME_MAX_PARTS 64
/* Most decoded bytes kept per leaf part (the head is what classifying needs). */
#define MIME_MAX_PART_BYTES (256 * 1024)

/* One node of a parsed message, in document order (depth-first). */
typedef struct mime_part {
    char *type;        /* media type, lowercase ("multipart", "text", "message") */
    char *subtype;     /* media subtype, lowercase ("report", "plain", "rfc822") */
    char *report_type; /* multipart/report's report-type parameter, lowercase, or NULL */
    char *charset;     /* charset parameter as given, or NULL */
    int depth;         /* 0 for the message's own body, +1 per enclosing multipart */
    char *body;        /* leaf: content after transfer decoding, NUL-terminated, or NULL;
                          message/rfc822: the enclosed message's header block */
    size_t body_len;   /* bytes in body (without the NUL) */
    int enclosed_body; /* message/rfc822: 1 if the enclosed message has a non-empty body */
} mime_part_t;

/* A parsed message: its parts, flattened. */
typedef struct mime_tree mime_tree_t;

/* Parses len bytes of a whole message (headers and body). Never NULL. Parts
   inside an enclosed message/rfc822 are not descended into. */
mime_tree_t *mime_tree_parse(const char *buf, size_t len);

/* Frees the tree and sets *self_p to NULL; safe twice. */
void mime_tree_destroy(mime_tree_t **self_p);

/* Number of parts recorded. */
size_t mime_tree_count(const mime_tree_t *self);

/* The i-th part (borrowed; i < mime_tree_count()). */
const mime_part_t *mime_tree_part(const mime_tree_t *self, size_t i);

/* Decodes an unstructured header value (RFC 2047 encoded words, raw 8-bit
   text in UTF-8 or a legacy charset) to valid UTF-8. Never NULL. */
char *mime_header_decode(const char *raw);

/* Converts len bytes in charset (NULL or unknown: guess) to valid UTF-8. */
char *mime_to_utf8(const char *charset, const char *text, size_t len);

/* Undoes a Content-Transfer-Encoding ("base64", "quoted-printable"; others are
   copied) on len bytes; *out_len gets the decoded length. Never NULL. */
char *mime_transfer_decode(const char *cte, const char *in, size_t len, size_t *out_len);

/* Parses a Content-Type value: type and subtype lowercase, report_type
   lowercase or NULL (any out pointer may be NULL). Returns 0, or -1 when the
   value is not a content type (outputs then NULL). */
int mime_content_type(const char *value, char **type, char **subtype, char **report_type);

/* The charset parameter of a Content-Type value as given, or NULL when
   absent or the value is not a content type. */
char *mime_content_charset(const char *value);

/* Lowercases valid UTF-8 text (Unicode-aware: Latin, Greek, Cyrillic...). */
char *mime_utf8_lower(const char *s);

/* 1 if len bytes at s are valid UTF-8. */
int mime_utf8_valid(const char *s, size_t len);

#endif
