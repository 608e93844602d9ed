/*
 * hdrs - header blocks indexed in place (see hdrs.h)
 */
#include "hdrs.h"

#include "xalloc.h"

#include <string.h>
#include <strings.h>

int hdrs_is_name_char(unsigned char c)
{
    return c > 32 && c < 127 && c != ':';
}

void hdrs_parse(const char *buf, size_t len, hdrs_t *out)
{
    const char *p = buf, *end = buf + len;
    int last_added = 0;

    out->count = 0;
    out->terminated = 0;
    out->bad_line = 0;
    out->body = end;
    out->body_len = 0;
    if (len >= 5 && !memcmp(p, "From ", 5)) {
        const char *eol = memchr(p, '\n', len);
        p = eol ? eol + 1 : end;
    }
    while (p < end) {
        const char *eol = memchr(p, '\n', (size_t)(end - p));
        const char *next = eol ? eol + 1 : end;
        const char *le = eol ? eol : end;
        if (le > p && le[-1] == '\r')
            le--;
        if (le == p) {
            out->terminated = 1;
            out->body = next;
            out->body_len = (size_t)(end - next);
            return;
        }
        if (*p == ' ' || *p == '\t') {
            /* a fold continues the last field we kept */
            if (last_added)
                out->h[out->count - 1].value_len = (size_t)(le - out->h[out->count - 1].value);
            p = next;
            continue;
        }
        const char *q = p;
        while (q < le && hdrs_is_name_char((unsigned char)*q))
            q++;
        const char *name_end = q;
        while (q < le && (*q == ' ' || *q == '\t'))
            q++;
        if (name_end == p || q >= le || *q != ':') {
            out->bad_line = 1;
            out->body = p;
            out->body_len = (size_t)(end - p);
            return;
        }
        last_added = 0;
        if (out->count < HDRS_MAX_FIELDS) {
            hdrs_field_t *h = &out->h[out->count++];
            h->name = p;
            h->name_len = (size_t)(name_end - p);
            h->value = q + 1;
            h->value_len = (size_t)(le - (q + 1));
            last_added = 1;
        }
        p = next;
    }
}

const hdrs_field_t *hdrs_find(const hdrs_t *hs, const char *name)
{
    size_t n = strlen(name);
    for (size_t i = 0; i < hs->count; i++)
        if (hs->h[i].name_len == n && !strncasecmp(hs->h[i].name, name, n))
            return &hs->h[i];
    return NULL;
}

char *hdrs_unfold(const char *v, size_t len)
{
    char *out = xmalloc(len + 1);
    size_t w = 0;
    for (size_t i = 0; i < len; i++) {
        char c = v[i];
        if (c == '\r' || c == '\n' || c == 0)
            continue;
        out[w++] = c == '\t' ? ' ' : c;
    }
    out[w] = 0;
    size_t s = 0;
    while (out[s] == ' ')
        s++;
    while (w > s && out[w - 1] == ' ')
        w--;
    if (w - s > HDRS_MAX_VALUE)
        w = s + HDRS_MAX_VALUE;
    memmove(out, out + s, w - s);
    out[w - s] = 0;
    return out;
}

char *hdrs_get(const hdrs_t *hs, const char *name)
{
    const hdrs_field_t *h = hdrs_find(hs, name);
    return h ? hdrs_unfold(h->value, h->value_len) : NULL;
}
