/* plan.c - making, writing and reading the plan (plan.json + bucket files). */
#include "config.h"

#include <dirent.h>
#include <fnmatch.h>
#include <math.h>
#include <regex.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <cjson/cJSON.h>

#include "base/buf.h"
#include "base/digest.h"
#include "base/error.h"
#include "base/fs.h"
#include "run/import.h"
#include "run/plan.h"
#include "run/split.h"
#include "run/state.h"
#include "run/testlist.h"

#define PLAN_FORMAT 1
/* Buckets per worker when KPAR_BUCKETS is not set: small enough buckets
 * that handing them out longest-first to whichever worker frees up absorbs
 * estimate errors, few enough that per-bucket overhead stays negligible.
 * bench/split on CPython's suite, second run at 8 workers: 4 per worker
 * finishes 1.037x above the bound, 8 per worker 1.005x. */
#define BUCKETS_PER_WORKER 8

size_t kpar_plan_default_buckets(const struct kpar_conf *c, size_t ntests)
{
	/* Local workers take buckets from a queue over a pipe, for well
	 * under a millisecond each (local.c): a bucket per test leaves a
	 * tail of at most one test.  A batch run pays its command's start-up
	 * per bucket, and a pod seconds: those keep a few buckets a worker. */
	if (c->backend && strcmp(c->backend, "local") == 0 &&
	    !(c->run_mode && strcmp(c->run_mode, "batch") == 0))
		return ntests > 0 ? ntests : 1;
	return (size_t)c->workers * BUCKETS_PER_WORKER;
}

size_t kpar_plan_buckets_per_worker(double start_cost, double work_per_worker, double known)
{
	double c, f;

	if (!(start_cost > 0) || !(work_per_worker > 0))
		return BUCKETS_PER_WORKER;
	/* A worker's F buckets cost F starts, and the last bucket's error
	 * costs about the misjudged share of a bucket, c * work / F; the sum
	 * is least at F = sqrt(c * work / start).  c is how far estimates
	 * miss: fitted on bench/split's start-cost sweep, 0.1 with history
	 * (where 15 s pods want 1-2 buckets a worker and 1 s pods 6), 0.67
	 * without (4 stays best even at 15 s, hence the floor below). */
	c = known >= 0.9 ? 0.1 : 0.67;
	f = floor(sqrt(c * work_per_worker / start_cost) + 0.5);
	/* without history a worker needs room to even out: fewer than 4 lost
	 * at every start cost the sweep tried */
	if (known < 0.9 && f < 4)
		f = 4;
	return f < 1 ? 1 : f > 2 * BUCKETS_PER_WORKER ? 2 * BUCKETS_PER_WORKER : (size_t)f;
}

void kpar_plan_free(struct kpar_plan *p)
{
	size_t i;

	for (i = 0; i < p->nbuckets; i++)
		kpar_strv_free(&p->buckets[i].tests);
	free(p->buckets);
	free(p->key);
	free(p->digest);
	free(p->tests_digest);
	free(p->inputs_digest);
	kpar_strv_free(&p->own_ids);
	kpar_strv_free(&p->own_digests);
	memset(p, 0, sizeof *p);
}

/* Digest of a file, reused from the state database while its size, mtime
 * and inode are unchanged: `make k8s-test` with nothing changed only stats
 * the test programs instead of reading them all. */
/* The digest cache's statements, prepared once for many files. */
struct digest_cache {
	sqlite3_stmt *sel, *ins;
};

static void digest_cache_open(struct digest_cache *dc, sqlite3 *db)
{
	memset(dc, 0, sizeof *dc);
	if (!db)
		return;
	if (sqlite3_prepare_v2(db, "SELECT digest FROM file_digests WHERE path = ?1 AND size = ?2"
			       " AND mtime_ns = ?3 AND ino = ?4", -1, &dc->sel, NULL) != SQLITE_OK ||
	    sqlite3_prepare_v2(db, "INSERT OR REPLACE INTO file_digests(path, size, mtime_ns, ino, digest)"
			       " VALUES(?1, ?2, ?3, ?4, ?5)", -1, &dc->ins, NULL) != SQLITE_OK) {
		sqlite3_finalize(dc->sel);
		sqlite3_finalize(dc->ins);
		dc->sel = dc->ins = NULL;
	}
}

static void digest_cache_close(struct digest_cache *dc)
{
	sqlite3_finalize(dc->sel);
	sqlite3_finalize(dc->ins);
	dc->sel = dc->ins = NULL;
}

