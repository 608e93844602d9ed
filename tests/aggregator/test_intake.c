/* Tests for intake: the event socket's thread hands frames over in order, converted,
 * bad ones as drops, and never holds more than its items. Real sockets over inproc. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>
#include <zmq.h>

#include "intake.h"
#include "xalloc.h"

typedef struct {
    void *ctx;    /* context */
    void *push;   /* the sensor's end */
    intake_t *in; /* under test, on the PULL */
    uint64_t seq; /* next event seq */
} s_fx_t;

static void s_setup(s_fx_t *fx, const char *ep)
{
    memset(fx, 0, sizeof(*fx));
    fx->ctx = zmq_ctx_new();
    void *pull = zsock_new(fx->ctx, ZMQ_PULL);
    assert_int_equal(zmq_bind(pull, ep), 0);
    fx->push = zsock_new(fx->ctx, ZMQ_PUSH);
    assert_int_equal(zmq_connect(fx->push, ep), 0);
    fx->in = intake_new(fx->ctx, pull);
    assert_non_null(fx->in);
    fx->seq = 1;
}

static void s_teardown(s_fx_t *fx)
{
    intake_destroy(&fx->in);
    intake_destroy(&fx->in); /* safe twice */
    zsock_close(&fx->push);
    zmq_ctx_term(fx->ctx);
}

/* Sends a batch of n events from site/sensor, each with a subject and an address key. */
static void s_send_batch(s_fx_t *fx, const char *site, int n, bool columns)
{
    wire_batch_t *wb = wire_batch_new();
    static const uint8_t ip[4] = {192, 0, 2, 7};
    for (int i = 0; i < n; i++) {
        wire_key_t k[2] = {
            {BACKSTOP__SCOPE__SUBJECT, 0x5000 + (uint64_t)i, "wave", 4},
            {BACKSTOP__SCOPE__CLIENT_IP, 0x1919, "192.0.2.7", 9},
        };
        wire_event_t e = {.seq = fx->seq++,
                          .time_ms = 1700000000000LL + i,
                          .msg_class = BACKSTOP__MSG_CLASS__BOUNCE,
                          .client_ip = ip,
                          .client_ip_len = 4,
                          .keys = k,
                          .nkeys = 2};
        wire_batch_add(wb, &e);
    }
    size_t len = 0;
    uint8_t *buf = wire_batch_pack(wb, site, "mx1", columns, &len, NULL);
    assert_non_null(buf);
    assert_int_equal(zsock_send_raw(fx->push, buf, len, 0), 0);
    xfree(buf);
    wire_batch_destroy(&wb);
}

/* The next item, waiting up to 5 s for the thread; NULL if none came. */
static intake_item_t *s_next(s_fx_t *fx, int timeout_ms)
{
    zmq_pollitem_t pi = {intake_socket(fx->in), 0, ZMQ_POLLIN, 0};
    if (zmq_poll(&pi, 1, timeout_ms) <= 0)
        return NULL;
    return intake_next(fx->in);
}

/* Frames come out in the order they went in: a batch converted for ingest (rows and
 * columns alike), garbage as a drop with its reason, a status frame as it is. */
static void test_intake_hands_frames_over_in_order(void **state)
{
    s_fx_t fx;
    s_setup(&fx, "inproc://test-intake-order");
    s_send_batch(&fx, "acme", 3, true);
    assert_int_equal(zsock_send_raw(fx.push, "\x01\x02garbage", 9, 0), 0);
    s_send_batch(&fx, "globex", 2, false);
    Backstop__SensorStatus st = BACKSTOP__SENSOR_STATUS__INIT;
    st.site = "acme";
    st.sensor = "mx1";
    Backstop__Frame f;
    wire_frame_init(&f, BACKSTOP__FRAME__BODY_STATUS, &st);
    size_t len = 0;
    uint8_t *buf = wire_pack(&f, &len, NULL);
    assert_non_null(buf);
    assert_int_equal(zsock_send_raw(fx.push, buf, len, 0), 0);
    xfree(buf);

    intake_item_t *it = s_next(&fx, 5000);
    assert_non_null(it);
    assert_int_equal(it->rc, 1);
    assert_int_equal(it->frame->body_case, BACKSTOP__FRAME__BODY_EVENTS);
    assert_int_equal(it->announced, 3);
    assert_int_equal(it->nev, 3);
    for (size_t i = 0; i < 3; i++) {
        const ingest_event_t *e = &it->evs[i];
        assert_string_equal(e->site, "acme");
        assert_string_equal(e->sensor, "mx1");
        assert_int_equal(e->seq, 1 + i);
        assert_int_equal(e->time_ms, 1700000000000LL + (int64_t)i);
        assert_int_equal(e->msg_class, BS_CLASS_BOUNCE);
        assert_int_equal(e->client_ip_len, 4);
        assert_int_equal(e->nkeys, 2);
        assert_int_equal(e->keys[0].scope, BS_SCOPE_SUBJECT);
        assert_int_equal(e->keys[0].fp, 0x5000 + i);
        assert_int_equal(e->keys[1].text_len, 9);
        assert_memory_equal(e->keys[1].text, "192.0.2.7", 9);
    }
    intake_done(fx.in, it);

    it = s_next(&fx, 5000);
    assert_non_null(it);
    assert_int_equal(it->rc, 0);
    assert_int_not_equal(it->err, WIRE_OK);
    intake_done(fx.in, it);

    it = s_next(&fx, 5000);
    assert_non_null(it);
    assert_int_equal(it->rc, 1);
    assert_int_equal(it->nev, 2);
    assert_string_equal(it->evs[1].site, "globex");
    assert_int_equal(it->evs[1].seq, 5);
    intake_done(fx.in, it);

    it = s_next(&fx, 5000);
    assert_non_null(it);
    assert_int_equal(it->rc, 1);
    assert_int_equal(it->frame->body_case, BACKSTOP__FRAME__BODY_STATUS);
    assert_int_equal(it->nev, 0);
    intake_done(fx.in, it);
    assert_null(s_next(&fx, 100));
    s_teardown(&fx);
}

/* With every item at the loop the thread reads nothing more: the frames wait in the
 * socket (back-pressure), and come, in order, once items are given back. Items still at
 * the loop when it stops are freed with the rest. */
static void test_intake_holds_at_most_its_items(void **state)
{
    enum { FRAMES = INTAKE_ITEMS + 8 };
    s_fx_t fx;
    s_setup(&fx, "inproc://test-intake-bound");
    for (int i = 0; i < FRAMES; i++)
        s_send_batch(&fx, "acme", 1, true);
    intake_item_t *held[FRAMES];
    size_t n = 0;
    while (n < FRAMES) {
        intake_item_t *it = s_next(&fx, n < INTAKE_ITEMS ? 5000 : 300);
        if (it == NULL)
            break;
        held[n++] = it;
    }
    assert_int_equal(n, INTAKE_ITEMS);
    for (size_t i = 0; i < n; i++)
        assert_int_equal(held[i]->evs[0].seq, 1 + i);
    intake_done(fx.in, held[0]);
    intake_done(fx.in, held[1]);
    for (int i = 0; i < 2; i++) {
        intake_item_t *it = s_next(&fx, 5000);
        assert_non_null(it);
        assert_int_equal(it->evs[0].seq, INTAKE_ITEMS + 1 + i);
        held[i] = it;
    }
    assert_null(s_next(&fx, 300));
    s_teardown(&fx); /* with INTAKE_ITEMS items still here */
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_intake_hands_frames_over_in_order),
        cmocka_unit_test(test_intake_holds_at_most_its_items),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
