/*
 * test_zsock - ZeroMQ helpers over loopback tcp with ephemeral ports:
 * PUSH/PULL round trip, bad frames dropped with a reason, oversized parts cut
 * off by ZMQ_MAXMSGSIZE, non-blocking sends, PUB/SUB topics (site1 is not
 * site10), ROUTER envelopes, CURVE with ZAP (registered key in, unknown key
 * out), key files, the ipc socket's mode, and whose an ipc socket file is (a live one
 * is never taken over, a stale one is replaced, a stop removes only its own).
 *
 * No sleeps: waits are zmq_poll/receive calls that return as soon as the
 * awaited thing happens; their timeouts only keep a broken build from hanging.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <sys/stat.h>
#include <unistd.h>

#include <zmq.h>

#include "msg.h"
#include "xalloc.h"
#include "zsock.h"

#define BOUND_MS 5000 /* upper bound of any wait; never reached when things work */

static void *s_ctx;

static int s_group_setup(void **state)
{
    s_ctx = zmq_ctx_new();
    return s_ctx ? 0 : -1;
}

static int s_group_teardown(void **state)
{
    /* not zmq_ctx_term: after a failed test its sockets are still open and term would hang */
    zmq_ctx_shutdown(s_ctx);
    return 0;
}

static void s_rcvtimeo(void *sock)
{
    int ms = BOUND_MS;
    assert_int_equal(zmq_setsockopt(sock, ZMQ_RCVTIMEO, &ms, sizeof(ms)), 0);
}

/* A socket of type bound to an ephemeral loopback port; *ep gets the real endpoint. */
static void *s_bound(int type, char **ep)
{
    void *s = zsock_new(s_ctx, type);
    assert_non_null(s);
    assert_int_equal(zsock_bind(s, "tcp://127.0.0.1:*", 0, (gid_t)-1), 0);
    *ep = zsock_bound_endpoint(s);
    assert_non_null(*ep);
    assert_null(strchr(*ep, '*'));
    s_rcvtimeo(s);
    return s;
}

static void *s_connected(int type, const char *ep)
{
    void *s = zsock_new(s_ctx, type);
    assert_non_null(s);
    assert_int_equal(zsock_connect(s, ep), 0);
    s_rcvtimeo(s);
    return s;
}

static void s_heartbeat(Backstop__Frame *f, Backstop__Heartbeat *hb, uint64_t seq)
{
    backstop__heartbeat__init(hb);
    hb->epoch = 7;
    hb->seq = seq;
    hb->time_ms = 1700000000000LL;
    wire_frame_init(f, BACKSTOP__FRAME__BODY_HEARTBEAT, hb);
}

/* Receives one frame, which must be a heartbeat; returns its seq. */
static uint64_t s_recv_heartbeat(void *sock, zsock_meta_t *meta)
{
    Backstop__Frame *f = NULL;
    wire_err_t err;
    assert_int_equal(zsock_recv(sock, 0, &f, meta, &err), 1);
    assert_int_equal(err, WIRE_OK);
    assert_int_equal(f->body_case, BACKSTOP__FRAME__BODY_HEARTBEAT);
    uint64_t seq = f->heartbeat->seq;
    wire_free(&f);
    return seq;
}

static void test_push_pull_round_trip(void **state)
{
    char *ep;
    void *pull = s_bound(ZMQ_PULL, &ep);
    void *push = s_connected(ZMQ_PUSH, ep);
    Backstop__Frame f;
    Backstop__Heartbeat hb;
    zsock_meta_t meta;

    s_heartbeat(&f, &hb, 42);
    assert_int_equal(zsock_send(push, &f, 0), 0);
    assert_int_equal(s_recv_heartbeat(pull, &meta), 42);
    assert_int_equal(meta.id_len, 0);
    assert_string_equal(meta.topic, "");
    assert_string_equal(meta.user, ""); /* plain mode: nobody authenticated */
    assert_string_equal(meta.peer, "127.0.0.1");
    zsock_close(&push);
    zsock_close(&pull);
    assert_null(pull);
    zsock_close(&pull);
    xfree(ep);
}

static void test_bad_frames_are_dropped_with_reason(void **state)
{
    char *ep;
    void *pull = s_bound(ZMQ_PULL, &ep);
    void *push = s_connected(ZMQ_PUSH, ep);
    static const uint8_t v2[] = {0x08, 0x02, 0x72, 0x06, 0x08, 0x01, 0x10, 0x01, 0x18, 0x01};
    Backstop__Frame *got = (Backstop__Frame *)1;
    wire_err_t err;

    assert_int_equal(zsock_send_raw(push, "\xff\xfe garbage", 10, 0), 0);
    assert_int_equal(zsock_send_raw(push, "", 0, 0), 0);
    assert_int_equal(zsock_send_raw(push, v2, sizeof(v2), 0), 0);
    /* an envelope a PULL never gets */
    assert_int_equal(zmq_send(push, "x", 1, ZMQ_SNDMORE), 1);
    assert_int_equal(zmq_send(push, v2, sizeof(v2), 0), (int)sizeof(v2));
    static const wire_err_t want[] = {WIRE_ERR_GARBAGE, WIRE_ERR_EMPTY, WIRE_ERR_VERSION,
                                      WIRE_ERR_GARBAGE};
    for (size_t i = 0; i < sizeof(want) / sizeof(want[0]); i++) {
        assert_int_equal(zsock_recv(pull, 0, &got, NULL, &err), 0);
        assert_null(got);
        assert_int_equal(err, want[i]);
    }
    /* and nothing else is waiting */
    assert_int_equal(zsock_recv(pull, ZMQ_DONTWAIT, &got, NULL, &err), -1);
    assert_int_equal(errno, EAGAIN);
    zsock_close(&push);
    zsock_close(&pull);
    xfree(ep);
}

/* Waits for the next monitor event in mask; returns it, its value in *value (may be NULL). */
static uint16_t s_monitor_wait(void *mon, uint16_t mask, uint32_t *value)
{
    for (;;) {
        zmq_msg_t m;
        uint16_t event;
        uint32_t v;
        char addr[256];
        zmq_msg_init(&m);
        assert_true(zmq_msg_recv(&m, mon, 0) >= 6);
        memcpy(&event, zmq_msg_data(&m), 2);
        memcpy(&v, (uint8_t *)zmq_msg_data(&m) + 2, 4);
        zmq_msg_close(&m);
        assert_true(zmq_recv(mon, addr, sizeof(addr), 0) >= 0);
        if (event & mask) {
            if (value)
                *value = v;
            return event;
        }
    }
}

