/* cmd_worker.c - `kpar worker`: run one bucket and print its result record.
 *
 * The same command runs a bucket locally (the local backend starts one per
 * worker slot) and in a pod (the Job's container command), so it takes its
 * bucket from a file, a directory plus JOB_COMPLETION_INDEX (indexed Jobs),
 * or the command line, and its settings from flags or, through conf.c's
 * table like every kpar command, the KPAR_* variables.
 * stdout carries the record and nothing else, so the pod log is parseable;
 * progress goes to stderr.
 */
#include "config.h"

#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/buf.h"
#include "base/conf.h"
#include "base/error.h"
#include "base/fs.h"
#include "run/junit.h"
#include "run/record.h"
#include "run/testlog.h"
#include "tool/cmds.h"
#include "run/worker.h"

static const char usage_text[] =
	"usage: kpar worker [options] [ID...]\n"
	"\n"
	"Runs one bucket of tests and prints its result record on stdout.\n"
	"\n"
	"  --bucket-file FILE   tests of the bucket, one id per line (empty lines ignored)\n"
	"  --bucket N           bucket number (default: from FILE named test-group-N,\n"
	"                       else $JOB_COMPLETION_INDEX + 1, or the index's\n"
	"                       entry of $KPAR_BUCKET_LIST, comma-separated)\n"
	"  --buckets-dir DIR    read the bucket's tests from DIR/test-group-N\n"
	"  --plan DIGEST        plan the bucket belongs to (copied into the record)\n"
	"  --attempt K          bucket attempt number (default 1)\n"
	"  --root DIR           directory the tests run in (default .)\n"
	"  --workdir DIR        this worker's private directory (TMPDIR, KPAR_WORKDIR)\n"
	"  --run-cmd CMD        command running a test; the id is passed as \"$1\"\n"
	"                       (default $KPAR_RUN_CMD; none: execute the id itself)\n"
	"  --mode each|batch    one process per test, or CMD given every id at once\n"
	"                       (default $KPAR_RUN_MODE or each)\n"
	"  --timeout SECONDS    per test (batch: per bucket); 0 = none ($KPAR_TEST_TIMEOUT)\n"
	"  --retries N          reruns of a failed test; a later pass is flaky ($KPAR_RETRIES);\n"
	"                       never of a hard error (99) or a test that cannot start, and\n"
	"                       of a timed-out test only with $KPAR_RETRY_TIMEOUTS=1\n"
	"  --output FILE        write the record to FILE atomically instead of stdout\n"
	"  --logs DIR           keep each test's whole output in DIR/<id>.log as well\n"
	"                       (the record keeps 4 KiB of a pass, 256 KiB of a failure)\n"
	"  --send-logs          keep each test's whole output in a private directory and\n"
	"                       print it before the record as log frames (a pod does:\n"
	"                       its log is the only way back), failures first, up to\n"
	"                       about 9 MiB in all with the record\n"
	"  --name NAME          worker name in the record (default: the host name)\n"
	"  --progress           print a line per finished test on stderr\n"
	"\n"
	"$KPAR_TEST_PROTOCOL (exit, tap, junit, automake) says what a test reports\n"
	"beyond its exit status: TAP output judged as prove does, JUnit XML it writes\n"
	"to $KPAR_JUNIT, or an automake driver's .trs it writes to $KPAR_TRS; each\n"
	"TAP line, testcase or .trs result is a subtest in the record.\n"
	"\n"
	"       kpar worker --serve [options]\n"
	"\n"
	"Runs buckets as they are asked for, one process for many (the local\n"
	"backend's workers): reads a \"BUCKET ATTEMPT N\" line and N test ids, one\n"
	"a line, on stdin, and answers on stdout with a \"BUCKET LENGTH\" line and\n"
	"the bucket's record of LENGTH bytes; ends at the end of stdin.\n"
	"\n"
	"       kpar worker --decode [--junit OUT] [FILE...]\n"
	"\n"
	"Decodes result records found in FILEs (default or \"-\": stdin; log noise\n"
	"around a record is ignored) and prints each as one line of JSON, or with\n"
	"--junit writes their JUnit XML report to OUT (\"-\": stdout).  A damaged\n"
	"or missing record is an error.\n"
	"\n"
	"Exit status: 0 when the bucket ran (even with failing tests), 2 on error,\n"
	"130 when interrupted.\n";

