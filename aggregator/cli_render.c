/*
 * cli_render - the control reply documents as tables for people
 *
 * See cli_render.h. A tiny table builder (cells copied, columns sized to fit,
 * numbers right-aligned) and one function per document.
 */
#include <inttypes.h>
#include <locale.h>
#include <stdbool.h>
#include <string.h>
#include <time.h>
#include <wchar.h>

#include "cli_args.h"
#include "cli_key.h"
#include "cli_render.h"
#include "xalloc.h"

#define S_CELL_MAX   64 /* widest cell in a table, in columns (longer values are cut with "...") */
#define S_COLS_MAX   12 /* columns of one table */
#define S_FIELD_SIZE 320

/* ---- a table ---- */

typedef struct {
    int ncols;                    /* columns */
    const char *head[S_COLS_MAX]; /* column titles (static) */
    bool right[S_COLS_MAX];       /* right-align (numbers) */
    char **cells;                 /* nrows * ncols copies */
    size_t nrows;                 /* rows filled */
    size_t cap;                   /* rows allocated */
} s_table_t;

/* Starts a table; titles ending in '>' are right-aligned (the '>' is not printed). */
static void s_table_init(s_table_t *t, int ncols, const char *const *titles)
{
    memset(t, 0, sizeof(*t));
    t->ncols = ncols;
    for (int c = 0; c < ncols; c++) {
        t->head[c] = titles[c];
        size_t n = strlen(titles[c]);
        t->right[c] = n > 0 && titles[c][n - 1] == '>';
    }
}

/* The next character of s at *i (advanced past it): its code point, or -1 for a byte
 * that does not start a well-formed UTF-8 sequence (shown as one column). */
static long s_utf8_next(const char *s, size_t *i)
{
    const unsigned char *p = (const unsigned char *)s + *i;
    int n = p[0] < 0x80                   ? 0
            : p[0] >= 0xC2 && p[0] < 0xE0 ? 1
            : p[0] >= 0xE0 && p[0] < 0xF0 ? 2
            : p[0] >= 0xF0 && p[0] < 0xF5 ? 3
                                          : -1;
    if (n < 0) {
        (*i)++;
        return -1;
    }
    long c = n == 0 ? p[0] : p[0] & (0x3F >> n);
    for (int k = 1; k <= n; k++) {
        if ((p[k] & 0xC0) != 0x80) {
            (*i)++;
            return -1;
        }
        c = (c << 6) | (p[k] & 0x3F);
    }
    *i += (size_t)n + 1;
    return c;
}

/* Terminal columns of code point c (-1: a stray byte): 2 for East Asian wide and
 * fullwidth characters, 0 for combining marks, as the C library's UTF-8 tables say
 * whatever the caller's locale; 1 when they cannot be had. */
static int s_columns(long c)
{
    static locale_t utf8;
    static bool tried;
    if (c < 0x300)
        return 1; /* ASCII, Latin-1 and stray bytes: the common case, no table needed */
    if (!tried) {
        tried = true;
        utf8 = newlocale(LC_CTYPE_MASK, "C.UTF-8", (locale_t)0);
    }
    if (utf8 == (locale_t)0)
        return 1;
    locale_t old = uselocale(utf8);
    int w = wcwidth((wchar_t)c);
    uselocale(old);
    return w < 0 ? 1 : w;
}

/* Bytes of s to keep so that it takes at most max columns, cut between characters. */
static size_t s_utf8_cut(const char *s, size_t max)
{
    size_t cols = 0, i = 0;
    while (s[i]) {
        size_t at = i;
        size_t w = (size_t)s_columns(s_utf8_next(s, &i));
        if (cols + w > max)
            return at;
        cols += w;
    }
    return i;
}

/* Terminal columns of a UTF-8 string (not bytes, not characters: a CJK character takes
 * two, so tables of subjects in Chinese or Japanese line up). */
static size_t s_utf8_len(const char *s)
{
    size_t n = 0, i = 0;
    while (s[i])
        n += (size_t)s_columns(s_utf8_next(s, &i));
    return n;
}

/* Appends a row of ncols strings (copied, cut to S_CELL_MAX columns). */
static void s_table_row(s_table_t *t, const char *const *vals)
{
    if (t->nrows == t->cap) {
        t->cap = t->cap ? t->cap * 2 : 16;
        t->cells = xrealloc(t->cells, t->cap * (size_t)t->ncols * sizeof(char *));
    }
    for (int c = 0; c < t->ncols; c++) {
        const char *v = vals[c] ? vals[c] : "-";
        size_t keep = s_utf8_cut(v, S_CELL_MAX);
        char *cell =
            v[keep] ? xasprintf("%.*s...", (int)s_utf8_cut(v, S_CELL_MAX - 3), v) : xstrdup(v);
        t->cells[t->nrows * (size_t)t->ncols + (size_t)c] = cell;
    }
    t->nrows++;
}

