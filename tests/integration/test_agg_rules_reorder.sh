#!/bin/sh
# test_agg_rules_reorder - rules reordered in the config, on SIGHUP and across a restart:
# a key's counts stay with the event filter they were counted under. A window key names
# its filter by its place in the rule order; reordered, the same place meant another filter,
# and 60 bounces that matched no content rule became 61 rule-matching ones, making a local
# decision. Now the keys of a filter that moved start over (logged), and nothing is
# counted under a filter it was not.
SRC=${2:?usage: test BUILD_DIR SOURCE_DIR}
. "$SRC/tests/integration/lib.sh"
. "$SRC/tests/integration/agg_lib.sh"
bs_init "$@"

rules()
{
    fleet='[rule fleet_any]
scope = subject
window = 300s
min_events = 400
min_sites = 3
reach = fleet'
    local='[rule local_matched]
scope = subject
window = 300s
min_events = 50
require_rule_match = yes
reach = local'
    if [ "$1" = fleet-first ]; then
        printf '%s\n\n%s\n' "$fleet" "$local"
    else
        printf '%s\n\n%s\n' "$local" "$fleet"
    fi
}

agg_conf agg
cp "$BS_TMP/agg.conf" "$BS_TMP/agg.base"
{ cat "$BS_TMP/agg.base"; rules fleet-first; } >"$BS_TMP/agg.conf"
agg_start agg
CLI="$BS_BUILD/backstop --socket $AGG_CTL"
decided() { $CLI --json decisions | grep -c '"value": *"reorder wave"'; }

# 60 bounces at site1 that matched no content rule: counted by fleet_any only
loadgen --site site1 --events 60 --subject "reorder wave"
wait_for 10 sh -c "$CLI --json why 'reorder wave' | grep -q '\"events\": *60'" ||
    bs_fail "the 60 events were not counted"

# the same rules, the other way round
{ cat "$BS_TMP/agg.base"; rules local-first; } >"$BS_TMP/agg.conf"
kill -HUP "$(agg_pid agg)"
wait_log "$BS_TMP/agg.log" 'reload: rules changed: [0-9]+ window keys' 10 ||
    bs_fail "the reload did not say that counts of moved filters start over"
wait_log "$BS_TMP/agg.log" 'reloaded: ' 10 || bs_fail "no reload"
loadgen --site site1 --events 1 --subject "reorder wave" --rule-match --seq 1000
sleep 1
[ "$(decided)" = 0 ] || bs_fail "one rule-matching bounce made a local decision: $($CLI decisions)"
bs_pass "reordered on SIGHUP: 60 unmatched bounces are not counted as rule-matching ones"

# and across a restart: the stored keys of a filter that moved start over too
loadgen --site site1 --events 60 --subject "restart wave" --seq 2000
sleep 2 # flushed
agg_stop agg
{ cat "$BS_TMP/agg.base"; rules fleet-first; } >"$BS_TMP/agg.conf"
agg_start agg
wait_log "$BS_TMP/agg.log" 'store: .*rules changed: [0-9]+ window keys' 10 ||
    bs_fail "the restart did not say that counts of moved filters start over"
loadgen --site site1 --events 1 --subject "restart wave" --rule-match --seq 3000
sleep 1
[ "$($CLI --json decisions | grep -c '"value": *"restart wave"')" = 0 ] ||
    bs_fail "after the restart one rule-matching bounce made a local decision: $($CLI decisions)"
# a restart with the rules as they were keeps the counts
loadgen --site site1 --events 30 --subject "kept wave" --seq 4000
sleep 2
agg_stop agg
agg_start agg
wait_for 10 sh -c "$CLI --json why 'kept wave' | grep -q '\"events\": *30'" ||
    bs_fail "counts of unchanged rules were lost at a restart: $($CLI --json why 'kept wave')"
bs_pass "reordered across a restart: counts of moved filters start over, unchanged ones are kept"
agg_stop agg
