/* cache.c - the artifact cache: naming, opening, locks, lookup and fetch.
 *
 * A fetch goes through these states (function doing each step in brackets):
 *
 *   lookup without lock [try_pinned / try_snapshot] --hit--> done
 *      | miss (or a snapshot due for revalidation)
 *   take locks/<key>.lock [kpar_cache__lock]; another process downloading
 *   the same artifact holds it, so we wait here and then ...
 *   lookup again under the lock --hit (the other process got it)--> done
 *      | miss
 *   download each candidate URL into tmp/<key>.part, hashing [download]
 *      resumable: a .part left by a failed or killed transfer is continued
 *      with Range (+ If-Range), or restarted when the server says no
 *   verify the digest, rename into blobs/sha256/<hex> [publish]
 *   write the index row, then the named/ or snapshots/ link
 *   release the lock.
 *
 * Nothing before the rename is visible to other processes, which is why a
 * kill -9 anywhere leaves the cache consistent (see cache.h).
 */
#include "config.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <cjson/cJSON.h>

#include "base/buf.h"
#include "cache/cache_int.h"
#include "base/conf.h"
#include "base/curl_load.h"
#include "base/digest.h"
#include "base/error.h"
#include "base/fs.h"

/* --- settings --- */

/* A duration setting; "" keeps *out. */
static int parse_setting(const char *var, const char *v, long *out,
			 int (*parse)(const char *, long *))
{
	int rc;

	if (*v && (rc = parse(v, out)) < 0)
		return kpar_error_prefix(rc, "%s", var);
	return 0;
}

int kpar_cache_gc_policy_conf(struct kpar_cache_gc_policy *p, const struct kpar_conf *c)
{
	int rc;

	if (*c->cache_max_size && (rc = kpar_cache_parse_size(c->cache_max_size, &p->max_size)) < 0)
		return kpar_error_prefix(rc, "KPAR_CACHE_MAX_SIZE");
	if ((rc = parse_setting("KPAR_CACHE_MAX_AGE", c->cache_max_age, &p->max_age,
				kpar_cache_parse_age)) < 0)
		return rc;
	return parse_setting("KPAR_CACHE_GC_GRACE", c->cache_gc_grace, &p->grace, kpar_cache_parse_age);
}

int kpar_cache_opts_conf(struct kpar_cache_opts *o, const struct kpar_conf *c)
{
	int rc;

	if (*c->cache_dir) {
		free(o->dir);
		o->dir = kpar_xstrdup(c->cache_dir);
	}
	if (c->cache_readonly)
		o->readonly = 1;
	if (*c->cache_mirrors)
		kpar_cache_opts_set_mirrors(o, c->cache_mirrors);
	if ((rc = parse_setting("KPAR_CACHE_REVALIDATE", c->cache_revalidate, &o->revalidate,
				kpar_cache_parse_revalidate)) < 0 ||
	    (rc = parse_setting("KPAR_CACHE_CONNECT_TIMEOUT", c->cache_connect_timeout,
				&o->connect_timeout, kpar_cache_parse_age)) < 0 ||
	    (rc = parse_setting("KPAR_CACHE_STALL_TIMEOUT", c->cache_stall_timeout,
				&o->stall_timeout, kpar_cache_parse_age)) < 0)
		return rc;
	o->retries = (int)c->cache_retries;
	if (*c->cache_used_list) {
		free(o->used_list);
		o->used_list = kpar_xstrdup(c->cache_used_list);
	}
	if (*c->cache_ca_bundle) {
		free(o->ca_bundle);
		o->ca_bundle = kpar_xstrdup(c->cache_ca_bundle);
	}
	return 0;
}

/* --- URLs --- */

char *kpar_cache_redact_url(const char *url)
{
	CURLU *u = NULL;
	char *user = NULL, *pass = NULL, *s = NULL, *out;

	if (kpar_curl_load() == 0)
		u = curl_url();
	else
		kpar_error_clear();
	if (!u || curl_url_set(u, CURLUPART_URL, url, CURLU_NON_SUPPORT_SCHEME) != CURLUE_OK) {
		if (u)
			curl_url_cleanup(u);
		/* Not a URL curl understands (or no libcurl); keep what
		 * precedes any '@' so a secret never reaches a message. */
		if (strchr(url, '@'))
			return kpar_xasprintf("%.*s<redacted>", (int)strcspn(url, "/") + 2, url);
		return kpar_xstrdup(url);
	}
	curl_url_get(u, CURLUPART_USER, &user, 0);
	curl_url_get(u, CURLUPART_PASSWORD, &pass, 0);
	if (user || pass) {
		curl_url_set(u, CURLUPART_USER, NULL, 0);
		curl_url_set(u, CURLUPART_PASSWORD, NULL, 0);
		curl_url_get(u, CURLUPART_URL, &s, 0);
	}
	out = kpar_xstrdup(s ? s : url);
	curl_free(user);
	curl_free(pass);
	curl_free(s);
	curl_url_cleanup(u);
	return out;
}