/* Prints the table (header, rows) and frees it. */
static void s_table_print(FILE *fp, s_table_t *t)
{
    size_t width[S_COLS_MAX];
    for (int c = 0; c < t->ncols; c++) {
        size_t n = strlen(t->head[c]);
        width[c] = t->right[c] ? n - 1 : n;
        for (size_t r = 0; r < t->nrows; r++) {
            size_t w = s_utf8_len(t->cells[r * (size_t)t->ncols + (size_t)c]);
            if (w > width[c])
                width[c] = w;
        }
    }
    for (size_t r = 0; r <= t->nrows; r++) {
        for (int c = 0; c < t->ncols; c++) {
            const char *v;
            size_t vlen;
            if (r == 0) {
                v = t->head[c];
                vlen = t->right[c] ? strlen(v) - 1 : strlen(v);
            } else {
                v = t->cells[(r - 1) * (size_t)t->ncols + (size_t)c];
                vlen = strlen(v);
            }
            size_t pad = width[c] - (r == 0 ? vlen : s_utf8_len(v));
            bool last = c == t->ncols - 1;
            if (t->right[c])
                fprintf(fp, "%*s%.*s", (int)pad, "", (int)vlen, v);
            else
                fprintf(fp, "%.*s%*s", (int)vlen, v, last ? 0 : (int)pad, "");
            fputs(last ? "\n" : "  ", fp);
        }
    }
    for (size_t i = 0; i < t->nrows * (size_t)t->ncols; i++)
        xfree(t->cells[i]);
    xfree(t->cells);
    memset(t, 0, sizeof(*t));
}

/* ---- fields ---- */

/* Any scalar member as text into buf ("-" when missing or not a scalar). */
static const char *s_field(const json_t *obj, const char *key, char *buf, size_t len)
{
    const json_t *v = obj ? json_object_get(obj, key) : NULL;
    if (json_is_string(v)) {
        snprintf(buf, len, "%s", json_string_value(v));
        /* a control character (an old entry's reason, say) would break the table or
         * drive the terminal */
        cli_key_line_mask(buf);
    } else if (json_is_integer(v))
        snprintf(buf, len, "%" JSON_INTEGER_FORMAT, json_integer_value(v));
    else if (json_is_real(v))
        snprintf(buf, len, "%.1f", json_real_value(v));
    else if (json_is_true(v))
        snprintf(buf, len, "yes");
    else if (json_is_false(v))
        snprintf(buf, len, "no");
    else
        snprintf(buf, len, "-");
    return buf;
}

/* A string member (borrowed), or "-". */
static const char *s_str(const json_t *obj, const char *key)
{
    const char *v = obj ? json_string_value(json_object_get(obj, key)) : NULL;
    return v ? v : "-";
}

/* An integer member, or def. */
static int64_t s_int(const json_t *obj, const char *key, int64_t def)
{
    const json_t *v = obj ? json_object_get(obj, key) : NULL;
    return json_is_integer(v) ? (int64_t)json_integer_value(v) : def;
}

/* A number member (integer or real), or def. */
static double s_num(const json_t *obj, const char *key, double def)
{
    const json_t *v = obj ? json_object_get(obj, key) : NULL;
    return json_is_number(v) ? json_number_value(v) : def;
}

void cli_render_span(int64_t s, char *buf, size_t len)
{
    const char *sign = "";
    if (s < 0) {
        sign = "-";
        s = -s;
    }
    if (s < 60)
        snprintf(buf, len, "%s%" PRId64 "s", sign, s);
    else if (s < 3600)
        snprintf(buf, len, "%s%" PRId64 "m%02" PRId64 "s", sign, s / 60, s % 60);
    else if (s < 86400)
        snprintf(buf, len, "%s%" PRId64 "h%02" PRId64 "m", sign, s / 3600, (s % 3600) / 60);
    else
        snprintf(buf, len, "%s%" PRId64 "d%02" PRId64 "h", sign, s / 86400, (s % 86400) / 3600);
}

/* "in 42m" / "3s ago" style relative time of ms against now_ms; "-" when ms is missing. */
static const char *s_rel(int64_t now_ms, int64_t ms, bool future, char *buf, size_t len)
{
    char span[32];
    if (ms <= 0) {
        snprintf(buf, len, "-");
        return buf;
    }
    int64_t d = future ? (ms - now_ms) / 1000 : (now_ms - ms) / 1000;
    cli_render_span(d < 0 ? 0 : d, span, sizeof(span));
    snprintf(buf, len, future ? "%s" : "%s ago", span);
    return buf;
}

/* Absolute UTC time of ms ("2024-05-01 12:00:00Z"), "-" when missing. */
static const char *s_abs(int64_t ms, char *buf, size_t len)
{
    if (ms <= 0) {
        snprintf(buf, len, "-");
        return buf;
    }
    time_t t = (time_t)(ms / 1000);
    struct tm tm;
    gmtime_r(&t, &tm);
    strftime(buf, len, "%Y-%m-%d %H:%M:%SZ", &tm);
    return buf;
}

/* The array member key, or NULL. */
static const json_t *s_array(const json_t *obj, const char *key)
{
    const json_t *v = obj ? json_object_get(obj, key) : NULL;
    return json_is_array(v) ? v : NULL;
}

/* "fleet" or "site S" */
static const char *s_reach(const json_t *d, char *buf, size_t len)
{
    const char *reach = json_string_value(json_object_get(d, "reach"));
    const char *site = json_string_value(json_object_get(d, "site"));
    if (reach && strcmp(reach, "local") == 0 && site)
        snprintf(buf, len, "site %s", site);
    else
        snprintf(buf, len, "%s", reach ? reach : "-");
    return buf;
}

