/* history.c - per-test duration history in the state database.
 *
 * Two tables, both owned here:
 *   durations           the last KEEP measured samples of each test
 *                       (test, at, seconds, status), pruned on every add;
 *   duration_estimates  one row per test: the robust estimate of those
 *                       samples, kept current by kpar_history_add so that
 *                       planning 100,000 tests reads 100,000 rows, not a
 *                       million samples.
 *
 * The estimate is the median of the last KEEP (7) non-skipped samples,
 * taken over passing runs when the test has any (a failure often stops
 * early and a timeout is the timeout, neither is how long the test takes).
 * Why a median and not an EWMA: a test's durations have rare large
 * outliers (a run on a noisy node, a hang killed at the timeout); one such
 * sample moves an EWMA for many runs, while the median of 7 ignores up to 3
 * of them.  A real change of speed is adopted after 4 runs, which is the
 * price of that robustness.  Skipped tests are not recorded at all: a skip
 * takes no time and would drag the estimate of a test that usually runs
 * to zero.
 *
 * Imported durations (kpar_history_import: a CI's JUnit reports, prove's
 * state) live in the same two tables, so the split reads them as it reads
 * any history, but marked: a sample's source is '' when kpar measured it
 * and the imported file's path otherwise, and an estimate resting on
 * imports only is flagged imported.  A measured sample outranks them all:
 * recording one deletes the test's imported samples, and an import skips a
 * test that has measured ones.  Re-importing a file replaces what it gave
 * before, so importing the same report twice counts it once.
 */
#include "config.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "base/error.h"
#include "run/history.h"
#include "run/split.h"

#define KEEP 7

static const char schema_sql[] =
	"CREATE TABLE IF NOT EXISTS durations ("
	" test TEXT NOT NULL,"
	" at REAL NOT NULL,"
	" seconds REAL NOT NULL,"
	" status TEXT NOT NULL);"
	"CREATE INDEX IF NOT EXISTS durations_by_test ON durations(test, at);"
	"CREATE TABLE IF NOT EXISTS duration_estimates ("
	" test TEXT PRIMARY KEY,"
	" seconds REAL NOT NULL,"
	" samples INTEGER NOT NULL,"
	" at REAL NOT NULL) WITHOUT ROWID;"
	/* the files imported (by digest): the plan's key names them, and
	 * KPAR_HISTORY_FROM imports a file once */
	"CREATE TABLE IF NOT EXISTS history_imports ("
	" digest TEXT PRIMARY KEY,"
	" path TEXT NOT NULL,"
	" at REAL NOT NULL,"
	" stored INTEGER NOT NULL) WITHOUT ROWID;";

/* Columns added after the first schema; a database made before them gets
 * them here (the caller holds a write transaction). */
static const struct {
	const char *table, *column, *sql;
} added_columns[] = {
	{ "durations", "source", "ALTER TABLE durations ADD COLUMN source TEXT NOT NULL DEFAULT ''" },
	{ "duration_estimates", "imported",
	  "ALTER TABLE duration_estimates ADD COLUMN imported INTEGER NOT NULL DEFAULT 0" },
};

static int db_error(sqlite3 *db, const char *what)
{
	return kpar_error_set(KPAR_EDB, "durations history: %s: %s", what, sqlite3_errmsg(db));
}

int kpar_history_schema(sqlite3 *db)
{
	size_t i;

	if (sqlite3_exec(db, schema_sql, NULL, NULL, NULL) != SQLITE_OK)
		return db_error(db, "cannot create tables");
	for (i = 0; i < sizeof added_columns / sizeof added_columns[0]; i++) {
		sqlite3_stmt *st = NULL;
		int have;

		if (sqlite3_prepare_v2(db, "SELECT count(*) FROM pragma_table_info(?1) WHERE name = ?2",
				       -1, &st, NULL) != SQLITE_OK)
			return db_error(db, "cannot read the schema");
		sqlite3_bind_text(st, 1, added_columns[i].table, -1, SQLITE_STATIC);
		sqlite3_bind_text(st, 2, added_columns[i].column, -1, SQLITE_STATIC);
		have = sqlite3_step(st) == SQLITE_ROW && sqlite3_column_int(st, 0) > 0;
		sqlite3_finalize(st);
		if (!have && sqlite3_exec(db, added_columns[i].sql, NULL, NULL, NULL) != SQLITE_OK)
			return db_error(db, "cannot add a column");
	}
	return 0;
}

static int cmp_double(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;

	return x < y ? -1 : x > y;
}

double kpar_history_median(double *v, size_t n)
{
	if (n == 0)
		return 0.0;
	qsort(v, n, sizeof *v, cmp_double);
	return n % 2 ? v[n / 2] : (v[n / 2 - 1] + v[n / 2]) / 2.0;
}

