/*
 * control - the aggregator's answers to `backstop` (the control channel)
 *
 * The server's loop hands every ControlRequest from the ipc control socket to
 * control_handle(). It reads the server's tables through the accessors in
 * server.h, makes the changes an operator asks for (decisions through the
 * decision table, then server_apply_changes(), so LevelDB is written before
 * anything is published; allowlist entries and sites through server_allow_*
 * and server_site_*), and fills the reply: status 0 and a JSON document, or a
 * sysexits.h status and a one-line error. Every value in a request is checked
 * again here (cli_key.h), whoever sent it.
 *
 * Reply documents (UTF-8 JSON objects; every one has now_ms, the aggregator's
 * clock, so relative times render the same anywhere). Decisions are
 * {id, scope, value, fp (16 hex), action, reach, site?, reason, created_ms,
 * expires_ms, expires_in_s, origin, origin_who, seq, epoch (16 hex), mode,
 * all_mail, evidence?}, evidence {rule, events, sites, window_s, first_ms,
 * last_ms, sample, shares: [{site, events, share}]}; allowlist entries
 * {id, type, value, scope?, fp?, reason, who, created_ms}.
 *   STATUS         {now_ms, started_ms, uptime_s, epoch, seq, events_per_s,
 *                   events: {received, counted, allowlisted, untracked (counted
 *                   without dedup: its table full), dropped: {reason: n}},
 *                   keys, window: {keys, max_keys, keys_refused, full}, decisions: {active,
 * enforced, pending}, allowlist, sites, sensors: [{site, sensor, last_seen_ms, epoch, applied_seq,
 * lag, stale, events, decisions}]} DECISION_LIST  {now_ms, total, truncated, decisions: [decision]}
 *   DECISION_SHOW  {now_ms, decision}
 *   DECISION_ADD   {now_ms, result: created|extended|unchanged, decision}
 *   DECISION_DEL   {now_ms, revoked: decision}
 *   WHY            {now_ms, query, kind: decision|ip|net|subject|subject_ip,
 *                   decisions: [decision], allowlisted: [entry],
 *                   keys: [{scope, value, fp, events, span_s, rules: [{rule, reach,
 *                   mode, window_s, events, min_events, sites, min_sites, top_share,
 *                   max_site_share, site?, verdict, fires, decided}]}]}
 *                  (decided: the rule's decision on the key, one its firing would make
 *                  or extend, is in force; fires without decided: the thresholds are
 *                  met, and the key's next event makes the decision)
 *   TOP            {now_ms, keys: [{scope, value, fp, rule, reach, site?, events,
 *                   min_events, sites, min_sites, top_share, max_site_share,
 *                   progress (0..1, 1 = fires), decided}]}
 *   ALLOW_LIST     {now_ms, allowlist: [entry]}
 *   ALLOW_ADD      {now_ms, result: created|exists, entry, revoked: [decision]}
 *   ALLOW_DEL      {now_ms, removed: entry}
 *   SITES          {now_ms, sites: [{name, registered, public_key, created_ms, who,
 *                   sensors: [sensor as in STATUS]}]}
 *   SITE_ADD       {now_ms, site}
 *   SITE_DEL       {now_ms, removed: {name}}
 * Status codes: 0 ok; EX_USAGE (64) a request missing what its command needs;
 * EX_DATAERR (65) an invalid value, an unknown id / entry / site, or a key an
 * allowlist protects; EX_SOFTWARE (70) the store could not be written.
 *
 * Ownership: reply->json and reply->error are malloc'd here; the server frees
 * them with free() after sending. JSON values returned by control_json_*
 * are new references (json_decref).
 */
#ifndef BS_CONTROL_H
#define BS_CONTROL_H

#include <jansson.h>
#include <stdbool.h>
#include <stdint.h>

#include "allowlist.h"
#include "decisions.h"
#include "server.h"
#include "wire.h"

/* Answers one request: fills reply->status and reply->json or reply->error. Returns the
 * status it set. */
int control_handle(server_t *srv, const Backstop__ControlRequest *req,
                   Backstop__ControlReply *reply);

/* Whether req is a command that may change what is stored (adds and deletes; unknown
 * commands count as changes): only those wait for the disk before the reply. */
bool control_changes(const Backstop__ControlRequest *req);

/* The JSON form of a decision at now_ms (evidence included when with_evidence). */
json_t *control_json_decision(const decision_t *d, int64_t now_ms, bool with_evidence);

/* The JSON form of an allowlist entry. */
json_t *control_json_allow(const allow_entry_t *e);

/* The JSON form of one rule's verdict on a key (why, top): evidence against thresholds. */
json_t *control_json_verdict(const rule_t *r, rules_verdict_t v, const evidence_t *ev);

#endif
