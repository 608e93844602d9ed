/*
 * NAME
 *   bench_feed - feed the aggregator realistic bounce event streams
 *
 * SYNOPSIS
 *   bench_feed [--endpoint EP] [--sites N] [--sensors N] [--rate EPS] [--duration S]
 *              [--events N] [--subjects N] [--zipf S] [--ips N] [--ip-zipf S] [--batch N]
 *              [--storm SUBJECT] [--storm-size N] [--storm-sites K] [--storm-ips N]
 *              [--storm-at S] [--storm-spread S] [--seed N] [--site-prefix P]
 *              [--key-dir DIR --server-key Z85] [--no-status] [--quiet] [--rows]
 *
 * DESCRIPTION
 *   Speaks the sensor side of the events channel (PROTOCOL.md 1.1, 5): one
 *   PUSH socket per simulated site, EventBatch frames of bounce events with
 *   subject, original-subject, client IP and client network keys
 *   fingerprinted as sensors do (fp_text of the normalised text), and a
 *   SensorStatus per sensor every second so `backstop status` lists them.
 *
 *   Background traffic: --rate events per second in total (0: as fast as the
 *   sockets take them) for --duration seconds or --events events, spread over
 *   --sites sites and their --sensors sensors; subjects and reflecting IPs are
 *   drawn from Zipf distributions (exponent --zipf, default 0.8, over --subjects
 *   subjects; --ip-zipf, default 0.6, over --ips addresses in 198.18.0.0/15),
 *   so a few keys are hot and most are rare, as in real mail. With the
 *   defaults (100 events/s, 100000 subjects and addresses) the background
 *   stays below the shipped rules' thresholds; raise --rate or --zipf to
 *   make background keys fire too. Half the bounces quote their original (orig_subject key), one
 *   in five matched a content rule.
 *
 *   A storm (--storm SUBJECT, raw as it would stand in a bounce; normalised
 *   with subject_key): --storm-size extra events with that subject, from
 *   --storm-ips reflecting addresses in 203.0.113.0/24, spread evenly over the
 *   first --storm-sites sites, starting --storm-at seconds in and lasting
 *   --storm-spread seconds. Every storm event matched a content rule.
 *   Storms cross the default fleet_subject rule when size >= 400 and sites >= 3.
 *
 *   Events carry the current wall-clock time and per-sensor sequence numbers
 *   starting at the start time in microseconds, so reruns are not duplicates.
 *   With --key-dir, site i authenticates with DIR/SITE.key (as written by
 *   `backstop sites add SITE --key-dir DIR`) against --server-key.
 *   Sends block (at most 5 s) rather than drop, so what is reported sent was
 *   handed to ZeroMQ. Batches go as columns (EventColumns), as a current
 *   sensor sends them to a current aggregator; --rows sends the older row form.
 *
 * DIAGNOSTICS
 *   One summary line on stdout: events, frames, storm events, seconds, rate.
 *   Exit 0; 64 for a bad option; 69 when the aggregator does not take a frame
 *   within 5 s; 78 for unusable keys.
 *
 * EXAMPLES
 *   bench_feed --endpoint tcp://127.0.0.1:5570 --sites 20 --rate 5000 --duration 30
 *   bench_feed --sites 5 --rate 200 --duration 20 --storm 'Undeliverable: Cheap meds 4417' \
 *              --storm-size 600 --storm-sites 4 --storm-at 5 --storm-spread 10
 */
#include <errno.h>
#include <math.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sysexits.h>
#include <time.h>
#include <zmq.h>

#include "bench_zipf.h"
#include "fp.h"
#include "msg.h"
#include "netaddr.h"
#include "subject.h"
#include "xalloc.h"
#include "zsock.h"

