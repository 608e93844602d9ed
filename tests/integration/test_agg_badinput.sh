#!/bin/sh
# test_agg_badinput - garbage, truncated, oversized, wrong-version and misdirected
# frames on every socket (events, snapshot, control, the publisher, and raw TCP junk on
# each port) are dropped and counted; the daemon stays up and keeps deciding.
SRC=${2:?usage: test BUILD_DIR SOURCE_DIR}
. "$SRC/tests/integration/lib.sh"
. "$SRC/tests/integration/agg_lib.sh"
bs_init "$@"

agg_conf agg
agg_start agg
CLI="$BS_BUILD/backstop --socket $AGG_CTL"

for k in garbage empty oversize version truncated unexpected multipart badsite future; do
    loadgen --bad "$k"
done
for k in garbage empty oversize version truncated unexpected multipart; do
    "$BS_BUILD/bench_loadgen" -e "$AGG_SN" --socket dealer --bad "$k" || bs_fail "snapshot $k"
    "$BS_BUILD/bench_loadgen" -e "$AGG_CTL" --socket dealer --bad "$k" || bs_fail "control $k"
done
"$BS_BUILD/bench_loadgen" -e "$AGG_DE" --socket sub --bad garbage || bs_fail "sub junk"
for ep in "$AGG_EV" "$AGG_DE" "$AGG_SN"; do
    "$BS_BUILD/bench_loadgen" -e "$ep" --bad rawtcp || bs_fail "raw tcp junk to $ep"
done
kill -0 "$(agg_pid agg)" || bs_fail "the aggregator died of bad input"

# still deciding, and a replayed batch is not counted twice
sub_start s1 site1
loadgen --sites 3 --events 600 --subject "after the junk" --ips 600 --repeat-first
sub_wait s1 'after the junk$' || bs_fail "no decision after bad input"

$CLI status --json >"$BS_TMP/status.json" || bs_fail "backstop status failed"
count() { grep -o "\"$1\": *[0-9]*" "$BS_TMP/status.json" | head -1 | grep -o '[0-9]*$'; }
for reason in garbage empty version unexpected bad_site future duplicate; do
    n=$(count "$reason")
    [ "${n:-0}" -gt 0 ] || bs_fail "drop reason $reason not counted: $(cat "$BS_TMP/status.json")"
done
[ "$(count duplicate)" = 200 ] || bs_fail "duplicate count $(count duplicate), want 200"
[ "$(count behind)" = 0 ] || bs_fail "behind count '$(count behind)', want 0 (a replay is a duplicate)"

# a sensor's events far behind its first one (a spool replayed too late): dedup cannot tell
# whether they were counted, so they are 'behind', not 'duplicate'
loadgen --site site1 --sensor late --events 20 --seq 1000000 --subject "late ahead"
loadgen --site site1 --sensor late --events 20 --seq 1 --subject "late behind"
i=0
while :; do
    $CLI status --json >"$BS_TMP/status.json" || bs_fail "backstop status failed"
    [ "$(count behind)" = 20 ] && break
    i=$((i + 1))
    [ $i -lt 100 ] || bs_fail "behind count '$(count behind)', want 20"
    sleep 0.1
done
[ "$(count duplicate)" = 200 ] || bs_fail "duplicate count $(count duplicate) after late events, want 200"
grep -q 'dropped: reason=garbage socket=events' "$BS_TMP/agg.log" || bs_fail "garbage not logged"
grep -q 'dropped: reason=garbage socket=snapshot' "$BS_TMP/agg.log" ||
    grep -q 'dropped: reason=garbage' "$BS_TMP/agg.log" || bs_fail "snapshot garbage not logged"
[ "$(log_count "$BS_TMP/agg.log" 'dropped: reason=garbage')" -le 3 ] ||
    bs_fail "drops are not rate-limited in the log"
bs_pass "bad input dropped and counted by reason: $(grep -o '"dropped": *{[^}]*}' "$BS_TMP/status.json")"

# one site naming more sensors than the aggregator keeps (SERVER_SITE_SENSORS_MAX, 256):
# the ones past it are dropped as bad_site, and status lists the sensors it keeps
before=$(count bad_site)
i=0
while [ $i -lt 260 ]; do
    loadgen --site many --sensor "m$i" --events 1 --subject "many sensors"
    i=$((i + 1))
done
i=0
while :; do
    $CLI status --json >"$BS_TMP/status.json" || bs_fail "backstop status failed"
    [ "$(count bad_site)" = $((before + 4)) ] && break
    i=$((i + 1))
    [ $i -lt 100 ] || bs_fail "bad_site $(count bad_site), want $((before + 4)) (4 sensors past 256)"
    sleep 0.1
done
n=$(grep -o '"site": *"many"' "$BS_TMP/status.json" | wc -l)
[ "$n" = 256 ] || bs_fail "status lists $n sensors of site many, want 256"
bs_pass "a site's sensors are bounded: past 256 its batches are dropped as bad_site"

$CLI status >/dev/null || bs_fail "text status failed"
kill -0 "$(agg_pid agg)" || bs_fail "the aggregator died"
agg_stop agg
bs_pass "daemon alive after every kind of bad input; clean stop"
