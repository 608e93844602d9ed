/*
 * NAME
 *   backstop-sensor milter - the Backstop sensor as a libmilter filter
 *
 * SYNOPSIS
 *   backstop-sensor milter -c FILE [-f] [-n] [-v]
 *
 * DESCRIPTION
 *   Serves Postfix (smtpd_milters, non_smtpd_milters) or Sendmail
 *   (INPUT_MAIL_FILTER) on the socket named by milter_socket. Every message
 *   is classified; bounce-class mail is checked against the decision cache
 *   (550 5.7.1 / 451 4.7.1 naming the decision, or an X-Backstop header),
 *   feeds the per-site rule and is reported to the aggregator. Outbound mail
 *   feeds the ledger of legitimate bounces. Any failure lets mail through
 *   (on_internal_error, on_overload, on_no_aggregator).
 *
 *   -c FILE  configuration file (sensor_config.c lists every parameter)
 *   -f       stay in the foreground and log to stderr (default: daemon, syslog)
 *   -n       check the configuration and exit: load it, look up user, see
 *            that state_directory is there or can be made, then read what the
 *            start reads after the privilege drop (local_rule_file,
 *            decision_file, sensor_secret_key_file), as the calling user,
 *            opening no socket and no state; every error found, each on the
 *            line of its key; 0 valid, 78 invalid
 *   -v       more logging (repeat for more)
 *
 *   Start-up, Postfix style: load the configuration (refused, 78, as -n
 *   refuses it: the file's checks and an unknown user) and open the milter
 *   socket (pre-init, as root when started as root); without -f become a
 *   daemon (the parent exits with the child's start-up status once it is
 *   ready) and write pid_file; create state_directory and, when user is set
 *   and we are root, hand it to that user and drop to it (setgid,
 *   initgroups, setuid); only then open the state and read the files the
 *   configuration names (post-init), start the uplink thread and serve.
 *
 * SIGNALS
 *   SIGHUP reloads the configuration (milter_engine_reload): a broken file
 *   is logged and the running configuration kept. SIGTERM and SIGINT stop
 *   the milter cleanly. libmilter's own signal thread would stop the milter
 *   on SIGHUP too, so the main thread takes all three with handlers and never
 *   blocks them, while every other thread does: Linux hands a process-directed
 *   signal to the main thread whenever that thread does not block it, so
 *   libmilter's sigwait() never sees one. Should libmilter stop on its own
 *   anyway, the exit status is 70, so a supervisor restarts the sensor.
 *   On a stop, libmilter's worker threads are not joined: callbacks still
 *   running get up to 5 s to return (milter_drain) and later ones answer
 *   without the engine (fail open). Should one still run after that, the
 *   sensor logs it and exits without freeing the state it may use.
 *
 * DIAGNOSTICS
 *   Exit status 0 after a clean stop (SIGTERM, SIGINT), 64 usage error,
 *   78 configuration error (an unknown user included, as -n says), 69 when
 *   the socket or the state cannot be opened (not for a full disk: the decision
 *   cache and ledger are then kept in memory), 70 internal error, 71 when fork
 *   or the privilege drop fails, 73 when state_directory or pid_file cannot
 *   be made.
 */
#include "sensor_cmds.h"

#include "daemon.h"
#include "milter.h"
#include "milter_engine.h"
#include "msg.h"
#include "privs.h"
#include "sensor_config.h"
#include "uplink.h"
#include "xalloc.h"
#include "zsock.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <poll.h>
#include <pthread.h>
#include <pwd.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

static const char s_usage[] = "usage: backstop-sensor milter -c FILE [-f] [-n] [-v]\n"
                              "       backstop-sensor milter --help\n";

/* --help: a man page in plain text (backstop --help's layout); the man page's milter part
 * is its DESCRIPTION and OPTIONS (backstop-genman) */