/* --- lookup --- */

/* 1 when hex's blob is a regular file (of size want, unless want is
 * UINT64_MAX); *size gets its size. */
static int blob_present(struct kpar_cache *c, const char *hex, uint64_t want, uint64_t *size)
{
	static const char empty[] =
		"e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855";
	char *path = kpar_cache__blob_path(c, hex);
	struct stat st;
	/* An empty file is only ever the empty content's blob; anything else
	 * empty is debris (`make -t` touches targets it would have fetched). */
	int ok = stat(path, &st) == 0 && S_ISREG(st.st_mode) &&
		 (want == UINT64_MAX || (uint64_t)st.st_size == want) &&
		 (st.st_size > 0 || strcmp(hex, empty) == 0);

	if (ok && size)
		*size = (uint64_t)st.st_size;
	free(path);
	return ok;
}

/* 1 when the link exists and resolves to hex's blob; otherwise creates it in
 * a writable cache (returning 1), or returns 0. */
static int ensure_link(struct kpar_cache *c, const char *key, const char *name, const char *hex)
{
	char *dir = kpar_cache__links_dir(c->dir, key);
	char *path = kpar_fs_join(dir, name);
	char *want = kpar_xasprintf("../../blobs/sha256/%s", hex);
	char cur[256];
	ssize_t n = readlink(path, cur, sizeof cur - 1);
	int ok = 0;

	if (n > 0) {
		cur[n] = '\0';
		ok = strcmp(cur, want) == 0;
	}
	if (!ok && !c->readonly)
		ok = kpar_cache__link(dir, name, hex) == 0;
	free(want);
	free(path);
	free(dir);
	return ok;
}

static void note_used(struct kpar_cache *c, const char *key, int hit)
{
	if (!c->readonly && c->db)
		kpar_cache__db_touch(c, key, kpar_cache__now(), hit);
	if (c->opts.used_list && kpar_cache_used_list_add(c->opts.used_list, key) < 0 &&
	    c->opts.verbose)
		fprintf(stderr, "kpar: warning: %s\n", kpar_error_last());
}

static void fill_result(struct kpar_cache_result *res, const char *path, const char *hex,
			uint64_t size, int hit)
{
	memset(res, 0, sizeof *res);
	res->path = kpar_xstrdup(path);
	memcpy(res->digest, "sha256:", 7);
	memcpy(res->digest + 7, hex, KPAR_SHA256_HEX);
	res->size = size;
	res->hit = hit;
}

static void verbose(struct kpar_cache *c, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));

static void verbose(struct kpar_cache *c, const char *fmt, ...)
{
	va_list ap;

	if (!c->opts.verbose)
		return;
	fprintf(stderr, "kpar fetch: ");
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
}

/* A pinned artifact is present when its blob is; the index row is only
 * bookkeeping, re-created when a kill -9 lost it.  Returns 1 on a hit. */
