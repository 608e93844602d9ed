/*
 * NAME
 *   bench_loadgen - send bounce events to an aggregator as one or more sites
 *
 * SYNOPSIS
 *   bench_loadgen -e EVENT_ENDPOINT [options]
 *   bench_loadgen -e ENDPOINT --bad KIND [--socket push|dealer]
 *
 * DESCRIPTION
 *   A sensor stand-in for integration tests and benchmarks. It sends --events
 *   bounce events, spread round-robin over --sites sites (site1, site2, ...
 *   or the one --site), in batches of --batch events per frame, each event
 *   with a SUBJECT key (the --subject text, or TEXT-k for k < --distinct),
 *   a CLIENT_IP and CLIENT_NET key and the client address. Sequence numbers
 *   start at --seq (default: the clock in ms times 1000, so reruns are new
 *   events). Sends block until the aggregator takes them (a lossless test
 *   tool, not a sensor: the real sensor never blocks).
 *
 *   --bad KIND sends one malformed message instead: garbage, empty, oversize
 *   (2 MiB part), version (Frame.version 99), truncated (a batch cut in half),
 *   unexpected (a heartbeat frame), multipart (three parts), badsite (site
 *   with a slash), future (an event an hour ahead), status (a SensorStatus,
 *   which is valid). --socket dealer sends it the way a snapshot/control
 *   client would ([empty][frame]); --socket sub connects a SUB (to a PUB)
 *   and subscribes to a junk topic. --bad rawtcp writes 64 KiB of junk on a
 *   plain TCP connection to the tcp:// endpoint (a broken ZMTP greeting).
 *
 *   Options: --sites N, --site NAME, --sensor NAME (default sensor1),
 *   --sensors N (N sensors, NAMEk for k from --sensor-first K (0) on, one after the
 *   other on one connection, each sending --events events: what N runs with
 *   --sensor NAMEk would send, without N processes),
 *   --events N (1000), --batch N (200), --subject TEXT ("Undelivered Mail
 *   Returned to Sender: storm"), --distinct K (1: one subject), --ip A.B.C.D
 *   (192.0.2.10), --ips N (1: one address; N: 10.x.y.z spread), --seq N,
 *   --time-offset MS (event time = now + MS), --rule-match (label "test" on
 *   every event), --repeat-first (send the first batch twice: dedup test),
 *   --rows (batches as rows, the format before EventColumns; default columns),
 *   --curve-key FILE --server-key Z85 (connect as a CURVE client with that
 *   site key pair file to the aggregator's public key),
 *   --applied N --epoch E (with --bad status), --marker TEXT (afterwards, on
 *   the same connection, a 450-event 3-site wave on subject TEXT: when its
 *   decision arrives, everything before it has been counted).
 *
 * DIAGNOSTICS
 *   Exit 0 when everything was handed to ZeroMQ, 64 usage, 69 no connection.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <netdb.h>
#include <sys/socket.h>
#include <unistd.h>
#include <zmq.h>

#include "fp.h"
#include "msg.h"
#include "wire.h"
#include "xalloc.h"
#include "zsock.h"

typedef struct {
    const char *endpoint;
    const char *site;
    const char *sensor;
    const char *subject;
    const char *ip;
    const char *bad;
    const char *socket;
    const char *marker;
    const char *curve_key;  /* client key pair file (CURVE) */
    const char *server_pub; /* aggregator public key (Z85) */
    long sites;
    long sensors;      /* 0: the one --sensor; else NAMEk for k in sensor_first .. + sensors */
    long sensor_first; /* first k */
    long events;
    long batch;
    long distinct;
    long ips;
    uint64_t seq;
    int64_t time_offset;
    int rule_match;
    int rows; /* --rows: batches as rows (older aggregators), not columns */
    int repeat_first;
    uint64_t applied;
    uint64_t epoch;
} opts_t;

