#include "check.h"
#include "../src/greet.h"
int main(void)
{
	take(1.2);
	CHECK(sum_to(1000) == 500500);
	return 0;
}
