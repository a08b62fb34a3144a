/* test_tap.c - the TAP reader: prove's verdicts on the cases its parser
 * distinguishes, malformed input, and the subtests reaching the record and
 * the JUnit report. */
#include "config.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <sqlite3.h>

#include "base/buf.h"
#include "base/error.h"
#include "base/fs.h"
#include "run/junit.h"
#include "run/record.h"
#include "run/state.h"
#include "run/tap.h"
#include "run/trs.h"
#include "test.h"

static struct kpar_tap_result R;

static const struct kpar_tap_result *parse_n(const char *s, size_t len, int code, int sig)
{
	kpar_tap_result_free(&R);
	kpar_tap_parse(s, len, code, sig, &R);
	return &R;
}

static const struct kpar_tap_result *parse(const char *s, int code)
{
	return parse_n(s, strlen(s), code, 0);
}

static int has(const char *hay, const char *needle)
{
	return hay && strstr(hay, needle) != NULL;
}

#define CHECK_HAS(hay, needle) do { const char *h_ = (hay); kpar_test_checks++; \
	if (!has(h_, needle)) { fprintf(stderr, "%s:%d: \"%s\" does not hold \"%s\"\n", \
		__FILE__, __LINE__, h_ ? h_ : "(null)", needle); kpar_test_failures++; } } while (0)

KPAR_TEST(plain_pass)
{
	const struct kpar_tap_result *r = parse("1..3\nok 1\nok 2 - two\nok 3 three\n", 0);

	CHECK_INT(r->verdict, KPAR_PASS);
	CHECK(r->explanation == NULL);
	CHECK_INT(r->nsubtests, 3);
	CHECK_INT(r->planned, 3);
	CHECK_STR(r->subtests[0].name, "");
	CHECK_STR(r->subtests[1].name, "two");
	CHECK_STR(r->subtests[2].name, "three");
	CHECK_INT(r->subtests[2].number, 3);
	CHECK_INT(r->subtests[1].status, KPAR_SUB_PASS);
}

KPAR_TEST(not_ok_fails_exit_0)
{
	const struct kpar_tap_result *r = parse("1..3\nok 1\nnot ok 2 - broken\nok 3\n", 0);

	CHECK_INT(r->verdict, KPAR_FAIL);
	CHECK_STR(r->explanation, "Failed test: 2");
	CHECK_INT(r->subtests[1].status, KPAR_SUB_FAIL);
	CHECK_STR(r->subtests[1].name, "broken");
	r = parse("1..2\nnot ok 1\nnot ok 2\n", 0);
	CHECK_STR(r->explanation, "Failed tests: 1, 2");
}

KPAR_TEST(skip_all)
{
	const struct kpar_tap_result *r = parse("1..0 # SKIP no network here\n", 0);

	CHECK_INT(r->verdict, KPAR_SKIP);
	CHECK_STR(r->explanation, "no network here");
	CHECK_INT(r->nsubtests, 0);
	r = parse("1..0\n", 0);
	CHECK_INT(r->verdict, KPAR_SKIP);
	CHECK_STR(r->explanation, "(no reason given)");
	/* version 12 takes any word starting with SKIP, the reason after a blank */
	r = parse("# git test\n1..0 # Skipped: missing prerequisite\n", 0);
	CHECK_INT(r->verdict, KPAR_SKIP);
	CHECK_STR(r->explanation, "missing prerequisite");
	r = parse("1..0 # skip\n", 0);
	CHECK_INT(r->verdict, KPAR_SKIP);
	CHECK_STR(r->explanation, "(no reason given)");
	/* version 13 wants the word SKIP: "Skipped:" makes no plan at all */
	r = parse("TAP version 13\n1..0 # Skipped: x\n", 0);
	CHECK_INT(r->verdict, KPAR_FAIL);
	CHECK_HAS(r->explanation, "No plan found in TAP output");
	/* ...and a SKIP plan with tests skips too, when they all pass */
	r = parse("TAP version 13\n1..2 # SKIP why not\nok 1\nok 2\n", 0);
	CHECK_INT(r->verdict, KPAR_SKIP);
	CHECK_STR(r->explanation, "why not");
}

KPAR_TEST(skip_all_still_fails_on_problems)
{
	const struct kpar_tap_result *r = parse("1..0 # SKIP no net\n", 1);

	CHECK_INT(r->verdict, KPAR_FAIL);
	CHECK_STR(r->explanation, "Non-zero exit status: 1");
	r = parse("1..0 # SKIP no net\nok 1\n", 0);
	CHECK_INT(r->verdict, KPAR_FAIL);
	CHECK_HAS(r->explanation, "Failed test: 1");
	CHECK_HAS(r->explanation, "Bad plan.  You planned 0 tests but ran 1.");
}

