/*
 * uplink - the sensor's one I/O thread; see uplink.h and proto/PROTOCOL.md
 * sections 1, 4 and 5.
 *
 * The loop: zmq_poll over the event queue's eventfd, the SUB and the DEALER,
 * with a timeout that is the nearest timer (batch flush, spool replay, status,
 * housekeeping, heartbeat silence). Everything the thread sends is
 * ZMQ_DONTWAIT; a refused send spools the batch.
 *
 * Feed states: JOINING (subscribed, snapshot requested, updates queued in
 * memory) -> LIVE (applying updates in sequence). A gap, a new epoch, a
 * heartbeat ahead of us twice, or silence go back to JOINING; silence (or no
 * snapshot reply in time) also reopens the sockets, on the other aggregator
 * when a backup is configured. Silence is heartbeat_timeout, or three of the
 * heartbeat intervals the aggregator announces when that is longer. It
 * announces its interval in its snapshot reply as well as in its heartbeats,
 * so the sensor knows it from the moment it has the reply: an aggregator that
 * dies between its reply and its first heartbeat is noticed after
 * max(heartbeat_timeout, 3 intervals) too. Only an older aggregator, whose
 * reply does not say, may take the longest interval one takes (10 s) before
 * its first heartbeat.
 *
 * Batches go as columns (EventColumns) while the aggregator followed announces
 * WIRE_FEATURE_COLUMNS in its latest heartbeat, as rows otherwise (an older
 * aggregator would read a column batch as empty); a reconnect forgets the
 * announcement until the next heartbeat.
 *
 * Spool: kv at state_directory/spool, records "q/" + 8-byte counter -> 4-byte
 * event count + a packed Frame{events}, always as rows, so any aggregator can
 * take a replay. Replayed oldest first as they were packed, so events keep
 * their seq and time_ms. Bounded by spool_limit events: the oldest records go
 * first, counted as dropped.
 *
 * A snapshot answer may come in several frames (more = true on all but the
 * last), changes-only ones too: each frame's changes are applied in order as
 * it comes, and the feed goes live at the answer's seq only with the last
 * frame; until then updates keep queueing. A reply with refused set (this
 * sensor's key is another site's) changes nothing: the cache stays, the feed
 * stays JOINING and the join times out and starts again as usual.
 *
 * Updates held while joining are bounded in number and in bytes; past either
 * bound they are dropped, and once the join's answer is applied the sensor
 * asks for the changes since it (join-overflow) before going live. Reads per
 * loop round are bounded too, so a flood on the feed cannot starve the timers.
 *
 * A decision that this sensor cannot enforce, or that no aggregator makes
 * (empty or malformed id, a scope or action it has no check for, an expiry
 * not after its creation, a TTL beyond the longest one an aggregator gives),
 * is refused and counted; its sequence number still counts.
 *
 * Epochs are logged in hex, as the aggregator and backstop status show them.
 *
 * LOG LINES
 *   uplink: state=live aggregator=primary|backup epoch=E seq=S decisions=N retries=R
 *   uplink: state=joining reason=gap|epoch|silence|heartbeat-ahead|timeout|join-overflow
 *           aggregator=A epoch=E seq=S retries=N (reconnects while no aggregator answers:
 *           the first, then one a minute; a LIVE -> JOINING for the reason of the last
 *           logged one: one a minute, with repeats=N, and its live line goes unsaid)
 *   uplink: failover to=primary|backup events=E decisions=D
 *   warning: uplink: aggregator=A refused the CURVE handshake count=N (...)  once a minute
 *   warning: uplink: aggregator ENDPOINT refused the snapshot: this sensor's key is not
 *           site SITE's (sensor_secret_key_file?) count=N         once a minute
 *   warning: uplink: snapshot epoch=E from ENDPOINT is not the heartbeat's epoch=E2 from
 *           ENDPOINT2 ... (after S_FLAP_WARN such cycles in a row; the request then
 *           waits, doubling up to S_FLAP_HOLD_MAX_MS)
 *   warning: uplink: aggregator=A decision=ID refused: WHY count=N   once a minute
 *   warning: uplink: aggregator=A join-overflow updates=N bytes=B dropped ... once a minute
 *   uplink: spool=replayed events=N frames=F            when the spool empties (what it sent)
 *   uplink: events=columns|rows aggregator=A texts=once|every keys=all|SCOPE,...
 *                                                       when the batch format changes
 *   warning: uplink: aggregator=A heartbeat_interval=Nms: heartbeat_timeout=Tms is shorter
 *           than 3 of its heartbeats; ... silent after Sms instead    once per interval heard
 *   uplink: aggregator=A heartbeat_interval=Nms: silent after Sms  when it changes (restart)
 *           (the interval as a heartbeat or a snapshot reply announced it)
 */
#include "uplink.h"

#include "kv.h"
#include "fp.h"
#include "msg.h"
#include "wire.h"
#include "xalloc.h"
#include "zsock.h"

#include <errno.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <string.h>
#include <zmq.h>

#define S_MAX_QUEUED_UPDATES 10000       /* updates held while joining; more: dropped, resync */
#define S_MAX_QUEUED_BYTES   (16u << 20) /* their bytes (packed, plus S_QUEUED_OVERHEAD each) */
#define S_QUEUED_OVERHEAD    256         /* per held frame: its unpacked structures */
#define S_READ_BURST         64          /* frames read per socket per loop round */
#define S_REPLAY_PER_ROUND   20          /* spooled frames sent per loop round */
#define S_TICK_MS            1000        /* housekeeping interval */
#define S_LOG_EVERY_MS       60000       /* a repeated warning: once per this */
/* the longest TTL an aggregator gives (control.c, agg_config.c: 30 days) */
#define S_TTL_MAX_MS (30LL * 86400 * 1000)
/* the most an aggregator's clock may be ahead of the sensor's for s_decision_bad: the
 * aggregator itself works with no wider skew (it drops events more than max_future_skew, 1 h
 * at most, ahead of its clock, or older than a window, 1 day at most) */
#define S_CLOCK_SKEW_MS    (86400LL * 1000)
#define S_FLAP_WARN        3     /* snapshot epoch != heartbeat epoch this often: warn, wait */
#define S_FLAP_HOLD_MS     1000  /* the first wait before the next request */
#define S_FLAP_HOLD_MAX_MS 30000 /* the longest */
/* Silence on the feed that means the aggregator is gone: heartbeat_timeout, or this many of
 * the heartbeat intervals the aggregator announces, whichever is longer */
#define S_SILENT_INTERVALS 3
/* the longest heartbeat_interval an aggregator takes (agg_config.c): a longer announcement
 * counts as this, and an aggregator whose interval is not known yet (an older one, before
 * its first heartbeat: its snapshot reply does not say) may take this long */
#define S_INTERVAL_MAX_MS 10000

typedef enum { S_JOINING = 0, S_LIVE = 1 } s_feed_state_t;

