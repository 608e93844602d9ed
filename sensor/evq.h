/*
 * evq - the hand-off of events from milter threads to the uplink thread
 *
 * Milter threads must never wait for the network, so they push events into a
 * bounded queue and go on. A full queue drops the event and counts it; mail
 * is never stalled by reporting. The one uplink thread pops events in
 * batches; an eventfd wakes it (it polls evq_fd() with zmq_poll next to its
 * sockets).
 *
 * Each event gets a sensor sequence number at creation: strictly increasing,
 * and across restarts too (max(last + 1, time in microseconds)), so the
 * aggregator's (sensor, seq) dedup holds without storing a counter.
 *
 * Ownership: evq_push takes the event (and frees it when dropped); popped
 * events are the caller's (evq_event_destroy). Thread-safe: one mutex held
 * for a pointer copy, never across I/O.
 */
#ifndef BS_EVQ_H
#define BS_EVQ_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define EVQ_MAX_KEYS  6 /* keys in one event */
#define EVQ_MAX_RULES 4 /* content rule labels in one event */

/* One key of an event. */
typedef struct {
    int scope;   /* dcache_scope_t / proto Scope */
    uint64_t fp; /* fingerprint */
    char *text;  /* display text (owned), may be NULL */
} evq_key_t;

/* One classified message as reported to the aggregator. */
typedef struct {
    uint64_t seq;                 /* sensor sequence number */
    int64_t time_ms;              /* when the sensor saw it */
    uint8_t ip[16];               /* client address, network order */
    size_t iplen;                 /* 4, 16, or 0 when unknown */
    int msg_class;                /* classify_class_t / proto MsgClass */
    evq_key_t keys[EVQ_MAX_KEYS]; /* the message's keys */
    size_t nkeys;                 /* keys used */
    char *rules[EVQ_MAX_RULES];   /* labels of content rules that matched (owned) */
    size_t nrules;                /* labels used */
    int original;                 /* classify_orig_t / proto Original */
    bool ledger_hit;              /* the ledger vouched for it */
    int enforced;                 /* dcache_action_t the sensor applied, 0 none */
    char *decision_id;            /* the decision enforced (owned), or NULL */
} evq_event_t;

typedef struct evq evq_t;

/* A queue holding at most capacity events. */
evq_t *evq_new(size_t capacity);
/* Frees the queue and any events still in it; sets *self_p = NULL; safe twice. */
void evq_destroy(evq_t **self_p);

/* A new empty event with the next sequence number and time now_ms. */
evq_event_t *evq_event_new(evq_t *self, int64_t now_ms);
/* Frees an event; sets *ev_p = NULL; safe twice. */
void evq_event_destroy(evq_event_t **ev_p);
/* Sets the client address from text; false when it is not an IPv4/IPv6 address. */
bool evq_event_set_ip(evq_event_t *ev, const char *ip);
/* Adds a key (text copied, cut at 256 bytes); ignored when full. */
void evq_event_add_key(evq_event_t *ev, int scope, uint64_t fp, const char *text);
/* Adds a rule label (copied, cut at 64 bytes); ignored when full. */
void evq_event_add_rule(evq_event_t *ev, const char *label);

/* Hands an event over without blocking; 0 queued, -1 dropped (queue full; counted, freed). */
int evq_push(evq_t *self, evq_event_t **ev_p);
/* Pops up to max events into out (the caller's now); returns how many. */
size_t evq_pop(evq_t *self, evq_event_t **out, size_t max);
/* Puts events back at the head (the uplink could not take them now); drops what no longer fits. */
void evq_unpop(evq_t *self, evq_event_t **evs, size_t n);

/* A descriptor readable while events wait (for zmq_poll); evq_clear_fd() after waking. */
int evq_fd(const evq_t *self);
void evq_clear_fd(evq_t *self);

/* Events queued now, pushed in all, dropped in all. */
size_t evq_length(evq_t *self);
uint64_t evq_pushed(evq_t *self);
uint64_t evq_dropped(evq_t *self);

#endif
