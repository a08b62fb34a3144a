#!/bin/sh
# An automake project needs nothing but `include kpar.mk`: `make k8s-test`
# runs what `make check` runs, with the same verdicts (tests/automake/proj:
# two log compilers with their flags, LOG_COMPILER, both TESTS_ENVIRONMENTs,
# check_PROGRAMS and check_SCRIPTS built first, tests in srcdir from a VPATH
# build, XFAIL and XPASS, a skip, a hard error with and without
# DISABLE_HARD_ERRORS, TAP tests through automake's tap-driver.sh with
# one result per subtest, TAP scripts in XFAIL_TESTS whose subtests are
# each XFAIL or XPASS, a compiled test with a registered extension, and
# the same again with EXEEXT set; check-local, run when make check runs
# it); and a recursive package (tests/automake/subdirs), whose SUBDIRS'
# tests run as one suite, and each directory's check-local.
. "${KPAR_TOP_SRCDIR}/tests/lib/common.sh"

for tool in autoreconf automake cc perl; do
	command -v $tool >/dev/null || skip "no $tool"
done

cp -R "$KPAR_TOP_SRCDIR/tests/automake/proj" "$T/src"
chmod -R u+w "$T/src"
(cd "$T/src" && autoreconf -fi) >"$T/autoreconf.out" 2>&1 || { cat "$T/autoreconf.out"; fail "autoreconf"; }
mkdir "$T/build"
cd "$T/build" || exit 99
../src/configure -q >configure.out 2>&1 || { cat configure.out; fail "configure"; }

# make's own answers, asked of the makefile itself
printf 'kpar-print-%%:\n\t@:$(info $($*))\n' > "$T/print.mk"
mvar() { env -u MAKEFLAGS -u MFLAGS -u MAKELEVEL make -s --no-print-directory -f Makefile -f "$T/print.mk" "kpar-print-$1"; }
tests=$(mvar TESTS)
exts=$(mvar TEST_EXTENSIONS)
exeext=$(mvar EXEEXT)

# verdicts WHAT ARGS...: make check then make k8s-test with ARGS, each
# test's verdict compared; WHAT.check and WHAT.kpar keep them.
verdicts() {
	what=$1; shift
	env -u MAKEFLAGS -u MFLAGS -u MAKELEVEL make check "$@" >"$what.check.out" 2>&1 &&
		{ cat "$what.check.out"; fail "$what: make check passed"; }
	python3 "$KPAR_TOP_SRCDIR/tests/lib/am_verdicts.py" trs . "$exts" --exeext="$exeext" $tests >"$what.check" ||
		fail "$what: reading the .trs files"
	kmake -f Makefile -f "$KPAR_MK" k8s-test "$@" >"$what.kpar.out" 2>&1
	rc=$?
	[ "$rc" = 2 ] || { cat "$what.kpar.out"; fail "$what: make k8s-test exited $rc, not 2"; }
	python3 "$KPAR_TOP_SRCDIR/tests/lib/am_verdicts.py" junit .kpar/report/junit.xml >"$what.kpar" ||
		fail "$what: reading junit.xml"
	diff -u "$what.check" "$what.kpar" || fail "$what: make check and make k8s-test disagree"
	# each TAP subtest a result of its own, as the driver's .trs has it
	python3 "$KPAR_TOP_SRCDIR/tests/lib/am_verdicts.py" subs . "$exts" --exeext="$exeext" \
		ok.tap bad.tap skipall.tap xmixed.tap xall.tap >"$what.check.subs" ||
		fail "$what: reading the TAP .trs and .log files"
	python3 "$KPAR_TOP_SRCDIR/tests/lib/am_verdicts.py" junitsubs .kpar/report/junit.xml >"$what.kpar.subs" ||
		fail "$what: reading junit.xml's subtests"
	diff -u "$what.check.subs" "$what.kpar.subs" || fail "$what: make check's and kpar's TAP subtests disagree"
	# a failed suite stops make check before check-local (check-TESTS
	# fails first), and make k8s-test after its report
	[ ! -e check-local.ran ] || fail "$what: check-local ran after failed tests"
}

