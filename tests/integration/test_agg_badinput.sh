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
bs_pass "bad input dropped and counted by reason: $(python3 -c 'import json, sys
print(json.dumps(json.load(open(sys.argv[1]))["events"]["dropped"], separators=(",", ":")))' \
    "$BS_TMP/status.json")"

# one site naming more sensors than the aggregator keeps (SERVER_SITE_SENSORS_MAX, 256),
# all of them recent: the events of the ones past it are dropped as sensors_full (each
# event), logged with the site and the bound, and status lists the sensors it keeps
before=$(count bad_site)
loadgen --site many --sensor m --sensors 258 --events 1 --subject "many sensors"
loadgen --site many --sensor m --sensor-first 258 --sensors 2 --events 2 --subject "many sensors"
i=0
while :; do
    $CLI status --json >"$BS_TMP/status.json" || bs_fail "backstop status failed"
    [ "$(count sensors_full)" = 6 ] && break
    i=$((i + 1))
    [ $i -lt 100 ] || bs_fail "sensors_full $(count sensors_full), want 6 (1+1+2+2 events of 4 sensors past 256)"
    sleep 0.1
done
[ "$(count bad_site)" = "$before" ] || bs_fail "bad_site moved: $(count bad_site), was $before"
n=$(grep -o '"site": *"many"' "$BS_TMP/status.json" | wc -l)
[ "$n" = 256 ] || bs_fail "status lists $n sensors of site many, want 256"
grep -q 'dropped: reason=sensors_full socket=events peer=[^ ]* site=many cap=256' "$BS_TMP/agg.log" ||
    bs_fail "sensors_full not logged with site and cap"
bs_pass "a site's sensors are bounded: past 256 recent ones, its events are dropped as sensors_full"

$CLI status >/dev/null || bs_fail "text status failed"
kill -0 "$(agg_pid agg)" || bs_fail "the aggregator died"
agg_stop agg
bs_pass "daemon alive after every kind of bad input; clean stop"

# a window at max_keys: events whose keys find no room are dropped as refused (not
# silently uncounted), the key updates refused show in status, and the log says so once
agg_conf full "max_keys = 20"
agg_start full
CLI="$BS_BUILD/backstop --socket $AGG_CTL"
loadgen --site s1 --sensor b --events 500 --distinct 500 --ips 500 --subject flood2
jget() { python3 -c "import json,sys; d=json.load(open(sys.argv[1])); print(eval(sys.argv[2]))" "$@"; }
i=0
while :; do
    $CLI status --json >"$BS_TMP/full.json" || bs_fail "backstop status failed"
    [ "$(jget "$BS_TMP/full.json" "d['events']['received']")" = 500 ] && break
    i=$((i + 1))
    [ $i -lt 100 ] || bs_fail "flood not received: $(cat "$BS_TMP/full.json")"
    sleep 0.1
done
refused=$(jget "$BS_TMP/full.json" "d['events']['dropped']['refused']")
counted=$(jget "$BS_TMP/full.json" "d['events']['counted']")
[ "$refused" -gt 0 ] || bs_fail "window full, yet no event dropped as refused: $(cat "$BS_TMP/full.json")"
[ $((refused + counted)) -le 500 ] || bs_fail "refused $refused + counted $counted > 500"
[ "$(jget "$BS_TMP/full.json" "d['window']['keys_refused']")" -gt 0 ] ||
    bs_fail "status shows no keys refused: $(cat "$BS_TMP/full.json")"
[ "$(jget "$BS_TMP/full.json" "d['window']['full']")" -gt 0 ] ||
    bs_fail "status does not say the window was full"
[ "$(jget "$BS_TMP/full.json" "d['window']['max_keys']")" = 20 ] || bs_fail "status lacks max_keys"
grep -q 'window full (max_keys=20): keys not counted' "$BS_TMP/full.log" ||
    bs_fail "a full window is not logged: $(cat "$BS_TMP/full.log")"
