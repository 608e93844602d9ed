/*
 * server - the aggregator's one event loop; see server.h for what it promises.
 *
 * One turn of the loop: zmq_poll with a timeout up to the next timer; drain
 * the event PULL (bounded per turn, so snapshots and the CLI are served in
 * between), then store and publish the decision changes that turn produced
 * (one LevelDB batch, then one PUB send each); answer snapshot and control
 * requests and ZAP handshakes; run the timers (heartbeat, expiry, sweep,
 * write-behind flush, the look at the data directory); on request reload the
 * config or leave. server_turn() is one such turn, server_run() all of them.
 *
 * Counting belongs to helper-4's ingest (dedup -> skew -> allowlist -> window
 * -> rules -> decisions); this file only converts wire events for it, keeps
 * the per-sensor table and the sites, and moves state to and from the store.
 */
#include "server.h"

#include <errno.h>
#include <grp.h>
#include <pwd.h>
#include <signal.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <unistd.h>
#include <zmq.h>

#include "cli_key.h"
#include "control.h"
#include "fp.h"
#include "ingest.h"
#include "msg.h"
#include "peer.h"
#include "publish.h"
#include "shared.h"
#include "sigfd.h"
#include "store.h"
#include "xalloc.h"
#include "zsock.h"

/* Messages taken from the event socket per turn before other sockets get a look. */
#define SERVER_EVENT_BURST 32
/* Snapshot and control requests answered per turn. */
#define SERVER_REQ_BURST 64
/* A drop reason (and a full window) is logged at most once per this interval. */
#define SERVER_DROP_LOG_MS 60000
/* Dirty window keys moved to the store per flush step. */
#define SERVER_DIRTY_CHUNK 1024
/* Seconds of history behind events_per_s. */
#define SERVER_RATE_SLOTS 10
/* The largest window m/wkeys can count: max_keys at its largest (agg_config.c). */
#define SERVER_WKEYS_MAX 1000000000ULL

struct server {
    agg_config_t *cfg;                /* config in force (owned; swapped on reload) */
    char *config_path;                /* file re-read on reload, or NULL */
    bs_clock_t *clock;                /* wall and monotonic time (borrowed) */
    void *ctx;                        /* the ZeroMQ context */
    void *pull;                       /* events in */
    void *pub;                        /* decisions and heartbeats out: an XPUB whose
                                         subscriptions s_drain_subscriptions() admits */
    bool sub_unsure;                  /* a message that was no subscription came in: which
                                         connection the XPUB's next ones are from is not
                                         known until its queue is empty */
    void *snap;                       /* snapshot ROUTER */
    void *ctl;                        /* control ROUTER (ipc) */
    zsock_ipc_file_t ctl_file;        /* its socket file as bound: removed at stop only if
                                         the path still names it */
    zsock_zap_t *zap;                 /* ZAP handler (CURVE mode only) */
    bool curve;                       /* CURVE mode: sites authenticated by key */
    char *ep[4];                      /* bound endpoints: event, decision, snapshot, control */
    store_t *store;                   /* LevelDB */
    decisions_t *decisions;           /* the decision table and its change log */
    allowlist_t *allow;               /* the allowlist */
    ingest_t *ingest;                 /* the counting path (owns window and dedup) */
    server_stats_t stats;             /* counters */
    server_sensor_t *sensors;         /* sensors seen */
    bool *sensor_dirty;               /* sensor record changed since the last flush */
    size_t sensor_last;               /* index s_sensor() found last */
    size_t nsensors;                  /* in use */
    size_t sensors_cap;               /* allocated */
    server_site_t *sites;             /* registered sites */
    size_t nsites;                    /* in use */
    size_t sites_cap;                 /* allocated */
    decision_change_t *unstored;      /* changes taken from the table, not yet stored */
    size_t nunstored;                 /* in use */
    size_t unstored_cap;              /* allocated */
    window_key_t *dirty;              /* scratch for window_dirty_take */
    wire_arena_t *arena;              /* event frames are unpacked into it */
    ingest_event_t *evs;              /* s_on_batch() scratch: the batch's events */
    ingest_key_t *evkeys;             /* ... their keys, WIRE_MAX_KEYS per event */
    ingest_result_t *evres;           /* ... their outcomes */
    size_t evs_cap;                   /* events allocated */
    bool flushing;                    /* a flush cycle is under way (s_flush_step) */
    size_t flush_total;               /* keys the cycle took on */
    size_t flush_left;                /* ... and has still to write */
    size_t flush_ops;                 /* store operations the cycle wrote so far */
    size_t stored_wkeys;              /* window entries last written as m/wkeys */
    int64_t flush_t0;                 /* monotonic ms the cycle started */
    atomic_bool stop;                 /* leave after this turn (SIGTERM; server_request_stop) */
    atomic_bool reload;               /* reload at the end of this turn (SIGHUP; likewise) */
    int sig_fd;                       /* signalfd the loop polls (borrowed), or -1 */
    int64_t next_heartbeat;           /* monotonic ms of the next heartbeat */
    int64_t next_flush;               /* ... write-behind flush */
    bool unsynced;                    /* written since the last fsync (store_sync) */
    bool rewrite_windows;             /* a window write failed: the next cycle writes all */
    int64_t next_sweep;               /* ... sweep */
    int64_t next_store_check;         /* ... look at the data directory (s_store_watch) */
    int64_t store_lost_logged;        /* monotonic ms the lost store was last logged */
    int64_t store_suspect_ms;         /* our clock at a look that found the data directory
                                         lost, for the next to agree; 0: none */
    int64_t store_check_logged;       /* monotonic ms a look that failed was last logged */
    bool store_refill;                /* a recreated store still lacks what the daemon holds */
    int64_t next_rate;                /* ... rate slot rotation */
    uint64_t rate[SERVER_RATE_SLOTS]; /* events received per second, ring */
    size_t rate_at;                   /* current slot */
    int64_t drop_logged[SERVER_DROP__COUNT][4]; /* monotonic ms a reason was last logged,
                                                   by socket (s_socket_slot) */
    int64_t full_logged;                        /* ... and the window being full */
    int64_t untracked_logged;                   /* ... and dedup being full */
    peer_t *peer;                               /* the failover peer followed, or NULL */
    char peer_key[ZSOCK_Z85_LEN + 1];           /* its CURVE public key ("" plain or none) */
    uint64_t peer_stored[2];                    /* its (epoch, seq) last written as m/peer_* */
    shared_t *shared;                           /* tombstones of the allowlist and sites */
    uint64_t shared_digest;                     /* of the allowlist, sites and tombstones */
    bool shared_dirty;                          /* changed since shared_digest was computed */
};

static const char *const s_drop_names[SERVER_DROP__COUNT] = {
    "none",    "empty",   "oversize",   "garbage",       "version",   "nobody",
    "limit",   "value",   "unexpected", "site_mismatch", "duplicate", "future",
    "too_old", "refused", "bad_site",   "send",          "behind",    "sensors_full",
};

const char *server_drop_name(server_drop_t why)
{
    return (unsigned)why < SERVER_DROP__COUNT ? s_drop_names[why] : "unknown";
}

static int64_t s_mono(const server_t *self)
{
    return bs_clock_mono_ms(self->clock);
}

int64_t server_now_ms(const server_t *self)
{
    return bs_clock_now_ms(self->clock);
}

/* A socket's slot in drop_logged: events, decisions, snapshot, control. */
static size_t s_socket_slot(const char *socket)
{
    static const char *const names[4] = {"events", "decisions", "snapshot", "control"};
    for (size_t i = 0; i < 4; i++)
        if (strcmp(socket, names[i]) == 0)
            return i;
    return 0;
}

/* Counts a drop and logs the reason at most once a minute a socket (a flood of one kind on
 * one socket does not hide another's); detail (NULL: none) is more "name=value" fields of
 * the first one for the log line. */
static void s_drop_why(server_t *self, server_drop_t why, const char *socket, const char *peer,
                       const char *detail)
{
    self->stats.drops[why]++;
    int64_t now = s_mono(self);
    if (!msg_due(&self->drop_logged[why][s_socket_slot(socket)], now, SERVER_DROP_LOG_MS))
        return;
    msg_warn("dropped: reason=%s socket=%s peer=%s%s%s total=%llu", server_drop_name(why), socket,
             peer && *peer ? peer : "-", detail && *detail ? " " : "", detail ? detail : "",
             (unsigned long long)self->stats.drops[why]);
}

/* Counts a drop and logs the reason at most once a minute. */
static void s_drop(server_t *self, server_drop_t why, const char *socket, const char *peer)
{
    s_drop_why(self, why, socket, peer, NULL);
}

/* ---- sensors and sites ---- */

int64_t server_sensor_horizon_ms(const server_t *self)
{
    return ingest_span_ms(self->ingest) + self->cfg->max_future_skew_ms +
           self->cfg->window_resolution_ms;
}

/* Forgets sensor i: its records on disk (with the next flush), its dedup state, its row
 * (the last row moves into its place). */
static void s_sensor_forget(server_t *self, size_t i)
{
    const server_sensor_t *s = &self->sensors[i];
    store_sensor_del_queue(self->store, s->site, s->sensor);
    (void)dedup_forget(ingest_dedup(self->ingest), s->site, s->sensor);
    self->nsensors--;
    if (i != self->nsensors) {
        self->sensors[i] = self->sensors[self->nsensors];
        self->sensor_dirty[i] = self->sensor_dirty[self->nsensors];
    }
    self->sensor_last = 0;
}

/* Makes room for a new sensor of site, which has of_site sensors: at either bound, the
 * sensor of the site (for the global bound: of any site) heard from longest ago goes if it
 * has been silent past the horizon. true when there is room. */
static bool s_sensor_room(server_t *self, const char *site, const char *sensor, size_t of_site)
{
    bool site_full = of_site >= SERVER_SITE_SENSORS_MAX;
    if (!site_full && self->nsensors < SERVER_SENSORS_MAX)
        return true;
    size_t old = self->nsensors;
    for (size_t i = 0; i < self->nsensors; i++) {
        const server_sensor_t *s = &self->sensors[i];
        if ((!site_full || strcmp(s->site, site) == 0) &&
            (old == self->nsensors || s->last_seen_ms < self->sensors[old].last_seen_ms))
            old = i;
    }
    int64_t now = server_now_ms(self);
    if (old == self->nsensors ||
        now - self->sensors[old].last_seen_ms <= server_sensor_horizon_ms(self))
        return false;
    char qs[MSG_QUOTE_SIZE(WIRE_MAX_ID)], qf[MSG_QUOTE_SIZE(WIRE_MAX_ID)];
    msg_info("sensor forgotten: site=%s sensor=%s silent=%llds for=%s (%s full: %d sensors)",
             self->sensors[old].site, msg_quote(qs, sizeof(qs), self->sensors[old].sensor),
             (long long)((now - self->sensors[old].last_seen_ms) / 1000),
             msg_quote(qf, sizeof(qf), sensor), site_full ? "site" : "aggregator",
             site_full ? SERVER_SITE_SENSORS_MAX : SERVER_SENSORS_MAX);
    s_sensor_forget(self, old);
    return true;
}

/* Forgets the sensors silent for SERVER_SENSOR_FORGET_MS, or the horizon if longer (the
 * sweep), so that status does not list every name a site ever used. */
static void s_sensors_sweep(server_t *self)
{
    int64_t keep = server_sensor_horizon_ms(self);
    if (keep < SERVER_SENSOR_FORGET_MS)
        keep = SERVER_SENSOR_FORGET_MS;
    int64_t before = server_now_ms(self) - keep;
    size_t n = 0;
    for (size_t i = self->nsensors; i-- > 0;)
        if (self->sensors[i].last_seen_ms < before) {
            s_sensor_forget(self, i);
            n++;
        }
    if (n)
        msg_info("sensors: forgot %zu not heard from in %llds", n, (long long)(keep / 1000));
}

/* The index of the sensor's record, or -1. */
static long s_sensor_find(const server_t *self, const char *site, const char *sensor,
                          size_t *of_site_p)
{
    size_t of_site = 0;
    for (size_t i = 0; i < self->nsensors; i++) {
        const server_sensor_t *s = &self->sensors[i];
        if (strcmp(s->site, site) != 0)
            continue;
        if (strcmp(s->sensor, sensor) == 0)
            return (long)i;
        of_site++;
    }
    if (of_site_p)
        *of_site_p = of_site;
    return -1;
}

/* The sensor's record, made when create and there is room (SERVER_SENSORS_MAX,
 * SERVER_SITE_SENSORS_MAX, s_sensor_room); NULL when there is none. */
static server_sensor_t *s_sensor(server_t *self, const char *site, const char *sensor, bool create)
{
    /* a sensor's batches come in runs: its index is tried first */
    size_t last = self->sensor_last;
    if (last < self->nsensors && strcmp(self->sensors[last].sensor, sensor) == 0 &&
        strcmp(self->sensors[last].site, site) == 0) {
        self->sensor_dirty[last] = true;
        return &self->sensors[last];
    }
    size_t of_site = 0;
    long at = s_sensor_find(self, site, sensor, &of_site);
    if (at >= 0) {
        self->sensor_dirty[at] = true;
        self->sensor_last = (size_t)at;
        return &self->sensors[at];
    }
    if (!create || !s_sensor_room(self, site, sensor, of_site))
        return NULL;
    if (self->nsensors == self->sensors_cap) {
        self->sensors_cap = self->sensors_cap ? self->sensors_cap * 2 : 16;
        self->sensors = xrealloc(self->sensors, self->sensors_cap * sizeof(*self->sensors));
        self->sensor_dirty =
            xrealloc(self->sensor_dirty, self->sensors_cap * sizeof(*self->sensor_dirty));
    }
    server_sensor_t *s = &self->sensors[self->nsensors];
    memset(s, 0, sizeof(*s));
    decisions_strlcpy(s->site, site, WIRE_MAX_ID);
    decisions_strlcpy(s->sensor, sensor, WIRE_MAX_ID);
    self->sensor_dirty[self->nsensors] = true;
    self->sensor_last = self->nsensors;
    self->nsensors++;
    return s;
}

