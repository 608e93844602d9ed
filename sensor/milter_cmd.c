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
 *   -n       check the configuration and exit
 *   -v       more logging (repeat for more)
 *
 * DIAGNOSTICS
 *   Exit status 0 after a clean stop (SIGTERM, SIGINT), 64 usage error,
 *   78 configuration error, 69 when the socket or the state directory cannot
 *   be opened, 70 internal error.
 */
#include "sensor_cmds.h"

#include "milter.h"
#include "milter_engine.h"
#include "msg.h"
#include "sensor_config.h"
#include "uplink.h"

#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

static const char s_usage[] = "Usage: backstop-sensor milter -c FILE [-f] [-n] [-v]\n"
                              "\n"
                              "Run the Backstop sensor as a milter for Postfix (smtpd_milters,\n"
                              "non_smtpd_milters) or Sendmail (INPUT_MAIL_FILTER).\n"
                              "\n"
                              "  -c FILE  configuration file (key = value)\n"
                              "  -f       foreground, log to stderr\n"
                              "  -n       check the configuration and exit\n"
                              "  -v       verbose logging (repeat for more)\n"
                              "\n"
                              "Parameters (key = default):\n";

int milter_cmd_main(int argc, char **argv)
{
    const char *path = NULL;
    bool foreground = false, check = false;
    int c;
    optind = 1;
    if (argc >= 2 && !strcmp(argv[1], "--help")) {
        fputs(s_usage, stdout);
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
    char err[4096];
    sensor_config_t *cfg = sensor_config_load(path, err, sizeof(err));
    if (!cfg) {
        fprintf(stderr, "backstop-sensor: %s\n", err);
        return EX_CONFIG;
    }
    if (check) {
        printf("%s: configuration ok\n", path);
        sensor_config_destroy(&cfg);
        return EX_OK;
    }
    if (!foreground) {
        if (daemon(0, 0) != 0) {
            msg_error("milter: cannot become a daemon");
            sensor_config_destroy(&cfg);
            return EX_OSERR;
        }
        msg_open("backstop-sensor", MSG_TO_SYSLOG);
    }
    if (mkdir(cfg->state_directory, 0750) != 0 && access(cfg->state_directory, W_OK) != 0) {
        msg_error("milter: cannot use state_directory %s", cfg->state_directory);
        sensor_config_destroy(&cfg);
        return EX_CANTCREAT;
    }
    milter_engine_t *engine = milter_engine_new(cfg, bs_clock_system(), err, sizeof(err));
    if (!engine) {
        msg_error("milter: %s", err);
        sensor_config_destroy(&cfg);
        return EX_UNAVAILABLE;
    }
    /* libmilter takes SIGTERM/SIGINT/SIGHUP with sigwait in its own thread; block them
     * before any thread starts so none is delivered to the uplink thread (and kills us) */
    sigset_t sigs;
    sigemptyset(&sigs);
    sigaddset(&sigs, SIGTERM);
    sigaddset(&sigs, SIGINT);
    sigaddset(&sigs, SIGHUP);
    pthread_sigmask(SIG_BLOCK, &sigs, NULL);
    uplink_t *up = uplink_new(engine, err, sizeof(err));
    if (!up || uplink_start(up) != 0) {
        msg_error("milter: uplink: %s", up ? "cannot start thread" : err);
        uplink_destroy(&up);
        milter_engine_destroy(&engine);
        sensor_config_destroy(&cfg);
        return EX_UNAVAILABLE;
    }
    int rc = milter_run(engine);
    msg_info("milter: stopping status=%d", rc);
    uplink_destroy(&up);
    milter_engine_destroy(&engine);
    sensor_config_destroy(&cfg);
    return rc;
}
