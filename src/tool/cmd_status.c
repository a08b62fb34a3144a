/* cmd_status.c - `kpar status` and `kpar cancel`: the live state of the
 * last run wherever its buckets run, and stopping it there.  Both ask the
 * backend that ran it (the run records its name), not KPAR_BACKEND.
 */
#include "config.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/buf.h"
#include "base/conf.h"
#include "base/error.h"
#include "k8s/job.h"
#include "run/backend.h"
#include "run/local.h"
#include "run/state.h"
#include "tool/cmds.h"

static const struct kpar_backend *const backends[] = { &kpar_local_backend, &kpar_k8s_backend };

const struct kpar_backend *kpar_tool_backend(const char *name)
{
	size_t i;

	for (i = 0; i < sizeof backends / sizeof backends[0]; i++)
		if (!strcmp(backends[i]->name, name))
			return backends[i];
	return NULL;
}

static const char status_usage[] =
	"usage: kpar status [--state-dir DIR] ...\n"
	"Prints the last run's state from the state database, then what its\n"
	"backend reports now (on Kubernetes: the run's Jobs and pods).  Changes nothing.\n";

static const char cancel_usage[] =
	"usage: kpar cancel [--state-dir DIR] ...\n"
	"Stops the last run where it runs (on Kubernetes: deletes its Jobs and\n"
	"pods) and marks it aborted.  Its collected results stay; RESUME=1 runs\n"
	"the rest again.\n";

static int common(int argc, char **argv, const char *usage, int cancel)
{
	struct kpar_conf c;
	struct kpar_state *st = NULL;
	struct kpar_run_info ri;
	const struct kpar_backend *be;
	const char *name = cancel ? "cancel" : "status";
	int i, rc;

	memset(&ri, 0, sizeof ri);
	if ((rc = kpar_conf_load(&c)) < 0)
		return kpar_tool_fail(name, rc);
	for (i = 1; i < argc; i++) {
		if (!strcmp(argv[i], "--help")) {
			fputs(usage, stdout);
			rc = 0;
			goto out;
		}
		if ((rc = kpar_conf_option(&c, argc, argv, &i)) < 0)
			goto fail;
		if (rc == 0) {
			rc = kpar_error_set(KPAR_EINVAL, "unexpected argument '%s'", argv[i]);
			goto fail;
		}
	}
	if ((rc = kpar_state_open(&st, c.state_dir, cancel ? 0 : KPAR_STATE_RDONLY)) < 0 ||
	    (rc = kpar_state_last_run(st, &ri)) < 0) {
		if (rc == KPAR_ENOTFOUND) {
			printf("no run yet in %s\n", c.state_dir);
			rc = 0;
			goto out;
		}
		goto fail;
	}
	{
		struct kpar_buf done = KPAR_BUF_INIT;
		if (kpar_state_query(c.state_dir, "buckets-done", &done) < 0)
			kpar_error_clear();
		printf("run %lld (%s backend): %s, %s of %ld buckets collected%s%s\n", ri.id,
		       ri.backend ? ri.backend : "?", ri.status, done.data ? done.data : "?", ri.nbuckets,
		       ri.verdict ? ", verdict " : "", ri.verdict ? ri.verdict : "");
		kpar_buf_free(&done);
	}
	be = kpar_tool_backend(ri.backend ? ri.backend : "local");
	if (!be) {
		rc = kpar_error_set(KPAR_EINVAL, "run %lld ran on an unknown backend '%s'", ri.id, ri.backend);
		goto fail;
	}
	if (cancel && !strcmp(ri.status, "complete")) {
		printf("run %lld is complete: nothing to cancel\n", ri.id);
		rc = 0;
		goto out;
	}
	rc = 0;
	if (cancel && be->cancel)
		rc = be->cancel(&c, st, ri.id, stdout);
	else if (!cancel && be->status)
		rc = be->status(&c, st, ri.id, stdout);
	if (rc < 0)
		goto fail;
	goto out;
fail:
	rc = kpar_tool_fail(name, rc);
out:
	kpar_run_info_free(&ri);
	kpar_state_close(st);
	kpar_conf_free(&c);
	return rc;
}

int kpar_cmd_status(int argc, char **argv)
{
	return common(argc, argv, status_usage, 0);
}

int kpar_cmd_cancel(int argc, char **argv)
{
	return common(argc, argv, cancel_usage, 1);
}
