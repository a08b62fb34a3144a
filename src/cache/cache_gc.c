/* cache_gc.c - the artifact cache's upkeep: listing, marking entries used,
 * statistics, garbage collection, verification and the export that becomes
 * the image's cache layer.
 *
 * Removal protocol (GC, verify, a snapshot dropping old content): take the
 * entry's lock without waiting (busy = someone is fetching it: skip), re-read
 * the row, delete the row, and delete the blob only when no row references
 * its digest any more, under the digest's lock.  Fetchers index a blob under
 * that same lock, so a blob is never deleted between "it is there" and "it
 * is indexed".
 */
#include "config.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "base/buf.h"
#include "cache/cache_int.h"
#include "base/digest.h"
#include "base/error.h"
#include "base/fs.h"

/* --- rows in memory --- */

struct rows {
	struct kpar_cache__row *v;
	size_t n, cap;
};

static int collect(const struct kpar_cache__row *row, void *payload)
{
	struct rows *r = payload;
	struct kpar_cache__row *dst;

	if (r->n == r->cap) {
		r->cap = r->cap ? 2 * r->cap : 64;
		r->v = kpar_xrealloc(r->v, r->cap * sizeof *r->v);
	}
	dst = &r->v[r->n++];
	*dst = *row;
	dst->url = kpar_xstrdup(row->url);
	dst->etag = row->etag ? kpar_xstrdup(row->etag) : NULL;
	dst->last_modified = row->last_modified ? kpar_xstrdup(row->last_modified) : NULL;
	return 0;
}

static void rows_free(struct rows *r)
{
	size_t i;

	for (i = 0; i < r->n; i++)
		kpar_cache__row_free(&r->v[i]);
	free(r->v);
	memset(r, 0, sizeof *r);
}

static int in_sorted(const struct kpar_strv *sv, const char *s)
{
	size_t lo = 0, hi = sv ? sv->n : 0;

	while (lo < hi) {
		size_t mid = (lo + hi) / 2;
		int cmp = strcmp(sv->v[mid], s);
		if (cmp == 0)
			return 1;
		if (cmp < 0)
			lo = mid + 1;
		else
			hi = mid;
	}
	return 0;
}

static int is_hex64(const char *s)
{
	size_t i;

	for (i = 0; i < 64; i++)
		if (!((s[i] >= '0' && s[i] <= '9') || (s[i] >= 'a' && s[i] <= 'f')))
			return 0;
	return s[64] == '\0';
}

static int check_writable(struct kpar_cache *c, const char *what)
{
	if (c->readonly || !c->db)
		return kpar_error_set(KPAR_EINVAL, "cannot %s the read-only cache '%s'", what,
				      c->dir);
	return 0;
}

/* --- removal --- */

static void remove_links(struct kpar_cache *c, const char *key)
{
	char *dir = kpar_cache__links_dir(c->dir, key);

	if (kpar_fs_remove_tree(dir) < 0)
		kpar_error_clear();
	free(dir);
}

/* Deletes hex's blob (and its named/ links) if no row references it.  The
 * caller holds the digest's lock.  Returns 1 when deleted. */
static int drop_blob_locked(struct kpar_cache *c, const char *hex)
{
	char key[KPAR_CACHE_KEY_MAX];
	char *blob;
	uint64_t refs = 1;

	if (kpar_cache__db_refs(c, hex, &refs) < 0 || refs > 0)
		return 0;
	kpar_cache_key(NULL, hex, key);
	blob = kpar_cache__blob_path(c, hex);
	if (unlink(blob) < 0 && errno != ENOENT) {
		free(blob);
		return 0;
	}
	free(blob);
	remove_links(c, key);
	return 1;
}

/* Removes one entry per the protocol above.  Returns 1 when the row went
 * (and sets *blob_freed when its blob went too), 0 when skipped (busy, or
 * used meanwhile), negative on error. */
