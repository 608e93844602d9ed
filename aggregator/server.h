/*
 * server - the aggregator's one event loop: sockets, timers, state
 *
 * One thread, one zmq_poll over the event PULL, the snapshot ROUTER, the
 * control ROUTER, the ZAP handler and, with a failover peer, the follower of
 * its decision feed (aggregator/peer.h), with timers for heartbeats, decision
 * expiry, the write-behind flush of window counters and the idle-key sweep.
 * The counting path (receive batch -> ingest -> decisions) takes no locks:
 * everything belongs to this thread.
 *
 * What it promises:
 *  - every decision change is written to the store (LevelDB) before it is
 *    published, with strictly increasing seq per epoch (server_apply_changes);
 *  - bad input on any socket is dropped and counted under a reason (stats),
 *    never exits or stalls the loop; every send is ZMQ_DONTWAIT;
 *  - window counters are written behind every flush_interval (default 1 s),
 *    each cycle in steps between events within half an interval: a crash
 *    (kill -9) loses at most about one and a half intervals of counting;
 *    decisions, sequence log, epoch, allowlists and sites are written before
 *    they are published or answered and lose nothing (store.h says what a
 *    power failure can do);
 *  - a data directory removed, emptied or replaced while it runs is noticed within
 *    two SERVER_STORE_CHECK_MS (two looks in a row must agree) and logged (error,
 *    once a minute while it lasts, and in status); where it can (store_recreate: the
 *    path missing, empty, or a database of no other epoch) a new store is made there
 *    and everything the daemon holds is written into it (decisions and the change
 *    log it has, seq, allowlist, sites, tombstones and, last, the epoch in one
 *    write; then every window key and sensor with the next flush), so a restart
 *    loses nothing and keeps the epoch (or, cut short, begins a new one);
 *  - SIGTERM (server_request_stop) flushes and leaves; SIGHUP
 *    (server_request_reload) reloads the config file and swaps it whole,
 *    keeping the running value of every key only a restart can change
 *    (agg_config_keep_restart) and logging their names. The signals are
 *    taken on the loop's own thread (server_watch_signals: a signalfd polled
 *    with the sockets; every thread keeps them blocked), so one pending since
 *    before the loop began, during server_new(), is acted on at its first turn.
 *
 * The control handler (aggregator/control.c, control_handle()) gets the server
 * and uses the accessors below: it may read every table, change the decision
 * table (decisions_propose / decisions_remove) and then MUST call
 * server_apply_changes() so the change is stored and published; sites and
 * allowlist entries change through server_site_* / server_allow_*, which
 * persist them (and revoke covered decisions) at once. The control socket is
 * a ROUTER on control_endpoint (ipc://, mode 0660); each ControlRequest is
 * handed to control_handle() (aggregator/control.h) and its reply sent back;
 * strings control_handle() sets in the reply (error, json) are malloc'd and
 * the server frees them with free() after sending.
 *
 * Ownership: server_new takes the config; everything returned by accessors is
 * borrowed and valid until the next turn of the loop.
 */
#ifndef BS_SERVER_H
#define BS_SERVER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "agg_config.h"
#include "allowlist.h"
#include "bs_clock.h"
#include "bs_enums.h"
#include "decisions.h"
#include "ingest.h"
#include "shared.h"
#include "window.h"
#include "wire.h"

typedef struct server server_t;
typedef struct peer_stats peer_stats_t;

/* The ZAP User-Id of the failover peer (never a site name: sites are [A-Za-z0-9._-]). */
#define SERVER_PEER_USER "*peer"
/* Sensors the aggregator keeps (status, the sequence each applied): in all, and of one site.
 * In CURVE mode a site authenticates, but it names its sensors itself (hostnames change
 * with every redeploy), so a new sensor past either bound takes the place of the one of
 * its site (of all, for the global bound) heard from longest ago, if that one has been
 * silent longer than server_sensor_horizon_ms(); else its batches and status are dropped
 * as sensors_full, per event. Sensors silent for SERVER_SENSOR_FORGET_MS (or the horizon,
 * if longer) are forgotten by the sweep. A forgotten sensor's records and dedup state are
 * deleted. */
#define SERVER_SENSORS_MAX      16384
#define SERVER_SITE_SENSORS_MAX 256
#define SERVER_SENSOR_FORGET_MS (7 * 24 * 3600 * 1000LL)

typedef struct store store_t;

