/*
 * NAME
 *   backstop-sensor replay - classify message files and send their events
 *
 * SYNOPSIS
 *   backstop-sensor replay -c FILE [--site S] [--sensor NAME] [--client-ip IP]
 *                          [--from ADDR] [--events ENDPOINT] [--all] [--dry-run] PATH...
 *
 * DESCRIPTION
 *   Reads message files (directories recursively, so maildirs work too),
 *   classifies each as the milter would with the given client address and
 *   envelope sender, and sends the events of the classes the site enforces
 *   (enforce_classes; --all: every class) to the aggregator's event endpoint
 *   in EventBatch frames, exactly as a live sensor reports them: same keys,
 *   sequence numbers, batching and CURVE settings (from the config FILE).
 *   For the demo, integration tests and load.
 *
 *   Like the live sensor it sends the batches as columns only to an
 *   aggregator that announces it reads them: when the config names the
 *   aggregator's decision feed (aggregator_decisions) and --events does not
 *   point elsewhere, it waits up to heartbeat_timeout for one heartbeat and
 *   uses what it announces; otherwise, or with no heartbeat, it sends rows.
 *
 *   -c FILE          sensor configuration (endpoints, keys, site, event_batch)
 *   --site S         report as site S (default: the config's site)
 *   --sensor NAME    report as sensor NAME (default: the config's sensor_id + "-replay")
 *   --client-ip IP   the connecting client's address for every message
 *   --from ADDR      envelope sender; "<>" or "" is the null sender (default: unknown)
 *   --events EP      event endpoint (default: aggregator_events)
 *   --all            send events for every class, not only enforced ones
 *   --dry-run        classify and print, send nothing
 *
 * DIAGNOSTICS
 *   One line per file on stdout, "FILE class=... event=WHAT", printed once
 *   its event's batch went (or did not): sent (the aggregator's connection
 *   took it), unsent (it did not within 5 s, or an earlier batch was not
 *   taken), skipped (a class not enforced), dry-run, or unreadable; then
 *   (unless --dry-run) "replay: events=N format=columns|rows", N the events
 *   sent. Exit status 0 when every file was read and every event sent, 1
 *   when a file could not be read, 69 when the aggregator did not take the
 *   events within 5 s, 64 usage (a --client-ip that is no address, an
 *   --events that is no endpoint), 78 configuration error.
 */
#include "sensor_cmds.h"

#include "classify.h"
#include "enforce.h"
#include "evq.h"
#include "msg.h"
#include "netaddr.h"
#include "sensor_config.h"
#include "uplink.h"
#include "wire.h"
#include "xalloc.h"
#include "zsock.h"

#include <dirent.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <zmq.h>

#define S_READ_MAX        (64 * 1024 * 1024) /* larger files are read up to this */
#define S_SEND_TIMEOUT_MS 5000

static const char s_usage[] =
    "usage: backstop-sensor replay -c FILE [--site S] [--sensor NAME] [--client-ip IP]\n"
    "           [--from ADDR] [--events ENDPOINT] [--all] [--dry-run] PATH...\n"
    "       backstop-sensor replay --help\n";

/* --help: a man page in plain text (backstop --help's layout); the man page's replay part
 * is its DESCRIPTION and OPTIONS (backstop-genman) */