static int cached_digest(struct digest_cache *dc, const char *path, char out[KPAR_DIGEST_STR])
{
	struct stat sb;
	long long mtime;
	int rc;

	if (stat(path, &sb) < 0)
		return kpar_error_errno(KPAR_ENOTFOUND, "cannot stat '%s'", path);
	mtime = (long long)sb.st_mtim.tv_sec * 1000000000LL + sb.st_mtim.tv_nsec;
	if (dc->sel) {
		sqlite3_reset(dc->sel);
		sqlite3_bind_text(dc->sel, 1, path, -1, SQLITE_TRANSIENT);
		sqlite3_bind_int64(dc->sel, 2, (sqlite3_int64)sb.st_size);
		sqlite3_bind_int64(dc->sel, 3, mtime);
		sqlite3_bind_int64(dc->sel, 4, (sqlite3_int64)sb.st_ino);
		if (sqlite3_step(dc->sel) == SQLITE_ROW &&
		    sqlite3_column_bytes(dc->sel, 0) == KPAR_DIGEST_STR - 1) {
			memcpy(out, sqlite3_column_text(dc->sel, 0), KPAR_DIGEST_STR);
			sqlite3_reset(dc->sel);
			return 0;
		}
		sqlite3_reset(dc->sel);
	}
	if ((rc = kpar_digest_file(path, out, NULL)) < 0)
		return rc;
	/* A file modified within the mtime granularity of now could change
	 * again without its mtime moving: don't trust a cache entry for it. */
	if (dc->ins && time(NULL) - sb.st_mtim.tv_sec > 1) {
		sqlite3_reset(dc->ins);
		sqlite3_bind_text(dc->ins, 1, path, -1, SQLITE_TRANSIENT);
		sqlite3_bind_int64(dc->ins, 2, (sqlite3_int64)sb.st_size);
		sqlite3_bind_int64(dc->ins, 3, mtime);
		sqlite3_bind_int64(dc->ins, 4, (sqlite3_int64)sb.st_ino);
		sqlite3_bind_text(dc->ins, 5, out, -1, SQLITE_TRANSIENT);
		sqlite3_step(dc->ins);
		sqlite3_reset(dc->ins);
	}
	return 0;
}

/* cached_digest for one file (db may be NULL). */
static int file_digest(sqlite3 *db, const char *path, char out[KPAR_DIGEST_STR])
{
	struct digest_cache dc;
	int rc;

	digest_cache_open(&dc, db);
	rc = cached_digest(&dc, path, out);
	digest_cache_close(&dc);
	return rc;
}

int kpar_plan_inputs_digest(const struct kpar_conf *c, sqlite3 *db, char out[KPAR_DIGEST_STR])
{
	struct kpar_strv files = KPAR_STRV_INIT;
	struct kpar_buf b = KPAR_BUF_INIT;
	struct digest_cache dc;
	size_t i;
	int rc, in_txn = 0;

	memset(&dc, 0, sizeof dc);
	if ((rc = kpar_testlist_from_words(c->inputs, &files)) < 0) {
		kpar_strv_free(&files);
		return kpar_error_prefix(rc, "KPAR_TEST_INPUTS");
	}
	kpar_strv_sort(&files);
	kpar_strv_uniq(&files);
	/* Settings that change what a test run does are part of the key;
	 * worker count and progress display are not.  KPAR_ROOT is not either:
	 * inputs are digested by content under relative names, so two
	 * checkouts of one commit get the same digest, plan.json and image. */
	kpar_buf_printf(&b, "run-cmd\t%s\nrun-mode\t%s\ntimeout\t%g\nretries\t%ld\nretry-timeouts\t%d\n",
			c->run_cmd, c->run_mode, c->test_timeout, c->retries, c->retry_timeouts);
	if (*c->inputs_of)   /* a changed mapping: no own digest can be trusted */
		kpar_buf_printf(&b, "inputs-of\t%s\n", c->inputs_of);
	/* (absent for the default, so existing runs keep their key) */
	if (c->test_protocol && strcmp(c->test_protocol, "exit") != 0)
		kpar_buf_printf(&b, "protocol\t%s\n", c->test_protocol);
	/* They change a result's status, so a run with other ones is another run;
	 * written only when set, so the digest of every other project stays. */
	if (*c->xfail_tests || !c->hard_errors)
		kpar_buf_printf(&b, "xfail-tests\t%s\nhard-errors\t%d\n", c->xfail_tests, c->hard_errors);
	{
		/* The tests read these variables: a changed value is a changed input. */
		struct kpar_strv names = KPAR_STRV_INIT;
		kpar_testlist_from_words(c->test_env, &names);
		kpar_strv_sort(&names);
		kpar_strv_uniq(&names);
		for (i = 0; i < names.n; i++) {
			const char *v = getenv(names.v[i]);
			kpar_buf_printf(&b, "env\t%s\t%s\t", names.v[i], v ? "set" : "unset");
			if (v)
				kpar_buf_add(&b, v, strlen(v) + 1);
			kpar_buf_putc(&b, '\n');
		}
		kpar_strv_free(&names);
	}
	/* one transaction for the cache's updates, not one per file */
	digest_cache_open(&dc, db);
	in_txn = db && sqlite3_exec(db, "SAVEPOINT kpar_inputs", NULL, NULL, NULL) == SQLITE_OK;
	for (i = 0; i < files.n; i++) {
		char d[KPAR_DIGEST_STR];
		char *path = files.v[i][0] == '/' ? kpar_xstrdup(files.v[i]) : kpar_fs_join(c->root, files.v[i]);
		rc = cached_digest(&dc, path, d);
		free(path);
		if (rc < 0) {
			kpar_error_prefix(rc, "KPAR_TEST_INPUTS");
			goto done;
		}
		kpar_buf_printf(&b, "file\t%s\t%s\n", files.v[i], d);
	}
	kpar_digest_str(b.data, b.len, out);
done:
	digest_cache_close(&dc);
	/* the cache is only a cache: what it kept stays, even on an error */
	if (in_txn)
		sqlite3_exec(db, "RELEASE kpar_inputs", NULL, NULL, NULL);
	kpar_strv_free(&files);
	kpar_buf_free(&b);
	return rc;
}

