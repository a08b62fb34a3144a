/* test_k8s_job.c - the Job kpar creates, and the index lists it reads.
 * (The Job's life on a real cluster is tested in tests/k8s/.) */
#include "config.h"

#include <stdlib.h>
#include <string.h>

#include <cjson/cJSON.h>

#include "base/buf.h"
#include "base/conf.h"
#include "base/error.h"
#include "k8s/job.h"
#include "run/plan.h"
#include "test.h"

static void collect(void *ud, long idx)
{
	struct kpar_buf *b = ud;
	kpar_buf_printf(b, "%ld.", idx);
}

static const char *ranges(const char *s, struct kpar_buf *b)
{
	kpar_buf_clear(b);
	if (kpar_k8s_index_ranges(s, collect, b) < 0)
		return "error";
	return b->data ? b->data : "";
}

KPAR_TEST(index_ranges)
{
	struct kpar_buf b = KPAR_BUF_INIT;

	CHECK_STR(ranges("", &b), "");
	CHECK_STR(ranges("0", &b), "0.");
	CHECK_STR(ranges("1,3-5,7", &b), "1.3.4.5.7.");
	CHECK_STR(ranges("0-2,10-11", &b), "0.1.2.10.11.");
	CHECK_STR(ranges("1,,2", &b), "error");
	CHECK_STR(ranges("3-1", &b), "error");
	CHECK_STR(ranges("a", &b), "error");
	CHECK_STR(ranges("1-", &b), "error");
	CHECK_STR(ranges("-1", &b), "error");
	CHECK_STR(ranges("1;2", &b), "error");
	kpar_error_clear();
	kpar_buf_free(&b);
}

/* A plan of three buckets, estimates 30, 20, 10 s. */
static void plan3(struct kpar_plan *p)
{
	size_t i;

	memset(p, 0, sizeof *p);
	p->digest = kpar_xstrdup("sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef");
	p->nbuckets = 3;
	p->buckets = kpar_xcalloc(3, sizeof *p->buckets);
	for (i = 0; i < 3; i++) {
		p->buckets[i].bucket = (int)i + 1;
		p->buckets[i].estimate = 30 - 10.0 * (double)i;
	}
}

static cJSON *path(cJSON *o, const char *a, const char *b, const char *c, const char *d)
{
	const char *keys[] = { a, b, c, d };
	size_t i;

	for (i = 0; i < 4 && keys[i] && o; i++)
		o = cJSON_GetObjectItemCaseSensitive(o, keys[i]);
	return o;
}

static const char *env_value(cJSON *ctr, const char *name)
{
	cJSON *e;

	cJSON_ArrayForEach(e, cJSON_GetObjectItemCaseSensitive(ctr, "env"))
		if (!strcmp(cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(e, "name")), name))
			return cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(e, "value"));
	return NULL;
}

