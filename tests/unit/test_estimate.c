/* test_estimate.c - unit tests of the first-run estimates: which signal
 * each test's estimate comes from, that hints are seconds, that a signal
 * is used only when it ranks the known durations, and that with no signal
 * the plan is name order. */
#include "config.h"

#include <math.h>
#include <unistd.h>

#include "base/buf.h"
#include "base/error.h"
#include "base/fs.h"
#include "run/split.h"
#include "test.h"

static sqlite3 *open_db(void)
{
	sqlite3 *db = NULL;

	if (sqlite3_open(":memory:", &db) != SQLITE_OK || kpar_history_schema(db) < 0)
		abort();
	return db;
}

static char *make_tmpdir(void)
{
	char *dir = kpar_xstrdup("/tmp/kpar-test-estimate-XXXXXX");

	if (!mkdtemp(dir))
		abort();
	return dir;
}

/* Writes a file of size bytes at root/rel, creating directories. */
static void put_file(const char *root, const char *rel, size_t size)
{
	char *path = kpar_fs_join(root, rel), *slash = strrchr(path, '/');
	char *buf = kpar_xcalloc(size ? size : 1, 1);

	*slash = '\0';
	if (kpar_fs_mkdir_p(path, 0755) < 0)
		abort();
	*slash = '/';
	if (kpar_fs_write_atomic(path, buf, size) < 0)
		abort();
	free(buf);
	free(path);
}

static char *write_hints(const char *root, const char *text)
{
	char *path = kpar_fs_join(root, "hints");

	if (kpar_fs_write_atomic(path, text, strlen(text)) < 0)
		abort();
	return path;
}

static int near(double a, double b)
{
	return fabs(a - b) <= 1e-9 * (fabs(b) > 1 ? fabs(b) : 1);
}

/* ---- rank correlation ---- */

KPAR_TEST(rank_correlation)
{
	double x[] = { 1, 2, 3, 4, 5 }, up[] = { 10, 20, 25, 100, 1000 };
	double down[] = { 5, 4, 3, 2, 1 }, flat[] = { 7, 7, 7, 7, 7 };
	double tie[] = { 1, 1, 2, 2, 3 };

	CHECK(near(kpar_rank_correlation(x, up, 5), 1)); /* ranks, not values */
	CHECK(near(kpar_rank_correlation(x, down, 5), -1));
	CHECK(kpar_rank_correlation(x, flat, 5) == 0); /* a constant ranks nothing */
	CHECK(kpar_rank_correlation(x, x, 1) == 0);
	CHECK(kpar_rank_correlation(x, x, 0) == 0);
	/* ties get their mean rank: still a perfect monotone relation */
	CHECK(near(kpar_rank_correlation(tie, tie, 5), 1));
	CHECK(kpar_rank_correlation(x, tie, 5) > 0.9 && kpar_rank_correlation(x, tie, 5) < 1);
}

/* ---- hints are seconds ---- */

KPAR_TEST(hint_keeps_its_seconds)
{
	/* The case: a slow test in a tiny file, hinted, among big
	 * files; no history.  Before, sizes were scaled so the median file
	 * took 1 s and a big file outranked the hinted 10.5 s. */
	char *root = make_tmpdir(), *hints = write_hints(root, "t/t5551-http-fetch.sh 10.5\n");
	char *ids[] = { "t/t0000-basic.sh", "t/t3070-wildmatch.sh", "t/t4014-format-patch.sh",
			"t/t5551-http-fetch.sh" };
	double sec[4];
	enum kpar_est_source src[4];
	struct kpar_estimate_opts o = { root, hints, 0, 0, 0 };
	struct kpar_estimate_report rep;
	size_t i;

	put_file(root, ids[0], 40000);
	put_file(root, ids[1], 300000);
	put_file(root, ids[2], 120000);
	put_file(root, ids[3], 300);
	CHECK_OK(kpar_estimate_ex(NULL, &o, ids, 4, sec, src, &rep));
	CHECK_INT(src[3], KPAR_EST_HINT);
	CHECK(sec[3] == 10.5);
	/* One hint cannot tell whether sizes predict: they are not used. */
	for (i = 0; i < 3; i++) {
		CHECK_INT(src[i], KPAR_EST_DEFAULT);
		CHECK(sec[i] == 1.0);
	}
	CHECK_INT(rep.hinted, 1);
	CHECK_INT(rep.defaulted, 3);
	CHECK(!rep.size.used);
	CHECK_INT(rep.size.tests, 1);

	/* Another default moves the unhinted tests, never the hint. */
	o.default_seconds = 20;
	CHECK_OK(kpar_estimate(NULL, &o, ids, 4, sec, src));
	CHECK(sec[3] == 10.5);
	CHECK(sec[0] == 20);
	kpar_fs_remove_tree(root);
	free(root);
	free(hints);
}