KPAR_TEST(todo_and_skip_directives)
{
	const struct kpar_tap_result *r = parse("1..5\nok 1\nnot ok 2 # TODO later\n"
		"ok 3 # todo done early\nok 4 # skip no db\nok 5 - x # Skip: y\n", 0);

	CHECK_INT(r->verdict, KPAR_PASS);
	CHECK_INT(r->subtests[1].status, KPAR_SUB_TODO_FAIL);
	CHECK_STR(r->subtests[1].reason, "later");
	CHECK_INT(r->subtests[2].status, KPAR_SUB_TODO_PASS);
	CHECK_INT(r->subtests[3].status, KPAR_SUB_SKIP);
	CHECK_STR(r->subtests[3].reason, "no db");
	CHECK_INT(r->subtests[4].status, KPAR_SUB_SKIP);
	CHECK_STR(r->subtests[4].name, "x");
	CHECK_STR(r->subtests[4].reason, ": y");
	/* a SKIP does not excuse a not ok (TAP::Parser's is_ok) */
	r = parse("1..1\nnot ok 1 # SKIP x\n", 0);
	CHECK_INT(r->verdict, KPAR_FAIL);
	/* SKIPPED is not the word SKIP, and a directive needs its '#' unescaped */
	r = parse("1..2\nok 1 # SKIPPED foo\nok 2 - a \\# SKIP b\n", 0);
	CHECK_INT(r->subtests[0].status, KPAR_SUB_PASS);
	CHECK_INT(r->subtests[1].status, KPAR_SUB_PASS);
	CHECK_STR(r->subtests[1].name, "a # SKIP b");
	/* the first unescaped '#' decides: a later directive is description */
	r = parse("1..1\nnot ok 1 - a # note # TODO x\n", 0);
	CHECK_INT(r->verdict, KPAR_FAIL);
	/* version 12's plan TODO list */
	r = parse("1..2 todo 2\nok 1\nnot ok 2\n", 0);
	CHECK_INT(r->verdict, KPAR_PASS);
	CHECK_INT(r->subtests[1].status, KPAR_SUB_TODO_FAIL);
}

KPAR_TEST(bail_out)
{
	const struct kpar_tap_result *r = parse("1..3\nok 1\nBail out! database down\nok 2\nok 3\n", 0);

	CHECK_INT(r->verdict, KPAR_FAIL);
	CHECK(r->bailed_out);
	CHECK_HAS(r->explanation, "Bail out!  database down");
	CHECK_INT(r->nsubtests, 1);
	/* indented (a TAP 14 subtest's) bails out too, as prove reads it */
	r = parse("1..1\n    Bail out!\nok 1\n", 0);
	CHECK_INT(r->verdict, KPAR_FAIL);
	CHECK_STR(r->explanation, "Bail out!");
	/* case matters */
	r = parse("1..1\nbail out! no\nok 1\n", 0);
	CHECK_INT(r->verdict, KPAR_PASS);
}

KPAR_TEST(plan_problems)
{
	const struct kpar_tap_result *r = parse("1..3\nok 1\nok 2\n", 0);

	CHECK_INT(r->verdict, KPAR_FAIL);
	CHECK_STR(r->explanation, "Parse errors: Bad plan.  You planned 3 tests but ran 2.");
	r = parse("1..1\nok 1\nok 2\n", 0);
	CHECK_INT(r->verdict, KPAR_FAIL);
	CHECK_INT(r->subtests[1].status, KPAR_SUB_FAIL);
	CHECK_HAS(r->explanation, "Failed test: 2");
	/* beyond the plan even a TODO fails */
	r = parse("1..1\nok 1\nok 2 # TODO\n", 0);
	CHECK_INT(r->subtests[1].status, KPAR_SUB_FAIL);
	r = parse("ok 1\nok 2\n1..2\n", 0);
	CHECK_INT(r->verdict, KPAR_PASS);
	r = parse("ok 1\n1..2\nok 2\n", 0);
	CHECK_INT(r->verdict, KPAR_FAIL);
	CHECK_HAS(r->explanation, "Plan (1..2) must be at the beginning or end of the TAP output");
	r = parse("ok 1\n", 0);
	CHECK_STR(r->explanation, "Parse errors: No plan found in TAP output");
	r = parse("", 0);
	CHECK_INT(r->verdict, KPAR_FAIL);
	CHECK_HAS(r->explanation, "No plan found");
	r = parse("1..1\nok 1\n1..1\n", 0);
	CHECK_HAS(r->explanation, "More than one plan found in TAP output");
	/* a plan with anything else after it is no plan */
	r = parse("1..2 tests\nok 1\nok 2\n", 0);
	CHECK_HAS(r->explanation, "No plan found");
}