/* "rule fleet_subject" / "cli alice" */
static const char *s_origin(const json_t *d, char *buf, size_t len)
{
    const char *o = json_string_value(json_object_get(d, "origin"));
    const char *who = json_string_value(json_object_get(d, "origin_who"));
    snprintf(buf, len, "%s%s%s%s", o ? o : "-", who && who[0] ? " " : "", who ? who : "",
             json_is_true(json_object_get(d, "mirrored")) ? ", via peer" : "");
    return buf;
}

/* ---- documents ---- */

/* A table of decisions (list, revoked-by-allowlist...). */
static void s_decision_table(FILE *fp, const json_t *arr, int64_t now_ms)
{
    static const char *const titles[] = {"ID",    "SCOPE",   "VALUE", "ACTION",
                                         "REACH", "EXPIRES", "ORIGIN"};
    s_table_t t;
    size_t i;
    const json_t *d;

    s_table_init(&t, 7, titles);
    json_array_foreach(arr, i, d)
    {
        char b[7][S_FIELD_SIZE];
        const char *mode = json_string_value(json_object_get(d, "mode"));
        s_field(d, "action", b[3], sizeof(b[3]));
        if (mode && strcmp(mode, "observe") == 0)
            strcat(b[3], " (observe)");
        const char *row[7] = {s_field(d, "id", b[0], sizeof(b[0])),
                              s_field(d, "scope", b[1], sizeof(b[1])),
                              s_field(d, "value", b[2], sizeof(b[2])),
                              b[3],
                              s_reach(d, b[4], sizeof(b[4])),
                              s_rel(now_ms, s_int(d, "expires_ms", 0), true, b[5], sizeof(b[5])),
                              s_origin(d, b[6], sizeof(b[6]))};
        s_table_row(&t, row);
    }
    s_table_print(fp, &t);
}

/* The evidence block of one decision. */
static void s_evidence(FILE *fp, const json_t *ev, int64_t now_ms)
{
    char b[4][S_FIELD_SIZE];
    size_t i;
    const json_t *s;

    fprintf(fp, "Evidence:\n");
    fprintf(fp, "  rule:        %s\n", s_field(ev, "rule", b[0], sizeof(b[0])));
    fprintf(fp, "  events:      %s in %ss from %s sites\n", s_field(ev, "events", b[0], 64),
            s_field(ev, "window_s", b[1], 64), s_field(ev, "sites", b[2], 64));
    fprintf(fp, "  first seen:  %s (%s)\n", s_abs(s_int(ev, "first_ms", 0), b[0], 64),
            s_rel(now_ms, s_int(ev, "first_ms", 0), false, b[1], 64));
    fprintf(fp, "  last seen:   %s (%s)\n", s_abs(s_int(ev, "last_ms", 0), b[0], 64),
            s_rel(now_ms, s_int(ev, "last_ms", 0), false, b[1], 64));
    fprintf(fp, "  sample:      %s\n", s_field(ev, "sample", b[0], sizeof(b[0])));
    const json_t *shares = s_array(ev, "shares");
    if (shares && json_array_size(shares) > 0) {
        static const char *const titles[] = {"SITE", "EVENTS>", "SHARE>"};
        s_table_t t;
        s_table_init(&t, 3, titles);
        json_array_foreach(shares, i, s)
        {
            snprintf(b[2], 64, "%.1f%%", 100.0 * s_num(s, "share", 0));
            const char *row[3] = {s_field(s, "site", b[0], 64), s_field(s, "events", b[1], 64),
                                  b[2]};
            s_table_row(&t, row);
        }
        fprintf(fp, "  shares:\n");
        /* indent the table under "shares:" */
        char *text = NULL;
        size_t len = 0;
        FILE *mem = open_memstream(&text, &len);
        s_table_print(mem, &t);
        fclose(mem);
        for (char *line = strtok(text, "\n"); line; line = strtok(NULL, "\n"))
            fprintf(fp, "    %s\n", line);
        free(text);
    }
}

/* What a decision in force kept against decisions add's request (nothing: no line). */
static void s_kept(FILE *fp, const json_t *kept)
{
    char b[2][S_FIELD_SIZE];
    const json_t *action = json_object_get(kept, "action");
    int64_t expires = s_int(kept, "expires_ms", 0);
    if (!json_is_string(action) && expires <= 0)
        return;
    fprintf(fp, "Kept from the decision in force:");
    if (json_is_string(action))
        fprintf(fp, " action %s (stronger than asked)%s", s_field(kept, "action", b[0], 64),
                expires > 0 ? ";" : "");
    if (expires > 0)
        fprintf(fp, " expiry %s (later than asked)", s_abs(expires, b[1], 64));
    fprintf(fp, ". decisions del first to replace it.\n");
}

