/*
 * NAME
 *   bench_aggregator - the aggregator's three benchmarks, each against a baseline
 *
 * SYNOPSIS
 *   bench_aggregator ingest [--quick] [--events N] [--batch N] [--repeat N] [--rows]
 *   bench_aggregator propagation [--quick] [--rounds N] [--nosync] [--rows]
 *   bench_aggregator restart [--quick] [--keys N]
 *
 * DESCRIPTION
 *   Runs the real backstop-aggregator (next to this program in the build
 *   directory) with a fresh LevelDB in a mkdtemp directory, plus helper
 *   processes, and prints each result as a ratio against a baseline measured
 *   in the same run:
 *
 *   ingest       4 producer processes (this program, one site each, frames of
 *                --batch events packed before the start from bench_stream.h's
 *                streams: uniform over 100 000 subjects, then Zipf with storms)
 *                send --events events each; the rate is taken from the first
 *                send until `status` reports them all received and counted,
 *                with LevelDB persistence on. Baseline: raw libzmq PUSH->PULL,
 *                4 producer processes sending 100-byte frames, frames/s.
 *                Goal: events/s >= 1.0 x frames/s. Also printed: the daemon's
 *                CPU time per event (its event loop, and all its threads),
 *                which other load on the host disturbs far less. --repeat N runs
 *                N rounds (baseline, uniform, Zipf) and adds the median of each
 *                round's ratio to its own baseline: the host's load drifts.
 *   propagation  10 bench_subscriber processes follow the feed; each round sends
 *                399 events of a new subject from 3 sites, waits until they are
 *                counted, then sends the 400th (the one crossing fleet_subject's
 *                threshold) and takes the time until each subscriber prints the
 *                update (CLOCK_MONOTONIC on one host). Baseline: raw PUB->SUB to
 *                10 subscriber processes. Goal p99 <= 2 ms. --nosync turns the
 *                decision write's fsync off (sync_decisions = no) to show its share.
 *   restart      loads --keys distinct subject keys (1 000 000), reads the
 *                aggregator's VmRSS, stops it (SIGTERM, flushed), starts it again
 *                and times spawn -> first answered `status` (serving again), and
 *                the RSS after the restore. Baseline: the same for an empty
 *                database. Goals: <= 256 MB RSS, <= 2 s back to serving.
 *   --quick shrinks every size for a smoke run. Event batches go as a current
 *   sensor sends them to the aggregator, by what its first heartbeat announces:
 *   as columns (EventColumns), each key's text only with its first event of the
 *   minute (WIRE_FEATURE_TEXT_ONCE), and only keys of the scopes it reads
 *   (Heartbeat.scopes: the /24 key stays home under the shipped rules); --rows
 *   sends the old row format (one Event message per event, every key and text)
 *   to compare.
 *
 * DIAGNOSTICS
 *   Exit 0, 64 usage, 69/70 when a process cannot be started or does not answer.
 */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <limits.h>
#include <math.h>
#include <signal.h>
#include <spawn.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>
#include <zmq.h>

#include "bench_stream.h"
#include "fp.h"
#include "msg.h"
#include "wire.h"
#include "xalloc.h"
#include "zsock.h"

extern char **environ;

static char s_bindir[PATH_MAX];
static char s_tmp[64];
static bool s_rows; /* --rows: send event batches as rows (the old format), for comparison */

static int64_t s_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000000LL + ts.tv_nsec;
}

static int64_t s_wall_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* Spawns argv with stdout (and stderr when err_fd >= 0) redirected; returns the pid. */
static pid_t s_spawn(char *const argv[], int out_fd, int err_fd)
{
    posix_spawn_file_actions_t fa;
    posix_spawn_file_actions_init(&fa);
    if (out_fd >= 0)
        posix_spawn_file_actions_adddup2(&fa, out_fd, 1);
    if (err_fd >= 0)
        posix_spawn_file_actions_adddup2(&fa, err_fd, 2);
    pid_t pid;
    if (posix_spawn(&pid, argv[0], &fa, NULL, argv, environ) != 0)
        msg_fatal(EX_UNAVAILABLE, "cannot start %s: %m", argv[0]);
    posix_spawn_file_actions_destroy(&fa);
    return pid;
}

/* ---- the aggregator under test ---- */

typedef struct {
    pid_t pid;
    char conf[128];
    char log[128];
    char ev[128];
    char de[128];
    char sn[128];
    char ctl[128];
} agg_t;

static void s_agg_conf(agg_t *a, bool sync)
{
    snprintf(a->conf, sizeof(a->conf), "%s/agg.conf", s_tmp);
    snprintf(a->log, sizeof(a->log), "%s/agg.log", s_tmp);
    snprintf(a->ctl, sizeof(a->ctl), "ipc://%s/ctl.sock", s_tmp);
    FILE *fp = fopen(a->conf, "w");
    fprintf(fp,
            "event_endpoint = tcp://127.0.0.1:*\ndecision_endpoint = tcp://127.0.0.1:*\n"
            "snapshot_endpoint = tcp://127.0.0.1:*\ncontrol_endpoint = %s\n"
            "data_dir = %s/db\nmax_keys = 0\nsync_decisions = %s\n",
            a->ctl, s_tmp, sync ? "yes" : "no");
    fclose(fp);
}