const server_sensor_t *server_sensors(const server_t *self, size_t *n_p)
{
    *n_p = self->nsensors;
    return self->sensors;
}

const server_site_t *server_sites(const server_t *self, size_t *n_p)
{
    *n_p = self->nsites;
    return self->sites;
}

const server_site_t *server_site_find(const server_t *self, const char *name)
{
    for (size_t i = 0; i < self->nsites; i++)
        if (strcmp(self->sites[i].name, name) == 0)
            return &self->sites[i];
    return NULL;
}

bool server_site_name_ok(const char *name)
{
    return cli_key_site_valid(name);
}

static void s_site_insert(server_t *self, const char *name, const char *pub, int64_t created,
                          const char *who)
{
    if (self->nsites == self->sites_cap) {
        self->sites_cap = self->sites_cap ? self->sites_cap * 2 : 16;
        self->sites = xrealloc(self->sites, self->sites_cap * sizeof(*self->sites));
    }
    server_site_t *s = &self->sites[self->nsites++];
    memset(s, 0, sizeof(*s));
    decisions_strlcpy(s->name, name, WIRE_MAX_ID);
    decisions_strlcpy(s->public_key, pub ? pub : "", ZSOCK_Z85_LEN);
    s->created_ms = created;
    decisions_strlcpy(s->who, who ? who : "", WIRE_MAX_ID);
}

/* ---- what the failover peer shares (shared.h): tombstones ---- */

/* Keeps tombstone r, on disk first. 0, or -1 (the store failed). */
static int s_tomb_keep(server_t *self, const shared_rec_t *r)
{
    size_t len = 0;
    uint8_t *blob = shared_rec_pack(r, &len);
    int rc = store_tomb_put(self->store, shared_identity(r), blob, len);
    xfree(blob);
    if (rc < 0) {
        self->stats.store_errors++;
        return -1;
    }
    shared_tomb_put(self->shared, r);
    self->shared_dirty = true;
    return 0;
}

/* Forgets the tombstone of identity, if there is one (what it removed is back). */
static void s_tomb_forget(server_t *self, uint64_t identity)
{
    if (shared_tomb_find(self->shared, identity) == NULL)
        return;
    if (store_tomb_del(self->store, identity) < 0)
        self->stats.store_errors++; /* restored, it loses to the newer entry */
    (void)shared_tomb_drop(self->shared, identity);
    self->shared_dirty = true;
}

/* Forgets the tombstones older than SHARED_TOMB_KEEP_MS (the peer ignores them too). */
static void s_tomb_prune(server_t *self)
{
    int64_t before = server_now_ms(self) - SHARED_TOMB_KEEP_MS;
    size_t n = 0;
    const shared_rec_t *t = shared_tombs(self->shared, &n);
    for (size_t i = n; i-- > 0;) {
        if (t[i].changed_ms >= before)
            continue;
        uint64_t identity = shared_identity(&t[i]);
        if (store_tomb_del(self->store, identity) < 0) {
            self->stats.store_errors++;
            return; /* again at the next sweep */
        }
        (void)shared_tomb_drop(self->shared, identity);
        self->shared_dirty = true;
        t = shared_tombs(self->shared, &n);
    }
}

/* The time to give a change of the entry of identity made now: later than its tombstone
 * and than the entry it replaces (at), so that the peer takes it even if its clock is a
 * little ahead of ours. */
static int64_t s_change_time(const server_t *self, uint64_t identity, int64_t at)
{
    int64_t t = server_now_ms(self);
    const shared_rec_t *tomb = shared_tomb_find(self->shared, identity);
    if (tomb && tomb->changed_ms >= t)
        t = tomb->changed_ms + 1;
    return at >= t ? at + 1 : t;
}

/* ---- sites ---- */

/* Stores and registers (or re-registers) a site. 0, or -1 (the store failed). */
static int s_site_put(server_t *self, const char *name, const char *public_key, int64_t created,
                      const char *who)
{
    if (store_site_put(self->store, name, public_key, created, who) < 0) {
        self->stats.store_errors++;
        return -1;
    }
    server_site_t *s = (server_site_t *)server_site_find(self, name);
    if (s) {
        decisions_strlcpy(s->public_key, public_key ? public_key : "", ZSOCK_Z85_LEN);
        s->created_ms = created;
        decisions_strlcpy(s->who, who ? who : "", WIRE_MAX_ID);
    } else {
        s_site_insert(self, name, public_key, created, who);
    }
    self->shared_dirty = true;
    return 0;
}

/* Removes a registered site from the store and the table. 0, or -1. */
static int s_site_drop(server_t *self, const char *name)
{
    for (size_t i = 0; i < self->nsites; i++) {
        if (strcmp(self->sites[i].name, name) != 0)
            continue;
        if (store_site_del(self->store, name) < 0) {
            self->stats.store_errors++;
            return -1;
        }
        self->sites[i] = self->sites[--self->nsites];
        self->shared_dirty = true;
        return 0;
    }
    return -1;
}

/* The site other than name that has public_key, or NULL. */
static const server_site_t *s_site_with_key(const server_t *self, const char *public_key,
                                            const char *name)
{
    for (size_t i = 0; public_key && *public_key && i < self->nsites; i++)
        if (strcmp(self->sites[i].public_key, public_key) == 0 &&
            strcmp(self->sites[i].name, name) != 0)
            return &self->sites[i];
    return NULL;
}

int server_site_add(server_t *self, const char *name, const char *public_key, const char *who,
                    char *err, size_t errlen)
{
    if (!name || !server_site_name_ok(name)) {
        snprintf(err, errlen, "site name must be 1-64 of A-Z a-z 0-9 . _ -");
        return -1;
    }
    if (server_site_find(self, name)) {
        snprintf(err, errlen, "site %s is already registered", name);
        return -1;
    }
    if (public_key && *public_key && !zsock_key_valid(public_key)) {
        snprintf(err, errlen, "public key is not a 40-character Z85 CURVE key");
        return -1;
    }
    const server_site_t *other = s_site_with_key(self, public_key, name);
    if (other) {
        snprintf(err, errlen, "that key already belongs to site %s", other->name);
        return -1;
    }
    shared_rec_t r;
    shared_rec_site(&r, name, public_key, 0, who);
    uint64_t identity = shared_identity(&r);
    if (s_site_put(self, name, public_key, s_change_time(self, identity, 0), who) < 0) {
        snprintf(err, errlen, "cannot store the site (see the log)");
        return -1;
    }
    s_tomb_forget(self, identity);
    char qw[MSG_QUOTE_SIZE(DECISION_NAME_MAX)];
    msg_info("site added: site=%s who=%s key=%s", name,
             who && *who ? msg_quote(qw, sizeof(qw), who) : "-",
             public_key && *public_key ? "yes" : "no");
    return 0;
}

int64_t server_site_removed_ms(const server_t *self, const char *name)
{
    shared_rec_t r;
    shared_rec_site(&r, name, NULL, 0, NULL);
    const shared_rec_t *t = shared_tomb_find(self->shared, shared_identity(&r));
    return t && t->removed && t->kind == SHARED_SITE ? t->changed_ms : 0;
}

int server_site_del(server_t *self, const char *name, const char *who, char *err, size_t errlen)
{
    const server_site_t *s = name ? server_site_find(self, name) : NULL;
    if (s == NULL) {
        snprintf(err, errlen, "no site %s", name ? name : "");
        return -1;
    }
    /* the tombstone first: should the daemon die between the two, the restore finds both
     * and the later one wins */
    shared_rec_t r;
    shared_rec_site(&r, s->name, s->public_key, 0, who);
    r.removed = true;
    r.changed_ms = s_change_time(self, shared_identity(&r), s->created_ms);
    if (s_tomb_keep(self, &r) < 0 || s_site_drop(self, r.site) < 0) {
        snprintf(err, errlen, "cannot delete the site from the store (see the log)");
        return -1;
    }
    char qw[MSG_QUOTE_SIZE(DECISION_NAME_MAX)];
    msg_info("site removed: site=%s who=%s", r.site,
             who && *who ? msg_quote(qw, sizeof(qw), who) : "-");
    return 0;
}

/* ZAP: client public key -> site name, or SERVER_PEER_USER for the failover peer. */
static const char *s_zap_lookup(void *arg, const char *client_public_z85)
{
    server_t *self = arg;
    if (self->peer_key[0] && strcmp(self->peer_key, client_public_z85) == 0)
        return SERVER_PEER_USER;
    for (size_t i = 0; i < self->nsites; i++)
        if (self->sites[i].public_key[0] &&
            strcmp(self->sites[i].public_key, client_public_z85) == 0)
            return self->sites[i].name;
    return NULL;
}

/* ---- allowlist ---- */

const allowlist_t *server_allowlist(const server_t *self)
{
    return self->allow;
}

/* Adds e (its created_ms as given), revokes what it covers, stores it. The new id, or 0
 * (the store failed: the entry is taken out again). */
static uint32_t s_allow_put(server_t *self, const allow_entry_t *e, size_t *revoked)
{
    size_t n = 0;
    uint32_t id = ingest_allow_add(self->ingest, e, server_now_ms(self), &n);
    const allow_entry_t *stored = allowlist_find(self->allow, id);
    if (!stored || store_allow_put(self->store, stored) < 0) {
        self->stats.store_errors++;
        if (stored)
            (void)allowlist_remove(self->allow, id);
        (void)server_apply_changes(self);
        return 0;
    }
    if (revoked)
        *revoked = n;
    (void)server_apply_changes(self);
    self->shared_dirty = true;
    return id;
}

/* Removes allowlist entry id from the store and the list. 0, or -1. */
static int s_allow_drop(server_t *self, uint32_t id)
{
    if (store_allow_del(self->store, id) < 0) {
        self->stats.store_errors++;
        return -1;
    }
    (void)allowlist_remove(self->allow, id);
    self->shared_dirty = true;
    return 0;
}

uint32_t server_allow_add(server_t *self, const allow_entry_t *e, size_t *revoked, char *err,
                          size_t errlen)
{
    shared_rec_t r;
    shared_rec_allow(&r, e);
    uint64_t identity = shared_identity(&r);
    allow_entry_t copy = *e;
    copy.created_ms = s_change_time(self, identity, 0);
    size_t n = 0;
    uint32_t id = s_allow_put(self, &copy, &n);
    if (id == 0) {
        snprintf(err, errlen, "cannot store the allowlist entry (see the log)");
        return 0;
    }
    s_tomb_forget(self, identity);
    if (revoked)
        *revoked = n;
    char qt[MSG_QUOTE_SIZE(ALLOW_TEXT_MAX)], qw[MSG_QUOTE_SIZE(DECISION_NAME_MAX)];
    msg_info("allowlist add: id=%u text=%s who=%s revoked=%zu", id,
             msg_quote(qt, sizeof(qt), copy.text),
             copy.who[0] ? msg_quote(qw, sizeof(qw), copy.who) : "-", n);
    return id;
}

int server_allow_del(server_t *self, uint32_t id, const char *who, char *err, size_t errlen)
{
    const allow_entry_t *e = allowlist_find(self->allow, id);
    if (!e) {
        snprintf(err, errlen, "no allowlist entry %u", id);
        return -1;
    }
    /* the tombstone first (see server_site_del) */
    shared_rec_t r;
    shared_rec_allow(&r, e);
    decisions_strlcpy(r.who, who ? who : "", DECISION_NAME_MAX);
    r.removed = true;
    r.changed_ms = s_change_time(self, shared_identity(&r), e->created_ms);
    if (s_tomb_keep(self, &r) < 0 || s_allow_drop(self, id) < 0) {
        snprintf(err, errlen, "cannot delete the allowlist entry from the store (see the log)");
        return -1;
    }
    msg_info("allowlist del: id=%u", id);
    return 0;
}

/* ---- what the failover peer shares: its changes (PROTOCOL.md 4.7) ---- */

/* allowlist_foreach: adds an entry to the digest at arg. */
static int s_digest_allow(const allow_entry_t *e, void *arg)
{
    shared_rec_t r;
    shared_rec_allow(&r, e);
    *(uint64_t *)arg = shared_digest_add(*(uint64_t *)arg, &r);
    return 0;
}

uint64_t server_shared_digest(server_t *self)
{
    if (!self->shared_dirty)
        return self->shared_digest;
    uint64_t d = 0;
    shared_rec_t r;
    allowlist_foreach(self->allow, s_digest_allow, &d);
    for (size_t i = 0; i < self->nsites; i++) {
        const server_site_t *s = &self->sites[i];
        shared_rec_site(&r, s->name, s->public_key, s->created_ms, s->who);
        d = shared_digest_add(d, &r);
    }
    size_t nt = 0;
    const shared_rec_t *t = shared_tombs(self->shared, &nt);
    for (size_t i = 0; i < nt; i++)
        d = shared_digest_add(d, &t[i]);
    self->shared_digest = d;
    self->shared_dirty = false;
    return d;
}

