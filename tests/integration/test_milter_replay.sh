#!/bin/sh
# test_milter_replay - backstop-sensor replay classifies message files and
# reports their events as live sensors would: two bounces "from" each of
# three sites make the aggregator decide; normal mail sends no event;
# --dry-run sends nothing; an unreadable path makes the exit status 1.
SRC=${2:?usage: test BUILD_DIR SOURCE_DIR}
. "$SRC/tests/integration/lib.sh"
. "$SRC/tests/integration/agg_lib.sh"
bs_init "$@"

agg_conf agg '[rule fleet_orig]' 'scope = orig_subject' 'window = 10m' 'min_events = 6' \
    'min_sites = 3' 'max_site_share = 0.5' 'ttl = 1h' 'action = reject' 'reach = fleet'
agg_start agg
mkdir -p "$BS_TMP/msgs"
bounce_file "$BS_TMP/msgs/b1.eml" "Undeliverable: replayed wave" "replayed wave"
bounce_file "$BS_TMP/msgs/b2.eml" "Returned mail: replayed wave" "replayed wave"
printf 'From: a@b.example\nSubject: replayed wave\n\nhello\n' >"$BS_TMP/msgs/normal.eml"
printf 'site = unused\nstate_directory = %s/st\naggregator_events = %s\n' "$BS_TMP" "$AGG_EV" \
    >"$BS_TMP/replay.conf"

"$BS_SENSOR" replay -c "$BS_TMP/replay.conf" --site site1 --dry-run "$BS_TMP/msgs" \
    >"$BS_TMP/dry.out" || bs_fail "dry run failed"
grep -q 'b1.eml class=bounce .*orig_subject_key="replayed wave" event=dry-run' "$BS_TMP/dry.out" ||
    bs_fail "dry run output: $(cat "$BS_TMP/dry.out")"
grep -q 'normal.eml class=normal .*event=skipped' "$BS_TMP/dry.out" || bs_fail "normal mail not skipped"
bs_pass "dry run classifies, skips normal mail"

for s in 1 2 3; do
    "$BS_SENSOR" replay -c "$BS_TMP/replay.conf" --site site$s --client-ip 192.0.2.$s \
        --from '<>' "$BS_TMP/msgs" >"$BS_TMP/r$s.out" || bs_fail "replay site$s failed"
done
wait_log "$BS_TMP/agg.log" 'decision=upsert seq=[0-9]+ scope=orig_subject' ||
    bs_fail "the aggregator made no decision from replayed events"
bs_pass "replayed events from three sites make a fleet decision"

# without the decision feed there is no heartbeat to say columns are welcome: rows
grep -q '^replay: events=2 format=rows$' "$BS_TMP/r1.out" || bs_fail "replay summary: $(cat "$BS_TMP/r1.out")"
# with it, the aggregator announces them: the events go as columns and are all counted
CLI="$BS_BUILD/backstop --socket $AGG_CTL"
received() { $CLI status --json | grep -o '"received": *[0-9]*' | head -1 | grep -o '[0-9]*$'; }
before=$(received)
printf 'site = unused\nstate_directory = %s/st\naggregator_events = %s\n' "$BS_TMP" "$AGG_EV" \
    >"$BS_TMP/replay-feed.conf"
printf 'aggregator_decisions = %s\naggregator_snapshot = %s\n' "$AGG_DE" "$AGG_SN" \
    >>"$BS_TMP/replay-feed.conf"
"$BS_SENSOR" replay -c "$BS_TMP/replay-feed.conf" --site site4 --client-ip 2001:db8::4 \
    --from '<>' --all "$BS_TMP/msgs" >"$BS_TMP/r4.out" || bs_fail "replay with the feed failed"
grep -q '^replay: events=3 format=columns$' "$BS_TMP/r4.out" ||
    bs_fail "replay did not send columns: $(cat "$BS_TMP/r4.out")"
wait_for 10 sh -c "[ \$($CLI status --json | grep -o '\"received\": *[0-9]*' | head -1 | grep -o '[0-9]*$') -ge $((before + 3)) ]" ||
    bs_fail "column batch not received: before=$before now=$(received)"
$CLI status --json | grep -q '"garbage": *0' || bs_fail "column batch dropped: $($CLI status --json)"
bs_pass "replay sends columns to an aggregator that announces them; all 3 events received"

if "$BS_SENSOR" replay -c "$BS_TMP/replay.conf" --dry-run "$BS_TMP/nonexistent" >/dev/null; then
    bs_fail "unreadable path exits 0"
fi
bs_pass "unreadable path: exit status 1"
