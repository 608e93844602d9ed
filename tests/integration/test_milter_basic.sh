#!/bin/sh
# test_milter_basic - a real Postfix with the sensor milter: ham and a bounce
# are both delivered (no decisions yet), the sensor logs each message's class
# with the queue id first, and `milter -n` checks a config.
. "$2/tests/integration/lib.sh"
bs_init "$@"
bs_need postfix swaks

sensor_conf site1
"$BS_SENSOR" milter -n -c "$(pf_dir site1)/sensor.conf" >/dev/null || bs_fail "milter -n rejects a good config"
echo "bogus_key = 1" >"$BS_TMP/bad.conf"
if "$BS_SENSOR" milter -n -c "$BS_TMP/bad.conf" 2>"$BS_TMP/bad.err"; then
    bs_fail "milter -n accepts an unknown key"
fi
grep -q "bad.conf:1" "$BS_TMP/bad.err" || bs_fail "config error does not name FILE:LINE"
# what the start would refuse after loading the file, -n refuses too (78, never 69 at start)
printf '/^From:.*(/ REJECT x\n' >"$BS_TMP/bad.rules"
for line in "internal_networks = 10.0.0.0/8 # x" "local_rule_file = /nonexistent" \
    "decision_file = /nonexistent" "local_rule_file = $BS_TMP/bad.rules" \
    "aggregator_public_key = notakey" "aggregator_decisions = tcp://127.0.0.1:1"; do
    { cat "$(pf_dir site1)/sensor.conf" && echo "$line"; } >"$BS_TMP/bad.conf"
    rc=0
    "$BS_SENSOR" milter -n -c "$BS_TMP/bad.conf" 2>"$BS_TMP/bad.err" >/dev/null || rc=$?
    [ "$rc" -eq 78 ] || bs_fail "milter -n: '$line' exits $rc, not 78"
    grep -q "bad.conf" "$BS_TMP/bad.err" || bs_fail "milter -n: '$line' error names no file"
done
for name in "site = acme corp" "sensor_id = mx 1"; do
    sed "s/^${name%% *} = .*/$name/" "$(pf_dir site1)/sensor.conf" >"$BS_TMP/bad.conf"
    rc=0
    "$BS_SENSOR" milter -n -c "$BS_TMP/bad.conf" 2>"$BS_TMP/bad.err" >/dev/null || rc=$?
    [ "$rc" -eq 78 ] && grep -q "bad.conf:[12]: ${name%% *} " "$BS_TMP/bad.err" ||
        bs_fail "milter -n: '$name' exits $rc: $(cat "$BS_TMP/bad.err")"
done
bs_pass "milter -n checks the config"

sensor_start site1
pf_create site1 "$(sensor_socket site1)"
pf_start site1

swaks_send site1 --from alice@sender.example --to u@test.example \
    --header 'Subject: quarterly report' || bs_fail "ham not accepted: $(last_reply)"
bounce_file "$BS_TMP/b.eml" "Undeliverable: cheap watches" "cheap watches"
swaks_send site1 --from '<>' --to u@test.example --data "$BS_TMP/b.eml" ||
    bs_fail "bounce not accepted: $(last_reply)"
wait_delivered site1 2 || bs_fail "not both messages delivered"
bs_pass "ham and bounce delivered"

log=$(sensor_log site1)
wait_log "$log" '^backstop-sensor\[[0-9]+\]: [0-9A-F]+: class=normal ' || bs_fail "no class=normal line"
wait_log "$log" '^backstop-sensor\[[0-9]+\]: [0-9A-F]+: class=bounce .*from=<> ' ||
    bs_fail "no class=bounce line"
qid=$(sed -n 's/.*: \([0-9A-F]*\): class=bounce .*/\1/p' "$log" | head -n 1)
grep -q "$qid: milter-" "$(pf_log site1)" && bs_fail "postfix logged a milter action for $qid"
grep -q "$qid: message-id=" "$(pf_log site1)" || bs_fail "queue id $qid not the Postfix one"
bs_pass "sensor logs the class with the Postfix queue id first"

# a key from the sender's Subject is one quoted value, its quotes escaped: it forges no field
bounce_file "$BS_TMP/q.eml" 'Undeliverable: pay now" action=accept x="' 'pay now" action=accept x="'
swaks_send site1 --from '<>' --to u@test.example --data "$BS_TMP/q.eml" ||
    bs_fail "bounce with quotes not accepted: $(last_reply)"
wait_log "$log" 'class=bounce .* orig_subject_key="pay now\\" action=accept x="$' ||
    bs_fail "the quoted subject key is not escaped: $(grep 'pay now' "$log")"
bs_pass "a subject key's quotes are escaped in the log line"

# the milter must not have made Postfix complain (negotiation, macros)
if grep -E "warning: .*milter" "$(pf_log site1)"; then
    bs_fail "postfix warns about the milter"
fi
bs_pass "no milter warnings in the maillog"

# malformed and oversized input through Postfix: accepted, the sensor stays up
{
    printf 'From: MAILER-DAEMON@x.example\r\nSubject: Undeliverable: '
    head -c 300000 /dev/zero | tr '\0' 'A'
    printf '\r\nContent-Type: multipart/report; boundary=\r\n\r\n'
    head -c 200000 /dev/urandom | tr -d '\r\n.' | fold -w 900
    printf '\r\n'
} >"$BS_TMP/huge.eml"
swaks_send site1 --from '<>' --to u@test.example --data "$BS_TMP/huge.eml" ||
    bs_fail "huge garbage bounce refused: $(last_reply)"
printf 'From: MAILER-DAEMON@x.example\r\nSubject: failure notice\r\n\r\n' >"$BS_TMP/empty.eml"
swaks_send site1 --from '<>' --to u@test.example --data "$BS_TMP/empty.eml" ||
    bs_fail "empty bounce refused: $(last_reply)"
wait_delivered site1 4 || bs_fail "malformed messages not delivered"
kill -0 "$(cat "$(pf_dir site1)/sensor.pid")" || bs_fail "sensor died on malformed input"
bs_pass "huge header, binary body and empty body accepted; sensor alive"

# XCLIENT (a trusted front end naming the original client): Postfix updates
# the client it reports to milters ({client_addr}), and the sensor keys on it.
# (XFORWARD changes only logging: Postfix's {client_addr} stays the real peer.)
swaks_send site1 --xclient-addr 198.51.100.77 --xclient-name mx.reflector.example \
    --from '<>' --to u@test.example --header 'Subject: Undeliverable: xclient test' ||
    bs_fail "XCLIENT message refused: $(last_reply)"
wait_log "$(sensor_log site1)" ': class=[a-z]+ client=198\.51\.100\.77 ' ||
    bs_fail "sensor did not take the client address from XCLIENT"
bs_pass "client address as the MTA reports it after XCLIENT ({client_addr})"
