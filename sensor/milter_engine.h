/*
 * milter_engine - what the sensor does with a message at end of data
 *
 * The logic between libmilter (milter.c) and the pure modules: it owns the
 * process-wide state milter threads share (config, decision cache, ledger,
 * local rule, content rules, event queue, failure counters) and turns one
 * collected message (milter_ctx) into a verdict:
 *   outbound mail  -> recorded in the ledger, accepted;
 *   inbound mail   -> classified; keys built (subject, original subject,
 *                     client IP, client net, subject+IP); ledger checked;
 *                     decisions enforced (enforce.c); the local rule fed;
 *                     an event queued for the aggregator (bounce-class mail);
 *                     one log line "QUEUEID: class=... action=...".
 * It never calls libmilter and never blocks on I/O (the decision cache and
 * ledger write through to LevelDB, which is a local write).
 *
 * Fail open: milter_engine_fail() turns a failure class (internal error,
 * overload, no aggregator) into the configured verdict, counts it and logs it
 * at most once per fail_log_interval.
 *
 * Configuration snapshots: the engine holds the current configuration with
 * what is built from it (content rules, internal networks) as one refcounted,
 * immutable milter_snap_t. A message takes a reference at MAIL FROM and
 * keeps it to end of data; milter_engine_reload() (SIGHUP) builds a new
 * snapshot from a freshly loaded config and swaps it in whole, or fails and
 * changes nothing. The snapshot of messages in flight lives until their
 * last reference goes. State that outlives a configuration (decision cache,
 * ledger, event queue, the local rule's counts) stays in the engine.
 *
 * Thread-safe: every call may come from any milter thread at once.
 */
#ifndef BS_MILTER_ENGINE_H
#define BS_MILTER_ENGINE_H

#include "bs_clock.h"
#include "dcache.h"
#include "evq.h"
#include "ledger.h"
#include "milter_ctx.h"
#include "sensor_config.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* What to tell the MTA about a message. */
typedef enum {
    MILTER_VERDICT_ACCEPT = 0,
    MILTER_VERDICT_REJECT,   /* 550 5.7.1 text */
    MILTER_VERDICT_TEMPFAIL, /* 451 4.7.1 text */
    MILTER_VERDICT_TAG,      /* accept, add header */
} milter_verdict_kind_t;

/* The header a tag decision adds. The milter deletes any that arrive with a message, so
 * that every one delivered is the sensor's. */
#define MILTER_TAG_HEADER "X-Backstop"

typedef struct {
    milter_verdict_kind_t kind; /* what to do */
    char rcode[4];              /* "550" / "451" */
    char xcode[8];              /* "5.7.1" / "4.7.1" */
    char text[320];             /* reply text (no '%' inside) */
    char header_name[32];       /* for TAG: header to add */
    char header_value[128];     /* for TAG: its value */
} milter_verdict_t;

/* Failure classes with their own On-* policy. */
typedef enum {
    MILTER_FAIL_INTERNAL = 0,  /* on_internal_error */
    MILTER_FAIL_OVERLOAD,      /* on_overload */
    MILTER_FAIL_NO_AGGREGATOR, /* on_no_aggregator */
    MILTER_FAIL__COUNT
} milter_fail_t;

/* The word for kind in log lines: accept, reject, tempfail, tag. */
const char *milter_verdict_name(milter_verdict_kind_t kind);

typedef struct milter_engine milter_engine_t;

/* One configuration with what is built from it; refcounted, immutable. */
typedef struct milter_snap milter_snap_t;

/* Builds the shared state from a loaded config (borrowed; must outlive the engine: it is the
 * boot configuration, see milter_engine_config): opens state_directory/{decisions,ledger},
 * loads decision_file and local_rule_file. NULL with err. */
milter_engine_t *milter_engine_new(const sensor_config_t *cfg, bs_clock_t *clock, char *err,
                                   size_t errlen);
/* Frees everything; sets *self_p = NULL; safe twice. */
void milter_engine_destroy(milter_engine_t **self_p);

/* What milter_engine_new() reads from the files cfg names, read and thrown away, with no state
 * opened (for -n): local_rule_file compiled, decision_file parsed. 0, or -1 with one
 * "CONF:LINE: KEY: FILE[:LINE]: why" line per file that failed appended to err, CONF:LINE
 * where path (cfg's file) sets KEY. */
int milter_engine_check(const sensor_config_t *cfg, const char *path, char *err, size_t errlen);

/* Replaces the configuration (takes *cfg_p, sets it NULL): settings only a restart can change
 * keep their running values (logged), decision_file and local_rule_file are read again, the
 * local rule starts over when its limits changed. 0; -1 with err when a file cannot be loaded,
 * and then nothing changed. */
int milter_engine_reload(milter_engine_t *self, sensor_config_t **cfg_p, char *err, size_t errlen);

/* A reference to the current snapshot; give it back with milter_snap_release. */
milter_snap_t *milter_engine_snap(milter_engine_t *self);
/* Drops a reference; sets *snap_p = NULL; safe on NULL. */
void milter_snap_release(milter_snap_t **snap_p);
/* The snapshot's configuration (borrowed, valid while the reference is held). */
const sensor_config_t *milter_snap_config(const milter_snap_t *snap);

/* The verdict for the message in conn at end of data, under the snapshot the message began
 * with (NULL: the current one). */
void milter_engine_eom(milter_engine_t *self, const milter_snap_t *snap, milter_conn_t *conn,
                       milter_verdict_t *out);

/* Fail-open policy: the verdict for a failure of class cls on message qid (may be NULL),
 * counted and logged at most once per interval. */
void milter_engine_fail(milter_engine_t *self, milter_fail_t cls, const char *qid,
                        milter_verdict_t *out);

/* A connection begins/ends; false from begin when over max_connections (overload). */
bool milter_engine_conn_begin(milter_engine_t *self);
void milter_engine_conn_end(milter_engine_t *self);

/* Tells the engine whether the aggregator is reachable (the uplink thread calls this). */
void milter_engine_set_aggregator_up(milter_engine_t *self, bool up);

/* Periodic housekeeping (expire cache and ledger entries, flush failure counts). */
void milter_engine_tick(milter_engine_t *self);

/* Shared parts, borrowed, for the uplink thread and tests. */
dcache_t *milter_engine_dcache(milter_engine_t *self);
ledger_t *milter_engine_ledger(milter_engine_t *self);
evq_t *milter_engine_evq(milter_engine_t *self);
/* The boot configuration: what the process started with. Restart-only settings (sockets,
 * state, uplink) are read here; per-message settings come from a snapshot. */
const sensor_config_t *milter_engine_config(const milter_engine_t *self);

/* Loads operator decisions from path ("scope action ttl value" per line) into cache, replacing
 * the file's previous set only when the whole file parses. Each value becomes the key text the
 * sensor computes from mail (subject key, canonical address, client /24 or /64); one that can
 * be no such key fails the file. 0, or -1 with "FILE:LINE: why" in err. */
int milter_engine_load_decisions(dcache_t *cache, const char *path, int64_t now_ms, char *err,
                                 size_t errlen);

#endif
