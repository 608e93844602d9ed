#!/bin/sh
# test_milter_diskfull - the sensor's state_directory is full (a 512 KiB tmpfs of its own;
# needs root to mount it).
#   - A start on the full disk succeeds: the decision cache and the ledger cannot be opened
#     (LevelDB writes as it opens) and are kept in memory, which the log says once each; it
#     used to exit 69, leaving the site's mail unfiltered (or tempfailed, under Postfix's
#     default milter_default_action).
#   - The aggregator's snapshot fills the cache: a bounce its decision covers gets 550 with
#     the decision id; other mail is delivered.
#   - Mail keeps flowing while the disk stays full, and the spool that cannot be written is
#     logged, not once per message.
SRC=${2:?usage: test BUILD_DIR SOURCE_DIR}
. "$SRC/tests/integration/lib.sh"
. "$SRC/tests/integration/agg_lib.sh"
bs_init "$@"
bs_need postfix swaks

CLI="$BS_BUILD/backstop"
d=$(pf_dir site1)
log=$(sensor_log site1)
agg_conf agg
agg_start agg
"$CLI" --socket "$AGG_CTL" decisions add --scope orig_subject --value 'full disk wave' \
    --force >"$BS_TMP/add.out" 2>&1 || bs_fail "decisions add: $(cat "$BS_TMP/add.out")"
id=$(sed -n 's/^Decision \([A-Z0-9]*\) created.*/\1/p' "$BS_TMP/add.out")
[ -n "$id" ] || bs_fail "no decision id in: $(cat "$BS_TMP/add.out")"

sensor_conf site1 "aggregator_events = $AGG_EV" "aggregator_decisions = $AGG_DE" \
    "aggregator_snapshot = $AGG_SN" "event_flush = 10ms" "local_rule = no"
bs_mount "$d/state" -t tmpfs -o size=512k tmpfs || bs_fail "cannot mount a tmpfs"
dd if=/dev/zero of="$d/state/fill" bs=4k 2>/dev/null
sensor_start site1
spid=$(cat "$d/sensor.pid")
for what in 'the decision cache' 'the outbound ledger'; do
    wait_log "$log" "error: milter: cannot open .*: No space left on device: $what is kept in memory only until a restart" 5 ||
        bs_fail "the sensor did not say $what is kept in memory"
done
wait_log "$log" 'uplink: state=live .*decisions=1 ' 10 || bs_fail "the snapshot did not fill the cache"
bs_pass "a start on a full disk runs with the decision cache and ledger in memory"

pf_create site1 "$(sensor_socket site1)"
pf_start site1
bounce_file "$BS_TMP/b1.eml" "Undeliverable: full disk wave" "full disk wave"
swaks_send site1 --from '<>' --to v1@test.example --data "$BS_TMP/b1.eml"
rc=$?
[ $rc = 26 ] || bs_fail "a bounce the decision covers: swaks exit $rc: $(last_reply)"
last_reply | grep -q "550 5.7.1 .*backstop decision $id" || bs_fail "reject without the decision: $(last_reply)"
for i in 1 2 3 4 5; do
    swaks_send site1 --from "s$i@remote.example" --to "n$i@test.example" \
        --header "Subject: full disk wave" || bs_fail "normal mail $i refused: $(last_reply)"
    bounce_file "$BS_TMP/o$i.eml" "Undeliverable: other $i" "other wave $i"
    swaks_send site1 --from '<>' --to "o$i@test.example" --data "$BS_TMP/o$i.eml" ||
        bs_fail "another bounce $i refused: $(last_reply)"
done
wait_delivered site1 10 || bs_fail "delivered $(pf_delivered site1) of 10"
kill -0 "$spid" || bs_fail "the sensor died on a full disk"
bs_pass "on the full disk the decision is enforced and other mail is delivered"

# the aggregator away: the spool cannot be written, mail still flows, the log says so once
agg_kill9 agg
wait_log "$log" 'uplink: state=joining reason=silence' 10 || bs_fail "the sensor did not notice the silence"
for i in 6 7 8 9; do
    bounce_file "$BS_TMP/o$i.eml" "Undeliverable: other $i" "other wave $i"
    swaks_send site1 --from '<>' --to "o$i@test.example" --data "$BS_TMP/o$i.eml" ||
        bs_fail "bounce $i refused with the aggregator away: $(last_reply)"
done
wait_delivered site1 14 || bs_fail "delivered $(pf_delivered site1) of 14"
wait_log "$log" 'warning: uplink: dropped events=[0-9]+ \(spool full or unwritable\)' 5 ||
    bs_fail "events dropped without a word"
n=$(log_count "$log" 'spool full or unwritable')
[ "$n" = 1 ] || bs_fail "the dropped events were logged $n times"
kill -0 "$spid" || bs_fail "the sensor died on a full disk"
bs_pass "with the aggregator away, mail flows and the dropped events are logged once"
