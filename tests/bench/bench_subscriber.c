/*
 * NAME
 *   bench_subscriber - follow an aggregator's decisions the Clone way, print them
 *
 * SYNOPSIS
 *   bench_subscriber -d DECISION_EP -s SNAPSHOT_EP --site NAME [--sensor NAME]
 *                    [--out FILE] [--state FILE] [--receipts] [--exit-after MS]
 *                    [--curve-key FILE --server-key Z85] [--subscribe TOPIC]...
 *   bench_subscriber -d DECISION_EP --xsub-garbage N [--curve-key FILE --server-key Z85]
 *
 * DESCRIPTION
 *   A sensor's decision follower for integration tests and benchmarks,
 *   written from proto/PROTOCOL.md section 4: subscribe to F, H and
 *   S/<site>/ first, then ask for a snapshot (or, with a --state file from an
 *   earlier run in the same epoch, the changes since its sequence), apply
 *   queued updates newer than the answer, then apply updates in order. A gap
 *   in the sequence, a heartbeat ahead of us two beats in a row, or a new epoch
 *   makes it ask again (changes since; a full snapshot for a new epoch).
 *
 *   After every change it rewrites --out (atomically, via rename) with the
 *   decisions it holds:
 *       epoch HEX seq N
 *       decision ID SCOPE ACTION REACH SITE|- VALUE
 *   --state FILE is read at start (same format) and written like --out.
 *   On stderr it logs "sync full|changes entries=N seq=S", "gap", "epoch",
 *   "snapshot refused" (the aggregator says the key is not the site's).
 *   With --receipts it prints "U SEQ KIND ID MONO_NS VALUE" on stdout for
 *   every update as it arrives (the propagation benchmark reads these).
 *   --exit-after MS leaves after that long (default: run until killed).
 *   --subscribe TOPIC subscribes to TOPIC too, before the others (at most 8; ""
 *   is every topic): to see what a publisher lets through that a sensor would
 *   not ask for (with --receipts).
 *   --xsub-garbage N connects an XSUB instead, sends N messages that are not
 *   subscriptions (what a broken or hostile client may send a publisher), and
 *   exits: to see that the publisher's next subscribers still get in.
 *
 * DIAGNOSTICS
 *   Exit 0, 64 usage, 69 when the sockets cannot be set up.
 */
#include <errno.h>
#include <inttypes.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <zmq.h>

#include "bs_enums.h"
#include "fp.h"
#include "msg.h"
#include "wire.h"
#include "xalloc.h"
#include "zsock.h"

/* A held decision (only what the output shows). */
typedef struct {
    char id[16];     /* decision id */
    int scope;       /* scope value */
    int action;      /* action value */
    int reach;       /* reach value */
    char site[72];   /* local site or "" */
    char value[300]; /* display text */
    int64_t expires; /* expires_ms */
} held_t;

typedef struct {
    const char *dec_ep;
    const char *snap_ep;
    const char *site;
    const char *sensor;
    const char *out;
    const char *state;
    bool receipts;
    const char *curve_key;  /* client key pair file (CURVE) */
    const char *extra[8];   /* --subscribe topics */
    size_t nextra;          /* how many */
    const char *server_pub; /* aggregator public key (Z85) */
    long exit_after;
    void *ctx;
    void *sub;
    void *dealer;
    uint64_t epoch;   /* epoch we follow (0: none yet) */
    uint64_t applied; /* last applied sequence */
    held_t *held;
    size_t nheld;
    size_t cap;
    int hb_behind; /* heartbeats in a row that were ahead of us */
} sub_t;

static volatile sig_atomic_t s_stop;

static void s_on_term(int sig)
{
    (void)sig;
    s_stop = 1;
}

static int64_t s_mono_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static int64_t s_mono_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000000LL + ts.tv_nsec;
}

