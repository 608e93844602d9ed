/*
 * milter - the libmilter adapter: registration, callbacks, the main loop
 *
 * The only module that calls libmilter. Callbacks copy what the MTA hands
 * over into a per-connection context (milter_ctx) and, at end of message,
 * ask the engine (milter_engine) for a verdict, which they turn into
 * smfi_setreply / smfi_addheader and a return code. Nothing here blocks on
 * the network.
 *
 * Negotiation: the filter asks only for what it uses. It drops the unknown,
 * DATA and end-of-header callbacks and the replies to connect, HELO, MAIL,
 * RCPT and header callbacks (SMFIP_NO*, SMFIP_NR_*: each saves Postfix a round
 * trip), asks for SMFIP_SKIP so it can stop the body once it has enough, and
 * names the macros it wants per stage (smfi_setsymlist): {client_addr}
 * (asked again at MAIL, so a client replaced later in the session, e.g. by
 * XCLIENT from a trusted front end, is the one keyed on; Postfix applies
 * XFORWARD only to logging, not to milter macros), {daemon_name},
 * {auth_authen}, and the queue id {i}.
 *
 * libmilter keeps its callbacks' shared state in a process global (it has no
 * user pointer); milter_run() sets it before smfi_main and it is read-only
 * afterwards.
 *
 * Signals: smfi_main starts a thread that sigwait()s for SIGHUP, SIGTERM and
 * SIGINT and stops the milter on any of them. The program (milter_cmd.c)
 * therefore takes those signals itself on its main thread and calls
 * milter_stop(); SIGHUP reloads instead of stopping.
 *
 * Start-up is split so privileges can be dropped in between: milter_open()
 * (as root: the socket), then milter_run() (after the drop).
 *
 * Shutdown: libmilter does not join its worker threads when smfi_main
 * returns, and sessions it had parked in its worker pool are dropped, never
 * closed: a callback may still be running, or just starting, when the
 * caller wants to free the engine. milter_drain() closes a gate every
 * callback passes (a callback that finds it closed answers without the
 * engine: no reply where none is expected, else accept, i.e. fail open)
 * and waits, bounded, for the callbacks already inside to leave.
 */
#ifndef BS_MILTER_H
#define BS_MILTER_H

#include "milter_engine.h"

#include <stdint.h>

/* Registers the filter and opens its socket (umask from cfg). A sysexits.h code: EX_OK,
 * EX_CONFIG for a bad socket spec, EX_UNAVAILABLE when the socket cannot be opened. */
int milter_open(const sensor_config_t *cfg);

/* Serves on the socket milter_open() opened until milter_stop() (or a signal libmilter takes);
 * EX_OK or EX_SOFTWARE. */
int milter_run(milter_engine_t *engine);

/* Asks the main loop to stop (from any thread). */
void milter_stop(void);

/* After milter_run returned: turns away callbacks from now on and waits up to timeout_ms
 * (polling) for those running to return, so the engine is no longer in use. 0: it may be freed;
 * -1 (logged): callbacks are still running and may use the engine, so leave it and what it
 * borrows allocated. */
int milter_drain(int64_t timeout_ms);

#endif
