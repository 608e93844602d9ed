/*
 * fuzz_envelope - libFuzzer target: the multipart envelope zsock_recv_in() takes apart
 *
 * Every other target hands its frame to wire_unpack() directly; this one sends
 * whole multipart messages through real ZeroMQ sockets (inproc, in one
 * context made on the first run) and receives them with zsock_recv_in(), so
 * the envelope parsing in front of wire_unpack_in() is what is under test:
 * routing ids, empty delimiters, topic parts (prefixes such as "Fxyz" that a
 * subscription to "F" lets through), parts too long for meta, and parts too
 * many.
 *
 * The input's first byte chooses the receiver and how it is called:
 *   bits 0-1  the socket pair: a DEALER (routing id "fuzz-dealer") to a
 *             ROUTER (the aggregator's snapshot and control sockets), a PUB
 *             to a SUB subscribed to "F", "H" and "S/site-a/" (a sensor's
 *             decision feed), a PUSH to a PULL (the aggregator's events), or a
 *             DEALER to a DEALER (a sensor's snapshot replies)
 *   bit 2     unpack into a wire arena (wire_unpack_in) rather than the heap
 *   bit 3     meta NULL (zsock_recv_in's own)
 * The rest is a sequence of parts, each one selector byte, a 16-bit big-endian
 * length and that many bytes (fewer when the input ends first); a part whose
 * selector has bit 7 set ends a message, as does the input's end. At most
 * S_MAX_MSGS messages of S_MAX_PARTS parts; an input with no part sends one
 * empty part. All messages are sent first, then each is received in turn.
 *
 * Checked (the oracle; __builtin_trap() on a violation), against a model of
 * the envelope rule zsock.c applies to what the receiver gets (the ROUTER
 * prepends the routing id; the SUB gets only messages whose first part starts
 * with a subscription): every part before the last is envelope; an empty one
 * is a delimiter, a first one is the routing id on a ROUTER (at most 256
 * bytes) or the topic on a SUB (at most ZSOCK_TOPIC_MAX - 1 bytes), anything
 * else is garbage, as are more than two envelope parts and a SUB message
 * whose topic is empty (or starts with a NUL). A garbage envelope returns 0
 * with WIRE_ERR_GARBAGE and no frame; otherwise zsock_recv_in() returns what
 * wire_unpack() says of the last part (1 and a frame, or 0 and the same
 * error). meta carries the routing id (ROUTER) or the topic (SUB, up to its
 * first NUL) of an accepted message, and no User-Id or Peer-Address (inproc).
 * A message the SUB filters out never arrives (the next one comes instead);
 * every message is consumed whole, so after the last one the receiver has
 * nothing left (-1, EAGAIN). A timer interrupts the calls with a signal every
 * 200 us (fuzz_interrupt_every): a part taken, or sent, is never half a message.
 */
#include <errno.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <zmq.h>

#include "wire.h"
#include "xalloc.h"
#include "zsock.h"
#include "fuzz_lib.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define S_MAX_MSGS   8
#define S_MAX_PARTS  16
#define S_ROUTING_ID "fuzz-dealer"

enum { S_ROUTER, S_SUB, S_PULL, S_DEALER, S_PAIRS };

static const char *const s_subs[] = {ZSOCK_TOPIC_FLEET, ZSOCK_TOPIC_HEARTBEAT, "S/site-a/"};

static void *s_ctx;
static void *s_tx[S_PAIRS], *s_rx[S_PAIRS];
static wire_arena_t *s_arena;

/* what the reads add up to: kept so that they are not optimised away */
static volatile size_t s_sink;

static void s_cleanup(void)
{
    fuzz_interrupt_stop();
    for (int i = 0; i < S_PAIRS; i++) {
        zsock_close(&s_tx[i]);
        zsock_close(&s_rx[i]);
    }
    wire_arena_destroy(&s_arena);
    zmq_ctx_term(s_ctx);
}

