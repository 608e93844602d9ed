#!/bin/sh
# test_agg_ctlsock - the control socket file belongs to one aggregator: a second one
# given the same control_endpoint (another data_dir, other ports) refuses to start and
# leaves the first reachable; a stale file a crash left behind is replaced; an
# aggregator that stops removes the file only if it is still its own.
SRC=${2:?usage: test BUILD_DIR SOURCE_DIR}
. "$SRC/tests/integration/lib.sh"
. "$SRC/tests/integration/agg_lib.sh"
bs_init "$@"

CLI="$BS_BUILD/backstop"
SOCK="$BS_TMP/agg.sock"

# A and B: their own ports and data_dir, one control socket
agg_conf A
agg_conf B
sed -i "s|^control_endpoint = .*|control_endpoint = ipc://$SOCK|" "$BS_TMP/A.conf" "$BS_TMP/B.conf"
agg_start A
"$CLI" --socket "ipc://$SOCK" status >/dev/null 2>&1 || bs_fail "A is not reachable at $SOCK"

"$BS_BUILD/backstop-aggregator" -c "$BS_TMP/B.conf" -f >"$BS_TMP/B.log" 2>&1 &
pid=$!
bs_track $pid
wait_for 10 agg_gone $pid || bs_fail "a second aggregator on A's control socket started"
wait $pid
rc=$?
[ $rc = 69 ] || bs_fail "second aggregator exited $rc, not 69: $(cat "$BS_TMP/B.log")"
grep -q "op=bind endpoint=ipc://$SOCK: error=in use" "$BS_TMP/B.log" ||
    bs_fail "second aggregator did not say the socket is in use: $(cat "$BS_TMP/B.log")"
"$CLI" --socket "ipc://$SOCK" status >"$BS_TMP/out" 2>&1 ||
    bs_fail "A unreachable after the second aggregator gave up: $(cat "$BS_TMP/out")"
bs_pass "a second aggregator on a live control socket exits 69; the first stays reachable"

# a crash leaves the file behind: the next start replaces it
agg_kill9 A
[ -S "$SOCK" ] || bs_fail "kill -9 left no socket file (the stale case is not tested)"
agg_start A
"$CLI" --socket "ipc://$SOCK" status >/dev/null 2>&1 || bs_fail "A not reachable after a restart"
bs_pass "a stale socket file from a crash is replaced"

# the file is taken over while A runs (here: moved away, and B binds the path): A's
# stop leaves B's file alone
mv "$SOCK" "$SOCK.A"
agg_start B
agg_stop A
[ -S "$SOCK" ] || bs_fail "A's stop removed B's socket file"
"$CLI" --socket "ipc://$SOCK" status >/dev/null 2>&1 || bs_fail "B unreachable after A stopped"
agg_stop B
[ -e "$SOCK" ] && bs_fail "B's stop left its own socket file"
bs_pass "a stop removes the socket file only while it is its own"