enum {
	OPT_BUCKET_FILE = 256, OPT_BUCKET, OPT_BUCKETS_DIR, OPT_PLAN, OPT_ATTEMPT, OPT_ROOT,
	OPT_WORKDIR, OPT_RUN_CMD, OPT_MODE, OPT_TIMEOUT, OPT_RETRIES, OPT_OUTPUT, OPT_NAME,
	OPT_PROGRESS, OPT_DECODE, OPT_JUNIT, OPT_SERVE, OPT_LOGS, OPT_SEND_LOGS, OPT_HELP
};

static const struct option long_opts[] = {
	{ "bucket-file", required_argument, NULL, OPT_BUCKET_FILE },
	{ "bucket", required_argument, NULL, OPT_BUCKET },
	{ "buckets-dir", required_argument, NULL, OPT_BUCKETS_DIR },
	{ "plan", required_argument, NULL, OPT_PLAN },
	{ "attempt", required_argument, NULL, OPT_ATTEMPT },
	{ "root", required_argument, NULL, OPT_ROOT },
	{ "workdir", required_argument, NULL, OPT_WORKDIR },
	{ "run-cmd", required_argument, NULL, OPT_RUN_CMD },
	{ "mode", required_argument, NULL, OPT_MODE },
	{ "timeout", required_argument, NULL, OPT_TIMEOUT },
	{ "retries", required_argument, NULL, OPT_RETRIES },
	{ "output", required_argument, NULL, OPT_OUTPUT },
	{ "name", required_argument, NULL, OPT_NAME },
	{ "progress", no_argument, NULL, OPT_PROGRESS },
	{ "decode", no_argument, NULL, OPT_DECODE },
	{ "junit", required_argument, NULL, OPT_JUNIT },
	{ "serve", no_argument, NULL, OPT_SERVE },
	{ "logs", required_argument, NULL, OPT_LOGS },
	{ "send-logs", no_argument, NULL, OPT_SEND_LOGS },
	{ "help", no_argument, NULL, OPT_HELP },
	{ NULL, 0, NULL, 0 }
};

static int parse_int(const char *what, const char *s, long min, long max, int *out)
{
	char *end;
	long v;

	errno = 0;
	v = strtol(s, &end, 10);
	if (!*s || *end || errno || v < min || v > max)
		return kpar_error_set(KPAR_EINVAL, "%s '%s' is not an integer from %ld to %ld",
				      what, s, min, max);
	*out = (int)v;
	return 0;
}

static int parse_seconds(const char *what, const char *s, double *out)
{
	char *end;
	double v;

	errno = 0;
	v = strtod(s, &end);
	if (!*s || *end || errno || !(v >= 0) || v > 1e9)
		return kpar_error_set(KPAR_EINVAL, "%s '%s' is not a number of seconds", what, s);
	*out = v;
	return 0;
}

static int parse_mode(const char *what, const char *s, enum kpar_run_mode *out)
{
	if (strcmp(s, "each") == 0)
		*out = KPAR_MODE_EACH;
	else if (strcmp(s, "batch") == 0)
		*out = KPAR_MODE_BATCH;
	else
		return kpar_error_set(KPAR_EINVAL, "%s '%s' is neither 'each' nor 'batch'", what, s);
	return 0;
}

/* "test-group-N" (any directory) -> N, else 0. */
static int bucket_from_name(const char *path)
{
	const char *base = strrchr(path, '/'), *p;
	int n = 0;

	base = base ? base + 1 : path;
	if (strncmp(base, "test-group-", 11) != 0 || !base[11])
		return 0;
	for (p = base + 11; *p; p++) {
		if (*p < '0' || *p > '9' || n > 100000000)
			return 0;
		n = n * 10 + (*p - '0');
	}
	return n;
}

