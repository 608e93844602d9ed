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
for script in "$BS_SRC"/tests/milter/*.lua; do
    echo "--- $(basename "$script")"
    rm -f "$BS_TMP/m/sensor.sock"
    miltertest -w -s "$script" -D sensor="$BS_SENSOR" -D conf="$BS_TMP/m/sensor.conf" \
        -D sock="unix:$BS_TMP/m/sensor.sock" >"$BS_TMP/m/out" 2>&1
    rc=$?
    cat "$BS_TMP/m/out"
    [ $rc -eq 0 ] || bs_fail "$(basename "$script") exit $rc"
    grep -q '^FAIL' "$BS_TMP/m/out" && bs_fail "$(basename "$script")"
done
bs_pass "miltertest scripts"