verdicts hard
# Not only equal: what automake says of each (both could be wrong alike).
cat > want <<'TXT'
bad.tap	FAIL
cprog	PASS
env.sh	PASS
gen.sh	PASS
hard.sh	ERROR
ok.tap	PASS
pass.sh	PASS
perl.pl	PASS
plain.test	PASS
skip.sh	SKIP
skipall.tap	SKIP
wrapped.ct	PASS
xall.tap	PASS
xfail.sh	XFAIL
xmixed.tap	FAIL
xpass.sh	XPASS
TXT
diff -u want hard.kpar || fail "verdicts are not automake's"
# The TAP subtests, as automake's test-suite.log words them: a failing one,
# an ok TODO (XPASS: a failure for automake, unlike prove), a TODO, a SKIP;
# a skip-all has none.
# In XFAIL_TESTS the driver is told --expect-failure yes, as make check
# tells it: each subtest that does not pass is XFAIL, each one that does
# XPASS, so xmixed.tap fails (global FAIL) and xall.tap passes.
printf '%s\t%s\t%s\t%s\n' bad.tap 1 PASS '' bad.tap 2 FAIL broken bad.tap 3 XPASS surprise \
	ok.tap 1 PASS first ok.tap 2 XFAIL later ok.tap 3 SKIP '' \
	xall.tap 1 XFAIL broken xall.tap 2 XFAIL 'broken too' xall.tap 3 SKIP '' \
	xmixed.tap 1 XFAIL 'still broken' xmixed.tap 2 XPASS mended > want.subs
diff -u want.subs hard.kpar.subs || fail "TAP subtests are not automake's"
expect_grep '<testcase name="2 - later" classname="ok.tap">' .kpar/report/junit.xml
expect_grep '<skipped message="TODO: not yet"/>' .kpar/report/junit.xml
expect_grep '<skipped message="no network"/>' .kpar/report/junit.xml
expect_grep '<failure message="XPASS: fixed by accident" type="failure">' .kpar/report/junit.xml
expect_grep '^    not ok 2 - broken$' hard.kpar.out
expect_grep '^11 subtests in 4 tests: 2 passed, 3 failed, 2 skipped, 4 todo \(0 passed\)$' hard.kpar.out
expect_grep '^FAIL: xmixed\.tap  ' hard.kpar.out
expect_grep '<failure message="XPASS" type="failure">' .kpar/report/junit.xml
expect_grep '^  skipall\.tap  \(why: no device\)' hard.kpar.out
# The summary speaks automake's words, and counts XPASS as a failure.
# test-driver's global XFAIL and XPASS are kpar's xfail and xpass; the
# exit status shown is the run command's (the result's: XFAIL 0, XPASS
# 1), the test's own is in the driver's closing line, kept for them.
expect_grep '^XPASS \(passed, expected to fail\): xpass\.sh' hard.kpar.out
expect_grep '^  xfail\.sh  \(exit 0' hard.kpar.out
expect_grep '^XFAIL xfail\.sh \(exit status: 1\)$' .kpar/report/logs/xfail.sh.log
expect_grep '^ *XPASS xpass\.sh \(exit status: 0\)$' hard.kpar.out
expect_no_grep '^PASS pass\.sh \(exit status' .kpar/report/logs/pass.sh.log "the driver's closing line of a PASS"
expect_grep '^16 tests: 9 passed, 3 failed, 1 error, 2 skipped, 0 flaky  \|  expected failures: 1 xfail, 1 xpass' hard.kpar.out
# a skip's reason is the test's last line, not the driver's
expect_grep '^  skip\.sh  \(SKIP: not on this machine\)' hard.kpar.out
expect_grep '<failure message="XPASS: passed, but expected to fail" type="xpass"/>' .kpar/report/junit.xml

