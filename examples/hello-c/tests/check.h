/* check.h - the automake harness convention: exit 0 pass, 77 skip, 1 fail. */
#include <stdio.h>
#include <stdlib.h>
#include <time.h>
#define CHECK(c) do { if (!(c)) { fprintf(stderr, "%s:%d: failed: %s\n", __FILE__, __LINE__, #c); exit(1); } } while (0)
/* The example's tests take clearly different times, like a real suite's. */
static void take(double seconds)
{
	struct timespec ts = { (time_t)seconds, (long)((seconds - (time_t)seconds) * 1e9) };
	nanosleep(&ts, NULL);
}
