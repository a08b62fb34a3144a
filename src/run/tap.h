/* tap.h - reading a test's TAP output (Test Anything Protocol 12, 13 and
 * 14) and judging the script as prove (Test::Harness 3.x) does.
 *
 * What is read, line by line (a trailing CR is dropped):
 *   TAP version N     before any plan or test; 13 and 14 turn on YAML
 *                     blocks, pragmas and the version-13 plan syntax
 *   1..N              the plan, first or last; "1..0 # SKIP why" skips
 *                     the whole script (version 12 also "1..N todo 2 3")
 *   ok / not ok       [number] [description] [# SKIP|TODO [explanation]],
 *                     the directive case-insensitive, at the first
 *                     unescaped '#'
 *   Bail out! why     the script fails; nothing after it is read
 *   #...              comments: kept as the diagnostics of the test line
 *                     they follow
 *   "  ---" ... "  ..." a YAML block (13+), kept as the diagnostics of the
 *                     test line it follows; its content is not interpreted;
 *                     a block that ends without "..." ends the reading
 *   pragma +strict    (13+) unknown lines become errors
 * Anything else, indented TAP 14 subtests included, is ignored, as prove
 * ignores it.
 *
 * The verdict (prove's has_problems, then skip_all):
 *   fail  a `not ok` without TODO, a test beyond the plan, no plan, more
 *         than one plan, a plan in the middle, planned != run, numbers out
 *         of sequence, a misplaced or unknown version line, an unterminated
 *         YAML block, a bail-out, a nonzero exit status or a signal;
 *   skip  otherwise, when the plan skips the script (its reason, or
 *         "(no reason given)");
 *   pass  otherwise.
 * Where kpar differs from prove 3.44: "TAP version 14" is accepted (read as
 * 13; prove 3.44 calls it an error); a YAML block's content is kept as
 * text (prove's YAMLish reader fails a script on YAML it does not support,
 * and reads nothing after it); and memory is bounded: descriptions,
 * reasons and diagnostics are cut (KPAR_TAP_TEXT_MAX, KPAR_TAP_DIAG_MAX) and
 * a line longer than KPAR_TAP_LINE_MAX is read as its first bytes.
 */
#ifndef KPAR_TAP_H
#define KPAR_TAP_H

#include <stddef.h>

#include "run/record.h"

#define KPAR_TAP_LINE_MAX (64u << 10)
#define KPAR_TAP_TEXT_MAX 1024u          /* a description or a reason */
#define KPAR_TAP_DIAG_MAX (4u << 10)     /* one test line's diagnostics */
#define KPAR_TAP_DIAG_TOTAL (1u << 20)   /* all diagnostics of a script */

struct kpar_tap;   /* an incremental parser */

struct kpar_tap_result {
	enum kpar_status verdict;      /* KPAR_PASS, KPAR_FAIL or KPAR_SKIP */
	char *explanation;             /* fail: the problems, "; "-separated;
					  skip: the reason; NULL for a pass */
	struct kpar_subtest *subtests; /* one per test line, in order */
	size_t nsubtests;
	long planned;                  /* -1 without a plan */
	long run;                      /* test lines read */
	long failed;                   /* subtests that fail the script */
	int version;                   /* 12 unless a version line said otherwise */
	int bailed_out;
};

struct kpar_tap *kpar_tap_new(void);
/* Feeds output as it comes, in pieces of any size. */
void kpar_tap_feed(struct kpar_tap *p, const char *data, size_t len);
/* Ends the input and judges it: exit_code is the script's exit status, or
 * -1 when it was killed by signal signo.  out is filled (free it with
 * kpar_tap_result_free); p stays to be freed. */
void kpar_tap_finish(struct kpar_tap *p, int exit_code, int signo, struct kpar_tap_result *out);
void kpar_tap_free(struct kpar_tap *p);

/* The whole output at once: new, feed, finish, free. */
void kpar_tap_parse(const char *text, size_t len, int exit_code, int signo,
		    struct kpar_tap_result *out);
void kpar_tap_result_free(struct kpar_tap_result *r);

#endif
