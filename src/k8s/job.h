/* job.h - the Kubernetes backend: a run's buckets as one Indexed Job.
 *
 * One Job per run (completionMode Indexed, completions = buckets to run,
 * parallelism = KPAR_WORKERS, backoffLimitPerIndex = KPAR_WORKER_RETRIES, a
 * podFailurePolicy whose first rule ignores DisruptionTarget, so a
 * preempted or evicted pod is replaced without counting as a failure).
 * The Job controller hands indexes out lowest first as slots free up, and
 * the plan numbers its buckets longest first, so the Job is the queue: no
 * service of kpar's runs in the cluster.  Each pod runs the pushed image by
 * digest; its worker prints the bucket's result record to the pod log.
 *
 * The coordinator (`kpar run`) lists the run's pods once, then watches them
 * (label kpar.dev/run=<token>, bookmarks on, relisting on 410), fetches a
 * finished pod's log at once and hands it to the shared collect step
 * (run/backend.h).  A record that cannot be fetched or does not verify
 * makes the bucket run again in a follow-up Job listing only such buckets
 * (KPAR_BUCKET_LIST maps its indexes to buckets); an index the Job gave up
 * on (status.failedIndexes) is recorded as lost.  Jobs, token and image are
 * kept in the state database (run_meta), so a resume reattaches to the
 * Jobs that still exist and starts one for the buckets nobody runs.
 */
#ifndef KPAR_K8S_JOB_H
#define KPAR_K8S_JOB_H

#include "run/backend.h"

extern const struct kpar_backend kpar_k8s_backend;

/* Parses a Job status index list ("1,3-5,7") and calls fn for each index;
 * KPAR_EINVAL for anything else. */
int kpar_k8s_index_ranges(const char *s, void (*fn)(void *ud, long idx), void *ud);

/* The Job object for buckets[0..n) of the run as JSON (exposed for the
 * unit tests): name, run token, image reference. */
int kpar_k8s_job_json(const struct kpar_conf *c, const struct kpar_plan *p, const char *ns,
		      const char *name, const char *token, const char *image,
		      const int *buckets, size_t n, char **out);

#endif
