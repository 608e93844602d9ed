/*
 * NAME
 *   classify_cmd - backstop-sensor classify: judge message files
 *
 * SYNOPSIS
 *   backstop-sensor classify [--json] [--sender ADDR] [--client-ip IP] PATH...
 *
 * DESCRIPTION
 *   Runs the bounce classifier (common/classify.h) on message files, on
 *   directories (recursively, in name order) and on maildirs (only cur/ and
 *   new/, plus Maildir++ sub-folders), and prints one line per message: plain
 *   text by default, one JSON object per line (jansson) with --json. A file
 *   that is not mail (empty, binary, no header block, cut inside its
 *   headers, larger than CLASSIFY_CMD_MAX_BYTES, unreadable) gets a line
 *   saying so and the run goes on.
 *
 * DIAGNOSTICS
 *   Exit 0 when every file was classified, 1 when any file was not mail or
 *   could not be read, 64 (EX_USAGE) for a bad option, no PATH or a
 *   --client-ip that is no address.
 */
#include "sensor_cmds.h"

#include "classify.h"
#include "fp.h"
#include "mime.h"
#include "msg.h"
#include "netaddr.h"
#include "slurp.h"
#include "xalloc.h"

#include <dirent.h>
#include <errno.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

/* Larger files are not read: no real message is this big, and the milter
   never hands the classifier more than its body bound. */
#define CLASSIFY_CMD_MAX_BYTES (10 * 1024 * 1024)
/* Directory nesting followed at most (symlink loops end here). */
#define CLASSIFY_CMD_MAX_DEPTH 32

/* What one run was asked for and how it went. */
typedef struct {
    int json;              /* 1: JSON lines */
    const char *sender;    /* --sender value (envelope sender), or NULL */
    const char *client_ip; /* --client-ip value, or NULL */
    int failed;            /* files that were not mail or not readable */
} classify_cmd_t;

static const char s_help[] =
    "NAME\n"
    "    backstop-sensor classify - tell bounces from other mail, and show their keys\n"
    "\n"
    "SYNOPSIS\n"
    "    backstop-sensor classify [--json] [--sender ADDR] [--client-ip IP] PATH...\n"
    "\n"
    "DESCRIPTION\n"
    "    Classifies each message file named, each file under each directory named\n"
    "    (recursively, in name order) and each message of each maildir named (its\n"
    "    cur/ and new/, and Maildir++ sub-folders), and prints one line per message\n"
    "    (shown on two here):\n"
    "\n"
    "        FILE CLASS original=ORIG subject_key=\"KEY\" orig_subject_key=\"OKEY\"\n"
    "        reasons=R1,R2,...\n"
    "\n"
    "    CLASS is bounce (a DSN or non-delivery/delay report), autoreply (RFC 3834\n"
    "    vacation or out-of-office), mdn (read receipt), arf (feedback report) or\n"
    "    normal. ORIG says how much of the bounced message a bounce encloses:\n"
    "    rfc822 (all of it), headers (its headers, attached or quoted) or none.\n"
    "    KEY is the message's own subject normalised, OKEY the enclosed\n"
    "    original's (empty when none is enclosed): the keys Backstop counts across\n"
    "    the fleet, and the ones its decisions block (scope subject and\n"
    "    orig_subject). REASONS are the signals that decided the class.\n"
    "\n"
    "    A file that is not mail (empty, binary, without a header block, cut inside\n"
    "    its headers, larger than 10 MB, unreadable) gets the line\n"
    "\n"
    "        FILE error=\"WHY\"\n"
    "\n"
    "    and the run goes on with the next file.\n"
    "\n"
    "OPTIONS\n"
    "    --json\n"
    "        Print one JSON object per line instead, with the fields file, class,\n"
    "        reasons (array), original, subject, subject_key, subject_fp (16 hex\n"
    "        digits), orig_subject, orig_subject_key, orig_message_id, orig_from,\n"
    "        orig_to, reporting_mta, final_recipient, action, status and\n"
    "        diagnostic_code (null when absent); or file and error.\n"
    "    --sender ADDR\n"
    "        Classify as if the envelope sender were ADDR (\"\" or \"<>\" for the null\n"
    "        sender). Without it the Return-Path header stands in.\n"
    "    --client-ip IP\n"
    "        Classify as if the message came from IP (shown as client_ip and\n"
    "        client_net in JSON).\n"
    "    -h, --help\n"
    "        Print this text and exit.\n"
    "\n"
    "EXIT STATUS\n"
    "    0   every file was classified\n"
    "    1   at least one file was not mail or could not be read\n"
    "    64  usage error: unknown option, no PATH, or a --client-ip that is no IPv4 or\n"
    "        IPv6 address\n"
    "\n"
    "EXAMPLES\n"
    "    backstop-sensor classify ~/Maildir\n"
    "    backstop-sensor classify --json bounce.eml | jq .subject_key\n"
    "    backstop-sensor classify --sender '' --client-ip 192.0.2.7 ndr.eml\n";

