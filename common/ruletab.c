/*
 * ruletab - content rule tables in Postfix regexp syntax; see ruletab.h.
 *
 * The table compiles to a flat array of entries: rules, "if" entries that know
 * the index of their endif, and endif entries. Matching walks the array once;
 * a failed "if" jumps to its endif. Everything in the table is written only
 * while it is built; afterwards the one shared mutable thing is the limit-hit
 * counter, updated atomically. Match blocks and JIT stacks are per thread
 * (pthread key), so no lock is taken while matching.
 */
#define PCRE2_CODE_UNIT_WIDTH 8
#include "ruletab.h"

#include <ctype.h>
#include <errno.h>
#include <pcre2.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

#include "lines.h"
#include "msg.h"
#include "slurp.h"
#include "xalloc.h"

#define RULETAB_MAX_FILE (16 * 1024 * 1024) /* a table larger than this is a mistake */

/* What a table entry is. */
typedef enum {
    S_RULE,  /* pattern + action */
    S_IF,    /* if /pattern/: skip to skip_to when it does not fire */
    S_ENDIF, /* closes the innermost if */
} s_kind_t;

struct ruletab_rule {
    s_kind_t kind;           /* rule, if or endif */
    pcre2_code *re;          /* compiled pattern (rule, if) */
    bool negate;             /* "!/pattern/": fires when the pattern does not match */
    size_t skip_to;          /* if: index of its endif */
    ruletab_action_t action; /* rule: the action */
    char *word;              /* rule: action word as written */
    char *text;              /* rule: text after the word, "" when none */
    char *label;             /* rule: text, or "NAME:LINE" */
    int line;                /* first line of the entry */
};

struct ruletab {
    char *name;                /* file name used in labels and errors */
    ruletab_rule_t *entries;   /* rules, ifs and endifs in file order */
    size_t n;                  /* entries used */
    size_t cap;                /* entries allocated */
    size_t nrules;             /* entries that are rules */
    pcre2_match_context *mctx; /* match and depth limits, read-only while shared */
    uint64_t limit_hits;       /* evaluations stopped by a limit (atomic) */
};

static const char *const s_action_names[] = {
    [RULETAB_REJECT] = "REJECT",
    [RULETAB_DISCARD] = "DISCARD",
    [RULETAB_WARN] = "WARN",
    [RULETAB_HOLD] = "HOLD",
    [RULETAB_IGNORE] = "IGNORE",
    [RULETAB_DUNNO] = "DUNNO",
    [RULETAB_PREPEND] = "PREPEND",
    [RULETAB_REPLACE] = "REPLACE",
    [RULETAB_REDIRECT] = "REDIRECT",
    [RULETAB_FILTER] = "FILTER",
    [RULETAB_BCC] = "BCC",
    [RULETAB_INFO] = "INFO",
    [RULETAB_PASS] = "PASS",
    [RULETAB_STRIP] = "STRIP",
    [RULETAB_OK] = "OK",
    [RULETAB_BOUNCE_RULE] = "BOUNCE_RULE",
    [RULETAB_COUNT] = "COUNT",
};
#define S_NACTIONS (sizeof(s_action_names) / sizeof(s_action_names[0]))

const char *ruletab_action_name(ruletab_action_t action)
{
    if ((size_t)action >= S_NACTIONS)
        msg_panic("ruletab_action_name: bad action %d", (int)action);
    return s_action_names[action];
}

/*
 * Per-thread match state: a match block and a JIT stack, made on a thread's
 * first match and freed by the key's destructor when the thread exits. The
 * JIT stack replaces PCRE2's 32 KiB default, which a long folded header
 * exhausts; its maximum bounds the memory a runaway pattern can take.
 */
typedef struct {
    pcre2_match_data *md;   /* one ovector pair: we only ask whether it matched */
    pcre2_jit_stack *stack; /* JIT stack, NULL when the library has no JIT */
} s_thread_t;

#define S_JIT_STACK_START (32 * 1024)
#define S_JIT_STACK_MAX   (1024 * 1024)

static pthread_once_t s_thread_once = PTHREAD_ONCE_INIT;
static pthread_key_t s_thread_key;

static void s_thread_free(void *arg)
{
    s_thread_t *th = arg;
    pcre2_match_data_free(th->md);
    pcre2_jit_stack_free(th->stack);
    xfree(th);
}

