# lib.sh - shared helpers for Backstop's integration tests (POSIX sh, sourced)
#
# SYNOPSIS
#   . "$SRC/tests/integration/lib.sh"
#   bs_init "$@"                  # BUILD_DIR SOURCE_DIR; makes $BS_TMP, installs the cleanup trap
#   bs_need swaks postfix         # exit 77 (skip) when a tool is missing
#   pf_create site1 unix:/abs/sock [main.cf lines...]   # throwaway Postfix in $BS_TMP/site1
#   pf_add_service site1 'LINE' ['  -o ...']...   # more master.cf lines (before pf_start)
#   pf_start site1; pf_port site1; pf_log site1; pf_stop site1
#   sensor_conf site1 [key = value lines...]  # writes $BS_TMP/site1/sensor.conf
#   sensor_start site1 [extra args]           # backstop-sensor milter -f, waits for its socket
#   sensor_stop site1
#   swaks_send site1 [swaks args...]          # one message; prints swaks output to $BS_TMP/last.out
#   wait_for TIMEOUT_S CMD...                 # polls CMD every 0.05 s until it succeeds
#   wait_log FILE REGEX [TIMEOUT_S]           # waits until grep -E REGEX FILE matches
#   bs_fail MSG / bs_pass MSG
#
# DESCRIPTION
#   Each test gets one temporary directory ($BS_TMP) holding every Postfix
#   instance (postfix -c DIR/etc, laid out as ../shared/MTA.md describes:
#   DIR/{etc,spool,data,log,mail}), sensor sockets, configs and state. Ports
#   are chosen free at run time. Nothing waits a fixed time: every wait polls
#   for the condition with a timeout. An EXIT trap stops every Postfix and
#   every process started through these helpers and removes $BS_TMP (kept when
#   BS_KEEP=1, for debugging).
#
#   Delivery goes to a maildir per instance (virtual transport): a delivered
#   message is a file under DIR/mail/sink/new, so tests can read added headers.

BS_PIDS=""
BS_INSTANCES=""

bs_init()
{
    BS_BUILD=${1:?usage: test BUILD_DIR SOURCE_DIR}
    BS_SRC=${2:?usage: test BUILD_DIR SOURCE_DIR}
    BS_SENSOR="$BS_BUILD/backstop-sensor"
    BS_TMP=$(mktemp -d /tmp/bs-it.XXXXXX) || exit 1
    # postfix (the user) must traverse to milter sockets and maildirs
    chmod 755 "$BS_TMP"
    trap bs_cleanup EXIT
    trap 'exit 130' INT TERM
    BS_TEST=$(basename "$0" .sh)
    echo "== $BS_TEST: tmp=$BS_TMP"
}

bs_need()
{
    for tool in "$@"; do
        if ! command -v "$tool" >/dev/null 2>&1; then
            echo "SKIP: $tool not installed"
            exit 77
        fi
    done
    if [ "$(id -u)" != 0 ]; then
        echo "SKIP: a throwaway Postfix instance needs root"
        exit 77
    fi
}

bs_cleanup()
{
    rc=$?
    for name in $BS_INSTANCES; do
        postfix -c "$BS_TMP/$name/etc" stop >/dev/null 2>&1
    done
    for pid in $BS_PIDS; do
        kill "$pid" 2>/dev/null
    done
    # libmilter takes up to ~5 s to leave after SIGTERM; do not wait that long
    for pid in $BS_PIDS; do
        i=0
        while kill -0 "$pid" 2>/dev/null && [ $i -lt 20 ]; do
            sleep 0.05
            i=$((i + 1))
        done
        kill -9 "$pid" 2>/dev/null
    done
    for m in ${BS_MOUNTS:-}; do
        umount "$m" 2>/dev/null || umount -l "$m" 2>/dev/null
    done
    if [ $rc -ne 0 ] && [ $rc -ne 77 ]; then
        for name in $BS_INSTANCES; do
            echo "--- $name maillog (tail)"
            tail -n 30 "$BS_TMP/$name/log/maillog" 2>/dev/null
            echo "--- $name sensor log (tail)"
            tail -n 30 "$BS_TMP/$name/sensor.log" 2>/dev/null
        done
    fi
    if [ "${BS_KEEP:-0}" = 1 ]; then
        echo "kept $BS_TMP"
    else
        rm -rf "$BS_TMP"
    fi
    exit $rc
}

