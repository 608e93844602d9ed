/*
 * cli_args - the backstop command line, parsed into one control request
 *
 * See cli_args.h. One pass collects global options, the command words,
 * positionals and the command's options (as borrowed strings); a second step
 * per command checks them and fills the request.
 */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bs_enums.h"
#include "cfg.h"
#include "cli_args.h"
#include "cli_key.h"
#include "mime.h"
#include "wire.h"
#include "xalloc.h"
#include "zsock.h"

#define S_MAX_POS 64 /* positionals kept (why joins them) */

/* Options a command may take (borrowed from argv). */
typedef struct {
    const char *scope;  /* --scope / --type */
    const char *value;  /* --value */
    const char *ttl;    /* --ttl */
    const char *action; /* --action */
    const char *reach;  /* --reach */
    const char *site;   /* --site */
    const char *reason; /* --reason */
    const char *limit;  /* --limit */
    const char *keydir; /* --key-dir */
    const char *pubkey; /* --public-key */
    bool all_mail;      /* --all-mail */
    bool force;         /* --force */
} s_opts_t;

/* Which command options a command accepts (bit per option). */
enum {
    O_SCOPE = 1 << 0,
    O_TYPE = 1 << 1,
    O_VALUE = 1 << 2,
    O_TTL = 1 << 3,
    O_ACTION = 1 << 4,
    O_REACH = 1 << 5,
    O_SITE = 1 << 6,
    O_REASON = 1 << 7,
    O_LIMIT = 1 << 8,
    O_KEYDIR = 1 << 9,
    O_ALLMAIL = 1 << 10,
    O_PUBKEY = 1 << 11,
    O_FORCE = 1 << 12,
};

/* A command option's name, flag and where it goes. */
typedef struct {
    const char *name; /* without the leading "--" */
    int flag;         /* O_* */
    size_t offset;    /* offsetof(s_opts_t, field) */
    bool boolean;     /* takes no value: field is a bool, set by the option */
} s_optdef_t;

static const s_optdef_t s_optdefs[] = {
    {"scope", O_SCOPE, offsetof(s_opts_t, scope), false},
    {"type", O_TYPE, offsetof(s_opts_t, scope), false},
    {"value", O_VALUE, offsetof(s_opts_t, value), false},
    {"ttl", O_TTL, offsetof(s_opts_t, ttl), false},
    {"action", O_ACTION, offsetof(s_opts_t, action), false},
    {"reach", O_REACH, offsetof(s_opts_t, reach), false},
    {"site", O_SITE, offsetof(s_opts_t, site), false},
    {"reason", O_REASON, offsetof(s_opts_t, reason), false},
    {"limit", O_LIMIT, offsetof(s_opts_t, limit), false},
    {"key-dir", O_KEYDIR, offsetof(s_opts_t, keydir), false},
    {"public-key", O_PUBKEY, offsetof(s_opts_t, pubkey), false},
    {"all-mail", O_ALLMAIL, offsetof(s_opts_t, all_mail), true},
    {"force", O_FORCE, offsetof(s_opts_t, force), true},
    {NULL, 0, 0, false},
};

/* One command (or "command subcommand") the CLI knows. */
typedef struct {
    const char *name;                      /* as printed: "decisions add" */
    const char *word;                      /* first word */
    const char *sub;                       /* second word, NULL: none; "" : the default (list) */
    Backstop__ControlRequest__Command cmd; /* request it sends */
    int opts;                              /* O_* it accepts */
    int min_pos, max_pos;                  /* positionals after the words (-1: any number) */
} s_cmddef_t;