static void *s_monitor(void *sock, const char *name, int events)
{
    char ep[64];
    snprintf(ep, sizeof(ep), "inproc://mon-%s", name);
    assert_int_equal(zmq_socket_monitor(sock, ep, events), 0);
    void *mon = zmq_socket(s_ctx, ZMQ_PAIR);
    assert_non_null(mon);
    assert_int_equal(zmq_connect(mon, ep), 0);
    s_rcvtimeo(mon);
    return mon;
}

static void test_oversized_part_never_reaches_receiver(void **state)
{
    char *ep;
    void *pull = s_bound(ZMQ_PULL, &ep);
    void *mon = s_monitor(pull, "oversize", ZMQ_EVENT_DISCONNECTED | ZMQ_EVENT_HANDSHAKE_SUCCEEDED);
    void *push = s_connected(ZMQ_PUSH, ep);
    Backstop__Frame *got = NULL, f;
    Backstop__Heartbeat hb;
    wire_err_t err;

    size_t big = WIRE_MAX_FRAME + 1;
    uint8_t *buf = xcalloc(1, big);
    assert_int_equal(zsock_send_raw(push, buf, big, 0), 0);
    xfree(buf);
    /* the receiver cuts the connection instead of buffering the part */
    assert_int_equal(s_monitor_wait(mon, 0xffff, NULL), ZMQ_EVENT_HANDSHAKE_SUCCEEDED);
    assert_int_equal(s_monitor_wait(mon, 0xffff, NULL), ZMQ_EVENT_DISCONNECTED);
    assert_int_equal(zsock_recv(pull, ZMQ_DONTWAIT, &got, NULL, &err), -1);
    assert_int_equal(errno, EAGAIN);
    /* the sender reconnects; what arrives next is the next frame, not the big one. (A frame
       sent before the sender noticed the break would be lost with the old connection.) */
    assert_int_equal(s_monitor_wait(mon, 0xffff, NULL), ZMQ_EVENT_HANDSHAKE_SUCCEEDED);
    s_heartbeat(&f, &hb, 2);
    assert_int_equal(zsock_send(push, &f, 0), 0);
    assert_int_equal(s_recv_heartbeat(pull, NULL), 2);
    zmq_socket_monitor(pull, NULL, 0);
    zmq_close(mon);
    zsock_close(&push);
    zsock_close(&pull);
    xfree(ep);
}

static void test_largest_frame_passes(void **state)
{
    char *ep;
    void *pull = s_bound(ZMQ_PULL, &ep);
    void *push = s_connected(ZMQ_PUSH, ep);
    Backstop__ControlReply rep = BACKSTOP__CONTROL_REPLY__INIT;
    Backstop__Frame f, *got = NULL;
    wire_err_t err;

    /* grow the JSON until the frame is exactly WIRE_MAX_FRAME bytes */
    size_t n = WIRE_MAX_FRAME - 16;
    rep.json = xmalloc(WIRE_MAX_FRAME);
    memset(rep.json, 'j', n);
    rep.json[n] = '\0';
    wire_frame_init(&f, BACKSTOP__FRAME__BODY_CONTROL_REPLY, &rep);
    while (wire_packed_size(&f) < WIRE_MAX_FRAME) {
        rep.json[n++] = 'j';
        rep.json[n] = '\0';
    }
    assert_int_equal(wire_packed_size(&f), WIRE_MAX_FRAME);
    assert_int_equal(zsock_send(push, &f, 0), 0);
    assert_int_equal(zsock_recv(pull, 0, &got, NULL, &err), 1);
    assert_int_equal(strlen(got->control_reply->json), n);
    wire_free(&got);
    /* one byte more is refused by the sender already */
    rep.json[n++] = 'j';
    rep.json[n] = '\0';
    assert_int_equal(zsock_send(push, &f, ZMQ_DONTWAIT), -1);
    assert_int_equal(errno, EMSGSIZE);
    xfree(rep.json);
    zsock_close(&push);
    zsock_close(&pull);
    xfree(ep);
}

static void test_send_without_peer_does_not_block(void **state)
{
    /* nothing is bound there, in this process or any other (an ipc file that does not exist;
       inproc would queue to a future binder) */
    void *push = s_connected(ZMQ_PUSH, "ipc:///nonexistent/backstop-test/nobody.sock");
    Backstop__Frame f;
    Backstop__Heartbeat hb;
    s_heartbeat(&f, &hb, 1);
    assert_int_equal(zsock_send(push, &f, ZMQ_DONTWAIT), -1);
    assert_int_equal(errno, EAGAIN);
    zsock_close(&push);
}

static void test_full_queue_returns_eagain(void **state)
{
    char *ep;
    void *pull = s_bound(ZMQ_PULL, &ep);
    void *push = s_connected(ZMQ_PUSH, ep);
    Backstop__Frame f;
    Backstop__Heartbeat hb;
    s_heartbeat(&f, &hb, 1);
    /* the first send waits for the connection; after that nobody reads */
    assert_int_equal(zsock_send(push, &f, 0), 0);
    long sent = 1;
    while (zsock_send(push, &f, ZMQ_DONTWAIT) == 0) {
        sent++;
        assert_true(sent < 50L * 1000 * 1000);
    }
    assert_int_equal(errno, EAGAIN);
    /* bounded: the two high-water marks plus what the kernel buffers */
    assert_true(sent >= ZSOCK_HWM_PUSH);
    zsock_close(&push);
    zsock_close(&pull);
    xfree(ep);
}

/* An aggregator that falls behind must not lose its sensors: a PULL whose queue is full
 * stops reading the connection, and a ZMTP heartbeat timeout (3 s) would then reset it,
 * losing what was in flight. A sensor in another process floods 10 kB frames (an event
 * batch's size) while nobody reads for 6 s; afterwards every frame arrives, in order. */
