/* lazylib.h - shared libraries kpar opens on first use.
 *
 * Every library a kpar process maps at start-up costs it the dynamic
 * loader's work (mapping, relocating, running constructors) whether or not
 * the command uses it.  The libraries only a few commands need (libcurl
 * for transfers, libarchive for image layers, libyaml for kubeconfig and
 * prove state files) are therefore not linked: each has a header
 * (curl_load.h, archive_load.h, yaml_load.h) that includes the library's
 * own header, lists every function kpar calls in an X-macro table, and
 * redirects the calls through a struct of pointers that kpar_lazylib_load()
 * fills from the library's SONAME (found by configure) the first time an
 * entry point needs it.
 */
#ifndef KPAR_LAZYLIB_H
#define KPAR_LAZYLIB_H

#include <stddef.h>

/* For a library's table struct: X(member, function) becomes a pointer
 * typed by the library's own declaration of the function. */
#define KPAR_LAZYLIB_MEMBER(m, f) __typeof__(&f) m;

/* One function to resolve: its name in the library, where it goes in
 * the table (offsetof). */
struct kpar_lazylib_sym {
	const char *name;
	size_t offset;
};

struct kpar_lazylib {
	const char *name;     /* what messages call it: "libcurl" */
	const char *soname;   /* what to open when path is unset: configure's */
	const char *setting;  /* the variable that sets path, for messages; NULL = none */
	const char *needs;    /* the version kpar needs, said when a symbol is missing */
	int code;             /* the kpar error code a failure returns */
	const struct kpar_lazylib_sym *syms;
	size_t nsyms;
	void *api;            /* the table syms fill; left zeroed unless the load succeeds */
	size_t api_size;
	/* Optional: run on the filled table before it is published; returns
	 * NULL or why the library is unusable. */
	const char *(*init)(const void *api);
	/* state, zero-initialised */
	char *path;           /* kpar_lazylib_set_path's */
	int tried;
	char *error;          /* why the one attempt failed; kept for every caller */
};

/* Which file kpar_lazylib_load() opens; NULL or "" = lib->soname.  The
 * string is copied.  Takes effect only before the first load. */
void kpar_lazylib_set_path(struct kpar_lazylib *lib, const char *path);

/* Opens the library and fills its table, once per process (thread-safe;
 * a failure is not retried).  Returns 0, or lib->code with a message
 * naming the library and, if that is what failed, the missing function. */
int kpar_lazylib_load(struct kpar_lazylib *lib);

#endif