static int remove_entry(struct kpar_cache *c, const struct kpar_cache__row *row, int *blob_freed)
{
	struct kpar_cache__row now;
	char hexkey[KPAR_CACHE_KEY_MAX];
	int fd = -1, hfd = -1, rc, have;

	*blob_freed = 0;
	if (kpar_cache__lock(c, row->key, 0, &fd) < 0) {
		kpar_error_clear();
		return 0;
	}
	memset(&now, 0, sizeof now);
	have = kpar_cache__db_get(c, row->key, &now);
	if (have <= 0 || now.last_used != row->last_used || strcmp(now.hex, row->hex) != 0) {
		kpar_cache__row_free(&now);
		kpar_cache__unlock(fd);
		return have < 0 ? have : 0;
	}
	kpar_cache__row_free(&now);
	if ((rc = kpar_cache__db_delete(c, row->key)) < 0) {
		kpar_cache__unlock(fd);
		return rc;
	}
	remove_links(c, row->key);
	kpar_cache_key(NULL, row->hex, hexkey);
	if (row->pinned) {
		*blob_freed = drop_blob_locked(c, row->hex);
	} else if (kpar_cache__lock(c, hexkey, 0, &hfd) == 0) {
		*blob_freed = drop_blob_locked(c, row->hex);
		if (*blob_freed)
			kpar_cache__lock_remove(c, hexkey, hfd);
		else
			kpar_cache__unlock(hfd);
	} else {
		kpar_error_clear();     /* being fetched: a later GC gets the blob */
	}
	/* The lock file of a removed entry goes too (waiters re-check). */
	kpar_cache__lock_remove(c, row->key, fd);
	return 1;
}

/* Partials untouched this long are abandoned, not resumable state. */
#define PARTIAL_MAX_AGE (24 * 3600)

static void sweep_tmp(struct kpar_cache *c, int64_t now, int dry_run, uint64_t *removed)
{
	char *tmp = kpar_fs_join(c->dir, "tmp");
	DIR *d = opendir(tmp);
	struct dirent *e;

	while (d && (e = readdir(d)) != NULL) {
		size_t len = strlen(e->d_name);
		struct stat st;
		char *p, *key, *meta, *dash;
		int fd;

		if (e->d_name[0] == '.')
			continue;
		p = kpar_fs_join(tmp, e->d_name);
		if (len < 6 || strcmp(e->d_name + len - 5, ".part") != 0) {
			/* .meta files go with their .part; anything else old is a
			 * temporary a killed process left. */
			if (!strstr(e->d_name, ".meta") || strstr(e->d_name, ".meta.tmp.")) {
				if (stat(p, &st) == 0 &&
				    now - (int64_t)st.st_mtime > PARTIAL_MAX_AGE && !dry_run)
					unlink(p);
			}
			free(p);
			continue;
		}
		key = kpar_xstrndup(e->d_name, len - 5);       /* sha256-<hex> | url-<hex> */
		meta = kpar_xasprintf("%s/%s.meta", tmp, key);
		if ((dash = strchr(key, '-')) != NULL)
			*dash = ':';
		if (stat(p, &st) == 0 && now - (int64_t)st.st_mtime > PARTIAL_MAX_AGE &&
		    kpar_cache__lock(c, key, 0, &fd) == 0) {
			if (!dry_run) {
				unlink(p);
				unlink(meta);
			}
			(*removed)++;
			kpar_cache__unlock(fd);
		}
		kpar_error_clear();
		free(meta);
		free(key);
		free(p);
	}
	if (d)
		closedir(d);
	free(tmp);
}

/* Blobs without a row (a kill -9 between rename and index), once older
 * than the grace period; named/ and snapshots/ directories whose entry is
 * gone. */
static void sweep_orphans(struct kpar_cache *c, int64_t now, long grace, int dry_run,
			  uint64_t *removed)
{
	char *blobs = kpar_fs_join(c->dir, "blobs/sha256");
	DIR *d = opendir(blobs);
	struct dirent *e;
	static const char *const linkdirs[] = { "named", "snapshots" };
	size_t i;

	while (d && (e = readdir(d)) != NULL) {
		char key[KPAR_CACHE_KEY_MAX];
		struct stat st;
		uint64_t refs = 1;
		char *p;
		int fd;

		if (e->d_name[0] == '.' || !is_hex64(e->d_name))
			continue;
		p = kpar_fs_join(blobs, e->d_name);
		if (stat(p, &st) == 0 && now - (int64_t)st.st_mtime >= grace &&
		    kpar_cache__db_refs(c, e->d_name, &refs) == 0 && refs == 0) {
			kpar_cache_key(NULL, e->d_name, key);
			if (kpar_cache__lock(c, key, 0, &fd) == 0) {
				if (dry_run)
					(*removed)++;
				else if (drop_blob_locked(c, e->d_name))
					(*removed)++;
				kpar_cache__unlock(fd);
			}
		}
		kpar_error_clear();
		free(p);
	}
	if (d)
		closedir(d);
	free(blobs);
	if (dry_run)
		return;
	for (i = 0; i < 2; i++) {
		char *top = kpar_fs_join(c->dir, linkdirs[i]);
		DIR *ld = opendir(top);
		while (ld && (e = readdir(ld)) != NULL) {
			char key[KPAR_CACHE_KEY_MAX];
			struct kpar_cache__row row;
			char *blob;
			int gone;
			if (!is_hex64(e->d_name))
				continue;
			if (i == 0) {
				blob = kpar_cache__blob_path(c, e->d_name);
				gone = !kpar_fs_exists(blob);
				free(blob);
			} else {
				memset(&row, 0, sizeof row);
				kpar_cache_key("", NULL, key);
				memcpy(key + 4, e->d_name, 65);
				gone = kpar_cache__db_get(c, key, &row) == 0;
				kpar_cache__row_free(&row);
			}
			if (gone) {
				char *p = kpar_fs_join(top, e->d_name);
				kpar_fs_remove_tree(p);
				free(p);
			}
			kpar_error_clear();
		}
		if (ld)
			closedir(ld);
		free(top);
	}
}

