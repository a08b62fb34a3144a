/* junit.h - JUnit XML: read with expat (results a test command wrote) and
 * write (the merged report).  Test ids read from JUnit are
 * "<classname>.<name>" when a classname is present, else "<name>". */
#ifndef KPAR_JUNIT_H
#define KPAR_JUNIT_H

#include <stdio.h>

#include "run/record.h"

/* Adds one kpar_test_result per <testcase> of the file to out. */
int kpar_junit_read(const char *path, struct kpar_bucket_result *out);

/* Writes one <testsuite> per bucket result, each test exactly once, with
 * properties naming its bucket, worker and attempt (classname "kpar"),
 * followed by its subtests (TAP lines, JUnit testcases it wrote), each a
 * testcase named "<number> - <description>" whose classname is the test's
 * id: a failed one with <failure> (message: its reason, text: its
 * diagnostics), a skipped one <skipped message="reason">, a failed TODO
 * <skipped message="TODO: reason">; the counts include them.  XML-escapes
 * all text and drops bytes XML 1.0 cannot carry. */
int kpar_junit_write(FILE *out, const char *suite_name,
		     struct kpar_bucket_result *const *buckets, size_t nbuckets);

#endif
