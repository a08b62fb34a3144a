/* cmd_cache.c - `kpar cache`: inspect and maintain the artifact cache
 * (path, key, stats, list, gc, verify, use, export). */
#include "config.h"

#include <getopt.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <cjson/cJSON.h>

#include "base/buf.h"
#include "cache/cache.h"
#include "base/conf.h"
#include "base/curl_load.h"
#include "base/error.h"
#include "base/fs.h"
#include "tool/cmds.h"

static void usage(FILE *out)
{
	fprintf(out,
"usage: kpar cache <command> [--cache-dir DIR] [options]\n"
"\n"
"  path [URL [--sha256 HEX] [--name NAME]] [--check]\n"
"        the cache directory, or where URL's artifact is (or will be);\n"
"        --check: exit 1 when it is not there\n"
"  key URL [--sha256 HEX]   the artifact's key, as used-lists spell it\n"
"  stats [--json]           entries, bytes, hits, misses, hit rate\n"
"  list [--json]            entries, least recently used first\n"
"  gc [--max-size SIZE] [--max-age AGE] [--grace AGE] [--keep-list FILE]...\n"
"     [--dry-run]\n"
"        remove entries unused for AGE, then least recently used ones until\n"
"        the cache fits in SIZE; entries in a keep-list (the current build's\n"
"        used-list) or used within the grace period are kept (0 = no\n"
"        limit).  Defaults:\n"
"        $KPAR_CACHE_MAX_SIZE (10G), $KPAR_CACHE_MAX_AGE (90d),\n"
"        $KPAR_CACHE_GC_GRACE (1h)\n"
"  verify                   re-hash every blob; drop damaged or missing ones\n"
"  use --used-list FILE [--replace] [--from FILE] [KEY...]\n"
"        add keys to a build's used-list and mark them used now\n"
"  export DIR [--used-list FILE]... [--all] [--stamp FILE]\n"
"        make DIR a read-only cache of the used entries (the image layer);\n"
"        --stamp FILE is rewritten when DIR changed (or is missing)\n"
"\n"
"The cache is $KPAR_CACHE_DIR, else $XDG_CACHE_HOME/kpar, else ~/.cache/kpar.\n");
}

enum {
	O_CACHE_DIR = 256, O_SHA256, O_NAME, O_CHECK, O_JSON, O_MAX_SIZE, O_MAX_AGE, O_GRACE,
	O_KEEP_LIST, O_DRY_RUN, O_USED_LIST, O_REPLACE, O_FROM, O_ALL, O_STAMP, O_HELP
};

static const struct option longopts[] = {
	{ "cache-dir", required_argument, NULL, O_CACHE_DIR },
	{ "sha256", required_argument, NULL, O_SHA256 },
	{ "name", required_argument, NULL, O_NAME },
	{ "check", no_argument, NULL, O_CHECK },
	{ "json", no_argument, NULL, O_JSON },
	{ "max-size", required_argument, NULL, O_MAX_SIZE },
	{ "max-age", required_argument, NULL, O_MAX_AGE },
	{ "grace", required_argument, NULL, O_GRACE },
	{ "keep-list", required_argument, NULL, O_KEEP_LIST },
	{ "dry-run", no_argument, NULL, O_DRY_RUN },
	{ "used-list", required_argument, NULL, O_USED_LIST },
	{ "replace", no_argument, NULL, O_REPLACE },
	{ "from", required_argument, NULL, O_FROM },
	{ "all", no_argument, NULL, O_ALL },
	{ "stamp", required_argument, NULL, O_STAMP },
	{ "help", no_argument, NULL, O_HELP },
	{ NULL, 0, NULL, 0 }
};

struct args {
	const char *sub;
	struct kpar_cache_opts opts;
	const char *sha256, *name, *from, *stamp;
	int check, json, replace, all;
	struct kpar_cache_gc_policy gc;  /* limits and dry_run; keep is filled by do_gc */
	struct kpar_strv keep_lists, used_lists, pos;
};