/* Starts the aggregator and waits for its ready line; returns spawn-to-ready in ns. */
static int64_t s_agg_start(agg_t *a)
{
    char bin[PATH_MAX + 32];
    snprintf(bin, sizeof(bin), "%s/backstop-aggregator", s_bindir);
    int fd = open(a->log, O_WRONLY | O_CREAT | O_TRUNC, 0644);
    char *argv[] = {bin, "-c", a->conf, "-f", NULL};
    int64_t t0 = s_ns();
    a->pid = s_spawn(argv, fd, fd);
    close(fd);
    for (int i = 0; i < 60000; i++) {
        FILE *fp = fopen(a->log, "r");
        char line[1024];
        while (fp && fgets(line, sizeof(line), fp)) {
            char *r = strstr(line, "ready: events=");
            if (r && sscanf(r, "ready: events=%127s decisions=%127s snapshot=%127s", a->ev, a->de,
                            a->sn) == 3) {
                fclose(fp);
                return s_ns() - t0;
            }
        }
        if (fp)
            fclose(fp);
        int st;
        if (waitpid(a->pid, &st, WNOHANG) == a->pid)
            msg_fatal(EX_SOFTWARE, "aggregator exited; see %s", a->log);
        struct timespec ts = {0, 1000 * 1000};
        nanosleep(&ts, NULL);
    }
    msg_fatal(EX_SOFTWARE, "aggregator not ready; see %s", a->log);
}

static void s_agg_stop(agg_t *a)
{
    kill(a->pid, SIGTERM);
    int st;
    waitpid(a->pid, &st, 0);
}

/* VmRSS of pid in kB; *anon_kb (may be NULL) gets RssAnon, without the file pages
 * LevelDB maps (page cache the kernel can drop). */
static long s_rss_kb2(pid_t pid, long *anon_kb)
{
    char path[64], line[256];
    snprintf(path, sizeof(path), "/proc/%d/status", (int)pid);
    FILE *fp = fopen(path, "r");
    long kb = -1, anon = -1;
    while (fp && fgets(line, sizeof(line), fp)) {
        (void)sscanf(line, "VmRSS: %ld kB", &kb);
        (void)sscanf(line, "RssAnon: %ld kB", &anon);
    }
    if (anon_kb)
        *anon_kb = anon;
    if (fp)
        fclose(fp);
    return kb;
}

static long s_rss_kb(pid_t pid)
{
    return s_rss_kb2(pid, NULL);
}

/* CPU seconds (user + system) that process pid has used, or its main thread alone (the
 * aggregator's event loop) when loop; -1 when /proc cannot tell. */
static double s_cpu_s(pid_t pid, bool loop)
{
    char path[64], buf[1024];
    if (loop)
        snprintf(path, sizeof(path), "/proc/%d/task/%d/stat", (int)pid, (int)pid);
    else
        snprintf(path, sizeof(path), "/proc/%d/stat", (int)pid);
    FILE *fp = fopen(path, "r");
    if (fp == NULL)
        return -1;
    size_t n = fread(buf, 1, sizeof(buf) - 1, fp);
    fclose(fp);
    buf[n] = 0;
    const char *p = strrchr(buf, ')'); /* the command name may hold spaces */
    unsigned long long ut, st;
    if (p == NULL ||
        sscanf(p + 1, " %*c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u %llu %llu", &ut, &st) != 2)
        return -1;
    return (double)(ut + st) / (double)sysconf(_SC_CLK_TCK);
}

/* Asks STATUS on the control socket; the json in buf; 0 or -1 (no answer in timeout). */
static int s_status(void *ctx, const char *ctl, char *buf, size_t size, int timeout_ms)
{
    void *d = zsock_new(ctx, ZMQ_DEALER);
    int rc = -1;
    if (zsock_connect(d, ctl) < 0) {
        zsock_close(&d);
        return -1;
    }
    Backstop__ControlRequest req = BACKSTOP__CONTROL_REQUEST__INIT;
    req.command = BACKSTOP__CONTROL_REQUEST__COMMAND__STATUS;
    Backstop__Frame f;
    wire_frame_init(&f, BACKSTOP__FRAME__BODY_CONTROL_REQUEST, &req);
    int64_t end = s_ns() + (int64_t)timeout_ms * 1000000;
    while (zsock_send(d, &f, ZMQ_DONTWAIT) < 0 && s_ns() < end) {
        struct timespec ts = {0, 200 * 1000};
        nanosleep(&ts, NULL);
    }
    zmq_pollitem_t it = {d, 0, ZMQ_POLLIN, 0};
    while (s_ns() < end) {
        if (zmq_poll(&it, 1, 10) > 0) {
            Backstop__Frame *r = NULL;
            if (zsock_recv(d, ZMQ_DONTWAIT, &r, NULL, NULL) == 1 &&
                r->body_case == BACKSTOP__FRAME__BODY_CONTROL_REPLY && r->control_reply->json) {
                snprintf(buf, size, "%s", r->control_reply->json);
                rc = 0;
            }
            wire_free(&r);
            break;
        }
    }
    zsock_close(&d);
    return rc;
}

static long long s_json_num(const char *json, const char *key)
{
    char pat[64];
    snprintf(pat, sizeof(pat), "\"%s\":", key);
    const char *p = strstr(json, pat);
    return p ? atoll(p + strlen(pat)) : -1;
}

/* Waits until status says key >= want; returns the monotonic ns when it did. */
static int64_t s_wait_status(void *ctx, const agg_t *a, const char *key, long long want,
                             int64_t timeout_ms)
{
    static char json[1 << 20];
    int64_t end = s_ns() + timeout_ms * 1000000;
    while (s_ns() < end) {
        if (s_status(ctx, a->ctl, json, sizeof(json), 2000) == 0 && s_json_num(json, key) >= want)
            return s_ns();
        struct timespec ts = {0, 2 * 1000 * 1000};
        nanosleep(&ts, NULL);
    }
    msg_fatal(EX_SOFTWARE, "timeout waiting for %s >= %lld", key, want);
}

/* ---- ingest ---- */

