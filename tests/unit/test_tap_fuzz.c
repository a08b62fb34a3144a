/* test_tap_fuzz.c - a deterministic mutation fuzz of the TAP reader: every
 * seed of tests/fuzz/tap_seeds.h, mutated thousands of times with a fixed
 * PRNG (the same inputs every run, so a failure reproduces), read whole and
 * in random pieces.  Run under the ASan/UBSan build (scripts/check) it
 * catches memory errors; in any build it checks what must hold for every
 * input: a verdict a user can rely on, bounded text, and the same answer
 * however the output arrives.  tests/fuzz/fuzz_tap.c is the same checks as
 * a libFuzzer target. */
#include "config.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/buf.h"
#include "run/record.h"
#include "run/tap.h"
#include "test.h"
#include "../fuzz/tap_seeds.h"

#define ROUNDS 10000

static uint64_t rng = 0x9e3779b97f4a7c15ull;

static uint64_t next(void)
{
	/* xorshift64* */
	rng ^= rng >> 12;
	rng ^= rng << 25;
	rng ^= rng >> 27;
	return rng * 0x2545f4914f6cdd1dull;
}

static size_t below(size_t n)
{
	return n ? (size_t)(next() % n) : 0;
}

static const char *const tokens[] = {
	"ok", "not ok", " ", "1..", "0", "1", "2", "99", "#", " # SKIP ", " # TODO ", "\n",
	"\r", "\\", "\\#", "  ---\n", "  ...\n", "Bail out!", "TAP version 13\n",
	"TAP version 14\n", "pragma +strict\n", "    ", "-", "\t", "\xff", "\xc3\xa9",
};

static void mutate(struct kpar_buf *b)
{
	size_t n = 1 + below(6), k;

	for (k = 0; k < n; k++) {
		size_t at = below(b->len + 1), len;
		struct kpar_buf t = KPAR_BUF_INIT;

		switch (below(6)) {
		case 0:   /* flip a byte */
			if (b->len)
				b->data[below(b->len)] ^= (char)(1u << below(8));
			break;
		case 1:   /* a random byte */
			if (b->len)
				b->data[below(b->len)] = (char)below(256);
			break;
		case 2:   /* insert a token */
		case 3: {
			const char *tok = tokens[below(sizeof tokens / sizeof tokens[0])];
			kpar_buf_add(&t, b->data, at);
			kpar_buf_puts(&t, tok);
			kpar_buf_add(&t, b->data + at, b->len - at);
			kpar_buf_free(b);
			*b = t;
			break;
		}
		case 4:   /* delete a range */
			len = below(b->len - at + 1);
			memmove(b->data + at, b->data + at + len, b->len - at - len);
			b->len -= len;
			b->data[b->len] = '\0';
			break;
		case 5: { /* splice in part of another seed */
			const char *o = kpar_tap_seeds[below(KPAR_TAP_NSEEDS)];
			size_t ol = strlen(o), from = below(ol + 1);
			len = below(ol - from + 1);
			kpar_buf_add(&t, b->data, at);
			kpar_buf_add(&t, o + from, len);
			kpar_buf_add(&t, b->data + at, b->len - at);
			kpar_buf_free(b);
			*b = t;
			break;
		}
		}
	}
}

/* What every reading of any input must satisfy. */
static void check_result(const struct kpar_tap_result *r, int exit_code)
{
	size_t i, nfail = 0;

	CHECK(r->verdict == KPAR_PASS || r->verdict == KPAR_FAIL || r->verdict == KPAR_SKIP);
	CHECK_INT(r->nsubtests, r->run);
	for (i = 0; i < r->nsubtests; i++) {
		const struct kpar_subtest *s = &r->subtests[i];
		CHECK(s->name != NULL && strlen(s->name) <= KPAR_TAP_TEXT_MAX);
		CHECK(!s->reason || strlen(s->reason) <= KPAR_TAP_TEXT_MAX + 64);
		CHECK(!s->diag || strlen(s->diag) <= KPAR_TAP_DIAG_MAX);
		CHECK(s->status <= KPAR_SUB_TODO_FAIL);
		nfail += s->status == KPAR_SUB_FAIL;
	}
	CHECK_INT(nfail, r->failed);
	if (r->verdict == KPAR_PASS)
		CHECK(r->explanation == NULL && r->failed == 0 && r->planned == r->run);
	else
		CHECK(r->explanation != NULL && *r->explanation);
	if (r->verdict != KPAR_FAIL)
		CHECK(exit_code == 0 && r->failed == 0 && !r->bailed_out && r->planned >= 0);
	if (exit_code != 0)
		CHECK_INT(r->verdict, KPAR_FAIL);
}

