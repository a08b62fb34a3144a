/* junit.c - JUnit XML in both directions: reading what a test command
 * wrote (expat) and writing kpar's merged report.
 *
 * Reading accepts the common dialects (Ant, Maven surefire, pytest,
 * go-junit-report): <testsuites>/<testsuite> nesting is ignored, each
 * <testcase> becomes one result, and its outcome is the worst child:
 * <error> > <failure> > <skipped> > pass.  Documents with entity
 * declarations are refused outright (no entity expansion attacks).
 *
 * Writing emits only what XML 1.0 can carry: text is escaped, control
 * characters other than tab/newline/CR are dropped, invalid UTF-8 becomes
 * U+FFFD, so a test printing binary garbage cannot make the report
 * unparsable.
 */
#include "config.h"

#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <expat.h>

#include "base/buf.h"
#include "base/error.h"
#include "base/fs.h"
#include "run/junit.h"
#include "run/record.h"

/* ---- reading ---------------------------------------------------------- */

enum capture_kind { CAP_NONE, CAP_FAILURE, CAP_SYSOUT, CAP_SYSERR };

struct reader {
	XML_Parser parser;
	const char *path;
	struct kpar_bucket_result *out;  /* NULL: cases go to fn, outputs are not kept */
	kpar_junit_case_fn fn;
	void *ud;
	int in_case;
	int case_depth;          /* element depth of the open <testcase> */
	int depth;
	enum capture_kind cap;
	int cap_depth;
	char *name, *classname, *file;
	double seconds;
	int has_time;
	enum kpar_status status;
	struct kpar_buf fail, sysout, syserr;
	int rc;
};

static const char *attr(const XML_Char **atts, const char *name)
{
	size_t i;

	for (i = 0; atts[i]; i += 2)
		if (strcmp(atts[i], name) == 0)
			return atts[i + 1];
	return NULL;
}

static void fail_parse(struct reader *r, int code, const char *what)
{
	if (r->rc < 0)
		return;
	r->rc = kpar_error_set(code, "JUnit file '%s': line %lu: %s", r->path,
			       (unsigned long)XML_GetCurrentLineNumber(r->parser), what);
	XML_StopParser(r->parser, XML_FALSE);
}

static int worse(enum kpar_status a, enum kpar_status b)
{
	static const int rank[] = { [KPAR_PASS] = 0, [KPAR_SKIP] = 1, [KPAR_FAIL] = 2,
				    [KPAR_ERROR] = 3, [KPAR_FLAKY] = 0, [KPAR_XFAIL] = 0,
				    [KPAR_XPASS] = 2 };
	return rank[a] > rank[b];
}

static void XMLCALL on_start(void *ud, const XML_Char *el, const XML_Char **atts)
{
	struct reader *r = ud;
	const char *v;

	r->depth++;
	if (strcmp(el, "testcase") == 0) {
		if (r->in_case) {
			fail_parse(r, KPAR_EINVAL, "<testcase> inside <testcase>");
			return;
		}
		v = attr(atts, "name");
		if (!v || !*v) {
			fail_parse(r, KPAR_EINVAL, "<testcase> without a name");
			return;
		}
		r->in_case = 1;
		r->case_depth = r->depth;
		r->name = kpar_xstrdup(v);
		v = attr(atts, "classname");
		r->classname = v && *v ? kpar_xstrdup(v) : NULL;
		v = attr(atts, "file");
		r->file = v && *v ? kpar_xstrdup(v) : NULL;
		v = attr(atts, "time");
		r->seconds = 0;
		r->has_time = 0;
		if (v) {
			char *end;
			double d = strtod(v, &end);
			if (end != v && d >= 0) {
				r->seconds = d;
				r->has_time = 1;
			}
		}
		r->status = KPAR_PASS;
		return;
	}
	if (!r->in_case || r->cap != CAP_NONE || r->depth != r->case_depth + 1)
		return;
	/* A callback reader keeps no text: a huge report costs no memory. */
	if (!r->out && el[0] == 's' && el[1] == 'y')
		return;
	if (strcmp(el, "failure") == 0 || strcmp(el, "error") == 0 ||
	    strcmp(el, "skipped") == 0) {
		enum kpar_status s = el[0] == 'f' ? KPAR_FAIL : el[0] == 'e' ? KPAR_ERROR : KPAR_SKIP;

		if (worse(s, r->status))
			r->status = s;
		if (r->fail.len > 0)
			kpar_buf_putc(&r->fail, '\n');
		v = attr(atts, "message");
		if (v && *v) {
			kpar_buf_puts(&r->fail, v);
			kpar_buf_putc(&r->fail, '\n');
		}
		r->cap = CAP_FAILURE;
	} else if (strcmp(el, "system-out") == 0) {
		r->cap = CAP_SYSOUT;
	} else if (strcmp(el, "system-err") == 0) {
		r->cap = CAP_SYSERR;
	} else {
		return;
	}
	r->cap_depth = r->depth;
}

