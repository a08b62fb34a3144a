/* test_record.c - result records: round trips, damage detection, trimming. */
#include "config.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "base/buf.h"
#include "base/error.h"
#include "run/record.h"
#include "test.h"

static const char *const odd_ids[] = {
	"plain",
	"with space",
	"quote'single",
	"quote\"double",
	"dollar$HOME and $(rm -rf /)",
	"semi;colon && echo",
	"back\\slash\\n",
	"caf\xc3\xa9/\xe6\xb5\x8b\xe8\xaf\x95",
	"latin1-\xe9-not-utf8",
	"tab\there",
};

static void fill_random(char *p, size_t n, uint64_t seed)
{
	uint64_t x = seed * 0x9E3779B97F4A7C15ull + 1;
	size_t i;

	for (i = 0; i < n; i++) {
		x ^= x << 13;
		x ^= x >> 7;
		x ^= x << 17;
		p[i] = (char)(x >> 24);
	}
}

static void sample(struct kpar_bucket_result *r)
{
	static const char binary[] = "out\0put\xff\xfe with NUL\n\x01\x1b[31mred";
	struct kpar_test_result *t;
	size_t i;

	memset(r, 0, sizeof *r);
	r->plan = kpar_xstrdup("sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef");
	r->bucket = 7;
	r->attempt = 2;
	r->worker = kpar_xstrdup("node-1.example");
	r->started = 1712345678.25;
	r->finished = 1712345699.5;
	for (i = 0; i < sizeof odd_ids / sizeof odd_ids[0]; i++) {
		t = kpar_bucket_result_add(r, odd_ids[i], (enum kpar_status)(i % 5),
					   0.125 * (double)i, "text output\n", 12);
		t->attempts = (int)i % 3 + 1;
	}
	t = kpar_bucket_result_add(r, "binary", KPAR_FAIL, 1.5, binary, sizeof binary - 1);
	t->exit_code = -1;
	kpar_bucket_result_add(r, "no-output", KPAR_SKIP, 0, NULL, 0);
	kpar_bucket_result_add(r, "empty-output", KPAR_PASS, 0, "", 0);
}

static void check_equal(const struct kpar_bucket_result *a, const struct kpar_bucket_result *b)
{
	size_t i;

	CHECK((a->plan == NULL) == (b->plan == NULL));
	if (a->plan && b->plan)
		CHECK_STR(a->plan, b->plan);
	CHECK_INT(a->bucket, b->bucket);
	CHECK_INT(a->attempt, b->attempt);
	CHECK((a->worker == NULL) == (b->worker == NULL));
	if (a->worker && b->worker)
		CHECK_STR(a->worker, b->worker);
	CHECK(a->started == b->started);
	CHECK(a->finished == b->finished);
	CHECK_INT(a->ntests, b->ntests);
	for (i = 0; i < a->ntests && i < b->ntests; i++) {
		const struct kpar_test_result *x = &a->tests[i], *y = &b->tests[i];

		CHECK_STR(x->id, y->id);
		CHECK_INT(x->status, y->status);
		CHECK(x->seconds == y->seconds);
		CHECK_INT(x->attempts, y->attempts);
		CHECK_INT(x->exit_code, y->exit_code);
		CHECK_INT(x->output_len, y->output_len);
		CHECK((x->output == NULL) == (y->output == NULL));
		if (x->output && y->output && x->output_len == y->output_len)
			CHECK(memcmp(x->output, y->output, x->output_len) == 0);
	}
}

KPAR_TEST(status_names)
{
	int s;

	for (s = KPAR_PASS; s <= KPAR_FLAKY; s++)
		CHECK_INT(kpar_status_parse(kpar_status_name((enum kpar_status)s)), s);
	CHECK_STR(kpar_status_name(KPAR_FLAKY), "flaky");
	CHECK_INT(kpar_status_parse("PASS"), -1);
	CHECK_INT(kpar_status_parse(""), -1);
}

