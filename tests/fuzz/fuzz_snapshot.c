/*
 * fuzz_snapshot - libFuzzer target: the aggregator's snapshot ROUTER answering any request
 *
 * A real server (its own store in a temp directory, a fake clock, change_log
 * 16, plain mode) is made on the first run with a decision table that has a
 * history: fleet decisions and local ones of site-a and site-b, some revoked,
 * more changes than the in-memory log keeps (so "changes since" is answered
 * from it, from the store's longer log, or by a full snapshot), sites and
 * allowlist entries, one of each deleted (tombstones). Answering a snapshot
 * changes nothing in it, so the server is kept for every run. A DEALER of
 * the target's own, in the server's context (server_zmq_context) over its
 * inproc snapshot endpoint, sends the requests, and server_drain_snapshots() (the loop's
 * s_drain_snapshots, which hands them to publish_snapshot() and the
 * SharedReply builder) answers them.
 *
 * The input is a sequence of requests, each one selector byte, a 16-bit
 * big-endian length and that many bytes (fewer when the input ends first);
 * at most S_MAX_REQS (4) of them: publish_snapshot() zeroes some megabytes
 * of buffers for every answer, which is what bounds the speed.
 * The selector's low two bits:
 *   0  the bytes are a serialized Frame, sent as [empty][frame] (a DEALER's)
 *   1  the same without the empty delimiter ([frame]; the ROUTER takes it)
 *   2  a SnapshotRequest built from the bytes, so that epochs and sequences
 *      land near the table's: byte 0 has_epoch (bit 0), has_since_seq (1),
 *      has_all_sites (2), all_sites (3), the epoch (bits 4-5: the table's,
 *      one more, 0, or 8 raw bytes) and since_seq (bits 6-7: the table's seq
 *      minus k, the in-memory log's floor minus k, the seq plus k, or 8 raw
 *      bytes); byte 1 is k; byte 2 the site (site-a, site-b, site-c which has
 *      no local decisions, or the rest of the bytes as text); then the raw
 *      epoch and since_seq; the sensor is "s1"
 *   3  a SharedRequest whose name is the bytes as text
 * A request that cannot be packed (2, 3: a name that is not UTF-8 ...) is
 * skipped.
 *
 * After each request the target drains the snapshot ROUTER and reads every
 * reply until the request has been dealt with: counted as a drop (and, for a
 * refusal, answered), or answered to the last part (more = false). A request
 * neither answered nor counted within 5 s is a hang (trap).
 *
 * Checked (the oracle; __builtin_trap() on a violation), against what
 * wire_unpack() says of the bytes: an undecodable frame is dropped under its
 * wire error, any body but the two requests as unexpected, both without a
 * reply; a SharedRequest gets SharedReply parts with the server's shared
 * digest and every entry (as many as the first run saw); a SnapshotRequest
 * without all_sites for a site server_site_name_ok() refuses is counted as
 * site_mismatch and gets one SnapshotReply with refused set and nothing in
 * it; any other gets SnapshotReply parts, all with the table's epoch and seq,
 * more on all but the last, never refused, and counted as a full snapshot or
 * a changes-only answer as they say. A changes-only answer (only for a
 * request with epoch and since_seq, the table's epoch and since_seq at most
 * its seq; always when since_seq is within the in-memory log) holds exactly
 * the changes since_seq+1 .. seq in order, of the table's epoch, those of
 * other sites as SKIP (never for all_sites), the rest without evidence. A
 * full snapshot holds exactly the decisions decisions_foreach() gives for the
 * site (every one for all_sites), each once, without evidence.
 */
#include <errno.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <sched.h>
#include <string.h>
#include <time.h>
#include <zmq.h>

#include "agg_config.h"
#include "bs_clock.h"
#include "control.h"
#include "decisions.h"
#include "fp.h"
#include "publish.h"
#include "server.h"
#include "wire.h"
#include "xalloc.h"
#include "fuzz_lib.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define S_NOW      (1700000000LL * 1000)
#define S_MAX_REQS 4
#define S_MAX_IDS  256

