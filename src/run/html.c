/* html.c - report/index.html (see html.h).  The page's CSS and JavaScript
 * are src/run/html_page.css and html_page.js, turned into C strings at
 * build time (html_page.inc). */
#include "config.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cjson/cJSON.h>
#include <openssl/evp.h>

#include "base/buf.h"
#include "base/digest.h"
#include "base/error.h"
#include "base/fs.h"
#include "run/html.h"
#include "run/testlog.h"

#include "src/run/html_page.inc"

/* Outputs kept for failed, erred and flaky tests: head and tail of each up
 * to OUT_MAX, then OUT_SMALL each once OUT_BUDGET is spent, so a run where
 * everything fails still gives a page a browser opens. */
#define OUT_MAX (64u << 10)
#define OUT_SMALL (4u << 10)
#define OUT_BUDGET (16u << 20)
#define SKIP_OUT_MAX (2u << 10)

/* data as valid UTF-8 text: a byte that does not start a well-formed
 * sequence (and NUL, which would end the JSON string) becomes U+FFFD. */
static char *clean_text(const char *data, size_t len)
{
	struct kpar_buf b = KPAR_BUF_INIT;
	size_t i = 0, n;

	kpar_buf_grow(&b, len + 1);
	while (i < len) {
		n = data[i] ? kpar_utf8_next(data + i, len - i, NULL) : 0;
		if (n == 0) {
			kpar_buf_puts(&b, "\xef\xbf\xbd");
			i++;
		} else {
			kpar_buf_add(&b, data + i, n);
			i += n;
		}
	}
	kpar_buf_putc(&b, '\0');  /* an empty text is "" rather than NULL */
	return kpar_buf_detach(&b, NULL);
}

/* Times to the millisecond: the page has no use for more digits, and
 * 10,000 tests' worth of them would weigh on its size. */
static double ms(double secs)
{
	return floor(secs * 1000 + 0.5) / 1000;
}

static void add_text(cJSON *o, const char *key, const char *data, size_t len)
{
	char *s = clean_text(data, len);
	cJSON_AddStringToObject(o, key, s);
	free(s);
}

/* kpar_dispatch_lose records a bucket given up as every test erred with
 * no attempt made: that is how a lost bucket is told from one whose
 * worker ran the tests. */
static int bucket_lost(const struct kpar_bucket_result *r)
{
	size_t i;

	if (r->ntests == 0)
		return 0;
	for (i = 0; i < r->ntests; i++)
		if (r->tests[i].attempts != 0 || r->tests[i].status != KPAR_ERROR)
			return 0;
	return 1;
}

