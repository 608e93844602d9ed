#!/bin/sh
# test_cli - the backstop CLI against a real backstop-aggregator: every command in
# text and --json, exit codes, bad arguments, an unreachable aggregator, and a
# storm fed by bench_feed explained by `why`, `top` and cancelled by `allow add`.
#
# Real processes over loopback: backstop-aggregator (plain mode, LevelDB and the
# control socket in $BS_TMP), bench_feed as four sites, the backstop CLI.
SRC=${2:?usage: test BUILD_DIR SOURCE_DIR}
. "$SRC/tests/integration/lib.sh"
. "$SRC/tests/integration/agg_lib.sh"
bs_init "$@"
if ! command -v jq >/dev/null 2>&1; then
    echo "SKIP: jq not installed"
    exit 77
fi

CLI="$BS_BUILD/backstop"
export USER=tester
unset SUDO_USER

# expect RC CMD...: runs CMD (output in $BS_TMP/out, $BS_TMP/err), checks its exit status
expect()
{
    want=$1
    shift
    "$@" >"$BS_TMP/out" 2>"$BS_TMP/err"
    got=$?
    if [ "$got" != "$want" ]; then
        echo "--- stdout"
        cat "$BS_TMP/out"
        echo "--- stderr"
        cat "$BS_TMP/err"
        bs_fail "exit $got, wanted $want: $*"
    fi
}

# out_has REGEX / err_has REGEX
out_has()
{
    grep -Eq -- "$1" "$BS_TMP/out" || bs_fail "stdout lacks /$1/: $(cat "$BS_TMP/out")"
}
err_has()
{
    grep -Eq -- "$1" "$BS_TMP/err" || bs_fail "stderr lacks /$1/: $(cat "$BS_TMP/err")"
}

# jqt FILTER: the --json output in $BS_TMP/out satisfies FILTER (true)
jqt()
{
    jq -e "$1" "$BS_TMP/out" >/dev/null || bs_fail "json fails $1: $(cat "$BS_TMP/out")"
}

# ---- without an aggregator ----
expect 69 "$CLI" --socket "ipc://$BS_TMP/none.sock" status
err_has '^backstop: cannot reach the aggregator at ipc://.*/none.sock: is backstop-aggregator running\?'
port=$(bs_free_port)
t0=$(date +%s)
expect 69 "$CLI" --socket "tcp://127.0.0.1:$port" --timeout 500 decisions
err_has 'cannot reach the aggregator at tcp://127.0.0.1:'
[ $(($(date +%s) - t0)) -le 3 ] || bs_fail "unreachable aggregator: took more than 3 s at --timeout 500"
# under --json, a failure is a JSON document on stdout too (scripts read one document)
expect 69 "$CLI" --json --socket "ipc://$BS_TMP/none.sock" status
jqt '.exit == 69 and (.error | test("cannot reach the aggregator"))'
bs_pass "no aggregator: exit 69 with a clear message, within the timeout (and --json says it)"

# ---- bad command lines never reach the network ----
expect 64 "$CLI"
err_has 'no command given'
expect 64 "$CLI" frobnicate
err_has 'unknown command "frobnicate"'
expect 64 "$CLI" --json frobnicate
jqt '.exit == 64 and (.error | test("unknown command"))'
expect 64 "$CLI" --socket garbage status
err_has '^backstop: --socket wants a ZeroMQ endpoint'
# --json after the word that fails, and a message quoting bytes that are not UTF-8: still
# one JSON document on stdout
expect 64 "$CLI" decisions bogus --json
jqt '.exit == 64'
expect 64 "$CLI" --json --socket "$(printf 'tcp://h\377:1')" status
jqt '.exit == 64 and (.error | test("--socket wants"))'
expect 64 "$CLI" decisions frob
expect 64 "$CLI" decisions add --scope subject
err_has 'scope and --value are required'
expect 64 "$CLI" decisions add --scope color --value red
expect 65 "$CLI" decisions add --scope ip --value 1.2.3.400
err_has 'invalid IP address'
expect 65 "$CLI" decisions add --scope net --value 192.0.2.1/24
expect 65 "$CLI" decisions add --scope subject --value 'Undeliverable:'
err_has 'normalises to nothing'
expect 64 "$CLI" decisions add --scope ip --value 192.0.2.1 --ttl 90d
expect 64 "$CLI" decisions add --scope ip --value 192.0.2.1 --reach site
expect 64 "$CLI" top --limit 0
expect 64 "$CLI" decisions show
expect 64 "$CLI" --timeout abc status
expect 65 "$CLI" sites add 'bad/name'
expect 0 "$CLI" --help
for section in NAME SYNOPSIS DESCRIPTION COMMANDS OPTIONS 'EXIT STATUS' EXAMPLES 'SEE ALSO'; do
    out_has "^$section\$"