KPAR_TEST(numbering)
{
	const struct kpar_tap_result *r = parse("1..2\nok 2\nok 1\n", 0);

	CHECK_INT(r->verdict, KPAR_FAIL);
	CHECK_HAS(r->explanation, "Tests out of sequence.  Found (2) but expected (1)");
	r = parse("1..3\nok\nnot ok\nok - three\n", 0);
	CHECK_INT(r->subtests[0].number, 1);
	CHECK_INT(r->subtests[1].number, 2);
	CHECK_INT(r->subtests[2].number, 3);
	CHECK_STR(r->subtests[2].name, "three");
	CHECK_STR(r->explanation, "Failed test: 2");
	r = parse("1..1\nok 99999999999999999999999999 x\n", 0);
	CHECK_INT(r->verdict, KPAR_FAIL);
	CHECK_HAS(r->explanation, "out of sequence");
	/* "okay", "ok1", "not  ok" and "NOT OK" are no test lines */
	r = parse("1..1\nokay\nok1\nnot  ok 1\nNOT OK 1\nok 1\n", 0);
	CHECK_INT(r->verdict, KPAR_PASS);
	CHECK_INT(r->run, 1);
	/* a line that is only "not" joins the next, as TAP::Parser reads VMS */
	r = parse("1..2\nok 1\nnot\n ok 2 - split\n", 0);
	CHECK_INT(r->run, 2);
	CHECK_INT(r->subtests[1].status, KPAR_SUB_FAIL);
	CHECK_STR(r->subtests[1].name, "split");
	/* "ok:" is one (the word ends) */
	r = parse("1..1\nok: fine\n", 0);
	CHECK_INT(r->verdict, KPAR_PASS);
	CHECK_STR(r->subtests[0].name, ": fine");
}

KPAR_TEST(versions)
{
	const struct kpar_tap_result *r = parse("# hello\nTAP version 13\n1..1\nok 1\n", 0);

	CHECK_INT(r->verdict, KPAR_PASS);
	CHECK_INT(r->version, 13);
	r = parse("1..1\nTAP version 13\nok 1\n", 0);
	CHECK_HAS(r->explanation, "If TAP version is present it must be the first line of output");
	r = parse("TAP version 12\n1..1\nok 1\n", 0);
	CHECK_HAS(r->explanation, "Explicit TAP version must be at least 13. Got version 12");
	r = parse("TAP version 14\n1..1\nok 1\n", 0);
	CHECK_INT(r->verdict, KPAR_PASS);
	CHECK_INT(r->version, 14);
	r = parse("TAP version 15\n1..1\nok 1\n", 0);
	CHECK_INT(r->verdict, KPAR_FAIL);
	r = parse("tap VERSION 13\n1..1\nok 1\n", 0);
	CHECK_INT(r->version, 13);
}

KPAR_TEST(yaml_diagnostics)
{
	const struct kpar_tap_result *r = parse("TAP version 13\n1..2\nok 1\nnot ok 2 - bad\n"
		"  ---\n  message: 'boom'\n  data:\n    - ok 7\n  ...\n# after\n", 0);

	CHECK_INT(r->verdict, KPAR_FAIL);
	CHECK_INT(r->run, 2);
	CHECK_HAS(r->subtests[1].diag, "message: 'boom'");
	CHECK_HAS(r->subtests[1].diag, "  ...");
	CHECK_HAS(r->subtests[1].diag, "# after");
	CHECK(r->subtests[0].diag == NULL);
	r = parse("TAP version 13\n1..1\nnot ok 1\n  ---\n  a: b\n", 0);
	CHECK_HAS(r->explanation, "Missing '...' at end of YAMLish");
	/* a less indented line ends the block badly, and with it the reading,
	 * as in prove (TAP::Parser takes the reader's failure for the end) */
	r = parse("TAP version 13\n1..3\nok 1\n  ---\n  a: b\n a: c\nok 2\nok 3\n", 0);
	CHECK_HAS(r->explanation, "Missing '...' at end of YAMLish");
	CHECK_HAS(r->explanation, "Bad plan.  You planned 3 tests but ran 1.");
	/* version 12 has no YAML: the lines are unknown, and ignored */
	r = parse("1..1\nnot ok 1\n  ---\n  a: b\n", 0);
	CHECK_STR(r->explanation, "Failed test: 1");
}

KPAR_TEST(comments_are_diagnostics)
{
	const struct kpar_tap_result *r = parse("1..2\nnot ok 1 - x\n#   Failed test 'x'\n"
		"#   at t/x.t line 3.\nok 2\n# passed\n", 1);

	CHECK_INT(r->verdict, KPAR_FAIL);
	CHECK_STR(r->explanation, "Failed test: 1; Non-zero exit status: 1");
	CHECK_STR(r->subtests[0].diag, "#   Failed test 'x'\n#   at t/x.t line 3.\n");
	CHECK_STR(r->subtests[1].diag, "# passed\n");
}

