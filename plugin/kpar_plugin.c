/* kpar_plugin.c - GNU Make glue: the $(kpar-...) functions, at no cost to a
 * make that calls none of them.
 *
 * Every make of a project that includes kpar.mk loads this object, and most
 * (a plain `make`, `make install`) call no kpar function.  So kpar.so links
 * libc alone: it registers the functions and answers the pure ones itself;
 * the rest are in kpar-impl.so (plugin/functions.c, plugin/cache_fn.c,
 * libkpar_core with SQLite, libcrypto, zstd and cJSON), which is opened on
 * the first call of one of them, the way the kpar tool opens libcurl,
 * libarchive and libyaml (src/base/lazylib.h).  The dynamic loader's work
 * for those libraries is then paid only by a make that uses them.
 *
 *   $(kpar-buckets N,IDS)     names of the buckets IDS split into: test-group-1 ...
 *   $(kpar-bucket I,N,IDS)    the ids in bucket I of that split (same history)
 *   $(kpar-digest FILES)      sha256 of the files' names and contents
 *   $(kpar-digest-text TEXT)  sha256 of the text
 *   $(kpar-state WHAT)        run, status, verdict, resumable, ... of the last run
 *   $(kpar-fetch URL,SHA256[,NAME])  where the cached artifact will be
 *   $(kpar-quote TEXT)        TEXT as one POSIX shell word (here: kpar.mk's
 *                             recipes quote every setting with it)
 *   $(kpar-version )          the plugin's version (here)
 *
 * Everything is cheap and has no side effect, because Make calls functions
 * while parsing and again under `make -n` (plugin/functions.c has the rest).
 *
 * Pitfalls handled (see shared notes on the load API): function names are
 * string literals (Make 4.3 keeps the pointer); every symbol but the setup
 * entry points is hidden, so nothing binds to make's own `error` or
 * `xmalloc`; errors go through $(error) so Make stops with the location.
 */
#include "config.h"

#include <dlfcn.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

#include <gnumake.h>

#include "base/buf.h"
#include "plugin/impl.h"

#define EXPORT __attribute__((visibility("default")))

EXPORT int plugin_is_GPL_compatible;

static const struct kpar_plugin_impl *impl;     /* NULL until the first call */