static int64_t s_now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void s_usage(void)
{
    fputs("usage: bench_loadgen -e ENDPOINT [--sites N | --site NAME] [--sensor NAME]\n"
          "       [--sensors N [--sensor-first K]]\n"
          "       [--events N] [--batch N] [--subject TEXT] [--distinct K] [--ip A.B.C.D]\n"
          "       [--ips N] [--seq N] [--time-offset MS] [--rule-match] [--rows] [--repeat-first]\n"
          "       bench_loadgen -e ENDPOINT --bad KIND [--socket push|dealer]\n",
          stderr);
    exit(EX_USAGE);
}

static void *s_connect(void *ctx, const opts_t *o)
{
    int type = ZMQ_PUSH;
    if (o->socket && !strcmp(o->socket, "dealer"))
        type = ZMQ_DEALER;
    else if (o->socket && !strcmp(o->socket, "sub"))
        type = ZMQ_SUB;
    void *s = zsock_new(ctx, type);
    if (!s)
        exit(EX_UNAVAILABLE);
    if (o->curve_key) {
        zsock_keys_t keys;
        if (!o->server_pub || zsock_keys_load(o->curve_key, &keys) < 0 ||
            zsock_curve_client(s, &keys, o->server_pub) < 0)
            exit(EX_UNAVAILABLE);
    }
    if (zsock_connect(s, o->endpoint) < 0)
        exit(EX_UNAVAILABLE);
    /* a test tool must not lose what it sends at exit */
    int linger = 10000;
    zmq_setsockopt(s, ZMQ_LINGER, &linger, sizeof(linger));
    return s;
}

/* Sends raw parts with a flag for the multipart case. */
static int s_send_parts(void *s, int dealer, const void *buf, size_t len)
{
    if (dealer && zmq_send(s, "", 0, ZMQ_SNDMORE) < 0)
        return -1;
    return zmq_send(s, buf, len, 0) < 0 ? -1 : 0;
}

/* One event batch frame for site with events [from, to), packed; NULL on error. */
static uint8_t *s_pack_batch(const opts_t *o, const char *site, uint64_t *seq, long from, long to,
                             size_t *len)
{
    long n = to - from;
    static const char *const label[] = {"test"};
    int64_t now = s_now_ms() + o->time_offset;
    wire_batch_t *wb = wire_batch_new();
    for (long i = 0; i < n; i++) {
        long g = from + i;
        char subj[300], ipt[64], net[64], mt[32];
        if (o->distinct > 1)
            snprintf(subj, sizeof(subj), "%s-%ld", o->subject, g % o->distinct);
        else
            snprintf(subj, sizeof(subj), "%s", o->subject);
        struct in_addr a;
        if (o->ips > 1) {
            uint32_t x = (uint32_t)(g % o->ips);
            a.s_addr = htonl((10u << 24) | (x & 0xFFFFFFu));
        } else if (inet_pton(AF_INET, o->ip, &a) != 1) {
            fprintf(stderr, "bench_loadgen: bad --ip %s\n", o->ip);
            exit(EX_USAGE);
        }
        uint8_t ipb[4];
        memcpy(ipb, &a, 4);
        inet_ntop(AF_INET, &a, ipt, sizeof(ipt));
        struct in_addr m = {.s_addr = a.s_addr & htonl(0xFFFFFF00u)};
        inet_ntop(AF_INET, &m, mt, sizeof(mt));
        snprintf(net, sizeof(net), "%s/24", mt);
        wire_key_t k[3] = {
            {BACKSTOP__SCOPE__SUBJECT, fp_text(subj), subj, strlen(subj)},
            {BACKSTOP__SCOPE__CLIENT_IP, fp_text(ipt), ipt, strlen(ipt)},
            {BACKSTOP__SCOPE__CLIENT_NET, fp_text(net), net, strlen(net)},
        };
        wire_event_t e = {.seq = (*seq)++,
                          .time_ms = now,
                          .msg_class = BACKSTOP__MSG_CLASS__BOUNCE,
                          .client_ip = ipb,
                          .client_ip_len = 4,
                          .keys = k,
                          .nkeys = 3,
                          .rules = label,
                          .nrules = o->rule_match ? 1 : 0};
        wire_batch_add(wb, &e);
    }
    wire_err_t err;
    uint8_t *buf = wire_batch_pack(wb, site, o->sensor, !o->rows, len, &err);
    if (!buf)
        fprintf(stderr, "bench_loadgen: cannot pack: %s\n", wire_err_name(err));
    wire_batch_destroy(&wb);
    return buf;
}