int server_shared_apply(server_t *self, const shared_rec_t *r)
{
    if (r->removed && r->changed_ms < server_now_ms(self) - SHARED_TOMB_KEEP_MS)
        return 0; /* forgotten here already */
    uint64_t identity = shared_identity(r);
    /* what we have of it: the live entry, else its tombstone */
    shared_rec_t local;
    const shared_rec_t *have = NULL;
    uint32_t allow_id = 0;
    const server_site_t *site = NULL;
    if (r->kind == SHARED_ALLOW) {
        allow_id = allowlist_find_same(self->allow, &r->allow);
        if (allow_id) {
            shared_rec_allow(&local, allowlist_find(self->allow, allow_id));
            have = &local;
        }
    } else {
        site = server_site_find(self, r->site);
        if (site) {
            shared_rec_site(&local, site->name, site->public_key, site->created_ms, site->who);
            have = &local;
        }
    }
    if (have == NULL)
        have = shared_tomb_find(self->shared, identity);
    if (!shared_loses(have, r))
        return 0;
    /* the peer's texts as they came: quoted, so that none forges a field of the line */
    char qt[MSG_QUOTE_SIZE(ALLOW_TEXT_MAX)], qw[MSG_QUOTE_SIZE(DECISION_NAME_MAX)];
    const char *kind = shared_kind_name(r->kind);
    const char *who = r->who[0] ? msg_quote(qw, sizeof(qw), r->who) : "-";
    if (r->removed) {
        if (s_tomb_keep(self, r) < 0 || (allow_id && s_allow_drop(self, allow_id) < 0) ||
            (site && s_site_drop(self, r->site) < 0))
            return -1;
        msg_info("shared: %s del text=%s who=%s from=peer", kind,
                 msg_quote(qt, sizeof(qt), shared_rec_text(r)), who);
        return 1;
    }
    if (r->kind == SHARED_SITE) {
        const server_site_t *other = s_site_with_key(self, r->public_key, r->site);
        if (other || (self->peer_key[0] && strcmp(r->public_key, self->peer_key) == 0)) {
            msg_warn("shared: site=%s refused: its key is site %s's from=peer", r->site,
                     other ? other->name : SERVER_PEER_USER);
            return -1;
        }
        if (s_site_put(self, r->site, r->public_key, r->changed_ms, r->who) < 0)
            return -1;
        s_tomb_forget(self, identity);
        msg_info("shared: site add text=%s key=%s who=%s from=peer",
                 msg_quote(qt, sizeof(qt), r->site), r->public_key[0] ? "yes" : "no", who);
        return 1;
    }
    /* an allowlist entry: a newer one of the same match replaces ours, written first, so
     * that a store failure leaves ours */
    allow_entry_t e = r->allow;
    e.created_ms = r->changed_ms;
    decisions_strlcpy(e.who, r->who, DECISION_NAME_MAX);
    size_t revoked = 0;
    uint32_t id = s_allow_put(self, &e, &revoked);
    if (id == 0 || (allow_id && s_allow_drop(self, allow_id) < 0))
        return -1;
    s_tomb_forget(self, identity);
    msg_info("shared: allow add id=%u text=%s who=%s revoked=%zu from=peer", id,
             msg_quote(qt, sizeof(qt), e.text), who, revoked);
    return 1;
}

/* ---- accessors ---- */

const peer_stats_t *server_peer(const server_t *self)
{
    return self->peer ? peer_stats(self->peer) : NULL;
}

const agg_config_t *server_config(const server_t *self)
{
    return self->cfg;
}

decisions_t *server_decisions(server_t *self)
{
    return self->decisions;
}

window_t *server_window(server_t *self)
{
    return ingest_window(self->ingest);
}

ingest_t *server_ingest(server_t *self)
{
    return self->ingest;
}

store_t *server_store(server_t *self)
{
    return self->store;
}

const server_stats_t *server_stats(const server_t *self)
{
    return &self->stats;
}

size_t server_unstored(const server_t *self)
{
    return self->nunstored;
}

uint64_t server_handshakes_refused(const server_t *self)
{
    return self->zap ? zsock_zap_refused(self->zap) : 0;
}

/* A store write failed (windows: one of the flush's window writes). */
static void s_store_failed(server_t *self, bool windows)
{
    self->stats.store_errors++;
    if (self->stats.store_failing_ms == 0)
        self->stats.store_failing_ms = server_now_ms(self);
    if (windows)
        self->rewrite_windows = true;
}

const char *server_endpoint(const server_t *self, const char *which)
{
    static const char *const names[4] = {"event", "decision", "snapshot", "control"};
    for (size_t i = 0; i < 4; i++)
        if (strcmp(which, names[i]) == 0)
            return self->ep[i];
    return NULL;
}

/* ---- decisions: store, then publish ---- */

int server_apply_changes(server_t *self)
{
    decision_change_t c;
    while (decisions_take_change(self->decisions, &c)) {
        if (self->nunstored == self->unstored_cap) {
            self->unstored_cap = self->unstored_cap ? self->unstored_cap * 2 : 64;
            self->unstored = xrealloc(self->unstored, self->unstored_cap * sizeof(*self->unstored));
        }
        self->unstored[self->nunstored++] = c;
    }
    if (self->nunstored == 0)
        return 0;
    if (store_changes_write(self->store, self->unstored, self->nunstored) < 0) {
        /* kept: retried with the next change or timer; nothing published meanwhile */
        s_store_failed(self, false);
        return -1;
    }
    self->stats.store_failing_ms = 0;
    int sent = 0;
    for (size_t i = 0; i < self->nunstored; i++) {
        if (publish_update(self->pub, &self->unstored[i]) < 0) {
            s_drop(self, SERVER_DROP_SEND, "decisions", NULL);
        } else {
            self->stats.updates_published++;
            sent++;
        }
    }
    /* to the disk with the next flush (one fsync a flush_interval for everything, none
     * in the way of events): the kernel has it already, so only the host going down
     * could lose it, and store.h says what happens then */
    self->unsynced = true;
    for (size_t i = 0; i < self->nunstored; i++) {
        const decision_change_t *ch = &self->unstored[i];
        char qv[MSG_QUOTE_SIZE(DECISION_VALUE_MAX)];
        msg_info("%s: decision=%s seq=%llu scope=%s value=%s action=%s reach=%s%s%s why=%s "
                 "expires=%lld%s",
                 ch->decision.id, ch->kind == DECISION_REMOVE ? "remove" : "upsert",
                 (unsigned long long)ch->seq, bs_enums_scope_name(ch->decision.scope),
                 msg_quote(qv, sizeof(qv), ch->decision.value),
                 bs_enums_action_name(ch->decision.action), bs_enums_reach_name(ch->decision.reach),
                 ch->decision.site[0] ? " site=" : "", ch->decision.site,
                 decisions_why_name(ch->why), (long long)ch->decision.expires_ms,
                 ch->decision.mirrored ? " from=peer" : "");
    }
    self->nunstored = 0;
    /* keep the stored log about twice the in-memory one; older asks get a full snapshot */
    uint64_t keep = (uint64_t)self->cfg->change_log * 2;
    uint64_t seq = store_seq(self->store);
    if (seq > store_log_floor(self->store) + keep + 1024)
        store_log_prune(self->store, seq - keep);
    return sent;
}

/* Waits for the disk to have everything written so far (with sync_decisions). */
static void s_sync(server_t *self)
{
    if (!self->unsynced)
        return;
    self->unsynced = false;
    if (store_sync(self->store) < 0)
        self->stats.store_errors++;
}

/* publish_since_fn: the table's log, else the stored log (after a restart). */
static int s_changes_since(void *arg, uint64_t epoch, uint64_t since_seq,
                           int (*cb)(const decision_change_t *c, void *cbarg), void *cbarg)
{
    server_t *self = arg;
    if (decisions_changes_since(self->decisions, epoch, since_seq, cb, cbarg) == 0)
        return 0;
    if (epoch != decisions_epoch(self->decisions) ||
        store_seq(self->store) != decisions_seq(self->decisions) ||
        since_seq >= decisions_log_floor(self->decisions))
        return -1;
    return store_changes_since(self->store, since_seq, cb, cbarg);
}

/* ---- the decision publisher's subscriptions ---- */

/* Whether a subscriber authenticated as user (ZAP User-Id; NULL or "" when none) may have
 * topic (len bytes): F and H (and any longer prefix of them) from anyone, its own site's
 * S/<site>/ (and longer), and every topic for the failover peer and in plain mode, where
 * nobody is authenticated (loopback only). "", "S", "S/sit" and other sites' topics
 * are refused: ZeroMQ matches by prefix, so each would carry other sites' local decisions
 * (PROTOCOL.md 4.1). */
static bool s_topic_ok(const server_t *self, const char *user, const uint8_t *topic, size_t len)
{
    if (!self->curve || (user && strcmp(user, SERVER_PEER_USER) == 0))
        return true;
    if (len >= 1 && (topic[0] == ZSOCK_TOPIC_FLEET[0] || topic[0] == ZSOCK_TOPIC_HEARTBEAT[0]))
        return true;
    char own[ZSOCK_TOPIC_MAX];
    if (!user || !*user || zsock_site_topic(own, sizeof(own), user) < 0)
        return false;
    size_t olen = strlen(own);
    return len >= olen && memcmp(topic, own, olen) == 0;
}

/*
 * Admits the decision publisher's subscriptions (ZMQ_XPUB_MANUAL): each one, as it is read,
 * is applied with ZMQ_SUBSCRIBE / ZMQ_UNSUBSCRIBE to the connection it came from, if
 * s_topic_ok() allows it for the site that connection authenticated as (the User-Id the
 * message carries); a refused one is counted as site_mismatch and that connection gets
 * nothing of it. The loop calls this at the top of every round, before it publishes or
 * answers anything in it: a heartbeat a sensor hears came from a round that had its
 * subscriptions, or from one before, and the snapshot it then asks for covers whatever
 * was published before they were all in place (PROTOCOL.md 4.2).
 *
 * libzmq knows the connection a subscription came from by a queue of its own, in step
 * with the messages only while every message is a subscription: anything else a
 * connection sends (an XSUB may send anything) takes a place in that queue that was not
 * its own. After one, until the queue is empty, which connection a subscription came
 * from is not known: they are not applied (the sensors hear no heartbeat, and after 3 s of
 * silence connect and subscribe again). The queue is looked at once more when a burst's
 * budget ends, so a burst that ends exactly on it leaves nothing unsure behind. A site
 * that keeps sending such messages keeps others' new sensors from joining while it does:
 * each is counted (unexpected) and logged with its key's site, for the operator to remove.
 */
static void s_drain_subscriptions(server_t *self)
{
    for (int i = 0; i < SERVER_REQ_BURST; i++) {
        zmq_msg_t m;
        zmq_msg_init(&m);
        if (zmq_msg_recv(&m, self->pub, ZMQ_DONTWAIT) < 0) {
            zmq_msg_close(&m);
            self->sub_unsure = false; /* nothing queued: in step again */
            return;
        }
        const uint8_t *d = zmq_msg_data(&m);
        size_t n = zmq_msg_size(&m);
        const char *user = zmq_msg_gets(&m, "User-Id");
        const char *peer = zmq_msg_gets(&m, "Peer-Address");
        if (n == 0 || d[0] > 1) {
            char detail[96];
            self->sub_unsure = true;
            snprintf(detail, sizeof(detail), "key_site=%.64s", user && *user ? user : "-");
            s_drop_why(self, SERVER_DROP_UNEXPECTED, "decisions", peer, detail);
        } else if (self->sub_unsure) {
            msg_debug(1,
                      "decisions: subscription from %s not applied: its connection is not "
                      "known (a message before it was none)",
                      peer ? peer : "-");
        } else if (s_topic_ok(self, user, d + 1, n - 1)) {
            int opt = d[0] == 1 ? ZMQ_SUBSCRIBE : ZMQ_UNSUBSCRIBE;
            if (zmq_setsockopt(self->pub, opt, d + 1, n - 1) < 0)
                msg_warn("decisions: cannot apply a subscription: %s", zmq_strerror(errno));
        } else if (d[0] == 1) {
            /* the topic's bytes as they came (the first 2 * ZSOCK_TOPIC_MAX), quoted */
            char qt[MSG_QUOTE_SIZE(2 * ZSOCK_TOPIC_MAX)], detail[sizeof(qt) + 96];
            size_t k = n - 1 < 2 * ZSOCK_TOPIC_MAX ? n - 1 : 2 * ZSOCK_TOPIC_MAX;
            snprintf(detail, sizeof(detail), "topic=%s key_site=%.64s",
                     msg_quote_n(qt, sizeof(qt), d + 1, k), user && *user ? user : "-");
            s_drop_why(self, SERVER_DROP_SITE_MISMATCH, "decisions", peer, detail);
        }
        zmq_msg_close(&m);
    }
    /* the burst's budget is spent: nothing left behind it is in step again too (the next
     * connection's subscriptions must not pay for messages already read) */
    if (self->sub_unsure) {
        int ev = 0;
        size_t evlen = sizeof(ev);
        if (zmq_getsockopt(self->pub, ZMQ_EVENTS, &ev, &evlen) == 0 && !(ev & ZMQ_POLLIN))
            self->sub_unsure = false;
    }
}

/* ---- the event socket ---- */

void server_event_from_wire(const Backstop__EventBatch *b, const wire_event_t *e,
                            ingest_key_t *keys, ingest_event_t *ev)
{
    for (size_t k = 0; k < e->nkeys; k++)
        keys[k] = (ingest_key_t){.scope = (bs_scope_t)e->keys[k].scope,
                                 .fp = e->keys[k].fp,
                                 .text = e->keys[k].text,
                                 .text_len = e->keys[k].text_len};
    *ev = (ingest_event_t){
        .site = b->site,
        .sensor = b->sensor,
        .seq = e->seq,
        .time_ms = e->time_ms,
        .msg_class = (bs_class_t)e->msg_class,
        .client_ip = e->client_ip,
        .client_ip_len = e->client_ip_len,
        .keys = keys,
        .nkeys = e->nkeys,
        .nrule_labels = e->nrules,
        .ledger_hit = e->ledger_hit,
    };
}

/* A batch's window updates refused (keys), refused for want of room (full): counted (the
 * counters of a window outlive it: a reload makes a new one), and a full window is logged
 * at most once a minute, since it means events are not counted. */
static void s_refused_note(server_t *self, uint64_t keys, uint64_t full)
{
    self->stats.keys_refused += keys;
    self->stats.keys_refused_full += full;
    if (full == 0)
        return;
    int64_t now = s_mono(self);
    if (!msg_due(&self->full_logged, now, SERVER_DROP_LOG_MS))
        return;
    msg_warn("window full (max_keys=%lld): keys not counted: refused=%llu (raise max_keys, "
             "or the keys are a flood of distinct ones)",
             (long long)self->cfg->max_keys, (unsigned long long)self->stats.keys_refused_full);
}

