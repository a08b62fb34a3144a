/* cache_fn.c - $(kpar-fetch URL[,SHA256[,NAME]]): an artifact's path in the
 * cache, for prerequisite lists.
 *
 * The function never downloads.  It returns where the artifact is or will
 * be (kpar_cache_path: pure, no I/O) and defines, once per path, a rule
 * whose recipe runs `kpar fetch`:
 *
 *   <path>: [kpar-cache-FORCE]            # FORCE only for snapshots
 *   	$(KPAR_FETCH) --sha256 HEX [--name NAME] -- 'URL'
 *   kpar-cache-fetch: <path>
 *   KPAR_CACHE_USED += <key>
 *
 * So a miss is fetched by make like any other prerequisite: in a child
 * process, in parallel under -j, printed and not run under -n.  A pinned
 * artifact already cached is an existing file with no prerequisites: make
 * never runs its recipe again.  A snapshot's recipe runs every time
 * (FORCE) and revalidates per KPAR_CACHE_REVALIDATE; `kpar fetch` keeps the
 * file's mtime when nothing changed, so dependents are not remade.
 *
 * KPAR_CACHE_USED collects the keys of the artifacts this makefile names:
 * mk/cache.mk turns it into the build's used-list (kept by GC, exported to
 * the image).  On a hit the function also records the use in the index
 * (last used, hits) -- a small SQLite write, skipped under -n/-q and for a
 * read-only cache, and never an error: bookkeeping must not fail a build.
 */
#include "config.h"

#include <gnumake.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "base/buf.h"
#include "cache/cache.h"
#include "base/error.h"
#include "plugin/cache_fn.h"

static struct kpar_strv defined;        /* paths that already have their rule */
static struct kpar_strv recorded;       /* keys whose hit is recorded */
static struct kpar_cache *hit_cache;    /* opened on the first hit */
static char *hit_cache_dir;
static pid_t hit_cache_pid;             /* the process that opened it */

static const char empty_sha256[] =
	"e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855";

static int in_strv(const struct kpar_strv *sv, const char *s)
{
	size_t i;

	for (i = 0; i < sv->n; i++)
		if (strcmp(sv->v[i], s) == 0)
			return 1;
	return 0;
}

static char *trim(const char *s)
{
	size_t n;

	while (*s == ' ' || *s == '\t' || *s == '\n')
		s++;
	n = strlen(s);
	while (n > 0 && (s[n - 1] == ' ' || s[n - 1] == '\t' || s[n - 1] == '\n'))
		n--;
	return kpar_xstrndup(s, n);
}

/* Text for gmk_eval: every '$' doubled so make keeps it literally. */
static void put_make_literal(struct kpar_buf *b, const char *s)
{
	for (; *s; s++) {
		if (*s == '$')
			kpar_buf_putc(b, '$');
		kpar_buf_putc(b, *s);
	}
}

/* $(error ...) or $(warning ...) with msg.  The message travels in a
 * define'd variable: a ')' or ',' in it (a URL, a parenthesis) must not end
 * the call, and its '$' are doubled so make prints them as they are. */
static void make_say(const char *fn, const char *fmt, va_list ap)
{
	struct kpar_buf msg = KPAR_BUF_INIT, text = KPAR_BUF_INIT;

	kpar_buf_vprintf(&msg, fmt, ap);
	kpar_buf_puts(&text, "define kpar_cache_fn_msg\nkpar-fetch: ");
	put_make_literal(&text, msg.data ? msg.data : "");
	kpar_buf_printf(&text, "\nendef\n$(%s $(kpar_cache_fn_msg))\n", fn);
	gmk_eval(text.data, NULL);      /* $(error) does not return */
	kpar_buf_free(&text);
	kpar_buf_free(&msg);
}

