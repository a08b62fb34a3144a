/* local.c - the local backend's scheduler (see local.h).
 *
 * Signals: the scheduler blocks SIGCHLD, SIGINT, SIGTERM and SIGHUP and
 * takes them synchronously with sigtimedwait, which also gives the one-second
 * tick for the progress line; no handler runs asynchronously, so there is
 * no async-signal-safety to get wrong.  Children get the default mask back
 * before exec.  Workers die with the scheduler (PR_SET_PDEATHSIG), so a
 * kill -9 of the scheduler leaves no orphan writing into the state dir.
 * A worker's test dies with the worker (proc.c); the scheduler is a child
 * subreaper, so that test and whatever it started are adopted here rather
 * than by init, and are killed, process group and all, as they arrive:
 * a retried bucket must not run beside the orphans of its last attempt.
 */
#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "base/buf.h"
#include "base/error.h"
#include "base/fs.h"
#include "run/local.h"
#include "run/record.h"

struct slot {
	pid_t pid;        /* 0 = free */
	int bucket;       /* 1-based */
	double started;   /* monotonic */
};

struct sched {
	struct kpar_dispatch *d;
	const struct kpar_conf *c;
	const struct kpar_plan *p;
	struct kpar_progress *prog;
	struct slot *slots;
	long nslots;
	int *queue;       /* pending buckets, front first */
	size_t qhead, qlen, qcap;
	char *self;
	char *rundir_results, *rundir_logs, *rundir_work;
};

/* The worker program: kpar-worker beside this executable when it is there
 * (it links only what a worker needs and starts about 4x faster than the
 * full tool, which counts once per bucket), else this executable itself. */
static char *worker_exe(void)
{
	char buf[4096], *slash, *w;
	ssize_t n = readlink("/proc/self/exe", buf, sizeof buf - 1);

	if (n <= 0)
		return NULL;
	buf[n] = '\0';
	slash = strrchr(buf, '/');
	if (slash) {
		w = kpar_xasprintf("%.*s/kpar-worker", (int)(slash - buf), buf);
		if (access(w, X_OK) == 0)
			return w;
		free(w);
	}
	return kpar_xstrdup(buf);
}

static void queue_push_front(struct sched *s, int bucket)
{
	if (s->qhead > 0) {
		s->queue[--s->qhead] = bucket;
		s->qlen++;
		return;
	}
	memmove(s->queue + 1, s->queue, s->qlen * sizeof *s->queue);
	s->queue[0] = bucket;
	s->qlen++;
}

static char *bucket_path(const char *dir, int bucket, const char *suffix)
{
	return kpar_xasprintf("%s/test-group-%d%s", dir, bucket, suffix);
}

static int spawn(struct sched *s, struct slot *sl, long slot_no, int bucket)
{
	char *bucket_file = NULL, *out = NULL, *log = NULL, *work = NULL, *name = NULL;
	char *buckets_dir = kpar_conf_path(s->c, "buckets");
	char num[32], att[32];
	pid_t pid;
	int rc = 0;

	bucket_file = bucket_path(buckets_dir, bucket, "");
	out = bucket_path(s->rundir_results, bucket, ".rec");
	log = bucket_path(s->rundir_logs, bucket, ".log");
	work = kpar_xasprintf("%s/w%ld", s->rundir_work, slot_no + 1);
	name = kpar_xasprintf("local-w%ld", slot_no + 1);
	snprintf(num, sizeof num, "%d", bucket);
	snprintf(att, sizeof att, "%d", s->d->attempts[bucket]);
	/* A record left by an earlier attempt must not pass for this one's. */
	unlink(out);

	pid = fork();
	if (pid < 0) {
		rc = kpar_error_errno(KPAR_EIO, "cannot start a worker for bucket %d", bucket);
		goto done;
	}
	if (pid == 0) {
		sigset_t none;
		int fd;
		char *argv[] = { "kpar", "worker", "--bucket-file", bucket_file, "--bucket", num,
				 "--attempt", att, "--plan", s->p->digest, "--root", s->c->root,
				 "--workdir", work, "--output", out, "--name", name, NULL };

		prctl(PR_SET_PDEATHSIG, SIGTERM);
		if (getppid() == 1)
			_exit(125);
		sigemptyset(&none);
		sigprocmask(SIG_SETMASK, &none, NULL);
		/* Own process group: a terminal's Ctrl-C reaches the scheduler,
		 * which then stops each worker in order and records the run as
		 * resumable, instead of everything dying at once. */
		setpgid(0, 0);
		fd = open("/dev/null", O_RDONLY);
		if (fd >= 0)
			dup2(fd, 0);
		fd = open(log, O_WRONLY | O_CREAT | O_TRUNC | O_APPEND, 0644);
		if (fd >= 0) {
			dup2(fd, 1);
			dup2(fd, 2);
		}
		execv(s->self, argv);
		fprintf(stderr, "kpar: cannot execute '%s': %s\n", s->self, strerror(errno));
		_exit(127);
	}
	sl->pid = pid;
	sl->bucket = bucket;
	sl->started = kpar_progress_now();
	kpar_state_bucket_mark(s->d->st, s->d->run, bucket, "running", name, s->d->attempts[bucket]);
	s->prog->running++;
done:
	free(bucket_file);
	free(out);
	free(log);
	free(work);
	free(name);
	free(buckets_dir);
	return rc;
}

