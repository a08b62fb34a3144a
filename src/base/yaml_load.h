/* yaml_load.h - libyaml, loaded the first time a YAML file is parsed.
 *
 * Only kubeconfig files (k8s/kubeconfig.c) and prove state files
 * (run/import.c) are YAML, so the tool does not link libyaml (base/lazylib.h
 * says why).  Those two include this header in place of <yaml.h> and call
 * kpar_yaml_load() before their first libyaml call.
 */
#ifndef KPAR_YAML_LOAD_H
#define KPAR_YAML_LOAD_H

#include <yaml.h>

#include "base/lazylib.h"

/* Every libyaml function kpar calls: X(member, name). */
#define KPAR_YAML_FUNCTIONS(X) \
	X(parser_initialize, yaml_parser_initialize) \
	X(parser_set_input_string, yaml_parser_set_input_string) \
	X(parser_set_input_file, yaml_parser_set_input_file) \
	X(parser_load, yaml_parser_load) \
	X(parser_delete, yaml_parser_delete) \
	X(document_get_root_node, yaml_document_get_root_node) \
	X(document_get_node, yaml_document_get_node) \
	X(document_delete, yaml_document_delete)

struct kpar_yaml_api {
	KPAR_YAML_FUNCTIONS(KPAR_LAZYLIB_MEMBER)
};

extern struct kpar_yaml_api kpar_yaml_api;

/* Loads libyaml (the library configure found), once per process;
 * thread-safe.  Returns 0, or KPAR_ELIB with a message naming the library.
 * Until it has succeeded, the calls below jump through NULL. */
int kpar_yaml_load(void);

/* from here on a call to yaml_parser_load() etc. goes through the table */
#define yaml_parser_initialize (*kpar_yaml_api.parser_initialize)
#define yaml_parser_set_input_string (*kpar_yaml_api.parser_set_input_string)
#define yaml_parser_set_input_file (*kpar_yaml_api.parser_set_input_file)
#define yaml_parser_load (*kpar_yaml_api.parser_load)
#define yaml_parser_delete (*kpar_yaml_api.parser_delete)
#define yaml_document_get_root_node (*kpar_yaml_api.document_get_root_node)
#define yaml_document_get_node (*kpar_yaml_api.document_get_node)
#define yaml_document_delete (*kpar_yaml_api.document_delete)

#endif