KPAR_TEST(tap14_subtests_not_misread)
{
	const struct kpar_tap_result *r = parse("TAP version 14\n1..2\n# Subtest: a\n"
		"    1..2\n    ok 1\n    not ok 2 - inner\nnot ok 1 - a\nok 2 - b\n", 0);

	CHECK_INT(r->verdict, KPAR_FAIL);
	CHECK_INT(r->run, 2);
	CHECK_STR(r->explanation, "Failed test: 1");
	r = parse("TAP version 14\n1..1\n    not ok 1 - inner # TODO\n    1..1\nok 1 - a\n", 0);
	CHECK_INT(r->verdict, KPAR_PASS);
	CHECK_INT(r->nsubtests, 1);
}

KPAR_TEST(pragma_strict)
{
	const struct kpar_tap_result *r = parse("TAP version 13\npragma +strict\n1..1\nok 1\nnoise\n", 0);

	CHECK_INT(r->verdict, KPAR_FAIL);
	CHECK_HAS(r->explanation, "Unknown TAP token: \"noise\"");
	r = parse("TAP version 13\npragma +strict, -strict\n1..1\nok 1\nnoise\n", 0);
	CHECK_INT(r->verdict, KPAR_PASS);
	/* version 12 has no pragmas */
	r = parse("pragma +strict\n1..1\nok 1\nnoise\n", 0);
	CHECK_INT(r->verdict, KPAR_PASS);
}

KPAR_TEST(exit_and_signal)
{
	const struct kpar_tap_result *r = parse("1..1\nok 1\n", 3);

	CHECK_INT(r->verdict, KPAR_FAIL);
	CHECK_STR(r->explanation, "Non-zero exit status: 3");
	r = parse_n("1..1\nok 1\n", 10, -1, 9);
	CHECK_INT(r->verdict, KPAR_FAIL);
	CHECK_STR(r->explanation, "Killed by signal 9");
}

KPAR_TEST(odd_bytes)
{
	static const char nul[] = "1..2\nok 1 a\0b\nok 2\n";
	const struct kpar_tap_result *r = parse("1..1\r\nok 1 - x\r\n", 0);
	struct kpar_buf b = KPAR_BUF_INIT;
	size_t i;

	CHECK_INT(r->verdict, KPAR_PASS);
	CHECK_STR(r->subtests[0].name, "x");
	r = parse("1..1\nok 1", 0);        /* no final newline */
	CHECK_INT(r->verdict, KPAR_PASS);
	r = parse_n(nul, sizeof nul - 1, 0, 0);
	CHECK_INT(r->verdict, KPAR_PASS);
	CHECK_INT(r->nsubtests, 2);
	/* a very long line: read as its first bytes, its name cut */
	kpar_buf_puts(&b, "1..1\nok 1 - ");
	for (i = 0; i < 200000; i++)
		kpar_buf_putc(&b, 'x');
	kpar_buf_puts(&b, "\n");
	r = parse_n(b.data, b.len, 0, 0);
	CHECK_INT(r->verdict, KPAR_PASS);
	CHECK(strlen(r->subtests[0].name) <= KPAR_TAP_TEXT_MAX);
	kpar_buf_free(&b);
}

KPAR_TEST(diagnostics_are_bounded)
{
	struct kpar_buf b = KPAR_BUF_INIT;
	const struct kpar_tap_result *r;
	size_t i;

	kpar_buf_puts(&b, "1..1\nnot ok 1\n");
	for (i = 0; i < 10000; i++)
		kpar_buf_puts(&b, "# a diagnostic line of some length\n");
	r = parse_n(b.data, b.len, 0, 0);
	CHECK(r->subtests[0].diag && strlen(r->subtests[0].diag) <= KPAR_TAP_DIAG_MAX);
	kpar_buf_free(&b);
}

/* Feeding in pieces of any size reads the same as all at once. */
KPAR_TEST(incremental_equals_whole)
{
	static const char in[] = "TAP version 13\n1..4\nok 1 - a\nnot ok 2 - b # TODO t\n"
		"  ---\n  x: 1\n  ...\nnot ok 3 - c\n# why\nok 4 # skip s\n";
	struct kpar_tap_result whole, part;
	size_t step, i, k;

	kpar_tap_parse(in, sizeof in - 1, 0, 0, &whole);
	for (step = 1; step < 9; step++) {
		struct kpar_tap *p = kpar_tap_new();

		for (i = 0; i < sizeof in - 1; i += step)
			kpar_tap_feed(p, in + i, sizeof in - 1 - i < step ? sizeof in - 1 - i : step);
		kpar_tap_finish(p, 0, 0, &part);
		kpar_tap_free(p);
		CHECK_INT(part.verdict, whole.verdict);
		CHECK_STR(part.explanation, whole.explanation);
		CHECK_INT(part.nsubtests, whole.nsubtests);
		for (k = 0; k < part.nsubtests && k < whole.nsubtests; k++) {
			CHECK_INT(part.subtests[k].status, whole.subtests[k].status);
			CHECK_STR(part.subtests[k].name, whole.subtests[k].name);
			CHECK((part.subtests[k].diag == NULL) == (whole.subtests[k].diag == NULL));
		}
		kpar_tap_result_free(&part);
	}
	CHECK_INT(whole.verdict, KPAR_FAIL);
	CHECK_STR(whole.explanation, "Failed test: 3");
	kpar_tap_result_free(&whole);
}