static int try_pinned(struct kpar_cache *c, const struct kpar_cache_req *req, const char *hex,
		      const char *key, const char *path, int locked, struct kpar_cache_result *res)
{
	struct kpar_cache__row row;
	uint64_t size = 0;
	int have_row, rc;

	memset(&row, 0, sizeof row);
	if ((have_row = kpar_cache__db_get(c, key, &row)) < 0)
		return have_row;
	if (!blob_present(c, hex, have_row ? row.size : UINT64_MAX, &size)) {
		kpar_cache__row_free(&row);
		return 0;
	}
	kpar_cache__row_free(&row);
	if (req->name && *req->name && !ensure_link(c, key, req->name, hex))
		return 0;
	if (!have_row && !c->readonly && c->db) {
		/* An unindexed blob (a kill -9 between rename and insert, or an
		 * export): index it under the lock so GC cannot race us. */
		int fd = -1;
		int64_t now = kpar_cache__now();
		struct kpar_cache__row nr;

		char digest[KPAR_DIGEST_STR];
		char *blob = kpar_cache__blob_path(c, hex);

		if (!locked && (rc = kpar_cache__lock(c, key, 1, &fd)) < 0) {
			free(blob);
			return rc;
		}
		/* Whoever left it unindexed, trust it only once re-hashed. */
		if (!blob_present(c, hex, UINT64_MAX, &size) ||
		    kpar_digest_file(blob, digest, &size) < 0 || strcmp(digest + 7, hex) != 0) {
			kpar_error_clear();
			unlink(blob);
			free(blob);
			kpar_cache__unlock(fd);
			return 0;
		}
		free(blob);
		memset(&nr, 0, sizeof nr);
		memcpy(nr.key, key, strlen(key) + 1);
		nr.pinned = 1;
		nr.url = kpar_cache_redact_url(req->url);
		memcpy(nr.hex, hex, KPAR_SHA256_HEX);
		nr.size = size;
		nr.fetched = nr.checked = nr.last_used = now;
		rc = kpar_cache__db_put(c, &nr);
		free(nr.url);
		kpar_cache__unlock(fd);
		if (rc < 0)
			return rc;
	}
	note_used(c, key, 1);
	fill_result(res, path, hex, size, 1);
	verbose(c, "hit '%s'", req->url);
	return 1;
}

/* 1 on a hit.  fresh_since: a snapshot checked with the origin at or after
 * this time needs no revalidation (0 = policy decides, INT64_MAX = never
 * revalidate: lookups). */
static int try_snapshot(struct kpar_cache *c, const char *key, const char *name,
			const char *path, int64_t fresh_since, struct kpar_cache_result *res,
			struct kpar_cache__row *row_out)
{
	struct kpar_cache__row row;
	int have, fresh;
	int64_t now = kpar_cache__now();

	memset(&row, 0, sizeof row);
	if ((have = kpar_cache__db_get(c, key, &row)) <= 0)
		return have;
	if (!blob_present(c, row.hex, row.size, NULL) || !ensure_link(c, key, name, row.hex)) {
		kpar_cache__row_free(&row);
		return 0;
	}
	if (fresh_since == INT64_MAX || c->readonly ||
	    c->opts.revalidate == KPAR_CACHE_REVALIDATE_NEVER)
		fresh = 1;
	else if (fresh_since > 0)
		fresh = row.checked >= fresh_since;
	else
		fresh = c->opts.revalidate > 0 && now - row.checked < c->opts.revalidate;
	if (!fresh) {
		*row_out = row;         /* the caller revalidates against it */
		return 0;
	}
	note_used(c, key, 1);
	fill_result(res, path, row.hex, row.size, 1);
	kpar_cache__row_free(&row);
	return 1;
}

/* --- download --- */

struct dl_out {
	char hex[KPAR_SHA256_HEX];
	uint64_t size;
	int not_modified;
	int gone;                       /* a URL answered 4xx: not a passing outage */
	char *etag, *last_modified, *source;
};

static void dl_out_free(struct dl_out *o)
{
	free(o->etag);
	free(o->last_modified);
	free(o->source);
	o->etag = o->last_modified = o->source = NULL;
}

static int is_http(const char *url)
{
	return strncmp(url, "http://", 7) == 0 || strncmp(url, "https://", 8) == 0;
}

struct part_meta {
	char *url, *etag, *last_modified;
};

static void meta_free(struct part_meta *m)
{
	free(m->url);
	free(m->etag);
	free(m->last_modified);
	memset(m, 0, sizeof *m);
}

static char *json_str(const cJSON *o, const char *name)
{
	const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, name);
	return cJSON_IsString(v) && v->valuestring ? kpar_xstrdup(v->valuestring) : NULL;
}

static void meta_read(const char *path, struct part_meta *m)
{
	char *text = NULL;
	cJSON *o;

	memset(m, 0, sizeof *m);
	if (kpar_fs_read_all(path, &text, NULL) < 0) {
		kpar_error_clear();
		return;
	}
	if ((o = cJSON_Parse(text)) != NULL) {
		m->url = json_str(o, "url");
		m->etag = json_str(o, "etag");
		m->last_modified = json_str(o, "last_modified");
		cJSON_Delete(o);
	}
	free(text);
}

