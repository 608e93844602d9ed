/*
 * bs_clock - real and fake clocks; see bs_clock.h.
 */
#include "bs_clock.h"

#include "xalloc.h"

#include <assert.h>
#include <time.h>

struct bs_clock {
    int fake;       /* 1 for a test clock, 0 for the system clock */
    int64_t now_ms; /* fake clock: wall time in ms; also its monotonic reading */
};

static bs_clock_t s_system = {0, 0};

bs_clock_t *bs_clock_system(void)
{
    return &s_system;
}

bs_clock_t *bs_clock_fake_new(int64_t now_ms)
{
    bs_clock_t *self = xcalloc(1, sizeof(*self));
    self->fake = 1;
    self->now_ms = now_ms;
    return self;
}

void bs_clock_destroy(bs_clock_t **self_p)
{
    assert(self_p);
    if (*self_p && (*self_p)->fake)
        xfree(*self_p);
    *self_p = NULL;
}

void bs_clock_fake_set(bs_clock_t *self, int64_t now_ms)
{
    assert(self && self->fake);
    self->now_ms = now_ms;
}

void bs_clock_fake_advance(bs_clock_t *self, int64_t delta_ms)
{
    assert(self && self->fake);
    self->now_ms += delta_ms;
}

static int64_t s_read(clockid_t id)
{
    struct timespec ts;
    clock_gettime(id, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

int64_t bs_clock_now_ms(const bs_clock_t *self)
{
    assert(self);
    return self->fake ? self->now_ms : s_read(CLOCK_REALTIME);
}

int64_t bs_clock_mono_ms(const bs_clock_t *self)
{
    assert(self);
    return self->fake ? self->now_ms : s_read(CLOCK_MONOTONIC);
}