static void human(uint64_t n, char *out, size_t len)
{
	static const char *const units[] = { "B", "KiB", "MiB", "GiB", "TiB" };
	double v = (double)n;
	int u = 0;

	while (v >= 1024 && u < 4) {
		v /= 1024;
		u++;
	}
	if (u == 0)
		snprintf(out, len, "%" PRIu64 " B", n);
	else
		snprintf(out, len, "%.1f %s", v, units[u]);
}

/* The KPAR_CACHE_* settings (conf.c reads them); options override them. */
static int settings(struct args *a)
{
	struct kpar_conf conf;
	int rc;

	if ((rc = kpar_conf_load(&conf)) == 0 &&
	    (rc = kpar_cache_opts_conf(&a->opts, &conf)) == 0)
		rc = kpar_cache_gc_policy_conf(&a->gc, &conf);
	kpar_curl_set_library(conf.libcurl);
	kpar_conf_free(&conf);
	return rc;
}

/* --- subcommands --- */

static int do_path(struct args *a, struct kpar_cache *c)
{
	char *path = NULL;
	int rc;

	if (a->pos.n == 0) {
		printf("%s\n", kpar_cache_dir(c));
		return 0;
	}
	if (a->pos.n > 1)
		return kpar_error_set(KPAR_EINVAL, "one URL at a time ('%s' is extra)", a->pos.v[1]);
	if ((rc = kpar_cache_path(kpar_cache_dir(c), a->pos.v[0], a->sha256, a->name, &path)) < 0)
		return rc;
	printf("%s\n", path);
	rc = a->check && !kpar_fs_exists(path) ? 1 : 0;
	free(path);
	return rc;
}

static int do_key(struct args *a)
{
	char hex[KPAR_SHA256_HEX], key[KPAR_CACHE_KEY_MAX];
	int rc;

	if (a->pos.n != 1)
		return kpar_error_set(KPAR_EINVAL, "'kpar cache key' takes one URL");
	if (a->sha256 && *a->sha256 && (rc = kpar_cache_parse_sha256(a->sha256, hex)) < 0)
		return rc;
	kpar_cache_key(a->pos.v[0], a->sha256 && *a->sha256 ? hex : NULL, key);
	printf("%s\n", key);
	return 0;
}

static int do_stats(struct args *a, struct kpar_cache *c)
{
	struct kpar_cache_stats s;
	uint64_t lookups;
	double rate;
	char b1[32], b2[32], b3[32];
	int rc;

	if ((rc = kpar_cache_stats(c, &s)) < 0)
		return rc;
	lookups = s.hits + s.misses;
	rate = lookups ? 100.0 * (double)s.hits / (double)lookups : 0;
	if (a->json) {
		cJSON *o = cJSON_CreateObject();
		char *text;
		cJSON_AddStringToObject(o, "dir", kpar_cache_dir(c));
		cJSON_AddBoolToObject(o, "readonly", kpar_cache_is_readonly(c));
		cJSON_AddNumberToObject(o, "entries", (double)s.entries);
		cJSON_AddNumberToObject(o, "pinned", (double)s.pinned);
		cJSON_AddNumberToObject(o, "snapshots", (double)s.snapshots);
		cJSON_AddNumberToObject(o, "blobs", (double)s.blobs);
		cJSON_AddNumberToObject(o, "bytes", (double)s.bytes);
		cJSON_AddNumberToObject(o, "hits", (double)s.hits);
		cJSON_AddNumberToObject(o, "misses", (double)s.misses);
		if (lookups)
			cJSON_AddNumberToObject(o, "hit_rate", rate / 100.0);
		else
			cJSON_AddNullToObject(o, "hit_rate");
		cJSON_AddNumberToObject(o, "downloaded", (double)s.downloaded);
		cJSON_AddNumberToObject(o, "revalidations", (double)s.revalidations);
		cJSON_AddNumberToObject(o, "not_modified", (double)s.not_modified);
		cJSON_AddNumberToObject(o, "partials", (double)s.partials);
		cJSON_AddNumberToObject(o, "partial_bytes", (double)s.partial_bytes);
		text = cJSON_Print(o);
		printf("%s\n", text);
		cJSON_free(text);
		cJSON_Delete(o);
		return 0;
	}
	human(s.bytes, b1, sizeof b1);
	human(s.downloaded, b2, sizeof b2);
	human(s.partial_bytes, b3, sizeof b3);
	printf("cache:        %s%s\n", kpar_cache_dir(c),
	       kpar_cache_is_readonly(c) ? " (read-only)" : "");
	printf("entries:      %" PRIu64 " (%" PRIu64 " pinned, %" PRIu64 " snapshots)\n",
	       s.entries, s.pinned, s.snapshots);
	printf("size:         %s in %" PRIu64 " blobs\n", b1, s.blobs);
	printf("hits:         %" PRIu64 "\n", s.hits);
	printf("misses:       %" PRIu64 "\n", s.misses);
	if (lookups)
		printf("hit rate:     %.1f%%\n", rate);
	else
		printf("hit rate:     -\n");
	printf("downloaded:   %s\n", b2);
	printf("revalidated:  %" PRIu64 " (%" PRIu64 " not modified)\n", s.revalidations,
	       s.not_modified);
	printf("to resume:    %" PRIu64 " downloads (%s)\n", s.partials, b3);
	return 0;
}

