/* report.c - merging results into one view (see report.h). */
#include "config.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "base/buf.h"
#include "base/error.h"
#include "base/fs.h"
#include "run/junit.h"
#include "run/report.h"

#define SLOWEST 10
#define FAILURE_LINES 40

struct worker_time {
	char *name;
	double busy;
	size_t buckets;
};

static void fmt_secs(struct kpar_buf *b, double s)
{
	if (s >= 60)
		kpar_buf_printf(b, "%dm%04.1fs", (int)(s / 60), fmod(s, 60));
	else
		kpar_buf_printf(b, "%.2fs", s);
}

/* The last FAILURE_LINES lines of a test's output, indented. */
static void add_output_tail(struct kpar_buf *b, const char *out, size_t len)
{
	size_t start = len, lines = 0;

	while (start > 0) {
		if (out[start - 1] == '\n' && start != len && ++lines >= FAILURE_LINES)
			break;
		start--;
	}
	if (start > 0)
		kpar_buf_puts(b, "      [...]\n");
	while (start < len) {
		const char *nl = memchr(out + start, '\n', len - start);
		size_t end = nl ? (size_t)(nl - out) : len;
		size_t k;
		kpar_buf_puts(b, "      ");
		/* Control bytes from test output must not drive the terminal. */
		for (k = start; k < end; k++) {
			unsigned char ch = (unsigned char)out[k];
			if ((ch < 0x20 && ch != '\t') || ch == 0x7f)
				kpar_buf_printf(b, "\\x%02x", ch);
			else
				kpar_buf_putc(b, (char)ch);
		}
		kpar_buf_putc(b, '\n');
		start = end + 1;
	}
}

/* "  id  (reason)": the reason is what the test printed last (a line), as
 * automake's and TAP's skip reasons are. */
static void add_skipped(struct kpar_buf *b, const struct kpar_test_result *t)
{
	size_t len, k;
	const char *why = kpar_record_skip_reason(t, 200, &len);

	kpar_buf_printf(b, "  %s", t->id);
	if (why) {
		kpar_buf_puts(b, "  (");
		for (k = 0; k < len; k++) {
			unsigned char ch = (unsigned char)why[k];
			if ((ch < 0x20 && ch != '\t') || ch == 0x7f)
				kpar_buf_printf(b, "\\x%02x", ch);
			else
				kpar_buf_putc(b, (char)ch);
		}
		kpar_buf_putc(b, ')');
	}
	kpar_buf_putc(b, '\n');
}

struct test_ref {
	const struct kpar_test_result *t;
	int bucket;
	const char *worker;
};

static int cmp_slowest(const void *a, const void *b)
{
	const struct test_ref *x = a, *y = b;
	if (x->t->seconds != y->t->seconds)
		return x->t->seconds < y->t->seconds ? 1 : -1;
	return strcmp(x->t->id, y->t->id);
}

static void build_summary(const struct kpar_run_info *ri, const char *events,
			  struct kpar_bucket_result *res, size_t nres,
			  struct kpar_report_totals *tot, struct kpar_buf *b)
{
	struct worker_time *wt = NULL;
	struct test_ref *refs;
	size_t nw = 0, i, j, nrefs = 0, total_tests = 0;
	double test_time = 0, wall;
	double maxbusy = 0, sumbusy = 0;

	memset(tot, 0, sizeof *tot);
	/* The report is written as the run ends, before its end is stored.
	 * The run's start and end come from the clock the buckets' times come
	 * from (kpar_state_now), so the speed-up compares like with like. */
	wall = (ri->finished > ri->started ? ri->finished : kpar_state_now()) - ri->started;
	if (wall < 0)
		wall = 0;
	for (i = 0; i < nres; i++)
		total_tests += res[i].ntests;
	refs = kpar_xcalloc(total_tests ? total_tests : 1, sizeof *refs);
	for (i = 0; i < nres; i++) {
		struct kpar_bucket_result *r = &res[i];
		const char *w = r->worker ? r->worker : "?";
		for (j = 0; j < nw && strcmp(wt[j].name, w) != 0; j++)
			;
		if (j == nw) {
			wt = kpar_xrealloc(wt, (nw + 1) * sizeof *wt);
			wt[nw].name = kpar_xstrdup(w);
			wt[nw].busy = 0;
			wt[nw].buckets = 0;
			nw++;
		}
		if (r->finished > r->started)
			wt[j].busy += r->finished - r->started;
		wt[j].buckets++;
		for (j = 0; j < r->ntests; j++) {
			const struct kpar_test_result *t = &r->tests[j];
			refs[nrefs].t = t;
			refs[nrefs].bucket = r->bucket;
			refs[nrefs].worker = w;
			nrefs++;
			tot->tests++;
			test_time += t->seconds;
			switch (t->status) {
			case KPAR_PASS: tot->passed++; break;
			case KPAR_FAIL: tot->failed++; break;
			case KPAR_ERROR: tot->errors++; break;
			case KPAR_SKIP: tot->skipped++; break;
			case KPAR_FLAKY: tot->flaky++; tot->passed++; break;
			case KPAR_XFAIL: tot->xfail++; break;
			case KPAR_XPASS: tot->xpass++; tot->failed++; break;
			}
		}
	}

