/* test_worker.c - the bucket worker against real little shell-script tests. */
#include "config.h"

#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "base/buf.h"
#include "base/error.h"
#include "base/fs.h"
#include "run/proc.h"
#include "run/record.h"
#include "run/worker.h"
#include "test.h"

static char root[64];
static char *workdir;

/* Writes root/name with mode; content is a shell script body. */
static void script(const char *name, const char *body, unsigned mode)
{
	char *path = kpar_fs_join(root, name);
	char *slash = strrchr(path, '/');

	*slash = '\0';
	kpar_fs_mkdir_p(path, 0755);
	*slash = '/';
	if (kpar_fs_write_atomic(path, body, strlen(body)) < 0 || chmod(path, mode) < 0) {
		fprintf(stderr, "cannot write %s: %s\n", path, kpar_error_last());
		exit(99);
	}
	free(path);
}

static void setup(void)
{
	snprintf(root, sizeof root, "/tmp/kpar-test-worker.XXXXXX");
	if (!mkdtemp(root)) {
		perror("mkdtemp");
		exit(99);
	}
	free(workdir);
	workdir = kpar_fs_join(root, ".work");
	script("pass.sh", "#!/bin/sh\necho 'all good'\nexit 0\n", 0755);
	script("fail.sh", "#!/bin/sh\necho 'went wrong' >&2\nexit 1\n", 0755);
	script("skip.sh", "#!/bin/sh\necho 'not here'\nexit 77\n", 0755);
	script("hard.sh", "#!/bin/sh\nexit 99\n", 0755);
	script("three.sh", "#!/bin/sh\nexit 3\n", 0755);
	script("segv.sh", "#!/bin/sh\necho before\nkill -SEGV $$\necho after\n", 0755);
	script("slow.sh", "#!/bin/sh\necho sleeping\nexec sleep 600\n", 0755);
	script("stubborn.sh", "#!/bin/sh\ntrap '' TERM\necho stubborn\n"
	       "while :; do sleep 1; done\n", 0755);
	script("noexec.sh", "#!/bin/sh\nexit 0\n", 0644);
	script("noshebang", "echo from-sh\nexit 0\n", 0755);
	script("-dash noshebang", "echo dash-from-sh\nexit 0\n", 0755);
	script("sub/dir.sh", "#!/bin/sh\necho in-subdir\n", 0755);
	script("env.sh", "#!/bin/sh\nprintf 'id=%s\\nbucket=%s\\nattempt=%s\\ntmp=%s\\nwork=%s\\n"
	       "pwd=%s\\nstdin=%s\\n' \"$KPAR_TEST_ID\" \"$KPAR_BUCKET\" \"$KPAR_TEST_ATTEMPT\" "
	       "\"$TMPDIR\" \"$KPAR_WORKDIR\" \"$(pwd -P)\" \"$(cat)\"\n", 0755);
	script("daemon.sh", "#!/bin/sh\nsleep 600 &\necho started\n", 0755);
	script("flaky.sh", "#!/bin/sh\nf=\"$KPAR_WORKDIR/flaky.count\"\n"
	       "n=$(cat \"$f\" 2>/dev/null || echo 0); n=$((n+1)); echo $n > \"$f\"\n"
	       "echo \"attempt $n\"\n[ $n -ge 2 ]\n", 0755);
	script("big-pass.sh", "#!/bin/sh\ni=0; while [ $i -lt 2000 ]; do "
	       "echo \"pass line $i of padding padding padding\"; i=$((i+1)); done\n", 0755);
	script("big-fail.sh", "#!/bin/sh\necho FIRST-LINE\n"
	       "head -c 3000000 /dev/zero | tr '\\0' x\necho\necho LAST-LINE\nexit 1\n", 0755);
}

/* kill(pid, 0) also succeeds for a zombie nobody reaped (a container's
 * init may not): only a running process counts. */
static int alive(pid_t pid)
{
	char path[64], *stat = NULL, *p;
	int running;

	if (pid <= 0 || kill(pid, 0) < 0)
		return 0;
	snprintf(path, sizeof path, "/proc/%ld/stat", (long)pid);
	if (kpar_fs_read_all(path, &stat, NULL) < 0)
		return 0;
	p = strrchr(stat, ')');
	running = p && p[1] == ' ' && p[2] != 'Z' && p[2] != 'X';
	free(stat);
	return running;
}

/* SIGKILL is delivered asynchronously and the orphan is reaped by init:
 * wait (bounded) for the process to be gone rather than race it. */
static int gone(pid_t pid)
{
	int i;

	for (i = 0; i < 1000 && alive(pid); i++)
		usleep(10000);
	return !alive(pid);
}

static void teardown(void)
{
	kpar_fs_remove_tree(root);
}

static const struct kpar_test_result *find(const struct kpar_bucket_result *r, const char *id)
{
	size_t i;

	for (i = 0; i < r->ntests; i++)
		if (strcmp(r->tests[i].id, id) == 0)
			return &r->tests[i];
	fprintf(stderr, "no result for '%s'\n", id);
	return NULL;
}

static int output_has(const struct kpar_test_result *t, const char *s)
{
	return t && t->output && memmem(t->output, t->output_len, s, strlen(s)) != NULL;
}

static void opts(struct kpar_worker_opts *o)
{
	kpar_worker_opts_init(o);
	o->root = root;
	o->workdir = workdir;
	o->bucket = 4;
	o->plan = "sha256:feed";
	o->worker_name = "unit";
}

static void ids_of(struct kpar_strv *sv, const char *const *ids)
{
	for (; *ids; ids++)
		kpar_strv_push(sv, *ids);
}