static char *json_str(cJSON *o, const char *key)
{
	cJSON *v = cJSON_GetObjectItemCaseSensitive(o, key);
	return cJSON_IsString(v) ? kpar_xstrdup(v->valuestring) : NULL;
}

int kpar_plan_load(const char *path, struct kpar_plan *out)
{
	char *text = NULL;
	cJSON *root = NULL, *buckets, *b;
	size_t i = 0;
	int rc;

	memset(out, 0, sizeof *out);
	if ((rc = kpar_fs_read_all(path, &text, NULL)) < 0)
		return rc;
	root = cJSON_Parse(text);
	free(text);
	if (!root || !cJSON_IsObject(root)) {
		rc = kpar_error_set(KPAR_EINVAL, "plan '%s' is not valid JSON (run `kpar plan` again)", path);
		goto done;
	}
	out->key = json_str(root, "key");
	out->digest = json_str(root, "plan");
	out->tests_digest = json_str(root, "tests_digest");
	out->inputs_digest = json_str(root, "inputs_digest");
	{
		const cJSON *own = cJSON_GetObjectItemCaseSensitive(root, "test_inputs"), *it;
		cJSON_ArrayForEach(it, own) {
			if (cJSON_IsString(it) && it->string) {
				kpar_strv_push(&out->own_ids, it->string);
				kpar_strv_push(&out->own_digests, it->valuestring);
			}
		}
	}
	{
		const cJSON *l = cJSON_GetObjectItemCaseSensitive(root, "listed");
		out->listed = cJSON_IsNumber(l) && l->valuedouble >= 0 ? (size_t)l->valuedouble : 0;
	}
	buckets = cJSON_GetObjectItemCaseSensitive(root, "buckets");
	if (!out->key || !out->digest || !out->tests_digest || !out->inputs_digest ||
	    !cJSON_IsArray(buckets)) {
		rc = kpar_error_set(KPAR_EINVAL, "plan '%s' lacks key, plan, digests or buckets", path);
		goto done;
	}
	out->nbuckets = (size_t)cJSON_GetArraySize(buckets);
	out->buckets = kpar_xcalloc(out->nbuckets ? out->nbuckets : 1, sizeof *out->buckets);
	cJSON_ArrayForEach(b, buckets) {
		struct kpar_plan_bucket *pb = &out->buckets[i++];
		cJSON *tests = cJSON_GetObjectItemCaseSensitive(b, "tests"), *t;
		cJSON *est = cJSON_GetObjectItemCaseSensitive(b, "estimate");
		pb->bucket = (int)i;
		pb->estimate = cJSON_IsNumber(est) ? est->valuedouble : 0;
		if (!cJSON_IsArray(tests)) {
			rc = kpar_error_set(KPAR_EINVAL, "plan '%s': bucket %zu has no test array", path, i);
			goto done;
		}
		cJSON_ArrayForEach(t, tests) {
			if (!cJSON_IsString(t)) {
				rc = kpar_error_set(KPAR_EINVAL, "plan '%s': bucket %zu: a test id is not a string", path, i);
				goto done;
			}
			kpar_strv_push(&pb->tests, t->valuestring);
			out->ntests++;
		}
	}
	rc = 0;
done:
	cJSON_Delete(root);
	if (rc < 0)
		kpar_plan_free(out);
	return rc;
}

/* Removes bucket files past n, left from an earlier plan with more buckets:
 * an image or a reader globbing test-group-* must see exactly this plan. */
static int prune_buckets(const char *dir, size_t n)
{
	DIR *d = opendir(dir);
	struct dirent *e;
	int rc = 0;

	if (!d)
		return 0;
	while ((e = readdir(d)) != NULL) {
		char *end;
		unsigned long k;
		if (strncmp(e->d_name, "test-group-", 11) != 0)
			continue;
		k = strtoul(e->d_name + 11, &end, 10);
		if (*end == '\0' && k > n) {
			char *p = kpar_fs_join(dir, e->d_name);
			if (unlink(p) < 0)
				rc = kpar_error_errno(KPAR_EIO, "cannot remove stale bucket file '%s'", p);
			free(p);
		}
	}
	closedir(d);
	return rc;
}

