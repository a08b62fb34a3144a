/* conf.c - the table of settings, and reading them from env and options. */
#include "config.h"

#include <errno.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "buf.h"
#include "conf.h"
#include "error.h"

enum kind { STR, LONG, DBL, BOOL };

static const struct setting {
	const char *name;    /* option name; the variable is KPAR_ + upper(name) */
	enum kind kind;
	size_t off;
	const char *def;     /* NULL = computed */
	long min;
} settings[] = {
	{ "state-dir", STR, offsetof(struct kpar_conf, state_dir), ".kpar", 0 },
	{ "root", STR, offsetof(struct kpar_conf, root), NULL, 0 },
	{ "tests", STR, offsetof(struct kpar_conf, tests), "", 0 },
	{ "list-cmd", STR, offsetof(struct kpar_conf, list_cmd), "", 0 },
	{ "run-cmd", STR, offsetof(struct kpar_conf, run_cmd), "", 0 },
	{ "run-mode", STR, offsetof(struct kpar_conf, run_mode), "each", 0 },
	{ "backend", STR, offsetof(struct kpar_conf, backend), "local", 0 },
	{ "test-inputs", STR, offsetof(struct kpar_conf, inputs), "", 0 },
	{ "test-env", STR, offsetof(struct kpar_conf, test_env), "", 0 },
	{ "hints", STR, offsetof(struct kpar_conf, hints), "", 0 },
	{ "progress", STR, offsetof(struct kpar_conf, progress), "auto", 0 },
	{ "workers", LONG, offsetof(struct kpar_conf, workers), NULL, 1 },
	{ "buckets", LONG, offsetof(struct kpar_conf, buckets), "0", 0 },
	{ "retries", LONG, offsetof(struct kpar_conf, retries), "0", 0 },
	{ "worker-retries", LONG, offsetof(struct kpar_conf, worker_retries), "2", 0 },
	{ "test-timeout", DBL, offsetof(struct kpar_conf, test_timeout), "0", 0 },
	{ "default-seconds", DBL, offsetof(struct kpar_conf, default_seconds), "1", 0 },
	{ "resume", BOOL, offsetof(struct kpar_conf, resume), "0", 0 },
};

#define NSETTINGS (sizeof settings / sizeof settings[0])

static const struct setting *find(const char *name)
{
	size_t i;

	for (i = 0; i < NSETTINGS; i++)
		if (strcmp(settings[i].name, name) == 0)
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

static int assign(struct kpar_conf *c, const struct setting *s, const char *value,
		  const char *origin)
{
	char *base = (char *)c + s->off, *end;

	switch (s->kind) {
	case STR: {
		char **dst = (char **)base;
		free(*dst);
		*dst = kpar_xstrdup(value);
		return 0;
	}
	case LONG: {
		long v;
		errno = 0;
		v = strtol(value, &end, 10);
		if (errno || end == value || *end || v < s->min)
			return kpar_error_set(KPAR_EINVAL, "%s: '%s' is not a whole number >= %ld",
					      origin, value, s->min);
		*(long *)base = v;
		return 0;
	}
	case DBL: {
		double v;
		errno = 0;
		v = strtod(value, &end);
		if (errno || end == value || *end || !(v >= 0))
			return kpar_error_set(KPAR_EINVAL, "%s: '%s' is not a number >= 0",
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

		if (s->def && (rc = assign(c, s, s->def, "default")) < 0) {
			free(var);
			return rc;
		}
		/* An empty variable means "not set": Make defines every ?=
		 * setting, most of them empty. */
		if (env && *env && (rc = assign(c, s, env, var)) < 0) {
			free(var);
			return rc;
		}
		free(var);
	}
	/* RESUME=1 on make's command line reaches kpar through the recipe's
	 * environment only if kpar.mk passes it; accept it directly too. */
	if (!c->resume && getenv("RESUME") && (rc = assign(c, find("resume"), getenv("RESUME"), "RESUME")) < 0)
		return rc;
	if (c->workers <= 0) {
		long n = sysconf(_SC_NPROCESSORS_ONLN);
		c->workers = n > 0 ? n : 1;
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
	if (strcmp(c->progress, "auto") && strcmp(c->progress, "always") && strcmp(c->progress, "never"))
		return kpar_error_set(KPAR_EINVAL, "KPAR_PROGRESS: '%s' is not auto, always or never",
				      c->progress);
	return 0;
}

int kpar_conf_set(struct kpar_conf *c, const char *name, const char *value)
{
	const struct setting *s = find(name);
	char origin[128];

	if (!s)
		return kpar_error_set(KPAR_EINVAL, "unknown option '--%s'", name);
	snprintf(origin, sizeof origin, "--%s", name);
	return assign(c, s, value, origin);
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
	s = find(name);
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

		switch (s->kind) {
		case STR: fprintf(out, "%s=%s\n", var, *(char *const *)base); break;
		case LONG: fprintf(out, "%s=%ld\n", var, *(const long *)base); break;
		case DBL: fprintf(out, "%s=%g\n", var, *(const double *)base); break;
		case BOOL: fprintf(out, "%s=%d\n", var, *(const int *)base); break;
		}
		free(var);
	}
}
