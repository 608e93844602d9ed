/*
 * dedup - drop events already counted, by (site, sensor, sequence number)
 *
 * Sensors number their events and replay a spool after an outage with the
 * original numbers, so the aggregator must recognise numbers it has seen.
 * Per sensor it keeps `base` (every seq <= base was seen, or given up) and a
 * bitmap of DEDUP_WINDOW seqs above it, for events arriving out of order.
 * A seq beyond the bitmap slides it forward: seqs that fall below without
 * being seen are given up (counted as skipped). A seq more than reset_gap below
 * the highest one seen means the sensor started numbering again (it lost its
 * state): the sensor's state restarts.
 * A sensor's first seq opens half the bitmap below it too, so a spool
 * replayed just after a live event still counts (seqs below a sensor's first
 * one are not reported as skipped).
 *
 * Late seqs (at or below base) are dropped, for one of two reasons:
 *  - DEDUP_DUPLICATE: the seq was marked seen (counted) before base moved past it;
 *    harmless (a replayed spool).
 *  - DEDUP_BEHIND: the seq was never marked seen: it fell below the window
 *    unseen (it came more than DEDUP_WINDOW seqs behind the sensor's newest), or
 *    it lies below the half window a sensor's first seq opened. Dedup cannot
 *    tell whether it was ever counted, so the event is dropped and lost to the
 *    counts unless it was.
 * The rule: a seq <= base is BEHIND iff it lies in one of the sensor's "gaps",
 * ranges of seqs that went below base unseen, else DUPLICATE. Up to DEDUP_GAPS
 * ranges are kept per sensor and the rule is exact while they suffice (the
 * unseen seqs a slide drops next to each other, or next to the newest gap, extend
 * one range). One more range merges the two ranges nearest each other into
 * one covering the seen seqs between them too: those then count as BEHIND
 * (conservative: never a lost event reported as a harmless duplicate). A state
 * imported from a version 1 blob (without gaps) takes everything <= base as a
 * gap, unless it can tell that the window never slid (then only the seqs below
 * the first seq's half window).
 *
 * Memory: about DEDUP_WINDOW/8 + 320 bytes (2.4 KB) per sensor, allocated as sensors
 * appear, at most max_sensors sensors (DEDUP_SENSORS_DEFAULT, 16384: about 39 MB when
 * all are there). The daemon passes its own bound on sensors (SERVER_SENSORS_MAX) and
 * forgets here every sensor it forgets, so every sensor it admits is tracked and the
 * table is never full. Past max_sensors, events from further sensors are accepted
 * without dedup (counted, and counted as untracked: a replay of theirs counts twice)
 * rather than dropped: fail open. Export/import carries one sensor's state across a
 * restart. Pure logic, single-threaded.
 */
#ifndef BS_DEDUP_H
#define BS_DEDUP_H

#include <stddef.h>
#include <stdint.h>

typedef struct dedup dedup_t;

/* Out-of-order seqs remembered above base, per sensor (bits). */
#define DEDUP_WINDOW 16384u
/* Ranges of seqs below base never seen, remembered per sensor (see DEDUP_BEHIND). */
#define DEDUP_GAPS 8u
/* Sensors tracked at most when dedup_new() is given 0: the daemon's bound on sensors
 * (SERVER_SENSORS_MAX), which it passes itself. */
#define DEDUP_SENSORS_DEFAULT 16384u

/* What dedup_check() decided. */
typedef enum {
    DEDUP_NEW = 0,       /* first time: count it */
    DEDUP_DUPLICATE = 1, /* seen (counted) before: drop */
    DEDUP_UNTRACKED = 2, /* sensor table full (or a name too long): count it, not
                            deduplicated (counters.untracked) */
    DEDUP_BEHIND = 3,    /* below the window, never marked seen: cannot tell; drop */
} dedup_result_t;

/* Metrics. */
typedef struct {
    uint64_t duplicates; /* DEDUP_DUPLICATE results */
    uint64_t untracked;  /* DEDUP_UNTRACKED results */
    uint64_t skipped;    /* seqs given up when the window slid past them unseen */
    uint64_t resets;     /* sensors that restarted numbering */
    uint64_t behind;     /* DEDUP_BEHIND results */
} dedup_counters_t;

/* A new table for at most max_sensors sensors (0: DEDUP_SENSORS_DEFAULT); reset_gap (0:
 * 2^20) is how far below the highest seen a seq must be to mean "the sensor restarted its
 * numbering". */
dedup_t *dedup_new(size_t max_sensors, uint64_t reset_gap);
/* Frees it; *self_p becomes NULL; safe twice. */
void dedup_destroy(dedup_t **self_p);

/* One sensor's state. */
typedef struct dedup_sensor dedup_sensor_t;

/* Checks and records seq for the sensor of site. */
dedup_result_t dedup_check(dedup_t *self, const char *site, const char *sensor, uint64_t seq);
/* The sensor of site, created on first use, for dedup_check_at(): a batch of one
 * sensor's events looks it up once. Valid until dedup_forget() of that sensor or
 * dedup_destroy(). NULL when a name is too long or the table is full (untracked). */
dedup_sensor_t *dedup_sensor(dedup_t *self, const char *site, const char *sensor);
/* dedup_check() of a sensor from dedup_sensor() (NULL: untracked, counted as such). */
dedup_result_t dedup_check_at(dedup_t *self, dedup_sensor_t *sensor, uint64_t seq);

/* Highest seq at and below which everything was seen or given up for that sensor
 * (0 if unknown, or while a new sensor's older seqs may still arrive). */
uint64_t dedup_base(const dedup_t *self, const char *site, const char *sensor);
/* Sensors tracked. */
size_t dedup_sensors(const dedup_t *self);
/* Sensors tracked at most (the max_sensors in force). */
size_t dedup_max_sensors(const dedup_t *self);
/* Metrics (borrowed). */
const dedup_counters_t *dedup_counters(const dedup_t *self);
/* Forgets one sensor (an operator removed it); 0, or -1 unknown. */
int dedup_forget(dedup_t *self, const char *site, const char *sensor);

/* Calls cb for each sensor; stops and returns cb's value when non-zero. */
int dedup_foreach(const dedup_t *self, int (*cb)(const char *site, const char *sensor, void *arg),
                  void *arg);
/* One sensor's state as a blob owned by the caller (xfree), length in *len_p; NULL if
 * the sensor is unknown. */
uint8_t *dedup_export(const dedup_t *self, const char *site, const char *sensor, size_t *len_p);
/* Restores a sensor from dedup_export() output, replacing its state; 0 or -1 (malformed). */
int dedup_import(dedup_t *self, const uint8_t *blob, size_t len);

#endif