static const s_cmddef_t s_cmds[] = {
    {"status", "status", NULL, BACKSTOP__CONTROL_REQUEST__COMMAND__STATUS, 0, 0, 0},
    {"decisions list", "decisions", "list", BACKSTOP__CONTROL_REQUEST__COMMAND__DECISION_LIST,
     O_LIMIT, 0, 0},
    {"decisions show", "decisions", "show", BACKSTOP__CONTROL_REQUEST__COMMAND__DECISION_SHOW, 0, 1,
     1},
    {"decisions add", "decisions", "add", BACKSTOP__CONTROL_REQUEST__COMMAND__DECISION_ADD,
     O_SCOPE | O_VALUE | O_TTL | O_ACTION | O_REACH | O_SITE | O_REASON | O_ALLMAIL | O_FORCE, 0,
     0},
    {"decisions del", "decisions", "del", BACKSTOP__CONTROL_REQUEST__COMMAND__DECISION_DEL,
     O_REASON, 1, 1},
    {"why", "why", NULL, BACKSTOP__CONTROL_REQUEST__COMMAND__WHY, 0, 1, -1},
    {"top", "top", NULL, BACKSTOP__CONTROL_REQUEST__COMMAND__TOP, O_SCOPE | O_LIMIT, 0, 0},
    {"allow list", "allow", "list", BACKSTOP__CONTROL_REQUEST__COMMAND__ALLOW_LIST, 0, 0, 0},
    {"allow add", "allow", "add", BACKSTOP__CONTROL_REQUEST__COMMAND__ALLOW_ADD,
     O_TYPE | O_SCOPE | O_VALUE | O_REASON | O_FORCE, 0, 0},
    {"allow del", "allow", "del", BACKSTOP__CONTROL_REQUEST__COMMAND__ALLOW_DEL,
     O_TYPE | O_SCOPE | O_VALUE, 0, 1},
    {"sites list", "sites", "list", BACKSTOP__CONTROL_REQUEST__COMMAND__SITES, 0, 0, 0},
    {"sites add", "sites", "add", BACKSTOP__CONTROL_REQUEST__COMMAND__SITE_ADD, O_KEYDIR | O_PUBKEY,
     1, 1},
    {"sites del", "sites", "del", BACKSTOP__CONTROL_REQUEST__COMMAND__SITE_DEL, 0, 1, 1},
    {NULL, NULL, NULL, 0, 0, 0, 0},
};

/* Commands with subcommands take "list" when none is given. */
static const char *const s_words[] = {"status", "decisions", "why", "top", "allow", "sites", NULL};

