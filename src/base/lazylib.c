/* lazylib.c - shared libraries opened on first use (see lazylib.h). */
#include "config.h"

#include <dlfcn.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "base/lazylib.h"
#include "base/buf.h"
#include "base/error.h"

/* One lock for every library: a load happens a few times per process, and
 * a lock that needs no per-library once function keeps the tables plain
 * data. */
static pthread_mutex_t load_lock = PTHREAD_MUTEX_INITIALIZER;

void kpar_lazylib_set_path(struct kpar_lazylib *lib, const char *path)
{
	pthread_mutex_lock(&load_lock);
	free(lib->path);
	lib->path = path && *path ? kpar_xstrdup(path) : NULL;
	pthread_mutex_unlock(&load_lock);
}

static char *open_lib(const struct kpar_lazylib *lib)
{
	const char *file = lib->path ? lib->path : lib->soname;
	const char *missing = NULL, *why;
	unsigned char *api;
	size_t i;
	void *h;

	/* RTLD_LOCAL: nothing else in the process binds to the library's
	 * symbols; never dlclose'd, as libcurl's TLS backends (for one) do
	 * not support unloading */
	h = dlopen(file, RTLD_NOW | RTLD_LOCAL);
	if (!h) {
		why = dlerror();
		if (lib->setting)
			return kpar_xasprintf("cannot load %s '%s' (set %s to its path): %s", lib->name,
					      file, lib->setting, why ? why : "unknown error");
		return kpar_xasprintf("cannot load %s '%s' (install %s; no kpar setting chooses "
				      "another): %s", lib->name, file, lib->needs,
				      why ? why : "unknown error");
	}
	api = kpar_xcalloc(1, lib->api_size);
	for (i = 0; i < lib->nsyms; i++) {
		void *sym = dlsym(h, lib->syms[i].name);

		if (!sym) {
			missing = lib->syms[i].name;
			break;
		}
		/* POSIX guarantees a function address survives the round trip
		 * through dlsym's void *; the memcpy keeps ISO C quiet about it */
		memcpy(api + lib->syms[i].offset, &sym, sizeof sym);
	}
	if (missing) {
		free(api);
		return kpar_xasprintf("%s '%s' lacks %s (kpar needs %s)", lib->name, file, missing,
				      lib->needs);
	}
	if (lib->init && (why = lib->init(api))) {
		free(api);
		return kpar_xasprintf("%s '%s' %s", lib->name, file, why);
	}
	memcpy(lib->api, api, lib->api_size);
	free(api);
	return NULL;
}

int kpar_lazylib_load(struct kpar_lazylib *lib)
{
	char *error;

	pthread_mutex_lock(&load_lock);
	if (!lib->tried) {
		lib->error = open_lib(lib);
		lib->tried = 1;
	}
	error = lib->error;
	pthread_mutex_unlock(&load_lock);
	if (error)
		return kpar_error_set(lib->code, "%s", error);
	return 0;
}
