/* functions.c - the $(kpar-...) functions that need libkpar_core: the
 * body of kpar-impl.so, which kpar.so opens on the first call of one of
 * them (plugin/impl.h says why; plugin/kpar_plugin.c registers them).
 *
 * Everything here is cheap and has no side effect, because Make calls
 * functions while parsing and again under `make -n`: they read files and
 * the state database (read-only) but never create, write or start anything.
 * Long work runs in recipes as the `kpar` tool.
 *
 *   $(kpar-buckets N,IDS)     names of the buckets IDS split into: test-group-1 ...
 *   $(kpar-bucket I,N,IDS)    the ids in bucket I of that split (same history)
 *   $(kpar-digest FILES)      sha256 of the files' names and contents
 *   $(kpar-digest-text TEXT)  sha256 of the text
 *   $(kpar-state WHAT)        run, status, verdict, resumable, ... of the last run
 *   $(kpar-fetch URL,SHA256[,NAME])  where the cached artifact will be (plugin/cache_fn.c)
 *
 * Every symbol but the table's getter is hidden, so nothing binds to make's
 * own `error` or `xmalloc`; errors go through $(error) so Make stops with
 * the location.
 */
#include "config.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <gnumake.h>

#include "base/buf.h"
#include "plugin/cache_fn.h"
#include "plugin/impl.h"
#include "base/digest.h"
#include "base/error.h"
#include "run/split.h"
#include "run/state.h"
#include "run/testlist.h"

#define EXPORT __attribute__((visibility("default")))

/* Stops make with "kpar: <msg>" at the current makefile location. */
static char *fail(const char *fn, const char *msg)
{
	struct kpar_buf b = KPAR_BUF_INIT;
	const char *p;

	kpar_buf_printf(&b, "$(error kpar: %s: ", fn);
	/* Make would expand '$' and could end the call at ')' or ','. */
	for (p = msg; *p; p++) {
		if (*p == '$')
			kpar_buf_puts(&b, "$$");
		else if (*p == '(' || *p == ')' || *p == ',' || *p == '\n')
			kpar_buf_putc(&b, ' ');
		else
			kpar_buf_putc(&b, *p);
	}
	kpar_buf_puts(&b, ")");
	gmk_eval(b.data, NULL);
	kpar_buf_free(&b);
	return NULL;
}

static char *give(const char *s, size_t len)
{
	char *out = gmk_alloc((unsigned int)len + 1);
	memcpy(out, s, len);
	out[len] = '\0';
	return out;
}

/* Reads a make variable through expansion; malloc'd. */
static char *var(const char *name)
{
	char ref[128], *v, *copy;

	snprintf(ref, sizeof ref, "$(%s)", name);
	v = gmk_expand(ref);
	copy = kpar_xstrdup(v ? v : "");
	gmk_free(v);
	return copy;
}

static int parse_count(const char *s, long *out)
{
	char *end;
	long v;

	while (*s == ' ' || *s == '\t')
		s++;
	v = strtol(s, &end, 10);
	while (*end == ' ' || *end == '\t')
		end++;
	if (end == s || *end || v < 1)
		return -1;
	*out = v;
	return 0;
}

/* Splits ids with the history the next `kpar plan` would use. */
static int split_words(const char *fn, const char *count, const char *words,
		       struct kpar_strv *ids, size_t **bucket_of, size_t *nb)
{
	char *state_dir = var("KPAR_STATE_DIR"), *hints = var("KPAR_HINTS"), *root = var("KPAR_ROOT");
	struct kpar_state *st = NULL;
	struct kpar_estimate_opts eo;
	double *secs = NULL;
	long n;
	int rc;

	*bucket_of = NULL;
	if (parse_count(count, &n) < 0) {
		rc = kpar_error_set(KPAR_EINVAL, "bucket count '%s' is not a whole number >= 1", count);
		goto done;
	}
	if ((rc = kpar_testlist_from_words(words, ids)) < 0)
		goto done;
	kpar_testlist_canonicalise(ids);
	/* A project that never ran has no database: no history, not an error. */
	if (kpar_state_open(&st, *state_dir ? state_dir : ".kpar", KPAR_STATE_RDONLY) < 0)
		st = NULL;
	kpar_error_clear();
	memset(&eo, 0, sizeof eo);
	eo.root = *root ? root : ".";
	eo.hints = *hints ? hints : NULL;
	eo.default_seconds = 1.0;
	secs = kpar_xcalloc(ids->n ? ids->n : 1, sizeof *secs);
	*bucket_of = kpar_xcalloc(ids->n ? ids->n : 1, sizeof **bucket_of);
	if ((rc = kpar_estimate(st ? kpar_state_db(st) : NULL, &eo, ids->v, ids->n, secs, NULL)) < 0)
		goto done;
	*nb = ids->n ? kpar_split(ids->v, secs, ids->n, (size_t)n, *bucket_of) : 0;
	/* Equal buckets here: a Makefile asking for N buckets wants N similar
	 * shares, not buckets cut for a dynamic dispatcher (see plan.c). */
done:
	(void)fn;
	kpar_state_close(st);
	free(state_dir);
	free(hints);
	free(root);
	free(secs);
	return rc;
}