KPAR_TEST(hints_calibrate_sizes)
{
	/* Ten hinted tests whose seconds follow their sizes (2 ms a byte): the
	 * size signal is trusted, and in their seconds, not in units of a
	 * median test. */
	char *root = make_tmpdir(), *hints;
	struct kpar_buf text = KPAR_BUF_INIT;
	char *ids[12];
	double sec[12];
	enum kpar_est_source src[12];
	struct kpar_estimate_opts o = { root, NULL, 0, 0, 0 };
	struct kpar_estimate_report rep;
	size_t i;

	for (i = 0; i < 10; i++) {
		ids[i] = kpar_xasprintf("tests/h%02zu.sh", i);
		put_file(root, ids[i], 100 * (i + 1));
		kpar_buf_printf(&text, "%s %g\n", ids[i], 0.2 * (double)(i + 1));
	}
	ids[10] = kpar_xstrdup("tests/new.sh");
	put_file(root, ids[10], 5000);
	ids[11] = kpar_xstrdup("tests/nofile.sh");
	hints = write_hints(root, text.data);
	o.hints = hints;
	CHECK_OK(kpar_estimate_ex(NULL, &o, ids, 12, sec, src, &rep));
	for (i = 0; i < 10; i++) {
		CHECK_INT(src[i], KPAR_EST_HINT);
		CHECK(near(sec[i], 0.2 * (double)(i + 1)));
	}
	CHECK(rep.size.used);
	CHECK_INT(rep.size.tests, 10);
	CHECK(near(rep.size.rho, 1));
	CHECK_INT(src[10], KPAR_EST_SIZE);
	CHECK(near(sec[10], 10.0)); /* 5000 bytes x 2 ms */
	CHECK_INT(src[11], KPAR_EST_DEFAULT); /* no file: no size */
	CHECK(sec[11] == 1.0);
	for (i = 0; i < 12; i++)
		free(ids[i]);
	kpar_buf_free(&text);
	kpar_fs_remove_tree(root);
	free(root);
	free(hints);
}

KPAR_TEST(bad_hints_line_changes_nothing)
{
	char *root = make_tmpdir();
	char *hints = write_hints(root, "t/a.sh 3\nt/b.sh 4\nt/c.sh three\n");
	char *ids[] = { "t/a.sh" };
	double sec[1] = { -7 };
	enum kpar_est_source src[1] = { KPAR_EST_SIZE };
	struct kpar_estimate_opts o = { root, hints, 0, 0, 0 };

	CHECK_INT(kpar_estimate(NULL, &o, ids, 1, sec, src), KPAR_EINVAL);
	CHECK(strstr(kpar_error_last(), hints) != NULL);
	CHECK(strstr(kpar_error_last(), "line 3") != NULL);
	CHECK(strstr(kpar_error_last(), "'three'") != NULL);
	/* no half-made estimates for the caller to use */
	CHECK(sec[0] == -7);
	CHECK_INT(src[0], KPAR_EST_SIZE);
	kpar_fs_remove_tree(root);
	free(root);
	free(hints);
}

/* ---- the size signal, judged on the tests with history ---- */

/* History for tests k0..k9 (sizes 1000 * (i + 1)) with durations seconds(i),
 * and two tests without history: "new.sh" (20000 bytes) and "pkg" (a
 * directory of 2 files, 6000 bytes). */
static void size_suite(const char *root, sqlite3 *db, double (*seconds)(size_t), char **ids)
{
	size_t i;

	for (i = 0; i < 10; i++) {
		ids[i] = kpar_xasprintf("k%zu.sh", i);
		put_file(root, ids[i], 1000 * (i + 1));
		if (kpar_history_add(db, ids[i], seconds(i), "pass", 1) < 0)
			abort();
	}
	ids[10] = kpar_xstrdup("new.sh");
	put_file(root, "new.sh", 20000);
	ids[11] = kpar_xstrdup("pkg");
	put_file(root, "pkg/a.py", 2500);
	put_file(root, "pkg/sub/b.py", 3500);
}

static double follows_size(size_t i)
{
	return 0.003 * 1000 * (double)(i + 1); /* 3 ms a byte */
}