static void s_write(const sub_t *S, const char *path)
{
    if (!path)
        return;
    char tmp[4096];
    snprintf(tmp, sizeof(tmp), "%s.tmp", path);
    FILE *fp = fopen(tmp, "w");
    if (!fp)
        return;
    fprintf(fp, "epoch %016" PRIx64 " seq %" PRIu64 "\n", S->epoch, S->applied);
    for (size_t i = 0; i < S->nheld; i++) {
        const held_t *h = &S->held[i];
        fprintf(fp, "decision %s %s %s %s %s %s\n", h->id, bs_enums_scope_name(h->scope),
                bs_enums_action_name(h->action), bs_enums_reach_name(h->reach),
                h->site[0] ? h->site : "-", h->value);
    }
    fclose(fp);
    rename(tmp, path);
}

static void s_save(const sub_t *S)
{
    s_write(S, S->out);
    s_write(S, S->state);
}

static void s_load_state(sub_t *S)
{
    FILE *fp = S->state ? fopen(S->state, "r") : NULL;
    if (!fp)
        return;
    char line[1024];
    if (fgets(line, sizeof(line), fp) &&
        sscanf(line, "epoch %" SCNx64 " seq %" SCNu64, &S->epoch, &S->applied) == 2) {
        while (fgets(line, sizeof(line), fp)) {
            char id[16], scope[32], action[32], reach[32], site[72];
            int off = 0;
            if (sscanf(line, "decision %15s %31s %31s %31s %71s %n", id, scope, action, reach, site,
                       &off) < 5)
                continue;
            if (S->nheld == S->cap) {
                S->cap = S->cap ? S->cap * 2 : 64;
                S->held = xrealloc(S->held, S->cap * sizeof(*S->held));
            }
            held_t *h = &S->held[S->nheld++];
            memset(h, 0, sizeof(*h));
            snprintf(h->id, sizeof(h->id), "%s", id);
            h->scope = bs_enums_scope_parse(scope);
            h->action = bs_enums_action_parse(action);
            h->reach = bs_enums_reach_parse(reach);
            snprintf(h->site, sizeof(h->site), "%s", strcmp(site, "-") ? site : "");
            snprintf(h->value, sizeof(h->value), "%s", line + off);
            h->value[strcspn(h->value, "\n")] = 0;
        }
    } else {
        S->epoch = S->applied = 0;
    }
    fclose(fp);
}

static held_t *s_find(sub_t *S, const char *id)
{
    for (size_t i = 0; i < S->nheld; i++)
        if (!strcmp(S->held[i].id, id))
            return &S->held[i];
    return NULL;
}

static void s_upsert(sub_t *S, const Backstop__Decision *d)
{
    held_t *h = s_find(S, d->id);
    if (!h) {
        if (S->nheld == S->cap) {
            S->cap = S->cap ? S->cap * 2 : 64;
            S->held = xrealloc(S->held, S->cap * sizeof(*S->held));
        }
        h = &S->held[S->nheld++];
    }
    memset(h, 0, sizeof(*h));
    snprintf(h->id, sizeof(h->id), "%s", d->id);
    h->scope = d->scope;
    h->action = d->action;
    h->reach = d->reach;
    snprintf(h->site, sizeof(h->site), "%s", d->site ? d->site : "");
    snprintf(h->value, sizeof(h->value), "%s", d->value ? d->value : "");
    h->expires = d->expires_ms;
}

static void s_remove(sub_t *S, const char *id)
{
    held_t *h = s_find(S, id);
    if (h)
        *h = S->held[--S->nheld];
}

/* Applies u; -1 for the SKIP of our own site's change (its update was lost: resync). */
static int s_apply(sub_t *S, const Backstop__DecisionUpdate *u)
{
    if (u->kind == BACKSTOP__DECISION_UPDATE__KIND__SKIP) {
        if (u->decision->fp == fp_text(S->site))
            return -1;
    } else if (u->kind == BACKSTOP__DECISION_UPDATE__KIND__REMOVE) {
        s_remove(S, u->decision->id);
    } else {
        s_upsert(S, u->decision);
    }
    S->applied = u->seq;
    return 0;
}

/* Queued updates while a snapshot is on its way. */
typedef struct {
    Backstop__Frame **f;
    size_t n;
    size_t cap;
} queue_t;

static void s_queue_clear(queue_t *q)
{
    for (size_t i = 0; i < q->n; i++)
        wire_free(&q->f[i]);
    q->n = 0;
}