struct uplink {
    milter_engine_t *engine;           /* borrowed: config, cache, queue */
    const sensor_config_t *cfg;        /* borrowed from the engine */
    bs_clock_t *clock;                 /* the system clock */
    pthread_t thread;                  /* the I/O thread */
    bool started;                      /* thread running */
    _Atomic bool stop;                 /* asks the thread to leave */
    bool standalone;                   /* no aggregator configured */
    void *ctx;                         /* zmq context */
    void *push;                        /* events and status out */
    void *sub;                         /* decisions in */
    void *dealer;                      /* snapshot requests */
    void *mon;                         /* PAIR: the DEALER's handshake failures (CURVE only) */
    unsigned mon_serial;               /* makes each monitor endpoint unique */
    uint64_t refused;                  /* CURVE handshakes the aggregator refused */
    uint64_t refused_logged;           /* refused when last logged */
    int64_t refused_log_ms;            /* monotonic time of that log line, 0: never */
    uint64_t retries;                  /* reconnects since the feed was last live */
    int64_t retry_log_ms;              /* monotonic time a reconnect was last logged, 0: never */
    zsock_keys_t keys;                 /* CURVE client pair (curve) */
    bool curve;                        /* CURVE configured */
    bool has_backup;                   /* a backup aggregator is configured */
    int target;                        /* the aggregator followed: 0 primary, 1 backup */
    char topic[ZSOCK_TOPIC_MAX];       /* "S/<site>/" */
    uint64_t site_fp;                  /* fp_text(site): recognises our own SKIPs */
    kv_t *spool;                       /* on-disk spool, NULL when standalone */
    uint64_t spool_head;               /* counter of the oldest record */
    uint64_t spool_tail;               /* counter of the next record */
    uint64_t spool_events;             /* events in the spool */
    uint64_t replayed;                 /* events sent from the spool since it last emptied */
    uint64_t replayed_frames;          /* their frames */
    evq_event_t **batch;               /* events waiting for their frame */
    size_t nbatch;                     /* events in batch */
    int64_t batch_since_ms;            /* monotonic time the oldest joined */
    s_feed_state_t state;              /* feed state */
    uint64_t epoch;                    /* applied epoch */
    uint64_t applied;                  /* applied sequence */
    int64_t join_sent_ms;              /* when joining began (request queued or sent) */
    bool join_pending;                 /* the request still waits for a connected DEALER */
    int64_t heard_ms;                  /* last message on the SUB */
    bool hb_ahead;                     /* the last heartbeat was ahead of applied */
    bool peer_columns;                 /* the followed aggregator's latest heartbeat
                                          announced WIRE_FEATURE_COLUMNS */
    bool peer_text_once;               /* ... and WIRE_FEATURE_TEXT_ONCE */
    uint32_t peer_scopes;              /* ... and the scopes of keys it reads (0: all) */
    wire_textmem_t *texts;             /* key texts sent to it lately (NULL: standalone) */
    bool hb_known[2];                  /* per target: its heartbeat interval is known (a
                                          heartbeat, or a snapshot reply that said) */
    int64_t hb_interval_ms[2];         /* per target: the interval it last announced
                                          (0: none; at most S_INTERVAL_MAX_MS) */
    Backstop__DecisionUpdate **queued; /* updates held while joining (unpacked frames' bodies) */
    Backstop__Frame **queued_frames;   /* their frames, to free */
    size_t nqueued;                    /* held */
    size_t queued_bytes;               /* their size (S_MAX_QUEUED_BYTES) */
    bool join_overflow;                /* this join dropped updates: resync after it */
    uint64_t overflow_dropped;         /* updates dropped while joining, all joins */
    uint64_t overflow_logged;          /* overflow_dropped when last logged */
    int64_t overflow_log_ms;           /* monotonic time of that log line, 0: never */
    uint64_t snap_refused;             /* snapshot replies with refused set */
    uint64_t snap_refused_logged;      /* snap_refused when last logged */
    int64_t snap_refused_log_ms;       /* monotonic time of that log line, 0: never */
    uint64_t dec_refused;              /* decisions refused (s_decision_bad) */
    uint64_t dec_refused_logged;       /* dec_refused when last logged */
    int64_t dec_refused_log_ms;        /* monotonic time of that log line, 0: never */
    const char *last_reason;           /* reason of the last LIVE -> JOINING logged */
    int64_t reason_log_ms;             /* monotonic time it was logged */
    uint64_t reason_repeats;           /* LIVE -> JOINING for it since, unlogged */
    bool quiet;                        /* this join's live line goes unsaid (a repeat) */
    bool hb_matched;                   /* LIVE: a heartbeat of our epoch was heard */
    uint64_t hb_epoch;                 /* the epoch of the last heartbeat, 0: none */
    unsigned epoch_flaps;              /* live, then at once a heartbeat of another epoch:
                                          cycles in a row (two aggregators?) */
    bool flap_warned;                  /* said so, this spell */
    int64_t join_hold_until;           /* the request waits until then (monotonic, 0: no) */
    dcache_entry_t *snap;              /* decisions of a multi-frame snapshot */
    size_t nsnap, snap_cap;            /* held, slots */
    int64_t next_status_ms;            /* next SensorStatus */
    int64_t next_tick_ms;              /* next housekeeping */
    uint64_t sent;                     /* events sent */
    uint64_t spooled;                  /* events spooled */
    uint64_t dropped;                  /* events dropped (spool full, standalone) */
    uint64_t bad_frames;               /* frames dropped on the feed */
    uint64_t dropped_logged;           /* dropped when last logged */
    uint64_t bad_logged;               /* bad_frames when last logged */
    int64_t loss_log_ms;               /* monotonic time of that log line, 0: never */
    /* uplink_stats(), read by other threads */
    _Atomic uint64_t st_queued_bytes_peak;
    _Atomic uint64_t st_join_overflows;
    _Atomic uint64_t st_snapshots_refused;
    _Atomic uint64_t st_decisions_refused;
    _Atomic uint64_t st_requests;
    _Atomic bool st_live;
};

static const char *s_target_name(const uplink_t *self);

/* The heartbeat interval of the followed aggregator: as announced, else 1 s. */
static int64_t s_interval_ms(const uplink_t *self)
{
    return self->hb_known[self->target] && self->hb_interval_ms[self->target] > 0
               ? self->hb_interval_ms[self->target]
               : 1000;
}

/* How long the feed may be silent before the aggregator counts as gone: heartbeat_timeout,
 * or S_SILENT_INTERVALS of the interval the followed aggregator announces when that is longer
 * (an interval longer than the timeout made every sensor flap between joining and live).
 * The interval is known from the aggregator's snapshot reply on (s_on_snapshot), or from its
 * first heartbeat; until then (an older aggregator's reply does not say) it is the longest
 * one an aggregator takes. What was announced is kept across reconnects. */
static int64_t s_silence_ms(const uplink_t *self)
{
    int64_t timeout = self->cfg->heartbeat_timeout_ms;
    int64_t silence = self->hb_known[self->target]
                          ? S_SILENT_INTERVALS * self->hb_interval_ms[self->target]
                          : S_INTERVAL_MAX_MS;
    return silence > timeout ? silence : timeout;
}

/* Is the aggregator there to send to? (Without a decision feed: assume so; sends decide.) */
static bool s_up(const uplink_t *self)
{
    return self->state == S_LIVE || !*self->cfg->aggregator_decisions;
}

/* ---- spool ---- */

static void s_spool_open(uplink_t *self)
{
    char *path = xasprintf("%s/spool", self->cfg->state_directory);
    self->spool = kv_open(path, 1, NULL);
    if (!self->spool) {
        msg_error("uplink: cannot open spool %s: events will be dropped while the aggregator "
                  "is away",
                  path);
        xfree(path);
        return;
    }
    xfree(path);
    kv_iter_t *it = kv_iter_new(self->spool, "q/", 2);
    bool first = true;
    while (kv_iter_next(it) == 1) {
        size_t klen, vlen;
        const uint8_t *k = kv_iter_key(it, &klen);
        const uint8_t *v = kv_iter_value(it, &vlen);
        if (klen != 10 || vlen < 4)
            continue;
        uint64_t n = kv_u64_get(k + 2);
        if (first)
            self->spool_head = n;
        first = false;
        self->spool_tail = n + 1;
        self->spool_events += (uint64_t)v[0] << 24 | (uint64_t)v[1] << 16 | v[2] << 8 | v[3];
    }
    kv_iter_destroy(&it);
    if (self->spool_events)
        msg_info("uplink: spool=found events=%" PRIu64, self->spool_events);
}

static void s_spool_key(uint8_t key[10], uint64_t n)
{
    key[0] = 'q';
    key[1] = '/';
    kv_u64_put(key + 2, n);
}