int kpar_plan_write_buckets(const struct kpar_conf *c, const struct kpar_plan *p)
{
	char *dir = kpar_conf_path(c, "buckets"), *path;
	struct kpar_buf b = KPAR_BUF_INIT;
	char name[64];
	size_t i;
	int rc;

	if ((rc = kpar_fs_mkdir_p(dir, 0755)) < 0)
		goto done;
	for (i = 0; i < p->nbuckets && rc >= 0; i++) {
		snprintf(name, sizeof name, "test-group-%zu", i + 1);
		path = kpar_fs_join(dir, name);
		kpar_buf_clear(&b);
		kpar_testlist_format(&p->buckets[i].tests, &b);
		/* atomic: `make -j` may write them for one bucket while a
		 * worker reads them for another */
		rc = kpar_fs_write_if_changed(path, b.data, b.len);
		free(path);
	}
	if (rc >= 0)
		rc = prune_buckets(dir, p->nbuckets);
done:
	kpar_buf_free(&b);
	free(dir);
	return rc < 0 ? rc : 0;
}

static int write_plan(const struct kpar_conf *c, struct kpar_plan *p, int *changed)
{
	char *path = kpar_conf_path(c, "plan.json"), *text;
	cJSON *root = cJSON_CreateObject(), *arr;
	size_t i, j;
	int rc;

	cJSON_AddNumberToObject(root, "kpar_plan", PLAN_FORMAT);
	cJSON_AddStringToObject(root, "key", p->key);
	cJSON_AddStringToObject(root, "plan", p->digest);
	cJSON_AddStringToObject(root, "tests_digest", p->tests_digest);
	cJSON_AddStringToObject(root, "inputs_digest", p->inputs_digest);
	cJSON_AddNumberToObject(root, "tests", (double)p->ntests);
	if (p->listed > p->ntests)
		cJSON_AddNumberToObject(root, "listed", (double)p->listed);
	if (p->own_ids.n) {
		cJSON *own = cJSON_AddObjectToObject(root, "test_inputs");
		for (i = 0; i < p->own_ids.n; i++)
			cJSON_AddStringToObject(own, p->own_ids.v[i], p->own_digests.v[i]);
	}
	arr = cJSON_AddArrayToObject(root, "buckets");
	for (i = 0; i < p->nbuckets; i++) {
		cJSON *b = cJSON_CreateObject(), *tests;
		cJSON_AddNumberToObject(b, "bucket", (double)(i + 1));
		cJSON_AddNumberToObject(b, "estimate", round(p->buckets[i].estimate * 1000) / 1000);
		tests = cJSON_AddArrayToObject(b, "tests");
		for (j = 0; j < p->buckets[i].tests.n; j++)
			cJSON_AddItemToArray(tests, cJSON_CreateString(p->buckets[i].tests.v[j]));
		cJSON_AddItemToArray(arr, b);
	}
	text = cJSON_Print(root);
	{
		struct kpar_buf b = KPAR_BUF_INIT;
		kpar_buf_puts(&b, text);
		kpar_buf_putc(&b, '\n');
		rc = kpar_fs_write_if_changed(path, b.data, b.len);
		kpar_buf_free(&b);
	}
	if (rc >= 0) {
		*changed = rc;
		/* the bucket files of the last plan are wrong now; who needs
		 * them writes them from this one (kpar_plan_write_buckets) */
		if (rc) {
			char *dir = kpar_conf_path(c, "buckets");
			rc = prune_buckets(dir, 0);
			free(dir);
		}
	}
	cJSON_Delete(root);
	free(text);
	free(path);
	return rc;
}

/* KPAR_GROUP: each test's group is the part of its id the expression
 * matches, or its first parenthesised subexpression when it has one; a test
 * it does not match is a group of its own (NULL).  *keys has n entries. */
static int group_keys(const char *expr, const struct kpar_strv *tests, char ***keys)
{
	regex_t re;
	char **k;
	size_t i;
	int e = regcomp(&re, expr, REG_EXTENDED);

	*keys = NULL;
	if (e != 0) {
		char msg[200];
		regerror(e, &re, msg, sizeof msg);
		return kpar_error_set(KPAR_EINVAL, "KPAR_GROUP: '%s' is not an extended regular "
				      "expression: %s", expr, msg);
	}
	k = kpar_xcalloc(tests->n, sizeof *k);
	for (i = 0; i < tests->n; i++) {
		regmatch_t m[2];
		const regmatch_t *use;

		if (regexec(&re, tests->v[i], 2, m, 0) != 0)
			continue;
		use = re.re_nsub >= 1 && m[1].rm_so >= 0 ? &m[1] : &m[0];
		k[i] = kpar_xstrndup(tests->v[i] + use->rm_so, (size_t)(use->rm_eo - use->rm_so));
	}
	regfree(&re);
	*keys = k;
	return 0;
}

/* What the history the split reads owes to imports, for the plan key:
 * KPAR_HISTORY_FROM's files by content (no path, so any checkout gets the
 * same key; a changed report makes a new plan), and the imports recorded
 * in the history (after `kpar history import` the next plan splits again).
 * With do_import, first imports the files (kpar_import_if_new: a first
 * run, before anything is estimated); without, db may be NULL or
 * read-only, and the key is what it will be after that import whenever
 * the files were imported before. */
