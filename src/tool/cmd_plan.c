#include "config.h"
#include <stdio.h>
#include "tool/cmds.h"
int kpar_cmd_plan(int argc, char **argv) { fprintf(stderr, "not yet\n"); return 2; }
