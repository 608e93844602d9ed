#!/bin/sh
# test_milter_spool_full - the aggregator is away longer than the spool holds: with
# spool_limit = 3, six bounces arrive through Postfix and are all delivered; the spool
# keeps the newest three, the sensor says in its log that it dropped events, and when the
# aggregator is back it counts exactly the three kept.
SRC=${2:?usage: test BUILD_DIR SOURCE_DIR}
. "$SRC/tests/integration/lib.sh"
. "$SRC/tests/integration/agg_lib.sh"
bs_init "$@"
bs_need postfix swaks jq

CLI="$BS_BUILD/backstop"
log=$(sensor_log site1)
agg_conf agg
agg_start agg
sensor_conf site1 "aggregator_events = $AGG_EV" "aggregator_decisions = $AGG_DE" \
    "aggregator_snapshot = $AGG_SN" "event_flush = 10ms" "local_rule = no" \
    "heartbeat_timeout = 2s" "spool_limit = 3"
sensor_start site1 -v
wait_log "$log" 'uplink: state=live' || bs_fail "sensor never synced"
pf_create site1 "$(sensor_socket site1)"
pf_start site1

agg_kill9 agg
wait_log "$log" 'uplink: state=joining reason=silence' 5 || bs_fail "sensor did not notice the silence"
for i in 1 2 3 4 5 6; do
    bounce_file "$BS_TMP/b$i.eml" "Undeliverable: spool wave" "spool wave"
    swaks_send site1 --from '<>' --to "v$i@test.example" --data "$BS_TMP/b$i.eml" ||
        bs_fail "bounce $i refused without the aggregator: $(last_reply)"
    wait_log "$log" "uplink: spool=put " 5 || bs_fail "bounce $i not spooled"
done
wait_log "$log" 'uplink: dropped events=[0-9]+ \(spool full or unwritable\) spool=3 spool_limit=3' 5 ||
    bs_fail "the sensor dropped spooled events without saying so"
bs_pass "six bounces delivered while the aggregator is away; the full spool's drops are logged"

agg_start agg
wait_log "$log" 'uplink: spool=replayed' 10 || bs_fail "spool not replayed"
counted()
{
    "$CLI" --socket "$AGG_CTL" --json why 'spool wave' |
        jq '[.keys[] | select(.scope == "orig_subject") | .events] | max // 0'
}
wait_for 10 sh -c "[ \$(\"$CLI\" --socket '$AGG_CTL' --json why 'spool wave' |
    jq '[.keys[] | select(.scope == \"orig_subject\") | .events] | max // 0') -ge 3 ]" ||
    bs_fail "aggregator counts $(counted), wanted 3"
sleep 1
[ "$(counted)" -eq 3 ] || bs_fail "aggregator counts $(counted), wanted exactly the 3 kept"
bs_pass "the aggregator back: it counts the 3 events the spool kept"
