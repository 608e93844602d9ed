/*
 * sensor_config - the sensor's parameter table; see sensor_config.h.
 *
 * CONFIGURATION PARAMETERS (defaults in the table below, one place)
 *   Identity: site, sensor_id. Milter: milter_socket, milter_umask,
 *   milter_timeout, max_connections, message_limit. Enforcement:
 *   enforce_classes, reply_text, decision_file. Outbound ledger: outbound_auth,
 *   internal_networks, outbound_daemons, ledger_ttl, ledger_match_recipient.
 *   Local rule: local_rule, local_rule_file, local_rule_threshold,
 *   local_rule_period, local_block_ttl, local_block_action, local_rule_observe,
 *   local_rule_max_keys. Uplink: aggregator_events, aggregator_decisions,
 *   aggregator_snapshot, aggregator_public_key, sensor_secret_key_file,
 *   aggregator_backup_events, aggregator_backup_decisions,
 *   aggregator_backup_snapshot, aggregator_backup_public_key (failover),
 *   heartbeat_timeout, event_queue, event_batch, event_flush, spool_limit,
 *   status_interval. Process: user, pid_file. Fail open: on_internal_error, on_overload,
 *   on_no_aggregator, fail_log_interval.
 *
 * RELOAD
 *   SIGHUP re-reads the file; s_restart_only lists what keeps its running
 *   value until a restart (the rest, e.g. decision_file, local_rule_file,
 *   the local rule's limits, reply_text, on_*, takes effect at once).
 *
 * DIAGNOSTICS
 *   Everything cfg_load reports, plus the checks the table cannot express,
 *   all of them, each as "FILE:LINE: why" (the line the key is set on; "FILE:
 *   why" when no key is to blame): site and sensor_id as the aggregator takes
 *   them, decision feed and snapshot endpoints without an event endpoint, a
 *   decision feed without a snapshot endpoint, an incomplete backup, CURVE
 *   public keys, milter_socket (the forms libmilter takes), milter_umask,
 *   enforce_classes, internal_networks, endpoints
 *   ZeroMQ could not connect to (zsock_endpoint_check, as the aggregator
 *   checks its own). For the milter (sensor_config_load_milter), an
 *   aggregator named without all three of its endpoints instead of the two
 *   feed checks: replay sends events only and takes aggregator_events alone.
 */
#include "sensor_config.h"

#include "keytext.h"
#include "msg.h"
#include "netaddr.h"
#include "wire.h"
#include "xalloc.h"
#include "zsock.h"

#include <arpa/inet.h>
#include <ctype.h>
#include <netdb.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#define T sensor_config_t

static const char *const s_fail_words[] = {"accept", "tempfail", NULL};
static const char *const s_action_words[] = {"reject", "tempfail", "tag", NULL};

