/* cache.h - the artifact cache: downloaded files kept by content, indexed in
 * SQLite, shared by every project of a user and shipped read-only to workers.
 *
 * A cache directory (KPAR_CACHE_DIR, default $XDG_CACHE_HOME/kpar or
 * ~/.cache/kpar) holds:
 *   index.db                 SQLite index (WAL): one row per entry
 *   blobs/sha256/<hex>       the bytes, mode 0444, named by their SHA-256
 *   named/<hex>/<name>       relative symlink to a blob, for a fetch with a name
 *   snapshots/<key>/<name>   relative symlink to a snapshot's current blob
 *                            (<key> = SHA-256 of the URL, in hex)
 *   tmp/<key>.part, .meta    a download in progress, resumable
 *   locks/<key>.lock         flock: one download per artifact at a time
 *   READONLY                 an exported cache: lookups only, never a write
 *
 * Entries are "pinned" (fetched with a SHA-256: immutable, never downloaded
 * again once present) or "snapshots" (no checksum: the URL's current content,
 * revalidated with ETag / If-Modified-Since per the revalidation policy).
 *
 * Invariants the rest relies on:
 *  - a blob exists only with verified content: bytes go to tmp/ while being
 *    hashed, and are renamed into blobs/ only when the digest is known (and
 *    matches, for a pinned artifact).  A mismatch stores nothing.
 *  - index rows are written after the rename, so a kill -9 at any point leaves
 *    either no entry, or a blob without row (a later lookup indexes it), or
 *    both.  A row whose blob vanished is a miss and is repaired.
 *  - every change to an artifact happens under its lock file, so concurrent
 *    processes asking for the same artifact download it once: the others wait
 *    and then find it.
 *
 * Keys name entries in used-lists and for `kpar cache use`:
 * "sha256:<hex>" for a pinned artifact, "url:<hex of SHA-256 of the URL>" for
 * a snapshot.
 *
 * Ownership: strings inside structs marked "owned" are freed by the matching
 * *_free function; "borrowed" ones must outlive the call.
 */
#ifndef KPAR_CACHE_H
#define KPAR_CACHE_H

#include <stddef.h>
#include <stdint.h>
#include <time.h>

#include "base/buf.h"
#include "base/digest.h"

#define KPAR_CACHE_REVALIDATE_ALWAYS 0L
#define KPAR_CACHE_REVALIDATE_NEVER (-1L)
#define KPAR_CACHE_KEY_MAX 72           /* "sha256:" or "url:" + 64 hex + NUL */
#define KPAR_CACHE_NAME_MAX 200

struct kpar_cache;                      /* an open cache directory */

struct kpar_cache_opts {
	char *dir;                      /* owned; NULL = kpar_cache_default_dir() */
	int readonly;                   /* lookups only; also implied by DIR/READONLY
	                                   or a directory this process cannot write */
	struct kpar_strv mirrors;       /* owned; bases tried in order before the URL
	                                   of a pinned artifact: BASE/<file name>, or
	                                   BASE with "{sha256}" replaced by the hex */
	long revalidate;                /* snapshots: seconds between checks, or
	                                   KPAR_CACHE_REVALIDATE_ALWAYS / _NEVER */
	int retries;                    /* extra attempts per URL on transient errors */
	long connect_timeout;           /* seconds */
	long stall_timeout;             /* seconds under 1 byte/s before giving up */
	char *used_list;                /* owned; append each fetched key here, or NULL */
	char *ca_bundle;                /* owned; CA file for TLS, NULL = system's */
	int verbose;                    /* say what happens on stderr */
};

/* Defaults: revalidate always, 2 retries, 30 s connect, 60 s stall. */
void kpar_cache_opts_init(struct kpar_cache_opts *o);
/* Applies the cache's settings as conf.c read them (KPAR_CACHE_DIR,
 * _READONLY, _MIRRORS, _REVALIDATE, _RETRIES, _CONNECT_TIMEOUT,
 * _STALL_TIMEOUT, _USED_LIST, _CA_BUNDLE); a duration that does not parse
 * is an error naming the variable.  Not in the plugin's core library: the
 * plugin reads make's variables instead. */
struct kpar_conf;
int kpar_cache_opts_conf(struct kpar_cache_opts *o, const struct kpar_conf *c);
/* Replaces o->mirrors with the whitespace-separated bases in list. */
void kpar_cache_opts_set_mirrors(struct kpar_cache_opts *o, const char *list);
void kpar_cache_opts_free(struct kpar_cache_opts *o);

