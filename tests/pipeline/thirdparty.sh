#!/bin/sh
# A real third-party suite (CPython's standard-library tests, which nobody
# here wrote) driven through kpar: every module is reported exactly once and
# with the same verdict regrtest gives it when run alone.
. "${KPAR_TOP_SRCDIR}/tests/lib/common.sh"

PY=/usr/bin/python3
$PY -c 'import test.libregrtest' 2>/dev/null || skip "CPython's test suite is not installed (libpython3.11-testsuite)"
P=$T/cpython
copy_example cpython-stdlib "$P"
cd "$P" || exit 99
# Quick modules, one of which is skipped on Linux (test_winreg).
MATCH='^test_(bisect|heapq|fnmatch|shlex|textwrap|base64|binascii|hmac|uuid|wave|winreg|string|enum)$'
kmake k8s-test MATCH="$MATCH" KPAR_WORKERS=2 >out 2>&1; rc=$?
cat out
junit_tests .kpar/report/junit.xml > got
# The reference: regrtest on each module alone, mapped as run-one maps it.
: > want
for m in $($PY -m test --list-tests | grep -E "$MATCH"); do
	./run-one "$m" >/dev/null 2>&1
	case $? in 0) s=pass;; 77) s=skipped;; *) s=failure;; esac
	printf '%s\t%s\n' "$s" "$m" >> want
done
sort -o want want
expect_eq "$(wc -l < want)" 13 "modules selected"
cmp -s want got || { diff want got; fail "kpar's results differ from regrtest's own"; }
grep -q '^failure' want && expected_rc=2 || expected_rc=0
expect_eq "$rc" "$expected_rc" "make k8s-test exit status"
expect_grep '^skipped	test_winreg$' got

# One kpar test per test case (UNIT=case): regrtest lists the cases, each
# bucket runs in one regrtest process whose JUnit XML kpar reads.  Every
# case regrtest itself runs is reported once, with its verdict.
CASES='^test_(bisect|heapq|fnmatch|shlex)$'
kmake k8s-test UNIT=case MATCH="$CASES" KPAR_WORKERS=2 KPAR_BUCKETS=5 >out 2>&1; rc=$?
cat out
expect_eq "$rc" 0 "make k8s-test UNIT=case exit status"
junit_tests .kpar/report/junit.xml > got
$PY -m test --list-cases $($PY -m test --list-tests | grep -E "$CASES") | sed 's/^/pass	/' | sort > want
expect_eq "$(grep -c 'test_shlex\.' want)" "$(grep -c 'test_shlex\.' got)" "shlex cases"
cmp -s want got || { diff want got | head -20; fail "kpar's cases differ from regrtest's list"; }
expect_grep '^pass	test\.test_bisect\.TestBisectC\.test_insort$' got
# five buckets ran: the run is really split at the case level
expect_eq "$(grep -cE '^kpar: bucket [1-5]/5 done' out)" 5 "buckets run"
exit 0
