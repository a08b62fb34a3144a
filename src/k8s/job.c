/* job.c - the Kubernetes backend (see job.h). */
#include "config.h"

#include <errno.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <time.h>
#include <unistd.h>

#include <cjson/cJSON.h>

#include "base/buf.h"
#include "base/curl_load.h"
#include "base/error.h"
#include "base/fs.h"
#include "k8s/client.h"
#include "k8s/job.h"
#include "k8s/kubeconfig.h"
#include "run/record.h"

#define LABEL_RUN "kpar.dev/run"
#define LABEL_PLAN "kpar.dev/plan"
#define LABEL_INDEX "batch.kubernetes.io/job-completion-index"
#define LABEL_JOB "batch.kubernetes.io/job-name"
#define CONTAINER "worker"
/* a pod log holds log frames and the record (under 9 MiB in all, see
 * kpar worker --send-logs) and some stderr */
#define LOG_LIMIT (4 * KPAR_RECORD_MAX)
/* how often the Jobs' status is read besides the pod watch, in seconds:
 * often while a failed pod's fate is unknown, rarely otherwise */
#define JOB_CHECK_SOON 3.0
#define JOB_CHECK_IDLE 30.0
/* seconds a pod log is retried (5xx, lost connections) before its bucket
 * is run again instead: a node whose kubelet is gone answers 5xx for good,
 * and the watch waits while we retry */
#define LOG_RETRY_BUDGET 8.0

/* ---- settings into JSON ---- */

/* "k=v,k2=v2" into obj; errors name the setting. */
static int put_pairs(cJSON *obj, const char *setting, const char *text)
{
	char *copy = kpar_xstrdup(text), *save = NULL, *item;
	int rc = 0;

	for (item = strtok_r(copy, ",", &save); item; item = strtok_r(NULL, ",", &save)) {
		char *eq;
		while (*item == ' ')
			item++;
		if (!*item)
			continue;
		eq = strchr(item, '=');
		if (!eq || eq == item) {
			rc = kpar_error_set(KPAR_EINVAL, "%s: '%s' is not key=value", setting, item);
			break;
		}
		*eq = '\0';
		cJSON_DeleteItemFromObjectCaseSensitive(obj, item);
		cJSON_AddStringToObject(obj, item, eq + 1);
	}
	free(copy);
	return rc;
}

/* kubectl taint's form: key[=value][:Effect]; no value = Exists. */
static int put_tolerations(cJSON *arr, const char *text)
{
	char *copy = kpar_xstrdup(text), *save = NULL, *item;
	int rc = 0;

	for (item = strtok_r(copy, ", ", &save); item; item = strtok_r(NULL, ", ", &save)) {
		cJSON *t = cJSON_CreateObject();
		char *colon = strrchr(item, ':'), *eq;

		if (colon) {
			*colon++ = '\0';
			if (strcmp(colon, "NoSchedule") && strcmp(colon, "PreferNoSchedule") &&
			    strcmp(colon, "NoExecute")) {
				cJSON_Delete(t);
				rc = kpar_error_set(KPAR_EINVAL, "KPAR_K8S_TOLERATIONS: effect '%s' is not "
						    "NoSchedule, PreferNoSchedule or NoExecute", colon);
				break;
			}
		}
		eq = strchr(item, '=');
		if (eq)
			*eq++ = '\0';
		if (!*item) {
			cJSON_Delete(t);
			rc = kpar_error_set(KPAR_EINVAL, "KPAR_K8S_TOLERATIONS: a toleration has no key");
			break;
		}
		cJSON_AddStringToObject(t, "key", item);
		cJSON_AddStringToObject(t, "operator", eq ? "Equal" : "Exists");
		if (eq)
			cJSON_AddStringToObject(t, "value", eq);
		if (colon)
			cJSON_AddStringToObject(t, "effect", colon);
		cJSON_AddItemToArray(arr, t);
	}
	free(copy);
	return rc;
}

static void put_toleration(cJSON *arr, const char *key, const char *value, const char *effect)
{
	cJSON *t = cJSON_CreateObject();

	cJSON_AddStringToObject(t, "key", key);
	cJSON_AddStringToObject(t, "operator", "Equal");
	cJSON_AddStringToObject(t, "value", value);
	cJSON_AddStringToObject(t, "effect", effect);
	cJSON_AddItemToArray(arr, t);
}

/* The spot presets: where each cloud's preemptible nodes are, and the
 * taint that keeps other pods off them. */
static void put_spot(const char *spot, cJSON *sel, cJSON *tol)
{
	if (!strcmp(spot, "gke")) {
		cJSON_AddStringToObject(sel, "cloud.google.com/gke-spot", "true");
		put_toleration(tol, "cloud.google.com/gke-spot", "true", "NoSchedule");
	} else if (!strcmp(spot, "eks")) {
		cJSON_AddStringToObject(sel, "eks.amazonaws.com/capacityType", "SPOT");
	} else if (!strcmp(spot, "karpenter")) {
		cJSON_AddStringToObject(sel, "karpenter.sh/capacity-type", "spot");
	} else if (!strcmp(spot, "aks")) {
		cJSON_AddStringToObject(sel, "kubernetes.azure.com/scalesetpriority", "spot");
		put_toleration(tol, "kubernetes.azure.com/scalesetpriority", "spot", "NoSchedule");
	}
}

static void put_env(cJSON *env, const char *name, const char *value)
{
	cJSON *e = cJSON_CreateObject();

	cJSON_AddStringToObject(e, "name", name);
	cJSON_AddStringToObject(e, "value", value);
	cJSON_AddItemToArray(env, e);
}

/* Whether the NAME=value words of KPAR_IMAGE_ENV set name. */
static int image_sets(const char *image_env, const char *name)
{
	size_t n = strlen(name);
	const char *p = image_env;

	while (p && *p) {
		while (*p == ' ' || *p == '\t' || *p == '\n')
			p++;
		if (!strncmp(p, name, n) && p[n] == '=')
			return 1;
		p += strcspn(p, " \t\n");
	}
	return 0;
}

/* Label values are at most 63 characters: the digest's hex, cut. */
static void plan_label(const char *digest, char out[41])
{
	const char *hex = strchr(digest, ':');

	snprintf(out, 41, "%s", hex ? hex + 1 : digest);
}

