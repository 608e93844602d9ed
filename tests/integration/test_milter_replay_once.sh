#!/bin/sh
# test_milter_replay_once - issue 4: "it comes back -> the spool is replayed,
# and counts include it once". N bounces arrive through Postfix while the
# aggregator is down and are spooled; the sensor is also restarted (kill -9)
# before the aggregator returns; the aggregator then counts exactly N for the
# wave. The same spool is then replayed a second time (restored from a copy
# and the sensor restarted): the aggregator sees the N events again, drops
# them as duplicates, and its count stays N.
SRC=${2:?usage: test BUILD_DIR SOURCE_DIR}
. "$SRC/tests/integration/lib.sh"
. "$SRC/tests/integration/agg_lib.sh"
bs_init "$@"
bs_need postfix swaks jq

N=5
CLI="$BS_BUILD/backstop"
d=$(pf_dir site1)
log=$(sensor_log site1)
agg_conf agg
agg_start agg
sensor_conf site1 "aggregator_events = $AGG_EV" "aggregator_decisions = $AGG_DE" \
    "aggregator_snapshot = $AGG_SN" "event_flush = 10ms" "local_rule = no" \
    "heartbeat_timeout = 2s"
sensor_start site1 -v
wait_log "$log" 'uplink: state=live' || bs_fail "sensor never synced"
pf_create site1 "$(sensor_socket site1)"
pf_start site1

# counted: events the aggregator holds for the wave's original subject
counted()
{
    "$CLI" --socket "$AGG_CTL" --json why 'replay wave' |
        jq '[.keys[] | select(.scope == "orig_subject") | .events] | max // 0'
}
duplicates()
{
    "$CLI" --socket "$AGG_CTL" --json status | jq '.events.dropped.duplicate'
}
sensor_kill9()
{
    pid=$(cat "$d/sensor.pid")
    kill -9 "$pid"
    wait "$pid" 2>/dev/null
    wait_for 5 sh -c "! kill -0 $pid" || bs_fail "sensor survived kill -9"
}

agg_kill9 agg
wait_log "$log" 'uplink: state=joining reason=silence' 5 || bs_fail "sensor did not notice the silence"
for i in $(seq 1 $N); do
    bounce_file "$BS_TMP/b$i.eml" "Undeliverable: replay wave" "replay wave"
    swaks_send site1 --from '<>' --to "v$i@test.example" --data "$BS_TMP/b$i.eml" ||
        bs_fail "bounce $i refused without the aggregator: $(last_reply)"
done
wait_log "$log" "uplink: spool=put .* held=$N\$" 5 || bs_fail "the $N events were not spooled"
bs_pass "$N bounces delivered and spooled while the aggregator is down"

sensor_kill9
cp -a "$d/state/spool" "$BS_TMP/spool.copy"
sensor_start site1 -v
wait_log "$log" "uplink: spool=found events=$N" || bs_fail "restarted sensor lost its spool"
agg_start agg
wait_log "$log" 'uplink: spool=replayed' 10 || bs_fail "spool not replayed"
wait_for 10 sh -c "[ \$(\"$CLI\" --socket '$AGG_CTL' --json why 'replay wave' |
    jq '[.keys[] | select(.scope == \"orig_subject\") | .events] | max // 0') -ge $N ]" ||
    bs_fail "aggregator counts $(counted), wanted $N"
[ "$(counted)" -eq $N ] || bs_fail "aggregator counts $(counted) after the replay, wanted exactly $N"
bs_pass "aggregator back, sensor restarted in between: the wave counts exactly $N"

# replay the same spool again: every event is a duplicate
dup0=$(duplicates)
sensor_kill9
rm -rf "$d/state/spool"
cp -a "$BS_TMP/spool.copy" "$d/state/spool"
n0=$(log_count "$log" 'uplink: spool=replayed')
sensor_start site1 -v
wait_log "$log" "uplink: spool=found events=$N" || bs_fail "restored spool not found"
wait_for 10 sh -c "[ \$(grep -c 'uplink: spool=replayed' '$log') -gt $n0 ]" ||
    bs_fail "restored spool not replayed"
wait_for 10 sh -c "[ \$(\"$CLI\" --socket '$AGG_CTL' --json status |
    jq '.events.dropped.duplicate') -ge $((dup0 + N)) ]" ||
    bs_fail "the second replay was not seen as $N duplicates (duplicate=$(duplicates), was $dup0)"
[ "$(counted)" -eq $N ] || bs_fail "aggregator counts $(counted) after a duplicate replay, wanted $N"
bs_pass "a second replay of the same events: $N duplicates dropped, the count stays $N"
