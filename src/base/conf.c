/* conf.c - the table of settings, and reading them from env and options. */
#include "config.h"

#include <errno.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "base/buf.h"
#include "base/conf.h"
#include "base/error.h"

enum kind { STR, LONG, DBL, BOOL };

/* flags */
#define APPEND 1   /* an option adds its words to the value instead of replacing it */
#define BARE 2     /* shown under its bare name (RESUME), as make's command line spells it */

#define F(field) offsetof(struct kpar_conf, field)

static const struct setting {
	const char *name;    /* option name; the variable is KPAR_ + upper(name) */
	enum kind kind;
	size_t off;
	const char *def;     /* NULL = computed */
	long min, max;       /* LONG and DBL bounds; max 0 = none */
	const char *alias;   /* an older option spelling, or NULL */
	unsigned flags;
} settings[] = {
	{ "state-dir", STR, F(state_dir), ".kpar", 0, 0, NULL, 0 },
	{ "root", STR, F(root), NULL, 0, 0, NULL, 0 },
	{ "tests", STR, F(tests), "", 0, 0, NULL, 0 },
	{ "list-cmd", STR, F(list_cmd), "", 0, 0, NULL, 0 },
	{ "run-cmd", STR, F(run_cmd), "", 0, 0, NULL, 0 },
	{ "run-mode", STR, F(run_mode), "each", 0, 0, NULL, 0 },
	{ "test-protocol", STR, F(test_protocol), "exit", 0, 0, NULL, 0 },
	{ "backend", STR, F(backend), "local", 0, 0, NULL, 0 },
	{ "test-inputs", STR, F(inputs), "", 0, 0, NULL, 0 },
	{ "test-inputs-of", STR, F(inputs_of), "", 0, 0, NULL, 0 },
	{ "test-env", STR, F(test_env), "", 0, 0, NULL, 0 },
	{ "hints", STR, F(hints), "", 0, 0, NULL, 0 },
	{ "history-from", STR, F(history_from), "", 0, 0, NULL, 0 },
	{ "group", STR, F(group), "", 0, 0, NULL, 0 },
	{ "progress", STR, F(progress), "auto", 0, 0, NULL, 0 },
	{ "test-lines", STR, F(test_lines), "failed", 0, 0, NULL, 0 },
	{ "only", STR, F(only), "", 0, 0, NULL, 0 },
	{ "recheck", BOOL, F(recheck), "0", 0, 0, NULL, 0 },
	{ "workers", LONG, F(workers), NULL, 1, 0, NULL, 0 },
	{ "buckets", LONG, F(buckets), "0", 0, 0, NULL, 0 },
	/* the worker takes these in a pod: it bounds them as it always has */
	{ "retries", LONG, F(retries), "0", 0, 100, NULL, 0 },
	{ "retry-timeouts", BOOL, F(retry_timeouts), "0", 0, 0, NULL, 0 },
	{ "xfail-tests", STR, F(xfail_tests), "", 0, 0, NULL, 0 },
	{ "hard-errors", BOOL, F(hard_errors), "1", 0, 0, NULL, 0 },
	{ "worker-retries", LONG, F(worker_retries), "2", 0, 0, NULL, 0 },
	{ "test-timeout", DBL, F(test_timeout), "0", 0, 1000000000, NULL, 0 },
	{ "default-seconds", DBL, F(default_seconds), "1", 0, 0, NULL, 0 },
	{ "resume", BOOL, F(resume), "0", 0, 0, NULL, BARE },
	/* the image; the aliases are kpar image's original option names */
	{ "payload", STR, F(payload), "", 0, 0, NULL, APPEND },
	{ "image-prep", STR, F(image_prep), "", 0, 0, NULL, 0 },
	{ "image-env", STR, F(image_env), "", 0, 0, NULL, 0 },
	{ "worker-bin", STR, F(worker_bin), "", 0, 0, "worker", 0 },
	{ "image-compression", STR, F(image_compression), "gzip", 0, 0, "compression", 0 },
	{ "base-image", STR, F(base_image), "scratch", 0, 0, "base", 0 },
	{ "image-pull", BOOL, F(image_pull), "0", 0, 0, "pull", 0 },
	{ "cache-layer-dir", STR, F(cache_layer_dir), "", 0, 0, "cache-layer", 0 },
	{ "image-per-bucket", BOOL, F(image_per_bucket), "0", 0, 0, "per-bucket", 0 },
	{ "registry", STR, F(registry), "", 0, 0, NULL, 0 },
	{ "image", STR, F(image), "", 0, 0, NULL, 0 },
	/* registries and HTTP */
	{ "registry-ca", STR, F(registry_ca), "", 0, 0, NULL, 0 },
	{ "insecure-registries", STR, F(insecure_registries), "", 0, 0, NULL, 0 },
	{ "registry-debug", BOOL, F(registry_debug), "0", 0, 0, NULL, 0 },
	{ "libcurl", STR, F(libcurl), KPAR_LIBCURL_SONAME, 0, 0, NULL, 0 },
	/* the Kubernetes backend */
	{ "kubeconfig", STR, F(kubeconfig), "", 0, 0, NULL, 0 },
	{ "context", STR, F(context), "", 0, 0, NULL, 0 },
	{ "namespace", STR, F(namespace), "", 0, 0, NULL, 0 },
	{ "k8s-service-account", STR, F(k8s_service_account), "", 0, 0, NULL, 0 },
	{ "k8s-pull-secrets", STR, F(k8s_pull_secrets), "", 0, 0, NULL, 0 },
	{ "k8s-requests", STR, F(k8s_requests), "", 0, 0, NULL, 0 },
	{ "k8s-limits", STR, F(k8s_limits), "", 0, 0, NULL, 0 },
	{ "k8s-node-selector", STR, F(k8s_node_selector), "", 0, 0, NULL, 0 },
	{ "k8s-tolerations", STR, F(k8s_tolerations), "", 0, 0, NULL, 0 },
	{ "k8s-priority-class", STR, F(k8s_priority_class), "", 0, 0, NULL, 0 },
	{ "k8s-labels", STR, F(k8s_labels), "", 0, 0, NULL, 0 },
	{ "k8s-annotations", STR, F(k8s_annotations), "", 0, 0, NULL, 0 },
	{ "k8s-spot", STR, F(k8s_spot), "none", 0, 0, NULL, 0 },
	{ "k8s-stall-timeout", DBL, F(k8s_stall_timeout), "600", 0, 0, NULL, 0 },
	{ "k8s-ttl", LONG, F(k8s_ttl), "3600", 0, 0, NULL, 0 },
	{ "k8s-debug", BOOL, F(k8s_debug), "0", 0, 0, NULL, 0 },
	/* the artifact cache; kpar fetch and kpar cache take these from the
	 * environment only (their options of the same meaning are their own) */
	{ "cache-dir", STR, F(cache_dir), NULL, 0, 0, NULL, 0 },
	{ "cache-readonly", BOOL, F(cache_readonly), "0", 0, 0, NULL, 0 },
	{ "cache-mirrors", STR, F(cache_mirrors), "", 0, 0, NULL, 0 },
	{ "cache-revalidate", STR, F(cache_revalidate), "always", 0, 0, NULL, 0 },
	{ "cache-connect-timeout", STR, F(cache_connect_timeout), "30", 0, 0, NULL, 0 },
	{ "cache-stall-timeout", STR, F(cache_stall_timeout), "60", 0, 0, NULL, 0 },
	{ "cache-retries", LONG, F(cache_retries), "2", 0, 100, NULL, 0 },
	{ "cache-used-list", STR, F(cache_used_list), "", 0, 0, NULL, 0 },
	{ "cache-ca-bundle", STR, F(cache_ca_bundle), "", 0, 0, NULL, 0 },
	{ "cache-max-size", STR, F(cache_max_size), "10G", 0, 0, NULL, 0 },
	{ "cache-max-age", STR, F(cache_max_age), "90d", 0, 0, NULL, 0 },
	{ "cache-gc-grace", STR, F(cache_gc_grace), "1h", 0, 0, NULL, 0 },
};

