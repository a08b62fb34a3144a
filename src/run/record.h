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

#include "base/buf.h"

#define KPAR_RECORD_MAX (8u << 20)
/* Bound on the decompressed JSON, so a forged header cannot make a reader
 * allocate without limit; the encoder trims outputs to stay under it too. */
#define KPAR_RECORD_RAW_MAX (64u << 20)

enum kpar_status {
	KPAR_PASS = 0,
	KPAR_FAIL = 1,
	KPAR_SKIP = 2,
	KPAR_ERROR = 3,  /* exit 99, signal, timeout, could not start */
	KPAR_FLAKY = 4,  /* failed, then passed on a retry */
	/* A test listed as expected to fail (automake's XFAIL_TESTS): its
	 * failure is XFAIL, not a failure; its pass is XPASS, a failure. */
	KPAR_XFAIL = 5,
	KPAR_XPASS = 6
};

const char *kpar_status_name(enum kpar_status s);
/* Returns -1 for an unknown name. */
int kpar_status_parse(const char *name);

/* One result inside a test (a TAP `ok`/`not ok` line, a testcase of the
 * JUnit file a test wrote): reported under its test, never counted as a
 * test of its own. */
enum kpar_sub_status {
	KPAR_SUB_PASS = 0,
	KPAR_SUB_FAIL = 1,
	KPAR_SUB_SKIP = 2,
	KPAR_SUB_TODO_PASS = 3,  /* TODO test that passed (prove: "unexpectedly succeeded") */
	KPAR_SUB_TODO_FAIL = 4   /* TODO test that failed, as expected: not a failure */
};

const char *kpar_sub_status_name(enum kpar_sub_status s);
/* Returns -1 for an unknown name. */
int kpar_sub_status_parse(const char *name);

struct kpar_subtest {
	long number;           /* TAP test number (1-based); JUnit: position */
	char *name;            /* description; may be "" */
	enum kpar_sub_status status;
	char *reason;          /* SKIP/TODO explanation; NULL when none */
	char *diag;            /* YAML block and comment lines after it; NULL when none */
};

struct kpar_test_result {
	char *id;
	enum kpar_status status;
	double seconds;        /* wall time of the last attempt */
	int attempts;          /* 1 + retries used */
	int exit_code;         /* -1 when killed by a signal */
	char *output;          /* combined stdout+stderr, possibly trimmed; may be NULL */
	size_t output_len;
	/* What the test's protocol (TAP, JUnit) said beyond its exit status:
	 * why a TAP script failed ("Bad plan...") or was skipped; may be NULL. */
	char *note;
	struct kpar_subtest *subtests;   /* owned; NULL when the protocol gave none */
	size_t nsubtests;
	/* "sha256:<hex>" of everything the test printed (every attempt), when
	 * the worker kept it whole in a file (testlog.h); NULL otherwise.  The
	 * report uses that file only when its digest is this one, so a file
	 * left by another run is never shown as this result's output. */
	char *full_log;
};

/* Frees a subtest array and its strings. */
void kpar_subtests_free(struct kpar_subtest *s, size_t n);
/* Moves subtests (and their count) into t, freeing what t had. */
void kpar_test_result_take_subtests(struct kpar_test_result *t, struct kpar_subtest **s, size_t *n);
/* The subtests as the record's JSON array (text, malloc'd; "[]" when none). */
char *kpar_subtests_json(const struct kpar_test_result *t);
/* Replaces t's subtests by those of a JSON array from kpar_subtests_json;
 * KPAR_EINVAL (t unchanged) when it is not one. */
int kpar_subtests_from_json(struct kpar_test_result *t, const char *json, size_t len);

struct kpar_bucket_result {
	char *plan;            /* plan digest the bucket belongs to ("sha256:...") */
	int bucket;            /* 1-based, as in test-group-N */
	int attempt;           /* 1-based bucket attempt */
	char *worker;          /* hostname or local worker name */
	double started;        /* unix time */
	double finished;
	struct kpar_test_result *tests;  /* grown only by kpar_bucket_result_add */
	size_t ntests;
};

/* Frees every field and the tests array (not r itself) and zeroes r. */
void kpar_bucket_result_free(struct kpar_bucket_result *r);
/* Appends a test result; copies id and output (output is stored with a
 * terminating NUL after output_len bytes, NULL when output is NULL).
 * attempts is 1 and exit_code follows the status (0 pass/flaky, 77 skip,
 * 99 error, 1 fail): adjust them through the returned pointer, which stays
 * valid until the next add. */
