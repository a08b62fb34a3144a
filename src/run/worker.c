/* worker.c - run one bucket of tests and fill its result (see worker.h).
 *
 * Each test runs through kpar_proc_run (proc.c): its own process group,
 * output captured with bounded memory (the head and tail a failure keeps),
 * timeout and interrupt handling.  This file decides what to run, with
 * which environment, and turns exit statuses, retries and JUnit files into
 * kpar_test_results.
 */
#include "config.h"

#include <errno.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <fcntl.h>

#include "base/buf.h"
#include "base/digest.h"
#include "base/error.h"
#include "base/fs.h"
#include "run/junit.h"
#include "run/proc.h"
#include "run/record.h"
#include "run/tap.h"
#include "run/testlog.h"
#include "run/trs.h"
#include "run/worker.h"

extern char **environ;

/* Variables the worker sets for every test; inherited values are dropped. */
static const char *const own_vars[] = {
	"TMPDIR", "KPAR_WORKDIR", "KPAR_TEST_ID", "KPAR_TEST_ATTEMPT", "KPAR_BUCKET",
	"KPAR_JUNIT", "KPAR_TRS",
	/* a TAP harness's; set only under the tap protocol (an outer prove's
	 * would tell a test its output is read as TAP when it is not) */
	"HARNESS_ACTIVE", "HARNESS_VERSION",
};

/* What prove 3.44 sets, whose TAP::Parser rules tap.c follows. */
#define HARNESS_VERSION "3.44"

int kpar_protocol_parse(const char *name)
{
	if (strcmp(name, "exit") == 0)
		return KPAR_PROTO_EXIT;
	if (strcmp(name, "tap") == 0)
		return KPAR_PROTO_TAP;
	if (strcmp(name, "junit") == 0)
		return KPAR_PROTO_JUNIT;
	if (strcmp(name, "automake") == 0)
		return KPAR_PROTO_AUTOMAKE;
	return -1;
}

void kpar_worker_opts_init(struct kpar_worker_opts *o)
{
	memset(o, 0, sizeof *o);
	o->mode = KPAR_MODE_EACH;
	o->pass_output_max = 4u << 10;
	o->fail_output_max = 256u << 10;
	o->kill_grace = 5;
	o->bucket = 1;
	o->attempt = 1;
	o->hard_errors = 1;
}

struct ctx {
	const struct kpar_worker_opts *o;
	const char *root;
	char *workdir;      /* absolute */
	char *tmpdir;       /* absolute, workdir/tmp */
	char *junit;        /* absolute, workdir/junit.xml */
	char *trs;          /* absolute, workdir/kpar.trs (the automake protocol) */
	int own_workdir;    /* created by us (no workdir given): removed at the end */
	struct kpar_strv base_env;
	/* The running test's whole output (log_dir): its file and digest;
	 * fd -1 when none is kept (no log_dir, or it could not be written). */
	int full_fd;
	struct kpar_sha256 *full_hash;
	char *full_path;
	char full_last;     /* its last byte so far ('\n' when empty) */
};

static double wall_now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_REALTIME, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static int is_own_var(const char *entry)
{
	size_t i, n;

	for (i = 0; i < sizeof own_vars / sizeof own_vars[0]; i++) {
		n = strlen(own_vars[i]);
		if (strncmp(entry, own_vars[i], n) == 0 && entry[n] == '=')
			return 1;
	}
	return 0;
}

/* environ minus the worker's variables, plus the per-bucket ones. */
static void build_base_env(struct ctx *cx)
{
	char **e;

	for (e = environ; *e; e++)
		if (!is_own_var(*e))
			kpar_strv_push(&cx->base_env, *e);
}

static void env_set(struct kpar_strv *env, const char *name, const char *value)
{
	char *s = kpar_xasprintf("%s=%s", name, value);

	kpar_strv_push(env, s);
	free(s);
}

static void test_env(struct ctx *cx, struct kpar_strv *env, const char *id, int attempt,
		     int batch)
{
	char num[32];
	size_t i;

	for (i = 0; i < cx->base_env.n; i++)
		kpar_strv_push(env, cx->base_env.v[i]);
	env_set(env, "TMPDIR", cx->tmpdir);
	env_set(env, "KPAR_WORKDIR", cx->workdir);
	snprintf(num, sizeof num, "%d", cx->o->bucket);
	env_set(env, "KPAR_BUCKET", num);
	snprintf(num, sizeof num, "%d", attempt);
	env_set(env, "KPAR_TEST_ATTEMPT", num);
	if (id)
		env_set(env, "KPAR_TEST_ID", id);
	if (batch || cx->o->protocol == KPAR_PROTO_JUNIT)
		env_set(env, "KPAR_JUNIT", cx->junit);
	if (!batch && cx->o->protocol == KPAR_PROTO_AUTOMAKE)
		env_set(env, "KPAR_TRS", cx->trs);
	if (!batch && cx->o->protocol == KPAR_PROTO_TAP) {
		/* git's test library, for one, writes result files into the
		 * source tree unless it runs under a harness */
		env_set(env, "HARNESS_ACTIVE", "1");
		env_set(env, "HARNESS_VERSION", HARNESS_VERSION);
	}
}