static void reset_case(struct reader *r)
{
	free(r->name);
	free(r->classname);
	free(r->file);
	r->name = r->classname = r->file = NULL;
	kpar_buf_clear(&r->fail);
	kpar_buf_clear(&r->sysout);
	kpar_buf_clear(&r->syserr);
	r->in_case = 0;
}

static void finish_case(struct reader *r)
{
	struct kpar_buf out = KPAR_BUF_INIT;
	char *id;

	if (!r->out) {
		struct kpar_junit_case c = { r->classname, r->name, r->file, r->seconds,
					     r->has_time, r->status };
		int rc = r->fn(r->ud, &c);

		reset_case(r);
		if (rc < 0 && r->rc == 0) {
			r->rc = rc;
			XML_StopParser(r->parser, XML_FALSE);
		}
		return;
	}
	kpar_buf_add(&out, r->fail.data, r->fail.len);
	if (r->sysout.len && out.len && out.data[out.len - 1] != '\n')
		kpar_buf_putc(&out, '\n');
	kpar_buf_add(&out, r->sysout.data, r->sysout.len);
	if (r->syserr.len && out.len && out.data[out.len - 1] != '\n')
		kpar_buf_putc(&out, '\n');
	kpar_buf_add(&out, r->syserr.data, r->syserr.len);
	id = r->classname ? kpar_xasprintf("%s.%s", r->classname, r->name) : kpar_xstrdup(r->name);
	/* The XML carries no exit status: the status's conventional one stays. */
	kpar_bucket_result_add(r->out, id, r->status, r->seconds, out.data ? out.data : "",
			       out.len);
	free(id);
	kpar_buf_free(&out);
	reset_case(r);
}

static void XMLCALL on_end(void *ud, const XML_Char *el)
{
	struct reader *r = ud;

	if (r->cap != CAP_NONE && r->depth == r->cap_depth)
		r->cap = CAP_NONE;
	if (r->in_case && r->depth == r->case_depth && strcmp(el, "testcase") == 0)
		finish_case(r);
	r->depth--;
}

static void XMLCALL on_text(void *ud, const XML_Char *s, int len)
{
	struct reader *r = ud;

	if (!r->in_case || !r->out)
		return;
	switch (r->cap) {
	case CAP_FAILURE:
		kpar_buf_add(&r->fail, s, (size_t)len);
		break;
	case CAP_SYSOUT:
		kpar_buf_add(&r->sysout, s, (size_t)len);
		break;
	case CAP_SYSERR:
		kpar_buf_add(&r->syserr, s, (size_t)len);
		break;
	case CAP_NONE:
		break;
	}
}

static void XMLCALL on_entity_decl(void *ud, const XML_Char *name, int param,
				   const XML_Char *value, int value_len, const XML_Char *base,
				   const XML_Char *sysid, const XML_Char *pubid,
				   const XML_Char *notation)
{
	fail_parse(ud, KPAR_EINVAL, "entity declarations are not accepted");
}

/* Parses the file in chunks, so a report of any size is read in constant
 * memory (besides what the caller keeps). */
static int parse_file(const char *path, struct kpar_bucket_result *out, kpar_junit_case_fn fn,
		      void *ud)
{
	struct reader r;
	char *chunk;
	FILE *f;
	int rc = 0, done = 0;

	if (!(f = fopen(path, "rb")))
		return kpar_error_errno(errno == ENOENT ? KPAR_ENOTFOUND : KPAR_EIO,
					"JUnit file: cannot open '%s'", path);
	memset(&r, 0, sizeof r);
	r.path = path;
	r.out = out;
	r.fn = fn;
	r.ud = ud;
	r.parser = XML_ParserCreate(NULL);
	if (!r.parser)
		abort();
	XML_SetUserData(r.parser, &r);
	XML_SetElementHandler(r.parser, on_start, on_end);
	XML_SetCharacterDataHandler(r.parser, on_text);
	XML_SetEntityDeclHandler(r.parser, on_entity_decl);
	chunk = kpar_xmalloc(1 << 16);
	while (!done && rc == 0) {
		size_t n = fread(chunk, 1, 1 << 16, f);

		if (n < (1 << 16)) {
			if (ferror(f)) {
				rc = kpar_error_errno(KPAR_EIO, "JUnit file: cannot read '%s'", path);
				break;
			}
			done = 1;
		}
		if (XML_Parse(r.parser, chunk, (int)n, done) != XML_STATUS_OK) {
			if (r.rc < 0)
				rc = r.rc;
			else
				rc = kpar_error_set(KPAR_EINVAL, "JUnit file '%s': line %lu: %s", path,
						    (unsigned long)XML_GetCurrentLineNumber(r.parser),
						    XML_ErrorString(XML_GetErrorCode(r.parser)));
		} else {
			rc = r.rc;
		}
	}
	fclose(f);
	free(chunk);
	XML_ParserFree(r.parser);
	reset_case(&r);
	kpar_buf_free(&r.fail);
	kpar_buf_free(&r.sysout);
	kpar_buf_free(&r.syserr);
	return rc;
}

