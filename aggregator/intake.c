/*
 * intake - the event socket's own thread; see intake.h for what it promises.
 *
 * Two PAIR sockets over inproc join the loop (the caller's thread) and the intake
 * thread. Each message is one pointer: loop -> thread, an item given back (NULL: stop);
 * thread -> loop, an item filled. The thread polls the PULL only while it holds a free
 * item, so it never reads a frame it has nowhere to put.
 */
#include "intake.h"

#include <errno.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <zmq.h>

#include "msg.h"
#include "xalloc.h"

struct intake {
    void *pull;                        /* events in (the thread's) */
    void *loop;                        /* the loop's end of the pair */
    void *thread_end;                  /* the thread's end */
    pthread_t thread;                  /* the intake thread */
    bool running;                      /* thread started and not joined */
    intake_item_t items[INTAKE_ITEMS]; /* all of them, wherever they are */
};

/* Sends or receives one pointer on a pair socket. Sends never wait: the high-water marks
 * leave room for every item and the stop, and a peer that is gone must not hang us. */
static int s_send_ptr(void *sock, intake_item_t *item)
{
    return zmq_send(sock, &item, sizeof(item), ZMQ_DONTWAIT) == (int)sizeof(item) ? 0 : -1;
}

static int s_recv_ptr(void *sock, int flags, intake_item_t **item_p)
{
    intake_item_t *item = NULL;
    int rc = zmq_recv(sock, &item, sizeof(item), flags);
    if (rc != (int)sizeof(item))
        return -1;
    *item_p = item;
    return 0;
}

/* An events frame's batch, in ingest's terms, into the item (only what the view gives). */
static void s_convert(intake_item_t *it)
{
    const Backstop__EventBatch *b = it->frame->events;
    wire_events_t cur;
    it->announced = wire_events_open(&cur, b);
    if (it->announced > it->cap) {
        it->cap = it->announced;
        it->evs = xrealloc(it->evs, it->cap * sizeof(*it->evs));
        it->keys = xrealloc(it->keys, it->cap * WIRE_MAX_KEYS * sizeof(*it->keys));
    }
    wire_event_t e;
    wire_key_t wk[WIRE_MAX_KEYS];
    size_t n = 0;
    while (n < it->announced && wire_events_next(&cur, &e, wk)) {
        ingest_key_t *keys = it->keys + n * WIRE_MAX_KEYS;
        for (size_t k = 0; k < e.nkeys; k++)
            keys[k] = (ingest_key_t){.scope = (bs_scope_t)wk[k].scope,
                                     .fp = wk[k].fp,
                                     .text = wk[k].text,
                                     .text_len = wk[k].text_len};
        it->evs[n++] = (ingest_event_t){
            .site = b->site,
            .sensor = b->sensor,
            .seq = e.seq,
            .time_ms = e.time_ms,
            .msg_class = (bs_class_t)e.msg_class,
            .client_ip = e.client_ip,
            .client_ip_len = e.client_ip_len,
            .keys = keys,
            .nkeys = e.nkeys,
            .nrule_labels = e.nrules,
            .ledger_hit = e.ledger_hit,
        };
    }
    it->nev = n;
}

/* Receives one message into it; false when nothing could be read (EAGAIN, EINTR). */
static bool s_fill(intake_t *in, intake_item_t *it)
{
    wire_arena_reset(it->arena);
    it->frame = NULL;
    it->announced = it->nev = 0;
    it->rc = zsock_recv_in(in->pull, ZMQ_DONTWAIT, it->arena, &it->frame, &it->meta, &it->err);
    if (it->rc < 0)
        return false;
    if (it->rc == 1 && it->frame->body_case == BACKSTOP__FRAME__BODY_EVENTS)
        s_convert(it);
    return true;
}

