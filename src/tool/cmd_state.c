/* cmd_state.c - `kpar state`: questions about the state database. */
#include "config.h"

#include <stdio.h>
#include <string.h>

#include "base/buf.h"
#include "base/conf.h"
#include "base/error.h"
#include "run/state.h"
#include "tool/cmds.h"

static const char usage[] =
	"usage: kpar state [--state-dir DIR] WHAT\n"
	"       kpar state --settings\n"
	"WHAT: run, status, verdict, resumable, buckets, buckets-done, tests,\n"
	"      tests-passed, tests-failed, tests-errors, tests-skipped, tests-flaky.\n"
	"--settings prints every KPAR_* setting as kpar sees it (defaults, environment, options).\n";

int kpar_cmd_state(int argc, char **argv)
{
	struct kpar_conf c;
	struct kpar_buf out = KPAR_BUF_INIT;
	const char *what = NULL;
	int i, rc, settings = 0;

	if ((rc = kpar_conf_load(&c)) < 0)
		return kpar_tool_fail("state", rc);
	for (i = 1; i < argc; i++) {
		if (strcmp(argv[i], "--help") == 0) {
			fputs(usage, stdout);
			goto done;
		}
		if (strcmp(argv[i], "--settings") == 0) {
			settings = 1;
			continue;
		}
		if ((rc = kpar_conf_option(&c, argc, argv, &i)) < 0)
			goto fail;
		if (rc == 0) {
			if (what || argv[i][0] == '-') {
				rc = kpar_error_set(KPAR_EINVAL, "unexpected argument '%s'", argv[i]);
				goto fail;
			}
			what = argv[i];
		}
	}
	if (settings) {
		kpar_conf_print(&c, stdout);
		goto done;
	}
	if (!what) {
		fputs(usage, stderr);
		rc = 2;
		goto out;
	}
	if ((rc = kpar_state_query(c.state_dir, what, &out)) < 0)
		goto fail;
	printf("%s\n", out.data ? out.data : "");
done:
	rc = 0;
	goto out;
fail:
	rc = kpar_tool_fail("state", rc);
out:
	kpar_buf_free(&out);
	kpar_conf_free(&c);
	return rc;
}
