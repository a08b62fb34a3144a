/* tap_verdict.c - prints kpar's reading of TAP files, one line each:
 * "<file> <pass|fail|skip> <tests run>", for tests/tap/differential.sh to
 * compare with TAP::Parser's. */
#include "config.h"

#include <stdio.h>
#include <stdlib.h>

#include "base/error.h"
#include "base/fs.h"
#include "run/tap.h"

int main(int argc, char **argv)
{
	int i, rc = 0;

	for (i = 1; i < argc; i++) {
		struct kpar_tap_result r;
		char *data;
		size_t len;

		if (kpar_fs_read_all(argv[i], &data, &len) < 0) {
			fprintf(stderr, "tap_verdict: %s\n", kpar_error_last());
			rc = 2;
			continue;
		}
		kpar_tap_parse(data, len, 0, 0, &r);
		printf("%s %s %ld\n", argv[i], r.verdict == KPAR_PASS ? "pass" :
		       r.verdict == KPAR_SKIP ? "skip" : "fail", r.run);
		kpar_tap_result_free(&r);
		free(data);
	}
	return rc;
}
