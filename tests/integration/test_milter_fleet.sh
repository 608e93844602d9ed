#!/bin/sh
# test_milter_fleet - end to end: three sites (three Postfix instances, each
# with its own sensor) and a real aggregator. A bounce storm about one
# original subject reaches all three (each sensor sends the aggregator only the keys it
# counts, and each key's text once); the fleet
# decision, showing that subject, reaches every sensor;
# the next matching bounce at each site gets 550 naming it, while normal mail
# with that subject and a legitimate bounce (ledger) are delivered. Then the
# aggregator is killed: mail still flows, the cached decision is still
# enforced, events spool; it comes back: the spool is replayed. A restarted
# sensor enforces from its first message. Finally the decision expires and
# matching bounces are delivered again.
SRC=${2:?usage: test BUILD_DIR SOURCE_DIR}
. "$SRC/tests/integration/lib.sh"
. "$SRC/tests/integration/agg_lib.sh"
bs_init "$@"
bs_need postfix swaks jq

agg_conf agg '[rule fleet_orig]' 'scope = orig_subject' 'window = 10m' 'min_events = 6' \
    'min_sites = 3' 'max_site_share = 0.5' 'ttl = 12s' 'action = reject' 'reach = fleet'
agg_start agg
for s in 1 2 3; do
    sensor_conf site$s "aggregator_events = $AGG_EV" "aggregator_decisions = $AGG_DE" \
        "aggregator_snapshot = $AGG_SN" "event_flush = 10ms" "local_rule = no" \
        "internal_networks = 127.0.0.2/32" "status_interval = 1s"
    sensor_start site$s
    wait_log "$(sensor_log site$s)" 'uplink: state=live' || bs_fail "sensor site$s never synced"
    # the aggregator's heartbeat announces column batches: the storm below travels as columns
    # ... each key's text once, and only the keys of the scopes it reads (its one rule's,
    # and sender_domain for allowlists)
    wait_log "$(sensor_log site$s)" \
        'uplink: events=columns aggregator=primary texts=once keys=orig_subject,sender_domain$' ||
        bs_fail "sensor site$s does not send a current aggregator columns, texts once, its keys only"
    pf_create site$s "$(sensor_socket site$s)"
    pf_start site$s
done
bs_pass "three sites up, sensors synced with the aggregator, sending column batches"

# outbound mail at site1 feeds its ledger (for the legitimate bounce later)
mid="legit-$$@test.example"
printf 'From: carol@test.example\nTo: friend@test.example\nSubject: cheap watches\nMessage-ID: <%s>\n\nhi\n' \
    "$mid" >"$BS_TMP/out.eml"
swaks_send site1 --local-interface 127.0.0.2 --from carol@test.example --to friend@test.example \
    --data "$BS_TMP/out.eml" || bs_fail "outbound mail refused"

# the storm: two bounces at each site
n=0
for s in 1 2 3; do
    for i in 1 2; do
        n=$((n + 1))
        bounce_file "$BS_TMP/s$n.eml" "Undeliverable: cheap watches" "cheap watches"
        swaks_send site$s --from '<>' --to "v$n@test.example" --data "$BS_TMP/s$n.eml" ||
            bs_fail "storm bounce $n refused before any decision: $(last_reply)"
    done
done
for s in 1 2 3; do
    wait_log "$(sensor_log site$s)" 'uplink: decision=[^ ]+ change=upsert scope=orig_subject action=reject' ||
        bs_fail "site$s never received the fleet decision"
done
id=$(sed -n 's/.*uplink: decision=\([^ ]*\) change=upsert scope=orig_subject.*/\1/p' \
    "$(sensor_log site1)" | head -n 1)
bs_pass "fleet decision $id reached all three sensors"

# each sensor sent the subject's text with its first bounce only: the aggregator kept it,
# and the decision shows the subject, not its fingerprint
val=$("$BS_BUILD/backstop" --socket "$AGG_CTL" --json decisions show "$id" | jq -r '.decision.value')
[ "$val" = "cheap watches" ] || bs_fail "decision $id shows '$val', not the subject"
bs_pass "the decision shows the subject its sensors sent once"