int kpar_junit_read(const char *path, struct kpar_bucket_result *out)
{
	return parse_file(path, out, NULL, NULL);
}

int kpar_junit_each(const char *path, kpar_junit_case_fn fn, void *ud)
{
	return parse_file(path, NULL, fn, ud);
}

/* ---- writing ---------------------------------------------------------- */

/* Escapes s for XML text (attr = 0) or a double-quoted attribute. */
static void put_escaped(struct kpar_buf *b, const char *s, size_t len, int in_attr)
{
	size_t i = 0, n;
	unsigned cp;

	while (i < len) {
		unsigned char c = (unsigned char)s[i];

		if (c < 0x80) {
			i++;
			switch (c) {
			case '&': kpar_buf_puts(b, "&amp;"); break;
			case '<': kpar_buf_puts(b, "&lt;"); break;
			case '>': kpar_buf_puts(b, "&gt;"); break;
			case '"': kpar_buf_puts(b, "&quot;"); break;
			case '\'': kpar_buf_puts(b, "&apos;"); break;
			/* Parsers normalise a raw CR away, and tab/newline in an
			 * attribute to spaces: character references survive. */
			case '\r': kpar_buf_puts(b, "&#13;"); break;
			case '\t':
			case '\n':
				if (in_attr)
					kpar_buf_printf(b, "&#%u;", c);
				else
					kpar_buf_putc(b, (char)c);
				break;
			default:
				if (c >= 0x20)
					kpar_buf_putc(b, (char)c);
				/* other C0 controls cannot appear in XML 1.0 at all */
				break;
			}
			continue;
		}
		n = kpar_utf8_next(s + i, len - i, &cp);
		if (n == 0 || cp == 0xfffe || cp == 0xffff) {
			kpar_buf_puts(b, "\xef\xbf\xbd");   /* U+FFFD */
			i += n ? n : 1;
			continue;
		}
		kpar_buf_add(b, s + i, n);
		i += n;
	}
}

static void put_attr(struct kpar_buf *b, const char *name, const char *value)
{
	kpar_buf_printf(b, " %s=\"", name);
	put_escaped(b, value, strlen(value), 1);
	kpar_buf_putc(b, '"');
}

static void put_property(struct kpar_buf *b, const char *name, const char *value)
{
	kpar_buf_puts(b, "        <property");
	put_attr(b, "name", name);
	put_attr(b, "value", value);
	kpar_buf_puts(b, "/>\n");
}

struct ref {
	const char *id;
	size_t bucket, test;
};

static int cmp_ref(const void *a, const void *b)
{
	const struct ref *x = a, *y = b;
	int c = strcmp(x->id, y->id);

	if (c)
		return c;
	if (x->bucket != y->bucket)
		return x->bucket < y->bucket ? -1 : 1;
	return x->test < y->test ? -1 : x->test > y->test;
}

struct counts {
	size_t tests, failures, errors, skipped;
	double seconds;
};

static void count_subtests(struct counts *c, const struct kpar_test_result *t)
{
	size_t i;

	for (i = 0; i < t->nsubtests; i++) {
		c->tests++;
		if (t->subtests[i].status == KPAR_SUB_FAIL)
			c->failures++;
		else if (t->subtests[i].status == KPAR_SUB_SKIP ||
			 t->subtests[i].status == KPAR_SUB_TODO_FAIL)
			c->skipped++;
	}
}

static void count(struct counts *c, const struct kpar_test_result *t)
{
	count_subtests(c, t);
	c->tests++;
	c->seconds += t->seconds;
	if (t->status == KPAR_FAIL || t->status == KPAR_XPASS)
		c->failures++;
	else if (t->status == KPAR_ERROR)
		c->errors++;
	else if (t->status == KPAR_SKIP)
		c->skipped++;
}

