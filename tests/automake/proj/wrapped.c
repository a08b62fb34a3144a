/* A compiled test with a registered extension (.ct): it passes only when
 * run through CT_LOG_COMPILER (ctwrap), as make check runs it, also when
 * EXEEXT makes its name wrapped.ct.exe. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int main(void)
{
	const char *w = getenv("CTWRAP");

	if (!w || strcmp(w, "yes")) {
		puts("not run through CT_LOG_COMPILER");
		return 1;
	}
	puts("run through CT_LOG_COMPILER");
	return 0;
}
