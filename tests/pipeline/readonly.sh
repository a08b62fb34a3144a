#!/bin/sh
# A state dir that cannot be written (a read-only checkout, another user's
# tree) is read as it stands: `kpar state` and $(kpar-state ...) give the
# last run's answers, or fail saying why, never a made-up "none".
. "${KPAR_TOP_SRCDIR}/tests/lib/common.sh"

# as_reader CMD...: runs CMD as someone who cannot write the state dir.
if [ "$(id -u)" = 0 ]; then
	command -v setpriv >/dev/null || skip "root, and no setpriv to drop to another user"
	as_reader() { setpriv --reuid=65534 --regid=65534 --clear-groups -- "$@"; }
	chmod 755 "$T"
else
	as_reader() { "$@"; }
fi
as_reader test -x "$KPAR_BIN" || skip "the kpar build is not reachable as another user"

P=$T/ro
mkdir -p "$P"
# the scratch dir must stay removable, however the test ends
trap 'chmod -R u+w "$P" 2>/dev/null; cleanup' EXIT
cd "$P" || exit 99
printf 'include $(KPAR_MK)\nshow-verdict:\n\t@echo "verdict=$(kpar-state verdict) failed=$(kpar-state tests-failed)"\n' > Makefile
printf '#!/bin/sh\nexit 0\n' > ok.sh
printf '#!/bin/sh\nexit 1\n' > bad.sh
chmod +x ok.sh bad.sh
kmake k8s-test 'KPAR_TESTS=ok.sh bad.sh' >out 2>&1 && { cat out; fail "a failing suite passed"; }
# The last connection's close folds the WAL back into the database.
[ -e .kpar/state.db-wal ] && fail "state.db-wal left after the run"
chmod -R a-w .kpar
chmod a+rX "$P" .kpar
[ "$(id -u)" = 0 ] || ! touch .kpar/probe 2>/dev/null || skip "cannot make a read-only directory here"

as_reader "$KPAR_BIN" state --state-dir .kpar verdict >v 2>err || { cat err; fail "kpar state verdict on a read-only state dir"; }
expect_eq "$(cat v)" fail "kpar state verdict, read-only"
expect_eq "$(as_reader "$KPAR_BIN" state --state-dir .kpar tests-failed)" 1 "kpar state tests-failed, read-only"
as_reader env -u MAKEFLAGS $KPAR_MAKE_ENV make --no-print-directory KPAR="$KPAR_BIN" \
	KPAR_PLUGIN="$KPAR_PLUGIN" KPAR_MK="$KPAR_MK" show-verdict >mk 2>&1 || { cat mk; fail "\$(kpar-state) on a read-only state dir"; }
expect_grep '^verdict=fail failed=1$' mk
[ -e .kpar/state.db-shm ] && fail "a reader wrote beside a read-only database"

# A WAL it cannot index (no -shm, and none can be made): an error naming
# the database, not "none".
chmod u+w .kpar
: > .kpar/state.db-wal
chmod a-w .kpar
as_reader "$KPAR_BIN" state --state-dir .kpar verdict >v 2>err && { cat v; fail "an unreadable state database answered"; }
expect_grep "state.db" err
expect_no_grep none v
exit 0
