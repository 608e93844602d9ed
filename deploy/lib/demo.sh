# demo.sh - what deploy/demo adds to the integration test helpers (POSIX sh, sourced
# after tests/integration/lib.sh and agg_lib.sh)
#
# SYNOPSIS
#   . "$SRC/tests/integration/lib.sh"; . "$SRC/tests/integration/agg_lib.sh"
#   . "$SRC/deploy/lib/demo.sh"
#   demo_init BUILD_DIR SOURCE_DIR        # $BS_TMP (/tmp/backstop-demo.*), traps
#   demo_render <SPECS                    # one message file per spec line (see below)
#   demo_rand N                           # sets R to a pseudo-random number in [0, N)
#   demo_section TITLE / demo_cmd CMD...  # headings; "$ backstop ..." then its output
#   demo_check "what" CMD...              # counts an expected outcome; prints "FAILED: what"
#   demo_keep                             # leave everything running, write the state file
#   demo_stop                             # stop a demo left running by --keep
#
# DESCRIPTION
#   lib.sh already lays out throwaway Postfix instances, starts sensors and
#   stops everything at exit; this file adds what only the demo needs: a
#   temporary directory that can outlive the script (--keep) together with a
#   state file that --stop reads back, a template renderer for the demo's
#   message files, and checks that let the demo run to its end and say which
#   expected outcomes did not happen.
#
#   demo_render reads lines "OUT<TAB>TEMPLATE<TAB>KEY=VALUE<TAB>..." and
#   writes OUT from TEMPLATE with every @@KEY@@ replaced by VALUE ("\n" in a
#   VALUE is a line break). Placeholders are replaced in one pass, so a value
#   is never itself expanded; a placeholder without a value is an error. One
#   awk process renders any number of files.
#
# FILES
#   /tmp/backstop-demo.current   the directory of the demo left running by --keep
#   $BS_TMP/demo.state           its Postfix instances and daemon process ids

# shellcheck disable=SC2034 # BS_* are lib.sh's, R is demo_rand's result
DEMO_POINTER=/tmp/backstop-demo.current
DEMO_CHECKS=0
DEMO_FAILED=0
DEMO_SEED=1

demo_init()
{
    BS_BUILD=$1
    BS_SRC=$2
    BS_SENSOR="$BS_BUILD/backstop-sensor"
    BS_TEST=demo
    BS_TMP=$(mktemp -d /tmp/backstop-demo.XXXXXX) || exit 1
    # user postfix must traverse to the milter sockets and maildirs
    chmod 755 "$BS_TMP"
    trap demo_exit EXIT
    trap 'DEMO_INTERRUPTED=1; exit 130' INT TERM
    DEMO_SEED=$(($(od -An -N2 -tu2 /dev/urandom) + 1))
}

# demo_exit: the EXIT trap: lib.sh's cleanup, without its log tails after an interrupt
demo_exit()
{
    rc=$?
    if [ "${DEMO_INTERRUPTED:-0}" = 1 ]; then
        echo "demo: interrupted; stopping the fleet"
        (exit "$rc")
        bs_cleanup >/dev/null 2>&1
    fi
    (exit "$rc")
    bs_cleanup
}

# demo_rand N: R = a pseudo-random number in [0, N) (no fork)
demo_rand()
{
    DEMO_SEED=$(((DEMO_SEED * 1103515245 + 12345) % 2147483648))
    R=$((DEMO_SEED / 65536 % $1))
}

demo_render()
{
    awk -F'\t' '
    function slurp(f,   line, s, rc) {
        s = ""
        while ((rc = (getline line < f)) > 0)
            s = s line "\n"
        if (rc < 0) {
            print "demo_render: cannot read " f > "/dev/stderr"
            exit 1
        }
        close(f)
        return s
    }
    {
        if (!($2 in tpl))
            tpl[$2] = slurp($2)
        split("", val)
        for (i = 3; i <= NF; i++) {
            eq = index($i, "=")
            v = substr($i, eq + 1)
            gsub(/\\n/, "\n", v)
            val[substr($i, 1, eq - 1)] = v
        }
        s = tpl[$2]
        out = ""
        while (match(s, /@@[A-Z_]+@@/)) {
            key = substr(s, RSTART + 2, RLENGTH - 4)
            if (!(key in val)) {
                print "demo_render: " $2 ": no value for @@" key "@@" > "/dev/stderr"
                exit 1
            }
            out = out substr(s, 1, RSTART - 1) val[key]
            s = substr(s, RSTART + RLENGTH)
        }
        printf "%s", out s > $1
        close($1)
    }'
}

demo_section()
{
    echo
    echo "==> $*"
}

# demo_cmd LABEL CMD...: prints "$ LABEL" and runs CMD with its output indented
demo_cmd()
{
    label=$1
    shift
    echo "\$ $label"
    "$@" >"$BS_TMP/cmd.out" 2>&1
    rc=$?
    sed 's/^/  /' "$BS_TMP/cmd.out"
    return $rc
}

# demo_check WHAT CMD...: one expected outcome; a failure is reported and counted
demo_check()
{
    what=$1
    shift
    DEMO_CHECKS=$((DEMO_CHECKS + 1))
    if "$@" >/dev/null 2>&1; then
        return 0
    fi
    DEMO_FAILED=$((DEMO_FAILED + 1))
    echo "  FAILED: $what"
    return 1
}

# demo_keep: turn off the cleanup, remember what runs so that --stop finds it
demo_keep()
{
    {
        echo "DEMO_DIR='$BS_TMP'"
        echo "DEMO_INSTANCES='$BS_INSTANCES'"
        echo "DEMO_PIDS='$BS_PIDS'"
    } >"$BS_TMP/demo.state"
    echo "$BS_TMP" >"$DEMO_POINTER"
    trap - EXIT INT TERM
}

# demo_stop: stops the Postfix instances and daemons of the kept demo, removes its directory
demo_stop()
{
    if [ ! -f "$DEMO_POINTER" ]; then
        echo "demo: no demo is running (no $DEMO_POINTER)"
        return 0
    fi
    dir=$(cat "$DEMO_POINTER")
    case "$dir" in
    /tmp/backstop-demo.*) ;;
    *)
        echo "demo: $DEMO_POINTER names '$dir', not a demo directory; not touching it" >&2
        return 1
        ;;
    esac
    if [ ! -f "$dir/demo.state" ]; then
        echo "demo: $dir is gone already"
        rm -f "$DEMO_POINTER"
        return 0
    fi
    . "$dir/demo.state"
    for name in $DEMO_INSTANCES; do
        postfix -c "$dir/$name/etc" stop >/dev/null 2>&1
    done
    # only our daemons: a process id may have been reused since
    pids=""
    for pid in $DEMO_PIDS; do
        # (2>/dev/null first: a process gone has no cmdline, and sh opens the
        # redirections left to right)
        if tr '\0' ' ' 2>/dev/null <"/proc/$pid/cmdline" | grep -q "backstop.*$dir"; then
            kill "$pid" 2>/dev/null
            pids="$pids $pid"
        fi
    done
    for pid in $pids; do
        wait_for 2 sh -c "! kill -0 $pid" || kill -9 "$pid" 2>/dev/null
    done
    rm -rf "$dir"
    rm -f "$DEMO_POINTER"
    echo "demo: stopped Postfix$DEMO_INSTANCES and processes$pids; removed $dir"
}
