/* Checks greet() against a fixture file fetched through kpar's artifact
 * cache (fixture.mk): lines "name<TAB>expected greeting".  The fixture's path
 * comes in HELLO_FIXTURE; without it the test is skipped (exit 77). */
#include <string.h>
#include "check.h"
#include "../src/greet.h"
int main(void)
{
	const char *path = getenv("HELLO_FIXTURE");
	char line[256], out[256];
	FILE *f;
	int n = 0;

	take(0.05);
	if (!path || !*path) {
		puts("HELLO_FIXTURE not set: skipping");
		return 77;
	}
	f = fopen(path, "r");
	CHECK(f != NULL);
	while (fgets(line, sizeof line, f)) {
		char *tab = strchr(line, '\t'), *nl = strchr(line, '\n');
		if (!tab)
			continue;
		if (nl)
			*nl = '\0';
		*tab = '\0';
		CHECK(greet(out, sizeof out, line) > 0);
		CHECK(strcmp(out, tab + 1) == 0);
		n++;
	}
	fclose(f);
	CHECK(n > 0);
	printf("greet_fixture: %d greetings ok\n", n);
	return 0;
}