done
# the exit codes in order
codes=$(sed -n '/^EXIT STATUS$/,/^EXAMPLES$/s/^    \([0-9][0-9]*\) .*/\1/p' "$BS_TMP/out")
[ -n "$codes" ] && [ "$codes" = "$(echo "$codes" | sort -n)" ] ||
    bs_fail "--help lists exit codes out of order: $(echo $codes)"
expect 0 "$CLI" decisions --help
out_has 'decisions add --scope'
expect 0 "$CLI" help allow
out_has 'allow add --type'
bs_pass "bad arguments: exit 64/65 with a reason; --help is a manual page"

# ---- a running aggregator; the CLI finds it through --config ----
agg_conf A
agg_start A
B="$CLI --config $BS_TMP/A.conf"

expect 0 $B status
out_has '^Aggregator: up '
out_has '^Sensors: 0'
expect 0 $B --json status
jqt '.seq == 0 and .decisions.active == 0 and (.events.dropped | has("garbage"))'
expect 0 "$CLI" --socket "$AGG_CTL" --json status
jqt '.keys == 0'
# the endpoint on a continuation line, as the aggregator reads it
printf 'data_dir = /nonexistent\ncontrol_endpoint =\n    %s\n' "$AGG_CTL" >"$BS_TMP/cont.conf"
expect 0 "$CLI" --config "$BS_TMP/cont.conf" status
# a --config that cannot be read is said, not replaced by the default socket
expect 66 "$CLI" --config "$BS_TMP/none.conf" status
err_has "^backstop: --config: cannot read $BS_TMP/none.conf: No such file"
bs_pass "status in text and json, endpoint from config (continued lines too) or --socket"

# the socket file's mode is the access control: another user gets 77 at once
if [ "$(id -u)" = 0 ] && command -v setpriv >/dev/null 2>&1; then
    expect 77 setpriv --reuid=65534 --regid=65534 --clear-groups "$CLI" --socket "$AGG_CTL" status
    err_has 'permission denied'
    bs_pass "a user outside the socket's group: exit 77, permission denied"
fi

# ---- manual decisions ----
expect 0 $B decisions add --scope subject --value 'Undeliverable: Cheap watches 4411' --ttl 2h \
    --reason 'customer report'
out_has '^Decision [0-9A-Z]{8} created: reject subject "cheap watches #", fleet, expires in 1h59m|2h00m'
expect 0 $B --json decisions
jqt '.decisions | length == 1'
jqt '.decisions[0] | .value == "cheap watches #" and .origin == "cli" and .origin_who == "tester" and .reason == "customer report" and .reach == "fleet"'
id=$(jq -r '.decisions[0].id' "$BS_TMP/out")
expect 0 $B decisions
out_has "^ID +SCOPE +VALUE +ACTION +REACH +EXPIRES +ORIGIN"
out_has "^$id +subject +cheap watches # +reject +fleet +1h59m.. +cli tester"
expect 0 $B decisions show "$(echo "$id" | tr 'A-Z' 'a-z')"
out_has "^Decision $id"
out_has '^  origin: +cli tester'
expect 65 $B decisions show ZZZZZZZZ
err_has 'no active decision ZZZZZZZZ'
expect 65 $B --json decisions show ZZZZZZZZ
jqt '.exit == 65 and (.error | test("no active decision ZZZZZZZZ"))'
# a site no one registered and none of whose sensors reported: a typo would block nothing
expect 65 $B decisions add --scope ip --value '[192.0.2.77]' --action tempfail --site acme
err_has '^backstop: decisions add: no site acme is registered or has sensors reporting \(backstop sites lists the sites known; --force takes it anyway\)$'
expect 0 $B --json decisions add --scope ip --value '[192.0.2.77]' --action tempfail --site acme \
    --force
