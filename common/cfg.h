/*
 * cfg - typed "key = value" configuration files, loaded once into a struct
 *
 * SYNTAX (Postfix main.cf / opendkim.conf style)
 *   # comment                      a line whose first non-blank is '#'
 *   key = value                    value runs to the end of the line, blanks trimmed
 *       more value                 a line starting with blanks continues the value
 *   [rule fleet_subject]           starts a section of type "rule" named "fleet_subject"
 *   Keys before the first section header are global; keys after a header belong
 *   to that section until the next header. '#' after a value is part of the
 *   value (as in main.cf). There is no quoting.
 *
 * TYPES (field type in the caller's struct in parentheses)
 *   string (char *)    any text; a NULL default leaves the field NULL
 *   bool (bool)        yes/no, true/false, on/off, 1/0 (any case)
 *   int (int64_t)      decimal, optional sign, bounds checked
 *   duration (int64_t milliseconds)  500ms 120s 2m 1h 7d 2w; a bare number
 *                      means the entry's default unit
 *   size (int64_t bytes)             64k 10m 1g (powers of 1024, any case);
 *                      a bare number means the entry's default unit (bytes if none)
 *   enum (int)         index of the value in the entry's word list (any case)
 *   list (cfg_list_t)  words separated by commas and/or blanks
 *   Defaults and bounds are text parsed by the same parser as the file.
 *
 * DESCRIPTION
 *   A program describes its configuration in one cfg_schema_t: a table of
 *   global parameters and one table per section type, each entry naming the
 *   field (offsetof) in a plain struct. cfg_load() fills that struct: first
 *   every default, then the file. Each section becomes one element of a
 *   caller-typed array in the global struct, filled with its own defaults.
 *   The loaded struct is never changed afterwards; on SIGHUP a program loads a
 *   new one and swaps the pointer (no globals here, no locks needed here).
 *   "-n" (check the config) is simply a load. Each cfg_head_t remembers the
 *   line each key was set on (cfg_line()), so a caller's own checks across
 *   keys can say FILE:LINE as the loader does.
 *
 *   Why not inih: Debian's libinih has no continuation lines in main.cf style,
 *   no typed tables, and its handler cannot report the line of an unknown key
 *   (only the line of the first error), so a strict loader would lose the
 *   FILE:LINE that administrators need. The grammar is small enough to parse
 *   here in a few hundred lines.
 *
 * DIAGNOSTICS
 *   Unknown key, malformed or out-of-bounds value, duplicate key, bad or
 *   duplicate section, continuation without a key: cfg_load()/cfg_parse()
 *   return -1 and write "FILE:LINE: what" lines (all of them, separated by
 *   '\n', truncated to errlen) into err. The caller decides, normally
 *   msg_fatal(EX_CONFIG, "%s", err). An invalid built-in default or bound is
 *   our own bug and is reported the same way with line 0.
 *
 * EXAMPLE
 *   typedef struct { cfg_head_t head; int64_t window_ms; } rule_cfg_t;
 *   typedef struct { char *listen; int64_t ttl_ms; rule_cfg_t *rules; size_t nrules; } conf_t;
 *   static const cfg_param_t rule_params[] = {
 *       CFG_DURATION(rule_cfg_t, window_ms, "window", "120s", "s", "1s", "1d", "counting window"),
 *       CFG_END};
 *   static const cfg_param_t params[] = {
 *       CFG_STRING(conf_t, listen, "listen", "tcp://0.0.0.0:7700", "event endpoint"),
 *       CFG_DURATION(conf_t, ttl_ms, "block_ttl", "1h", "s", "1m", "30d", "decision lifetime"),
 *       CFG_END};
 *   static const cfg_section_t sections[] = {
 *       CFG_SECTION(conf_t, rules, nrules, "rule", rule_cfg_t, rule_params, "a rule"),
 *       CFG_SECTION_END};
 *   static const cfg_schema_t schema = {params, sections};
 *
 *   conf_t *c = xcalloc(1, sizeof(*c));
 *   char err[4096];
 *   if (cfg_load(&schema, path, c, err, sizeof(err)) < 0)
 *       msg_fatal(EX_CONFIG, "%s", err);
 *   ...on SIGHUP: load a new conf_t the same way; on success swap the pointer,
 *   then cfg_free(&schema, old) and xfree(old) once no thread uses it.
 *
 * OWNERSHIP
 *   Strings, lists, section arrays and the heads' lines inside a filled struct
 *   belong to it; cfg_free() releases them and zeroes the struct. The schema
 *   is borrowed.
 */