#define S_KEYS      4    /* keys per event: subject, orig_subject, client_ip, client_net */
#define S_TEXT_MAX  80   /* generated subject text */
#define S_SEND_MS   5000 /* a send blocked this long means the aggregator is gone */
#define S_FLUSH_MS  100  /* a partial batch waits at most this long (PROTOCOL.md 5.1) */
#define S_TICK_MS   5    /* scheduling step */
#define S_STATUS_MS 1000 /* SensorStatus period */

/* Options. */
typedef struct {
    const char *endpoint;   /* aggregator's event endpoint */
    int sites;              /* simulated sites */
    int sensors;            /* sensors per site */
    double rate;            /* background events per second (0: flat out) */
    double duration_s;      /* background duration */
    uint64_t events;        /* background events in total (0: rate * duration) */
    int subjects;           /* distinct background subjects */
    double zipf;            /* Zipf exponent over subjects */
    double ip_zipf;         /* Zipf exponent over reflecting addresses */
    int ips;                /* distinct reflecting addresses */
    int batch;              /* events per frame */
    const char *storm;      /* storm subject (raw), NULL: no storm */
    uint64_t storm_size;    /* storm events */
    int storm_sites;        /* sites that see the storm */
    int storm_ips;          /* reflecting addresses of the storm */
    double storm_at_s;      /* storm start */
    double storm_spread_s;  /* storm length */
    uint64_t seed;          /* random seed */
    const char *prefix;     /* site name prefix */
    const char *key_dir;    /* CURVE: site key files */
    const char *server_key; /* CURVE: aggregator's public key */
    bool status;            /* send SensorStatus frames */
    bool quiet;             /* no progress lines */
    bool rows;              /* batches as rows (older aggregators), not columns */
} s_opts_t;

/* One simulated sensor: its socket is its site's, its batch its own. */
typedef struct {
    char site[WIRE_MAX_ID + 1]; /* site name */
    char name[WIRE_MAX_ID + 1]; /* sensor name */
    void *sock;                 /* the site's PUSH (shared by its sensors) */
    uint64_t seq;               /* next event sequence number */
    wire_batch_t *batch;        /* the events waiting for their frame */
    bool rows;                  /* pack them as rows (--rows), not columns */
    size_t n;                   /* events in the batch */
    int64_t first_ms;           /* when the batch's first event was made */
    uint64_t sent;              /* events sent */
} s_sensor_t;

/* ---- random numbers (bench_zipf.h draws with s_rng) ---- */

static uint64_t s_rng;

/* ---- time ---- */

static int64_t s_wall_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static double s_mono_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* ---- events ---- */

/* The normalised text of background subject k: letters only, as a subject key is. */
static void s_subject_text(int k, char *out, size_t len)
{
    static const char *const w1[] = {"cheap", "special", "exclusive", "urgent", "your",
                                     "final", "limited", "free",      "secret", "best"};
    static const char *const w2[] = {"meds",  "offer",  "invoice", "watches", "loan",
                                     "prize", "dating", "account", "pills",   "deal"};
    char tag[8];
    int t = k / 100, i = 0;
    do {
        tag[i++] = (char)('a' + t % 26);
        t /= 26;
    } while (t && i < 7);
    tag[i] = '\0';
    snprintf(out, len, "%s %s %s", w1[k % 10], w2[(k / 10) % 10], tag);
}

