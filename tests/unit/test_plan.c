/* test_plan.c - the plan: deterministic, kept while its key holds, and
 * its bucket files exactly the plan's. */
#include "config.h"

#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "base/buf.h"
#include "base/conf.h"
#include "base/error.h"
#include "base/fs.h"
#include "run/plan.h"
#include "run/record.h"
#include "run/state.h"
#include "test.h"

static char dir[256];

static void setup_conf(struct kpar_conf *c, const char *sub, const char *list)
{
	char *sd, *lp;

	if (!dir[0]) {
		snprintf(dir, sizeof dir, "%s/kpar-plan-XXXXXX", getenv("TMPDIR") ? getenv("TMPDIR") : "/tmp");
		if (!mkdtemp(dir))
			abort();
	}
	unsetenv("KPAR_BUCKETS");
	setenv("KPAR_WORKERS", "2", 1);
	if (kpar_conf_load(c) < 0)
		abort();
	sd = kpar_fs_join(dir, sub);
	free(c->state_dir);
	c->state_dir = sd;
	free(c->root);
	c->root = kpar_xstrdup(dir);
	kpar_fs_mkdir_p(sd, 0755);
	lp = kpar_conf_path(c, "tests.list");
	kpar_fs_write_atomic(lp, list, strlen(list));
	free(lp);
}

KPAR_TEST(deterministic_across_dirs)
{
	struct kpar_conf a, b;
	struct kpar_plan pa, pb;
	int changed;

	setup_conf(&a, "a", "t1\nt2\nt3\nt4\nt5\nt6\nt7\nt8\nt9\n");
	setup_conf(&b, "b", "t1\nt2\nt3\nt4\nt5\nt6\nt7\nt8\nt9\n");
	CHECK_OK(kpar_plan_make(&a, &pa, &changed));
	CHECK_INT(changed, 1);
	CHECK_OK(kpar_plan_make(&b, &pb, &changed));
	CHECK_STR(pa.digest, pb.digest);
	CHECK_INT(pa.nbuckets, 9);     /* 8 per worker, at most one per test */
	CHECK_INT(pa.ntests, 9);
	kpar_plan_free(&pa);
	kpar_plan_free(&pb);
	kpar_conf_free(&a);
	kpar_conf_free(&b);
}

