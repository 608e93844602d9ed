/*
 * agg_config - the aggregator's parameter table; see agg_config.h.
 *
 * CONFIGURATION PARAMETERS (defaults in the tables below, one place)
 *   Endpoints: event_endpoint, decision_endpoint, snapshot_endpoint,
 *   control_endpoint, control_group. Store: data_dir. Privileges: user. Security:
 *   server_key_file (empty: plain mode, loopback endpoints only). Failover
 *   pair: peer_decisions, peer_snapshot, peer_public_key. Counting:
 *   window_resolution, max_future_skew, max_keys. Timers:
 *   heartbeat_interval, flush_interval, sweep_interval, sweep_budget.
 *   Decisions: change_log, extend_min, sync_decisions.
 *   Rules: one "[rule NAME]" section each, keys scope, window, min_events,
 *   min_sites, max_site_share, ttl, action, reach, mode, require_rule_match,
 *   classes. Without any rule section the shipped defaults apply
 *   (rules_defaults(): fleet_subject, fleet_orig_subject, fleet_reflector_ip,
 *   local_subject).
 *
 *   SIGHUP: s_restart_only lists what keeps its running value until a
 *   restart (agg_config_keep_restart); everything else, rules included,
 *   takes effect at once.
 *
 * DIAGNOSTICS
 *   Everything cfg_load reports, plus the checks across keys: rule checks
 *   (rules_check), a max_site_share that is not a number in (0, 1], a rule
 *   window longer than 4096 buckets of window_resolution, more rules than
 *   counting takes, empty endpoints or data_dir, an endpoint ZeroMQ could not
 *   bind or connect (zsock_endpoint_check), peer settings that do not go
 *   together. Each names the FILE:LINE of the key it refuses (cfg_line()), or
 *   of the section, or FILE when the value is a default.
 */
#include "agg_config.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "ingest.h"
#include "msg.h"
#include "xalloc.h"
#include "zsock.h"

#define T agg_config_t
#define R agg_rule_cfg_t

/* Room for "FILE:LINE" in messages. */
#define S_WHERE_LEN 1024

/* Word lists in enum order; scope words start at BS_SCOPE_SUBJECT (index 0 = value 1). */
static const char *const s_scope_words[] = {"subject",    "orig_subject", "client_ip",
                                            "client_net", "subject_ip",   NULL};
static const char *const s_action_words[] = {"reject", "tempfail", "tag", NULL};
/* "site" is "local" as the CLI (--reach site) and the wording call it */
static const char *const s_reach_words[] = {"fleet", "local", "site", NULL};
static const char *const s_mode_words[] = {"enforce", "observe", NULL};

static const cfg_param_t s_rule_params[] = {
    CFG_ENUM(R, scope, "scope", "subject", s_scope_words,
             "key counted: subject, orig_subject, client_ip, client_net, subject_ip"),
    CFG_DURATION(R, window_ms, "window", "120s", "s", "1s", "1d",
                 "counting window; at most 4096 buckets of window_resolution (1d needs "
                 "window_resolution >= 22s)"),
    CFG_INT(R, min_events, "min_events", "400", "1", "1000000000", "events needed in the window"),
    CFG_INT(R, min_sites, "min_sites", "3", "1", "65000", "distinct sites needed (fleet rules)"),
    CFG_STRING(R, max_site_share, "max_site_share", "0.6",
               "largest share of one site, 0.6 or 60% (fleet rules)"),
    CFG_DURATION(R, ttl_ms, "ttl", "1h", "s", "1s", "30d",
                 "decision lifetime after the last firing"),
    CFG_ENUM(R, action, "action", "reject", s_action_words, "reject, tempfail or tag"),
    CFG_ENUM(R, reach, "reach", "fleet", s_reach_words,
             "fleet (every site) or local (the site that saw it; also: site)"),
    CFG_ENUM(R, mode, "mode", "enforce", s_mode_words,
             "enforce, or observe (decisions are marked observe, block nothing)"),
    CFG_BOOL(R, require_rule_match, "require_rule_match", "no",
             "count only events whose content rules matched"),
    CFG_LIST(R, classes, "classes", "bounce",
             "message classes that count (bounce, autoreply, mdn, arf, normal)"),
    CFG_END,
};

