/* history.h - libkpar-internal helpers shared by history.c and estimate.c.
 * The public interface of the durations history is in split.h.
 */
#ifndef KPAR_HISTORY_H
#define KPAR_HISTORY_H

#include <stddef.h>

#include <sqlite3.h>

/* Every test with an estimate, sorted bytewise by id.  Owned; free with
 * kpar_history_known_free. */
struct kpar_history_known {
	char **ids;
	double *seconds;
	size_t n;
};

int kpar_history_load(sqlite3 *db, struct kpar_history_known *out);
void kpar_history_known_free(struct kpar_history_known *k);
/* Median of v[0..n) (0 when n == 0); sorts v in place. */
double kpar_history_median(double *v, size_t n);

#endif