static char s_dir[64];
static bs_clock_t *s_clock;
static server_t *s_srv;
static void *s_dealer;
static size_t s_shared_total; /* entries of a SharedReply, as the first run saw them */

static void s_cleanup(void)
{
    zmq_close(s_dealer); /* before the server terminates its context */
    server_destroy(&s_srv);
    bs_clock_destroy(&s_clock);
    fuzz_rmtree(s_dir);
}

/* A control request answered by the server; aborts on a refusal. */
static void s_control(Backstop__ControlRequest *rq)
{
    Backstop__ControlReply reply = BACKSTOP__CONTROL_REPLY__INIT;
    rq->who = "fuzz";
    if (control_handle(s_srv, rq, &reply) != 0) {
        fprintf(stderr, "fuzz_snapshot: control command %d: %s\n", (int)rq->command,
                reply.error ? reply.error : "?");
        abort();
    }
    free(reply.json);
    free(reply.error);
    if (server_apply_changes(s_srv) < 0)
        abort();
}

static void s_add(const char *value, const char *site)
{
    Backstop__ControlRequest rq = BACKSTOP__CONTROL_REQUEST__INIT;
    rq.command = BACKSTOP__CONTROL_REQUEST__COMMAND__DECISION_ADD;
    rq.has_scope = 1;
    rq.scope = BACKSTOP__SCOPE__SUBJECT;
    rq.value = (char *)value;
    if (site) {
        rq.site = (char *)site;
        rq.has_reach = 1;
        rq.reach = BACKSTOP__REACH__LOCAL;
        /* no sensor of it reports here: a site the server does not know, taken */
        rq.has_force = 1;
        rq.force = 1;
    }
    s_control(&rq);
}

static void s_by_id(Backstop__ControlRequest__Command cmd, const char *id, const char *value)
{
    Backstop__ControlRequest rq = BACKSTOP__CONTROL_REQUEST__INIT;
    rq.command = cmd;
    rq.id = (char *)id;
    rq.value = (char *)value;
    s_control(&rq);
}

typedef struct {
    char id[S_MAX_IDS][DECISION_ID_LEN + 1];
    size_t n;
} s_ids_t;

static int s_collect(const decision_t *d, void *arg)
{
    s_ids_t *ids = arg;
    if (ids->n < S_MAX_IDS)
        snprintf(ids->id[ids->n], sizeof(ids->id[0]), "%s", d->id);
    ids->n++;
    return 0;
}

/* Receives one reply frame on the DEALER ([empty][frame]) without waiting; NULL if none. */
static Backstop__Frame *s_reply(void)
{
    zmq_msg_t m;
    zmq_msg_init(&m);
    if (zmq_msg_recv(&m, s_dealer, ZMQ_DONTWAIT) < 0) {
        FUZZ_CHECK(errno == EAGAIN);
        zmq_msg_close(&m);
        return NULL;
    }
    FUZZ_CHECK(zmq_msg_size(&m) == 0 && zmq_msg_more(&m));
    zmq_msg_close(&m);
    zmq_msg_init(&m);
    FUZZ_CHECK(zmq_msg_recv(&m, s_dealer, 0) >= 0 && !zmq_msg_more(&m));
    wire_err_t err;
    Backstop__Frame *f = wire_unpack(zmq_msg_data(&m), zmq_msg_size(&m), &err);
    zmq_msg_close(&m);
    FUZZ_CHECK(f != NULL);
    return f;
}

static int64_t s_mono_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* What the server's counters say of the requests handled so far. */
typedef struct {
    uint64_t drops[SERVER_DROP__COUNT];
    uint64_t full, changes;
} s_counts_t;

static void s_counts(s_counts_t *c)
{
    const server_stats_t *st = server_stats(s_srv);
    memcpy(c->drops, st->drops, sizeof(c->drops));
    c->full = st->snapshots_full;
    c->changes = st->snapshots_changes;
}

