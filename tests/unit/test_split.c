/* test_split.c - unit tests of the durations history, the estimates and the split. */
#include "config.h"

#include <fcntl.h>
#include <math.h>
#include <stdint.h>
#include <unistd.h>

#include "base/buf.h"
#include "base/error.h"
#include "base/fs.h"
#include "run/split.h"
#include "test.h"

/* A small deterministic PRNG (splitmix64), so the tests need no seed. */
static uint64_t rng_state;

static uint64_t rng_next(void)
{
	uint64_t z = (rng_state += 0x9e3779b97f4a7c15ULL);

	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
	z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
	return z ^ (z >> 31);
}

/* perm = a random permutation of 0..n-1 (Fisher-Yates). */
static void shuffle(size_t *perm, size_t n)
{
	size_t i;

	for (i = 0; i < n; i++)
		perm[i] = i;
	for (i = n - 1; i > 0; i--) {
		size_t j = rng_next() % (i + 1), t = perm[i];

		perm[i] = perm[j];
		perm[j] = t;
	}
}

static double rng_unit(void)
{
	return (double)(rng_next() >> 11) / 9007199254740992.0;
}

/* Heavy-tailed like real suites: most tests short, a few long. */
static double rng_duration(void)
{
	return 0.05 + exp(4.0 * rng_unit() * rng_unit() * 2.0) / 10.0;
}