static cJSON *build_data(const struct kpar_run_info *ri, const struct kpar_bucket_result *res, size_t nres,
			 const char *events, double now)
{
	cJSON *root = cJSON_CreateObject(), *buckets, *tests, *tot;
	struct kpar_buf out = KPAR_BUF_INIT;
	size_t i, j, ntests = 0, passed = 0, failed = 0, errors = 0, skipped = 0, flaky = 0, spent = 0;
	double t0 = ri->started, t1, test_time = 0;

	/* The report is written as the run ends, before its end is stored
	 * (as the summary's wall time, see report.c). */
	t1 = ri->finished > ri->started ? ri->finished : now;
	for (i = 0; i < nres; i++) {
		if (res[i].started > 0 && (t0 <= 0 || res[i].started < t0))
			t0 = res[i].started;
		if (res[i].finished > t1)
			t1 = res[i].finished;
	}
	if (t1 < t0)
		t1 = t0;
	cJSON_AddNumberToObject(root, "kpar_report", 1);
	cJSON_AddStringToObject(root, "version", PACKAGE_VERSION);
	cJSON_AddNumberToObject(root, "run", (double)ri->id);
	add_text(root, "plan", ri->plan ? ri->plan : "", ri->plan ? strlen(ri->plan) : 0);
	add_text(root, "backend", ri->backend ? ri->backend : "?", ri->backend ? strlen(ri->backend) : 1);
	cJSON_AddNumberToObject(root, "nbuckets", (double)ri->nbuckets);
	cJSON_AddNumberToObject(root, "started", t0);
	cJSON_AddNumberToObject(root, "wall", ms(ri->started > 0 ? t1 - ri->started : t1 - t0));
	if (events && *events)
		add_text(root, "events", events, strlen(events));

	buckets = cJSON_AddArrayToObject(root, "buckets");
	tests = cJSON_AddArrayToObject(root, "tests");
	for (i = 0; i < nres; i++) {
		const struct kpar_bucket_result *r = &res[i];
		cJSON *b = cJSON_CreateObject();
		const char *w = r->worker ? r->worker : "?";

		cJSON_AddNumberToObject(b, "n", r->bucket);
		cJSON_AddNumberToObject(b, "a", r->attempt);
		add_text(b, "w", w, strlen(w));
		cJSON_AddNumberToObject(b, "s", r->started > 0 ? ms(r->started - t0) : 0);
		cJSON_AddNumberToObject(b, "e", r->finished > 0 ? ms(r->finished - t0) : 0);
		if (bucket_lost(r))
			cJSON_AddTrueToObject(b, "lost");
		cJSON_AddItemToArray(buckets, b);
		for (j = 0; j < r->ntests; j++) {
			const struct kpar_test_result *t = &r->tests[j];
			cJSON *o = cJSON_CreateObject();

			add_text(o, "id", t->id, strlen(t->id));
			cJSON_AddStringToObject(o, "st", kpar_status_name(t->status));
			cJSON_AddNumberToObject(o, "sec", ms(t->seconds));
			cJSON_AddNumberToObject(o, "att", t->attempts);
			cJSON_AddNumberToObject(o, "exit", t->exit_code);
			cJSON_AddNumberToObject(o, "b", (double)i);
			/* the test's whole log, beside this page (testlog.h) */
			kpar_buf_clear(&out);
			kpar_buf_puts(&out, "logs/");
			kpar_testlog_name(t->id, &out);
			add_text(o, "log", out.data, out.len);
			ntests++;
			test_time += t->seconds;
			switch (t->status) {
			case KPAR_PASS: passed++; break;
			case KPAR_FAIL: failed++; break;
			case KPAR_ERROR: errors++; break;
			case KPAR_SKIP: skipped++; break;
			case KPAR_FLAKY: flaky++; passed++; break;
			/* as junit.xml has them: an XPASS is a failure, an XFAIL a
			 * pass with a note */
			case KPAR_XFAIL: passed++; break;
			case KPAR_XPASS: failed++; break;
			}
			if (t->status == KPAR_SKIP) {
				size_t len;
				const char *why = kpar_record_skip_reason(t, 200, &len);
				if (why)
					add_text(o, "why", why, len);
			}
			if (t->output && t->output_len && t->status != KPAR_PASS) {
				size_t max = t->status == KPAR_SKIP ? SKIP_OUT_MAX : spent < OUT_BUDGET ? OUT_MAX : OUT_SMALL;
				kpar_buf_clear(&out);
				kpar_record_trim(&out, t->output, t->output_len, max, t->status != KPAR_SKIP);
				spent += out.len;
				add_text(o, "out", out.data, out.len);
			}
			cJSON_AddItemToArray(tests, o);
		}
	}
	tot = cJSON_AddObjectToObject(root, "totals");
	cJSON_AddNumberToObject(tot, "tests", (double)ntests);
	cJSON_AddNumberToObject(tot, "passed", (double)passed);
	cJSON_AddNumberToObject(tot, "failed", (double)failed);
	cJSON_AddNumberToObject(tot, "errors", (double)errors);
	cJSON_AddNumberToObject(tot, "skipped", (double)skipped);
	cJSON_AddNumberToObject(tot, "flaky", (double)flaky);
	cJSON_AddNumberToObject(tot, "test_time", ms(test_time));
	cJSON_AddStringToObject(root, "verdict", failed || errors ? "fail" : "pass");
	kpar_buf_free(&out);
	return root;
}