static void s_receipt(const sub_t *S, const Backstop__DecisionUpdate *u)
{
    if (!S->receipts)
        return;
    printf("U %" PRIu64 " %s %s %" PRId64 " %s\n", u->seq,
           u->kind == BACKSTOP__DECISION_UPDATE__KIND__REMOVE ? "remove"
           : u->kind == BACKSTOP__DECISION_UPDATE__KIND__SKIP ? "skip"
                                                              : "upsert",
           u->decision->id, s_mono_ns(), u->decision->value ? u->decision->value : "");
    fflush(stdout);
}

/* Steps 2-4 of PROTOCOL.md 4.2: ask, read the answer, apply the queue. 0 or -1 (retry). */
static int s_sync(sub_t *S, queue_t *q, bool full)
{
    Backstop__SnapshotRequest req = BACKSTOP__SNAPSHOT_REQUEST__INIT;
    req.site = (char *)S->site;
    req.sensor = (char *)S->sensor;
    if (!full && S->epoch) {
        req.has_epoch = req.has_since_seq = 1;
        req.epoch = S->epoch;
        req.since_seq = S->applied;
    }
    Backstop__Frame f;
    wire_frame_init(&f, BACKSTOP__FRAME__BODY_SNAPSHOT_REQUEST, &req);
    if (zsock_send(S->dealer, &f, 0) < 0)
        return -1;
    int64_t deadline = s_mono_ms() + 3000;
    bool first = true, more = true, changes = false;
    size_t entries = 0;
    uint64_t seq = 0;
    while (more && !s_stop) {
        int64_t left = deadline - s_mono_ms();
        if (left <= 0) {
            fprintf(stderr, "bench_subscriber: snapshot timeout\n");
            return -1;
        }
        zmq_pollitem_t items[2] = {{S->dealer, 0, ZMQ_POLLIN, 0}, {S->sub, 0, ZMQ_POLLIN, 0}};
        if (zmq_poll(items, 2, (long)left) < 0)
            continue;
        if (items[1].revents & ZMQ_POLLIN) {
            Backstop__Frame *u = NULL;
            zsock_meta_t meta;
            if (zsock_recv(S->sub, ZMQ_DONTWAIT, &u, &meta, NULL) == 1) {
                if (u->body_case == BACKSTOP__FRAME__BODY_UPDATE) {
                    s_receipt(S, u->update);
                    if (q->n == q->cap) {
                        q->cap = q->cap ? q->cap * 2 : 64;
                        q->f = xrealloc(q->f, q->cap * sizeof(*q->f));
                    }
                    q->f[q->n++] = u;
                    u = NULL;
                }
                wire_free(&u);
            }
        }
        if (!(items[0].revents & ZMQ_POLLIN))
            continue;
        Backstop__Frame *r = NULL;
        if (zsock_recv(S->dealer, ZMQ_DONTWAIT, &r, NULL, NULL) != 1)
            continue;
        if (r->body_case != BACKSTOP__FRAME__BODY_SNAPSHOT_REPLY) {
            wire_free(&r);
            continue;
        }
        const Backstop__SnapshotReply *rep = r->snapshot_reply;
        if (rep->has_refused && rep->refused) {
            /* our key is not the site's (PROTOCOL.md 1.3): keep what we hold, ask again */
            fprintf(stderr, "bench_subscriber: snapshot refused\n");
            wire_free(&r);
            return -1;
        }
        if (first) {
            changes = rep->has_changes_only && rep->changes_only;
            if (!changes) {
                S->nheld = 0;
            }
            S->epoch = rep->epoch;
            seq = rep->seq;
            first = false;
        }
        for (size_t i = 0; i < rep->n_decisions; i++)
            s_upsert(S, rep->decisions[i]);
        for (size_t i = 0; i < rep->n_changes; i++)
            s_apply(S, rep->changes[i]);
        entries += rep->n_decisions + rep->n_changes;
        more = rep->has_more && rep->more;
        wire_free(&r);
    }
    S->applied = seq;
    for (size_t i = 0; i < q->n; i++) {
        const Backstop__DecisionUpdate *u = q->f[i]->update;
        if (u->epoch == S->epoch && u->seq == S->applied + 1)
            s_apply(S, u);
    }
    s_queue_clear(q);
    fprintf(stderr, "bench_subscriber: sync %s entries=%zu seq=%" PRIu64 " held=%zu\n",
            changes ? "changes" : "full", entries, S->applied, S->nheld);
    S->hb_behind = 0;
    s_save(S);
    return 0;
}