static int counts_as_run(const char *status)
{
	/* an expected failure ran to its end as much as a pass did */
	return strcmp(status, "pass") == 0 || strcmp(status, "flaky") == 0 ||
	       strcmp(status, "xfail") == 0 || strcmp(status, "xpass") == 0;
}

static int known_status(const char *status)
{
	return counts_as_run(status) || strcmp(status, "fail") == 0 || strcmp(status, "error") == 0;
}

static int exec_stmt(sqlite3 *db, const char *sql, const char *what)
{
	if (sqlite3_exec(db, sql, NULL, NULL, NULL) != SQLITE_OK)
		return db_error(db, what);
	return 0;
}

enum { ST_INSERT, ST_PRUNE, ST_SELECT, ST_UPSERT, ST_DROP_IMPORTED, ST_DROP_SOURCE, ST_MEASURED,
       ST_COUNT };

static const char *const stmt_sql[ST_COUNT] = {
	"INSERT INTO durations(test, at, seconds, status, source) VALUES (?1, ?2, ?3, ?4, ?5)",
	"DELETE FROM durations WHERE rowid IN (SELECT rowid FROM durations"
	" WHERE test = ?1 ORDER BY at DESC, rowid DESC LIMIT -1 OFFSET ?2)",
	"SELECT seconds, status FROM durations WHERE test = ?1",
	"INSERT INTO duration_estimates(test, seconds, samples, at, imported)"
	" VALUES (?1, ?2, ?3, ?4, ?5)"
	" ON CONFLICT(test) DO UPDATE SET seconds = excluded.seconds,"
	" samples = excluded.samples, at = max(at, excluded.at), imported = excluded.imported",
	"DELETE FROM durations WHERE test = ?1 AND source <> ''",
	"DELETE FROM durations WHERE test = ?1 AND source = ?2",
	"SELECT 1 FROM durations WHERE test = ?1 AND source = '' LIMIT 1",
};

static const char *const stmt_what[ST_COUNT] = {
	"cannot record a duration", "cannot prune old durations", "cannot read durations",
	"cannot update the estimate", "cannot drop imported durations",
	"cannot drop imported durations", "cannot read durations",
};

/* Runs one statement to completion; SELECT is not run this way. */
static int step_done(sqlite3 *db, sqlite3_stmt *st, const char *what)
{
	int rc = sqlite3_step(st);

	sqlite3_reset(st);
	return rc == SQLITE_DONE ? 0 : db_error(db, what);
}

/* Records one sample with statements prepared once per batch: parsing SQL
 * would otherwise be most of the cost of an add.  source NULL: measured by
 * kpar; else the tag of an import.  Returns 1 when an imported sample was
 * not recorded because the test has measured ones. */
static int add_one(sqlite3 *db, sqlite3_stmt **st, const struct kpar_history_sample *x,
		   const char *source)
{
	double all[KEEP + 1], runs[KEEP + 1], est;
	size_t nall = 0, nruns = 0;
	int rc;

	if (source) {
		sqlite3_bind_text(st[ST_MEASURED], 1, x->test, -1, SQLITE_STATIC);
		rc = sqlite3_step(st[ST_MEASURED]);
		sqlite3_reset(st[ST_MEASURED]);
		if (rc == SQLITE_ROW)
			return 1;
		if (rc != SQLITE_DONE)
			return db_error(db, stmt_what[ST_MEASURED]);
		sqlite3_bind_text(st[ST_DROP_SOURCE], 1, x->test, -1, SQLITE_STATIC);
		sqlite3_bind_text(st[ST_DROP_SOURCE], 2, source, -1, SQLITE_STATIC);
		if ((rc = step_done(db, st[ST_DROP_SOURCE], stmt_what[ST_DROP_SOURCE])) < 0)
			return rc;
	} else {
		sqlite3_bind_text(st[ST_DROP_IMPORTED], 1, x->test, -1, SQLITE_STATIC);
		if ((rc = step_done(db, st[ST_DROP_IMPORTED], stmt_what[ST_DROP_IMPORTED])) < 0)
			return rc;
	}
	sqlite3_bind_text(st[ST_INSERT], 1, x->test, -1, SQLITE_STATIC);
	sqlite3_bind_double(st[ST_INSERT], 2, x->at);
	sqlite3_bind_double(st[ST_INSERT], 3, x->seconds);
	sqlite3_bind_text(st[ST_INSERT], 4, x->status, -1, SQLITE_STATIC);
	sqlite3_bind_text(st[ST_INSERT], 5, source ? source : "", -1, SQLITE_STATIC);
	if ((rc = step_done(db, st[ST_INSERT], stmt_what[ST_INSERT])) < 0)
		return rc;

	sqlite3_bind_text(st[ST_PRUNE], 1, x->test, -1, SQLITE_STATIC);
	sqlite3_bind_int(st[ST_PRUNE], 2, KEEP);
	if ((rc = step_done(db, st[ST_PRUNE], stmt_what[ST_PRUNE])) < 0)
		return rc;

	sqlite3_bind_text(st[ST_SELECT], 1, x->test, -1, SQLITE_STATIC);
	while ((rc = sqlite3_step(st[ST_SELECT])) == SQLITE_ROW && nall < KEEP + 1) {
		double s = sqlite3_column_double(st[ST_SELECT], 0);
		const char *stat = (const char *)sqlite3_column_text(st[ST_SELECT], 1);

		all[nall++] = s;
		if (stat && counts_as_run(stat))
			runs[nruns++] = s;
	}
	sqlite3_reset(st[ST_SELECT]);
	if (rc != SQLITE_DONE && rc != SQLITE_ROW)
		return db_error(db, stmt_what[ST_SELECT]);
	est = nruns ? kpar_history_median(runs, nruns) : kpar_history_median(all, nall);

	sqlite3_bind_text(st[ST_UPSERT], 1, x->test, -1, SQLITE_STATIC);
	sqlite3_bind_double(st[ST_UPSERT], 2, est);
	sqlite3_bind_int64(st[ST_UPSERT], 3, (sqlite3_int64)nall);
	sqlite3_bind_double(st[ST_UPSERT], 4, x->at);
	sqlite3_bind_int(st[ST_UPSERT], 5, source != NULL);
	return step_done(db, st[ST_UPSERT], stmt_what[ST_UPSERT]);
}