static void test_backpressured_pull_keeps_its_connection(void **state)
{
    enum { FRAME = 10000, FRAMES = 6000 };
    char *ep;
    void *pull = s_bound(ZMQ_PULL, &ep);
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        /* the sensor: its own context (none survives fork), libzmq's defaults */
        void *ctx = zmq_ctx_new();
        void *push = zmq_socket(ctx, ZMQ_PUSH);
        int linger = BOUND_MS, timeout = 4 * BOUND_MS; /* never outlive a failed test */
        zmq_setsockopt(push, ZMQ_LINGER, &linger, sizeof(linger));
        zmq_setsockopt(push, ZMQ_SNDTIMEO, &timeout, sizeof(timeout));
        zmq_connect(push, ep);
        static uint8_t frame[FRAME];
        for (uint64_t seq = 0; seq < FRAMES; seq++) {
            memcpy(frame, &seq, sizeof(seq));
            if (zmq_send(push, frame, sizeof(frame), 0) < 0)
                _exit(1);
        }
        zmq_close(push);
        zmq_ctx_term(ctx);
        _exit(0);
    }
    /* the first frame is there: the flood is under way; then nobody reads */
    static uint8_t got[FRAME + 1];
    assert_int_equal(zmq_recv(pull, got, sizeof(got), 0), FRAME);
    struct timespec stall = {6, 0};
    nanosleep(&stall, NULL);
    for (uint64_t want = 1; want < FRAMES; want++) {
        assert_int_equal(zmq_recv(pull, got, sizeof(got), 0), FRAME);
        uint64_t seq;
        memcpy(&seq, got, sizeof(seq));
        assert_int_equal(seq, want);
    }
    int st;
    assert_int_equal(waitpid(pid, &st, 0), pid);
    assert_true(WIFEXITED(st) && WEXITSTATUS(st) == 0);
    zsock_close(&pull);
    xfree(ep);
}

static void test_site_topic(void **state)
{
    char buf[ZSOCK_TOPIC_MAX];
    char *long_site = xmalloc(WIRE_MAX_ID + 2);
    assert_int_equal(zsock_site_topic(buf, sizeof(buf), "site1"), 0);
    assert_string_equal(buf, "S/site1/");
    assert_int_equal(zsock_site_topic(buf, sizeof(buf), ""), -1);
    assert_int_equal(zsock_site_topic(buf, sizeof(buf), "a/b"), -1);
    memset(long_site, 'x', WIRE_MAX_ID);
    long_site[WIRE_MAX_ID] = '\0';
    assert_int_equal(zsock_site_topic(buf, sizeof(buf), long_site), 0);
    long_site[WIRE_MAX_ID] = 'x';
    long_site[WIRE_MAX_ID + 1] = '\0';
    assert_int_equal(zsock_site_topic(buf, sizeof(buf), long_site), -1);
    xfree(long_site);
}

static void s_update(Backstop__Frame *f, Backstop__DecisionUpdate *u, Backstop__Decision *d,
                     const char *id)
{
    backstop__decision__init(d);
    d->id = (char *)id;
    d->scope = BACKSTOP__SCOPE__SUBJECT;
    d->action = BACKSTOP__ACTION__REJECT;
    d->reach = BACKSTOP__REACH__LOCAL;
    d->origin = BACKSTOP__ORIGIN__RULE;
    backstop__decision_update__init(u);
    u->seq = 1;
    u->epoch = 7;
    u->decision = d;
    wire_frame_init(f, BACKSTOP__FRAME__BODY_UPDATE, u);
}

static void test_pub_sub_site_topic_does_not_match_longer_site(void **state)
{
    char *ep, topic[ZSOCK_TOPIC_MAX], t10[ZSOCK_TOPIC_MAX];
    void *pub = s_bound(ZMQ_PUB, &ep);
    void *sub = s_connected(ZMQ_SUB, ep);
    Backstop__Frame f, *got = NULL;
    Backstop__Heartbeat hb;
    Backstop__DecisionUpdate u;
    Backstop__Decision d;
    zsock_meta_t meta;
    wire_err_t err;

    assert_int_equal(zsock_site_topic(topic, sizeof(topic), "site1"), 0);
    assert_int_equal(zsock_site_topic(t10, sizeof(t10), "site10"), 0);
    assert_int_equal(zsock_subscribe(sub, ZSOCK_TOPIC_FLEET), 0);
    assert_int_equal(zsock_subscribe(sub, topic), 0);
    assert_int_equal(zsock_subscribe(sub, ZSOCK_TOPIC_HEARTBEAT), 0);

    /* subscriptions travel asynchronously but in order: once a heartbeat (subscribed last)
       arrives, the publisher has the other two as well (PROTOCOL.md 4.2) */
    zmq_pollitem_t item = {sub, 0, ZMQ_POLLIN, 0};
    int tries = 0;
    for (;;) {
        s_heartbeat(&f, &hb, 0);
        assert_int_equal(zsock_publish(pub, ZSOCK_TOPIC_HEARTBEAT, &f, ZMQ_DONTWAIT), 0);
        if (zmq_poll(&item, 1, 10) == 1)
            break;
        assert_true(++tries < BOUND_MS / 10);
    }
    s_update(&f, &u, &d, "for-site10");
    assert_int_equal(zsock_publish(pub, t10, &f, 0), 0);
    s_update(&f, &u, &d, "for-site1");
    assert_int_equal(zsock_publish(pub, topic, &f, 0), 0);
    s_update(&f, &u, &d, "for-fleet");
    assert_int_equal(zsock_publish(pub, ZSOCK_TOPIC_FLEET, &f, 0), 0);
    s_heartbeat(&f, &hb, 999);
    assert_int_equal(zsock_publish(pub, ZSOCK_TOPIC_HEARTBEAT, &f, 0), 0);

    /* one publisher, one connection: order is kept, so the end marker comes last */
    char seen[256] = "";
    for (;;) {
        assert_int_equal(zsock_recv(sub, 0, &got, &meta, &err), 1);
        if (got->body_case == BACKSTOP__FRAME__BODY_HEARTBEAT) {
            assert_string_equal(meta.topic, "H");
            uint64_t seq = got->heartbeat->seq;
            wire_free(&got);
            if (seq == 999)
                break;
            continue;
        }
        strcat(seen, meta.topic);
        strcat(seen, "=");
        strcat(seen, got->update->decision->id);
        strcat(seen, " ");
        wire_free(&got);
    }
    assert_string_equal(seen, "S/site1/=for-site1 F=for-fleet ");
    zsock_close(&sub);
    zsock_close(&pub);
    xfree(ep);
}