static const cfg_param_t s_params[] = {
    CFG_STRING(T, event_endpoint, "event_endpoint", "tcp://127.0.0.1:5570",
               "PULL endpoint the sensors send events to"),
    CFG_STRING(T, decision_endpoint, "decision_endpoint", "tcp://127.0.0.1:5571",
               "PUB endpoint decisions and heartbeats are published on"),
    CFG_STRING(T, snapshot_endpoint, "snapshot_endpoint", "tcp://127.0.0.1:5572",
               "ROUTER endpoint serving snapshots and changes-since"),
    CFG_STRING(T, control_endpoint, "control_endpoint", "ipc:///run/backstop/aggregator.sock",
               "ROUTER endpoint of the local CLI (ipc://, mode 0660)"),
    CFG_STRING(T, control_group, "control_group", "",
               "group owning the control socket file; empty: the daemon's"),
    CFG_STRING(T, data_dir, "data_dir", "/var/lib/backstop-aggregator",
               "LevelDB directory: counters, decisions, sequence log, sites, allowlists"),
    CFG_STRING(T, user, "user", "",
               "started as root: become this user after binding and opening data_dir; "
               "empty: stay"),
    CFG_STRING(T, server_key_file, "server_key_file", "",
               "CURVE key pair file (public/secret); empty: plain mode, loopback only"),
    CFG_STRING(T, peer_decisions, "peer_decisions", "",
               "the other aggregator of a failover pair: its decision_endpoint, whose "
               "decisions, allowlist and sites this one mirrors (and it ours); empty: no peer"),
    CFG_STRING(T, peer_snapshot, "peer_snapshot", "",
               "the other aggregator's snapshot_endpoint (with peer_decisions)"),
    CFG_STRING(T, peer_public_key, "peer_public_key", "",
               "the other aggregator's CURVE public key (the public half of its "
               "server_key_file): it may follow our decisions, allowlist and sites, and we "
               "connect to it with "
               "it; needed with a peer when server_key_file is set"),
    CFG_DURATION(T, window_resolution_ms, "window_resolution", "10s", "s", "1s", "10m",
                 "bucket length of the sliding windows, whole seconds; a rule window spans "
                 "at most 4096 of them (10s: windows up to 11h)"),
    CFG_DURATION(T, max_future_skew_ms, "max_future_skew", "60s", "s", "1s", "1h",
                 "events further ahead of our clock are dropped (future)"),
    CFG_DURATION(T, heartbeat_interval_ms, "heartbeat_interval", "1s", "ms", "100ms", "10s",
                 "heartbeat period on topic H"),
    CFG_DURATION(T, flush_interval_ms, "flush_interval", "1s", "ms", "50ms", "10s",
                 "window counters are written behind this often (what a crash can lose)"),
    CFG_DURATION(T, sweep_interval_ms, "sweep_interval", "1s", "ms", "10ms", "1m",
                 "idle-key sweep period"),
    CFG_INT(T, sweep_budget, "sweep_budget", "65536", "64", "100000000",
            "window table slots examined per sweep"),
    CFG_INT(T, max_keys, "max_keys", "8000000", "0", "1000000000",
            "window entries at most (keys and per-site series); 0: no cap"),
    CFG_INT(T, change_log, "change_log", "4096", "16", "1000000",
            "decision changes kept for changes-since answers"),
    CFG_DURATION(T, extend_min_ms, "extend_min", "60s", "s", "0s", "1d",
                 "a continuing wave extends its decision when that adds at least this much"),
    CFG_BOOL(T, sync_decisions, "sync_decisions", "yes",
             "what the aggregator wrote reaches the disk (fsync) at the end of every "
             "flush, and CLI changes before the reply; no: the kernel writes it back in "
             "its own time. Decisions are written before they are published either way, "
             "so a daemon crash loses none, and after a power failure the sequence moves "
             "on so every sensor resyncs"),
    CFG_END,
};

