# common.sh - shared functions of Backstop's installers (bash, sourced)
# shellcheck shell=bash
#
# SYNOPSIS
#   PROG=install-sensor; . "$(dirname "$0")/lib/common.sh"
#   bs_args_common "$@"             # not provided: each installer parses its own options
#   change "what it does" CMD...    # runs CMD, or only prints it under --dry-run
#   install_file SRC DST MODE       # copies when DST is missing or differs
#   install_config SRC DST MODE     # copies only when DST is missing (never overwrites)
#   ensure_dir DIR MODE [OWNER]     # creates or fixes one directory
#   ensure_user NAME HOME           # system user and group NAME
#   render_unit SRC PREFIX OUT      # a unit file with its program paths under PREFIX
#   svc_enable_start NAME UNIT_CHANGED [BIN_CHANGED]  # enable, start or restart a service
#   config_from_sample SAMPLE K=V...  # a generated sample config with keys K set to V
#   install_man PREFIX PAGE...      # man pages from deploy/man under PREFIX/share/man
#   remove_man PREFIX PAGE...       # and their removal
#   die CODE "what failed" "how to fix it"
#   state_migrate OLD NAME; state_check; state_dir_create  # STATE_DIR, root's alone
#
# DESCRIPTION
#   Every installer step that changes the system goes through change(), so
#   that --dry-run (DRY_RUN=1) prints exactly the list of changes a real run
#   would make, and a real run counts them (CHANGES): a run that counts none
#   says "already installed". A step that is already in the wanted state is
#   skipped silently, which is what makes a second run change nothing.
#
#   die() runs the installer's ON_FAIL hook (set by the installer once it has
#   changed something that must be undone, e.g. a restore of the MTA's
#   configuration) before it exits, so a failing step never leaves the mail
#   server half-configured.
#
#   ROOT (default /) is prefixed to every path the installers write, so tests
#   can install into a throwaway tree; paths written INTO files (unit files,
#   configs) never carry ROOT, because they are read on the target system.
#
# EXIT STATUS (sysexits.h, shared by the installers)
#   64 usage, 65 bad input file, 69 no supported MTA, 70 internal error,
#   73 cannot create a file, 75 temporary failure (check did not pass),
#   77 not root, or the installer state is not root's alone, 78 the MTA's
#   configuration is not usable.

# shellcheck disable=SC2034 # the constants are used by the installers
EX_USAGE=64
EX_DATAERR=65
EX_UNAVAILABLE=69
EX_SOFTWARE=70
EX_CANTCREAT=73
EX_TEMPFAIL=75
EX_NOPERM=77
EX_CONFIG=78

DRY_RUN=${DRY_RUN:-0}
CHANGES=0
ROOT=${ROOT:-/}
ON_FAIL=""
BS_TMPDIR=$(mktemp -d "${TMPDIR:-/tmp}/$PROG.XXXXXX") || {
    echo "$PROG: error: cannot create a temporary directory in ${TMPDIR:-/tmp}" >&2
    exit 73
}

say()
{
    printf '%s: %s\n' "$PROG" "$*"
}

warn()
{
    printf '%s: warning: %s\n' "$PROG" "$*" >&2
}

# die CODE WHAT FIX: says what failed and how to fix it, undoes, exits
die()
{
    local code=$1 hook
    printf '%s: error: %s\n' "$PROG" "$2" >&2
    if [ -n "${3:-}" ]; then
        printf '%s:   fix: %s\n' "$PROG" "$3" >&2
    fi
    if [ -n "$ON_FAIL" ]; then
        hook=$ON_FAIL
        ON_FAIL=""
        $hook
    fi
    exit "$code"
}

usage_error()
{
    printf '%s: %s\nTry "%s --help".\n' "$PROG" "$1" "$PROG" >&2
    exit $EX_USAGE
}

# rpath PATH: PATH under ROOT (ROOT=/ leaves it alone)
rpath()
{
    if [ "$ROOT" = / ]; then
        printf '%s\n' "$1"
    else
        printf '%s%s\n' "${ROOT%/}" "$1"
    fi
}

# bs_tmpfile: prints the name of a new temporary file. Every temporary file
# lives in one private directory removed at exit (bs_tmpfile runs in $(...),
# so it cannot record names in a variable of the caller).
bs_tmpfile()
{
    mktemp "$BS_TMPDIR/tmp.XXXXXX" || die $EX_CANTCREAT "cannot create a temporary file in $BS_TMPDIR" \
        "check that ${TMPDIR:-/tmp} is writable and has space"
}

