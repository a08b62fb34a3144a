#include "check.h"
#include "../src/greet.h"
int main(void)
{
	char b[8];
	take(0.4);
	CHECK(greet(b, sizeof b, "a long name") == -1);
	return 0;
}