static const char s_help[] =
    "NAME\n"
    "    backstop-sensor milter - the sensor in a Postfix or Sendmail mail stream\n"
    "\n"
    "SYNOPSIS\n"
    "    backstop-sensor milter -c FILE [-f] [-n] [-v]\n"
    "    backstop-sensor milter --help\n"
    "\n"
    "DESCRIPTION\n"
    "    Serves Postfix (smtpd_milters, non_smtpd_milters) or Sendmail\n"
    "    (INPUT_MAIL_FILTER) on the socket milter_socket names. Every message is\n"
    "    classified. Mail of the classes enforce_classes names (bounces) is checked\n"
    "    against the decisions in force: a match is refused with 550 5.7.1 or\n"
    "    451 4.7.1 naming the decision, or tagged with an X-Backstop header. That\n"
    "    mail also feeds the per-site rule (local_rule) and is reported to the\n"
    "    aggregator. Outbound mail (outbound_auth, internal_networks,\n"
    "    outbound_daemons) feeds a ledger, so that the bounces of mail the site\n"
    "    really sent are never counted or blocked. Each message gets one log line,\n"
    "    queue id first; its action= is what the MTA was told.\n"
    "\n"
    "    Whatever fails, mail flows: on_internal_error, on_overload and\n"
    "    on_no_aggregator say whether such a message is accepted (the default) or\n"
    "    told 451 4.7.1. While the aggregator is away, events wait in a spool on\n"
    "    disk (spool_limit) and the decisions held stay in force until they expire.\n"
    "\n"
    "    The start checks the configuration as -n does and refuses what -n refuses in\n"
    "    the file, then opens the milter socket (as root when started as root).\n"
    "    Without -f it detaches, and the command returns with the daemon's start-up\n"
    "    status. It writes pid_file, creates state_directory and, started as root with\n"
    "    user set, hands that directory to the user and becomes it, before it opens\n"
    "    its state and reads the files the configuration names.\n"
    "\n"
    "OPTIONS\n"
    "    -c FILE\n"
    "        The configuration file (backstop-sensor.conf(5)); required.\n"
    "    -f\n"
    "        Stay in the foreground and log to standard error (systemd, tests).\n"
    "        Without it the sensor detaches and logs to syslog (facility mail).\n"
    "    -n\n"
    "        Check the configuration and exit: 0 when it is valid, 78 with every\n"
    "        error as FILE:LINE when it is not. Besides the file itself: that user\n"
    "        exists, that state_directory is there or can be made, and that\n"
    "        local_rule_file, decision_file and sensor_secret_key_file can be read,\n"
    "        as the calling user. It opens no socket and no state.\n"
    "    -v\n"
    "        More logging; repeat for more.\n"
    "    --help\n"
    "        Print this text, then every configuration parameter with its default,\n"
    "        and exit.\n"
    "\n"
    "SIGNALS\n"
    "    SIGHUP\n"
    "        Read the configuration again. The decision file, the local rule file\n"
    "        and limits, reply_text and the on_* policies take effect from the next\n"
    "        message; settings that need a restart keep their running values and are\n"
    "        logged as reload: needs restart. A broken file changes nothing.\n"
    "    SIGTERM, SIGINT\n"
    "        Stop, and exit 0.\n"
    "\n"
    "EXIT STATUS\n"
    "    0   a clean stop; -n: the configuration is valid\n"
    "    64  usage error\n"
    "    69  the milter socket, the state or a file it names (local_rule_file,\n"
    "        decision_file), or the uplink, cannot be set up\n"
    "    70  libmilter failed, or stopped on its own (a supervisor restarts it)\n"
    "    71  cannot detach, start a thread, or become user\n"
    "    73  state_directory cannot be made or written, or pid_file written\n"
    "    78  the configuration is invalid: -n, and the start for what -n finds in\n"
    "        the file (a user that does not exist too)\n"
    "\n"
    "FILES\n"
    "    /etc/backstop/sensor.conf\n"
    "        The configuration the installer and the systemd unit use (-c).\n"
    "    /var/lib/backstop\n"
    "        The default state_directory: decision cache, outbound ledger, event\n"
    "        spool.\n"
    "    /run/backstop/sensor.sock\n"
    "        The default milter_socket.\n"
    "\n"
    "SEE ALSO\n"
    "    backstop-sensor(8), backstop-sensor.conf(5), backstop-aggregator(8),\n"
    "    Postfix MILTER_README\n";
/* --help only: the parameter table follows it */
static const char s_params_head[] = "\nParameters (key = default):\n";

/* How long a stop waits for running milter callbacks before leaving without freeing the state
 * they use (systemd's TimeoutStopSec is 15 s; libmilter itself takes up to ~5 s to stop). */
static const int64_t s_drain_ms = 5000;

static int s_sig_fd = -1; /* write end of the self-pipe the signal handler writes to */

/* Signal handler (main thread only): one byte naming the signal into the self-pipe. */
static void s_on_signal(int sig)
{
    int saved = errno;
    unsigned char c = (unsigned char)sig;
    ssize_t ignored = write(s_sig_fd, &c, 1);
    (void)ignored;
    errno = saved;
}