static const cfg_param_t s_params[] = {
    CFG_STRING(T, site, "site", NULL, "this site's name (required)"),
    CFG_STRING(T, sensor_id, "sensor_id", "", "this sensor's name; empty: the host name"),
    CFG_STRING(T, milter_socket, "milter_socket", "unix:/run/backstop/sensor.sock",
               "libmilter socket: unix:/PATH (local:/PATH), inet:PORT@HOST or "
               "inet6:PORT@HOST"),
    CFG_STRING(T, milter_umask, "milter_umask", "007", "octal umask for the unix socket"),
    CFG_DURATION(T, milter_timeout_ms, "milter_timeout", "30s", "s", "1s", "1h",
                 "I/O timeout towards the MTA"),
    CFG_INT(T, max_connections, "max_connections", "500", "1", "100000",
            "concurrent MTA connections before on_overload applies"),
    CFG_STRING(T, state_directory, "state_directory", "/var/lib/backstop",
               "decision cache, ledger and spool"),
    CFG_STRING(T, user, "user", "",
               "started as root: run as this user once the socket is open; empty: stay"),
    CFG_STRING(T, pid_file, "pid_file", "", "daemon mode: write the process id here; empty: none"),
    CFG_SIZE(T, message_limit, "message_limit", "256k", "", "4k", "64m",
             "bytes of header and body kept per message for the classifier"),
    CFG_STRING(T, decision_file, "decision_file", "",
               "operator decisions, one 'scope action ttl value' per line: scope subject, "
               "orig_subject, client_ip, client_net or subject_ip; action reject, tempfail, tag "
               "or observe; ttl a duration (bare number: seconds), 0 for no expiry; value the "
               "rest of the line, normalised as the sensor keys mail: a subject as typed (or "
               "RFC 2047 encoded), an address in any form, a client_net the /24 (IPv4) or /64 "
               "(IPv6) a client is in, subject_ip 'SUBJECT|IP'"),
    CFG_LIST(T, enforce_classes, "enforce_classes", "bounce",
             "message classes decisions apply to (bounce, autoreply, mdn, arf)"),
    CFG_STRING(T, reply_text, "reply_text", "Message refused as backscatter",
               "SMTP reply text before '(backstop decision ID)'"),
    CFG_BOOL(T, outbound_auth, "outbound_auth", "yes",
             "SASL-authenticated clients send outbound mail (ledger)"),
    CFG_LIST(T, internal_networks, "internal_networks", "",
             "clients in these networks send outbound mail (ledger)"),
    CFG_LIST(T, outbound_daemons, "outbound_daemons", "",
             "{daemon_name} values of outbound services, e.g. a submission service's "
             "milter_macro_daemon_name"),
    CFG_DURATION(T, ledger_ttl_ms, "ledger_ttl", "7d", "s", "1m", "90d",
                 "how long outbound mail vouches for its bounces"),
    CFG_BOOL(T, ledger_match_recipient, "ledger_match_recipient", "yes",
             "a bounce quoting no Message-ID is legitimate when sent to a ledger sender"),
    CFG_BOOL(T, local_rule, "local_rule", "yes", "run the per-site rule without the aggregator"),
    CFG_STRING(T, local_rule_file, "local_rule_file", "",
               "header_checks-style rules a bounce must match to count; empty: every bounce"),
    CFG_INT(T, local_rule_threshold, "local_rule_threshold", "20", "1", "100000",
            "matching bounces with one subject key ..."),
    CFG_DURATION(T, local_rule_period_ms, "local_rule_period", "10m", "s", "1s", "7d",
                 "... within this period ..."),
    CFG_DURATION(T, local_block_ttl_ms, "local_block_ttl", "1h", "s", "1s", "30d",
                 "... block the subject at this site this long"),
    CFG_ENUM(T, local_block_action, "local_block_action", "reject", s_action_words,
             "reject, tempfail or tag"),
    CFG_BOOL(T, local_rule_observe, "local_rule_observe", "no",
             "log what the local rule would block, block nothing"),
    CFG_INT(T, local_rule_max_keys, "local_rule_max_keys", "100000", "16", "10000000",
            "subject keys the local rule tracks at once"),
    CFG_STRING(T, aggregator_events, "aggregator_events", "",
               "aggregator event endpoint (tcp://host:port); the milter needs "
               "aggregator_decisions and aggregator_snapshot with it; empty: standalone"),
    CFG_STRING(T, aggregator_decisions, "aggregator_decisions", "",
               "aggregator decision publisher endpoint"),
    CFG_STRING(T, aggregator_snapshot, "aggregator_snapshot", "", "aggregator snapshot endpoint"),
    CFG_STRING(T, aggregator_public_key, "aggregator_public_key", "",
               "aggregator CURVE public key (z85); empty: no encryption"),
    CFG_STRING(T, sensor_secret_key_file, "sensor_secret_key_file", "",
               "this sensor's CURVE key pair file"),
    CFG_STRING(T, aggregator_backup_events, "aggregator_backup_events", "",
               "backup aggregator event endpoint, followed after heartbeat_timeout of silence"),
    CFG_STRING(T, aggregator_backup_decisions, "aggregator_backup_decisions", "",
               "backup aggregator decision publisher endpoint"),
    CFG_STRING(T, aggregator_backup_snapshot, "aggregator_backup_snapshot", "",
               "backup aggregator snapshot endpoint"),
    CFG_STRING(T, aggregator_backup_public_key, "aggregator_backup_public_key", "",
               "backup aggregator CURVE public key; empty: aggregator_public_key"),
    CFG_DURATION(
        T, heartbeat_timeout_ms, "heartbeat_timeout", "3s", "s", "1500ms", "1m",
        "decision feed silence before reconnecting; longer when 3 of the heartbeat intervals "
        "the aggregator announces are longer (its 1s heartbeat by default)"),
    CFG_INT(T, event_queue, "event_queue", "10000", "16", "1000000",
            "events waiting for the uplink before they are dropped"),
    CFG_INT(T, event_batch, "event_batch", "200", "1", "1024", "events per frame at most"),
    CFG_DURATION(T, event_flush_ms, "event_flush", "100ms", "ms", "1ms", "10s",
                 "longest an event waits for its batch"),
    CFG_INT(T, spool_limit, "spool_limit", "1000000", "0", "100000000",
            "events spooled on disk while the aggregator is away"),
    CFG_DURATION(T, status_interval_ms, "status_interval", "5s", "s", "100ms", "1h",
                 "how often the sensor reports its applied sequence"),
    CFG_ENUM(T, on_internal_error, "on_internal_error", "accept", s_fail_words,
             "accept or tempfail a message the sensor failed on"),
    CFG_ENUM(T, on_overload, "on_overload", "accept", s_fail_words,
             "accept or tempfail mail beyond max_connections"),
    CFG_ENUM(T, on_no_aggregator, "on_no_aggregator", "accept", s_fail_words,
             "accept or tempfail bounce-class mail while the aggregator is unreachable"),
    CFG_DURATION(T, fail_log_interval_ms, "fail_log_interval", "60s", "s", "1s", "1d",
                 "each failure class is logged at most once per interval"),
    CFG_END,
};

