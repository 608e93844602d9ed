#!/bin/sh
# test_agg_why_restart - `backstop why ID` of decisions no longer in force (revoked,
# allowlisted, expired) says the same after a kill -9 and a restart as before: the
# aggregator reads its change log back from the store.
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

cli() { "$CLI" --socket "$AGG_CTL" "$@"; }
add() { cli --json decisions add --scope subject --value "$@" | jq -r .decision.id; }

agg_conf agg
agg_start agg
revoked=$(add 'revoked wave')
allowed=$(add 'allowed wave')
expired=$(add 'expired wave' --ttl 1s)
[ -n "$revoked" ] && [ -n "$allowed" ] && [ -n "$expired" ] || bs_fail "decisions add failed"
cli decisions del "$revoked" >/dev/null || bs_fail "decisions del failed"
cli allow add --type subject --value 'allowed wave' >/dev/null || bs_fail "allow add failed"
wait_log "$BS_TMP/agg.log" "$expired: decision=remove .*why=expired" 10 ||
    bs_fail "$expired did not expire"

# check ID WHY TEXT: why ID says it is no longer in force, and why
check()
{
    cli why "$1" >"$BS_TMP/out" 2>&1 || bs_fail "$4: why $1 failed: $(cat "$BS_TMP/out")"
    grep -q "^Decision $1 is no longer in force: $3" "$BS_TMP/out" ||
        bs_fail "$4: why $1 does not say '$3': $(cat "$BS_TMP/out")"
    [ "$(cli --json why "$1" | jq -r .removed.why)" = "$2" ] ||
        bs_fail "$4: why --json $1 is not $2: $(cli --json why "$1")"
}
check "$revoked" revoked "an operator revoked it" "before the restart"
check "$allowed" allowlisted "an allowlist entry covers it" "before the restart"
check "$expired" expired "it expired" "before the restart"
bs_pass "why of revoked, allowlisted and expired decisions"

agg_kill9 agg
agg_start agg
check "$revoked" revoked "an operator revoked it" "after kill -9 and restart"
check "$allowed" allowlisted "an allowlist entry covers it" "after kill -9 and restart"
check "$expired" expired "it expired" "after kill -9 and restart"
cli why "$revoked" | grep -q '^  value: *revoked wave$' || bs_fail "why forgot what it was"
bs_pass "why knows them after kill -9 and a restart"

agg_stop agg
agg_start agg
check "$expired" expired "it expired" "after a stop and a start"
bs_pass "and after a clean stop and start"