static int history_key(const struct kpar_conf *c, sqlite3 *db, const struct kpar_strv *tests,
		       int do_import, struct kpar_buf *kb, size_t *nimp)
{
	struct kpar_strv from = KPAR_STRV_INIT, dig = KPAR_STRV_INIT;
	struct kpar_buf imp = KPAR_BUF_INIT;
	size_t i;
	int rc = 0;

	*nimp = 0;
	if (*c->history_from) {
		rc = kpar_import_expand(c->history_from, c->root, &from);
		for (i = 0; rc == 0 && i < from.n; i++) {
			char fd[KPAR_DIGEST_STR];
			if ((rc = file_digest(db, from.v[i], fd)) < 0)
				kpar_error_prefix(rc, "KPAR_HISTORY_FROM");
			else
				kpar_strv_push(&dig, fd);
		}
		if (rc == 0 && do_import && db)
			rc = kpar_import_if_new(db, &from, &dig, tests, nimp);
		if (rc < 0)
			goto done;
		kpar_strv_sort(&dig);
		kpar_buf_printf(kb, "history-from %s\n", c->history_from);
		for (i = 0; i < dig.n; i++)
			kpar_buf_printf(kb, "history-from-content %s\n", dig.v[i]);
	}
	if (db && (rc = kpar_import_state(db, &imp)) == 0 && imp.len)
		kpar_buf_printf(kb, "imports %s\n", imp.data);
done:
	kpar_buf_free(&imp);
	kpar_strv_free(&from);
	kpar_strv_free(&dig);
	return rc;
}

/* Reads tests.list into *tests (canonical, not empty) and its digest. */
static int read_list(const struct kpar_conf *c, struct kpar_strv *tests, char tdig[KPAR_DIGEST_STR])
{
	char *list_path = kpar_conf_path(c, "tests.list"), *list_text = NULL;
	size_t list_len = 0;
	int rc;

	if ((rc = kpar_fs_read_all(list_path, &list_text, &list_len)) < 0) {
		kpar_error_prefix(rc, "test list (run `kpar list` first)");
		goto done;
	}
	if ((rc = kpar_testlist_parse(list_text, list_len, list_path, tests)) < 0)
		goto done;
	kpar_testlist_canonicalise(tests);
	if (tests->n == 0) {
		rc = kpar_error_set(KPAR_EINVAL, "test list '%s' is empty: nothing to run", list_path);
		goto done;
	}
	kpar_digest_str(list_text, list_len, tdig);
done:
	free(list_text);
	free(list_path);
	return rc;
}

/* KPAR_TEST_INPUTS_OF words "TEST-PATTERN:INPUT,INPUT...", split at the
 * last ':'.  A pattern with a '%' matches the ids around it and the stem
 * replaces the '%' of each input; one without names an id.  A test's own
 * digest covers the inputs of every word it matches, a missing file as
 * missing (so making it changes the digest); a test no word matches gets
 * "-": only the global inputs (KPAR_TEST_INPUTS) decide for it. */
static int own_digests(const struct kpar_conf *c, sqlite3 *db, const struct kpar_strv *tests,
		       struct kpar_strv *out)
{
	struct kpar_strv words = KPAR_STRV_INIT;
	struct kpar_buf b = KPAR_BUF_INIT;
	struct digest_cache dc;
	size_t i, w;
	int rc;

	if ((rc = kpar_testlist_from_words(c->inputs_of, &words)) < 0)
		return kpar_error_prefix(rc, "KPAR_TEST_INPUTS_OF");
	digest_cache_open(&dc, db);
	for (w = 0; w < words.n; w++)
		if (!strrchr(words.v[w], ':') || strrchr(words.v[w], ':') == words.v[w]) {
			rc = kpar_error_set(KPAR_EINVAL, "KPAR_TEST_INPUTS_OF: '%s' is not TEST-PATTERN:INPUT,...",
					    words.v[w]);
			goto done;
		}
	for (i = 0; i < tests->n; i++) {
		const char *id = tests->v[i];
		size_t idlen = strlen(id);
		int matched = 0;

		kpar_buf_clear(&b);
		for (w = 0; w < words.n; w++) {
			const char *pat = words.v[w], *colon = strrchr(pat, ':'), *pct, *in;
			size_t plen = (size_t)(colon - pat), pre, suf, stemlen = 0;
			const char *stem = NULL;

			pct = memchr(pat, '%', plen);
			if (pct) {
				pre = (size_t)(pct - pat);
				suf = plen - pre - 1;
				if (idlen < pre + suf || memcmp(id, pat, pre) != 0 ||
				    memcmp(id + idlen - suf, pct + 1, suf) != 0)
					continue;
				stem = id + pre;
				stemlen = idlen - pre - suf;
			} else if (plen != idlen || memcmp(id, pat, plen) != 0) {
				continue;
			}
			matched = 1;
			for (in = colon + 1; *in;) {
				size_t n = strcspn(in, ",");
				struct kpar_buf path = KPAR_BUF_INIT;
				const char *q = stem ? memchr(in, '%', n) : NULL;
				char d[KPAR_DIGEST_STR], *full;

				if (q) {
					kpar_buf_add(&path, in, (size_t)(q - in));
					kpar_buf_add(&path, stem, stemlen);
					kpar_buf_add(&path, q + 1, n - (size_t)(q - in) - 1);
				} else {
					kpar_buf_add(&path, in, n);
				}
				kpar_buf_putc(&path, '\0');
				if (path.len > 1) {
					full = path.data[0] == '/' ? kpar_xstrdup(path.data)
								   : kpar_fs_join(c->root, path.data);
					if (cached_digest(&dc, full, d) < 0) {
						kpar_error_clear();
						snprintf(d, sizeof d, "missing");
					}
					kpar_buf_printf(&b, "%s\t%s\n", path.data, d);
					free(full);
				}
				kpar_buf_free(&path);
				in += n;
				if (*in == ',')
					in++;
			}
		}
		if (matched) {
			char d[KPAR_DIGEST_STR];
			kpar_digest_str(b.data ? b.data : "", b.len, d);
			kpar_strv_push(out, d);
		} else {
			kpar_strv_push(out, "-");
		}
	}
	rc = 0;
done:
	digest_cache_close(&dc);
	kpar_strv_free(&words);
	kpar_buf_free(&b);
	return rc;
}