bs_fail()
{
    echo "FAIL: $BS_TEST: $*"
    exit 1
}

bs_pass()
{
    echo "ok: $*"
}

# bs_mount DIR MOUNT-ARGS...: mount a file system on DIR (made) until exit
bs_mount()
{
    dir=$1
    shift
    mkdir -p "$dir"
    mount "$@" "$dir" || return 1
    BS_MOUNTS="${BS_MOUNTS:-} $dir"
}

# bs_track PID: stop this process at exit
bs_track()
{
    BS_PIDS="$BS_PIDS $1"
}

# bs_free_port: prints a TCP port no socket uses (random in 20000-31999: below the kernel's
# ephemeral range, 32768-60999 by default, so no outgoing connection takes it before the bind).
# Callers take it as $(bs_free_port), a subshell, so the ports handed out are remembered in a
# file of the test's tmp dir, not a variable: two calls never return the same port.
bs_free_port()
{
    used="${BS_TMP:?bs_free_port: call bs_init first}/ports-used"
    while :; do
        p=$(($(od -An -N2 -tu2 /dev/urandom) % 12000 + 20000))
        if grep -qx "$p" "$used" 2>/dev/null; then
            continue
        fi
        if ! ss -Htan "sport = :$p" | grep -q .; then
            echo "$p" >>"$used"
            echo "$p"
            return 0
        fi
    done
}

# wait_for TIMEOUT_S CMD...: polls until CMD succeeds; returns 1 on timeout
wait_for()
{
    t_end=$(($(date +%s%N) / 1000000 + $1 * 1000))
    shift
    while :; do
        if "$@" >/dev/null 2>&1; then
            return 0
        fi
        if [ $(($(date +%s%N) / 1000000)) -ge $t_end ]; then
            return 1
        fi
        sleep 0.05
    done
}

# wait_log FILE REGEX [TIMEOUT_S]: waits until the regex shows up in the file
wait_log()
{
    wait_for "${3:-10}" grep -Eq -- "$2" "$1"
}

# log_count FILE REGEX: number of matching lines (0 when the file is missing)
log_count()
{
    grep -Ec -- "$2" "$1" 2>/dev/null || true
}

# pf_dir NAME / pf_port NAME / pf_log NAME
pf_dir()
{
    echo "$BS_TMP/$1"
}

pf_port()
{
    cat "$BS_TMP/$1/port"
}

pf_log()
{
    echo "$BS_TMP/$1/log/maillog"
}