static const char s_help[] =
    "NAME\n"
    "    backstop-sensor replay - send message files' events to the aggregator as a\n"
    "    live sensor would\n"
    "\n"
    "SYNOPSIS\n"
    "    backstop-sensor replay -c FILE [--site S] [--sensor NAME] [--client-ip IP]\n"
    "        [--from ADDR] [--events ENDPOINT] [--all] [--dry-run] PATH...\n"
    "    backstop-sensor replay --help\n"
    "\n"
    "DESCRIPTION\n"
    "    Reads each message file named and each file under each directory named\n"
    "    (recursively, in name order, names starting with a dot left out, so\n"
    "    maildirs work too), classifies it as the milter would with the client\n"
    "    address and envelope sender given, and sends the events of the classes the\n"
    "    site enforces (enforce_classes) to the aggregator's event endpoint exactly\n"
    "    as a live sensor reports them: the same keys, sequence numbers, batches\n"
    "    (event_batch) and CURVE settings (aggregator_public_key,\n"
    "    sensor_secret_key_file), with the time of the run. For demonstrations,\n"
    "    integration tests and load tests. Nothing is spooled or sent again: a batch\n"
    "    the aggregator does not take within 5 seconds is not sent, nor is any after\n"
    "    it.\n"
    "\n"
    "    Like the milter, it sends batches as columns only to an aggregator that\n"
    "    announces it reads them: when the configuration names the decision feed\n"
    "    (aggregator_decisions) and --events does not point elsewhere, it waits up to\n"
    "    heartbeat_timeout for a heartbeat and does as it says; otherwise it sends\n"
    "    rows.\n"
    "\n"
    "    It prints one line per file, once that file's batch went or did not:\n"
    "\n"
    "        FILE class=CLASS subject_key=\"KEY\" orig_subject_key=\"OKEY\" event=WHAT\n"
    "\n"
    "    WHAT is sent (the aggregator's connection took the event), unsent (it did\n"
    "    not within 5 seconds, or an earlier batch was not taken), skipped (a class\n"
    "    the site does not enforce) or dry-run; a path that cannot be read gets\n"
    "    FILE event=unreadable. Unless --dry-run, a last line says how many events\n"
    "    were sent, and in which form:\n"
    "\n"
    "        replay: events=N format=columns|rows\n"
    "\n"
    "OPTIONS\n"
    "    -c FILE\n"
    "        The sensor configuration: site, sensor_id, aggregator_events, the CURVE\n"
    "        keys, event_batch and enforce_classes come from it; required.\n"
    "    --site S\n"
    "        Report as site S (default: the configuration's site).\n"
    "    --sensor NAME\n"
    "        Report as sensor NAME (default: the configuration's sensor_id followed\n"
    "        by -replay).\n"
    "    --client-ip IP\n"
    "        The connecting client's address for every message, an IPv4 or IPv6\n"
    "        address (default: none).\n"
    "    --from ADDR\n"
    "        The envelope sender; <> or an empty string is the null sender (default:\n"
    "        none, the Return-Path header stands in).\n"
    "    --events ENDPOINT\n"
    "        Send to this event endpoint, tcp://HOST:PORT or ipc://PATH (default:\n"
    "        aggregator_events).\n"
    "    --all\n"
    "        Send the events of every class, not only of the enforced ones.\n"
    "    --dry-run\n"
    "        Classify and print; send nothing (no endpoint is needed).\n"
    "    --help\n"
    "        Print this text and exit.\n"
    "\n"
    "EXIT STATUS\n"
    "    0   every path was read and every event sent\n"
    "    1   a path could not be read (the events of the others were sent)\n"
    "    64  usage error: an unknown option, no -c or no PATH, a --client-ip that\n"
    "        is no address, an --events that is no endpoint\n"
    "    69  the aggregator did not take the events within 5 seconds, or the\n"
    "        socket could not be set up (the CURVE key pair)\n"
    "    78  the configuration is invalid, or names no event endpoint and --events\n"
    "        gives none\n"
    "\n"
    "FILES\n"
    "    /etc/backstop/sensor.conf\n"
    "        A sensor's configuration (-c names the one to use).\n"
    "\n"
    "SEE ALSO\n"
    "    backstop-sensor(8), backstop-sensor.conf(5), backstop-aggregator(8)\n";

/* A line of output: printed once the batch its event is in was sent, or not. */
typedef struct {
    char *text; /* "FILE class=... orig_subject_key=\"...\"" or a whole line */
    bool event; /* text waits for " event=sent|unsent" */
} s_line_t;

typedef struct {
    const sensor_config_t *cfg; /* loaded config */
    const char *site;           /* reported site */
    const char *sensor;         /* reported sensor */
    const char *client_ip;      /* client address or NULL */
    const char *env_from;       /* envelope sender or NULL */
    bool all;                   /* every class */
    bool dry_run;               /* send nothing */
    void *push;                 /* PUSH socket (not dry_run) */
    evq_t *seqs;                /* hands out sequence numbers */
    evq_event_t **batch;        /* events waiting */
    size_t nbatch;              /* events in batch */
    s_line_t *lines;            /* output lines waiting for the batch's fate (in order) */
    size_t nlines, lines_cap;   /* held, slots */
    int failures;               /* unreadable files or failed sends */
    bool send_failed;           /* the aggregator did not take a batch */
    bool columns;               /* the aggregator announced WIRE_FEATURE_COLUMNS */
    size_t sent;                /* events the aggregator took */
} s_replay_t;