/* --xsub-garbage: n messages that are not subscriptions from an XSUB, then leaves (the
 * messages are handed over before the socket closes). 0 or an exit code. */
static int s_xsub_garbage(const sub_t *S, long n)
{
    if (!S->dec_ep)
        return EX_USAGE;
    void *ctx = zmq_ctx_new();
    void *x = zmq_socket(ctx, ZMQ_XSUB);
    if (S->curve_key) {
        zsock_keys_t keys;
        if (!S->server_pub || zsock_keys_load(S->curve_key, &keys) < 0 ||
            zsock_curve_client(x, &keys, S->server_pub) < 0)
            return EX_UNAVAILABLE;
    }
    int linger = 2000;
    zmq_setsockopt(x, ZMQ_LINGER, &linger, sizeof(linger));
    if (zmq_connect(x, S->dec_ep) < 0)
        return EX_UNAVAILABLE;
    /* a message sent before the connection is made is dropped by an XSUB: wait for it */
    struct timespec ts = {0, 500 * 1000000L};
    nanosleep(&ts, NULL);
    for (long i = 0; i < n; i++)
        zmq_send(x, "garbage", 7, 0);
    nanosleep(&ts, NULL);
    zmq_close(x);
    zmq_ctx_term(ctx);
    return 0;
}

