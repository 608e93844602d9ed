#!/bin/sh
# test_agg_resync - a late subscriber gets the snapshot; a subscriber that was away
# while decisions changed catches up with "changes since" its sequence.
SRC=${2:?usage: test BUILD_DIR SOURCE_DIR}
. "$SRC/tests/integration/lib.sh"
. "$SRC/tests/integration/agg_lib.sh"
bs_init "$@"

agg_conf agg
agg_start agg
sub_start early site1 --state "$BS_TMP/early.state"
loadgen --sites 3 --events 600 --subject "wave A" --ips 600
sub_wait early 'wave A$' || bs_fail "early subscriber: no decision for wave A"

# late subscriber: joins after the decision, gets it from the snapshot
sub_start late site2
sub_wait late 'wave A$' || bs_fail "late subscriber: wave A not in its snapshot"
grep -q 'sync full entries=1 ' "$BS_TMP/late.err" || bs_fail "late: no full snapshot: $(cat "$BS_TMP/late.err")"
bs_pass "late subscriber got the snapshot"

# early subscriber goes away; two more decisions happen; it comes back with its state
sub_stop early
seq_before=$(sed -n 's/^epoch [0-9a-f]* seq \([0-9]*\)$/\1/p' "$BS_TMP/early.state")
loadgen --sites 3 --events 600 --subject "wave B" --ips 600
loadgen --sites 3 --events 600 --subject "wave C" --ips 600
sub_wait late 'wave C$' || bs_fail "late subscriber: no decision for wave C"
: >"$BS_TMP/early.err"
sub_start early site1 --state "$BS_TMP/early.state"
sub_wait early 'wave C$' || bs_fail "returning subscriber did not catch up: $(cat "$BS_TMP/early.out")"
sub_wait early 'wave B$' || bs_fail "returning subscriber missed wave B"
grep -q 'sync changes entries=2 ' "$BS_TMP/early.err" ||
    bs_fail "returning subscriber did not use changes-since (seq was $seq_before): $(cat "$BS_TMP/early.err")"
[ "$(sub_count early 'wave A$')" = 1 ] || bs_fail "returning subscriber lost wave A"
bs_pass "returning subscriber resynced with changes since seq $seq_before"

# a subscriber from another epoch (a stale state file) gets a full snapshot
echo "epoch 0000000000000001 seq 99" >"$BS_TMP/stale.state"
sub_start stale site3 --state "$BS_TMP/stale.state"
grep -q 'sync full entries=3 ' "$BS_TMP/stale.err" || bs_fail "stale epoch: no full snapshot: $(cat "$BS_TMP/stale.err")"
bs_pass "another epoch: full snapshot"
