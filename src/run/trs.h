/* trs.h - reading an automake test driver's .trs file (automake manual,
 * "Custom Test Drivers"): the results of one test script.
 *
 * Read: the ":test-result: RESULT [text]" lines, RESULT one of PASS, FAIL,
 * SKIP, XFAIL, XPASS, ERROR, the text the result's name or description
 * (the harness ignores it; kpar.mk fills it in from the driver's own
 * "RESULT: test text" lines, e.g. tap-driver's "2 - broken # TODO why").
 * Of the other fields only :global-test-result: is read (:recheck:, ...
 * are not).
 *
 * The verdict, as automake's summary sums a script up: any ERROR (or an
 * unknown result, or none at all) an error, else any FAIL or XPASS a
 * failure, else all SKIP a skip, else a pass.  A :global-test-result: of
 * XFAIL (test-driver's for an XFAIL_TESTS test that failed) makes that
 * pass KPAR_XFAIL, one of XPASS the failure KPAR_XPASS, the words kpar's
 * summary and JUnit give automake's expected failures; any other global
 * result (tap-driver's PASS, FAIL, SKIP or ERROR, also for an XFAIL_TESTS
 * script, whose results are each XFAIL or XPASS) leaves the sum.
 *
 * The subtests: one per result, unless there is one result only with no
 * text or a text starting "- " (the script's own: test-driver's result,
 * a TAP skip-all "1..0 # SKIP why", a lone driver error).  A text that
 * starts with a number is that TAP number (else the position), then a
 * description ("- " dropped), then tap-driver's " # SKIP why" or
 * " # TODO why".  PASS is a pass, SKIP a skip, XFAIL a TODO that failed,
 * FAIL a failure, XPASS and ERROR failures whose reason says so (automake
 * counts an XPASS, a TODO that passed, as a failure, unlike prove).
 */
#ifndef KPAR_TRS_H
#define KPAR_TRS_H

#include <stddef.h>

#include "run/record.h"

struct kpar_trs_result {
	enum kpar_status verdict;      /* KPAR_PASS, KPAR_FAIL, KPAR_SKIP, KPAR_ERROR,
					  KPAR_XFAIL or KPAR_XPASS */
	char *explanation;             /* skip: the reason (may be NULL); fail, xpass,
					  error: the results that decided it; NULL for a
					  pass or an xfail */
	struct kpar_subtest *subtests; /* see above; NULL when none */
	size_t nsubtests;
	size_t nresults;               /* :test-result: lines read */
};

/* The text of a .trs file. out is filled (free with kpar_trs_result_free). */
void kpar_trs_parse(const char *text, size_t len, struct kpar_trs_result *out);
/* The same from a file; < 0 with the error set (naming the file) when it
 * cannot be read. */
int kpar_trs_read(const char *path, struct kpar_trs_result *out);
void kpar_trs_result_free(struct kpar_trs_result *r);

#endif
