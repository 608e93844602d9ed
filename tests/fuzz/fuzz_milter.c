/*
 * fuzz_milter - libFuzzer target: the sensor's whole mail path, callback by callback
 *
 * MODE 1 (first byte below 0xF0): a real milter engine, made once from a real
 * configuration (sensor_config_load of a file in a temp directory), is fed a
 * sequence of milter events exactly as sensor/milter.c hands libmilter's
 * callbacks to it: connect, HELO, MAIL FROM (a message begins under a
 * configuration snapshot), RCPT TO, headers, end of header, body chunks,
 * end of message (milter_engine_eom, or milter_engine_fail for an overloaded
 * connection or one without a message), abort and close.
 *
 * The first byte's bit 0 picks one of two engines: A has an aggregator
 * configured (unreachable, never contacted; bit 1 says whether it is "up", so
 * on_no_aggregator = tempfail applies when down), max_connections = 1 (a
 * second connection is overloaded), a local rule firing at 2 bounces; B is
 * standalone, with local content rules (a ruletab file), a 4 KiB message
 * bound and tempfail on failures. Both enforce decisions from a decision file
 * (reject, tempfail, tag, observe on subjects, original subjects, client ip,
 * client net, subject+ip) and from the aggregator (all_mail ones too), put
 * into their caches once.
 *
 * Then records follow: one type byte, one length byte (255: a 16-bit
 * big-endian length follows) and that many payload bytes. The type's low five
 * bits (mod 16) name the event, bit 5 the connection (two may be open at
 * once), bit 6 a NULL argument (MAIL FROM without argv), bit 7 repetition:
 * the payload's first byte n makes the rest repeated up to (n + 1) * 256
 * times (at most 1 MiB), for huge headers and bodies. Strings are cut at the
 * first NUL as a C string is; body chunks keep every byte.
 *   0 connect(ip)  1 client name  2 helo  3 daemon name  4 MAIL FROM
 *   5 auth flag    6 RCPT TO      7 queue id  8 header "name:value"
 *   9 end of header  10 body  11 end of message  12 abort  13 close
 *   14 time passes (payload: seconds, big-endian)  15 aggregator up/down
 *
 * Every verdict is checked: one of accept, reject (550 5.7.1), tempfail
 * (451 4.7.1) or tag (X-Backstop: decision=ID), with reply text that
 * libmilter takes as it is; outbound mail always accepted; a reject, tempfail
 * or tag names a live, non-observe decision of that action in the cache whose
 * key the message has (classified again here), that applies to its class and
 * is not an automatic block of a bounce the ledger vouches for; a tempfail
 * without a decision is only the no-aggregator policy. Events queued for the
 * aggregator are drained and checked.
 *
 * Each run starts a day after the previous one on a fake clock, so the local
 * rule's counts, the ledger's entries and local decisions of earlier runs have
 * lapsed (and are expired and removed); all connections are closed at the end.
 *
 * MODE 2 (first byte 0xF0 or more): localrule and a memory-only ledger with
 * arbitrary keys, strings and times; see s_mode_tables.
 *
 * Logging goes to /dev/null unless BACKSTOP_FUZZ_LOG is set.
 */
#include "classify.h"
#include "dcache.h"
#include "enforce.h"
#include "evq.h"
#include "fp.h"
#include "ledger.h"
#include "localrule.h"
#include "milter_ctx.h"
#include "milter_engine.h"
#include "msg.h"
#include "netaddr.h"
#include "sensor_config.h"
#include "xalloc.h"
#include "fuzz_lib.h"

#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <unistd.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define S_ENGINES 2
#define S_CONNS   2
#define S_DAY_MS  (24LL * 3600 * 1000)
#define S_REP_MAX (1u << 20)

static char s_dir[64];
static bs_clock_t *s_clock;
static int64_t s_now = 1700000000000LL;
static sensor_config_t *s_cfg[S_ENGINES];
static milter_engine_t *s_eng[S_ENGINES];
static bool s_uplink[S_ENGINES]; /* an aggregator is configured */

/* One connection as milter.c's s_priv_t holds it. */
typedef struct {
    milter_conn_t *conn;
    milter_snap_t *snap;
    bool counted;
    bool overload;
} s_conn_t;