/* Drains the ROUTER until the request just sent was dealt with: replies (up to the one
 * without more) into out[] (at most cap; the count into *n), the counters' change into d. */
static void s_wait(Backstop__Frame **out, size_t cap, size_t *n, s_counts_t *d)
{
    s_counts_t before, now;
    s_counts(&before);
    int64_t deadline = s_mono_ms() + 5000;
    bool last = false;
    int spins = 0;
    *n = 0;
    for (;;) {
        server_drain_snapshots(s_srv);
        Backstop__Frame *f;
        while (!last && (f = s_reply()) != NULL) {
            FUZZ_CHECK(*n < cap);
            out[(*n)++] = f;
            if (f->body_case == BACKSTOP__FRAME__BODY_SNAPSHOT_REPLY)
                last = !f->snapshot_reply->more;
            else if (f->body_case == BACKSTOP__FRAME__BODY_SHARED_REPLY)
                last = !f->shared_reply->more;
            else
                last = true; /* checked by the caller */
        }
        s_counts(&now);
        bool counted = false, answered = now.full != before.full || now.changes != before.changes ||
                                         now.drops[SERVER_DROP_SITE_MISMATCH] !=
                                             before.drops[SERVER_DROP_SITE_MISMATCH];
        for (int i = 0; i < SERVER_DROP__COUNT; i++)
            counted = counted || now.drops[i] != before.drops[i];
        if (last || (counted && !answered))
            break;
        FUZZ_CHECK(s_mono_ms() < deadline); /* neither answered nor counted: a hang */
        /* inproc delivers at once; should the request or its reply still be on its way,
         * yield a while before sleeping */
        if (++spins > 1000) {
            zmq_pollitem_t item = {s_dealer, 0, ZMQ_POLLIN, 0};
            zmq_poll(&item, 1, 1);
        } else {
            sched_yield();
        }
    }
    for (int i = 0; i < SERVER_DROP__COUNT; i++)
        d->drops[i] = now.drops[i] - before.drops[i];
    d->full = now.full - before.full;
    d->changes = now.changes - before.changes;
}

