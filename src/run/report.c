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
#include "run/html.h"
#include "run/junit.h"
#include "run/testlist.h"
#include "run/report.h"
#include "run/testlog.h"

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

/* A failed test's failed subtests, named, before its output (which may
 * have been trimmed past them). */
static void add_failed_subtests(struct kpar_buf *b, const struct kpar_test_result *t)
{
	size_t i, shown = 0, nfail = 0;

	for (i = 0; i < t->nsubtests; i++) {
		const struct kpar_subtest *s = &t->subtests[i];
		size_t k, len;

		if (s->status != KPAR_SUB_FAIL)
			continue;
		if (nfail++ >= 10)
			continue;
		kpar_buf_printf(b, "    not ok %ld", s->number);
		len = s->name ? strlen(s->name) : 0;
		if (len)
			kpar_buf_puts(b, " - ");
		for (k = 0; k < len; k++) {
			unsigned char ch = (unsigned char)s->name[k];
			if (ch < 0x20 || ch == 0x7f)
				kpar_buf_printf(b, "\\x%02x", ch);
			else
				kpar_buf_putc(b, (char)ch);
		}
		if (s->reason)
			kpar_buf_printf(b, "  (%s)", s->reason);
		kpar_buf_putc(b, '\n');
		shown++;
	}
	if (nfail > shown)
		kpar_buf_printf(b, "    ... and %zu more failed subtests\n", nfail - shown);
}

struct test_ref;
static void add_subtest_counts(struct kpar_buf *b, const struct test_ref *refs, size_t n);

struct test_ref {
	const struct kpar_test_result *t;
	int bucket;
	const char *worker;
};

/* Subtests (TAP lines, JUnit testcases a test wrote) in one line of their
 * own: the test counts stay per test. */
static void add_subtest_counts(struct kpar_buf *b, const struct test_ref *refs, size_t n)
{
	size_t i, j, with = 0, all = 0, c[5] = { 0 };

	for (i = 0; i < n; i++) {
		if (!refs[i].t->nsubtests)
			continue;
		with++;
		for (j = 0; j < refs[i].t->nsubtests; j++, all++)
			c[refs[i].t->subtests[j].status]++;
	}
	if (!with)
		return;
	kpar_buf_printf(b, "\n%zu subtest%s in %zu test%s: %zu passed, %zu failed, %zu skipped, "
			"%zu todo (%zu passed)\n", all, kpar_buf_plural(all), with, kpar_buf_plural(with),
			c[KPAR_SUB_PASS], c[KPAR_SUB_FAIL], c[KPAR_SUB_SKIP],
			c[KPAR_SUB_TODO_PASS] + c[KPAR_SUB_TODO_FAIL], c[KPAR_SUB_TODO_PASS]);
}

static int cmp_slowest(const void *a, const void *b)
{
	const struct test_ref *x = a, *y = b;
	if (x->t->seconds != y->t->seconds)
		return x->t->seconds < y->t->seconds ? 1 : -1;
	return strcmp(x->t->id, y->t->id);
}