/* Appends one event to sensor s. */
static void s_add_event(s_sensor_t *s, const char *text, const uint8_t ip[4], bool rule_match,
                        bool quoted, int64_t now_ms)
{
    static const char *const rule_label[] = {"feed_backscatter"};
    netaddr_t a;
    char iptext[NETADDR_CIDRLEN], nettext[NETADDR_CIDRLEN];
    netaddr_from_wire(&a, ip, 4);
    netaddr_format(&a, iptext, sizeof(iptext));
    netaddr_network_text(&a, nettext, sizeof(nettext));
    const struct {
        Backstop__Scope scope;
        const char *text;
    } keys[S_KEYS] = {{BACKSTOP__SCOPE__SUBJECT, text},
                      {BACKSTOP__SCOPE__CLIENT_IP, iptext},
                      {BACKSTOP__SCOPE__CLIENT_NET, nettext},
                      {BACKSTOP__SCOPE__ORIG_SUBJECT, text}};
    wire_key_t k[S_KEYS];
    size_t nk = 0;
    for (int j = 0; j < S_KEYS; j++) {
        if (keys[j].scope == BACKSTOP__SCOPE__ORIG_SUBJECT && !quoted)
            continue;
        size_t len = strnlen(keys[j].text, S_TEXT_MAX);
        k[nk++] = (wire_key_t){keys[j].scope, fp_text(keys[j].text), keys[j].text, len};
    }
    wire_event_t e = {
        .seq = s->seq++,
        .time_ms = now_ms,
        .msg_class = BACKSTOP__MSG_CLASS__BOUNCE,
        .client_ip = ip,
        .client_ip_len = 4,
        .keys = k,
        .nkeys = nk,
        .rules = rule_label,
        .nrules = rule_match ? 1 : 0,
        .original =
            quoted ? BACKSTOP__ORIGINAL__ORIGINAL_HEADERS : BACKSTOP__ORIGINAL__ORIGINAL_NONE,
    };
    wire_batch_add(s->batch, &e);
    if (s->n == 0)
        s->first_ms = now_ms;
    s->n++;
}

/* Sends sensor s's batch; 0, or -1 when the aggregator did not take it in time. */
static int s_flush(s_sensor_t *s, uint64_t *frames)
{
    if (s->n == 0)
        return 0;
    size_t len;
    wire_err_t err = WIRE_OK;
    uint8_t *buf = wire_batch_pack(s->batch, s->site, s->name, !s->rows, &len, &err);
    if (!buf) {
        fprintf(stderr, "bench_feed: cannot pack a batch: %s\n", wire_err_name(err));
        return -1;
    }
    wire_batch_reset(s->batch);
    int rc = zsock_send_raw(s->sock, buf, len, 0);
    xfree(buf);
    if (rc < 0) {
        fprintf(stderr, "bench_feed: send to the aggregator failed: %s\n",
                errno == EAGAIN ? "not taken within 5 s (is it running?)" : zmq_strerror(errno));
        return -1;
    }
    s->sent += s->n;
    s->n = 0;
    (*frames)++;
    return 0;
}

static int s_status(s_sensor_t *s, int64_t now_ms)
{
    Backstop__SensorStatus st = BACKSTOP__SENSOR_STATUS__INIT;
    Backstop__Frame f;
    st.site = s->site;
    st.sensor = s->name;
    st.time_ms = now_ms;
    st.has_events_sent = 1;
    st.events_sent = s->sent;
    wire_frame_init(&f, BACKSTOP__FRAME__BODY_STATUS, &st);
    return zsock_send(s->sock, &f, 0);
}

/* ---- options ---- */

static void s_usage(void)
{
    fputs("usage: bench_feed [--endpoint EP] [--sites N] [--sensors N] [--rate EPS]\n"
          "         [--duration S] [--events N] [--subjects N] [--zipf S] [--ips N]\n"
          "         [--ip-zipf S] [--batch N]\n"
          "         [--storm SUBJECT] [--storm-size N] [--storm-sites K] [--storm-ips N]\n"
          "         [--storm-at S] [--storm-spread S] [--seed N] [--site-prefix P]\n"
          "         [--key-dir DIR --server-key Z85] [--no-status] [--quiet] [--rows]\n"
          "(see the header of tests/bench/bench_feed.c)\n",
          stderr);
}

/* A number option in [min, max]; exits EX_USAGE otherwise. */
static double s_num(const char *name, const char *v, double min, double max)
{
    char *end;
    errno = 0;
    double d = v ? strtod(v, &end) : 0;
    if (v == NULL || errno || end == v || *end || d < min || d > max) {
        fprintf(stderr, "bench_feed: %s wants a number from %g to %g, not \"%s\"\n", name, min, max,
                v ? v : "");
        exit(EX_USAGE);
    }
    return d;
}

