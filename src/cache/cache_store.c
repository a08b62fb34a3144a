/* cache_store.c - the artifact cache's directory: opening it, paths of
 * blobs and links, per-artifact locks, used-lists, marking entries used,
 * listing and statistics.  No network here (libkpar_core: the Make plugin
 * opens the cache to record hits).
 *
 * Locks are flock(2) on locks/<key>.lock: released by the kernel when the
 * holder dies (kill -9 included), and taken on a file that may be removed
 * by GC only by its holder -- takers re-check the inode after flock, so a
 * waiter never ends up holding a lock on a deleted file while another
 * process holds the new one.
 */
#include "config.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "base/buf.h"
#include "cache/cache_int.h"
#include "base/digest.h"
#include "base/error.h"
#include "base/fs.h"

/* --- small file helpers --- */

int64_t kpar_cache__now(void)
{
	return (int64_t)time(NULL);
}

char *kpar_cache__blob_path(const struct kpar_cache *c, const char *hex)
{
	return kpar_xasprintf("%s/blobs/sha256/%s", c->dir, hex);
}

char *kpar_cache__links_dir(const char *dir, const char *key)
{
	if (strncmp(key, "url:", 4) == 0)
		return kpar_xasprintf("%s/snapshots/%s", dir, key + 4);
	return kpar_xasprintf("%s/named/%s", dir, kpar_cache__key_id(key));
}

int kpar_cache__link(const char *links_dir, const char *name, const char *hex)
{
	char *path = kpar_fs_join(links_dir, name);
	char *target = kpar_xasprintf("../../blobs/sha256/%s", hex);
	char *tmp = NULL;
	char cur[256];
	ssize_t n;
	int rc = 0;

	n = readlink(path, cur, sizeof cur - 1);
	if (n > 0) {
		cur[n] = '\0';
		if (strcmp(cur, target) == 0)
			goto done;
	}
	if ((rc = kpar_fs_mkdir_p(links_dir, 0755)) < 0)
		goto done;
	tmp = kpar_xasprintf("%s/.%s.%ld.tmp", links_dir, name, (long)getpid());
	unlink(tmp);
	if (symlink(target, tmp) < 0) {
		rc = kpar_error_errno(KPAR_EIO, "cannot create link '%s'", tmp);
		goto done;
	}
	if (rename(tmp, path) < 0) {
		rc = kpar_error_errno(KPAR_EIO, "cannot rename '%s' to '%s'", tmp, path);
		unlink(tmp);
	}
done:
	free(tmp);
	free(target);
	free(path);
	return rc;
}

int kpar_cache__copy_file(const char *src, const char *dst)
{
	char *tmp = kpar_xasprintf("%s.%ld.tmp", dst, (long)getpid());
	char *chunk = NULL;
	int in = -1, out = -1, rc = 0;
	ssize_t n;

	unlink(tmp);
	/* A hard link costs nothing and the blob never changes in place. */
	if (link(src, tmp) == 0)
		goto publish;
	if ((in = open(src, O_RDONLY | O_CLOEXEC)) < 0) {
		rc = kpar_error_errno(KPAR_EIO, "cannot open '%s'", src);
		goto done;
	}
	if ((out = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644)) < 0) {
		rc = kpar_error_errno(KPAR_EIO, "cannot create '%s'", tmp);
		goto done;
	}
	chunk = kpar_xmalloc(1 << 20);
	while ((n = read(in, chunk, 1 << 20)) != 0) {
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0 || kpar_fs_write_fully(out, chunk, (size_t)n) < 0) {
			rc = kpar_error_errno(KPAR_EIO, "cannot copy '%s' to '%s'", src, tmp);
			goto done;
		}
	}
	if (fchmod(out, 0444) < 0 || fsync(out) < 0) {
		rc = kpar_error_errno(KPAR_EIO, "cannot write '%s'", tmp);
		goto done;
	}
publish:
	if (rename(tmp, dst) < 0)
		rc = kpar_error_errno(KPAR_EIO, "cannot rename '%s' to '%s'", tmp, dst);
done:
	if (in >= 0)
		close(in);
	if (out >= 0)
		close(out);
	if (rc < 0)
		unlink(tmp);
	free(chunk);
	free(tmp);
	return rc;
}

/* --- locks --- */