/* One vocabulary: a flaky test passed (on a retry) and is counted both. */
static void count(struct kpar_report_totals *tot, const struct kpar_test_result *t)
{
	tot->tests++;
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

/* Where the time went, kpar's own against the tests': the steps' times
 * (run_meta time.*, stored by `kpar run`), and from the buckets' clocks
 * the gaps each worker spent between two buckets. */
struct timing {
	double list, plan, setup, run, report;  /* < 0: unknown */
};

static int cmp_double(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;

	return x < y ? -1 : x > y;
}

static int cmp_worker_start(const void *a, const void *b)
{
	const struct kpar_bucket_result *x = *(const struct kpar_bucket_result *const *)a;
	const struct kpar_bucket_result *y = *(const struct kpar_bucket_result *const *)b;
	int c = strcmp(x->worker ? x->worker : "", y->worker ? y->worker : "");

	if (c)
		return c;
	return x->started < y->started ? -1 : x->started > y->started;
}

static void add_time(struct kpar_buf *b, const char *what, double s, int *first)
{
	if (s < 0)
		return;
	kpar_buf_printf(b, "%s%s ", *first ? "" : ", ", what);
	fmt_secs(b, s);
	*first = 0;
}

static void add_breakdown(struct kpar_buf *b, const struct timing *tm,
			  struct kpar_bucket_result *res, size_t nres, double test_time)
{
	struct kpar_bucket_result **by = kpar_xcalloc(nres ? nres : 1, sizeof *by);
	double *gaps = kpar_xcalloc(nres ? nres : 1, sizeof *gaps), busy = 0, gap_sum = 0;
	size_t i, ngaps = 0;
	int first = 1;

	for (i = 0; i < nres; i++) {
		by[i] = &res[i];
		if (res[i].finished > res[i].started)
			busy += res[i].finished - res[i].started;
	}
	qsort(by, nres, sizeof *by, cmp_worker_start);
	for (i = 1; i < nres; i++) {
		if (strcmp(by[i]->worker ? by[i]->worker : "", by[i - 1]->worker ? by[i - 1]->worker : ""))
			continue;
		gaps[ngaps] = by[i]->started - by[i - 1]->finished;
		if (gaps[ngaps] < 0)
			gaps[ngaps] = 0;
		gap_sum += gaps[ngaps++];
	}
	qsort(gaps, ngaps, sizeof *gaps, cmp_double);
	kpar_buf_puts(b, "\nTime: kpar's own ");
	add_time(b, "list", tm->list, &first);
	add_time(b, "plan", tm->plan, &first);
	add_time(b, "start", tm->setup, &first);
	add_time(b, "between buckets", gap_sum, &first);
	if (ngaps)
		kpar_buf_printf(b, " (median %.1f ms)", gaps[ngaps / 2] * 1000);
	add_time(b, "in buckets", busy > test_time ? busy - test_time : 0, &first);
	add_time(b, "report", tm->report, &first);
	kpar_buf_puts(b, "; tests ");
	fmt_secs(b, test_time);
	if (tm->run >= 0) {
		kpar_buf_puts(b, " in a run of ");
		fmt_secs(b, tm->run);
	}
	kpar_buf_putc(b, '\n');
	free(by);
	free(gaps);
}

static void build_summary(const struct kpar_run_info *ri, const char *events,
			  struct kpar_bucket_result *res, size_t nres, const char *logs,
			  struct kpar_report_totals *tot, struct kpar_buf *b,
			  const struct timing *tm)
{
	struct worker_time *wt = NULL;
	struct test_ref *refs;
	size_t nw = 0, i, j, nrefs = 0, total_tests = 0, reused = 0;
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
		if (r->bucket == 0) {   /* reused from an earlier run (add_reused) */
			for (j = 0; j < r->ntests; j++) {
				const struct kpar_test_result *t = &r->tests[j];
				refs[nrefs].t = t;
				refs[nrefs].bucket = 0;
				refs[nrefs].worker = w;
				nrefs++;
				reused++;
				count(tot, t);
			}
			continue;
		}
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
			test_time += t->seconds;
			count(tot, t);
		}
	}

	kpar_buf_printf(b, "kpar: run %lld, plan %.19s, %zu bucket%s\n", ri->id, ri->plan, (size_t)ri->nbuckets,
			kpar_buf_plural((size_t)ri->nbuckets));
	for (i = 0; i < nrefs; i++) {
		const struct kpar_test_result *t = refs[i].t;
		if (t->status != KPAR_FAIL && t->status != KPAR_ERROR && t->status != KPAR_XPASS)
			continue;
		if (refs[i].bucket == 0)
			kpar_buf_printf(b, "\n%s: %s  (reused from %s, exit %d, ", t->status == KPAR_FAIL ? "FAIL"
					: t->status == KPAR_XPASS ? "XPASS (passed, expected to fail)" : "ERROR",
					t->id, refs[i].worker, t->exit_code);
		else
			kpar_buf_printf(b, "\n%s: %s  (bucket %d, worker %s, exit %d, ", t->status == KPAR_FAIL ?
					"FAIL" : t->status == KPAR_XPASS ? "XPASS (passed, expected to fail)" : "ERROR",
					t->id, refs[i].bucket, refs[i].worker, t->exit_code);
		fmt_secs(b, t->seconds);
		kpar_buf_puts(b, ")\n");
		add_failed_subtests(b, t);
		if (t->output && t->output_len)
			add_output_tail(b, t->output, t->output_len);
		kpar_buf_printf(b, "    log: %s/", logs);
		kpar_testlog_name(t->id, b);
		kpar_buf_putc(b, '\n');
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
	add_breakdown(b, tm, res, nres, test_time);
	if (events && *events)
		kpar_buf_printf(b, "\nEvents on the platform (%s):\n%s", ri->backend ? ri->backend : "?", events);
	add_subtest_counts(b, refs, nrefs);
	if (reused) {
		const char *sep = "";
		kpar_buf_printf(b, "\nThis run ran %zu of the %zu tests (KPAR_ONLY, a recheck or KPAR_TEST_INPUTS_OF); "
				"the other %zu test%s show their latest result, reused from ", tot->tests - reused,
				tot->tests, reused, kpar_buf_plural(reused));
		for (i = 0; i < nres; i++)
			if (res[i].bucket == 0) {
				kpar_buf_printf(b, "%s%s (%zu)", sep, res[i].worker ? res[i].worker : "?",
						res[i].ntests);
				sep = ", ";
			}
		kpar_buf_puts(b, ".\n");
	}
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

/* A run of part of the list (KPAR_ONLY, KPAR_RECHECK) reports the whole
 * suite: each test it did not run comes with its latest result from an
 * earlier run, in pseudo-buckets numbered 0 whose worker names that run. */
static int add_reused(const struct kpar_conf *c, struct kpar_state *st, long long run,
		      struct kpar_bucket_result **res, size_t *nres)
{
	struct kpar_strv ids = KPAR_STRV_INIT;
	struct kpar_bucket_result *old = NULL;
	char *path = NULL, *list = NULL, *partial = NULL;
	size_t nold = 0, len = 0;
	int rc = 0;

	if (kpar_state_run_meta_get(st, run, "run.partial", &partial) < 0 || strcmp(partial, "1") != 0) {
		kpar_error_clear();
		goto done;   /* the whole list ran */
	}
	path = kpar_conf_path(c, "tests.list");
	if ((rc = kpar_fs_read_all(path, &list, &len)) < 0 ||
	    (rc = kpar_testlist_parse(list, len, path, &ids)) < 0)
		goto done;
	kpar_testlist_canonicalise(&ids);
	if ((rc = kpar_state_reused(st, run, &ids, &old, &nold)) < 0 || nold == 0)
		goto done;
	*res = kpar_xrealloc(*res, (*nres + nold) * sizeof **res);
	memcpy(*res + *nres, old, nold * sizeof *old);
	*nres += nold;
	free(old);
done:
	kpar_strv_free(&ids);
	free(partial);
	free(list);
	free(path);
	return rc;
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
	struct timing tm;
	double t0 = kpar_state_now();
	int rc;

	memset(&ri, 0, sizeof ri);
	if ((rc = kpar_state_run_get(st, run, &ri)) < 0 || (rc = kpar_state_results(st, run, &res, &nres)) < 0 ||
	    (rc = add_reused(c, st, run, &res, &nres)) < 0 || (rc = kpar_fs_mkdir_p(dir, 0755)) < 0)
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
	/* each test's output in its own file, before the summary that names them */
	free(path);
	path = kpar_fs_join(dir, "logs");
	{
		char *full = kpar_conf_path(c, "output");
		rc = kpar_testlog_write_all(path, full, ptrs, nres);
		free(full);
	}
	if (rc < 0)
		goto done;
	{
		static const char *const keys[] = { "time.list", "time.plan", "time.setup", "time.run" };
		double *slot[] = { &tm.list, &tm.plan, &tm.setup, &tm.run };
		for (i = 0; i < 4; i++) {
			char *v = NULL;
			*slot[i] = -1;
			if (kpar_state_run_meta_get(st, run, keys[i], &v) == 0 && v)
				*slot[i] = atof(v);
			kpar_error_clear();
			free(v);
		}
		tm.report = kpar_state_now() - t0;
	}
	build_summary(&ri, events, res, nres, path, totals, &sum, &tm);
	free(path);
	path = kpar_fs_join(dir, "summary.txt");
	if ((rc = kpar_fs_write_atomic(path, sum.data, sum.len)) < 0)
		goto done;
	if ((rc = kpar_html_write(dir, &ri, res, nres, events)) < 0)
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
