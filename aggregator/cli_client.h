/*
 * cli_client - one control request to the aggregator, one reply, bounded wait
 *
 * The CLI's side of the control channel (PROTOCOL.md 1.4): a DEALER socket
 * connects to the endpoint, sends [empty][Frame{control_request}] and waits
 * for [empty][Frame{control_reply}]. Nothing here waits longer than the
 * timeout: the send gives up when no connection completes in time (the
 * DEALER has ZMQ_IMMEDIATE), the receive when no reply comes, and an ipc
 * endpoint whose socket file does not exist fails at once. So `backstop`
 * never hangs on a dead aggregator.
 *
 * Also: where the endpoint comes from when --socket is not given (the
 * aggregator's config file, key control_endpoint).
 *
 * Errors are returned with a one-line reason for the caller to print; nothing
 * here logs. Frames returned are the caller's (wire_free).
 */
#ifndef BS_CLI_CLIENT_H
#define BS_CLI_CLIENT_H

#include <stddef.h>

#include "wire.h"

/* Where the aggregator's config lives and the endpoint used when it names none. */
#define CLI_CONFIG_DEFAULT   "/etc/backstop/aggregator.conf"
#define CLI_ENDPOINT_DEFAULT "ipc:///run/backstop/aggregator.sock"

/* The control endpoint: control_endpoint from config_path (read as the aggregator reads
 * it: continuation lines, '#' comment lines, global keys only), else CLI_ENDPOINT_DEFAULT.
 * NULL config_path: CLI_CONFIG_DEFAULT, which may be missing. A config_path given that
 * cannot be read: NULL with the reason in err. Returns a string for xfree. */
char *cli_client_endpoint(const char *config_path, char *err, size_t errlen);

/* Sends req to endpoint and waits at most timeout_ms for the answer. Returns 0 with
 * *reply_frame set (its body is a control_reply; wire_free it), or a sysexits code with
 * a one-line reason in err: EX_UNAVAILABLE (nobody answered in time, or the endpoint is
 * unusable), EX_NOPERM (an ipc socket file this user may not write), EX_PROTOCOL (an answer that is
 * not a control reply), EX_DATAERR (the request itself breaks a wire limit). */
int cli_client_call(const char *endpoint, int timeout_ms, Backstop__ControlRequest *req,
                    Backstop__Frame **reply_frame, char *err, size_t errlen);

#endif
