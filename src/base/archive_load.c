/* archive_load.c - libarchive, loaded on first use (see archive_load.h). */
#include "config.h"

#include "base/archive_load.h"
#include "base/error.h"

struct kpar_archive_api kpar_archive_api;

#define KPAR_ARCHIVE_SYM(m, f) { #f, offsetof(struct kpar_archive_api, m) },
static const struct kpar_lazylib_sym syms[] = { KPAR_ARCHIVE_FUNCTIONS(KPAR_ARCHIVE_SYM) };
#undef KPAR_ARCHIVE_SYM

static struct kpar_lazylib lib = {
	.name = "libarchive", .soname = KPAR_LIBARCHIVE_SONAME, .needs = "libarchive >= 3.4",
	.code = KPAR_ELIB, .syms = syms, .nsyms = sizeof syms / sizeof syms[0],
	.api = &kpar_archive_api, .api_size = sizeof kpar_archive_api,
};

int kpar_archive_load(void)
{
	return kpar_lazylib_load(&lib);
}
