#!/bin/sh
# make with kpar's plugin loaded leaks nothing under valgrind, including the
# artifact cache's index handle that $(kpar-fetch ...) keeps open across hits.
. "${KPAR_TOP_SRCDIR}/tests/lib/common.sh"

command -v valgrind >/dev/null || skip "valgrind is not installed"
# a sanitizer's runtime and valgrind cannot share a process
[ "$KPAR_SANITIZED" = 1 ] && skip "the plugin is built with AddressSanitizer"

P=$T/hello
copy_example hello-c "$P"
cd "$P" || fail "no example"

vgmake() {
	valgrind -q --leak-check=full --errors-for-leak-kinds=definite,possible --error-exitcode=9 \
		make --no-print-directory KPAR="$KPAR_BIN" KPAR_PLUGIN="$KPAR_PLUGIN" KPAR_MK="$KPAR_MK" \
		KPAR_PROGRESS=never "$@"
}
unset MAKEFLAGS MFLAGS MAKELEVEL
# The first make fetches the fixture; the second finds it in the cache, so
# the function records a hit in the cache's index.
for pass in 1 2; do
	vgmake k8s-test >out$pass 2>&1; rc=$?
	[ $rc = 9 ] && { cat out$pass; fail "valgrind reports errors or leaks in make (pass $pass)"; }
	[ $rc = 0 ] || { cat out$pass; fail "make k8s-test under valgrind exited $rc (pass $pass)"; }
done
expect_grep '^verdict: PASS' out2
exit 0
