#!/bin/sh
# test_milter_daemon - without -f the sensor becomes a daemon: the command
# returns 0 once the daemon serves, the daemon is a session leader without a
# terminal whose parent is not the shell, writes pid_file, logs to syslog
# (nothing more on the terminal), serves mail through Postfix, and on SIGTERM
# stops and removes its pid file. A daemon that cannot start makes the
# command exit with its status.
. "$2/tests/integration/lib.sh"
bs_init "$@"
bs_need postfix swaks

d=$(pf_dir site1)
echo 'orig_subject reject 1h cheap watches' >"$BS_TMP/decisions"

# a start-up failure after the fork (state_directory cannot be made) reaches the caller
sensor_conf site1 "pid_file = $d/bad.pid"
sed -i "s|^state_directory = .*|state_directory = /proc/bs-no-such-dir-$$/state|" "$d/sensor.conf"
"$BS_SENSOR" milter -c "$d/sensor.conf" >"$BS_TMP/bad.out" 2>&1
st=$?
[ "$st" -eq 73 ] || bs_fail "failed daemon start: exit $st, wanted 73: $(cat "$BS_TMP/bad.out")"
grep -q 'start-up failed (status 73)' "$BS_TMP/bad.out" || bs_fail "no start-up failure message"
bs_pass "a daemon that cannot start: the command exits 73 and says so"

sensor_conf site1 "pid_file = $d/daemon.pid" "decision_file = $BS_TMP/decisions"
rm -f "$d/sensor.sock"
"$BS_SENSOR" milter -c "$d/sensor.conf" >"$BS_TMP/start.out" 2>&1
st=$?
[ "$st" -eq 0 ] || bs_fail "daemon start: exit $st: $(cat "$BS_TMP/start.out")"
test -s "$d/daemon.pid" || bs_fail "no pid file"
pid=$(cat "$d/daemon.pid")
bs_track "$pid"
kill -0 "$pid" || bs_fail "daemon $pid not running"
test -S "$d/sensor.sock" || bs_fail "daemon reported ready without its socket"
[ "$(ps -o sid= -p "$pid" | tr -d ' ')" = "$pid" ] || bs_fail "daemon is not a session leader"
[ "$(ps -o tty= -p "$pid" | tr -d ' ')" = "?" ] || bs_fail "daemon has a terminal"
[ "$(ps -o ppid= -p "$pid" | tr -d ' ')" != "$$" ] || bs_fail "daemon is still the shell's child"
bs_pass "detached: session leader $pid, no terminal, pid file written"

pf_create site1 "$(sensor_socket site1)"
pf_start site1
swaks_send site1 --from alice@sender.example --to u@test.example --header 'Subject: hello' ||
    bs_fail "normal mail refused: $(last_reply)"
bounce_file "$BS_TMP/b.eml" "Undeliverable: cheap watches" "cheap watches"
swaks_send site1 --from '<>' --to u@test.example --data "$BS_TMP/b.eml" &&
    bs_fail "the daemon did not enforce its decision file"
last_reply | grep -q '550 5.7.1 .*(backstop decision F' || bs_fail "wrong reply: $(last_reply)"
grep -q 'class=' "$BS_TMP/start.out" && bs_fail "the daemon logs to the terminal, not syslog"
bs_pass "the daemon serves mail (550 from its decision file, 250 for ham), logs to syslog"

kill -TERM "$pid"
wait_for 10 sh -c "! kill -0 $pid" || bs_fail "daemon ignored SIGTERM"
wait_for 2 sh -c "! test -e '$d/daemon.pid'" || bs_fail "pid file left behind"
bs_pass "SIGTERM stops the daemon and removes its pid file"