/* what the reads add up to: kept so that they are not optimised away */
static volatile size_t s_sink;

static void s_cleanup(void)
{
    for (int i = 0; i < S_ENGINES; i++) {
        milter_engine_destroy(&s_eng[i]);
        sensor_config_destroy(&s_cfg[i]);
    }
    bs_clock_destroy(&s_clock);
    fuzz_rmtree(s_dir);
}

static void s_write(const char *name, const char *text)
{
    char *path = xasprintf("%s/%s", s_dir, name);
    FILE *fp = fopen(path, "w");
    if (!fp)
        abort();
    fputs(text, fp);
    fclose(fp);
    xfree(path);
}

/* An aggregator decision put into the cache once (never expires). */
static void s_upsert(dcache_t *dc, const char *id, int scope, const char *value, int action,
                     bool all_mail, int origin)
{
    dcache_entry_t d;
    memset(&d, 0, sizeof(d));
    snprintf(d.id, sizeof(d.id), "%s", id);
    d.scope = scope;
    d.fp = fp_text(value);
    d.action = action;
    d.all_mail = all_mail;
    d.origin = origin;
    d.created_ms = s_now;
    d.expires_ms = INT64_MAX;
    snprintf(d.value, sizeof(d.value), "%s", value);
    if (dcache_upsert(dc, &d) != 0)
        abort();
}

static void s_init(void)
{
    fuzz_quiet();
    snprintf(s_dir, sizeof(s_dir), "/tmp/fuzz_milter.XXXXXX");
    fuzz_mkdtemp(s_dir);
    s_clock = bs_clock_fake_new(s_now);
    s_write("decisions", "# scope action ttl value\n"
                         "orig_subject reject 0 cheap watches\n"
                         "subject reject 0 cheap watches\n"
                         "orig_subject tag 0 garden party\n"
                         "subject tempfail 0 meeting notes\n"
                         "orig_subject observe 0 lottery win\n"
                         "client_ip reject 0 192.0.2.66\n"
                         "client_net tempfail 0 198.51.100.0/24\n"
                         "subject_ip tag 0 hello world|203.0.113.5\n");
    s_write("rules", "/^From:.*Mailer.*$/ BOUNCE_RULE mailer-from\n"
                     "/^Subject:.*(undeliver|delivery status)/ COUNT dsn-subject\n"
                     "if /^X-/\n"
                     "/^X-Spam: yes/ WARN spam\n"
                     "!/^X-Ok/ DUNNO\n"
                     "endif\n");
    static const char *const extra[S_ENGINES] = {
        "aggregator_events = tcp://127.0.0.1:9\naggregator_decisions = tcp://127.0.0.1:9\n"
        "aggregator_snapshot = tcp://127.0.0.1:9\non_no_aggregator = tempfail\n"
        "message_limit = 64k\nenforce_classes = bounce, autoreply\nmax_connections = 1\n"
        "local_rule_threshold = 2\nlocal_block_action = tempfail\n"
        "internal_networks = 10.0.0.0/8, fd00::/8\noutbound_daemons = ORIGINATING\n",
        "message_limit = 4k\nenforce_classes = bounce, mdn, arf\n"
        "local_rule_threshold = 3\nlocal_block_action = tag\noutbound_auth = no\n"
        "on_internal_error = tempfail\non_overload = tempfail\n",
    };
    for (int i = 0; i < S_ENGINES; i++) {
        char *state = xasprintf("%s/state%d", s_dir, i);
        if (mkdir(state, 0700) != 0)
            abort();
        char *more = i == 1 ? xasprintf("local_rule_file = %s/rules\n%s", s_dir, extra[i])
                            : xstrdup(extra[i]);
        char *text = xasprintf("site = site1\nsensor_id = s%d\nstate_directory = %s\n"
                               "decision_file = %s/decisions\nledger_ttl = 1h\n"
                               "local_rule_period = 10m\nlocal_block_ttl = 1h\n"
                               "event_queue = 16\nreply_text = Refused 100%% as backscatter\n%s",
                               i, state, s_dir, more);
        char name[32];
        snprintf(name, sizeof(name), "sensor%d.conf", i);
        s_write(name, text);
        char *conf = xasprintf("%s/%s", s_dir, name);
        char err[1024];
        s_cfg[i] = sensor_config_load(conf, err, sizeof(err));
        if (!s_cfg[i]) {
            fprintf(stderr, "fuzz_milter: %s\n", err);
            abort();
        }
        s_eng[i] = milter_engine_new(s_cfg[i], s_clock, err, sizeof(err));
        if (!s_eng[i]) {
            fprintf(stderr, "fuzz_milter: %s\n", err);
            abort();
        }
        s_uplink[i] = s_cfg[i]->aggregator_events && *s_cfg[i]->aggregator_events;
        dcache_t *dc = milter_engine_dcache(s_eng[i]);
        s_upsert(dc, "R-buy-now", DCACHE_SCOPE_SUBJECT, "buy now", DCACHE_ACTION_REJECT, true,
                 DCACHE_ORIGIN_RULE);
        s_upsert(dc, "C-cheap", DCACHE_SCOPE_ORIG_SUBJECT, "cheap watches", DCACHE_ACTION_TAG,
                 false, DCACHE_ORIGIN_CLI);
        s_upsert(dc, "R-invoice", DCACHE_SCOPE_ORIG_SUBJECT, "your invoice", DCACHE_ACTION_TEMPFAIL,
                 false, DCACHE_ORIGIN_RULE);
        s_upsert(dc, "C-all-ip", DCACHE_SCOPE_CLIENT_IP, "192.0.2.99", DCACHE_ACTION_TEMPFAIL, true,
                 DCACHE_ORIGIN_CLI);
        xfree(conf);
        xfree(text);
        xfree(more);
        xfree(state);
    }
    atexit(s_cleanup);
}