static double against_size(size_t i)
{
	return 30 - (double)i; /* the bigger, the faster */
}

static void free_ids(char **ids, size_t n)
{
	size_t i;

	for (i = 0; i < n; i++)
		free(ids[i]);
}

KPAR_TEST(sizes_used_when_they_rank_history)
{
	char *root = make_tmpdir(), *ids[12];
	sqlite3 *db = open_db();
	double sec[12];
	enum kpar_est_source src[12];
	struct kpar_estimate_opts o = { root, NULL, 0, 0, 0 };
	struct kpar_estimate_report rep;

	size_suite(root, db, follows_size, ids);
	CHECK_OK(kpar_estimate_ex(db, &o, ids, 12, sec, src, &rep));
	CHECK(rep.size.used);
	CHECK_INT(rep.size.tests, 10);
	CHECK_INT(src[10], KPAR_EST_SIZE);
	CHECK(near(sec[10], 60)); /* 20000 bytes x 3 ms */
	CHECK_INT(src[11], KPAR_EST_SIZE); /* a directory test: all its files */
	CHECK(near(sec[11], 18));
	CHECK_INT(rep.sized, 2);
	CHECK_INT(rep.history, 10);
	free_ids(ids, 12);
	sqlite3_close(db);
	kpar_fs_remove_tree(root);
	free(root);
}

KPAR_TEST(sizes_dropped_when_they_misrank_history)
{
	char *root = make_tmpdir(), *ids[12];
	sqlite3 *db = open_db();
	double sec[12];
	enum kpar_est_source src[12];
	struct kpar_estimate_opts o = { root, NULL, 0, 0, 0 };
	struct kpar_estimate_report rep;

	size_suite(root, db, against_size, ids);
	CHECK_OK(kpar_estimate_ex(db, &o, ids, 12, sec, src, &rep));
	CHECK(!rep.size.used);
	CHECK(near(rep.size.rho, -1));
	/* the default: high among the known durations (21..30), so that
	 * what nobody can judge starts early */
	CHECK_INT(src[10], KPAR_EST_DEFAULT);
	CHECK(sec[10] == 29);
	CHECK_INT(src[11], KPAR_EST_DEFAULT);
	CHECK(sec[11] == 29);
	CHECK_INT(rep.defaulted, 2);

	/* Asked not to judge (what bench/split compares), it would use them. */
	o.flags = KPAR_ESTIMATE_UNJUDGED;
	CHECK_OK(kpar_estimate_ex(db, &o, ids, 12, sec, src, &rep));
	CHECK_INT(src[10], KPAR_EST_SIZE);
	free_ids(ids, 12);
	sqlite3_close(db);
	kpar_fs_remove_tree(root);
	free(root);
}

KPAR_TEST(sizes_dropped_when_they_start_the_slowest_last)
{
	/* git's suite in small: durations mostly grow with size (rank
	 * correlation 0.7), but the two slowest scripts are the two smallest
	 * files (they source a shared library).  Size order would start them
	 * last; name order starts them first.  The replay sees it. */
	char *root = make_tmpdir(), *ids[41];
	sqlite3 *db = open_db();
	double sec[41];
	enum kpar_est_source src[41];
	struct kpar_estimate_opts o = { root, NULL, 0, 8, 0 };
	struct kpar_estimate_report rep;
	size_t i;

	for (i = 0; i < 40; i++) {
		ids[i] = kpar_xasprintf("t/k%02zu.sh", i);
		put_file(root, ids[i], 1000 * (i + 1));
		CHECK_OK(kpar_history_add(db, ids[i], i < 2 ? 60 : 1 + 0.2 * (double)(i - 2),
					  "pass", 1));
	}
	ids[40] = kpar_xstrdup("t/new.sh");
	put_file(root, ids[40], 30000);
	CHECK_OK(kpar_estimate_ex(db, &o, ids, 41, sec, src, &rep));
	CHECK_INT(rep.size.tests, 40);
	CHECK(rep.size.rho > 0.7);
	CHECK(rep.size.replay > 1.2);
	CHECK(!rep.size.used);
	CHECK_INT(src[40], KPAR_EST_DEFAULT);
	free_ids(ids, 41);
	sqlite3_close(db);
	kpar_fs_remove_tree(root);
	free(root);
}

