/*
 * lines - split config text into Postfix-style logical lines
 *
 * main.cf-style config files (cfg.c) and regexp/pcre rule tables (ruletab.c)
 * share one line syntax, read here and only here:
 *
 *   - physical lines end at "\n"; one "\r" before it is dropped (CRLF files);
 *     the last line needs no newline;
 *   - a line that is empty, all white space, or whose first non-blank
 *     character is "#" is skipped; it does not end a logical line, so a
 *     comment may sit between a line and its continuations. A "#" anywhere
 *     else is text, left to the caller;
 *   - a line starting with white space continues the previous logical line:
 *     its leading white space is replaced by one space and it is appended.
 *     Trailing white space is kept (callers trim as they need);
 *   - there is no line length limit: callers bound the whole file instead.
 *
 * The reader reports events in input order and never stops on its own: a
 * logical line, a continuation line with nothing to continue (at the top of
 * the file), or a physical line holding a NUL byte (skipped; it neither starts
 * nor ends a logical line). What each event means, the wording of the error
 * and whether to go on is the caller's decision. Line numbers count physical
 * lines from 1; a logical line carries the number of its first line, so
 * FILE:LINE errors point at the line a key or rule starts on.
 *
 * The reader borrows the text (it must outlive the reader) and never modifies
 * it; each logical line it hands out is a new string that the caller frees.
 */
#ifndef BS_LINES_H
#define BS_LINES_H

#include <stdbool.h>
#include <stddef.h>

/* A reader over one text. */
typedef struct lines lines_t;

/* What lines_next() found. */
typedef enum {
    LINES_END = 0, /* no more input; nothing in the item */
    LINES_TEXT,    /* a logical line: text, line, continued */
    LINES_ORPHAN,  /* a continuation line with no logical line before it: line */
    LINES_NUL,     /* a physical line containing a NUL byte, skipped: line */
} lines_event_t;

/* One event's data. */
typedef struct {
    char *text;     /* LINES_TEXT: the logical line, the caller's (xfree); else NULL */
    int line;       /* first physical line of the logical line, or the offending line */
    bool continued; /* LINES_TEXT: continuation lines were joined into text */
} lines_item_t;

/* New reader over len bytes of text (which may be NULL when len is 0); borrows text. */
lines_t *lines_new(const char *text, size_t len);

/* Frees the reader and any logical line it has not handed out; sets *self_p = NULL. */
void lines_destroy(lines_t **self_p);

/* Reads up to the next event; fills *item and returns its kind (LINES_END when done). */
lines_event_t lines_next(lines_t *self, lines_item_t *item);

#endif