/* Junk on a plain TCP connection: not even a ZMTP greeting. */
static int s_raw_tcp(const char *endpoint)
{
    char host[256];
    const char *p = strncmp(endpoint, "tcp://", 6) == 0 ? endpoint + 6 : endpoint;
    const char *colon = strrchr(p, ':');
    if (!colon || (size_t)(colon - p) >= sizeof(host))
        return -1;
    memcpy(host, p, (size_t)(colon - p));
    host[colon - p] = 0;
    struct addrinfo hints = {.ai_socktype = SOCK_STREAM}, *res = NULL;
    if (getaddrinfo(host, colon + 1, &hints, &res) != 0)
        return -1;
    int fd = socket(res->ai_family, SOCK_STREAM, 0);
    int rc = fd >= 0 ? connect(fd, res->ai_addr, res->ai_addrlen) : -1;
    freeaddrinfo(res);
    if (rc == 0) {
        char junk[4096];
        for (size_t i = 0; i < sizeof(junk); i++)
            junk[i] = (char)(i * 131 + 7);
        for (int i = 0; i < 16 && rc == 0; i++)
            rc = send(fd, junk, sizeof(junk), MSG_NOSIGNAL) < 0 ? -1 : 0;
        rc = 0; /* the peer hanging up on us is the point */
    }
    if (fd >= 0)
        close(fd);
    return rc;
}

static int s_bad(void *s, const opts_t *o)
{
    int dealer = o->socket && !strcmp(o->socket, "dealer");
    const char *k = o->bad;
    size_t len = 0;
    uint8_t *buf = NULL;
    int rc;
    if (!strcmp(k, "garbage")) {
        static const char junk[] = "\x0a\xff\xff\xff\xff\x0fnot a frame at all";
        return s_send_parts(s, dealer, junk, sizeof(junk));
    }
    if (!strcmp(k, "empty"))
        return s_send_parts(s, dealer, "", 0);
    if (!strcmp(k, "oversize")) {
        size_t n = 2u << 20;
        buf = xcalloc(1, n);
        rc = s_send_parts(s, dealer, buf, n);
        xfree(buf);
        return rc;
    }
    if (!strcmp(k, "multipart")) {
        zmq_send(s, "a", 1, ZMQ_SNDMORE);
        zmq_send(s, "b", 1, ZMQ_SNDMORE);
        return zmq_send(s, "c", 1, 0) < 0 ? -1 : 0;
    }
    if (!strcmp(k, "version") || !strcmp(k, "unexpected")) {
        Backstop__Heartbeat hb = BACKSTOP__HEARTBEAT__INIT;
        hb.epoch = 1;
        hb.seq = 1;
        hb.time_ms = s_now_ms();
        Backstop__Frame f;
        wire_frame_init(&f, BACKSTOP__FRAME__BODY_HEARTBEAT, &hb);
        buf = wire_pack(&f, &len, NULL);
        if (!strcmp(k, "version")) {
            /* field 1 (version) is the first byte pair: 0x08 <varint 1>; make it 99 */
            if (len >= 2 && buf[0] == 0x08)
                buf[1] = 99;
        }
        rc = s_send_parts(s, dealer, buf, len);
        xfree(buf);
        return rc;
    }
    if (!strcmp(k, "status")) {
        Backstop__SensorStatus st = BACKSTOP__SENSOR_STATUS__INIT;
        st.site = (char *)(o->site ? o->site : "site1");
        st.sensor = (char *)o->sensor;
        st.epoch = o->epoch;
        st.applied_seq = o->applied;
        st.time_ms = s_now_ms();
        Backstop__Frame f;
        wire_frame_init(&f, BACKSTOP__FRAME__BODY_STATUS, &st);
        buf = wire_pack(&f, &len, NULL);
        rc = s_send_parts(s, dealer, buf, len);
        xfree(buf);
        return rc;
    }
    opts_t one = *o;
    one.time_offset = !strcmp(k, "future") ? 3600 * 1000 : o->time_offset;
    uint64_t seq = o->seq;
    const char *site = !strcmp(k, "badsite") ? "evil/site" : (o->site ? o->site : "site1");
    if (!strcmp(k, "truncated") || !strcmp(k, "badsite") || !strcmp(k, "future")) {
        buf = s_pack_batch(&one, site, &seq, 0, 4, &len);
        if (!buf)
            return -1;
        if (!strcmp(k, "truncated"))
            len /= 2;
        rc = s_send_parts(s, dealer, buf, len);
        xfree(buf);
        return rc;
    }
    fprintf(stderr, "bench_loadgen: unknown --bad %s\n", k);
    exit(EX_USAGE);
}

