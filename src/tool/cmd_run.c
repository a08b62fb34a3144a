/* cmd_run.c - `kpar run`: start or resume a run of the plan and collect it.
 *
 * Exit status: 0 when every bucket was collected (whatever the tests said:
 * the verdict is in the report, printed by `kpar report`), 2 on an error,
 * 3 when a resume was refused because the inputs changed, 130 when
 * interrupted (the run stays resumable).
 */
#include "config.h"

#include <dirent.h>

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <unistd.h>

#include "base/conf.h"
#include "base/error.h"
#include "base/fs.h"
#include "run/backend.h"
#include "run/plan.h"
#include "base/progress.h"
#include "run/record.h"
#include "run/report.h"
#include "run/state.h"
#include "tool/cmds.h"

static const char usage[] =
	"usage: kpar run [--resume] [--workers N] [--backend local|k8s] [--state-dir DIR] [OPTION]...\n"
	"Runs every bucket of <state-dir>/plan.json and collects the results into the\n"
	"state database, then writes <state-dir>/report/{junit.xml,summary.txt,verdict}.\n"
	"--resume continues the last unfinished run without rerunning collected buckets;\n"
	"it is refused if the tests, the test inputs or the split changed since.\n"
	"Every option is also the environment variable KPAR_<NAME> (--test-timeout is\n"
	"KPAR_TEST_TIMEOUT); `kpar state --settings` shows their values.  Options:\n";

/* One kpar run per state dir at a time: a second one (say, a resume started
 * while an orphaned run still finishes, or a second `make k8s-test` in the
 * same project) waits for the first; *waited says whether it had to. */
static int take_lock(const struct kpar_conf *c, int *fd_out, int *waited)
{
	char *path = kpar_conf_path(c, "run.lock");
	int fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0644);
	int rc = 0;

	if (fd < 0) {
		rc = kpar_error_errno(KPAR_EIO, "cannot open lock '%s'", path);
	} else if (flock(fd, LOCK_EX | LOCK_NB) < 0) {
		fprintf(stderr, "kpar: another kpar run is using %s; waiting for it\n", c->state_dir);
		*waited = 1;
		while (flock(fd, LOCK_EX) < 0 && errno == EINTR)
			;
	}
	free(path);
	*fd_out = fd;
	return rc;
}

/* What a run runs besides its plan (whose digest covers the test list, the
 * contents of KPAR_TEST_INPUTS, the KPAR_TEST_ENV values and the run
 * settings): the backend and, on Kubernetes, the image(s) pushed for it.
 * Two runs with the same plan digest and the same run inputs would run the
 * same thing and must give the same verdict. */
static char *run_inputs(const struct kpar_conf *c, const struct kpar_plan *p)
{
	struct kpar_buf b;
	static const char *const image_files[] = { "image/ref", "image/bucket-refs" };
	size_t i;

	memset(&b, 0, sizeof b);
	kpar_buf_printf(&b, "plan %s\nbackend %s\n", p->digest, c->backend);
	for (i = 0; strcmp(c->backend, "k8s") == 0 && i < sizeof image_files / sizeof *image_files; i++) {
		char *path = kpar_conf_path(c, image_files[i]), *text = NULL;
		size_t len = 0;

		if (i == 0 || c->image_per_bucket) {
			if (kpar_fs_read_all(path, &text, &len) == 0) {
				kpar_buf_printf(&b, "%s ", image_files[i]);
				kpar_buf_add(&b, text, len);
				kpar_buf_putc(&b, '\n');
			}
			kpar_error_clear();
		}
		free(text);
		free(path);
	}
	return kpar_buf_detach(&b, NULL);
}

/* Whether run `id` ran what `inputs` (run_inputs) says this one would.  A run
 * that recorded no inputs (made by an older kpar) is never the same. */
static int same_run_inputs(struct kpar_state *st, long long id, const char *inputs)
{
	char *had = NULL;
	int same = kpar_state_run_meta_get(st, id, "run.inputs", &had) == 0 && strcmp(had, inputs) == 0;

	kpar_error_clear();
	free(had);
	return same;
}

/* Like same_run_inputs, but for a run of another split of the same list:
 * the backend and what it ran (the image) must match, the plan need not. */
