/*
 * NAME
 *   backstop-aggregator - fleet-wide backscatter counting and block decisions
 *
 * SYNOPSIS
 *   backstop-aggregator -c FILE [-f] [-n] [-v]
 *   backstop-aggregator --genkey FILE
 *   backstop-aggregator --help | --version
 *
 * DESCRIPTION
 *   The central half of Backstop. It receives bounce events from the sensors
 *   of every site (ZeroMQ PULL), counts them per key in sliding windows,
 *   evaluates the rules of its configuration, and turns waves into block
 *   decisions that it stores in LevelDB and then publishes to every sensor
 *   (PUB, topics F, S/<site>/ and H; snapshots and changes-since on a
 *   ROUTER). The local CLI `backstop` talks to it over an ipc:// control
 *   socket. See proto/PROTOCOL.md for the wire contract.
 *
 *   -c FILE  configuration file (aggregator.conf); required
 *   -f       stay in the foreground, log to stderr (systemd, tests)
 *   -n       check the configuration and exit: 0 valid, 78 invalid; besides
 *            the file itself, every start-time check that needs no root, no
 *            socket and no write (server_check_config: the CURVE key file,
 *            plain mode's loopback rule, control_group, user)
 *   -v       more logging (repeat for more)
 *
 *   Started as root with "user = NAME" in FILE, it binds its sockets and
 *   opens data_dir, hands data_dir and the control socket file to NAME, then
 *   becomes NAME (setgid, initgroups, setuid) before reading any input.
 *   --genkey FILE  write a new CURVE key pair for server_key_file to FILE
 *            (mode 0600, refuses to overwrite) and print its public key, which
 *            every sensor needs as aggregator_public_key. The file belongs to
 *            the caller and the daemon reads only its own (group-readable is
 *            refused): run as root, it says on stderr to chown it to the
 *            daemon's user (backstop in the systemd unit)
 *
 *   Without -f it detaches (fork, setsid, stdio to /dev/null) and logs to
 *   syslog (LOG_MAIL), as Postfix daemons do; the command returns once the
 *   daemon has bound its endpoints, opened its store and dropped
 *   privileges, with the daemon's start-up status as its exit status.
 *
 * SIGNALS
 *   SIGTERM, SIGINT  store pending counters and leave (exit 0)
 *   SIGHUP           re-read FILE and swap the configuration whole; rules take
 *                    effect at once; the keys agg_config_restart_keys() lists
 *                    (endpoints, data_dir, user, keys, peer, ...) keep their
 *                    running values until the next start, logged as
 *                    "reload: needs restart: KEYS"
 *
 * CONFIGURATION PARAMETERS
 *   See aggregator/agg_config.c: endpoints (event_endpoint,
 *   decision_endpoint, snapshot_endpoint, control_endpoint), data_dir,
 *   server_key_file (CURVE; empty: plain mode, loopback only),
 *   window_resolution, max_future_skew, heartbeat_interval, flush_interval,
 *   sweep_interval, sweep_budget, max_keys, change_log, extend_min, and one
 *   "[rule NAME]" section per rule. `backstop-aggregator --help` lists them
 *   with their defaults.
 *
 * PERSISTENCE
 *   Decisions, the sequence log and the epoch are written to LevelDB before a
 *   decision is published; allowlists and sites when they change. Window
 *   counters are written behind once per flush_interval (1 s): a crash
 *   (kill -9, power loss) loses at most about one second of counts, nothing
 *   else. A restart restores all of it; the epoch changes only when the
 *   sequence log is lost.
 *
 * DIAGNOSTICS
 *   Exit 78 (EX_CONFIG) for a bad configuration, with FILE:LINE; 69
 *   (EX_UNAVAILABLE) when an endpoint cannot be bound or the store cannot be
 *   opened; 73 (EX_CANTCREAT) when data_dir cannot be created; 64 for a usage
 *   error. Bad input on a socket never ends the daemon: it is dropped, counted
 *   (backstop status) and logged at most once a minute per reason.
 */
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "agg_config.h"
#include "daemon.h"
#include "msg.h"
#include "privs.h"
#include "server.h"
#include "xalloc.h"
#include "zsock.h"

static const char s_usage[] =
    "Usage: backstop-aggregator -c FILE [-f] [-n] [-v]\n"
    "\n"
    "The Backstop aggregator: counts bounce events from every site, turns\n"
    "waves into block decisions and publishes them to every sensor.\n"
    "\n"
    "  -c FILE   configuration file (required)\n"
    "  -f        run in the foreground, log to stderr\n"
    "  -n        check the configuration and exit (0 valid, 78 invalid)\n"
    "  -v        more logging\n"
    "  --genkey FILE  write a new CURVE key pair (server_key_file) and print its public key;\n"
    "            the file is mode 0600 and yours: chown it to the daemon's user before use\n"
    "            (chown backstop:backstop FILE for the systemd unit)\n";
/* --help only: the parameter table follows it */
static const char s_params_head[] = "\nConfiguration parameters and their defaults:\n";

/* The one server, for the signal handlers (they only set its flags). */
static server_t *s_server;

static void s_on_term(int sig)
{
    (void)sig;
    if (s_server)
        server_request_stop(s_server);
}

static void s_on_hup(int sig)
{
    (void)sig;
    if (s_server)
        server_request_reload(s_server);
}

