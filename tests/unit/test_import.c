/* test_import.c - durations from JUnit XML and prove state into the history:
 * the dialects, bad files, name mapping, and measured over imported. */
#include "config.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <sqlite3.h>

#include "base/buf.h"
#include "base/digest.h"
#include "base/error.h"
#include "base/fs.h"
#include "run/import.h"
#include "run/split.h"
#include "test.h"

static char *tmpdir;

static sqlite3 *open_db(void)
{
	sqlite3 *db = NULL;

	if (sqlite3_open(":memory:", &db) != SQLITE_OK || kpar_history_schema(db) < 0)
		abort();
	return db;
}

static long long count_rows(sqlite3 *db, const char *sql)
{
	sqlite3_stmt *st = NULL;
	long long n = -1;

	if (sqlite3_prepare_v2(db, sql, -1, &st, NULL) == SQLITE_OK && sqlite3_step(st) == SQLITE_ROW)
		n = sqlite3_column_int64(st, 0);
	sqlite3_finalize(st);
	return n;
}

/* Writes text to tmpdir/name; returns the path (malloc'd). */
static char *put(const char *name, const char *text)
{
	char *path = kpar_fs_join(tmpdir, name);

	if (kpar_fs_write_atomic(path, text, strlen(text)) < 0)
		abort();
	return path;
}

static void ids_of(struct kpar_strv *ids, const char *const *v)
{
	for (; *v; v++)
		kpar_strv_push(ids, *v);
	kpar_strv_sort(ids);
}

static double estimate(sqlite3 *db, const char *id)
{
	double s = -1;

	if (kpar_history_get(db, id, &s, NULL) < 0) {
		kpar_error_clear();
		return -1;
	}
	return s;
}

static int import1(sqlite3 *db, const char *path, const struct kpar_strv *ids,
		   struct kpar_import_stats *st)
{
	char *p[] = { (char *)path };

	return kpar_import_files(db, p, 1, ids, st);
}

KPAR_TEST(junit_dialects)
{
	static const char *const list[] = { "suite.Mod.test_one", "tests/net/http.py", "tests/io.sh",
					    "solo", NULL };
	static const char xml[] =
		"\xef\xbb\xbf<?xml version=\"1.0\"?>\n"
		"<testsuites><testsuite name=\"outer\"><testsuite name=\"inner\">\n"
		/* classname.name is an id (batch mode's ids) */
		"<testcase classname=\"suite.Mod\" name=\"test_one\" time=\"2.5\"/>\n"
		/* a module's cases (pytest): summed onto the file's id */
		"<testcase classname=\"tests.net.http.TestGet\" name=\"test_a\" time=\"1\"/>\n"
		"<testcase classname=\"tests.net.http.TestGet\" name=\"test_b\" time=\"2\">"
		"<failure message=\"no\">trace</failure><system-out>lots</system-out></testcase>\n"
		/* a retry of test_a: counted once, its last time */
		"<testcase classname=\"tests.net.http.TestGet\" name=\"test_a\" time=\"4\"/>\n"
		"</testsuite></testsuite>\n"
		"<testsuite name=\"kpar\">\n"
		/* kpar's own report: classname kpar, the id as the name */
		"<testcase name=\"tests/io.sh\" classname=\"kpar\" time=\"7.25\"><properties>"
		"<property name=\"bucket\" value=\"1\"/></properties></testcase>\n"
		"<testcase name=\"solo\" time=\"oops\"/>\n"
		"<testcase name=\"gone\" time=\"3\"/>\n"
		"</testsuite></testsuites>\n";
	struct kpar_strv ids = KPAR_STRV_INIT;
	struct kpar_import_stats st;
	sqlite3 *db = open_db();
	char *path = put("dialects.xml", xml);

	ids_of(&ids, list);
	CHECK_OK(import1(db, path, &ids, &st));
	CHECK_STR(st.format, "junit");
	CHECK_INT(st.read, 6);
	CHECK_INT(st.untimed, 1);
	CHECK_INT(st.matched, 5);
	CHECK_INT(st.unmatched, 1);
	CHECK_INT(st.ambiguous, 0);
	CHECK_INT(st.tests, 3);
	CHECK_INT(st.stored, 3);
	CHECK(estimate(db, "suite.Mod.test_one") == 2.5);
	CHECK(estimate(db, "tests/net/http.py") == 6);   /* 4 (last test_a) + 2 */
	CHECK(estimate(db, "tests/io.sh") == 7.25);
	CHECK(estimate(db, "solo") == -1);              /* no valid time: nothing */
	CHECK(estimate(db, "gone") == -1);              /* not a test of the list */
	CHECK_INT(count_rows(db, "SELECT count(*) FROM duration_estimates WHERE imported = 1"), 3);
	sqlite3_close(db);
	kpar_strv_free(&ids);
	free(path);
}