static int cmp_str(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

/* Keeps in *tests (and *own, aligned) the tests to run now:
 *  - KPAR_ONLY's words are globs (fnmatch, '*' crossing '/') matched
 *    against whole ids;
 *  - KPAR_RECHECK keeps the tests whose latest result (any earlier run) is
 *    a failure or an error; both set, a test must pass both;
 *  - else, with KPAR_TEST_INPUTS_OF, the tests whose latest result was not
 *    made with these global inputs and this own digest (incremental).
 * st may be NULL (no history: nothing to recheck, nothing to reuse).
 * Returns the number kept, or a negative error; KPAR_ONLY matching nothing
 * is an error naming it. */
static long select_tests(const struct kpar_conf *c, struct kpar_state *st, const char *inputs,
			 struct kpar_strv *tests, struct kpar_strv *own)
{
	struct kpar_strv words = KPAR_STRV_INIT, failed = KPAR_STRV_INIT, kept = KPAR_STRV_INIT,
			 kept_own = KPAR_STRV_INIT;
	unsigned char *reuse = NULL;
	size_t i, j, listed = tests->n;
	long rc = 0;

	if (*c->inputs_of && (rc = own_digests(c, st ? kpar_state_db(st) : NULL, tests, own)) < 0)
		goto done;
	if (!*c->only && !c->recheck && !*c->inputs_of)
		return (long)tests->n;
	if ((rc = kpar_testlist_from_words(c->only, &words)) < 0) {
		kpar_error_prefix((int)rc, "KPAR_ONLY");
		goto done;
	}
	if (c->recheck && st && (rc = kpar_state_latest_failed(st, &failed)) < 0)
		goto done;
	kpar_strv_sort(&failed);
	reuse = kpar_xcalloc(tests->n ? tests->n : 1, 1);
	if (!*c->only && !c->recheck && st &&
	    (rc = kpar_state_reusable(st, inputs, tests, own, reuse)) < 0)
		goto done;
	for (i = 0; i < tests->n; i++) {
		const char *id = tests->v[i], *key = id;
		int ok = words.n == 0;
		for (j = 0; !ok && j < words.n; j++)
			ok = fnmatch(words.v[j], id, 0) == 0;
		if (ok && c->recheck)
			ok = failed.n > 0 && bsearch(&key, failed.v, failed.n, sizeof *failed.v, cmp_str) != NULL;
		if (ok && reuse[i])
			ok = 0;
		if (ok) {
			kpar_strv_push(&kept, id);
			if (own->n)
				kpar_strv_push(&kept_own, own->v[i]);
		}
	}
	if (kept.n == 0 && *c->only) {
		rc = kpar_error_set(KPAR_EINVAL, "KPAR_ONLY '%s' matches none of the %zu tests%s", c->only,
				    listed, c->recheck ? " that failed last" : "");
		goto done;
	}
	kpar_strv_free(tests);
	*tests = kept;
	memset(&kept, 0, sizeof kept);
	kpar_strv_free(own);
	*own = kept_own;
	memset(&kept_own, 0, sizeof kept_own);
	rc = (long)tests->n;
done:
	free(reuse);
	kpar_strv_free(&words);
	kpar_strv_free(&failed);
	kpar_strv_free(&kept);
	kpar_strv_free(&kept_own);
	return rc;
}

/* The plan key of the tests (tdig: their list's digest; inputs: the run
 * inputs, kpar_plan_inputs_digest): what the results depend on and every
 * setting the split reads (a plan kept across a changed one is not the
 * plan the settings ask for).  A finished run is
 * still kept when a changed setting yields the same split: runs are
 * matched by the plan digest, which names the buckets only.  db (may be
 * NULL) caches file digests.  do_import and *nimp: see history_key. */
static int plan_key(const struct kpar_conf *c, sqlite3 *db, const struct kpar_strv *tests,
		    const struct kpar_strv *own, int do_import, size_t *nimp, const char tdig[KPAR_DIGEST_STR],
		    const char inputs[KPAR_DIGEST_STR], char key[KPAR_DIGEST_STR])
{
	struct kpar_buf kb = KPAR_BUF_INIT;
	size_t nb;
	int rc = 0;

	/* how many buckets the split makes is part of the key */
	nb = c->buckets > 0 ? (size_t)c->buckets : kpar_plan_default_buckets(c, tests->n);
	if (nb > tests->n)
		nb = tests->n;
	kpar_buf_printf(&kb, "kpar-plan %d\ntests %s\ninputs %s\nbuckets %ld\nworkers %ld\n"
			"default-seconds %.17g\ngroup %s\nhints %s\n", PLAN_FORMAT, tdig, inputs,
			c->buckets, c->workers, c->default_seconds, c->group, c->hints);
	if (c->buckets <= 0)
		kpar_buf_printf(&kb, "default-buckets %zu\n", nb);
	if (*c->hints) {
		/* the hints file's content, not only its name, shapes the split */
		char hd[KPAR_DIGEST_STR];
		if ((rc = file_digest(db, c->hints, hd)) < 0) {
			kpar_error_prefix(rc, "KPAR_HINTS");
			goto done;
		}
		kpar_buf_printf(&kb, "hints-content %s\n", hd);
	}
	if ((rc = history_key(c, db, tests, do_import, &kb, nimp)) < 0)
		goto done;
	if (*c->only || c->recheck || *c->inputs_of) {
		/* the part chosen, by name and own inputs: a recheck after another
		 * run, or a test whose input changed again, chooses anew */
		size_t i;
		kpar_buf_printf(&kb, "only %s\nrecheck %d\n", c->only, c->recheck);
		for (i = 0; i < tests->n; i++)
			kpar_buf_printf(&kb, "run %s %s\n", tests->v[i], own && own->n ? own->v[i] : "");
	}
	kpar_digest_str(kb.data, kb.len, key);
done:
	kpar_buf_free(&kb);
	return rc;
}

int kpar_plan_stale(const struct kpar_conf *c, int *stale)
{
	struct kpar_strv tests = KPAR_STRV_INIT;
	struct kpar_state *st = NULL;
	struct kpar_plan p;
	char *plan_path = kpar_conf_path(c, "plan.json");
	char inputs[KPAR_DIGEST_STR], tdig[KPAR_DIGEST_STR], key[KPAR_DIGEST_STR];
	struct kpar_strv own = KPAR_STRV_INIT;
	size_t nimp;
	long sel;
	int rc;

	*stale = 1;
	memset(&p, 0, sizeof p);
	if ((rc = read_list(c, &tests, tdig)) < 0)
		goto done;
	/* Read-only: answering make -q or -n must not create or change state. */
	if ((rc = kpar_state_open(&st, c->state_dir, KPAR_STATE_RDONLY)) < 0) {
		if (rc != KPAR_ENOTFOUND)
			goto done;
		kpar_error_clear();
		st = NULL;
	}
	if ((rc = kpar_plan_inputs_digest(c, st ? kpar_state_db(st) : NULL, inputs)) < 0)
		goto done;
	if ((sel = select_tests(c, st, inputs, &tests, &own)) < 0) {
		rc = (int)sel;
		goto done;
	}
	if (sel == 0) {
		*stale = 0;  /* nothing to run: the plan on disk stays */
		rc = 0;
		goto done;
	}
	if ((rc = plan_key(c, st ? kpar_state_db(st) : NULL, &tests, &own, 0, &nimp, tdig, inputs, key)) < 0)
		goto done;
	if (kpar_plan_load(plan_path, &p) == 0 && strcmp(p.key, key) == 0)
		*stale = 0;
	kpar_error_clear();
	rc = 0;
done:
	kpar_plan_free(&p);
	kpar_state_close(st);
	kpar_strv_free(&tests);
	kpar_strv_free(&own);
	free(plan_path);
	return rc;
}

int kpar_plan_make(const struct kpar_conf *c, struct kpar_plan *out, int *changed)
{
	struct kpar_strv tests = KPAR_STRV_INIT;
	struct kpar_buf db = KPAR_BUF_INIT;
	struct kpar_estimate_opts eo;
	struct kpar_state *st = NULL;
	char *plan_path = kpar_conf_path(c, "plan.json");
	size_t nb, i, *bucket_of = NULL;
	char **groups = NULL;
	double *secs = NULL;
	enum kpar_est_source *srcs = NULL;
	size_t nimported = 0, listed;
	struct kpar_strv own = KPAR_STRV_INIT;
	long sel;
	char inputs[KPAR_DIGEST_STR], tdig[KPAR_DIGEST_STR], key[KPAR_DIGEST_STR], pdig[KPAR_DIGEST_STR];
	int rc;

	memset(out, 0, sizeof *out);
	*changed = 0;
	/* the list first: a missing one must not create the state database */
	if ((rc = read_list(c, &tests, tdig)) < 0 || (rc = kpar_state_open(&st, c->state_dir, 0)) < 0)
		goto done;
	listed = tests.n;
	if ((rc = kpar_plan_inputs_digest(c, kpar_state_db(st), inputs)) < 0)
		goto done;
	if ((sel = select_tests(c, st, inputs, &tests, &own)) < 0) {
		rc = (int)sel;
		goto done;
	}
	if (sel == 0) {
		/* A recheck with nothing failed, or no test whose inputs
		 * changed: the last run's plan (and so its verdict) stands. */
		if (c->recheck)
			fprintf(stderr, "kpar: nothing to recheck: no test failed or erred in its latest run\n");
		if ((rc = kpar_plan_load(plan_path, out)) < 0)
			kpar_error_prefix(rc, "nothing to run, and no plan");
		goto done;
	}
	if ((rc = plan_key(c, kpar_state_db(st), &tests, &own, 1, &nimported, tdig, inputs, key)) < 0)
		goto done;
	nb = c->buckets > 0 ? (size_t)c->buckets : kpar_plan_default_buckets(c, tests.n);
	if (nb > tests.n)
		nb = tests.n;

	/* Same key as the plan on disk: keep it (see plan.h). */
	if (kpar_plan_load(plan_path, out) == 0 && strcmp(out->key, key) == 0) {
		/* Rewriting is a no-op unless plan.json was lost or edited. */
		rc = write_plan(c, out, changed);
		goto done;
	}
	kpar_plan_free(out);
	kpar_error_clear();

	memset(&eo, 0, sizeof eo);
	eo.root = c->root;
	eo.hints = *c->hints ? c->hints : NULL;
	eo.default_seconds = c->default_seconds;
	eo.workers = c->workers > 0 ? (size_t)c->workers : 0;
	secs = kpar_xcalloc(tests.n, sizeof *secs);
	bucket_of = kpar_xcalloc(tests.n, sizeof *bucket_of);
	srcs = kpar_xcalloc(tests.n, sizeof *srcs);
	if ((rc = kpar_estimate(kpar_state_db(st), &eo, tests.v, tests.n, secs, srcs)) < 0)
		goto done;
	if (c->buckets <= 0 && strcmp(c->backend, "k8s") == 0) {
		/* Pods take seconds to start: as many buckets a worker as pays
		 * for itself, by the start cost the last runs measured. */
		char *v = NULL;
		if (kpar_state_run_meta_get(st, -1, "k8s.start_cost", &v) == 0 && v) {
			double total = 0, known = 0, cost = atof(v);
			size_t f;
			for (i = 0; i < tests.n; i++) {
				total += secs[i];
				if (srcs[i] == KPAR_EST_HISTORY)
					known += secs[i];
			}
			f = kpar_plan_buckets_per_worker(cost, total / (double)c->workers,
							 total > 0 ? known / total : 0);
			nb = f * (size_t)c->workers < tests.n ? f * (size_t)c->workers : tests.n;
			fprintf(stderr, "kpar: pods start in %.1fs: %zu bucket%s a worker\n", cost, f,
				kpar_buf_plural(f));
		}
		kpar_error_clear();
		free(v);
	}
	/* Buckets made for the workers that will take them: each worker's
	 * share of a balanced schedule, cut into halving sizes (split.h); or,
	 * when no estimate ranks the tests, name order in shrinking runs. */
	if (*c->group && (rc = group_keys(c->group, &tests, &groups)) < 0)
		goto done;
	if (groups)
		nb = kpar_split_grouped(tests.v, secs, (const char *const *)groups, tests.n, nb,
					(size_t)c->workers, 0, bucket_of);
	else
		nb = kpar_split_auto(tests.v, secs, srcs, tests.n, nb, (size_t)c->workers, bucket_of);

	out->nbuckets = nb;
	out->ntests = tests.n;
	out->buckets = kpar_xcalloc(nb, sizeof *out->buckets);
	for (i = 0; i < nb; i++)
		out->buckets[i].bucket = (int)i + 1;
	for (i = 0; i < tests.n; i++) {
		struct kpar_plan_bucket *pb = &out->buckets[bucket_of[i]];
		kpar_strv_push(&pb->tests, tests.v[i]);
		pb->estimate += secs[i];
	}
	kpar_buf_printf(&db, "%s\n", key);
	for (i = 0; i < nb; i++) {
		size_t j;
		kpar_buf_printf(&db, "bucket %zu\n", i + 1);
		for (j = 0; j < out->buckets[i].tests.n; j++)
			kpar_buf_printf(&db, "%s\n", out->buckets[i].tests.v[j]);
	}
	kpar_digest_str(db.data, db.len, pdig);
	out->key = kpar_xstrdup(key);
	out->digest = kpar_xstrdup(pdig);
	out->tests_digest = kpar_xstrdup(tdig);
	out->inputs_digest = kpar_xstrdup(inputs);
	out->imported = nimported;
	out->listed = listed;
	if (own.n) {
		for (i = 0; i < tests.n; i++)
			kpar_strv_push(&out->own_ids, tests.v[i]);
		out->own_digests = own;
		memset(&own, 0, sizeof own);
	}
	rc = write_plan(c, out, changed);
done:
	if (rc < 0)
		kpar_plan_free(out);
	kpar_state_close(st);
	if (groups)
		for (i = 0; i < tests.n; i++)
			free(groups[i]);
	free(groups);
	kpar_strv_free(&tests);
	kpar_strv_free(&own);
	kpar_buf_free(&db);
	free(plan_path);
	free(secs);
	free(srcs);
	free(bucket_of);
	return rc;
}
