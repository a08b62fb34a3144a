/* state.c - the SQLite state database: schema, runs, buckets, results. */
#include "config.h"

#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "base/buf.h"
#include "base/error.h"
#include "base/fs.h"
#include "run/split.h"
#include "run/state.h"

#define SCHEMA_VERSION "1"

/* Statements kept prepared for the life of the handle: a collect per
 * test must not parse its SQL each time. */
enum { ST_CHECK, ST_INSERT, ST_COLLECTED, ST_MARK, ST_N };

struct kpar_state {
	sqlite3 *db;
	char *path;
	sqlite3_stmt *stmt[ST_N];
	int batch;                           /* inside kpar_state_batch_begin */
	struct kpar_history_sample *pending;  /* durations of the batch (ids owned) */
	size_t npending, cappending;
};

static const char schema[] =
	"CREATE TABLE IF NOT EXISTS meta(key TEXT PRIMARY KEY, value TEXT);"
	"CREATE TABLE IF NOT EXISTS runs("
	"  id INTEGER PRIMARY KEY, plan TEXT NOT NULL, tests_digest TEXT, inputs_digest TEXT,"
	"  nbuckets INTEGER NOT NULL, backend TEXT, status TEXT NOT NULL, verdict TEXT,"
	"  started REAL, finished REAL);"
	"CREATE TABLE IF NOT EXISTS buckets("
	"  run INTEGER NOT NULL REFERENCES runs(id) ON DELETE CASCADE, idx INTEGER NOT NULL,"
	"  status TEXT NOT NULL, attempts INTEGER NOT NULL DEFAULT 0, worker TEXT,"
	"  estimate REAL, started REAL, finished REAL, PRIMARY KEY(run, idx));"
	"CREATE TABLE IF NOT EXISTS results("
	"  run INTEGER NOT NULL REFERENCES runs(id) ON DELETE CASCADE, test TEXT NOT NULL,"
	"  bucket INTEGER NOT NULL, attempt INTEGER, worker TEXT, status TEXT NOT NULL,"
	"  seconds REAL, attempts INTEGER, exit_code INTEGER, output BLOB,"
	"  note TEXT, subtests TEXT, full_log TEXT,"
	"  PRIMARY KEY(run, test));"
	"CREATE INDEX IF NOT EXISTS results_bucket ON results(run, bucket);"
	/* what a backend must find again to reattach to a run (a Job's name,
	 * the image it runs): key/value per run, kept with the run */
	"CREATE TABLE IF NOT EXISTS run_meta("
	"  run INTEGER NOT NULL REFERENCES runs(id) ON DELETE CASCADE, key TEXT NOT NULL,"
	"  value TEXT, PRIMARY KEY(run, key));"
	/* each test's own inputs digest (KPAR_TEST_INPUTS_OF) as the run ran it */
	"CREATE TABLE IF NOT EXISTS test_inputs("
	"  run INTEGER NOT NULL REFERENCES runs(id) ON DELETE CASCADE, test TEXT NOT NULL,"
	"  digest TEXT NOT NULL, PRIMARY KEY(run, test));"
	"CREATE TABLE IF NOT EXISTS file_digests("
	"  path TEXT PRIMARY KEY, size INTEGER, mtime_ns INTEGER, ino INTEGER, digest TEXT);";

static int db_error(struct kpar_state *st, const char *what)
{
	return kpar_error_set(KPAR_EDB, "state database '%s': %s: %s", st->path, what,
			      sqlite3_errmsg(st->db));
}

static int exec(struct kpar_state *st, const char *sql);

/* Whether results has the column: a database made before it was added
 * gains it on the next writable open, and is read without it until then. */
static int has_column(struct kpar_state *st, const char *name)
{
	sqlite3_stmt *s = NULL;
	int found = 0;

	if (sqlite3_prepare_v2(st->db, "SELECT 1 FROM pragma_table_info('results') WHERE name = ?1",
			       -1, &s, NULL) != SQLITE_OK)
		return 0;
	sqlite3_bind_text(s, 1, name, -1, SQLITE_STATIC);
	found = sqlite3_step(s) == SQLITE_ROW;
	sqlite3_finalize(s);
	return found;
}

static int prepare(struct kpar_state *st, const char *sql, sqlite3_stmt **out);

/* Prepares head, then the note, subtests and full_log columns (prefix
 * their table's alias), then tail: NULL for a column that a database made
 * before it lacks, as a read-only one cannot gain it. */
static int prepare_results(struct kpar_state *st, const char *head, const char *prefix, const char *tail,
			   sqlite3_stmt **out)
{
	static const char *const cols[] = { "note", "subtests", "full_log" };
	struct kpar_buf sql = KPAR_BUF_INIT;
	size_t i;
	int rc;

	kpar_buf_puts(&sql, head);
	for (i = 0; i < 3; i++) {
		if (i)
			kpar_buf_puts(&sql, ", ");
		if (has_column(st, cols[i]))
			kpar_buf_printf(&sql, "%s%s", prefix, cols[i]);
		else
			kpar_buf_puts(&sql, "NULL");
	}
	kpar_buf_puts(&sql, tail);
	rc = prepare(st, sql.data, out);
	kpar_buf_free(&sql);
	return rc;
}

static int add_columns(struct kpar_state *st)
{
	int rc = 0;

	if (!has_column(st, "note"))
		rc = exec(st, "ALTER TABLE results ADD COLUMN note TEXT");
	if (rc == 0 && !has_column(st, "subtests"))
		rc = exec(st, "ALTER TABLE results ADD COLUMN subtests TEXT");
	if (rc == 0 && !has_column(st, "full_log"))
		rc = exec(st, "ALTER TABLE results ADD COLUMN full_log TEXT");
	return rc;
}

