#!/bin/sh
# test_agg_storm - a wave reported by three sites becomes one fleet decision at every
# subscriber; the same wave from one site alone decides nothing.
#
# Real processes over loopback: backstop-aggregator (plain mode, LevelDB in $BS_TMP),
# three bench_subscriber (one per site, Clone protocol), bench_loadgen as the sensors.
SRC=${2:?usage: test BUILD_DIR SOURCE_DIR}
. "$SRC/tests/integration/lib.sh"
. "$SRC/tests/integration/agg_lib.sh"
bs_init "$@"

agg_conf agg
agg_start agg
for s in 1 2 3; do
    sub_start sub$s site$s
done

# 600 bounces with one subject and one reflector, from three sites (200 each)
loadgen --sites 3 --events 600 --subject "Undelivered Mail: wave one" --ip 192.0.2.10
for s in 1 2 3; do
    sub_wait sub$s 'subject reject fleet - Undelivered Mail: wave one$' ||
        bs_fail "sub$s: no fleet decision for wave one: $(cat "$BS_TMP/sub$s.out")"
    sub_wait sub$s 'client_ip tempfail fleet - 192.0.2.10$' ||
        bs_fail "sub$s: no reflector decision: $(cat "$BS_TMP/sub$s.out")"
done
[ "$(sub_count sub1 'wave one')" = 1 ] || bs_fail "wave one decided more than once"
id1=$(grep 'wave one' "$BS_TMP/sub1.out" | cut -d' ' -f2)
for s in 2 3; do
    grep -q "^decision $id1 " "$BS_TMP/sub$s.out" || bs_fail "sub$s holds another id than $id1"
done
grep -Eq ": $id1: decision=upsert seq=[0-9]+ scope=subject" "$BS_TMP/agg.log" ||
    bs_fail "no decision log line for $id1"
bs_pass "three sites: one fleet decision $id1 at every subscriber"

# the same wave from site1 alone (then a 3-site marker wave on the same connection)
loadgen --site site1 --events 600 --subject "Undelivered Mail: lonely wave" \
    --ip 198.51.100.7 --marker "marker wave"
for s in 1 2 3; do
    sub_wait sub$s 'marker wave$' || bs_fail "sub$s: marker decision missing"
done
[ "$(sub_count sub1 'lonely wave')" = 0 ] || bs_fail "one site alone made a fleet decision"
[ "$(sub_count sub1 '198.51.100.7')" = 0 ] || bs_fail "one site alone blocked its reflector"
bs_pass "one site alone: no fleet decision"
kill -0 "$(agg_pid agg)" || bs_fail "aggregator died"
agg_stop agg
grep -q 'stopping: events=' "$BS_TMP/agg.log" || bs_fail "no clean stop"
bs_pass "clean SIGTERM"