static enum kpar_status status_of_exit(int code)
{
	switch (code) {
	case 0:
		return KPAR_PASS;
	case 77:
		return KPAR_SKIP;
	case 99:
		return KPAR_ERROR;
	}
	return KPAR_FAIL;
}

static int failed(enum kpar_status s)
{
	return s == KPAR_FAIL || s == KPAR_ERROR || s == KPAR_XPASS;
}

static const char *signal_name(int sig)
{
	const char *s = sigabbrev_np(sig);
	return s ? s : "?";
}

/* One attempt's outcome, output already cut to what the result keeps. */
struct outcome {
	enum kpar_status status;
	int exit_code;
	double seconds;
	struct kpar_buf output;
	int interrupted;
	int spawn_error;
	int timed_out;
	char *note;                 /* the protocol's explanation */
	struct kpar_subtest *subs;  /* the protocol's subtests */
	size_t nsubs;
	size_t notes_from;          /* output from here on is kpar's own notes */
};

static void outcome_free(struct outcome *oc)
{
	kpar_buf_free(&oc->output);
	free(oc->note);
	kpar_subtests_free(oc->subs, oc->nsubs);
	oc->note = NULL;
	oc->subs = NULL;
	oc->nsubs = 0;
}

/* ---- the whole output, kept in a file (log_dir) ------------------------ */

/* A write that fails stops keeping the file (the record's output stays):
 * said once per test, and the result then carries no full_log. */
static void full_write(struct ctx *cx, const char *data, size_t len)
{
	if (cx->full_fd < 0 || len == 0)
		return;
	if (kpar_fs_write_fully(cx->full_fd, data, len) < 0) {
		fprintf(stderr, "kpar: worker: the whole output is not kept: %s\n", kpar_error_last());
		kpar_error_clear();
		close(cx->full_fd);
		cx->full_fd = -1;
		return;
	}
	kpar_sha256_update(cx->full_hash, data, len);
	cx->full_last = data[len - 1];
}

/* Starts the test's file under log_dir, named as its report log is. */
static void full_open(struct ctx *cx, const char *id)
{
	cx->full_fd = -1;
	if (!cx->o->log_dir || !*cx->o->log_dir)
		return;
	cx->full_fd = kpar_testlog_create(cx->o->log_dir, id, &cx->full_path);
	if (cx->full_fd < 0) {
		fprintf(stderr, "kpar: worker: the whole output of '%s' is not kept: %s\n", id,
			kpar_error_last());
		kpar_error_clear();
		cx->full_fd = -1;
		return;
	}
	cx->full_hash = kpar_sha256_new();
	cx->full_last = '\n';
}

/* Ends the test's file with its log's closing line (the report links the
 * file as the log); its digest goes into the result when all of it was
 * written.  t NULL: the test did not finish (interrupted). */
static void full_close(struct ctx *cx, struct kpar_test_result *t, const struct kpar_bucket_result *r)
{
	unsigned char raw[KPAR_SHA256_LEN];
	char hex[2 * KPAR_SHA256_LEN + 1];

	if (cx->full_fd >= 0 && t) {
		struct kpar_buf line = KPAR_BUF_INIT;

		if (cx->full_last != '\n')
			kpar_buf_putc(&line, '\n');
		kpar_testlog_closing(t, r->bucket, r->worker, &line);
		full_write(cx, line.data, line.len);
		kpar_buf_free(&line);
	}
	if (cx->full_fd >= 0) {
		if (close(cx->full_fd) == 0 && t) {
			kpar_sha256_final(cx->full_hash, raw);
			cx->full_hash = NULL;
			kpar_hex(raw, sizeof raw, hex);
			free(t->full_log);
			t->full_log = kpar_xasprintf("sha256:%s", hex);
		} else if (t) {
			fprintf(stderr, "kpar: worker: the whole output of '%s' is not kept: cannot write '%s': %s\n",
				t->id, cx->full_path, strerror(errno));
		}
	}
	if (cx->full_hash) {
		kpar_sha256_final(cx->full_hash, raw);   /* frees it */
		cx->full_hash = NULL;
	}
	cx->full_fd = -1;
	free(cx->full_path);
	cx->full_path = NULL;
}

struct tee {
	struct ctx *cx;
	struct kpar_tap *tap;
};

static void tee_output(void *arg, const char *data, size_t len)
{
	struct tee *t = arg;

	if (t->tap)
		kpar_tap_feed(t->tap, data, len);
	full_write(t->cx, data, len);
}

/* A protocol's verdict (TAP, automake's .trs) replaces the exit status's,
 * except an error kpar saw itself; its explanation and subtests move into
 * the outcome. */