static char *fn_buckets(const char *name, unsigned int argc, char **argv)
{
	struct kpar_strv ids = KPAR_STRV_INIT;
	struct kpar_buf b = KPAR_BUF_INIT;
	size_t *bucket_of, nb = 0, i;
	char *out = NULL;

	if (split_words(name, argv[0], argc > 1 ? argv[1] : "", &ids, &bucket_of, &nb) < 0) {
		fail(name, kpar_error_last());
	} else {
		for (i = 0; i < nb; i++)
			kpar_buf_printf(&b, "%stest-group-%zu", i ? " " : "", i + 1);
		out = give(b.data ? b.data : "", b.len);
	}
	free(bucket_of);
	kpar_strv_free(&ids);
	kpar_buf_free(&b);
	return out;
}

static char *fn_bucket(const char *name, unsigned int argc, char **argv)
{
	struct kpar_strv ids = KPAR_STRV_INIT;
	struct kpar_buf b = KPAR_BUF_INIT;
	size_t *bucket_of = NULL, nb = 0, i;
	long want;
	char *out = NULL;

	if (parse_count(argv[0], &want) < 0) {
		fail(name, "bucket number is not a whole number >= 1");
	} else if (split_words(name, argv[1], argc > 2 ? argv[2] : "", &ids, &bucket_of, &nb) < 0) {
		fail(name, kpar_error_last());
	} else {
		for (i = 0; i < ids.n; i++)
			if (bucket_of[i] + 1 == (size_t)want)
				kpar_buf_printf(&b, "%s%s", b.len ? " " : "", ids.v[i]);
		out = give(b.data ? b.data : "", b.len);
	}
	free(bucket_of);
	kpar_strv_free(&ids);
	kpar_buf_free(&b);
	return out;
}

static char *fn_digest(const char *name, unsigned int argc, char **argv)
{
	struct kpar_strv files = KPAR_STRV_INIT;
	struct kpar_buf b = KPAR_BUF_INIT;
	char d[KPAR_DIGEST_STR];
	char *out = NULL;
	size_t i;

	if (kpar_testlist_from_words(argv[0], &files) < 0) {
		fail(name, kpar_error_last());
		goto done;
	}
	kpar_strv_sort(&files);
	kpar_strv_uniq(&files);
	for (i = 0; i < files.n; i++) {
		if (kpar_digest_file(files.v[i], d, NULL) < 0) {
			fail(name, kpar_error_last());
			goto done;
		}
		kpar_buf_printf(&b, "%s\t%s\n", files.v[i], d);
	}
	kpar_digest_str(b.data ? b.data : "", b.len, d);
	out = give(d, strlen(d));
done:
	kpar_strv_free(&files);
	kpar_buf_free(&b);
	return out;
}

static char *fn_digest_text(const char *name, unsigned int argc, char **argv)
{
	char d[KPAR_DIGEST_STR];

	kpar_digest_str(argv[0], strlen(argv[0]), d);
	return give(d, strlen(d));
}

static char *fn_state(const char *name, unsigned int argc, char **argv)
{
	char *state_dir = var("KPAR_STATE_DIR"), *what = kpar_xstrdup(argv[0]), *p, *out = NULL;
	struct kpar_buf b = KPAR_BUF_INIT;

	/* Trim: $(kpar-state verdict ) is as good as $(kpar-state verdict). */
	for (p = what + strlen(what); p > what && (p[-1] == ' ' || p[-1] == '\t'); p--)
		p[-1] = '\0';
	for (p = what; *p == ' ' || *p == '\t'; p++)
		;
	if (kpar_state_query(*state_dir ? state_dir : ".kpar", p, &b) < 0)
		fail(name, kpar_error_last());
	else
		out = give(b.data ? b.data : "", b.len);
	kpar_buf_free(&b);
	free(state_dir);
	free(what);
	return out;
}

static const struct kpar_plugin_impl impl = {
	KPAR_PLUGIN_IMPL_ABI, PACKAGE_VERSION,
	fn_buckets, fn_bucket, fn_digest, fn_digest_text, fn_state, kpar_plugin_cache_fetch,
	kpar_plugin_cache_unload,
};

EXPORT const struct kpar_plugin_impl *kpar_plugin_impl(void)
{
	return &impl;
}