KPAR_TEST(sizes_all_equal_rank_nothing)
{
	char *root = make_tmpdir(), *ids[12];
	sqlite3 *db = open_db();
	double sec[12];
	enum kpar_est_source src[12];
	struct kpar_estimate_opts o = { root, NULL, 0, 0, 0 };
	struct kpar_estimate_report rep;
	size_t i;

	size_suite(root, db, follows_size, ids);
	for (i = 0; i < 10; i++)
		put_file(root, ids[i], 4096); /* a generated suite: one size */
	CHECK_OK(kpar_estimate_ex(db, &o, ids, 12, sec, src, &rep));
	CHECK(!rep.size.used);
	CHECK(rep.size.rho == 0);
	CHECK_INT(src[10], KPAR_EST_DEFAULT);
	free_ids(ids, 12);
	sqlite3_close(db);
	kpar_fs_remove_tree(root);
	free(root);
}

KPAR_TEST(sizes_need_enough_history)
{
	/* Four known tests prove nothing, however well they line up. */
	char *root = make_tmpdir(), *ids[12];
	sqlite3 *db = open_db();
	double sec[5];
	enum kpar_est_source src[5];
	struct kpar_estimate_opts o = { root, NULL, 0, 0, 0 };
	struct kpar_estimate_report rep;
	char *few[5];

	size_suite(root, db, follows_size, ids);
	few[0] = ids[0];
	few[1] = ids[3];
	few[2] = ids[6];
	few[3] = ids[9];
	few[4] = ids[10];
	CHECK_OK(kpar_estimate_ex(db, &o, few, 5, sec, src, &rep));
	CHECK_INT(rep.size.tests, 4);
	CHECK(!rep.size.used);
	CHECK_INT(src[4], KPAR_EST_DEFAULT);
	free_ids(ids, 12);
	sqlite3_close(db);
	kpar_fs_remove_tree(root);
	free(root);
}

KPAR_TEST(first_run_blind_is_name_order)
{
	/* No history, no hints, files of every size: nothing can be judged,
	 * every test gets the default, and the plan is name order. */
	char *root = make_tmpdir();
	char *ids[40];
	double sec[40];
	enum kpar_est_source src[40];
	size_t bof[40], i, nb;
	struct kpar_estimate_opts o = { root, NULL, 0, 0, 0 };

	for (i = 0; i < 40; i++) {
		/* input order not sorted, sizes unrelated to names */
		ids[i] = kpar_xasprintf("t/t%04zu.sh", (i * 17) % 40);
		put_file(root, ids[i], 100 + (i * 7919) % 5000);
	}
	CHECK_OK(kpar_estimate(NULL, &o, ids, 40, sec, src));
	for (i = 0; i < 40; i++) {
		CHECK_INT(src[i], KPAR_EST_DEFAULT);
		CHECK(sec[i] == 1.0);
	}
	/* Unjudged (the old first run, which bench/split compares): sizes
	 * in units of the median file, which takes the default. */
	o.flags = KPAR_ESTIMATE_UNJUDGED;
	{
		double usec[40];
		enum kpar_est_source usrc[40];
		size_t below = 0;

		CHECK_OK(kpar_estimate(NULL, &o, ids, 40, usec, usrc));
		for (i = 0; i < 40; i++) {
			CHECK_INT(usrc[i], KPAR_EST_SIZE);
			below += usec[i] < 1.0;
		}
		CHECK_INT(below, 20);
	}
	nb = kpar_split_auto(ids, sec, src, 40, 16, 2, bof);
	CHECK(nb > 2 && nb <= 16);
	/* bucket numbers follow the names */
	for (i = 0; i < 40; i++) {
		size_t j;

		for (j = 0; j < 40; j++)
			if (strcmp(ids[i], ids[j]) < 0)
				CHECK(bof[i] <= bof[j]);
	}
	for (i = 0; i < 40; i++)
		free(ids[i]);
	kpar_fs_remove_tree(root);
	free(root);
}

/* ---- the name signal, judged by leaving each known test out ---- */

static void family_history(sqlite3 *db, int predicts)
{
	size_t i;

	/* 6 tests in each of net/ and unit/; the families predict when net/
	 * is slow and unit/ fast, not when each holds both kinds. */
	for (i = 0; i < 6; i++) {
		char *a = kpar_xasprintf("tests/net/n%zu.sh", i);
		char *b = kpar_xasprintf("tests/unit/u%zu.sh", i);
		double slow = 50, fast = 1;

		if (kpar_history_add(db, a, predicts || i % 2 ? slow : fast, "pass", 1) < 0 ||
		    kpar_history_add(db, b, predicts || i % 2 ? fast : slow, "pass", 1) < 0)
			abort();
		free(a);
		free(b);
	}
}