static void take_verdict(struct outcome *oc, enum kpar_status verdict, char **explanation,
			 struct kpar_subtest **subs, size_t *nsubs)
{
	if (oc->status != KPAR_ERROR)
		oc->status = verdict;
	oc->note = *explanation;
	*explanation = NULL;
	oc->subs = *subs;
	oc->nsubs = *nsubs;
	*subs = NULL;
	*nsubs = 0;
}

/* The TAP verdict replaces the exit status's, except for what kpar calls
 * an error whatever the protocol: a signal, the timeout, exit 99. */
static void judge_tap(struct kpar_tap *tap, const struct kpar_proc_status *st,
		      struct outcome *oc)
{
	struct kpar_tap_result tr;

	kpar_tap_finish(tap, st->exited ? st->exit_code : -1, st->exited ? 0 : st->signo, &tr);
	take_verdict(oc, tr.verdict, &tr.explanation, &tr.subtests, &tr.nsubtests);
	kpar_tap_result_free(&tr);
}

/* Whether id is a word of the whitespace-separated list. */
static int listed(const char *list, const char *id)
{
	size_t n = strlen(id);
	const char *p = list;

	while (list && *p) {
		size_t w;

		p += strspn(p, " \t\n");
		w = strcspn(p, " \t\n");
		if (w == n && w && memcmp(p, id, n) == 0)
			return 1;
		p += w;
	}
	return 0;
}

/* automake's verdicts, as its test-driver gives them: without hard errors
 * exit 99 is a plain failure; an expected failure's fail is XFAIL and its
 * pass XPASS.  A timeout, a signal or a test that cannot start stays an
 * error (test-driver would see 128+n or 126/127 from a shell). */
static void automake_verdict(const struct kpar_worker_opts *o, const char *id, struct outcome *oc)
{
	int plain = !oc->spawn_error && !oc->timed_out && oc->exit_code >= 0;

	if (!o->hard_errors && plain && oc->status == KPAR_ERROR && oc->exit_code == 99)
		oc->status = KPAR_FAIL;
	if (!listed(o->xfail_tests, id))
		return;
	if (oc->status == KPAR_FAIL && plain)
		oc->status = KPAR_XFAIL;
	else if (oc->status == KPAR_PASS)
		oc->status = KPAR_XPASS;
}

/* Whether another attempt could change a failed outcome (worker.h). */
static int retryable(const struct kpar_worker_opts *o, const struct outcome *oc)
{
	if (!failed(oc->status) || oc->spawn_error || oc->status == KPAR_XPASS)
		return 0;
	if (oc->timed_out)
		return o->retry_timeouts;
	return oc->exit_code != 99 && oc->exit_code != 126 && oc->exit_code != 127;
}

/* Maps a finished process to an outcome; `what` names it in messages. */
static void judge(struct ctx *cx, const struct kpar_proc_status *st, struct kpar_capture *cap,
		  const char *what, struct kpar_tap *tap, struct outcome *oc)
{
	const struct kpar_worker_opts *o = cx->o;

	oc->seconds = st->seconds;
	oc->interrupted = st->interrupted;
	oc->spawn_error = st->spawn_error;
	oc->timed_out = st->timed_out;
	if (st->spawn_error) {
		oc->status = KPAR_ERROR;
		oc->exit_code = st->spawn_error == ENOENT ? 127 : 126;
		kpar_buf_printf(&oc->output, "kpar: cannot execute %s in '%s': %s\n", what,
				cx->root, strerror(st->spawn_error));
		return;
	}
	if (st->timed_out || st->signo) {
		oc->status = KPAR_ERROR;
		oc->exit_code = st->exited ? st->exit_code : -1;
	} else {
		oc->status = status_of_exit(st->exit_code);
		oc->exit_code = st->exit_code;
	}
	if (tap)
		judge_tap(tap, st, oc);
	kpar_capture_get(cap, &oc->output, failed(oc->status) ? o->fail_output_max
			 : o->pass_output_max, failed(oc->status));
	oc->notes_from = oc->output.len;
	if (oc->output.len > 0 && oc->output.data[oc->output.len - 1] != '\n' &&
	    (st->timed_out || st->signo))
		kpar_buf_putc(&oc->output, '\n');
	if (st->timed_out)
		kpar_buf_printf(&oc->output, "[kpar: timed out after %g s; process group stopped]\n",
				o->timeout);
	else if (st->signo)
		kpar_buf_printf(&oc->output, "[kpar: killed by signal %d (SIG%s)]\n", st->signo,
				signal_name(st->signo));
	if (tap && oc->status == KPAR_FAIL && oc->note) {
		if (oc->output.len > 0 && oc->output.data[oc->output.len - 1] != '\n')
			kpar_buf_putc(&oc->output, '\n');
		kpar_buf_printf(&oc->output, "[kpar: TAP: %s]\n", oc->note);
	}
}

