/*
 * fuzz_uplink - libFuzzer target: what a sensor receives from its aggregator
 *
 * The input is a sequence of received messages, each one selector byte, a
 * 16-bit big-endian length and that many bytes of a serialized Frame. The
 * selector's low two bits name where it arrived: the SUB socket under topic
 * "F", "H" or the sensor's own "S/site1/", or the DEALER (snapshot replies).
 *
 * The uplink's handlers are static and its sockets live in its thread, so
 * this file includes sensor/uplink.c itself and drives the real receive path
 * without sockets: wire_unpack() (the checks zsock_recv applies) and then
 * exactly the dispatch of s_read_sub()/s_read_dealer() into s_on_heartbeat,
 * s_on_update and s_on_snapshot, which apply decisions to the engine's real
 * decision cache (dcache) and move the feed state between JOINING and LIVE.
 * The uplink struct is built here as uplink_new() builds it, minus the zmq
 * context and spool: with no sockets, a resync (s_rejoin without reopen)
 * only changes state, as it would before its request is sent.
 *
 * One engine (and its state directory with the dcache and ledger stores) is
 * made on the first run and reused; each run starts from an empty feed. After
 * the frames, every (scope, fp) the frames named is looked up in the cache.
 * Logging goes to /dev/null unless BACKSTOP_FUZZ_LOG is set.
 */
#include "../../sensor/uplink.c"
#include "fuzz_lib.h"

#include <fcntl.h>
#include <stdlib.h>
#include <unistd.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static char s_dir[64];
static sensor_config_t *s_cfg;
static milter_engine_t *s_engine;

/* what the reads add up to: kept so that they are not optimised away */
static volatile size_t s_sink;

static void s_cleanup(void)
{
    milter_engine_destroy(&s_engine);
    sensor_config_destroy(&s_cfg);
    fuzz_rmtree(s_dir);
}

static void s_init(void)
{
    fuzz_quiet();
    snprintf(s_dir, sizeof(s_dir), "/tmp/fuzz_uplink.XXXXXX");
    fuzz_mkdtemp(s_dir);
    char *conf = xasprintf("%s/sensor.conf", s_dir);
    FILE *fp = fopen(conf, "w");
    if (!fp)
        abort();
    fprintf(fp,
            "site = site1\nsensor_id = s1\nstate_directory = %s\n"
            "aggregator_events = tcp://127.0.0.1:9\naggregator_decisions = tcp://127.0.0.1:9\n"
            "aggregator_snapshot = tcp://127.0.0.1:9\nlocal_rule = no\n",
            s_dir);
    fclose(fp);
    char err[1024];
    s_cfg = sensor_config_load(conf, err, sizeof(err));
    xfree(conf);
    if (!s_cfg)
        abort();
    s_engine = milter_engine_new(s_cfg, bs_clock_system(), err, sizeof(err));
    if (!s_engine)
        abort();
    atexit(s_cleanup);
}

/* An uplink as uplink_new() makes it for a configured aggregator, without context or spool. */
static uplink_t *s_uplink(void)
{
    uplink_t *self = xcalloc(1, sizeof(*self));
    self->engine = s_engine;
    self->cfg = milter_engine_config(s_engine);
    self->clock = bs_clock_system();
    atomic_init(&self->stop, false);
    self->batch = xcalloc((size_t)self->cfg->event_batch, sizeof(*self->batch));
    self->site_fp = fp_text(self->cfg->site);
    if (zsock_site_topic(self->topic, sizeof(self->topic), self->cfg->site) != 0)
        abort();
    dcache_position(milter_engine_dcache(s_engine), &self->epoch, &self->applied);
    return self;
}

/* Reads back what the cache holds for a decision the frames named. */
static size_t s_lookup(const Backstop__Decision *d)
{
    if (!d)
        return 0;
    dcache_t *dc = milter_engine_dcache(s_engine);
    dcache_entry_t out[4];
    size_t n = dcache_lookup(dc, d->scope, d->fp, bs_clock_now_ms(bs_clock_system()), out, 4);
    size_t sink = n;
    for (size_t i = 0; i < n && i < 4; i++)
        sink += strlen(out[i].id) + strlen(out[i].value);
    dcache_entry_t e;
    if (d->id && dcache_get(dc, d->id, &e) == 0)
        sink += strlen(e.value) + strlen(dcache_scope_name(e.scope)) +
                strlen(dcache_action_name(e.action));
    return sink;
}

static size_t s_lookups(const Backstop__Frame *f)
{
    size_t sink = 0;
    if (f->body_case == BACKSTOP__FRAME__BODY_UPDATE) {
        sink += s_lookup(f->update->decision);
    } else if (f->body_case == BACKSTOP__FRAME__BODY_SNAPSHOT_REPLY) {
        const Backstop__SnapshotReply *r = f->snapshot_reply;
        for (size_t i = 0; i < r->n_decisions; i++)
            sink += s_lookup(r->decisions[i]);
        for (size_t i = 0; i < r->n_changes; i++)
            sink += s_lookup(r->changes[i]->decision);
    }
    return sink;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (!s_engine)
        s_init();
    dcache_t *dc = milter_engine_dcache(s_engine);
    /* each run starts with no aggregator decisions and no feed position */
    dcache_replace_feed(dc, NULL, 0, 0, 0);
    uplink_t *self = s_uplink();
    size_t sink = 0;
    int64_t mono = 1000;
    uint8_t sel;
    const uint8_t *buf;
    size_t len;
    while (fuzz_step(&data, &size, &sel, &buf, &len)) {
        wire_err_t werr = WIRE_OK;
        Backstop__Frame *f = wire_unpack(buf, len, &werr);
        mono += 10;
        if (!f) {
            sink += strlen(wire_err_name(werr));
            continue;
        }
        /* what wire_unpack returns must pass its own check (wire.h) */
        if (wire_check(f) != WIRE_OK)
            __builtin_trap();
        sink += strlen(wire_body_name(f->body_case));
        switch (sel & 3) {
        case 0: /* SUB, fleet topic: s_read_sub */
        case 1: /* SUB, heartbeat topic */
        case 2: /* SUB, this site's topic */ {
            const char *topic = (sel & 3) == 0   ? ZSOCK_TOPIC_FLEET
                                : (sel & 3) == 1 ? ZSOCK_TOPIC_HEARTBEAT
                                                 : self->topic;
            if (f->body_case == BACKSTOP__FRAME__BODY_HEARTBEAT)
                s_on_heartbeat(self, f->heartbeat, mono);
            else if (f->body_case == BACKSTOP__FRAME__BODY_UPDATE)
                s_on_update(self, &f, topic, mono);
            else
                self->bad_frames++;
            break;
        }
        default: /* DEALER: s_read_dealer */
            if (f->body_case == BACKSTOP__FRAME__BODY_SNAPSHOT_REPLY)
                s_on_snapshot(self, f->snapshot_reply, mono);
            else
                self->bad_frames++;
            break;
        }
        if (f)
            sink += s_lookups(f);
        wire_free(&f);
    }
    uint64_t epoch, seq;
    dcache_position(dc, &epoch, &seq);
    sink += (size_t)(epoch + seq) + dcache_count(dc) + self->bad_frames;
    uplink_destroy(&self);
    s_sink = sink;
    return 0;
}