static void iso_time(int64_t t, char *out, size_t len)
{
	time_t tt = (time_t)t;
	struct tm tm;

	if (!gmtime_r(&tt, &tm) || strftime(out, len, "%Y-%m-%dT%H:%M:%SZ", &tm) == 0)
		snprintf(out, len, "-");
}

static int list_json(const struct kpar_cache_entry *e, void *payload)
{
	cJSON *o = cJSON_CreateObject();

	cJSON_AddStringToObject(o, "key", e->key);
	cJSON_AddBoolToObject(o, "pinned", e->pinned);
	cJSON_AddStringToObject(o, "url", e->url);
	cJSON_AddStringToObject(o, "digest", e->digest);
	cJSON_AddNumberToObject(o, "size", (double)e->size);
	cJSON_AddNumberToObject(o, "fetched", (double)e->fetched);
	cJSON_AddNumberToObject(o, "checked", (double)e->checked);
	cJSON_AddNumberToObject(o, "last_used", (double)e->last_used);
	cJSON_AddNumberToObject(o, "hits", (double)e->hits);
	if (e->etag)
		cJSON_AddStringToObject(o, "etag", e->etag);
	if (e->last_modified)
		cJSON_AddStringToObject(o, "last_modified", e->last_modified);
	cJSON_AddItemToArray(payload, o);
	return 0;
}

static int list_text(const struct kpar_cache_entry *e, void *payload)
{
	char size[32], used[32];

	(void)payload;
	human(e->size, size, sizeof size);
	iso_time(e->last_used, used, sizeof used);
	printf("%.19s  %10s  %s  %5" PRIu64 "  %-8s  %s\n", e->digest, size, used, e->hits,
	       e->pinned ? "pinned" : "snapshot", e->url);
	return 0;
}

static int do_list(struct args *a, struct kpar_cache *c)
{
	cJSON *arr;
	char *text;
	int rc;

	if (!a->json)
		return kpar_cache_list(c, list_text, NULL);
	arr = cJSON_CreateArray();
	if ((rc = kpar_cache_list(c, list_json, arr)) == 0) {
		text = cJSON_Print(arr);
		printf("%s\n", text);
		cJSON_free(text);
	}
	cJSON_Delete(arr);
	return rc;
}