KPAR_TEST(add_defaults)
{
	struct kpar_bucket_result r = { 0 };
	struct kpar_test_result *t;

	t = kpar_bucket_result_add(&r, "a", KPAR_SKIP, 1, "xy", 2);
	CHECK_INT(t->exit_code, 77);
	CHECK_INT(t->attempts, 1);
	CHECK_INT(t->output[2], 0);
	t = kpar_bucket_result_add(&r, "b", KPAR_ERROR, 1, NULL, 5);
	CHECK(t->output == NULL);
	CHECK_INT(t->output_len, 0);
	CHECK_INT(t->exit_code, 99);
	kpar_bucket_result_free(&r);
	CHECK(r.tests == NULL);
	CHECK_INT(r.ntests, 0);
}

KPAR_TEST(round_trip)
{
	struct kpar_bucket_result r, back;
	struct kpar_buf enc = KPAR_BUF_INIT;
	size_t i;

	sample(&r);
	CHECK_OK(kpar_record_encode(&r, &enc));
	CHECK(strncmp(enc.data, "KPAR-RECORD 1 zstd ", 19) == 0);
	CHECK(enc.len > 16 && strcmp(enc.data + enc.len - 16, "KPAR-RECORD-END\n") == 0);
	/* Base64 lines are at most 76 columns. */
	for (i = 0; i < enc.len;) {
		const char *nl = memchr(enc.data + i, '\n', enc.len - i);
		CHECK(nl != NULL);
		if (!nl)
			break;
		if (i > 0)
			CHECK((size_t)(nl - enc.data) - i <= 76);
		i = (size_t)(nl - enc.data) + 1;
	}
	CHECK_OK(kpar_record_decode(enc.data, enc.len, &back));
	check_equal(&r, &back);
	kpar_bucket_result_free(&back);

	/* An empty bucket and absent plan/worker round-trip too. */
	kpar_bucket_result_free(&r);
	r.bucket = 3;
	kpar_buf_clear(&enc);
	CHECK_OK(kpar_record_encode(&r, &enc));
	CHECK_OK(kpar_record_decode(enc.data, enc.len, &back));
	check_equal(&r, &back);
	CHECK(back.plan == NULL);
	kpar_bucket_result_free(&back);
	kpar_buf_free(&enc);
}

KPAR_TEST(embedded_in_log)
{
	struct kpar_bucket_result r, back;
	struct kpar_buf enc = KPAR_BUF_INIT, log = KPAR_BUF_INIT;
	size_t i;

	sample(&r);
	CHECK_OK(kpar_record_encode(&r, &enc));
	kpar_buf_puts(&log, "Starting worker...\nKPAR-RECORD is printed at the end\n");
	kpar_buf_puts(&log, "KPAR-RECORD 1 zstd notanumber abc\nsome more noise\r\n");
	/* CRLF line endings, as some log shippers produce. */
	for (i = 0; i < enc.len; i++) {
		if (enc.data[i] == '\n')
			kpar_buf_putc(&log, '\r');
		kpar_buf_putc(&log, enc.data[i]);
	}
	kpar_buf_puts(&log, "worker exiting\nKPAR-RECORD-END\n");
	CHECK_OK(kpar_record_decode(log.data, log.len, &back));
	check_equal(&r, &back);
	kpar_bucket_result_free(&back);

	/* No trailing newline after END still counts. */
	CHECK_OK(kpar_record_decode(enc.data, enc.len - 1, &back));
	kpar_bucket_result_free(&back);

	CHECK_INT(kpar_record_decode("just\nlog lines\n", 15, &back), KPAR_ENOTFOUND);
	CHECK(strstr(kpar_error_last(), "no result record") != NULL);
	CHECK_INT(kpar_record_decode("", 0, &back), KPAR_ENOTFOUND);
	kpar_bucket_result_free(&r);
	kpar_buf_free(&enc);
	kpar_buf_free(&log);
}

/* Index of the first body byte (after the header line). */
static size_t body_start(const struct kpar_buf *enc)
{
	return (size_t)((const char *)memchr(enc->data, '\n', enc->len) - enc->data) + 1;
}