/* A report of 200,000 cases (about 12 MB) is read in chunks. */
KPAR_TEST(junit_huge)
{
	static const char *const list[] = { "big/a.t", "big/b.t", NULL };
	struct kpar_strv ids = KPAR_STRV_INIT;
	struct kpar_import_stats st;
	struct kpar_buf b = KPAR_BUF_INIT;
	sqlite3 *db = open_db();
	char *path;
	size_t i;

	ids_of(&ids, list);
	kpar_buf_puts(&b, "<testsuites><testsuite>\n");
	for (i = 0; i < 200000; i++)
		kpar_buf_printf(&b, "<testcase classname=\"big.%s\" name=\"case%zu\" time=\"0.001\"/>\n",
				i % 2 ? "b" : "a", i);
	kpar_buf_puts(&b, "</testsuite></testsuites>\n");
	path = put("huge.xml", b.data);
	CHECK_OK(import1(db, path, &ids, &st));
	CHECK_INT(st.read, 200000);
	CHECK_INT(st.matched, 200000);
	CHECK(estimate(db, "big/a.t") > 99.99 && estimate(db, "big/a.t") < 100.01);
	kpar_buf_free(&b);
	sqlite3_close(db);
	kpar_strv_free(&ids);
	free(path);
}

/* Bad files: an error naming the file, and nothing of a batch imported. */
KPAR_TEST(bad_files_change_nothing)
{
	static const char *const list[] = { "a", "b", NULL };
	static const struct {
		const char *name, *text, *says;
	} bad[] = {
		{ "cut.xml", "<testsuite><testcase name=\"a\" time=\"1\"/>", "no element found" },
		{ "text.txt", "this is not a report\n", "neither JUnit XML nor a prove state" },
		{ "notests.yml", "---\ngeneration: 1\nversion: 1\n", "no 'tests' mapping" },
		{ "broken.yml", "tests: [unclosed\n", "neither JUnit XML nor a prove state" },
		{ "empty.xml", "", "is empty" },
		{ "noname.xml", "<testsuite><testcase time=\"1\"/></testsuite>", "without a name" },
		{ "entity.xml", "<!DOCTYPE x [<!ENTITY e \"boom\">]><testsuite/>", "entity" },
	};
	struct kpar_strv ids = KPAR_STRV_INIT;
	char *good = put("good.xml", "<testsuite><testcase name=\"a\" time=\"5\"/></testsuite>");
	sqlite3 *db = open_db();
	size_t i;

	ids_of(&ids, list);
	for (i = 0; i < sizeof bad / sizeof bad[0]; i++) {
		char *p[2] = { good, put(bad[i].name, bad[i].text) };
		int rc = kpar_import_files(db, p, 2, &ids, NULL);

		CHECK(rc < 0);
		if (!strstr(kpar_error_last(), bad[i].name) || !strstr(kpar_error_last(), bad[i].says))
			fprintf(stderr, "%s: %s\n", bad[i].name, kpar_error_last());
		CHECK(strstr(kpar_error_last(), bad[i].name) != NULL);
		CHECK(strstr(kpar_error_last(), bad[i].says) != NULL);
		CHECK_INT(count_rows(db, "SELECT count(*) FROM durations"), 0);
		CHECK_INT(count_rows(db, "SELECT count(*) FROM history_imports"), 0);
		free(p[1]);
	}
	{
		char *missing = kpar_fs_join(tmpdir, "missing.xml");
		CHECK(import1(db, missing, &ids, NULL) < 0);
		CHECK(strstr(kpar_error_last(), "missing.xml") != NULL);
		free(missing);
	}
	CHECK_OK(import1(db, good, &ids, NULL));
	CHECK(estimate(db, "a") == 5);
	sqlite3_close(db);
	kpar_strv_free(&ids);
	free(good);
}