#undef F
#define NSETTINGS (sizeof settings / sizeof settings[0])

/* The setting whose name, or whose option alias when alias is set, is name. */
static const struct setting *find(const char *name, int alias)
{
	size_t i;

	for (i = 0; i < NSETTINGS; i++)
		if (strcmp(settings[i].name, name) == 0 ||
		    (alias && settings[i].alias && strcmp(settings[i].alias, name) == 0))
			return &settings[i];
	return NULL;
}

static char *env_name(const char *name)
{
	char *v = kpar_xasprintf("KPAR_%s", name), *p;

	for (p = v + 5; *p; p++)
		*p = *p == '-' ? '_' : (char)(*p >= 'a' && *p <= 'z' ? *p - 32 : *p);
	return v;
}

/* append: value comes from an option of an APPEND setting. */
static int assign(struct kpar_conf *c, const struct setting *s, const char *value,
		  const char *origin, int append)
{
	char *base = (char *)c + s->off, *end;

	switch (s->kind) {
	case STR: {
		char **dst = (char **)base, *v;
		if (append && (s->flags & APPEND) && *dst && **dst)
			v = *value ? kpar_xasprintf("%s %s", *dst, value) : kpar_xstrdup(*dst);
		else
			v = kpar_xstrdup(value);
		free(*dst);
		*dst = v;
		return 0;
	}
	case LONG: {
		long v;
		errno = 0;
		v = strtol(value, &end, 10);
		if (errno || end == value || *end || v < s->min || (s->max && v > s->max))
			return s->max ? kpar_error_set(KPAR_EINVAL, "%s: '%s' is not a whole number "
						       "from %ld to %ld", origin, value, s->min, s->max)
				      : kpar_error_set(KPAR_EINVAL, "%s: '%s' is not a whole number >= %ld",
						       origin, value, s->min);
		*(long *)base = v;
		return 0;
	}
	case DBL: {
		double v;
		errno = 0;
		v = strtod(value, &end);
		if (errno || end == value || *end || !(v >= 0) || (s->max && v > (double)s->max))
			return s->max ? kpar_error_set(KPAR_EINVAL, "%s: '%s' is not a number from 0 to %ld",
						       origin, value, s->max)
				      : kpar_error_set(KPAR_EINVAL, "%s: '%s' is not a number >= 0",
						       origin, value);
		*(double *)base = v;
		return 0;
	}
	case BOOL:
		if (!*value || !strcmp(value, "0") || !strcmp(value, "no") || !strcmp(value, "false"))
			*(int *)base = 0;
		else if (!strcmp(value, "1") || !strcmp(value, "yes") || !strcmp(value, "true"))
			*(int *)base = 1;
		else
			return kpar_error_set(KPAR_EINVAL, "%s: '%s' is not 1/0, yes/no or true/false",
					      origin, value);
		return 0;
	}
	return 0;
}

