/* cache_index.c - the artifact cache's SQLite index (DIR/index.db).
 *
 * The index belongs to the cache directory, not to a project: several
 * projects' builds (and -j jobs) use it at once, so it runs in WAL mode with
 * a generous busy timeout, and every multi-statement change is one
 * BEGIN IMMEDIATE transaction.  A read-only (exported) cache is opened
 * "immutable": SQLite then takes no lock and writes no -wal/-shm file, which
 * is what lets it live in an image layer on a read-only root filesystem.
 *
 * Schema version 1 (PRAGMA user_version):
 *   entries(key PK, pinned, url, digest, size, fetched, checked, last_used,
 *           hits, etag, last_modified)       -- key: sha256:<hex> | url:<hex>
 *   counters(name PK, value)                 -- hits, misses, downloaded, ...
 */
#include "config.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "base/buf.h"
#include "cache/cache_int.h"
#include "base/error.h"
#include "base/fs.h"

#define SCHEMA_VERSION 1
#define BUSY_TIMEOUT_MS 60000

static const char schema_sql[] =
	"CREATE TABLE IF NOT EXISTS entries ("
	" key TEXT PRIMARY KEY,"
	" pinned INTEGER NOT NULL,"
	" url TEXT NOT NULL,"
	" digest TEXT NOT NULL,"
	" size INTEGER NOT NULL,"
	" fetched INTEGER NOT NULL,"
	" checked INTEGER NOT NULL,"
	" last_used INTEGER NOT NULL,"
	" hits INTEGER NOT NULL DEFAULT 0,"
	" etag TEXT,"
	" last_modified TEXT"
	") WITHOUT ROWID;"
	"CREATE INDEX IF NOT EXISTS entries_digest ON entries(digest);"
	"CREATE INDEX IF NOT EXISTS entries_last_used ON entries(last_used);"
	"CREATE TABLE IF NOT EXISTS counters ("
	" name TEXT PRIMARY KEY, value INTEGER NOT NULL) WITHOUT ROWID;";

static int db_fail(sqlite3 *db, const char *what, const char *path)
{
	return kpar_error_set(KPAR_EDB, "cache index '%s': %s: %s", path, what,
			      db ? sqlite3_errmsg(db) : "out of memory");
}

static int exec(struct kpar_cache *c, const char *sql)
{
	char *msg = NULL;
	int rc = sqlite3_exec(c->db, sql, NULL, NULL, &msg);

	if (rc != SQLITE_OK) {
		kpar_error_set(KPAR_EDB, "cache index in '%s': %s: %s", c->dir, sql,
			       msg ? msg : sqlite3_errstr(rc));
		sqlite3_free(msg);
		return KPAR_EDB;
	}
	return 0;
}

static int prepare(struct kpar_cache *c, const char *sql, sqlite3_stmt **st)
{
	if (sqlite3_prepare_v2(c->db, sql, -1, st, NULL) != SQLITE_OK)
		return kpar_error_set(KPAR_EDB, "cache index in '%s': %s", c->dir,
				      sqlite3_errmsg(c->db));
	return 0;
}

static int step_done(struct kpar_cache *c, sqlite3_stmt *st)
{
	int rc = sqlite3_step(st);

	sqlite3_finalize(st);
	if (rc != SQLITE_DONE && rc != SQLITE_ROW)
		return kpar_error_set(KPAR_EDB, "cache index in '%s': %s", c->dir,
				      sqlite3_errmsg(c->db));
	return 0;
}

