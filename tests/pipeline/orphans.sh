#!/bin/sh
# When a worker dies, whatever its test started dies too: kill -9 of the
# worker (whose bucket is then retried) or of the coordinator above it
# leaves no test process behind, not even one in the test's background.
. "${KPAR_TOP_SRCDIR}/tests/lib/common.sh"

# alive PID: running (a zombie nobody reaped yet does not count)
alive() {
	[ -r "/proc/$1/stat" ] || return 1
	st=$(sed 's/.*) //' "/proc/$1/stat" | cut -c1)
	[ "$st" != Z ] && [ "$st" != X ]
}
# gone_within SECONDS PID...: polls until none of the pids runs
gone_within() {
	n=$(( $1 * 20 )); shift
	while [ $n -gt 0 ]; do
		left=
		for p in "$@"; do alive "$p" && left="$left $p"; done
		[ -z "$left" ] && return 0
		sleep 0.05; n=$((n - 1))
	done
	return 1
}

P=$T/o
mkdir -p "$P"
cd "$P" || exit 99
printf 'include $(KPAR_MK)\n' > Makefile
# $1 of the test: whom to kill with -9 on the first attempt.
cat > victim.sh <<'SH'
#!/bin/sh
if [ ! -e victim.seen ]; then
	touch victim.seen
	sleep 300 &
	echo "$! $$" > victim.pids
	worker=$PPID
	coord=$(sed 's/.*) //' /proc/$worker/stat | cut -d' ' -f2)
	case $VICTIM in worker) kill -9 $worker;; coordinator) kill -9 $coord;; esac
	wait
fi
exit 0
SH
chmod +x victim.sh
printf '#!/bin/sh\nexit 0\n' > ok.sh; chmod +x ok.sh

# The worker: its bucket is retried and passes; the first attempt's test
# and its background sleep are gone.
VICTIM=worker kmake k8s-test 'KPAR_TESTS=ok.sh victim.sh' KPAR_BUCKETS=2 KPAR_TEST_ENV=VICTIM \
	>out 2>&1 || { cat out; fail "a killed worker's bucket was not retried"; }
expect_grep 'retrying \(attempt 2\)' out
expect_grep '^2 tests: 2 passed' out
[ -s victim.pids ] || fail "the test did not record its pids"
KPAR_TEST_PIDS=$(cat victim.pids)
# shellcheck disable=SC2086
gone_within 5 $KPAR_TEST_PIDS || fail "kill -9 of a worker left its test running: $left"

# The coordinator: the workers stop their tests (the run stays resumable).
rm -rf .kpar victim.seen victim.pids
VICTIM=coordinator kmake k8s-test 'KPAR_TESTS=ok.sh victim.sh' KPAR_BUCKETS=2 \
	KPAR_TEST_ENV=VICTIM >out 2>&1 && { cat out; fail "a run whose coordinator was killed passed"; }
[ -s victim.pids ] || fail "the test did not record its pids"
KPAR_TEST_PIDS=$(cat victim.pids)
# shellcheck disable=SC2086
gone_within 10 $KPAR_TEST_PIDS || fail "kill -9 of the coordinator left a test running: $left"
exit 0
