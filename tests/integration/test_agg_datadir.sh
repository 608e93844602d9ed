#!/bin/sh
# test_agg_datadir - the data directory taken away while the aggregator runs.
#
# Removed: the aggregator notices within two store checks (5 to 10 s), logs an error
# and writes everything it holds into a new directory there (status: recreated). A file in its
# place: it cannot, and says so (an error line, status LOST with why), while decisions
# are still made and published. The file gone: written anew, the decision made
# meanwhile too. Killed (-9) and started again, it has every decision, the epoch and
# sequence, the allowlist entry, the site and the window counts; the subscriber that
# followed it throughout goes on in the same epoch. As root: a data_dir that is a bind
# mount (systemd's ReadWritePaths=) whose source is removed is refused ("removed but
# still mounted"), and the aggregator goes on with the databases it has: decisions are
# still stored and published, a new subscriber gets its snapshot.
SRC=${2:?usage: test BUILD_DIR SOURCE_DIR}
. "$SRC/tests/integration/lib.sh"
. "$SRC/tests/integration/agg_lib.sh"
bs_init "$@"

CLI="$BS_BUILD/backstop"
export USER=tester
db="$BS_TMP/agg.db"
log="$BS_TMP/agg.log"
store_line() { grep 'store: dir=' "$log" | sed -n "${1}p"; }
field() { sed -n "s/.* $1=\([^ ]*\).*/\1/p"; }

agg_conf agg
agg_start agg
B="$CLI --socket $AGG_CTL"
epoch=$(store_line 1 | field epoch)
sub_start live site1
loadgen --sites 3 --events 600 --subject "wave A" --ips 600
sub_wait live 'wave A$' || bs_fail "no decision for wave A"
$B decisions add --scope subject --value 'before the loss' >/dev/null || bs_fail "decisions add"
$B allow add --type ip --value 192.0.2.77 >/dev/null || bs_fail "allow add"
mkdir "$BS_TMP/keys"
$B sites add acme --key-dir "$BS_TMP/keys" >/dev/null || bs_fail "sites add"
sub_wait live 'before the loss$' || bs_fail "manual decision not published"

# removed: noticed and written anew
rm -rf "$db"
wait_log "$log" "error: store: lost: dir=$db reason=removed: recreated: epoch=$epoch seq=2 decisions=2 allowlist=1 sites=1 sensors=3 " 15 ||
    bs_fail "no recreated line: $(grep 'store:' "$log")"
{ [ -f "$db/CURRENT" ] && [ -f "$db/windows/CURRENT" ]; } || bs_fail "no databases in the new $db"
$B status >"$BS_TMP/status" || bs_fail "status"
grep -q '^Store: *recreated 1 time(s) after its data directory was lost' "$BS_TMP/status" ||
    bs_fail "status says nothing of the recreated store: $(cat "$BS_TMP/status")"
$B --json status >"$BS_TMP/status.json" || bs_fail "status --json"
grep -q '"recreated": *1' "$BS_TMP/status.json" || bs_fail "status JSON: $(cat "$BS_TMP/status.json")"
grep -q '"lost_since_ms": *null' "$BS_TMP/status.json" || bs_fail "status JSON still lost"
bs_pass "data directory removed: noticed, logged and written anew in the same epoch"

# a file in its place: lost, and said so, while decisions go on
rm -rf "$db"
echo "not a directory" >"$db"
wait_log "$log" "error: store: lost: dir=$db reason=replaced since=[0-9]+s detached=no: not recreated: $db is not a directory: left alone; " 15 ||
    bs_fail "no lost line: $(grep 'store:' "$log")"
$B status >"$BS_TMP/status" || bs_fail "status while lost"
grep -q "^Store: *LOST (.*): data_dir replaced; .*not recreated: $db is not a directory" "$BS_TMP/status" ||
    bs_fail "status says nothing of the lost store: $(cat "$BS_TMP/status")"
$B --json status >"$BS_TMP/status.json" || bs_fail "status --json while lost"
grep -q '"lost_reason": *"replaced"' "$BS_TMP/status.json" ||
    bs_fail "status JSON: no lost_reason: $(cat "$BS_TMP/status.json")"
