# Run by shwrap with both flag sets, in the build dir, with automake's
# environment: both TESTS_ENVIRONMENTs and $srcdir.
set -e
test "$WRAP_ARGS" = " --am-flag --user-flag" || { echo "flags: '$WRAP_ARGS'"; exit 1; }
test "$AMENV" = am || { echo "AMENV='$AMENV'"; exit 1; }
test "$USERENV" = user || { echo "USERENV='$USERENV'"; exit 1; }
test -f "$srcdir/Makefile.am" || { echo "srcdir='$srcdir'"; exit 1; }
test -f ./Makefile || { echo "not run in the build dir: $(pwd)"; exit 1; }
echo ok