/* A batch's events that dedup could not track (its table full): counted, since they are
 * not dropped (fail open), but a replay of theirs would count twice, so it is not silent:
 * the count is in status and the log says so at most once a minute. The server's bound
 * on sensors is dedup's (s_ingest_new), so this would be a bug. */
static void s_untracked_note(server_t *self, uint64_t n)
{
    self->stats.events_untracked += n;
    if (n == 0)
        return;
    int64_t now = s_mono(self);
    if (!msg_due(&self->untracked_logged, now, SERVER_DROP_LOG_MS))
        return;
    const dedup_t *dd = ingest_dedup(self->ingest);
    msg_warn("dedup full (%zu of %zu sensors): events counted without duplicate detection "
             "(a replay of them counts twice): untracked=%llu",
             dedup_sensors(dd), dedup_max_sensors(dd),
             (unsigned long long)self->stats.events_untracked);
}

/* A new sensor of site found no room (s_sensor_room): its n events (1 for a status) are
 * dropped as sensors_full. */
static void s_sensors_full(server_t *self, const char *site, size_t n, const char *peer)
{
    char detail[2 * WIRE_MAX_ID];
    snprintf(detail, sizeof(detail), "site=%.64s cap=%d", site,
             self->nsensors >= SERVER_SENSORS_MAX ? SERVER_SENSORS_MAX : SERVER_SITE_SENSORS_MAX);
    self->stats.drops[SERVER_DROP_SENSORS_FULL] += n - 1;
    s_drop_why(self, SERVER_DROP_SENSORS_FULL, "events", peer, detail);
}

static void s_on_batch(server_t *self, const Backstop__EventBatch *b, const zsock_meta_t *meta)
{
    if (self->curve && strcmp(b->site, meta->user) != 0) {
        s_drop(self, SERVER_DROP_SITE_MISMATCH, "events", meta->peer);
        return;
    }
    if (!server_site_name_ok(b->site) || !*b->sensor) {
        s_drop(self, SERVER_DROP_BAD_SITE, "events", meta->peer);
        return;
    }
    int64_t now = server_now_ms(self);
    /* rows or columns: the same events */
    wire_events_t it;
    size_t nev = wire_events_open(&it, b);
    server_sensor_t *sensor = s_sensor(self, b->site, b->sensor, true);
    if (sensor == NULL) {
        s_sensors_full(self, b->site, nev ? nev : 1, meta->peer);
        return;
    }
    sensor->last_seen_ms = now;
    sensor->events += nev;
    self->stats.batches_in++;
    self->stats.events_in += nev;
    self->rate[self->rate_at] += nev;

    /* the batch in ingest's terms, once; then counted as one batch */
    if (nev > self->evs_cap) {
        self->evs_cap = nev;
        self->evs = xrealloc(self->evs, self->evs_cap * sizeof(*self->evs));
        self->evkeys =
            xrealloc(self->evkeys, self->evs_cap * WIRE_MAX_KEYS * sizeof(*self->evkeys));
        self->evres = xrealloc(self->evres, self->evs_cap * sizeof(*self->evres));
    }
    wire_event_t we;
    wire_key_t wk[WIRE_MAX_KEYS];
    /* only what the view gave is counted (a checked frame gives all nev) */
    size_t n = 0;
    while (n < nev && wire_events_next(&it, &we, wk)) {
        server_event_from_wire(b, &we, self->evkeys + n * WIRE_MAX_KEYS, &self->evs[n]);
        n++;
    }
    nev = n;
    uint64_t refused0 = ingest_counters(self->ingest)->keys_refused;
    uint64_t full0 = window_counters(ingest_window(self->ingest))->refused_full;
    uint64_t untracked0 = dedup_counters(ingest_dedup(self->ingest))->untracked;
    ingest_batch(self->ingest, self->evs, nev, now, self->evres);
    s_refused_note(self, ingest_counters(self->ingest)->keys_refused - refused0,
                   window_counters(ingest_window(self->ingest))->refused_full - full0);
    s_untracked_note(self, dedup_counters(ingest_dedup(self->ingest))->untracked - untracked0);
    for (size_t i = 0; i < nev; i++) {
        switch (self->evres[i]) {
        case INGEST_COUNTED:
            self->stats.events_counted++;
            break;
        case INGEST_DUPLICATE:
            s_drop(self, SERVER_DROP_DUPLICATE, "events", meta->peer);
            break;
        case INGEST_BEHIND:
            s_drop(self, SERVER_DROP_BEHIND, "events", meta->peer);
            break;
        case INGEST_TOO_OLD:
            s_drop(self, SERVER_DROP_TOO_OLD, "events", meta->peer);
            break;
        case INGEST_FUTURE:
            s_drop(self, SERVER_DROP_FUTURE, "events", meta->peer);
            break;
        case INGEST_INVALID:
            s_drop(self, SERVER_DROP_BAD_SITE, "events", meta->peer);
            break;
        case INGEST_REFUSED:
            s_drop(self, SERVER_DROP_REFUSED, "events", meta->peer);
            break;
        case INGEST_ALLOWLISTED:
            self->stats.events_allowlisted++;
            break;
        case INGEST_LEDGER:
        case INGEST_UNCOUNTED:
            break;
        }
    }
}

static void s_on_status(server_t *self, const Backstop__SensorStatus *st, const zsock_meta_t *meta)
{
    if (self->curve && strcmp(st->site, meta->user) != 0) {
        s_drop(self, SERVER_DROP_SITE_MISMATCH, "events", meta->peer);
        return;
    }
    if (!server_site_name_ok(st->site) || !*st->sensor) {
        s_drop(self, SERVER_DROP_BAD_SITE, "events", meta->peer);
        return;
    }
    int64_t now = server_now_ms(self);
    server_sensor_t *s = s_sensor(self, st->site, st->sensor, true);
    if (s == NULL) {
        s_sensors_full(self, st->site, 1, meta->peer);
        return;
    }
    s->last_seen_ms = now;
    s->epoch = st->epoch;
    s->applied_seq = st->applied_seq;
    s->sensor_time_ms = st->time_ms;
    s->events_sent = st->events_sent;
    s->events_dropped = st->events_dropped;
    s->events_spooled = st->events_spooled;
    s->decisions = st->decisions;
    self->stats.status_in++;
    msg_debug(1, "status: site=%s sensor=%s epoch=%016llx applied=%llu", st->site, st->sensor,
              (unsigned long long)st->epoch, (unsigned long long)st->applied_seq);
}

static void s_flush_keep_up(server_t *self);

static void s_drain_events(server_t *self)
{
    for (int i = 0; i < SERVER_EVENT_BURST; i++) {
        Backstop__Frame *f = NULL;
        zsock_meta_t meta;
        wire_err_t err = WIRE_OK;
        /* frames are unpacked into the arena: nothing of the last one is kept */
        wire_arena_reset(self->arena);
        int rc = zsock_recv_in(self->pull, ZMQ_DONTWAIT, self->arena, &f, &meta, &err);
        if (rc < 0)
            break;
        if (rc == 0) {
            s_drop(self, (server_drop_t)err, "events", meta.peer);
            continue;
        }
        if (f->body_case == BACKSTOP__FRAME__BODY_EVENTS) {
            s_on_batch(self, f->events, &meta);
            /* a decision is stored and published before the next frame is looked at */
            if (decisions_pending(self->decisions))
                (void)server_apply_changes(self);
        } else if (f->body_case == BACKSTOP__FRAME__BODY_STATUS)
            s_on_status(self, f->status, &meta);
        else
            s_drop(self, SERVER_DROP_UNEXPECTED, "events", meta.peer);
        s_flush_keep_up(self);
    }
    wire_arena_reset(self->arena);
}

/* ---- snapshot and control ---- */

/* Building a SharedReply: up to WIRE_MAX_SHARED entries, then sent. */
typedef struct {
    server_t *srv;          /* the server */
    const zsock_meta_t *to; /* who asked */
    shared_rec_t *recs;     /* the chunk's records */
    size_t n;               /* in it */
    size_t total;           /* sent so far */
    int failed;             /* a send failed */
} s_shared_out_t;

/* Sends the chunk (more: not the last one). */
static void s_shared_send(s_shared_out_t *o, bool more)
{
    Backstop__SharedEntry *pbs = xcalloc(o->n ? o->n : 1, sizeof(*pbs));
    Backstop__SharedEntry **ptrs = xcalloc(o->n ? o->n : 1, sizeof(*ptrs));
    for (size_t i = 0; i < o->n; i++) {
        shared_rec_write(&o->recs[i], &pbs[i]);
        ptrs[i] = &pbs[i];
    }
    Backstop__SharedReply rep = BACKSTOP__SHARED_REPLY__INIT;
    rep.digest = o->srv->shared_digest;
    rep.n_entries = o->n;
    rep.entries = ptrs;
    rep.has_more = more;
    rep.more = more;
    Backstop__Frame f;
    wire_frame_init(&f, BACKSTOP__FRAME__BODY_SHARED_REPLY, &rep);
    if (!o->failed && zsock_reply(o->srv->snap, o->to, &f, ZMQ_DONTWAIT) < 0)
        o->failed = 1;
    xfree(pbs);
    xfree(ptrs);
    o->total += o->n;
    o->n = 0;
}

static void s_shared_add(s_shared_out_t *o, const shared_rec_t *r)
{
    if (o->n == WIRE_MAX_SHARED)
        s_shared_send(o, true);
    o->recs[o->n++] = *r;
}

static int s_shared_add_allow(const allow_entry_t *e, void *arg)
{
    shared_rec_t r;
    shared_rec_allow(&r, e);
    s_shared_add(arg, &r);
    return 0;
}

/* Answers a SharedRequest (PROTOCOL.md 4.7): the allowlist, the sites and the tombstones,
 * to the peer only (in CURVE mode, the key peer_public_key names). */
static void s_shared_reply(server_t *self, const zsock_meta_t *meta,
                           const Backstop__SharedRequest *req)
{
    if (self->curve && strcmp(meta->user, SERVER_PEER_USER) != 0) {
        s_drop(self, SERVER_DROP_SITE_MISMATCH, "snapshot", meta->peer);
        return;
    }
    (void)server_shared_digest(self);
    s_shared_out_t o = {.srv = self, .to = meta};
    o.recs = xcalloc(WIRE_MAX_SHARED, sizeof(*o.recs));
    allowlist_foreach(self->allow, s_shared_add_allow, &o);
    for (size_t i = 0; i < self->nsites; i++) {
        const server_site_t *s = &self->sites[i];
        shared_rec_t r;
        shared_rec_site(&r, s->name, s->public_key, s->created_ms, s->who);
        s_shared_add(&o, &r);
    }
    size_t nt = 0;
    const shared_rec_t *t = shared_tombs(self->shared, &nt);
    for (size_t i = 0; i < nt; i++)
        s_shared_add(&o, &t[i]);
    s_shared_send(&o, false);
    xfree(o.recs);
    if (o.failed)
        s_drop(self, SERVER_DROP_SEND, "snapshot", meta->peer);
    msg_debug(1, "shared: request from=%s entries=%zu digest=%016llx", req->name, o.total,
              (unsigned long long)self->shared_digest);
}

static void s_drain_snapshots(server_t *self)
{
    for (int i = 0; i < SERVER_REQ_BURST; i++) {
        Backstop__Frame *f = NULL;
        zsock_meta_t meta;
        wire_err_t err = WIRE_OK;
        int rc = zsock_recv(self->snap, ZMQ_DONTWAIT, &f, &meta, &err);
        if (rc < 0)
            break;
        if (rc == 0) {
            s_drop(self, (server_drop_t)err, "snapshot", meta.peer);
            continue;
        }
        if (f->body_case == BACKSTOP__FRAME__BODY_SHARED_REQUEST && meta.id_len) {
            s_shared_reply(self, &meta, f->shared_request);
            wire_free(&f);
            continue;
        }
        if (f->body_case != BACKSTOP__FRAME__BODY_SNAPSHOT_REQUEST || meta.id_len == 0) {
            s_drop(self, SERVER_DROP_UNEXPECTED, "snapshot", meta.peer);
            wire_free(&f);
            continue;
        }
        const Backstop__SnapshotRequest *req = f->snapshot_request;
        const char *site = req->site;
        bool all = req->has_all_sites && req->all_sites;
        if (all) {
            /* the failover peer: every site's decisions (PROTOCOL.md 4.6) */
            site = PUBLISH_ALL_SITES;
        }
        if ((all && self->curve && strcmp(meta.user, SERVER_PEER_USER) != 0) ||
            (!all && ((self->curve && strcmp(req->site, meta.user) != 0) ||
                      !server_site_name_ok(req->site)))) {
            /* refused, and told so: nothing of anyone's, and the requester knows its key
             * is not the site's (PROTOCOL.md 1.3) */
            char detail[MSG_QUOTE_SIZE(WIRE_MAX_ID) + 128], qs[MSG_QUOTE_SIZE(WIRE_MAX_ID)];
            snprintf(detail, sizeof(detail), "site=%s%s key_site=%.64s",
                     *req->site ? msg_quote(qs, sizeof(qs), req->site) : "-",
                     all ? " all_sites=yes" : "", *meta.user ? meta.user : "-");
            s_drop_why(self, SERVER_DROP_SITE_MISMATCH, "snapshot", meta.peer, detail);
            if (publish_refused(self->snap, &meta, self->decisions,
                                self->cfg->heartbeat_interval_ms) < 0)
                s_drop(self, SERVER_DROP_SEND, "snapshot", meta.peer);
            wire_free(&f);
            continue;
        }
        /* a snapshot holds what is stored, never a change a failed write left in memory:
         * a sensor would keep it under a sequence number the store may give again. The
         * sensor asks again; meanwhile it keeps enforcing what it holds */
        if (decisions_pending(self->decisions) || self->nunstored)
            (void)server_apply_changes(self);
        if (self->nunstored) {
            s_drop(self, SERVER_DROP_SEND, "snapshot", meta.peer);
            wire_free(&f);
            continue;
        }
        publish_snapshot_result_t res;
        /* the heartbeat_interval goes with it: a follower judges silence by it from the
         * reply on, not only from the first heartbeat (PROTOCOL.md 4.3) */
        if (publish_snapshot(self->snap, &meta, self->decisions, site, req, s_changes_since, self,
                             self->cfg->heartbeat_interval_ms, &res) < 0)
            s_drop(self, SERVER_DROP_SEND, "snapshot", meta.peer);
        else if (res.changes_only)
            self->stats.snapshots_changes++;
        else
            self->stats.snapshots_full++;
        msg_debug(1, "snapshot: site=%s sensor=%s since=%llu changes_only=%d entries=%zu", site,
                  req->sensor, (unsigned long long)req->since_seq, res.changes_only, res.entries);
        wire_free(&f);
    }
}