/* Sends bytes (with the DEALER's empty delimiter or not) and checks what came of it. */
static void s_request(const uint8_t *buf, size_t len, bool delim)
{
    static Backstop__Frame *out[64];
    size_t n = 0;
    s_counts_t d;
    if ((delim && zmq_send(s_dealer, "", 0, ZMQ_SNDMORE) < 0) ||
        zmq_send(s_dealer, buf, len, 0) < 0)
        abort();
    s_wait(out, sizeof(out) / sizeof(out[0]), &n, &d);

    const decisions_t *table = server_decisions(s_srv);
    uint64_t epoch = decisions_epoch(table), seq = decisions_seq(table);
    uint64_t ndrops = 0;
    for (int i = 0; i < SERVER_DROP__COUNT; i++)
        ndrops += d.drops[i];
    wire_err_t err = WIRE_OK;
    Backstop__Frame *f = wire_unpack(buf, len, &err);
    if (f == NULL) {
        FUZZ_CHECK(n == 0 && ndrops == 1 && d.drops[err] == 1 && d.full + d.changes == 0);
    } else if (f->body_case == BACKSTOP__FRAME__BODY_SHARED_REQUEST) {
        FUZZ_CHECK(n >= 1 && ndrops == 0 && d.full + d.changes == 0);
        size_t total = 0;
        for (size_t i = 0; i < n; i++) {
            FUZZ_CHECK(out[i]->body_case == BACKSTOP__FRAME__BODY_SHARED_REPLY);
            const Backstop__SharedReply *r = out[i]->shared_reply;
            FUZZ_CHECK(r->digest == server_shared_digest(s_srv));
            FUZZ_CHECK(r->more == (i + 1 < n));
            total += r->n_entries;
        }
        if (s_shared_total == 0)
            s_shared_total = total;
        FUZZ_CHECK(total == s_shared_total);
    } else if (f->body_case == BACKSTOP__FRAME__BODY_SNAPSHOT_REQUEST) {
        const Backstop__SnapshotRequest *req = f->snapshot_request;
        bool all = req->has_all_sites && req->all_sites;
        const char *site = all ? PUBLISH_ALL_SITES : req->site;
        FUZZ_CHECK(n >= 1);
        for (size_t i = 0; i < n; i++) {
            FUZZ_CHECK(out[i]->body_case == BACKSTOP__FRAME__BODY_SNAPSHOT_REPLY);
            const Backstop__SnapshotReply *r = out[i]->snapshot_reply;
            FUZZ_CHECK(r->epoch == epoch && r->seq == seq);
            FUZZ_CHECK(r->more == (i + 1 < n));
            FUZZ_CHECK(r->changes_only == out[0]->snapshot_reply->changes_only);
        }
        if (!all && !server_site_name_ok(req->site)) {
            const Backstop__SnapshotReply *r = out[0]->snapshot_reply;
            FUZZ_CHECK(n == 1 && r->refused && !r->changes_only && r->n_decisions == 0 &&
                       r->n_changes == 0);
            FUZZ_CHECK(ndrops == 1 && d.drops[SERVER_DROP_SITE_MISMATCH] == 1 &&
                       d.full + d.changes == 0);
        } else if (out[0]->snapshot_reply->changes_only) {
            FUZZ_CHECK(ndrops == 0 && d.changes == 1 && d.full == 0);
            FUZZ_CHECK(req->has_epoch && req->has_since_seq && req->epoch == epoch &&
                       req->since_seq <= seq);
            uint64_t next = req->since_seq + 1;
            for (size_t i = 0; i < n; i++) {
                const Backstop__SnapshotReply *r = out[i]->snapshot_reply;
                FUZZ_CHECK(!r->refused && r->n_decisions == 0);
                for (size_t j = 0; j < r->n_changes; j++) {
                    const Backstop__DecisionUpdate *u = r->changes[j];
                    FUZZ_CHECK(u->seq == next++ && u->epoch == epoch && u->decision);
                    if (u->kind == BACKSTOP__DECISION_UPDATE__KIND__SKIP) {
                        FUZZ_CHECK(!all && u->decision->reach == BACKSTOP__REACH__LOCAL);
                    } else {
                        const Backstop__Decision *dd = u->decision;
                        FUZZ_CHECK(dd->evidence == NULL);
                        FUZZ_CHECK(all || dd->reach == BACKSTOP__REACH__FLEET ||
                                   (dd->site && strcmp(dd->site, site) == 0));
                    }
                }
            }
            FUZZ_CHECK(next == seq + 1);
        } else {
            FUZZ_CHECK(ndrops == 0 && d.full == 1 && d.changes == 0);
            /* the log must answer what it holds */
            FUZZ_CHECK(!(req->has_epoch && req->has_since_seq && req->epoch == epoch &&
                         req->since_seq <= seq && req->since_seq >= decisions_log_floor(table)));
            static s_ids_t want;
            want.n = 0;
            decisions_foreach(table, all ? NULL : site, s_collect, &want);
            FUZZ_CHECK(want.n <= S_MAX_IDS);
            size_t got = 0;
            for (size_t i = 0; i < n; i++) {
                const Backstop__SnapshotReply *r = out[i]->snapshot_reply;
                FUZZ_CHECK(!r->refused && r->n_changes == 0);
                for (size_t j = 0; j < r->n_decisions; j++, got++) {
                    FUZZ_CHECK(got < want.n);
                    FUZZ_CHECK(strcmp(r->decisions[j]->id, want.id[got]) == 0);
                    FUZZ_CHECK(r->decisions[j]->evidence == NULL);
                }
            }
            FUZZ_CHECK(got == want.n);
        }
    } else {
        FUZZ_CHECK(n == 0 && ndrops == 1 && d.drops[SERVER_DROP_UNEXPECTED] == 1);
    }
    wire_free(&f);
    for (size_t i = 0; i < n; i++)
        wire_free(&out[i]);
}