static void s_spool_drop_oldest(uplink_t *self)
{
    uint8_t key[10];
    s_spool_key(key, self->spool_head);
    char *val = NULL;
    size_t vlen = 0;
    if (kv_get(self->spool, key, sizeof(key), &val, &vlen) == 1 && vlen >= 4) {
        const uint8_t *v = (const uint8_t *)val;
        uint64_t n = (uint64_t)v[0] << 24 | (uint64_t)v[1] << 16 | v[2] << 8 | v[3];
        self->spool_events -= n < self->spool_events ? n : self->spool_events;
        self->dropped += n;
    }
    xfree(val);
    kv_del(self->spool, key, sizeof(key));
    self->spool_head++;
}

static void s_spool_put(uplink_t *self, const uint8_t *buf, size_t len, uint32_t nevents)
{
    if (!self->spool || self->cfg->spool_limit == 0) {
        self->dropped += nevents;
        return;
    }
    uint8_t *val = xmalloc(len + 4);
    val[0] = (uint8_t)(nevents >> 24);
    val[1] = (uint8_t)(nevents >> 16);
    val[2] = (uint8_t)(nevents >> 8);
    val[3] = (uint8_t)nevents;
    memcpy(val + 4, buf, len);
    uint8_t key[10];
    s_spool_key(key, self->spool_tail);
    bool first = self->spool_head == self->spool_tail;
    if (kv_put(self->spool, key, sizeof(key), val, len + 4) == 0) {
        if (first) /* said once a spell, not at each put that fails (a full disk) */
            msg_info("uplink: spool=start reason=%s",
                     s_up(self) ? "send-refused" : "no-aggregator");
        self->spool_tail++;
        self->spool_events += nevents;
        self->spooled += nevents;
        msg_debug(1, "uplink: spool=put events=%" PRIu32 " held=%" PRIu64, nevents,
                  self->spool_events);
    } else {
        self->dropped += nevents;
    }
    xfree(val);
    while (self->spool_events > (uint64_t)self->cfg->spool_limit &&
           self->spool_head < self->spool_tail)
        s_spool_drop_oldest(self);
}

/* Sends up to S_REPLAY_PER_ROUND spooled frames; stops at the first refusal. */
static void s_spool_replay(uplink_t *self)
{
    if (!self->spool || self->spool_head == self->spool_tail || !self->push)
        return;
    for (int i = 0; i < S_REPLAY_PER_ROUND && self->spool_head < self->spool_tail; i++) {
        uint8_t key[10];
        s_spool_key(key, self->spool_head);
        char *val = NULL;
        size_t vlen = 0;
        int found = kv_get(self->spool, key, sizeof(key), &val, &vlen);
        if (found < 0) {
            /* the spool cannot be read now (its disk, say): the record stays, and the next
             * round tries again; skipping it would lose its events unseen */
            xfree(val);
            return;
        }
        if (found == 1 && vlen >= 4) {
            if (zsock_send_raw(self->push, val + 4, vlen - 4, ZMQ_DONTWAIT) != 0) {
                xfree(val);
                return;
            }
            const uint8_t *v = (const uint8_t *)val;
            uint64_t n = (uint64_t)v[0] << 24 | (uint64_t)v[1] << 16 | v[2] << 8 | v[3];
            self->spool_events -= n < self->spool_events ? n : self->spool_events;
            self->sent += n;
            self->replayed += n;
            self->replayed_frames++;
        }
        xfree(val);
        kv_del(self->spool, key, sizeof(key));
        self->spool_head++;
    }
    if (self->spool_head == self->spool_tail) {
        /* what this replay sent, not the events sent since the start (the line said that) */
        msg_info("uplink: spool=replayed events=%" PRIu64 " frames=%" PRIu64, self->replayed,
                 self->replayed_frames);
        self->replayed = self->replayed_frames = 0;
    }
}

/* ---- events ---- */

uint8_t *uplink_pack_events(const char *site, const char *sensor, evq_event_t *const *batch,
                            size_t n, bool columns, wire_textmem_t *texts, uint32_t scopes,
                            int64_t now_ms, size_t *len_out)
{
    wire_batch_t *wb = wire_batch_new();
    for (size_t i = 0; i < n; i++) {
        const evq_event_t *e = batch[i];
        wire_key_t keys[EVQ_MAX_KEYS];
        for (size_t k = 0; k < e->nkeys; k++)
            keys[k] = (wire_key_t){.scope = e->keys[k].scope,
                                   .fp = e->keys[k].fp,
                                   .text = e->keys[k].text,
                                   .text_len = e->keys[k].text ? strlen(e->keys[k].text) : 0};
        size_t nkeys = wire_keys_read(keys, e->nkeys, scopes);
        wire_event_t we = {
            .seq = e->seq,
            .time_ms = e->time_ms,
            .client_ip = e->iplen ? e->ip : NULL,
            .client_ip_len = e->iplen,
            .msg_class = e->msg_class,
            .keys = keys,
            .nkeys = nkeys,
            .rules = (const char *const *)e->rules,
            .nrules = e->nrules,
            .original = e->original,
            .ledger_hit = e->ledger_hit,
            .enforced = e->enforced,
            .decision_id = e->enforced ? e->decision_id : NULL,
        };
        if (texts)
            wire_textmem_strip(texts, &we, keys, now_ms);
        wire_batch_add(wb, &we);
    }
    wire_err_t werr = WIRE_OK;
    uint8_t *buf = wire_batch_pack(wb, site, sensor, columns, len_out, &werr);
    if (!buf)
        msg_error("uplink: cannot pack events: %s", wire_err_name(werr));
    wire_batch_destroy(&wb);
    return buf;
}

/* Packs the batch as one Frame{events}; sends it or spools it; frees the events. */
static void s_flush(uplink_t *self, int64_t mono)
{
    if (self->nbatch == 0)
        return;
    size_t n = self->nbatch;
    size_t len = 0;
    bool live = s_up(self) && self->spool_head == self->spool_tail && self->push;
    bool columns = live && self->peer_columns;
    /* texts the aggregator holds already stay home, live only: a spooled frame may go to
     * another aggregator, or to this one after it lost them */
    wire_textmem_t *texts = columns && self->peer_text_once ? self->texts : NULL;
    uint32_t scopes = columns ? self->peer_scopes : 0;
    uint8_t *buf = uplink_pack_events(self->cfg->site, self->cfg->sensor_id, self->batch, n,
                                      columns, texts, scopes, mono, &len);
    if (buf && live && zsock_send_raw(self->push, buf, len, ZMQ_DONTWAIT) == 0) {
        self->sent += n;
    } else {
        /* the texts remembered as sent did not go */
        if (texts)
            wire_textmem_clear(texts);
        /* the spool is always rows: it may be replayed to another aggregator, or this one
         * after a downgrade, and every aggregator reads rows */
        if (buf && columns) {
            xfree(buf);
            buf = uplink_pack_events(self->cfg->site, self->cfg->sensor_id, self->batch, n, false,
                                     NULL, 0, mono, &len);
        }
        /* behind a non-empty spool too, so events leave in order */
        if (buf)
            s_spool_put(self, buf, len, (uint32_t)n);
        else
            self->dropped += n;
    }
    xfree(buf);
    for (size_t i = 0; i < n; i++)
        evq_event_destroy(&self->batch[i]);
    self->nbatch = 0;
}

static void s_take_events(uplink_t *self, int64_t mono)
{
    evq_t *q = milter_engine_evq(self->engine);
    evq_clear_fd(q);
    for (;;) {
        size_t room = (size_t)self->cfg->event_batch - self->nbatch;
        size_t got = evq_pop(q, self->batch + self->nbatch, room);
        if (got == 0)
            break;
        if (self->standalone) {
            for (size_t i = 0; i < got; i++)
                evq_event_destroy(&self->batch[self->nbatch + i]);
            continue;
        }
        if (self->nbatch == 0)
            self->batch_since_ms = mono;
        self->nbatch += got;
        if (self->nbatch == (size_t)self->cfg->event_batch)
            s_flush(self, mono);
    }
}

/* ---- decisions ---- */