	kpar_buf_printf(b, "kpar: run %lld, plan %.19s, %zu bucket%s\n", ri->id, ri->plan, (size_t)ri->nbuckets,
			kpar_buf_plural((size_t)ri->nbuckets));
	for (i = 0; i < nrefs; i++) {
		const struct kpar_test_result *t = refs[i].t;
		if (t->status != KPAR_FAIL && t->status != KPAR_ERROR && t->status != KPAR_XPASS)
			continue;
		kpar_buf_printf(b, "\n%s: %s  (bucket %d, worker %s, exit %d, ", t->status == KPAR_FAIL ? "FAIL"
				: t->status == KPAR_XPASS ? "XPASS (passed, expected to fail)" : "ERROR",
				t->id, refs[i].bucket, refs[i].worker, t->exit_code);
		fmt_secs(b, t->seconds);
		kpar_buf_puts(b, ")\n");
		if (t->output && t->output_len)
			add_output_tail(b, t->output, t->output_len);
	}
	if (tot->flaky) {
		kpar_buf_puts(b, "\nFlaky (failed, then passed on a retry):\n");
		for (i = 0; i < nrefs; i++)
			if (refs[i].t->status == KPAR_FLAKY)
				kpar_buf_printf(b, "  %s  (%d attempts, bucket %d)\n", refs[i].t->id,
						refs[i].t->attempts, refs[i].bucket);
	}
	if (tot->xfail) {
		kpar_buf_puts(b, "\nExpected failures (XFAIL):\n");
		for (i = 0; i < nrefs; i++)
			if (refs[i].t->status == KPAR_XFAIL)
				kpar_buf_printf(b, "  %s  (exit %d, bucket %d)\n", refs[i].t->id,
						refs[i].t->exit_code, refs[i].bucket);
	}
	if (tot->skipped) {
		kpar_buf_puts(b, "\nSkipped:\n");
		for (i = 0; i < nrefs; i++)
			if (refs[i].t->status == KPAR_SKIP)
				add_skipped(b, refs[i].t);
	}
	qsort(refs, nrefs, sizeof *refs, cmp_slowest);
	kpar_buf_puts(b, "\nSlowest tests:\n");
	for (i = 0; i < nrefs && i < SLOWEST; i++) {
		kpar_buf_puts(b, "  ");
		fmt_secs(b, refs[i].t->seconds);
		kpar_buf_printf(b, "  %s\n", refs[i].t->id);
	}
	kpar_buf_puts(b, "\nWorkers (busy time):\n");
	for (i = 0; i < nw; i++) {
		kpar_buf_printf(b, "  %-12s %3zu bucket%s  ", wt[i].name, wt[i].buckets,
				wt[i].buckets == 1 ? " " : "s");
		fmt_secs(b, wt[i].busy);
		kpar_buf_putc(b, '\n');
		if (wt[i].busy > maxbusy)
			maxbusy = wt[i].busy;
		sumbusy += wt[i].busy;
	}
	if (nw && sumbusy > 0)
		kpar_buf_printf(b, "  imbalance: busiest worker %.2fx the mean\n", maxbusy / (sumbusy / (double)nw));
	if (events && *events)
		kpar_buf_printf(b, "\nEvents on the platform (%s):\n%s", ri->backend ? ri->backend : "?", events);
	kpar_buf_puts(b, "\n");
	kpar_buf_printf(b, "%zu test%s: %zu passed, %zu failed, %zu error%s, %zu skipped, %zu flaky  |  ",
			tot->tests, kpar_buf_plural(tot->tests), tot->passed, tot->failed, tot->errors,
			kpar_buf_plural(tot->errors), tot->skipped, tot->flaky);
	if (tot->xfail || tot->xpass)
		/* xpass is among the failed above; the words are automake's */
		kpar_buf_printf(b, "expected failures: %zu xfail, %zu xpass  |  ", tot->xfail, tot->xpass);
	kpar_buf_puts(b, "wall ");
	fmt_secs(b, wall);
	kpar_buf_puts(b, ", test time ");
	fmt_secs(b, test_time);
	if (wall > 0)
		kpar_buf_printf(b, " (%.1fx)", test_time / wall);
	kpar_buf_printf(b, "\nverdict: %s\n", tot->failed || tot->errors ? "FAIL" : "PASS");
	for (i = 0; i < nw; i++)
		free(wt[i].name);
	free(wt);
	free(refs);
}