int kpar_k8s_job_json(const struct kpar_conf *c, const struct kpar_plan *p, const char *ns,
		      const char *name, const char *token, const char *image,
		      const int *buckets, size_t n, char **out)
{
	cJSON *job = cJSON_CreateObject(), *meta, *labels, *spec, *tmpl, *tmeta, *pspec, *ctr, *env,
	      *args, *rules, *rule, *conds, *cond, *sel, *tol, *res, *arr;
	struct kpar_buf list = KPAR_BUF_INIT;
	char plan[41], *names, *save = NULL, *word;
	size_t i;
	int rc = 0, identity = 1;

	*out = NULL;
	plan_label(p->digest, plan);
	cJSON_AddStringToObject(job, "apiVersion", "batch/v1");
	cJSON_AddStringToObject(job, "kind", "Job");
	meta = cJSON_AddObjectToObject(job, "metadata");
	cJSON_AddStringToObject(meta, "name", name);
	cJSON_AddStringToObject(meta, "namespace", ns);
	labels = cJSON_AddObjectToObject(meta, "labels");
	cJSON_AddStringToObject(labels, LABEL_RUN, token);
	cJSON_AddStringToObject(labels, LABEL_PLAN, plan);
	cJSON_AddStringToObject(labels, "app.kubernetes.io/managed-by", "kpar");

	spec = cJSON_AddObjectToObject(job, "spec");
	cJSON_AddStringToObject(spec, "completionMode", "Indexed");
	cJSON_AddNumberToObject(spec, "completions", (double)n);
	cJSON_AddNumberToObject(spec, "parallelism", (double)((size_t)c->workers < n ? (size_t)c->workers : n));
	cJSON_AddNumberToObject(spec, "backoffLimitPerIndex", (double)c->worker_retries);
	/* a bucket that keeps failing is recorded as lost; the others go on */
	cJSON_AddNumberToObject(spec, "maxFailedIndexes", (double)n);
	cJSON_AddStringToObject(spec, "podReplacementPolicy", "Failed");
	cJSON_AddNumberToObject(spec, "ttlSecondsAfterFinished", (double)c->k8s_ttl);
	rules = cJSON_AddArrayToObject(cJSON_AddObjectToObject(spec, "podFailurePolicy"), "rules");
	rule = cJSON_CreateObject();
	cJSON_AddStringToObject(rule, "action", "Ignore");
	conds = cJSON_AddArrayToObject(rule, "onPodConditions");
	cond = cJSON_CreateObject();
	cJSON_AddStringToObject(cond, "type", "DisruptionTarget");
	cJSON_AddStringToObject(cond, "status", "True");
	cJSON_AddItemToArray(conds, cond);
	cJSON_AddItemToArray(rules, rule);

	tmpl = cJSON_AddObjectToObject(spec, "template");
	tmeta = cJSON_AddObjectToObject(tmpl, "metadata");
	labels = cJSON_AddObjectToObject(tmeta, "labels");
	if ((rc = put_pairs(labels, "KPAR_K8S_LABELS", c->k8s_labels)) < 0)
		goto done;
	cJSON_DeleteItemFromObjectCaseSensitive(labels, LABEL_RUN);
	cJSON_DeleteItemFromObjectCaseSensitive(labels, LABEL_PLAN);
	cJSON_AddStringToObject(labels, LABEL_RUN, token);
	cJSON_AddStringToObject(labels, LABEL_PLAN, plan);
	if ((rc = put_pairs(cJSON_AddObjectToObject(tmeta, "annotations"), "KPAR_K8S_ANNOTATIONS",
			    c->k8s_annotations)) < 0)
		goto done;

	pspec = cJSON_AddObjectToObject(tmpl, "spec");
	cJSON_AddStringToObject(pspec, "restartPolicy", "Never");
	/* tests get no API credentials unless the user names an account */
	if (*c->k8s_service_account)
		cJSON_AddStringToObject(pspec, "serviceAccountName", c->k8s_service_account);
	else
		cJSON_AddFalseToObject(pspec, "automountServiceAccountToken");
	cJSON_AddFalseToObject(pspec, "enableServiceLinks");
	if (*c->k8s_priority_class)
		cJSON_AddStringToObject(pspec, "priorityClassName", c->k8s_priority_class);
	if (*c->k8s_pull_secrets) {
		arr = cJSON_AddArrayToObject(pspec, "imagePullSecrets");
		names = kpar_xstrdup(c->k8s_pull_secrets);
		for (word = strtok_r(names, ", ", &save); word; word = strtok_r(NULL, ", ", &save)) {
			cJSON *ref = cJSON_CreateObject();
			cJSON_AddStringToObject(ref, "name", word);
			cJSON_AddItemToArray(arr, ref);
		}
		free(names);
	}
	sel = cJSON_CreateObject();
	tol = cJSON_CreateArray();
	put_spot(c->k8s_spot, sel, tol);
	rc = put_pairs(sel, "KPAR_K8S_NODE_SELECTOR", c->k8s_node_selector);
	if (rc == 0)
		rc = put_tolerations(tol, c->k8s_tolerations);
	cJSON_AddItemToObject(pspec, "nodeSelector", sel);
	cJSON_AddItemToObject(pspec, "tolerations", tol);
	if (rc < 0)
		goto done;

	ctr = cJSON_CreateObject();
	cJSON_AddItemToArray(cJSON_AddArrayToObject(pspec, "containers"), ctr);
	cJSON_AddStringToObject(ctr, "name", CONTAINER);
	cJSON_AddStringToObject(ctr, "image", image);
	cJSON_AddStringToObject(ctr, "imagePullPolicy", "IfNotPresent");
	/* appended to the image's entrypoint (kpar-worker worker --buckets-dir ...) */
	args = cJSON_AddArrayToObject(ctr, "args");
	/* each test's whole output comes back in the log, before the record */
	cJSON_AddItemToArray(args, cJSON_CreateString("--send-logs"));
	cJSON_AddItemToArray(args, cJSON_CreateString("--plan"));
	cJSON_AddItemToArray(args, cJSON_CreateString(p->digest));
	cJSON_AddItemToArray(args, cJSON_CreateString("--name"));
	/* the node is the worker the summary's busy times are about */
	cJSON_AddItemToArray(args, cJSON_CreateString("$(KPAR_NODE_NAME)"));
	env = cJSON_AddArrayToObject(ctr, "env");
	{
		cJSON *e = cJSON_CreateObject(), *from, *ref;
		cJSON_AddStringToObject(e, "name", "KPAR_NODE_NAME");
		from = cJSON_AddObjectToObject(e, "valueFrom");
		ref = cJSON_AddObjectToObject(from, "fieldRef");
		cJSON_AddStringToObject(ref, "fieldPath", "spec.nodeName");
		cJSON_AddItemToArray(env, e);
	}
	for (i = 0; i < n; i++) {
		kpar_buf_printf(&list, "%s%d", i ? "," : "", buckets[i]);
		if (buckets[i] != (int)i + 1)
			identity = 0;
	}
	if (!identity)
		put_env(env, "KPAR_BUCKET_LIST", list.data);
	put_env(env, "KPAR_RUN_MODE", c->run_mode);
	put_env(env, "KPAR_TEST_PROTOCOL", c->test_protocol);
	if (*c->run_cmd)
		put_env(env, "KPAR_RUN_CMD", c->run_cmd);
	{
		char num[64];
		snprintf(num, sizeof num, "%ld", c->retries);
		put_env(env, "KPAR_RETRIES", num);
		put_env(env, "KPAR_RETRY_TIMEOUTS", c->retry_timeouts ? "1" : "0");
		put_env(env, "KPAR_HARD_ERRORS", c->hard_errors ? "1" : "0");
		if (*c->xfail_tests)
			put_env(env, "KPAR_XFAIL_TESTS", c->xfail_tests);
		snprintf(num, sizeof num, "%g", c->test_timeout);
		put_env(env, "KPAR_TEST_TIMEOUT", num);
	}
	/* the tests' own settings travel with them, as the local backend's
	 * workers inherit them; one the image sets (KPAR_IMAGE_ENV: a path
	 * inside the image) keeps the image's value */
	names = kpar_xstrdup(c->test_env);
	save = NULL;
	for (word = strtok_r(names, " \t\n", &save); word; word = strtok_r(NULL, " \t\n", &save)) {
		const char *v = getenv(word);
		if (v && !image_sets(c->image_env, word))
			put_env(env, word, v);
	}
	free(names);
	res = cJSON_AddObjectToObject(ctr, "resources");
	if ((rc = put_pairs(cJSON_AddObjectToObject(res, "requests"), "KPAR_K8S_REQUESTS", c->k8s_requests)) < 0 ||
	    (rc = put_pairs(cJSON_AddObjectToObject(res, "limits"), "KPAR_K8S_LIMITS", c->k8s_limits)) < 0)
		goto done;
	*out = cJSON_PrintUnformatted(job);
done:
	kpar_buf_free(&list);
	cJSON_Delete(job);
	return rc;
}

int kpar_k8s_index_ranges(const char *s, void (*fn)(void *ud, long idx), void *ud)
{
	const char *p = s;

	while (p && *p) {
		char *end;
		long a, b;
		errno = 0;
		a = strtol(p, &end, 10);
		if (errno || end == p || a < 0)
			return kpar_error_set(KPAR_EINVAL, "index list '%s' is malformed", s);
		b = a;
		if (*end == '-') {
			p = end + 1;
			b = strtol(p, &end, 10);
			if (errno || end == p || b < a)
				return kpar_error_set(KPAR_EINVAL, "index list '%s' is malformed", s);
		}
		if (*end && *end != ',')
			return kpar_error_set(KPAR_EINVAL, "index list '%s' is malformed", s);
		for (; a <= b; a++)
			fn(ud, a);
		p = *end ? end + 1 : end;
	}
	return 0;
}

/* ---- the coordinator ---- */

struct kjob {
	char *name;
	int *buckets;         /* index i runs buckets[i] */
	size_t n;
	int gone;             /* deleted (404): its buckets need another Job */
	int finished;         /* Complete or Failed */
	double created;
};

struct podstate {
	char *name;
	int handled;          /* its terminal phase was dealt with */
	int running;
	char *reason;         /* last waiting/scheduling problem reported */
};