KPAR_TEST(kept_while_key_holds)
{
	struct kpar_conf c;
	struct kpar_plan p1, p2;
	struct kpar_state *st;
	char *g8;
	int changed;

	setup_conf(&c, "k", "x1\nx2\nx3\nx4\nx5\nx6\nx7\nx8\nx9\n");
	CHECK_OK(kpar_plan_make(&c, &p1, &changed));
	/* bucket files only when asked for */
	g8 = kpar_conf_path(&c, "buckets/test-group-8");
	CHECK(!kpar_fs_exists(g8));
	CHECK_OK(kpar_plan_write_buckets(&c, &p1));
	CHECK(kpar_fs_exists(g8));
	free(g8);
	/* New history would split differently, but the inputs are the same:
	 * the plan (and so every collected result) stays valid. */
	CHECK_OK(kpar_state_open(&st, c.state_dir, 0));
	{
		struct kpar_run_info in;
		struct kpar_bucket_result r;
		long long run;
		memset(&in, 0, sizeof in);
		in.plan = "sha256:x";
		in.tests_digest = in.inputs_digest = "sha256:y";
		in.nbuckets = 1;
		in.backend = "local";
		CHECK_OK(kpar_state_run_begin(st, &in, NULL, &run));
		memset(&r, 0, sizeof r);
		r.bucket = 1;
		r.worker = kpar_xstrdup("w");
		r.finished = 1;
		{
			const char *ids[] = { "x1", "x2", "x3", "x4", "x5", "x6", "x7", "x8" };
			size_t k;
			for (k = 0; k < 8; k++)
				kpar_bucket_result_add(&r, ids[k], KPAR_PASS, 1, NULL, 0);
		}
		kpar_bucket_result_add(&r, "x9", KPAR_PASS, 500, NULL, 0);
		CHECK_OK(kpar_state_collect(st, run, &r));
		kpar_bucket_result_free(&r);
	}
	kpar_state_close(st);
	CHECK_OK(kpar_plan_make(&c, &p2, &changed));
	CHECK_INT(changed, 0);
	CHECK_STR(p1.digest, p2.digest);
	kpar_plan_free(&p2);

	/* the kept plan kept its bucket files */
	g8 = kpar_conf_path(&c, "buckets/test-group-8");
	CHECK(kpar_fs_exists(g8));
	free(g8);

	/* Fewer buckets: the old plan's bucket files go, the new split uses
	 * the history; written, they are exactly the new plan's. */
	c.buckets = 2;
	CHECK_OK(kpar_plan_make(&c, &p2, &changed));
	CHECK_INT(changed, 1);
	CHECK_INT(p2.nbuckets, 2);
	CHECK_INT(p2.buckets[0].tests.n, 1);        /* x9 (500 s) alone, longest first */
	CHECK_STR(p2.buckets[0].tests.v[0], "x9");
	g8 = kpar_conf_path(&c, "buckets/test-group-1");
	CHECK(!kpar_fs_exists(g8));
	free(g8);
	CHECK_OK(kpar_plan_write_buckets(&c, &p2));
	g8 = kpar_conf_path(&c, "buckets/test-group-8");
	CHECK(!kpar_fs_exists(g8));
	free(g8);
	g8 = kpar_conf_path(&c, "buckets/test-group-1");
	{
		char *text = NULL;
		CHECK_OK(kpar_fs_read_all(g8, &text, NULL));
		CHECK_STR(text, "x9\n");
		free(text);
	}
	free(g8);
	g8 = kpar_conf_path(&c, "buckets/test-group-2");
	CHECK(kpar_fs_exists(g8));
	free(g8);
	kpar_plan_free(&p1);
	kpar_plan_free(&p2);
	kpar_conf_free(&c);
}

/* KPAR_GROUP: a module's cases share a bucket; the expression is part of
 * the plan's key; a bad one is an error naming the setting. */
KPAR_TEST(grouped_by_expression)
{
	struct kpar_conf c;
	struct kpar_plan p1, p2;
	struct kpar_buf list = KPAR_BUF_INIT;
	size_t m, k, b;
	int changed;

	for (m = 0; m < 6; m++)
		for (k = 0; k < 5; k++)
			kpar_buf_printf(&list, "test.mod%zu.Case.test_%zu\n", m, k);
	setup_conf(&c, "g", list.data);
	c.buckets = 6;                    /* an average bucket holds a module */
	CHECK_OK(kpar_plan_make(&c, &p1, &changed));
	CHECK_INT(p1.nbuckets, 6);
	/* equal estimates, no groups: a first run with nothing to go on is
	 * planned in name order (runs that shrink toward the end; here, 5
	 * cases each, which happen to be the modules) */
	for (b = 0; b < p1.nbuckets; b++) {
		CHECK_INT(p1.buckets[b].tests.n, 5);
		if (b > 0)
			CHECK(strcmp(p1.buckets[b - 1].tests.v[4], p1.buckets[b].tests.v[0]) < 0);
	}
	free(c.group);
	c.group = kpar_xstrdup("^(.*)\\.[^.]+\\.[^.]+$");
	CHECK_OK(kpar_plan_make(&c, &p2, &changed));
	CHECK_INT(changed, 1);
	CHECK(strcmp(p1.key, p2.key) != 0);
	CHECK_INT(p2.nbuckets, 6);        /* one per module */
	for (b = 0; b < p2.nbuckets; b++) {
		const struct kpar_strv *t = &p2.buckets[b].tests;
		CHECK_INT(t->n, 5);
		for (k = 1; k < t->n; k++)
			CHECK(strncmp(t->v[k], t->v[0], strlen("test.modN")) == 0);
	}
	kpar_plan_free(&p2);
	free(c.group);
	c.group = kpar_xstrdup("(unclosed");
	CHECK_INT(kpar_plan_make(&c, &p2, &changed), KPAR_EINVAL);
	CHECK(strstr(kpar_error_last(), "KPAR_GROUP") != NULL);
	CHECK(strstr(kpar_error_last(), "(unclosed") != NULL);
	kpar_plan_free(&p1);
	kpar_buf_free(&list);
	kpar_conf_free(&c);
}