void server_drain_snapshots(server_t *self)
{
    s_drain_snapshots(self);
}

void *server_zmq_context(server_t *self)
{
    return self->ctx;
}

static void s_drain_control(server_t *self)
{
    for (int i = 0; i < SERVER_REQ_BURST; i++) {
        Backstop__Frame *f = NULL;
        zsock_meta_t meta;
        wire_err_t err = WIRE_OK;
        int rc = zsock_recv(self->ctl, ZMQ_DONTWAIT, &f, &meta, &err);
        if (rc < 0)
            break;
        Backstop__ControlReply reply = BACKSTOP__CONTROL_REPLY__INIT;
        if (rc == 0 || f->body_case != BACKSTOP__FRAME__BODY_CONTROL_REQUEST) {
            s_drop(self, rc == 0 ? (server_drop_t)err : SERVER_DROP_UNEXPECTED, "control", "");
            reply.status = EX_USAGE;
            reply.error = xstrdup(rc == 0 ? "malformed request" : "not a control request");
        } else {
            (void)control_handle(self, f->control_request, &reply);
            self->stats.control_requests++;
            /* whatever the handler changed is stored and published now, and on disk
             * before the operator hears it is done; a request that only reads leaves
             * the disk to the next flush (a monitor polling status costs no fsync) */
            (void)server_apply_changes(self);
            if (control_changes(f->control_request))
                s_sync(self);
        }
        if (meta.id_len) {
            Backstop__Frame out;
            wire_frame_init(&out, BACKSTOP__FRAME__BODY_CONTROL_REPLY, &reply);
            if (zsock_reply(self->ctl, &meta, &out, ZMQ_DONTWAIT) < 0) {
                if (errno == EMSGSIZE) {
                    /* a result too big for a frame: say so instead of nothing */
                    free(reply.json);
                    reply.json = NULL;
                    free(reply.error);
                    reply.error = xstrdup("reply too large for one frame; narrow the request");
                    reply.status = EX_SOFTWARE;
                    if (zsock_reply(self->ctl, &meta, &out, ZMQ_DONTWAIT) < 0)
                        s_drop(self, SERVER_DROP_SEND, "control", "");
                } else {
                    s_drop(self, SERVER_DROP_SEND, "control", "");
                }
            }
        }
        free(reply.error);
        free(reply.json);
        wire_free(&f);
    }
}

/* ---- timers ---- */

static void s_heartbeat(server_t *self)
{
    /* the seq of the last change published: stored and sent, never a pending one */
    uint64_t seq =
        decisions_seq(self->decisions) - decisions_pending(self->decisions) - self->nunstored;
    if (publish_heartbeat(self->pub, decisions_epoch(self->decisions), seq, server_now_ms(self),
                          server_shared_digest(self), self->cfg->heartbeat_interval_ms,
                          ingest_scopes(self->ingest)) < 0)
        s_drop(self, SERVER_DROP_SEND, "decisions", NULL);
    else
        self->stats.heartbeats++;
}

/* Stores the peer's position applied (PROTOCOL.md 4.6): the changes it led to are
 * stored already, so a restart asks again from there, and applying a change twice changes
 * nothing. A new epoch followed is written at once (now): without it, a restart would ask
 * for a full snapshot, which cannot say what the peer revoked of ours; the seq moving on
 * waits for the flush. */
static void s_peer_store(server_t *self, bool now)
{
    if (!self->peer)
        return;
    uint64_t pos[2];
    peer_position(self->peer, &pos[0], &pos[1]);
    if (pos[0] == self->peer_stored[0] && pos[1] == self->peer_stored[1])
        return;
    if (pos[0] != self->peer_stored[0] && pos[0] != 0 && now) {
        static const char *const names[2] = {"peer_epoch", "peer_seq"};
        if (store_meta_write(self->store, names, pos, 2) < 0) {
            self->stats.store_errors++;
            return;
        }
    } else if (!now) {
        store_meta_queue(self->store, "peer_epoch", pos[0]);
        store_meta_queue(self->store, "peer_seq", pos[1]);
    } else {
        return;
    }
    memcpy(self->peer_stored, pos, sizeof(pos));
}

/* One step of the write-behind flush: up to SERVER_DIRTY_CHUNK of the keys the cycle
 * took on (those changed before it began), copied here and encoded and written as one
 * batch by the store's writer thread. Steps run between
 * event frames (s_flush_keep_up) and when the loop is idle, so a flush of many keys
 * never holds events or decisions up for long. The last step also writes the
 * sensors' records and syncs; returns true when the cycle is done. */
static bool s_flush_step(server_t *self)
{
    window_t *w = ingest_window(self->ingest);
    size_t want = self->flush_left < SERVER_DIRTY_CHUNK ? self->flush_left : SERVER_DIRTY_CHUNK;
    size_t n = window_dirty_copy(w, want, store_window_copy(self->store));
    self->stats.keys_flushed += n;
    self->flush_ops += store_pending(self->store);
    self->flush_left = n < want ? 0 : self->flush_left - n;
    if (self->flush_left > 0) {
        if (store_flush_behind(self->store, false) < 0)
            s_store_failed(self, true);
        return false;
    }
    if (window_entries(w) != self->stored_wkeys) {
        self->stored_wkeys = window_entries(w);
        store_meta_queue(self->store, "wkeys", self->stored_wkeys);
    }
    s_peer_store(self, false);
    dedup_t *dd = ingest_dedup(self->ingest);
    for (size_t i = 0; i < self->nsensors; i++) {
        if (!self->sensor_dirty[i])
            continue;
        const server_sensor_t *s = &self->sensors[i];
        store_sensor_queue(self->store, 'n', s->site, s->sensor, s, sizeof(*s));
        size_t len = 0;
        uint8_t *blob = dedup_export(dd, s->site, s->sensor, &len);
        if (blob)
            store_sensor_queue(self->store, 'x', s->site, s->sensor, blob, len);
        xfree(blob);
        self->sensor_dirty[i] = false;
    }
    size_t ops = self->flush_ops + store_pending(self->store);
    self->flush_ops = 0;
    /* the cycle's last batch is written synced, by the store's writer thread: one fsync a
     * flush_interval for everything written until then, decisions included */
    bool sync = ops > 0 || self->unsynced;
    if (store_flush_behind(self->store, sync) < 0) {
        s_store_failed(self, true);
    } else {
        self->stats.flushes++;
        if (self->nunstored == 0)
            self->stats.store_failing_ms = 0;
        msg_debug(1, "flush: ops=%zu keys_flushed=%llu", ops,
                  (unsigned long long)self->stats.keys_flushed);
    }
    self->unsynced = false;
    return true;
}

/* Starts a flush cycle: the keys changed until now. */
static void s_flush_start(server_t *self)
{
    if (self->rewrite_windows) {
        /* a write of the writer's failed since the last cycle: its keys are not dirty any
         * more, and which they were is not known here, so this cycle writes every key */
        size_t n = window_dirty_all(ingest_window(self->ingest));
        msg_warn("flush: a window write failed: writing all %zu keys again", n);
        self->rewrite_windows = false;
    }
    self->flush_total = self->flush_left = window_dirty_pending(ingest_window(self->ingest));
    self->flush_t0 = s_mono(self);
    self->flushing = true;
}

/* Finishes the cycle under way at once. */
static void s_flush_finish(server_t *self)
{
    while (self->flushing && !s_flush_step(self))
        ;
    self->flushing = false;
}

/* A whole flush, at once (stopping). */
static void s_flush(server_t *self)
{
    s_flush_start(self);
    s_flush_finish(self);
}

/* ---- the data directory lost while running ---- */

static void s_tallies_store(server_t *self);

/* allowlist_foreach: queues an entry for the refill batch. */
static int s_refill_allow(const allow_entry_t *e, void *arg)
{
    store_refill_allow(arg, e);
    return 0;
}

/* After store_recreate(): every window key (with the tallies' meaning and their number)
 * and, with sensors, every sensor's records are written by the flush cycle started here,
 * in its steps, as any cycle is (the cycle under way is dropped: its keys are all taken
 * again). Once per recreated store, however often the refill is tried. */
static void s_store_rewrite_written_behind(server_t *self, bool sensors)
{
    s_tallies_store(self);
    for (size_t i = 0; sensors && i < self->nsensors; i++)
        self->sensor_dirty[i] = true;
    self->stored_wkeys = SIZE_MAX;
    self->unsynced = true;
    self->flushing = false;
    self->flush_ops = 0;
    self->rewrite_windows = false;
    (void)window_dirty_all(ingest_window(self->ingest));
    s_flush_start(self);
}

/* Writes what the daemon holds and the new store lacks into it: the decisions and the
 * change log it has, the allowlist, the sites, the tombstones and the peer's position, in
 * one batch with one fsync (store_refill_write): the event loop waits for one write, not
 * one per entry. 0, or -1 (the store failed; the next look tries again). */
static int s_store_refill(server_t *self)
{
    (void)server_apply_changes(self); /* what waited is stored first, with its seq */
    (void)allowlist_foreach(self->allow, s_refill_allow, self->store);
    for (size_t i = 0; i < self->nsites; i++) {
        const server_site_t *s = &self->sites[i];
        store_refill_site(self->store, s->name, s->public_key, s->created_ms, s->who);
    }
    size_t nt = 0;
    const shared_rec_t *t = shared_tombs(self->shared, &nt);
    for (size_t i = 0; i < nt; i++) {
        size_t len = 0;
        uint8_t *blob = shared_rec_pack(&t[i], &len);
        store_refill_tomb(self->store, shared_identity(&t[i]), blob, len);
        xfree(blob);
    }
    uint64_t pos[2] = {0, 0};
    if (self->peer) {
        peer_position(self->peer, &pos[0], &pos[1]);
        store_refill_meta(self->store, "peer_epoch", pos[0]);
        store_refill_meta(self->store, "peer_seq", pos[1]);
    }
    if (store_refill_write(self->store, self->decisions) < 0)
        return -1;
    if (self->peer)
        memcpy(self->peer_stored, pos, sizeof(pos));
    return 0;
}

/*
 * Looks whether the data directory is still the one the store opened (the timer, every
 * SERVER_STORE_CHECK_MS). When two looks in a row say it is not (a look that fails, EIO or
 * ESTALE, says nothing), LevelDB writes to files no one will open again:
 * a new store is made where it was (store_recreate) and everything the daemon holds is
 * written into it, so that a restart finds it all, in the same epoch. Where that cannot be
 * done (the directory cannot be made, holds something else, another store), the daemon
 * goes on with what it holds and says so: an error once a minute while it lasts, and in
 * status.
 */
