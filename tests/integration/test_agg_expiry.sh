#!/bin/sh
# test_agg_expiry - a decision whose TTL runs out is removed and the removal is
# published: every subscriber drops it. Rules come from the config's [rule] sections.
SRC=${2:?usage: test BUILD_DIR SOURCE_DIR}
. "$SRC/tests/integration/lib.sh"
. "$SRC/tests/integration/agg_lib.sh"
bs_init "$@"

agg_conf agg "[rule quick_subject]" "scope = subject" "window = 60s" "min_events = 30" \
    "min_sites = 3" "max_site_share = 60%" "ttl = 2s" "action = tempfail"
"$BS_BUILD/backstop-aggregator" -c "$BS_TMP/agg.conf" -n || bs_fail "config check failed"
agg_start agg
grep -q 'rules=1 ' "$BS_TMP/agg.log" || bs_fail "the [rule] section did not replace the defaults"
sub_start s1 site1 --receipts
sub_start s2 site2

loadgen --sites 3 --events 60 --subject "short wave" --ips 60
sub_wait s1 'subject tempfail fleet - short wave$' || bs_fail "no decision from the configured rule"
sub_wait s2 'short wave$' || bs_fail "s2: no decision"
id=$(grep 'short wave' "$BS_TMP/s1.out" | cut -d' ' -f2)
bs_pass "configured rule decided $id (ttl 2s)"

wait_log "$BS_TMP/s1.receipts" "^U [0-9]+ remove $id " 10 || bs_fail "no removal published for $id"
grep -Eq ": $id: decision=remove .* why=expired" "$BS_TMP/agg.log" || bs_fail "removal not logged as expired"
wait_for 10 sh -c "! grep -q 'short wave' '$BS_TMP/s1.out'" || bs_fail "s1 still holds $id"
wait_for 10 sh -c "! grep -q 'short wave' '$BS_TMP/s2.out'" || bs_fail "s2 still holds $id"
bs_pass "TTL expiry published a removal; both subscribers dropped $id"

# SIGHUP: a config without rule sections brings the shipped defaults back at once
grep -v -e '^\[rule' -e '^scope' -e '^window' -e '^min_' -e '^max_site' -e '^ttl' -e '^action' \
    "$BS_TMP/agg.conf" >"$BS_TMP/agg.conf.new" && mv "$BS_TMP/agg.conf.new" "$BS_TMP/agg.conf"
kill -HUP "$(agg_pid agg)"
wait_log "$BS_TMP/agg.log" 'reloaded: .* rules=4 ' 10 || bs_fail "SIGHUP did not reload the rules"
# a broken config on SIGHUP is refused and the running one kept
echo "no_such_key = 1" >>"$BS_TMP/agg.conf"
kill -HUP "$(agg_pid agg)"
wait_log "$BS_TMP/agg.log" 'reload refused, keeping the running config' 10 || bs_fail "bad reload not refused"
kill -0 "$(agg_pid agg)" || bs_fail "a bad reload killed the daemon"
bs_pass "SIGHUP reloads rules; a broken file is refused and the daemon keeps running"

# restart-only keys changed on SIGHUP: named in one warning, kept, and the rest reloads
grep -v -e '^no_such_key' -e '^event_endpoint' "$BS_TMP/agg.conf" >"$BS_TMP/agg.conf.new"
{
    cat "$BS_TMP/agg.conf.new"
    echo "event_endpoint = tcp://127.0.0.1:$(bs_free_port)"
    echo "sync_decisions = no"
} >"$BS_TMP/agg.conf"
n=$(log_count "$BS_TMP/agg.log" 'reloaded:')
kill -HUP "$(agg_pid agg)"
wait_log "$BS_TMP/agg.log" 'reload: needs restart: event_endpoint sync_decisions \(running values kept\)' 10 ||
    bs_fail "changed restart-only keys not named: $(grep reload "$BS_TMP/agg.log")"
wait_for 10 sh -c "[ \$(grep -c 'reloaded:' '$BS_TMP/agg.log') -gt $n ]" ||
    bs_fail "no reload after the restart-only warning"
bs_pass "SIGHUP names the restart-only keys it keeps (event_endpoint, sync_decisions)"

# a bad config is refused with FILE:LINE and exit 78
printf '[rule broken]\nmax_site_share = 7\n' >"$BS_TMP/bad.conf"
"$BS_BUILD/backstop-aggregator" -c "$BS_TMP/bad.conf" -n 2>"$BS_TMP/bad.err"
rc=$?
[ $rc = 78 ] || bs_fail "bad config: exit $rc, want 78"
grep -q 'bad.conf:2: max_site_share' "$BS_TMP/bad.err" || bs_fail "no FILE:LINE: $(cat "$BS_TMP/bad.err")"
bs_pass "-n refuses a bad rule with the FILE:LINE of the key, exit 78"

# -n runs the start's own checks too (key file, loopback, group, user) and says how long
# a window may be: each refused with FILE:LINE and exit 78
refused()
{
    name=$1 reason=$2
    "$BS_BUILD/backstop-aggregator" -c "$BS_TMP/$name.conf" -n 2>"$BS_TMP/$name.err"
    rc=$?
    [ $rc = 78 ] || bs_fail "$name: exit $rc, want 78: $(cat "$BS_TMP/$name.err")"
    grep -qF "$name.conf:$reason" "$BS_TMP/$name.err" ||
        bs_fail "$name: no \"$name.conf:$reason\": $(cat "$BS_TMP/$name.err")"
}
agg_conf wild
sed 's|^event_endpoint = .*|event_endpoint = tcp://*:47570|' "$BS_TMP/wild.conf" >"$BS_TMP/wild.new" &&
    mv "$BS_TMP/wild.new" "$BS_TMP/wild.conf"
refused wild '1: event_endpoint tcp://*:47570 is not loopback: plain mode'
agg_conf nokey "server_key_file = $BS_TMP/absent.key"
refused nokey "6: server_key_file $BS_TMP/absent.key: cannot load its key pair"
printf 'public = short\n' >"$BS_TMP/bad.key" && chmod 600 "$BS_TMP/bad.key"
agg_conf badkey "server_key_file = $BS_TMP/bad.key"
refused badkey "6: server_key_file $BS_TMP/bad.key: cannot load its key pair"
agg_conf group "control_group = nosuchgroup-backstop"
refused group '6: control_group nosuchgroup-backstop: no such group'
agg_conf user "user = nosuchuser-backstop"
refused user '6: user nosuchuser-backstop: no such user'
agg_conf day "[rule day]" "window = 1d"
refused day '7: rule day: window 1d needs window_resolution >= 22s'
bs_pass "-n refuses what the start would: plain wildcard, bad key file, group, user, long window"