KPAR_TEST(damage_detected)
{
	struct kpar_bucket_result r, back;
	struct kpar_buf enc = KPAR_BUF_INIT, bad = KPAR_BUF_INIT;
	size_t b, i, end_at;
	char *p;

	sample(&r);
	CHECK_OK(kpar_record_encode(&r, &enc));
	b = body_start(&enc);

	/* A flipped body character that is still base64: checksum mismatch. */
	for (i = b + 3; i < b + 40; i += 7) {
		kpar_buf_clear(&bad);
		kpar_buf_add(&bad, enc.data, enc.len);
		bad.data[i] = bad.data[i] == 'A' ? 'B' : 'A';
		CHECK_INT(kpar_record_decode(bad.data, bad.len, &back), KPAR_ECHECKSUM);
		CHECK(strstr(kpar_error_last(), "checksum mismatch") != NULL);
		CHECK(back.tests == NULL);
	}

	/* A byte that is not base64 at all. */
	kpar_buf_clear(&bad);
	kpar_buf_add(&bad, enc.data, enc.len);
	bad.data[b + 5] = '#';
	CHECK_INT(kpar_record_decode(bad.data, bad.len, &back), KPAR_EINVAL);
	CHECK(strstr(kpar_error_last(), "not base64") != NULL);

	/* Truncated: the END line is missing, or half the body is. */
	end_at = enc.len - strlen("KPAR-RECORD-END\n");
	CHECK_INT(kpar_record_decode(enc.data, end_at, &back), KPAR_EINVAL);
	CHECK(strstr(kpar_error_last(), "truncated") != NULL);
	kpar_buf_clear(&bad);
	kpar_buf_add(&bad, enc.data, b + 77 * 2);
	kpar_buf_puts(&bad, "KPAR-RECORD-END\n");
	CHECK(kpar_record_decode(bad.data, bad.len, &back) < 0);
	CHECK(back.tests == NULL);

	/* A whole body line dropped (lines stay valid base64). */
	kpar_buf_clear(&bad);
	kpar_buf_add(&bad, enc.data, b);
	kpar_buf_add(&bad, enc.data + b + 77, enc.len - b - 77);
	CHECK(kpar_record_decode(bad.data, bad.len, &back) < 0);

	/* Wrong raw length in the header (checksum still matches the body). */
	kpar_buf_clear(&bad);
	kpar_buf_add(&bad, enc.data, enc.len);
	p = strstr(bad.data, " zstd ") + 6;
	*p = *p == '9' ? '1' : (char)(*p + 1);
	CHECK_INT(kpar_record_decode(bad.data, bad.len, &back), KPAR_EINVAL);
	CHECK(strstr(kpar_error_last(), "length mismatch") != NULL);
	CHECK(strstr(kpar_error_last(), "line 1") != NULL);

	/* Wrong checksum in the header. */
	kpar_buf_clear(&bad);
	kpar_buf_add(&bad, enc.data, enc.len);
	p = bad.data + b - 2;
	*p = *p == '0' ? '1' : '0';
	CHECK_INT(kpar_record_decode(bad.data, bad.len, &back), KPAR_ECHECKSUM);

	/* An unsupported version is refused, not silently skipped. */
	kpar_buf_clear(&bad);
	kpar_buf_add(&bad, enc.data, enc.len);
	bad.data[strlen("KPAR-RECORD ")] = '2';
	CHECK_INT(kpar_record_decode(bad.data, bad.len, &back), KPAR_EINVAL);
	CHECK(strstr(kpar_error_last(), "version") != NULL);

	/* A torn copy followed by an intact one: the intact one is used. */
	kpar_buf_clear(&bad);
	kpar_buf_add(&bad, enc.data, b + 100);
	kpar_buf_puts(&bad, "\n");
	kpar_buf_add(&bad, enc.data, enc.len);
	CHECK_OK(kpar_record_decode(bad.data, bad.len, &back));
	check_equal(&r, &back);
	kpar_bucket_result_free(&back);

	kpar_bucket_result_free(&r);
	kpar_buf_free(&enc);
	kpar_buf_free(&bad);
}

