#!/bin/sh
# test_milter_mirror - a failover pair that mirrors (PROTOCOL.md 4.6), through a real
# Postfix: the sensor follows the primary A; a block made on A is enforced; A is killed
# and the sensor fails over to B, whose full snapshot holds A's decision, so the same
# bounce is still refused with the same decision id; revoked on B, it is accepted; A,
# back, has taken the revocation from B.
SRC=${2:?usage: test BUILD_DIR SOURCE_DIR}
. "$SRC/tests/integration/lib.sh"
. "$SRC/tests/integration/agg_lib.sh"
bs_init "$@"
bs_need postfix swaks jq

agg_conf A
A_EV=$AGG_EV A_DE=$AGG_DE A_SN=$AGG_SN A_CTL=$AGG_CTL
agg_conf B "peer_decisions = $A_DE" "peer_snapshot = $A_SN"
B_EV=$AGG_EV B_DE=$AGG_DE B_SN=$AGG_SN B_CTL=$AGG_CTL
printf 'peer_decisions = %s\npeer_snapshot = %s\n' "$B_DE" "$B_SN" >>"$BS_TMP/A.conf"
agg_start A
agg_start B
A="$BS_BUILD/backstop --socket $A_CTL"
B="$BS_BUILD/backstop --socket $B_CTL"
log=$(sensor_log site1)

sensor_conf site1 "aggregator_events = $A_EV" "aggregator_decisions = $A_DE" \
    "aggregator_snapshot = $A_SN" "aggregator_backup_events = $B_EV" \
    "aggregator_backup_decisions = $B_DE" "aggregator_backup_snapshot = $B_SN" \
    "event_flush = 10ms" "local_rule = no" "status_interval = 200ms"
sensor_start site1
wait_log "$log" 'uplink: state=live aggregator=primary' || bs_fail "sensor never followed the primary"
pf_create site1 "$(sensor_socket site1)"
pf_start site1

id=$($A --json decisions add --scope orig_subject --value 'cheap watches' --ttl 1h |
    jq -r .decision.id) || bs_fail "decisions add on A failed"
[ -n "$id" ] && [ "$id" != null ] || bs_fail "no decision id from A"
wait_log "$log" "uplink: decision=$id change=upsert" 5 || bs_fail "decision $id never reached the sensor"
wait_for 10 sh -c "$B --json decisions show $id >/dev/null 2>&1" || bs_fail "B never mirrored $id"
bounce_file "$BS_TMP/w.eml" "Undeliverable: cheap watches" "cheap watches"
swaks_send site1 --from '<>' --to u@test.example --data "$BS_TMP/w.eml" &&
    bs_fail "decision $id from A not enforced"
last_reply | grep -q "550 5.7.1 .*(backstop decision $id)" || bs_fail "wrong reply: $(last_reply)"
bs_pass "a block made on A is enforced through Postfix and mirrored on B"

agg_kill9 A
wait_log "$log" 'uplink: failover to=backup' 8 || bs_fail "no failover after A died"
wait_log "$log" 'uplink: state=live aggregator=backup .*decisions=1 ' 8 ||
    bs_fail "the sensor did not sync with B, or B's snapshot lacks $id: $(grep uplink: "$log" | tail -3)"
swaks_send site1 --from '<>' --to u@test.example --data "$BS_TMP/w.eml" &&
    bs_fail "after failover to B, $id is no longer enforced"
last_reply | grep -q "550 5.7.1 .*(backstop decision $id)" || bs_fail "wrong reply: $(last_reply)"
bs_pass "A killed: the sensor follows B, and $id still refuses the bounce (550 naming it)"

$B decisions del "$id" >/dev/null || bs_fail "decisions del $id on B"
wait_log "$log" "uplink: decision=$id change=remove" 5 || bs_fail "the revocation never reached the sensor"
swaks_send site1 --from '<>' --to u@test.example --data "$BS_TMP/w.eml" ||
    bs_fail "bounce refused after $id was revoked on B: $(last_reply)"
bs_pass "revoked on B, $id no longer refuses the bounce"

n=$(log_count "$BS_TMP/A.log" 'peer: state=live')
agg_start A
wait_for 10 sh -c "[ \$(grep -c 'peer: state=live' '$BS_TMP/A.log') -gt $n ]" ||
    bs_fail "A did not follow B again"
$A --json decisions show "$id" >/dev/null 2>&1 && bs_fail "A, back, still holds $id"
bs_pass "A, back, took the revocation of $id from B"
