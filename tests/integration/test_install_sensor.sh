# test_install_sensor.sh - deploy/install-sensor against real Postfix instances
#
# SYNOPSIS
#   sh tests/integration/test_install_sensor.sh BUILD_DIR SOURCE_DIR
#
# DESCRIPTION
#   Runs the installer against throwaway Postfix instances (postfix -c DIR,
#   see lib.sh) with --root pointing at a temporary tree, so the host's
#   /etc/postfix, /etc/backstop, /usr/local and users are never touched. The
#   milter the instances call is tests/bench's no-op libmilter filter on a
#   unix socket (the installer's wiring is what is under test, not the sensor).
#   Checks, one behaviour each:
#     - no MTA (no postconf in PATH; -c at an empty directory; a postconf
#       without main.cf, named as /etc/postfix/main.cf): clear message, exit
#       69, nothing written;
#     - --dry-run: lists the changes, main.cf/master.cf byte-identical, no files;
#     - install: both milter lists get the sensor, postfix check passes, the
#       installer's own test message and one of ours pass through the milter;
#     - install again: "already installed", main.cf byte-identical to after
#       the first run;
#     - uninstall: main.cf and master.cf byte-identical to before;
#     - milters already configured stay first; their tempfail policy stays;
#       non_smtpd_milters = $smtpd_milters is not doubled;
#     - the sensor not listening: exit 75, main.cf rolled back byte for byte;
#     - the test message refused: exit 75 naming Postfix's refusal (not the
#       QUIT reply after it), main.cf rolled back;
#     - a sensor.conf that backstop-sensor -n rejects (a bad value, an unknown
#       user): exit 78, main.cf untouched;
#     - --socket other than the kept sensor.conf's socket: exit 78, untouched;
#     - main.cf edited after install: uninstall removes only the sensor's
#       settings and keeps the edit;
#     - the state and backup directories are root's, 0700; a backup owned by
#       another user or a state file writable by others is refused (77);
#     - state left in the data directory by an earlier installer moves to
#       /var/lib/backstop-install; --uninstall --purge removes sensor.conf,
#       the data, the state and /etc/backstop once it is empty;
#     - with the real backstop-sensor running, the installer's test message
#       shows up in the sensor's log;
#     - chrooted smtpd and cleanup: the socket moves into the queue directory;
#       smtpd chrooted but cleanup not: exit 78 asking for an inet socket;
#       a kept sensor.conf on /run/backstop: exit 78 naming the queue socket,
#       main.cf untouched;
#     - Exim: manual steps, exit 69, nothing written;
#     - Sendmail (a sendmail.mc in a temporary directory, m4 stubbed): without
#       m4 the fail-open line is printed and nothing changes; with it the line
#       goes before the first MAILER(), sendmail.cf is rebuilt, a second run
#       changes nothing, uninstall restores both files byte for byte.
#   Exit 77 (skip) when Postfix, swaks or root is missing.

SRC=${2:?usage: test_install_sensor.sh BUILD_DIR SOURCE_DIR}
. "$SRC/tests/integration/lib.sh"
bs_init "$@"
bs_need postfix postconf swaks

INSTALL="$SRC/deploy/install-sensor"
NOOP="$BS_BUILD/bench_noop_milter"
[ -x "$NOOP" ] || bs_fail "$NOOP not built (cmake --build $BS_BUILD)"
[ -x "$BS_BUILD/backstop-sensor" ] || bs_fail "$BS_BUILD/backstop-sensor not built"

ROOT="$BS_TMP/root"
OUT="$BS_TMP/install.out"

# inst NAME [ARGS...]: the installer for instance NAME into $ROOT; output in $OUT
inst()
{
    name=$1
    shift
    "$INSTALL" -c "$BS_TMP/$name/etc" --root "$ROOT" --state-dir "$BS_TMP/state-$name" \
        --build-dir "$BS_BUILD" --site "$name" "$@" >"$OUT" 2>&1
}

# noop_start SPEC SOCKETFILE_OR_PORT: a no-op milter, waits until it listens
noop_start()
{
    "$NOOP" "$1" >>"$BS_TMP/noop.log" 2>&1 &
    bs_track $!
    case $1 in
    unix:*) wait_for 10 test -S "${1#unix:}" || bs_fail "no-op milter did not start on $1" ;;
    inet:*) wait_for 10 sh -c "ss -Htln 'sport = :$2' | grep -q ." || bs_fail "no-op milter did not start on $1" ;;
    esac
}