static const cfg_schema_t s_schema = {.params = s_params, .sections = NULL, .global_head = true};

const cfg_schema_t *sensor_config_schema(void)
{
    return &s_schema;
}

/* Appends text to the message in err (truncated to errlen). */
static void s_append(char *err, size_t errlen, const char *text)
{
    size_t n = strlen(err);
    if (n + 1 < errlen)
        snprintf(err + n, errlen - n, "%s", text);
}

/* The aggregator takes any non-empty UTF-8 sensor name up to WIRE_MAX_ID bytes; printable
 * ASCII without blanks is what also keeps its "sensor=NAME" log fields one word. */
static bool s_sensor_id_valid(const char *name)
{
    size_t n = strlen(name);
    if (n == 0 || n > WIRE_MAX_ID)
        return false;
    for (const char *p = name; *p; p++)
        if (*p < '!' || *p > '~')
            return false;
    return true;
}

/* Is the host part of an inet: or inet6: milter socket (after '@') one libmilter takes: an
 * address of the family, the same in brackets, or a host name it resolves at start? */
static bool s_milter_host_valid(const char *h, int family)
{
    unsigned char addr[sizeof(struct in6_addr)];
    char inner[INET6_ADDRSTRLEN + 1];
    if (*h == '[') {
        const char *end = strchr(h, ']');
        size_t n = end ? (size_t)(end - h - 1) : 0;
        if (!end || end[1] != '\0' || n == 0 || n >= sizeof(inner))
            return false;
        memcpy(inner, h + 1, n);
        inner[n] = '\0';
        return inet_pton(family, inner, addr) == 1;
    }
    if (inet_pton(family, h, addr) == 1)
        return true;
    /* a name: letters, digits, '-' and '.', and not a mistyped dotted address */
    bool name = false;
    for (const char *p = h; *p; p++) {
        if (!isalnum((unsigned char)*p) && *p != '-' && *p != '.')
            return false;
        name |= isalpha((unsigned char)*p) || *p == '-';
    }
    return name;
}

/* Why libmilter would refuse the milter_socket spec, or make of it what the operator did not
 * mean; NULL when it is one of its forms: unix:/PATH or local:/PATH (an absolute path that
 * fits a socket address), inet:PORT[@HOST] or inet6:PORT[@HOST] (PORT 1-65535 or a service
 * name, HOST an address of the family, in brackets or not, or a host name). A spec without
 * a type is a path to libmilter: "bogus" made ./bogus in the directory the sensor started in. */