/* How often the loop looks whether the data directory is still the one opened (three
 * stat()s); when two looks in a row say it is not, it writes everything it holds into a
 * new store there (store_recreate), or says once a minute why it cannot. */
#define SERVER_STORE_CHECK_MS 5000

/* Why input was dropped (or an output refused); each has a counter in server_stats_t. The
 * first values mirror wire_err_t one to one (SERVER_DROP_EMPTY == WIRE_ERR_EMPTY ...). */
typedef enum {
    SERVER_DROP_NONE = 0,      /* unused (WIRE_OK) */
    SERVER_DROP_EMPTY,         /* zero-byte frame */
    SERVER_DROP_OVERSIZE,      /* frame over WIRE_MAX_FRAME */
    SERVER_DROP_GARBAGE,       /* not a Frame */
    SERVER_DROP_VERSION,       /* other protocol version */
    SERVER_DROP_NOBODY,        /* frame without a body */
    SERVER_DROP_LIMIT,         /* a field over its limit */
    SERVER_DROP_VALUE,         /* bad enum, UTF-8 or address */
    SERVER_DROP_UNEXPECTED,    /* a body or envelope this socket does not carry */
    SERVER_DROP_SITE_MISMATCH, /* site differs from the CURVE-authenticated one */
    SERVER_DROP_DUPLICATE,     /* (sensor, seq) already counted */
    SERVER_DROP_FUTURE,        /* event time too far ahead of our clock */
    SERVER_DROP_TOO_OLD,       /* event older than the longest rule window */
    SERVER_DROP_REFUSED,       /* the window refused it on every key it would have counted
                                  (table full at max_keys, older than the key's ring) */
    SERVER_DROP_BAD_SITE,      /* site name unusable (empty, '/', site table full) */
    SERVER_DROP_SEND,          /* a reply, update or heartbeat that could not be sent (EAGAIN) */
    SERVER_DROP_BEHIND,        /* (sensor, seq) below its dedup window, never seen: lost */
    SERVER_DROP_SENSORS_FULL,  /* a new sensor of a site (or of all) past the bound, all of
                                  whose sensors are recent (SERVER_SITE_SENSORS_MAX) */
    SERVER_DROP__COUNT         /* number of reasons */
} server_drop_t;

/* Counter name of a drop reason ("garbage", "site_mismatch", "too_old", "behind", ...). */
const char *server_drop_name(server_drop_t why);

/* What the daemon did since it started (status, metrics). */
typedef struct {
    int64_t started_ms;                 /* wall clock at start */
    uint64_t batches_in;                /* event batches accepted */
    uint64_t events_in;                 /* events received in accepted batches */
    uint64_t events_counted;            /* events that reached the windows */
    uint64_t events_allowlisted;        /* events counted but covered by an allowlist */
    uint64_t keys_refused;              /* window updates (an event's keys) the window refused;
                                           an event refused on all of them is a drop
                                           (SERVER_DROP_REFUSED) */
    uint64_t keys_refused_full;         /* window entries refused because the table was at
                                           max_keys (a key or one site's series of it) */
    uint64_t events_untracked;          /* events counted without dedup (its table full,
                                           never at the server's bound on sensors) */
    uint64_t status_in;                 /* SensorStatus frames accepted */
    uint64_t drops[SERVER_DROP__COUNT]; /* dropped input (and refused output) by reason */
    uint64_t updates_published;         /* decision updates sent on the PUB */
    uint64_t heartbeats;                /* heartbeats sent */
    uint64_t snapshots_full;            /* full snapshots served */
    uint64_t snapshots_changes;         /* changes-since answers served */
    uint64_t control_requests;          /* control requests answered */
    uint64_t store_errors;              /* failed LevelDB writes */
    int64_t store_failing_ms;           /* our clock at the first of the failures since the
                                           last write that worked; 0: the store writes */
    int64_t store_lost_ms;              /* our clock when the data directory was found lost
                                           (removed, replaced, emptied: store_check()) and
                                           not recreated since; 0: in place */
    char store_lost_reason[32];         /* what store_check() said then ("removed", ...) */
    char store_lost_error[256];         /* why store_recreate() could not write there */
    uint64_t store_recreated;           /* times the store was written anew where its lost
                                           data directory was */
    uint64_t flushes;                   /* write-behind flushes of window counters */
    uint64_t keys_flushed;              /* window keys written by those flushes */
    double events_per_s;                /* events received per second, last 10 s */
    int64_t restore_ms;                 /* how long restoring the store took at start */
} server_stats_t;

