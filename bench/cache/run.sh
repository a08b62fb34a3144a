#!/bin/sh
# bench/cache/run.sh - what the artifact cache costs and saves (hyperfine).
#
#   cold      kpar fetch of a 256 MiB artifact over loopback from nginx
#             (download + SHA-256 while streaming + fsync + index), beside
#             the peer `curl -o f && sha256sum f`
#   hit       kpar fetch of a pinned artifact that is cached (no request)
#   304       kpar fetch of a snapshot revalidated with ETag (one request)
#   make      parsing a makefile naming 200 cached artifacts with
#             $(kpar-fetch ...) beside the same makefile with plain paths
#
# Env: KPAR_BIN (the kpar tool), KPAR_TOP_BUILDDIR (for the test plugin
# tests/cache/.libs/kpar_cachefn.so), KPAR_TOP_SRCDIR.  Needs hyperfine and
# nginx; traffic stays on 127.0.0.1.  `make bench-cache` runs it.
set -eu

KPAR_BIN=${KPAR_BIN:-kpar}
TOP_BUILDDIR=${KPAR_TOP_BUILDDIR:-$(pwd)}
TOP_SRCDIR=${KPAR_TOP_SRCDIR:-$(cd "$(dirname "$0")/../.." && pwd)}
MODULE=$TOP_BUILDDIR/tests/cache/.libs/kpar_cachefn.so
SIZE_MB=${BENCH_CACHE_MB:-256}

for tool in hyperfine nginx curl sha256sum; do
	command -v "$tool" >/dev/null 2>&1 || { echo "bench-cache: $tool not found" >&2; exit 77; }
done

W=$(mktemp -d /tmp/kpar-bench-cache-XXXXXX)
chmod 755 "$W"
cleanup() {
	[ -f "$W/nginx.pid" ] && kill "$(cat "$W/nginx.pid")" 2>/dev/null || :
	rm -rf "$W"
}
trap cleanup EXIT INT TERM

mkdir -p "$W/www" "$W/ngx"
head -c $((SIZE_MB * 1024 * 1024)) /dev/urandom > "$W/www/big.bin"
printf 'snapshot\n' > "$W/www/snap.txt"
chmod -R a+rX "$W/www"
SHA=$(sha256sum "$W/www/big.bin" | cut -c1-64)

# nginx on a free loopback port (first one that binds).
PORT=
for p in 18431 18432 18433 18434 18435 18436; do
	cat > "$W/nginx.conf" <<EOF
daemon on;
pid $W/nginx.pid;
error_log $W/ngx/error.log;
worker_processes 1;
events { worker_connections 64; }
http {
	access_log off;
	client_body_temp_path $W/ngx; proxy_temp_path $W/ngx; fastcgi_temp_path $W/ngx;
	uwsgi_temp_path $W/ngx; scgi_temp_path $W/ngx;
	sendfile on;
	server { listen 127.0.0.1:$p; root $W/www; }
}
EOF
	if nginx -c "$W/nginx.conf" -p "$W" 2>/dev/null; then PORT=$p; break; fi
done
[ -n "$PORT" ] || { echo "bench-cache: nginx would not start" >&2; exit 77; }
URL=http://127.0.0.1:$PORT/big.bin
export KPAR_CACHE_DIR="$W/cache"

echo "== cold: ${SIZE_MB} MiB over loopback (download, verify, store)"
hyperfine --warmup 1 --runs 5 --export-markdown "$W/cold.md" \
	--prepare "rm -rf '$W/cache' '$W/f'" \
	-n "kpar fetch" "'$KPAR_BIN' fetch --quiet --sha256 $SHA '$URL'" \
	-n "curl -o f && sha256sum f" "curl -sf -o '$W/f' '$URL' && sha256sum '$W/f' >/dev/null"
cat "$W/cold.md"

echo "== hit: pinned and cached (no request)"
"$KPAR_BIN" fetch --quiet --sha256 "$SHA" "$URL"
hyperfine --warmup 5 --runs 200 -N --export-markdown "$W/hit.md" \
	-n "kpar fetch (hit)" "'$KPAR_BIN' fetch --quiet --sha256 $SHA '$URL'" \
	-n "kpar fetch --lookup" "'$KPAR_BIN' fetch --quiet --lookup --sha256 $SHA '$URL'"
cat "$W/hit.md"

echo "== snapshot revalidation: one conditional request, 304"
"$KPAR_BIN" fetch --quiet "http://127.0.0.1:$PORT/snap.txt"
hyperfine --warmup 5 --runs 100 -N --export-markdown "$W/304.md" \
	-n "kpar fetch (304)" "'$KPAR_BIN' fetch --quiet 'http://127.0.0.1:$PORT/snap.txt'"
cat "$W/304.md"

if [ -f "$MODULE" ]; then
	echo "== make: parsing 200 \$(kpar-fetch ...) of cached artifacts"
	i=0
	: > "$W/fn.mk"
	: > "$W/plain.mk"
	printf 'load %s\nKPAR := %s\ninclude %s\n' "$MODULE" "$KPAR_BIN" "$TOP_SRCDIR/mk/cache.mk.in" >> "$W/fn.mk"
	printf 'load %s\nKPAR := %s\ninclude %s\n' "$MODULE" "$KPAR_BIN" "$TOP_SRCDIR/mk/cache.mk.in" >> "$W/plain.mk"
	while [ $i -lt 200 ]; do
		printf 'a%d\n' $i > "$W/www/a$i"
		h=$(sha256sum "$W/www/a$i" | cut -c1-64)
		"$KPAR_BIN" fetch --quiet --sha256 "$h" "http://127.0.0.1:$PORT/a$i"
		printf 'A%d := $(kpar-fetch http://127.0.0.1:%s/a%d,%s)\nall: $(A%d)\n' $i "$PORT" $i "$h" $i >> "$W/fn.mk"
		printf 'A%d := %s/blobs/sha256/%s\nall: $(A%d)\n' $i "$W/cache" "$h" $i >> "$W/plain.mk"
		i=$((i + 1))
	done
	hyperfine --warmup 3 --runs 30 --export-markdown "$W/make.md" \
		-n "make, 200 kpar-fetch" "make -s -f '$W/fn.mk' all" \
		-n "make, 200 plain paths" "make -s -f '$W/plain.mk' all"
	cat "$W/make.md"
else
	echo "(make: $MODULE not built; run 'make check' first)"
fi
