/* cmd_run.c - `kpar run`: start or resume a run of the plan and collect it.
 *
 * Exit status: 0 when every bucket was collected (whatever the tests said:
 * the verdict is in the report, printed by `kpar report`), 2 on an error,
 * 3 when a resume was refused because the inputs changed, 130 when
 * interrupted (the run stays resumable).
 */
#include "config.h"

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
 * while an orphaned run still finishes) waits for the first. */
static int take_lock(const struct kpar_conf *c, int *fd_out)
{
	char *path = kpar_conf_path(c, "run.lock");
	int fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0644);
	int rc = 0;

	if (fd < 0) {
		rc = kpar_error_errno(KPAR_EIO, "cannot open lock '%s'", path);
	} else if (flock(fd, LOCK_EX | LOCK_NB) < 0) {
		fprintf(stderr, "kpar: another kpar run is using %s; waiting for it\n", c->state_dir);
		while (flock(fd, LOCK_EX) < 0 && errno == EINTR)
			;
	}
	free(path);
	*fd_out = fd;
	return rc;
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
	char *plan_path = NULL, *verdict = NULL;
	long long run = 0;
	size_t ndone = 0, b;
	int i, rc, lockfd = -1, have_last, resumed = 0;

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
	if ((rc = kpar_state_open(&st, c.state_dir, 0)) < 0 || (rc = take_lock(&c, &lockfd)) < 0)
		goto fail;
	collected = kpar_xcalloc(p.nbuckets + 1, 1);
	have_last = kpar_state_last_run(st, &last) == 0;
	kpar_error_clear();

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
		if (rc < 0)
			goto fail;
		/* a resume adopts the records under results/: they must be this
		 * run's, not an earlier run's of the same plan (on Kubernetes
		 * the image may differ while the plan does not) */
		for (b = 1; b <= p.nbuckets; b++) {
			char *rec = kpar_xasprintf("%s/results/test-group-%zu.rec", c.state_dir, b);
			unlink(rec);
			free(rec);
		}
	}
	/* The verdict is Make's target for the run: it must not outlive a run
	 * that is being replaced or continued. */
	verdict = kpar_conf_path(&c, "report/verdict");
	unlink(verdict);

	kpar_progress_init(&prog, stderr, c.progress, p.nbuckets, c.workers);
	prog.done = ndone;
	kpar_dispatch_init(&d, &c, &p, st, run, collected, &prog);
	d.resumed = resumed;
	if (resumed)
		adopt_records(&c, &d);
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
	return rc;
}
