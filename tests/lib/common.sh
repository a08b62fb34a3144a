# common.sh - shared by the shell tests: a scratch dir, make with the build
# tree's kpar, and assertions that say what differed.
#
# The automake harness gives KPAR_TOP_SRCDIR, KPAR_TOP_BUILDDIR, KPAR_BIN,
# KPAR_PLUGIN, KPAR_MK; a test can also be run by hand with those set.
set -u
unset MAKEFLAGS MFLAGS MAKELEVEL

: "${KPAR_TOP_SRCDIR:?run through make check, or set KPAR_TOP_SRCDIR}"
: "${KPAR_BIN:?}" "${KPAR_PLUGIN:?}" "${KPAR_MK:?}"

T=$(mktemp -d "${TMPDIR:-/tmp}/kpar-test.XXXXXX")
cleanup() {
	# Stop whatever the test left running before removing its files.
	[ -n "${KPAR_TEST_PIDS:-}" ] && kill $KPAR_TEST_PIDS 2>/dev/null
	rm -rf "$T"
}
trap cleanup EXIT
# Artifacts the examples fetch go to a cache of this test's own.
XDG_CACHE_HOME=$T/cache
export XDG_CACHE_HOME

fail() { echo "FAIL: $*" >&2; exit 1; }
skip() { echo "SKIP: $*" >&2; exit 77; }
note() { echo "# $*"; }

# A plugin built with AddressSanitizer can only be loaded into a make that
# has the ASan runtime first; make's own leaks are not ours to report.
KPAR_MAKE_ENV=
if nm -D "$KPAR_PLUGIN" 2>/dev/null | grep -q __asan_init; then
	KPAR_MAKE_ENV="LD_PRELOAD=$(${CC:-cc} -print-file-name=libasan.so) ASAN_OPTIONS=detect_leaks=0"
fi
KPAR_SANITIZED=0
[ -n "$KPAR_MAKE_ENV" ] && KPAR_SANITIZED=1

# kmake ARGS...: GNU make with this build's kpar tool, plugin and kpar.mk.
# The outer make's MAKEFLAGS (make check TESTS=...) must not leak in.
kmake() {
	env -u MAKEFLAGS -u MFLAGS -u MAKELEVEL $KPAR_MAKE_ENV make --no-print-directory KPAR="$KPAR_BIN" KPAR_PLUGIN="$KPAR_PLUGIN" \
		KPAR_MK="$KPAR_MK" KPAR_PROGRESS=never "$@"
}

# expect_grep PATTERN FILE [what]
expect_grep() {
	grep -qE -- "$1" "$2" || { echo "--- $2:"; cat "$2"; fail "${3:-$2 lacks /$1/}"; }
}
expect_no_grep() {
	! grep -qE -- "$1" "$2" || { echo "--- $2:"; cat "$2"; fail "${3:-$2 has /$1/}"; }
}
expect_eq() { [ "$1" = "$2" ] || fail "${3:-values differ}: got '$1', expected '$2'"; }

# copy_example NAME DIR: a fresh copy of examples/NAME, as a user would have it.
copy_example() {
	mkdir -p "$2"
	cp -R "$KPAR_TOP_SRCDIR/examples/$1/." "$2/"
	rm -rf "$2/.kpar"
}

# junit_tests FILE: "status<TAB>name" per testcase, sorted, via Python's XML parser.
junit_tests() {
	python3 - "$1" <<'PY'
import sys, xml.etree.ElementTree as ET
root = ET.parse(sys.argv[1]).getroot()
rows = []
for tc in root.iter('testcase'):
    st = 'pass'
    for tag in ('failure', 'error', 'skipped'):
        if tc.find(tag) is not None:
            st = tag
    rows.append(st + '\t' + tc.get('name'))
for r in sorted(rows):
    print(r)
PY
}