/* Sends o->events events over o->sites sites (or o->site), batches interleaved. */
static int s_storm(void *s, const opts_t *o)
{
    int rc = 0;
    /* per site: its own sequence numbers; batches interleave sites */
    long nsites = o->site ? 1 : o->sites;
    uint64_t *seq = xcalloc((size_t)nsites, sizeof(*seq));
    long *done = xcalloc((size_t)nsites, sizeof(*done));
    long *total = xcalloc((size_t)nsites, sizeof(*total));
    for (long i = 0; i < nsites; i++) {
        seq[i] = o->seq;
        total[i] = o->events / nsites + (i < o->events % nsites ? 1 : 0);
    }
    int first = 1;
    for (long left = o->events; left > 0 && rc == 0;) {
        for (long si = 0; si < nsites && rc == 0; si++) {
            if (done[si] >= total[si])
                continue;
            long n = total[si] - done[si] < o->batch ? total[si] - done[si] : o->batch;
            char name[64];
            snprintf(name, sizeof(name), "site%ld", si + 1);
            size_t len = 0;
            uint8_t *buf =
                s_pack_batch(o, o->site ? o->site : name, &seq[si], done[si], done[si] + n, &len);
            if (!buf) {
                rc = -1;
                break;
            }
            rc = zmq_send(s, buf, len, 0) < 0 ? -1 : 0;
            if (first && o->repeat_first && rc == 0)
                rc = zmq_send(s, buf, len, 0) < 0 ? -1 : 0;
            first = 0;
            xfree(buf);
            done[si] += n;
            left -= n;
        }
    }
    xfree(seq);
    xfree(done);
    xfree(total);

    return rc;
}

