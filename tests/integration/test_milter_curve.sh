#!/bin/sh
# test_milter_curve - CurveZMQ end to end through Postfix: an aggregator with
# server_key_file; site1 registered with `backstop sites add --key-dir`, its
# sensor configured with aggregator_public_key and sensor_secret_key_file:
# its events are accepted and counted under site1, a CLI decision reaches it
# and is enforced (550). site2's sensor holds a key pair the aggregator does
# not know: the aggregator refuses every handshake (ZAP, logged with the key),
# status never lists site2, nothing it sends is counted, and its mail still
# flows (fail open); its sensor logs that the aggregator refused its key.
SRC=${2:?usage: test BUILD_DIR SOURCE_DIR}
. "$SRC/tests/integration/lib.sh"
. "$SRC/tests/integration/agg_lib.sh"
bs_init "$@"
bs_need postfix swaks jq

CLI="$BS_BUILD/backstop"
mkdir -p "$BS_TMP/keys"
chmod 700 "$BS_TMP/keys"
PUB=$("$BS_BUILD/backstop-aggregator" --genkey "$BS_TMP/server.key") || bs_fail "--genkey"
agg_conf agg "server_key_file = $BS_TMP/server.key"
agg_start agg
grep -q 'mode=curve' "$BS_TMP/agg.log" || bs_fail "aggregator not in CURVE mode"
"$CLI" --socket "$AGG_CTL" sites add site1 --key-dir "$BS_TMP/keys" >/dev/null ||
    bs_fail "sites add site1"
"$BS_BUILD/backstop-aggregator" --genkey "$BS_TMP/keys/site2.key" >/dev/null ||
    bs_fail "--genkey for the stranger"
STRANGER=$(sed -n 's/^public *= *//p' "$BS_TMP/keys/site2.key")

for s in site1 site2; do
    sensor_conf $s "aggregator_events = $AGG_EV" "aggregator_decisions = $AGG_DE" \
        "aggregator_snapshot = $AGG_SN" "aggregator_public_key = $PUB" \
        "sensor_secret_key_file = $BS_TMP/keys/$s.key" "event_flush = 10ms" "local_rule = no" \
        "status_interval = 200ms"
    sensor_start $s
    pf_create $s "$(sensor_socket $s)"
    pf_start $s
done
wait_log "$(sensor_log site1)" 'uplink: state=live' || bs_fail "site1 never synced over CURVE"
bs_pass "site1's sensor syncs with the aggregator over CURVE"

counted()
{
    "$CLI" --socket "$AGG_CTL" --json why "$1" |
        jq '[.keys[] | select(.scope == "orig_subject") | .events] | max // 0'
}
bounce_file "$BS_TMP/a.eml" "Undeliverable: site one wave" "site one wave"
swaks_send site1 --from '<>' --to u@test.example --data "$BS_TMP/a.eml" ||
    bs_fail "bounce refused at site1: $(last_reply)"
wait_for 10 sh -c "[ \$(\"$CLI\" --socket '$AGG_CTL' --json why 'site one wave' |
    jq '[.keys[] | select(.scope == \"orig_subject\") | .events] | max // 0') -eq 1 ]" ||
    bs_fail "site1's event was not counted"
"$CLI" --socket "$AGG_CTL" --json status | jq -e '.sensors[] | select(.site == "site1")' >/dev/null ||
    bs_fail "status does not list site1's sensor"
bs_pass "site1's event accepted and counted, its sensor listed under site1"

id=$("$CLI" --socket "$AGG_CTL" --json decisions add --scope orig_subject --value 'cheap watches' |
    jq -r .decision.id)
wait_log "$(sensor_log site1)" "uplink: decision=$id change=upsert" 5 ||
    bs_fail "decision $id did not reach site1 over CURVE"
bounce_file "$BS_TMP/w.eml" "Undeliverable: cheap watches" "cheap watches"
swaks_send site1 --from '<>' --to u@test.example --data "$BS_TMP/w.eml" &&
    bs_fail "decision $id not enforced at site1"
last_reply | grep -q "550 5.7.1 .*(backstop decision $id)" || bs_fail "wrong reply: $(last_reply)"
bs_pass "a CLI decision reaches site1 over CURVE and is enforced"

# (Z85 keys hold regex characters: match them as fixed strings)
wait_for 5 grep -Fq "zap: refused client_key=$STRANGER " "$BS_TMP/agg.log" ||
    bs_fail "the aggregator did not refuse the unregistered key"
bounce_file "$BS_TMP/s.eml" "Undeliverable: stranger wave" "stranger wave"
swaks_send site2 --from '<>' --to u@test.example --data "$BS_TMP/s.eml" ||
    bs_fail "site2 does not fail open: $(last_reply)"
swaks_send site2 --from '<>' --to u@test.example --data "$BS_TMP/w.eml" ||
    bs_fail "site2 enforced a decision it cannot have: $(last_reply)"
wait_delivered site2 2 || bs_fail "site2's mail not delivered"
# site2's sensor has had status_interval many times over to report; nothing may have landed
# (its refusals are logged once a minute: the count is in status)
wait_for 10 sh -c "[ \$('$CLI' --socket '$AGG_CTL' --json status | jq .handshakes_refused) -ge 3 ]" ||
    bs_fail "site2 stopped retrying"
# at least 3 refusals: per attempt they would be 3 lines (2 if the test took a minute)
[ "$(grep -Fc "zap: refused client_key=$STRANGER " "$BS_TMP/agg.log")" -le 2 ] ||
    bs_fail "one key's refusals were logged at every attempt"
"$CLI" --socket "$AGG_CTL" status | grep -q '^Refused: *[0-9]* CURVE handshakes' ||
    bs_fail "status does not show the refused handshakes"
grep -q 'uplink: state=live' "$(sensor_log site2)" && bs_fail "site2 got a snapshot"
wait_log "$(sensor_log site2)" 'warning: uplink: aggregator=primary refused the CURVE handshake' 5 ||
    bs_fail "site2's sensor does not say its key was refused"
grep -q 'refused the CURVE handshake' "$(sensor_log site1)" && bs_fail "site1 reports a refusal"
"$CLI" --socket "$AGG_CTL" --json status | jq -e '.sensors[] | select(.site == "site2")' >/dev/null &&
    bs_fail "status lists site2"
[ "$(counted 'stranger wave')" = 0 ] || bs_fail "site2's event was counted"
bs_pass "unregistered key: refused by ZAP, not in status, nothing counted, mail flows"