/* The subtests travel in the record, and a record without them decodes. */
KPAR_TEST(record_round_trip)
{
	struct kpar_bucket_result r = { 0 }, back = { 0 };
	struct kpar_test_result *t;
	struct kpar_tap_result tr;
	struct kpar_buf enc = KPAR_BUF_INIT;

	kpar_tap_parse("1..0 # SKIP no x\n", strlen("1..0 # SKIP no x\n"), 0, 0, &tr);
	t = kpar_bucket_result_add(&r, "t/skip.t", KPAR_SKIP, 0.1, "1..0 # SKIP no x\n", 17);
	t->note = tr.explanation;
	tr.explanation = NULL;
	kpar_tap_result_free(&tr);
	{
		const char *in = "1..2\nnot ok 1 - a\n# d\nok 2 # TODO t\n";
		kpar_tap_parse(in, strlen(in), 0, 0, &tr);
	}
	t = kpar_bucket_result_add(&r, "t/fail.t", KPAR_FAIL, 0.2, "x", 1);
	t->note = kpar_xstrdup(tr.explanation);
	kpar_test_result_take_subtests(t, &tr.subtests, &tr.nsubtests);
	kpar_tap_result_free(&tr);
	kpar_bucket_result_add(&r, "plain", KPAR_PASS, 0.3, "", 0);
	r.bucket = 1;
	CHECK_OK(kpar_record_encode(&r, &enc));
	CHECK_OK(kpar_record_decode(enc.data, enc.len, &back));
	CHECK_INT(back.ntests, 3);
	if (back.ntests == 3) {
		size_t len;
		const char *why = kpar_record_skip_reason(&back.tests[0], 200, &len);

		CHECK(why && len == 4 && memcmp(why, "no x", 4) == 0);
		CHECK_STR(back.tests[1].note, "Failed test: 1");
		CHECK_INT(back.tests[1].nsubtests, 2);
		if (back.tests[1].nsubtests == 2) {
			CHECK_STR(back.tests[1].subtests[0].name, "a");
			CHECK_INT(back.tests[1].subtests[0].status, KPAR_SUB_FAIL);
			CHECK_STR(back.tests[1].subtests[0].diag, "# d\n");
			CHECK_INT(back.tests[1].subtests[1].status, KPAR_SUB_TODO_PASS);
			CHECK_STR(back.tests[1].subtests[1].reason, "t");
		}
		CHECK_INT(back.tests[2].nsubtests, 0);
		CHECK(back.tests[2].note == NULL);
	}
	/* the state database's form of the same */
	{
		char *json = kpar_subtests_json(&r.tests[1]);
		struct kpar_test_result x;

		memset(&x, 0, sizeof x);
		CHECK_OK(kpar_subtests_from_json(&x, json, strlen(json)));
		CHECK_INT(x.nsubtests, 2);
		CHECK(kpar_subtests_from_json(&x, "{\"n\":1}", 7) < 0);
		CHECK(kpar_subtests_from_json(&x, "[{\"n\":1,\"status\":\"maybe\"}]", 27) < 0);
		CHECK_INT(x.nsubtests, 2);    /* unchanged by a refused one */
		kpar_subtests_free(x.subtests, x.nsubtests);
		free(json);
	}
	kpar_buf_free(&enc);
	kpar_bucket_result_free(&back);
	kpar_bucket_result_free(&r);
}

/* The merged JUnit report: a subtest is a testcase whose class is its
 * script, read back with the project's own JUnit reader. */
