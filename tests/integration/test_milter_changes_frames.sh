#!/bin/sh
# test_milter_changes_frames - a "changes since" answer longer than one frame
# (the aggregator cuts it every 1024 changes, PROTOCOL.md 4.2) reaches a real
# sensor whole: the sensor is stopped, 1100 decisions are added and an early
# one revoked, and the restarted sensor asks for the changes since its
# sequence, applies all 1101 of them (the revocation is in the second frame)
# and goes live only at the end, at the aggregator's sequence.
SRC=${2:?usage: test BUILD_DIR SOURCE_DIR}
. "$SRC/tests/integration/lib.sh"
. "$SRC/tests/integration/agg_lib.sh"
bs_init "$@"
bs_need jq

agg_conf A
agg_start A
CLI="$BS_BUILD/backstop"
log=$(sensor_log site1)

sensor_conf site1 "aggregator_events = $AGG_EV" "aggregator_decisions = $AGG_DE" \
    "aggregator_snapshot = $AGG_SN" "local_rule = no" "status_interval = 200ms"
sensor_start site1
wait_log "$log" 'uplink: state=live aggregator=primary .* seq=0 ' ||
    bs_fail "sensor never followed the aggregator"
sensor_stop site1

# 1100 keys (keys normalise digits away: letters make them distinct), the values made by
# one awk (a process or two a value took half the test's time); the id of one is kept for
# the revocation
first=$("$CLI" --socket "$AGG_CTL" --json decisions add --scope orig_subject --value "wave d" \
    --ttl 1h | jq -r .decision.id) || bs_fail "decisions add failed"
awk 'BEGIN { for (i = 0; i < 1100; i++) if (i != 3) { v = i ""; s = "";
             for (j = 1; j <= length(v); j++) s = s substr("abcdefghij", substr(v, j, 1) + 1, 1);
             print "wave " s } }' |
    while read -r v; do
        "$CLI" --socket "$AGG_CTL" decisions add --scope orig_subject --value "$v" \
            --ttl 1h </dev/null >/dev/null || { echo "decisions add '$v' failed" >&2; exit 1; }
    done || bs_fail "a decisions add failed"
[ -n "$first" ] && [ "$first" != null ] || bs_fail "no decision id"
"$CLI" --socket "$AGG_CTL" decisions del "$first" >/dev/null || bs_fail "decisions del failed"

mv "$log" "$log.1"
sensor_start site1
wait_log "$log" 'uplink: state=live' 20 || bs_fail "sensor did not go live: $(tail -5 "$log")"
grep -q 'uplink: state=live aggregator=primary epoch=[0-9a-f]\{16\} seq=1101 decisions=1099 ' "$log" ||
    bs_fail "not live at seq 1101 with 1099 decisions: $(grep 'state=live' "$log")"
n=$(grep -c 'change=upsert' "$log")
[ "$n" = 1100 ] || bs_fail "$n upserts applied, not 1100"
grep -q "uplink: decision=$first change=remove" "$log" ||
    bs_fail "the revocation of $first (in the second frame) was not applied"
[ "$(grep -c 'uplink: state=live' "$log")" = 1 ] || bs_fail "live more than once: $(grep state= "$log")"
bs_pass "a changes-since answer of two frames is applied whole: 1100 upserts, the revocation, live at 1101"