static void s_pair(int i, int txtype, int rxtype, const char *endpoint)
{
    s_tx[i] = zsock_new(s_ctx, txtype);
    s_rx[i] = zsock_new(s_ctx, rxtype);
    if (!s_tx[i] || !s_rx[i])
        abort();
    /* ZMQ_IMMEDIATE (DEALER, PUSH) would refuse to queue before the connection is up: the
     * receiver binds first, and inproc connects at once */
    if (i == S_ROUTER &&
        zmq_setsockopt(s_tx[i], ZMQ_ROUTING_ID, S_ROUTING_ID, strlen(S_ROUTING_ID)) < 0)
        abort();
    if (zmq_bind(s_rx[i], endpoint) < 0 || zmq_connect(s_tx[i], endpoint) < 0)
        abort();
}

static void s_init(void)
{
    fuzz_quiet();
    s_ctx = zmq_ctx_new();
    if (!s_ctx)
        abort();
    s_pair(S_ROUTER, ZMQ_DEALER, ZMQ_ROUTER, "inproc://fuzz-router");
    s_pair(S_SUB, ZMQ_PUB, ZMQ_SUB, "inproc://fuzz-sub");
    s_pair(S_PULL, ZMQ_PUSH, ZMQ_PULL, "inproc://fuzz-pull");
    s_pair(S_DEALER, ZMQ_DEALER, ZMQ_DEALER, "inproc://fuzz-dealer");
    for (size_t i = 0; i < sizeof(s_subs) / sizeof(s_subs[0]); i++)
        if (zsock_subscribe(s_rx[S_SUB], s_subs[i]) < 0)
            abort();
    /* the PUB must have the subscriptions before the first message: send heartbeats on "H"
     * until one arrives */
    for (int tries = 0;; tries++) {
        if (tries == 10000)
            abort();
        fuzz_send(s_tx[S_SUB], "H", 1, ZMQ_SNDMORE);
        fuzz_send(s_tx[S_SUB], "", 0, 0);
        zmq_msg_t m;
        zmq_msg_init(&m);
        int rc = fuzz_msg_recv(&m, s_rx[S_SUB], ZMQ_DONTWAIT);
        zmq_msg_close(&m);
        if (rc >= 0) {
            zmq_msg_init(&m);
            fuzz_msg_recv(&m, s_rx[S_SUB], 0); /* its frame part */
            zmq_msg_close(&m);
            break;
        }
        zmq_poll(NULL, 0, 1);
    }
    s_arena = wire_arena_new();
    atexit(s_cleanup);
    /* from now on EINTR in every run, on purpose (fuzz_lib.h): libFuzzer's timers caused it
     * rarely (the sockets' set-up above is no part of what is tested) */
    fuzz_interrupt_every(200);
}

/* One message as sent: its parts (borrowed from the input). */
typedef struct {
    const uint8_t *part[S_MAX_PARTS];
    size_t len[S_MAX_PARTS];
    int n;
} s_msg_t;

/* Whether the SUB lets m through: its first part starts with a subscription. */
static bool s_sub_passes(const s_msg_t *m)
{
    for (size_t i = 0; i < sizeof(s_subs) / sizeof(s_subs[0]); i++) {
        size_t l = strlen(s_subs[i]);
        if (m->len[0] >= l && memcmp(m->part[0], s_subs[i], l) == 0)
            return true;
    }
    return false;
}

