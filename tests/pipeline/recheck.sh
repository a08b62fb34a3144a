#!/bin/sh
# Rerun what failed, run what you name (issue 10 item 4): `make k8s-recheck`
# runs only the tests whose latest result failed or erred, `KPAR_ONLY` only
# the tests its globs match; either way the report covers the whole suite
# (the others' latest results, reused and said so), and a later full
# `make k8s-test` with nothing changed runs nothing.
. "${KPAR_TOP_SRCDIR}/tests/lib/common.sh"

mkdir -p "$T/p/t" && cd "$T/p" || exit 99
for n in a c d 'with space'; do
	printf '#!/bin/sh\necho "$KPAR_TEST_ID" >> "$KPAR_RUNLOG"\n' > "t/$n"
done
printf '#!/bin/sh\necho "$KPAR_TEST_ID" >> "$KPAR_RUNLOG"\n[ -e FIXED ] || { echo "b is broken"; exit 1; }\n' > t/b
chmod +x t/*
cat > Makefile <<'MK'
KPAR_LIST_CMD = ls t | sed 's|^|t/|'
include $(KPAR_MK)
MK
export KPAR_RUNLOG=$T/p/run.log
ran() { sort run.log | tr '\n' ,; }

kmake k8s-test >out 2>&1 && { cat out; fail "a failing suite passed"; }
expect_eq "$(ran)" "t/a,t/b,t/c,t/d,t/with space," "the first run"
expect_grep '^5 tests: 4 passed, 1 failed' out

# the fix, then a recheck: only t/b runs; the report is the whole suite's
: > run.log; touch FIXED
kmake k8s-recheck >out 2>&1 || { cat out; fail "the recheck"; }
expect_eq "$(ran)" "t/b," "the recheck ran"
expect_grep '^5 tests: 5 passed, 0 failed' out
expect_grep 'ran 1 of the 5 tests .* the other 4 tests show their latest result, reused from run 1 \(4\)\.$' out
[ "$(grep -c '<testcase' .kpar/report/junit.xml)" = 5 ] || fail "junit.xml lacks tests after a recheck"
[ -e ".kpar/report/logs/t/with space.log" ] || fail "no log for a reused test"

# nothing left to recheck: nothing runs, the verdict stands
: > run.log
kmake k8s-recheck >out 2>&1 || { cat out; fail "a second recheck"; }
expect_eq "$(ran)" "" "a recheck with nothing failed ran"
expect_grep 'nothing to recheck' out
expect_grep '^verdict: PASS' out

# the full suite again: every latest result is of these inputs; none runs
kmake k8s-test >out 2>&1 || { cat out; fail "k8s-test after the recheck"; }
expect_eq "$(ran)" "" "k8s-test after a recheck ran"
expect_grep '^5 tests: 5 passed' out
expect_eq "$(kmake -q k8s-test >/dev/null 2>&1; echo $?)" 0 "make -q after the recheck chain"

# KPAR_ONLY: globs on whole ids, a space matched by ?
kmake k8s-test 'KPAR_ONLY=t/c t/with?space' >out 2>&1 || { cat out; fail "KPAR_ONLY"; }
expect_eq "$(ran)" "t/c,t/with space," "KPAR_ONLY ran"
expect_grep '^5 tests: 5 passed' out
: > run.log
kmake k8s-test >out 2>&1 || { cat out; fail "k8s-test after KPAR_ONLY"; }
expect_eq "$(ran)" "" "k8s-test after KPAR_ONLY ran"

# a glob that matches nothing: a clear error, and the state as it was
kmake k8s-test 'KPAR_ONLY=nope*' >out 2>&1 && { cat out; fail "KPAR_ONLY matching nothing passed"; }
expect_grep "KPAR_ONLY 'nope\\*' matches none of the 5 tests" out
kmake k8s-test >out 2>&1 || { cat out; fail "k8s-test after a bad KPAR_ONLY"; }
expect_eq "$(ran)" "" "k8s-test after a bad KPAR_ONLY ran"

# a changed input after a recheck: the full suite runs again
rm FIXED
kmake k8s-test KPAR_TEST_INPUTS=Makefile KPAR_RETRIES=0 >out 2>&1 && { cat out; fail "b passed without FIXED"; }
expect_eq "$(ran)" "t/a,t/b,t/c,t/d,t/with space," "a changed setting reruns the suite"
exit 0