static sqlite3 *open_db(void)
{
	sqlite3 *db = NULL;

	if (sqlite3_open(":memory:", &db) != SQLITE_OK)
		abort();
	if (kpar_history_schema(db) < 0)
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

static char *make_tmpdir(void)
{
	char *dir = kpar_xstrdup("/tmp/kpar-test-split-XXXXXX");

	if (!mkdtemp(dir))
		abort();
	return dir;
}

/* Ids "<prefix><number>". */
static char **make_ids(size_t n, const char *prefix)
{
	char **ids = kpar_xmalloc(n * sizeof *ids);
	size_t i;

	for (i = 0; i < n; i++)
		ids[i] = kpar_xasprintf("%s%zu", prefix, i);
	return ids;
}

static void free_ids(char **ids, size_t n)
{
	size_t i;

	for (i = 0; i < n; i++)
		free(ids[i]);
	free(ids);
}

static void bucket_totals(const double *sec, const size_t *bof, size_t n, size_t m, double *tot,
			  size_t *cnt)
{
	size_t i;

	memset(tot, 0, m * sizeof *tot);
	memset(cnt, 0, m * sizeof *cnt);
	for (i = 0; i < n; i++) {
		tot[bof[i]] += sec[i] > 0 ? sec[i] : 0;
		cnt[bof[i]]++;
	}
}

/* ---- split ---- */

KPAR_TEST(split_independent_of_input_order)
{
	size_t n = 600, i, k, round, nbs[] = { 7, 37, 600, 1000 };
	char **ids = make_ids(n, "tests/t");
	double *sec = kpar_xmalloc(n * sizeof *sec), *sec2 = kpar_xmalloc(n * sizeof *sec2);
	size_t *ref = kpar_xmalloc(n * sizeof *ref), *got = kpar_xmalloc(n * sizeof *got);
	size_t *perm = kpar_xmalloc(n * sizeof *perm);
	char **ids2 = kpar_xmalloc(n * sizeof *ids2);

	rng_state = 1;
	for (i = 0; i < n; i++) /* many exact ties, so the id tie-break matters */
		sec[i] = floor(rng_duration() * 4) / 4;
	for (k = 0; k < sizeof nbs / sizeof nbs[0]; k++) {
		size_t used = kpar_split(ids, sec, n, nbs[k], ref);

		CHECK_INT(used, nbs[k] < n ? nbs[k] : n);
		for (round = 0; round < 10; round++) {
			size_t mismatches = 0;

			shuffle(perm, n);
			for (i = 0; i < n; i++) {
				ids2[i] = ids[perm[i]];
				sec2[i] = sec[perm[i]];
			}
			CHECK_INT(kpar_split(ids2, sec2, n, nbs[k], got), used);
			for (i = 0; i < n; i++)
				if (got[i] != ref[perm[i]])
					mismatches++;
			CHECK_INT(mismatches, 0);
		}
	}
	free_ids(ids, n);
	free(ids2);
	free(sec);
	free(sec2);
	free(ref);
	free(got);
	free(perm);
}

KPAR_TEST(split_no_empty_bucket)
{
	/* Zero, negative and NaN estimates are the hard case for "no empty
	 * bucket": a load-only heap would pile them into bucket 0. */
	size_t cases[][2] = { { 10, 10 }, { 11, 10 }, { 100, 99 }, { 1000, 64 }, { 5, 8 } };
	size_t c, i;

	for (c = 0; c < sizeof cases / sizeof cases[0]; c++) {
		size_t n = cases[c][0], nb = cases[c][1], m = nb < n ? nb : n, used, empty = 0;
		char **ids = make_ids(n, "t");
		double *sec = kpar_xmalloc(n * sizeof *sec), *tot = kpar_xmalloc(nb * sizeof *tot);
		size_t *bof = kpar_xmalloc(n * sizeof *bof), *cnt = kpar_xmalloc(nb * sizeof *cnt);

		for (i = 0; i < n; i++)
			sec[i] = i % 3 == 0 ? 0.0 : i % 3 == 1 ? -1.0 : NAN;
		sec[0] = 50; /* one real test among nothing */
		used = kpar_split(ids, sec, n, nb, bof);
		CHECK_INT(used, m);
		for (i = 0; i < n; i++)
			CHECK(bof[i] < m);
		bucket_totals(sec, bof, n, m, tot, cnt);
		for (i = 0; i < m; i++)
			if (cnt[i] == 0)
				empty++;
		CHECK_INT(empty, 0);
		CHECK(tot[0] == 50); /* numbered by decreasing total */
		free_ids(ids, n);
		free(sec);
		free(tot);
		free(bof);
		free(cnt);
	}
}

KPAR_TEST(split_edge_cases)
{
	char *ids[] = { "a", "b", "c" };
	double sec[] = { 1, 2, 3 };
	size_t bof[3] = { 9, 9, 9 };

	CHECK_INT(kpar_split(ids, sec, 0, 4, bof), 0);
	CHECK_INT(bof[0], 9);
	CHECK_INT(kpar_split(ids, sec, 3, 0, bof), 1);
	CHECK_INT(bof[0] + bof[1] + bof[2], 0);
	CHECK_INT(kpar_split(ids, sec, 3, 5, bof), 3);
	CHECK_INT(bof[2], 0); /* the longest test is bucket 0 */
	CHECK_INT(bof[1], 1);
	CHECK_INT(bof[0], 2);
}

KPAR_TEST(split_numbered_longest_first)
{
	size_t n = 2000, m = 50, i;
	char **ids = make_ids(n, "suite/case-");
	double *sec = kpar_xmalloc(n * sizeof *sec), tot[50];
	size_t *bof = kpar_xmalloc(n * sizeof *bof), cnt[50];

	rng_state = 7;
	for (i = 0; i < n; i++)
		sec[i] = rng_duration();
	CHECK_INT(kpar_split(ids, sec, n, m, bof), m);
	bucket_totals(sec, bof, n, m, tot, cnt);
	for (i = 1; i < m; i++)
		CHECK(tot[i - 1] >= tot[i]);
	free_ids(ids, n);
	free(sec);
	free(bof);
}

/* max bucket / max(total / m, longest) on heavy-tailed known durations. */
static double split_ratio(size_t n, size_t m, unsigned flags, uint64_t seed)
{
	char **ids = make_ids(n, "t/");
	double *sec = kpar_xmalloc(n * sizeof *sec), *tot = kpar_xmalloc(m * sizeof *tot);
	double total = 0, longest = 0, worst = 0, bound;
	size_t *bof = kpar_xmalloc(n * sizeof *bof), *cnt = kpar_xmalloc(m * sizeof *cnt), i;

	rng_state = seed;
	for (i = 0; i < n; i++) {
		sec[i] = rng_duration();
		total += sec[i];
		if (sec[i] > longest)
			longest = sec[i];
	}
	kpar_split_ex(ids, sec, n, m, 0, flags, bof);
	bucket_totals(sec, bof, n, m, tot, cnt);
	for (i = 0; i < m; i++)
		if (tot[i] > worst)
			worst = tot[i];
	bound = total / (double)m > longest ? total / (double)m : longest;
	free_ids(ids, n);
	free(sec);
	free(tot);
	free(bof);
	free(cnt);
	return worst / bound;
}

KPAR_TEST(split_quality_near_bound)
{
	/* With known durations and many tests per bucket LPT is within a
	 * fraction of a percent of the bound; with few it leaves more, which the
	 * refinement must not make worse. */
	CHECK(split_ratio(5000, 16, 0, 3) < 1.002);
	CHECK(split_ratio(5000, 64, 0, 4) < 1.01);
	CHECK(split_ratio(300, 100, 0, 5) <= split_ratio(300, 100, KPAR_SPLIT_NO_REFINE, 5));
	CHECK(split_ratio(300, 100, 0, 5) < 1.10);
}

KPAR_TEST(split_refinement_beats_plain_lpt)
{
	/* The textbook case where LPT is off: {3,3,2,2,2} on 2 buckets, LPT
	 * gives 7 (3+2+2 | 3+2), the optimum is 6 (3+3 | 2+2+2). */
	char *ids[] = { "a", "b", "c", "d", "e" };
	double sec[] = { 3, 3, 2, 2, 2 }, tot[2];
	size_t bof[5], cnt[2];

	kpar_split_ex(ids, sec, 5, 2, 0, KPAR_SPLIT_NO_REFINE, bof);
	bucket_totals(sec, bof, 5, 2, tot, cnt);
	CHECK(tot[0] == 7);
	kpar_split(ids, sec, 5, 2, bof);
	bucket_totals(sec, bof, 5, 2, tot, cnt);
	CHECK(tot[0] == 6 && tot[1] == 6);
}

/* Buckets 0, 1, ... to whichever of w workers is free first (lowest on ties). */
static double dispatch(const double *sec, const size_t *bof, size_t n, size_t nb, size_t w)
{
	double *tot = kpar_xcalloc(nb, sizeof *tot), *free_at = kpar_xcalloc(w, sizeof *free_at), end = 0;
	size_t i, b, k;

	for (i = 0; i < n; i++)
		tot[bof[i]] += sec[i];
	for (b = 0; b < nb; b++) {
		size_t best = 0;

		for (k = 1; k < w; k++)
			if (free_at[k] < free_at[best])
				best = k;
		free_at[best] += tot[b];
		end = free_at[best] > end ? free_at[best] : end;
	}
	free(tot);
	free(free_at);
	return end;
}

KPAR_TEST(split_for_workers_guarantees)
{
	/* Same guarantees as kpar_split: all buckets used, none empty,
	 * numbered by decreasing total, independent of input order. */
	size_t n = 700, i, round, c;
	size_t cases[][2] = { { 32, 8 }, { 37, 8 }, { 700, 16 }, { 64, 63 }, { 9, 8 } };
	char **ids = make_ids(n, "t/");
	char **ids2 = kpar_xmalloc(n * sizeof *ids2);
	double *sec = kpar_xmalloc(n * sizeof *sec), *sec2 = kpar_xmalloc(n * sizeof *sec2);
	size_t *ref = kpar_xmalloc(n * sizeof *ref), *got = kpar_xmalloc(n * sizeof *got);
	size_t *perm = kpar_xmalloc(n * sizeof *perm);

	rng_state = 11;
	for (i = 0; i < n; i++)
		sec[i] = i % 50 == 0 ? 0 : floor(rng_duration() * 8) / 8;
	for (c = 0; c < sizeof cases / sizeof cases[0]; c++) {
		size_t nb = cases[c][0], w = cases[c][1], empty = 0;
		double *tot = kpar_xmalloc(nb * sizeof *tot);
		size_t *cnt = kpar_xmalloc(nb * sizeof *cnt);

		CHECK_INT(kpar_split_ex(ids, sec, n, nb, w, 0, ref), nb);
		bucket_totals(sec, ref, n, nb, tot, cnt);
		for (i = 0; i < nb; i++) {
			if (cnt[i] == 0)
				empty++;
			if (i > 0)
				CHECK(tot[i - 1] >= tot[i]);
		}
		CHECK_INT(empty, 0);
		for (round = 0; round < 5; round++) {
			size_t mismatches = 0;

			shuffle(perm, n);
			for (i = 0; i < n; i++) {
				ids2[i] = ids[perm[i]];
				sec2[i] = sec[perm[i]];
			}
			kpar_split_ex(ids2, sec2, n, nb, w, 0, got);
			for (i = 0; i < n; i++)
				if (got[i] != ref[perm[i]])
					mismatches++;
			CHECK_INT(mismatches, 0);
		}
		free(tot);
		free(cnt);
	}
	/* Fewer tests than buckets: one test per bucket, whatever the workers. */
	CHECK_INT(kpar_split_ex(ids, sec, 5, 40, 8, 0, got), 5);
	free_ids(ids, n);
	free(ids2);
	free(sec);
	free(sec2);
	free(ref);
	free(got);
	free(perm);
}

KPAR_TEST(split_for_workers_dispatches_near_bound)
{
	/* With exact estimates, 4 buckets per worker handed out longest first
	 * end near the bound; equal LPT buckets can end up to a bucket apart.
	 * Here: 8 workers, 2 long tests among 350 short ones, 900 s in all:
	 * equal buckets of ~23 s leave the two workers that ran a long test
	 * up to a bucket behind (here 1.04x). */
	size_t n = 352, w = 8, nb = 32, i;
	char **ids = make_ids(n, "s/");
	double *sec = kpar_xmalloc(n * sizeof *sec), total = 0, bound, aware, equal;
	size_t *bof = kpar_xmalloc(n * sizeof *bof);

	rng_state = 5;
	for (i = 0; i < n; i++) {
		sec[i] = i < 2 ? 100 : 0.5 + 3 * rng_unit();
		total += sec[i];
	}
	bound = total / (double)w;
	kpar_split_ex(ids, sec, n, nb, w, 0, bof);
	aware = dispatch(sec, bof, n, nb, w) / bound;
	kpar_split(ids, sec, n, nb, bof);
	equal = dispatch(sec, bof, n, nb, w) / bound;
	CHECK(aware < 1.01);
	CHECK(equal > 1.03);
	/* The first bucket of each worker holds about half its time. */
	kpar_split_ex(ids, sec, n, nb, w, 0, bof);
	{
		double tot[32];
		size_t cnt[32];

		bucket_totals(sec, bof, n, nb, tot, cnt);
		CHECK(tot[nb - 1] < tot[0] / 4);
	}
	free_ids(ids, n);
	free(sec);
	free(bof);
}

/* ---- history ---- */

/* 40 modules of 25 cases at 1 s each (a first run's equal estimates), one
 * module of 400 cases, and 10 tests outside any group. */
KPAR_TEST(split_grouped_keeps_groups_together)
{
	size_t n = 40 * 25 + 400 + 10, i, j, nb, used;
	char **ids = kpar_xmalloc(n * sizeof *ids), **ids2 = kpar_xmalloc(n * sizeof *ids2);
	const char **grp = kpar_xcalloc(n, sizeof *grp), **grp2 = kpar_xcalloc(n, sizeof *grp2);
	double *sec = kpar_xmalloc(n * sizeof *sec);
	size_t *bof = kpar_xmalloc(n * sizeof *bof), *bof2 = kpar_xmalloc(n * sizeof *bof2);
	size_t *per_bucket_groups = kpar_xcalloc(64, sizeof *per_bucket_groups);
	char **names = kpar_xmalloc(41 * sizeof *names);

	for (i = 0; i < 41; i++)
		names[i] = kpar_xasprintf("test.mod%02zu", i);
	for (i = 0; i < n; i++) {
		size_t g = i < 1000 ? i / 25 : i < 1400 ? 40 : 41;
		ids[i] = g < 41 ? kpar_xasprintf("%s.Case.test_%04zu", names[g], i)
				: kpar_xasprintf("loose_%02zu", i);
		grp[i] = g < 41 ? names[g] : NULL;
		sec[i] = 1;
	}
	nb = 32;
	used = kpar_split_grouped(ids, sec, grp, n, nb, 4, 0, bof);
	CHECK(used > 0 && used <= nb);
	/* a small module is in exactly one bucket */
	for (i = 0; i < 40; i++)
		for (j = i * 25 + 1; j < i * 25 + 25; j++)
			if (bof[j] != bof[i * 25])
				CHECK_INT(bof[j], bof[i * 25]);
	/* the big one (400 s against an average bucket of 1410 / 32 = 44 s)
	 * is cut into contiguous pieces of about a bucket's size: 10 pieces,
	 * each in one bucket, in id order */
	{
		size_t pieces = 1;
		for (j = 1001; j < 1400; j++)
			if (bof[j] != bof[j - 1])
				pieces++;
		CHECK(pieces >= 9 && pieces <= 11);
	}
	/* no group is split without need: buckets hold whole small modules,
	 * so each bucket touches few groups (plain LPT on equal estimates
	 * puts nearly every group in every bucket) */
	{
		size_t *plain = kpar_xmalloc(n * sizeof *plain), touched = 0, touched_plain = 0;
		unsigned char seen[64][42];

		kpar_split_ex(ids, sec, n, nb, 4, 0, plain);
		memset(seen, 0, sizeof seen);
		for (i = 0; i < 1400; i++) {
			size_t g = i < 1000 ? i / 25 : 40;
			if (!seen[bof[i]][g]++)
				touched++;
		}
		memset(seen, 0, sizeof seen);
		for (i = 0; i < 1400; i++) {
			size_t g = i < 1000 ? i / 25 : 40;
			if (!seen[plain[i]][g]++)
				touched_plain++;
		}
		CHECK(touched <= 40 + 11 + 32);   /* each group once, pieces, cuts */
		CHECK(touched_plain > 4 * touched);
		free(plain);
	}
	/* independent of the input order */
	for (i = 0; i < n; i++) {
		size_t k = (i * 7919) % n;   /* 7919 is prime, n is not a multiple */
		ids2[i] = ids[k];
		grp2[i] = grp[k];
	}
	CHECK_INT(kpar_split_grouped(ids2, sec, grp2, n, nb, 4, 0, bof2), used);
	for (i = 0; i < n; i++)
		if (bof2[i] != bof[(i * 7919) % n])
			CHECK_INT(bof2[i], bof[(i * 7919) % n]);
	/* no groups: the plain split */
	CHECK_INT(kpar_split_grouped(ids, sec, NULL, n, nb, 4, 0, bof2), kpar_split_ex(ids, sec, n, nb, 4, 0, bof));
	for (i = 0; i < n; i++)
		free(ids[i]);
	for (i = 0; i < 41; i++)
		free(names[i]);
	free(names);
	free(ids);
	free(ids2);
	free((void *)grp);
	free((void *)grp2);
	free(sec);
	free(bof);
	free(bof2);
	free(per_bucket_groups);
}

KPAR_TEST(history_median_and_pruning)
{
	sqlite3 *db = open_db();
	double s = -1;
	int samples = -1, i;

	CHECK_INT(kpar_history_get(db, "t", &s, &samples), KPAR_ENOTFOUND);
	for (i = 1; i <= 10; i++)
		CHECK_OK(kpar_history_add(db, "t", (double)i, "pass", 1000.0 + i));
	/* Only the 7 newest (4..10) are kept: their median is 7. */
	CHECK_OK(kpar_history_get(db, "t", &s, &samples));
	CHECK(s == 7.0);
	CHECK_INT(samples, 7);
	CHECK_INT(count_rows(db, "SELECT count(*) FROM durations WHERE test = 't'"), 7);
	CHECK_INT(count_rows(db, "SELECT min(seconds) FROM durations WHERE test = 't'"), 4);

	/* An outlier (a hang killed at the timeout) barely moves the median. */
	CHECK_OK(kpar_history_add(db, "t", 900.0, "pass", 2000));
	CHECK_OK(kpar_history_get(db, "t", &s, NULL));
	CHECK(s == 8.0);

	/* A sample recorded late with an old time is the first to go. */
	CHECK_OK(kpar_history_add(db, "t", 0.5, "pass", 1.0));
	CHECK_INT(count_rows(db, "SELECT count(*) FROM durations WHERE test = 't' AND at = 1.0"), 0);
	CHECK_INT(count_rows(db, "SELECT count(*) FROM durations WHERE test = 't'"), 7);

	/* Skips are not recorded; fails count only when nothing passed. */
	CHECK_OK(kpar_history_add(db, "s", 0.01, "skip", 3000));
	CHECK_INT(kpar_history_get(db, "s", NULL, NULL), KPAR_ENOTFOUND);
	CHECK_OK(kpar_history_add(db, "f", 100, "fail", 3000));
	CHECK_OK(kpar_history_get(db, "f", &s, NULL));
	CHECK(s == 100);
	CHECK_OK(kpar_history_add(db, "f", 2, "pass", 3001));
	CHECK_OK(kpar_history_add(db, "f", 3, "flaky", 3002));
	CHECK_OK(kpar_history_add(db, "f", 600, "error", 3003));
	CHECK_OK(kpar_history_get(db, "f", &s, &samples));
	CHECK(s == 2.5);
	CHECK_INT(samples, 4);
	sqlite3_close(db);
}

KPAR_TEST(history_rejects_bad_input)
{
	sqlite3 *db = open_db();

	CHECK_INT(kpar_history_add(db, "t", NAN, "pass", 1), KPAR_EINVAL);
	CHECK(strstr(kpar_error_last(), "'t'") != NULL);
	CHECK_INT(kpar_history_add(db, "t", -1, "pass", 1), KPAR_EINVAL);
	CHECK_INT(kpar_history_add(db, "t", INFINITY, "pass", 1), KPAR_EINVAL);
	CHECK_INT(kpar_history_add(db, "t", 1, "passed", 1), KPAR_EINVAL);
	CHECK(strstr(kpar_error_last(), "'passed'") != NULL);
	CHECK_INT(kpar_history_add(db, "", 1, "pass", 1), KPAR_EINVAL);
	CHECK_INT(kpar_history_add(db, NULL, 1, "pass", 1), KPAR_EINVAL);
	CHECK_INT(kpar_history_add(db, "t", 1, NULL, 1), KPAR_EINVAL);
	CHECK_INT(count_rows(db, "SELECT count(*) FROM durations"), 0);
	CHECK_INT(count_rows(db, "SELECT count(*) FROM duration_estimates"), 0);
	sqlite3_close(db);
}

KPAR_TEST(history_database_errors)
{
	/* Without the schema every add fails with a database error, and the
	 * savepoint leaves nothing behind. */
	sqlite3 *db = NULL;

	CHECK(sqlite3_open(":memory:", &db) == SQLITE_OK);
	CHECK_INT(kpar_history_add(db, "t", 1, "pass", 1), KPAR_EDB);
	CHECK(strstr(kpar_error_last(), "durations") != NULL);
	CHECK_OK(kpar_history_schema(db));
	CHECK_OK(kpar_history_schema(db)); /* idempotent */
	CHECK_OK(sqlite3_exec(db, "DROP TABLE duration_estimates", NULL, NULL, NULL) == SQLITE_OK ? 0 : -1);
	CHECK_INT(kpar_history_add(db, "t", 1, "pass", 1), KPAR_EDB);
	CHECK_INT(count_rows(db, "SELECT count(*) FROM durations"), 0);
	CHECK_INT(sqlite3_get_autocommit(db), 1);
	sqlite3_close(db);
}

KPAR_TEST(history_inside_caller_transaction)
{
	sqlite3 *db = open_db();

	CHECK(sqlite3_exec(db, "BEGIN", NULL, NULL, NULL) == SQLITE_OK);
	CHECK_OK(kpar_history_add(db, "a", 1, "pass", 1));
	CHECK_OK(kpar_history_add(db, "b", 2, "pass", 1));
	CHECK(sqlite3_exec(db, "ROLLBACK", NULL, NULL, NULL) == SQLITE_OK);
	CHECK_INT(count_rows(db, "SELECT count(*) FROM durations"), 0);
	sqlite3_close(db);
}

KPAR_TEST(history_batch_all_or_nothing)
{
	sqlite3 *db = open_db();
	struct kpar_history_sample v[] = {
		{ "a", 1, "pass", 1 }, { "b", 2, "skip", 1 }, { "c", 3, "fail", 1 },
		{ "d", -4, "pass", 1 },
	};
	double s = 0;

	CHECK_INT(kpar_history_add_many(db, v, 4), KPAR_EINVAL);
	CHECK(strstr(kpar_error_last(), "'d'") != NULL);
	CHECK_INT(count_rows(db, "SELECT count(*) FROM durations"), 0);
	CHECK_OK(kpar_history_add_many(db, v, 3));
	CHECK_INT(count_rows(db, "SELECT count(*) FROM durations"), 2);
	CHECK_OK(kpar_history_get(db, "c", &s, NULL));
	CHECK(s == 3);
	CHECK_OK(kpar_history_add_many(db, v + 1, 1)); /* only a skip */
	CHECK_OK(kpar_history_add_many(db, NULL, 0));
	CHECK_INT(count_rows(db, "SELECT count(*) FROM durations"), 2);
	sqlite3_close(db);
}

KPAR_TEST(history_expire)
{
	sqlite3 *db = open_db();

	CHECK_OK(kpar_history_add(db, "old", 1, "pass", 100));
	CHECK_OK(kpar_history_add(db, "new", 1, "pass", 100));
	CHECK_OK(kpar_history_add(db, "new", 1, "pass", 500));
	CHECK_OK(kpar_history_expire(db, 200));
	CHECK_INT(kpar_history_get(db, "old", NULL, NULL), KPAR_ENOTFOUND);
	CHECK_OK(kpar_history_get(db, "new", NULL, NULL));
	CHECK_INT(count_rows(db, "SELECT count(*) FROM durations WHERE test = 'old'"), 0);
	CHECK_INT(count_rows(db, "SELECT count(*) FROM durations WHERE test = 'new'"), 2);
	sqlite3_close(db);
}

/* ---- estimates ---- */

static int estimate_with_hints(const char *text, const char *root)
{
	char *path = kpar_fs_join(root, "hints.txt");
	char *ids[] = { "x" };
	double sec[1];
	struct kpar_estimate_opts o = { NULL, path, 0, 0, 0 };
	int rc;

	if (kpar_fs_write_atomic(path, text, strlen(text)) < 0)
		abort();
	rc = kpar_estimate(NULL, &o, ids, 1, sec, NULL);
	free(path);
	return rc;
}

KPAR_TEST(estimate_bad_hints)
{
	char *root = make_tmpdir(), *missing = kpar_fs_join(root, "nope");
	struct kpar_estimate_opts o = { NULL, missing, 0, 0, 0 };
	char *ids[] = { "x" };
	double sec[1];

	CHECK_INT(estimate_with_hints("a 1\nb 2\nonlyaglob\n", root), KPAR_EINVAL);
	CHECK(strstr(kpar_error_last(), "hints.txt") != NULL);
	CHECK(strstr(kpar_error_last(), "line 3") != NULL);
	CHECK_INT(estimate_with_hints("a ten\n", root), KPAR_EINVAL);
	CHECK(strstr(kpar_error_last(), "line 1") != NULL);
	CHECK(strstr(kpar_error_last(), "'ten'") != NULL);
	CHECK_INT(estimate_with_hints("a -3\n", root), KPAR_EINVAL);
	CHECK_INT(estimate_with_hints("a 1e999\n", root), KPAR_EINVAL);
	CHECK_INT(estimate_with_hints("a nan\n", root), KPAR_EINVAL);
	CHECK_INT(estimate_with_hints("a 3s\n", root), KPAR_EINVAL);
	CHECK_INT(estimate_with_hints("   \t42\n", root), KPAR_EINVAL);
	CHECK_OK(estimate_with_hints("# only a comment\n\n  \n", root));

	CHECK_INT(kpar_estimate(NULL, &o, ids, 1, sec, NULL), KPAR_ENOTFOUND);
	CHECK(strstr(kpar_error_last(), "nope") != NULL);
	kpar_fs_remove_tree(root);
	free(root);
	free(missing);
}

KPAR_TEST(estimate_hint_globs)
{
	char *root = make_tmpdir(), *path = kpar_fs_join(root, "h");
	static const char text[] =
		"tests/my suite/* 7.5\r\n"
		"  tests/*/deep.sh\t\t3  \n"
		"* 0.25\n"
		"tests/x.sh 99\n";
	char *ids[] = { "tests/my suite/a b.sh", "tests/a/b/deep.sh", "tests/x.sh" };
	double sec[3];
	enum kpar_est_source src[3];
	struct kpar_estimate_opts o = { NULL, path, 0, 0, 0 };

	CHECK_OK(kpar_fs_write_atomic(path, text, strlen(text)));
	CHECK_OK(kpar_estimate(NULL, &o, ids, 3, sec, src));
	CHECK(sec[0] == 7.5);
	CHECK(sec[1] == 3); /* '*' matches across '/' */
	CHECK(sec[2] == 0.25); /* first match wins */
	CHECK_INT(src[2], KPAR_EST_HINT);
	kpar_fs_remove_tree(root);
	free(root);
	free(path);
}

KPAR_TEST(estimate_then_split_many)
{
	/* The planning path end to end on 20,000 tests, half with history. */
	size_t n = 20000, i, m = 200;
	char **ids = make_ids(n, "tests/group");
	double *sec = kpar_xmalloc(n * sizeof *sec);
	enum kpar_est_source *src = kpar_xmalloc(n * sizeof *src);
	size_t *bof = kpar_xmalloc(n * sizeof *bof), *cnt = kpar_xcalloc(m, sizeof *cnt);
	size_t nhist = 0;
	sqlite3 *db = open_db();

	CHECK(sqlite3_exec(db, "BEGIN", NULL, NULL, NULL) == SQLITE_OK);
	for (i = 0; i < n; i += 2)
		CHECK_OK(kpar_history_add(db, ids[i], 1 + (double)(i % 17), "pass", 1));
	CHECK(sqlite3_exec(db, "COMMIT", NULL, NULL, NULL) == SQLITE_OK);
	CHECK_OK(kpar_estimate(db, NULL, ids, n, sec, src));
	for (i = 0; i < n; i++)
		if (src[i] == KPAR_EST_HISTORY)
			nhist++;
	CHECK_INT(nhist, n / 2);
	CHECK_INT(kpar_split(ids, sec, n, m, bof), m);
	for (i = 0; i < n; i++)
		cnt[bof[i]]++;
	for (i = 0; i < m; i++)
		CHECK(cnt[i] > 0);
	free_ids(ids, n);
	free(sec);
	free(src);
	free(bof);
	free(cnt);
	sqlite3_close(db);
}

KPAR_TEST_MAIN(
	KPAR_CASE(split_independent_of_input_order),
	KPAR_CASE(split_no_empty_bucket),
	KPAR_CASE(split_edge_cases),
	KPAR_CASE(split_numbered_longest_first),
	KPAR_CASE(split_quality_near_bound),
	KPAR_CASE(split_refinement_beats_plain_lpt),
	KPAR_CASE(split_for_workers_guarantees),
	KPAR_CASE(split_for_workers_dispatches_near_bound),
	KPAR_CASE(split_grouped_keeps_groups_together),
	KPAR_CASE(history_median_and_pruning),
	KPAR_CASE(history_rejects_bad_input),
	KPAR_CASE(history_database_errors),
	KPAR_CASE(history_inside_caller_transaction),
	KPAR_CASE(history_batch_all_or_nothing),
	KPAR_CASE(history_expire),
	KPAR_CASE(estimate_bad_hints),
	KPAR_CASE(estimate_hint_globs),
	KPAR_CASE(estimate_then_split_many))
