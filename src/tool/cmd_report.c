/* cmd_report.c - `kpar report`: print the last global view. */
#include "config.h"

#include <stdio.h>
#include <string.h>

#include "base/conf.h"
#include "base/error.h"
#include "run/report.h"
#include "tool/cmds.h"

static const char usage[] =
	"usage: kpar report [--state-dir DIR]\n"
	"Prints the summary of the last finished run (<state-dir>/report/summary.txt).\n"
	"Exit status: 0 if every test passed, 1 if a test failed, 2 if there is no report.\n";

int kpar_cmd_report(int argc, char **argv)
{
	struct kpar_conf c;
	int i, rc;

	if ((rc = kpar_conf_load(&c)) < 0)
		goto fail;
	for (i = 1; i < argc; i++) {
		if (strcmp(argv[i], "--help") == 0) {
			fputs(usage, stdout);
			kpar_conf_free(&c);
			return 0;
		}
		if ((rc = kpar_conf_option(&c, argc, argv, &i)) < 0)
			goto fail;
		if (rc == 0) {
			rc = kpar_error_set(KPAR_EINVAL, "unexpected argument '%s'", argv[i]);
			goto fail;
		}
	}
	rc = kpar_report_print(&c, stdout);
	if (rc < 0)
		goto fail;
	kpar_conf_free(&c);
	return rc;
fail:
	kpar_conf_free(&c);
	return kpar_tool_fail("report", rc);
}