/* The rules that will make a revoked decision again (decisions del). */
static void s_refires(FILE *fp, const json_t *rules)
{
    size_t i;
    const json_t *r;
    if (rules == NULL || json_array_size(rules) == 0)
        return;
    fprintf(fp, "Note: rule");
    json_array_foreach(rules, i, r)
    {
        const char *name = json_string_value(r);
        char b[S_FIELD_SIZE];
        snprintf(b, sizeof(b), "%s", name ? name : "-");
        cli_key_line_mask(b);
        fprintf(fp, "%s %s", i ? "," : "", b);
    }
    fprintf(fp,
            " still %s the wave and will block the key again at its next event; "
            "backstop allow add keeps it unblocked.\n",
            json_array_size(rules) == 1 ? "sees" : "see");
}

/* How many items of a list the reply left out: its total_key count minus those in arr. */
static int64_t s_left_out(const json_t *doc, const char *total_key, const json_t *arr)
{
    int64_t n = s_int(doc, total_key, 0) - (int64_t)(arr ? json_array_size(arr) : 0);
    return n > 0 ? n : 0;
}

/* Everything about one decision; gone: one no longer in force (why's "It was:"), whose
 * expiry is when it ended or would have ended, not when it will. */
static void s_decision_show(FILE *fp, const json_t *d, int64_t now_ms, bool gone)
{
    char b[3][S_FIELD_SIZE];

    fprintf(fp, "Decision %s\n", s_field(d, "id", b[0], sizeof(b[0])));
    fprintf(fp, "  scope:       %s\n", s_field(d, "scope", b[0], sizeof(b[0])));
    fprintf(fp, "  value:       %s\n", s_field(d, "value", b[0], sizeof(b[0])));
    fprintf(fp, "  fingerprint: %s\n", s_field(d, "fp", b[0], sizeof(b[0])));
    fprintf(fp, "  action:      %s%s\n", s_field(d, "action", b[0], sizeof(b[0])),
            json_is_true(json_object_get(d, "all_mail")) ? " (all mail)" : " (bounces only)");
    fprintf(fp, "  mode:        %s\n", s_field(d, "mode", b[0], sizeof(b[0])));
    fprintf(fp, "  reach:       %s\n", s_reach(d, b[0], sizeof(b[0])));
    fprintf(fp, "  reason:      %s\n", s_field(d, "reason", b[0], sizeof(b[0])));
    fprintf(fp, "  origin:      %s\n", s_origin(d, b[0], sizeof(b[0])));
    fprintf(fp, "  created:     %s (%s)\n", s_abs(s_int(d, "created_ms", 0), b[0], 64),
            s_rel(now_ms, s_int(d, "created_ms", 0), false, b[1], 64));
    int64_t expires = s_int(d, "expires_ms", 0);
    if (!gone)
        fprintf(fp, "  expires:     %s (in %s)\n", s_abs(expires, b[0], 64),
                s_rel(now_ms, expires, true, b[1], 64));
    else if (expires <= now_ms)
        fprintf(fp, "  expired:     %s (%s)\n", s_abs(expires, b[0], 64),
                s_rel(now_ms, expires, false, b[1], 64));
    else
        fprintf(fp, "  was to end:  %s (in %s)\n", s_abs(expires, b[0], 64),
                s_rel(now_ms, expires, true, b[1], 64));
    fprintf(fp, "  sequence:    %s (epoch %s)\n", s_field(d, "seq", b[0], 64),
            s_field(d, "epoch", b[1], 64));
    const json_t *ev = json_object_get(d, "evidence");
    if (json_is_object(ev))
        s_evidence(fp, ev, now_ms);
}