KPAR_TEST(junit_subcases)
{
	struct kpar_bucket_result r = { 0 }, back = { 0 };
	struct kpar_bucket_result *list[1] = { &r };
	struct kpar_test_result *t;
	struct kpar_tap_result tr;
	char path[] = "/tmp/kpar-test-tap.XXXXXX";
	int fd = mkstemp(path);
	FILE *f;
	size_t i;
	int seen = 0;

	CHECK(fd >= 0);
	f = fdopen(fd, "w");
	{
		const char *in = "1..4\nok 1 - good\nnot ok 2 - bad\n# because <x>\n"
			"ok 3 # SKIP no db\nnot ok 4 # TODO later\n";
		kpar_tap_parse(in, strlen(in), 0, 0, &tr);
	}
	t = kpar_bucket_result_add(&r, "t/a.t", tr.verdict, 1, "", 0);
	t->note = tr.explanation;
	tr.explanation = NULL;
	kpar_test_result_take_subtests(t, &tr.subtests, &tr.nsubtests);
	kpar_tap_result_free(&tr);
	r.bucket = 1;
	CHECK_OK(kpar_junit_write(f, "kpar", list, 1));
	fclose(f);
	CHECK_OK(kpar_junit_read(path, &back));
	CHECK_INT(back.ntests, 5);
	for (i = 0; i < back.ntests; i++) {
		const struct kpar_test_result *b = &back.tests[i];

		if (strcmp(b->id, "kpar.t/a.t") == 0) {
			CHECK_INT(b->status, KPAR_FAIL);
			CHECK_HAS(b->output, "Failed test: 2");
			seen++;
		} else if (strcmp(b->id, "t/a.t.1 - good") == 0) {
			CHECK_INT(b->status, KPAR_PASS);
			seen++;
		} else if (strcmp(b->id, "t/a.t.2 - bad") == 0) {
			CHECK_INT(b->status, KPAR_FAIL);
			CHECK_HAS(b->output, "# because <x>");
			seen++;
		} else if (strcmp(b->id, "t/a.t.3") == 0) {
			CHECK_INT(b->status, KPAR_SKIP);
			CHECK_HAS(b->output, "no db");
			seen++;
		} else if (strcmp(b->id, "t/a.t.4") == 0) {
			CHECK_INT(b->status, KPAR_SKIP);
			CHECK_HAS(b->output, "TODO: later");
			seen++;
		}
	}
	CHECK_INT(seen, 5);
	unlink(path);
	kpar_bucket_result_free(&back);
	kpar_bucket_result_free(&r);
}

/* The state database keeps a test's subtests and note; a database made
 * before they existed is read as it stands and gains them when written. */
KPAR_TEST(state_keeps_subtests)
{
	char dir[] = "/tmp/kpar-test-tap-state.XXXXXX";
	struct kpar_state *st;
	struct kpar_run_info in;
	struct kpar_bucket_result r = { 0 }, *res;
	struct kpar_test_result *t;
	struct kpar_tap_result tr;
	const char *tap = "1..2\nok 1 - a\nnot ok 2 - b\n";
	long long run;
	size_t n;

	CHECK(mkdtemp(dir) != NULL);
	CHECK_OK(kpar_state_open(&st, dir, 0));
	memset(&in, 0, sizeof in);
	in.plan = "sha256:p";
	in.tests_digest = "sha256:t";
	in.inputs_digest = "sha256:i";
	in.nbuckets = 2;
	in.backend = "local";
	CHECK_OK(kpar_state_run_begin(st, &in, NULL, &run));
	kpar_tap_parse(tap, strlen(tap), 0, 0, &tr);
	r.bucket = 1;
	r.attempt = 1;
	r.worker = kpar_xstrdup("w");
	t = kpar_bucket_result_add(&r, "t/x.t", tr.verdict, 1, tap, strlen(tap));
	t->note = tr.explanation;
	tr.explanation = NULL;
	kpar_test_result_take_subtests(t, &tr.subtests, &tr.nsubtests);
	kpar_tap_result_free(&tr);
	CHECK_OK(kpar_state_collect(st, run, &r));
	CHECK_OK(kpar_state_results(st, run, &res, &n));
	CHECK(n == 1 && res[0].ntests == 1);
	if (n == 1 && res[0].ntests == 1) {
		CHECK_STR(res[0].tests[0].note, "Failed test: 2");
		CHECK_INT(res[0].tests[0].nsubtests, 2);
		if (res[0].tests[0].nsubtests == 2)
			CHECK_STR(res[0].tests[0].subtests[1].name, "b");
	}
	kpar_state_results_free(res, n);
	/* as a database from before subtests (and whole-output digests) */
	CHECK(sqlite3_exec(kpar_state_db(st), "ALTER TABLE results DROP COLUMN subtests;"
			   "ALTER TABLE results DROP COLUMN note;"
			   "ALTER TABLE results DROP COLUMN full_log", NULL, NULL, NULL) == SQLITE_OK);
	kpar_state_close(st);
	CHECK_OK(kpar_state_open(&st, dir, KPAR_STATE_RDONLY));
	CHECK_OK(kpar_state_results(st, run, &res, &n));
	CHECK(n == 1 && res[0].ntests == 1 && res[0].tests[0].nsubtests == 0 &&
	      res[0].tests[0].note == NULL);
	kpar_state_results_free(res, n);
	kpar_state_close(st);
	CHECK_OK(kpar_state_open(&st, dir, 0));
	r.bucket = 2;
	CHECK_OK(kpar_state_collect(st, run, &r));
	CHECK_OK(kpar_state_results(st, run, &res, &n));
	CHECK(n == 2 && res[1].ntests == 1 && res[1].tests[0].nsubtests == 2);
	kpar_state_results_free(res, n);
	kpar_state_close(st);
	kpar_bucket_result_free(&r);
	kpar_fs_remove_tree(dir);
}

