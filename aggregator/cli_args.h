/*
 * cli_args - the backstop command line, parsed into one control request
 *
 * backstop [--socket ENDPOINT] [--config FILE] [--json] [--timeout MS] COMMAND ...
 * Global options may stand before or after the command words. Each command's
 * own options are checked here, and every value is validated and made
 * canonical before anything is sent (cli_key.h): the aggregator sees the
 * same key text a sensor hashes, and a typo is an EX_USAGE/EX_DATAERR exit
 * with a one-line reason, not a decision on the wrong key.
 *
 * Pure: no I/O, no environment. The operator name is passed in by main().
 * Ownership: cli_args_t owns every string it holds (including those in req);
 * cli_args_free releases them.
 */
#ifndef BS_CLI_ARGS_H
#define BS_CLI_ARGS_H

#include <stdbool.h>
#include <stddef.h>

#include "backstop.pb-c.h"

#define CLI_TIMEOUT_MS_DEFAULT 5000         /* PROTOCOL.md 1.4: the CLI gives up after 5 s */
#define CLI_TOP_LIMIT_DEFAULT  20           /* rows of `top` */
#define CLI_TOP_LIMIT_MAX      1000         /* most rows `top` asks for */
#define CLI_LIST_LIMIT_DEFAULT 1000         /* decisions `decisions list` asks for */
#define CLI_LIST_LIMIT_MAX     5000         /* most decisions it may ask for */
#define CLI_TTL_MAX_S          (30 * 86400) /* longest manual decision: 30 days */

/* Outcome of cli_args_parse. */
typedef enum {
    CLI_ARGS_RUN = 0,     /* send args->req */
    CLI_ARGS_HELP = 1,    /* print help for args->help_topic (NULL: the whole page) */
    CLI_ARGS_USAGE = 2,   /* bad command line: err says why; exit EX_USAGE */
    CLI_ARGS_DATA = 3,    /* a value is invalid (address, subject, ...): err says why; EX_DATAERR */
    CLI_ARGS_VERSION = 4, /* --version */
} cli_args_result_t;

/* A parsed command line. */
typedef struct {
    char *socket;                 /* --socket ENDPOINT, NULL: config or default */
    char *config;                 /* --config FILE, NULL: the default aggregator.conf */
    bool json;                    /* --json: print the reply document as is */
    int timeout_ms;               /* --timeout MS */
    const char *help_topic;       /* for CLI_ARGS_HELP: command name, or NULL (borrowed, static) */
    const char *command_name;     /* "status", "decisions add", ... (static) */
    Backstop__ControlRequest req; /* the request to send; strings owned */
    char *key_dir;                /* sites add: --key-dir DIR, NULL: print the keys' location */
} cli_args_t;

/* Parses argv (argv[0] is the program) into *args (zeroed by this call). who is the operator
 * (may be NULL). On CLI_ARGS_USAGE / CLI_ARGS_DATA a one-line reason is in err. */
cli_args_result_t cli_args_parse(cli_args_t *args, int argc, char *const argv[], const char *who,
                                 char *err, size_t errlen);

/* Releases what args holds and zeroes it; safe twice. */
void cli_args_free(cli_args_t *args);

#endif
