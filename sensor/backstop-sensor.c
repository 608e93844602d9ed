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
 *   one is its own module (sensor_cmds.h) and has its own --help. Its own
 *   --help is a man page in plain text (s_help), as every command's is.
 */
#include "sensor_cmds.h"

#include "msg.h"

#include <stdio.h>
#include <string.h>

/* A usage error: the commands, and where the rest is. */
static const char s_usage[] =
    "usage: backstop-sensor milter -c FILE [-f] [-n] [-v]\n"
    "       backstop-sensor classify [--json] [--sender ADDR] [--client-ip IP] PATH...\n"
    "       backstop-sensor replay -c FILE [options] PATH...\n"
    "       backstop-sensor COMMAND --help | --help | --version\n";

/* --help: a man page in plain text (backstop --help's layout) */
static const char s_help[] =
    "NAME\n"
    "    backstop-sensor - the per-site half of Backstop: classify bounces, enforce the\n"
    "    fleet's decisions, report events\n"
    "\n"
    "SYNOPSIS\n"
    "    backstop-sensor milter -c FILE [-f] [-n] [-v]\n"
    "    backstop-sensor classify [--json] [--sender ADDR] [--client-ip IP] PATH...\n"
    "    backstop-sensor replay -c FILE [--site S] [--sensor NAME] [--client-ip IP]\n"
    "        [--from ADDR] [--events ENDPOINT] [--all] [--dry-run] PATH...\n"
    "    backstop-sensor COMMAND --help\n"
    "    backstop-sensor --help | --version\n"
    "\n"
    "DESCRIPTION\n"
    "    The sensor sits in one site's mail stream, as a milter for Postfix or\n"
    "    Sendmail. It classifies every message, refuses or tags the bounces the\n"
    "    fleet's block decisions name, runs the per-site rule on its own, keeps a\n"
    "    ledger of the mail the site sends (its bounces are never blocked) and\n"
    "    reports bounce events to the aggregator (backstop-aggregator). Whatever\n"
    "    fails, mail flows: on_internal_error, on_overload and on_no_aggregator say\n"
    "    what happens to a message the sensor cannot judge.\n"
    "\n"
    "COMMANDS\n"
    "    milter -c FILE [-f] [-n] [-v]\n"
    "        Serve the MTA on the socket milter_socket names, as FILE configures\n"
    "        it; -n checks FILE and exits.\n"
    "    classify [--json] [--sender ADDR] [--client-ip IP] PATH...\n"
    "        Classify message files, directories and maildirs and print each\n"
    "        one's class, subject keys and reasons; needs no configuration.\n"
    "    replay -c FILE [options] PATH...\n"
    "        Classify message files as the milter would and send their events to\n"
    "        the aggregator as a live sensor reports them (demonstrations, tests,\n"
    "        load).\n"
    "\n"
    "OPTIONS\n"
    "    -h, --help\n"
    "        Print this text and exit; after a command, that command's.\n"
    "    --version\n"
    "        Print the version and exit.\n"
    "\n"
    "EXIT STATUS\n"
    "    0   success; milter: a clean stop\n"
    "    1   classify: a file was not mail or could not be read; replay: a file\n"
    "        could not be read\n"
    "    64  usage error (EX_USAGE)\n"
    "    69  milter: the socket, the state or the uplink cannot be set up; replay:\n"
    "        the aggregator did not take the events (EX_UNAVAILABLE)\n"
    "    70  milter: libmilter failed or stopped on its own (EX_SOFTWARE)\n"
    "    71  milter: cannot detach, start a thread or become user (EX_OSERR)\n"
    "    73  milter: state_directory or pid_file cannot be made (EX_CANTCREAT)\n"
    "    78  milter, replay: the configuration is invalid (EX_CONFIG)\n"
    "    Each command's --help gives the details.\n"
    "\n"
    "FILES\n"
    "    /etc/backstop/sensor.conf\n"
    "        The configuration (backstop-sensor.conf(5)); milter and replay read\n"
    "        the file -c names.\n"
    "    /var/lib/backstop\n"
    "        The default state_directory: decision cache, outbound ledger, event\n"
    "        spool.\n"
    "    /run/backstop/sensor.sock\n"
    "        The default milter_socket.\n"
    "\n"
    "SEE ALSO\n"
    "    backstop-sensor(8), backstop-sensor.conf(5), backstop-aggregator(8),\n"
    "    backstop(1)\n";

int main(int argc, char **argv)
{
    msg_open("backstop-sensor", MSG_TO_STDERR);
    if (argc < 2) {
        fputs(s_usage, stderr);
        return EX_USAGE;
    }
    const char *cmd = argv[1];
    if (!strcmp(cmd, "--help") || !strcmp(cmd, "-h") || !strcmp(cmd, "help")) {
        fputs(s_help, stdout);
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
