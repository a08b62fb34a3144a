/* A check_PROGRAMS test, built before the suite runs, run through
 * LOG_COMPILER (env LOGC=yes). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int main(void)
{
	const char *l = getenv("LOGC"), *a = getenv("AMENV");

	if (!l || strcmp(l, "yes") || !a || strcmp(a, "am")) {
		puts("missing LOGC or AMENV");
		return 1;
	}
	puts("ok");
	return 0;
}
