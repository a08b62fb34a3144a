/* import.h - durations a team already has, into kpar's duration history.
 *
 * A first run cannot know which test is its longest, but a CI usually kept
 * the answer: the JUnit XML reports of past runs (any dialect kpar reads,
 * its own report/junit.xml included) or prove's state file (.prove, written
 * by `prove --state=save`).  kpar_import_files reads them and records each
 * matched test's duration in the history the split uses, marked as
 * imported, so a duration kpar measures itself always outranks it
 * (split.h: kpar_history_import).  Automake's .trs and .log files hold no
 * durations (test-driver writes results only): they are recognised and
 * give nothing, rather than a guess.
 *
 * Names are mapped to the test ids of the list, by the first rule that
 * finds anything, in this order:
 *   1. exact: the id is the JUnit case's "classname.name" (the id
 *      `KPAR_RUN_MODE=batch` reads), its name alone (kpar's own report), its
 *      file attribute (pytest), or the .prove entry's name;
 *   2. path: the file attribute or the name without its extension, or the
 *      classname read as a dotted module path ("pkg.test_io.TestRead" ->
 *      "pkg/test_io/TestRead", then "pkg/test_io"), is an id without its
 *      extension ("pkg/test_io.py");
 *   3. basename: the last component of those is the basename of exactly
 *      one id without its extension.
 * A rule that finds several ids skips the name (counted ambiguous) without
 * trying weaker ones.  A test id many names map to (a file's test cases)
 * gets the sum of their durations; a name repeated in one file (a retry)
 * counts once, its last time.
 */
#ifndef KPAR_IMPORT_H
#define KPAR_IMPORT_H

#include <stddef.h>

#include <sqlite3.h>

#include "base/buf.h"

struct kpar_import_stats {
	const char *format;  /* "junit", "prove", "automake" (static) */
	size_t read;         /* durations read (cases or entries with a time) */
	size_t untimed;      /* cases without a time: nothing to import */
	size_t matched;      /* of read, those mapped to a test id */
	size_t unmatched;    /* of read, those no rule mapped */
	size_t ambiguous;    /* of read, those a rule mapped to several ids (skipped) */
	size_t tests;        /* test ids the matched durations are for */
	size_t stored;       /* of tests, those recorded (the rest have measured history) */
};

/* Imports each of paths[0..npaths) into db's duration history, mapping
 * names onto ids (the sorted, canonical test list), in one transaction:
 * any bad file (missing, not JUnit XML nor a prove state, truncated XML,
 * YAML without tests) is an error naming it and leaves the history as it
 * was.  stats (may be NULL) gets one entry per path. */
int kpar_import_files(sqlite3 *db, char *const *paths, size_t npaths, const struct kpar_strv *ids,
		      struct kpar_import_stats *stats);

/* The digest of the imports recorded in db (empty string when none): the
 * plan's key holds it, so the next plan after an import splits again. */
int kpar_import_state(sqlite3 *db, struct kpar_buf *out);

/* Expands KPAR_HISTORY_FROM (whitespace-separated files and glob patterns,
 * relative to root) into sorted, unique paths; a pattern that matches
 * nothing is skipped (a CI without reports yet), a plain name that does not
 * exist is an error naming it. */
int kpar_import_expand(const char *words, const char *root, struct kpar_strv *out);

/* For the plan: when some of ids have no measured history, imports those
 * of paths not imported before, by their digests (digests->v[i] is the
 * digest of paths->v[i], which the plan has anyway).  *imported gets the
 * number of files imported. */
int kpar_import_if_new(sqlite3 *db, const struct kpar_strv *paths, const struct kpar_strv *digests,
		       const struct kpar_strv *ids, size_t *imported);

#endif