for s in 1 2 3; do
    bounce_file "$BS_TMP/n$s.eml" "Undeliverable: cheap watches" "cheap watches"
    if swaks_send site$s --from '<>' --to "w$s@test.example" --data "$BS_TMP/n$s.eml"; then
        bs_fail "site$s accepted a matching bounce after the decision"
    fi
    last_reply | grep -q "550 5.7.1 .*(backstop decision $id)" ||
        bs_fail "site$s: reply does not name $id: $(last_reply)"
done
bs_pass "next matching bounce at each site: 550 naming $id"

swaks_send site2 --from bob@sender.example --to u@test.example --header 'Subject: cheap watches' ||
    bs_fail "normal mail with the subject refused: $(last_reply)"
bounce_file "$BS_TMP/legit.eml" "Undeliverable: cheap watches" "cheap watches" "legit-$$"
sed -i "s/<legit-$$@spammer.example>/<$mid>/" "$BS_TMP/legit.eml"
swaks_send site1 --from '<>' --to carol@test.example --data "$BS_TMP/legit.eml" ||
    bs_fail "legitimate bounce refused: $(last_reply)"
bs_pass "normal mail and a legitimate bounce delivered"

# the aggregator dies: mail flows, the cache still enforces, events spool
agg_kill9 agg
wait_log "$(sensor_log site3)" 'uplink: state=joining reason=silence' 10 ||
    bs_fail "site3 did not notice the silence"
swaks_send site3 --from alice@sender.example --to u@test.example --header 'Subject: hello' ||
    bs_fail "normal mail refused without aggregator"
bounce_file "$BS_TMP/k1.eml" "Undeliverable: cheap watches" "cheap watches"
if swaks_send site3 --from '<>' --to k1@test.example --data "$BS_TMP/k1.eml"; then
    bs_fail "cached decision not enforced without the aggregator"
fi
bounce_file "$BS_TMP/k2.eml" "Undeliverable: other wave" "other wave"
swaks_send site3 --from '<>' --to k2@test.example --data "$BS_TMP/k2.eml" ||
    bs_fail "unrelated bounce refused without aggregator: $(last_reply)"
wait_log "$(sensor_log site3)" 'uplink: spool=start' 5 || bs_fail "site3 did not spool events"
bs_pass "aggregator down: mail flows, cached decision enforced, events spooled"

before=$(grep -c 'events=' "$BS_TMP/agg.log")
agg_start agg
wait_log "$(sensor_log site3)" 'uplink: spool=replayed' 15 || bs_fail "site3 never replayed its spool"
wait_log "$(sensor_log site3)" 'uplink: state=live' || bs_fail "site3 did not resync"
bs_pass "aggregator back: spool replayed, sensor live again"

# a restarted sensor enforces from its first message (cache on disk)
sensor_stop site2
sensor_start site2
bounce_file "$BS_TMP/r1.eml" "Undeliverable: cheap watches" "cheap watches"
if swaks_send site2 --from '<>' --to r1@test.example --data "$BS_TMP/r1.eml"; then
    bs_fail "restarted sensor did not enforce $id at once"
fi
bs_pass "restarted sensor enforces $id from the first message"

# expiry: no more bounces, the decision lapses at its TTL
wait_for 30 sh -c "grep -q 'dcache: expired=' '$(sensor_log site1)' || grep -q 'decision=$id change=remove' '$(sensor_log site1)'" ||
    bs_fail "decision $id never expired at site1"
bounce_file "$BS_TMP/e1.eml" "Undeliverable: cheap watches" "cheap watches"
swaks_send site1 --from '<>' --to e1@test.example --data "$BS_TMP/e1.eml" ||
    bs_fail "matching bounce refused after expiry: $(last_reply)"
bs_pass "after expiry matching bounces are delivered again"