int kpar_conf_load(struct kpar_conf *c)
{
	size_t i;
	int rc;

	memset(c, 0, sizeof *c);
	for (i = 0; i < NSETTINGS; i++) {
		const struct setting *s = &settings[i];
		char *var = env_name(s->name);
		const char *env = getenv(var);

		if (s->def && (rc = assign(c, s, s->def, "default", 0)) < 0) {
			free(var);
			return rc;
		}
		/* An empty variable means "not set": Make defines every ?=
		 * setting, most of them empty. */
		if (env && *env && (rc = assign(c, s, env, var, 0)) < 0) {
			free(var);
			return rc;
		}
		free(var);
	}
	/* RESUME=1 on make's command line reaches kpar through the recipe's
	 * environment only if kpar.mk passes it; accept it directly too. */
	if (!c->resume && getenv("RESUME") && (rc = assign(c, find("resume", 0), getenv("RESUME"), "RESUME", 0)) < 0)
		return rc;
	if (c->workers <= 0) {
		long n = sysconf(_SC_NPROCESSORS_ONLN);
		c->workers = n > 0 ? n : 1;
	}
	if (!c->cache_dir || !*c->cache_dir) {
		/* the cache's own default (kpar_cache_default_dir), spelled out so
		 * that --settings shows where the cache is; none without a HOME */
		const char *xdg = getenv("XDG_CACHE_HOME"), *home = getenv("HOME");
		free(c->cache_dir);
		c->cache_dir = xdg && xdg[0] == '/' ? kpar_xasprintf("%s/kpar", xdg)
			: home && *home ? kpar_xasprintf("%s%s.cache/kpar", home,
							 home[strlen(home) - 1] == '/' ? "" : "/")
			: kpar_xstrdup("");
	}
	if (!c->root || !*c->root) {
		char *cwd = getcwd(NULL, 0);
		free(c->root);
		c->root = cwd ? cwd : kpar_xstrdup(".");
	}
	if (!*c->state_dir)
		return kpar_error_set(KPAR_EINVAL, "KPAR_STATE_DIR is empty");
	if (strcmp(c->run_mode, "each") && strcmp(c->run_mode, "batch"))
		return kpar_error_set(KPAR_EINVAL, "KPAR_RUN_MODE: '%s' is not 'each' or 'batch'",
				      c->run_mode);
	if (strcmp(c->test_protocol, "exit") && strcmp(c->test_protocol, "tap") &&
	    strcmp(c->test_protocol, "junit") && strcmp(c->test_protocol, "automake"))
		return kpar_error_set(KPAR_EINVAL, "KPAR_TEST_PROTOCOL: '%s' is not exit, tap, junit or "
				      "automake", c->test_protocol);
	if (strcmp(c->backend, "local") && strcmp(c->backend, "k8s"))
		return kpar_error_set(KPAR_EINVAL, "KPAR_BACKEND: '%s' is not local or k8s", c->backend);
	if (strcmp(c->k8s_spot, "none") && strcmp(c->k8s_spot, "gke") && strcmp(c->k8s_spot, "eks") &&
	    strcmp(c->k8s_spot, "karpenter") && strcmp(c->k8s_spot, "aks"))
		return kpar_error_set(KPAR_EINVAL, "KPAR_K8S_SPOT: '%s' is not none, gke, eks, karpenter "
				      "or aks", c->k8s_spot);
	if (strcmp(c->progress, "auto") && strcmp(c->progress, "always") && strcmp(c->progress, "never"))
		return kpar_error_set(KPAR_EINVAL, "KPAR_PROGRESS: '%s' is not auto, always or never",
				      c->progress);
	if (strcmp(c->test_lines, "none") && strcmp(c->test_lines, "failed") && strcmp(c->test_lines, "all"))
		return kpar_error_set(KPAR_EINVAL, "KPAR_TEST_LINES: '%s' is not none, failed or all",
				      c->test_lines);
	return 0;
}

