/* worker.h - run one bucket of tests and produce its result record.
 *
 * Two ways to run a bucket:
 *  - per test (default): each test is its own process.  With no run
 *    command the test id is executed as a path relative to the root (the
 *    automake harness convention); with a run command, `sh -c '<cmd> "$@"'
 *    kpar <id>` runs it, so the id reaches the command as one argument and
 *    never through shell parsing.  Exit 0 pass, 77 skip, 99 hard error,
 *    anything else (or a signal, or the timeout) fails.
 *  - batch: the run command gets all the bucket's ids as arguments at once;
 *    if it wrote JUnit XML to $KPAR_JUNIT, per-test results are taken from
 *    it, otherwise every test gets the command's status.
 * Failed tests are retried up to `retries` times; one that passes on a
 * retry is KPAR_FLAKY, never hidden as a pass.
 */
#ifndef KPAR_WORKER_H
#define KPAR_WORKER_H

#include "buf.h"
#include "record.h"

enum kpar_run_mode { KPAR_MODE_EACH = 0, KPAR_MODE_BATCH = 1 };

struct kpar_worker_opts {
	const char *root;        /* directory tests run in (the project); "." if NULL */
	const char *workdir;     /* this worker's private dir: TMPDIR, KPAR_WORKDIR; may be NULL */
	const char *run_cmd;     /* NULL or "" = execute the id itself */
	enum kpar_run_mode mode;
	double timeout;          /* seconds per test (batch: per bucket); 0 = none */
	int retries;             /* extra attempts for a failed test */
	size_t pass_output_max;  /* bytes of output kept for passing tests */
	size_t fail_output_max;  /* bytes kept for failing tests (head and tail) */
	const char *plan;        /* copied into the result */
	int bucket;
	int attempt;
	const char *worker_name; /* NULL = hostname */
};

void kpar_worker_opts_init(struct kpar_worker_opts *o);

/* Runs tests (ids) and fills out.  Returns 0 when every test was run
 * (whatever their results), negative when the bucket could not be run;
 * KPAR_EINTR if interrupted by SIGINT/SIGTERM (children are stopped). */
int kpar_worker_run(const struct kpar_worker_opts *o, const struct kpar_strv *ids,
		    struct kpar_bucket_result *out);

#endif
