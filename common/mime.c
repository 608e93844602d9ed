/*
 * mime - the GMime adapter
 *
 * The only file that includes <gmime/gmime.h>. It turns GMime's object tree
 * into the flat, GLib-free mime_tree_t and wraps the few GMime/GLib text
 * helpers Backstop uses (RFC 2047 decoding, charset conversion, transfer
 * decoding, Unicode lowercasing). GMime is initialised once (pthread_once);
 * the parser options are built in the same once-block and only read after, so
 * all functions are thread-safe. Strings GLib allocates are copied into
 * xalloc memory before they leave, so callers free everything with xfree.
 */
#include "mime.h"

#include "hdrs.h"
#include "xalloc.h"

#include <gmime/gmime.h>
#include <pthread.h>
#include <string.h>
#include <strings.h>

struct mime_tree {
    mime_part_t parts[MIME_MAX_PARTS]; /* the parts, depth-first */
    size_t count;                      /* parts used */
};

/* Deeper nesting than this is not followed. */
#define MIME_MAX_DEPTH 16

static pthread_once_t s_once = PTHREAD_ONCE_INIT;
static GMimeParserOptions *s_options; /* written once in s_init, read-only after */

static void s_init(void)
{
    static const char *fallback[] = {"UTF-8", "windows-1252", NULL};

    g_mime_init();
    s_options = g_mime_parser_options_new();
    g_mime_parser_options_set_rfc2047_compliance_mode(s_options, GMIME_RFC_COMPLIANCE_LOOSE);
    g_mime_parser_options_set_parameter_compliance_mode(s_options, GMIME_RFC_COMPLIANCE_LOOSE);
    g_mime_parser_options_set_address_compliance_mode(s_options, GMIME_RFC_COMPLIANCE_LOOSE);
    g_mime_parser_options_set_fallback_charsets(s_options, fallback);
}

static void s_ensure_init(void)
{
    pthread_once(&s_once, s_init);
}

/* Copies a GLib string into xalloc memory, frees the GLib one; NULL stays NULL. */
static char *s_from_glib(char *g)
{
    if (!g)
        return NULL;
    char *s = xstrdup(g);
    g_free(g);
    return s;
}

/* Valid UTF-8 copy of len bytes (invalid sequences become U+FFFD). */
static char *s_make_valid(const char *s, size_t len)
{
    if (g_utf8_validate(s, (gssize)len, NULL) && !memchr(s, 0, len))
        return xstrndup(s, len);
    /* g_utf8_make_valid stops at nothing: NULs inside would cut the text, so drop them */
    char *tmp = xmalloc(len + 1);
    size_t n = 0;
    for (size_t i = 0; i < len; i++)
        if (s[i])
            tmp[n++] = s[i];
    char *v = s_from_glib(g_utf8_make_valid(tmp, (gssize)n));
    xfree(tmp);
    return v;
}

static char *s_lower_ascii_dup(const char *s)
{
    if (!s)
        return NULL;
    char *d = xstrdup(s);
    for (char *p = d; *p; p++)
        if (*p >= 'A' && *p <= 'Z')
            *p = (char)(*p - 'A' + 'a');
    return d;
}

/* A parsed Content-Type: each field NULL when absent. */
typedef struct {
    char *type;        /* media type, lowercase */
    char *subtype;     /* media subtype, lowercase */
    char *report_type; /* report-type parameter, lowercase */
    char *boundary;    /* boundary parameter as given */
    char *charset;     /* charset parameter as given */
} s_ctype_t;

/* GMime's Content-Type parser, except that a value it cannot parse (which
   GMime turns into application/octet-stream) is NULL, so callers can apply
   RFC 2045's text/plain default instead. */
static GMimeContentType *s_gmime_ctype(const char *value)
{
    GMimeContentType *g = g_mime_content_type_parse(s_options, value);
    if (g && !strcasestr(value, "octet-stream")) {
        const char *sub = g_mime_content_type_get_media_subtype(g);
        if (sub && !strcasecmp(sub, "octet-stream")) {
            g_object_unref(g);
            g = NULL;
        }
    }
    return g;
}