KPAR_TEST(defaults)
{
	struct kpar_worker_opts o;

	kpar_worker_opts_init(&o);
	CHECK_INT(o.pass_output_max, 4096);
	CHECK_INT(o.fail_output_max, 256 * 1024);
	CHECK_INT(o.retries, 0);
	CHECK(o.timeout == 0);
	CHECK_INT(o.mode, KPAR_MODE_EACH);
}

KPAR_TEST(statuses)
{
	static const char *const list[] = { "pass.sh", "fail.sh", "skip.sh", "hard.sh",
		"three.sh", "segv.sh", "noexec.sh", "missing.sh", "noshebang", "sub/dir.sh",
		"-dash noshebang", NULL };
	struct kpar_worker_opts o;
	struct kpar_strv ids = KPAR_STRV_INIT;
	struct kpar_bucket_result r;
	const struct kpar_test_result *t;

	setup();
	opts(&o);
	ids_of(&ids, list);
	CHECK_OK(kpar_worker_run(&o, &ids, &r));
	CHECK_INT(r.ntests, 11);
	CHECK_INT(r.bucket, 4);
	CHECK_STR(r.worker, "unit");
	CHECK_STR(r.plan, "sha256:feed");
	CHECK(r.finished >= r.started && r.started > 1e9);
	/* Results come in bucket order. */
	CHECK_STR(r.tests[0].id, "pass.sh");
	CHECK_STR(r.tests[9].id, "sub/dir.sh");

	t = find(&r, "pass.sh");
	CHECK(t && t->status == KPAR_PASS && t->exit_code == 0 && t->attempts == 1);
	CHECK(t && t->output_len == 9 && memcmp(t->output, "all good\n", 9) == 0);
	CHECK(t && t->seconds >= 0);
	t = find(&r, "fail.sh");
	CHECK(t && t->status == KPAR_FAIL && t->exit_code == 1);
	CHECK(output_has(t, "went wrong"));   /* stderr is captured too */
	t = find(&r, "skip.sh");
	CHECK(t && t->status == KPAR_SKIP && t->exit_code == 77);
	t = find(&r, "hard.sh");
	CHECK(t && t->status == KPAR_ERROR && t->exit_code == 99);
	t = find(&r, "three.sh");
	CHECK(t && t->status == KPAR_FAIL && t->exit_code == 3);
	t = find(&r, "segv.sh");
	CHECK(t && t->status == KPAR_ERROR && t->exit_code == -1);
	CHECK(output_has(t, "before"));
	CHECK(!output_has(t, "after"));
	CHECK(output_has(t, "killed by signal 11 (SIGSEGV)"));
	t = find(&r, "noexec.sh");
	CHECK(t && t->status == KPAR_ERROR && t->exit_code == 126);
	CHECK(output_has(t, "cannot execute test 'noexec.sh'"));
	CHECK(output_has(t, "Permission denied"));
	t = find(&r, "missing.sh");
	CHECK(t && t->status == KPAR_ERROR && t->exit_code == 127);
	CHECK(output_has(t, "No such file"));
	t = find(&r, "noshebang");
	CHECK(t && t->status == KPAR_PASS);
	CHECK(output_has(t, "from-sh"));
	t = find(&r, "sub/dir.sh");
	CHECK(t && t->status == KPAR_PASS && output_has(t, "in-subdir"));
	t = find(&r, "-dash noshebang");
	CHECK(t && t->status == KPAR_PASS && output_has(t, "dash-from-sh"));

	kpar_bucket_result_free(&r);
	kpar_strv_free(&ids);
	teardown();
}

KPAR_TEST(environment)
{
	struct kpar_worker_opts o;
	struct kpar_strv ids = KPAR_STRV_INIT;
	struct kpar_bucket_result r;
	struct kpar_buf want = KPAR_BUF_INIT;
	char real[4096];
	const struct kpar_test_result *t;

	setup();
	opts(&o);
	/* Inherited values of the worker's own variables never leak through. */
	setenv("KPAR_TEST_ID", "stale", 1);
	setenv("KPAR_JUNIT", "/stale", 1);
	kpar_strv_push(&ids, "env.sh");
	CHECK_OK(kpar_worker_run(&o, &ids, &r));
	t = find(&r, "env.sh");
	CHECK(realpath(root, real) != NULL);
	kpar_buf_printf(&want, "id=env.sh\nbucket=4\nattempt=1\ntmp=%s/.work/tmp\nwork=%s/.work\n"
			"pwd=%s\nstdin=\n", root, root, real);
	CHECK(t && t->output && strcmp(t->output, want.data) == 0);
	if (t && t->output && strcmp(t->output, want.data) != 0)
		fprintf(stderr, "got:\n%s\nwant:\n%s\n", t->output, want.data);
	CHECK(kpar_fs_exists(workdir));
	unsetenv("KPAR_TEST_ID");
	unsetenv("KPAR_JUNIT");
	kpar_bucket_result_free(&r);

	/* No workdir: a private one is made and removed afterwards. */
	o.workdir = NULL;
	CHECK_OK(kpar_worker_run(&o, &ids, &r));
	t = find(&r, "env.sh");
	CHECK(t && t->status == KPAR_PASS && output_has(t, "/kpar-worker."));
	if (t && t->output) {
		const char *w = strstr(t->output, "work=") + 5;
		char *dir = kpar_xstrndup(w, strcspn(w, "\n"));
		CHECK(!kpar_fs_exists(dir));
		free(dir);
	}
	kpar_bucket_result_free(&r);
	kpar_buf_free(&want);
	kpar_strv_free(&ids);
	teardown();
}

