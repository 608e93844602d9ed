#!/bin/sh
# test_milter_heartbeat_interval - a real aggregator with heartbeat_interval = 5s
# and a sensor with the default heartbeat_timeout (3 s): the sensor used to take
# each 5 s gap between heartbeats for a dead feed and flap between joining and
# live every interval, with no word. The heartbeat announces its interval; the
# sensor warns once that its timeout is too short, judges silence by 3
# intervals and stays live; killed, the aggregator is still noticed, after
# those 15 s.
SRC=${2:?usage: test BUILD_DIR SOURCE_DIR}
. "$SRC/tests/integration/lib.sh"
. "$SRC/tests/integration/agg_lib.sh"
bs_init "$@"

agg_conf agg "heartbeat_interval = 5s"
agg_start agg
sensor_conf site1 "aggregator_events = $AGG_EV" "aggregator_decisions = $AGG_DE" \
    "aggregator_snapshot = $AGG_SN" "local_rule = no"
grep -q heartbeat_timeout "$(pf_dir site1)/sensor.conf" && bs_fail "the sensor must use the default"
log=$(sensor_log site1)
sensor_start site1
wait_log "$log" 'uplink: state=live aggregator=primary' 10 || bs_fail "the sensor never went live"
wait_log "$log" 'warning: uplink: aggregator=primary heartbeat_interval=5000ms: heartbeat_timeout=3000ms is shorter than 3 of its heartbeats; the feed counts as silent after 15000ms' 10 ||
    bs_fail "no warning about the short heartbeat_timeout: $(grep uplink: "$log")"
bs_pass "the sensor hears the 5 s interval and says once that its 3 s timeout is too short"

# three intervals and more: a flapping sensor would have rejoined three times by then
if wait_log "$log" 'uplink: state=joining reason=[a-rt-z]|uplink: state=joining reason=s[^t]' 16; then
    bs_fail "the sensor left the feed: $(grep 'uplink: state=' "$log")"
fi
[ "$(log_count "$log" 'uplink: state=live')" = 1 ] ||
    bs_fail "live more than once: $(grep 'uplink: state=' "$log")"
[ "$(log_count "$log" 'heartbeat_timeout=3000ms is shorter')" = 1 ] ||
    bs_fail "the warning is repeated: $(grep 'heartbeat_timeout=' "$log")"
bs_pass "heartbeats 5 s apart: the sensor stays live for 16 s (one live line)"

killed=$(date +%s)
agg_kill9 agg
wait_log "$log" 'uplink: state=joining reason=silence' 25 ||
    bs_fail "the dead aggregator was not noticed: $(grep 'uplink: state=' "$log")"
took=$(($(date +%s) - killed))
# 15 s after the last heartbeat, which came up to 5 s before the kill
[ "$took" -ge 9 ] || bs_fail "silence noticed after ${took} s, not 3 intervals (15 s) after a heartbeat"
bs_pass "a dead aggregator is still noticed, after 3 of its intervals (${took} s)"