/* Packs frame and sends it as a DEALER does. */
static void s_send_frame(Backstop__Frame *frame)
{
    size_t len;
    uint8_t *buf = wire_pack(frame, &len, NULL);
    if (buf == NULL)
        return; /* a request no client could send */
    s_request(buf, len, true);
    xfree(buf);
}

static uint64_t s_u64(const uint8_t *b, size_t len, size_t at)
{
    uint64_t v = 0;
    for (size_t i = 0; i < 8; i++)
        v = v << 8 | (at + i < len ? b[at + i] : 0);
    return v;
}

/* Mode 2: a SnapshotRequest from the bytes (see the header). */
static void s_structured(const uint8_t *b, size_t len)
{
    const decisions_t *table = server_decisions(s_srv);
    uint64_t epoch = decisions_epoch(table), seq = decisions_seq(table);
    uint64_t floor = decisions_log_floor(table);
    uint8_t flags = len > 0 ? b[0] : 0, k = len > 1 ? b[1] : 0, which = len > 2 ? b[2] : 0;
    static const char *const sites[] = {"site-a", "site-b", "site-c"};
    char text[WIRE_MAX_ID * 4 + 1] = "";
    if (len > 19) {
        size_t tl = len - 19 < sizeof(text) - 1 ? len - 19 : sizeof(text) - 1;
        memcpy(text, b + 19, tl);
        text[tl] = '\0';
    }
    Backstop__SnapshotRequest req = BACKSTOP__SNAPSHOT_REQUEST__INIT;
    req.site = (which & 3) == 3 ? text : (char *)sites[which & 3];
    req.sensor = "s1";
    req.has_epoch = flags & 1;
    req.has_since_seq = (flags >> 1) & 1;
    req.has_all_sites = (flags >> 2) & 1;
    req.all_sites = (flags >> 3) & 1;
    switch ((flags >> 4) & 3) {
    case 0:
        req.epoch = epoch;
        break;
    case 1:
        req.epoch = epoch + 1;
        break;
    case 2:
        req.epoch = 0;
        break;
    default:
        req.epoch = s_u64(b, len, 3);
        break;
    }
    switch (flags >> 6) {
    case 0:
        req.since_seq = seq - k;
        break;
    case 1:
        req.since_seq = floor - k;
        break;
    case 2:
        req.since_seq = seq + k;
        break;
    default:
        req.since_seq = s_u64(b, len, 11);
        break;
    }
    Backstop__Frame f;
    wire_frame_init(&f, BACKSTOP__FRAME__BODY_SNAPSHOT_REQUEST, &req);
    s_send_frame(&f);
}

/* Mode 3: a SharedRequest named by the bytes. */
static void s_shared(const uint8_t *b, size_t len)
{
    char *name = xmalloc(len + 1);
    memcpy(name, b, len);
    name[len] = '\0';
    Backstop__SharedRequest req = BACKSTOP__SHARED_REQUEST__INIT;
    req.name = name;
    Backstop__Frame f;
    wire_frame_init(&f, BACKSTOP__FRAME__BODY_SHARED_REQUEST, &req);
    s_send_frame(&f);
    xfree(name);
}