#ifndef BS_CFG_H
#define BS_CFG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

/* Parameter types; the comment is the C type of the field it fills. */
typedef enum {
    CFG_T_STRING,   /* char * */
    CFG_T_BOOL,     /* bool */
    CFG_T_INT,      /* int64_t */
    CFG_T_DURATION, /* int64_t, milliseconds */
    CFG_T_SIZE,     /* int64_t, bytes */
    CFG_T_ENUM,     /* int, index into words */
    CFG_T_LIST,     /* cfg_list_t */
} cfg_type_t;

/* A list value: n words, also NULL-terminated in v. */
typedef struct {
    size_t n; /* number of words */
    char **v; /* the words, v[n] == NULL; NULL when n == 0 */
} cfg_list_t;

/* One parameter: a row of the caller's table. Tables end with a row whose name is NULL. */
typedef struct {
    const char *name;         /* key in the file, lower_snake */
    cfg_type_t type;          /* how the value is parsed and stored */
    const char *def;          /* default as text; NULL: string NULL, list empty, else 0 */
    const char *min;          /* lower bound as text (int/duration/size), NULL: none */
    const char *max;          /* upper bound as text (int/duration/size), NULL: none */
    const char *unit;         /* unit of a bare number: duration "ms|s|m|h|d|w", size "|k|m|g" */
    const char *const *words; /* enum: NULL-terminated list of accepted words */
    const char *help;         /* one line for --help and sample configs */
    size_t offset;            /* offsetof(struct, field) of the field filled */
} cfg_param_t;

/*
 * Every section struct must start with this member (named anything), so the
 * loader can record which section it is and where it came from. A global
 * struct may start with one too (cfg_schema_t.global_head): then only lines
 * is filled, so cross-field checks can name the line of the key they refuse.
 */
typedef struct {
    char *name;   /* the section's name: "fleet_subject" in [rule fleet_subject] */
    char *origin; /* "FILE:LINE" of its header, for the caller's own diagnostics */
    int *lines;   /* per key of its table (cfg_line()): line it was set on, 0 = default */
} cfg_head_t;

/* One section type. Tables end with a row whose type is NULL. */
typedef struct {
    const char *type;          /* word in the header: "rule" */
    const cfg_param_t *params; /* the section's keys */
    size_t size;               /* sizeof the section struct (starts with cfg_head_t) */
    size_t array_offset;       /* offsetof(global struct, T *array) receiving the sections */
    size_t count_offset;       /* offsetof(global struct, size_t count) */
    const char *help;          /* one line describing the section, for sample configs */
} cfg_section_t;

/* A program's whole configuration description. */
typedef struct {
    const cfg_param_t *params;     /* global keys */
    const cfg_section_t *sections; /* section types, or NULL when there are none */
    bool global_head;              /* the global struct starts with a cfg_head_t */
} cfg_schema_t;

/* Compile-time check that field f of T has C type ctype, yielding its offset. */
#define CFG_OFF(T, f, ctype) _Generic(((T *)0)->f, ctype : offsetof(T, f))

/* Table rows with the field type checked by the compiler. */
#define CFG_STRING(T, f, key, def_, help_)                                                         \
    {                                                                                              \
        .name = (key), .type = CFG_T_STRING, .def = (def_), .help = (help_),                       \
        .offset = CFG_OFF(T, f, char *)                                                            \
    }
#define CFG_BOOL(T, f, key, def_, help_)                                                           \
    {                                                                                              \
        .name = (key), .type = CFG_T_BOOL, .def = (def_), .help = (help_),                         \
        .offset = CFG_OFF(T, f, bool)                                                              \
    }
#define CFG_INT(T, f, key, def_, min_, max_, help_)                                                \
    {                                                                                              \
        .name = (key), .type = CFG_T_INT, .def = (def_), .min = (min_), .max = (max_),             \
        .help = (help_), .offset = CFG_OFF(T, f, int64_t)                                          \
    }
#define CFG_DURATION(T, f, key, def_, unit_, min_, max_, help_)                                    \
    {                                                                                              \
        .name = (key), .type = CFG_T_DURATION, .def = (def_), .unit = (unit_), .min = (min_),      \
        .max = (max_), .help = (help_), .offset = CFG_OFF(T, f, int64_t)                           \
    }