/* ---- reading the input ---- */

typedef struct {
    const uint8_t *p;
    size_t n;
} s_in_t;

static bool s_byte(s_in_t *in, uint8_t *out)
{
    if (in->n == 0)
        return false;
    *out = *in->p++;
    in->n--;
    return true;
}

/* The next record's payload (repetition applied when rep); *own is what the caller frees. */
static bool s_record(s_in_t *in, bool rep, const uint8_t **pay, size_t *len, uint8_t **own)
{
    uint8_t b;
    *own = NULL;
    if (!s_byte(in, &b))
        return false;
    size_t n = b;
    if (n == 255 && in->n >= 2) {
        n = (size_t)in->p[0] << 8 | in->p[1];
        in->p += 2;
        in->n -= 2;
    }
    if (n > in->n)
        n = in->n;
    *pay = in->p;
    *len = n;
    in->p += n;
    in->n -= n;
    if (rep && n >= 2) {
        size_t unit = n - 1, times = ((size_t)(*pay)[0] + 1) * 256;
        if (times > S_REP_MAX / unit)
            times = S_REP_MAX / unit;
        uint8_t *buf = xmalloc(unit * times + 1);
        for (size_t i = 0; i < times; i++)
            memcpy(buf + i * unit, *pay + 1, unit);
        *own = buf;
        *pay = buf;
        *len = unit * times;
    }
    return true;
}

/* The payload as a C string would carry it: cut at the first NUL. */
static char *s_str(const uint8_t *pay, size_t len)
{
    return xstrndup((const char *)pay, len);
}

/* ---- the connection, as milter.c's callbacks keep it ---- */

static void s_open(milter_engine_t *e, s_conn_t *c)
{
    if (c->conn)
        return;
    c->conn = milter_conn_new();
    c->counted = true;
    c->overload = !milter_engine_conn_begin(e);
}

static void s_abort(s_conn_t *c)
{
    if (!c->conn)
        return;
    milter_conn_end(c->conn);
    milter_snap_release(&c->snap);
}

static void s_close(milter_engine_t *e, s_conn_t *c)
{
    if (!c->conn)
        return;
    if (c->counted)
        milter_engine_conn_end(e);
    milter_conn_destroy(&c->conn);
    milter_snap_release(&c->snap);
    memset(c, 0, sizeof(*c));
}

/* ---- checking a verdict ---- */

