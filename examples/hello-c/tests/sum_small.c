#include "check.h"
#include "../src/greet.h"
int main(void)
{
	take(0.6);
	CHECK(sum_to(10) == 55);
	CHECK(sum_to(0) == 0);
	return 0;
}