static const char s_usage[] =
    "usage: backstop-sensor classify [--json] [--sender ADDR] [--client-ip IP] PATH...\n"
    "       backstop-sensor classify --help\n";

/* A JSON string of valid UTF-8 (invalid bytes replaced); json null for NULL. */
static json_t *s_json_str(const char *s)
{
    if (!s)
        return json_null();
    size_t len = strlen(s);
    if (mime_utf8_valid(s, len))
        return json_stringn(s, len);
    char *v = mime_to_utf8(NULL, s, len);
    json_t *j = json_string(v);
    xfree(v);
    return j ? j : json_null();
}

/* Prints a value for the text format: double quotes and controls escaped. */
static void s_print_quoted(const char *s)
{
    putchar('"');
    for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
        if (*p == '"' || *p == '\\')
            printf("\\%c", *p);
        else if (*p < 0x20)
            printf("\\x%02x", *p);
        else
            putchar(*p);
    }
    putchar('"');
}

static void s_print_error(classify_cmd_t *cmd, const char *file, const char *why)
{
    cmd->failed++;
    if (cmd->json) {
        json_t *o = json_object();
        json_object_set_new(o, "file", s_json_str(file));
        json_object_set_new(o, "error", s_json_str(why));
        char *line = json_dumps(o, JSON_COMPACT | JSON_PRESERVE_ORDER);
        puts(line);
        free(line);
        json_decref(o);
    } else {
        fputs(file, stdout);
        fputs(" error=", stdout);
        s_print_quoted(why);
        putchar('\n');
    }
}

static void s_print_result(const classify_cmd_t *cmd, const char *file, const classify_result_t *r)
{
    size_t nreasons = classify_result_reason_count(r);
    if (!cmd->json) {
        printf("%s %s original=%s subject_key=", file,
               classify_class_name(classify_result_class(r)),
               classify_orig_name(classify_result_original(r)));
        s_print_quoted(classify_result_subject_key(r));
        /* the key a bounce wave is usually blocked on: the bounces' own subjects differ */
        const char *ok = classify_result_orig_subject_key(r);
        fputs(" orig_subject_key=", stdout);
        s_print_quoted(ok ? ok : "");
        fputs(" reasons=", stdout);
        for (size_t i = 0; i < nreasons; i++)
            printf("%s%s", i ? "," : "", classify_result_reason(r, i));
        if (!nreasons)
            fputs("-", stdout);
        putchar('\n');
        return;
    }
    char hex[FP_HEX_SIZE];
    json_t *o = json_object();
    json_object_set_new(o, "file", s_json_str(file));
    json_object_set_new(o, "class", json_string(classify_class_name(classify_result_class(r))));
    json_t *reasons = json_array();
    for (size_t i = 0; i < nreasons; i++)
        json_array_append_new(reasons, s_json_str(classify_result_reason(r, i)));
    json_object_set_new(o, "reasons", reasons);
    json_object_set_new(o, "original",
                        json_string(classify_orig_name(classify_result_original(r))));
    json_object_set_new(o, "subject", s_json_str(classify_result_subject(r)));
    json_object_set_new(o, "subject_key", s_json_str(classify_result_subject_key(r)));
    json_object_set_new(o, "subject_fp", json_string(fp_hex(classify_result_subject_fp(r), hex)));
    json_object_set_new(o, "orig_subject", s_json_str(classify_result_orig_subject(r)));
    json_object_set_new(o, "orig_subject_key", s_json_str(classify_result_orig_subject_key(r)));
    json_object_set_new(o, "orig_subject_fp",
                        classify_result_orig_subject_key(r)
                            ? json_string(fp_hex(classify_result_orig_subject_fp(r), hex))
                            : json_null());
    json_object_set_new(o, "orig_message_id", s_json_str(classify_result_orig_message_id(r)));
    json_object_set_new(o, "orig_from", s_json_str(classify_result_orig_from(r)));
    json_object_set_new(o, "orig_to", s_json_str(classify_result_orig_to(r)));
    json_object_set_new(o, "reporting_mta", s_json_str(classify_result_reporting_mta(r)));
    json_object_set_new(o, "final_recipient", s_json_str(classify_result_final_recipient(r)));
    json_object_set_new(o, "action", s_json_str(classify_result_action(r)));
    json_object_set_new(o, "status", s_json_str(classify_result_status(r)));
    json_object_set_new(o, "diagnostic_code", s_json_str(classify_result_diagnostic_code(r)));
    if (classify_result_client_ip(r)) {
        json_object_set_new(o, "client_ip", s_json_str(classify_result_client_ip(r)));
        json_object_set_new(o, "client_net", s_json_str(classify_result_client_net(r)));
    }
    char *line = json_dumps(o, JSON_COMPACT | JSON_PRESERVE_ORDER);
    puts(line);
    free(line);
    json_decref(o);
}