static void s_thread_init(void)
{
    if (pthread_key_create(&s_thread_key, s_thread_free) != 0)
        msg_panic("ruletab: pthread_key_create failed");
}

static s_thread_t *s_thread(void)
{
    pthread_once(&s_thread_once, s_thread_init);
    s_thread_t *th = pthread_getspecific(s_thread_key);
    if (th == NULL) {
        th = xcalloc(1, sizeof(*th));
        th->md = pcre2_match_data_create(1, NULL);
        if (th->md == NULL)
            msg_panic("ruletab: out of memory for match data");
        th->stack = pcre2_jit_stack_create(S_JIT_STACK_START, S_JIT_STACK_MAX, NULL);
        if (pthread_setspecific(s_thread_key, th) != 0)
            msg_panic("ruletab: pthread_setspecific failed");
    }
    return th;
}

/* PCRE2 asks for the JIT stack at each match: give it the calling thread's. */
static pcre2_jit_stack *s_jit_stack(void *unused)
{
    return s_thread()->stack;
}

static void s_free_entries(ruletab_t *self)
{
    for (size_t i = 0; i < self->n; i++) {
        ruletab_rule_t *e = &self->entries[i];
        pcre2_code_free(e->re);
        xfree(e->word);
        xfree(e->text);
        xfree(e->label);
    }
    xfree(self->entries);
    self->entries = NULL;
    self->n = self->cap = 0;
}

void ruletab_destroy(ruletab_t **self_p)
{
    if (self_p == NULL || *self_p == NULL)
        return;
    ruletab_t *self = *self_p;
    s_free_entries(self);
    pcre2_match_context_free(self->mctx);
    xfree(self->name);
    xfree(self);
    *self_p = NULL;
}

static void s_err(char *err, size_t errlen, const char *name, int line, const char *fmt, ...)
    __attribute__((format(printf, 5, 6)));
static void s_err(char *err, size_t errlen, const char *name, int line, const char *fmt, ...)
{
    char msg[768];
    va_list ap;
    if (err == NULL || errlen == 0)
        return;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    snprintf(err, errlen, "%s:%d: %s", name, line, msg);
}

static ruletab_rule_t *s_add(ruletab_t *self, s_kind_t kind, int line)
{
    if (self->n == self->cap) {
        self->cap = self->cap ? self->cap * 2 : 16;
        self->entries = xrealloc(self->entries, self->cap * sizeof(ruletab_rule_t));
    }
    ruletab_rule_t *e = &self->entries[self->n++];
    memset(e, 0, sizeof(*e));
    e->kind = kind;
    e->line = line;
    return e;
}

/* A keyword at p ("if", "endif"), any case, followed by a blank, '!', a delimiter or the end. */
static bool s_keyword(const char *p, const char *word)
{
    size_t l = strlen(word);
    return strncasecmp(p, word, l) == 0 && !isalnum((unsigned char)p[l]) && p[l] != '_';
}

/*
 * Parses "[!]/pattern/flags" at *pp and compiles it into e; advances *pp past
 * the flags. Returns 0, or -1 with err set.
 */
static int s_pattern(const char **pp, ruletab_rule_t *e, const char *name, char *err, size_t errlen)
{
    const char *p = *pp;
    while (*p == '!' || isspace((unsigned char)*p)) {
        if (*p == '!')
            e->negate = !e->negate;
        p++;
    }
    char delim = *p;
    if (delim == '\0' || isalnum((unsigned char)delim) || isspace((unsigned char)delim) ||
        delim == '\\' || delim == '_') {
        s_err(err, errlen, name, e->line, "expected /pattern/ at \"%.40s\"", p);
        return -1;
    }
    const char *start = ++p;
    while (*p && *p != delim) {
        if (*p == '\\' && p[1])
            p++;
        p++;
    }
    if (*p != delim) {
        s_err(err, errlen, name, e->line, "missing closing \"%c\" of the pattern", delim);
        return -1;
    }
    size_t plen = (size_t)(p - start);
    p++;

    uint32_t options = PCRE2_CASELESS; /* Postfix: caseless unless "i" toggles it off */
    for (; *p && !isspace((unsigned char)*p); p++) {
        switch (*p) {
        case 'i':
            options ^= PCRE2_CASELESS;
            break;
        case 'm':
            options ^= PCRE2_MULTILINE;
            break;
        case 's':
            options ^= PCRE2_DOTALL;
            break;
        case 'x':
            options ^= PCRE2_EXTENDED;
            break;
        default:
            s_err(err, errlen, name, e->line, "unknown pattern flag \"%c\" (use i, m, s, x)", *p);
            return -1;
        }
    }

    int code;
    PCRE2_SIZE off;
    e->re = pcre2_compile((PCRE2_SPTR)start, plen, options, &code, &off, NULL);
    if (e->re == NULL) {
        PCRE2_UCHAR msg[256];
        if (pcre2_get_error_message(code, msg, sizeof(msg)) < 0)
            snprintf((char *)msg, sizeof(msg), "error %d", code);
        s_err(err, errlen, name, e->line, "bad pattern \"%.*s\": %s at offset %zu", (int)plen,
              start, (const char *)msg, (size_t)off);
        return -1;
    }
    /* JIT is an optimisation: without it (no JIT in this build) the interpreter runs */
    (void)pcre2_jit_compile(e->re, PCRE2_JIT_COMPLETE);
    *pp = p;
    return 0;
}