# DISABLE_HARD_ERRORS: exit 99 is a plain failure, for both (a changed
# setting is a new run).
verdicts soft DISABLE_HARD_ERRORS=1
expect_grep '^hard\.sh	FAIL$' soft.kpar

# EXEEXT (configure's cache variable, as a Windows toolchain sets it): the
# compiled tests are cprog.exe and wrapped.ct.exe in TESTS; make check
# strips $(EXEEXT) before it matches TEST_EXTENSIONS, so wrapped.ct.exe
# runs through CT_LOG_COMPILER and cprog.exe through LOG_COMPILER.
mkdir "$T/build-exe"
(
	cd "$T/build-exe" || exit 99
	../src/configure -q ac_cv_exeext=.exe >configure.out 2>&1 || { cat configure.out; fail "configure (EXEEXT)"; }
	tests=$(mvar TESTS)
	exeext=$(mvar EXEEXT)
	expect_eq "$exeext" .exe "EXEEXT"
	case " $tests " in *" wrapped.ct.exe "*) ;; *) fail "TESTS has no wrapped.ct.exe: $tests";; esac
	verdicts exe
	sed -e 's/^cprog	/cprog.exe	/' -e 's/^wrapped\.ct	/wrapped.ct.exe	/' ../build/want | sort > want.exe
	diff -u want.exe exe.kpar || fail "EXEEXT: verdicts are not automake's"
	expect_grep 'run through CT_LOG_COMPILER' .kpar/report/logs/wrapped.ct.exe.log
) || exit 1

# Nothing changed: nothing runs again, same verdict.
kmake -f Makefile -f "$KPAR_MK" k8s-test DISABLE_HARD_ERRORS=1 >again.out 2>&1 && fail "a failed run passed on its second look"
expect_no_grep '^kpar: bucket' again.out "an unchanged suite ran again"

# A test changed in srcdir is an input: the suite runs again, and the
# expected failure that now fails is XFAIL.
printf 'echo "now fails as expected"\nexit 1\n' > ../src/xpass.sh
kmake -f Makefile -f "$KPAR_MK" k8s-test >changed.out 2>&1
python3 "$KPAR_TOP_SRCDIR/tests/lib/am_verdicts.py" junit .kpar/report/junit.xml >changed.kpar
expect_grep '^xpass\.sh	XFAIL$' changed.kpar "a changed srcdir test did not rerun"

# The user's own setting wins over automake's.
kmake -f Makefile -f "$KPAR_MK" k8s-test KPAR_TESTS='pass.sh env.sh' >own.out 2>&1 || { cat own.out; fail "KPAR_TESTS over TESTS"; }
expect_grep '^2 tests: 2 passed' own.out
rm -f check-local.ran

