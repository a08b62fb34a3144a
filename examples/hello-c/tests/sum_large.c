#include "check.h"
#include "../src/greet.h"
int main(void)
{
	/* The suite's long test: a real workload plus waiting on "I/O". */
	take(2.5);
	CHECK(sum_to(20000000ULL) == 20000000ULL * 20000001ULL / 2);
	return 0;
}
