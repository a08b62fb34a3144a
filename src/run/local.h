/* local.h - the local backend: buckets run as parallel worker processes on
 * this machine, the default when no cluster is configured.
 *
 * Each worker is `kpar worker` (the same program, re-executed) running one
 * bucket in its own working directory ($(KPAR_STATE_DIR)/work/wN) and
 * writing its result record to results/test-group-N.rec; the scheduler
 * hands pending buckets out in plan order (longest first) to whichever
 * worker slot frees up, collects each record into the state database as
 * soon as it lands, retries a bucket whose worker died, and on SIGINT or
 * SIGTERM stops its workers and returns KPAR_EINTR with the run resumable.
 */
#ifndef KPAR_LOCAL_H
#define KPAR_LOCAL_H

#include "base/conf.h"
#include "run/plan.h"
#include "base/progress.h"
#include "run/state.h"

struct kpar_local_stats {
	size_t collected;     /* buckets collected by this call */
	size_t lost;          /* buckets given up after worker_retries */
	size_t worker_failures;
};

/* Runs the buckets not marked in skip[1..nbuckets] (may be NULL). */
int kpar_local_run(const struct kpar_conf *c, const struct kpar_plan *p, struct kpar_state *st,
		   long long run, const unsigned char *skip, struct kpar_progress *prog,
		   struct kpar_local_stats *stats);

/* 0 when the record has a result for every test of the bucket; else -1
 * with why naming the first missing test. */
int kpar_local_record_covers(const struct kpar_bucket_result *r, const struct kpar_strv *tests,
			     char *why, size_t whylen);

#endif