static void s_snapshot_request(Backstop__Frame *f, Backstop__SnapshotRequest *r)
{
    backstop__snapshot_request__init(r);
    r->site = "site1";
    r->sensor = "mx1";
    wire_frame_init(f, BACKSTOP__FRAME__BODY_SNAPSHOT_REQUEST, r);
}

static void test_router_replies_to_dealer_and_req(void **state)
{
    char *ep;
    void *router = s_bound(ZMQ_ROUTER, &ep);
    int types[] = {ZMQ_DEALER, ZMQ_REQ};
    for (size_t i = 0; i < 2; i++) {
        void *client = s_connected(types[i], ep);
        Backstop__Frame f, *got = NULL;
        Backstop__SnapshotRequest req;
        Backstop__Heartbeat hb;
        zsock_meta_t meta;
        wire_err_t err;

        s_snapshot_request(&f, &req);
        assert_int_equal(zsock_send(client, &f, 0), 0);
        assert_int_equal(zsock_recv(router, 0, &got, &meta, &err), 1);
        assert_int_equal(got->body_case, BACKSTOP__FRAME__BODY_SNAPSHOT_REQUEST);
        assert_string_equal(got->snapshot_request->site, "site1");
        assert_true(meta.id_len > 0);
        wire_free(&got);
        s_heartbeat(&f, &hb, 5);
        assert_int_equal(zsock_reply(router, &meta, &f, ZMQ_DONTWAIT), 0);
        assert_int_equal(s_recv_heartbeat(client, NULL), 5);
        zsock_close(&client);
    }
    /* a reply to a peer that is gone fails at once */
    zsock_meta_t gone = {.id = {0, 1, 2, 3}, .id_len = 4};
    Backstop__Frame f;
    Backstop__Heartbeat hb;
    s_heartbeat(&f, &hb, 6);
    assert_int_equal(zsock_reply(router, &gone, &f, ZMQ_DONTWAIT), -1);
    assert_int_equal(errno, EHOSTUNREACH);
    zsock_close(&router);
    xfree(ep);
}

static void test_endpoint_is_local(void **state)
{
    static const struct {
        const char *ep;
        int local;
    } cases[] = {
        {"tcp://127.0.0.1:7000", 1},
        {"tcp://127.8.9.10:*", 1},
        {"tcp://[::1]:7000", 1},
        {"tcp://localhost:7000", 1},
        {"ipc:///run/x.sock", 1},
        {"inproc://x", 1},
        {"tcp://*:7000", 0},
        {"tcp://0.0.0.0:7000", 0},
        {"tcp://192.0.2.1:7000", 0},
        {"tcp://[2001:db8::1]:70", 0},
        {"tcp://[::]:70", 0},
        {"tcp://eth0:7000", 0},
        {"pgm://x", 0},
        {"tcp://128.0.0.1:1", 0},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++)
        if (zsock_endpoint_is_local(cases[i].ep) != cases[i].local)
            fail_msg("%s: want %d", cases[i].ep, cases[i].local);
}

/* ---- CURVE and ZAP ---- */

/* The registered site keys of a test. */
typedef struct {
    const char *public_key; /* the one registered key */
    const char *site;       /* its site */
} registry_t;

static const char *s_lookup(void *arg, const char *key)
{
    const registry_t *reg = arg;
    return strcmp(key, reg->public_key) == 0 ? reg->site : NULL;
}

/* Which two bind endpoints take one address (the second bind would fail). */
static void test_bind_clash(void **state)
{
    static const struct {
        const char *a, *b;
        int clash;
    } cases[] = {
        {"tcp://127.0.0.1:5570", "tcp://127.0.0.1:5570", 1},
        {"tcp://127.0.0.1:5570", "tcp://127.0.0.1:5571", 0},
        {"tcp://127.0.0.1:5570", "tcp://127.0.0.2:5570", 0},
        {"tcp://*:5570", "tcp://192.0.2.1:5570", 1},
        {"tcp://10.0.0.1:5570", "tcp://0.0.0.0:5570", 1},
        {"tcp://[::]:5570", "tcp://127.0.0.1:5570", 1},
        {"tcp://[::1]:5570", "tcp://::1:5570", 1},
        {"tcp://localhost:5570", "tcp://127.0.0.1:5570", 1},
        {"tcp://LOCALHOST:5570", "tcp://127.0.0.1:05570", 1},
        {"tcp://eth0:5570", "tcp://eth0:5570", 1},
        {"tcp://eth0:5570", "tcp://192.0.2.1:5570", 0}, /* names are not resolved */
        {"tcp://127.0.0.1:0", "tcp://127.0.0.1:0", 0},  /* the system picks */
        {"tcp://127.0.0.1:*", "tcp://*:*", 0},
        {"ipc:///run/a.sock", "ipc:///run/a.sock", 1},
        {"ipc:///run/a.sock", "ipc:///run/b.sock", 0},
        {"ipc:///run/a.sock", "tcp://127.0.0.1:5570", 0},
        {"inproc://x", "inproc://x", 1},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        if (zsock_bind_clash(cases[i].a, cases[i].b) != cases[i].clash ||
            zsock_bind_clash(cases[i].b, cases[i].a) != cases[i].clash)
            fail_msg("%s and %s: want clash=%d", cases[i].a, cases[i].b, cases[i].clash);
    }
}