static int exec(struct kpar_state *st, const char *sql)
{
	char *msg = NULL;

	if (sqlite3_exec(st->db, sql, NULL, NULL, &msg) != SQLITE_OK) {
		kpar_error_set(KPAR_EDB, "state database '%s': %s", st->path, msg ? msg : "error");
		sqlite3_free(msg);
		return KPAR_EDB;
	}
	return 0;
}

static int prepare(struct kpar_state *st, const char *sql, sqlite3_stmt **out)
{
	if (sqlite3_prepare_v2(st->db, sql, -1, out, NULL) != SQLITE_OK)
		return db_error(st, "prepare");
	return 0;
}

static void drop_pending(struct kpar_state *st)
{
	size_t i;

	for (i = 0; i < st->npending; i++)
		free((char *)st->pending[i].test);
	st->npending = 0;
}

/* The handle's statement k for sql, prepared once, reset and unbound. */
static int cached(struct kpar_state *st, int k, const char *sql, sqlite3_stmt **out)
{
	if (!st->stmt[k] && sqlite3_prepare_v3(st->db, sql, -1, SQLITE_PREPARE_PERSISTENT,
					       &st->stmt[k], NULL) != SQLITE_OK)
		return db_error(st, "prepare");
	sqlite3_reset(st->stmt[k]);
	sqlite3_clear_bindings(st->stmt[k]);
	*out = st->stmt[k];
	return 0;
}

int kpar_state_batch_begin(struct kpar_state *st)
{
	int rc;

	if (st->batch)
		return 0;
	if ((rc = exec(st, "BEGIN IMMEDIATE")) < 0)
		return rc;
	st->batch = 1;
	return 0;
}

int kpar_state_batch_end(struct kpar_state *st)
{
	int rc = 0;

	if (!st->batch)
		return 0;
	st->batch = 0;
	if (st->npending > 0)
		rc = kpar_history_add_many(st->db, st->pending, st->npending);
	drop_pending(st);
	if (rc == 0)
		rc = exec(st, "COMMIT");
	if (rc < 0) {
		char *msg = kpar_xstrdup(kpar_error_last());
		sqlite3_exec(st->db, "ROLLBACK", NULL, NULL, NULL);
		rc = kpar_error_set(KPAR_EDB, "%s", msg);
		free(msg);
	}
	return rc;
}

/* "file:" URI of path with immutable=1: URI syntax, so '%', '?' and '#'
 * (and anything else outside the unreserved set) are escaped. */
static char *immutable_uri(const char *path)
{
	struct kpar_buf b = KPAR_BUF_INIT;
	const unsigned char *p;

	kpar_buf_puts(&b, "file:");
	for (p = (const unsigned char *)path; *p; p++) {
		if ((*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') || (*p >= '0' && *p <= '9') ||
		    strchr("/-._~", *p))
			kpar_buf_putc(&b, (char)*p);
		else
			kpar_buf_printf(&b, "%%%02X", *p);
	}
	kpar_buf_puts(&b, "?immutable=1");
	return kpar_buf_detach(&b, NULL);
}

int kpar_state_open(struct kpar_state **out, const char *state_dir, int flags)
{
	struct kpar_state *st = kpar_xcalloc(1, sizeof *st);
	char *uri = NULL;
	int rc, oflags;

	*out = NULL;
	st->path = kpar_fs_join(state_dir, "state.db");
	if (flags & KPAR_STATE_RDONLY) {
		struct stat sb;
		char *wal, *shm;
		if (stat(st->path, &sb) < 0) {
			rc = kpar_error_set(KPAR_ENOTFOUND, "no state database at '%s'", st->path);
			goto fail;
		}
		oflags = SQLITE_OPEN_READONLY;
		/* A WAL database is read through its -shm index, which a reader
		 * creates beside it: in a directory it cannot write (a read-only
		 * checkout, another user's tree), with no -wal or -shm left, that
		 * fails at the first query.  With no -wal the file holds every
		 * committed transaction (the last writer's close folded the WAL in)
		 * and no writer has it open, as a writer keeps a -wal: read it as
		 * immutable.  A -wal that cannot be indexed fails loudly below. */
		wal = kpar_xasprintf("%s-wal", st->path);
		shm = kpar_xasprintf("%s-shm", st->path);
		if (access(state_dir, W_OK) != 0 && !kpar_fs_exists(wal) && !kpar_fs_exists(shm)) {
			uri = immutable_uri(st->path);
			oflags |= SQLITE_OPEN_URI;
		}
		free(wal);
		free(shm);
	} else {
		if ((rc = kpar_fs_mkdir_p(state_dir, 0755)) < 0)
			goto fail;
		oflags = SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE;
	}
	if (sqlite3_open_v2(uri ? uri : st->path, &st->db, oflags | SQLITE_OPEN_NOMUTEX, NULL) != SQLITE_OK) {
		rc = kpar_error_set(KPAR_EDB, "cannot open state database '%s': %s", st->path,
				    st->db ? sqlite3_errmsg(st->db) : "out of memory");
		goto fail;
	}
	/* Workers, the runner and the plugin may touch the database at once:
	 * wait for each other rather than fail. */
	sqlite3_busy_timeout(st->db, 30000);
	if (!(flags & KPAR_STATE_RDONLY)) {
		/* WAL: readers never block the runner, and a kill -9 mid-write
		 * rolls back to the last committed transaction.  synchronous=NORMAL
		 * is durable against process death, the failure that matters here. */
		if ((rc = exec(st, "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;"
				   "PRAGMA foreign_keys=ON;")) < 0)
			goto fail;
		if ((rc = exec(st, "BEGIN IMMEDIATE")) < 0)
			goto fail;
		if ((rc = exec(st, schema)) < 0 ||
		    (rc = add_columns(st)) < 0 ||
		    (rc = kpar_history_schema(st->db)) < 0 ||
		    (rc = exec(st, "INSERT OR IGNORE INTO meta VALUES('schema', '" SCHEMA_VERSION "')")) < 0 ||
		    (rc = exec(st, "COMMIT")) < 0) {
			exec(st, "ROLLBACK");
			goto fail;
		}
	}
	if (flags & KPAR_STATE_RDONLY) {
		/* Reading must work or fail here, naming the file, rather than
		 * later as an empty answer. */
		if ((rc = exec(st, "SELECT count(*) FROM sqlite_master")) < 0) {
			kpar_error_prefix(rc, "cannot read the state database (a read-only directory "
					  "needs the database's -wal and -shm files readable, or none)");
			goto fail;
		}
	}
	free(uri);
	*out = st;
	return 0;
fail:
	free(uri);
	kpar_state_close(st);
	return rc;
}

void kpar_state_close(struct kpar_state *st)
{
	int i;

	if (!st)
		return;
	if (st->batch)
		exec(st, "ROLLBACK");
	drop_pending(st);
	free(st->pending);
	for (i = 0; i < ST_N; i++)
		sqlite3_finalize(st->stmt[i]);
	sqlite3_close(st->db);
	free(st->path);
	free(st);
}

sqlite3 *kpar_state_db(struct kpar_state *st)
{
	return st->db;
}

double kpar_state_now(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_REALTIME, &ts);
	return (double)ts.tv_sec + ts.tv_nsec / 1e9;
}

