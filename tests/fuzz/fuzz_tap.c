/* fuzz_tap.c - the TAP reader as a libFuzzer target (clang
 * -fsanitize=fuzzer): `make fuzz-tap` in the build tree builds it with
 * ASan and UBSan and a corpus from tap_seeds.h; see README.md.  The checks
 * are those of tests/unit/test_tap_fuzz.c, which runs the same reader over
 * deterministic mutations in every make check. */
#include "config.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "run/tap.h"

#define REQUIRE(c) do { if (!(c)) abort(); } while (0)

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	const char *in = (const char *)data;
	struct kpar_tap_result whole, part;
	struct kpar_tap *p;
	size_t i, cut = size ? data[0] % (size + 1) : 0, nfail = 0;

	kpar_tap_parse(in, size, 0, 0, &whole);
	REQUIRE(whole.verdict == KPAR_PASS || whole.verdict == KPAR_FAIL ||
		whole.verdict == KPAR_SKIP);
	REQUIRE((long)whole.nsubtests == whole.run);
	for (i = 0; i < whole.nsubtests; i++) {
		const struct kpar_subtest *s = &whole.subtests[i];
		REQUIRE(s->name && strlen(s->name) <= KPAR_TAP_TEXT_MAX);
		REQUIRE(!s->diag || strlen(s->diag) <= KPAR_TAP_DIAG_MAX);
		nfail += s->status == KPAR_SUB_FAIL;
	}
	REQUIRE((long)nfail == whole.failed);
	REQUIRE((whole.verdict == KPAR_PASS) == (whole.explanation == NULL));
	/* in two pieces, cut anywhere: the same reading */
	p = kpar_tap_new();
	kpar_tap_feed(p, in, cut);
	kpar_tap_feed(p, in + cut, size - cut);
	kpar_tap_finish(p, 0, 0, &part);
	kpar_tap_free(p);
	REQUIRE(part.verdict == whole.verdict && part.nsubtests == whole.nsubtests);
	REQUIRE(!part.explanation == !whole.explanation);
	REQUIRE(!part.explanation || strcmp(part.explanation, whole.explanation) == 0);
	kpar_tap_result_free(&part);
	kpar_tap_result_free(&whole);
	return 0;
}