static void test_curve_registered_key_in_unknown_key_out(void **state)
{
    if (!zsock_has_curve())
        skip();
    zsock_keys_t server, known, unknown;
    assert_int_equal(zsock_keys_generate(&server), 0);
    assert_int_equal(zsock_keys_generate(&known), 0);
    assert_int_equal(zsock_keys_generate(&unknown), 0);
    registry_t reg = {known.public_key, "site1"};
    zsock_zap_t *zap = zsock_zap_new(s_ctx, s_lookup, &reg);
    assert_non_null(zap);
    /* one handler per context */
    assert_null(zsock_zap_new(s_ctx, s_lookup, &reg));

    void *pull = zsock_new(s_ctx, ZMQ_PULL);
    assert_int_equal(zsock_curve_server(pull, &server), 0);
    void *mon = s_monitor(pull, "curve", ZMQ_EVENT_HANDSHAKE_FAILED_AUTH);
    assert_int_equal(zsock_bind(pull, "tcp://127.0.0.1:*", 0, (gid_t)-1), 0);
    char *ep = zsock_bound_endpoint(pull);

    /* the unknown key: ZAP says 400, the handshake fails, nothing gets through */
    void *intruder = zsock_new(s_ctx, ZMQ_PUSH);
    assert_int_equal(zsock_curve_client(intruder, &unknown, server.public_key), 0);
    assert_int_equal(zsock_connect(intruder, ep), 0);
    zmq_pollitem_t items[] = {{zsock_zap_socket(zap), 0, ZMQ_POLLIN, 0}, {mon, 0, ZMQ_POLLIN, 0}};
    for (;;) {
        assert_true(zmq_poll(items, 2, BOUND_MS) > 0);
        if (items[0].revents & ZMQ_POLLIN)
            assert_true(zsock_zap_handle(zap) >= 0);
        if (items[1].revents & ZMQ_POLLIN) {
            uint32_t status = 0;
            s_monitor_wait(mon, ZMQ_EVENT_HANDSHAKE_FAILED_AUTH, &status);
            assert_int_equal(status, 400);
            break;
        }
    }
    assert_true(zsock_zap_refused(zap) >= 1);
    assert_int_equal(zsock_zap_accepted(zap), 0);
    Backstop__Frame f, *got = NULL;
    Backstop__Heartbeat hb;
    zsock_meta_t meta;
    wire_err_t err;
    s_heartbeat(&f, &hb, 13);
    assert_int_equal(zsock_send(intruder, &f, ZMQ_DONTWAIT), -1);
    assert_int_equal(errno, EAGAIN);
    assert_int_equal(zsock_recv(pull, ZMQ_DONTWAIT, &got, NULL, &err), -1);

    /* the registered key: accepted, and every message names its site */
    void *sensor = zsock_new(s_ctx, ZMQ_PUSH);
    assert_int_equal(zsock_curve_client(sensor, &known, server.public_key), 0);
    assert_int_equal(zsock_connect(sensor, ep), 0);
    s_heartbeat(&f, &hb, 14);
    zmq_pollitem_t loop[] = {{zsock_zap_socket(zap), 0, ZMQ_POLLIN, 0}, {pull, 0, ZMQ_POLLIN, 0}};
    int sent = 0, tries = 0;
    for (;;) {
        /* this thread is also the ZAP handler, so the sender must not block */
        if (!sent)
            sent = zsock_send(sensor, &f, ZMQ_DONTWAIT) == 0;
        assert_true(zmq_poll(loop, 2, sent ? BOUND_MS : 10) >= 0);
        if (loop[0].revents & ZMQ_POLLIN)
            assert_true(zsock_zap_handle(zap) >= 0);
        if (loop[1].revents & ZMQ_POLLIN)
            break;
        assert_true(++tries < BOUND_MS);
    }
    assert_int_equal(zsock_recv(pull, 0, &got, &meta, &err), 1);
    assert_int_equal(got->heartbeat->seq, 14);
    assert_string_equal(meta.user, "site1");
    assert_int_equal(zsock_zap_accepted(zap), 1);
    wire_free(&got);

    zmq_socket_monitor(pull, NULL, 0);
    zmq_close(mon);
    zsock_close(&sensor);
    zsock_close(&intruder);
    zsock_close(&pull);
    zsock_zap_destroy(&zap);
    assert_null(zap);
    zsock_zap_destroy(&zap);
    xfree(ep);
}

/* Sends a ZAP request of n parts and returns the reply's status code and user id. */
static void s_zap_ask(void *req, zsock_zap_t *zap, const char *const *parts, const size_t *lens,
                      int n, char *code, char *user)
{
    for (int i = 0; i < n; i++)
        assert_true(zmq_send(req, parts[i], lens[i], i + 1 < n ? ZMQ_SNDMORE : 0) >= 0);
    zmq_pollitem_t item = {zsock_zap_socket(zap), 0, ZMQ_POLLIN, 0};
    assert_int_equal(zmq_poll(&item, 1, BOUND_MS), 1);
    assert_int_equal(zsock_zap_handle(zap), 1);
    char part[64];
    int more = 1, idx = 0;
    while (more) {
        int len = zmq_recv(req, part, sizeof(part) - 1, 0);
        assert_true(len >= 0);
        part[len] = '\0';
        if (idx == 2)
            strcpy(code, part);
        if (idx == 4)
            strcpy(user, part);
        size_t sz = sizeof(more);
        assert_int_equal(zmq_getsockopt(req, ZMQ_RCVMORE, &more, &sz), 0);
        idx++;
    }
    assert_int_equal(idx, 6);
}

