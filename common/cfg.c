/*
 * cfg - typed "key = value" configuration files; see cfg.h for the syntax.
 *
 * The file is read whole (bounded by CFG_MAX_FILE) and split into logical
 * lines by lines.c, shared with the rule tables (a line starting with a blank
 * continues the previous one, joined by one space). Each logical line is a
 * section header or a key = value pair; values go through the typed parsers
 * below, the same ones that parse built-in defaults and bounds. All
 * errors are collected, so "-n" shows every mistake at once; on any error the
 * half-filled struct is freed again, so callers never see a partial config.
 */
#include "cfg.h"

#include <assert.h>
#include <ctype.h>
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "lines.h"
#include "slurp.h"
#include "xalloc.h"

#define CFG_MAX_FILE   (4 * 1024 * 1024) /* a config larger than this is a mistake */
#define CFG_MAX_ERRORS 50                /* stop collecting after this many */

/* A unit suffix and its size in the base unit (ms or bytes). */
typedef struct {
    const char *suffix; /* text after the number */
    int64_t mult;       /* base units per one of it */
} s_unit_t;

static const s_unit_t s_duration_units[] = {
    {"ms", 1},         {"s", 1000},           {"m", 60 * 1000}, {"h", 3600000LL},
    {"d", 86400000LL}, {"w", 7 * 86400000LL}, {NULL, 0},
};

static const s_unit_t s_size_units[] = {
    {"", 1},
    {"b", 1},
    {"k", 1024},
    {"kb", 1024},
    {"m", 1024 * 1024},
    {"mb", 1024 * 1024},
    {"g", 1024LL * 1024 * 1024},
    {"gb", 1024LL * 1024 * 1024},
    {"t", 1024LL * 1024 * 1024 * 1024},
    {"tb", 1024LL * 1024 * 1024 * 1024},
    {NULL, 0},
};

/* Loader state for one file. */
typedef struct {
    const cfg_schema_t *schema; /* what the file may contain */
    const char *name;           /* FILE in messages */
    char *err;                  /* caller's error buffer */
    size_t errlen;              /* its size */
    size_t errused;             /* bytes written so far */
    int nerrors;                /* errors seen */
    void *out;                  /* global struct being filled */
    int *global_seen;           /* per global key: line it was set on, 0 = not set */
    const cfg_section_t *sec;   /* current section type, NULL at global level */
    void *sec_base;             /* current section struct */
    int *sec_seen;              /* per section key: line it was set on (its head's lines) */
    bool sec_bad;               /* current header was bad: skip its keys quietly */
} s_ctx_t;

static void s_verr(char *err, size_t errlen, size_t *used, const char *fmt, va_list ap)
    __attribute__((format(printf, 4, 0)));
static void s_verr(char *err, size_t errlen, size_t *used, const char *fmt, va_list ap)
{
    if (err == NULL || errlen == 0 || *used >= errlen - 1)
        return;
    if (*used > 0)
        err[(*used)++] = '\n';
    int n = vsnprintf(err + *used, errlen - *used, fmt, ap);
    if (n < 0)
        n = 0;
    *used += (size_t)n;
    if (*used >= errlen)
        *used = errlen - 1;
    err[*used] = '\0';
}

