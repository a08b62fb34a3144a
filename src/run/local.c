/* local.c - the local backend's scheduler (see local.h).
 *
 * Workers are long-lived `kpar worker --serve` processes, one per slot,
 * each fed a bucket at a time over a pipe ("BUCKET ATTEMPT" in, "BUCKET"
 * back once its record is written), so a bucket costs a pipe round trip
 * rather than a process start, and the plan can make every test its own
 * bucket (plan.c): whichever worker frees up takes the next, longest
 * first.  A worker that dies holding a bucket is replaced, and the bucket
 * retried, as before.
 *
 * Signals: the scheduler blocks SIGCHLD, SIGINT, SIGTERM and SIGHUP and
 * reads them from a signalfd polled with the workers' replies, with a
 * one-second timeout for the progress line; no handler runs
 * asynchronously, so there is no async-signal-safety to get wrong.  Children get the default mask back
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
#include <poll.h>
#include <sys/prctl.h>
#include <sys/signalfd.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "base/buf.h"
#include "base/error.h"
#include "base/fs.h"
#include "run/local.h"
#include "run/record.h"

struct slot {
	pid_t pid;        /* the worker process; 0 = none */
	int bucket;       /* 1-based bucket it runs; 0 = idle */
	double started;   /* monotonic, of the bucket */
	int to_fd;        /* the worker's stdin: requests */
	int from_fd;      /* the worker's stdout: replies; -1 once at EOF */
	struct kpar_buf in;  /* replies read in part */
	off_t log_off;    /* the worker's log size when the bucket was sent */
	char *log;
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
	char *rundir_output;   /* each test's whole output (worker --logs) */
};

/* The worker program: kpar-worker beside this executable when it is there
 * (it links only what a worker needs and starts about 4x faster than the
 * full tool), else this executable itself. */
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


static void close_fd(int *fd)
{
	if (*fd >= 0)
		close(*fd);
	*fd = -1;
}

/* Starts slot slot_no's worker: a `kpar worker --serve` that takes buckets
 * from its stdin until it closes, so a bucket costs a line on a pipe, not
 * a process start. */
static int spawn(struct sched *s, struct slot *sl, long slot_no)
{
	char *work = kpar_xasprintf("%s/w%ld", s->rundir_work, slot_no + 1);
	char *name = kpar_xasprintf("local-w%ld", slot_no + 1);
	int req[2] = { -1, -1 }, rep[2] = { -1, -1 }, rc = 0, fresh = !sl->log;
	pid_t pid;

	free(sl->log);
	sl->log = kpar_xasprintf("%s/local-w%ld.log", s->rundir_logs, slot_no + 1);
	if (pipe2(req, O_CLOEXEC) < 0 || pipe2(rep, O_CLOEXEC) < 0) {
		rc = kpar_error_errno(KPAR_EIO, "cannot create a pipe for worker %ld", slot_no + 1);
		goto fail;
	}
	pid = fork();
	if (pid < 0) {
		rc = kpar_error_errno(KPAR_EIO, "cannot start worker %ld", slot_no + 1);
		goto fail;
	}
	if (pid == 0) {
		sigset_t none;
		int fd;
		char *argv[] = { "kpar", "worker", "--serve", "--plan", s->p->digest,
				 "--root", s->c->root, "--workdir", work, "--name", name,
				 "--logs", s->rundir_output, NULL };

		prctl(PR_SET_PDEATHSIG, SIGTERM);
		if (getppid() == 1)
			_exit(125);
		signal(SIGPIPE, SIG_DFL);
		sigemptyset(&none);
		sigprocmask(SIG_SETMASK, &none, NULL);
		/* Own process group: a terminal's Ctrl-C reaches the scheduler,
		 * which then stops each worker in order and records the run as
		 * resumable, instead of everything dying at once. */
		setpgid(0, 0);
		dup2(req[0], 0);
		dup2(rep[1], 1);
		/* one log per slot and run; a replacement worker appends */
		fd = open(sl->log, O_WRONLY | O_CREAT | O_APPEND | (fresh ? O_TRUNC : 0), 0644);
		if (fd >= 0)
			dup2(fd, 2);
		execv(s->self, argv);
		fprintf(stderr, "kpar: cannot execute '%s': %s\n", s->self, strerror(errno));
		_exit(127);
	}
	close(req[0]);
	close(rep[1]);
	/* replies are read as they come: one worker must not hold the loop */
	fcntl(rep[0], F_SETFL, fcntl(rep[0], F_GETFL) | O_NONBLOCK);
	sl->pid = pid;
	sl->bucket = 0;
	sl->to_fd = req[1];
	sl->from_fd = rep[0];
	kpar_buf_clear(&sl->in);
	goto done;
fail:
	close_fd(&req[0]);
	close_fd(&req[1]);
	close_fd(&rep[0]);
	close_fd(&rep[1]);
done:
	free(work);
	free(name);
	return rc;
}

