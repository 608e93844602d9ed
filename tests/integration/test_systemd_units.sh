# test_systemd_units.sh - the shipped systemd units pass systemd-analyze verify
#
# SYNOPSIS
#   sh tests/integration/test_systemd_units.sh BUILD_DIR SOURCE_DIR
#
# DESCRIPTION
#   systemd-analyze verify works on unit files without a running systemd, but
#   it insists that every Exec*= program exists. The units name the installed
#   paths (/usr/local/sbin/...), so the test verifies copies rendered the way
#   the installers render them for another prefix (deploy/lib/common.sh
#   render_unit), pointing at a temporary prefix holding the built programs.
#   verify prints a warning and still exits 0 for an unknown or misspelt
#   setting, so any output at all is a failure. Then, for each unit: the
#   hardening and service settings issue 5 asks for are present, and the
#   offline security analysis stays at "OK" exposure or better (<= 4.0).
#   The aggregator's unit must not set ProcSubset=pid, which hides the boot id
#   its store compares to detect a host crash.
#   A deliberately broken copy must be caught, so the test can fail.
#   Exit 77 (skip) when systemd-analyze is not installed.

BUILD=$(cd "${1:?usage: test_systemd_units.sh BUILD_DIR SOURCE_DIR}" && pwd) || exit 1
SRC=${2:?usage: test_systemd_units.sh BUILD_DIR SOURCE_DIR}
if ! command -v systemd-analyze >/dev/null 2>&1; then
    echo "SKIP: systemd-analyze not installed (apt-get install systemd)"
    exit 77
fi
T=$(mktemp -d /tmp/bs-units.XXXXXX) || exit 1
trap 'rm -rf "$T"' EXIT
mkdir -p "$T/prefix/sbin"

fail()
{
    echo "FAIL: test_systemd_units: $*"
    exit 1
}

for prog in backstop-sensor backstop-aggregator; do
    [ -x "$BUILD/$prog" ] || fail "$BUILD/$prog not built"
    ln -s "$BUILD/$prog" "$T/prefix/sbin/$prog"
done

# verify_quiet UNIT: verify exits 0 and says nothing
verify_quiet()
{
    out=$(systemd-analyze verify --man=no --generators=no "$1" 2>&1)
    rc=$?
    [ $rc = 0 ] && [ -z "$out" ] && return 0
    printf '%s\n' "$out"
    return 1
}

for unit in backstop-sensor backstop-aggregator; do
    f="$T/$unit.service"
    # the installers' render_unit, kept in step with deploy/lib/common.sh
    sed "s#/usr/local/sbin/#$T/prefix/sbin/#g" "$SRC/deploy/systemd/$unit.service" >"$f"
    grep -q "$T/prefix/sbin/$unit" "$f" || fail "$unit: ExecStart does not name /usr/local/sbin/$unit"
    verify_quiet "$f" || fail "$unit: systemd-analyze verify complains"
    echo "ok: $unit: systemd-analyze verify is silent"

    for want in 'User=backstop' 'NoNewPrivileges=yes' 'ProtectSystem=strict' 'ProtectHome=yes' \
        'PrivateTmp=yes' 'Restart=on-failure' 'ExecReload=/bin/kill -HUP $MAINPID'; do
        grep -qxF "$want" "$f" || fail "$unit: no '$want'"
    done
    grep -Eq '^RuntimeDirectory=backstop' "$f" || fail "$unit: no RuntimeDirectory="
    grep -Eq '^ExecStartPre=.* -n$' "$f" || fail "$unit: no config check (ExecStartPre=... -n)"
    grep -Eq '^ExecStart=.* -c /etc/backstop/[a-z]+\.conf -f$' "$f" || fail "$unit: ExecStart does not run in the foreground with its config"
    echo "ok: $unit: hardening and service settings present"

    sa=$(systemd-analyze security --offline=true --threshold=40 --no-pager "$f" 2>&1) ||
        fail "$unit: exposure above 4.0: $(printf '%s\n' "$sa" | tail -n 1)"
    echo "ok: $unit: $(printf '%s\n' "$sa" | grep -o 'Overall exposure level.*')"
done

grep -q '^ReadWritePaths=/var/lib/backstop\( \|$\)' "$SRC/deploy/systemd/backstop-sensor.service" ||
    fail "sensor: /var/lib/backstop not writable"
grep -q '^ReadWritePaths=/var/lib/backstop-aggregator$' "$SRC/deploy/systemd/backstop-aggregator.service" ||
    fail "aggregator: /var/lib/backstop-aggregator not writable"
echo "ok: data directories are the only writable paths"

# ProcSubset=pid hides /proc/sys: the aggregator's store reads
# /proc/sys/kernel/random/boot_id to detect a host crash, and would silently not
! grep -Eq '^[[:space:]]*ProcSubset[[:space:]]*=[[:space:]]*pid' "$SRC/deploy/systemd/backstop-aggregator.service" ||
    fail "aggregator: ProcSubset=pid hides /proc/sys/kernel/random/boot_id (host crash detection)"
echo "ok: aggregator: /proc/sys/kernel/random/boot_id stays visible (no ProcSubset=pid)"

# the test can fail: a misspelt setting and a missing program are caught
sed 's/^ProtectHome=yes$/ProtectHome=perhaps/' "$T/backstop-sensor.service" >"$T/broken1.service"
! verify_quiet "$T/broken1.service" >/dev/null || fail "a bad ProtectHome= value passed verify"
sed "s#$T/prefix/sbin/backstop-sensor#$T/prefix/sbin/missing#" "$T/backstop-sensor.service" >"$T/broken2.service"
! verify_quiet "$T/broken2.service" >/dev/null || fail "a missing ExecStart program passed verify"
echo "ok: broken units are caught"
echo "PASS: test_systemd_units"