KPAR_TEST(timeout)
{
	struct kpar_worker_opts o;
	struct kpar_strv ids = KPAR_STRV_INIT;
	struct kpar_bucket_result r;
	const struct kpar_test_result *t;

	setup();
	opts(&o);
	o.timeout = 0.3;
	o.kill_grace = 0.3;
	kpar_strv_push(&ids, "slow.sh");
	kpar_strv_push(&ids, "stubborn.sh");
	kpar_strv_push(&ids, "pass.sh");
	CHECK_OK(kpar_worker_run(&o, &ids, &r));
	t = find(&r, "slow.sh");
	CHECK(t && t->status == KPAR_ERROR && t->exit_code == -1);
	CHECK(output_has(t, "sleeping"));
	CHECK(output_has(t, "timed out after 0.3 s"));
	/* Ignores SIGTERM: SIGKILL after the grace period. */
	t = find(&r, "stubborn.sh");
	CHECK(t && t->status == KPAR_ERROR && t->exit_code == -1);
	CHECK(output_has(t, "stubborn"));
	CHECK(output_has(t, "timed out"));
	t = find(&r, "pass.sh");
	CHECK(t && t->status == KPAR_PASS);
	kpar_bucket_result_free(&r);
	kpar_strv_free(&ids);
	teardown();
}

KPAR_TEST(stray_processes)
{
	/* A background child holding stdout must neither hang the worker nor
	 * outlive the test. */
	struct kpar_worker_opts o;
	struct kpar_strv ids = KPAR_STRV_INIT;
	struct kpar_bucket_result r;
	const struct kpar_test_result *t;
	char *out = NULL;

	setup();
	opts(&o);
	script("daemon.sh", "#!/bin/sh\nsleep 600 &\necho $! > \"$KPAR_WORKDIR/pid\"\n"
	       "echo started\n", 0755);
	kpar_strv_push(&ids, "daemon.sh");
	CHECK_OK(kpar_worker_run(&o, &ids, &r));
	t = find(&r, "daemon.sh");
	CHECK(t && t->status == KPAR_PASS && output_has(t, "started"));
	{
		char *pidfile = kpar_fs_join(workdir, "pid");
		CHECK_OK(kpar_fs_read_all(pidfile, &out, NULL));
		if (out) {
			pid_t pid = (pid_t)atoi(out);
			CHECK(pid > 0 && gone(pid));
		}
		free(pidfile);
	}
	free(out);
	kpar_bucket_result_free(&r);
	kpar_strv_free(&ids);
	teardown();
}

KPAR_TEST(output_limits)
{
	struct kpar_worker_opts o;
	struct kpar_strv ids = KPAR_STRV_INIT;
	struct kpar_bucket_result r;
	const struct kpar_test_result *t;

	setup();
	opts(&o);
	kpar_strv_push(&ids, "big-pass.sh");
	kpar_strv_push(&ids, "big-fail.sh");
	CHECK_OK(kpar_worker_run(&o, &ids, &r));
	t = find(&r, "big-pass.sh");
	CHECK(t && t->status == KPAR_PASS);
	CHECK(t && t->output_len <= 4096 + 64 && t->output_len >= 4096);
	CHECK(output_has(t, "bytes trimmed ...]"));
	CHECK(output_has(t, "pass line 1999 of padding"));
	CHECK(!output_has(t, "pass line 0 "));
	t = find(&r, "big-fail.sh");
	CHECK(t && t->status == KPAR_FAIL);
	CHECK(t && t->output_len <= 256 * 1024 + 64 && t->output_len >= 256 * 1024);
	CHECK(t && t->output_len > 11 && memcmp(t->output, "FIRST-LINE\n", 11) == 0);
	CHECK(t && t->output_len > 11 &&
	      memcmp(t->output + t->output_len - 10, "LAST-LINE\n", 10) == 0);
	CHECK(output_has(t, "bytes trimmed ...]"));
	kpar_bucket_result_free(&r);

	/* Smaller limits are honoured. */
	o.pass_output_max = 100;
	o.fail_output_max = 1000;
	CHECK_OK(kpar_worker_run(&o, &ids, &r));
	t = find(&r, "big-pass.sh");
	CHECK(t && t->output_len <= 100 + 64);
	t = find(&r, "big-fail.sh");
	CHECK(t && t->output_len <= 1000 + 64 && output_has(t, "FIRST-LINE") &&
	      output_has(t, "LAST-LINE"));
	kpar_bucket_result_free(&r);
	kpar_strv_free(&ids);
	teardown();
}

