#!/bin/sh
# test_agg_skip - one site's local decisions spend sequence numbers every other site's
# sensors never see; the aggregator publishes them as SKIPs on F, so those sensors follow
# on without a gap or a resync, and get SKIPs in their changes-since answers too.
SRC=${2:?usage: test BUILD_DIR SOURCE_DIR}
. "$SRC/tests/integration/lib.sh"
. "$SRC/tests/integration/agg_lib.sh"
bs_init "$@"

cli() { "$BS_BUILD/backstop" --socket "$AGG_CTL" "$@"; }
seq_of() { sed -n 's/^epoch [0-9a-f]* seq \([0-9]*\)$/\1/p' "$BS_TMP/$1.out"; }

agg_conf agg
agg_start agg
sub_start one site1
sub_start two site2 --state "$BS_TMP/two.state"

for i in alpha beta gamma; do
    # (site1 has a subscriber but no sensor reporting: a site the aggregator does not know)
    cli decisions add --scope subject --value "local wave $i" --ttl 1h --action reject \
        --reach site --site site1 --reason test --force >/dev/null || bs_fail "local decision $i"
done
cli decisions add --scope subject --value "fleet wave" --ttl 1h --action reject \
    --reach fleet --reason test >/dev/null || bs_fail "fleet decision"
sub_wait two 'fleet wave' || bs_fail "site2 never got the fleet decision"
sub_wait one 'local wave gamma' || bs_fail "site1 never got its local decisions"
[ "$(sub_count two 'local wave')" = 0 ] || bs_fail "site2 holds site1's local decisions"
grep -q 'gap\|behind heartbeat' "$BS_TMP/two.err" &&
    bs_fail "site2 saw a gap: $(cat "$BS_TMP/two.err")"
[ "$(grep -c 'sync ' "$BS_TMP/two.err")" = 1 ] ||
    bs_fail "site2 resynced: $(cat "$BS_TMP/two.err")"
[ "$(seq_of two)" = 4 ] || bs_fail "site2 applied seq $(seq_of two), want 4"
bs_pass "another site's local decisions: SKIPs keep site2's sequence without a resync"

# away while site1 gets more local decisions: the changes-since answer carries SKIPs
sub_stop two
for i in delta epsilon; do
    cli decisions add --scope subject --value "local wave $i" --ttl 1h --action reject \
        --reach site --site site1 --reason test --force >/dev/null || bs_fail "local decision $i"
done
cli decisions add --scope subject --value "fleet wave two" --ttl 1h --action reject \
    --reach fleet --reason test >/dev/null || bs_fail "second fleet decision"
: >"$BS_TMP/two.err"
sub_start two site2 --state "$BS_TMP/two.state"
sub_wait two 'fleet wave two' || bs_fail "site2 did not catch up"
grep -q 'sync changes entries=3 seq=7' "$BS_TMP/two.err" ||
    bs_fail "site2 did not catch up by changes since: $(cat "$BS_TMP/two.err")"
[ "$(sub_count two 'local wave')" = 0 ] || bs_fail "changes since leaked site1's decisions"
bs_pass "changes since: two SKIPs and the fleet decision, nothing of site1's"
