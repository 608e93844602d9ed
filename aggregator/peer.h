/*
 * peer - follows the other aggregator of a failover pair and mirrors its decisions
 *
 * Two aggregators that name each other as peer (peer_decisions,
 * peer_snapshot) each follow the other's decision feed the way a sensor
 * follows its aggregator (proto/PROTOCOL.md 4.6): a SUB to every topic, then
 * SnapshotRequest{all_sites} on the snapshot socket (the changes since the
 * peer's sequence applied last, or a full snapshot of every site's
 * decisions), then the updates in sequence; a gap, a new epoch or a second of
 * heartbeats saying the peer is ahead starts over; silence reconnects.
 *
 * Every change the peer made itself goes into our decision table through
 * decisions_mirror(), so it is stored and published to our sensors like one
 * of our own, marked mirrored; changes the peer copied from us (mirrored) are
 * echoes and are skipped. A full snapshot also removes the decisions whose
 * latest change came from the peer that the peer no longer has, unless the peer
 * has a new epoch (it lost its store, so its having nothing says nothing). And
 * an aggregator whose own store is new takes back, from its first full
 * snapshot, the peer's copies of the decisions it made before. So when the
 * sensors fail over to the other aggregator, the blocks in force are there
 * already, and a revocation on either side reaches both.
 *
 * The allowlist entries and sites go the same way, as state (shared.h): when
 * the peer's heartbeat carries a digest of them that differs from the one of
 * its answer taken last, a SharedRequest fetches them all, and each entry goes
 * to cfg->shared_apply, which keeps the newer of the two.
 *
 * Runs in the server's event loop: peer_poll() adds its two sockets to the
 * loop's poll set, peer_handle() reads them and returns how many changes it
 * made to the table (the server stores and publishes them), peer_tick() runs
 * the timers. The position (peer epoch and seq applied) is the caller's to
 * persist: peer_position().
 */
#ifndef BS_PEER_H
#define BS_PEER_H

#include <stdbool.h>
#include <stdint.h>
#include <zmq.h>

#include "decisions.h"
#include "shared.h"
#include "wire.h"
#include "zsock.h"

typedef struct peer peer_t;

/* Where the peer is and how to reach it. */
typedef struct {
    const char *decisions;     /* its decision_endpoint (PUB) */
    const char *snapshot;      /* its snapshot_endpoint (ROUTER) */
    const char *server_public; /* its CURVE public key; NULL or "": plain mode */
    const zsock_keys_t *keys;  /* our key pair, the CURVE client's (copied; plain: NULL) */
    const char *name;          /* how we name ourselves in requests (sensor field) */
    int64_t silence_ms;        /* no heartbeat this long: reconnect (or 3 of the heartbeat
                                  intervals the peer announces, when longer) */
    bool fresh;                /* our store was made new at this start (lost, or first):
                                  the first full snapshot takes back the peer's copies of
                                  decisions we made before */
    /* the peer's allowlist entries and sites (PROTOCOL.md 4.7), each handed to this
     * (NULL: not asked for); it returns 1 applied, 0 nothing to do, -1 refused */
    int (*shared_apply)(void *arg, const shared_rec_t *r);
    void *shared_arg; /* its arg */
} peer_config_t;

/* Counters and state for status and metrics. */
typedef struct peer_stats {
    bool live;                  /* in sequence with the peer */
    uint64_t epoch;             /* the peer's epoch we follow (0: none yet) */
    uint64_t seq;               /* the peer's last sequence applied */
    uint64_t applied;           /* changes the peer made that changed our table */
    uint64_t echoes;            /* changes the peer copied from us, skipped */
    uint64_t refused;           /* changes our table refused (an id another decision has) */
    uint64_t merged;            /* decisions of the peer's merged with ours of the same identity
                                   (both made while the two were apart: the smaller id kept) */
    uint64_t resyncs;           /* joins after the first: gap, epoch, silence */
    uint64_t bad_frames;        /* frames that were not what the socket carries */
    uint64_t snapshots_refused; /* replies with refused set: our key is not its peer's */
    int64_t heard_mono;         /* monotonic ms the peer was last heard (0: never) */
    int64_t heard_ms;           /* wall-clock ms the peer was last heard on its feed (0:
                                   never); kept across reconnects, for status */
    /* its allowlist and sites (PROTOCOL.md 4.7) */
    bool shared_heard;       /* a heartbeat carried its digest */
    uint64_t shared_digest;  /* the digest its last heartbeat carried */
    uint64_t shared_fetched; /* the digest of its last answer taken in full */
    uint64_t shared_fetches; /* answers taken in full */
    uint64_t shared_applied; /* entries that changed ours */
    uint64_t shared_refused; /* entries refused (unreadable, or a site key another has) */
} peer_stats_t;

/* A follower of the peer in cfg, starting from (epoch, seq) it applied before (0, 0: a
 * full snapshot). Sockets are made on the first peer_tick(). */
peer_t *peer_new(void *ctx, const peer_config_t *cfg, uint64_t epoch, uint64_t seq);
/* Closes its sockets and frees it; *self_p becomes NULL; safe twice. */
void peer_destroy(peer_t **self_p);

/* Writes its open sockets (at most 2) into items for zmq_poll; returns how many. */
int peer_poll(peer_t *self, zmq_pollitem_t *items);
/* Reads what its sockets have (call when one polled ready); applies the peer's changes
 * to table at now_ms, and hands its allowlist and site entries to cfg->shared_apply.
 * Returns the decision changes and shared entries applied (when > 0 the caller stores and
 * publishes the table's pending changes: an allowlist entry may have revoked some). */
int peer_handle(peer_t *self, decisions_t *table, int64_t mono, int64_t now_ms);
/* What peer_handle() does with one frame received: on the feed (the SUB: updates and
 * heartbeats) when feed, else on the snapshot socket (replies). Returns the changes
 * applied. For tests and fuzzing, which hand frames over without a peer. */
int peer_feed(peer_t *self, decisions_t *table, const Backstop__Frame *f, bool feed, int64_t mono,
              int64_t now_ms);
/* Timers: (re)connects after silence, resends a join. */
void peer_tick(peer_t *self, int64_t mono);

/* The peer's (epoch, seq) applied so far. */
void peer_position(const peer_t *self, uint64_t *epoch, uint64_t *seq);
/* Counters (borrowed). */
const peer_stats_t *peer_stats(const peer_t *self);

#endif
