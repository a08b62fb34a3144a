#!/bin/sh
# What the summary, the progress lines, `kpar state` and JUnit say agree:
# one vocabulary (passed, failed, errors, skipped, flaky), an error is not a
# failure, skipped tests are named with their reason, the wall time is the
# run's (one sub-second clock) so the speed-up is possible, and counts of one
# read "1 test", "1 error".
. "${KPAR_TOP_SRCDIR}/tests/lib/common.sh"

P=$T/s
mkdir -p "$P"
cd "$P" || exit 99
printf 'include $(KPAR_MK)\n' > Makefile
printf '#!/bin/sh\nsleep 1.5\n' > slow.sh
printf '#!/bin/sh\nsleep 1\n' > mid.sh
printf '#!/bin/sh\nexit 0\n' > quick.sh
printf '#!/bin/sh\necho "expected 2, got 3"; exit 1\n' > fail.sh
printf '#!/bin/sh\necho "cannot set up"; exit 99\n' > err.sh
# as automake's and TAP's: the reason is the last line the test printed
printf '#!/bin/sh\necho "probing..."\necho "SKIP: needs network"\necho\nexit 77\n' > skip.sh
chmod +x ./*.sh

# 2 workers, one bucket per test: the longest test bounds the wall time
# from below, the time measured around make bounds it from above.
t0=$(date +%s.%N)
kmake k8s-test 'KPAR_TESTS=slow.sh mid.sh quick.sh fail.sh err.sh skip.sh' KPAR_WORKERS=2 \
	KPAR_BUCKETS=6 >out 2>&1 && { cat out; fail "a failing suite passed"; }
t1=$(date +%s.%N)
cat out
expect_grep '^6 tests: 3 passed, 1 failed, 1 error, 1 skipped, 0 flaky' out
# KPAR_TEST_LINES=failed (the default): a line per failure as it comes in,
# none for the others, and no colour in a file
expect_grep '^FAIL: fail\.sh \(' out
expect_grep '^ERROR: err\.sh \(' out
expect_no_grep '^(PASS|SKIP): [^ ]+ \([0-9.]+s\)$' out
if grep -q "$(printf '\033')" out; then fail "colour codes in a file"; fi
# each test's output in its own file, named by the summary for a failure
expect_grep '^    log: \.kpar/report/logs/fail\.sh\.log$' out
expect_grep '^expected 2, got 3$' .kpar/report/logs/fail.sh.log
expect_grep '^FAIL: fail\.sh \(exit status: 1, ' .kpar/report/logs/fail.sh.log
expect_grep '^SKIP: needs network$' .kpar/report/logs/skip.sh.log
[ "$(ls .kpar/report/logs | wc -l)" = 6 ] || fail "not one log per test: $(ls .kpar/report/logs)"

# The wall time: never negative, never short of the longest test, never
# longer than make took, and test time / wall at most the 2 workers.
line=$(grep '| *wall ' out)
python3 - "$t0" "$t1" "$line" <<'PY' || fail "wall time out of bounds: $line"
import re, sys
t0, t1, line = float(sys.argv[1]), float(sys.argv[2]), sys.argv[3]
def secs(s):
    m = re.fullmatch(r'(?:(\d+)m)?([\d.]+)s', s)
    return int(m.group(1) or 0) * 60 + float(m.group(2))
m = re.search(r'wall (\S+), test time (\S+)', line)
wall, test = secs(m.group(1)), secs(m.group(2))
outer = t1 - t0
print("wall %.2f, test time %.2f, make took %.2f" % (wall, test, outer))
assert 1.5 <= wall <= outer + 0.01, "wall %.2f not in [1.5, %.2f]" % (wall, outer)
# the printed values are rounded to 0.01 s
assert test <= 2 * (wall + 0.005) + 0.01, "test time %.2f on 2 workers in %.2f" % (test, wall)
PY

# Errors are not failures: the per-bucket lines add up to the summary.
python3 - out <<'PY' || fail "per-bucket lines disagree with the summary"
import re, sys
f = e = 0
for line in open(sys.argv[1]):
    m = re.search(r'bucket \d+/\d+ done: \d+ tests?, (\d+) failed, (\d+) errors?,', line)
    if m:
        f += int(m.group(1)); e += int(m.group(2))
assert (f, e) == (1, 1), (f, e)
PY
expect_eq "$("$KPAR_BIN" state --state-dir .kpar tests-failed)" 1 "kpar state tests-failed"
expect_eq "$("$KPAR_BIN" state --state-dir .kpar tests-errors)" 1 "kpar state tests-errors"
expect_eq "$("$KPAR_BIN" state --state-dir .kpar tests-skipped)" 1 "kpar state tests-skipped"
expect_eq "$("$KPAR_BIN" state --state-dir .kpar tests-passed)" 3 "kpar state tests-passed"
expect_eq "$("$KPAR_BIN" state --state-dir .kpar resumable)" 0 "kpar state resumable after a complete run"
printf 'x:\n\t@echo "failed=$(kpar-state tests-failed) errors=$(kpar-state tests-errors)"\ninclude $(KPAR_MK)\n' > state.mk
kmake -f state.mk x >st 2>&1 || { cat st; fail "make with \$(kpar-state)"; }
expect_grep '^failed=1 errors=1$' st "\$(kpar-state) counts as the summary does"

# Skipped tests are named, with the reason they gave.
expect_grep '^Skipped:$' out
expect_grep '^  skip.sh  \(SKIP: needs network\)$' out
python3 - .kpar/report/junit.xml <<'PY' || fail "JUnit's <skipped/> has no message"
import sys, xml.etree.ElementTree as ET
for tc in ET.parse(sys.argv[1]).getroot().iter('testcase'):
    if tc.get('name') == 'skip.sh':
        sk = tc.find('skipped')
        assert sk is not None and sk.get('message') == 'SKIP: needs network', ET.tostring(tc)
        break
else:
    raise AssertionError('no testcase skip.sh')
PY

# Counts of one are singular.
rm -rf .kpar
kmake k8s-test KPAR_TESTS=err.sh KPAR_WORKERS=1 >one 2>&1 && { cat one; fail "an erroring test passed"; }
cat one
expect_grep '^1 test: 0 passed, 0 failed, 1 error, 0 skipped, 0 flaky' one
expect_grep 'plan [^,]*, 1 bucket$' one
expect_grep 'done: 1 test, 0 failed, 1 error,' one
expect_grep 'run [0-9]+ complete: 1 test, 0 failed, 1 error,' one
expect_no_grep '\b1 (tests|errors|buckets)\b' one

# KPAR_TEST_LINES=all prints every test as automake does; none prints none;
# a bad value is refused, naming the setting.
rm -rf .kpar
kmake k8s-test 'KPAR_TESTS=quick.sh skip.sh' KPAR_TEST_LINES=all >all 2>&1 || { cat all; fail "KPAR_TEST_LINES=all"; }
expect_grep '^PASS: quick\.sh \(' all
expect_grep '^SKIP: skip\.sh \(' all
rm -rf .kpar
kmake k8s-test 'KPAR_TESTS=quick.sh fail.sh' KPAR_TEST_LINES=none >none 2>&1 && { cat none; fail "a failing suite passed"; }
expect_no_grep '^(PASS|FAIL): [^ ]+ \([0-9.]+s\)$' none
kmake k8s-test KPAR_TESTS=quick.sh KPAR_TEST_LINES=some >bad 2>&1 && { cat bad; fail "KPAR_TEST_LINES=some accepted"; }
expect_grep "KPAR_TEST_LINES: 'some' is not none, failed or all" bad
exit 0