/* Producers are started with a pipe on stdin and stdout: each prepares everything it will
 * send, connects, says "ready" and waits for one byte before the first send, so the clock
 * starts when all are ready and measures sending and receiving only (for both sides). */
static void s_ready_and_wait(void)
{
    char c;
    fputs("ready\n", stdout);
    fflush(stdout);
    if (read(0, &c, 1) != 1)
        exit(EX_SOFTWARE);
}

static void *s_push(void *ctx, const char *ep)
{
    void *s = zmq_socket(ctx, ZMQ_PUSH);
    int hwm = ZSOCK_HWM_PUSH, linger = -1;
    zmq_setsockopt(s, ZMQ_SNDHWM, &hwm, sizeof(hwm));
    zmq_setsockopt(s, ZMQ_LINGER, &linger, sizeof(linger));
    zmq_connect(s, ep);
    return s;
}

static int s_raw_producer(const char *ep, long n)
{
    void *ctx = zmq_ctx_new();
    void *s = s_push(ctx, ep);
    char frame[100];
    memset(frame, 'x', sizeof(frame));
    s_ready_and_wait();
    for (long i = 0; i < n; i++)
        zmq_send(s, frame, sizeof(frame), 0);
    zmq_close(s);
    zmq_ctx_term(ctx);
    return 0;
}

#define S_SUBJECTS 100000
#define S_IPS      50000

/* The events producer: packs n events for site (generator seed) in frames of batch
 * events before the start, then sends them: bench_stream.h's stream over S_SUBJECTS
 * subjects and S_IPS addresses, uniform (zipf 0: every key at every site, the worst case)
 * or Zipf with storms (zipf 1: decisions are made and published during the run). */
static int s_event_producer(const char *ep, const char *site, long n, long batch, int zipf,
                            uint64_t seed, bool rows, uint32_t features, uint32_t scopes)
{
    bench_stream_t bs;
    bench_stream_init(&bs, zipf, S_SUBJECTS, S_IPS);
    uint64_t rng = bench_stream_seed(seed);
    long nframes = (n + batch - 1) / batch;
    uint8_t **frames = xcalloc((size_t)nframes, sizeof(*frames));
    size_t *lens = xcalloc((size_t)nframes, sizeof(*lens));
    wire_batch_t *wb = wire_batch_new();
    /* as a sensor (uplink_pack_events) sends to the aggregator whose heartbeat announced
     * features and scopes: in columns only, a key's text with its first event of the minute
     * (WIRE_FEATURE_TEXT_ONCE), and only keys of the scopes it reads; rows carry everything */
    wire_textmem_t *texts = !rows && (features & WIRE_FEATURE_TEXT_ONCE)
                                ? wire_textmem_new(WIRE_TEXTMEM_SLOTS, WIRE_TEXTMEM_TTL_MS)
                                : NULL;
    if (rows)
        scopes = 0;
    uint64_t seq = (uint64_t)s_wall_ms() * 1000;
    int64_t now = s_wall_ms();
    long g = 0;
    for (long f = 0; f < nframes; f++) {
        long m = n - g < batch ? n - g : batch;
        for (long i = 0; i < m; i++, g++) {
            int si, ii;
            const bench_keys_t *st;
            bench_stream_draw(&bs, &rng, g, &st, &si, &ii);
            uint8_t ipb[4] = {10, (uint8_t)(ii >> 16), (uint8_t)(ii >> 8), (uint8_t)ii};
            wire_key_t k[3] = {
                {BACKSTOP__SCOPE__SUBJECT, st->fp[si], st->text[si], st->len[si]},
                {BACKSTOP__SCOPE__CLIENT_IP, bs.ip.fp[ii], bs.ip.text[ii], bs.ip.len[ii]},
                {BACKSTOP__SCOPE__CLIENT_NET, bs.net.fp[ii], bs.net.text[ii], bs.net.len[ii]},
            };
            size_t nk = wire_keys_read(k, 3, scopes);
            wire_event_t e = {.seq = seq++,
                              .time_ms = now,
                              .msg_class = BACKSTOP__MSG_CLASS__BOUNCE,
                              .client_ip = ipb,
                              .client_ip_len = 4,
                              .keys = k,
                              .nkeys = nk};
            if (texts)
                wire_textmem_strip(texts, &e, k, now);
            wire_batch_add(wb, &e);
        }
        frames[f] = wire_batch_pack(wb, site, "bench", !rows, &lens[f], NULL);
        wire_batch_reset(wb);
    }
    wire_batch_destroy(&wb);
    wire_textmem_destroy(&texts);
    bench_stream_free(&bs);
    void *ctx = zmq_ctx_new();
    void *s = s_push(ctx, ep);
    s_ready_and_wait();
    for (long f = 0; f < nframes; f++)
        zmq_send(s, frames[f], lens[f], 0);
    zmq_close(s);
    zmq_ctx_term(ctx);
    return 0;
}

/* Starts producer argv i of np with pipes; after all said ready, starts them at once and
 * returns the monotonic ns of the start. */
static int64_t s_start_producers(char **argvs[], int np, pid_t *pids)
{
    int in[8], out[8];
    for (int i = 0; i < np; i++) {
        int pi[2], po[2];
        if (pipe(pi) < 0 || pipe(po) < 0)
            msg_fatal(EX_OSERR, "pipe: %m");
        posix_spawn_file_actions_t fa;
        posix_spawn_file_actions_init(&fa);
        posix_spawn_file_actions_adddup2(&fa, pi[0], 0);
        posix_spawn_file_actions_adddup2(&fa, po[1], 1);
        if (posix_spawn(&pids[i], argvs[i][0], &fa, NULL, argvs[i], environ) != 0)
            msg_fatal(EX_UNAVAILABLE, "cannot start %s: %m", argvs[i][0]);
        posix_spawn_file_actions_destroy(&fa);
        close(pi[0]);
        close(po[1]);
        in[i] = pi[1];
        out[i] = po[0];
    }
    for (int i = 0; i < np; i++) {
        char buf[16];
        if (read(out[i], buf, sizeof(buf)) <= 0)
            msg_fatal(EX_SOFTWARE, "producer %d did not get ready", i);
        close(out[i]);
    }
    int64_t t0 = s_ns();
    for (int i = 0; i < np; i++) {
        if (write(in[i], "g", 1) != 1)
            msg_fatal(EX_SOFTWARE, "producer %d: %m", i);
        close(in[i]);
    }
    return t0;
}