static int do_gc(struct args *a, struct kpar_cache *c)
{
	struct kpar_cache_gc_policy p;
	struct kpar_cache_gc_result r;
	struct kpar_strv keep = KPAR_STRV_INIT;
	char b1[32], b2[32];
	size_t i;
	int rc = 0;

	p = a->gc;
	for (i = 0; i < a->keep_lists.n && rc == 0; i++) {
		rc = kpar_cache_used_list_read(a->keep_lists.v[i], &keep);
		if (rc == KPAR_ENOTFOUND) {
			/* No used-list yet: nothing of this build to keep. */
			kpar_error_clear();
			rc = 0;
		}
	}
	if (rc < 0)
		goto done;
	p.keep = &keep;
	if ((rc = kpar_cache_gc(c, &p, &r)) < 0)
		goto done;
	human(r.freed, b1, sizeof b1);
	human(r.bytes_after, b2, sizeof b2);
	printf("%s%" PRIu64 " entries (%s), %" PRIu64 " unindexed blobs, %" PRIu64
	       " stale downloads; kept %" PRIu64 " in use; now %" PRIu64 " entries, %s\n",
	       a->gc.dry_run ? "would remove " : "removed ", r.removed, b1, r.orphans, r.partials,
	       r.kept_in_use, r.entries_after, b2);
done:
	kpar_strv_free(&keep);
	return rc;
}

static int do_verify(struct kpar_cache *c)
{
	struct kpar_cache_verify_result r;
	int rc = kpar_cache_verify(c, &r);

	if (rc < 0)
		return rc;
	printf("checked %" PRIu64 " blobs: %" PRIu64 " damaged (removed), %" PRIu64
	       " entries without blob (removed), %" PRIu64 " unindexed blobs indexed\n",
	       r.checked, r.bad, r.missing, r.orphans_indexed);
	return r.bad ? 1 : 0;
}

static int read_key_file(const char *path, struct kpar_strv *keys)
{
	int rc = kpar_cache_used_list_read(path, keys);
	return rc < 0 ? kpar_error_prefix(rc, "--from") : 0;
}

static int do_use(struct args *a, struct kpar_cache *c)
{
	struct kpar_strv keys = KPAR_STRV_INIT;
	size_t i;
	int rc = 0;

	if (a->used_lists.n != 1) {
		rc = kpar_error_set(KPAR_EINVAL, "'kpar cache use' needs one --used-list FILE");
		goto done;
	}
	if (a->from && (rc = read_key_file(a->from, &keys)) < 0)
		goto done;
	for (i = 0; i < a->pos.n; i++) {
		if ((rc = kpar_cache_check_key(a->pos.v[i])) < 0)
			goto done;
		kpar_strv_push(&keys, a->pos.v[i]);
	}
	if ((rc = kpar_cache_used_list_merge(a->used_lists.v[0], &keys, a->replace)) < 0)
		goto done;
	rc = kpar_cache_use(c, &keys, 0);
done:
	kpar_strv_free(&keys);
	return rc;
}

static int do_export(struct args *a, struct kpar_cache *c)
{
	struct kpar_strv keys = KPAR_STRV_INIT;
	size_t i;
	int rc = 0;

	if (a->pos.n != 1)
		return kpar_error_set(KPAR_EINVAL, "'kpar cache export' takes one directory");
	if (!a->all && a->used_lists.n == 0)
		return kpar_error_set(KPAR_EINVAL, "'kpar cache export' needs --used-list FILE "
				      "(the build's) or --all");
	for (i = 0; i < a->used_lists.n && rc == 0; i++) {
		rc = kpar_cache_used_list_read(a->used_lists.v[i], &keys);
		if (rc == KPAR_ENOTFOUND) {
			kpar_error_clear();
			rc = 0;
		}
	}
	if (rc == 0)
		rc = kpar_cache_export(c, a->pos.v[0], a->all ? NULL : &keys);
	if (rc >= 0 && a->stamp && (rc == 1 || !kpar_fs_exists(a->stamp))) {
		/* The stamp moves only when the layer's content did, so what
		 * depends on it (the image) is not remade for nothing. */
		int src = kpar_fs_write_atomic(a->stamp, "", 0);
		if (src < 0)
			rc = src;
	}
	kpar_strv_free(&keys);
	return rc < 0 ? rc : 0;
}