static void s_entry_from(const Backstop__Decision *d, dcache_entry_t *e)
{
    memset(e, 0, sizeof(*e));
    snprintf(e->id, sizeof(e->id), "%s", d->id ? d->id : "");
    e->scope = d->scope;
    e->fp = d->fp;
    e->action = d->action;
    e->observe = d->has_mode && d->mode == BACKSTOP__MODE__OBSERVE;
    e->all_mail = d->has_all_mail && d->all_mail;
    e->origin = d->origin == BACKSTOP__ORIGIN__CLI ? DCACHE_ORIGIN_CLI : DCACHE_ORIGIN_RULE;
    e->created_ms = d->created_ms;
    e->expires_ms = d->expires_ms;
    snprintf(e->value, sizeof(e->value), "%s", d->value ? d->value : "");
}

/* Why the sensor cannot take decision d (NULL: it can). No aggregator makes such a one: it is
 * a bug or not an aggregator, and the sensor would enforce it for ever or not at all. */
static const char *s_decision_bad(const uplink_t *self, const Backstop__Decision *d)
{
    if (!d->id || !*d->id)
        return "empty id";
    for (const char *p = d->id; *p; p++)
        if (!((*p >= '0' && *p <= '9') || (*p >= 'A' && *p <= 'Z') || (*p >= 'a' && *p <= 'z')))
            return "malformed id";
    if (d->scope < BACKSTOP__SCOPE__SUBJECT || d->scope > BACKSTOP__SCOPE__SUBJECT_IP)
        return "scope not enforceable";
    if (d->action < BACKSTOP__ACTION__REJECT || d->action > BACKSTOP__ACTION__TAG)
        return "action not enforceable";
    if (d->expires_ms <= d->created_ms)
        return "expires before it was created";
    /* expires_ms is the aggregator's clock (or its peer's) at the decision's last change plus
     * at most the longest TTL; an extension moves expires_ms, never created_ms (a wave that
     * goes on for weeks keeps its first created_ms, a re-issued CLI decision too). That clock
     * is not the sensor's: created_ms bounds it from below (never after the change), the
     * sensor's clock plus S_CLOCK_SKEW_MS from above (the change was made before it arrived).
     * Measured from the later of created_ms and the sensor's clock, with that margin, a new
     * decision passes whatever the skew, an extended one while the aggregator's clock is at
     * most S_CLOCK_SKEW_MS ahead, an expired one always. created_ms is bounded as well, or a
     * far-future one would carry any expiry: what is taken expires within
     * 2 * (S_TTL_MAX_MS + S_CLOCK_SKEW_MS) of the sensor's now */
    int64_t now = bs_clock_now_ms(self->clock);
    if (d->created_ms > now + S_TTL_MAX_MS + S_CLOCK_SKEW_MS)
        return "created in the future";
    int64_t from = d->created_ms > now ? d->created_ms : now;
    if (d->expires_ms > from && d->expires_ms - from > S_TTL_MAX_MS + S_CLOCK_SKEW_MS)
        return "ttl beyond 30 days";
    return NULL;
}

/* Counts a refused decision; logs at most once a minute. */
static void s_decision_refused(uplink_t *self, const Backstop__Decision *d, const char *why,
                               int64_t mono)
{
    self->dec_refused++;
    atomic_fetch_add(&self->st_decisions_refused, 1);
    if (!msg_due(&self->dec_refused_log_ms, mono, S_LOG_EVERY_MS))
        return;
    /* a malformed id is not for a log line */
    bool id_ok = strstr(why, "id") == NULL;
    msg_warn("uplink: aggregator=%s decision=%s refused: %s count=%" PRIu64, s_target_name(self),
             id_ok ? d->id : "-", why, self->dec_refused - self->dec_refused_logged);
    self->dec_refused_logged = self->dec_refused;
}

/* Is the decision meant for this site (fleet, or local to us)? */
static bool s_ours(const uplink_t *self, const Backstop__Decision *d)
{
    if (d->reach == BACKSTOP__REACH__FLEET)
        return true;
    return d->reach == BACKSTOP__REACH__LOCAL && d->site && !strcmp(d->site, self->cfg->site);
}

/* Applies u (whose seq is applied + 1). -1 when u is the SKIP of one of our own site's
 * changes: its update never reached us, so the caller resynchronises. */
static int s_apply(uplink_t *self, const Backstop__DecisionUpdate *u, int64_t mono)
{
    dcache_t *dc = milter_engine_dcache(self->engine);
    const char *bad = NULL;
    if (u->kind == BACKSTOP__DECISION_UPDATE__KIND__SKIP) {
        if (u->decision->fp == self->site_fp)
            return -1;
    } else if (u->kind == BACKSTOP__DECISION_UPDATE__KIND__REMOVE) {
        if (dcache_remove(dc, u->decision->id) == 0)
            msg_info("uplink: decision=%s change=remove why=%s seq=%" PRIu64, u->decision->id,
                     u->why ? u->why : "-", u->seq);
    } else if (!s_ours(self, u->decision)) {
        /* another site's: not ours to check */
    } else if ((bad = s_decision_bad(self, u->decision)) != NULL) {
        s_decision_refused(self, u->decision, bad, mono); /* its seq still counts */
    } else {
        dcache_entry_t e;
        s_entry_from(u->decision, &e);
        dcache_upsert(dc, &e);
        msg_info("uplink: decision=%s change=upsert scope=%s action=%s seq=%" PRIu64
                 " expires_in_s=%" PRId64,
                 e.id, dcache_scope_name(e.scope), dcache_action_name(e.action), u->seq,
                 (e.expires_ms - bs_clock_now_ms(self->clock)) / 1000);
    }
    self->applied = u->seq;
    dcache_set_position(dc, self->epoch, self->applied);
    return 0;
}

static void s_free_queued(uplink_t *self)
{
    for (size_t i = 0; i < self->nqueued; i++)
        wire_free(&self->queued_frames[i]);
    self->nqueued = 0;
    self->queued_bytes = 0;
    self->nsnap = 0;
}

static void s_sockets_close(uplink_t *self)
{
    if (self->mon) {
        zmq_socket_monitor(self->dealer, NULL, 0);
        zsock_close(&self->mon);
    }
    zsock_close(&self->push);
    zsock_close(&self->sub);
    zsock_close(&self->dealer);
}

/* The followed aggregator's endpoints and server key (PROTOCOL.md 4.4). */
static const char *s_ep_events(const uplink_t *self)
{
    return self->target ? self->cfg->aggregator_backup_events : self->cfg->aggregator_events;
}

static const char *s_ep_decisions(const uplink_t *self)
{
    return self->target ? self->cfg->aggregator_backup_decisions : self->cfg->aggregator_decisions;
}

static const char *s_ep_snapshot(const uplink_t *self)
{
    return self->target ? self->cfg->aggregator_backup_snapshot : self->cfg->aggregator_snapshot;
}

static const char *s_server_key(const uplink_t *self)
{
    if (self->target && *self->cfg->aggregator_backup_public_key)
        return self->cfg->aggregator_backup_public_key;
    return self->cfg->aggregator_public_key;
}

static const char *s_target_name(const uplink_t *self)
{
    return self->target ? "backup" : "primary";
}

/* CURVE: watches the DEALER's handshakes, so a refused key is told apart from a silent
 * aggregator (the ZAP handler refuses unknown and revoked site keys; a wrong server key
 * fails the same way). Without it the sensor could only say "silence". */
static void s_monitor_open(uplink_t *self)
{
    char ep[64];
    snprintf(ep, sizeof(ep), "inproc://backstop-uplink-monitor-%u", self->mon_serial++);
    if (zmq_socket_monitor(self->dealer, ep,
                           ZMQ_EVENT_HANDSHAKE_FAILED_AUTH | ZMQ_EVENT_HANDSHAKE_FAILED_PROTOCOL |
                               ZMQ_EVENT_HANDSHAKE_FAILED_NO_DETAIL) != 0)
        return;
    self->mon = zmq_socket(self->ctx, ZMQ_PAIR);
    if (self->mon && zmq_connect(self->mon, ep) != 0) {
        zsock_close(&self->mon);
        zmq_socket_monitor(self->dealer, NULL, 0);
    }
}