KPAR_TEST(inputs_by_content)
{
	struct kpar_conf c;
	struct kpar_plan p1, p2;
	char *input;
	int changed;

	setup_conf(&c, "i", "y1\ny2\n");
	input = kpar_fs_join(dir, "prog");
	CHECK_OK(kpar_fs_write_atomic(input, "v1", 2));
	free(c.inputs);
	c.inputs = kpar_xstrdup("prog");
	CHECK_OK(kpar_plan_make(&c, &p1, &changed));
	/* Same bytes, new mtime: same plan. */
	CHECK_OK(kpar_fs_write_atomic(input, "v1", 2));
	CHECK_OK(kpar_plan_make(&c, &p2, &changed));
	CHECK_INT(changed, 0);
	kpar_plan_free(&p2);
	CHECK_OK(kpar_fs_write_atomic(input, "v2", 2));
	CHECK_OK(kpar_plan_make(&c, &p2, &changed));
	CHECK_INT(changed, 1);
	CHECK(strcmp(p1.inputs_digest, p2.inputs_digest) != 0);
	kpar_plan_free(&p1);
	kpar_plan_free(&p2);
	/* A missing input is an error that names it. */
	free(c.inputs);
	c.inputs = kpar_xstrdup("no-such-prog");
	CHECK(kpar_plan_make(&c, &p2, &changed) < 0);
	CHECK(strstr(kpar_error_last(), "no-such-prog") != NULL);
	free(input);
	kpar_conf_free(&c);
}

KPAR_TEST(empty_and_missing_list)
{
	struct kpar_conf c;
	struct kpar_plan p;
	int changed;

	setup_conf(&c, "e", "");
	CHECK_INT(kpar_plan_make(&c, &p, &changed), KPAR_EINVAL);
	CHECK(strstr(kpar_error_last(), "empty") != NULL);
	free(c.state_dir);
	{
		/* a state dir that does not exist: the error names the list, and
		 * nothing is created for a plan that cannot be made */
		char tmp[] = "/tmp/kpar-plan-XXXXXX";
		CHECK(mkdtemp(tmp) != NULL);
		c.state_dir = kpar_xasprintf("%s/sub/kpar", tmp);
		CHECK(kpar_plan_make(&c, &p, &changed) < 0);
		CHECK(strstr(kpar_error_last(), "tests.list") != NULL);
		free(c.state_dir);
		c.state_dir = kpar_xasprintf("%s/sub", tmp);
		CHECK(access(c.state_dir, F_OK) != 0);
		rmdir(tmp);
	}
	kpar_conf_free(&c);
}

/* Every setting the split reads is part of the key: a plan made for 16
 * workers is not kept for 2 (issue 9 item 13). */