static void run_argv(struct ctx *cx, const char *path, char *const *argv, struct kpar_strv *env,
		     const char *what, int tap_protocol, struct outcome *oc, int *machine_rc)
{
	struct kpar_tap *tap = tap_protocol ? kpar_tap_new() : NULL;
	struct tee tee = { cx, tap };
	const struct kpar_worker_opts *o = cx->o;
	size_t tail = o->fail_output_max - o->fail_output_max / 2;
	struct kpar_capture cap;
	struct kpar_proc p;
	struct kpar_proc_status st;

	if (tail < o->pass_output_max)
		tail = o->pass_output_max;
	kpar_capture_init(&cap, o->fail_output_max / 2, tail);
	cap.tee = tee_output;
	cap.tee_arg = &tee;
	memset(&p, 0, sizeof p);
	p.path = path;
	p.argv = argv;
	p.envp = env->v;
	p.cwd = cx->root;
	p.timeout = o->timeout;
	p.kill_grace = o->kill_grace;
	*machine_rc = kpar_proc_run(&p, &cap, &st);
	if (*machine_rc == 0) {
		judge(cx, &st, &cap, what, st.spawn_error ? NULL : tap, oc);
		/* what kpar says of the test (a timeout, a signal) is part of it */
		if (st.spawn_error != ENOEXEC && oc->output.len > oc->notes_from)
			full_write(cx, oc->output.data + oc->notes_from, oc->output.len - oc->notes_from);
	}
	kpar_capture_free(&cap);
	kpar_tap_free(tap);
}

/* The junit protocol: the testcases a test wrote become its subtests, and
 * a failed one fails a test that passed by its exit status. */
static void judge_junit(struct ctx *cx, struct outcome *oc)
{
	struct kpar_bucket_result jr = { 0 };
	size_t i, nbad = 0;
	int rc;

	if (oc->spawn_error || !kpar_fs_exists(cx->junit))
		return;
	if ((rc = kpar_junit_read(cx->junit, &jr)) < 0) {
		/* the results cannot be trusted: an error, saying why */
		oc->status = KPAR_ERROR;
		oc->note = kpar_xstrdup(kpar_error_last());
		kpar_buf_printf(&oc->output, "[kpar: %s]\n", oc->note);
		kpar_bucket_result_free(&jr);
		return;
	}
	oc->subs = kpar_xcalloc(jr.ntests + 1, sizeof *oc->subs);
	for (i = 0; i < jr.ntests; i++) {
		const struct kpar_test_result *t = &jr.tests[i];
		struct kpar_subtest *s = &oc->subs[i];
		struct kpar_buf b = KPAR_BUF_INIT;

		s->number = (long)i + 1;
		s->name = kpar_xstrdup(t->id);
		switch (t->status) {
		case KPAR_FAIL:
		case KPAR_ERROR:
			s->status = KPAR_SUB_FAIL;
			nbad++;
			break;
		case KPAR_SKIP:
			s->status = KPAR_SUB_SKIP;
			break;
		default:
			s->status = KPAR_SUB_PASS;
			break;
		}
		if (t->output && t->output_len) {
			const char *nl = memchr(t->output, '\n', t->output_len);
			size_t first = nl ? (size_t)(nl - t->output) : t->output_len;

			if (s->status == KPAR_SUB_SKIP && first > 0)
				s->reason = kpar_xstrndup(t->output, first < 1024 ? first : 1024);
			kpar_record_trim(&b, t->output, t->output_len, KPAR_TAP_DIAG_MAX, 1);
			/* (a NUL in it ends the text early: it is shown as text) */
			s->diag = kpar_buf_detach(&b, NULL);
		}
		oc->nsubs++;
	}
	if (nbad && (oc->status == KPAR_PASS || oc->status == KPAR_SKIP)) {
		oc->status = KPAR_FAIL;
		oc->note = kpar_xasprintf("%zu of %zu JUnit testcases failed", nbad, jr.ntests);
		kpar_buf_printf(&oc->output, "[kpar: %s]\n", oc->note);
	}
	kpar_bucket_result_free(&jr);
}

/* The automake protocol: the .trs a test's driver wrote decides, as
 * automake sums its results up, and lists them as subtests; an error the
 * exit status already says (99, a signal, the timeout) stays one. */
static void judge_trs(struct ctx *cx, struct outcome *oc)
{
	struct kpar_trs_result tr;

	if (oc->spawn_error || !kpar_fs_exists(cx->trs))
		return;
	if (kpar_trs_read(cx->trs, &tr) < 0) {
		oc->status = KPAR_ERROR;
		oc->note = kpar_xstrdup(kpar_error_last());
		kpar_buf_printf(&oc->output, "[kpar: %s]\n", oc->note);
		return;
	}
	take_verdict(oc, tr.verdict, &tr.explanation, &tr.subtests, &tr.nsubtests);
	kpar_trs_result_free(&tr);
}

