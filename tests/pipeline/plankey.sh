#!/bin/sh
# The plan follows every setting that shapes it (a changed worker count
# re-splits), and does not depend on where the checkout is: two copies of
# one tree give the same plan.json and the same image, layer for layer.
. "${KPAR_TOP_SRCDIR}/tests/lib/common.sh"

mkproject() { # DIR
	mkdir -p "$1/t"
	for i in $(seq -w 1 200); do
		printf '#!/bin/sh\nexit 0\n' > "$1/t/test$i"
		chmod +x "$1/t/test$i"
	done
	cat > "$1/Makefile" <<'MK'
KPAR_LIST_CMD = ls t/*
KPAR_TEST_INPUTS = $(wildcard t/*)
KPAR_PAYLOAD = t
include $(KPAR_MK)
MK
}
nbuckets() { python3 -c 'import json, sys; print(len(json.load(open(sys.argv[1]))["buckets"]))' .kpar/plan.json; }
nfiles() { ls .kpar/buckets 2>/dev/null | wc -l | tr -d ' '; }

mkproject "$T/w"
cd "$T/w" || exit 99
# On Kubernetes, 8 buckets per worker: the plan follows the worker count.
kmake k8s-plan KPAR_BACKEND=k8s KPAR_WORKERS=16 >out 2>&1 || { cat out; fail "k8s-plan at 16 workers"; }
expect_eq "$(nbuckets)" 128 "buckets at 16 workers"
# bucket files only when asked for, then the plan's exactly
expect_eq "$(nfiles)" 0 "bucket files written by the plan"
kmake .kpar/buckets/test-group-7 KPAR_BACKEND=k8s KPAR_WORKERS=16 >out 2>&1 || { cat out; fail "make a bucket file"; }
expect_eq "$(nfiles)" 128 "bucket files written on demand"
kmake k8s-plan KPAR_BACKEND=k8s KPAR_WORKERS=2 >out 2>&1 || { cat out; fail "k8s-plan at 2 workers"; }
expect_eq "$(nbuckets)" 16 "buckets after KPAR_WORKERS 16 -> 2"
expect_eq "$(nfiles)" 0 "the last plan's bucket files after a new plan"
kmake k8s-plan KPAR_BACKEND=k8s KPAR_WORKERS=3 >out 2>&1 || { cat out; fail "k8s-plan at 3 workers"; }
expect_eq "$(nbuckets)" 24 "buckets after KPAR_WORKERS 2 -> 3"
kmake k8s-plan KPAR_BACKEND=k8s KPAR_WORKERS=3 KPAR_BUCKETS=5 >out 2>&1 || { cat out; fail "k8s-plan at 5 buckets"; }
expect_eq "$(nbuckets)" 5 "buckets after KPAR_BUCKETS=5"
# Locally, in per-test mode, a bucket per test, whatever the worker count.
kmake k8s-plan KPAR_WORKERS=3 >out 2>&1 || { cat out; fail "k8s-plan on the local backend"; }
expect_eq "$(nbuckets)" "$(wc -l < .kpar/tests.list | tr -d ' ')" "buckets on the local backend"

# Two workspaces of one tree.
for d in a b; do
	mkproject "$T/$d/checkout"
	(cd "$T/$d/checkout" && kmake k8s-image KPAR_WORKERS=2 >out 2>&1) ||
		{ cat "$T/$d/checkout/out"; fail "k8s-image in $T/$d"; }
done
(cd "$T/a/checkout" && expect_eq "$(nfiles)" "$(nbuckets)" "bucket files the image build wrote")
cmp "$T/a/checkout/.kpar/plan.json" "$T/b/checkout/.kpar/plan.json" ||
	fail "plan.json differs between two checkouts of one tree"
expect_eq "$(cat "$T/b/checkout/.kpar/image/digest")" "$(cat "$T/a/checkout/.kpar/image/digest")" \
	"image digest of a second checkout"
exit 0
