#!/bin/sh
# test_agg_restart - kill -9 of the aggregator: decisions, sequence, epoch and window
# counts come back from LevelDB; subscribers resync (changes since, from the stored
# log); a lost database means a new epoch and full snapshots.
SRC=${2:?usage: test BUILD_DIR SOURCE_DIR}
. "$SRC/tests/integration/lib.sh"
. "$SRC/tests/integration/agg_lib.sh"
bs_init "$@"

epoch_of() { sed -n 's/.*store: .* epoch=\([0-9a-f]*\) .*/\1/p' "$BS_TMP/agg.log" | sed -n "${1}p"; }
seq_of() { sed -n 's/^epoch [0-9a-f]* seq \([0-9]*\)$/\1/p' "$BS_TMP/$1.out"; }

agg_conf agg
agg_start agg
sub_start live site1
sub_start away site2 --state "$BS_TMP/away.state"
loadgen --sites 3 --events 600 --subject "wave A" --ips 600
sub_wait live 'wave A$' || bs_fail "no decision for wave A"
sub_wait away 'wave A$' || bs_fail "away: no decision for wave A"
sub_stop away

# 300 events of wave R (below the 400 threshold), then a marker decision on the same
# connection: when the marker is decided, wave R has been counted
loadgen --sites 3 --events 300 --subject "wave R" --ips 300 --marker "marker one"
sub_wait live 'marker one$' || bs_fail "no marker decision"
[ "$(sub_count live 'wave R')" = 0 ] || bs_fail "wave R decided below its threshold"
seq1=$(seq_of live)
# a flush cycle that starts after the marker carries wave R's counts to disk (the one
# under way may have started before): wait for two more to end
n=$(log_count "$BS_TMP/agg.log" 'flush: ops=')
wait_for 10 sh -c "[ \$(grep -c 'flush: ops=' '$BS_TMP/agg.log') -gt $((n + 1)) ]" || bs_fail "no flush"

agg_kill9 agg
agg_start agg
grep -Eq "store: .* seq=$seq1 new_log=no decisions=2 " "$BS_TMP/agg.log" ||
    bs_fail "restart did not restore seq $seq1 and 2 decisions: $(grep 'store:' "$BS_TMP/agg.log")"
[ "$(epoch_of 1)" = "$(epoch_of 2)" ] || bs_fail "epoch changed across a restart"
bs_pass "kill -9 and restart: decisions, seq $seq1 and epoch back"

# the counts are back: 150 more events of wave R cross the threshold (300 + 150 >= 400)
loadgen --sites 3 --events 150 --subject "wave R" --ips 150 --seq 1
sub_wait live 'wave R$' || bs_fail "wave R counts were lost in the restart"
[ "$(seq_of live)" = $((seq1 + 1)) ] || bs_fail "sequence did not go on from $seq1: $(seq_of live)"
bs_pass "window counts restored; the live subscriber followed the restarted aggregator"

# the subscriber that was away resyncs with changes since its seq, from the stored log
: >"$BS_TMP/away.err"
sub_start away site2 --state "$BS_TMP/away.state"
sub_wait away 'wave R$' || bs_fail "away subscriber did not catch up"
grep -q 'sync changes entries=' "$BS_TMP/away.err" ||
    bs_fail "away subscriber got no changes-since answer: $(cat "$BS_TMP/away.err")"
[ "$(sub_count away 'marker one$')" = 1 ] || bs_fail "away subscriber missed the marker"
bs_pass "away subscriber resynced with changes since"

# losing the database means a new epoch: subscribers take a full snapshot
agg_stop agg
rm -rf "$BS_TMP/agg.db"
: >"$BS_TMP/live.err"
agg_start agg
[ "$(epoch_of 1)" != "$(epoch_of 3)" ] || bs_fail "a new database kept the epoch"
wait_log "$BS_TMP/live.err" 'epoch changed' 10 || bs_fail "subscriber did not notice the new epoch"
wait_log "$BS_TMP/live.err" 'sync full entries=0 ' 10 || bs_fail "no full snapshot in the new epoch"
wait_for 10 sh -c "[ \$(grep -c '^decision ' '$BS_TMP/live.out') = 0 ]" ||
    bs_fail "subscriber kept the lost epoch's decisions"
bs_pass "lost database: new epoch, full resync"