/* SQLite URIs want the path percent-encoded where it is not plain. */
static char *file_uri(const char *path, const char *query)
{
	static const char hexd[] = "0123456789ABCDEF";
	struct kpar_buf b = KPAR_BUF_INIT;
	const unsigned char *p;

	kpar_buf_puts(&b, "file:");
	for (p = (const unsigned char *)path; *p; p++) {
		if ((*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') ||
		    (*p >= '0' && *p <= '9') || strchr("/._-~", *p)) {
			kpar_buf_putc(&b, (char)*p);
		} else {
			kpar_buf_putc(&b, '%');
			kpar_buf_putc(&b, hexd[*p >> 4]);
			kpar_buf_putc(&b, hexd[*p & 15]);
		}
	}
	kpar_buf_printf(&b, "?%s", query);
	return kpar_buf_detach(&b, NULL);
}

/* Switching to WAL needs a moment with no other connection mid-change; when
 * several processes open a new cache at once one of them may see BUSY even
 * with the busy handler, so retry a little. */
static int set_wal(struct kpar_cache *c)
{
	int i;

	for (i = 0; i < 200; i++) {
		sqlite3_stmt *st;
		int rc;

		if (prepare(c, "PRAGMA journal_mode=WAL", &st) < 0)
			return KPAR_EDB;
		rc = sqlite3_step(st);
		if (rc == SQLITE_ROW) {
			const char *mode = (const char *)sqlite3_column_text(st, 0);
			int wal = mode && strcmp(mode, "wal") == 0;
			sqlite3_finalize(st);
			if (wal)
				return 0;
		} else {
			sqlite3_finalize(st);
			if (rc != SQLITE_BUSY && rc != SQLITE_LOCKED)
				return kpar_error_set(KPAR_EDB, "cache index in '%s': "
						      "cannot switch to WAL: %s", c->dir,
						      sqlite3_errmsg(c->db));
		}
		usleep(10000);
	}
	return kpar_error_set(KPAR_EDB, "cache index in '%s': cannot switch to WAL mode", c->dir);
}

static int check_version(struct kpar_cache *c, const char *path, int create)
{
	sqlite3_stmt *st;
	int version = 0;

	if (prepare(c, "PRAGMA user_version", &st) < 0)
		return KPAR_EDB;
	if (sqlite3_step(st) == SQLITE_ROW)
		version = sqlite3_column_int(st, 0);
	sqlite3_finalize(st);
	if (version > SCHEMA_VERSION)
		return kpar_error_set(KPAR_EDB, "cache index '%s' has schema version %d; this "
				      "kpar understands up to %d", path, version, SCHEMA_VERSION);
	if (version == 0 && create) {
		char *sql = kpar_xasprintf("PRAGMA user_version=%d", SCHEMA_VERSION);
		int rc = exec(c, sql);
		free(sql);
		return rc;
	}
	return 0;
}

int kpar_cache__db_open(struct kpar_cache *c)
{
	char *path = kpar_fs_join(c->dir, "index.db");
	int rc = 0;

	if (c->readonly) {
		char *uri;
		if (!kpar_fs_exists(path)) {
			free(path);
			return 0;
		}
		uri = file_uri(path, "immutable=1");
		if (sqlite3_open_v2(uri, &c->db, SQLITE_OPEN_READONLY | SQLITE_OPEN_URI,
				    NULL) != SQLITE_OK)
			rc = db_fail(c->db, "cannot open", path);
		free(uri);
		if (rc == 0)
			rc = check_version(c, path, 0);
		goto done;
	}
	if (sqlite3_open_v2(path, &c->db, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE,
			    NULL) != SQLITE_OK) {
		rc = db_fail(c->db, "cannot open", path);
		goto done;
	}
	sqlite3_busy_timeout(c->db, BUSY_TIMEOUT_MS);
	if ((rc = set_wal(c)) < 0 || (rc = exec(c, "PRAGMA synchronous=NORMAL")) < 0)
		goto done;
	if ((rc = kpar_cache__db_begin(c)) < 0)
		goto done;
	if ((rc = exec(c, schema_sql)) < 0 || (rc = check_version(c, path, 1)) < 0) {
		kpar_cache__db_rollback(c);
		goto done;
	}
	rc = kpar_cache__db_commit(c);
done:
	if (rc < 0 && c->db) {
		sqlite3_close(c->db);
		c->db = NULL;
	}
	free(path);
	return rc;
}

void kpar_cache__db_close(struct kpar_cache *c)
{
	if (c->db)
		sqlite3_close(c->db);
	c->db = NULL;
}

int kpar_cache__db_begin(struct kpar_cache *c)
{
	return exec(c, "BEGIN IMMEDIATE");
}

int kpar_cache__db_commit(struct kpar_cache *c)
{
	return exec(c, "COMMIT");
}

void kpar_cache__db_rollback(struct kpar_cache *c)
{
	sqlite3_exec(c->db, "ROLLBACK", NULL, NULL, NULL);
}

void kpar_cache__row_free(struct kpar_cache__row *r)
{
	free(r->url);
	free(r->etag);
	free(r->last_modified);
	r->url = r->etag = r->last_modified = NULL;
}

static char *col_dup(sqlite3_stmt *st, int i)
{
	const unsigned char *s = sqlite3_column_text(st, i);
	return s ? kpar_xstrdup((const char *)s) : NULL;
}

#define ROW_COLUMNS "key, pinned, url, digest, size, fetched, checked, last_used, hits, " \
	"etag, last_modified"

static void row_from(sqlite3_stmt *st, struct kpar_cache__row *r)
{
	const char *key = (const char *)sqlite3_column_text(st, 0);
	const char *digest = (const char *)sqlite3_column_text(st, 3);

	memset(r, 0, sizeof *r);
	if (key && strlen(key) < sizeof r->key)
		memcpy(r->key, key, strlen(key) + 1);
	r->pinned = sqlite3_column_int(st, 1);
	r->url = col_dup(st, 2);
	if (!r->url)
		r->url = kpar_xstrdup("");
	if (digest && strncmp(digest, "sha256:", 7) == 0 && strlen(digest) == 71)
		memcpy(r->hex, digest + 7, KPAR_SHA256_HEX);
	r->size = (uint64_t)sqlite3_column_int64(st, 4);
	r->fetched = sqlite3_column_int64(st, 5);
	r->checked = sqlite3_column_int64(st, 6);
	r->last_used = sqlite3_column_int64(st, 7);
	r->hits = (uint64_t)sqlite3_column_int64(st, 8);
	r->etag = col_dup(st, 9);
	r->last_modified = col_dup(st, 10);
}

int kpar_cache__db_get(struct kpar_cache *c, const char *key, struct kpar_cache__row *row)
{
	sqlite3_stmt *st;
	int rc;

	if (!c->db)
		return 0;
	if (prepare(c, "SELECT " ROW_COLUMNS " FROM entries WHERE key = ?1", &st) < 0)
		return KPAR_EDB;
	sqlite3_bind_text(st, 1, key, -1, SQLITE_STATIC);
	rc = sqlite3_step(st);
	if (rc == SQLITE_ROW) {
		row_from(st, row);
		sqlite3_finalize(st);
		return 1;
	}
	sqlite3_finalize(st);
	if (rc != SQLITE_DONE)
		return kpar_error_set(KPAR_EDB, "cache index in '%s': %s", c->dir,
				      sqlite3_errmsg(c->db));
	return 0;
}

static int put(sqlite3 *db, const struct kpar_cache__row *r, const char *where)
{
	sqlite3_stmt *st;
	char digest[KPAR_DIGEST_STR];
	int rc;

	/* Replacing a row keeps its hit count: a snapshot that changed is still
	 * the same artifact to the user. */
	if (sqlite3_prepare_v2(db,
	    "INSERT INTO entries (" ROW_COLUMNS ") "
	    "VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11) "
	    "ON CONFLICT(key) DO UPDATE SET pinned = excluded.pinned, url = excluded.url, "
	    "digest = excluded.digest, size = excluded.size, fetched = excluded.fetched, "
	    "checked = excluded.checked, last_used = excluded.last_used, "
	    "etag = excluded.etag, last_modified = excluded.last_modified",
	    -1, &st, NULL) != SQLITE_OK)
		return kpar_error_set(KPAR_EDB, "cache index in '%s': %s", where,
				      sqlite3_errmsg(db));
	memcpy(digest, "sha256:", 7);
	memcpy(digest + 7, r->hex, KPAR_SHA256_HEX);
	sqlite3_bind_text(st, 1, r->key, -1, SQLITE_STATIC);
	sqlite3_bind_int(st, 2, r->pinned ? 1 : 0);
	sqlite3_bind_text(st, 3, r->url ? r->url : "", -1, SQLITE_STATIC);
	sqlite3_bind_text(st, 4, digest, -1, SQLITE_STATIC);
	sqlite3_bind_int64(st, 5, (sqlite3_int64)r->size);
	sqlite3_bind_int64(st, 6, r->fetched);
	sqlite3_bind_int64(st, 7, r->checked);
	sqlite3_bind_int64(st, 8, r->last_used);
	sqlite3_bind_int64(st, 9, (sqlite3_int64)r->hits);
	if (r->etag)
		sqlite3_bind_text(st, 10, r->etag, -1, SQLITE_STATIC);
	if (r->last_modified)
		sqlite3_bind_text(st, 11, r->last_modified, -1, SQLITE_STATIC);
	rc = sqlite3_step(st);
	sqlite3_finalize(st);
	if (rc != SQLITE_DONE)
		return kpar_error_set(KPAR_EDB, "cache index in '%s': cannot store '%s': %s",
				      where, r->url ? r->url : r->key, sqlite3_errmsg(db));
	return 0;
}

int kpar_cache__db_put(struct kpar_cache *c, const struct kpar_cache__row *row)
{
	return put(c->db, row, c->dir);
}

int kpar_cache__db_put_to(sqlite3 *db, const struct kpar_cache__row *row)
{
	return put(db, row, sqlite3_db_filename(db, "main"));
}

static int keyed(struct kpar_cache *c, const char *sql, const char *key, int64_t a)
{
	sqlite3_stmt *st;

	if (prepare(c, sql, &st) < 0)
		return KPAR_EDB;
	sqlite3_bind_text(st, 1, key, -1, SQLITE_STATIC);
	if (sqlite3_bind_parameter_count(st) >= 2)
		sqlite3_bind_int64(st, 2, a);
	return step_done(c, st);
}

int kpar_cache__db_delete(struct kpar_cache *c, const char *key)
{
	return keyed(c, "DELETE FROM entries WHERE key = ?1", key, 0);
}

int kpar_cache__db_checked(struct kpar_cache *c, const char *key, int64_t now)
{
	return keyed(c, "UPDATE entries SET checked = ?2 WHERE key = ?1", key, now);
}

int kpar_cache__db_count(struct kpar_cache *c, const char *counter, int64_t delta)
{
	return keyed(c, "INSERT INTO counters (name, value) VALUES (?1, ?2) "
		     "ON CONFLICT(name) DO UPDATE SET value = value + excluded.value",
		     counter, delta);
}

int kpar_cache__db_touch(struct kpar_cache *c, const char *key, int64_t now, int hit)
{
	sqlite3_stmt *st;
	int rc;

	if (prepare(c, "UPDATE entries SET last_used = max(last_used, ?2), hits = hits + ?3 "
		    "WHERE key = ?1", &st) < 0)
		return KPAR_EDB;
	sqlite3_bind_text(st, 1, key, -1, SQLITE_STATIC);
	sqlite3_bind_int64(st, 2, now);
	sqlite3_bind_int(st, 3, hit ? 1 : 0);
	if ((rc = step_done(c, st)) < 0)
		return rc;
	if (hit && sqlite3_changes(c->db) > 0)
		return kpar_cache__db_count(c, "hits", 1);
	return 0;
}

int kpar_cache__db_counter(struct kpar_cache *c, const char *counter, uint64_t *out)
{
	sqlite3_stmt *st;

	*out = 0;
	if (!c->db)
		return 0;
	if (prepare(c, "SELECT value FROM counters WHERE name = ?1", &st) < 0)
		return KPAR_EDB;
	sqlite3_bind_text(st, 1, counter, -1, SQLITE_STATIC);
	if (sqlite3_step(st) == SQLITE_ROW)
		*out = (uint64_t)sqlite3_column_int64(st, 0);
	sqlite3_finalize(st);
	return 0;
}

int kpar_cache__db_refs(struct kpar_cache *c, const char *hex, uint64_t *out)
{
	sqlite3_stmt *st;
	char *digest = kpar_xasprintf("sha256:%s", hex);

	*out = 0;
	if (!c->db) {
		free(digest);
		return 0;
	}
	if (prepare(c, "SELECT count(*) FROM entries WHERE digest = ?1", &st) < 0) {
		free(digest);
		return KPAR_EDB;
	}
	sqlite3_bind_text(st, 1, digest, -1, SQLITE_STATIC);
	if (sqlite3_step(st) == SQLITE_ROW)
		*out = (uint64_t)sqlite3_column_int64(st, 0);
	sqlite3_finalize(st);
	free(digest);
	return 0;
}

int kpar_cache__db_each(struct kpar_cache *c,
			int (*fn)(const struct kpar_cache__row *row, void *payload), void *payload)
{
	sqlite3_stmt *st;
	int rc = 0, s;

	if (!c->db)
		return 0;
	/* Ties broken by size (bigger first) then key, so GC order is stable. */
	if (prepare(c, "SELECT " ROW_COLUMNS " FROM entries "
		    "ORDER BY last_used, size DESC, key", &st) < 0)
		return KPAR_EDB;
	while ((s = sqlite3_step(st)) == SQLITE_ROW) {
		struct kpar_cache__row r;
		row_from(st, &r);
		rc = fn(&r, payload);
		kpar_cache__row_free(&r);
		if (rc < 0)
			break;
	}
	if (rc == 0 && s != SQLITE_DONE)
		rc = kpar_error_set(KPAR_EDB, "cache index in '%s': %s", c->dir,
				    sqlite3_errmsg(c->db));
	sqlite3_finalize(st);
	return rc;
}

int kpar_cache__db_create_at(const char *path, sqlite3 **out)
{
	sqlite3 *db = NULL;
	char *msg = NULL;
	char *sql;
	int rc;

	*out = NULL;
	if (unlink(path) < 0 && errno != ENOENT)
		return kpar_error_errno(KPAR_EIO, "cannot remove '%s'", path);
	if (sqlite3_open_v2(path, &db, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE,
			    NULL) != SQLITE_OK) {
		rc = db_fail(db, "cannot create", path);
		sqlite3_close(db);
		return rc;
	}
	/* A rollback journal (not WAL): the file must be complete on its own,
	 * since the workers open it immutable. */
	sql = kpar_xasprintf("PRAGMA journal_mode=DELETE; PRAGMA page_size=4096; %s "
			     "PRAGMA user_version=%d;", schema_sql, SCHEMA_VERSION);
	rc = sqlite3_exec(db, sql, NULL, NULL, &msg);
	free(sql);
	if (rc != SQLITE_OK) {
		rc = kpar_error_set(KPAR_EDB, "cache index '%s': %s", path,
				    msg ? msg : sqlite3_errstr(rc));
		sqlite3_free(msg);
		sqlite3_close(db);
		return rc;
	}
	*out = db;
	return 0;
}