/* Parses a Content-Type value with GMime (RFC 2045/2231 parameters). */
static int s_ctype_parse(const char *value, s_ctype_t *ct)
{
    memset(ct, 0, sizeof(*ct));
    if (!value)
        return -1;
    GMimeContentType *g = s_gmime_ctype(value);
    if (!g)
        return -1;
    const char *t = g_mime_content_type_get_media_type(g);
    const char *st = g_mime_content_type_get_media_subtype(g);
    if (!t || !st || !*t || !*st) {
        g_object_unref(g);
        return -1;
    }
    ct->type = s_lower_ascii_dup(t);
    ct->subtype = s_lower_ascii_dup(st);
    ct->report_type = s_lower_ascii_dup(g_mime_content_type_get_parameter(g, "report-type"));
    const char *b = g_mime_content_type_get_parameter(g, "boundary");
    ct->boundary = b && *b ? xstrdup(b) : NULL;
    const char *cs = g_mime_content_type_get_parameter(g, "charset");
    ct->charset = cs && *cs ? xstrdup(cs) : NULL;
    g_object_unref(g);
    return 0;
}

static void s_ctype_free(s_ctype_t *ct)
{
    xfree(ct->type);
    xfree(ct->subtype);
    xfree(ct->report_type);
    xfree(ct->boundary);
    xfree(ct->charset);
    memset(ct, 0, sizeof(*ct));
}

/* Finds the next delimiter line (delim is "--boundary") at or after p, at a
   line start. Returns its first byte or NULL; *close is 1 for the closing
   "--boundary--", *next the first byte of the line after it. */
static const char *s_next_delimiter(const char *p, const char *end, const char *delim, size_t dlen,
                                    int *close, const char **next)
{
    const char *start = p;
    while (p < end) {
        const char *d = memmem(p, (size_t)(end - p), delim, dlen);
        if (!d)
            return NULL;
        if (d == start || d[-1] == '\n') {
            const char *after = d + dlen;
            *close = end - after >= 2 && after[0] == '-' && after[1] == '-';
            if (*close)
                after += 2;
            /* only white space may follow on the delimiter line */
            const char *q = after;
            while (q < end && (*q == ' ' || *q == '\t' || *q == '\r'))
                q++;
            if (q >= end || *q == '\n') {
                *next = q < end ? q + 1 : end;
                return d;
            }
        }
        p = d + 1;
    }
    return NULL;
}

/* A part ends before the line break that precedes its delimiter. */
static size_t s_trim_before_delimiter(const char *start, const char *delim)
{
    const char *e = delim;
    if (e > start && e[-1] == '\n')
        e--;
    if (e > start && e[-1] == '\r')
        e--;
    return (size_t)(e - start);
}

static void s_entity(mime_tree_t *t, const char *buf, size_t len, int depth, int digest);

/* Splits a multipart body at its boundary and parses each part; a missing
   closing delimiter (a message cut at the body bound) ends the last part at
   the end of the data. The preamble and epilogue are skipped. */
static void s_multipart(mime_tree_t *t, const char *body, size_t len, const char *boundary,
                        int depth, int digest)
{
    const char *end = body + len, *next = NULL;
    char *delim = xasprintf("--%s", boundary);
    size_t dlen = strlen(delim);
    int close = 0;
    const char *d = s_next_delimiter(body, end, delim, dlen, &close, &next);
    while (d && !close && t->count < MIME_MAX_PARTS) {
        const char *part = next;
        const char *nd = s_next_delimiter(part, end, delim, dlen, &close, &next);
        size_t plen = nd ? s_trim_before_delimiter(part, nd) : (size_t)(end - part);
        s_entity(t, part, plen, depth + 1, digest);
        d = nd;
    }
    xfree(delim);
}

