#!/bin/sh
# test_demo - the README's demo runs green: deploy/demo --build-dir BUILD_DIR (the
# programs ctest built, no install, no rebuild) exits 0, its last line is
# "demo: OK", the sections it promises are there, and it leaves nothing behind:
# its temporary directory is gone, no process of it runs, no Postfix of it listens.
SRC=${2:?usage: test BUILD_DIR SOURCE_DIR}
. "$SRC/tests/integration/lib.sh"
bs_init "$@"
bs_need postfix swaks python3

out="$BS_TMP/demo.out"
sh "$SRC/deploy/demo" --build-dir "$BS_BUILD" >"$out" 2>&1
rc=$?
cat "$out"
[ $rc = 0 ] || bs_fail "deploy/demo exited $rc"
[ "$(tail -n 1 "$out")" = "demo: OK" ] || bs_fail "the last line is not 'demo: OK'"
bs_pass "deploy/demo exits 0 with demo: OK"

for want in '^\$ backstop status$' '^\$ backstop decisions list$' '^\$ backstop why [0-9A-Z]{8}$' \
    '^  acme +<- .*<\*\* +550 5\.7\.1 .*\(backstop decision [0-9A-Z]{8}\)$' \
    '^  globex +<- .*<\*\* +550 5\.7\.1 .*\(backstop decision [0-9A-Z]{8}\)$' \
    '^  initech +<- .*<\*\* +550 5\.7\.1 .*\(backstop decision [0-9A-Z]{8}\)$' \
    '^    delivered: /.*/globex/mail/sink/new/' '^    delivered: /.*/acme/mail/sink/new/' \
    '^==> [0-9]+ checks, 0 failed'; do
    grep -Eq -- "$want" "$out" || bs_fail "the output lacks /$want/"
done
bs_pass "status, decisions, why, a 550 at each site and both deliveries are shown"

dir=$(sed -n 's/^==> Starting the fleet on loopback (files in \(.*\))$/\1/p' "$out")
[ -n "$dir" ] || bs_fail "the output does not name the demo's directory"
[ -e "$dir" ] && bs_fail "$dir was left behind"
for pid in $(pgrep -f "$dir"); do
    bs_fail "process $pid of the demo still runs: $(tr '\0' ' ' <"/proc/$pid/cmdline")"
done
for port in $(sed -n 's/^  [a-z]* *Postfix 127\.0\.0\.1:\([0-9]*\) .*/\1/p' "$out"); do
    wait_for 5 sh -c "! ss -Htln 'sport = :$port' | grep -q ." ||
        bs_fail "a Postfix of the demo still listens on $port"
done
bs_pass "nothing left behind: directory, processes and listeners are gone"
