#!/bin/sh
# test_milter_noaggregator - the on_no_aggregator failure class through a real
# Postfix, with the configured aggregator not running: by default (accept) a
# bounce gets 250; with on_no_aggregator = tempfail a bounce gets 451 4.7.1
# while normal mail still gets 250; once the aggregator is up, the same
# bounce gets 250 there too. Each message's log line says what the MTA was
# told (action=tempfail failure=no_aggregator for the 451). Reconnects meanwhile are counted and logged
# once a minute, not every heartbeat_timeout.
SRC=${2:?usage: test BUILD_DIR SOURCE_DIR}
. "$SRC/tests/integration/lib.sh"
. "$SRC/tests/integration/agg_lib.sh"
bs_init "$@"
bs_need postfix swaks

agg_conf agg # endpoints chosen now, the aggregator starts later
for s in site1 site2; do
    sensor_conf $s "aggregator_events = $AGG_EV" "aggregator_decisions = $AGG_DE" \
        "aggregator_snapshot = $AGG_SN" "local_rule = no"
    [ $s = site1 ] && echo "heartbeat_timeout = 1500ms" >>"$(pf_dir $s)/sensor.conf"
    [ $s = site2 ] && echo "on_no_aggregator = tempfail" >>"$(pf_dir $s)/sensor.conf"
    sensor_start $s
    [ $s = site1 ] && site1_started=$(date +%s)
    pf_create $s "$(sensor_socket $s)"
    pf_start $s
done
grep -q 'on_no_aggregator' "$(pf_dir site1)/sensor.conf" && bs_fail "site1 must use the default"

bounce_file "$BS_TMP/b.eml" "Undeliverable: cheap watches" "cheap watches"
swaks_send site1 --from '<>' --to u@test.example --data "$BS_TMP/b.eml" ||
    bs_fail "default (accept): bounce refused without aggregator: $(last_reply)"
last_reply | grep -q '^<- *250 ' || bs_fail "default: not 250: $(last_reply)"
bs_pass "default on_no_aggregator = accept: 250 with the aggregator down"

swaks_send site2 --from '<>' --to u@test.example --data "$BS_TMP/b.eml" &&
    bs_fail "on_no_aggregator = tempfail: bounce accepted without aggregator"
last_reply | grep -q '451 4.7.1 ' || bs_fail "tempfail: not 451 4.7.1: $(last_reply)"
wait_log "$(sensor_log site2)" 'warning: [0-9A-F]+: failure=no_aggregator action=tempfail count=1' ||
    bs_fail "no_aggregator failure not logged"
# the message's own line says what the MTA was told (it said action=accept)
wait_log "$(sensor_log site2)" ': class=bounce .* action=tempfail failure=no_aggregator rule=' ||
    bs_fail "the bounce's line does not say tempfail: $(grep ': class=bounce' "$(sensor_log site2)")"
[ "$(log_count "$(sensor_log site2)" ': class=bounce .* action=accept')" = 0 ] ||
    bs_fail "a bounce answered 451 is logged as accepted"
swaks_send site2 --from alice@sender.example --to u@test.example --header 'Subject: hello' ||
    bs_fail "tempfail applies to normal mail too: $(last_reply)"
last_reply | grep -q '^<- *250 ' || bs_fail "normal mail: not 250: $(last_reply)"
wait_log "$(sensor_log site2)" ': class=normal .* action=accept rule=' ||
    bs_fail "normal mail's line does not say accept"
bs_pass "on_no_aggregator = tempfail: bounce 451 4.7.1 (logged action=tempfail), normal mail 250"

# site1 retries every 1.5 s, unlogged: give it time for at least two retries (the retries
# themselves leave no trace to wait for until the sensor goes live)
wait_for 10 sh -c "[ \$(( \$(date +%s) - $site1_started )) -ge 4 ]"
agg_start agg
wait_log "$(sensor_log site2)" 'uplink: state=live' 10 || bs_fail "site2 never synced"
swaks_send site2 --from '<>' --to u@test.example --data "$BS_TMP/b.eml" ||
    bs_fail "tempfail with the aggregator up: $(last_reply)"
wait_log "$(sensor_log site2)" ': class=bounce .* action=accept rule=' ||
    bs_fail "the bounce accepted with the aggregator up is not logged action=accept"
bs_pass "aggregator up: the same bounce gets 250 at the tempfail site"

# site1 retried every 1.5 s (the shortest heartbeat_timeout) all along, but logged only its
# first reconnects
wait_log "$(sensor_log site1)" 'uplink: state=live .* retries=([2-9]|[1-9][0-9]+)$' 10 ||
    bs_fail "site1 did not report its retries: $(grep 'state=live' "$(sensor_log site1)")"
# (only lines before it went live: what happens after is not what this checks)
joins=$(awk '/uplink: state=live/ { exit } /uplink: state=joining/ { n++ } END { print n + 0 }' \
    "$(sensor_log site1)")
[ "$joins" -le 2 ] || bs_fail "every reconnect was logged: $joins lines before going live"
bs_pass "reconnects while the aggregator is away are counted, not each logged"