grep -Eq '"lost_since_ms": *[0-9]+' "$BS_TMP/status.json" || bs_fail "status JSON: no lost_since_ms"
$B decisions add --scope subject --value 'during the loss' >/dev/null || bs_fail "decision while lost"
sub_wait live 'during the loss$' || bs_fail "decision while lost not published"
bs_pass "a file in its place: lost, in the log and status (text and JSON); decisions go on"

# the file gone: written anew with what was decided meanwhile
rm -f "$db"
wait_log "$log" "reason=replaced: recreated: epoch=$epoch seq=3 decisions=3 allowlist=1 sites=1 " 15 ||
    bs_fail "not recreated after the file went: $(grep 'store:' "$log")"
# two flush cycles after it carry the window keys and sensors there (the first may have
# started before)
n=$(log_count "$log" 'flush: ops=')
wait_for 10 sh -c "[ \$(grep -c 'flush: ops=' '$log') -gt $((n + 1)) ]" || bs_fail "no flush"
keys=$(grep 'reason=replaced: recreated:' "$log" | field keys)
[ "${keys:-0}" -gt 0 ] || bs_fail "no window keys held"

agg_kill9 agg
agg_start agg
line=$(store_line 2)
[ "$(echo "$line" | field epoch)" = "$epoch" ] || bs_fail "the epoch changed: $line"
echo "$line" | grep -q " seq=3 new_log=no decisions=3 allowlist=1 keys=$keys sensors=3 sites=1" ||
    bs_fail "restart did not find it all (keys=$keys): $line"
$B decisions >"$BS_TMP/decisions" || bs_fail "decisions"
for v in 'wave A' 'before the loss' 'during the loss'; do
    grep -q "$v" "$BS_TMP/decisions" || bs_fail "decision '$v' lost: $(cat "$BS_TMP/decisions")"
done
grep -q 'epoch changed' "$BS_TMP/live.err" && bs_fail "the subscriber saw a new epoch"
bs_pass "kill -9 and restart: decisions, epoch, seq, allowlist, site, sensors and counts back"

# a bind-mounted data_dir whose source is removed: the path leads to the removed
# directory, where nothing can be made; refused before anything is closed
if [ "$(id -u)" != 0 ]; then
    echo "skipped: the bind-mounted data_dir needs root"
    exit 0
fi
agg_stop agg
sub_stop live
mkdir -p "$BS_TMP/host/bound.db"
bs_mount "$BS_TMP/bound.db" --bind "$BS_TMP/host/bound.db" || bs_fail "cannot bind-mount"
agg_conf bound
agg_start bound
B="$CLI --socket $AGG_CTL"
log="$BS_TMP/bound.log"
sub_start bsub site1
$B decisions add --scope subject --value 'before the removal' >/dev/null || bs_fail "decisions add"
sub_wait bsub 'before the removal$' || bs_fail "not published before the removal"
rm -rf "$BS_TMP/host/bound.db"
wait_log "$log" "error: store: lost: dir=$BS_TMP/bound.db reason=removed since=[0-9]+s detached=no: not recreated: $BS_TMP/bound.db was removed but is still mounted here: restart the aggregator" 15 ||
    bs_fail "no refusal: $(grep 'store:' "$log")"
$B decisions add --scope subject --value 'after the removal' >/dev/null ||
    bs_fail "decisions add after the removal: the store is detached"
sub_wait bsub 'after the removal$' || bs_fail "not published after the removal"
$B status >"$BS_TMP/status" || bs_fail "status"
grep -q '^Store: *LOST (.*): data_dir removed; .*was removed but is still mounted here' \
    "$BS_TMP/status" || bs_fail "status: $(cat "$BS_TMP/status")"
grep -q '^Store: *FAILING' "$BS_TMP/status" && bs_fail "status: the store fails: $(cat "$BS_TMP/status")"
"$BS_BUILD/bench_subscriber" -d "$AGG_DE" -s "$AGG_SN" --site site1 --out "$BS_TMP/late.out" \
    >/dev/null 2>"$BS_TMP/late.err" &
bs_track $!
wait_log "$BS_TMP/late.err" 'sync full entries=2 ' 10 ||
    bs_fail "a new subscriber got no snapshot: $(cat "$BS_TMP/late.err")"
bs_pass "bind-mounted data_dir removed at its source: refused, decisions still stored and published"