/* Drains monitor events; logs refused handshakes at most once a minute. */
static void s_read_monitor(uplink_t *self, int64_t mono)
{
    for (;;) {
        zmq_msg_t ev, addr;
        zmq_msg_init(&ev);
        if (zmq_msg_recv(&ev, self->mon, ZMQ_DONTWAIT) < 0) {
            zmq_msg_close(&ev);
            break;
        }
        bool more = zmq_msg_more(&ev);
        if (zmq_msg_size(&ev) >= 2) {
            uint16_t id;
            memcpy(&id, zmq_msg_data(&ev), sizeof(id));
            if (id & (ZMQ_EVENT_HANDSHAKE_FAILED_AUTH | ZMQ_EVENT_HANDSHAKE_FAILED_PROTOCOL |
                      ZMQ_EVENT_HANDSHAKE_FAILED_NO_DETAIL))
                self->refused++;
        }
        zmq_msg_close(&ev);
        while (more) { /* the endpoint part */
            zmq_msg_init(&addr);
            if (zmq_msg_recv(&addr, self->mon, ZMQ_DONTWAIT) < 0)
                more = false;
            else
                more = zmq_msg_more(&addr);
            zmq_msg_close(&addr);
        }
    }
    if (self->refused > self->refused_logged &&
        (self->refused_log_ms == 0 || mono - self->refused_log_ms >= 60000)) {
        msg_warn("uplink: aggregator=%s refused the CURVE handshake count=%" PRIu64
                 " (site key not registered or revoked, or a wrong aggregator_public_key?)",
                 s_target_name(self), self->refused - self->refused_logged);
        self->refused_logged = self->refused;
        self->refused_log_ms = mono;
    }
}

/* At most once a minute: events dropped (spool full or unwritable, no aggregator and no
 * spool) and bad frames on the decision feed since the last line. */
static void s_log_losses(uplink_t *self, int64_t mono)
{
    if ((self->dropped == self->dropped_logged && self->bad_frames == self->bad_logged) ||
        (self->loss_log_ms != 0 && mono - self->loss_log_ms < 60000))
        return;
    if (self->dropped > self->dropped_logged)
        msg_warn("uplink: dropped events=%" PRIu64 " (spool full or unwritable) spool=%" PRIu64
                 " spool_limit=%lld",
                 self->dropped - self->dropped_logged, self->spool_events,
                 (long long)self->cfg->spool_limit);
    if (self->bad_frames > self->bad_logged)
        msg_warn("uplink: aggregator=%s bad frames=%" PRIu64 " dropped on the decision feed",
                 s_target_name(self), self->bad_frames - self->bad_logged);
    self->dropped_logged = self->dropped;
    self->bad_logged = self->bad_frames;
    self->loss_log_ms = mono;
}

static void *s_socket(uplink_t *self, int type, const char *endpoint)
{
    void *s = zsock_new(self->ctx, type);
    if (!s)
        return NULL;
    if (self->curve && zsock_curve_client(s, &self->keys, s_server_key(self)) != 0) {
        zsock_close(&s);
        return NULL;
    }
    if (zsock_connect(s, endpoint) != 0)
        zsock_close(&s);
    return s;
}

/* Sends the snapshot request; with ZMQ_IMMEDIATE this fails until the DEALER is connected,
 * so the loop retries while join_pending. Not before join_hold_until (s_epoch_mismatch). */
static void s_send_join(uplink_t *self, int64_t mono)
{
    if (self->join_hold_until) {
        if (mono < self->join_hold_until)
            return;
        self->join_hold_until = 0;
        self->join_sent_ms = mono; /* the wait was ours, not the aggregator's */
    }
    Backstop__SnapshotRequest rq;
    wire_snapshot_request_init(&rq, self->cfg->site, self->cfg->sensor_id, self->epoch,
                               self->applied);
    Backstop__Frame f;
    wire_frame_init(&f, BACKSTOP__FRAME__BODY_SNAPSHOT_REQUEST, &rq);
    if (self->dealer && zsock_send(self->dealer, &f, ZMQ_DONTWAIT) == 0) {
        self->join_pending = false;
        atomic_fetch_add(&self->st_requests, 1);
    }
}

/* Back to JOINING; with reopen, new sockets too (silence), on the other aggregator when a
 * backup is configured (failover, except for the first join). */
static void s_rejoin(uplink_t *self, const char *reason, bool reopen, int64_t mono)
{
    /* while no aggregator answers, reconnects repeat every heartbeat_timeout: log the first
     * and then one a minute, with the count */
    bool retry = reopen && self->state != S_LIVE && strcmp(reason, "start") != 0;
    bool log = !retry || self->retry_log_ms == 0 || mono - self->retry_log_ms >= 60000;
    if (retry)
        self->retries++;
    /* a feed that flaps LIVE -> JOINING for one reason again and again: the first line, then
     * one a minute with the count; the live lines in between go unsaid too */
    self->quiet = false;
    if (self->state == S_LIVE && !reopen && self->last_reason &&
        !strcmp(self->last_reason, reason) && mono - self->reason_log_ms < S_LOG_EVERY_MS) {
        self->reason_repeats++;
        self->quiet = true;
        log = false;
    }
    if ((self->state == S_LIVE || reopen) && log) {
        char repeats[40] = "";
        if (self->reason_repeats)
            snprintf(repeats, sizeof(repeats), " repeats=%" PRIu64, self->reason_repeats);
        msg_info("uplink: state=joining reason=%s aggregator=%s epoch=%016" PRIx64 " seq=%" PRIu64
                 "%s retries=%" PRIu64,
                 reason, s_target_name(self), self->epoch, self->applied, repeats, self->retries);
        if (self->state == S_LIVE && !reopen) {
            self->last_reason = reason; /* a literal */
            self->reason_log_ms = mono;
            self->reason_repeats = 0;
        }
    }
    if (retry && log)
        self->retry_log_ms = mono;
    self->state = S_JOINING;
    atomic_store(&self->st_live, false);
    /* whatever made it rejoin (a restart, another aggregator, lost changes), it may have lost
     * texts too: each goes again with its key's next event */
    if (self->texts)
        wire_textmem_clear(self->texts);
    self->hb_ahead = false;
    self->join_overflow = false;
    s_free_queued(self);
    milter_engine_set_aggregator_up(self->engine, false);
    if (reopen && self->has_backup && strcmp(reason, "start") != 0) {
        /* the two aggregators have their own epochs: a switch is always a full snapshot */
        self->target = !self->target;
        self->epoch = 0;
        if (log)
            msg_info("uplink: failover to=%s events=%s decisions=%s", s_target_name(self),
                     s_ep_events(self), s_ep_decisions(self));
    }
    if (reopen) {
        self->peer_columns = false; /* until the aggregator we connect to says otherwise */
        self->peer_text_once = false;
        self->peer_scopes = 0;
        self->join_hold_until = 0; /* new sockets, maybe another aggregator: ask at once */
        s_sockets_close(self);
        self->push = s_socket(self, ZMQ_PUSH, s_ep_events(self));
        if (*s_ep_decisions(self)) {
            self->sub = s_socket(self, ZMQ_SUB, s_ep_decisions(self));
            if (self->sub) {
                zsock_subscribe(self->sub, ZSOCK_TOPIC_FLEET);
                zsock_subscribe(self->sub, ZSOCK_TOPIC_HEARTBEAT);
                zsock_subscribe(self->sub, self->topic);
            }
            self->dealer = s_socket(self, ZMQ_DEALER, s_ep_snapshot(self));
            if (self->dealer && self->curve)
                s_monitor_open(self);
        }
        self->heard_ms = mono;
    }
    self->join_sent_ms = mono;
    self->join_pending = true;
    if (self->dealer)
        s_send_join(self, mono);
}