static void stop(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

/* $(error kpar: ...): the message travels in a define'd variable, so a ')'
 * or ',' in a path does not end the call; its '$' are doubled. */
static void stop(const char *fmt, ...)
{
	struct kpar_buf msg = KPAR_BUF_INIT, text = KPAR_BUF_INIT;
	const char *p;
	va_list ap;

	va_start(ap, fmt);
	kpar_buf_vprintf(&msg, fmt, ap);
	va_end(ap);
	kpar_buf_puts(&text, "define kpar_plugin_msg\nkpar: ");
	for (p = msg.data ? msg.data : ""; *p; p++) {
		if (*p == '$')
			kpar_buf_putc(&text, '$');
		kpar_buf_putc(&text, *p == '\n' ? ' ' : *p);
	}
	kpar_buf_puts(&text, "\nendef\n$(error $(kpar_plugin_msg))\n");
	kpar_buf_free(&msg);
	gmk_eval(text.data, NULL);      /* $(error) does not return */
	kpar_buf_free(&text);
}

/* kpar-impl.so beside this object: in the build tree (.libs), the installed
 * pkglibdir, and any DESTDIR or VPATH layout alike, since both are always
 * built and installed together.  dladdr gives the path make's `load` used,
 * relative to the directory make still runs in (make changes directory only
 * before reading makefiles); realpath follows a link to the real install. */
static char *impl_path(void)
{
	struct kpar_buf b = KPAR_BUF_INIT;
	Dl_info info;
	char *self = NULL;
	const char *slash;

	if (dladdr((const void *)&plugin_is_GPL_compatible, &info) && info.dli_fname) {
		self = realpath(info.dli_fname, NULL);
		if (!self)
			self = kpar_xstrdup(info.dli_fname);
	}
	slash = self ? strrchr(self, '/') : NULL;
	if (slash)
		kpar_buf_printf(&b, "%.*s/", (int)(slash - self), self);
	kpar_buf_puts(&b, KPAR_PLUGIN_IMPL_FILE);
	free(self);
	return kpar_buf_detach(&b, NULL);
}

static const struct kpar_plugin_impl *load(void)
{
	const struct kpar_plugin_impl *(*get)(void);
	const struct kpar_plugin_impl *t;
	char *path;
	void *h, *sym;

	if (impl)
		return impl;
	path = impl_path();
	/* RTLD_LOCAL: its libraries' symbols stay out of make's namespace;
	 * never dlclose'd, as the functions' results and the cache index
	 * outlive any one call */
	h = dlopen(path, RTLD_NOW | RTLD_LOCAL);
	if (!h) {
		const char *why = dlerror();
		stop("cannot load %s, which kpar.so needs for this function: %s", path,
		     why ? why : "unknown error");
		free(path);
		return NULL;
	}
	sym = dlsym(h, KPAR_PLUGIN_IMPL_SYMBOL);
	if (!sym) {
		stop("%s is not kpar's plugin companion (no %s)", path, KPAR_PLUGIN_IMPL_SYMBOL);
		free(path);
		return NULL;
	}
	/* POSIX guarantees a function address survives dlsym's void * */
	memcpy(&get, &sym, sizeof sym);
	t = get();
	if (!t || t->abi != KPAR_PLUGIN_IMPL_ABI || strcmp(t->version, PACKAGE_VERSION) != 0) {
		stop("%s is from kpar %s, kpar.so from kpar %s: install both from one build",
		     path, t ? t->version : "?", PACKAGE_VERSION);
		free(path);
		return NULL;
	}
	free(path);
	impl = t;
	return impl;
}

#define KPAR_PLUGIN_CALL(f) \
	static char *call_##f(const char *name, unsigned int argc, char **argv) \
	{ \
		const struct kpar_plugin_impl *t = load(); \
		return t ? t->f(name, argc, argv) : NULL; \
	}
KPAR_PLUGIN_CALL(buckets)
KPAR_PLUGIN_CALL(bucket)
KPAR_PLUGIN_CALL(digest)
KPAR_PLUGIN_CALL(digest_text)
KPAR_PLUGIN_CALL(state)
KPAR_PLUGIN_CALL(fetch)
#undef KPAR_PLUGIN_CALL

static char *give(const char *s, size_t len)
{
	char *out = gmk_alloc((unsigned int)len + 1);
	memcpy(out, s, len);
	out[len] = '\0';
	return out;
}

static char *fn_quote(const char *name, unsigned int argc, char **argv)
{
	struct kpar_buf b = KPAR_BUF_INIT;
	char *out;

	(void)name;
	(void)argc;
	kpar_buf_shell_quote(&b, argv[0]);
	out = give(b.data, b.len);
	kpar_buf_free(&b);
	return out;
}

static char *fn_version(const char *name, unsigned int argc, char **argv)
{
	(void)name;
	(void)argc;
	(void)argv;
	return give(PACKAGE_VERSION, strlen(PACKAGE_VERSION));
}

static int setup(void)
{
	gmk_add_function("kpar-buckets", call_buckets, 1, 2, GMK_FUNC_DEFAULT);
	gmk_add_function("kpar-bucket", call_bucket, 2, 3, GMK_FUNC_DEFAULT);
	gmk_add_function("kpar-digest", call_digest, 1, 1, GMK_FUNC_DEFAULT);
	gmk_add_function("kpar-digest-text", call_digest_text, 0, 1, GMK_FUNC_DEFAULT);
	gmk_add_function("kpar-state", call_state, 1, 1, GMK_FUNC_DEFAULT);
	gmk_add_function("kpar-fetch", call_fetch, 1, 3, GMK_FUNC_DEFAULT);
	gmk_add_function("kpar-quote", fn_quote, 0, 1, GMK_FUNC_DEFAULT);
	gmk_add_function("kpar-version", fn_version, 0, 0, GMK_FUNC_DEFAULT);
	/* Make 4.3 leaves a plugin that asked not to be rebuilt out of
	 * .LOADED; this variable is how kpar.mk knows the functions exist. */
	gmk_eval("KPAR_PLUGIN_LOADED := " PACKAGE_VERSION, NULL);
	return 1;
}

#ifdef KPAR_GMK_HAS_ABI
EXPORT int kpar_gmk_setup(unsigned int abi, const gmk_floc *floc);
EXPORT void kpar_gmk_unload(void);

int kpar_gmk_setup(unsigned int abi, const gmk_floc *floc)
{
	(void)abi;
	(void)floc;
	return setup();
}

void kpar_gmk_unload(void)
{
	if (impl)
		impl->unload();
}
#else
EXPORT int kpar_gmk_setup(const gmk_floc *floc);

/* Make before 4.4 has no unload hook: kpar-impl.so's destructor gives its
 * resources back at exit instead (plugin/cache_fn.c). */
int kpar_gmk_setup(const gmk_floc *floc)
{
	(void)floc;
	return setup();
}
#endif
