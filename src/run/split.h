/* split.h - estimating test durations and splitting tests into buckets.
 *
 * Why this shape: with known durations greedy longest-first (LPT) is within
 * a fraction of a percent of the bound max(total/N, longest) on real
 * suites.  The real loss is the first run (no history) and run-to-run
 * noise, so (1) unknown tests are estimated from every signal there is
 * (history of similar names, file size, user hints) and (2) the split makes
 * more, smaller buckets than workers; the dispatcher hands them out longest
 * first to whichever worker frees up (dynamic balancing).
 */
#ifndef KPAR_SPLIT_H
#define KPAR_SPLIT_H

#include <stddef.h>

#include <sqlite3.h>

#include "base/buf.h"

/* Where an estimate came from, best first. */
enum kpar_est_source {
	KPAR_EST_HISTORY = 0,  /* robust statistic of this test's own past runs */
	KPAR_EST_HINT = 1,     /* a user hint (KPAR_HINTS file) */
	KPAR_EST_NAME = 2,     /* tests with a similar name (same directory/prefix) */
	KPAR_EST_SIZE = 3,     /* file size of the test, scaled by known tests */
	KPAR_EST_DEFAULT = 4   /* nothing trusted: 90th percentile of known tests, or 1 s */
};

struct kpar_estimate_opts {
	const char *root;      /* where test ids resolve to files, for the size signal */
	const char *hints;     /* NULL or a hints file: lines "<glob> <seconds>" */
	double default_seconds;
	size_t workers;        /* the run's workers, for judging signals (0: 8) */
	unsigned flags;        /* KPAR_ESTIMATE_* */
};
/* Use the name and size signals without judging them (each whenever it has
 * anything to say; sizes scaled so the median one takes the default when
 * no duration is known): bench/split measures what judging saves. */
#define KPAR_ESTIMATE_UNJUDGED 1u

/* Durations history lives in the state database (table `durations`).
 * Creates its tables if missing; called by kpar_state_open. */
int kpar_history_schema(sqlite3 *db);
/* Records one measured duration (skipped tests are not recorded). */
int kpar_history_add(sqlite3 *db, const char *test, double seconds, const char *status, double at);

/* Estimates seconds for each of ids[0..n) into seconds[] (and the source of
 * each into sources[], may be NULL) using the history in db (may be NULL). */
int kpar_estimate(sqlite3 *db, const struct kpar_estimate_opts *o,
		  char *const *ids, size_t n, double *seconds, enum kpar_est_source *sources);

/* How far a first-run signal can be trusted on this suite, judged on the
 * tests with known durations: the rank correlation (Spearman) of its
 * guesses with those durations, over how many tests; and replay, the
 * makespan of those tests dispatched one at a time in its order over the
 * makespan in name order (what kpar falls back to), on the run's workers.
 * kpar_estimate uses the signal when tests >= KPAR_JUDGE_MIN, rho >=
 * KPAR_RHO_MIN and replay <= 1. */
#define KPAR_JUDGE_MIN 8
#define KPAR_RHO_MIN 0.2
struct kpar_signal_score {
	double rho, replay;
	size_t tests;
	int used;
};
/* What kpar_estimate_ex did: how many tests each source estimated, and the
 * record of the name and size signals (zero when not judged: no test
 * needed them, or nothing to judge them on). */
struct kpar_estimate_report {
	size_t history, hinted, named, sized, defaulted;
	struct kpar_signal_score name, size;
};
int kpar_estimate_ex(sqlite3 *db, const struct kpar_estimate_opts *o, char *const *ids, size_t n,
		     double *seconds, enum kpar_est_source *sources,
		     struct kpar_estimate_report *report);
/* Spearman's rank correlation of x and y (ties get their mean rank); 0 when
 * n < 2 or either side is constant. */
double kpar_rank_correlation(const double *x, const double *y, size_t n);

/* Splits n tests into at most nbuckets buckets, deterministic and
 * independent of input order (ties broken by id), never an empty bucket
 * when n >= nbuckets.  bucket_of[i] gets a 0-based bucket number; buckets
 * are numbered by decreasing estimated total, so bucket 0 is the longest
 * and dispatching in number order is longest first.  Returns the number of
 * buckets used. */
size_t kpar_split(char *const *ids, const double *seconds, size_t n, size_t nbuckets,
		  size_t *bucket_of);