KPAR_TEST(retries)
{
	struct kpar_worker_opts o;
	struct kpar_strv ids = KPAR_STRV_INIT;
	struct kpar_bucket_result r;
	const struct kpar_test_result *t;

	setup();
	opts(&o);
	kpar_strv_push(&ids, "flaky.sh");
	kpar_strv_push(&ids, "fail.sh");
	kpar_strv_push(&ids, "pass.sh");
	kpar_strv_push(&ids, "skip.sh");

	/* Without retries the flaky test simply fails. */
	CHECK_OK(kpar_worker_run(&o, &ids, &r));
	t = find(&r, "flaky.sh");
	CHECK(t && t->status == KPAR_FAIL && t->attempts == 1);
	kpar_bucket_result_free(&r);

	script("flaky.sh", "#!/bin/sh\nf=\"$KPAR_WORKDIR/flaky.count\"\n"
	       "n=$(cat \"$f\" 2>/dev/null || echo 0); n=$((n+1)); echo $n > \"$f\"\n"
	       "echo \"attempt $n env $KPAR_TEST_ATTEMPT\"\n[ $n -ge 2 ]\n", 0755);
	{
		char *count = kpar_fs_join(workdir, "flaky.count");
		unlink(count);
		free(count);
	}
	o.retries = 2;
	CHECK_OK(kpar_worker_run(&o, &ids, &r));
	t = find(&r, "flaky.sh");
	CHECK(t && t->status == KPAR_FLAKY && t->attempts == 2 && t->exit_code == 0);
	/* Both attempts' output: the failure is not hidden. */
	CHECK(output_has(t, "attempt 1 env 1"));
	CHECK(output_has(t, "attempt 2 env 2"));
	CHECK(output_has(t, "[kpar: attempt 2 of 3 passed"));
	t = find(&r, "fail.sh");
	CHECK(t && t->status == KPAR_FAIL && t->attempts == 3);
	CHECK(output_has(t, "[kpar: attempt 3 of 3]"));
	t = find(&r, "pass.sh");
	CHECK(t && t->status == KPAR_PASS && t->attempts == 1);
	t = find(&r, "skip.sh");
	CHECK(t && t->status == KPAR_SKIP && t->attempts == 1);
	kpar_bucket_result_free(&r);
	kpar_strv_free(&ids);
	teardown();
}

/* The tap protocol: the verdict is prove's, read from the whole output
 * (not the trimmed capture), kpar's errors stay errors, a retry's subtests
 * are the last attempt's, and the harness variables are set for tap only. */
KPAR_TEST(tap_protocol)
{
	struct kpar_worker_opts o;
	struct kpar_strv ids = KPAR_STRV_INIT;
	struct kpar_bucket_result r;
	const struct kpar_test_result *t;

	setup();
	script("t/notok.t", "#!/bin/sh\necho 1..2\necho ok 1\necho 'not ok 2 - b'\n", 0755);
	script("t/skip.t", "#!/bin/sh\necho '1..0 # SKIP no db'\n", 0755);
	/* 1.5 MB of passing lines, then the failure: far beyond what is kept */
	script("t/long.t", "#!/bin/sh\necho 1..30001\ni=0\nwhile [ $i -lt 30000 ]; do "
	       "i=$((i+1)); echo \"ok $i - a line long enough to fill the capture\"; done\n"
	       "echo 'not ok 30001 - last'\n", 0755);
	script("t/hard.t", "#!/bin/sh\necho 1..1\necho ok 1\nexit 99\n", 0755);
	script("t/harness.t", "#!/bin/sh\necho 1..1\n[ \"$HARNESS_ACTIVE\" = 1 ] && "
	       "[ -n \"$HARNESS_VERSION\" ] && echo ok 1 || echo not ok 1\n", 0755);
	script("t/flaky.t", "#!/bin/sh\nf=\"$KPAR_WORKDIR/flaky.count\"\n"
	       "n=$(cat \"$f\" 2>/dev/null || echo 0); n=$((n+1)); echo $n > \"$f\"\n"
	       "echo 1..1\nif [ $n -ge 2 ]; then echo 'ok 1 - now'; else echo 'not ok 1 - first'; fi\n",
	       0755);
	script("t/noharness.sh", "#!/bin/sh\n[ -z \"$HARNESS_ACTIVE\" ]\n", 0755);
	opts(&o);
	o.protocol = KPAR_PROTO_TAP;
	o.retries = 1;
	kpar_strv_push(&ids, "t/notok.t");
	kpar_strv_push(&ids, "t/skip.t");
	kpar_strv_push(&ids, "t/long.t");
	kpar_strv_push(&ids, "t/hard.t");
	kpar_strv_push(&ids, "t/harness.t");
	kpar_strv_push(&ids, "t/flaky.t");
	CHECK_OK(kpar_worker_run(&o, &ids, &r));
	t = find(&r, "t/notok.t");
	CHECK(t && t->status == KPAR_FAIL && t->exit_code == 0 && t->nsubtests == 2);
	CHECK(t && t->note && strcmp(t->note, "Failed test: 2") == 0);
	CHECK(output_has(t, "[kpar: TAP: Failed test: 2]"));
	t = find(&r, "t/skip.t");
	CHECK(t && t->status == KPAR_SKIP && t->note && strcmp(t->note, "no db") == 0);
	t = find(&r, "t/long.t");
	CHECK(t && t->status == KPAR_FAIL && t->nsubtests == 30001);
	CHECK(t && t->note && strcmp(t->note, "Failed test: 30001") == 0);
	CHECK(t && t->output_len < 300u << 10);
	t = find(&r, "t/hard.t");
	CHECK(t && t->status == KPAR_ERROR && t->attempts == 1);
	t = find(&r, "t/harness.t");
	CHECK(t && t->status == KPAR_PASS);
	t = find(&r, "t/flaky.t");
	CHECK(t && t->status == KPAR_FLAKY && t->attempts == 2);
	CHECK(t && t->nsubtests == 1 && t->subtests[0].status == KPAR_SUB_PASS &&
	      strcmp(t->subtests[0].name, "now") == 0);
	CHECK(t && t->note == NULL);
	kpar_bucket_result_free(&r);

	/* the exit protocol: no harness variables, even inherited ones */
	kpar_strv_free(&ids);
	kpar_strv_push(&ids, "t/noharness.sh");
	kpar_strv_push(&ids, "t/notok.t");
	setenv("HARNESS_ACTIVE", "1", 1);
	o.protocol = KPAR_PROTO_EXIT;
	CHECK_OK(kpar_worker_run(&o, &ids, &r));
	unsetenv("HARNESS_ACTIVE");
	t = find(&r, "t/noharness.sh");
	CHECK(t && t->status == KPAR_PASS);
	t = find(&r, "t/notok.t");
	CHECK(t && t->status == KPAR_PASS && t->nsubtests == 0);
	kpar_bucket_result_free(&r);
	kpar_strv_free(&ids);
	teardown();
}