static int read_bucket_file(const char *path, struct kpar_strv *ids)
{
	char *data, *p, *nl;
	size_t len, lineno = 0;
	int rc;

	if ((rc = kpar_fs_read_all(path, &data, &len)) < 0)
		return kpar_error_prefix(rc, "bucket file");
	if (memchr(data, '\0', len)) {
		free(data);
		return kpar_error_set(KPAR_EINVAL, "bucket file '%s' holds a NUL byte", path);
	}
	for (p = data; p < data + len; p = nl + 1) {
		size_t n;

		lineno++;
		nl = memchr(p, '\n', (size_t)(data + len - p));
		if (!nl)
			nl = data + len;
		n = (size_t)(nl - p);
		if (n > 0 && p[n - 1] == '\r')
			n--;
		if (n > 0)
			kpar_strv_pushn(ids, p, n);
	}
	free(data);
	return 0;
}

static int read_input(const char *path, char **data, size_t *len)
{
	struct kpar_buf b = KPAR_BUF_INIT;
	char chunk[65536];
	size_t n;

	if (strcmp(path, "-") != 0)
		return kpar_fs_read_all(path, data, len);
	while ((n = fread(chunk, 1, sizeof chunk, stdin)) > 0)
		kpar_buf_add(&b, chunk, n);
	if (ferror(stdin)) {
		kpar_buf_free(&b);
		return kpar_error_errno(KPAR_EIO, "cannot read stdin");
	}
	*data = kpar_buf_detach(&b, len);
	return 0;
}

/* kpar worker --decode: show records (for people and for tests). */
static int decode_records(int nfiles, char **files, const char *junit_out)
{
	static char *stdin_only[] = { (char *)"-" };
	struct kpar_bucket_result *recs;
	struct kpar_buf out = KPAR_BUF_INIT;
	int i, n = 0, rc = 0;

	if (nfiles == 0) {
		nfiles = 1;
		files = stdin_only;
	}
	recs = kpar_xcalloc((size_t)nfiles, sizeof *recs);
	for (i = 0; i < nfiles; i++) {
		char *data = NULL;
		size_t len = 0;

		rc = read_input(files[i], &data, &len);
		if (rc == 0)
			rc = kpar_record_decode(data, len, &recs[n]);
		free(data);
		if (rc < 0) {
			kpar_error_prefix(rc, "'%s'", files[i]);
			goto done;
		}
		n++;
	}
	if (junit_out) {
		struct kpar_bucket_result **list = kpar_xcalloc((size_t)n + 1, sizeof *list);
		char *xml = NULL;
		size_t len = 0;
		FILE *f = open_memstream(&xml, &len);

		for (i = 0; i < n; i++)
			list[i] = &recs[i];
		if (!f)
			abort();
		rc = kpar_junit_write(f, "kpar", list, (size_t)n);
		fclose(f);
		free(list);
		if (rc == 0)
			kpar_buf_add(&out, xml, len);
		free(xml);
		if (rc == 0 && strcmp(junit_out, "-") != 0) {
			rc = kpar_fs_write_atomic(junit_out, out.data, out.len);
			kpar_buf_clear(&out);
		}
	} else {
		for (i = 0; i < n; i++) {
			char *json = kpar_record_json(&recs[i]);
			kpar_buf_puts(&out, json);
			kpar_buf_putc(&out, '\n');
			free(json);
		}
	}
	if (rc == 0 && out.len > 0 &&
	    (fwrite(out.data, 1, out.len, stdout) != out.len || fflush(stdout) != 0))
		rc = kpar_error_errno(KPAR_EIO, "cannot write to stdout");
done:
	for (i = 0; i < n; i++)
		kpar_bucket_result_free(&recs[i]);
	free(recs);
	kpar_buf_free(&out);
	return rc;
}

static void progress(const struct kpar_test_result *t, void *payload)
{
	fprintf(stderr, "%s: %-5s %s (%.2fs%s)\n", (const char *)payload,
		kpar_status_name(t->status), t->id, t->seconds,
		t->attempts > 1 ? ", retried" : "");
}