int kpar_report_write(const struct kpar_conf *c, struct kpar_state *st, long long run,
		      struct kpar_report_totals *totals)
{
	struct kpar_bucket_result *res = NULL, **ptrs = NULL;
	struct kpar_run_info ri;
	struct kpar_buf sum = KPAR_BUF_INIT, xml = KPAR_BUF_INIT;
	char *dir = kpar_conf_path(c, "report"), *path = NULL, *mem = NULL, *events = NULL;
	size_t nres = 0, memlen = 0, i;
	FILE *f = NULL;
	int rc;

	memset(&ri, 0, sizeof ri);
	if ((rc = kpar_state_run_get(st, run, &ri)) < 0 || (rc = kpar_state_results(st, run, &res, &nres)) < 0 ||
	    (rc = kpar_fs_mkdir_p(dir, 0755)) < 0)
		goto done;
	ptrs = kpar_xcalloc(nres ? nres : 1, sizeof *ptrs);
	for (i = 0; i < nres; i++)
		ptrs[i] = &res[i];
	f = open_memstream(&mem, &memlen);
	if (!f) {
		rc = kpar_error_errno(KPAR_EIO, "cannot buffer the JUnit report");
		goto done;
	}
	rc = kpar_junit_write(f, "kpar", ptrs, nres);
	fclose(f);
	if (rc < 0)
		goto done;
	path = kpar_fs_join(dir, "junit.xml");
	if ((rc = kpar_fs_write_atomic(path, mem, memlen)) < 0)
		goto done;
	/* what the backend saw that a user should know (evictions, OOM kills,
	 * image pull trouble): one line each, kept with the run */
	if (kpar_state_run_meta_get(st, run, "backend.events", &events) < 0)
		kpar_error_clear();
	build_summary(&ri, events, res, nres, totals, &sum);
	free(path);
	path = kpar_fs_join(dir, "summary.txt");
	if ((rc = kpar_fs_write_atomic(path, sum.data, sum.len)) < 0)
		goto done;
	free(path);
	/* The verdict goes last: it is the file Make checks, so it must only
	 * exist once the rest of the report does. */
	path = kpar_fs_join(dir, "verdict");
	{
		const char *v = totals->failed || totals->errors ? "fail\n" : "pass\n";
		rc = kpar_fs_write_atomic(path, v, strlen(v));
	}
done:
	kpar_run_info_free(&ri);
	free(events);
	kpar_state_results_free(res, nres);
	free(ptrs);
	free(mem);
	kpar_buf_free(&sum);
	kpar_buf_free(&xml);
	free(dir);
	free(path);
	return rc;
}

int kpar_report_print(const struct kpar_conf *c, FILE *out)
{
	char *sp = kpar_conf_path(c, "report/summary.txt"), *vp = kpar_conf_path(c, "report/verdict");
	char *summary = NULL, *verdict = NULL;
	int rc;

	if ((rc = kpar_fs_read_all(vp, &verdict, NULL)) < 0 || (rc = kpar_fs_read_all(sp, &summary, NULL)) < 0) {
		kpar_error_prefix(rc, "no finished run to report (run `make k8s-test`)");
		goto done;
	}
	fputs(summary, out);
	fflush(out);
	rc = strncmp(verdict, "pass", 4) == 0 ? 0 : 1;
done:
	free(sp);
	free(vp);
	free(summary);
	free(verdict);
	return rc;
}