/* "'sha256-<base64>'" for a Content-Security-Policy source list. */
static void add_csp_hash(struct kpar_buf *b, const char *text)
{
	unsigned char d[KPAR_SHA256_LEN];
	char enc[4 * ((KPAR_SHA256_LEN + 2) / 3) + 1];

	kpar_sha256(text, strlen(text), d);
	EVP_EncodeBlock((unsigned char *)enc, d, (int)sizeof d);
	kpar_buf_printf(b, "'sha256-%s'", enc);
}

void kpar_html_render(const struct kpar_run_info *ri, const struct kpar_bucket_result *res,
		      size_t nres, const char *events, double now, struct kpar_buf *out)
{
	cJSON *data = build_data(ri, res, nres, events, now);
	cJSON *tot = cJSON_GetObjectItemCaseSensitive(data, "totals");
	char *json = cJSON_PrintUnformatted(data);
	const char *p;
	int ntests = cJSON_GetObjectItemCaseSensitive(tot, "tests")->valueint;
	int failed = cJSON_GetObjectItemCaseSensitive(tot, "failed")->valueint;
	int errors = cJSON_GetObjectItemCaseSensitive(tot, "errors")->valueint;

	if (!json) {
		/* cJSON's allocation failed: out of memory is fatal (see buf.h) */
		fputs("kpar: out of memory\n", stderr);
		abort();
	}
	kpar_buf_puts(out, "<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n"
		      "<meta http-equiv=\"Content-Security-Policy\" content=\"default-src 'none'; script-src ");
	add_csp_hash(out, html_js);
	kpar_buf_puts(out, "; style-src ");
	add_csp_hash(out, html_css);
	kpar_buf_puts(out, "; img-src 'none'; connect-src 'none'; base-uri 'none'; form-action 'none'\">\n"
		      "<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n");
	/* numbers only: no test data reaches markup */
	kpar_buf_printf(out, "<title>kpar run %lld: %s, %d test%s, %d failed, %d error%s</title>\n", ri->id,
			failed || errors ? "FAIL" : "PASS", ntests, kpar_buf_plural((size_t)ntests), failed, errors,
			kpar_buf_plural((size_t)errors));
	kpar_buf_puts(out, "<style>");
	kpar_buf_puts(out, html_css);
	kpar_buf_puts(out, "</style>\n</head>\n<body>\n<noscript><p>This report is drawn by its own inline "
		      "script; see summary.txt and junit.xml beside it.</p></noscript>\n"
		      "<div id=\"app\"></div>\n<script type=\"application/json\" id=\"kpar-data\">");
	/* '<' occurs only inside JSON strings, where \u003c means the same:
	 * nothing in an id or an output can close this element or open a
	 * comment that would change how the HTML parser reads it. */
	for (p = json; *p; p++) {
		if (*p == '<')
			kpar_buf_puts(out, "\\u003c");
		else
			kpar_buf_putc(out, *p);
	}
	kpar_buf_puts(out, "</script>\n<script>");
	kpar_buf_puts(out, html_js);
	kpar_buf_puts(out, "</script>\n</body>\n</html>\n");
	free(json);
	cJSON_Delete(data);
}

int kpar_html_write(const char *dir, const struct kpar_run_info *ri,
		    const struct kpar_bucket_result *res, size_t nres, const char *events)
{
	struct kpar_buf page = KPAR_BUF_INIT;
	char *path = kpar_fs_join(dir, "index.html");
	int rc;

	kpar_html_render(ri, res, nres, events, kpar_state_now(), &page);
	rc = kpar_fs_write_atomic(path, page.data, page.len);
	kpar_buf_free(&page);
	free(path);
	return rc;
}
