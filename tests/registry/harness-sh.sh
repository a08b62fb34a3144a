#!/bin/sh
# harness-sh.sh - tests/lib/registry.sh: each flavour starts, takes a push, answers skopeo, stops.
set -eu
. "$KPAR_TOP_SRCDIR/tests/lib/registry.sh"
command -v skopeo >/dev/null || { echo "skopeo not installed"; exit 77; }
REGTOOL=$KPAR_TOP_BUILDDIR/tests/registry/regtool
work=$(mktemp -d "${TMPDIR:-/tmp}/kpar-harness-XXXXXX")
trap 'kpar_registry_stop; rm -rf "$work"' EXIT

for flavour in plain tls token; do
	rc=0
	kpar_registry_start "$flavour" || rc=$?
	[ "$rc" -eq 0 ] || exit "$rc"
	trap 'kpar_registry_stop; rm -rf "$work"' EXIT
	case $REGISTRY_HOST in 127.0.0.1:[0-9]*) ;; *) echo "not loopback: $REGISTRY_HOST"; exit 1;; esac
	grep -q "addr: 127.0.0.1:" "$REGISTRY_DIR/config.yml"
	# A layout made by hand, pushed with the DOCKER_CONFIG/KPAR_REGISTRY_CA the harness exported.
	"${PYTHON:-python3}" -c "
import sys; sys.path.insert(0, '$KPAR_TOP_SRCDIR/tests/lib'); import ocitest
print(ocitest.make_layout('$work/$flavour', [{'hello': b'from the shell harness'}], 'v1')['digest'])
" > "$work/digest"
	"$REGTOOL" push "$REGISTRY_HOST" kpar/harness "$work/$flavour" v1 > "$work/out"
	grep -q "uploaded=2" "$work/out" || { cat "$work/out"; exit 1; }
	# shellcheck disable=SC2086 # REGISTRY_SKOPEO is a list of options
	skopeo inspect $REGISTRY_SKOPEO "docker://$REGISTRY_HOST/kpar/harness:v1" > "$work/inspect"
	grep -q "\"Digest\": \"$(cat "$work/digest")\"" "$work/inspect" || { cat "$work/inspect"; exit 1; }
	if [ "$flavour" = token ]; then
		grep -q '"who": "kpar"' "$REGISTRY_TOKEN_LOG"
	fi
	dir=$REGISTRY_DIR
	pids=$(sed -n "s/^REGISTRY_PIDS='\(.*\)'/\1/p" "$dir/env")
	kpar_registry_stop
	[ ! -d "$dir" ] || { echo "work dir left behind: $dir"; exit 1; }
	for pid in $pids; do
		if kill -0 "$pid" 2>/dev/null; then echo "process $pid still running"; exit 1; fi
	done
	echo "ok $flavour"
done