static const cfg_section_t s_sections[] = {
    CFG_SECTION(T, rule_sections, nrule_sections, "rule", R, s_rule_params,
                "a rule: thresholds over a key's window that make a decision"),
    CFG_SECTION_END,
};

static const cfg_schema_t s_schema = {
    .params = s_params, .sections = s_sections, .global_head = true};

/* What a running aggregator set up once and keeps until a restart: the sockets and the
 * control socket's group (bound at start), the store and its sync mode (LevelDB is opened
 * with it), the user (privileges are dropped once), the CURVE key and the peer (ZAP and
 * the follower are made at start), the bucket length (the window's ring), the heartbeat
 * (the follower's silence limit is derived from it at start) and the change log (the
 * decision table's log is sized at start). Table order: the man pages list them so. */
static const char *const s_restart_only[] = {"event_endpoint",
                                             "decision_endpoint",
                                             "snapshot_endpoint",
                                             "control_endpoint",
                                             "control_group",
                                             "data_dir",
                                             "user",
                                             "server_key_file",
                                             "peer_decisions",
                                             "peer_snapshot",
                                             "peer_public_key",
                                             "window_resolution",
                                             "heartbeat_interval",
                                             "change_log",
                                             "sync_decisions",
                                             NULL};

const cfg_schema_t *agg_config_schema(void)
{
    return &s_schema;
}

const char *const *agg_config_restart_keys(void)
{
    return s_restart_only;
}

const char *agg_config_where(const agg_config_t *self, const char *key, char *buf, size_t len)
{
    return cfg_where(&self->head, s_params, key, self->path, self->path, buf, len);
}

/* "0.6" or "60%" -> 0.6; -1 when not a number in (0, 1]. */
static double s_parse_share(const char *text)
{
    if (!text || !*text)
        return -1;
    char *end = NULL;
    errno = 0;
    double v = strtod(text, &end);
    if (errno || end == text)
        return -1;
    if (*end == '%') {
        v /= 100.0;
        end++;
    }
    if (*end || !(v > 0.0) || v > 1.0)
        return -1;
    return v;
}

/* Converts one section of file into r; -1 with a line in err. */
static int s_rule_from_section(const char *file, const agg_rule_cfg_t *sec, rule_t *r, char *err,
                               size_t errlen)
{
    char why[256], at[S_WHERE_LEN];
    memset(r, 0, sizeof(*r));
    if (strlen(sec->head.name) > RULE_NAME_MAX) {
        cfg_err_line(err, errlen, sec->head.origin, "%s", "rule name longer than 63 bytes");
        return -1;
    }
    decisions_strlcpy(r->name, sec->head.name, RULE_NAME_MAX);
    r->scope = (bs_scope_t)(sec->scope + BS_SCOPE_SUBJECT);
    r->window_ms = sec->window_ms;
    r->min_events = (uint32_t)sec->min_events;
    r->min_sites = (uint32_t)sec->min_sites;
    r->max_site_share = s_parse_share(sec->max_site_share);
    if (r->max_site_share < 0) {
        snprintf(why, sizeof(why), "max_site_share '%s' is not a number in (0, 1] or a percentage",
                 sec->max_site_share ? sec->max_site_share : "");
        cfg_err_line(err, errlen,
                     cfg_where(&sec->head, s_rule_params, "max_site_share", file, sec->head.origin,
                               at, sizeof(at)),
                     "%s", why);
        return -1;
    }
    r->ttl_ms = sec->ttl_ms;
    r->action = (bs_action_t)(sec->action + BS_ACTION_REJECT);
    r->reach = sec->reach == 0 ? BS_REACH_FLEET : BS_REACH_LOCAL;
    r->mode = (bs_mode_t)sec->mode;
    r->require_rule_match = sec->require_rule_match;
    r->classes = 0;
    for (size_t i = 0; i < sec->classes.n; i++) {
        int c = bs_enums_class_parse(sec->classes.v[i]);
        if (c <= BS_CLASS_UNKNOWN) {
            snprintf(why, sizeof(why), "classes: unknown class '%s'", sec->classes.v[i]);
            cfg_err_line(err, errlen,
                         cfg_where(&sec->head, s_rule_params, "classes", file, sec->head.origin, at,
                                   sizeof(at)),
                         "%s", why);
            return -1;
        }
        r->classes |= 1u << c;
    }
    if (rules_check(r, why, sizeof(why)) < 0) {
        cfg_err_line(err, errlen, sec->head.origin, "%s", why);
        return -1;
    }
    return 0;
}