static void s_store_watch(server_t *self)
{
    server_stats_t *st = &self->stats;
    char why[sizeof(st->store_lost_error)];
    int looked = store_check(self->store, why, sizeof(why));
    if (looked > 0) {
        /* the look failed (EIO, ESTALE ...): that says nothing of the directory, and nothing
         * is done on it; nor is it the second look a loss waits for */
        self->store_suspect_ms = 0;
        if (msg_due(&self->store_check_logged, s_mono(self), SERVER_DROP_LOG_MS))
            msg_warn("store: check: dir=%s: %s: taken for no change", self->cfg->data_dir, why);
        return;
    }
    bool lost = looked < 0;
    if (st->store_lost_ms == 0) {
        /* in place so far: a loss is acted on when two looks in a row find one (a passing
         * state, a move and a move back, is left alone) */
        if (!lost) {
            if (self->store_suspect_ms)
                msg_info("store: check: dir=%s: in place again: nothing done", self->cfg->data_dir);
            self->store_suspect_ms = 0;
            return;
        }
        if (self->store_suspect_ms == 0) {
            self->store_suspect_ms = server_now_ms(self);
            msg_warn("store: check: dir=%s reason=%s: looking again in %llds before taking it "
                     "for lost",
                     self->cfg->data_dir, why, (long long)(SERVER_STORE_CHECK_MS / 1000));
            return;
        }
        st->store_lost_ms = self->store_suspect_ms;
        self->store_suspect_ms = 0;
        decisions_strlcpy(st->store_lost_reason, why, sizeof(st->store_lost_reason) - 1);
        self->store_lost_logged = 0;
    } else if (!lost && !self->store_refill && !store_detached(self->store)) {
        msg_info("store: back: dir=%s lost_for=%llds", self->cfg->data_dir,
                 (long long)((server_now_ms(self) - st->store_lost_ms) / 1000));
        st->store_lost_ms = 0;
        return;
    }
    char err[sizeof(st->store_lost_error)] = "";
    int64_t t0 = s_mono(self);
    /* (detached: the path may hold the directory opened again, and a recreate takes it) */
    int made =
        lost || store_detached(self->store) ? store_recreate(self->store, err, sizeof(err)) : -1;
    if (made == 1) {
        /* windows/ alone: the main database holds the rest */
        s_store_rewrite_written_behind(self, false);
        st->store_recreated++;
        msg_error("store: lost: dir=%s reason=%s: recreated: part=windows keys=%zu "
                  "lost_for=%llds took_ms=%lld",
                  self->cfg->data_dir, st->store_lost_reason,
                  window_keys(ingest_window(self->ingest)),
                  (long long)((server_now_ms(self) - st->store_lost_ms) / 1000),
                  (long long)(s_mono(self) - t0));
        if (!self->store_refill) {
            st->store_lost_ms = 0;
            return;
        }
        /* (a refill still due from before goes on below) */
    }
    if (made == 0) {
        self->store_refill = true;
        s_store_rewrite_written_behind(self, true);
    }
    if (self->store_refill && s_store_refill(self) == 0) {
        self->store_refill = false;
        st->store_recreated++;
        /* an error still: someone or something took the daemon's data away */
        msg_error("store: lost: dir=%s reason=%s: recreated: epoch=%016llx seq=%llu "
                  "decisions=%zu allowlist=%zu sites=%zu sensors=%zu keys=%zu lost_for=%llds "
                  "took_ms=%lld",
                  self->cfg->data_dir, st->store_lost_reason,
                  (unsigned long long)store_epoch(self->store),
                  (unsigned long long)store_seq(self->store), decisions_count(self->decisions),
                  allowlist_count(self->allow), self->nsites, self->nsensors,
                  window_keys(ingest_window(self->ingest)),
                  (long long)((server_now_ms(self) - st->store_lost_ms) / 1000),
                  (long long)(s_mono(self) - t0));
        st->store_lost_ms = 0;
        return;
    }
    if (self->store_refill && !err[0])
        snprintf(err, sizeof(err), "cannot write into the new store (see the kv: line)");
    decisions_strlcpy(st->store_lost_error, err, sizeof(st->store_lost_error) - 1);
    if (!msg_due(&self->store_lost_logged, s_mono(self), SERVER_DROP_LOG_MS))
        return;
    msg_error("store: lost: dir=%s reason=%s since=%llds detached=%s: not recreated: %s; "
              "decisions, allowlist, sites and counts are held in memory only",
              self->cfg->data_dir, st->store_lost_reason,
              (long long)((server_now_ms(self) - st->store_lost_ms) / 1000),
              store_detached(self->store) ? "yes" : "no", err);
}

/* Under load the loop is rarely idle: steps between frames keep a cycle on schedule to
 * be done within half a flush_interval, however fast keys change. */
static void s_flush_keep_up(server_t *self)
{
    if (!self->flushing)
        return;
    int64_t half = self->cfg->flush_interval_ms / 2;
    int64_t elapsed = s_mono(self) - self->flush_t0;
    size_t due = elapsed >= half
                     ? self->flush_total
                     : (size_t)((double)self->flush_total * (double)elapsed / (double)half);
    while (self->flushing && self->flush_total - self->flush_left < due)
        if (s_flush_step(self))
            self->flushing = false;
}

static void s_rate_tick(server_t *self)
{
    uint64_t sum = 0;
    for (size_t i = 0; i < SERVER_RATE_SLOTS; i++)
        sum += self->rate[i];
    self->stats.events_per_s = (double)sum / SERVER_RATE_SLOTS;
    self->rate_at = (self->rate_at + 1) % SERVER_RATE_SLOTS;
    self->rate[self->rate_at] = 0;
}

/* ---- set-up ---- */

static ingest_t *s_ingest_new(const agg_config_t *cfg, decisions_t *d, allowlist_t *a,
                              size_t expected)
{
    uint64_t seed = 0;
    if (getrandom(&seed, sizeof(seed), 0) != (ssize_t)sizeof(seed))
        seed = (uint64_t)bs_clock_mono_ms(bs_clock_system()) * 0x9E3779B97F4A7C15ULL;
    ingest_config_t ic = {
        .rules = cfg->rules,
        .nrules = cfg->nrules,
        .bucket_ms = cfg->window_resolution_ms,
        .max_skew_ms = cfg->max_future_skew_ms,
        .extend_min_ms = cfg->extend_min_ms,
        .expected_keys = expected,
        .max_entries = (size_t)cfg->max_keys,
        .seed = seed,
        .track_dirty = 1,
        /* the table is sized for the keys expected: take its pages now, at start, not as
         * page faults (milliseconds each under a hypervisor) in the counting path */
        .populate = 1,
        /* every sensor the server admits is tracked (s_sensor_room bounds them, and
         * s_sensor_forget forgets one here too): dedup is never full, and a replay of any
         * admitted sensor is found. About 2.4 KB a sensor (dedup.h), 39 MB at the bound. */
        .dedup_max_sensors = SERVER_SENSORS_MAX,
    };
    char err[256];
    ingest_t *in = ingest_new(&ic, d, a, err, sizeof(err));
    if (!in)
        msg_error("%s: %s", cfg->path, err);
    return in;
}

static int s_restore_decision(const decision_t *d, void *arg)
{
    server_t *self = arg;
    if (decisions_restore(self->decisions, d) < 0)
        msg_warn("store: decision %s not restored (duplicate or invalid)", d->id);
    return 0;
}

/* The changes the stored sequence log holds, gathered for decisions_log_restore(). */
typedef struct {
    decision_change_t *v; /* room for max */
    size_t n, max;        /* gathered, room */
} s_log_restore_t;

static int s_restore_change(const decision_change_t *c, void *arg)
{
    s_log_restore_t *l = arg;
    if (l->n == l->max)
        return -1;
    l->v[l->n++] = *c;
    return 0;
}

/* The decision table's change log as it was at the stop (its last change_log changes,
 * from the stored log): `backstop why` of an id no longer in force, changes-since and the
 * peer's crossing upserts know the same after a restart as before. */
static void s_restore_log(server_t *self)
{
    uint64_t seq = store_seq(self->store), from = store_log_floor(self->store);
    uint64_t keep = (uint64_t)self->cfg->change_log;
    if (seq > keep && seq - keep > from)
        from = seq - keep;
    if (seq <= from || decisions_seq(self->decisions) != seq)
        return;
    s_log_restore_t l = {xmalloc((size_t)(seq - from) * sizeof(*l.v)), 0, (size_t)(seq - from)};
    if (store_changes_since(self->store, from, s_restore_change, &l) < 0 ||
        decisions_log_restore(self->decisions, l.v, l.n) < 0)
        msg_warn("store: %s: the sequence log from %llu to %llu could not be read back: "
                 "`backstop why` does not know the decisions it ended",
                 self->cfg->data_dir, (unsigned long long)from + 1, (unsigned long long)seq);
    xfree(l.v);
}

static int s_restore_allow(const allow_entry_t *e, void *arg)
{
    server_t *self = arg;
    if (allowlist_restore(self->allow, e) < 0)
        msg_warn("store: allowlist entry %u not restored", e->id);
    return 0;
}

/* Restoring window blobs: the window and one clock reading for all of them. */
typedef struct {
    window_t *w;        /* the window */
    store_t *store;     /* where records of filters no longer counted are deleted */
    const uint8_t *map; /* ingest_tally_keep() of the stored tallies, NULL: as stored */
    int64_t now_ms;     /* wall clock at the start of the restore */
    long refused;       /* records window_import() refused */
    long dropped;       /* records of a filter counted no more (or by another tally) */
    long idle;          /* records of keys idle by now (they went idle while we were down) */
} s_restore_t;

/* A stored window record: restored, or deleted when it is of no more use (its filter is
 * counted no more, or its key went idle while the aggregator was down: such a key is
 * never in memory, so no sweep would ever delete its record, read again at every start).
 * The deletions go with the first flush. */
static int s_restore_window(const uint8_t *blob, size_t len, void *arg)
{
    s_restore_t *r = arg;
    window_key_t was;
    int rc = window_import_mapped(r->w, blob, len, r->now_ms, r->map, &was);
    if (rc < 0)
        r->refused++;
    if (rc == 1)
        r->dropped++;
    if (rc == 1 || rc == WINDOW_IMPORT_IDLE)
        store_window_queue(r->store, &was, NULL, 0);
    if (rc == WINDOW_IMPORT_IDLE)
        r->idle++;
    return 0;
}

/* Queues the current meaning of the tally bytes with the next window records. */
static void s_tallies_store(server_t *self)
{
    uint32_t sigs[INGEST_RULES_MAX];
    size_t n = ingest_tally_sigs(self->ingest, sigs);
    store_window_tallies_queue(self->store, sigs, n);
}

static int s_restore_sensor(const char *site, const char *sensor, const void *val, size_t len,
                            void *arg)
{
    server_t *self = arg;
    if (len != sizeof(server_sensor_t))
        return 0;
    server_sensor_t *s = s_sensor(self, site, sensor, true);
    if (s == NULL)
        return 0; /* past the bounds (a store from before them): forgotten */
    memcpy(s, val, sizeof(*s));
    decisions_strlcpy(s->site, site, WIRE_MAX_ID);
    decisions_strlcpy(s->sensor, sensor, WIRE_MAX_ID);
    self->sensor_dirty[s - self->sensors] = false;
    return 0;
}

static int s_restore_dedup(const char *site, const char *sensor, const void *val, size_t len,
                           void *arg)
{
    server_t *self = arg;
    /* only a sensor that is kept: one forgotten has no state */
    if (s_sensor_find(self, site, sensor, NULL) >= 0)
        (void)dedup_import(ingest_dedup(self->ingest), val, len);
    return 0;
}

/* A tombstone from the store: kept unless it is older than SHARED_TOMB_KEEP_MS or an
 * entry created after it is back (the daemon died between the two writes of an add);
 * an entry it is newer than (the daemon died between those of a removal) goes. */
static int s_restore_tomb(uint64_t identity, const uint8_t *blob, size_t len, void *arg)
{
    server_t *self = arg;
    shared_rec_t r;
    if (shared_rec_unpack(blob, len, &r) < 0 || !r.removed || shared_identity(&r) != identity) {
        msg_warn("store: skipping malformed tombstone record %016llx",
                 (unsigned long long)identity);
        return 0;
    }
    uint32_t id = r.kind == SHARED_ALLOW ? allowlist_find_same(self->allow, &r.allow) : 0;
    const server_site_t *site = r.kind == SHARED_SITE ? server_site_find(self, r.site) : NULL;
    int64_t live = id ? allowlist_find(self->allow, id)->created_ms : site ? site->created_ms : 0;
    if ((id || site) && live > r.changed_ms) {
        (void)store_tomb_del(self->store, identity);
        return 0;
    }
    if (id)
        (void)s_allow_drop(self, id);
    if (site)
        (void)s_site_drop(self, r.site);
    if (r.changed_ms < server_now_ms(self) - SHARED_TOMB_KEEP_MS) {
        (void)store_tomb_del(self->store, identity);
        return 0;
    }
    shared_tomb_put(self->shared, &r);
    return 0;
}

static int s_restore_site(const char *name, const char *pub, int64_t created, const char *who,
                          void *arg)
{
    server_t *self = arg;
    /* a damaged or edited record: server_site_add() would never have taken the name, a
     * longer one would be cut (and no longer name its record), and one twice would make
     * the sites ambiguous */
    if (!server_site_name_ok(name) || server_site_find(self, name)) {
        char qn[MSG_QUOTE_SIZE(64)];
        msg_warn("store: site record %s not restored (invalid name or duplicate)",
                 msg_quote(qn, sizeof(qn), name));
        return 0;
    }
    s_site_insert(self, name, pub, created, who);
    return 0;
}

/* What the start-time checks found, for server_new() to go on with. */
typedef struct {
    zsock_keys_t keys; /* our CURVE key pair; zeroed in plain mode */
    bool curve;        /* CURVE mode: server_key_file is set and holds a pair */
    gid_t ctl_gid;     /* group of an ipc:// ROUTER's file; (gid_t)-1: the daemon's */
} s_start_t;

/* Keeps the status of the first error: the start used to meet them in this order and
 * exit with it (EX_NOUSER for a user is documented), so it still does. */
static void s_check_fail(int *rc, int code)
{
    if (*rc == EX_OK)
        *rc = code;
}

/*
 * Everything the start refuses that can be known without root, sockets or writes: the
 * CURVE key pair, plain mode's loopback rule, control_group and user. Shared by
 * server_new() (which goes on with st) and server_check_config() ("-n"), so the two can
 * never disagree. EX_OK, or the status the start exits with (server_check_config()) and
 * "FILE:LINE: why" lines in err; st is filled either way.
 */