static char *col_str(sqlite3_stmt *s, int i)
{
	const unsigned char *t = sqlite3_column_text(s, i);
	return t ? kpar_xstrdup((const char *)t) : NULL;
}

void kpar_run_info_free(struct kpar_run_info *r)
{
	free(r->plan);
	free(r->tests_digest);
	free(r->inputs_digest);
	free(r->backend);
	free(r->status);
	free(r->verdict);
	memset(r, 0, sizeof *r);
}

#define RUN_COLS "id, plan, tests_digest, inputs_digest, nbuckets, backend, status, verdict, started, finished"

static int load_run(struct kpar_state *st, const char *sql, long long id, struct kpar_run_info *out)
{
	sqlite3_stmt *s;
	int rc;

	memset(out, 0, sizeof *out);
	if ((rc = prepare(st, sql, &s)) < 0)
		return rc;
	if (id)
		sqlite3_bind_int64(s, 1, id);
	rc = sqlite3_step(s);
	if (rc == SQLITE_ROW) {
		out->id = sqlite3_column_int64(s, 0);
		out->plan = col_str(s, 1);
		out->tests_digest = col_str(s, 2);
		out->inputs_digest = col_str(s, 3);
		out->nbuckets = (long)sqlite3_column_int64(s, 4);
		out->backend = col_str(s, 5);
		out->status = col_str(s, 6);
		out->verdict = col_str(s, 7);
		out->started = sqlite3_column_double(s, 8);
		out->finished = sqlite3_column_double(s, 9);
		rc = 0;
	} else if (rc == SQLITE_DONE) {
		rc = kpar_error_set(KPAR_ENOTFOUND, "no run%s in '%s'", id ? " with that id" : "", st->path);
	} else {
		rc = db_error(st, "read run");
	}
	sqlite3_finalize(s);
	return rc;
}

int kpar_state_last_run(struct kpar_state *st, struct kpar_run_info *out)
{
	return load_run(st, "SELECT " RUN_COLS " FROM runs ORDER BY id DESC LIMIT 1", 0, out);
}

int kpar_state_run_get(struct kpar_state *st, long long id, struct kpar_run_info *out)
{
	return load_run(st, "SELECT " RUN_COLS " FROM runs WHERE id = ?1", id, out);
}

int kpar_state_run_begin(struct kpar_state *st, const struct kpar_run_info *in,
			 const double *estimates, long long *id_out)
{
	sqlite3_stmt *s = NULL;
	long i;
	int rc;

	if ((rc = exec(st, "BEGIN IMMEDIATE")) < 0)
		return rc;
	if ((rc = prepare(st, "INSERT INTO runs(plan, tests_digest, inputs_digest, nbuckets, backend,"
			  " status, started) VALUES(?1, ?2, ?3, ?4, ?5, 'running', ?6)", &s)) < 0)
		goto fail;
	sqlite3_bind_text(s, 1, in->plan, -1, SQLITE_STATIC);
	sqlite3_bind_text(s, 2, in->tests_digest, -1, SQLITE_STATIC);
	sqlite3_bind_text(s, 3, in->inputs_digest, -1, SQLITE_STATIC);
	sqlite3_bind_int64(s, 4, in->nbuckets);
	sqlite3_bind_text(s, 5, in->backend, -1, SQLITE_STATIC);
	sqlite3_bind_double(s, 6, kpar_state_now());
	if (sqlite3_step(s) != SQLITE_DONE) {
		rc = db_error(st, "create run");
		goto fail;
	}
	sqlite3_finalize(s);
	*id_out = sqlite3_last_insert_rowid(st->db);
	if ((rc = prepare(st, "INSERT INTO buckets(run, idx, status, estimate) VALUES(?1, ?2, 'pending', ?3)", &s)) < 0)
		goto fail;
	for (i = 1; i <= in->nbuckets; i++) {
		sqlite3_reset(s);
		sqlite3_bind_int64(s, 1, *id_out);
		sqlite3_bind_int64(s, 2, i);
		sqlite3_bind_double(s, 3, estimates ? estimates[i - 1] : 0);
		if (sqlite3_step(s) != SQLITE_DONE) {
			rc = db_error(st, "create bucket");
			goto fail;
		}
	}
	sqlite3_finalize(s);
	return exec(st, "COMMIT");
fail:
	sqlite3_finalize(s);
	exec(st, "ROLLBACK");
	return rc;
}