/* The file of an ipc:// endpoint (caller frees), or NULL for other transports. */
static char *s_ipc_path(const char *endpoint)
{
    return strncmp(endpoint, "ipc://", 6) ? NULL : xstrdup(endpoint + 6);
}

int main(int argc, char **argv)
{
    const char *path = NULL;
    int foreground = 0, check = 0;
    msg_open("backstop-aggregator", MSG_TO_STDERR);
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--help") || !strcmp(argv[i], "-h")) {
            fputs(s_usage, stdout);
            fputs(s_params_head, stdout);
            cfg_print_help(agg_config_schema(), stdout);
            return 0;
        }
        if (!strcmp(argv[i], "--genkey")) {
            zsock_keys_t keys;
            if (i + 1 >= argc || argc != 3) {
                fputs(s_usage, stderr);
                return EX_USAGE;
            }
            if (!zsock_has_curve())
                msg_fatal(EX_UNAVAILABLE, "this libzmq has no CURVE support");
            if (zsock_keys_generate(&keys) < 0)
                msg_fatal(EX_CANTCREAT, "cannot make a key pair");
            if (zsock_keys_save(argv[i + 1], &keys, 1) < 0)
                msg_fatal(EX_CANTCREAT, "cannot write the key pair to %s: %s", argv[i + 1],
                          errno == EEXIST ? "it exists already (--genkey never overwrites a key)"
                                          : strerror(errno));
            printf("%s\n", keys.public_key);
            if (geteuid() == 0)
                fprintf(stderr,
                        "backstop-aggregator: %s belongs to root: chown it to the daemon's user "
                        "(backstop) before use: chown backstop:backstop %s\n",
                        argv[i + 1], argv[i + 1]);
            return 0;
        }
        if (!strcmp(argv[i], "--version")) {
            printf("backstop-aggregator %s\n", BACKSTOP_VERSION);
            return 0;
        }
    }
    int opt;
    while ((opt = getopt(argc, argv, "c:fnv")) != -1) {
        switch (opt) {
        case 'c':
            path = optarg;
            break;
        case 'f':
            foreground = 1;
            break;
        case 'n':
            check = 1;
            break;
        case 'v':
            msg_verbose++;
            break;
        default:
            fputs(s_usage, stderr);
            return EX_USAGE;
        }
    }
    if (!path || optind != argc) {
        fputs(s_usage, stderr);
        return EX_USAGE;
    }
    char err[4096];
    agg_config_t *cfg = agg_config_load(path, err, sizeof(err));
    if (!cfg)
        msg_fatal(EX_CONFIG, "%s", err);
    /* what the start would refuse once the file parsed (key file, loopback, group, user):
     * with -n, and before detaching, so the operator sees it on stderr */
    int bad = server_check_config(cfg, err, sizeof(err));
    if (bad != EX_OK)
        msg_fatal(check ? EX_CONFIG : bad, "%s", err);
    if (check) {
        /* the rules by name: a file with one [rule] section has replaced all four shipped
         * rules, which an operator adding "one more rule" would not expect */
        char names[1024] = "";
        size_t at = 0;
        for (size_t i = 0; i < cfg->nrules && at < sizeof(names); i++)
            at += (size_t)snprintf(names + at, sizeof(names) - at, "%s%s", i ? "," : "",
                                   cfg->rules[i].name);
        if (cfg->nrule_sections)
            msg_info("%s: configuration valid: rules=%zu names=%s; its [rule] sections replace "
                     "the shipped rules",
                     path, cfg->nrules, names);
        else
            msg_info("%s: configuration valid: rules=%zu names=%s (the shipped rules)", path,
                     cfg->nrules, names);
        agg_config_destroy(&cfg);
        return 0;
    }
    char *abs = realpath(path, NULL);
    /* before the ZeroMQ context exists: forking is safe */
    int ready_fd = -1;
    if (!foreground) {
        bool parent;
        int rc = daemon_detach("backstop-aggregator", &parent, &ready_fd);
        if (parent || rc != EX_OK) {
            agg_config_destroy(&cfg);
            free(abs);
            return rc;
        }
    }

    struct sigaction sa;
    memset(&sa, 0, sizeof(sa));
    sigemptyset(&sa.sa_mask);
    sa.sa_handler = s_on_term;
    sigaction(SIGTERM, &sa, NULL);
    sigaction(SIGINT, &sa, NULL);
    sa.sa_handler = s_on_hup;
    sigaction(SIGHUP, &sa, NULL);
    sa.sa_handler = SIG_IGN;
    sigaction(SIGPIPE, &sa, NULL);

    /* pre-init as root: bind, open the store; then drop before any input is read */
    char *user = xstrdup(cfg->user);
    char *data_dir = xstrdup(cfg->data_dir);
    char *ctl_path = s_ipc_path(cfg->control_endpoint);
    s_server = server_new(&cfg, abs ? abs : path, NULL);
    const char *const trees[] = {data_dir, ctl_path, NULL};
    int rc = privs_drop("backstop-aggregator", user, trees);
    daemon_ready(&ready_fd, rc); /* bound, store open, privileges dropped: the parent may go */
    if (rc == EX_OK)
        rc = server_run(s_server);
    xfree(user);
    xfree(data_dir);
    xfree(ctl_path);
    server_t *srv = s_server;
    s_server = NULL;
    server_destroy(&srv);
    free(abs);
    return rc;
}
