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
 *   SIGTERM, SIGINT  store pending counters and leave (exit 0); one that comes
 *                    while the start restores the store stops it as soon as
 *                    the start is over, the same way
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
 *   (EX_UNAVAILABLE) when an endpoint cannot be bound (an ipc:// socket file a
 *   running process listens on included) or the store cannot be opened; 73
 *   (EX_CANTCREAT) when data_dir cannot be created; 64 for a usage error; the
 *   whole list is in --help (s_help_tail) and man backstop-aggregator, which
 *   say the same. Bad input on a socket never ends the daemon: it is dropped,
 *   counted (backstop status) and logged at most once a minute per reason.
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
#include "sigfd.h"
#include "xalloc.h"
#include "zsock.h"

static const char s_usage[] =
    "usage: backstop-aggregator -c FILE [-f] [-n] [-v]\n"
    "       backstop-aggregator --genkey FILE\n"
    "       backstop-aggregator --help | --version\n"
    "(backstop-aggregator --help: the manual and every configuration parameter)\n";

/* --help: the manual, in the sections of backstop --help and man backstop-aggregator;
 * the restart-only keys (SIGHUP) and the parameter table are printed between and after */
static const char s_help_head[] =
    "NAME\n"
    "    backstop-aggregator - fleet-wide backscatter counting and block decisions\n"
    "\n"
    "SYNOPSIS\n"
    "    backstop-aggregator -c FILE [-f] [-n] [-v]\n"
    "    backstop-aggregator --genkey FILE\n"
    "    backstop-aggregator --help | --version\n"
    "\n"
    "DESCRIPTION\n"
    "    The central half of Backstop. It receives bounce events from the sensors of\n"
    "    every site (event_endpoint, a ZeroMQ PULL socket), counts them per key\n"
    "    (subject, quoted subject, client address or network) in sliding windows and\n"
    "    evaluates the rules of its configuration. A wave that crosses a rule's\n"
    "    thresholds becomes a block decision, written to its LevelDB store (data_dir)\n"
    "    and then published to every sensor (decision_endpoint, with heartbeats);\n"
    "    sensors that start or fall behind catch up from a snapshot or the changes\n"
    "    since a sequence number (snapshot_endpoint). The operators' CLI, backstop(1),\n"
    "    talks to it over a local ipc:// control socket (control_endpoint); a socket\n"
    "    file another running process listens on is refused, not taken over.\n"
    "\n"
    "    With server_key_file set (a key pair made with --genkey) every sensor must\n"
    "    present the CurveZMQ key of a registered site (backstop sites add); without\n"
    "    it the aggregator runs in plain mode and binds loopback only. With\n"
    "    peer_decisions and peer_snapshot it mirrors the decisions, allowlist and\n"
    "    sites of a second aggregator, its failover partner.\n"
    "\n"
    "    Decisions, the sequence log and the epoch are written before a decision is\n"
    "    published; window counters are written behind every flush_interval, so a\n"
    "    crash loses at most about that much counting and a restart restores the\n"
    "    rest. Bad input on a socket never ends the daemon: it is dropped, counted\n"
    "    (backstop status) and logged at most once a minute per reason.\n"
    "\n"
    "    Started as root with \"user = NAME\" in FILE, it binds its endpoints and opens\n"
    "    data_dir as root, hands data_dir and the control socket file to NAME, then\n"
    "    becomes NAME (setgid, initgroups, setuid) before it reads any input. Without\n"
    "    -f it detaches and logs to syslog (facility mail); the command returns once\n"
    "    the daemon is ready, with its start-up status as the exit status.\n"
    "\n"
    "OPTIONS\n"
    "    -c FILE\n"
    "        The configuration file, backstop-aggregator.conf(5); required.\n"
    "    -f\n"
    "        Stay in the foreground and log to standard error (systemd, tests).\n"
    "    -n\n"
    "        Check the configuration and exit: 0 when it is valid, 78 with every\n"
    "        error as FILE:LINE when it is not. Besides the file itself it makes\n"
    "        every check of the start that needs no root, no socket and no write:\n"
    "        the server_key_file holds a key pair, plain mode binds loopback only,\n"
    "        control_group and user exist, and no two endpoints take one address.\n"
    "    -v\n"
    "        More logging; repeat for more.\n"
    "    --genkey FILE\n"
    "        Write a new CurveZMQ key pair for server_key_file to FILE (mode 0600;\n"
    "        an existing file is never overwritten), print its public key, which\n"
    "        every sensor needs as aggregator_public_key, and exit. The file is\n"
    "        yours: chown it to the daemon's user before use\n"
    "        (chown backstop:backstop FILE for the systemd unit); the daemon refuses\n"
    "        a secret key its group or others can read.\n"
    "    -h, --help\n"
    "        Print this manual and every configuration parameter with its default.\n"
    "    --version\n"
    "        Print the version.\n"
    "\n"
    "SIGNALS\n"
    "    SIGTERM, SIGINT\n"
    "        Write the pending window counters and exit 0. One that comes during the\n"
    "        start (a large store takes seconds to restore) stops the daemon the same\n"
    "        way as soon as the start is over.\n"
    "    SIGHUP\n"
    "        Read FILE again and, when it is valid, swap it whole: rules and the\n"
    "        other keys take effect at once; these keep their running values until\n"
    "        the next start (logged as \"reload: needs restart: KEYS\"):\n";

