/*
 * slurp - read a whole file into memory, with a size bound
 *
 * Config files, rule tables and message files are read whole before they are
 * parsed; this is the one place that does it. The buffer is NUL-terminated
 * (the NUL is not counted in the length) and owned by the caller. A file
 * larger than the bound is refused rather than read in part, so a parser never
 * sees a silently cut file; callers that want a prefix (replaying mail) say so.
 */
#ifndef BS_SLURP_H
#define BS_SLURP_H

#include <stddef.h>

/* What slurp_file() does with a file larger than max_bytes. */
typedef enum {
    SLURP_REFUSE_LARGE,  /* fail with "larger than N bytes" */
    SLURP_TRUNCATE_LARGE /* return the first max_bytes, *truncated set */
} slurp_large_t;

/*
 * Reads path (a regular file) into a new buffer; *len_out gets its length and
 * *truncated (may be NULL) whether it was cut. Returns NULL on failure with a
 * one-line reason in err ("cannot open: ...", "not a regular file", "larger
 * than N bytes", "read error: ...") that does not repeat the path.
 */
char *slurp_file(const char *path, size_t max_bytes, slurp_large_t large, size_t *len_out,
                 int *truncated, char *err, size_t errlen);

#endif
