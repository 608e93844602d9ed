# agg_lib.sh - helpers for the aggregator's integration tests (POSIX sh, sourced after lib.sh)
#
# SYNOPSIS
#   . "$BS_SRC/tests/integration/agg_lib.sh"
#   agg_conf A [config lines...]   # $BS_TMP/A.conf: free loopback ports, ipc control, data dir
#   agg_start A [args]             # backstop-aggregator -f -v, waits for its "ready:" line
#                                  # (run through $AGG_WRAP, a command prefix, when set)
#   agg_kill9 A; agg_stop A        # kill -9 / SIGTERM and wait until it is gone
#   sub_start S SITE [args]        # bench_subscriber following A's feed; output in $BS_TMP/S.out
#   sub_stop S
#   sub_wait S REGEX [TIMEOUT_S]   # waits until S holds a decision line matching REGEX
#   loadgen [args]                 # bench_loadgen -e <A's event endpoint> args
#
# DESCRIPTION
#   Endpoints use ports chosen free at start (fixed for the test, so a
#   restarted aggregator is found again by the subscribers). Everything
#   started here is stopped by lib.sh's EXIT trap. Nothing sleeps a fixed
#   time: waits poll a condition with a timeout.

AGG_BIN=""

agg_conf()
{
    name=$1
    shift
    AGG_EV="tcp://127.0.0.1:$(bs_free_port)"
    AGG_DE="tcp://127.0.0.1:$(bs_free_port)"
    AGG_SN="tcp://127.0.0.1:$(bs_free_port)"
    AGG_CTL="ipc://$BS_TMP/$name.sock"
    {
        echo "event_endpoint = $AGG_EV"
        echo "decision_endpoint = $AGG_DE"
        echo "snapshot_endpoint = $AGG_SN"
        echo "control_endpoint = $AGG_CTL"
        echo "data_dir = $BS_TMP/$name.db"
        for line in "$@"; do
            echo "$line"
        done
    } >"$BS_TMP/$name.conf"
}

agg_start()
{
    name=$1
    shift
    AGG_BIN="$BS_BUILD/backstop-aggregator"
    before=$(log_count "$BS_TMP/$name.log" 'ready:')
    before=${before:-0}
    # shellcheck disable=SC2086 # AGG_WRAP is a command and its words
    ${AGG_WRAP:-} "$AGG_BIN" -c "$BS_TMP/$name.conf" -f -v "$@" >>"$BS_TMP/$name.log" 2>&1 &
    AGG_PID=$!
    bs_track $AGG_PID
    eval "AGG_PID_$name=$AGG_PID"
    if ! wait_for 10 sh -c "[ \$(grep -c 'ready:' '$BS_TMP/$name.log') -gt $before ]"; then
        cat "$BS_TMP/$name.log"
        bs_fail "aggregator $name did not become ready"
    fi
}

agg_pid()
{
    eval "echo \$AGG_PID_$1"
}

agg_gone()
{
    ! kill -0 "$1" 2>/dev/null
}

agg_kill9()
{
    pid=$(agg_pid "$1")
    kill -9 "$pid" 2>/dev/null
    wait "$pid" 2>/dev/null
    wait_for 10 agg_gone "$pid" || bs_fail "aggregator $1 survived kill -9"
}

agg_stop()
{
    pid=$(agg_pid "$1")
    kill -TERM "$pid" 2>/dev/null
    wait_for 10 agg_gone "$pid" || bs_fail "aggregator $1 did not stop on SIGTERM"
    wait "$pid" 2>/dev/null
}

sub_start()
{
    sname=$1
    site=$2
    shift 2
    "$BS_BUILD/bench_subscriber" -d "$AGG_DE" -s "$AGG_SN" --site "$site" \
        --out "$BS_TMP/$sname.out" "$@" >>"$BS_TMP/$sname.receipts" 2>>"$BS_TMP/$sname.err" &
    pid=$!
    bs_track $pid
    eval "SUB_PID_$sname=$pid"
    wait_log "$BS_TMP/$sname.err" 'sync (full|changes)' 10 ||
        bs_fail "subscriber $sname never synced: $(cat "$BS_TMP/$sname.err")"
}

sub_stop()
{
    pid=$(eval "echo \$SUB_PID_$1")
    kill -TERM "$pid" 2>/dev/null
    wait "$pid" 2>/dev/null
}

sub_wait()
{
    wait_log "$BS_TMP/$1.out" "$2" "${3:-10}"
}

# sub_count S REGEX: decision lines of S matching REGEX
sub_count()
{
    grep -E '^decision ' "$BS_TMP/$1.out" 2>/dev/null | grep -Ec -- "$2" || true
}

loadgen()
{
    "$BS_BUILD/bench_loadgen" -e "$AGG_EV" "$@" || bs_fail "bench_loadgen $*"
}
