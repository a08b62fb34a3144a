/* cmd_plan.c - `kpar plan`: split tests.list into bucket files. */
#include "config.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/conf.h"
#include "base/error.h"
#include "run/plan.h"
#include "tool/cmds.h"

static const char usage[] =
	"usage: kpar plan [--workers N] [--buckets N] [--hints FILE] [--test-inputs FILES] ...\n"
	"Splits <state-dir>/tests.list into buckets of similar expected duration (from the\n"
	"duration history in <state-dir>/state.db) and writes <state-dir>/plan.json, only\n"
	"when its content changes.\n"
	"  --check          write nothing; print \"stale\" when plan.json would change (make -q, -n)\n"
	"  --write-buckets  write <state-dir>/buckets/test-group-1..N from plan.json as it is\n"
	"                   (a worker run by hand reads them; `kpar image` writes them itself)\n";

int kpar_cmd_plan(int argc, char **argv)
{
	struct kpar_conf c;
	struct kpar_plan p;
	int i, rc, changed = 0, check = 0, write_buckets = 0;

	memset(&p, 0, sizeof p);
	if ((rc = kpar_conf_load(&c)) < 0)
		goto fail;
	for (i = 1; i < argc; i++) {
		if (strcmp(argv[i], "--help") == 0) {
			fputs(usage, stdout);
			rc = 0;
			goto done;
		}
		if (strcmp(argv[i], "--check") == 0) {
			check = 1;
			continue;
		}
		if (strcmp(argv[i], "--write-buckets") == 0) {
			write_buckets = 1;
			continue;
		}
		if ((rc = kpar_conf_option(&c, argc, argv, &i)) < 0)
			goto fail;
		if (rc == 0) {
			rc = kpar_error_set(KPAR_EINVAL, "unexpected argument '%s'", argv[i]);
			goto fail;
		}
	}
	if (write_buckets) {
		char *path = kpar_conf_path(&c, "plan.json");

		rc = kpar_plan_load(path, &p);
		free(path);
		if (rc == 0)
			rc = kpar_plan_write_buckets(&c, &p);
		if (rc < 0)
			goto fail;
		goto done;
	}
	if (check) {
		int stale;
		if ((rc = kpar_plan_stale(&c, &stale)) < 0)
			goto fail;
		if (stale)
			puts("stale");
		goto done;
	}
	if ((rc = kpar_plan_make(&c, &p, &changed)) < 0)
		goto fail;
	if (p.imported)
		fprintf(stderr, "kpar: imported test durations from %zu file%s of KPAR_HISTORY_FROM\n",
			p.imported, kpar_buf_plural(p.imported));
	if (changed) {
		double total = 0, max = 0;
		size_t k;
		for (k = 0; k < p.nbuckets; k++) {
			total += p.buckets[k].estimate;
			if (p.buckets[k].estimate > max)
				max = p.buckets[k].estimate;
		}
		fprintf(stderr, "kpar: planned %zu test%s in %zu bucket%s (estimated %.1fs in all, largest "
			"bucket %.1fs)\n", p.ntests, kpar_buf_plural(p.ntests), p.nbuckets,
			kpar_buf_plural(p.nbuckets), total, max);
	}
	kpar_tool_note_time(&c, "plan");
	rc = 0;
	goto done;
fail:
	/* make asked a question we cannot answer: the step must run to tell */
	if (check)
		puts("stale");
	rc = kpar_tool_fail("plan", rc);
done:
	kpar_plan_free(&p);
	kpar_conf_free(&c);
	return rc;
}