static cli_args_result_t s_fail(cli_args_result_t r, char *err, size_t errlen, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

static cli_args_result_t s_fail(cli_args_result_t r, char *err, size_t errlen, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(err, errlen, fmt, ap);
    va_end(ap);
    return r;
}

/* A decimal in [min, max]; 0 or -1. */
static int s_uint(const char *text, long min, long max, long *out)
{
    char *end;
    errno = 0;
    long v = strtol(text, &end, 10);
    if (errno || end == text || *end || v < min || v > max)
        return -1;
    *out = v;
    return 0;
}

/* An endpoint the control socket can connect to: ipc://PATH, or tcp://HOST:PORT as
 * ZeroMQ takes it (zsock_endpoint_check()). */
static bool s_endpoint_ok(const char *ep)
{
    return (strncmp(ep, "ipc://", 6) == 0 || strncmp(ep, "tcp://", 6) == 0) &&
           zsock_endpoint_check(ep, 0, NULL, 0) == 0;
}

/* Handles a global option at argv[*i]; 1 if it was one, 0 if not, -1 on error (err set). */
static int s_global(cli_args_t *args, int argc, char *const argv[], int *i, char *err,
                    size_t errlen)
{
    const char *a = argv[*i];
    const char *name = a + 2, *eq = strchr(a, '=');
    size_t nlen = eq ? (size_t)(eq - name) : strlen(name);
    const char *value = NULL;
    int takes;

    if (strncmp(a, "--", 2) != 0)
        return 0;
    if (nlen == 4 && strncmp(name, "json", 4) == 0)
        takes = 0;
    else if ((nlen == 6 && strncmp(name, "socket", 6) == 0) ||
             (nlen == 7 && strncmp(name, "timeout", 7) == 0) ||
             (nlen == 6 && strncmp(name, "config", 6) == 0))
        takes = 1;
    else
        return 0;
    if (takes) {
        if (eq) {
            value = eq + 1;
        } else if (*i + 1 < argc) {
            value = argv[++*i];
        } else {
            snprintf(err, errlen, "option --%.*s needs a value", (int)nlen, name);
            return -1;
        }
    } else if (eq) {
        snprintf(err, errlen, "option --%.*s takes no value", (int)nlen, name);
        return -1;
    }
    if (name[0] == 'j') {
        args->json = true;
    } else if (name[0] == 's') {
        if (!s_endpoint_ok(value)) {
            snprintf(err, errlen,
                     "--socket wants a ZeroMQ endpoint, ipc://PATH or tcp://HOST:PORT, not \"%s\"",
                     value);
            return -1;
        }
        xfree(args->socket);
        args->socket = xstrdup(value);
    } else if (name[0] == 'c') {
        xfree(args->config);
        args->config = xstrdup(value);
    } else {
        long ms;
        if (s_uint(value, 1, 3600000, &ms) < 0) {
            snprintf(err, errlen, "--timeout wants milliseconds from 1 to 3600000, not \"%s\"",
                     value);
            return -1;
        }
        args->timeout_ms = (int)ms;
    }
    return 1;
}

/* Handles a command option at argv[*i] for cmd; 0, or -1 (err set). */
static int s_cmdopt(const s_cmddef_t *cmd, s_opts_t *o, int argc, char *const argv[], int *i,
                    char *err, size_t errlen)
{
    const char *a = argv[*i];
    const char *name = a + 2, *eq = strchr(a, '=');
    size_t nlen = eq ? (size_t)(eq - name) : strlen(name);

    for (const s_optdef_t *d = s_optdefs; d->name; d++) {
        if (strlen(d->name) != nlen || strncmp(d->name, name, nlen) != 0)
            continue;
        if (!(cmd->opts & d->flag))
            break;
        if (d->boolean) {
            if (eq) {
                snprintf(err, errlen, "option --%s takes no value", d->name);
                return -1;
            }
            *(bool *)((char *)o + d->offset) = true;
            return 0;
        }
        const char *value;
        if (eq) {
            value = eq + 1;
        } else if (*i + 1 < argc) {
            value = argv[++*i];
        } else {
            snprintf(err, errlen, "option --%s needs a value", d->name);
            return -1;
        }
        *(const char **)((char *)o + d->offset) = value;
        return 0;
    }
    snprintf(err, errlen, "%s: unknown option %.*s (see backstop %s --help)", cmd->name,
             (int)(nlen + 2), a, cmd->word);
    return -1;
}

/* s as valid UTF-8 (bytes of another charset converted, as keys' values are), for xfree. */
static char *s_utf8(const char *s)
{
    return mime_to_utf8(NULL, s, strlen(s));
}

/* The operator's name for the request (for xfree): $SUDO_USER or $USER goes into the
 * aggregator's log and other operators' listings, so anything but printable ASCII
 * becomes '?', and it is cut to what the wire takes. */
static char *s_who(const char *who)
{
    char *w = xstrndup(who, WIRE_MAX_ID);
    for (char *p = w; *p; p++)
        if ((unsigned char)*p <= ' ' || (unsigned char)*p >= 0x7f)
            *p = '?';
    return w;
}

/* Copies a string into the request if it is within max bytes; 0 or -1. */
static int s_set(char **field, const char *value, size_t max)
{
    if (strlen(value) > max)
        return -1;
    xfree(*field);
    *field = xstrdup(value);
    return 0;
}

/* The checks and request fields of "decisions add". */
static cli_args_result_t s_decision_add(cli_args_t *args, const s_opts_t *o, char *err,
                                        size_t errlen)
{
    Backstop__ControlRequest *r = &args->req;
    char kerr[200];

    if (o->scope == NULL || o->value == NULL)
        return s_fail(CLI_ARGS_USAGE, err, errlen,
                      "decisions add: --scope and --value are required");
    int scope = cli_key_scope_parse(o->scope);
    if (scope < 0 || scope == BS_SCOPE_SENDER_DOMAIN || scope == BS_SCOPE_SITE)
        return s_fail(CLI_ARGS_USAGE, err, errlen,
                      "decisions add: --scope is subject, orig_subject, ip, net or subject_ip, "
                      "not \"%s\"",
                      o->scope);
    char *text = cli_key_decision_text((bs_scope_t)scope, o->value, kerr, sizeof(kerr));
    if (text == NULL)
        return s_fail(CLI_ARGS_DATA, err, errlen, "decisions add: %s", kerr);
    r->has_scope = 1;
    r->scope = (Backstop__Scope)scope;
    r->value = text;

    int64_t ttl_ms = 3600000;
    if (o->ttl && cfg_parse_duration(o->ttl, "s", &ttl_ms, kerr, sizeof(kerr)) < 0)
        return s_fail(CLI_ARGS_USAGE, err, errlen, "decisions add: --ttl %s: %s", o->ttl, kerr);
    if (ttl_ms < 1000 || ttl_ms / 1000 > CLI_TTL_MAX_S)
        return s_fail(CLI_ARGS_USAGE, err, errlen,
                      "decisions add: --ttl must be between 1s and 30d, not \"%s\"", o->ttl);
    r->has_ttl_s = 1;
    r->ttl_s = (uint32_t)(ttl_ms / 1000);

    int action = o->action ? bs_enums_action_parse(o->action) : BS_ACTION_REJECT;
    if (action <= 0)
        return s_fail(CLI_ARGS_USAGE, err, errlen,
                      "decisions add: --action is reject, tempfail or tag, not \"%s\"", o->action);
    r->has_action = 1;
    r->action = (Backstop__Action)action;

    int reach = BS_REACH_FLEET;
    if (o->reach) {
        reach = strcmp(o->reach, "site") == 0 ? BS_REACH_LOCAL : bs_enums_reach_parse(o->reach);
        if (reach <= 0)
            return s_fail(CLI_ARGS_USAGE, err, errlen,
                          "decisions add: --reach is fleet or site, not \"%s\"", o->reach);
    } else if (o->site) {
        reach = BS_REACH_LOCAL;
    }
    if (reach == BS_REACH_LOCAL && o->site == NULL)
        return s_fail(CLI_ARGS_USAGE, err, errlen, "decisions add: --reach site needs --site S");
    if (reach == BS_REACH_FLEET && o->site)
        return s_fail(CLI_ARGS_USAGE, err, errlen,
                      "decisions add: --site applies only with --reach site");
    if (o->site) {
        if (!cli_key_site_valid(o->site))
            return s_fail(CLI_ARGS_DATA, err, errlen, "decisions add: invalid site name \"%s\"",
                          o->site);
        r->site = xstrdup(o->site);
    }
    r->has_reach = 1;
    r->reach = (Backstop__Reach)reach;
    if (o->all_mail) {
        r->has_all_mail = 1;
        r->all_mail = 1;
    }
    if (o->force) {
        r->has_force = 1;
        r->force = 1;
    }
    return CLI_ARGS_RUN;
}

/* The checks and request fields of "allow add" and "allow del". */
static cli_args_result_t s_allow(cli_args_t *args, const s_cmddef_t *cmd, const s_opts_t *o,
                                 int npos, char *const pos[], char *err, size_t errlen)
{
    Backstop__ControlRequest *r = &args->req;
    char kerr[200];

    if (npos == 1 && cmd->cmd == BACKSTOP__CONTROL_REQUEST__COMMAND__ALLOW_DEL) {
        if (o->scope || o->value)
            return s_fail(CLI_ARGS_USAGE, err, errlen,
                          "allow del: give either ID or --type and --value");
        if (s_set(&r->id, pos[0], WIRE_MAX_ID) < 0)
            return s_fail(CLI_ARGS_DATA, err, errlen, "allow del: id too long");
        return CLI_ARGS_RUN;
    }
    if (o->scope == NULL || o->value == NULL)
        return s_fail(CLI_ARGS_USAGE, err, errlen, "%s: --type and --value are required",
                      cmd->name);
    int scope = cli_key_scope_parse(o->scope);
    if (scope < 0 || scope == BS_SCOPE_SUBJECT_IP)
        return s_fail(CLI_ARGS_USAGE, err, errlen,
                      "%s: --type is ip, net, subject, orig_subject, sender_domain or site, "
                      "not \"%s\"",
                      cmd->name, o->scope);
    char *text = cli_key_text((bs_scope_t)scope, o->value, kerr, sizeof(kerr));
    if (text == NULL)
        return s_fail(CLI_ARGS_DATA, err, errlen, "%s: %s", cmd->name, kerr);
    r->has_scope = 1;
    r->scope = (Backstop__Scope)scope;
    r->value = text;
    if (o->force) {
        r->has_force = 1;
        r->force = 1;
    }
    return CLI_ARGS_RUN;
}

/* Finds the command for the words at argv[*i] (advancing *i past them); NULL + err. */
static const s_cmddef_t *s_find(int argc, char *const argv[], int *i, char *err, size_t errlen)
{
    const char *word = argv[*i];
    const s_cmddef_t *first = NULL;

    for (const s_cmddef_t *c = s_cmds; c->name; c++) {
        if (strcmp(c->word, word) != 0)
            continue;
        if (first == NULL)
            first = c;
        if (c->sub == NULL) {
            (*i)++;
            return c;
        }
    }
    if (first == NULL) {
        snprintf(err, errlen, "unknown command \"%s\" (see backstop --help)", word);
        return NULL;
    }
    (*i)++;
    /* a second word that is a subcommand; otherwise "list" */
    if (*i < argc && argv[*i][0] != '-') {
        for (const s_cmddef_t *c = first; c->name && strcmp(c->word, word) == 0; c++) {
            if (strcmp(c->sub, argv[*i]) == 0) {
                (*i)++;
                return c;
            }
        }
        snprintf(err, errlen, "%s: unknown subcommand \"%s\" (see backstop %s --help)", word,
                 argv[*i], word);
        return NULL;
    }
    return first;
}

cli_args_result_t cli_args_parse(cli_args_t *args, int argc, char *const argv[], const char *who,
                                 char *err, size_t errlen)
{
    s_opts_t o;
    char *pos[S_MAX_POS];
    int npos = 0, i = 1, dashdash = 0;
    const s_cmddef_t *cmd = NULL;
    Backstop__ControlRequest *r = &args->req;

    memset(args, 0, sizeof(*args));
    memset(&o, 0, sizeof(o));
    backstop__control_request__init(r);
    args->timeout_ms = CLI_TIMEOUT_MS_DEFAULT;
    err[0] = '\0';

    /* global options, up to the command */
    for (; i < argc; i++) {
        const char *a = argv[i];
        if (strcmp(a, "-h") == 0 || strcmp(a, "--help") == 0)
            return CLI_ARGS_HELP;
        if (strcmp(a, "--version") == 0)
            return CLI_ARGS_VERSION;
        if (a[0] != '-' || a[1] == '\0')
            break;
        int g = s_global(args, argc, argv, &i, err, errlen);
        if (g < 0)
            return CLI_ARGS_USAGE;
        if (g == 0)
            return s_fail(CLI_ARGS_USAGE, err, errlen, "unknown option %s (see backstop --help)",
                          a);
    }
    if (i >= argc)
        return s_fail(CLI_ARGS_USAGE, err, errlen,
                      "no command given (status, decisions, why, top, allow, sites; see "
                      "backstop --help)");
    if (strcmp(argv[i], "help") == 0) {
        if (i + 1 < argc) {
            for (int w = 0; s_words[w]; w++)
                if (strcmp(s_words[w], argv[i + 1]) == 0)
                    args->help_topic = s_words[w];
            if (args->help_topic == NULL)
                return s_fail(CLI_ARGS_USAGE, err, errlen, "help: unknown command \"%s\"",
                              argv[i + 1]);
        }
        return CLI_ARGS_HELP;
    }
    cmd = s_find(argc, argv, &i, err, errlen);
    if (cmd == NULL)
        return CLI_ARGS_USAGE;
    args->command_name = cmd->name;
    for (int w = 0; s_words[w]; w++)
        if (strcmp(s_words[w], cmd->word) == 0)
            args->help_topic = s_words[w];

    /* the command's options and positionals, globals allowed anywhere */
    for (; i < argc; i++) {
        const char *a = argv[i];
        if (!dashdash && strcmp(a, "--") == 0) {
            dashdash = 1;
            continue;
        }
        if (!dashdash && (strcmp(a, "-h") == 0 || strcmp(a, "--help") == 0))
            return CLI_ARGS_HELP;
        if (!dashdash && a[0] == '-' && a[1] != '\0') {
            int g = s_global(args, argc, argv, &i, err, errlen);
            if (g < 0)
                return CLI_ARGS_USAGE;
            if (g == 1)
                continue;
            if (a[1] != '-')
                return s_fail(CLI_ARGS_USAGE, err, errlen,
                              "%s: unknown option %s (see backstop %s --help)", cmd->name, a,
                              cmd->word);
            if (s_cmdopt(cmd, &o, argc, argv, &i, err, errlen) < 0)
                return CLI_ARGS_USAGE;
            continue;
        }
        if (npos == S_MAX_POS)
            return s_fail(CLI_ARGS_USAGE, err, errlen, "%s: too many arguments", cmd->name);
        pos[npos++] = argv[i];
    }
    if (npos < cmd->min_pos)
        return s_fail(CLI_ARGS_USAGE, err, errlen, "%s: missing argument (see backstop %s --help)",
                      cmd->name, cmd->word);
    if (cmd->max_pos >= 0 && npos > cmd->max_pos)
        return s_fail(CLI_ARGS_USAGE, err, errlen, "%s: unexpected argument \"%s\"", cmd->name,
                      pos[cmd->max_pos]);

    r->command = cmd->cmd;
    if (who && who[0])
        r->who = s_who(who);
    if (o.reason) {
        char *reason = s_utf8(o.reason);
        int rc = s_set(&r->reason, reason, WIRE_MAX_TEXT);
        xfree(reason);
        if (rc < 0)
            return s_fail(CLI_ARGS_DATA, err, errlen, "%s: --reason is longer than %d bytes",
                          cmd->name, WIRE_MAX_TEXT);
        if (!cli_key_line_ok(r->reason))
            return s_fail(CLI_ARGS_DATA, err, errlen,
                          "%s: --reason must be one line of printable text", cmd->name);
    }

    switch (cmd->cmd) {
    case BACKSTOP__CONTROL_REQUEST__COMMAND__DECISION_LIST: {
        long limit = CLI_LIST_LIMIT_DEFAULT;
        if (o.limit && s_uint(o.limit, 1, CLI_LIST_LIMIT_MAX, &limit) < 0)
            return s_fail(CLI_ARGS_USAGE, err, errlen,
                          "decisions list: --limit wants a number from 1 to %d, not \"%s\"",
                          CLI_LIST_LIMIT_MAX, o.limit);
        r->has_limit = 1;
        r->limit = (uint32_t)limit;
        return CLI_ARGS_RUN;
    }
    case BACKSTOP__CONTROL_REQUEST__COMMAND__DECISION_SHOW:
    case BACKSTOP__CONTROL_REQUEST__COMMAND__DECISION_DEL:
        if (s_set(&r->id, pos[0], WIRE_MAX_ID) < 0)
            return s_fail(CLI_ARGS_DATA, err, errlen, "%s: \"%s\" is not a decision id", cmd->name,
                          pos[0]);
        return CLI_ARGS_RUN;
    case BACKSTOP__CONTROL_REQUEST__COMMAND__DECISION_ADD:
        return s_decision_add(args, &o, err, errlen);
    case BACKSTOP__CONTROL_REQUEST__COMMAND__WHY: {
        size_t len = 0;
        for (int k = 0; k < npos; k++)
            len += strlen(pos[k]) + 1;
        char *q = xmalloc(len + 1);
        q[0] = '\0';
        for (int k = 0; k < npos; k++) {
            if (k)
                strcat(q, " ");
            strcat(q, pos[k]);
        }
        r->query = s_utf8(q);
        xfree(q);
        q = r->query;
        if (!cli_key_line_ok(q))
            return s_fail(CLI_ARGS_DATA, err, errlen,
                          "why: give a decision id, an IP address or a subject, on one line");
        if (q[0] == '\0' || strlen(q) > WIRE_MAX_TEXT)
            return s_fail(CLI_ARGS_DATA, err, errlen,
                          "why: give a decision id, an IP address or a subject (at most %d "
                          "bytes)",
                          WIRE_MAX_TEXT);
        return CLI_ARGS_RUN;
    }
    case BACKSTOP__CONTROL_REQUEST__COMMAND__TOP: {
        long limit = CLI_TOP_LIMIT_DEFAULT;
        if (o.scope) {
            int scope = cli_key_scope_parse(o.scope);
            if (scope < 0 || scope == BS_SCOPE_SENDER_DOMAIN || scope == BS_SCOPE_SITE)
                return s_fail(CLI_ARGS_USAGE, err, errlen,
                              "top: --scope is subject, orig_subject, ip, net or subject_ip, "
                              "not \"%s\"",
                              o.scope);
            r->has_scope = 1;
            r->scope = (Backstop__Scope)scope;
        }
        if (o.limit && s_uint(o.limit, 1, CLI_TOP_LIMIT_MAX, &limit) < 0)
            return s_fail(CLI_ARGS_USAGE, err, errlen,
                          "top: --limit wants a number from 1 to %d, not \"%s\"", CLI_TOP_LIMIT_MAX,
                          o.limit);
        r->has_limit = 1;
        r->limit = (uint32_t)limit;
        return CLI_ARGS_RUN;
    }
    case BACKSTOP__CONTROL_REQUEST__COMMAND__ALLOW_ADD:
    case BACKSTOP__CONTROL_REQUEST__COMMAND__ALLOW_DEL:
        return s_allow(args, cmd, &o, npos, pos, err, errlen);
    case BACKSTOP__CONTROL_REQUEST__COMMAND__SITE_ADD:
    case BACKSTOP__CONTROL_REQUEST__COMMAND__SITE_DEL:
        if (!cli_key_site_valid(pos[0]))
            return s_fail(CLI_ARGS_DATA, err, errlen,
                          "%s: invalid site name \"%s\" ([A-Za-z0-9._-], 1 to 64 bytes)", cmd->name,
                          pos[0]);
        r->id = xstrdup(pos[0]);
        if (o.keydir && o.pubkey)
            return s_fail(CLI_ARGS_USAGE, err, errlen,
                          "sites add: --public-key registers a key made elsewhere and writes no "
                          "key file: no --key-dir with it");
        if (o.pubkey && !zsock_key_valid(o.pubkey))
            return s_fail(CLI_ARGS_DATA, err, errlen,
                          "sites add: --public-key wants the 40-character Z85 public key, not "
                          "\"%s\"",
                          o.pubkey);
        if (o.pubkey)
            r->value = xstrdup(o.pubkey); /* no key pair to make */
        if (o.keydir)
            args->key_dir = xstrdup(o.keydir);
        return CLI_ARGS_RUN;
    default:
        return CLI_ARGS_RUN;
    }
}

void cli_args_free(cli_args_t *args)
{
    Backstop__ControlRequest *r = &args->req;
    xfree(args->socket);
    xfree(args->config);
    xfree(args->key_dir);
    xfree(r->id);
    xfree(r->value);
    xfree(r->site);
    xfree(r->reason);
    xfree(r->who);
    xfree(r->query);
    memset(args, 0, sizeof(*args));
    backstop__control_request__init(&args->req);
}