int kpar_state_run_end(struct kpar_state *st, long long id, const char *status, const char *verdict)
{
	sqlite3_stmt *s;
	int rc;

	/* a run going on again (a resume) has no end yet: a stale one would
	 * make the report's wall time the time until the resume started */
	if ((rc = prepare(st, "UPDATE runs SET status = ?2, verdict = ?3,"
			  " finished = CASE WHEN ?2 = 'running' THEN NULL ELSE ?4 END WHERE id = ?1", &s)) < 0)
		return rc;
	sqlite3_bind_int64(s, 1, id);
	sqlite3_bind_text(s, 2, status, -1, SQLITE_STATIC);
	sqlite3_bind_text(s, 3, verdict, -1, SQLITE_STATIC);
	sqlite3_bind_double(s, 4, kpar_state_now());
	rc = sqlite3_step(s) == SQLITE_DONE ? 0 : db_error(st, "finish run");
	sqlite3_finalize(s);
	return rc;
}

int kpar_state_collected(struct kpar_state *st, long long run, long nbuckets, unsigned char *collected)
{
	sqlite3_stmt *s;
	int rc;

	memset(collected, 0, (size_t)nbuckets + 1);
	if ((rc = prepare(st, "SELECT idx FROM buckets WHERE run = ?1 AND status = 'collected'", &s)) < 0)
		return rc;
	sqlite3_bind_int64(s, 1, run);
	while ((rc = sqlite3_step(s)) == SQLITE_ROW) {
		long idx = (long)sqlite3_column_int64(s, 0);
		if (idx >= 1 && idx <= nbuckets)
			collected[idx] = 1;
	}
	rc = rc == SQLITE_DONE ? 0 : db_error(st, "read buckets");
	sqlite3_finalize(s);
	return rc;
}

int kpar_state_bucket_mark(struct kpar_state *st, long long run, int bucket, const char *status,
			   const char *worker, int attempts)
{
	sqlite3_stmt *s;
	int rc;

	if ((rc = cached(st, ST_MARK, "UPDATE buckets SET status = ?3, worker = ?4, attempts = ?5,"
			 " started = CASE WHEN ?3 = 'running' THEN ?6 ELSE started END"
			 " WHERE run = ?1 AND idx = ?2 AND status != 'collected'", &s)) < 0)
		return rc;
	sqlite3_bind_int64(s, 1, run);
	sqlite3_bind_int(s, 2, bucket);
	sqlite3_bind_text(s, 3, status, -1, SQLITE_STATIC);
	sqlite3_bind_text(s, 4, worker, -1, SQLITE_STATIC);
	sqlite3_bind_int(s, 5, attempts);
	sqlite3_bind_double(s, 6, kpar_state_now());
	rc = sqlite3_step(s) == SQLITE_DONE ? 0 : db_error(st, "mark bucket");
	sqlite3_reset(s);
	return rc;
}

int kpar_state_run_meta_set(struct kpar_state *st, long long run, const char *key, const char *value)
{
	sqlite3_stmt *s;
	int rc;

	if ((rc = prepare(st, value ? "INSERT OR REPLACE INTO run_meta VALUES(?1, ?2, ?3)"
			  : "DELETE FROM run_meta WHERE run = ?1 AND key = ?2", &s)) < 0)
		return rc;
	sqlite3_bind_int64(s, 1, run);
	sqlite3_bind_text(s, 2, key, -1, SQLITE_STATIC);
	if (value)
		sqlite3_bind_text(s, 3, value, -1, SQLITE_STATIC);
	rc = sqlite3_step(s) == SQLITE_DONE ? 0 : db_error(st, "store run metadata");
	sqlite3_finalize(s);
	return rc;
}

int kpar_state_run_meta_get(struct kpar_state *st, long long run, const char *key, char **value)
{
	sqlite3_stmt *s;
	int rc, step;

	*value = NULL;
	if ((rc = prepare(st, "SELECT value FROM run_meta WHERE (?1 < 0 OR run = ?1) AND key = ?2"
			  " ORDER BY run DESC LIMIT 1", &s)) < 0)
		return rc;
	sqlite3_bind_int64(s, 1, run);
	sqlite3_bind_text(s, 2, key, -1, SQLITE_STATIC);
	step = sqlite3_step(s);
	if (step == SQLITE_ROW)
		*value = col_str(s, 0);
	else if (step == SQLITE_DONE)
		rc = KPAR_ENOTFOUND;
	else
		rc = db_error(st, "read run metadata");
	sqlite3_finalize(s);
	return rc;
}

