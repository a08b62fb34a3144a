/* registry.h - a client for OCI / Docker registries (distribution spec v2), over libcurl.
 *
 * One kpar_registry talks to one repository on one registry host.  It pulls
 * manifests (resolving an index to one platform) and blobs, and pushes an
 * image: the blobs the registry lacks (HEAD first, cross-repo mount when
 * possible, concurrent uploads on one curl multi handle), then the manifest,
 * which is never sent before every blob is confirmed.
 *
 * Transport and trust:
 *  - https with certificate verification, always.  The CA bundle is
 *    opts->ca_file (the tool passes KPAR_REGISTRY_CA), else the system's.
 *  - plain http only for loopback hosts (localhost, 127.0.0.0/8, ::1), hosts
 *    listed in opts->insecure_registries (KPAR_INSECURE_REGISTRIES:
 *    comma-separated host or host:port), or when opts->insecure is set.
 *    For those, GET /v2/ (which never carries credentials) is tried over
 *    http first and https is used when the server refuses plain HTTP.
 *    A certificate that fails verification is an error,
 *    never a reason to fall back.
 *  - redirects are followed by this code, not by curl: Authorization is sent
 *    only to the registry's own scheme://host:port.
 *  - 429 (honouring Retry-After), 5xx and dropped connections are retried
 *    with exponential backoff.
 *
 * Auth: anonymous, Basic, or the Bearer token flow (realm/service/scope from
 * WWW-Authenticate; tokens refreshed on expiry and on 401), with credentials
 * from the Docker config (see dockercfg.h).  Secrets never appear in error
 * messages or in the debug trace (opts->debug, KPAR_REGISTRY_DEBUG=1 for the
 * tool, prints requests and responses to stderr with Authorization redacted).
 *
 * Errors follow error.h; messages name the registry, the repository and what
 * the registry answered (the codes and messages of its {"errors":[...]}):
 * KPAR_EAUTH for 401/403 or missing credentials, KPAR_ENOTFOUND for 404,
 * KPAR_ENET for transport failures, garbage and other statuses,
 * KPAR_ECHECKSUM when content does not match its digest, KPAR_EINVAL for bad
 * arguments.
 *
 * A kpar_registry is used by one thread at a time.
 */
#ifndef KPAR_REGISTRY_H
#define KPAR_REGISTRY_H

#include <stddef.h>
#include <stdint.h>

#include "base/buf.h"
#include "base/digest.h"

#define KPAR_MT_OCI_MANIFEST "application/vnd.oci.image.manifest.v1+json"
#define KPAR_MT_OCI_INDEX "application/vnd.oci.image.index.v1+json"
#define KPAR_MT_DOCKER_MANIFEST "application/vnd.docker.distribution.manifest.v2+json"
#define KPAR_MT_DOCKER_LIST "application/vnd.docker.distribution.manifest.list.v2+json"

struct kpar_registry; /* opaque */

/* All fields optional: a zeroed struct (or a NULL pointer) gives the defaults. */
struct kpar_registry_opts {
	const char *ca_file;           /* PEM CA bundle; NULL or "": the system's */
	int insecure;                  /* allow plain http to this host even if not loopback/listed */
	const char *insecure_registries; /* hosts (host or host:port, comma-separated)
					    allowed over plain http, also for token
					    realms and redirects; NULL: none but loopback */
	int debug;                     /* trace requests and responses on stderr (secrets redacted) */
	int max_parallel;              /* concurrent blob uploads; <= 0: 4 */
	const char *docker_config_dir; /* NULL: $DOCKER_CONFIG, else ~/.docker */
	const char *user_agent;        /* NULL: "kpar/<version>" */
	uint64_t chunk_size;           /* 0: monolithic PUT; else PATCH chunks of this size + PUT */
	int max_retries;               /* retries per request; 0: 5; < 0: none */
	unsigned retry_base_ms;        /* first backoff; 0: 500 ms (doubles each retry, max 30 s) */
};

/* Prepares a client for host[:port] (e.g. "127.0.0.1:5000", "docker.io") and
 * repo (e.g. "library/debian").  No network traffic yet.  The strings are
 * copied; *out is freed with kpar_registry_free. */