KPAR_TEST(utf8)
{
	unsigned cp = 0;

	CHECK_INT(kpar_utf8_next("a", 1, &cp), 1);
	CHECK_INT(cp, 'a');
	CHECK_INT(kpar_utf8_next("\xc3\xa9", 2, &cp), 2);
	CHECK_INT(cp, 0xe9);
	CHECK_INT(kpar_utf8_next("\xe2\x82\xac", 3, &cp), 3);
	CHECK_INT(cp, 0x20ac);
	CHECK_INT(kpar_utf8_next("\xf0\x9f\x98\x80", 4, &cp), 4);
	CHECK_INT(cp, 0x1f600);
	CHECK_INT(kpar_utf8_next("\xc3", 1, NULL), 0);          /* truncated */
	CHECK_INT(kpar_utf8_next("\xc0\xaf", 2, NULL), 0);      /* overlong */
	CHECK_INT(kpar_utf8_next("\xe0\x80\xaf", 3, NULL), 0);  /* overlong */
	CHECK_INT(kpar_utf8_next("\xed\xa0\x80", 3, NULL), 0);  /* surrogate */
	CHECK_INT(kpar_utf8_next("\xf4\x90\x80\x80", 4, NULL), 0); /* > U+10FFFF */
	CHECK_INT(kpar_utf8_next("\x80", 1, NULL), 0);
	CHECK_INT(kpar_utf8_next("", 0, NULL), 0);
}

KPAR_TEST(trim)
{
	struct kpar_buf b = KPAR_BUF_INIT;
	const char *s = "0123456789abcdefghij";

	kpar_record_trim(&b, s, 20, 20, 0);
	CHECK_STR(b.data, s);
	kpar_buf_clear(&b);
	kpar_record_trim(&b, s, 20, 4, 0);
	CHECK_STR(b.data, "[... 16 bytes trimmed ...]\nghij");
	kpar_buf_clear(&b);
	kpar_record_trim(&b, s, 20, 6, 1);
	CHECK_STR(b.data, "012\n[... 14 bytes trimmed ...]\nhij");
	kpar_buf_clear(&b);
	kpar_record_trim(&b, s, 20, 0, 1);
	CHECK_STR(b.data, "[... 20 bytes trimmed ...]");
	/* Cuts never split a character: "é" is 2 bytes. */
	kpar_buf_clear(&b);
	kpar_record_trim(&b, "\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9", 8, 3, 1);
	CHECK_STR(b.data, "[... 6 bytes trimmed ...]\n\xc3\xa9");
	kpar_buf_clear(&b);
	kpar_record_trim(&b, "ab\xc3\xa9\xc3\xa9", 6, 3, 0);
	CHECK_STR(b.data, "[... 4 bytes trimmed ...]\n\xc3\xa9");
	kpar_buf_free(&b);
}

static int has_marker(const struct kpar_test_result *t)
{
	static const char marker[] = " bytes trimmed ...]";

	return t->output && memmem(t->output, t->output_len, marker, sizeof marker - 1) != NULL;
}

