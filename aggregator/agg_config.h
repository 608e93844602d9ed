/*
 * agg_config - the aggregator's parameters: one typed table, one immutable struct
 *
 * Every parameter of backstop-aggregator (endpoints, store, window, skew
 * bounds, timers, CURVE keys) and every "[rule NAME]" section is a row of the
 * tables in agg_config.c, with its default and bounds, loaded through
 * common/cfg. A config with no rule sections gets the shipped default rules
 * (rules_defaults()); a config with any rule section gets exactly the rules it
 * names. The loaded struct is never changed afterwards: SIGHUP builds a new
 * one, agg_config_keep_restart() carries over what only a restart can change,
 * and the server swaps the pointer.
 *
 * Ownership: agg_config_load() returns a struct the caller frees with
 * agg_config_destroy(); every string, list and rule inside belongs to it.
 */
#ifndef BS_AGG_CONFIG_H
#define BS_AGG_CONFIG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "cfg.h"
#include "rules.h"

/* One "[rule NAME]" section as the file states it (converted into rule_t). */
typedef struct {
    cfg_head_t head;         /* section name (the rule's name) and FILE:LINE */
    int scope;               /* index into the scope words (subject, orig_subject, ...) */
    int64_t window_ms;       /* counting window */
    int64_t min_events;      /* events needed in the window */
    int64_t min_sites;       /* distinct sites needed (fleet rules) */
    char *max_site_share;    /* largest share of one site, "0.6" or "60%" */
    int64_t ttl_ms;          /* decision lifetime from the last firing */
    int action;              /* index into the action words */
    int reach;               /* index into the reach words */
    int mode;                /* index into the mode words */
    bool require_rule_match; /* count only events whose content rules matched */
    cfg_list_t classes;      /* message classes that count (bounce, autoreply, ...) */
} agg_rule_cfg_t;

typedef struct {
    cfg_head_t head;               /* lines the keys were set on (agg_config_where) */
    char *event_endpoint;          /* PULL, bound: sensors' event batches and status */
    char *decision_endpoint;       /* PUB, bound: decision updates and heartbeats */
    char *snapshot_endpoint;       /* ROUTER, bound: snapshot and changes-since requests */
    char *control_endpoint;        /* ROUTER, bound: the local CLI (ipc://) */
    char *control_group;           /* group of the control socket file; empty: keep */
    char *data_dir;                /* LevelDB directory (created when missing) */
    char *user;                    /* started as root: run as this user once bound; "" stay */
    char *server_key_file;         /* CURVE key pair file; empty: plain mode, loopback only */
    char *peer_decisions;          /* the failover peer's decision endpoint; empty: no peer */
    char *peer_snapshot;           /* ... its snapshot endpoint */
    char *peer_public_key;         /* ... its CURVE public key (Z85) */
    int64_t window_resolution_ms;  /* bucket length of the sliding windows */
    int64_t max_future_skew_ms;    /* events further in the future are dropped */
    int64_t heartbeat_interval_ms; /* heartbeat period on topic H */
    int64_t flush_interval_ms;     /* window counters written behind this often */
    int64_t sweep_interval_ms;     /* idle-key sweep period */
    int64_t sweep_budget;          /* table slots examined per sweep */
    int64_t max_keys;              /* window entries at most (0: no cap) */
    int64_t change_log;            /* changes kept for "changes since N" */
    int64_t extend_min_ms;         /* a wave extends its decision by at least this much */
    bool sync_decisions;           /* decision writes wait for the disk (fsync) before publish */
    agg_rule_cfg_t *rule_sections; /* "[rule NAME]" sections as written */
    size_t nrule_sections;         /* their number */

    /* derived by agg_config_load, not in the file */
    rule_t *rules;   /* the rules in force: the sections, or the shipped defaults */
    size_t nrules;   /* their number */
    int64_t span_ms; /* longest rule window, rounded up to the resolution */
    char *path;      /* file it came from ("defaults" when none) */
} agg_config_t;

/* The parameter tables (for --help and sample configs). */
const cfg_schema_t *agg_config_schema(void);

/* Loads path (NULL: defaults only), checks every rule; NULL + FILE:LINE lines in err. */
agg_config_t *agg_config_load(const char *path, char *err, size_t errlen);

/* "FILE:LINE" of the line global key was set on into buf, or "FILE" when it kept its
 * default; returns buf. For messages about a key that only makes sense with others. */
const char *agg_config_where(const agg_config_t *self, const char *key, char *buf, size_t len);

/* The keys a running aggregator keeps until a restart (what server_new() and main() set up
 * once: sockets, store, identity, keys, peer, buckets), NULL-terminated (for the man pages). */
const char *const *agg_config_restart_keys(void);

/* A reload keeps what cannot change while running: copies the restart-only settings from
 * running into fresh and writes the names of the ones that differed, blank-separated, into
 * changed. Returns how many differed, or -1 when fresh's rules do not fit the running
 * window_resolution (FILE:LINE lines in err). */
int agg_config_keep_restart(agg_config_t *fresh, const agg_config_t *running, char *changed,
                            size_t changed_len, char *err, size_t errlen);

/* Frees the config; sets *self_p = NULL; safe on NULL and twice. */
void agg_config_destroy(agg_config_t **self_p);

/* The rule named name, or NULL. */
const rule_t *agg_config_rule(const agg_config_t *self, const char *name);

#endif