static void put_counts(struct kpar_buf *b, const struct counts *c)
{
	kpar_buf_printf(b, " tests=\"%zu\" failures=\"%zu\" errors=\"%zu\" skipped=\"%zu\" "
			"time=\"%.3f\"", c->tests, c->failures, c->errors, c->skipped, c->seconds);
}

static void put_case(struct kpar_buf *b, const struct kpar_bucket_result *br,
		     const struct kpar_test_result *t)
{
	char num[64];

	kpar_buf_puts(b, "    <testcase");
	put_attr(b, "name", t->id);
	kpar_buf_printf(b, " classname=\"kpar\" time=\"%.3f\">\n", t->seconds);
	kpar_buf_puts(b, "      <properties>\n");
	snprintf(num, sizeof num, "%d", br->bucket);
	put_property(b, "bucket", num);
	put_property(b, "worker", br->worker ? br->worker : "");
	snprintf(num, sizeof num, "%d", br->attempt);
	put_property(b, "attempt", num);
	snprintf(num, sizeof num, "%d", t->attempts);
	put_property(b, "attempts", num);
	put_property(b, "status", kpar_status_name(t->status));
	if (t->status == KPAR_FLAKY) {
		snprintf(num, sizeof num, "%d", t->attempts > 1 ? t->attempts - 1 : 1);
		put_property(b, "failed_attempts", num);
	}
	snprintf(num, sizeof num, "%d", t->exit_code);
	put_property(b, "exit_code", num);
	kpar_buf_puts(b, "      </properties>\n");
	if (t->status == KPAR_FAIL || t->status == KPAR_ERROR) {
		const char *el = t->status == KPAR_FAIL ? "failure" : "error";

		if (t->exit_code >= 0)
			snprintf(num, sizeof num, "exit status %d", t->exit_code);
		else
			snprintf(num, sizeof num, "killed (signal or timeout)");
		kpar_buf_printf(b, "      <%s", el);
		/* the protocol's reason says more than the exit status */
		put_attr(b, "message", t->note && *t->note ? t->note : num);
		kpar_buf_printf(b, " type=\"%s\"/>\n", el);
	} else if (t->status == KPAR_XPASS) {
		/* automake's XPASS: listed as expected to fail, yet passed */
		kpar_buf_puts(b, "      <failure message=\"XPASS: passed, but expected to fail\" type=\"xpass\"/>\n");
	} else if (t->status == KPAR_SKIP) {
		size_t len;
		const char *why = kpar_record_skip_reason(t, 200, &len);

		if (why) {
			char *msg = kpar_xstrndup(why, len);
			kpar_buf_puts(b, "      <skipped");
			put_attr(b, "message", msg);
			kpar_buf_puts(b, "/>\n");
			free(msg);
		} else {
			kpar_buf_puts(b, "      <skipped/>\n");
		}
	}
	if (t->output && t->output_len) {
		kpar_buf_puts(b, "      <system-out>");
		put_escaped(b, t->output, t->output_len, 0);
		kpar_buf_puts(b, "</system-out>\n");
	}
	kpar_buf_puts(b, "    </testcase>\n");
}

/* A test's subtests, each a testcase whose class is the test. */
static void put_subcases(struct kpar_buf *b, const struct kpar_test_result *t)
{
	size_t i;

	for (i = 0; i < t->nsubtests; i++) {
		const struct kpar_subtest *st = &t->subtests[i];
		const char *why = st->reason ? st->reason : "";
		char *name = st->name && *st->name ? kpar_xasprintf("%ld - %s", st->number, st->name)
			: kpar_xasprintf("%ld", st->number);

		kpar_buf_puts(b, "    <testcase");
		put_attr(b, "name", name);
		put_attr(b, "classname", t->id);
		kpar_buf_puts(b, ">\n");
		free(name);
		switch (st->status) {
		case KPAR_SUB_FAIL:
			kpar_buf_puts(b, "      <failure");
			put_attr(b, "message", *why ? why : "not ok");
			kpar_buf_puts(b, " type=\"failure\">");
			if (st->diag)
				put_escaped(b, st->diag, strlen(st->diag), 0);
			kpar_buf_puts(b, "</failure>\n");
			break;
		case KPAR_SUB_SKIP:
			kpar_buf_puts(b, "      <skipped");
			if (*why)
				put_attr(b, "message", why);
			kpar_buf_puts(b, "/>\n");
			break;
		case KPAR_SUB_TODO_FAIL: {
			char *msg = kpar_xasprintf("TODO%s%s", *why ? ": " : "", why);
			kpar_buf_puts(b, "      <skipped");
			put_attr(b, "message", msg);
			kpar_buf_puts(b, "/>\n");
			free(msg);
			break;
		}
		case KPAR_SUB_TODO_PASS:
		case KPAR_SUB_PASS:
			break;
		}
		if (st->status != KPAR_SUB_FAIL && (st->diag || st->status == KPAR_SUB_TODO_PASS)) {
			kpar_buf_puts(b, "      <system-out>");
			if (st->status == KPAR_SUB_TODO_PASS) {
				kpar_buf_puts(b, "TODO passed");
				if (*why) {
					kpar_buf_puts(b, ": ");
					put_escaped(b, why, strlen(why), 0);
				}
				kpar_buf_puts(b, "\n");
			}
			if (st->diag)
				put_escaped(b, st->diag, strlen(st->diag), 0);
			kpar_buf_puts(b, "</system-out>\n");
		}
		kpar_buf_puts(b, "    </testcase>\n");
	}
}