# pf_create NAME MILTER [MAIN_CF_LINE...]: lays out a throwaway instance.
# MILTER is an smtpd_milters value (unix:/abs/path or inet:127.0.0.1:PORT), or
# "none". Extra "key = value" lines replace the defaults of the same key.
pf_create()
{
    name=$1
    milter=$2
    shift 2
    d="$BS_TMP/$name"
    mkdir -p "$d/etc" "$d/spool" "$d/data" "$d/log" "$d/mail"
    chmod 755 "$d" "$d/spool"
    chown postfix "$d/data"
    chmod 700 "$d/data"
    chown 65534:65534 "$d/mail"
    port=$(bs_free_port)
    echo "$port" >"$d/port"
    {
        echo "compatibility_level = 3.6"
        echo "queue_directory = $d/spool"
        echo "data_directory = $d/data"
        echo "myhostname = $name.localdomain"
        echo "mydestination ="
        echo "alias_maps ="
        echo "alias_database ="
        echo "local_recipient_maps ="
        echo "inet_interfaces = loopback-only"
        echo "inet_protocols = ipv4"
        echo "mynetworks = 127.0.0.0/8"
        echo "smtpd_relay_restrictions = reject_unauth_destination"
        echo "maillog_file_prefixes = /var, /dev/stdout, $d"
        echo "maillog_file = $d/log/maillog"
        echo "virtual_mailbox_domains = test.example"
        echo "virtual_mailbox_maps = static:sink/"
        echo "virtual_mailbox_base = $d/mail"
        echo "virtual_uid_maps = static:65534"
        echo "virtual_gid_maps = static:65534"
        echo "virtual_transport = virtual"
        if [ "$milter" != none ]; then
            echo "smtpd_milters = $milter"
        fi
        echo "milter_protocol = 6"
        echo "milter_default_action = accept"
        echo "notify_classes ="
        echo "smtpd_error_sleep_time = 0"
        echo "smtpd_client_connection_rate_limit = 0"
        echo "smtpd_authorized_xforward_hosts = 127.0.0.0/8"
        echo "smtpd_authorized_xclient_hosts = 127.0.0.0/8"
        for line in "$@"; do
            echo "$line"
        done
    } >"$d/etc/main.cf.all"
    # a later line for the same parameter replaces the default (without postconf warnings)
    awk -F' *= *' '{ k[NR] = $1; l[NR] = $0; last[$1] = NR }
        END { for (i = 1; i <= NR; i++) if (last[k[i]] == i) print l[i] }' \
        "$d/etc/main.cf.all" >"$d/etc/main.cf"
    rm -f "$d/etc/main.cf.all"
    cat >"$d/etc/master.cf" <<EOF
127.0.0.1:$port inet  n       -       n       -       -       smtpd
pickup    unix  n       -       n       60      1       pickup
cleanup   unix  n       -       n       -       0       cleanup
qmgr      unix  n       -       n       300     1       qmgr
tlsmgr    unix  -       -       n       1000?   1       tlsmgr
rewrite   unix  -       -       n       -       -       trivial-rewrite
bounce    unix  -       -       n       -       0       bounce
defer     unix  -       -       n       -       0       bounce
trace     unix  -       -       n       -       0       bounce
verify    unix  -       -       n       -       1       verify
flush     unix  n       -       n       1000?   0       flush
proxymap  unix  -       -       n       -       -       proxymap
proxywrite unix -       -       n       -       1       proxymap
smtp      unix  -       -       n       -       -       smtp
relay     unix  -       -       n       -       -       smtp
showq     unix  n       -       n       -       -       showq
error     unix  -       -       n       -       -       error
retry     unix  -       -       n       -       -       error
discard   unix  -       -       n       -       -       discard
local     unix  -       n       n       -       -       local
virtual   unix  -       n       n       -       -       virtual
lmtp      unix  -       -       n       -       -       lmtp
anvil     unix  -       -       n       -       1       anvil
scache    unix  -       -       n       -       1       scache
postlog   unix-dgram n  -       n       -       1       postlogd
EOF
    # Postfix delays reading a main.cf younger than ~2 s
    touch -d '-5 seconds' "$d/etc/main.cf" "$d/etc/master.cf"
    BS_INSTANCES="$BS_INSTANCES $name"
}

# pf_add_service NAME LINE...: appends lines to the instance's master.cf (a
# second smtpd listener, a dedicated cleanup service); call before pf_start.
pf_add_service()
{
    d="$BS_TMP/$1"
    shift
    for line in "$@"; do
        echo "$line" >>"$d/etc/master.cf"
    done
    touch -d '-5 seconds' "$d/etc/master.cf"
}

# pf_start NAME: check (creates queue dirs) and start; waits for the port
pf_start()
{
    d="$BS_TMP/$1"
    postfix -c "$d/etc" check || bs_fail "postfix check $1 (see $d/log/maillog)"
    postfix -c "$d/etc" start || bs_fail "postfix start $1 (see $d/log/maillog)"
    wait_for 10 ss -Htln "sport = :$(pf_port "$1")" || bs_fail "postfix $1 does not listen"
    if grep -Eq 'fatal|panic' "$d/log/maillog" 2>/dev/null; then
        grep -E 'fatal|panic' "$d/log/maillog"
        bs_fail "postfix $1 logged a fatal error"
    fi
}

# pf_stop NAME
pf_stop()
{
    postfix -c "$BS_TMP/$1/etc" stop >/dev/null 2>&1
}

# pf_delivered NAME: number of messages delivered to the instance's maildir
pf_delivered()
{
    ls "$BS_TMP/$1/mail/sink/new" 2>/dev/null | wc -l
}

# wait_delivered NAME N [TIMEOUT_S]: waits until N messages are in the maildir
wait_delivered()
{
    wait_for "${3:-10}" sh -c "test \$(ls '$BS_TMP/$1/mail/sink/new' 2>/dev/null | wc -l) -ge $2"
}

