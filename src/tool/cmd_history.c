/* cmd_history.c - `kpar history import`: durations a CI already kept
 * (JUnit XML, prove's .prove) into the duration history the split uses. */
#include "config.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/buf.h"
#include "base/conf.h"
#include "base/error.h"
#include "base/fs.h"
#include "run/import.h"
#include "run/state.h"
#include "run/testlist.h"
#include "tool/cmds.h"

static const char usage[] =
	"usage: kpar history import [--state-dir DIR] FILE...\n"
	"Reads test durations from JUnit XML reports (any common dialect, kpar's own\n"
	"report/junit.xml included) and prove state files (.prove, from prove --state=save)\n"
	"into the duration history of <state-dir>/state.db, so the next plan splits by them.\n"
	"Names map to the ids of <state-dir>/tests.list (else of KPAR_LIST_CMD or\n"
	"KPAR_TESTS): exact id, then the path without its extension, then a unique\n"
	"basename. Durations kpar measured itself always win over imported ones.\n"
	"Automake's .trs/.log files hold no durations and give nothing.\n"
	"All files are imported in one transaction: a bad one changes nothing.\n";

/* The ids names are mapped onto: the listed tests, else the settings'. */
static int test_ids(const struct kpar_conf *c, struct kpar_strv *ids)
{
	char *path = kpar_conf_path(c, "tests.list");
	int rc;

	if (kpar_fs_exists(path))
		rc = kpar_testlist_read(path, ids);
	else if (*c->list_cmd)
		rc = kpar_testlist_from_cmd(c->list_cmd, c->root, ids);
	else if (*c->tests)
		rc = kpar_testlist_from_words(c->tests, ids);
	else
		rc = kpar_error_set(KPAR_EINVAL, "no test list to map names onto: no '%s' (run "
				    "`make k8s-plan` or `kpar list`), nor KPAR_LIST_CMD or KPAR_TESTS",
				    path);
	free(path);
	if (rc == 0)
		kpar_testlist_canonicalise(ids);
	return rc;
}

int kpar_cmd_history(int argc, char **argv)
{
	struct kpar_conf c;
	struct kpar_strv files = KPAR_STRV_INIT, ids = KPAR_STRV_INIT;
	struct kpar_import_stats *stats = NULL;
	struct kpar_state *st = NULL;
	const char *sub = NULL;
	size_t k;
	int i, rc;

	if ((rc = kpar_conf_load(&c)) < 0)
		return kpar_tool_fail("history", rc);
	for (i = 1; i < argc; i++) {
		if (strcmp(argv[i], "--help") == 0) {
			fputs(usage, stdout);
			rc = 0;
			goto out;
		}
		if (!sub && argv[i][0] != '-') {
			sub = argv[i];
			continue;
		}
		if ((rc = kpar_conf_option(&c, argc, argv, &i)) < 0)
			goto fail;
		if (rc == 0) {
			if (argv[i][0] == '-' && strcmp(argv[i], "-") != 0) {
				rc = kpar_error_set(KPAR_EINVAL, "unexpected option '%s'", argv[i]);
				goto fail;
			}
			kpar_strv_push(&files, argv[i]);
		}
	}
	if (!sub || strcmp(sub, "import") != 0 || files.n == 0) {
		if (sub && strcmp(sub, "import") != 0)
			fprintf(stderr, "kpar history: unknown subcommand '%s'\n", sub);
		fputs(usage, stderr);
		rc = 2;
		goto out;
	}
	if ((rc = test_ids(&c, &ids)) < 0 || (rc = kpar_state_open(&st, c.state_dir, 0)) < 0)
		goto fail;
	stats = kpar_xcalloc(files.n, sizeof *stats);
	if ((rc = kpar_import_files(kpar_state_db(st), files.v, files.n, &ids, stats)) < 0)
		goto fail;
	for (k = 0; k < files.n; k++) {
		const struct kpar_import_stats *s = &stats[k];

		if (strcmp(s->format, "automake") == 0) {
			printf("%s: automake keeps no durations in .trs/.log files: nothing imported\n",
			       files.v[k]);
			continue;
		}
		printf("%s (%s): %zu duration%s read, %zu matched, %zu unmatched, %zu ambiguous; "
		       "%zu test%s recorded", files.v[k], s->format, s->read, kpar_buf_plural(s->read),
		       s->matched, s->unmatched, s->ambiguous, s->stored, kpar_buf_plural(s->stored));
		if (s->tests > s->stored)
			printf(", %zu kept their measured history", s->tests - s->stored);
		if (s->untimed)
			printf(", %zu without a time", s->untimed);
		putchar('\n');
	}
	rc = 0;
	goto out;
fail:
	rc = kpar_tool_fail("history", rc);
out:
	kpar_state_close(st);
	free(stats);
	kpar_strv_free(&files);
	kpar_strv_free(&ids);
	kpar_conf_free(&c);
	return rc;
}
