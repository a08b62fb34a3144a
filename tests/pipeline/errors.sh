#!/bin/sh
# Bad input gets a clear error naming it and a non-zero exit; bad tests get
# a result, never a crash; a flaky test is reported as flaky; a worker that
# dies is retried.
. "${KPAR_TOP_SRCDIR}/tests/lib/common.sh"

P=$T/e
mkdir -p "$P"
cd "$P" || exit 99
printf 'include $(KPAR_MK)\n' > Makefile

kmake k8s-test >out 2>&1 && fail "no tests accepted"
expect_grep 'no tests: set KPAR_TESTS or KPAR_LIST_CMD' out
kmake k8s-test 'KPAR_LIST_CMD=echo oops >&2; exit 3' >out 2>&1 && fail "failing list command accepted"
expect_grep "KPAR_LIST_CMD 'echo oops >&2; exit 3' failed \(exit status 3\): oops" out
kmake k8s-test KPAR_TESTS=x KPAR_WORKERS=many >out 2>&1 && fail "KPAR_WORKERS=many accepted"
expect_grep "KPAR_WORKERS: 'many' is not a whole number" out
# A bad backend is refused by the first step that reads the settings,
# whether or not anything else changed (issue 9 item 8).
kmake k8s-test KPAR_TESTS=x KPAR_BACKEND=kube >out 2>&1 && fail "KPAR_BACKEND=kube accepted"
expect_grep "KPAR_BACKEND: 'kube' is not local or k8s" out
kmake k8s-report >out 2>&1; rc=$?
expect_eq "$rc" 2 "k8s-report with no run"
expect_grep 'no finished run to report' out

# Missing and non-executable tests are errors in the report, not crashes.
printf '#!/bin/sh\nexit 0\n' > ok.sh; chmod +x ok.sh
printf '#!/bin/sh\nexit 0\n' > noexec.sh
printf '#!/bin/sh\necho hard error; exit 99\n' > hard.sh; chmod +x hard.sh
kmake k8s-test 'KPAR_TESTS=ok.sh noexec.sh missing.sh hard.sh' >out 2>&1 && fail "broken tests passed"
cat out
expect_grep '^4 tests: 1 passed, 0 failed, 3 errors' out
expect_grep '^ERROR: missing.sh' out
expect_grep '^ERROR: hard.sh' out

# Flaky: fails once, passes on the retry; reported, verdict pass.
rm -rf .kpar
cat > flaky.sh <<'SH'
#!/bin/sh
if [ ! -e flaky.seen ]; then touch flaky.seen; echo "first attempt fails"; exit 1; fi
exit 0
SH
chmod +x flaky.sh
kmake k8s-test 'KPAR_TESTS=ok.sh flaky.sh' KPAR_RETRIES=1 >out 2>&1 || { cat out; fail "flaky test with a retry"; }
expect_grep '^2 tests: 2 passed, 0 failed, 0 errors, 0 skipped, 1 flaky' out
expect_grep 'flaky.sh  \(2 attempts' out
kmake k8s-test 'KPAR_TESTS=ok.sh flaky.sh' KPAR_RETRIES=1 KPAR_BACKEND=kube >out 2>&1 &&
	fail "KPAR_BACKEND=kube accepted once nothing changed"
expect_grep "KPAR_BACKEND: 'kube' is not local or k8s" out
junit_tests .kpar/report/junit.xml >/dev/null || fail "junit.xml unreadable"
grep -q 'flaky' .kpar/report/junit.xml || fail "junit.xml does not mark the flaky test"

# Retries rerun only what could pass: not a hard error, not a missing
# test, and a timeout only with KPAR_RETRY_TIMEOUTS=1.
rm -rf .kpar attempts.log
printf '#!/bin/sh\necho hard >> attempts.log; exit 99\n' > hard.sh
printf '#!/bin/sh\necho hang >> attempts.log; exec sleep 30\n' > hang.sh
printf '#!/bin/sh\necho fail >> attempts.log; exit 1\n' > fail.sh
chmod +x hard.sh hang.sh fail.sh
kmake k8s-test 'KPAR_TESTS=hard.sh hang.sh fail.sh missing.sh' KPAR_RETRIES=1 KPAR_TEST_TIMEOUT=0.5 \
	>out 2>&1 && fail "hard error, hang and failure passed"
expect_eq "$(grep -c hard attempts.log)" 1 "attempts of a hard error"
expect_eq "$(grep -c hang attempts.log)" 1 "attempts of a timed-out test"
expect_eq "$(grep -c fail attempts.log)" 2 "attempts of a failed test"
grep -A1 '^ERROR: missing.sh' out | grep -q 'attempt 2' && { cat out; fail "a missing test was retried"; }
rm -rf .kpar attempts.log
kmake k8s-test 'KPAR_TESTS=hang.sh' KPAR_RETRIES=1 KPAR_TEST_TIMEOUT=0.5 KPAR_RETRY_TIMEOUTS=1 \
	>out 2>&1 && fail "a hang passed"
expect_eq "$(grep -c hang attempts.log)" 2 "attempts of a timed-out test with KPAR_RETRY_TIMEOUTS=1"

# A worker that dies mid-bucket is retried; its bucket is collected once.
rm -rf .kpar
cat > killer.sh <<'SH'
#!/bin/sh
# Kills the worker running it, the first time only.
if [ ! -e killer.seen ]; then touch killer.seen; kill -9 $PPID; sleep 1; fi
exit 0
SH
chmod +x killer.sh
kmake k8s-test 'KPAR_TESTS=ok.sh killer.sh' KPAR_BUCKETS=2 >out 2>&1 || { cat out; fail "a dead worker's bucket was not retried"; }
expect_grep 'retrying \(attempt 2\)' out
expect_grep '^2 tests: 2 passed' out

# A worker that always dies: its tests are reported as errors, the run completes.
rm -rf .kpar killer.seen
printf '#!/bin/sh\nkill -9 $PPID; sleep 1\n' > always.sh; chmod +x always.sh
kmake k8s-test 'KPAR_TESTS=ok.sh always.sh' KPAR_BUCKETS=2 KPAR_WORKER_RETRIES=1 >out 2>&1 && fail "always-dying worker passed"
expect_grep 'giving up after 2 attempts' out
expect_grep '^ERROR: always.sh' out
exit 0