# check-local (Makefile.am defines one): make check runs it after tests
# that passed, make k8s-test after its report; a failed one fails both.
# TESTS on the command line makes both suites pass.
# locals WHAT MAKE-ARGS...: make check and make k8s-test, their exit
# statuses and what check-local left (WHAT.check.ran, WHAT.kpar.ran)
# compared.
locals() {
	what=$1; shift
	rm -f check-local.ran
	env -u MAKEFLAGS -u MFLAGS -u MAKELEVEL make "$@" check >"$what.check.out" 2>&1
	crc=$?
	touch check-local.ran && mv check-local.ran "$what.check.ran"
	kmake -f Makefile -f "$KPAR_MK" "$@" k8s-test >"$what.kpar.out" 2>&1
	krc=$?
	touch check-local.ran && mv check-local.ran "$what.kpar.ran"
	[ "$krc" = "$crc" ] || { cat "$what.kpar.out"; fail "$what: make k8s-test exited $krc, make check $crc"; }
	cmp "$what.check.ran" "$what.kpar.ran" || fail "$what: check-local ran $(wc -l <"$what.kpar.ran") times for kpar," \
		"$(wc -l <"$what.check.ran") for make check"
}
locals local TESTS='pass.sh env.sh'
expect_eq "$krc" 0 "check-local: make k8s-test with passing tests"
expect_eq "$(cat local.kpar.ran)" proj "check-local: what it left"
# after the report, not before the tests
grep -n -e '^verdict: PASS' -e '^check-local ran in proj' local.kpar.out | cut -d: -f2- >local.order
printf 'verdict: PASS\ncheck-local ran in proj\n' | diff -u - local.order || fail "check-local: not after the report"
# a failed check-local fails make k8s-test, also with nothing to run again
locals localfail TESTS='pass.sh env.sh' LOCAL_FAIL=1
expect_eq "$krc" 2 "check-local: a failed one"
expect_grep '^check-local failed in proj$' localfail.kpar.out
expect_grep '^2 tests: 2 passed' localfail.kpar.out
expect_no_grep '^kpar: bucket' localfail.kpar.out "check-local: an unchanged suite ran again"
# failed tests: without -k neither runs check-local (the verdicts above
# saw none); make -k check does, after check-TESTS failed, and so does
# make -k k8s-test
locals localk -k
expect_eq "$krc" 2 "check-local: make -k k8s-test with failed tests"
expect_eq "$(cat localk.kpar.ran)" proj "check-local: make -k k8s-test with failed tests"
expect_grep '^16 tests: 9 passed, 2 failed, 1 error' localk.kpar.out
rm -f check-local.ran
# make -n shows it and runs nothing of it
kmake -n -f Makefile -f "$KPAR_MK" k8s-test TESTS='pass.sh env.sh' >localn.out 2>&1 ||
	{ cat localn.out; fail "check-local: make -n k8s-test"; }
expect_grep 'echo proj >> check-local\.ran' localn.out
[ ! -e check-local.ran ] || fail "check-local: make -n ran it"

# A check program that does not build stops make before any test runs.
echo 'this is not C' >> ../src/cprog.c
kmake -f Makefile -f "$KPAR_MK" k8s-test >broken.out 2>&1 && { cat broken.out; fail "a broken check program went unnoticed"; }
expect_no_grep '^kpar: run' broken.out "tests ran with a check program that did not build"

# Including kpar.mk in an automake makefile still costs nothing for
# another goal.
rm -rf .kpar
kmake -f Makefile -f "$KPAR_MK" KPAR=/nonexistent/kpar all >all.out 2>&1 || true
[ ! -e .kpar ] || fail "make all created the state dir"
expect_no_grep 'nonexistent' all.out "make all ran kpar"

# SUBDIRS (tests/automake/subdirs: lib, ., tests, tests/deep): at the top,
# make k8s-test runs every directory's TESTS as make check would, each
# with its directory's own harness, as one suite.
cp -R "$KPAR_TOP_SRCDIR/tests/automake/subdirs" "$T/subsrc"
chmod -R u+w "$T/subsrc"
(cd "$T/subsrc" && autoreconf -fi) >"$T/autoreconf-sub.out" 2>&1 || { cat "$T/autoreconf-sub.out"; fail "autoreconf (SUBDIRS)"; }
mkdir "$T/subbuild" "$T/subtmp"
cd "$T/subbuild" || exit 99
../subsrc/configure -q >configure.out 2>&1 || { cat configure.out; fail "configure (SUBDIRS)"; }
# The sub-makes' scratch files go to TMPDIR and must not stay.
TMPDIR=$T/subtmp; export TMPDIR