/* One sensor as its events and SensorStatus reports show it. */
typedef struct {
    char site[WIRE_MAX_ID + 1];   /* its site */
    char sensor[WIRE_MAX_ID + 1]; /* its name within the site */
    uint64_t epoch;               /* epoch of its applied sequence (0: never reported) */
    uint64_t applied_seq;         /* last decision sequence it applied */
    int64_t last_seen_ms;         /* our clock when we last heard from it */
    int64_t sensor_time_ms;       /* its clock in its last SensorStatus */
    uint64_t events;              /* events received from it */
    uint64_t events_sent;         /* its own counters, from SensorStatus */
    uint64_t events_dropped;      /* ... */
    uint64_t events_spooled;      /* ... */
    uint32_t decisions;           /* decisions in its cache */
} server_sensor_t;

/* A registered site (sites table; CURVE public key for ZAP). */
typedef struct {
    char name[WIRE_MAX_ID + 1]; /* site name, [A-Za-z0-9._-]{1,64} */
    char public_key[41];        /* Z85 CURVE public key, "" when registered without one */
    int64_t created_ms;         /* when it was registered */
    char who[WIRE_MAX_ID + 1];  /* operator who registered it */
} server_site_t;

/* The start's own checks that need no root, no socket and no write (the CURVE key pair,
 * plain mode's loopback rule, control_group, user): what server_new() would refuse after
 * agg_config_load() passed, for "-n". EX_OK, or with "FILE:LINE: why" lines in err the
 * status the start exits with: EX_CONFIG, EX_NOUSER (unknown user), EX_UNAVAILABLE (a
 * key file but no CURVE in libzmq); "-n" says EX_CONFIG for each. */
int server_check_config(const agg_config_t *cfg, char *err, size_t errlen);

/* Opens the store under cfg->data_dir, restores it, binds every socket; takes the config.
 * config_path is re-read on reload (NULL: no reload). Fatal (msg_fatal) on a broken
 * environment: cannot open the store, cannot bind, bad keys. clock NULL: the system clock. */
server_t *server_new(agg_config_t **cfg_p, const char *config_path, bs_clock_t *clock);

/* Runs the loop until server_request_stop(); flushes the store before returning 0. */
int server_run(server_t *self);
/* One turn of that loop: waits for input up to the next timer (and at most max_wait_ms,
 * when >= 0), answers what came, runs the timers that are due on the server's clock
 * (expiry, the sweeps, the flush, heartbeats) and a reload asked for. With a fake clock,
 * tests move time on and take turns. 0, or -1 when the ZeroMQ context is gone. */
int server_turn(server_t *self, long max_wait_ms);

/* Answers what waits on the snapshot ROUTER (up to a burst), as the loop does when it polls
 * readable; for the fuzz target (tests/fuzz/fuzz_snapshot.c), which has no loop running. */
void server_drain_snapshots(server_t *self);
/* The server's ZeroMQ context, so that the fuzz target's client can reach an inproc
 * snapshot_endpoint; for the fuzz target only (close its sockets before server_destroy). */
void *server_zmq_context(server_t *self);

/* Async-signal-safe, and safe from any thread: ask the loop to stop (as SIGTERM does) or
 * reload the config (as SIGHUP does) at the end of its turn. */
void server_request_stop(server_t *self);
void server_request_reload(server_t *self);
/* Has every turn poll sig_fd (sigfd_open() of SIGTERM, SIGINT and SIGHUP, which the caller
 * blocked before server_new() started any thread; borrowed, open until server_destroy; -1:
 * none) with the sockets, on the loop's thread: TERM and INT ask for the stop (logged once,
 * "stop requested: signal=TERM pid=N"), HUP for a reload. */
void server_watch_signals(server_t *self, int sig_fd);

/* Flushes, closes sockets and the store; sets *self_p = NULL; safe twice. */
void server_destroy(server_t **self_p);

/* ---- the intake's pure steps (also what tests/fuzz/fuzz_frame drives) ---- */

/* Whether name is a site name as PROTOCOL.md 1.2 allows: [A-Za-z0-9._-]{1,64}. */
bool server_site_name_ok(const char *name);

/* The ingest view of event e of the checked batch b; its keys go to keys (WIRE_MAX_KEYS
 * of them); ev borrows from b and keys. */