/* The milter thread's arguments and result. */
typedef struct {
    milter_engine_t *engine; /* borrowed */
    int done_fd;             /* where to write a 0 byte when smfi_main returns */
    int rc;                  /* milter_run's status */
} s_milter_thread_t;

static void *s_milter_thread(void *arg)
{
    s_milter_thread_t *t = arg;
    t->rc = milter_run(t->engine);
    unsigned char zero = 0;
    ssize_t ignored = write(t->done_fd, &zero, 1);
    (void)ignored;
    return NULL;
}

static int s_write_pid_file(const char *path)
{
    FILE *fp = fopen(path, "w");
    if (!fp || fprintf(fp, "%ld\n", (long)getpid()) < 0 || fclose(fp) != 0) {
        msg_error("milter: cannot write pid_file %s: %s", path, strerror(errno));
        if (fp)
            fclose(fp);
        return EX_CANTCREAT;
    }
    return EX_OK;
}

/* SIGHUP: loads path again and hands it to the engine; a broken file changes nothing. */
static void s_reload(milter_engine_t *engine, const char *path)
{
    char err[4096];
    sensor_config_t *fresh = sensor_config_load(path, err, sizeof(err));
    if (!fresh || milter_engine_reload(engine, &fresh, err, sizeof(err)) != 0) {
        /* cfg errors may span lines: log the first, it names FILE:LINE */
        err[strcspn(err, "\n")] = '\0';
        msg_error("reload: %s; keeping the running configuration", err);
        return;
    }
    msg_info("reload: configuration %s loaded", path);
}

/* Serves until a stop signal or libmilter ends; returns the exit status. */
static int s_serve(milter_engine_t *engine, const char *path, int *ready_fd)
{
    int p[2];
    if (pipe(p) != 0) {
        msg_error("milter: pipe: %s", strerror(errno));
        return EX_OSERR;
    }
    fcntl(p[0], F_SETFD, FD_CLOEXEC);
    fcntl(p[1], F_SETFD, FD_CLOEXEC);
    fcntl(p[1], F_SETFL, O_NONBLOCK);
    s_sig_fd = p[1];
    s_milter_thread_t t = {.engine = engine, .done_fd = p[1], .rc = EX_SOFTWARE};
    pthread_t tid;
    if (pthread_create(&tid, NULL, s_milter_thread, &t) != 0) {
        msg_error("milter: cannot start the milter thread");
        close(p[0]);
        close(p[1]);
        return EX_OSERR;
    }
    /* the main thread takes HUP, TERM and INT; every other thread keeps them blocked */
    struct sigaction sa;
    memset(&sa, 0, sizeof(sa));
    sa.sa_handler = s_on_signal;
    sigemptyset(&sa.sa_mask);
    sa.sa_flags = SA_RESTART;
    sigaction(SIGHUP, &sa, NULL);
    sigaction(SIGTERM, &sa, NULL);
    sigaction(SIGINT, &sa, NULL);
    sigset_t sigs;
    sigemptyset(&sigs);
    sigaddset(&sigs, SIGHUP);
    sigaddset(&sigs, SIGTERM);
    sigaddset(&sigs, SIGINT);
    pthread_sigmask(SIG_UNBLOCK, &sigs, NULL);
    daemon_ready(ready_fd, EX_OK);

    bool stopping = false;
    for (;;) {
        /* wait in poll(), not in read(): poll() returns on a signal even with SA_RESTART.
         * ThreadSanitizer runs a handler only at the thread's next intercepted call, and a
         * read() restarted under it never returns: the sensor would ignore HUP and TERM */
        struct pollfd pfd = {.fd = p[0], .events = POLLIN};
        if (poll(&pfd, 1, -1) < 0) {
            if (errno == EINTR)
                continue;
            break;
        }
        unsigned char c;
        ssize_t r = read(p[0], &c, 1);
        if (r < 0 && errno == EINTR)
            continue;
        if (r <= 0 || c == 0)
            break;
        if (c == SIGHUP) {
            s_reload(engine, path);
        } else if (!stopping) {
            msg_info("milter: stopping signal=%s", c == SIGTERM ? "TERM" : "INT");
            stopping = true;
            milter_stop();
        }
    }
    pthread_sigmask(SIG_BLOCK, &sigs, NULL);
    pthread_join(tid, NULL);
    s_sig_fd = -1;
    close(p[0]);
    close(p[1]);
    if (!stopping) {
        msg_error("milter: libmilter stopped without a stop request (status=%d)", t.rc);
        return EX_SOFTWARE;
    }
    return t.rc;
}