/* automake's XFAIL_TESTS and DISABLE_HARD_ERRORS, as its test-driver
 * judges: an expected failure's failure is XFAIL (not retried), its pass
 * XPASS (a failure, not retried either: a rerun would only hide it); a
 * crash or a test that cannot start stays an error; without hard errors
 * exit 99 is a failure (XFAIL when expected). */
KPAR_TEST(automake_verdicts)
{
	struct kpar_worker_opts o;
	struct kpar_strv ids = KPAR_STRV_INIT;
	struct kpar_bucket_result r;
	const struct kpar_test_result *t;

	setup();
	opts(&o);
	kpar_strv_push(&ids, "pass.sh");
	kpar_strv_push(&ids, "fail.sh");
	kpar_strv_push(&ids, "three.sh");
	kpar_strv_push(&ids, "hard.sh");
	kpar_strv_push(&ids, "segv.sh");
	kpar_strv_push(&ids, "missing.sh");
	kpar_strv_push(&ids, "skip.sh");
	/* "xfail.sh" names another test than fail.sh: whole words only */
	o.xfail_tests = " xfail.sh\tpass.sh three.sh\nsegv.sh missing.sh skip.sh ";
	o.retries = 2;
	CHECK_OK(kpar_worker_run(&o, &ids, &r));
	t = find(&r, "pass.sh");
	CHECK(t && t->status == KPAR_XPASS && t->exit_code == 0 && t->attempts == 1);
	t = find(&r, "fail.sh");
	CHECK(t && t->status == KPAR_FAIL && t->attempts == 3);
	t = find(&r, "three.sh");
	CHECK(t && t->status == KPAR_XFAIL && t->exit_code == 3 && t->attempts == 1);
	t = find(&r, "hard.sh");
	CHECK(t && t->status == KPAR_ERROR && t->exit_code == 99);
	t = find(&r, "segv.sh");
	CHECK(t && t->status == KPAR_ERROR && t->exit_code == -1);
	t = find(&r, "missing.sh");
	CHECK(t && t->status == KPAR_ERROR && t->exit_code == 127);
	t = find(&r, "skip.sh");
	CHECK(t && t->status == KPAR_SKIP);
	kpar_bucket_result_free(&r);

	o.hard_errors = 0;
	o.xfail_tests = NULL;
	CHECK_OK(kpar_worker_run(&o, &ids, &r));
	t = find(&r, "hard.sh");
	CHECK(t && t->status == KPAR_FAIL && t->exit_code == 99 && t->attempts == 1);
	t = find(&r, "segv.sh");
	CHECK(t && t->status == KPAR_ERROR);
	t = find(&r, "pass.sh");
	CHECK(t && t->status == KPAR_PASS);
	kpar_bucket_result_free(&r);
	o.xfail_tests = "hard.sh";
	CHECK_OK(kpar_worker_run(&o, &ids, &r));
	t = find(&r, "hard.sh");
	CHECK(t && t->status == KPAR_XFAIL && t->exit_code == 99);
	kpar_bucket_result_free(&r);

	CHECK_STR(kpar_status_name(KPAR_XFAIL), "xfail");
	CHECK_STR(kpar_status_name(KPAR_XPASS), "xpass");
	CHECK_INT(kpar_status_parse("xpass"), KPAR_XPASS);
	kpar_strv_free(&ids);
	teardown();
}

/* What no rerun can fix is not retried: a hard error, a test that cannot
 * start (exec failure, or the shell's 126/127); a timeout only when asked
 * (issue 9 item 7). */