KPAR_TEST(key_has_every_split_setting)
{
	struct kpar_conf c;
	struct kpar_plan p;
	struct kpar_buf list = KPAR_BUF_INIT;
	char *hints, *k16;
	size_t i;
	int changed;

	for (i = 0; i < 200; i++)
		kpar_buf_printf(&list, "w%03zu\n", i);
	setup_conf(&c, "w", list.data);
	/* on Kubernetes, 8 buckets per worker (local: plan_grain below) */
	free(c.backend);
	c.backend = kpar_xstrdup("k8s");
	c.workers = 16;
	CHECK_OK(kpar_plan_make(&c, &p, &changed));
	CHECK_INT(p.nbuckets, 128);
	k16 = kpar_xstrdup(p.key);
	kpar_plan_free(&p);
	c.workers = 2;
	CHECK_OK(kpar_plan_make(&c, &p, &changed));
	CHECK_INT(changed, 1);
	CHECK_INT(p.nbuckets, 16);
	kpar_plan_free(&p);
	c.workers = 3;
	CHECK_OK(kpar_plan_make(&c, &p, &changed));
	CHECK_INT(p.nbuckets, 24);
	kpar_plan_free(&p);
	c.workers = 16;
	CHECK_OK(kpar_plan_make(&c, &p, &changed));
	CHECK_STR(p.key, k16);
	kpar_plan_free(&p);

	/* the estimate settings: default seconds, and the hints file by content */
	c.default_seconds = 2;
	CHECK_OK(kpar_plan_make(&c, &p, &changed));
	CHECK(strcmp(p.key, k16) != 0);
	kpar_plan_free(&p);
	hints = kpar_fs_join(dir, "hints");
	CHECK_OK(kpar_fs_write_atomic(hints, "w00* 50\n", 8));
	free(c.hints);
	c.hints = kpar_xstrdup(hints);
	CHECK_OK(kpar_plan_make(&c, &p, &changed));
	free(k16);
	k16 = kpar_xstrdup(p.key);
	kpar_plan_free(&p);
	CHECK_OK(kpar_fs_write_atomic(hints, "w01* 50\n", 8));
	CHECK_OK(kpar_plan_make(&c, &p, &changed));
	CHECK_INT(changed, 1);
	CHECK(strcmp(p.key, k16) != 0);
	kpar_plan_free(&p);
	/* a hints file that is gone is an error naming the setting */
	unlink(hints);
	CHECK(kpar_plan_make(&c, &p, &changed) < 0);
	CHECK(strstr(kpar_error_last(), "KPAR_HINTS") != NULL);
	free(hints);
	free(k16);
	kpar_buf_free(&list);
	kpar_conf_free(&c);
}

/* The local backend in per-test mode makes every test its own bucket, so
 * whichever worker frees up takes the next test and the run ends at most
 * one test after the bound; a batch run, which pays its command's start
 * per bucket, keeps 8 buckets per worker, and KPAR_BUCKETS still rules.
 * The grain is in the key: a plan for one is not kept for the other. */
KPAR_TEST(plan_grain)
{
	struct kpar_conf c;
	struct kpar_plan p;
	struct kpar_buf list = KPAR_BUF_INIT;
	char *each;
	size_t i;
	int changed;

	for (i = 0; i < 100; i++)
		kpar_buf_printf(&list, "g%03zu\n", i);
	setup_conf(&c, "grain", list.data);
	free(c.backend);
	c.backend = kpar_xstrdup("local");
	c.workers = 2;
	CHECK_OK(kpar_plan_make(&c, &p, &changed));
	CHECK_INT(p.nbuckets, 100);
	for (i = 0; i < p.nbuckets; i++)
		CHECK_INT(p.buckets[i].tests.n, 1);
	each = kpar_xstrdup(p.key);
	kpar_plan_free(&p);
	free(c.run_mode);
	c.run_mode = kpar_xstrdup("batch");
	free(c.run_cmd);
	c.run_cmd = kpar_xstrdup("true");
	CHECK_OK(kpar_plan_make(&c, &p, &changed));
	CHECK_INT(changed, 1);
	CHECK_INT(p.nbuckets, 16);
	CHECK(strcmp(p.key, each) != 0);
	kpar_plan_free(&p);
	free(c.run_mode);
	c.run_mode = kpar_xstrdup("each");
	c.buckets = 10;
	CHECK_OK(kpar_plan_make(&c, &p, &changed));
	CHECK_INT(p.nbuckets, 10);
	kpar_plan_free(&p);
	/* fewer tests than workers: still one bucket per test */
	kpar_conf_free(&c);
	setup_conf(&c, "grain-small", "a\nb\n");
	free(c.backend);
	c.backend = kpar_xstrdup("local");
	c.workers = 8;
	CHECK_OK(kpar_plan_make(&c, &p, &changed));
	CHECK_INT(p.nbuckets, 2);
	kpar_plan_free(&p);
	free(each);
	kpar_buf_free(&list);
	kpar_conf_free(&c);
}

