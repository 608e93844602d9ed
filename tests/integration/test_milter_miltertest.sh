#!/bin/sh
# test_milter_miltertest - tests/milter/*.lua against the real sensor binary
# with miltertest (no MTA): callbacks, replies and malformed input.
. "$2/tests/integration/lib.sh"
bs_init "$@"
bs_need miltertest

mkdir -p "$BS_TMP/m"
echo "orig_subject reject 1h cheap watches" >"$BS_TMP/m/decisions"
cat >"$BS_TMP/m/sensor.conf" <<EOF2
site = mt
sensor_id = mt-s1
milter_socket = unix:$BS_TMP/m/sensor.sock
state_directory = $BS_TMP/m/state
decision_file = $BS_TMP/m/decisions
message_limit = 64k
EOF2
# the filter is started here, not by mt.startfilter, so the EXIT trap stops it
# even when a script fails half-way
for script in "$BS_SRC"/tests/milter/*.lua; do
    echo "--- $(basename "$script")"
    rm -f "$BS_TMP/m/sensor.sock"
    "$BS_SENSOR" milter -f -c "$BS_TMP/m/sensor.conf" >>"$BS_TMP/m/sensor.log" 2>&1 &
    pid=$!
    bs_track $pid
    wait_for 10 test -S "$BS_TMP/m/sensor.sock" || bs_fail "sensor did not start"
    miltertest -s "$script" -D sock="unix:$BS_TMP/m/sensor.sock" >"$BS_TMP/m/out" 2>&1
    rc=$?
    cat "$BS_TMP/m/out"
    [ $rc -eq 0 ] || bs_fail "$(basename "$script") exit $rc"
    grep -q '^FAIL' "$BS_TMP/m/out" && bs_fail "$(basename "$script")"
    kill -0 $pid || bs_fail "the sensor died during $(basename "$script")"
    kill $pid
    wait_for 8 sh -c "! kill -0 $pid" || kill -9 $pid
done
# in a sanitizer build the filter reports leaks and errors at exit
if grep -E 'Sanitizer|runtime error' "$BS_TMP/m/sensor.log"; then
    bs_fail "sanitizer report from the sensor"
fi
bs_pass "miltertest scripts"
