/* test_junit.c - reading JUnit XML and writing the merged report. */
#include "config.h"

#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <expat.h>

#include "base/buf.h"
#include "base/error.h"
#include "base/fs.h"
#include "run/junit.h"
#include "run/record.h"
#include "test.h"

static char dir[64];

static char *write_tmp(const char *name, const char *content)
{
	char *path;

	if (!dir[0]) {
		snprintf(dir, sizeof dir, "/tmp/kpar-test-junit.XXXXXX");
		if (!mkdtemp(dir))
			exit(99);
	}
	path = kpar_fs_join(dir, name);
	if (kpar_fs_write_atomic(path, content, strlen(content)) < 0)
		exit(99);
	return path;
}

static const struct kpar_test_result *find(const struct kpar_bucket_result *r, const char *id)
{
	size_t i;

	for (i = 0; i < r->ntests; i++)
		if (strcmp(r->tests[i].id, id) == 0)
			return &r->tests[i];
	fprintf(stderr, "no result for '%s'\n", id);
	return NULL;
}

static int has(const struct kpar_test_result *t, const char *s)
{
	return t && t->output && memmem(t->output, t->output_len, s, strlen(s)) != NULL;
}

KPAR_TEST(read_dialects)
{
	static const char xml[] =
		"<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n"
		"<testsuites>\n"
		" <testsuite name=\"outer\" tests=\"6\">\n"
		"  <testsuite name=\"inner\">\n"
		"   <testcase classname=\"pkg.Cls\" name=\"ok\" time=\"1.5\"/>\n"
		"   <testcase classname=\"pkg.Cls\" name=\"bad\" time=\"0.25\">\n"
		"     <failure message=\"expected 1 &lt; 2\" type=\"Assert\">at line 3</failure>\n"
		"     <system-out>stdout text</system-out>\n"
		"     <system-err>stderr &amp; more</system-err>\n"
		"   </testcase>\n"
		"  </testsuite>\n"
		"  <testcase name=\"crashed\"><error message=\"segfault\"/></testcase>\n"
		"  <testcase name=\"skipped one\" time=\"x\"><skipped message=\"no gpu\"/></testcase>\n"
		"  <testcase name=\"both\"><failure/><error message=\"worse\"/></testcase>\n"
		"  <testcase name=\"caf\xc3\xa9 &quot;q&quot;\" time=\"2\"><properties><property name=\"a\" value=\"b\"/></properties></testcase>\n"
		" </testsuite>\n"
		" <system-out>suite level output is ignored</system-out>\n"
		"</testsuites>\n";
	struct kpar_bucket_result r = { 0 };
	const struct kpar_test_result *t;
	char *path = write_tmp("dialects.xml", xml);

	CHECK_OK(kpar_junit_read(path, &r));
	CHECK_INT(r.ntests, 6);
	t = find(&r, "pkg.Cls.ok");
	CHECK(t && t->status == KPAR_PASS && t->seconds == 1.5);
	t = find(&r, "pkg.Cls.bad");
	CHECK(t && t->status == KPAR_FAIL && t->seconds == 0.25);
	CHECK(has(t, "expected 1 < 2") && has(t, "at line 3") && has(t, "stdout text") &&
	      has(t, "stderr & more"));
	t = find(&r, "crashed");
	CHECK(t && t->status == KPAR_ERROR && has(t, "segfault"));
	t = find(&r, "skipped one");
	CHECK(t && t->status == KPAR_SKIP && t->seconds == 0 && has(t, "no gpu"));
	t = find(&r, "both");
	CHECK(t && t->status == KPAR_ERROR);
	t = find(&r, "caf\xc3\xa9 \"q\"");
	CHECK(t && t->status == KPAR_PASS && t->seconds == 2);
	CHECK(!has(t, "suite level"));
	kpar_bucket_result_free(&r);
	free(path);
}

KPAR_TEST(read_errors)
{
	struct kpar_bucket_result r = { 0 };
	char *path;

	CHECK_INT(kpar_junit_read("/nonexistent/junit.xml", &r), KPAR_ENOTFOUND);
	CHECK(strstr(kpar_error_last(), "/nonexistent/junit.xml") != NULL);

	path = write_tmp("broken.xml", "<testsuite>\n<testcase name=\"a\">\n</testsuite>\n");
	CHECK_INT(kpar_junit_read(path, &r), KPAR_EINVAL);
	CHECK(strstr(kpar_error_last(), path) != NULL);
	CHECK(strstr(kpar_error_last(), "line 3") != NULL);
	kpar_bucket_result_free(&r);
	free(path);

	path = write_tmp("truncated.xml", "<testsuite>\n<testcase name=\"a\"/>\n");
	CHECK_INT(kpar_junit_read(path, &r), KPAR_EINVAL);
	kpar_bucket_result_free(&r);
	free(path);

	path = write_tmp("empty.xml", "");
	CHECK_INT(kpar_junit_read(path, &r), KPAR_EINVAL);
	kpar_bucket_result_free(&r);
	free(path);

	path = write_tmp("noname.xml", "<testsuite>\n\n<testcase time=\"1\"/></testsuite>");
	CHECK_INT(kpar_junit_read(path, &r), KPAR_EINVAL);
	CHECK(strstr(kpar_error_last(), "line 3: <testcase> without a name") != NULL);
	kpar_bucket_result_free(&r);
	free(path);

	path = write_tmp("laughs.xml",
		"<?xml version=\"1.0\"?>\n<!DOCTYPE l [\n<!ENTITY a \"aaaaaaaaaa\">\n"
		"<!ENTITY b \"&a;&a;&a;&a;&a;&a;&a;&a;&a;&a;\">\n]>\n"
		"<testsuite><testcase name=\"&b;\"/></testsuite>\n");
	CHECK_INT(kpar_junit_read(path, &r), KPAR_EINVAL);
	CHECK(strstr(kpar_error_last(), "entity") != NULL);
	kpar_bucket_result_free(&r);
	free(path);
}