static void s_waitall(pid_t *p, int n)
{
    for (int i = 0; i < n; i++) {
        int st;
        waitpid(p[i], &st, 0);
    }
}

/* CPU the aggregator used for one ingest run, in ns an event. */
typedef struct {
    double loop_ns;    /* its event loop (the main thread) */
    double process_ns; /* every thread: the loop, LevelDB's, the store writer, ZeroMQ's I/O */
} s_cpu_t;

/* What the aggregator's first heartbeat announces, as a sensor hears it: its features and the
 * scopes of the keys it reads (0: all). Fatal when none comes within 10 s. */
static void s_agg_heartbeat(void *ctx, const agg_t *a, uint32_t *features, uint32_t *scopes)
{
    void *sub = zsock_new(ctx, ZMQ_SUB);
    if (sub == NULL || zsock_connect(sub, a->de) < 0 ||
        zsock_subscribe(sub, ZSOCK_TOPIC_HEARTBEAT) < 0)
        msg_fatal(EX_SOFTWARE, "cannot follow %s", a->de);
    zmq_pollitem_t it = {sub, 0, ZMQ_POLLIN, 0};
    int64_t end = s_ns() + 10 * 1000000000LL;
    bool heard = false;
    while (!heard && s_ns() < end) {
        if (zmq_poll(&it, 1, 100) <= 0)
            continue;
        Backstop__Frame *f = NULL;
        if (zsock_recv(sub, ZMQ_DONTWAIT, &f, NULL, NULL) == 1 &&
            f->body_case == BACKSTOP__FRAME__BODY_HEARTBEAT) {
            *features = f->heartbeat->has_features ? f->heartbeat->features : 0;
            *scopes = f->heartbeat->has_scopes ? f->heartbeat->scopes : 0;
            heard = true;
        }
        wire_free(&f);
    }
    zsock_close(&sub);
    if (!heard)
        msg_fatal(EX_UNAVAILABLE, "no heartbeat from the aggregator at %s", a->de);
}

/* One aggregator run of np producers in mode zipf; events/s, and RSS and CPU at the end. */
static double s_ingest_agg(void *ctx, long events, long batch, int zipf, int np, long *rss,
                           double *secs, s_cpu_t *cpu)
{
    char self[PATH_MAX + 32], nbuf[32], bbuf[32], zbuf[16], sbuf[8][16], seedb[8][16], fbuf[16],
        kbuf[16];
    snprintf(self, sizeof(self), "%s/bench_aggregator", s_bindir);
    snprintf(nbuf, sizeof(nbuf), "%ld", events);
    snprintf(bbuf, sizeof(bbuf), "%ld", batch);
    snprintf(zbuf, sizeof(zbuf), "%d", zipf);
    char cmd[PATH_MAX];
    snprintf(cmd, sizeof(cmd), "rm -rf '%s/db'", s_tmp); /* each run starts empty */
    if (system(cmd) != 0)
        msg_fatal(EX_OSERR, "%s failed", cmd);
    agg_t a;
    s_agg_conf(&a, true);
    s_agg_start(&a);
    /* the producers pack as a sensor following this aggregator would */
    uint32_t features = 0, scopes = 0;
    s_agg_heartbeat(ctx, &a, &features, &scopes);
    snprintf(fbuf, sizeof(fbuf), "%u", (unsigned)features);
    snprintf(kbuf, sizeof(kbuf), "%u", (unsigned)scopes);
    pid_t pids[8];
    char *argvs[8][12];
    char **av[8];
    for (int i = 0; i < np; i++) {
        snprintf(sbuf[i], sizeof(sbuf[i]), "site%d", i + 1);
        snprintf(seedb[i], sizeof(seedb[i]), "%d", i + 1);
        char *v[] = {self,     "--event-producer",          a.ev, sbuf[i], nbuf, bbuf, zbuf,
                     seedb[i], s_rows ? "rows" : "columns", fbuf, kbuf,    NULL};
        memcpy(argvs[i], v, sizeof(v));
        av[i] = argvs[i];
    }
    double loop0 = s_cpu_s(a.pid, true), proc0 = s_cpu_s(a.pid, false);
    int64_t t0 = s_start_producers(av, np, pids);
    int64_t t1 = s_wait_status(ctx, &a, "counted", (long long)events * np, 600000);
    double n = (double)events * np;
    cpu->loop_ns = (s_cpu_s(a.pid, true) - loop0) * 1e9 / n;
    cpu->process_ns = (s_cpu_s(a.pid, false) - proc0) * 1e9 / n;
    s_waitall(pids, np);
    *secs = (double)(t1 - t0) / 1e9;
    *rss = s_rss_kb(a.pid);
    s_agg_stop(&a);
    return (double)(events * np) / *secs;
}

/* One round of the ingest benchmark: the baseline, then the aggregator on each stream. */
typedef struct {
    double raw_rate, raw_s;  /* baseline frames/s, seconds */
    double rate[2], secs[2]; /* aggregator events/s and seconds: uniform, Zipf */
    long rss[2];             /* its RSS at the end, kB */
    s_cpu_t cpu[2];          /* its CPU per event */
} s_ingest_round_t;