int kpar_junit_write(FILE *out, const char *suite_name,
		     struct kpar_bucket_result *const *buckets, size_t nbuckets)
{
	struct kpar_buf b = KPAR_BUF_INIT, body = KPAR_BUF_INIT;
	struct counts all = { 0 };
	struct ref *refs;
	unsigned char **dup;
	size_t nrefs = 0, i, j, k;
	int rc = 0;

	/* Each test exactly once: a duplicate id (the same test reported by
	 * two bucket results) keeps its first occurrence. */
	for (i = 0; i < nbuckets; i++)
		nrefs += buckets[i]->ntests;
	refs = kpar_xcalloc(nrefs + 1, sizeof *refs);
	dup = kpar_xcalloc(nbuckets + 1, sizeof *dup);
	for (i = 0, k = 0; i < nbuckets; i++) {
		dup[i] = kpar_xcalloc(buckets[i]->ntests + 1, 1);
		for (j = 0; j < buckets[i]->ntests; j++, k++) {
			refs[k].id = buckets[i]->tests[j].id;
			refs[k].bucket = i;
			refs[k].test = j;
		}
	}
	qsort(refs, nrefs, sizeof *refs, cmp_ref);
	for (k = 1; k < nrefs; k++)
		if (strcmp(refs[k].id, refs[k - 1].id) == 0)
			dup[refs[k].bucket][refs[k].test] = 1;

	for (i = 0; i < nbuckets; i++) {
		const struct kpar_bucket_result *br = buckets[i];
		struct counts c = { 0 };
		char name[32], stamp[32] = "";
		struct tm tm;
		time_t t0 = (time_t)br->started;

		for (j = 0; j < br->ntests; j++)
			if (!dup[i][j])
				count(&c, &br->tests[j]);
		all.tests += c.tests;
		all.failures += c.failures;
		all.errors += c.errors;
		all.skipped += c.skipped;
		all.seconds += c.seconds;
		snprintf(name, sizeof name, "bucket-%d", br->bucket);
		kpar_buf_puts(&body, "  <testsuite");
		put_attr(&body, "name", name);
		put_counts(&body, &c);
		if (br->worker)
			put_attr(&body, "hostname", br->worker);
		if (br->started > 0 && gmtime_r(&t0, &tm))
			strftime(stamp, sizeof stamp, "%Y-%m-%dT%H:%M:%S", &tm);
		if (stamp[0])
			put_attr(&body, "timestamp", stamp);
		kpar_buf_puts(&body, ">\n");
		for (j = 0; j < br->ntests; j++)
			if (!dup[i][j]) {
				put_case(&body, br, &br->tests[j]);
				put_subcases(&body, &br->tests[j]);
			}
		kpar_buf_puts(&body, "  </testsuite>\n");
	}
	kpar_buf_puts(&b, "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<testsuites");
	put_attr(&b, "name", suite_name ? suite_name : "kpar");
	put_counts(&b, &all);
	kpar_buf_puts(&b, ">\n");
	kpar_buf_add(&b, body.data, body.len);
	kpar_buf_puts(&b, "</testsuites>\n");
	if (fwrite(b.data, 1, b.len, out) != b.len || fflush(out) != 0 || ferror(out))
		rc = kpar_error_errno(KPAR_EIO, "cannot write the JUnit report");
	for (i = 0; i < nbuckets; i++)
		free(dup[i]);
	free(dup);
	free(refs);
	kpar_buf_free(&b);
	kpar_buf_free(&body);
	return rc;
}
