/* test_core.c - unit tests of the core modules: buf, fs, digest, testlist,
 * conf, the state database and the loader of libraries opened on first use. */
#include "config.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "base/buf.h"
#include "base/conf.h"
#include "base/digest.h"
#include "base/error.h"
#include "base/fs.h"
#include "base/lazylib.h"
#include "base/progress.h"
#include "run/testlog.h"
#include "run/record.h"
#include "run/split.h"
#include "run/state.h"
#include "run/testlist.h"
#include "test.h"

static char tmpdir[256];

static void make_tmp(void)
{
	if (!tmpdir[0]) {
		snprintf(tmpdir, sizeof tmpdir, "%s/kpar-core-XXXXXX", getenv("TMPDIR") ? getenv("TMPDIR") : "/tmp");
		if (!mkdtemp(tmpdir))
			abort();
	}
}

KPAR_TEST(shell_quote)
{
	struct kpar_buf b = KPAR_BUF_INIT;

	kpar_buf_shell_quote(&b, "it's $x; `y` \"z\"\n");
	CHECK_STR(b.data, "'it'\\''s $x; `y` \"z\"\n'");
	kpar_buf_clear(&b);
	kpar_buf_shell_quote(&b, "");
	CHECK_STR(b.data, "''");
	kpar_buf_free(&b);
}

KPAR_TEST(strv_sort_uniq)
{
	struct kpar_strv sv = KPAR_STRV_INIT;

	kpar_strv_push(&sv, "b");
	kpar_strv_push(&sv, "a");
	kpar_strv_push(&sv, "b");
	kpar_strv_push(&sv, "\xc3\xbc");
	kpar_strv_push(&sv, "B");
	kpar_strv_sort(&sv);
	kpar_strv_uniq(&sv);
	CHECK_INT(sv.n, 4);
	CHECK_STR(sv.v[0], "B");    /* bytewise, whatever the locale */
	CHECK_STR(sv.v[1], "a");
	CHECK_STR(sv.v[2], "b");
	CHECK_STR(sv.v[3], "\xc3\xbc");
	CHECK(sv.v[4] == NULL);
	kpar_strv_free(&sv);
}

KPAR_TEST(write_if_changed_keeps_mtime)
{
	char *p;
	struct stat a, b;
	char *text;

	make_tmp();
	p = kpar_fs_join(tmpdir, "f");
	CHECK_INT(kpar_fs_write_if_changed(p, "one\n", 4), 1);
	CHECK(stat(p, &a) == 0);
	sleep(1);
	CHECK_INT(kpar_fs_write_if_changed(p, "one\n", 4), 0);
	CHECK(stat(p, &b) == 0);
	CHECK(a.st_mtime == b.st_mtime);
	CHECK_INT(kpar_fs_write_if_changed(p, "two\n", 4), 1);
	CHECK_OK(kpar_fs_read_all(p, &text, NULL));
	CHECK_STR(text, "two\n");
	free(text);
	CHECK_INT(kpar_fs_read_all("/no/such/file", &text, NULL), KPAR_ENOTFOUND);
	CHECK(strstr(kpar_error_last(), "/no/such/file") != NULL);
	/* Never rename over something that is not a regular file. */
	CHECK_INT(kpar_fs_write_atomic(tmpdir, "x", 1), KPAR_EINVAL);
	CHECK(strstr(kpar_error_last(), "not a regular file") != NULL);
	free(p);
}

/* Bucket files are rewritten in place (one inode for good): the content
 * is exactly the new bytes whether they are longer or shorter, unchanged
 * bytes are not written, and only a regular file is ever overwritten. */
KPAR_TEST(rewrite_if_changed)
{
	char *p, *link, *text;
	struct stat a, b;

	make_tmp();
	p = kpar_fs_join(tmpdir, "bucket");
	link = kpar_fs_join(tmpdir, "link");
	CHECK_INT(kpar_fs_rewrite_if_changed(p, "a\nb\nc\n", 6), 1);
	CHECK(stat(p, &a) == 0);
	CHECK_INT(kpar_fs_rewrite_if_changed(p, "a\nb\nc\n", 6), 0);
	CHECK_INT(kpar_fs_rewrite_if_changed(p, "x\n", 2), 1);
	CHECK_OK(kpar_fs_read_all(p, &text, NULL));
	CHECK_STR(text, "x\n");
	free(text);
	CHECK_INT(kpar_fs_rewrite_if_changed(p, "longer\nthan before\n", 19), 1);
	CHECK_OK(kpar_fs_read_all(p, &text, NULL));
	CHECK_STR(text, "longer\nthan before\n");
	free(text);
	CHECK(stat(p, &b) == 0);
	CHECK(a.st_ino == b.st_ino);
	CHECK(symlink(p, link) == 0);
	CHECK(kpar_fs_rewrite_if_changed(link, "y\n", 2) < 0);
	CHECK_OK(kpar_fs_read_all(p, &text, NULL));
	CHECK_STR(text, "longer\nthan before\n");
	free(text);
	CHECK_INT(kpar_fs_rewrite_if_changed(tmpdir, "y\n", 2) < 0, 1);
	free(p);
	free(link);
}

