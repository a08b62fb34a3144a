#!/bin/bash
# run.sh - a large GNU package's automake suite: `make check -jN` against
# `make k8s-test` with N local workers, in one run on one machine, on
# GNU coreutils 9.1 from Debian bookworm's source package (its top-level
# suite: TESTS of the top Makefile; gnulib-tests is a SUBDIR of its own,
# left out of both, see README.md).  kpar.mk is added with
# `make -f Makefile -f kpar.mk` and nothing else.
#
#   bench/automake/run.sh [--jobs N] [--runs R] [--workdir DIR]
#
# Needs a built kpar (KPAR_BIN, KPAR_PLUGIN, KPAR_MK; default: ./kpar,
# ./.libs/kpar.so, ./mk/kpar.mk), a C toolchain, curl, xz, python3.  The
# tarball is cached in ~/.cache/kpar-automake.  Prints each run's wall time,
# the ratio make check / kpar, whether every test's verdict agrees, and what
# a second make k8s-test with nothing changed takes.
set -uo pipefail

JOBS=$(nproc) RUNS=1 WORK=${TMPDIR:-/tmp}/kpar-bench-automake
while [ $# -gt 0 ]; do
	case $1 in
	--jobs) JOBS=$2; shift 2;;
	--runs) RUNS=$2; shift 2;;
	--workdir) WORK=$2; shift 2;;
	*) echo "usage: $0 [--jobs N] [--runs R] [--workdir DIR]" >&2; exit 2;;
	esac
done

HERE=$(cd "$(dirname "$0")" && pwd)
TOP=${KPAR_TOP_SRCDIR:-$(cd "$HERE/../.." && pwd)}
KPAR=$(readlink -f "${KPAR_BIN:-./kpar}")
PLUGIN=$(readlink -f "${KPAR_PLUGIN:-./.libs/kpar.so}")
MK=$(readlink -f "${KPAR_MK:-./mk/kpar.mk}")
for f in "$KPAR" "$PLUGIN" "$MK"; do
	[ -e "$f" ] || { echo "$f not found (set KPAR_BIN, KPAR_PLUGIN, KPAR_MK)" >&2; exit 2; }
done

PKG=coreutils-9.1
TARBALL=coreutils_9.1.orig.tar.xz
SHA256=61a1f410d78ba7e7f37a5a4f50e6d1320aca33375484a3255eddf17a38580423
URL=http://deb.debian.org/debian/pool/main/c/coreutils/$TARBALL
CACHE=$HOME/.cache/kpar-automake
mkdir -p "$CACHE" "$WORK"
if ! echo "$SHA256  $CACHE/$TARBALL" | sha256sum -c --status 2>/dev/null; then
	curl -fsS -o "$CACHE/$TARBALL.part" "$URL" || { echo "cannot download $URL" >&2; exit 2; }
	echo "$SHA256  $CACHE/$TARBALL.part" | sha256sum -c --status ||
		{ echo "$URL: not sha256 $SHA256" >&2; exit 2; }
	mv "$CACHE/$TARBALL.part" "$CACHE/$TARBALL"
fi
unset MAKEFLAGS MFLAGS MAKELEVEL
cd "$WORK" || exit 2
if [ ! -e "$PKG/src/ls" ]; then
	rm -rf "$PKG" && tar xf "$CACHE/$TARBALL" && cd "$PKG" || exit 2
	echo "configure + make -j$JOBS $PKG ..." >&2
	./configure -q --disable-nls >configure.out 2>&1 || { tail configure.out; exit 1; }
	make -j"$JOBS" >make.out 2>&1 || { tail make.out; exit 1; }
	cd ..
fi
cd "$PKG" || exit 2

kmake() {
	make --no-print-directory -f Makefile -f "$MK" KPAR="$KPAR" KPAR_PLUGIN="$PLUGIN" \
		KPAR_PROGRESS=never "$@"
}
# Whatever the suite needs built is built once, before either is timed.
kmake -j"$JOBS" kpar-am-check-deps >deps.out 2>&1 || { tail deps.out; exit 1; }
printf 'kpar-print-%%:\n\t@echo $($*)\n' > "$WORK/print.mk"
tests=$(make -s --no-print-directory -f Makefile -f "$WORK/print.mk" kpar-print-TESTS)
exts=$(make -s --no-print-directory -f Makefile -f "$WORK/print.mk" kpar-print-TEST_EXTENSIONS)
ntests=$(echo $tests | wc -w)

now() { date +%s.%N; }
declare -a CHECK KPARW
agree=yes
for r in $(seq 1 "$RUNS"); do
	# make check of this directory only (SUBDIRS=.): the same suite kpar runs
	t0=$(now)
	make -j"$JOBS" check SUBDIRS=. >check.out 2>&1
	check_rc=$?
	t1=$(now)
	python3 "$TOP/tests/lib/am_verdicts.py" trs . "$exts" $tests >check.v
	# The first run as a first-time user's: no state, no durations to
	# split by.  Later runs keep the history but are new runs: a test
	# environment variable that changes value each time is a new input.
	[ "$r" = 1 ] && rm -rf .kpar
	t2=$(now)
	KPAR_BENCH_RUN=$r kmake k8s-test KPAR_WORKERS="$JOBS" KPAR_TEST_ENV=KPAR_BENCH_RUN >kpar.out 2>&1
	kpar_rc=$?
	t3=$(now)
	python3 "$TOP/tests/lib/am_verdicts.py" junit .kpar/report/junit.xml >kpar.v
	CHECK[$r]=$(awk "BEGIN { print $t1 - $t0 }")
	KPARW[$r]=$(awk "BEGIN { print $t3 - $t2 }")
	if ! diff -u check.v kpar.v >verdicts.diff; then agree=no; fi
	printf 'run %d: make check -j%d %.1f s (exit %d), make k8s-test (%d workers) %.1f s (exit %d)\n' \
		"$r" "$JOBS" "${CHECK[$r]}" "$check_rc" "$JOBS" "${KPARW[$r]}" "$kpar_rc"
done
# Nothing changed since the last run: kpar runs nothing and gives the last
# verdict (make check would run the whole suite again, as timed above).
t0=$(now)
KPAR_BENCH_RUN=$RUNS kmake k8s-test KPAR_WORKERS="$JOBS" KPAR_TEST_ENV=KPAR_BENCH_RUN >noop.out 2>&1
t1=$(now)
NOOP=$(awk "BEGIN { print $t1 - $t0 }")
grep -q '^kpar: bucket' noop.out && NOOP="$NOOP (but it ran tests again)"
best() { printf '%s\n' "$@" | sort -g | head -1; }
bc_=$(best "${CHECK[@]}") bk=$(best "${KPARW[@]}")
echo
echo "$PKG: $ntests tests, $JOBS jobs/workers, best of $RUNS"
printf '  make check -j%d       %7.1f s\n' "$JOBS" "$bc_"
printf '  make k8s-test         %7.1f s\n' "$bk"
printf '  ratio check / kpar    %7.2f\n' "$(awk "BEGIN { print $bc_ / $bk }")"
printf '  make k8s-test, nothing changed: %s s\n' "$NOOP"
echo "  verdicts: $(cut -f2 check.v | sort | uniq -c | awk '{printf "%s %s  ", $2, $1}')"
echo "  every test's verdict the same: $agree"
[ "$agree" = yes ] || cat verdicts.diff
