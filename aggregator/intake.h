/*
 * intake - the event socket's own thread: frames in, batches in ingest's terms out
 *
 * The event loop's one core is the aggregator's limit under load, and about a fifth of
 * its time went to receiving event frames, unpacking and checking them (protobuf-c) and
 * converting their events for ingest. intake does that on a thread of its own and hands
 * each frame over, ready, through an inproc PAIR socket: the loop polls that socket
 * where it polled the PULL, and counting stays on the loop alone, without locks.
 *
 * Hand-over: a fixed set of items (INTAKE_ITEMS), each with its own arena. The thread
 * fills a free item from the PULL and sends its address to the loop; the loop takes it
 * with intake_next(), uses it, and gives it back with intake_done(). When every item is
 * with the loop, the thread stops reading the PULL, whose queue then fills and
 * back-pressures the sensors as before. Items arrive in the order their frames did. The
 * inproc messages order the memory: what the thread wrote before sending an item is
 * visible to the loop after receiving it, and the other way round.
 *
 * What the thread does not do: count, log or decide. A frame that fails the checks is
 * handed over as such (rc 0 and the reason) for the loop to count and log.
 */
#ifndef BS_INTAKE_H
#define BS_INTAKE_H

#include <stddef.h>

#include "ingest.h"
#include "wire.h"
#include "zsock.h"

/* Items in circulation: frames received ahead of the loop, at most. */
#define INTAKE_ITEMS 16

typedef struct intake intake_t;

/* One received message, as zsock_recv_in() gave it, and an events frame's batch. */
typedef struct {
    int rc;                 /* 1: frame is a checked frame; 0: dropped, err says why */
    wire_err_t err;         /* rc 0: the reason */
    zsock_meta_t meta;      /* peer, authenticated site */
    Backstop__Frame *frame; /* rc 1: the frame (in the item's arena) */
    size_t announced;       /* events frame: events it says it has */
    size_t nev;             /* ... events the view gave, converted in evs */
    ingest_event_t *evs;    /* ... borrowing the frame (site and sensor are the batch's) */
    ingest_key_t *keys;     /* their keys, WIRE_MAX_KEYS per event */
    size_t cap;             /* events evs has room for */
    wire_arena_t *arena;    /* where the frame was unpacked */
} intake_item_t;

/* Starts the thread on pull (a bound PULL socket of ctx, which the thread now owns: the
 * caller must not touch it again). NULL and a log line on failure. */
intake_t *intake_new(void *ctx, void *pull);
/* Stops the thread, closes its sockets and frees every item; *self_p becomes NULL; safe
 * twice. Items still with the caller are freed too. */
void intake_destroy(intake_t **self_p);
/* The socket the event loop polls for ZMQ_POLLIN: readable when an item is waiting. */
void *intake_socket(intake_t *self);
/* The next received item, or NULL when none is waiting (never blocks). */
intake_item_t *intake_next(intake_t *self);
/* Gives an item from intake_next() back, for the next frame. */
void intake_done(intake_t *self, intake_item_t *item);

#endif
