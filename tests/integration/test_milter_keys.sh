#!/bin/sh
# test_milter_keys - a sensor sends an aggregator only the keys it reads, and learns of a
# new one from its next heartbeat. The aggregator announces in every heartbeat the scopes
# its rules count (plus sender_domain, for allowlists) and that it keeps a key's text; the
# sensor logs what it sends. A SIGHUP that adds a rule over another scope is announced with
# the next heartbeat, and the sensor sends that scope's keys from then on; one that takes
# the rule away again stops them. Real processes over loopback (no Postfix: the log line is
# what is asserted; test_milter_fleet sends mail through it).
SRC=${2:?usage: test BUILD_DIR SOURCE_DIR}
. "$SRC/tests/integration/lib.sh"
. "$SRC/tests/integration/agg_lib.sh"
bs_init "$@"

orig='[rule fleet_orig]
scope = orig_subject
min_events = 6
reach = fleet'
ip='[rule fleet_ip]
scope = client_ip
min_events = 6
reach = fleet'

agg_conf agg
cp "$BS_TMP/agg.conf" "$BS_TMP/agg.base"
printf '%s\n' "$orig" >>"$BS_TMP/agg.conf"
agg_start agg
sensor_conf site1 "aggregator_events = $AGG_EV" "aggregator_decisions = $AGG_DE" \
    "aggregator_snapshot = $AGG_SN" "local_rule = no"
sensor_start site1
log=$(sensor_log site1)
wait_log "$log" 'uplink: events=columns aggregator=primary texts=once keys=orig_subject,sender_domain$' ||
    bs_fail "the sensor does not send only the orig_subject and sender_domain keys: $(grep 'uplink: events' "$log")"
bs_pass "one orig_subject rule: the sensor sends orig_subject and sender_domain keys, texts once"

{ cat "$BS_TMP/agg.base"; printf '%s\n\n%s\n' "$orig" "$ip"; } >"$BS_TMP/agg.conf"
kill -HUP "$(agg_pid agg)"
wait_log "$log" 'uplink: events=columns aggregator=primary texts=once keys=orig_subject,client_ip,sender_domain$' ||
    bs_fail "a rule over client_ip added by SIGHUP did not reach the sensor: $(grep 'uplink: events' "$log")"
bs_pass "a client_ip rule added by SIGHUP: the sensor sends client_ip keys too"

{ cat "$BS_TMP/agg.base"; printf '%s\n' "$ip"; } >"$BS_TMP/agg.conf"
kill -HUP "$(agg_pid agg)"
wait_log "$log" 'uplink: events=columns aggregator=primary texts=once keys=client_ip,sender_domain$' ||
    bs_fail "the orig_subject rule taken away by SIGHUP still has its keys sent: $(grep 'uplink: events' "$log")"
bs_pass "the orig_subject rule taken away: its keys stay home"
