#!/bin/sh
# test_agg_daemon - backstop-aggregator without -f (common/daemon.c): the
# command returns 0 only once the daemon has bound its endpoints, and the
# daemon keeps running detached (its own session, stdio on /dev/null) until
# SIGTERM; a start-up failure after the fork (an endpoint already bound)
# reaches the caller as the command's exit status (69) with a message.
SRC=${2:?usage: test BUILD_DIR SOURCE_DIR}
. "$SRC/tests/integration/lib.sh"
. "$SRC/tests/integration/agg_lib.sh"
bs_init "$@"

AGG="$BS_BUILD/backstop-aggregator"
agg_conf a
"$AGG" -c "$BS_TMP/a.conf" >"$BS_TMP/a.out" 2>&1
st=$?
[ $st -eq 0 ] || bs_fail "daemon start: exit $st: $(cat "$BS_TMP/a.out")"
# ready before the command returned: the control socket is already there
[ -S "$BS_TMP/a.sock" ] || bs_fail "the command returned before the daemon was ready"
pid=$(pgrep -f -- "-c $BS_TMP/a.conf\$" | head -n 1)
[ -n "$pid" ] || bs_fail "no daemon running"
bs_track "$pid"
[ "$(ps -o sid= -p "$pid" | tr -d ' ')" = "$pid" ] || bs_fail "daemon is not a session leader"
[ "$(readlink "/proc/$pid/fd/2")" = /dev/null ] || bs_fail "daemon stderr is not /dev/null"
bs_pass "without -f: returns 0 once ready, daemon detached"

# the same endpoints again: bind fails in the child, after the fork
"$AGG" -c "$BS_TMP/a.conf" >"$BS_TMP/b.out" 2>&1
st=$?
[ $st -eq 69 ] || bs_fail "second daemon on the same endpoints: exit $st, wanted 69"
grep -q 'start-up failed (status 69)' "$BS_TMP/b.out" ||
    bs_fail "no start-up failure message: $(cat "$BS_TMP/b.out")"
bs_pass "a failure after the fork is the command's exit status (69)"

kill -TERM "$pid"
wait_for 10 sh -c "! kill -0 $pid" || bs_fail "daemon did not stop on SIGTERM"
bs_pass "SIGTERM stops the daemon"
