/* Fails when HELLO_STRICT is set: the example's way to show a failure. */
#include <string.h>
#include "check.h"
#include "../src/greet.h"
int main(void)
{
	char b[64];
	const char *strict = getenv("HELLO_STRICT");
	take(0.8);
	greet(b, sizeof b, "world");
	printf("greeting is '%s'\n", b);
	if (strict && *strict) {
		fprintf(stderr, "strict mode: expected a greeting without punctuation\n");
		CHECK(strchr(b, '!') == NULL);
	}
	return 0;
}
