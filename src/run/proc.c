/* proc.c - child processes for the worker: spawn into a new process group,
 * capture output with bounded memory, enforce timeouts, honour SIGINT and
 * SIGTERM without leaving orphans.
 *
 * Waiting is one loop around ppoll(): the output pipe is the only fd, and
 * SIGCHLD, SIGINT and SIGTERM are blocked except inside ppoll, so each of
 * them interrupts the wait exactly when it matters and none is lost.  The
 * child's exit is detected with waitid(WNOWAIT) before it is reaped: while
 * the zombie exists its pid (= the process group id) cannot be reused, so
 * killing stray group members with killpg() cannot hit an unrelated group.
 */
#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>
#include <poll.h>

#include "base/buf.h"
#include "base/error.h"
#include "run/proc.h"
#include "run/record.h"

extern char **environ;

/* How long to keep reading after the child exited and its group was
 * killed: only a process that left the group (setsid) can still hold the
 * pipe, and it must not hang the worker. */
#define DRAIN_SECONDS 2.0
#define DEFAULT_GRACE 5.0

/* ---- capture ---------------------------------------------------------- */

void kpar_capture_init(struct kpar_capture *c, size_t head_max, size_t tail_max)
{
	memset(c, 0, sizeof *c);
	c->head_max = head_max;
	c->ring_max = tail_max;
	c->head = kpar_xmalloc(head_max + 1);
	c->ring = kpar_xmalloc(tail_max + 1);
}

void kpar_capture_free(struct kpar_capture *c)
{
	free(c->head);
	free(c->ring);
	memset(c, 0, sizeof *c);
}

void kpar_capture_add(struct kpar_capture *c, const char *data, size_t len)
{
	size_t n;

	if (c->tee)
		c->tee(c->tee_arg, data, len);
	c->total += len;
	if (c->head_len < c->head_max) {
		n = c->head_max - c->head_len;
		if (n > len)
			n = len;
		memcpy(c->head + c->head_len, data, n);
		c->head_len += n;
		data += n;
		len -= n;
	}
	if (c->ring_max == 0 || len == 0)
		return;
	/* Only the last ring_max bytes of this chunk can survive. */
	if (len > c->ring_max) {
		data += len - c->ring_max;
		len = c->ring_max;
	}
	while (len > 0) {
		n = c->ring_max - c->ring_pos;
		if (n > len)
			n = len;
		memcpy(c->ring + c->ring_pos, data, n);
		c->ring_pos = (c->ring_pos + n) % c->ring_max;
		c->ring_len = c->ring_len + n > c->ring_max ? c->ring_max : c->ring_len + n;
		data += n;
		len -= n;
	}
}

/* Appends the last k (<= ring_len) bytes of the ring, in order. */
static void ring_last(const struct kpar_capture *c, size_t k, struct kpar_buf *out)
{
	size_t start = (c->ring_pos + c->ring_max - k) % (c->ring_max ? c->ring_max : 1);
	size_t first = c->ring_max - start < k ? c->ring_max - start : k;

	kpar_buf_add(out, c->ring + start, first);
	kpar_buf_add(out, c->ring, k - first);
}

static int continuation(char ch)
{
	return ((unsigned char)ch & 0xc0) == 0x80;
}

void kpar_capture_get(const struct kpar_capture *c, struct kpar_buf *out, size_t max,
		      int head_and_tail)
{
	struct kpar_buf tail = KPAR_BUF_INIT;
	unsigned long long kept = c->head_len + c->ring_len;
	size_t h, t, skip = 0;

	if (c->total == kept) {
		struct kpar_buf all = KPAR_BUF_INIT;

		kpar_buf_add(&all, c->head, c->head_len);
		ring_last(c, c->ring_len, &all);
		kpar_record_trim(out, all.data ? all.data : "", all.len, max, head_and_tail);
		kpar_buf_free(&all);
		return;
	}
	/* Bytes between head and ring were never kept: same format as
	 * kpar_record_trim, counting them as trimmed. */
	h = head_and_tail ? max / 2 : 0;
	if (h > c->head_len)
		h = c->head_len;
	while (h > 0 && h < c->head_len && continuation(c->head[h]))
		h--;
	t = max - (head_and_tail ? max / 2 : 0);
	if (t > c->ring_len)
		t = c->ring_len;
	ring_last(c, t, &tail);
	while (skip < tail.len && skip < 3 && continuation(tail.data[skip]))
		skip++;
	kpar_buf_add(out, c->head, h);
	if (h > 0)
		kpar_buf_putc(out, '\n');
	kpar_buf_printf(out, "[... %llu bytes trimmed ...]",
			c->total - h - (tail.len - skip));
	if (tail.len > skip) {
		kpar_buf_putc(out, '\n');
		kpar_buf_add(out, tail.data + skip, tail.len - skip);
	}
	kpar_buf_free(&tail);
}

/* ---- signals ---------------------------------------------------------- */

static volatile sig_atomic_t caught_signal;
static int scope_open;
static sigset_t wait_mask;