static int s_action(const char *word, size_t len, ruletab_action_t *out)
{
    for (size_t i = 0; i < S_NACTIONS; i++) {
        if (strlen(s_action_names[i]) == len && strncasecmp(s_action_names[i], word, len) == 0) {
            *out = (ruletab_action_t)i;
            return 0;
        }
    }
    return -1;
}

/* Compiles one logical line into self. stack holds the open ifs. */
static int s_line(ruletab_t *self, const char *p, int line, size_t **stack, size_t *depth,
                  size_t *stack_cap, char *err, size_t errlen)
{
    const char *name = self->name;

    if (s_keyword(p, "endif")) {
        p += 5;
        while (isspace((unsigned char)*p))
            p++;
        if (*p) {
            s_err(err, errlen, name, line, "text after endif: \"%.40s\"", p);
            return -1;
        }
        if (*depth == 0) {
            s_err(err, errlen, name, line, "endif without if");
            return -1;
        }
        size_t open = (*stack)[--*depth];
        s_add(self, S_ENDIF, line);
        self->entries[open].skip_to = self->n - 1;
        return 0;
    }
    if (s_keyword(p, "if")) {
        ruletab_rule_t *e = s_add(self, S_IF, line);
        p += 2;
        if (s_pattern(&p, e, name, err, errlen) < 0)
            return -1;
        while (isspace((unsigned char)*p))
            p++;
        if (*p) {
            s_err(err, errlen, name, line, "text after the if pattern: \"%.40s\"", p);
            return -1;
        }
        if (*depth == *stack_cap) {
            *stack_cap = *stack_cap ? *stack_cap * 2 : 8;
            *stack = xrealloc(*stack, *stack_cap * sizeof(size_t));
        }
        (*stack)[(*depth)++] = self->n - 1;
        return 0;
    }

    ruletab_rule_t *e = s_add(self, S_RULE, line);
    if (s_pattern(&p, e, name, err, errlen) < 0)
        return -1;
    while (isspace((unsigned char)*p))
        p++;
    size_t wl = strcspn(p, " \t\r\n\v\f");
    if (wl == 0) {
        s_err(err, errlen, name, line, "missing action after the pattern (e.g. REJECT)");
        return -1;
    }
    if (s_action(p, wl, &e->action) < 0) {
        s_err(err, errlen, name, line, "unknown action \"%.*s\"", (int)wl, p);
        return -1;
    }
    e->word = xstrndup(p, wl);
    p += wl;
    while (isspace((unsigned char)*p))
        p++;
    size_t tl = strlen(p);
    while (tl > 0 && isspace((unsigned char)p[tl - 1]))
        tl--;
    e->text = xstrndup(p, tl);
    e->label = tl > 0 ? xstrdup(e->text) : xasprintf("%s:%d", name, line);
    self->nrules++;
    return 0;
}