/* Raw PUSH -> PULL of 100-byte frames from np producers sending events each: frames/s. */
static double s_ingest_raw(void *ctx, long events, int np, double *secs)
{
    char self[PATH_MAX + 32], nbuf[32];
    snprintf(self, sizeof(self), "%s/bench_aggregator", s_bindir);
    snprintf(nbuf, sizeof(nbuf), "%ld", events);
    void *pull = zmq_socket(ctx, ZMQ_PULL);
    int hwm = ZSOCK_HWM_PULL;
    zmq_setsockopt(pull, ZMQ_RCVHWM, &hwm, sizeof(hwm));
    zmq_bind(pull, "tcp://127.0.0.1:*");
    char ep[128];
    size_t eplen = sizeof(ep);
    zmq_getsockopt(pull, ZMQ_LAST_ENDPOINT, ep, &eplen);
    pid_t pids[4];
    char *argvs[4][5];
    char **av[4];
    for (int i = 0; i < np; i++) {
        char *v[] = {self, "--raw-producer", ep, nbuf, NULL};
        memcpy(argvs[i], v, sizeof(v));
        av[i] = argvs[i];
    }
    int64_t t0 = s_start_producers(av, np, pids);
    char buf[256];
    for (long i = 0; i < events * np; i++)
        zmq_recv(pull, buf, sizeof(buf), 0);
    *secs = (double)(s_ns() - t0) / 1e9;
    s_waitall(pids, np);
    zmq_close(pull);
    return (double)(events * np) / *secs;
}

static int s_cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

static double s_median(double *v, int n)
{
    qsort(v, (size_t)n, sizeof(*v), s_cmp_double);
    return n % 2 ? v[n / 2] : (v[n / 2 - 1] + v[n / 2]) / 2;
}

static int s_ingest(bool quick, long events, long batch, int rounds)
{
    if (events <= 0)
        events = quick ? 200000 : 2000000;
    if (rounds <= 0)
        rounds = 1;
    const int np = 4;
    void *ctx = zmq_ctx_new();
    s_ingest_round_t *r = xcalloc((size_t)rounds, sizeof(*r));
    printf("ingest: producers=%d events_each=%ld batch=%ld persistence=leveldb rounds=%d\n", np,
           events, batch, rounds);
    for (int k = 0; k < rounds; k++) {
        s_ingest_round_t *x = &r[k];
        /* baseline: raw PUSH -> PULL, 100-byte frames, the same start protocol; then the
         * aggregator with LevelDB: worst case (every key at every site), then Zipf */
        x->raw_rate = s_ingest_raw(ctx, events, np, &x->raw_s);
        for (int z = 0; z < 2; z++)
            x->rate[z] =
                s_ingest_agg(ctx, events, batch, z, np, &x->rss[z], &x->secs[z], &x->cpu[z]);
        if (rounds > 1)
            printf(" round %d:\n", k + 1);
        printf("  baseline raw PUSH->PULL 100-byte frames: %.0f frames/s (%.2f s)\n", x->raw_rate,
               x->raw_s);
        printf("  aggregator, uniform (%d subjects x %d sites): %.0f events/s (%.2f s), RSS %ld "
               "MB\n",
               S_SUBJECTS, np, x->rate[0], x->secs[0], x->rss[0] / 1024);
        printf("  aggregator, Zipf 0.8 + storms:            %.0f events/s (%.2f s), RSS %ld MB\n",
               x->rate[1], x->secs[1], x->rss[1] / 1024);
        printf("  ratio events/s / frames/s: uniform %.2fx, Zipf %.2fx (goal >= 1.0x)\n",
               x->rate[0] / x->raw_rate, x->rate[1] / x->raw_rate);
        /* CPU time moves less with other load than wall time does: compare builds with it */
        printf("  aggregator CPU per event: event loop %.0f ns uniform, %.0f ns Zipf; all threads "
               "%.0f ns, %.0f ns\n",
               x->cpu[0].loop_ns, x->cpu[1].loop_ns, x->cpu[0].process_ns, x->cpu[1].process_ns);
        fflush(stdout);
    }
    if (rounds > 1) {
        /* each ratio against the baseline of its own round: the host's load drifts */
        double *v[4];
        for (int i = 0; i < 4; i++)
            v[i] = xcalloc((size_t)rounds, sizeof(double));
        for (int k = 0; k < rounds; k++) {
            v[0][k] = r[k].rate[0] / r[k].raw_rate;
            v[1][k] = r[k].rate[1] / r[k].raw_rate;
            v[2][k] = r[k].cpu[0].loop_ns;
            v[3][k] = r[k].cpu[1].loop_ns;
        }
        printf(" median of %d rounds: ratio uniform %.2fx, Zipf %.2fx (goal >= 1.0x); event loop "
               "%.0f ns uniform, %.0f ns Zipf\n",
               rounds, s_median(v[0], rounds), s_median(v[1], rounds), s_median(v[2], rounds),
               s_median(v[3], rounds));
        for (int i = 0; i < 4; i++)
            xfree(v[i]);
    }
    xfree(r);
    zmq_ctx_term(ctx);
    return 0;
}

/* ---- propagation ---- */

static int s_raw_sub(const char *ep)
{
    void *ctx = zmq_ctx_new();
    void *s = zmq_socket(ctx, ZMQ_SUB);
    zmq_setsockopt(s, ZMQ_SUBSCRIBE, "", 0);
    zmq_connect(s, ep);
    char buf[64];
    for (;;) {
        int n = zmq_recv(s, buf, sizeof(buf) - 1, 0);
        if (n < 0)
            break;
        int64_t now = s_ns();
        buf[n < (int)sizeof(buf) - 1 ? n : (int)sizeof(buf) - 1] = 0;
        if (!strcmp(buf, "quit"))
            break;
        printf("R %s %" PRId64 "\n", buf, now);
        fflush(stdout);
    }
    zmq_close(s);
    zmq_ctx_term(ctx);
    return 0;
}