/* The validator If-Range may carry: a strong ETag, else Last-Modified. */
static const char *range_validator(const struct part_meta *m)
{
	if (m->etag && strncmp(m->etag, "W/", 2) != 0)
		return m->etag;
	return m->last_modified;
}

/* Feeds the first len bytes of fd to hash; 0 when they could all be read. */
static int hash_prefix(int fd, uint64_t len, struct kpar_sha256 *hash)
{
	char *chunk = kpar_xmalloc(1 << 20);
	uint64_t done = 0;

	if (lseek(fd, 0, SEEK_SET) < 0) {
		free(chunk);
		return -1;
	}
	while (done < len) {
		size_t want = len - done > (1 << 20) ? (1 << 20) : (size_t)(len - done);
		ssize_t n = read(fd, chunk, want);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			break;
		kpar_sha256_update(hash, chunk, (size_t)n);
		done += (uint64_t)n;
	}
	free(chunk);
	return done == len ? 0 : -1;
}

/* With one candidate the caller's "cannot fetch 'URL'" already names it. */
static void add_failure(struct kpar_buf *errs, size_t n_cands, const char *url,
			const char *what)
{
	char *shown = kpar_cache_redact_url(url);

	if (errs->len)
		kpar_buf_puts(errs, "; ");
	if (n_cands > 1)
		kpar_buf_printf(errs, "'%s': ", shown);
	kpar_buf_puts(errs, what);
	free(shown);
}

/* Moves the verified .part into blobs/ (or drops it when an identical blob
 * is already there: rewriting it would bump the mtime Make looks at). */
static int publish(struct kpar_cache *c, const char *part, int fd, const char *hex,
		   uint64_t size)
{
	char *blob = kpar_cache__blob_path(c, hex);
	int rc = 0;

	if (blob_present(c, hex, size, NULL)) {
		close(fd);
		unlink(part);
		free(blob);
		return 0;
	}
	if (fchmod(fd, 0444) < 0 || fsync(fd) < 0) {
		rc = kpar_error_errno(KPAR_EIO, "cannot write '%s'", part);
		close(fd);
		free(blob);
		return rc;
	}
	close(fd);
	if (rename(part, blob) < 0)
		rc = kpar_error_errno(KPAR_EIO, "cannot rename '%s' to '%s'", part, blob);
	free(blob);
	return rc;
}

/* A kill -9 while the .meta was being written atomically leaves its
 * temporary ("<id>.meta.tmp.<pid>"); we hold the key's lock, so any such
 * file is dead. */
static void remove_stray_temps(struct kpar_cache *c, const char *id)
{
	char *tmp = kpar_fs_join(c->dir, "tmp");
	char *prefix = kpar_xasprintf("%s.meta.tmp.", id);
	DIR *d = opendir(tmp);
	struct dirent *e;

	while (d && (e = readdir(d)) != NULL) {
		if (strncmp(e->d_name, prefix, strlen(prefix)) == 0) {
			char *p = kpar_fs_join(tmp, e->d_name);
			unlink(p);
			free(p);
		}
	}
	if (d)
		closedir(d);
	free(prefix);
	free(tmp);
}

static void backoff(int attempt)
{
	long ms = 200L << (attempt < 4 ? attempt : 4);
	struct timespec ts = { ms / 1000, (ms % 1000) * 1000000L };

	while (nanosleep(&ts, &ts) < 0 && errno == EINTR)
		;
}

/* Tries each candidate URL in order until one delivers (the right) content.
 * cond: the cached snapshot to revalidate against, or NULL.  Called with the
 * artifact's lock held. */
static int download(struct kpar_cache *c, const char *key, const char *want_hex,
		    const struct kpar_strv *cands, const struct kpar_cache__row *cond,
		    struct dl_out *out, int *blob_lock)
{
	char *id = kpar_cache__key_file(key);
	char *part = kpar_xasprintf("%s/tmp/%s.part", c->dir, id);
	char *meta = kpar_xasprintf("%s/tmp/%s.meta", c->dir, id);
	struct kpar_buf errs = KPAR_BUF_INIT;
	int checksum_failed = 0, rc = 0;
	size_t i;