bs_cleanup_tmp()
{
    rm -rf "$BS_TMPDIR"
}
trap bs_cleanup_tmp EXIT

# quote CMD...: a shell-quoted rendering of a command, for --dry-run output
quote()
{
    local out="" a
    for a in "$@"; do
        out="$out $(printf '%q' "$a")"
    done
    printf '%s\n' "${out# }"
}

# change WHAT CMD...: one change to the system; --dry-run only prints it
change()
{
    local what=$1
    shift
    CHANGES=$((CHANGES + 1))
    if [ "$DRY_RUN" = 1 ]; then
        say "would $what"
        say "    $(quote "$@")"
        return 0
    fi
    say "$what"
    "$@"
}

# need_root: installers change system files and users
need_root()
{
    if [ "$(id -u)" != 0 ] && [ "$DRY_RUN" != 1 ]; then
        die $EX_NOPERM "must run as root" "run it with sudo, or add --dry-run to see what it would do"
    fi
}

# mode_of FILE: octal permission bits (e.g. 644)
mode_of()
{
    stat -c '%a' "$1" 2>/dev/null
}

# install_file SRC DST MODE: DST becomes a copy of SRC (skipped when equal)
install_file()
{
    local src=$1 dst=$2 mode=$3 what
    if [ -f "$dst" ] && cmp -s "$src" "$dst"; then
        if [ "$(mode_of "$dst")" != "$mode" ]; then
            change "set mode $mode on $dst" chmod "$mode" "$dst" ||
                die $EX_CANTCREAT "cannot chmod $dst" "check the file system is writable"
        fi
        return 0
    fi
    if [ -e "$dst" ]; then
        what="update $dst"
    else
        what="install $dst"
    fi
    change "$what" install -D -m "$mode" "$src" "$dst" ||
        die $EX_CANTCREAT "cannot install $dst" "check that $(dirname "$dst") is writable and has space"
}

# install_config SRC DST MODE: copies only when DST does not exist yet; an
# administrator's configuration is never overwritten
install_config()
{
    local src=$1 dst=$2 mode=$3
    if [ -e "$dst" ]; then
        if ! cmp -s "$src" "$dst"; then
            say "keeping existing $dst (not overwritten)"
        fi
        return 0
    fi
    change "install $dst" install -D -m "$mode" "$src" "$dst" ||
        die $EX_CANTCREAT "cannot install $dst" "check that $(dirname "$dst") is writable"
}

# ensure_dir DIR MODE [OWNER[:GROUP]]
ensure_dir()
{
    local d=$1 mode=$2 owner=${3:-}
    if [ ! -d "$d" ]; then
        change "create directory $d" install -d -m "$mode" "$d" ||
            die $EX_CANTCREAT "cannot create $d" "check the parent directory exists and is writable"
        if [ "$DRY_RUN" = 1 ]; then
            return 0
        fi
    fi
    if [ "$(mode_of "$d")" != "$mode" ]; then
        change "set mode $mode on $d" chmod "$mode" "$d" || die $EX_CANTCREAT "cannot chmod $d" ""
    fi
    if [ -n "$owner" ] && [ "$(stat -c '%U:%G' "$d")" != "$owner" ]; then
        change "set owner $owner on $d" chown "$owner" "$d" ||
            die $EX_CANTCREAT "cannot chown $d to $owner" "check that user and group ${owner%%:*} exist"
    fi
}

# ensure_user NAME HOME: a locked system user with its own group
ensure_user()
{
    if getent passwd "$1" >/dev/null 2>&1; then
        return 0
    fi
    change "create system user $1" useradd --system --user-group --home-dir "$2" --no-create-home \
        --shell /usr/sbin/nologin --comment "Backstop" "$1" ||
        die $EX_CANTCREAT "cannot create user $1" "create it by hand: useradd --system --user-group $1"
}

# render_unit SRC PREFIX OUT: the shipped units name /usr/local/sbin; an
# installation under another prefix gets its own paths in ExecStart= lines
render_unit()
{
    sed "s#/usr/local/sbin/#${2%/}/sbin/#g" "$1" >"$3"
}

# systemd_live: true when systemctl may be used (real root, systemd running)
systemd_live()
{
    [ "$ROOT" = / ] && [ -d /run/systemd/system ] && command -v systemctl >/dev/null 2>&1
}

