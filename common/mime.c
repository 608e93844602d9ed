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

#include "xalloc.h"

#include <gmime/gmime.h>
#include <pthread.h>
#include <string.h>

struct mime_tree {
    mime_part_t parts[MIME_MAX_PARTS]; /* the parts, depth-first */
    size_t count;                      /* parts used */
};

/* Deeper nesting than this is not followed (GMime's parser recurses too). */
#define MIME_MAX_DEPTH 16
/* A message announcing more multiparts than this is not handed to GMime. */
#define MIME_MAX_MULTIPARTS 100

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

static mime_part_t *s_add_part(mime_tree_t *t, GMimeObject *obj, int depth)
{
    if (t->count >= MIME_MAX_PARTS)
        return NULL;
    mime_part_t *p = &t->parts[t->count++];
    memset(p, 0, sizeof(*p));
    p->depth = depth;
    GMimeContentType *ct = g_mime_object_get_content_type(obj);
    const char *type = ct ? g_mime_content_type_get_media_type(ct) : NULL;
    const char *sub = ct ? g_mime_content_type_get_media_subtype(ct) : NULL;
    p->type = s_lower_ascii_dup(type ? type : "text");
    p->subtype = s_lower_ascii_dup(sub ? sub : "plain");
    if (ct) {
        p->report_type = s_lower_ascii_dup(g_mime_content_type_get_parameter(ct, "report-type"));
        const char *cs = g_mime_content_type_get_parameter(ct, "charset");
        p->charset = cs ? xstrdup(cs) : NULL;
    }
    return p;
}

/* The transfer-decoded content of a leaf, at most MIME_MAX_PART_BYTES. */
static void s_leaf_content(mime_part_t *p, GMimePart *part)
{
    GMimeDataWrapper *w = g_mime_part_get_content(part);
    if (!w)
        return;
    GMimeStream *ms = g_mime_stream_mem_new();
    g_mime_data_wrapper_write_to_stream(w, ms);
    GByteArray *ba = g_mime_stream_mem_get_byte_array(GMIME_STREAM_MEM(ms));
    size_t n = ba ? ba->len : 0;
    if (n > MIME_MAX_PART_BYTES)
        n = MIME_MAX_PART_BYTES;
    p->body = xmalloc(n + 1);
    if (n)
        memcpy(p->body, ba->data, n);
    p->body[n] = 0;
    p->body_len = n;
    g_object_unref(ms);
}

/* The header block of an enclosed message, "Name: raw value" lines. */
static void s_enclosed_headers(mime_part_t *p, GMimeMessage *em)
{
    char *h = g_mime_object_get_headers(GMIME_OBJECT(em), NULL);
    size_t n = h ? strlen(h) : 0;
    if (n > MIME_MAX_PART_BYTES)
        n = MIME_MAX_PART_BYTES;
    p->body = xstrndup(h ? h : "", n);
    p->body_len = n;
    g_free(h);

    GMimeObject *body = g_mime_message_get_mime_part(em);
    if (GMIME_IS_MULTIPART(body)) {
        p->enclosed_body = g_mime_multipart_get_count(GMIME_MULTIPART(body)) > 0;
    } else if (GMIME_IS_PART(body)) {
        GMimeDataWrapper *w = g_mime_part_get_content(GMIME_PART(body));
        GMimeStream *st = w ? g_mime_data_wrapper_get_stream(w) : NULL;
        p->enclosed_body = st && g_mime_stream_length(st) > 2;
    } else if (body) {
        p->enclosed_body = 1;
    }
}

static void s_walk(mime_tree_t *t, GMimeObject *obj, int depth)
{
    if (!obj || depth > MIME_MAX_DEPTH)
        return;
    mime_part_t *p = s_add_part(t, obj, depth);
    if (!p)
        return;
    if (GMIME_IS_MULTIPART(obj)) {
        GMimeMultipart *mp = GMIME_MULTIPART(obj);
        int n = g_mime_multipart_get_count(mp);
        for (int i = 0; i < n; i++)
            s_walk(t, g_mime_multipart_get_part(mp, i), depth + 1);
    } else if (GMIME_IS_MESSAGE_PART(obj)) {
        GMimeMessage *em = g_mime_message_part_get_message(GMIME_MESSAGE_PART(obj));
        if (em)
            s_enclosed_headers(p, em);
    } else if (GMIME_IS_PART(obj)) {
        s_leaf_content(p, GMIME_PART(obj));
    }
}

/* Counts "multipart/" announcements (any case of the first letter) up to limit. */
static int s_too_nested(const char *buf, size_t len)
{
    int n = 0;
    const char *p = buf, *end = buf + len;
    while (p < end && (p = memmem(p, (size_t)(end - p), "ultipart/", 9)) != NULL) {
        if (++n > MIME_MAX_MULTIPARTS)
            return 1;
        p += 9;
    }
    return 0;
}

mime_tree_t *mime_tree_parse(const char *buf, size_t len)
{
    s_ensure_init();
    mime_tree_t *t = xcalloc(1, sizeof(*t));
    if (!buf || !len || s_too_nested(buf, len))
        return t;
    GMimeStream *st = g_mime_stream_mem_new_with_buffer(buf, len);
    GMimeParser *parser = g_mime_parser_new_with_stream(st);
    g_mime_parser_set_format(parser, GMIME_FORMAT_MESSAGE);
    GMimeMessage *m = g_mime_parser_construct_message(parser, s_options);
    if (m) {
        s_walk(t, g_mime_message_get_mime_part(m), 0);
        g_object_unref(m);
    }
    g_object_unref(parser);
    g_object_unref(st);
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
    GMimeContentType *ct = g_mime_content_type_parse(s_options, value);
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