/* $XDG_CACHE_HOME/kpar, else $HOME/.cache/kpar (KPAR_CACHE_DIR is applied
 * by kpar_cache_opts_conf, not here).  *out is malloc'd. */
int kpar_cache_default_dir(char **out);

/* Opens (creating when writable) the cache directory.  Free with _close. */
int kpar_cache_open(struct kpar_cache **out, const struct kpar_cache_opts *opts);
void kpar_cache_close(struct kpar_cache *c);
const char *kpar_cache_dir(const struct kpar_cache *c);    /* borrowed */
int kpar_cache_is_readonly(const struct kpar_cache *c);

/* --- naming: pure functions, no I/O (the Make function relies on that) --- */

/* Accepts 64 hex digits, optionally prefixed "sha256:", any case; writes the
 * lower-case hex.  An empty or NULL input is not an error here: callers treat
 * it as "snapshot" before calling. */
int kpar_cache_parse_sha256(const char *in, char hex[KPAR_SHA256_HEX]);
/* A name for links: [A-Za-z0-9._+~-], not starting with '.', at most
 * KPAR_CACHE_NAME_MAX bytes.  Error names the input. */
int kpar_cache_check_name(const char *name);
/* The file name a URL suggests: last path segment without query, characters
 * outside the allowed set replaced by '_', "artifact" when nothing is left.
 * malloc'd. */
char *kpar_cache_url_name(const char *url);
/* "sha256:<hex>" (pinned) or "url:<hex of SHA-256 of url>" (snapshot). */
void kpar_cache_key(const char *url, const char *sha256_hex, char out[KPAR_CACHE_KEY_MAX]);
/* Where the artifact is, or will be once fetched:
 *   pinned, no name: DIR/blobs/sha256/<hex>
 *   pinned + name:   DIR/named/<hex>/<name>
 *   snapshot:        DIR/snapshots/<url key>/<name or kpar_cache_url_name(url)>
 * sha256 may be NULL or "" (snapshot).  *out is malloc'd. */
int kpar_cache_path(const char *dir, const char *url, const char *sha256, const char *name,
		    char **out);
/* The URL without user name and password, for logs, messages and the index. */
char *kpar_cache_redact_url(const char *url);

/* "10G", "512M", "1.5T", "4096" (bytes; K/M/G/T are powers of 1024). */
int kpar_cache_parse_size(const char *s, uint64_t *out);
/* "90d", "12h", "30m", "45s", "3600" (seconds). */
int kpar_cache_parse_age(const char *s, long *out);
/* "always" | "never" | seconds (as kpar_cache_parse_age). */
int kpar_cache_parse_revalidate(const char *s, long *out);

/* --- fetching --- */

struct kpar_cache_req {
	const char *url;                /* borrowed */
	const char *sha256;             /* borrowed; NULL or "" = snapshot */
	const char *name;               /* borrowed; NULL = none (pinned) or from URL */
	const char *const *alternates;  /* borrowed; other full URLs, tried after url */
	size_t n_alternates;
};

struct kpar_cache_result {
	char *path;                     /* owned: the path kpar_cache_path names */
	char digest[KPAR_DIGEST_STR];   /* "sha256:<hex>" of the content */
	uint64_t size;
	int hit;                        /* 1: no body was downloaded */
	int stale;                      /* 1: snapshot served after a failed revalidation */
	char *source;                   /* owned: redacted URL it came from, NULL on a hit */
};

void kpar_cache_result_free(struct kpar_cache_result *r);

/* Returns the artifact's path, downloading it first when it is not cached
 * (or, for a snapshot, when the policy says to revalidate and the origin has
 * a new version).  Blocks while another process downloads the same artifact.
 * Errors: KPAR_ECHECKSUM (no candidate URL delivered the pinned content),
 * KPAR_ENET (every candidate failed; the message names each URL and status),
 * KPAR_ENOTFOUND (a miss in a read-only cache), KPAR_EINVAL (bad request). */
int kpar_cache_fetch(struct kpar_cache *c, const struct kpar_cache_req *req,
		     struct kpar_cache_result *res);
/* As kpar_cache_fetch without network and without waiting: returns 1 and
 * fills res on a hit (and counts it, unless read-only), 0 on a miss. */
int kpar_cache_lookup(struct kpar_cache *c, const struct kpar_cache_req *req,
		      struct kpar_cache_result *res);

/* --- entries --- */

struct kpar_cache_entry {
	int pinned;
	char key[KPAR_CACHE_KEY_MAX];
	const char *url;                /* borrowed for the callback's duration */
	char digest[KPAR_DIGEST_STR];
	uint64_t size;
	int64_t fetched;                /* when the bytes last came over the wire */
	int64_t checked;                /* when last confirmed with the origin */
	int64_t last_used;
	uint64_t hits;
	const char *etag;               /* borrowed, may be NULL */
	const char *last_modified;      /* borrowed, may be NULL */
};

