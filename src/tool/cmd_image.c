/* cmd_image.c - placeholder until the image area lands. */
#include "config.h"
#include <stdio.h>
#include "tool/cmds.h"

int kpar_cmd_image(int argc, char **argv)
{
	fprintf(stderr, "kpar image: not built yet\n");
	return 2;
}