ruletab_t *ruletab_parse(const char *text, const char *name, char *err, size_t errlen)
{
    ruletab_t *self = xcalloc(1, sizeof(*self));
    self->name = xstrdup(name);
    self->mctx = pcre2_match_context_create(NULL);
    if (self->mctx == NULL)
        msg_panic("ruletab: out of memory for match context");
    ruletab_set_limits(self, RULETAB_MATCH_LIMIT, RULETAB_DEPTH_LIMIT);
    pcre2_jit_stack_assign(self->mctx, s_jit_stack, NULL);
    if (err && errlen)
        err[0] = '\0';

    size_t *stack = NULL, depth = 0, stack_cap = 0; /* indexes of open ifs */
    lines_t *lines = lines_new(text, strlen(text));
    lines_item_t it;
    lines_event_t ev;
    int rc = 0;
    while (rc == 0 && (ev = lines_next(lines, &it)) != LINES_END) {
        if (ev == LINES_ORPHAN) {
            s_err(err, errlen, name, it.line, "continuation line without a rule to continue");
            rc = -1;
        } else if (ev == LINES_NUL) {
            /* not seen here (text ends at its first NUL); ruletab_load reports it first */
            s_err(err, errlen, name, it.line, "NUL byte in line");
            rc = -1;
        } else {
            rc = s_line(self, it.text, it.line, &stack, &depth, &stack_cap, err, errlen);
            xfree(it.text);
        }
    }
    lines_destroy(&lines);
    if (rc == 0 && depth > 0) {
        s_err(err, errlen, name, self->entries[stack[depth - 1]].line,
              "if without endif (at end of file)");
        rc = -1;
    }
    xfree(stack);
    if (rc < 0)
        ruletab_destroy(&self);
    return self;
}

ruletab_t *ruletab_load(const char *path, char *err, size_t errlen)
{
    char why[256];
    size_t len = 0;
    char *buf =
        slurp_file(path, RULETAB_MAX_FILE, SLURP_REFUSE_LARGE, &len, NULL, why, sizeof(why));
    if (!buf) {
        snprintf(err, errlen, "%s: %s", path, why);
        return NULL;
    }
    const char *nul = memchr(buf, '\0', len);
    if (nul) {
        int line = 1;
        for (const char *q = buf; q < nul; q++)
            line += *q == '\n';
        s_err(err, errlen, path, line, "NUL byte in line");
        xfree(buf);
        return NULL;
    }
    ruletab_t *self = ruletab_parse(buf, path, err, errlen);
    xfree(buf);
    return self;
}

void ruletab_set_limits(ruletab_t *self, uint32_t match_limit, uint32_t depth_limit)
{
    pcre2_set_match_limit(self->mctx, match_limit);
    pcre2_set_depth_limit(self->mctx, depth_limit);
}

/* 1 matched, 0 did not, -1 stopped by a limit or error (counted). */
static int s_eval(const ruletab_t *self, const ruletab_rule_t *e, const char *line, size_t len,
                  pcre2_match_data *md)
{
    int rc = pcre2_match(e->re, (PCRE2_SPTR)line, len, 0, 0, md, self->mctx);
    if (rc >= 0)
        return 1; /* 0 only says the ovector was too small: still a match */
    if (rc == PCRE2_ERROR_NOMATCH)
        return 0;
    __atomic_fetch_add(&((ruletab_t *)self)->limit_hits, 1, __ATOMIC_RELAXED);
    return -1;
}

const ruletab_rule_t *ruletab_match(const ruletab_t *self, const char *line, size_t len)
{
    if (self == NULL || self->nrules == 0)
        return NULL;
    if (line == NULL)
        line = "";
    pcre2_match_data *md = s_thread()->md;
    for (size_t i = 0; i < self->n; i++) {
        const ruletab_rule_t *e = &self->entries[i];
        if (e->kind == S_ENDIF)
            continue;
        int r = s_eval(self, e, line, len, md);
        /* a limit hit never fires, negated or not: fail open */
        bool fires = r >= 0 && ((r == 1) != e->negate);
        if (e->kind == S_IF) {
            if (!fires)
                i = e->skip_to;
            continue;
        }
        if (fires)
            return e;
    }
    return NULL;
}

size_t ruletab_count(const ruletab_t *self)
{
    return self->nrules;
}

const char *ruletab_name(const ruletab_t *self)
{
    return self->name;
}

uint64_t ruletab_limit_hits(const ruletab_t *self)
{
    return __atomic_load_n(&self->limit_hits, __ATOMIC_RELAXED);
}

ruletab_action_t ruletab_rule_action(const ruletab_rule_t *rule)
{
    return rule->action;
}

const char *ruletab_rule_action_word(const ruletab_rule_t *rule)
{
    return rule->word;
}

const char *ruletab_rule_text(const ruletab_rule_t *rule)
{
    return rule->text;
}

const char *ruletab_rule_label(const ruletab_rule_t *rule)
{
    return rule->label;
}

int ruletab_rule_line(const ruletab_rule_t *rule)
{
    return rule->line;
}