static void s_appenderr(char *err, size_t errlen, size_t *used, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
static void s_appenderr(char *err, size_t errlen, size_t *used, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    s_verr(err, errlen, used, fmt, ap);
    va_end(ap);
}

static void s_seterr(char *err, size_t errlen, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static void s_seterr(char *err, size_t errlen, const char *fmt, ...)
{
    size_t used = 0;
    va_list ap;
    va_start(ap, fmt);
    s_verr(err, errlen, &used, fmt, ap);
    va_end(ap);
}

static void s_error(s_ctx_t *ctx, int line, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static void s_error(s_ctx_t *ctx, int line, const char *fmt, ...)
{
    char msg[1024];
    va_list ap;

    ctx->nerrors++;
    if (ctx->nerrors > CFG_MAX_ERRORS)
        return;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    if (ctx->nerrors == CFG_MAX_ERRORS)
        snprintf(msg, sizeof(msg), "too many errors, giving up");
    s_appenderr(ctx->err, ctx->errlen, &ctx->errused, "%s:%d: %s", ctx->name, line, msg);
}

static char *s_trim(char *s)
{
    while (*s && isspace((unsigned char)*s))
        s++;
    char *e = s + strlen(s);
    while (e > s && isspace((unsigned char)e[-1]))
        *--e = '\0';
    return s;
}

/* Number followed by an optional unit from units; bare numbers use unit. */
static int s_parse_units(const char *text, const s_unit_t *units, bool nocase, const char *unit,
                         const char *what, int64_t *out, char *err, size_t errlen)
{
    const char *p = text;
    while (isspace((unsigned char)*p))
        p++;
    if (!isdigit((unsigned char)*p)) {
        s_seterr(err, errlen, "\"%s\" is not a %s (a number with an optional unit)", text, what);
        return -1;
    }
    errno = 0;
    char *end;
    unsigned long long n = strtoull(p, &end, 10);
    if (errno == ERANGE || n > INT64_MAX) {
        s_seterr(err, errlen, "\"%s\" is too large", text);
        return -1;
    }
    char suffix[8];
    size_t sl = 0;
    while (*end && !isspace((unsigned char)*end) && sl < sizeof(suffix) - 1)
        suffix[sl++] = *end++;
    suffix[sl] = '\0';
    while (isspace((unsigned char)*end))
        end++;
    if (*end != '\0') {
        s_seterr(err, errlen, "\"%s\" has trailing text", text);
        return -1;
    }
    const char *want = sl > 0 ? suffix : (unit ? unit : "");
    for (const s_unit_t *u = units; u->suffix; u++) {
        if (nocase ? strcasecmp(u->suffix, want) == 0 : strcmp(u->suffix, want) == 0) {
            if (u->mult != 0 && (int64_t)n > INT64_MAX / u->mult) {
                s_seterr(err, errlen, "\"%s\" is too large", text);
                return -1;
            }
            *out = (int64_t)n * u->mult;
            return 0;
        }
    }
    char known[128] = "";
    size_t kl = 0;
    for (const s_unit_t *u = units; u->suffix; u++) {
        if (*u->suffix == '\0')
            continue;
        int w = snprintf(known + kl, sizeof(known) - kl, "%s%s", kl ? ", " : "", u->suffix);
        if (w > 0 && (size_t)w < sizeof(known) - kl)
            kl += (size_t)w;
    }
    s_seterr(err, errlen, "\"%s\": unknown unit \"%s\" (use %s)", text, want, known);
    return -1;
}

int cfg_parse_duration(const char *text, const char *unit, int64_t *ms_out, char *err,
                       size_t errlen)
{
    return s_parse_units(text, s_duration_units, false, unit ? unit : "s", "duration", ms_out, err,
                         errlen);
}

int cfg_parse_size(const char *text, const char *unit, int64_t *bytes_out, char *err, size_t errlen)
{
    return s_parse_units(text, s_size_units, true, unit, "size", bytes_out, err, errlen);
}

int cfg_parse_bool(const char *text, bool *out)
{
    static const char *const yes[] = {"yes", "true", "on", "1", NULL};
    static const char *const no[] = {"no", "false", "off", "0", NULL};
    for (int i = 0; yes[i]; i++) {
        if (strcasecmp(text, yes[i]) == 0) {
            *out = true;
            return 0;
        }
        if (strcasecmp(text, no[i]) == 0) {
            *out = false;
            return 0;
        }
    }
    return -1;
}

static int s_parse_int(const char *text, int64_t *out, char *err, size_t errlen)
{
    errno = 0;
    char *end;
    long long n = strtoll(text, &end, 10);
    if (end == text || *text == '\0' || isspace((unsigned char)*text)) {
        s_seterr(err, errlen, "\"%s\" is not an integer", text);
        return -1;
    }
    while (isspace((unsigned char)*end))
        end++;
    if (*end != '\0') {
        s_seterr(err, errlen, "\"%s\" is not an integer", text);
        return -1;
    }
    if (errno == ERANGE) {
        s_seterr(err, errlen, "\"%s\" is out of range", text);
        return -1;
    }
    *out = n;
    return 0;
}

void cfg_format_duration(int64_t ms, char *buf, size_t len)
{
    const s_unit_t *best = &s_duration_units[0];
    for (const s_unit_t *u = s_duration_units; u->suffix; u++)
        if (ms != 0 && ms % u->mult == 0)
            best = u;
    snprintf(buf, len, "%lld%s", (long long)(ms / best->mult), best->suffix);
}

/* Parses a number-like value (int, duration, size) of p. */
static int s_parse_number(const cfg_param_t *p, const char *text, int64_t *out, char *err,
                          size_t errlen)
{
    switch (p->type) {
    case CFG_T_INT:
        return s_parse_int(text, out, err, errlen);
    case CFG_T_DURATION:
        return cfg_parse_duration(text, p->unit, out, err, errlen);
    case CFG_T_SIZE:
        return cfg_parse_size(text, p->unit, out, err, errlen);
    default:
        return -1;
    }
}

static void s_list_free(cfg_list_t *l)
{
    for (size_t i = 0; i < l->n; i++)
        xfree(l->v[i]);
    xfree(l->v);
    l->n = 0;
    l->v = NULL;
}

static void s_list_split(const char *text, cfg_list_t *out)
{
    const char *sep = ", \t\r\n";
    size_t cap = 0;
    out->n = 0;
    out->v = NULL;
    const char *p = text;
    for (;;) {
        p += strspn(p, sep);
        if (*p == '\0')
            break;
        size_t wl = strcspn(p, sep);
        if (out->n + 2 > cap) {
            cap = cap ? cap * 2 : 4;
            out->v = xrealloc(out->v, cap * sizeof(char *));
        }
        out->v[out->n++] = xstrndup(p, wl);
        out->v[out->n] = NULL;
        p += wl;
    }
}

/* Frees whatever the field of p holds in base and zeroes it. */
static void s_field_free(const cfg_param_t *p, void *base)
{
    char *f = (char *)base + p->offset;
    if (p->type == CFG_T_STRING) {
        char **s = (char **)(void *)f;
        xfree(*s);
        *s = NULL;
    } else if (p->type == CFG_T_LIST) {
        s_list_free((cfg_list_t *)(void *)f);
    }
}

static void s_describe_bounds(const cfg_param_t *p, char *buf, size_t len)
{
    if (p->min && p->max)
        snprintf(buf, len, "%s .. %s", p->min, p->max);
    else if (p->min)
        snprintf(buf, len, ">= %s", p->min);
    else if (p->max)
        snprintf(buf, len, "<= %s", p->max);
    else
        buf[0] = '\0';
}

/*
 * Parses text as the value of p and stores it in base, replacing what was
 * there. Returns 0, or -1 with the reason in err (field untouched).
 */
static int s_set_value(const cfg_param_t *p, void *base, const char *text, char *err, size_t errlen)
{
    char *f = (char *)base + p->offset;

    switch (p->type) {
    case CFG_T_STRING: {
        char **s = (char **)(void *)f;
        xfree(*s);
        *s = xstrdup(text);
        return 0;
    }
    case CFG_T_BOOL: {
        bool b;
        if (cfg_parse_bool(text, &b) < 0) {
            s_seterr(err, errlen, "\"%s\" is not a boolean (use yes or no)", text);
            return -1;
        }
        *(bool *)(void *)f = b;
        return 0;
    }
    case CFG_T_INT:
    case CFG_T_DURATION:
    case CFG_T_SIZE: {
        int64_t v, bound;
        char why[256];
        if (s_parse_number(p, text, &v, err, errlen) < 0)
            return -1;
        if ((p->min && (s_parse_number(p, p->min, &bound, why, sizeof(why)) < 0 || v < bound)) ||
            (p->max && (s_parse_number(p, p->max, &bound, why, sizeof(why)) < 0 || v > bound))) {
            char b[128];
            s_describe_bounds(p, b, sizeof(b));
            s_seterr(err, errlen, "\"%s\" is out of bounds (%s)", text, b);
            return -1;
        }
        *(int64_t *)(void *)f = v;
        return 0;
    }
    case CFG_T_ENUM: {
        for (int i = 0; p->words && p->words[i]; i++) {
            if (strcasecmp(p->words[i], text) == 0) {
                *(int *)(void *)f = i;
                return 0;
            }
        }
        char list[256] = "";
        size_t l = 0;
        for (int i = 0; p->words && p->words[i]; i++) {
            int w = snprintf(list + l, sizeof(list) - l, "%s%s", i ? ", " : "", p->words[i]);
            if (w > 0 && (size_t)w < sizeof(list) - l)
                l += (size_t)w;
        }
        s_seterr(err, errlen, "\"%s\" is not one of: %s", text, list);
        return -1;
    }
    case CFG_T_LIST: {
        cfg_list_t *l = (cfg_list_t *)(void *)f;
        s_list_free(l);
        s_list_split(text, l);
        return 0;
    }
    }
    s_seterr(err, errlen, "bad parameter type %d", (int)p->type);
    return -1;
}

/* Fills every default of params into base; -1 (errors in ctx) on a broken table. */
static int s_fill_defaults(s_ctx_t *ctx, const cfg_param_t *params, void *base)
{
    int rc = 0;
    for (const cfg_param_t *p = params; p->name; p++) {
        char why[512];
        const char *def = p->def;
        if (def == NULL) {
            if (p->type == CFG_T_STRING || p->type == CFG_T_LIST || p->type == CFG_T_BOOL)
                continue;
            if (p->type == CFG_T_ENUM) {
                *(int *)(void *)((char *)base + p->offset) = 0;
                continue;
            }
            def = "0";
        }
        if (s_set_value(p, base, def, why, sizeof(why)) < 0) {
            s_error(ctx, 0, "built-in default of \"%s\": %s", p->name, why);
            rc = -1;
        }
        int64_t bound;
        if ((p->min && s_parse_number(p, p->min, &bound, why, sizeof(why)) < 0) ||
            (p->max && s_parse_number(p, p->max, &bound, why, sizeof(why)) < 0)) {
            s_error(ctx, 0, "built-in bound of \"%s\": %s", p->name, why);
            rc = -1;
        }
    }
    return rc;
}

static size_t s_count(const cfg_param_t *params)
{
    size_t n = 0;
    while (params[n].name)
        n++;
    return n;
}

static const cfg_param_t *s_find(const cfg_param_t *params, const char *key, size_t *idx)
{
    for (size_t i = 0; params && params[i].name; i++) {
        if (strcmp(params[i].name, key) == 0) {
            *idx = i;
            return &params[i];
        }
    }
    return NULL;
}

static void s_free_params(const cfg_param_t *params, void *base)
{
    for (const cfg_param_t *p = params; p->name; p++)
        s_field_free(p, base);
}

void cfg_free(const cfg_schema_t *schema, void *out)
{
    if (out == NULL)
        return;
    s_free_params(schema->params, out);
    if (schema->global_head) {
        cfg_head_t *head = out;
        xfree(head->lines);
        head->lines = NULL;
    }
    for (const cfg_section_t *s = schema->sections; s && s->type; s++) {
        char **arr = (char **)(void *)((char *)out + s->array_offset);
        size_t *count = (size_t *)(void *)((char *)out + s->count_offset);
        for (size_t i = 0; *arr && i < *count; i++) {
            void *elem = *arr + i * s->size;
            cfg_head_t *head = elem;
            s_free_params(s->params, elem);
            xfree(head->name);
            xfree(head->origin);
            xfree(head->lines);
        }
        xfree(*arr);
        *arr = NULL;
        *count = 0;
    }
}

int cfg_defaults(const cfg_schema_t *schema, void *out, char *err, size_t errlen)
{
    s_ctx_t ctx = {.schema = schema, .name = "(built-in)", .err = err, .errlen = errlen};
    if (err && errlen)
        err[0] = '\0';
    if (s_fill_defaults(&ctx, schema->params, out) < 0) {
        cfg_free(schema, out);
        return -1;
    }
    return 0;
}

static bool s_valid_word(const char *s)
{
    if (*s == '\0')
        return false;
    for (; *s; s++)
        if (!isalnum((unsigned char)*s) && *s != '_' && *s != '-' && *s != '.')
            return false;
    return true;
}

/* "[type name]" */
static void s_header(s_ctx_t *ctx, char *text, int line, bool continued)
{
    ctx->sec = NULL;
    ctx->sec_base = NULL;
    ctx->sec_bad = true;
    ctx->sec_seen = NULL; /* the previous section's head keeps its lines */

    size_t len = strlen(text);
    if (continued) {
        s_error(ctx, line, "section header continues on the next line");
        return;
    }
    if (text[len - 1] != ']') {
        s_error(ctx, line, "section header \"%s\" lacks the closing \"]\"", text);
        return;
    }
    text[len - 1] = '\0';
    char *inner = s_trim(text + 1);
    char *name = inner + strcspn(inner, " \t");
    if (*name) {
        *name++ = '\0';
        name = s_trim(name);
    }
    const cfg_section_t *sec = NULL;
    for (const cfg_section_t *s = ctx->schema->sections; s && s->type; s++)
        if (strcmp(s->type, inner) == 0)
            sec = s;
    if (sec == NULL) {
        s_error(ctx, line, "unknown section type \"%s\"", inner);
        return;
    }
    if (*name == '\0') {
        s_error(ctx, line, "section [%s] needs a name: [%s NAME]", inner, inner);
        return;
    }
    if (!s_valid_word(name)) {
        s_error(ctx, line, "bad section name \"%s\" (use letters, digits, _ - .)", name);
        return;
    }
    char **arr = (char **)(void *)((char *)ctx->out + sec->array_offset);
    size_t *count = (size_t *)(void *)((char *)ctx->out + sec->count_offset);
    for (size_t i = 0; i < *count; i++) {
        cfg_head_t *h = (cfg_head_t *)(void *)(*arr + i * sec->size);
        if (strcmp(h->name, name) == 0) {
            s_error(ctx, line, "duplicate section [%s %s] (first at %s)", sec->type, name,
                    h->origin);
            return;
        }
    }
    *arr = xrealloc(*arr, (*count + 1) * sec->size);
    void *elem = *arr + *count * sec->size;
    memset(elem, 0, sec->size);
    (*count)++;
    cfg_head_t *head = elem;
    head->name = xstrdup(name);
    head->origin = xasprintf("%s:%d", ctx->name, line);
    s_fill_defaults(ctx, sec->params, elem);
    ctx->sec = sec;
    ctx->sec_base = elem;
    ctx->sec_seen = xcalloc(s_count(sec->params) + 1, sizeof(int));
    head->lines = ctx->sec_seen;
    ctx->sec_bad = false;
}

static void s_keyval(s_ctx_t *ctx, char *text, int line)
{
    char *eq = strchr(text, '=');
    if (eq == NULL) {
        s_error(ctx, line, "missing \"=\" in \"%s\" (expected key = value)", text);
        return;
    }
    *eq = '\0';
    char *key = s_trim(text);
    char *value = s_trim(eq + 1);
    if (*key == '\0') {
        s_error(ctx, line, "missing key before \"=\"");
        return;
    }
    const cfg_param_t *params;
    void *base;
    int *seen;
    size_t idx;
    if (ctx->sec_bad) {
        return; /* inside a section whose header was already reported */
    } else if (ctx->sec) {
        params = ctx->sec->params;
        base = ctx->sec_base;
        seen = ctx->sec_seen;
    } else {
        params = ctx->schema->params;
        base = ctx->out;
        seen = ctx->global_seen;
    }
    const cfg_param_t *p = s_find(params, key, &idx);
    if (p == NULL) {
        const cfg_head_t *h = ctx->sec_base;
        if (ctx->sec && s_find(ctx->schema->params, key, &idx))
            s_error(ctx, line,
                    "key \"%s\" is not valid in section [%s %s] (global keys go "
                    "before the first section)",
                    key, ctx->sec->type, h->name);
        else if (ctx->sec)
            s_error(ctx, line, "unknown key \"%s\" in section [%s %s]", key, ctx->sec->type,
                    h->name);
        else
            s_error(ctx, line, "unknown key \"%s\"", key);
        return;
    }
    if (seen[idx] != 0) {
        s_error(ctx, line, "duplicate key \"%s\" (first set at line %d)", key, seen[idx]);
        return;
    }
    seen[idx] = line;
    char why[512];
    if (s_set_value(p, base, value, why, sizeof(why)) < 0)
        s_error(ctx, line, "bad value for \"%s\": %s", key, why);
}

static void s_logical(s_ctx_t *ctx, char *text, int line, bool continued)
{
    if (text[0] == '[')
        s_header(ctx, text, line, continued);
    else
        s_keyval(ctx, text, line);
}

int cfg_parse(const cfg_schema_t *schema, const char *text, size_t len, const char *name, void *out,
              char *err, size_t errlen)
{
    s_ctx_t ctx = {.schema = schema, .name = name, .err = err, .errlen = errlen, .out = out};
    if (err && errlen)
        err[0] = '\0';

    s_fill_defaults(&ctx, schema->params, out);
    ctx.global_seen = xcalloc(s_count(schema->params) + 1, sizeof(int));

    lines_t *lines = lines_new(text, len);
    lines_item_t it;
    lines_event_t ev;
    while ((ev = lines_next(lines, &it)) != LINES_END) {
        if (ev == LINES_NUL) {
            s_error(&ctx, it.line, "NUL byte in line");
        } else if (ev == LINES_ORPHAN) {
            s_error(&ctx, it.line, "continuation line without a key to continue");
        } else {
            s_logical(&ctx, s_trim(it.text), it.line, it.continued);
            xfree(it.text);
        }
    }
    lines_destroy(&lines);
    if (schema->global_head)
        ((cfg_head_t *)out)->lines = ctx.global_seen;
    else
        xfree(ctx.global_seen);
    if (ctx.nerrors > 0) {
        cfg_free(schema, out);
        return -1;
    }
    return 0;
}

int cfg_load(const cfg_schema_t *schema, const char *path, void *out, char *err, size_t errlen)
{
    char why[256];
    size_t len = 0;
    char *buf = slurp_file(path, CFG_MAX_FILE, SLURP_REFUSE_LARGE, &len, NULL, why, sizeof(why));
    if (!buf) {
        s_seterr(err, errlen, "%s: %s", path, why);
        return -1;
    }
    int rc = cfg_parse(schema, buf, len, path, out, err, errlen);
    xfree(buf);
    return rc;
}

int cfg_set(const cfg_schema_t *schema, void *out, const char *key, const char *value, char *err,
            size_t errlen)
{
    size_t idx;
    const cfg_param_t *p = s_find(schema->params, key, &idx);
    if (err && errlen)
        err[0] = '\0';
    if (p == NULL) {
        s_seterr(err, errlen, "unknown key \"%s\"", key);
        return -1;
    }
    char *v = xstrdup(value);
    char why[512];
    int rc = s_set_value(p, out, s_trim(v), why, sizeof(why));
    if (rc < 0)
        s_seterr(err, errlen, "bad value for \"%s\": %s", key, why);
    else if (schema->global_head && ((cfg_head_t *)out)->lines)
        ((cfg_head_t *)out)->lines[idx] = 0; /* no longer the file's: no line to blame */
    xfree(v);
    return rc;
}

/* Whether the field of p differs in a and b. */
static bool s_field_differs(const cfg_param_t *p, const void *a, const void *b)
{
    const char *fa = (const char *)a + p->offset, *fb = (const char *)b + p->offset;
    switch (p->type) {
    case CFG_T_STRING: {
        const char *sa = *(char *const *)(const void *)fa, *sb = *(char *const *)(const void *)fb;
        return strcmp(sa ? sa : "", sb ? sb : "") != 0;
    }
    case CFG_T_BOOL:
        return memcmp(fa, fb, sizeof(bool)) != 0;
    case CFG_T_ENUM:
        return memcmp(fa, fb, sizeof(int)) != 0;
    case CFG_T_LIST: {
        const cfg_list_t *la = (const cfg_list_t *)(const void *)fa;
        const cfg_list_t *lb = (const cfg_list_t *)(const void *)fb;
        if (la->n != lb->n)
            return true;
        for (size_t i = 0; i < la->n; i++)
            if (strcmp(la->v[i], lb->v[i]) != 0)
                return true;
        return false;
    }
    default: /* the int64_t types */
        return memcmp(fa, fb, sizeof(int64_t)) != 0;
    }
}

/* Copies the field of p from src into dst (dst's old value freed). */
static void s_field_copy(const cfg_param_t *p, void *dst, const void *src)
{
    char *fd = (char *)dst + p->offset;
    const char *fs = (const char *)src + p->offset;
    s_field_free(p, dst);
    switch (p->type) {
    case CFG_T_STRING: {
        const char *ss = *(char *const *)(const void *)fs;
        *(char **)(void *)fd = ss ? xstrdup(ss) : NULL;
        break;
    }
    case CFG_T_BOOL:
        memcpy(fd, fs, sizeof(bool));
        break;
    case CFG_T_ENUM:
        memcpy(fd, fs, sizeof(int));
        break;
    case CFG_T_LIST: {
        const cfg_list_t *ls = (const cfg_list_t *)(const void *)fs;
        cfg_list_t *ld = (cfg_list_t *)(void *)fd;
        ld->n = ls->n;
        ld->v = ls->n ? xcalloc(ls->n + 1, sizeof(char *)) : NULL;
        for (size_t i = 0; i < ls->n; i++)
            ld->v[i] = xstrdup(ls->v[i]);
        break;
    }
    default:
        memcpy(fd, fs, sizeof(int64_t));
        break;
    }
}

const char *cfg_where(const cfg_head_t *head, const cfg_param_t *params, const char *key,
                      const char *file, const char *fallback, char *buf, size_t len)
{
    int line = cfg_line(head, params, key);
    if (line > 0)
        snprintf(buf, len, "%s:%d", file, line);
    else
        snprintf(buf, len, "%s", fallback ? fallback : file);
    return buf;
}

void cfg_err_line(char *err, size_t errlen, const char *at, const char *fmt, ...)
{
    char msg[1024];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    size_t used = err ? strnlen(err, errlen) : 0;
    s_appenderr(err, errlen, &used, "%s: %s", at, msg);
}

int cfg_keep(const cfg_param_t *params, const char *const *keys, void *fresh, const void *running,
             char *changed, size_t changed_len)
{
    int n = 0;
    size_t used = 0;
    if (changed_len)
        changed[0] = '\0';
    for (size_t k = 0; keys[k]; k++) {
        const cfg_param_t *p = params;
        while (p->name && strcmp(p->name, keys[k]) != 0)
            p++;
        assert(p->name); /* a key of the table */
        if (!s_field_differs(p, fresh, running))
            continue;
        s_field_copy(p, fresh, running);
        n++;
        int w = snprintf(changed + used, changed_len - used, "%s%s", used ? " " : "", p->name);
        if (w > 0 && (size_t)w < changed_len - used)
            used += (size_t)w;
    }
    return n;
}

int cfg_line(const cfg_head_t *head, const cfg_param_t *params, const char *key)
{
    size_t idx;
    if (head == NULL || head->lines == NULL || s_find(params, key, &idx) == NULL)
        return 0;
    return head->lines[idx];
}

/* A short description of the type for help text. */
static void s_type_text(const cfg_param_t *p, char *buf, size_t len)
{
    char b[128];
    s_describe_bounds(p, b, sizeof(b));
    switch (p->type) {
    case CFG_T_STRING:
        snprintf(buf, len, "text");
        return;
    case CFG_T_BOOL:
        snprintf(buf, len, "yes or no");
        return;
    case CFG_T_INT:
        snprintf(buf, len, "integer%s%s", *b ? ", " : "", b);
        return;
    case CFG_T_DURATION:
        snprintf(buf, len, "duration, ms s m h d w, bare number = %s%s%s", p->unit ? p->unit : "s",
                 *b ? ", " : "", b);
        return;
    case CFG_T_SIZE:
        snprintf(buf, len, "size, k m g, bare number = %s%s%s",
                 p->unit && *p->unit ? p->unit : "bytes", *b ? ", " : "", b);
        return;
    case CFG_T_ENUM: {
        size_t l = (size_t)snprintf(buf, len, "one of:");
        for (int i = 0; p->words && p->words[i] && l < len; i++)
            l += (size_t)snprintf(buf + l, len - l, " %s", p->words[i]);
        return;
    }
    case CFG_T_LIST:
        snprintf(buf, len, "list, separated by commas or blanks");
        return;
    }
    buf[0] = '\0';
}

static void s_sample_params(const cfg_param_t *params, FILE *fp)
{
    for (const cfg_param_t *p = params; p->name; p++) {
        char t[512];
        s_type_text(p, t, sizeof(t));
        const char *def = p->def ? p->def : "";
        fprintf(fp, "# %s (%s)\n#%s =%s%s\n\n", p->help ? p->help : "", t, p->name, *def ? " " : "",
                def);
    }
}

void cfg_print_sample(const cfg_schema_t *schema, FILE *fp)
{
    s_sample_params(schema->params, fp);
    for (const cfg_section_t *s = schema->sections; s && s->type; s++) {
        fprintf(fp,
                "# [%s NAME] sections: %s\n# Each may appear any number of times with a "
                "distinct NAME; keys not given take these defaults.\n#[%s NAME]\n\n",
                s->type, s->help ? s->help : "", s->type);
        s_sample_params(s->params, fp);
    }
}

static void s_help_params(const cfg_param_t *params, FILE *fp, const char *indent)
{
    for (const cfg_param_t *p = params; p->name; p++) {
        char t[512], kv[256];
        s_type_text(p, t, sizeof(t));
        snprintf(kv, sizeof(kv), "%s = %s", p->name, p->def ? p->def : "");
        fprintf(fp, "%s%-36s %s (%s)\n", indent, kv, p->help ? p->help : "", t);
    }
}

void cfg_print_help(const cfg_schema_t *schema, FILE *fp)
{
    s_help_params(schema->params, fp, "  ");
    for (const cfg_section_t *s = schema->sections; s && s->type; s++) {
        fprintf(fp, "  [%s NAME]: %s\n", s->type, s->help ? s->help : "");
        s_help_params(s->params, fp, "    ");
    }
}