/* Calls fn for each entry, least recently used first; a negative return
 * from fn stops the walk and is returned. */
int kpar_cache_list(struct kpar_cache *c,
		    int (*fn)(const struct kpar_cache_entry *e, void *payload), void *payload);

/* Marks the entries named by keys as used now (last_used; and hits when
 * count_hit).  Unknown keys are ignored (an artifact may not be fetched yet).
 * A read-only cache is left alone. */
int kpar_cache_use(struct kpar_cache *c, const struct kpar_strv *keys, int count_hit);
/* Checks a key's spelling ("sha256:<64 hex>" or "url:<64 hex>"). */
int kpar_cache_check_key(const char *key);

/* A build's used-list: one key per line, sorted, no duplicates. */
int kpar_cache_used_list_read(const char *path, struct kpar_strv *out);
/* Adds keys (replace: writes exactly keys) under an flock of FILE.lock, so
 * several fetches of one build may add at once. */
int kpar_cache_used_list_merge(const char *path, const struct kpar_strv *keys, int replace);
int kpar_cache_used_list_add(const char *path, const char *key);
/* Writes exactly keys (sorted, unique); the file keeps its mtime when the
 * content is unchanged, so Make does not remake what depends on it. */
int kpar_cache_used_list_write(const char *path, const struct kpar_strv *keys);

struct kpar_cache_stats {
	uint64_t entries, pinned, snapshots;
	uint64_t blobs, bytes;          /* distinct blobs referenced by entries */
	uint64_t hits, misses;          /* lookups served from the cache / downloads */
	uint64_t downloaded;            /* body bytes received */
	uint64_t revalidations, not_modified;
	uint64_t partials, partial_bytes; /* downloads waiting to be resumed */
};

int kpar_cache_stats(struct kpar_cache *c, struct kpar_cache_stats *out);

/* --- cleanup --- */

struct kpar_cache_gc_policy {
	uint64_t max_size;              /* bytes of blobs; 0 = no limit */
	long max_age;                   /* seconds since last use; 0 = no limit */
	long grace;                     /* entries used this recently are kept */
	const struct kpar_strv *keep;   /* borrowed; keys of the current build (kept) */
	time_t now;                     /* 0 = time(NULL); tests pass a clock */
	int dry_run;                    /* report, remove nothing */
};

/* Applies KPAR_CACHE_MAX_SIZE, _MAX_AGE and _GC_GRACE as conf.c read them
 * over p's values; a value that does not parse is an error naming it. */
int kpar_cache_gc_policy_conf(struct kpar_cache_gc_policy *p, const struct kpar_conf *c);

struct kpar_cache_gc_result {
	uint64_t removed, freed;        /* entries removed, blob bytes freed */
	uint64_t kept_in_use;           /* entries kept because the build uses them */
	uint64_t entries_after, bytes_after;
	uint64_t orphans, partials;     /* unindexed blobs / stale downloads removed */
};

/* Removes entries older than max_age (since last use), then least recently
 * used entries until the blobs fit in max_size.  Entries in keep, or used
 * within grace seconds, are never removed, even when that leaves the cache
 * over max_size.  A blob goes when no entry references it any more.  Entries
 * being downloaded by another process are skipped. */
int kpar_cache_gc(struct kpar_cache *c, const struct kpar_cache_gc_policy *p,
		  struct kpar_cache_gc_result *r);

struct kpar_cache_verify_result {
	uint64_t checked, bad, missing, orphans_indexed;
};

/* Re-hashes every blob; removes blobs whose content does not match their
 * name (with their entries), drops rows whose blob is gone and indexes
 * verified blobs that have no row.  Errors only on I/O or database failure. */
int kpar_cache_verify(struct kpar_cache *c, struct kpar_cache_verify_result *r);

/* --- the image layer --- */

/* Makes dir a read-only cache holding the entries named by keys (every entry
 * when keys is NULL): blobs (hard links when possible, else copies), their
 * named/ and snapshots/ links, an index with stable fields only (no hit
 * counts or use times) and a READONLY marker.  Deterministic: the same
 * entries give the same bytes.  Incremental: files already right are left
 * alone (mtimes kept), extra ones are removed.  Returns 1 when dir changed,
 * 0 when it was up to date.  A key not in the cache is KPAR_ENOTFOUND. */
int kpar_cache_export(struct kpar_cache *c, const char *dir, const struct kpar_strv *keys);

#endif