/* An automake driver's .trs (trs.h): automake's sum, named results. */
static void trs(const char *text, struct kpar_trs_result *r)
{
	kpar_trs_parse(text, strlen(text), r);
}

KPAR_TEST(trs_tap_driver_results)
{
	struct kpar_trs_result r;

	trs(":global-test-result: FAIL\n:recheck: yes\n:test-result: PASS 1\n"
	    ":test-result: FAIL 2 - broken\n:test-result: XPASS 3 - surprise # TODO fixed\n"
	    ":test-result: XFAIL 4 - later # TODO not yet\n:test-result: SKIP 5 # SKIP no net\n"
	    ":test-result: ERROR - too few tests run (expected 6, got 5)\n", &r);
	CHECK_INT(r.verdict, KPAR_ERROR);
	CHECK_INT(r.nresults, 6);
	CHECK_INT(r.nsubtests, 6);
	CHECK_HAS(r.explanation, "FAIL 2 - broken");
	CHECK(r.subtests[0].number == 1 && !*r.subtests[0].name && r.subtests[0].status == KPAR_SUB_PASS);
	CHECK_STR(r.subtests[1].name, "broken");
	CHECK_INT(r.subtests[1].status, KPAR_SUB_FAIL);
	CHECK(r.subtests[1].reason == NULL);
	CHECK_STR(r.subtests[2].name, "surprise");
	CHECK_INT(r.subtests[2].status, KPAR_SUB_FAIL);
	CHECK_STR(r.subtests[2].reason, "XPASS: fixed");
	CHECK_STR(r.subtests[3].name, "later");
	CHECK_INT(r.subtests[3].status, KPAR_SUB_TODO_FAIL);
	CHECK_STR(r.subtests[3].reason, "not yet");
	CHECK(r.subtests[4].number == 5 && !*r.subtests[4].name);
	CHECK_INT(r.subtests[4].status, KPAR_SUB_SKIP);
	CHECK_STR(r.subtests[4].reason, "no net");
	CHECK_INT(r.subtests[5].number, 6);
	CHECK_STR(r.subtests[5].name, "too few tests run (expected 6, got 5)");
	CHECK_STR(r.subtests[5].reason, "ERROR");
	kpar_trs_result_free(&r);

	/* without errors a FAIL or an XPASS fails; TODOs that fail do not */
	trs(":test-result: PASS 1\n:test-result: XPASS 2 # TODO x\n", &r);
	CHECK_INT(r.verdict, KPAR_FAIL);
	kpar_trs_result_free(&r);
	trs(":test-result: PASS 1\n:test-result: XFAIL 2 # TODO x\n:test-result: SKIP 3 # SKIP\n", &r);
	CHECK_INT(r.verdict, KPAR_PASS);
	CHECK(r.explanation == NULL && r.nsubtests == 3 && r.subtests[2].reason == NULL);
	kpar_trs_result_free(&r);
	/* all skipped: a skip, the subtests kept */
	trs(":test-result: SKIP 1 # SKIP a\n:test-result: SKIP 2 # SKIP b\n", &r);
	CHECK(r.verdict == KPAR_SKIP && r.nsubtests == 2);
	kpar_trs_result_free(&r);
}

KPAR_TEST(trs_script_own_result)
{
	struct kpar_trs_result r;

	/* test-driver: one bare result, no subtest */
	trs(":test-result: PASS\n:global-test-result: PASS\n", &r);
	CHECK(r.verdict == KPAR_PASS && r.nsubtests == 0 && r.nresults == 1);
	kpar_trs_result_free(&r);
	/* a TAP skip-all: its reason, no subtest */
	trs(":test-result: SKIP - why: no device\n", &r);
	CHECK(r.verdict == KPAR_SKIP && r.nsubtests == 0);
	CHECK_STR(r.explanation, "why: no device");
	kpar_trs_result_free(&r);
	/* a lone driver error */
	trs(":test-result: ERROR - missing test plan\n", &r);
	CHECK(r.verdict == KPAR_ERROR && r.nsubtests == 0);
	CHECK_HAS(r.explanation, "missing test plan");
	kpar_trs_result_free(&r);
	/* nothing, or a word automake does not know: an error, saying so */
	trs(":global-test-result: PASS\n", &r);
	CHECK(r.verdict == KPAR_ERROR && r.nresults == 0);
	CHECK_HAS(r.explanation, "no :test-result:");
	kpar_trs_result_free(&r);
	trs(":test-result: PASS 1\n:test-result: MAYBE 2\n", &r);
	CHECK_INT(r.verdict, KPAR_ERROR);
	CHECK_STR(r.subtests[1].reason, "unknown result");
	kpar_trs_result_free(&r);
	/* a CRLF file, and a missing one names its path */
	trs(":test-result: PASS 1 - a\r\n:test-result: FAIL 2 - b\r\n", &r);
	CHECK(r.verdict == KPAR_FAIL && r.nsubtests == 2);
	CHECK_STR(r.subtests[1].name, "b");
	kpar_trs_result_free(&r);
	CHECK(kpar_trs_read("/tmp/kpar-no-such-dir-x/a.trs", &r) < 0);
	CHECK_HAS(kpar_error_last(), "/tmp/kpar-no-such-dir-x/a.trs");
}