static void s_status(FILE *fp, const json_t *doc, int64_t now_ms)
{
    char b[6][S_FIELD_SIZE];
    size_t i;
    const json_t *s;
    const char *k;
    json_t *v;

    cli_render_span(s_int(doc, "uptime_s", 0), b[0], 64);
    fprintf(fp, "Aggregator: up %s, epoch %s, seq %s\n", b[0], s_field(doc, "epoch", b[1], 64),
            s_field(doc, "seq", b[2], 64));
    const json_t *ev = json_object_get(doc, "events");
    fprintf(fp, "Events:     %.1f/s, %s received, %s counted", s_num(doc, "events_per_s", 0),
            s_field(ev, "received", b[0], 64), s_field(ev, "counted", b[1], 64));
    /* counted without duplicate detection (dedup's table full): a replay counts twice */
    if (s_int(ev, "untracked", 0) > 0)
        fprintf(fp, " (%s without dedup: full)", s_field(ev, "untracked", b[0], 64));
    fputc('\n', fp);
    const json_t *dropped = ev ? json_object_get(ev, "dropped") : NULL;
    if (json_is_object(dropped) && json_object_size(dropped) > 0) {
        fprintf(fp, "Dropped:   ");
        int any = 0;
        json_object_foreach((json_t *)dropped, k, v)
        {
            if (json_is_integer(v) && json_integer_value(v) > 0) {
                fprintf(fp, " %s=%" JSON_INTEGER_FORMAT, k, json_integer_value(v));
                any = 1;
            }
        }
        fprintf(fp, "%s\n", any ? "" : " none");
    }
    if (s_int(doc, "handshakes_refused", 0) > 0)
        fprintf(fp,
                "Refused:    %s CURVE handshakes (unregistered or revoked keys; the log names "
                "each key once a minute)\n",
                s_field(doc, "handshakes_refused", b[0], 64));
    const json_t *dec = json_object_get(doc, "decisions");
    fprintf(fp, "Keys:       %s tracked", s_field(doc, "keys", b[0], 64));
    const json_t *win = json_object_get(doc, "window");
    if (s_int(win, "max_keys", 0) > 0)
        fprintf(fp, " (max_keys %s)", s_field(win, "max_keys", b[0], 64));
    if (s_int(win, "keys_refused", 0) > 0)
        fprintf(fp, "; %s key updates refused, not counted (%s: window full)",
                s_field(win, "keys_refused", b[0], 64), s_field(win, "full", b[1], 64));
    fputc('\n', fp);
    fprintf(fp, "Decisions:  %s active (%s enforced)\n", s_field(dec, "active", b[0], 64),
            s_field(dec, "enforced", b[1], 64));
    const json_t *peer = json_object_get(doc, "peer");
    if (json_is_object(peer)) {
        fprintf(fp, "Peer:       %s %s, epoch %s, seq %s; %s changes mirrored, %s refused",
                s_field(peer, "state", b[0], 64), s_field(peer, "decisions", b[1], 64),
                s_field(peer, "epoch", b[2], 64), s_field(peer, "seq", b[3], 64),
                s_field(peer, "applied", b[4], 64), s_field(peer, "refused", b[5], 64));
        /* blocks made on one key while the two were apart, made one (PROTOCOL.md 4.6) */
        if (s_int(peer, "merged", 0) > 0)
            fprintf(fp, ", %s merged", s_field(peer, "merged", b[0], 64));
        /* not live: the peer is unreachable (or resyncing); what follows is as of when it
         * was last heard */
        bool live = strcmp(s_field(peer, "state", b[0], 64), "live") == 0;
        int64_t heard = s_int(peer, "heard_ms", 0);
        if (!live)
            fprintf(fp, "; %s%s", heard > 0 ? "last heard " : "never heard from",
                    heard > 0 ? s_rel(now_ms, heard, false, b[0], 64) : "");
        fputc('\n', fp);
        const json_t *sh = json_object_get(peer, "shared");
        bool same = json_is_true(json_object_get(sh, "same"));
        if (json_is_object(sh) && (live || heard <= 0))
            fprintf(fp,
                    "            allowlist and sites %s the peer's; %s entries taken, %s refused\n",
                    same ? "the same as" : "not yet the same as", s_field(sh, "applied", b[0], 64),
                    s_field(sh, "refused", b[1], 64));
        else if (json_is_object(sh))
            fprintf(fp,
                    "            allowlist and sites %s the peer's when it was last heard, %s "
                    "(unreachable since, or resyncing); %s entries taken, %s refused\n",
                    same ? "the same as" : "not the same as", s_rel(now_ms, heard, false, b[2], 64),
                    s_field(sh, "applied", b[0], 64), s_field(sh, "refused", b[1], 64));
    }
    const json_t *store = json_object_get(doc, "store");
    if (s_int(store, "lost_since_ms", 0) > 0) {
        char err[512];
        fprintf(fp,
                "Store:      LOST (%s): data_dir %s; decisions, allowlist, sites and counts are "
                "held in memory only",
                s_rel(now_ms, s_int(store, "lost_since_ms", 0), false, b[0], 64),
                s_field(store, "lost_reason", b[1], 64));
        if (json_is_string(json_object_get(store, "lost_error")))
            fprintf(fp, "; not recreated: %s", s_field(store, "lost_error", err, sizeof(err)));
        fprintf(fp, " (see the log)\n");
    } else if (s_int(store, "recreated", 0) > 0) {
        fprintf(fp,
                "Store:      recreated %s time(s) after its data directory was lost; it holds "
                "everything again (see the log)\n",
                s_field(store, "recreated", b[0], 64));
    }
    if (s_int(store, "failing_since_ms", 0) > 0)
        fprintf(
            fp,
            "Store:      FAILING (first failure %s): %s writes failed; %s decision changes wait "
            "to be stored, and are not published until they are (see the log)\n",
            s_rel(now_ms, s_int(store, "failing_since_ms", 0), false, b[0], 64),
            s_field(store, "errors", b[1], 64), s_field(store, "unstored", b[2], 64));
    else if (s_int(store, "errors", 0) > 0)
        fprintf(fp, "Store:      writing; %s writes failed since the start (see the log)\n",
                s_field(store, "errors", b[0], 64));
    const json_t *sensors = s_array(doc, "sensors");
    size_t nshown = sensors ? json_array_size(sensors) : 0;
    int64_t ntotal = s_int(doc, "sensors_total", (int64_t)nshown);
    fprintf(fp, "\nSensors: %" PRId64 "\n", ntotal);
    if (sensors && json_array_size(sensors) > 0) {
        static const char *const titles[] = {"SITE",     "SENSOR", "LAST SEEN",
                                             "APPLIED>", "LAG>",   "STATE"};
        s_table_t t;
        s_table_init(&t, 6, titles);
        json_array_foreach(sensors, i, s)
        {
            const char *row[6] = {s_field(s, "site", b[0], 64),
                                  s_field(s, "sensor", b[1], 64),
                                  s_rel(now_ms, s_int(s, "last_seen_ms", 0), false, b[2], 64),
                                  s_field(s, "applied_seq", b[3], 64),
                                  s_field(s, "lag", b[4], 64),
                                  json_is_true(json_object_get(s, "stale")) ? "STALE" : "ok"};
            s_table_row(&t, row);
        }
        s_table_print(fp, &t);
    }
    if (ntotal > (int64_t)nshown)
        fprintf(fp, "... and %" PRId64 " more not listed (more than one reply holds)\n",
                ntotal - (int64_t)nshown);
}