static const char s_help_tail[] =
    "        An invalid file is logged and the running configuration kept.\n"
    "\n"
    "EXIT STATUS\n"
    "    0   stopped by SIGTERM or SIGINT; -n found the configuration valid; --genkey\n"
    "        wrote the key pair\n"
    "    64  EX_USAGE: bad command line\n"
    "    67  EX_NOUSER: the user the configuration names does not exist\n"
    "    69  EX_UNAVAILABLE: an endpoint cannot be bound (in use, or an ipc:// socket\n"
    "        file a running process listens on), the store cannot be opened or read\n"
    "        (another aggregator uses it?), or libzmq has no CURVE support\n"
    "    70  EX_SOFTWARE: the detached daemon ended before it was ready, with no\n"
    "        status (see the mail log)\n"
    "    71  EX_OSERR: cannot detach, cannot become the user, cannot take its signals\n"
    "        (signalfd), or out of memory for the window\n"
    "    73  EX_CANTCREAT: data_dir cannot be created; --genkey cannot write FILE\n"
    "    78  EX_CONFIG: the configuration is invalid (FILE:LINE errors)\n"
    "\n"
    "FILES\n"
    "    /etc/backstop/aggregator.conf    configuration, backstop-aggregator.conf(5)\n"
    "    /var/lib/backstop-aggregator     default data_dir: decisions, the sequence\n"
    "                                     log, sites, allowlist; window counters in\n"
    "                                     its subdirectory windows (LevelDB)\n"
    "    /run/backstop/aggregator.sock    default control socket, for backstop(1)\n"
    "\n"
    "SEE ALSO\n"
    "    backstop(1), backstop-aggregator.conf(5), backstop-sensor(8),\n"
    "    backstop-sensor.conf(5), zmq_curve(7), proto/PROTOCOL.md (the wire and\n"
    "    control protocols)\n";

/* --help only: the parameter table follows it */
static const char s_params_head[] = "\nConfiguration parameters and their defaults:\n";

/* Prints the manual (--help). */
static void s_help(FILE *fp)
{
    fputs(s_help_head, fp);
    const char *const *keys = agg_config_restart_keys();
    size_t col = 0;
    for (size_t i = 0; keys[i]; i++) {
        size_t n = strlen(keys[i]) + (keys[i + 1] ? 1 : 0);
        if (col == 0 || col + 1 + n > 80) {
            fputs(col ? "\n        " : "        ", fp);
            col = 8;
        } else {
            fputc(' ', fp);
            col++;
        }
        fprintf(fp, "%s%s", keys[i], keys[i + 1] ? "," : "");
        col += n;
    }
    fputc('\n', fp);
    fputs(s_help_tail, fp);
    fputs(s_params_head, fp);
    cfg_print_help(agg_config_schema(), fp);
}

/* The signals the loop takes from its signalfd (server_watch_signals); blocked in every thread. */
static const int s_loop_signals[] = {SIGTERM, SIGINT, SIGHUP, 0};

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
            s_help(stdout);
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
    sa.sa_handler = SIG_IGN;
    sigaction(SIGPIPE, &sa, NULL);
    /* TERM, INT and HUP blocked from here on, in this thread and so in every thread started
     * later (the ZeroMQ context's, the store writer's and LevelDB's all start in server_new()),
     * and read by the loop from a signalfd on its own thread: no handler runs anywhere, and a
     * TERM that comes while server_new() restores a large store stays pending and stops the
     * daemon at the loop's first turn (it was lost while no server existed to tell) */
    int sig_fd = sigfd_open(s_loop_signals);
    if (sig_fd < 0)
        msg_fatal(EX_OSERR, "cannot take signals: signalfd: %s", strerror(errno));

    /* pre-init as root: bind, open the store; then drop before any input is read */
    char *user = xstrdup(cfg->user);
    char *data_dir = xstrdup(cfg->data_dir);
    char *ctl_path = s_ipc_path(cfg->control_endpoint);
    server_t *srv = server_new(&cfg, abs ? abs : path, NULL);
    server_watch_signals(srv, sig_fd);
    const char *const trees[] = {data_dir, ctl_path, NULL};
    int rc = privs_drop("backstop-aggregator", user, trees);
    daemon_ready(&ready_fd, rc); /* bound, store open, privileges dropped: the parent may go */
    if (rc == EX_OK)
        rc = server_run(srv);
    xfree(user);
    xfree(data_dir);
    xfree(ctl_path);
    server_destroy(&srv);
    sigfd_close(&sig_fd);
    free(abs);
    return rc;
}