/* LIVE, and the feed speaks of an epoch other than the snapshot's: a full snapshot. Once is an
 * aggregator that lost its log; at once after going live, again and again, it is a snapshot
 * from another aggregator than the feed's: warned once, and each next request waits, twice
 * as long each time, so the cache is not swapped twice a second for ever. */
static void s_epoch_mismatch(uplink_t *self, uint64_t feed_epoch, int64_t mono)
{
    if (!self->hb_matched && ++self->epoch_flaps >= S_FLAP_WARN) {
        unsigned k = self->epoch_flaps - S_FLAP_WARN;
        int64_t hold = k >= 5 ? S_FLAP_HOLD_MAX_MS : (int64_t)S_FLAP_HOLD_MS << k;
        if (hold > S_FLAP_HOLD_MAX_MS)
            hold = S_FLAP_HOLD_MAX_MS;
        self->join_hold_until = mono + hold;
        if (!self->flap_warned)
            msg_warn("uplink: snapshot epoch=%016" PRIx64 " from %s is not the heartbeat's "
                     "epoch=%016" PRIx64 " from %s, %u times in a row: are aggregator_snapshot "
                     "and aggregator_decisions two aggregators? asking again in %lld ms, "
                     "doubling up to %d s",
                     self->epoch, s_ep_snapshot(self), feed_epoch, s_ep_decisions(self),
                     self->epoch_flaps, (long long)hold, S_FLAP_HOLD_MAX_MS / 1000);
        self->flap_warned = true;
    }
    self->epoch = 0;
    s_rejoin(self, "epoch", false, mono);
}

/* The followed aggregator announced its heartbeat interval iv (in a heartbeat, or in its
 * snapshot reply; 0: a heartbeat without one, which means 1 s and leaves heartbeat_timeout
 * alone): the silence that means gone follows it from now on. Said once when
 * heartbeat_timeout alone would flap, and when it changes (the aggregator restarted). */
static void s_interval_known(uplink_t *self, int64_t iv)
{
    iv = iv > S_INTERVAL_MAX_MS ? S_INTERVAL_MAX_MS : iv;
    bool first = !self->hb_known[self->target];
    if (!first && iv == self->hb_interval_ms[self->target])
        return;
    self->hb_known[self->target] = true;
    self->hb_interval_ms[self->target] = iv;
    int64_t silence = s_silence_ms(self);
    if (silence > self->cfg->heartbeat_timeout_ms)
        msg_warn("uplink: aggregator=%s heartbeat_interval=%" PRId64
                 "ms: heartbeat_timeout=%" PRId64
                 "ms is shorter than %d of its heartbeats; the feed counts as silent after %" PRId64
                 "ms instead (set heartbeat_timeout = %" PRId64 "ms or more)",
                 s_target_name(self), iv, self->cfg->heartbeat_timeout_ms, S_SILENT_INTERVALS,
                 silence, silence);
    else if (!first)
        msg_info("uplink: aggregator=%s heartbeat_interval=%" PRId64 "ms: silent after %" PRId64
                 "ms",
                 s_target_name(self), iv, silence);
}

static void s_go_live(uplink_t *self, int64_t mono)
{
    /* the snapshot's answer is news from the aggregator: the silence timer starts now, not
     * at the socket's reopen, which may have been a whole timeout before it came back */
    self->heard_ms = mono;
    if (self->join_overflow) {
        /* updates were dropped while joining: ask for what came after the answer */
        s_rejoin(self, "join-overflow", false, mono);
        return;
    }
    self->state = S_LIVE;
    for (size_t i = 0; i < self->nqueued; i++) {
        Backstop__DecisionUpdate *u = self->queued[i];
        if (u->epoch != self->epoch || u->seq <= self->applied)
            continue;
        if (u->seq != self->applied + 1 || s_apply(self, u, mono) < 0) {
            s_rejoin(self, "gap", false, mono);
            return;
        }
    }
    s_free_queued(self);
    self->hb_matched = false;
    self->join_hold_until = 0; /* a late answer came while the request waited */
    milter_engine_set_aggregator_up(self->engine, true);
    atomic_store(&self->st_live, true);
    if (!self->quiet)
        msg_info("uplink: state=live aggregator=%s epoch=%016" PRIx64 " seq=%" PRIu64
                 " decisions=%zu retries=%" PRIu64,
                 s_target_name(self), self->epoch, self->applied,
                 dcache_count(milter_engine_dcache(self->engine)), self->retries);
    self->quiet = false;
    self->retries = 0;
    self->retry_log_ms = 0;
}

/* A reply with refused set: this sensor's key is another site's (PROTOCOL.md 1.3). Nothing
 * changes: the cache stays, the feed stays JOINING, and the join times out and starts again
 * (on the backup, when one is configured). Logged at most once a minute. */
static void s_snapshot_refused(uplink_t *self, int64_t mono)
{
    self->snap_refused++;
    atomic_fetch_add(&self->st_snapshots_refused, 1);
    if (!msg_due(&self->snap_refused_log_ms, mono, S_LOG_EVERY_MS))
        return;
    msg_warn("uplink: aggregator %s refused the snapshot: this sensor's key is not site %s's "
             "(sensor_secret_key_file?) count=%" PRIu64,
             s_ep_snapshot(self), self->cfg->site, self->snap_refused - self->snap_refused_logged);
    self->snap_refused_logged = self->snap_refused;
}

static void s_on_snapshot(uplink_t *self, const Backstop__SnapshotReply *r, int64_t mono)
{
    if (self->state != S_JOINING)
        return;
    if (r->has_refused && r->refused) {
        s_snapshot_refused(self, mono);
        return;
    }
    /* the aggregator's heartbeat interval: silence is judged by it from now on, not by the
     * longest one until its first heartbeat (it may die before that one); an older
     * aggregator's reply does not say, and what is known stays */
    if (r->has_heartbeat_interval_ms)
        s_interval_known(self, (int64_t)r->heartbeat_interval_ms);
    dcache_t *dc = milter_engine_dcache(self->engine);
    bool more = r->has_more && r->more;
    if (r->has_changes_only && r->changes_only) {
        if (r->epoch != self->epoch) {
            s_rejoin(self, "epoch", false, mono);
            return;
        }
        /* each frame's changes as it comes: they are in order, and a frame's first follows
         * the last of the frame before */
        for (size_t i = 0; i < r->n_changes; i++) {
            const Backstop__DecisionUpdate *u = r->changes[i];
            if (u->seq <= self->applied)
                continue;
            if (u->seq != self->applied + 1 || s_apply(self, u, mono) < 0) {
                self->epoch = 0; /* ask for a full snapshot */
                s_rejoin(self, "gap", false, mono);
                return;
            }
        }
        if (more) {
            self->join_sent_ms = mono; /* the answer is coming: no timeout while it does */
            return;
        }
        self->applied = r->seq;
        dcache_set_position(dc, self->epoch, self->applied);
    } else {
        for (size_t i = 0; i < r->n_decisions; i++) {
            const Backstop__Decision *d = r->decisions[i];
            if (!s_ours(self, d))
                continue;
            const char *bad = s_decision_bad(self, d);
            if (bad) {
                s_decision_refused(self, d, bad, mono);
                continue;
            }
            if (self->nsnap == self->snap_cap) {
                self->snap_cap = self->snap_cap ? self->snap_cap * 2 : 64;
                self->snap = xrealloc(self->snap, self->snap_cap * sizeof(*self->snap));
            }
            s_entry_from(d, &self->snap[self->nsnap++]);
        }
        if (more) {
            self->join_sent_ms = mono;
            return;
        }
        self->epoch = r->epoch;
        self->applied = r->seq;
        dcache_replace_feed(dc, self->snap, self->nsnap, r->epoch, r->seq);
        self->nsnap = 0;
    }
    s_go_live(self, mono);
}