/* The idx-th (0-based) number of a comma-separated bucket list. */
static int bucket_from_list(const char *list, int idx, int *bucket)
{
	const char *p = list;
	int i;

	for (i = 0; i < idx && p; i++)
		if ((p = strchr(p, ',')))
			p++;
	if (p) {
		char *end;
		long b;
		errno = 0;
		b = strtol(p, &end, 10);
		if (!errno && end != p && (*end == ',' || !*end) && b >= 1 && b <= 999999) {
			*bucket = (int)b;
			return 0;
		}
	}
	return kpar_error_set(KPAR_EINVAL, "KPAR_BUCKET_LIST has no bucket number at index %d", idx);
}

/* kpar worker --serve: a worker that outlives its bucket.  Starting a
 * worker (exec, dynamic linking, set-up) costs milliseconds, as much as a
 * short test; fed over a pipe, a local worker pays it once per run, and
 * the local backend can make every test its own bucket.  The tests come
 * with the request and the record goes back over the pipe: a file per
 * bucket costs an inode's creation, more than a short test on a busy file
 * system.  A bucket that cannot be run ends the process with the one-shot
 * worker's status, so the scheduler retries it exactly as it would a
 * one-shot worker's. */
static int serve(struct kpar_worker_opts *o)
{
	char *line = NULL;
	size_t cap = 0;
	ssize_t n;
	int rc = 0;

	while ((n = getline(&line, &cap, stdin)) > 0) {
		struct kpar_strv ids = KPAR_STRV_INIT;
		struct kpar_bucket_result res = { 0 };
		struct kpar_buf rec = KPAR_BUF_INIT;
		char head[64];
		int bucket, attempt, ntests, i, len;

		if (sscanf(line, "%d %d %d", &bucket, &attempt, &ntests) != 3 || bucket < 1 ||
		    attempt < 1 || ntests < 0) {
			rc = kpar_error_set(KPAR_EINVAL, "--serve: bad request '%.60s' on stdin", line);
			break;
		}
		for (i = 0; i < ntests && (n = getline(&line, &cap, stdin)) > 0; i++)
			kpar_strv_pushn(&ids, line, line[n - 1] == '\n' ? (size_t)n - 1 : (size_t)n);
		if (i < ntests) {
			kpar_strv_free(&ids);
			rc = kpar_error_set(KPAR_EINVAL, "--serve: bucket %d: %d of %d tests on stdin",
					    bucket, i, ntests);
			break;
		}
		o->bucket = bucket;
		o->attempt = attempt;
		if ((rc = kpar_worker_run(o, &ids, &res)) == 0 &&
		    (rc = kpar_record_encode(&res, &rec)) == 0) {
			len = snprintf(head, sizeof head, "%d %zu\n", bucket, rec.len);
			if (kpar_fs_write_fully(1, head, (size_t)len) < 0 ||
			    kpar_fs_write_fully(1, rec.data, rec.len) < 0)
				rc = kpar_error_errno(KPAR_EIO, "--serve: cannot reply on stdout");
		}
		kpar_bucket_result_free(&res);
		kpar_buf_free(&rec);
		kpar_strv_free(&ids);
		if (rc < 0)
			break;
	}
	if (rc == 0 && ferror(stdin))
		rc = kpar_error_errno(KPAR_EIO, "--serve: cannot read stdin");
	free(line);
	return rc;
}

/* The kubelet rotates a container log at 10 MiB (containerLogMaxSize) and
 * serves only the newest file: frames and record stay under this, with
 * room for what the worker says on stderr. */
#define POD_LOG_BUDGET (9u << 20)

/* A new directory for --send-logs under workdir (or $TMPDIR, /tmp). */
static int private_dir(const char *workdir, char **out)
{
	const char *base = workdir && *workdir ? workdir : getenv("TMPDIR");
	char *dir = kpar_xasprintf("%s/kpar-logs.XXXXXX", base && *base ? base : "/tmp");
	int rc;

	if (!mkdtemp(dir)) {
		rc = kpar_error_errno(KPAR_EIO, "--send-logs: cannot create '%s'", dir);
		free(dir);
		return rc;
	}
	*out = dir;
	return 0;
}

