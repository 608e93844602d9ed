/*
 * cli_render - the control reply documents as tables for people
 *
 * The aggregator answers every control request with one JSON document
 * (control.h describes each one). `backstop --json` prints it as is; without
 * --json this module turns it into aligned tables and "key: value" blocks.
 * Relative times ("expires in 42m", "3s ago") are computed against the
 * document's own now_ms, so the output does not depend on the CLI host's
 * clock and is reproducible in tests.
 *
 * Missing or mistyped members print as "-": an older or newer aggregator's
 * document still renders. Only writes to the FILE it is given.
 */
#ifndef BS_CLI_RENDER_H
#define BS_CLI_RENDER_H

#include <jansson.h>
#include <stdint.h>
#include <stdio.h>

#include "backstop.pb-c.h"

/* Writes the human form of doc, the reply to a request of cmd, to fp; 0, or -1 when doc
 * is not a JSON object. */
int cli_render(FILE *fp, Backstop__ControlRequest__Command cmd, const json_t *doc);

/* Formats a span of seconds compactly ("45s", "12m", "1h05m", "2d03h") into buf. */
void cli_render_span(int64_t seconds, char *buf, size_t len);

#endif