static void s_fail(const char *why)
{
    fprintf(stderr, "fuzz_milter: bad verdict: %s\n", why);
    abort();
}

/* Is the string within its buffer and free of what libmilter or a header cannot carry? */
static void s_check_text(const char *s, size_t size, bool pct_ok)
{
    size_t n = strnlen(s, size);
    if (n == size)
        s_fail("unterminated text");
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)s[i];
        if (c < 0x20 || c == 0x7f || (!pct_ok && c == '%'))
            s_fail("control or '%' character in reply text");
    }
}

static bool s_is_outbound(int which, const sensor_config_t *cfg, const milter_conn_t *conn)
{
    if (cfg->outbound_auth && conn->msg->auth)
        return true;
    for (size_t i = 0; i < cfg->outbound_daemons.n; i++)
        if (conn->daemon_name[0] && !strcasecmp(cfg->outbound_daemons.v[i], conn->daemon_name))
            return true;
    netaddr_t a;
    if (netaddr_parse(&a, conn->client_ip) == 0)
        for (size_t i = 0; i < cfg->internal_networks.n; i++) {
            netaddr_cidr_t net;
            if (netaddr_cidr_parse(&net, cfg->internal_networks.v[i]) == 0 &&
                netaddr_cidr_contains(&net, &a))
                return true;
        }
    return false;
}

/* What the engine should have seen in the message: class, keys, ledger; then checks v. */
static void s_check(int which, bool agg_up, const milter_conn_t *conn, const milter_verdict_t *v,
                    bool outbound_before)
{
    const sensor_config_t *cfg = s_cfg[which];
    milter_engine_t *e = s_eng[which];
    switch (v->kind) {
    case MILTER_VERDICT_ACCEPT:
        if (v->rcode[0] || v->xcode[0] || v->header_name[0])
            s_fail("accept with a reply code or header");
        break;
    case MILTER_VERDICT_REJECT:
        if (strcmp(v->rcode, "550") || strcmp(v->xcode, "5.7.1"))
            s_fail("reject without 550 5.7.1");
        break;
    case MILTER_VERDICT_TEMPFAIL:
        if (strcmp(v->rcode, "451") || strcmp(v->xcode, "4.7.1"))
            s_fail("tempfail without 451 4.7.1");
        break;
    case MILTER_VERDICT_TAG:
        if (strcmp(v->header_name, "X-Backstop") || strncmp(v->header_value, "decision=", 9))
            s_fail("tag without X-Backstop: decision=");
        break;
    default:
        s_fail("unknown verdict kind");
    }
    s_check_text(v->text, sizeof(v->text), false);
    s_check_text(v->header_value, sizeof(v->header_value), true);
    s_check_text(v->header_name, sizeof(v->header_name), true);
    if (v->kind == MILTER_VERDICT_ACCEPT)
        return;
    if (outbound_before)
        s_fail("outbound mail not accepted");

    /* the decision acted on */
    char id[DCACHE_ID_SIZE] = "";
    if (v->kind == MILTER_VERDICT_TAG) {
        snprintf(id, sizeof(id), "%s", v->header_value + 9);
    } else {
        const char *p = strstr(v->text, "(backstop decision ");
        if (p) {
            p += strlen("(backstop decision ");
            size_t n = strcspn(p, ")");
            if (n >= sizeof(id))
                s_fail("decision id too long");
            memcpy(id, p, n);
            id[n] = '\0';
        }
    }
    const milter_msg_t *m = conn->msg;
    classify_input_t ci = {
        .msg = m->text,
        .len = m->len,
        .truncated = m->truncated,
        .client_ip = conn->client_ip[0] ? conn->client_ip : NULL,
        .helo = conn->helo[0] ? conn->helo : NULL,
        .env_from = m->env_from,
        .rcpts = (const char *const *)m->rcpts,
        .nrcpts = m->nrcpts,
    };
    classify_result_t *cr = classify_message(&ci);
    enforce_input_t in;
    memset(&in, 0, sizeof(in));
    char *subject_ip = NULL;
    enforce_keys_from(cr, &in, &subject_ip);
    bool enforced =
        sensor_config_enforces_class(cfg, classify_class_name(classify_result_class(cr)));
    int64_t now = bs_clock_now_ms(s_clock);
    bool ledger_hit = false;
    if (enforced) {
        ledger_t *l = milter_engine_ledger(e);
        const char *omid = classify_result_orig_message_id(cr);
        if (omid && *omid)
            ledger_hit = ledger_has_message_id(l, omid, now);
        else if (cfg->ledger_match_recipient)
            for (size_t i = 0; i < m->nrcpts && !ledger_hit; i++)
                ledger_hit = ledger_has_sender(l, m->rcpts[i], now);
    }
    if (!id[0]) {
        /* only the no-aggregator policy tempfails without a decision */
        if (v->kind != MILTER_VERDICT_TEMPFAIL || !s_uplink[which] || agg_up || !enforced ||
            ledger_hit || cfg->on_no_aggregator != SENSOR_FAIL_TEMPFAIL)
            s_fail("reject/tempfail without a decision");
    } else {
        dcache_entry_t d;
        if (dcache_get(milter_engine_dcache(e), id, &d) != 0)
            s_fail("the decision named is not in the cache");
        int want = v->kind == MILTER_VERDICT_REJECT     ? DCACHE_ACTION_REJECT
                   : v->kind == MILTER_VERDICT_TEMPFAIL ? DCACHE_ACTION_TEMPFAIL
                                                        : DCACHE_ACTION_TAG;
        if (d.action != want)
            s_fail("verdict is not the decision's action");
        if (d.observe)
            s_fail("an observe decision was acted on");
        if (d.expires_ms <= now)
            s_fail("an expired decision was acted on");
        if (!enforced && !d.all_mail)
            s_fail("a decision applied to a class the site does not enforce");
        if (ledger_hit && d.action != DCACHE_ACTION_TAG &&
            (d.origin == DCACHE_ORIGIN_RULE || d.origin == DCACHE_ORIGIN_LOCAL))
            s_fail("an automatic block of a bounce the ledger vouched for");
        bool haskey = false;
        for (size_t i = 0; i < in.nkeys; i++)
            if (in.keys[i].scope == d.scope && in.keys[i].fp == d.fp)
                haskey = true;
        if (!haskey)
            s_fail("the decision's key is not one of the message's");
    }
    xfree(subject_ip);
    classify_result_destroy(&cr);
}