static void test_zap_answers_every_request(void **state)
{
    uint8_t key[32];
    char z85[ZSOCK_Z85_LEN + 1];
    for (int i = 0; i < 32; i++)
        key[i] = (uint8_t)(i * 7);
    assert_non_null(zmq_z85_encode(z85, key, 32));
    registry_t reg = {z85, "site7"};
    zsock_zap_t *zap = zsock_zap_new(s_ctx, s_lookup, &reg);
    assert_non_null(zap);
    void *req = zmq_socket(s_ctx, ZMQ_REQ);
    assert_int_equal(zmq_connect(req, "inproc://zeromq.zap.01"), 0);
    s_rcvtimeo(req);
    char code[64], user[64];
    uint8_t other[32] = {1};

    const char *curve[] = {"1.0", "r1", "backstop", "127.0.0.1", "", "CURVE", (char *)key};
    size_t curve_len[] = {3, 2, 8, 9, 0, 5, 32};
    s_zap_ask(req, zap, curve, curve_len, 7, code, user);
    assert_string_equal(code, "200");
    assert_string_equal(user, "site7");

    curve[6] = (char *)other;
    s_zap_ask(req, zap, curve, curve_len, 7, code, user);
    assert_string_equal(code, "400");
    assert_string_equal(user, "");

    const char *null_mech[] = {"1.0", "r2", "backstop", "127.0.0.1", "", "NULL"};
    size_t null_len[] = {3, 2, 8, 9, 0, 4};
    s_zap_ask(req, zap, null_mech, null_len, 6, code, user);
    assert_string_equal(code, "400");

    const char *bad_version[] = {"2.0", "r3", "backstop", "127.0.0.1", "", "CURVE", (char *)key};
    s_zap_ask(req, zap, bad_version, curve_len, 7, code, user);
    assert_string_equal(code, "500");

    const char *short_req[] = {"1.0", "r4"};
    size_t short_len[] = {3, 2};
    s_zap_ask(req, zap, short_req, short_len, 2, code, user);
    assert_string_equal(code, "500");

    assert_int_equal(zsock_zap_accepted(zap), 1);
    assert_int_equal(zsock_zap_refused(zap), 4);
    /* nothing pending: handle returns at once */
    assert_int_equal(zsock_zap_handle(zap), 0);
    zmq_close(req);
    zsock_zap_destroy(&zap);
}

/* Lines of the log captured in fp that hold needle. */
static int s_lines_with(FILE *fp, const char *needle)
{
    char line[1024];
    int n = 0;
    rewind(fp);
    while (fgets(line, sizeof(line), fp))
        n += strstr(line, needle) != NULL;
    return n;
}

/* One refused CURVE request for the key whose bytes are all b. */
static void s_zap_refuse(void *req, zsock_zap_t *zap, uint8_t b)
{
    uint8_t key[32];
    char code[64], user[64];
    memset(key, b, sizeof(key));
    const char *curve[] = {"1.0", "r", "backstop", "192.0.2.9", "", "CURVE", (char *)key};
    size_t curve_len[] = {3, 1, 8, 9, 0, 5, 32};
    s_zap_ask(req, zap, curve, curve_len, 7, code, user);
    assert_string_equal(code, "400");
}

/* A key refused again and again (a sensor with a revoked key retries every second) is
 * logged once a minute with the refusals since its last line, and a flood of distinct
 * keys beyond the table shares one line a minute: no one can fill the log. */
static void test_zap_refusals_are_logged_once_a_minute_a_key(void **state)
{
    registry_t reg = {"", "site7"};
    bs_clock_t *clock = bs_clock_fake_new(1000000);
    zsock_zap_t *zap = zsock_zap_new(s_ctx, s_lookup, &reg);
    assert_non_null(zap);
    zsock_zap_set_clock(zap, clock);
    void *req = zmq_socket(s_ctx, ZMQ_REQ);
    assert_int_equal(zmq_connect(req, "inproc://zeromq.zap.01"), 0);
    s_rcvtimeo(req);
    FILE *log = tmpfile();
    assert_non_null(log);
    msg_set_fd(fileno(log));
    char z85[ZSOCK_Z85_LEN + 1], want[128];
    uint8_t key[32];
    memset(key, 1, sizeof(key));
    assert_non_null(zmq_z85_encode(z85, key, 32));

    /* 30 attempts in 30 s: one line, at the first */
    for (int i = 0; i < 30; i++) {
        s_zap_refuse(req, zap, 1);
        bs_clock_fake_advance(clock, 1000);
    }
    assert_int_equal(s_lines_with(log, "zsock: zap: refused"), 1);
    snprintf(want, sizeof(want), "refused client_key=%s address=192.0.2.9 refusals=1: unknown key",
             z85);
    assert_int_equal(s_lines_with(log, want), 1);
    /* a minute after that line, the next attempt says the 29 in between too */
    bs_clock_fake_advance(clock, ZSOCK_ZAP_LOG_MS - 30000);
    s_zap_refuse(req, zap, 1);
    snprintf(want, sizeof(want), "refused client_key=%s address=192.0.2.9 refusals=30:", z85);
    assert_int_equal(s_lines_with(log, want), 1);
    assert_int_equal(s_lines_with(log, "zsock: zap: refused"), 2);

    /* 100 distinct keys, each twice, in a minute: one line each for the table's other
     * slots, one for all the rest */
    for (int round = 0; round < 2; round++)
        for (int b = 2; b < 102; b++)
            s_zap_refuse(req, zap, (uint8_t)b);
    assert_int_equal(s_lines_with(log, "zsock: zap: refused"), 2 + ZSOCK_ZAP_LOG_KEYS - 1 + 1);
    assert_int_equal(s_lines_with(log, "keys=others"), 1);
    assert_int_equal(zsock_zap_refused(zap), 31 + 200);

    /* a minute on, a new key takes the slot of one whose line is due (the first, key 1's):
     * the refusal of the old key not said yet is said then */
    s_zap_refuse(req, zap, 1);
    bs_clock_fake_advance(clock, ZSOCK_ZAP_LOG_MS);
    s_zap_refuse(req, zap, 200);
    memset(key, 1, sizeof(key));
    assert_non_null(zmq_z85_encode(z85, key, 32));
    snprintf(want, sizeof(want), "refused client_key=%s address=192.0.2.9 refusals=1:", z85);
    assert_int_equal(s_lines_with(log, want), 2);
    memset(key, 200, sizeof(key));
    assert_non_null(zmq_z85_encode(z85, key, 32));
    snprintf(want, sizeof(want), "refused client_key=%s address=192.0.2.9 refusals=1:", z85);
    assert_int_equal(s_lines_with(log, want), 1);

    msg_set_fd(-1);
    fclose(log);
    zmq_close(req);
    zsock_zap_destroy(&zap);
    bs_clock_destroy(&clock);
}

/* ---- key files and ipc ---- */

static int s_rm(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
    return remove(path);
}

static void s_write(const char *path, const char *text, mode_t mode)
{
    int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, mode);
    assert_true(fd >= 0);
    assert_int_equal(write(fd, text, strlen(text)), (ssize_t)strlen(text));
    assert_int_equal(fchmod(fd, mode), 0);
    close(fd);
}