static int s_is_blank(char c)
{
    return c == ' ' || c == '\t' || c == '\r' || c == '\n';
}

/* Parses one entity (header block and body) into the tree, depth-first. */
static void s_entity(mime_tree_t *t, const char *buf, size_t len, int depth, int digest)
{
    if (depth > MIME_MAX_DEPTH || t->count >= MIME_MAX_PARTS)
        return;
    hdrs_t *hs = xmalloc(sizeof(*hs));
    hdrs_parse(buf, len, hs);
    char *ctv = hdrs_get(hs, "Content-Type");
    s_ctype_t ct;
    if (s_ctype_parse(ctv, &ct) < 0) {
        /* RFC 2046: the default is text/plain, or message/rfc822 in a digest */
        ct.type = xstrdup(digest ? "message" : "text");
        ct.subtype = xstrdup(digest ? "rfc822" : "plain");
    }
    xfree(ctv);
    mime_part_t *p = &t->parts[t->count++];
    memset(p, 0, sizeof(*p));
    p->depth = depth;
    p->type = ct.type;
    p->subtype = ct.subtype;
    p->report_type = ct.report_type;
    p->charset = ct.charset;
    ct.type = ct.subtype = ct.report_type = ct.charset = NULL;

    if (!strcmp(p->type, "multipart")) {
        if (ct.boundary)
            s_multipart(t, hs->body, hs->body_len, ct.boundary, depth,
                        !strcmp(p->subtype, "digest"));
    } else if (!strcmp(p->type, "message") &&
               (!strcmp(p->subtype, "rfc822") || !strcmp(p->subtype, "global"))) {
        /* the enclosed message: its header block, and whether a body follows;
           some MTAs encode it although RFC 2046 forbids it, so undo that */
        char *cte = hdrs_get(hs, "Content-Transfer-Encoding");
        size_t elen = hs->body_len;
        char *decoded = NULL;
        const char *enc = hs->body;
        if (cte && (!strcasecmp(cte, "base64") || !strcasecmp(cte, "quoted-printable"))) {
            decoded = mime_transfer_decode(cte, hs->body, elen, &elen);
            enc = decoded;
        }
        xfree(cte);
        hdrs_t *eh = xmalloc(sizeof(*eh));
        hdrs_parse(enc, elen, eh);
        size_t hlen = (size_t)(eh->body - enc);
        if (hlen > MIME_MAX_PART_BYTES)
            hlen = MIME_MAX_PART_BYTES;
        p->body = xstrndup(enc, hlen);
        p->body_len = strlen(p->body);
        for (size_t i = 0; i < eh->body_len && !p->enclosed_body; i++)
            p->enclosed_body = !s_is_blank(eh->body[i]);
        xfree(eh);
        xfree(decoded);
    } else {
        char *cte = hdrs_get(hs, "Content-Transfer-Encoding");
        size_t n = hs->body_len > MIME_MAX_PART_BYTES ? MIME_MAX_PART_BYTES : hs->body_len;
        p->body = mime_transfer_decode(cte, hs->body, n, &p->body_len);
        xfree(cte);
    }
    s_ctype_free(&ct);
    xfree(hs);
}

mime_tree_t *mime_tree_parse(const char *buf, size_t len)
{
    s_ensure_init();
    mime_tree_t *t = xcalloc(1, sizeof(*t));
    if (buf && len)
        s_entity(t, buf, len, 0, 0);
    return t;
}

void mime_tree_destroy(mime_tree_t **self_p)
{
    if (!self_p || !*self_p)
        return;
    mime_tree_t *t = *self_p;
    for (size_t i = 0; i < t->count; i++) {
        xfree(t->parts[i].type);
        xfree(t->parts[i].subtype);
        xfree(t->parts[i].report_type);
        xfree(t->parts[i].charset);
        xfree(t->parts[i].body);
    }
    xfree(t);
    *self_p = NULL;
}

size_t mime_tree_count(const mime_tree_t *self)
{
    return self->count;
}

