#!/bin/sh
# Including kpar.mk costs nothing until a kpar goal is wanted: building
# another goal lists, hashes, opens and starts nothing; `make -n k8s-test`
# prints the plan of work without doing any of it (it only asks the list
# step whether the list would change: tests/pipeline/question.sh).
. "${KPAR_TOP_SRCDIR}/tests/lib/common.sh"

P=$T/lazy
mkdir -p "$P"
cd "$P" || exit 99
# A kpar "tool" that only records that it was called (and answers a
# check as the real one does in a fresh project: the list is stale).
cat > spy <<'SH'
#!/bin/sh
echo "$*" >> "$(dirname "$0")/spy.log"
case "$*" in *--check) echo stale ;; esac
SH
chmod +x spy
cat > Makefile <<'MK'
KPAR_LIST_CMD = echo listed >> list-cmd.log; echo t1
KPAR_TESTS = $(shell echo expanded >> tests-var.log)
all: ; @echo built
include $(KPAR_MK)
MK
env $KPAR_MAKE_ENV make --no-print-directory KPAR="$P/spy" KPAR_PLUGIN="$KPAR_PLUGIN" KPAR_MK="$KPAR_MK" all >out 2>&1 || { cat out; fail "make all"; }
expect_grep '^built$' out
[ ! -e spy.log ] || fail "building another goal ran kpar: $(cat spy.log)"
[ ! -e list-cmd.log ] || fail "building another goal ran KPAR_LIST_CMD"
[ ! -e tests-var.log ] || fail "building another goal expanded KPAR_TESTS"
[ ! -e .kpar ] || fail "building another goal created the state dir"

env $KPAR_MAKE_ENV make --no-print-directory -n KPAR="$P/spy" KPAR_PLUGIN="$KPAR_PLUGIN" KPAR_MK="$KPAR_MK" k8s-test >out 2>&1 || { cat out; fail "make -n k8s-test"; }
expect_grep "spy' list" out "make -n does not show the list step"
! grep -v -e '^list --check$' -e '^plan --check$' spy.log >ran || fail "make -n ran more of kpar than a check: $(cat ran)"
[ ! -e .kpar ] || fail "make -n created the state dir"

# A make that includes kpar.mk and calls no kpar function maps none of the
# libraries behind the functions (kpar.so links libc alone); the first call
# opens kpar-impl.so, found beside kpar.so even through a link, and works.
cat > maps.mk <<'MK'
all: ; @: $(file >maps-all,$(file </proc/self/maps))
include $(KPAR_MK)
first: ; @echo d=$(kpar-digest-text abc)$(file >maps-first,$(file </proc/self/maps))
MK
heavy='libsqlite3|libcrypto|libzstd|libcjson|kpar-impl'
env $KPAR_MAKE_ENV make --no-print-directory -f maps.mk KPAR="$P/spy" KPAR_PLUGIN="$KPAR_PLUGIN" KPAR_MK="$KPAR_MK" all >out 2>&1 || { cat out; fail "make all with maps.mk"; }
expect_grep '/kpar\.so$' maps-all "the plugin was not loaded"
grep -E "$heavy" maps-all && fail "a make calling no kpar function mapped the libraries above"
mkdir -p link && ln -sf "$KPAR_PLUGIN" link/kpar.so
env $KPAR_MAKE_ENV make --no-print-directory -f maps.mk KPAR="$P/spy" KPAR_PLUGIN="$P/link/kpar.so" KPAR_MK="$KPAR_MK" first >out 2>&1 || { cat out; fail "the first kpar function call"; }
expect_grep '^d=sha256:ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad$' out
expect_grep '/kpar-impl\.so$' maps-first "the first call did not load kpar-impl.so"
expect_grep 'libsqlite3' maps-first