struct digest_ref {
	const char *hex;
	uint64_t size;
	unsigned refs;
};

static int cmp_ref(const void *a, const void *b)
{
	return strcmp(((const struct digest_ref *)a)->hex, ((const struct digest_ref *)b)->hex);
}

int kpar_cache_gc(struct kpar_cache *c, const struct kpar_cache_gc_policy *p,
		  struct kpar_cache_gc_result *r)
{
	struct kpar_strv keep = KPAR_STRV_INIT;
	struct rows rows = { NULL, 0, 0 };
	struct digest_ref *refs = NULL;
	size_t i, nrefs = 0;
	uint64_t total = 0;
	int64_t now = p->now ? (int64_t)p->now : kpar_cache__now();
	int gc_fd = -1, rc;

	memset(r, 0, sizeof *r);
	if ((rc = check_writable(c, "clean up")) < 0)
		return rc;
	/* One collector at a time; fetches go on meanwhile. */
	if ((rc = kpar_cache__lock(c, "gc", 1, &gc_fd)) < 0)
		return rc;
	if (p->keep)
		for (i = 0; i < p->keep->n; i++)
			kpar_strv_push(&keep, p->keep->v[i]);
	kpar_strv_sort(&keep);
	if ((rc = kpar_cache__db_each(c, collect, &rows)) < 0)
		goto done;

	/* Bytes are per distinct blob: entries may share one. */
	refs = kpar_xcalloc(rows.n ? rows.n : 1, sizeof *refs);
	for (i = 0; i < rows.n; i++) {
		refs[nrefs].hex = rows.v[i].hex;
		refs[nrefs].size = rows.v[i].size;
		refs[nrefs++].refs = 1;
	}
	qsort(refs, nrefs, sizeof *refs, cmp_ref);
	if (nrefs) {
		size_t w = 0;
		for (i = 1; i < nrefs; i++) {
			if (strcmp(refs[i].hex, refs[w].hex) == 0)
				refs[w].refs++;
			else
				refs[++w] = refs[i];
		}
		nrefs = w + 1;
	}
	for (i = 0; i < nrefs; i++)
		total += refs[i].size;

	for (i = 0; i < rows.n; i++) {
		const struct kpar_cache__row *row = &rows.v[i];
		struct digest_ref probe = { row->hex, 0, 0 }, *ref;
		int in_keep = in_sorted(&keep, row->key);
		int recent = p->grace > 0 && row->last_used >= now - p->grace;
		int old = p->max_age > 0 && row->last_used < now - p->max_age;
		int over = p->max_size > 0 && total > p->max_size;
		int freed = 0, done_one;

		if (in_keep || recent) {
			r->kept_in_use++;
			continue;
		}
		if (!old && !over)
			continue;
		ref = bsearch(&probe, refs, nrefs, sizeof *refs, cmp_ref);
		if (p->dry_run) {
			done_one = 1;
			freed = ref && ref->refs == 1;
		} else if ((done_one = remove_entry(c, row, &freed)) < 0) {
			rc = done_one;
			goto done;
		}
		if (!done_one)
			continue;
		r->removed++;
		if (ref && ref->refs > 0)
			ref->refs--;
		if (freed && ref) {
			r->freed += ref->size;
			total -= ref->size;
		}
	}
	sweep_orphans(c, now, p->grace, p->dry_run, &r->orphans);
	sweep_tmp(c, now, p->dry_run, &r->partials);
	{
		struct kpar_cache_stats s;
		if ((rc = kpar_cache_stats(c, &s)) < 0)
			goto done;
		r->entries_after = s.entries;
		r->bytes_after = p->dry_run ? total : s.bytes;
		if (p->dry_run)
			r->entries_after -= r->removed;
	}
done:
	free(refs);
	rows_free(&rows);
	kpar_strv_free(&keep);
	kpar_cache__unlock(gc_fd);
	return rc;
}