static const char *s_milter_socket_why(const char *spec)
{
    const char *colon = strchr(spec, ':');
    if (!colon)
        return "is not a milter socket: unix:/PATH, local:/PATH, inet:PORT@HOST or "
               "inet6:PORT@HOST";
    size_t tlen = (size_t)(colon - spec);
    const char *rest = colon + 1;
    if ((tlen == 4 && !strncasecmp(spec, "unix", 4)) ||
        (tlen == 5 && !strncasecmp(spec, "local", 5))) {
        if (*rest != '/')
            return "needs an absolute path: unix:/PATH";
        if (strlen(rest) + 1 >= sizeof(((struct sockaddr_un *)0)->sun_path))
            return "is a path too long for a unix socket";
        return NULL;
    }
    int family;
    if (tlen == 4 && !strncasecmp(spec, "inet", 4))
        family = AF_INET;
    else if (tlen == 5 && !strncasecmp(spec, "inet6", 5))
        family = AF_INET6;
    else
        return "has a socket type libmilter does not know (unix:, local:, inet:, inet6:)";
    const char *at = strchr(rest, '@');
    size_t plen = at ? (size_t)(at - rest) : strlen(rest);
    char port[64];
    if (plen == 0 || plen >= sizeof(port))
        return "has no port: inet:PORT@HOST";
    memcpy(port, rest, plen);
    port[plen] = '\0';
    if (isdigit((unsigned char)port[0])) {
        char *end;
        long n = strtol(port, &end, 10);
        if (*end || n < 1 || n > 65535)
            return "has no port (1-65535): inet:PORT@HOST";
    } else if (!getservbyname(port, "tcp")) {
        return "names a port that is no number and no tcp service";
    }
    if (at && !s_milter_host_valid(at + 1, family))
        return family == AF_INET ? "has no IPv4 address or host name after '@'"
                                 : "has no IPv6 address or host name after '@'";
    return NULL;
}

/* State of the cross-field checks: every error is reported, each with the line its key is
 * on (cfg_line). */
typedef struct {
    const sensor_config_t *c; /* the configuration checked */
    const char *path;         /* its file, or NULL for the built-in defaults */
    char *err;                /* the caller's message buffer */
    size_t errlen;            /* its size */
    int nerrors;              /* errors reported */
} s_check_t;

/* Reports one error as "FILE:LINE: why" (the line key is set on) or "FILE: why", one per
 * line of err like cfg_load's. */