static void on_signal(int sig)
{
	/* SIGCHLD only has to interrupt ppoll. */
	if (sig != SIGCHLD)
		caught_signal = sig;
}

int kpar_proc_signals_begin(struct kpar_proc_signals *s)
{
	struct sigaction sa;
	sigset_t block;

	memset(s, 0, sizeof *s);
	if (scope_open)
		return kpar_error_set(KPAR_EBUSY, "signal scope already open");
	memset(&sa, 0, sizeof sa);
	sa.sa_handler = on_signal;
	sigemptyset(&sa.sa_mask);
	/* No SA_RESTART: the point is to interrupt the wait. */
	sa.sa_flags = SA_NOCLDSTOP;
	sigemptyset(&block);
	sigaddset(&block, SIGINT);
	sigaddset(&block, SIGTERM);
	sigaddset(&block, SIGCHLD);
	if (sigprocmask(SIG_BLOCK, &block, &s->old_mask) < 0)
		return kpar_error_errno(KPAR_EGENERIC, "sigprocmask");
	caught_signal = 0;
	sigaction(SIGINT, &sa, &s->old_int);
	sigaction(SIGTERM, &sa, &s->old_term);
	sigaction(SIGCHLD, &sa, &s->old_chld);
	wait_mask = s->old_mask;
	sigdelset(&wait_mask, SIGINT);
	sigdelset(&wait_mask, SIGTERM);
	sigdelset(&wait_mask, SIGCHLD);
	s->active = 1;
	scope_open = 1;
	return 0;
}

void kpar_proc_signals_end(struct kpar_proc_signals *s)
{
	if (!s->active)
		return;
	sigaction(SIGINT, &s->old_int, NULL);
	sigaction(SIGTERM, &s->old_term, NULL);
	sigaction(SIGCHLD, &s->old_chld, NULL);
	sigprocmask(SIG_SETMASK, &s->old_mask, NULL);
	s->active = 0;
	scope_open = 0;
}

int kpar_proc_interrupted(void)
{
	return (int)caught_signal;
}

/* ---- running ---------------------------------------------------------- */

static double mono_now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static void read_available(int fd, struct kpar_capture *cap, int *eof)
{
	char buf[65536];
	ssize_t n;

	for (;;) {
		n = read(fd, buf, sizeof buf);
		if (n > 0) {
			kpar_capture_add(cap, buf, (size_t)n);
			continue;
		}
		if (n == 0)
			*eof = 1;
		else if (errno == EINTR)
			continue;
		else if (errno != EAGAIN && errno != EWOULDBLOCK)
			*eof = 1;   /* a broken pipe ends the output all the same */
		return;
	}
}

/* Dispositions a test must see as default even if kpar's caller ignored
 * some of them (nohup, a shell ignoring SIGPIPE). */
static const int default_signals[] = {
	SIGINT, SIGTERM, SIGCHLD, SIGPIPE, SIGQUIT, SIGHUP, SIGALRM, SIGUSR1, SIGUSR2,
};

/* The child side of spawn(): only async-signal-safe calls.  Reports why it
 * could not exec on err_fd (close-on-exec: silence means exec happened). */
static void exec_child(const struct kpar_proc *p, int out_fd, int null_fd, int err_fd,
		       pid_t parent)
{
	sigset_t none;
	size_t i;
	int e;

	setpgid(0, 0);
	/* A worker killed with SIGKILL cannot stop its test: the kernel does
	 * it, so a retried bucket never runs beside its own orphan.  The
	 * test's own children are stopped by whoever adopts them (local.c). */
	if (prctl(PR_SET_PDEATHSIG, SIGKILL) < 0 || getppid() != parent)
		_exit(127);
	/* the worker's handlers must not run here: its memory is shared */
	for (i = 0; i < sizeof default_signals / sizeof default_signals[0]; i++)
		signal(default_signals[i], SIG_DFL);
	sigemptyset(&none);
	sigprocmask(SIG_SETMASK, &none, NULL);
	if (dup2(null_fd, 0) < 0 || dup2(out_fd, 1) < 0 || dup2(out_fd, 2) < 0 ||
	    (p->cwd && chdir(p->cwd) < 0))
		goto fail;
	execve(p->path ? p->path : p->argv[0], p->argv, p->envp ? p->envp : environ);
fail:
	e = errno;
	while (write(err_fd, &e, sizeof e) < 0 && errno == EINTR)
		;
	_exit(127);
}

/* Starts the test in its own process group; returns 0 or the errno that
 * kept it from running (exec, chdir), as posix_spawn would.
 *
 * vfork, as posix_spawn does: the child borrows the worker's memory until
 * it execs, so a test's start copies no page tables (fork's copy and its
 * teardown at exec were most of the worker's own CPU on a suite of short
 * tests).  Every signal is blocked across it, so no handler of the worker
 * runs in the child, which resets them before it unblocks; the child
 * writes nothing of the worker's but errno, read only after it is gone. */