jqt '.result == "created" and .decision.value == "192.0.2.77" and .decision.reach == "local" and .decision.site == "acme" and .decision.action == "tempfail"'
ipid=$(jq -r '.decision.id' "$BS_TMP/out")
expect 0 $B --json decisions add --scope net --value 198.51.100.0/24 --all-mail --ttl 10m
jqt '.decision.all_mail == true and .decision.scope == "client_net"'
netid=$(jq -r '.decision.id' "$BS_TMP/out")
expect 0 $B why 192.0.2.77
out_has "^Decision $ipid"
out_has 'fleet_reflector_ip'
expect 0 $B decisions del "$netid"
out_has "^Decision $netid revoked"
expect 65 $B decisions del "$netid"
expect 0 $B --json status
jqt '.decisions.active == 2 and .seq == 4'
bs_pass "decisions add/list/show/del, text and json, ids case-insensitive"

# ---- a storm from four sites, fed by bench_feed ----
"$BS_BUILD/bench_feed" --endpoint "$AGG_EV" --sites 6 --rate 50 --duration 2 \
    --storm 'Undeliverable: Cheap meds 4417' --storm-size 600 --storm-sites 4 --storm-at 0 \
    --storm-spread 1 --quiet >"$BS_TMP/feed.out" 2>&1 || bs_fail "bench_feed: $(cat "$BS_TMP/feed.out")"
fleet_decided()
{
    $B --json decisions | jq -e '.decisions[] | select(.origin_who == "fleet_subject" and .value == "cheap meds #")'
}
wait_for 10 fleet_decided || bs_fail "no fleet_subject decision: $($B decisions)"
expect 0 $B --json decisions
fid=$(jq -r '.decisions[] | select(.origin_who == "fleet_subject" and .value == "cheap meds #") | .id' "$BS_TMP/out")
expect 0 $B why "$fid"
out_has "^Decision $fid"
out_has '^  rule: +fleet_subject'
out_has '^  events: +[0-9]+ in 120s from 4 sites'
out_has '^    site0[1-4] +[0-9]+ +2[0-9]\.[0-9]%'
expect 0 $B --json why "$fid"
jqt '.kind == "decision" and .decisions[0].evidence.sites == 4 and (.decisions[0].evidence.shares | length) == 4'
jqt '.keys[0].rules[] | select(.rule == "fleet_subject") | .fires == true and .events >= 400'
expect 0 $B why 'Re: Undeliverable: cheap MEDS 99'
out_has '^Key subject cheap meds #'
out_has '^fleet_subject +120s +[0-9]+/400 +4/3 .* fires$'
expect 0 $B --json why 'never seen subject'
jqt '.kind == "subject" and (.decisions | length) == 0 and .keys[0].rules[0].verdict == "no events"'
expect 0 $B why 'never seen subject'
out_has '^Not blocked'
expect 0 $B --json status
jqt '.events.received >= 600 and (.sensors | length) == 6 and all(.sensors[]; .stale == false)'
expect 0 $B status
out_has '^site0[1-6] +feed1 +[0-9]+s ago'
expect 0 $B --json top --limit 3
jqt '(.keys | length) >= 1 and .keys[0].value == "cheap meds #" and .keys[0].progress == 1'
expect 0 $B top --scope client_ip --limit 5
out_has '^client_ip +203\.0\.113\.'
bs_pass "a storm from four sites: why shows rule, counts and shares; top and status see it"

# ---- allowlist: adding cancels the decisions it covers ----
expect 0 $B --json allow add --type subject --value 'Cheap meds 1' --reason 'our newsletter'
jqt '.result == "created" and .entry.type == "subject" and .entry.value == "cheap meds #" and .entry.who == "tester"'
jqt "[.revoked[].id] | index(\"$fid\") != null"
aid=$(jq -r '.entry.id' "$BS_TMP/out")
expect 0 $B --json decisions
jqt '[.decisions[] | select(.value == "cheap meds #")] | length == 0'
expect 0 $B allow
out_has "^$aid +subject +cheap meds # .* tester +our newsletter"
expect 65 $B decisions add --scope subject --value 'cheap meds 5'
err_has 'allowlisted'
expect 0 $B why 'cheap meds 2'
out_has '^Allowlisted: subject cheap meds #'
expect 0 $B allow add --type ip --value 192.0.2.77
out_has 'Revoked 1 decision'
out_has "^$ipid "
expect 0 $B allow del --type ip --value 192.0.2.77
expect 65 $B allow add --type site --value nosuchsite
err_has '^backstop: allow add: no site nosuchsite is registered or has sensors reporting'
expect 0 $B --json allow list
jqt '.allowlist | length == 1'
expect 0 $B --json allow add --type site --value nosuchsite --force
jqt '.result == "created" and .entry.value == "nosuchsite"'
expect 0 $B allow del --type site --value nosuchsite
# a site whose sensors reported is known, registered or not (plain mode)
expect 0 $B --json decisions add --scope ip --value 192.0.2.78 --site site01
jqt '.decision.site == "site01"'
expect 0 $B allow add --type site --value site02
expect 0 $B allow del --type site --value site02
expect 0 $B allow del "$aid"
expect 65 $B allow del "$aid"
err_has "^backstop: allow del: no allowlist entry $aid\$"
expect 65 $B allow del --type net --value 10.0.0.0/8
expect 0 $B --json allow list
jqt '.allowlist | length == 0'
bs_pass "allow add revokes covered decisions at once and lists them; del by id or value"