int kpar_state_collect(struct kpar_state *st, long long run, const struct kpar_bucket_result *r)
{
	sqlite3_stmt *chk = NULL, *ins = NULL, *upd = NULL;
	struct kpar_history_sample *samples = NULL;
	size_t i, nsamples = 0, queued = st->npending;
	int rc;

	/* In a batch, a savepoint: a bad record undoes itself only. */
	if ((rc = exec(st, st->batch ? "SAVEPOINT kpar_collect" : "BEGIN IMMEDIATE")) < 0)
		return rc;
	if ((rc = cached(st, ST_CHECK, "SELECT status FROM buckets WHERE run = ?1 AND idx = ?2",
			 &chk)) < 0)
		goto fail;
	sqlite3_bind_int64(chk, 1, run);
	sqlite3_bind_int(chk, 2, r->bucket);
	rc = sqlite3_step(chk);
	if (rc != SQLITE_ROW) {
		rc = kpar_error_set(KPAR_EINVAL, "run %lld has no bucket %d", run, r->bucket);
		goto fail;
	}
	if (strcmp((const char *)sqlite3_column_text(chk, 0), "collected") == 0) {
		/* A record delivered twice (a retried pod whose first attempt
		 * also finished) must not count its tests twice. */
		sqlite3_reset(chk);
		return exec(st, st->batch ? "RELEASE kpar_collect" : "COMMIT");
	}
	sqlite3_reset(chk);
	if ((rc = cached(st, ST_INSERT, "INSERT OR REPLACE INTO results(run, test, bucket, attempt,"
			 " worker, status, seconds, attempts, exit_code, output, note, subtests, full_log)"
			 " VALUES(?1,?2,?3,?4,?5,?6,?7,?8,?9,?10,?11,?12,?13)", &ins)) < 0)
		goto fail;
	samples = kpar_xcalloc(r->ntests ? r->ntests : 1, sizeof *samples);
	for (i = 0; i < r->ntests; i++) {
		const struct kpar_test_result *t = &r->tests[i];
		sqlite3_reset(ins);
		sqlite3_bind_int64(ins, 1, run);
		sqlite3_bind_text(ins, 2, t->id, -1, SQLITE_STATIC);
		sqlite3_bind_int(ins, 3, r->bucket);
		sqlite3_bind_int(ins, 4, r->attempt);
		sqlite3_bind_text(ins, 5, r->worker, -1, SQLITE_STATIC);
		sqlite3_bind_text(ins, 6, kpar_status_name(t->status), -1, SQLITE_STATIC);
		sqlite3_bind_double(ins, 7, t->seconds);
		sqlite3_bind_int(ins, 8, t->attempts);
		sqlite3_bind_int(ins, 9, t->exit_code);
		if (t->output)
			sqlite3_bind_blob(ins, 10, t->output, (int)t->output_len, SQLITE_STATIC);
		else
			sqlite3_bind_null(ins, 10);
		if (t->note)
			sqlite3_bind_text(ins, 11, t->note, -1, SQLITE_STATIC);
		else
			sqlite3_bind_null(ins, 11);
		if (t->nsubtests)
			sqlite3_bind_text(ins, 12, kpar_subtests_json(t), -1, free);
		else
			sqlite3_bind_null(ins, 12);
		if (t->full_log)
			sqlite3_bind_text(ins, 13, t->full_log, -1, SQLITE_STATIC);
		else
			sqlite3_bind_null(ins, 13);
		if (sqlite3_step(ins) != SQLITE_DONE) {
			rc = db_error(st, "store result");
			goto fail;
		}
		/* Skipped tests and errors say nothing about how long a test
		 * takes; feeding them in would skew the next split. */
		if (t->status == KPAR_PASS || t->status == KPAR_FAIL || t->status == KPAR_FLAKY ||
		    t->status == KPAR_XFAIL || t->status == KPAR_XPASS) {
			samples[nsamples].test = t->id;
			samples[nsamples].seconds = t->seconds;
			samples[nsamples].status = kpar_status_name(t->status);
			samples[nsamples].at = r->finished;
			nsamples++;
		}
	}
	sqlite3_reset(ins);
	if (st->batch) {
		/* Durations go in once per batch, with the batch (their SQL
		 * is prepared per call). */
		for (i = 0; i < nsamples; i++) {
			if (st->npending == st->cappending) {
				st->cappending = st->cappending ? 2 * st->cappending : 64;
				st->pending = kpar_xrealloc(st->pending,
							    st->cappending * sizeof *st->pending);
			}
			st->pending[st->npending] = samples[i];
			st->pending[st->npending++].test = kpar_xstrdup(samples[i].test);
		}
	} else if ((rc = kpar_history_add_many(st->db, samples, nsamples)) < 0) {
		goto fail;
	}
	if ((rc = cached(st, ST_COLLECTED, "UPDATE buckets SET status = 'collected', worker = ?3,"
			 " attempts = ?4, started = ?5, finished = ?6 WHERE run = ?1 AND idx = ?2",
			 &upd)) < 0)
		goto fail;
	sqlite3_bind_int64(upd, 1, run);
	sqlite3_bind_int(upd, 2, r->bucket);
	sqlite3_bind_text(upd, 3, r->worker, -1, SQLITE_STATIC);
	sqlite3_bind_int(upd, 4, r->attempt);
	sqlite3_bind_double(upd, 5, r->started);
	sqlite3_bind_double(upd, 6, r->finished);
	if (sqlite3_step(upd) != SQLITE_DONE) {
		rc = db_error(st, "mark bucket collected");
		goto fail;
	}
	sqlite3_reset(upd);
	free(samples);
	return exec(st, st->batch ? "RELEASE kpar_collect" : "COMMIT");
fail:
	if (chk)
		sqlite3_reset(chk);
	if (ins)
		sqlite3_reset(ins);
	if (upd)
		sqlite3_reset(upd);
	free(samples);
	if (st->batch) {
		/* the durations this collect queued go with it */
		while (st->npending > queued)
			free((char *)st->pending[--st->npending].test);
		sqlite3_exec(st->db, "ROLLBACK TO kpar_collect; RELEASE kpar_collect", NULL, NULL, NULL);
	} else {
		exec(st, "ROLLBACK");
	}
	return rc < 0 ? rc : KPAR_EDB;
}

