/*
 * NAME
 *   backstop - operate the Backstop aggregator from the command line
 *
 * SYNOPSIS
 *   backstop [--socket ENDPOINT] [--config FILE] [--json] [--timeout MS] COMMAND [ARGS]
 *   backstop COMMAND --help
 *
 * DESCRIPTION
 *   Sends one control request to a running backstop-aggregator over its
 *   local control socket and prints the reply: tables by default, the reply's
 *   JSON document with --json. Commands: status, decisions (list, show, add,
 *   del), why, top, allow (list, add, del), sites (list, add, del). The full
 *   manual is `backstop --help` (cli_help.c); the control channel is
 *   described in proto/PROTOCOL.md section 1.4.
 *
 *   This file only wires the parts: cli_args parses and checks the command
 *   line, cli_client talks to the aggregator, cli_render prints tables.
 *   `sites add` also makes the site's CurveZMQ key pair (zsock) and writes the
 *   key file before it registers the public key; the file is removed again if
 *   the aggregator refuses.
 *
 * DIAGNOSTICS
 *   Errors go to stderr as one line "backstop: what went wrong" (with --json, also
 *   {"error": TEXT, "exit": CODE} on stdout). Exit status:
 *   0 success, 64 bad command line, 65 invalid value or unknown id, 69 the
 *   aggregator did not answer within the timeout, 70 internal failure, 73 the
 *   key file could not be written, 76 an unreadable reply, 77 no permission
 *   to use the control socket; other codes come
 *   from the aggregator's reply (sysexits.h).
 *
 * ENVIRONMENT
 *   SUDO_USER, USER   the operator recorded with manual decisions and allowlist entries.
 */
#include <errno.h>
#include <jansson.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sysexits.h>
#include <unistd.h>

#include "cli_args.h"
#include "cli_client.h"
#include "cli_help.h"
#include "cli_render.h"
#include "msg.h"
#include "xalloc.h"
#include "zsock.h"

/* The operator: $SUDO_USER when run through sudo, else $USER. */
static const char *s_who(void)
{
    const char *who = getenv("SUDO_USER");
    if (who == NULL || who[0] == '\0')
        who = getenv("USER");
    return who && who[0] ? who : "unknown";
}

/* --json is somewhere on the command line: a failure to parse the line before reaching
 * it is still told as a JSON document. */
static bool s_json_wanted;

/* Says what went wrong: one line on stderr and, under --json, the document
 * {"error": TEXT, "exit": CODE} on stdout, so a script reading stdout always gets one
 * JSON document. Returns rc. */
