/* yaml_load.c - libyaml, loaded on first use (see yaml_load.h). */
#include "config.h"

#include "base/error.h"
#include "base/yaml_load.h"

struct kpar_yaml_api kpar_yaml_api;

#define KPAR_YAML_SYM(m, f) { #f, offsetof(struct kpar_yaml_api, m) },
static const struct kpar_lazylib_sym syms[] = { KPAR_YAML_FUNCTIONS(KPAR_YAML_SYM) };
#undef KPAR_YAML_SYM

static struct kpar_lazylib lib = {
	.name = "libyaml", .soname = KPAR_LIBYAML_SONAME, .needs = "libyaml 0.1 or later",
	.code = KPAR_ELIB, .syms = syms, .nsyms = sizeof syms / sizeof syms[0],
	.api = &kpar_yaml_api, .api_size = sizeof kpar_yaml_api,
};

int kpar_yaml_load(void)
{
	return kpar_lazylib_load(&lib);
}
