#!/bin/sh
# bench/lazy/run.sh - what including kpar.mk costs a build that wants no kpar goal.
#
# Measures, side by side in one hyperfine run, a no-op `make` of a project
# with 2,000 up-to-date targets without kpar, with `include kpar.mk`
# (plugin loaded, rules defined), and the same with a KPAR_LIST_CMD and
# KPAR_TESTS that would be expensive if anything expanded them.
# Usage: bench/lazy/run.sh  (from a build tree: KPAR_MK, KPAR_BIN, KPAR_PLUGIN
# default to the build's files; `make bench-lazy` sets them).
set -eu
: "${KPAR_MK:?set KPAR_MK to a built kpar.mk}" "${KPAR_PLUGIN:?}" "${KPAR_BIN:?}"
command -v hyperfine >/dev/null || { echo "bench-lazy needs hyperfine (apt-get install hyperfine)"; exit 77; }
d=$(mktemp -d)
trap 'rm -rf "$d"' EXIT
cd "$d"
mkdir -p obj
i=0
while [ $i -lt 2000 ]; do : > "obj/f$i.o"; i=$((i + 1)); done
cat > base.mk <<'MK'
OBJS := $(wildcard obj/*.o)
all: $(OBJS)
obj/%.o: ; @touch $@
MK
printf 'include base.mk\n' > plain.mk
printf 'include base.mk\ninclude $(KPAR_MK)\n' > kpar.mk
cat > kpar-heavy.mk <<'MK'
include base.mk
KPAR_LIST_CMD = find / -name '*.test'
KPAR_TESTS = $(shell find / -name '*.test')
KPAR_TEST_DEPS = $(OBJS)
include $(KPAR_MK)
MK
M="make -s -r KPAR_MK=$KPAR_MK KPAR_PLUGIN=$KPAR_PLUGIN KPAR=$KPAR_BIN"
hyperfine -N -w 5 -r 40 --export-markdown "$d/result.md" \
	-n 'no kpar' "$M -f plain.mk" \
	-n 'include kpar.mk' "$M -f kpar.mk" \
	-n 'include kpar.mk, costly settings' "$M -f kpar-heavy.mk"
cat "$d/result.md"
# Instruction counts do not depend on what else the machine is doing.
if command -v valgrind >/dev/null; then
	echo
	echo "| Command | instructions (callgrind) | ratio |"
	echo "|:---|---:|---:|"
	base=
	for f in plain kpar kpar-heavy; do
		n=$(valgrind --tool=callgrind --callgrind-out-file=/dev/null $M -f $f.mk 2>&1 |
			sed -n 's/.*I *refs: *//p' | tr -d ,)
		[ -n "$base" ] || base=$n
		echo "| $f.mk | $n | $(awk -v a="$n" -v b="$base" 'BEGIN { printf "%.2f", a / b }') |"
	done
fi
[ ! -e .kpar ] || { echo "a no-op make created .kpar"; exit 1; }