/* Reads lines available on fd into a growing buffer; returns new text (static). */
typedef struct {
    int fd;
    char buf[1 << 16];
    size_t len;
} reader_t;

static bool s_read_line(reader_t *r, char *line, size_t size, int timeout_ms)
{
    int64_t end = s_ns() + (int64_t)timeout_ms * 1000000;
    for (;;) {
        char *nl = memchr(r->buf, '\n', r->len);
        if (nl) {
            size_t n = (size_t)(nl - r->buf);
            size_t c = n < size - 1 ? n : size - 1;
            memcpy(line, r->buf, c);
            line[c] = 0;
            memmove(r->buf, nl + 1, r->len - n - 1);
            r->len -= n + 1;
            return true;
        }
        if (s_ns() >= end)
            return false;
        zmq_pollitem_t it = {NULL, r->fd, ZMQ_POLLIN, 0};
        if (zmq_poll(&it, 1, 10) > 0) {
            ssize_t k = read(r->fd, r->buf + r->len, sizeof(r->buf) - r->len);
            if (k <= 0)
                return false;
            r->len += (size_t)k;
        }
    }
}

static int s_cmp64(const void *a, const void *b)
{
    int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;
    return x < y ? -1 : x > y;
}

static void s_pct(const char *what, int64_t *v, size_t n)
{
    qsort(v, n, sizeof(*v), s_cmp64);
    printf("  %-28s p50 %.3f ms  p99 %.3f ms  max %.3f ms  (n=%zu)\n", what, (double)v[n / 2] / 1e6,
           (double)v[(n * 99) / 100 < n ? (n * 99) / 100 : n - 1] / 1e6, (double)v[n - 1] / 1e6, n);
}

/* One EventBatch of n events for subject from site, packed (as columns, or rows with
 * --rows); xfree it. */
static uint8_t *s_batch(const char *site, uint64_t *seq, const char *subject, int n, int ipbase,
                        size_t *len)
{
    wire_key_t key = {BACKSTOP__SCOPE__SUBJECT, fp_text(subject), subject, strlen(subject)};
    int64_t now = s_wall_ms();
    wire_batch_t *wb = wire_batch_new();
    for (int i = 0; i < n; i++) {
        int x = ipbase + i;
        uint8_t ip[4] = {10, (uint8_t)(x >> 16), (uint8_t)(x >> 8), (uint8_t)x};
        wire_event_t e = {.seq = (*seq)++,
                          .time_ms = now,
                          .msg_class = BACKSTOP__MSG_CLASS__BOUNCE,
                          .client_ip = ip,
                          .client_ip_len = 4,
                          .keys = &key,
                          .nkeys = 1};
        wire_batch_add(wb, &e);
    }
    uint8_t *buf = wire_batch_pack(wb, site, "bench", !s_rows, len, NULL);
    wire_batch_destroy(&wb);
    return buf;
}

