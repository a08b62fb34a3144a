/* plan.h - the plan: which tests go into which bucket, and the key that
 * says when that must be decided again.
 *
 * `kpar plan` writes $(KPAR_STATE_DIR)/plan.json and the bucket files
 * buckets/test-group-1 .. test-group-N (one test id per line), each only
 * when its bytes change, so Make remakes nothing downstream of an unchanged
 * plan.  The plan's *key* digests what the split depends on: the test list,
 * the contents of KPAR_TEST_INPUTS, the run settings and every setting the
 * split reads (workers, buckets, group, hints file contents, default
 * seconds, the contents of KPAR_HISTORY_FROM's files and the imports
 * recorded in the history); never an absolute path, so any checkout gets the same plan.
 * While the key stays the same the existing plan is kept even though the
 * duration history has moved on: re-splitting would change the buckets and
 * rerun tests whose inputs did not change.  The plan *digest* names the
 * split itself; it is what runs, records and resumes are checked against.
 */
#ifndef KPAR_PLAN_H
#define KPAR_PLAN_H

#include <sqlite3.h>

#include "base/buf.h"
#include "base/conf.h"

struct kpar_plan_bucket {
	int bucket;             /* 1-based */
	double estimate;        /* seconds */
	struct kpar_strv tests;
};

struct kpar_plan {
	char *key;
	char *digest;
	char *tests_digest;
	char *inputs_digest;
	size_t nbuckets;
	struct kpar_plan_bucket *buckets;  /* bucket i at index i-1 */
	size_t ntests;
	size_t imported;        /* KPAR_HISTORY_FROM files this kpar_plan_make imported */
	/* KPAR_TEST_INPUTS_OF: each planned test's own inputs digest, ids
	 * sorted (own_ids.v[i] has own_digests.v[i]); empty without it */
	struct kpar_strv own_ids, own_digests;
	size_t listed;          /* tests in tests.list: more than ntests when KPAR_ONLY or
				   KPAR_RECHECK chose a part (the report takes the rest's
				   latest results from earlier runs) */
};

/* Buckets a Kubernetes worker should get when a pod costs start_cost
 * seconds to start, a worker has work_per_worker seconds of estimated
 * work, and a fraction known of that comes from history: 8 with no
 * measured cost, else 1..16, fewer for dearer pods and better estimates. */
size_t kpar_plan_buckets_per_worker(double start_cost, double work_per_worker, double known);
void kpar_plan_free(struct kpar_plan *p);
/* Writes <state-dir>/buckets/test-group-1..N for p (each atomically, only
 * when its bytes change) and removes any past N: an image, or a worker run
 * by hand, reads exactly this plan. */
int kpar_plan_write_buckets(const struct kpar_conf *c, const struct kpar_plan *p);
/* Reads plan.json; errors name the file. */
int kpar_plan_load(const char *path, struct kpar_plan *out);
/* How many buckets a plan has when KPAR_BUCKETS is not set: one per test
 * on the local backend in per-test mode (each worker takes the next test,
 * so the tail is one test long), else 8 per worker. */
size_t kpar_plan_default_buckets(const struct kpar_conf *c, size_t ntests);
/* Makes (or keeps) the plan for the configuration; *changed set to 1 when
 * plan.json was rewritten.  A new plan removes the last one's bucket files
 * and writes none: the local backend hands workers their tests itself, and
 * a thousand one-test files cost a first run a tenth of a second of inode
 * creation; readers of the files write them with kpar_plan_write_buckets. */
int kpar_plan_make(const struct kpar_conf *c, struct kpar_plan *out, int *changed);
/* Whether kpar_plan_make would write a new plan (*stale = 1) or keep
 * plan.json (0), without writing anything or creating the state dir: the
 * answer to make -q and make -n. */
int kpar_plan_stale(const struct kpar_conf *c, int *stale);
/* Digest of the test inputs and run settings (what a rerun depends on
 * besides the test list).  db (may be NULL) caches file digests by stat. */
int kpar_plan_inputs_digest(const struct kpar_conf *c, sqlite3 *db, char out[72]);

#endif