loadgen --site s1 --sensor b2 --events 500 --distinct 500 --ips 500 --subject flood3
wait_for 10 sh -c "$CLI status --json | grep -q '\"received\": *1000'" || bs_fail "second flood not received"
[ "$(log_count "$BS_TMP/full.log" 'window full')" = 1 ] || bs_fail "a full window is logged more than once a minute"
$CLI status >"$BS_TMP/full.txt" || bs_fail "text status failed"
grep -q 'refused=' "$BS_TMP/full.txt" || bs_fail "text status shows no refused drops: $(cat "$BS_TMP/full.txt")"
grep -q 'key updates refused' "$BS_TMP/full.txt" || bs_fail "text status shows no keys refused: $(cat "$BS_TMP/full.txt")"
agg_stop full
bs_pass "a full window (max_keys=20) refuses visibly: refused=$refused counted=$counted"

# sensors renamed or redeployed do not lock their site out: once a site's 256 sensors have
# been silent longer than the longest window (2 s here) plus max_future_skew and a bucket,
# a new one takes the place of the one silent longest, whose records are deleted (a
# restart does not bring it back)
agg_conf evict "window_resolution = 1s" "max_future_skew = 1s" "[rule tiny]" "scope = subject" \
    "window = 2s" "min_events = 100000" "min_sites = 1" "reach = fleet"
agg_start evict
CLI="$BS_BUILD/backstop --socket $AGG_CTL"
loadgen --site many --sensor old --sensors 256 --events 1 --subject "old sensors"
wait_for 10 sh -c "$CLI status --json | grep -q '\"received\": *256'" || bs_fail "old sensors not received"
sleep 5 # past the horizon: 2 s window + 1 s skew + 1 s bucket
loadgen --site many --sensor fresh --events 10 --subject "fresh sensor"
wait_for 10 sh -c "$CLI status --json | grep -q '\"received\": *266'" ||
    bs_fail "the new sensor's events were dropped: $($CLI status --json)"
$CLI status --json >"$BS_TMP/evict.json"
[ "$(jget "$BS_TMP/evict.json" "d['events']['dropped']['sensors_full']")" = 0 ] || bs_fail "sensors_full counted"
[ "$(jget "$BS_TMP/evict.json" "d['events']['counted']")" = 266 ] ||
    bs_fail "the new sensor's events were not counted: $(cat "$BS_TMP/evict.json")"
names() { jget "$1" "' '.join(sorted(s['sensor'] for s in d['sensors'] if s['site'] == 'many'))"; }
n=$(names "$BS_TMP/evict.json" | wc -w)
[ "$n" = 256 ] || bs_fail "status lists $n sensors of site many, want 256"
names "$BS_TMP/evict.json" | grep -qw fresh || bs_fail "the new sensor is not listed"
grep -q 'sensor forgotten: site=many sensor="old[0-9]*" .*for="fresh" (site full: 256 sensors)' "$BS_TMP/evict.log" ||
    bs_fail "the eviction is not logged: $(grep sensor "$BS_TMP/evict.log")"
gone=$(sed -n 's/.*sensor forgotten: site=many sensor="\(old[0-9]*\)" .*/\1/p' "$BS_TMP/evict.log")
names "$BS_TMP/evict.json" | grep -qw "$gone" && bs_fail "the forgotten sensor $gone is still listed"
agg_stop evict
agg_start evict
$CLI status --json >"$BS_TMP/evict2.json" || bs_fail "status after restart"
names "$BS_TMP/evict2.json" >"$BS_TMP/names2"
[ "$(wc -w <"$BS_TMP/names2")" = 256 ] || bs_fail "after a restart $(wc -w <"$BS_TMP/names2") sensors of many, want 256"
grep -qw fresh "$BS_TMP/names2" || bs_fail "the new sensor is lost by a restart"
grep -qw "$gone" "$BS_TMP/names2" && bs_fail "the forgotten sensor $gone came back with the restart"
agg_stop evict
bs_pass "a full site's sensor silent past the horizon makes room for a new one ($gone forgotten), across a restart"
