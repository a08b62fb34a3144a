#!/bin/sh
# Each test's whole output in report/logs/<id>.log (issue 10 item 3): the
# local backend's workers keep everything a test printed, whatever the
# record's limits (4 KiB of a pass); every attempt of a retried test; kpar's
# own note on a timeout; a file the report cannot trust (changed since, or
# another run's) is never shown as a result's output: the record's is.
. "${KPAR_TOP_SRCDIR}/tests/lib/common.sh"

P=$T/l
mkdir -p "$P"
cd "$P" || exit 99
printf 'include $(KPAR_MK)\n' > Makefile
# 30,000 numbered lines (about 300 KB): far past what a record keeps
printf '#!/bin/sh\ni=1\nwhile [ $i -le 30000 ]; do echo "line $i of big"; i=$((i+1)); done\n' > big.sh
# fails on its first attempt, passes on the second
printf '#!/bin/sh\nif [ ! -e flaked ]; then : > flaked; echo "first try: broken"; exit 1; fi\necho "second try: fine"\n' > flaky.sh
printf '#!/bin/sh\necho "waiting for ever"\nexec sleep 60\n' > hang.sh
mkdir -p 'odd dir'
printf '#!/bin/sh\necho "odd %%s"\n' > 'odd dir/50% $x.sh'
chmod +x ./*.sh 'odd dir/50% $x.sh'
printf 'big.sh\nflaky.sh\nhang.sh\nodd dir/50%% $x.sh\n' > names

kmake k8s-test 'KPAR_LIST_CMD=cat names' KPAR_WORKERS=2 KPAR_RETRIES=1 KPAR_TEST_TIMEOUT=2 >out 2>&1 &&
	{ cat out; fail "a hanging test passed"; }
cat out
expect_grep '^4 tests: 3 passed, 0 failed, 1 error, 0 skipped, 1 flaky' out

log=.kpar/report/logs/big.sh.log
expect_grep '^line 1 of big$' "$log"
expect_grep '^line 30000 of big$' "$log"
expect_eq "$(grep -c '^line [0-9]* of big$' "$log")" 30000 "lines of big.sh kept"
expect_grep '^PASS: big\.sh \(exit status: 0, ' "$log"
expect_eq "$(tail -n 1 "$log" | cut -c1-12)" "PASS: big.sh" "the closing line, last"
# the record itself kept its 4 KiB, as before
"$KPAR_BIN" state --state-dir .kpar >/dev/null 2>&1 || true
python3 - .kpar/state.db <<'PY' || fail "the record's output of big.sh is not the trimmed one"
import sqlite3, sys
db = sqlite3.connect(sys.argv[1])
out, full = db.execute("SELECT output, full_log FROM results WHERE test = 'big.sh'").fetchone()
assert len(out) < 8192, len(out)
assert full.startswith("sha256:") and len(full) == 71, full
PY

# both attempts of the flaky test, in order, the second headed as such
log=.kpar/report/logs/flaky.sh.log
expect_grep '^first try: broken$' "$log"
expect_grep '^\[kpar: attempt 2 of 2\]$' "$log"
expect_grep '^second try: fine$' "$log"
expect_grep '^FLAKY: flaky\.sh \(exit status: 0, [0-9.]+s, attempts 2, ' "$log"
python3 - "$log" <<'PY' || fail "flaky.sh's attempts out of order"
import sys
t = open(sys.argv[1]).read()
assert t.index("first try") < t.index("[kpar: attempt 2") < t.index("second try"), t
PY

# kpar's own word on the hang, after what the test printed
log=.kpar/report/logs/hang.sh.log
expect_grep '^waiting for ever$' "$log"
expect_grep '^\[kpar: timed out after 2 s; process group stopped\]$' "$log"
expect_grep '^ERROR: hang\.sh ' "$log"

# an id with a space, a % and a $: its log by the one-to-one mapping
log='.kpar/report/logs/odd dir/50%25 $x.sh.log'
[ -f "$log" ] || { ls -R .kpar/report/logs; fail "no log for 'odd dir/50% \$x.sh'"; }
expect_grep '^odd %s$' "$log"

# A whole output changed since its run is not trusted: the report falls
# back to what the record kept (the last 4 KiB of the passing big.sh).  A
# rerun of part of the suite writes the report again, big.sh's result
# reused from run 1.
printf 'not what big.sh printed\n' > .kpar/output/big.sh.log
kmake k8s-test 'KPAR_LIST_CMD=cat names' KPAR_RETRIES=1 KPAR_TEST_TIMEOUT=2 KPAR_ONLY=flaky.sh >rep 2>&1 &&
	{ cat rep; fail "the report of a failed run passed"; }
cat rep
expect_grep '^4 tests: 3 passed, 0 failed, 1 error' rep
log=.kpar/report/logs/big.sh.log
expect_no_grep 'not what big.sh printed' "$log"
expect_grep '^line 30000 of big$' "$log"
expect_no_grep '^line 1 of big$' "$log"
expect_grep '^PASS: big\.sh ' "$log"
# a missing one likewise
rm -rf .kpar/output
kmake k8s-test 'KPAR_LIST_CMD=cat names' KPAR_RETRIES=1 KPAR_TEST_TIMEOUT=2 KPAR_ONLY=flaky.sh >rep 2>&1 &&
	{ cat rep; fail "the report of a failed run passed"; }
expect_grep '^line 30000 of big$' .kpar/report/logs/big.sh.log
expect_no_grep '^line 1 of big$' .kpar/report/logs/big.sh.log

# A partial run reuses big.sh's result from the run before: its log is
# that run's whole output again once the file is back.  A log is the
# worker's file itself (a hard link, no copy); a rerun writes a new file, so
# the last report's log is never rewritten under a reader.
rm -rf .kpar
printf '#!/bin/sh\necho "word: $(cat word)"\n' > word.sh; chmod +x word.sh
echo A > word
kmake k8s-test 'KPAR_TESTS=big.sh flaky.sh word.sh' KPAR_WORKERS=2 >out2 2>&1 || { cat out2; fail "the second suite"; }
expect_eq "$(stat -c %i .kpar/report/logs/word.sh.log)" "$(stat -c %i .kpar/output/word.sh.log)" \
	"the log is a link to the worker's file"
ln .kpar/report/logs/word.sh.log old-word.log
echo B > word
kmake k8s-test 'KPAR_TESTS=big.sh flaky.sh word.sh' KPAR_ONLY=word.sh >out3 2>&1 || { cat out3; fail "KPAR_ONLY=word.sh"; }
cat out3
expect_grep '^word: B$' .kpar/report/logs/word.sh.log
expect_grep '^word: A$' old-word.log
expect_eq "$(grep -c '^line [0-9]* of big$' .kpar/report/logs/big.sh.log)" 30000 \
	"lines of big.sh reused from the run before"
exit 0