# state_get FILE KEY: value of "KEY=value" in an installer state file
state_get()
{
    [ -f "$1" ] || return 1
    sed -n "s/^$2=//p" "$1" | tail -n 1
}

# state_set FILE KEY VALUE: records one fact an uninstall needs later
state_set()
{
    if [ "$DRY_RUN" = 1 ]; then
        return 0
    fi
    if [ "$(state_get "$1" "$2")" = "$3" ]; then
        return 0
    fi
    local tmp
    mkdir -p "$(dirname "$1")"
    tmp=$(bs_tmpfile)
    if [ -f "$1" ]; then
        grep -v "^$2=" "$1" >"$tmp" || true
    fi
    printf '%s=%s\n' "$2" "$3" >>"$tmp"
    cat "$tmp" >"$1"
}

# ---- the installers' state (STATE_DIR): what --uninstall reads back as root
# and copies over the MTA's configuration, so it is root's alone: a directory
# of mode 0700 apart from the data directories a daemon's user owns

# state_untrusted PATH...: prints what under PATHs is not root's alone (another
# owner; writable by others, or by a group other than root's)
state_untrusted()
{
    local p
    for p in "$@"; do
        [ -e "$p" ] || [ -L "$p" ] || continue
        find "$p" \( ! -user 0 -o -perm -0002 -o \( -perm -0020 ! -group 0 \) \) -print 2>/dev/null
    done
}

# state_refuse WHERE BAD: dies on state that is not root's alone
state_refuse()
{
    die $EX_NOPERM "refusing the installer state in $1: not owned by root, or writable by others: ${2% }" \
        "a daemon's user may have changed what --uninstall restores: compare the files with what they should hold (backup/*/main.cf is copied over the MTA's main.cf), then chown root:root and chmod go-w them, or remove them; and run $PROG again"
}

# state_check: STATE_DIR, when it exists, and everything in it are root's alone
state_check()
{
    local bad
    bad=$(state_untrusted "$STATE_DIR" | head -n 3 | tr '\n' ' ')
    [ -z "$bad" ] || state_refuse "$STATE_DIR" "$bad"
}

# state_dir_create: STATE_DIR, root's, mode 0700, when missing
state_dir_create()
{
    [ ! -d "$STATE_DIR" ] || return 0
    change "create directory $STATE_DIR (installer state, root's alone)" install -d -m 700 -o 0 -g 0 "$STATE_DIR" ||
        die $EX_CANTCREAT "cannot create $STATE_DIR" "check that $(dirname "$STATE_DIR") exists and is writable, or pass --state-dir DIR"
}

