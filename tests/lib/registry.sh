# registry.sh - start Debian's docker-registry on loopback from shell tests (sourced, POSIX sh).
#
#   . "$KPAR_TOP_SRCDIR/tests/lib/registry.sh"
#   kpar_registry_start plain|tls|token [--token-ttl S] [--registry-ttl S] || exit $?
#
# plain: http, anonymous.  tls: https (CA made by the test) + Basic auth
# (htpasswd -B).  token: https + Bearer tokens from tests/lib/tokenserver.py.
# Sets and exports:
#   REGISTRY_HOST            127.0.0.1:PORT (binds loopback only)
#   REGISTRY_FLAVOUR REGISTRY_DIR (work dir: storage, keys, logs)
#   REGISTRY_CA REGISTRY_CERT_DIR   CA bundle / dir with ca.crt (empty for plain)
#   REGISTRY_USER REGISTRY_PASSWORD REGISTRY_CREDS (user:password, for skopeo --creds)
#   REGISTRY_DOCKER_CONFIG   a Docker config dir holding those credentials
#   REGISTRY_TOKEN_LOG       token requests, one JSON object a line (token flavour)
#   REGISTRY_SKOPEO          skopeo options for it: $REGISTRY_SKOPEO unquoted
#   DOCKER_CONFIG, KPAR_REGISTRY_CA   so kpar (and skopeo) find credentials and CA
# Returns 77 when a needed tool is missing (the harness's "skip"), 99 when the
# registry does not start.  kpar_registry_stop stops it and removes REGISTRY_DIR;
# it is installed as the EXIT trap - a test with its own EXIT trap calls it there.
# KPAR_KEEP_TEST_DIRS=1 keeps the directory for a post-mortem.

kpar_registry_start()
{
	_kr_flavour=${1:?kpar_registry_start: plain, tls or token}
	shift
	for _kr_tool in docker-registry openssl htpasswd "${PYTHON:-python3}"; do
		if ! command -v "$_kr_tool" >/dev/null 2>&1; then
			echo "registry.sh: $_kr_tool not installed: skipping" >&2
			return 77
		fi
	done
	_kr_lib=${KPAR_TOP_SRCDIR:?KPAR_TOP_SRCDIR not set}/tests/lib
	REGISTRY_DIR=$(mktemp -d "${TMPDIR:-/tmp}/kpar-registry-XXXXXX") || return 99
	if ! "${PYTHON:-python3}" "$_kr_lib/registry.py" start "$_kr_flavour" "$REGISTRY_DIR" "$@"; then
		echo "registry.sh: could not start a $_kr_flavour registry (see $REGISTRY_DIR)" >&2
		return 99
	fi
	. "$REGISTRY_DIR/env"
	export REGISTRY_HOST REGISTRY_FLAVOUR REGISTRY_CA REGISTRY_CERT_DIR REGISTRY_USER \
		REGISTRY_PASSWORD REGISTRY_CREDS REGISTRY_DOCKER_CONFIG REGISTRY_TOKEN_LOG \
		REGISTRY_DIR
	DOCKER_CONFIG=$REGISTRY_DOCKER_CONFIG
	export DOCKER_CONFIG
	if [ -n "$REGISTRY_CA" ]; then
		KPAR_REGISTRY_CA=$REGISTRY_CA
		export KPAR_REGISTRY_CA
		REGISTRY_SKOPEO="--cert-dir $REGISTRY_CERT_DIR --creds $REGISTRY_CREDS"
	else
		REGISTRY_SKOPEO="--tls-verify=false"
	fi
	export REGISTRY_SKOPEO
	trap kpar_registry_stop EXIT
	return 0
}

kpar_registry_stop()
{
	if [ -n "${REGISTRY_DIR:-}" ] && [ -d "$REGISTRY_DIR" ]; then
		"${PYTHON:-python3}" "$KPAR_TOP_SRCDIR/tests/lib/registry.py" stop "$REGISTRY_DIR"
		if [ -z "${KPAR_KEEP_TEST_DIRS:-}" ]; then
			rm -rf "$REGISTRY_DIR"
		fi
	fi
	REGISTRY_DIR=
}