/* Holds a line of output (text taken) until the batch pending is sent, or prints it when
 * none is; event: text waits for the batch's fate. */
static void s_say(s_replay_t *r, char *text, bool event)
{
    if (!event && r->nbatch == 0 && r->nlines == 0) {
        printf("%s\n", text);
        xfree(text);
        return;
    }
    if (r->nlines == r->lines_cap) {
        r->lines_cap = r->lines_cap ? 2 * r->lines_cap : 64;
        r->lines = xrealloc(r->lines, r->lines_cap * sizeof(*r->lines));
    }
    r->lines[r->nlines++] = (s_line_t){.text = text, .event = event};
}

/* Prints the lines held, each event as sent or not. */
static void s_say_held(s_replay_t *r, bool sent)
{
    for (size_t i = 0; i < r->nlines; i++) {
        printf("%s%s\n", r->lines[i].text,
               !r->lines[i].event ? ""
               : r->dry_run       ? " event=dry-run"
               : sent             ? " event=sent"
                                  : " event=unsent");
        xfree(r->lines[i].text);
    }
    r->nlines = 0;
}

/* Sends the batch (unless dry_run, or an earlier batch was refused: the aggregator is not
 * there), then says what became of each of its files' events. */
static void s_flush(s_replay_t *r)
{
    bool sent = false;
    if (r->nbatch == 0) {
        s_say_held(r, false);
        return;
    }
    if (!r->dry_run && !r->send_failed) {
        size_t len = 0;
        uint8_t *buf = uplink_pack_events(r->site, r->sensor, r->batch, r->nbatch, r->columns, NULL,
                                          0, 0, &len);
        zmq_pollitem_t it = {.socket = r->push, .events = ZMQ_POLLOUT};
        if (!buf || zmq_poll(&it, 1, S_SEND_TIMEOUT_MS) <= 0 ||
            zsock_send_raw(r->push, buf, len, ZMQ_DONTWAIT) != 0) {
            msg_error("replay: the aggregator did not take %zu events", r->nbatch);
            r->send_failed = true;
        } else {
            r->sent += r->nbatch;
            sent = true;
        }
        xfree(buf);
    }
    for (size_t i = 0; i < r->nbatch; i++)
        evq_event_destroy(&r->batch[i]);
    r->nbatch = 0;
    s_say_held(r, sent);
}

static char *s_read(const char *path, size_t *len, int *truncated)
{
    FILE *fp = fopen(path, "rb");
    if (!fp)
        return NULL;
    size_t cap = 65536, n = 0;
    char *buf = xmalloc(cap + 1);
    size_t got;
    while ((got = fread(buf + n, 1, cap - n, fp)) > 0) {
        n += got;
        if (n == cap) {
            if (cap >= S_READ_MAX) {
                *truncated = 1;
                break;
            }
            cap *= 2;
            buf = xrealloc(buf, cap + 1);
        }
    }
    fclose(fp);
    buf[n] = '\0';
    *len = n;
    return buf;
}