KPAR_TEST(trimmed_under_cap)
{
	const size_t pass_len = 2u << 20, fail_len = 1u << 20;
	struct kpar_bucket_result r = { 0 }, back;
	struct kpar_buf enc = KPAR_BUF_INIT;
	char *big = kpar_xmalloc(pass_len);
	char *fail = kpar_xmalloc(fail_len);
	size_t i;

	/* Random bytes do not compress: 4 x 2 MiB passing + 1 MiB failing
	 * is well over the cap once base64'd. */
	r.bucket = 1;
	for (i = 0; i < 4; i++) {
		char id[16];

		fill_random(big, pass_len, i + 1);
		snprintf(id, sizeof id, "pass-%zu", i);
		kpar_bucket_result_add(&r, id, KPAR_PASS, 1, big, pass_len);
	}
	fill_random(fail, fail_len, 99);
	kpar_bucket_result_add(&r, "failing", KPAR_FAIL, 1, fail, fail_len);
	CHECK_OK(kpar_record_encode(&r, &enc));
	CHECK(enc.len <= KPAR_RECORD_MAX);
	CHECK_OK(kpar_record_decode(enc.data, enc.len, &back));
	CHECK_INT(back.ntests, 5);
	if (back.ntests == 5) {
		/* Passing outputs were trimmed to their tail... */
		for (i = 0; i < 4; i++) {
			const struct kpar_test_result *t = &back.tests[i];
			CHECK(t->output_len < pass_len);
			CHECK(has_marker(t));
			CHECK(t->output_len > 1000 &&
			      memcmp(t->output + t->output_len - 1000,
				     r.tests[i].output + pass_len - 1000, 1000) == 0);
		}
		/* ...and the failure was kept whole. */
		CHECK_INT(back.tests[4].output_len, fail_len);
		CHECK(back.tests[4].output_len == fail_len &&
		      memcmp(back.tests[4].output, fail, fail_len) == 0);
	}
	/* The input was not modified. */
	CHECK_INT(r.tests[0].output_len, pass_len);
	kpar_bucket_result_free(&back);
	kpar_bucket_result_free(&r);

	/* A failure larger than the cap on its own keeps head and tail. */
	memset(&r, 0, sizeof r);
	free(fail);
	fail = kpar_xmalloc(12u << 20);
	fill_random(fail, 12u << 20, 7);
	kpar_bucket_result_add(&r, "pass", KPAR_PASS, 1, big, pass_len);
	kpar_bucket_result_add(&r, "huge-failure", KPAR_ERROR, 1, fail, 12u << 20);
	kpar_buf_clear(&enc);
	CHECK_OK(kpar_record_encode(&r, &enc));
	CHECK(enc.len <= KPAR_RECORD_MAX);
	CHECK_OK(kpar_record_decode(enc.data, enc.len, &back));
	if (back.ntests == 2) {
		const struct kpar_test_result *t = &back.tests[1];
		CHECK(t->output_len > 64 * 1024 && t->output_len < (12u << 20));
		CHECK(has_marker(t));
		CHECK(memcmp(t->output, fail, 1000) == 0);
		CHECK(memcmp(t->output + t->output_len - 1000, fail + (12u << 20) - 1000, 1000) == 0);
		CHECK(back.tests[0].output_len < 300);
	}
	kpar_bucket_result_free(&back);
	kpar_bucket_result_free(&r);
	free(big);
	free(fail);
	kpar_buf_free(&enc);
}

KPAR_TEST(compressible_output_kept)
{
	/* The cap is on the encoded size: 4 MiB of repetitive log compresses
	 * far under it and is kept whole. */
	struct kpar_bucket_result r = { 0 }, back;
	struct kpar_buf enc = KPAR_BUF_INIT;
	size_t n = 4u << 20, i;
	char *log = kpar_xmalloc(n);

	for (i = 0; i < n; i++)
		log[i] = "line of test output\n"[i % 20];
	kpar_bucket_result_add(&r, "chatty", KPAR_PASS, 1, log, n);
	CHECK_OK(kpar_record_encode(&r, &enc));
	CHECK(enc.len < (1u << 20));
	CHECK_OK(kpar_record_decode(enc.data, enc.len, &back));
	CHECK(back.ntests == 1 && back.tests[0].output_len == n);
	kpar_bucket_result_free(&back);
	kpar_bucket_result_free(&r);
	kpar_buf_free(&enc);
	free(log);
}

KPAR_TEST(too_many_tests)
{
	/* Ids alone over the raw bound: a clear error, not a torn record. */
	struct kpar_bucket_result r = { 0 };
	struct kpar_buf enc = KPAR_BUF_INIT;
	char *id = kpar_xmalloc(70001);
	size_t i;

	memset(id, 'x', 70000);
	id[70000] = '\0';
	for (i = 0; i < 1000; i++) {
		id[i % 70000] = 'y';
		kpar_bucket_result_add(&r, id, KPAR_PASS, 0, NULL, 0);
	}
	CHECK_INT(kpar_record_encode(&r, &enc), KPAR_EINVAL);
	CHECK(strstr(kpar_error_last(), "do not fit") != NULL);
	CHECK_INT(enc.len, 0);
	kpar_bucket_result_free(&r);
	kpar_buf_free(&enc);
	free(id);
}

