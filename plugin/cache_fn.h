/* cache_fn.h - the artifact cache's Make function, for the plugin's setup.
 *
 * kpar_plugin_cache_register() adds $(kpar-fetch URL[,SHA256[,NAME]]) to the
 * running make; call it once from kpar_gmk_setup.  Returns 0 (it cannot fail
 * short of make refusing the name, which make reports itself).
 */
#ifndef KPAR_PLUGIN_CACHE_FN_H
#define KPAR_PLUGIN_CACHE_FN_H

int kpar_plugin_cache_register(void);
/* Closes the cache index the function keeps open and frees its lists; from
 * kpar_gmk_unload, and at exit where make has no unload hook.  Idempotent. */
void kpar_plugin_cache_unload(void);

#endif
