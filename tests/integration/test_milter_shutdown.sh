#!/bin/sh
# test_milter_shutdown - SIGTERM while the MTA is mid-transaction. libmilter
# does not join its worker threads: they keep serving sessions for a while
# after smfi_main returns, so the sensor must not free the state callbacks
# use while one may still run. Four connections each begin a message (MAIL,
# RCPT, a header); the sensor gets SIGTERM; then they go on sending the rest
# and more messages, back to back, until the sensor is gone. The sensor must
# exit 0, having logged its clean stop, within the drain bound, and in a
# sanitizer build leave no report in its log (a callback running on a freed
# engine is a heap-use-after-free there). Driven by miltertest (no MTA); the
# Lua script sends the signal itself, between two commands of a transaction.
. "$2/tests/integration/lib.sh"
bs_init "$@"
bs_need miltertest

m="$BS_TMP/m"
mkdir -p "$m"
cat >"$m/sensor.conf" <<EOF
site = mt
sensor_id = mt-s1
milter_socket = unix:$m/sensor.sock
state_directory = $m/state
EOF

# Once the sensor is gone miltertest exits on the broken connection, so only the line printed
# right after the signal is required of it.
cat >"$m/mid.lua" <<'EOF'
local function check(cond, what)
    if not cond then error(what, 2) end
end
mt.set_timeout(5)
local function begin(conn)
    check(mt.mailfrom(conn, "<alice@sender.example>") == nil, "mailfrom")
    check(mt.rcptto(conn, "<u@test.example>") == nil, "rcptto")
    check(mt.header(conn, "From", "alice@sender.example") == nil, "header")
end
local conns = {}
for i = 1, 4 do
    conns[i] = mt.connect(sock, 40, 0.1)
    check(conns[i], "cannot connect to the filter")
    check(mt.conninfo(conns[i], "mx.example", "192.0.2.7") == nil, "conninfo")
    begin(conns[i])
end
check(os.execute("kill -TERM " .. pid), "kill")
print("ok: signalled mid-transaction")
io.stdout:flush()
local t0 = os.time()
while os.time() - t0 < 20 do
    for i = 1, 4 do
        mt.header(conns[i], "Subject", "Undeliverable: cheap watches")
        mt.bodystring(conns[i], "This message could not be delivered.\r\n")
        mt.eom(conns[i])
        begin(conns[i])
    end
end
EOF

log="$m/sensor.log"
"$BS_SENSOR" milter -f -c "$m/sensor.conf" >"$log" 2>&1 &
pid=$!
bs_track $pid
wait_for 10 test -S "$m/sensor.sock" || bs_fail "sensor did not start"
miltertest -s "$m/mid.lua" -D sock="unix:$m/sensor.sock" -D pid=$pid >"$m/mid.out" 2>&1
cat "$m/mid.out"
grep -q '^ok: signalled mid-transaction' "$m/mid.out" || bs_fail "miltertest did not get that far"
wait_for 15 sh -c "! kill -0 $pid" || bs_fail "sensor still running after the stop"
wait $pid
st=$?
cat "$log"
[ $st -eq 0 ] || bs_fail "sensor exit $st after SIGTERM"
grep -q 'milter: stopping status=0' "$log" || bs_fail "no clean stop logged"
if grep -E 'Sanitizer|runtime error' "$log"; then
    bs_fail "sanitizer report from the sensor"
fi
bs_pass "SIGTERM mid-transaction with traffic going on: clean exit 0"
