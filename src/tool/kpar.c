/* kpar.c - the kpar tool: a thin dispatcher over libkpar, like curl's
 * tool_main.c.  Make recipes run it for every long step (planning, running
 * workers, building and pushing the image, fetching artifacts), so that the
 * make process itself never blocks. */
#include "config.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/buf.h"
#include "base/conf.h"
#include "base/error.h"
#include "base/fs.h"
#include "run/state.h"
#include "tool/cmds.h"

static const struct {
	const char *name;
	int (*fn)(int, char **);
	const char *help;
} commands[] = {
	{ "list", kpar_cmd_list, "write the sorted test list (from KPAR_TESTS or KPAR_LIST_CMD)" },
	{ "plan", kpar_cmd_plan, "split the test list into bucket files from duration history" },
	{ "run", kpar_cmd_run, "run every bucket on the configured backend and collect results" },
	{ "worker", kpar_cmd_worker, "run one bucket and print its result record" },
	{ "status", kpar_cmd_status, "show the last run's live state where it runs (Jobs, pods)" },
	{ "cancel", kpar_cmd_cancel, "stop the last run where it runs (delete its Job and pods)" },
	{ "report", kpar_cmd_report, "print the global view of the last run; exit 1 if a test failed" },
	{ "state", kpar_cmd_state, "query the state database (runs, buckets, history)" },
	{ "history", kpar_cmd_history, "import test durations from JUnit XML or prove state files" },
	{ "image", kpar_cmd_image, "build (and push) the OCI image of the test payload" },
	{ "fetch", kpar_cmd_fetch, "fetch an artifact into the cache by URL and checksum" },
	{ "cache", kpar_cmd_cache, "inspect and clean the artifact cache (stats, gc, path)" },
};

static double started;

void kpar_tool_note_time(const struct kpar_conf *c, const char *step)
{
	char *path = kpar_xasprintf("%s/time.%s", c->state_dir, step), text[64];
	int n = snprintf(text, sizeof text, "%.6f\n", kpar_state_now() - started);

	/* in place: a file made once, not an inode per run */
	if (kpar_fs_rewrite_if_changed(path, text, (size_t)n) < 0)
		kpar_error_clear();
	free(path);
}

double kpar_tool_read_time(const struct kpar_conf *c, const char *step)
{
	char *path = kpar_xasprintf("%s/time.%s", c->state_dir, step), *text = NULL;
	double v = -1;

	if (kpar_fs_read_all(path, &text, NULL) == 0)
		v = atof(text);
	kpar_error_clear();
	free(text);
	free(path);
	return v;
}

double kpar_tool_elapsed(void)
{
	return kpar_state_now() - started;
}

int kpar_tool_fail(const char *cmd, int rc)
{
	fprintf(stderr, "kpar %s: %s\n", cmd, kpar_error_last());
	return rc == KPAR_EINTR ? 130 : 2;
}

static void usage(FILE *out)
{
	size_t i;

	fprintf(out, "usage: kpar <command> [options]\n\ncommands:\n");
	for (i = 0; i < sizeof commands / sizeof commands[0]; i++)
		fprintf(out, "  %-8s %s\n", commands[i].name, commands[i].help);
	fprintf(out, "\n'kpar <command> --help' describes a command's options.\n");
}

int main(int argc, char **argv)
{
	size_t i;

	started = kpar_state_now();
	if (argc < 2 || strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "help") == 0) {
		usage(argc < 2 ? stderr : stdout);
		return argc < 2 ? 2 : 0;
	}
	if (strcmp(argv[1], "--version") == 0) {
		printf("kpar %s\n", PACKAGE_VERSION);
		return 0;
	}
	for (i = 0; i < sizeof commands / sizeof commands[0]; i++)
		if (strcmp(argv[1], commands[i].name) == 0)
			return commands[i].fn(argc - 1, argv + 1);
	fprintf(stderr, "kpar: unknown command '%s'\n", argv[1]);
	usage(stderr);
	return 2;
}