static int s_start_check(const agg_config_t *cfg, s_start_t *st, char *err, size_t errlen)
{
    char at[1024];
    int rc = EX_OK;
    memset(st, 0, sizeof(*st));
    st->ctl_gid = (gid_t)-1;
    if (errlen)
        err[0] = '\0';
    if (cfg->server_key_file && *cfg->server_key_file) {
        agg_config_where(cfg, "server_key_file", at, sizeof(at));
        if (!zsock_has_curve()) {
            cfg_err_line(err, errlen, at, "server_key_file is set but this libzmq has no CURVE");
            s_check_fail(&rc, EX_UNAVAILABLE);
        } else if (zsock_keys_load(cfg->server_key_file, &st->keys) < 0) {
            /* zsock_keys_load() logged why (missing, unreadable, which line is bad) */
            cfg_err_line(err, errlen, at, "server_key_file %s: cannot load its key pair",
                         cfg->server_key_file);
            s_check_fail(&rc, EX_CONFIG);
        } else if (!st->keys.secret_key[0]) {
            cfg_err_line(err, errlen, at,
                         "server_key_file %s: has no secret key (need a public and secret key)",
                         cfg->server_key_file);
            s_check_fail(&rc, EX_CONFIG);
        } else {
            st->curve = true;
        }
    }
    bool curve = cfg->server_key_file && *cfg->server_key_file;
    const char *eps[][2] = {{"event_endpoint", cfg->event_endpoint},
                            {"decision_endpoint", cfg->decision_endpoint},
                            {"snapshot_endpoint", cfg->snapshot_endpoint},
                            {"control_endpoint", cfg->control_endpoint}};
    for (size_t i = 0; i < sizeof(eps) / sizeof(eps[0]); i++) {
        /* the control socket is never a CURVE server: file permissions guard it */
        bool plain = !curve || i == 3;
        if (plain && eps[i][1] && !zsock_endpoint_is_local(eps[i][1])) {
            cfg_err_line(err, errlen, agg_config_where(cfg, eps[i][0], at, sizeof(at)),
                         "%s %s is not loopback: %s may bind loopback only", eps[i][0], eps[i][1],
                         i == 3 ? "the control socket" : "plain mode (no server_key_file)");
            s_check_fail(&rc, EX_CONFIG);
        }
    }
    if (cfg->control_group && *cfg->control_group) {
        struct group *g = getgrnam(cfg->control_group);
        if (g) {
            st->ctl_gid = g->gr_gid;
        } else {
            cfg_err_line(err, errlen, agg_config_where(cfg, "control_group", at, sizeof(at)),
                         "control_group %s: no such group", cfg->control_group);
            s_check_fail(&rc, EX_CONFIG);
        }
    }
    /* privs_drop() looks the user up again after binding; refusing here means a bad name
     * never gets as far as a half-started daemon */
    if (cfg->user && *cfg->user && getpwnam(cfg->user) == NULL) {
        cfg_err_line(err, errlen, agg_config_where(cfg, "user", at, sizeof(at)),
                     "user %s: no such user", cfg->user);
        s_check_fail(&rc, EX_NOUSER);
    }
    return rc;
}

int server_check_config(const agg_config_t *cfg, char *err, size_t errlen)
{
    s_start_t st;
    int rc = s_start_check(cfg, &st, err, errlen);
    memset(&st.keys, 0, sizeof(st.keys)); /* no copy of the secret key lingers */
    return rc;
}

/* Binds one socket; fatal when it cannot (a broken environment at start-up). The endpoint
 * has passed s_start_check(). ctl_gid: group of an ipc:// ROUTER's file. */
static void *s_bind(server_t *self, int type, const char *endpoint, const char *what,
                    bool curve_server, const zsock_keys_t *keys, gid_t ctl_gid, size_t slot)
{
    void *sock = zsock_new(self->ctx, type);
    if (!sock)
        msg_fatal(EX_UNAVAILABLE, "cannot create the %s socket", what);
    /* the decision publisher: no subscription applies until s_drain_subscriptions() has
     * seen who asked for it */
    int manual = 1;
    if (type == ZMQ_XPUB && zmq_setsockopt(sock, ZMQ_XPUB_MANUAL, &manual, sizeof(manual)) < 0)
        msg_fatal(EX_UNAVAILABLE, "cannot make the %s socket filter subscriptions: %s", what,
                  zmq_strerror(errno));
    if (curve_server && zsock_curve_server(sock, keys) < 0)
        msg_fatal(EX_CONFIG, "cannot make the %s socket a CURVE server", what);
    mode_t mode = 0;
    gid_t gid = (gid_t)-1;
    if (type == ZMQ_ROUTER && strncmp(endpoint, "ipc://", 6) == 0) {
        mode = 0660;
        gid = ctl_gid;
    }
    /* a tight umask while binding, so an ipc file is never briefly world-writable */
    mode_t old = umask(mode ? 0117 : 0);
    int rc = zsock_bind(sock, endpoint, mode, gid);
    umask(old);
    if (rc < 0)
        msg_fatal(EX_UNAVAILABLE, "cannot bind the %s socket to %s", what, endpoint);
    self->ep[slot] = zsock_bound_endpoint(sock);
    if (!self->ep[slot])
        self->ep[slot] = xstrdup(endpoint);
    return sock;
}

/* peer_config_t.shared_apply */
static int s_peer_shared(void *arg, const shared_rec_t *r)
{
    return server_shared_apply(arg, r);
}

/* The follower of the failover peer, from the position stored (PROTOCOL.md 4.6); as a
 * CURVE client it uses our own key pair, which the peer knows as peer_public_key. */
static void s_peer_new(server_t *self, const zsock_keys_t *keys, bool fresh)
{
    const agg_config_t *cfg = self->cfg;
    if (store_meta_get(self->store, "peer_epoch", &self->peer_stored[0]) != 1 ||
        store_meta_get(self->store, "peer_seq", &self->peer_stored[1]) != 1)
        self->peer_stored[0] = self->peer_stored[1] = 0;
    char name[WIRE_MAX_ID + 1] = "aggregator";
    if (gethostname(name, sizeof(name)) < 0 || !server_site_name_ok(name))
        snprintf(name, sizeof(name), "aggregator");
    peer_config_t pc = {
        .decisions = cfg->peer_decisions,
        .snapshot = cfg->peer_snapshot,
        .server_public = self->curve ? cfg->peer_public_key : NULL,
        .keys = self->curve ? keys : NULL,
        .name = name,
        .silence_ms = 3 * cfg->heartbeat_interval_ms > 3000 ? 3 * cfg->heartbeat_interval_ms : 3000,
        .fresh = fresh,
        .shared_apply = s_peer_shared,
        .shared_arg = self,
    };
    self->peer = peer_new(self->ctx, &pc, self->peer_stored[0], self->peer_stored[1]);
    msg_info("peer: mirroring decisions=%s snapshot=%s epoch=%016llx seq=%llu", cfg->peer_decisions,
             cfg->peer_snapshot, (unsigned long long)self->peer_stored[0],
             (unsigned long long)self->peer_stored[1]);
}

/* Why store_open() failed, for the fatal line (the kv: or store: line before it has the
 * details): only a lock taken means another aggregator. */
static const char *s_store_open_error(int errnum)
{
    switch (errnum) {
    case EAGAIN:
        return "another aggregator holds it (its LOCK file is taken)";
    case ENOSPC:
    case EDQUOT:
        return "no space left on its disk: make room and start again";
    case EACCES:
    case EPERM:
    case EROFS:
        return "not writable by this user";
    case EINVAL:
        return "its sequence number is damaged (see the store: line above)";
    default:
        return "damaged or unreadable (see the kv: line above)";
    }
}

server_t *server_new(agg_config_t **cfg_p, const char *config_path, bs_clock_t *clock)
{
    server_t *self = xcalloc(1, sizeof(*self));
    self->cfg = *cfg_p;
    *cfg_p = NULL;
    self->config_path = config_path ? xstrdup(config_path) : NULL;
    self->clock = clock ? clock : bs_clock_system();
    atomic_init(&self->stop, false);
    atomic_init(&self->reload, false);
    self->sig_fd = -1;
    const agg_config_t *cfg = self->cfg;
    int64_t t0 = s_mono(self);
    self->stats.started_ms = server_now_ms(self);

    /* what "-n" checks, before anything is created */
    s_start_t st;
    char err[4096];
    int code = s_start_check(cfg, &st, err, sizeof(err));
    if (code != EX_OK)
        msg_fatal(code, "%s", err);

    /* the store first: without it nothing else makes sense */
    if (mkdir(cfg->data_dir, 0750) < 0 && errno != EEXIST)
        msg_fatal(EX_CANTCREAT, "cannot create data_dir %s: %m", cfg->data_dir);
    bool created = false;
    self->store = store_open(cfg->data_dir, cfg->sync_decisions, &created);
    if (!self->store)
        msg_fatal(EX_UNAVAILABLE, "cannot open the store in %s: %s", cfg->data_dir,
                  s_store_open_error(errno));
    self->decisions =
        decisions_new(store_epoch(self->store), store_seq(self->store), (size_t)cfg->change_log);
    self->allow = allowlist_new();
    /* presize the window for what the store holds (+25%, at least 1 M): no regrowth while
     * restoring or loading; untouched table pages cost no RSS */
    uint64_t wkeys = 0;
    if (store_meta_get(self->store, "wkeys", &wkeys) != 1)
        wkeys = 0;
    /* more than max_keys may ever be (its largest value) is a damaged record: without a
     * max_keys it would presize the window past any memory (a panic, or a table too large
     * to sweep) */
    if (wkeys > SERVER_WKEYS_MAX) {
        msg_warn("store: %s: m/wkeys %llu is beyond any window: ignored", cfg->data_dir,
                 (unsigned long long)wkeys);
        wkeys = 0;
    }
    self->stored_wkeys = (size_t)wkeys;
    size_t expected = wkeys + wkeys / 4 > (1u << 20) ? (size_t)(wkeys + wkeys / 4) : (1u << 20);
    if (cfg->max_keys && expected > (size_t)cfg->max_keys)
        expected = (size_t)cfg->max_keys;
    self->ingest = s_ingest_new(cfg, self->decisions, self->allow, expected);
    if (!self->ingest)
        msg_fatal(EX_CONFIG, "cannot set up counting with these rules");
    self->dirty = xcalloc(SERVER_DIRTY_CHUNK, sizeof(*self->dirty));
    self->arena = wire_arena_new();

    long nd = store_decisions_load(self->store, s_restore_decision, self);
    s_restore_log(self);
    long na = store_allow_load(self->store, s_restore_allow, self);
    uint32_t was[INGEST_RULES_MAX];
    long nwas = store_window_tallies_get(self->store, was, INGEST_RULES_MAX);
    uint8_t keep[256];
    if (nwas >= 0)
        ingest_tally_keep(self->ingest, was, (size_t)nwas, keep);
    s_restore_t rw = {.w = ingest_window(self->ingest),
                      .store = self->store,
                      .map = nwas >= 0 ? keep : NULL,
                      .now_ms = server_now_ms(self)};
    long nw = store_window_load(self->store, s_restore_window, &rw);
    if (rw.refused > 0)
        msg_warn("store: %s: %ld window records not restored (damaged, or no room under "
                 "max_keys)",
                 cfg->data_dir, rw.refused);
    if (rw.dropped > 0)
        msg_warn("store: %s: rules changed: %ld window keys start over (their event filter "
                 "moved in the rule order, or is gone)",
                 cfg->data_dir, rw.dropped);
    if (rw.idle > 0)
        msg_info("store: %s: %ld window keys went idle while stopped: their records are "
                 "deleted",
                 cfg->data_dir, rw.idle);
    s_tallies_store(self);
    long nsen = store_sensor_load(self->store, 'n', s_restore_sensor, self);
    long ndd = store_sensor_load(self->store, 'x', s_restore_dedup, self);
    long nsit = store_site_load(self->store, s_restore_site, self);
    self->shared = shared_new();
    self->shared_dirty = true;
    long ntomb = store_tomb_load(self->store, s_restore_tomb, self);
    if (nd < 0 || na < 0 || nw < 0 || nsen < 0 || ndd < 0 || nsit < 0 || ntomb < 0)
        msg_fatal(EX_UNAVAILABLE, "cannot read the store in %s", cfg->data_dir);
    if (store_loaded(self->store) < 0)
        msg_fatal(EX_UNAVAILABLE, "cannot open the store in %s again after reading it",
                  cfg->data_dir);
    /* restored keys are clean: do not write them straight back */
    while (window_dirty_take(ingest_window(self->ingest), self->dirty, SERVER_DIRTY_CHUNK) ==
           SERVER_DIRTY_CHUNK)
        ;
    if (store_jumped(self->store))
        msg_warn("store: the host went down while the aggregator ran: decision changes "
                 "published after the last sync may be lost; sequence moved on to %llu, so "
                 "every sensor takes a full snapshot",
                 (unsigned long long)store_seq(self->store));
    msg_info("store: dir=%s epoch=%016llx seq=%llu %s decisions=%ld allowlist=%ld keys=%ld "
             "sensors=%ld sites=%ld",
             cfg->data_dir, (unsigned long long)store_epoch(self->store),
             (unsigned long long)store_seq(self->store), created ? "new_log=yes" : "new_log=no", nd,
             na, (long)window_keys(ingest_window(self->ingest)), nsen, nsit);

    /* sockets: ZAP before any CURVE server binds */
    self->ctx = zmq_ctx_new();
    if (!self->ctx)
        msg_fatal(EX_UNAVAILABLE, "cannot create a ZeroMQ context");
    if (st.curve) {
        self->zap = zsock_zap_new(self->ctx, s_zap_lookup, self);
        if (!self->zap)
            msg_fatal(EX_UNAVAILABLE, "cannot start the ZAP handler");
        zsock_zap_set_clock(self->zap, self->clock);
        self->curve = true;
    } else {
        msg_warn("plain mode: no CURVE keys configured, sites are not authenticated, "
                 "loopback only");
    }
    self->pull =
        s_bind(self, ZMQ_PULL, cfg->event_endpoint, "event", self->curve, &st.keys, st.ctl_gid, 0);
    self->pub = s_bind(self, ZMQ_XPUB, cfg->decision_endpoint, "decision", self->curve, &st.keys,
                       st.ctl_gid, 1);
    self->snap = s_bind(self, ZMQ_ROUTER, cfg->snapshot_endpoint, "snapshot", self->curve, &st.keys,
                        st.ctl_gid, 2);
    self->ctl =
        s_bind(self, ZMQ_ROUTER, cfg->control_endpoint, "control", false, &st.keys, st.ctl_gid, 3);
    zsock_ipc_file(cfg->control_endpoint, &self->ctl_file);
    /* the peer may follow us whether or not we follow it (a standby that only mirrors) */
    if (self->curve && cfg->peer_public_key && *cfg->peer_public_key)
        decisions_strlcpy(self->peer_key, cfg->peer_public_key, ZSOCK_Z85_LEN);
    if (cfg->peer_decisions && *cfg->peer_decisions)
        s_peer_new(self, &st.keys, created);
    memset(&st.keys, 0, sizeof(st.keys));

    /* decisions that ran out while we were down: remove and publish now */
    (void)ingest_tick(self->ingest, server_now_ms(self), 0);
    (void)server_apply_changes(self);

    int64_t now = s_mono(self);
    self->next_heartbeat = now;
    self->next_flush = now + cfg->flush_interval_ms;
    self->next_sweep = now + cfg->sweep_interval_ms;
    self->next_store_check = now + SERVER_STORE_CHECK_MS;
    self->next_rate = now + 1000;
    self->stats.restore_ms = now - t0;
    msg_info("ready: events=%s decisions=%s snapshot=%s control=%s mode=%s rules=%zu "
             "restore_ms=%lld",
             self->ep[0], self->ep[1], self->ep[2], self->ep[3], self->curve ? "curve" : "plain",
             cfg->nrules, (long long)self->stats.restore_ms);
    return self;
}