int kpar_cmd_worker(int argc, char **argv)
{
	struct kpar_worker_opts o;
	struct kpar_conf conf;
	struct kpar_strv ids = KPAR_STRV_INIT;
	struct kpar_bucket_result res = { 0 };
	struct kpar_buf rec = KPAR_BUF_INIT;
	const char *bucket_file = NULL, *buckets_dir = NULL, *output = NULL, *env;
	const char *junit_out = NULL;
	char *dir_file = NULL, *label = NULL, *sent_dir = NULL;
	int bucket = 0, show_progress = 0, decode = 0, serving = 0, send_logs = 0, c, rc = 0;

	kpar_worker_opts_init(&o);
	/* KPAR_RUN_CMD, KPAR_RUN_MODE, KPAR_TEST_TIMEOUT, KPAR_RETRIES (the
	 * table bounds them); the flags below override them */
	if ((rc = kpar_conf_load(&conf)) < 0) {
		kpar_conf_free(&conf);
		return kpar_tool_fail("worker", rc);
	}
	o.run_cmd = *conf.run_cmd ? conf.run_cmd : NULL;
	o.mode = strcmp(conf.run_mode, "batch") == 0 ? KPAR_MODE_BATCH : KPAR_MODE_EACH;
	/* kpar_conf_load refused any other name */
	o.protocol = (enum kpar_protocol)kpar_protocol_parse(conf.test_protocol);
	o.timeout = conf.test_timeout;
	o.retries = (int)conf.retries;
	o.retry_timeouts = conf.retry_timeouts;
	o.xfail_tests = conf.xfail_tests;
	o.hard_errors = conf.hard_errors;

	optind = 1;
	opterr = 0;
	while ((c = getopt_long(argc, argv, "h", long_opts, NULL)) != -1) {
		switch (c) {
		case OPT_BUCKET_FILE: bucket_file = optarg; break;
		case OPT_BUCKET: rc = parse_int("--bucket", optarg, 1, 1000000, &bucket); break;
		case OPT_BUCKETS_DIR: buckets_dir = optarg; break;
		case OPT_PLAN: o.plan = optarg; break;
		case OPT_ATTEMPT: rc = parse_int("--attempt", optarg, 1, 1000000, &o.attempt); break;
		case OPT_ROOT: o.root = optarg; break;
		case OPT_WORKDIR: o.workdir = optarg; break;
		case OPT_LOGS: o.log_dir = optarg; break;
		case OPT_SEND_LOGS: send_logs = 1; break;
		case OPT_RUN_CMD: o.run_cmd = optarg; break;
		case OPT_MODE: rc = parse_mode("--mode", optarg, &o.mode); break;
		case OPT_TIMEOUT: rc = parse_seconds("--timeout", optarg, &o.timeout); break;
		case OPT_RETRIES: rc = parse_int("--retries", optarg, 0, 100, &o.retries); break;
		case OPT_OUTPUT: output = optarg; break;
		case OPT_NAME: o.worker_name = optarg; break;
		case OPT_PROGRESS: show_progress = 1; break;
		case OPT_DECODE: decode = 1; break;
		case OPT_JUNIT: junit_out = optarg; break;
		case OPT_SERVE: serving = 1; break;
		case 'h':
		case OPT_HELP:
			fputs(usage_text, stdout);
			rc = 0;
			goto fail;
		default:
			if (optopt >= OPT_BUCKET_FILE && optopt <= OPT_HELP)
				rc = kpar_error_set(KPAR_EINVAL, "option '%s' needs a value",
						    argv[optind - 1]);
			else
				rc = kpar_error_set(KPAR_EINVAL, "unknown option '%s' "
						    "(see kpar worker --help)", argv[optind - 1]);
			break;
		}
		if (rc < 0)
			goto fail;
	}

	if (decode) {
		rc = decode_records(argc - optind, argv + optind, junit_out);
		goto fail;
	}
	if (junit_out) {
		rc = kpar_error_set(KPAR_EINVAL, "--junit goes with --decode");
		goto fail;
	}
	if (serving) {
		rc = serve(&o);
		goto fail;
	}

	/* Which bucket: flag, then the file's name, then the indexed Job. */
	if (bucket == 0 && bucket_file)
		bucket = bucket_from_name(bucket_file);
	if (bucket == 0 && (env = getenv("JOB_COMPLETION_INDEX")) && *env) {
		int idx;

		if ((rc = parse_int("JOB_COMPLETION_INDEX", env, 0, 999999, &idx)) < 0)
			goto fail;
		bucket = idx + 1;
		/* A Job that reruns some buckets only lists them: index i runs
		 * the i-th (k8s/job.c), so one pod template serves any set. */
		if ((env = getenv("KPAR_BUCKET_LIST")) && *env &&
		    (rc = bucket_from_list(env, idx, &bucket)) < 0)
			goto fail;
	}
	if (buckets_dir) {
		if (bucket == 0) {
			rc = kpar_error_set(KPAR_EINVAL, "--buckets-dir '%s' needs --bucket N or "
					    "JOB_COMPLETION_INDEX", buckets_dir);
			goto fail;
		}
		dir_file = kpar_xasprintf("%s/test-group-%d", buckets_dir, bucket);
		if ((rc = read_bucket_file(dir_file, &ids)) < 0)
			goto fail;
	}
	if (bucket_file && (rc = read_bucket_file(bucket_file, &ids)) < 0)
		goto fail;
	for (; optind < argc; optind++) {
		if (!argv[optind][0]) {
			rc = kpar_error_set(KPAR_EINVAL, "empty test id on the command line");
			goto fail;
		}
		kpar_strv_push(&ids, argv[optind]);
	}
	if (!bucket_file && !buckets_dir && ids.n == 0) {
		rc = kpar_error_set(KPAR_EINVAL, "no tests: give --bucket-file, --buckets-dir "
				    "or test ids (see kpar worker --help)");
		goto fail;
	}
	o.bucket = bucket > 0 ? bucket : 1;
	if (show_progress) {
		label = kpar_xasprintf("kpar worker: bucket %d", o.bucket);
		o.on_test = progress;
		o.payload = label;
	}

	if (send_logs && !o.log_dir) {
		/* a read-only file system costs the whole outputs, not the run */
		if (private_dir(o.workdir, &sent_dir) < 0) {
			fprintf(stderr, "kpar: worker: whole outputs are not sent: %s\n", kpar_error_last());
			kpar_error_clear();
			send_logs = 0;
		}
		o.log_dir = sent_dir;
	}
	rc = kpar_worker_run(&o, &ids, &res);
	if (rc < 0)
		goto fail;
	if ((rc = kpar_record_encode(&res, &rec)) < 0)
		goto fail;
	if (send_logs) {
		struct kpar_buf both = KPAR_BUF_INIT;
		size_t left;

		/* frames first: the record, the part that must arrive, ends the log */
		left = kpar_testlog_frames(o.log_dir, &res,
					   rec.len < POD_LOG_BUDGET ? POD_LOG_BUDGET - rec.len : 0, &both);
		if (left)
			fprintf(stderr, "kpar: worker: the whole output of %zu test%s is not sent (over "
				"the pod log's %u bytes); the record keeps the start and end of it\n",
				left, kpar_buf_plural(left), POD_LOG_BUDGET);
		kpar_buf_add(&both, rec.data, rec.len);
		kpar_buf_free(&rec);
		rec = both;
	}
	if (output) {
		if ((rc = kpar_fs_write_atomic(output, rec.data, rec.len)) < 0)
			goto fail;
	} else if (fwrite(rec.data, 1, rec.len, stdout) != rec.len || fflush(stdout) != 0) {
		rc = kpar_error_errno(KPAR_EIO, "cannot write the record to stdout");
		goto fail;
	}
fail:
	if (rc < 0)
		rc = kpar_tool_fail("worker", rc);
	if (sent_dir) {
		kpar_fs_remove_tree(sent_dir);
		free(sent_dir);
	}
	kpar_bucket_result_free(&res);
	kpar_buf_free(&rec);
	kpar_strv_free(&ids);
	free(dir_file);
	free(label);
	kpar_conf_free(&conf);
	return rc;
}