expect_rc()
{
    want=$1
    got=$2
    shift 2
    if [ "$got" != "$want" ]; then
        cat "$OUT"
        bs_fail "$* (exit $got, want $want)"
    fi
}

expect_out()
{
    grep -Eq -- "$1" "$OUT" || {
        cat "$OUT"
        bs_fail "output lacks /$1/"
    }
}

SOCK="$BS_TMP/sensor.sock"
noop_start "unix:$SOCK"

# --- no MTA at all: postconf not in PATH
PATH=/nonexistent:/bin "$INSTALL" --root "$ROOT" --build-dir "$BS_BUILD" >"$OUT" 2>&1
expect_rc 69 $? "no postconf in PATH"
expect_out 'no supported mail server found'
expect_out 'fix:'
[ ! -e "$ROOT" ] || bs_fail "no-MTA run wrote files under $ROOT"
bs_pass "no MTA in PATH: exit 69 with a fix"

# --- -c pointing at nothing
mkdir -p "$BS_TMP/empty"
"$INSTALL" -c "$BS_TMP/empty" --root "$ROOT" --build-dir "$BS_BUILD" >"$OUT" 2>&1
expect_rc 69 $? "-c at an empty directory"
expect_out "no Postfix configuration at $BS_TMP/empty"
[ ! -e "$ROOT" ] || bs_fail "-c empty run wrote files under $ROOT"
bs_pass "-c at nothing: exit 69 with a clear message"

# --- Postfix installed, no main.cf: postconf fails, the message names /etc/postfix
mkdir -p "$BS_TMP/pf-bin"
printf '#!/bin/sh\necho "postconf: fatal: open /etc/postfix/main.cf: No such file or directory" >&2\nexit 1\n' \
    >"$BS_TMP/pf-bin/postconf"
chmod 755 "$BS_TMP/pf-bin/postconf"
PATH="$BS_TMP/pf-bin:/bin" "$INSTALL" --root "$ROOT" --build-dir "$BS_BUILD" >"$OUT" 2>&1
expect_rc 69 $? "Postfix without main.cf"
expect_out 'Postfix is installed but not configured \(/etc/postfix/main.cf is missing\)'
[ ! -e "$ROOT" ] || bs_fail "the run without main.cf wrote files under $ROOT"
bs_pass "Postfix without main.cf: the message names /etc/postfix/main.cf"

# --- site1: plain instance, no milters before
pf_create site1 none
pf_start site1
E1="$BS_TMP/site1/etc"
cp -p "$E1/main.cf" "$BS_TMP/main.cf.orig"
cp -p "$E1/master.cf" "$BS_TMP/master.cf.orig"

inst site1 --socket "unix:$SOCK" --check-rcpt u@test.example --dry-run
expect_rc 0 $? "dry run"
expect_out "would set smtpd_milters = \\{ unix:$SOCK, connect_timeout=5s"
expect_out 'would install .*/usr/local/sbin/backstop-sensor'
expect_out 'dry run: [0-9]+ changes, none made'
cmp -s "$E1/main.cf" "$BS_TMP/main.cf.orig" || bs_fail "dry run changed main.cf"
cmp -s "$E1/master.cf" "$BS_TMP/master.cf.orig" || bs_fail "dry run changed master.cf"
[ ! -e "$ROOT" ] && [ ! -e "$BS_TMP/state-site1" ] || bs_fail "dry run created files"
bs_pass "dry run lists changes, changes nothing"

inst site1 --socket "unix:$SOCK" --check-rcpt u@test.example
expect_rc 0 $? "install site1"
expect_out 'test message passed through the sensor'
expect_out 'installed: postfix'
limits='connect_timeout=5s, command_timeout=10s, content_timeout=30s'
[ "$(postconf -c "$E1" -h smtpd_milters)" = "{ unix:$SOCK, $limits }" ] || bs_fail "smtpd_milters: $(postconf -c "$E1" -h smtpd_milters)"
[ "$(postconf -c "$E1" -h non_smtpd_milters)" = "{ unix:$SOCK, $limits }" ] || bs_fail "non_smtpd_milters not wired"
[ "$(postconf -c "$E1" -h milter_default_action)" = accept ] || bs_fail "milter_default_action is not accept"
postfix -c "$E1" check || bs_fail "postfix check fails after install"
[ -x "$ROOT/usr/local/sbin/backstop-sensor" ] || bs_fail "binary not installed"
grep -q '^site = site1$' "$ROOT/etc/backstop/sensor.conf" || bs_fail "sensor.conf lacks the site"
grep -q "^milter_socket = unix:$SOCK\$" "$ROOT/etc/backstop/sensor.conf" || bs_fail "sensor.conf lacks the socket"
grep -q '^ExecStart=/usr/local/sbin/backstop-sensor milter' "$ROOT/etc/systemd/system/backstop-sensor.service" ||
    bs_fail "unit not installed"
