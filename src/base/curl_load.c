/* curl_load.c - libcurl, loaded on first use (see curl_load.h for why). */
#include "config.h"

#include "base/curl_load.h"
#include "base/error.h"
#include "base/lazylib.h"

struct kpar_curl_api kpar_curl_api;

#define KPAR_CURL_SYM(m, f) { #f, offsetof(struct kpar_curl_api, m) },
static const struct kpar_lazylib_sym syms[] = { KPAR_CURL_FUNCTIONS(KPAR_CURL_SYM) };
#undef KPAR_CURL_SYM

static const char *init(const void *api)
{
	const struct kpar_curl_api *c = api;

	return c->global_init(CURL_GLOBAL_DEFAULT) == CURLE_OK ? NULL : "failed to initialise";
}

static struct kpar_lazylib lib = {
	.name = "libcurl", .soname = KPAR_LIBCURL_SONAME, .setting = "KPAR_LIBCURL",
	.needs = "libcurl >= 7.84", .code = KPAR_ENET,
	.syms = syms, .nsyms = sizeof syms / sizeof syms[0],
	.api = &kpar_curl_api, .api_size = sizeof kpar_curl_api, .init = init,
};

void kpar_curl_set_library(const char *path)
{
	kpar_lazylib_set_path(&lib, path);
}

int kpar_curl_load(void)
{
	return kpar_lazylib_load(&lib);
}