static int s_fail(const cli_args_t *args, int rc, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static int s_fail(const cli_args_t *args, int rc, const char *fmt, ...)
{
    char text[1024];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(text, sizeof(text), fmt, ap);
    va_end(ap);
    fprintf(stderr, "backstop: %s\n", text);
    if (args->json || s_json_wanted) {
        json_t *doc = json_pack("{s:s, s:i}", "error", text, "exit", rc);
        if (doc == NULL) {
            /* not UTF-8 (a byte of an argument, quoted): the document says it with '?' */
            for (char *p = text; *p; p++)
                if ((unsigned char)*p >= 0x80)
                    *p = '?';
            doc = json_pack("{s:s, s:i}", "error", text, "exit", rc);
        }
        if (doc) {
            json_dumpf(doc, stdout, JSON_INDENT(2) | JSON_PRESERVE_ORDER);
            fputc('\n', stdout);
            json_decref(doc);
        }
        fflush(stdout);
    }
    return rc;
}

/* sites add: makes the key pair and writes DIR/NAME.key; 0 or an exit code. */
static int s_site_keys(cli_args_t *args, char **path_out)
{
    zsock_keys_t keys;
    const char *dir = args->key_dir ? args->key_dir : ".";

    if (!zsock_has_curve())
        return s_fail(args, EX_UNAVAILABLE,
                      "this libzmq has no CURVE support: cannot make site keys");
    if (zsock_keys_generate(&keys) < 0)
        return s_fail(args, EX_SOFTWARE, "cannot make a key pair");
    char *path = xasprintf("%s/%s.key", dir, args->req.id);
    if (zsock_keys_save(path, &keys, 1) < 0) {
        int e = errno;
        s_fail(args, EX_CANTCREAT, "cannot write the key file %s: %s", path,
               e == EEXIST ? "it exists already (sites add never overwrites a key)" : strerror(e));
        xfree(path);
        return EX_CANTCREAT;
    }
    args->req.value = xstrdup(keys.public_key);
    *path_out = path;
    return 0;
}

/* Prints the reply document; the key file path is added for sites add. 0 or an exit code. */
static int s_print(const cli_args_t *args, const char *json, const char *key_path)
{
    json_error_t jerr;
    json_t *doc = json_loads(json ? json : "{}", 0, &jerr);

    if (doc == NULL || !json_is_object(doc)) {
        json_decref(doc);
        return s_fail(args, EX_PROTOCOL, "the aggregator's reply is not a JSON object (%s)",
                      jerr.text);
    }
    if (key_path)
        json_object_set_new(doc, "key_file", json_string(key_path));
    if (args->json) {
        json_dumpf(doc, stdout, JSON_INDENT(2) | JSON_PRESERVE_ORDER);
        fputc('\n', stdout);
    } else {
        cli_render(stdout, args->req.command, doc);
        if (key_path)
            printf("Key file: %s (public and secret, mode 0600). Install it on the site's "
                   "sensors as sensor_secret_key_file.\n",
                   key_path);
    }
    json_decref(doc);
    return fflush(stdout) == 0 ? 0 : EX_IOERR;
}

int main(int argc, char **argv)
{
    cli_args_t args;
    char err[512];
    char *key_path = NULL;
    Backstop__Frame *reply = NULL;
    int rc;

    msg_open("backstop", MSG_TO_STDERR);
    for (int i = 1; i < argc && strcmp(argv[i], "--") != 0; i++)
        if (strcmp(argv[i], "--json") == 0)
            s_json_wanted = true;
    switch (cli_args_parse(&args, argc, argv, s_who(), err, sizeof(err))) {
    case CLI_ARGS_HELP:
        cli_help_print(stdout, args.help_topic);
        cli_args_free(&args);
        return 0;
    case CLI_ARGS_VERSION:
        printf("backstop %s\n", BACKSTOP_VERSION);
        cli_args_free(&args);
        return 0;
    case CLI_ARGS_USAGE:
        rc = s_fail(&args, EX_USAGE, "%s", err);
        cli_help_usage(stderr);
        cli_args_free(&args);
        return rc;
    case CLI_ARGS_DATA:
        rc = s_fail(&args, EX_DATAERR, "%s", err);
        cli_args_free(&args);
        return rc;
    case CLI_ARGS_RUN:
        break;
    }

    char *endpoint =
        args.socket ? xstrdup(args.socket) : cli_client_endpoint(args.config, err, sizeof(err));
    if (endpoint == NULL) {
        rc = s_fail(&args, EX_NOINPUT, "--config: %s", err);
        goto out;
    }
    if (args.req.command == BACKSTOP__CONTROL_REQUEST__COMMAND__SITE_ADD && !args.req.value &&
        (rc = s_site_keys(&args, &key_path)) != 0)
        goto out;
    rc = cli_client_call(endpoint, args.timeout_ms, &args.req, &reply, err, sizeof(err));
    if (rc != 0) {
        s_fail(&args, rc, "%s", err);
        goto out;
    }
    const Backstop__ControlReply *r = reply->control_reply;
    if (r->status != 0) {
        /* the aggregator's errors mostly name the command already */
        const char *e = r->error && r->error[0] ? r->error : "the aggregator refused the request";
        size_t cn = strlen(args.command_name);
        bool named = strncmp(e, args.command_name, cn) == 0 && e[cn] == ':';
        rc = r->status > 0 && r->status < 256 ? r->status : EX_SOFTWARE;
        s_fail(&args, rc, "%s%s%s", named ? "" : args.command_name, named ? "" : ": ", e);
        goto out;
    }
    rc = s_print(&args, r->json, key_path);
    xfree(key_path);
    key_path = NULL;
out:
    if (key_path) {
        /* the aggregator never took the key: leave no orphan secret behind */
        unlink(key_path);
        xfree(key_path);
    }
    wire_free(&reply);
    xfree(endpoint);
    cli_args_free(&args);
    return rc;
}