static int check_sample(const struct kpar_history_sample *x)
{
	if (!x->test || !*x->test)
		return kpar_error_set(KPAR_EINVAL, "durations history: empty test id");
	if (!x->status)
		return kpar_error_set(KPAR_EINVAL, "durations history: test '%s': no status", x->test);
	if (strcmp(x->status, "skip") != 0 && !known_status(x->status))
		return kpar_error_set(KPAR_EINVAL, "durations history: test '%s': unknown status '%s'",
				      x->test, x->status);
	if (!isfinite(x->seconds) || x->seconds < 0)
		return kpar_error_set(KPAR_EINVAL, "durations history: test '%s': invalid duration %g",
				      x->test, x->seconds);
	if (!isfinite(x->at))
		return kpar_error_set(KPAR_EINVAL, "durations history: test '%s': invalid time",
				      x->test);
	return 0;
}

static int add_batch(sqlite3 *db, const struct kpar_history_sample *v, size_t n,
		     const char *source, size_t *stored)
{
	sqlite3_stmt *st[ST_COUNT] = { NULL };
	size_t i, nstored = 0;
	int rc = 0, k;

	if (stored)
		*stored = 0;
	/* All or nothing: a bad sample anywhere records none of the batch. */
	for (i = 0; i < n; i++)
		if ((rc = check_sample(&v[i])) < 0)
			return rc;
	for (i = 0; i < n && strcmp(v[i].status, "skip") == 0; i++)
		;
	if (i == n)
		return 0;
	if ((rc = exec_stmt(db, "SAVEPOINT kpar_history_add", "cannot start a savepoint")) < 0)
		return rc;
	for (k = 0; k < ST_COUNT && rc == 0; k++)
		if (sqlite3_prepare_v2(db, stmt_sql[k], -1, &st[k], NULL) != SQLITE_OK)
			rc = db_error(db, stmt_what[k]);
	for (i = 0; i < n && rc == 0; i++)
		if (strcmp(v[i].status, "skip") != 0) {
			rc = add_one(db, st, &v[i], source);
			if (rc == 0)
				nstored++;
			else if (rc > 0)
				rc = 0;
		}
	for (k = 0; k < ST_COUNT; k++)
		sqlite3_finalize(st[k]);
	if (rc < 0) {
		/* Keep the message of the failure, not of the rollback. */
		sqlite3_exec(db, "ROLLBACK TO kpar_history_add; RELEASE kpar_history_add",
			     NULL, NULL, NULL);
		return rc;
	}
	if (stored)
		*stored = nstored;
	return exec_stmt(db, "RELEASE kpar_history_add", "cannot commit");
}

int kpar_history_add_many(sqlite3 *db, const struct kpar_history_sample *v, size_t n)
{
	return add_batch(db, v, n, NULL, NULL);
}

int kpar_history_import(sqlite3 *db, const struct kpar_history_sample *v, size_t n,
			const char *source, size_t *stored)
{
	if (!source || !*source)
		return kpar_error_set(KPAR_EINVAL, "durations history: an import needs a source");
	return add_batch(db, v, n, source, stored);
}

