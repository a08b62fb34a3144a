/* test_html.c - report/index.html: data embedded so no test id or output
 * can become markup, the script allowed by the page's own policy, totals,
 * retried and lost buckets, and a page of 10,000 tests.
 *
 * With KPAR_HTML_GEN_DIR set, the case "big" also writes its page there
 * (tests/pipeline/html.sh renders it in a browser). */
#include "config.h"

#include <stdlib.h>
#include <unistd.h>
#include <string.h>

#include <cjson/cJSON.h>
#include <openssl/evp.h>

#include "base/buf.h"
#include "base/digest.h"
#include "base/error.h"
#include "base/fs.h"
#include "run/html.h"
#include "test.h"

static const char hostile[] = "t\"'&amp;</script><script>alert(1)</script><!--<img src=x onerror=alert(2)> \xc3\xbc";

static void bucket(struct kpar_bucket_result *r, int n, int attempt, const char *worker, double s, double e)
{
	memset(r, 0, sizeof *r);
	r->plan = kpar_xstrdup("sha256:0123");
	r->bucket = n;
	r->attempt = attempt;
	r->worker = kpar_xstrdup(worker);
	r->started = s;
	r->finished = e;
}

static size_t count(const char *hay, const char *needle)
{
	size_t n = 0;
	const char *p = hay;

	while ((p = strstr(p, needle))) {
		n++;
		p += strlen(needle);
	}
	return n;
}

/* The page's data element, parsed; NULL if it is not there or not JSON. */
static cJSON *page_data(const char *page)
{
	const char *open = "<script type=\"application/json\" id=\"kpar-data\">";
	const char *s = strstr(page, open), *e;

	if (!s)
		return NULL;
	s += strlen(open);
	e = strstr(s, "</script>");
	return e ? cJSON_ParseWithLength(s, (size_t)(e - s)) : NULL;
}

static cJSON *find_test(cJSON *data, const char *id)
{
	cJSON *t;

	cJSON_ArrayForEach(t, cJSON_GetObjectItemCaseSensitive(data, "tests"))
		if (strcmp(cJSON_GetObjectItemCaseSensitive(t, "id")->valuestring, id) == 0)
			return t;
	return NULL;
}

static double num(cJSON *o, const char *key)
{
	cJSON *v = cJSON_GetObjectItemCaseSensitive(o, key);
	return cJSON_IsNumber(v) ? v->valuedouble : -1;
}

static void run_info(struct kpar_run_info *ri)
{
	memset(ri, 0, sizeof *ri);
	ri->id = 7;
	ri->plan = "sha256:0123456789abcdef";
	ri->backend = "local";
	ri->nbuckets = 3;
	ri->started = 1000;
	ri->finished = 1010;
}

KPAR_TEST(hostile_data_stays_data)
{
	struct kpar_bucket_result r[1];
	struct kpar_run_info ri;
	struct kpar_buf page = KPAR_BUF_INIT;
	static const char out[] = "expected 2\n</script><script>alert(3)</script>\n<!-- <SCRIPT>";
	static const char bad[] = "bytes \xff\xfe and a NUL \0 here";
	cJSON *data, *t;

	run_info(&ri);
	bucket(&r[0], 1, 1, "w</script>", 1001, 1003);
	kpar_bucket_result_add(&r[0], hostile, KPAR_FAIL, 1.5, out, strlen(out));
	kpar_bucket_result_add(&r[0], "bad\xff", KPAR_ERROR, 0.1, bad, sizeof bad - 1);
	kpar_html_render(&ri, r, 1, "evicted </script> pod", 1010, &page);
	/* the data element's and the script's ends, and nothing else */
	CHECK_INT(count(page.data, "</script"), 2);
	CHECK_INT(count(page.data, "</SCRIPT"), 0);
	CHECK_INT(count(page.data, "<!--"), 0);
	CHECK_INT(count(page.data, "<script"), 2);
	CHECK(!strstr(page.data, "<img"));
	CHECK(!strstr(page.data, "<SCRIPT"));
	data = page_data(page.data);
	CHECK(data != NULL);
	if (data) {
		t = find_test(data, hostile);
		CHECK(t != NULL);
		if (t)
			CHECK_STR(cJSON_GetObjectItemCaseSensitive(t, "out")->valuestring, out);
		/* not UTF-8, a NUL: shown as U+FFFD, the JSON still valid */
		t = find_test(data, "bad\xef\xbf\xbd");
		CHECK(t != NULL);
		if (t)
			CHECK_STR(cJSON_GetObjectItemCaseSensitive(t, "out")->valuestring,
				  "bytes \xef\xbf\xbd\xef\xbf\xbd and a NUL \xef\xbf\xbd here");
		CHECK_STR(cJSON_GetObjectItemCaseSensitive(data, "events")->valuestring, "evicted </script> pod");
		CHECK_STR(cJSON_GetObjectItemCaseSensitive(data, "verdict")->valuestring, "fail");
	}
	cJSON_Delete(data);
	kpar_buf_free(&page);
	kpar_bucket_result_free(&r[0]);
}