/* --expect-failure yes (XFAIL_TESTS): test-driver's global XFAIL and
 * XPASS are kpar's xfail and xpass; tap-driver's results are each XFAIL
 * or XPASS and its global result, the sum's, stays as it is. */
KPAR_TEST(trs_expected_failures)
{
	struct kpar_trs_result r;

	trs(":test-result: XFAIL\n:global-test-result: XFAIL\n:recheck: no\n", &r);
	CHECK(r.verdict == KPAR_XFAIL && r.nsubtests == 0 && r.explanation == NULL);
	kpar_trs_result_free(&r);
	trs(":test-result: XPASS\n:global-test-result: XPASS\n:recheck: yes\n", &r);
	CHECK(r.verdict == KPAR_XPASS && r.nsubtests == 0);
	CHECK_HAS(r.explanation, "XPASS");
	kpar_trs_result_free(&r);
	/* the global line may come first, as tap-driver writes it */
	trs(":global-test-result:  XFAIL \n:test-result: XFAIL\n", &r);
	CHECK_INT(r.verdict, KPAR_XFAIL);
	kpar_trs_result_free(&r);
	/* without the global line, an XFAIL alone is a pass, an XPASS a failure */
	trs(":test-result: XFAIL\n", &r);
	CHECK_INT(r.verdict, KPAR_PASS);
	kpar_trs_result_free(&r);
	trs(":test-result: XPASS\n", &r);
	CHECK_INT(r.verdict, KPAR_FAIL);
	kpar_trs_result_free(&r);
	/* tap-driver, an XFAIL_TESTS script: a failing and a passing subtest
	 * make an XPASS, so the script fails (global FAIL), its subtests the
	 * one a todo, the other a failure saying XPASS */
	trs(":global-test-result: FAIL\n:test-result: XFAIL 1 - still broken\n"
	    ":test-result: XPASS 2 - mended\n", &r);
	CHECK_INT(r.verdict, KPAR_FAIL);
	CHECK_INT(r.nsubtests, 2);
	CHECK_INT(r.subtests[0].status, KPAR_SUB_TODO_FAIL);
	CHECK_INT(r.subtests[1].status, KPAR_SUB_FAIL);
	CHECK_STR(r.subtests[1].reason, "XPASS");
	CHECK_HAS(r.explanation, "XPASS 2 - mended");
	kpar_trs_result_free(&r);
	/* all XFAIL or SKIP: a pass, as tap-driver's global PASS */
	trs(":global-test-result: PASS\n:test-result: XFAIL 1 - a\n:test-result: SKIP 2 # SKIP b\n", &r);
	CHECK(r.verdict == KPAR_PASS && r.nsubtests == 2);
	kpar_trs_result_free(&r);
	/* a global word that contradicts the results does not win over them:
	 * automake counts the results */
	trs(":global-test-result: XFAIL\n:test-result: FAIL\n", &r);
	CHECK_INT(r.verdict, KPAR_FAIL);
	kpar_trs_result_free(&r);
	trs(":global-test-result: XPASS\n:test-result: ERROR - bad\n", &r);
	CHECK_INT(r.verdict, KPAR_ERROR);
	kpar_trs_result_free(&r);
	trs(":global-test-result: XFAILED\n:test-result: PASS\n", &r);
	CHECK_INT(r.verdict, KPAR_PASS);
	kpar_trs_result_free(&r);
}

KPAR_TEST_MAIN(
	KPAR_CASE(trs_tap_driver_results), KPAR_CASE(trs_script_own_result),
	KPAR_CASE(trs_expected_failures),
	KPAR_CASE(plain_pass), KPAR_CASE(not_ok_fails_exit_0), KPAR_CASE(skip_all),
	KPAR_CASE(skip_all_still_fails_on_problems), KPAR_CASE(todo_and_skip_directives),
	KPAR_CASE(bail_out), KPAR_CASE(plan_problems), KPAR_CASE(numbering),
	KPAR_CASE(versions), KPAR_CASE(yaml_diagnostics), KPAR_CASE(comments_are_diagnostics),
	KPAR_CASE(tap14_subtests_not_misread), KPAR_CASE(pragma_strict),
	KPAR_CASE(exit_and_signal), KPAR_CASE(odd_bytes), KPAR_CASE(diagnostics_are_bounded),
	KPAR_CASE(incremental_equals_whole), KPAR_CASE(record_round_trip),
	KPAR_CASE(junit_subcases), KPAR_CASE(state_keeps_subtests))
