/* test_cache.c - unit tests of the artifact cache: naming and parsing, the
 * index, the GC policy (with a fixed clock), used-lists, export and
 * fetches from file:// URLs.  The HTTP faults are tested against a real
 * server in tests/cache/. */
#include "config.h"

#include <fcntl.h>
#include <sqlite3.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <signal.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "base/buf.h"
#include "cache/cache.h"
#include "base/conf.h"
#include "base/digest.h"
#include "base/error.h"
#include "base/fs.h"
#include "test.h"

static char *tmp_root;

static char *tmpdir(const char *name)
{
	char *p;

	if (!tmp_root) {
		char tmpl[] = "/tmp/kpar-test-cache-XXXXXX";
		if (!mkdtemp(tmpl))
			abort();
		tmp_root = kpar_xstrdup(tmpl);
	}
	p = kpar_xasprintf("%s/%s", tmp_root, name);
	kpar_fs_remove_tree(p);
	kpar_fs_mkdir_p(p, 0755);
	return p;
}

/* Writes content to dir/name; returns "file://<path>" and the hex digest. */
static char *make_file(const char *dir, const char *name, const char *content, char hex[65])
{
	char *path = kpar_fs_join(dir, name);
	char *url = kpar_xasprintf("file://%s", path);
	char d[KPAR_DIGEST_STR];

	kpar_fs_write_atomic(path, content, strlen(content));
	kpar_digest_str(content, strlen(content), d);
	memcpy(hex, d + 7, 65);
	free(path);
	return url;
}

static struct kpar_cache *open_cache(const char *dir)
{
	struct kpar_cache_opts o;
	struct kpar_cache *c = NULL;

	kpar_cache_opts_init(&o);
	o.dir = kpar_xstrdup(dir);
	o.retries = 0;
	if (kpar_cache_open(&c, &o) < 0) {
		fprintf(stderr, "open: %s\n", kpar_error_last());
		abort();
	}
	kpar_cache_opts_free(&o);
	return c;
}

static int fetch(struct kpar_cache *c, const char *url, const char *sha, const char *name,
		 struct kpar_cache_result *r)
{
	struct kpar_cache_req req;

	memset(&req, 0, sizeof req);
	req.url = url;
	req.sha256 = sha;
	req.name = name;
	return kpar_cache_fetch(c, &req, r);
}

/* Runs SQL on the cache's index from outside (as another process would). */
static void sql(const char *dir, const char *stmt)
{
	char *path = kpar_fs_join(dir, "index.db");
	sqlite3 *db;

	if (sqlite3_open(path, &db) != SQLITE_OK ||
	    sqlite3_exec(db, stmt, NULL, NULL, NULL) != SQLITE_OK) {
		fprintf(stderr, "sql %s: %s\n", stmt, sqlite3_errmsg(db));
		abort();
	}
	sqlite3_close(db);
	free(path);
}

static char *file_text(const char *path)
{
	char *s = NULL;

	if (kpar_fs_read_all(path, &s, NULL) < 0) {
		kpar_error_clear();
		return kpar_xstrdup("(unreadable)");
	}
	return s;
}

/* --- naming and parsing --- */