/* The updates held while joining went over a bound: they are dropped, and so are those still
 * to come this join; once its answer is applied the sensor asks for what came after it
 * (s_go_live). A multi-frame snapshot under way stays. */
static void s_join_overflow(uplink_t *self, int64_t mono)
{
    size_t n = self->nqueued, bytes = self->queued_bytes;
    for (size_t i = 0; i < self->nqueued; i++)
        wire_free(&self->queued_frames[i]);
    self->nqueued = 0;
    self->queued_bytes = 0;
    self->overflow_dropped += n + 1;
    self->join_overflow = true;
    atomic_fetch_add(&self->st_join_overflows, 1);
    if (!msg_due(&self->overflow_log_ms, mono, S_LOG_EVERY_MS))
        return;
    msg_warn("uplink: aggregator=%s join-overflow updates=%zu bytes=%zu held while joining, over "
             "the bound (%d updates, %u bytes): dropped, resync after the join; dropped=%" PRIu64,
             s_target_name(self), n + 1, bytes, S_MAX_QUEUED_UPDATES, S_MAX_QUEUED_BYTES,
             self->overflow_dropped - self->overflow_logged);
    self->overflow_logged = self->overflow_dropped;
}

static void s_on_update(uplink_t *self, Backstop__Frame **fp, const char *topic, int64_t mono)
{
    Backstop__DecisionUpdate *u = (*fp)->update;
    bool fleet_topic = !strcmp(topic, ZSOCK_TOPIC_FLEET);
    bool skip = u->kind == BACKSTOP__DECISION_UPDATE__KIND__SKIP;
    /* F carries fleet decisions and the SKIPs of local ones; S/<site>/ only local ones */
    bool want_fleet = fleet_topic && !skip;
    bool want_local = !fleet_topic || skip;
    if ((want_fleet && u->decision->reach != BACKSTOP__REACH__FLEET) ||
        (want_local && u->decision->reach != BACKSTOP__REACH__LOCAL) || (skip && !fleet_topic)) {
        self->bad_frames++;
        return;
    }
    if (self->state == S_JOINING) {
        if (self->join_overflow) {
            self->overflow_dropped++;
            return;
        }
        /* what it holds: the packed size counts unknown fields too, which protobuf keeps */
        size_t size = protobuf_c_message_get_packed_size(&(*fp)->base) + S_QUEUED_OVERHEAD;
        if (self->nqueued >= S_MAX_QUEUED_UPDATES ||
            size > S_MAX_QUEUED_BYTES - self->queued_bytes) {
            s_join_overflow(self, mono);
            return;
        }
        self->queued = xrealloc(self->queued, (self->nqueued + 1) * sizeof(*self->queued));
        self->queued_frames =
            xrealloc(self->queued_frames, (self->nqueued + 1) * sizeof(*self->queued_frames));
        self->queued[self->nqueued] = u;
        self->queued_frames[self->nqueued++] = *fp;
        *fp = NULL; /* kept until the snapshot arrives */
        self->queued_bytes += size;
        if (self->queued_bytes > atomic_load(&self->st_queued_bytes_peak))
            atomic_store(&self->st_queued_bytes_peak, self->queued_bytes);
        return;
    }
    if (u->epoch != self->epoch) {
        s_epoch_mismatch(self, u->epoch, mono);
    } else if (u->seq <= self->applied) {
        /* duplicate */
    } else if (u->seq != self->applied + 1 || s_apply(self, u, mono) < 0) {
        s_rejoin(self, "gap", false, mono);
    } else {
        self->hb_ahead = false;
    }
}

/* The names of the scopes in bits (proto Scope values), comma-separated; "all" for 0. */
static void s_scope_names(uint32_t bits, char *out, size_t len)
{
    static const char *const names[] = {"unknown",    "subject",    "orig_subject",  "client_ip",
                                        "client_net", "subject_ip", "sender_domain", "site"};
    snprintf(out, len, "%s", bits ? "" : "all");
    size_t at = 0;
    for (unsigned s = 1; bits && s < 32 && at < len; s++) {
        if (!(bits & (1u << s)))
            continue;
        int w = s < sizeof(names) / sizeof(names[0])
                    ? snprintf(out + at, len - at, "%s%s", at ? "," : "", names[s])
                    : snprintf(out + at, len - at, "%s%u", at ? "," : "", s);
        at += w > 0 ? (size_t)w : 0;
    }
}

static void s_on_heartbeat(uplink_t *self, const Backstop__Heartbeat *hb, int64_t mono)
{
    /* columns only to an aggregator that says, now, that it reads them: an older one would
     * see a batch without events */
    bool columns = hb->has_features && (hb->features & WIRE_FEATURE_COLUMNS);
    /* and each key's text once a minute to one that keeps texts (it says so) */
    bool text_once = columns && (hb->features & WIRE_FEATURE_TEXT_ONCE);
    /* and, in columns, only the keys it reads (it says which) */
    uint32_t scopes = columns && hb->has_scopes ? hb->scopes : 0;
    if (columns != self->peer_columns || text_once != self->peer_text_once ||
        scopes != self->peer_scopes) {
        char keys[128];
        s_scope_names(scopes, keys, sizeof(keys));
        msg_info("uplink: events=%s aggregator=%s texts=%s keys=%s", columns ? "columns" : "rows",
                 s_target_name(self), text_once ? "once" : "every", keys);
    }
    self->peer_columns = columns;
    self->peer_text_once = text_once;
    self->peer_scopes = scopes;
    /* the interval it announces (an older aggregator's is 1 s and says nothing): the silence
     * that means gone follows it */
    s_interval_known(self, hb->has_interval_ms ? (int64_t)hb->interval_ms : 0);
    if (self->state != S_LIVE)
        return;
    if (hb->epoch != self->epoch) {
        s_epoch_mismatch(self, hb->epoch, mono);
        return;
    }
    /* the snapshot and the feed are one aggregator's */
    self->hb_matched = true;
    self->epoch_flaps = 0;
    self->flap_warned = false;
    if (hb->seq > self->applied) {
        if (self->hb_ahead)
            s_rejoin(self, "heartbeat-ahead", false, mono);
        else
            self->hb_ahead = true;
    } else if (hb->seq < self->applied) {
        /* no sensor can be ahead of its aggregator (PROTOCOL.md 4.1): it lost changes we
         * hold, and will give their numbers again; only a full snapshot says what it has */
        self->epoch = 0;
        s_rejoin(self, "seq-behind", false, mono);
    } else {
        self->hb_ahead = false;
    }
}

/* At most S_READ_BURST frames a round: a flood must not keep the timers waiting. */
static void s_read_sub(uplink_t *self, int64_t mono)
{
    for (int i = 0; i < S_READ_BURST && self->sub; i++) {
        Backstop__Frame *f = NULL;
        zsock_meta_t meta;
        wire_err_t werr;
        int rc = zsock_recv(self->sub, ZMQ_DONTWAIT, &f, &meta, &werr);
        if (rc < 0)
            return;
        /* a feed silent for two heartbeats and back: the aggregator may have restarted,
         * losing the last texts it was sent before it could write them */
        if (self->texts && mono - self->heard_ms > 2 * s_interval_ms(self))
            wire_textmem_clear(self->texts);
        self->heard_ms = mono;
        if (rc == 0) {
            self->bad_frames++;
            continue;
        }
        if (f->body_case == BACKSTOP__FRAME__BODY_HEARTBEAT)
            s_on_heartbeat(self, f->heartbeat, mono);
        else if (f->body_case == BACKSTOP__FRAME__BODY_UPDATE)
            s_on_update(self, &f, meta.topic, mono);
        else
            self->bad_frames++;
        wire_free(&f);
    }
}