/*
 * Every rule window within INGEST_WINDOW_BUCKETS_MAX buckets of window_resolution, and span_ms; -1
 * with lines in err. A window too long is blamed on its "window" line (the section's when
 * it is the default), or, for the shipped rules, on window_resolution; the message says
 * the resolution that would fit, as it is the one number the operator can change alone.
 */
static int s_check_windows(agg_config_t *c, char *err, size_t errlen)
{
    int rc = 0;
    int64_t b = c->window_resolution_ms, longest = 0;
    for (size_t i = 0; i < c->nrules; i++) {
        const rule_t *r = &c->rules[i];
        if (r->window_ms > longest)
            longest = r->window_ms;
        if ((r->window_ms + b - 1) / b <= INGEST_WINDOW_BUCKETS_MAX)
            continue;
        char at[S_WHERE_LEN], why[512], window[32], need[32], have[32];
        if (i < c->nrule_sections) {
            const agg_rule_cfg_t *sec = &c->rule_sections[i];
            cfg_where(&sec->head, s_rule_params, "window", c->path, sec->head.origin, at,
                      sizeof(at));
        } else {
            agg_config_where(c, "window_resolution", at, sizeof(at));
        }
        /* whole seconds, as counting takes them, and b >= window / buckets */
        int64_t unit = INGEST_WINDOW_BUCKETS_MAX * 1000LL;
        cfg_format_duration(r->window_ms, window, sizeof(window));
        cfg_format_duration((r->window_ms + unit - 1) / unit * 1000, need, sizeof(need));
        cfg_format_duration(b, have, sizeof(have));
        snprintf(why, sizeof(why),
                 "rule %s: window %s needs window_resolution >= %s (a window spans at most %d "
                 "buckets; window_resolution is %s)",
                 r->name, window, need, INGEST_WINDOW_BUCKETS_MAX, have);
        cfg_err_line(err, errlen, at, "%s", why);
        rc = -1;
    }
    c->span_ms = longest > 0 ? (longest + b - 1) / b * b : b;
    return rc;
}