[ -d "$ROOT/var/lib/backstop" ] || bs_fail "data directory missing"
before=$(pf_delivered site1)
swaks_send site1 --from sender@client.example --to u@test.example --header 'Subject: after install' ||
    bs_fail "message refused after install: $(last_reply)"
wait_delivered site1 $((before + 1)) || bs_fail "message not delivered after install"
if grep -E 'warning: .*[Mm]ilter' "$(pf_log site1)"; then
    bs_fail "Postfix could not talk to the milter"
fi
bs_pass "install wires both milter lists; mail passes through the milter"

# the state and the backups --uninstall copies over main.cf as root are root's alone
ST1="$BS_TMP/state-site1"
BK1="$ST1/backup/postfix$(printf '%s' "$E1" | tr '/' '_')"
[ "$(stat -c '%U:%G %a' "$ST1")" = "root:root 700" ] || bs_fail "state dir: $(stat -c '%U:%G %a' "$ST1")"
[ "$(stat -c '%U %a' "$BK1")" = "root 700" ] || bs_fail "backup dir: $(stat -c '%U %a' "$BK1")"
[ "$(stat -c %U "$ST1/install-sensor.state")" = root ] || bs_fail "state file not root's"
bs_pass "state and backup directories are root's, mode 0700"

cp -p "$E1/main.cf" "$BS_TMP/main.cf.installed"
cp -p "$ROOT/etc/backstop/sensor.conf" "$BS_TMP/sensor.conf.good"
inst site1 --socket "unix:$SOCK" --check-rcpt u@test.example
expect_rc 0 $? "second install"
expect_out 'already installed: nothing changed'
cmp -s "$E1/main.cf" "$BS_TMP/main.cf.installed" || bs_fail "second install changed main.cf"
bs_pass "second run changes nothing"

# a backup that is not root's (a compromised sensor runs as backstop) is never restored
chown nobody "$BK1/main.cf"
inst site1 --uninstall
expect_rc 77 $? "uninstall with a backup owned by another user"
expect_out "refusing the installer state in $ST1: not owned by root, or writable by others: $BK1/main.cf"
cmp -s "$E1/main.cf" "$BS_TMP/main.cf.installed" || bs_fail "a tampered backup still changed main.cf"
chown root "$BK1/main.cf"
chmod o+w "$ST1/install-sensor.state"
inst site1 --check-rcpt u@test.example
expect_rc 77 $? "install with a state file writable by others"
chmod o-w "$ST1/install-sensor.state"
bs_pass "state or backups not root's alone are refused (77), main.cf untouched"

echo "# edited by the administrator" >>"$ROOT/etc/backstop/sensor.conf"
inst site1 --uninstall
expect_rc 0 $? "uninstall site1"
cmp -s "$E1/main.cf" "$BS_TMP/main.cf.orig" || bs_fail "main.cf differs from before install"
cmp -s "$E1/master.cf" "$BS_TMP/master.cf.orig" || bs_fail "master.cf differs from before install"
[ ! -e "$ROOT/etc/systemd/system/backstop-sensor.service" ] || bs_fail "unit left behind"
[ ! -e "$ROOT/usr/local/sbin/backstop-sensor" ] || bs_fail "binary left behind"
grep -q 'edited by the administrator' "$ROOT/etc/backstop/sensor.conf" || bs_fail "uninstall without --purge removed the config"
postfix -c "$E1" check || bs_fail "postfix check fails after uninstall"
inst site1 --uninstall
expect_rc 0 $? "second uninstall"
expect_out 'not installed: nothing to remove'
bs_pass "uninstall restores main.cf and master.cf byte for byte, keeps the config"

