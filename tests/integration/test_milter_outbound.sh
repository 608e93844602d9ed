#!/bin/sh
# test_milter_outbound - outbound_daemons feeds the ledger: mail through a
# second smtpd listener with milter_macro_daemon_name=ORIGINATING, and mail
# submitted with sendmail(1) (pickup, non_smtpd_milters, through a cleanup
# service named PICKUP), is recorded as outbound; a bounce quoting either
# Message-ID is delivered although the local rule's decision matches it,
# while a bounce quoting an unknown Message-ID gets 550. Mail on the normal
# listener is not outbound.
. "$2/tests/integration/lib.sh"
bs_init "$@"
bs_need postfix swaks

d=$(pf_dir site1)
log=$(sensor_log site1)
sensor_conf site1 "outbound_daemons = ORIGINATING, PICKUP" "local_rule_threshold = 2" \
    "ledger_match_recipient = no"
sensor_start site1
pf_create site1 "$(sensor_socket site1)" "non_smtpd_milters = $(sensor_socket site1)"
oport=$(bs_free_port)
pf_add_service site1 "127.0.0.1:$oport inet n - n - - smtpd" \
    "  -o milter_macro_daemon_name=ORIGINATING" \
    "pcleanup unix n - n - 0 cleanup" \
    "  -o milter_macro_daemon_name=PICKUP"
sed -i 's/^pickup .*/& -o cleanup_service_name=pcleanup/' "$d/etc/master.cf"
touch -d '-5 seconds' "$d/etc/master.cf"
pf_start site1
wait_for 10 ss -Htln "sport = :$oport" || bs_fail "the ORIGINATING listener is not up"

# outbound through the submission-style listener
mid1="sub-$$@test.example"
printf 'From: carol@test.example\nTo: friend@test.example\nSubject: cheap watches\nMessage-ID: <%s>\n\nhi\n' \
    "$mid1" >"$BS_TMP/o1.eml"
swaks --server "127.0.0.1:$oport" --helo client.example --from carol@test.example \
    --to friend@test.example --data "$BS_TMP/o1.eml" >"$BS_TMP/o1.out" 2>&1 ||
    bs_fail "outbound mail refused on the ORIGINATING listener: $(cat "$BS_TMP/o1.out")"
wait_log "$log" ': outbound=yes ledger=add from=<carol@test.example> message_id=yes' ||
    bs_fail "mail from the ORIGINATING listener not recorded as outbound"
# outbound through sendmail(1) -> pickup -> cleanup (non_smtpd_milters)
mid2="pickup-$$@test.example"
printf 'From: dave@test.example\nTo: friend@test.example\nSubject: cheap watches\nMessage-ID: <%s>\n\nhi\n' \
    "$mid2" | sendmail -C "$d/etc" -f dave@test.example friend@test.example ||
    bs_fail "sendmail(1) failed"
wait_log "$log" ': outbound=yes ledger=add from=<dave@test.example> message_id=yes' 15 ||
    bs_fail "mail submitted with sendmail(1) not recorded as outbound"
# the normal listener is inbound, whatever the sender claims
swaks_send site1 --from erin@test.example --to u@test.example --header 'Subject: hello' ||
    bs_fail "inbound mail refused: $(last_reply)"
wait_log "$log" ': class=normal .*from=<erin@test.example>' || bs_fail "inbound mail not classified"
grep -q 'ledger=add from=<erin@test.example>' "$log" && bs_fail "inbound mail fed the ledger"
bs_pass "outbound_daemons: ORIGINATING listener and sendmail(1) pickup feed the ledger"

# a wave of bounces about the same subject: the local rule blocks it
for i in 1 2; do
    bounce_file "$BS_TMP/w$i.eml" "Undeliverable: cheap watches" "cheap watches"
    swaks_send site1 --from '<>' --to "v$i@test.example" --data "$BS_TMP/w$i.eml" ||
        bs_fail "bounce $i refused before the threshold: $(last_reply)"
done
wait_log "$log" 'localrule=fire decision=L' || bs_fail "the local rule did not fire"
bounce_file "$BS_TMP/w3.eml" "Undeliverable: cheap watches" "cheap watches"
swaks_send site1 --from '<>' --to carol@test.example --data "$BS_TMP/w3.eml" &&
    bs_fail "a bounce quoting an unknown Message-ID passed the block"
last_reply | grep -q '550 5.7.1 .*(backstop decision L' || bs_fail "wrong reply: $(last_reply)"
bs_pass "the local rule's decision blocks bounces quoting unknown Message-IDs"

n=0
for mid in "$mid1" "$mid2"; do
    n=$((n + 1))
    bounce_file "$BS_TMP/l$n.eml" "Undeliverable: cheap watches" "cheap watches" "legit$n-$$"
    sed -i "s/<legit$n-$$@spammer.example>/<$mid>/" "$BS_TMP/l$n.eml"
    swaks_send site1 --from '<>' --to carol@test.example --data "$BS_TMP/l$n.eml" ||
        bs_fail "legitimate bounce of <$mid> refused: $(last_reply)"
done
[ "$(log_count "$log" ': class=bounce .*ledger=hit action=accept .*spared=L')" -ge 2 ] ||
    bs_fail "legitimate bounces not logged as spared ledger hits"
bs_pass "bounces quoting either outbound Message-ID are delivered despite the decision"
