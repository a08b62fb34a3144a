/* report.h - the global view of a run: merged JUnit XML, a terminal
 * summary, and the verdict file Make uses as the run's target.
 *
 * Files under $(KPAR_STATE_DIR)/report/: junit.xml (every test exactly
 * once, with its bucket, worker and attempt), logs/<id>.log (each test's
 * output, testlog.h), summary.txt (what `make k8s-report` prints; a
 * failure names its log), verdict ("pass" or "fail", written last).
 */
#ifndef KPAR_REPORT_H
#define KPAR_REPORT_H

#include <stdio.h>

#include "base/conf.h"
#include "run/state.h"

struct kpar_report_totals {
	size_t tests, passed, failed, errors, skipped, flaky;
	/* automake's expected failures: xfail is not counted as failed,
	 * xpass is (and also counted in failed) */
	size_t xfail, xpass;
};

/* Writes the three report files for run; *failed_out set to 1 when a test
 * failed or errored. */
int kpar_report_write(const struct kpar_conf *c, struct kpar_state *st, long long run,
		      struct kpar_report_totals *totals);
/* Prints the summary of the last report and returns 0 (pass), 1 (fail) or
 * a negative error when there is no report. */
int kpar_report_print(const struct kpar_conf *c, FILE *out);

#endif