static void s_error(s_check_t *ck, const char *key, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static void s_error(s_check_t *ck, const char *key, const char *fmt, ...)
{
    char why[1024], at[1024];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(why, sizeof(why), fmt, ap);
    va_end(ap);
    const char *file = ck->path ? ck->path : "defaults";
    cfg_err_line(ck->err, ck->errlen,
                 key ? cfg_where(&ck->c->head, s_params, key, file, NULL, at, sizeof(at)) : file,
                 "%s", why);
    ck->nerrors++;
}

/* The milter follows an aggregator only with all three of its endpoints: without the decision
 * feed (or the snapshot endpoint) the uplink never goes live, so every bounce would meet
 * on_no_aggregator for ever. One error, on the line of the first one set, naming the
 * missing ones. */
static void s_check_uplink_set(s_check_t *ck)
{
    const sensor_config_t *c = ck->c;
    const char *const names[] = {"aggregator_events", "aggregator_decisions",
                                 "aggregator_snapshot"};
    const char *const values[] = {c->aggregator_events, c->aggregator_decisions,
                                  c->aggregator_snapshot};
    const char *first = NULL;
    char missing[128] = "";
    size_t nmissing = 0;
    for (size_t i = 0; i < 3; i++) {
        if (*values[i] && !first)
            first = names[i];
        else if (!*values[i])
            nmissing++;
    }
    if (!first || nmissing == 0)
        return;
    for (size_t i = 0, k = 0; i < 3; i++) {
        if (*values[i])
            continue;
        size_t n = strlen(missing);
        snprintf(missing + n, sizeof(missing) - n, "%s%s", k == 0 ? "" : " and ", names[i]);
        k++;
    }
    s_error(ck, first,
            "%s is set but %s %s not: a sensor follows an aggregator only with all three "
            "endpoints (events, decisions, snapshot); without them it never goes live and "
            "on_no_aggregator applies to every bounce",
            first, missing, nmissing > 1 ? "are" : "is");
}

/* Cross-field checks and the value rules the table cannot express; milter adds what only
 * the milter needs (s_check_uplink_set). Reports every error (see s_error); 0, or -1 when
 * there was one. */
static int s_check(sensor_config_t *c, const char *path, bool milter, char *err, size_t errlen)
{
    s_check_t ck = {.c = c, .path = path, .err = err, .errlen = errlen};
    if (errlen)
        err[0] = '\0';
    if (!c->site || !*c->site)
        s_error(&ck, NULL, "site is required");
    else if (!keytext_site_valid(c->site))
        s_error(&ck, "site",
                "site \"%s\" is not a site name the aggregator takes: 1 to %d bytes of "
                "A-Z a-z 0-9 . _ -",
                c->site, WIRE_MAX_ID);
    /* without an event endpoint the sensor runs standalone and would ignore the feed */
    const char *fed = *c->aggregator_decisions  ? "aggregator_decisions"
                      : *c->aggregator_snapshot ? "aggregator_snapshot"
                                                : NULL;
    /* what zmq_connect() would refuse at start, in the aggregator's words (zsock.h): once
     * at start that was one "Invalid argument" and silence */
    const char *const eps[][2] = {{"aggregator_events", c->aggregator_events},
                                  {"aggregator_decisions", c->aggregator_decisions},
                                  {"aggregator_snapshot", c->aggregator_snapshot},
                                  {"aggregator_backup_events", c->aggregator_backup_events},
                                  {"aggregator_backup_decisions", c->aggregator_backup_decisions},
                                  {"aggregator_backup_snapshot", c->aggregator_backup_snapshot}};
    for (size_t i = 0; i < sizeof(eps) / sizeof(eps[0]); i++) {
        char bad[128];
        if (*eps[i][1] && zsock_endpoint_check(eps[i][1], 0, bad, sizeof(bad)) < 0)
            s_error(&ck, eps[i][0], "%s %.256s %s", eps[i][0], eps[i][1], bad);
    }
    if (milter)
        s_check_uplink_set(&ck);
    else if (fed && !*c->aggregator_events)
        s_error(&ck, fed,
                "%s without aggregator_events: a sensor without an event endpoint runs "
                "standalone and would ignore it; set aggregator_events or remove %s",
                fed, fed);
    if (!milter && *c->aggregator_decisions && !*c->aggregator_snapshot)
        s_error(&ck, "aggregator_decisions", "aggregator_decisions needs aggregator_snapshot");
    const char *first_backup = *c->aggregator_backup_events      ? "aggregator_backup_events"
                               : *c->aggregator_backup_decisions ? "aggregator_backup_decisions"
                               : *c->aggregator_backup_snapshot  ? "aggregator_backup_snapshot"
                                                                 : NULL;
    if (first_backup && (!*c->aggregator_backup_events || !*c->aggregator_backup_decisions ||
                         !*c->aggregator_backup_snapshot || !*c->aggregator_decisions))
        s_error(&ck, first_backup,
                "a backup aggregator needs aggregator_backup_events, _decisions and "
                "_snapshot, and a primary with a decision feed");
    static const char *const keys[] = {"aggregator_public_key", "aggregator_backup_public_key",
                                       NULL};
    for (size_t i = 0; keys[i]; i++) {
        const char *v = i == 0 ? c->aggregator_public_key : c->aggregator_backup_public_key;
        if (*v && !zsock_key_valid(v))
            s_error(&ck, keys[i], "%s is not a 40-character Z85 CURVE public key", keys[i]);
        else if (*v && *c->aggregator_events && !*c->sensor_secret_key_file)
            s_error(&ck, keys[i], "%s needs sensor_secret_key_file", keys[i]);
    }
    const char *why = s_milter_socket_why(c->milter_socket);
    if (why)
        s_error(&ck, "milter_socket", "milter_socket %s %s", c->milter_socket, why);
    const char *u = c->milter_umask;
    if (!*u || strspn(u, "01234567") != strlen(u) || strlen(u) > 4)
        s_error(&ck, "milter_umask", "milter_umask '%s' is not an octal mode", u);
    for (size_t i = 0; i < c->enforce_classes.n; i++) {
        const char *w = c->enforce_classes.v[i];
        if (strcasecmp(w, "bounce") && strcasecmp(w, "autoreply") && strcasecmp(w, "mdn") &&
            strcasecmp(w, "arf") && strcasecmp(w, "normal"))
            s_error(&ck, "enforce_classes", "enforce_classes: unknown class '%s'", w);
    }
    /* the engine parses them again at start; here they get a FILE:LINE */
    for (size_t i = 0; i < c->internal_networks.n; i++) {
        netaddr_cidr_t net;
        const char *w = c->internal_networks.v[i];
        if (netaddr_cidr_parse(&net, w) != 0)
            s_error(&ck, "internal_networks", "internal_networks: bad network '%s'%s", w,
                    *w == '#' ? " ('#' after a value starts no comment)" : "");
    }
    bool from_host = !*c->sensor_id;
    if (from_host) {
        char host[256];
        if (gethostname(host, sizeof(host)) != 0)
            snprintf(host, sizeof(host), "sensor");
        host[sizeof(host) - 1] = '\0';
        xfree(c->sensor_id);
        c->sensor_id = xstrdup(host);
    }
    if (!s_sensor_id_valid(c->sensor_id))
        s_error(&ck, from_host ? NULL : "sensor_id",
                "%s \"%s\" is not a sensor name the aggregator takes: 1 to %d bytes of "
                "printable ASCII without blanks%s",
                from_host ? "the host name" : "sensor_id", c->sensor_id, WIRE_MAX_ID,
                from_host ? "; set sensor_id" : "");
    return ck.nerrors ? -1 : 0;
}

/* Loads path (NULL: defaults) and checks it (s_check); NULL when the file does not parse,
 * else the config with *ok saying whether the checks passed (errors in err). */
static sensor_config_t *s_load(const char *path, bool milter, bool *ok, char *err, size_t errlen)
{
    sensor_config_t *c = xcalloc(1, sizeof(*c));
    *ok = false;
    int rc =
        path ? cfg_load(&s_schema, path, c, err, errlen) : cfg_defaults(&s_schema, c, err, errlen);
    if (rc != 0) {
        if (strstr(err, "heartbeat_timeout") && strstr(err, "out of bounds"))
            s_append(err, errlen,
                     "; the aggregator heartbeats every 1s (heartbeat_interval), so a "
                     "silence that short is no sign of a dead feed");
        sensor_config_destroy(&c);
        return NULL;
    }
    *ok = s_check(c, path, milter, err, errlen) == 0;
    return c;
}

sensor_config_t *sensor_config_load(const char *path, char *err, size_t errlen)
{
    bool ok;
    sensor_config_t *c = s_load(path, false, &ok, err, errlen);
    if (!ok)
        sensor_config_destroy(&c);
    return c;
}

sensor_config_t *sensor_config_load_milter(const char *path, bool *ok, char *err, size_t errlen)
{
    return s_load(path, true, ok, err, errlen);
}

void sensor_config_destroy(sensor_config_t **self_p)
{
    if (!self_p || !*self_p)
        return;
    cfg_free(&s_schema, *self_p);
    xfree(*self_p);
    *self_p = NULL;
}

/* Settings a running sensor cannot change: its identity, sockets, state, user and the uplink
 * thread's endpoints, keys and timers (the thread reads the configuration it started with). */
static const char *const s_restart_only[] = {"site",
                                             "sensor_id",
                                             "milter_socket",
                                             "milter_umask",
                                             "milter_timeout",
                                             "state_directory",
                                             "user",
                                             "pid_file",
                                             "event_queue",
                                             "ledger_ttl",
                                             "aggregator_events",
                                             "aggregator_decisions",
                                             "aggregator_snapshot",
                                             "aggregator_public_key",
                                             "sensor_secret_key_file",
                                             "aggregator_backup_events",
                                             "aggregator_backup_decisions",
                                             "aggregator_backup_snapshot",
                                             "aggregator_backup_public_key",
                                             "heartbeat_timeout",
                                             "event_batch",
                                             "event_flush",
                                             "spool_limit",
                                             "status_interval",
                                             NULL};

int sensor_config_keep_restart(sensor_config_t *fresh, const sensor_config_t *running,
                               char *changed, size_t changed_len)
{
    return cfg_keep(s_params, s_restart_only, fresh, running, changed, changed_len);
}

bool sensor_config_enforces_class(const sensor_config_t *self, const char *class_name)
{
    for (size_t i = 0; i < self->enforce_classes.n; i++)
        if (!strcasecmp(self->enforce_classes.v[i], class_name))
            return true;
    return false;
}