KPAR_TEST(bad_json_fields)
{
	/* Hand-made records with a valid frame but a bad payload. */
	struct kpar_bucket_result back;
	struct kpar_buf enc = KPAR_BUF_INIT;
	struct kpar_bucket_result r = { 0 };

	/* A well-framed record whose JSON has a status this reader does not
	 * know (a newer writer, a bug) is refused, naming the test. */
	kpar_bucket_result_add(&r, "t", KPAR_PASS, 0, NULL, 0);
	r.tests[0].status = (enum kpar_status)42;
	CHECK_OK(kpar_record_encode(&r, &enc));
	CHECK_INT(kpar_record_decode(enc.data, enc.len, &back), KPAR_EINVAL);
	CHECK(strstr(kpar_error_last(), "status") != NULL);
	CHECK(strstr(kpar_error_last(), "tests[0]") != NULL);
	kpar_bucket_result_free(&r);
	kpar_buf_free(&enc);
}

/* The digest of a test's whole output travels with the record; anything
 * but a sha256 digest there is refused. */
KPAR_TEST(full_log_digest)
{
	static const char *const good = "sha256:0123456789abcdef0123456789abcdef"
					"0123456789abcdef0123456789abcdef";
	struct kpar_bucket_result r = { 0 }, back;
	struct kpar_buf enc = KPAR_BUF_INIT;

	kpar_bucket_result_add(&r, "t", KPAR_PASS, 0, "x", 1);
	kpar_bucket_result_add(&r, "u", KPAR_PASS, 0, "y", 1);
	r.tests[0].full_log = kpar_xstrdup(good);
	CHECK_OK(kpar_record_encode(&r, &enc));
	CHECK_OK(kpar_record_decode(enc.data, enc.len, &back));
	CHECK(back.tests[0].full_log && strcmp(back.tests[0].full_log, good) == 0);
	CHECK(back.tests[1].full_log == NULL);
	kpar_bucket_result_free(&back);
	free(r.tests[0].full_log);
	r.tests[0].full_log = kpar_xstrdup("sha256:../../etc/passwd");
	kpar_buf_clear(&enc);
	CHECK_OK(kpar_record_encode(&r, &enc));
	CHECK_INT(kpar_record_decode(enc.data, enc.len, &back), KPAR_EINVAL);
	CHECK(strstr(kpar_error_last(), "full_log") != NULL);
	kpar_bucket_result_free(&r);
	kpar_buf_free(&enc);
}

/* A skip's reason is the last non-empty line the test printed. */
KPAR_TEST(skip_reason)
{
	struct kpar_bucket_result r;
	const char *why;
	size_t len;

	memset(&r, 0, sizeof r);
	kpar_bucket_result_add(&r, "a", KPAR_SKIP, 0, "probing\nSKIP: needs network\r\n\n  \n", 33);
	kpar_bucket_result_add(&r, "b", KPAR_SKIP, 0, NULL, 0);
	kpar_bucket_result_add(&r, "c", KPAR_SKIP, 0, "\n \n", 3);
	kpar_bucket_result_add(&r, "d", KPAR_SKIP, 0, "\t only line", 11);
	/* cut to 4 bytes inside the 2-byte e-acute: the cut backs off to 3 */
	kpar_bucket_result_add(&r, "e", KPAR_SKIP, 0, "ab\xc3\xa9z", 5);
	why = kpar_record_skip_reason(&r.tests[0], 200, &len);
	CHECK(why && len == 19 && memcmp(why, "SKIP: needs network", 19) == 0);
	CHECK(kpar_record_skip_reason(&r.tests[1], 200, &len) == NULL && len == 0);
	CHECK(kpar_record_skip_reason(&r.tests[2], 200, &len) == NULL && len == 0);
	why = kpar_record_skip_reason(&r.tests[3], 200, &len);
	CHECK(why && len == 9 && memcmp(why, "only line", 9) == 0);
	why = kpar_record_skip_reason(&r.tests[4], 3, &len);
	CHECK(why && len == 2);
	why = kpar_record_skip_reason(&r.tests[4], 4, &len);
	CHECK(why && len == 4);
	kpar_bucket_result_free(&r);
}

struct frames_seen {
	size_t n;
	struct kpar_buf got[4];
};

static void on_frame(void *arg, const char *data, size_t len)
{
	struct frames_seen *f = arg;

	if (f->n < 4)
		kpar_buf_add(&f->got[f->n], data, len);
	f->n++;
}

