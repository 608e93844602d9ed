/*
 * hdrs - an RFC 5322 header block, parsed in place
 *
 * The classifier and the MIME splitter read many header blocks (the
 * message's, each MIME part's, an enclosed original's, DSN field groups) and
 * need only a few fields of each, so the block is indexed where it lies: no
 * copies, no allocation, fields point into the caller's buffer, which must
 * outlive the hdrs_t. Lenient as mail demands: a leading mbox "From " line
 * is skipped, bare LF and CRLF both end lines, a line that is neither a
 * field nor a continuation ends the block (the rest is body), and fields
 * past HDRS_MAX_FIELDS are ignored.
 *
 * Pure functions, no state: thread-safe. hdrs_get()/hdrs_unfold() return
 * strings the caller frees with xfree.
 */
#ifndef BS_HDRS_H
#define BS_HDRS_H

#include <stddef.h>

/* Most fields indexed per block. */
#define HDRS_MAX_FIELDS 256
/* Longest unfolded value returned (longer values are cut). */
#define HDRS_MAX_VALUE 998

/* One field, pointing into the parsed buffer. */
typedef struct {
    const char *name;  /* field name as written */
    size_t name_len;   /* its length */
    const char *value; /* raw value after the colon, folds included */
    size_t value_len;  /* its length */
} hdrs_field_t;

/* A parsed header block. */
typedef struct {
    hdrs_field_t h[HDRS_MAX_FIELDS]; /* fields in order */
    size_t count;                    /* fields used */
    const char *body;                /* first byte after the block (after the blank line) */
    size_t body_len;                 /* bytes from body to the end of the buffer */
    int terminated;                  /* 1 if a blank line ended the block */
    int bad_line;                    /* 1 if a line that is not a field ended it */
} hdrs_t;

/* Indexes the header block at the start of len bytes at buf into out. */
void hdrs_parse(const char *buf, size_t len, hdrs_t *out);

/* The first field called name (case-insensitive), or NULL. */
const hdrs_field_t *hdrs_find(const hdrs_t *hs, const char *name);

/* The unfolded, trimmed value of the first field called name, or NULL. */
char *hdrs_get(const hdrs_t *hs, const char *name);

/* Unfolds len bytes of a raw value: CR, LF and NUL dropped, tabs to spaces,
   trimmed, at most HDRS_MAX_VALUE bytes. Never NULL. */
char *hdrs_unfold(const char *value, size_t len);

/* 1 if c may appear in a field name (printable ASCII except ':' and space). */
int hdrs_is_name_char(unsigned char c);

#endif
