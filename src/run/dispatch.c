/* dispatch.c - the one collect/verify/retry step every backend hands its
 * finished attempts to (see backend.h). */
#include "config.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/buf.h"
#include "base/digest.h"
#include "base/error.h"
#include "run/backend.h"
#include "run/record.h"
#include "run/testlog.h"

void kpar_dispatch_init(struct kpar_dispatch *d, const struct kpar_conf *c, const struct kpar_plan *p,
			struct kpar_state *st, long long run, const unsigned char *collected,
			struct kpar_progress *prog)
{
	size_t b;

	memset(d, 0, sizeof *d);
	d->c = c;
	d->p = p;
	d->st = st;
	d->run = run;
	d->prog = prog;
	d->done = kpar_xcalloc(p->nbuckets + 1, 1);
	d->attempts = kpar_xcalloc(p->nbuckets + 1, sizeof *d->attempts);
	for (b = 1; b <= p->nbuckets; b++) {
		if (collected && collected[b]) {
			d->done[b] = 1;
		} else {
			d->attempts[b] = 1;
			prog->est_remaining += p->buckets[b - 1].estimate;
		}
	}
}

void kpar_dispatch_free(struct kpar_dispatch *d)
{
	free(d->done);
	free(d->attempts);
	d->done = NULL;
	d->attempts = NULL;
}

size_t kpar_dispatch_pending(const struct kpar_dispatch *d)
{
	size_t b, n = 0;

	for (b = 1; b <= d->p->nbuckets; b++)
		n += !d->done[b];
	return n;
}

