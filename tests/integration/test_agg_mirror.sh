#!/bin/sh
# test_agg_mirror - two real aggregators as a failover pair (PROTOCOL.md 4.6), in CURVE
# mode, each naming the other as its peer: every decision one makes, the other holds
# too, and the two keep the same allowlist and sites (PROTOCOL.md 4.7). Sites
# registered on A authenticate on B with the same key; a storm counted by A makes a
# fleet decision that a subscriber of B holds within seconds (marked mirrored on B
# only); an allowlist entry added on B revokes it on both and reaches A's allowlist, so
# A no longer counts the wave; its removal on A reaches B; with B killed, a decision
# revoked and one added on A, a site removed and an allowlist entry added on A reach B
# when it comes back; blocks on one key made while the two were apart become one, which one
# revocation ends; A, back with an empty data directory, takes its decisions, sites
# and allowlist back from B, which kept them; a third aggregator whose key A does not
# know as its peer gets nothing; bad peer settings are refused at -n.
SRC=${2:?usage: test BUILD_DIR SOURCE_DIR}
. "$SRC/tests/integration/lib.sh"
. "$SRC/tests/integration/agg_lib.sh"
bs_init "$@"
bs_need jq

AGG="$BS_BUILD/backstop-aggregator"
PUB_A=$("$AGG" --genkey "$BS_TMP/a.key") || bs_fail "--genkey failed"
PUB_B=$("$AGG" --genkey "$BS_TMP/b.key") || bs_fail "--genkey failed"
"$AGG" --genkey "$BS_TMP/c.key" >/dev/null || bs_fail "--genkey failed"
agg_conf A "server_key_file = $BS_TMP/a.key"
A_EV=$AGG_EV A_DE=$AGG_DE A_SN=$AGG_SN A_CTL=$AGG_CTL
agg_conf B "server_key_file = $BS_TMP/b.key" "peer_decisions = $A_DE" \
    "peer_snapshot = $A_SN" "peer_public_key = $PUB_A"
B_DE=$AGG_DE B_SN=$AGG_SN B_CTL=$AGG_CTL
printf 'peer_decisions = %s\npeer_snapshot = %s\npeer_public_key = %s\n' \
    "$B_DE" "$B_SN" "$PUB_B" >>"$BS_TMP/A.conf"
agg_start A
agg_start B
A="$BS_BUILD/backstop --socket $A_CTL"
B="$BS_BUILD/backstop --socket $B_CTL"

