#!/bin/sh
# vs-make.sh - the whole `make k8s-test` (list, plan, run, report) against
# plain `make -j W` (one target per test, in name order), `xargs -P W`,
# `prove -j W --state=slow,save` (its own timings: slowest first from the
# second run) and LPT with perfect knowledge (`make -j W` with the targets
# longest first by the durations the tests will sleep),
# side by side in one run, on a recorded suite replayed as sleeping tests
# (gen-suite.sh).  Each figure is wall time over the bound
# max(sum / W, longest) of the sleeps, for a first run (kpar: no history)
# and a second (kpar: run 1's history; the sleeps: run 1 x noise, RUN2).
#
# usage: vs-make.sh [DATA.tsv] [SCALE]
#   env: KPAR_MK, KPAR_BIN, KPAR_PLUGIN  the kpar build under test (as replay.sh)
#        BASE_MK, BASE_BIN, BASE_PLUGIN  optional: another kpar build, shown as
#                                        "kpar-base" (say, the commit before a change)
#        WORKERS (default "2 8 16"), RUN2 (noise or 2), MAKE, KEEP=1,
#        REPEAT=N (every configuration N times, a line each: on a shared
#        machine the spread between repeats is the noise to read against)
# The tools' order is rotated per configuration, so none always runs first
# on a machine whose load drifts.
set -eu
here=$(cd "$(dirname "$0")" && pwd)
data=${1:-$here/data/cpython-3.11.7.tsv}
scale=${2:-0.02}
workers=${WORKERS:-2 8 16}
run2=${RUN2:-noise}
make=${MAKE:-make}
if [ -z "${KPAR_MK:-}" ] || [ ! -r "$KPAR_MK" ]; then
	echo "vs-make.sh: set KPAR_MK to a built kpar.mk (make bench-split-vs-make does)" >&2
	exit 77
fi
dir=$(mktemp -d /tmp/kpar-vsmake-XXXXXX)
[ "${KEEP:-0}" = 1 ] || trap 'rm -rf "$dir"' EXIT INT TERM

"$here/gen-suite.sh" "$data" "$dir" "$scale" 1 >/dev/null
# kpar's makefiles, one state dir per build; the tests are their inputs,
# so run 2's rewritten scripts are a new run.
kmk() { # NAME MK BIN PLUGIN
	{
		echo "KPAR_LIST_CMD = cat tests.list"
		echo "KPAR_TEST_DEPS := \$(shell cat tests.list)"
		echo "KPAR_STATE_DIR = .kpar-$1"
		[ -z "$3" ] || echo "KPAR = $3"
		[ -z "$4" ] || echo "KPAR_PLUGIN = $4"
		echo "include $2"
	} > "$dir/$1.mk"
}
tools="kpar"
kmk kpar "$KPAR_MK" "${KPAR_BIN:-}" "${KPAR_PLUGIN:-}"
if [ -n "${BASE_MK:-}" ]; then
	kmk kpar-base "$BASE_MK" "${BASE_BIN:-}" "${BASE_PLUGIN:-}"
	tools="$tools kpar-base"
fi
tools="$tools make xargs prove lpt"
# plain_mk NAME < tests: a makefile running the tests in the order given,
# one phony target each, make -j handing them out; a skip (77) passes
plain_mk() {
	awk -v n="$1" '
	{ t[NR] = $NF }
	END {
		printf "all:"
		for (i = 1; i <= NR; i++) printf " %s-%d", n, i
		printf "\n.PHONY: all"
		for (i = 1; i <= NR; i++) printf " %s-%d", n, i
		printf "\n"
		for (i = 1; i <= NR; i++)
			printf "%s-%d:\n\t@./%s >/dev/null 2>&1 || [ $$? = 77 ]\n", n, i, t[i]
	}'
}
# plain make: in name order
LC_ALL=C sort "$dir/tests.list" | plain_mk run > "$dir/plain.mk"

now() { date +%s.%N; }
run_tool() { # TOOL W -> wall seconds on stdout
	start=$(now)
	case $1 in
	kpar|kpar-base)
		"$make" -s -C "$dir" -f "$1.mk" k8s-test KPAR_WORKERS="$2" > "$dir/$1.log" 2>&1 ||
			{ echo "vs-make.sh: $1 failed; its log:" >&2; tail -20 "$dir/$1.log" >&2; exit 1; } ;;
	make)
		"$make" -s -C "$dir" -f plain.mk -j "$2" > /dev/null 2>&1 ;;
	xargs)
		(cd "$dir" && LC_ALL=C sort tests.list | sed 's|^|./|' |
			xargs -P "$2" -I{} sh -c '"$1" >/dev/null 2>&1 || [ $? = 77 ]' sh {}) ;;
	prove)
		# its own history in .prove: slowest first from the second run
		(cd "$dir" && LC_ALL=C sort tests.list | xargs prove -Q -j "$2" --state=slow,save \
			--exec /bin/sh >/dev/null 2>&1 || true) ;;
	lpt)
		"$make" -s -C "$dir" -f lpt.mk -j "$2" > /dev/null 2>&1 ;;
	esac
	end=$(now)
	awk -v s="$start" -v e="$end" 'BEGIN { printf "%.3f", e - s }'
}

printf '%-6s %-4s %8s' W run bound
for t in $tools; do printf ' %10s' "$t"; done
printf '\n'
rot=0
for rep in $(seq "${REPEAT:-1}"); do
for w in $workers; do
	rm -rf "$dir"/.kpar-* "$dir/.prove"
	for run in 1 2; do
		if [ "$run" = 1 ]; then
			"$here/gen-suite.sh" "$data" "$dir" "$scale" 1 >/dev/null
		else
			"$here/gen-suite.sh" "$data" "$dir" "$scale" "$run2" >/dev/null
		fi
		# LPT with perfect knowledge: make -j W handing out the tests
		# longest first, by the very durations they will sleep
		for f in $(cat "$dir/tests.list"); do
			sed -n "s|^# replayed .*: \([0-9.]*\) s, run .*|\1 $f|p" "$dir/$f"
		done | LC_ALL=C sort -k1,1gr -k2 | plain_mk lpt > "$dir/lpt.mk"
		bound=$(sed -n 's/^# replayed .*: \([0-9.]*\) s, run .*/\1/p' $(sed "s|^|$dir/|" "$dir/tests.list") |
			awk -v w="$w" -v scale="$scale" '{ s = $1 * scale; t += s; if (s > m) m = s }
			END { b = t / w; if (m > b) b = m; printf "%.3f", b }')
		# rotate the order the tools run in
		set -- $tools
		i=0
		while [ "$i" -lt "$rot" ]; do x=$1; shift; set -- "$@" "$x"; i=$((i + 1)); done
		rot=$(( (rot + 1) % $(echo $tools | wc -w) ))
		for t in "$@"; do
			eval "wall_$(echo "$t" | tr - _)=\$(run_tool \"\$t\" \"\$w\")"
		done
		printf '%-6s %-4s %7.2fs' "$w" "$run" "$bound"
		for t in $tools; do
			eval "v=\$wall_$(echo "$t" | tr - _)"
			awk -v v="$v" -v b="$bound" 'BEGIN { printf " %9.3fx", v / b }'
		done
		printf '\n'
		for t in $tools; do
			case $t in kpar*) sed -n "s/^Time: /  $t: /p" "$dir/$t.log" ;; esac
		done
	done
done
done