int kpar_cmd_cache(int argc, char **argv)
{
	struct args a;
	struct kpar_cache *c = NULL;
	int ch, rc;

	memset(&a, 0, sizeof a);
	kpar_cache_opts_init(&a.opts);
	a.gc.max_size = (uint64_t)10 << 30;
	a.gc.max_age = 90L * 86400;
	a.gc.grace = 3600;
	if (argc < 2 || strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "help") == 0) {
		usage(argc < 2 ? stderr : stdout);
		return argc < 2 ? 2 : 0;
	}
	a.sub = argv[1];
	if ((rc = settings(&a)) < 0)
		goto fail;
	opterr = 0;
	optind = 2;
	while ((ch = getopt_long(argc, argv, "", longopts, NULL)) != -1) {
		switch (ch) {
		case O_CACHE_DIR:
			free(a.opts.dir);
			a.opts.dir = *optarg ? kpar_xstrdup(optarg) : NULL;
			break;
		case O_SHA256: a.sha256 = optarg; break;
		case O_NAME: a.name = optarg; break;
		case O_CHECK: a.check = 1; break;
		case O_JSON: a.json = 1; break;
		case O_MAX_SIZE:
			if ((rc = kpar_cache_parse_size(optarg, &a.gc.max_size)) < 0) {
				kpar_error_prefix(rc, "--max-size");
				goto fail;
			}
			break;
		case O_MAX_AGE:
			if ((rc = kpar_cache_parse_age(optarg, &a.gc.max_age)) < 0) {
				kpar_error_prefix(rc, "--max-age");
				goto fail;
			}
			break;
		case O_GRACE:
			if ((rc = kpar_cache_parse_age(optarg, &a.gc.grace)) < 0) {
				kpar_error_prefix(rc, "--grace");
				goto fail;
			}
			break;
		case O_KEEP_LIST: kpar_strv_push(&a.keep_lists, optarg); break;
		case O_DRY_RUN: a.gc.dry_run = 1; break;
		case O_USED_LIST: kpar_strv_push(&a.used_lists, optarg); break;
		case O_REPLACE: a.replace = 1; break;
		case O_FROM: a.from = optarg; break;
		case O_ALL: a.all = 1; break;
		case O_STAMP: a.stamp = optarg; break;
		case O_HELP:
			usage(stdout);
			rc = 0;
			goto out;
		default:
			fprintf(stderr, "kpar cache: unknown or incomplete option '%s'\n",
				argv[optind - 1]);
			usage(stderr);
			rc = 2;
			goto out;
		}
	}
	for (; optind < argc; optind++)
		kpar_strv_push(&a.pos, argv[optind]);

	if (strcmp(a.sub, "key") == 0) {
		rc = do_key(&a);
		goto done;
	}
	if (strcmp(a.sub, "path") != 0 && strcmp(a.sub, "stats") != 0 &&
	    strcmp(a.sub, "list") != 0 && strcmp(a.sub, "gc") != 0 &&
	    strcmp(a.sub, "verify") != 0 && strcmp(a.sub, "use") != 0 &&
	    strcmp(a.sub, "export") != 0) {
		fprintf(stderr, "kpar cache: unknown command '%s'\n", a.sub);
		usage(stderr);
		rc = 2;
		goto out;
	}
	if ((rc = kpar_cache_open(&c, &a.opts)) < 0)
		goto fail;
	if (strcmp(a.sub, "path") == 0)
		rc = do_path(&a, c);
	else if (strcmp(a.sub, "stats") == 0)
		rc = do_stats(&a, c);
	else if (strcmp(a.sub, "list") == 0)
		rc = do_list(&a, c);
	else if (strcmp(a.sub, "gc") == 0)
		rc = do_gc(&a, c);
	else if (strcmp(a.sub, "verify") == 0)
		rc = do_verify(c);
	else if (strcmp(a.sub, "use") == 0)
		rc = do_use(&a, c);
	else
		rc = do_export(&a, c);
done:
	if (rc < 0)
		goto fail;
	goto out;
fail:
	{
		char *cmd = kpar_xasprintf("cache %s", a.sub ? a.sub : "");
		rc = kpar_tool_fail(cmd, rc);
		free(cmd);
	}
out:
	kpar_cache_close(c);
	kpar_cache_opts_free(&a.opts);
	kpar_strv_free(&a.keep_lists);
	kpar_strv_free(&a.used_lists);
	kpar_strv_free(&a.pos);
	return rc;
}
