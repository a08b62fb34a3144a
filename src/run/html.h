/* html.h - the run's report as one self-contained web page,
 * $(KPAR_STATE_DIR)/report/index.html, beside junit.xml.
 *
 * The page holds everything it shows (inline CSS and JavaScript, the run's
 * data as JSON in a <script type="application/json"> element) and makes no
 * request of any kind: its Content-Security-Policy allows only its own
 * inline style and script, by hash.  It shows the verdict and totals (as
 * the summary counts them), failures and errors first with their output,
 * flaky tests, skips with their reasons, the slowest tests, a timeline of
 * every worker (buckets and their tests as bars over the run's wall time;
 * retried bucket attempts, retried tests and lost buckets marked) and a
 * list of every test filtered by status and name, paginated.
 *
 * Test ids and outputs are data, never markup: the page builds its DOM
 * with textContent only, the JSON has every '<' written as \u003c (so no
 * "</script>" or "<!--" in an output can end the data element), and bytes
 * that are not UTF-8 are shown as U+FFFD.  Outputs kept: those of failed,
 * erred, flaky and skipped tests (head and tail of long ones, within a
 * budget for the whole page); passing tests' outputs are left to
 * junit.xml, so a page of 10,000 tests stays small.
 */
#ifndef KPAR_HTML_H
#define KPAR_HTML_H

#include <stddef.h>

#include "run/record.h"
#include "run/state.h"

/* Writes dir/index.html (atomically) for run ri and its collected
 * buckets res[0..nres); events is the backend's notes (may be NULL). */
int kpar_html_write(const char *dir, const struct kpar_run_info *ri,
		    const struct kpar_bucket_result *res, size_t nres, const char *events);

/* The page for the same input, into out (for tests). */
void kpar_html_render(const struct kpar_run_info *ri, const struct kpar_bucket_result *res,
		      size_t nres, const char *events, double now, struct kpar_buf *out);

#endif
