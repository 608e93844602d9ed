#!/bin/sh
# test_agg_hostcrash - the host goes down under a running aggregator and takes the
# last published decision with it (it was in the kernel, not yet on disk): after
# the reboot the aggregator keeps its epoch and decisions, moves the sequence on
# by 2^32, and a subscriber that held the lost decision resyncs with a full
# snapshot and drops it.
#
# The crash is made of real parts: the aggregator is frozen (SIGSTOP) and its
# LevelDB copied, as a power failure would leave it; a decision is published
# after that copy; then kill -9 and the copy put back. The "reboot" is a new
# boot id, bind-mounted over /proc/sys/kernel/random/boot_id in a private mount
# namespace (unshare -m), so nothing in the daemon is faked.
#
# Last, an aggregator whose /proc hides boot_id (a proc mounted with subset=pid,
# as systemd's ProcSubset=pid does) cannot tell a host crash from a restart: it
# must say so at start (skipped when this host refuses that mount).
SRC=${2:?usage: test BUILD_DIR SOURCE_DIR}
. "$SRC/tests/integration/lib.sh"
. "$SRC/tests/integration/agg_lib.sh"
bs_init "$@"

if [ "$(id -u)" != 0 ] || ! command -v unshare >/dev/null 2>&1; then
    echo "SKIP: needs root and unshare(1) to give the aggregator another boot id"
    exit 77
fi
echo "00000000-1111-2222-3333-$(od -An -N6 -tx1 /dev/urandom | tr -d ' \n')" >"$BS_TMP/boot_id"
cat >"$BS_TMP/reboot.sh" <<EOS
#!/bin/sh
mount --bind "$BS_TMP/boot_id" /proc/sys/kernel/random/boot_id || exit 70
exec "\$@"
EOS
chmod 755 "$BS_TMP/reboot.sh"
seq_of() { sed -n 's/^epoch [0-9a-f]* seq \([0-9]*\)$/\1/p' "$BS_TMP/$1.out"; }
epoch_of() { sed -n 's/^epoch \([0-9a-f]*\) seq .*/\1/p' "$BS_TMP/$1.out"; }

agg_conf agg
agg_start agg
sub_start live site1
loadgen --sites 3 --events 600 --subject "wave A" --ips 600
sub_wait live 'wave A$' || bs_fail "no decision for wave A"
seq1=$(seq_of live)
epoch1=$(epoch_of live)

# the disk as a power failure would leave it: what the kernel had written, the daemon
# still running (m/clean = 0)
pid=$(agg_pid agg)
kill -STOP "$pid"
cp -a "$BS_TMP/agg.db" "$BS_TMP/agg.db.disk"
kill -CONT "$pid"

loadgen --sites 3 --events 600 --subject "wave B" --ips 600
sub_wait live 'wave B$' || bs_fail "no decision for wave B"
[ "$(seq_of live)" -gt "$seq1" ] || bs_fail "wave B did not move the sequence"
bs_pass "live subscriber holds wave B (seq $(seq_of live)), which the disk copy lacks"

agg_kill9 agg
rm -rf "$BS_TMP/agg.db"
mv "$BS_TMP/agg.db.disk" "$BS_TMP/agg.db"
AGG_WRAP="unshare -m $BS_TMP/reboot.sh"
agg_start agg
AGG_WRAP=""
grep -q 'store: the host went down while the aggregator ran' "$BS_TMP/agg.log" ||
    bs_fail "no warning about the host crash: $(grep 'store:' "$BS_TMP/agg.log")"
jumped=$((seq1 + 4294967296))
grep -Eq "store: .* seq=$jumped new_log=no decisions=1 " "$BS_TMP/agg.log" ||
    bs_fail "restart did not move seq $seq1 on to $jumped: $(grep 'store:' "$BS_TMP/agg.log")"
bs_pass "restart under another boot: seq $seq1 -> $jumped, wave A's decision kept"

# the subscriber sees heartbeats ahead of it, asks for changes since its seq and gets
# a full snapshot: wave B is gone, wave A stays, same epoch
wait_for 15 sh -c "[ \$(grep -c 'wave B' '$BS_TMP/live.out') = 0 ]" ||
    bs_fail "subscriber kept the lost decision: $(cat "$BS_TMP/live.out"; cat "$BS_TMP/live.err")"
grep -q 'sync full' "$BS_TMP/live.err" || bs_fail "no full resync: $(cat "$BS_TMP/live.err")"
[ "$(sub_count live 'wave A$')" = 1 ] || bs_fail "subscriber lost wave A"
[ "$(seq_of live)" = "$jumped" ] || bs_fail "subscriber at seq $(seq_of live), want $jumped"
[ "$(epoch_of live)" = "$epoch1" ] || bs_fail "epoch changed"
bs_pass "subscriber resynced in full: lost decision dropped, wave A kept, epoch $epoch1"

# and numbering goes on from the jump
loadgen --sites 3 --events 600 --subject "wave C" --ips 600
sub_wait live 'wave C$' || bs_fail "no decision for wave C after the jump"
[ "$(seq_of live)" = $((jumped + 1)) ] || bs_fail "seq after the jump: $(seq_of live)"
bs_pass "the next decision is seq $((jumped + 1))"

# without /proc/sys (ProcSubset=pid) a host crash goes unseen: the start says so, once
agg_stop agg
cat >"$BS_TMP/procsubset.sh" <<EOS
#!/bin/sh
mount -t proc -o subset=pid proc /proc || exit 70
[ ! -e /proc/sys/kernel/random/boot_id ] || exit 70
exec "\$@"
EOS
chmod 755 "$BS_TMP/procsubset.sh"
if ! unshare -m --propagation private "$BS_TMP/procsubset.sh" true 2>/dev/null; then
    echo "skip: this host refuses a subset=pid proc mount in a private namespace"
    exit 0
fi
AGG_WRAP="unshare -m --propagation private $BS_TMP/procsubset.sh"
agg_start agg
AGG_WRAP=""
[ "$(grep -c 'store: cannot read /proc/sys/kernel/random/boot_id: .*; a host crash will not be detected' \
    "$BS_TMP/agg.log")" = 1 ] || bs_fail "no warning about the unreadable boot id: $(grep 'store:' "$BS_TMP/agg.log")"
bs_pass "an aggregator that cannot read boot_id warns that a host crash will not be detected"
