#!/bin/sh
# test_milter_privdrop - `backstop-sensor milter` started as root with
# `user = nobody` opens its socket as root, then drops to nobody before it
# opens its state and reads the files its configuration names: ps shows
# nobody, the state directory belongs to nobody, decisions from the decision
# file are enforced, the ledger is written and read (outbound mail, then a
# bounce quoting it is a ledger hit), a reload works as nobody. An unknown user is a
# configuration error, as -n says: exit 78 with its line, before the socket is opened.
. "$2/tests/integration/lib.sh"
bs_init "$@"
bs_need postfix swaks
id nobody >/dev/null 2>&1 || bs_fail "no user nobody on this system"

d=$(pf_dir site1)
log=$(sensor_log site1)
echo 'orig_subject reject 1h cheap watches' >"$BS_TMP/decisions"
chmod 644 "$BS_TMP/decisions"

sensor_conf site1 "user = no-such-user-$$"
"$BS_SENSOR" milter -f -c "$d/sensor.conf" >"$BS_TMP/nouser.out" 2>&1
st=$?
[ "$st" -eq 78 ] || bs_fail "unknown user: exit $st, wanted 78: $(cat "$BS_TMP/nouser.out")"
grep -q "sensor.conf:6: user no-such-user-$$: no such user" "$BS_TMP/nouser.out" ||
    bs_fail "unknown user not named with its line: $(cat "$BS_TMP/nouser.out")"
[ -e "$d/sensor.sock" ] && bs_fail "the socket was opened for a start that was refused"
bs_pass "an unknown user is refused with exit 78 and its line, as -n refuses it"

sensor_conf site1 "user = nobody" "decision_file = $BS_TMP/decisions" \
    "internal_networks = 127.0.0.2/32"
sensor_start site1
pid=$(cat "$d/sensor.pid")
wait_log "$log" 'milter: running as user=nobody uid=65534' || bs_fail "no privilege drop logged"
user=$(ps -o user= -p "$pid" | tr -d ' ')
[ "$user" = nobody ] || bs_fail "sensor runs as '$user', not nobody"
ruid=$(awk '/^Uid:/ { print $2 }' "/proc/$pid/status")
[ "$ruid" = 65534 ] || bs_fail "real uid is $ruid"
grep -q '^Groups:[[:space:]]*$\|^Groups:[[:space:]]*65534[[:space:]]*$' "/proc/$pid/status" ||
    bs_fail "supplementary groups kept: $(grep '^Groups' "/proc/$pid/status")"
[ "$(stat -c %U "$d/state")" = nobody ] || bs_fail "state directory not handed to nobody"
# the drop is logged before the engine opens its state: the ledger comes a moment later
wait_for 10 test -e "$d/state/ledger" || bs_fail "ledger not created"
[ "$(stat -c %U "$d/state/ledger")" = nobody ] || bs_fail "ledger not created by nobody"
bs_pass "ps shows nobody (real uid too, no root groups); state belongs to nobody"

pf_create site1 "$(sensor_socket site1)"
pf_start site1
swaks_send site1 --from alice@sender.example --to u@test.example --header 'Subject: hello' ||
    bs_fail "normal mail refused: $(last_reply)"
bounce_file "$BS_TMP/b.eml" "Undeliverable: cheap watches" "cheap watches"
swaks_send site1 --from '<>' --to u@test.example --data "$BS_TMP/b.eml" &&
    bs_fail "decision from the decision file not enforced after the drop"
last_reply | grep -q '550 5.7.1 .*(backstop decision F' || bs_fail "wrong reply: $(last_reply)"
mid="legit-$$@test.example"
printf 'From: carol@test.example\nTo: f@test.example\nSubject: cheap watches\nMessage-ID: <%s>\n\nhi\n' \
    "$mid" >"$BS_TMP/out.eml"
swaks_send site1 --local-interface 127.0.0.2 --from carol@test.example --to f@test.example \
    --data "$BS_TMP/out.eml" || bs_fail "outbound mail refused: $(last_reply)"
wait_log "$log" ': outbound=yes ledger=add' || bs_fail "outbound mail not recorded"
bounce_file "$BS_TMP/legit.eml" "Undeliverable: cheap watches" "cheap watches" "legit-$$"
sed -i "s/<legit-$$@spammer.example>/<$mid>/" "$BS_TMP/legit.eml"
# (an operator's file decision still applies to it: the ledger spares only automatic ones)
swaks_send site1 --from '<>' --to carol@test.example --data "$BS_TMP/legit.eml"
wait_log "$log" ': class=bounce .*ledger=hit ' || bs_fail "ledger not written or read as nobody"
grep -E 'error|cannot' "$log" && bs_fail "errors in the sensor log"
bs_pass "mail flows as nobody: decision enforced, ledger written and read"

echo 'orig_subject reject 1h garden party' >>"$BS_TMP/decisions"
kill -HUP "$pid"
wait_log "$log" 'reload: configuration .* loaded' || bs_fail "reload as nobody failed"
bounce_file "$BS_TMP/g.eml" "Undeliverable: garden party" "garden party"
swaks_send site1 --from '<>' --to u@test.example --data "$BS_TMP/g.eml" &&
    bs_fail "decision added before the reload not enforced"
bs_pass "SIGHUP reload works after the drop"
