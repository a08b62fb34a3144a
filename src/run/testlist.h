/* testlist.h - the list of test ids: gathered, checked, canonicalised.
 *
 * A test id is any non-empty UTF-8 string without control characters (so
 * it fits on one line of the test list and bucket files and in XML).  The
 * list is sorted bytewise and duplicates dropped, so the same inputs give
 * the same list on every machine whatever the locale or listing order.
 */
#ifndef KPAR_TESTLIST_H
#define KPAR_TESTLIST_H

#include "base/buf.h"

/* Splits a Make-style whitespace-separated list (KPAR_TESTS). */
int kpar_testlist_from_words(const char *words, struct kpar_strv *out);
/* Runs `sh -c cmd` in dir (NULL = cwd) and takes one id per output line;
 * a failing command is an error naming it and carrying its stderr tail. */
int kpar_testlist_from_cmd(const char *cmd, const char *dir, struct kpar_strv *out);
/* Splits text (one id per line, '\r\n' accepted, empty lines skipped),
 * checking each id; origin names the input in errors. */
int kpar_testlist_parse(const char *text, size_t len, const char *origin, struct kpar_strv *out);
/* Checks one id; origin and line locate it in the error. */
int kpar_testlist_check_id(const char *id, size_t len, const char *origin, size_t line);
/* Sorts and removes duplicates. */
void kpar_testlist_canonicalise(struct kpar_strv *list);
/* The file form: ids joined by '\n', with a final newline. */
void kpar_testlist_format(const struct kpar_strv *list, struct kpar_buf *out);
int kpar_testlist_read(const char *path, struct kpar_strv *out);

#endif
