#!/bin/sh
# The example project end to end on the local default: a first run, a
# second run that does nothing, a changed environment input, and a failure.
. "${KPAR_TOP_SRCDIR}/tests/lib/common.sh"

P=$T/hello
copy_example hello-c "$P"
cd "$P" || fail "no example"

kmake k8s-test KPAR_WORKERS=3 >out1 2>&1; rc=$?
cat out1
expect_eq "$rc" 0 "first make k8s-test exit status"
expect_grep '^8 tests: 7 passed, 0 failed, 0 errors, 1 skipped, 0 flaky' out1
expect_grep 'verdict: PASS' out1
# The local backend hands its workers their tests: no bucket file is
# written, until one is asked for; then all of them are, each test once.
[ ! -e .kpar/buckets/test-group-1 ] || fail "bucket files written for the local backend"
kmake .kpar/buckets/test-group-1 KPAR_WORKERS=3 >outb 2>&1 || { cat outb; fail "make a bucket file"; }
nb=$(python3 -c 'import json, sys; print(len(json.load(open(sys.argv[1]))["buckets"]))' .kpar/plan.json)
expect_eq "$(ls .kpar/buckets | wc -l)" "$nb" "bucket files written on demand"
for t in greet_basic greet_fixture greet_overflow sum_small sum_medium sum_large strict_mode network_only; do
	c=$(grep -c "^tests/$t\$" .kpar/buckets/test-group-*  | awk -F: '{s+=$2} END {print s}')
	expect_eq "$c" 1 "tests/$t in bucket files"
done
# one bucket run by hand, as its result record
b=$(grep -l '^tests/sum_small$' .kpar/buckets/test-group-* | sed 's/.*-//')
kmake ".kpar/results/test-group-$b.rec" KPAR_WORKERS=3 >outr 2>&1 || { cat outr; fail "run one bucket by hand"; }
"$KPAR_BIN" worker --decode ".kpar/results/test-group-$b.rec" >dec 2>&1 || { cat dec; fail "decode"; }
expect_grep 'tests/sum_small' dec
junit_tests .kpar/report/junit.xml > junit1
expect_eq "$(wc -l < junit1)" 8 "testcases in junit.xml"
expect_grep '^skipped	tests/network_only$' junit1
run1=$("$KPAR_BIN" state --state-dir .kpar run)

# Nothing changed: no worker runs, same verdict, same run.
kmake k8s-test KPAR_WORKERS=3 >out2 2>&1; rc=$?
expect_eq "$rc" 0 "second make k8s-test exit status"
expect_no_grep 'kpar: run [0-9]+ complete' out2 "second run ran buckets"
expect_grep 'verdict: PASS' out2
expect_eq "$("$KPAR_BIN" state --state-dir .kpar run)" "$run1" "run id after a no-op make"

# A variable the tests read (KPAR_TEST_ENV) changed: they run again, one fails.
HELLO_STRICT=1 kmake k8s-test KPAR_WORKERS=3 KPAR_PROGRESS=always >out3 2>&1; rc=$?
cat out3
[ "$rc" != 0 ] || fail "a failing test must fail make k8s-test"
expect_grep '^FAIL: tests/strict_mode' out3
expect_grep 'strict mode: expected a greeting without punctuation' out3
expect_grep '^8 tests: 6 passed, 1 failed' out3
expect_grep 'verdict: FAIL' out3
# The live line (forced on: the output is a file here) redraws in place.
expect_grep "$(printf '\r')"'.*kpar: buckets [0-9]+/8 done, [0-9]+ running, [0-9]+ pending \| [0-9]+ tests?, [0-9]+ failed, [0-9]+ errors? \| [0-9:]+ elapsed, ~[0-9:]+ left' out3
junit_tests .kpar/report/junit.xml > junit3
expect_grep '^failure	tests/strict_mode$' junit3

# The failed verdict stands until something changes (the worker count
# shapes the plan, so it stays the same); k8s-report prints it.
HELLO_STRICT=1 kmake k8s-test KPAR_WORKERS=3 >out4 2>&1 && fail "unchanged failing run must still exit non-zero"
expect_no_grep 'kpar: run [0-9]+ complete' out4 "unchanged failing run ran again"
kmake k8s-report >out5 2>&1 && fail "k8s-report of a failed run must exit non-zero"
expect_grep 'verdict: FAIL' out5

# A rebuilt test program with new contents reruns the suite.
sleep 1
sed -i 's/take(0.2);/take(0.25);/' tests/greet_basic.c
kmake k8s-test >out6 2>&1 || { cat out6; fail "rebuilt suite failed"; }
expect_grep 'kpar: run [0-9]+ complete' out6 "changed test program did not rerun"

# The history learnt the durations: sum_large is the slowest.
slowest=$(awk '/^Slowest tests:/ {getline; print $2; exit}' out6)
expect_eq "$slowest" tests/sum_large "slowest test"

kmake k8s-clean >/dev/null 2>&1 || fail "k8s-clean"
[ ! -e .kpar ] || fail "k8s-clean left .kpar"
exit 0
