/* testapp: the workload image of kpar's test cluster smoke test.
 * Prints "index=$JOB_COMPLETION_INDEX" (and the pod's HOSTNAME), then
 * sleeps $SLEEP seconds if set, then exits with $EXIT_CODE (default 0).
 * With arguments, prints them one per line first (a poor man's echo). */
#include <stdio.h>
#include <stdlib.h>
#include <time.h>
#include <errno.h>

int main(int argc, char **argv)
{
	const char *idx = getenv("JOB_COMPLETION_INDEX");
	const char *host = getenv("HOSTNAME");
	const char *s = getenv("SLEEP");
	const char *code = getenv("EXIT_CODE");
	for (int i = 1; i < argc; i++)
		printf("%s\n", argv[i]);
	printf("index=%s\n", idx ? idx : "");
	printf("hostname=%s\n", host ? host : "");
	fflush(stdout);
	if (s && *s) {
		struct timespec ts = { .tv_sec = atol(s), .tv_nsec = 0 };
		while (nanosleep(&ts, &ts) == -1 && errno == EINTR)
			;
	}
	printf("done index=%s\n", idx ? idx : "");
	return code ? atoi(code) : 0;
}
