#include <string.h>
#include "check.h"
#include "../src/greet.h"
int main(void)
{
	char b[64];
	take(0.2);
	CHECK(greet(b, sizeof b, "kpar") == 12);
	CHECK(strcmp(b, "Hello, kpar!") == 0);
	puts("greet_basic: ok");
	return 0;
}