# subverdicts WHAT ARGS...: make -k check (make check stops at the first
# directory that fails) and make k8s-test, each test's verdict as
# DIR/TEST, compared.
subverdicts() {
	what=$1; shift
	env -u MAKEFLAGS -u MFLAGS -u MAKELEVEL make -k check "$@" >"$what.check.out" 2>&1 &&
		{ cat "$what.check.out"; fail "$what: make check passed"; }
	for d in . tests tests/deep; do
		(cd "$d" && python3 "$KPAR_TOP_SRCDIR/tests/lib/am_verdicts.py" trs . "$(mvar TEST_EXTENSIONS)" \
			$(mvar TESTS)) | sed "s|^|$d/|; s|^\./||" || fail "$what: reading $d's .trs files"
	done | sort >"$what.check"
	kmake -f Makefile -f "$KPAR_MK" k8s-test "$@" >"$what.kpar.out" 2>&1
	rc=$?
	[ "$rc" = 2 ] || { cat "$what.kpar.out"; fail "$what: make k8s-test exited $rc, not 2"; }
	python3 "$KPAR_TOP_SRCDIR/tests/lib/am_verdicts.py" junit .kpar/report/junit.xml >"$what.kpar" ||
		{ cat "$what.kpar.out"; fail "$what: reading junit.xml"; }
	diff -u "$what.check" "$what.kpar" || fail "$what: make check and make k8s-test disagree (SUBDIRS)"
}
subverdicts sub
# check-local: make -k check ran each directory's that has one, in the
# order it visits them, after the failed tests; make k8s-test (no -k)
# stopped at its report, as make check (no -k) stops at the top's failed
# tests, before any.
mv check-local.order sub.check.local
printf 'top\ntests/deep\ntests\n' | diff -u - sub.check.local || fail "SUBDIRS: make -k check's check-local order"
env -u MAKEFLAGS -u MFLAGS -u MAKELEVEL make check >subnok.check.out 2>&1 && fail "SUBDIRS: make check passed"
[ ! -e check-local.order ] || fail "SUBDIRS: make check (no -k) ran check-local: $(cat check-local.order)"
# sublocals WHAT 'CHECK-ARGS' KPAR-ARGS...: make check CHECK-ARGS (words
# without blanks) and make k8s-test KPAR-ARGS, their exit statuses and
# check-local.order compared.
sublocals() {
	what=$1 check_args=$2; shift 2
	rm -f check-local.order
	env -u MAKEFLAGS -u MFLAGS -u MAKELEVEL make $check_args check >"$what.check.out" 2>&1
	crc=$?
	touch check-local.order && mv check-local.order "$what.check.local"
	kmake -f Makefile -f "$KPAR_MK" "$@" k8s-test >"$what.kpar.out" 2>&1
	krc=$?
	touch check-local.order && mv check-local.order "$what.kpar.local"
	[ "$krc" = "$crc" ] || { cat "$what.kpar.out"; fail "$what: make k8s-test exited $krc, make check $crc"; }
	diff -u "$what.check.local" "$what.kpar.local" || fail "$what: check-local ran otherwise (SUBDIRS)"
}
# with -k: every one, whatever the tests gave, and a failed one does not
# stop the next
sublocals subk -k -k
expect_eq "$(cat subk.kpar.local)" "$(cat sub.check.local)" "SUBDIRS: make -k k8s-test's check-local order"
sublocals subkfail '-k LOCAL_FAIL=tests/deep' -k LOCAL_FAIL=tests/deep
expect_grep '^check-local failed in tests/deep$' subkfail.kpar.out
expect_eq "$(cat subkfail.kpar.local)" "$(cat sub.check.local)" "SUBDIRS: make -k after a failed check-local"
# tests that pass (make check with none, kpar with two of them): each
# one, in make check's order; a failed one stops the rest
sublocals subpass TESTS= KPAR_TESTS='top.sh tests/pass.sh'
expect_eq "$krc" 0 "SUBDIRS: check-local after passing tests"
expect_eq "$(cat subpass.kpar.local)" "$(cat sub.check.local)" "SUBDIRS: check-local after passing tests"
sublocals subpassfail 'TESTS= LOCAL_FAIL=tests/deep' KPAR_TESTS='top.sh tests/pass.sh' \
	LOCAL_FAIL=tests/deep
