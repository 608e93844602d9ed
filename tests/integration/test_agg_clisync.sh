#!/bin/sh
# test_agg_clisync - a CLI change is on the disk before the operator hears it is done
# (sync_decisions = yes, the default): `allow add`, `allow del`, `sites add`,
# `sites del` and `decisions add` each make the aggregator fsync its LevelDB log
# while serving the request. The daemon is watched with strace(1); with no events
# a write-behind flush has nothing to sync, so every sync seen is the request's.
# A request that changes nothing (status, lists, why, top) syncs nothing, even with
# decisions made from events not yet synced: the next flush does that, and a
# monitor polling `backstop status` must not cost the event loop an fsync a poll.
SRC=${2:?usage: test BUILD_DIR SOURCE_DIR}
. "$SRC/tests/integration/lib.sh"
. "$SRC/tests/integration/agg_lib.sh"
bs_init "$@"

if ! command -v strace >/dev/null 2>&1 || [ "$(id -u)" != 0 ]; then
    echo "SKIP: needs strace(1) and root to trace the aggregator"
    exit 77
fi
B="$BS_BUILD/backstop --config $BS_TMP/agg.conf"
export USER=tester

agg_conf agg "flush_interval = 10s"
agg_start agg
pid=$(agg_pid agg)
strace -f -qq -e trace=fsync,fdatasync -o "$BS_TMP/syncs" -p "$pid" 2>"$BS_TMP/strace.err" &
bs_track $!
wait_for 10 sh -c "grep -Eq '^TracerPid:[[:space:]]*[1-9]' /proc/$pid/status" ||
    bs_fail "strace did not attach: $(cat "$BS_TMP/strace.err")"

syncs() { grep -c 'sync(' "$BS_TMP/syncs"; }
mkdir -p "$BS_TMP/keys"
for cmd in "allow add --type ip --value 192.0.2.77" "allow del --type ip --value 192.0.2.77" \
    "allow add --type domain --value example.com" "sites add acme --key-dir $BS_TMP/keys" \
    "sites del acme" "decisions add --scope subject --value Cheap-watches --ttl 2h"; do
    before=$(syncs)
    # shellcheck disable=SC2086 # B and cmd are words
    $B $cmd >"$BS_TMP/out" 2>&1 || bs_fail "$cmd: $(cat "$BS_TMP/out")"
    wait_for 5 sh -c "[ \$(grep -c 'sync(' '$BS_TMP/syncs') -gt $before ]" ||
        bs_fail "no fsync for: $cmd"
    bs_pass "synced: $cmd"
done

# decisions from events, written but not yet synced (the flush is 10 s away and runs
# on the store's writer thread): the loop's own thread must not sync for a reader
sub_start sub1 site1
loadgen --sites 3 --events 600 --subject "Undelivered Mail: unsynced wave" --ip 192.0.2.20
sub_wait sub1 'Undelivered Mail: unsynced wave$' ||
    bs_fail "no decision from the storm: $(cat "$BS_TMP/sub1.out")"
apid=$(agg_pid agg) # the loop's thread (sub_start set $pid)
main_syncs() { grep -c "^$apid .*sync(" "$BS_TMP/syncs"; }
before=$(main_syncs)
for cmd in "status" "decisions list" "allow list" "sites" "top" "why 192.0.2.20"; do
    # shellcheck disable=SC2086 # B and cmd are words
    $B $cmd >"$BS_TMP/out" 2>&1 || bs_fail "$cmd: $(cat "$BS_TMP/out")"
done
[ "$(main_syncs)" = "$before" ] ||
    bs_fail "a read-only request synced: $(grep "^$apid " "$BS_TMP/syncs")"
bs_pass "no fsync for status, lists, top and why"
