/* cmd_fetch.c - placeholder until the cache area lands. */
#include "config.h"
#include <stdio.h>
#include "tool/cmds.h"

int kpar_cmd_fetch(int argc, char **argv)
{
	fprintf(stderr, "kpar fetch: not built yet\n");
	return 2;
}