/* --- verify --- */

int kpar_cache_verify(struct kpar_cache *c, struct kpar_cache_verify_result *r)
{
	struct rows rows = { NULL, 0, 0 };
	char *blobs = kpar_fs_join(c->dir, "blobs/sha256");
	DIR *d = NULL;
	struct dirent *e;
	size_t i;
	int rc;

	memset(r, 0, sizeof *r);
	if ((rc = check_writable(c, "repair")) < 0)
		goto done;
	if ((rc = kpar_cache__db_each(c, collect, &rows)) < 0)
		goto done;
	/* Rows whose blob is gone. */
	for (i = 0; i < rows.n; i++) {
		char *b = kpar_cache__blob_path(c, rows.v[i].hex);
		struct stat st;
		if (stat(b, &st) < 0 || (uint64_t)st.st_size != rows.v[i].size) {
			int fd;
			if (kpar_cache__lock(c, rows.v[i].key, 0, &fd) == 0) {
				if (stat(b, &st) < 0 || (uint64_t)st.st_size != rows.v[i].size) {
					kpar_cache__db_delete(c, rows.v[i].key);
					remove_links(c, rows.v[i].key);
					r->missing++;
				}
				kpar_cache__unlock(fd);
			}
			kpar_error_clear();
		}
		free(b);
	}
	/* Every blob's content against its name. */
	d = opendir(blobs);
	while (d && (e = readdir(d)) != NULL) {
		char digest[KPAR_DIGEST_STR], key[KPAR_CACHE_KEY_MAX];
		uint64_t size = 0, refs = 0;
		char *p;
		int fd;

		if (e->d_name[0] == '.')
			continue;
		p = kpar_fs_join(blobs, e->d_name);
		if (!is_hex64(e->d_name)) {
			unlink(p);      /* not ours: a stray or a half-renamed file */
			free(p);
			continue;
		}
		r->checked++;
		kpar_cache_key(NULL, e->d_name, key);
		if (kpar_digest_file(p, digest, &size) < 0) {
			kpar_error_clear();
			free(p);
			continue;
		}
		if (kpar_cache__lock(c, key, 0, &fd) < 0) {
			kpar_error_clear();
			free(p);
			continue;
		}
		if (strcmp(digest + 7, e->d_name) != 0) {
			sqlite3_stmt *st;
			r->bad++;
			/* Every entry pointing at the damaged bytes goes. */
			if (sqlite3_prepare_v2(c->db, "DELETE FROM entries WHERE digest = ?1",
					       -1, &st, NULL) == SQLITE_OK) {
				char *dg = kpar_xasprintf("sha256:%s", e->d_name);
				sqlite3_bind_text(st, 1, dg, -1, SQLITE_TRANSIENT);
				sqlite3_step(st);
				sqlite3_finalize(st);
				free(dg);
			}
			unlink(p);
			remove_links(c, key);
		} else if (kpar_cache__db_refs(c, e->d_name, &refs) == 0 && refs == 0) {
			struct kpar_cache__row row;
			int64_t now = kpar_cache__now();
			memset(&row, 0, sizeof row);
			memcpy(row.key, key, sizeof row.key);
			row.pinned = 1;
			row.url = "";
			memcpy(row.hex, e->d_name, KPAR_SHA256_HEX);
			row.size = size;
			row.fetched = row.checked = row.last_used = now;
			if (kpar_cache__db_put(c, &row) == 0)
				r->orphans_indexed++;
		}
		kpar_error_clear();
		kpar_cache__unlock(fd);
		free(p);
	}
	sweep_orphans(c, kpar_cache__now(), 0, 0, &r->missing);
	rc = 0;
done:
	if (d)
		closedir(d);
	rows_free(&rows);
	free(blobs);
	return rc;
}