/* Two checkouts of one tree in different directories: same inputs
 * digest, same plan.json bytes (it ships in the image; issue 9 item 14). */
KPAR_TEST(same_plan_in_any_checkout)
{
	struct kpar_conf c[2];
	struct kpar_plan p[2];
	char *text[2];
	size_t len[2];
	int changed, k;

	for (k = 0; k < 2; k++) {
		char *root, *prog, *pj;
		setup_conf(&c[k], k ? "checkout-b" : "checkout-a", "z1\nz2\nz3\n");
		/* the state dir inside its checkout, as .kpar is */
		root = kpar_xstrdup(c[k].state_dir);
		free(c[k].root);
		c[k].root = root;
		prog = kpar_fs_join(root, "prog");
		CHECK_OK(kpar_fs_write_atomic(prog, "same", 4));
		free(prog);
		free(c[k].inputs);
		c[k].inputs = kpar_xstrdup("prog");
		CHECK_OK(kpar_plan_make(&c[k], &p[k], &changed));
		pj = kpar_conf_path(&c[k], "plan.json");
		CHECK_OK(kpar_fs_read_all(pj, &text[k], &len[k]));
		free(pj);
	}
	CHECK_STR(p[0].inputs_digest, p[1].inputs_digest);
	CHECK_STR(p[0].key, p[1].key);
	CHECK_INT(len[0], len[1]);
	CHECK(memcmp(text[0], text[1], len[0]) == 0);
	for (k = 0; k < 2; k++) {
		free(text[k]);
		kpar_plan_free(&p[k]);
		kpar_conf_free(&c[k]);
	}
}

/* Buckets a worker on Kubernetes: as bench/split's start-cost sweep found
 * best, fewer for dearer pods and for better estimates, within 1..16, and
 * the old 8 while no start cost was measured. */
KPAR_TEST(buckets_per_worker_by_start_cost)
{
	CHECK_INT(kpar_plan_buckets_per_worker(0, 360, 1), 8);
	CHECK_INT(kpar_plan_buckets_per_worker(-1, 360, 1), 8);
	CHECK_INT(kpar_plan_buckets_per_worker(5, 0, 1), 8);
	CHECK_INT(kpar_plan_buckets_per_worker(1, 360, 1), 6);
	CHECK_INT(kpar_plan_buckets_per_worker(5, 360, 1), 3);
	CHECK_INT(kpar_plan_buckets_per_worker(15, 360, 1), 2);
	CHECK_INT(kpar_plan_buckets_per_worker(15, 360, 0), 4);
	CHECK_INT(kpar_plan_buckets_per_worker(15, 82, 0), 4);
	CHECK_INT(kpar_plan_buckets_per_worker(5, 360, 0.5), 7);
	CHECK_INT(kpar_plan_buckets_per_worker(0.01, 1e6, 0), 16);
	CHECK_INT(kpar_plan_buckets_per_worker(60, 1, 1), 1);
}

KPAR_TEST_MAIN(KPAR_CASE(buckets_per_worker_by_start_cost), KPAR_CASE(deterministic_across_dirs), KPAR_CASE(kept_while_key_holds),
	       KPAR_CASE(grouped_by_expression), KPAR_CASE(inputs_by_content),
	       KPAR_CASE(empty_and_missing_list), KPAR_CASE(key_has_every_split_setting),
	       KPAR_CASE(same_plan_in_any_checkout), KPAR_CASE(plan_grain))
