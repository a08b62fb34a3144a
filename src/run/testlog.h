/* testlog.h - each test's output in a file of its own, as automake keeps
 * name.log beside each test: $(KPAR_STATE_DIR)/report/logs/<id>.log.
 *
 * The file holds everything the test printed, when a worker kept it whole
 * (worker.h's log_dir: the local backend's workers do, into
 * $(KPAR_STATE_DIR)/output/<id>.log, closing line included, and the record
 * names its digest; a pod's worker sends its files in log frames, kept
 * there by the coordinator; the log is then a hard link to it), or else
 * the output the record kept (all of it up to the record's limits:
 * 4 KiB of a passing test, 256 KiB of a failing one, head and tail), then
 * automake's closing line, e.g.
 *   FAIL: tests/io (exit status: 1, 0.52s, attempt 1, bucket 3, worker w2)
 *
 * An id becomes a path under logs/ component by component ('/' separates
 * directories), so tests/io gets logs/tests/io.log.  Bytes a file name
 * should not carry, and components that are empty, "." or "..", are
 * percent-encoded ('%' itself too), so the mapping is one-to-one and no
 * id can name a file outside logs/.
 */
#ifndef KPAR_TESTLOG_H
#define KPAR_TESTLOG_H

#include <stddef.h>

#include "base/buf.h"
#include "run/record.h"

/* Appends the log's closing line for t ("FAIL: id (exit status: 1, 0.52s,
 * attempt 1, bucket 3, worker w2)" and a newline) to out. */
void kpar_testlog_closing(const struct kpar_test_result *t, int bucket, const char *worker, struct kpar_buf *out);

/* Appends "<mapped id>.log" (relative to logs/) to out. */
void kpar_testlog_name(const char *id, struct kpar_buf *out);

/* Creates dir/<mapped id>.log anew (its directories too) for writing:
 * an existing file is unlinked first, never truncated, because the last
 * report's log may be a hard link to it.  Returns the descriptor and sets
 * *path (free it), or < 0 with the error set. */
int kpar_testlog_create(const char *dir, const char *id, char **path);
/* Writes data as dir/<mapped id>.log through kpar_testlog_create. */
int kpar_testlog_keep(const char *dir, const char *id, const char *data, size_t len);

/* Appends a log frame (record.h) for each test of r whose whole output a
 * worker kept under dir and whose file still has the digest r names, as
 * long as the frames stay within budget bytes: failures and errors first,
 * then flaky tests, then the rest (a frame that does not fit is left out
 * and a smaller one may still go).  Returns how many were left out; their
 * reports show the record's output. */
size_t kpar_testlog_frames(const char *dir, const struct kpar_bucket_result *r, size_t budget,
			   struct kpar_buf *out);

/* Replaces dir (e.g. report/logs) with one log per test of the results:
 * written beside it first, then swapped in, so a reader never sees half
 * of one run's logs and half of another's.  full_dir (or NULL) is where
 * the workers kept whole outputs: a file there is used for a result only
 * when its SHA-256 is the result's full_log. */
int kpar_testlog_write_all(const char *dir, const char *full_dir, struct kpar_bucket_result *const *res,
			   size_t nres);

#endif
