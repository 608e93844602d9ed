#!/bin/sh
# test_agg_clisync - a CLI change is on the disk before the operator hears it is done
# (sync_decisions = yes, the default): `allow add`, `allow del`, `sites add`,
# `sites del` and `decisions add` each make the aggregator fsync its LevelDB log
# while serving the request. The daemon is watched with strace(1); with no events
# a write-behind flush has nothing to sync, so every sync seen is the request's.
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

agg_conf agg
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
