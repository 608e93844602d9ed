#!/bin/sh
# test_milter_reload - SIGHUP reloads the sensor's configuration through a real
# Postfix: a new reply_text, a new decision in decision_file and a new
# local_rule_file apply to the next message; a setting that needs a restart
# (milter_socket) is logged and kept; several HUPs in a row never stop the
# milter (libmilter would stop on SIGHUP if it got one); a broken config or
# decision file is logged and the running configuration kept; SIGTERM still
# stops cleanly.
. "$2/tests/integration/lib.sh"
bs_init "$@"
bs_need postfix swaks

d=$(pf_dir site1)
log=$(sensor_log site1)
echo 'orig_subject reject 1h cheap watches' >"$BS_TMP/decisions"
echo '/^From:.*Nobody-Matches-This.*$/ BOUNCE_RULE never' >"$BS_TMP/rules1"
echo '/^From:.*Mailer.*$/ BOUNCE_RULE mailer-from' >"$BS_TMP/rules2"
# conf REPLY_TEXT RULES_FILE
conf()
{
    sensor_conf site1 "decision_file = $BS_TMP/decisions" "reply_text = $1" \
        "local_rule_file = $2" "local_rule_threshold = 2"
}
conf "Old refusal" "$BS_TMP/rules1"
sensor_start site1
pid=$(cat "$d/sensor.pid")
pf_create site1 "$(sensor_socket site1)"
pf_start site1

# reloads seen so far (the log line the main thread writes after each one)
reloads()
{
    log_count "$log" 'reload: configuration .* loaded'
}
# hup: sends SIGHUP and waits until one more reload is logged
hup()
{
    n=$(reloads)
    kill -HUP "$pid" || bs_fail "sensor gone before SIGHUP"
    wait_for 10 sh -c "[ \$(grep -c 'reload: configuration .* loaded' '$log') -gt $n ]" ||
        bs_fail "reload not logged"
}

bounce_file "$BS_TMP/w.eml" "Undeliverable: cheap watches" "cheap watches"
swaks_send site1 --from '<>' --to u@test.example --data "$BS_TMP/w.eml" &&
    bs_fail "matching bounce accepted"
last_reply | grep -q '550 5.7.1 Old refusal (backstop decision F' ||
    bs_fail "not the first reply_text: $(last_reply)"
for i in 1 2 3; do
    bounce_file "$BS_TMP/l$i.eml" "Undeliverable: lottery win" "lottery win"
    swaks_send site1 --from '<>' --to "l$i@test.example" --data "$BS_TMP/l$i.eml" ||
        bs_fail "bounce $i refused before the local rule could count it: $(last_reply)"
done
bs_pass "before reload: old reply text, the local rule file matches nothing"

# new reply_text, one more decision, a local rule file that matches, a new socket (restart-only)
echo 'orig_subject reject 1h garden party' >>"$BS_TMP/decisions"
conf "New refusal" "$BS_TMP/rules2"
sed -i "s|^milter_socket = .*|milter_socket = unix:$d/other.sock|" "$d/sensor.conf"
# HUPs back to back (the kernel may merge them into fewer reloads): none stops the milter
kill -HUP "$pid"
kill -HUP "$pid"
hup
kill -0 "$pid" || bs_fail "the sensor died on SIGHUP"
grep -q 'milter: stopping' "$log" && bs_fail "libmilter stopped on SIGHUP"
wait_log "$log" 'reload: needs restart: milter_socket \(running values kept\)' ||
    bs_fail "restart-only change not reported"
test -S "$d/other.sock" && bs_fail "a reload opened the new socket"

swaks_send site1 --from '<>' --to u@test.example --data "$BS_TMP/w.eml" &&
    bs_fail "matching bounce accepted after reload"
last_reply | grep -q '550 5.7.1 New refusal (backstop decision F' ||
    bs_fail "reply_text not reloaded: $(last_reply)"
bounce_file "$BS_TMP/g.eml" "Undeliverable: garden party" "garden party"
swaks_send site1 --from '<>' --to u@test.example --data "$BS_TMP/g.eml" &&
    bs_fail "decision added to decision_file not enforced after reload"
bs_pass "after SIGHUP: new reply_text and new file decision apply, the old socket serves"

for i in 4 5; do
    bounce_file "$BS_TMP/l$i.eml" "Undeliverable: lottery win" "lottery win"
    swaks_send site1 --from '<>' --to "l$i@test.example" --data "$BS_TMP/l$i.eml" ||
        bs_fail "bounce $i refused before the threshold: $(last_reply)"
done
wait_log "$log" 'localrule=fire decision=L[0-9A-Z]+ scope=orig_subject count=2' ||
    bs_fail "the reloaded local_rule_file did not count"
bounce_file "$BS_TMP/l6.eml" "Undeliverable: lottery win" "lottery win"
swaks_send site1 --from '<>' --to l6@test.example --data "$BS_TMP/l6.eml" &&
    bs_fail "local rule from the reloaded file did not block"
bs_pass "the reloaded local_rule_file feeds the local rule"

# a broken configuration: logged, the running one kept
loaded=$(reloads)
cp "$d/sensor.conf" "$BS_TMP/good.conf"
echo "bogus_key = 1" >>"$d/sensor.conf"
kill -HUP "$pid"
wait_log "$log" 'error: reload: .*sensor.conf:[0-9]+: .*bogus_key.*keeping the running configuration' ||
    bs_fail "broken config not reported"
# a broken decision file with a good config: same
cp "$BS_TMP/good.conf" "$d/sensor.conf"
echo 'orig_subject reject' >>"$BS_TMP/decisions"
kill -HUP "$pid"
wait_log "$log" "error: reload: .*decisions:3: .*keeping the running configuration" ||
    bs_fail "broken decision file not reported"
kill -0 "$pid" || bs_fail "the sensor died on a broken reload"
[ "$(reloads)" -eq "$loaded" ] || bs_fail "a broken reload was counted as loaded"
swaks_send site1 --from '<>' --to u@test.example --data "$BS_TMP/g.eml" &&
    bs_fail "a broken reload dropped the decisions"
last_reply | grep -q '550 5.7.1 New refusal' || bs_fail "running config lost: $(last_reply)"
swaks_send site1 --from alice@sender.example --to u@test.example --header 'Subject: hello' ||
    bs_fail "normal mail refused after a broken reload"
bs_pass "broken config or decision file on reload: error logged, running configuration kept"

kill -TERM "$pid"
wait_for 10 sh -c "! kill -0 $pid" || bs_fail "the sensor ignored SIGTERM"
wait "$pid"
st=$?
[ "$st" -eq 0 ] || bs_fail "exit status $st after SIGTERM"
grep -q 'milter: stopping signal=TERM' "$log" || bs_fail "stop not logged"
bs_pass "SIGTERM stops cleanly with status 0"
