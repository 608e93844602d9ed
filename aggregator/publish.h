/*
 * publish - decisions onto the wire: PUB updates and heartbeats, snapshots
 *
 * The Clone pattern's server side (proto/PROTOCOL.md section 4):
 *  - publish_update() sends one decision change on its topic: "F" for fleet
 *    decisions, "S/<site>/" for a site's local ones;
 *  - publish_heartbeat() sends Heartbeat{epoch, seq, now, features, shared_digest,
 *    interval_ms, scopes} on "H";
 *  - publish_snapshot() answers a SnapshotRequest on the snapshot ROUTER: the
 *    changes after since_seq when the decision table's change log reaches back
 *    that far in the same epoch, else a full snapshot of the decisions in force
 *    for the site (fleet plus its own local ones, without evidence), split into
 *    several replies (more = true on all but the last) at WIRE_MAX_SNAPSHOT
 *    entries or about half a frame; publish_refused() answers one the caller
 *    refused (refused = true, nothing else). Every reply carries the
 *    heartbeat_interval (heartbeat_interval_ms), by which a follower judges
 *    silence from the reply on, before it hears a heartbeat.
 * It also converts between decision_t and Backstop__Decision (publish_pb_*),
 * which the store uses for its records, so there is one mapping.
 *
 * Every send is ZMQ_DONTWAIT and returns -1 with errno on failure (EAGAIN: the
 * peer's queue is full); the caller counts it. Nothing here logs per message.
 * The pb structs filled here borrow the strings of the decision_t they were
 * filled from: keep it alive while the pb is in use.
 */
#ifndef BS_PUBLISH_H
#define BS_PUBLISH_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "decisions.h"
#include "wire.h"
#include "zsock.h"

/* A Backstop__Decision with room for its evidence, filled from a decision_t. */
typedef struct {
    Backstop__Decision d;                              /* the message */
    Backstop__Evidence ev;                             /* its evidence, when included */
    Backstop__SiteShare shares[EVIDENCE_SHARES_MAX];   /* evidence shares */
    Backstop__SiteShare *share_p[EVIDENCE_SHARES_MAX]; /* pointers protobuf-c wants */
} publish_pb_t;

/* Fills pb from d (borrowing d's strings); evidence included when with_evidence and d has it. */
void publish_pb_fill(publish_pb_t *pb, const decision_t *d, bool with_evidence);

/* Converts a checked wire decision into out; 0, or -1 when it is not a usable decision. */
int publish_pb_read(const Backstop__Decision *pb, decision_t *out);

/* Fills a DecisionUpdate (and its decision in pb) for change c. */
void publish_pb_update(Backstop__DecisionUpdate *u, publish_pb_t *pb, const decision_change_t *c);

/* Fills a SKIP update for change c (another site's LOCAL change): blank but for the
 * sequence, reach LOCAL and fp = fp_text(site); see backstop.proto. */
void publish_pb_skip(Backstop__DecisionUpdate *u, publish_pb_t *pb, const decision_change_t *c);

/* The topic of decision d: "F" or "S/<site>/" into buf (ZSOCK_TOPIC_MAX); -1 if unusable. */
int publish_topic(const decision_t *d, char *buf, size_t size);

/* Publishes change c on its topic. 0, or -1 with errno (EAGAIN, EMSGSIZE, ...). */
int publish_update(void *pub, const decision_change_t *c);

/* Publishes a heartbeat (features: WIRE_FEATURE_COLUMNS and WIRE_FEATURE_TEXT_ONCE; the
 * digest of the allowlist and sites, shared.h; interval_ms, the heartbeat_interval, by which
 * followers judge silence; scopes, ingest_scopes(): the event keys it reads) on "H". 0, or -1
 * with errno. */
int publish_heartbeat(void *pub, uint64_t epoch, uint64_t seq, int64_t now_ms,
                      uint64_t shared_digest, int64_t interval_ms, uint32_t scopes);

/* What publish_snapshot() sent. */
typedef struct {
    bool changes_only; /* answered from the change log */
    size_t entries;    /* decisions or changes sent */
    size_t frames;     /* SnapshotReply frames sent */
} publish_snapshot_result_t;

/* Where "changes since" come from: calls cb for each change with seq > since_seq in
 * order; 0, or -1 when it cannot answer (other epoch, too old). */
typedef int (*publish_since_fn)(void *arg, uint64_t epoch, uint64_t since_seq,
                                int (*cb)(const decision_change_t *c, void *cbarg), void *cbarg);

/* The site of a peer aggregator's request (never a site name): every site's decisions,
 * and changes without SKIPs (PROTOCOL.md 4.6). */
#define PUBLISH_ALL_SITES "*"

/* Answers req (from peer to) for site on the ROUTER: changes since req->since_seq when
 * since (NULL: the table's own change log) can answer, else a full snapshot of table as
 * of its seq. An empty site (site mismatch) gets an empty full snapshot. Every frame
 * carries interval_ms, the heartbeat_interval. 0, or -1 with errno when a reply could not
 * be sent (the rest is dropped). */
int publish_snapshot(void *router, const zsock_meta_t *to, const decisions_t *table,
                     const char *site, const Backstop__SnapshotRequest *req, publish_since_fn since,
                     void *since_arg, int64_t interval_ms, publish_snapshot_result_t *res);

/* Answers a refused SnapshotRequest (its site is not the connection's, or all_sites from a
 * site's key; PROTOCOL.md 1.3): one SnapshotReply with no decisions and refused = true
 * (epoch and seq are the table's, as required fields; they say nothing) and interval_ms,
 * the heartbeat_interval, as every reply. 0, or -1 with errno when it could not be sent. */
int publish_refused(void *router, const zsock_meta_t *to, const decisions_t *table,
                    int64_t interval_ms);

#endif
