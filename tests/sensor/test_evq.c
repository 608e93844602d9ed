/* test_evq - a bounded, never-blocking hand-off: FIFO, drops when full, increasing seqs. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "evq.h"

#include <poll.h>
#include <pthread.h>
#include <string.h>

static void test_fifo_and_drop_when_full(void **state)
{
    evq_t *q = evq_new(3);
    for (int i = 0; i < 5; i++) {
        evq_event_t *ev = evq_event_new(q, 1000);
        ev->msg_class = i;
        int rc = evq_push(q, &ev);
        assert_int_equal(rc, i < 3 ? 0 : -1);
        assert_null(ev);
    }
    assert_int_equal(evq_dropped(q), 2);
    assert_int_equal(evq_pushed(q), 3);
    evq_event_t *out[8];
    assert_int_equal(evq_pop(q, out, 8), 3);
    for (int i = 0; i < 3; i++) {
        assert_int_equal(out[i]->msg_class, i);
        evq_event_destroy(&out[i]);
    }
    evq_destroy(&q);
    assert_null(q);
    evq_destroy(&q);
}

static void test_unpop_keeps_order(void **state)
{
    evq_t *q = evq_new(4);
    for (int i = 0; i < 3; i++) {
        evq_event_t *ev = evq_event_new(q, 0);
        ev->msg_class = i;
        evq_push(q, &ev);
    }
    evq_event_t *out[4];
    assert_int_equal(evq_pop(q, out, 2), 2);
    evq_unpop(q, out, 2);
    assert_int_equal(evq_pop(q, out, 4), 3);
    for (int i = 0; i < 3; i++) {
        assert_int_equal(out[i]->msg_class, i);
        evq_event_destroy(&out[i]);
    }
    evq_destroy(&q);
}

static void test_seq_strictly_increasing_and_time_based(void **state)
{
    evq_t *q = evq_new(4);
    evq_event_t *a = evq_event_new(q, 5000);
    evq_event_t *b = evq_event_new(q, 5000);
    evq_event_t *c = evq_event_new(q, 4000); /* clock stepped back: still increasing */
    assert_true(a->seq >= 5000 * 1000ULL);
    assert_true(b->seq > a->seq);
    assert_true(c->seq > b->seq);
    evq_event_destroy(&a);
    evq_event_destroy(&b);
    evq_event_destroy(&c);
    evq_destroy(&q);
}

static void test_event_fields_are_bounded(void **state)
{
    evq_t *q = evq_new(1);
    evq_event_t *ev = evq_event_new(q, 0);
    char big[1000];
    memset(big, 'x', sizeof(big) - 1);
    big[sizeof(big) - 1] = '\0';
    for (int i = 0; i < 10; i++) {
        evq_event_add_key(ev, 1, (uint64_t)i, big);
        evq_event_add_rule(ev, big);
    }
    assert_int_equal(ev->nkeys, EVQ_MAX_KEYS);
    assert_int_equal(ev->nrules, EVQ_MAX_RULES);
    assert_int_equal(strlen(ev->keys[0].text), 256);
    assert_int_equal(strlen(ev->rules[0]), 64);
    assert_true(evq_event_set_ip(ev, "192.0.2.1"));
    assert_int_equal(ev->iplen, 4);
    assert_true(evq_event_set_ip(ev, "2001:db8::1"));
    assert_int_equal(ev->iplen, 16);
    assert_false(evq_event_set_ip(ev, "garbage"));
    evq_event_destroy(&ev);
    evq_destroy(&q);
}

static void test_fd_readable_when_events_wait(void **state)
{
    evq_t *q = evq_new(2);
    struct pollfd p = {.fd = evq_fd(q), .events = POLLIN};
    assert_int_equal(poll(&p, 1, 0), 0);
    evq_event_t *ev = evq_event_new(q, 0);
    evq_push(q, &ev);
    assert_int_equal(poll(&p, 1, 0), 1);
    evq_clear_fd(q);
    assert_int_equal(poll(&p, 1, 0), 0);
    evq_destroy(&q);
}

static void *s_producer(void *arg)
{
    evq_t *q = arg;
    for (int i = 0; i < 10000; i++) {
        evq_event_t *ev = evq_event_new(q, 1);
        evq_push(q, &ev);
    }
    return NULL;
}

static void test_concurrent_producers_lose_nothing_uncounted(void **state)
{
    evq_t *q = evq_new(1000);
    pthread_t t[4];
    for (int i = 0; i < 4; i++)
        pthread_create(&t[i], NULL, s_producer, q);
    uint64_t popped = 0;
    evq_event_t *out[64];
    for (int i = 0; i < 4; i++)
        pthread_join(t[i], NULL);
    size_t n;
    while ((n = evq_pop(q, out, 64)) > 0) {
        for (size_t j = 0; j < n; j++)
            evq_event_destroy(&out[j]);
        popped += n;
    }
    assert_int_equal(popped + evq_dropped(q), 40000);
    evq_destroy(&q);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_fifo_and_drop_when_full),
        cmocka_unit_test(test_unpop_keeps_order),
        cmocka_unit_test(test_seq_strictly_increasing_and_time_based),
        cmocka_unit_test(test_event_fields_are_bounded),
        cmocka_unit_test(test_fd_readable_when_events_wait),
        cmocka_unit_test(test_concurrent_producers_lose_nothing_uncounted),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
