/*
 * evq - the event hand-off; see evq.h.
 *
 * A ring of event pointers under one mutex, plus an eventfd (semaphore-free
 * counter mode) written on the empty-to-non-empty transition only, so busy
 * milter threads do not make a syscall per event.
 */
#include "evq.h"

#include "xalloc.h"

#include <arpa/inet.h>
#include <pthread.h>
#include <stdatomic.h>
#include <string.h>
#include <sys/eventfd.h>
#include <unistd.h>

struct evq {
    pthread_mutex_t lock; /* guards the ring */
    evq_event_t **ring;   /* capacity slots */
    size_t cap;           /* slots */
    size_t head;          /* oldest event */
    size_t len;           /* events held */
    int efd;              /* eventfd, readable while events wait */
    uint64_t pushed;      /* events accepted */
    uint64_t dropped;     /* events refused because the ring was full */
    _Atomic uint64_t seq; /* last sequence number handed out */
};

evq_t *evq_new(size_t capacity)
{
    evq_t *self = xcalloc(1, sizeof(*self));
    pthread_mutex_init(&self->lock, NULL);
    self->cap = capacity ? capacity : 1;
    self->ring = xcalloc(self->cap, sizeof(*self->ring));
    self->efd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
    atomic_init(&self->seq, 0);
    return self;
}

void evq_destroy(evq_t **self_p)
{
    if (!self_p || !*self_p)
        return;
    evq_t *self = *self_p;
    for (size_t i = 0; i < self->len; i++)
        evq_event_destroy(&self->ring[(self->head + i) % self->cap]);
    xfree(self->ring);
    if (self->efd >= 0)
        close(self->efd);
    pthread_mutex_destroy(&self->lock);
    xfree(self);
    *self_p = NULL;
}

evq_event_t *evq_event_new(evq_t *self, int64_t now_ms)
{
    evq_event_t *ev = xcalloc(1, sizeof(*ev));
    uint64_t floor = (uint64_t)now_ms * 1000;
    uint64_t last = atomic_load(&self->seq);
    uint64_t next;
    do {
        next = last + 1 > floor ? last + 1 : floor;
    } while (!atomic_compare_exchange_weak(&self->seq, &last, next));
    ev->seq = next;
    ev->time_ms = now_ms;
    return ev;
}

void evq_event_destroy(evq_event_t **ev_p)
{
    if (!ev_p || !*ev_p)
        return;
    evq_event_t *ev = *ev_p;
    for (size_t i = 0; i < ev->nkeys; i++)
        xfree(ev->keys[i].text);
    for (size_t i = 0; i < ev->nrules; i++)
        xfree(ev->rules[i]);
    xfree(ev->decision_id);
    xfree(ev);
    *ev_p = NULL;
}

bool evq_event_set_ip(evq_event_t *ev, const char *ip)
{
    if (!ip)
        return false;
    if (inet_pton(AF_INET, ip, ev->ip) == 1) {
        ev->iplen = 4;
        return true;
    }
    if (inet_pton(AF_INET6, ip, ev->ip) == 1) {
        ev->iplen = 16;
        return true;
    }
    ev->iplen = 0;
    return false;
}

/* Copies at most max bytes without cutting a UTF-8 sequence. */
static char *s_cut(const char *s, size_t max)
{
    size_t len = strlen(s);
    if (len > max) {
        len = max;
        while (len > 0 && ((unsigned char)s[len] & 0xC0) == 0x80)
            len--;
    }
    return xstrndup(s, len);
}

void evq_event_add_key(evq_event_t *ev, int scope, uint64_t fp, const char *text)
{
    if (ev->nkeys >= EVQ_MAX_KEYS)
        return;
    evq_key_t *k = &ev->keys[ev->nkeys++];
    k->scope = scope;
    k->fp = fp;
    k->text = text ? s_cut(text, 256) : NULL;
}

void evq_event_add_rule(evq_event_t *ev, const char *label)
{
    if (ev->nrules >= EVQ_MAX_RULES || !label)
        return;
    ev->rules[ev->nrules++] = s_cut(label, 64);
}

static void s_wake(evq_t *self)
{
    uint64_t one = 1;
    ssize_t ignored = write(self->efd, &one, sizeof(one));
    (void)ignored;
}

int evq_push(evq_t *self, evq_event_t **ev_p)
{
    bool wake = false;
    pthread_mutex_lock(&self->lock);
    if (self->len == self->cap) {
        self->dropped++;
        pthread_mutex_unlock(&self->lock);
        evq_event_destroy(ev_p);
        return -1;
    }
    self->ring[(self->head + self->len) % self->cap] = *ev_p;
    wake = self->len == 0;
    self->len++;
    self->pushed++;
    pthread_mutex_unlock(&self->lock);
    *ev_p = NULL;
    if (wake)
        s_wake(self);
    return 0;
}

size_t evq_pop(evq_t *self, evq_event_t **out, size_t max)
{
    pthread_mutex_lock(&self->lock);
    size_t n = self->len < max ? self->len : max;
    for (size_t i = 0; i < n; i++) {
        out[i] = self->ring[self->head];
        self->ring[self->head] = NULL;
        self->head = (self->head + 1) % self->cap;
    }
    self->len -= n;
    pthread_mutex_unlock(&self->lock);
    return n;
}

void evq_unpop(evq_t *self, evq_event_t **evs, size_t n)
{
    pthread_mutex_lock(&self->lock);
    /* newest first, so the oldest ends up at the head */
    for (size_t i = n; i-- > 0;) {
        if (self->len == self->cap) {
            self->dropped++;
            evq_event_destroy(&evs[i]);
            continue;
        }
        self->head = (self->head + self->cap - 1) % self->cap;
        self->ring[self->head] = evs[i];
        evs[i] = NULL;
        self->len++;
    }
    bool wake = self->len > 0;
    pthread_mutex_unlock(&self->lock);
    if (wake)
        s_wake(self);
}

int evq_fd(const evq_t *self)
{
    return self->efd;
}

void evq_clear_fd(evq_t *self)
{
    uint64_t v;
    ssize_t ignored = read(self->efd, &v, sizeof(v));
    (void)ignored;
}

size_t evq_length(evq_t *self)
{
    pthread_mutex_lock(&self->lock);
    size_t n = self->len;
    pthread_mutex_unlock(&self->lock);
    return n;
}

uint64_t evq_pushed(evq_t *self)
{
    pthread_mutex_lock(&self->lock);
    uint64_t n = self->pushed;
    pthread_mutex_unlock(&self->lock);
    return n;
}

uint64_t evq_dropped(evq_t *self)
{
    pthread_mutex_lock(&self->lock);
    uint64_t n = self->dropped;
    pthread_mutex_unlock(&self->lock);
    return n;
}