	memset(out, 0, sizeof *out);
	remove_stray_temps(c, id);
	for (i = 0; i < cands->n; i++) {
		const char *url = cands->v[i];
		int attempt = 0, restarted = 0;

		for (;;) {
			struct kpar_cache__http h;
			struct part_meta m;
			struct stat st;
			unsigned char raw[KPAR_SHA256_LEN];
			uint64_t resume_from = 0;
			int fd;

			memset(&h, 0, sizeof h);
			meta_read(meta, &m);
			/* Resume only what we can trust: any prefix of a pinned
			 * artifact (the digest checks the result), a snapshot's
			 * only with a validator for If-Range. */
			if (is_http(url) && stat(part, &st) == 0 && st.st_size > 0 &&
			    (want_hex ? 1 : (m.url && strcmp(m.url, url) == 0 &&
					     range_validator(&m) != NULL))) {
				resume_from = (uint64_t)st.st_size;
				if (m.url && strcmp(m.url, url) == 0)
					h.if_range = range_validator(&m);
			}
			fd = open(part, O_RDWR | O_CREAT | O_CLOEXEC | (resume_from ? 0 : O_TRUNC),
				  0644);
			if (fd < 0) {
				meta_free(&m);
				rc = kpar_error_errno(KPAR_EIO, "cannot create '%s'", part);
				goto done;
			}
			h.url = url;
			h.fd = fd;
			h.meta_path = meta;
			h.hash = kpar_sha256_new();
			if (resume_from && hash_prefix(fd, resume_from, h.hash) < 0) {
				/* Unreadable prefix: start over. */
				resume_from = 0;
				h.if_range = NULL;
				kpar_sha256_final(h.hash, raw);
				h.hash = kpar_sha256_new();
				if (ftruncate(fd, 0) < 0) {
					/* the transfer's own truncate reports it */
				}
			}
			h.resume_from = resume_from;
			if (cond && !resume_from) {
				h.if_none_match = cond->etag;
				h.if_modified_since = cond->last_modified;
			}
			if (resume_from)
				verbose(c, "resuming '%s' at byte %llu", url,
					(unsigned long long)resume_from);
			else if (cond)
				verbose(c, "revalidating '%s'", url);
			else
				verbose(c, "downloading '%s'", url);
			rc = kpar_cache__http_get(c, &h);
			meta_free(&m);
			if (c->db && h.received)
				kpar_cache__db_count(c, "downloaded", (int64_t)h.received);
			if (rc == 0 && h.not_modified) {
				close(fd);
				unlink(part);
				unlink(meta);
				out->not_modified = 1;
				out->source = kpar_xstrdup(url);
				kpar_cache__http_free(&h);
				goto done;
			}
			if (rc == 0) {
				kpar_sha256_final(h.hash, raw);
				h.hash = NULL;
				kpar_hex(raw, sizeof raw, out->hex);
				if (want_hex && strcmp(out->hex, want_hex) != 0) {
					char *what;
					close(fd);
					unlink(part);
					unlink(meta);
					if (resume_from && !restarted) {
						/* The resumed prefix may be what is wrong. */
						restarted = 1;
						kpar_cache__http_free(&h);
						continue;
					}
					what = kpar_xasprintf("checksum mismatch: expected sha256:%s, "
							      "got sha256:%s (%llu bytes)", want_hex,
							      out->hex,
							      (unsigned long long)h.total);
					add_failure(&errs, cands->n, url, what);
					free(what);
					checksum_failed = 1;
					kpar_cache__http_free(&h);
					break;
				}
				/* A snapshot's digest is known only now; its blob may
				 * be shared, so it is published under the blob's lock
				 * (held until the caller has indexed it). */
				if (!want_hex) {
					char hexkey[KPAR_CACHE_KEY_MAX];
					kpar_cache_key(NULL, out->hex, hexkey);
					if ((rc = kpar_cache__lock(c, hexkey, 1, blob_lock)) < 0) {
						close(fd);
						kpar_cache__http_free(&h);
						goto done;
					}
				}
				if ((rc = publish(c, part, fd, out->hex, h.total)) < 0) {
					kpar_cache__http_free(&h);
					goto done;
				}
				unlink(meta);
				out->size = h.total;
				out->etag = h.etag;
				out->last_modified = h.last_modified;
				h.etag = h.last_modified = NULL;
				out->source = kpar_xstrdup(url);
				kpar_cache__http_free(&h);
				goto done;
			}
			kpar_error_clear();
			if (h.hash)
				kpar_sha256_final(h.hash, raw);
			h.hash = NULL;
			close(fd);
			if (h.status == 416 && resume_from && !restarted) {
				/* The server cannot serve the rest of what we have:
				 * start clean. */
				unlink(part);
				unlink(meta);
				restarted = 1;
				kpar_cache__http_free(&h);
				continue;
			}
			if (h.transient && attempt < c->opts.retries) {
				verbose(c, "retrying '%s': %s", url, h.error ? h.error : "");
				backoff(attempt++);
				kpar_cache__http_free(&h);
				continue;
			}
			if (h.status >= 400 && h.status < 500)
				out->gone = 1;
			add_failure(&errs, cands->n, url, h.error ? h.error : "failed");
			kpar_cache__http_free(&h);
			break;
		}
	}
	/* Every candidate failed.  A .part with bytes stays for a resume next
	 * time; an empty one is just litter. */
	{
		struct stat st;
		if (stat(part, &st) == 0 && st.st_size == 0) {
			unlink(part);
			unlink(meta);
		}
	}
	rc = kpar_error_set(checksum_failed ? KPAR_ECHECKSUM : KPAR_ENET, "%s%s%s",
			    cands->n > 1 ? "every URL failed: " : "", errs.data ? errs.data : "",
			    checksum_failed ? "; nothing stored" : "");
done:
	kpar_buf_free(&errs);
	free(id);
	free(part);
	free(meta);
	if (rc < 0)
		dl_out_free(out);
	return rc;
}