static void s_parse(s_opts_t *o, int argc, char **argv)
{
    *o = (s_opts_t){.endpoint = "tcp://127.0.0.1:5570",
                    .sites = 10,
                    .sensors = 1,
                    .rate = 100,
                    .duration_s = 10,
                    .subjects = 100000,
                    .zipf = 0.8,
                    .ip_zipf = 0.6,
                    .ips = 100000,
                    .batch = 200,
                    .storm_size = 500,
                    .storm_sites = 5,
                    .storm_ips = 20,
                    .storm_at_s = 2,
                    .storm_spread_s = 10,
                    .seed = 1,
                    .prefix = "site",
                    .status = true};
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
        int used = 1;
        if (strcmp(a, "--endpoint") == 0 && v)
            o->endpoint = v;
        else if (strcmp(a, "--sites") == 0)
            o->sites = (int)s_num(a, v, 1, 10000);
        else if (strcmp(a, "--sensors") == 0)
            o->sensors = (int)s_num(a, v, 1, 100);
        else if (strcmp(a, "--rate") == 0)
            o->rate = s_num(a, v, 0, 1e8);
        else if (strcmp(a, "--duration") == 0)
            o->duration_s = s_num(a, v, 0, 86400);
        else if (strcmp(a, "--events") == 0)
            o->events = (uint64_t)s_num(a, v, 0, 1e12);
        else if (strcmp(a, "--subjects") == 0)
            o->subjects = (int)s_num(a, v, 1, 10000000);
        else if (strcmp(a, "--zipf") == 0)
            o->zipf = s_num(a, v, 0, 10);
        else if (strcmp(a, "--ip-zipf") == 0)
            o->ip_zipf = s_num(a, v, 0, 10);
        else if (strcmp(a, "--ips") == 0)
            o->ips = (int)s_num(a, v, 1, 131072);
        else if (strcmp(a, "--batch") == 0)
            o->batch = (int)s_num(a, v, 1, WIRE_MAX_EVENTS);
        else if (strcmp(a, "--storm") == 0 && v)
            o->storm = v;
        else if (strcmp(a, "--storm-size") == 0)
            o->storm_size = (uint64_t)s_num(a, v, 0, 1e9);
        else if (strcmp(a, "--storm-sites") == 0)
            o->storm_sites = (int)s_num(a, v, 1, 10000);
        else if (strcmp(a, "--storm-ips") == 0)
            o->storm_ips = (int)s_num(a, v, 1, 254);
        else if (strcmp(a, "--storm-at") == 0)
            o->storm_at_s = s_num(a, v, 0, 86400);
        else if (strcmp(a, "--storm-spread") == 0)
            o->storm_spread_s = s_num(a, v, 0, 86400);
        else if (strcmp(a, "--seed") == 0)
            o->seed = (uint64_t)s_num(a, v, 0, 1e18);
        else if (strcmp(a, "--site-prefix") == 0 && v)
            o->prefix = v;
        else if (strcmp(a, "--key-dir") == 0 && v)
            o->key_dir = v;
        else if (strcmp(a, "--server-key") == 0 && v)
            o->server_key = v;
        else if (strcmp(a, "--no-status") == 0)
            o->status = false, used = 0;
        else if (strcmp(a, "--quiet") == 0)
            o->quiet = true, used = 0;
        else if (strcmp(a, "--rows") == 0)
            o->rows = true, used = 0;
        else if (strcmp(a, "-h") == 0 || strcmp(a, "--help") == 0) {
            s_usage();
            exit(0);
        } else {
            fprintf(stderr, "bench_feed: unknown or incomplete option %s\n", a);
            s_usage();
            exit(EX_USAGE);
        }
        i += used;
    }
    if (o->storm_sites > o->sites)
        o->storm_sites = o->sites;
    if ((o->key_dir == NULL) != (o->server_key == NULL)) {
        fprintf(stderr, "bench_feed: --key-dir and --server-key go together\n");
        exit(EX_USAGE);
    }
}