/* What prove --state=save writes (prove 3.x). */
KPAR_TEST(prove_state)
{
	static const char prove[] =
		"---\n"
		"generation: 3\n"
		"last_run_time: 1795995594.64165\n"
		"tests:\n"
		"  t/a.t:\n"
		"    elapsed: 0.203478097915649\n"
		"    gen: 3\n"
		"    last_pass_time: 1795995594.63774\n"
		"    last_result: 0\n"
		"    last_run_time: 1795995594.63774\n"
		"    last_todo: 0\n"
		"    seq: 1\n"
		"    total_passes: 3\n"
		"  t/b.t:\n"
		"    elapsed: 12.5\n"
		"    gen: 3\n"
		"    last_fail_time: 1795995594.64121\n"
		"    last_result: 2\n"
		"    seq: 2\n"
		"    total_failures: 1\n"
		"  t/never.t:\n"
		"    gen: 1\n"
		"  xt/other.t:\n"
		"    elapsed: 3\n"
		"    last_result: 0\n"
		"version: 1\n"
		"...\n";
	static const char *const list[] = { "t/a.t", "t/b.t", "t/never.t", NULL };
	struct kpar_strv ids = KPAR_STRV_INIT;
	struct kpar_import_stats st;
	char *path = put(".prove", prove);
	sqlite3 *db = open_db();

	ids_of(&ids, list);
	CHECK_OK(import1(db, path, &ids, &st));
	CHECK_STR(st.format, "prove");
	CHECK_INT(st.read, 3);
	CHECK_INT(st.untimed, 1);
	CHECK_INT(st.matched, 2);
	CHECK_INT(st.unmatched, 1);
	CHECK(estimate(db, "t/a.t") > 0.2034 && estimate(db, "t/a.t") < 0.2035);
	CHECK(estimate(db, "t/b.t") == 12.5);
	CHECK_INT(count_rows(db, "SELECT count(*) FROM durations WHERE test = 't/b.t'"
			     " AND status = 'fail'"), 1);
	CHECK(estimate(db, "t/never.t") == -1);
	sqlite3_close(db);
	kpar_strv_free(&ids);
	free(path);
}

/* automake's test-driver keeps no durations: recognised, nothing taken. */
KPAR_TEST(automake_gives_nothing)
{
	static const char *const list[] = { "tests/a.sh", NULL };
	struct kpar_strv ids = KPAR_STRV_INIT;
	struct kpar_import_stats st;
	char *trs = put("a.sh.trs", ":test-result: PASS\n:global-test-result: PASS\n"
			":recheck: no\n:copy-in-global-log: no\n");
	char *log = put("a.sh.log", "some output\nPASS tests/a.sh (exit status: 0)\n");
	sqlite3 *db = open_db();

	ids_of(&ids, list);
	CHECK_OK(import1(db, trs, &ids, &st));
	CHECK_STR(st.format, "automake");
	CHECK_INT(st.read, 0);
	CHECK_OK(import1(db, log, &ids, &st));
	CHECK_STR(st.format, "automake");
	CHECK_INT(count_rows(db, "SELECT count(*) FROM durations"), 0);
	sqlite3_close(db);
	kpar_strv_free(&ids);
	free(trs);
	free(log);
}

