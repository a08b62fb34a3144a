/* worker.h - run one bucket of tests and produce its result record.
 *
 * Two ways to run a bucket:
 *  - per test (default): each test is its own process.  With no run
 *    command the test id is executed as a path relative to the root (the
 *    automake harness convention); with a run command, `sh -c '<cmd> "$@"'
 *    kpar <id>` runs it, so the id reaches the command as one argument and
 *    never through shell parsing.  Exit 0 pass, 77 skip, 99 hard error,
 *    anything else fails; a signal or the timeout is an error.
 *  - batch: the run command gets all the bucket's ids as arguments at once;
 *    if it wrote JUnit XML to $KPAR_JUNIT, per-test results are taken from
 *    it, otherwise every test gets the command's status.
 * Failed tests are retried up to `retries` times; one that passes on a
 * retry is KPAR_FLAKY, never hidden as a pass.  What a rerun cannot fix is
 * not retried: a hard error (exit 99) and a test that cannot start (exec
 * failed, or exit 126/127 from the shell: missing, not executable); a
 * timed-out test only with retry_timeouts (a hang usually hangs again, and
 * each attempt costs the whole timeout).
 *
 * Every test runs with cwd = root, stdin from /dev/null, stdout and stderr
 * into one pipe, in its own process group (stray members are killed when
 * the test exits; the test itself is killed if the worker dies), and this
 * environment: TMPDIR = <workdir>/tmp,
 * KPAR_WORKDIR = <workdir> (both absolute and created), KPAR_BUCKET,
 * KPAR_TEST_ATTEMPT (1-based), KPAR_TEST_ID (per test mode), KPAR_JUNIT =
 * <workdir>/junit.xml (batch mode; removed before each run).  A signal or
 * the timeout is KPAR_ERROR with exit_code -1 (or the status the test
 * exited with after SIGTERM) and a note in the output; an id that cannot be
 * executed is KPAR_ERROR with exit_code 127 (missing) or 126.
 */
#ifndef KPAR_WORKER_H
#define KPAR_WORKER_H

#include "base/buf.h"
#include "run/record.h"

enum kpar_run_mode { KPAR_MODE_EACH = 0, KPAR_MODE_BATCH = 1 };

/* How a test (each mode) reports beyond its exit status:
 *  - exit: the exit status alone (above);
 *  - tap: its output is TAP (tap.h): each test line a subtest, the verdict
 *    prove's (a `not ok` fails a script that exits 0, `1..0 # SKIP why`
 *    skips it); exit 99 stays a hard error, a signal or the timeout an
 *    error.  The test sees HARNESS_ACTIVE=1 and HARNESS_VERSION, as under
 *    prove;
 *  - junit: it may write JUnit XML to $KPAR_JUNIT (removed before each
 *    attempt): each testcase a subtest, and a failed or erred testcase
 *    fails a test that exited 0.  An unreadable file is an error.
 *  - automake: it may write an automake test driver's .trs file to
 *    $KPAR_TRS (removed before each attempt; trs.h): its results decide
 *    the verdict as automake sums them up, and each one is a subtest
 *    (kpar.mk's run command in an automake makefile).  No file leaves
 *    the exit status to decide; exit 99, a signal and the timeout stay
 *    errors.
 * Batch mode reads $KPAR_JUNIT whatever the protocol. */
enum kpar_protocol { KPAR_PROTO_EXIT = 0, KPAR_PROTO_TAP = 1, KPAR_PROTO_JUNIT = 2, KPAR_PROTO_AUTOMAKE = 3 };

/* "exit", "tap", "junit", "automake" -> the protocol; -1 for anything else. */
int kpar_protocol_parse(const char *name);

struct kpar_worker_opts {
	const char *root;        /* directory tests run in (the project); "." if NULL */
	const char *workdir;     /* this worker's private dir: TMPDIR, KPAR_WORKDIR; may be NULL */
	const char *run_cmd;     /* NULL or "" = execute the id itself */
	enum kpar_run_mode mode;
	enum kpar_protocol protocol;
	double timeout;          /* seconds per test (batch: per bucket); 0 = none */
	int retries;             /* extra attempts for a failed test */
	int retry_timeouts;      /* a timed-out test is retried too (0) */
	/* automake's harness (each mode): ids expected to fail, whose failure
	 * is KPAR_XFAIL and pass KPAR_XPASS (NULL: none); hard_errors 0 makes
	 * exit 99 a plain failure (1, the default: an error). */
	const char *xfail_tests;
	int hard_errors;
	size_t pass_output_max;  /* bytes of output kept for passing tests */
	size_t fail_output_max;  /* bytes kept for failing tests (head and tail) */
	/* NULL, or where each test's whole output (every attempt, each after
	 * the first under an "[kpar: attempt N of M]" line) is written as it
	 * comes, to the file testlog.h names it by, and its digest put in the
	 * result's full_log (each mode: a batch command's output belongs to no
	 * one test).  The record keeps its limits either way. */
	const char *log_dir;
	const char *plan;        /* copied into the result */
	int bucket;
	int attempt;
	const char *worker_name; /* NULL = hostname */
	double kill_grace;       /* seconds from SIGTERM to SIGKILL on timeout/interrupt (5) */
	/* Called after each test's final attempt (batch: after the bucket),
	 * e.g. for progress lines; t is borrowed. */
	void (*on_test)(const struct kpar_test_result *t, void *payload);
	void *payload;
};

/* Defaults: mode each, pass_output_max 4 KiB, fail_output_max 256 KiB,
 * retries 0, timeout 0, kill_grace 5, bucket 1, attempt 1, hard_errors 1. */
void kpar_worker_opts_init(struct kpar_worker_opts *o);

/* Runs tests (ids) and fills out (zeroed first; free it with
 * kpar_bucket_result_free whatever the return).  Returns 0 when every test
 * was run (whatever their results), negative when the bucket could not be
 * run; KPAR_EINTR if interrupted by SIGINT/SIGTERM: the running test's
 * process group is stopped and out holds the tests finished before.
 * Installs SIGINT/SIGTERM/SIGCHLD handlers for its duration (proc.h), so
 * one call at a time per process. */
int kpar_worker_run(const struct kpar_worker_opts *o, const struct kpar_strv *ids,
		    struct kpar_bucket_result *out);

#endif
