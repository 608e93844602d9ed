#!/bin/sh
# NAME
#   bench_milter.sh - Postfix throughput with the Backstop sensor vs a no-op milter
#
# SYNOPSIS
#   sh tests/bench/bench_milter.sh BUILD_DIR SOURCE_DIR [MESSAGES] [SESSIONS] [ROUNDS]
#
# DESCRIPTION
#   Two throwaway Postfix instances on loopback, both discarding mail: one
#   with bench_noop_milter (a libmilter filter that does nothing but asks for
#   the same callbacks) and one with backstop-sensor milter (standalone, local
#   rule on, a decision cache with entries). smtp-source sends MESSAGES
#   (default 2000) over SESSIONS (default 20) to each, alternating ROUNDS
#   (default 3) times, half of the rounds with the null sender (bounce-like,
#   so the sensor's enforce/local-rule/event path runs). Prints msgs/s per
#   round and the ratio sensor/no-op of the medians. Goal: >= 0.95.
#   Needs root, postfix, smtp-source; both instances are removed at the end.
SRC=${2:?usage: bench_milter.sh BUILD_DIR SOURCE_DIR [MESSAGES] [SESSIONS] [ROUNDS]}
. "$SRC/tests/integration/lib.sh"
bs_init "$1" "$2"
bs_need postfix smtp-source
MSGS=${3:-2000}
SESS=${4:-20}
ROUNDS=${5:-3}

noop_sock="$BS_TMP/noop.sock"
"$BS_BUILD/bench_noop_milter" "unix:$noop_sock" >"$BS_TMP/noop.log" 2>&1 &
bs_track $!
wait_for 10 test -S "$noop_sock" || bs_fail "no-op milter did not start"

echo "orig_subject reject 1h some blocked wave" >"$BS_TMP/decisions"
sensor_conf sensor "decision_file = $BS_TMP/decisions"
sensor_start sensor

pf_create noop "unix:$noop_sock" "virtual_transport = discard:" "smtpd_client_restrictions =" \
    "default_process_limit = 100"
pf_create sensor "$(sensor_socket sensor)" "virtual_transport = discard:" \
    "smtpd_client_restrictions =" "default_process_limit = 100"
pf_start noop
pf_start sensor

# run NAME FROM: msgs/s of one smtp-source run against instance NAME
run()
{
    t0=$(date +%s%N)
    smtp-source -s "$SESS" -m "$MSGS" -l 1024 -f "$2" -t u@test.example \
        "127.0.0.1:$(pf_port "$1")" || bs_fail "smtp-source against $1"
    t1=$(date +%s%N)
    echo "$MSGS $t0 $t1" | awk '{ printf "%.1f\n", $1 / (($3 - $2) / 1e9) }'
}

median()
{
    sort -n | awk '{ v[NR] = $1 } END { print (NR % 2) ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2 }'
}

run noop sender@bench.example >/dev/null # warm-up
run sensor sender@bench.example >/dev/null
: >"$BS_TMP/noop.r"
: >"$BS_TMP/sensor.r"
r=1
while [ $r -le "$ROUNDS" ]; do
    from=sender@bench.example
    [ $((r % 2)) -eq 0 ] && from=''
    a=$(run noop "$from")
    b=$(run sensor "$from")
    echo "round $r from=<$from> noop=$a msg/s sensor=$b msg/s"
    echo "$a" >>"$BS_TMP/noop.r"
    echo "$b" >>"$BS_TMP/sensor.r"
    r=$((r + 1))
done
a=$(median <"$BS_TMP/noop.r")
b=$(median <"$BS_TMP/sensor.r")
echo "median noop=$a msg/s sensor=$b msg/s ratio=$(echo "$a $b" | awk '{ printf "%.3f", $2 / $1 }') (goal >= 0.95)"
echo "sensor log lines: $(wc -l <"$(sensor_log sensor)")"