int main(int argc, char **argv)
{
    sub_t S = {.sensor = "sensor1", .exit_after = -1};
    msg_open("bench_subscriber", MSG_TO_STDERR);
    long garbage = 0;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
#define ARG(name) (!strcmp(a, name) && v && (i++, 1))
        if (ARG("-d"))
            S.dec_ep = v;
        else if (ARG("-s"))
            S.snap_ep = v;
        else if (ARG("--site"))
            S.site = v;
        else if (ARG("--sensor"))
            S.sensor = v;
        else if (ARG("--out"))
            S.out = v;
        else if (ARG("--state"))
            S.state = v;
        else if (ARG("--exit-after"))
            S.exit_after = atol(v);
        else if (ARG("--curve-key"))
            S.curve_key = v;
        else if (ARG("--subscribe") && S.nextra < 8)
            S.extra[S.nextra++] = v;
        else if (ARG("--server-key"))
            S.server_pub = v;
        else if (ARG("--xsub-garbage"))
            garbage = atol(v);
        else if (!strcmp(a, "--receipts"))
            S.receipts = true;
        else {
            fputs("usage: bench_subscriber -d DECISION_EP -s SNAPSHOT_EP --site NAME\n"
                  "       [--sensor NAME] [--out FILE] [--state FILE] [--receipts]\n"
                  "       [--exit-after MS] [--curve-key FILE --server-key Z85]\n"
                  "       [--subscribe TOPIC]...\n"
                  "       bench_subscriber -d DECISION_EP --xsub-garbage N [--curve-key FILE "
                  "--server-key Z85]\n",
                  stderr);
            return EX_USAGE;
        }
#undef ARG
    }
    if (garbage > 0)
        return s_xsub_garbage(&S, garbage);
    if (!S.dec_ep || !S.snap_ep || !S.site)
        return EX_USAGE;
    signal(SIGTERM, s_on_term);
    signal(SIGINT, s_on_term);
    s_load_state(&S);

    S.ctx = zmq_ctx_new();
    S.sub = zsock_new(S.ctx, ZMQ_SUB);
    S.dealer = zsock_new(S.ctx, ZMQ_DEALER);
    if (S.curve_key) {
        zsock_keys_t keys;
        if (!S.sub || !S.dealer || !S.server_pub || zsock_keys_load(S.curve_key, &keys) < 0 ||
            zsock_curve_client(S.sub, &keys, S.server_pub) < 0 ||
            zsock_curve_client(S.dealer, &keys, S.server_pub) < 0)
            return EX_UNAVAILABLE;
    }
    char topic[ZSOCK_TOPIC_MAX];
    for (size_t i = 0; S.sub && i < S.nextra; i++)
        if (zsock_subscribe(S.sub, S.extra[i]) < 0)
            return EX_UNAVAILABLE;
    if (!S.sub || !S.dealer || zsock_site_topic(topic, sizeof(topic), S.site) < 0 ||
        zsock_subscribe(S.sub, ZSOCK_TOPIC_FLEET) < 0 ||
        zsock_subscribe(S.sub, ZSOCK_TOPIC_HEARTBEAT) < 0 || zsock_subscribe(S.sub, topic) < 0 ||
        zsock_connect(S.sub, S.dec_ep) < 0 || zsock_connect(S.dealer, S.snap_ep) < 0)
        return EX_UNAVAILABLE;

    /* Step 1 is done (subscribed). Wait for the first heartbeat, so the subscription is
     * in place at the publisher before we ask (the slow-joiner problem). */
    queue_t q = {0};
    int64_t start = s_mono_ms();
    bool synced = false;
    bool need_full = false;
    while (!s_stop) {
        if (S.exit_after >= 0 && s_mono_ms() - start >= S.exit_after)
            break;
        zmq_pollitem_t items[1] = {{S.sub, 0, ZMQ_POLLIN, 0}};
        int rc = zmq_poll(items, 1, 100);
        if (rc <= 0)
            continue;
        Backstop__Frame *f = NULL;
        zsock_meta_t meta;
        if (zsock_recv(S.sub, ZMQ_DONTWAIT, &f, &meta, NULL) != 1)
            continue;
        if (!synced) {
            if (f->body_case == BACKSTOP__FRAME__BODY_HEARTBEAT) {
                if (S.epoch && f->heartbeat->epoch != S.epoch) {
                    fprintf(stderr, "bench_subscriber: epoch changed\n");
                    need_full = true;
                }
                synced = s_sync(&S, &q, need_full) == 0;
                need_full = false;
            } else if (f->body_case == BACKSTOP__FRAME__BODY_UPDATE) {
                s_receipt(&S, f->update);
            }
            wire_free(&f);
            continue;
        }
        if (f->body_case == BACKSTOP__FRAME__BODY_UPDATE) {
            const Backstop__DecisionUpdate *u = f->update;
            s_receipt(&S, u);
            if (u->epoch != S.epoch) {
                fprintf(stderr, "bench_subscriber: epoch changed\n");
                synced = s_sync(&S, &q, true) == 0;
            } else if (u->seq == S.applied + 1 && s_apply(&S, u) == 0) {
                s_save(&S);
            } else if (u->seq > S.applied) {
                fprintf(stderr, "bench_subscriber: gap applied=%" PRIu64 " got=%" PRIu64 "\n",
                        S.applied, u->seq);
                synced = s_sync(&S, &q, false) == 0;
            }
        } else if (f->body_case == BACKSTOP__FRAME__BODY_HEARTBEAT) {
            const Backstop__Heartbeat *hb = f->heartbeat;
            if (hb->epoch != S.epoch) {
                fprintf(stderr, "bench_subscriber: epoch changed\n");
                synced = s_sync(&S, &q, true) == 0;
            } else if (hb->seq > S.applied) {
                if (++S.hb_behind >= 2) {
                    fprintf(stderr,
                            "bench_subscriber: behind heartbeat applied=%" PRIu64 " hb=%" PRIu64
                            "\n",
                            S.applied, hb->seq);
                    synced = s_sync(&S, &q, false) == 0;
                }
            } else {
                S.hb_behind = 0;
            }
        }
        wire_free(&f);
    }
    s_queue_clear(&q);
    xfree(q.f);
    xfree(S.held);
    zsock_close(&S.sub);
    zsock_close(&S.dealer);
    zmq_ctx_term(S.ctx);
    return 0;
}
