/*
 * uplink - the sensor's one I/O thread: events out, decisions in
 *
 * ZeroMQ sockets are not thread-safe, so exactly one thread owns them all.
 * It:
 *   - pops events from the engine's queue (evq) and sends them in batches
 *     (EventBatch frames, PUSH) to the aggregator, as columns while its
 *     heartbeats announce that it reads them, as rows otherwise; while the
 *     aggregator is unreachable it spools them to disk (common/kv, bounded,
 *     always rows) and replays them, oldest first and with their original
 *     times, when it returns;
 *   - follows one aggregator at a time: the primary, or after
 *     heartbeat_timeout of silence the backup when one is configured, and
 *     back only when that one falls silent too (PROTOCOL.md 4.4); events go
 *     to the one it follows, never to both;
 *   - keeps the decision cache in step with the aggregator, Clone pattern:
 *     subscribe first (topics "F", "S/<site>/", "H"), then ask for a
 *     snapshot (or the changes since the applied sequence), apply updates
 *     newer than it in sequence order, resynchronise on a gap or a new
 *     epoch, reconnect after silence (heartbeat_timeout, or 3 of the heartbeat
 *     intervals the aggregator announces in its snapshot reply and its
 *     heartbeats, when that is longer);
 *   - reports SensorStatus (applied sequence, counters) every
 *     status_interval;
 *   - runs the engine's housekeeping (expiry) once a second.
 * With no aggregator configured it only drains the queue and keeps house.
 *
 * Ownership: uplink_new borrows the engine, which must outlive the uplink.
 */
#ifndef BS_UPLINK_H
#define BS_UPLINK_H

#include "milter_engine.h"
#include "wire.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

typedef struct uplink uplink_t;

/* Prepares the uplink (opens the spool under state_directory); NULL with err. */
uplink_t *uplink_new(milter_engine_t *engine, char *err, size_t errlen);

/* Starts the I/O thread; 0 or -1. */
int uplink_start(uplink_t *self);

/* Packs n events of one site and sensor as a Frame{events} buffer (caller frees), as columns
 * (only for an aggregator announcing WIRE_FEATURE_COLUMNS) or rows; NULL when the frame would
 * break a wire limit (logged). With texts (only for an aggregator announcing
 * WIRE_FEATURE_TEXT_ONCE), key texts sent within its ttl are left out (wire_textmem_strip at
 * now_ms); NULL: every text goes. With scopes non-zero (the aggregator's Heartbeat.scopes),
 * keys of the scopes whose bit is clear are left out; 0: every key goes. Shared with the
 * replay command. */
uint8_t *uplink_pack_events(const char *site, const char *sensor, evq_event_t *const *batch,
                            size_t n, bool columns, wire_textmem_t *texts, uint32_t scopes,
                            int64_t now_ms, size_t *len_out);

/* What the decision follower did so far; any thread may ask. */
typedef struct {
    bool live;                  /* the feed is LIVE */
    uint64_t requests;          /* snapshot requests sent */
    uint64_t queued_bytes_peak; /* most bytes of updates held while joining at once */
    uint64_t join_overflows;    /* joins whose held updates went over a bound (dropped) */
    uint64_t snapshots_refused; /* snapshot replies with refused set (a key of another site) */
    uint64_t decisions_refused; /* decisions refused: not enforceable, or no aggregator's */
} uplink_stats_t;

void uplink_stats(uplink_t *self, uplink_stats_t *out);

/* Stops and joins the thread, closes sockets and spool; sets *self_p = NULL; safe twice. */
void uplink_destroy(uplink_t **self_p);

#endif