/* Runs one attempt of one test (each mode). */
static int run_one(struct ctx *cx, const char *id, int attempt, struct outcome *oc)
{
	const char *cmd = cx->o->run_cmd;
	struct kpar_strv env = KPAR_STRV_INIT, argv = KPAR_STRV_INIT;
	struct kpar_buf what = KPAR_BUF_INIT;
	char *path = NULL, *script = NULL;
	int rc, tap = cx->o->protocol == KPAR_PROTO_TAP;

	test_env(cx, &env, id, attempt, 0);
	if (cx->o->protocol == KPAR_PROTO_JUNIT && unlink(cx->junit) < 0 && errno != ENOENT) {
		rc = kpar_error_errno(KPAR_EIO, "cannot remove '%s'", cx->junit);
		kpar_strv_free(&env);
		return rc;
	}
	if (cx->o->protocol == KPAR_PROTO_AUTOMAKE && unlink(cx->trs) < 0 && errno != ENOENT) {
		rc = kpar_error_errno(KPAR_EIO, "cannot remove '%s'", cx->trs);
		kpar_strv_free(&env);
		return rc;
	}
	if (cmd && *cmd) {
		/* The id is "$1" of the shell: one word, never parsed. */
		script = kpar_xasprintf("%s \"$@\"", cmd);
		kpar_strv_push(&argv, "/bin/sh");
		kpar_strv_push(&argv, "-c");
		kpar_strv_push(&argv, script);
		kpar_strv_push(&argv, "kpar");
		kpar_strv_push(&argv, id);
		kpar_buf_puts(&what, "the run command");
		run_argv(cx, "/bin/sh", argv.v, &env, what.data, tap, oc, &rc);
	} else {
		/* "./" keeps an id like "-x" or "a/b" from being an option or a
		 * PATH lookup, for execve and for the sh fallback alike. */
		path = id[0] == '/' ? kpar_xstrdup(id) : kpar_xasprintf("./%s", id);
		kpar_strv_push(&argv, path);
		kpar_buf_printf(&what, "test '%s'", id);
		run_argv(cx, path, argv.v, &env, what.data, tap, oc, &rc);
		if (rc == 0 && oc->spawn_error == ENOEXEC) {
			/* No #! line: run it with sh, as the shells and automake's
			 * harness do. */
			outcome_free(oc);
			oc->spawn_error = 0;
			kpar_strv_free(&argv);
			kpar_strv_push(&argv, "/bin/sh");
			kpar_strv_push(&argv, path);
			run_argv(cx, "/bin/sh", argv.v, &env, what.data, tap, oc, &rc);
		}
	}
	if (rc == 0 && cx->o->protocol == KPAR_PROTO_JUNIT)
		judge_junit(cx, oc);
	if (rc == 0 && cx->o->protocol == KPAR_PROTO_AUTOMAKE)
		judge_trs(cx, oc);
	if (rc == 0 && !oc->interrupted)
		automake_verdict(cx->o, id, oc);
	kpar_strv_free(&env);
	kpar_strv_free(&argv);
	kpar_buf_free(&what);
	free(path);
	free(script);
	return rc;
}

/* Folds a new attempt into the test's result: a failure followed by a pass
 * is flaky, and the failed attempt's output stays in front. */
static void record_attempt(struct ctx *cx, struct kpar_bucket_result *out, size_t idx,
			   const char *id, int attempt, struct outcome *oc)
{
	struct kpar_test_result *t;

	if (attempt == 1) {
		t = kpar_bucket_result_add(out, id, oc->status, oc->seconds,
					   oc->output.data ? oc->output.data : "", oc->output.len);
		t->exit_code = oc->exit_code;
		t->note = oc->note;
		oc->note = NULL;
		kpar_test_result_take_subtests(t, &oc->subs, &oc->nsubs);
		return;
	}
	if (oc->status == KPAR_PASS || failed(oc->status)) {
		/* the last attempt that counts says what the subtests are */
		free(out->tests[idx].note);
		out->tests[idx].note = oc->note;
		oc->note = NULL;
		kpar_test_result_take_subtests(&out->tests[idx], &oc->subs, &oc->nsubs);
	}
	t = &out->tests[idx];
	t->attempts = attempt;
	t->seconds = oc->seconds;
	if (oc->status == KPAR_PASS) {
		struct kpar_buf b = KPAR_BUF_INIT;

		kpar_buf_add(&b, t->output, t->output_len);
		if (b.len > 0 && b.data[b.len - 1] != '\n')
			kpar_buf_putc(&b, '\n');
		kpar_buf_printf(&b, "[kpar: attempt %d of %d passed; output of the last failed "
				"attempt above]\n", attempt, 1 + cx->o->retries);
		kpar_buf_add(&b, oc->output.data, oc->output.len);
		free(t->output);
		t->output = kpar_buf_detach(&b, &t->output_len);
		t->status = KPAR_FLAKY;
		t->exit_code = 0;
		return;
	}
	if (failed(oc->status)) {
		struct kpar_buf b = KPAR_BUF_INIT;

		kpar_buf_printf(&b, "[kpar: attempt %d of %d]\n", attempt, 1 + cx->o->retries);
		kpar_buf_add(&b, oc->output.data, oc->output.len);
		free(t->output);
		t->output = kpar_buf_detach(&b, &t->output_len);
		t->status = oc->status;
		t->exit_code = oc->exit_code;
	}
	/* A skip on a retry does not hide the earlier failure. */
}

