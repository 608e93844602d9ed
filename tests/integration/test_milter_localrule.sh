#!/bin/sh
# test_milter_localrule - the seed's per-site rule with no aggregator at all:
# three bounces matching the content rule /^From:.*Mailer.*$/ with one subject
# within the period are delivered, the fourth gets 550 naming the local
# decision; a bounce about another subject and normal mail with the blocked
# subject are delivered; a legitimate bounce (the original was sent from an
# internal network, so it is in the outbound ledger) is delivered; the block
# survives a sensor restart (enforced from the first message).
. "$2/tests/integration/lib.sh"
bs_init "$@"
bs_need postfix swaks

echo '/^From:.*Mailer.*$/ BOUNCE_RULE mailer-from' >"$BS_TMP/rules"
sensor_conf site1 "local_rule_file = $BS_TMP/rules" "local_rule_threshold = 3" \
    "local_rule_period = 10m" "local_block_ttl = 1h" "internal_networks = 127.0.0.2/32"
sensor_start site1
pf_create site1 "$(sensor_socket site1)"
pf_start site1
log=$(sensor_log site1)

for i in 1 2 3; do
    bounce_file "$BS_TMP/w$i.eml" "Undeliverable: cheap watches" "cheap watches"
    swaks_send site1 --from '<>' --to "v$i@test.example" --data "$BS_TMP/w$i.eml" ||
        bs_fail "bounce $i of the wave refused before the threshold: $(last_reply)"
done
wait_log "$log" 'localrule=fire decision=L[0-9A-Z]+ scope=orig_subject count=3' ||
    bs_fail "local rule did not fire at the threshold"
bounce_file "$BS_TMP/w4.eml" "Undeliverable: cheap watches" "cheap watches"
if swaks_send site1 --from '<>' --to v4@test.example --data "$BS_TMP/w4.eml"; then
    bs_fail "bounce after the threshold accepted"
fi
last_reply | grep -Eq '550 5\.7\.1 .*\(backstop decision L[0-9A-Z]+\)' ||
    bs_fail "not a 550 naming the local decision: $(last_reply)"
wait_log "$log" ': class=bounce .* action=reject decision=L[0-9A-Z]+ scope=orig_subject' ||
    bs_fail "the rejected bounce is not logged action=reject with the local decision"
[ "$(log_count "$log" ': class=bounce .* action=accept')" = 3 ] ||
    bs_fail "the three bounces before the threshold are not logged as accepted"
bs_pass "4th matching bounce in the period rejected by the local rule"

bounce_file "$BS_TMP/o.eml" "Undeliverable: garden party" "garden party"
swaks_send site1 --from '<>' --to u@test.example --data "$BS_TMP/o.eml" ||
    bs_fail "bounce about another subject refused: $(last_reply)"
swaks_send site1 --from bob@sender.example --to u@test.example \
    --header 'Subject: cheap watches' || bs_fail "normal mail refused: $(last_reply)"
bs_pass "other subjects and normal mail still delivered"

# a bounce that does not match the content rule does not count, but is blocked
sed 's/^From: Mail Delivery System.*/From: postmaster@mx.reflector.example/' \
    "$BS_TMP/w4.eml" >"$BS_TMP/nr.eml"
if swaks_send site1 --from '<>' --to u@test.example --data "$BS_TMP/nr.eml"; then
    bs_fail "bounce without the rule match but with the blocked subject accepted"
fi
bs_pass "the block applies to bounce-class mail whatever the From"

# outbound mail from an internal network feeds the ledger
mid="legit-$$@test.example"
cat >"$BS_TMP/out.eml" <<EOF2
From: carol@test.example
To: friend@test.example
Subject: cheap watches
Message-ID: <$mid>

hello
EOF2
swaks_send site1 --local-interface 127.0.0.2 --from carol@test.example --to friend@test.example \
    --data "$BS_TMP/out.eml" || bs_fail "outbound mail refused: $(last_reply)"
wait_log "$log" ': outbound=yes ledger=add from=<carol@test.example> message_id=yes' ||
    bs_fail "outbound mail not recorded"
bounce_file "$BS_TMP/legit.eml" "Undeliverable: cheap watches" "cheap watches" "legit-$$"
sed -i "s/<legit-$$@spammer.example>/<$mid>/" "$BS_TMP/legit.eml"
swaks_send site1 --from '<>' --to carol@test.example --data "$BS_TMP/legit.eml" ||
    bs_fail "legitimate bounce refused: $(last_reply)"
wait_log "$log" ': class=bounce .*ledger=hit action=accept .*spared=L' ||
    bs_fail "legitimate bounce not logged as a spared ledger hit"
bs_pass "legitimate bounce of mail the site sent is delivered despite the block"

# restart: the decision (and the ledger) come back from disk
sensor_stop site1
sensor_start site1
if swaks_send site1 --from '<>' --to v5@test.example --data "$BS_TMP/w4.eml"; then
    bs_fail "block forgotten after a sensor restart"
fi
last_reply | grep -q 'backstop decision L' || bs_fail "restart: wrong reply $(last_reply)"
swaks_send site1 --from '<>' --to carol@test.example --data "$BS_TMP/legit.eml" ||
    bs_fail "ledger forgotten after a restart: $(last_reply)"
bs_pass "decision and ledger enforced from the first message after a restart"