int kpar_registry_open(struct kpar_registry **out, const char *host, const char *repo,
		       const struct kpar_registry_opts *opts);
void kpar_registry_free(struct kpar_registry *r);

/* Fetches ref (a tag or "sha256:...") and resolves it to one image manifest:
 * an OCI index or Docker manifest list is followed to the entry for os/arch
 * (NULL means "linux"/"amd64").  On success manifest holds the manifest's
 * exact bytes (appended to the buffer, which should be empty), *media_type a
 * malloc'd media type (caller frees) and digest its "sha256:..." digest,
 * checked against ref when ref is a digest.  media_type may be NULL. */
int kpar_registry_get_manifest(struct kpar_registry *r, const char *ref, const char *os,
			       const char *arch, struct kpar_buf *manifest, char **media_type,
			       char digest[KPAR_DIGEST_STR]);

/* Downloads blob `digest` to path atomically (temporary file beside it,
 * fsync, rename), verifying the digest; nothing is left at path on failure. */
int kpar_registry_get_blob(struct kpar_registry *r, const char *digest, const char *path);

/* One blob to push.  Borrowed by kpar_registry_push for the call only. */
struct kpar_registry_blob {
	const char *digest;      /* "sha256:<hex>" of the bytes */
	const char *path;        /* file holding the bytes, or NULL to use data */
	const void *data;        /* the bytes when path is NULL */
	uint64_t size;           /* byte count; 0 with a path: taken from the file */
	const char *mount_from;  /* another repo on the same registry that holds the
				    blob (e.g. the base image's), or NULL */
};

struct kpar_push_stats {
	unsigned skipped;        /* already in the repository (HEAD said so, or this
				    client confirmed it earlier: it remembers) */
	unsigned uploaded;       /* sent in full */
	unsigned mounted;        /* cross-repo mounted, nothing sent */
	uint64_t bytes_sent;     /* blob bytes uploaded (retries included) */
	char manifest_digest[KPAR_DIGEST_STR];
};

/* Pushes an image: every blob the repository does not have yet (HEAD, then
 * mount or upload, up to max_parallel at once), then - only when all are
 * confirmed - the manifest, by digest and under each of tags (ntags may be
 * 0).  Blobs the manifest names but blobs[] leaves out must already be in
 * the repository (checked with HEAD; KPAR_ENOTFOUND otherwise), as must the
 * manifests an index names.  Duplicate digests in blobs are pushed once.
 * media_type is the manifest's mediaType (sent as Content-Type).  On any
 * failure no manifest has been sent.  stats may be NULL. */
int kpar_registry_push(struct kpar_registry *r, const struct kpar_registry_blob *blobs,
		       size_t n, const char *manifest, size_t manifest_len,
		       const char *media_type, const char *const *tags, size_t ntags,
		       struct kpar_push_stats *stats);

/* ---- exposed for the unit tests ---- */

/* One challenge of a WWW-Authenticate header. */
struct kpar_auth_challenge {
	char *scheme;   /* "Bearer", "Basic", ... as sent */
	char *realm;    /* NULL when absent */
	char *service;
	char *scope;
	char *error;    /* e.g. "insufficient_scope", "invalid_token" */
};

/* Parses the first challenge of a WWW-Authenticate value (quoted strings
 * with commas and escapes, unquoted tokens, any case of parameter names).
 * Frees with kpar_auth_challenge_free.  KPAR_EINVAL when malformed. */
int kpar_registry_parse_challenge(const char *value, struct kpar_auth_challenge *out);
void kpar_auth_challenge_free(struct kpar_auth_challenge *c);

/* 1 when plain http may be used for host[:port] (loopback, listed in
 * insecure_list - a comma-separated host or host:port list, may be NULL). */
int kpar_registry_host_insecure_ok(const char *hostport, const char *insecure_list);

/* Appends "key=value" to url, with '?' or '&' as the url needs; value is
 * percent-encoded.  The result is malloc'd. */
char *kpar_registry_url_add_query(const char *url, const char *key, const char *value);

/* How many Bearer tokens this client has fetched so far (tests check refresh). */
unsigned kpar_registry_token_fetches(const struct kpar_registry *r);

#endif