/* The URLs to try for a request, in order: for a pinned artifact the mirror
 * bases first (they exist to be closer), then the URL, then the alternates. */
static void candidates(struct kpar_cache *c, const struct kpar_cache_req *req, const char *hex,
		       struct kpar_strv *out)
{
	size_t i;

	if (hex) {
		for (i = 0; i < c->opts.mirrors.n; i++) {
			const char *base = c->opts.mirrors.v[i];
			const char *slot = strstr(base, "{sha256}");
			char *u;
			if (slot) {
				u = kpar_xasprintf("%.*s%s%s", (int)(slot - base), base, hex, slot + 8);
			} else {
				char *name = kpar_cache_url_name(req->url);
				size_t n = strlen(base);
				u = kpar_xasprintf("%s%s%s", base, n && base[n - 1] == '/' ? "" : "/",
						   name);
				free(name);
			}
			kpar_strv_push(out, u);
			free(u);
		}
	}
	kpar_strv_push(out, req->url);
	for (i = 0; i < req->n_alternates; i++)
		kpar_strv_push(out, req->alternates[i]);
}

static int store_row(struct kpar_cache *c, const char *key, int pinned, const char *url,
		     const struct dl_out *d, int64_t now)
{
	struct kpar_cache__row row;
	int rc;

	memset(&row, 0, sizeof row);
	memcpy(row.key, key, strlen(key) + 1);
	row.pinned = pinned;
	row.url = kpar_cache_redact_url(url);
	memcpy(row.hex, d->hex, KPAR_SHA256_HEX);
	row.size = d->size;
	row.fetched = row.checked = row.last_used = now;
	row.etag = d->etag;
	row.last_modified = d->last_modified;
	if ((rc = kpar_cache__db_begin(c)) == 0) {
		if ((rc = kpar_cache__db_put(c, &row)) == 0 &&
		    (rc = kpar_cache__db_count(c, "misses", 1)) == 0)
			rc = kpar_cache__db_commit(c);
		else
			kpar_cache__db_rollback(c);
	}
	free(row.url);
	return rc;
}

