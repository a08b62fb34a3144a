/* record.h - the result record: one bucket attempt's results, as a worker
 * prints it to stdout (locally into a file, on Kubernetes into the pod log).
 *
 * Wire format (text, so it survives any log pipeline; kubelet serves up to
 * 10 MiB per container log, so an encoded record is kept under
 * KPAR_RECORD_MAX by trimming outputs of passing tests first):
 *
 *   KPAR-RECORD 1 zstd <raw-len> <sha256-hex-of-compressed>
 *   <base64 of the zstd-compressed JSON, 76 columns a line>
 *   KPAR-RECORD-END
 *
 * The JSON (see kpar_record_encode) is self-describing: format version,
 * plan digest, bucket, attempt, worker, times and every test's result.
 * kpar_record_decode finds the record anywhere in a larger text (log lines
 * before and after are ignored) and rejects a record whose checksum,
 * length or JSON does not match: a torn or corrupted record is never
 * collected.
 */
#ifndef KPAR_RECORD_H
#define KPAR_RECORD_H

#include <stddef.h>

#include "buf.h"

#define KPAR_RECORD_MAX (8u << 20)

enum kpar_status {
	KPAR_PASS = 0,
	KPAR_FAIL = 1,
	KPAR_SKIP = 2,
	KPAR_ERROR = 3,  /* exit 99, signal, timeout, could not start */
	KPAR_FLAKY = 4   /* failed, then passed on a retry */
};

const char *kpar_status_name(enum kpar_status s);
/* Returns -1 for an unknown name. */
int kpar_status_parse(const char *name);

struct kpar_test_result {
	char *id;
	enum kpar_status status;
	double seconds;        /* wall time of the last attempt */
	int attempts;          /* 1 + retries used */
	int exit_code;         /* -1 when killed by a signal */
	char *output;          /* combined stdout+stderr, possibly trimmed; may be NULL */
	size_t output_len;
};

struct kpar_bucket_result {
	char *plan;            /* plan digest the bucket belongs to ("sha256:...") */
	int bucket;            /* 1-based, as in test-group-N */
	int attempt;           /* 1-based bucket attempt */
	char *worker;          /* hostname or local worker name */
	double started;        /* unix time */
	double finished;
	struct kpar_test_result *tests;
	size_t ntests;
};

void kpar_bucket_result_free(struct kpar_bucket_result *r);
/* Appends a test result; copies id and output. */
struct kpar_test_result *kpar_bucket_result_add(struct kpar_bucket_result *r,
	const char *id, enum kpar_status status, double seconds,
	const char *output, size_t output_len);

/* Appends the encoded record (with its trailing newline) to out. */
int kpar_record_encode(const struct kpar_bucket_result *r, struct kpar_buf *out);
/* Decodes the first record found in text; out is filled (free with
 * kpar_bucket_result_free).  KPAR_ENOTFOUND if there is none,
 * KPAR_ECHECKSUM / KPAR_EINVAL for a damaged one. */
int kpar_record_decode(const char *text, size_t len, struct kpar_bucket_result *out);

#endif