KPAR_TEST(parse_sha256)
{
	char hex[KPAR_SHA256_HEX];
	const char *good = "E3B0C44298FC1C149AFBF4C8996FB92427AE41E4649B934CA495991B7852B855";

	CHECK_OK(kpar_cache_parse_sha256(good, hex));
	CHECK_STR(hex, "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
	CHECK_OK(kpar_cache_parse_sha256("sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b"
					 "934ca495991b7852b855", hex));
	CHECK_INT(kpar_cache_parse_sha256("e3b0", hex), KPAR_EINVAL);
	CHECK(strstr(kpar_error_last(), "'e3b0'") != NULL);
	CHECK_INT(kpar_cache_parse_sha256("g3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca4959"
					  "91b7852b855", hex), KPAR_EINVAL);
	CHECK_INT(kpar_cache_parse_sha256("e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca4959"
					  "91b7852b8555", hex), KPAR_EINVAL);
	CHECK_INT(kpar_cache_parse_sha256("md5:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca"
					  "495991b7852b855", hex), KPAR_EINVAL);
}

KPAR_TEST(parse_size_age_policy)
{
	uint64_t n = 0;
	long a = 0;

	CHECK_OK(kpar_cache_parse_size("4096", &n));
	CHECK_INT(n, 4096);
	CHECK_OK(kpar_cache_parse_size("10G", &n));
	CHECK_INT(n, 10LL << 30);
	CHECK_OK(kpar_cache_parse_size("1.5k", &n));
	CHECK_INT(n, 1536);
	CHECK_OK(kpar_cache_parse_size("512MiB", &n));
	CHECK_INT(n, 512LL << 20);
	CHECK_OK(kpar_cache_parse_size("0", &n));
	CHECK_INT(n, 0);
	CHECK_INT(kpar_cache_parse_size("10X", &n), KPAR_EINVAL);
	CHECK_INT(kpar_cache_parse_size("-1", &n), KPAR_EINVAL);
	CHECK_INT(kpar_cache_parse_size("", &n), KPAR_EINVAL);
	CHECK_INT(kpar_cache_parse_size("G", &n), KPAR_EINVAL);

	CHECK_OK(kpar_cache_parse_age("90d", &a));
	CHECK_INT(a, 90 * 86400);
	CHECK_OK(kpar_cache_parse_age("12h", &a));
	CHECK_INT(a, 12 * 3600);
	CHECK_OK(kpar_cache_parse_age("1w", &a));
	CHECK_INT(a, 7 * 86400);
	CHECK_OK(kpar_cache_parse_age("45", &a));
	CHECK_INT(a, 45);
	CHECK_INT(kpar_cache_parse_age("3y", &a), KPAR_EINVAL);

	CHECK_OK(kpar_cache_parse_revalidate("always", &a));
	CHECK_INT(a, KPAR_CACHE_REVALIDATE_ALWAYS);
	CHECK_OK(kpar_cache_parse_revalidate("never", &a));
	CHECK_INT(a, KPAR_CACHE_REVALIDATE_NEVER);
	CHECK_OK(kpar_cache_parse_revalidate("1h", &a));
	CHECK_INT(a, 3600);
	CHECK_INT(kpar_cache_parse_revalidate("sometimes", &a), KPAR_EINVAL);
	CHECK(strstr(kpar_error_last(), "'sometimes'") != NULL);
}

KPAR_TEST(names_and_paths)
{
	char *s, *p = NULL;
	char key[KPAR_CACHE_KEY_MAX];
	const char *hex = "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855";

	s = kpar_cache_url_name("https://example.org/dl/foo-1.2.tar.gz?token=x#frag");
	CHECK_STR(s, "foo-1.2.tar.gz");
	free(s);
	s = kpar_cache_url_name("https://example.org/a%20b/c%20d.txt");
	CHECK_STR(s, "c_20d.txt");         /* not decoded: the plugin has no URL library */
	free(s);
	s = kpar_cache_url_name("https://example.org/");
	CHECK_STR(s, "artifact");
	free(s);
	s = kpar_cache_url_name("https://example.org");
	CHECK_STR(s, "artifact");
	free(s);
	s = kpar_cache_url_name("file:///srv/mirror/x-1.0.zip");
	CHECK_STR(s, "x-1.0.zip");
	free(s);
	s = kpar_cache_url_name("https://example.org/..hidden");
	CHECK_STR(s, "hidden");
	free(s);
	s = kpar_cache_url_name("https://example.org/$(shell rm -rf x);`y`");
	CHECK(strchr(s, '$') == NULL && strchr(s, '(') == NULL && strchr(s, ';') == NULL &&
	      strchr(s, '`') == NULL && strchr(s, '/') == NULL);
	free(s);

	CHECK_OK(kpar_cache_check_name("foo-1.2_x+y~.tar.gz"));
	CHECK_INT(kpar_cache_check_name(".hidden"), KPAR_EINVAL);
	CHECK_INT(kpar_cache_check_name("a/b"), KPAR_EINVAL);
	CHECK_INT(kpar_cache_check_name("a b"), KPAR_EINVAL);
	CHECK_INT(kpar_cache_check_name(""), KPAR_EINVAL);
	CHECK_INT(kpar_cache_check_name("x:y"), KPAR_EINVAL);

	kpar_cache_key("https://example.org/x", hex, key);
	CHECK_STR(key, "sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
	CHECK_OK(kpar_cache_check_key(key));
	kpar_cache_key("https://example.org/x", NULL, key);
	CHECK(strncmp(key, "url:", 4) == 0 && strlen(key) == 68);
	CHECK_OK(kpar_cache_check_key(key));
	CHECK_INT(kpar_cache_check_key("url:abc"), KPAR_EINVAL);
	CHECK_INT(kpar_cache_check_key("sha1:e3b0"), KPAR_EINVAL);

	CHECK_OK(kpar_cache_path("/c", "https://example.org/x.tgz", hex, NULL, &p));
	CHECK_STR(p, "/c/blobs/sha256/e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
	free(p);
	CHECK_OK(kpar_cache_path("/c", "https://example.org/x.tgz", hex, "x.tgz", &p));
	CHECK_STR(p, "/c/named/e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855/x.tgz");
	free(p);
	CHECK_OK(kpar_cache_path("/c", "https://example.org/x.tgz", NULL, NULL, &p));
	kpar_cache_key("https://example.org/x.tgz", NULL, key);
	{
		char *want = kpar_xasprintf("/c/snapshots/%s/x.tgz", key + 4);
		CHECK_STR(p, want);
		free(want);
	}
	free(p);
	CHECK_INT(kpar_cache_path("/c", "https://example.org/x.tgz", "nothex", NULL, &p),
		  KPAR_EINVAL);
	CHECK(p == NULL);
	CHECK_INT(kpar_cache_path("/c", "https://example.org/x.tgz", hex, "../x", &p), KPAR_EINVAL);
}

KPAR_TEST(redact)
{
	char *s = kpar_cache_redact_url("https://user:s3cret@example.org/x.tgz");

	CHECK(strstr(s, "s3cret") == NULL);
	CHECK(strstr(s, "user") == NULL);
	CHECK(strstr(s, "example.org/x.tgz") != NULL);
	free(s);
	s = kpar_cache_redact_url("https://example.org/x.tgz");
	CHECK_STR(s, "https://example.org/x.tgz");
	free(s);
}

/* The settings reach the cache the one way every setting does: conf.c
 * reads the environment, kpar_cache_opts_conf applies. */
static int opts_from_env(struct kpar_cache_opts *o)
{
	struct kpar_conf conf;
	int rc = kpar_conf_load(&conf);

	if (rc == 0)
		rc = kpar_cache_opts_conf(o, &conf);
	kpar_conf_free(&conf);
	return rc;
}

KPAR_TEST(opts_conf)
{
	struct kpar_cache_opts o;

	kpar_cache_opts_init(&o);
	setenv("KPAR_CACHE_DIR", "/somewhere", 1);
	setenv("KPAR_CACHE_MIRRORS", " http://m1/a  http://m2/{sha256} ", 1);
	setenv("KPAR_CACHE_REVALIDATE", "never", 1);
	setenv("KPAR_CACHE_RETRIES", "5", 1);
	setenv("KPAR_CACHE_STALL_TIMEOUT", "2m", 1);
	setenv("KPAR_CACHE_READONLY", "yes", 1);
	CHECK_OK(opts_from_env(&o));
	CHECK_STR(o.dir, "/somewhere");
	CHECK_INT(o.mirrors.n, 2);
	if (o.mirrors.n == 2) {
		CHECK_STR(o.mirrors.v[0], "http://m1/a");
		CHECK_STR(o.mirrors.v[1], "http://m2/{sha256}");
	}
	CHECK_INT(o.revalidate, KPAR_CACHE_REVALIDATE_NEVER);
	CHECK_INT(o.retries, 5);
	CHECK_INT(o.stall_timeout, 120);
	CHECK_INT(o.connect_timeout, 30);   /* not set: the cache's default */
	CHECK_INT(o.readonly, 1);
	unsetenv("KPAR_CACHE_READONLY");
	unsetenv("KPAR_CACHE_STALL_TIMEOUT");
	setenv("KPAR_CACHE_RETRIES", "many", 1);
	CHECK_INT(opts_from_env(&o), KPAR_EINVAL);
	CHECK(strstr(kpar_error_last(), "KPAR_CACHE_RETRIES") != NULL);
	setenv("KPAR_CACHE_RETRIES", "101", 1);
	CHECK_INT(opts_from_env(&o), KPAR_EINVAL);
	unsetenv("KPAR_CACHE_RETRIES");
	setenv("KPAR_CACHE_REVALIDATE", "often", 1);
	CHECK_INT(opts_from_env(&o), KPAR_EINVAL);
	CHECK(strstr(kpar_error_last(), "KPAR_CACHE_REVALIDATE") != NULL);
	CHECK(strstr(kpar_error_last(), "'often'") != NULL);
	unsetenv("KPAR_CACHE_REVALIDATE");
	unsetenv("KPAR_CACHE_MIRRORS");
	unsetenv("KPAR_CACHE_DIR");
	kpar_cache_opts_free(&o);
}

/* --- fetching from file:// --- */

KPAR_TEST(fetch_pinned_file)
{
	char *src = tmpdir("pin-src"), *dir = tmpdir("pin-cache");
	char hex[65], *url = make_file(src, "data.txt", "hello artifact\n", hex);
	struct kpar_cache *c = open_cache(dir);
	struct kpar_cache_result r;
	struct kpar_cache_stats s;
	struct stat st;
	char *text, *want;

	CHECK_OK(fetch(c, url, hex, NULL, &r));
	want = kpar_xasprintf("%s/blobs/sha256/%s", dir, hex);
	CHECK_STR(r.path, want);
	CHECK_INT(r.hit, 0);
	CHECK_INT(r.size, 15);
	text = file_text(r.path);
	CHECK_STR(text, "hello artifact\n");
	free(text);
	CHECK(stat(r.path, &st) == 0 && (st.st_mode & 0222) == 0);   /* read-only blob */
	kpar_cache_result_free(&r);

	/* Pinned: never read from the URL again, even once the source is gone. */
	unlink(url + 7);
	CHECK_OK(fetch(c, url, hex, NULL, &r));
	CHECK_STR(r.path, want);
	CHECK_INT(r.hit, 1);
	kpar_cache_result_free(&r);

	/* With a name: a link beside, same bytes. */
	CHECK_OK(fetch(c, url, hex, "data-1.0.txt", &r));
	CHECK(strstr(r.path, "/named/") != NULL);
	CHECK(lstat(r.path, &st) == 0 && S_ISLNK(st.st_mode));
	text = file_text(r.path);
	CHECK_STR(text, "hello artifact\n");
	free(text);
	kpar_cache_result_free(&r);

	CHECK_OK(kpar_cache_stats(c, &s));
	CHECK_INT(s.entries, 1);
	CHECK_INT(s.pinned, 1);
	CHECK_INT(s.bytes, 15);
	CHECK_INT(s.misses, 1);
	CHECK_INT(s.hits, 2);
	kpar_cache_close(c);
	free(want);
	free(url);
	free(src);
	free(dir);
}

KPAR_TEST(fetch_checksum_mismatch_stores_nothing)
{
	char *src = tmpdir("bad-src"), *dir = tmpdir("bad-cache");
	char hex[65], *url = make_file(src, "data.txt", "the real content\n", hex);
	const char *wrong = "0000000000000000000000000000000000000000000000000000000000000000";
	struct kpar_cache *c = open_cache(dir);
	struct kpar_cache_result r;
	struct kpar_cache_stats s;
	char *blobs = kpar_fs_join(dir, "blobs/sha256"), *p;

	CHECK_INT(fetch(c, url, wrong, NULL, &r), KPAR_ECHECKSUM);
	CHECK(strstr(kpar_error_last(), "checksum mismatch") != NULL);
	CHECK(strstr(kpar_error_last(), wrong) != NULL);
	CHECK(strstr(kpar_error_last(), hex) != NULL);
	CHECK(strstr(kpar_error_last(), url) != NULL);
	CHECK(r.path == NULL);
	CHECK_OK(kpar_cache_stats(c, &s));
	CHECK_INT(s.entries, 0);
	CHECK_INT(s.partials, 0);
	p = kpar_fs_join(blobs, wrong);
	CHECK(!kpar_fs_exists(p));
	free(p);
	p = kpar_fs_join(blobs, hex);
	CHECK(!kpar_fs_exists(p));
	free(p);
	kpar_cache_close(c);
	free(blobs);
	free(url);
	free(src);
	free(dir);
}

KPAR_TEST(fetch_errors_name_the_url)
{
	char *dir = tmpdir("err-cache");
	struct kpar_cache *c = open_cache(dir);
	struct kpar_cache_result r;

	CHECK_INT(fetch(c, "file:///nonexistent/kpar-x.tgz", NULL, NULL, &r), KPAR_ENET);
	CHECK(strstr(kpar_error_last(), "'file:///nonexistent/kpar-x.tgz'") != NULL);
	CHECK_INT(fetch(c, "ftp://example.invalid/x", NULL, NULL, &r), KPAR_ENET);
	CHECK(strstr(kpar_error_last(), "protocol") != NULL);
	CHECK_INT(fetch(c, "http://a b/", NULL, NULL, &r), KPAR_EINVAL);
	CHECK_INT(fetch(c, "", NULL, NULL, &r), KPAR_EINVAL);
	CHECK_INT(fetch(c, "file:///x", "abc", NULL, &r), KPAR_EINVAL);
	CHECK_INT(fetch(c, "file:///x", NULL, "../../etc", &r), KPAR_EINVAL);
	kpar_cache_close(c);
	free(dir);
}

KPAR_TEST(fetch_alternates_in_order)
{
	char *src = tmpdir("alt-src"), *dir = tmpdir("alt-cache");
	char hex[65], *url = make_file(src, "good.txt", "good bytes\n", hex);
	char other[65], *bad = make_file(src, "bad.txt", "bad bytes\n", other);
	const char *alts[2];
	struct kpar_cache *c = open_cache(dir);
	struct kpar_cache_req req;
	struct kpar_cache_result r;

	/* A missing URL, then one with the wrong content, then the good one. */
	alts[0] = bad;
	alts[1] = url;
	memset(&req, 0, sizeof req);
	req.url = "file:///nonexistent/good.txt";
	req.sha256 = hex;
	req.alternates = alts;
	req.n_alternates = 2;
	CHECK_OK(kpar_cache_fetch(c, &req, &r));
	CHECK_STR(r.source, url);
	kpar_cache_result_free(&r);
	kpar_cache_close(c);
	free(bad);
	free(url);
	free(src);
	free(dir);
}

KPAR_TEST(fetch_snapshot_file)
{
	char *src = tmpdir("snap-src"), *dir = tmpdir("snap-cache");
	char hex1[65], hex2[65];
	char *url = make_file(src, "s.txt", "version 1\n", hex1);
	struct kpar_cache *c = open_cache(dir);
	struct kpar_cache_result r;
	struct kpar_cache_stats s;
	char *path1, *text, *old_blob;

	CHECK_OK(fetch(c, url, NULL, NULL, &r));
	CHECK(strstr(r.path, "/snapshots/") != NULL);
	CHECK_STR(r.digest + 7, hex1);
	path1 = kpar_xstrdup(r.path);
	kpar_cache_result_free(&r);

	free(make_file(src, "s.txt", "version 2, longer\n", hex2));
	CHECK_OK(fetch(c, url, NULL, NULL, &r));           /* policy: always */
	CHECK_STR(r.path, path1);                          /* same path, new bytes */
	CHECK_STR(r.digest + 7, hex2);
	text = file_text(r.path);
	CHECK_STR(text, "version 2, longer\n");
	free(text);
	kpar_cache_result_free(&r);
	/* The old content was referenced by nothing else: gone. */
	old_blob = kpar_xasprintf("%s/blobs/sha256/%s", dir, hex1);
	CHECK(!kpar_fs_exists(old_blob));
	free(old_blob);

	CHECK_OK(kpar_cache_stats(c, &s));
	CHECK_INT(s.entries, 1);
	CHECK_INT(s.snapshots, 1);
	CHECK_INT(s.bytes, 18);
	kpar_cache_close(c);

	/* A lookup never revalidates: the source may be gone. */
	unlink(url + 7);
	c = open_cache(dir);
	{
		struct kpar_cache_req req;
		memset(&req, 0, sizeof req);
		req.url = url;
		CHECK_INT(kpar_cache_lookup(c, &req, &r), 1);
		CHECK_STR(r.path, path1);
		kpar_cache_result_free(&r);
	}
	kpar_cache_close(c);
	free(path1);
	free(url);
	free(src);
	free(dir);
}

/* A kill -9 between the blob's rename and its index row leaves an
 * unindexed blob: the next fetch indexes it (after re-hashing) instead of
 * downloading again; a damaged one is replaced. */
KPAR_TEST(unindexed_blob_recovered)
{
	char *src = tmpdir("orph-src"), *dir = tmpdir("orph-cache");
	char hex[65], *url = make_file(src, "o.txt", "orphan content\n", hex);
	struct kpar_cache *c = open_cache(dir);
	struct kpar_cache_result r;
	struct kpar_cache_stats s;
	char *blob = kpar_xasprintf("%s/blobs/sha256/%s", dir, hex);

	kpar_fs_write_atomic(blob, "orphan content\n", 15);
	CHECK_OK(fetch(c, "file:///gone/o.txt", hex, NULL, &r));
	CHECK_INT(r.hit, 1);
	kpar_cache_result_free(&r);
	CHECK_OK(kpar_cache_stats(c, &s));
	CHECK_INT(s.entries, 1);

	/* Same again with bytes that do not match the name. */
	sql(dir, "DELETE FROM entries");
	unlink(blob);
	kpar_fs_write_atomic(blob, "tampered!!!!!!\n", 15);
	CHECK_OK(fetch(c, url, hex, NULL, &r));
	CHECK_INT(r.hit, 0);
	kpar_cache_result_free(&r);
	{
		char *text = file_text(blob);
		CHECK_STR(text, "orphan content\n");
		free(text);
	}
	kpar_cache_close(c);
	free(blob);
	free(url);
	free(src);
	free(dir);
}

/* --- the index and the GC policy --- */

struct seeded {
	char *dir;
	char hex[4][65];
	char *url[4];
};

/* Four pinned entries of 100, 200, 300, 400 bytes, last used at 1000, 2000,
 * 3000, 4000 (a fixed clock), plus a snapshot sharing entry 3's blob. */
static struct kpar_cache *seed(struct seeded *sd, const char *name)
{
	char *src = tmpdir("gc-src");
	struct kpar_cache *c;
	int i;

	sd->dir = tmpdir(name);
	c = open_cache(sd->dir);
	for (i = 0; i < 4; i++) {
		struct kpar_cache_result r;
		char fname[16], *content = kpar_xmalloc((size_t)(i + 1) * 100 + 1), *stmt;
		memset(content, 'a' + i, (size_t)(i + 1) * 100);
		content[(i + 1) * 100] = '\0';
		snprintf(fname, sizeof fname, "f%d", i);
		sd->url[i] = make_file(src, fname, content, sd->hex[i]);
		CHECK_OK(fetch(c, sd->url[i], sd->hex[i], "named", &r));
		kpar_cache_result_free(&r);
		stmt = kpar_xasprintf("UPDATE entries SET last_used = %d WHERE key = 'sha256:%s'",
				      (i + 1) * 1000, sd->hex[i]);
		sql(sd->dir, stmt);
		free(stmt);
		free(content);
	}
	free(src);
	return c;
}

static void unseed(struct seeded *sd)
{
	int i;

	for (i = 0; i < 4; i++)
		free(sd->url[i]);
	free(sd->dir);
}

static int blob_exists(struct seeded *sd, int i)
{
	char *p = kpar_xasprintf("%s/blobs/sha256/%s", sd->dir, sd->hex[i]);
	int e = kpar_fs_exists(p);

	free(p);
	return e;
}

KPAR_TEST(gc_max_size_lru_first)
{
	struct seeded sd;
	struct kpar_cache *c = seed(&sd, "gc-size");
	struct kpar_cache_gc_policy p;
	struct kpar_cache_gc_result r;

	memset(&p, 0, sizeof p);
	p.now = 10000;
	p.max_size = 750;           /* 1000 bytes: the two oldest must go */
	CHECK_OK(kpar_cache_gc(c, &p, &r));
	CHECK_INT(r.removed, 2);
	CHECK_INT(r.freed, 300);
	CHECK_INT(r.bytes_after, 700);
	CHECK_INT(r.entries_after, 2);
	CHECK(!blob_exists(&sd, 0));
	CHECK(!blob_exists(&sd, 1));
	CHECK(blob_exists(&sd, 2));
	CHECK(blob_exists(&sd, 3));
	{   /* the named links went with them */
		char *p0 = kpar_xasprintf("%s/named/%s", sd.dir, sd.hex[0]);
		CHECK(!kpar_fs_exists(p0));
		free(p0);
	}
	/* Within limits: nothing more. */
	CHECK_OK(kpar_cache_gc(c, &p, &r));
	CHECK_INT(r.removed, 0);
	kpar_cache_close(c);
	unseed(&sd);
}

KPAR_TEST(gc_max_age)
{
	struct seeded sd;
	struct kpar_cache *c = seed(&sd, "gc-age");
	struct kpar_cache_gc_policy p;
	struct kpar_cache_gc_result r;

	memset(&p, 0, sizeof p);
	p.now = 10000;
	p.max_age = 7500;           /* unused since before 2500: entries 0 and 1 */
	CHECK_OK(kpar_cache_gc(c, &p, &r));
	CHECK_INT(r.removed, 2);
	CHECK(!blob_exists(&sd, 0) && !blob_exists(&sd, 1));
	CHECK(blob_exists(&sd, 2) && blob_exists(&sd, 3));
	kpar_cache_close(c);
	unseed(&sd);
}

KPAR_TEST(gc_keeps_current_build_and_grace)
{
	struct seeded sd;
	struct kpar_cache *c = seed(&sd, "gc-keep");
	struct kpar_cache_gc_policy p;
	struct kpar_cache_gc_result r;
	struct kpar_strv keep = KPAR_STRV_INIT;
	char key[KPAR_CACHE_KEY_MAX];

	kpar_cache_key(NULL, sd.hex[0], key);
	kpar_strv_push(&keep, key);           /* the oldest, but in this build */
	memset(&p, 0, sizeof p);
	p.now = 10000;
	p.max_size = 1;             /* would remove everything */
	p.grace = 6500;             /* used at 4000 (>= 3500): kept */
	p.keep = &keep;
	CHECK_OK(kpar_cache_gc(c, &p, &r));
	CHECK_INT(r.removed, 2);
	CHECK_INT(r.kept_in_use, 2);
	CHECK(blob_exists(&sd, 0));
	CHECK(!blob_exists(&sd, 1) && !blob_exists(&sd, 2));
	CHECK(blob_exists(&sd, 3));
	CHECK_INT(r.bytes_after, 500);        /* over the limit, but in use */
	kpar_cache_close(c);
	kpar_strv_free(&keep);
	unseed(&sd);
}

KPAR_TEST(gc_shared_blob_and_dry_run)
{
	struct seeded sd;
	struct kpar_cache *c = seed(&sd, "gc-shared");
	struct kpar_cache_gc_policy p;
	struct kpar_cache_gc_result r;
	struct kpar_cache_result fr;
	struct kpar_cache_stats s;

	/* A snapshot whose content is entry 0's: one blob, two entries. */
	CHECK_OK(fetch(c, sd.url[0], NULL, NULL, &fr));
	kpar_cache_result_free(&fr);
	sql(sd.dir, "UPDATE entries SET last_used = 5000 WHERE pinned = 0");
	CHECK_OK(kpar_cache_stats(c, &s));
	CHECK_INT(s.entries, 5);
	CHECK_INT(s.blobs, 4);
	CHECK_INT(s.bytes, 1000);

	memset(&p, 0, sizeof p);
	p.now = 10000;
	p.max_size = 850;
	p.dry_run = 1;
	CHECK_OK(kpar_cache_gc(c, &p, &r));
	/* Entry 0 goes but frees nothing (the snapshot holds its blob); entry 1
	 * frees 200. */
	CHECK_INT(r.removed, 2);
	CHECK_INT(r.freed, 200);
	CHECK_OK(kpar_cache_stats(c, &s));
	CHECK_INT(s.entries, 5);              /* dry run: all still there */

	p.dry_run = 0;
	CHECK_OK(kpar_cache_gc(c, &p, &r));
	CHECK_INT(r.removed, 2);
	CHECK_INT(r.freed, 200);
	CHECK(blob_exists(&sd, 0));           /* the snapshot still uses it */
	CHECK(!blob_exists(&sd, 1));
	CHECK_OK(kpar_cache_stats(c, &s));
	CHECK_INT(s.entries, 3);
	CHECK_INT(s.bytes, 800);
	kpar_cache_close(c);
	unseed(&sd);
}

KPAR_TEST(gc_skips_entry_being_fetched)
{
	struct seeded sd;
	struct kpar_cache *c = seed(&sd, "gc-busy");
	struct kpar_cache_gc_policy p;
	struct kpar_cache_gc_result r;
	char *lock = kpar_xasprintf("%s/locks/sha256-%s.lock", sd.dir, sd.hex[0]);
	pid_t pid;
	int pipefd[2], status;
	char ch;

	/* Another process holds entry 0's lock (as a fetch would). */
	CHECK(pipe(pipefd) == 0);
	pid = fork();
	if (pid == 0) {
		/* Opened here: a descriptor shared with the parent would keep
		 * the lock after this process dies. */
		int fd = open(lock, O_RDWR | O_CREAT | O_CLOEXEC, 0644);
		if (fd < 0 || flock(fd, LOCK_EX) < 0)
			_exit(1);
		if (write(pipefd[1], "x", 1) != 1)
			_exit(1);
		sleep(30);
		_exit(0);
	}
	CHECK(read(pipefd[0], &ch, 1) == 1);
	memset(&p, 0, sizeof p);
	p.now = 10000;
	p.max_age = 1;              /* everything is old */
	CHECK_OK(kpar_cache_gc(c, &p, &r));
	CHECK_INT(r.removed, 3);
	CHECK(blob_exists(&sd, 0));
	kill(pid, SIGKILL);
	waitpid(pid, &status, 0);
	CHECK_OK(kpar_cache_gc(c, &p, &r));
	CHECK_INT(r.removed, 1);
	CHECK(!blob_exists(&sd, 0));
	close(pipefd[0]);
	close(pipefd[1]);
	free(lock);
	kpar_cache_close(c);
	unseed(&sd);
}

KPAR_TEST(use_and_used_lists)
{
	struct seeded sd;
	struct kpar_cache *c = seed(&sd, "use");
	struct kpar_strv keys = KPAR_STRV_INIT, back = KPAR_STRV_INIT;
	char key[KPAR_CACHE_KEY_MAX];
	char *list = kpar_fs_join(sd.dir, "used-list"), *text;
	struct stat st1, st2;
	struct kpar_cache_gc_policy p;
	struct kpar_cache_gc_result r;

	kpar_cache_key(NULL, sd.hex[1], key);
	kpar_strv_push(&keys, key);
	kpar_cache_key(NULL, sd.hex[0], key);
	kpar_strv_push(&keys, key);
	kpar_strv_push(&keys, key);           /* duplicates collapse */
	CHECK_OK(kpar_cache_used_list_write(list, &keys));
	CHECK_OK(kpar_cache_used_list_read(list, &back));
	CHECK_INT(back.n, 2);
	if (back.n == 2)
		CHECK(strcmp(back.v[0], back.v[1]) < 0);   /* sorted */
	CHECK(stat(list, &st1) == 0);
	sleep(1);
	CHECK_OK(kpar_cache_used_list_write(list, &keys));
	CHECK(stat(list, &st2) == 0);
	CHECK_INT(st2.st_mtime, st1.st_mtime);     /* unchanged: same mtime */

	CHECK_OK(kpar_cache_used_list_add(list, key));
	kpar_cache_key(NULL, sd.hex[3], key);
	CHECK_OK(kpar_cache_used_list_add(list, key));
	text = file_text(list);
	CHECK_INT(strlen(text), 3 * 72);
	free(text);

	kpar_strv_free(&back);
	kpar_strv_push(&back, "not-a-key");
	CHECK_INT(kpar_cache_used_list_write(list, &back), KPAR_EINVAL);
	kpar_fs_write_atomic(list, "sha256:zz\n", 10);
	kpar_strv_free(&back);
	CHECK_INT(kpar_cache_used_list_read(list, &back), KPAR_EINVAL);
	CHECK(strstr(kpar_error_last(), list) != NULL);

	/* Marking used moves entries to the recent end of the LRU order. */
	CHECK_OK(kpar_cache_use(c, &keys, 0));
	memset(&p, 0, sizeof p);
	p.max_size = 350;           /* now: entries 0 and 1 are the newest */
	CHECK_OK(kpar_cache_gc(c, &p, &r));
	CHECK(blob_exists(&sd, 0) && blob_exists(&sd, 1));
	CHECK(!blob_exists(&sd, 2) && !blob_exists(&sd, 3));
	kpar_strv_free(&keys);
	kpar_strv_free(&back);
	free(list);
	kpar_cache_close(c);
	unseed(&sd);
}

KPAR_TEST(verify_repairs)
{
	struct seeded sd;
	struct kpar_cache *c = seed(&sd, "verify");
	struct kpar_cache_verify_result r;
	struct kpar_cache_stats s;
	char *b0 = kpar_xasprintf("%s/blobs/sha256/%s", sd.dir, sd.hex[0]);
	char *b1 = kpar_xasprintf("%s/blobs/sha256/%s", sd.dir, sd.hex[1]);

	chmod(b0, 0644);
	kpar_fs_write_atomic(b0, "corrupted", 9);
	unlink(b1);
	CHECK_OK(kpar_cache_verify(c, &r));
	CHECK_INT(r.bad, 1);
	CHECK_INT(r.missing >= 1, 1);
	CHECK_OK(kpar_cache_stats(c, &s));
	CHECK_INT(s.entries, 2);
	CHECK(!kpar_fs_exists(b0));
	free(b0);
	free(b1);
	kpar_cache_close(c);
	unseed(&sd);
}

/* --- export --- */

static char *read_bytes(const char *path, size_t *len)
{
	char *s = NULL;

	if (kpar_fs_read_all(path, &s, len) < 0) {
		kpar_error_clear();
		*len = 0;
	}
	return s;
}

KPAR_TEST(export_readonly_deterministic)
{
	struct seeded sd;
	struct kpar_cache *c = seed(&sd, "exp");
	char *out1 = tmpdir("exp-out1"), *out2 = tmpdir("exp-out2");
	struct kpar_strv keys = KPAR_STRV_INIT;
	char key[KPAR_CACHE_KEY_MAX];
	char *i1, *i2, *p;
	size_t l1, l2;
	struct stat st1, st2;
	struct kpar_cache *ro;
	struct kpar_cache_result r;
	struct kpar_cache_stats s;

	kpar_cache_key(NULL, sd.hex[2], key);
	kpar_strv_push(&keys, key);
	kpar_cache_key(NULL, sd.hex[0], key);
	kpar_strv_push(&keys, key);
	CHECK_INT(kpar_cache_export(c, out1, &keys), 1);
	/* Hits change counters, never the export. */
	CHECK_OK(fetch(c, sd.url[0], sd.hex[0], NULL, &r));
	kpar_cache_result_free(&r);
	CHECK_INT(kpar_cache_export(c, out2, &keys), 1);
	p = kpar_fs_join(out1, "index.db");
	i1 = read_bytes(p, &l1);
	CHECK(stat(p, &st1) == 0);
	free(p);
	p = kpar_fs_join(out2, "index.db");
	i2 = read_bytes(p, &l2);
	free(p);
	CHECK(l1 > 0 && l1 == l2 && memcmp(i1, i2, l1) == 0);
	free(i1);
	free(i2);

	/* Again into the same directory: nothing to do, nothing touched. */
	sleep(1);
	CHECK_INT(kpar_cache_export(c, out1, &keys), 0);
	p = kpar_fs_join(out1, "index.db");
	CHECK(stat(p, &st2) == 0 && st2.st_mtime == st1.st_mtime && st2.st_ino == st1.st_ino);
	free(p);

	/* The export is a read-only cache: pinned hits without the source,
	 * named links included; misses are errors; nothing is written. */
	CHECK_OK(kpar_cache_open(&ro, &(struct kpar_cache_opts){ .dir = out1, .retries = 0 }));
	CHECK_INT(kpar_cache_is_readonly(ro), 1);
	unlink(sd.url[0] + 7);
	CHECK_OK(fetch(ro, sd.url[0], sd.hex[0], "named", &r));
	CHECK_INT(r.hit, 1);
	CHECK(strncmp(r.path, out1, strlen(out1)) == 0);
	kpar_cache_result_free(&r);
	CHECK_INT(fetch(ro, sd.url[1], sd.hex[1], NULL, &r), KPAR_ENOTFOUND);
	CHECK(strstr(kpar_error_last(), "read-only") != NULL);
	CHECK_OK(kpar_cache_stats(ro, &s));
	CHECK_INT(s.entries, 2);
	CHECK_INT(s.hits, 0);
	kpar_cache_close(ro);
	p = kpar_fs_join(out1, "index.db-wal");
	CHECK(!kpar_fs_exists(p));
	free(p);
	p = kpar_fs_join(out1, "tmp");
	CHECK(!kpar_fs_exists(p));
	free(p);

	/* A smaller set prunes what is no longer used. */
	kpar_strv_free(&keys);
	kpar_cache_key(NULL, sd.hex[2], key);
	kpar_strv_push(&keys, key);
	CHECK_INT(kpar_cache_export(c, out1, &keys), 1);
	p = kpar_xasprintf("%s/blobs/sha256/%s", out1, sd.hex[0]);
	CHECK(!kpar_fs_exists(p));
	free(p);
	p = kpar_xasprintf("%s/named/%s", out1, sd.hex[0]);
	CHECK(!kpar_fs_exists(p));
	free(p);

	/* A key the cache does not have. */
	kpar_strv_push(&keys, "sha256:1111111111111111111111111111111111111111111111111111111111111111");
	CHECK_INT(kpar_cache_export(c, out1, &keys), KPAR_ENOTFOUND);
	CHECK(strstr(kpar_error_last(), "1111111111") != NULL);

	kpar_strv_free(&keys);
	free(out1);
	free(out2);
	kpar_cache_close(c);
	unseed(&sd);
}

KPAR_TEST(readonly_dir_no_writes)
{
	char *dir = tmpdir("ro-empty");
	struct kpar_cache *c = NULL;
	struct kpar_cache_opts o;
	struct kpar_cache_result r;
	char *p;

	kpar_cache_opts_init(&o);
	o.dir = kpar_xstrdup(dir);
	o.readonly = 1;
	CHECK_OK(kpar_cache_open(&c, &o));
	CHECK_INT(fetch(c, "file:///x/y", NULL, NULL, &r), KPAR_ENOTFOUND);
	{
		struct kpar_cache_gc_policy gp;
		struct kpar_cache_gc_result gr;
		memset(&gp, 0, sizeof gp);
		CHECK_INT(kpar_cache_gc(c, &gp, &gr), KPAR_EINVAL);
	}
	kpar_cache_close(c);
	p = kpar_fs_join(dir, "index.db");
	CHECK(!kpar_fs_exists(p));
	free(p);
	kpar_cache_opts_free(&o);
	free(dir);
}

static void cleanup(void)
{
	if (tmp_root) {
		kpar_fs_remove_tree(tmp_root);
		free(tmp_root);
	}
}

__attribute__((constructor)) static void register_cleanup(void)
{
	atexit(cleanup);
}

KPAR_TEST_MAIN(
	KPAR_CASE(parse_sha256),
	KPAR_CASE(parse_size_age_policy),
	KPAR_CASE(names_and_paths),
	KPAR_CASE(redact),
	KPAR_CASE(opts_conf),
	KPAR_CASE(fetch_pinned_file),
	KPAR_CASE(fetch_checksum_mismatch_stores_nothing),
	KPAR_CASE(fetch_errors_name_the_url),
	KPAR_CASE(fetch_alternates_in_order),
	KPAR_CASE(fetch_snapshot_file),
	KPAR_CASE(unindexed_blob_recovered),
	KPAR_CASE(gc_max_size_lru_first),
	KPAR_CASE(gc_max_age),
	KPAR_CASE(gc_keeps_current_build_and_grace),
	KPAR_CASE(gc_shared_blob_and_dry_run),
	KPAR_CASE(gc_skips_entry_being_fetched),
	KPAR_CASE(use_and_used_lists),
	KPAR_CASE(verify_repairs),
	KPAR_CASE(export_readonly_deterministic),
	KPAR_CASE(readonly_dir_no_writes))