int kpar_state_results(struct kpar_state *st, long long run,
		       struct kpar_bucket_result **out, size_t *n)
{
	sqlite3_stmt *b = NULL, *t = NULL;
	struct kpar_bucket_result *res = NULL;
	size_t nres = 0, cap = 0, k = 0;
	int rc;

	*out = NULL;
	*n = 0;
	/* Two passes in bucket order, merged: a query per bucket costs more
	 * than the report when every test is its own bucket. */
	if ((rc = prepare(st, "SELECT idx, attempts, worker, started, finished FROM buckets"
			  " WHERE run = ?1 AND status = 'collected' ORDER BY idx", &b)) < 0 ||
	    (rc = prepare_results(st, "SELECT test, status, seconds, attempts, exit_code, output, bucket, ", "",
				  " FROM results WHERE run = ?1 ORDER BY bucket, test", &t)) < 0)
		goto done;
	sqlite3_bind_int64(b, 1, run);
	while ((rc = sqlite3_step(b)) == SQLITE_ROW) {
		struct kpar_bucket_result *r;
		if (nres == cap) {
			cap = cap ? cap * 2 : 16;
			res = kpar_xrealloc(res, cap * sizeof *res);
		}
		r = &res[nres++];
		memset(r, 0, sizeof *r);
		r->bucket = sqlite3_column_int(b, 0);
		r->attempt = sqlite3_column_int(b, 1);
		r->worker = col_str(b, 2);
		r->started = sqlite3_column_double(b, 3);
		r->finished = sqlite3_column_double(b, 4);
	}
	if (rc != SQLITE_DONE) {
		rc = db_error(st, "read buckets");
		goto done;
	}
	sqlite3_bind_int64(t, 1, run);
	while ((rc = sqlite3_step(t)) == SQLITE_ROW) {
		int bucket = sqlite3_column_int(t, 6), status;
		struct kpar_test_result *tr;

		while (k < nres && res[k].bucket < bucket)
			k++;
		if (k == nres || res[k].bucket != bucket)
			continue;   /* a bucket not (yet) collected */
		status = kpar_status_parse((const char *)sqlite3_column_text(t, 1));
		tr = kpar_bucket_result_add(&res[k], (const char *)sqlite3_column_text(t, 0),
					    status < 0 ? KPAR_ERROR : (enum kpar_status)status,
					    sqlite3_column_double(t, 2), sqlite3_column_blob(t, 5),
					    (size_t)sqlite3_column_bytes(t, 5));
		tr->attempts = sqlite3_column_int(t, 3);
		tr->exit_code = sqlite3_column_int(t, 4);
		tr->note = col_str(t, 7);
		tr->full_log = col_str(t, 9);
		if (sqlite3_column_type(t, 8) == SQLITE_TEXT &&
		    kpar_subtests_from_json(tr, (const char *)sqlite3_column_text(t, 8),
					    (size_t)sqlite3_column_bytes(t, 8)) < 0) {
			rc = kpar_error_prefix(KPAR_EDB, "state database '%s': test '%s'", st->path, tr->id);
			goto done;
		}
	}
	rc = rc == SQLITE_DONE ? 0 : db_error(st, "read results");
done:
	sqlite3_finalize(b);
	sqlite3_finalize(t);
	if (rc < 0) {
		kpar_state_results_free(res, nres);
		return rc;
	}
	*out = res;
	*n = nres;
	return 0;
}

long long kpar_state_partial_since(struct kpar_state *st, const char *tests_digest,
				   const char *inputs_digest, long long *last)
{
	static const char partial[] = "EXISTS (SELECT 1 FROM run_meta m WHERE m.run = r.id"
				      " AND m.key = 'run.partial' AND m.value = '1')";
	sqlite3_stmt *s = NULL;
	char *sql;
	long long full = 0;
	int ok = 1;

	*last = 0;
	sql = kpar_xasprintf("SELECT MAX(r.id) FROM runs r WHERE r.status = 'complete' AND r.tests_digest IS ?1"
			     " AND r.inputs_digest IS ?2 AND NOT %s", partial);
	if (prepare(st, sql, &s) < 0)
		goto fail;
	sqlite3_bind_text(s, 1, tests_digest, -1, SQLITE_STATIC);
	sqlite3_bind_text(s, 2, inputs_digest, -1, SQLITE_STATIC);
	if (sqlite3_step(s) == SQLITE_ROW)
		full = sqlite3_column_int64(s, 0);
	sqlite3_finalize(s);
	s = NULL;
	free(sql);
	sql = NULL;
	if (full <= 0)
		return 0;
	/* every later run: complete, partial, of the same list and inputs */
	sql = kpar_xasprintf("SELECT r.id, r.status = 'complete' AND r.tests_digest IS ?2"
			     " AND r.inputs_digest IS ?3 AND %s FROM runs r WHERE r.id > ?1 ORDER BY r.id", partial);
	if (prepare(st, sql, &s) < 0)
		goto fail;
	sqlite3_bind_int64(s, 1, full);
	sqlite3_bind_text(s, 2, tests_digest, -1, SQLITE_STATIC);
	sqlite3_bind_text(s, 3, inputs_digest, -1, SQLITE_STATIC);
	while (ok && sqlite3_step(s) == SQLITE_ROW) {
		*last = sqlite3_column_int64(s, 0);
		ok = sqlite3_column_int(s, 1);
	}
	sqlite3_finalize(s);
	free(sql);
	if (!ok || *last == 0) {
		*last = 0;
		return 0;
	}
	return full;
fail:
	sqlite3_finalize(s);
	free(sql);
	kpar_error_clear();
	return 0;
}