# --- --socket against the socket of the sensor.conf that is kept
inst site1 --socket "unix:$BS_TMP/other.sock" --check-rcpt u@test.example
expect_rc 78 $? "install with a --socket the kept config does not use"
expect_out 'differs from milter_socket'
cmp -s "$E1/main.cf" "$BS_TMP/main.cf.orig" || bs_fail "a socket mismatch still changed main.cf"
bs_pass "a --socket that the kept sensor.conf does not use is refused"

# --- the sensor is not there: the check fails, main.cf is rolled back
rm "$ROOT/etc/backstop/sensor.conf"
inst site1 --socket "unix:$BS_TMP/nobody.sock" --check-rcpt u@test.example
expect_rc 75 $? "install with no sensor listening"
expect_out 'does not listen'
expect_out 'rolled back'
cmp -s "$E1/main.cf" "$BS_TMP/main.cf.orig" || bs_fail "failed install left main.cf changed"
swaks_send site1 --from sender@client.example --to u@test.example --header 'Subject: after rollback' ||
    bs_fail "Postfix refuses mail after a rolled-back install"
cp -p "$BS_TMP/sensor.conf.good" "$ROOT/etc/backstop/sensor.conf"
bs_pass "a failing check rolls main.cf back and mail still flows"

# --- the test message refused: the refusal is shown, not the QUIT's 221 after it
inst site1 --socket "unix:$SOCK" --check-rcpt u@relay.elsewhere.example
expect_rc 75 $? "install whose test recipient Postfix refuses"
expect_out 'was not accepted: <\*\* +5[0-9][0-9] .*[Rr]elay access denied'
! grep -q 'not accepted: .* 221 ' "$OUT" || bs_fail "the QUIT reply shown as the refusal: $(grep 'not accepted' "$OUT")"
cmp -s "$E1/main.cf" "$BS_TMP/main.cf.orig" || bs_fail "a refused test message left main.cf changed"
bs_pass "a refused test message names Postfix's refusal; main.cf rolled back"

# --- a sensor.conf the sensor rejects stops the install before Postfix is touched
echo "milter_timeout = forever" >>"$ROOT/etc/backstop/sensor.conf"
inst site1 --socket "unix:$SOCK" --check-rcpt u@test.example
expect_rc 78 $? "install with a broken sensor.conf"
expect_out 'milter_timeout'
expect_out 'fix: edit it'
cmp -s "$E1/main.cf" "$BS_TMP/main.cf.orig" || bs_fail "a rejected sensor.conf still changed main.cf"
cp -p "$BS_TMP/sensor.conf.good" "$ROOT/etc/backstop/sensor.conf"
bs_pass "a rejected sensor.conf stops the install before Postfix is touched"

# --- an unknown user: -n refuses it with its line, as the start does (exit 78)
echo "user = no-such-user-$$" >>"$ROOT/etc/backstop/sensor.conf"
line=$(grep -c '' "$ROOT/etc/backstop/sensor.conf")
inst site1 --socket "unix:$SOCK" --check-rcpt u@test.example
expect_rc 78 $? "install with an unknown user in sensor.conf"
expect_out "sensor.conf:$line: user no-such-user-$$: no such user"
cmp -s "$E1/main.cf" "$BS_TMP/main.cf.orig" || bs_fail "an unknown user still changed main.cf"
cp -p "$BS_TMP/sensor.conf.good" "$ROOT/etc/backstop/sensor.conf"
bs_pass "an unknown user in sensor.conf is refused by -n (78, FILE:LINE)"

# --- main.cf edited after install: uninstall keeps the edit
inst site1 --socket "unix:$SOCK" --no-check
expect_rc 0 $? "install --no-check"
postconf -c "$E1" -e 'smtpd_banner = $myhostname ESMTP edited'
inst site1 --uninstall
expect_rc 0 $? "uninstall after an edit"
expect_out 'edited after install'
[ -z "$(postconf -c "$E1" -nh smtpd_milters)" ] || bs_fail "smtpd_milters left after uninstall"
[ -z "$(postconf -c "$E1" -nh non_smtpd_milters)" ] || bs_fail "non_smtpd_milters left after uninstall"
postconf -c "$E1" -nh smtpd_banner | grep -q edited || bs_fail "uninstall lost the administrator's edit"
bs_pass "uninstall after an edit removes only the sensor's settings"