static void one(const char *in, size_t len)
{
	struct kpar_tap_result whole, part;
	struct kpar_tap *p;
	int code = below(8) == 0 ? 1 : 0;
	size_t i, k;

	kpar_tap_parse(in, len, code, 0, &whole);
	check_result(&whole, code);
	p = kpar_tap_new();
	for (i = 0; i < len; ) {
		size_t n = 1 + below(64);
		if (n > len - i)
			n = len - i;
		kpar_tap_feed(p, in + i, n);
		i += n;
	}
	kpar_tap_finish(p, code, 0, &part);
	kpar_tap_free(p);
	CHECK_INT(part.verdict, whole.verdict);
	CHECK((part.explanation == NULL) == (whole.explanation == NULL));
	if (part.explanation && whole.explanation)
		CHECK_STR(part.explanation, whole.explanation);
	CHECK_INT(part.nsubtests, whole.nsubtests);
	for (k = 0; k < part.nsubtests && k < whole.nsubtests; k++)
		CHECK_INT(part.subtests[k].status, whole.subtests[k].status);
	if (below(50) == 0) {
		/* the record carries whatever the reader produced */
		struct kpar_bucket_result r = { 0 }, back = { 0 };
		struct kpar_test_result *t = kpar_bucket_result_add(&r, "t", whole.verdict, 0, in, len);
		struct kpar_buf enc = KPAR_BUF_INIT;

		t->note = whole.explanation ? kpar_xstrdup(whole.explanation) : NULL;
		kpar_test_result_take_subtests(t, &part.subtests, &part.nsubtests);
		CHECK(kpar_record_encode(&r, &enc) == 0);
		CHECK(kpar_record_decode(enc.data, enc.len, &back) == 0);
		CHECK(back.ntests == 1 && back.tests[0].nsubtests == whole.nsubtests);
		kpar_buf_free(&enc);
		kpar_bucket_result_free(&back);
		kpar_bucket_result_free(&r);
	}
	kpar_tap_result_free(&part);
	kpar_tap_result_free(&whole);
}

KPAR_TEST(seeds)
{
	size_t i;

	for (i = 0; i < KPAR_TAP_NSEEDS; i++)
		one(kpar_tap_seeds[i], strlen(kpar_tap_seeds[i]));
}

KPAR_TEST(mutations)
{
	size_t i, r;
	int before = kpar_test_failures;

	for (i = 0; i < KPAR_TAP_NSEEDS; i++) {
		for (r = 0; r < ROUNDS; r++) {
			struct kpar_buf b = KPAR_BUF_INIT;

			kpar_buf_puts(&b, kpar_tap_seeds[i]);
			mutate(&b);
			one(b.data ? b.data : "", b.len);
			if (kpar_test_failures != before) {
				/* name the input, so it can become a seed or a case */
				size_t k;
				fprintf(stderr, "failing input (seed %zu, round %zu): \"", i, r);
				for (k = 0; k < b.len; k++)
					fprintf(stderr, (unsigned char)b.data[k] < 0x20 ||
						(unsigned char)b.data[k] >= 0x7f ? "\\x%02x" : "%c",
						(unsigned char)b.data[k]);
				fprintf(stderr, "\"\n");
				kpar_buf_free(&b);
				return;
			}
			kpar_buf_free(&b);
		}
	}
}

KPAR_TEST_MAIN(KPAR_CASE(seeds), KPAR_CASE(mutations))