KPAR_TEST(name_family_judged)
{
	sqlite3 *db = open_db();
	char *ids[] = { "tests/net/new.sh", "tests/unit/new.sh", "tests/other.sh" };
	double sec[3];
	enum kpar_est_source src[3];
	struct kpar_estimate_report rep;

	family_history(db, 1);
	CHECK_OK(kpar_estimate_ex(db, NULL, ids, 3, sec, src, &rep));
	CHECK(rep.name.used);
	CHECK_INT(rep.name.tests, 12);
	CHECK(near(rep.name.rho, 1));
	CHECK_INT(src[0], KPAR_EST_NAME);
	CHECK(sec[0] == 50);
	CHECK_INT(src[1], KPAR_EST_NAME);
	CHECK(sec[1] == 1);
	CHECK_INT(src[2], KPAR_EST_DEFAULT); /* shares only "tests/" */
	sqlite3_close(db);

	db = open_db();
	family_history(db, 0);
	CHECK_OK(kpar_estimate_ex(db, NULL, ids, 3, sec, src, &rep));
	/* each test's relatives are mostly of the other kind */
	CHECK(!rep.name.used);
	CHECK(near(rep.name.rho, -1));
	CHECK_INT(src[0], KPAR_EST_DEFAULT);
	CHECK_INT(src[1], KPAR_EST_DEFAULT);
	CHECK(sec[0] == sec[1]);
	sqlite3_close(db);
}

KPAR_TEST(sources_in_order)
{
	/* History beats a hint; a hint beats every guess; the name beats the
	 * size; with neither, the default. */
	char *root = make_tmpdir(), *hints = write_hints(root, "tests/net/n0.sh 99\ntests/slow/* 120\n");
	sqlite3 *db = open_db();
	char *ids[] = { "tests/net/n0.sh", "tests/slow/big.sh", "tests/net/new.sh", "tests/z.sh",
			"tests/nofile.sh" };
	double sec[5];
	enum kpar_est_source src[5];
	struct kpar_estimate_opts o = { root, hints, 0, 0, 0 };
	size_t i;

	family_history(db, 1);
	/* sizes that follow the known durations, so the size signal is trusted */
	for (i = 0; i < 6; i++) {
		char *a = kpar_xasprintf("tests/net/n%zu.sh", i), *b = kpar_xasprintf("tests/unit/u%zu.sh", i);

		put_file(root, a, 1000 * (50 + i));
		put_file(root, b, 1000 * (1 + i));
		free(a);
		free(b);
	}
	put_file(root, "tests/z.sh", 7000);
	put_file(root, "tests/slow/big.sh", 10);
	{
		/* the known tests must be in the list to judge the sizes */
		char *all[16];
		double s2[16];
		enum kpar_est_source r2[16];

		for (i = 0; i < 5; i++)
			all[i] = ids[i];
		for (i = 1; i < 6; i++)
			all[4 + i] = kpar_xasprintf("tests/net/n%zu.sh", i);
		for (i = 0; i < 6; i++)
			all[10 + i] = kpar_xasprintf("tests/unit/u%zu.sh", i);
		CHECK_OK(kpar_estimate(db, &o, all, 16, s2, r2));
		memcpy(sec, s2, sizeof sec);
		memcpy(src, r2, sizeof src);
		for (i = 5; i < 16; i++)
			free(all[i]);
	}
	CHECK_INT(src[0], KPAR_EST_HISTORY);
	CHECK(sec[0] == 50);
	CHECK_INT(src[1], KPAR_EST_HINT);
	CHECK(sec[1] == 120);
	CHECK_INT(src[2], KPAR_EST_NAME);
	CHECK(sec[2] == 50);
	CHECK_INT(src[3], KPAR_EST_SIZE);
	CHECK(sec[3] > 1 && sec[3] < 50);
	CHECK_INT(src[4], KPAR_EST_DEFAULT);
	sqlite3_close(db);
	kpar_fs_remove_tree(root);
	free(root);
	free(hints);
}

/* ---- the ordered split ---- */