static int fetch_pinned(struct kpar_cache *c, const struct kpar_cache_req *req, const char *hex,
			int network, struct kpar_cache_result *res)
{
	char key[KPAR_CACHE_KEY_MAX];
	char *path = NULL;
	struct kpar_strv cands = KPAR_STRV_INIT;
	struct dl_out d;
	int rc, fd = -1;

	kpar_cache_key(req->url, hex, key);
	if ((rc = kpar_cache_path(c->dir, req->url, hex, req->name, &path)) < 0)
		return rc;
	if ((rc = try_pinned(c, req, hex, key, path, 0, res)) != 0 || !network)
		goto done;
	if (c->readonly) {
		rc = kpar_error_set(KPAR_ENOTFOUND, "sha256:%s is not in the read-only cache "
				    "'%s'", hex, c->dir);
		goto done;
	}
	if ((rc = kpar_cache__lock(c, key, 0, &fd)) == KPAR_EBUSY) {
		verbose(c, "waiting for another process fetching '%s'", req->url);
		rc = kpar_cache__lock(c, key, 1, &fd);
	}
	if (rc < 0)
		goto done;
	if ((rc = try_pinned(c, req, hex, key, path, 1, res)) != 0)
		goto done;
	candidates(c, req, hex, &cands);
	if ((rc = download(c, key, hex, &cands, NULL, &d, NULL)) < 0)
		goto done;
	rc = store_row(c, key, 1, req->url, &d, kpar_cache__now());
	if (rc == 0 && req->name && *req->name) {
		char *dir = kpar_cache__links_dir(c->dir, key);
		rc = kpar_cache__link(dir, req->name, hex);
		free(dir);
	}
	if (rc == 0) {
		fill_result(res, path, hex, d.size, 0);
		res->source = kpar_cache_redact_url(d.source);
		if (c->opts.used_list)
			note_used(c, key, 0);
	}
	dl_out_free(&d);
done:
	kpar_cache__unlock(fd);
	kpar_strv_free(&cands);
	free(path);
	return rc;
}

static void relink_all(struct kpar_cache *c, const char *key, const char *hex)
{
	char *dir = kpar_cache__links_dir(c->dir, key);
	DIR *d = opendir(dir);
	struct dirent *e;

	while (d && (e = readdir(d)) != NULL)
		if (e->d_name[0] != '.')
			kpar_cache__link(dir, e->d_name, hex);
	if (d)
		closedir(d);
	free(dir);
}

/* Drops the blob of a snapshot's previous content when nothing else uses it. */
static void drop_if_unused(struct kpar_cache *c, const char *hex)
{
	char key[KPAR_CACHE_KEY_MAX];
	uint64_t refs = 1;
	int fd;

	kpar_cache_key(NULL, hex, key);
	if (kpar_cache__lock(c, key, 0, &fd) < 0) {
		kpar_error_clear();     /* busy: GC will get it */
		return;
	}
	if (kpar_cache__db_refs(c, hex, &refs) == 0 && refs == 0) {
		char *blob = kpar_cache__blob_path(c, hex);
		char *links = kpar_cache__links_dir(c->dir, key);
		unlink(blob);
		kpar_fs_remove_tree(links);
		free(links);
		free(blob);
	}
	kpar_error_clear();
	kpar_cache__unlock(fd);
}

static int fetch_snapshot(struct kpar_cache *c, const struct kpar_cache_req *req, int network,
			  struct kpar_cache_result *res)
{
	char key[KPAR_CACHE_KEY_MAX];
	char *path = NULL, *name = NULL;
	struct kpar_strv cands = KPAR_STRV_INIT;
	struct kpar_cache__row stale;
	struct dl_out d;
	int64_t t0 = kpar_cache__now();
	int rc, fd = -1, hfd = -1, waited = 0;