static void make_error(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

static void make_error(const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	make_say("error", fmt, ap);
	va_end(ap);
}

static void make_warning(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

static void make_warning(const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	make_say("warning", fmt, ap);
	va_end(ap);
}

static char *expand(const char *expr)
{
	char *v = gmk_expand(expr);
	char *t = trim(v ? v : "");

	gmk_free(v);
	return t;
}

/* -n, -q and -t must not change anything: MAKEFLAGS' first word holds the
 * single-letter flags (when it does not start with '-'). */
static int dry_run(void)
{
	char *flags = expand("$(firstword $(MAKEFLAGS))");
	int dry = flags[0] != '-' && strpbrk(flags, "nqt") != NULL;

	free(flags);
	return dry;
}

/* A directory make can use in a target: no whitespace, ':', '%', '#',
 * wildcards or quotes. */
static int make_safe_path(const char *p)
{
	for (; *p; p++) {
		unsigned char ch = (unsigned char)*p;
		if (!((ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') ||
		      (ch >= '0' && ch <= '9') || strchr("/._+~@-", ch) || ch >= 0x80))
			return 0;
	}
	return 1;
}

/* 1 when the path holds the artifact: a regular blob (an empty one only
 * for the empty content: `make -t` creates empty files) reached through
 * a symlink for named and snapshot paths. */
static int present(const char *path, const char *hex, int linked)
{
	struct stat st;

	if (linked && (lstat(path, &st) < 0 || !S_ISLNK(st.st_mode)))
		return 0;
	if (stat(path, &st) < 0 || !S_ISREG(st.st_mode))
		return 0;
	return st.st_size > 0 || (hex && strcmp(hex, empty_sha256) == 0);
}

static void record_hit(const char *dir, const char *key)
{
	struct kpar_strv keys = KPAR_STRV_INIT;

	if (in_strv(&recorded, key) || dry_run())
		return;
	kpar_strv_push(&recorded, key);
	if (hit_cache && strcmp(hit_cache_dir, dir) != 0) {
		kpar_cache_close(hit_cache);
		hit_cache = NULL;
	}
	if (!hit_cache) {
		struct kpar_cache_opts o;
		kpar_cache_opts_init(&o);
		o.dir = kpar_xstrdup(dir);
		if (kpar_cache_open(&hit_cache, &o) < 0)
			hit_cache = NULL;
		hit_cache_pid = getpid();
		kpar_cache_opts_free(&o);
		free(hit_cache_dir);
		hit_cache_dir = kpar_xstrdup(dir);
	}
	kpar_strv_push(&keys, key);
	if (hit_cache)
		kpar_cache_use(hit_cache, &keys, 1);
	kpar_strv_free(&keys);
	kpar_error_clear();
}

/* force: always run the recipe (snapshots; or a path holding something
 * that is not the artifact, which `kpar fetch` then repairs). */
static void define_rule(const char *path, const char *url, const char *hex, const char *name,
			const char *key, int force)
{
	struct kpar_buf b = KPAR_BUF_INIT, q = KPAR_BUF_INIT;

	kpar_strv_push(&defined, path);
	/* A rule defined while make reads the makefile could become its default
	 * goal: keep whatever goal there was (or none yet). */
	kpar_buf_puts(&b, "kpar_cache_fn_goal := $(.DEFAULT_GOAL)\n"
		      ".PHONY: kpar-cache-FORCE kpar-cache-fetch\n");
	kpar_buf_printf(&b, "%s:%s\n\t$(KPAR_FETCH)", path, force ? " kpar-cache-FORCE" : "");
	if (hex)
		kpar_buf_printf(&b, " --sha256 %s", hex);
	if (name && *name)
		kpar_buf_printf(&b, " --name %s", name);    /* checked: plain characters */
	kpar_buf_shell_quote(&q, url);
	kpar_buf_puts(&b, " -- ");
	put_make_literal(&b, q.data);
	kpar_buf_printf(&b, "\nkpar-cache-fetch: %s\nKPAR_CACHE_USED += %s\n"
			"kpar-cache-FORCE:\n.DEFAULT_GOAL := $(kpar_cache_fn_goal)\n", path, key);
	gmk_eval(b.data, NULL);
	kpar_buf_free(&q);
	kpar_buf_free(&b);
}

char *kpar_plugin_cache_fetch(const char *fname, unsigned int argc, char **argv)
{
	char *url = trim(argc > 0 ? argv[0] : "");
	char *sha = trim(argc > 1 ? argv[1] : "");
	char *name = trim(argc > 2 ? argv[2] : "");
	char *dir = NULL, *path = NULL, *origin = NULL, *ret = NULL, *target = NULL;
	char hex[KPAR_SHA256_HEX], key[KPAR_CACHE_KEY_MAX];
	const char *p;
	int pinned = *sha != '\0', here;

	(void)fname;
	if (!*url) {
		make_error("no URL given: $(kpar-fetch URL[,SHA256[,NAME]])");
		goto done;
	}
	for (p = url; *p; p++) {
		if ((unsigned char)*p <= ' ' || *p == 0x7f) {
			make_error("URL '%s' contains a space or a control character", url);
			goto done;
		}
	}
	if (pinned && kpar_cache_parse_sha256(sha, hex) < 0) {
		make_error("%s", kpar_error_last());
		goto done;
	}
	if (*name && kpar_cache_check_name(name) < 0) {
		make_error("%s", kpar_error_last());
		goto done;
	}
	origin = expand("$(origin KPAR_FETCH)");
	if (strcmp(origin, "undefined") == 0) {
		make_error("KPAR_FETCH is not defined: include kpar.mk (which includes the "
			   "cache rules) before using $(kpar-fetch ...)");
		goto done;
	}
	dir = expand("$(KPAR_CACHE_DIR)");
	if (!*dir) {
		free(dir);
		if (kpar_cache_default_dir(&dir) < 0) {
			make_error("%s", kpar_error_last());
			goto done;
		}
	}
	if (!make_safe_path(dir)) {
		make_error("KPAR_CACHE_DIR '%s' cannot be used in a make target (spaces, ':', "
			   "'%%', '#', quotes or wildcards): choose a plainer path", dir);
		goto done;
	}
	if (kpar_cache_path(dir, url, pinned ? hex : NULL, name, &path) < 0) {
		make_error("%s", kpar_error_last());
		goto done;
	}
	kpar_cache_key(url, pinned ? hex : NULL, key);
	here = pinned && present(path, hex, *name != '\0');
	/* In a recipe ($@ is set) make refuses new rules, and it is too late to
	 * fetch anyway: the path is only useful if the artifact is there. */
	target = expand("$@");
	if (*target) {
		struct stat st;
		if (stat(path, &st) < 0)
			make_warning("%s is not cached and a recipe cannot fetch it: list "
				     "$(kpar-fetch ...) as a prerequisite, or run $(KPAR_FETCH) "
				     "in the recipe", path);
	} else if (!in_strv(&defined, path)) {
		struct stat st;
		define_rule(path, url, pinned ? hex : NULL, name, key,
			    !pinned || (!here && lstat(path, &st) == 0));
	}
	if (here)
		record_hit(dir, key);
	ret = gmk_alloc(strlen(path) + 1);
	memcpy(ret, path, strlen(path) + 1);
done:
	kpar_error_clear();
	free(url);
	free(sha);
	free(name);
	free(dir);
	free(origin);
	free(target);
	free(path);
	return ret;
}

/* The index handle stays open across hits (a makefile may name hundreds of
 * artifacts); it is closed when make is done with the plugin, so SQLite's
 * memory and file handles are given back rather than left to exit. */
void kpar_plugin_cache_unload(void)
{
	/* a child forked by make (for $(shell) or a recipe) inherits the
	 * handle but does not own it: closing there would touch the parent's
	 * database connection state */
	if (hit_cache && hit_cache_pid == getpid())
		kpar_cache_close(hit_cache);
	hit_cache = NULL;
	free(hit_cache_dir);
	hit_cache_dir = NULL;
	kpar_strv_free(&recorded);
	kpar_strv_free(&defined);
}

/* Make before 4.4 has no unload hook: make's exit runs this instead. */
__attribute__((destructor)) static void cache_fn_fini(void)
{
	kpar_plugin_cache_unload();
}

int kpar_plugin_cache_register(void)
{
	/* Make 4.3 keeps the pointer to the name: a literal. */
	gmk_add_function("kpar-fetch", kpar_plugin_cache_fetch, 1, 3, GMK_FUNC_DEFAULT);
	return 0;
}
