#!/bin/sh
# make -j k8s-test k8s-report: the report is of the run this make starts,
# printed after it, never the previous run's nor a failure before any test.
. "${KPAR_TOP_SRCDIR}/tests/lib/common.sh"

P=$T/r
mkdir -p "$P"
cd "$P" || exit 99
printf 'include $(KPAR_MK)\n' > Makefile
printf '#!/bin/sh\nsleep 0.5\nexit 0\n' > a.sh
printf '#!/bin/sh\nexit 0\n' > b.sh
chmod +x a.sh b.sh

# An empty state dir: no earlier run to report.
kmake -j4 k8s-test k8s-report KPAR_TESTS='a.sh b.sh' >out 2>&1 || { cat out; fail "make -j4 k8s-test k8s-report"; }
expect_no_grep 'no finished run' out
expect_eq "$(grep -c '^2 tests: 2 passed' out)" 2 "both goals report the new run"

# A previous run that failed, then a passing one in the same make: the
# report is the new run's.
printf '#!/bin/sh\nexit 1\n' > b.sh
kmake k8s-test KPAR_TESTS='a.sh b.sh' KPAR_TEST_INPUTS='a.sh b.sh' >out 2>&1 && fail "b.sh failing passed"
printf '#!/bin/sh\nexit 0\n' > b.sh
kmake -j4 k8s-test k8s-report KPAR_TESTS='a.sh b.sh' KPAR_TEST_INPUTS='a.sh b.sh' >out 2>&1 ||
	{ cat out; fail "make -j4 k8s-test k8s-report after a failed run"; }
expect_no_grep '[1-9] failed' out
expect_eq "$(grep -c '^2 tests: 2 passed' out)" 2 "both goals report the new run"
exit 0
