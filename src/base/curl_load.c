/* curl_load.c - libcurl, loaded on first use (see curl_load.h for why). */
#include "config.h"

#include <dlfcn.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "base/curl_load.h"
#include "base/buf.h"
#include "base/error.h"

struct kpar_curl_api kpar_curl_api;

static pthread_once_t load_once = PTHREAD_ONCE_INIT;
static char *load_error;   /* why the one attempt failed; kept for every caller */
static char *library;      /* kpar_curl_set_library's; NULL = KPAR_LIBCURL_SONAME */

void kpar_curl_set_library(const char *path)
{
	free(library);
	library = path && *path ? kpar_xstrdup(path) : NULL;
}

static void load(void)
{
	const char *lib = library;
	struct kpar_curl_api api;
	const char *missing = NULL;
	void *h;

	if (!lib || !*lib)
		lib = KPAR_LIBCURL_SONAME;
	/* RTLD_LOCAL: nothing else in the process binds to curl's symbols;
	 * never dlclose'd, as libcurl's TLS backends do not support unloading */
	h = dlopen(lib, RTLD_NOW | RTLD_LOCAL);
	if (!h) {
		const char *why = dlerror();
		load_error = kpar_xasprintf("cannot load libcurl '%s' (set KPAR_LIBCURL to its path): %s",
					    lib, why ? why : "unknown error");
		return;
	}
	memset(&api, 0, sizeof api);
	/* POSIX guarantees a function address survives the round trip
	 * through dlsym's void *; the memcpy keeps ISO C quiet about it */
#define KPAR_CURL_RESOLVE(m, f) \
	do { \
		void *sym = dlsym(h, #f); \
		if (!sym && !missing) \
			missing = #f; \
		memcpy(&api.m, &sym, sizeof sym); \
	} while (0);
	KPAR_CURL_FUNCTIONS(KPAR_CURL_RESOLVE)
#undef KPAR_CURL_RESOLVE
	if (missing) {
		load_error = kpar_xasprintf("libcurl '%s' lacks %s (kpar needs libcurl >= 7.84)",
					    lib, missing);
		return;
	}
	if (api.global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK) {
		load_error = kpar_xasprintf("libcurl '%s' failed to initialise", lib);
		return;
	}
	kpar_curl_api = api;
}

int kpar_curl_load(void)
{
	pthread_once(&load_once, load);
	if (load_error)
		return kpar_error_set(KPAR_ENET, "%s", load_error);
	return 0;
}