static int same_backend_inputs(struct kpar_state *st, long long id, const char *inputs)
{
	char *had = NULL;
	const char *a, *b;
	int same = kpar_state_run_meta_get(st, id, "run.inputs", &had) == 0 &&
		   (a = strchr(had, '\n')) && (b = strchr(inputs, '\n')) && strcmp(a, b) == 0;

	kpar_error_clear();
	free(had);
	return same;
}

static const char *why_changed(const struct kpar_run_info *ri, const struct kpar_plan *p)
{
	if (!ri->tests_digest || strcmp(ri->tests_digest, p->tests_digest) != 0)
		return "the test list changed";
	if (!ri->inputs_digest || strcmp(ri->inputs_digest, p->inputs_digest) != 0)
		return "the test inputs (KPAR_TEST_INPUTS) or run settings changed";
	if ((size_t)ri->nbuckets != p->nbuckets)
		return "the number of buckets changed";
	return "the split of tests into buckets changed";
}

/* Records that landed after the runner last collected (it was killed
 * between a worker finishing and the commit; a backend keeps every record
 * it fetched under results/) are taken as they are. */
static void adopt_records(const struct kpar_conf *c, struct kpar_dispatch *d)
{
	size_t b;

	for (b = 1; b <= d->p->nbuckets; b++) {
		char *path, *text = NULL, why[256];
		size_t len = 0;
		struct kpar_bucket_result r;

		if (d->done[b])
			continue;
		path = kpar_xasprintf("%s/results/test-group-%zu.rec", c->state_dir, b);
		if (kpar_fs_read_all(path, &text, &len) == 0 &&
		    kpar_dispatch_verify(d, (int)b, text, len, &r, why, sizeof why) == 0) {
			kpar_dispatch_keep_logs(d, text, len, &r);
			if (kpar_state_collect(d->st, d->run, &r) == 0) {
				d->done[b] = 1;
				d->prog->done++;
				d->prog->est_remaining -= d->p->buckets[b - 1].estimate;
				fprintf(stderr, "kpar: bucket %zu: adopted its finished result record\n", b);
			}
			kpar_bucket_result_free(&r);
		}
		kpar_error_clear();
		free(text);
		free(path);
	}
}

/* Removes results/test-group-*.rec: those that are there, rather than a
 * name per bucket (a thousand lookups when each test is a bucket). */
static void remove_records(const struct kpar_conf *c)
{
	char *dir = kpar_conf_path(c, "results");
	DIR *d = opendir(dir);
	struct dirent *e;

	while (d && (e = readdir(d))) {
		size_t n = strlen(e->d_name);
		if (strncmp(e->d_name, "test-group-", 11) == 0 && n > 4 &&
		    strcmp(e->d_name + n - 4, ".rec") == 0)
			unlinkat(dirfd(d), e->d_name, 0);
	}
	if (d)
		closedir(d);
	free(dir);
}