KPAR_TEST(name_mapping)
{
	static const char *const list[] = {
		"tests/unit/test_io.py",   /* by path: tests.unit.test_io... */
		"lib/x/runner.sh",         /* by unique basename */
		"a/dup.sh", "b/dup.sh",    /* basename shared: ambiguous */
		"pkg/file_attr.py",        /* pytest's file attribute */
		"exact id with spaces",
		NULL };
	static const char xml[] =
		"<testsuite>"
		"<testcase classname=\"tests.unit.test_io.TestRead\" name=\"test_small\" time=\"1.5\"/>"
		"<testcase classname=\"tests.unit.test_io\" name=\"test_mod\" time=\"0.5\"/>"
		"<testcase name=\"runner\" time=\"4\"/>"
		"<testcase name=\"dup\" time=\"9\"/>"
		"<testcase classname=\"x\" name=\"test_f\" file=\"pkg/file_attr.py\" time=\"3\"/>"
		"<testcase name=\"exact id with spaces\" time=\"8\"/>"
		"<testcase classname=\"nowhere.Mod\" name=\"t\" time=\"1\"/>"
		"</testsuite>";
	struct kpar_strv ids = KPAR_STRV_INIT;
	struct kpar_import_stats st;
	char *path = put("map.xml", xml);
	sqlite3 *db = open_db();

	ids_of(&ids, list);
	CHECK_OK(import1(db, path, &ids, &st));
	CHECK_INT(st.read, 7);
	CHECK_INT(st.matched, 5);
	CHECK_INT(st.ambiguous, 1);
	CHECK_INT(st.unmatched, 1);
	CHECK(estimate(db, "tests/unit/test_io.py") == 2);
	CHECK(estimate(db, "lib/x/runner.sh") == 4);
	CHECK(estimate(db, "a/dup.sh") == -1);
	CHECK(estimate(db, "b/dup.sh") == -1);
	CHECK(estimate(db, "pkg/file_attr.py") == 3);
	CHECK(estimate(db, "exact id with spaces") == 8);
	sqlite3_close(db);
	kpar_strv_free(&ids);
	free(path);
}

/* A duration kpar measured outranks any import, in either order. */
KPAR_TEST(measured_outranks_imported)
{
	static const char *const list[] = { "m", "i", NULL };
	struct kpar_strv ids = KPAR_STRV_INIT;
	struct kpar_import_stats st;
	char *r1 = put("r1.xml", "<testsuite><testcase name=\"m\" time=\"50\"/>"
		       "<testcase name=\"i\" time=\"30\"/></testsuite>");
	char *r2 = put("r2.xml", "<testsuite><testcase name=\"i\" time=\"10\"/></testsuite>");
	sqlite3 *db = open_db();
	size_t n;
	char *id_v[] = { "m", "i" };

	ids_of(&ids, list);
	CHECK_OK(kpar_history_add(db, "m", 2, "pass", 100));
	CHECK_OK(import1(db, r1, &ids, &st));
	CHECK_INT(st.tests, 2);
	CHECK_INT(st.stored, 1);                 /* m kept its measured 2 s */
	CHECK(estimate(db, "m") == 2);
	CHECK(estimate(db, "i") == 30);
	CHECK_OK(kpar_history_measured(db, id_v, 2, &n));
	CHECK_INT(n, 1);
	/* the same report again counts once; another report is another sample */
	CHECK_OK(import1(db, r1, &ids, &st));
	CHECK_INT(count_rows(db, "SELECT count(*) FROM durations WHERE test = 'i'"), 1);
	CHECK_OK(import1(db, r2, &ids, &st));
	CHECK_INT(count_rows(db, "SELECT count(*) FROM durations WHERE test = 'i'"), 2);
	CHECK(estimate(db, "i") == 20);
	/* then kpar measures i: its imported samples go */
	CHECK_OK(kpar_history_add(db, "i", 1, "pass", 200));
	CHECK(estimate(db, "i") == 1);
	CHECK_INT(count_rows(db, "SELECT count(*) FROM durations WHERE test = 'i'"), 1);
	CHECK_INT(count_rows(db, "SELECT imported FROM duration_estimates WHERE test = 'i'"), 0);
	CHECK_OK(kpar_history_measured(db, id_v, 2, &n));
	CHECK_INT(n, 2);
	CHECK_OK(import1(db, r2, &ids, &st));
	CHECK_INT(st.stored, 0);
	CHECK(estimate(db, "i") == 1);
	sqlite3_close(db);
	kpar_strv_free(&ids);
	free(r1);
	free(r2);
}

/* The plan's automatic import: once per file content, only while some
 * test lacks durations of its own; the import state changes with it. */
