/*
 * lines - split config text into Postfix-style logical lines; see lines.h.
 *
 * The reader walks physical lines once. A logical line is assembled in
 * pending and handed out only when the next non-continuation line starts (or
 * the text ends), because until then more continuation lines may follow.
 * Events found on the way (a NUL line, an orphan continuation) are returned
 * at once, so events come out in the order their lines occur, except that a
 * logical line comes out when complete: after any NUL line met while it could
 * still continue. This is the order cfg.c and ruletab.c always reported in.
 */
#include "lines.h"

#include <assert.h>
#include <ctype.h>
#include <limits.h>
#include <string.h>

#include "xalloc.h"

struct lines {
    const char *p;   /* start of the next physical line */
    const char *end; /* end of the text */
    int lineno;      /* physical lines read so far */
    char *pending;   /* logical line being assembled, NULL when none */
    size_t plen;     /* its length */
    int pline;       /* its first physical line */
    bool pcont;      /* continuation lines were joined into it */
};

lines_t *lines_new(const char *text, size_t len)
{
    assert(text != NULL || len == 0);
    lines_t *self = xcalloc(1, sizeof(*self));
    self->p = text;
    self->end = text ? text + len : NULL;
    return self;
}

void lines_destroy(lines_t **self_p)
{
    if (self_p == NULL || *self_p == NULL)
        return;
    lines_t *self = *self_p;
    xfree(self->pending);
    xfree(self);
    *self_p = NULL;
}

/* Hands the pending logical line over to item. */
static lines_event_t s_emit(lines_t *self, lines_item_t *item)
{
    item->text = self->pending;
    item->line = self->pline;
    item->continued = self->pcont;
    self->pending = NULL;
    return LINES_TEXT;
}

lines_event_t lines_next(lines_t *self, lines_item_t *item)
{
    assert(self != NULL && item != NULL);
    memset(item, 0, sizeof(*item));

    while (self->p < self->end) {
        const char *lp = self->p;
        const char *nl = memchr(lp, '\n', (size_t)(self->end - lp));
        size_t ll = (size_t)((nl ? nl : self->end) - lp);
        self->p = nl ? nl + 1 : self->end;
        if (self->lineno < INT_MAX)
            self->lineno++;
        if (ll > 0 && lp[ll - 1] == '\r')
            ll--;
        if (memchr(lp, '\0', ll)) {
            item->line = self->lineno;
            return LINES_NUL;
        }
        size_t ws = 0;
        while (ws < ll && isspace((unsigned char)lp[ws]))
            ws++;
        if (ws == ll || lp[ws] == '#')
            continue;
        if (ws > 0) {
            if (self->pending == NULL) {
                item->line = self->lineno;
                return LINES_ORPHAN;
            }
            self->pending = xrealloc(self->pending, self->plen + 1 + (ll - ws) + 1);
            self->pending[self->plen++] = ' ';
            memcpy(self->pending + self->plen, lp + ws, ll - ws);
            self->plen += ll - ws;
            self->pending[self->plen] = '\0';
            self->pcont = true;
            continue;
        }
        lines_event_t ev = LINES_END;
        if (self->pending)
            ev = s_emit(self, item);
        self->pending = xstrndup(lp, ll);
        self->plen = ll;
        self->pline = self->lineno;
        self->pcont = false;
        if (ev != LINES_END)
            return ev;
    }
    if (self->pending)
        return s_emit(self, item);
    return LINES_END;
}