/* Log frames ride in the same log as the record: each comes back byte for
 * byte among log noise, a damaged one is skipped and counted (never handed
 * over), and the record itself still decodes after them. */
KPAR_TEST(log_frames)
{
	static const char binary[] = "a\0b\nKPAR-LOG-END\nKPAR-RECORD-END\n\xff";
	struct kpar_bucket_result r, back;
	struct kpar_buf log = KPAR_BUF_INIT, one = KPAR_BUF_INIT, big = KPAR_BUF_INIT;
	struct frames_seen f;
	size_t i, at;

	memset(&f, 0, sizeof f);
	for (i = 0; i < 20000; i++)
		kpar_buf_printf(&big, "line %zu of a long and chatty passing test\n", i);
	kpar_buf_puts(&log, "worker starting\nKPAR-LOG 1 zstd 12 nothex\n");
	CHECK_OK(kpar_record_encode_log(big.data, big.len, &log));
	kpar_buf_puts(&log, "a stderr line between frames\n");
	CHECK_OK(kpar_record_encode_log(binary, sizeof binary - 1, &log));
	CHECK_OK(kpar_record_encode_log("", 0, &log));
	sample(&r);
	CHECK_OK(kpar_record_encode(&r, &log));
	CHECK_INT(kpar_record_decode_logs(log.data, log.len, on_frame, &f), 0);
	CHECK_INT(f.n, 3);
	CHECK(f.got[0].len == big.len && memcmp(f.got[0].data, big.data, big.len) == 0);
	CHECK(f.got[1].len == sizeof binary - 1 && memcmp(f.got[1].data, binary, sizeof binary - 1) == 0);
	CHECK_INT(f.got[2].len, 0);
	/* compressed: 900 KB of repetitive output is a small part of the log */
	CHECK(log.len < big.len / 4);
	CHECK_OK(kpar_record_decode(log.data, log.len, &back));
	check_equal(&r, &back);
	kpar_bucket_result_free(&back);

	/* one base64 character of the first frame changed: that frame is
	 * refused by its checksum, the others still arrive */
	for (i = 0; i < 4; i++)
		kpar_buf_free(&f.got[i]);
	memset(&f, 0, sizeof f);
	kpar_buf_clear(&one);
	kpar_buf_printf(&one, "\nKPAR-LOG 1 zstd %zu ", big.len);
	CHECK(strstr(log.data, one.data) != NULL);
	at = (size_t)(strstr(log.data, one.data) - log.data) + 1;
	at += (size_t)((char *)memchr(log.data + at, '\n', log.len - at) - (log.data + at)) + 10;
	log.data[at] = log.data[at] == 'A' ? 'B' : 'A';
	CHECK_INT(kpar_record_decode_logs(log.data, log.len, on_frame, &f), 1);
	CHECK_INT(f.n, 2);
	CHECK(f.got[0].len == sizeof binary - 1);

	/* a frame cut off before its end line is damaged too */
	kpar_buf_clear(&one);
	CHECK_OK(kpar_record_encode_log(big.data, big.len, &one));
	CHECK_INT(kpar_record_decode_logs(one.data, one.len / 2, on_frame, &f), 1);
	/* and a text without frames costs nothing and finds none */
	CHECK_INT(kpar_record_decode_logs("KPAR-RECORD 1\n", 14, on_frame, &f), 0);
	CHECK_INT(f.n, 2);
	for (i = 0; i < 4; i++)
		kpar_buf_free(&f.got[i]);
	kpar_bucket_result_free(&r);
	kpar_buf_free(&log);
	kpar_buf_free(&one);
	kpar_buf_free(&big);
}

KPAR_TEST_MAIN(KPAR_CASE(status_names), KPAR_CASE(add_defaults), KPAR_CASE(round_trip),
	       KPAR_CASE(embedded_in_log), KPAR_CASE(damage_detected), KPAR_CASE(utf8),
	       KPAR_CASE(trim), KPAR_CASE(trimmed_under_cap), KPAR_CASE(compressible_output_kept),
	       KPAR_CASE(too_many_tests), KPAR_CASE(bad_json_fields), KPAR_CASE(full_log_digest),
	       KPAR_CASE(skip_reason), KPAR_CASE(log_frames))