/* Prints each line of err as "backstop-sensor: LINE" on stderr. */
static void s_print_errors(char *err)
{
    char *next = NULL;
    for (char *line = strtok_r(err, "\n", &next); line; line = strtok_r(NULL, "\n", &next))
        fprintf(stderr, "backstop-sensor: %s\n", line);
}

/* The "FILE:LINE" where path sets key (FILE when the value is the default), into at. */
static const char *s_where(const sensor_config_t *cfg, const char *path, const char *key, char *at,
                           size_t len)
{
    return cfg_where(&cfg->head, sensor_config_schema()->params, key, path, NULL, at, len);
}

/* -n: reads the files the start reads after the privilege drop (post-init), so that a
 * configuration -n passes does not then fail to start. It opens no socket and no state, and
 * reads as the calling user. 0, or -1 with one "FILE:LINE: why" line per failed file
 * appended to err, the line that names the file. */
static int s_check_files(const sensor_config_t *cfg, const char *path, char *err, size_t errlen)
{
    int rc = 0;
    /* the uplink's key pair: the start reads it only with an aggregator, but a file named and
     * unreadable is a mistake either way */
    const char *kf = cfg->sensor_secret_key_file;
    if (*kf) {
        zsock_keys_t keys;
        const char *why = NULL;
        if (zsock_keys_load(kf, &keys) != 0)
            why = "cannot be read as a key file (see above)";
        else if (!keys.secret_key[0])
            why = "holds no secret key";
        if (why) {
            char at[1024];
            cfg_err_line(err, errlen, s_where(cfg, path, "sensor_secret_key_file", at, sizeof(at)),
                         "sensor_secret_key_file: %s %s", kf, why);
            rc = -1;
        }
        memset(&keys, 0, sizeof(keys));
    }
    if (milter_engine_check(cfg, path, err, errlen) != 0)
        rc = -1;
    return rc;
}

/* -n and the start: the user the start drops to exists. The start used to find an unknown
 * one only at the drop (privs_drop(), exit 67, in the log of a daemon); both now refuse it
 * before anything is opened, with its line, as the configuration error it is (78). 0, or -1
 * with "FILE:LINE: why" appended to err. */
static int s_check_user(const sensor_config_t *cfg, const char *path, char *err, size_t errlen)
{
    char at[1024];
    if (!*cfg->user || getpwnam(cfg->user))
        return 0;
    cfg_err_line(err, errlen, s_where(cfg, path, "user", at, sizeof(at)), "user %s: no such user",
                 cfg->user);
    return -1;
}

/* -n: state_directory is there, or the start can make it (it creates the last component
 * only, and exits 73 when it cannot). Whether the final user may write it is the start's to
 * find: it hands the directory to that user first. 0, or -1 with "FILE:LINE: why" appended
 * to err. */
static int s_check_state(const sensor_config_t *cfg, const char *path, char *err, size_t errlen)
{
    char at[1024];
    const char *dir = cfg->state_directory;
    struct stat st;
    const char *why = NULL;
    char *parent = NULL;
    if (!*dir) {
        why = "is empty";
    } else if (stat(dir, &st) == 0) {
        if (!S_ISDIR(st.st_mode))
            why = "is not a directory";
    } else if (errno != ENOENT) {
        why = strerror(errno);
    } else {
        /* the parent of the last component, as mkdir() needs it */
        size_t n = strlen(dir);
        while (n > 1 && dir[n - 1] == '/')
            n--;
        while (n > 0 && dir[n - 1] != '/')
            n--;
        while (n > 1 && dir[n - 1] == '/')
            n--;
        parent = n ? xstrndup(dir, n) : xstrdup(".");
        if (stat(parent, &st) != 0 || !S_ISDIR(st.st_mode))
            why = "does not exist, and the start cannot create it: its parent directory does "
                  "not exist either";
    }
    xfree(parent);
    if (!why)
        return 0;
    cfg_err_line(err, errlen, s_where(cfg, path, "state_directory", at, sizeof(at)),
                 "state_directory %s %s", dir, why);
    return -1;
}