int main(int argc, char **argv)
{
    opts_t o = {
        .sensor = "sensor1",
        .subject = "Undelivered Mail Returned to Sender: storm",
        .ip = "192.0.2.10",
        .sites = 1,
        .events = 1000,
        .batch = 200,
        .distinct = 1,
        .ips = 1,
        .seq = (uint64_t)s_now_ms() * 1000,
    };
    msg_open("bench_loadgen", MSG_TO_STDERR);
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        const char *v = i + 1 < argc ? argv[i + 1] : NULL;
#define ARG(name) (!strcmp(a, name) && v && (i++, 1))
        if (ARG("-e"))
            o.endpoint = v;
        else if (ARG("--sites"))
            o.sites = atol(v);
        else if (ARG("--site"))
            o.site = v;
        else if (ARG("--sensor"))
            o.sensor = v;
        else if (ARG("--sensors"))
            o.sensors = atol(v);
        else if (ARG("--sensor-first"))
            o.sensor_first = atol(v);
        else if (ARG("--events"))
            o.events = atol(v);
        else if (ARG("--batch"))
            o.batch = atol(v);
        else if (ARG("--subject"))
            o.subject = v;
        else if (ARG("--distinct"))
            o.distinct = atol(v);
        else if (ARG("--ip"))
            o.ip = v;
        else if (ARG("--ips"))
            o.ips = atol(v);
        else if (ARG("--seq"))
            o.seq = strtoull(v, NULL, 10);
        else if (ARG("--time-offset"))
            o.time_offset = atoll(v);
        else if (ARG("--bad"))
            o.bad = v;
        else if (ARG("--curve-key"))
            o.curve_key = v;
        else if (ARG("--server-key"))
            o.server_pub = v;
        else if (ARG("--marker"))
            o.marker = v;
        else if (ARG("--socket"))
            o.socket = v;
        else if (ARG("--applied"))
            o.applied = strtoull(v, NULL, 10);
        else if (ARG("--epoch"))
            o.epoch = strtoull(v, NULL, 0);
        else if (!strcmp(a, "--rule-match"))
            o.rule_match = 1;
        else if (!strcmp(a, "--rows"))
            o.rows = 1;
        else if (!strcmp(a, "--repeat-first"))
            o.repeat_first = 1;
        else
            s_usage();
#undef ARG
    }
    if (!o.endpoint || o.sites < 1 || o.batch < 1 || o.batch > WIRE_MAX_EVENTS || o.events < 0 ||
        o.distinct < 1 || o.ips < 1 || o.sensors < 0 || o.sensor_first < 0 ||
        (o.sensors && (o.bad || o.marker)))
        s_usage();
    if (o.bad && !strcmp(o.bad, "rawtcp"))
        return s_raw_tcp(o.endpoint) < 0 ? EX_UNAVAILABLE : 0;
    void *ctx = zmq_ctx_new();
    void *s = s_connect(ctx, &o);
    int rc = 0;
    if (o.socket && !strcmp(o.socket, "sub")) {
        /* a subscriber can only send subscriptions: junk ones */
        static const char topic[] = "\xff\x00junk-topic";
        zmq_setsockopt(s, ZMQ_SUBSCRIBE, topic, sizeof(topic));
        zmq_setsockopt(s, ZMQ_UNSUBSCRIBE, "nothing", 7);
        struct timespec ts = {0, 200 * 1000 * 1000};
        nanosleep(&ts, NULL); /* let the subscription reach the PUB before closing */
    } else if (o.bad) {
        rc = s_bad(s, &o);
    } else if (o.sensors) {
        char name[WIRE_MAX_ID + 1];
        for (long k = o.sensor_first; rc == 0 && k < o.sensor_first + o.sensors; k++) {
            opts_t m = o;
            if ((size_t)snprintf(name, sizeof(name), "%s%ld", o.sensor, k) >= sizeof(name))
                s_usage();
            m.sensor = name;
            rc = s_storm(s, &m);
        }
    } else {
        rc = s_storm(s, &o);
        if (rc == 0 && o.marker) {
            /* a 3-site wave on the same connection: once its decision is out, everything
             * sent before it was counted (one connection is read in order) */
            opts_t m = o;
            m.subject = o.marker;
            m.site = NULL;
            m.sites = 3;
            m.events = 450;
            m.distinct = 1;
            m.ips = 450;
            m.rule_match = 0;
            m.repeat_first = 0;
            m.seq = o.seq + (uint64_t)o.events + 10;
            rc = s_storm(s, &m);
        }
    }
    if (rc < 0)
        fprintf(stderr, "bench_loadgen: send: %s\n", zmq_strerror(errno));
    zmq_close(s);
    zmq_ctx_term(ctx);
    return rc < 0 ? EX_UNAVAILABLE : 0;
}
