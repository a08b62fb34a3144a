/* placeholder */
#include "config.h"
#include <gnumake.h>
__attribute__((visibility("default"))) int plugin_is_GPL_compatible;
__attribute__((visibility("default"))) int kpar_gmk_setup(const gmk_floc *f) { return 1; }
