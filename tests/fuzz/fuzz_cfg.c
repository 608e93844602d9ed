/*
 * fuzz_cfg - libFuzzer target: the config file parser on any file contents
 *
 * The input is a whole config file. It is parsed three ways: by cfg_parse()
 * against a schema here that has every parameter type and a section type (so
 * any key the fuzzer finds is known to some row), and, through a memfd named
 * by /proc/self/fd, by the real loaders of both programs,
 * sensor_config_load() and agg_config_load(), which add their own checks on
 * top. Every filled field is read back, then freed: a leak or a string left
 * dangling is caught by the sanitizers. Each line of the input is also fed to
 * the value parsers (bool, duration, size) and to cfg_set(), as a command
 * line would.
 */
#include <inttypes.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "agg_config.h"
#include "cfg.h"
#include "sensor_config.h"
#include "xalloc.h"
#include "fuzz_lib.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

typedef struct {
    cfg_head_t head;
    char *scope;
    int64_t window_ms;
    int64_t min_events;
    bool enforce;
    cfg_list_t classes;
} s_rule_t;

typedef struct {
    char *listen;
    bool foreground;
    int64_t workers;
    int64_t window_ms;
    int64_t max_message;
    int mode;
    cfg_list_t networks;
    char *comment;
    s_rule_t *rules;
    size_t nrules;
} s_conf_t;

static const char *const s_modes[] = {"enforce", "observe", "off", NULL};

static const cfg_param_t s_rule_params[] = {
    CFG_STRING(s_rule_t, scope, "scope", "subject", "key the rule counts"),
    CFG_DURATION(s_rule_t, window_ms, "window", "60s", "s", "1s", "7d", "counting window"),
    CFG_INT(s_rule_t, min_events, "min_events", "10", "1", "1000000", "events to fire"),
    CFG_BOOL(s_rule_t, enforce, "enforce", "yes", "block, or only count"),
    CFG_LIST(s_rule_t, classes, "classes", "bounce", "classes that count"),
    CFG_END,
};

static const cfg_param_t s_params[] = {
    CFG_STRING(s_conf_t, listen, "listen", "tcp://*:7700", "event endpoint"),
    CFG_BOOL(s_conf_t, foreground, "foreground", "no", "stay in the foreground"),
    CFG_INT(s_conf_t, workers, "workers", "2", "-64", "64", "worker threads"),
    CFG_DURATION(s_conf_t, window_ms, "window", "120", "s", NULL, NULL, "default window"),
    CFG_SIZE(s_conf_t, max_message, "max_message", "10m", "k", NULL, NULL, "body bound"),
    CFG_ENUM(s_conf_t, mode, "mode", "enforce", s_modes, "what decisions do"),
    CFG_LIST(s_conf_t, networks, "internal_networks", "127.0.0.0/8 ::1/128", "networks"),
    CFG_STRING(s_conf_t, comment, "comment", NULL, "free text"),
    CFG_END,
};

static const cfg_section_t s_sections[] = {
    CFG_SECTION(s_conf_t, rules, nrules, "rule", s_rule_t, s_rule_params, "one counting rule"),
    CFG_SECTION_END,
};

static const cfg_schema_t s_schema = {.params = s_params, .sections = s_sections};

/* what the reads add up to: kept so that they are not optimised away */
static volatile size_t s_sink;

static size_t s_list(const cfg_list_t *l)
{
    size_t sink = l->n;
    for (size_t i = 0; i < l->n; i++)
        sink += strlen(l->v[i]);
    if (l->n && l->v[l->n] != NULL)
        __builtin_trap(); /* cfg.h: v[n] == NULL */
    return sink;
}

static size_t s_str(const char *s)
{
    return s ? strlen(s) : 0;
}

static size_t s_read_conf(const s_conf_t *c)
{
    size_t sink = s_str(c->listen) + s_str(c->comment) + (size_t)c->foreground +
                  (size_t)c->workers + (size_t)c->window_ms + (size_t)c->max_message +
                  (size_t)c->mode + s_list(&c->networks);
    for (size_t i = 0; i < c->nrules; i++) {
        const s_rule_t *r = &c->rules[i];
        sink += s_str(r->head.name) + s_str(r->head.origin) + s_str(r->scope) +
                (size_t)r->window_ms + (size_t)r->min_events + (size_t)r->enforce +
                s_list(&r->classes);
    }
    return sink;
}

/* The value parsers and cfg_set on one line, as "-o key=value" would give it. */
static size_t s_line(s_conf_t *c, const char *line)
{
    size_t sink = 0;
    char err[256];
    bool b;
    int64_t v;
    if (cfg_parse_bool(line, &b) == 0)
        sink += b;
    if (cfg_parse_duration(line, "s", &v, err, sizeof(err)) == 0) {
        char buf[64];
        cfg_format_duration(v, buf, sizeof(buf));
        sink += strlen(buf);
        /* what the formatter writes, the parser reads back to the same value */
        int64_t back;
        if (cfg_parse_duration(buf, "s", &back, err, sizeof(err)) != 0 || back != v)
            __builtin_trap();
    }
    if (cfg_parse_size(line, NULL, &v, err, sizeof(err)) == 0)
        sink += (size_t)v;
    char *eq = strchr(line, '=');
    if (eq) {
        char *key = xstrndup(line, (size_t)(eq - line));
        if (cfg_set(&s_schema, c, key, eq + 1, err, sizeof(err)) != 0)
            sink += strlen(err);
        xfree(key);
    }
    return sink;
}

/* The file as the programs' loaders read it: a memfd named by its /proc path. */
static size_t s_loaders(const uint8_t *data, size_t size)
{
    size_t sink = 0;
    char path[64];
    int fd = fuzz_memfd("fuzz_cfg", data, size, path, sizeof(path));
    if (fd < 0)
        return 0;
    char err[4096];
    sensor_config_t *sc = sensor_config_load(path, err, sizeof(err));
    if (sc) {
        sink += (size_t)sensor_config_enforces_class(sc, "bounce");
        sensor_config_destroy(&sc);
    } else {
        sink += strlen(err);
    }
    agg_config_t *ac = agg_config_load(path, err, sizeof(err));
    if (ac)
        agg_config_destroy(&ac);
    else
        sink += strlen(err);
    close(fd);
    return sink;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    size_t sink = 0;
    char err[4096];
    s_conf_t c;
    memset(&c, 0, sizeof(c));
    if (cfg_parse(&s_schema, (const char *)data, size, "fuzz.cf", &c, err, sizeof(err)) == 0)
        sink += s_read_conf(&c);
    else
        sink += strlen(err);
    cfg_free(&s_schema, &c);

    /* each line against a struct holding the defaults */
    memset(&c, 0, sizeof(c));
    if (cfg_defaults(&s_schema, &c, err, sizeof(err)) != 0)
        __builtin_trap();
    char *text = xstrndup((const char *)data, size);
    char *save = NULL;
    for (char *line = strtok_r(text, "\n", &save); line; line = strtok_r(NULL, "\n", &save))
        sink += s_line(&c, line);
    sink += s_read_conf(&c);
    cfg_free(&s_schema, &c);
    xfree(text);

    sink += s_loaders(data, size);
    s_sink = sink;
    return 0;
}