/* --- export --- */

static int names_in(const char *dir, struct kpar_strv *out)
{
	DIR *d = opendir(dir);
	struct dirent *e;

	while (d && (e = readdir(d)) != NULL)
		if (e->d_name[0] != '.')
			kpar_strv_push(out, e->d_name);
	if (d)
		closedir(d);
	kpar_strv_sort(out);
	return 0;
}

/* Removes entries of dir not in keep (sorted); sets *changed. */
static void prune_dir(const char *dir, const struct kpar_strv *keep, int *changed)
{
	struct kpar_strv have = KPAR_STRV_INIT;
	size_t i;

	names_in(dir, &have);
	for (i = 0; i < have.n; i++) {
		if (!in_sorted(keep, have.v[i])) {
			char *p = kpar_fs_join(dir, have.v[i]);
			if (kpar_fs_remove_tree(p) == 0)
				*changed = 1;
			kpar_error_clear();
			free(p);
		}
	}
	kpar_strv_free(&have);
}

static int same_file(const char *a, const char *b)
{
	char *da = NULL, *db = NULL;
	size_t la = 0, lb = 0;
	int same;

	if (kpar_fs_read_all(a, &da, &la) < 0 || kpar_fs_read_all(b, &db, &lb) < 0) {
		kpar_error_clear();
		free(da);
		free(db);
		return 0;
	}
	same = la == lb && memcmp(da, db, la) == 0;
	free(da);
	free(db);
	return same;
}

static int export_links(struct kpar_cache *c, const char *out, const struct kpar_cache__row *row,
			struct kpar_strv *names_kept, int *changed)
{
	char *src = kpar_cache__links_dir(c->dir, row->key);
	char *dst = kpar_cache__links_dir(out, row->key);
	struct kpar_strv names = KPAR_STRV_INIT;
	size_t i;
	int rc = 0;

	names_in(src, &names);
	for (i = 0; i < names.n && rc == 0; i++) {
		char *p = kpar_fs_join(dst, names.v[i]);
		char *want = kpar_xasprintf("../../blobs/sha256/%s", row->hex);
		char cur[256];
		ssize_t n = readlink(p, cur, sizeof cur - 1);
		if (n < 0 || (cur[n] = '\0', strcmp(cur, want) != 0)) {
			rc = kpar_cache__link(dst, names.v[i], row->hex);
			*changed = 1;
		}
		free(want);
		free(p);
	}
	if (rc == 0)
		prune_dir(dst, &names, changed);
	kpar_strv_push(names_kept, kpar_cache__key_id(row->key));
	kpar_strv_free(&names);
	free(src);
	free(dst);
	return rc;
}

static int cmp_row_key(const void *a, const void *b)
{
	return strcmp(((const struct kpar_cache__row *)a)->key,
		      ((const struct kpar_cache__row *)b)->key);
}