# --- an installation by an earlier installer (state and backups in the data
# directory): the next run moves them to the default state directory; then
# --purge removes the configuration, the data, the state and the emptied
# /etc/backstop
cp -p "$E1/main.cf" "$BS_TMP/main.cf.before-purge"
inst site1 --socket "unix:$SOCK" --no-check
expect_rc 0 $? "install before --purge"
mv "$BS_TMP/state-site1/install-sensor.state" "$BS_TMP/state-site1/backup" "$ROOT/var/lib/backstop/"
# (inst passes --state-dir; these runs take the default)
"$INSTALL" -c "$E1" --root "$ROOT" --build-dir "$BS_BUILD" --socket "unix:$SOCK" --no-check >"$OUT" 2>&1
expect_rc 0 $? "install over the earlier layout"
expect_out "move $ROOT/var/lib/backstop/install-sensor.state $ROOT/var/lib/backstop/backup to $ROOT/var/lib/backstop-install"
[ "$(stat -c '%U %a' "$ROOT/var/lib/backstop-install")" = "root 700" ] || bs_fail "default state dir not root's 0700"
[ ! -e "$ROOT/var/lib/backstop/install-sensor.state" ] && [ ! -e "$ROOT/var/lib/backstop/backup" ] ||
    bs_fail "state left in the data directory"
"$INSTALL" -c "$E1" --root "$ROOT" --build-dir "$BS_BUILD" --uninstall --purge >"$OUT" 2>&1
expect_rc 0 $? "uninstall --purge"
cmp -s "$E1/main.cf" "$BS_TMP/main.cf.before-purge" || bs_fail "main.cf differs after uninstall --purge"
[ ! -e "$ROOT/etc/backstop/sensor.conf" ] || bs_fail "--purge left sensor.conf"
[ ! -e "$ROOT/var/lib/backstop" ] || bs_fail "--purge left the data directory"
[ ! -e "$ROOT/var/lib/backstop-install" ] || bs_fail "--purge left the state directory"
[ ! -e "$ROOT/etc/backstop" ] || bs_fail "--purge left an empty $ROOT/etc/backstop"
mkdir -p "$ROOT/etc/backstop"
cp -p "$BS_TMP/sensor.conf.good" "$ROOT/etc/backstop/sensor.conf"
bs_pass "an earlier layout's state moves to /var/lib/backstop-install; --purge then removes it all"

# --- site2: a milter already configured, tempfail policy, non_smtpd = $smtpd
P2=$(bs_free_port)
noop_start "inet:$P2@127.0.0.1" "$P2"
pf_create site2 "inet:127.0.0.1:$P2"
E2="$BS_TMP/site2/etc"
postconf -c "$E2" -e 'non_smtpd_milters = $smtpd_milters' 'milter_default_action = tempfail'
touch -d '-5 seconds' "$E2/main.cf"
pf_start site2
cp -p "$E2/main.cf" "$BS_TMP/main.cf.orig2"
inst site2 --socket "unix:$SOCK" --check-rcpt u@test.example
expect_rc 0 $? "install site2"
want="inet:127.0.0.1:$P2, { unix:$SOCK, default_action=accept, $limits }"
[ "$(postconf -c "$E2" -h smtpd_milters)" = "$want" ] ||
    bs_fail "smtpd_milters: '$(postconf -c "$E2" -h smtpd_milters)', want '$want'"
[ "$(postconf -c "$E2" -h non_smtpd_milters)" = '$smtpd_milters' ] || bs_fail "non_smtpd_milters changed"
[ "$(postconf -c "$E2" -h milter_default_action)" = tempfail ] || bs_fail "the other milter's policy changed"
swaks_send site2 --from sender@client.example --to u@test.example --header 'Subject: two milters' ||
    bs_fail "message refused with two milters: $(last_reply)"
inst site2 --uninstall
expect_rc 0 $? "uninstall site2"
cmp -s "$E2/main.cf" "$BS_TMP/main.cf.orig2" || bs_fail "site2 main.cf differs after uninstall"
bs_pass "existing milters and their policy are kept; uninstall restores them"