/* Collects what an independent expat pass sees in the written report. */
struct seen {
	int suites, cases, failures, errors, skipped, properties;
	int in_out;
	struct kpar_buf names, props, text;
	char suite_attrs[256];
};

static const char *attr(const XML_Char **a, const char *name)
{
	for (; *a; a += 2)
		if (strcmp(a[0], name) == 0)
			return a[1];
	return NULL;
}

static void XMLCALL s_start(void *ud, const XML_Char *el, const XML_Char **a)
{
	struct seen *s = ud;

	if (strcmp(el, "testsuite") == 0) {
		s->suites++;
		if (s->suites == 1)
			snprintf(s->suite_attrs, sizeof s->suite_attrs, "%s %s %s %s %s",
				 attr(a, "name"), attr(a, "tests"), attr(a, "failures"),
				 attr(a, "errors"), attr(a, "skipped"));
	} else if (strcmp(el, "testcase") == 0) {
		s->cases++;
		kpar_buf_puts(&s->names, attr(a, "name"));
		kpar_buf_putc(&s->names, '|');
		CHECK_STR(attr(a, "classname"), "kpar");
		CHECK(attr(a, "time") != NULL);
	} else if (strcmp(el, "failure") == 0) {
		s->failures++;
	} else if (strcmp(el, "error") == 0) {
		s->errors++;
	} else if (strcmp(el, "skipped") == 0) {
		s->skipped++;
	} else if (strcmp(el, "property") == 0) {
		s->properties++;
		kpar_buf_printf(&s->props, "%s=%s,", attr(a, "name"), attr(a, "value"));
	} else if (strcmp(el, "system-out") == 0) {
		s->in_out = 1;
	}
}

static void XMLCALL s_end(void *ud, const XML_Char *el)
{
	struct seen *s = ud;

	if (strcmp(el, "system-out") == 0) {
		s->in_out = 0;
		kpar_buf_putc(&s->text, '|');
	} else if (strcmp(el, "testcase") == 0) {
		kpar_buf_puts(&s->props, ";");
	}
}

static void XMLCALL s_text(void *ud, const XML_Char *t, int len)
{
	struct seen *s = ud;

	if (s->in_out)
		kpar_buf_add(&s->text, t, (size_t)len);
}

static int parse_report(const char *xml, size_t len, struct seen *s)
{
	XML_Parser p = XML_ParserCreate(NULL);
	int ok;

	memset(s, 0, sizeof *s);
	XML_SetUserData(p, s);
	XML_SetElementHandler(p, s_start, s_end);
	XML_SetCharacterDataHandler(p, s_text);
	ok = XML_Parse(p, xml, (int)len, XML_TRUE) == XML_STATUS_OK;
	if (!ok)
		fprintf(stderr, "report does not parse: line %lu: %s\n",
			(unsigned long)XML_GetCurrentLineNumber(p),
			XML_ErrorString(XML_GetErrorCode(p)));
	XML_ParserFree(p);
	return ok;
}

static void free_seen(struct seen *s)
{
	kpar_buf_free(&s->names);
	kpar_buf_free(&s->props);
	kpar_buf_free(&s->text);
}

