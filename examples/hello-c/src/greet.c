#include <stdio.h>
#include "greet.h"

int greet(char *out, size_t size, const char *name)
{
	int n = snprintf(out, size, "Hello, %s!", name);
	return n < 0 || (size_t)n >= size ? -1 : n;
}

unsigned long long sum_to(unsigned long long n)
{
	unsigned long long s = 0, i;
	for (i = 1; i <= n; i++)
		s += i;
	return s;
}
