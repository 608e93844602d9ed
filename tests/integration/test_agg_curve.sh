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

# an unregistered key pair never gets a batch in (the ZAP handler refuses it)
"$BS_BUILD/backstop-aggregator" --genkey "$BS_TMP/keys/stranger.key" >/dev/null
before=$(count received)
timeout 3 "$BS_BUILD/bench_loadgen" -e "$AGG_EV" --site site1 --sensor x --events 10 \
    --curve-key "$BS_TMP/keys/stranger.key" --server-key "$PUB" 2>/dev/null
[ "$(count received)" = "$before" ] || bs_fail "an unregistered key got events in"
$CLI sites del site3 >/dev/null || bs_fail "sites del"
bs_pass "unregistered key refused"
