/* cmd_list.c - `kpar list`: write $(KPAR_STATE_DIR)/tests.list. */
#include "config.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/buf.h"
#include "base/conf.h"
#include "base/error.h"
#include "base/fs.h"
#include "run/testlist.h"
#include "tool/cmds.h"

static const char usage[] =
	"usage: kpar list [--check] [--tests IDS | --list-cmd CMD] [--state-dir DIR] [--root DIR]\n"
	"Writes the sorted, de-duplicated test list to <state-dir>/tests.list, touching\n"
	"it only when it changes. Ids come from KPAR_LIST_CMD (one per line) if set,\n"
	"else from KPAR_TESTS (whitespace-separated).\n"
	"  --check   write nothing; print \"stale\" when tests.list would change (make -q, -n)\n";

int kpar_cmd_list(int argc, char **argv)
{
	struct kpar_conf c;
	struct kpar_strv tests = KPAR_STRV_INIT;
	struct kpar_buf b = KPAR_BUF_INIT;
	char *path = NULL;
	int i, rc, check = 0;

	if ((rc = kpar_conf_load(&c)) < 0)
		goto fail;
	for (i = 1; i < argc; i++) {
		if (strcmp(argv[i], "--help") == 0) {
			fputs(usage, stdout);
			goto out;
		}
		if (strcmp(argv[i], "--check") == 0) {
			check = 1;
			continue;
		}
		if ((rc = kpar_conf_option(&c, argc, argv, &i)) < 0)
			goto fail;
		if (rc == 0) {
			kpar_error_set(KPAR_EINVAL, "unexpected argument '%s'\n%s", argv[i], usage);
			rc = KPAR_EINVAL;
			goto fail;
		}
	}
	if (*c.list_cmd)
		rc = kpar_testlist_from_cmd(c.list_cmd, c.root, &tests);
	else if (*c.tests)
		rc = kpar_testlist_from_words(c.tests, &tests);
	else
		rc = kpar_error_set(KPAR_EINVAL, "no tests: set KPAR_TESTS or KPAR_LIST_CMD");
	if (rc < 0)
		goto fail;
	kpar_testlist_canonicalise(&tests);
	if (tests.n == 0) {
		rc = kpar_error_set(KPAR_EINVAL, "%s lists no tests", *c.list_cmd ? "KPAR_LIST_CMD" : "KPAR_TESTS");
		goto fail;
	}
	kpar_testlist_format(&tests, &b);
	path = kpar_conf_path(&c, "tests.list");
	if (check) {
		char *old = NULL;
		size_t len = 0;
		if (kpar_fs_read_all(path, &old, &len) < 0 || len != b.len || memcmp(old, b.data, len) != 0)
			puts("stale");
		kpar_error_clear();
		free(old);
		goto out;
	}
	if ((rc = kpar_fs_mkdir_p(c.state_dir, 0755)) < 0)
		goto fail;
	if ((rc = kpar_fs_write_if_changed(path, b.data, b.len)) < 0)
		goto fail;
	if (rc == 1)
		fprintf(stderr, "kpar: %zu test%s listed in %s\n", tests.n, kpar_buf_plural(tests.n), path);
	kpar_tool_note_time(&c, "list");
out:
	rc = 0;
	goto done;
fail:
	/* make asked a question we cannot answer: the step must run to tell */
	if (check)
		puts("stale");
	rc = kpar_tool_fail("list", rc);
done:
	kpar_strv_free(&tests);
	kpar_buf_free(&b);
	kpar_conf_free(&c);
	free(path);
	return rc;
}
