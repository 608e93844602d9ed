/*
 * uplink - the sensor's one I/O thread; see uplink.h.
 */
#include "uplink.h"

#include "msg.h"
#include "xalloc.h"

#include <poll.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>

struct uplink {
    milter_engine_t *engine; /* borrowed */
    pthread_t thread;        /* the I/O thread */
    bool started;            /* thread is running */
    _Atomic bool stop;       /* asks the thread to leave */
    uint64_t discarded;      /* events dropped because no aggregator is configured */
};

uplink_t *uplink_new(milter_engine_t *engine, char *err, size_t errlen)
{
    uplink_t *self = xcalloc(1, sizeof(*self));
    self->engine = engine;
    atomic_init(&self->stop, false);
    return self;
}

static void *s_run(void *arg)
{
    uplink_t *self = arg;
    evq_t *q = milter_engine_evq(self->engine);
    evq_event_t *batch[256];
    while (!atomic_load(&self->stop)) {
        struct pollfd pfd = {.fd = evq_fd(q), .events = POLLIN};
        poll(&pfd, 1, 1000);
        evq_clear_fd(q);
        size_t n;
        while ((n = evq_pop(q, batch, 256)) > 0) {
            for (size_t i = 0; i < n; i++)
                evq_event_destroy(&batch[i]);
            self->discarded += n;
        }
        milter_engine_tick(self->engine);
    }
    return NULL;
}

int uplink_start(uplink_t *self)
{
    if (pthread_create(&self->thread, NULL, s_run, self) != 0)
        return -1;
    self->started = true;
    return 0;
}

void uplink_destroy(uplink_t **self_p)
{
    if (!self_p || !*self_p)
        return;
    uplink_t *self = *self_p;
    if (self->started) {
        atomic_store(&self->stop, true);
        pthread_join(self->thread, NULL);
    }
    xfree(self);
    *self_p = NULL;
}
