/*
 * sensor_config - the sensor's parameters: one typed table, one immutable struct
 *
 * Every parameter of backstop-sensor (milter, local rule, ledger, uplink,
 * fail-open policy) is a row of the table in sensor_config.c, with its default
 * and bounds, loaded through common/cfg. A loaded sensor_config_t is never
 * changed afterwards: milter threads read it without locks, and a reload
 * (SIGHUP) builds a new one; settings that only a restart can change are
 * copied over from the running one (sensor_config_keep_restart).
 *
 * Ownership: sensor_config_load() returns a struct the caller frees with
 * sensor_config_destroy(); every string and list inside belongs to it.
 */
#ifndef BS_SENSOR_CONFIG_H
#define BS_SENSOR_CONFIG_H

#include "cfg.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

/* What a failure class does to the message it hit (OpenDKIM's On-* values). */
typedef enum {
    SENSOR_FAIL_ACCEPT = 0,   /* let the message through untouched */
    SENSOR_FAIL_TEMPFAIL = 1, /* 451 4.7.1: the client retries later */
} sensor_fail_t;

/* The local rule's action, same order as the words in the table. */
typedef enum {
    SENSOR_LOCAL_REJECT = 0,
    SENSOR_LOCAL_TEMPFAIL = 1,
    SENSOR_LOCAL_TAG = 2,
} sensor_local_action_t;

typedef struct {
    cfg_head_t head;            /* the lines the keys were set on (cfg_line) */
    char *site;                 /* this customer site's name, as registered at the aggregator */
    char *sensor_id;            /* this sensor's name within the site (default: host name) */
    char *milter_socket;        /* libmilter spec: unix:/path, inet:PORT@HOST, inet6:... */
    char *milter_umask;         /* octal umask while creating a unix socket */
    int64_t milter_timeout_ms;  /* libmilter I/O timeout towards the MTA */
    int64_t max_connections;    /* concurrent MTA connections before on_overload applies */
    char *state_directory;      /* decision cache, ledger and spool live here */
    char *user;                 /* started as root: switch to this user after opening the socket */
    char *pid_file;             /* daemon mode: write the process id here ("" = none) */
    int64_t message_limit;      /* bytes of header + body kept per message for the classifier */
    char *decision_file;        /* operator decisions "scope value action [ttl]" loaded at start */
    cfg_list_t enforce_classes; /* message classes decisions apply to (bounce, autoreply, ...) */
    char *reply_text;           /* SMTP text before "(backstop decision ID)" */
    bool outbound_auth;         /* SASL-authenticated clients ({auth_authen}) send outbound mail */
    cfg_list_t internal_networks; /* clients in these networks send outbound mail */
    cfg_list_t outbound_daemons;  /* {daemon_name} values that mark outbound mail */
    int64_t ledger_ttl_ms;        /* how long an outbound Message-ID/sender vouches for bounces */
    bool ledger_match_recipient;  /* a bounce to a ledger sender is legitimate if it quotes no ID */
    bool local_rule;              /* run the seed's per-site rule */
    char *local_rule_file;        /* header_checks-style rules; none: every bounce counts */
    int64_t local_rule_threshold; /* x: matching bounces with one subject key ... */
    int64_t local_rule_period_ms; /* ... within this period ... */
    int64_t local_block_ttl_ms;   /* ... block that subject at this site this long */
    int local_block_action;       /* sensor_local_action_t */
    bool local_rule_observe;      /* log what the local rule would block, block nothing */
    int64_t local_rule_max_keys;  /* subject keys tracked at once (oldest evicted) */
    char *aggregator_events;      /* endpoint of the aggregator's event PULL ("" = standalone) */
    char *aggregator_decisions;   /* endpoint of its decision PUB */
    char *aggregator_snapshot;    /* endpoint of its snapshot ROUTER */
    char *aggregator_public_key;  /* CURVE public key of the aggregator (z85), "" = plain */
    char *sensor_secret_key_file; /* file holding this sensor's CURVE secret and public key */
    char *aggregator_backup_events;     /* the backup aggregator's event PULL ("" = none) */
    char *aggregator_backup_decisions;  /* its decision PUB */
    char *aggregator_backup_snapshot;   /* its snapshot ROUTER */
    char *aggregator_backup_public_key; /* its CURVE public key ("" = aggregator_public_key) */
    int64_t heartbeat_timeout_ms;       /* silence on the decision feed before reconnecting */
    int64_t event_queue;                /* events waiting for the uplink thread before drops */
    int64_t event_batch;                /* events per EventBatch frame at most */
    int64_t event_flush_ms;             /* longest an event waits for its batch to fill */
    int64_t spool_limit;                /* events kept on disk while the aggregator is away */
    int64_t status_interval_ms;         /* SensorStatus reports */
    int on_internal_error;              /* sensor_fail_t */
    int on_overload;                    /* sensor_fail_t */
    int on_no_aggregator;         /* sensor_fail_t: what a cold start without decisions does */
    int64_t fail_log_interval_ms; /* a failure class is logged at most once per interval */
} sensor_config_t;

/* The parameter table (for -n, --help and sample configs). */
const cfg_schema_t *sensor_config_schema(void);

/* Loads path (NULL: defaults only); NULL with "FILE:LINE: why" lines in err on error. */
sensor_config_t *sensor_config_load(const char *path, char *err, size_t errlen);

/* As sensor_config_load, for the milter (its -n and its start): also refuses what only the
 * milter cannot run with (an aggregator named without all three of aggregator_events,
 * aggregator_decisions and aggregator_snapshot). A file that parses is returned even when a
 * check refused it, with *ok false and every error in err, so that -n can go on to check the
 * files it names; NULL only when the file does not parse (err says why). */
sensor_config_t *sensor_config_load_milter(const char *path, bool *ok, char *err, size_t errlen);

/* Frees a config from sensor_config_load; sets *self_p = NULL; safe twice. */
void sensor_config_destroy(sensor_config_t **self_p);

/* A reload keeps what cannot change while running (sockets, state, identity, uplink): copies
 * those settings from running into fresh and writes the names of the ones that differed,
 * blank-separated, into changed. Returns how many differed. */
int sensor_config_keep_restart(sensor_config_t *fresh, const sensor_config_t *running,
                               char *changed, size_t changed_len);

/* Is class_name ("bounce", "autoreply", ...) one decisions apply to? */
bool sensor_config_enforces_class(const sensor_config_t *self, const char *class_name);

#endif