static void s_read_dealer(uplink_t *self, int64_t mono)
{
    for (int i = 0; i < S_READ_BURST && self->dealer; i++) {
        Backstop__Frame *f = NULL;
        wire_err_t werr;
        int rc = zsock_recv(self->dealer, ZMQ_DONTWAIT, &f, NULL, &werr);
        if (rc < 0)
            return;
        if (rc == 1 && f->body_case == BACKSTOP__FRAME__BODY_SNAPSHOT_REPLY)
            s_on_snapshot(self, f->snapshot_reply, mono);
        else
            self->bad_frames++;
        wire_free(&f);
    }
}

static void s_send_status(uplink_t *self)
{
    if (!self->push)
        return;
    Backstop__SensorStatus st = BACKSTOP__SENSOR_STATUS__INIT;
    st.site = self->cfg->site;
    st.sensor = self->cfg->sensor_id;
    st.epoch = self->epoch;
    st.applied_seq = self->applied;
    st.time_ms = bs_clock_now_ms(self->clock);
    st.has_events_sent = st.has_events_dropped = st.has_events_spooled = st.has_decisions = 1;
    st.events_sent = self->sent;
    st.events_dropped = self->dropped + evq_dropped(milter_engine_evq(self->engine));
    st.events_spooled = self->spool_events;
    st.decisions = (uint32_t)dcache_count(milter_engine_dcache(self->engine));
    Backstop__Frame f;
    wire_frame_init(&f, BACKSTOP__FRAME__BODY_STATUS, &st);
    zsock_send(self->push, &f, ZMQ_DONTWAIT);
}

/* ---- the thread ---- */

static void *s_run(void *arg)
{
    uplink_t *self = arg;
    evq_t *q = milter_engine_evq(self->engine);
    int64_t mono = bs_clock_mono_ms(self->clock);
    if (!self->standalone)
        s_rejoin(self, "start", true, mono);
    self->next_tick_ms = mono + S_TICK_MS;
    self->next_status_ms = mono + self->cfg->status_interval_ms;
    while (!atomic_load(&self->stop)) {
        zmq_pollitem_t items[4];
        int n = 0;
        items[n++] = (zmq_pollitem_t){.socket = NULL, .fd = evq_fd(q), .events = ZMQ_POLLIN};
        int sub_i = -1, dealer_i = -1;
        if (self->sub) {
            sub_i = n;
            items[n++] = (zmq_pollitem_t){.socket = self->sub, .events = ZMQ_POLLIN};
        }
        if (self->dealer) {
            dealer_i = n;
            items[n++] = (zmq_pollitem_t){.socket = self->dealer, .events = ZMQ_POLLIN};
        }
        int mon_i = -1;
        if (self->mon) {
            mon_i = n;
            items[n++] = (zmq_pollitem_t){.socket = self->mon, .events = ZMQ_POLLIN};
        }
        long timeout = 200;
        if (self->nbatch) {
            int64_t due = self->batch_since_ms + self->cfg->event_flush_ms - mono;
            timeout = due < timeout ? (due < 0 ? 0 : (long)due) : timeout;
        }
        if ((self->spool && self->spool_head != self->spool_tail && s_up(self)) ||
            (self->join_pending && !self->join_hold_until))
            timeout = timeout < 10 ? timeout : 10;
        if (self->join_pending && self->join_hold_until) {
            int64_t due = self->join_hold_until - mono;
            timeout = due < timeout ? (due < 0 ? 0 : (long)due) : timeout;
        }
        if (zmq_poll(items, n, timeout) < 0 && errno != EINTR)
            break;
        mono = bs_clock_mono_ms(self->clock);
        if (items[0].revents & ZMQ_POLLIN)
            s_take_events(self, mono);
        if (sub_i >= 0 && (items[sub_i].revents & ZMQ_POLLIN))
            s_read_sub(self, mono);
        if (dealer_i >= 0 && (items[dealer_i].revents & ZMQ_POLLIN))
            s_read_dealer(self, mono);
        if (mon_i >= 0 && (items[mon_i].revents & ZMQ_POLLIN))
            s_read_monitor(self, mono);
        s_log_losses(self, mono);
        if (self->nbatch && mono - self->batch_since_ms >= self->cfg->event_flush_ms)
            s_flush(self, mono);
        if (!self->standalone) {
            if (self->state == S_JOINING && self->join_pending && self->dealer)
                s_send_join(self, mono);
            if (s_up(self))
                s_spool_replay(self);
            if (self->sub && mono - self->heard_ms >= s_silence_ms(self))
                s_rejoin(self, "silence", true, mono);
            else if (self->state == S_JOINING && self->dealer && !self->join_hold_until &&
                     mono - self->join_sent_ms >= self->cfg->heartbeat_timeout_ms)
                s_rejoin(self, "timeout", true, mono);
            if (mono >= self->next_status_ms) {
                s_send_status(self);
                self->next_status_ms = mono + self->cfg->status_interval_ms;
            }
        }
        if (mono >= self->next_tick_ms) {
            milter_engine_tick(self->engine);
            self->next_tick_ms = mono + S_TICK_MS;
        }
    }
    s_flush(self, bs_clock_mono_ms(self->clock));
    return NULL;
}

uplink_t *uplink_new(milter_engine_t *engine, char *err, size_t errlen)
{
    uplink_t *self = xcalloc(1, sizeof(*self));
    self->engine = engine;
    self->cfg = milter_engine_config(engine);
    self->clock = bs_clock_system();
    atomic_init(&self->stop, false);
    self->standalone = !*self->cfg->aggregator_events;
    self->batch = xcalloc((size_t)self->cfg->event_batch, sizeof(*self->batch));
    if (self->standalone)
        return self;
    self->site_fp = fp_text(self->cfg->site);
    if (zsock_site_topic(self->topic, sizeof(self->topic), self->cfg->site) != 0) {
        snprintf(err, errlen, "site '%s' cannot be a topic (no '/', at most 64 bytes)",
                 self->cfg->site);
        uplink_destroy(&self);
        return NULL;
    }
    if (*self->cfg->aggregator_public_key) {
        if (!*self->cfg->sensor_secret_key_file ||
            zsock_keys_load(self->cfg->sensor_secret_key_file, &self->keys) != 0 ||
            !self->keys.secret_key[0]) {
            snprintf(err, errlen,
                     "aggregator_public_key needs a sensor_secret_key_file with a "
                     "secret key");
            uplink_destroy(&self);
            return NULL;
        }
        self->curve = true;
    }
    self->has_backup = *self->cfg->aggregator_backup_events != '\0';
    /* the decision cache remembers where the feed was, so a restart asks for changes only */
    dcache_position(milter_engine_dcache(engine), &self->epoch, &self->applied);
    self->texts = wire_textmem_new(WIRE_TEXTMEM_SLOTS, WIRE_TEXTMEM_TTL_MS);
    self->ctx = zmq_ctx_new();
    s_spool_open(self);
    return self;
}

int uplink_start(uplink_t *self)
{
    if (pthread_create(&self->thread, NULL, s_run, self) != 0)
        return -1;
    self->started = true;
    return 0;
}

void uplink_stats(uplink_t *self, uplink_stats_t *out)
{
    out->live = atomic_load(&self->st_live);
    out->requests = atomic_load(&self->st_requests);
    out->queued_bytes_peak = atomic_load(&self->st_queued_bytes_peak);
    out->join_overflows = atomic_load(&self->st_join_overflows);
    out->snapshots_refused = atomic_load(&self->st_snapshots_refused);
    out->decisions_refused = atomic_load(&self->st_decisions_refused);
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
    for (size_t i = 0; i < self->nbatch; i++)
        evq_event_destroy(&self->batch[i]);
    xfree(self->batch);
    s_free_queued(self);
    xfree(self->queued);
    xfree(self->queued_frames);
    xfree(self->snap);
    s_sockets_close(self);
    if (self->ctx)
        zmq_ctx_term(self->ctx);
    kv_close(&self->spool);
    wire_textmem_destroy(&self->texts);
    xfree(self);
    *self_p = NULL;
}