static int run_each(struct ctx *cx, const struct kpar_strv *ids, struct kpar_bucket_result *out)
{
	size_t i;
	int rc = 0;

	for (i = 0; i < ids->n; i++) {
		size_t idx = out->ntests;
		int attempt;

		full_open(cx, ids->v[i]);
		for (attempt = 1; attempt <= 1 + cx->o->retries; attempt++) {
			struct outcome oc;

			memset(&oc, 0, sizeof oc);
			if (attempt > 1) {
				char head[64];
				int n = snprintf(head, sizeof head, "[kpar: attempt %d of %d]\n", attempt,
						 1 + cx->o->retries);
				full_write(cx, head, (size_t)n);
			}
			rc = kpar_proc_interrupted() ? KPAR_EINTR
				: run_one(cx, ids->v[i], attempt, &oc);
			if (rc == 0 && oc.interrupted)
				rc = KPAR_EINTR;
			if (rc == 0)
				record_attempt(cx, out, idx, ids->v[i], attempt, &oc);
			outcome_free(&oc);
			if (rc < 0) {
				full_close(cx, NULL, out);
				goto done;
			}
			if (!retryable(cx->o, &oc))
				break;
		}
		full_close(cx, &out->tests[idx], out);
		if (cx->o->on_test)
			cx->o->on_test(&out->tests[idx], cx->o->payload);
	}
done:
	if (rc == KPAR_EINTR)
		kpar_error_set(KPAR_EINTR, "bucket %d interrupted by signal %d after %zu of %zu tests",
			       cx->o->bucket, kpar_proc_interrupted(), i, ids->n);
	return rc;
}

/* ---- batch mode ------------------------------------------------------- */

/* Does the JUnit id j name the bucket's test id?  Exactly, or as
 * "<classname>.<id>" when the tool adds a class. */
static int junit_matches(const char *j, const char *id)
{
	size_t jl = strlen(j), il = strlen(id);

	if (jl == il)
		return strcmp(j, id) == 0;
	return jl > il && j[jl - il - 1] == '.' && strcmp(j + jl - il, id) == 0;
}

/* One batch run over `batch` ids; results (one per id, plus extra JUnit
 * testcases) are appended to res.  Ids given the command's own status when
 * a rerun could not change it (retryable) are added to final. */
static int run_batch_once(struct ctx *cx, const struct kpar_strv *batch, int attempt,
			  struct kpar_bucket_result *res, struct kpar_strv *final)
{
	const struct kpar_worker_opts *o = cx->o;
	struct kpar_strv env = KPAR_STRV_INIT, argv = KPAR_STRV_INIT;
	struct kpar_bucket_result jr = { 0 };
	struct outcome oc;
	char *script = kpar_xasprintf("%s \"$@\"", o->run_cmd);
	unsigned char *used = NULL;
	const char *first_fallback = NULL;
	double junit_seconds = 0;
	size_t i, j, nmissing = 0;
	int rc, jrc = KPAR_ENOTFOUND;