static void test_key_files(void **state)
{
    if (!zsock_has_curve())
        skip();
    char dir[] = "/tmp/test_zsock.XXXXXX";
    assert_non_null(mkdtemp(dir));
    int logfd = open("/dev/null", O_WRONLY);
    msg_set_fd(logfd);
    zsock_keys_t keys, other, got;
    struct stat st;
    assert_int_equal(zsock_keys_generate(&keys), 0);
    assert_int_equal(zsock_keys_generate(&other), 0);
    assert_true(zsock_key_valid(keys.public_key));
    assert_true(zsock_key_valid(keys.secret_key));

    char *pair = xasprintf("%s/site1.key", dir), *pub = xasprintf("%s/server.pub", dir);
    assert_int_equal(zsock_keys_save(pair, &keys, 1), 0);
    assert_int_equal(stat(pair, &st), 0);
    assert_int_equal(st.st_mode & 0777, 0600);
    assert_int_equal(zsock_keys_load(pair, &got), 0);
    assert_string_equal(got.public_key, keys.public_key);
    assert_string_equal(got.secret_key, keys.secret_key);
    /* never overwritten; the caller says why (EEXIST), once: no line of its own */
    assert_int_equal(zsock_keys_save(pair, &other, 1), -1);
    assert_int_equal(errno, EEXIST);

    assert_int_equal(zsock_keys_save(pub, &keys, 0), 0);
    assert_int_equal(stat(pub, &st), 0);
    assert_int_equal(st.st_mode & 0777, 0644);
    assert_int_equal(zsock_keys_load(pub, &got), 0);
    assert_string_equal(got.public_key, keys.public_key);
    assert_string_equal(got.secret_key, "");

    /* a secret others can read is refused */
    assert_int_equal(chmod(pair, 0640), 0);
    assert_int_equal(zsock_keys_load(pair, &got), -1);
    assert_string_equal(got.public_key, "");

    char *bad = xasprintf("%s/bad.key", dir);
    char *text;
    char *cases[] = {
        xasprintf("secret = %s\n", keys.secret_key),                                /* no public */
        xasprintf("public = %s\nsecret = short\n", keys.public_key),                /* not a key */
        xasprintf("public = %s\nprivate = %s\n", keys.public_key, keys.secret_key), /* name */
        xasprintf("public %s\n", keys.public_key),                                  /* no '=' */
        xasprintf("public = %s\nsecret = %s\n", keys.public_key, other.secret_key), /* pair */
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        s_write(bad, cases[i], 0600);
        if (zsock_keys_load(bad, &got) != -1)
            fail_msg("case %zu loaded: %s", i, cases[i]);
        xfree(cases[i]);
    }
    text =
        xasprintf("# comment\n\n  public =\t%s  \r\nsecret=%s\n", keys.public_key, keys.secret_key);
    s_write(bad, text, 0600);
    assert_int_equal(zsock_keys_load(bad, &got), 0);
    xfree(text);
    assert_int_equal(zsock_keys_load(dir, &got), -1);
    char *missing = xasprintf("%s/missing", dir);
    assert_int_equal(zsock_keys_load(missing, &got), -1);

    msg_set_fd(-1);
    close(logfd);
    xfree(missing), xfree(bad), xfree(pair), xfree(pub);
    nftw(dir, s_rm, 8, FTW_DEPTH | FTW_PHYS);
}

static void test_ipc_socket_gets_its_mode(void **state)
{
    char dir[] = "/tmp/test_zsock.XXXXXX";
    assert_non_null(mkdtemp(dir));
    char *path = xasprintf("%s/control.sock", dir);
    char *ep = xasprintf("ipc://%s", path);
    void *router = zsock_new(s_ctx, ZMQ_ROUTER);
    struct stat st;
    assert_int_equal(zsock_bind(router, ep, 0660, (gid_t)-1), 0);
    assert_int_equal(stat(path, &st), 0);
    assert_true(S_ISSOCK(st.st_mode));
    assert_int_equal(st.st_mode & 0777, 0660);

    /* and it works: a REQ client round trip */
    s_rcvtimeo(router);
    void *req = s_connected(ZMQ_REQ, ep);
    Backstop__Frame f, *got = NULL;
    Backstop__SnapshotRequest r;
    Backstop__Heartbeat hb;
    zsock_meta_t meta;
    s_snapshot_request(&f, &r);
    assert_int_equal(zsock_send(req, &f, 0), 0);
    assert_int_equal(zsock_recv(router, 0, &got, &meta, NULL), 1);
    wire_free(&got);
    s_heartbeat(&f, &hb, 3);
    assert_int_equal(zsock_reply(router, &meta, &f, 0), 0);
    assert_int_equal(s_recv_heartbeat(req, NULL), 3);
    zsock_close(&req);
    zsock_close(&router);
    xfree(ep), xfree(path);
    nftw(dir, s_rm, 8, FTW_DEPTH | FTW_PHYS);
}

/* An ipc path a live socket listens on is refused (libzmq would unlink it and take the
 * name from its owner), as is a path that is no socket; a stale socket file, which no one
 * listens on any more, is replaced. */
static void test_ipc_bind_refuses_a_live_socket(void **state)
{
    char dir[] = "/tmp/test_zsock.XXXXXX";
    assert_non_null(mkdtemp(dir));
    int logfd = open("/dev/null", O_WRONLY);
    msg_set_fd(logfd);
    char *path = xasprintf("%s/control.sock", dir);
    char *ep = xasprintf("ipc://%s", path);
    /* the first in a context of its own: terminating it waits until its listener is closed */
    void *ctx = zmq_ctx_new();
    void *first = zsock_new(ctx, ZMQ_ROUTER), *second = zsock_new(s_ctx, ZMQ_ROUTER);
    struct stat before, after;
    assert_int_equal(zsock_bind(first, ep, 0660, (gid_t)-1), 0);
    assert_int_equal(stat(path, &before), 0);
    assert_int_equal(zsock_bind(second, ep, 0660, (gid_t)-1), -1);
    assert_int_equal(errno, EADDRINUSE);
    assert_int_equal(stat(path, &after), 0);
    assert_true(after.st_ino == before.st_ino); /* the first one's file, untouched */

    /* the first closes without removing its file (as after a crash): stale, replaced */
    zsock_close(&first);
    zmq_ctx_term(ctx);
    assert_int_equal(stat(path, &after), 0);
    assert_int_equal(zsock_bind(second, ep, 0660, (gid_t)-1), 0);
    assert_int_equal(stat(path, &after), 0);
    assert_true(S_ISSOCK(after.st_mode));
    zsock_close(&second);

    /* a file that is no socket is no one's to unlink */
    char *plain = xasprintf("%s/plain", dir), *plain_ep = xasprintf("ipc://%s", plain);
    int fd = open(plain, O_WRONLY | O_CREAT, 0600);
    assert_true(fd >= 0);
    close(fd);
    void *third = zsock_new(s_ctx, ZMQ_ROUTER);
    assert_int_equal(zsock_bind(third, plain_ep, 0660, (gid_t)-1), -1);
    assert_int_equal(stat(plain, &after), 0);
    assert_true(S_ISREG(after.st_mode));
    zsock_close(&third);
    msg_set_fd(-1);
    close(logfd);
    xfree(plain), xfree(plain_ep), xfree(ep), xfree(path);
    nftw(dir, s_rm, 8, FTW_DEPTH | FTW_PHYS);
}

