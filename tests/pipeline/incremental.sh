#!/bin/sh
# Incremental at test granularity (issue 10 item 5): with
# KPAR_TEST_INPUTS_OF mapping tests to their own inputs, a change to one
# test's input reruns only that test and reuses the others' results (the
# report says from which run); a change to a global input reruns all.
. "${KPAR_TOP_SRCDIR}/tests/lib/common.sh"

mkdir -p "$T/p/t" "$T/p/data" && cd "$T/p" || exit 99
for n in a b c; do
	printf '#!/bin/sh\necho "$KPAR_TEST_ID" >> "$KPAR_RUNLOG"\n. ./common.sh\ngrep -q ok data/%s.txt\n' "$n" > "t/$n"
	echo ok > "data/$n.txt"
done
echo ': common' > common.sh
chmod +x t/*
cat > Makefile <<'MK'
TESTS = t/a t/b t/c
KPAR_TESTS = $(TESTS)
KPAR_TEST_INPUTS = common.sh
KPAR_TEST_INPUTS_OF = t/%:t/%,data/%.txt
include $(KPAR_MK)
MK
export KPAR_RUNLOG=$T/p/run.log
ran() { sort run.log | tr '\n' ,; : > run.log; }

kmake k8s-test >out 2>&1 || { cat out; fail "first run"; }
expect_eq "$(ran)" "t/a,t/b,t/c," "the first run"
kmake k8s-test >out 2>&1 || { cat out; fail "second run"; }
expect_eq "$(ran)" "" "nothing changed"

# one test's own input: only that test runs; the report is the suite's
echo "ok, again" > data/b.txt
kmake k8s-test >out 2>&1 || { cat out; fail "after data/b.txt changed"; }
expect_eq "$(ran)" "t/b," "a changed own input"
expect_grep '^3 tests: 3 passed' out
expect_grep 'ran 1 of the 3 tests' out
expect_grep 'the other 2 tests show their latest result, reused from run 1 \(2\)\.$' out
expect_eq "$(kmake -q k8s-test >/dev/null 2>&1; echo $?)" 0 "make -q right after"
kmake k8s-test >out 2>&1 || { cat out; fail "again"; }
expect_eq "$(ran)" "" "nothing changed after the partial run"

# the same test's input again, then broken: it reruns each time and fails
echo "ok 3" > data/b.txt
kmake k8s-test >out 2>&1 || { cat out; fail "data/b.txt changed again"; }
expect_eq "$(ran)" "t/b," "the same input changed again"
echo "bad" > data/b.txt
kmake k8s-test >out 2>&1 && { cat out; fail "a broken input passed"; }
expect_eq "$(ran)" "t/b," "a broken input"
expect_grep '^3 tests: 2 passed, 1 failed' out
# a missing own input is a change too
echo ok > data/b.txt; rm data/c.txt
kmake k8s-test >out 2>&1 && { cat out; fail "a missing input passed"; }
expect_eq "$(ran)" "t/b,t/c," "fixed b, removed c's input"

# a global input reruns everything
echo ok > data/c.txt
echo ': changed' > common.sh
kmake k8s-test >out 2>&1 || { cat out; fail "after common.sh changed"; }
expect_eq "$(ran)" "t/a,t/b,t/c," "a changed global input"

# a bad mapping word is refused, naming the setting
kmake k8s-test 'KPAR_TEST_INPUTS_OF=nocolon' >out 2>&1 && { cat out; fail "a bad mapping passed"; }
expect_grep "KPAR_TEST_INPUTS_OF: 'nocolon' is not TEST-PATTERN:INPUT" out
exit 0