# Without its companion, kpar.so still loads and quotes; a function that
# needs kpar-impl.so stops make at the call, naming the file.
mkdir -p alone && cp "$KPAR_PLUGIN" alone/kpar.so
printf 'load alone/kpar.so\n$(info q=$(kpar-quote a b))\nx := $(kpar-digest-text abc)\nall: ;\n' > alone.mk
env $KPAR_MAKE_ENV make -f alone.mk >out 2>&1 && { cat out; fail "a missing kpar-impl.so went unnoticed"; }
expect_grep "^q='a b'$" out
expect_grep "^alone.mk:3: \*\*\* kpar: cannot load $(cd alone && pwd -P)/kpar-impl\.so" out

# The plugin alone: its functions work and stop make with a located error.
cat > plugin.mk <<'MK'
load $(KPAR_PLUGIN)
ids := t/a t/b t/c t/d t/e
$(info buckets=$(kpar-buckets 2,$(ids)))
$(info b1=$(kpar-bucket 1,2,$(ids)))
$(info b2=$(kpar-bucket 2,2,$(ids)))
$(info q=$(kpar-quote it's $$x))
$(info d=$(kpar-digest-text abc))
$(info s=$(kpar-state status))
$(info v=$(kpar-version ))
all: ;
MK
env $KPAR_MAKE_ENV make --no-print-directory -f plugin.mk KPAR_PLUGIN="$KPAR_PLUGIN" >out 2>&1 || { cat out; fail "plugin functions"; }
expect_grep '^buckets=test-group-1 test-group-2$' out
b1=$(sed -n 's/^b1=//p' out); b2=$(sed -n 's/^b2=//p' out)
all=$(printf '%s\n' $b1 $b2 | sort | tr '\n' ' ')
expect_eq "$all" "t/a t/b t/c t/d t/e " "buckets together hold every id once"
expect_grep "^q='it'\\\\''s \\\$x'$" out
expect_grep '^d=sha256:ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad$' out
expect_grep '^s=none$' out
[ ! -e .kpar ] || fail "plugin functions created the state dir"

printf 'load $(KPAR_PLUGIN)\nx := $(kpar-bucket 0,2,a b)\nall: ;\n' > bad.mk
env $KPAR_MAKE_ENV make -f bad.mk KPAR_PLUGIN="$KPAR_PLUGIN" >out 2>&1 && fail "bucket 0 accepted"
expect_grep '^bad.mk:2: \*\*\* kpar: kpar-bucket: bucket number' out
printf 'load $(KPAR_PLUGIN)\nx := $(kpar-digest no-such-file)\nall: ;\n' > bad2.mk
env $KPAR_MAKE_ENV make -f bad2.mk KPAR_PLUGIN="$KPAR_PLUGIN" >out 2>&1 && fail "digest of a missing file accepted"
expect_grep "^bad2.mk:2: \\*\\*\\* kpar: kpar-digest: cannot open 'no-such-file'" out

# Only the setup entry point and the GPL marker leave the plugin.
syms=$(nm -D --defined-only "$KPAR_PLUGIN" | awk '$2 ~ /^[TDBR]$/ {print $3}' | grep -v '^_' | sort | tr '\n' ' ')
expect_eq "$syms" "kpar_gmk_setup plugin_is_GPL_compatible " "exported symbols"
# and only the table's getter from its companion, whose libraries' symbols
# must not meet make's own
syms=$(nm -D --defined-only "$(dirname "$KPAR_PLUGIN")/kpar-impl.so" | awk '$2 ~ /^[TDBR]$/ {print $3}' | grep -v '^_' | sort | tr '\n' ' ')
expect_eq "$syms" "kpar_plugin_impl " "kpar-impl.so's exported symbols"

# valgrind: the plugin inside make, every function, no error.
if [ "$KPAR_SANITIZED" = 0 ] && command -v valgrind >/dev/null; then
	valgrind -q --error-exitcode=9 --leak-check=no make -f plugin.mk KPAR_PLUGIN="$KPAR_PLUGIN" >vg.out 2>&1
	rc=$?
	[ "$rc" = 0 ] || { cat vg.out; fail "valgrind found errors in make with the plugin ($rc)"; }
fi
exit 0