static int s_propagation(bool quick, int rounds, bool sync)
{
    if (rounds <= 0)
        rounds = quick ? 20 : 200;
    const int nsub = 10;
    char self[PATH_MAX + 32], subbin[PATH_MAX + 32];
    snprintf(self, sizeof(self), "%s/bench_aggregator", s_bindir);
    snprintf(subbin, sizeof(subbin), "%s/bench_subscriber", s_bindir);
    int64_t *lat = xcalloc((size_t)rounds * nsub, sizeof(*lat));
    size_t nlat = 0;
    reader_t *rd = xcalloc(nsub, sizeof(*rd));
    pid_t pids[10];
    char line[512];

    /* baseline: raw PUB -> 10 SUB processes */
    void *ctx = zmq_ctx_new();
    void *pub = zmq_socket(ctx, ZMQ_PUB);
    zmq_bind(pub, "tcp://127.0.0.1:*");
    char ep[128];
    size_t eplen = sizeof(ep);
    zmq_getsockopt(pub, ZMQ_LAST_ENDPOINT, ep, &eplen);
    for (int i = 0; i < nsub; i++) {
        int p[2];
        if (pipe(p) < 0)
            msg_fatal(EX_OSERR, "pipe: %m");
        char *argv[] = {self, "--raw-sub", ep, NULL};
        pids[i] = s_spawn(argv, p[1], -1);
        close(p[1]);
        rd[i].fd = p[0];
        rd[i].len = 0;
    }
    /* warm up: until every subscriber has seen one message */
    for (int i = 0; i < nsub; i++) {
        while (!s_read_line(&rd[i], line, sizeof(line), 20))
            zmq_send(pub, "warm", 4, 0);
    }
    for (int r = 0; r < rounds; r++) {
        char msg[32];
        snprintf(msg, sizeof(msg), "r%d", r);
        int64_t t0 = s_ns();
        zmq_send(pub, msg, strlen(msg), 0);
        for (int i = 0; i < nsub; i++) {
            for (;;) {
                if (!s_read_line(&rd[i], line, sizeof(line), 5000))
                    msg_fatal(EX_SOFTWARE, "raw subscriber %d silent", i);
                char tag[32];
                long long ns;
                if (sscanf(line, "R %31s %lld", tag, &ns) == 2 && !strcmp(tag, msg)) {
                    lat[nlat++] = ns - t0;
                    break;
                }
            }
        }
    }
    zmq_send(pub, "quit", 4, 0);
    s_waitall(pids, nsub);
    for (int i = 0; i < nsub; i++)
        close(rd[i].fd);
    zmq_close(pub);
    int64_t *raw = lat;
    size_t nraw = nlat;
    lat = xcalloc((size_t)rounds * nsub, sizeof(*lat));
    nlat = 0;

    /* the aggregator: 10 Clone subscribers */
    agg_t a;
    s_agg_conf(&a, sync);
    s_agg_start(&a);
    for (int i = 0; i < nsub; i++) {
        int p[2];
        if (pipe(p) < 0)
            msg_fatal(EX_OSERR, "pipe: %m");
        char site[16], errp[160];
        snprintf(site, sizeof(site), "site%d", i % 3 + 1);
        snprintf(errp, sizeof(errp), "%s/sub%d.err", s_tmp, i);
        int efd = open(errp, O_WRONLY | O_CREAT | O_TRUNC, 0644);
        char *argv[] = {subbin, "-d", a.de, "-s", a.sn, "--site", site, "--receipts", NULL};
        pids[i] = s_spawn(argv, p[1], efd);
        close(p[1]);
        close(efd);
        rd[i].fd = p[0];
        rd[i].len = 0;
    }
    /* every subscriber synced (it logs to stderr; wait for its file) */
    for (int i = 0; i < nsub; i++) {
        char errp[160];
        snprintf(errp, sizeof(errp), "%s/sub%d.err", s_tmp, i);
        int64_t end = s_ns() + 10000000000LL;
        for (;;) {
            FILE *fp = fopen(errp, "r");
            bool ok = false;
            while (fp && fgets(line, sizeof(line), fp))
                ok = ok || strstr(line, "sync full");
            if (fp)
                fclose(fp);
            if (ok)
                break;
            if (s_ns() > end)
                msg_fatal(EX_SOFTWARE, "subscriber %d did not sync", i);
            struct timespec ts = {0, 2 * 1000 * 1000};
            nanosleep(&ts, NULL);
        }
    }
    void *push = zsock_new(ctx, ZMQ_PUSH);
    zsock_connect(push, a.ev);
    uint64_t seq[3] = {1, 1, 1};
    long long sent = 0;
    for (int r = 0; r < rounds; r++) {
        char subject[64];
        snprintf(subject, sizeof(subject), "propagation round %d", r);
        /* 399 events: 133 per site, below the 400 threshold */
        for (int s = 0; s < 3; s++) {
            char site[16];
            snprintf(site, sizeof(site), "site%d", s + 1);
            size_t len;
            uint8_t *b = s_batch(site, &seq[s], subject, 133, r * 1000 + s * 133, &len);
            while (zmq_send(push, b, len, 0) < 0 && errno == EAGAIN)
                ;
            xfree(b);
        }
        sent += 399;
        s_wait_status(ctx, &a, "counted", sent, 10000);
        size_t len;
        uint8_t *b = s_batch("site1", &seq[0], subject, 1, r * 1000 + 999, &len);
        int64_t t0 = s_ns();
        zmq_send(push, b, len, 0);
        xfree(b);
        sent += 1;
        for (int i = 0; i < nsub; i++) {
            for (;;) {
                if (!s_read_line(&rd[i], line, sizeof(line), 5000))
                    msg_fatal(EX_SOFTWARE, "subscriber %d got no decision in round %d", i, r);
                long long useq, ns;
                char kind[16], id[16];
                int off = 0;
                if (sscanf(line, "U %lld %15s %15s %lld %n", &useq, kind, id, &ns, &off) == 4 &&
                    !strcmp(kind, "upsert") && !strcmp(line + off, subject)) {
                    lat[nlat++] = ns - t0;
                    break;
                }
            }
        }
    }
    for (int i = 0; i < nsub; i++)
        kill(pids[i], SIGTERM);
    s_waitall(pids, nsub);
    zsock_close(&push);
    s_agg_stop(&a);
    zmq_ctx_term(ctx);

    printf("propagation: subscribers=%d rounds=%d decision_fsync=%s\n", nsub, rounds,
           sync ? "yes" : "no");
    s_pct("baseline raw PUB->SUB:", raw, nraw);
    s_pct("threshold event -> update:", lat, nlat);
    qsort(raw, nraw, sizeof(*raw), s_cmp64);
    printf("  ratio p50 %.1fx, p99 %.1fx of raw PUB->SUB (goal p99 <= 2 ms)\n",
           (double)lat[nlat / 2] / (double)raw[nraw / 2],
           (double)lat[nlat * 99 / 100] / (double)raw[nraw * 99 / 100]);
    xfree(raw);
    xfree(lat);
    xfree(rd);
    return 0;
}

/* ---- restart ---- */