	memset(&oc, 0, sizeof oc);
	test_env(cx, &env, NULL, attempt, 1);
	kpar_strv_push(&argv, "/bin/sh");
	kpar_strv_push(&argv, "-c");
	kpar_strv_push(&argv, script);
	kpar_strv_push(&argv, "kpar");
	for (i = 0; i < batch->n; i++)
		kpar_strv_push(&argv, batch->v[i]);
	if (unlink(cx->junit) < 0 && errno != ENOENT) {
		rc = kpar_error_errno(KPAR_EIO, "cannot remove '%s'", cx->junit);
		goto done;
	}
	run_argv(cx, "/bin/sh", argv.v, &env, "the run command", 0, &oc, &rc);
	if (rc < 0)
		goto done;
	if (oc.interrupted) {
		rc = kpar_error_set(KPAR_EINTR, "bucket %d interrupted by signal %d",
				    o->bucket, kpar_proc_interrupted());
		goto done;
	}
	if (kpar_fs_exists(cx->junit)) {
		jrc = kpar_junit_read(cx->junit, &jr);
		if (jrc < 0) {
			/* Results cannot be trusted: every test errors, saying why. */
			kpar_buf_printf(&oc.output, "\n[kpar: %s]\n", kpar_error_last());
			oc.status = KPAR_ERROR;
			kpar_bucket_result_free(&jr);
		}
	}
	used = kpar_xcalloc(jr.ntests + 1, 1);
	for (i = 0; i < jr.ntests; i++)
		junit_seconds += jr.tests[i].seconds;
	for (i = 0; i < batch->n; i++) {
		for (j = 0; j < jr.ntests; j++)
			if (!used[j] && junit_matches(jr.tests[j].id, batch->v[i]))
				break;
		if (j == jr.ntests)
			nmissing++;
	}
	for (i = 0; i < batch->n; i++) {
		struct kpar_test_result *t;

		for (j = 0; j < jr.ntests; j++)
			if (!used[j] && junit_matches(jr.tests[j].id, batch->v[i]))
				break;
		if (j < jr.ntests) {
			const struct kpar_test_result *src = &jr.tests[j];
			struct kpar_buf b = KPAR_BUF_INIT;
			int bad = failed(src->status);

			used[j] = 1;
			kpar_record_trim(&b, src->output ? src->output : "", src->output_len,
					 bad ? o->fail_output_max : o->pass_output_max, bad);
			t = kpar_bucket_result_add(res, batch->v[i], src->status, src->seconds,
						   b.data ? b.data : "", b.len);
			kpar_buf_free(&b);
			continue;
		}
		/* Not in the XML: the command's status, and its output once. */
		if (!first_fallback) {
			first_fallback = batch->v[i];
			t = kpar_bucket_result_add(res, batch->v[i], oc.status, 0,
						   oc.output.data ? oc.output.data : "",
						   oc.output.len);
		} else {
			char *note = kpar_xasprintf("[kpar: batch run; the command's output is "
						    "with test '%s']\n", first_fallback);
			t = kpar_bucket_result_add(res, batch->v[i], oc.status, 0, note,
						   strlen(note));
			free(note);
		}
		t->exit_code = oc.exit_code;
		if (failed(oc.status) && !retryable(o, &oc))
			kpar_strv_push(final, batch->v[i]);
		/* Time not accounted for by the XML, shared among the rest. */
		t->seconds = oc.seconds > junit_seconds ?
			(oc.seconds - junit_seconds) / (double)nmissing : 0;
	}
	for (j = 0; j < jr.ntests; j++) {
		const struct kpar_test_result *src = &jr.tests[j];
		struct kpar_buf b = KPAR_BUF_INIT;
		int bad = failed(src->status);

		if (used[j])
			continue;
		kpar_record_trim(&b, src->output ? src->output : "", src->output_len,
				 bad ? o->fail_output_max : o->pass_output_max, bad);
		kpar_bucket_result_add(res, src->id, src->status, src->seconds,
				       b.data ? b.data : "", b.len);
		kpar_buf_free(&b);
	}
	rc = 0;
done:
	free(used);
	free(script);
	kpar_bucket_result_free(&jr);
	kpar_buf_free(&oc.output);
	kpar_strv_free(&env);
	kpar_strv_free(&argv);
	return rc;
}

static struct kpar_test_result *find_test(struct kpar_bucket_result *r, const char *id)
{
	size_t i;

	for (i = 0; i < r->ntests; i++)
		if (strcmp(r->tests[i].id, id) == 0)
			return &r->tests[i];
	return NULL;
}

static int run_batch(struct ctx *cx, const struct kpar_strv *ids, struct kpar_bucket_result *out)
{
	struct kpar_strv again = KPAR_STRV_INIT, final = KPAR_STRV_INIT;
	int attempt, rc = 0;
	size_t i, k;

	if (!cx->o->run_cmd || !*cx->o->run_cmd)
		return kpar_error_set(KPAR_EINVAL, "batch mode needs a run command "
				      "(the tests are passed to it as arguments)");
	if (ids->n == 0)
		return 0;
	if ((rc = run_batch_once(cx, ids, 1, out, &final)) < 0) {
		kpar_strv_free(&final);
		return rc;
	}
	for (attempt = 2; attempt <= 1 + cx->o->retries; attempt++) {
		struct kpar_bucket_result res = { 0 };

		kpar_strv_free(&again);
		for (i = 0; i < ids->n; i++) {
			struct kpar_test_result *t = find_test(out, ids->v[i]);
			if (!t || !failed(t->status))
				continue;
			for (k = 0; k < final.n && strcmp(final.v[k], ids->v[i]) != 0; k++)
				;
			if (k == final.n)
				kpar_strv_push(&again, ids->v[i]);
		}
		if (again.n == 0)
			break;
		if ((rc = run_batch_once(cx, &again, attempt, &res, &final)) < 0) {
			kpar_bucket_result_free(&res);
			break;
		}
		for (i = 0; i < res.ntests; i++) {
			struct kpar_test_result *n = &res.tests[i], *t = find_test(out, n->id);
			struct outcome oc;
			size_t idx;

			if (!t) {
				t = kpar_bucket_result_add(out, n->id, n->status, n->seconds,
							   n->output, n->output_len);
				t->exit_code = n->exit_code;
				t->attempts = attempt;
				continue;
			}
			if (!failed(t->status))
				continue;   /* an extra testcase that already passed */
			memset(&oc, 0, sizeof oc);
			oc.status = n->status;
			oc.exit_code = n->exit_code;
			oc.seconds = n->seconds;
			kpar_buf_add(&oc.output, n->output ? n->output : "", n->output_len);
			idx = (size_t)(t - out->tests);
			record_attempt(cx, out, idx, n->id, attempt, &oc);
			kpar_buf_free(&oc.output);
		}
		kpar_bucket_result_free(&res);
	}
	kpar_strv_free(&again);
	kpar_strv_free(&final);
	if (cx->o->on_test)
		for (i = 0; i < out->ntests; i++)
			cx->o->on_test(&out->tests[i], cx->o->payload);
	return rc;
}

