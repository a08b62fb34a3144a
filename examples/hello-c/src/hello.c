#include <stdio.h>
#include "greet.h"

int main(int argc, char **argv)
{
	char buf[128];
	if (greet(buf, sizeof buf, argc > 1 ? argv[1] : "world") < 0)
		return 1;
	puts(buf);
	return 0;
}