KPAR_TEST(retry_policy)
{
	struct kpar_worker_opts o;
	struct kpar_strv ids = KPAR_STRV_INIT;
	struct kpar_bucket_result r;
	const struct kpar_test_result *t;

	setup();
	opts(&o);
	o.retries = 2;
	o.timeout = 0.3;
	o.kill_grace = 0.3;
	ids_of(&ids, (const char *const[]){ "hard.sh", "missing.sh", "noexec.sh", "slow.sh",
					    "fail.sh", "segv.sh", NULL });
	CHECK_OK(kpar_worker_run(&o, &ids, &r));
	t = find(&r, "hard.sh");
	CHECK(t && t->status == KPAR_ERROR && t->attempts == 1);
	t = find(&r, "missing.sh");
	CHECK(t && t->status == KPAR_ERROR && t->attempts == 1);
	t = find(&r, "noexec.sh");
	CHECK(t && t->status == KPAR_ERROR && t->attempts == 1);
	t = find(&r, "slow.sh");
	CHECK(t && t->status == KPAR_ERROR && t->attempts == 1);
	/* a failure and a crash may be flaky: retried */
	t = find(&r, "fail.sh");
	CHECK(t && t->status == KPAR_FAIL && t->attempts == 3);
	t = find(&r, "segv.sh");
	CHECK(t && t->status == KPAR_ERROR && t->attempts == 3);
	kpar_bucket_result_free(&r);
	kpar_strv_free(&ids);

	o.retry_timeouts = 1;
	kpar_strv_push(&ids, "slow.sh");
	CHECK_OK(kpar_worker_run(&o, &ids, &r));
	t = find(&r, "slow.sh");
	CHECK(t && t->status == KPAR_ERROR && t->attempts == 3);
	kpar_bucket_result_free(&r);
	o.retry_timeouts = 0;

	/* through a run command: the shell's "not found" */
	o.run_cmd = "./no-such-runner";
	CHECK_OK(kpar_worker_run(&o, &ids, &r));
	t = find(&r, "slow.sh");
	CHECK(t && t->exit_code == 127 && t->attempts == 1);
	kpar_bucket_result_free(&r);

	/* batch: a hard error and a timeout of the command itself */
	o.mode = KPAR_MODE_BATCH;
	o.run_cmd = "./hard.sh";
	CHECK_OK(kpar_worker_run(&o, &ids, &r));
	t = find(&r, "slow.sh");
	CHECK(t && t->status == KPAR_ERROR && t->attempts == 1);
	kpar_bucket_result_free(&r);
	o.run_cmd = "./slow.sh";
	CHECK_OK(kpar_worker_run(&o, &ids, &r));
	t = find(&r, "slow.sh");
	CHECK(t && t->status == KPAR_ERROR && t->attempts == 1);
	kpar_bucket_result_free(&r);
	o.run_cmd = "./fail.sh";
	CHECK_OK(kpar_worker_run(&o, &ids, &r));
	t = find(&r, "slow.sh");
	CHECK(t && t->status == KPAR_FAIL && t->attempts == 3);
	kpar_bucket_result_free(&r);
	kpar_strv_free(&ids);
	teardown();
}

static const char *const odd_ids[] = {
	"with space",
	"quote'single",
	"quote\"double",
	"dollar$HOME$(touch pwned)",
	"semi;colon;touch pwned",
	"back\\slash",
	"star*glob?",
	"-dash-first",
	"caf\xc3\xa9 \xe6\xb5\x8b\xe8\xaf\x95",
	"`touch pwned`",
	NULL
};

KPAR_TEST(odd_ids_run_cmd)
{
	struct kpar_worker_opts o;
	struct kpar_strv ids = KPAR_STRV_INIT;
	struct kpar_bucket_result r;
	size_t i;

	setup();
	opts(&o);
	o.run_cmd = "printf '<%s>\\n'";
	ids_of(&ids, odd_ids);
	CHECK_OK(kpar_worker_run(&o, &ids, &r));
	CHECK_INT(r.ntests, ids.n);
	for (i = 0; i < ids.n && i < r.ntests; i++) {
		char *want = kpar_xasprintf("<%s>\n", ids.v[i]);
		CHECK_STR(r.tests[i].id, ids.v[i]);
		CHECK_INT(r.tests[i].status, KPAR_PASS);
		CHECK(r.tests[i].output && strcmp(r.tests[i].output, want) == 0);
		free(want);
	}
	{
		char *pwned = kpar_fs_join(root, "pwned");
		CHECK(!kpar_fs_exists(pwned));
		free(pwned);
	}
	kpar_bucket_result_free(&r);
	kpar_strv_free(&ids);
	teardown();
}

KPAR_TEST(odd_ids_exec)
{
	struct kpar_worker_opts o;
	struct kpar_strv ids = KPAR_STRV_INIT;
	struct kpar_bucket_result r;
	size_t i;

	setup();
	opts(&o);
	for (i = 0; odd_ids[i]; i++) {
		script(odd_ids[i], "#!/bin/sh\nprintf '[%s]' \"$KPAR_TEST_ID\"\n", 0755);
		kpar_strv_push(&ids, odd_ids[i]);
	}
	CHECK_OK(kpar_worker_run(&o, &ids, &r));
	CHECK_INT(r.ntests, ids.n);
	for (i = 0; i < ids.n && i < r.ntests; i++) {
		char *want = kpar_xasprintf("[%s]", ids.v[i]);
		CHECK_INT(r.tests[i].status, KPAR_PASS);
		CHECK(r.tests[i].output && strcmp(r.tests[i].output, want) == 0);
		free(want);
	}
	kpar_bucket_result_free(&r);
	kpar_strv_free(&ids);
	teardown();
}

/* A batch runner: writes JUnit for its arguments; "b" fails, "c" is left
 * out of the XML, an extra testcase is added; exits 1. */
static const char batch_runner[] =
	"#!/bin/sh\n"
	"echo \"batch run with $# tests\"\n"
	"{\n"
	"echo '<?xml version=\"1.0\"?>'\n"
	"echo '<testsuites><testsuite name=\"s\">'\n"
	"for t in \"$@\"; do\n"
	"  case \"$t\" in\n"
	"  b) echo '<testcase name=\"b\" classname=\"suite\" time=\"0.5\"><failure message=\"b broke\">trace</failure><system-out>b out</system-out></testcase>' ;;\n"
	"  c) ;;\n"
	"  s) echo '<testcase name=\"s\" time=\"0.1\"><skipped/></testcase>' ;;\n"
	"  *) echo \"<testcase name=\\\"$t\\\" time=\\\"1.25\\\"/>\" ;;\n"
	"  esac\n"
	"done\n"
	"echo '<testcase name=\"extra\" time=\"0\"><error message=\"boom\"/></testcase>'\n"
	"echo '</testsuite></testsuites>'\n"
	"} > \"$KPAR_JUNIT\"\n"
	"exit 1\n";

