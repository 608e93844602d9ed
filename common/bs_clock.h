/*
 * bs_clock - the time, behind an interface so tests fix it
 *
 * Pure logic (windows, rules, decisions) takes the time as an argument; the
 * I/O layers read it from a bs_clock_t. bs_clock_system() is the real wall
 * clock (CLOCK_REALTIME, for event and decision times that cross machines) and
 * monotonic clock (for timers). A fake clock starts where the test says and
 * moves only when told; both its readings move together.
 */
#ifndef BS_CLOCK_H
#define BS_CLOCK_H

#include <stdint.h>

typedef struct bs_clock bs_clock_t;

/* The process-wide real clock (borrowed; never destroyed). */
bs_clock_t *bs_clock_system(void);

/* A fake clock at now_ms milliseconds since the epoch; owned by the caller. */
bs_clock_t *bs_clock_fake_new(int64_t now_ms);
void bs_clock_destroy(bs_clock_t **self_p);
void bs_clock_fake_set(bs_clock_t *self, int64_t now_ms);
void bs_clock_fake_advance(bs_clock_t *self, int64_t delta_ms);

/* Wall-clock milliseconds since the Unix epoch. */
int64_t bs_clock_now_ms(const bs_clock_t *self);
/* Monotonic milliseconds (arbitrary origin) for timers and intervals. */
int64_t bs_clock_mono_ms(const bs_clock_t *self);

#endif
