/* backend.h - where buckets run, behind one small contract.
 *
 * `kpar run` decides which buckets of the plan still need running (a new
 * run: all; a resume: those not collected), then hands them to the backend
 * KPAR_BACKEND names: local (run/local.c, worker processes on this machine)
 * or k8s (k8s/job.c, an Indexed Job).  A backend starts the pending
 * buckets, watches them, and hands the output of every finished attempt to
 * kpar_dispatch_record, the one collect/verify/retry step: it decodes and
 * checks the result record (plan, bucket, every test present), stores it in
 * the state database exactly once, and updates the progress line.  Planning,
 * state, resume rules, progress and the report never learn which backend
 * ran a bucket.
 */
#ifndef KPAR_BACKEND_H
#define KPAR_BACKEND_H

#include <stdio.h>

#include "base/conf.h"
#include "base/progress.h"
#include "run/plan.h"
#include "run/state.h"

struct kpar_dispatch_stats {
	size_t collected;       /* buckets collected */
	size_t lost;            /* buckets given up on (recorded as errors) */
	size_t failed_attempts; /* attempts that ended without a usable record */
	size_t disrupted;       /* attempts ended by the platform (preemption, eviction) */
};

/* A run as its backend sees it. */
struct kpar_dispatch {
	const struct kpar_conf *c;
	const struct kpar_plan *p;
	struct kpar_state *st;
	long long run;
	int resumed;            /* continuing an earlier run */
	unsigned char *done;    /* done[b], b in 1..nbuckets: collected or lost */
	int *attempts;          /* attempts[b]: attempts started (or seen) so far */
	struct kpar_progress *prog;
	struct kpar_dispatch_stats stats;
};

/* dispatch_record's verdicts */
enum {
	KPAR_BUCKET_COLLECTED = 0,
	KPAR_BUCKET_RETRY = 1,  /* run the bucket again (attempts[b] was raised) */
	KPAR_BUCKET_LOST = 2    /* out of attempts: stored as an error result per test */
};

/* Sets up d for the buckets not yet done (done[] and attempts[] are
 * allocated here; done[b] preset from collected, may be NULL). */
void kpar_dispatch_init(struct kpar_dispatch *d, const struct kpar_conf *c, const struct kpar_plan *p,
			struct kpar_state *st, long long run, const unsigned char *collected,
			struct kpar_progress *prog);
void kpar_dispatch_free(struct kpar_dispatch *d);
/* Number of buckets not done yet. */
size_t kpar_dispatch_pending(const struct kpar_dispatch *d);

/* Checks a record text for bucket b of this plan without storing it: 0, or
 * -1 with why saying what is wrong.  r is filled on success (free it). */
int kpar_dispatch_verify(const struct kpar_dispatch *d, int bucket, const char *text, size_t len,
			 struct kpar_bucket_result *r, char *why, size_t whylen);

/* Keeps the whole outputs that log frames in a verified record's text
 * (record.h; a pod sends them) carry for r's tests, as the local workers
 * keep theirs: $(KPAR_STATE_DIR)/output/<id>.log, where the report finds
 * them by digest. */
void kpar_dispatch_keep_logs(const struct kpar_dispatch *d, const char *text, size_t len,
			     const struct kpar_bucket_result *r);

/* The outcome of one finished attempt of bucket b: failure is NULL when
 * the worker ended normally (its output is text[0..len)), else why it did
 * not (text may still hold its log).  where names the worker (a slot, a
 * pod), took the attempt's seconds.  Returns a KPAR_BUCKET_* verdict, or a
 * negative error when the database refused (the caller stops the run, which
 * stays resumable).  A bucket already done is ignored (COLLECTED): a
 * backend that sees the same finished attempt twice collects it once. */
int kpar_dispatch_record(struct kpar_dispatch *d, int bucket, const char *text, size_t len,
			 const char *failure, const char *where, double took);

/* Records bucket b as lost without another attempt (the platform gave up on
 * it: a Job's failed index): every test gets an error result naming why and
 * detail (a log tail, an event), so the report still has each test once. */
int kpar_dispatch_lose(struct kpar_dispatch *d, int bucket, const char *why, const char *detail);

struct kpar_backend {
	const char *name;
	/* Runs every bucket of d not done until each is collected or lost.
	 * Interrupted (SIGINT/SIGTERM/SIGHUP): returns KPAR_EINTR with the run
	 * resumable. */
	int (*run)(struct kpar_dispatch *d);
	/* Stops whatever still runs for the run (k8s-cancel); NULL = nothing to do. */
	int (*cancel)(const struct kpar_conf *c, struct kpar_state *st, long long run, FILE *out);
	/* Prints what runs now for the run, read-only (k8s-status); NULL = the
	 * state database says it all. */
	int (*status)(const struct kpar_conf *c, struct kpar_state *st, long long run, FILE *out);
};

#endif