/* Receives m on pair p and checks the result against the model. */
static void s_check(int p, const s_msg_t *m, bool arena, bool with_meta)
{
    zsock_meta_t meta;
    wire_err_t err = WIRE_ERR__COUNT;
    Backstop__Frame *frame = (Backstop__Frame *)&err; /* must be reset */
    memset(&meta, 0xa5, sizeof(meta));
    if (p == S_SUB && !s_sub_passes(m))
        return; /* never delivered: the next one (or nothing) comes instead */
    int rc = zsock_recv_in(s_rx[p], ZMQ_DONTWAIT, arena ? s_arena : NULL, &frame,
                           with_meta ? &meta : NULL, &err);
    FUZZ_CHECK(rc == 0 || rc == 1);

    /* what the receiver sees: the ROUTER prepends the routing id */
    const uint8_t *part[S_MAX_PARTS + 1];
    size_t len[S_MAX_PARTS + 1];
    int n = 0;
    if (p == S_ROUTER) {
        part[n] = (const uint8_t *)S_ROUTING_ID;
        len[n++] = strlen(S_ROUTING_ID);
    }
    for (int i = 0; i < m->n; i++) {
        part[n] = m->part[i];
        len[n++] = m->len[i];
    }
    bool bad = n - 1 > 2;
    for (int i = 0; i < n - 1; i++) {
        if (len[i] == 0)
            continue;
        if (i == 0 && p == S_ROUTER && len[i] <= sizeof(meta.id))
            continue;
        if (i == 0 && p == S_SUB && len[i] < ZSOCK_TOPIC_MAX)
            continue;
        bad = true;
    }
    if (p == S_SUB && (n < 2 || len[0] == 0 || part[0][0] == '\0'))
        bad = true;
    wire_err_t want_err = WIRE_ERR_GARBAGE;
    bool want_frame = false;
    if (!bad) {
        Backstop__Frame *f = wire_unpack(part[n - 1], len[n - 1], &want_err);
        want_frame = f != NULL;
        if (want_frame)
            want_err = WIRE_OK;
        wire_free(&f);
    }
    FUZZ_CHECK(rc == (want_frame ? 1 : 0));
    FUZZ_CHECK(err == want_err);
    FUZZ_CHECK((frame != NULL) == want_frame);
    if (with_meta) {
        FUZZ_CHECK(meta.user[0] == '\0' && meta.peer[0] == '\0');
        if (p == S_ROUTER && want_frame)
            FUZZ_CHECK(meta.id_len == len[0] && memcmp(meta.id, part[0], len[0]) == 0);
        if (p != S_ROUTER)
            FUZZ_CHECK(meta.id_len == 0);
        if (p == S_SUB && want_frame)
            FUZZ_CHECK(strlen(meta.topic) <= len[0] && strlen(meta.topic) < ZSOCK_TOPIC_MAX &&
                       strncmp(meta.topic, (const char *)part[0], strlen(meta.topic)) == 0 &&
                       (strlen(meta.topic) == len[0] || part[0][strlen(meta.topic)] == '\0'));
        if (p != S_SUB)
            FUZZ_CHECK(meta.topic[0] == '\0');
    }
    if (frame) {
        s_sink += (size_t)frame->body_case;
        if (arena)
            wire_arena_reset(s_arena);
        else
            wire_free(&frame);
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (s_ctx == NULL)
        s_init();
    if (size < 1)
        return 0;
    int p = data[0] & 3;
    bool arena = data[0] & 4, with_meta = !(data[0] & 8);
    data++;
    size--;

    s_msg_t msgs[S_MAX_MSGS];
    int nmsgs = 0;
    memset(msgs, 0, sizeof(msgs));
    uint8_t sel;
    const uint8_t *buf;
    size_t len;
    while (nmsgs < S_MAX_MSGS && fuzz_step(&data, &size, &sel, &buf, &len)) {
        s_msg_t *m = &msgs[nmsgs];
        if (m->n < S_MAX_PARTS) {
            m->part[m->n] = buf;
            m->len[m->n++] = len;
        }
        if (sel & 0x80)
            nmsgs++;
    }
    if (nmsgs < S_MAX_MSGS && msgs[nmsgs].n > 0)
        nmsgs++;
    if (nmsgs == 0) {
        msgs[0].part[0] = (const uint8_t *)"";
        msgs[0].n = 1;
        nmsgs = 1;
    }

    for (int i = 0; i < nmsgs; i++)
        for (int j = 0; j < msgs[i].n; j++)
            if (fuzz_send(s_tx[p], msgs[i].part[j], msgs[i].len[j],
                          ZMQ_DONTWAIT | (j + 1 < msgs[i].n ? ZMQ_SNDMORE : 0)) < 0)
                abort(); /* inproc, far below the high-water mark */
    for (int i = 0; i < nmsgs; i++)
        s_check(p, &msgs[i], arena, with_meta);

    /* every message was taken whole: nothing is left */
    zmq_msg_t rest;
    zmq_msg_init(&rest);
    FUZZ_CHECK(fuzz_msg_recv(&rest, s_rx[p], ZMQ_DONTWAIT) < 0 && errno == EAGAIN);
    zmq_msg_close(&rest);
    return 0;
}