struct k8s {
	struct kpar_dispatch *d;
	const struct kpar_conf *c;
	struct kpar_k8s_config cfg;
	struct kpar_k8s_client *cl;
	char *ns, *token, *image, *selector_q;
	char **bucket_image;  /* KPAR_IMAGE_PER_BUCKET: bucket -> its own image; else NULL */
	struct kjob *jobs;
	size_t njobs;
	int *owner;           /* bucket -> index into jobs, -1 = none */
	struct podstate *pods;
	size_t npods, podcap;
	char *rv;
	double next_job_check, last_activity, stall_since;
	char *problem;        /* the latest reason nothing progresses */
	double api_down_since; /* when the API server stopped answering; 0 = it answers */
	int stop;             /* why a tick ended the watch: 1 interrupt, 2 stall, 3 done, 4 error */
	int fatal_rc;
	int seq;              /* Jobs created by this run so far */
	int requesting;       /* a request of ours is in flight: tick must not start another */
	int orphans;          /* buckets wait for a Job: start one at the next tick, so the
				 retries of a moment share a Job */
	unsigned long stream_events; /* events of the current watch stream */
	/* what the summary reports */
	unsigned long disrupted, oomkilled, pod_failures, pull_errors, unschedulable;
	struct kpar_buf events;
	/* seconds from each collected pod's creation to its container's start
	 * (scheduling, image pull, container start): the per-bucket cost the
	 * next plan weighs bucket sizes against (plan.c) */
	double *start_costs;
	size_t nstart_costs;
};

/* The client ticks while a request waits, and the tick may read the Jobs:
 * these mark our requests so a tick inside one never starts another on the
 * same connection. */
static int req(struct k8s *k, const char *method, const char *path, const char *body,
	       struct kpar_k8s_response *resp)
{
	int rc;

	k->requesting++;
	rc = kpar_k8s_request(k->cl, method, path, NULL, body, body ? strlen(body) : 0, resp);
	k->requesting--;
	return rc;
}

static int req_json(struct k8s *k, const char *path, cJSON **out, long *status)
{
	int rc;

	k->requesting++;
	rc = kpar_k8s_request_json(k->cl, "GET", path, NULL, out, status);
	k->requesting--;
	return rc;
}

static volatile sig_atomic_t interrupted;

static void on_signal(int sig)
{
	interrupted = sig;
}

static double now_mono(void)
{
	return kpar_progress_now();
}

static const char *jstr(const cJSON *o, const char *key)
{
	const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, key);
	return cJSON_IsString(v) ? v->valuestring : NULL;
}

static const cJSON *jobj(const cJSON *o, const char *key)
{
	return cJSON_GetObjectItemCaseSensitive(o, key);
}

static struct podstate *pod_find(struct k8s *k, const char *name, int create)
{
	size_t i;

	for (i = 0; i < k->npods; i++)
		if (!strcmp(k->pods[i].name, name))
			return &k->pods[i];
	if (!create)
		return NULL;
	if (k->npods == k->podcap) {
		k->podcap = k->podcap ? 2 * k->podcap : 64;
		k->pods = kpar_xrealloc(k->pods, k->podcap * sizeof *k->pods);
	}
	memset(&k->pods[k->npods], 0, sizeof k->pods[0]);
	k->pods[k->npods].name = kpar_xstrdup(name);
	return &k->pods[k->npods++];
}

static struct kjob *job_find(struct k8s *k, const char *name)
{
	size_t i;

	for (i = 0; name && i < k->njobs; i++)
		if (!strcmp(k->jobs[i].name, name))
			return &k->jobs[i];
	return NULL;
}

