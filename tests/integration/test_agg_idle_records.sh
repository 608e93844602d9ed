#!/bin/sh
# test_agg_idle_records - window records of keys that went idle while the aggregator was
# stopped are deleted at the next start. Such a key is never in memory again, so no sweep
# deletes its record: it was read (and skipped) at every start, for ever (in production a
# stop longer than the longest window leaked every key's record). The start that finds
# them idle deletes them (logged); the start after reads none.
SRC=${2:?usage: test BUILD_DIR SOURCE_DIR}
. "$SRC/tests/integration/lib.sh"
. "$SRC/tests/integration/agg_lib.sh"
bs_init "$@"

agg_conf agg "window_resolution = 1s"
cat >>"$BS_TMP/agg.conf" <<'EOF'

[rule short]
scope = subject
window = 3s
min_events = 100000
reach = fleet
EOF
agg_start agg
idle() { log_count "$BS_TMP/agg.log" 'window keys went idle while stopped'; }

CLI="$BS_BUILD/backstop --socket $AGG_CTL"
loadgen --events 500 --distinct 500 --subject "stale key"
wait_for 10 sh -c "$CLI --json status | grep -Eq '\"counted\": *500[,}]'" ||
    bs_fail "the 500 events were not counted: $($CLI status)"
agg_stop agg # the last flush writes every key

# stopped for longer than the window (3 s of 1 s buckets)
sleep 6
agg_start agg
grep -Eq 'store: .*: (5[0-9][0-9]|[6-9][0-9][0-9]|[0-9]{4,}) window keys went idle while stopped' \
    "$BS_TMP/agg.log" || bs_fail "the start found no idle window records: $(grep 'store:' "$BS_TMP/agg.log")"
grep -Eq 'store: .* keys=0 ' "$BS_TMP/agg.log" || bs_fail "idle keys were restored"
bs_pass "a start after a stop longer than the window restores no key and deletes their records"

agg_stop agg
agg_start agg
[ "$(idle)" = 1 ] || bs_fail "idle records read again at the next start: $(grep 'went idle' "$BS_TMP/agg.log")"
agg_stop agg
bs_pass "the start after reads none of them"
