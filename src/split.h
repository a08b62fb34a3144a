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

#include "buf.h"

/* Where an estimate came from, best first. */
enum kpar_est_source {
	KPAR_EST_HISTORY = 0,  /* robust statistic of this test's own past runs */
	KPAR_EST_HINT = 1,     /* a user hint (KPAR_HINTS file) */
	KPAR_EST_NAME = 2,     /* tests with a similar name (same directory/prefix) */
	KPAR_EST_SIZE = 3,     /* file size of the test, scaled by known tests */
	KPAR_EST_DEFAULT = 4   /* nothing known: the median of known tests, or 1 s */
};

struct kpar_estimate_opts {
	const char *root;      /* where test ids resolve to files, for the size signal */
	const char *hints;     /* NULL or a hints file: lines "<glob> <seconds>" */
	double default_seconds;
};

/* Durations history lives in the state database (table `durations`).
 * Creates its tables if missing; called by kpar_state_open. */
int kpar_history_schema(sqlite3 *db);
/* Records one measured duration (skipped tests are not recorded). */
int kpar_history_add(sqlite3 *db, const char *test, double seconds, const char *status, double at);

/* Estimates seconds for each of ids[0..n) into seconds[] (and the source of
 * each into sources[], may be NULL) using the history in db (may be NULL). */
int kpar_estimate(sqlite3 *db, const struct kpar_estimate_opts *o,
		  char *const *ids, size_t n, double *seconds, enum kpar_est_source *sources);

/* Splits n tests into at most nbuckets buckets, deterministic and
 * independent of input order (ties broken by id), never an empty bucket
 * when n >= nbuckets.  bucket_of[i] gets a 0-based bucket number; buckets
 * are numbered by decreasing estimated total, so bucket 0 is the longest
 * and dispatching in number order is longest first.  Returns the number of
 * buckets used. */
size_t kpar_split(char *const *ids, const double *seconds, size_t n, size_t nbuckets,
		  size_t *bucket_of);

#endif
