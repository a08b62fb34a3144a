#!/bin/sh
# Make's own question: `make -q k8s-test` is 0 when a real `make k8s-test`
# would run nothing and pass, 1 when it would run or fail; `make -n k8s-test`
# lists only what would run and runs none of it (the list and plan steps
# answer with a read-only `--check` while make asks).
. "${KPAR_TOP_SRCDIR}/tests/lib/common.sh"

mkdir -p "$T/p/t" && cd "$T/p" || exit 99
for i in 1 2 3; do printf '#!/bin/sh\necho "$0" >> "$KPAR_RUNLOG"\nexit 0\n' > t/t$i; chmod +x t/t$i; done
cat > Makefile <<'MK'
TESTS = t/t1 t/t2 t/t3
KPAR_TESTS = $(TESTS)
KPAR_TEST_INPUTS = $(TESTS)
KPAR_TEST_ENV = FLAVOUR
include $(KPAR_MK)
MK
export KPAR_RUNLOG=$T/p/run.log
: > run.log
q() { kmake -q "$@" k8s-test >/dev/null 2>&1; echo $?; }
ran() { wc -l < run.log | tr -d ' '; }

# -n on a fresh project runs nothing
kmake -n k8s-test >n0 2>&1
[ ! -e .kpar/tests.list ] && [ ! -e .kpar/state.db ] || fail "make -n ran a kpar step"
expect_eq "$(q)" 1 "make -q before any run"

kmake k8s-test >out 2>&1 || { cat out; fail "first run"; }
expect_eq "$(ran)" 3 "tests run"
expect_eq "$(q)" 0 "make -q right after a run"
kmake -n k8s-test >n1 2>&1
expect_no_grep "' (list|plan|run)( |$)" n1 "make -n lists a step a real run would not take"
expect_grep "' report" n1
kmake k8s-test >out 2>&1 || { cat out; fail "second run"; }
expect_eq "$(ran)" 3 "tests run again while nothing changed"

# each change is seen by -q, and a real run then reruns
expect_eq "$(q KPAR_RETRIES=1)" 1 "make -q with a changed setting"
expect_eq "$(FLAVOUR=x q)" 1 "make -q with a changed KPAR_TEST_ENV value"
expect_eq "$(q 'TESTS=t/t1 t/t2')" 1 "make -q with a changed test list"
echo "# changed" >> t/t2
expect_eq "$(q)" 1 "make -q with a changed test input"
kmake k8s-test >out 2>&1 || { cat out; fail "run after the change"; }
expect_eq "$(ran)" 6 "tests run after an input changed"
expect_eq "$(q)" 0 "make -q after that run"
FLAVOUR=x kmake k8s-test >out 2>&1 || { cat out; fail "run with FLAVOUR"; }
expect_eq "$(ran)" 9 "tests run after a KPAR_TEST_ENV value changed"
expect_eq "$(FLAVOUR=x q)" 0 "make -q after that run"
# an input that is missing (to be built) checks the plan again
mv t/t3 t3.saved
expect_eq "$(FLAVOUR=x q)" 1 "make -q with a missing input"
mv t3.saved t/t3
# a new test
printf '#!/bin/sh\necho "$0" >> "$KPAR_RUNLOG"\n' > t/t4; chmod +x t/t4
FLAVOUR=x kmake k8s-test 'TESTS=t/t1 t/t2 t/t3 t/t4' >out 2>&1 || { cat out; fail "run with a new test"; }
expect_grep '4 tests: 4 passed' out
expect_eq "$(FLAVOUR=x q 'TESTS=t/t1 t/t2 t/t3 t/t4')" 0 "make -q after the new test ran"

# a failed run is done, but make k8s-test would not succeed: -q says 1
printf '#!/bin/sh\nexit 1\n' > t/t5; chmod +x t/t5
FLAVOUR=x kmake k8s-test 'TESTS=t/t1 t/t5' >out 2>&1 && { cat out; fail "a failing test passed"; }
expect_eq "$(FLAVOUR=x q 'TESTS=t/t1 t/t5')" 1 "make -q after a failed run"
FLAVOUR=x kmake -n k8s-test 'TESTS=t/t1 t/t5' >n2 2>&1
expect_no_grep "' (list|plan|run)( |$)" n2 "make -n after a failed run lists a step"

# A setting made after the include is seen too: the checks run when make
# asks, after every makefile was read.
mkdir -p "$T/late/t" && cd "$T/late" || exit 99
cp "$T/p/t/t1" t/t1
cat > Makefile <<'MK'
KPAR_TESTS = t/t1
include $(KPAR_MK)
RETRIES ?= 1
KPAR_RETRIES = $(RETRIES)
MK
: > run.log
export KPAR_RUNLOG=$T/late/run.log
kmake k8s-test >out 2>&1 || { cat out; fail "late project"; }
expect_eq "$(q)" 0 "make -q with a setting made after the include"
expect_eq "$(q RETRIES=2)" 1 "make -q with a changed setting made after the include"
kmake k8s-test >out 2>&1 || { cat out; fail "late project again"; }
expect_eq "$(ran)" 1 "tests run again with the late setting unchanged"
kmake k8s-test RETRIES=2 >out 2>&1 || { cat out; fail "late project, changed"; }
expect_eq "$(ran)" 2 "tests run after a setting made after the include changed"

# A prerequisite make would remake first runs the list step, whatever the
# list would be: -n shows the chain, -q says 1.
mkdir -p "$T/deps" && cd "$T/deps" || exit 99
cat > Makefile <<'MK'
KPAR_TESTS = t1
KPAR_TEST_DEPS = t1
include $(KPAR_MK)
t1: t1.in
	@printf '#!/bin/sh\ncat t1.in >/dev/null\n' > $@ && chmod +x $@
MK
echo a > t1.in
kmake k8s-test >out 2>&1 || { cat out; fail "deps project"; }
expect_eq "$(q)" 0 "make -q after the deps project ran"
sleep 1; echo b > t1.in
expect_eq "$(q)" 1 "make -q with a test program to rebuild"
kmake -n k8s-test >n3 2>&1
expect_grep "' list" n3 "make -n with a program to rebuild does not list the list step"
expect_grep "' run" n3 "make -n with a program to rebuild does not list the run"
exit 0