/* The verdict a why row shows: a rule that fires while its decision is not in force
 * (decided false: it ran out or was revoked, and rules are evaluated only when an event
 * comes) blocks nothing yet; allowlisted (an entry covers the key), it never will. */
static const char *s_verdict(const json_t *r, bool allowlisted, char *buf, size_t size)
{
    const json_t *decided = json_object_get(r, "decided");
    if (json_is_true(json_object_get(r, "fires")) && json_is_false(decided))
        return allowlisted ? "met: allowlisted, no decision" : "met: would fire on the next event";
    return s_field(r, "verdict", buf, size);
}

/* The per-rule comparison rows of one key (why); allowlisted: an entry covers it. */
static void s_key_rules(FILE *fp, const json_t *key, bool allowlisted)
{
    static const char *const titles[] = {"RULE",   "WINDOW>",    "EVENTS>",
                                         "SITES>", "TOP SHARE>", "VERDICT"};
    char b[6][S_FIELD_SIZE];
    size_t i;
    const json_t *r;
    s_table_t t;

    s_table_init(&t, 6, titles);
    json_array_foreach(s_array(key, "rules"), i, r)
    {
        snprintf(b[1], 64, "%" PRId64 "s", s_int(r, "window_s", 0));
        snprintf(b[2], 64, "%" PRId64 "/%" PRId64, s_int(r, "events", 0),
                 s_int(r, "min_events", 0));
        snprintf(b[3], 64, "%" PRId64 "/%" PRId64, s_int(r, "sites", 0), s_int(r, "min_sites", 0));
        snprintf(b[4], 64, "%.0f%%/%.0f%%", 100.0 * s_num(r, "top_share", 0),
                 100.0 * s_num(r, "max_site_share", 1));
        const char *row[6] = {s_field(r, "rule", b[0], 64),       b[1], b[2], b[3], b[4],
                              s_verdict(r, allowlisted, b[5], 64)};
        s_table_row(&t, row);
    }
    s_table_print(fp, &t);
}

static void s_why(FILE *fp, const json_t *doc, int64_t now_ms)
{
    char b[3][S_FIELD_SIZE];
    size_t i;
    const json_t *x;
    const json_t *decisions = s_array(doc, "decisions");
    const json_t *allowed = s_array(doc, "allowlisted");
    const json_t *keys = s_array(doc, "keys");

    fprintf(fp, "Query: %s\n", s_field(doc, "query", b[0], sizeof(b[0])));
    const json_t *removed = json_object_get(doc, "removed");
    if (json_is_object(removed) && decisions && json_array_size(decisions) > 0) {
        /* an id no longer in force: why, then what it was; then what is in force now */
        const char *why = s_field(removed, "why", b[1], 64);
        const char *by = s_field(removed, "replaced_by", b[2], 64);
        const json_t *was = json_array_get(decisions, 0);
        fprintf(fp, "Decision %s is no longer in force: ", s_field(was, "id", b[0], 64));
        if (!strcmp(why, "expired"))
            fprintf(fp, "it expired.\n");
        else if (!strcmp(why, "revoked"))
            fprintf(fp, "an operator revoked it.\n");
        else if (!strcmp(why, "allowlisted"))
            fprintf(fp, "an allowlist entry covers it.\n");
        else if (!strcmp(why, "superseded"))
            fprintf(fp, "the failover peer's decision %s on the same key took its place.\n", by);
        else
            fprintf(fp, "%s.\n", why);
        fprintf(fp, "\nIt was:\n");
        s_decision_show(fp, was, now_ms, true);
        if (json_array_size(decisions) > 1) {
            fprintf(fp, "\nIn force now on its key:\n");
            for (i = 1; i < json_array_size(decisions); i++) {
                fputc('\n', fp);
                s_decision_show(fp, json_array_get(decisions, i), now_ms, false);
            }
        } else {
            fprintf(fp, "\nNot blocked now: no active decision matches.\n");
        }
    } else if (decisions && json_array_size(decisions) > 0) {
        json_array_foreach(decisions, i, x)
        {
            fputc('\n', fp);
            s_decision_show(fp, x, now_ms, false);
        }
    } else {
        fprintf(fp, "Not blocked: no active decision matches.\n");
    }
    if (allowed && json_array_size(allowed) > 0) {
        json_array_foreach(allowed, i, x)
        {
            fprintf(fp, "Allowlisted: %s %s (%s)\n", s_field(x, "type", b[0], 64),
                    s_field(x, "value", b[1], sizeof(b[1])),
                    s_field(x, "reason", b[2], sizeof(b[2])));
        }
    } else if (allowed) {
        fprintf(fp, "Allowlisted: no\n");
    }
    json_array_foreach(keys, i, x)
    {
        char e[2][64];
        fprintf(fp, "\nKey %s %s (fp %s): %s events in the last %ss\n",
                s_field(x, "scope", b[0], 64), s_field(x, "value", b[1], sizeof(b[1])),
                s_field(x, "fp", b[2], 64), s_field(x, "events", e[0], 64),
                s_field(x, "span_s", e[1], 64));
        if (s_array(x, "rules") && json_array_size(s_array(x, "rules")) > 0)
            s_key_rules(fp, x, allowed && json_array_size(allowed) > 0);
        else
            fprintf(fp, "  no rule counts this scope\n");
    }
}