KPAR_TEST(batch_junit)
{
	struct kpar_worker_opts o;
	struct kpar_strv ids = KPAR_STRV_INIT;
	struct kpar_bucket_result r;
	const struct kpar_test_result *t;

	setup();
	script("runner.sh", batch_runner, 0755);
	opts(&o);
	o.mode = KPAR_MODE_BATCH;
	o.run_cmd = "./runner.sh";
	kpar_strv_push(&ids, "a");
	kpar_strv_push(&ids, "b");
	kpar_strv_push(&ids, "c");
	kpar_strv_push(&ids, "s");
	CHECK_OK(kpar_worker_run(&o, &ids, &r));
	CHECK_INT(r.ntests, 5);
	t = find(&r, "a");
	CHECK(t && t->status == KPAR_PASS && t->seconds == 1.25);
	t = find(&r, "b");   /* matched through "suite.b" */
	CHECK(t && t->status == KPAR_FAIL && t->seconds == 0.5);
	CHECK(output_has(t, "b broke") && output_has(t, "trace") && output_has(t, "b out"));
	t = find(&r, "c");   /* missing from the XML: the command's status */
	CHECK(t && t->status == KPAR_FAIL && t->exit_code == 1);
	CHECK(output_has(t, "batch run with 4 tests"));
	t = find(&r, "s");
	CHECK(t && t->status == KPAR_SKIP);
	t = find(&r, "extra");
	CHECK(t && t->status == KPAR_ERROR && output_has(t, "boom"));
	kpar_bucket_result_free(&r);

	/* Malformed XML: every test errors, naming the file and line. */
	script("runner.sh", "#!/bin/sh\nprintf '<testsuite>\\n<testcase name=\"a\">\\n' > "
	       "\"$KPAR_JUNIT\"\nexit 0\n", 0755);
	CHECK_OK(kpar_worker_run(&o, &ids, &r));
	CHECK_INT(r.ntests, 4);
	t = find(&r, "a");
	CHECK(t && t->status == KPAR_ERROR && output_has(t, "junit.xml': line 3"));
	t = find(&r, "c");
	CHECK(t && t->status == KPAR_ERROR && output_has(t, "batch run"));
	kpar_bucket_result_free(&r);

	/* No XML at all: everything gets the command's status; odd ids are
	 * passed as separate, unparsed arguments. */
	script("runner.sh", "#!/bin/sh\nfor a in \"$@\"; do printf '{%s}' \"$a\"; done\n"
	       "exit 77\n", 0755);
	kpar_strv_free(&ids);
	ids_of(&ids, odd_ids);
	CHECK_OK(kpar_worker_run(&o, &ids, &r));
	CHECK_INT(r.ntests, ids.n);
	if (r.ntests == ids.n) {
		struct kpar_buf want = KPAR_BUF_INIT;
		size_t i;

		for (i = 0; i < ids.n; i++) {
			kpar_buf_printf(&want, "{%s}", ids.v[i]);
			CHECK_INT(r.tests[i].status, KPAR_SKIP);
			CHECK_INT(r.tests[i].exit_code, 77);
		}
		CHECK(r.tests[0].output && strcmp(r.tests[0].output, want.data) == 0);
		CHECK(output_has(&r.tests[1], "output is with test 'with space'"));
		kpar_buf_free(&want);
	}
	kpar_bucket_result_free(&r);
	kpar_strv_free(&ids);
	teardown();
}

KPAR_TEST(batch_retries)
{
	struct kpar_worker_opts o;
	struct kpar_strv ids = KPAR_STRV_INIT;
	struct kpar_bucket_result r;
	const struct kpar_test_result *t;

	setup();
	/* "x" fails on the first run only; "y" always fails; both exit 1. */
	script("runner.sh", "#!/bin/sh\nf=\"$KPAR_WORKDIR/n\"\n"
	       "n=$(cat \"$f\" 2>/dev/null || echo 0); n=$((n+1)); echo $n > \"$f\"\n"
	       "echo \"run $n: $*\"\nst=0\n{ echo '<testsuite>'\n"
	       "for t in \"$@\"; do\n"
	       "  if [ \"$t\" = y ] || { [ \"$t\" = x ] && [ $n = 1 ]; }; then\n"
	       "    echo \"<testcase name='$t'><failure message='run $n'/></testcase>\"; st=1\n"
	       "  else echo \"<testcase name='$t'/>\"; fi\n"
	       "done\necho '</testsuite>'; } > \"$KPAR_JUNIT\"\nexit $st\n", 0755);
	opts(&o);
	o.mode = KPAR_MODE_BATCH;
	o.run_cmd = "./runner.sh";
	o.retries = 2;
	kpar_strv_push(&ids, "w");
	kpar_strv_push(&ids, "x");
	kpar_strv_push(&ids, "y");
	CHECK_OK(kpar_worker_run(&o, &ids, &r));
	CHECK_INT(r.ntests, 3);
	t = find(&r, "w");
	CHECK(t && t->status == KPAR_PASS && t->attempts == 1);
	t = find(&r, "x");
	CHECK(t && t->status == KPAR_FLAKY && t->attempts == 2);
	CHECK(output_has(t, "run 1"));
	t = find(&r, "y");
	CHECK(t && t->status == KPAR_FAIL && t->attempts == 3 && output_has(t, "run 3"));
	kpar_bucket_result_free(&r);
	kpar_strv_free(&ids);
	teardown();
}