static void note_event(struct k8s *k, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void note_event(struct k8s *k, const char *fmt, ...)
{
	va_list ap;
	struct kpar_buf line = KPAR_BUF_INIT;

	va_start(ap, fmt);
	kpar_buf_vprintf(&line, fmt, ap);
	va_end(ap);
	kpar_progress_line(k->d->prog, "kpar: %s", line.data);
	/* the summary keeps the first few; the counts say the rest */
	if (k->events.len < 4000)
		kpar_buf_printf(&k->events, "  %s\n", line.data);
	kpar_buf_free(&line);
}

/* Jobs of the run, as run_meta "k8s.jobs": {"name": [buckets...], ...}. */
static int save_jobs(struct k8s *k)
{
	cJSON *o = cJSON_CreateObject();
	char *text;
	size_t i, j;
	int rc;

	for (i = 0; i < k->njobs; i++) {
		cJSON *a = cJSON_AddArrayToObject(o, k->jobs[i].name);
		for (j = 0; j < k->jobs[i].n; j++)
			cJSON_AddItemToArray(a, cJSON_CreateNumber(k->jobs[i].buckets[j]));
	}
	text = cJSON_PrintUnformatted(o);
	rc = kpar_state_run_meta_set(k->d->st, k->d->run, "k8s.jobs", text);
	cJSON_free(text);
	cJSON_Delete(o);
	return rc;
}

static void add_job(struct k8s *k, const char *name, const int *buckets, size_t n)
{
	struct kjob *j;
	size_t i;

	k->jobs = kpar_xrealloc(k->jobs, (k->njobs + 1) * sizeof *k->jobs);
	j = &k->jobs[k->njobs];
	memset(j, 0, sizeof *j);
	j->name = kpar_xstrdup(name);
	j->buckets = kpar_xcalloc(n ? n : 1, sizeof *j->buckets);
	memcpy(j->buckets, buckets, n * sizeof *buckets);
	j->n = n;
	j->created = now_mono();
	for (i = 0; i < n; i++)
		if (buckets[i] >= 1 && (size_t)buckets[i] <= k->d->p->nbuckets)
			k->owner[buckets[i]] = (int)k->njobs;
	k->njobs++;
}

static int load_jobs(struct k8s *k)
{
	char *text = NULL;
	cJSON *o, *it;
	int rc = kpar_state_run_meta_get(k->d->st, k->d->run, "k8s.jobs", &text);

	if (rc == KPAR_ENOTFOUND) {
		kpar_error_clear();
		return 0;
	}
	if (rc < 0)
		return rc;
	o = cJSON_Parse(text);
	free(text);
	if (!cJSON_IsObject(o)) {
		cJSON_Delete(o);
		return kpar_error_set(KPAR_EDB, "run %lld: the recorded Jobs are unreadable", k->d->run);
	}
	cJSON_ArrayForEach(it, o) {
		size_t n = (size_t)cJSON_GetArraySize(it), i = 0;
		int *b = kpar_xcalloc(n ? n : 1, sizeof *b);
		cJSON *x;
		cJSON_ArrayForEach(x, it)
			b[i++] = cJSON_IsNumber(x) ? x->valueint : 0;
		add_job(k, it->string, b, n);
		free(b);
		{
			/* names end in -<seq>: a new Job must not reuse one */
			const char *dash = strrchr(it->string, '-');
			int seq = dash ? atoi(dash + 1) : 0;
			if (seq > k->seq)
				k->seq = seq;
		}
	}
	if (k->seq < (int)k->njobs)
		k->seq = (int)k->njobs;
	cJSON_Delete(o);
	return 0;
}

/* Jobs still running some bucket. */
static long live_jobs(const struct k8s *k)
{
	size_t i, j;
	long n = 0;

	for (i = 0; i < k->njobs; i++) {
		if (k->jobs[i].gone || k->jobs[i].finished)
			continue;
		for (j = 0; j < k->jobs[i].n; j++)
			if (!k->d->done[k->jobs[i].buckets[j]] && k->owner[k->jobs[i].buckets[j]] == (int)i) {
				n++;
				break;
			}
	}
	return n;
}

static int create_job(struct k8s *k, const int *list, size_t n, const char *image)
{
	char *name, *json = NULL, *path = NULL;
	int rc;

	k->seq++;
	name = kpar_xasprintf("kpar-%s-%d", k->token, k->seq);
	if ((rc = kpar_k8s_job_json(k->c, k->d->p, k->ns, name, k->token, image, list, n, &json)) < 0)
		goto done;
	path = kpar_xasprintf("/apis/batch/v1/namespaces/%s/jobs", k->ns);
	/* recorded first: a coordinator killed right after the POST must
	 * find the Job again */
	add_job(k, name, list, n);
	if ((rc = save_jobs(k)) < 0)
		goto done;
	rc = req(k, "POST", path, json, NULL);
	if (rc < 0) {
		kpar_error_prefix(rc, "cannot create Job %s in namespace %s", name, k->ns);
		k->jobs[k->njobs - 1].gone = 1;
		goto done;
	}
	if (!k->bucket_image)
		kpar_progress_line(k->d->prog, "kpar: started Job %s/%s: %zu buckets, parallelism %ld",
				   k->ns, name, n, k->c->workers < (long)n ? k->c->workers : (long)n);
	k->last_activity = now_mono();
done:
	free(name);
	free(json);
	free(path);
	return rc;
}

/* Starts the buckets nobody runs (not done, no live owner), longest
 * estimate first so the controller's lowest-index-first order is
 * longest-processing-time-first: as one Job, or with an image per bucket
 * (one pod template each) as single-pod Jobs, at most KPAR_WORKERS at once. */
static int start_orphans(struct k8s *k)
{
	const struct kpar_plan *p = k->d->p;
	int *list = kpar_xcalloc(p->nbuckets + 1, sizeof *list);
	size_t n = 0, b, i, j;
	int rc = 0;

	for (b = 1; b <= p->nbuckets; b++) {
		if (k->d->done[b])
			continue;
		if (k->owner[b] >= 0 && !k->jobs[k->owner[b]].gone && !k->jobs[k->owner[b]].finished)
			continue;
		list[n++] = (int)b;
	}
	for (i = 1; i < n; i++)
		for (j = i; j > 0 && p->buckets[list[j - 1] - 1].estimate < p->buckets[list[j] - 1].estimate; j--) {
			int t = list[j];
			list[j] = list[j - 1];
			list[j - 1] = t;
		}
	if (n && !k->bucket_image) {
		rc = create_job(k, list, n, k->image);
	} else if (n) {
		long room = k->c->workers - live_jobs(k);
		for (i = 0; i < n && room > 0 && rc == 0; i++, room--)
			rc = create_job(k, &list[i], 1, k->bucket_image[list[i]]);
	}
	free(list);
	return rc;
}

/* image/bucket-refs: "N host/repo@sha256:..." per bucket. */
static int read_bucket_refs(struct k8s *k)
{
	char *path = kpar_conf_path(k->c, "image/bucket-refs"), *text = NULL, *line, *save = NULL;
	size_t b, nb = k->d->p->nbuckets;
	int rc = kpar_fs_read_all(path, &text, NULL);

	if (rc < 0) {
		kpar_error_clear();
		rc = kpar_error_set(KPAR_ENOTFOUND, "KPAR_IMAGE_PER_BUCKET=1 but '%s' is missing: "
				    "push the per-bucket images first (make k8s-image)", path);
		goto done;
	}
	k->bucket_image = kpar_xcalloc(nb + 1, sizeof *k->bucket_image);
	for (line = strtok_r(text, "\n", &save); line; line = strtok_r(NULL, "\n", &save)) {
		char *sp = strchr(line, ' ');
		long n = strtol(line, NULL, 10);
		if (sp && n >= 1 && (size_t)n <= nb && strchr(sp + 1, '@')) {
			free(k->bucket_image[n]);
			k->bucket_image[n] = kpar_xstrdup(sp + 1);
		}
	}
	for (b = 1; b <= nb; b++)
		if (!k->bucket_image[b]) {
			rc = kpar_error_set(KPAR_EINVAL, "'%s' has no image for bucket %zu", path, b);
			break;
		}
done:
	free(text);
	free(path);
	return rc;
}

static const char *disruption_reason(const cJSON *pod)
{
	const cJSON *c;

	cJSON_ArrayForEach(c, jobj(jobj(pod, "status"), "conditions")) {
		const char *t = jstr(c, "type"), *s = jstr(c, "status");
		if (t && s && !strcmp(t, "DisruptionTarget") && !strcmp(s, "True"))
			return jstr(c, "reason") ? jstr(c, "reason") : "DisruptionTarget";
	}
	return NULL;
}

/* The worker container's state: waiting reason, or terminated reason and
 * exit code. */
static const cJSON *worker_status(const cJSON *pod)
{
	const cJSON *cs;

	cJSON_ArrayForEach(cs, jobj(jobj(pod, "status"), "containerStatuses")) {
		const char *n = jstr(cs, "name");
		if (n && !strcmp(n, CONTAINER))
			return cs;
	}
	return NULL;
}

static int fetch_log(struct k8s *k, const char *pod, struct kpar_buf *out, char *why, size_t whylen)
{
	char *path = kpar_xasprintf("/api/v1/namespaces/%s/pods/%s/log?container=%s&limitBytes=%u",
				    k->ns, pod, CONTAINER, (unsigned)LOG_LIMIT);
	struct kpar_k8s_response r;
	int rc;

	memset(&r, 0, sizeof r);
	{
		double budget = kpar_k8s_client_retry_budget(k->cl, LOG_RETRY_BUDGET);
		rc = req(k, "GET", path, NULL, &r);
		kpar_k8s_client_retry_budget(k->cl, budget);
	}
	if (rc < 0) {
		if (rc == KPAR_EINTR) {
			free(path);
			kpar_k8s_response_free(&r);
			return rc;
		}
		snprintf(why, whylen, "log of pod %s could not be fetched: %.200s", pod, kpar_error_last());
		kpar_error_clear();
		rc = 1;
	} else {
		kpar_buf_add(out, r.body.data ? r.body.data : "", r.body.len);
	}
	kpar_k8s_response_free(&r);
	free(path);
	return rc;
}

/* An RFC 3339 time as the API server writes it (UTC, whole seconds);
 * -1 when absent or malformed. */
static double api_time(const char *s)
{
	struct tm tm;
	const char *end;

	if (!s)
		return -1;
	memset(&tm, 0, sizeof tm);
	end = strptime(s, "%Y-%m-%dT%H:%M:%S", &tm);
	if (!end || (*end != 'Z' && *end != '.'))
		return -1;
	return (double)timegm(&tm);
}

/* A Succeeded pod: its log is the bucket's record. */
static int collect_pod(struct k8s *k, const char *pod, int bucket, double took)
{
	struct kpar_buf log = KPAR_BUF_INIT;
	char why[320] = "";
	int rc = fetch_log(k, pod, &log, why, sizeof why);
	char *keep;

	if (rc < 0)
		goto done;
	if (rc == 0) {
		/* kept like the local backend's records, so a coordinator killed
		 * before the commit adopts it on resume */
		keep = kpar_xasprintf("%s/results/test-group-%d.rec", k->c->state_dir, bucket);
		if (kpar_fs_write_atomic(keep, log.data ? log.data : "", log.len) < 0)
			kpar_error_clear();
		free(keep);
	}
	rc = kpar_dispatch_record(k->d, bucket, log.data, log.len, *why ? why : NULL, pod, took);
	if (rc == KPAR_BUCKET_RETRY) {
		k->owner[bucket] = -1;  /* its index is complete: another Job runs it */
		k->orphans = 1;
		rc = 0;
	} else if (rc == KPAR_BUCKET_COLLECTED || rc == KPAR_BUCKET_LOST) {
		k->last_activity = now_mono();
		/* with an image per bucket, a finished bucket frees a slot */
		k->orphans |= k->bucket_image != NULL;
		rc = 0;
	}
done:
	kpar_buf_free(&log);
	return rc;
}

static int on_pod(struct k8s *k, const char *type, const cJSON *pod)
{
	const cJSON *meta = jobj(pod, "metadata"), *labels = jobj(meta, "labels"), *cs;
	const char *name = jstr(meta, "name"), *phase = jstr(jobj(pod, "status"), "phase");
	const char *jobname = jstr(labels, LABEL_JOB), *idxs = jstr(labels, LABEL_INDEX);
	struct kjob *j = job_find(k, jobname ? jobname : jstr(labels, "job-name"));
	struct podstate *ps;
	const char *why;
	long idx;
	int bucket;

	if (!name || !phase || !j || !idxs)
		return 0;
	idx = strtol(idxs, NULL, 10);
	if (idx < 0 || (size_t)idx >= j->n)
		return 0;
	bucket = j->buckets[idx];
	ps = pod_find(k, name, 1);
	cs = worker_status(pod);
	if (!strcmp(type, "DELETED") && strcmp(phase, "Succeeded") && strcmp(phase, "Failed")) {
		/* gone before it finished (force-deleted with its node): the Job
		 * controller replaces it */
		if (ps->running) {
			ps->running = 0;
			k->d->prog->running--;
		}
		return 0;
	}
	if (!strcmp(phase, "Running") || jobj(jobj(cs, "state"), "running")) {
		if (!ps->running && !ps->handled) {
			ps->running = 1;
			k->d->prog->running++;
			k->last_activity = now_mono();
			kpar_state_bucket_mark(k->d->st, k->d->run, bucket, "running", name, k->d->attempts[bucket]);
		}
	}
	if (ps->handled)
		return 0;
	if (!strcmp(phase, "Succeeded") || !strcmp(phase, "Failed")) {
		ps->handled = 1;
		if (ps->running) {
			ps->running = 0;
			k->d->prog->running--;
		}
		if (!strcmp(phase, "Succeeded")) {
			double created = api_time(jstr(meta, "creationTimestamp"));
			double started = api_time(jstr(jobj(jobj(cs, "state"), "terminated"), "startedAt"));
			if (created >= 0 && started >= created) {
				k->start_costs = kpar_xrealloc(k->start_costs,
							       (k->nstart_costs + 1) * sizeof *k->start_costs);
				k->start_costs[k->nstart_costs++] = started - created;
			}
			return collect_pod(k, name, bucket, 0);  /* 0: the record's own times */
		}
		k->next_job_check = now_mono() + JOB_CHECK_SOON;
		if ((why = disruption_reason(pod))) {
			k->disrupted++;
			k->d->stats.disrupted++;
			note_event(k, "bucket %d: pod %s disrupted (%s); the Job replaces it", bucket, name, why);
		} else {
			const cJSON *term = jobj(jobj(cs, "state"), "terminated");
			const char *reason = jstr(term, "reason") ? jstr(term, "reason") : jstr(jobj(pod, "status"), "reason");
			const cJSON *code = jobj(term, "exitCode");
			k->pod_failures++;
			if (reason && !strcmp(reason, "OOMKilled"))
				k->oomkilled++;
			k->d->attempts[bucket]++;
			note_event(k, "bucket %d: pod %s failed (%s, exit %d)%s", bucket, name,
				   reason ? reason : "no reason given", cJSON_IsNumber(code) ? code->valueint : -1,
				   k->d->attempts[bucket] <= k->c->worker_retries + 1 ? "; the Job retries it" : "");
		}
		return 0;
	}
	if (!strcmp(type, "DELETED"))
		return 0;
	/* Pending: say why once per reason, and remember it for the stall
	 * error */
	why = jstr(jobj(jobj(cs, "state"), "waiting"), "reason");
	if (why && (!strcmp(why, "ContainerCreating") || !strcmp(why, "PodInitializing")))
		why = NULL;
	if (!why) {
		const cJSON *c;
		cJSON_ArrayForEach(c, jobj(jobj(pod, "status"), "conditions")) {
			const char *t = jstr(c, "type"), *s = jstr(c, "status");
			if (t && s && !strcmp(t, "PodScheduled") && !strcmp(s, "False") && jstr(c, "reason"))
				why = jstr(c, "reason");
		}
	}
	if (why && (!ps->reason || strcmp(ps->reason, why))) {
		const char *msg = jstr(jobj(jobj(cs, "state"), "waiting"), "message");
		const cJSON *c;
		if (!msg)
			cJSON_ArrayForEach(c, jobj(jobj(pod, "status"), "conditions"))
				if (jstr(c, "type") && !strcmp(jstr(c, "type"), "PodScheduled"))
					msg = jstr(c, "message");
		free(ps->reason);
		ps->reason = kpar_xstrdup(why);
		if (!strcmp(why, "Unschedulable"))
			k->unschedulable++;
		else if (strstr(why, "Image") || strstr(why, "Pull"))
			k->pull_errors++;
		note_event(k, "bucket %d: pod %s: %s%s%.300s", bucket, name, why, msg ? ": " : "", msg ? msg : "");
		free(k->problem);
		k->problem = kpar_xasprintf("pod %s: %s%s%.300s", name, why, msg ? ": " : "", msg ? msg : "");
		/* an image that can never be pulled will not get better */
		if (!strcmp(why, "InvalidImageName") || !strcmp(why, "ErrImageNeverPull")) {
			k->fatal_rc = kpar_error_set(KPAR_EINVAL, "%s", k->problem);
			return 4;
		}
	}
	return 0;
}

struct idx_ctx {
	struct k8s *k;
	struct kjob *j;
	int failed;
	int rc;
};

static void on_failed_index(void *ud, long idx)
{
	struct idx_ctx *x = ud;
	int bucket;
	char why[128];

	if (x->rc < 0 || idx < 0 || (size_t)idx >= x->j->n)
		return;
	bucket = x->j->buckets[idx];
	/* a bucket another Job runs now is that Job's business */
	if (x->k->d->done[bucket] || x->k->owner[bucket] != (int)(x->j - x->k->jobs))
		return;
	snprintf(why, sizeof why, "Job %s gave up on its index %ld", x->j->name, idx);
	x->rc = kpar_dispatch_lose(x->k->d, bucket, why,
				   x->k->problem ? x->k->problem : "see `make k8s-status` and the pods' events");
}

/* A completed index whose bucket is not collected: its pod was missed (it
 * finished while no coordinator watched, and may be gone). */
static void on_completed_index(void *ud, long idx)
{
	struct idx_ctx *x = ud;
	struct k8s *k = x->k;
	int bucket;
	char *path;
	cJSON *list = NULL, *it;
	struct kpar_buf q = KPAR_BUF_INIT;
	int found = 0;

	if (x->rc < 0 || idx < 0 || (size_t)idx >= x->j->n)
		return;
	bucket = x->j->buckets[idx];
	if (k->d->done[bucket] || k->owner[bucket] != (int)(x->j - k->jobs))
		return;
	kpar_buf_printf(&q, "%s=%s,%s=%ld", LABEL_JOB, x->j->name, LABEL_INDEX, idx);
	path = kpar_xasprintf("/api/v1/namespaces/%s/pods?labelSelector=", k->ns);
	{
		struct kpar_buf p = KPAR_BUF_INIT;
		kpar_buf_puts(&p, path);
		kpar_k8s_query_escape(&p, q.data);
		free(path);
		path = kpar_buf_detach(&p, NULL);
	}
	if ((x->rc = req_json(k, path, &list, NULL)) == 0) {
		cJSON_ArrayForEach(it, jobj(list, "items")) {
			const char *ph = jstr(jobj(it, "status"), "phase");
			struct podstate *ps = pod_find(k, jstr(jobj(it, "metadata"), "name") ?
						       jstr(jobj(it, "metadata"), "name") : "", 0);
			if (ph && !strcmp(ph, "Succeeded")) {
				found = 1;
				if (!ps || !ps->handled)
					x->rc = on_pod(k, "ADDED", it);
				break;
			}
		}
	}
	cJSON_Delete(list);
	free(path);
	kpar_buf_free(&q);
	if (x->rc == 0 && !found && !k->d->done[bucket]) {
		kpar_progress_line(k->d->prog, "kpar: bucket %d: its pod finished but is gone with its log; "
				   "running it again", bucket);
		k->owner[bucket] = -1;
	}
}

/* Reads every live Job's status: the source of truth for indexes that
 * failed for good, finished Jobs and Jobs deleted under us. */
static int check_jobs(struct k8s *k)
{
	size_t i;
	int rc = 0, orphans = 0;

	for (i = 0; i < k->njobs && rc == 0; i++) {
		struct kjob *j = &k->jobs[i];
		char *path;
		cJSON *job = NULL, *c;
		long status = 0;
		struct idx_ctx x = { k, j, 0, 0 };
		const char *s;

		size_t b, left = 0;

		if (j->gone || j->finished)
			continue;
		for (b = 0; b < j->n; b++)
			left += !k->d->done[j->buckets[b]];
		if (left == 0) {
			j->finished = 1;  /* nothing more to learn from it */
			continue;
		}
		path = kpar_xasprintf("/apis/batch/v1/namespaces/%s/jobs/%s", k->ns, j->name);
		rc = req_json(k, path, &job, &status);
		free(path);
		if (rc < 0 && status == 404) {
			char *cancelled = NULL;
			kpar_error_clear();
			rc = 0;
			j->gone = 1;
			if (kpar_state_run_meta_get(k->d->st, k->d->run, "k8s.cancelled", &cancelled) == 0) {
				free(cancelled);
				k->fatal_rc = kpar_error_set(KPAR_EINTR, "run %lld was cancelled (make k8s-cancel)",
							     k->d->run);
				return 4;
			}
			kpar_error_clear();
			kpar_progress_line(k->d->prog, "kpar: Job %s is gone; its unfinished buckets go to a new Job",
					   j->name);
			orphans = 1;
			continue;
		}
		if (rc < 0)
			break;
		if ((s = jstr(jobj(job, "status"), "failedIndexes")) && (rc = kpar_k8s_index_ranges(s, on_failed_index, &x)) == 0)
			rc = x.rc;
		if (rc == 0 && (s = jstr(jobj(job, "status"), "completedIndexes")) &&
		    (rc = kpar_k8s_index_ranges(s, on_completed_index, &x)) == 0)
			rc = x.rc;
		cJSON_ArrayForEach(c, jobj(jobj(job, "status"), "conditions")) {
			const char *t = jstr(c, "type"), *st = jstr(c, "status");
			if (t && st && !strcmp(st, "True") && (!strcmp(t, "Complete") || !strcmp(t, "Failed")))
				j->finished = 1;
		}
		cJSON_Delete(job);
	}
	for (i = 1; rc == 0 && i <= k->d->p->nbuckets; i++)
		if (!k->d->done[i] && (k->owner[i] < 0 || k->jobs[k->owner[i]].gone || k->jobs[k->owner[i]].finished))
			orphans = 1;
	if (rc == 0 && orphans)
		rc = start_orphans(k);
	return rc;
}

/* An API request that failed for a reason that may pass (no answer, 5xx,
 * 429 past the client's retry budget; an overloaded or restarting API
 * server) does not end the run: the Job runs on without its coordinator,
 * so the coordinator says so once and tries again later, and the stall
 * timeout (KPAR_K8S_STALL_TIMEOUT) decides when waiting is pointless.
 * Returns 1 when rc was such a failure (the error is cleared). */
static int api_trouble(struct k8s *k, int rc)
{
	double t = now_mono();

	if (rc != KPAR_ENET)
		return 0;
	if (!k->api_down_since) {
		k->api_down_since = t;
		kpar_progress_line(k->d->prog, "kpar: the API server does not answer (%s); trying again "
				   "for up to KPAR_K8S_STALL_TIMEOUT (%.0f s)", kpar_error_last(),
				   k->c->k8s_stall_timeout);
	}
	if (t - k->api_down_since > k->c->k8s_stall_timeout) {
		kpar_error_set(KPAR_ENET, "the API server has not answered for %.0f s (KPAR_K8S_STALL_TIMEOUT): "
			       "%.300s; the Job is left as it is: `make k8s-test RESUME=1` reattaches",
			       t - k->api_down_since, kpar_error_last());
		return 0;
	}
	free(k->problem);
	k->problem = kpar_xasprintf("the API server does not answer: %.300s", kpar_error_last());
	kpar_error_clear();
	return 1;
}

/* Runs about once a second while the watch waits. */
static int tick(void *ud)
{
	struct k8s *k = ud;
	double t = now_mono();

	kpar_progress_tick(k->d->prog);
	if (interrupted) {
		k->stop = 1;
		return 1;
	}
	if (k->requesting)
		return 0;
	if (kpar_dispatch_pending(k->d) == 0) {
		k->stop = 3;
		return 1;
	}
	if (k->orphans) {
		int rc;
		k->orphans = 0;
		/* a Job whose creation failed is recorded: the next check
		 * finds it missing (404) and its buckets get another */
		if ((rc = start_orphans(k)) < 0 && !api_trouble(k, rc)) {
			k->fatal_rc = rc;
			k->stop = 4;
			return 1;
		}
	}
	if (t >= k->next_job_check) {
		int rc;
		k->next_job_check = t + JOB_CHECK_IDLE;
		if ((rc = check_jobs(k)) < 0 && api_trouble(k, rc))
			rc = 0;
		else if (rc == 0)
			k->api_down_since = 0;
		if (rc != 0) {
			if (rc < 0)
				k->fatal_rc = rc;
			k->stop = 4;
			return 1;
		}
		if (kpar_dispatch_pending(k->d) == 0) {
			k->stop = 3;
			return 1;
		}
	}
	if (k->d->prog->running > 0)
		k->last_activity = t;
	if (t - k->last_activity > k->c->k8s_stall_timeout) {
		k->stop = 2;
		return 1;
	}
	return 0;
}

static int on_event(void *ud, const char *type, const cJSON *obj)
{
	struct k8s *k = ud;
	const char *rv = jstr(jobj(obj, "metadata"), "resourceVersion");
	int rc = 0;

	if (!strcmp(type, "ERROR")) {
		const cJSON *code = jobj(obj, "code");
		/* 410 Gone: the history the watch would resume from is compacted */
		return cJSON_IsNumber(code) && code->valueint == 410 ? 410 : 5;
	}
	k->stream_events++;
	k->api_down_since = 0;
	if (rv) {
		free(k->rv);
		k->rv = kpar_xstrdup(rv);
	}
	if (!strcmp(type, "BOOKMARK"))
		return 0;
	rc = on_pod(k, type, obj);
	if (rc < 0) {
		k->fatal_rc = rc;
		return 4;
	}
	if (rc)
		return rc;
	return kpar_dispatch_pending(k->d) == 0 ? 3 : 0;
}

static int relist(struct k8s *k)
{
	char *path = kpar_xasprintf("/api/v1/namespaces/%s/pods?labelSelector=%s", k->ns, k->selector_q);
	cJSON *list = NULL, *it;
	int rc = req_json(k, path, &list, NULL);
	const char *rv;

	free(path);
	if (rc < 0)
		return rc;
	rv = jstr(jobj(list, "metadata"), "resourceVersion");
	free(k->rv);
	k->rv = kpar_xstrdup(rv ? rv : "");
	cJSON_ArrayForEach(it, jobj(list, "items")) {
		if ((rc = on_pod(k, "ADDED", it)) != 0)
			break;
	}
	cJSON_Delete(list);
	if (rc == 4)
		return k->fatal_rc;
	return rc < 0 ? rc : 0;
}

static int connect_cluster(const struct kpar_conf *c, struct kpar_k8s_config *cfg,
			   struct kpar_k8s_client **cl, char **ns, int (*tickfn)(void *), void *ud)
{
	struct kpar_k8s_client_opts o;
	int rc;

	if ((rc = kpar_k8s_config_load(cfg, *c->kubeconfig ? c->kubeconfig : getenv("KUBECONFIG"),
				       c->context)) < 0)
		return rc;
	memset(&o, 0, sizeof o);
	o.debug = c->k8s_debug;
	o.tick = tickfn;
	o.tick_ud = ud;
	kpar_curl_set_library(c->libcurl);
	if ((rc = kpar_k8s_client_new(cl, cfg, &o)) < 0)
		return rc;
	*ns = kpar_xstrdup(*c->namespace ? c->namespace : cfg->namespace && *cfg->namespace ? cfg->namespace
										      : "default");
	return 0;
}

static int read_image_ref(const struct kpar_conf *c, char **out)
{
	char *path = kpar_conf_path(c, "image/ref"), *text = NULL, *nl;
	int rc = kpar_fs_read_all(path, &text, NULL);

	if (rc < 0) {
		kpar_error_clear();
		rc = kpar_error_set(KPAR_ENOTFOUND, "no pushed image ('%s' is missing): the k8s backend runs "
				    "the image `make k8s-image` pushes; set KPAR_REGISTRY and KPAR_IMAGE", path);
	} else if ((nl = strchr(text, '\n'))) {
		*nl = '\0';
	}
	if (rc == 0 && (!strchr(text, '@') || !*text)) {
		rc = kpar_error_set(KPAR_EINVAL, "'%s' does not name an image by digest", path);
	}
	free(path);
	if (rc < 0) {
		free(text);
		text = NULL;
	}
	*out = text;
	return rc;
}

static void random_token(char out[9])
{
	unsigned char raw[4];
	size_t i;

	if (getrandom(raw, sizeof raw, 0) != (ssize_t)sizeof raw) {
		unsigned long v = (unsigned long)time(NULL) ^ ((unsigned long)getpid() << 16);
		memcpy(raw, &v, sizeof raw);
	}
	for (i = 0; i < sizeof raw; i++)
		snprintf(out + 2 * i, 3, "%02x", raw[i]);
}

static void k8s_free(struct k8s *k)
{
	size_t i;

	for (i = 0; i < k->njobs; i++) {
		free(k->jobs[i].name);
		free(k->jobs[i].buckets);
	}
	for (i = 0; i < k->npods; i++) {
		free(k->pods[i].name);
		free(k->pods[i].reason);
	}
	if (k->bucket_image)
		for (i = 0; i <= k->d->p->nbuckets; i++)
			free(k->bucket_image[i]);
	free(k->bucket_image);
	free(k->jobs);
	free(k->pods);
	free(k->owner);
	free(k->ns);
	free(k->token);
	free(k->image);
	free(k->selector_q);
	free(k->rv);
	free(k->problem);
	kpar_buf_free(&k->events);
	free(k->start_costs);
	kpar_k8s_client_free(k->cl);
	kpar_k8s_config_free(&k->cfg);
}

static int meta_or(struct kpar_state *st, long long run, const char *key, const char *fallback, char **out)
{
	int rc = kpar_state_run_meta_get(st, run, key, out);

	if (rc == KPAR_ENOTFOUND) {
		kpar_error_clear();
		*out = fallback ? kpar_xstrdup(fallback) : NULL;
		return 0;
	}
	return rc;
}

static int cmp_double(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;

	return x < y ? -1 : x > y;
}

static void save_events(struct k8s *k)
{
	struct kpar_buf b = KPAR_BUF_INIT;
	char *old = NULL;

	if (meta_or(k->d->st, k->d->run, "backend.events", "", &old) < 0)
		kpar_error_clear();
	kpar_buf_puts(&b, old ? old : "");
	kpar_buf_add(&b, k->events.data ? k->events.data : "", k->events.len);
	if (k->disrupted || k->pod_failures || k->pull_errors || k->unschedulable)
		kpar_buf_printf(&b, "  this session: %lu pods disrupted (replaced, not counted as failures), "
				"%lu pods failed (%lu OOMKilled), %lu image pull problems, %lu unschedulable\n",
				k->disrupted, k->pod_failures, k->oomkilled, k->pull_errors, k->unschedulable);
	if (b.len && kpar_state_run_meta_set(k->d->st, k->d->run, "backend.events", b.data) < 0)
		kpar_error_clear();
	free(old);
	kpar_buf_free(&b);
	if (k->nstart_costs) {
		/* the median: one pod stuck on a slow node says little */
		char v[32];
		qsort(k->start_costs, k->nstart_costs, sizeof *k->start_costs, cmp_double);
		snprintf(v, sizeof v, "%.1f", k->start_costs[k->nstart_costs / 2]);
		if (kpar_state_run_meta_set(k->d->st, k->d->run, "k8s.start_cost", v) < 0)
			kpar_error_clear();
	}
}

static int k8s_run(struct kpar_dispatch *d)
{
	struct k8s k;
	struct sigaction sa, old_int, old_term, old_hup;
	char tok[9], *prev_image = NULL;
	struct kpar_buf q = KPAR_BUF_INIT, sel = KPAR_BUF_INIT;
	size_t b;
	int rc, stream_failures = 0;

	memset(&k, 0, sizeof k);
	k.d = d;
	k.c = d->c;
	k.owner = kpar_xcalloc(d->p->nbuckets + 1, sizeof *k.owner);
	for (b = 0; b <= d->p->nbuckets; b++)
		k.owner[b] = -1;
	if ((rc = read_image_ref(d->c, &k.image)) < 0)
		goto out;
	if (d->c->image_per_bucket && (rc = read_bucket_refs(&k)) < 0)
		goto out;
	{
		char *results = kpar_conf_path(d->c, "results");
		rc = kpar_fs_mkdir_p(results, 0755);
		free(results);
		if (rc < 0)
			goto out;
	}
	if ((rc = connect_cluster(d->c, &k.cfg, &k.cl, &k.ns, tick, &k)) < 0)
		goto out;

	/* The run's identity in the cluster; a resume must run what it
	 * started with. */
	if ((rc = meta_or(d->st, d->run, "k8s.image", NULL, &prev_image)) < 0)
		goto out;
	if (prev_image && strcmp(prev_image, k.image) != 0) {
		rc = kpar_error_set(KPAR_ECHANGED, "cannot resume run %lld: the image changed since it started "
				    "(%s, now %s); run `make k8s-test` without RESUME=1 to start a new run",
				    d->run, prev_image, k.image);
		goto out;
	}
	if ((rc = meta_or(d->st, d->run, "k8s.token", NULL, &k.token)) < 0)
		goto out;
	if (!k.token) {
		random_token(tok);
		k.token = kpar_xstrdup(tok);
		if ((rc = kpar_state_run_meta_set(d->st, d->run, "k8s.token", k.token)) < 0 ||
		    (rc = kpar_state_run_meta_set(d->st, d->run, "k8s.image", k.image)) < 0 ||
		    (rc = kpar_state_run_meta_set(d->st, d->run, "k8s.namespace", k.ns)) < 0)
			goto out;
	} else {
		char *ns = NULL;
		if ((rc = meta_or(d->st, d->run, "k8s.namespace", k.ns, &ns)) < 0)
			goto out;
		free(k.ns);
		k.ns = ns;
	}
	kpar_buf_printf(&sel, "%s=%s", LABEL_RUN, k.token);
	kpar_k8s_query_escape(&q, sel.data);
	k.selector_q = kpar_buf_detach(&q, NULL);
	if ((rc = load_jobs(&k)) < 0)
		goto out;

	memset(&sa, 0, sizeof sa);
	sa.sa_handler = on_signal;
	sigemptyset(&sa.sa_mask);
	interrupted = 0;
	sigaction(SIGINT, &sa, &old_int);
	sigaction(SIGTERM, &sa, &old_term);
	sigaction(SIGHUP, &sa, &old_hup);

	k.last_activity = now_mono();
	/* Jobs recorded by an earlier coordinator: which still exist, which
	 * finished, which buckets nobody runs any more; then one Job for those */
	if (k.njobs)
		kpar_progress_line(d->prog, "kpar: reattaching to run %lld in namespace %s (%zu Jobs)",
				   d->run, k.ns, k.njobs);
	if ((rc = relist(&k)) < 0)
		goto restore;
	if ((rc = check_jobs(&k)) != 0) {
		if (rc < 0)
			k.fatal_rc = rc;
		goto stopped;
	}
	k.next_job_check = now_mono() + JOB_CHECK_IDLE;

	while (kpar_dispatch_pending(d) > 0) {
		char *path;
		long status = 0;
		/* servers end watches after timeoutSeconds; spread them, as
		 * client-go does */
		int timeout = 240 + (int)(now_mono() * 1000) % 120;

		k.stop = 0;
		k.stream_events = 0;
		path = kpar_xasprintf("/api/v1/namespaces/%s/pods?watch=1&labelSelector=%s&resourceVersion=%s"
				      "&allowWatchBookmarks=true&timeoutSeconds=%d",
				      k.ns, k.selector_q, k.rv ? k.rv : "", timeout);
		rc = kpar_k8s_watch(k.cl, path, on_event, &k, &status);
		free(path);
		if (rc == 410 || (rc < 0 && status == 410)) {
			kpar_error_clear();
			kpar_progress_line(d->prog, "kpar: the pod watch expired (410); listing again");
			if ((rc = relist(&k)) < 0 && !api_trouble(&k, rc))
				goto restore;
			if (rc < 0 && tick(&k)) {
				rc = 0;
				goto stopped;
			}
			continue;
		}
		if (rc == 3)
			break;
		if (rc == 4 || (rc == KPAR_EINTR && k.stop)) {
			rc = 0;
			goto stopped;
		}
		if (rc == 5 || rc == KPAR_ENET) {
			/* a broken stream: resume from the last resourceVersion,
			 * with a pause that grows while it keeps breaking */
			double pause, until;
			/* a stream that delivered events before it broke was
			 * working: only streams that break at once back off */
			if (k.stream_events)
				stream_failures = 0;
			else if (rc == KPAR_ENET && !api_trouble(&k, rc))
				goto restore;
			pause = stream_failures < 5 ? 0.5 * (1 << stream_failures) : 16;
			until = now_mono() + pause;
			stream_failures++;
			kpar_error_clear();
			while (now_mono() < until && !interrupted)
				nanosleep(&(struct timespec){ 0, 100000000 }, NULL);
			if (tick(&k)) {
				rc = 0;
				goto stopped;
			}
			if (stream_failures > 30) {
				/* a stream that never holds: list again from scratch */
				stream_failures = 0;
				if ((rc = relist(&k)) < 0 && !api_trouble(&k, rc))
					goto restore;
			}
			continue;
		}
		if (rc < 0)
			goto restore;
		stream_failures = 0;
	}
	rc = 0;
	goto restore;
stopped:
	if (k.stop == 1 || interrupted) {
		size_t i;
		kpar_progress_line(d->prog, "kpar: interrupted; the Job keeps running in namespace %s.", k.ns);
		for (i = 0; i < k.njobs; i++)
			if (!k.jobs[i].gone && !k.jobs[i].finished)
				kpar_progress_line(d->prog, "kpar:   Job %s", k.jobs[i].name);
		kpar_progress_line(d->prog, "kpar: `make k8s-test RESUME=1` reattaches and collects; "
				   "`make k8s-cancel` deletes it");
		rc = kpar_error_set(KPAR_EINTR, "interrupted: %zu of %zu buckets collected; "
				    "`make k8s-test RESUME=1` continues the run", d->prog->done, d->prog->total);
	} else if (k.stop == 2) {
		rc = kpar_error_set(KPAR_ENET, "no progress for %.0f s (KPAR_K8S_STALL_TIMEOUT): %s; "
				    "the Job is left as it is: `make k8s-status` shows it, `make k8s-cancel` "
				    "deletes it, `make k8s-test RESUME=1` tries again",
				    d->c->k8s_stall_timeout, k.problem ? k.problem : "no pod of the run is running");
	} else if (k.stop == 3 || kpar_dispatch_pending(d) == 0) {
		rc = 0;
	} else {
		rc = k.fatal_rc < 0 ? k.fatal_rc : kpar_error_set(KPAR_EGENERIC, "the Kubernetes backend stopped");
	}
restore:
	sigaction(SIGINT, &old_int, NULL);
	sigaction(SIGTERM, &old_term, NULL);
	sigaction(SIGHUP, &old_hup, NULL);
	if (k.cl) {
		/* what the run cost the API server: the figure a cluster admin asks about */
		struct kpar_k8s_client_stats cs;
		kpar_k8s_client_stats(k.cl, &cs);
		kpar_progress_line(d->prog, "kpar: Kubernetes API: %lu requests (%lu retried) and %lu watches "
				   "for %zu buckets, %lu watch events", cs.requests, cs.retries, cs.watches,
				   d->p->nbuckets, cs.watch_events);
	}
out:
	if (d->st && k.token) {
		/* keep the run's error across the bookkeeping */
		char *msg = rc < 0 ? kpar_xstrdup(kpar_error_last()) : NULL;
		save_events(&k);
		if (msg)
			kpar_error_set(rc, "%s", msg);
		free(msg);
	}
	free(prev_image);
	kpar_buf_free(&q);
	kpar_buf_free(&sel);
	k8s_free(&k);
	return rc;
}

/* ---- k8s-cancel and k8s-status ---- */

static int open_run(const struct kpar_conf *c, struct kpar_state *st, long long run, struct k8s *k,
		    struct kpar_dispatch *d, struct kpar_plan *p)
{
	int rc;

	memset(k, 0, sizeof *k);
	memset(d, 0, sizeof *d);
	memset(p, 0, sizeof *p);
	d->c = c;
	d->st = st;
	d->run = run;
	d->p = p;
	k->d = d;
	k->c = c;
	if ((rc = meta_or(st, run, "k8s.token", NULL, &k->token)) < 0)
		return rc;
	if (!k->token)
		return kpar_error_set(KPAR_ENOTFOUND, "run %lld never started on Kubernetes", run);
	if ((rc = connect_cluster(c, &k->cfg, &k->cl, &k->ns, NULL, NULL)) < 0)
		return rc;
	free(k->ns);
	k->ns = NULL;
	return meta_or(st, run, "k8s.namespace", "default", &k->ns);
}

static int k8s_cancel(const struct kpar_conf *c, struct kpar_state *st, long long run, FILE *out)
{
	struct k8s k;
	struct kpar_dispatch d;
	struct kpar_plan p;
	struct kpar_buf sel = KPAR_BUF_INIT, path = KPAR_BUF_INIT;
	int rc;

	if ((rc = open_run(c, st, run, &k, &d, &p)) < 0)
		goto out;
	/* first, so a coordinator still running stops instead of
	 * recreating what is deleted */
	if ((rc = kpar_state_run_meta_set(st, run, "k8s.cancelled", "1")) < 0)
		goto out;
	kpar_buf_printf(&sel, "%s=%s", LABEL_RUN, k.token);
	kpar_buf_printf(&path, "/apis/batch/v1/namespaces/%s/jobs?labelSelector=", k.ns);
	kpar_k8s_query_escape(&path, sel.data);
	kpar_buf_puts(&path, "&propagationPolicy=Background");
	if ((rc = req(&k, "DELETE", path.data, NULL, NULL)) < 0)
		goto out;
	kpar_buf_clear(&path);
	/* the Job's pods go with it in the background; these are deleted now,
	 * so nothing of the run keeps a node busy */
	kpar_buf_printf(&path, "/api/v1/namespaces/%s/pods?labelSelector=", k.ns);
	kpar_k8s_query_escape(&path, sel.data);
	if ((rc = req(&k, "DELETE", path.data, NULL, NULL)) < 0)
		goto out;
	fprintf(out, "kpar: cancelled run %lld: deleted its Jobs and pods (label %s) in namespace %s\n",
		run, sel.data, k.ns);
	kpar_state_run_end(st, run, "aborted", NULL);
out:
	kpar_buf_free(&sel);
	kpar_buf_free(&path);
	k8s_free(&k);
	return rc;
}

static int k8s_status(const struct kpar_conf *c, struct kpar_state *st, long long run, FILE *out)
{
	struct k8s k;
	struct kpar_dispatch d;
	struct kpar_plan p;
	struct kpar_buf sel = KPAR_BUF_INIT, path = KPAR_BUF_INIT;
	cJSON *jobs = NULL, *pods = NULL, *it;
	unsigned long phases[5] = { 0 };
	static const char *const names[] = { "Pending", "Running", "Succeeded", "Failed", "Unknown" };
	int rc;
	size_t i;

	if ((rc = open_run(c, st, run, &k, &d, &p)) < 0)
		goto out;
	kpar_buf_printf(&sel, "%s=%s", LABEL_RUN, k.token);
	kpar_buf_printf(&path, "/apis/batch/v1/namespaces/%s/jobs?labelSelector=", k.ns);
	kpar_k8s_query_escape(&path, sel.data);
	if ((rc = req_json(&k, path.data, &jobs, NULL)) < 0)
		goto out;
	fprintf(out, "namespace %s, label %s\n", k.ns, sel.data);
	if (cJSON_GetArraySize(jobj(jobs, "items")) == 0)
		fprintf(out, "no Job of this run exists in the cluster\n");
	cJSON_ArrayForEach(it, jobj(jobs, "items")) {
		const cJSON *s = jobj(it, "status"), *cnd;
		const cJSON *spec = jobj(it, "spec");
		const char *ci = jstr(s, "completedIndexes"), *fi = jstr(s, "failedIndexes");
		const cJSON *act = jobj(s, "active"), *suc = jobj(s, "succeeded"), *fl = jobj(s, "failed");
		fprintf(out, "Job %s: %d completions, %d active, %d succeeded, %d failed; completed [%s], failed [%s]",
			jstr(jobj(it, "metadata"), "name"),
			cJSON_IsNumber(jobj(spec, "completions")) ? jobj(spec, "completions")->valueint : 0,
			cJSON_IsNumber(act) ? act->valueint : 0, cJSON_IsNumber(suc) ? suc->valueint : 0,
			cJSON_IsNumber(fl) ? fl->valueint : 0, ci ? ci : "", fi ? fi : "");
		cJSON_ArrayForEach(cnd, jobj(s, "conditions"))
			if (jstr(cnd, "status") && !strcmp(jstr(cnd, "status"), "True"))
				fprintf(out, "; %s", jstr(cnd, "type") ? jstr(cnd, "type") : "?");
		fputc('\n', out);
	}
	kpar_buf_clear(&path);
	kpar_buf_printf(&path, "/api/v1/namespaces/%s/pods?labelSelector=", k.ns);
	kpar_k8s_query_escape(&path, sel.data);
	if ((rc = req_json(&k, path.data, &pods, NULL)) < 0)
		goto out;
	cJSON_ArrayForEach(it, jobj(pods, "items")) {
		const char *ph = jstr(jobj(it, "status"), "phase"), *why;
		const cJSON *cs = worker_status(it);
		for (i = 0; i < 5; i++)
			if (ph && !strcmp(ph, names[i]))
				phases[i]++;
		why = jstr(jobj(jobj(cs, "state"), "waiting"), "reason");
		if (!why)
			why = disruption_reason(it);
		if (why)
			fprintf(out, "  pod %s: %s %s\n", jstr(jobj(it, "metadata"), "name"), ph ? ph : "?", why);
	}
	fprintf(out, "pods:");
	for (i = 0; i < 5; i++)
		fprintf(out, " %lu %s%s", phases[i], names[i], i < 4 ? "," : "\n");
out:
	cJSON_Delete(jobs);
	cJSON_Delete(pods);
	kpar_buf_free(&sel);
	kpar_buf_free(&path);
	k8s_free(&k);
	return rc;
}

const struct kpar_backend kpar_k8s_backend = { "k8s", k8s_run, k8s_cancel, k8s_status };
