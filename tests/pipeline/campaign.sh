#!/bin/sh
# The fault campaign (issue 9): over many rounds, kill -9 one part of a
# local run at a random moment -- make alone, the coordinator (`kpar run`)
# alone, a worker alone, or all of them at once -- then `make k8s-test
# RESUME=1`.  Each round: every test exactly once in the final junit.xml with
# the verdicts of an undisturbed run, no process of the run left behind, and
# the database passes PRAGMA integrity_check.
#
# KPAR_CAMPAIGN_SEED (default: the time) and KPAR_CAMPAIGN_ROUNDS (15) pick
# the faults; no round starts after KPAR_CAMPAIGN_SECONDS (150).  The seed is
# printed so a failing campaign can be replayed.
. "${KPAR_TOP_SRCDIR}/tests/lib/common.sh"

command -v sqlite3 >/dev/null || skip "no sqlite3"
SEED=${KPAR_CAMPAIGN_SEED:-$(date +%s)}
ROUNDS=${KPAR_CAMPAIGN_ROUNDS:-15}
BUDGET=${KPAR_CAMPAIGN_SECONDS:-150}
note "seed $SEED, $ROUNDS rounds, at most ${BUDGET}s"

mkproject() { # DIR
	mkdir -p "$1/t"
	for i in $(seq 1 12); do
		st=0; [ "$i" = 4 ] && st=1; [ "$i" = 7 ] && st=77; [ "$i" = 10 ] && st=99
		cat > "$1/t/test$i" <<SH
#!/bin/sh
echo "\$(basename \$0)" >> "\$KPAR_RUNLOG"
sleep 0.$(( (i % 4) + 1 ))
exit $st
SH
		chmod +x "$1/t/test$i"
	done
	cat > "$1/Makefile" <<'MK'
KPAR_LIST_CMD = ls t/*
include $(KPAR_MK)
MK
}

# procs DIR: "pid role" of every process working under DIR (its cwd there):
# make, run (the coordinator), worker, or other (a test, a shell).
procs() {
	for d in /proc/[0-9]*; do
		cwd=$(readlink "$d/cwd" 2>/dev/null) || continue
		case $cwd in "$1"|"$1"/*) ;; *) continue ;; esac
		pid=${d#/proc/}
		[ "$pid" = $$ ] && continue
		set -- "$1" $(tr '\0' '\n' < "$d/cmdline" 2>/dev/null | head -2)
		prog=${2:-}; sub=${3:-}
		case ${prog##*/}:$sub in
		make:*) role=make ;;
		*kpar*:run) role=run ;;
		*kpar*:worker) role=worker ;;
		*) role=other ;;
		esac
		echo "$pid $role"
	done
}

# The reference: one undisturbed run.
mkproject "$T/ref"
cd "$T/ref" || exit 99
KPAR_RUNLOG=$T/ref/run.log kmake k8s-test KPAR_WORKERS=2 KPAR_BUCKETS=6 >out 2>&1
expect_grep '12 tests: 9 passed, 1 failed, 1 error, 1 skipped' out
junit_tests .kpar/report/junit.xml > "$T/ref.junit"
expect_eq "$(wc -l < "$T/ref.junit" | tr -d ' ')" 12 "tests in the reference report"

start=$(date +%s)
round=0
while [ $round -lt "$ROUNDS" ] && [ $(( $(date +%s) - start )) -lt "$BUDGET" ]; do
	round=$((round + 1))
	P=$T/r$round
	mkproject "$P"
	cd "$P" || exit 99
	export KPAR_RUNLOG=$P/run.log
	set -- $(awk -v s="$SEED" -v r="$round" 'BEGIN { srand((s % 65521) * 100 + r);
		v = int(rand() * 4); d = rand();
		printf "%s %.2f\n", (v == 0 ? "make" : v == 1 ? "run" : v == 2 ? "worker" : "all"), \
			v == 0 || v == 3 ? 0.2 + d * 2.0 : d * 1.2 }')
	victim=$1 delay=$2
	# setsid: the make is its own process group, so "all" takes make,
	# kpar run, its workers and their tests at once.
	setsid env $KPAR_MAKE_ENV make --no-print-directory KPAR="$KPAR_BIN" KPAR_PLUGIN="$KPAR_PLUGIN" \
		KPAR_MK="$KPAR_MK" KPAR_PROGRESS=never KPAR_WORKERS=2 KPAR_BUCKETS=6 k8s-test >out1 2>&1 &
	pid=$!
	KPAR_TEST_PIDS=$pid
	cd "$T" || exit 99
	# make or all: a moment from the listing to the last bucket; the
	# coordinator or a worker: a moment of its life (once there is one)
	case $victim in
	run|worker)
		i=0
		until procs "$P" | grep -q " $victim\$" || [ $i -ge 200 ]; do
			sleep 0.05; i=$((i + 1))
		done
		;;
	esac
	sleep "$delay"
	case $victim in
	make) kill -9 "$pid" 2>/dev/null; what="make $pid" ;;
	all) kill -9 -"$pid" 2>/dev/null; what="make's process group $pid" ;;
	*)
		target=$(procs "$P" | awk -v r="$victim" '$2 == r { print $1; exit }')
		if [ -n "$target" ]; then
			kill -9 "$target" 2>/dev/null; what="$victim $target"
		else
			what="no $victim at that moment: nothing"
		fi
		;;
	esac
	wait "$pid" 2>/dev/null
	KPAR_TEST_PIDS=
	note "round $round: killed $what after ${delay}s"
	cd "$P" || exit 99

	kmake k8s-test RESUME=1 KPAR_WORKERS=2 KPAR_BUCKETS=6 >out2 2>&1
	rc=$?
	[ $rc = 2 ] || { cat out1 out2; fail "round $round: the resume exited $rc, not 2 (a test fails)"; }
	expect_grep '12 tests: 9 passed, 1 failed, 1 error, 1 skipped' out2 "round $round: resumed run's totals"
	junit_tests .kpar/report/junit.xml > junit
	cmp -s "$T/ref.junit" junit || { diff "$T/ref.junit" junit; cat out1 out2; fail "round $round: the report differs from the undisturbed run's"; }
	expect_eq "$(cat .kpar/report/verdict)" fail "round $round: verdict"
	expect_eq "$(sqlite3 .kpar/state.db 'PRAGMA integrity_check;')" ok "round $round: database integrity"

	# Nothing of either make is left (a process killed with -9 leaves its
	# children to die of their parent's death, which takes a moment).
	cd "$T" || exit 99
	i=0
	while left=$(procs "$P") && [ -n "$left" ] && [ $i -lt 50 ]; do
		sleep 0.1; i=$((i + 1))
	done
	if [ -n "$left" ]; then
		for p in $(echo "$left" | cut -d' ' -f1); do
			echo "left: $p $(tr '\0' ' ' < /proc/$p/cmdline 2>/dev/null)"
			kill -9 "$p" 2>/dev/null
		done
		fail "round $round: processes of the run were left behind"
	fi
	rm -rf "$P"
done
note "$round rounds in $(( $(date +%s) - start ))s"
[ $round -ge 3 ] || fail "only $round rounds fit in ${BUDGET}s"
exit 0