/* Cross-field checks and derived values; -1 with lines in err. */
static int s_finish(agg_config_t *c, char *err, size_t errlen)
{
    int rc = 0;
    char at[S_WHERE_LEN], why[512];
    if (c->nrule_sections > 0) {
        c->rules = xcalloc(c->nrule_sections, sizeof(*c->rules));
        c->nrules = c->nrule_sections;
        for (size_t i = 0; i < c->nrule_sections; i++)
            if (s_rule_from_section(c->path, &c->rule_sections[i], &c->rules[i], err, errlen) < 0)
                rc = -1;
        if (c->nrule_sections > INGEST_RULES_MAX) {
            snprintf(why, sizeof(why), "rule %s: more than %d rules",
                     c->rule_sections[INGEST_RULES_MAX].head.name, INGEST_RULES_MAX);
            cfg_err_line(err, errlen, c->rule_sections[INGEST_RULES_MAX].head.origin, "%s", why);
            rc = -1;
        }
    } else {
        size_t n = 0;
        const rule_t *d = rules_defaults(&n);
        c->rules = xcalloc(n ? n : 1, sizeof(*c->rules));
        memcpy(c->rules, d, n * sizeof(*d));
        c->nrules = n;
    }
    if (!c->data_dir || !*c->data_dir) {
        cfg_err_line(err, errlen, agg_config_where(c, "data_dir", at, sizeof(at)), "%s",
                     "data_dir must not be empty");
        rc = -1;
    }
    const char *eps[] = {c->event_endpoint, c->decision_endpoint, c->snapshot_endpoint,
                         c->control_endpoint};
    const char *names[] = {"event_endpoint", "decision_endpoint", "snapshot_endpoint",
                           "control_endpoint"};
    for (size_t i = 0; i < 4; i++) {
        if (!eps[i] || !*eps[i]) {
            snprintf(why, sizeof(why), "%s must not be empty", names[i]);
            cfg_err_line(err, errlen, agg_config_where(c, names[i], at, sizeof(at)), "%s", why);
            rc = -1;
        }
    }
    /* what zmq_bind or zmq_connect would refuse (at start, or forever in the background)
     * is refused here, for -n, the start and a reload alike */
    const char *all[][2] = {
        {"event_endpoint", c->event_endpoint},       {"decision_endpoint", c->decision_endpoint},
        {"snapshot_endpoint", c->snapshot_endpoint}, {"control_endpoint", c->control_endpoint},
        {"peer_decisions", c->peer_decisions},       {"peer_snapshot", c->peer_snapshot}};
    for (size_t i = 0; i < sizeof(all) / sizeof(all[0]); i++) {
        char bad[128];
        if (all[i][1] && *all[i][1] &&
            zsock_endpoint_check(all[i][1], i < 4, bad, sizeof(bad)) < 0) {
            snprintf(why, sizeof(why), "%s %.256s %s", all[i][0], all[i][1], bad);
            cfg_err_line(err, errlen, agg_config_where(c, all[i][0], at, sizeof(at)), "%s", why);
            rc = -1;
        }
    }
    /* two sockets on one address: the second bind fails at start (exit 69); say which two
     * (endpoints already refused above are not compared) */
    for (size_t j = 1; j < 4; j++) {
        for (size_t i = 0; i < j; i++) {
            char bad[8], other[S_WHERE_LEN], clash[S_WHERE_LEN + 640];
            if (!all[i][1] || !*all[i][1] || !all[j][1] || !*all[j][1] ||
                zsock_endpoint_check(all[i][1], 1, bad, sizeof(bad)) < 0 ||
                zsock_endpoint_check(all[j][1], 1, bad, sizeof(bad)) < 0 ||
                !zsock_bind_clash(all[i][1], all[j][1]))
                continue;
            /* at the later line of the two (a default has none) */
            size_t at_k = j, by_k = i;
            if (cfg_line(&c->head, s_params, all[j][0]) < cfg_line(&c->head, s_params, all[i][0])) {
                at_k = i;
                by_k = j;
            }
            if (cfg_line(&c->head, s_params, all[by_k][0]) > 0)
                agg_config_where(c, all[by_k][0], other, sizeof(other));
            else
                snprintf(other, sizeof(other), "by default");
            snprintf(clash, sizeof(clash),
                     "%s %.256s takes the address %s %.256s binds (%s): each endpoint needs an "
                     "address and port of its own",
                     all[at_k][0], all[at_k][1], all[by_k][0], all[by_k][1], other);
            cfg_err_line(err, errlen, agg_config_where(c, all[at_k][0], at, sizeof(at)), "%s",
                         clash);
            rc = -1;
            break;
        }
    }
    bool peer_de = c->peer_decisions && *c->peer_decisions;
    bool peer_sn = c->peer_snapshot && *c->peer_snapshot;
    bool curve = c->server_key_file && *c->server_key_file;
    if (peer_de != peer_sn) {
        cfg_err_line(
            err, errlen,
            agg_config_where(c, peer_de ? "peer_decisions" : "peer_snapshot", at, sizeof(at)), "%s",
            "a peer needs both peer_decisions and peer_snapshot");
        rc = -1;
    } else if (peer_de && curve && !zsock_key_valid(c->peer_public_key)) {
        /* the key is what is missing: its line if it is there, else the peer's */
        const char *key =
            c->peer_public_key && *c->peer_public_key ? "peer_public_key" : "peer_decisions";
        cfg_err_line(err, errlen, agg_config_where(c, key, at, sizeof(at)), "%s",
                     "peer_public_key must be a 40-character Z85 key when server_key_file is set");
        rc = -1;
    } else if (c->peer_public_key && *c->peer_public_key && !zsock_key_valid(c->peer_public_key)) {
        cfg_err_line(err, errlen, agg_config_where(c, "peer_public_key", at, sizeof(at)), "%s",
                     "peer_public_key is not a 40-character Z85 key");
        rc = -1;
    } else if (peer_de && !curve &&
               (!zsock_endpoint_is_local(c->peer_decisions) ||
                !zsock_endpoint_is_local(c->peer_snapshot))) {
        const char *key =
            zsock_endpoint_is_local(c->peer_decisions) ? "peer_snapshot" : "peer_decisions";
        cfg_err_line(err, errlen, agg_config_where(c, key, at, sizeof(at)), "%s",
                     "plain mode (no server_key_file): peer endpoints must be loopback");
        rc = -1;
    }
    if (c->control_endpoint && *c->control_endpoint &&
        strncmp(c->control_endpoint, "ipc://", 6) != 0) {
        cfg_err_line(err, errlen, agg_config_where(c, "control_endpoint", at, sizeof(at)), "%s",
                     "control_endpoint must be an ipc:// endpoint (file permissions guard it)");
        rc = -1;
    }
    if (c->window_resolution_ms % 1000 != 0) {
        /* the bounds take "1500ms"; the buckets are counted in whole seconds */
        char have[32];
        cfg_format_duration(c->window_resolution_ms, have, sizeof(have));
        snprintf(why, sizeof(why), "window_resolution %s must be whole seconds", have);
        cfg_err_line(err, errlen, agg_config_where(c, "window_resolution", at, sizeof(at)), "%s",
                     why);
        rc = -1;
    }
    if (s_check_windows(c, err, errlen) < 0)
        rc = -1;
    return rc;
}