KPAR_TEST(bad_setup)
{
	struct kpar_worker_opts o;
	struct kpar_strv ids = KPAR_STRV_INIT;
	struct kpar_bucket_result r;

	setup();
	opts(&o);
	kpar_strv_push(&ids, "pass.sh");
	o.mode = KPAR_MODE_BATCH;
	CHECK_INT(kpar_worker_run(&o, &ids, &r), KPAR_EINVAL);
	CHECK(strstr(kpar_error_last(), "run command") != NULL);
	kpar_bucket_result_free(&r);
	o.mode = KPAR_MODE_EACH;
	o.root = "/nonexistent/kpar-root";
	CHECK_INT(kpar_worker_run(&o, &ids, &r), KPAR_ENOTFOUND);
	CHECK(strstr(kpar_error_last(), "/nonexistent/kpar-root") != NULL);
	kpar_bucket_result_free(&r);
	o.root = root;
	kpar_strv_push(&ids, "a\nb");
	CHECK_INT(kpar_worker_run(&o, &ids, &r), KPAR_EINVAL);
	kpar_bucket_result_free(&r);
	kpar_strv_free(&ids);
	/* An empty bucket is fine. */
	CHECK_OK(kpar_worker_run(&o, &ids, &r));
	CHECK_INT(r.ntests, 0);
	kpar_bucket_result_free(&r);
	teardown();
}

static void interrupt_with(int sig)
{
	struct kpar_worker_opts o;
	struct kpar_strv ids = KPAR_STRV_INIT;
	struct kpar_bucket_result r;
	struct sigaction before, after;
	char *body, *marker;

	setup();
	opts(&o);
	o.kill_grace = 0.5;
	/* The test signals its parent (the worker) and then sleeps: the
	 * worker must stop it, skip the rest, and report KPAR_EINTR. */
	body = kpar_xasprintf("#!/bin/sh\necho $$ > \"$KPAR_WORKDIR/child\"\nkill -%d $PPID\n"
			      "exec sleep 600\n", sig);
	script("interrupt.sh", body, 0755);
	free(body);
	script("after.sh", "#!/bin/sh\ntouch \"$KPAR_WORKDIR/after-ran\"\n", 0755);
	kpar_strv_push(&ids, "pass.sh");
	kpar_strv_push(&ids, "interrupt.sh");
	kpar_strv_push(&ids, "after.sh");
	sigaction(sig, NULL, &before);
	CHECK_INT(kpar_worker_run(&o, &ids, &r), KPAR_EINTR);
	CHECK(strstr(kpar_error_last(), "interrupted") != NULL);
	CHECK_INT(r.ntests, 1);
	CHECK(r.ntests >= 1 && strcmp(r.tests[0].id, "pass.sh") == 0);
	marker = kpar_fs_join(workdir, "after-ran");
	CHECK(!kpar_fs_exists(marker));
	free(marker);
	{
		char *pidfile = kpar_fs_join(workdir, "child"), *pid = NULL;
		if (kpar_fs_read_all(pidfile, &pid, NULL) == 0) {
			CHECK(gone((pid_t)atoi(pid)));
		} else {
			CHECK(!"child pid file missing");
		}
		free(pid);
		free(pidfile);
	}
	/* The handler in place before is back. */
	sigaction(sig, NULL, &after);
	CHECK(before.sa_handler == after.sa_handler);
	CHECK(kpar_proc_interrupted() == sig);
	kpar_bucket_result_free(&r);
	kpar_strv_free(&ids);
	teardown();
}

KPAR_TEST(interrupt_int)
{
	interrupt_with(SIGINT);
}

KPAR_TEST(interrupt_term)
{
	interrupt_with(SIGTERM);
}

KPAR_TEST(capture)
{
	struct kpar_capture c;
	struct kpar_buf b = KPAR_BUF_INIT;
	size_t i;

	kpar_capture_init(&c, 4, 6);
	kpar_capture_add(&c, "abc", 3);
	kpar_capture_get(&c, &b, 100, 1);
	CHECK_STR(b.data, "abc");
	kpar_capture_add(&c, "defghij", 7);   /* 10 bytes: all kept */
	kpar_buf_clear(&b);
	kpar_capture_get(&c, &b, 100, 1);
	CHECK_STR(b.data, "abcdefghij");
	for (i = 0; i < 5; i++)
		kpar_capture_add(&c, "0123456789", 10);
	kpar_buf_clear(&b);
	kpar_capture_get(&c, &b, 10, 1);
	CHECK_STR(b.data, "abcd\n[... 51 bytes trimmed ...]\n56789");
	kpar_buf_clear(&b);
	kpar_capture_get(&c, &b, 3, 0);
	CHECK_STR(b.data, "[... 57 bytes trimmed ...]\n789");
	kpar_buf_clear(&b);
	kpar_capture_get(&c, &b, 100, 1);
	CHECK_STR(b.data, "abcd\n[... 50 bytes trimmed ...]\n456789");
	kpar_capture_free(&c);
	kpar_buf_free(&b);
}

KPAR_TEST_MAIN(KPAR_CASE(defaults), KPAR_CASE(statuses), KPAR_CASE(environment),
	       KPAR_CASE(timeout), KPAR_CASE(stray_processes), KPAR_CASE(output_limits),
	       KPAR_CASE(retries), KPAR_CASE(tap_protocol), KPAR_CASE(retry_policy), KPAR_CASE(automake_verdicts),
	       KPAR_CASE(odd_ids_run_cmd), KPAR_CASE(odd_ids_exec),
	       KPAR_CASE(batch_junit), KPAR_CASE(batch_retries), KPAR_CASE(bad_setup),
	       KPAR_CASE(interrupt_int), KPAR_CASE(interrupt_term), KPAR_CASE(capture))