/* ---- setup ------------------------------------------------------------ */

static char *absolute(const char *path)
{
	char buf[PATH_MAX];

	if (path[0] == '/')
		return kpar_xstrdup(path);
	if (!getcwd(buf, sizeof buf))
		return kpar_xstrdup(path);
	return kpar_fs_join(buf, path);
}

static int setup(struct ctx *cx, const struct kpar_worker_opts *o)
{
	struct stat sb;
	int rc;

	cx->o = o;
	cx->root = o->root && *o->root ? o->root : ".";
	if (stat(cx->root, &sb) < 0 || !S_ISDIR(sb.st_mode))
		return kpar_error_errno(KPAR_ENOTFOUND, "test root '%s' is not a directory",
					cx->root);
	if (o->workdir && *o->workdir) {
		if ((rc = kpar_fs_mkdir_p(o->workdir, 0755)) < 0)
			return kpar_error_prefix(rc, "worker directory");
		cx->workdir = absolute(o->workdir);
	} else {
		const char *t = getenv("TMPDIR");
		char *tmpl = kpar_xasprintf("%s/kpar-worker.XXXXXX", t && *t ? t : "/tmp");

		if (!mkdtemp(tmpl)) {
			rc = kpar_error_errno(KPAR_EIO, "cannot create a directory like '%s'", tmpl);
			free(tmpl);
			return rc;
		}
		cx->workdir = absolute(tmpl);
		cx->own_workdir = 1;
		free(tmpl);
	}
	cx->tmpdir = kpar_fs_join(cx->workdir, "tmp");
	cx->junit = kpar_fs_join(cx->workdir, "junit.xml");
	cx->trs = kpar_fs_join(cx->workdir, "kpar.trs");
	if ((rc = kpar_fs_mkdir_p(cx->tmpdir, 0700)) < 0)
		return kpar_error_prefix(rc, "worker temporary directory");
	build_base_env(cx);
	return 0;
}

static void teardown(struct ctx *cx)
{
	if (cx->own_workdir && cx->workdir)
		kpar_fs_remove_tree(cx->workdir);
	free(cx->workdir);
	free(cx->tmpdir);
	free(cx->junit);
	free(cx->trs);
	kpar_strv_free(&cx->base_env);
}

int kpar_worker_run(const struct kpar_worker_opts *o, const struct kpar_strv *ids,
		    struct kpar_bucket_result *out)
{
	struct kpar_proc_signals sig;
	struct ctx cx;
	char host[256];
	size_t i;
	int rc;

	memset(out, 0, sizeof *out);
	memset(&cx, 0, sizeof cx);
	cx.full_fd = -1;
	for (i = 0; i < ids->n; i++)
		if (!ids->v[i][0] || strchr(ids->v[i], '\n'))
			return kpar_error_set(KPAR_EINVAL, "test id %zu of bucket %d is empty or "
					      "holds a newline", i + 1, o->bucket);
	out->plan = o->plan ? kpar_xstrdup(o->plan) : NULL;
	out->bucket = o->bucket;
	out->attempt = o->attempt;
	if (o->worker_name && *o->worker_name) {
		out->worker = kpar_xstrdup(o->worker_name);
	} else {
		if (gethostname(host, sizeof host) < 0)
			snprintf(host, sizeof host, "localhost");
		host[sizeof host - 1] = '\0';
		out->worker = kpar_xstrdup(host);
	}
	out->started = wall_now();
	if ((rc = setup(&cx, o)) < 0)
		goto done;
	if ((rc = kpar_proc_signals_begin(&sig)) < 0)
		goto done;
	if (o->mode == KPAR_MODE_BATCH)
		rc = run_batch(&cx, ids, out);
	else
		rc = run_each(&cx, ids, out);
	kpar_proc_signals_end(&sig);
done:
	out->finished = wall_now();
	teardown(&cx);
	return rc;
}