int kpar_history_measured(sqlite3 *db, char *const *ids, size_t n, size_t *count)
{
	static const char sql[] = "SELECT 1 FROM duration_estimates WHERE test = ?1 AND imported = 0";
	sqlite3_stmt *st = NULL;
	size_t i;
	int rc = SQLITE_DONE;

	*count = 0;
	if (sqlite3_prepare_v2(db, sql, -1, &st, NULL) != SQLITE_OK)
		return db_error(db, "cannot read estimates");
	for (i = 0; i < n; i++) {
		sqlite3_bind_text(st, 1, ids[i], -1, SQLITE_STATIC);
		rc = sqlite3_step(st);
		sqlite3_reset(st);
		if (rc == SQLITE_ROW)
			(*count)++;
		else if (rc != SQLITE_DONE)
			break;
	}
	sqlite3_finalize(st);
	if (rc != SQLITE_ROW && rc != SQLITE_DONE)
		return db_error(db, "cannot read estimates");
	return 0;
}

int kpar_history_add(sqlite3 *db, const char *test, double seconds, const char *status, double at)
{
	struct kpar_history_sample x = { test, seconds, status, at };

	return kpar_history_add_many(db, &x, 1);
}

int kpar_history_get(sqlite3 *db, const char *test, double *seconds, int *samples)
{
	static const char sql[] = "SELECT seconds, samples FROM duration_estimates WHERE test = ?1";
	sqlite3_stmt *st = NULL;
	int rc;

	if (sqlite3_prepare_v2(db, sql, -1, &st, NULL) != SQLITE_OK)
		return db_error(db, "cannot read estimates");
	sqlite3_bind_text(st, 1, test, -1, SQLITE_STATIC);
	rc = sqlite3_step(st);
	if (rc == SQLITE_ROW) {
		if (seconds)
			*seconds = sqlite3_column_double(st, 0);
		if (samples)
			*samples = sqlite3_column_int(st, 1);
		sqlite3_finalize(st);
		return 0;
	}
	sqlite3_finalize(st);
	if (rc != SQLITE_DONE)
		return db_error(db, "cannot read estimates");
	return kpar_error_set(KPAR_ENOTFOUND, "durations history: no duration known for test '%s'",
			      test);
}

int kpar_history_expire(sqlite3 *db, double before)
{
	static const char sql[] =
		"SAVEPOINT kpar_history_expire;"
		"DELETE FROM durations WHERE test IN"
		" (SELECT test FROM duration_estimates WHERE at < ?1);"
		"DELETE FROM duration_estimates WHERE at < ?1;"
		"RELEASE kpar_history_expire;";
	const char *tail = sql;
	int rc = 0;

	/* sqlite3_exec cannot bind, so step through the statements by hand. */
	while (*tail && rc == 0) {
		sqlite3_stmt *st = NULL;

		if (sqlite3_prepare_v2(db, tail, -1, &st, &tail) != SQLITE_OK) {
			rc = db_error(db, "cannot expire old tests");
			break;
		}
		if (!st)
			break;
		if (sqlite3_bind_parameter_count(st) > 0)
			sqlite3_bind_double(st, 1, before);
		if (sqlite3_step(st) != SQLITE_DONE)
			rc = db_error(db, "cannot expire old tests");
		sqlite3_finalize(st);
	}
	if (rc < 0)
		sqlite3_exec(db, "ROLLBACK TO kpar_history_expire; RELEASE kpar_history_expire",
			     NULL, NULL, NULL);
	return rc;
}

int kpar_history_load(sqlite3 *db, struct kpar_history_known *out)
{
	static const char sql[] = "SELECT test, seconds FROM duration_estimates ORDER BY test";
	sqlite3_stmt *st = NULL;
	size_t cap = 0;
	int rc;

	memset(out, 0, sizeof *out);
	if (sqlite3_prepare_v2(db, sql, -1, &st, NULL) != SQLITE_OK)
		return db_error(db, "cannot read estimates");
	while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
		const char *t = (const char *)sqlite3_column_text(st, 0);

		if (!t)
			continue;
		if (out->n == cap) {
			cap = cap ? 2 * cap : 256;
			out->ids = kpar_xrealloc(out->ids, cap * sizeof *out->ids);
			out->seconds = kpar_xrealloc(out->seconds, cap * sizeof *out->seconds);
		}
		out->ids[out->n] = kpar_xstrdup(t);
		out->seconds[out->n] = sqlite3_column_double(st, 1);
		out->n++;
	}
	sqlite3_finalize(st);
	if (rc != SQLITE_DONE) {
		kpar_history_known_free(out);
		return db_error(db, "cannot read estimates");
	}
	return 0;
}

void kpar_history_known_free(struct kpar_history_known *k)
{
	size_t i;

	for (i = 0; i < k->n; i++)
		free(k->ids[i]);
	free(k->ids);
	free(k->seconds);
	memset(k, 0, sizeof *k);
}
