#!/bin/sh
# test_agg_diskfull - the aggregator's disk fills up and empties again.
#
# The data directory is a 4 MiB tmpfs of its own (a real file system that runs out of
# space; needs root to mount it). A start on the full disk is refused (exit 69) and says
# the disk is full, not that another aggregator may hold the store. With the disk full:
#   - an operator's decision cannot be stored: the CLI says so (exit 70), status says the
#     store is failing, and the decision is published to no one, not even to a sensor
#     asking for a snapshot meanwhile;
#   - the daemon stays up and keeps taking events.
# With room again:
#   - the waiting decision is stored and published by itself;
#   - a decision added then is stored for good: after a clean restart every decision is
#     back with its sequence number, and the next one gets a new number (LevelDB, left
#     alone after a failed write, used to drop every later write of that log unseen);
#   - counts are written again in full.
SRC=${2:?usage: test BUILD_DIR SOURCE_DIR}
. "$SRC/tests/integration/lib.sh"
. "$SRC/tests/integration/agg_lib.sh"
bs_init "$@"

if [ "$(id -u)" != 0 ]; then
    echo "SKIP: needs root to mount a small file system for the data"
    exit 77
fi
bs_mount "$BS_TMP/small" -t tmpfs -o size=4m tmpfs || bs_fail "cannot mount a tmpfs"
data="$BS_TMP/small"
CLI="$BS_BUILD/backstop"

agg_conf agg
sed -i "s|^data_dir = .*|data_dir = $data/db|" "$BS_TMP/agg.conf"

# a start on a full disk is refused, saying so (it used to ask "another aggregator running?")
dd if=/dev/zero of="$data/fill" bs=64k 2>/dev/null
"$BS_BUILD/backstop-aggregator" -c "$BS_TMP/agg.conf" -f >"$BS_TMP/full-start.log" 2>&1
rc=$?
[ $rc = 69 ] || bs_fail "start on a full disk: exit $rc, not 69: $(cat "$BS_TMP/full-start.log")"
grep -q "fatal: cannot open the store in $data/db: no space left on its disk" "$BS_TMP/full-start.log" ||
    bs_fail "start on a full disk does not say why: $(cat "$BS_TMP/full-start.log")"
grep -q 'another aggregator' "$BS_TMP/full-start.log" &&
    bs_fail "start on a full disk blames another aggregator: $(cat "$BS_TMP/full-start.log")"
rm -rf "$data/fill" "$data/db"
bs_pass "a start on a full disk is refused with exit 69 and says the disk is full"

agg_start agg
B="$CLI --socket $AGG_CTL"
pid=$(agg_pid agg)

sub_start early site1
$B decisions add --scope subject --value 'before the disk filled' >/dev/null ||
    bs_fail "decision before the disk filled"
sub_wait early 'before the disk filled$' || bs_fail "first decision not published"

# fill it; the log's last page still takes a few small writes, so decisions go in until
# one cannot be written (words, not numbers: a subject's digits are one key)
dd if=/dev/zero of="$data/fill" bs=64k 2>/dev/null
n=0
while :; do
    n=$((n + 1))
    word=$(echo "$n" | tr 0-9 a-j)
    $B decisions add --scope subject --value "full $word" >"$BS_TMP/out" 2>"$BS_TMP/err"
    rc=$?
    [ $rc = 70 ] && break
    [ $rc = 0 ] || bs_fail "decision on a full disk: exit $rc: $(cat "$BS_TMP/err")"
    [ $n -lt 100 ] || bs_fail "100 decisions stored on a full disk"
done
grep -q 'could not be written' "$BS_TMP/err" || bs_fail "exit 70 without saying why: $(cat "$BS_TMP/err")"
failed="full $word"
$B status >"$BS_TMP/status" || bs_fail "status on a full disk"
grep -q '^Store: *FAILING' "$BS_TMP/status" || bs_fail "status says nothing of the store: $(cat "$BS_TMP/status")"
$B --json status | grep -q '"unstored": *1' || bs_fail "status JSON: no unstored change"
loadgen --sites 3 --events 300 --subject "counted meanwhile" --ips 300
sleep 2
kill -0 "$pid" || bs_fail "the aggregator died of a full disk"
[ "$(sub_count early "$failed\$")" = 0 ] ||
    bs_fail "a decision that was not stored was published"
bs_pass "disk full: the decision is refused with exit 70, status says FAILING, nothing published"

# room again: the waiting decision is stored and published by itself
rm -f "$data/fill"
sub_wait early "$failed\$" 10 || bs_fail "the waiting decision never went out"
$B decisions add --scope subject --value 'after the disk emptied' >/dev/null ||
    bs_fail "decision after the disk emptied"
sub_wait early 'after the disk emptied$' || bs_fail "third decision not published"
i=0
while $B status | grep -q '^Store: *FAILING'; do
    i=$((i + 1))
    [ $i -lt 50 ] || bs_fail "status still says FAILING with room on the disk"
    sleep 0.1
done
keys=$($B --json status | grep -o '"keys": *[0-9]*' | grep -o '[0-9]*$')
bs_pass "room again: the waiting decision went out, the next one too, the store writes"

# a clean restart: everything confirmed is there, and sequence numbers are not given again
agg_stop agg
agg_start agg
$B --json decisions >"$BS_TMP/list.json" || bs_fail "decisions after the restart"
for v in 'before the disk filled' "$failed" 'after the disk emptied'; do
    grep -q "\"value\": *\"$v\"" "$BS_TMP/list.json" ||
        bs_fail "\"$v\" lost at the restart: $(cat "$BS_TMP/list.json")"
done
seq=$($B --json status | grep -o '"seq": *[0-9]*' | head -1 | grep -o '[0-9]*$')
[ "$seq" = $((n + 2)) ] || bs_fail "sequence $seq after the restart, want $((n + 2))"
$B decisions add --scope subject --value 'after the restart' >/dev/null || bs_fail "fourth decision"
seq=$($B --json status | grep -o '"seq": *[0-9]*' | head -1 | grep -o '[0-9]*$')
[ "$seq" = $((n + 3)) ] || bs_fail "the next decision got sequence $seq, want $((n + 3))"
after=$($B --json status | grep -o '"keys": *[0-9]*' | grep -o '[0-9]*$')
[ "$after" = "$keys" ] || bs_fail "keys: $keys before the restart, $after after"
agg_stop agg
bs_pass "restart: every decision confirmed and sequence $((n + 2)) back, the next is $((n + 3)); $keys keys back"