# pf_last_delivered NAME: path of the newest delivered message
pf_last_delivered()
{
    ls -t "$BS_TMP/$1/mail/sink/new"/* 2>/dev/null | head -n 1
}

# sensor_conf NAME [LINE...]: writes a sensor config for instance NAME with a
# unix socket in its directory and state under it; lines are appended.
sensor_conf()
{
    name=$1
    shift
    d="$BS_TMP/$name"
    mkdir -p "$d/state"
    {
        echo "site = $name"
        echo "sensor_id = $name-s1"
        echo "milter_socket = unix:$d/sensor.sock"
        echo "milter_umask = 000"
        echo "state_directory = $d/state"
        for line in "$@"; do
            echo "$line"
        done
    } >"$d/sensor.conf"
}

# sensor_socket NAME: the smtpd_milters value for the instance's sensor
sensor_socket()
{
    echo "unix:$BS_TMP/$1/sensor.sock"
}

# sensor_start NAME [ARGS...]: runs the sensor in the foreground (background
# job), log in DIR/sensor.log, and waits until its socket exists.
sensor_start()
{
    name=$1
    shift
    d="$BS_TMP/$name"
    rm -f "$d/sensor.sock"
    "$BS_SENSOR" milter -c "$d/sensor.conf" -f "$@" >>"$d/sensor.log" 2>&1 &
    pid=$!
    echo "$pid" >"$d/sensor.pid"
    bs_track "$pid"
    if ! wait_for 10 test -S "$d/sensor.sock"; then
        cat "$d/sensor.log"
        bs_fail "sensor $name did not create its socket"
    fi
}

# sensor_stop NAME: SIGTERM, then SIGKILL after a grace period
sensor_stop()
{
    d="$BS_TMP/$1"
    pid=$(cat "$d/sensor.pid" 2>/dev/null) || return 0
    kill "$pid" 2>/dev/null
    wait_for 8 sh -c "! kill -0 $pid" || kill -9 "$pid" 2>/dev/null
    rm -f "$d/sensor.pid"
}

# sensor_log NAME: path of the sensor's log
sensor_log()
{
    echo "$BS_TMP/$1/sensor.log"
}

# swaks_send NAME [SWAKS ARGS...]: sends one message to instance NAME; the
# output goes to $BS_TMP/last.out; returns swaks' exit status (0 = accepted,
# 26 = rejected after DATA, see swaks(1)). The null sender is --from '<>'.
swaks_send()
{
    name=$1
    shift
    swaks --server "127.0.0.1:$(pf_port "$name")" --helo client.example \
        --timeout 30 "$@" >"$BS_TMP/last.out" 2>&1
}

# last_reply: the server's reply to the end of DATA in the last swaks run
last_reply()
{
    grep -E '^<(-|\*\*) +[0-9]{3} ' "$BS_TMP/last.out" | tail -n 2 | head -n 1
}

# bounce_file OUT SUBJECT ORIG_SUBJECT: writes a DSN (multipart/report with
# message/delivery-status and the original's headers) to OUT
bounce_file()
{
    cat >"$1" <<EOF
From: Mail Delivery System <MAILER-DAEMON@mx.reflector.example>
To: victim@test.example
Subject: $2
Message-ID: <bounce-$$-$(date +%s%N)@mx.reflector.example>
Date: Mon, 1 Jan 2024 00:00:00 +0000
MIME-Version: 1.0
Content-Type: multipart/report; report-type=delivery-status; boundary="BNDRY"
Auto-Submitted: auto-replied

--BNDRY
Content-Type: text/plain

This message was created automatically by mail delivery software.
A message that you sent could not be delivered to one or more of its recipients.

--BNDRY
Content-Type: message/delivery-status

Reporting-MTA: dns; mx.reflector.example

Final-Recipient: rfc822; nobody@reflector.example
Action: failed
Status: 5.1.1
Diagnostic-Code: smtp; 550 5.1.1 user unknown

--BNDRY
Content-Type: text/rfc822-headers

From: victim@test.example
To: nobody@reflector.example
Subject: $3
Message-ID: <${4:-orig-$$-$(date +%s%N)}@spammer.example>

--BNDRY--
EOF
}