static void s_file(s_replay_t *r, const char *path)
{
    size_t len = 0;
    int truncated = 0;
    char *text = s_read(path, &len, &truncated);
    if (!text) {
        s_say(r, xasprintf("%s event=unreadable", path), false);
        r->failures++;
        return;
    }
    classify_input_t in = {.msg = text,
                           .len = len,
                           .truncated = truncated,
                           .client_ip = r->client_ip,
                           .env_from = r->env_from};
    classify_result_t *cr = classify_message(&in);
    const char *cname = classify_class_name(classify_result_class(cr));
    bool send = r->all || sensor_config_enforces_class(r->cfg, cname);
    if (send) {
        enforce_input_t ei;
        memset(&ei, 0, sizeof(ei));
        char *subject_ip = NULL;
        enforce_keys_from(cr, &ei, &subject_ip);
        evq_event_t *ev = evq_event_new(r->seqs, bs_clock_now_ms(bs_clock_system()));
        evq_event_set_ip(ev, classify_result_client_ip(cr));
        ev->msg_class = classify_result_class(cr);
        ev->original = classify_result_original(cr);
        for (size_t i = 0; i < ei.nkeys; i++)
            evq_event_add_key(ev, ei.keys[i].scope, ei.keys[i].fp, ei.keys[i].text);
        xfree(subject_ip);
        r->batch[r->nbatch++] = ev;
    }
    const char *sk = classify_result_subject_key(cr);
    const char *ok = classify_result_orig_subject_key(cr);
    sk = sk ? sk : "";
    ok = ok ? ok : "";
    /* the keys are the senders' text: quoted and escaped, whole (msg_quote) */
    char *q1 = xmalloc(MSG_QUOTE_SIZE(strlen(sk)));
    char *q2 = xmalloc(MSG_QUOTE_SIZE(strlen(ok)));
    s_say(r,
          xasprintf("%s class=%s subject_key=%s orig_subject_key=%s%s", path, cname,
                    msg_quote(q1, MSG_QUOTE_SIZE(strlen(sk)), sk),
                    msg_quote(q2, MSG_QUOTE_SIZE(strlen(ok)), ok), send ? "" : " event=skipped"),
          send);
    xfree(q1);
    xfree(q2);
    if (r->nbatch == (size_t)r->cfg->event_batch)
        s_flush(r);
    classify_result_destroy(&cr);
    xfree(text);
}

static void s_path(s_replay_t *r, const char *path, int depth)
{
    struct stat st;
    if (stat(path, &st) != 0) {
        s_say(r, xasprintf("%s event=unreadable", path), false);
        r->failures++;
        return;
    }
    if (!S_ISDIR(st.st_mode)) {
        s_file(r, path);
        return;
    }
    if (depth > 16)
        return;
    struct dirent **names = NULL;
    int n = scandir(path, &names, NULL, alphasort);
    if (n < 0) {
        s_say(r, xasprintf("%s event=unreadable", path), false);
        r->failures++;
        return;
    }
    for (int i = 0; i < n; i++) {
        if (names[i]->d_name[0] != '.') {
            char *sub = xasprintf("%s/%s", path, names[i]->d_name);
            s_path(r, sub, depth + 1);
            xfree(sub);
        }
        free(names[i]);
    }
    free(names);
}

/* Does the aggregator whose decision feed cfg names read column batches? One heartbeat
 * within heartbeat_timeout says; no heartbeat: assume not. */
static bool s_peer_columns(void *ctx, const sensor_config_t *cfg)
{
    void *sub = zsock_new(ctx, ZMQ_SUB);
    zsock_keys_t keys;
    if (sub && *cfg->aggregator_public_key &&
        (zsock_keys_load(cfg->sensor_secret_key_file, &keys) != 0 ||
         zsock_curve_client(sub, &keys, cfg->aggregator_public_key) != 0))
        zsock_close(&sub);
    if (!sub || zsock_connect(sub, cfg->aggregator_decisions) != 0) {
        zsock_close(&sub);
        return false;
    }
    zsock_subscribe(sub, ZSOCK_TOPIC_HEARTBEAT);
    bool columns = false;
    int64_t end = bs_clock_mono_ms(bs_clock_system()) + cfg->heartbeat_timeout_ms;
    for (;;) {
        int64_t left = end - bs_clock_mono_ms(bs_clock_system());
        zmq_pollitem_t it = {.socket = sub, .events = ZMQ_POLLIN};
        if (left <= 0 || zmq_poll(&it, 1, (long)left) <= 0)
            break;
        Backstop__Frame *f = NULL;
        if (zsock_recv(sub, ZMQ_DONTWAIT, &f, NULL, NULL) == 1 &&
            f->body_case == BACKSTOP__FRAME__BODY_HEARTBEAT) {
            columns = f->heartbeat->has_features && (f->heartbeat->features & WIRE_FEATURE_COLUMNS);
            wire_free(&f);
            break;
        }
        wire_free(&f);
    }
    zsock_close(&sub);
    return columns;
}