KPAR_TEST(import_if_new)
{
	static const char *const list[] = { "x", "y", NULL };
	struct kpar_strv ids = KPAR_STRV_INIT, paths = KPAR_STRV_INIT, digests = KPAR_STRV_INIT;
	struct kpar_buf s0 = KPAR_BUF_INIT, s1 = KPAR_BUF_INIT, s2 = KPAR_BUF_INIT;
	char *r = put("auto.xml", "<testsuite><testcase name=\"x\" time=\"9\"/></testsuite>");
	char *pattern = kpar_fs_join(tmpdir, "auto.*");
	sqlite3 *db = open_db();
	size_t n;

	ids_of(&ids, list);
	CHECK_OK(kpar_import_expand(pattern, NULL, &paths));
	CHECK_INT(paths.n, 1);
	CHECK_STR(paths.v[0], r);
	{
		char d[KPAR_DIGEST_STR];
		CHECK_OK(kpar_digest_file(r, d, NULL));
		kpar_strv_push(&digests, d);
	}
	CHECK_OK(kpar_import_state(db, &s0));
	CHECK_INT(s0.len, 0);
	CHECK_OK(kpar_import_if_new(db, &paths, &digests, &ids, &n));
	CHECK_INT(n, 1);
	CHECK(estimate(db, "x") == 9);
	CHECK_OK(kpar_import_state(db, &s1));
	CHECK(s1.len > 0);
	CHECK_OK(kpar_import_if_new(db, &paths, &digests, &ids, &n));
	CHECK_INT(n, 0);
	CHECK_OK(kpar_import_state(db, &s2));
	CHECK_STR(s2.data, s1.data);
	/* a glob matching nothing is no error; a missing plain file is */
	kpar_strv_free(&paths);
	CHECK_OK(kpar_import_expand("nothing-*.xml", tmpdir, &paths));
	CHECK_INT(paths.n, 0);
	CHECK(kpar_import_expand("absent.xml", tmpdir, &paths) < 0);
	CHECK(strstr(kpar_error_last(), "absent.xml") != NULL);
	kpar_buf_free(&s0);
	kpar_buf_free(&s1);
	kpar_buf_free(&s2);
	kpar_strv_free(&paths);
	kpar_strv_free(&digests);
	kpar_strv_free(&ids);
	sqlite3_close(db);
	free(r);
	free(pattern);
}

/* A state database from before imports gets the new columns. */
KPAR_TEST(old_schema_upgraded)
{
	sqlite3 *db = NULL;

	CHECK(sqlite3_open(":memory:", &db) == SQLITE_OK);
	CHECK(sqlite3_exec(db,
			   "CREATE TABLE durations (test TEXT NOT NULL, at REAL NOT NULL,"
			   " seconds REAL NOT NULL, status TEXT NOT NULL);"
			   "CREATE TABLE duration_estimates (test TEXT PRIMARY KEY, seconds REAL NOT NULL,"
			   " samples INTEGER NOT NULL, at REAL NOT NULL) WITHOUT ROWID;"
			   "INSERT INTO durations VALUES ('old', 1, 4, 'pass');"
			   "INSERT INTO duration_estimates VALUES ('old', 4, 1, 1);",
			   NULL, NULL, NULL) == SQLITE_OK);
	{
		/* read as it stands (make -q's read-only check): no imports */
		struct kpar_buf b = KPAR_BUF_INIT;
		CHECK_OK(kpar_import_state(db, &b));
		CHECK_INT(b.len, 0);
		kpar_buf_free(&b);
	}
	CHECK_OK(kpar_history_schema(db));
	CHECK_OK(kpar_history_schema(db));
	CHECK(estimate(db, "old") == 4);
	CHECK_INT(count_rows(db, "SELECT count(*) FROM durations WHERE source = ''"), 1);
	CHECK_INT(count_rows(db, "SELECT count(*) FROM duration_estimates WHERE imported = 0"), 1);
	sqlite3_close(db);
}

static void cleanup(void)
{
	kpar_fs_remove_tree(tmpdir);
	free(tmpdir);
}

static void setup(void) __attribute__((constructor));
static void setup(void)
{
	tmpdir = kpar_xstrdup("/tmp/kpar-test-import-XXXXXX");
	if (!mkdtemp(tmpdir))
		abort();
	atexit(cleanup);
}

KPAR_TEST_MAIN(KPAR_CASE(junit_dialects), KPAR_CASE(junit_huge), KPAR_CASE(bad_files_change_nothing),
	       KPAR_CASE(prove_state), KPAR_CASE(automake_gives_nothing), KPAR_CASE(name_mapping),
	       KPAR_CASE(measured_outranks_imported), KPAR_CASE(import_if_new),
	       KPAR_CASE(old_schema_upgraded))