# state_migrate OLD_DIR NAME [backup]: installers before this one kept
# NAME.state (and the sensor its MTA backups, OLD_DIR/backup) in the data
# directory, which the daemon's user owns; they move to STATE_DIR, if root's
# alone. A dry run reads them where they are (STATE_DIR becomes OLD_DIR).
# Runs after state_check, which has seen STATE_DIR as it was.
state_migrate()
{
    local old=$1 name=$2 bad moved=("$1/$2.state")
    [ -f "$old/$name.state" ] && [ ! -e "$STATE_DIR/$name.state" ] || return 0
    [ "${3:-}" != backup ] || [ ! -e "$old/backup" ] || moved+=("$old/backup")
    bad=$(state_untrusted "${moved[@]}" | head -n 3 | tr '\n' ' ')
    [ -z "$bad" ] || state_refuse "$old" "$bad"
    if [ ${#moved[@]} = 2 ] && [ -e "$STATE_DIR/backup" ]; then
        die $EX_CANTCREAT "backups of an earlier installation in $old/backup, and $STATE_DIR/backup exists too" \
            "move what $old/backup holds into $STATE_DIR/backup by hand, then run $PROG again"
    fi
    state_dir_create
    change "move ${moved[*]} to $STATE_DIR (out of the data directory)" mv "${moved[@]}" "$STATE_DIR/" ||
        die $EX_CANTCREAT "cannot move ${moved[*]} to $STATE_DIR" "move them by hand, then run $PROG again"
    [ "$DRY_RUN" = 0 ] || STATE_DIR=$old
}

# state_dir_remove: STATE_DIR once the last installer's state left it
state_dir_remove()
{
    if [ -d "$STATE_DIR" ] && [ -z "$(ls -A "$STATE_DIR")" ]; then
        change "remove the empty $STATE_DIR" rmdir "$STATE_DIR"
    fi
}

# build_binary BUILD_DIR NAME: the path of a built program, or die with the
# command that builds it
build_binary()
{
    if [ ! -x "$1/$2" ]; then
        die $EX_UNAVAILABLE "$1/$2 not found (not built yet?)" \
            "build first: cmake -S . -B $1 && cmake --build $1, or pass --build-dir DIR"
    fi
    printf '%s\n' "$1/$2"
}

# svc_enable_start NAME UNIT_CHANGED [BIN_CHANGED]: daemon-reload when the
# unit file changed, enable and start the service; restart it when it ran with
# the old unit or the old program (a binary replaced under a running daemon
# changes nothing until then); without a running systemd only says how to
# start it by hand
svc_enable_start()
{
    local name=$1 unit_changed=$2 bin_changed=${3:-0}
    if ! systemd_live; then
        return 1
    fi
    if [ "$unit_changed" != 0 ]; then
        change "reload systemd units" systemctl daemon-reload
    fi
    systemctl -q is-enabled "$name" 2>/dev/null ||
        change "enable $name.service" systemctl -q enable "$name"
    if ! systemctl -q is-active "$name" 2>/dev/null; then
        change "start $name.service" systemctl start "$name" ||
            die $EX_CONFIG "$name.service does not start" "see: journalctl -u $name"
    elif [ "$unit_changed" != 0 ] || [ "$bin_changed" != 0 ]; then
        change "restart $name.service" systemctl restart "$name"
    fi
    return 0
}

# svc_remove NAME UNIT_FILE: stop, disable and remove a service's unit
svc_remove()
{
    local name=$1 unit=$2
    if systemd_live && [ -f "$unit" ]; then
        if systemctl -q is-active "$name" 2>/dev/null; then
            change "stop $name.service" systemctl stop "$name"
        fi
        if systemctl -q is-enabled "$name" 2>/dev/null; then
            change "disable $name.service" systemctl -q disable "$name"
        fi
    fi
    if [ -f "$unit" ]; then
        change "remove $unit" rm -f "$unit"
        ! systemd_live || change "reload systemd units" systemctl daemon-reload
    fi
}

# config_check WHAT CMD...: runs a program's configuration check (-n) and
# dies with its output when it rejects the file
config_check()
{
    local what=$1 out
    shift
    if [ "$DRY_RUN" = 1 ]; then
        say "would check $what: $(quote "$@")"
        return 0
    fi
    if ! out=$("$@" 2>&1); then
        printf '%s\n' "$out" | sed "s/^/$PROG:   /" >&2
        die $EX_CONFIG "$what is rejected by: $(quote "$@")" "edit it (the lines above say where), then run $PROG again"
    fi
}

# ---- configs and man pages generated by backstop-genman (deploy/man)

# config_from_sample SAMPLE KEY=VALUE...: prints SAMPLE (deploy/*.conf.sample:
# every key commented out with its default and explanation) with each KEY
# set to VALUE, uncommented, on the line of its default
config_from_sample()
{
    local sample=$1
    shift
    [ -f "$sample" ] || die $EX_SOFTWARE "$sample is missing" "run $PROG from a complete source tree"
    awk 'BEGIN {
            for (i = 1; i < ARGC; i++) {
                k = ARGV[i]; sub(/=.*/, "", k)
                v = ARGV[i]; sub(/^[^=]*=/, "", v)
                val[k] = v; order[++n] = k; ARGV[i] = ""
            }
        }
        {
            k = $0; sub(/^#/, "", k)
            if (k ~ /^[a-z_0-9]+ =/) {
                sub(/ =.*/, "", k)
                if ((k in val) && !(k in done)) { print k " = " val[k]; done[k] = 1; next }
            }
            print
        }
        END { for (i = 1; i <= n; i++) if (!(order[i] in done)) print order[i] " = " val[order[i]] }' \
        "$@" <"$sample"
}

# install_man PREFIX PAGE...: deploy/man/PAGE (name.SECTION) to PREFIX/share/man/manSECTION
install_man()
{
    local prefix=$1 page
    shift
    for page in "$@"; do
        install_file "$HERE/man/$page" "$(rpath "$prefix/share/man/man${page##*.}/$page")" 644
    done
}

# remove_man PREFIX PAGE...: removes what install_man installed
remove_man()
{
    local prefix=$1 page f
    shift
    for page in "$@"; do
        f=$(rpath "$prefix/share/man/man${page##*.}/$page")
        [ ! -f "$f" ] || change "remove $f" rm -f "$f"
    done
}