# --- the real sensor: the installer's test message reaches it (its log
# names the message's queue id)
sensor_conf site3
sensor_start site3
pf_create site3 none
pf_start site3
ROOT="$BS_TMP/root3"
inst site3 --socket "$(sensor_socket site3)" --check-rcpt u@test.example
expect_rc 0 $? "install site3 with the real sensor"
qid=$(sed -n 's/.*test message passed through the sensor (queue id \([0-9A-F]*\),.*/\1/p' "$OUT")
[ -n "$qid" ] || bs_fail "no queue id in the installer's output"
wait_log "$(sensor_log site3)" "$qid" 10 || bs_fail "the real sensor did not see the test message $qid"
inst site3 --uninstall
expect_rc 0 $? "uninstall site3"
ROOT="$BS_TMP/root"
bs_pass "with the real sensor, the installer's test message passes through it"

# --- a chrooted smtpd/cleanup reaches the socket inside the queue directory
# (dry runs: a chrooted instance cannot reach the test's milter sockets)
pf_create site4 none
E4="$BS_TMP/site4/etc"
Q4=$(postconf -c "$E4" -h queue_directory)
postconf -c "$E4" -F "127.0.0.1:$(pf_port site4)/inet/chroot = y" 'cleanup/unix/chroot = y'
ROOT="$BS_TMP/root4"
inst site4 --dry-run
expect_rc 0 $? "dry run, chrooted smtpd and cleanup"
expect_out 'would set smtpd_milters = \{ unix:/backstop/sensor.sock, connect_timeout=5s, command_timeout=10s, content_timeout=30s \} in'
expect_out "would create directory $Q4/backstop\$"
postconf -c "$E4" -F 'cleanup/unix/chroot = n'
inst site4 --dry-run
expect_rc 78 $? "dry run, chrooted smtpd, unchrooted cleanup"
expect_out 'some of .* run chrooted and some do not'
expect_out 'fix: use an inet socket'
inst site4 --dry-run --smtpd-only
expect_rc 0 $? "dry run, chrooted smtpd only"
expect_out 'would set smtpd_milters = \{ unix:/backstop/sensor.sock, connect_timeout=5s, command_timeout=10s, content_timeout=30s \} in'
! grep -q 'non_smtpd_milters' "$OUT" || bs_fail "--smtpd-only still wires non_smtpd_milters"
bs_pass "chrooted Postfix: socket in the queue directory; a mixed chroot is refused"

# a kept sensor.conf is never rewritten: its /run/backstop socket cannot be
# moved into the queue directory, so wiring Postfix there would let all mail
# pass unfiltered
postconf -c "$E4" -F 'cleanup/unix/chroot = y'
mkdir -p "$ROOT/etc/backstop"
printf 'site = site4\nmilter_socket = unix:/run/backstop/sensor.sock\n' >"$ROOT/etc/backstop/sensor.conf"
cp -p "$ROOT/etc/backstop/sensor.conf" "$BS_TMP/sensor.conf.kept4"
cp -p "$E4/main.cf" "$BS_TMP/main.cf.orig4"
inst site4 --no-check --no-start
expect_rc 78 $? "chrooted Postfix, kept sensor.conf on /run/backstop"
expect_out "fix: set milter_socket = unix:$Q4/backstop/sensor.sock in $ROOT/etc/backstop/sensor.conf"
cmp -s "$E4/main.cf" "$BS_TMP/main.cf.orig4" || bs_fail "a kept /run/backstop socket still changed main.cf"
cmp -s "$ROOT/etc/backstop/sensor.conf" "$BS_TMP/sensor.conf.kept4" || bs_fail "the kept sensor.conf was changed"
[ ! -e "$ROOT/usr/local/sbin/backstop-sensor" ] || bs_fail "a refused install still installed the binary"
ROOT="$BS_TMP/root"
bs_pass "chrooted Postfix with a kept sensor.conf on /run/backstop: exit 78 naming the queue socket"

# --- Exim: manual steps, nothing changed
mkdir -p "$BS_TMP/exim-bin"
printf '#!/bin/sh\nexit 0\n' >"$BS_TMP/exim-bin/exim4"
chmod 755 "$BS_TMP/exim-bin/exim4"
PATH="$BS_TMP/exim-bin:/bin" "$INSTALL" --root "$BS_TMP/root-exim" --build-dir "$BS_BUILD" >"$OUT" 2>&1
expect_rc 69 $? "Exim"
expect_out 'found Exim'
expect_out 'does not call milters'
[ ! -e "$BS_TMP/root-exim" ] || bs_fail "the Exim run wrote files"
bs_pass "Exim: manual steps, exit 69, nothing written"