printf 'top\ntests/deep\n' | diff -u - subpassfail.kpar.local || fail "SUBDIRS: a failed check-local did not stop the next"
# What automake says: DISABLE_HARD_ERRORS of tests/ alone makes its exit
# 99 a failure, the top's stays an error; tests/deep's XFAIL_TESTS (one
# named with $(srcdir)/) are its own; its .test extension's compiler sets
# DEEP, tests/'s .sh compiler checks its flag.
cat > want <<'TXT'
hard.sh	ERROR
tests/a&b.sh	PASS
tests/answer	PASS
tests/deep/deep.test	PASS
tests/deep/dxfail.test	XFAIL
tests/deep/dxpass.test	XPASS
tests/fail.sh	FAIL
tests/hard.sh	FAIL
tests/pass.sh	PASS
tests/skip.sh	SKIP
tests/where.sh	PASS
tests/xfail.sh	XFAIL
top.sh	PASS
TXT
diff -u want sub.kpar || fail "SUBDIRS: verdicts are not automake's"
expect_grep '^run through tests/wrap$' .kpar/report/logs/tests/pass.sh.log
expect_grep '^  tests/skip\.sh  \(skipped in tests\)' sub.kpar.out
expect_grep '^13 tests: 6 passed, 3 failed, 1 error, 1 skipped' sub.kpar.out
# One make per directory reads its makefile (lib, ., tests, tests/deep),
# leaving nothing in TMPDIR.
[ -z "$(ls -A "$T/subtmp")" ] || fail "the SUBDIRS walk left files in TMPDIR: $(ls -A "$T/subtmp")"
# DISABLE_HARD_ERRORS on the command line reaches every directory.
subverdicts subsoft DISABLE_HARD_ERRORS=1
expect_grep '^hard\.sh	FAIL$' subsoft.kpar

# Unchanged: nothing runs again.  A test of tests/ changed in srcdir is
# an input: the suite runs again.
kmake -f Makefile -f "$KPAR_MK" k8s-test DISABLE_HARD_ERRORS=1 >subagain.out 2>&1 && fail "SUBDIRS: a failed run passed"
expect_no_grep '^kpar: bucket' subagain.out "SUBDIRS: an unchanged suite ran again"
printf '#!/bin/sh\necho "fixed"\n' > ../subsrc/tests/fail.sh
kmake -f Makefile -f "$KPAR_MK" k8s-test DISABLE_HARD_ERRORS=1 >subchanged.out 2>&1
python3 "$KPAR_TOP_SRCDIR/tests/lib/am_verdicts.py" junit .kpar/report/junit.xml >subchanged.kpar
expect_grep '^tests/fail\.sh	PASS$' subchanged.kpar "SUBDIRS: a changed test of tests/ did not rerun"

# An id no directory has is an error that names it, not another test.
kmake -f Makefile -f "$KPAR_MK" k8s-test KPAR_TESTS='tests/pass.sh tests/nosuch.sh' >subnone.out 2>&1 &&
	{ cat subnone.out; fail "SUBDIRS: an unknown test passed"; }
expect_grep 'tests/nosuch\.sh is no test of SUBDIRS' .kpar/report/logs/tests/nosuch.sh.log
expect_grep '^2 tests: 1 passed, 0 failed, 1 error' subnone.out

# make -n runs no test and writes no state.
rm -rf .kpar
kmake -n -f Makefile -f "$KPAR_MK" k8s-test >subn.out 2>&1 || { cat subn.out; fail "SUBDIRS: make -n k8s-test"; }
[ ! -e .kpar ] || fail "SUBDIRS: make -n created the state dir"
[ -z "$(ls -A "$T/subtmp")" ] || fail "make -n left files in TMPDIR: $(ls -A "$T/subtmp")"

# A check program of tests/ that does not build stops make before any test.
echo 'this is not C' >> ../subsrc/tests/answer.c
kmake -f Makefile -f "$KPAR_MK" k8s-test >subbroken.out 2>&1 && { cat subbroken.out; fail "SUBDIRS: a broken check program went unnoticed"; }
expect_no_grep '^kpar: run' subbroken.out "SUBDIRS: tests ran with a check program that did not build"
exit 0
