#!/bin/sh
# TAP scripts through make k8s-test with KPAR_TEST_PROTOCOL = tap: each
# script's verdict is the one prove gives the same script (skip-all,
# not-ok-exit-0, TODO, bail-out, plan mismatch, YAML diagnostics...), each
# ok/not ok line is a testcase of its script in junit.xml, the summary
# still counts scripts.  Then automake's tap-driver in LOG_DRIVER choosing
# TAP by itself, the exit protocol left as it was, and the junit protocol.
. "${KPAR_TOP_SRCDIR}/tests/lib/common.sh"

P=$T/tap
mkdir -p "$P/t"
cd "$P" || exit 99
printf 'include $(KPAR_MK)\n' > Makefile
s() { # name, then the script's lines
	f=t/$1; shift
	printf '#!/bin/sh\n' > "$f"
	printf '%s\n' "$@" >> "$f"
	chmod +x "$f"
}
s pass.t 'echo 1..3' 'echo ok 1 - one' 'echo ok 2 - two' 'echo ok 3'
s skipall.t 'echo "1..0 # SKIP no network here"'
s skipall_git.t 'echo "# git style"' 'echo "1..0 # Skipped: missing prerequisite PERL"'
s skipall_exit1.t 'echo "1..0 # SKIP but then"' 'exit 1'
s notok.t 'echo 1..2' 'echo ok 1' 'echo "not ok 2 - broken thing"' \
	'echo "#   Failed test at t/notok.t line 3." >&2' 'exit 0'
s todo.t 'echo 1..3' 'echo ok 1' 'echo "not ok 2 - later # TODO not written yet"' \
	'echo "ok 3 - db # SKIP no database"'
s todopass.t 'echo 1..1' 'echo "ok 1 - early # TODO surprise"'
s bail.t 'echo 1..3' 'echo ok 1' 'echo "Bail out! database went away"' 'echo ok 2' 'echo ok 3'
s plan.t 'echo 1..3' 'echo ok 1' 'echo ok 2'
s extra.t 'echo 1..1' 'echo ok 1' 'echo ok 2'
s trailing.t 'echo ok 1' 'echo ok 2' 'echo 1..2'
s middle.t 'echo ok 1' 'echo 1..2' 'echo ok 2'
s noplan.t 'echo ok 1'
s order.t 'echo 1..2' 'echo ok 2' 'echo ok 1'
s yaml.t 'echo "TAP version 13"' 'echo 1..2' 'echo ok 1' 'echo "not ok 2 - compares"' \
	'echo "  ---"' 'echo "  message: values differ"' 'echo "  got: 3"' 'echo "  ..."'
s yamlbad.t 'echo "TAP version 13"' 'echo 1..2' 'echo ok 1' 'echo "  ---"' 'echo "  a: b"' 'echo ok 2'
s exit3.t 'echo 1..1' 'echo ok 1' 'exit 3'
s harness.t 'echo 1..1' \
	'if [ "${HARNESS_ACTIVE:-}" = 1 ] && [ -n "${HARNESS_VERSION:-}" ]; then echo ok 1; else echo "not ok 1 - no HARNESS_ACTIVE"; fi'
TESTS=$(cd t && ls | sed 's|^|t/|' | tr '\n' ' ')
ntests=$(ls t | wc -l)

kmake k8s-test "KPAR_TESTS=$TESTS" KPAR_TEST_PROTOCOL=tap KPAR_WORKERS=2 >out 2>&1 &&
	{ cat out; fail "a suite with failing TAP scripts passed"; }
cat out

# kpar's verdict per script (its own testcase in junit.xml) and its subtests.
python3 - .kpar/report/junit.xml > kpar.verdicts 3> subcases <<'PY' || fail "junit.xml unreadable"
import os, sys, xml.etree.ElementTree as ET
sub = os.fdopen(3, 'w')
for tc in ET.parse(sys.argv[1]).getroot().iter('testcase'):
    st = 'pass'
    for tag, name in (('failure', 'fail'), ('error', 'fail'), ('skipped', 'skip')):
        el = tc.find(tag)
        if el is not None:
            st = name
            msg = el.get('message') or ''
            text = (el.text or '').replace('\n', '|')
            break
    else:
        msg = text = ''
    if tc.get('classname') == 'kpar':
        print(tc.get('name'), st)
    else:
        sub.write('%s\t%s\t%s\t%s\t%s\n' % (tc.get('classname'), tc.get('name'), st, msg, text))
PY
sort -o kpar.verdicts kpar.verdicts
expect_eq "$(wc -l < kpar.verdicts)" "$ntests" "scripts in junit.xml"

# The summary counts scripts, not subtests.
pass=$(grep -c ' pass$' kpar.verdicts); failn=$(grep -c ' fail$' kpar.verdicts)
skipn=$(grep -c ' skip$' kpar.verdicts)
expect_grep "^$ntests tests: $pass passed, $failn failed, 0 errors, $skipn skipped, 0 flaky" out
expect_grep 't/skipall.t  \(no network here\)' out
# the failed subtests are named under their script, and counted apart
expect_grep '^    not ok 2 - broken thing$' out
expect_grep '^26 subtests in 15 tests: 20 passed, 3 failed, 1 skipped, 2 todo \(1 passed\)$' out
expect_grep 't/skipall_git.t  \(missing prerequisite PERL\)' out