int agg_config_keep_restart(agg_config_t *fresh, const agg_config_t *running, char *changed,
                            size_t changed_len, char *err, size_t errlen)
{
    if (errlen)
        err[0] = '\0';
    int n = cfg_keep(s_params, s_restart_only, fresh, running, changed, changed_len);
    /* the fresh rules were checked against the fresh resolution, they run with ours */
    if (s_check_windows(fresh, err, errlen) < 0)
        return -1;
    return n;
}

agg_config_t *agg_config_load(const char *path, char *err, size_t errlen)
{
    agg_config_t *c = xcalloc(1, sizeof(*c));
    if (errlen)
        err[0] = '\0';
    int rc =
        path ? cfg_load(&s_schema, path, c, err, errlen) : cfg_defaults(&s_schema, c, err, errlen);
    c->path = xstrdup(path ? path : "defaults");
    if (rc == 0)
        rc = s_finish(c, err, errlen);
    if (rc != 0)
        agg_config_destroy(&c);
    return c;
}

void agg_config_destroy(agg_config_t **self_p)
{
    if (!self_p || !*self_p)
        return;
    agg_config_t *c = *self_p;
    xfree(c->rules);
    xfree(c->path);
    cfg_free(&s_schema, c);
    xfree(c);
    *self_p = NULL;
}

const rule_t *agg_config_rule(const agg_config_t *self, const char *name)
{
    for (size_t i = 0; i < self->nrules; i++)
        if (strcmp(self->rules[i].name, name) == 0)
            return &self->rules[i];
    return NULL;
}