/* The events queued for the aggregator: well formed; freed. */
static size_t s_drain(milter_engine_t *e)
{
    evq_t *q = milter_engine_evq(e);
    evq_event_t *evs[32];
    size_t n, sink = 0;
    while ((n = evq_pop(q, evs, 32)) > 0) {
        for (size_t i = 0; i < n; i++) {
            evq_event_t *ev = evs[i];
            if (ev->nkeys > EVQ_MAX_KEYS || ev->nrules > EVQ_MAX_RULES ||
                (ev->iplen != 0 && ev->iplen != 4 && ev->iplen != 16))
                s_fail("malformed event");
            for (size_t k = 0; k < ev->nkeys; k++)
                if (ev->keys[k].text)
                    sink += strlen(ev->keys[k].text);
            for (size_t k = 0; k < ev->nrules; k++)
                sink += strlen(ev->rules[k]);
            if (ev->decision_id)
                sink += strlen(ev->decision_id);
            evq_event_destroy(&ev);
        }
    }
    return sink;
}

/* ---- mode 1: milter events ---- */

static void s_mode_milter(const uint8_t *data, size_t size)
{
    int which = data[0] & 1;
    bool agg_up = (data[0] & 2) != 0;
    milter_engine_t *e = s_eng[which];
    dcache_t *dc = milter_engine_dcache(e);
    /* a day later: what earlier runs left in the ledger, local rule and cache has lapsed */
    s_now += S_DAY_MS;
    bs_clock_fake_set(s_clock, s_now);
    milter_engine_tick(e);
    dcache_remove_origin(dc, DCACHE_ORIGIN_LOCAL);
    milter_engine_set_aggregator_up(e, agg_up);

    s_conn_t conns[S_CONNS];
    memset(conns, 0, sizeof(conns));
    s_in_t in = {data + 1, size - 1};
    size_t sink = 0;
    uint8_t type;
    while (s_byte(&in, &type)) {
        const uint8_t *pay;
        size_t len;
        uint8_t *own;
        if (!s_record(&in, (type & 0x80) != 0, &pay, &len, &own))
            break;
        s_conn_t *c = &conns[(type >> 5) & 1];
        int ev = (type & 0x1f) % 16;
        if (ev != 13 && ev != 14 && ev != 15)
            s_open(e, c); /* s_priv: a connection's first callback makes its context */
        char *s = (ev == 10 || ev >= 13) ? NULL : s_str(pay, len);
        milter_msg_t *m = c->conn ? c->conn->msg : NULL;
        switch (ev) {
        case 0: /* s_connect */
            milter_conn_set_client(c->conn, s, NULL);
            break;
        case 1: /* XCLIENT NAME / {client_name} */
            milter_conn_set_client(c->conn, NULL, s);
            break;
        case 2: /* s_helo */
            milter_conn_set_helo(c->conn, s);
            break;
        case 3: /* {daemon_name} at connect */
            milter_conn_set_daemon(c->conn, (type & 0x40) ? NULL : s);
            break;
        case 4: { /* s_envfrom */
            milter_snap_release(&c->snap);
            c->snap = milter_engine_snap(e);
            const sensor_config_t *cfg = milter_snap_config(c->snap);
            m = milter_conn_begin(c->conn, (size_t)cfg->message_limit);
            milter_msg_set_from(m, (type & 0x40) ? NULL : s);
            break;
        }
        case 5: /* {auth_authen} at MAIL FROM */
            if (m)
                m->auth = len > 0 && (pay[0] & 1);
            break;
        case 6: /* s_envrcpt */
            if (m)
                milter_msg_add_rcpt(m, s);
            break;
        case 7: /* the {i} macro */
            if (m)
                milter_msg_set_queue_id(m, s);
            break;
        case 8: /* s_header */
            if (m && !c->overload) {
                char *colon = strchr(s, ':');
                if (colon)
                    *colon++ = '\0';
                milter_msg_add_header(m, s, (type & 0x40) ? NULL : colon ? colon : "");
            }
            break;
        case 9: /* end of header: SMFIP_NOEOH, so only the body or the eom does it */
            if (m && !c->overload)
                milter_msg_end_header(m);
            break;
        case 10: /* s_body */
            if (m && !c->overload)
                sink += milter_msg_add_body(m, pay, len);
            break;
        case 11: { /* s_eom */
            milter_verdict_t v;
            memset(&v, 0x5a, sizeof(v));
            if (m)
                milter_msg_set_queue_id(m, s);
            const char *qid = m ? m->queue_id : "NOQUEUE";
            if (c->overload) {
                milter_engine_fail(e, MILTER_FAIL_OVERLOAD, qid, &v);
                s_check_text(v.text, sizeof(v.text), false);
            } else if (!m) {
                milter_engine_fail(e, MILTER_FAIL_INTERNAL, qid, &v);
                s_check_text(v.text, sizeof(v.text), false);
            } else {
                milter_msg_end_header(m);
                bool outbound = s_is_outbound(which, milter_snap_config(c->snap), c->conn);
                milter_engine_eom(e, c->snap, c->conn, &v);
                s_check(which, agg_up, c->conn, &v, outbound);
            }
            if (v.kind != MILTER_VERDICT_ACCEPT && v.kind != MILTER_VERDICT_TEMPFAIL &&
                (c->overload || !m))
                s_fail("a failure that neither accepts nor tempfails");
            sink += strlen(v.text);
            milter_conn_end(c->conn);
            milter_snap_release(&c->snap);
            break;
        }
        case 12: /* s_abort */
            s_abort(c);
            break;
        case 13: /* s_close */
            s_close(e, c);
            break;
        case 14: { /* time passes */
            int64_t secs = 0;
            for (size_t i = 0; i < len && i < 3; i++)
                secs = secs << 8 | pay[i];
            s_now += secs * 1000;
            bs_clock_fake_set(s_clock, s_now);
            break;
        }
        case 15: /* the uplink hears the aggregator, or stops hearing it */
            agg_up = len > 0 && (pay[0] & 1);
            milter_engine_set_aggregator_up(e, agg_up);
            break;
        }
        xfree(s);
        xfree(own);
    }
    for (int i = 0; i < S_CONNS; i++) {
        s_abort(&conns[i]);
        s_close(e, &conns[i]);
    }
    sink += s_drain(e);
    s_sink = sink;
}

