#!/bin/sh
# Test ids with spaces, quotes, $, ;, backslashes, globs and non-ASCII
# letters reach the test command as exactly one argument, never through a
# shell, and come back unchanged in the report.
. "${KPAR_TOP_SRCDIR}/tests/lib/common.sh"

P=$T/odd
mkdir -p "$P"
cd "$P" || exit 99
cat > names.txt <<'NAMES'
plain
with space
it's "quoted"
dollar $HOME and $(touch pwned) and `touch pwned2`
semi; touch pwned3
back\slash\n
glob * ? [a]
ünïcødé テスト
-starts-with-dash
NAMES
cat > run-one <<'SH'
#!/bin/sh
# Passes when called with exactly one argument that is one of the names.
[ "$#" = 1 ] || { echo "got $# arguments"; exit 1; }
grep -qxF -- "$1" "$KPAR_ROOT_NAMES" || { echo "unknown name: [$1]"; exit 1; }
printf '%s\n' "$1" >> "$KPAR_ROOT_NAMES.seen"
exit 0
SH
chmod +x run-one
cat > Makefile <<'MK'
KPAR_LIST_CMD = cat names.txt
KPAR_RUN_CMD = ./run-one
include $(KPAR_MK)
MK
KPAR_ROOT_NAMES=$P/names.txt
export KPAR_ROOT_NAMES
kmake k8s-test KPAR_WORKERS=2 >out 2>&1; rc=$?
cat out
expect_eq "$rc" 0 "make k8s-test with odd names"
expect_grep '^9 tests: 9 passed' out
for f in pwned pwned2 pwned3; do [ ! -e "$f" ] && [ ! -e "$HOME/$f" ] || fail "a test id was run by a shell ($f)"; done
sort names.txt > want
sort names.txt.seen > got
cmp -s want got || { diff want got; fail "the command did not see each name exactly once"; }
junit_tests .kpar/report/junit.xml | cut -f2 | sort > reported
cmp -s want reported || { diff want reported; fail "junit.xml names differ"; }

# The same names through a Make variable: whitespace splits words, the rest survives.
mkdir -p v && cd v || exit 99
cat > Makefile <<'MK'
KPAR_TESTS = a$$b it's "q" semi;colon back\slash ü
KPAR_RUN_CMD = printf '%s\n' >> seen
include $(KPAR_MK)
MK
kmake k8s-test >out 2>&1 || { cat out; fail "odd names from KPAR_TESTS"; }
printf '%s\n' 'a$b' "it's" '"q"' 'semi;colon' 'back\slash' 'ü' | sort > want
sort seen > got
cmp -s want got || { diff want got; fail "KPAR_TESTS names changed on the way"; }

# A control character in an id is refused with the input named.
cd "$P" && printf 'ok\nbad\001id\n' > names.txt
kmake k8s-test >out 2>&1 && fail "a test id with a control character was accepted"
expect_grep 'KPAR_LIST_CMD.*line 2.*control character' out
exit 0
