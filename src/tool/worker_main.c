/* worker_main.c - kpar-worker: `kpar worker` alone, the executable the image
 * ships.  It links only what running a bucket needs (no SQLite; libcurl,
 * libarchive and libyaml it never opens), which keeps the image's worker
 * layer small.  It accepts the
 * full tool's spelling too (`kpar-worker worker ARGS`), so the entrypoint is
 * the same whichever executable was put into the image.
 */
#include "config.h"

#include <stdio.h>
#include <string.h>

#include "base/error.h"
#include "tool/cmds.h"

int kpar_tool_fail(const char *cmd, int rc)
{
	fprintf(stderr, "kpar %s: %s\n", cmd, kpar_error_last());
	return rc == KPAR_EINTR ? 130 : 2;
}

int main(int argc, char **argv)
{
	if (argc > 1 && strcmp(argv[1], "worker") == 0) {
		argc--;
		argv++;
	}
	return kpar_cmd_worker(argc, argv);
}