/* Hands bucket to slot sl's (running, idle) worker.  Returns 0, or -1 when
 * the worker is gone (its death is handled when it is reaped). */
static int send_bucket(struct sched *s, struct slot *sl, int bucket)
{
	const struct kpar_strv *tests = &s->p->buckets[bucket - 1].tests;
	struct kpar_buf req = KPAR_BUF_INIT;
	struct stat sb;
	char name[32];
	size_t i;
	int rc;

	kpar_buf_printf(&req, "%d %d %zu\n", bucket, s->d->attempts[bucket], tests->n);
	for (i = 0; i < tests->n; i++)
		kpar_buf_printf(&req, "%s\n", tests->v[i]);
	sl->log_off = stat(sl->log, &sb) == 0 ? sb.st_size : 0;
	rc = kpar_fs_write_fully(sl->to_fd, req.data, req.len);
	kpar_buf_free(&req);
	if (rc < 0)
		return -1;
	sl->bucket = bucket;
	sl->started = kpar_progress_now();
	snprintf(name, sizeof name, "local-w%ld", (long)(sl - s->slots) + 1);
	kpar_state_bucket_mark(s->d->st, s->d->run, bucket, "running", name, s->d->attempts[bucket]);
	s->prog->running++;
	return 0;
}

/* Hands a finished bucket's record (or why there is none) to the shared
 * collect step; a bucket to retry goes to the front of the queue, so a
 * long bucket is not left for the end.  failure NULL: the worker sent
 * rec[0..len) as the bucket's record. */
