#!/bin/sh
# kill -9 of the whole make at a random moment, then RESUME=1: collected
# buckets are not rerun, the database stays usable, and the merged report
# equals an uninterrupted run's.  A resume whose tests changed is refused.
. "${KPAR_TOP_SRCDIR}/tests/lib/common.sh"

mkproject() { # DIR
	mkdir -p "$1/t"
	for i in $(seq 1 16); do
		d=$(( (i % 4) + 1 ))
		st=0; [ "$i" = 5 ] && st=1; [ "$i" = 9 ] && st=77
		cat > "$1/t/test$i" <<SH
#!/bin/sh
echo "\$(basename \$0)" >> "\$KPAR_RUNLOG"
sleep 0.$d
echo "test $i done"
exit $st
SH
		chmod +x "$1/t/test$i"
	done
	cat > "$1/Makefile" <<'MK'
KPAR_LIST_CMD = ls t/* 
include $(KPAR_MK)
MK
}

# The reference: one uninterrupted run.
mkproject "$T/ref"
cd "$T/ref" && KPAR_RUNLOG=$T/ref.log kmake k8s-test KPAR_WORKERS=2 KPAR_BUCKETS=8 >out 2>&1
expect_grep '16 tests: 14 passed, 1 failed, 0 errors, 1 skipped' out
junit_tests .kpar/report/junit.xml > "$T/ref.junit"

for round in 1 2 3; do
	P=$T/p$round
	mkproject "$P"
	cd "$P" || exit 99
	export KPAR_RUNLOG=$P/run.log
	# setsid: the kill takes make, kpar run, its workers and their tests at once.
	setsid env $KPAR_MAKE_ENV make --no-print-directory KPAR="$KPAR_BIN" KPAR_PLUGIN="$KPAR_PLUGIN" \
		KPAR_MK="$KPAR_MK" KPAR_PROGRESS=never KPAR_WORKERS=2 KPAR_BUCKETS=8 k8s-test >out1 2>&1 &
	pid=$!
	# A random moment inside the run (it takes about 2.5 s).
	delay=$(awk -v s="$$$round" 'BEGIN { srand(s); printf "%.2f", 0.3 + rand() * 1.8 }')
	sleep "$delay"
	kill -9 -"$pid" 2>/dev/null
	wait "$pid" 2>/dev/null
	note "round $round: killed after ${delay}s"
	if [ -f .kpar/state.db ]; then
		ic=$(sqlite3 .kpar/state.db 'PRAGMA integrity_check;')
		expect_eq "$ic" ok "database integrity after kill -9"
	fi
	done_before=$("$KPAR_BIN" state --state-dir .kpar buckets-done 2>/dev/null || echo 0)
	collected_tests=$(sqlite3 .kpar/state.db "SELECT test FROM results WHERE run = (SELECT max(id) FROM runs);" 2>/dev/null | sort)
	cp run.log run.before 2>/dev/null || : > run.before

	kmake k8s-test RESUME=1 KPAR_WORKERS=2 KPAR_BUCKETS=8 >out2 2>&1
	cat out2
	expect_grep '16 tests: 14 passed, 1 failed, 0 errors, 1 skipped' out2 "resumed run's totals"
	junit_tests .kpar/report/junit.xml > junit
	cmp -s "$T/ref.junit" junit || { diff "$T/ref.junit" junit; fail "resumed report differs from the uninterrupted one"; }
	# Tests of buckets collected before the kill did not run again.
	tail -n +$(( $(wc -l < run.before) + 1 )) run.log | sort > ran_after
	for t in $collected_tests; do
		grep -qx "$(basename "$t")" ran_after && fail "round $round: $t was collected before the kill but ran again"
	done
	note "round $round: $done_before buckets were collected before the kill"
	runs=$(sqlite3 .kpar/state.db 'SELECT count(*) FROM runs;')
	[ "$done_before" = 0 ] || expect_eq "$runs" 1 "a resume must continue the run, not start another"
done

# A resume after the tests changed is refused, and says why.
P=$T/changed
mkproject "$P"
cd "$P" || exit 99
export KPAR_RUNLOG=$P/run.log
setsid env $KPAR_MAKE_ENV make --no-print-directory KPAR="$KPAR_BIN" KPAR_PLUGIN="$KPAR_PLUGIN" \
	KPAR_MK="$KPAR_MK" KPAR_PROGRESS=never KPAR_WORKERS=2 KPAR_BUCKETS=8 k8s-test >out1 2>&1 &
pid=$!
# Kill once the run exists (listing and planning come first, slower under ASan).
i=0
while [ "$("$KPAR_BIN" state --state-dir .kpar status 2>/dev/null)" != running ] && [ $i -lt 300 ]; do
	sleep 0.1; i=$((i + 1))
done
sleep 0.3
kill -9 -"$pid" 2>/dev/null
wait "$pid" 2>/dev/null
cp t/test1 t/test17
kmake k8s-test RESUME=1 KPAR_WORKERS=2 KPAR_BUCKETS=8 >out3 2>&1 && { cat out3; fail "resume with a changed test list was accepted"; }
expect_grep 'cannot resume run [0-9]+: the test list changed' out3
# Without RESUME the new list runs from scratch.
kmake k8s-test KPAR_WORKERS=2 KPAR_BUCKETS=8 >out4 2>&1
expect_grep '17 tests: 15 passed, 1 failed' out4
exit 0