static int cmp_id(const void *a, const void *b);

int kpar_state_test_inputs_set(struct kpar_state *st, long long run, const struct kpar_strv *ids,
				const struct kpar_strv *digests)
{
	sqlite3_stmt *s = NULL;
	size_t i;
	int rc;

	if (ids->n == 0)
		return 0;
	if ((rc = exec(st, "BEGIN IMMEDIATE")) < 0)
		return rc;
	if ((rc = prepare(st, "INSERT OR REPLACE INTO test_inputs(run, test, digest) VALUES(?1, ?2, ?3)", &s)) < 0)
		goto fail;
	for (i = 0; i < ids->n; i++) {
		sqlite3_reset(s);
		sqlite3_bind_int64(s, 1, run);
		sqlite3_bind_text(s, 2, ids->v[i], -1, SQLITE_STATIC);
		sqlite3_bind_text(s, 3, digests->v[i], -1, SQLITE_STATIC);
		if (sqlite3_step(s) != SQLITE_DONE) {
			rc = db_error(st, "record the tests' own inputs");
			goto fail;
		}
	}
	sqlite3_finalize(s);
	return exec(st, "COMMIT");
fail:
	sqlite3_finalize(s);
	exec(st, "ROLLBACK");
	return rc;
}

int kpar_state_reusable(struct kpar_state *st, const char *inputs_digest, const struct kpar_strv *ids,
			const struct kpar_strv *own, unsigned char *reuse)
{
	sqlite3_stmt *s = NULL;
	int rc;

	/* each test's latest result, the global inputs of its run and the
	 * test's own digest then; ids come sorted, as tests.list is */
	if ((rc = prepare(st, "SELECT r.test, u.inputs_digest, t.digest FROM results r"
			  " JOIN (SELECT test, MAX(run) AS m FROM results GROUP BY test) x"
			  " ON r.test = x.test AND r.run = x.m JOIN runs u ON u.id = r.run"
			  " LEFT JOIN test_inputs t ON t.run = r.run AND t.test = r.test", &s)) < 0)
		return rc;
	while ((rc = sqlite3_step(s)) == SQLITE_ROW) {
		const char *id = (const char *)sqlite3_column_text(s, 0);
		const char *in = (const char *)sqlite3_column_text(s, 1);
		const char *dig = (const char *)sqlite3_column_text(s, 2);
		char *const *hit = ids->n ? bsearch(&id, ids->v, ids->n, sizeof *ids->v, cmp_id) : NULL;
		size_t k;

		if (!hit || !in || strcmp(in, inputs_digest) != 0)
			continue;
		k = (size_t)(hit - ids->v);
		reuse[k] = own->n > k && dig && strcmp(dig, own->v[k]) == 0;
	}
	rc = rc == SQLITE_DONE ? 0 : db_error(st, "read the latest results");
	sqlite3_finalize(s);
	return rc;
}

int kpar_state_latest_failed(struct kpar_state *st, struct kpar_strv *out)
{
	sqlite3_stmt *s = NULL;
	int rc;

	if ((rc = prepare(st, "SELECT r.test FROM results r JOIN (SELECT test, MAX(run) AS m FROM results"
			  " GROUP BY test) x ON r.test = x.test AND r.run = x.m"
			  " WHERE r.status IN ('fail', 'error')", &s)) < 0)
		return rc;
	while ((rc = sqlite3_step(s)) == SQLITE_ROW)
		kpar_strv_push(out, (const char *)sqlite3_column_text(s, 0));
	rc = rc == SQLITE_DONE ? 0 : db_error(st, "read the latest results");
	sqlite3_finalize(s);
	return rc;
}