/* At stop, a socket file is removed only while its path still names the file bound: one
 * another process bound since is left alone. */
static void test_ipc_remove_leaves_a_file_not_ours(void **state)
{
    char dir[] = "/tmp/test_zsock.XXXXXX";
    assert_non_null(mkdtemp(dir));
    char *path = xasprintf("%s/control.sock", dir), *moved = xasprintf("%s/old.sock", dir);
    char *ep = xasprintf("ipc://%s", path);
    void *ours = zsock_new(s_ctx, ZMQ_ROUTER), *theirs = zsock_new(s_ctx, ZMQ_ROUTER);
    zsock_ipc_file_t mine, none;
    assert_int_equal(zsock_bind(ours, ep, 0660, (gid_t)-1), 0);
    zsock_ipc_file(ep, &mine);
    assert_true(mine.ino != 0);
    zsock_ipc_file("tcp://127.0.0.1:5570", &none);
    assert_true(none.ino == 0);
    assert_int_equal(zsock_ipc_remove("tcp://127.0.0.1:5570", &none), 0);

    /* ours moved away, another bound the path: its file stays */
    assert_int_equal(rename(path, moved), 0);
    assert_int_equal(zsock_bind(theirs, ep, 0660, (gid_t)-1), 0);
    assert_int_equal(zsock_ipc_remove(ep, &mine), 0);
    assert_int_equal(access(path, F_OK), 0);

    /* its own file, it removes */
    zsock_ipc_file_t their_file;
    zsock_ipc_file(ep, &their_file);
    assert_int_equal(zsock_ipc_remove(ep, &their_file), 1);
    assert_int_equal(access(path, F_OK), -1);
    zsock_close(&ours);
    zsock_close(&theirs);
    xfree(ep), xfree(path), xfree(moved);
    nftw(dir, s_rm, 8, FTW_DEPTH | FTW_PHYS);
}

static int s_getint(void *sock, int opt)
{
    int v = -1;
    size_t len = sizeof(v);
    assert_int_equal(zmq_getsockopt(sock, opt, &v, &len), 0);
    return v;
}

/* ZMTP heartbeats only where a queue cannot stall its reader (the request sockets): not on
 * the events channel nor the decision feed, where the feed's own heartbeat is the liveness
 * check (libzmq 4.3.4 can abort when a ZMTP timeout resets a slow subscriber). Every socket
 * keeps TCP keepalive. */
static void test_heartbeats_only_on_request_sockets(void **state)
{
    static const struct {
        int type;      /* socket type */
        int heartbeat; /* ZMQ_HEARTBEAT_IVL expected */
    } cases[] = {
        {ZMQ_PUSH, 0},
        {ZMQ_PULL, 0},
        {ZMQ_PUB, 0},
        {ZMQ_SUB, 0},
        {ZMQ_DEALER, ZSOCK_HEARTBEAT_MS},
        {ZMQ_ROUTER, ZSOCK_HEARTBEAT_MS},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        void *s = zsock_new(s_ctx, cases[i].type);
        assert_non_null(s);
        if (s_getint(s, ZMQ_HEARTBEAT_IVL) != cases[i].heartbeat)
            fail_msg("case %zu: heartbeat_ivl %d, want %d", i, s_getint(s, ZMQ_HEARTBEAT_IVL),
                     cases[i].heartbeat);
        assert_int_equal(s_getint(s, ZMQ_TCP_KEEPALIVE), 1);
        assert_int_equal(s_getint(s, ZMQ_TCP_KEEPALIVE_IDLE), ZSOCK_KEEPALIVE_IDLE_S);
        zsock_close(&s);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_push_pull_round_trip),
        cmocka_unit_test(test_heartbeats_only_on_request_sockets),
        cmocka_unit_test(test_bad_frames_are_dropped_with_reason),
        cmocka_unit_test(test_oversized_part_never_reaches_receiver),
        cmocka_unit_test(test_largest_frame_passes),
        cmocka_unit_test(test_send_without_peer_does_not_block),
        cmocka_unit_test(test_full_queue_returns_eagain),
        cmocka_unit_test(test_backpressured_pull_keeps_its_connection),
        cmocka_unit_test(test_site_topic),
        cmocka_unit_test(test_pub_sub_site_topic_does_not_match_longer_site),
        cmocka_unit_test(test_router_replies_to_dealer_and_req),
        cmocka_unit_test(test_endpoint_is_local),
        cmocka_unit_test(test_bind_clash),
        cmocka_unit_test(test_curve_registered_key_in_unknown_key_out),
        cmocka_unit_test(test_zap_answers_every_request),
        cmocka_unit_test(test_zap_refusals_are_logged_once_a_minute_a_key),
        cmocka_unit_test(test_key_files),
        cmocka_unit_test(test_ipc_socket_gets_its_mode),
        cmocka_unit_test(test_ipc_bind_refuses_a_live_socket),
        cmocka_unit_test(test_ipc_remove_leaves_a_file_not_ours),
    };
    return cmocka_run_group_tests(tests, s_group_setup, s_group_teardown);
}
