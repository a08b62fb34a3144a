/* greet.h - the little library the example's tests exercise. */
#ifndef GREET_H
#define GREET_H
#include <stddef.h>
/* Writes "Hello, <name>!" into out; returns the length or -1 if it does not fit. */
int greet(char *out, size_t size, const char *name);
/* Sum of 1..n, the slow way on purpose (a test's workload). */
unsigned long long sum_to(unsigned long long n);
#endif