static void s_top(FILE *fp, const json_t *doc)
{
    static const char *const titles[] = {"SCOPE",  "VALUE",      "RULE",     "EVENTS>",
                                         "SITES>", "TOP SHARE>", "PROGRESS>"};
    char b[7][S_FIELD_SIZE];
    size_t i;
    const json_t *k;
    const json_t *keys = s_array(doc, "keys");
    s_table_t t;

    if (keys == NULL || json_array_size(keys) == 0) {
        fprintf(fp, "No keys counted in the current windows.\n");
        return;
    }
    s_table_init(&t, 7, titles);
    json_array_foreach(keys, i, k)
    {
        snprintf(b[3], 64, "%" PRId64 "/%" PRId64, s_int(k, "events", 0),
                 s_int(k, "min_events", 0));
        snprintf(b[4], 64, "%" PRId64 "/%" PRId64, s_int(k, "sites", 0), s_int(k, "min_sites", 0));
        snprintf(b[5], 64, "%.0f%%", 100.0 * s_num(k, "top_share", 0));
        snprintf(b[6], 64, "%.0f%%", 100.0 * s_num(k, "progress", 0));
        const char *row[7] = {s_field(k, "scope", b[0], 64),
                              s_field(k, "value", b[1], sizeof(b[1])),
                              s_field(k, "rule", b[2], 64),
                              b[3],
                              b[4],
                              b[5],
                              b[6]};
        s_table_row(&t, row);
    }
    s_table_print(fp, &t);
}

/* A table of allowlist entries. */
static void s_allow_table(FILE *fp, const json_t *arr, int64_t now_ms)
{
    static const char *const titles[] = {"ID", "TYPE", "VALUE", "ADDED", "BY", "REASON"};
    char b[6][S_FIELD_SIZE];
    size_t i;
    const json_t *e;
    s_table_t t;

    if (arr == NULL || json_array_size(arr) == 0) {
        fprintf(fp, "No allowlist entries.\n");
        return;
    }
    s_table_init(&t, 6, titles);
    json_array_foreach(arr, i, e)
    {
        const char *row[6] = {s_field(e, "id", b[0], 64),
                              s_field(e, "type", b[1], 64),
                              s_field(e, "value", b[2], sizeof(b[2])),
                              s_rel(now_ms, s_int(e, "created_ms", 0), false, b[3], 64),
                              s_field(e, "who", b[4], 64),
                              s_field(e, "reason", b[5], sizeof(b[5]))};
        s_table_row(&t, row);
    }
    s_table_print(fp, &t);
}

static void s_sites(FILE *fp, const json_t *doc, int64_t now_ms)
{
    static const char *const titles[] = {"SITE", "PUBLIC KEY", "ADDED", "SENSORS>", "LAST SEEN"};
    char b[5][S_FIELD_SIZE];
    size_t i, j;
    const json_t *s, *sn;
    const json_t *sites = s_array(doc, "sites");
    s_table_t t;

    if (sites == NULL || json_array_size(sites) == 0) {
        fprintf(fp, "No sites registered.\n");
        return;
    }
    s_table_init(&t, 5, titles);
    json_array_foreach(sites, i, s)
    {
        int64_t last = 0;
        const json_t *sensors = s_array(s, "sensors");
        json_array_foreach(sensors, j, sn)
        {
            if (s_int(sn, "last_seen_ms", 0) > last)
                last = s_int(sn, "last_seen_ms", 0);
        }
        snprintf(b[3], 64, "%zu", sensors ? json_array_size(sensors) : (size_t)0);
        /* known from its sensors only: never registered (plain mode), or removed since */
        const char *key = s_field(s, "public_key", b[1], 64);
        if (json_is_false(json_object_get(s, "registered"))) {
            int64_t gone = s_int(s, "removed_ms", 0);
            char ago[64];
            if (gone > 0)
                snprintf(b[1], sizeof(b[1]), "(removed %s: not registered)",
                         s_rel(now_ms, gone, false, ago, sizeof(ago)));
            else
                snprintf(b[1], 64, "(not registered)");
            key = b[1];
        }
        const char *row[5] = {s_field(s, "name", b[0], 64), key,
                              s_rel(now_ms, s_int(s, "created_ms", 0), false, b[2], 64), b[3],
                              s_rel(now_ms, last, false, b[4], 64)};
        s_table_row(&t, row);
    }
    s_table_print(fp, &t);
    if (s_left_out(doc, "sites_total", sites) > 0)
        fprintf(fp, "... and %" PRId64 " more not listed (more than one reply holds)\n",
                s_left_out(doc, "sites_total", sites));
}

