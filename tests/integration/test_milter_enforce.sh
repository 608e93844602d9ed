#!/bin/sh
# test_milter_enforce - decisions from the local cache enforced through a real
# Postfix: a matching bounce gets 550 naming the decision; the same subject in
# normal mail is delivered; a tag decision adds X-Backstop; a tempfail decision
# gets 451; an observe decision only logs (each message's log line says what the
# MTA was told); a decision removed from the decision file stops applying after a
# restart. (Ledger and restart persistence: test_milter_localrule.)
. "$2/tests/integration/lib.sh"
bs_init "$@"
bs_need postfix swaks

cat >"$BS_TMP/decisions" <<EOF2
# scope action ttl value
orig_subject reject 1h cheap watches
subject reject 1h cheap watches
orig_subject tag 1h garden party
orig_subject observe 1h lottery win
orig_subject tempfail 1h summer sale
EOF2
sensor_conf site1 "decision_file = $BS_TMP/decisions" "local_rule = no"
sensor_start site1
pf_create site1 "$(sensor_socket site1)"
pf_start site1

bounce_file "$BS_TMP/b1.eml" "Undeliverable: cheap watches" "cheap watches"
if swaks_send site1 --from '<>' --to u@test.example --data "$BS_TMP/b1.eml"; then
    bs_fail "matching bounce accepted"
fi
last_reply | grep -Eq '550 5\.7\.1 .*\(backstop decision F[0-9A-F]+\)' ||
    bs_fail "reply is not 550 5.7.1 with the decision: $(last_reply)"
wait_log "$(pf_log site1)" 'milter-reject: END-OF-MESSAGE .*5\.7\.1 .*backstop decision' ||
    bs_fail "postfix did not log the milter reject"
wait_log "$(sensor_log site1)" ': class=bounce .*action=reject decision=F' || bs_fail "no reject log line"
bs_pass "matching bounce rejected with 550 naming the decision"

swaks_send site1 --from bob@sender.example --to u@test.example \
    --header 'Subject: cheap watches' || bs_fail "normal mail with the subject refused: $(last_reply)"
wait_delivered site1 1 || bs_fail "normal mail not delivered"
wait_log "$(sensor_log site1)" ': class=normal .*action=accept .*spared=F' || bs_fail "no spared log"
bs_pass "normal mail with the blocked subject delivered"

bounce_file "$BS_TMP/b2.eml" "Undeliverable: garden party" "garden party"
swaks_send site1 --from '<>' --to u@test.example --data "$BS_TMP/b2.eml" ||
    bs_fail "tag bounce refused: $(last_reply)"
wait_delivered site1 2 || bs_fail "tagged bounce not delivered"
grep -l '^X-Backstop: decision=F' "$(pf_dir site1)"/mail/sink/new/* >/dev/null ||
    bs_fail "no X-Backstop header on the tagged bounce"
wait_log "$(sensor_log site1)" ': class=bounce .* action=tag decision=F' || bs_fail "no tag log line"
bs_pass "tag decision adds X-Backstop: decision=ID"

bounce_file "$BS_TMP/b4.eml" "Undeliverable: summer sale" "summer sale"
if swaks_send site1 --from '<>' --to u@test.example --data "$BS_TMP/b4.eml"; then
    bs_fail "tempfail bounce accepted"
fi
last_reply | grep -Eq '451 4\.7\.1 .*\(backstop decision F[0-9A-F]+\)' ||
    bs_fail "reply is not 451 4.7.1 with the decision: $(last_reply)"
wait_log "$(sensor_log site1)" ': class=bounce .* action=tempfail decision=F' ||
    bs_fail "no tempfail log line"
bs_pass "tempfail decision: 451 naming the decision, logged action=tempfail"

# an X-Backstop header that arrives with a message is not ours: deleted, on a tagged bounce
# (which then has exactly ours) and on normal mail (which then has none)
{ echo 'X-Backstop: decision=FSPOOF'; cat "$BS_TMP/b2.eml"; } >"$BS_TMP/b2f.eml"
swaks_send site1 --from '<>' --to forged@test.example --data "$BS_TMP/b2f.eml" ||
    bs_fail "tag bounce with a forged header refused: $(last_reply)"
swaks_send site1 --from bob@sender.example --to forged2@test.example \
    --header 'Subject: hello' --add-header 'X-Backstop: decision=F00000000' ||
    bs_fail "normal mail with a forged header refused: $(last_reply)"
wait_delivered site1 4 || bs_fail "the two messages with forged headers not delivered"
f1=$(grep -l '^To: victim' $(grep -l 'forged@test.example' "$(pf_dir site1)"/mail/sink/new/*) | head -1)
f2=$(grep -l 'forged2@test.example' "$(pf_dir site1)"/mail/sink/new/* | head -1)
[ "$(grep -c '^X-Backstop:' "$f1")" = 1 ] && grep -q '^X-Backstop: decision=F[0-9A-F]\{7\}$' "$f1" ||
    bs_fail "tagged bounce: $(grep '^X-Backstop' "$f1" | tr '\n' ' '), want only ours"
grep -q '^X-Backstop:' "$f2" && bs_fail "normal mail kept a forged X-Backstop header"
wait_log "$(sensor_log site1)" ': header=X-Backstop arrived=1 removed=1' || bs_fail "no removal log line"
bs_pass "an arriving X-Backstop header is deleted: a tagged bounce carries only the sensor's"

bounce_file "$BS_TMP/b3.eml" "Undeliverable: lottery win" "lottery win"
swaks_send site1 --from '<>' --to u@test.example --data "$BS_TMP/b3.eml" ||
    bs_fail "observe bounce refused: $(last_reply)"
wait_delivered site1 5 || bs_fail "observed bounce not delivered"
wait_log "$(sensor_log site1)" 'action=accept observe=F' || bs_fail "observe decision not logged"
bs_pass "observe decision only logs"

# restart with an empty decision file
sensor_stop site1
: >"$BS_TMP/decisions"
sensor_start site1
if swaks_send site1 --from '<>' --to u@test.example --data "$BS_TMP/b1.eml"; then
    # the decision file is now empty: file decisions are replaced, not kept
    bs_pass "emptied decision file drops its decisions"
else
    bs_fail "a decision removed from the file is still enforced: $(last_reply)"
fi
