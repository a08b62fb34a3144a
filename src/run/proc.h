/* proc.h - running one child process the way a test harness must: in its
 * own process group, output captured with bounded memory, a timeout that
 * stops the whole group, and SIGINT/SIGTERM to kpar turned into "stop the
 * child, then tell the caller" rather than leaving orphans behind.
 *
 * Signals: while a kpar_proc_signals scope is open, SIGINT and SIGTERM to
 * this process only set a flag (kpar_proc_interrupted) and are delivered
 * only while kpar_proc_run waits (ppoll with an atomic mask), so no signal
 * is lost between checking the flag and sleeping.  The handlers are
 * process-wide: use one scope at a time, from one thread.
 */
#ifndef KPAR_PROC_H
#define KPAR_PROC_H

#include <signal.h>
#include <stddef.h>

#include "base/buf.h"

/* Keeps the first head_max and the last tail_max bytes of a stream and
 * counts the rest, so a test printing gigabytes costs bounded memory. */
struct kpar_capture {
	char *head;
	size_t head_max, head_len;
	char *ring;               /* circular: the last ring_len bytes end at ring_pos */
	size_t ring_max, ring_len, ring_pos;
	unsigned long long total; /* bytes seen */
	/* Sees every byte as it comes, before any is dropped (a protocol
	 * parser reading the whole output); NULL = none.  Set after init. */
	void (*tee)(void *arg, const char *data, size_t len);
	void *tee_arg;
};

void kpar_capture_init(struct kpar_capture *c, size_t head_max, size_t tail_max);
void kpar_capture_add(struct kpar_capture *c, const char *data, size_t len);
/* Appends the captured output cut to max bytes (kpar_record_trim's format
 * and rules: head_and_tail keeps both ends, else the tail), counting bytes
 * that were never kept as trimmed too. */
void kpar_capture_get(const struct kpar_capture *c, struct kpar_buf *out, size_t max,
		      int head_and_tail);
void kpar_capture_free(struct kpar_capture *c);

struct kpar_proc_signals {
	struct sigaction old_int, old_term, old_chld;
	sigset_t old_mask;
	int active;
};

/* Opens the scope (see above); returns 0 or a negative kpar_error. */
int kpar_proc_signals_begin(struct kpar_proc_signals *s);
/* Restores the previous handlers and mask.  A SIGINT/SIGTERM caught in the
 * scope is not re-raised: the caller reports it (KPAR_EINTR, exit 130). */
void kpar_proc_signals_end(struct kpar_proc_signals *s);
/* The signal number caught in the current scope, or 0. */
int kpar_proc_interrupted(void);

struct kpar_proc {
	const char *path;     /* executable to run; argv[0] if NULL */
	char *const *argv;    /* borrowed, NULL-terminated */
	char *const *envp;    /* borrowed; NULL = inherit environ */
	const char *cwd;      /* directory to start in; NULL = ours */
	double timeout;       /* seconds; 0 = none */
	double kill_grace;    /* seconds from SIGTERM to SIGKILL; <= 0 means 5 */
};

struct kpar_proc_status {
	int spawn_error;      /* errno when the child could not be started, else 0 */
	int exited;           /* 1: exit_code is valid */
	int exit_code;
	int signo;            /* signal that killed it, or 0 */
	int timed_out;        /* the timeout expired and the group was stopped */
	int interrupted;      /* a SIGINT/SIGTERM to us stopped it */
	double seconds;       /* wall time from start to exit (CLOCK_MONOTONIC) */
};

/* Runs p to completion: stdin from /dev/null, stdout and stderr into cap
 * (one pipe, so their interleaving is kept), in a new process group whose
 * stray members are killed once the child exits.  On timeout or interrupt
 * the group gets SIGTERM, then SIGKILL after kill_grace.  Returns 0 when
 * the child ran (whatever its status) or could not be started (st says
 * which); negative only when the machinery failed (pipe, fork). */
int kpar_proc_run(const struct kpar_proc *p, struct kpar_capture *cap,
		  struct kpar_proc_status *st);

#endif