/* Added by the split work (beyond the contract above):
 *
 * kpar_history_add details: status is one of "pass", "fail", "error",
 * "flaky" or "skip" (ignored); seconds must be finite and >= 0; at is a
 * unix time and orders the samples.  Only the last 7 samples of a test are
 * kept; its estimate is their median, over passing (pass/flaky) runs when
 * there are any.  Each add is atomic (a savepoint); wrap many adds in one
 * transaction for speed.
 *
 * kpar_history_get: the current estimate of one test and how many samples
 * it rests on (either pointer may be NULL); KPAR_ENOTFOUND if none.
 * kpar_history_expire: forgets every test not run since `before` (unix
 * time), so a database does not grow forever with removed tests.
 *
 * kpar_estimate details: hints lines are "<glob> <seconds>" (the glob may
 * contain spaces, '#' starts a comment line, fnmatch without flags, so '*'
 * matches '/'); a malformed line is KPAR_EINVAL naming the file and line.
 * A test's own history wins over a hint (measured beats guessed; hints are
 * for tests never run).  A hint is seconds and is never rescaled; the
 * other estimates are seconds too: the name and size signals are scaled
 * by known durations (history, else for sizes the hinted tests), the
 * default is the 90th percentile of the history, else default_seconds.  The name
 * and size signals are used only when they rank the known durations
 * (kpar_signal_score); otherwise those tests get the default, and a first
 * run with nothing trusted is planned in name order (kpar_split_auto).
 * Estimates may be 0.
 *
 * kpar_split_ex: kpar_split with the number of workers the buckets will be
 * dispatched to, and flags.  workers == 0 (or >= the buckets) is
 * kpar_split: equal buckets by LPT.  With fewer workers than buckets the
 * buckets are made for dynamic dispatch: the tests are balanced over the
 * workers (LPT + refinement, the best static schedule), and each worker's
 * share, longest first, is cut into buckets of halving size (1/2, 1/4, ...,
 * the rest).  Dispatched in number order (biggest first) to whichever
 * worker is free, they replay that schedule when estimates are right, and
 * leave a fine-grained tail when they are not.  Equal buckets cannot do
 * either: even with exact estimates, 4 equal buckets per worker end up to
 * a bucket's length apart (bench/split: 1.12x the bound on CPython's suite
 * at 8 workers, against 1.00x).  Same guarantees as kpar_split:
 * deterministic, independent of input order, min(n, nbuckets) buckets, none
 * empty, numbered by decreasing total.  KPAR_SPLIT_NO_REFINE skips the
 * refinement (the benchmark compares both).  Negative or NaN seconds count
 * as 0; nbuckets == 0 counts as 1. */
int kpar_history_get(sqlite3 *db, const char *test, double *seconds, int *samples);
/* kpar_history_add for a batch (a bucket's results), all or nothing; an
 * order of magnitude faster per sample than single adds (the SQL is parsed
 * once per batch).  Strings are borrowed. */
struct kpar_history_sample {
	const char *test;
	double seconds;
	const char *status;
	double at;
};
int kpar_history_add_many(sqlite3 *db, const struct kpar_history_sample *v, size_t n);
int kpar_history_expire(sqlite3 *db, double before);
/* Records durations imported from elsewhere (a CI's JUnit report, prove's
 * state) as kpar_history_add_many would, tagged with source (the imported
 * file's real path): a test with durations kpar measured is left alone (they
 * outrank any import), and the test's samples from the same source are
 * replaced rather than added to.  A later measured duration of the test
 * drops its imported ones.  *stored (may be NULL) gets the number of
 * samples recorded.  All or nothing. */
int kpar_history_import(sqlite3 *db, const struct kpar_history_sample *v, size_t n,
			const char *source, size_t *stored);
/* *count gets how many of ids[0..n) have durations kpar measured (imports
 * not counted). */
int kpar_history_measured(sqlite3 *db, char *const *ids, size_t n, size_t *count);

#define KPAR_SPLIT_NO_REFINE 1u
size_t kpar_split_ex(char *const *ids, const double *seconds, size_t n, size_t nbuckets,
		     size_t workers, unsigned flags, size_t *bucket_of);

/* kpar_split_grouped: kpar_split_ex keeping each group's tests together.
 * group[i] names test i's group (NULL: a group of its own); group == NULL
 * is kpar_split_ex.  A group is one unit unless its estimate exceeds an
 * average bucket (the total over min(n, nbuckets)); then it is cut, in id
 * order, into contiguous pieces of about that size.  The units are split as
 * tests are.  For batch runs whose tests share set-up per group (a test
 * module's imports and fixtures, paid once per bucket that holds any of its
 * cases): plain LPT on equal first-run estimates would put every group in
 * every bucket.  Same guarantees as kpar_split_ex, but fewer buckets when
 * there are fewer units than buckets. */
size_t kpar_split_grouped(char *const *ids, const double *seconds, const char *const *group,
			  size_t n, size_t nbuckets, size_t workers, unsigned flags,
			  size_t *bucket_of);

/* kpar_split_ordered: contiguous runs of the order (estimate desc, id asc),
 * numbered in that order, shrinking as the work left does (each about a
 * quarter of what is left per worker, down to the smallest size that fits
 * nbuckets; all zero estimates count as equal): name order
 * dispatched dynamically when the estimates are all equal.  Deterministic,
 * independent of input order; returns the number of buckets used (at most
 * min(n, nbuckets), none empty; fewer when the runs are long enough).
 * Bucket numbers follow the order, so their totals need not decrease.
 * kpar_split_auto: kpar_split_ordered when no estimate ranks the tests (no
 * source is history, name or size: a first run with nothing trusted but
 * hints), kpar_split_ex with the workers otherwise. */
size_t kpar_split_ordered(char *const *ids, const double *seconds, size_t n, size_t nbuckets,
			  size_t workers, size_t *bucket_of);
size_t kpar_split_auto(char *const *ids, const double *seconds,
		       const enum kpar_est_source *sources, size_t n, size_t nbuckets,
		       size_t workers, size_t *bucket_of);

#endif