static void *s_main(void *arg)
{
    intake_t *in = arg;
    intake_item_t *free_items[INTAKE_ITEMS];
    size_t nfree = 0;
    for (size_t i = 0; i < INTAKE_ITEMS; i++)
        free_items[nfree++] = &in->items[i];
    for (;;) {
        zmq_pollitem_t items[2] = {
            {in->thread_end, 0, ZMQ_POLLIN, 0},
            {in->pull, 0, ZMQ_POLLIN, 0},
        };
        if (zmq_poll(items, nfree ? 2 : 1, -1) < 0) {
            if (errno == EINTR)
                continue;
            break; /* ETERM: the context is going */
        }
        if (items[0].revents & ZMQ_POLLIN) {
            intake_item_t *back = NULL;
            bool stop = false;
            while (s_recv_ptr(in->thread_end, ZMQ_DONTWAIT, &back) == 0) {
                if (back == NULL) {
                    stop = true;
                    break;
                }
                free_items[nfree++] = back;
            }
            if (stop)
                break;
        }
        /* a burst at a time, then a look at what came back */
        for (int burst = 0; burst < INTAKE_ITEMS && nfree > 0; burst++) {
            intake_item_t *it = free_items[nfree - 1];
            if (!s_fill(in, it))
                break;
            nfree--;
            if (s_send_ptr(in->thread_end, it) < 0) {
                nfree++; /* only when the context is going: keep it */
                break;
            }
        }
    }
    zmq_close(in->pull);
    zmq_close(in->thread_end);
    return NULL;
}

/* A PAIR socket with room for every item in flight and no linger. */
static void *s_pair(void *ctx)
{
    void *s = zmq_socket(ctx, ZMQ_PAIR);
    if (s == NULL)
        return NULL;
    int hwm = INTAKE_ITEMS * 2 + 2, linger = 0;
    zmq_setsockopt(s, ZMQ_SNDHWM, &hwm, sizeof(hwm));
    zmq_setsockopt(s, ZMQ_RCVHWM, &hwm, sizeof(hwm));
    zmq_setsockopt(s, ZMQ_LINGER, &linger, sizeof(linger));
    return s;
}

intake_t *intake_new(void *ctx, void *pull)
{
    intake_t *in = xcalloc(1, sizeof(*in));
    for (size_t i = 0; i < INTAKE_ITEMS; i++)
        in->items[i].arena = wire_arena_new();
    char ep[64];
    snprintf(ep, sizeof(ep), "inproc://backstop-intake-%p", (void *)in);
    in->pull = pull;
    in->loop = s_pair(ctx);
    in->thread_end = s_pair(ctx);
    if (!in->loop || !in->thread_end || zmq_bind(in->loop, ep) < 0 ||
        zmq_connect(in->thread_end, ep) < 0) {
        msg_error("intake: cannot join the event thread over %s: %s", ep, zmq_strerror(errno));
        goto fail;
    }
    int rc = pthread_create(&in->thread, NULL, s_main, in);
    if (rc != 0) {
        msg_error("intake: cannot start the event thread: %s", strerror(rc));
        goto fail;
    }
    in->running = true;
    return in;
fail:
    if (in->thread_end)
        zmq_close(in->thread_end);
    if (in->loop)
        zmq_close(in->loop);
    in->thread_end = in->loop = NULL;
    in->pull = NULL; /* the caller's again: it closes it */
    for (size_t i = 0; i < INTAKE_ITEMS; i++)
        wire_arena_destroy(&in->items[i].arena);
    xfree(in);
    return NULL;
}

void intake_destroy(intake_t **self_p)
{
    if (self_p == NULL || *self_p == NULL)
        return;
    intake_t *in = *self_p;
    if (in->running) {
        if (s_send_ptr(in->loop, NULL) < 0)
            msg_warn("intake: cannot tell the event thread to stop: %s", zmq_strerror(errno));
        pthread_join(in->thread, NULL);
    }
    zmq_close(in->loop);
    for (size_t i = 0; i < INTAKE_ITEMS; i++) {
        wire_arena_destroy(&in->items[i].arena);
        xfree(in->items[i].evs);
        xfree(in->items[i].keys);
    }
    xfree(in);
    *self_p = NULL;
}

void *intake_socket(intake_t *self)
{
    return self->loop;
}

intake_item_t *intake_next(intake_t *self)
{
    intake_item_t *it = NULL;
    return s_recv_ptr(self->loop, ZMQ_DONTWAIT, &it) == 0 ? it : NULL;
}

void intake_done(intake_t *self, intake_item_t *item)
{
    if (s_send_ptr(self->loop, item) < 0)
        msg_warn("intake: cannot give an item back: %s", zmq_strerror(errno));
}