/* The policy allows exactly the page's own style and script: a hash that
 * does not match would leave a blank page with one console error. */
KPAR_TEST(policy_allows_the_script_and_nothing_else)
{
	struct kpar_run_info ri;
	struct kpar_buf page = KPAR_BUF_INIT;
	const char *tags[] = { "<script>", "<style>" }, *ends[] = { "</script>", "</style>" };
	const char *kinds[] = { "script-src", "style-src" };
	size_t k;

	run_info(&ri);
	kpar_html_render(&ri, NULL, 0, NULL, 1010, &page);
	CHECK(strstr(page.data, "default-src 'none'") != NULL);
	CHECK(!strstr(page.data, "unsafe-inline"));
	CHECK(!strstr(page.data, "http:") && !strstr(page.data, "https:"));
	for (k = 0; k < 2; k++) {
		const char *s = strstr(page.data, tags[k]), *e;
		unsigned char d[KPAR_SHA256_LEN];
		char enc[64], *want;
		if (!s) {
			CHECK(s != NULL);
			continue;
		}
		s += strlen(tags[k]);
		e = strstr(s, ends[k]);
		kpar_sha256(s, (size_t)(e - s), d);
		EVP_EncodeBlock((unsigned char *)enc, d, (int)sizeof d);
		want = kpar_xasprintf("%s 'sha256-%s'", kinds[k], enc);
		CHECK(strstr(page.data, want) != NULL);
		free(want);
	}
	kpar_buf_free(&page);
}

KPAR_TEST(totals_retries_and_lost_buckets)
{
	struct kpar_bucket_result r[3];
	struct kpar_run_info ri;
	struct kpar_buf page = KPAR_BUF_INIT;
	struct kpar_test_result *t;
	cJSON *data, *tot, *b;

	run_info(&ri);
	ri.finished = 0;  /* written before the run's end is stored: now is the end */
	bucket(&r[0], 1, 1, "local-w1", 1001, 1004);
	kpar_bucket_result_add(&r[0], "a", KPAR_PASS, 1, "ok\n", 3);
	kpar_bucket_result_add(&r[0], "s", KPAR_SKIP, 0, "probing\nSKIP: no network\n\n", 26);
	t = kpar_bucket_result_add(&r[0], "f", KPAR_FLAKY, 1, "boom\n", 5);
	t->attempts = 2;
	bucket(&r[1], 2, 2, "local-w2", 1002, 1009);
	kpar_bucket_result_add(&r[1], "x", KPAR_FAIL, 6, "no\n", 3);
	/* as kpar_dispatch_lose records a bucket given up */
	bucket(&r[2], 3, 3, "local", 1008, 1008);
	t = kpar_bucket_result_add(&r[2], "l1", KPAR_ERROR, 0, "given up", 8);
	t->attempts = 0;
	t->exit_code = -1;
	kpar_html_render(&ri, r, 3, NULL, 1012, &page);
	data = page_data(page.data);
	CHECK(data != NULL);
	if (data) {
		tot = cJSON_GetObjectItemCaseSensitive(data, "totals");
		CHECK_INT(num(tot, "tests"), 5);
		CHECK_INT(num(tot, "passed"), 2);  /* flaky counts as passed, as in the summary */
		CHECK_INT(num(tot, "failed"), 1);
		CHECK_INT(num(tot, "errors"), 1);
		CHECK_INT(num(tot, "skipped"), 1);
		CHECK_INT(num(tot, "flaky"), 1);
		CHECK_INT(num(data, "wall"), 12);
		b = cJSON_GetArrayItem(cJSON_GetObjectItemCaseSensitive(data, "buckets"), 1);
		CHECK_INT(num(b, "a"), 2);
		CHECK_INT(num(b, "s"), 2);
		CHECK_INT(num(b, "e"), 9);
		CHECK(!cJSON_GetObjectItemCaseSensitive(b, "lost"));
		b = cJSON_GetArrayItem(cJSON_GetObjectItemCaseSensitive(data, "buckets"), 2);
		CHECK(cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(b, "lost")));
		CHECK_STR(cJSON_GetObjectItemCaseSensitive(find_test(data, "s"), "why")->valuestring, "SKIP: no network");
		/* a passing test's output is left to junit.xml */
		CHECK(!cJSON_GetObjectItemCaseSensitive(find_test(data, "a"), "out"));
		CHECK_STR(cJSON_GetObjectItemCaseSensitive(find_test(data, "f"), "out")->valuestring, "boom\n");
	}
	CHECK(strstr(page.data, "<title>kpar run 7: FAIL, 5 tests, 1 failed, 1 error</title>") != NULL);
	cJSON_Delete(data);
	kpar_buf_free(&page);
	kpar_bucket_result_free(&r[0]);
	kpar_bucket_result_free(&r[1]);
	kpar_bucket_result_free(&r[2]);
}

/* 10,000 tests in 300 buckets on 64 workers, some failing with long
 * outputs: the page holds them all, and the outputs kept stay within the
 * page's budget. */