/* Hands a finished worker's record (or why there is none) to the shared
 * collect step; a bucket to retry goes to the front of the queue, so a
 * long bucket is not left for the end. */
static int collect(struct sched *s, struct slot *sl, int status)
{
	int bucket = sl->bucket, rc;
	char *rec = bucket_path(s->rundir_results, bucket, ".rec");
	char *log = bucket_path(s->rundir_logs, bucket, ".log");
	char *text = NULL, failure[160] = "", where[32];
	size_t len = 0;
	double took = kpar_progress_now() - sl->started;

	s->prog->running--;
	snprintf(where, sizeof where, "local-w%ld", (long)(sl - s->slots) + 1);
	sl->pid = 0;
	if (WIFEXITED(status) && WEXITSTATUS(status) == 0) {
		if (kpar_fs_read_all(rec, &text, &len) < 0)
			kpar_error_clear();
	} else {
		if (WIFEXITED(status))
			snprintf(failure, sizeof failure, "worker exited with status %d", WEXITSTATUS(status));
		else
			snprintf(failure, sizeof failure, "worker killed by signal %d", WTERMSIG(status));
		/* the worker's log, for the error a lost bucket reports */
		if (kpar_fs_read_all(log, &text, &len) < 0)
			kpar_error_clear();
	}
	rc = kpar_dispatch_record(s->d, bucket, text, len, *failure ? failure : NULL, where, took);
	if (rc == KPAR_BUCKET_RETRY)
		queue_push_front(s, bucket);
	free(text);
	free(rec);
	free(log);
	return rc < 0 ? rc : 0;
}

static struct slot *find_slot(struct sched *s, pid_t pid)
{
	long i;

	for (i = 0; i < s->nslots; i++)
		if (s->slots[i].pid == pid)
			return &s->slots[i];
	return NULL;
}

static long running(const struct sched *s)
{
	long i, n = 0;

	for (i = 0; i < s->nslots; i++)
		n += s->slots[i].pid != 0;
	return n;
}

/* A process this scheduler did not start reached it as an orphan of a
 * worker that died.  Until it is reaped its pid pins its process group id,
 * so killpg() cannot reach an unrelated group; a test leader's group holds
 * the test's other processes. */
static void kill_adopted(pid_t pid)
{
	killpg(pid, SIGKILL);
	kill(pid, SIGKILL);
}

/* Orphans still alive when every worker is done (a test's daemon in a
 * group of its own that outlived its dead worker): /proc lists this
 * process's children.  Killing one can orphan its own children to us in
 * turn, hence the rounds; bounded, as the run's end must not hang. */
static void kill_all_adopted(void)
{
	char path[64];
	int round, status;

	snprintf(path, sizeof path, "/proc/self/task/%ld/children", (long)getpid());
	for (round = 0; round < 200; round++) {
		char *text = NULL, *p, *end;
		int any = 0;

		if (kpar_fs_read_all(path, &text, NULL) < 0) {
			kpar_error_clear();
			return;
		}
		for (p = text; *p; p = end) {
			long pid = strtol(p, &end, 10);
			if (end == p)
				break;
			if (pid > 0) {
				kill_adopted((pid_t)pid);
				any = 1;
			}
		}
		free(text);
		if (!any)
			return;
		/* reaped only after the kill: a zombie pins its group id */
		while (waitpid(-1, &status, WNOHANG) > 0)
			;
		usleep(10000);
	}
}

static void stop_all(struct sched *s, int sig)
{
	long i;

	for (i = 0; i < s->nslots; i++)
		if (s->slots[i].pid > 0)
			kill(-s->slots[i].pid, sig);
}

