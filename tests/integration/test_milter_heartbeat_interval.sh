#!/bin/sh
# test_milter_heartbeat_interval - a real aggregator with heartbeat_interval = 5s
# and a sensor with the default heartbeat_timeout (3 s): the sensor used to take
# each 5 s gap between heartbeats for a dead feed and flap between joining and
# live every interval, with no word. The heartbeat announces its interval; the
# sensor warns once that its timeout is too short, judges silence by 3
# intervals and stays live; killed, the aggregator is still noticed, after
# those 15 s. An aggregator that dies between its snapshot reply and its first
# heartbeat is noticed after 3 of the intervals its reply announced, not after
# the 10 s a sensor allowed one whose interval it did not know yet.
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

# A new sensor (what a sensor heard is kept across reconnects) waits for an aggregator that
# is not started yet. The aggregator's first heartbeat goes out as it starts, before the
# sensor has subscribed, and the next one 2 s later: killed as soon as the sensor is live,
# it dies between its snapshot reply and its first heartbeat to the sensor. The reply says
# its interval (2 s): the sensor says at once that its timeout is shorter than 3 of them,
# and gives the aggregator up 6 s after the reply. It allowed 10 s when only a heartbeat
# said the interval: 8 s leaves 2 s for a loaded machine either side.
agg_conf agg2 "heartbeat_interval = 2s"
sensor_conf site2 "aggregator_events = $AGG_EV" "aggregator_decisions = $AGG_DE" \
    "aggregator_snapshot = $AGG_SN" "local_rule = no"
log2=$(sensor_log site2)
sensor_start site2
ms() { echo $(($(date +%s%N) / 1000000)); }
agg_start agg2
ready=$(ms)
wait_log "$log2" 'uplink: state=live aggregator=primary' 5 || bs_fail "the second sensor never went live"
killed=$(ms)
agg_kill9 agg2
grep -q 'heartbeat_interval=2000ms: heartbeat_timeout=3000ms is shorter than 3 of its heartbeats; the feed counts as silent after 6000ms' "$log2" ||
    bs_fail "the sensor did not take the interval from the snapshot reply: $(grep uplink: "$log2")"
wait_log "$log2" 'uplink: state=joining reason=silence' 8 ||
    bs_fail "an aggregator dead before its first heartbeat was not noticed within 8 s: $(grep 'uplink: state=' "$log2")"
took=$(($(ms) - killed))
[ "$took" -ge 3000 ] || bs_fail "silence noticed after ${took} ms, not 3 intervals (6 s) after the reply"
bs_pass "dead before its first heartbeat (killed $((killed - ready)) ms after it was ready): noticed after ${took} ms, by the interval of its snapshot reply"