int replay_cmd_main(int argc, char **argv)
{
    static const struct option opts[] = {
        {"site", required_argument, NULL, 's'},
        {"sensor", required_argument, NULL, 'S'},
        {"client-ip", required_argument, NULL, 'i'},
        {"from", required_argument, NULL, 'F'},
        {"events", required_argument, NULL, 'e'},
        {"all", no_argument, NULL, 'a'},
        {"dry-run", no_argument, NULL, 'd'},
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0},
    };
    const char *path = NULL, *site = NULL, *sensor = NULL, *ip = NULL, *from = NULL, *ep = NULL;
    bool all = false, dry = false;
    int c;
    optind = 1;
    while ((c = getopt_long(argc, argv, "c:", opts, NULL)) != -1) {
        switch (c) {
        case 'c':
            path = optarg;
            break;
        case 's':
            site = optarg;
            break;
        case 'S':
            sensor = optarg;
            break;
        case 'i':
            ip = optarg;
            break;
        case 'F':
            from = optarg;
            break;
        case 'e':
            ep = optarg;
            break;
        case 'a':
            all = true;
            break;
        case 'd':
            dry = true;
            break;
        case 'h':
            fputs(s_help, stdout);
            return EX_OK;
        default:
            fputs(s_usage, stderr);
            return EX_USAGE;
        }
    }
    if (!path || optind >= argc) {
        fputs(s_usage, stderr);
        return EX_USAGE;
    }
    netaddr_t addr;
    if (ip && netaddr_parse(&addr, ip) != 0) {
        fprintf(stderr, "backstop-sensor replay: --client-ip %s is not an IPv4 or IPv6 address\n",
                ip);
        return EX_USAGE;
    }
    char why[128];
    if (ep && zsock_endpoint_check(ep, 0, why, sizeof(why)) != 0) {
        fprintf(stderr, "backstop-sensor replay: --events %s %s\n", ep, why);
        return EX_USAGE;
    }
    char err[4096];
    sensor_config_t *cfg = sensor_config_load(path, err, sizeof(err));
    if (!cfg) {
        fprintf(stderr, "backstop-sensor: %s\n", err);
        return EX_CONFIG;
    }
    char *sensor_name = sensor ? xstrdup(sensor) : xasprintf("%s-replay", cfg->sensor_id);
    s_replay_t r = {.cfg = cfg,
                    .site = site ? site : cfg->site,
                    .sensor = sensor_name,
                    .client_ip = ip,
                    .env_from = from ? (strcmp(from, "<>") ? from : "") : NULL,
                    .all = all,
                    .dry_run = dry};
    if (!ep)
        ep = cfg->aggregator_events;
    void *ctx = NULL;
    int rc = EX_OK;
    if (!dry) {
        if (!*ep) {
            fprintf(stderr, "backstop-sensor: replay: no event endpoint (aggregator_events)\n");
            rc = EX_CONFIG;
            goto out;
        }
        ctx = zmq_ctx_new();
        r.push = zsock_new(ctx, ZMQ_PUSH);
        zsock_keys_t keys;
        if (r.push && *cfg->aggregator_public_key &&
            (zsock_keys_load(cfg->sensor_secret_key_file, &keys) != 0 ||
             zsock_curve_client(r.push, &keys, cfg->aggregator_public_key) != 0))
            zsock_close(&r.push);
        if (!r.push || zsock_connect(r.push, ep) != 0) {
            rc = EX_UNAVAILABLE;
            goto out;
        }
        int linger = S_SEND_TIMEOUT_MS;
        zmq_setsockopt(r.push, ZMQ_LINGER, &linger, sizeof(linger));
        if (*cfg->aggregator_decisions && !strcmp(ep, cfg->aggregator_events))
            r.columns = s_peer_columns(ctx, cfg);
    }
    r.seqs = evq_new(1);
    r.batch = xcalloc((size_t)cfg->event_batch, sizeof(*r.batch));
    for (int i = optind; i < argc; i++)
        s_path(&r, argv[i], 0);
    s_flush(&r);
    if (!dry)
        printf("replay: events=%zu format=%s\n", r.sent, r.columns ? "columns" : "rows");
    if (r.send_failed)
        rc = EX_UNAVAILABLE;
    else if (r.failures)
        rc = 1;
out:
    xfree(r.lines);
    xfree(r.batch);
    evq_destroy(&r.seqs);
    zsock_close(&r.push);
    if (ctx)
        zmq_ctx_term(ctx);
    xfree(sensor_name);
    sensor_config_destroy(&cfg);
    return rc;
}