static int local_run(struct kpar_dispatch *d)
{
	const struct kpar_conf *c = d->c;
	const struct kpar_plan *p = d->p;
	struct kpar_progress *prog = d->prog;
	struct sched s;
	sigset_t mask, old;
	int rc = 0, interrupted = 0;
	double stop_deadline = 0;
	size_t i;

	memset(&s, 0, sizeof s);
	s.d = d;
	s.c = c;
	s.p = p;
	s.prog = prog;
	s.self = worker_exe();
	if (!s.self)
		return kpar_error_errno(KPAR_EIO, "cannot find the kpar executable (/proc/self/exe)");
	s.rundir_results = kpar_conf_path(c, "results");
	s.rundir_logs = kpar_conf_path(c, "logs");
	s.rundir_work = kpar_conf_path(c, "work");
	if ((rc = kpar_fs_mkdir_p(s.rundir_results, 0755)) < 0 ||
	    (rc = kpar_fs_mkdir_p(s.rundir_logs, 0755)) < 0 ||
	    (rc = kpar_fs_mkdir_p(s.rundir_work, 0755)) < 0)
		goto out;
	s.nslots = c->workers;
	s.slots = kpar_xcalloc((size_t)s.nslots, sizeof *s.slots);
	s.qcap = p->nbuckets + 1;
	s.queue = kpar_xcalloc(s.qcap, sizeof *s.queue);
	for (i = 1; i <= p->nbuckets; i++)
		if (!d->done[i])
			s.queue[s.qlen++] = (int)i;

	sigemptyset(&mask);
	sigaddset(&mask, SIGCHLD);
	sigaddset(&mask, SIGINT);
	sigaddset(&mask, SIGTERM);
	sigaddset(&mask, SIGHUP);
	sigprocmask(SIG_BLOCK, &mask, &old);
	prctl(PR_SET_CHILD_SUBREAPER, 1);

	for (;;) {
		struct timespec tick = { 1, 0 };
		siginfo_t info;
		int sig;
		long free_slot;

		while (!interrupted && rc == 0 && s.qlen > 0 && running(&s) < s.nslots) {
			for (free_slot = 0; s.slots[free_slot].pid; free_slot++)
				;
			rc = spawn(&s, &s.slots[free_slot], free_slot, s.queue[s.qhead]);
			s.qhead++;
			s.qlen--;
		}
		if (running(&s) == 0)
			break;
		kpar_progress_tick(prog);
		sig = sigtimedwait(&mask, &info, &tick);
		if (sig == SIGINT || sig == SIGTERM || sig == SIGHUP) {
			if (!interrupted)
				kpar_progress_line(prog, "kpar: interrupted; stopping %ld workers (run stays resumable)",
						   running(&s));
			interrupted = 1;
			stop_all(&s, SIGTERM);
			stop_deadline = kpar_progress_now() + 10;
		}
		if (interrupted && stop_deadline && kpar_progress_now() > stop_deadline) {
			stop_all(&s, SIGKILL);
			stop_deadline = 0;
		}
		for (;;) {
			int status;
			siginfo_t si;
			pid_t pid;
			struct slot *sl;

			/* Look before reaping: an adopted orphan's group is killed
			 * while its zombie still pins the group id. */
			memset(&si, 0, sizeof si);
			if (waitid(P_ALL, 0, &si, WEXITED | WNOHANG | WNOWAIT) < 0 || si.si_pid == 0)
				break;
			sl = find_slot(&s, si.si_pid);
			if (!sl)
				kill_adopted(si.si_pid);
			pid = waitpid(si.si_pid, &status, 0);
			if (pid <= 0 || !sl)
				continue;
			if (interrupted) {
				/* A worker that finished its bucket before the
				 * interrupt landed still counts. */
				if (WIFEXITED(status) && WEXITSTATUS(status) == 0) {
					collect(&s, sl, status);
				} else {
					sl->pid = 0;
					prog->running--;
					kpar_state_bucket_mark(d->st, d->run, sl->bucket, "pending", NULL,
							       d->attempts[sl->bucket]);
				}
				continue;
			}
			{
				int crc = collect(&s, sl, status);
				if (crc < 0 && rc == 0)
					rc = crc;
			}
		}
		if (rc < 0 && !interrupted) {
			/* The database refused a collect: stop cleanly rather than
			 * run buckets whose results could not be kept. */
			interrupted = 1;
			stop_all(&s, SIGTERM);
			stop_deadline = kpar_progress_now() + 10;
		}
	}
	kill_all_adopted();
	prctl(PR_SET_CHILD_SUBREAPER, 0);
	sigprocmask(SIG_SETMASK, &old, NULL);
	if (interrupted && rc == 0)
		rc = kpar_error_set(KPAR_EINTR, "interrupted: %zu of %zu buckets collected; "
				    "`make k8s-test RESUME=1` continues the run", prog->done, prog->total);
out:
	free(s.self);
	free(s.slots);
	free(s.queue);
	free(s.rundir_results);
	free(s.rundir_logs);
	free(s.rundir_work);
	return rc;
}

const struct kpar_backend kpar_local_backend = { "local", local_run, NULL, NULL };