static int cmp_id(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

/* A batch command's JUnit may add testcases; it must not lose any. */
static int record_covers(const struct kpar_bucket_result *r, const struct kpar_strv *tests,
			 char *why, size_t whylen)
{
	char **ids = kpar_xcalloc(r->ntests ? r->ntests : 1, sizeof *ids);
	size_t i;
	int rc = 0;

	for (i = 0; i < r->ntests; i++)
		ids[i] = r->tests[i].id;
	qsort(ids, r->ntests, sizeof *ids, cmp_id);
	for (i = 0; i < tests->n; i++) {
		const char *key = tests->v[i];
		if (!bsearch(&key, ids, r->ntests, sizeof *ids, cmp_id)) {
			snprintf(why, whylen, "record lacks test '%.150s'", key);
			rc = -1;
			break;
		}
	}
	free(ids);
	return rc;
}

int kpar_dispatch_verify(const struct kpar_dispatch *d, int bucket, const char *text, size_t len,
			 struct kpar_bucket_result *r, char *why, size_t whylen)
{
	int rc = -1;

	memset(r, 0, sizeof *r);
	if (!text || len == 0)
		snprintf(why, whylen, "no result record");
	else if (kpar_record_decode(text, len, r) < 0)
		snprintf(why, whylen, "%s record: %.200s",
			 kpar_error_code() == KPAR_ENOTFOUND ? "no" : "damaged", kpar_error_last());
	else if (r->bucket != bucket || !r->plan || strcmp(r->plan, d->p->digest) != 0)
		snprintf(why, whylen, "record is for another bucket or plan");
	else
		rc = record_covers(r, &d->p->buckets[bucket - 1].tests, why, whylen);
	kpar_error_clear();
	if (rc < 0)
		kpar_bucket_result_free(r);
	return rc;
}

struct keep {
	const struct kpar_dispatch *d;
	const struct kpar_bucket_result *r;
	char *dir;
};

static void keep_frame(void *arg, const char *data, size_t len)
{
	struct keep *k = arg;
	char digest[KPAR_DIGEST_STR];
	size_t i;

	kpar_digest_str(data, len, digest);
	for (i = 0; i < k->r->ntests; i++) {
		const struct kpar_test_result *t = &k->r->tests[i];

		if (!t->full_log || strcmp(t->full_log, digest) != 0)
			continue;
		if (kpar_testlog_keep(k->dir, t->id, data, len) < 0) {
			kpar_progress_line(k->d->prog, "kpar: bucket %d: the whole output of a test is "
					   "not kept (its report shows the record's): %s",
					   k->r->bucket, kpar_error_last());
			kpar_error_clear();
		}
	}
}

void kpar_dispatch_keep_logs(const struct kpar_dispatch *d, const char *text, size_t len,
			     const struct kpar_bucket_result *r)
{
	struct keep k = { d, r, kpar_conf_path(d->c, "output") };
	size_t damaged = kpar_record_decode_logs(text, len, keep_frame, &k);

	if (damaged)
		kpar_progress_line(d->prog, "kpar: bucket %d: %zu damaged log frame%s ignored (the "
				   "report shows the record's output for %s)", r->bucket, damaged,
				   kpar_buf_plural(damaged), damaged == 1 ? "its test" : "their tests");
	free(k.dir);
}

/* The progress line learns of a bucket that will not come back. */
static void account(struct kpar_dispatch *d, int bucket, size_t ntests, size_t failed, size_t errors)
{
	d->done[bucket] = 1;
	d->prog->done++;
	d->prog->tests_done += ntests;
	d->prog->failed_tests += failed;
	d->prog->error_tests += errors;
	d->prog->est_remaining -= d->p->buckets[bucket - 1].estimate;
}

int kpar_dispatch_lose(struct kpar_dispatch *d, int bucket, const char *why, const char *detail)
{
	const struct kpar_plan_bucket *pb = &d->p->buckets[bucket - 1];
	struct kpar_bucket_result r;
	char *msg;
	size_t i;
	int rc;

	if (d->done[bucket])
		return 0;
	msg = kpar_xasprintf("kpar: bucket %d was given up after %d attempts (%s); test not run.\n%s",
			     bucket, d->attempts[bucket], why, detail ? detail : "");
	memset(&r, 0, sizeof r);
	r.plan = kpar_xstrdup(d->p->digest);
	r.bucket = bucket;
	r.attempt = d->attempts[bucket];
	r.worker = kpar_xstrdup(d->c->backend);
	r.started = r.finished = kpar_state_now();
	for (i = 0; i < pb->tests.n; i++) {
		struct kpar_test_result *t = kpar_bucket_result_add(&r, pb->tests.v[i], KPAR_ERROR, 0,
								    msg, strlen(msg));
		t->exit_code = -1;
		t->attempts = 0;
	}
	rc = kpar_state_collect(d->st, d->run, &r);
	kpar_bucket_result_free(&r);
	free(msg);
	if (rc < 0)
		return rc;
	d->stats.lost++;
	account(d, bucket, pb->tests.n, 0, pb->tests.n);
	kpar_progress_line(d->prog, "kpar: bucket %d: %s; giving up after %d attempts",
			   bucket, why, d->attempts[bucket]);
	return 0;
}

/* automake's lines and colours (lib/am/check.am): one per test as its
 * bucket comes back; "failed" shows what a person must look at. */
static void test_lines(const struct kpar_dispatch *d, const struct kpar_bucket_result *r)
{
	static const struct { const char *label, *color; } look[] = {
		[KPAR_PASS] = { "PASS", "\033[0;32m" }, [KPAR_FAIL] = { "FAIL", "\033[0;31m" },
		[KPAR_SKIP] = { "SKIP", "\033[1;34m" }, [KPAR_ERROR] = { "ERROR", "\033[0;35m" },
		[KPAR_FLAKY] = { "FLAKY", "\033[0;33m" }, [KPAR_XFAIL] = { "XFAIL", "\033[1;32m" },
		[KPAR_XPASS] = { "XPASS", "\033[0;31m" },
	};
	int all = strcmp(d->c->test_lines, "all") == 0;
	size_t i;

	if (strcmp(d->c->test_lines, "none") == 0)
		return;
	for (i = 0; i < r->ntests; i++) {
		const struct kpar_test_result *t = &r->tests[i];
		if (t->status > KPAR_XPASS || (!all && t->status != KPAR_FAIL && t->status != KPAR_ERROR &&
					       t->status != KPAR_FLAKY && t->status != KPAR_XPASS))
			continue;
		kpar_progress_line(d->prog, "%s%s:%s %s (%.2fs)", d->prog->color ? look[t->status].color : "",
				   look[t->status].label, d->prog->color ? "\033[m" : "", t->id, t->seconds);
	}
}

int kpar_dispatch_record(struct kpar_dispatch *d, int bucket, const char *text, size_t len,
			 const char *failure, const char *where, double took)
{
	const struct kpar_plan_bucket *pb = &d->p->buckets[bucket - 1];
	struct kpar_bucket_result r;
	char why[320];
	size_t i, failed = 0, errors = 0;
	int rc;

	if (bucket < 1 || (size_t)bucket > d->p->nbuckets || d->done[bucket])
		return KPAR_BUCKET_COLLECTED;
	memset(&r, 0, sizeof r);
	if (failure)
		snprintf(why, sizeof why, "%s", failure);
	if (failure || kpar_dispatch_verify(d, bucket, text, len, &r, why, sizeof why) < 0) {
		d->stats.failed_attempts++;
		if (d->attempts[bucket] <= d->c->worker_retries) {
			kpar_progress_line(d->prog, "kpar: bucket %d: %s [%s]; retrying (attempt %d)",
					   bucket, why, where ? where : "?", d->attempts[bucket] + 1);
			d->attempts[bucket]++;
			kpar_state_bucket_mark(d->st, d->run, bucket, "pending", NULL, d->attempts[bucket] - 1);
			return KPAR_BUCKET_RETRY;
		}
		{
			/* the end of what the worker said is the best clue */
			char *tail = text && len ? kpar_xasprintf("worker %s output ends with:\n%s",
				where ? where : "?", len > 2000 ? text + len - 2000 : text) : NULL;
			rc = kpar_dispatch_lose(d, bucket, why, tail);
			free(tail);
		}
		return rc < 0 ? rc : KPAR_BUCKET_LOST;
	}
	/* before the commit: a report of the committed results finds them */
	kpar_dispatch_keep_logs(d, text, len, &r);
	if ((rc = kpar_state_collect(d->st, d->run, &r)) < 0) {
		kpar_bucket_result_free(&r);
		return rc;
	}
	for (i = 0; i < r.ntests; i++) {
		failed += r.tests[i].status == KPAR_FAIL || r.tests[i].status == KPAR_XPASS;
		errors += r.tests[i].status == KPAR_ERROR;
	}
	d->stats.collected++;
	account(d, bucket, r.ntests, failed, errors);
	if (took <= 0)
		took = r.finished - r.started;  /* the platform's clock is coarser than the worker's */
	if (pb->estimate > 0 && took > 0) {
		/* Smooth the observed/estimated ratio so the ETA adapts to a
		 * machine slower or faster than the history says. */
		double ratio = took / pb->estimate;
		d->prog->scale = d->stats.collected == 1 ? ratio : 0.7 * d->prog->scale + 0.3 * ratio;
	}
	test_lines(d, &r);
	/* A bucket of one test that passed says nothing the progress line
	 * does not: a thousand such lines would bury the failures. */
	if (pb->tests.n > 1 || failed || errors)
		kpar_progress_line(d->prog, "kpar: bucket %d/%zu done: %zu test%s, %zu failed, "
				   "%zu error%s, %.1fs [%s]", bucket, d->p->nbuckets, r.ntests,
				   kpar_buf_plural(r.ntests), failed, errors, kpar_buf_plural(errors),
				   took, where ? where : r.worker ? r.worker : "?");
	kpar_bucket_result_free(&r);
	return KPAR_BUCKET_COLLECTED;
}
