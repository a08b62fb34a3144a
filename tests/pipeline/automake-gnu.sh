#!/bin/sh
# A real GNU package's automake suite through `include kpar.mk` alone: GNU
# gzip 1.12 from Debian bookworm's source package (its tests/ directory, 26
# tests), configured and built here; `make check` and `make k8s-test`, with
# kpar.mk added by `make -f Makefile -f kpar.mk`, must give every test the
# same verdict.  The tarball is cached in ~/.cache/kpar-automake; without it
# and without the network the test is skipped.
. "${KPAR_TOP_SRCDIR}/tests/lib/common.sh"

PKG=gzip-1.12
TARBALL=gzip_1.12.orig.tar.xz
SHA256=ce5e03e519f637e1f814011ace35c4f87b33c0bbabeec35baf5fbd3479e91956
URL=http://deb.debian.org/debian/pool/main/g/gzip/$TARBALL
CACHE=${KPAR_AUTOMAKE_CACHE:-$HOME/.cache/kpar-automake}

for tool in cc make xz curl sha256sum; do
	command -v $tool >/dev/null || skip "no $tool"
done
mkdir -p "$CACHE" || skip "cannot create $CACHE"
if ! echo "$SHA256  $CACHE/$TARBALL" | sha256sum -c --status 2>/dev/null; then
	curl -fsS --connect-timeout 10 --max-time 300 -o "$CACHE/$TARBALL.part" "$URL" ||
		{ rm -f "$CACHE/$TARBALL.part"; skip "cannot download $URL"; }
	echo "$SHA256  $CACHE/$TARBALL.part" | sha256sum -c --status ||
		{ rm -f "$CACHE/$TARBALL.part"; fail "$URL: not the expected sha256 $SHA256"; }
	mv "$CACHE/$TARBALL.part" "$CACHE/$TARBALL"
fi

cd "$T" || exit 99
tar xf "$CACHE/$TARBALL" || fail "cannot unpack $TARBALL"
cd "$PKG" || exit 99
unset MAKEFLAGS MFLAGS MAKELEVEL
./configure -q >configure.out 2>&1 || { tail -30 configure.out; fail "configure $PKG"; }
make -j2 >make.out 2>&1 || { tail -30 make.out; fail "make $PKG"; }
cd tests || exit 99

printf 'kpar-print-%%:\n\t@echo $($*)\n' > "$T/print.mk"
tests=$(make -s --no-print-directory -f Makefile -f "$T/print.mk" kpar-print-TESTS)
exts=$(make -s --no-print-directory -f Makefile -f "$T/print.mk" kpar-print-TEST_EXTENSIONS)
n=$(echo $tests | wc -w)
[ "$n" -ge 20 ] || fail "$PKG lists only $n tests: '$tests'"

make check -j2 >check.out 2>&1
check_rc=$?
python3 "$KPAR_TOP_SRCDIR/tests/lib/am_verdicts.py" trs . "$exts" $tests >check.v || fail "reading the .trs files"
kmake -f Makefile -f "$KPAR_MK" k8s-test KPAR_WORKERS=2 >kpar.out 2>&1
kpar_rc=$?
[ -f .kpar/report/junit.xml ] || { cat kpar.out; fail "make k8s-test wrote no report"; }
python3 "$KPAR_TOP_SRCDIR/tests/lib/am_verdicts.py" junit .kpar/report/junit.xml >kpar.v || fail "reading junit.xml"
note "make check: exit $check_rc; make k8s-test: exit $kpar_rc; $n tests"
diff -u check.v kpar.v || fail "$PKG: make check and make k8s-test disagree"
expect_no_grep '	NONE$' check.v "make check ran no test for some ids"
# Both pass, or both fail.
if [ "$check_rc" = 0 ]; then ok=$((kpar_rc == 0)); else ok=$((kpar_rc != 0)); fi
[ "$ok" = 1 ] || fail "make check exited $check_rc but make k8s-test $kpar_rc"
exit 0