int main(int argc, char **argv)
{
    s_opts_t o;
    uint64_t frames = 0, bg_sent = 0, storm_sent = 0;
    int rc = 0;

    msg_open("bench_feed", MSG_TO_STDERR);
    s_parse(&o, argc, argv);
    s_rng = o.seed * 0x9E3779B97F4A7C15ULL + 1;

    char *storm_text = NULL;
    if (o.storm) {
        char *decoded = subject_decode(o.storm);
        storm_text = subject_key(decoded);
        xfree(decoded);
        if (storm_text[0] == '\0') {
            fprintf(stderr, "bench_feed: storm subject \"%s\" normalises to nothing\n", o.storm);
            return EX_USAGE;
        }
        if (strlen(storm_text) > S_TEXT_MAX)
            storm_text[S_TEXT_MAX] = '\0';
    }
    uint64_t bg_total = o.events ? o.events : (uint64_t)(o.rate * o.duration_s);
    double *subj_cdf = zipf_cdf_new(o.subjects, o.zipf);
    double *ip_cdf = zipf_cdf_new(o.ips, o.ip_zipf);

    void *ctx = zmq_ctx_new();
    void **socks = xcalloc((size_t)o.sites, sizeof(void *));
    int nsensors = o.sites * o.sensors;
    s_sensor_t *sensors = xcalloc((size_t)nsensors, sizeof(*sensors));
    uint64_t seq0 = (uint64_t)s_wall_ms() * 1000;
    int send_timeout = S_SEND_MS;
    for (int i = 0; i < o.sites; i++) {
        char site[WIRE_MAX_ID + 1];
        snprintf(site, sizeof(site), "%s%02d", o.prefix, i + 1);
        socks[i] = zsock_new(ctx, ZMQ_PUSH);
        if (socks[i] == NULL)
            return EX_UNAVAILABLE;
        zmq_setsockopt(socks[i], ZMQ_SNDTIMEO, &send_timeout, sizeof(send_timeout));
        if (o.key_dir) {
            zsock_keys_t keys;
            char *path = xasprintf("%s/%s.key", o.key_dir, site);
            if (zsock_keys_load(path, &keys) < 0 ||
                zsock_curve_client(socks[i], &keys, o.server_key) < 0)
                return EX_CONFIG;
            xfree(path);
        }
        if (zsock_connect(socks[i], o.endpoint) < 0)
            return EX_USAGE;
        for (int j = 0; j < o.sensors; j++) {
            s_sensor_t *s = &sensors[i * o.sensors + j];
            snprintf(s->site, sizeof(s->site), "%s", site);
            snprintf(s->name, sizeof(s->name), "feed%d", j + 1);
            s->sock = socks[i];
            s->seq = seq0;
            s->batch = wire_batch_new();
            s->rows = o.rows;
        }
    }

    double t0 = s_mono_s(), last_status = -1, last_report = 0;
    bool storm_done = storm_text == NULL || o.storm_size == 0;
    while (rc == 0 && (bg_sent < bg_total || !storm_done)) {
        double t = s_mono_s() - t0;
        int64_t now_ms = s_wall_ms();
        uint64_t bg_due = o.rate > 0 ? (uint64_t)(o.rate * t) : bg_sent + (uint64_t)o.batch;
        if (bg_due > bg_total)
            bg_due = bg_total;
        uint64_t storm_due = 0;
        if (!storm_done && t >= o.storm_at_s) {
            double f = o.storm_spread_s > 0 ? (t - o.storm_at_s) / o.storm_spread_s : 1.0;
            storm_due = f >= 1.0 ? o.storm_size : (uint64_t)(f * (double)o.storm_size);
        }
        while (rc == 0 && (bg_sent < bg_due || storm_sent < storm_due)) {
            s_sensor_t *s;
            uint8_t ip[4];
            char text[S_TEXT_MAX + 1];
            if (storm_sent < storm_due) {
                int site = (int)(storm_sent % (uint64_t)o.storm_sites);
                s = &sensors[site * o.sensors + (int)(bench_rand(&s_rng) % (uint64_t)o.sensors)];
                int k = (int)(bench_rand(&s_rng) % (uint64_t)o.storm_ips);
                ip[0] = 203, ip[1] = 0, ip[2] = 113, ip[3] = (uint8_t)(k + 1);
                s_add_event(s, storm_text, ip, true, bench_uniform(&s_rng) < 0.5, now_ms);
                storm_sent++;
            } else {
                s = &sensors[bench_rand(&s_rng) % (uint64_t)nsensors];
                int k = zipf_draw(subj_cdf, o.subjects, bench_uniform(&s_rng));
                s_subject_text(k, text, sizeof(text));
                int r = zipf_draw(ip_cdf, o.ips, bench_uniform(&s_rng));
                /* 198.18.0.0/15 (benchmarking) spread over /24s */
                ip[0] = 198, ip[1] = (uint8_t)(18 + (r >> 16 & 1)), ip[2] = (uint8_t)(r >> 8),
                ip[3] = (uint8_t)(r & 0xFF);
                s_add_event(s, text, ip, bench_uniform(&s_rng) < 0.2, bench_uniform(&s_rng) < 0.5,
                            now_ms);
                bg_sent++;
            }
            if (s->n == (size_t)o.batch && s_flush(s, &frames) < 0)
                rc = EX_UNAVAILABLE;
        }
        if (storm_text && storm_sent >= o.storm_size)
            storm_done = true;
        for (int i = 0; rc == 0 && i < nsensors; i++)
            if (sensors[i].n &&
                (now_ms - sensors[i].first_ms >= S_FLUSH_MS || (bg_sent >= bg_total && storm_done)))
                if (s_flush(&sensors[i], &frames) < 0)
                    rc = EX_UNAVAILABLE;
        if (rc == 0 && o.status && (last_status < 0 || t - last_status >= S_STATUS_MS / 1000.0)) {
            for (int i = 0; i < nsensors; i++)
                (void)s_status(&sensors[i], now_ms);
            last_status = t;
        }
        if (!o.quiet && t - last_report >= 5) {
            fprintf(stderr, "bench_feed: t=%.0fs events=%llu storm=%llu\n", t,
                    (unsigned long long)bg_sent, (unsigned long long)storm_sent);
            last_report = t;
        }
        if (o.rate > 0 || !storm_done) {
            struct timespec ts = {0, S_TICK_MS * 1000000L};
            nanosleep(&ts, NULL);
        }
    }
    double secs = s_mono_s() - t0;
    if (rc == 0 && o.status)
        for (int i = 0; i < nsensors; i++)
            (void)s_status(&sensors[i], s_wall_ms());
    printf("bench_feed: events=%llu storm=%llu frames=%llu sites=%d sensors=%d seconds=%.2f "
           "rate=%.0f/s%s\n",
           (unsigned long long)bg_sent, (unsigned long long)storm_sent, (unsigned long long)frames,
           o.sites, nsensors, secs, secs > 0 ? (double)(bg_sent + storm_sent) / secs : 0.0,
           rc ? " (stopped: aggregator unreachable)" : "");
    for (int i = 0; i < nsensors; i++) {
        s_sensor_t *s = &sensors[i];
        wire_batch_destroy(&s->batch);
    }
    for (int i = 0; i < o.sites; i++)
        zsock_close(&socks[i]);
    zmq_ctx_term(ctx);
    xfree(socks);
    xfree(sensors);
    xfree(subj_cdf);
    xfree(ip_cdf);
    xfree(storm_text);
    return rc;
}