/* ---- mode 2: the local rule and the ledger ---- */

/*
 * Bytes 1-3: threshold (1-16), max_keys (1-32), period (1-256 s). Then
 * records as above; the type (mod 8) picks: 0 note, 1 count, 2 decision id
 * (payload: 1 byte of key, or 8 for any key; the time moves by the type's
 * high bits, in seconds, back when bit 7), 3 ledger add (payload
 * "message-id\nsender"), 4/5 ledger has message id / sender, 6 expire,
 * 7 count.
 */
static void s_mode_tables(const uint8_t *data, size_t size)
{
    if (size < 4)
        return;
    uint32_t threshold = (uint32_t)(data[1] % 16) + 1;
    size_t max_keys = (size_t)(data[2] % 32) + 1;
    int64_t period = ((int64_t)data[3] + 1) * 1000;
    localrule_t *lr = localrule_new(threshold, period, max_keys);
    char err[256];
    ledger_t *l = ledger_new(NULL, 3600 * 1000, err, sizeof(err));
    if (!l)
        abort();
    int64_t now = 1700000000000LL;
    s_in_t in = {data + 4, size - 4};
    size_t sink = 0;
    uint8_t type;
    while (s_byte(&in, &type)) {
        const uint8_t *pay;
        size_t len;
        uint8_t *own;
        if (!s_record(&in, false, &pay, &len, &own))
            break;
        int64_t step = (int64_t)((type >> 3) & 15) * 1000;
        now += (type & 0x80) ? -step : step;
        uint64_t fp = 0;
        if (len >= 8)
            memcpy(&fp, pay, 8);
        else if (len > 0)
            fp = pay[0];
        switch (type & 7) {
        case 0: {
            bool fire = localrule_note(lr, fp, now);
            uint32_t n = localrule_count(lr, fp, now);
            if (fire != (n >= threshold) || n > threshold)
                s_fail("localrule_note and localrule_count disagree");
            if (localrule_keys(lr) > max_keys)
                s_fail("localrule holds more keys than its bound");
            break;
        }
        case 1:
            if (localrule_count(lr, fp, now) > threshold)
                s_fail("localrule count above the threshold");
            break;
        case 2: {
            char id[9];
            localrule_decision_id(fp, id);
            if (id[0] != 'L' || strlen(id) != 8 ||
                strspn(id + 1, "0123456789ABCDEFGHJKMNPQRSTVWXYZ") != 7)
                s_fail("bad local decision id");
            break;
        }
        case 3: {
            char *s = s_str(pay, len);
            char *nl = strchr(s, '\n');
            const char *sender = NULL;
            if (nl) {
                *nl = '\0';
                sender = nl + 1;
            }
            ledger_add(l, s, sender, now);
            if (*s && !ledger_has_message_id(l, s, now))
                s_fail("ledger forgot a message id just added");
            if (sender && *sender && !ledger_has_sender(l, sender, now))
                s_fail("ledger forgot a sender just added");
            xfree(s);
            break;
        }
        case 4:
        case 5: {
            char *s = s_str(pay, len);
            sink +=
                (type & 7) == 4 ? ledger_has_message_id(l, s, now) : ledger_has_sender(l, s, now);
            xfree(s);
            break;
        }
        case 6:
            sink += ledger_expire(l, now);
            break;
        default:
            sink += ledger_count(l) + localrule_keys(lr);
            break;
        }
        xfree(own);
    }
    localrule_destroy(&lr);
    ledger_destroy(&l);
    s_sink = sink;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size == 0)
        return 0;
    if (data[0] >= 0xF0) {
        s_mode_tables(data, size);
        return 0;
    }
    if (!s_eng[0])
        s_init();
    s_mode_milter(data, size);
    return 0;
}