int kpar_cmd_run(int argc, char **argv)
{
	struct kpar_conf c;
	struct kpar_plan p;
	struct kpar_state *st = NULL;
	struct kpar_run_info last, in;
	struct kpar_progress prog;
	struct kpar_dispatch d;
	const struct kpar_backend *be;
	struct kpar_report_totals tot;
	unsigned char *collected = NULL;
	char *plan_path = NULL, *verdict = NULL, *inputs = NULL;
	long long run = 0;
	size_t ndone = 0, b;
	int i, rc, lockfd = -1, have_last, resumed = 0, waited = 0, same;
	/* when this run was asked for: a run of the same plan and inputs that
	 * completed since (while this one waited on the lock) answers it */
	double asked = kpar_state_now(), run_started = 0;

	memset(&p, 0, sizeof p);
	memset(&last, 0, sizeof last);
	if ((rc = kpar_conf_load(&c)) < 0)
		return kpar_tool_fail("run", rc);
	for (i = 1; i < argc; i++) {
		if (strcmp(argv[i], "--help") == 0) {
			fputs(usage, stdout);
			kpar_conf_print_options(stdout);
			rc = 0;
			goto out;
		}
		if ((rc = kpar_conf_option(&c, argc, argv, &i)) < 0)
			goto fail;
		if (rc == 0) {
			rc = kpar_error_set(KPAR_EINVAL, "unexpected argument '%s'", argv[i]);
			goto fail;
		}
	}
	if (!(be = kpar_tool_backend(c.backend))) {
		rc = kpar_error_set(KPAR_EINVAL, "KPAR_BACKEND '%s' is not a backend (local, k8s)", c.backend);
		goto fail;
	}
	plan_path = kpar_conf_path(&c, "plan.json");
	if ((rc = kpar_plan_load(plan_path, &p)) < 0) {
		kpar_error_prefix(rc, "no plan (run `kpar plan` first)");
		goto fail;
	}
	if ((rc = kpar_state_open(&st, c.state_dir, 0)) < 0 || (rc = take_lock(&c, &lockfd, &waited)) < 0)
		goto fail;
	collected = kpar_xcalloc(p.nbuckets + 1, 1);
	/* read with the lock held: the run another kpar run just finished or
	 * left behind while this one waited */
	have_last = kpar_state_last_run(st, &last) == 0;
	kpar_error_clear();
	inputs = run_inputs(&c, &p);
	same = have_last && strcmp(last.plan, p.digest) == 0 && same_run_inputs(st, last.id, inputs);

	/* Two `make k8s-test` at once: the second waited for the first's run of
	 * the very same plan and inputs.  Running it again would give the same
	 * verdict, and replacing the first's report under its make would fail
	 * it: take the run that completed since this one was asked for. */
	if (!c.resume && same && strcmp(last.status, "complete") == 0 && last.finished >= asked) {
		fprintf(stderr, "kpar: run %lld of this plan completed while this one waited; taking its verdict\n",
			last.id);
		verdict = kpar_conf_path(&c, "report/verdict");
		if (!kpar_fs_exists(verdict) && (rc = kpar_report_write(&c, st, last.id, &tot)) < 0)
			goto fail;
		rc = 0;
		goto out;
	}
	/* After a full run of this list, only reruns of part of it (KPAR_ONLY,
	 * a recheck) with the same list, inputs and backend (image): every
	 * test's latest result is one this plan would give again: report those. */
	if (!c.resume && have_last && p.listed <= p.ntests) {
		long long last_part = 0, full = kpar_state_partial_since(st, p.tests_digest, p.inputs_digest,
									&last_part);
		if (full > 0 && same_backend_inputs(st, full, inputs) && same_backend_inputs(st, last_part, inputs)) {
			fprintf(stderr, "kpar: run %lld of this plan and the reruns of part of it since (up to run "
				"%lld) give every test's latest result; taking them\n", full, last_part);
			if ((rc = kpar_report_write(&c, st, last_part, &tot)) < 0)
				goto fail;
			rc = 0;
			goto out;
		}
	}
	/* ... or it waited for a run of the same plan that was interrupted (its
	 * kpar run killed): continue it as RESUME=1 would, rather than start the
	 * same run again from scratch. */
	if (!c.resume && waited && same && strcmp(last.status, "complete") != 0) {
		fprintf(stderr, "kpar: run %lld of this plan was interrupted while this one waited; continuing it\n",
			last.id);
		c.resume = 1;
	}

	if (c.resume && have_last && strcmp(last.status, "complete") != 0) {
		if (strcmp(last.plan, p.digest) != 0) {
			rc = kpar_error_set(KPAR_ECHANGED, "cannot resume run %lld: %s since it started; "
					    "run `make k8s-test` without RESUME=1 to start a new run",
					    last.id, why_changed(&last, &p));
			goto fail;
		}
		run = last.id;
		if ((rc = kpar_state_collected(st, run, (long)p.nbuckets, collected)) < 0)
			goto fail;
		for (b = 1; b <= p.nbuckets; b++)
			ndone += collected[b];
		fprintf(stderr, "kpar: resuming run %lld: %zu of %zu buckets already collected\n",
			run, ndone, p.nbuckets);
		kpar_state_run_end(st, run, "running", NULL);
		resumed = 1;
	} else if (c.resume && have_last && strcmp(last.plan, p.digest) == 0) {
		fprintf(stderr, "kpar: run %lld of this plan is already complete; nothing to resume\n", last.id);
		run = last.id;
		ndone = p.nbuckets;
		memset(collected, 1, p.nbuckets + 1);
	} else {
		double *est = kpar_xcalloc(p.nbuckets ? p.nbuckets : 1, sizeof *est);
		if (c.resume)
			fprintf(stderr, "kpar: no unfinished run to resume; starting a new one\n");
		else if (have_last && strcmp(last.status, "complete") != 0)
			fprintf(stderr, "kpar: run %lld was not finished; starting a new run "
				"(RESUME=1 would have continued it)\n", last.id);
		memset(&in, 0, sizeof in);
		in.plan = p.digest;
		in.tests_digest = p.tests_digest;
		in.inputs_digest = p.inputs_digest;
		in.nbuckets = (long)p.nbuckets;
		in.backend = c.backend;
		for (b = 0; b < p.nbuckets; b++)
			est[b] = p.buckets[b].estimate;
		rc = kpar_state_run_begin(st, &in, est, &run);
		free(est);
		if (rc < 0 || (rc = kpar_state_run_meta_set(st, run, "run.inputs", inputs)) < 0 ||
		    (p.listed > p.ntests && (rc = kpar_state_run_meta_set(st, run, "run.partial", "1")) < 0) ||
		    (rc = kpar_state_test_inputs_set(st, run, &p.own_ids, &p.own_digests)) < 0)
			goto fail;
		/* a resume adopts the records under results/: they must be this
		 * run's, not an earlier run's of the same plan (on Kubernetes
		 * the image may differ while the plan does not) */
		remove_records(&c);
	}
	/* The verdict is Make's target for the run: it must not outlive a run
	 * that is being replaced or continued.  A run already complete keeps
	 * it (another make may be reading the report of that very run); the
	 * report is written again below, each file replaced atomically. */
	verdict = kpar_conf_path(&c, "report/verdict");
	if (resumed || run != last.id)
		unlink(verdict);

	kpar_progress_init(&prog, stderr, c.progress, p.nbuckets, c.workers);
	prog.done = ndone;
	kpar_dispatch_init(&d, &c, &p, st, run, collected, &prog);
	d.resumed = resumed;
	if (resumed)
		adopt_records(&c, &d);
	/* kpar's own steps, for the summary's breakdown (report.c) */
	{
		static const char *const steps[] = { "list", "plan" };
		char key[32], val[32];
		for (i = 0; i < 2; i++) {
			double t = kpar_tool_read_time(&c, steps[i]);
			snprintf(key, sizeof key, "time.%s", steps[i]);
			snprintf(val, sizeof val, "%.6f", t);
			if (t >= 0 && kpar_state_run_meta_set(st, run, key, val) < 0)
				kpar_error_clear();
		}
		snprintf(val, sizeof val, "%.6f", kpar_tool_elapsed());
		if (kpar_state_run_meta_set(st, run, "time.setup", val) < 0)
			kpar_error_clear();
	}
	run_started = kpar_state_now();
	if (kpar_dispatch_pending(&d) > 0) {
		rc = be->run(&d);
		kpar_progress_end(&prog);
		if (rc < 0) {
			kpar_dispatch_free(&d);
			kpar_state_run_end(st, run, "aborted", NULL);
			goto fail;
		}
	}
	kpar_dispatch_free(&d);
	{
		char val[32];
		snprintf(val, sizeof val, "%.6f", kpar_state_now() - run_started);
		if (kpar_state_run_meta_set(st, run, "time.run", val) < 0)
			kpar_error_clear();
	}
	if ((rc = kpar_report_write(&c, st, run, &tot)) < 0)
		goto fail;
	if ((rc = kpar_state_run_end(st, run, "complete", tot.failed || tot.errors ? "fail" : "pass")) < 0)
		goto fail;
	fprintf(stderr, "kpar: run %lld complete: %zu test%s, %zu failed, %zu error%s, %zu skipped, %zu flaky; "
		"report in %s/report/\n", run, tot.tests, kpar_buf_plural(tot.tests), tot.failed, tot.errors,
		kpar_buf_plural(tot.errors), tot.skipped, tot.flaky, c.state_dir);
	rc = 0;
	goto out;
fail:
	rc = rc == KPAR_ECHANGED ? (kpar_tool_fail("run", rc), 3) : kpar_tool_fail("run", rc);
out:
	if (lockfd >= 0)
		close(lockfd);
	kpar_state_close(st);
	kpar_run_info_free(&last);
	kpar_plan_free(&p);
	kpar_conf_free(&c);
	free(collected);
	free(plan_path);
	free(verdict);
	free(inputs);
	return rc;
}