# What a user relies on, whatever prove says.
for v in 't/skipall.t skip' 't/skipall_git.t skip' 't/skipall_exit1.t fail' 't/notok.t fail' \
	't/todo.t pass' 't/todopass.t pass' 't/bail.t fail' 't/plan.t fail' 't/extra.t fail' \
	't/trailing.t pass' 't/middle.t fail' 't/noplan.t fail' 't/order.t fail' \
	't/yaml.t fail' 't/yamlbad.t fail' 't/exit3.t fail' 't/harness.t pass' 't/pass.t pass'; do
	expect_grep "^$v\$" kpar.verdicts "kpar's verdict: $v"
done
# Subtests: each line a testcase under its script, with reasons and diagnostics.
expect_grep '^t/pass.t	1 - one	pass' subcases
expect_grep '^t/pass.t	3	pass' subcases
expect_grep '^t/notok.t	2 - broken thing	fail	not ok	#   Failed test at t/notok.t line 3.' subcases
expect_grep '^t/todo.t	2 - later	skip	TODO: not written yet' subcases
expect_grep '^t/todo.t	3 - db	skip	no database' subcases
expect_grep '^t/yaml.t	2 - compares	fail	not ok	  ---\|  message: values differ\|  got: 3\|  ...' subcases
expect_eq "$(grep -c '^t/bail.t	' subcases)" 1 "subtests of bail.t (nothing after the bail-out)"
expect_grep '\[kpar: TAP: Bail out!  database went away\]' out
expect_grep 'Bad plan.  You planned 3 tests but ran 2.' out

# automake's tap-driver in LOG_DRIVER selects TAP; without it a script's
# exit status alone decides, as before.
Q=$T/driver
mkdir -p "$Q/t"
cp t/notok.t t/skipall.t "$Q/t/"
cd "$Q" || exit 99
printf 'LOG_DRIVER = env AM_TAP_AWK="$(AWK)" $(SHELL) $(top_srcdir)/build-aux/tap-driver.sh\ninclude $(KPAR_MK)\n' > Makefile
kmake k8s-test 'KPAR_TESTS=t/notok.t t/skipall.t' >out 2>&1 && { cat out; fail "tap-driver: a not ok passed"; }
expect_grep '^2 tests: 0 passed, 1 failed, 0 errors, 1 skipped, 0 flaky' out
printf 'include $(KPAR_MK)\n' > Makefile
kmake k8s-test 'KPAR_TESTS=t/notok.t t/skipall.t' >out 2>&1 || { cat out; fail "exit protocol: exit 0 failed"; }
expect_grep '^2 tests: 2 passed, 0 failed, 0 errors, 0 skipped, 0 flaky' out

# The junit protocol: testcases the test wrote to $KPAR_JUNIT are its
# subtests, and a failed one fails a test that exits 0.
J=$T/junit
mkdir -p "$J"
cd "$J" || exit 99
printf 'include $(KPAR_MK)\n' > Makefile
cat > suite.sh <<'SH'
#!/bin/sh
cat > "$KPAR_JUNIT" <<XML
<testsuite><testcase classname="m" name="good"/><testcase classname="m" name="bad"><failure message="2 != 3">trace</failure></testcase><testcase classname="m" name="later"><skipped message="not yet"/></testcase></testsuite>
XML
exit 0
SH
printf '#!/bin/sh\nexit 0\n' > nofile.sh
printf '#!/bin/sh\necho "<testsuite><testcase" > "$KPAR_JUNIT"\n' > broken.sh
chmod +x ./*.sh
kmake k8s-test 'KPAR_TESTS=suite.sh nofile.sh broken.sh' KPAR_TEST_PROTOCOL=junit >out 2>&1 &&
	{ cat out; fail "junit protocol: a failed testcase passed"; }
cat out
expect_grep '^3 tests: 1 passed, 1 failed, 1 error, 0 skipped, 0 flaky' out
junit_tests .kpar/report/junit.xml > jt
expect_grep '^failure	suite.sh$' jt
expect_grep '^failure	2 - m.bad$' jt
expect_grep '^skipped	3 - m.later$' jt
expect_grep '^pass	1 - m.good$' jt
expect_grep '^error	broken.sh$' jt
expect_grep '^pass	nofile.sh$' jt

# A bad protocol name is refused, naming the setting.
kmake k8s-test 'KPAR_TESTS=nofile.sh' KPAR_TEST_PROTOCOL=tapp >out 2>&1 && { cat out; fail "tapp accepted"; }
expect_grep "KPAR_TEST_PROTOCOL: 'tapp' is not exit, tap, junit or automake" out

cd "$P" || exit 99
# The same scripts under prove: the same verdicts.
if ! command -v prove >/dev/null 2>&1; then
	skip "prove (perl) is not installed: the comparison with prove's verdicts did not run"
fi
for f in t/*.t; do
	prove --norc --nocolor "$f" >p.out 2>&1; rc=$?
	if [ "$rc" != 0 ]; then v=fail
	elif grep -q 'skipped:' p.out; then v=skip
	else v=pass; fi
	echo "$f $v"
done | sort > prove.verdicts
diff prove.verdicts kpar.verdicts > verdicts.diff ||
	{ cat verdicts.diff; fail "kpar's verdicts differ from prove's (< prove, > kpar)"; }
note "prove and kpar agree on all $ntests scripts"

exit 0