KPAR_TEST(split_ordered_runs)
{
	size_t n = 300, i, nb, *bof = kpar_xmalloc(n * sizeof *bof), *bof2 = kpar_xmalloc(n * sizeof *bof2);
	char **ids = kpar_xmalloc(n * sizeof *ids), **rev = kpar_xmalloc(n * sizeof *rev);
	double *sec = kpar_xmalloc(n * sizeof *sec), *srev = kpar_xmalloc(n * sizeof *srev);
	double tot[64] = { 0 };
	size_t cnt[64] = { 0 };

	for (i = 0; i < n; i++) {
		ids[i] = kpar_xasprintf("t/t%04zu.sh", i);
		sec[i] = 1;
	}
	sec[250] = 40; /* one hinted test */
	for (i = 0; i < n; i++) {
		rev[i] = ids[n - 1 - i];
		srev[i] = sec[n - 1 - i];
	}
	nb = kpar_split_ordered(ids, sec, n, 64, 8, bof);
	CHECK(nb > 8 && nb <= 64);
	CHECK_INT(kpar_split_ordered(rev, srev, n, 64, 8, bof2), nb);
	for (i = 0; i < n; i++) {
		CHECK_INT(bof2[n - 1 - i], bof[i]); /* independent of input order */
		tot[bof[i]] += sec[i];
		cnt[bof[i]]++;
	}
	CHECK_INT(bof[250], 0); /* the hinted test goes first */
	for (i = 0; i < nb; i++)
		CHECK(cnt[i] > 0);
	/* the others in name order, in runs that shrink to the end */
	for (i = 1; i < n; i++)
		if (i != 250 && i - 1 != 250)
			CHECK(bof[i] >= bof[i - 1]);
	CHECK(tot[nb - 1] < tot[1] / 4);
	/* fewer tests than buckets: one each */
	CHECK_INT(kpar_split_ordered(ids, sec, 5, 64, 8, bof), 5);
	for (i = 0; i < 5; i++)
		CHECK_INT(bof[i], i);
	/* zero estimates count as equal; no buckets asked means one */
	for (i = 0; i < n; i++)
		sec[i] = 0;
	nb = kpar_split_ordered(ids, sec, n, 64, 8, bof);
	CHECK(nb > 8 && bof[n - 1] == nb - 1 && bof[0] == 0);
	CHECK_INT(kpar_split_ordered(ids, sec, n, 0, 0, bof), 1);
	CHECK_INT(kpar_split_ordered(ids, sec, 0, 8, 2, bof), 0);
	for (i = 0; i < n; i++)
		free(ids[i]);
	free(ids);
	free(rev);
	free(sec);
	free(srev);
	free(bof);
	free(bof2);
}

KPAR_TEST(split_auto_uses_lpt_with_history)
{
	char *ids[] = { "a", "b", "c", "d" };
	double sec[] = { 1, 9, 1, 1 };
	enum kpar_est_source blind[] = { KPAR_EST_DEFAULT, KPAR_EST_HINT, KPAR_EST_DEFAULT,
					 KPAR_EST_DEFAULT };
	enum kpar_est_source known[] = { KPAR_EST_HISTORY, KPAR_EST_HISTORY, KPAR_EST_DEFAULT,
					 KPAR_EST_DEFAULT };
	size_t bof[4], ref[4], i, nb;

	nb = kpar_split_auto(ids, sec, known, 4, 2, 0, bof);
	CHECK_INT(kpar_split_ex(ids, sec, 4, 2, 0, 0, ref), nb);
	for (i = 0; i < 4; i++)
		CHECK_INT(bof[i], ref[i]);
	/* b alone, a c d together: LPT's answer either way here */
	CHECK(bof[0] == bof[2] && bof[2] == bof[3] && bof[1] != bof[0]);
	nb = kpar_split_auto(ids, sec, blind, 4, 3, 1, bof);
	CHECK_INT(bof[1], 0); /* hinted first, then a, c, d in order */
	CHECK(bof[0] <= bof[2] && bof[2] <= bof[3]);
}

KPAR_TEST_MAIN(
	KPAR_CASE(rank_correlation),
	KPAR_CASE(hint_keeps_its_seconds),
	KPAR_CASE(hints_calibrate_sizes),
	KPAR_CASE(bad_hints_line_changes_nothing),
	KPAR_CASE(sizes_used_when_they_rank_history),
	KPAR_CASE(sizes_dropped_when_they_misrank_history),
	KPAR_CASE(sizes_dropped_when_they_start_the_slowest_last),
	KPAR_CASE(sizes_all_equal_rank_nothing),
	KPAR_CASE(sizes_need_enough_history),
	KPAR_CASE(first_run_blind_is_name_order),
	KPAR_CASE(name_family_judged),
	KPAR_CASE(sources_in_order),
	KPAR_CASE(split_ordered_runs),
	KPAR_CASE(split_auto_uses_lpt_with_history))