char *kpar_cache__key_file(const char *key)
{
	char *s = kpar_xstrdup(key), *colon = strchr(s, ':');

	if (colon)
		*colon = '-';
	return s;
}

static char *lock_path(const struct kpar_cache *c, const char *key)
{
	char *f = kpar_cache__key_file(key);
	char *p = kpar_xasprintf("%s/locks/%s.lock", c->dir, f);

	free(f);
	return p;
}

int kpar_cache__lock(struct kpar_cache *c, const char *key, int blocking, int *fd_out)
{
	char *path = lock_path(c, key);
	int rc = 0;

	*fd_out = -1;
	for (;;) {
		struct stat a, b;
		int fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0644);

		if (fd < 0) {
			rc = kpar_error_errno(KPAR_EIO, "cannot open lock '%s'", path);
			break;
		}
		while (flock(fd, blocking ? LOCK_EX : LOCK_EX | LOCK_NB) < 0) {
			if (errno == EINTR)
				continue;
			rc = errno == EWOULDBLOCK
				? kpar_error_set(KPAR_EBUSY, "'%s' is held by another process", path)
				: kpar_error_errno(KPAR_EIO, "cannot lock '%s'", path);
			close(fd);
			goto done;
		}
		/* GC removes lock files it holds; a waiter that got the lock on
		 * a removed file must take the new one instead. */
		if (fstat(fd, &a) == 0 && stat(path, &b) == 0 &&
		    a.st_dev == b.st_dev && a.st_ino == b.st_ino) {
			*fd_out = fd;
			break;
		}
		close(fd);
	}
done:
	free(path);
	return rc;
}

void kpar_cache__unlock(int fd)
{
	if (fd >= 0)
		close(fd);      /* closing releases the flock */
}

void kpar_cache__lock_remove(struct kpar_cache *c, const char *key, int fd)
{
	char *path = lock_path(c, key);

	unlink(path);
	free(path);
	kpar_cache__unlock(fd);
}

/* --- open / close --- */

int kpar_cache_open(struct kpar_cache **out, const struct kpar_cache_opts *opts)
{
	struct kpar_cache *c = kpar_xcalloc(1, sizeof *c);
	struct kpar_cache_opts defaults;
	char *marker;
	size_t i;
	int rc = 0;

	*out = NULL;
	if (!opts) {
		kpar_cache_opts_init(&defaults);
		opts = &defaults;
	}
	c->opts = *opts;
	c->opts.dir = opts->dir ? kpar_xstrdup(opts->dir) : NULL;
	c->opts.used_list = opts->used_list ? kpar_xstrdup(opts->used_list) : NULL;
	c->opts.ca_bundle = opts->ca_bundle ? kpar_xstrdup(opts->ca_bundle) : NULL;
	memset(&c->opts.mirrors, 0, sizeof c->opts.mirrors);
	for (i = 0; i < opts->mirrors.n; i++)
		kpar_strv_push(&c->opts.mirrors, opts->mirrors.v[i]);
	if (opts->dir && *opts->dir) {
		c->dir = kpar_xstrdup(opts->dir);
	} else if ((rc = kpar_cache_default_dir(&c->dir)) < 0) {
		goto fail;
	}
	/* Trailing slashes would double up in every path we print. */
	for (i = strlen(c->dir); i > 1 && c->dir[i - 1] == '/'; i--)
		c->dir[i - 1] = '\0';

	marker = kpar_fs_join(c->dir, "READONLY");
	c->readonly = opts->readonly || kpar_fs_exists(marker) ||
		      (kpar_fs_exists(c->dir) && access(c->dir, W_OK) != 0);
	free(marker);
	if (!c->readonly) {
		static const char *const subdirs[] = { "blobs/sha256", "tmp", "locks" };
		for (i = 0; i < sizeof subdirs / sizeof subdirs[0]; i++) {
			char *p = kpar_fs_join(c->dir, subdirs[i]);
			rc = kpar_fs_mkdir_p(p, 0755);
			free(p);
			if (rc < 0) {
				kpar_error_prefix(rc, "cache directory");
				goto fail;
			}
		}
	}
	if ((rc = kpar_cache__db_open(c)) < 0)
		goto fail;
	*out = c;
	return 0;
fail:
	kpar_cache_close(c);
	return rc;
}