void server_event_from_wire(const Backstop__EventBatch *b, const wire_event_t *e,
                            ingest_key_t *keys, ingest_event_t *ev);

/* ---- accessors for the control handler (borrowed) ---- */

const agg_config_t *server_config(const server_t *self);
/* The failover peer's follower state, or NULL when no peer is configured. */
const peer_stats_t *server_peer(const server_t *self);
decisions_t *server_decisions(server_t *self);
window_t *server_window(server_t *self);
/* The counting path: rules in use, ingest_explain() for `backstop why`. */
struct ingest *server_ingest(server_t *self);
store_t *server_store(server_t *self);
const server_stats_t *server_stats(const server_t *self);
/* Decision changes a failed store write left waiting (stored, then published, at the next
 * write that works). */
size_t server_unstored(const server_t *self);
/* CURVE handshakes refused (unregistered or revoked keys; 0 in plain mode): the log
 * names each key once a minute only. */
uint64_t server_handshakes_refused(const server_t *self);
/* Wall-clock now, as the loop sees it (fake in tests). */
int64_t server_now_ms(const server_t *self);
/* Bound endpoints with real ports (tcp://127.0.0.1:* resolved); borrowed. */
const char *server_endpoint(const server_t *self, const char *which);

/* Stores every pending decision change (one LevelDB batch, synced), then publishes each
 * on its topic. Returns the number published, -1 when the store write failed (the changes
 * are then neither published nor lost: they stay pending and are retried). */
int server_apply_changes(server_t *self);

/* Sensors seen (events or SensorStatus); *n_p gets the count. */
const server_sensor_t *server_sensors(const server_t *self, size_t *n_p);
/* How long a sensor must have been silent before a new one may take its place: the longest
 * rule window plus max_future_skew and one bucket. By then every event it ever sent is
 * older than any window (its time was at most max_future_skew ahead of when we heard it),
 * so a replay of one is dropped as too_old before dedup is asked, and its dedup state can
 * go without counting anything twice. */
int64_t server_sensor_horizon_ms(const server_t *self);

/* Registered sites; *n_p gets the count. */
const server_site_t *server_sites(const server_t *self, size_t *n_p);
/* When site name was removed (sites del, or the peer's removal), as its tombstone says;
 * 0 when it was not (or the tombstone is gone). */
int64_t server_site_removed_ms(const server_t *self, const char *name);
/* The registered site name (borrowed) or NULL. */
const server_site_t *server_site_find(const server_t *self, const char *name);
/* Registers a site (public_key may be NULL or "") and persists it; new CURVE handshakes with
 * that key authenticate as name at once. 0, or -1 with a one-line reason in err. */
int server_site_add(server_t *self, const char *name, const char *public_key, const char *who,
                    char *err, size_t errlen);
/* Removes a site (keeping a tombstone for the failover peer, shared.h); its key is refused
 * from the next handshake. 0, or -1 (unknown) with err. */
int server_site_del(server_t *self, const char *name, const char *who, char *err, size_t errlen);

/* The allowlist (helper-4's allowlist.h); read it freely, change it only through
 * server_allow_add / server_allow_del so the store and the decisions follow. */
const allowlist_t *server_allowlist(const server_t *self);
/* Adds a copy of e (filled with allowlist_entry_parse, or scope/fp for a key entry),
 * persists it, revokes every active decision it covers (why allowlisted) and stores and
 * publishes those removals. Returns the new entry id (> 0) and the number of decisions
 * revoked in *revoked (may be NULL), or 0 when the store write failed (err says why). */
uint32_t server_allow_add(server_t *self, const allow_entry_t *e, size_t *revoked, char *err,
                          size_t errlen);
/* Removes entry id (keeping a tombstone for the failover peer, shared.h) and persists
 * that; 0, or -1 (unknown id, store failure) with err. */
int server_allow_del(server_t *self, uint32_t id, const char *who, char *err, size_t errlen);

/* The digest of the allowlist, the sites and their tombstones (shared.h), as heartbeats
 * carry it. */
uint64_t server_shared_digest(server_t *self);
/* Applies an entry of the failover peer's (PROTOCOL.md 4.7): when it is newer than ours,
 * it adds, replaces or removes an allowlist entry (revoking what it covers) or a site,
 * stored. 1 applied, 0 ours is as new or newer, -1 refused (a site key another site has;
 * a store failure). */
int server_shared_apply(server_t *self, const shared_rec_t *r);

#endif