# peer_state CLI: the state of its peer follower
peer_state()
{
    $1 --json status | jq -r '.peer.state'
}
# holds CLI VALUE: the ids of the active decisions on VALUE
holds()
{
    $1 --json decisions list | jq -r --arg v "$2" '.decisions[] | select(.value == $v) | .id'
}
# mirrored CLI ID: true when the decision's latest change came from the peer
mirrored()
{
    $1 --json decisions show "$2" | jq -r '.decision.mirrored'
}
wait_for 10 sh -c "[ \"\$($A --json status | jq -r .peer.state)\" = live ] &&
    [ \"\$($B --json status | jq -r .peer.state)\" = live ]" ||
    bs_fail "the peers never went live: A=$(peer_state "$A") B=$(peer_state "$B")"
$B status | grep -q "^Peer: *live $A_DE," || bs_fail "B's status shows no live peer: $($B status)"
bs_pass "A and B follow each other over CURVE"

mkdir -p "$BS_TMP/ka" && chmod 700 "$BS_TMP/ka"
for s in site1 site2 site3; do
    $A sites add $s --key-dir "$BS_TMP/ka" >/dev/null || bs_fail "sites add $s on A"
done
# sites CLI: the registered sites as "name key" lines, sorted
sites()
{
    $1 --json sites | jq -r '.sites[] | select(.registered) | "\(.name) \(.public_key)"' | sort
}
# allowed CLI: the allowlist as "type value who" lines, sorted
allowed()
{
    $1 --json allow list | jq -r '.allowlist[] | "\(.type) \(.value) \(.who)"' | sort
}
# B registers the sites with the keys A made for them: each sensor's one key file works
# with both
wait_for 10 sh -c "[ \"\$($A --json sites | jq -c '[.sites[] | select(.registered) | [.name, .public_key]] | sort')\" = \
    \"\$($B --json sites | jq -c '[.sites[] | select(.registered) | [.name, .public_key]] | sort')\" ]" ||
    bs_fail "B's sites are not A's: A=$(sites "$A") B=$(sites "$B")"
[ "$(sites "$B" | wc -l)" = 3 ] || bs_fail "B has not 3 sites: $(sites "$B")"
grep -q 'shared: site add text="site1" key=yes .*from=peer' "$BS_TMP/B.log" ||
    bs_fail "B logged no site from the peer"
bs_pass "sites registered on A are B's, with the same keys"
AGG_DE=$B_DE AGG_SN=$B_SN
# shellcheck disable=SC2086
sub_start sB site1 --curve-key "$BS_TMP/ka/site1.key" --server-key $PUB_B
AGG_EV=$A_EV
for s in site1 site2 site3; do
    loadgen --site $s --sensor mx --events 200 --subject "mirror wave" --ips 200 \
        --curve-key "$BS_TMP/ka/$s.key" --server-key "$PUB_A"
done
sub_wait sB 'subject reject fleet - mirror wave$' ||
    bs_fail "B's subscriber never got A's decision: $(cat "$BS_TMP/sB.out")"
id=$(holds "$A" 'mirror wave')
[ -n "$id" ] || bs_fail "A holds no decision on the wave"
[ "$(holds "$B" 'mirror wave')" = "$id" ] || bs_fail "B holds another id than A's $id"
[ "$(mirrored "$A" "$id")" = false ] || bs_fail "A marks its own decision mirrored"
[ "$(mirrored "$B" "$id")" = true ] || bs_fail "B does not mark $id as A's"
grep -q "$id: decision=upsert .* from=peer" "$BS_TMP/B.log" || bs_fail "B logged no from=peer"
[ "$($B --json decisions show "$id" | jq -r '.decision.evidence.rule')" = fleet_subject ] ||
    bs_fail "B's copy of $id lacks A's evidence: $($B --json decisions show "$id")"
bs_pass "A's rule decision $id reaches B's subscriber, mirrored on B with its evidence"

$B allow add --type subject --value 'mirror wave' --reason 'test' >"$BS_TMP/allow.out" ||
    bs_fail "allow add on B"
wait_for 10 sh -c "[ -z \"\$($A --json decisions list | jq -r '.decisions[] | select(.value == \"mirror wave\") | .id')\" ]" ||
    bs_fail "an allowlist entry on B did not revoke $id on A"
grep -q "$id: decision=remove .* why=allowlisted .* from=peer" "$BS_TMP/A.log" ||
    bs_fail "A did not log the removal as B's"
wait_for 10 sh -c "[ \$(grep -c 'mirror wave' '$BS_TMP/sB.out') = 0 ]" ||
    bs_fail "B's subscriber still holds $id"
bs_pass "an allowlist entry on B revokes $id on both"

wait_for 10 sh -c "[ \"\$($A --json allow list | jq -r '.allowlist[].value')\" = 'mirror wave' ]" ||
    bs_fail "A never took B's allowlist entry: $(allowed "$A")"
[ "$(allowed "$A")" = "$(allowed "$B")" ] ||
    bs_fail "A's allowlist is not B's: A=$(allowed "$A") B=$(allowed "$B")"
wait_for 10 sh -c "$B status | grep -q 'allowlist and sites the same as the peer'" ||
    bs_fail "B's status does not say its allowlist and sites are A's: $($B status)"
[ "$($A --json why 'mirror wave' | jq -r '.allowlisted[0].value')" = 'mirror wave' ] ||
    bs_fail "A's why does not name the entry: $($A --json why 'mirror wave')"
counted=$($A --json why 'mirror wave' | jq '.keys[0].events')
received=$($A --json status | jq .events.received)
for s in site1 site2 site3; do
    loadgen --site $s --sensor mx2 --events 200 --subject "mirror wave" --ips 200 \
        --curve-key "$BS_TMP/ka/$s.key" --server-key "$PUB_A"
done
wait_for 10 sh -c "[ \$($A --json status | jq .events.received) -ge $((received + 600)) ]" ||
    bs_fail "A did not receive the second wave"
[ "$($A --json why 'mirror wave' | jq '.keys[0].events')" = "$counted" ] ||
    bs_fail "A counted the wave B allowlisted: $counted -> $($A --json why 'mirror wave' | jq '.keys[0].events')"
[ -z "$(holds "$A" 'mirror wave')" ] || bs_fail "A blocked the wave B allowlisted"
bs_pass "B's allowlist entry is A's too: A does not count the wave again"

$A allow del --type subject --value 'mirror wave' >/dev/null || bs_fail "allow del on A"
wait_for 10 sh -c "[ -z \"\$($B --json allow list | jq -r '.allowlist[].value')\" ]" ||
    bs_fail "the entry removed on A stays on B: $(allowed "$B")"
grep -q 'shared: allow del text="mirror wave" .*from=peer' "$BS_TMP/B.log" ||
    bs_fail "B logged no removal from the peer"
bs_pass "an allowlist entry removed on A is removed on B"

keep=$($A --json decisions add --scope subject --value 'cheap watches' --ttl 1h |
    jq -r .decision.id) || bs_fail "decisions add on A"
wait_for 10 sh -c "[ -n \"\$($B --json decisions list | jq -r '.decisions[] | select(.value == \"cheap watches\") | .id')\" ]" ||
    bs_fail "B never got $keep"
agg_kill9 B
# A's status no longer says the two are alike now: it says when B was last heard
wait_for 10 sh -c "[ \"\$($A --json status | jq -r .peer.state)\" != live ]" ||
    bs_fail "A still calls its dead peer live"
$A --json status | jq -e '.peer.heard_ms | type == "number"' >/dev/null ||
    bs_fail "A's status has no time B was last heard: $($A --json status | jq -c .peer)"
$A status | grep -Eq '^Peer: .*; last heard [0-9]+s ago$' ||
    bs_fail "A's status does not say when B was last heard: $($A status)"
# (the same or not: B's last heartbeat may predate its taking A's last removal)
$A status | grep -Eq "allowlist and sites (the same as|not the same as) the peer's when it was last heard" ||
    bs_fail "A's status speaks of B's allowlist as if it were live: $($A status)"
$A decisions del "$keep" >/dev/null || bs_fail "decisions del on A"
new=$($A --json decisions add --scope client_ip --value 192.0.2.77 --ttl 1h |
    jq -r .decision.id) || bs_fail "decisions add on A"
$A sites del site3 >/dev/null || bs_fail "sites del on A"
$A allow add --type net --value 198.51.100.0/24 --reason 'partner relay' >/dev/null ||
    bs_fail "allow add on A"
agg_start B
wait_log "$BS_TMP/B.log" 'peer: state=live .*sync=changes' 10 ||
    bs_fail "B did not catch up with the changes since its stored position"
[ -z "$(holds "$B" 'cheap watches')" ] || bs_fail "B still holds $keep, revoked while it was down"
[ "$(holds "$B" 192.0.2.77)" = "$new" ] || bs_fail "B lacks $new, added while it was down"
bs_pass "B, killed and back, takes the revocation of $keep and the new $new"
wait_for 10 sh -c "[ \"\$($B --json allow list | jq -r '.allowlist[].value')\" = 198.51.100.0/24 ]" ||
    bs_fail "B lacks the allowlist entry added while it was down: $(allowed "$B")"
[ "$(sites "$B")" = "$(sites "$A")" ] ||
    bs_fail "B's sites are not A's after the restart: A=$(sites "$A") B=$(sites "$B")"
sites "$B" | grep -q '^site3 ' && bs_fail "B still has site3, removed while it was down"
bs_pass "B, back, takes the site removed and the allowlist entry added while it was down"

# apart: A makes a block while B is down, B one on the same key while A is down; together
# again, both keep the one with the smaller id, with the later expiry of the two
agg_kill9 B
x=$($A --json decisions add --scope subject --value 'split wave' --ttl 1h | jq -r .decision.id) ||
    bs_fail "decisions add on A"
agg_kill9 A
agg_start B
y=$($B --json decisions add --scope subject --value 'split wave' --ttl 2h | jq -r .decision.id) ||
    bs_fail "decisions add on B"
[ -n "$x" ] && [ -n "$y" ] && [ "$x" != "$y" ] || bs_fail "no two decisions to merge: $x $y"
keep=$(printf '%s\n%s\n' "$x" "$y" | sort | head -n 1)
agg_start A
wait_for 10 sh -c "[ \"\$($A --json decisions list | jq -r '.decisions[] | select(.value == \"split wave\") | .id')\" = $keep ] &&
    [ \"\$($B --json decisions list | jq -r '.decisions[] | select(.value == \"split wave\") | .id')\" = $keep ]" ||
    bs_fail "A and B do not both keep $keep of $x and $y: A=$(holds "$A" 'split wave') B=$(holds "$B" 'split wave')"
for cli in "$A" "$B"; do
    left=$($cli --json decisions show "$keep" | jq '(.decision.expires_ms - .now_ms) / 1000 | floor')
    [ "$left" -gt 3600 ] || bs_fail "$keep ends in ${left}s, not with the later of the two (2h)"
done
grep -q "decision=[0-9A-Z]* merged: .* kept=$keep" "$BS_TMP/A.log" "$BS_TMP/B.log" ||
    bs_fail "neither logged the merge"
$A status | grep -q '^Peer: .*, 1 merged$' || $B status | grep -q '^Peer: .*, 1 merged$' ||
    bs_fail "neither status counts the merge: $($A status | grep Peer:) / $($B status | grep Peer:)"
$A decisions del "$keep" >/dev/null || bs_fail "decisions del $keep on A"
wait_for 10 sh -c "[ -z \"\$($B --json decisions list | jq -r '.decisions[] | select(.value == \"split wave\") | .id')\" ]" ||
    bs_fail "one revocation on A did not end the block on B: $(holds "$B" 'split wave')"
bs_pass "blocks made apart on one key ($x on A, $y on B) become one ($keep), and one revocation ends it"

# A loses its data directory. First it comes back as a standby that lets B follow it
# but does not follow B (no peer endpoints): B follows the new, empty A (a new epoch,
# whose having nothing says nothing) and keeps A's block. Then A, again new, follows B
# too: it takes its block back.
agg_kill9 A
rm -rf "$BS_TMP/A.db"
grep -v '^peer_decisions\|^peer_snapshot' "$BS_TMP/A.conf" >"$BS_TMP/A0.conf"
n=$(log_count "$BS_TMP/B.log" 'peer: state=live')
agg_start A0
wait_for 10 sh -c "[ \$(grep -c 'peer: state=live' '$BS_TMP/B.log') -gt $n ]" ||
    bs_fail "B did not follow the new A"
[ "$(holds "$B" 192.0.2.77)" = "$new" ] || bs_fail "B dropped $new when A came back empty"
agg_kill9 A0
rm -rf "$BS_TMP/A.db"
agg_start A
wait_log "$BS_TMP/A.log" 'peer: state=live' 10 || bs_fail "the new A did not follow B"
wait_for 10 sh -c "[ \"\$($A --json decisions list | jq -r '.decisions[] | select(.value == \"192.0.2.77\") | .id')\" = $new ]" ||
    bs_fail "the new A did not take $new back from B"
wait_for 10 sh -c "[ \"\$($A --json allow list | jq -r '.allowlist[].value')\" = 198.51.100.0/24 ]" ||
    bs_fail "the new A did not take its allowlist back from B: $(allowed "$A")"
[ "$(sites "$A")" = "$(sites "$B")" ] ||
    bs_fail "the new A did not take its sites back from B: A=$(sites "$A") B=$(sites "$B")"
bs_pass "A loses its data directory: B keeps $new, and the new A takes it, its sites and its allowlist back"

# C names A as its peer, but A knows only B's key: the handshake is refused
agg_conf C "server_key_file = $BS_TMP/c.key" "peer_decisions = $A_DE" \
    "peer_snapshot = $A_SN" "peer_public_key = $PUB_A"
C_CTL=$AGG_CTL
agg_start C
wait_log "$BS_TMP/C.log" 'peer: state=joining reason=silence' 10 ||
    bs_fail "C's follower never gave up waiting: $(cat "$BS_TMP/C.log")"
[ "$("$BS_BUILD/backstop" --socket "$C_CTL" --json decisions list | jq '.total')" = 0 ] ||
    bs_fail "C got A's decisions with a key A does not know"
[ "$(peer_state "$BS_BUILD/backstop --socket $C_CTL")" = joining ] || bs_fail "C went live"
bs_pass "an aggregator A does not know as its peer gets nothing"

# bad peer settings: refused at -n with the reason, exit 78
# refused NAME REASON LINE...: a config with LINEs fails -n, naming REASON
refused()
{
    name=$1 reason=$2
    shift 2
    agg_conf "$name" "$@"
    "$AGG" -c "$BS_TMP/$name.conf" -n 2>"$BS_TMP/$name.err"
    rc=$?
    [ $rc = 78 ] || bs_fail "$name: exit $rc, want 78"
    grep -q "$reason" "$BS_TMP/$name.err" || bs_fail "$name: no \"$reason\": $(cat "$BS_TMP/$name.err")"
}
refused half 'needs both peer_decisions and peer_snapshot' "peer_decisions = $A_DE"
refused nokey 'peer_public_key must be a 40-character Z85 key' \
    "server_key_file = $BS_TMP/b.key" "peer_decisions = $A_DE" "peer_snapshot = $A_SN"
refused badkey 'peer_public_key is not a 40-character Z85 key' "peer_public_key = short"
refused remote 'peer endpoints must be loopback' \
    "peer_decisions = tcp://192.0.2.1:5571" "peer_snapshot = tcp://192.0.2.1:5572"
bs_pass "bad peer settings are refused with the reason, exit 78"