KPAR_TEST(write_report)
{
	static const char nasty[] = "a&b<c>d\"e'f\x01g\x1bh\ti\r\nj\xff\xfek\xc3\xa9l\xef\xbf\xbe\0m]]>";
	struct kpar_bucket_result b1 = { 0 }, b2 = { 0 }, back = { 0 };
	struct kpar_bucket_result *list[2] = { &b1, &b2 };
	struct kpar_test_result *t;
	struct kpar_buf xml = KPAR_BUF_INIT;
	const struct kpar_test_result *rt;
	struct seen s;
	char *buf = NULL, *path;
	size_t len = 0;
	FILE *f;

	b1.bucket = 1;
	b1.attempt = 2;
	b1.worker = kpar_xstrdup("pod-\"a\"");
	b1.started = 1700000000;
	kpar_bucket_result_add(&b1, "ok <1> & \"2\"", KPAR_PASS, 0.5, "fine\n", 5);
	t = kpar_bucket_result_add(&b1, "broken", KPAR_FAIL, 1.25, nasty, sizeof nasty - 1);
	t->exit_code = 2;
	t = kpar_bucket_result_add(&b1, "flaky one", KPAR_FLAKY, 2, "first failed\n", 13);
	t->attempts = 3;
	b2.bucket = 2;
	b2.attempt = 1;
	b2.worker = kpar_xstrdup("pod-b");
	t = kpar_bucket_result_add(&b2, "crash", KPAR_ERROR, 3, "core dumped", 11);
	t->exit_code = -1;
	kpar_bucket_result_add(&b2, "skip\xff", KPAR_SKIP, 0, NULL, 0);
	kpar_bucket_result_add(&b2, "broken", KPAR_PASS, 9, NULL, 0);   /* duplicate id */

	f = open_memstream(&buf, &len);
	CHECK_OK(kpar_junit_write(f, "my \"suite\"", list, 2));
	fclose(f);
	kpar_buf_add(&xml, buf, len);
	free(buf);
	CHECK(parse_report(xml.data, xml.len, &s));
	CHECK_INT(s.suites, 2);
	CHECK_INT(s.cases, 5);
	CHECK_INT(s.failures, 1);
	CHECK_INT(s.errors, 1);
	CHECK_INT(s.skipped, 1);
	CHECK_STR(s.suite_attrs, "bucket-1 3 1 0 0");
	CHECK_STR(s.names.data, "ok <1> & \"2\"|broken|flaky one|crash|skip\xef\xbf\xbd|");
	/* Properties name the bucket, worker and attempt; flaky is visible. */
	CHECK(strstr(s.props.data, "bucket=1,worker=pod-\"a\",attempt=2,attempts=1,status=pass,") != NULL);
	CHECK(strstr(s.props.data, "status=flaky,failed_attempts=2,") != NULL);
	CHECK(strstr(s.props.data, "bucket=2,worker=pod-b,attempt=1,attempts=1,status=error,exit_code=-1") != NULL);
	/* Text survives escaping; bytes XML cannot carry are dropped or replaced. */
	CHECK(strstr(s.text.data, "a&b<c>d\"e'fgh\ti\r\nj\xef\xbf\xbd\xef\xbf\xbdk\xc3\xa9l\xef\xbf\xbdm]]>|") != NULL);
	CHECK(strstr(xml.data, "testsuites name=\"my &quot;suite&quot;\" tests=\"5\" failures=\"1\" "
		     "errors=\"1\" skipped=\"1\"") != NULL);
	CHECK(strstr(xml.data, "timestamp=\"2023-11-14T22:13:20\"") != NULL);

	/* kpar's own reader reads the report back. */
	path = write_tmp("report.xml", xml.data);
	CHECK_OK(kpar_junit_read(path, &back));
	CHECK_INT(back.ntests, 5);
	rt = find(&back, "kpar.broken");
	CHECK(rt && rt->status == KPAR_FAIL && rt->seconds == 1.25);
	rt = find(&back, "kpar.flaky one");
	CHECK(rt && rt->status == KPAR_PASS);
	rt = find(&back, "kpar.crash");
	CHECK(rt && rt->status == KPAR_ERROR && has(rt, "core dumped"));
	kpar_bucket_result_free(&back);
	free(path);
	free_seen(&s);

	/* No buckets: still a valid document. */
	f = open_memstream(&buf, &len);
	CHECK_OK(kpar_junit_write(f, NULL, NULL, 0));
	fclose(f);
	CHECK(parse_report(buf, len, &s));
	CHECK_INT(s.cases, 0);
	free(buf);
	free_seen(&s);

	kpar_buf_free(&xml);
	kpar_bucket_result_free(&b1);
	kpar_bucket_result_free(&b2);
}

KPAR_TEST(write_error)
{
	struct kpar_bucket_result b = { 0 };
	struct kpar_bucket_result *list[1] = { &b };
	FILE *f = fopen("/dev/full", "w");

	if (!f)
		return;
	kpar_bucket_result_add(&b, "x", KPAR_PASS, 0, NULL, 0);
	CHECK_INT(kpar_junit_write(f, "s", list, 1), KPAR_EIO);
	fclose(f);
	kpar_bucket_result_free(&b);
}

static void cleanup(void)
{
	if (dir[0])
		kpar_fs_remove_tree(dir);
}

KPAR_TEST(zz_cleanup)
{
	cleanup();
	CHECK(1);
}

KPAR_TEST_MAIN(KPAR_CASE(read_dialects), KPAR_CASE(read_errors), KPAR_CASE(write_report),
	       KPAR_CASE(write_error), KPAR_CASE(zz_cleanup))