static int collect(struct sched *s, struct slot *sl, int bucket, double started,
		   const char *rec, size_t len, const char *failure)
{
	char *text = NULL, where[32];
	double took = kpar_progress_now() - started;
	int rc;

	snprintf(where, sizeof where, "local-w%ld", (long)(sl - s->slots) + 1);
	if (failure) {
		if (kpar_fs_read_all(sl->log, &text, &len) < 0) {
			kpar_error_clear();
			len = 0;
		} else if ((size_t)sl->log_off <= len) {
			/* what the worker wrote during this bucket, for the error
			 * a lost bucket reports */
			len -= (size_t)sl->log_off;
			memmove(text, text + sl->log_off, len + 1);
		}
		rec = text;
	}
	rc = kpar_dispatch_record(s->d, bucket, rec, len, failure, where, took);
	if (rc == KPAR_BUCKET_RETRY)
		queue_push_front(s, bucket);
	free(text);
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

static long busy(const struct sched *s)
{
	long i, n = 0;

	for (i = 0; i < s->nslots; i++)
		n += s->slots[i].bucket != 0;
	return n;
}

static long alive(const struct sched *s)
{
	long i, n = 0;

	for (i = 0; i < s->nslots; i++)
		n += s->slots[i].pid != 0;
	return n;
}

/* Reads what a worker replied: per finished bucket a "BUCKET LENGTH" line
 * and the record.  The next bucket goes out before this one is collected,
 * so the worker does not wait on the database.  Returns a negative error
 * when a collect failed. */
static int read_replies(struct sched *s, struct slot *sl, int dispatch)
{
	int rc = 0;

	while (sl->from_fd >= 0) {
		size_t off = 0;
		ssize_t n;
		char *nl;

		kpar_buf_grow(&sl->in, 65536);
		n = read(sl->from_fd, sl->in.data + sl->in.len, sl->in.cap - sl->in.len - 1);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0) {
			if (n == 0 || errno != EAGAIN)
				close_fd(&sl->from_fd);
			break;
		}
		sl->in.len += (size_t)n;
		sl->in.data[sl->in.len] = '\0';
		while ((nl = memchr(sl->in.data + off, '\n', sl->in.len - off))) {
			char *end;
			long bucket = strtol(sl->in.data + off, &end, 10);
			unsigned long long len = strtoull(end, &end, 10);
			double started = sl->started;
			size_t head = (size_t)(nl + 1 - (sl->in.data + off));

			if (end != nl || bucket != sl->bucket || len > (1ull << 40)) {
				/* not a reply of ours: the worker's end says the rest */
				close_fd(&sl->from_fd);
				break;
			}
			if (sl->in.len - off - head < len)
				break;  /* the record is still coming */
			sl->bucket = 0;
			s->prog->running--;
			if (dispatch && s->qlen > 0 && send_bucket(s, sl, s->queue[s->qhead]) == 0) {
				s->qhead++;
				s->qlen--;
			}
			{
				int crc = collect(s, sl, (int)bucket, started, nl + 1, (size_t)len, NULL);
				if (crc < 0 && rc == 0)
					rc = crc;
			}
			off += head + (size_t)len;
		}
		if (off > 0) {
			memmove(sl->in.data, sl->in.data + off, sl->in.len - off);
			sl->in.len -= off;
		}
	}
	return rc;
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

/* A reaped worker: replies it sent before dying count; a bucket it held
 * is retried (or, interrupted, left pending for a resume). */
static int worker_ended(struct sched *s, struct slot *sl, int status, int interrupted)
{
	char failure[160];
	int bucket, rc;

	rc = read_replies(s, sl, 0);
	close_fd(&sl->from_fd);
	close_fd(&sl->to_fd);
	sl->pid = 0;
	bucket = sl->bucket;
	if (!bucket)
		return rc;
	sl->bucket = 0;
	s->prog->running--;
	if (interrupted) {
		kpar_state_bucket_mark(s->d->st, s->d->run, bucket, "pending", NULL,
				       s->d->attempts[bucket]);
		return rc;
	}
	if (WIFEXITED(status))
		snprintf(failure, sizeof failure, "worker exited with status %d", WEXITSTATUS(status));
	else
		snprintf(failure, sizeof failure, "worker killed by signal %d", WTERMSIG(status));
	{
		int crc = collect(s, sl, bucket, sl->started, NULL, 0, failure);
		return rc < 0 ? rc : crc;
	}
}

static int local_run(struct kpar_dispatch *d)
{
	const struct kpar_conf *c = d->c;
	const struct kpar_plan *p = d->p;
	struct kpar_progress *prog = d->prog;
	struct sched s;
	struct pollfd *pfds = NULL;
	struct sigaction ign, old_pipe;
	sigset_t mask, old;
	int rc = 0, interrupted = 0, sfd = -1;
	double stop_deadline = 0;
	size_t i;
	long k;

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
	s.rundir_output = kpar_conf_path(c, "output");
	s.nslots = c->workers;
	s.slots = kpar_xcalloc((size_t)s.nslots, sizeof *s.slots);
	for (k = 0; k < s.nslots; k++)
		s.slots[k].to_fd = s.slots[k].from_fd = -1;
	if ((rc = kpar_fs_mkdir_p(s.rundir_results, 0755)) < 0 ||
	    (rc = kpar_fs_mkdir_p(s.rundir_logs, 0755)) < 0 ||
	    (rc = kpar_fs_mkdir_p(s.rundir_work, 0755)) < 0)
		goto out;
	pfds = kpar_xcalloc((size_t)s.nslots + 1, sizeof *pfds);
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
	sfd = signalfd(-1, &mask, SFD_CLOEXEC | SFD_NONBLOCK);
	if (sfd < 0) {
		rc = kpar_error_errno(KPAR_EIO, "cannot create a signalfd");
		sigprocmask(SIG_SETMASK, &old, NULL);
		goto out;
	}
	/* A worker that died leaves a pipe that answers EPIPE, not a
	 * SIGPIPE that would end the scheduler (workers get it back). */
	memset(&ign, 0, sizeof ign);
	ign.sa_handler = SIG_IGN;
	sigaction(SIGPIPE, &ign, &old_pipe);
	prctl(PR_SET_CHILD_SUBREAPER, 1);

	for (;;) {
		struct signalfd_siginfo fsi;
		int npfd = 0, got_sig = 0;

		/* Feed idle workers, starting one per slot the queue still needs. */
		for (k = 0; !interrupted && rc == 0 && k < s.nslots && s.qlen > 0; k++) {
			struct slot *sl = &s.slots[k];

			/* a worker told to end, or ending, is replaced once reaped */
			if (sl->bucket || (sl->pid && (sl->from_fd < 0 || sl->to_fd < 0)))
				continue;
			if (!sl->pid && (rc = spawn(&s, sl, k)) < 0)
				break;
			if (send_bucket(&s, sl, s.queue[s.qhead]) == 0) {
				s.qhead++;
				s.qlen--;
			}
		}
		/* Nothing left to hand out: idle workers are told to end. */
		if (s.qlen == 0 || interrupted || rc < 0)
			for (k = 0; k < s.nslots; k++)
				if (!s.slots[k].bucket)
					close_fd(&s.slots[k].to_fd);
		{
			int brc = kpar_state_batch_end(d->st);
			if (brc < 0 && rc == 0)
				rc = brc;
		}
		if (alive(&s) == 0 && (s.qlen == 0 || interrupted || rc < 0))
			break;
		kpar_progress_tick(prog);
		pfds[npfd].fd = sfd;
		pfds[npfd++].events = POLLIN;
		for (k = 0; k < s.nslots; k++) {
			pfds[npfd].fd = s.slots[k].from_fd;  /* -1: ignored */
			pfds[npfd++].events = POLLIN;
		}
		if (poll(pfds, (nfds_t)npfd, 1000) < 0 && errno != EINTR) {
			rc = kpar_error_errno(KPAR_EIO, "poll");
			break;
		}
		/* What this wake-up collects and hands out is one commit. */
		if (rc == 0)
			rc = kpar_state_batch_begin(d->st);
		for (k = 0; k < s.nslots; k++)
			if (pfds[k + 1].fd >= 0 && pfds[k + 1].revents) {
				int crc = read_replies(&s, &s.slots[k], !interrupted && rc == 0);
				if (crc < 0 && rc == 0)
					rc = crc;
			}
		while (read(sfd, &fsi, sizeof fsi) == (ssize_t)sizeof fsi) {
			int sig = (int)fsi.ssi_signo;

			got_sig = 1;
			if (sig == SIGINT || sig == SIGTERM || sig == SIGHUP) {
				if (!interrupted)
					kpar_progress_line(prog, "kpar: interrupted; stopping %ld workers "
							   "(run stays resumable)", busy(&s));
				interrupted = 1;
				stop_all(&s, SIGTERM);
				stop_deadline = kpar_progress_now() + 10;
			}
		}
		(void)got_sig;
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
			{
				int crc = worker_ended(&s, sl, status, interrupted);
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
	{
		int brc = kpar_state_batch_end(d->st);
		if (brc < 0 && rc == 0)
			rc = brc;
	}
	kill_all_adopted();
	prctl(PR_SET_CHILD_SUBREAPER, 0);
	close(sfd);
	sigaction(SIGPIPE, &old_pipe, NULL);
	sigprocmask(SIG_SETMASK, &old, NULL);
	if (interrupted && rc == 0)
		rc = kpar_error_set(KPAR_EINTR, "interrupted: %zu of %zu buckets collected; "
				    "`make k8s-test RESUME=1` continues the run", prog->done, prog->total);
out:
	for (k = 0; k < s.nslots; k++) {
		close_fd(&s.slots[k].to_fd);
		close_fd(&s.slots[k].from_fd);
		kpar_buf_free(&s.slots[k].in);
		free(s.slots[k].log);
	}
	free(pfds);
	free(s.self);
	free(s.slots);
	free(s.queue);
	free(s.rundir_results);
	free(s.rundir_logs);
	free(s.rundir_work);
	free(s.rundir_output);
	return rc;
}

const struct kpar_backend kpar_local_backend = { "local", local_run, NULL, NULL };
