/* impl.h - what kpar.so finds in kpar-impl.so, its companion.
 *
 * kpar.so is loaded into every make that includes kpar.mk, most of which
 * call no kpar function.  So kpar.so links libc alone and registers the
 * functions; the ones that need SQLite, libcrypto, zstd or cJSON live in
 * kpar-impl.so, installed beside it and opened on the first call
 * (plugin/kpar_plugin.c).  Both are built from one tree, so the table is
 * checked by ABI number and package version rather than kept compatible.
 *
 * kpar-impl.so exports one symbol, KPAR_PLUGIN_IMPL_SYMBOL, a function
 * returning the table.  The functions are Make functions (gmk_func_ptr):
 * they call make's gmk_* API, which the executable exports to both objects.
 */
#ifndef KPAR_PLUGIN_IMPL_H
#define KPAR_PLUGIN_IMPL_H

#include <gnumake.h>

#define KPAR_PLUGIN_IMPL_FILE "kpar-impl.so"
#define KPAR_PLUGIN_IMPL_SYMBOL "kpar_plugin_impl"
/* Raise when the table changes. */
#define KPAR_PLUGIN_IMPL_ABI 1

struct kpar_plugin_impl {
	unsigned int abi;               /* KPAR_PLUGIN_IMPL_ABI */
	const char *version;            /* PACKAGE_VERSION */
	gmk_func_ptr buckets, bucket, digest, digest_text, state, fetch;
	/* Gives back what the functions keep open (the cache index). */
	void (*unload)(void);
};

const struct kpar_plugin_impl *kpar_plugin_impl(void);

#endif