int milter_cmd_main(int argc, char **argv)
{
    const char *path = NULL;
    bool foreground = false, check = false;
    int c;
    optind = 1;
    if (argc >= 2 && !strcmp(argv[1], "--help")) {
        fputs(s_help, stdout);
        fputs(s_params_head, stdout);
        cfg_print_help(sensor_config_schema(), stdout);
        return EX_OK;
    }
    while ((c = getopt(argc, argv, "c:fnvh")) != -1) {
        switch (c) {
        case 'c':
            path = optarg;
            break;
        case 'f':
            foreground = true;
            break;
        case 'n':
            check = true;
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
    char err[8192];
    bool ok;
    sensor_config_t *cfg = sensor_config_load_milter(path, &ok, err, sizeof(err));
    if (!cfg) {
        s_print_errors(err);
        return EX_CONFIG;
    }
    /* every error there is, not only the first kind: the file's own checks, then what the
     * start would meet */
    if (!ok)
        s_print_errors(err);
    err[0] = '\0';
    if (s_check_user(cfg, path, err, sizeof(err)) != 0)
        ok = false;
    if (check) {
        if (s_check_state(cfg, path, err, sizeof(err)) != 0)
            ok = false;
        if (s_check_files(cfg, path, err, sizeof(err)) != 0)
            ok = false;
    }
    s_print_errors(err);
    if (!ok || check) {
        if (ok)
            printf("%s: configuration ok\n", path);
        sensor_config_destroy(&cfg);
        return ok ? EX_OK : EX_CONFIG;
    }
    /* SIGHUP reads the file again, after a daemon's chdir("/") */
    char abspath[PATH_MAX];
    if (!realpath(path, abspath))
        snprintf(abspath, sizeof(abspath), "%s", path);
    /* every thread started from here on (uplink, libmilter's) keeps these blocked;
     * s_serve() unblocks them in the main thread only */
    sigset_t sigs;
    sigemptyset(&sigs);
    sigaddset(&sigs, SIGTERM);
    sigaddset(&sigs, SIGINT);
    sigaddset(&sigs, SIGHUP);
    pthread_sigmask(SIG_BLOCK, &sigs, NULL);

    int ready_fd = -1;
    bool pid_written = false, in_use = false;
    milter_engine_t *engine = NULL;
    uplink_t *up = NULL;
    /* pre-init: what may need root, reported on the terminal before a daemon detaches */
    int rc = milter_open(cfg);
    if (rc != EX_OK)
        goto done;
    if (!foreground) {
        bool parent;
        rc = daemon_detach("backstop-sensor", &parent, &ready_fd);
        if (parent || rc != EX_OK) {
            sensor_config_destroy(&cfg);
            return rc;
        }
    }
    if (*cfg->pid_file) {
        if ((rc = s_write_pid_file(cfg->pid_file)) != EX_OK)
            goto done;
        pid_written = true;
    }
    if (mkdir(cfg->state_directory, 0750) != 0 && errno != EEXIST) {
        msg_error("milter: cannot create state_directory %s: %s", cfg->state_directory,
                  strerror(errno));
        rc = EX_CANTCREAT;
        goto done;
    }
    /* the state directory and its stores (decisions, ledger, spool and their files) */
    const char *const trees[] = {cfg->state_directory, NULL};
    if ((rc = privs_drop("milter", cfg->user, trees)) != EX_OK)
        goto done;
    /* post-init: state and the files the configuration names, as the final user */
    if (access(cfg->state_directory, W_OK) != 0) {
        msg_error("milter: cannot use state_directory %s: %s", cfg->state_directory,
                  strerror(errno));
        rc = EX_CANTCREAT;
        goto done;
    }
    engine = milter_engine_new(cfg, bs_clock_system(), err, sizeof(err));
    if (!engine) {
        msg_error("milter: %s", err);
        rc = EX_UNAVAILABLE;
        goto done;
    }
    up = uplink_new(engine, err, sizeof(err));
    if (!up || uplink_start(up) != 0) {
        msg_error("milter: uplink: %s", up ? "cannot start thread" : err);
        rc = EX_UNAVAILABLE;
        goto done;
    }
    rc = s_serve(engine, abspath, &ready_fd);
    /* libmilter's worker threads may still be inside a callback */
    in_use = milter_drain(s_drain_ms) != 0;
    msg_info("milter: stopping status=%d", rc);
done:
    daemon_ready(&ready_fd, rc == EX_OK ? EX_SOFTWARE : rc);
    uplink_destroy(&up);
    if (pid_written)
        unlink(cfg->pid_file); /* may fail after the drop; a stale file names a dead pid */
    if (in_use)
        return rc; /* exit with the engine and its configuration still allocated, and reachable
                      through the adapter, rather than free what another thread may use */
    milter_engine_destroy(&engine);
    sensor_config_destroy(&cfg);
    return rc;
}
