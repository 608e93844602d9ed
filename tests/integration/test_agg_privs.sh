#!/bin/sh
# test_agg_privs - started as root with "user = nobody", the aggregator binds and opens
# its store, then runs as nobody: it still counts, answers the CLI, and a restart (root
# again) reopens the store it wrote as nobody.
SRC=${2:?usage: test BUILD_DIR SOURCE_DIR}
. "$SRC/tests/integration/lib.sh"
. "$SRC/tests/integration/agg_lib.sh"
bs_init "$@"
[ "$(id -u)" = 0 ] || { echo "not root: skip"; exit 77; }

agg_conf agg "user = nobody"
agg_start agg
wait_log "$BS_TMP/agg.log" 'running as user=nobody' 10 || bs_fail "no privilege drop logged"
[ "$(ps -o user= -p "$(agg_pid agg)" | tr -d ' ')" = nobody ] ||
    bs_fail "aggregator runs as $(ps -o user= -p "$(agg_pid agg)")"
owner=$(stat -c %U "$BS_TMP/agg.db")
[ "$owner" = nobody ] || bs_fail "data_dir owned by $owner, not nobody"
owner=$(stat -c %U "$BS_TMP/agg.db/windows")
[ "$owner" = nobody ] || bs_fail "data_dir/windows owned by $owner, not nobody"
bs_pass "runs as nobody; data_dir handed over"

loadgen --sites 3 --events 450 --subject "privs wave" --ips 450
wait_for 10 sh -c "'$BS_BUILD/backstop' --socket '$AGG_CTL' decisions list | grep -q 'privs wave'" ||
    bs_fail "no decision while running as nobody"
bs_pass "as nobody it counts, decides and answers the CLI"

agg_stop agg
agg_start agg
grep -q 'running as user=nobody' "$BS_TMP/agg.log" || bs_fail "second start did not drop"
"$BS_BUILD/backstop" --socket "$AGG_CTL" decisions list | grep -q 'privs wave' ||
    bs_fail "decision lost across a restart of the unprivileged daemon"
bs_pass "restart reopens the store written as nobody"

agg_conf bad "user = no-such-user-backstop"
"$BS_BUILD/backstop-aggregator" -c "$BS_TMP/bad.conf" -f >"$BS_TMP/bad.log" 2>&1
rc=$?
[ $rc = 67 ] || bs_fail "unknown user: exit $rc, want 67 (EX_NOUSER)"
grep -q 'no such user' "$BS_TMP/bad.log" || bs_fail "unknown user: no clear message"
bs_pass "an unknown user is a clear start-up error (67)"