static int s_restart(bool quick, long keys)
{
    if (keys <= 0)
        keys = quick ? 100000 : 1000000;
    char loadgen[PATH_MAX + 32], kbuf[32];
    snprintf(loadgen, sizeof(loadgen), "%s/bench_loadgen", s_bindir);
    snprintf(kbuf, sizeof(kbuf), "%ld", keys);
    void *ctx = zmq_ctx_new();
    static char json[1 << 20];
    agg_t a;
    s_agg_conf(&a, true);

    /* baseline: an empty database */
    int64_t t0 = s_ns();
    s_agg_start(&a);
    if (s_status(ctx, a.ctl, json, sizeof(json), 10000) < 0)
        msg_fatal(EX_SOFTWARE, "no status");
    double empty_start = (double)(s_ns() - t0) / 1e9;
    long empty_rss = s_rss_kb(a.pid);
    s_agg_stop(&a);

    /* load N distinct subject keys (one site, 3 keys per event: subject, ip, net) */
    s_agg_start(&a);
    char *argv[] = {loadgen,      "-e", a.ev,      "--site", "site1",     "--events",    kbuf,
                    "--distinct", kbuf, "--batch", "500",    "--subject", "restart key", NULL};
    pid_t p = s_spawn(argv, -1, -1);
    s_waitall(&p, 1);
    s_wait_status(ctx, &a, "counted", keys, 600000);
    s_status(ctx, a.ctl, json, sizeof(json), 5000);
    long long nkeys = s_json_num(json, "keys");
    long loaded_anon = 0, restart_anon = 0;
    long loaded_rss = s_rss_kb2(a.pid, &loaded_anon);
    int64_t ts = s_ns();
    s_agg_stop(&a);
    double stop_s = (double)(s_ns() - ts) / 1e9;

    /* restart and time until it answers again */
    t0 = s_ns();
    int64_t ready = s_agg_start(&a);
    if (s_status(ctx, a.ctl, json, sizeof(json), 60000) < 0)
        msg_fatal(EX_SOFTWARE, "no status after restart");
    double restart_s = (double)(s_ns() - t0) / 1e9;
    long long rkeys = s_json_num(json, "keys");
    long restart_rss = s_rss_kb2(a.pid, &restart_anon);
    s_agg_stop(&a);
    zmq_ctx_term(ctx);

    printf("restart: keys=%ld (window reports %lld before, %lld after restart)\n", keys, nkeys,
           rkeys);
    printf("  baseline empty db: start->serving %.3f s, RSS %ld MB\n", empty_start,
           empty_rss / 1024);
    printf("  loaded:            RSS %ld MB (anon %ld MB; goal <= 256 MB), clean stop %.3f s\n",
           loaded_rss / 1024, loaded_anon / 1024, stop_s);
    printf("  restart:           start->ready %.3f s, start->serving %.3f s (goal <= 2 s), "
           "RSS %ld MB (anon %ld MB)\n",
           (double)ready / 1e9, restart_s, restart_rss / 1024, restart_anon / 1024);
    printf("  ratio restart/empty start %.1fx, RSS loaded/empty %.1fx\n", restart_s / empty_start,
           (double)loaded_rss / (double)empty_rss);
    return 0;
}

int main(int argc, char **argv)
{
    msg_open("bench_aggregator", MSG_TO_STDERR);
    if (argc >= 4 && !strcmp(argv[1], "--raw-producer"))
        return s_raw_producer(argv[2], atol(argv[3]));
    if (argc >= 11 && !strcmp(argv[1], "--event-producer"))
        return s_event_producer(argv[2], argv[3], atol(argv[4]), atol(argv[5]), atoi(argv[6]),
                                (uint64_t)atoll(argv[7]), !strcmp(argv[8], "rows"),
                                (uint32_t)strtoul(argv[9], NULL, 10),
                                (uint32_t)strtoul(argv[10], NULL, 10));
    if (argc >= 3 && !strcmp(argv[1], "--raw-sub"))
        return s_raw_sub(argv[2]);
    if (argc < 2) {
        fputs("usage: bench_aggregator ingest|propagation|restart [--quick] [options]\n", stderr);
        return EX_USAGE;
    }
    bool quick = false, nosync = false;
    long n = 0, batch = 200, repeat = 1;
    for (int i = 2; i < argc; i++) {
        if (!strcmp(argv[i], "--quick"))
            quick = true;
        else if (!strcmp(argv[i], "--nosync"))
            nosync = true;
        else if (!strcmp(argv[i], "--rows"))
            s_rows = true;
        else if ((!strcmp(argv[i], "--events") || !strcmp(argv[i], "--rounds") ||
                  !strcmp(argv[i], "--keys")) &&
                 i + 1 < argc)
            n = atol(argv[++i]);
        else if (!strcmp(argv[i], "--batch") && i + 1 < argc)
            batch = atol(argv[++i]);
        else if (!strcmp(argv[i], "--repeat") && i + 1 < argc)
            repeat = atol(argv[++i]);
        else {
            fprintf(stderr, "bench_aggregator: unknown option %s\n", argv[i]);
            return EX_USAGE;
        }
    }
    if (repeat < 1 || repeat > 100 || batch < 1 || batch > WIRE_MAX_EVENTS || n < 0) {
        fputs("bench_aggregator: --repeat takes 1..100, --batch 1..1024, sizes >= 0\n", stderr);
        return EX_USAGE;
    }
    ssize_t k = readlink("/proc/self/exe", s_bindir, sizeof(s_bindir) - 1);
    if (k <= 0)
        msg_fatal(EX_OSERR, "readlink /proc/self/exe: %m");
    s_bindir[k] = 0;
    *strrchr(s_bindir, '/') = 0;
    snprintf(s_tmp, sizeof(s_tmp), "/tmp/bench_aggregator.XXXXXX");
    if (!mkdtemp(s_tmp))
        msg_fatal(EX_CANTCREAT, "mkdtemp: %m");
    signal(SIGPIPE, SIG_IGN);
    int rc;
    if (!strcmp(argv[1], "ingest"))
        rc = s_ingest(quick, n, batch, (int)repeat);
    else if (!strcmp(argv[1], "propagation"))
        rc = s_propagation(quick, (int)n, !nosync);
    else if (!strcmp(argv[1], "restart"))
        rc = s_restart(quick, n);
    else {
        fprintf(stderr, "bench_aggregator: unknown benchmark %s\n", argv[1]);
        rc = EX_USAGE;
    }
    char cmd[128];
    snprintf(cmd, sizeof(cmd), "rm -rf '%s'", s_tmp);
    if (getenv("BENCH_KEEP") == NULL && system(cmd) != 0)
        msg_warn("cannot remove %s", s_tmp);
    return rc;
}