# --- Sendmail: a sendmail.mc in a temporary directory; m4 is a stub that
# records its input as sendmail.cf (the real m4/sendmail-cf are not needed
# to test the wiring)
SM="$BS_TMP/mail"
mkdir -p "$SM" "$BS_TMP/m4-bin"
cat >"$SM/sendmail.mc" <<'EOF2'
divert(-1)dnl
include(`/usr/share/sendmail/cf/m4/cf.m4')dnl
VERSIONID(`test')dnl
OSTYPE(`debian')dnl
FEATURE(`no_default_msa')dnl
MAILER_DEFINITIONS
MAILER(`local')dnl
MAILER(`smtp')dnl
EOF2
echo "# sendmail.cf before" >"$SM/sendmail.cf"
cp -p "$SM/sendmail.mc" "$BS_TMP/sendmail.mc.orig"
cp -p "$SM/sendmail.cf" "$BS_TMP/sendmail.cf.orig"
SMARGS="--sendmail-mc $SM/sendmail.mc --root $BS_TMP/root-sm --state-dir $BS_TMP/state-sm --build-dir $BS_BUILD"
# shellcheck disable=SC2086
PATH="/usr/sbin:/usr/bin:/sbin:/bin" "$INSTALL" $SMARGS >"$OUT" 2>&1
rc=$?
if ! command -v m4 >/dev/null 2>&1; then
    expect_rc 69 $rc "Sendmail without m4"
    expect_out 'm4 or sendmail-cf is missing'
    expect_out "INPUT_MAIL_FILTER\(\`backstop', \`S=unix:/run/backstop/sensor.sock, T="
    ! grep -q 'F=' "$OUT" || bs_fail "the Sendmail wiring has an F= flag (fail closed)"
    cmp -s "$SM/sendmail.mc" "$BS_TMP/sendmail.mc.orig" || bs_fail "sendmail.mc changed without m4"
    bs_pass "Sendmail without m4: the fail-open line and steps are printed, nothing changed"
fi
printf '#!/bin/sh\necho "# generated by m4 from $1"\ncat "$1"\n' >"$BS_TMP/m4-bin/m4"
chmod 755 "$BS_TMP/m4-bin/m4"
# shellcheck disable=SC2086
PATH="$BS_TMP/m4-bin:$PATH" "$INSTALL" $SMARGS >"$OUT" 2>&1
expect_rc 0 $? "Sendmail install"
line=$(grep -n "^INPUT_MAIL_FILTER(\`backstop'" "$SM/sendmail.mc" | cut -d: -f1)
first_mailer=$(grep -n '^MAILER(' "$SM/sendmail.mc" | head -n 1 | cut -d: -f1)
[ -n "$line" ] && [ "$line" -lt "$first_mailer" ] || bs_fail "INPUT_MAIL_FILTER not before the first MAILER()"
! grep "^INPUT_MAIL_FILTER(\`backstop'" "$SM/sendmail.mc" | grep -q 'F=' || bs_fail "Sendmail wiring is not fail open"
grep -q "^# generated by m4 from $SM/sendmail.mc" "$SM/sendmail.cf" || bs_fail "sendmail.cf not rebuilt"
cp -p "$SM/sendmail.mc" "$BS_TMP/sendmail.mc.installed"
# shellcheck disable=SC2086
PATH="$BS_TMP/m4-bin:$PATH" "$INSTALL" $SMARGS >"$OUT" 2>&1
expect_rc 0 $? "Sendmail second install"
expect_out 'already installed: nothing changed'
cmp -s "$SM/sendmail.mc" "$BS_TMP/sendmail.mc.installed" || bs_fail "second Sendmail run changed sendmail.mc"
# shellcheck disable=SC2086
PATH="$BS_TMP/m4-bin:$PATH" "$INSTALL" $SMARGS --uninstall >"$OUT" 2>&1
expect_rc 0 $? "Sendmail uninstall"
cmp -s "$SM/sendmail.mc" "$BS_TMP/sendmail.mc.orig" || bs_fail "sendmail.mc not restored byte for byte"
cmp -s "$SM/sendmail.cf" "$BS_TMP/sendmail.cf.orig" || bs_fail "sendmail.cf not restored byte for byte"
bs_pass "Sendmail: fail-open filter before MAILER(), idempotent, uninstall restores .mc and .cf"

echo "PASS: test_install_sensor"