struct kpar_test_result *kpar_bucket_result_add(struct kpar_bucket_result *r,
	const char *id, enum kpar_status status, double seconds,
	const char *output, size_t output_len);
/* A skipped test's reason, as automake and TAP take it: the last non-empty
 * line of its output (say "SKIP: needs network"), without surrounding
 * blanks, at most max bytes (cut on a UTF-8 character boundary); a TAP
 * skip-all's reason (t->note) instead when there is one.  Returns the start
 * in t->note or t->output and sets *len; NULL when there is none. */
const char *kpar_record_skip_reason(const struct kpar_test_result *t, size_t max, size_t *len);

/* Appends the encoded record (with its trailing newline) to out.
 *
 * JSON: {"kpar_record":1,"plan","bucket","attempt","worker","started",
 * "finished","tests":[{"id","status","seconds","attempts","exit_code",
 * "output","note","full_log","subtests":[{"n","name","status","reason","diag"}]}]}.
 * "note", "full_log" and "subtests" are present only when the test has them.
 *
 * The version ("kpar_record", and the header's) changes only when a reader
 * of the previous version would misread a new record.  Adding an optional
 * key does not change it: readers ignore keys they do not know (an older
 * kpar loses the subtests, not the verdict), and a record without the key
 * decodes as before.  A string that is not valid UTF-8 or holds a NUL (an id,
 * an output) is stored base64-encoded under the key with "_b64" appended
 * ("output_b64", "id_b64") instead, so every byte round-trips while the
 * usual text stays readable.  When the record would exceed KPAR_RECORD_MAX
 * (or the JSON KPAR_RECORD_RAW_MAX), outputs are trimmed with
 * kpar_record_trim: passing and skipped tests' first (tail kept), then
 * failing, erroring and flaky ones' (head and tail kept), in steps down to
 * the bare marker; r itself is not modified.  KPAR_EINVAL if even that
 * does not fit (ids alone too large). */
int kpar_record_encode(const struct kpar_bucket_result *r, struct kpar_buf *out);
/* The record's JSON payload (as kpar_record_encode would compress it, but
 * with no trimming), for tools that show a record; free() it. */
char *kpar_record_json(const struct kpar_bucket_result *r);
/* Decodes the first intact record found in text; out is filled (free with
 * kpar_bucket_result_free; it is zeroed first).  Lines that merely start
 * with "KPAR-RECORD" but are not a well-formed header are skipped as log
 * noise.  KPAR_ENOTFOUND if there is no record, KPAR_ECHECKSUM /
 * KPAR_EINVAL for a damaged one (the message says what is wrong and on
 * which line) when no later record in text is intact. */
int kpar_record_decode(const char *text, size_t len, struct kpar_bucket_result *out);

/* A test's whole output travels beside the record in log frames, encoded
 * as the record is but under their own tags:
 *
 *   KPAR-LOG 1 zstd <raw-len> <sha256-hex-of-compressed>
 *   <base64 lines>
 *   KPAR-LOG-END
 *
 * A frame names no test: the receiver matches the SHA-256 of its content
 * with a result's full_log, so a frame can only ever stand for the output
 * its record vouches for, and a lost or damaged frame just leaves the
 * record's own (trimmed) output.  Appends one frame holding data to out;
 * KPAR_EINVAL above KPAR_RECORD_RAW_MAX bytes. */
int kpar_record_encode_log(const char *data, size_t len, struct kpar_buf *out);
/* Calls fn with the content of each intact log frame in text, in order;
 * returns how many frames were damaged (skipped). */
size_t kpar_record_decode_logs(const char *text, size_t len,
			       void (*fn)(void *arg, const char *data, size_t len), void *arg);

/* Appends data to out, cut to about max bytes: with head_and_tail, the
 * first and last max/2 bytes around a "\n[... N bytes trimmed ...]\n"
 * marker (failures: the cause is often at the start, the verdict at the
 * end); otherwise only the last max bytes after the marker.  Cuts land on
 * UTF-8 character boundaries.  Data of at most max bytes is copied whole. */
void kpar_record_trim(struct kpar_buf *out, const char *data, size_t len,
		      size_t max, int head_and_tail);

/* Length (1-4) of the well-formed UTF-8 sequence at s, storing its code
 * point in *cp (may be NULL); 0 if s[0..len) does not start with one
 * (overlong forms, surrogates and values above U+10FFFF are invalid). */
size_t kpar_utf8_next(const char *s, size_t len, unsigned *cp);

#endif