KPAR_TEST(digest)
{
	char d[KPAR_DIGEST_STR], f[KPAR_DIGEST_STR];
	char *p;
	uint64_t size;

	kpar_digest_str("abc", 3, d);
	CHECK_STR(d, "sha256:ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
	make_tmp();
	p = kpar_fs_join(tmpdir, "abc");
	CHECK_OK(kpar_fs_write_atomic(p, "abc", 3));
	CHECK_OK(kpar_digest_file(p, f, &size));
	CHECK_STR(f, d);
	CHECK_INT(size, 3);
	free(p);
}

KPAR_TEST(testlist_ids)
{
	struct kpar_strv sv = KPAR_STRV_INIT;
	const char text[] = "b test\r\n\na$b 'q'\n\xc3\xbc\n";

	CHECK_OK(kpar_testlist_parse(text, sizeof text - 1, "x", &sv));
	CHECK_INT(sv.n, 3);
	CHECK_STR(sv.v[0], "b test");
	CHECK_STR(sv.v[1], "a$b 'q'");
	kpar_strv_free(&sv);
	CHECK_INT(kpar_testlist_parse("ok\nbad\tid\n", 10, "list.txt", &sv), KPAR_EINVAL);
	CHECK(strstr(kpar_error_last(), "list.txt: line 2") != NULL);
	kpar_strv_free(&sv);
	CHECK_INT(kpar_testlist_parse("\xff\xfe\n", 3, "l", &sv), KPAR_EINVAL);
	CHECK(strstr(kpar_error_last(), "UTF-8") != NULL);
	kpar_strv_free(&sv);
	CHECK_OK(kpar_testlist_from_words("  c a\tb\n a ", &sv));
	kpar_testlist_canonicalise(&sv);
	CHECK_INT(sv.n, 3);
	CHECK_STR(sv.v[0], "a");
	kpar_strv_free(&sv);
}

KPAR_TEST(testlist_cmd)
{
	struct kpar_strv sv = KPAR_STRV_INIT;

	CHECK_OK(kpar_testlist_from_cmd("printf 'x y\\nz\\n'", NULL, &sv));
	CHECK_INT(sv.n, 2);
	CHECK_STR(sv.v[0], "x y");
	kpar_strv_free(&sv);
	CHECK_INT(kpar_testlist_from_cmd("echo broken >&2; exit 4", NULL, &sv), KPAR_EINVAL);
	CHECK(strstr(kpar_error_last(), "exit status 4") != NULL);
	CHECK(strstr(kpar_error_last(), "broken") != NULL);
	kpar_strv_free(&sv);
	CHECK_INT(kpar_testlist_from_cmd("printf 'a\\0b\\n'", NULL, &sv), KPAR_EINVAL);
	kpar_strv_free(&sv);
}

KPAR_TEST(conf_env_and_options)
{
	struct kpar_conf c;
	char *argv[] = { "x", "--workers", "7", "--state-dir=/tmp/s", "--resume", "rest", NULL };
	int i, rc;

	setenv("KPAR_WORKERS", "3", 1);
	setenv("KPAR_BUCKETS", "", 1);   /* empty = unset, as make passes it */
	CHECK_OK(kpar_conf_load(&c));
	CHECK_INT(c.workers, 3);
	CHECK_INT(c.buckets, 0);
	CHECK_STR(c.state_dir, ".kpar");
	for (i = 1; i < 6; i++) {
		rc = kpar_conf_option(&c, 6, argv, &i);
		if (rc == 0)
			break;
	}
	CHECK_INT(i, 5);
	CHECK_INT(c.workers, 7);
	CHECK_STR(c.state_dir, "/tmp/s");
	CHECK_INT(c.resume, 1);
	kpar_conf_free(&c);
	setenv("KPAR_WORKERS", "0", 1);
	CHECK_INT(kpar_conf_load(&c), KPAR_EINVAL);
	CHECK(strstr(kpar_error_last(), "KPAR_WORKERS") != NULL);
	kpar_conf_free(&c);
	unsetenv("KPAR_WORKERS");
	setenv("KPAR_RUN_MODE", "sometimes", 1);
	CHECK_INT(kpar_conf_load(&c), KPAR_EINVAL);
	kpar_conf_free(&c);
	unsetenv("KPAR_RUN_MODE");
}

KPAR_TEST(conf_image_and_registry)
{
	struct kpar_conf c;
	char *argv[] = { "x", "--base", "reg/b:1", "--payload", "c + d", "--pull",
			 "--registry-debug=no", "--worker=/w", "--image-compression", "zstd", NULL };
	const int argc = 10;
	FILE *f;
	char *text = NULL;
	size_t len = 0;
	int i, rc;

	/* defaults */
	unsetenv("KPAR_PAYLOAD");
	unsetenv("KPAR_BASE_IMAGE");
	unsetenv("KPAR_IMAGE_PULL");
	unsetenv("KPAR_REGISTRY_DEBUG");
	unsetenv("KPAR_INSECURE_REGISTRIES");
	unsetenv("KPAR_LIBCURL");
	unsetenv("KPAR_IMAGE_COMPRESSION");
	unsetenv("KPAR_WORKER_BIN");
	CHECK_OK(kpar_conf_load(&c));
	CHECK_STR(c.payload, "");
	CHECK_STR(c.base_image, "scratch");
	/* what kpar.mk and the README say: the same gzip, level 1 */
	CHECK_STR(c.image_compression, "gzip");
	CHECK_STR(c.libcurl, KPAR_LIBCURL_SONAME);
	CHECK_STR(c.registry_ca, "");
	CHECK_INT(c.image_pull, 0);
	CHECK_INT(c.image_per_bucket, 0);
	CHECK_INT(c.registry_debug, 0);
	kpar_conf_free(&c);

	/* the environment, then options: old spellings, --payload adds words */
	setenv("KPAR_PAYLOAD", "a b", 1);
	setenv("KPAR_BASE_IMAGE", "env/base:2", 1);
	setenv("KPAR_REGISTRY_DEBUG", "1", 1);
	setenv("KPAR_INSECURE_REGISTRIES", "r1:5000,r2", 1);
	setenv("KPAR_LIBCURL", "/opt/libcurl.so", 1);
	setenv("KPAR_IMAGE_PER_BUCKET", "yes", 1);
	CHECK_OK(kpar_conf_load(&c));
	CHECK_STR(c.payload, "a b");
	CHECK_STR(c.base_image, "env/base:2");
	CHECK_STR(c.insecure_registries, "r1:5000,r2");
	CHECK_STR(c.libcurl, "/opt/libcurl.so");
	CHECK_INT(c.registry_debug, 1);
	CHECK_INT(c.image_per_bucket, 1);
	for (i = 1; i < argc; i++) {
		rc = kpar_conf_option(&c, argc, argv, &i);
		CHECK_INT(rc, 1);
	}
	CHECK_STR(c.base_image, "reg/b:1");
	CHECK_STR(c.payload, "a b c + d");
	CHECK_STR(c.worker_bin, "/w");
	CHECK_STR(c.image_compression, "zstd");
	CHECK_INT(c.image_pull, 1);
	CHECK_INT(c.registry_debug, 0);
	/* the new settings are printed too */
	f = open_memstream(&text, &len);
	CHECK(f != NULL);
	kpar_conf_print(&c, f);
	fclose(f);
	CHECK(strstr(text, "\nKPAR_BASE_IMAGE=reg/b:1\n") != NULL);
	CHECK(strstr(text, "\nKPAR_INSECURE_REGISTRIES=r1:5000,r2\n") != NULL);
	CHECK(strstr(text, "\nKPAR_IMAGE_PULL=1\n") != NULL);
	free(text);
	/* a bad option value names the option */
	CHECK_INT(kpar_conf_set(&c, "pull", "maybe"), KPAR_EINVAL);
	CHECK(strstr(kpar_error_last(), "--pull: 'maybe'") != NULL);
	kpar_conf_free(&c);
	unsetenv("KPAR_PAYLOAD");
	unsetenv("KPAR_BASE_IMAGE");
	unsetenv("KPAR_REGISTRY_DEBUG");
	unsetenv("KPAR_INSECURE_REGISTRIES");
	unsetenv("KPAR_LIBCURL");
	unsetenv("KPAR_IMAGE_PER_BUCKET");

	/* a bad value in the environment names the variable */
	setenv("KPAR_IMAGE_PULL", "maybe", 1);
	CHECK_INT(kpar_conf_load(&c), KPAR_EINVAL);
	CHECK(strstr(kpar_error_last(),
		     "KPAR_IMAGE_PULL: 'maybe' is not 1/0, yes/no or true/false") != NULL);
	kpar_conf_free(&c);
	unsetenv("KPAR_IMAGE_PULL");
	/* the worker's bounds are the table's */
	setenv("KPAR_RETRIES", "101", 1);
	CHECK_INT(kpar_conf_load(&c), KPAR_EINVAL);
	CHECK(strstr(kpar_error_last(), "KPAR_RETRIES: '101' is not a whole number from 0 to 100") != NULL);
	kpar_conf_free(&c);
	unsetenv("KPAR_RETRIES");
	setenv("KPAR_TEST_TIMEOUT", "2e9", 1);
	CHECK_INT(kpar_conf_load(&c), KPAR_EINVAL);
	CHECK(strstr(kpar_error_last(), "KPAR_TEST_TIMEOUT: '2e9'") != NULL);
	kpar_conf_free(&c);
	unsetenv("KPAR_TEST_TIMEOUT");
}

static void fill_bucket(struct kpar_bucket_result *r, int bucket, const char *a, const char *b)
{
	memset(r, 0, sizeof *r);
	r->plan = kpar_xstrdup("sha256:p");
	r->bucket = bucket;
	r->attempt = 1;
	r->worker = kpar_xstrdup("w1");
	r->started = 100;
	r->finished = 103;
	kpar_bucket_result_add(r, a, KPAR_PASS, 1.5, "out", 3);
	kpar_bucket_result_add(r, b, KPAR_FAIL, 2.5, "bad\0bytes", 9);
}

/* A scheduler's wake-up is one transaction: what it collected is kept
 * together at the end, a refused record in the middle undoes itself only,
 * and the durations of the batch reach the history. */
KPAR_TEST(state_batch_commit)
{
	struct kpar_state *st, *other;
	struct kpar_run_info in;
	struct kpar_bucket_result r, *res;
	unsigned char collected[4];
	long long run;
	double secs;
	size_t n;
	char *dir;

	make_tmp();
	dir = kpar_fs_join(tmpdir, "batch");
	CHECK_OK(kpar_state_open(&st, dir, 0));
	memset(&in, 0, sizeof in);
	in.plan = "sha256:b";
	in.tests_digest = "sha256:t";
	in.inputs_digest = "sha256:i";
	in.nbuckets = 3;
	in.backend = "local";
	CHECK_OK(kpar_state_run_begin(st, &in, NULL, &run));
	CHECK_OK(kpar_state_open(&other, dir, 0));
	CHECK_OK(kpar_state_batch_begin(st));
	fill_bucket(&r, 1, "b/one", "b/two");
	CHECK_OK(kpar_state_collect(st, run, &r));
	kpar_bucket_result_free(&r);
	fill_bucket(&r, 7, "b/bad", "b/worse");
	CHECK_INT(kpar_state_collect(st, run, &r), KPAR_EINVAL);
	kpar_bucket_result_free(&r);
	CHECK_OK(kpar_state_bucket_mark(st, run, 3, "running", "w1", 1));
	fill_bucket(&r, 2, "b/three", "b/four");
	CHECK_OK(kpar_state_collect(st, run, &r));
	kpar_bucket_result_free(&r);
	/* not visible to another reader before the end of the batch */
	CHECK_OK(kpar_state_collected(other, run, 3, collected));
	CHECK_INT(collected[1] + collected[2], 0);
	CHECK_OK(kpar_state_batch_end(st));
	CHECK_OK(kpar_state_collected(other, run, 3, collected));
	CHECK_INT(collected[1], 1);
	CHECK_INT(collected[2], 1);
	CHECK_INT(collected[3], 0);
	kpar_state_close(other);
	CHECK_OK(kpar_state_results(st, run, &res, &n));
	CHECK_INT(n, 2);
	CHECK_STR(res[0].tests[0].id, "b/one");
	CHECK_STR(res[1].tests[1].id, "b/three");
	kpar_state_results_free(res, n);
	CHECK_OK(kpar_history_get(kpar_state_db(st), "b/one", &secs, NULL));
	CHECK_INT(kpar_history_get(kpar_state_db(st), "b/bad", &secs, NULL), KPAR_ENOTFOUND);
	/* without a batch, each collect commits on its own again */
	CHECK_OK(kpar_state_batch_end(st));
	kpar_state_close(st);
	free(dir);
}

KPAR_TEST(state_runs_and_collect)
{
	struct kpar_state *st;
	struct kpar_run_info in, ri;
	struct kpar_bucket_result r, *res;
	struct kpar_buf q = KPAR_BUF_INIT;
	unsigned char collected[3];
	long long run;
	size_t n;
	char *dir;

	make_tmp();
	dir = kpar_fs_join(tmpdir, "state");
	CHECK_INT(kpar_state_open(&st, dir, KPAR_STATE_RDONLY), KPAR_ENOTFOUND);
	CHECK_OK(kpar_state_query(dir, "status", &q));
	CHECK_STR(q.data, "none");
	CHECK(!kpar_fs_exists(dir));
	CHECK_OK(kpar_state_open(&st, dir, 0));
	memset(&in, 0, sizeof in);
	in.plan = "sha256:p";
	in.tests_digest = "sha256:t";
	in.inputs_digest = "sha256:i";
	in.nbuckets = 2;
	in.backend = "local";
	CHECK_OK(kpar_state_run_begin(st, &in, NULL, &run));
	fill_bucket(&r, 2, "x/one", "x/two");
	CHECK_OK(kpar_state_collect(st, run, &r));
	/* Delivered twice (a retried worker): collected once. */
	CHECK_OK(kpar_state_collect(st, run, &r));
	kpar_bucket_result_free(&r);
	CHECK_OK(kpar_state_collected(st, run, 2, collected));
	CHECK_INT(collected[1], 0);
	CHECK_INT(collected[2], 1);
	CHECK_OK(kpar_state_results(st, run, &res, &n));
	CHECK_INT(n, 1);
	CHECK_INT(res[0].ntests, 2);
	CHECK_STR(res[0].tests[1].id, "x/two");
	CHECK_INT(res[0].tests[1].output_len, 9);
	CHECK(memcmp(res[0].tests[1].output, "bad\0bytes", 9) == 0);
	kpar_state_results_free(res, n);
	kpar_buf_clear(&q);
	CHECK_OK(kpar_state_query(dir, "resumable", &q));
	CHECK_STR(q.data, "1");
	kpar_buf_clear(&q);
	CHECK_OK(kpar_state_query(dir, "tests-failed", &q));
	CHECK_STR(q.data, "1");
	CHECK_INT(kpar_state_query(dir, "bogus", &q), KPAR_EINVAL);
	/* A bucket the run does not have is refused, nothing stored. */
	fill_bucket(&r, 9, "y/one", "y/two");
	CHECK_INT(kpar_state_collect(st, run, &r), KPAR_EINVAL);
	kpar_bucket_result_free(&r);
	CHECK_OK(kpar_state_run_end(st, run, "complete", "fail"));
	CHECK_OK(kpar_state_last_run(st, &ri));
	CHECK_STR(ri.status, "complete");
	CHECK_STR(ri.verdict, "fail");
	CHECK(ri.finished >= ri.started && ri.finished - ri.started < 60);
	kpar_run_info_free(&ri);
	kpar_buf_clear(&q);
	CHECK_OK(kpar_state_query(dir, "resumable", &q));
	CHECK_STR(q.data, "0");
	/* A run going on again (a resume) has no end until it ends again: the
	 * report's wall time must not stop where the resume began. */
	CHECK_OK(kpar_state_run_end(st, run, "running", NULL));
	CHECK_OK(kpar_state_last_run(st, &ri));
	CHECK(ri.finished == 0);
	kpar_run_info_free(&ri);
	kpar_state_close(st);
	kpar_buf_free(&q);
	free(dir);
}

/* The summary's words, from `kpar state` too: an error is not a failure. */
KPAR_TEST(state_query_counts)
{
	struct kpar_state *st;
	struct kpar_run_info in;
	struct kpar_bucket_result r;
	struct kpar_buf q = KPAR_BUF_INIT;
	char *dir;
	long long run;
	size_t i;
	static const struct { const char *what, *want; } counts[] = {
		{ "tests", "6" }, { "tests-passed", "2" }, { "tests-failed", "1" },
		{ "tests-errors", "2" }, { "tests-skipped", "1" }, { "tests-flaky", "1" },
	};

	make_tmp();
	dir = kpar_fs_join(tmpdir, "state-counts");
	CHECK_OK(kpar_state_query(dir, "tests-errors", &q));
	CHECK_STR(q.data, "0");
	kpar_buf_clear(&q);
	CHECK_OK(kpar_state_query(dir, "resumable", &q));
	CHECK_STR(q.data, "0");
	CHECK_OK(kpar_state_open(&st, dir, 0));
	memset(&in, 0, sizeof in);
	in.plan = "sha256:p";
	in.nbuckets = 1;
	in.backend = "local";
	CHECK_OK(kpar_state_run_begin(st, &in, NULL, &run));
	memset(&r, 0, sizeof r);
	r.plan = kpar_xstrdup("sha256:p");
	r.bucket = 1;
	r.attempt = 1;
	kpar_bucket_result_add(&r, "p", KPAR_PASS, 1, NULL, 0);
	kpar_bucket_result_add(&r, "f", KPAR_FAIL, 1, NULL, 0);
	kpar_bucket_result_add(&r, "e1", KPAR_ERROR, 1, NULL, 0);
	kpar_bucket_result_add(&r, "e2", KPAR_ERROR, 1, NULL, 0);
	kpar_bucket_result_add(&r, "s", KPAR_SKIP, 0, NULL, 0);
	kpar_bucket_result_add(&r, "k", KPAR_FLAKY, 1, NULL, 0);
	CHECK_OK(kpar_state_collect(st, run, &r));
	kpar_bucket_result_free(&r);
	for (i = 0; i < sizeof counts / sizeof counts[0]; i++) {
		kpar_buf_clear(&q);
		CHECK_OK(kpar_state_query(dir, counts[i].what, &q));
		CHECK_STR(q.data, counts[i].want);
	}
	kpar_state_close(st);
	kpar_buf_free(&q);
	free(dir);
}

/* Without a terminal (a CI log), a silent stretch still gets a status line
 * every heartbeat, and only then; colour never goes to a file. */
KPAR_TEST(progress_heartbeat_in_plain_mode)
{
	struct kpar_progress p;
	FILE *f = tmpfile();
	long len;

	CHECK(f != NULL);
	setenv("NO_COLOR", "", 1);
	kpar_progress_init(&p, f, "auto", 4, 2);
	CHECK_INT(p.live, 0);
	CHECK_INT(p.color, 0);
	p.heartbeat = 1e9;
	kpar_progress_tick(&p);
	CHECK_INT(ftell(f), 0);
	p.heartbeat = 0.01;
	usleep(30000);
	kpar_progress_tick(&p);
	len = ftell(f);
	CHECK(len > 0);
	p.heartbeat = 1e9;
	kpar_progress_tick(&p);
	CHECK_INT(ftell(f), len);
	{
		char buf[256] = "";
		rewind(f);
		CHECK(fgets(buf, sizeof buf, f) != NULL);
		CHECK(strstr(buf, "kpar: buckets 0/4 done") == buf);
		CHECK(strchr(buf, '\033') == NULL);
	}
	fclose(f);
	unsetenv("NO_COLOR");
}

static void check_log_name(const char *id, const char *want)
{
	struct kpar_buf b = KPAR_BUF_INIT;
	kpar_testlog_name(id, &b);
	CHECK_STR(b.data, want);
	kpar_buf_free(&b);
}

/* Every id gets its own file under logs/, and none can leave it. */
KPAR_TEST(testlog_names)
{
	char longid[400];
	struct kpar_buf b = KPAR_BUF_INIT;

	check_log_name("tests/io", "tests/io.log");
	check_log_name("a b 'q' $x", "a b 'q' $x.log");
	check_log_name("../x", "%2E%2E/x.log");
	check_log_name("./x/..", "%2E/x/%2E%2E.log");
	check_log_name("/abs", "%/abs.log");
	check_log_name("a//b/", "a/%/b/%.log");
	check_log_name("100%", "100%25.log");
	check_log_name("a\\b", "a%5Cb.log");
	check_log_name("\xc3\xbcn\xc3\xaf", "\xc3\xbcn\xc3\xaf.log");
	memset(longid, 'x', sizeof longid - 1);
	longid[sizeof longid - 1] = '\0';
	kpar_testlog_name(longid, &b);
	CHECK(b.len <= 205 + 4);
	CHECK(strstr(b.data, "%~") != NULL);
	kpar_buf_free(&b);
	longid[10] = 'y';   /* same length, same prefix kept: the digest tells them apart */
	{
		struct kpar_buf c = KPAR_BUF_INIT, d = KPAR_BUF_INIT;
		kpar_testlog_name(longid, &c);
		longid[10] = 'x';
		kpar_testlog_name(longid, &d);
		CHECK(strcmp(c.data, d.data) != 0);
		kpar_buf_free(&c);
		kpar_buf_free(&d);
	}
}

/* The logs of a run replace the last run's whole: no stale file stays. */
KPAR_TEST(testlog_write_all)
{
	char dir[] = "/tmp/kpar-testlog-XXXXXX", *logs, *text = NULL;
	struct kpar_bucket_result r, *rp = &r;
	struct kpar_test_result *t;
	size_t len;

	CHECK(mkdtemp(dir) != NULL);
	logs = kpar_xasprintf("%s/logs", dir);
	memset(&r, 0, sizeof r);
	r.bucket = 2;
	r.worker = kpar_xstrdup("w1");
	t = kpar_bucket_result_add(&r, "t/a", KPAR_FAIL, 0.5, "expected 2\n", 11);
	t->exit_code = 1;
	kpar_bucket_result_add(&r, "../up", KPAR_PASS, 0.1, NULL, 0);
	CHECK_OK(kpar_testlog_write_all(logs, NULL, &rp, 1));
	{
		char *p = kpar_xasprintf("%s/t/a.log", logs);
		CHECK_OK(kpar_fs_read_all(p, &text, &len));
		CHECK_STR(text, "expected 2\nFAIL: t/a (exit status: 1, 0.50s, attempt 1, bucket 2, worker w1)\n");
		free(text);
		free(p);
		p = kpar_xasprintf("%s/%%2E%%2E/up.log", logs);
		CHECK(access(p, F_OK) == 0);
		free(p);
	}
	kpar_bucket_result_free(&r);
	memset(&r, 0, sizeof r);
	kpar_bucket_result_add(&r, "t/b", KPAR_SKIP, 0, "SKIP: no\n", 9);
	CHECK_OK(kpar_testlog_write_all(logs, NULL, &rp, 1));
	{
		char *a = kpar_xasprintf("%s/t/a.log", logs), *b = kpar_xasprintf("%s/t/b.log", logs);
		CHECK(access(a, F_OK) != 0);
		CHECK(access(b, F_OK) == 0);
		free(a);
		free(b);
	}
	kpar_bucket_result_free(&r);
	kpar_fs_remove_tree(dir);
	free(logs);
}

static char *sha256_of(const char *data)
{
	unsigned char raw[KPAR_SHA256_LEN];
	char hex[2 * KPAR_SHA256_LEN + 1];

	kpar_sha256(data, strlen(data), raw);
	kpar_hex(raw, sizeof raw, hex);
	return kpar_xasprintf("sha256:%s", hex);
}

static void collect_frame(void *arg, const char *data, size_t len)
{
	struct kpar_strv *v = arg;
	char *s = kpar_xmalloc(len + 1);

	memcpy(s, data, len);
	s[len] = '\0';
	kpar_strv_push(v, s);
	free(s);
}

/* What a pod sends back: the kept outputs its record vouches for, failures
 * first, within the budget; a file changed since its digest is not sent. */
KPAR_TEST(testlog_frames)
{
	char dir[] = "/tmp/kpar-testlog-XXXXXX", *old, *p;
	struct kpar_bucket_result r;
	struct kpar_buf out = KPAR_BUF_INIT;
	struct kpar_strv got = KPAR_STRV_INIT;
	struct stat before, after;

	CHECK(mkdtemp(dir) != NULL);
	memset(&r, 0, sizeof r);
	kpar_bucket_result_add(&r, "a pass", KPAR_PASS, 0, NULL, 0)->full_log = sha256_of("pass out\n");
	kpar_bucket_result_add(&r, "sub/fail$", KPAR_FAIL, 0, NULL, 0)->full_log = sha256_of("fail out\n");
	kpar_bucket_result_add(&r, "changed", KPAR_PASS, 0, NULL, 0)->full_log = sha256_of("as run\n");
	kpar_bucket_result_add(&r, "no file kept", KPAR_PASS, 0, NULL, 0);
	CHECK_OK(kpar_testlog_keep(dir, "a pass", "pass out\n", 9));
	CHECK_OK(kpar_testlog_keep(dir, "sub/fail$", "fail out\n", 9));
	CHECK_OK(kpar_testlog_keep(dir, "changed", "edited since\n", 13));

	CHECK_INT(kpar_testlog_frames(dir, &r, 1u << 20, &out), 1);
	CHECK_INT(kpar_record_decode_logs(out.data, out.len, collect_frame, &got), 0);
	CHECK_INT(got.n, 2);
	CHECK_STR(got.n > 0 ? got.v[0] : NULL, "fail out\n");
	CHECK_STR(got.n > 1 ? got.v[1] : NULL, "pass out\n");

	/* room for one frame: the failure's */
	kpar_strv_free(&got);
	kpar_buf_clear(&out);
	CHECK_OK(kpar_record_encode_log("fail out\n", 9, &out));
	{
		size_t one = out.len;
		kpar_buf_clear(&out);
		CHECK_INT(kpar_testlog_frames(dir, &r, one + 1, &out), 2);
	}
	CHECK_INT(kpar_record_decode_logs(out.data, out.len, collect_frame, &got), 0);
	CHECK_INT(got.n, 1);
	CHECK_STR(got.n > 0 ? got.v[0] : NULL, "fail out\n");
	kpar_buf_clear(&out);
	CHECK_INT(kpar_testlog_frames(dir, &r, 0, &out), 3);
	CHECK_INT(out.len, 0);

	/* keep writes a new file: a link to the old one (the last report's
	 * log) keeps the old text */
	p = kpar_xasprintf("%s/a pass.log", dir);
	old = kpar_xasprintf("%s/old.log", dir);
	CHECK(link(p, old) == 0);
	CHECK(stat(p, &before) == 0);
	CHECK_OK(kpar_testlog_keep(dir, "a pass", "rerun\n", 6));
	CHECK(stat(p, &after) == 0);
	CHECK(before.st_ino != after.st_ino);
	{
		char *text = NULL;
		CHECK_OK(kpar_fs_read_all(old, &text, NULL));
		CHECK_STR(text, "pass out\n");
		free(text);
	}
	/* a directory where its file should go: named in the error */
	CHECK_INT(kpar_testlog_keep("/proc/self", "x", "y", 1) < 0, 1);
	CHECK(strstr(kpar_error_last(), "/proc/self") != NULL);
	kpar_error_clear();
	free(p);
	free(old);
	kpar_strv_free(&got);
	kpar_buf_free(&out);
	kpar_bucket_result_free(&r);
	kpar_fs_remove_tree(dir);
}

/* libm stands in for a library kpar opens on first use. */
struct mathlib {
	double (*cos)(double);
	double (*sqrt)(double);
};
static const struct kpar_lazylib_sym math_syms[] = {
	{ "cos", offsetof(struct mathlib, cos) }, { "sqrt", offsetof(struct mathlib, sqrt) },
};
static const struct kpar_lazylib_sym math_syms_bad[] = {
	{ "cos", offsetof(struct mathlib, cos) }, { "kpar_no_such_function", offsetof(struct mathlib, sqrt) },
};
static int init_calls;

static const char *math_init(const void *api)
{
	const struct mathlib *m = api;

	init_calls++;
	return m->sqrt(4.0) == 2.0 ? NULL : "computes sqrt(4) wrong";
}

static const char *math_refuse(const void *api)
{
	(void)api;
	return "refused to initialise";
}

/* A descriptor of libm that has not been loaded yet. */
static struct kpar_lazylib mathlib(void *api, size_t size)
{
	struct kpar_lazylib l = { .name = "libm", .soname = "libm.so.6", .needs = "glibc", .code = KPAR_ELIB,
				  .syms = math_syms, .nsyms = 2, .api = api, .api_size = size,
				  .init = math_init };
	return l;
}

KPAR_TEST(lazylib_load)
{
	struct mathlib m = { 0 }, bad = { 0 }, absent = { 0 }, other = { 0 }, set = { 0 }, refused = { 0 };
	struct kpar_lazylib ok = mathlib(&m, sizeof m), lacks = mathlib(&bad, sizeof bad),
		missing = mathlib(&absent, sizeof absent), named = mathlib(&other, sizeof other),
		chosen = mathlib(&set, sizeof set), noinit = mathlib(&refused, sizeof refused);

	CHECK_OK(kpar_lazylib_load(&ok));
	CHECK(m.cos && m.cos(0.0) == 1.0);
	CHECK_OK(kpar_lazylib_load(&ok));
	CHECK_INT(init_calls, 1);

	/* a missing function: named, and the table stays empty */
	lacks.syms = math_syms_bad;
	CHECK_INT(kpar_lazylib_load(&lacks), KPAR_ELIB);
	CHECK_STR(kpar_error_last(), "libm 'libm.so.6' lacks kpar_no_such_function (kpar needs glibc)");
	CHECK(!bad.cos);

	/* a missing file, without a setting to name */
	missing.soname = "/nonexistent/libkpar-test.so.1";
	CHECK_INT(kpar_lazylib_load(&missing), KPAR_ELIB);
	CHECK(strstr(kpar_error_last(), "cannot load libm '/nonexistent/libkpar-test.so.1' (install glibc; "
		     "no kpar setting chooses another): "));
	/* the failure is kept, not retried */
	kpar_lazylib_set_path(&missing, "libm.so.6");
	kpar_error_clear();
	CHECK_INT(kpar_lazylib_load(&missing), KPAR_ELIB);
	CHECK(strstr(kpar_error_last(), "cannot load libm '/nonexistent/libkpar-test.so.1'"));
	CHECK(!absent.cos);

	/* a path set before the first load replaces the SONAME; a failure
	 * names the setting */
	named.soname = "libm.so.6";
	named.setting = "KPAR_LIBM";
	kpar_lazylib_set_path(&named, "/nonexistent/other.so");
	CHECK_INT(kpar_lazylib_load(&named), KPAR_ELIB);
	CHECK(strstr(kpar_error_last(), "cannot load libm '/nonexistent/other.so' (set KPAR_LIBM to its path): "));
	chosen.soname = "/nonexistent/libkpar-test.so.1";
	kpar_lazylib_set_path(&chosen, "libm.so.6");
	CHECK_OK(kpar_lazylib_load(&chosen));
	CHECK(set.sqrt && set.sqrt(9.0) == 3.0);

	/* an init that fails leaves the table empty */
	noinit.init = math_refuse;
	CHECK_INT(kpar_lazylib_load(&noinit), KPAR_ELIB);
	CHECK_STR(kpar_error_last(), "libm 'libm.so.6' refused to initialise");
	CHECK(!refused.cos);

	free(lacks.error);
	free(missing.error);
	free(missing.path);
	free(named.error);
	free(named.path);
	free(chosen.path);
	free(noinit.error);
}

KPAR_TEST_MAIN(KPAR_CASE(shell_quote), KPAR_CASE(strv_sort_uniq), KPAR_CASE(write_if_changed_keeps_mtime),
	       KPAR_CASE(rewrite_if_changed), KPAR_CASE(state_batch_commit),
	       KPAR_CASE(digest), KPAR_CASE(testlist_ids), KPAR_CASE(testlist_cmd),
	       KPAR_CASE(conf_env_and_options), KPAR_CASE(conf_image_and_registry),
	       KPAR_CASE(state_runs_and_collect), KPAR_CASE(state_query_counts),
	       KPAR_CASE(progress_heartbeat_in_plain_mode),
	       KPAR_CASE(testlog_names), KPAR_CASE(testlog_write_all), KPAR_CASE(testlog_frames),
	       KPAR_CASE(lazylib_load))
