#!/bin/sh
# Durations a CI kept (JUnit XML) balance a first run: `kpar history import`
# and KPAR_HISTORY_FROM feed them to the plan, a changed report is noticed,
# measured durations outrank imported ones, and a bad report changes nothing.
. "${KPAR_TOP_SRCDIR}/tests/lib/common.sh"

mkproject() { # DIR
	mkdir -p "$1/t" "$1/reports"
	for i in $(seq -w 1 16); do
		printf '#!/bin/sh\nexit 0\n' > "$1/t/test$i"
		chmod +x "$1/t/test$i"
	done
	cat > "$1/Makefile" <<'MK'
KPAR_LIST_CMD = ls t/*
KPAR_WORKERS = 2
include $(KPAR_MK)
MK
}
# report FILE LONGEST: a pytest-like report: every test 1 s, LONGEST 100 s,
# as cases of a class in the test's module (classname t.testNN.Cases).
report() {
	{
		echo '<?xml version="1.0" encoding="utf-8"?>'
		echo '<testsuites><testsuite name="ci">'
		for i in $(seq -w 1 16); do
			s=1; [ "test$i" = "$2" ] && s=60
			echo "<testcase classname=\"t.test$i.Cases\" name=\"test_a\" time=\"$s\"/>"
			echo "<testcase classname=\"t.test$i.Cases\" name=\"test_b\" time=\"$s\"/>"
		done
		echo '<testcase classname="gone.Old" name="test_x" time="5"/>'
		echo '</testsuite></testsuites>'
	} > "$1"
}
# first_bucket: "estimate tests..." of bucket 1, the one handed out first.
first_bucket() {
	python3 -c 'import json; b = json.load(open(".kpar/plan.json"))["buckets"][0]
print("%g %s" % (b["estimate"], " ".join(b["tests"])))'
}

# 1. A fresh project: import, then the first plan follows the report.
mkproject "$T/a"
cd "$T/a" || exit 99
report reports/ci.xml test07
KPAR_LIST_CMD='ls t/*' "$KPAR_BIN" history import reports/ci.xml >out 2>&1 ||
	{ cat out; fail "kpar history import in a fresh project"; }
expect_grep '^reports/ci.xml \(junit\): 33 durations read, 32 matched, 1 unmatched, 0 ambiguous; 16 tests recorded$' out
kmake k8s-plan >out 2>&1 || { cat out; fail "k8s-plan after an import"; }
expect_eq "$(first_bucket)" "120 t/test07" "first bucket after importing a report"

# 2. Planned blind first: an import makes the next plan split again.
mkproject "$T/b"
cd "$T/b" || exit 99
report reports/ci.xml test07
kmake k8s-plan >out 2>&1 || { cat out; fail "blind k8s-plan"; }
[ "$(first_bucket)" != "120 t/test07" ] || fail "a blind plan already knew the longest test"
cp .kpar/plan.json blind.json
# A bad file among good ones: named, non-zero exit, nothing imported.
printf '<testsuite><testcase name="t/test01" time="9">' > reports/cut.xml
"$KPAR_BIN" history import reports/ci.xml reports/cut.xml >out 2>&1 && { cat out; fail "a truncated report was accepted"; }
expect_grep "reports/cut.xml" out "the error names the truncated file"
printf 'foo: 1\n' > reports/x.yml
"$KPAR_BIN" history import reports/x.yml >out 2>&1 && { cat out; fail "YAML without tests was accepted"; }
expect_grep "reports/x.yml.*no 'tests'" out
"$KPAR_BIN" history import reports/none.xml >out 2>&1 && fail "a missing file was accepted"
expect_grep "reports/none.xml" out
kmake k8s-plan >out 2>&1 || { cat out; fail "k8s-plan after failed imports"; }
cmp -s blind.json .kpar/plan.json || fail "a failed import changed the plan"
"$KPAR_BIN" history import reports/ci.xml >out 2>&1 || { cat out; fail "import after k8s-plan"; }
kmake k8s-plan >out 2>&1 || { cat out; fail "k8s-plan after the import"; }
expect_eq "$(first_bucket)" "120 t/test07" "first bucket after importing into a planned project"

# 3. KPAR_HISTORY_FROM through make: lazy, imported by the first plan, and a
# changed report is a new plan while no test has durations of its own.
mkproject "$T/c"
cd "$T/c" || exit 99
kmake -n k8s-test 'KPAR_HISTORY_FROM=reports/missing.xml' >out 2>&1 ||
	{ cat out; fail "make -n read KPAR_HISTORY_FROM"; }
report reports/ci-1.xml test03
kmake k8s-plan 'KPAR_HISTORY_FROM=reports/*.xml' >out 2>&1 || { cat out; fail "k8s-plan with KPAR_HISTORY_FROM"; }
expect_grep "imported test durations from 1 file of KPAR_HISTORY_FROM" out
expect_eq "$(first_bucket)" "120 t/test03" "first bucket with KPAR_HISTORY_FROM"
cp .kpar/plan.json p1.json
kmake k8s-plan 'KPAR_HISTORY_FROM=reports/*.xml' >out 2>&1 || { cat out; fail "k8s-plan again"; }
cmp -s p1.json .kpar/plan.json || fail "an unchanged report changed the plan"
expect_no_grep "imported" out "an unchanged report imported again"
sleep 1   # a new mtime for the stat-keyed digest cache
report reports/ci-1.xml test11
kmake k8s-plan 'KPAR_HISTORY_FROM=reports/*.xml' >out 2>&1 || { cat out; fail "k8s-plan, report changed"; }
expect_eq "$(first_bucket)" "120 t/test11" "first bucket after the report changed"
# A real run: its measured durations (all tiny) outrank any import.
kmake k8s-test 'KPAR_HISTORY_FROM=reports/*.xml' >out 2>&1 || { cat out; fail "k8s-test with KPAR_HISTORY_FROM"; }
sleep 1
report reports/ci-1.xml test05
"$KPAR_BIN" history import reports/ci-1.xml >out 2>&1 || { cat out; fail "import after a run"; }
expect_grep '0 tests recorded, 16 kept their measured history' out
kmake k8s-plan 'KPAR_HISTORY_FROM=reports/*.xml' >out 2>&1 || { cat out; fail "k8s-plan after a run"; }
case "$(first_bucket)" in
120*|60*) fail "an import outranked measured durations: $(first_bucket)" ;;
esac
# A bad report named by KPAR_HISTORY_FROM stops the plan, naming it.
rm -rf .kpar
printf '<testsuite>' > reports/bad.xml
kmake k8s-plan 'KPAR_HISTORY_FROM=reports/*.xml' >out 2>&1 && { cat out; fail "a bad report was imported"; }
expect_grep "KPAR_HISTORY_FROM.*reports/bad.xml" out
exit 0
