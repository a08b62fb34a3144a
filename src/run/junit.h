/* junit.h - JUnit XML: read with expat (results a test command wrote) and
 * write (the merged report).  Test ids read from JUnit are
 * "<classname>.<name>" when a classname is present, else "<name>". */
#ifndef KPAR_JUNIT_H
#define KPAR_JUNIT_H

#include <stdio.h>

#include "run/record.h"

/* Adds one kpar_test_result per <testcase> of the file to out. */
int kpar_junit_read(const char *path, struct kpar_bucket_result *out);

/* One <testcase> as kpar_junit_each reports it; strings are borrowed
 * (valid during the call), classname and file NULL when absent, has_time 0
 * when the case had no valid time attribute. */
struct kpar_junit_case {
	const char *classname, *name, *file;
	double seconds;
	int has_time;
	enum kpar_status status;
};
/* Returns 0, or a negative kpar error that stops the reading. */
typedef int (*kpar_junit_case_fn)(void *ud, const struct kpar_junit_case *c);
/* Calls fn for each <testcase> of the file, in document order, reading it
 * in chunks and keeping no output: for reports of any size.  Errors (not
 * XML, truncated, a nameless case) name the file and line; cases already
 * reported before a late error were still reported. */
int kpar_junit_each(const char *path, kpar_junit_case_fn fn, void *ud);

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
