/* cache_int.h - what the artifact cache's files (cache.c, cache_index.c,
 * cache_http.c, cache_gc.c) share and nothing else sees.
 *
 * Internal functions are named kpar_cache__<verb> (double underscore): shared
 * between the cache's files, not part of cache.h's contract.
 */
#ifndef KPAR_CACHE_INT_H
#define KPAR_CACHE_INT_H

#include <stdint.h>
#include <sqlite3.h>

#include "cache/cache.h"

struct kpar_cache {
	char *dir;
	int readonly;
	struct kpar_cache_opts opts;    /* deep copy of the caller's options */
	sqlite3 *db;                    /* NULL: read-only cache without an index */
};

/* One index row; strings owned (kpar_cache__row_free). */
struct kpar_cache__row {
	char key[KPAR_CACHE_KEY_MAX];
	int pinned;
	char *url;
	char hex[KPAR_SHA256_HEX];      /* the content's digest */
	uint64_t size;
	int64_t fetched, checked, last_used;
	uint64_t hits;
	char *etag, *last_modified;
};

void kpar_cache__row_free(struct kpar_cache__row *r);

/* --- cache_index.c: the SQLite index --- */

/* Opens DIR/index.db: read-write (WAL, schema created) or, for a read-only
 * cache, immutable (a missing index leaves c->db NULL). */
int kpar_cache__db_open(struct kpar_cache *c);
void kpar_cache__db_close(struct kpar_cache *c);
/* 1 and *row filled when key has a row, 0 when not. */
int kpar_cache__db_get(struct kpar_cache *c, const char *key, struct kpar_cache__row *row);
/* Inserts or replaces the row (keeps its hits when replacing). */
int kpar_cache__db_put(struct kpar_cache *c, const struct kpar_cache__row *row);
int kpar_cache__db_delete(struct kpar_cache *c, const char *key);
/* last_used = now, hits += hit, and the global hit counter. */
int kpar_cache__db_touch(struct kpar_cache *c, const char *key, int64_t now, int hit);
int kpar_cache__db_checked(struct kpar_cache *c, const char *key, int64_t now);
int kpar_cache__db_count(struct kpar_cache *c, const char *counter, int64_t delta);
int kpar_cache__db_counter(struct kpar_cache *c, const char *counter, uint64_t *out);
/* Number of rows whose content is hex. */
int kpar_cache__db_refs(struct kpar_cache *c, const char *hex, uint64_t *out);
/* Calls fn(row) for every row, least recently used first. */
int kpar_cache__db_each(struct kpar_cache *c,
			int (*fn)(const struct kpar_cache__row *row, void *payload), void *payload);
int kpar_cache__db_begin(struct kpar_cache *c);
int kpar_cache__db_commit(struct kpar_cache *c);
void kpar_cache__db_rollback(struct kpar_cache *c);
/* Creates a fresh index at path in rollback-journal mode (for export). */
int kpar_cache__db_create_at(const char *path, sqlite3 **out);
int kpar_cache__db_put_to(sqlite3 *db, const struct kpar_cache__row *row);

/* --- cache.c: paths, locks, links --- */

char *kpar_cache__blob_path(const struct kpar_cache *c, const char *hex);
/* The directory of a key's links: named/<hex> or snapshots/<url key>. */
char *kpar_cache__links_dir(const char *dir, const char *key);
/* A key as a file name: "sha256:<hex>" -> "sha256-<hex>" (malloc'd).  Used
 * for locks/<f>.lock and tmp/<f>.part, .meta. */
char *kpar_cache__key_file(const char *key);
/* Takes locks/<key file>.lock (key may also be a plain word such as "gc");
 * *fd_out holds it until kpar_cache__unlock.  With blocking = 0 returns
 * KPAR_EBUSY when another process holds it. */
int kpar_cache__lock(struct kpar_cache *c, const char *key, int blocking, int *fd_out);
void kpar_cache__unlock(int fd);
/* Removes the lock file while holding it, then releases it (safe against
 * waiters: lock takers re-check the inode after flock). */
void kpar_cache__lock_remove(struct kpar_cache *c, const char *key, int fd);
/* The hex part of a key ("sha256:<hex>" -> hex, "url:<hex>" -> hex). */
const char *kpar_cache__key_id(const char *key);
/* Makes dir/<name> a symlink to ../../blobs/sha256/<hex>, atomically. */
int kpar_cache__link(const char *links_dir, const char *name, const char *hex);
/* Copies src to dst (hard link when possible) via a temporary and rename. */
int kpar_cache__copy_file(const char *src, const char *dst);
int64_t kpar_cache__now(void);

/* --- cache_http.c: one transfer with libcurl --- */

struct kpar_cache__http {
	/* in */
	const char *url;
	int fd;                         /* the .part file, positioned anywhere */
	const char *meta_path;          /* where to note the URL and validators
	                                   once the response starts (for resume) */
	uint64_t resume_from;           /* bytes already in the file and hashed */
	const char *if_range;           /* validator for a resume, or NULL */
	const char *if_none_match;      /* conditional GET (snapshots) */
	const char *if_modified_since;
	struct kpar_sha256 *hash;       /* fed with the bytes the file holds */
	/* out */
	long status;                    /* final HTTP status; 0 for file:// */
	int not_modified;               /* 304 */
	int restarted;                  /* the server ignored the range: file rewritten */
	int transient;                  /* failure worth retrying (resuming) */
	uint64_t received;              /* body bytes this transfer */
	uint64_t total;                 /* bytes in the file afterwards */
	char *etag, *last_modified;     /* owned */
	char *effective_url;            /* owned */
	char *error;                    /* owned: what went wrong, URL not included */
};

int kpar_cache__http_get(struct kpar_cache *c, struct kpar_cache__http *h);
void kpar_cache__http_free(struct kpar_cache__http *h);

#endif