static int cmp_id(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

int kpar_state_reused(struct kpar_state *st, long long run, const struct kpar_strv *ids,
		      struct kpar_bucket_result **out, size_t *n)
{
	sqlite3_stmt *s = NULL;
	struct kpar_bucket_result *res = NULL;
	size_t nres = 0;
	long long last_from = -1;
	int rc;

	*out = NULL;
	*n = 0;
	/* latest first by run, so each earlier run's tests come together */
	if ((rc = prepare_results(st, "SELECT r.test, r.status, r.seconds, r.attempts, r.exit_code, r.output, r.run, ",
				  "r.", " FROM results r JOIN (SELECT test, MAX(run) AS m FROM results WHERE run < ?1"
				  " GROUP BY test) x ON r.test = x.test AND r.run = x.m"
				  " WHERE NOT EXISTS (SELECT 1 FROM results c WHERE c.run = ?1 AND c.test = r.test)"
				  " ORDER BY r.run DESC, r.test", &s)) < 0)
		return rc;
	sqlite3_bind_int64(s, 1, run);
	while ((rc = sqlite3_step(s)) == SQLITE_ROW) {
		const char *id = (const char *)sqlite3_column_text(s, 0);
		long long from = sqlite3_column_int64(s, 6);
		int status = kpar_status_parse((const char *)sqlite3_column_text(s, 1));
		struct kpar_test_result *tr;

		if (!ids->n || !bsearch(&id, ids->v, ids->n, sizeof *ids->v, cmp_id))
			continue;  /* no longer listed */
		if (from != last_from) {
			res = kpar_xrealloc(res, (nres + 1) * sizeof *res);
			memset(&res[nres], 0, sizeof *res);
			res[nres].worker = kpar_xasprintf("run %lld", from);
			nres++;
			last_from = from;
		}
		tr = kpar_bucket_result_add(&res[nres - 1], id, status < 0 ? KPAR_ERROR : (enum kpar_status)status,
					    sqlite3_column_double(s, 2), sqlite3_column_blob(s, 5),
					    (size_t)sqlite3_column_bytes(s, 5));
		tr->attempts = sqlite3_column_int(s, 3);
		tr->exit_code = sqlite3_column_int(s, 4);
		tr->note = col_str(s, 7);
		tr->full_log = col_str(s, 9);
		if (sqlite3_column_type(s, 8) == SQLITE_TEXT &&
		    kpar_subtests_from_json(tr, (const char *)sqlite3_column_text(s, 8),
					    (size_t)sqlite3_column_bytes(s, 8)) < 0) {
			rc = kpar_error_prefix(KPAR_EDB, "state database '%s': test '%s'", st->path, tr->id);
			sqlite3_finalize(s);
			kpar_state_results_free(res, nres);
			return rc;
		}
	}
	rc = rc == SQLITE_DONE ? 0 : db_error(st, "read earlier results");
	sqlite3_finalize(s);
	if (rc < 0) {
		kpar_state_results_free(res, nres);
		return rc;
	}
	*out = res;
	*n = nres;
	return 0;
}

void kpar_state_results_free(struct kpar_bucket_result *r, size_t n)
{
	size_t i;

	for (i = 0; i < n; i++)
		kpar_bucket_result_free(&r[i]);
	free(r);
}

static int count(struct kpar_state *st, const char *sql, long long run, long long *out)
{
	sqlite3_stmt *s;
	int rc;

	if ((rc = prepare(st, sql, &s)) < 0)
		return rc;
	sqlite3_bind_int64(s, 1, run);
	rc = sqlite3_step(s) == SQLITE_ROW ? 0 : db_error(st, "count");
	*out = sqlite3_column_int64(s, 0);
	sqlite3_finalize(s);
	return rc;
}

int kpar_state_query(const char *state_dir, const char *what, struct kpar_buf *out)
{
	struct kpar_state *st = NULL;
	struct kpar_run_info ri;
	long long n = 0;
	int rc, have_run = 0;

	static const char *const known[] = { "run", "status", "verdict", "resumable", "buckets",
					     "buckets-done", "tests", "tests-passed", "tests-failed",
					     "tests-errors", "tests-skipped", "tests-flaky", NULL };
	const char *const *k;

	for (k = known; *k && strcmp(*k, what) != 0; k++)
		;
	if (!*k)
		return kpar_error_set(KPAR_EINVAL, "unknown state query '%s' (run, status, verdict, "
				      "resumable, buckets, buckets-done, tests, tests-passed, tests-failed, "
				      "tests-errors, tests-skipped, tests-flaky)", what);
	memset(&ri, 0, sizeof ri);
	/* No database, or no run in it yet, is an answer ("none"); a database
	 * that cannot be read is an error, never a made-up "none". */
	rc = kpar_state_open(&st, state_dir, KPAR_STATE_RDONLY);
	if (rc == 0) {
		sqlite3_stmt *s;
		/* created, but its schema not yet committed by the first writer */
		if ((rc = prepare(st, "SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'runs'",
				  &s)) == 0) {
			int step = sqlite3_step(s);
			if (step == SQLITE_ROW)
				rc = kpar_state_last_run(st, &ri);
			else if (step == SQLITE_DONE)
				rc = KPAR_ENOTFOUND;
			else
				rc = db_error(st, "read schema");
			sqlite3_finalize(s);
		}
		have_run = rc == 0;
	}
	if (rc < 0 && rc != KPAR_ENOTFOUND)
		goto done;
	kpar_error_clear();
	rc = 0;
	if (!strcmp(what, "run")) {
		if (have_run)
			kpar_buf_printf(out, "%lld", ri.id);
	} else if (!strcmp(what, "status")) {
		kpar_buf_puts(out, have_run ? ri.status : "none");
	} else if (!strcmp(what, "verdict")) {
		kpar_buf_puts(out, have_run && ri.verdict ? ri.verdict : "none");
	} else if (!strcmp(what, "resumable")) {
		kpar_buf_puts(out, have_run && strcmp(ri.status, "complete") != 0 ? "1" : "0");
	} else if (!strcmp(what, "buckets")) {
		kpar_buf_printf(out, "%ld", have_run ? ri.nbuckets : 0L);
	} else if (have_run) {
		/* the summary's words: a flaky test is also counted as passed */
		const char *sql = !strcmp(what, "buckets-done")
			? "SELECT count(*) FROM buckets WHERE run = ?1 AND status = 'collected'"
			: !strcmp(what, "tests-passed")
			? "SELECT count(*) FROM results WHERE run = ?1 AND status IN ('pass', 'flaky')"
			: !strcmp(what, "tests-failed")
			? "SELECT count(*) FROM results WHERE run = ?1 AND status = 'fail'"
			: !strcmp(what, "tests-errors")
			? "SELECT count(*) FROM results WHERE run = ?1 AND status = 'error'"
			: !strcmp(what, "tests-skipped")
			? "SELECT count(*) FROM results WHERE run = ?1 AND status = 'skip'"
			: !strcmp(what, "tests-flaky")
			? "SELECT count(*) FROM results WHERE run = ?1 AND status = 'flaky'"
			: "SELECT count(*) FROM results WHERE run = ?1";
		if ((rc = count(st, sql, ri.id, &n)) == 0)
			kpar_buf_printf(out, "%lld", n);
	} else {
		kpar_buf_puts(out, "0");
	}
done:
	kpar_run_info_free(&ri);
	kpar_state_close(st);
	return rc;
}
