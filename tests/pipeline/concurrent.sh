#!/bin/sh
# Two `make k8s-test` at once in one project (issue 9 item 1): the second
# waits on the run lock, then takes the run the first just completed (the
# same plan and inputs), or continues it if the first was killed; the suite
# never runs twice and the first make never fails for it.  A second make
# with a changed input still runs again.
. "${KPAR_TOP_SRCDIR}/tests/lib/common.sh"

mkproject() { # DIR
	mkdir -p "$1/t"
	for i in $(seq 1 8); do
		cat > "$1/t/test$i" <<SH
#!/bin/sh
echo "\$(basename \$0)" >> "\$KPAR_RUNLOG"
sleep 0.4
exit 0
SH
		chmod +x "$1/t/test$i"
	done
	cat > "$1/Makefile" <<'MK'
KPAR_LIST_CMD = ls t/*
KPAR_TEST_ENV = FLAVOUR
include $(KPAR_MK)
MK
}

# wait_for CMD...: until CMD succeeds (at most 30 s)
wait_for() {
	i=0
	until "$@"; do
		i=$((i + 1)); [ $i -lt 300 ] || fail "timed out waiting for: $*"
		sleep 0.1
	done
}
running() { [ "$("$KPAR_BIN" state --state-dir .kpar status 2>/dev/null)" = running ]; }
waiting() { grep -q 'waiting for it' "$1"; }
collected() { [ "$("$KPAR_BIN" state --state-dir .kpar buckets-done 2>/dev/null || echo 0)" -ge 1 ]; }
runs() { sqlite3 .kpar/state.db 'SELECT count(*) FROM runs;'; }

# 1. Both makes finish with the first's verdict; the suite ran once.
mkproject "$T/a"
cd "$T/a" || exit 99
export KPAR_RUNLOG=$T/a/run.log
kmake k8s-test KPAR_WORKERS=2 >out1 2>&1 &
pid1=$!
KPAR_TEST_PIDS=$pid1
wait_for running
kmake k8s-test KPAR_WORKERS=2 >out2 2>&1 &
pid2=$!
KPAR_TEST_PIDS="$pid1 $pid2"
wait "$pid1"; rc1=$?
wait "$pid2"; rc2=$?
KPAR_TEST_PIDS=
note "first make: rc $rc1; second make: rc $rc2"
[ $rc1 = 0 ] || { cat out1; fail "the first make failed (rc $rc1) while a second one ran"; }
[ $rc2 = 0 ] || { cat out2; fail "the second make failed (rc $rc2)"; }
expect_grep '8 tests: 8 passed' out1
expect_grep '8 tests: 8 passed' out2
expect_eq "$(wc -l < run.log | tr -d ' ')" 8 "tests run by two concurrent makes of one plan"
expect_eq "$(runs)" 1 "runs made by two concurrent makes of one plan"
if grep -q 'waiting for it' out2; then
	expect_grep 'completed while this one waited; taking its verdict' out2
fi
expect_eq "$(cat .kpar/report/verdict)" pass "verdict"

# 2. The first is killed while the second waits: the second continues its
# run (collected buckets are not run again), no second run.
mkproject "$T/b"
cd "$T/b" || exit 99
export KPAR_RUNLOG=$T/b/run.log
setsid env $KPAR_MAKE_ENV make --no-print-directory KPAR="$KPAR_BIN" KPAR_PLUGIN="$KPAR_PLUGIN" \
	KPAR_MK="$KPAR_MK" KPAR_PROGRESS=never KPAR_WORKERS=1 KPAR_BUCKETS=8 k8s-test >out1 2>&1 &
pid1=$!
KPAR_TEST_PIDS=$pid1
wait_for running
kmake k8s-test KPAR_WORKERS=1 KPAR_BUCKETS=8 >out2 2>&1 &
pid2=$!
KPAR_TEST_PIDS="$pid1 $pid2"
wait_for waiting out2
# after at least one bucket was collected
wait_for collected
kill -9 -"$pid1" 2>/dev/null
wait "$pid1" 2>/dev/null
wait "$pid2"; rc2=$?
KPAR_TEST_PIDS=
[ $rc2 = 0 ] || { cat out2; fail "the second make failed (rc $rc2) after the first was killed"; }
expect_grep 'interrupted while this one waited; continuing it' out2
expect_grep '8 tests: 8 passed' out2
expect_eq "$(runs)" 1 "runs after the waiting make continued the killed one"
junit_tests .kpar/report/junit.xml > junit
expect_eq "$(wc -l < junit | tr -d ' ')" 8 "tests in the continued run's report"
expect_eq "$(cut -f2 junit | sort -u | wc -l | tr -d ' ')" 8 "distinct tests in the report"

# 3. A deliberate rerun with a changed input (a KPAR_TEST_ENV value) that
# waited for the first still runs: a different plan is a new run.
mkproject "$T/c"
cd "$T/c" || exit 99
export KPAR_RUNLOG=$T/c/run.log
FLAVOUR=one kmake k8s-test KPAR_WORKERS=2 >out1 2>&1 &
pid1=$!
KPAR_TEST_PIDS=$pid1
wait_for running
FLAVOUR=two kmake k8s-test KPAR_WORKERS=2 >out2 2>&1 &
pid2=$!
KPAR_TEST_PIDS="$pid1 $pid2"
wait "$pid1"
wait "$pid2"; rc2=$?
KPAR_TEST_PIDS=
[ $rc2 = 0 ] || { cat out2; fail "the changed make failed (rc $rc2)"; }
expect_no_grep 'taking its verdict|continuing it' out2 "a changed input took the old run"
expect_eq "$(runs)" 2 "runs after a changed input"
expect_eq "$(wc -l < run.log | tr -d ' ')" 16 "tests run for two different inputs"
exit 0