/* Lock-free atomics: safe from a handler and from another thread (a test's), where a volatile
 * sig_atomic_t is only the first. The daemon's own signals no longer come this way: the loop
 * reads them itself (server_watch_signals). */
void server_request_stop(server_t *self)
{
    atomic_store(&self->stop, true);
}

void server_request_reload(server_t *self)
{
    atomic_store(&self->reload, true);
}

/* Why a signalfd in the poll and not sigtimedwait() at each turn: the loop sleeps in zmq_poll
 * up to a second (s_timeout), so a signal looked for between turns is seen that late, while a
 * readable descriptor among the sockets wakes the poll at once. And why not the sensor's
 * self-pipe with a handler: that needs the signals unblocked on the loop's thread, where a
 * handler would interrupt LevelDB's and ZeroMQ's calls, and a signal that came before the
 * handler existed would be lost or need its own care. With the signals blocked in every thread
 * nothing is interrupted, no handler runs anywhere, and a TERM pending since the start is read
 * at the first turn like any other. */
void server_watch_signals(server_t *self, int sig_fd)
{
    self->sig_fd = sig_fd;
}

/* Reads every signal pending on sig_fd: TERM and INT ask for the stop, HUP for a reload
 * (several pending of a kind read as one, so a storm of HUPs makes few reloads). */
static void s_take_signals(server_t *self)
{
    int sig;
    pid_t pid = 0;
    while ((sig = sigfd_take(self->sig_fd, &pid)) > 0) {
        if (sig == SIGHUP) {
            atomic_store(&self->reload, true);
            continue;
        }
        if (!atomic_load(&self->stop))
            msg_info("stop requested: signal=%s pid=%ld", sig == SIGINT ? "INT" : "TERM",
                     (long)pid);
        atomic_store(&self->stop, true);
    }
    if (sig < 0) {
        /* not polled again: a descriptor that stays readable and fails would spin the loop */
        msg_error("signals: cannot read the signal descriptor: %s; SIGTERM and SIGHUP are no "
                  "longer taken (only SIGKILL stops the daemon now)",
                  strerror(errno));
        self->sig_fd = -1;
    }
}

/* Carrying the window over to the reloaded rules. */
typedef struct {
    window_t *from, *to; /* the old window, the new */
    store_t *store;      /* where records of filters no longer counted (or of keys
                            idle) are deleted */
    const uint8_t *map;  /* ingest_tally_keep() of the old tallies */
    int64_t now_ms;      /* one clock reading */
    long dropped;        /* keys of a filter counted no more, or by another tally */
} s_migrate_t;

static int s_migrate_key(const window_key_t *key, void *arg)
{
    s_migrate_t *m = arg;
    if (m->map[key->tally] == INGEST_TALLY_NONE) {
        store_window_queue(m->store, key, NULL, 0);
        m->dropped++;
        return 0;
    }
    size_t len = 0;
    uint8_t *blob = window_export(m->from, key, &len);
    /* a key idle in the new window (not swept yet, or past a shorter span) is not carried
     * over: nothing would sweep it there, so its record goes now */
    if (blob && window_import_mapped(m->to, blob, len, m->now_ms, NULL, NULL) == WINDOW_IMPORT_IDLE)
        store_window_queue(m->store, key, NULL, 0);
    xfree(blob);
    return 0;
}

static int s_migrate_dedup(const char *site, const char *sensor, void *arg)
{
    void **pair = arg;
    size_t len = 0;
    uint8_t *blob = dedup_export(pair[0], site, sensor, &len);
    if (blob)
        (void)dedup_import(pair[1], blob, len);
    xfree(blob);
    return 0;
}

/* SIGHUP: a new config, swapped whole. Rules take effect at once (the window's counts
 * carry over); what only a restart can change (agg_config_keep_restart: sockets, store,
 * user, keys, peer, buckets) keeps its running value, so the config in force, which the
 * CLI's status shows, is what runs. */
static void s_reload(server_t *self)
{
    char err[4096], changed[1024];
    agg_config_t *nc = agg_config_load(self->config_path, err, sizeof(err));
    if (!nc) {
        msg_error("reload refused, keeping the running config: %s", err);
        return;
    }
    int nchanged =
        agg_config_keep_restart(nc, self->cfg, changed, sizeof(changed), err, sizeof(err));
    if (nchanged < 0) {
        msg_error("reload refused, keeping the running config: %s", err);
        agg_config_destroy(&nc);
        return;
    }
    if (nchanged > 0)
        msg_warn("reload: needs restart: %s (running values kept)", changed);
    size_t entries = window_entries(ingest_window(self->ingest));
    ingest_t *ni =
        s_ingest_new(nc, self->decisions, self->allow,
                     entries + entries / 4 > (1u << 16) ? entries + entries / 4 : (1u << 16));
    if (!ni) {
        msg_error("reload refused, keeping the running config");
        agg_config_destroy(&nc);
        return;
    }
    /* what the old window has queued for the store (deletions of expired keys too) is
     * written now: the new window knows nothing of it */
    s_flush(self);
    uint32_t was[INGEST_RULES_MAX];
    size_t nwas = ingest_tally_sigs(self->ingest, was);
    uint8_t keep[256];
    ingest_tally_keep(ni, was, nwas, keep);
    s_migrate_t mig = {.from = ingest_window(self->ingest),
                       .to = ingest_window(ni),
                       .store = self->store,
                       .map = keep,
                       .now_ms = server_now_ms(self)};
    window_foreach(ingest_window(self->ingest), s_migrate_key, &mig);
    void *dpair[2] = {ingest_dedup(self->ingest), ingest_dedup(ni)};
    dedup_foreach(ingest_dedup(self->ingest), s_migrate_dedup, dpair);
    ingest_destroy(&self->ingest);
    self->ingest = ni;
    s_tallies_store(self);
    if (mig.dropped > 0)
        msg_warn("reload: rules changed: %ld window keys start over (their event filter "
                 "moved in the rule order, or is gone)",
                 mig.dropped);
    agg_config_destroy(&self->cfg);
    self->cfg = nc;
    msg_info("reloaded: %s rules=%zu keys=%zu", self->cfg->path, self->cfg->nrules,
             window_keys(ingest_window(self->ingest)));
}

/* Milliseconds until the earliest timer (0 when one is due). */
static long s_timeout(server_t *self, int64_t now_mono)
{
    if (self->flushing)
        return 0;
    int64_t next = self->next_heartbeat;
    if (self->next_flush < next)
        next = self->next_flush;
    if (self->next_sweep < next)
        next = self->next_sweep;
    if (self->next_store_check < next)
        next = self->next_store_check;
    if (self->next_rate < next)
        next = self->next_rate;
    int64_t exp = decisions_next_expiry(self->decisions);
    if (exp != INT64_MAX) {
        int64_t in = exp - server_now_ms(self);
        if (now_mono + in < next)
            next = now_mono + (in > 0 ? in : 0);
    }
    int64_t t = next - now_mono;
    return t < 0 ? 0 : t > 1000 ? 1000 : (long)t;
}

static void s_timers(server_t *self)
{
    int64_t now = s_mono(self);
    const agg_config_t *cfg = self->cfg;
    if (self->peer)
        peer_tick(self->peer, now);
    if (decisions_next_expiry(self->decisions) <= server_now_ms(self)) {
        (void)ingest_tick(self->ingest, server_now_ms(self), 0);
        (void)server_apply_changes(self);
    }
    if (now >= self->next_sweep) {
        (void)ingest_tick(self->ingest, server_now_ms(self), (size_t)cfg->sweep_budget);
        (void)server_apply_changes(self);
        s_tomb_prune(self);
        s_sensors_sweep(self);
        self->next_sweep = now + cfg->sweep_interval_ms;
    }
    if (now >= self->next_store_check) {
        s_store_watch(self);
        self->next_store_check = now + SERVER_STORE_CHECK_MS;
    }
    if (now >= self->next_heartbeat) {
        /* retry changes a failed store write left behind before saying where we are */
        if (self->nunstored)
            (void)server_apply_changes(self);
        s_heartbeat(self);
        self->next_heartbeat = now + cfg->heartbeat_interval_ms;
    }
    if (now >= self->next_flush) {
        /* a key changed just after a cycle started is written by the next one, which
         * starts an interval later and keeps to half an interval: it waits at most about
         * one and a half flush_intervals */
        s_flush_finish(self);
        s_flush_start(self);
        self->next_flush = now + cfg->flush_interval_ms;
    } else if (self->flushing && s_flush_step(self)) {
        self->flushing = false;
    }
    if (now >= self->next_rate) {
        s_rate_tick(self);
        self->next_rate = now + 1000;
    }
}

int server_turn(server_t *self, long max_wait_ms)
{
    zmq_pollitem_t items[8] = {
        {self->pull, 0, ZMQ_POLLIN, 0},
        {self->snap, 0, ZMQ_POLLIN, 0},
        {self->ctl, 0, ZMQ_POLLIN, 0},
        {self->pub, 0, ZMQ_POLLIN, 0},
        {self->zap ? zsock_zap_socket(self->zap) : NULL, 0, ZMQ_POLLIN, 0},
    };
    /* the ZAP slot is polled only in CURVE mode; the peer's two come after it */
    int nitems = self->zap ? 5 : 4;
    int peer_at = nitems;
    if (self->peer)
        nitems += peer_poll(self->peer, &items[peer_at]);
    /* the signals last: a slot of its own after the peer's */
    int sig_at = -1;
    if (self->sig_fd >= 0) {
        sig_at = nitems++;
        items[sig_at] = (zmq_pollitem_t){NULL, self->sig_fd, ZMQ_POLLIN, 0};
    }
    long wait = s_timeout(self, s_mono(self));
    if (max_wait_ms >= 0 && max_wait_ms < wait)
        wait = max_wait_ms;
    int rc = zmq_poll(items, nitems, wait);
    if (rc < 0 && errno != EINTR) {
        if (errno == ETERM)
            return -1;
        msg_error("zmq_poll: %s", zmq_strerror(errno));
    }
    if (rc > 0) {
        /* a stop asked for ends the loop after this turn, which is bounded (bursts) */
        if (sig_at >= 0 && (items[sig_at].revents & ZMQ_POLLIN))
            s_take_signals(self);
        /* ZAP first: a handshake waiting on us holds a sensor back */
        if (self->zap && (items[4].revents & ZMQ_POLLIN))
            (void)zsock_zap_handle(self->zap);
        /* then subscriptions: a joining sensor waits for its first heartbeat */
        if (items[3].revents & ZMQ_POLLIN)
            s_drain_subscriptions(self);
        if (items[0].revents & ZMQ_POLLIN) {
            s_drain_events(self);
            (void)server_apply_changes(self);
        }
        if (items[1].revents & ZMQ_POLLIN)
            s_drain_snapshots(self);
        if (items[2].revents & ZMQ_POLLIN)
            s_drain_control(self);
        bool peer_ready = false;
        for (int i = peer_at; i < (sig_at >= 0 ? sig_at : nitems); i++)
            peer_ready = peer_ready || (items[i].revents & ZMQ_POLLIN);
        if (peer_ready) {
            if (peer_handle(self->peer, self->decisions, s_mono(self), server_now_ms(self)) > 0)
                (void)server_apply_changes(self);
            s_peer_store(self, true);
        }
    }
    s_timers(self);
    if (atomic_exchange(&self->reload, false)) {
        if (self->config_path)
            s_reload(self);
    }
    return 0;
}

int server_run(server_t *self)
{
    while (!atomic_load(&self->stop))
        if (server_turn(self, -1) < 0)
            break;
    (void)server_apply_changes(self);
    s_sync(self);
    s_flush(self);
    msg_info("stopping: events=%llu counted=%llu published=%llu",
             (unsigned long long)self->stats.events_in,
             (unsigned long long)self->stats.events_counted,
             (unsigned long long)self->stats.updates_published);
    return 0;
}

void server_destroy(server_t **self_p)
{
    if (!self_p || !*self_p)
        return;
    server_t *self = *self_p;
    if (self->store && self->ingest)
        s_flush(self);
    zsock_close(&self->pull);
    zsock_close(&self->pub);
    zsock_close(&self->snap);
    zsock_close(&self->ctl);
    peer_destroy(&self->peer);
    zsock_zap_destroy(&self->zap);
    if (self->ctx)
        zmq_ctx_term(self->ctx);
    if (self->ep[3])
        (void)zsock_ipc_remove(self->ep[3], &self->ctl_file);
    for (size_t i = 0; i < 4; i++)
        xfree(self->ep[i]);
    ingest_destroy(&self->ingest);
    allowlist_destroy(&self->allow);
    shared_destroy(&self->shared);
    decisions_destroy(&self->decisions);
    store_close(&self->store);
    agg_config_destroy(&self->cfg);
    xfree(self->config_path);
    xfree(self->sensors);
    xfree(self->sensor_dirty);
    xfree(self->sites);
    xfree(self->unstored);
    xfree(self->dirty);
    xfree(self->evs);
    wire_arena_destroy(&self->arena);
    xfree(self->evkeys);
    xfree(self->evres);
    xfree(self);
    *self_p = NULL;
}