	memset(&stale, 0, sizeof stale);
	memset(&d, 0, sizeof d);
	kpar_cache_key(req->url, NULL, key);
	name = req->name && *req->name ? kpar_xstrdup(req->name) : kpar_cache_url_name(req->url);
	if ((rc = kpar_cache_path(c->dir, req->url, NULL, name, &path)) < 0)
		goto done;
	if ((rc = try_snapshot(c, key, name, path, network ? 0 : INT64_MAX, res, &stale)) != 0 ||
	    !network)
		goto done;
	if (c->readonly) {
		rc = kpar_error_set(KPAR_ENOTFOUND, "snapshot '%s' is not in the read-only "
				    "cache '%s'", req->url, c->dir);
		goto done;
	}
	kpar_cache__row_free(&stale);
	memset(&stale, 0, sizeof stale);
	if ((rc = kpar_cache__lock(c, key, 0, &fd)) == KPAR_EBUSY) {
		verbose(c, "waiting for another process fetching '%s'", req->url);
		waited = 1;
		rc = kpar_cache__lock(c, key, 1, &fd);
	}
	if (rc < 0)
		goto done;
	/* Revalidated by the process we waited for: as good as ours.  (Times
	 * are in seconds, so without a wait this would skip a check.) */
	if ((rc = try_snapshot(c, key, name, path, waited ? t0 : 0, res, &stale)) != 0)
		goto done;
	candidates(c, req, NULL, &cands);
	rc = download(c, key, NULL, &cands, stale.url ? &stale : NULL, &d, &hfd);
	if (rc < 0 && stale.url && kpar_error_code() == KPAR_ENET && !d.gone) {
		/* The origin is unreachable (not "gone"): the copy we have is
		 * better than failing the build. */
		fprintf(stderr, "kpar: warning: cannot revalidate '%s', using the cached copy: %s\n",
			req->url, kpar_error_last());
		kpar_error_clear();
		note_used(c, key, 1);
		fill_result(res, path, stale.hex, stale.size, 1);
		res->stale = 1;
		rc = 0;
		goto done;
	}
	if (rc < 0)
		goto done;
	if (c->db)
		kpar_cache__db_count(c, "revalidations", stale.url ? 1 : 0);
	if (d.not_modified) {
		int64_t now = kpar_cache__now();
		kpar_cache__db_checked(c, key, now);
		kpar_cache__db_count(c, "not_modified", 1);
		note_used(c, key, 1);
		fill_result(res, path, stale.hex, stale.size, 1);
		goto done;
	}
	/* New (or first) content, published under the blob's lock (hfd). */
	if ((rc = store_row(c, key, 0, req->url, &d, kpar_cache__now())) < 0)
		goto done;
	{
		char *dir = kpar_cache__links_dir(c->dir, key);
		rc = kpar_cache__link(dir, name, d.hex);
		free(dir);
	}
	if (rc == 0 && stale.url && strcmp(stale.hex, d.hex) != 0) {
		char *blob = kpar_cache__blob_path(c, d.hex);
		relink_all(c, key, d.hex);
		/* Make reads the mtime through the link: a snapshot that went
		 * back to content we already had must still look new. */
		utimensat(AT_FDCWD, blob, NULL, 0);
		free(blob);
	}
	kpar_cache__unlock(hfd);
	hfd = -1;
	if (rc == 0 && stale.url && strcmp(stale.hex, d.hex) != 0)
		drop_if_unused(c, stale.hex);
	if (rc == 0) {
		fill_result(res, path, d.hex, d.size, 0);
		res->source = kpar_cache_redact_url(d.source);
		if (c->opts.used_list)
			note_used(c, key, 0);
	}
done:
	kpar_cache__unlock(hfd);
	kpar_cache__unlock(fd);
	dl_out_free(&d);
	kpar_cache__row_free(&stale);
	kpar_strv_free(&cands);
	free(name);
	free(path);
	return rc;
}

static int check_req(const struct kpar_cache_req *req, char hex[KPAR_SHA256_HEX], int *pinned)
{
	const char *p;
	int rc;

	if (!req->url || !*req->url)
		return kpar_error_set(KPAR_EINVAL, "no URL given");
	for (p = req->url; *p; p++)
		if ((unsigned char)*p <= ' ' || *p == 0x7f)
			return kpar_error_set(KPAR_EINVAL, "URL '%s' contains a space or a "
					      "control character", req->url);
	if (req->name && *req->name && (rc = kpar_cache_check_name(req->name)) < 0)
		return rc;
	*pinned = req->sha256 && *req->sha256;
	if (*pinned && (rc = kpar_cache_parse_sha256(req->sha256, hex)) < 0)
		return rc;
	return 0;
}

static int fetch_or_lookup(struct kpar_cache *c, const struct kpar_cache_req *req,
			   struct kpar_cache_result *res, int network)
{
	char hex[KPAR_SHA256_HEX];
	int pinned = 0, rc;

	memset(res, 0, sizeof *res);
	if ((rc = check_req(req, hex, &pinned)) < 0)
		return rc;
	rc = pinned ? fetch_pinned(c, req, hex, network, res)
		    : fetch_snapshot(c, req, network, res);
	if (rc < 0) {
		char *shown = kpar_cache_redact_url(req->url);
		kpar_error_prefix(rc, "cannot fetch '%s'", shown);
		free(shown);
	}
	return rc;
}

int kpar_cache_fetch(struct kpar_cache *c, const struct kpar_cache_req *req,
		     struct kpar_cache_result *res)
{
	int rc = fetch_or_lookup(c, req, res, 1);
	return rc < 0 ? rc : 0;
}

int kpar_cache_lookup(struct kpar_cache *c, const struct kpar_cache_req *req,
		      struct kpar_cache_result *res)
{
	return fetch_or_lookup(c, req, res, 0);
}
