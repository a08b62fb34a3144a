/* cache_fn.h - the artifact cache's Make function, for the plugin's setup.
 *
 * kpar_plugin_cache_register() adds $(kpar-fetch URL[,SHA256[,NAME]]) to the
 * running make; a plugin holding only that function (tests/cache/fn_plugin.c)
 * calls it once from its setup.  Returns 0 (it cannot fail
 * short of make refusing the name, which make reports itself).
 */
#ifndef KPAR_PLUGIN_CACHE_FN_H
#define KPAR_PLUGIN_CACHE_FN_H

int kpar_plugin_cache_register(void);
/* The function itself, for a plugin that registers it under its own name
 * (kpar.so does, and calls it through kpar-impl.so). */
char *kpar_plugin_cache_fetch(const char *name, unsigned int argc, char **argv);
/* Closes the cache index the function keeps open and frees its lists; from
 * kpar_gmk_unload, and at exit where make has no unload hook.  Idempotent. */
void kpar_plugin_cache_unload(void);

#endif