int cli_render(FILE *fp, Backstop__ControlRequest__Command cmd, const json_t *doc)
{
    char b[4][S_FIELD_SIZE];
    const json_t *x;

    if (!json_is_object(doc))
        return -1;
    int64_t now_ms = s_int(doc, "now_ms", 0);
    if (now_ms <= 0)
        now_ms = (int64_t)time(NULL) * 1000;

    switch (cmd) {
    case BACKSTOP__CONTROL_REQUEST__COMMAND__STATUS:
        s_status(fp, doc, now_ms);
        break;
    case BACKSTOP__CONTROL_REQUEST__COMMAND__DECISION_LIST:
        x = s_array(doc, "decisions");
        if (x == NULL || json_array_size(x) == 0)
            fprintf(fp, "No active decisions.\n");
        else
            s_decision_table(fp, x, now_ms);
        if (s_left_out(doc, "total", x) > 0)
            fprintf(fp,
                    "... and %" PRId64 " more not listed (--limit N lists up to %d; backstop "
                    "why VALUE finds the one on a key)\n",
                    s_left_out(doc, "total", x), CLI_LIST_LIMIT_MAX);
        break;
    case BACKSTOP__CONTROL_REQUEST__COMMAND__DECISION_SHOW:
        s_decision_show(fp, json_object_get(doc, "decision"), now_ms, false);
        break;
    case BACKSTOP__CONTROL_REQUEST__COMMAND__DECISION_ADD:
        x = json_object_get(doc, "decision");
        fprintf(fp, "Decision %s %s: %s %s \"%s\", %s, expires in %s\n", s_field(x, "id", b[0], 64),
                s_field(doc, "result", b[1], 64), s_str(x, "action"), s_str(x, "scope"),
                s_str(x, "value"), s_reach(x, b[2], 64),
                s_rel(now_ms, s_int(x, "expires_ms", 0), true, b[3], 64));
        s_kept(fp, json_object_get(doc, "kept"));
        break;
    case BACKSTOP__CONTROL_REQUEST__COMMAND__DECISION_DEL:
        x = json_object_get(doc, "revoked");
        fprintf(fp, "Decision %s revoked (%s %s); the sensors drop it now.\n",
                s_field(x, "id", b[0], 64), s_str(x, "scope"), s_str(x, "value"));
        s_refires(fp, s_array(doc, "refires"));
        break;
    case BACKSTOP__CONTROL_REQUEST__COMMAND__WHY:
        s_why(fp, doc, now_ms);
        break;
    case BACKSTOP__CONTROL_REQUEST__COMMAND__TOP:
        s_top(fp, doc);
        break;
    case BACKSTOP__CONTROL_REQUEST__COMMAND__ALLOW_LIST:
        x = s_array(doc, "allowlist");
        s_allow_table(fp, x, now_ms);
        if (s_left_out(doc, "total", x) > 0)
            fprintf(fp,
                    "... and %" PRId64 " more not listed (more than one reply holds; backstop "
                    "why VALUE says whether a key is allowlisted)\n",
                    s_left_out(doc, "total", x));
        break;
    case BACKSTOP__CONTROL_REQUEST__COMMAND__ALLOW_ADD:
        x = json_object_get(doc, "entry");
        fprintf(fp, "Allowlisted %s %s (id %s).\n", s_str(x, "type"), s_str(x, "value"),
                s_field(x, "id", b[0], 64));
        x = s_array(doc, "revoked");
        if (x && json_array_size(x) > 0) {
            int64_t more = s_left_out(doc, "revoked_total", x);
            fprintf(fp, "Revoked %" PRId64 " decision%s it covers",
                    (int64_t)json_array_size(x) + more,
                    json_array_size(x) + (size_t)more == 1 ? "" : "s");
            if (more > 0)
                fprintf(fp, " (the first %zu listed)", json_array_size(x));
            fprintf(fp, ":\n");
            s_decision_table(fp, x, now_ms);
        } else {
            fprintf(fp, "No active decision was covered by it.\n");
        }
        break;
    case BACKSTOP__CONTROL_REQUEST__COMMAND__ALLOW_DEL:
        x = json_object_get(doc, "removed");
        fprintf(fp, "Removed allowlist entry %s %s.\n", s_field(x, "type", b[0], 64),
                s_field(x, "value", b[1], sizeof(b[1])));
        break;
    case BACKSTOP__CONTROL_REQUEST__COMMAND__SITES:
        s_sites(fp, doc, now_ms);
        break;
    case BACKSTOP__CONTROL_REQUEST__COMMAND__SITE_ADD:
        x = json_object_get(doc, "site");
        fprintf(fp, "Site %s registered, public key %s.\n", s_field(x, "name", b[0], 64),
                s_field(x, "public_key", b[1], 64));
        break;
    case BACKSTOP__CONTROL_REQUEST__COMMAND__SITE_DEL:
        x = json_object_get(doc, "removed");
        fprintf(fp, "Site %s removed; its key is refused from now on.\n",
                s_field(x, "name", b[0], 64));
        break;
    default:
        return -1;
    }
    return 0;
}
