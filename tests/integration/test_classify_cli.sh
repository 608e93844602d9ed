#!/bin/sh
# test_classify_cli - backstop-sensor classify on the project's fixtures:
# classes, exit codes, JSON validity, maildir walking and the help text.
# Usage: sh test_classify_cli.sh BUILD_DIR SOURCE_DIR
set -u
BUILD=${1:?build dir}
SRC=${2:?source dir}
BIN="$BUILD/backstop-sensor"
FIX="$SRC/tests/fixtures/mail"
command -v python3 >/dev/null 2>&1 || { echo "python3 missing: skip"; exit 77; }
[ -x "$BIN" ] || { echo "FAIL: $BIN not built"; exit 1; }
TMP=$(mktemp -d) || exit 1
trap 'rm -rf "$TMP"' EXIT INT TERM
fails=0
fail() { echo "FAIL: $*"; fails=$((fails + 1)); }

# 1. text output: the expected class per fixture, and the keys
"$BIN" classify "$FIX" >"$TMP/out.txt" 2>"$TMP/err.txt"
rc=$?
[ "$rc" -eq 1 ] || fail "fixtures dir holds non-mail files: want exit 1, got $rc"
expect() { # file class [original]
    line=$(grep "/$1 " "$TMP/out.txt")
    case "$line" in
    *" $2 "* | *" $2") ;;
    *) fail "$1: want $2, got: $line" ;;
    esac
    if [ $# -ge 3 ]; then
        case "$line" in *"original=$3 "*) ;; *) fail "$1: want original=$3, got: $line" ;; esac
    fi
}
expect postfix_dsn_rfc822.eml bounce rfc822
expect exim_ndr_inline.eml bounce headers
expect qmail_failure.eml bounce headers
expect exchange_ndr_headers.eml bounce headers
expect contentless_bounce.eml bounce none
expect delay_dsn.eml bounce headers
expect de_unzustellbar.eml bounce
expect fr_non_remis.eml bounce
expect es_no_se_puede_entregar.eml bounce
expect nl_onbestelbaar.eml bounce
expect vacation_autoreply.eml autoreply
expect mdn_read_receipt.eml mdn
expect arf_feedback.eml arf
expect ham_plain.eml normal
expect ham_list.eml normal
expect malformed_mime.eml normal
expect empty.eml 'error="empty"'
expect binary_garbage.eml 'error="binary data"'
expect truncated_headers.eml 'error="truncated header block"'
# the original's subject key is in the text too (the demo's decision is on it), not only JSON
grep -q '/postfix_dsn_rfc822.eml bounce original=rfc822 subject_key="" orig_subject_key="cheap meds #" reasons=' \
    "$TMP/out.txt" || fail "text output lacks orig_subject_key: $(grep postfix_dsn_rfc822 "$TMP/out.txt")"
grep -q '/ham_plain.eml normal .* orig_subject_key="" reasons=' "$TMP/out.txt" ||
    fail "text output: normal mail's empty orig_subject_key: $(grep ham_plain "$TMP/out.txt")"
n=$(wc -l <"$TMP/out.txt")
[ "$n" -eq "$(ls "$FIX" | wc -l)" ] || fail "want one line per file, got $n"

# 2. JSON: every line parses, has the documented fields, fingerprints are 16 hex digits
"$BIN" classify --json "$FIX" >"$TMP/out.json"
python3 - "$TMP/out.json" <<'PY' || fail "JSON output invalid"
import json, re, sys
fields = ["file", "class", "reasons", "original", "subject", "subject_key", "subject_fp",
          "orig_subject", "orig_subject_key", "orig_message_id", "orig_from", "orig_to",
          "reporting_mta", "final_recipient", "action", "status", "diagnostic_code"]
by = {}
for line in open(sys.argv[1], encoding="utf-8"):
    o = json.loads(line)
    name = o["file"].rsplit("/", 1)[-1]
    by[name] = o
    if "error" in o:
        continue
    for f in fields:
        assert f in o, (name, f)
    assert re.fullmatch(r"[0-9a-f]{16}", o["subject_fp"]), o["subject_fp"]
    assert isinstance(o["reasons"], list)
p = by["postfix_dsn_rfc822.eml"]
assert p["class"] == "bounce" and p["original"] == "rfc822", p
assert p["orig_subject"] == "Cheap meds 456" and p["orig_subject_key"] == "cheap meds #", p
assert p["status"] == "5.1.1" and p["action"] == "failed", p
assert p["reporting_mta"] == "mx.reflector.example", p
assert p["orig_message_id"] == "spam.456@victim.example", p
e = by["exchange_ndr_headers.eml"]
assert e["subject_key"] == e["orig_subject_key"] == "cheap meds #", e
assert by["enc_koi8r_b.eml"]["subject"] == "Привет мир", by["enc_koi8r_b.eml"]
assert by["empty.eml"]["error"] == "empty"
PY

# 3. exit codes: all fine -> 0, usage errors (a --client-ip that is no address too) -> 64
"$BIN" classify "$FIX/ham_plain.eml" "$FIX/qmail_failure.eml" >/dev/null
[ $? -eq 0 ] || fail "all-mail run should exit 0"
"$BIN" classify >/dev/null 2>&1
[ $? -eq 64 ] || fail "no PATH should exit 64"
"$BIN" classify --bogus "$FIX" >/dev/null 2>&1
[ $? -eq 64 ] || fail "bad option should exit 64"
"$BIN" classify --client-ip notanip "$FIX/ham_plain.eml" >"$TMP/ip.txt" 2>&1
[ $? -eq 64 ] || fail "--client-ip notanip should exit 64: $(cat "$TMP/ip.txt")"
grep -q 'client-ip notanip is not an IPv4 or IPv6 address' "$TMP/ip.txt" ||
    fail "--client-ip notanip: no clear message: $(cat "$TMP/ip.txt")"
"$BIN" classify --client-ip 2001:db8::7 "$FIX/ham_plain.eml" >/dev/null 2>&1
[ $? -eq 0 ] || fail "--client-ip 2001:db8::7 should be taken"
"$BIN" classify "$TMP/does-not-exist" >"$TMP/missing.txt" 2>&1
[ $? -eq 1 ] || fail "missing file should exit 1"
grep -q 'error=' "$TMP/missing.txt" || fail "missing file should get an error line"

# 4. maildir: cur/ and new/ read, tmp/ ignored
mkdir -p "$TMP/Maildir/cur" "$TMP/Maildir/new" "$TMP/Maildir/tmp"
cp "$FIX/qmail_failure.eml" "$TMP/Maildir/cur/1.host:2,S"
cp "$FIX/ham_plain.eml" "$TMP/Maildir/new/2.host"
cp "$FIX/binary_garbage.eml" "$TMP/Maildir/tmp/3.host"
"$BIN" classify "$TMP/Maildir" >"$TMP/md.txt"
[ $? -eq 0 ] || fail "maildir run should exit 0 (tmp/ skipped)"
[ "$(wc -l <"$TMP/md.txt")" -eq 2 ] || fail "maildir: want 2 lines, got $(cat "$TMP/md.txt")"

# 5. --help reads like a man page
"$BIN" classify --help >"$TMP/help.txt"
[ $? -eq 0 ] || fail "--help should exit 0"
for s in NAME SYNOPSIS DESCRIPTION OPTIONS "EXIT STATUS" EXAMPLES; do
    grep -q "^$s" "$TMP/help.txt" || fail "--help lacks $s"
done

[ "$fails" -eq 0 ] || exit 1
echo "ok: classify CLI"
