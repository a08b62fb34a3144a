/* cmd_cache.c - placeholder until the cache area lands. */
#include "config.h"
#include <stdio.h>
#include "tool/cmds.h"

int kpar_cmd_cache(int argc, char **argv)
{
	fprintf(stderr, "kpar cache: not built yet\n");
	return 2;
}