#define BIG_TESTS 10000
#define BIG_BUCKETS 300
KPAR_TEST(big)
{
	struct kpar_bucket_result *r = kpar_xcalloc(BIG_BUCKETS, sizeof *r);
	struct kpar_run_info ri;
	struct kpar_buf page = KPAR_BUF_INIT;
	const char *gen = getenv("KPAR_HTML_GEN_DIR");
	char *longout = kpar_xmalloc(200000);
	double at[64] = { 0 };
	size_t i, j;
	cJSON *data;

	memset(longout, 'x', 199999);
	longout[199999] = '\0';
	run_info(&ri);
	ri.nbuckets = BIG_BUCKETS;
	ri.finished = 0;
	for (i = 0; i < BIG_BUCKETS; i++) {
		/* uneven buckets, so the timeline has something to show */
		int w = (int)(i % 64);
		size_t n = BIG_TESTS / BIG_BUCKETS + (i < BIG_TESTS % BIG_BUCKETS);
		double len = 0;
		char name[32];
		snprintf(name, sizeof name, "pod-%d", w + 1);
		for (j = 0; j < n; j++)
			len += 0.01 + (double)((i * 31 + j * 7) % 50) / 100 * (1 + (w == 5));
		bucket(&r[i], (int)i + 1, i % 37 == 3 ? 2 : 1, i % 97 == 50 ? "k8s" : name, 1000 + at[w],
		       1000 + at[w] + (i % 97 == 50 ? 0 : len + 0.2));
		at[w] += i % 97 == 50 ? 0 : len + 0.3;
		for (j = 0; j < n; j++) {
			char id[64];
			size_t k = i * (BIG_TESTS / BIG_BUCKETS) + j;
			enum kpar_status st = i % 97 == 50 ? KPAR_ERROR : k % 101 == 0 ? KPAR_FAIL :
				k % 211 == 0 ? KPAR_SKIP : k % 307 == 0 ? KPAR_FLAKY : k % 401 == 0 ? KPAR_ERROR : KPAR_PASS;
			struct kpar_test_result *t;
			snprintf(id, sizeof id, "tests/suite%02zu/case_%05zu%s", k % 40, k, k == 4242 ? "<b>&" : "");
			t = kpar_bucket_result_add(&r[i], j == 0 && i == 7 ? hostile : id, st,
				0.01 + (double)((i * 31 + j * 7) % 50) / 100 * (1 + (i % 64 == 5)),
				st == KPAR_FAIL ? longout : st == KPAR_SKIP ? "SKIP: not on this platform\n" : "ok\n",
				st == KPAR_FAIL ? 199999 : st == KPAR_SKIP ? 27 : 3);
			if (i % 97 == 50)
				t->attempts = 0;
			else if (st == KPAR_FLAKY)
				t->attempts = 2;
		}
	}
	kpar_html_render(&ri, r, BIG_BUCKETS, "pod-9: evicted (node pressure)\n", 1000 + 90, &page);
	data = page_data(page.data);
	CHECK(data != NULL);
	if (data) {
		CHECK_INT(cJSON_GetArraySize(cJSON_GetObjectItemCaseSensitive(data, "tests")), BIG_TESTS);
		CHECK_INT(num(cJSON_GetObjectItemCaseSensitive(data, "totals"), "tests"), BIG_TESTS);
	}
	/* ~100 failures of 200 kB each: head and tail of 64 KiB, within budget */
	CHECK(page.len < (size_t)(16u << 20) + 100 * (64u << 10) + (4u << 20));
	CHECK(page.len > 100 * (64u << 10));
	if (gen) {
		char *path = kpar_fs_join(gen, "index.html");
		CHECK_OK(kpar_fs_mkdir_p(gen, 0755));
		CHECK_OK(kpar_fs_write_atomic(path, page.data, page.len));
		free(path);
	}
	cJSON_Delete(data);
	kpar_buf_free(&page);
	for (i = 0; i < BIG_BUCKETS; i++)
		kpar_bucket_result_free(&r[i]);
	free(r);
	free(longout);
}

KPAR_TEST(write_file)
{
	char dir[] = "/tmp/kpar-test-html.XXXXXX";
	struct kpar_run_info ri;
	char *path, *text = NULL;

	if (!mkdtemp(dir))
		exit(99);
	run_info(&ri);
	CHECK_OK(kpar_html_write(dir, &ri, NULL, 0, NULL));
	path = kpar_fs_join(dir, "index.html");
	CHECK_OK(kpar_fs_read_all(path, &text, NULL));
	CHECK(text && strncmp(text, "<!DOCTYPE html>", 15) == 0);
	unlink(path);
	rmdir(dir);
	free(path);
	free(text);
	/* a directory that is not there: an error naming it, no page */
	CHECK(kpar_html_write("/nonexistent/kpar-html", &ri, NULL, 0, NULL) < 0);
	CHECK(strstr(kpar_error_last(), "/nonexistent/kpar-html") != NULL);
	kpar_error_clear();
}

KPAR_TEST_MAIN(KPAR_CASE(hostile_data_stays_data), KPAR_CASE(policy_allows_the_script_and_nothing_else),
	       KPAR_CASE(totals_retries_and_lost_buckets), KPAR_CASE(big), KPAR_CASE(write_file))