#define CFG_SIZE(T, f, key, def_, unit_, min_, max_, help_)                                        \
    {                                                                                              \
        .name = (key), .type = CFG_T_SIZE, .def = (def_), .unit = (unit_), .min = (min_),          \
        .max = (max_), .help = (help_), .offset = CFG_OFF(T, f, int64_t)                           \
    }
#define CFG_ENUM(T, f, key, def_, words_, help_)                                                   \
    {                                                                                              \
        .name = (key), .type = CFG_T_ENUM, .def = (def_), .words = (words_), .help = (help_),      \
        .offset = CFG_OFF(T, f, int)                                                               \
    }
#define CFG_LIST(T, f, key, def_, help_)                                                           \
    {                                                                                              \
        .name = (key), .type = CFG_T_LIST, .def = (def_), .help = (help_),                         \
        .offset = CFG_OFF(T, f, cfg_list_t)                                                        \
    }
#define CFG_END                                                                                    \
    {                                                                                              \
        .name = NULL                                                                               \
    }

/* A section type row; A is the global struct, arr its T * field, cnt its size_t count. */
#define CFG_SECTION(A, arr, cnt, word, T, params_, help_)                                          \
    {                                                                                              \
        .type = (word), .params = (params_), .size = sizeof(T), .array_offset = offsetof(A, arr),  \
        .count_offset = CFG_OFF(A, cnt, size_t), .help = (help_)                                   \
    }
#define CFG_SECTION_END                                                                            \
    {                                                                                              \
        .type = NULL                                                                               \
    }

/* Fills out (zeroed by the caller) from the file at path; 0, or -1 with errors in err. */
int cfg_load(const cfg_schema_t *schema, const char *path, void *out, char *err, size_t errlen);

/* As cfg_load, from text of len bytes; name is used as FILE in messages. */
int cfg_parse(const cfg_schema_t *schema, const char *text, size_t len, const char *name, void *out,
              char *err, size_t errlen);

/* Fills out (zeroed) with the defaults only; -1 only for a broken built-in default. */
int cfg_defaults(const cfg_schema_t *schema, void *out, char *err, size_t errlen);

/* Sets one global key of a filled struct (command-line "-o key=value"); 0 or -1 with err. */
int cfg_set(const cfg_schema_t *schema, void *out, const char *key, const char *value, char *err,
            size_t errlen);

/* "FILE:LINE" of the line key of params was set on in head's struct into buf, or fallback
 * (file when NULL) when it kept its default; returns buf. For messages about a key. */
const char *cfg_where(const cfg_head_t *head, const cfg_param_t *params, const char *key,
                      const char *file, const char *fallback, char *buf, size_t len);

/* Appends "AT: message" to err as one more line, the form cfg_load() reports in (truncated
 * to errlen): for the checks across keys a program makes after loading. */
void cfg_err_line(char *err, size_t errlen, const char *at, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

/* On a reload: copies into fresh the running value of each of keys (NULL-terminated, keys
 * of params, the table both structs were filled from) where the two differ, as the settings
 * that only a restart can change. Returns how many differed, their names in changed
 * (blank-separated, truncated to changed_len). */
int cfg_keep(const cfg_param_t *params, const char *const *keys, void *fresh, const void *running,
             char *changed, size_t changed_len);

/* The line of the file key of params was set on in head's struct, 0 when it kept its
 * default (or was set by cfg_set()); params is the table head's struct was filled from. */
int cfg_line(const cfg_head_t *head, const cfg_param_t *params, const char *key);

/* Releases strings, lists and sections inside out and zeroes it; safe on a zeroed struct. */
void cfg_free(const cfg_schema_t *schema, void *out);

/* Writes a commented sample config: every key with its help, bounds and default. */
void cfg_print_sample(const cfg_schema_t *schema, FILE *fp);

/* Writes one line per key "  key = default  help" (for --help). */
void cfg_print_help(const cfg_schema_t *schema, FILE *fp);

/* Value parsers the loader uses, for command lines (e.g. "--ttl 1h"); 0 or -1 (why in err). */
int cfg_parse_bool(const char *text, bool *out);
/* unit: the unit of a bare number ("s"); result in milliseconds. */
int cfg_parse_duration(const char *text, const char *unit, int64_t *ms_out, char *err,
                       size_t errlen);
/* unit: the unit of a bare number ("" or NULL: bytes); result in bytes. */
int cfg_parse_size(const char *text, const char *unit, int64_t *bytes_out, char *err,
                   size_t errlen);

/* Formats ms as the largest exact unit ("90s", "2m", "1500ms") into buf. */
void cfg_format_duration(int64_t ms, char *buf, size_t len);

#endif