static int spawn(const struct kpar_proc *p, int out_fd, int null_fd, pid_t *pid)
{
	int errp[2], err = 0, status;
	pid_t parent = getpid(), child;
	sigset_t all, old;
	ssize_t n;

	if (pipe2(errp, O_CLOEXEC) < 0)
		return errno;
	sigfillset(&all);
	sigprocmask(SIG_SETMASK, &all, &old);
	child = vfork();
	if (child == 0)
		exec_child(p, out_fd, null_fd, errp[1], parent);
	err = errno;
	sigprocmask(SIG_SETMASK, &old, NULL);
	*pid = child;
	if (child < 0) {
		close(errp[0]);
		close(errp[1]);
		return err;
	}
	err = 0;
	close(errp[1]);
	while ((n = read(errp[0], &err, sizeof err)) < 0 && errno == EINTR)
		;
	close(errp[0]);
	if (n == (ssize_t)sizeof err) {
		while (waitpid(*pid, &status, 0) < 0 && errno == EINTR)
			;
		return err ? err : EIO;
	}
	return 0;
}

int kpar_proc_run(const struct kpar_proc *p, struct kpar_capture *cap,
		  struct kpar_proc_status *st)
{
	struct kpar_proc_signals local;
	double t0, now, deadline = 0, kill_at = 0, drain_until = 0;
	double grace = p->kill_grace > 0 ? p->kill_grace : DEFAULT_GRACE;
	int fds[2] = { -1, -1 }, null_fd = -1, eof = 0, exited = 0, status = 0;
	int own_scope = 0, err, rc = 0;
	pid_t pid = -1;

	memset(st, 0, sizeof *st);
	if (!scope_open) {
		if ((rc = kpar_proc_signals_begin(&local)) < 0)
			return rc;
		own_scope = 1;
	}
	if (caught_signal) {
		st->interrupted = 1;
		goto done;
	}
	if (pipe2(fds, O_CLOEXEC) < 0) {
		rc = kpar_error_errno(KPAR_EIO, "cannot create a pipe");
		goto done;
	}
	null_fd = open("/dev/null", O_RDONLY | O_CLOEXEC);
	if (null_fd < 0) {
		rc = kpar_error_errno(KPAR_EIO, "cannot open '/dev/null'");
		goto done;
	}
	fcntl(fds[0], F_SETFL, fcntl(fds[0], F_GETFL) | O_NONBLOCK);
	t0 = mono_now();
	err = spawn(p, fds[1], null_fd, &pid);
	close(fds[1]);
	fds[1] = -1;
	if (err) {
		st->spawn_error = err;
		st->seconds = mono_now() - t0;
		goto done;
	}
	if (p->timeout > 0)
		deadline = t0 + p->timeout;

	for (;;) {
		struct pollfd pfd = { fds[0], POLLIN, 0 };
		struct timespec ts, *tsp = NULL;
		double wait = -1;

		if (!exited) {
			siginfo_t si;

			memset(&si, 0, sizeof si);
			if (waitid(P_PID, (id_t)pid, &si, WEXITED | WNOHANG | WNOWAIT) == 0 &&
			    si.si_pid == pid) {
				exited = 1;
				st->seconds = mono_now() - t0;
				/* Stray members of the group would hold the pipe open and
				 * outlive the test; the zombie still pins the group id. */
				killpg(pid, SIGKILL);
				while (waitpid(pid, &status, 0) < 0 && errno == EINTR)
					;
				drain_until = mono_now() + DRAIN_SECONDS;
			}
		}
		if (exited && eof)
			break;
		now = mono_now();
		if (exited && now >= drain_until)
			break;
		if (!exited) {
			if (caught_signal && !st->interrupted) {
				st->interrupted = 1;
				killpg(pid, SIGTERM);
				kill_at = now + grace;
			}
			if (deadline > 0 && now >= deadline && !st->timed_out && !st->interrupted) {
				st->timed_out = 1;
				killpg(pid, SIGTERM);
				kill_at = now + grace;
			}
			if (kill_at > 0 && now >= kill_at) {
				killpg(pid, SIGKILL);
				kill_at = 0;
			}
			if (deadline > 0 && !st->timed_out && !st->interrupted)
				wait = deadline - now;
			if (kill_at > 0 && (wait < 0 || kill_at - now < wait))
				wait = kill_at - now;
		} else {
			wait = drain_until - now;
		}
		if (wait >= 0) {
			if (wait < 0.001)
				wait = 0.001;
			ts.tv_sec = (time_t)wait;
			ts.tv_nsec = (long)((wait - (double)ts.tv_sec) * 1e9);
			tsp = &ts;
		}
		if (ppoll(&pfd, eof ? 0 : 1, tsp, &wait_mask) > 0 && pfd.revents)
			read_available(fds[0], cap, &eof);
	}
	if (WIFEXITED(status)) {
		st->exited = 1;
		st->exit_code = WEXITSTATUS(status);
	} else if (WIFSIGNALED(status)) {
		st->signo = WTERMSIG(status);
	}
done:
	if (fds[0] >= 0)
		close(fds[0]);
	if (fds[1] >= 0)
		close(fds[1]);
	if (null_fd >= 0)
		close(null_fd);
	if (own_scope)
		kpar_proc_signals_end(&local);
	return rc;
}
