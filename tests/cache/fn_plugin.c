/* fn_plugin.c - a Make plugin with only the artifact cache's function,
 * $(kpar-fetch ...), for tests/cache/make.py: the function is tested on its
 * own, whatever the main plugin registers. */
#include "config.h"

#include <gnumake.h>

#include "plugin/cache_fn.h"

#define EXPORT __attribute__((visibility("default")))

EXPORT int plugin_is_GPL_compatible;

#ifdef KPAR_GMK_HAS_ABI
EXPORT int kpar_cachefn_gmk_setup(unsigned int abi, const gmk_floc *floc);

int kpar_cachefn_gmk_setup(unsigned int abi, const gmk_floc *floc)
{
	(void)abi;
	(void)floc;
	return kpar_plugin_cache_register() == 0;
}
#else
EXPORT int kpar_cachefn_gmk_setup(const gmk_floc *floc);

int kpar_cachefn_gmk_setup(const gmk_floc *floc)
{
	(void)floc;
	return kpar_plugin_cache_register() == 0;
}
#endif