int kpar_conf_set(struct kpar_conf *c, const char *name, const char *value)
{
	const struct setting *s = find(name, 1);
	char origin[128];

	if (!s)
		return kpar_error_set(KPAR_EINVAL, "unknown option '--%s'", name);
	snprintf(origin, sizeof origin, "--%s", name);
	return assign(c, s, value, origin, 1);
}

int kpar_conf_option(struct kpar_conf *c, int argc, char **argv, int *i)
{
	const char *a = argv[*i], *eq;
	const struct setting *s;
	char *name;
	int rc;

	if (strncmp(a, "--", 2) != 0 || a[2] == '\0')
		return 0;
	eq = strchr(a + 2, '=');
	name = eq ? kpar_xstrndup(a + 2, (size_t)(eq - a - 2)) : kpar_xstrdup(a + 2);
	s = find(name, 1);
	if (!s) {
		free(name);
		return 0;
	}
	if (eq)
		rc = kpar_conf_set(c, name, eq + 1);
	else if (s->kind == BOOL)
		rc = kpar_conf_set(c, name, "1");   /* --resume; --resume=0 to turn off */
	else if (*i + 1 < argc)
		rc = kpar_conf_set(c, name, argv[++*i]);
	else
		rc = kpar_error_set(KPAR_EINVAL, "option '--%s' needs a value", name);
	free(name);
	return rc < 0 ? rc : 1;
}

void kpar_conf_free(struct kpar_conf *c)
{
	size_t i;

	for (i = 0; i < NSETTINGS; i++)
		if (settings[i].kind == STR) {
			char **p = (char **)((char *)c + settings[i].off);
			free(*p);
			*p = NULL;
		}
}

char *kpar_conf_path(const struct kpar_conf *c, const char *rel)
{
	size_t n = strlen(c->state_dir);

	if (n && c->state_dir[n - 1] == '/')
		return kpar_xasprintf("%s%s", c->state_dir, rel);
	return kpar_xasprintf("%s/%s", c->state_dir, rel);
}

void kpar_conf_print(const struct kpar_conf *c, void *file)
{
	FILE *out = file;
	size_t i;

	for (i = 0; i < NSETTINGS; i++) {
		const struct setting *s = &settings[i];
		const char *base = (const char *)c + s->off;
		char *var = env_name(s->name);

		if (s->flags & BARE)
			memmove(var, var + 5, strlen(var + 5) + 1);
		switch (s->kind) {
		case STR: fprintf(out, "%s=%s\n", var, *(char *const *)base); break;
		case LONG: fprintf(out, "%s=%ld\n", var, *(const long *)base); break;
		case DBL: fprintf(out, "%s=%g\n", var, *(const double *)base); break;
		case BOOL: fprintf(out, "%s=%d\n", var, *(const int *)base); break;
		}
		free(var);
	}
}

void kpar_conf_print_options(void *file)
{
	FILE *out = file;
	size_t i, col = 0;

	for (i = 0; i < NSETTINGS; i++) {
		const struct setting *s = &settings[i];
		char opt[64];
		size_t n;

		n = (size_t)snprintf(opt, sizeof opt, "--%s%s", s->name, s->kind == BOOL ? "[=0|1]" : " V");
		if (col && col + 1 + n > 78) {
			fputc('\n', out);
			col = 0;
		}
		col += (size_t)fprintf(out, "%s%s", col ? " " : "  ", opt);
	}
	if (col)
		fputc('\n', out);
}