void kpar_cache_close(struct kpar_cache *c)
{
	if (!c)
		return;
	kpar_cache__db_close(c);
	kpar_cache_opts_free(&c->opts);
	free(c->dir);
	free(c);
}

const char *kpar_cache_dir(const struct kpar_cache *c)
{
	return c->dir;
}

int kpar_cache_is_readonly(const struct kpar_cache *c)
{
	return c->readonly;
}

void kpar_cache_result_free(struct kpar_cache_result *r)
{
	free(r->path);
	free(r->source);
	memset(r, 0, sizeof *r);
}

/* --- used-lists --- */

static int read_keys(const char *text, const char *path, struct kpar_strv *out)
{
	const char *p = text;

	while (*p) {
		size_t n;
		while (*p == ' ' || *p == '\t' || *p == '\n' || *p == '\r')
			p++;
		n = strcspn(p, " \t\n\r");
		if (n) {
			char *key = kpar_xstrndup(p, n);
			int rc = kpar_cache_check_key(key);
			if (rc == 0)
				kpar_strv_push(out, key);
			free(key);
			if (rc < 0)
				return kpar_error_prefix(rc, "used-list '%s'", path);
		}
		p += n;
	}
	return 0;
}

int kpar_cache_used_list_read(const char *path, struct kpar_strv *out)
{
	char *text = NULL;
	int rc = kpar_fs_read_all(path, &text, NULL);

	if (rc < 0)
		return rc;
	rc = read_keys(text, path, out);
	free(text);
	kpar_strv_sort(out);
	kpar_strv_uniq(out);
	return rc;
}

int kpar_cache_used_list_write(const char *path, const struct kpar_strv *keys)
{
	struct kpar_strv sorted = KPAR_STRV_INIT;
	struct kpar_buf b = KPAR_BUF_INIT;
	size_t i;
	int rc;

	for (i = 0; i < keys->n; i++) {
		if ((rc = kpar_cache_check_key(keys->v[i])) < 0) {
			kpar_strv_free(&sorted);
			return rc;
		}
		kpar_strv_push(&sorted, keys->v[i]);
	}
	kpar_strv_sort(&sorted);
	kpar_strv_uniq(&sorted);
	for (i = 0; i < sorted.n; i++)
		kpar_buf_printf(&b, "%s\n", sorted.v[i]);
	rc = kpar_fs_write_if_changed(path, b.data ? b.data : "", b.len);
	kpar_buf_free(&b);
	kpar_strv_free(&sorted);
	return rc < 0 ? rc : 0;
}

int kpar_cache_used_list_merge(const char *path, const struct kpar_strv *keys, int replace)
{
	struct kpar_strv all = KPAR_STRV_INIT;
	char *lock = kpar_xasprintf("%s.lock", path);
	int fd = open(lock, O_RDWR | O_CREAT | O_CLOEXEC, 0644);
	size_t i;
	int rc = 0;

	if (fd < 0) {
		rc = kpar_error_errno(KPAR_EIO, "cannot open '%s'", lock);
		free(lock);
		return rc;
	}
	/* Several fetches of one build may add at once. */
	while (flock(fd, LOCK_EX) < 0 && errno == EINTR)
		;
	if (!replace) {
		rc = kpar_cache_used_list_read(path, &all);
		if (rc == KPAR_ENOTFOUND) {
			kpar_error_clear();
			rc = 0;
		}
	}
	for (i = 0; rc == 0 && i < keys->n; i++)
		kpar_strv_push(&all, keys->v[i]);
	if (rc == 0)
		rc = kpar_cache_used_list_write(path, &all);
	close(fd);
	free(lock);
	kpar_strv_free(&all);
	return rc;
}

int kpar_cache_used_list_add(const char *path, const char *key)
{
	struct kpar_strv one = KPAR_STRV_INIT;
	int rc;

	kpar_strv_push(&one, key);
	rc = kpar_cache_used_list_merge(path, &one, 0);
	kpar_strv_free(&one);
	return rc;
}

/* --- list, use --- */

struct list_ctx {
	int (*fn)(const struct kpar_cache_entry *e, void *payload);
	void *payload;
};