static void s_file(classify_cmd_t *cmd, const char *path)
{
    size_t len = 0;
    const char *why = NULL;
    char reason[256];
    char *data = slurp_file(path, CLASSIFY_CMD_MAX_BYTES, SLURP_REFUSE_LARGE, &len, NULL, reason,
                            sizeof(reason));
    if (!data) {
        s_print_error(cmd, path, reason);
        return;
    }
    if (classify_check_mail(data, len, &why) < 0) {
        s_print_error(cmd, path, why);
        xfree(data);
        return;
    }
    classify_input_t in = {
        .msg = data, .len = len, .env_from = cmd->sender, .client_ip = cmd->client_ip};
    classify_result_t *r = classify_message(&in);
    s_print_result(cmd, path, r);
    classify_result_destroy(&r);
    xfree(data);
}

static int s_is_dir(const char *path)
{
    struct stat st;
    return stat(path, &st) == 0 && S_ISDIR(st.st_mode);
}

static void s_path(classify_cmd_t *cmd, const char *path, int depth);

/* Every entry of dir in name order; only_dirs/skip rules per caller. */
static void s_dir(classify_cmd_t *cmd, const char *dir, int depth)
{
    if (depth > CLASSIFY_CMD_MAX_DEPTH) {
        s_print_error(cmd, dir, "directories nested too deep");
        return;
    }
    char *cur = xasprintf("%s/cur", dir), *new = xasprintf("%s/new", dir);
    int maildir = s_is_dir(cur) && s_is_dir(new);
    if (maildir) {
        /* tmp/ holds deliveries in progress: not messages yet */
        s_dir(cmd, cur, depth + 1);
        s_dir(cmd, new, depth + 1);
    }
    xfree(cur);
    xfree(new);

    struct dirent **names = NULL;
    int n = scandir(dir, &names, NULL, alphasort);
    if (n < 0) {
        s_print_error(cmd, dir, strerror(errno));
        return;
    }
    for (int i = 0; i < n; i++) {
        const char *name = names[i]->d_name;
        int dot = name[0] == '.';
        int skip = !strcmp(name, ".") || !strcmp(name, "..");
        char *sub = xasprintf("%s/%s", dir, name);
        if (!skip) {
            if (maildir) {
                /* Maildir++ folders are dot-directories holding maildirs */
                if (dot && s_is_dir(sub))
                    s_dir(cmd, sub, depth + 1);
            } else if (!dot) {
                s_path(cmd, sub, depth + 1);
            }
        }
        xfree(sub);
        free(names[i]);
    }
    free(names);
}

static void s_path(classify_cmd_t *cmd, const char *path, int depth)
{
    struct stat st;
    if (stat(path, &st) < 0) {
        s_print_error(cmd, path, strerror(errno));
        return;
    }
    if (S_ISDIR(st.st_mode))
        s_dir(cmd, path, depth);
    else
        s_file(cmd, path);
}

int classify_cmd_main(int argc, char **argv)
{
    classify_cmd_t cmd = {0};
    int i = 1;
    for (; i < argc; i++) {
        const char *a = argv[i];
        if (!strcmp(a, "--")) {
            i++;
            break;
        }
        if (a[0] != '-' || a[1] == 0)
            break;
        if (!strcmp(a, "--json")) {
            cmd.json = 1;
        } else if (!strcmp(a, "-h") || !strcmp(a, "--help")) {
            fputs(s_help, stdout);
            return 0;
        } else if (!strcmp(a, "--sender") && i + 1 < argc) {
            cmd.sender = argv[++i];
        } else if (!strcmp(a, "--client-ip") && i + 1 < argc) {
            cmd.client_ip = argv[++i];
        } else {
            fprintf(stderr, "backstop-sensor classify: bad option '%s'\n%s", a, s_usage);
            return EX_USAGE;
        }
    }
    netaddr_t addr;
    if (cmd.client_ip && netaddr_parse(&addr, cmd.client_ip) != 0) {
        fprintf(stderr, "backstop-sensor classify: --client-ip %s is not an IPv4 or IPv6 address\n",
                cmd.client_ip);
        return EX_USAGE;
    }
    if (i >= argc) {
        fprintf(stderr, "backstop-sensor classify: no PATH given\n%s", s_usage);
        return EX_USAGE;
    }
    for (; i < argc; i++)
        s_path(&cmd, argv[i], 0);
    fflush(stdout);
    return cmd.failed ? 1 : 0;
}
