/* progress.h - what a running suite shows: a live line on a terminal,
 * plain lines (one per finished bucket, and a status line at least every
 * 30 seconds, so a CI log never looks hung) when
 * output goes to a file or CI. */
#ifndef KPAR_PROGRESS_H
#define KPAR_PROGRESS_H

#include <stdio.h>

struct kpar_progress {
	FILE *out;
	int live;             /* rewrite one line in place */
	double started;       /* monotonic seconds */
	size_t total, done, running, tests_done;
	size_t failed_tests, error_tests;  /* as the summary counts them: an error is not a failure */
	double est_remaining; /* seconds of estimated work not yet finished */
	double scale;         /* observed / estimated time of finished buckets */
	long workers;
	int shown;
	int color;            /* ANSI colours: out is a terminal and NO_COLOR is unset or empty */
	double last_line;     /* monotonic time of the last line printed */
	double heartbeat;     /* plain mode: seconds of silence before a status line (30) */
};

/* mode: "auto" (live if out is a terminal), "always", "never". */
void kpar_progress_init(struct kpar_progress *p, FILE *out, const char *mode, size_t total, long workers);
/* Redraws the live line; in plain mode prints the status as a line when
 * nothing was printed for p->heartbeat seconds. */
void kpar_progress_tick(struct kpar_progress *p);
/* Prints a plain line about an event, keeping the live line below it. */
void kpar_progress_line(struct kpar_progress *p, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));
void kpar_progress_end(struct kpar_progress *p);
double kpar_progress_now(void);

#endif