int kpar_cache_export(struct kpar_cache *c, const char *dir, const struct kpar_strv *keys)
{
	struct rows rows = { NULL, 0, 0 };
	struct kpar_strv blobs_kept = KPAR_STRV_INIT, named_kept = KPAR_STRV_INIT,
			 snaps_kept = KPAR_STRV_INIT, top_kept = KPAR_STRV_INIT;
	static const char marker[] = "kpar artifact cache (exported): lookups only\n";
	char *sub = NULL, *index = NULL, *tmp = NULL;
	sqlite3 *db = NULL;
	int changed = 0, rc = 0;
	size_t i;

	if (keys) {
		for (i = 0; i < keys->n; i++) {
			struct kpar_cache__row row;
			int have;
			memset(&row, 0, sizeof row);
			if ((rc = kpar_cache_check_key(keys->v[i])) < 0)
				goto done;
			if ((have = kpar_cache__db_get(c, keys->v[i], &row)) < 0) {
				rc = have;
				goto done;
			}
			if (!have) {
				rc = kpar_error_set(KPAR_ENOTFOUND, "'%s' is not in the cache '%s' "
						    "(fetch it first)", keys->v[i], c->dir);
				goto done;
			}
			collect(&row, &rows);
			kpar_cache__row_free(&row);
		}
	} else if ((rc = kpar_cache__db_each(c, collect, &rows)) < 0) {
		goto done;
	}
	if (rows.n)
		qsort(rows.v, rows.n, sizeof *rows.v, cmp_row_key);
	{
		size_t w = 0;   /* the same key twice in keys */
		for (i = 0; i < rows.n; i++) {
			if (w && strcmp(rows.v[w - 1].key, rows.v[i].key) == 0)
				kpar_cache__row_free(&rows.v[i]);
			else
				rows.v[w++] = rows.v[i];
		}
		rows.n = w;
	}

	sub = kpar_fs_join(dir, "blobs/sha256");
	if ((rc = kpar_fs_mkdir_p(sub, 0755)) < 0)
		goto done;
	for (i = 0; i < rows.n; i++) {
		const struct kpar_cache__row *row = &rows.v[i];
		char *src = kpar_cache__blob_path(c, row->hex);
		char *dst = kpar_fs_join(sub, row->hex);
		struct stat ss, ds;
		if (stat(src, &ss) < 0 || (uint64_t)ss.st_size != row->size) {
			rc = kpar_error_set(KPAR_ENOTFOUND, "the blob of '%s' (%s) is missing "
					    "from '%s'; run 'kpar cache verify'", row->url,
					    row->key, c->dir);
		} else if (stat(dst, &ds) < 0 || ds.st_size != ss.st_size) {
			rc = kpar_cache__copy_file(src, dst);
			changed = 1;
		}
		kpar_strv_push(&blobs_kept, row->hex);
		free(src);
		free(dst);
		if (rc < 0)
			goto done;
		rc = export_links(c, dir, row, row->pinned ? &named_kept : &snaps_kept, &changed);
		if (rc < 0)
			goto done;
	}
	kpar_strv_sort(&blobs_kept);
	kpar_strv_uniq(&blobs_kept);
	kpar_strv_sort(&named_kept);
	kpar_strv_sort(&snaps_kept);
	prune_dir(sub, &blobs_kept, &changed);
	free(sub);
	sub = kpar_fs_join(dir, "named");
	prune_dir(sub, &named_kept, &changed);
	free(sub);
	sub = kpar_fs_join(dir, "snapshots");
	prune_dir(sub, &snaps_kept, &changed);

	/* The index: stable fields only, so the same entries give the same
	 * bytes (and the layer above it is not rebuilt for a hit count). */
	index = kpar_fs_join(dir, "index.db");
	tmp = kpar_xasprintf("%s/.index.db.%ld.tmp", dir, (long)getpid());
	if ((rc = kpar_cache__db_create_at(tmp, &db)) < 0)
		goto done;
	sqlite3_exec(db, "BEGIN", NULL, NULL, NULL);
	for (i = 0; i < rows.n && rc == 0; i++) {
		struct kpar_cache__row row = rows.v[i];
		row.checked = row.last_used = row.fetched;
		row.hits = 0;
		rc = kpar_cache__db_put_to(db, &row);
	}
	if (rc == 0 && sqlite3_exec(db, "COMMIT", NULL, NULL, NULL) != SQLITE_OK)
		rc = kpar_error_set(KPAR_EDB, "cache index '%s': %s", tmp, sqlite3_errmsg(db));
	sqlite3_close(db);
	db = NULL;
	if (rc < 0)
		goto done;
	if (same_file(tmp, index)) {
		unlink(tmp);
	} else {
		if (rename(tmp, index) < 0) {
			rc = kpar_error_errno(KPAR_EIO, "cannot rename '%s' to '%s'", tmp, index);
			goto done;
		}
		changed = 1;
	}
	free(sub);
	sub = kpar_fs_join(dir, "READONLY");
	if ((rc = kpar_fs_write_if_changed(sub, marker, sizeof marker - 1)) < 0)
		goto done;
	if (rc == 1)
		changed = 1;
	/* Whatever else is there (tmp/, locks/, strays) is not ours to ship. */
	kpar_strv_push(&top_kept, "READONLY");
	kpar_strv_push(&top_kept, "blobs");
	kpar_strv_push(&top_kept, "index.db");
	kpar_strv_push(&top_kept, "named");
	kpar_strv_push(&top_kept, "snapshots");
	prune_dir(dir, &top_kept, &changed);
	rc = changed;
done:
	if (db)
		sqlite3_close(db);
	if (tmp && rc < 0)
		unlink(tmp);
	free(tmp);
	free(index);
	free(sub);
	rows_free(&rows);
	kpar_strv_free(&blobs_kept);
	kpar_strv_free(&named_kept);
	kpar_strv_free(&snaps_kept);
	kpar_strv_free(&top_kept);
	return rc;
}