static void s_init(void)
{
    char err[1024];
    fuzz_quiet();
    snprintf(s_dir, sizeof(s_dir), "/tmp/fuzz_snapshot.XXXXXX");
    fuzz_mkdtemp(s_dir);
    atexit(s_cleanup);
    char *conf = xasprintf("%s/agg.conf", s_dir);
    FILE *fp = fopen(conf, "w");
    if (fp == NULL)
        abort();
    fprintf(fp,
            "event_endpoint = ipc://%s/ev.sock\ndecision_endpoint = ipc://%s/dec.sock\n"
            "snapshot_endpoint = inproc://fuzz-snapshot\ncontrol_endpoint = ipc://%s/ctl.sock\n"
            "data_dir = %s/db\nsync_decisions = no\nchange_log = 16\n",
            s_dir, s_dir, s_dir, s_dir);
    fclose(fp);
    agg_config_t *cfg = agg_config_load(conf, err, sizeof(err));
    xfree(conf);
    if (cfg == NULL) {
        fprintf(stderr, "fuzz_snapshot: %s\n", err);
        abort();
    }
    s_clock = bs_clock_fake_new(S_NOW);
    s_srv = server_new(&cfg, NULL, s_clock);
    if (s_srv == NULL)
        abort();

    /* the history: 40 decisions (fleet, site-a's, site-b's), every fifth revoked, then sites
     * and allowlist entries with one of each deleted */
    for (int i = 0; i < 40; i++) {
        char value[64];
        snprintf(value, sizeof(value), "wave %d of the storm", i);
        s_add(value, i % 3 == 0 ? NULL : i % 3 == 1 ? "site-a" : "site-b");
    }
    static s_ids_t ids;
    decisions_foreach(server_decisions(s_srv), NULL, s_collect, &ids);
    for (size_t i = 0; i < ids.n && i < S_MAX_IDS; i += 5)
        s_by_id(BACKSTOP__CONTROL_REQUEST__COMMAND__DECISION_DEL, ids.id[i], NULL);
    s_add("the last wave", "site-a");
    s_add("the fleet's last wave", NULL);
    s_by_id(BACKSTOP__CONTROL_REQUEST__COMMAND__SITE_ADD, "site-a", NULL);
    s_by_id(BACKSTOP__CONTROL_REQUEST__COMMAND__SITE_ADD, "site-b", NULL);
    s_by_id(BACKSTOP__CONTROL_REQUEST__COMMAND__SITE_ADD, "site-gone", NULL);
    s_by_id(BACKSTOP__CONTROL_REQUEST__COMMAND__SITE_DEL, "site-gone", NULL);
    Backstop__ControlRequest rq = BACKSTOP__CONTROL_REQUEST__INIT;
    rq.command = BACKSTOP__CONTROL_REQUEST__COMMAND__ALLOW_ADD;
    rq.has_scope = 1;
    rq.scope = BACKSTOP__SCOPE__CLIENT_IP;
    rq.value = "203.0.113.9";
    s_control(&rq);
    rq.value = "203.0.113.10";
    s_control(&rq);
    Backstop__ControlRequest del = BACKSTOP__CONTROL_REQUEST__INIT;
    del.command = BACKSTOP__CONTROL_REQUEST__COMMAND__ALLOW_DEL;
    del.id = "2";
    s_control(&del);

    s_dealer = zmq_socket(server_zmq_context(s_srv), ZMQ_DEALER);
    int linger = 0;
    const char *ep = server_endpoint(s_srv, "snapshot");
    if (!s_dealer || !ep || zmq_setsockopt(s_dealer, ZMQ_LINGER, &linger, sizeof(linger)) < 0 ||
        zmq_connect(s_dealer, ep) < 0)
        abort();
    /* the connection is up once a first request is answered: a SharedRequest, which also
     * tells how many entries every later one must hold */
    uint8_t none = 0;
    s_shared(&none, 0);
    if (s_shared_total == 0)
        abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (s_srv == NULL)
        s_init();
    uint8_t sel;
    const uint8_t *buf;
    size_t len;
    for (int i = 0; i < S_MAX_REQS && fuzz_step(&data, &size, &sel, &buf, &len); i++) {
        switch (sel & 3) {
        case 0:
        case 1:
            s_request(buf, len, (sel & 3) == 0);
            break;
        case 2:
            s_structured(buf, len);
            break;
        default:
            s_shared(buf, len);
            break;
        }
    }
    return 0;
}
