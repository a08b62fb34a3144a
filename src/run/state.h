/* state.h - the one state database of a project: $(KPAR_STATE_DIR)/state.db.
 *
 * SQLite in WAL mode.  Holds runs, their buckets, every collected test
 * result, and (through split.h) the duration history that the next split
 * learns from.  A bucket's results are written in one transaction together
 * with its "collected" mark, so a kill -9 at any moment loses at most the
 * buckets in flight and never leaves a half-collected bucket: that is the
 * invariant RESUME relies on.
 *
 * Run states: running -> complete (every bucket collected) or aborted
 * (interrupted; resumable).  A run left "running" by a killed process is
 * treated as aborted: the run lock (run.lock, flock) tells the two apart.
 */
#ifndef KPAR_STATE_H
#define KPAR_STATE_H

#include <sqlite3.h>

#include "run/record.h"

struct kpar_state;

#define KPAR_STATE_RDONLY 1   /* never create or modify anything */

struct kpar_run_info {
	long long id;
	char *plan;          /* plan digest */
	char *tests_digest;  /* digest of the test list */
	char *inputs_digest; /* digest of KPAR_TEST_INPUTS and the run settings */
	long nbuckets;
	char *backend;
	char *status;        /* running | aborted | complete */
	char *verdict;       /* pass | fail | NULL while unfinished */
	double started, finished;
};

void kpar_run_info_free(struct kpar_run_info *r);

/* Opens (creating with KPAR_STATE_RDONLY unset) state_dir/state.db.  With
 * KPAR_STATE_RDONLY a missing database is KPAR_ENOTFOUND. */
int kpar_state_open(struct kpar_state **out, const char *state_dir, int flags);
void kpar_state_close(struct kpar_state *st);
/* The one clock of every time kpar stores, compares and reports (runs,
 * buckets, a worker's record): wall-clock seconds since the epoch with
 * sub-second precision, so times taken on different machines compare. */
double kpar_state_now(void);
sqlite3 *kpar_state_db(struct kpar_state *st);

int kpar_state_last_run(struct kpar_state *st, struct kpar_run_info *out);
int kpar_state_run_get(struct kpar_state *st, long long id, struct kpar_run_info *out);
/* Creates a run from in (plan, digests, nbuckets, backend) with its buckets pending. */
int kpar_state_run_begin(struct kpar_state *st, const struct kpar_run_info *in,
			 const double *estimates, long long *id_out);
int kpar_state_run_end(struct kpar_state *st, long long id, const char *status, const char *verdict);

/* collected[i] (i in 1..nbuckets) set to 1 for buckets already collected. */
int kpar_state_collected(struct kpar_state *st, long long run, long nbuckets, unsigned char *collected);
int kpar_state_bucket_mark(struct kpar_state *st, long long run, int bucket, const char *status,
			   const char *worker, int attempts);
/* A backend's own notes about a run (a Job name, the image it runs), so a
 * resume can find them again.  value NULL deletes the key; _get returns
 * KPAR_ENOTFOUND (no message) for a key never set; *value is malloc'd.
 * _get with run < 0 reads the latest run that has the key. */
int kpar_state_run_meta_set(struct kpar_state *st, long long run, const char *key, const char *value);
int kpar_state_run_meta_get(struct kpar_state *st, long long run, const char *key, char **value);
/* Stores a bucket's results, marks it collected and feeds the history, in
 * one transaction.  A bucket already collected is left as it is (returns 0). */
int kpar_state_collect(struct kpar_state *st, long long run, const struct kpar_bucket_result *r);
/* Group commit: between begin and end, collects and bucket marks share one
 * transaction (each collect still all or nothing, as a savepoint), so a
 * scheduler that collects a test at a time pays one commit per wake-up,
 * not per test.  end commits; on failure nothing of the batch is kept (the
 * run stops and stays resumable).  Without begin, each call commits. */
int kpar_state_batch_begin(struct kpar_state *st);
int kpar_state_batch_end(struct kpar_state *st);
/* Loads the collected results of a run, one kpar_bucket_result per bucket
 * in bucket order.  Free with kpar_state_results_free. */
/* A complete run of the whole list followed only by complete partial
 * runs (KPAR_ONLY, recheck: run meta run.partial = 1), all of this test
 * list and these inputs: returns the full run's id and sets *last to the
 * latest partial one; 0 when there is no such chain.  Then every test's
 * latest result is of these inputs (whatever the split into buckets, which
 * follows the history), and a new run would redo work. */
long long kpar_state_partial_since(struct kpar_state *st, const char *tests_digest,
				   const char *inputs_digest, long long *last);
/* Records each test's own inputs digest (KPAR_TEST_INPUTS_OF) for run. */
int kpar_state_test_inputs_set(struct kpar_state *st, long long run, const struct kpar_strv *ids,
				const struct kpar_strv *digests);
/* reuse[i] = 1 when ids->v[i] (ids sorted) has a latest result made under
 * inputs_digest with the own digest own->v[i]: running it again would
 * give the same result (what KPAR_TEST_INPUTS_OF saves). */
int kpar_state_reusable(struct kpar_state *st, const char *inputs_digest, const struct kpar_strv *ids,
			const struct kpar_strv *own, unsigned char *reuse);
/* The tests whose latest result, over every run, is a failure or an
 * error (what a recheck runs again), unsorted. */
int kpar_state_latest_failed(struct kpar_state *st, struct kpar_strv *out);
/* For the tests of ids (sorted) that have no result in run: each one's
 * latest result from an earlier run, as one pseudo-bucket result per
 * earlier run (bucket 0, worker "run N"): what a partial run's report
 * shows for the tests it did not run.  *out and *n as kpar_state_results. */
int kpar_state_reused(struct kpar_state *st, long long run, const struct kpar_strv *ids,
		      struct kpar_bucket_result **out, size_t *n);
int kpar_state_results(struct kpar_state *st, long long run,
		       struct kpar_bucket_result **out, size_t *n);
void kpar_state_results_free(struct kpar_bucket_result *r, size_t n);

/* Answers a question about the last run for `kpar state` and the plugin's
 * $(kpar-state WHAT): run (its id), status (running|aborted|complete|none),
 * verdict (pass|fail|none), resumable (1 or 0), buckets (count),
 * buckets-done, tests, and tests-passed, -failed, -errors, -skipped, -flaky
 * counted as the summary counts them (a flaky test is also passed).  No
 * database or no run yet answers "none" or 0; a database that cannot be
 * read (a read-only directory holding a -wal that cannot be indexed) is an
 * error.  Never creates or changes anything: a state dir that is not
 * writable is read as it stands. */
int kpar_state_query(const char *state_dir, const char *what, struct kpar_buf *out);

#endif
