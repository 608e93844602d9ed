/*
 * cli_help - the backstop manual, printed by --help and `backstop help`
 *
 * The whole page (NAME, SYNOPSIS, DESCRIPTION, COMMANDS, OPTIONS, EXIT
 * STATUS, EXAMPLES, SEE ALSO) for `backstop --help`, and one section per
 * command for `backstop COMMAND --help`. Static text, no state.
 */
#ifndef BS_CLI_HELP_H
#define BS_CLI_HELP_H

#include <stdio.h>

/* Writes the manual page for topic ("decisions", ...; NULL: the whole page) to fp;
 * 0, or -1 for an unknown topic. */
int cli_help_print(FILE *fp, const char *topic);

/* Writes the one-line usage reminder shown after a command-line error. */
void cli_help_usage(FILE *fp);

#endif
