/*
 * ruletab - content rule tables in Postfix header_checks/body_checks syntax
 *
 * SYNTAX (as Postfix regexp_table(5) / pcre_table(5))
 *   /pattern/flags ACTION optional text    the rule fires when pattern matches
 *   !/pattern/flags ACTION optional text   the rule fires when pattern does not match
 *   if /pattern/flags                      the rules up to the matching endif apply
 *   if !/pattern/flags                     only when the line (does not) match; may nest
 *   endif
 *   # comment                              a line whose first non-blank is '#'
 *       more                               a line starting with blanks continues the last
 *   The delimiter is the first character after the optional '!' (normally '/');
 *   a backslash before it keeps it in the pattern. Flags: i toggles caseless
 *   matching (ON by default, as in Postfix), m multi-line, s dot-all, x extended.
 *   ACTION is one of REJECT DISCARD WARN HOLD IGNORE DUNNO PREPEND REPLACE
 *   REDIRECT FILTER BCC INFO PASS STRIP OK BOUNCE_RULE COUNT (any case; kept as
 *   written). The seed's rule is: /^From:.*Mailer.*$/ REJECT
 *
 * DESCRIPTION
 *   A table is compiled once with PCRE2 (JIT when the library has it) and is
 *   then read-only, so ruletab_match() is safe from any number of milter
 *   threads at once: each thread gets its own small match block and JIT
 *   stack (at most 1 MiB; a pthread key frees both when the thread exits). Rules are tried in order
 * and the first that fires wins, as in Postfix. Matching is bounded by a match limit and a depth
 * limit (and the JIT stack), so a pathological pattern cannot hang a mail thread: a limit hit
 * counts as "did not fire" for that rule (and for an if block: its rules are skipped), whatever the
 * negation, and is counted in ruletab_limit_hits().
 *
 *   A rule's label is the text after its ACTION word when there is one, else
 *   "NAME:LINE"; it names the rule when a match is reported as a content rule
 *   violation. Postfix "$1" substitution is not done: the text is kept as written.
 *
 * DIAGNOSTICS
 *   ruletab_load()/ruletab_parse() return NULL and write "NAME:LINE: what" into
 *   err for the first error: bad delimiter, unknown flag, missing action,
 *   unknown action, PCRE2 compile error (with its text and offset), if without
 *   endif, endif without if. This is the only module that calls PCRE2.
 *
 * OWNERSHIP
 *   A ruletab_t belongs to its creator (ruletab_destroy). Rules are borrowed
 *   from their table and live as long as it.
 */
#ifndef BS_RULETAB_H
#define BS_RULETAB_H

#include <stddef.h>
#include <stdint.h>

typedef struct ruletab ruletab_t;
typedef struct ruletab_rule ruletab_rule_t;

/* Actions; the word as written is kept too (ruletab_rule_action_word). */
typedef enum {
    RULETAB_REJECT,
    RULETAB_DISCARD,
    RULETAB_WARN,
    RULETAB_HOLD,
    RULETAB_IGNORE,
    RULETAB_DUNNO,
    RULETAB_PREPEND,
    RULETAB_REPLACE,
    RULETAB_REDIRECT,
    RULETAB_FILTER,
    RULETAB_BCC,
    RULETAB_INFO,
    RULETAB_PASS,
    RULETAB_STRIP,
    RULETAB_OK,
    RULETAB_BOUNCE_RULE, /* ours: the line marks a bounce-rule violation */
    RULETAB_COUNT,       /* ours: count the match, take no action */
} ruletab_action_t;

/* Default limits: match calls per rule and backtracking depth per rule. */
#define RULETAB_MATCH_LIMIT 1000000
#define RULETAB_DEPTH_LIMIT 10000

/* Reads and compiles the table at path; NULL with "PATH:LINE: ..." in err. */
ruletab_t *ruletab_load(const char *path, char *err, size_t errlen);

/* Compiles text (NUL-terminated); name stands for the file in labels and errors. */
ruletab_t *ruletab_parse(const char *text, const char *name, char *err, size_t errlen);

/* Frees the table and sets *self_p = NULL; safe on NULL and twice. */
void ruletab_destroy(ruletab_t **self_p);

/* Changes the limits (before the table is shared between threads). */
void ruletab_set_limits(ruletab_t *self, uint32_t match_limit, uint32_t depth_limit);

/* The first rule that fires on line[0..len) (may contain newlines), or NULL. Thread-safe. */
const ruletab_rule_t *ruletab_match(const ruletab_t *self, const char *line, size_t len);

/* Number of rules (if/endif lines not counted). */
size_t ruletab_count(const ruletab_t *self);

/* The name the table was loaded under. */
const char *ruletab_name(const ruletab_t *self);

/* How many pattern evaluations stopped at a limit since the table was made. */
uint64_t ruletab_limit_hits(const ruletab_t *self);

/* The rule's action. */
ruletab_action_t ruletab_rule_action(const ruletab_rule_t *rule);
/* The action word as written ("REJECT", "reject"). */
const char *ruletab_rule_action_word(const ruletab_rule_t *rule);
/* The text after the action word, "" when none. */
const char *ruletab_rule_text(const ruletab_rule_t *rule);
/* The text when there is one, else "NAME:LINE": what a violation is counted under. */
const char *ruletab_rule_label(const ruletab_rule_t *rule);
/* The line the rule starts on. */
int ruletab_rule_line(const ruletab_rule_t *rule);

/* The canonical upper-case word of an action. */
const char *ruletab_action_name(ruletab_action_t action);

#endif