const mime_part_t *mime_tree_part(const mime_tree_t *self, size_t i)
{
    return i < self->count ? &self->parts[i] : NULL;
}

char *mime_header_decode(const char *raw)
{
    s_ensure_init();
    if (!raw)
        return xstrdup("");
    char *g = g_mime_utils_header_decode_text(s_options, raw);
    if (!g)
        return xstrdup("");
    char *v = s_make_valid(g, strlen(g));
    g_free(g);
    return v;
}

char *mime_to_utf8(const char *charset, const char *text, size_t len)
{
    s_ensure_init();
    if (!text || !len)
        return xstrdup("");
    if (charset && *charset) {
        const char *iconv_name = g_mime_charset_iconv_name(charset);
        gsize out_len = 0;
        char *g = g_convert(text, (gssize)len, "UTF-8", iconv_name, NULL, &out_len, NULL);
        if (g) {
            char *v = s_make_valid(g, out_len);
            g_free(g);
            return v;
        }
    }
    if (g_utf8_validate(text, (gssize)len, NULL))
        return s_make_valid(text, len);
    char *g = g_mime_utils_decode_8bit(s_options, text, len);
    char *v = s_make_valid(g, strlen(g));
    g_free(g);
    return v;
}

char *mime_transfer_decode(const char *cte, const char *in, size_t len, size_t *out_len)
{
    s_ensure_init();
    GMimeContentEncoding enc =
        cte ? g_mime_content_encoding_from_string(cte) : GMIME_CONTENT_ENCODING_DEFAULT;
    if (enc != GMIME_CONTENT_ENCODING_BASE64 && enc != GMIME_CONTENT_ENCODING_QUOTEDPRINTABLE &&
        enc != GMIME_CONTENT_ENCODING_UUENCODE) {
        *out_len = len;
        char *copy = xmalloc(len + 1);
        if (len)
            memcpy(copy, in, len);
        copy[len] = 0;
        return copy;
    }
    GMimeEncoding state;
    g_mime_encoding_init_decode(&state, enc);
    char *out = xmalloc(g_mime_encoding_outlen(&state, len) + 1);
    size_t n = g_mime_encoding_flush(&state, in, len, out);
    out[n] = 0;
    *out_len = n;
    return out;
}

int mime_content_type(const char *value, char **type, char **subtype, char **report_type)
{
    s_ensure_init();
    if (type)
        *type = NULL;
    if (subtype)
        *subtype = NULL;
    if (report_type)
        *report_type = NULL;
    if (!value)
        return -1;
    GMimeContentType *ct = s_gmime_ctype(value);
    if (!ct)
        return -1;
    const char *t = g_mime_content_type_get_media_type(ct);
    const char *s = g_mime_content_type_get_media_subtype(ct);
    if (!t || !s) {
        g_object_unref(ct);
        return -1;
    }
    if (type)
        *type = s_lower_ascii_dup(t);
    if (subtype)
        *subtype = s_lower_ascii_dup(s);
    if (report_type)
        *report_type = s_lower_ascii_dup(g_mime_content_type_get_parameter(ct, "report-type"));
    g_object_unref(ct);
    return 0;
}

char *mime_content_charset(const char *value)
{
    s_ensure_init();
    s_ctype_t ct;
    if (s_ctype_parse(value, &ct) < 0)
        return NULL;
    char *cs = ct.charset;
    ct.charset = NULL;
    s_ctype_free(&ct);
    return cs;
}

char *mime_utf8_lower(const char *s)
{
    size_t len = strlen(s);
    if (!g_utf8_validate(s, (gssize)len, NULL)) {
        char *v = s_make_valid(s, len);
        char *l = s_from_glib(g_utf8_strdown(v, -1));
        xfree(v);
        return l;
    }
    return s_from_glib(g_utf8_strdown(s, (gssize)len));
}

int mime_utf8_valid(const char *s, size_t len)
{
    return g_utf8_validate(s, (gssize)len, NULL) ? 1 : 0;
}