KPAR_TEST(job_spec)
{
	struct kpar_conf c;
	struct kpar_plan p;
	int all[] = { 1, 2, 3 }, some[] = { 3, 1 };
	char *json = NULL;
	cJSON *job, *spec, *pod, *ctr, *rule;

	setenv("KPAR_WORKERS", "2", 1);
	setenv("KPAR_WORKER_RETRIES", "4", 1);
	setenv("KPAR_TEST_ENV", "KPAR_TEST_SECRET_FLAG", 1);
	setenv("KPAR_TEST_SECRET_FLAG", "on; $(rm -rf /)", 1);
	setenv("KPAR_K8S_SPOT", "aks", 1);
	setenv("KPAR_K8S_TOLERATIONS", "dedicated=ci:NoSchedule,gpu", 1);
	setenv("KPAR_K8S_REQUESTS", "cpu=500m,memory=1Gi", 1);
	setenv("KPAR_K8S_LABELS", "team=infra,kpar.dev/run=spoofed", 1);
	CHECK_OK(kpar_conf_load(&c));
	plan3(&p);
	CHECK_OK(kpar_k8s_job_json(&c, &p, "ci", "kpar-abcd-1", "abcd", "reg:5000/app@sha256:ff", all, 3, &json));
	job = cJSON_Parse(json);
	CHECK(job != NULL);
	spec = path(job, "spec", NULL, NULL, NULL);
	CHECK_STR(cJSON_GetStringValue(path(spec, "completionMode", NULL, NULL, NULL)), "Indexed");
	CHECK_INT(path(spec, "completions", NULL, NULL, NULL)->valueint, 3);
	CHECK_INT(path(spec, "parallelism", NULL, NULL, NULL)->valueint, 2);
	CHECK_INT(path(spec, "backoffLimitPerIndex", NULL, NULL, NULL)->valueint, 4);
	CHECK_INT(path(spec, "maxFailedIndexes", NULL, NULL, NULL)->valueint, 3);
	CHECK_STR(cJSON_GetStringValue(path(spec, "podReplacementPolicy", NULL, NULL, NULL)), "Failed");
	CHECK(path(spec, "backoffLimit", NULL, NULL, NULL) == NULL);
	rule = cJSON_GetArrayItem(path(spec, "podFailurePolicy", "rules", NULL, NULL), 0);
	CHECK_STR(cJSON_GetStringValue(path(rule, "action", NULL, NULL, NULL)), "Ignore");
	CHECK_STR(cJSON_GetStringValue(path(cJSON_GetArrayItem(path(rule, "onPodConditions", NULL, NULL, NULL), 0),
					    "type", NULL, NULL, NULL)), "DisruptionTarget");
	pod = path(spec, "template", "spec", NULL, NULL);
	CHECK_STR(cJSON_GetStringValue(path(pod, "restartPolicy", NULL, NULL, NULL)), "Never");
	CHECK(cJSON_IsFalse(path(pod, "automountServiceAccountToken", NULL, NULL, NULL)));
	CHECK_STR(cJSON_GetStringValue(path(pod, "nodeSelector", "kubernetes.azure.com/scalesetpriority", NULL, NULL)),
		  "spot");
	CHECK_INT(cJSON_GetArraySize(path(pod, "tolerations", NULL, NULL, NULL)), 3);
	CHECK_STR(cJSON_GetStringValue(path(cJSON_GetArrayItem(path(pod, "tolerations", NULL, NULL, NULL), 2),
					    "operator", NULL, NULL, NULL)), "Exists");
	/* the run label is kpar's: a user label cannot redirect the watch */
	CHECK_STR(cJSON_GetStringValue(path(spec, "template", "metadata", "labels", NULL) ?
		  cJSON_GetObjectItemCaseSensitive(path(spec, "template", "metadata", "labels", NULL), "kpar.dev/run") : NULL),
		  "abcd");
	CHECK_STR(cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(path(spec, "template", "metadata", "labels", NULL),
									 "team")), "infra");
	ctr = cJSON_GetArrayItem(path(pod, "containers", NULL, NULL, NULL), 0);
	CHECK_STR(cJSON_GetStringValue(path(ctr, "image", NULL, NULL, NULL)), "reg:5000/app@sha256:ff");
	CHECK_STR(cJSON_GetStringValue(path(ctr, "resources", "requests", "memory", NULL)), "1Gi");
	/* values travel as data, never through a shell */
	CHECK_STR(env_value(ctr, "KPAR_TEST_SECRET_FLAG"), "on; $(rm -rf /)");
	CHECK(env_value(ctr, "KPAR_BUCKET_LIST") == NULL);    /* index i runs bucket i+1 */
	cJSON_Delete(job);
	free(json);

	/* a rerun lists its buckets, longest first as given */
	CHECK_OK(kpar_k8s_job_json(&c, &p, "ci", "kpar-abcd-2", "abcd", "reg:5000/app@sha256:ff", some, 2, &json));
	job = cJSON_Parse(json);
	ctr = cJSON_GetArrayItem(path(path(job, "spec", "template", "spec", NULL), "containers", NULL, NULL, NULL), 0);
	CHECK_STR(env_value(ctr, "KPAR_BUCKET_LIST"), "3,1");
	CHECK_INT(path(job, "spec", "completions", NULL, NULL)->valueint, 2);
	cJSON_Delete(job);
	free(json);
	json = NULL;

	/* malformed settings name themselves */
	free(c.k8s_node_selector);
	c.k8s_node_selector = kpar_xstrdup("disk");
	CHECK(kpar_k8s_job_json(&c, &p, "ci", "j", "abcd", "r@sha256:ff", all, 3, &json) == KPAR_EINVAL);
	CHECK(strstr(kpar_error_last(), "KPAR_K8S_NODE_SELECTOR") != NULL);
	CHECK(json == NULL);
	free(c.k8s_node_selector);
	c.k8s_node_selector = kpar_xstrdup("");
	free(c.k8s_tolerations);
	c.k8s_tolerations = kpar_xstrdup("a=b:Sometimes");
	CHECK(kpar_k8s_job_json(&c, &p, "ci", "j", "abcd", "r@sha256:ff", all, 3, &json) == KPAR_EINVAL);
	CHECK(strstr(kpar_error_last(), "KPAR_K8S_TOLERATIONS") != NULL);
	kpar_error_clear();
	kpar_conf_free(&c);
	kpar_plan_free(&p);
}

KPAR_TEST(bad_spot_setting)
{
	struct kpar_conf c;

	setenv("KPAR_K8S_SPOT", "azure", 1);
	CHECK(kpar_conf_load(&c) == KPAR_EINVAL);
	CHECK(strstr(kpar_error_last(), "KPAR_K8S_SPOT") != NULL);
	kpar_conf_free(&c);
	unsetenv("KPAR_K8S_SPOT");
	setenv("KPAR_BACKEND", "kube", 1);
	CHECK(kpar_conf_load(&c) == KPAR_EINVAL);
	CHECK(strstr(kpar_error_last(), "KPAR_BACKEND") != NULL);
	kpar_conf_free(&c);
	unsetenv("KPAR_BACKEND");
	kpar_error_clear();
}

KPAR_TEST_MAIN(KPAR_CASE(index_ranges), KPAR_CASE(job_spec), KPAR_CASE(bad_spot_setting))