# ---- sites and keys ----
mkdir -p "$BS_TMP/keys" "$BS_TMP/keys2"
expect 0 $B sites add acme --key-dir "$BS_TMP/keys"
out_has '^Site acme registered, public key .{40}\.'
out_has "Key file: $BS_TMP/keys/acme.key"
[ "$(stat -c %a "$BS_TMP/keys/acme.key")" = 600 ] || bs_fail "key file mode is not 0600"
grep -Eq '^public = .{40}$' "$BS_TMP/keys/acme.key" || bs_fail "key file lacks the public key"
grep -Eq '^secret = .{40}$' "$BS_TMP/keys/acme.key" || bs_fail "key file lacks the secret key"
pub=$(sed -n 's/^public = //p' "$BS_TMP/keys/acme.key")
expect 0 $B --json sites
jqt ".sites[] | select(.name == \"acme\") | .registered and .public_key == \"$pub\" and .who == \"tester\""
jqt '[.sites[] | select(.registered == false)] | length == 6'
expect 0 $B sites
out_has "^acme +$(printf '%s' "$pub" | sed 's/[][\.*^$|+?(){}]/\\&/g') "
expect 73 $B sites add acme --key-dir "$BS_TMP/keys"
err_has "cannot write the key file $BS_TMP/keys/acme.key: it exists already"
# one clear message, no library line besides it
[ "$(wc -l <"$BS_TMP/err")" = 1 ] || bs_fail "sites add on an existing key file says more than one line: $(cat "$BS_TMP/err")"
expect 73 $B sites add other --key-dir "$BS_TMP/nodir"
err_has "cannot write the key file $BS_TMP/nodir/other.key: No such file or directory"
expect 65 $B sites add acme --key-dir "$BS_TMP/keys2"
err_has 'already registered'
[ -e "$BS_TMP/keys2/acme.key" ] && bs_fail "a refused site left its key file behind"
expect 0 $B sites del acme
expect 65 $B sites del acme
# a site removed while its sensors are still known is listed as removed, not registered
expect 0 $B sites add site03 --public-key "$pub"
expect 0 $B sites del site03
expect 0 $B sites
out_has '^site03 +\(removed [0-9]+s ago: not registered\) +- +1 '
out_has '^site04 +\(not registered\) +- +1 '
expect 0 $B --json sites
jqt '.sites[] | select(.name == "site03") | .registered == false and .public_key == "" and (.removed_ms | type) == "number"'
jqt '.sites[] | select(.name == "site04") | .registered == false and .removed_ms == null'
bs_pass "sites add writes a 0600 key pair and registers it; refusals leave no key; del; a removed site says so"

# ---- changes are stored: a restart keeps them ----
expect 0 $B --json decisions add --scope subject --value 'persistent wave' --ttl 1h
keep=$(jq -r ".decision.id" "$BS_TMP/out")
agg_stop A
expect 69 $B --timeout 300 status
err_has 'is backstop-aggregator running\?'
agg_start A
# a stopped (SIGSTOP) or stuck daemon still holds its socket: not "is it running?" but "it
# did not answer"
kill -STOP "$(agg_pid A)"
expect 69 $B --timeout 300 status
err_has '^backstop: the aggregator at ipc://.* holds its socket but did not answer within 300 ms .*busy, stopped or hung'
kill -CONT "$(agg_pid A)"
expect 0 $B --json decisions show "$keep"
jqt '.decision.value == "persistent wave" and .decision.origin_who == "tester"'
bs_pass "a CLI decision survives an aggregator restart; a stopped aggregator is exit 69, a hung one says so"
