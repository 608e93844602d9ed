/*
 * NAME
 *   backstop-sensor - classify bounces, enforce fleet decisions, report events
 *
 * SYNOPSIS
 *   backstop-sensor classify [--json] PATH...
 *   backstop-sensor milter -c FILE [-f] [-n] [-v]
 *   backstop-sensor replay -c FILE --site S --client-ip IP PATH...
 *   backstop-sensor --help | --version
 *
 * DESCRIPTION
 *   The per-site half of Backstop. This file only picks the subcommand; each
 *   one is its own module (sensor_cmds.h) and has its own --help.
 */
#include "sensor_cmds.h"

#include "msg.h"

#include <stdio.h>
#include <string.h>

static const char s_usage[] =
    "Usage: backstop-sensor COMMAND [OPTIONS] [ARGS]\n"
    "\n"
    "The per-site sensor of Backstop: it classifies the mail a site receives,\n"
    "enforces the fleet's block decisions at SMTP time and reports bounce\n"
    "events to the aggregator.\n"
    "\n"
    "Commands:\n"
    "  classify [--json] PATH...   classify message files, directories, maildirs\n"
    "  milter -c FILE [-f] [-n]    run as a milter for Postfix or Sendmail\n"
    "  replay -c FILE --site S --client-ip IP PATH...\n"
    "                              send messages' events as a live sensor would\n"
    "\n"
    "Run 'backstop-sensor COMMAND --help' for a command's options.\n"
    "\n"
    "Exit status: 0 on success, 64 for a usage error, 78 for a configuration\n"
    "error, other sysexits(3) codes as each command documents.\n";

int main(int argc, char **argv)
{
    msg_open("backstop-sensor", MSG_TO_STDERR);
    if (argc < 2) {
        fputs(s_usage, stderr);
        return EX_USAGE;
    }
    const char *cmd = argv[1];
    if (!strcmp(cmd, "--help") || !strcmp(cmd, "-h") || !strcmp(cmd, "help")) {
        fputs(s_usage, stdout);
        return 0;
    }
    if (!strcmp(cmd, "--version")) {
        printf("backstop-sensor %s\n", BACKSTOP_VERSION);
        return 0;
    }
    if (!strcmp(cmd, "classify"))
        return classify_cmd_main(argc - 1, argv + 1);
    if (!strcmp(cmd, "milter"))
        return milter_cmd_main(argc - 1, argv + 1);
    if (!strcmp(cmd, "replay"))
        return replay_cmd_main(argc - 1, argv + 1);
    fprintf(stderr, "backstop-sensor: unknown command '%s'\n\n%s", cmd, s_usage);
    return EX_USAGE;
}
