#!/bin/sh
# test_agg_curve - CurveZMQ mode: sites registered with `backstop sites add` report and
# subscribe with their keys; a site that labels its events as other sites is dropped
# (site_mismatch), so it cannot fake a fleet quorum; an unregistered key gets nothing in.
SRC=${2:?usage: test BUILD_DIR SOURCE_DIR}
. "$SRC/tests/integration/lib.sh"
. "$SRC/tests/integration/agg_lib.sh"
bs_init "$@"

mkdir -p "$BS_TMP/keys" && chmod 700 "$BS_TMP/keys"
PUB=$("$BS_BUILD/backstop-aggregator" --genkey "$BS_TMP/server.key") || bs_fail "--genkey failed"
[ ${#PUB} = 40 ] || bs_fail "--genkey printed no Z85 public key: $PUB"
[ "$(stat -c %a "$BS_TMP/server.key")" = 600 ] || bs_fail "server key file is not mode 0600"
agg_conf agg "server_key_file = $BS_TMP/server.key"
agg_start agg
grep -q 'mode=curve' "$BS_TMP/agg.log" || bs_fail "not in CURVE mode"
CLI="$BS_BUILD/backstop --socket $AGG_CTL"
for s in site1 site2 site3; do
    $CLI sites add $s --key-dir "$BS_TMP/keys" >/dev/null || bs_fail "sites add $s"
    [ -f "$BS_TMP/keys/$s.key" ] || bs_fail "no key file for $s"
done
key() { echo "--curve-key $BS_TMP/keys/$1.key --server-key $PUB"; }
bs_pass "CURVE mode, three sites registered"

# shellcheck disable=SC2046
sub_start s1 site1 $(key site1)
# site1 reports as site1, site2 and site3 with its own key: all but its own are dropped
for s in site1 site2 site3; do
    # shellcheck disable=SC2046
    loadgen --site $s --sensor forger --events 200 --subject "forged wave" --ips 200 $(key site1)
done
count() { $CLI status --json | grep -o "\"$1\": *[0-9]*" | head -1 | grep -o '[0-9]*$'; }
wait_for 10 sh -c "[ \$($CLI status --json | grep -o '\"site_mismatch\": *[0-9]*' | grep -o '[0-9]*$') -ge 2 ]" ||
    bs_fail "forged batches not counted as site_mismatch: $($CLI status --json)"
wait_for 10 sh -c "[ \$($CLI status --json | grep -o '\"received\": *[0-9]*' | grep -o '[0-9]*$') -ge 200 ]" ||
    bs_fail "site1's own batch was not received"
[ "$(sub_count s1 'forged wave')" = 0 ] || bs_fail "one site faked a fleet quorum"
bs_pass "a site reporting as other sites is dropped (site_mismatch=$(count site_mismatch))"

# the real three sites, each with its own key: one fleet decision, delivered over CURVE
for s in site1 site2 site3; do
    # shellcheck disable=SC2046
    loadgen --site $s --sensor mx --events 200 --subject "curve wave" --ips 200 $(key $s)
done
sub_wait s1 'subject reject fleet - curve wave$' || bs_fail "no decision over CURVE"
[ "$(sub_count s1 'forged wave')" = 0 ] || bs_fail "forged wave decided after all"
bs_pass "three authenticated sites: fleet decision reaches the CURVE subscriber"

# a site's local decisions reach that site's sensors only (PROTOCOL.md 4.1): site1's key
# subscribing to S/site2/, or to every topic (""), gets nothing of them
# shellcheck disable=SC2046
sub_start s2 site2 $(key site2)
# shellcheck disable=SC2046
sub_start spy site1 $(key site1) --receipts --subscribe "" --subscribe S/site2/
$CLI decisions add --scope ip --value 192.0.2.77 --action reject --site site2 >/dev/null ||
    bs_fail "decisions add --site site2"
sub_wait s2 '192.0.2.77' || bs_fail "site2's own subscriber did not get its local decision"
# the change's SKIP on F follows its update on the same connection: once the spy has it,
# anything of the update it could have had has come
seq=$(sed -n 's/^epoch [0-9a-f]* seq \([0-9]*\)$/\1/p' "$BS_TMP/s2.out")
wait_log "$BS_TMP/spy.receipts" "^U $seq skip " 10 ||
    bs_fail "the spy never got the SKIP of seq $seq: $(cat "$BS_TMP/spy.receipts")"
! grep -q '192.0.2.77' "$BS_TMP/spy.receipts" "$BS_TMP/spy.out" ||
    bs_fail "site1's key read site2's local decision: $(cat "$BS_TMP/spy.receipts")"
grep -q 'dropped: reason=site_mismatch socket=decisions .*key_site=site1' "$BS_TMP/agg.log" ||
    bs_fail "refused subscription not logged"
sub_stop spy
bs_pass "site1's key subscribing to S/site2/ and to everything gets none of site2's local decisions"

# messages that are not subscriptions on the decision socket (a broken or hostile XSUB)
# are counted; a burst of exactly the publisher's per-round budget (64) once kept the next
# sensor to connect from ever being subscribed
for n in 64 128 3; do
    before=$(count unexpected)
    # shellcheck disable=SC2046
    "$BS_BUILD/bench_subscriber" -d "$AGG_DE" --xsub-garbage $n $(key site3) ||
        bs_fail "xsub garbage"
    i=0
    while [ "$(count unexpected)" -lt $((${before:-0} + n)) ] && [ $i -lt 50 ]; do
        sleep 0.1
        i=$((i + 1))
    done
    [ "$(count unexpected)" -ge $((${before:-0} + n)) ] ||
        bs_fail "$n non-subscription messages not counted as unexpected ($(count unexpected))"
    # shellcheck disable=SC2046
    timeout 10 "$BS_BUILD/bench_subscriber" -d "$AGG_DE" -s "$AGG_SN" --site site1 \
        --exit-after 2500 $(key site1) >/dev/null 2>"$BS_TMP/late.err"
    grep -q 'sync full' "$BS_TMP/late.err" ||
        bs_fail "a subscriber after $n garbage messages never synced: $(cat "$BS_TMP/late.err")"
done
grep -q 'dropped: reason=unexpected socket=decisions .*key_site=site3' "$BS_TMP/agg.log" ||
    bs_fail "unexpected messages on the decision socket not logged with their key's site"
bs_pass "non-subscription messages on the decision socket: counted, logged, the next sensor joins"

# a snapshot asked for as another site is refused, and says so (SnapshotReply.refused)
timeout 10 "$BS_BUILD/bench_subscriber" -d "$AGG_DE" -s "$AGG_SN" --site site2 --exit-after 3000 \
    $(key site1) >/dev/null 2>"$BS_TMP/spy2.err"
grep -q 'snapshot refused' "$BS_TMP/spy2.err" ||
    bs_fail "a site-mismatched snapshot was not refused: $(cat "$BS_TMP/spy2.err")"
grep -q 'sync full' "$BS_TMP/spy2.err" && bs_fail "a refused snapshot was taken as a full one"
grep -Eq 'dropped: reason=site_mismatch socket=snapshot peer=[^ ]+ site="site2" key_site=site1' \
    "$BS_TMP/agg.log" || bs_fail "the refusal's log line names no sites: $(grep site_mismatch "$BS_TMP/agg.log")"
bs_pass "a snapshot for site2 with site1's key: refused = true, logged with both sites"

# an unregistered key pair never gets a batch in (the ZAP handler refuses it)
"$BS_BUILD/backstop-aggregator" --genkey "$BS_TMP/keys/stranger.key" >/dev/null
before=$(count received)
timeout 3 "$BS_BUILD/bench_loadgen" -e "$AGG_EV" --site site1 --sensor x --events 10 \
    --curve-key "$BS_TMP/keys/stranger.key" --server-key "$PUB" 2>/dev/null
[ "$(count received)" = "$before" ] || bs_fail "an unregistered key got events in"
$CLI sites del site3 >/dev/null || bs_fail "sites del"
bs_pass "unregistered key refused"