static int list_one(const struct kpar_cache__row *row, void *payload)
{
	struct list_ctx *l = payload;
	struct kpar_cache_entry e;

	memset(&e, 0, sizeof e);
	e.pinned = row->pinned;
	memcpy(e.key, row->key, sizeof e.key);
	e.url = row->url;
	memcpy(e.digest, "sha256:", 7);
	memcpy(e.digest + 7, row->hex, KPAR_SHA256_HEX);
	e.size = row->size;
	e.fetched = row->fetched;
	e.checked = row->checked;
	e.last_used = row->last_used;
	e.hits = row->hits;
	e.etag = row->etag;
	e.last_modified = row->last_modified;
	return l->fn(&e, l->payload);
}

int kpar_cache_list(struct kpar_cache *c,
		    int (*fn)(const struct kpar_cache_entry *e, void *payload), void *payload)
{
	struct list_ctx l = { fn, payload };
	return kpar_cache__db_each(c, list_one, &l);
}

int kpar_cache_use(struct kpar_cache *c, const struct kpar_strv *keys, int count_hit)
{
	int64_t now = kpar_cache__now();
	size_t i;
	int rc;

	for (i = 0; i < keys->n; i++)
		if ((rc = kpar_cache_check_key(keys->v[i])) < 0)
			return rc;
	if (c->readonly || !c->db || keys->n == 0)
		return 0;
	if ((rc = kpar_cache__db_begin(c)) < 0)
		return rc;
	for (i = 0; i < keys->n; i++)
		if ((rc = kpar_cache__db_touch(c, keys->v[i], now, count_hit)) < 0) {
			kpar_cache__db_rollback(c);
			return rc;
		}
	return kpar_cache__db_commit(c);
}

/* --- stats --- */

static void count_partials(struct kpar_cache *c, uint64_t *n, uint64_t *bytes)
{
	char *tmp = kpar_fs_join(c->dir, "tmp");
	DIR *d = opendir(tmp);
	struct dirent *e;

	*n = *bytes = 0;
	while (d && (e = readdir(d)) != NULL) {
		size_t len = strlen(e->d_name);
		struct stat st;
		char *p;
		if (len < 6 || strcmp(e->d_name + len - 5, ".part") != 0)
			continue;
		p = kpar_fs_join(tmp, e->d_name);
		if (stat(p, &st) == 0) {
			(*n)++;
			*bytes += (uint64_t)st.st_size;
		}
		free(p);
	}
	if (d)
		closedir(d);
	free(tmp);
}

int kpar_cache_stats(struct kpar_cache *c, struct kpar_cache_stats *out)
{
	sqlite3_stmt *st;
	int rc;

	memset(out, 0, sizeof *out);
	count_partials(c, &out->partials, &out->partial_bytes);
	if (!c->db)
		return 0;
	if (sqlite3_prepare_v2(c->db,
	    "SELECT count(*), coalesce(sum(pinned), 0), "
	    " (SELECT count(*) FROM (SELECT DISTINCT digest FROM entries)), "
	    " (SELECT coalesce(sum(size), 0) FROM "
	    "   (SELECT max(size) AS size FROM entries GROUP BY digest)) "
	    "FROM entries", -1, &st, NULL) != SQLITE_OK)
		return kpar_error_set(KPAR_EDB, "cache index in '%s': %s", c->dir,
				      sqlite3_errmsg(c->db));
	if (sqlite3_step(st) == SQLITE_ROW) {
		out->entries = (uint64_t)sqlite3_column_int64(st, 0);
		out->pinned = (uint64_t)sqlite3_column_int64(st, 1);
		out->snapshots = out->entries - out->pinned;
		out->blobs = (uint64_t)sqlite3_column_int64(st, 2);
		out->bytes = (uint64_t)sqlite3_column_int64(st, 3);
	}
	sqlite3_finalize(st);
	if ((rc = kpar_cache__db_counter(c, "hits", &out->hits)) < 0 ||
	    (rc = kpar_cache__db_counter(c, "misses", &out->misses)) < 0 ||
	    (rc = kpar_cache__db_counter(c, "downloaded", &out->downloaded)) < 0 ||
	    (rc = kpar_cache__db_counter(c, "revalidations", &out->revalidations)) < 0 ||
	    (rc = kpar_cache__db_counter(c, "not_modified", &out->not_modified)) < 0)
		return rc;
	return 0;
}
