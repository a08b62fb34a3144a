/* rectool.c - decodes the result record a worker printed (stdin), for the
 * image tests: prints "bucket N" and then "<status> <id>" per test, so a
 * script can check what ran inside an image.  Exit 1 when no valid record. */
#include "config.h"

#include <stdio.h>
#include <stdlib.h>

#include "base/buf.h"
#include "base/error.h"
#include "run/record.h"

int main(void)
{
	struct kpar_buf in = KPAR_BUF_INIT;
	struct kpar_bucket_result r;
	char chunk[65536];
	size_t n, i;
	int rc;

	while ((n = fread(chunk, 1, sizeof chunk, stdin)) > 0)
		kpar_buf_add(&in, chunk, n);
	rc = kpar_record_decode(in.data ? in.data : "", in.len, &r);
	kpar_buf_free(&in);
	if (rc < 0) {
		fprintf(stderr, "rectool: %s\n", kpar_error_last());
		return 1;
	}
	printf("bucket %d\n", r.bucket);
	for (i = 0; i < r.ntests; i++)
		printf("%s %s\n", kpar_status_name(r.tests[i].status), r.tests[i].id);
	kpar_bucket_result_free(&r);
	return 0;
}
